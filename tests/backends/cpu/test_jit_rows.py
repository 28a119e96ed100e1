"""The CPU provider's compiled element and row loops (``erf_loops``, ``rows_loops``, through
its fast Erf, Gelu, LayerNormalization and Softmax) against the reference kernels' NumPy paths, math.erf/erfc and onnxruntime: Erf and exact Gelu over dense sweeps, tails, subnormals
and special values; LayerNormalization over shapes, axes, broadcast scale and bias, epsilon and
its Mean / InvStdDev outputs; Softmax over shapes and axes (opset 13 and the flattened 2-D form
of opsets 1 and 11) with rows of -inf, +inf and NaN, and the masked softmax (Attention's rule). float32 and
float64 run the loops; float16 keeps its NumPy path and is checked too."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from pyonnx.backends.cpu import elementwise as fast_ew  # noqa: E402
from pyonnx.backends.cpu import jit  # noqa: E402
from pyonnx.ops._attention import softmax_lastaxis_  # noqa: E402
from tests.ops._oracle import assert_close, run_ort  # noqa: E402
from tests.ops._oracle import run_kernel as _run_kernel  # noqa: E402


def run_kernel(*args, **kwargs):
    """The CPU provider's kernel (its loop where it has one, else the reference)."""
    return _run_kernel(*args, fast=True, **kwargs)


def erf(x):
    return fast_ew.erf(x)[0]


def gelu_erf(x):
    return fast_ew.gelu(x)[0]


rng = np.random.default_rng(7)
FLOATS = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


def _tol(dtype):
    return (1e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-14)


# --- Erf and Gelu -------------------------------------------------------------------------------


def _erf_sweep(dtype):
    tiny = float(np.finfo(dtype).tiny)
    smallest = float(np.finfo(dtype).smallest_subnormal)
    pos = np.concatenate([np.linspace(0, 7, 70001)[1:], np.geomspace(smallest, 1, 3000),
                          np.geomspace(1, 30, 3000), [tiny, 2 * tiny, 1 - 1e-7, 1, 1 + 1e-7,
                                                      float(np.finfo(dtype).max)]])
    x = np.concatenate([pos, -pos]).astype(dtype)
    return x[x != 0]


@FLOATS
def test_erf_accuracy_dense_sweep(loop_calls, dtype):
    x = _erf_sweep(dtype)
    got = erf(x)
    assert loop_calls.ran("erf_loops") == [True]
    assert got.dtype == dtype and got.shape == x.shape
    want = np.array([math.erf(float(v)) for v in x])
    # 2 ulp relative for normal results (the bound of the NumPy path); a subnormal result (erf
    # of a subnormal, ~1.13 x) within 1 unit of the subnormal spacing
    err = np.abs(got.astype(np.float64) - want)
    normal = np.abs(want) >= np.finfo(dtype).tiny
    assert (err[normal] / np.abs(want[normal])).max() <= 2 * np.finfo(dtype).eps
    assert (err[~normal] <= float(np.finfo(dtype).smallest_subnormal)).all()
    with jit.disabled():
        ref = erf(x)
    assert_close(got, ref, 4 * float(np.finfo(dtype).eps), 0, what="loop vs NumPy path")


@FLOATS
def test_erf_special_values(loop_calls, dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1e-40, -1e-300, 40.0, -40.0],
                 dtype)
    got = erf(x)
    assert loop_calls.ran("erf_loops") == [True]
    with jit.disabled():
        ref = erf(x)
    np.testing.assert_array_equal(got[:5], [0.0, -0.0, 1.0, -1.0, np.nan])
    assert not np.signbit(got[0]) and np.signbit(got[1])
    np.testing.assert_array_equal(got[-2:], [1.0, -1.0])
    assert_close(got, ref, 2 * float(np.finfo(dtype).eps), 0)
    y = erf(np.array(0.5, dtype))  # 0-d
    assert isinstance(y, np.ndarray) and y.shape == () and y.dtype == dtype
    assert abs(float(y) - math.erf(0.5)) <= 2 * np.finfo(dtype).eps * math.erf(0.5)


def test_erf_layouts_and_onnxruntime(loop_calls):
    a = (rng.standard_normal((1, 128, 96)) * 2).astype(np.float32)
    (got,) = run_kernel("Erf", a, opset=13)
    assert loop_calls.ran("erf_loops") == [True]
    assert_close(got, run_ort("Erf", [a], opset=13)[0], 1e-6, 1e-7, what="vs onnxruntime")
    t = a[0].T  # not contiguous
    assert_close(erf(t), erf(np.ascontiguousarray(t)), 0, 0)
    ro = a.copy()
    ro.flags.writeable = False
    assert_close(erf(ro), got, 0, 0)


def test_erf_float16_computes_in_float32(loop_calls):
    a = np.linspace(-4, 4, 101).astype(np.float16)
    (got,) = run_kernel("Erf", a, opset=13)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float64), [math.erf(float(v)) for v in a],
                               rtol=1e-3, atol=1e-3)


@FLOATS
def test_gelu_against_math_erfc_and_numpy_path(loop_calls, dtype):
    x = np.concatenate([np.linspace(-9, 9, 36001), np.geomspace(1e-30, 30, 2000),
                        -np.geomspace(1e-30, 30, 2000)]).astype(dtype)
    (got,) = run_kernel("Gelu", x, opset=20)
    assert loop_calls.ran("erf_loops") == [True]
    want = np.array([0.5 * float(v) * math.erfc(-float(v) / math.sqrt(2)) for v in x])
    if dtype == np.float64:
        keep = np.abs(x) <= 8
        np.testing.assert_allclose(got[keep], want[keep], rtol=3e-14, atol=1e-300)
    else:
        # rounding x / sqrt(2) to float32 alone moves erfc by ~2 z^2 ulps in the tail
        keep = np.abs(x) <= 5.5
        np.testing.assert_allclose(got[keep], want[keep], rtol=5e-6, atol=1e-30)
    with jit.disabled():
        (ref,) = run_kernel("Gelu", x, opset=20)
    _assert_gelu_close(got, ref, x)


def _assert_gelu_close(got, ref, x):
    """Within a few ulps times (1 + z^2), z = x / sqrt(2): rounding z^2 moves exp(-z^2) by z^2
    ulps, differently in the two paths."""
    eps = float(np.finfo(x.dtype).eps)
    bound = 4 * eps * (1 + np.square(x.astype(np.float64)) / 2) * np.abs(ref.astype(np.float64))
    with np.errstate(invalid="ignore"):  # inf - inf
        diff = np.abs(got.astype(np.float64) - ref)
    same = (got == ref) | (np.isnan(got) & np.isnan(ref))
    assert got.dtype == ref.dtype and (same | (diff <= bound)).all()


@FLOATS
def test_gelu_special_values_and_onnxruntime(loop_calls, dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, -30.0, 30.0], dtype)
    got = gelu_erf(x)
    with jit.disabled():
        ref = gelu_erf(x)
    _assert_gelu_close(got, ref, x)
    assert np.signbit(got[1]) and got[2] == np.inf and np.isnan(got[4])
    a = (rng.standard_normal((1, 197, 64)) * 3).astype(dtype)
    (y,) = run_kernel("Gelu", a, opset=20)
    if dtype == np.float32:  # onnxruntime has no double Erf, which its Gelu expands to
        assert_close(y, run_ort("Gelu", [a], opset=20)[0], 1e-6, 1e-7, what="vs onnxruntime")
    (y,) = run_kernel("Gelu", a.astype(np.float16), opset=20)  # computed in float32
    assert y.dtype == np.float16
    with jit.disabled():
        ref16 = gelu_erf(a.astype(np.float16).astype(np.float32))
    assert_close(y.astype(np.float32), ref16, 2e-3, 1e-3)


# --- LayerNormalization -------------------------------------------------------------------------

# (name, X shape, axis, Scale shape, B shape or None)
_LN_CASES = [
    ("vit_tiny", (1, 197, 192), -1, (192,), (192,)),
    ("bert_small", (1, 128, 512), -1, (512,), (512,)),
    ("no_bias", (2, 7, 33), -1, (33,), None),
    ("one_row", (300,), 0, (300,), (300,)),
    ("axis_0", (3, 4, 5), 0, (3, 4, 5), (3, 4, 5)),
    ("axis_1_of_4", (2, 3, 4, 5), 1, (3, 4, 5), (3, 4, 5)),
    ("axis_2_scale_broadcast", (2, 3, 4, 5), 2, (5,), (1, 5)),
    ("axis_minus_2_scalar_scale", (2, 3, 4, 5), -2, (1,), (4, 1)),
    ("leading_ones_in_scale", (2, 6, 9), -1, (1, 1, 9), (1, 9)),
    ("row_of_one", (6, 1), -1, (1,), (1,)),
    ("rows_of_7", (11, 7), 1, (7,), (7,)),
    ("long_rows", (3, 1000), -1, (1000,), (1000,)),
    ("rows_over_two_blocks", (2, 600), 1, (600,), None),
]


def _ln_inputs(x_shape, s_shape, b_shape, dtype, seed=0):
    g = np.random.default_rng(seed)
    x = (g.standard_normal(x_shape) * 3 + 1.5).astype(dtype)
    s = g.standard_normal(s_shape).astype(dtype)
    b = None if b_shape is None else g.standard_normal(b_shape).astype(dtype)
    return x, s, b


def _ln(x, s, b, axis, dtype, epsilon=1e-5, outputs=3):
    stash = 1 if dtype != np.float64 else 11
    return run_kernel("LayerNormalization", x, s, b, opset=17, num_outputs=outputs,
                      axis=axis, epsilon=epsilon, stash_type=stash)


@FLOATS
@pytest.mark.parametrize("name, x_shape, axis, s_shape, b_shape", _LN_CASES,
                         ids=[c[0] for c in _LN_CASES])
def test_layer_norm_matches_numpy_path_and_onnxruntime(loop_calls, name, x_shape, axis, s_shape,
                                                       b_shape, dtype):
    x, s, b = _ln_inputs(x_shape, s_shape, b_shape, dtype)
    got = _ln(x, s, b, axis, dtype)
    assert loop_calls.ran("rows_loops.layer_norm") == [True]
    with jit.disabled():
        want = _ln(x, s, b, axis, dtype)
    rtol, atol = _tol(dtype)
    for g, w, what in zip(got, want, ("Y", "Mean", "InvStdDev")):
        assert_close(g, w, rtol, atol, what=f"{name} {what}: loop vs NumPy path")
    if dtype == np.float64:
        return  # onnxruntime has no double LayerNormalization
    inputs = [x, s] + ([b] if b is not None else [])
    ref = run_ort("LayerNormalization", inputs, dict(axis=axis, epsilon=1e-5), opset=17,
                  outputs=3)
    for g, w, what in zip(got, ref, ("Y", "Mean", "InvStdDev")):
        assert_close(g, w, 1e-4, 1e-5, what=f"{name} {what}: loop vs onnxruntime")


@FLOATS
@pytest.mark.parametrize("epsilon", [0.0, 1e-12, 0.5])
def test_layer_norm_epsilon_and_special_rows(loop_calls, dtype, epsilon):
    x, s, b = _ln_inputs((6, 40), (40,), (40,), dtype, seed=3)
    x[1] = 2.5  # constant row: variance 0 (with epsilon 0, 0 * inf is NaN, as in NumPy)
    x[2, 5] = np.nan
    x[3, 0] = np.inf
    x[4, 7] = -np.inf
    got = _ln(x, s, b, -1, dtype, epsilon)
    assert loop_calls.ran("rows_loops.layer_norm") == [True]
    with jit.disabled():
        want = _ln(x, s, b, -1, dtype, epsilon)
    rtol, atol = _tol(dtype)
    for g, w in zip(got, want):
        assert_close(g, w, rtol, atol)
    assert np.isnan(got[0][2]).all()


@FLOATS
def test_layer_norm_outputs_wanted(loop_calls, dtype):
    x, s, b = _ln_inputs((4, 5, 6), (6,), (6,), dtype)
    (y,) = _ln(x, s, b, -1, dtype, outputs=1)
    y2, mean = _ln(x, s, b, -1, dtype, outputs=2)
    assert mean.shape == (4, 5, 1) and mean.dtype == dtype
    assert_close(y, y2, 0, 0)
    np.testing.assert_allclose(mean[..., 0], x.astype(np.float64).mean(-1), rtol=1e-6)
    stash = 1 if dtype != np.float64 else 11
    out = run_kernel("LayerNormalization", x, s, b, opset=17, num_outputs=3,
                     used=(True, False, True), stash_type=stash)
    assert out[1] is None and out[2].shape == (4, 5, 1)


def test_layer_norm_paths_the_loop_leaves_to_numpy(loop_calls):
    x, s, b = _ln_inputs((3, 4, 5), (3, 1, 5), (5,), np.float32)
    got = _ln(x, s, b, 1, np.float32)  # scale varies along the rows: NumPy path
    x64 = x.astype(np.float64)
    got64 = run_kernel("LayerNormalization", x64, s.astype(np.float64), b.astype(np.float64),
                       opset=17, num_outputs=3, axis=-1)  # float stash for double input
    (got16,) = run_kernel("LayerNormalization", x.astype(np.float16), s.astype(np.float16)[2:],
                          b.astype(np.float16), opset=17, axis=-1)
    assert loop_calls.ran("rows_loops.layer_norm") == []
    with jit.disabled():
        want = _ln(x, s, b, 1, np.float32)
    assert_close(got[0], want[0], 0, 0)
    assert got64[1].dtype == np.float32 and got64[0].dtype == np.float64
    assert got16.dtype == np.float16
    ref = run_ort("LayerNormalization", [x, s[2:], b], dict(axis=-1), opset=17)[0]
    assert_close(got16.astype(np.float32), ref, 5e-3, 5e-3)


# --- Softmax ------------------------------------------------------------------------------------

# (name, X shape, axis, opset)
_SM_CASES = [
    ("vit_tiny_heads", (1, 3, 197, 197), -1, 13),
    ("bert_small_heads", (1, 8, 128, 128), -1, 13),
    ("short_rows", (5, 3), 1, 13),
    ("rows_of_one", (4, 1), -1, 13),
    ("long_rows", (3, 1000), -1, 13),
    ("vector", (37,), 0, 13),
    ("coerced_axis_1", (2, 3, 4, 5), 1, 11),
    ("coerced_axis_2", (2, 3, 4, 5), 2, 11),
    ("coerced_default_axis", (3, 7, 9), 1, 1),
    ("coerced_last_axis", (4, 6, 10), -1, 11),
]


@FLOATS
@pytest.mark.parametrize("name, shape, axis, opset", _SM_CASES, ids=[c[0] for c in _SM_CASES])
def test_softmax_matches_numpy_path_and_onnxruntime(loop_calls, name, shape, axis, opset, dtype):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    (got,) = run_kernel("Softmax", x, opset=opset, axis=axis)
    assert loop_calls.ran("rows_loops.softmax") == [True]
    with jit.disabled():
        (want,) = run_kernel("Softmax", x, opset=opset, axis=axis)
    rtol, atol = _tol(dtype)
    assert_close(got, want, rtol, atol, what=f"{name}: loop vs NumPy path")
    ref = run_ort("Softmax", [x], dict(axis=axis), opset=opset)[0]
    assert_close(got, ref, 1e-5, 1e-7, what=f"{name}: loop vs onnxruntime")


@FLOATS
def test_softmax_special_rows(loop_calls, dtype):
    x = (rng.standard_normal((12, 21)) * 3).astype(dtype)
    x[0] = -np.inf  # all -inf: NaN
    x[1, 3] = np.nan
    x[2, 0] = np.nan  # NaN first
    x[3, 20] = np.inf
    x[4, :20] = -np.inf  # one finite entry: 1 there, 0 elsewhere
    x[5] = 1e30  # huge equal values: uniform
    x[6, ::2] = -1e4  # entries far below the max: exactly 0
    x[7, 1] = -np.inf
    x[8] = np.array([0.0] + [-100.0] * 20, dtype)  # exp(-100): subnormal in float32
    x[9, 0] = np.finfo(dtype).max
    x[10, 0] = -np.finfo(dtype).max
    (got,) = run_kernel("Softmax", x, opset=13)
    assert loop_calls.ran("rows_loops.softmax") == [True]
    with jit.disabled():
        (want,) = run_kernel("Softmax", x, opset=13)
    rtol, atol = _tol(dtype)
    tiny = float(np.finfo(dtype).smallest_subnormal)
    assert_close(got, want, rtol, tiny)
    assert np.isnan(got[:4]).all() and not np.isnan(got[4:]).any()
    np.testing.assert_array_equal(got[4], [0.0] * 20 + [1.0])
    np.testing.assert_allclose(got[5], 1 / 21, rtol=rtol)
    assert (got[6, ::2] == 0).all() and got[7, 1] == 0
    np.testing.assert_allclose(got[8, 1:], math.exp(-100) / (1 + 20 * math.exp(-100)),
                               rtol=1e-14, atol=tiny)


def test_softmax_paths_the_loop_leaves_to_numpy(loop_calls):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    (got,) = run_kernel("Softmax", x, opset=13, axis=1)  # not the last axis
    (got16,) = run_kernel("Softmax", x.astype(np.float16), opset=13)
    assert loop_calls.ran("rows_loops.softmax") == []
    assert_close(got, run_ort("Softmax", [x], dict(axis=1), opset=13)[0], 1e-6, 1e-7)
    assert got16.dtype == np.float16
    assert_close(got16, run_ort("Softmax", [x.astype(np.float16)], {}, opset=13)[0], 1e-3, 1e-3)


@FLOATS
def test_masked_softmax_rows_match_attentions_rule(loop_calls, dtype):
    scores = (rng.standard_normal((2, 3, 5, 17)) * 3).astype(dtype)
    scores[0, 1, 2] = -np.inf  # fully masked query: zeros
    scores[1, 0, 4, :16] = -np.inf
    scores[1, 2, 0, :] = -np.inf
    scores[1, 2, 0, 9] = np.nan  # masked but NaN: NaN
    scores[0, 0, 0, 3] = np.nan
    got = fast_ew.softmax_rows(scores, True)
    assert loop_calls.ran("rows_loops.softmax") == [True]
    want = softmax_lastaxis_(scores.copy())  # the reference Attention's NumPy softmax
    rtol, atol = _tol(dtype)
    assert_close(got, want, rtol, atol)
    assert (got[0, 1, 2] == 0).all()
    assert np.isnan(got[1, 2, 0]).all() and np.isnan(got[0, 0, 0]).all()
    np.testing.assert_array_equal(got[1, 0, 4], [0.0] * 16 + [1.0])
    view = np.swapaxes(scores.copy(), 2, 3)  # not contiguous
    assert_close(fast_ew.softmax_rows(view, True), softmax_lastaxis_(view.copy()), rtol, atol)
