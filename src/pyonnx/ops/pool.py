"""Pooling kernels: MaxPool, AveragePool, LpPool, their Global forms, MaxUnpool, MaxRoiPool.

A window pool pads its input once (``-inf`` or the type's minimum for MaxPool, zero otherwise) and
reduces strided views of that one buffer. Max and sum are separable, so the reduction runs one
spatial axis at a time (``k - 1`` vectorized passes per axis, no window-sized temporary); only
MaxPool's Indices output walks the kernel elements one by one. Average divisors are separable too
(a product of per-axis counts), so excluding the padding costs a small array of the output's
spatial shape, never a pass over the data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops._common import as_int_list, check_alloc, compute_dtype, output_wanted, prod
from pyonnx.ops._conv import Window, kernel_offsets, offset_slices, pad_spatial, resolve_window
from pyonnx.ops.registry import KernelContext, NodeMemo, kernel, node_memo


def _window(op: str, X: np.ndarray, kernel_shape: Sequence[int] | None, *,
            strides: Sequence[int] | None, pads: Sequence[int] | None, auto_pad: str,
            dilations: Sequence[int] | None = None, ceil_mode: int = 0,
            ctx: KernelContext | None = None) -> Window:
    """Check X and the window attributes of a pool and resolve its geometry."""
    if X.ndim < 3:
        raise ExecutionError(f"{op}: input X must have rank >= 3 (N, C, spatial...), got shape "
                             f"{list(X.shape)}")
    if kernel_shape is None or len(kernel_shape) == 0:
        raise ExecutionError(f"{op}: the kernel_shape attribute is required")
    win = resolve_window(X.shape[2:], kernel_shape, strides=strides, dilations=dilations,
                         pads=pads, auto_pad=auto_pad, ceil_mode=ceil_mode)
    if ctx is not None:
        check_alloc(X.shape[:2] + win.out, X.dtype, ctx.max_tensor_bytes, f"{op} output")
    return win


def _axis_valid(win: Window, axis: int, k: int, include_pad: bool = False) -> np.ndarray:
    """For kernel element k on ``axis``: which output positions see a real input position
    (or, with include_pad, a position inside the declared padding)."""
    coord = np.arange(win.out[axis]) * win.strides[axis] + k * win.dilations[axis] \
        - win.pads_begin[axis]
    lo = -win.pads_begin[axis] if include_pad else 0
    hi = win.in_shape[axis] + (win.pads_end[axis] if include_pad else 0)
    return (coord >= lo) & (coord < hi)


def _window_counts(win: Window, include_pad: bool) -> np.ndarray:
    """Number of counted positions in each output window, shape ``win.out`` (int64,
    read-only: AveragePool keeps it in its node's memo, shared by every run)."""
    total = np.ones((), dtype=np.int64)
    for ax in range(win.ndim):
        cnt = sum(_axis_valid(win, ax, k, include_pad).astype(np.int64)
                  for k in range(win.kernel[ax]))
        total = np.multiply.outer(total, cnt)
    total.flags.writeable = False
    return total


# --------------------------------------------------------------------------------------------
# MaxPool
# --------------------------------------------------------------------------------------------

def _lowest(dtype: np.dtype) -> float | int:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return np.iinfo(dtype).min
    return -np.inf


@kernel("MaxPool", versions=(1, 8, 10, 11, 12, 22))
def max_pool(X: np.ndarray, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
             dilations: Sequence[int] | None = None, kernel_shape: Sequence[int] | None = None,
             pads: Sequence[int] | None = None, storage_order: int = 0,
             strides: Sequence[int] | None = None, ctx: KernelContext | None = None
             ) -> tuple[np.ndarray, ...]:
    """Y = maximum over each window (padding never wins); Indices (int64, only when the node
    asks for it) = flat position of that maximum in X, row-major or column-major over the
    spatial axes per storage_order."""
    win = _window("MaxPool", X, kernel_shape, strides=strides, pads=pads, auto_pad=auto_pad,
                  dilations=dilations, ceil_mode=ceil_mode, ctx=ctx)
    if storage_order not in (0, 1):
        raise ExecutionError(f"MaxPool: storage_order must be 0 (row major) or 1 (column major), "
                             f"got {storage_order}")
    want_indices = output_wanted(ctx, 1)
    xp = pad_spatial(X, win, _lowest(X.dtype))
    if not want_indices:
        y = _reduce_windows(xp, win, np.maximum, X.dtype)
        return (y,) if ctx is None or ctx.num_outputs < 2 else (y, None)
    return _max_pool_with_indices(X, xp, win, int(storage_order))


def _max_pool_with_indices(X: np.ndarray, xp: np.ndarray, win: Window,
                           storage_order: int) -> tuple[np.ndarray, np.ndarray]:
    """MaxPool that also says where each maximum came from (flat index into X).

    Y comes from the fast path; then one pass per kernel element scores the elements equal to
    Y, earlier elements higher, and the best score names the first maximum (NaN counts as equal
    to NaN, matching np.maximum's propagation). A padded position can only tie when the maximum
    equals the padding value; those few outputs are re-resolved to their first real position.
    """
    n_img, c = X.shape[:2]
    nsp = win.ndim
    nk = prod(win.kernel)
    lead = (slice(None), slice(None))
    offsets = list(kernel_offsets(win.kernel))
    y = _reduce_windows(xp, win, np.maximum, X.dtype)
    sdt = np.int8 if nk < 127 else np.int32
    score = np.zeros(y.shape, dtype=sdt)
    cand = np.empty(y.shape, dtype=sdt)
    eq = np.empty(y.shape, dtype=bool)
    nan_y = np.isnan(y) if X.dtype.kind not in "iu" else None
    if nan_y is not None and not nan_y.any():
        nan_y = None
    for i, off in enumerate(offsets):
        v = xp[lead + offset_slices(off, win)]
        np.equal(v, y, out=eq)
        if nan_y is not None:
            eq |= np.isnan(v) & nan_y
        np.multiply(eq, sdt(nk - i), out=cand)
        np.maximum(score, cand, out=score)
    best = (nk - score.astype(np.int64)) if nk > 1 else np.zeros(y.shape, np.int64)
    kidx = list(np.unravel_index(best, win.kernel))
    starts = []
    for ax in range(nsp):
        shape = [1] * (2 + nsp)
        shape[2 + ax] = win.out[ax]
        starts.append((np.arange(win.out[ax], dtype=np.int64) * win.strides[ax]
                       - win.pads_begin[ax]).reshape(shape))
    if win.padded:
        low = _lowest(X.dtype)
        tie = np.nonzero(y == low)
        if tie[0].size:
            # (P, nk): which kernel elements of each tied window lie inside the input.
            kgrid = np.unravel_index(np.arange(nk), win.kernel)
            ok = np.ones((tie[0].size, nk), dtype=bool)
            for ax in range(nsp):
                coord = (tie[2 + ax] * win.strides[ax] - win.pads_begin[ax])[:, None] \
                    + kgrid[ax][None, :] * win.dilations[ax]
                ok &= (coord >= 0) & (coord < win.in_shape[ax])
            vals = np.stack([xp[lead + offset_slices(off, win)][tie] for off in offsets], axis=1)
            ok &= vals == low
            first = np.where(ok.any(axis=1), np.argmax(ok, axis=1), best[tie])
            for ax, kk in enumerate(np.unravel_index(first, win.kernel)):
                kidx[ax][tie] = kk
    if storage_order == 0:
        sp_strides = [prod(win.in_shape[a + 1:]) for a in range(nsp)]
    else:
        sp_strides = [prod(win.in_shape[:a]) for a in range(nsp)]
    index = (np.arange(n_img * c, dtype=np.int64) * prod(win.in_shape)).reshape(
        (n_img, c) + (1,) * nsp)
    for ax in range(nsp):
        index = index + (starts[ax] + kidx[ax] * win.dilations[ax]) * sp_strides[ax]
    return y, index


# --------------------------------------------------------------------------------------------
# AveragePool and LpPool
# --------------------------------------------------------------------------------------------

def _reduce_windows(xp: np.ndarray, win: Window, op: np.ufunc, dtype: np.dtype) -> np.ndarray:
    """Combine (op: np.maximum or np.add) the values of every window of the padded input.

    Both reductions are separable, so they run one spatial axis at a time: ``k - 1`` passes per
    axis over an array that shrinks axis by axis, instead of ``prod(kernel) - 1`` passes over
    the output (3x3: 4 passes instead of 8), the inner loops staying contiguous longest.
    """
    cur = xp
    nlead = xp.ndim - win.ndim
    for ax in range(win.ndim):
        k, d, st, o = win.kernel[ax], win.dilations[ax], win.strides[ax], win.out[ax]
        pre = (slice(None),) * (nlead + ax)
        views = [cur[pre + (slice(j * d, j * d + (o - 1) * st + 1, st) if o else slice(0, 0),)]
                 for j in range(k)]
        if k == 1:
            cur = views[0]
            continue
        acc = op(views[0], views[1], dtype=dtype)
        for v in views[2:]:
            op(acc, v, out=acc)
        cur = acc
    if cur is xp or not cur.flags.owndata or cur.dtype != dtype:
        cur = np.array(cur, dtype=dtype, copy=True)  # a 1x1 window left a view of the input
    return cur


@kernel("AveragePool", versions=(1, 7, 10, 11, 19, 22), prepare=node_memo)
def average_pool(X: np.ndarray, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
                 count_include_pad: int = 0, dilations: Sequence[int] | None = None,
                 kernel_shape: Sequence[int] | None = None, pads: Sequence[int] | None = None,
                 strides: Sequence[int] | None = None, ctx: KernelContext | None = None,
                 prepared: NodeMemo | None = None) -> tuple[np.ndarray]:
    """Y = mean over each window; the divisor counts the declared padding only when
    count_include_pad is 1, and never the positions that ceil_mode adds past it.
    ``prepared`` (the node's memo) keeps the divisors per window geometry."""
    win = _window("AveragePool", X, kernel_shape, strides=strides, pads=pads, auto_pad=auto_pad,
                  dilations=dilations, ceil_mode=ceil_mode, ctx=ctx)
    cdt = compute_dtype(X.dtype)
    xp = pad_spatial(X, win, 0)
    acc = _reduce_windows(xp, win, np.add, cdt)
    if not win.padded or (count_include_pad and not any(win.extra_end)):
        acc *= cdt.type(1.0 / prod(win.kernel)) if cdt == np.float32 else 1.0 / prod(win.kernel)
    else:
        counts = prepared.get(win) if prepared is not None else None
        if counts is None:
            counts = _window_counts(win, bool(count_include_pad))
            if prepared is not None:
                prepared.remember(win, counts)
        with np.errstate(divide="ignore", invalid="ignore"):
            acc /= counts.astype(cdt)
    return (acc.astype(X.dtype, copy=False),)


def _lp_transform(p: float):
    if p == 1:
        return np.abs
    if p == 2:
        return np.square
    return lambda v: np.power(np.abs(v), p)


def _lp_root(acc: np.ndarray, p: float) -> np.ndarray:
    if p == 1:
        return acc
    if p == 2:
        return np.sqrt(acc, out=acc)
    return np.power(acc, 1.0 / p, out=acc)


def _check_p(p: float, op: str) -> float:
    p = float(p)
    if not p > 0:
        raise ExecutionError(f"{op}: p must be positive, got {p}")
    return p


@kernel("LpPool", versions=(1, 2, 11, 18, 22))
def lp_pool(X: np.ndarray, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
            dilations: Sequence[int] | None = None, kernel_shape: Sequence[int] | None = None,
            p: float = 2, pads: Sequence[int] | None = None,
            strides: Sequence[int] | None = None, ctx: KernelContext | None = None
            ) -> tuple[np.ndarray]:
    """Y = (sum over each window of |x|^p)^(1/p); padding contributes zero."""
    pv = _check_p(p, "LpPool")
    win = _window("LpPool", X, kernel_shape, strides=strides, pads=pads, auto_pad=auto_pad,
                  dilations=dilations, ceil_mode=ceil_mode, ctx=ctx)
    cdt = compute_dtype(X.dtype)
    xp = pad_spatial(_lp_transform(pv)(X.astype(cdt, copy=False)), win, 0)
    acc = _reduce_windows(xp, win, np.add, cdt)
    return (_lp_root(acc, pv).astype(X.dtype, copy=False),)


# --------------------------------------------------------------------------------------------
# Global pools
# --------------------------------------------------------------------------------------------

def _check_global(op: str, X: np.ndarray) -> tuple[int, ...]:
    if X.ndim < 3:
        raise ExecutionError(f"{op}: input X must have rank >= 3 (N, C, spatial...), got shape "
                             f"{list(X.shape)}")
    return tuple(range(2, X.ndim))


@kernel("GlobalAveragePool", versions=(1, 22))
def global_average_pool(X: np.ndarray) -> tuple[np.ndarray]:
    """Y (N, C, 1, ...) = mean of each channel over all spatial positions."""
    axes = _check_global("GlobalAveragePool", X)
    cdt = compute_dtype(X.dtype)
    y = np.mean(X, axis=axes, dtype=cdt, keepdims=True)
    return (np.asarray(y).astype(X.dtype, copy=False),)


@kernel("GlobalMaxPool", versions=(1, 22))
def global_max_pool(X: np.ndarray) -> tuple[np.ndarray]:
    """Y (N, C, 1, ...) = maximum of each channel over all spatial positions."""
    axes = _check_global("GlobalMaxPool", X)
    if any(X.shape[a] == 0 for a in axes):
        raise ExecutionError(f"GlobalMaxPool: input shape {list(X.shape)} has an empty spatial "
                             f"axis; the maximum of no values is undefined")
    return (np.asarray(np.max(X, axis=axes, keepdims=True)),)


@kernel("GlobalLpPool", versions=(1, 2, 22))
def global_lp_pool(X: np.ndarray, *, p: float = 2) -> tuple[np.ndarray]:
    """Y (N, C, 1, ...) = (sum of |x|^p over all spatial positions)^(1/p)."""
    pv = _check_p(p, "GlobalLpPool")
    axes = _check_global("GlobalLpPool", X)
    cdt = compute_dtype(X.dtype)
    x = X.astype(cdt, copy=False)
    acc = np.sum(_lp_transform(pv)(x), axis=axes, keepdims=True, dtype=cdt)
    return (_lp_root(np.asarray(acc), pv).astype(X.dtype, copy=False),)


# --------------------------------------------------------------------------------------------
# MaxUnpool
# --------------------------------------------------------------------------------------------

@kernel("MaxUnpool", versions=(9, 11, 22))
def max_unpool(X: np.ndarray, I: np.ndarray, output_shape: np.ndarray | None = None, *,  # noqa: E741
               kernel_shape: Sequence[int] | None = None, pads: Sequence[int] | None = None,
               strides: Sequence[int] | None = None, ctx: KernelContext | None = None
               ) -> tuple[np.ndarray]:
    """Zeros of the unpooled shape with X's values written at the flat positions I."""
    if X.ndim < 3:
        raise ExecutionError(f"MaxUnpool: input X must have rank >= 3, got shape {list(X.shape)}")
    if I.shape != X.shape:
        raise ExecutionError(f"MaxUnpool: indices I have shape {list(I.shape)} but X has "
                             f"{list(X.shape)}; they must be equal")
    nsp = X.ndim - 2
    if kernel_shape is None or len(kernel_shape) != nsp:
        raise ExecutionError(f"MaxUnpool: kernel_shape must have one value per spatial axis "
                             f"({nsp}), got {kernel_shape}")
    k = [int(v) for v in kernel_shape]
    s = [int(v) for v in strides] if strides else [1] * nsp
    pv = [int(v) for v in pads] if pads else [0] * (2 * nsp)
    if len(s) != nsp or len(pv) != 2 * nsp:
        raise ExecutionError(f"MaxUnpool: strides {s} / pads {pv} do not match {nsp} spatial axes")
    inferred = list(X.shape[:2]) + [(X.shape[2 + i] - 1) * s[i] + k[i] - pv[i] - pv[nsp + i]
                                    for i in range(nsp)]
    if any(v < 0 for v in inferred):
        raise ExecutionError(f"MaxUnpool: kernel_shape {k}, strides {s} and pads {pv} give the "
                             f"unpooled shape {inferred}, which has a negative dimension")
    shape = inferred
    if output_shape is not None and np.asarray(output_shape).size:
        shape = as_int_list(output_shape)
        if len(shape) != X.ndim:
            raise ExecutionError(f"MaxUnpool: output_shape {shape} must have rank {X.ndim} "
                                 f"(N, C, spatial...)")
        if shape[:2] != list(X.shape[:2]) or any(a < b for a, b in zip(shape, inferred)):
            raise ExecutionError(f"MaxUnpool: output_shape {shape} must keep N and C of X and be "
                                 f"at least the unpooled shape {inferred}")
    if ctx is not None:
        check_alloc(shape, X.dtype, ctx.max_tensor_bytes, "MaxUnpool output")
    # The indices are flat positions in the unpooled shape that kernel_shape, strides and pads
    # give (as the backend test data define them); a larger output_shape extends that block with
    # zeros at the end of each spatial axis. (onnxruntime instead reads them as positions in
    # output_shape; the two agree whenever output_shape is the unpooled shape.)
    idx = np.asarray(I).reshape(-1)
    if idx.dtype.kind not in "iu":
        raise ExecutionError(f"MaxUnpool: indices must be integers, got {idx.dtype}")
    size = prod(inferred)
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= size:
            bad = lo if lo < 0 else hi
            raise ExecutionError(f"MaxUnpool: index {bad} is outside the unpooled tensor of shape "
                                 f"{inferred} (valid flat indices are 0 to {size - 1})")
    block = np.zeros(inferred, dtype=X.dtype)
    block.reshape(-1)[idx] = X.reshape(-1)
    if shape == inferred:
        return (block,)
    y = np.zeros(shape, dtype=X.dtype)
    y[tuple(slice(0, v) for v in inferred)] = block
    return (y,)


# --------------------------------------------------------------------------------------------
# MaxRoiPool
# --------------------------------------------------------------------------------------------

def _round_half_away(v: np.ndarray) -> np.ndarray:
    """Round half away from zero (C's round), which RoI pooling uses for box corners."""
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


@kernel("MaxRoiPool", versions=(1, 22))
def max_roi_pool(X: np.ndarray, rois: np.ndarray, *, pooled_shape: Sequence[int] | None = None,
                 spatial_scale: float = 1.0, ctx: KernelContext | None = None
                 ) -> tuple[np.ndarray]:
    """Y (num_rois, C, ph, pw) = maximum over each bin of each region [batch, x1, y1, x2, y2].

    Box corners are scaled and rounded; a region is split into ph x pw bins with floor/ceil
    edges (bins may overlap by one); an empty bin gives zero.
    """
    if X.ndim != 4:
        raise ExecutionError(f"MaxRoiPool: X must be 4-D (N, C, H, W), got shape {list(X.shape)}")
    if rois.ndim != 2 or rois.shape[1] != 5:
        raise ExecutionError(f"MaxRoiPool: rois must have shape (num_rois, 5), got "
                             f"{list(rois.shape)}")
    if pooled_shape is None or len(pooled_shape) != 2:
        raise ExecutionError(f"MaxRoiPool: pooled_shape must be (height, width), got "
                             f"{pooled_shape}")
    ph, pw = (int(v) for v in pooled_shape)
    if ph < 1 or pw < 1:
        raise ExecutionError(f"MaxRoiPool: pooled_shape {[ph, pw]} must be >= 1")
    n_img, c, h, w = X.shape
    r = rois.shape[0]
    if ctx is not None:
        check_alloc((r, c, ph, pw), X.dtype, ctx.max_tensor_bytes, "MaxRoiPool output")
    y = np.zeros((r, c, ph, pw), dtype=X.dtype)
    boxes = rois.astype(np.float64)
    batch = boxes[:, 0].astype(np.int64)
    if r and (batch.min() < 0 or batch.max() >= n_img):
        bad = int(batch.min()) if batch.min() < 0 else int(batch.max())
        raise ExecutionError(f"MaxRoiPool: a roi names batch index {bad}, outside [0, {n_img - 1}]")
    corners = _round_half_away(boxes[:, 1:] * float(spatial_scale)).astype(np.int64)
    for i in range(r):
        x1, y1, x2, y2 = (int(v) for v in corners[i])
        roi_h = max(y2 - y1 + 1, 1)
        roi_w = max(x2 - x1 + 1, 1)
        bh, bw = roi_h / ph, roi_w / pw
        hs = np.clip(np.floor(np.arange(ph) * bh).astype(np.int64) + y1, 0, h)
        he = np.clip(np.ceil(np.arange(1, ph + 1) * bh).astype(np.int64) + y1, 0, h)
        ws = np.clip(np.floor(np.arange(pw) * bw).astype(np.int64) + x1, 0, w)
        we = np.clip(np.ceil(np.arange(1, pw + 1) * bw).astype(np.int64) + x1, 0, w)
        img = X[batch[i]]
        # Separable max: over each column bin first, then over each row bin.
        row_lo, row_hi = int(hs.min()), int(he.max())
        if row_hi <= row_lo:
            continue
        colmax = np.zeros((c, row_hi - row_lo, pw), dtype=X.dtype)
        col_ok = we > ws
        for j in range(pw):
            if col_ok[j]:
                colmax[:, :, j] = img[:, row_lo:row_hi, ws[j]:we[j]].max(axis=2)
        for t in range(ph):
            if he[t] > hs[t]:
                y[i, :, t, :] = colmax[:, hs[t] - row_lo:he[t] - row_lo, :].max(axis=1)
        y[i, :, :, ~col_ok] = 0
    return (y,)
