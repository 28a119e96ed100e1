"""Element-wise kernels (unary math, binary with broadcasting, Sum/Max/Min/Mean, Where, Clip):
edge cases the backend suite misses, error paths, erf accuracy, and agreement with onnxruntime on
one-node models (random inputs, broadcasting, float16)."""

from __future__ import annotations

import math
import warnings

import ml_dtypes
import numpy as np
import pytest

from pyonnx.errors import ExecutionError, ResourceLimitExceeded
from pyonnx.ops._elementwise import erf
from pyonnx.ops.registry import KernelContext, registered_versions
from tests.ops._oracle import assert_close, run_ort, schema_versions
from tests.ops._oracle import kernel as k

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

UNARY = ["Abs", "Neg", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sqrt", "Exp", "Log", "Erf",
         "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh",
         "IsNaN", "IsInf", "Not", "BitwiseNot"]
BINARY = ["Add", "Sub", "Mul", "Div", "Pow", "Mod", "BitShift", "And", "Or", "Xor", "Equal",
          "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "BitwiseAnd", "BitwiseOr", "BitwiseXor"]
OTHERS = ["Sum", "Max", "Min", "Mean", "Where", "Clip"]

rng = np.random.default_rng(0)


def test_every_schema_version_registered():
    for op in UNARY + BINARY + OTHERS:
        assert list(registered_versions("", op)) == schema_versions(op), op


# --- erf ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,ulps", [(np.float32, 2.0), (np.float64, 2.0)])
def test_erf_accuracy_against_math_erf(dtype, ulps):
    x = np.concatenate([np.linspace(-7, 7, 20001), np.geomspace(1e-30, 1, 500),
                        -np.geomspace(1e-30, 1, 500)]).astype(dtype)
    x = x[x != 0]
    want = np.array([math.erf(float(v)) for v in x])
    got = erf(x)
    assert got.dtype == dtype and got.shape == x.shape
    rel = np.abs(got.astype(np.float64) - want) / np.abs(want)
    assert rel.max() <= ulps * np.finfo(dtype).eps


def test_erf_special_values_and_layouts():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0])
    got = erf(x)
    np.testing.assert_array_equal(got[:4], [0.0, -0.0, 1.0, -1.0])
    assert np.signbit(got[1]) and np.isnan(got[4])
    np.testing.assert_allclose(got[5:], [math.erf(1.0), -math.erf(1.0)], rtol=1e-15)
    a = rng.standard_normal((30, 40)).astype(np.float32) * 3
    np.testing.assert_array_equal(erf(a.T), erf(np.ascontiguousarray(a.T)))  # non-contiguous
    y = erf(np.array(0.5, np.float32))
    assert isinstance(y, np.ndarray) and y.shape == () and y.dtype == np.float32


def test_erf_kernel_types():
    (y,) = k("Erf", 13)(np.array([0.5, -2.0], ml_dtypes.bfloat16))
    assert y.dtype == ml_dtypes.bfloat16
    np.testing.assert_allclose(y.astype(np.float32), [math.erf(0.5), math.erf(-2.0)], rtol=1e-2)
    (y,) = k("Erf", 9)(np.array([0, 1, 3, -7], np.int32))  # Erf-9 accepts integers
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, [0, 0, 0, -1])


# --- unary ---------------------------------------------------------------------------------------

_DOMAIN = {"Sqrt": (0.01, 5), "Log": (0.01, 5), "Reciprocal": (0.1, 5), "Asin": (-0.99, 0.99),
           "Acos": (-0.99, 0.99), "Atanh": (-0.99, 0.99), "Acosh": (1.01, 5), "Tan": (-1.4, 1.4)}
_FLOAT_UNARY = [op for op in UNARY if op not in ("Not", "BitwiseNot", "IsNaN", "IsInf")]


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("op", _FLOAT_UNARY)
def test_unary_matches_onnxruntime(op, dtype):
    lo, hi = _DOMAIN.get(op, (-4, 4))
    x = rng.uniform(lo, hi, (3, 4, 5)).astype(dtype)
    if op == "Round":
        x[0, 0, :4] = [0.5, 1.5, -2.5, 2.5]  # halves go to even
    opset = 13 if op in ("Erf", "Sign", "Abs", "Neg") and dtype == np.float16 else 18
    want = run_ort(op, {"x": x}, opset=opset)[0]
    (got,) = k(op, opset)(x)
    rtol = 2e-3 if dtype == np.float16 else 2e-6
    assert_close(got, want, rtol=rtol, atol=1e-6 if dtype != np.float16 else 1e-3)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint64])
def test_integer_unary(dtype):
    x = rng.integers(0 if np.dtype(dtype).kind == "u" else -50, 50, (4, 5)).astype(dtype)
    (y,) = k("Abs", 13)(x)
    assert_close(y, np.abs(x))
    (y,) = k("Sign", 13)(x)
    assert_close(y, np.sign(x))
    (y,) = k("BitwiseNot", 18)(x)
    assert_close(y, run_ort("BitwiseNot", {"x": x}, opset=18)[0])
    if np.dtype(dtype).kind == "i":
        (y,) = k("Neg", 13)(x)
        assert_close(y, run_ort("Neg", {"x": x}, opset=13)[0])


def test_unary_rejects_wrong_type_and_keeps_0d_arrays():
    with pytest.raises(ExecutionError, match="Sqrt.*int32"):
        k("Sqrt", 13)(np.array([4], np.int32))
    with pytest.raises(ExecutionError, match="Neg.*uint8"):
        k("Neg", 13)(np.array([4], np.uint8))
    with pytest.raises(ExecutionError, match="Not"):
        k("Not", 1)(np.array([1], np.int32))
    for op in ("Exp", "IsNaN", "Abs"):
        (y,) = k(op, 20)(np.array(1.5, np.float32))
        assert isinstance(y, np.ndarray) and y.shape == ()


def test_unary_out_of_domain_is_silent_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (y,) = k("Log", 13)(np.array([-1.0, 0.0], np.float32))
        (z,) = k("Sqrt", 13)(np.array([-1.0], np.float64))
    assert np.isnan(y[0]) and y[1] == -np.inf and np.isnan(z[0])


def test_isnan_isinf_float8_and_flags():
    x = np.array([1.0, np.inf, -np.inf, np.nan, -2.0], np.float32)
    for t in (ml_dtypes.float8_e5m2, np.float16, ml_dtypes.bfloat16):
        xt = x.astype(t)
        (y,) = k("IsInf", 20)(xt)
        np.testing.assert_array_equal(y, [False, True, True, False, False])
        (y,) = k("IsInf", 20)(xt, detect_negative=0)
        np.testing.assert_array_equal(y, [False, True, False, False, False])
        (y,) = k("IsInf", 20)(xt, detect_positive=0)
        np.testing.assert_array_equal(y, [False, False, True, False, False])
        (y,) = k("IsNaN", 20)(xt)
        np.testing.assert_array_equal(y, [False, False, False, True, False])
    # e4m3fn has no infinities: inf becomes NaN on conversion
    (y,) = k("IsInf", 20)(x.astype(ml_dtypes.float8_e4m3fn))
    assert not y.any()
    (y,) = k("IsInf", 10)(x, detect_negative=0, detect_positive=0)
    assert y.dtype == np.bool_ and not y.any()


def test_round_bfloat16_half_to_even():
    (y,) = k("Round", 22)(np.array([0.5, 1.5, 2.5, -0.5, -1.5], ml_dtypes.bfloat16))
    assert y.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(y.astype(np.float32), [0, 2, 2, -0.0, -2])


# --- binary ---------------------------------------------------------------------------------------

_SHAPES = [((3, 4, 5), (5,)), ((3, 1, 5), (4, 1)), ((), (2, 3))]


@pytest.mark.parametrize("shapes", _SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int32, np.int64, np.uint8])
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Equal", "Greater", "Less",
                                "GreaterOrEqual", "LessOrEqual"])
def test_arithmetic_and_comparison_match_onnxruntime(op, dtype, shapes):
    sa, sb = shapes
    if np.dtype(dtype).kind == "f":
        a = rng.uniform(-5, 5, sa).astype(dtype)
        b = rng.uniform(-5, 5, sb).astype(dtype)
    else:
        lo = 1 if np.dtype(dtype).kind == "u" else -20
        a = rng.integers(lo, 100, sa).astype(dtype)
        b = rng.integers(lo, 20, sb).astype(dtype)
        b[b == 0] = 3
    comparison = op in ("Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual")
    want = run_ort(op, {"a": a, "b": b}, opset=16 if comparison else 14)[0]
    (got,) = k(op, 16)(a, b)
    assert_close(got, want, rtol=1e-3 if dtype == np.float16 else 1e-6)


def test_integer_div_truncates_and_checks_zero():
    a = np.array([-7, 7, -7, 7, -6, np.iinfo(np.int32).min], np.int32)
    b = np.array([2, 2, -2, -2, 3, -1], np.int32)
    (y,) = k("Div", 14)(a, b)
    np.testing.assert_array_equal(y, [-3, 3, 3, -3, -2, np.iinfo(np.int32).min])
    assert y.dtype == np.int32
    with pytest.raises(ExecutionError, match="division by zero"):
        k("Div", 14)(np.array([1, 2], np.int64), np.array([1, 0], np.int64))
    with pytest.raises(ExecutionError, match="division by zero"):
        k("Mod", 13)(np.array([1, 2], np.int8), np.array([0], np.int8))


def test_float_div_by_zero_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (y,) = k("Div", 14)(np.array([1.0, 0.0, -1.0], np.float16), np.array(0.0, np.float16))
    assert y[0] == np.inf and np.isnan(y[1]) and y[2] == -np.inf and y.dtype == np.float16


@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16])
def test_integer_mod_matches_onnxruntime(dtype, fmod):
    signed = np.dtype(dtype).kind == "i"
    a = rng.integers(-100 if signed else 0, 100, (4, 6)).astype(dtype)
    b = rng.integers(-9 if signed else 1, 10, (6,)).astype(dtype)
    b[b == 0] = 7
    (got,) = k("Mod", 13)(a, b, fmod=fmod)
    assert_close(got, run_ort("Mod", {"a": a, "b": b}, opset=13, fmod=fmod)[0])


def test_float_mod_rules():
    a = np.array([-4.5, 7.25, 5.0, 4.5], np.float32)
    b = np.array([2.0, -3.0, 8.0, -2.0], np.float32)
    (y,) = k("Mod", 13)(a, b, fmod=1)
    assert_close(y, run_ort("Mod", {"a": a, "b": b}, opset=13, fmod=1)[0])
    with pytest.raises(ExecutionError, match="fmod=1"):
        k("Mod", 13)(a, b)  # before opset 28 floats need fmod=1
    (y,) = k("Mod", 28)(a, b)
    np.testing.assert_array_equal(y, [1.5, -1.75, 5.0, -1.5])
    with pytest.raises(ExecutionError, match="fmod must be 0 or 1"):
        k("Mod", 28)(a, b, fmod=2)
    (y,) = k("Mod", 28)(a.astype(ml_dtypes.bfloat16), b.astype(ml_dtypes.bfloat16), fmod=1)
    assert y.dtype == ml_dtypes.bfloat16


@pytest.mark.parametrize("xt,yt", [(np.float32, np.float32), (np.float32, np.int64),
                                   (np.int32, np.float32), (np.int64, np.int64),
                                   (np.int32, np.int32), (np.float64, np.float32),
                                   (np.float16, np.float16)])
def test_pow_types_match_onnxruntime(xt, yt):
    x = rng.integers(1, 6, (3, 4)).astype(xt)
    y = rng.integers(0, 5, (4,)).astype(yt)
    if np.dtype(yt).kind == "f":
        y = (y + rng.uniform(0, 1, y.shape)).astype(yt)
    (got,) = k("Pow", 15)(x, y)
    want = run_ort("Pow", {"x": x, "y": y}, opset=15)[0]
    assert_close(got, want, rtol=1e-3 if xt == np.float16 else 1e-6)


def test_pow_square_fast_path_and_negative_integer_exponents():
    x = np.array([[-3.0, 0.5], [np.nan, -np.inf]], np.float32)
    (y,) = k("Pow", 15)(x, np.array(2.0, np.float32))
    assert_close(y, np.array([[9.0, 0.25], [np.nan, np.inf]], np.float32))
    c = rng.standard_normal((4, 5)).astype(np.float32)
    (y,) = k("Pow", 15)(c, np.array(3.0, np.float32))
    np.testing.assert_allclose(y, c.astype(np.float64) ** 3, rtol=3e-7)
    (y,) = k("Pow", 15)(np.array(1.5, np.float32), np.array(3.0, np.float32))
    assert isinstance(y, np.ndarray) and y.shape == () and y == 3.375
    (y,) = k("Pow", 15)(np.array(3.0, np.float32), np.array([2.0], np.float32))
    assert y.shape == (1,) and y[0] == 9  # y of higher rank than x: no fast path
    (y,) = k("Pow", 15)(np.array([2, 1, -1, -1, 5], np.int64), np.array([-1, -3, -3, -2, 0], np.int64))
    np.testing.assert_array_equal(y, [0, 1, -1, 1, 1])
    with pytest.raises(ExecutionError, match="negative integer power"):
        k("Pow", 15)(np.array([0], np.int32), np.array([-1], np.int32))


def test_bitshift():
    x = np.array([1, 4, 255], np.uint8)
    (y,) = k("BitShift", 11)(x, np.array([1, 2, 8], np.uint8), direction="LEFT")
    np.testing.assert_array_equal(y, [2, 16, 0])
    (y,) = k("BitShift", 11)(x, np.array([1], np.uint8), direction="RIGHT")
    np.testing.assert_array_equal(y, [0, 2, 127])
    with pytest.raises(ExecutionError, match="int8"):
        k("BitShift", 11)(np.array([1], np.int8), np.array([1], np.int8), direction="LEFT")
    (y,) = k("BitShift", 28)(np.array([-8, 8, -1], np.int16), np.array([1, 20, -3], np.int16),
                             direction="RIGHT")
    np.testing.assert_array_equal(y, [-4, 0, -1])
    with pytest.raises(ExecutionError, match="direction"):
        k("BitShift", 28)(x, x, direction="UP")


def test_logic_and_bitwise():
    a = rng.integers(0, 2, (3, 4)).astype(bool)
    b = rng.integers(0, 2, (4,)).astype(bool)
    for op, f in (("And", np.logical_and), ("Or", np.logical_or), ("Xor", np.logical_xor)):
        (y,) = k(op, 7)(a, b)
        assert_close(y, f(a, b))
    with pytest.raises(ExecutionError, match="And"):
        k("And", 7)(a.astype(np.int32), b.astype(np.int32))
    x = rng.integers(-100, 100, (3, 4)).astype(np.int16)
    z = rng.integers(-100, 100, (4,)).astype(np.int16)
    for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
        (y,) = k(op, 18)(x, z)
        assert_close(y, run_ort(op, {"x": x, "z": z}, opset=18)[0])


def test_equal_strings_broadcast():
    a = np.array([["a", "b"], ["c", "a"]], dtype=object)
    (y,) = k("Equal", 19)(a, np.array(["a"], dtype=object))
    assert y.dtype == np.bool_
    np.testing.assert_array_equal(y, [[True, False], [False, True]])


def test_broadcast_errors_name_the_shapes():
    with pytest.raises(ExecutionError, match=r"\[2, 3\].*\[4\].*cannot be broadcast"):
        k("Add", 14)(np.zeros((2, 3), np.float32), np.zeros(4, np.float32))
    with pytest.raises(ExecutionError, match=r"\[2, 3\].*\[2\]"):
        k("Mod", 13)(np.zeros((2, 3), np.int32), np.ones(2, np.int32))
    with pytest.raises(ExecutionError, match="same"):
        k("Add", 14)(np.zeros(3, np.float32), np.zeros(3, np.float64))


def test_broadcast_output_size_is_bounded():
    ctx = KernelContext(max_tensor_bytes=1000)
    a = np.zeros((100, 1), np.float32)
    b = np.zeros((1, 100), np.float32)
    with pytest.raises(ResourceLimitExceeded):
        k("Mul", 14)(a, b, ctx=ctx)
    with pytest.raises(ResourceLimitExceeded):
        k("Where", 16)(np.ones((100, 1), bool), a, b, ctx=ctx)
    (y,) = k("Mul", 14)(a, b)  # without a context the default limit applies
    assert y.shape == (100, 100)


def test_legacy_broadcast_rules():
    a = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    add = k("Add", 6)
    (y,) = add(a, np.ones((4, 5), np.float32), broadcast=1)  # suffix matching
    np.testing.assert_allclose(y, a + 1)
    (y,) = add(a, np.arange(12, dtype=np.float32).reshape(3, 4), broadcast=1, axis=1)
    np.testing.assert_allclose(y, a + np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1))
    (y,) = add(a, np.ones((1, 1), np.float32), broadcast=1)  # one element
    np.testing.assert_allclose(y, a + 1)
    m = np.arange(6, dtype=np.float64).reshape(2, 3)  # 1-dim expansion, as pytorch exported it
    (y,) = add(m, np.array([[10.0], [20.0]]), broadcast=1, axis=0)
    np.testing.assert_array_equal(y, m + [[10.0], [20.0]])
    (y,) = add(m, np.array([[1.0, 2.0, 3.0]]), broadcast=1, axis=0)
    np.testing.assert_array_equal(y, m + [1.0, 2.0, 3.0])
    (y,) = k("Sub", 1)(a, a, consumed_inputs=[0])
    assert not y.any()
    with pytest.raises(ExecutionError, match="broadcast=1"):
        add(a, np.ones(5, np.float32))
    with pytest.raises(ExecutionError, match="axis 1"):
        add(a, np.ones(4, np.float32), broadcast=1, axis=1)
    with pytest.raises(ExecutionError, match="trailing"):
        add(a, np.ones(3, np.float32), broadcast=1)
    (y,) = k("Equal", 1)(np.arange(6).reshape(2, 3).astype(np.int32), np.arange(3, dtype=np.int32),
                         broadcast=1)
    np.testing.assert_array_equal(y, [[True] * 3, [False] * 3])
    (y,) = k("Pow", 1)(a, np.array([2.0], np.float32), broadcast=1)
    np.testing.assert_allclose(y, a * a, rtol=1e-6)


# --- variadic -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("op", ["Sum", "Max", "Min", "Mean"])
def test_variadic_broadcast_matches_onnxruntime(op, dtype):
    xs = {"a": rng.standard_normal((3, 1, 5)).astype(dtype),
          "b": rng.standard_normal((4, 1)).astype(dtype),
          "c": rng.standard_normal((5,)).astype(dtype)}
    (got,) = k(op, 13)(*xs.values())
    assert_close(got, run_ort(op, xs, opset=13)[0], rtol=2e-3 if dtype == np.float16 else 1e-6)


def test_variadic_edge_cases():
    x = np.array([1.0, np.nan, 3.0], np.float32)
    y = np.array([np.nan, 2.0, 1.0], np.float32)
    (mx,) = k("Max", 13)(x, y)
    (mn,) = k("Min", 13)(x, y)
    assert np.isnan(mx[:2]).all() and mx[2] == 3 and np.isnan(mn[:2]).all() and mn[2] == 1
    (s,) = k("Sum", 13)(x)
    assert s is not x and np.array_equal(s, x, equal_nan=True)  # a copy, not an alias
    (m,) = k("Max", 13)(np.array([3, -7], np.int8), np.array([[-128], [100]], np.int8))
    assert_close(m, np.array([[3, -7], [100, 100]], np.int8))
    with pytest.raises(ExecutionError, match="at least one"):
        k("Sum", 13)()
    with pytest.raises(ExecutionError, match="same shape"):
        k("Sum", 6)(np.ones(3, np.float32), np.ones(1, np.float32))
    with pytest.raises(ExecutionError, match="cannot be broadcast"):
        k("Mean", 13)(np.ones(3, np.float32), np.ones(2, np.float32))
    with pytest.raises(ExecutionError, match="Sum"):
        k("Sum", 13)(np.ones(3, np.int32))
    (m,) = k("Mean", 13)(*(np.full(3, 60000, np.float16) for _ in range(4)))
    assert m.dtype == np.float16 and (m == 60000).all()  # no float16 overflow while summing
    (s,) = k("Sum", 13)(np.array(1.0, ml_dtypes.bfloat16), np.array([2.0, 3.0], ml_dtypes.bfloat16))
    assert s.dtype == ml_dtypes.bfloat16 and s.tolist() == [3.0, 4.0]


# --- Where, Clip --------------------------------------------------------------------------------


def test_where_broadcasts_and_checks():
    c = rng.integers(0, 2, (3, 1)).astype(bool)
    x = rng.standard_normal((1, 4)).astype(np.float16)
    y = np.array(0.5, np.float16)
    (got,) = k("Where", 16)(c, x, y)
    assert_close(got, run_ort("Where", {"c": c, "x": x, "y": y}, opset=16)[0])
    (s,) = k("Where", 16)(np.array([True, False]), np.array(["a", "b"], object),
                          np.array(["c"], object))
    assert s.tolist() == ["a", "c"]
    with pytest.raises(ExecutionError, match="condition"):
        k("Where", 16)(c.astype(np.int32), x, y)
    with pytest.raises(ExecutionError, match="cannot be broadcast"):
        k("Where", 16)(np.ones(3, bool), np.ones(2, np.float32), np.ones(2, np.float32))


def test_clip_versions():
    x = np.array([-3.0, -0.5, 0.5, 3.0, np.nan], np.float32)
    (y,) = k("Clip", 1)(x)  # no bounds: a copy
    assert y is not x and np.array_equal(y, x, equal_nan=True)
    (y,) = k("Clip", 1)(x, min=-1.0)
    np.testing.assert_array_equal(y[:4], [-1, -0.5, 0.5, 3])
    (y,) = k("Clip", 6)(x.astype(np.float16))  # FLT_MAX defaults become +-inf in float16
    assert y.dtype == np.float16 and np.array_equal(y, x.astype(np.float16), equal_nan=True)
    (y,) = k("Clip", 6)(x, min=-1.0, max=1.0)
    np.testing.assert_array_equal(y[:4], [-1, -0.5, 0.5, 1])
    (y,) = k("Clip", 13)(x, np.array(0.0, np.float32), None)
    np.testing.assert_array_equal(y[:4], [0, 0, 0.5, 3])
    (y,) = k("Clip", 13)(x, None, np.array([0.0], np.float32))
    np.testing.assert_array_equal(y[:4], [-3, -0.5, 0, 0])
    (y,) = k("Clip", 13)(x, np.array(2.0, np.float32), np.array(1.0, np.float32))  # min > max
    np.testing.assert_array_equal(y[:4], [1, 1, 1, 1])
    xi = np.array([-128, 0, 127], np.int8)
    (y,) = k("Clip", 13)(xi, np.array(-5, np.int8), np.array(5, np.int8))
    assert_close(y, np.array([-5, 0, 5], np.int8))
    (y,) = k("Clip", 13)(np.array(7.0, np.float32), None, np.array(1.0, np.float32))
    assert isinstance(y, np.ndarray) and y.shape == () and y == 1
    with pytest.raises(ExecutionError, match="scalar"):
        k("Clip", 13)(x, np.zeros(2, np.float32))
    with pytest.raises(ExecutionError, match="min"):
        k("Clip", 13)(x, np.array(0.0, np.float64))


def test_clip_matches_onnxruntime_float16():
    x = rng.uniform(-3, 3, (4, 5)).astype(np.float16)
    lo, hi = np.array(-1.25, np.float16), np.array(2.5, np.float16)
    (got,) = k("Clip", 13)(x, lo, hi)
    assert_close(got, run_ort("Clip", {"x": x, "lo": lo, "hi": hi}, opset=13)[0])
