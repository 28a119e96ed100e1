"""Contrib attention: Attention, QAttention, MultiHeadAttention and RotaryEmbedding
(com.microsoft).

Masked keys get ``mask_filter_value`` (default -10000) added to their scores rather than -inf,
as onnxruntime does, so a query whose keys are all masked attends uniformly instead of
producing zeros. Scores and softmax are computed in float32 (float64 stays float64).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ops._attention import grouped_pv, grouped_qk, merge_heads, split_heads
from pyonnx.ops._common import check_alloc, compute_dtype, output_wanted
from pyonnx.ops._elementwise import FLOAT_TYPES, check_dtype
from pyonnx.ops.attention import rotary_embedding as _onnx_rotary_embedding
from pyonnx.ops.contrib.matmul import _int_matmul
from pyonnx.ops.registry import KernelContext, kernel

MS = "com.microsoft"
_DEFAULT_MASK_FILTER = -10000.0


def _keep_mask(op: str, mask: np.ndarray | None, b: int, s: int, t: int, past: int
               ) -> np.ndarray | None:
    """Which keys each query may see, as a bool array broadcastable to (B, 1, S, T).

    Formats: (B) key lengths (right padding); (2B) exclusive ends then inclusive starts (left
    padding); (B, T) and (B, S, T) raw masks, 0 meaning masked; (B, 1) or (1, 1), one value
    broadcast over every key, which mathematically changes nothing (None); (B, 1, M, M) a raw
    mask over a maximum length M of which rows past..past+S and columns 0..T are used.
    """
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype.kind not in "iu":
        raise ExecutionError(f"{op}: the mask must be int32, got {mask.dtype}")
    j = np.arange(t)
    if mask.ndim == 1:
        if mask.shape[0] == b:
            end = mask.astype(np.int64)[:, None]
            keep = j[None, :] < end
        elif mask.shape[0] == 2 * b:
            end = mask[:b].astype(np.int64)[:, None]
            start = mask[b:].astype(np.int64)[:, None]
            keep = (j[None, :] < end) & (j[None, :] >= start)
        elif mask.shape[0] == 3 * b + 2:
            raise UnsupportedOperatorError(
                f"{op}: a mask index of shape (3 * batch + 2) (cumulative sequence lengths of "
                f"packed inputs) is not supported; use a (batch) or (batch, total_sequence) mask")
        else:
            raise ExecutionError(f"{op}: a 1-D mask must have batch ({b}) or 2 * batch elements, "
                                 f"got {mask.shape[0]}")
        return keep[:, None, None, :]
    if mask.ndim == 2:
        if mask.shape != (b, t) and mask.shape[1] == 1 and mask.shape[0] in (1, b):
            # One value broadcast over every key masks all of them or none: the same constant
            # added to every score leaves the softmax as it is, so onnxruntime takes it as no
            # mask, and so do we.
            return None
        if mask.shape != (b, t):
            raise ExecutionError(f"{op}: a 2-D mask must be (batch {b}, total_sequence {t}), got "
                                 f"{mask.shape}")
        return (mask != 0)[:, None, None, :]
    if mask.ndim == 3:
        if mask.shape != (b, s, t):
            raise ExecutionError(f"{op}: a 3-D mask must be (batch {b}, sequence {s}, "
                                 f"total_sequence {t}), got {mask.shape}")
        return (mask != 0)[:, None, :, :]
    if mask.ndim == 4:
        if mask.shape[0] != b or mask.shape[1] != 1 or mask.shape[2] != mask.shape[3] \
                or mask.shape[3] < t:
            raise ExecutionError(f"{op}: a 4-D mask must be (batch {b}, 1, max_sequence, "
                                 f"max_sequence) with max_sequence >= {t}, got {mask.shape}")
        return mask[:, :, past:past + s, :t] != 0
    raise ExecutionError(f"{op}: mask of rank {mask.ndim} is not supported (1-D to 4-D)")


def _attend(op: str, q: np.ndarray, k: np.ndarray, v: np.ndarray, *, scale: float,
            keep: np.ndarray | None, unidirectional: int, past: int, mask_filter_value: float,
            attention_bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """softmax(scale * q k^T + bias + mask) v on (B, H, S, D) stacks in the compute type.

    Returns (output (B, S, H * Dv), scores before the softmax (B, H, S, T)).
    """
    b, h, s, _ = q.shape
    t = k.shape[2]
    scores = grouped_qk(q, k)
    scores *= scores.dtype.type(scale)
    if attention_bias is not None:
        ab = np.asarray(attention_bias)
        if ab.ndim != 4 or ab.shape[0] not in (1, b) or ab.shape[1] not in (1, h) \
                or ab.shape[2:] != (s, t):
            raise ExecutionError(f"{op}: attention_bias must be (batch {b} or 1, num_heads {h} or "
                                 f"1, sequence {s}, total_sequence {t}), got {ab.shape}")
        scores += ab.astype(scores.dtype, copy=False)
    if keep is not None:
        # Padding adds mask_filter_value, so a query whose keys are all padding attends evenly.
        scores += np.where(keep, scores.dtype.type(0), scores.dtype.type(mask_filter_value))
    if unidirectional:
        # A future key's score becomes the lowest finite value (it gets no weight). As in
        # onnxruntime, query i sees keys up to past + i and the last query row is left
        # unmasked: for self attention it has no future keys; for cross attention with more
        # keys than past + sequence it sees them all.
        future = np.arange(t)[None, :] > np.arange(s)[:, None] + past
        future[s - 1:] = False
        scores[..., future] = np.finfo(scores.dtype).min
    raw = scores.copy()
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return merge_heads(grouped_pv(scores, v)), raw


def _heads(x: np.ndarray, num_heads: int, what: str, op: str) -> np.ndarray:
    if x.shape[-1] % num_heads:
        raise ExecutionError(f"{op}: {what} hidden size {x.shape[-1]} is not a multiple of "
                             f"num_heads {num_heads}")
    return split_heads(x, num_heads)


def _check_num_heads(op: str, num_heads: int | None) -> int:
    if num_heads is None or num_heads <= 0:
        raise ExecutionError(f"{op}: attribute num_heads must be a positive integer, "
                             f"got {num_heads}")
    return int(num_heads)


@kernel("Attention", versions=(1,), domain=MS)
def attention(input: np.ndarray, weights: np.ndarray, bias: np.ndarray | None = None,
              mask_index: np.ndarray | None = None, past: np.ndarray | None = None,
              attention_bias: np.ndarray | None = None,
              past_sequence_length: np.ndarray | None = None, *, num_heads: int | None = None,
              unidirectional: int = 0, qkv_hidden_sizes: list[int] | None = None,
              scale: float | None = None, mask_filter_value: float = _DEFAULT_MASK_FILTER,
              past_present_share_buffer: int = 0, do_rotary: int = 0,
              rotary_embedding_dim: int = 0, ctx: KernelContext | None = None
              ) -> tuple[np.ndarray | None, ...]:
    """Self attention with the Q/K/V projections fused: [Q K V] = input @ weights + bias, split
    into num_heads heads, keys and values appended to ``past``; output (B, S, v_hidden) and
    ``present`` (2, B, H, total_sequence, head_size)."""
    op = "Attention"
    h = _check_num_heads(op, num_heads)
    if do_rotary:
        raise UnsupportedOperatorError(
            f"{op}: do_rotary=1 is not supported (onnxruntime's CPU kernel lacks it too); use "
            f"MultiHeadAttention with RotaryEmbedding")
    check_dtype(op, input, FLOAT_TYPES, "input")
    if input.ndim != 3:
        raise ExecutionError(f"{op}: input must be 3-D (batch, sequence, input_hidden), got "
                             f"{input.shape}")
    b, s, d_in = input.shape
    if weights.ndim != 2 or weights.shape[0] != d_in:
        raise ExecutionError(f"{op}: weights must be 2-D (input_hidden {d_in}, 3 * hidden), got "
                             f"{weights.shape}")
    total = weights.shape[1]
    if qkv_hidden_sizes:
        if len(qkv_hidden_sizes) != 3 or sum(qkv_hidden_sizes) != total \
                or min(qkv_hidden_sizes) <= 0:
            raise ExecutionError(f"{op}: qkv_hidden_sizes {list(qkv_hidden_sizes)} must be three "
                                 f"positive sizes adding up to the weights' {total} columns")
        dq, dk, dv = (int(x) for x in qkv_hidden_sizes)
    else:
        if total % 3:
            raise ExecutionError(f"{op}: weights have {total} columns, not divisible by 3; give "
                                 f"qkv_hidden_sizes")
        dq = dk = dv = total // 3
    if dq != dk:
        raise ExecutionError(f"{op}: Q and K hidden sizes must be equal, got {dq} and {dk}")
    for size, what in ((dq, "Q"), (dv, "V")):
        if size % h:
            raise ExecutionError(f"{op}: {what} hidden size {size} is not a multiple of num_heads "
                                 f"{h}")
    if bias is not None and bias.shape != (total,):
        raise ExecutionError(f"{op}: bias must have shape ({total},), got {bias.shape}")
    cdt = compute_dtype(input.dtype)
    x = input.astype(cdt, copy=False)
    qkv = x @ weights.astype(cdt, copy=False)
    if bias is not None:
        qkv += bias.astype(cdt, copy=False)
    return attend_projected(op, qkv, (dq, dk, dv), h, mask_index, past, attention_bias,
                            past_sequence_length, unidirectional=unidirectional, scale=scale,
                            mask_filter_value=mask_filter_value,
                            past_present_share_buffer=past_present_share_buffer,
                            out_dtype=input.dtype, ctx=ctx)


def attend_projected(op: str, qkv: np.ndarray, sizes: tuple[int, int, int], h: int,
                     mask_index: np.ndarray | None, past: np.ndarray | None,
                     attention_bias: np.ndarray | None,
                     past_sequence_length: np.ndarray | None, *, unidirectional: int,
                     scale: float | None, mask_filter_value: float,
                     past_present_share_buffer: int, out_dtype: np.dtype,
                     ctx: KernelContext | None) -> tuple[np.ndarray | None, ...]:
    """The attention of com.microsoft Attention after its fused projection: ``qkv``
    (B, S, dq + dk + dv) in the compute type is split into Q, K and V of ``h`` heads (``sizes``
    checked by the caller: dq == dk, each a multiple of h), keys and values are appended to
    ``past``, and the outputs are (output (B, S, dv), present (2, B, h, total_sequence,
    head_size) when the node has a second output) in ``out_dtype``. QAttention shares it: only
    its projection (an integer product) differs."""
    dq, dk, dv = sizes
    b, s = qkv.shape[:2]
    cdt = qkv.dtype
    q = split_heads(qkv[..., :dq], h)
    k = split_heads(qkv[..., dq:dq + dk], h)
    v = split_heads(qkv[..., dq + dk:], h)
    p = 0
    present_buf = None
    if past is not None:
        if dq != dv:
            raise ExecutionError(f"{op}: with past state, the Q, K and V hidden sizes must be "
                                 f"equal, got {dq}, {dk}, {dv}")
        hs = dq // h
        if past.ndim != 5 or past.shape[:3] != (2, b, h) or past.shape[4] != hs:
            raise ExecutionError(f"{op}: past must be (2, batch {b}, num_heads {h}, past_sequence, "
                                 f"head_size {hs}), got {past.shape}")
        pst = past.astype(cdt, copy=False)
        if past_present_share_buffer:
            if past_sequence_length is None or np.asarray(past_sequence_length).size != 1:
                raise ExecutionError(f"{op}: past_present_share_buffer needs a one-element "
                                     f"past_sequence_length input")
            p = int(np.asarray(past_sequence_length).reshape(-1)[0])
            if p < 0 or p + s > past.shape[3]:
                raise ExecutionError(f"{op}: past_sequence_length {p} plus sequence {s} exceeds "
                                     f"the shared buffer's {past.shape[3]} positions")
            present_buf = pst.copy()
            present_buf[0, :, :, p:p + s] = k
            present_buf[1, :, :, p:p + s] = v
            k, v = present_buf[0, :, :, :p + s], present_buf[1, :, :, :p + s]
        else:
            p = past.shape[3]
            k = np.concatenate([pst[0], k], axis=2)
            v = np.concatenate([pst[1], v], axis=2)
    t = k.shape[2]
    keep = _keep_mask(op, mask_index, b, s, t, p)
    sc = (1.0 / np.sqrt(dq // h)) if scale is None or scale == 0 else float(scale)
    out, _ = _attend(op, q, k, v, scale=sc, keep=keep, unidirectional=unidirectional, past=p,
                     mask_filter_value=mask_filter_value, attention_bias=attention_bias)
    result: list[np.ndarray | None] = [out.astype(out_dtype, copy=False)]
    if ctx is not None and ctx.num_outputs > 1:
        if not output_wanted(ctx, 1):
            result.append(None)
        elif present_buf is not None:
            result.append(present_buf.astype(out_dtype, copy=False))
        else:
            result.append(np.stack([k, v]).astype(out_dtype, copy=False))
    return tuple(result)


_Q8 = (np.dtype(np.uint8), np.dtype(np.int8))
_QFLOAT = (np.dtype(np.float32), np.dtype(np.float16))


def _q_param(op: str, p: np.ndarray | None, what: str, like: str, dtype: np.dtype,
             columns: int | None) -> np.ndarray | None:
    """A QAttention scale or zero point, checked: of ``dtype`` (input ``like``'s), a scalar
    or a one-element 1-D tensor, or (when ``columns`` is given) one value per column of
    weight. Returned as a scalar or a 1-D array, ready to broadcast over (..., columns)."""
    if p is None:
        return None
    p = np.asarray(p)
    if p.dtype != dtype:
        raise ExecutionError(f"{op}: {what} must be {dtype}, as {like} is, got {p.dtype}")
    if p.size == 1 and p.ndim <= 1:
        return p.reshape(())
    if columns is not None and p.shape == (columns,):
        return p
    per_column = f" or 1-D with one value per weight column ({columns})" if columns else ""
    raise ExecutionError(f"{op}: {what} must be a scalar{per_column}, got shape {p.shape}")


def qattention_kernel(int_matmul: Callable[..., np.ndarray]) -> Callable[..., tuple]:
    """The QAttention kernel with its exact integer accumulator from
    ``int_matmul(op, a, a_zp, b, b_zp)`` (as :func:`pyonnx.ops.contrib.matmul._int_matmul`):
    the reference passes that one (int64), the CPU provider its float32-GEMM route. Checks,
    scaling and the attention itself (:func:`attend_projected`, Attention's) are shared."""

    def qattention(input: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                   input_scale: np.ndarray, weight_scale: np.ndarray,
                   mask_index: np.ndarray | None = None,
                   input_zero_point: np.ndarray | None = None,
                   weight_zero_point: np.ndarray | None = None, past: np.ndarray | None = None,
                   *, num_heads: int | None = None, unidirectional: int = 0, do_rotary: int = 0,
                   past_present_share_buffer: int = 0,
                   mask_filter_value: float = _DEFAULT_MASK_FILTER, scale: float | None = None,
                   ctx: KernelContext | None = None) -> tuple[np.ndarray | None, ...]:
        """Attention whose fused Q/K/V projection is quantized:
        [Q K V] = ((input - input_zero_point) @ (weight - weight_zero_point)) (exact integers)
        * (input_scale * weight_scale) + bias, in float32, the weight's scale and zero point
        per tensor or per column; then Attention on it. Outputs output (B, S, hidden) and
        present (2, B, num_heads, total_sequence, head_size) in the type of bias."""
        op = "QAttention"
        h = _check_num_heads(op, num_heads)
        if do_rotary:
            raise UnsupportedOperatorError(
                f"{op}: do_rotary=1 is not supported (onnxruntime's CPU kernel ignores it); "
                f"leave it 0, or use MultiHeadAttention with RotaryEmbedding")
        for x, what in ((input, "input"), (weight, "weight")):
            if x.dtype not in _Q8:
                raise ExecutionError(f"{op}: {what} must be uint8 or int8, got {x.dtype}")
        if input.ndim != 3:
            raise ExecutionError(f"{op}: input must be 3-D (batch, sequence, input_hidden), got "
                                 f"{input.shape}")
        d_in = input.shape[2]
        if weight.ndim != 2 or weight.shape[0] != d_in:
            raise ExecutionError(f"{op}: weight must be 2-D (input_hidden {d_in}, 3 * hidden), "
                                 f"got {weight.shape}")
        total = weight.shape[1]
        hidden = total // 3
        if total % 3 or hidden == 0 or hidden % h:
            raise ExecutionError(f"{op}: weight has {total} columns; 3 * hidden with hidden a "
                                 f"positive multiple of num_heads {h} expected")
        if bias is None:
            raise ExecutionError(f"{op}: the bias input is required")
        fdt = bias.dtype
        if fdt not in _QFLOAT:
            raise ExecutionError(f"{op}: bias must be float32 or float16, got {fdt}")
        if bias.shape != (total,):
            raise ExecutionError(f"{op}: bias must have shape ({total},), got {bias.shape}")
        i_scale = _q_param(op, input_scale, "input_scale", "bias", fdt, None)
        w_scale = _q_param(op, weight_scale, "weight_scale", "bias", fdt, total)
        i_zp = _q_param(op, input_zero_point, "input_zero_point", "input", input.dtype, None)
        w_zp = _q_param(op, weight_zero_point, "weight_zero_point", "weight", weight.dtype,
                        total)
        if past is not None:
            if past.dtype != fdt:
                raise ExecutionError(f"{op}: past must be {fdt}, as bias is, got {past.dtype}")
            if past_present_share_buffer:
                # Attention reads the filled length of a shared buffer from its
                # past_sequence_length input, which QAttention does not have.
                raise ExecutionError(f"{op}: past_present_share_buffer=1 with past needs a "
                                     f"past_sequence_length input, which QAttention lacks; set "
                                     f"it to 0")
        if ctx is not None:
            check_alloc(input.shape[:2] + (total,), np.float64, ctx.max_tensor_bytes,
                        f"{op} projection")
        acc = int_matmul(op, input, i_zp, weight, w_zp)
        # onnxruntime multiplies the two scales first, in float32, then scales the exact
        # accumulator and adds the bias.
        mult = i_scale.astype(np.float32) * w_scale.astype(np.float32)
        qkv = acc.astype(np.float32) * mult
        qkv += bias.astype(np.float32)
        return attend_projected(op, qkv, (hidden, hidden, hidden), h, mask_index, past, None,
                                None, unidirectional=unidirectional, scale=scale,
                                mask_filter_value=mask_filter_value, past_present_share_buffer=0,
                                out_dtype=fdt, ctx=ctx)

    return qattention


qattention = kernel("QAttention", versions=(1,), domain=MS)(qattention_kernel(_int_matmul))


@kernel("MultiHeadAttention", versions=(1,), domain=MS)
def multi_head_attention(query: np.ndarray, key: np.ndarray | None = None,
                         value: np.ndarray | None = None, bias: np.ndarray | None = None,
                         key_padding_mask: np.ndarray | None = None,
                         attention_bias: np.ndarray | None = None,
                         past_key: np.ndarray | None = None, past_value: np.ndarray | None = None,
                         past_sequence_length: np.ndarray | None = None,
                         cache_indirection: np.ndarray | None = None, *,
                         num_heads: int | None = None, unidirectional: int = 0,
                         scale: float | None = None,
                         mask_filter_value: float = _DEFAULT_MASK_FILTER,
                         ctx: KernelContext | None = None) -> tuple[np.ndarray | None, ...]:
    """Multi-head self or cross attention on projected Q, K, V (separate, packed QKV
    (B, S, H, 3, D), packed KV (B, L, H, 2, D), or K/V already split into heads (B, H, L, D)),
    with an optional projection bias, key padding mask, attention bias and past key/value."""
    op = "MultiHeadAttention"
    h = _check_num_heads(op, num_heads)
    if cache_indirection is not None or past_sequence_length is not None:
        raise UnsupportedOperatorError(
            f"{op}: past_sequence_length / cache_indirection (decoder buffer sharing for beam "
            f"search) are not supported")
    check_dtype(op, query, FLOAT_TYPES, "query")
    cdt = compute_dtype(query.dtype)
    if query.ndim == 5:
        if key is not None or value is not None:
            raise ExecutionError(f"{op}: a packed QKV query (5-D) must come without key and value")
        b, s, hh, three, hs = query.shape
        if hh != h or three != 3:
            raise ExecutionError(f"{op}: packed QKV must be (batch, sequence, num_heads {h}, 3, "
                                 f"head_size), got {query.shape}")
        qkv = query.astype(cdt, copy=False)
        if bias is not None:
            if bias.shape != (3 * h * hs,):
                raise ExecutionError(f"{op}: bias must have shape ({3 * h * hs},), got {bias.shape}")
            qkv = qkv + bias.astype(cdt).reshape(3, h, hs).transpose(1, 0, 2)
        q = qkv[:, :, :, 0].transpose(0, 2, 1, 3)
        k = qkv[:, :, :, 1].transpose(0, 2, 1, 3)
        v = qkv[:, :, :, 2].transpose(0, 2, 1, 3)
        hsv = hs
    else:
        if query.ndim != 3:
            raise ExecutionError(f"{op}: query must be 3-D (batch, sequence, hidden) or packed "
                                 f"QKV 5-D, got {query.shape}")
        b, s, dq = query.shape
        if dq % h:
            raise ExecutionError(f"{op}: query hidden size {dq} is not a multiple of num_heads {h}")
        hs = dq // h
        if key is None:
            raise ExecutionError(f"{op}: key is required unless query is packed QKV")
        q = query.astype(cdt, copy=False)
        bq = bk = bv = None
        if bias is not None:
            if bias.ndim != 1 or bias.shape[0] < 2 * dq:
                raise ExecutionError(f"{op}: bias must be 1-D (hidden + hidden + v_hidden), got "
                                     f"{bias.shape}")
            bf = bias.astype(cdt)
            bq, bk, bv = bf[:dq], bf[dq:2 * dq], bf[2 * dq:]
            q = q + bq
        q = split_heads(q, h)
        if key.ndim == 5:
            if value is not None:
                raise ExecutionError(f"{op}: a packed KV key (5-D) must come without value")
            if key.shape[0] != b or key.shape[2:4] != (h, 2) or key.shape[4] != hs:
                raise ExecutionError(f"{op}: packed KV must be (batch {b}, kv_sequence, num_heads "
                                     f"{h}, 2, head_size {hs}), got {key.shape}")
            kv = key.astype(cdt, copy=False)
            if bk is not None:
                kv = kv + np.stack([bk.reshape(h, hs), bv.reshape(h, hs)], axis=1)
            k = kv[:, :, :, 0].transpose(0, 2, 1, 3)
            v = kv[:, :, :, 1].transpose(0, 2, 1, 3)
            hsv = hs
        elif key.ndim == 4:
            # Cross attention with K and V already projected and split into heads (BNSH): the
            # bias was applied by whoever produced them.
            if value is None or value.ndim != 4:
                raise ExecutionError(f"{op}: a 4-D key (batch, num_heads, kv_sequence, head_size) "
                                     f"needs a 4-D value")
            if key.shape[:2] != (b, h) or key.shape[3] != hs or value.shape[:3] != key.shape[:3]:
                raise ExecutionError(f"{op}: key {key.shape} and value {value.shape} must be "
                                     f"(batch {b}, num_heads {h}, kv_sequence, head_size {hs})")
            k = key.astype(cdt, copy=False)
            v = value.astype(cdt, copy=False)
            hsv = value.shape[3]
        elif key.ndim == 3:
            if value is None or value.ndim != 3:
                raise ExecutionError(f"{op}: a 3-D key needs a 3-D value")
            if key.shape != (b, key.shape[1], dq) or value.shape[:2] != key.shape[:2]:
                raise ExecutionError(f"{op}: key {key.shape} must be (batch {b}, kv_sequence, "
                                     f"{dq}) and value (batch, kv_sequence, v_hidden), got value "
                                     f"{value.shape}")
            kk = key.astype(cdt, copy=False)
            vv = value.astype(cdt, copy=False)
            if bk is not None:
                if bv.shape[0] != value.shape[2]:
                    raise ExecutionError(f"{op}: bias has {bias.shape[0]} elements; hidden + hidden "
                                         f"+ v_hidden = {2 * dq + value.shape[2]} expected")
                kk = kk + bk
                vv = vv + bv
            k = _heads(kk, h, "key", op)
            v = _heads(vv, h, "value", op)
            hsv = v.shape[3]
        else:
            raise ExecutionError(f"{op}: key must be 3-D, 4-D or packed KV 5-D, got {key.shape}")
    p = 0
    if (past_key is None) != (past_value is None):
        raise ExecutionError(f"{op}: past_key and past_value must be given together")
    if past_key is not None:
        if past_key.ndim != 4 or past_key.shape[:2] != (b, h) or past_key.shape[3] != hs \
                or past_value.shape[:3] != past_key.shape[:3] or past_value.shape[3] != hsv:
            raise ExecutionError(f"{op}: past_key {past_key.shape} / past_value {past_value.shape} "
                                 f"must be (batch {b}, num_heads {h}, past_sequence, head_size)")
        p = past_key.shape[2]
        k = np.concatenate([past_key.astype(cdt, copy=False), k], axis=2)
        v = np.concatenate([past_value.astype(cdt, copy=False), v], axis=2)
    t = k.shape[2]
    keep = _keep_mask(op, key_padding_mask, b, s, t, p)
    sc = (1.0 / np.sqrt(hs)) if scale is None or scale == 0 else float(scale)
    out, raw = _attend(op, q, k, v, scale=sc, keep=keep, unidirectional=unidirectional, past=p,
                       mask_filter_value=mask_filter_value, attention_bias=attention_bias)
    result: list[np.ndarray | None] = [out.astype(query.dtype, copy=False)]
    n = ctx.num_outputs if ctx is not None else 1
    if n > 1:
        result.append(k.astype(query.dtype) if output_wanted(ctx, 1) else None)
    if n > 2:
        result.append(v.astype(query.dtype) if output_wanted(ctx, 2) else None)
    if n > 3:
        result.append(raw.astype(query.dtype) if output_wanted(ctx, 3) else None)
    return tuple(result)


@kernel("RotaryEmbedding", versions=(1,), domain=MS)
def rotary_embedding(input: np.ndarray, position_ids: np.ndarray, cos_cache: np.ndarray,
                     sin_cache: np.ndarray, *, interleaved: int = 0, num_heads: int = 0,
                     rotary_embedding_dim: int = 0, is_packed_batching: int = 0,
                     scale: float = 1.0) -> tuple[np.ndarray]:
    """Rotate pairs of features of each head by the cached angles of its position.

    position_ids is (batch, sequence), or one element: the position of the first token, the
    following tokens taking the next positions. Without num_heads, the head size is twice the
    cache width. Pairs are (x[i], x[i + rd/2]), or adjacent features when interleaved.
    """
    op = "RotaryEmbedding"
    if is_packed_batching:
        raise UnsupportedOperatorError(f"{op}: is_packed_batching=1 (ragged batches) is not "
                                       f"supported")
    check_dtype(op, input, FLOAT_TYPES, "input")
    if input.ndim == 4:
        b, _, s, _ = input.shape
    elif input.ndim == 3:
        b, s, hidden = input.shape
    else:
        raise ExecutionError(f"{op}: input must be 3-D or 4-D, got shape {input.shape}")
    if cos_cache.ndim != 2 or sin_cache.shape != cos_cache.shape:
        raise ExecutionError(f"{op}: cos_cache and sin_cache must be 2-D of one shape, got "
                             f"{cos_cache.shape} and {sin_cache.shape}")
    pos = np.asarray(position_ids)
    if pos.size == 1 and pos.ndim <= 1:
        start = int(pos.reshape(-1)[0])
        pos = np.broadcast_to(start + np.arange(s, dtype=np.int64), (b, s))
    elif pos.shape != (b, s):
        raise ExecutionError(f"{op}: position_ids must have one element or shape (batch {b}, "
                             f"sequence {s}), got {pos.shape}")
    rd = int(rotary_embedding_dim)
    heads = int(num_heads)
    if input.ndim == 3 and not heads:
        head_size = 2 * cos_cache.shape[1]
        if rd:
            raise ExecutionError(f"{op}: rotary_embedding_dim needs the num_heads attribute")
        if hidden % head_size:
            raise ExecutionError(f"{op}: hidden size {hidden} is not a multiple of the head size "
                                 f"{head_size} given by the caches (2 * {cos_cache.shape[1]})")
        heads = hidden // head_size
    if not rd:
        rd = 2 * cos_cache.shape[1]
    return _onnx_rotary_embedding(input, cos_cache, sin_cache, pos, interleaved=interleaved,
                                  num_heads=heads, rotary_embedding_dim=rd)
