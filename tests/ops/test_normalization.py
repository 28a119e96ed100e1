"""Normalization kernels: half-precision numerics, optional outputs, version differences,
error paths, and agreement with onnxruntime on one-node models."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ops.registry import registered_versions
from tests.ops._oracle import run_ort, schema_versions
from tests.ops._oracle import context as ctx
from tests.ops._oracle import kernel as k

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

OPS = ["BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization",
       "RMSNormalization", "LRN", "LpNormalization", "MeanVarianceNormalization"]


RNG = np.random.default_rng(7)


def test_every_schema_version_registered():
    for op in OPS:
        want = schema_versions(op)
        have = list(registered_versions("", op))
        if op == "LayerNormalization":  # plus onnxruntime's contrib version 1 (ops/contrib)
            have.remove(1)
        assert have == want, op


# ----------------------------------------------------------------------------- LayerNormalization

@pytest.mark.parametrize("axis", [-1, 1, -3])
def test_layer_norm_matches_onnxruntime(axis):
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32) * 3 + 1
    shape = x.shape[axis:] if axis < 0 else x.shape[axis:]
    w = RNG.standard_normal(shape).astype(np.float32)
    b = RNG.standard_normal(shape).astype(np.float32)
    y, mean, inv = k("LayerNormalization", 17)(x, w, b, axis=axis, ctx=ctx(3))
    ry, rmean, rinv = run_ort("LayerNormalization", {"x": x, "w": w, "b": b}, opset=17, outputs=3,
                              axis=axis)
    for got, ref in ((y, ry), (mean, rmean), (inv, rinv)):
        assert got.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_layer_norm_float16_computes_in_float32():
    # A large common offset: half-precision statistics would lose the small deviations.
    x = (RNG.standard_normal((4, 64)) * 0.5 + 100).astype(np.float16)
    w = np.ones(64, np.float16)
    y, mean, inv = k("LayerNormalization", 17)(x, w, None, ctx=ctx(3))
    assert y.dtype == np.float16 and mean.dtype == np.float32 and inv.dtype == np.float32
    assert mean.shape == (4, 1)
    x64 = x.astype(np.float64)
    ref = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y.astype(np.float64), ref, atol=4e-3)
    ry = run_ort("LayerNormalization", {"x": x, "w": w}, opset=17)[0]
    np.testing.assert_allclose(y.astype(np.float32), ry.astype(np.float32), atol=4e-3)


def test_layer_norm_bfloat16():
    import ml_dtypes
    x = RNG.standard_normal((3, 8)).astype(ml_dtypes.bfloat16)
    w = np.full(8, 2, ml_dtypes.bfloat16)
    (y,) = k("LayerNormalization", 17)(x, w, None, ctx=ctx(1))
    assert y.dtype == ml_dtypes.bfloat16
    x64 = x.astype(np.float64)
    ref = 2 * (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y.astype(np.float64), ref, atol=3e-2)


def test_layer_norm_optional_outputs_only_when_named():
    x = RNG.standard_normal((2, 6)).astype(np.float32)
    w = np.ones(6, np.float32)
    outs = k("LayerNormalization", 17)(x, w, None, ctx=ctx(1))
    assert len(outs) == 1
    outs = k("LayerNormalization", 17)(x, w, None, ctx=ctx(3, (True, False, True)))
    assert len(outs) == 3 and outs[1] is None and outs[2].shape == (2, 1)


def test_layer_norm_does_not_mutate_inputs():
    x = RNG.standard_normal((2, 6)).astype(np.float32)
    w, b = np.full(6, 2, np.float32), np.ones(6, np.float32)
    copies = [a.copy() for a in (x, w, b)]
    k("LayerNormalization", 17)(x, w, b, ctx=ctx(1))
    for a, c in zip((x, w, b), copies):
        np.testing.assert_array_equal(a, c)


def test_layer_norm_errors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ExecutionError, match="axis 2 is out of range"):
        k("LayerNormalization", 17)(x, np.ones(3, np.float32), axis=2, ctx=ctx(1))
    with pytest.raises(ExecutionError, match="Scale"):
        k("LayerNormalization", 17)(x, np.ones(4, np.float32), ctx=ctx(1))


# ----------------------------------------------------------------------------- RMSNormalization

def test_rms_norm_float16():
    x = RNG.standard_normal((2, 3, 8)).astype(np.float16)
    s = RNG.standard_normal(8).astype(np.float16)
    (y,) = k("RMSNormalization", 23)(x, s)
    assert y.dtype == np.float16 and y.shape == x.shape
    x64 = x.astype(np.float64)
    ref = x64 / np.sqrt((x64 * x64).mean(-1, keepdims=True) + 1e-5) * s.astype(np.float64)
    np.testing.assert_allclose(y.astype(np.float64), ref, atol=5e-3, rtol=5e-3)


# ----------------------------------------------------------------------------- Group / Instance

def test_group_norm_18_scale_per_group_equals_21_per_channel():
    x = RNG.standard_normal((2, 6, 3, 3)).astype(np.float32)
    s, b = np.array([1.5, -2.0], np.float32), np.array([0.5, 3.0], np.float32)
    (y18,) = k("GroupNormalization", 18)(x, s, b, num_groups=2)
    (y21,) = k("GroupNormalization", 21)(x, np.repeat(s, 3), np.repeat(b, 3), num_groups=2)
    np.testing.assert_allclose(y18, y21, rtol=1e-6)
    ref = run_ort("GroupNormalization", {"x": x, "s": np.repeat(s, 3), "b": np.repeat(b, 3)},
                  opset=21, num_groups=2)[0]
    np.testing.assert_allclose(y21, ref, rtol=1e-4, atol=1e-5)


def test_group_norm_errors():
    x = np.zeros((1, 6, 2), np.float32)
    with pytest.raises(ExecutionError, match="num_groups 4"):
        k("GroupNormalization", 21)(x, np.ones(6, np.float32), np.ones(6, np.float32), num_groups=4)
    with pytest.raises(ExecutionError, match="num_groups = 3"):
        k("GroupNormalization", 18)(x, np.ones(6, np.float32), np.ones(6, np.float32), num_groups=3)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_instance_norm_matches_onnxruntime(dtype):
    x = RNG.standard_normal((2, 3, 4, 5)).astype(dtype)
    s, b = RNG.standard_normal(3).astype(dtype), RNG.standard_normal(3).astype(dtype)
    (y,) = k("InstanceNormalization", 22)(x, s, b, epsilon=1e-3)
    ref = run_ort("InstanceNormalization", {"x": x, "s": s, "b": b}, opset=6, epsilon=1e-3)[0]
    assert y.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-2
    np.testing.assert_allclose(y.astype(np.float32), ref.astype(np.float32), rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- BatchNormalization

def _bn_params(c: int, dtype=np.float32):
    return (RNG.standard_normal(c).astype(dtype), RNG.standard_normal(c).astype(dtype),
            RNG.standard_normal(c).astype(dtype), RNG.uniform(0.5, 2, c).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_batch_norm_inference_matches_onnxruntime(dtype):
    x = RNG.standard_normal((2, 3, 4, 5)).astype(dtype)
    s, b, m, v = _bn_params(3, dtype)
    (y,) = k("BatchNormalization", 15)(x, s, b, m, v, ctx=ctx(1))
    ref = run_ort("BatchNormalization", dict(x=x, s=s, b=b, m=m, v=v), opset=15)[0]
    assert y.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-2
    np.testing.assert_allclose(y.astype(np.float32), ref.astype(np.float32), rtol=tol, atol=tol)


def test_batch_norm_training_mode_outputs_running_stats():
    x = RNG.standard_normal((4, 3, 5)).astype(np.float32)
    s, b, m, v = _bn_params(3)
    y, rm, rv = k("BatchNormalization", 15)(x, s, b, m, v, training_mode=1, momentum=0.8,
                                             ctx=ctx(3))
    bm, bv = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    ref = (x - bm[:, None]) / np.sqrt(bv[:, None] + 1e-5) * s[:, None] + b[:, None]
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rm, m * 0.8 + bm * 0.2, rtol=1e-5)
    np.testing.assert_allclose(rv, v * 0.8 + bv * 0.2, rtol=1e-5)
    assert rm.dtype == m.dtype and rm.shape == (3,)


def test_batch_norm_old_versions_and_1d_input():
    s, b, m, v = _bn_params(1)
    x = RNG.standard_normal(6).astype(np.float32)
    (y,) = k("BatchNormalization", 9)(x, s, b, m, v, ctx=ctx(1))
    np.testing.assert_allclose(y, (x - m) / np.sqrt(v + 1e-5) * s + b, rtol=1e-5)
    # Opset 6 test mode, as PyTorch exported it.
    x4 = RNG.standard_normal((2, 3, 2, 2)).astype(np.float32)
    s, b, m, v = _bn_params(3)
    (y,) = k("BatchNormalization", 6)(x4, s, b, m, v, is_test=1, ctx=ctx(1))
    ref = run_ort("BatchNormalization", dict(x=x4, s=s, b=b, m=m, v=v), opset=9)[0]
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    # Opset 7 training: five outputs (running mean/var, batch mean/var).
    outs = k("BatchNormalization", 7)(x4, s, b, m, v, ctx=ctx(5))
    assert len(outs) == 5
    np.testing.assert_allclose(outs[3], x4.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(outs[4], x4.var(axis=(0, 2, 3)), rtol=1e-5)


def test_batch_norm_non_spatial():
    x = RNG.standard_normal((4, 2, 3)).astype(np.float32)
    s, b, m = (RNG.standard_normal((2, 3)).astype(np.float32) for _ in range(3))
    v = RNG.uniform(0.5, 2, (2, 3)).astype(np.float32)
    (y,) = k("BatchNormalization", 7)(x, s, b, m, v, spatial=0, ctx=ctx(1))
    np.testing.assert_allclose(y, (x - m) / np.sqrt(v + 1e-5) * s + b, rtol=1e-5, atol=1e-6)


def test_batch_norm_wrong_parameter_size():
    x = np.zeros((2, 3, 4), np.float32)
    s, b, m, v = _bn_params(4)
    with pytest.raises(ExecutionError, match="C = 3"):
        k("BatchNormalization", 15)(x, s, b, m, v, ctx=ctx(1))


# ----------------------------------------------------------------------------- LRN / Lp / MVN

def test_lrn_matches_onnxruntime():
    x = RNG.standard_normal((2, 5, 3, 3)).astype(np.float32)
    (y,) = k("LRN", 13)(x, size=3, alpha=0.01, beta=0.6, bias=2.0)
    ref = run_ort("LRN", {"x": x}, opset=13, size=3, alpha=0.01, beta=0.6, bias=2.0)[0]
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


def test_lrn_even_size_window_per_spec():
    # onnxruntime refuses even sizes; the spec's window is [c - floor((size-1)/2), c + ceil(...)].
    x = RNG.standard_normal((1, 6, 2)).astype(np.float64)
    size = 4
    (y,) = k("LRN", 13)(x, size=size, alpha=0.1, beta=0.5, bias=1.0)
    ref = np.empty_like(x)
    for c in range(6):
        lo, hi = max(0, c - (size - 1) // 2), min(5, c + -(-(size - 1) // 2))
        ss = (x[:, lo:hi + 1] ** 2).sum(axis=1)
        ref[:, c] = x[:, c] / (1.0 + 0.1 / size * ss) ** 0.5
    np.testing.assert_allclose(y, ref, rtol=1e-12)


def test_lp_normalization_zero_norm_and_bad_p():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    (y,) = k("LpNormalization", 22)(x, axis=1, p=2)
    np.testing.assert_allclose(y, [[0.6, 0.8], [0.0, 0.0]])
    (y,) = k("LpNormalization", 22)(x, axis=-1, p=1)
    np.testing.assert_allclose(y, [[3 / 7, 4 / 7], [0.0, 0.0]])
    with pytest.raises(UnsupportedOperatorError, match="got 3"):
        k("LpNormalization", 22)(x, p=3)


def test_mvn_matches_formula():
    x = RNG.standard_normal((2, 3, 4, 4)).astype(np.float32)
    (y,) = k("MeanVarianceNormalization", 13)(x)
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    ref = (x - mean) / (np.sqrt(((x - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)) + 1e-9)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    (y,) = k("MeanVarianceNormalization", 13)(x, axes=[-1])
    assert y.shape == x.shape
