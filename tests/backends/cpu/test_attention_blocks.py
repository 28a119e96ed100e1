"""The CPU provider's fast MultiHeadAttention computed in blocks of query rows split over the
intra-op threads, and the row-wise loops split in bands: the same results as the reference (to
the stated tolerance) and as the unsplit computation (bit for bit), with and without the
compiled loops."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import elementwise, fused, jit, threads
from pyonnx.ops.registry import get_kernel

_REF = get_kernel("com.microsoft", "MultiHeadAttention", 1)


@pytest.fixture
def pool(monkeypatch):
    """A budget of 3 threads on a pretend 4-core machine (BLAS untouched), blocks and bands
    small enough that test sizes split; gives the function that sets how many parts a call
    may split into (1: no split)."""
    saved = (threads._budget, threads._pool, threads._blas_set)
    monkeypatch.setattr(threads, "cores", lambda: 4)
    monkeypatch.setattr(threads, "_set_blas", lambda n: None)
    monkeypatch.setattr(fused, "MHA_BLOCK_ELEMENTS", 40)
    monkeypatch.setattr(fused, "MHA_MIN_GROUPS", 1)
    monkeypatch.setattr(fused, "MIN_BLOCK_MACS", 1)
    monkeypatch.setattr(elementwise, "MIN_BAND_ELEMENTS", 16)
    threads._budget, threads._pool = 0, None
    threads.request(3)

    previous = threads.set_share(0)
    yield threads.set_share  # the parts one call may split into on this thread
    threads.set_share(previous)
    threads._pool.shutdown(wait=True)
    threads._budget, threads._pool, threads._blas_set = saved


def _inputs(dtype, bias_shape, s=13, t=11, h=3, d=4, dv=5):
    rng = np.random.default_rng(7)
    b = 2
    q = rng.standard_normal((b, s, h * d)).astype(dtype)
    k = rng.standard_normal((b, t, h * d)).astype(dtype)
    v = rng.standard_normal((b, t, h * dv)).astype(dtype)
    ab = None
    if bias_shape is not None:
        ab = rng.standard_normal(bias_shape + (s, t)).astype(dtype)
        ab[..., 1, :] = -np.inf  # one query fully masked: NaN, as in the reference
        ab[..., 6, 2:] = -np.inf
    return q, k, v, ab, h


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("bias_shape", [None, (1, 1), (2, 1), (1, 3), (2, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("block", [40, 300])  # bands of 2-3 rows; heads in groups of 2 and 1
def test_blocked_attention_matches_the_reference(pool, compiled, bias_shape, dtype, block,
                                                 monkeypatch):
    monkeypatch.setattr(fused, "MHA_BLOCK_ELEMENTS", block)
    q, k, v, ab, h = _inputs(dtype, bias_shape)
    for scale in (None, 0.3):
        with np.errstate(invalid="ignore"):  # the reference's -inf - -inf of a masked row
            want = _REF(q, k, v, None, None, ab, num_heads=h, scale=scale)[0]
        with (jit.disabled() if not compiled else np.errstate()):
            got = fused.multi_head_attention(q, k, v, None, None, ab, num_heads=h,
                                             scale=scale)[0]
        assert got.shape == want.shape and got.dtype == want.dtype
        # the compiled softmax has its own exponential and may fuse scale and bias into one
        # multiply-add: a few ulp of the scores; BLAS's products are the reference's
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)
        assert np.array_equal(np.isnan(got), np.isnan(want))


@pytest.mark.parametrize("compiled", [True, False])
def test_blocked_attention_does_not_depend_on_the_threads(pool, compiled, monkeypatch):
    q, k, v, ab, h = _inputs(np.float32, (2, 3), s=17, t=9)
    results = []
    for block, budget in ((40, 3), (40, 1), (40, 2), (300, 3), (300, 1)):
        # the blocks are fixed by the shapes, not by the threads
        monkeypatch.setattr(fused, "MHA_BLOCK_ELEMENTS", block)
        pool(budget)
        with (jit.disabled() if not compiled else np.errstate()):
            results.append(fused.multi_head_attention(q, k, v, None, None, ab, num_heads=h)[0])
    for r in results[1:3]:
        np.testing.assert_array_equal(r, results[0])
    np.testing.assert_array_equal(results[4], results[3])


def test_one_query_row_and_short_sequences(pool):
    for s, t in ((1, 7), (2, 1), (3, 40)):
        q, k, v, ab, h = _inputs(np.float32, None, s=s, t=t)
        want = _REF(q, k, v, num_heads=h)[0]
        got = fused.multi_head_attention(q, k, v, num_heads=h)[0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------ row-wise loops split in bands

def _loops():
    pytest.importorskip("numba", reason="numba is not installed: no compiled loops to split")
    if not jit.available():
        pytest.skip("compiled loops are turned off (PYONNX_JIT=0)")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_loops_split_in_bands_equal_one_band(pool, dtype):
    _loops()
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((37, 9)) * 3).astype(dtype)
    x[4] = -np.inf
    scale = rng.standard_normal(9).astype(dtype)
    bias = rng.standard_normal(9).astype(dtype)
    runs = []
    for budget in (3, 1):
        pool(budget)
        ln = elementwise.layer_normalization(x, scale, bias, axis=-1, epsilon=1e-5)[0]
        skip = elementwise.skip_layer_normalization(x[None, 5:], x[None, 5:] * 2, scale, bias,
                                                    epsilon=1e-5)[0]
        runs.append((elementwise.softmax_rows(x, False), elementwise.softmax_rows(x, True),
                     elementwise.erf_loop(x, False), elementwise.erf_loop(x, True), ln, skip))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    assert np.isnan(runs[0][0][4]).all() and (runs[0][1][4] == 0).all()


def test_row_loops_split_over_the_threads(pool, monkeypatch):
    """The bands really are several calls of the loop (the split is not a no-op)."""
    _loops()
    calls = []
    real = jit.call
    monkeypatch.setattr(jit, "call", lambda name, *a, **kw: calls.append(name) or real(name, *a,
                                                                                        **kw))
    x = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
    elementwise.softmax_rows(x, False)
    assert len(calls) == 3
