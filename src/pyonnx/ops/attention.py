"""Attention kernels: Attention, RotaryEmbedding, LinearAttention, CausalConvWithState and
FlexAttention (ai.onnx.preview).

Scores and probabilities are computed in float32 for float16/bfloat16 inputs (float64 for
double) and results are cast back to the input type. Each step is one batched ``np.matmul`` over
(batch, heads); masks are built at their broadcast shape and added in place.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ir.dtypes import DataType
from pyonnx.ops._attention import (
    grouped_pv,
    grouped_qk,
    merge_heads,
    softmax_lastaxis_,
    split_heads,
)
from pyonnx.ops._common import check_alloc, check_indices, compute_dtype
from pyonnx.ops.registry import KernelContext, Subgraph, kernel

__all__: list[str] = []

_BF16 = np.dtype(ml_dtypes.bfloat16)
_HALF = (np.dtype(np.float16), _BF16)


def _check_float(x: np.ndarray, what: str) -> None:
    if x.dtype.kind != "f" and x.dtype not in _HALF:
        raise ExecutionError(f"{what} must be a float tensor, got {x.dtype}")


def _softmax_dtype(code: int | None, what: str = "softmax_precision") -> np.dtype | None:
    if code is None:
        return None
    dt = DataType(int(code)).numpy if int(code) in DataType._value2member_map_ else None
    if dt is None or (dt.kind != "f" and dt not in _HALF):
        raise ExecutionError(f"{what} {code} is not a float type (1, 10, 11 or 16 expected)")
    return dt


def _softmax_(scores: np.ndarray, sm_dt: np.dtype | None) -> np.ndarray:
    """Softmax of ``scores`` (float32/64) in the precision ``sm_dt`` asks for; zeros for dead rows.

    A half precision runs natively in that type (every step rounded to it), as the spec's
    "cast to softmax_precision, softmax, cast back" describes; the result is widened again.
    """
    if sm_dt is None or sm_dt == scores.dtype:
        return softmax_lastaxis_(scores)
    work = softmax_lastaxis_(scores.astype(sm_dt))
    return work.astype(scores.dtype)


# --- Attention ------------------------------------------------------------------------------

def _attention(Q: np.ndarray, K: np.ndarray, V: np.ndarray, attn_mask: np.ndarray | None,
               past_key: np.ndarray | None, past_value: np.ndarray | None,
               nonpad_kv_seqlen: np.ndarray | None, *, version: int, is_causal: int,
               kv_num_heads: int | None, q_num_heads: int | None, qk_matmul_output_mode: int,
               scale: float | None, softcap: float, softmax_precision: int | None,
               left_window_size: int, right_window_size: int,
               ctx: KernelContext | None) -> tuple:
    Q, K, V = np.asarray(Q), np.asarray(K), np.asarray(V)
    for name, t in (("Q", Q), ("K", K), ("V", V)):
        _check_float(t, name)
    if not (Q.ndim == K.ndim == V.ndim) or Q.ndim not in (3, 4):
        raise ExecutionError(f"Q, K and V must all be 3-D or all 4-D, got shapes {Q.shape}, "
                             f"{K.shape}, {V.shape}")
    three_d = Q.ndim == 3
    if three_d:
        if not q_num_heads or not kv_num_heads:
            raise ExecutionError("3-D Q, K, V need the q_num_heads and kv_num_heads attributes")
        for name, t, h in (("Q", Q, q_num_heads), ("K", K, kv_num_heads), ("V", V, kv_num_heads)):
            if t.shape[2] % h:
                raise ExecutionError(f"{name} hidden size {t.shape[2]} is not a multiple of its "
                                     f"number of heads {h}")
        q4, k4, v4 = (split_heads(Q, q_num_heads), split_heads(K, kv_num_heads),
                      split_heads(V, kv_num_heads))
    else:
        q4, k4, v4 = Q, K, V
    b, hq, sq, d = q4.shape
    hkv, skv = k4.shape[1], k4.shape[2]
    if k4.shape[0] != b or v4.shape[0] != b:
        raise ExecutionError(f"batch sizes differ: Q {Q.shape}, K {K.shape}, V {V.shape}")
    if k4.shape[3] != d:
        raise ExecutionError(f"Q head size {d} differs from K head size {k4.shape[3]}")
    if v4.shape[1] != hkv or v4.shape[2] != skv:
        raise ExecutionError(f"K (heads {hkv}, length {skv}) and V (heads {v4.shape[1]}, length "
                             f"{v4.shape[2]}) disagree")
    if hkv == 0 or hq % hkv:
        raise ExecutionError(f"q_num_heads {hq} must be a multiple of kv_num_heads {hkv}")

    if (past_key is None) != (past_value is None):
        raise ExecutionError("past_key and past_value must be given together")
    past_len = 0
    if past_key is not None:
        past_key, past_value = np.asarray(past_key), np.asarray(past_value)
        if past_key.ndim != 4 or past_value.ndim != 4 or past_key.shape[:2] != (b, hkv) or \
                past_value.shape[:2] != (b, hkv) or past_key.shape[3] != d or \
                past_value.shape[3] != v4.shape[3] or past_key.shape[2] != past_value.shape[2]:
            raise ExecutionError(
                f"past_key {past_key.shape} / past_value {past_value.shape} must be "
                f"(batch {b}, kv heads {hkv}, past length, head size {d} / {v4.shape[3]})")
        past_len = past_key.shape[2]
        k4 = np.concatenate([past_key, k4.astype(past_key.dtype, copy=False)], axis=2)
        v4 = np.concatenate([past_value, v4.astype(past_value.dtype, copy=False)], axis=2)
    total = k4.shape[2]
    # Without a context (a direct call), only Y is produced.
    used = ctx.outputs_used if ctx is not None else (True,)
    used = tuple(used) + (False,) * (4 - len(used))
    cdt = compute_dtype(Q.dtype)
    if ctx is not None:
        check_alloc((b, hq, sq, total), cdt, ctx.max_tensor_bytes, "attention scores")

    if scale is None:
        if d == 0:
            raise ExecutionError("head size is 0; the default scale 1/sqrt(head_size) is undefined")
        scale = 1.0 / math.sqrt(d)
    mode = int(qk_matmul_output_mode)
    if mode not in (0, 1, 2, 3):
        raise ExecutionError(f"qk_matmul_output_mode {mode} must be 0, 1, 2 or 3")
    # bfloat16 without softmax_precision: the spec computes every step in bfloat16, and its
    # 8-bit mantissa makes that differ from a float32 computation beyond the conformance
    # tolerance, so each step is rounded to bfloat16 (products still accumulate in float32).
    # float16 keeps the more accurate float32 path: its rounding stays within tolerance.
    emulate = Q.dtype == _BF16 and softmax_precision is None
    sm_dt = _BF16 if emulate else _softmax_dtype(softmax_precision)

    def rnd(a: np.ndarray) -> np.ndarray:
        return a.astype(_BF16).astype(cdt) if emulate else a

    if emulate:  # the spec's form: Q * sqrt(scale) and K * sqrt(scale), each rounded
        root = cdt.type(_BF16.type(math.sqrt(scale)))
        q = rnd(np.multiply(q4, root, dtype=cdt))
        k = rnd(np.multiply(k4, root, dtype=cdt))
    else:  # scaling Q alone (Sq x D) is cheaper than scaling K or the scores
        q = np.multiply(q4, cdt.type(scale), dtype=cdt)
        k = k4.astype(cdt, copy=False)
    scores = rnd(grouped_qk(q, k))
    qk_out = scores.copy() if used[3] and mode == 0 else None
    if softcap and softcap > 0:
        cap = cdt.type(softcap)
        scores = rnd(scores / cap)
        scores = rnd(np.tanh(scores, out=scores))
        scores = rnd(scores * cap)
    if used[3] and mode == 1:
        qk_out = scores.copy()

    bias = _attention_bias(attn_mask, nonpad_kv_seqlen, version=version, b=b, hq=hq, sq=sq,
                           skv=skv, total=total, past_len=past_len, is_causal=bool(is_causal),
                           left=int(left_window_size), right=int(right_window_size), cdt=cdt)
    if bias is not None:
        scores += rnd(bias)
        scores = rnd(scores)
    if used[3] and mode == 2:
        qk_out = scores.copy()
    probs = _softmax_(scores, sm_dt) if total else scores
    if used[3] and mode == 3:
        qk_out = probs
    y = grouped_pv(probs, v4.astype(cdt, copy=False))
    y = merge_heads(y) if three_d else y
    outs: list = [y.astype(Q.dtype, copy=False)]
    outs.append(np.ascontiguousarray(k4) if used[1] else None)
    outs.append(np.ascontiguousarray(v4) if used[2] else None)
    if past_key is None:  # present would alias an input: hand out copies
        outs[1] = None if outs[1] is None else (outs[1].copy() if outs[1] is K else outs[1])
        outs[2] = None if outs[2] is None else (outs[2].copy() if outs[2] is V else outs[2])
    outs.append(qk_out.astype(Q.dtype) if qk_out is not None else None)
    n_out = ctx.num_outputs if ctx is not None else 1
    return tuple(outs[:max(1, n_out)])


def _attention_bias(attn_mask: np.ndarray | None, nonpad: np.ndarray | None, *, version: int,
                    b: int, hq: int, sq: int, skv: int, total: int, past_len: int,
                    is_causal: bool, left: int, right: int, cdt: np.dtype) -> np.ndarray | None:
    """The additive bias (0 or -inf, plus a float mask) broadcastable to (B, Hq, Sq, total)."""
    target = (b, hq, sq, total)
    bias = None
    if attn_mask is not None:
        mask = np.asarray(attn_mask)
        if mask.ndim > 4:
            raise ExecutionError(f"attn_mask has rank {mask.ndim}; at most 4 expected")
        last = mask.shape[-1] if mask.ndim else 1
        if last not in (1, total):
            if last > total or version < 24:
                raise ExecutionError(
                    f"attn_mask last dimension {last} does not match the total sequence length "
                    f"{total} (past {past_len} + kv {skv})"
                    + ("" if version < 24 else "; it may be shorter, never longer"))
        if mask.dtype == np.bool_:
            add = np.where(mask, cdt.type(0), cdt.type(-np.inf))
        else:
            add = mask.astype(cdt)
        if last not in (1, total):  # shorter mask: the missing keys are masked out
            pad = [(0, 0)] * (add.ndim - 1) + [(0, total - last)]
            add = np.pad(add, pad, constant_values=-np.inf)
        try:
            np.broadcast_shapes(add.shape, target)
        except ValueError:
            raise ExecutionError(f"attn_mask of shape {mask.shape} does not broadcast to "
                                 f"(batch, q_num_heads, q_len, total_len) = {target}") from None
        bias = add

    # Structural masks: causal frontier, sliding window, key padding. All use the position of
    # each query in the full key sequence, p = offset + i.
    offset = np.zeros((1, 1, 1, 1), dtype=np.int64)
    valid_len = None
    if nonpad is not None:
        nonpad = np.asarray(nonpad)
        if nonpad.shape != (b,):
            raise ExecutionError(f"nonpad_kv_seqlen has shape {nonpad.shape}; ({b},) expected")
        if nonpad.size and (nonpad.min() < 0 or nonpad.max() > total):
            raise ExecutionError(f"nonpad_kv_seqlen {nonpad.tolist()} must lie in [0, {total}] "
                                 f"(the key sequence length)")
        valid_len = nonpad.astype(np.int64).reshape(b, 1, 1, 1)
        if past_len == 0:
            offset = valid_len - sq
    if past_len:
        offset = np.full((1, 1, 1, 1), past_len, dtype=np.int64)
    windowed = left >= 0 or right >= 0
    if is_causal or windowed or valid_len is not None:
        j = np.arange(total, dtype=np.int64).reshape(1, 1, 1, total)
        p = offset + np.arange(sq, dtype=np.int64).reshape(1, 1, sq, 1)
        allowed = np.ones(np.broadcast_shapes(p.shape, j.shape), dtype=np.bool_)
        if is_causal:
            allowed &= j <= p
        if left >= 0:
            allowed &= j >= p - left
        if right >= 0:
            allowed &= j <= p + right
        if valid_len is not None:
            allowed = allowed & (j < valid_len)
        add = np.where(allowed, cdt.type(0), cdt.type(-np.inf))
        bias = add if bias is None else bias + add
    return bias


_ATT_DOC = "Scaled dot-product attention (MHA/GQA/MQA) with masks, KV cache and softcap."


@kernel("Attention", versions=(23,))
def attention_23(Q: np.ndarray, K: np.ndarray, V: np.ndarray, attn_mask: np.ndarray | None = None,
                 past_key: np.ndarray | None = None, past_value: np.ndarray | None = None, *,
                 is_causal: int = 0, kv_num_heads: int | None = None,
                 q_num_heads: int | None = None, qk_matmul_output_mode: int = 0,
                 scale: float | None = None, softcap: float = 0.0,
                 softmax_precision: int | None = None, ctx: KernelContext | None = None) -> tuple:
    """Attention-23: the mask must cover the whole key sequence (or broadcast over it)."""
    return _attention(Q, K, V, attn_mask, past_key, past_value, None, version=23,
                      is_causal=is_causal, kv_num_heads=kv_num_heads, q_num_heads=q_num_heads,
                      qk_matmul_output_mode=qk_matmul_output_mode, scale=scale, softcap=softcap,
                      softmax_precision=softmax_precision, left_window_size=-1,
                      right_window_size=-1, ctx=ctx)


@kernel("Attention", versions=(24,))
def attention_24(Q: np.ndarray, K: np.ndarray, V: np.ndarray, attn_mask: np.ndarray | None = None,
                 past_key: np.ndarray | None = None, past_value: np.ndarray | None = None,
                 nonpad_kv_seqlen: np.ndarray | None = None, *, is_causal: int = 0,
                 kv_num_heads: int | None = None, q_num_heads: int | None = None,
                 qk_matmul_output_mode: int = 0, scale: float | None = None, softcap: float = 0.0,
                 softmax_precision: int | None = None, ctx: KernelContext | None = None) -> tuple:
    """Attention-24: adds nonpad_kv_seqlen (external KV cache); shorter masks pad with -inf."""
    return _attention(Q, K, V, attn_mask, past_key, past_value, nonpad_kv_seqlen, version=24,
                      is_causal=is_causal, kv_num_heads=kv_num_heads, q_num_heads=q_num_heads,
                      qk_matmul_output_mode=qk_matmul_output_mode, scale=scale, softcap=softcap,
                      softmax_precision=softmax_precision, left_window_size=-1,
                      right_window_size=-1, ctx=ctx)


@kernel("Attention", versions=(25,))
def attention_25(Q: np.ndarray, K: np.ndarray, V: np.ndarray, attn_mask: np.ndarray | None = None,
                 past_key: np.ndarray | None = None, past_value: np.ndarray | None = None,
                 nonpad_kv_seqlen: np.ndarray | None = None, *, is_causal: int = 0,
                 kv_num_heads: int | None = None, q_num_heads: int | None = None,
                 qk_matmul_output_mode: int = 0, scale: float | None = None, softcap: float = 0.0,
                 softmax_precision: int | None = None, left_window_size: int = -1,
                 right_window_size: int = -1, ctx: KernelContext | None = None) -> tuple:
    """Attention-25: adds left/right sliding-window bounds around each query's position."""
    return _attention(Q, K, V, attn_mask, past_key, past_value, nonpad_kv_seqlen, version=25,
                      is_causal=is_causal, kv_num_heads=kv_num_heads, q_num_heads=q_num_heads,
                      qk_matmul_output_mode=qk_matmul_output_mode, scale=scale, softcap=softcap,
                      softmax_precision=softmax_precision, left_window_size=left_window_size,
                      right_window_size=right_window_size, ctx=ctx)


# --- RotaryEmbedding ------------------------------------------------------------------------

@kernel("RotaryEmbedding", versions=(23,))
def rotary_embedding(X: np.ndarray, cos_cache: np.ndarray, sin_cache: np.ndarray,
                     position_ids: np.ndarray | None = None, *, interleaved: int = 0,
                     num_heads: int = 0, rotary_embedding_dim: int = 0) -> tuple[np.ndarray]:
    """Rotate (half-split or interleaved) pairs of the first rotary_embedding_dim features."""
    X = np.asarray(X)
    _check_float(X, "X")
    if X.ndim == 4:
        b, h, s, d = X.shape
        x = X.transpose(0, 2, 1, 3)  # (B, S, H, D) view
    elif X.ndim == 3:
        if not num_heads:
            raise ExecutionError("a 3-D input needs the num_heads attribute")
        b, s, hidden = X.shape
        if hidden % num_heads:
            raise ExecutionError(f"hidden size {hidden} is not a multiple of num_heads {num_heads}")
        d = hidden // num_heads
        x = X.reshape(b, s, num_heads, d)
    else:
        raise ExecutionError(f"X must be 3-D or 4-D, got shape {X.shape}")
    rd = int(rotary_embedding_dim) or d
    if rd > d or rd % 2:
        raise ExecutionError(f"rotary_embedding_dim {rd} must be even and at most the head "
                             f"size {d}")
    half = rd // 2
    cos, sin = np.asarray(cos_cache), np.asarray(sin_cache)
    if position_ids is not None:
        pos = np.asarray(position_ids)
        if pos.shape != (b, s):
            raise ExecutionError(f"position_ids has shape {pos.shape}; (batch {b}, sequence {s}) "
                                 f"expected")
        if cos.ndim != 2 or sin.shape != cos.shape:
            raise ExecutionError(f"with position_ids, cos_cache and sin_cache must be 2-D of one "
                                 f"shape, got {cos.shape} and {sin.shape}")
        pos = check_indices(pos, cos.shape[0], "position_ids")
        cos, sin = cos[pos], sin[pos]
    elif cos.shape != (b, s, cos.shape[-1] if cos.ndim == 3 else -1) or sin.shape != cos.shape:
        raise ExecutionError(f"without position_ids, cos_cache and sin_cache must be (batch {b}, "
                             f"sequence {s}, rotary_dim/2), got {cos.shape} and {sin.shape}")
    if cos.shape[-1] != half:
        raise ExecutionError(f"last dimension of cos_cache/sin_cache ({cos.shape[-1]}) does not "
                             f"match rotary_embedding_dim / 2 ({half})")
    cdt = np.float32
    c = cos.astype(cdt)[:, :, None, :]  # (B, S, 1, rd/2)
    sn = sin.astype(cdt)[:, :, None, :]
    out = x.astype(cdt)  # (B, S, H, D) copy; the rotated part is written in place
    if interleaved:
        x1 = out[..., 0:rd:2].copy()
        x2 = out[..., 1:rd:2].copy()
        out[..., 0:rd:2] = c * x1 - sn * x2
        out[..., 1:rd:2] = sn * x1 + c * x2
    else:
        x1 = out[..., :half].copy()
        x2 = out[..., half:rd].copy()
        out[..., :half] = c * x1 - sn * x2
        out[..., half:rd] = sn * x1 + c * x2
    out = out.astype(X.dtype, copy=False)
    if X.ndim == 4:
        return (np.ascontiguousarray(out.transpose(0, 2, 1, 3)),)
    return (out.reshape(X.shape),)


# --- LinearAttention ------------------------------------------------------------------------

_RULES = ("linear", "gated", "delta", "gated_delta")


@kernel("LinearAttention", versions=(27,))
def linear_attention(query: np.ndarray, key: np.ndarray, value: np.ndarray,
                     past_state: np.ndarray | None = None, decay: np.ndarray | None = None,
                     beta: np.ndarray | None = None, *, q_num_heads: int, kv_num_heads: int,
                     chunk_size: int = 64, scale: float = 0.0,
                     update_rule: str = "gated_delta") -> tuple[np.ndarray, np.ndarray]:
    """Recurrent linear attention (linear / gated / delta / gated_delta rules) with GQA.

    Runs the recurrence token by token, each step batched over (batch, kv heads); chunk_size
    is only a tuning hint of the spec and does not change the result.
    """
    if update_rule not in _RULES:
        raise ExecutionError(f"update_rule {update_rule!r} must be one of {', '.join(_RULES)}")
    query, key, value = np.asarray(query), np.asarray(key), np.asarray(value)
    for name, t in (("query", query), ("key", key), ("value", value)):
        _check_float(t, name)
        if t.ndim != 3:
            raise ExecutionError(f"{name} must be 3-D (B, T, H*D), got shape {t.shape}")
    hq, hkv = int(q_num_heads), int(kv_num_heads)
    if hq <= 0 or hkv <= 0 or hq % hkv:
        raise ExecutionError(f"q_num_heads {hq} must be a positive multiple of kv_num_heads {hkv}")
    b, t, qhd = query.shape
    if key.shape[:2] != (b, t) or value.shape[:2] != (b, t):
        raise ExecutionError(f"query {query.shape}, key {key.shape} and value {value.shape} must "
                             f"share batch and sequence dimensions")
    if qhd % hq or key.shape[2] % hkv or value.shape[2] % hkv:
        raise ExecutionError("hidden sizes must be multiples of their numbers of heads")
    dk, dv = qhd // hq, value.shape[2] // hkv
    if key.shape[2] // hkv != dk:
        raise ExecutionError(f"key head size {key.shape[2] // hkv} differs from query head "
                             f"size {dk}")
    g = hq // hkv
    cdt = compute_dtype(query.dtype)
    gated = update_rule in ("gated", "gated_delta")
    delta = update_rule in ("delta", "gated_delta")
    if gated and decay is None:
        raise ExecutionError(f"update_rule {update_rule!r} needs the decay input")
    if delta and beta is None:
        raise ExecutionError(f"update_rule {update_rule!r} needs the beta input")

    q = query.astype(cdt).reshape(b, t, hkv, g, dk)
    k = key.astype(cdt).reshape(b, t, hkv, dk)
    v = value.astype(cdt).reshape(b, t, hkv, dv)
    if past_state is not None:
        ps = np.asarray(past_state)
        if ps.shape != (b, hkv, dk, dv):
            raise ExecutionError(f"past_state has shape {ps.shape}; ({b}, {hkv}, {dk}, {dv}) "
                                 f"expected")
        state = ps.astype(cdt)  # a copy: updated in place below
        state_dt = ps.dtype
    else:
        state = np.zeros((b, hkv, dk, dv), dtype=cdt)
        state_dt = query.dtype
    dec = None
    if gated:
        dec = np.exp(np.asarray(decay).astype(cdt))
        if dec.shape == (b, t, hkv * dk):
            dec = dec.reshape(b, t, hkv, dk, 1)
        elif dec.shape == (b, t, hkv):
            dec = dec.reshape(b, t, hkv, 1, 1)
        else:
            raise ExecutionError(f"decay has shape {np.shape(decay)}; ({b}, {t}, {hkv * dk}) or "
                                 f"({b}, {t}, {hkv}) expected")
    bet = None
    if delta:
        bet = np.asarray(beta).astype(cdt)
        if bet.shape not in ((b, t, hkv), (b, t, 1)):
            raise ExecutionError(f"beta has shape {bet.shape}; ({b}, {t}, {hkv}) or ({b}, {t}, 1) "
                                 f"expected")
        bet = bet.reshape(b, t, -1, 1)
    sc = float(scale) if scale else 1.0 / math.sqrt(dk)

    out = np.empty((b, t, hkv, g, dv), dtype=cdt)
    for i in range(t):
        if dec is not None:
            state *= dec[:, i]
        kt, vt = k[:, i], v[:, i]  # (B, Hkv, dk), (B, Hkv, dv)
        if delta:
            # v - S^T k, with S already decayed for gated_delta.
            pred = np.matmul(kt[:, :, None, :], state)[:, :, 0, :]
            upd = (vt - pred) * bet[:, i]
        else:
            upd = vt
        state += kt[..., :, None] * upd[..., None, :]
        out[:, i] = np.matmul(q[:, i], state)  # (B, Hkv, G, dk) @ (B, Hkv, dk, dv)
    out *= sc
    return (out.reshape(b, t, hq * dv).astype(query.dtype, copy=False),
            state.astype(state_dt, copy=False))


# --- CausalConvWithState --------------------------------------------------------------------

@kernel("CausalConvWithState", versions=(27,))
def causal_conv_with_state(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
                           past_state: np.ndarray | None = None, *, activation: str = "none"
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Depthwise causal 1-D convolution over (past_state ++ input), optional fused SiLU."""
    x, w = np.asarray(input), np.asarray(weight)
    _check_float(x, "input")
    if activation not in ("none", "silu", "swish"):
        raise ExecutionError(f"activation {activation!r} must be one of none, silu, swish")
    if x.ndim != 3:
        raise ExecutionError(f"input must be (batch, channels, length), got shape {x.shape}")
    b, c, length = x.shape
    if w.ndim != 3 or w.shape[:2] != (c, 1) or w.shape[2] < 1:
        raise ExecutionError(f"weight has shape {w.shape}; ({c}, 1, k) expected")
    k = w.shape[2]
    cdt = compute_dtype(x.dtype)
    if past_state is not None:
        ps = np.asarray(past_state)
        if ps.shape != (b, c, k - 1):
            raise ExecutionError(f"past_state has shape {ps.shape}; ({b}, {c}, {k - 1}) expected")
        padded = np.concatenate([ps.astype(cdt), x.astype(cdt)], axis=2)
    else:
        padded = np.concatenate([np.zeros((b, c, k - 1), dtype=cdt), x.astype(cdt)], axis=2)
    wc = w.astype(cdt)[:, 0, :]  # (C, k)
    out = np.zeros((b, c, length), dtype=cdt)
    for i in range(k):  # k is a small kernel size: one vectorized pass per tap
        out += wc[:, i, None] * padded[:, :, i:i + length]
    if bias is not None:
        bb = np.asarray(bias)
        if bb.shape != (c,):
            raise ExecutionError(f"bias has shape {bb.shape}; ({c},) expected")
        out += bb.astype(cdt)[:, None]
    if activation in ("silu", "swish"):
        out = out / (1 + np.exp(-out))
    present = np.ascontiguousarray(padded[:, :, padded.shape[2] - (k - 1):])
    return out.astype(x.dtype, copy=False), present.astype(x.dtype, copy=False)


# --- FlexAttention (ai.onnx.preview) --------------------------------------------------------

@kernel("FlexAttention", versions=(1,), domain="ai.onnx.preview")
def flex_attention(Q: np.ndarray, K: np.ndarray, V: np.ndarray, *,
                   prob_mod: Subgraph | None = None, score_mod: Subgraph | None = None,
                   scale: float | None = None, softmax_precision: int | None = None,
                   ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """softmax(score_mod(Q K^T * scale)), then prob_mod, times V; GQA by contiguous head groups.

    A query row whose scores are all -inf after score_mod gets zero probabilities (as in
    Attention and PyTorch's flex_attention) rather than NaN.
    """
    Q, K, V = np.asarray(Q), np.asarray(K), np.asarray(V)
    for name, t in (("Q", Q), ("K", K), ("V", V)):
        _check_float(t, name)
        if t.ndim != 4:
            raise ExecutionError(f"{name} must be 4-D, got shape {t.shape}")
    b, hq, lq, d = Q.shape
    hkv, s = K.shape[1], K.shape[2]
    if K.shape[0] != b or V.shape[0] != b or K.shape[3] != d or V.shape[1:3] != (hkv, s):
        raise ExecutionError(f"shapes of Q {Q.shape}, K {K.shape} and V {V.shape} disagree")
    if hkv == 0 or hq % hkv:
        raise ExecutionError(f"q_num_heads {hq} must be a multiple of kv_num_heads {hkv}")
    if softmax_precision is not None:
        sdt = _softmax_dtype(softmax_precision)
    else:
        sdt = compute_dtype(Q.dtype)
    cdt = compute_dtype(sdt)
    if ctx is not None:
        check_alloc((b, hq, lq, s), cdt, ctx.max_tensor_bytes, "attention scores")
    if scale is None:
        scale = 1.0 / math.sqrt(d) if d else 1.0
    scores = grouped_qk(Q.astype(cdt), K.astype(cdt, copy=False))
    scores *= cdt.type(scale)
    if score_mod is not None:
        scores = _run_mod(score_mod, scores.astype(sdt, copy=False), "score_mod").astype(cdt)
    elif sdt != cdt:
        scores = scores.astype(sdt).astype(cdt)
    if s:
        softmax_lastaxis_(scores)
    probs = scores.astype(sdt, copy=False)
    if prob_mod is not None:
        probs = _run_mod(prob_mod, probs, "prob_mod")
    y = grouped_pv(np.asarray(probs).astype(cdt, copy=False), V.astype(cdt, copy=False))
    return (y.astype(Q.dtype, copy=False),)


def _run_mod(graph: Subgraph, x: np.ndarray, what: str) -> np.ndarray:
    res = graph(x)
    if len(res) != 1:
        raise ExecutionError(f"{what} must produce exactly one output, got {len(res)}")
    out = np.asarray(res[0])
    if out.shape != x.shape:
        raise ExecutionError(f"{what} changed the shape {x.shape} to {out.shape}; it must keep it")
    return out
