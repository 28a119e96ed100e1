"""Helpers shared by every kernel family: axis handling, index checks, allocation bounds."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from pyonnx.errors import ExecutionError, ResourceLimitExceeded

__all__ = [
    "normalize_axis",
    "normalize_axes",
    "check_indices",
    "check_alloc",
    "as_int_list",
]


def normalize_axis(axis: int, rank: int, what: str = "axis") -> int:
    """Map ``axis`` in [-rank, rank-1] to [0, rank-1]; anything else is an error."""
    axis = int(axis)
    if not -rank <= axis < rank:
        raise ExecutionError(f"{what} {axis} is out of range for a tensor of rank {rank} "
                             f"(allowed: {-rank} to {rank - 1})")
    return axis + rank if axis < 0 else axis


def normalize_axes(axes: Iterable[int], rank: int, what: str = "axes") -> tuple[int, ...]:
    """Normalize each axis; repeated axes are an error."""
    out = tuple(normalize_axis(a, rank, what) for a in axes)
    if len(set(out)) != len(out):
        raise ExecutionError(f"{what} {list(axes)} names an axis more than once")
    return out


def check_indices(indices: np.ndarray, dim: int, what: str = "indices") -> np.ndarray:
    """Check every index lies in [-dim, dim-1] and return them made non-negative (int64).

    NumPy would silently wrap -dim-1 or fail with its own IndexError; the spec makes an index
    outside the range an error, and we say which value and which range.
    """
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise ExecutionError(f"{what} must be integers, got {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < -dim or hi >= dim:
            bad = lo if lo < -dim else hi
            raise ExecutionError(f"{what} contains {bad}, outside the allowed range "
                                 f"[{-dim}, {dim - 1}] for a dimension of size {dim}")
        if lo < 0:
            idx = np.where(idx < 0, idx + dim, idx)
    return idx


def check_alloc(shape: Iterable[int], dtype: np.dtype | type, limit: int, what: str = "output") -> None:
    """Refuse to allocate a tensor of ``shape`` and ``dtype`` above ``limit`` bytes.

    Computed in Python integers, so a product of huge dims cannot overflow into a small number.
    """
    n = 1
    for d in shape:
        d = int(d)
        if d < 0:
            raise ExecutionError(f"{what} would have a negative dimension {d}")
        n *= d
    nbytes = n * max(np.dtype(dtype).itemsize, 1)
    if nbytes > limit:
        raise ResourceLimitExceeded(
            f"{what} would take {nbytes} bytes, above the limit of {limit} bytes "
            f"(SessionOptions max_tensor_bytes)")


def as_int_list(x: np.ndarray | Iterable[int] | None) -> list[int]:
    """A 1-D integer tensor (or list) as a list of Python ints."""
    if x is None:
        return []
    # tolist() converts in C, several times faster than iterating NumPy scalars; this runs on
    # every call of Reshape, Slice, Unsqueeze… for their shape and axes inputs
    a = np.asarray(x).reshape(-1)
    if a.dtype.kind in "iu":
        return a.tolist()
    return [int(v) for v in a.tolist()]
