"""The CPU provider's GlobalAveragePool (pyonnx.backends.cpu.pool) against the reference kernel
on random shapes: the compiled loop, the NumPy path (equal to the bit) and the cases that
fall back to the reference."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import jit, pool
from pyonnx.errors import ExecutionError
from pyonnx.ops.pool import global_average_pool as reference


def _shapes(rng: np.random.Generator, count: int) -> list[tuple[int, ...]]:
    out = []
    for _ in range(count):
        rank = int(rng.integers(3, 6))
        out.append(tuple(int(v) for v in rng.integers(1, 5, size=2))
                   + tuple(int(v) for v in rng.integers(1, 24, size=rank - 2)))
    return out + [(1, 96, 112, 112), (1, 1152, 7, 7)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_loop_equals_reference(loop_calls, dtype):
    rng = np.random.default_rng(0)
    for shape in _shapes(rng, 12):
        x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
        want = reference(x)[0]
        got = pool.global_average_pool(x)[0]
        assert got.shape == want.shape and got.dtype == want.dtype
        # another summation order: roundings of the partial sums differ
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    assert loop_calls.ran("pool_loops") and all(loop_calls.ran("pool_loops"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_path_is_bit_exact(dtype):
    rng = np.random.default_rng(1)
    for shape in _shapes(rng, 12):
        x = rng.standard_normal(shape).astype(dtype)
        with jit.disabled():
            got = pool.global_average_pool(x)[0]
            got1 = pool.global_average_pool_1(x)[0]
        want = reference(x)[0]
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got1, want)


def test_special_values_propagate():
    x = np.ones((1, 3, 4, 4), np.float32)
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 2, 2] = np.inf
    for run in (lambda: pool.global_average_pool(x)[0], lambda: reference(x)[0]):
        y = run().reshape(-1)
        assert np.isnan(y[0]) and y[1] == np.inf and y[2] == 1


def test_other_inputs_take_the_reference():
    rng = np.random.default_rng(2)
    strided = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)[..., ::2]
    np.testing.assert_array_equal(pool.global_average_pool(strided)[0], reference(strided)[0])
    half = rng.standard_normal((1, 4, 5, 5)).astype(np.float16)
    got = pool.global_average_pool(half)[0]
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, reference(half)[0])
    with pytest.raises(ExecutionError, match="rank >= 3"):
        pool.global_average_pool(np.zeros((2, 3), np.float32))
