"""A register-blocked matrix product for convolutions, with the weights packed once
(:mod:`pyonnx.backends.cpu.pointwise` calls it: 1x1 convolutions and the column matrices of
larger kernels).

OpenBLAS packs both operands of every product it computes. A convolution's weights ``W``
[M, K] are the same on every run, and they are rarely in cache when their node runs (a mobile
CNN's weights and activations together exceed the second-level cache): OpenBLAS's packing then
reads them from memory in its strided order. Inside mobilenet_v2, 1x1 convolutions took about
twice as long as alone (1280 x 320 at 7x7: 1.3 ms in the model, 0.63 alone, 0.6 in onnxruntime
on one thread).

Here ``W`` is packed once (:func:`pyonnx.backends.cpu.pointwise.pack_rows`) into panels of
``ROWS`` rows laid out k-major (``panel[k, r]``), which a product reads front to back; ``X``
[K, N] (one image's channels by positions, or its column matrix) is read in place, ``COLS``
columns at a time. The inner tile, ``ROWS`` x ``COLS`` outputs, is written in LLVM's vector
instructions (:func:`_codegen`, intrinsics): twelve 8-wide float32 accumulators stay in
registers over the whole sum over K, each step two vector loads of X, six broadcasts of W and
twelve fused multiply-adds, what an AVX2 core can issue per cycle (on other machines LLVM splits
the 8-wide operations into the widths they have: the results are the same). numba's own
compilation of the same loop written as scalar Python does not vectorize it (measured 6
GFLOP/s against 45-85 for the intrinsic, one thread, warm cache, where OpenBLAS runs at 45-80).
The tile's epilogue adds the bias and the residual input and applies the activation (a clip,
then HardSigmoid's or HardSwish's gate) in registers before its one store, where OpenBLAS's
product needs a separate pass over Y for them.

Each output is a sum over K in increasing k, plus the bias, plus the residual, then activated: the
order of the unfused graph; only the rounding of each product-sum differs from a BLAS product
(fused multiply-adds, another order of the k terms than OpenBLAS's kernels), within a few units
in the last place.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from pyonnx.backends.cpu.jit import inline
from pyonnx.backends.cpu.jit.rows_loops import row_dots
from pyonnx.backends.cpu.jit.sync_loops import announce, fetch_add, watch
from pyonnx.backends.cpu.jit.vector_ir import (I32, VEC, V8, Activation, array_data, fma, splat,
                                                store, vector_at)
from pyonnx.backends.cpu.pointwise import COLS, ROWS

_NV = COLS // VEC


def _codegen(with_z: bool, nv: int):
    """The body of the tile intrinsics: ``y[r, j] = act(sum_k wp[k, r] * x[k, j] + bias[r]
    (+ z[r, j]))`` for r < ROWS, j < 8 * nv, where ``act(v)`` is ``v = clip(v, ep[0], ep[1])``
    followed by what ``gate`` asks for: the hard gate ``t = clip(ep[2] * v + ep[3], 0, 1)``
    (one fused multiply-add; HardSigmoid gives t, HardSwish v * t) or the sigmoid ``s`` of
    ``ep[2] * v`` (Sigmoid s, Swish v * s); and where
    ``wp[k, r]`` is ``wp[woff + k * ROWS + r]``, ``x[k, j]`` is ``x[xoff + k * xs + j]``,
    ``y[r, j]`` is ``y[yoff + r * ys + j]`` (and ``z`` likewise with ``zoff``, ``zs``),
    ``bias[r]`` is ``bias[boff + r]``. The bounds are applied with comparisons that NaN fails
    (NaN stays NaN, as in ``np.clip``), as in the NumPy activations. Only the first ``rows``
    rows and ``cols`` columns are stored (and read of z): the last panel of W may have fewer
    than ROWS rows, and the last tile of a row of X fewer than its columns (whose x values
    then come from a zero-padded copy)."""

    def codegen(context, builder, signature, args):
        wp_p, x_p, y_p, b_p = (array_data(context, builder, signature.args[i], args[i])
                               for i in (0, 2, 6, 9))
        woff_v, xoff_v, xs_v, k_v, yoff_v, ys_v, boff_v = (args[i] for i in
                                                           (1, 3, 4, 5, 7, 8, 10))
        idx = woff_v.type
        fma_fn = fma(builder)
        # accumulators as allocas in the entry block: LLVM promotes them to registers
        accs = [cgutils.alloca_once_value(builder, ir.Constant(V8, [0.0] * VEC))
                for _ in range(ROWS * nv)]
        with cgutils.for_range(builder, k_v) as loop:
            kk = loop.index
            xo = builder.add(xoff_v, builder.mul(kk, xs_v))
            xv = [builder.load(vector_at(builder, x_p,
                                         builder.add(xo, ir.Constant(idx, VEC * j))),
                               align=4) for j in range(nv)]
            wo = builder.add(woff_v, builder.mul(kk, ir.Constant(idx, ROWS)))
            for r in range(ROWS):
                w = splat(builder, builder.load(builder.gep(wp_p, [builder.add(
                    wo, ir.Constant(idx, r))])))
                for j in range(nv):
                    a = accs[r * nv + j]
                    builder.store(builder.call(fma_fn, [w, xv[j], builder.load(a)]), a)
        activate = Activation(builder, array_data(context, builder, signature.args[11],
                                                  args[11]), args[12], idx)
        zero_s = ir.Constant(V8, [0.0] * VEC)
        rows_v, cols_v = args[13], args[14]
        lanes = cgutils.alloca_once_value(builder, zero_s)  # a partial vector of z

        def lane_ok(j: int, lane: int) -> ir.Value:
            return builder.icmp_signed("<", ir.Constant(idx, VEC * j + lane), cols_v)

        for r in range(ROWS):
            with builder.if_then(builder.icmp_signed("<", ir.Constant(idx, r), rows_v)):
                b = splat(builder, builder.load(builder.gep(b_p, [builder.add(
                    boff_v, ir.Constant(idx, r))])))
                yrow = builder.add(yoff_v, builder.mul(ir.Constant(idx, r), ys_v))
                if with_z:
                    z_p = array_data(context, builder, signature.args[15], args[15])
                    zrow = builder.add(args[16], builder.mul(ir.Constant(idx, r), args[17]))
                for j in range(nv):
                    v = builder.fadd(builder.load(accs[r * nv + j]), b)
                    if with_z:
                        whole = builder.icmp_signed(">=", cols_v,
                                                    ir.Constant(idx, VEC * (j + 1)))
                        z_at = builder.add(zrow, ir.Constant(idx, VEC * j))
                        with builder.if_else(whole) as (then, otherwise):
                            with then:
                                builder.store(builder.load(vector_at(builder, z_p, z_at),
                                                           align=4), lanes)
                            with otherwise:
                                builder.store(zero_s, lanes)
                                for lane in range(VEC):
                                    with builder.if_then(lane_ok(j, lane)):
                                        zl = builder.load(builder.gep(z_p, [
                                            builder.add(z_at, ir.Constant(idx, lane))]))
                                        builder.store(builder.insert_element(
                                            builder.load(lanes), zl, ir.Constant(I32, lane)),
                                            lanes)
                        v = builder.fadd(v, builder.load(lanes))
                    store(builder, activate.apply([v])[0], y_p,
                          builder.add(yrow, ir.Constant(idx, VEC * j)),
                          builder.sub(cols_v, ir.Constant(idx, VEC * j)))
        return context.get_dummy_value()

    return codegen


def _make_tile(with_z: bool, nv: int):
    """The intrinsic of one ROWS x (8 * nv) tile (see :func:`_codegen`), with the residual
    arguments ``z, zoff, zs`` after ``cols`` when ``with_z``."""
    if with_z:
        def typer(typingctx, wp, woff, x, xoff, xs, k, y, yoff, ys, bias, boff, ep, gate, rows,
                  cols, z, zoff, zs):
            return (types.void(wp, woff, x, xoff, xs, k, y, yoff, ys, bias, boff, ep, gate,
                               rows, cols, z, zoff, zs), _codegen(True, nv))
    else:
        def typer(typingctx, wp, woff, x, xoff, xs, k, y, yoff, ys, bias, boff, ep, gate, rows,
                  cols):
            return (types.void(wp, woff, x, xoff, xs, k, y, yoff, ys, bias, boff, ep, gate,
                               rows, cols), _codegen(False, nv))
    return intrinsic(typer)


# whole tiles of COLS columns, and the narrower tiles of the last few columns of a row (a 7x7
# map has 49 positions: three whole tiles and one of 8 columns, of which one is kept)
# The residual is a compile-time variant, not a runtime flag: a flag's branch and select in the
# epilogue made the tile 4-18% slower (one process, alternating: 96 x 16 at 112x112 1.27 ->
# 1.53 ms, 1280 x 320 at 7x7 1.11 -> 1.17)
_tile, _tile_z = _make_tile(False, _NV), _make_tile(True, _NV)
_tile8, _tile8_z = _make_tile(False, 1), _make_tile(True, 1)


def pointwise(wp: np.ndarray, bp: np.ndarray, m: int, k: int, x: np.ndarray, n: int,
              y: np.ndarray, yoff: int, ys: int, z: np.ndarray, has_z: int, ep: np.ndarray,
              gate: int, p0: int, p1: int, chunk: int) -> None:
    """``Y[M, N] = act(W @ X + bias (+ Z))`` for the row panels ``[p0, p1)`` of the
    packed weights: ``wp`` holds panel p at ``p * k * ROWS`` as ``[k, ROWS]`` (rows past M
    zero), ``bp`` the bias padded to whole panels; ``x`` is X [K, N], flat and C-ordered; Y's
    row r starts at ``y[yoff + r * ys]`` (a band of a larger output when ``ys`` > N), and Z's
    (read only when ``has_z``) at the same place of ``z``. ``act`` is a clip to ``[ep[0],
    ep[1]]`` and then, by ``gate``, HardSigmoid's or HardSwish's gate or the sigmoid, with
    ``alpha = ep[2]``, ``beta = ep[3]`` (see :func:`_codegen`; the codes are
    :mod:`pyonnx.backends.cpu.pointwise`'s). Columns are processed ``chunk`` at a time
    (X's chunk stays in the second-level cache while every panel passes over it). The columns
    past the chunk's last multiple of COLS are read from a zero-padded copy, and a tile stores
    only its rows below M and its columns below N."""
    _panels(wp, bp, m, k, x, n, y, yoff, ys, z, has_z, ep, gate, p0, p1, chunk, 0, n)


def pointwise_claimed(wp: np.ndarray, bp: np.ndarray, m: int, k: int, x: np.ndarray, n: int,
                      y: np.ndarray, yoff: int, ys: int, z: np.ndarray, has_z: int,
                      ep: np.ndarray, gate: int, p0: int, p1: int, chunk: int, by_chunks: int,
                      counter: np.ndarray, parts: int,
                      sync: np.ndarray, role: int, seen: int) -> None:
    """:func:`pointwise` cut into ``parts`` pieces, which the threads that run this loop at once
    claim one at a time through ``counter`` (int64 [2]: pieces claimed, pieces finished; see
    :func:`pyonnx.backends.cpu.threads.shared_loop`; ``sync``, ``role`` and ``seen``: the
    hand-off of :mod:`~pyonnx.backends.cpu.jit.sync_loops`): with ``by_chunks``, runs of X's
    column chunks, each through every panel (a long X, which panel pieces would each read
    whole); else runs of the panels ``[p0, p1)``, each over all of X. Each output is computed as
    :func:`pointwise` computes it, so the result does not depend on the pieces."""
    chunks = (n + chunk - 1) // chunk
    announce(sync, role)
    while True:
        i = fetch_add(counter, 0, 1)
        if i >= parts:
            break
        if by_chunks:
            _panels(wp, bp, m, k, x, n, y, yoff, ys, z, has_z, ep, gate, p0, p1, chunk,
                    chunks * i // parts * chunk, min(n, chunks * (i + 1) // parts * chunk))
        else:
            _panels(wp, bp, m, k, x, n, y, yoff, ys, z, has_z, ep, gate,
                    p0 + (p1 - p0) * i // parts, p0 + (p1 - p0) * (i + 1) // parts, chunk, 0,
                    n)
        fetch_add(counter, 1, 1)
    watch(sync, role, seen)


@inline
def _panels(wp: np.ndarray, bp: np.ndarray, m: int, k: int, x: np.ndarray, n: int,
            y: np.ndarray, yoff: int, ys: int, z: np.ndarray, has_z: int, ep: np.ndarray,
            gate: int, p0: int, p1: int, chunk: int, c_lo: int, c_hi: int) -> None:
    """The body of :func:`pointwise` (see there), for the columns ``[c_lo, c_hi)`` (``c_lo`` a
    multiple of ``chunk``)."""
    xpad = np.zeros(k * COLS, np.float32)
    zero = np.int64(0)
    for c0 in range(c_lo, c_hi, chunk):
        c1 = min(n, c0 + chunk)
        full = c0 + (c1 - c0) // COLS * COLS
        tail = c1 - full
        if tail:
            for kk in range(k):
                for j in range(tail):
                    xpad[kk * COLS + j] = x[kk * n + full + j]
        for p in range(p0, p1):
            m0 = p * ROWS
            rows = np.int64(min(ROWS, m - m0))
            woff = np.int64(p * k * ROWS)
            for n0 in range(c0, full, COLS):
                off = np.int64(yoff + m0 * ys + n0)
                if has_z:
                    _tile_z(wp, woff, x, np.int64(n0), np.int64(n), np.int64(k), y, off,
                            np.int64(ys), bp, np.int64(m0), ep, gate, rows, np.int64(COLS), z,
                            off, np.int64(ys))
                else:
                    _tile(wp, woff, x, np.int64(n0), np.int64(n), np.int64(k), y, off,
                          np.int64(ys), bp, np.int64(m0), ep, gate, rows, np.int64(COLS))
            if tail:
                off = np.int64(yoff + m0 * ys + full)
                narrow = tail <= VEC
                if has_z and narrow:
                    _tile8_z(wp, woff, xpad, zero, np.int64(COLS), np.int64(k), y, off,
                             np.int64(ys), bp, np.int64(m0), ep, gate, rows, np.int64(tail), z,
                             off, np.int64(ys))
                elif has_z:
                    _tile_z(wp, woff, xpad, zero, np.int64(COLS), np.int64(k), y, off,
                            np.int64(ys), bp, np.int64(m0), ep, gate, rows, np.int64(tail), z,
                            off, np.int64(ys))
                elif narrow:
                    _tile8(wp, woff, xpad, zero, np.int64(COLS), np.int64(k), y, off,
                           np.int64(ys), bp, np.int64(m0), ep, gate, rows, np.int64(tail))
                else:
                    _tile(wp, woff, xpad, zero, np.int64(COLS), np.int64(k), y, off,
                          np.int64(ys), bp, np.int64(m0), ep, gate, rows, np.int64(tail))


def rows_dot_claimed(a: np.ndarray, bt: np.ndarray, y: np.ndarray, counter: np.ndarray,
                     parts: int, sync: np.ndarray, role: int, seen: int) -> None:
    """``y[i, j] = sum_k a[i, k] * bt[j, k]``: a few rows ``a`` [M, K] times the transpose of
    ``bt`` [N, K] (float32, C-ordered), the form of a classifier's Gemm at batch 1 (y = x W^T).
    The rows of ``bt`` are cut into ``parts`` runs that the threads running this loop claim
    through ``counter`` (as :func:`pointwise_claimed`; ``sync``, ``role`` and ``seen``: the
    hand-off of :mod:`~pyonnx.backends.cpu.jit.sync_loops`).

    Each output is one dot product (:func:`~pyonnx.backends.cpu.jit.rows_loops.row_dots`,
    another order than BLAS's), the same whatever the pieces. Each row of ``bt`` is read once
    from memory (for every row of ``a`` while it is in the first-level cache): a classifier's weights (4-5 MB) are rarely in cache
    when its node runs, and two threads reading halves of them double the bandwidth one has."""
    n = bt.shape[0]
    announce(sync, role)
    while True:
        p = fetch_add(counter, 0, 1)
        if p >= parts:
            break
        j0 = n * p // parts
        row_dots(bt, j0, n * (p + 1) // parts, a, y, j0)
        fetch_add(counter, 1, 1)
    watch(sync, role, seen)
