"""Attention, RotaryEmbedding, LinearAttention, CausalConvWithState, FlexAttention: semantics the
backend suite misses, error paths, streaming consistency and agreement with onnxruntime."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyonnx.errors import ExecutionError
from tests.ops._oracle import normal_f32, run_ort
from tests.ops._oracle import context as ctx
from tests.ops._oracle import kernel as k

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(42)
f32 = normal_f32(RNG)


def naive_attention(q, k_, v, bias=None, scale=None):
    """Per-head loop reference: softmax(q k^T * scale + bias) v, with GQA by head groups."""
    b, hq, sq, d = q.shape
    hkv = k_.shape[1]
    scale = 1 / math.sqrt(d) if scale is None else scale
    out = np.zeros((b, hq, sq, v.shape[3]), np.float64)
    for bi in range(b):
        for h in range(hq):
            s = q[bi, h].astype(np.float64) @ k_[bi, h // (hq // hkv)].T.astype(np.float64) * scale
            if bias is not None:
                s = s + np.broadcast_to(bias, (b, hq) + s.shape)[bi, h]
            p = np.exp(s - s.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            out[bi, h] = p @ v[bi, h // (hq // hkv)]
    return out


# --- Attention -----------------------------------------------------------------------------

@pytest.mark.parametrize("hq,hkv", [(4, 4), (8, 2), (6, 1)])
def test_attention_gqa_matches_naive(hq, hkv):
    q, kk, v = f32(2, hq, 5, 16), f32(2, hkv, 7, 16), f32(2, hkv, 7, 12)
    (y,) = k("Attention", 23)(q, kk, v)
    np.testing.assert_allclose(y, naive_attention(q, kk, v), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset", [23, 24])
@pytest.mark.parametrize("case", ["plain", "causal_past", "bool_mask_3d", "float_mask_gqa"])
def test_attention_matches_onnxruntime(case, opset):
    b, sq, skv, past = 2, 4, 4, 3
    attrs: dict = {}
    feeds: dict = {}
    if case == "plain":
        feeds = {"Q": f32(b, 4, sq, 8), "K": f32(b, 4, skv, 8), "V": f32(b, 4, skv, 8)}
    elif case == "causal_past":
        feeds = {"Q": f32(b, 2, sq, 8), "K": f32(b, 2, skv, 8), "V": f32(b, 2, skv, 8),
                 "attn_mask": None, "past_key": f32(b, 2, past, 8),
                 "past_value": f32(b, 2, past, 8)}
        attrs = {"is_causal": 1}
    elif case == "bool_mask_3d":
        feeds = {"Q": f32(b, sq, 24), "K": f32(b, skv, 24), "V": f32(b, skv, 24),
                 "attn_mask": RNG.random((sq, skv)) > 0.3}
        feeds["attn_mask"][:, 0] = True
        attrs = {"q_num_heads": 3, "kv_num_heads": 3}
    else:
        feeds = {"Q": f32(b, 6, sq, 8), "K": f32(b, 2, skv, 8), "V": f32(b, 2, skv, 8),
                 "attn_mask": f32(b, 1, sq, skv)}
        attrs = {"scale": 0.3}
    n_out = 3 if case == "causal_past" else 1
    got = k("Attention", opset)(*feeds.values(), **attrs, ctx=ctx(n_out))
    ref = run_ort("Attention", feeds, opset=opset, outputs=n_out, **attrs)
    assert len(got) == n_out
    for g, r in zip(got, ref):
        assert g.dtype == r.dtype and g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)


def test_attention_fully_masked_row_is_zero_and_mode3():
    q, kk, v = f32(1, 2, 3, 4), f32(1, 2, 3, 4), f32(1, 2, 3, 4)
    mask = np.ones((3, 3), bool)
    mask[1] = False
    y, _, _, p = k("Attention", 23)(q, kk, v, mask, qk_matmul_output_mode=3, ctx=ctx(4))
    assert np.all(y[:, :, 1] == 0) and np.all(p[:, :, 1] == 0)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(p[:, :, [0, 2]].sum(-1), 1, rtol=1e-6)


def test_attention_qk_output_modes():
    q, kk, v = f32(1, 1, 2, 4), f32(1, 1, 3, 4), f32(1, 1, 3, 4)
    mask = f32(2, 3)
    raw = (q[0, 0] @ kk[0, 0].T) / 2.0
    for mode, expect in [(0, raw), (1, 1.5 * np.tanh(raw / 1.5)),
                         (2, 1.5 * np.tanh(raw / 1.5) + mask)]:
        out = k("Attention", 23)(q, kk, v, mask, softcap=1.5, qk_matmul_output_mode=mode,
                                 ctx=ctx(4, (True, False, False, True)))
        np.testing.assert_allclose(out[3][0, 0], expect, rtol=1e-5, atol=1e-6)


def test_attention_nonpad_and_short_mask():
    q, kk, v = f32(2, 2, 1, 8), f32(2, 2, 6, 8), f32(2, 2, 6, 8)
    nonpad = np.array([3, 6], np.int64)
    (y,) = k("Attention", 24)(q, kk, v, None, None, None, nonpad, is_causal=1)
    # decode step: query 0 sits at position nonpad-1 and sees keys 0..nonpad-1
    for bi, n in enumerate(nonpad):
        ref = naive_attention(q[bi:bi + 1], kk[bi:bi + 1, :, :n], v[bi:bi + 1, :, :n])
        np.testing.assert_allclose(y[bi:bi + 1], ref, rtol=1e-5, atol=1e-6)
    # A mask shorter than the keys pads with -inf (v24), and is refused by v23.
    short = np.zeros((1, 4), np.float32)
    (y,) = k("Attention", 24)(q, kk, v, short)
    np.testing.assert_allclose(y, naive_attention(q, kk[:, :, :4], v[:, :, :4]), rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ExecutionError, match="last dimension 4 does not match the total"):
        k("Attention", 23)(q, kk, v, short)
    with pytest.raises(ExecutionError, match=r"nonpad_kv_seqlen \[7, 1\] must lie in \[0, 6\]"):
        k("Attention", 24)(q, kk, v, None, None, None, np.array([7, 1], np.int64))


def test_attention_sliding_window_v25():
    q, kk, v = f32(1, 1, 5, 4), f32(1, 1, 5, 4), f32(1, 1, 5, 4)
    (y,) = k("Attention", 25)(q, kk, v, left_window_size=1, right_window_size=0)
    i, j = np.arange(5)[:, None], np.arange(5)[None, :]
    bias = np.where((j <= i) & (j >= i - 1), 0.0, -np.inf)
    np.testing.assert_allclose(y, naive_attention(q, kk, v, bias), rtol=1e-5, atol=1e-6)


def test_attention_half_types_keep_dtype():
    q, kk, v = f32(1, 2, 3, 8), f32(1, 2, 4, 8), f32(1, 2, 4, 8)
    (y16,) = k("Attention", 23)(q.astype(np.float16), kk.astype(np.float16), v.astype(np.float16))
    assert y16.dtype == np.float16
    np.testing.assert_allclose(y16.astype(np.float32), naive_attention(q, kk, v), atol=3e-3)


def test_attention_errors():
    att = k("Attention", 23)
    with pytest.raises(ExecutionError, match="need the q_num_heads and kv_num_heads"):
        att(f32(1, 2, 8), f32(1, 2, 8), f32(1, 2, 8))
    with pytest.raises(ExecutionError, match="q_num_heads 3 must be a multiple of kv_num_heads 2"):
        att(f32(1, 3, 2, 4), f32(1, 2, 2, 4), f32(1, 2, 2, 4))
    with pytest.raises(ExecutionError, match="past_key and past_value must be given together"):
        att(f32(1, 2, 2, 4), f32(1, 2, 2, 4), f32(1, 2, 2, 4), None, f32(1, 2, 1, 4))
    with pytest.raises(ExecutionError, match="does not broadcast"):
        att(f32(1, 2, 2, 4), f32(1, 2, 3, 4), f32(1, 2, 3, 4), f32(3, 2, 3))


def test_attention_does_not_mutate_or_alias_inputs():
    q, kk, v = f32(1, 2, 3, 4), f32(1, 2, 3, 4), f32(1, 2, 3, 4)
    copies = [a.copy() for a in (q, kk, v)]
    y, pk, pv = k("Attention", 23)(q, kk, v, is_causal=1, softcap=2.0, ctx=ctx(3))
    for a, c in zip((q, kk, v), copies):
        np.testing.assert_array_equal(a, c)
    assert not np.shares_memory(pk, kk) and not np.shares_memory(pv, v)


# --- RotaryEmbedding -----------------------------------------------------------------------

@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("rotary_dim", [0, 4])
@pytest.mark.parametrize("three_d", [False, True])
def test_rotary_matches_onnxruntime(interleaved, rotary_dim, three_d):
    b, h, s, d = 2, 3, 5, 8
    x = f32(b, s, h * d) if three_d else f32(b, h, s, d)
    half = (rotary_dim or d) // 2
    theta = np.arange(16)[:, None] * (0.5 ** np.arange(half))[None, :]
    cos, sin = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
    pos = RNG.integers(0, 16, (b, s)).astype(np.int64)
    attrs = {"interleaved": interleaved}
    if rotary_dim:
        attrs["rotary_embedding_dim"] = rotary_dim
    if three_d:
        attrs["num_heads"] = h
    (y,) = k("RotaryEmbedding", 23)(x, cos, sin, pos, **attrs)
    (ref,) = run_ort("RotaryEmbedding", {"X": x, "cos": cos, "sin": sin, "pos": pos}, opset=23,
                     **attrs)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


def test_rotary_position_ids_checked():
    x = f32(1, 1, 2, 4)
    cos = sin = np.ones((3, 2), np.float32)
    with pytest.raises(ExecutionError, match="position_ids contains 3"):
        k("RotaryEmbedding", 23)(x, cos, sin, np.array([[0, 3]], np.int64))
    with pytest.raises(ExecutionError, match="does not match rotary_embedding_dim / 2"):
        k("RotaryEmbedding", 23)(x, np.ones((3, 1), np.float32), np.ones((3, 1), np.float32),
                                 np.array([[0, 1]], np.int64))


# --- LinearAttention -----------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
def test_linear_attention_prefill_then_decode_equals_full(rule):
    b, t, hq, hkv, dk, dv = 2, 6, 4, 2, 4, 3
    q, kk, v = f32(b, t, hq * dk), f32(b, t, hkv * dk), f32(b, t, hkv * dv)
    kk /= np.linalg.norm(kk.reshape(b, t, hkv, dk), axis=-1).repeat(dk, -1).reshape(b, t, -1)
    decay = -np.abs(f32(b, t, hkv * dk)) if rule.startswith("gated") else None
    beta = 1 / (1 + np.exp(-f32(b, t, hkv))) if "delta" in rule else None
    la = k("LinearAttention", 27)
    attrs = dict(q_num_heads=hq, kv_num_heads=hkv, update_rule=rule)
    full, state = la(q, kk, v, None, decay, beta, **attrs)
    sl = lambda a, lo, hi: None if a is None else a[:, lo:hi]  # noqa: E731
    part1, st1 = la(q[:, :4], kk[:, :4], v[:, :4], None, sl(decay, 0, 4), sl(beta, 0, 4), **attrs)
    part2, st2 = la(q[:, 4:], kk[:, 4:], v[:, 4:], st1, sl(decay, 4, 6), sl(beta, 4, 6), **attrs)
    np.testing.assert_allclose(np.concatenate([part1, part2], 1), full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(st2, state, rtol=1e-5, atol=1e-6)


def test_linear_attention_linear_rule_closed_form():
    b, t, h, d = 1, 5, 2, 4
    q, kk, v = f32(b, t, h * d), f32(b, t, h * d), f32(b, t, h * d)
    out, state = k("LinearAttention", 27)(q, kk, v, q_num_heads=h, kv_num_heads=h,
                                          update_rule="linear", scale=0.5)
    q4, k4, v4 = (a.reshape(b, t, h, d).transpose(0, 2, 1, 3) for a in (q, kk, v))
    scores = np.tril(q4 @ k4.transpose(0, 1, 3, 2))  # causal, no softmax
    ref = (0.5 * scores @ v4).transpose(0, 2, 1, 3).reshape(b, t, h * d)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state, k4.transpose(0, 1, 3, 2) @ v4, rtol=1e-5, atol=1e-5)


def test_linear_attention_errors():
    la = k("LinearAttention", 27)
    x = f32(1, 2, 8)
    with pytest.raises(ExecutionError, match="needs the decay input"):
        la(x, x, x, q_num_heads=2, kv_num_heads=2, update_rule="gated")
    with pytest.raises(ExecutionError, match="update_rule 'nope'"):
        la(x, x, x, q_num_heads=2, kv_num_heads=2, update_rule="nope")
    with pytest.raises(ExecutionError, match="positive multiple"):
        la(x, x, x, q_num_heads=2, kv_num_heads=3, update_rule="linear")


# --- CausalConvWithState -------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["none", "silu"])
def test_causal_conv_streaming_equals_full(activation):
    b, c, length, kw = 2, 3, 9, 4
    x, w, bias = f32(b, c, length), f32(c, 1, kw), f32(c)
    conv = k("CausalConvWithState", 27)
    full, st = conv(x, w, bias, activation=activation)
    y1, s1 = conv(x[:, :, :2], w, bias, activation=activation)  # shorter than k - 1
    y2, s2 = conv(x[:, :, 2:], w, bias, s1, activation=activation)
    np.testing.assert_allclose(np.concatenate([y1, y2], 2), full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s2, st, rtol=1e-6)
    # Direct definition: depthwise conv over zero-padded input.
    xp = np.concatenate([np.zeros((b, c, kw - 1), np.float32), x], 2)
    ref = np.stack([(xp[:, :, i:i + kw] * w[:, 0]).sum(-1) for i in range(length)], -1) + \
        bias[:, None]
    if activation == "silu":
        ref = ref / (1 + np.exp(-ref))
    np.testing.assert_allclose(full, ref, rtol=1e-5, atol=1e-6)


def test_causal_conv_errors():
    with pytest.raises(ExecutionError, match="weight has shape"):
        k("CausalConvWithState", 27)(f32(1, 2, 3), f32(3, 1, 2))
    with pytest.raises(ExecutionError, match="past_state has shape"):
        k("CausalConvWithState", 27)(f32(1, 2, 3), f32(2, 1, 3), None, f32(1, 2, 1))


# --- FlexAttention -------------------------------------------------------------------------

class _Fn:
    """A Subgraph stand-in: a Python function of one tensor."""

    def __init__(self, fn):
        self.fn = fn
        self.input_names, self.output_names = ["x"], ["y"]

    def __call__(self, *inputs):
        return [self.fn(*inputs)]


def test_flex_attention_plain_equals_attention():
    q, kk, v = f32(2, 4, 3, 8), f32(2, 2, 5, 8), f32(2, 2, 5, 6)
    (y,) = k("FlexAttention", 1, "ai.onnx.preview")(q, kk, v)
    (ref,) = k("Attention", 23)(q, kk, v)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


def test_flex_attention_score_mod_causal_and_prob_mod():
    q, kk, v = f32(1, 2, 4, 8), f32(1, 2, 4, 8), f32(1, 2, 4, 8)
    causal = _Fn(lambda s: np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf))
    seen = []
    probe = _Fn(lambda p: (seen.append(p.dtype), p)[1])
    (y,) = k("FlexAttention", 1, "ai.onnx.preview")(q, kk, v, score_mod=causal, prob_mod=probe)
    (ref,) = k("Attention", 23)(q, kk, v, is_causal=1)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    assert seen == [np.float32]
    bad = _Fn(lambda s: s[..., :1])
    with pytest.raises(ExecutionError, match="score_mod changed the shape"):
        k("FlexAttention", 1, "ai.onnx.preview")(q, kk, v, score_mod=bad)
