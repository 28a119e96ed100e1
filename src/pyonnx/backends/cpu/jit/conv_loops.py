"""Compiled loops for the convolution kernels (see :mod:`pyonnx.backends.cpu.jit`).

Plain functions in numba's nopython subset; ``pyonnx.ops.conv`` calls them through
``jit.call("conv_loops.<name>", ...)`` and keeps its NumPy path as the reference.

Inner loops index flat arrays with UNSIGNED offsets (``np.uint64``): numba then emits no
negative-index wraparound test, so the loops vectorize, and no array view is made per row (a view
costs two atomic reference-count updates, measured at 5-10 ns a row, more than a short row's
copy). Every offset is non-negative by construction.

The ``_claimed`` loops and the register tiles (``depthwise2d_tiles``, at the end) run on the
threads that call them at once (:func:`pyonnx.backends.cpu.threads.shared_loop`), which claim
pieces of channels through an atomic counter. Splitting them over numba's own threads instead
(a ``prange`` over ranges of channels, OpenMP layer, from parts of 128K multiply-adds) was
measured to lose, though each channel is computed by the same code (bit-identical) and a launch
costs about 5 µs against the pool's 55 (then a ``ThreadPoolExecutor``): a parallel region
splits statically, so where the other core is taken (right after an onnxruntime run, whose
threads spin; by another process) the calling thread waits for the other part instead of
taking it. Standalone, 2 cores at load 2: 0.69-1.18x the serial time
per mobilenet_v2 node; in-process alternating with onnxruntime, the ratios to onnxruntime
2.63 -> 2.83 (mobilenet_v2), 3.30 -> 3.30 and 3.64 -> 3.82 (mobilenet_v3_large), 2.93 -> 3.11
(efficientnet_b0); from parts of the pool's size, LR-ASPP's large maps 1.46 -> 1.72. In the
deployed-model benchmark (load 1.0, medians of 3 runs) pyonnx's own times stayed where they
were (mobilenet_v2 28.3 -> 27.8 ms, mobilenet_v3_large 27.8 -> 26.2, efficientnet_b0 40.5 ->
47.4) while the onnxruntime runs alternating with it got slower (9.0 -> 11.4 ms). Two traps
for whoever tries again: libgomp's threads spin for milliseconds after a region by default
(mobilenet_v2 alternating with onnxruntime: 216-234 ms per run, 35-70 with
``OMP_WAIT_POLICY=PASSIVE``), and numba's disk cache files machine code by the function's
qualified name and signature, not its options, so a ``parallel=True`` build of the same
function overwrites (and is loaded as) the serial one.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from pyonnx.backends.cpu.jit import inline
from pyonnx.backends.cpu.jit.gemm_loops import _panels
from pyonnx.backends.cpu.jit.sync_loops import announce, fetch_add, watch
from pyonnx.backends.cpu.jit.vector_ir import (I32, VEC, Activation, array_data, fma, splat,
                                                vector_at)
from pyonnx.backends.cpu.pointwise import ROWS


def depthwise2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, has_bias: int, y: np.ndarray,
                phases: np.ndarray, acc: np.ndarray, sh: int, sw: int, dh: int, dw: int,
                pad_top: int, pad_left: int, lo: float, hi: float) -> None:
    """y (N, M, OH, OW) = act(depthwise 2-D convolution of x (N, C, H, W) with w (M, KH, KW),
    output channel o reading input channel o // (M / C), plus b[o] when ``has_bias``), where
    ``act`` clips to ``[lo, hi]`` (:func:`_activate`: a fused Relu or Clip, or infinite bounds
    for none) as each output is stored.

    Per input channel, the zero-padded input is split into its stride phases
    (``padded[a::sh, b::sw]``), each laid out flat in ``phases`` on the common phase row width
    ``wq = OW + (KW - 1) * dw // sw``. On that grid, the inputs kernel element (p, q) sees for all
    outputs form ONE contiguous run of a phase (phase ``(p*dh % sh, q*dw % sw)``, from its row
    ``p*dh // sh``, column ``q*dw // sw``), so each kernel element is one long multiply-add into
    ``acc`` (outputs on the ``wq``-wide grid, three kernel columns per pass; the columns past OW
    are dropped when ``acc`` is copied into y). ``phases`` holds ``sh * sw * hq * wq`` elements
    with ``hq = OH + (KH - 1) * dh // sh``; ``acc`` at least ``(OH - 1) * wq + OW``.
    """
    _channels(x, w, b, has_bias, y, phases, acc, sh, sw, dh, dw, pad_top, pad_left, lo, hi, 0,
              x.shape[1])


def depthwise2d_claimed(x: np.ndarray, w: np.ndarray, b: np.ndarray, has_bias: int,
                        y: np.ndarray, phases_size: int, acc_size: int, sh: int, sw: int,
                        dh: int, dw: int, pad_top: int, pad_left: int, lo: float, hi: float,
                        counter: np.ndarray, parts: int,
                        sync: np.ndarray, role: int, seen: int) -> None:
    """:func:`depthwise2d` with the input channels cut into ``parts`` pieces, which the threads
    that run this loop at once claim one at a time through ``counter`` (int64 [2]: pieces
    claimed, pieces finished; see :func:`pyonnx.backends.cpu.threads.shared_loop`; ``sync``,
    ``role`` and ``seen``: the hand-off of :mod:`~pyonnx.backends.cpu.jit.sync_loops`). Each
    thread takes scratch of ``phases_size`` and ``acc_size`` elements (what :func:`depthwise2d`
    is given) at its first piece. Each output is computed as :func:`depthwise2d` computes it."""
    c = x.shape[1]
    phases = np.empty(0, x.dtype)
    acc = np.empty(0, x.dtype)
    announce(sync, role)
    while True:
        i = fetch_add(counter, 0, 1)
        if i >= parts:
            break
        if phases.size == 0:
            phases = np.empty(phases_size, x.dtype)
            acc = np.empty(acc_size, x.dtype)
        _channels(x, w, b, has_bias, y, phases, acc, sh, sw, dh, dw, pad_top, pad_left, lo, hi,
                  c * i // parts, c * (i + 1) // parts)
        fetch_add(counter, 1, 1)
    watch(sync, role, seen)


@inline
def _channels(x: np.ndarray, w: np.ndarray, b: np.ndarray, has_bias: int, y: np.ndarray,
              phases: np.ndarray, acc: np.ndarray, sh: int, sw: int, dh: int, dw: int,
              pad_top: int, pad_left: int, lo: float, hi: float, c0: int, c1: int) -> None:
    """The body of :func:`depthwise2d` for the input channels ``[c0, c1)``."""
    n_img, c, hh, ww = x.shape
    m, kh, kw = w.shape
    mult = m // c
    oh, ow = y.shape[2], y.shape[3]
    hq = oh + (kh - 1) * dh // sh
    wq = ow + (kw - 1) * dw // sw
    plane = hq * wq
    # the last output row stops at OW: the run of every kernel element then ends inside its phase
    length = np.uint64((oh - 1) * wq + ow)
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    wf = w.reshape(-1)
    # Integer divisions cost tens of cycles, more than a short row's copy: every quotient the
    # loops need is computed here, once.
    # kernel element (p, q) reads its phase from offset offs[p * kw + q]
    offs = np.empty(kh * kw, np.uint64)
    for p in range(kh):
        for q in range(kw):
            offs[p * kw + q] = ((p * dh % sh) * sw + q * dw % sw) * plane \
                + (p * dh // sh) * wq + q * dw // sw
    # phase column j of column phase bb holds input column bb + sw * j - pad_left: the columns
    # [jlo[bb], jhi[bb]) hold input values, the others padding
    jlo = np.empty(sw, np.int64)
    jhi = np.empty(sw, np.int64)
    for bb in range(sw):
        jlo[bb] = min(wq, max(0, -((bb - pad_left) // sw)))
        jhi[bb] = max(jlo[bb], min(wq, (ww - 1 + pad_left - bb) // sw + 1))
    step = np.uint64(sw)
    # The padding positions of the phases are the same for every channel: zeroed once here, and
    # each channel overwrites only the positions that hold input values.
    phases[:] = 0
    # 3x3 kernels at stride 2 read the zero-bordered input itself (a plane of 2 OH + 1 rows of
    # 2 OW + 2, which fits in ``phases``): rows are copied whole, where splitting them into
    # their stride phases is a strided gather per element (measured, one call: 8-33% faster
    # on 14x14 to 56x56 input maps, equal at 112x112, where the stride-2 reads' shuffles cost
    # what the gather did)
    direct2 = (kh == 3 and kw == 3 and sh == 2 and sw == 2 and dh == 1 and dw == 1
               and pad_top <= 2 and pad_left <= 2)
    wp2 = 2 * ow + 2
    rows2 = max(0, min(hh, 2 * oh + 1 - pad_top))
    cols2 = np.uint64(max(0, min(ww, wp2 - pad_left)))
    for n in range(n_img):
        for ci in range(c0, c1):
            cbase = (n * c + ci) * hh * ww
            if direct2:
                for r in range(rows2):
                    dst = np.uint64((r + pad_top) * wp2 + pad_left)
                    src = np.uint64(cbase + r * ww)
                    for j in range(cols2):
                        phases[dst + j] = xf[src + j]
                for mi in range(mult):
                    co = ci * mult + mi
                    _taps3x3_stride2(phases, wf, co * 9, b[co] if has_bias else b[0], has_bias,
                                     yf, (n * m + co) * oh * ow, oh, ow, wp2, lo, hi)
                continue
            # input row r is padded row r + pad_top: row i of row phase a
            a = pad_top % sh
            i = pad_top // sh
            for r in range(hh):
                if i >= hq:
                    break
                row = a * sw * plane + i * wq
                xrow = cbase + r * ww - pad_left
                if sw == 1:
                    dst = np.uint64(row + jlo[0])
                    src = np.uint64(xrow + jlo[0])
                    for j in range(np.uint64(jhi[0] - jlo[0])):
                        phases[dst + j] = xf[src + j]
                else:
                    for bb in range(sw):
                        dst = np.uint64(row + bb * plane + jlo[bb])
                        src = np.uint64(xrow + bb + sw * jlo[bb])
                        for j in range(np.uint64(jhi[bb] - jlo[bb])):
                            phases[dst + j] = xf[src + step * j]
                a += 1
                if a == sh:
                    a = 0
                    i += 1
            for mi in range(mult):
                co = ci * mult + mi
                wbase = co * kh * kw
                if kh == 3 and kw == 3 and ow >= _DIRECT_MIN_OW:
                    # the common kernel on long rows: its nine multiply-adds in one pass that
                    # writes y (the general passes below go through acc three times)
                    _taps3x3(phases, offs, wf, wbase, b[co] if has_bias else b[0], has_bias,
                             yf, (n * m + co) * oh * ow, oh, ow, wq, lo, hi)
                    continue
                for p in range(kh):
                    k = p * kw
                    q = 0
                    while q < kw:
                        o0 = offs[k + q]
                        w0 = wf[wbase + k + q]
                        if q + 3 <= kw:
                            o1 = offs[k + q + 1]
                            o2 = offs[k + q + 2]
                            w1 = wf[wbase + k + q + 1]
                            w2 = wf[wbase + k + q + 2]
                            if k + q == 0:
                                for t in range(length):
                                    acc[t] = w0 * phases[o0 + t] + w1 * phases[o1 + t] \
                                        + w2 * phases[o2 + t]
                            else:
                                for t in range(length):
                                    acc[t] += w0 * phases[o0 + t] + w1 * phases[o1 + t] \
                                        + w2 * phases[o2 + t]
                            q += 3
                        else:
                            if k + q == 0:
                                for t in range(length):
                                    acc[t] = w0 * phases[o0 + t]
                            else:
                                for t in range(length):
                                    acc[t] += w0 * phases[o0 + t]
                            q += 1
                ybase = (n * m + co) * oh * ow
                bv = b[co] if has_bias else b[0]
                src = np.uint64(0)
                dst = np.uint64(ybase)
                for o in range(oh):
                    if has_bias:
                        for j in range(np.uint64(ow)):
                            yf[dst + j] = _activate(acc[src + j] + bv, lo, hi)
                    else:
                        for j in range(np.uint64(ow)):
                            yf[dst + j] = _activate(acc[src + j], lo, hi)
                    src += np.uint64(wq)
                    dst += np.uint64(ow)


#: Output rows at least this long take the one-pass 3x3 loop of :func:`depthwise2d`: its loop
#: runs along one output row, which shorter rows do not fill with vectors (measured in
#: mobilenet_v2: 384 channels at 14x14, 0.15 ms in the general passes, whose loops run along the
#: whole map, 0.24 in one pass per row; 32 channels at 112x112, 0.57 -> 0.43).
_DIRECT_MIN_OW = 32


@inline
def _activate(v: float, lo: float, hi: float) -> float:
    """The fused activation of a stored output: ``v`` clipped to ``[lo, hi]`` (Relu and Clip;
    comparisons that NaN fails, so NaN stays NaN, as in ``act_loops.bias_activation``). The
    gated activations (HardSwish, Swish, ...) are left to that epilogue: inside this loop they
    measured slower than its pass (a 3x3 depthwise convolution of 96 channels at 112 x 112 with
    HardSwish: 2.6 ms against 1.4), the gate's branches keeping the loops from vectorizing."""
    if v < lo:
        v = lo
    if v > hi:
        v = hi
    return v


@inline
def _taps3x3(phases: np.ndarray, offs: np.ndarray, wf: np.ndarray, wbase: int, bv: float,
             has_bias: int, yf: np.ndarray, ybase: int, oh: int, ow: int, wq: int, lo: float,
             hi: float) -> None:
    """One output channel of :func:`depthwise2d` for a 3x3 kernel: each output the sum of its
    kernel rows' three products, in the order of the general passes (rows 0, 1, 2, then the
    bias), activated and written straight into y's rows."""
    o0, o1, o2, o3, o4, o5, o6, o7, o8 = (offs[0], offs[1], offs[2], offs[3], offs[4],
                                          offs[5], offs[6], offs[7], offs[8])
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = (wf[wbase], wf[wbase + 1], wf[wbase + 2],
                                          wf[wbase + 3], wf[wbase + 4], wf[wbase + 5],
                                          wf[wbase + 6], wf[wbase + 7], wf[wbase + 8])
    for o in range(oh):
        src = np.uint64(o * wq)
        dst = np.uint64(ybase + o * ow)
        for j in range(np.uint64(ow)):
            t = src + j
            v = (w0 * phases[o0 + t] + w1 * phases[o1 + t] + w2 * phases[o2 + t]) \
                + (w3 * phases[o3 + t] + w4 * phases[o4 + t] + w5 * phases[o5 + t])
            v = v + (w6 * phases[o6 + t] + w7 * phases[o7 + t] + w8 * phases[o8 + t])
            if has_bias:
                v = v + bv
            yf[dst + j] = _activate(v, lo, hi)


@inline
def _taps3x3_stride2(plane: np.ndarray, wf: np.ndarray, wbase: int, bv: float, has_bias: int,
                     yf: np.ndarray, ybase: int, oh: int, ow: int, wp: int, lo: float,
                     hi: float) -> None:
    """One output channel of :func:`depthwise2d` for a 3x3 kernel at stride 2, read from the
    zero-bordered input ``plane`` (rows of ``wp`` elements): the sums in :func:`_taps3x3`'s
    order, activated and written straight into y's rows. The reads at stride 2 are constant
    strides, which LLVM vectorizes with shuffles."""
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = (wf[wbase], wf[wbase + 1], wf[wbase + 2],
                                          wf[wbase + 3], wf[wbase + 4], wf[wbase + 5],
                                          wf[wbase + 6], wf[wbase + 7], wf[wbase + 8])
    one = np.uint64(1)
    two = np.uint64(2)
    for o in range(oh):
        r0 = np.uint64(2 * o * wp)
        r1 = r0 + np.uint64(wp)
        r2 = r1 + np.uint64(wp)
        dst = np.uint64(ybase + o * ow)
        for j in range(np.uint64(ow)):
            k = two * j
            v = (w0 * plane[r0 + k] + w1 * plane[r0 + k + one] + w2 * plane[r0 + k + two]) \
                + (w3 * plane[r1 + k] + w4 * plane[r1 + k + one] + w5 * plane[r1 + k + two])
            v = v + (w6 * plane[r2 + k] + w7 * plane[r2 + k + one] + w8 * plane[r2 + k + two])
            if has_bias:
                v = v + bv
            yf[dst + j] = _activate(v, lo, hi)


def depthwise2d_channels_last(x: np.ndarray, w: np.ndarray, b: np.ndarray, has_bias: int,
                              y: np.ndarray, xt: np.ndarray, acc: np.ndarray, sh: int, sw: int,
                              dh: int, dw: int, pad_top: int, pad_left: int) -> None:
    """y (N, C, OH, OW) = depthwise 2-D convolution of x (N, C, H, W) with w (KH, KW, C) (one
    output channel per input channel, weights channels-last), plus b[c] when ``has_bias``.

    For small output maps (7x7), where :func:`depthwise2d`'s rows are too short to vectorize
    well: per image the input is transposed into ``xt`` (padded rows, padded columns, C; its
    zero border written once), every output pixel is a sum over the kernel of multiply-adds
    along the contiguous channel axis into its row of ``acc`` (OH * OW, C), and ``acc`` is
    transposed into y. ``xt`` covers the padded rows and columns that some window reads:
    ``HP = (OH - 1) * sh + (KH - 1) * dh + 1`` (likewise ``WP``).
    """
    _channels_last(x, w, b, has_bias, y, xt, acc, sh, sw, dh, dw, pad_top, pad_left, 0,
                   x.shape[1])


def depthwise2d_channels_last_claimed(x: np.ndarray, w: np.ndarray, b: np.ndarray,
                                      has_bias: int, y: np.ndarray, xt: np.ndarray,
                                      acc: np.ndarray, sh: int, sw: int, dh: int, dw: int,
                                      pad_top: int, pad_left: int, counter: np.ndarray,
                                      parts: int, sync: np.ndarray, role: int, seen: int) -> None:
    """:func:`depthwise2d_channels_last` with the channels cut into ``parts`` pieces (whole
    multiples of 16 channels but the last, so that two pieces rarely write one cache line of
    ``xt`` or ``acc``), which the threads that run this loop at once claim one at a time through
    ``counter`` (int64 [2]: pieces claimed, pieces finished; see
    :func:`pyonnx.backends.cpu.threads.shared_loop`; ``sync``, ``role`` and ``seen``: the
    hand-off of :mod:`~pyonnx.backends.cpu.jit.sync_loops`). Each output is computed as
    :func:`depthwise2d_channels_last` computes it."""
    c = x.shape[1]
    announce(sync, role)
    while True:
        i = fetch_add(counter, 0, 1)
        if i >= parts:
            break
        ch0 = min(c, (c * i // parts + 15) // 16 * 16)
        ch1 = c if i == parts - 1 else min(c, (c * (i + 1) // parts + 15) // 16 * 16)
        _channels_last(x, w, b, has_bias, y, xt, acc, sh, sw, dh, dw, pad_top, pad_left, ch0,
                       ch1)
        fetch_add(counter, 1, 1)
    watch(sync, role, seen)


@inline
def _channels_last(x: np.ndarray, w: np.ndarray, b: np.ndarray, has_bias: int, y: np.ndarray,
                   xt: np.ndarray, acc: np.ndarray, sh: int, sw: int, dh: int, dw: int,
                   pad_top: int, pad_left: int, ch0: int, ch1: int) -> None:
    """The body of :func:`depthwise2d_channels_last` for the channels ``[ch0, ch1)``."""
    n_img, c, hh, ww = x.shape
    kh, kw, _ = w.shape
    oh, ow = y.shape[2], y.shape[3]
    hp, wp = xt.shape[0], xt.shape[1]
    r1 = min(hp, pad_top + hh)  # padded rows [pad_top, r1) hold input rows
    c1 = min(wp, pad_left + ww)
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    wf = w.reshape(-1)
    tf = xt.reshape(-1)
    af = acc.reshape(-1)
    cc = np.uint64(c)
    plane = np.uint64(hh * ww)
    ohw = oh * ow
    lo = np.uint64(ch0)
    hi = np.uint64(ch1)
    for r in range(hp):
        for col in range(wp):
            if r < pad_top or r >= r1 or col < pad_left or col >= c1:
                d = np.uint64((r * wp + col) * c)
                for ch in range(lo, hi):
                    tf[d + ch] = 0
    for n in range(n_img):
        # transpose in: each padded position's channels gathered from the channel planes
        # (contiguous writes: measured 4x faster than scattering each plane)
        for r in range(pad_top, r1):
            for col in range(pad_left, c1):
                dst = np.uint64((r * wp + col) * c)
                src = np.uint64(n * c * hh * ww + (r - pad_top) * ww + col - pad_left)
                for ch in range(lo, hi):
                    tf[dst + ch] = xf[src + ch * plane]
        for o in range(oh):
            for q in range(ow):
                a = np.uint64((o * ow + q) * c)
                if has_bias:
                    for ch in range(lo, hi):
                        af[a + ch] = b[ch]
                else:
                    for ch in range(lo, hi):
                        af[a + ch] = 0
                for i in range(kh):
                    rbase = (o * sh + i * dh) * wp + q * sw
                    for j in range(kw):
                        xb = np.uint64((rbase + j * dw) * c)
                        wb = np.uint64((i * kw + j) * c)
                        for ch in range(lo, hi):
                            af[a + ch] += wf[wb + ch] * tf[xb + ch]
        ybase = n * c * ohw
        for ch in range(ch0, ch1):
            dst = np.uint64(ybase + ch * ohw)
            src = np.uint64(ch)
            for t in range(np.uint64(ohw)):
                yf[dst + t] = af[src + t * cc]


# --------------------------------------------------------------------------------------------
# float32 depthwise convolutions with 3x3 or 5x5 kernels at stride 1 or 2 (the mobile CNNs'):
# register tiles of output rows x 8 output columns
# --------------------------------------------------------------------------------------------

#: Output rows per tile: the input rows that the tile's output rows share are loaded once (4
#: rows of a 3x3 kernel at stride 1: 6 input rows x 3 loads for 36 multiply-adds).
TILE_ROWS = 4
#: Elements of a zero-bordered plane past its last row that a tile's loads may reach (vectors
#: starting near a row's end; their lanes past the output row are never stored).
PLANE_SLACK = 2 * VEC


def _tile_codegen(k: int, s: int, nr: int):
    """The body of a depthwise tile: ``nr`` output rows by 8 output columns of one channel,
    ``y[ybase + r * ys + j] = act(sum_{p, q} w[woff + p * k + q] * plane[pbase + (r * s + p) *
    wp + j * s + q] + b[boff])`` for r < nr and j < cols (:class:`~vector_ir.Activation`
    with ``ep`` and ``gate``). Each input row is loaded once per kernel column and multiplied
    into every output row of the tile that reads it; at stride 2 a row's 16 consecutive
    values give the 8 even ones. Per output, the sum runs over the kernel rows, then its
    columns, in order; the bias is added last."""
    def codegen(context, builder, signature, args):
        plane, wf, b, y = (array_data(context, builder, signature.args[i], args[i])
                           for i in (0, 3, 5, 7))
        pbase, wp, woff, boff, ybase, ys, gate, cols = (
            args[i] for i in (1, 2, 4, 6, 8, 9, 11, 12))
        idx = pbase.type
        fma_fn = fma(builder)

        def at(i: int) -> ir.Constant:
            return ir.Constant(idx, i)

        weights = [splat(builder, builder.load(builder.gep(wf, [builder.add(woff, at(t))])))
                   for t in range(k * k)]
        even = ir.Constant(ir.VectorType(I32, VEC), [2 * i for i in range(VEC)])
        accs: list = [None] * nr
        for i in range((nr - 1) * s + k):
            row = builder.add(pbase, builder.mul(at(i), wp))
            for q in range(k):
                start = builder.add(row, at(q))
                xv = builder.load(vector_at(builder, plane, start), align=4)
                if s == 2:
                    odd = builder.load(vector_at(builder, plane, builder.add(start, at(VEC))),
                                       align=4)
                    xv = builder.shuffle_vector(xv, odd, even)
                for r in range(nr):
                    p = i - r * s
                    if 0 <= p < k:
                        w = weights[p * k + q]
                        accs[r] = (builder.fmul(w, xv) if accs[r] is None
                                   else builder.call(fma_fn, [w, xv, accs[r]]))
        bias = splat(builder, builder.load(builder.gep(b, [boff])))
        # no sigmoid: in these tiles it measured slower than the epilogue's pass after them
        # (a Swish on 32 channels at 112x112: 0.74 ms against 0.2 + 0.3)
        activation = Activation(builder, array_data(context, builder, signature.args[10],
                                                    args[10]), gate, idx, sigmoid=False)
        activation.store([(builder.fadd(accs[r], bias), y,
                           builder.add(ybase, builder.mul(at(r), ys)), cols)
                          for r in range(nr)])
        return context.get_dummy_value()

    return codegen


def _make_depthwise_tile(k: int, s: int, nr: int):
    """The intrinsic of one tile (see :func:`_tile_codegen`): arguments ``plane, pbase, wp, wf,
    woff, b, boff, y, ybase, ys, ep, gate, cols``."""
    def typer(typingctx, plane, pbase, wp, wf, woff, b, boff, y, ybase, ys, ep, gate, cols):
        return (types.void(plane, pbase, wp, wf, woff, b, boff, y, ybase, ys, ep, gate, cols),
                _tile_codegen(k, s, nr))
    return intrinsic(typer)


# one intrinsic per kernel size, stride and tile height (maps of fewer than TILE_ROWS output
# rows take tiles of one row)
_dw3s1, _dw3s2 = _make_depthwise_tile(3, 1, TILE_ROWS), _make_depthwise_tile(3, 2, TILE_ROWS)
_dw5s1, _dw5s2 = _make_depthwise_tile(5, 1, TILE_ROWS), _make_depthwise_tile(5, 2, TILE_ROWS)
_dw3s1r, _dw3s2r = _make_depthwise_tile(3, 1, 1), _make_depthwise_tile(3, 2, 1)
_dw5s1r, _dw5s2r = _make_depthwise_tile(5, 1, 1), _make_depthwise_tile(5, 2, 1)


@inline
def _depthwise_tile(k: int, s: int, tall: bool, plane: np.ndarray, pbase: int, wp: int,
                    wf: np.ndarray, woff: int, b: np.ndarray, boff: int, yf: np.ndarray,
                    ybase: int, ys: int, ep: np.ndarray, gate: int, cols: int) -> None:
    """The tile intrinsic for kernel ``k`` x ``k`` at stride ``s`` (3 or 5; 1 or 2), of
    TILE_ROWS output rows when ``tall``, else one."""
    if tall:
        if k == 3:
            if s == 1:
                _dw3s1(plane, pbase, wp, wf, woff, b, boff, yf, ybase, ys, ep, gate, cols)
            else:
                _dw3s2(plane, pbase, wp, wf, woff, b, boff, yf, ybase, ys, ep, gate, cols)
        elif s == 1:
            _dw5s1(plane, pbase, wp, wf, woff, b, boff, yf, ybase, ys, ep, gate, cols)
        else:
            _dw5s2(plane, pbase, wp, wf, woff, b, boff, yf, ybase, ys, ep, gate, cols)
    elif k == 3:
        if s == 1:
            _dw3s1r(plane, pbase, wp, wf, woff, b, boff, yf, ybase, ys, ep, gate, cols)
        else:
            _dw3s2r(plane, pbase, wp, wf, woff, b, boff, yf, ybase, ys, ep, gate, cols)
    elif s == 1:
        _dw5s1r(plane, pbase, wp, wf, woff, b, boff, yf, ybase, ys, ep, gate, cols)
    else:
        _dw5s2r(plane, pbase, wp, wf, woff, b, boff, yf, ybase, ys, ep, gate, cols)


def depthwise2d_tiles(x: np.ndarray, w: np.ndarray, b: np.ndarray, y: np.ndarray,
                      ep: np.ndarray, gate: int, k: int, s: int, pad_top: int,
                      pad_left: int, counter: np.ndarray, parts: int,
                      sync: np.ndarray, role: int, seen: int) -> None:
    """y (N, M, OH, OW) = act(depthwise 2-D convolution of x (N, C, H, W), float32, with w (M,
    k, k) at stride ``s`` in both axes, output channel o reading input channel o // (M / C),
    plus b[o]) for k in (3, 5), s in (1, 2), no dilation; ``b`` holds zeros for a convolution
    without bias, and ``act`` is the fused activation ``ep`` (lower bound, upper bound, alpha,
    beta) and ``gate`` (:class:`~pyonnx.backends.cpu.jit.vector_ir.Activation`): a clip,
    HardSigmoid or HardSwish, not the sigmoid's gates.

    Per input channel, the input is copied into a zero-bordered plane (``(OH - 1) * s + k``
    rows of ``(OW - 1) * s + k``: the padded rows and columns that windows read); tiles of
    TILE_ROWS output rows by 8 output columns (:func:`_tile_codegen`) then read the plane and
    store activated outputs. The last tile of a row starts at OW - 8 (and the last tile of
    rows at OH - TILE_ROWS), recomputing a few outputs to the same values rather than storing
    part of a vector; maps narrower than 8 store the lanes they have.

    The input channels are cut into ``parts`` pieces that the threads running this loop at once
    claim one at a time through ``counter`` (int64 [2]: pieces claimed, pieces finished; see
    :func:`pyonnx.backends.cpu.threads.shared_loop`; ``sync``, ``role`` and ``seen``: the
    hand-off of :mod:`~pyonnx.backends.cpu.jit.sync_loops`); one thread alone passes one piece.
    Each output is computed alike whatever the pieces."""
    c = x.shape[1]
    oh, ow = y.shape[2], y.shape[3]
    plane = np.empty(0, np.float32)
    announce(sync, role)
    while True:
        i = fetch_add(counter, 0, 1)
        if i >= parts:
            break
        if plane.size == 0:
            plane = np.zeros(((oh - 1) * s + k) * ((ow - 1) * s + k) + PLANE_SLACK, np.float32)
        _tiled_channels(x, w, b, y, plane, ep, gate, k, s, pad_top, pad_left,
                        c * i // parts, c * (i + 1) // parts)
        fetch_add(counter, 1, 1)
    watch(sync, role, seen)


@inline
def _tiled_channels(x: np.ndarray, w: np.ndarray, b: np.ndarray, y: np.ndarray,
                    plane: np.ndarray, ep: np.ndarray, gate: int, k: int, s: int, pad_top: int,
                    pad_left: int, c0: int, c1: int) -> None:
    """The body of :func:`depthwise2d_tiles` for the input channels ``[c0, c1)``, with a
    zeroed ``plane`` (each channel overwrites the positions that hold its input)."""
    n_img, c, hh, ww = x.shape
    m = w.shape[0]
    mult = m // c
    oh, ow = y.shape[2], y.shape[3]
    wp = (ow - 1) * s + k
    rows = min(hh, (oh - 1) * s + k - pad_top)  # input rows [0, rows) are read
    cols = np.uint64(max(0, min(ww, wp - pad_left)))
    tall = oh >= TILE_ROWS
    nr = TILE_ROWS if tall else 1
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    wf = w.reshape(-1)
    for n in range(n_img):
        for ci in range(c0, c1):
            src0 = (n * c + ci) * hh * ww
            for r in range(rows):
                dst = np.uint64((r + pad_top) * wp + pad_left)
                src = np.uint64(src0 + r * ww)
                for j in range(cols):
                    plane[dst + j] = xf[src + j]
            for mi in range(mult):
                co = ci * mult + mi
                ybase = (n * m + co) * oh * ow
                for o0 in range(0, oh, nr):
                    o = min(o0, oh - nr)
                    for j0 in range(0, ow, VEC):
                        j = min(j0, ow - VEC) if ow >= VEC else 0
                        _depthwise_tile(k, s, tall, plane, np.int64((o * wp + j) * s),
                                        np.int64(wp), wf, np.int64(co * k * k), b,
                                        np.int64(co), yf, np.int64(ybase + o * ow + j),
                                        np.int64(ow), ep, np.int64(gate),
                                        np.int64(min(VEC, ow - j)))


def columns_product_claimed(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pad_top: int,
                            pad_left: int, band: int, wp: np.ndarray, bp: np.ndarray, m: int,
                            y: np.ndarray, ep: np.ndarray, gate: int, scratch: np.ndarray,
                            slots: int, counter: np.ndarray, parts: int, sync: np.ndarray,
                            role: int, seen: int) -> None:
    """y (N, M, OH, OW) = act(Conv(x, W) + b) of one group in float32, without dilation, by
    the packed product of ``gemm_loops`` over column matrices built per piece: W, the bias
    and the activation as :class:`~pyonnx.backends.cpu.pointwise.Product` holds them (``wp``,
    ``bp``, ``m``; ``ep``, ``gate``), the kernel ``kh`` x ``kw`` at strides ``sh``, ``sw``
    with ``pad_top`` and ``pad_left`` zeros before the input (and as many after as windows
    read). A network's stem (3 channels, 3x3 at stride 2, 112x112 outputs).

    A piece is ``band`` output rows of one image. The thread that claims it splits the input
    rows the band reads into their ``sw`` column phases (``x[..., p::sw]``, zero-padded), so
    that each row of the piece's columns (C * KH * KW rows of ``band * OW``) is a contiguous
    copy from a phase, and runs the product on the columns while they are in its cache.
    ``scratch`` (float32) has ``slots`` slots of ``C * rows_in * sw * qw + C * KH * KW * band *
    OW`` elements (rows_in = (band - 1) * sh + KH, qw = OW + (KW - 1) // sw) for a piece's
    phases and columns: each thread running the loop takes a slot through ``counter[2]`` and
    reuses it for every piece it claims, so its slot stays in its core's cache (a slot per
    piece streamed 2 MB through the caches for mobilenet's stem). It is memory the caller
    reuses, where buffers allocated per call would be fresh pages, each faulted in on its
    first write (measured at twice the copies themselves); a thread beyond ``slots`` (none
    when ``slots`` counts the threads that may run the loop) claims no piece. The pieces
    (``parts`` = ``N * ceil(OH / band)``) are claimed one at a time through ``counter`` (int64
    [3]: pieces claimed, pieces finished, slots taken; see
    :func:`pyonnx.backends.cpu.threads.shared_loop`; ``sync``, ``role`` and ``seen``: the
    hand-off of :mod:`~pyonnx.backends.cpu.jit.sync_loops`). A tile sums over the columns'
    rows in order whatever the piece, so each output is what the product of the whole column
    matrix gives."""
    n_img, c, hh, ww = x.shape
    oh, ow = y.shape[2], y.shape[3]
    k = c * kh * kw
    bands = (oh + band - 1) // band
    panels = (m + ROWS - 1) // ROWS
    rows_in = (band - 1) * sh + kh  # input rows a band reads
    qw = ow + (kw - 1) // sw  # a phase row's width
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    no_z = np.zeros(1, np.float32)
    n_ph = c * rows_in * sw * qw
    per_piece = n_ph + k * band * ow
    announce(sync, role)
    slot = fetch_add(counter, 2, 1)
    phases = scratch[slot * per_piece:slot * per_piece + n_ph]
    cols = scratch[slot * per_piece + n_ph:(slot + 1) * per_piece]
    while slot < slots:
        i = fetch_add(counter, 0, 1)
        if i >= parts:
            break
        img = i // bands
        r0 = i % bands * band
        r1 = min(oh, r0 + band)
        length = (r1 - r0) * ow
        _band_phases(xf, img, c, hh, ww, sh, sw, pad_top, pad_left, r0, (r1 - r0 - 1) * sh + kh,
                     rows_in, qw, phases)
        _band_columns(phases, c, kh, kw, sh, sw, rows_in, qw, r1 - r0, ow, cols, length)
        _panels(wp, bp, m, k, cols, length, yf, img * m * oh * ow + r0 * ow, oh * ow, no_z, 0,
                ep, gate, 0, panels, length, 0, length)
        fetch_add(counter, 1, 1)
    watch(sync, role, seen)


@inline
def _band_phases(xf: np.ndarray, img: int, c: int, hh: int, ww: int, sh: int, sw: int,
                 pad_top: int, pad_left: int, r0: int, rows: int, rows_in: int, qw: int,
                 phases: np.ndarray) -> None:
    """The ``rows`` input rows that output rows from ``r0`` on read, split into their ``sw``
    column phases: ``phases[ci, rr, p, q]`` (of [C, rows_in, sw, qw]) holds input (ci, r0 * sh
    - pad_top + rr, q * sw + p - pad_left), or 0 outside the input. (Indices are unsigned, as
    the copies' loop counters: a signed index carries numba's negative-index check, and mixed
    signed and unsigned ones become floats; either keeps the compiler from vectorizing.)"""
    for ci in range(c):
        for rr in range(rows):
            ih = r0 * sh - pad_top + rr
            for p in range(sw):
                dst = np.uint64(((ci * rows_in + rr) * sw + p) * qw)
                # the phase columns q whose input column q * sw + p - pad_left lies in [0, W)
                q_lo = min(qw, max(0, (pad_left - p + sw - 1) // sw))
                q_hi = max(q_lo, min(qw, (ww - 1 + pad_left - p) // sw + 1)) \
                    if ww - 1 + pad_left - p >= 0 else q_lo
                if ih < 0 or ih >= hh:
                    q_hi = q_lo
                for q in range(np.uint64(q_lo)):
                    phases[dst + q] = 0
                if q_hi > q_lo:
                    src = np.uint64(((img * c + ci) * hh + ih) * ww + q_lo * sw + p - pad_left)
                    out = dst + np.uint64(q_lo)
                    n = np.uint64(q_hi - q_lo)
                    # constant strides, which the compiler vectorizes
                    if sw == 1:
                        for q in range(n):
                            phases[out + q] = xf[src + q]
                    elif sw == 2:
                        for q in range(n):
                            phases[out + q] = xf[src + np.uint64(2) * q]
                    else:
                        for q in range(n):
                            phases[out + q] = xf[src + np.uint64(sw) * q]
                for q in range(np.uint64(q_hi), np.uint64(qw)):
                    phases[dst + q] = 0


@inline
def _band_columns(phases: np.ndarray, c: int, kh: int, kw: int, sh: int, sw: int,
                  rows_in: int, qw: int, rows: int, ow: int, cols: np.ndarray,
                  length: int) -> None:
    """The column matrix of ``rows`` output rows from :func:`_band_phases`' planes: row (ci, ki,
    kj) of ``cols`` (C * KH * KW rows of ``length``), columns (r, o), holds phase kj % sw of
    input row r * sh + ki at column o + kj // sw."""
    n = np.uint64(ow)
    for ci in range(c):
        for ki in range(kh):
            for kj in range(kw):
                row = ((ci * kh + ki) * kw + kj) * length
                for r in range(rows):
                    src = np.uint64(((ci * rows_in + r * sh + ki) * sw + kj % sw) * qw
                                    + kj // sw)
                    dst = np.uint64(row + r * ow)
                    for o in range(n):
                        cols[dst + o] = phases[src + o]
