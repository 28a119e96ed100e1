"""QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul, QLinearConv: rounding,
saturation, granularity, error paths, and agreement with onnxruntime on one-node models."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from pyonnx.errors import ExecutionError
from pyonnx.ops.registry import registered_versions
from tests.ops._oracle import run_ort
from tests.ops._oracle import kernel as k

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto  # noqa: E402

RNG = np.random.default_rng(1234)


@pytest.mark.parametrize("op,versions", [
    ("QuantizeLinear", (10, 13, 19, 21, 23, 24, 25, 28)),
    ("DequantizeLinear", (10, 13, 19, 21, 23, 24, 25, 28)),
    ("DynamicQuantizeLinear", (11,)),
    ("QLinearMatMul", (10, 21)),
    ("QLinearConv", (10,)),
])
def test_every_schema_version_registered(op, versions):
    import onnx.defs
    spec = sorted(s.since_version for s in onnx.defs.get_all_schemas_with_history()
                  if s.name == op and s.domain == "")
    assert registered_versions("", op) == tuple(spec) == versions


# --- QuantizeLinear ------------------------------------------------------------------------

def test_quantize_rounds_half_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5], dtype=np.float32)
    (y,) = k("QuantizeLinear", 21)(x, np.float32(1.0), np.int8(0))
    assert y.dtype == np.int8
    assert y.tolist() == [0, 2, 2, 0, -2, -2, 4]


@pytest.mark.parametrize("dtype,lo,hi", [
    (np.uint8, 0, 255), (np.int8, -128, 127), (np.uint16, 0, 65535), (np.int16, -32768, 32767),
    (ml_dtypes.int4, -8, 7), (ml_dtypes.uint4, 0, 15), (ml_dtypes.int2, -2, 1),
    (ml_dtypes.uint2, 0, 3),
])
def test_quantize_saturates(dtype, lo, hi):
    x = np.array([-1e9, -100000.0, 0.0, 100000.0, 1e9], dtype=np.float32)
    (y,) = k("QuantizeLinear", 25)(x, np.float32(1.0), np.zeros((), dtype=dtype))
    assert y.dtype == np.dtype(dtype)
    assert y.astype(np.int64).tolist() == [lo, lo, 0, hi, hi]


def test_quantize_default_output_is_uint8():
    (y,) = k("QuantizeLinear", 13)(np.array([1.0, 300.0, -4.0], np.float32), np.float32(2.0))
    assert y.dtype == np.uint8 and y.tolist() == [0, 150, 0]


def test_quantize_per_axis_matches_onnxruntime():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32) * 50
    scale = np.array([0.5, 1.0, 2.0], np.float32)
    zp = np.array([-3, 0, 7], np.int8)
    (y,) = k("QuantizeLinear", 21)(x, scale, zp, axis=1)
    (ref,) = run_ort("QuantizeLinear", {"x": x, "s": scale, "z": zp}, opset=21,
                     output_types=[TensorProto.INT8], axis=1)
    np.testing.assert_array_equal(y, ref)


def test_quantize_blocked_matches_onnxruntime():
    x = RNG.standard_normal((3, 8)).astype(np.float32) * 10
    scale = np.abs(RNG.standard_normal((3, 3))).astype(np.float32) + 0.1
    zp = RNG.integers(-5, 5, (3, 3)).astype(np.int8)
    (y,) = k("QuantizeLinear", 21)(x, scale, zp, axis=1, block_size=3)
    (ref,) = run_ort("QuantizeLinear", {"x": x, "s": scale, "z": zp}, opset=21,
                     output_types=[TensorProto.INT8], axis=1, block_size=3)
    np.testing.assert_array_equal(y, ref)
    # Round trip through DequantizeLinear with the same blocks.
    (back,) = k("DequantizeLinear", 21)(y, scale, zp, axis=1, block_size=3)
    (ref_back,) = run_ort("DequantizeLinear", {"x": ref, "s": scale, "z": zp}, opset=21,
                          output_types=[TensorProto.FLOAT], axis=1, block_size=3)
    np.testing.assert_allclose(back, ref_back, rtol=1e-6)


def test_blocked_size_mismatch_names_sizes():
    x = np.zeros((2, 8), np.float32)
    scale = np.ones((2, 3), np.float32)
    with pytest.raises(ExecutionError, match=r"block_size 2 .*dimension 8.*3 blocks"):
        k("QuantizeLinear", 21)(x, scale, np.zeros((2, 3), np.int8), axis=1, block_size=2)
    with pytest.raises(ExecutionError, match="block_size 2"):
        k("DequantizeLinear", 21)(np.zeros((2, 8), np.int8), scale, axis=1, block_size=2)


def test_per_axis_length_mismatch():
    with pytest.raises(ExecutionError, match="3 elements but input dimension 1"):
        k("QuantizeLinear", 13)(np.zeros((2, 4), np.float32), np.ones(3, np.float32), axis=1)


def test_zero_point_dtype_must_match_output_dtype():
    with pytest.raises(ExecutionError, match="output_dtype is int8 but y_zero_point is uint8"):
        k("QuantizeLinear", 21)(np.zeros(3, np.float32), np.float32(1), np.uint8(0),
                                output_dtype=TensorProto.INT8)


def test_dequantize_zero_point_dtype_mismatch():
    with pytest.raises(ExecutionError, match="x_zero_point is uint8 but x is int8"):
        k("DequantizeLinear", 13)(np.zeros(3, np.int8), np.float32(1), np.uint8(0))


def test_zero_point_shape_must_match_scale():
    with pytest.raises(ExecutionError, match="zero point has shape"):
        k("QuantizeLinear", 13)(np.zeros((2, 3), np.float32), np.ones(3, np.float32),
                                np.zeros(2, np.uint8), axis=1)


def test_quantize_float8_saturate_and_not():
    x = np.array([1000.0, -1000.0, np.inf, np.nan, 1.0], np.float32)
    zp = np.zeros((), ml_dtypes.float8_e4m3fn)
    (y,) = k("QuantizeLinear", 19)(x, np.float32(1.0), zp)
    assert y.dtype == ml_dtypes.float8_e4m3fn
    v = y.astype(np.float32)
    assert v[:3].tolist() == [448.0, -448.0, 448.0] and np.isnan(v[3]) and v[4] == 1.0
    (y,) = k("QuantizeLinear", 19)(x, np.float32(1.0), zp, saturate=0)
    assert np.isnan(y.astype(np.float32)[:4]).all()
    zp = np.zeros((), ml_dtypes.float8_e5m2)
    (y,) = k("QuantizeLinear", 19)(x, np.float32(1.0), zp, saturate=0)
    assert y.astype(np.float32)[:3].tolist() == [1024.0, -1024.0, np.inf]
    (y,) = k("QuantizeLinear", 19)(np.array([1e6], np.float32), np.float32(1.0), zp, saturate=0)
    assert np.isposinf(y.astype(np.float32)[0])


def test_quantize_float16_scale_divides_in_float16():
    x = np.array([1.0, 1000.0, -7.3], np.float16)
    scale = np.float16(0.1)
    (y,) = k("QuantizeLinear", 21)(x, scale, np.int16(0))
    expected = np.rint((x / scale).astype(np.float32)).astype(np.int16)
    np.testing.assert_array_equal(y, expected)
    # precision=FLOAT divides in float32 instead.
    (y32,) = k("QuantizeLinear", 23)(x, scale, np.int16(0), precision=TensorProto.FLOAT)
    np.testing.assert_array_equal(
        y32, np.rint(x.astype(np.float32) / np.float32(scale)).astype(np.int16))


def test_quantize_int4_output_dtype_without_zero_point():
    x = np.array([[-20.0, 3.0, 7.4, 8.0]], np.float32)
    (y,) = k("QuantizeLinear", 21)(x, np.float32(1.0), output_dtype=TensorProto.INT4)
    assert y.dtype == ml_dtypes.int4 and y.astype(np.int8).tolist() == [[-8, 3, 7, 7]]


# --- DequantizeLinear ----------------------------------------------------------------------

def test_dequantize_per_axis_matches_onnxruntime():
    x = RNG.integers(-128, 127, (2, 3, 4)).astype(np.int8)
    scale = np.array([0.5, 0.25, 2.0], np.float32)
    zp = np.array([1, -2, 0], np.int8)
    (y,) = k("DequantizeLinear", 13)(x, scale, zp, axis=1)
    (ref,) = run_ort("DequantizeLinear", {"x": x, "s": scale, "z": zp}, opset=13,
                     output_types=[TensorProto.FLOAT], axis=1)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, ref)


def test_dequantize_int32_does_not_overflow():
    x = np.array([2**31 - 1, -(2**31)], np.int32)
    (y,) = k("DequantizeLinear", 13)(x, np.float32(1.0), np.int32(-1))
    # int32 wraparound would give the opposite sign
    expected = (x.astype(np.int64) + 1).astype(np.float32)
    np.testing.assert_array_equal(y, expected)
    assert y[0] > 0 and y[1] < 0


def test_dequantize_output_dtype_float16():
    x = np.array([0, 10, 255], np.uint8)
    (y,) = k("DequantizeLinear", 23)(x, np.float32(0.5), np.uint8(5),
                                     output_dtype=TensorProto.FLOAT16)
    assert y.dtype == np.float16 and y.tolist() == [-2.5, 2.5, 125.0]


# --- DynamicQuantizeLinear -----------------------------------------------------------------

@pytest.mark.parametrize("x", [
    RNG.standard_normal((3, 5)).astype(np.float32) * 4,
    np.array([1.0, 2.0, 3.0], np.float32),
    np.array([-1.0, -2.0], np.float32),
])
def test_dynamic_quantize_matches_onnxruntime(x):
    y, s, z = k("DynamicQuantizeLinear", 11)(x)
    ry, rs, rz = run_ort("DynamicQuantizeLinear", {"x": x}, opset=11,
                         output_types=[TensorProto.UINT8, TensorProto.FLOAT, TensorProto.UINT8])
    assert y.dtype == np.uint8 and s.dtype == np.float32 and z.dtype == np.uint8
    assert s.shape == () and z.shape == ()
    np.testing.assert_allclose(s, rs, rtol=1e-6)
    assert int(z) == int(rz)
    assert np.abs(y.astype(int) - ry.astype(int)).max() <= 0


def test_dynamic_quantize_all_zeros():
    y, s, z = k("DynamicQuantizeLinear", 11)(np.zeros((2, 2), np.float32))
    assert float(s) == 0.0 and int(z) == 0 and not y.any()


# --- QLinearMatMul -------------------------------------------------------------------------

@pytest.mark.parametrize("ta,tb,ty", [(np.uint8, np.uint8, np.uint8), (np.int8, np.int8, np.int8),
                                      (np.uint8, np.int8, np.uint8)])
@pytest.mark.parametrize("opset", [10, 21])
def test_qlinear_matmul_matches_onnxruntime(ta, tb, ty, opset):
    def q(shape, t):
        info = np.iinfo(t)
        return RNG.integers(info.min, info.max, shape, endpoint=True).astype(t)
    a, b = q((2, 4, 16), ta), q((16, 3), tb)
    if ta == np.uint8 and tb == np.int8:
        # onnxruntime's u8s8 kernels saturate int16 pair sums (VPMADDUBSW) with full-range
        # weights; quantizers use 7-bit weights (reduce_range) for that reason.
        b = (b // 2).astype(np.int8)
    feeds = {"a": a, "as": np.array(0.02, np.float32), "az": np.array(3, ta),
             "b": b, "bs": np.array(0.03, np.float32), "bz": np.array(1, tb),
             "ys": np.array(0.5, np.float32), "yz": np.array(10, ty)}
    (y,) = k("QLinearMatMul", opset)(*feeds.values())
    (ref,) = run_ort("QLinearMatMul", feeds, opset=opset, output_types=[ty])
    assert y.dtype == np.dtype(ty) and y.shape == ref.shape
    assert np.abs(y.astype(int) - ref.astype(int)).max() <= 1  # ORT uses fixed-point requantize


def test_qlinear_matmul_zero_point_type_mismatch():
    with pytest.raises(ExecutionError, match="a_zero_point is int8 but a is uint8"):
        k("QLinearMatMul", 10)(np.zeros((2, 2), np.uint8), np.float32(1), np.int8(0),
                               np.zeros((2, 2), np.uint8), np.float32(1), np.uint8(0),
                               np.float32(1), np.uint8(0))


# --- QLinearConv ---------------------------------------------------------------------------

@pytest.mark.parametrize("attrs,wshape,xshape", [
    ({}, (4, 3, 3, 3), (1, 3, 7, 7)),
    ({"pads": [1, 2, 0, 1], "strides": [2, 1]}, (4, 3, 3, 2), (2, 3, 8, 7)),
    ({"dilations": [2, 2], "group": 2}, (4, 2, 2, 2), (1, 4, 7, 6)),
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (3, 2, 3, 3), (1, 2, 6, 5)),
    ({"auto_pad": "SAME_LOWER"}, (2, 2, 2, 2), (1, 2, 5, 5)),
    ({"pads": [1, 1]}, (5, 3, 3), (2, 3, 10)),
])
def test_qlinear_conv_matches_onnxruntime(attrs, wshape, xshape):
    x = RNG.integers(0, 255, xshape, endpoint=True).astype(np.uint8)
    # 7-bit weights: onnxruntime's u8s8 path saturates int16 pair sums with full-range ones
    # (pyonnx is exact either way, see test_qlinear_conv_exact_against_integer_reference).
    w = RNG.integers(-64, 63, wshape, endpoint=True).astype(np.int8)
    m = wshape[0]
    feeds = {"x": x, "xs": np.array(0.05, np.float32), "xz": np.array(120, np.uint8), "w": w,
             "ws": (np.abs(RNG.standard_normal(m)) * 0.01 + 0.001).astype(np.float32),
             "wz": np.zeros(m, np.int8), "ys": np.array(0.7, np.float32),
             "yz": np.array(128, np.uint8),
             "B": RNG.integers(-2000, 2000, m).astype(np.int32)}
    (y,) = k("QLinearConv", 10)(*feeds.values(), **attrs)
    (ref,) = run_ort("QLinearConv", feeds, opset=10, output_types=[TensorProto.UINT8], **attrs)
    assert y.dtype == np.uint8 and y.shape == ref.shape
    assert np.abs(y.astype(int) - ref.astype(int)).max() <= 1


def test_qlinear_conv_exact_against_integer_reference():
    x = RNG.integers(0, 255, (1, 2, 5, 5), endpoint=True).astype(np.uint8)
    w = RNG.integers(-128, 127, (3, 2, 3, 3), endpoint=True).astype(np.int8)
    xz, wz = 17, np.array([1, -3, 0], np.int8)
    (y,) = k("QLinearConv", 10)(x, np.float32(1), np.uint8(xz), w, np.ones(3, np.float32), wz,
                                np.float32(1), np.int8(0))
    xs = x.astype(np.int64) - xz
    ws = w.astype(np.int64) - wz.reshape(3, 1, 1, 1)
    acc = np.zeros((1, 3, 3, 3), np.int64)
    for i in range(3):
        for j in range(3):
            acc[0, :, i, j] = np.einsum("chw,mchw->m", xs[0, :, i:i + 3, j:j + 3], ws)
    np.testing.assert_array_equal(y, np.clip(acc, -128, 127).astype(np.int8))


def test_qlinear_conv_per_channel_scale_size_checked():
    with pytest.raises(ExecutionError, match="w_scale has 2 elements"):
        k("QLinearConv", 10)(np.zeros((1, 1, 3, 3), np.uint8), np.float32(1), np.uint8(0),
                             np.zeros((3, 1, 1, 1), np.int8), np.ones(2, np.float32), np.int8(0),
                             np.float32(1), np.uint8(0))
