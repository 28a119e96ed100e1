"""Image operators: Resize, Upsample, GridSample, AffineGrid, RoiAlign, NonMaxSuppression."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops._common import (check_alloc, check_choice, compute_dtype, normalize_axes,
                                tensor_limit)
from pyonnx.ops._image import AxisPlan, axis_coordinates, filter_tables, nearest_indices, resample
from pyonnx.ops.registry import KernelContext, kernel

__all__: list[str] = []

_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
_CTM_11 = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
           "tf_half_pixel_for_nn", "tf_crop_and_resize")
# tf_half_pixel_for_nn left the spec in opset 13; it stays accepted there, as in onnxruntime,
# because converters kept emitting it and its meaning is unambiguous
_CTM_13 = _CTM_11
_CTM_19 = _CTM_11 + ("half_pixel_symmetric",)


def _optional(a: np.ndarray | None) -> np.ndarray | None:
    """An optional tensor input; an empty tensor counts as absent (opset 11 passes scales so)."""
    if a is None:
        return None
    a = np.asarray(a)
    return None if a.size == 0 else a.reshape(-1)


# --- Resize / Upsample ------------------------------------------------------------------------

def _resize(op: str, X: np.ndarray, roi: np.ndarray | None, scales: np.ndarray | None,
            sizes: np.ndarray | None, *, extrapolation_value: float, ctx: KernelContext | None,
            **options: Any) -> np.ndarray:
    """Resize / Upsample: ``options`` are :func:`resize_plans`'s keywords."""
    plans = resize_plans(op, X.shape, roi, scales, sizes, **options)
    return resample(X, plans, float(extrapolation_value), tensor_limit(ctx), f"{op} output")


def resize_plans(op: str, in_shape: tuple[int, ...], roi: np.ndarray | None,
                 scales: np.ndarray | None, sizes: np.ndarray | None, *, mode: str,
                 coordinate_transformation_mode: str, cubic_coeff_a: float,
                 exclude_outside: int, nearest_mode: str, antialias: int,
                 axes: list[int] | None, keep_aspect_ratio_policy: str,
                 modes: tuple[str, ...], ctms: tuple[str, ...]) -> list[AxisPlan]:
    """Resize's arguments checked and turned into the per-axis plans of :func:`resample` for an
    input of shape ``in_shape`` (axes left unchanged have no plan). Shared with the CPU
    provider's variant, which caches them per input geometry and raises the same errors."""
    check_choice(op, "mode", mode, modes)
    ctm = check_choice(op, "coordinate_transformation_mode", coordinate_transformation_mode, ctms)
    if nearest_mode != "simple":
        check_choice(op, "nearest_mode", nearest_mode, _NEAREST_MODES)
    check_choice(op, "keep_aspect_ratio_policy", keep_aspect_ratio_policy,
                 ("stretch", "not_larger", "not_smaller"))
    r = len(in_shape)
    ax = list(range(r)) if axes is None else list(normalize_axes(axes, r, "axes"))
    n = len(ax)
    scales = _optional(scales)
    sizes = _optional(sizes)
    if scales is not None and sizes is not None:
        raise ExecutionError(f"{op}: both scales and sizes are given; give exactly one of them")
    if scales is None and sizes is None:
        raise ExecutionError(f"{op}: neither scales nor sizes is given; give exactly one of them")
    what = "rank of X" if axes is None else "length of axes"

    out_len: dict[int, int] = {}
    scale_of: dict[int, float] = {}
    width_of: dict[int, float] = {}
    if scales is not None:
        if scales.shape[0] != n:
            raise ExecutionError(f"{op}: scales has {scales.shape[0]} elements; expected {n} "
                                 f"(the {what})")
        sc32 = scales.astype(np.float32)
        if not (sc32 > 0).all():
            raise ExecutionError(f"{op}: scales must be greater than 0, got {sc32.tolist()}")
        for i, a in enumerate(ax):
            # the output length is computed in float32 as onnxruntime does: 10 * 0.7f gives 7
            out_len[a] = int(math.floor(np.float32(in_shape[a]) * sc32[i]))
            scale_of[a] = float(sc32[i])
            width_of[a] = in_shape[a] * float(sc32[i])
    else:
        assert sizes is not None
        if sizes.shape[0] != n:
            raise ExecutionError(f"{op}: sizes has {sizes.shape[0]} elements; expected {n} "
                                 f"(the {what})")
        if sizes.dtype.kind not in "iu":
            raise ExecutionError(f"{op}: sizes must be int64, got {sizes.dtype}")
        sz = [int(v) for v in sizes]
        if min(sz) < 0:
            raise ExecutionError(f"{op}: sizes must not be negative, got {sz}")
        for i, a in enumerate(ax):
            if in_shape[a] == 0 and sz[i] != 0:
                raise ExecutionError(f"{op}: cannot resize axis {a} of length 0 to {sz[i]}")
        if keep_aspect_ratio_policy == "stretch":
            for i, a in enumerate(ax):
                out_len[a] = sz[i]
                scale_of[a] = float(np.float32(sz[i]) / np.float32(in_shape[a])) \
                    if in_shape[a] else 1.0
                width_of[a] = float(sz[i])
        else:
            ratios = [sz[i] / in_shape[a] for i, a in enumerate(ax) if in_shape[a]]
            s = (min(ratios) if keep_aspect_ratio_policy == "not_larger" else max(ratios)) \
                if ratios else 1.0
            for a in ax:
                out_len[a] = int(math.floor(s * in_shape[a] + 0.5))
                scale_of[a] = s
                width_of[a] = s * in_shape[a]

    roi_of: dict[int, tuple[float, float]] = {}
    if ctm == "tf_crop_and_resize":
        rv = _optional(roi)
        if rv is None:
            raise ExecutionError(f"{op}: coordinate_transformation_mode 'tf_crop_and_resize' "
                                 "needs the roi input")
        if rv.shape[0] != 2 * n:
            raise ExecutionError(f"{op}: roi has {rv.shape[0]} elements; expected {2 * n} "
                                 f"(2 x the {what})")
        rv = rv.astype(np.float64)
        for i, a in enumerate(ax):
            roi_of[a] = (float(rv[i]), float(rv[n + i]))

    legacy = nearest_mode == "simple"
    plans: list[AxisPlan] = []
    for a in ax:
        o, L = out_len[a], in_shape[a]
        x, outside = axis_coordinates(ctm, o, L, scale_of[a], width_of[a], roi_of.get(a))
        if mode == "nearest":
            idx = nearest_indices(x, L, nearest_mode, legacy and scale_of[a] < 1)
            if o == L and outside is None and np.array_equal(idx, np.arange(L)):
                continue
            plans.append(AxisPlan(a, o, idx, None, outside))
        else:
            if o == L and outside is None and np.array_equal(x, np.arange(L, dtype=np.float64)) \
                    and not (antialias and scale_of[a] < 1):
                continue
            idx, w = filter_tables(x, L, mode, scale_of[a], bool(antialias), float(cubic_coeff_a),
                                   bool(exclude_outside))
            plans.append(AxisPlan(a, o, idx, w, outside))
    return plans


@kernel("Resize", versions=(10,))
def resize_10(X: np.ndarray, scales: np.ndarray, *, mode: str = "nearest",
              ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Resize (opset 10): output = floor(input * scales), asymmetric coordinates (x / scale)."""
    return (_resize("Resize", X, None, scales, None, mode=mode,
                    coordinate_transformation_mode="asymmetric", cubic_coeff_a=-0.75,
                    exclude_outside=0, extrapolation_value=0.0, nearest_mode="simple",
                    antialias=0, axes=None, keep_aspect_ratio_policy="stretch",
                    modes=("nearest", "linear"), ctms=("asymmetric",), ctx=ctx),)


@kernel("Resize", versions=(11, 13))
def resize_11(X: np.ndarray, roi: np.ndarray | None = None, scales: np.ndarray | None = None,
              sizes: np.ndarray | None = None, *, coordinate_transformation_mode: str = "half_pixel",
              cubic_coeff_a: float = -0.75, exclude_outside: int = 0,
              extrapolation_value: float = 0.0, mode: str = "nearest",
              nearest_mode: str = "round_prefer_floor",
              ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Resize with nearest / linear / cubic modes and a coordinate transformation (opset 11, 13)."""
    return (_resize("Resize", X, roi, scales, sizes, mode=mode,
                    coordinate_transformation_mode=coordinate_transformation_mode,
                    cubic_coeff_a=cubic_coeff_a, exclude_outside=exclude_outside,
                    extrapolation_value=extrapolation_value, nearest_mode=nearest_mode,
                    antialias=0, axes=None, keep_aspect_ratio_policy="stretch",
                    modes=("nearest", "linear", "cubic"), ctms=_CTM_11, ctx=ctx),)


def _resize_18_impl(X: np.ndarray, roi: np.ndarray | None, scales: np.ndarray | None,
                    sizes: np.ndarray | None, *, antialias: int, axes: list[int] | None,
                    coordinate_transformation_mode: str, cubic_coeff_a: float,
                    exclude_outside: int, extrapolation_value: float,
                    keep_aspect_ratio_policy: str, mode: str, nearest_mode: str,
                    ctms: tuple[str, ...], ctx: KernelContext | None) -> tuple[np.ndarray]:
    return (_resize("Resize", X, roi, scales, sizes, mode=mode,
                    coordinate_transformation_mode=coordinate_transformation_mode,
                    cubic_coeff_a=cubic_coeff_a, exclude_outside=exclude_outside,
                    extrapolation_value=extrapolation_value, nearest_mode=nearest_mode,
                    antialias=antialias, axes=axes,
                    keep_aspect_ratio_policy=keep_aspect_ratio_policy,
                    modes=("nearest", "linear", "cubic"), ctms=ctms, ctx=ctx),)


def _resize_18_and_later(ctms: tuple[str, ...], doc: str) -> Callable[..., tuple[np.ndarray]]:
    """Resize 18 and 19 take the same inputs and attributes; only the accepted coordinate
    transformation modes differ."""

    def resize(X: np.ndarray, roi: np.ndarray | None = None, scales: np.ndarray | None = None,
               sizes: np.ndarray | None = None, *, antialias: int = 0,
               axes: list[int] | None = None,
               coordinate_transformation_mode: str = "half_pixel", cubic_coeff_a: float = -0.75,
               exclude_outside: int = 0, extrapolation_value: float = 0.0,
               keep_aspect_ratio_policy: str = "stretch", mode: str = "nearest",
               nearest_mode: str = "round_prefer_floor",
               ctx: KernelContext | None = None) -> tuple[np.ndarray]:
        return _resize_18_impl(X, roi, scales, sizes, antialias=antialias, axes=axes,
                               coordinate_transformation_mode=coordinate_transformation_mode,
                               cubic_coeff_a=cubic_coeff_a, exclude_outside=exclude_outside,
                               extrapolation_value=extrapolation_value,
                               keep_aspect_ratio_policy=keep_aspect_ratio_policy, mode=mode,
                               nearest_mode=nearest_mode, ctms=ctms, ctx=ctx)

    resize.__doc__ = doc
    return resize


resize_18 = kernel("Resize", versions=(18,))(_resize_18_and_later(
    _CTM_13, "Resize (opset 18: adds antialias, axes and keep_aspect_ratio_policy)."))
resize_19 = kernel("Resize", versions=(19,))(_resize_18_and_later(
    _CTM_19, "Resize (opset 19: adds the half_pixel_symmetric coordinate transformation)."))


def _upsample(X: np.ndarray, scales: np.ndarray | list[float], mode: str,
              modes: tuple[str, ...], ctx: KernelContext | None) -> tuple[np.ndarray]:
    """Upsample = Resize with asymmetric coordinates and the pre-opset-11 nearest rounding."""
    check_choice("Upsample", "mode", mode, modes)
    sc = np.asarray(scales, dtype=np.float32).reshape(-1)
    if sc.shape[0] != X.ndim:
        raise ExecutionError(f"Upsample: scales has {sc.shape[0]} elements; expected {X.ndim} "
                             "(the rank of X)")
    if not (sc >= 1).all():
        raise ExecutionError(f"Upsample: scales must be >= 1, got {sc.tolist()}")
    return (_resize("Upsample", X, None, sc, None, mode="linear" if mode != "nearest" else mode,
                    coordinate_transformation_mode="asymmetric", cubic_coeff_a=-0.75,
                    exclude_outside=0, extrapolation_value=0.0, nearest_mode="simple",
                    antialias=0, axes=None, keep_aspect_ratio_policy="stretch",
                    modes=("nearest", "linear"), ctms=("asymmetric",), ctx=ctx),)


@kernel("Upsample", versions=(1,))
def upsample_1(X: np.ndarray, *, height_scale: float, width_scale: float, mode: str = "nearest",
               ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Upsample a 4-D [N, C, H, W] tensor by height_scale and width_scale (opset 1)."""
    if X.ndim != 4:
        raise ExecutionError(f"Upsample: X must be 4-D [N, C, H, W], got shape {list(X.shape)}")
    return _upsample(X, [1.0, 1.0, height_scale, width_scale], mode, ("nearest", "bilinear"), ctx)


@kernel("Upsample", versions=(7,))
def upsample_7(X: np.ndarray, *, scales: list[float], mode: str = "nearest",
               ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Upsample by the scales attribute: output = floor(input * scales) (opset 7)."""
    return _upsample(X, scales, mode, ("nearest", "linear"), ctx)


@kernel("Upsample", versions=(9, 10))
def upsample_9(X: np.ndarray, scales: np.ndarray, *, mode: str = "nearest",
               ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Upsample by the scales input (opset 9; the opset 10 schema only deprecates the op)."""
    return _upsample(X, scales, mode, ("nearest", "linear"), ctx)


# --- GridSample -------------------------------------------------------------------------------

def _reflect(x: np.ndarray, twice_low: int, twice_high: int) -> np.ndarray:
    """Reflect coordinates into [twice_low / 2, twice_high / 2], bouncing off both ends."""
    if twice_low == twice_high:
        return np.zeros_like(x)
    lo = twice_low / 2
    span = (twice_high - twice_low) / 2
    x = np.abs(x - lo)
    extra = np.fmod(x, span)
    flips = np.floor(x / span)
    return np.where(flips % 2 == 0, extra + lo, span - extra + lo)


def _grid_pad(x: np.ndarray, size: int, padding_mode: str, align_corners: bool) -> np.ndarray:
    """Apply border / reflection padding to unnormalized coordinates (zeros: unchanged)."""
    if padding_mode == "border":
        return np.clip(x, 0, size - 1)
    if padding_mode == "reflection":
        x = _reflect(x, 0, 2 * (size - 1)) if align_corners else _reflect(x, -1, 2 * size - 1)
        return np.clip(x, 0, size - 1)
    return x


def _grid_axis_taps(x: np.ndarray, size: int, mode: str, padding_mode: str,
                    align_corners: bool) -> tuple[np.ndarray, np.ndarray]:
    """Index [taps, P] (in range) and weight [taps, P] of one spatial axis; out-of-range taps
    under zeros padding get weight 0."""
    if mode == "nearest":
        x = _grid_pad(x, size, padding_mode, align_corners)
        pos = np.rint(x)[None, :]  # halfway rounds to the even index, as the spec says
        w = np.ones_like(pos)
    elif mode == "linear":
        x = _grid_pad(x, size, padding_mode, align_corners)
        x0 = np.floor(x)
        t = x - x0
        pos = np.stack([x0, x0 + 1])
        w = np.stack([1 - t, t])
    else:  # cubic: each tap is bounded on its own (PyTorch's bicubic), not the coordinate
        x0 = np.floor(x)
        t = x - x0
        pos = x0[None, :] + np.arange(-1, 3)[:, None]
        w = np.stack([_cubic_w(t + 1), _cubic_w(t), _cubic_w(1 - t), _cubic_w(2 - t)])
        if padding_mode != "zeros":
            pos = np.floor(_grid_pad(pos, size, padding_mode, align_corners) + 0.0)
    valid = (pos >= 0) & (pos <= size - 1)
    w = np.where(valid, w, 0.0)
    idx = np.clip(pos, 0, max(size - 1, 0)).astype(np.intp)
    return idx, w


def _cubic_w(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    t = np.abs(t)
    return np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                    np.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0))


def _grid_sample(X: np.ndarray, grid: np.ndarray, mode: str, padding_mode: str,
                 align_corners: int, ctx: KernelContext | None) -> np.ndarray:
    r = X.ndim - 2
    if r < 1:
        raise ExecutionError(f"GridSample: X must have rank >= 3 (N, C, spatial...), "
                             f"got shape {list(X.shape)}")
    if grid.ndim != r + 2 or grid.shape[0] != X.shape[0] or grid.shape[-1] != r:
        raise ExecutionError(f"GridSample: grid has shape {list(grid.shape)}; expected "
                             f"[{X.shape[0]}, <{r} output dims>, {r}] for X of shape "
                             f"{list(X.shape)}")
    N, C = X.shape[:2]
    sizes = X.shape[2:]
    out_sp = grid.shape[1:-1]
    check_alloc((N, C) + tuple(out_sp), X.dtype, tensor_limit(ctx), "GridSample output")
    P = int(np.prod(out_sp, dtype=np.int64))
    ac = bool(align_corners)
    g = grid.reshape(N * P, r).astype(np.float64)
    # per spatial axis (outermost first); the grid lists coordinates innermost first
    idx_w = []
    for d in range(r):
        size = sizes[d]
        gc = g[:, r - 1 - d]
        x = (gc + 1) / 2 * (size - 1) if ac else ((gc + 1) * size - 1) / 2
        idx_w.append(_grid_axis_taps(x, size, mode, padding_mode, ac))
    S = int(np.prod(sizes, dtype=np.int64))
    strides = [int(np.prod(sizes[d + 1:], dtype=np.int64)) for d in range(r)]
    numeric = X.dtype.kind in "fciub" or "float" in str(X.dtype)
    if mode != "nearest" and not numeric:
        raise ExecutionError(f"GridSample: mode {mode!r} needs a numeric tensor, got {X.dtype}")
    cdt = np.dtype(np.float64) if X.dtype in (np.float64, np.int64, np.uint64, np.int32,
                                               np.uint32) else np.dtype(np.float32)
    if X.dtype.kind == "c":
        cdt = X.dtype
    src = X.reshape(N, C, S)
    if numeric:
        src = src.astype(cdt, copy=False)
    batch = np.repeat(np.arange(N), P)
    out = None
    for combo in itertools.product(*[range(iw[0].shape[0]) for iw in idx_w]):
        lin = np.zeros(N * P, np.intp)
        w = np.ones(N * P)
        for d, k in enumerate(combo):
            lin += idx_w[d][0][k] * strides[d]
            w = w * idx_w[d][1][k]
        if not w.any():
            continue
        vals = src[batch, :, lin]  # [N*P, C]
        if mode == "nearest":
            if numeric:
                vals = np.where(w[:, None] != 0, vals, 0)
            else:
                vals = np.where(w[:, None] != 0, vals, np.zeros((), X.dtype))
            out = vals
        else:
            term = vals * w[:, None].astype(cdt if cdt.kind != "c" else np.float64)
            out = term if out is None else out + term
    if out is None:
        out = np.zeros((N * P, C), cdt if numeric else X.dtype)
    Y = out.reshape(N, P, C).transpose(0, 2, 1).reshape((N, C) + tuple(out_sp))
    Y = np.ascontiguousarray(Y)
    if numeric and Y.dtype != X.dtype:
        if X.dtype.kind in "iu":
            info = np.iinfo(X.dtype)
            Y = np.clip(np.rint(Y), info.min, info.max)
        Y = Y.astype(X.dtype)
    return Y


@kernel("GridSample", versions=(16,))
def grid_sample_16(X: np.ndarray, grid: np.ndarray, *, align_corners: int = 0,
                   mode: str = "bilinear", padding_mode: str = "zeros",
                   ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Sample 4-D X at the normalized grid positions (modes bilinear / nearest / bicubic)."""
    check_choice("GridSample", "mode", mode, ("bilinear", "nearest", "bicubic"))
    check_choice("GridSample", "padding_mode", padding_mode, ("zeros", "border", "reflection"))
    if X.ndim != 4:
        raise ExecutionError(f"GridSample-16: X must be 4-D (N, C, H, W), got shape {list(X.shape)}")
    m = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    return (_grid_sample(X, grid, m, padding_mode, align_corners, ctx),)


@kernel("GridSample", versions=(20, 22))
def grid_sample_20(X: np.ndarray, grid: np.ndarray, *, align_corners: int = 0,
                   mode: str = "linear", padding_mode: str = "zeros",
                   ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Sample N-D X at the normalized grid positions (modes linear / nearest / cubic)."""
    check_choice("GridSample", "mode", mode, ("linear", "nearest", "cubic"))
    check_choice("GridSample", "padding_mode", padding_mode, ("zeros", "border", "reflection"))
    return (_grid_sample(X, grid, mode, padding_mode, align_corners, ctx),)


# --- AffineGrid -------------------------------------------------------------------------------

@kernel("AffineGrid", versions=(20,))
def affine_grid_20(theta: np.ndarray, size: np.ndarray, *, align_corners: int = 0,
                   ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Grid of theta applied to evenly spaced positions in [-1, 1]: (N, H, W, 2) or (N, D, H, W, 3)."""
    sz = [int(v) for v in np.asarray(size).reshape(-1)]
    if len(sz) not in (4, 5):
        raise ExecutionError(f"AffineGrid: size must have 4 (N, C, H, W) or 5 (N, C, D, H, W) "
                             f"elements, got {sz}")
    r = len(sz) - 2
    N = sz[0]
    if theta.ndim != 3 or tuple(theta.shape) != (N, r, r + 1):
        raise ExecutionError(f"AffineGrid: theta has shape {list(theta.shape)}; expected "
                             f"{[N, r, r + 1]} for size {sz}")
    if min(sz) < 0:
        raise ExecutionError(f"AffineGrid: size must not be negative, got {sz}")
    spatial = sz[2:]
    check_alloc([N] + spatial + [r], theta.dtype, tensor_limit(ctx), "AffineGrid output")
    cdt = compute_dtype(theta.dtype)

    def lin(n: int) -> np.ndarray:
        if n <= 1:
            # one position: the middle, as PyTorch's affine_grid (which the spec cites) does;
            # onnxruntime and the reference disagree with each other here (1 and -1)
            return np.zeros(max(n, 0), cdt)
        v = np.linspace(-1, 1, n, dtype=np.float64)
        if not align_corners:
            v = v * (n - 1) / n
        return v.astype(cdt)

    # base positions in homogeneous form, innermost coordinate first: (x, y[, z], 1)
    axes = [lin(n) for n in spatial]
    mesh = np.meshgrid(*axes, indexing="ij")  # outermost first
    coords = [m.reshape(-1) for m in reversed(mesh)] + [np.ones(mesh[0].size, cdt)]
    base = np.stack(coords, axis=1)  # [P, r+1]
    grid = np.matmul(base[None], theta.astype(cdt).transpose(0, 2, 1))  # [N, P, r]
    return (grid.reshape([N] + spatial + [r]).astype(theta.dtype),)


# --- RoiAlign ---------------------------------------------------------------------------------

def _roi_axis(start: float, bin_size: float, pooled: int, grid: int,
              size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps of the sample positions of one axis of one RoI.

    Returns (low index, high index, low weight, high weight), each [pooled * grid]; samples
    beyond [-1, size] get weight 0 (they read as 0, as in Caffe2 / onnxruntime).
    """
    k = np.arange(pooled * grid)
    p, i = k // grid, k % grid
    x = start + p * bin_size + (i + 0.5) * bin_size / grid
    valid = (x >= -1.0) & (x <= size)
    x = np.maximum(x, 0.0)
    lo = np.floor(x).astype(np.int64)
    at_end = lo >= size - 1
    lo = np.where(at_end, size - 1, lo)
    hi = np.where(at_end, size - 1, lo + 1)
    x = np.where(at_end, lo.astype(np.float64), x)
    frac = x - lo
    return lo, hi, (1 - frac) * valid, frac * valid


def _roi_align(X: np.ndarray, rois: np.ndarray, batch_indices: np.ndarray, mode: str,
               output_height: int, output_width: int, sampling_ratio: int, spatial_scale: float,
               half_pixel: bool, ctx: KernelContext | None) -> np.ndarray:
    check_choice("RoiAlign", "mode", mode, ("avg", "max"))
    if X.ndim != 4:
        raise ExecutionError(f"RoiAlign: X must be 4-D (N, C, H, W), got shape {list(X.shape)}")
    if rois.ndim != 2 or rois.shape[1] != 4:
        raise ExecutionError(f"RoiAlign: rois must have shape [num_rois, 4], got {list(rois.shape)}")
    bi = np.asarray(batch_indices).reshape(-1)
    R = rois.shape[0]
    if bi.shape[0] != R:
        raise ExecutionError(f"RoiAlign: batch_indices has {bi.shape[0]} entries; expected "
                             f"num_rois = {R}")
    N, C, H, W = X.shape
    if R and (bi.min() < 0 or bi.max() >= N):
        bad = int(bi.min()) if bi.min() < 0 else int(bi.max())
        raise ExecutionError(f"RoiAlign: batch_indices contains {bad}, outside [0, {N - 1}]")
    PH, PW = int(output_height), int(output_width)
    if PH <= 0 or PW <= 0:
        raise ExecutionError(f"RoiAlign: output_height and output_width must be positive, "
                             f"got {PH} and {PW}")
    check_alloc((R, C, PH, PW), X.dtype, tensor_limit(ctx), "RoiAlign output")
    cdt = compute_dtype(X.dtype)
    Xc = X.astype(cdt, copy=False)
    Y = np.empty((R, C, PH, PW), cdt)
    offset = 0.5 if half_pixel else 0.0
    rv = rois.astype(np.float64)
    for r in range(R):
        x1, y1, x2, y2 = rv[r] * spatial_scale - offset
        rw, rh = x2 - x1, y2 - y1
        if not half_pixel:  # legacy: force malformed RoIs to be at least 1x1
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / PH, rw / PW
        gh = sampling_ratio if sampling_ratio > 0 else int(math.ceil(rh / PH))
        gw = sampling_ratio if sampling_ratio > 0 else int(math.ceil(rw / PW))
        gh, gw = max(gh, 0), max(gw, 0)
        img = Xc[int(bi[r])]
        if gh == 0 or gw == 0:
            Y[r] = 0
            continue
        ylo, yhi, wylo, wyhi = _roi_axis(y1, bh, PH, gh, H)
        xlo, xhi, wxlo, wxhi = _roi_axis(x1, bw, PW, gw, W)
        if mode == "avg":
            # separable: average of bilinear samples = Ay @ img @ Ax^T, with Ay [PH, H] holding
            # each bin's summed row weights and Ax [PW, W] the column weights
            Ay = np.zeros((PH, H))
            rows = np.arange(PH * gh) // gh
            np.add.at(Ay, (rows, ylo), wylo)
            np.add.at(Ay, (rows, yhi), wyhi)
            Ax = np.zeros((PW, W))
            cols = np.arange(PW * gw) // gw
            np.add.at(Ax, (cols, xlo), wxlo)
            np.add.at(Ax, (cols, xhi), wxhi)
            Y[r] = (Ay.astype(cdt) @ img @ Ax.T.astype(cdt)) / (gh * gw)
        else:
            # max: per sample the largest weighted corner (onnxruntime's definition), then the
            # largest sample of each bin
            best = None
            for yi, wy in ((ylo, wylo), (yhi, wyhi)):
                for xi, wx in ((xlo, wxlo), (xhi, wxhi)):
                    v = img[:, yi[:, None], xi[None, :]] * (wy[:, None] * wx[None, :]).astype(cdt)
                    best = v if best is None else np.maximum(best, v)
            assert best is not None
            Y[r] = best.reshape(C, PH, gh, PW, gw).max(axis=(2, 4))
    return Y.astype(X.dtype, copy=False)


@kernel("RoiAlign", versions=(10,))
def roi_align_10(X: np.ndarray, rois: np.ndarray, batch_indices: np.ndarray, *,
                 mode: str = "avg", output_height: int = 1, output_width: int = 1,
                 sampling_ratio: int = 0, spatial_scale: float = 1.0,
                 ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """RoI align (opset 10: no half-pixel shift of the RoI coordinates)."""
    return (_roi_align(X, rois, batch_indices, mode, output_height, output_width,
                       sampling_ratio, spatial_scale, False, ctx),)


@kernel("RoiAlign", versions=(16, 22))
def roi_align_16(X: np.ndarray, rois: np.ndarray, batch_indices: np.ndarray, *,
                 coordinate_transformation_mode: str = "half_pixel", mode: str = "avg",
                 output_height: int = 1, output_width: int = 1, sampling_ratio: int = 0,
                 spatial_scale: float = 1.0,
                 ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """RoI align; coordinate_transformation_mode half_pixel shifts RoI coordinates by -0.5."""
    ctm = check_choice("RoiAlign", "coordinate_transformation_mode",
                       coordinate_transformation_mode, ("half_pixel", "output_half_pixel"))
    return (_roi_align(X, rois, batch_indices, mode, output_height, output_width,
                       sampling_ratio, spatial_scale, ctm == "half_pixel", ctx),)


# --- NonMaxSuppression ------------------------------------------------------------------------

def _corners(boxes: np.ndarray, center_point_box: int) -> tuple[np.ndarray, ...]:
    """(y_min, x_min, y_max, x_max) of [..., 4] boxes, in the boxes' float dtype."""
    if center_point_box:
        xc, yc, w, h = (boxes[..., k] for k in range(4))
        half_w, half_h = w / 2, h / 2
        return yc - half_h, xc - half_w, yc + half_h, xc + half_w
    y1, x1, y2, x2 = (boxes[..., k] for k in range(4))
    # any diagonal pair of corners is allowed: order them
    return np.minimum(y1, y2), np.minimum(x1, x2), np.maximum(y1, y2), np.maximum(x1, x2)


def nms_arguments(boxes: np.ndarray, scores: np.ndarray,
                  max_output_boxes_per_class: np.ndarray | None,
                  iou_threshold: np.ndarray | None, score_threshold: np.ndarray | None,
                  center_point_box: int) -> tuple[int, np.dtype, np.floating, object]:
    """NonMaxSuppression's inputs checked: (max_out, the float dtype of the IoU arithmetic,
    iou_threshold in that dtype, score_threshold or None). Shared with the CPU provider's
    variant so that both raise the same errors."""
    if center_point_box not in (0, 1):
        raise ExecutionError(f"NonMaxSuppression: center_point_box must be 0 or 1, "
                             f"got {center_point_box}")
    if boxes.ndim != 3 or boxes.shape[2] != 4:
        raise ExecutionError(f"NonMaxSuppression: boxes must have shape [num_batches, "
                             f"spatial_dimension, 4], got {list(boxes.shape)}")
    if scores.ndim != 3 or scores.shape[0] != boxes.shape[0] or scores.shape[2] != boxes.shape[1]:
        raise ExecutionError(f"NonMaxSuppression: scores has shape {list(scores.shape)}; "
                             f"expected [{boxes.shape[0]}, num_classes, {boxes.shape[1]}] for "
                             f"boxes of shape {list(boxes.shape)}")
    max_out = 0 if max_output_boxes_per_class is None or np.size(max_output_boxes_per_class) == 0 \
        else int(np.asarray(max_output_boxes_per_class).reshape(-1)[0])
    ft = boxes.dtype if boxes.dtype.kind == "f" else np.dtype(np.float32)
    iou_thr = ft.type(0) if iou_threshold is None or np.size(iou_threshold) == 0 \
        else ft.type(np.asarray(iou_threshold).reshape(-1)[0])
    if not 0 <= iou_thr <= 1:
        raise ExecutionError(f"NonMaxSuppression: iou_threshold must be in [0, 1], got {iou_thr}")
    score_thr = None if score_threshold is None or np.size(score_threshold) == 0 \
        else np.asarray(score_threshold).reshape(-1)[0]
    return max_out, ft, iou_thr, score_thr


@kernel("NonMaxSuppression", versions=(10, 11))
def non_max_suppression_10(boxes: np.ndarray, scores: np.ndarray,
                           max_output_boxes_per_class: np.ndarray | None = None,
                           iou_threshold: np.ndarray | None = None,
                           score_threshold: np.ndarray | None = None, *,
                           center_point_box: int = 0) -> tuple[np.ndarray]:
    """Greedy per-(batch, class) NMS; returns int64 [num_selected, 3] (batch, class, box)."""
    max_out, ft, iou_thr, score_thr = nms_arguments(
        boxes, scores, max_output_boxes_per_class, iou_threshold, score_threshold,
        center_point_box)
    selected: list[tuple[int, int, int]] = []
    if max_out <= 0:
        return (np.zeros((0, 3), np.int64),)
    y0, x0, y1, x1 = _corners(boxes.astype(ft, copy=False), center_point_box)
    areas = (x1 - x0) * (y1 - y0)
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            s = scores[b, c]
            cand = np.arange(s.shape[0]) if score_thr is None else np.nonzero(s > score_thr)[0]
            # highest score first; ties keep the lower box index first
            alive = cand[np.argsort(-s[cand], kind="stable")]
            count = 0
            while alive.size and count < max_out:
                i = int(alive[0])
                selected.append((b, c, i))
                count += 1
                rest = alive[1:]
                # IoU in the boxes' precision, in onnxruntime's order of operations, so that a
                # box exactly at the threshold is kept as the spec says
                iw = np.minimum(x1[b, i], x1[b, rest]) - np.maximum(x0[b, i], x0[b, rest])
                ih = np.minimum(y1[b, i], y1[b, rest]) - np.maximum(y0[b, i], y0[b, rest])
                inter = iw * ih
                union = areas[b, i] + areas[b, rest] - inter
                overlap = (iw > 0) & (ih > 0) & (areas[b, i] > 0) & (areas[b, rest] > 0) & (union > 0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    iou = np.where(overlap, inter / np.where(union > 0, union, 1), 0)
                alive = rest[iou <= iou_thr]
    if not selected:
        return (np.zeros((0, 3), np.int64),)
    return (np.asarray(selected, dtype=np.int64),)
