"""Activation kernels, PRelu, Shrink and the Softmax family: numerical stability at extreme
inputs, float16/bfloat16 types, the opset 1/11 vs 13 axis semantics, error paths, and agreement
with onnxruntime on one-node models."""

from __future__ import annotations

import math
import warnings

import ml_dtypes
import numpy as np
import pytest

from pyonnx.errors import ExecutionError
from pyonnx.ops.registry import registered_versions
from tests.ops._oracle import assert_close, run_ort, schema_versions
from tests.ops._oracle import kernel as k

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ACTIVATIONS = ["Relu", "LeakyRelu", "Elu", "Selu", "Celu", "HardSigmoid", "HardSwish", "Sigmoid",
               "Tanh", "Softplus", "Softsign", "ThresholdedRelu", "Mish", "Gelu", "Swish", "SwiGLU",
               "PRelu", "Shrink", "Softmax", "LogSoftmax", "Hardmax"]

rng = np.random.default_rng(1)


def test_every_schema_version_registered():
    for op in ACTIVATIONS:
        assert list(registered_versions("", op)) == schema_versions(op), op


_CASES = [
    ("Relu", 14, {}), ("LeakyRelu", 16, {}), ("LeakyRelu", 16, {"alpha": 1.5}),
    ("LeakyRelu", 16, {"alpha": -0.5}), ("Elu", 6, {"alpha": 0.7}), ("Selu", 6, {}),
    ("Celu", 12, {"alpha": 2.0}), ("HardSigmoid", 6, {"alpha": 0.3, "beta": 0.4}),
    ("HardSwish", 14, {}), ("Sigmoid", 13, {}), ("Tanh", 13, {}), ("Softplus", 1, {}),
    ("Softsign", 1, {}), ("ThresholdedRelu", 10, {"alpha": 0.5}), ("Mish", 18, {}),
    ("Gelu", 20, {}), ("Gelu", 20, {"approximate": "tanh"}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("op,opset,attrs", _CASES, ids=lambda c: str(c))
def test_activation_matches_onnxruntime(op, opset, attrs, dtype):
    if op == "Celu" and dtype != np.float32:
        pytest.skip("Celu-12 is float32 only in onnxruntime")
    if opset == 1 and dtype == np.float16:
        pytest.skip("onnxruntime builds an invalid Cast for float16 at opset 1")
    x = np.concatenate([rng.standard_normal(200) * 3, [0.0, -0.0, 30.0, -30.0, 100.0, -100.0]])
    x = x.astype(dtype).reshape(2, -1)
    want = run_ort(op, {"x": x}, opset=opset, **attrs)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow in exp etc. must stay silent
        (got,) = k(op, opset)(x, **attrs)
    tol = 2e-3 if dtype == np.float16 else 1e-5
    assert_close(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("op,attrs", [("Sigmoid", {}), ("Softplus", {}), ("Mish", {}), ("Gelu", {}),
                                      ("Elu", {}), ("Selu", {}), ("Swish", {"alpha": 2.0}),
                                      ("HardSwish", {}), ("Softsign", {}), ("Celu", {})])
def test_extreme_inputs_are_finite(op, attrs):
    x = np.array([-1e30, -1000.0, -89.0, 0.0, 89.0, 1000.0, 1e30], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (y,) = k(op, 24)(x, **attrs)
    assert y.dtype == np.float32
    assert not np.isnan(y).any(), y
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (y,) = k(op, 24)(np.array([np.nan], np.float32), **attrs)
    assert np.isnan(y).all()


def test_sigmoid_tails_are_accurate():
    x = np.array([-80.0, -30.0, 30.0], np.float64)
    (y,) = k("Sigmoid", 13)(x)
    np.testing.assert_allclose(y, [math.exp(-80.0), 1 / (1 + math.exp(30.0)), 1 / (1 + math.exp(-30.0))],
                               rtol=1e-14)


@pytest.mark.parametrize("op,opset,attrs", [("Relu", 14, {}), ("Sigmoid", 13, {}), ("Gelu", 20, {}),
                                            ("Gelu", 20, {"approximate": "tanh"}),
                                            ("LeakyRelu", 16, {}), ("HardSigmoid", 22, {}),
                                            ("Softplus", 22, {}), ("Swish", 24, {})])
def test_bfloat16_keeps_type(op, opset, attrs):
    x = (rng.standard_normal((3, 7)) * 4).astype(np.float32)
    xb = x.astype(ml_dtypes.bfloat16)
    (y,) = k(op, opset)(xb, **attrs)
    (ref,) = k(op, opset)(xb.astype(np.float32), **attrs)
    assert y.dtype == ml_dtypes.bfloat16 and y.shape == x.shape
    np.testing.assert_array_equal(y, ref.astype(ml_dtypes.bfloat16))


def test_relu_integer_and_0d():
    x = np.array([-128, -1, 0, 5, 127], np.int8)
    (y,) = k("Relu", 14)(x)
    assert y.dtype == np.int8
    np.testing.assert_array_equal(y, [0, 0, 0, 5, 127])
    (y,) = k("Sigmoid", 13)(np.array(0.0, np.float32))
    assert isinstance(y, np.ndarray) and y.shape == () and y == 0.5
    with pytest.raises(ExecutionError, match="Relu"):
        k("Relu", 14)(np.array([1], np.uint8))
    with pytest.raises(ExecutionError, match="Sigmoid.*int32"):
        k("Sigmoid", 13)(np.array([1], np.int32))


def test_gelu_exact_against_math_erfc():
    # 0.5 * x * (1 + erf(x / sqrt(2))) is 0.5 * x * erfc(-x / sqrt(2)); computed that way the
    # negative tail keeps its relative accuracy instead of cancelling in 1 + erf
    x = np.linspace(-8, 8, 2001)
    want = np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x])
    (y,) = k("Gelu", 20)(x)
    np.testing.assert_allclose(y, want, rtol=3e-14, atol=1e-300)
    (y,) = k("Gelu", 20)(x.astype(np.float32))
    # float32: rounding x / sqrt(2) alone moves erfc by ~2 z^2 ulps in the tail
    np.testing.assert_allclose(y[np.abs(x) <= 5.5], want[np.abs(x) <= 5.5], rtol=5e-6, atol=1e-30)
    with pytest.raises(ExecutionError, match="approximate"):
        k("Gelu", 20)(x, approximate="fast")


def test_swish_and_swiglu():
    a = (rng.standard_normal((2, 3, 4)) * 3).astype(np.float32)
    b = rng.standard_normal((2, 3, 4)).astype(np.float32)
    sig = 1 / (1 + np.exp(-1.5 * a.astype(np.float64)))
    (y,) = k("Swish", 24)(a, alpha=1.5)
    np.testing.assert_allclose(y, a * sig, rtol=1e-6)
    (y,) = k("SwiGLU", 28)(a, b, alpha=1.5)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, a * sig * b, rtol=1e-6, atol=1e-7)
    (y,) = k("SwiGLU", 28)(a.astype(np.float16), b.astype(np.float16))
    assert y.dtype == np.float16
    with pytest.raises(ExecutionError, match="identical shapes"):
        k("SwiGLU", 28)(a, b[:, :, :1])
    with pytest.raises(ExecutionError, match="same"):
        k("SwiGLU", 28)(a, b.astype(np.float64))


def test_celu_alpha_zero_is_an_error():
    with pytest.raises(ExecutionError, match="alpha"):
        k("Celu", 12)(np.ones(2, np.float32), alpha=0.0)


# --- PRelu, Shrink --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32])
@pytest.mark.parametrize("slope_shape", [(3, 1, 1), (5,), (1,), (2, 3, 4, 5)])
def test_prelu_matches_onnxruntime(slope_shape, dtype):
    if np.dtype(dtype).kind == "f":
        x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
        s = rng.uniform(0, 1, slope_shape).astype(dtype)
    else:
        x = rng.integers(-50, 50, (2, 3, 4, 5)).astype(dtype)
        s = rng.integers(0, 5, slope_shape).astype(dtype)
    (got,) = k("PRelu", 16)(x, s)
    assert_close(got, run_ort("PRelu", {"x": x, "s": s}, opset=16)[0], rtol=1e-3, atol=1e-6)


def test_prelu_before_opset_7_is_per_channel():
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    s = np.array([0.1, 0.2, 0.3], np.float32)
    (y,) = k("PRelu", 6)(x, s)
    np.testing.assert_allclose(y, np.where(x < 0, x * s.reshape(3, 1, 1), x), rtol=1e-6)
    (y,) = k("PRelu", 6)(x, np.array([0.5], np.float32))
    np.testing.assert_allclose(y, np.where(x < 0, x * 0.5, x), rtol=1e-6)
    with pytest.raises(ExecutionError, match="slope"):
        k("PRelu", 7)(x, s)  # from opset 7 on, (3,) aligns with the last dim, 5


def test_prelu_slope_must_broadcast_to_x():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ExecutionError, match=r"slope of shape \[2, 3, 1\]"):
        k("PRelu", 16)(x, np.ones((2, 3, 1), np.float32))
    with pytest.raises(ExecutionError, match="unidirectional"):
        k("PRelu", 16)(x, np.ones(2, np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, np.int8, np.uint8])
def test_shrink_matches_onnxruntime(dtype):
    x = np.arange(-6, 7).astype(dtype) if np.dtype(dtype).kind != "u" else np.arange(0, 13).astype(dtype)
    attrs = {"lambd": 1.5, "bias": 1.0}
    (got,) = k("Shrink", 9)(x, **attrs)
    want = run_ort("Shrink", {"x": x}, opset=9, **attrs)[0]
    assert_close(got, want, rtol=1e-6, atol=0)


# --- Softmax family ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("opset,axis", [(13, -1), (13, 0), (13, 1), (11, 1), (11, 0), (11, -1),
                                        (1, 2)])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_family_matches_onnxruntime(op, opset, axis, dtype):
    if opset == 1 and dtype == np.float16:
        pytest.skip("onnxruntime builds an invalid Cast for float16 at opset 1")
    x = (rng.standard_normal((2, 3, 4)) * 5).astype(dtype)
    x[0, 0, :2] = 1000  # large values: the max is subtracted first
    if op == "Hardmax":
        x[1, 1, :] = 7  # ties: the first maximum wins
    want = run_ort(op, {"x": x}, opset=opset, axis=axis)[0]
    (got,) = k(op, opset)(x, axis=axis)
    tol = 2e-3 if dtype == np.float16 else 1e-5
    assert_close(got, want, rtol=tol, atol=tol)


def test_softmax_default_axes_differ_by_version():
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    (y13,) = k("Softmax", 13)(x)
    np.testing.assert_allclose(y13.sum(axis=-1), 1, rtol=1e-6)
    (y11,) = k("Softmax", 11)(x)
    np.testing.assert_allclose(y11.reshape(2, 12).sum(axis=1), 1, rtol=1e-6)  # coerced to 2-D
    assert y11.shape == x.shape


def test_softmax_edge_cases():
    (y,) = k("Softmax", 13)(np.zeros((2, 0), np.float32))
    assert y.shape == (2, 0) and y.dtype == np.float32
    (y,) = k("Hardmax", 13)(np.zeros((0, 3), np.float16))
    assert y.shape == (0, 3) and y.dtype == np.float16
    (y,) = k("LogSoftmax", 11)(np.zeros((3, 0, 2), np.float32), axis=1)
    assert y.shape == (3, 0, 2)
    with pytest.raises(ExecutionError, match="axis 3"):
        k("Softmax", 13)(np.zeros((2, 3), np.float32), axis=3)
    with pytest.raises(ExecutionError, match="axis -3"):
        k("Softmax", 11)(np.zeros((2, 3), np.float32), axis=-3)
    with pytest.raises(ExecutionError, match="Softmax"):
        k("Softmax", 13)(np.zeros((2, 3), np.int32))
    x = np.array([[-np.inf, 0.0, -np.inf], [1e30, 1e30, -1e30]], np.float32)
    (y,) = k("Softmax", 13)(x)
    np.testing.assert_array_equal(y, [[0, 1, 0], [0.5, 0.5, 0]])
    (y,) = k("LogSoftmax", 13)(x)
    assert y[0, 1] == 0 and y[0, 0] == -np.inf


def test_softmax_bfloat16_long_rows_accumulate_in_float32():
    x = np.zeros((2, 4096), ml_dtypes.bfloat16)  # a bfloat16 running sum would stop at 256
    (y,) = k("Softmax", 13)(x)
    assert y.dtype == ml_dtypes.bfloat16
    np.testing.assert_allclose(y.astype(np.float32), 1 / 4096, rtol=1e-2)
