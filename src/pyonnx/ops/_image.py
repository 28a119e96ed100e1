"""Separable N-D resampling shared by Resize and Upsample.

Resize is separable: each resized axis maps output index ``y`` to a source coordinate ``x`` and
takes a weighted sum of a few input positions around it. For every axis we build, once per call,
an index table ``[out, taps]`` and a weight table of the same shape, then apply the axes one after
the other with vectorized gathers (``np.take`` per tap and a weighted sum). Nearest mode needs one
index per output position: one ``np.take`` per resized axis, shrinking axes first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops._common import check_alloc

__all__ = ["AxisPlan", "axis_coordinates", "nearest_indices", "filter_tables", "resample",
           "compute_dtype_for"]


@dataclass
class AxisPlan:
    """How one axis is resampled.

    ``index`` is [out] for nearest or [out, taps] for filters; ``weight`` is None for nearest or
    [out, taps]; ``outside`` marks output positions that take ``extrapolation_value``
    (tf_crop_and_resize), or is None.
    """

    axis: int
    out_len: int
    index: np.ndarray
    weight: np.ndarray | None
    outside: np.ndarray | None


def axis_coordinates(mode: str, out_len: int, in_len: int, scale: float, out_width: float,
                     roi: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Source coordinate of every output index and the tf_crop_and_resize outside mask.

    ``scale`` is the scale of the axis (given, or out/in from sizes); ``out_width`` is
    ``in_len * scale`` before truncation (it may be fractional when scales were given).
    The arithmetic is float32 in onnxruntime's order of operations: with scales such as 0.6f
    that are inexact in binary, float32 rounding lands nearest-mode ties where users (and
    onnxruntime) expect them, where float64 would not. The result is returned as float64.
    """
    f = np.float32
    y = np.arange(out_len, dtype=f)
    sc = f(scale)
    half = f(0.5)
    outside = None
    if mode == "half_pixel":
        x = (y + half) / sc - half
    elif mode == "half_pixel_symmetric":
        # centre the implicit crop: differs from half_pixel when out_width is fractional
        adjustment = f(out_len) / f(out_width) if out_width else f(1)
        offset = f(in_len) / f(2) * (f(1) - adjustment)
        x = offset + (y + half) / sc - half
    elif mode == "pytorch_half_pixel":
        x = (y + half) / sc - half if out_len > 1 else np.zeros(out_len, f)
    elif mode == "align_corners":
        if out_len <= 1 or out_width == 1:
            x = np.zeros(out_len, f)
        else:
            x = y * f(in_len - 1) / f(out_width - 1)
    elif mode == "asymmetric":
        x = y / sc
    elif mode == "tf_half_pixel_for_nn":
        x = (y + half) / sc
    elif mode == "tf_crop_and_resize":
        assert roi is not None
        start, end = f(roi[0]), f(roi[1])
        if out_len <= 1 or out_width == 1:
            x = np.full(out_len, half * (start + end) * f(in_len - 1), f)
        else:
            x = start * f(in_len - 1) + y * (end - start) * f(in_len - 1) / f(out_width - 1)
        outside = (x < 0) | (x > in_len - 1)
        if not outside.any():
            outside = None
    else:  # pragma: no cover - checked by the caller
        raise AssertionError(mode)
    return x.astype(np.float64), outside


def nearest_indices(x: np.ndarray, in_len: int, nearest_mode: str, downsample: bool) -> np.ndarray:
    """Nearest input index of each coordinate, clamped into [0, in_len - 1]."""
    if nearest_mode == "round_prefer_floor":
        i = np.ceil(x - 0.5)
    elif nearest_mode == "round_prefer_ceil":
        i = np.floor(x + 0.5)
    elif nearest_mode == "floor":
        i = np.floor(x)
    elif nearest_mode == "ceil":
        i = np.ceil(x)
    elif nearest_mode == "simple":
        # before opset 11 (no nearest_mode attribute): truncate when upsampling, ceil when
        # downsampling, as onnxruntime has always done for Upsample and Resize-10
        i = np.ceil(x) if downsample else np.trunc(x)
    else:  # pragma: no cover - checked by the caller
        raise AssertionError(nearest_mode)
    return np.clip(i, 0, max(in_len - 1, 0)).astype(np.intp)


def _cubic_kernel(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with coefficient ``a`` at distances ``t``."""
    t = np.abs(t)
    t2 = t * t
    t3 = t2 * t
    near = (a + 2) * t3 - (a + 3) * t2 + 1
    far = a * t3 - 5 * a * t2 + 8 * a * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def filter_tables(x: np.ndarray, in_len: int, mode: str, scale: float, antialias: bool,
                  cubic_coeff_a: float, exclude_outside: bool) -> tuple[np.ndarray, np.ndarray]:
    """Index [out, taps] (clamped to the edge) and weight [out, taps] tables of linear/cubic.

    The weight of input position p for coordinate x is kernel((p - x) * s): s = 1 normally, and
    s = min(scale, 1) with antialias, which stretches the filter support by 1/scale when
    downsampling. The taps form a window of consecutive positions starting at floor(x) + start;
    positions outside the input repeat the edge value (clamped index) unless exclude_outside,
    which gives them weight 0. Each row is normalized to sum 1.
    """
    radius = 1.0 if mode == "linear" else 2.0
    s = min(scale, 1.0) if antialias else 1.0
    start = int(math.floor(-radius / s)) + 1
    taps = 2 - 2 * start
    base = np.floor(x)
    pos = base[:, None] + np.arange(start, start + taps)[None, :]
    d = (pos - x[:, None]) * s
    if mode == "linear":
        w = np.clip(1 - np.abs(d), 0, 1)
    else:
        w = _cubic_kernel(d, cubic_coeff_a)
    if exclude_outside:
        w = np.where((pos < 0) | (pos > in_len - 1), 0.0, w)
    total = w.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    w = w / total
    idx = np.clip(pos, 0, max(in_len - 1, 0)).astype(np.intp)
    return idx, w


def compute_dtype_for(dtype: np.dtype) -> np.dtype:
    """The dtype in which a weighted sum over values of ``dtype`` is computed."""
    if dtype.kind == "c":
        return dtype
    if dtype == np.float64 or (dtype.kind in "iu" and dtype.itemsize >= 4):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def _to_output(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast a float result to the input's dtype (integers: round half to even, saturate)."""
    if y.dtype == dtype:
        return y
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        y = np.clip(np.rint(y), info.min, info.max)
    return y.astype(dtype)


def resample(X: np.ndarray, plans: list[AxisPlan], extrapolation_value: float,
             max_bytes: int, what: str) -> np.ndarray:
    """Apply the per-axis plans to X, one axis at a time (the axes that shrink most first)."""
    out_shape = list(X.shape)
    for p in plans:
        out_shape[p.axis] = p.out_len
    check_alloc(out_shape, X.dtype, max_bytes, what)
    if not plans:
        return X.copy()
    if any(p.outside is not None for p in plans) and X.dtype.kind not in "fciub" \
            and "float" not in str(X.dtype):
        raise ExecutionError(f"{what}: extrapolation needs a numeric tensor, got {X.dtype}")

    if plans[0].weight is None:
        # nearest: one gather per resized axis, shrinking axes first
        Y = X
        for p in sorted(plans, key=lambda p: p.out_len / max(Y.shape[p.axis], 1)):
            Y = np.take(Y, p.index, axis=p.axis, mode="clip")  # indices are already in range
        if Y is X:
            Y = X.copy()
        for p in plans:
            if p.outside is not None:
                sl = [slice(None)] * Y.ndim
                sl[p.axis] = p.outside
                Y[tuple(sl)] = extrapolation_value
        return Y

    if X.dtype.kind in "bOUS":
        raise ExecutionError(f"{what}: linear and cubic modes need a numeric tensor, got {X.dtype}")
    cdt = compute_dtype_for(X.dtype)
    data = X.astype(cdt, copy=False)
    # shrink first: the later axes then work on less data
    for p in sorted(plans, key=lambda p: p.out_len / max(data.shape[p.axis], 1)):
        data = _apply_filter(data, p, cdt)
        if p.outside is not None:
            sl = [slice(None)] * data.ndim
            sl[p.axis] = p.outside
            data[tuple(sl)] = extrapolation_value
    return _to_output(data, X.dtype)


def _apply_filter(data: np.ndarray, p: AxisPlan, cdt: np.dtype) -> np.ndarray:
    """Weighted sum over the taps of one axis: sum_k take(data, index[:, k]) * weight[:, k]."""
    assert p.weight is not None
    shape = list(data.shape)
    shape[p.axis] = p.out_len
    bshape = [1] * data.ndim
    bshape[p.axis] = p.out_len
    w = p.weight.astype(cdt if cdt.kind != "c" else np.float64)
    out = np.empty(shape, cdt)
    tmp: np.ndarray | None = None
    first = True
    # two preallocated buffers instead of fresh arrays per tap: allocation (page faults) of
    # output-sized arrays costs as much as the arithmetic here
    for k in range(p.index.shape[1]):
        wk = w[:, k]
        if not wk.any():
            continue
        if first:
            np.take(data, p.index[:, k], axis=p.axis, out=out, mode="clip")
            out *= wk.reshape(bshape)
            first = False
        else:
            if tmp is None:
                tmp = np.empty(shape, cdt)
            np.take(data, p.index[:, k], axis=p.axis, out=tmp, mode="clip")
            tmp *= wk.reshape(bshape)
            out += tmp
    if first:
        out.fill(0)
    return out
