"""com.microsoft Attention, MultiHeadAttention and RotaryEmbedding against onnxruntime.

Formats onnxruntime's CPU kernels lack (packed QKV / KV for MultiHeadAttention, a shared
past/present buffer and 4-D masks for Attention) are compared with the equivalent unpacked
inputs run in onnxruntime.
"""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import UnsupportedOperatorError
from pyonnx.ops.contrib.attention import attention, multi_head_attention
from pyonnx.ops.registry import KernelContext
from tests.contrib._compare import assert_close, compare

R = np.random.default_rng(2)
B, S, H, HS = 2, 4, 2, 4
D = H * HS
DIN = 6
X = R.standard_normal((B, S, DIN)).astype(np.float32)
W = (R.standard_normal((DIN, 3 * D)) * 0.5).astype(np.float32)
BIAS = R.standard_normal(3 * D).astype(np.float32)

MASKS = {
    "none": None,
    "lengths": np.array([2, 4], np.int32),
    "end_start": np.array([3, 4, 1, 0], np.int32),
    "raw2d": np.array([[1, 1, 0, 1], [0, 0, 0, 0]], np.int32),
    "raw3d": R.integers(0, 2, (B, S, S)).astype(np.int32),
}


@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("unidirectional", [0, 1])
def test_attention_masks(mask: str, unidirectional: int) -> None:
    compare("Attention", [("x", X), ("w", W), ("b", BIAS), ("m", MASKS[mask])],
            attrs={"num_heads": H, "unidirectional": unidirectional})


def test_attention_attributes() -> None:
    compare("Attention", [("x", X), ("w", W), ("b", BIAS), ("m", MASKS["raw2d"])],
            attrs={"num_heads": H, "mask_filter_value": -1.0, "scale": 0.3})
    w2 = R.standard_normal((DIN, 4 * D)).astype(np.float32)
    compare("Attention", [("x", X), ("w", w2)], attrs={"num_heads": H, "qkv_hidden_sizes": [D, D, 2 * D]})
    ab = R.standard_normal((1, H, S, S)).astype(np.float32)
    compare("Attention", [("x", X), ("w", W), ("b", None), ("m", None), ("past", None), ("ab", ab)],
            attrs={"num_heads": H})
    compare("Attention", [("x", X.astype(np.float16)), ("w", W.astype(np.float16)),
                          ("b", BIAS.astype(np.float16))], attrs={"num_heads": H},
            rtol=1e-2, atol=1e-2)


def test_attention_past_present() -> None:
    past = R.standard_normal((2, B, H, 3, HS)).astype(np.float32)
    mask = R.integers(0, 2, (B, S + 3)).astype(np.int32)
    compare("Attention", [("x", X), ("w", W), ("b", BIAS), ("m", mask), ("past", past)], n_out=2,
            attrs={"num_heads": H, "unidirectional": 1})
    compare("Attention", [("x", X), ("w", W), ("b", BIAS), ("m", np.array([5, 7], np.int32)),
                          ("past", past)], n_out=2, attrs={"num_heads": H})


def test_attention_shared_buffer_and_4d_mask() -> None:
    """A shared past/present buffer and a 4-D mask equal their plain forms (onnxruntime runs
    only those on CPU)."""
    p, m = 3, 10
    buf = R.standard_normal((2, B, H, m, HS)).astype(np.float32)
    ctx = KernelContext(num_outputs=2, outputs_used=(True, True))
    out, present = attention(X, W, BIAS, None, buf, None, np.array(p, np.int32), num_heads=H,
                             unidirectional=1, past_present_share_buffer=1, ctx=ctx)
    ref = compare("Attention", [("x", X), ("w", W), ("b", BIAS), ("m", None),
                                ("past", buf[:, :, :, :p].copy())], n_out=2,
                  attrs={"num_heads": H, "unidirectional": 1})
    assert_close(ref[0], out)
    assert present.shape == buf.shape
    assert_close(ref[1], present[:, :, :, :p + S])
    np.testing.assert_array_equal(present[:, :, :, p + S:], buf[:, :, :, p + S:])
    raw = MASKS["raw3d"]
    mask4 = np.zeros((B, 1, 6, 6), np.int32)
    mask4[:, 0, :S, :S] = raw
    (out4,) = attention(X, W, BIAS, mask4, num_heads=H)
    (out3,) = attention(X, W, BIAS, raw, num_heads=H)
    np.testing.assert_array_equal(out4, out3)


def test_attention_unsupported() -> None:
    with pytest.raises(UnsupportedOperatorError, match="do_rotary"):
        attention(X, W, num_heads=H, do_rotary=1)
    with pytest.raises(UnsupportedOperatorError, match="3 \\* batch"):
        attention(X, W, None, np.zeros(3 * B + 2, np.int32), num_heads=H)


L = 5
Q = R.standard_normal((B, S, D)).astype(np.float32)
K = R.standard_normal((B, L, D)).astype(np.float32)
V = R.standard_normal((B, L, 2 * D)).astype(np.float32)
B3 = R.standard_normal(4 * D).astype(np.float32)
KPM = {
    "none": None,
    "lengths": np.array([2, 5], np.int32),
    "raw2d": R.integers(0, 2, (B, L)).astype(np.int32),
    "raw3d": R.integers(0, 2, (B, S, L)).astype(np.int32),
}


@pytest.mark.parametrize("mask", list(KPM))
@pytest.mark.parametrize("unidirectional", [0, 1])
def test_multi_head_attention(mask: str, unidirectional: int) -> None:
    compare("MultiHeadAttention", [("q", Q), ("k", K), ("v", V), ("b", B3), ("m", KPM[mask])],
            n_out=4, attrs={"num_heads": H, "unidirectional": unidirectional},
            output_types={3: np.float32})


def test_multi_head_attention_bias_past_scale() -> None:
    ab = R.standard_normal((B, 1, S, L)).astype(np.float32)
    compare("MultiHeadAttention", [("q", Q), ("k", K), ("v", V), ("b", None), ("m", None), ("ab", ab)],
            attrs={"num_heads": H, "scale": 0.5, "mask_filter_value": -100.0})
    kh = R.standard_normal((B, H, L, HS)).astype(np.float32)
    compare("MultiHeadAttention", [("q", Q), ("k", kh), ("v", kh * 2)], attrs={"num_heads": H})
    pk = R.standard_normal((B, H, 3, HS)).astype(np.float32)
    kq = R.standard_normal((B, S, D)).astype(np.float32)
    compare("MultiHeadAttention", [("q", Q), ("k", kq), ("v", kq * 3), ("b", B3[:3 * D]), ("m", None),
                                   ("ab", None), ("pk", pk), ("pv", pk * 2)], n_out=3,
            attrs={"num_heads": H, "unidirectional": 1})


def test_multi_head_attention_packed() -> None:
    """Packed QKV (B, S, H, 3, D) and packed KV (B, L, H, 2, D) equal the separate inputs."""
    k, v = K, V[..., :D]
    bias = B3[:3 * D]
    ctx = KernelContext(num_outputs=1, outputs_used=(True,))
    ref = compare("MultiHeadAttention", [("q", Q), ("k", Q * 0.5), ("v", Q * 2), ("b", bias)],
                  attrs={"num_heads": H})[0]
    packed = np.stack([Q.reshape(B, S, H, HS), (Q * 0.5).reshape(B, S, H, HS),
                       (Q * 2).reshape(B, S, H, HS)], axis=3)
    (got,) = multi_head_attention(packed, None, None, bias, num_heads=H, ctx=ctx)
    assert_close(ref, got, what="packed QKV")
    ref = compare("MultiHeadAttention", [("q", Q), ("k", k), ("v", v), ("b", bias)],
                  attrs={"num_heads": H})[0]
    packed_kv = np.stack([k.reshape(B, L, H, HS), v.reshape(B, L, H, HS)], axis=3)
    (got,) = multi_head_attention(Q, packed_kv, None, bias, num_heads=H, ctx=ctx)
    assert_close(ref, got, what="packed KV")


COS = R.standard_normal((16, HS // 2 * 2)).astype(np.float32)
SIN = R.standard_normal((16, HS // 2 * 2)).astype(np.float32)


@pytest.mark.parametrize("interleaved", [0, 1])
def test_rotary_embedding(interleaved: int) -> None:
    hs = 8
    cos, sin = COS[:, :hs // 2], SIN[:, :hs // 2]
    x3 = R.standard_normal((B, S, H * hs)).astype(np.float32)
    x4 = R.standard_normal((B, H, S, hs)).astype(np.float32)
    p2 = R.integers(0, 16, (B, S)).astype(np.int64)
    at = {"interleaved": interleaved}
    compare("RotaryEmbedding", [("x", x3), ("p", np.array([5], np.int64)), ("c", cos), ("s", sin)], attrs=at)
    compare("RotaryEmbedding", [("x", x3), ("p", np.array(2, np.int64)), ("c", cos), ("s", sin)], attrs=at)
    compare("RotaryEmbedding", [("x", x3), ("p", p2), ("c", cos), ("s", sin)], attrs=at)
    compare("RotaryEmbedding", [("x", x4), ("p", p2), ("c", cos), ("s", sin)], attrs=at)
    compare("RotaryEmbedding", [("x", x3), ("p", p2), ("c", cos[:, :2]), ("s", sin[:, :2])],
            attrs={**at, "num_heads": H, "rotary_embedding_dim": 4})
    compare("RotaryEmbedding", [("x", x3.astype(np.float16)), ("p", p2), ("c", cos.astype(np.float16)),
                                ("s", sin.astype(np.float16))], attrs=at, rtol=1e-2, atol=1e-2)
