"""Helpers shared by every kernel family: axis handling, index checks, allocation bounds, the
compute type of float kernels, optional outputs and attribute choices, and the floating-point
environment of a run."""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np

from pyonnx.errors import ExecutionError, ResourceLimitExceeded, UnsupportedOperatorError
from pyonnx.ops.registry import KernelContext

_T = TypeVar("_T")

__all__ = [
    "normalize_axis",
    "normalize_axes",
    "check_indices",
    "check_alloc",
    "tensor_limit",
    "as_int_list",
    "prod",
    "compute_dtype",
    "output_wanted",
    "check_choice",
    "as_matrix",
    "quiet_float_errors",
    "float_errors_quiet",
]


class _FloatEnvironment(threading.local):
    quiet = False


_FLOAT_ENV = _FloatEnvironment()


@contextlib.contextmanager
def quiet_float_errors() -> Iterator[None]:
    """Floating-point exceptions (overflow, division by zero, invalid) silent on this thread
    for the duration: inf and NaN results are what the spec computes, never a warning. The
    reference kernels each silence them around their own NumPy calls (they are callable on
    their own); a run enters this once (``InferenceSession``), so that the CPU provider's
    fast variants of the cheapest kernels can skip the per-call ``np.errstate``, which costs
    more than a small Add itself (measured: 2 µs against 1.1 µs for a [1, 16] Add)."""
    if _FLOAT_ENV.quiet:
        yield
        return
    with np.errstate(all="ignore"):
        _FLOAT_ENV.quiet = True
        try:
            yield
        finally:
            _FLOAT_ENV.quiet = False


def float_errors_quiet() -> bool:
    """Whether this thread is inside :func:`quiet_float_errors`."""
    return _FLOAT_ENV.quiet


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


def tensor_limit(ctx: KernelContext | None) -> int:
    """The bound on one computed tensor's bytes: the session's, or the default when a kernel is
    called directly without a context."""
    return ctx.max_tensor_bytes if ctx is not None else KernelContext.max_tensor_bytes


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


def prod(values: Iterable[int]) -> int:
    """Product of a sequence of integers as a Python int (1 for an empty one); never overflows."""
    return math.prod(int(v) for v in values)


def as_matrix(x: np.ndarray, split: int) -> np.ndarray:
    """``x`` viewed as the matrix [prod(shape[:split]), prod(shape[split:])] (each product 1 when
    empty).

    Spelled with both sizes because ``reshape(rows, -1)`` cannot infer the -1 when ``rows`` is
    0 (an empty batch): NumPy raises instead of giving a (0, n) matrix.
    """
    return x.reshape(prod(x.shape[:split]), prod(x.shape[split:]))


def compute_dtype(dtype: np.dtype | type) -> np.dtype:
    """The float type a float kernel computes in: the type itself for float32 and float64, float32
    for everything else (float16, bfloat16 and the narrower floats, whose NumPy arithmetic is
    slow and loses precision in sums)."""
    dtype = np.dtype(dtype)
    if dtype == np.float64 or dtype == np.float32:
        return dtype
    return np.dtype(np.float32)


def output_wanted(ctx: KernelContext | None, i: int) -> bool:
    """Whether optional output ``i`` exists on the node and has a name (someone consumes it).

    Without a context (a direct call) only the mandatory outputs are produced; an output the node
    declares but ``outputs_used`` does not cover counts as wanted.
    """
    if ctx is None:
        return False
    return i < ctx.num_outputs and (i >= len(ctx.outputs_used) or ctx.outputs_used[i])


def check_choice(op: str, attr: str, value: _T, allowed: tuple[_T, ...]) -> _T:
    """Return ``value`` if it is one of ``allowed``; otherwise raise UnsupportedOperatorError
    naming the operator, the attribute and the allowed values."""
    if value not in allowed:
        raise UnsupportedOperatorError(
            f"{op}: {attr} {value!r} is not supported; allowed values: "
            + ", ".join(repr(a) for a in allowed))
    return value
