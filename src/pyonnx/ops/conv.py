"""Convolution kernels: Conv, ConvTranspose, ConvInteger, DeformConv, Col2Im.

Conv is computed as im2col + one GEMM per group: the input is padded once, a strided view
presents every (channel, kernel element, output position) triple, one contiguous copy of that view
is the column matrix, and a single ``np.matmul`` (batched over groups and images) multiplies it by
the weights. A 1x1 kernel without padding is a plain matrix product on the (strided) input;
non-overlapping windows (kernel = stride, patch embeddings) get their columns from one transpose;
a 2-D depthwise convolution (one input channel per group) copies columns per stride phase and
contracts them with a product batched over the channels, or, in float32 and float64 where numba
is installed, runs the compiled loop ``jit/conv_loops.depthwise2d`` (other ranks sum strided
views times per-channel weights). Column buffers are per-thread scratch reused across calls.
ConvTranspose is the adjoint: one GEMM to columns, then a scatter-add of the columns into the
output (col2im), which Col2Im shares. The 16-bit float types compute in float32 and are rounded
once at the end.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from pyonnx.errors import ExecutionError
from pyonnx.ops import jit
from pyonnx.ops._common import as_int_list, check_alloc, compute_dtype, prod
from pyonnx.ops._conv import (
    AUTO_PADS,
    Window,
    int_attr_list,
    kernel_offsets,
    offset_slices,
    pad_spatial,
    resolve_window,
)
from pyonnx.ops.registry import KernelContext, NodeMemo, kernel, node_memo

# Bytes of columns plus outputs processed per GEMM: bands of output rows are sized to stay in
# the per-core cache (bounded memory, and several times faster GEMMs on large images).
_COLS_BUDGET = 2 << 20


# Per-thread scratch buffers for the column matrices and stride phases, which live only during
# one call: allocating them fresh each time costs a page fault per 4 KiB page once they exceed
# what the C allocator keeps around (measured: 1800 faults and 6 ms of system time per
# shufflenet run with fresh 4 MiB buffers). Per thread, so that concurrent runs never share one.
_SCRATCH = threading.local()
_SCRATCH_MAX = 64 << 20  # larger requests are allocated (and freed) per call


def _scratch(slot: str, n: int, dtype: np.dtype) -> np.ndarray:
    """A 1-D array of ``n`` elements of ``dtype`` whose contents are undefined, backed by this
    thread's reusable buffer ``slot``; valid until the next request for the same slot."""
    dtype = np.dtype(dtype)
    nbytes = n * dtype.itemsize
    if nbytes > _SCRATCH_MAX:
        return np.empty(n, dtype=dtype)
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None:
        bufs = _SCRATCH.bufs = {}
    b = bufs.get(slot)
    if b is None or b.nbytes < nbytes:
        b = bufs[slot] = np.empty(max(nbytes, 1 << 16), dtype=np.uint8)
    return b[:nbytes].view(dtype)


# --------------------------------------------------------------------------------------------
# Checks shared by the convolution family
# --------------------------------------------------------------------------------------------

def _check_conv_shapes(x: np.ndarray, w: np.ndarray, group: int, kernel_shape: Sequence[int] | None,
                       op: str = "Conv") -> None:
    """X is (N, C, *spatial), W is (M, C/group, *kernel) with M divisible by group."""
    if x.ndim < 3:
        raise ExecutionError(f"{op}: input X must have rank >= 3 (N, C, spatial...), got shape "
                             f"{list(x.shape)}")
    if w.ndim != x.ndim:
        raise ExecutionError(f"{op}: weight W has rank {w.ndim} (shape {list(w.shape)}) but X has "
                             f"rank {x.ndim} (shape {list(x.shape)}); they must be equal")
    group = int(group)
    if group < 1:
        raise ExecutionError(f"{op}: group must be >= 1, got {group}")
    c, m = x.shape[1], w.shape[0]
    if c % group:
        raise ExecutionError(f"{op}: group {group} does not divide the {c} input channels of X")
    if m % group:
        raise ExecutionError(f"{op}: group {group} does not divide the {m} output channels "
                             f"(W.shape[0])")
    if w.shape[1] * group != c:
        raise ExecutionError(f"{op}: W has {w.shape[1]} input channels per group (W.shape[1]) and "
                             f"group is {group}, so X should have {w.shape[1] * group} channels, "
                             f"but it has {c}")
    if kernel_shape is not None and len(kernel_shape) and \
            [int(k) for k in kernel_shape] != list(w.shape[2:]):
        raise ExecutionError(f"{op}: kernel_shape {list(kernel_shape)} does not match the spatial "
                             f"shape {list(w.shape[2:])} of W")


def _check_bias(b: np.ndarray | None, m: int, op: str) -> None:
    if b is not None and (b.ndim != 1 or b.shape[0] != m):
        raise ExecutionError(f"{op}: bias B must be 1-D with {m} values (one per output channel), "
                             f"got shape {list(b.shape)}")


def _add_bias(y: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    if b is not None:
        y += b.astype(y.dtype, copy=False).reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


# --------------------------------------------------------------------------------------------
# Forward convolution core (float arrays in the compute dtype)
# --------------------------------------------------------------------------------------------

def _conv_forward(x: np.ndarray, w: np.ndarray, group: int, win: Window,
                  bias: np.ndarray | None = None) -> np.ndarray:
    """Y (N, M, *out) = convolution of x (N, C, *in) with w (M, C/group, *kernel), plus the
    per-channel ``bias`` when given (fused into the last pass where the path allows)."""
    if bias is not None and win.ndim == 2 and x.shape[1] == group > 1 \
            and all(o > 0 for o in win.out) and not win.is_identity_window \
            and not (all(k == 1 for k in win.kernel) and not win.padded):
        return _depthwise_2d(x, w, win, bias)
    return _add_bias(_conv_core(x, w, group, win), bias)


def _conv_core(x: np.ndarray, w: np.ndarray, group: int, win: Window) -> np.ndarray:
    """Y (N, M, *out) = convolution of x (N, C, *in) with w (M, C/group, *kernel)."""
    n_img, c = x.shape[:2]
    m = w.shape[0]
    cg, mg = c // group, m // group
    out = win.out
    length = prod(out)
    nk = prod(win.kernel)

    if win.is_identity_window or (all(k == 1 for k in win.kernel) and not win.padded):
        # 1x1 kernel: each output is a matrix product over channels at one input position.
        if any(s != 1 for s in win.strides):
            x = x[(slice(None), slice(None)) + tuple(slice(0, (o - 1) * s + 1, s) if o else
                                                     slice(0, 0)
                                                     for o, s in zip(out, win.strides))]
        xr = x.reshape(n_img, group, cg, length)
        if group == 1:
            y = np.matmul(w.reshape(m, c), xr[:, 0])
        else:
            y = np.matmul(w.reshape(group, mg, cg), xr)
        return y.reshape((n_img, m) + out)

    if cg == 1 and group > 1:
        return _depthwise(x, w, group, win)

    w2 = w.reshape(m, cg * nk) if group == 1 else w.reshape(group, mg, cg * nk)
    if win.kernel == win.strides and not win.padded and all(d == 1 for d in win.dilations):
        # non-overlapping windows (patch embeddings): the column matrix is a transpose of the
        # input, (N, C, O1, K1, O2, K2, ...) -> (N, C, K1, K2, ..., O1, O2, ...), one copy
        nsp = win.ndim
        crop = x[(slice(None), slice(None)) + tuple(slice(0, o * k) for o, k in
                                                    zip(out, win.kernel))]
        split = crop.reshape((n_img, c) + tuple(v for o, k in zip(out, win.kernel)
                                                for v in (o, k)))
        perm = (0, 1) + tuple(3 + 2 * i for i in range(nsp)) + tuple(2 + 2 * i
                                                                      for i in range(nsp))
        cols = np.ascontiguousarray(split.transpose(perm)).reshape(n_img, c * nk, length)
        if group == 1:
            y = np.matmul(w2, cols)
        else:
            y = np.matmul(w2, cols.reshape(n_img, group, cg * nk, length))
        return y.reshape((n_img, m) + out)
    if n_img * c * nk * length <= _SMALL_COLS:
        # small inputs: per-call overhead dominates, so one strided view, one copy, one product
        cols = _im2col_small(x, win)
        if group == 1:
            y = np.matmul(w2, cols)
        else:
            y = np.matmul(w2, cols.reshape(n_img, group, cg * nk, length))
        return y.reshape((n_img, m) + out)
    xp = pad_spatial(x, win, 0)
    phases = _last_axis_phases(xp, win)
    row_len = length // max(out[0], 1)
    # Bytes one output row costs while its band is processed: its columns and its outputs.
    per_row = (c * nk + m) * row_len * x.dtype.itemsize
    rows = max(1, min(out[0], _COLS_BUDGET // max(per_row, 1)))
    if n_img == 1 and rows >= out[0]:
        cols = _im2col(xp, win, 0, out[0], phases=phases)  # (1, C * nk, L)
        if group == 1:
            y = np.matmul(w2, cols)
        else:
            y = np.matmul(w2, cols.reshape(n_img, group, cg * nk, length))
        return y.reshape((n_img, m) + out)
    # Otherwise one image and a band of output rows at a time: the column buffer is reused and
    # stays in cache with the band of outputs while the GEMM consumes it (a GEMM over a whole
    # large image runs at a third of the speed), and the GEMM writes straight into its band of
    # Y (a BLAS-compatible strided view).
    y = np.empty((n_img, group, mg, length), dtype=x.dtype)
    buf = _scratch("cols", c * nk * rows * row_len, x.dtype)
    for i in range(n_img):
        for r0 in range(0, out[0], rows):
            r1 = min(out[0], r0 + rows)
            lc = (r1 - r0) * row_len
            img_phases = None if phases is None else {p: a[i:i + 1] for p, a in phases.items()}
            cols = _im2col(xp[i:i + 1], win, r0, r1, buf[:c * nk * lc], img_phases)[0]
            dst = y[i, :, :, r0 * row_len:r1 * row_len]
            if group == 1:
                np.matmul(w2, cols, out=dst[0])
            else:
                np.matmul(w2, cols.reshape(group, cg * nk, lc), out=dst)
    return y.reshape((n_img, m) + out)


# Column matrices up to this many elements take the short path of _im2col_small.
_SMALL_COLS = 1 << 15


def _im2col_small(x: np.ndarray, win: Window) -> np.ndarray:
    """Column matrix (N, C * prod(kernel), L) of a small input in a few NumPy calls: the padded
    copy is made with zeros and one assignment, the window view with the ndarray constructor
    (``as_strided`` costs several times more on inputs this size)."""
    n_img, c = x.shape[:2]
    if win.padded:
        shape = x.shape[:2] + tuple(n + b + a + e for n, b, a, e in zip(
            x.shape[2:], win.pads_begin, win.pads_end, win.extra_end))
        xp = np.zeros(shape, dtype=x.dtype)
        xp[(slice(None), slice(None)) + tuple(slice(b, b + n) for b, n in zip(
            win.pads_begin, x.shape[2:]))] = x
    else:
        xp = np.ascontiguousarray(x)
    sp = xp.strides[2:]
    strides = xp.strides[:2] + tuple(t * d for t, d in zip(sp, win.dilations)) \
        + tuple(t * s for t, s in zip(sp, win.strides))
    view = np.ndarray((n_img, c) + win.kernel + win.out, xp.dtype, xp, 0, strides)
    return np.ascontiguousarray(view).reshape(n_img, c * prod(win.kernel), prod(win.out))


def _last_axis_phases(xp: np.ndarray, win: Window) -> dict[int, np.ndarray] | None:
    """For a stride s > 1 on the last axis: the padded input split into its s phases
    (``xp[..., p::s]``, each contiguous), so that every kernel element reads unit-stride rows.

    A strided inner loop makes the column copy about twice as slow; one pass over the input
    buys contiguous inner loops for all ``prod(kernel)`` copies.
    """
    st, d, k = win.strides[-1], win.dilations[-1], win.kernel[-1]
    if st == 1 or win.out[-1] < 4:
        return None
    return {p: np.ascontiguousarray(xp[..., p::st]) for p in sorted({j * d % st for j in range(k)})}


def _im2col(xp: np.ndarray, win: Window, r0: int, r1: int, buf: np.ndarray | None = None,
            phases: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """Column matrix (N, C * prod(kernel), L) for output rows [r0, r1) of the first spatial axis.

    A strided view (N, C, *kernel, *out) over the padded input, copied once into contiguous
    memory (``buf`` when given): the copy is the only pass over the data before the GEMM. With
    ``phases`` (see :func:`_last_axis_phases`) it is one copy per kernel column instead.
    """
    n_img, c = xp.shape[:2]
    nsp = win.ndim
    out = (r1 - r0,) + win.out[1:]
    shape = (n_img, c) + win.kernel + out
    ncols = c * prod(win.kernel)
    if phases is None:
        sp = xp.strides[2:]
        base = xp[(slice(None), slice(None), slice(r0 * win.strides[0], None))]
        strides = xp.strides[:2] + tuple(t * d for t, d in zip(sp, win.dilations)) \
            + tuple(t * s for t, s in zip(sp, win.strides))
        view = as_strided(base, shape=shape, strides=strides, writeable=False)
        if buf is None:
            return np.ascontiguousarray(view).reshape(n_img, ncols, prod(out))
        dst = buf.reshape(shape)
        np.copyto(dst, view)
        return dst.reshape(n_img, ncols, prod(out))
    dst = (np.empty(shape, dtype=xp.dtype) if buf is None else buf.reshape(shape))
    st, d = win.strides[-1], win.dilations[-1]
    for j in range(win.kernel[-1]):
        ph = phases[j * d % st]
        q = j * d // st
        if nsp == 1:
            base = ph[..., q + r0:]
        else:
            base = ph[(slice(None), slice(None), slice(r0 * win.strides[0], None))
                      + (slice(None),) * (nsp - 2) + (slice(q, None),)]
        sp = ph.strides[2:]
        vstrides = ph.strides[:2] + tuple(t * dd for t, dd in zip(sp[:-1], win.dilations[:-1])) \
            + tuple(t * s for t, s in zip(sp[:-1], win.strides[:-1])) + (sp[-1],)
        vshape = (n_img, c) + win.kernel[:-1] + out
        view = as_strided(base, shape=vshape, strides=vstrides, writeable=False)
        dst[(slice(None),) * (1 + nsp) + (j,)] = view
    return dst.reshape(n_img, ncols, prod(out))


# Bytes of columns plus outputs per batched product in the depthwise path: larger than for the
# GEMM path, since its cost is per band (one small product per channel), not per byte.
_DEPTHWISE_BUDGET = 4 << 20


def _depthwise_2d(x: np.ndarray, w: np.ndarray, win: Window,
                  bias: np.ndarray | None = None) -> np.ndarray:
    """Depthwise 2-D convolution (one input channel per group) on flat phase rows.

    The padded input is split into its stride phases (``xp[..., a::s, b::s]``, zero-filled and
    contiguous, one row longer than needed). Laid out on a phase's row width (the extra columns
    are dropped at the end), the inputs that kernel element (i, j) sees for all output positions
    are ONE contiguous slice of a flattened phase, and the kernel elements that share a phase
    form one strided view (offsets in an arithmetic progression along each axis). Those views
    are copied as columns (one copy per phase, not per kernel element, hence the weights'
    columns are permuted to phase order) and contracted with one product batched over the
    channels, band of output rows by band of output rows. ``bias`` (one value per output
    channel) is added while the bands are copied into the output.

    float32 and float64 take the compiled loop ``conv_loops.depthwise2d`` when it is available
    (one pass per channel with no column copy; see :func:`_depthwise_2d_jit`).
    """
    if x.dtype in _JIT_DTYPES and w.dtype == x.dtype:
        y = _depthwise_2d_jit(x, w, win, bias)
        if y is not None:
            return y
    n_img, c, hh, ww = x.shape
    m = w.shape[0]
    mult = m // c
    kh, kw = win.kernel
    sh, sw = win.strides
    dh, dw = win.dilations
    ph_, pw_ = win.pads_begin
    oh, ow = win.out
    # + 1 row: the slice of the last output row may run into the spare row
    hph = oh + (kh - 1) * dh // sh + 1
    wph = ow + (kw - 1) * dw // sw
    phases = _scratch("phases", sh * sw * n_img * c * hph * wph, x.dtype).reshape(
        sh, sw, n_img, c, hph, wph)
    for a in range(sh):
        # phase rows i hold padded row a + sh * i, i.e. input row a + sh * i - ph_
        ilo = max(0, -(-(ph_ - a) // sh))
        ihi = min(hph, (hh - 1 + ph_ - a) // sh + 1)
        for b in range(sw):
            jlo = max(0, -(-(pw_ - b) // sw))
            jhi = min(wph, (ww - 1 + pw_ - b) // sw + 1)
            ph = phases[a, b]
            if ihi > ilo and jhi > jlo:
                ph[:, :, ilo:ihi, jlo:jhi] = x[
                    :, :, a + sh * ilo - ph_:a + sh * (ihi - 1) - ph_ + 1:sh,
                    b + sw * jlo - pw_:b + sw * (jhi - 1) - pw_ + 1:sw]
                # zero only the border around the copied block (the buffer is reused)
                ph[:, :, :ilo] = 0
                ph[:, :, ihi:] = 0
                ph[:, :, ilo:ihi, :jlo] = 0
                ph[:, :, ilo:ihi, jhi:] = 0
            else:
                ph.fill(0)
    flat = phases.reshape(sh, sw, n_img, c, hph * wph)
    # kernel rows (columns) with one phase residue start at evenly spaced phase rows (columns)
    views = []  # (phase a, b, first column k0, rows, cols, flat start, row step, col step)
    order: list[int] = []
    for a in sorted({i * dh % sh for i in range(kh)}):
        rows_i = [i for i in range(kh) if i * dh % sh == a]
        for b in sorted({j * dw % sw for j in range(kw)}):
            cols_j = [j for j in range(kw) if j * dw % sw == b]
            r0, c0 = rows_i[0] * dh // sh, cols_j[0] * dw // sw
            rstep = rows_i[1] * dh // sh - r0 if len(rows_i) > 1 else 0
            cstep = cols_j[1] * dw // sw - c0 if len(cols_j) > 1 else 0
            views.append((a, b, len(order), len(rows_i), len(cols_j), r0 * wph + c0,
                          rstep * wph, cstep))
            order.extend(i * kw + j for i in rows_i for j in cols_j)
    nk = kh * kw
    wm = w.reshape(c, mult, nk)
    if order != list(range(nk)):
        wm = wm[:, :, order]
    it = x.itemsize
    rows = max(1, min(oh, _DEPTHWISE_BUDGET // max((c * nk + m) * wph * it, 1)))
    rows = -(-oh // -(-oh // rows))  # bands of equal height: no short last band
    buf = _scratch("cols", c * nk * rows * wph, x.dtype)
    ybuf = _scratch("out", m * rows * wph, x.dtype)
    if bias is not None:
        bias = bias.astype(x.dtype, copy=False).reshape(m, 1, 1)
    y = np.empty((n_img, m, oh, ow), dtype=x.dtype)
    for img in range(n_img):
        for q0 in range(0, oh, rows):
            q1 = min(oh, q0 + rows)
            lb = (q1 - q0) * wph
            cols = buf[:c * nk * lb].reshape(c, nk, lb)
            for a, b, k0, ni, nj, start, rstep, cstep in views:
                src = flat[a, b, img, :, start + q0 * wph:]
                view = as_strided(src, shape=(c, ni, nj, lb),
                                  strides=(src.strides[0], rstep * it, cstep * it, it),
                                  writeable=False)
                np.copyto(cols[:, k0:k0 + ni * nj].reshape(c, ni, nj, lb), view)
            yb = ybuf[:m * lb].reshape(c, mult, lb)
            np.matmul(wm, cols, out=yb)
            band = yb.reshape(m, q1 - q0, wph)[:, :, :ow]
            if bias is None:
                y[img, :, q0:q1] = band
            else:
                np.add(band, bias, out=y[img, :, q0:q1])
    return y


_JIT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _depthwise_2d_jit(x: np.ndarray, w: np.ndarray, win: Window,
                      bias: np.ndarray | None) -> np.ndarray | None:
    """:func:`_depthwise_2d` by the compiled loop, or None when compiled loops are unavailable.

    The loop's scratch is one channel's stride phases of the padded input and one channel's
    outputs on the phases' row width (a few KiB, allocated per call).
    """
    n_img, c, _, _ = x.shape
    m, _, kh, kw = w.shape
    sh, sw = win.strides
    dh, dw = win.dilations
    oh, ow = win.out
    hq = oh + (kh - 1) * dh // sh
    wq = ow + (kw - 1) * dw // sw
    y = np.empty((n_img, m, oh, ow), dtype=x.dtype)
    b = (np.zeros(1, x.dtype) if bias is None
         else np.ascontiguousarray(bias, dtype=x.dtype).reshape(m))
    if jit.call("conv_loops.depthwise2d", np.ascontiguousarray(x),
                np.ascontiguousarray(w).reshape(m, kh, kw), b, int(bias is not None), y,
                np.empty(sh * sw * hq * wq, x.dtype), np.empty((oh - 1) * wq + ow, x.dtype),
                int(sh), int(sw), int(dh), int(dw), int(win.pads_begin[0]),
                int(win.pads_begin[1]), elements=y.size):
        return y
    return None


def _depthwise(x: np.ndarray, w: np.ndarray, group: int, win: Window) -> np.ndarray:
    """One input channel per group: sum over the kernel of strided views times the weights.

    No column matrix: each kernel element is one multiply-add over the output, with the
    per-channel weight broadcast.
    """
    n_img, c = x.shape[:2]
    m = w.shape[0]
    if win.ndim == 2 and all(o > 0 for o in win.out):
        return _depthwise_2d(x, w, win)
    mult = m // group
    xp = pad_spatial(x, win, 0)
    nsp = win.ndim
    wr = w.reshape((c, mult, -1))
    wshape = (1, c, mult) + (1,) * nsp
    y = tmp = None
    for i, off in enumerate(kernel_offsets(win.kernel)):
        view = xp[(slice(None), slice(None)) + offset_slices(off, win)][:, :, None]
        wk = wr[:, :, i].reshape(wshape)
        if y is None:
            y = np.multiply(view, wk)  # the first term initializes the sum
            tmp = np.empty_like(y)
        else:
            np.multiply(view, wk, out=tmp)
            y += tmp
    return y.reshape((n_img, m) + win.out)


# --------------------------------------------------------------------------------------------
# Conv
# --------------------------------------------------------------------------------------------

@kernel("Conv", versions=(1, 11, 22), prepare=node_memo)
def conv(X: np.ndarray, W: np.ndarray, B: np.ndarray | None = None, *,
         auto_pad: str = "NOTSET", dilations: Sequence[int] | None = None, group: int = 1,
         kernel_shape: Sequence[int] | None = None, pads: Sequence[int] | None = None,
         strides: Sequence[int] | None = None, ctx: KernelContext | None = None,
         prepared: NodeMemo | None = None) -> tuple[np.ndarray]:
    """Y = convolution of X (N, C, *spatial) with W (M, C/group, *kernel), plus bias B.

    ``prepared`` (the node's memo, see :mod:`pyonnx.ops.bind`) keeps the validated geometry
    per input shapes: a model calls each Conv node with the same shapes run after run, and on
    the small tensors of streaming models (silero) the checks and the window arithmetic cost
    more than the convolution itself. The attributes and the allocation limit are fixed per
    node, so the shapes and element type are the whole key.
    """
    key = (X.shape, W.shape, None if B is None else B.shape, X.dtype)
    win = prepared.get(key) if prepared is not None else None
    if win is None:
        _check_conv_shapes(X, W, group, kernel_shape)
        _check_bias(B, W.shape[0], "Conv")
        win = resolve_window(X.shape[2:], W.shape[2:], strides=strides, dilations=dilations,
                             pads=pads, auto_pad=auto_pad)
        if ctx is not None:
            check_alloc((X.shape[0], W.shape[0]) + win.out, X.dtype, ctx.max_tensor_bytes,
                        "Conv output")
        if prepared is not None:
            prepared.remember(key, win)
    cdt = compute_dtype(X.dtype)
    x = X.astype(cdt, copy=False)
    w = W.astype(cdt, copy=False)
    y = _conv_forward(x, w, int(group), win, B)
    return (y.astype(X.dtype, copy=False),)


# --------------------------------------------------------------------------------------------
# ConvInteger
# --------------------------------------------------------------------------------------------

def _zero_point(zp: np.ndarray | None, name: str, allowed_len: int | None = None) -> np.ndarray:
    """A zero point as an int32 array: a scalar, or (when allowed_len) one value per channel."""
    if zp is None:
        return np.zeros((), np.int32)
    zp = np.asarray(zp)
    if zp.dtype.kind not in "iu":
        raise ExecutionError(f"{name} must be an integer tensor, got {zp.dtype}")
    if zp.size == 1:
        return zp.reshape(()).astype(np.int32)
    if allowed_len is not None and zp.ndim == 1 and zp.shape[0] == allowed_len:
        return zp.astype(np.int32)
    raise ExecutionError(f"{name} must be a scalar"
                         + (f" or hold one value per output channel ({allowed_len})"
                            if allowed_len is not None else "")
                         + f", got shape {list(zp.shape)}")


def _exact_float_type(k: int, amax: int, bmax: int) -> np.dtype:
    """A float type in which sums of k products of integers bounded by amax, bmax are exact."""
    return np.dtype(np.float32) if k * amax * bmax <= (1 << 24) else np.dtype(np.float64)


@kernel("ConvInteger", versions=(10,))
def conv_integer(x: np.ndarray, w: np.ndarray, x_zero_point: np.ndarray | None = None,
                 w_zero_point: np.ndarray | None = None, *, auto_pad: str = "NOTSET",
                 dilations: Sequence[int] | None = None, group: int = 1,
                 kernel_shape: Sequence[int] | None = None, pads: Sequence[int] | None = None,
                 strides: Sequence[int] | None = None, ctx: KernelContext | None = None
                 ) -> tuple[np.ndarray]:
    """y (int32) = convolution of (x - x_zero_point) with (w - w_zero_point).

    The products are summed in a float type in which they are exact (BLAS speed, integer result).
    """
    _check_conv_shapes(x, w, group, kernel_shape, "ConvInteger")
    m = w.shape[0]
    xz = _zero_point(x_zero_point, "x_zero_point")
    wz = _zero_point(w_zero_point, "w_zero_point", m)
    win = resolve_window(x.shape[2:], w.shape[2:], strides=strides, dilations=dilations,
                         pads=pads, auto_pad=auto_pad)
    if ctx is not None:
        check_alloc((x.shape[0], m) + win.out, np.int32, ctx.max_tensor_bytes, "ConvInteger output")
    xs = x.astype(np.int32) - xz
    ws = w.astype(np.int32) - (wz.reshape((-1,) + (1,) * (w.ndim - 1)) if wz.ndim else wz)
    amax = int(np.abs(xs).max()) if xs.size else 0
    bmax = int(np.abs(ws).max()) if ws.size else 0
    ft = _exact_float_type(w.shape[1] * prod(w.shape[2:]), amax, bmax)
    # Padding after the zero point is removed: a padded position contributes exactly zero.
    y = _conv_forward(xs.astype(ft), ws.astype(ft), int(group), win)
    return (np.rint(y).astype(np.int32),)


# --------------------------------------------------------------------------------------------
# ConvTranspose and Col2Im (scatter-add of columns)
# --------------------------------------------------------------------------------------------

def _col2im_add(cols: np.ndarray, buf: np.ndarray, win: Window) -> None:
    """Add cols (N, C, *kernel, *positions) into buf (N, C, *padded image).

    Kernel element k at position o lands on padded coordinate ``o * stride + k * dilation``.
    """
    lead = (slice(None), slice(None))
    for off in kernel_offsets(win.kernel):
        buf[lead + offset_slices(off, win)] += cols[lead + off]


@kernel("ConvTranspose", versions=(1, 11, 22))
def conv_transpose(X: np.ndarray, W: np.ndarray, B: np.ndarray | None = None, *,
                   auto_pad: str = "NOTSET", dilations: Sequence[int] | None = None,
                   group: int = 1, kernel_shape: Sequence[int] | None = None,
                   output_padding: Sequence[int] | None = None,
                   output_shape: Sequence[int] | None = None,
                   pads: Sequence[int] | None = None, strides: Sequence[int] | None = None,
                   ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Y = transposed convolution (gradient of Conv with respect to its input) of X with W.

    W is (C, M/group, *kernel); the output size comes from pads, or output_shape (pads derived),
    or auto_pad, as the spec's formulas say.
    """
    if X.ndim < 3:
        raise ExecutionError(f"ConvTranspose: input X must have rank >= 3, got shape "
                             f"{list(X.shape)}")
    if W.ndim != X.ndim:
        raise ExecutionError(f"ConvTranspose: W has rank {W.ndim} (shape {list(W.shape)}) but X "
                             f"has rank {X.ndim}")
    group = int(group)
    if group < 1:
        raise ExecutionError(f"ConvTranspose: group must be >= 1, got {group}")
    n_img, c = X.shape[:2]
    if c % group:
        raise ExecutionError(f"ConvTranspose: group {group} does not divide the {c} input "
                             f"channels of X")
    if W.shape[0] != c:
        raise ExecutionError(f"ConvTranspose: W.shape[0] is {W.shape[0]} but X has {c} channels; "
                             f"W must be (C, M/group, *kernel)")
    kern = tuple(W.shape[2:])
    if kernel_shape is not None and len(kernel_shape) and [int(k) for k in kernel_shape] != \
            list(kern):
        raise ExecutionError(f"ConvTranspose: kernel_shape {list(kernel_shape)} does not match the "
                             f"spatial shape {list(kern)} of W")
    mg = W.shape[1]
    m = mg * group
    _check_bias(B, m, "ConvTranspose")
    in_sp = tuple(X.shape[2:])
    nsp = len(in_sp)
    s = int_attr_list(strides, nsp, 1, "strides", 1)
    d = int_attr_list(dilations, nsp, 1, "dilations", 1)
    opad = int_attr_list(output_padding, nsp, 0, "output_padding", 0)
    for i in range(nsp):
        if opad[i] >= s[i] and opad[i] >= d[i]:
            raise ExecutionError(f"ConvTranspose: output_padding {list(opad)} must be smaller than "
                                 f"the stride ({s[i]}) or the dilation ({d[i]}) along axis {i}")
    if auto_pad not in AUTO_PADS:
        raise ExecutionError(f"ConvTranspose: auto_pad {auto_pad!r} is not one of "
                             f"{', '.join(AUTO_PADS)}")
    ek = tuple((k - 1) * dd + 1 for k, dd in zip(kern, d))
    full = tuple(st * (i - 1) + e for st, i, e in zip(s, in_sp, ek))  # all contributions

    if output_shape is not None and len(output_shape):
        osh = [int(v) for v in output_shape]
        if len(osh) == nsp + 2:  # some exporters include N and C
            osh = osh[2:]
        if len(osh) != nsp:
            raise ExecutionError(f"ConvTranspose: output_shape {list(output_shape)} must have one "
                                 f"value per spatial axis ({nsp})")
        if any(v < 0 for v in osh):
            raise ExecutionError(f"ConvTranspose: output_shape {osh} has a negative value")
        pb, pe = [], []
        for i in range(nsp):
            total = full[i] + opad[i] - osh[i]
            half = total // 2
            if total < 0:
                # output_shape beyond every contribution: the extra (zero) positions go at the
                # end, as the backend test data and onnxruntime both have it.
                pb.append(0)
                pe.append(total)
            elif auto_pad == "SAME_UPPER":
                pb.append(half)
                pe.append(total - half)
            else:
                pb.append(total - half)
                pe.append(half)
        out_sp = tuple(osh)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out_sp = tuple(i * st for i, st in zip(in_sp, s))
        pb, pe = [], []
        for i in range(nsp):
            total = max(0, full[i] + opad[i] - out_sp[i])
            half = total // 2
            if auto_pad == "SAME_UPPER":
                pb.append(half)
                pe.append(total - half)
            else:
                pb.append(total - half)
                pe.append(half)
    else:
        if auto_pad == "VALID" or pads is None or len(pads) == 0:
            pv = [0] * (2 * nsp)
        else:
            pv = [int(v) for v in pads]
            if len(pv) != 2 * nsp:
                raise ExecutionError(f"ConvTranspose: pads {pv} must have {2 * nsp} values")
            if any(v < 0 for v in pv):
                raise ExecutionError(f"ConvTranspose: pads {pv} contains a negative value")
        pb, pe = pv[:nsp], pv[nsp:]
        out_sp = tuple(f + o - a - b for f, o, a, b in zip(full, opad, pb, pe))
        if any(v < 0 for v in out_sp):
            raise ExecutionError(f"ConvTranspose: pads {pv} remove more than the whole output "
                                 f"(size before padding {[f + o for f, o in zip(full, opad)]})")

    if ctx is not None:
        check_alloc((n_img, m) + out_sp, X.dtype, ctx.max_tensor_bytes, "ConvTranspose output")
    cdt = compute_dtype(X.dtype)
    x = X.astype(cdt, copy=False)
    w = W.astype(cdt, copy=False)
    nk = prod(kern)
    lin = prod(in_sp)
    cg = c // group
    # Columns: for each output channel and kernel element, the weighted sum over input channels.
    if group == 1:
        cols = np.matmul(w.reshape(c, m * nk).T, x.reshape(n_img, c, lin))
    else:
        wt = w.reshape(group, cg, mg * nk).transpose(0, 2, 1)  # (g, Mg*K, Cg)
        cols = np.matmul(wt, x.reshape(n_img, group, cg, lin))
    cols = cols.reshape((n_img, m) + kern + in_sp)

    win = Window(in_sp, kern, s, d, (0,) * nsp, (0,) * nsp, (0,) * nsp, in_sp)
    if nk == 1 and all(st == 1 for st in s):
        buf = cols.reshape((n_img, m) + in_sp)
    else:
        buf = np.zeros((n_img, m) + full, dtype=cdt)
        _col2im_add(cols, buf, win)

    # Y[o] = buf[o + pads_begin]; positions outside buf (output_padding, or an output_shape
    # larger than the contributions) hold zero before the bias.
    if all(b == 0 for b in pb) and out_sp == full:
        y = buf
    else:
        y = np.zeros((n_img, m) + out_sp, dtype=cdt)
        src, dst = [], []
        for i in range(nsp):
            lo = max(0, -pb[i])
            hi = min(out_sp[i], full[i] - pb[i])
            if hi <= lo:
                lo = hi = 0
            dst.append(slice(lo, hi))
            src.append(slice(lo + pb[i], hi + pb[i]))
        y[(slice(None), slice(None)) + tuple(dst)] = buf[(slice(None), slice(None)) + tuple(src)]
    y = _add_bias(y, B)
    return (y.astype(X.dtype, copy=False),)


@kernel("Col2Im", versions=(18,))
def col2im(input: np.ndarray, image_shape: np.ndarray, block_shape: np.ndarray, *,
           dilations: Sequence[int] | None = None, pads: Sequence[int] | None = None,
           strides: Sequence[int] | None = None, ctx: KernelContext | None = None
           ) -> tuple[np.ndarray]:
    """Sum column blocks (N, C * prod(block_shape), L) back into images (N, C, *image_shape)."""
    img = as_int_list(image_shape)
    blk = as_int_list(block_shape)
    if len(img) != len(blk):
        raise ExecutionError(f"Col2Im: image_shape {img} and block_shape {blk} must have the same "
                             f"length")
    if input.ndim != 3:
        raise ExecutionError(f"Col2Im: input must be 3-D (N, C * prod(block_shape), L), got shape "
                             f"{list(input.shape)}")
    if any(v < 1 for v in blk) or any(v < 0 for v in img):
        raise ExecutionError(f"Col2Im: block_shape {blk} must be >= 1 and image_shape {img} >= 0")
    nk = prod(blk)
    n_img, ck, length = input.shape
    if ck % nk:
        raise ExecutionError(f"Col2Im: input.shape[1] = {ck} is not a multiple of "
                             f"prod(block_shape) = {nk}")
    c = ck // nk
    win = resolve_window(img, blk, strides=strides, dilations=dilations, pads=pads)
    if prod(win.out) != length:
        raise ExecutionError(f"Col2Im: input has L = {length} blocks but image_shape {img}, "
                             f"block_shape {blk}, strides, pads and dilations give "
                             f"{list(win.out)} = {prod(win.out)} blocks")
    if ctx is not None:
        check_alloc([n_img, c] + img, input.dtype, ctx.max_tensor_bytes, "Col2Im output")
    cdt = compute_dtype(input.dtype) if input.dtype.kind == "f" or input.dtype.kind == "V" \
        else input.dtype
    cols = input.astype(cdt, copy=False).reshape((n_img, c) + tuple(blk) + win.out)
    padded = tuple(i + a + b for i, a, b in zip(img, win.pads_begin, win.pads_end))
    buf = np.zeros((n_img, c) + padded, dtype=cdt)
    _col2im_add(cols, buf, win)
    y = buf[(slice(None), slice(None)) + tuple(slice(b, b + i) for b, i in
                                              zip(win.pads_begin, img))]
    return (np.ascontiguousarray(y).astype(input.dtype, copy=False),)


# --------------------------------------------------------------------------------------------
# DeformConv
# --------------------------------------------------------------------------------------------

@kernel("DeformConv", versions=(19, 22))
def deform_conv(X: np.ndarray, W: np.ndarray, offset: np.ndarray, B: np.ndarray | None = None,
                mask: np.ndarray | None = None, *, dilations: Sequence[int] | None = None,
                group: int = 1, kernel_shape: Sequence[int] | None = None,
                offset_group: int = 1, pads: Sequence[int] | None = None,
                strides: Sequence[int] | None = None, ctx: KernelContext | None = None
                ) -> tuple[np.ndarray]:
    """Deformable convolution: each kernel element samples X at its regular position plus a
    learned offset (n-linear interpolation, zero outside the input), times an optional mask."""
    _check_conv_shapes(X, W, group, kernel_shape, "DeformConv")
    m = W.shape[0]
    _check_bias(B, m, "DeformConv")
    n_img, c = X.shape[:2]
    in_sp = tuple(X.shape[2:])
    nsp = len(in_sp)
    og = int(offset_group)
    if og < 1 or c % og:
        raise ExecutionError(f"DeformConv: offset_group {og} must be >= 1 and divide the {c} "
                             f"input channels")
    win = resolve_window(in_sp, W.shape[2:], strides=strides, dilations=dilations, pads=pads)
    nk = prod(win.kernel)
    out = win.out
    length = prod(out)
    want = (n_img, og * nk * nsp) + out
    if tuple(offset.shape) != want:
        raise ExecutionError(f"DeformConv: offset has shape {list(offset.shape)}, expected "
                             f"{list(want)} (N, offset_group * prod(kernel) * {nsp}, *output)")
    if mask is not None and tuple(mask.shape) != (n_img, og * nk) + out:
        raise ExecutionError(f"DeformConv: mask has shape {list(mask.shape)}, expected "
                             f"{[n_img, og * nk, *out]} (N, offset_group * prod(kernel), *output)")
    if ctx is not None:
        check_alloc((n_img, m) + out, X.dtype, ctx.max_tensor_bytes, "DeformConv output")
    cdt = compute_dtype(X.dtype)
    x = X.astype(cdt, copy=False)
    off = offset.astype(cdt, copy=False).reshape((n_img, og, nk, nsp, length))

    # Regular sampling position of kernel element k for output o along axis i.
    grids = np.meshgrid(*[np.arange(o) * st - pb for o, st, pb in
                          zip(out, win.strides, win.pads_begin)], indexing="ij")
    kgrid = np.meshgrid(*[np.arange(k) * dd for k, dd in zip(win.kernel, win.dilations)],
                        indexing="ij")
    cog = c // og
    xr = x.reshape(n_img, og, cog, prod(in_sp))
    lo, frac = [], []
    for i in range(nsp):
        base = (kgrid[i].reshape(nk, 1) + grids[i].reshape(1, length)).astype(cdt)
        pos = base + off[:, :, :, i]  # (N, og, K, L)
        f = np.floor(pos)
        lo.append(f.astype(np.int64))
        frac.append(pos - f)
    sample = np.zeros((n_img, og, cog, nk * length), dtype=cdt)
    sp_strides = [prod(in_sp[i + 1:]) for i in range(nsp)]
    for corner in kernel_offsets((2,) * nsp):
        weight = np.ones((n_img, og, nk, length), dtype=cdt)
        flat = np.zeros((n_img, og, nk, length), dtype=np.int64)
        valid = np.ones((n_img, og, nk, length), dtype=bool)
        for i, bit in enumerate(corner):
            idx = lo[i] + bit
            weight *= frac[i] if bit else (1 - frac[i])
            valid &= (idx >= 0) & (idx < in_sp[i])
            flat += np.clip(idx, 0, max(in_sp[i] - 1, 0)) * sp_strides[i]
        weight *= valid
        g = np.take_along_axis(xr, flat.reshape(n_img, og, 1, nk * length), axis=3)
        sample += g * weight.reshape(n_img, og, 1, nk * length)
    if mask is not None:
        sample *= mask.astype(cdt, copy=False).reshape(n_img, og, 1, nk * length)
    group = int(group)
    cg, mg = c // group, m // group
    cols = sample.reshape(n_img, group, cg * nk, length)
    y = np.matmul(W.astype(cdt, copy=False).reshape(group, mg, cg * nk), cols)
    y = y.reshape((n_img, m) + out)
    y = _add_bias(y, B)
    return (y.astype(X.dtype, copy=False),)
