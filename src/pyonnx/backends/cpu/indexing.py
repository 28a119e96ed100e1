"""TopK and GatherND on the CPU provider: the small-input cases of detection models, in fewer
NumPy calls.

SSDlite's post-processing runs, per class (90 of them), a TopK of 300 out of 3234 scores and
two GatherND of 3234 rows: 270 calls per run on small arrays, where the reference kernels'
per-call work (the generic axis handling, the tie repair of a partial TopK) costs more than
the data.

* **TopK** of float32 (and 8- to 32-bit integer) values: each value is mapped to an unsigned
  32-bit key in the same order (floats: sign-magnitude to two's complement order; -0.0 made
  +0.0 and every NaN one NaN first, since NumPy's sorts hold them equal and NaN above
  infinity), and packed with its index into one 64-bit key, ``key << 32 | index`` (for the
  largest, ``2**32 - 1 - key``): an ascending order of these keys is the spec's order
  (value, ties by lower index) with no tie left. ``np.partition`` picks the k smallest keys,
  ``np.sort`` orders them, and the indices are their low halves; the values are read from X
  at those indices. The result is the reference's exactly, NaNs and ties included. Other
  types (float64, int64, ml_dtypes) go to the reference, as do empty inputs.
* **GatherND** with ``batch_dims`` 0: the reference's checks (:func:`pyonnx.ops.indexing.
  _nd_prepare`), then the k index columns folded into one row index of ``data`` seen as
  [rows, rest] and a single ``np.take``. Other batch_dims go to the reference.

tests/backends/cpu/test_indexing.py holds both against the reference kernels.
"""

from __future__ import annotations

import math

import numpy as np

from pyonnx.backends.cpu.registry import fast_kernel
from pyonnx.ops import indexing as _reference
from pyonnx.ops.indexing import _k_value, _nd_prepare

__all__: list[str] = []

_SIGNED = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32))
_UNSIGNED = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32))


def _order_keys(x: np.ndarray) -> np.ndarray | None:
    """uint64 keys below 2**32, one per element of x, ordered as NumPy's sort orders x (NaN
    last, -0.0 equal to +0.0); None for a type without such keys."""
    if x.dtype == np.float32:
        x = x + np.float32(0)  # -0.0 + 0.0 is +0.0: NumPy holds the two zeros equal
        x[np.isnan(x)] = np.nan  # one NaN (its sign and payload vary), above +inf
        bits = x.view(np.uint32)
        # negative floats: all bits flipped (larger magnitude, smaller key); positive: sign set
        mask = (bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF) | np.uint32(0x80000000)
        return (bits ^ mask).astype(np.uint64)
    if x.dtype in _SIGNED:
        return (x.astype(np.int64) + (1 << 31)).astype(np.uint64)
    if x.dtype in _UNSIGNED:
        return x.astype(np.uint64)
    return None


def _topk(X: np.ndarray, k: int, axis: int, largest: int
          ) -> tuple[np.ndarray, np.ndarray] | None:
    """TopK by packed keys (see the module docstring), or None where the reference runs (it
    also raises the errors)."""
    if X.size == 0 or not -X.ndim <= axis < X.ndim:
        return None
    ax = axis % X.ndim
    n = X.shape[ax]
    if not 0 < k <= n or n >= 1 << 32:
        return None
    moved = X if ax == X.ndim - 1 else np.moveaxis(X, ax, -1)
    keys = _order_keys(moved)
    if keys is None:
        return None
    if largest:
        keys = np.uint64(0xFFFFFFFF) - keys  # descending values (ties still by index below)
    keys <<= np.uint64(32)
    keys |= np.arange(n, dtype=np.uint64)
    if k < n:
        keys = np.partition(keys, k - 1, axis=-1)[..., :k]
    keys.sort(axis=-1)
    order = (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
    if X.ndim == 1:  # SSDlite's case: plain indexing, no along-axis index grids
        return X[order], order
    values = np.take_along_axis(moved, order, axis=-1)
    return np.moveaxis(values, -1, ax), np.moveaxis(order, -1, ax)


@fast_kernel("TopK", versions=(1,))
def topk_1(X: np.ndarray, *, k: int, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """TopK-1, as :func:`pyonnx.ops.indexing.topk_1`."""
    return _topk(X, int(k), axis, 1) or _reference.topk_1(X, k=k, axis=axis)


@fast_kernel("TopK", versions=(10,))
def topk_10(X: np.ndarray, K: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """TopK-10, as :func:`pyonnx.ops.indexing.topk_10`."""
    return _topk(X, _k_value(K), axis, 1) or _reference.topk_10(X, K, axis=axis)


@fast_kernel("TopK", versions=(11, 24))
def topk(X: np.ndarray, K: np.ndarray, *, axis: int = -1, largest: int = 1,
         sorted: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """TopK-11 and 24, as :func:`pyonnx.ops.indexing.topk` (sorted=0 sorted too, as there)."""
    return _topk(X, _k_value(K), axis, largest) or _reference.topk(
        X, K, axis=axis, largest=largest, sorted=sorted)


@fast_kernel("GatherND", versions=(11, 12, 13))
def gather_nd(data: np.ndarray, indices: np.ndarray, *, batch_dims: int = 0) -> tuple[np.ndarray]:
    """GatherND, as :func:`pyonnx.ops.indexing.gather_nd`."""
    if batch_dims != 0:
        return _reference.gather_nd(data, indices, batch_dims=batch_dims)
    _, k, cols = _nd_prepare(data, indices, 0, "GatherND")
    rows = math.prod(data.shape[:k])
    # the row-major position of each k-tuple among data's first k dims
    index = cols[0].reshape(-1)
    for j in range(1, k):
        index = index * data.shape[j] + cols[j].reshape(-1)
    out = np.take(data.reshape((rows,) + data.shape[k:]), index, axis=0)
    return (out.reshape(indices.shape[:-1] + data.shape[k:]),)
