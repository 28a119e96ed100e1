"""Pooling kernels: shapes the backend suite misses (asymmetric pads, dilation with stride,
ceil_mode, N-D, integer types), the optional Indices output, agreement with onnxruntime on
one-node models, and every error path."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError, ResourceLimitExceeded
from pyonnx.ops.registry import KernelContext, registered_versions
from tests.ops._oracle import normal_f32, run_ort, schema_versions
from tests.ops._oracle import context as ctx
from tests.ops._oracle import kernel as k

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

OPS = ["MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
       "MaxUnpool", "MaxRoiPool"]
RNG = np.random.default_rng(5)
f32 = normal_f32(RNG)


def test_every_schema_version_registered():
    for op in OPS:
        assert list(registered_versions("", op)) == schema_versions(op), op


WINDOW_CASES = [
    ((1, 2, 9, 11), dict(kernel_shape=[3, 2], pads=[0, 1, 2, 1])),
    ((2, 3, 12, 13), dict(kernel_shape=[3, 3], strides=[2, 3], dilations=[2, 1],
                          pads=[1, 1, 2, 0])),
    ((1, 2, 10, 11), dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ((1, 2, 10, 11), dict(kernel_shape=[2, 3], strides=[3, 2], pads=[1, 0, 1, 1], ceil_mode=1)),
    ((1, 2, 10, 11), dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER")),
    ((1, 2, 10, 11), dict(kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
    ((1, 2, 10, 11), dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID")),
    ((2, 3, 17), dict(kernel_shape=[4], strides=[3], pads=[2, 1], dilations=[2])),
    ((1, 2, 6, 7, 8), dict(kernel_shape=[2, 3, 2], strides=[2, 1, 2], pads=[1, 0, 1, 0, 1, 1])),
    ((1, 4, 8, 8), dict(kernel_shape=[1, 1], strides=[2, 2])),
]


@pytest.mark.parametrize("xs,attrs", WINDOW_CASES)
def test_max_pool_with_indices_matches_onnxruntime(xs, attrs):
    x = f32(*xs)
    for order in (0, 1):
        if order and len(xs) != 4:
            continue  # onnxruntime implements column-major indices for 2-D pooling only
        y, i = k("MaxPool")(x, storage_order=order, ctx=ctx(2), **attrs)
        wy, wi = run_ort("MaxPool", {"x": x}, opset=22, outputs=2, storage_order=order, **attrs)
        assert y.dtype == np.float32 and i.dtype == np.int64
        np.testing.assert_array_equal(y, wy)
        np.testing.assert_array_equal(i, wi)
        # The plain path gives the same Y.
        plain = k("MaxPool")(x, storage_order=order, ctx=ctx(2, (True, False)), **attrs)
        assert plain[1] is None
        np.testing.assert_array_equal(plain[0], y)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_max_pool_integer_padding_never_wins(dtype):
    """A padded position equals the type's minimum; a real minimum must still be the index."""
    info = np.iinfo(dtype)
    x = np.full((1, 1, 3, 3), info.min, dtype=dtype)
    x[0, 0, 2, 2] = info.min + 1
    attrs = dict(kernel_shape=[2, 2], pads=[1, 1, 1, 1])
    y, i = k("MaxPool")(x, ctx=ctx(2), **attrs)
    wy, wi = run_ort("MaxPool", {"x": x}, opset=22, outputs=2, **attrs)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, wy)
    np.testing.assert_array_equal(i, wi)


def test_max_pool_nan_propagates_in_both_paths():
    x = f32(1, 1, 4, 4)
    x[0, 0, 1, 1] = np.nan
    y1 = k("MaxPool")(x, kernel_shape=[2, 2])[0]
    y2, idx = k("MaxPool")(x, kernel_shape=[2, 2], ctx=ctx(2))
    np.testing.assert_array_equal(y1, y2)
    assert np.isnan(y1[0, 0, 0, 0]) and np.isnan(y1[0, 0, 1, 1])
    assert idx[0, 0, 0, 0] == 5


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_max_pool_keeps_dtype(dtype):
    x = f32(1, 2, 5, 5).astype(dtype)
    y = k("MaxPool")(x, kernel_shape=[3, 3], pads=[1, 1, 1, 1])[0]
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, run_ort("MaxPool", {"x": x}, opset=22, kernel_shape=[3, 3],
                                             pads=[1, 1, 1, 1])[0])


def test_max_pool_version_1_has_one_output():
    y = k("MaxPool", 1)(f32(1, 1, 4, 4), kernel_shape=[2, 2])
    assert len(y) == 1


@pytest.mark.parametrize("xs,attrs", WINDOW_CASES)
@pytest.mark.parametrize("include", [0, 1])
def test_average_pool_matches_onnxruntime(xs, attrs, include):
    x = f32(*xs)
    got = k("AveragePool")(x, count_include_pad=include, **attrs)[0]
    want = run_ort("AveragePool", {"x": x}, opset=22, count_include_pad=include, **attrs)[0]
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_average_pool_float16_accumulates_in_float32():
    x = np.full((1, 1, 64, 64), 1000.0, np.float16)  # a float16 running sum would saturate
    y = k("AveragePool")(x, kernel_shape=[64, 64])[0]
    assert y.dtype == np.float16 and y[0, 0, 0, 0] == 1000


@pytest.mark.parametrize("xs,attrs", WINDOW_CASES[:2] + WINDOW_CASES[4:6] + WINDOW_CASES[7:9])
@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_pool_matches_onnxruntime(xs, attrs, p):
    x = f32(*xs)
    got = k("LpPool")(x, p=p, **attrs)[0]
    want = run_ort("LpPool", {"x": x}, opset=22, p=p, **attrs)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_lp_pool_version_1_float_p():
    x = f32(1, 1, 4, 4)
    y = k("LpPool", 1)(x, kernel_shape=[2, 2], p=2.0)[0]
    np.testing.assert_allclose(y, k("LpPool")(x, kernel_shape=[2, 2], p=2)[0])


@pytest.mark.parametrize("op,attrs", [("GlobalAveragePool", {}), ("GlobalMaxPool", {}),
                                      ("GlobalLpPool", {"p": 3}), ("GlobalLpPool", {})])
@pytest.mark.parametrize("xs", [(2, 3, 5), (1, 4, 3, 6), (1, 2, 3, 2, 4)])
def test_global_pools_match_onnxruntime(op, attrs, xs):
    x = f32(*xs)
    got = k(op)(x, **attrs)[0]
    # onnxruntime implements GlobalLpPool up to version 2 only.
    want = run_ort(op, {"x": x}, opset=2 if op == "GlobalLpPool" else 22, **attrs)[0]
    assert got.shape == want.shape == xs[:2] + (1,) * (len(xs) - 2)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "LpPool"])
@pytest.mark.parametrize("attrs,needle", [
    (dict(kernel_shape=[7, 7]), "larger than the padded input"),
    (dict(kernel_shape=[2, 2], auto_pad="SAME"), "auto_pad 'SAME'"),
    (dict(kernel_shape=[2]), "kernel_shape \\[2\\] has 1 values"),
    (dict(kernel_shape=[2, 2], pads=[1, 1, 1]), "needs 4"),
    (dict(kernel_shape=[2, 2], strides=[1, 0]), "strides"),
    (dict(), "kernel_shape attribute is required"),
])
def test_pool_errors_say_what_is_wrong(op, attrs, needle):
    with pytest.raises(ExecutionError, match=needle):
        k(op)(f32(1, 1, 4, 4), **attrs)


def test_pool_rank_checked():
    with pytest.raises(ExecutionError, match="rank >= 3"):
        k("MaxPool")(f32(4, 4), kernel_shape=[2])
    with pytest.raises(ExecutionError, match="rank >= 3"):
        k("GlobalAveragePool")(f32(4, 4))


def test_max_pool_storage_order_checked():
    with pytest.raises(ExecutionError, match="storage_order"):
        k("MaxPool")(f32(1, 1, 4, 4), kernel_shape=[2, 2], storage_order=2, ctx=ctx(2))


def test_pool_output_size_bounded():
    with pytest.raises(ResourceLimitExceeded):
        k("MaxPool")(f32(1, 2, 8, 8), kernel_shape=[1, 1],
                     ctx=KernelContext(max_tensor_bytes=64))


# ------------------------------------------------------------------------------------ MaxUnpool

def test_max_unpool_inverts_max_pool():
    x = f32(2, 3, 6, 8)
    attrs = dict(kernel_shape=[2, 2], strides=[2, 2])
    y, idx = k("MaxPool")(x, ctx=ctx(2), **attrs)
    up = k("MaxUnpool")(y, idx, **attrs)[0]
    want = run_ort("MaxUnpool", {"y": y, "i": idx}, opset=22, **attrs)[0]
    np.testing.assert_array_equal(up, want)
    assert up.shape == x.shape
    # Every pooled value sits where its index says, everything else is zero.
    np.testing.assert_array_equal(up.reshape(-1)[idx.reshape(-1)], y.reshape(-1))
    assert np.count_nonzero(up) == y.size


def test_max_unpool_output_shape_extends_with_zeros():
    y = np.array([[[[5.0, 6.0], [7.0, 8.0]]]], np.float32)
    idx = np.array([[[[5, 7], [13, 15]]]], np.int64)
    out = k("MaxUnpool")(y, idx, np.array([1, 1, 5, 5]), kernel_shape=[2, 2],
                         strides=[2, 2])[0]
    assert out.shape == (1, 1, 5, 5)
    assert out[0, 0, 1, 1] == 5 and out[0, 0, 3, 3] == 8 and out[0, 0, 4].sum() == 0


def test_max_unpool_index_range_checked():
    y = f32(1, 1, 2, 2)
    idx = np.array([[[[0, 1], [2, 16]]]], np.int64)
    with pytest.raises(ExecutionError, match="index 16 is outside"):
        k("MaxUnpool")(y, idx, kernel_shape=[2, 2], strides=[2, 2])
    with pytest.raises(ExecutionError, match="index -1 is outside"):
        k("MaxUnpool")(y, -np.ones((1, 1, 2, 2), np.int64), kernel_shape=[2, 2],
                       strides=[2, 2])


def test_max_unpool_shape_checks():
    y = f32(1, 1, 2, 2)
    with pytest.raises(ExecutionError, match="indices I have shape"):
        k("MaxUnpool")(y, np.zeros((1, 1, 2), np.int64), kernel_shape=[2, 2])
    with pytest.raises(ExecutionError, match="output_shape"):
        k("MaxUnpool")(y, np.zeros((1, 1, 2, 2), np.int64), np.array([1, 2, 3, 3]),
                       kernel_shape=[2, 2])


# ----------------------------------------------------------------------------------- MaxRoiPool

def test_max_roi_pool_matches_onnxruntime():
    x = f32(2, 3, 12, 10)
    rois = np.array([[0, 1, 1, 6, 8], [1, 0, 0, 9, 11], [1, 3.4, 2.6, 3.4, 2.6],
                     [0, -2, -3, 4, 5], [1, 7, 9, 30, 40]], np.float32)
    for scale in (1.0, 0.5):
        got = k("MaxRoiPool")(x, rois, pooled_shape=[3, 2], spatial_scale=scale)[0]
        want = run_ort("MaxRoiPool", {"x": x, "rois": rois}, opset=1, pooled_shape=[3, 2],
                       spatial_scale=scale)[0]
        np.testing.assert_array_equal(got, want)


def test_max_roi_pool_batch_index_checked():
    with pytest.raises(ExecutionError, match="batch index 3"):
        k("MaxRoiPool")(f32(2, 1, 4, 4), np.array([[3, 0, 0, 1, 1]], np.float32),
                        pooled_shape=[1, 1])
