"""The CPU provider's Conv: the reference's definition (:mod:`pyonnx.ops.conv`), computed by the
strategy that suits the shapes.

* A 1x1 kernel without padding is a plain matrix product on the (strided) input.
* Non-overlapping windows (kernel = stride, patch embeddings) get their columns from one
  transpose.
* Small inputs take one strided view, one copy and one product (per-call overhead dominates).
* Larger inputs build their column matrix band of output rows by band, in a per-thread scratch
  buffer that stays in cache with the band's outputs while the GEMM consumes it; a stride on the
  last axis first splits the input into its stride phases so every copy reads unit-stride rows.
* A 2-D depthwise convolution (one input channel per group) copies columns per stride phase and
  contracts them with a product batched over the channels; where there are many channels per
  output column (the late layers of mobile CNNs) it transposes the input to channels-last and
  contracts all windows with one ``np.einsum`` along the channels instead. In float32 and
  float64 where numba is installed it runs a compiled loop: ``jit/conv_loops.depthwise2d``
  (stride phases per channel), or for small output maps with many channels
  ``depthwise2d_channels_last``. Other ranks sum strided views times per-channel weights.

With an intra-op budget of several threads (:mod:`pyonnx.backends.cpu.threads`), a convolution
of at least two parts' worth of work (:data:`MIN_PART_MACS`) is split over the pool: a
depthwise one by channels, one of one image by bands of output rows, each part building its
own columns, computing its product and finishing its epilogue (see :func:`_split`). Where
the compiled loops run, float32 1x1 convolutions and stems take the packed product of
:mod:`~pyonnx.backends.cpu.pointwise` instead, whatever their size: its pieces are claimed by
the pool's threads inside one loop.

Column buffers are per-thread scratch reused across calls (never shared by concurrent runs).
Each strategy is tested against the reference kernel (tests/backends/cpu/test_conv.py).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

from pyonnx.backends.cpu import jit, threads
from pyonnx.backends.cpu.gemm import matmul2d
from pyonnx.backends.cpu.pointwise import (HARD_SIGMOID, HARD_SWISH, IDENTITY, NONE,
                                           epilogue_values, pointwise_conv, product,
                                           product_into)
from pyonnx.ops._common import prod
from pyonnx.ops._conv import Window, kernel_offsets, offset_slices, pad_spatial
from pyonnx.ops.conv import _add_bias, conv_kernel

__all__ = ["conv", "conv_forward", "packed_pointwise", "tiles_plan", "DepthwiseTiles"]

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
# Forward convolution (float arrays in the compute dtype)
# --------------------------------------------------------------------------------------------

def conv_forward(x: np.ndarray, w: np.ndarray, group: int, win: Window,
                  bias: np.ndarray | None = None,
                  epilogue: Callable[[np.ndarray, np.ndarray | None], np.ndarray] | None = None,
                  stored: tuple[float, float, float, float, int] | None = None
                  ) -> np.ndarray:
    """Y (N, M, *out) = convolution of x (N, C, *in) with w (M, C/group, *kernel), plus the
    per-channel ``bias`` when given (fused into the last pass where the path allows).

    ``epilogue(y, b)`` (the fused kernels': bias and activation in one pass) finishes the
    result: it receives the convolution and the bias still to add (None where the path already
    added it) and returns Y; by default the bias is added in place. ``stored``, when given, is
    the epilogue's activation as :func:`~pyonnx.backends.cpu.pointwise.store_activation` gives
    it: a depthwise convolution whose compiled loop applies it as it stores its outputs (Relu
    and Clip), or a stem whose packed product does (any of them), is then returned without the
    epilogue. Without an epilogue, a 1x1 convolution in float32 is the packed product of
    :mod:`pyonnx.backends.cpu.pointwise` where the compiled loops run (the fused kernels call
    that one themselves, with their activation)."""
    pointwise, nonempty, nk, length, unit_strides = _shape_class(win)
    if epilogue is None:
        if packed_pointwise(group, win):
            y = pointwise_conv(x, w, bias)
            if y is not None:
                return y
        epilogue = _add_bias
    n_img, c = x.shape[:2]
    m = w.shape[0]
    if short_product(x.shape, w.shape, group, win):
        # the small products of squeeze-and-excitation blocks (1x1 maps): one call, without
        # the strategies' bookkeeping, which costs more than the product there
        y = matmul2d(w.reshape(m, c), x.reshape(c, length)).reshape((1, m) + win.out)
        return epilogue(y, bias)
    depthwise = _is_depthwise(c, group, win)
    if _splits(x, w, group, win):
        y = _split(x, w, group, win, bias, epilogue, pointwise, depthwise, stored)
        if y is not None:
            return y
    if group == 1 and nonempty and not pointwise and x.dtype == np.float32 \
            and w.dtype == np.float32 and (_small_columns(n_img, c, nk, length, x.itemsize)
                                           or _banded_stem(c, nk, win)) \
            and n_img * m * length >= jit.MIN_ELEMENTS and jit.available():
        # a stem (any size where it is built band by band): its column matrix and the packed
        # product, whose stores add the bias and apply the activation where they can (the
        # epilogue's pass over Y saved)
        y = _small_columns_product(x, w, win, bias, stored)
        if y is not None:
            return y if stored is not None else epilogue(y, None)
    if bias is not None and depthwise:
        if _loop_stores(stored, x, w, win):
            y = _depthwise_2d_jit(x, w, win, bias, stored=stored)
            if y is not None:
                return y
        return epilogue(_depthwise_2d(x, w, win, bias), None)
    return epilogue(_conv_core(x, w, group, win), bias)


def short_product(x_shape: tuple[int, ...], w_shape: tuple[int, ...], group: int,
                  win: Window) -> bool:
    """Whether :func:`conv_forward` computes this convolution as one small product of the
    weights as an [M, C] matrix and the input as [C, positions] (a 1x1 convolution of one
    image without padding or stride, on a 1x1 map or of little work: the convolutions of
    squeeze-and-excitation blocks)."""
    pointwise, _, _, length, unit_strides = _shape_class(win)
    return pointwise and unit_strides and group == 1 and x_shape[0] == 1 \
        and (length == 1 or w_shape[0] * x_shape[1] * length <= _TINY)


def _is_depthwise(c: int, group: int, win: Window) -> bool:
    """Whether a convolution of ``c`` input channels in ``group`` groups over ``win`` takes
    the 2-D depthwise paths (one input channel per group, a non-empty output, not 1x1)."""
    pointwise, nonempty = _shape_class(win)[:2]
    return win.ndim == 2 and c == group > 1 and nonempty and not pointwise


def _splits(x: np.ndarray, w: np.ndarray, group: int, win: Window) -> bool:
    """Whether :func:`conv_forward` tries :func:`_split` for this convolution: several intra-op
    threads and at least two parts' work (a depthwise multiply-add weighted as several of a
    product's)."""
    _, nonempty, nk, length, _ = _shape_class(win)
    if not nonempty or threads.budget() < 2:
        return False
    c = x.shape[1]
    depthwise = _is_depthwise(c, group, win)
    if depthwise and x.dtype in _JIT_DTYPES and w.dtype == x.dtype and jit.available():
        # the compiled depthwise loops share their pieces with the pool themselves, without
        # a Python call per part: LR-ASPP's 960 channels at 33x33, 5x5, 1.36-1.38 ms split
        # here, 1.24-1.28 in the loop (two threads)
        return False
    macs = x.shape[0] * w.shape[0] * length * (c // group) * nk
    return macs * (_DEPTHWISE_WEIGHT if depthwise else 1) >= 2 * MIN_PART_MACS


def tiles_plan(x: np.ndarray, w: np.ndarray, group: int, win: Window,
               bias: np.ndarray | None, stored: tuple[float, float, float, float, int] | None
               ) -> DepthwiseTiles | None:
    """The register tiles' call (:class:`DepthwiseTiles`) that :func:`conv_forward` makes for
    this convolution with this bias and fused activation ``stored`` (and an epilogue), for a
    caller that repeats it; None where conv_forward takes another path."""
    if bias is None or not _is_depthwise(x.shape[1], group, win) or _splits(x, w, group, win) \
            or not _loop_stores(stored, x, w, win) or not _tiles_take(x, w, win):
        return None
    return DepthwiseTiles(x.shape, w, win, bias, stored)


# --------------------------------------------------------------------------------------------
# Intra-op split: a large convolution's parts (channels or bands of output rows, each with its
# own columns and its epilogue) on the intra-op threads
# --------------------------------------------------------------------------------------------

#: Multiply-adds a part of a split convolution should have at least: about 2-3 ms of one core
#: in a GEMM. Handing a part to another thread costs 10-30 µs on an idle machine, but a part
#: waits a whole scheduler slice where the other core is taken, as it is while onnxruntime's
#: intra-op threads spin after their run (its default): in the deployed-model benchmark, which
#: alternates the engines, parts of 2M multiply-adds made mobilenet_v3_large 31 ms per run
#: against 24 unsplit (efficientnet_b0 54 against 47, plain NumPy 59 against 41), while parts
#: of 32M kept it at 23.5 and still split the large maps of LR-ASPP (520x520). A part is its
#: columns, its product and its epilogue, so it is worth more than its product alone.
MIN_PART_MACS = 1 << 25
#: A depthwise multiply-add costs about this many GEMM multiply-adds (no register blocking: one
#: load per multiply-add; measured 4-10x, the compiled loop at the low end).
_DEPTHWISE_WEIGHT = 6


#: 1x1 convolutions with fewer output positions than this split by output channels, others by
#: output positions. Measured (float32, one thread, the two halves one after the other): 1280
#: outputs x 320 channels at 7x7, 0.51 ms whole, 0.59 in halves of positions, 0.55 in halves of
#: channels; 144 x 24 at 56x56, 0.33 ms whole, 0.35 and 0.38.
_SPLIT_ROWS_BELOW = 256


def _finish(epilogue: Callable[[np.ndarray, np.ndarray | None], np.ndarray], y: np.ndarray,
            bias: np.ndarray | None) -> None:
    """The epilogue on ``y``, a part of the result, whose values it must end up in (an
    epilogue returns its argument updated in place, or, for an activation NumPy cannot apply
    in place, a new array)."""
    r = epilogue(y, bias)
    if r is not y:
        np.copyto(y, r)


def _split(x: np.ndarray, w: np.ndarray, group: int, win: Window, bias: np.ndarray | None,
           epilogue: Callable[[np.ndarray, np.ndarray | None], np.ndarray], pointwise: bool,
           depthwise: bool, stored: tuple[float, float, float, float, int] | None = None
           ) -> np.ndarray | None:
    """:func:`conv_forward` split over the intra-op threads (:func:`threads.parallel_for`),
    or None where the convolution has a shape this does not split (the caller then runs it
    whole; it has checked that the work is worth two parts).

    * 2-D depthwise: ranges of channels (of images, for a batch), each computed by the path
      the whole convolution would take (chosen once, from the whole input's shape) with its
      epilogue; every output is the whole run's, to the bit.
    * One image, a column matrix: bands of output rows (1x1 kernels: of output positions, or
      of output channels where there are few positions), each building its columns in its
      thread's scratch, multiplying them into its band of Y and running the epilogue on the
      band (rows of a band are ``L`` apart: the compiled epilogue takes that layout). Each
      output is the same sum over K, but OpenBLAS chooses its kernel by the product's shape,
      so a part's product may add the K terms in another order than the whole one's (a few
      float32 units in the last place; the same holds for the splits of
      :mod:`pyonnx.backends.cpu.gemm` and for this module's banded path).

    Batches of the non-depthwise paths are not split here: their products are split by
    :func:`~pyonnx.backends.cpu.gemm.matmul2d` as before.
    """
    n_img, c = x.shape[:2]
    m = w.shape[0]
    cg = c // group
    nk, length = _shape_class(win)[2:4]
    macs = n_img * m * length * cg * nk
    if depthwise:
        return _split_depthwise(x, w, win, bias, epilogue, macs * _DEPTHWISE_WEIGHT, stored)
    if n_img != 1 or (cg == 1 and group > 1) or (pointwise and group != 1):
        return None
    out = win.out
    y = np.empty((1, m) + out, dtype=x.dtype)
    if pointwise:
        if any(s != 1 for s in win.strides):
            x = x[(slice(None), slice(None)) + tuple(slice(0, (o - 1) * s + 1, s)
                                                     for o, s in zip(out, win.strides))]
        cols = x.reshape(c, length)
        w2 = w.reshape(m, c)
        y2 = y.reshape(m, length)
        if length < _SPLIT_ROWS_BELOW:
            # few positions, many channels (late layers): parts of output channels, which
            # pack their own rows of W, rather than the whole of W per part of columns
            def channels(a: int, b: int) -> None:
                np.matmul(w2[a:b], cols, out=y2[a:b])
                _finish(epilogue, y[:, a:b], None if bias is None else bias[a:b])

            threads.parallel_for(m, channels, min_per_part=max(
                2, -(-MIN_PART_MACS // (length * c))))
            return y

        def columns(a: int, b: int) -> None:
            np.matmul(w2, cols[:, a:b], out=y2[:, a:b])
            _finish(epilogue, y2[None, :, a:b], bias)

        threads.parallel_for(length, columns, min_per_part=max(
            2, -(-MIN_PART_MACS // (m * c))))
        return y
    if win.kernel == win.strides and not win.padded and all(d == 1 for d in win.dilations):
        return None  # patch embeddings: one transpose makes the columns (see _conv_core)
    mg = m // group
    w2 = w.reshape(m, cg * nk) if group == 1 else w.reshape(group, mg, cg * nk)
    xp = pad_spatial(x, win, 0)
    # few column rows (a stem): the strided copy of each band is cheaper than the phase split
    phases = None if c * nk <= _FEW_COLS else _last_axis_phases(xp, win)
    row_len = length // out[0]
    per_row = (c * nk + m) * row_len * x.dtype.itemsize
    rows = max(1, min(out[0], _COLS_BUDGET // max(per_row, 1)))
    if _by_groups(group, rows, out[0], (cg * nk + mg) * length * x.itemsize):
        y3 = y.reshape(1, m, length)

        def groups(a: int, b: int) -> None:
            _group_products(xp, phases, w2, win, y3, a, b)
            _finish(epilogue, y[:, a * mg:b * mg],
                    None if bias is None else bias[a * mg:b * mg])

        threads.parallel_for(group, groups,
                             min_per_part=max(1, -(-MIN_PART_MACS // (macs // group))))
        return y
    y4 = y.reshape(1, group, mg, length)

    def bands(a: int, b: int) -> None:
        buf = _scratch("cols", c * nk * min(rows, b - a) * row_len, x.dtype)
        for r0 in range(a, b, rows):
            r1 = min(b, r0 + rows)
            lc = (r1 - r0) * row_len
            cols = _im2col(xp, win, r0, r1, buf[:c * nk * lc], phases)[0]
            dst = y4[0, :, :, r0 * row_len:r1 * row_len]
            if group == 1:
                np.matmul(w2, cols, out=dst[0])
            else:
                np.matmul(w2, cols.reshape(group, cg * nk, lc), out=dst)
            _finish(epilogue, dst.reshape(1, m, lc), bias)

    threads.parallel_for(out[0], bands, min_per_part=max(
        1, -(-MIN_PART_MACS // (macs // out[0]))))
    return y


def _split_depthwise(x: np.ndarray, w: np.ndarray, win: Window, bias: np.ndarray | None,
                     epilogue: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
                     cost: int, stored: tuple[float, float, float, float, int] | None = None
                     ) -> np.ndarray:
    """The 2-D depthwise part of :func:`_split` (``cost``: the whole convolution's, in GEMM
    multiply-adds). Each part takes the path the whole convolution would: the loop that
    applies ``stored`` as it stores where it runs (:func:`conv_forward`), else the convolution
    and then the epilogue; so every output is the unsplit one's, to the bit."""
    n_img, c = x.shape[:2]
    m = w.shape[0]
    mult = m // c
    y = np.empty((n_img, m) + win.out, dtype=x.dtype)
    stores = bias is not None and _loop_stores(stored, x, w, win)

    def part(xs: np.ndarray, ws: np.ndarray, bs: np.ndarray | None, ys: np.ndarray) -> None:
        if stores and _depthwise_2d_jit(xs, ws, win, bs, out=ys, channels=c,
                                        stored=stored) is not None:
            return
        _depthwise_2d(xs, ws, win, bs, out=ys, channels=c)
        _finish(epilogue, ys, None)

    if n_img > 1:
        threads.parallel_for(n_img, lambda a, b: part(x[a:b], w, bias, y[a:b]),
                             min_per_part=max(1, -(-MIN_PART_MACS // (cost // n_img))))
        return y

    def channels(a: int, b: int) -> None:
        part(x[:, a:b], w[a * mult:b * mult],
             None if bias is None else bias[a * mult:b * mult], y[:, a * mult:b * mult])

    threads.parallel_for(c, channels, min_per_part=max(1, -(-MIN_PART_MACS // (cost // c))))
    return y


def _loop_stores(stored: tuple[float, float, float, float, int] | None, x: np.ndarray,
                 w: np.ndarray, win: Window) -> bool:
    """Whether a depthwise loop applies the fused activation ``stored`` as it stores: a clip
    (Relu, Clip; no gate), or in the register tiles (:func:`_tiles_take`) HardSigmoid and
    HardSwish too, in a type the loops compute in."""
    return stored is not None and x.dtype in _JIT_DTYPES and w.dtype == x.dtype \
        and (stored[4] == NONE or stored[4] in _TILE_GATES and _tiles_take(x, w, win))


#: 1x1 convolutions of one image with at most this many multiply-adds take the shortest path
#: of :func:`conv_forward` (measured, one squeeze-and-excitation convolution 72 -> 24 channels
#: with its fused Relu: 25 -> 16 µs per call).
_TINY = 1 << 16


def packed_pointwise(group: int, win: Window) -> bool:
    """True for the convolutions that take
    :func:`~pyonnx.backends.cpu.pointwise.pointwise_conv` (where its loop runs): a 1x1 kernel
    without padding at unit strides, one group, a non-empty output, whatever the work. Until
    session 12 the largest (LR-ASPP's, from twice ``MIN_PART_MACS`` multiply-adds) kept the
    split into bands of OpenBLAS products, measured 7% faster per run of LR-ASPP in the suite
    when it alternated the engines in one process; each engine alone, the packed product
    shared with the pool is faster (two threads, one process per run, two rounds: 16 -> 64
    channels at 260x260, 2.3-2.6 -> 1.4-1.8 ms; 160 -> 960 at 33x33, 2.8-3.4 -> 2.1-2.3).
    The packed product also rounds alike rows alike, where OpenBLAS's parts may not: a
    classifier's 1x1 convolution (light_squeezenet's, 1000 channels at 13x13) then gives alike
    channels the same logits."""
    pointwise, nonempty, _, _, unit_strides = _shape_class(win)
    return pointwise and unit_strides and nonempty and group == 1


@functools.lru_cache(maxsize=4096)
def _shape_class(win: Window) -> tuple[bool, bool, int, int, bool]:
    """(a 1x1 kernel without padding, at any stride: a plain product over the channels; every
    output axis non-empty; kernel elements; output positions; all strides 1) for ``win``.
    Cached: a model calls each Conv node with the same geometry run after run (Windows are
    frozen, hence hashable), and on the small convolutions of squeeze-and-excitation blocks
    these generator checks cost a fifth of the call."""
    return (all(k == 1 for k in win.kernel) and not win.padded, all(o > 0 for o in win.out),
            prod(win.kernel), prod(win.out), all(s == 1 for s in win.strides))


def _product(w2: np.ndarray, cols: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``np.matmul(w2, cols)`` for a weight matrix [M, K] (a view of the weight tensor ``w``)
    and columns [K, L] or [N, K, L]: the packed product of
    :mod:`pyonnx.backends.cpu.pointwise` where it runs (float32, compiled loops), else one GEMM
    per image, each split over the intra-op threads when large
    (:func:`pyonnx.backends.cpu.gemm.matmul2d`)."""
    c3 = cols if cols.ndim == 3 else cols[None]
    m, length = w2.shape[0], c3.shape[2]
    if c3.dtype == np.float32 and w.dtype == np.float32 and c3.flags.c_contiguous:
        y = np.empty((c3.shape[0], m, length), np.float32)
        if product_into(w, None, c3, y.reshape(-1), m * length, length):
            return y if cols.ndim == 3 else y[0]
    if cols.ndim == 2:
        return matmul2d(w2, cols)
    y = np.empty((cols.shape[0], w2.shape[0], cols.shape[2]), np.result_type(w2, cols))
    for i in range(cols.shape[0]):
        matmul2d(w2, cols[i], out=y[i])
    return y


def _conv_core(x: np.ndarray, w: np.ndarray, group: int, win: Window) -> np.ndarray:
    """Y (N, M, *out) = convolution of x (N, C, *in) with w (M, C/group, *kernel)."""
    n_img, c = x.shape[:2]
    m = w.shape[0]
    cg, mg = c // group, m // group
    out = win.out
    length = prod(out)
    nk = prod(win.kernel)

    if _shape_class(win)[0]:
        # 1x1 kernel: each output is a matrix product over channels at one input position.
        if any(s != 1 for s in win.strides):
            x = x[(slice(None), slice(None)) + tuple(slice(0, (o - 1) * s + 1, s) if o else
                                                     slice(0, 0)
                                                     for o, s in zip(out, win.strides))]
        xr = x.reshape(n_img, group, cg, length)
        if group == 1:
            y = _product(w.reshape(m, c), xr[:, 0], w)
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
            y = _product(w2, cols, w)
        else:
            y = np.matmul(w2, cols.reshape(n_img, group, cg * nk, length))
        return y.reshape((n_img, m) + out)
    if _small_columns(n_img, c, nk, length, x.itemsize):
        # small inputs: per-call overhead dominates, so one strided view, one copy, one product;
        # likewise a network's stem (3 channels) on an image that fits twice the band budget
        cols = _im2col_small(x, win)
        if group == 1:
            y = _product(w2, cols, w)
        else:
            y = np.matmul(w2, cols.reshape(n_img, group, cg * nk, length))
        return y.reshape((n_img, m) + out)
    xp = pad_spatial(x, win, 0)
    phases = _last_axis_phases(xp, win)
    row_len = length // max(out[0], 1)
    # Bytes one output row costs while its band is processed: its columns and its outputs.
    per_row = (c * nk + m) * row_len * x.dtype.itemsize
    rows = max(1, min(out[0], _COLS_BUDGET // max(per_row, 1)))
    if _by_groups(group, rows, out[0], (cg * nk + mg) * length * x.itemsize):
        y = np.empty((n_img, m, length), dtype=x.dtype)
        _group_products(xp, phases, w2, win, y, 0, group)
        return y.reshape((n_img, m) + out)
    if n_img == 1 and rows >= out[0]:
        cols = _im2col(xp, win, 0, out[0], phases=phases)  # (1, C * nk, L)
        if group == 1:
            y = _product(w2, cols, w)
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
                if not (cols.flags.c_contiguous and product_into(
                        w, None, cols[None], y.reshape(-1)[(i * m * length + r0 * row_len):],
                        0, length)):
                    matmul2d(w2, cols, out=dst[0])
            else:
                np.matmul(w2, cols.reshape(group, cg * nk, lc), out=dst)
    return y.reshape((n_img, m) + out)


def _small_columns(n_img: int, c: int, nk: int, length: int, itemsize: int) -> bool:
    """Whether a convolution's column matrix is built in one copy (:func:`_im2col_small`):
    small inputs, where per-call overhead dominates, and a network's stem (few channels) on an
    image that fits twice the band budget."""
    cols = n_img * c * nk * length
    return cols <= _SMALL_COLS or (c * nk <= _FEW_COLS and cols * itemsize <= 2 * _COLS_BUDGET)


def _banded_stem(c: int, nk: int, win: Window) -> bool:
    """Whether a convolution of ``c`` channels and ``nk`` kernel elements is a stem that
    :func:`_small_columns_product` builds band by band, whatever the image size (2-D, no
    dilation, few column rows). LR-ASPP's (3 -> 16 channels at 520x520, stride 2) took the
    split OpenBLAS path before, on one thread: 3.2 ms, against 1.2 ms in bands on two threads
    (onnxruntime 0.7)."""
    return c * nk <= _FEW_COLS and win.ndim == 2 and all(d == 1 for d in win.dilations)


def _small_columns_product(x: np.ndarray, w: np.ndarray, win: Window, bias: np.ndarray | None,
                           stored: tuple[float, float, float, float, int] | None
                           ) -> np.ndarray | None:
    """``act(Conv(x, w) + bias)`` of one group, float32, by the packed product over its column
    matrix, where ``act`` is the fused activation ``stored`` (None: no activation); None where
    the product does not run. A 2-D kernel without dilation (a network's stem) builds its
    columns band by band in the compiled loop, each band's product while its columns are in
    cache, in pieces shared with the intra-op threads (``conv_loops.columns_product_claimed``);
    others take :func:`_im2col_small`'s matrix."""
    n_img, m, length = x.shape[0], w.shape[0], prod(win.out)
    plan = product(w, bias, n_img, w.size // m, length, stored or IDENTITY, False)
    if plan is None:
        return None
    y = np.empty((n_img, m) + win.out, np.float32)
    if win.ndim == 2 and all(d == 1 for d in win.dilations):
        oh, ow = win.out
        # bands whose columns fit the product's chunk (in cache), MAX_PIECES per image at
        # most where there are several threads
        band = max(1, min(oh, plan.chunk // ow))
        if threads.budget() > 1:
            band = min(band, -(-oh // threads.MAX_PIECES))
        parts = n_img * -(-oh // band)
        (kh, kw), (sh, sw), c = win.kernel, win.strides, x.shape[1]
        # a piece's input phases and columns (see the loop), one slot per thread that may run
        # the loop (shared_loop's caller and at most share() - 1 pool threads)
        per_piece = c * ((band - 1) * sh + kh) * sw * (ow + (kw - 1) // sw) \
            + c * kh * kw * band * ow
        slots = min(parts, threads.share())
        scratch = _scratch("cols", slots * per_piece, np.float32)
        args = (np.ascontiguousarray(x), kh, kw, sh, sw, *win.pads_begin, band, plan.wp,
                plan.bp, m, y, plan.ep, plan.gate, scratch, slots, np.zeros(3, np.int64),
                parts)
        if threads.shared_loop("conv_loops.columns_product_claimed", args, parts,
                               elements=y.size):
            return y
    if not _small_columns(n_img, x.shape[1], prod(win.kernel), length, x.itemsize):
        return None  # a large stem whose banded loop did not run: the caller's bands instead
    cols = _im2col_small(x, win)
    return y if plan.into(cols, y.reshape(-1), m * length, length, None) else None


def _by_groups(group: int, rows: int, out0: int, group_bytes: int) -> bool:
    """Whether a grouped convolution whose whole column matrix needs bands of ``rows`` output
    rows (of ``out0``) runs group by group instead: where one group's columns and outputs
    (``group_bytes``) fit the band budget. Thin bands of a large-kernel grouped convolution
    (a transformer's positional convolution: 16 groups of 48 channels, a 128-wide kernel, 49
    outputs) make products a few columns wide, at a fraction of BLAS's speed: measured
    (wav2vec2-base's, one thread, CPU time) 45 ms in bands of 5 outputs, 10 ms by groups."""
    return group > 1 and rows < out0 and group_bytes <= _COLS_BUDGET


def _group_products(xp: np.ndarray, phases: dict[int, np.ndarray] | None, w2: np.ndarray,
                    win: Window, y: np.ndarray, g0: int, g1: int) -> None:
    """Y (N, M, L) channels of groups [g0, g1) of a grouped convolution, one group's whole
    column matrix and product at a time (see :func:`_by_groups`): ``xp`` is the padded input,
    ``phases`` its stride phases (see :func:`_last_axis_phases`) or None, ``w2`` the weights
    (group, M / group, C / group * prod(kernel))."""
    n_img = xp.shape[0]
    group, mg, kg = w2.shape
    cg = xp.shape[1] // group
    length = y.shape[2]
    buf = _scratch("cols", kg * length, xp.dtype)
    for i in range(n_img):
        for g in range(g0, g1):
            ch = slice(g * cg, (g + 1) * cg)
            ph = None if phases is None else {p: a[i:i + 1, ch] for p, a in phases.items()}
            cols = _im2col(xp[i:i + 1, ch], win, 0, win.out[0], buf, ph)[0]
            np.matmul(w2[g], cols, out=y[i, g * mg:(g + 1) * mg])


# Column matrices up to this many elements take the short path of _im2col_small.
_SMALL_COLS = 1 << 15
#: Convolutions with at most this many column rows (input channels x kernel elements: a 3x3
#: stem on an RGB image has 27) take that path up to twice the band budget as well: their
#: bands' products are too thin to keep BLAS busy, and the padded copy and band loop cost more
#: than the larger column matrix. Measured (float32, one thread, 3x224x224 input, 3x3 stride 2,
#: 16 / 32 outputs): 0.54 -> 0.38 ms, 0.77 -> 0.59 ms.
_FEW_COLS = 32


def _im2col_small(x: np.ndarray, win: Window) -> np.ndarray:
    """Column matrix (N, C * prod(kernel), L) of a small input in a few NumPy calls: the padded
    copy is made with zeros and one assignment, the window view with the ndarray constructor
    (``as_strided`` costs several times more on inputs this size). The matrix is this thread's
    ``"cols"`` scratch: valid until the next request for it."""
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
    # into this thread's column scratch: a fresh column matrix of a stem (1.3 MiB) costs a
    # page fault per 4 KiB page, measured at several times the copy itself
    cols = _scratch("cols", view.size, xp.dtype).reshape(view.shape)
    np.copyto(cols, view)
    return cols.reshape(n_img, c * prod(win.kernel), prod(win.out))


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
# Measured (CPU time, one thread, 8 mobilenet_v2 shapes together, interleaved): 4 MiB 16.5 ms,
# 1 MiB 19.0, 512 KiB 25.2, 256 KiB 34.2; 16 and 64 MiB no better than 4 (16.8, 18.0 vs 17.1).
_DEPTHWISE_BUDGET = 4 << 20


def _depthwise_2d(x: np.ndarray, w: np.ndarray, win: Window,
                  bias: np.ndarray | None = None, out: np.ndarray | None = None,
                  channels: int | None = None) -> np.ndarray:
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

    Where the time goes (CPU time, one thread, float32, 3x3): 96 channels at 112x112 stride 2,
    the phase split 0.81 ms (a strided gather; a plain copy of x takes 0.18), the column copies
    1.03, the batched product 0.32 (``np.einsum`` 0.75), the output with the bias 0.18; 144
    channels at 56x56 stride 1, 0.13, 1.38, 0.51 and 0.24. Neither a band size (see
    ``_DEPTHWISE_BUDGET``) nor splitting over the pool from parts of 1M multiply-adds (about
    1 ms: mobilenets even, efficientnet_b0's ratio to onnxruntime 4.85 -> 5.91 and 4.32 ->
    5.28, in-process alternating with it) made the whole models faster; nor, measured
    earlier, does a multiply-add of shifted views per kernel element (1.5-3x slower).

    float32 and float64 take the compiled loop ``conv_loops.depthwise2d`` when it is available
    (one pass per channel with no column copy; see :func:`_depthwise_2d_jit`).

    Y is written into ``out`` when given (C-contiguous). ``channels`` (default: x's) is the
    channel count that chooses among the layouts: a part of a split convolution
    (:func:`_split`) passes the whole input's, so that each part takes the whole one's path.
    """
    ch = x.shape[1] if channels is None else channels
    if x.dtype in _JIT_DTYPES and w.dtype == x.dtype:
        y = _depthwise_2d_jit(x, w, win, bias, out, ch)
        if y is not None:
            return y
    if w.shape[0] == x.shape[1] and ch * prod(win.kernel) >= _CHANNELS_LAST_MIN * win.out[1]:
        return _depthwise_2d_channels_last(x, w, win, bias, out)
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
    y = np.empty((n_img, m, oh, ow), dtype=x.dtype) if out is None else out
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


#: The channels-last depthwise path runs where channels x kernel elements is at least this many
#: times the output width. Its NumPy inner loops run along the channels, one per kernel element
#: and output; the phase-column path's run along a band of output rows, one per channel and
#: kernel element. Measured (float32, one thread): channels-last is 2-4x faster on the late
#: layers of mobile CNNs (576 channels at 7x7, 5x5: 0.52 -> 0.18 ms; 288 at 14x14 stride 2, 5x5:
#: 0.29 -> 0.12 ms; 480 at 14x14, 3x3: 0.43 -> 0.27 ms) and up to 3x slower on the early ones
#: with few channels and wide rows (32 channels at 112x112, 3x3: 1.1 -> 3.1 ms); 3x3 kernels
#: break even near 8 channels per output column, 5x5 near 3.
_CHANNELS_LAST_MIN = 72


def _depthwise_2d_channels_last(x: np.ndarray, w: np.ndarray, win: Window,
                                bias: np.ndarray | None, out: np.ndarray | None = None
                                ) -> np.ndarray:
    """Depthwise 2-D convolution (one output channel per input channel) in a channels-last
    layout: per image, the input is copied once, transposed, into a zero-bordered buffer
    (padded rows, padded columns, channels); the windows of all kernel elements are then one
    strided view (kernel rows, kernel columns, output rows, output columns, channels) that
    ``np.einsum`` contracts with the weights (kernel rows, kernel columns, channels) without a
    temporary: its inner loop is a multiply-add along the contiguous channel axis. The result
    is transposed back into Y with the bias added in the same pass."""
    n_img, c, hh, ww = x.shape
    kh, kw = win.kernel
    sh, sw = win.strides
    dh, dw = win.dilations
    pt, pl = win.pads_begin
    oh, ow = win.out
    hp, wp = win.read_extent
    r1, c1 = min(hp, pt + hh), min(wp, pl + ww)  # input rows/columns [pt, r1) x [pl, c1)
    xt = _scratch("channels_last", hp * wp * c, x.dtype).reshape(hp, wp, c)
    wt = np.ascontiguousarray(w.reshape(c, kh, kw).transpose(1, 2, 0))
    st = xt.strides
    view = np.ndarray((kh, kw, oh, ow, c), x.dtype, xt, 0,
                      (st[0] * dh, st[1] * dw, st[0] * sh, st[1] * sw, st[2]))
    yt = _scratch("out", oh * ow * c, x.dtype).reshape(oh, ow, c)
    y = np.empty((n_img, c, oh, ow), dtype=x.dtype) if out is None else out
    b = None if bias is None else bias.astype(x.dtype, copy=False).reshape(c, 1, 1)
    # zero only the border around the copied block (the buffer is reused)
    xt[:pt] = 0
    xt[r1:] = 0
    xt[pt:r1, :pl] = 0
    xt[pt:r1, c1:] = 0
    for img in range(n_img):
        if r1 > pt and c1 > pl:
            np.copyto(xt[pt:r1, pl:c1], x[img, :, :r1 - pt, :c1 - pl].transpose(1, 2, 0))
        np.einsum("ijhwc,ijc->hwc", view, wt, out=yt)
        if b is None:
            np.copyto(y[img], yt.transpose(2, 0, 1))
        else:
            np.add(yt.transpose(2, 0, 1), b, out=y[img])
    return y


_JIT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _depthwise_2d_jit(x: np.ndarray, w: np.ndarray, win: Window, bias: np.ndarray | None,
                      out: np.ndarray | None = None, channels: int | None = None,
                      stored: tuple[float, float, float, float, int] | None = None
                      ) -> np.ndarray | None:
    """:func:`_depthwise_2d` by a compiled loop, or None when compiled loops are unavailable:
    float32 3x3 and 5x5 kernels at stride 1 or 2 by the register tiles
    (:func:`_depthwise_2d_tiles`), the others by the phase loop or, for small maps, the
    channels-last loop. ``stored`` (:func:`~pyonnx.backends.cpu.pointwise.store_activation`'s,
    or None) is applied as each output is stored: a clip by the tiles and the phase loop, a
    hard gate by the tiles (:func:`_loop_stores` says which); where one is asked for, small
    maps that the channels-last loop would take return None instead (that loop applies none:
    the caller then applies it after :func:`_depthwise_2d`).

    The loop's scratch is one channel's stride phases of the padded input and one channel's
    outputs on the phases' row width (a few KiB, allocated per call). The work that
    ``jit.MIN_ELEMENTS`` is compared with is the multiply-adds, not the outputs: a late layer of
    a mobile CNN (288 channels at 7x7, 5x5 kernel: 14K outputs, 350K multiply-adds) is worth
    the loop, which is 3-7x faster than NumPy there.
    """
    if not jit.available():  # spare the plans below (the plain install)
        return None
    if _tiles_take(x, w, win):
        return _depthwise_2d_tiles(x, w, win, bias, out, stored or IDENTITY)
    n_img, c, _, _ = x.shape
    m, _, kh, kw = w.shape
    sh, sw = win.strides
    dh, dw = win.dilations
    oh, ow = win.out
    if m == c and ow <= _JIT_CHANNELS_LAST_MAX_OW \
            and (c if channels is None else channels) * kh * kw >= _CHANNELS_LAST_MIN * ow:
        if stored is not None:
            return None
        return _depthwise_2d_jit_channels_last(x, w, win, bias, out)
    hq = oh + (kh - 1) * dh // sh
    wq = ow + (kw - 1) * dw // sw
    y = np.empty((n_img, m, oh, ow), dtype=x.dtype) if out is None else out
    b = (np.zeros(1, x.dtype) if bias is None
         else np.ascontiguousarray(bias, dtype=x.dtype).reshape(m))
    macs = y.size * kh * kw
    head = (np.ascontiguousarray(x), np.ascontiguousarray(w).reshape(m, kh, kw), b,
            int(bias is not None), y)
    tail = (int(sh), int(sw), int(dh), int(dw), int(win.pads_begin[0]), int(win.pads_begin[1]),
            *epilogue_values(stored or IDENTITY, x.dtype)[:2])
    scratch = (sh * sw * hq * wq, (oh - 1) * wq + ow)
    if threads.budget() > 1 and macs >= MIN_SHARED_DEPTHWISE_MACS and c >= 2:
        # pieces of channels claimed by this thread and the idle pool threads
        parts = min(c, threads.MAX_PIECES)
        if threads.shared_loop("conv_loops.depthwise2d_claimed",
                               head + scratch + tail + (np.zeros(2, np.int64), parts), parts,
                               elements=macs):
            return y
        return None
    if jit.call("conv_loops.depthwise2d", *head, *(np.empty(n, x.dtype) for n in scratch),
                *tail, elements=macs):
        return y
    return None


#: The gates that the depthwise tiles apply as they store (Sigmoid and Swish are left to the
#: epilogue: see ``conv_loops._tile_codegen``).
_TILE_GATES = (NONE, HARD_SIGMOID, HARD_SWISH)


def _tiles_take(x: np.ndarray, w: np.ndarray, win: Window) -> bool:
    """Whether ``conv_loops.depthwise2d_tiles`` computes this depthwise convolution: float32,
    a 3x3 or 5x5 kernel at strides (1, 1) or (2, 2), no dilation (the mobile CNNs' shapes)."""
    kh, kw = win.kernel
    s = win.strides[0]
    return x.dtype == np.float32 and w.dtype == np.float32 and kh == kw and kh in (3, 5) \
        and s == win.strides[1] and s in (1, 2) and win.dilations[0] == win.dilations[1] == 1


def _depthwise_2d_tiles(x: np.ndarray, w: np.ndarray, win: Window, bias: np.ndarray | None,
                        out: np.ndarray | None,
                        stored: tuple[float, float, float, float, int]) -> np.ndarray | None:
    """:func:`_depthwise_2d_jit` by the register tiles of ``conv_loops.depthwise2d_tiles``
    (:func:`_tiles_take`'s convolutions), which apply the fused activation ``stored`` (one
    with a gate of ``_TILE_GATES``) as they store; None when compiled loops are
    unavailable. See :class:`DepthwiseTiles`."""
    return DepthwiseTiles(x.shape, w, win, bias, stored).run(x, out)


class DepthwiseTiles:
    """The register tiles' call for one depthwise convolution: its weights, bias and activation
    as the loop takes them, for inputs of the prepared shape. A FusedConv node keeps it
    between runs (:func:`tiles_plan`), so that a run makes only the call.

    Against the phase and channels-last loops, one thread, on mobilenet_v2's, v3's and
    efficientnet_b0's shapes (one call with its bias, alternating, medians): 1.1-1.7x faster;
    32 channels at 112x112 218 -> 200 µs, 96 at 112x112 stride 2 535 -> 387, 240 at 28x28 5x5
    342 -> 276, 384 at 14x14 106 -> 70, 576 at 14x14 stride 2 125 -> 81, 960 at 7x7 125 -> 72,
    1152 at 7x7 5x5 258 -> 148. The Python around the call cost about 20 µs of those (before
    the nodes kept their calls)."""

    __slots__ = ("w", "b", "ep", "gate", "k", "s", "pads", "out_shape", "macs", "parts")

    def __init__(self, x_shape: tuple[int, ...], w: np.ndarray, win: Window,
                 bias: np.ndarray | None,
                 stored: tuple[float, float, float, float, int]) -> None:
        n_img, c = x_shape[:2]
        m, _, k, _ = w.shape
        self.w = np.ascontiguousarray(w).reshape(m, k, k)
        self.b = (np.zeros(m, np.float32) if bias is None
                  else np.ascontiguousarray(bias, dtype=np.float32).reshape(m))
        self.ep = epilogue_values(stored, np.float32)
        self.gate = int(stored[4])
        self.k, self.s = int(k), int(win.strides[0])
        self.pads = (int(win.pads_begin[0]), int(win.pads_begin[1]))
        self.out_shape = (n_img, m) + tuple(win.out)
        self.macs = n_img * m * prod(win.out) * k * k
        # pieces of channels claimed by this thread and the idle pool threads
        self.parts = min(c, threads.MAX_PIECES) if threads.budget() > 1 \
            and self.macs >= MIN_SHARED_DEPTHWISE_MACS and c >= 2 else 1

    def run(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray | None:
        """Y for ``x`` (float32, the prepared shape), into ``out`` when given (C-contiguous);
        None when compiled loops are unavailable."""
        if not jit.available():
            # nothing allocated: an output allocated and dropped per call, several MB on the
            # early layers, cost the NumPy path that follows its reused memory (page faults;
            # mobilenet_v2's 144 channels at 56x56: 2.0 -> 4.0 ms per call)
            return None
        y = np.empty(self.out_shape, np.float32) if out is None else out
        args = (np.ascontiguousarray(x), self.w, self.b, y, self.ep, self.gate, self.k,
                self.s, *self.pads, np.zeros(2, np.int64), self.parts)
        # one piece runs on the calling thread alone (shared_loop's own rule)
        ok = threads.shared_loop("conv_loops.depthwise2d_tiles", args, self.parts,
                                 elements=self.macs)
        return y if ok else None


#: Depthwise loops of at least this many multiply-adds are shared with the idle intra-op
#: threads (:func:`threads.shared_loop`), in ``threads.MAX_PIECES`` pieces of channels (fewer
#: where there are fewer channels): a depthwise multiply-add costs several of a product's (see
#: ``_DEPTHWISE_WEIGHT``), hence an eighth of ``pointwise.MIN_SHARED_MACS``; measured with it
#: (see there).
MIN_SHARED_DEPTHWISE_MACS = 1 << 17


#: Output widths up to this take the compiled channels-last loop where the channels-last
#: rule holds: measured 20-40% faster there (576 channels at 7x7, 5x5: 0.12 -> 0.09 ms; 288 at
#: 14x14 stride 2: 0.10 -> 0.06 ms), slower from 14x14 outputs on (its two transposes).
_JIT_CHANNELS_LAST_MAX_OW = 8


def _depthwise_2d_jit_channels_last(x: np.ndarray, w: np.ndarray, win: Window,
                                    bias: np.ndarray | None, out: np.ndarray | None = None
                                    ) -> np.ndarray | None:
    """:func:`_depthwise_2d_jit` by ``conv_loops.depthwise2d_channels_last`` (small output maps,
    one output channel per input channel), or None when compiled loops are unavailable."""
    n_img, c, _, _ = x.shape
    kh, kw = win.kernel
    sh, sw = win.strides
    dh, dw = win.dilations
    oh, ow = win.out
    hp, wp = win.read_extent
    y = np.empty((n_img, c, oh, ow), dtype=x.dtype) if out is None else out
    b = (np.zeros(1, x.dtype) if bias is None
         else np.ascontiguousarray(bias, dtype=x.dtype).reshape(c))
    wt = np.ascontiguousarray(w.reshape(c, kh, kw).transpose(1, 2, 0))
    macs = y.size * kh * kw
    args = (np.ascontiguousarray(x), wt, b, int(bias is not None), y,
            _scratch("channels_last", hp * wp * c, x.dtype).reshape(hp, wp, c),
            _scratch("out", oh * ow * c, x.dtype).reshape(oh * ow, c),
            int(sh), int(sw), int(dh), int(dw), int(win.pads_begin[0]), int(win.pads_begin[1]))
    if threads.budget() > 1 and macs >= MIN_SHARED_DEPTHWISE_MACS and c >= 32:
        # pieces of at least 16 channels claimed by this thread and the idle pool threads
        parts = min(c // 16, threads.MAX_PIECES)
        if threads.shared_loop("conv_loops.depthwise2d_channels_last_claimed",
                               args + (np.zeros(2, np.int64), parts), parts, elements=macs):
            return y
        return None
    if jit.call("conv_loops.depthwise2d_channels_last", *args, elements=macs):
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


#: Conv with the reference's checks and geometry memo, computed by :func:`conv_forward`. The
#: CPU provider's Conv kernel (:func:`pyonnx.backends.cpu.fused.fast_conv`) is FusedConv's
#: path without an activation, which ends here.
conv = conv_kernel(conv_forward)
