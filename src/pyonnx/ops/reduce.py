"""Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare, ArgMax, ArgMin.

Every Reduce* operator shares one driver (:func:`_reduce`): it resolves which axes to reduce
(the ``axes`` attribute in early versions, the ``axes`` input from ReduceSum-13 and the other
Reduce*-18, ``noop_with_empty_axes``), then applies the operator's own reduction function. A
reduction over an empty set of values yields the operator's identity, as the spec says: 0 for
sums, 1 for products, -inf (or the dtype's minimum, or False) for max and +inf (or the maximum,
or True) for min.

float16 and bfloat16 inputs are accumulated in float32 and the result is cast back, so a sum of
a few thousand half-precision values does not lose its low digits on the way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops._common import as_int_list, normalize_axes, normalize_axis
from pyonnx.ops.registry import kernel

__all__: list[str] = []

# A reduction function: (data, normalized axes, keepdims) -> reduced array (any dtype; the
# driver casts to the input dtype).
_ReduceFn = Callable[[np.ndarray, tuple[int, ...], bool], np.ndarray]


def _acc_dtype(dt: np.dtype) -> np.dtype:
    """The dtype to accumulate in: float32 for the half-precision floats, else the input dtype."""
    if dt.kind == "f" and dt.itemsize >= 4:
        return dt
    if dt.kind in "iub":
        return dt
    return np.dtype(np.float32)  # float16, bfloat16 (ml_dtypes kind 'V') and other narrow floats


def _float_dtype(dt: np.dtype) -> np.dtype:
    """The float dtype for a transcendental reduction: float64 for integers, else _acc_dtype."""
    return np.dtype(np.float64) if dt.kind in "iub" else _acc_dtype(dt)


def _reduced_count(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def _reduce(data: np.ndarray, axes: Sequence[int] | None, keepdims: int,
            noop_with_empty_axes: int, fn: _ReduceFn) -> tuple[np.ndarray]:
    """Resolve the axes per the spec, reduce with ``fn`` and return the input dtype."""
    x = np.asarray(data)
    axes_list = as_int_list(axes)
    if axes_list:
        ax = normalize_axes(axes_list, x.ndim, "axes")
    elif noop_with_empty_axes:
        # Reduction over the empty set of axes: composite ops still apply their element-wise
        # steps (ReduceSumSquare squares, ReduceLogSum takes the log).
        ax = ()
    else:
        ax = tuple(range(x.ndim))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = fn(x, ax, bool(keepdims))
        out = np.asarray(out)
        if out.dtype != x.dtype:
            out = out.astype(x.dtype)
    return (out,)


# ----------------------------------------------------------------------------- reduction functions

def _sum(x: np.ndarray, ax: tuple[int, ...], keep: bool) -> np.ndarray:
    return np.add.reduce(x, axis=ax, dtype=_acc_dtype(x.dtype), keepdims=keep)


def _mean(x: np.ndarray, ax: tuple[int, ...], keep: bool) -> np.ndarray:
    n = _reduced_count(x.shape, ax)
    if x.dtype.kind in "iu":
        if n == 0:
            raise ExecutionError("ReduceMean over an empty set of values is undefined for "
                                 f"integer type {x.dtype}")
        # Integer mean truncates toward zero (as C integer division does); summing in the
        # integer type avoids float64's loss of precision above 2**53.
        s = np.add.reduce(x, axis=ax, dtype=x.dtype, keepdims=keep)
        q = s // n
        if x.dtype.kind == "i":
            q = q + ((q < 0) & (q * n != s))
        return q
    s = np.add.reduce(x, axis=ax, dtype=_acc_dtype(x.dtype), keepdims=keep)
    return s / n


def _extreme_identity(dt: np.dtype, is_max: bool) -> object:
    """The value a max/min over no elements yields: -inf/+inf, the integer limits, False/True."""
    if dt.kind == "b":
        return not is_max
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return info.min if is_max else info.max
    return -np.inf if is_max else np.inf


def _max(x: np.ndarray, ax: tuple[int, ...], keep: bool) -> np.ndarray:
    if x.size == 0:
        return np.maximum.reduce(x, axis=ax, keepdims=keep,
                                 initial=_extreme_identity(x.dtype, True))
    return np.maximum.reduce(x, axis=ax, keepdims=keep)


def _min(x: np.ndarray, ax: tuple[int, ...], keep: bool) -> np.ndarray:
    if x.size == 0:
        return np.minimum.reduce(x, axis=ax, keepdims=keep,
                                 initial=_extreme_identity(x.dtype, False))
    return np.minimum.reduce(x, axis=ax, keepdims=keep)


def _prod(x: np.ndarray, ax: tuple[int, ...], keep: bool) -> np.ndarray:
    return np.multiply.reduce(x, axis=ax, dtype=_acc_dtype(x.dtype), keepdims=keep)


def _l1(x: np.ndarray, ax: tuple[int, ...], keep: bool) -> np.ndarray:
    return np.add.reduce(np.abs(x), axis=ax, dtype=_acc_dtype(x.dtype), keepdims=keep)


def _sum_square(x: np.ndarray, ax: tuple[int, ...], keep: bool) -> np.ndarray:
    xa = x.astype(_acc_dtype(x.dtype), copy=False)  # square float16 in float32: 300**2 overflows
    return np.add.reduce(xa * xa, axis=ax, keepdims=keep)


def _l2(x: np.ndarray, ax: tuple[int, ...], keep: bool) -> np.ndarray:
    xa = x.astype(_float_dtype(x.dtype), copy=False)
    return np.sqrt(np.add.reduce(xa * xa, axis=ax, keepdims=keep))


def _log_sum(x: np.ndarray, ax: tuple[int, ...], keep: bool) -> np.ndarray:
    s = np.add.reduce(x, axis=ax, dtype=_acc_dtype(x.dtype), keepdims=keep)
    return np.log(s.astype(_float_dtype(x.dtype), copy=False))


def _log_sum_exp(x: np.ndarray, ax: tuple[int, ...], keep: bool) -> np.ndarray:
    xa = x.astype(_float_dtype(x.dtype), copy=False)
    # Shift by the maximum so exp cannot overflow; an infinite (or empty: -inf) maximum is
    # replaced by 0 so that inf - inf never produces NaN.
    m = np.maximum.reduce(xa, axis=ax, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0)
    s = np.add.reduce(np.exp(xa - m), axis=ax, keepdims=True)
    out = np.log(s)
    out += m
    if not keep:
        out = out.reshape(tuple(d for i, d in enumerate(x.shape) if i not in ax))
    return out


# ----------------------------------------------------------------------------- registration

def _register(op_type: str, fn: _ReduceFn, attr_versions: tuple[int, ...],
              input_versions: tuple[int, ...], what: str) -> None:
    """Register the attribute-axes and the input-axes kernels of one Reduce* operator."""

    def reduce_axes_attr(data: np.ndarray, *, axes: list[int] | None = None,
                         keepdims: int = 1) -> tuple[np.ndarray]:
        return _reduce(data, axes, keepdims, 0, fn)

    def reduce_axes_input(data: np.ndarray, axes: np.ndarray | None = None, *,
                          keepdims: int = 1, noop_with_empty_axes: int = 0) -> tuple[np.ndarray]:
        return _reduce(data, axes, keepdims, noop_with_empty_axes, fn)

    for f, versions, how in ((reduce_axes_attr, attr_versions, "the axes attribute"),
                             (reduce_axes_input, input_versions, "the axes input")):
        f.__name__ = f.__qualname__ = f"{op_type}_{'_'.join(map(str, versions))}"
        f.__doc__ = f"{op_type}: the {what} of data over the axes given by {how}."
        kernel(op_type, versions=versions)(f)


_register("ReduceSum", _sum, (1, 11), (13,), "sum")
_register("ReduceMean", _mean, (1, 11, 13), (18,), "mean")
_register("ReduceMax", _max, (1, 11, 12, 13), (18, 20), "maximum")
_register("ReduceMin", _min, (1, 11, 12, 13), (18, 20), "minimum")
_register("ReduceProd", _prod, (1, 11, 13), (18,), "product")
_register("ReduceL1", _l1, (1, 11, 13), (18,), "sum of absolute values")
_register("ReduceL2", _l2, (1, 11, 13), (18,), "Euclidean norm")
_register("ReduceLogSum", _log_sum, (1, 11, 13), (18, 28), "log of the sum")
_register("ReduceLogSumExp", _log_sum_exp, (1, 11, 13), (18, 28), "log of the sum of exponentials")
_register("ReduceSumSquare", _sum_square, (1, 11, 13), (18,), "sum of squares")


# ----------------------------------------------------------------------------- ArgMax / ArgMin

def _arg(op_type: str, data: np.ndarray, axis: int, keepdims: int,
         select_last_index: int) -> tuple[np.ndarray]:
    x = np.asarray(data)
    ax = normalize_axis(axis, x.ndim, "axis")
    n = x.shape[ax]
    if n == 0:
        raise ExecutionError(f"{op_type} over axis {axis} of size 0: there is no element to select")
    f = np.argmax if op_type == "ArgMax" else np.argmin
    if select_last_index:
        # NumPy returns the first occurrence; searching the reversed axis finds the last one.
        idx = f(np.flip(x, ax), axis=ax, keepdims=bool(keepdims))
        idx = (n - 1) - idx
    else:
        idx = f(x, axis=ax, keepdims=bool(keepdims))
    return (np.asarray(idx, dtype=np.int64),)


@kernel("ArgMax", versions=(1, 11))
def argmax_1(data: np.ndarray, *, axis: int = 0, keepdims: int = 1) -> tuple[np.ndarray]:
    """ArgMax: int64 index of the first maximum along ``axis``."""
    return _arg("ArgMax", data, axis, keepdims, 0)


@kernel("ArgMax", versions=(12, 13))
def argmax_12(data: np.ndarray, *, axis: int = 0, keepdims: int = 1,
              select_last_index: int = 0) -> tuple[np.ndarray]:
    """ArgMax: int64 index of the first (or last) maximum along ``axis``."""
    return _arg("ArgMax", data, axis, keepdims, select_last_index)


@kernel("ArgMin", versions=(1, 11))
def argmin_1(data: np.ndarray, *, axis: int = 0, keepdims: int = 1) -> tuple[np.ndarray]:
    """ArgMin: int64 index of the first minimum along ``axis``."""
    return _arg("ArgMin", data, axis, keepdims, 0)


@kernel("ArgMin", versions=(12, 13))
def argmin_12(data: np.ndarray, *, axis: int = 0, keepdims: int = 1,
              select_last_index: int = 0) -> tuple[np.ndarray]:
    """ArgMin: int64 index of the first (or last) minimum along ``axis``."""
    return _arg("ArgMin", data, axis, keepdims, select_last_index)
