"""The CPU provider's pooling variants: GlobalAveragePool, the squeeze of mobile CNNs'
squeeze-and-excitation blocks (EfficientNet runs 16 of them, on up to 1.2M elements).

The reference (:mod:`pyonnx.ops.pool`) takes ``np.mean`` over the spatial axes. For a
C-contiguous float32/float64 input this variant sums each channel's row of positions instead:
by the compiled loop ``jit/pool_loops.row_means`` where the ``fast`` extra runs (a vectorized
sum, several times NumPy's speed; its summation order differs from NumPy's pairwise one, a
rounding difference), otherwise with ``np.add.reduce`` into a preallocated output and one
division (the reference's operations: the same result to the bit, without its
multi-axis reduction set-up). Everything else (other types, strided inputs, empty ones, the
checks) is the reference kernel's. tests/backends/cpu/test_pool.py holds it against the
reference.
"""

from __future__ import annotations

import numpy as np

from pyonnx.backends.cpu import jit
from pyonnx.backends.cpu.registry import fast_kernel
from pyonnx.ops.registry import get_kernel

__all__ = ["global_average_pool"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_REFERENCE = {v: get_kernel("", "GlobalAveragePool", v) for v in (1, 22)}


def _global_average_pool(X: np.ndarray, version: int) -> tuple[np.ndarray]:
    if X.ndim < 3 or X.dtype not in _FLOATS or X.size == 0 or not X.flags.c_contiguous:
        return _REFERENCE[version](X)
    rows = X.shape[0] * X.shape[1]
    length = X.size // rows
    y = np.empty(rows, X.dtype)
    if not jit.call("pool_loops.row_means", X.reshape(-1), length, y, elements=X.size):
        np.add.reduce(X.reshape(rows, length), axis=1, out=y)
        y /= X.dtype.type(length)
    return (y.reshape(X.shape[:2] + (1,) * (X.ndim - 2)),)


@fast_kernel("GlobalAveragePool", versions=(1,))
def global_average_pool_1(X: np.ndarray) -> tuple[np.ndarray]:
    """GlobalAveragePool (version 1): Y (N, C, 1, ...) = mean of each channel."""
    return _global_average_pool(X, 1)


@fast_kernel("GlobalAveragePool", versions=(22,))
def global_average_pool(X: np.ndarray) -> tuple[np.ndarray]:
    """GlobalAveragePool (version 22): Y (N, C, 1, ...) = mean of each channel."""
    return _global_average_pool(X, 22)
