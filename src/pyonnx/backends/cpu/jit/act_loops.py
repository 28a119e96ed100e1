"""HardSigmoid and HardSwish in place, one pass (for the fused activations of
:mod:`pyonnx.backends.cpu.fused`): NumPy needs four passes and a temporary for HardSwish.

``y`` is 1-D and C-contiguous; ``alpha`` and ``beta`` are scalars of its element type. Each
element becomes ``t = min(1, max(0, alpha * v + beta))`` (``swish`` 0: HardSigmoid) or ``v * t``
(``swish`` 1: HardSwish). The bounds are applied with comparisons that NaN fails, so NaN
propagates as in ``np.clip``; ``alpha * v + beta`` may be contracted into one fused
multiply-add (a rounding difference of at most one unit in the last place).

:func:`bias_activation` split over numba's threads by rows was measured no faster (96 channels
at 112x112 with Clip, 2 cores at load 2: 0.25-0.44 ms serial, 0.29-0.45 in two parts), for the
reason given in :mod:`.conv_loops`; its sigmoid-based activations, a few nanoseconds per
element, are shared with the pool's idle threads (:func:`bias_activation_claimed`).
"""

from __future__ import annotations

import numpy as np

from pyonnx.backends.cpu.fused import (CHUNK, CLIP, HARD_SIGMOID, HARD_SWISH, RELU, SIGMOID,
                                       SWISH)
from pyonnx.backends.cpu.jit import inline
from pyonnx.backends.cpu.jit.rows_loops import row_dots
from pyonnx.backends.cpu.jit.sync_loops import announce, fetch_add, watch


def hard_sigmoid(y: np.ndarray, alpha: float, beta: float, swish: int) -> None:
    """y = HardSigmoid(y), or HardSwish(y) when ``swish`` is 1, in place."""
    zero = alpha - alpha  # 0 and 1 of y's element type (alpha and beta have it)
    one = zero + 1
    for i in range(y.shape[0]):
        v = y[i]
        t = v * alpha + beta
        if t < zero:
            t = zero
        elif t > one:
            t = one
        y[i] = v * t if swish else t


# exp(t) = 2**k * exp(r) with k = round(t / ln 2) and r = t - k * ln 2 in [-ln2/2, ln2/2]: ln 2
# split in two (the high part has few significant bits, so k * LN2_HI is exact for the k of
# float32) keeps r accurate; exp(r) is its Taylor polynomial of degree 7 (truncation error
# below 6e-9, under a float32 rounding); 2**k is built from its exponent bits.
LOG2E = 1.4426950408889634
LN2_HI = 0.693359375
LN2_LO = -2.12194440e-4
# Clamped arguments: e**-87 is still a normal float32 (k >= -126) and e**89 gives k = 128,
# whose exponent bits are those of +inf, so 1 / (1 + e**t) is exactly 0 as in NumPy's overflow.
T_MIN = -87.0
T_MAX = 89.0



def bias_activation(y: np.ndarray, rows: int, length: int, ld: int, bias: np.ndarray, m: int,
                    code: int, alpha: float, beta: float, kbits: np.ndarray,
                    poly: np.ndarray) -> None:
    """Row ``r`` (of ``rows``: the ``length`` elements from ``y[r * ld]``; ``y`` is 1-D and
    C-contiguous) gets ``bias[r % m]`` added (none when ``m`` is 0), then the activation
    ``code`` applied, in place and in one pass: a convolution's epilogue (rows are output
    channels, ``m`` of them per image; ``ld`` > ``length`` for a band of output columns of a
    larger result, which a thread of a split convolution finishes).

    * RELU: max(v, 0); CLIP: min(max(v, alpha), beta) (comparisons that NaN fails, so NaN
      propagates as in ``np.clip``);
    * HARD_SIGMOID: clip(alpha * v + beta, 0, 1); HARD_SWISH: v * that (with alpha 1/6, beta
      1/2); as in :func:`hard_sigmoid`;
    * SIGMOID: 1 / (1 + exp(-alpha * v)); SWISH: v * that. The exponential is computed here
      (see the constants above: within 4 units in the last place of NumPy's float32 exp-based
      result over [-100, 100]), vectorized by the compiler, where numba's ``exp`` is a scalar
      library call. For float32 only: the polynomial is float32's precision.

    ``alpha`` and ``beta`` have y's element type; ``kbits`` (int32) and ``poly`` (y's type) are
    scratch of at least ``CHUNK`` elements.
    """
    _rows(y, 0, rows, 0, length, ld, bias, m, code, alpha, beta, kbits, poly)


def bias_activation_claimed(y: np.ndarray, rows: int, length: int, ld: int, bias: np.ndarray,
                            m: int, code: int, alpha: float, beta: float, counter: np.ndarray,
                            parts: int, sync: np.ndarray, role: int, seen: int) -> None:
    """:func:`bias_activation` cut into ``parts`` pieces, which the threads that run this loop
    at once claim one at a time through ``counter`` (int64 [2]: pieces claimed, pieces finished;
    see :func:`pyonnx.backends.cpu.threads.shared_loop`; ``sync``, ``role`` and ``seen``: the
    hand-off of :mod:`~pyonnx.backends.cpu.jit.sync_loops`): ranges of rows, or of whole chunks
    of the one row where ``rows`` is 1 (an epilogue without a bias). Each thread takes its own
    scratch; every element is computed as :func:`bias_activation` computes it."""
    kbits = np.empty(CHUNK, np.int32)
    poly = np.empty(CHUNK, y.dtype)
    chunks = (length + CHUNK - 1) // CHUNK
    announce(sync, role)
    while True:
        i = fetch_add(counter, 0, 1)
        if i >= parts:
            break
        if rows == 1:
            _rows(y, 0, 1, chunks * i // parts * CHUNK,
                  min(length, chunks * (i + 1) // parts * CHUNK), ld, bias, m, code, alpha,
                  beta, kbits, poly)
        else:
            _rows(y, rows * i // parts, rows * (i + 1) // parts, 0, length, ld, bias, m, code,
                  alpha, beta, kbits, poly)
        fetch_add(counter, 1, 1)
    watch(sync, role, seen)


@inline
def _rows(y: np.ndarray, r0: int, r1: int, e0: int, e1: int, ld: int, bias: np.ndarray, m: int,
          code: int, alpha: float, beta: float, kbits: np.ndarray, poly: np.ndarray) -> None:
    """The body of :func:`bias_activation` for the rows ``[r0, r1)``, elements ``[e0, e1)``
    of each (``e0`` a multiple of CHUNK)."""
    zero = alpha - alpha  # 0 and 1 of y's element type (zero + 1 would be a float64)
    one = zero + np.float32(1)
    fbits = kbits.view(np.float32)
    for r in range(r0, r1):
        b = bias[r % m] if m else zero
        start = r * ld
        for c0 in range(start + e0, start + e1, CHUNK):
            # 1-D slices of a 1-D array, not y[c0 + i] (numba's check of a computed negative
            # index) nor a row of a 2-D array (a layout numba cannot prove contiguous): either
            # stops the compiler from vectorizing the loops
            yc = y[c0:min(c0 + CHUNK, start + e1)]
            n = yc.shape[0]
            if code == SIGMOID or code == SWISH:
                for i in range(n):
                    t = (yc[i] + b) * -alpha
                    t = min(max(t, np.float32(T_MIN)), np.float32(T_MAX))
                    k = np.floor(t * np.float32(LOG2E) + np.float32(0.5))
                    s = t - k * np.float32(LN2_HI) - k * np.float32(LN2_LO)
                    q = np.float32(1 / 5040)
                    q = q * s + np.float32(1 / 720)
                    q = q * s + np.float32(1 / 120)
                    q = q * s + np.float32(1 / 24)
                    q = q * s + np.float32(1 / 6)
                    q = q * s + np.float32(0.5)
                    q = q * s + one
                    poly[i] = q * s + one
                    kbits[i] = (np.int32(k) + np.int32(127)) << np.int32(23)
                if code == SIGMOID:
                    for i in range(n):
                        yc[i] = one / (one + poly[i] * fbits[i])
                else:
                    for i in range(n):
                        yc[i] = (yc[i] + b) * (one / (one + poly[i] * fbits[i]))
            elif code == RELU:
                for i in range(n):
                    v = yc[i] + b
                    yc[i] = zero if v < zero else v
            elif code == CLIP:
                for i in range(n):
                    v = yc[i] + b
                    if v < alpha:
                        v = alpha
                    if v > beta:
                        v = beta
                    yc[i] = v
            elif code == HARD_SIGMOID or code == HARD_SWISH:
                for i in range(n):
                    v = yc[i] + b
                    t = v * alpha + beta
                    if t < zero:
                        t = zero
                    elif t > one:
                        t = one
                    yc[i] = v * t if code == HARD_SWISH else t
            else:
                for i in range(n):
                    yc[i] = yc[i] + b


def squeeze_excitation(x: np.ndarray, w1: np.ndarray, b1: np.ndarray, code1: int,
                       alpha1: float, beta1: float, w2: np.ndarray, b2: np.ndarray,
                       code2: int, alpha2: float, beta2: float, s: np.ndarray, r: np.ndarray,
                       g: np.ndarray, y: np.ndarray) -> None:
    """A squeeze-and-excitation block in one call: for each image n of x (N, C, L), float32,
    y[n] = x[n] * act2(W2 @ act1(W1 @ mean(x[n], axis=1) + b1) + b2) with W1 [R, C], W2 [C, R]
    (the two 1x1 convolutions as matrices); each product's bias and activation (codes,
    ``alpha`` and ``beta`` as for :func:`bias_activation`) applied by the epilogue's own code,
    one row per value. ``s`` (C), ``r`` (R) and ``g`` (C) are scratch. Sums in vector lanes
    (another order than NumPy's and BLAS's; the products by :func:`row_dots`)."""
    n_img, c, length = x.shape
    rr = w1.shape[0]
    inv = np.float32(1.0) / np.float32(length)
    kbits = np.empty(CHUNK, np.int32)
    poly = np.empty(CHUNK, np.float32)
    for n in range(n_img):
        for ci in range(c):
            acc = np.float32(0.0)
            for i in range(length):
                acc += x[n, ci, i]
            s[ci] = acc * inv
        row_dots(w1, 0, rr, s.reshape(1, c), r.reshape(1, rr), 0)
        _rows(r, 0, rr, 0, 1, 1, b1, rr, code1, alpha1, beta1, kbits, poly)
        row_dots(w2, 0, c, r.reshape(1, rr), g.reshape(1, c), 0)
        _rows(g, 0, c, 0, 1, 1, b2, c, code2, alpha2, beta2, kbits, poly)
        for ci in range(c):
            gc = g[ci]
            for i in range(length):
                y[n, ci, i] = x[n, ci, i] * gc
