"""The CPU provider's SkipLayerNormalization (com.microsoft) by the layer-norm loop against the
reference kernel: every output, with and without beta and bias, float32 and float64, and the
cases it leaves to the reference."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import elementwise as fast_ew
from pyonnx.backends.cpu import jit
from pyonnx.ops.registry import KernelContext, get_kernel

REF = get_kernel("com.microsoft", "SkipLayerNormalization", 1)


def _inputs(shape, dtype, beta: bool, bias: bool):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(11)
    h = shape[-1]
    x, skip = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    gamma = rng.standard_normal(h).astype(dtype)
    b = rng.standard_normal(h).astype(dtype) if beta else None
    c = rng.standard_normal(h).astype(dtype) if bias else None
    return x, skip, gamma, b, c


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta,bias", [(True, True), (True, False), (False, True),
                                       (False, False)])
@pytest.mark.parametrize("shape", [(2, 5, 8), (7, 16)])
def test_skip_layer_norm_loop_matches_the_reference(loop_calls, dtype, beta, bias, shape):
    x, skip, gamma, b, c = _inputs(shape, dtype, beta, bias)
    ctx = KernelContext(num_outputs=4)
    got = fast_ew.skip_layer_normalization(x, skip, gamma, b, c, epsilon=1e-5, ctx=ctx)
    assert loop_calls.ran("rows_loops.layer_norm") == [True]
    want = REF(x, skip, gamma, b, c, epsilon=1e-5, ctx=ctx)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
    (y,) = fast_ew.skip_layer_normalization(x, skip, gamma, b, c, epsilon=1e-5)
    np.testing.assert_array_equal(y, got[0])  # one output when nothing more is asked for


def test_skip_layer_norm_leaves_other_cases_to_the_reference(loop_calls):
    x, skip, gamma, b, c = _inputs((2, 5, 8), np.float32, True, True)
    broadcast_skip = skip[:1]  # (1, sequence, hidden): allowed, computed by the reference
    got = fast_ew.skip_layer_normalization(x, broadcast_skip, gamma, b, c)
    np.testing.assert_array_equal(got[0], REF(x, broadcast_skip, gamma, b, c)[0])
    half = [a.astype(np.float16) for a in (x, skip, gamma, b, c)]
    np.testing.assert_array_equal(fast_ew.skip_layer_normalization(*half)[0], REF(*half)[0])
    assert loop_calls.ran("rows_loops.layer_norm") == []
    with pytest.raises(Exception, match="gamma"):
        fast_ew.skip_layer_normalization(x, skip, gamma[:3], b, c)
    with jit.disabled():
        (y,) = fast_ew.skip_layer_normalization(x, skip, gamma, b, c)
    np.testing.assert_array_equal(y, REF(x, skip, gamma, b, c)[0])
