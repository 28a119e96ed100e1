"""erf and exact Gelu, element-wise, one pass without branches (for Erf and Gelu).

The same two-piece approximation as ``_elementwise.erf`` (its fitted coefficients arrive as
arguments ``P``, ``G`` and ``m``, tuples of the array's element type): erf(z) = z * P(z^2) for
|z| < 1, and erfc(|z|) = exp(-z^2) * G(1/|z| - m) above. Every element computes both pieces and
selects one, so LLVM vectorizes the loop; exp is evaluated in the loop too (libm's exp is a
scalar call): exp(q) = 2^k * exp(r) with k = round(q / ln 2), r = q - k ln 2 in two parts (the
upper part of ln 2 has trailing zero bits, so k times it is exact), and exp(r) by its Taylor
series to degree 7 (float32) or 13 (float64), whose truncation error on |r| <= ln 2 / 2 is a
small fraction of an ulp. 2^k is built from its exponent bits in two factors, so that results
down to the subnormal range (the Gelu tail) round once, as libm's do. q is clamped where exp
rounds to 0, which keeps k in range; NaN takes the |z| < 1 piece, which propagates it.

``gelu`` = 0 gives y = erf(x); 1 gives y = 0.5 * x * (1 + erf(x / sqrt(2))), computed as
0.5 * x * erfc(-x / sqrt(2)) on the negative side, which keeps its relative accuracy in the tail.
``x`` and ``y`` are 1-D and C-contiguous.
"""

from __future__ import annotations

import numpy as np


def erf_f32(x: np.ndarray, y: np.ndarray, gelu: int, P: tuple, G: tuple, m: np.float32) -> None:
    """y = erf(x), or the exact Gelu of x when ``gelu`` is 1; float32."""
    one = np.float32(1.0)
    half = np.float32(0.5)
    s = np.float32(0.7071067811865476) if gelu else one
    for i in range(x.shape[0]):
        v = x[i]
        z = v * s
        a = abs(z)
        t = z * z
        ps = P[len(P) - 1]
        for j in range(len(P) - 2, -1, -1):
            ps = ps * t + P[j]
        ps = ps * z
        # exp(-t), with -t clamped above the point where exp(-t) rounds to 0 in float32
        q = -t
        q = q if q > np.float32(-104.0) else np.float32(-104.0)
        kf = np.floor(q * np.float32(1.4426950408889634) + half)
        r = q - kf * np.float32(0.693145751953125)
        r = r - kf * np.float32(1.4286067653301870e-06)
        ex = np.float32(1 / 5040)
        ex = ex * r + np.float32(1 / 720)
        ex = ex * r + np.float32(1 / 120)
        ex = ex * r + np.float32(1 / 24)
        ex = ex * r + np.float32(1 / 6)
        ex = ex * r + half
        ex = ex * r + one
        ex = ex * r + one
        # np.divide: the "/" operator would test for division by zero, which stops vectorizing
        u = np.divide(one, a) - m
        gs = G[len(G) - 1]
        for j in range(len(G) - 2, -1, -1):
            gs = gs * u + G[j]
        k1 = np.int32(kf) >> 1
        k2 = np.int32(kf) - k1
        e = (ex * gs) * np.int32((k1 + 127) << 23).view(np.float32)
        e = e * np.int32((k2 + 127) << 23).view(np.float32)  # erfc(|z|)
        if gelu:
            w = e if z < 0 else np.float32(2.0) - e
            w = w if a >= one else one + ps
            y[i] = (w * v) * half
        else:
            w = one - e
            w = -w if z < 0 else w
            y[i] = w if a >= one else ps


def erf_f64(x: np.ndarray, y: np.ndarray, gelu: int, P: tuple, G: tuple, m: float) -> None:
    """y = erf(x), or the exact Gelu of x when ``gelu`` is 1; float64."""
    s = 0.7071067811865476 if gelu else 1.0
    for i in range(x.shape[0]):
        v = x[i]
        z = v * s
        a = abs(z)
        t = z * z
        ps = P[len(P) - 1]
        for j in range(len(P) - 2, -1, -1):
            ps = ps * t + P[j]
        ps = ps * z
        # exp(-t), with -t clamped above the point where exp(-t) rounds to 0 in float64
        q = -t
        q = q if q > -746.0 else -746.0
        kf = np.floor(q * 1.4426950408889634 + 0.5)
        r = q - kf * 6.93147180369123816490e-01
        r = r - kf * 1.90821492927058770002e-10
        ex = 1 / 6227020800
        ex = ex * r + 1 / 479001600
        ex = ex * r + 1 / 39916800
        ex = ex * r + 1 / 3628800
        ex = ex * r + 1 / 362880
        ex = ex * r + 1 / 40320
        ex = ex * r + 1 / 5040
        ex = ex * r + 1 / 720
        ex = ex * r + 1 / 120
        ex = ex * r + 1 / 24
        ex = ex * r + 1 / 6
        ex = ex * r + 0.5
        ex = ex * r + 1.0
        ex = ex * r + 1.0
        u = np.divide(1.0, a) - m
        # G in two halves, G_hi(u) * u^h + G_lo(u): LLVM does not unroll one 22-step loop,
        # and a loop left inside keeps the element loop from vectorizing
        h = len(G) // 2
        gh = G[len(G) - 1]
        for j in range(len(G) - 2, h - 1, -1):
            gh = gh * u + G[j]
        gs = G[h - 1]
        for j in range(h - 2, -1, -1):
            gs = gs * u + G[j]
        gs = gh * u ** h + gs
        # via int32: AVX2 converts float64 vectors to int32 vectors, not to int64 ones
        k1 = np.int32(kf) >> 1
        k2 = np.int32(kf) - k1
        e = (ex * gs) * np.int64(np.int64(k1 + 1023) << 52).view(np.float64)
        e = e * np.int64(np.int64(k2 + 1023) << 52).view(np.float64)  # erfc(|z|)
        if gelu:
            w = e if z < 0 else 2.0 - e
            w = w if a >= 1.0 else 1.0 + ps
            y[i] = (w * v) * 0.5
        else:
            w = 1.0 - e
            w = -w if z < 0 else w
            y[i] = w if a >= 1.0 else ps
