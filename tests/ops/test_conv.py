"""Convolution kernels: shapes the backend suite misses (asymmetric pads, dilation with stride,
groups, depthwise, N-D, the chunked column path), agreement with onnxruntime on one-node
models, dtypes, and every error path."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError, ResourceLimitExceeded
from pyonnx.ops.registry import KernelContext, registered_versions
from tests.ops._oracle import normal_f32, run_ort, schema_versions
from tests.ops._oracle import kernel as k

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

OPS = ["Conv", "ConvTranspose", "ConvInteger", "DeformConv", "Col2Im"]
RNG = np.random.default_rng(11)
f32 = normal_f32(RNG)


def test_every_schema_version_registered():
    for op in OPS:
        assert list(registered_versions("", op)) == schema_versions(op), op


# ----------------------------------------------------------------------------------------- Conv

CONV_CASES = [
    # (x shape, w shape, attrs)
    ((1, 3, 9, 11), (4, 3, 3, 3), dict(pads=[0, 1, 2, 3])),                      # asymmetric
    ((2, 4, 13, 12), (6, 4, 3, 2), dict(strides=[2, 3], dilations=[2, 1], pads=[1, 1, 2, 0])),
    ((1, 6, 10, 10), (4, 3, 3, 3), dict(group=2, pads=[1, 1, 1, 1])),             # groups
    ((2, 5, 9, 8), (5, 1, 3, 3), dict(group=5, pads=[1, 2, 1, 0], strides=[2, 1])),  # depthwise
    ((1, 4, 9, 9), (8, 1, 5, 3), dict(group=4, dilations=[1, 2])),               # multiplier 2
    ((1, 8, 7, 7), (6, 8, 1, 1), {}),                                             # 1x1
    ((1, 8, 9, 7), (6, 8, 1, 1), dict(strides=[2, 3])),                           # 1x1 strided
    ((1, 4, 6, 6), (4, 2, 1, 1), dict(group=2)),                                  # grouped 1x1
    ((1, 3, 7, 7), (2, 3, 1, 1), dict(pads=[1, 0, 0, 1])),                        # 1x1 padded
    ((2, 3, 17), (4, 3, 3), dict(strides=[3], pads=[1, 2], dilations=[2])),      # 1-D
    ((1, 2, 6, 7, 5), (3, 2, 3, 2, 3), dict(strides=[2, 1, 2], pads=[1, 0, 1, 1, 1, 0])),  # 3-D
    ((1, 3, 10, 9), (4, 3, 3, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2])),
    ((1, 3, 10, 9), (4, 3, 4, 4), dict(auto_pad="SAME_LOWER", strides=[3, 2])),
    ((1, 3, 10, 9), (4, 3, 3, 3), dict(auto_pad="VALID", strides=[2, 3])),
    ((1, 3, 30, 31), (5, 3, 7, 7), dict(strides=[2, 2], pads=[3, 3, 3, 3])),      # stem-like
    ((1, 3, 32, 32), (6, 3, 8, 8), dict(strides=[8, 8])),                         # patchify
]


@pytest.mark.parametrize("xs,ws,attrs", CONV_CASES)
def test_conv_matches_onnxruntime(xs, ws, attrs):
    x, w, b = f32(*xs), f32(*ws), f32(ws[0])
    for bias in (None, b):
        got = k("Conv")(x, w, bias, **attrs)[0]
        want = run_ort("Conv", {"x": x, "w": w, "b": bias}, opset=22, **attrs)[0]
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_conv_keeps_dtype(dtype):
    x, w = f32(1, 2, 6, 6), f32(3, 2, 3, 3)
    y = k("Conv")(x.astype(dtype), w.astype(dtype), pads=[1, 1, 1, 1])[0]
    assert y.dtype == dtype
    ref = k("Conv")(x, w, pads=[1, 1, 1, 1])[0]
    np.testing.assert_allclose(y.astype(np.float32), ref, rtol=1e-2, atol=1e-2)


def test_conv_does_not_mutate_inputs():
    x, w, b = f32(1, 2, 5, 5), f32(4, 1, 3, 3), f32(4)
    copies = [a.copy() for a in (x, w, b)]
    k("Conv")(x, w, b, group=2, pads=[1, 1, 1, 1])
    for a, c in zip((x, w, b), copies):
        assert np.array_equal(a, c)


@pytest.mark.parametrize("x,w,attrs,needle", [
    (f32(1, 3, 5, 5), f32(2, 4, 3, 3), {}, "should have 4 channels"),
    (f32(1, 6, 5, 5), f32(4, 3, 3, 3), dict(group=4), "does not divide the 6 input"),
    (f32(1, 4, 5, 5), f32(3, 2, 3, 3), dict(group=2), "does not divide the 3 output"),
    (f32(1, 3, 2, 2), f32(2, 3, 3, 3), {}, "larger than the padded input"),
    (f32(1, 3, 5, 5), f32(2, 3, 3, 3), dict(auto_pad="SAME"), "auto_pad 'SAME'"),
    (f32(1, 3, 5, 5), f32(2, 3, 3), {}, "rank"),
    (f32(3, 5), f32(2, 3, 3), {}, "rank >= 3"),
    (f32(1, 3, 5, 5), f32(2, 3, 3, 3), dict(pads=[1, 1]), "needs 4"),
    (f32(1, 3, 5, 5), f32(2, 3, 3, 3), dict(pads=[1, -1, 1, 1]), "negative"),
    (f32(1, 3, 5, 5), f32(2, 3, 3, 3), dict(strides=[0, 1]), "strides"),
    (f32(1, 3, 5, 5), f32(2, 3, 3, 3), dict(dilations=[1, 1, 1]), "dilations"),
    (f32(1, 3, 5, 5), f32(2, 3, 3, 3), dict(kernel_shape=[2, 2]), "kernel_shape"),
    (f32(1, 3, 5, 5), f32(2, 3, 3, 3), dict(group=0), "group"),
])
def test_conv_errors_say_what_is_wrong(x, w, attrs, needle):
    with pytest.raises(ExecutionError, match=needle):
        k("Conv")(x, w, **attrs)


def test_conv_bias_shape_checked():
    with pytest.raises(ExecutionError, match="bias"):
        k("Conv")(f32(1, 3, 5, 5), f32(2, 3, 3, 3), f32(3))


def test_conv_output_size_bounded():
    ctx = KernelContext(max_tensor_bytes=100)
    with pytest.raises(ResourceLimitExceeded):
        k("Conv")(f32(1, 3, 8, 8), f32(4, 3, 3, 3), ctx=ctx)


def test_conv_empty_spatial_axis_gives_empty_output():
    y = k("Conv")(f32(1, 2, 0, 4), f32(3, 2, 1, 1))[0]
    assert y.shape == (1, 3, 0, 4)


def test_conv_old_versions_same_semantics():
    x, w = f32(1, 2, 5, 5), f32(3, 2, 3, 3)
    a = k("Conv", 1)(x, w, pads=[1, 1, 1, 1])[0]
    b = k("Conv", 22)(x, w, pads=[1, 1, 1, 1])[0]
    assert np.array_equal(a, b)


# -------------------------------------------------------------------------------- ConvTranspose

CONVT_CASES = [
    ((1, 3, 4, 5), (3, 2, 3, 3), dict(strides=[2, 3], pads=[1, 0, 2, 1])),
    ((2, 4, 3, 3), (4, 3, 3, 2), dict(group=2, dilations=[2, 1], strides=[2, 2])),
    ((1, 2, 4, 4), (2, 3, 3, 3), dict(strides=[3, 2], output_padding=[2, 1])),
    ((1, 2, 4, 4), (2, 3, 3, 3), dict(strides=[2, 2], output_shape=[9, 8])),
    ((1, 2, 4, 4), (2, 3, 4, 4), dict(strides=[2, 2], pads=[1, 1, 1, 1])),       # upsample x2
    ((1, 2, 5), (2, 3, 3), dict(strides=[2], pads=[0, 1])),                       # 1-D
    ((1, 2, 3, 3, 2), (2, 2, 2, 3, 2), dict(strides=[1, 2, 2])),                  # 3-D
    ((1, 3, 4, 4), (3, 2, 1, 1), {}),                                             # 1x1
    ((1, 3, 4, 4), (3, 2, 2, 2), dict(strides=[2, 2])),                           # tiling
    ((1, 2, 3, 4), (2, 2, 3, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2])),
    ((1, 2, 3, 4), (2, 2, 3, 3), dict(auto_pad="SAME_LOWER", strides=[2, 2])),
    ((1, 2, 3, 4), (2, 2, 3, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2], output_shape=[8, 9])),
    ((1, 2, 3, 4), (2, 2, 3, 3), dict(strides=[2, 2], output_shape=[5, 6])),
]


@pytest.mark.parametrize("xs,ws,attrs", CONVT_CASES)
def test_conv_transpose_matches_onnxruntime(xs, ws, attrs):
    x, w = f32(*xs), f32(*ws)
    b = f32(ws[1] * attrs.get("group", 1))
    got = k("ConvTranspose")(x, w, b, **attrs)[0]
    want = run_ort("ConvTranspose", {"x": x, "w": w, "b": b}, opset=22, **attrs)[0]
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conv_transpose_is_adjoint_of_conv():
    """<Conv(x), y> == <x, ConvTranspose(y)> for the same weights and geometry."""
    x, w = f32(1, 3, 9, 8), f32(4, 3, 3, 3)
    attrs = dict(strides=[2, 2], pads=[1, 0, 1, 1], dilations=[1, 2])
    cx = k("Conv")(x, w, **attrs)[0]
    y = f32(*cx.shape)
    pad = [x.shape[2 + i] - ((cx.shape[2 + i] - 1) * attrs["strides"][i]
           + (w.shape[2 + i] - 1) * attrs["dilations"][i] + 1) + attrs["pads"][i]
           + attrs["pads"][2 + i] for i in range(2)]
    tx = k("ConvTranspose")(y, w, output_padding=pad, **attrs)[0]
    assert tx.shape == x.shape
    np.testing.assert_allclose(float((cx * y).sum()), float((x * tx).sum()), rtol=1e-4)


def test_conv_transpose_float16():
    x, w = f32(1, 2, 3, 3), f32(2, 2, 3, 3)
    y = k("ConvTranspose")(x.astype(np.float16), w.astype(np.float16), strides=[2, 2])[0]
    assert y.dtype == np.float16
    ref = k("ConvTranspose")(x, w, strides=[2, 2])[0]
    np.testing.assert_allclose(y.astype(np.float32), ref, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("x,w,attrs,needle", [
    (f32(1, 3, 4, 4), f32(2, 2, 3, 3), {}, "W.shape\\[0\\] is 2"),
    (f32(1, 3, 4, 4), f32(3, 2, 3, 3), dict(group=2), "does not divide"),
    (f32(1, 2, 4, 4), f32(2, 2, 3, 3), dict(strides=[2, 2], output_padding=[2, 0]),
     "output_padding"),
    (f32(1, 2, 4, 4), f32(2, 2, 3, 3), dict(pads=[5, 5, 5, 5]), "remove more than"),
    (f32(1, 2, 4, 4), f32(2, 2, 3, 3), dict(auto_pad="bogus"), "auto_pad 'bogus'"),
    (f32(1, 2, 4, 4), f32(2, 2, 3, 3), dict(output_shape=[5]), "output_shape"),
])
def test_conv_transpose_errors(x, w, attrs, needle):
    with pytest.raises(ExecutionError, match=needle):
        k("ConvTranspose")(x, w, **attrs)


# ---------------------------------------------------------------------------------- ConvInteger

def test_conv_integer_matches_onnxruntime():
    x = RNG.integers(0, 256, (1, 3, 7, 6), dtype=np.uint8)
    w = RNG.integers(0, 256, (4, 3, 3, 3), dtype=np.uint8)
    xz, wz = np.uint8(120), np.uint8(131)
    attrs = dict(pads=[1, 0, 2, 1], strides=[2, 1])
    got = k("ConvInteger")(x, w, np.asarray(xz), np.asarray(wz), **attrs)[0]
    want = run_ort("ConvInteger", {"x": x, "w": w, "xz": np.asarray(xz), "wz": np.asarray(wz)},
                   opset=10, **attrs)[0]
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


def test_conv_integer_exact_for_long_sums_and_per_channel_zero_point():
    """A kernel long enough that float32 could not hold the sums exactly; per-channel w zp."""
    x = RNG.integers(-128, 128, (1, 64, 5, 5), dtype=np.int8)
    w = RNG.integers(-128, 128, (3, 64, 3, 3), dtype=np.int8)
    wz = np.array([1, -2, 3], dtype=np.int8)
    got = k("ConvInteger")(x, w, np.int8(-5), wz, pads=[1, 1, 1, 1])[0]
    xs = np.pad(x.astype(np.int64) + 5, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ws = w.astype(np.int64) - wz.reshape(3, 1, 1, 1)
    want = np.zeros((1, 3, 5, 5), np.int64)
    for i in range(5):
        for j in range(5):
            want[0, :, i, j] = np.tensordot(ws, xs[0, :, i:i + 3, j:j + 3], axes=3)
    np.testing.assert_array_equal(got, want)


def test_conv_integer_zero_point_shape_checked():
    x = np.zeros((1, 2, 3, 3), np.uint8)
    w = np.zeros((2, 2, 1, 1), np.uint8)
    with pytest.raises(ExecutionError, match="x_zero_point"):
        k("ConvInteger")(x, w, np.zeros(2, np.uint8))


# ----------------------------------------------------------------------------------- DeformConv

def test_deform_conv_zero_offset_is_conv():
    x, w, b = f32(2, 4, 7, 6), f32(6, 2, 3, 3), f32(6)
    attrs = dict(strides=[2, 1], pads=[1, 1, 0, 1], dilations=[1, 2], group=2)
    ref = k("Conv")(x, w, b, **attrs)[0]
    off = np.zeros((2, 2 * 9 * 2) + ref.shape[2:], np.float32)
    got = k("DeformConv")(x, w, off, b, None, offset_group=2, **attrs)[0]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_deform_conv_matches_onnxruntime():
    x, w, b = f32(1, 4, 6, 7), f32(2, 4, 3, 3), f32(2)
    out = (4, 5)
    off = (RNG.standard_normal((1, 2 * 9 * 2) + out) * 1.5).astype(np.float32)
    mask = RNG.random((1, 2 * 9) + out).astype(np.float32)
    attrs = dict(offset_group=2)
    got = k("DeformConv")(x, w, off, b, mask, **attrs)[0]
    try:
        want = run_ort("DeformConv", {"x": x, "w": w, "off": off, "b": b, "mask": mask}, opset=19,
                       **attrs)[0]
    except Exception as e:  # pragma: no cover - older onnxruntime without DeformConv
        pytest.skip(f"onnxruntime cannot run DeformConv: {e}")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_deform_conv_offset_shape_checked():
    with pytest.raises(ExecutionError, match="offset has shape"):
        k("DeformConv")(f32(1, 2, 5, 5), f32(2, 2, 3, 3), f32(1, 9, 3, 3))


# --------------------------------------------------------------------------------------- Col2Im

def test_col2im_is_adjoint_of_im2col():
    """Col2Im sums each block back: <im2col(x), c> == <x, Col2Im(c)>."""
    x = f32(2, 3, 7, 8)
    attrs = dict(strides=[2, 1], pads=[1, 0, 0, 2], dilations=[1, 2])
    block = np.array([3, 2])
    # im2col through a Conv with one-hot weights: column (c, kh, kw) of each block.
    nk = 6
    w = np.zeros((3 * nk, 3, 3, 2), np.float32)
    for c in range(3):
        for i in range(nk):
            w[c * nk + i, c, i // 2, i % 2] = 1
    cols = k("Conv")(x, w, **attrs)[0]
    cols = cols.reshape(2, 3 * nk, -1)
    c = f32(*cols.shape)
    back = k("Col2Im")(c, np.array([7, 8]), block, **attrs)[0]
    assert back.shape == x.shape
    np.testing.assert_allclose(float((cols * c).sum()), float((x * back).sum()), rtol=1e-4)


def test_col2im_matches_onnxruntime():
    c = f32(1, 2 * 4, 12)
    img, blk = np.array([5, 6], np.int64), np.array([2, 2], np.int64)
    attrs = dict(strides=[2, 2], pads=[1, 1, 0, 1])
    got = k("Col2Im")(c, img, blk, **attrs)[0]
    try:
        want = run_ort("Col2Im", {"c": c, "i": img, "b": blk}, opset=18, **attrs)[0]
    except Exception as e:  # pragma: no cover
        pytest.skip(f"onnxruntime cannot run Col2Im: {e}")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_col2im_block_count_checked():
    with pytest.raises(ExecutionError, match="blocks"):
        k("Col2Im")(f32(1, 4, 7), np.array([4, 4]), np.array([2, 2]))
