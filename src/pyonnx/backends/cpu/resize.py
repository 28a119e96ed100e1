"""Resize on the CPU provider: both image axes of a plane at once, planes split over threads.

The reference (:func:`pyonnx.ops.image.resize_11` and its siblings) builds a plan per resized
axis (an index table and, for linear and cubic, a weight table; :func:`pyonnx.ops.image.
resize_plans`) on every call, then applies the axes one after the other over the whole tensor
(:func:`pyonnx.ops._image.resample`), several passes over an output-sized array per axis. On
LR-ASPP's 21 x 65 x 65 -> 21 x 520 x 520 upsampling that is ~20 ms.

This variant

* keeps the plans per node and input geometry (shape, scales, sizes, roi), in the bound node's
  memo (:class:`pyonnx.ops.registry.NodeMemo`), with the filter tables already reduced to the
  taps the reference applies (a tap whose weight is 0 for every output is skipped there too)
  and cast to the element type;
* for a C-contiguous float32/float64 input of rank 4 whose resized axes are among the last two
  (NCHW images; every mode but ``tf_crop_and_resize``, whose extrapolation stays with the
  reference), runs the compiled loops of ``jit/resize_loops`` (``fast`` extra) over ranges of
  the N x C planes, split over the intra-op threads (:func:`threads.parallel_for`); without
  them, the reference's own :func:`resample` on each range of planes, also split over threads.

Every output element is computed by the reference's operations in its order (the axis that
shrinks most first, taps summed left to right, each product and sum rounded in the element
type), so the result equals the reference's to the bit (tests/backends/cpu/test_resize.py).
Everything else (other ranks, types and layouts, extrapolation, empty tensors, every error) is
the reference kernel's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pyonnx.backends.cpu import jit, threads
from pyonnx.backends.cpu.registry import fast_kernel
from pyonnx.ops._common import check_alloc, tensor_limit
from pyonnx.ops._image import AxisPlan, resample
from pyonnx.ops.image import _CTM_11, _CTM_13, _CTM_19, resize_plans
from pyonnx.ops.registry import KernelContext, NodeMemo, node_memo

__all__: list[str] = []

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# output elements per part of the thread split at least (smaller work is not worth a hand-off)
_MIN_PART = 1 << 16
# output elements per block of the NumPy path's second pass (its temporaries stay in the cache)
_BLOCK = 1 << 14


@dataclass(frozen=True)
class _Tables:
    """A plan for planes: the source rows / columns of each output row / column and their
    weights ([taps, out], only the taps the reference applies; for nearest [out] and no
    weights), and which axis goes first."""

    iy: np.ndarray
    wy: np.ndarray | None
    ix: np.ndarray
    wx: np.ndarray | None
    rows_first: bool


def _key(X: np.ndarray, *inputs: np.ndarray | None) -> tuple:
    """What the plans depend on besides the node's attributes."""
    return (X.shape,) + tuple(None if a is None else (a.dtype.str, a.shape, a.tobytes())
                              for a in inputs)


def _axis_tables(p: AxisPlan | None, length: int, dtype: np.dtype
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """One axis' filter tables for the loops, [taps, out] (an axis without a plan: each output
    its own input, with weight 1), or None when no tap applies (the reference then writes
    zeros; left to it)."""
    if p is None:
        return np.arange(length, dtype=np.intp)[None, :], np.ones((1, length), dtype)
    assert p.weight is not None
    w = p.weight.astype(dtype)  # the reference's cast, before its tap test
    active = np.nonzero(w.any(axis=0))[0]
    if active.size == 0:
        return None
    return (np.ascontiguousarray(p.index[:, active].T, dtype=np.intp),
            np.ascontiguousarray(w[:, active].T))


def _plane_tables(plans: list[AxisPlan], shape: tuple[int, ...], dtype: np.dtype
                  ) -> _Tables | None:
    """The loops' tables for these plans, or None where the loops do not apply."""
    if len(shape) != 4 or not plans or any(p.axis < 2 or p.outside is not None for p in plans):
        return None
    by_axis = {p.axis: p for p in plans}
    nearest = plans[0].weight is None
    if nearest:
        iy = by_axis[2].index if 2 in by_axis else np.arange(shape[2])
        ix = by_axis[3].index if 3 in by_axis else np.arange(shape[3])
        return _Tables(np.ascontiguousarray(iy, dtype=np.intp), None,
                       np.ascontiguousarray(ix, dtype=np.intp), None, True)
    ty = _axis_tables(by_axis.get(2), shape[2], dtype)
    tx = _axis_tables(by_axis.get(3), shape[3], dtype)
    if ty is None or tx is None:
        return None
    # the reference's order: the axis that shrinks most first (a stable sort, so H on a tie)
    first = sorted(plans, key=lambda p: p.out_len / max(shape[p.axis], 1))[0]
    return _Tables(ty[0], ty[1], tx[0], tx[1], first.axis == 2)


def _rows_pass(src: np.ndarray, iy: np.ndarray, wy: np.ndarray, dst: np.ndarray,
               tmp: np.ndarray) -> None:
    """dst = sum_k src[iy[k]] * wy[k, :, None] (rows of src), the reference's operations."""
    np.take(src, iy[0], axis=0, out=dst)
    dst *= wy[0][:, None]
    for k in range(1, iy.shape[0]):
        np.take(src, iy[k], axis=0, out=tmp)
        tmp *= wy[k][:, None]
        dst += tmp


def _columns_pass(src: np.ndarray, ix: np.ndarray, wx: np.ndarray, dst: np.ndarray,
                  tmp: np.ndarray) -> None:
    """dst = sum_k src[:, ix[k]] * wx[k] (columns of src), the reference's operations."""
    np.take(src, ix[0], axis=1, out=dst)
    dst *= wx[0]
    for k in range(1, ix.shape[0]):
        np.take(src, ix[k], axis=1, out=tmp)
        tmp *= wx[k]
        dst += tmp


def _planes_numpy(x: np.ndarray, t: _Tables, out: np.ndarray) -> None:
    """What the loops of ``jit/resize_loops`` compute, in NumPy: the reference's operations
    on one plane at a time, the second axis' pass over blocks of output rows, so that its
    temporaries stay in the cache and are allocated once."""
    _, IH, IW = x.shape
    _, OH, OW = out.shape
    if t.wy is None:  # nearest: a row gather then a column gather
        for p in range(x.shape[0]):
            np.take(np.take(x[p], t.iy, axis=0), t.ix, axis=1, out=out[p])
        return
    assert t.wx is not None
    block = max(1, _BLOCK // max(OW, 1))
    tmp = np.empty((block, OW), x.dtype)
    if t.rows_first:
        mid = np.empty((OH, IW), x.dtype)
        mid_tmp = np.empty((OH, IW), x.dtype)
        for p in range(x.shape[0]):
            _rows_pass(x[p], t.iy, t.wy, mid, mid_tmp)
            for r0 in range(0, OH, block):
                r1 = min(r0 + block, OH)
                _columns_pass(mid[r0:r1], t.ix, t.wx, out[p, r0:r1], tmp[:r1 - r0])
    else:
        mid = np.empty((IH, OW), x.dtype)
        mid_tmp = np.empty((IH, OW), x.dtype)
        for p in range(x.shape[0]):
            _columns_pass(x[p], t.ix, t.wx, mid, mid_tmp)
            for r0 in range(0, OH, block):
                r1 = min(r0 + block, OH)
                _rows_pass(mid, t.iy[:, r0:r1], t.wy[:, r0:r1], out[p, r0:r1], tmp[:r1 - r0])


def _resize(X: np.ndarray, memo: NodeMemo, roi: np.ndarray | None,
            scales: np.ndarray | None, sizes: np.ndarray | None, extrapolation_value: float,
            ctx: KernelContext | None, options: dict) -> tuple[np.ndarray]:
    key = _key(X, roi, scales, sizes)
    plans = memo.get(key)
    if plans is None:
        plans = memo.remember(key, resize_plans("Resize", X.shape, roi, scales, sizes, **options))
    tables = None
    if X.dtype in _FLOATS and X.flags.c_contiguous and X.size:
        tkey = (key, X.dtype.str)
        tables = memo.get(tkey)
        if tables is None:
            tables = memo.remember(tkey, _plane_tables(plans, X.shape, X.dtype) or False)
    if not tables:
        return (resample(X, plans, float(extrapolation_value), tensor_limit(ctx),
                         "Resize output"),)
    N, C, IH, IW = X.shape
    OH, OW = tables.iy.shape[-1], tables.ix.shape[-1]
    check_alloc((N, C, OH, OW), X.dtype, tensor_limit(ctx), "Resize output")
    x = X.reshape(N * C, IH, IW)
    out = np.empty((N * C, OH, OW), X.dtype)

    def planes(p0: int, p1: int) -> None:
        if tables.wy is None:
            if jit.call("resize_loops.nearest2d", x[p0:p1], tables.iy, tables.ix, out[p0:p1],
                        elements=(p1 - p0) * OH * OW):
                return
        elif jit.call("resize_loops.filter2d", x[p0:p1], tables.iy, tables.wy, tables.ix,
                      tables.wx, tables.rows_first, out[p0:p1], elements=(p1 - p0) * OH * OW):
            return
        _planes_numpy(x[p0:p1], tables, out[p0:p1])

    threads.parallel_for(N * C, planes, min_per_part=max(1, _MIN_PART // max(1, OH * OW)))
    return (out.reshape(N, C, OH, OW),)


@fast_kernel("Resize", versions=(10,), prepare=node_memo)
def resize_10(X: np.ndarray, scales: np.ndarray, *, mode: str = "nearest",
              ctx: KernelContext | None = None, prepared: NodeMemo) -> tuple[np.ndarray]:
    """Resize (opset 10), as :func:`pyonnx.ops.image.resize_10`."""
    return _resize(X, prepared, None, scales, None, 0.0, ctx, dict(
        mode=mode, coordinate_transformation_mode="asymmetric", cubic_coeff_a=-0.75,
        exclude_outside=0, nearest_mode="simple", antialias=0, axes=None,
        keep_aspect_ratio_policy="stretch", modes=("nearest", "linear"), ctms=("asymmetric",)))


@fast_kernel("Resize", versions=(11, 13), prepare=node_memo)
def resize_11(X: np.ndarray, roi: np.ndarray | None = None, scales: np.ndarray | None = None,
              sizes: np.ndarray | None = None, *,
              coordinate_transformation_mode: str = "half_pixel", cubic_coeff_a: float = -0.75,
              exclude_outside: int = 0, extrapolation_value: float = 0.0, mode: str = "nearest",
              nearest_mode: str = "round_prefer_floor", ctx: KernelContext | None = None,
              prepared: NodeMemo) -> tuple[np.ndarray]:
    """Resize (opset 11, 13), as :func:`pyonnx.ops.image.resize_11`."""
    return _resize(X, prepared, roi, scales, sizes, extrapolation_value, ctx, dict(
        mode=mode, coordinate_transformation_mode=coordinate_transformation_mode,
        cubic_coeff_a=cubic_coeff_a, exclude_outside=exclude_outside, nearest_mode=nearest_mode,
        antialias=0, axes=None, keep_aspect_ratio_policy="stretch",
        modes=("nearest", "linear", "cubic"), ctms=_CTM_11))


def _resize_18_and_later(ctms: tuple[str, ...], doc: str) -> Callable[..., tuple[np.ndarray]]:
    """Resize 18 and 19 take the same inputs and attributes (as in the reference)."""
    def resize(X: np.ndarray, roi: np.ndarray | None = None, scales: np.ndarray | None = None,
               sizes: np.ndarray | None = None, *, antialias: int = 0,
               axes: list[int] | None = None,
               coordinate_transformation_mode: str = "half_pixel", cubic_coeff_a: float = -0.75,
               exclude_outside: int = 0, extrapolation_value: float = 0.0,
               keep_aspect_ratio_policy: str = "stretch", mode: str = "nearest",
               nearest_mode: str = "round_prefer_floor", ctx: KernelContext | None = None,
               prepared: NodeMemo) -> tuple[np.ndarray]:
        return _resize(X, prepared, roi, scales, sizes, extrapolation_value, ctx, dict(
            mode=mode, coordinate_transformation_mode=coordinate_transformation_mode,
            cubic_coeff_a=cubic_coeff_a, exclude_outside=exclude_outside,
            nearest_mode=nearest_mode, antialias=antialias, axes=axes,
            keep_aspect_ratio_policy=keep_aspect_ratio_policy,
            modes=("nearest", "linear", "cubic"), ctms=ctms))

    resize.__doc__ = doc
    return resize


resize_18 = fast_kernel("Resize", versions=(18,), prepare=node_memo)(_resize_18_and_later(
    _CTM_13, "Resize (opset 18), as :data:`pyonnx.ops.image.resize_18`."))
resize_19 = fast_kernel("Resize", versions=(19,), prepare=node_memo)(_resize_18_and_later(
    _CTM_19, "Resize (opset 19), as :data:`pyonnx.ops.image.resize_19`."))
