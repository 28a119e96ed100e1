"""Row-wise loops: normalizations, one row at a time (LayerNormalization, Softmax over the last
axis), and :func:`row_dots`, the dot products of a matrix's rows with a few vectors that the
classifier, squeeze-and-excitation and recurrent loops share.

Every loop takes ``x`` as a C-contiguous matrix (rows, n) whose rows are the slices the operator
normalizes, with n >= 1, and writes ``y`` of the same shape. A float32 row sum adds blocks of
``_BLOCK`` elements in float32 (a vectorized sum: LLVM keeps a few dozen partial sums) and the
block sums in float64, which stays about as accurate as NumPy's pairwise sums for any row length
(adding float32 values straight into a float64 sum does not vectorize).
"""

from __future__ import annotations

import numpy as np

from pyonnx.backends.cpu.jit import inline

_BLOCK = 256


@inline
def row_dots(w: np.ndarray, j0: int, j1: int, v: np.ndarray, out: np.ndarray, o0: int) -> None:
    """``out[b, o0 + j - j0] = sum_k w[j, k] * v[b, k]`` for the rows ``j`` in ``[j0, j1)`` of
    ``w`` [J, K] and every row ``b`` of ``v`` [B, K] (float32, 2-D): each row of ``w`` is read
    once for all the rows of ``v`` (it stays in the first-level cache between them). Each sum
    is accumulated in vector lanes (another order than BLAS's), the same wherever it runs."""
    k = w.shape[1]
    for j in range(j0, j1):
        for b in range(v.shape[0]):
            acc = np.float32(0.0)
            for kk in range(k):
                acc += w[j, kk] * v[b, kk]
            out[b, o0 + j - j0] = acc


def layer_norm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, has_bias: int, epsilon: float,
               y: np.ndarray, mean: np.ndarray, inv_std_dev: np.ndarray) -> None:
    """y = (x - mean) * inv_std_dev * scale (+ bias when ``has_bias``), per row.

    ``scale`` and ``bias`` have n elements; ``mean`` and ``inv_std_dev`` (rows elements, x's type)
    receive each row's mean and 1 / sqrt(variance + epsilon), the variance taken from the
    centred values (second pass), as the NumPy path does.
    """
    rows, n = x.shape
    zero = np.zeros(1, x.dtype)[0]
    for r in range(rows):
        xr = x[r]
        yr = y[r]
        s = 0.0
        for b in range(0, n, _BLOCK):
            xb = xr[b:b + _BLOCK]
            sb = zero
            for i in range(xb.shape[0]):
                sb += xb[i]
            s += sb
        mean[r] = s / n
        mu = mean[r]
        q = 0.0
        for b in range(0, n, _BLOCK):
            xb = xr[b:b + _BLOCK]
            qb = zero
            for i in range(xb.shape[0]):
                d = xb[i] - mu
                qb += d * d
            q += qb
        # np.divide: 1 / 0 (a constant row with epsilon 0) is inf, and 0 * inf then NaN, as in
        # NumPy; the "/" operator would raise ZeroDivisionError
        inv_std_dev[r] = np.divide(1.0, np.sqrt(q / n + epsilon))
        isd = inv_std_dev[r]
        if has_bias:
            for i in range(n):
                yr[i] = (xr[i] - mu) * isd * scale[i] + bias[i]
        else:
            for i in range(n):
                yr[i] = (xr[i] - mu) * isd * scale[i]


# Softmax: y = exp(z - max) / sum(exp(z - max)) per row, of z = x * scale (+ bias): Softmax
# itself passes scale 1 (x * 1 is x, exactly) and no bias; attention passes its scale and its
# attention bias, so that its scores take no extra passes (z may then be one fused multiply-add,
# within an ulp of the separate product and sum). A NaN anywhere in a row, a +inf, or a row of
# -inf (max -inf: -inf - -inf is NaN) makes the row NaN, as in NumPy; with ``dead_rows_zero``
# (Attention's masking) a row of only -inf becomes zeros instead. ``bias`` is an (m, n) matrix
# when ``has_bias`` (any array of the type otherwise): row r takes bias row r % m (m = rows, or
# one head's rows when x stacks several heads that share one bias). exp is
# evaluated in the loop, as in erf_loops (libm's exp is a scalar call): 2^k * exp(r) with
# k = round(q / ln 2), r = q - k ln 2 in two parts, the Taylor series of exp(r), and 2^k built
# from exponent bits in two factors so that subnormal results round once. q is clamped where exp
# rounds to 0; k comes from a copy of q that is clamped NaN included, r from one that keeps a NaN
# (a NaN converted to an integer has no defined value). ``y`` may be ``x`` itself: each pass
# reads an element before it writes it.


@inline
def _row_max(xr: np.ndarray, br: np.ndarray, scale: float, has_bias: int, zero: float) -> float:
    """The largest ``xr * scale (+ br)`` of a row (``zero``: 0 in the row's type)."""
    mx = xr[0] * scale + (br[0] if has_bias else zero)
    if has_bias:
        for i in range(xr.shape[0]):
            mx = max(mx, xr[i] * scale + br[i])
    else:
        for i in range(xr.shape[0]):
            mx = max(mx, xr[i] * scale)
    return mx


@inline
def _dead(xr: np.ndarray, br: np.ndarray, scale: float, has_bias: int, mx: float,
          zero: float) -> bool:
    """Whether a row whose maximum is ``mx`` is fully masked: every entry -inf, none NaN."""
    if mx != -np.inf:
        return False
    for i in range(xr.shape[0]):
        if np.isnan(xr[i] * scale + (br[i] if has_bias else zero)):
            return False
    return True


def softmax_f32(x: np.ndarray, y: np.ndarray, dead_rows_zero: int, scale: np.float32,
                bias: np.ndarray, has_bias: int) -> None:
    """Softmax of each row of float32 ``x * scale (+ bias)`` into ``y``."""
    rows, n = x.shape
    lo = np.float32(-104.0)
    for r in range(rows):
        xr = x[r]
        yr = y[r]
        br = bias[r % bias.shape[0] if has_bias else 0]
        mx = _row_max(xr, br, scale, has_bias, np.float32(0.0))
        if dead_rows_zero and _dead(xr, br, scale, has_bias, mx, np.float32(0.0)):
            yr[:] = 0
            continue
        s = 0.0
        for b in range(0, n, _BLOCK):
            xb = xr[b:b + _BLOCK]
            yb = yr[b:b + _BLOCK]
            bb = br[b:b + _BLOCK] if has_bias else br
            sb = np.float32(0.0)
            for i in range(xb.shape[0]):
                q = xb[i] * scale + (bb[i] if has_bias else np.float32(0.0)) - mx
                qk = q if q > lo else lo
                q = lo if q < lo else q
                kf = np.floor(qk * np.float32(1.4426950408889634) + np.float32(0.5))
                t = q - kf * np.float32(0.693145751953125)
                t = t - kf * np.float32(1.4286067653301870e-06)
                e = np.float32(1 / 5040)
                e = e * t + np.float32(1 / 720)
                e = e * t + np.float32(1 / 120)
                e = e * t + np.float32(1 / 24)
                e = e * t + np.float32(1 / 6)
                e = e * t + np.float32(0.5)
                e = e * t + np.float32(1.0)
                e = e * t + np.float32(1.0)
                k1 = np.int32(kf) >> 1
                k2 = np.int32(kf) - k1
                e = e * np.int32((k1 + 127) << 23).view(np.float32)
                e = e * np.int32((k2 + 127) << 23).view(np.float32)
                yb[i] = e
                sb += e
            s += sb
        # the sum is >= 1 (the maximum contributes exp(0)) or NaN; multiplying by its
        # reciprocal vectorizes where numba's division by a scalar does not
        inv = np.float32(np.divide(1.0, s))
        for i in range(n):
            yr[i] = yr[i] * inv


def softmax_f64(x: np.ndarray, y: np.ndarray, dead_rows_zero: int, scale: float,
                bias: np.ndarray, has_bias: int) -> None:
    """Softmax of each row of float64 ``x * scale (+ bias)`` into ``y``."""
    rows, n = x.shape
    lo = -746.0
    for r in range(rows):
        xr = x[r]
        yr = y[r]
        br = bias[r % bias.shape[0] if has_bias else 0]
        mx = _row_max(xr, br, scale, has_bias, 0.0)
        if dead_rows_zero and _dead(xr, br, scale, has_bias, mx, 0.0):
            yr[:] = 0
            continue
        s = 0.0
        for i in range(n):
            q = xr[i] * scale + (br[i] if has_bias else 0.0) - mx
            qk = q if q > lo else lo
            q = lo if q < lo else q
            kf = np.floor(qk * 1.4426950408889634 + 0.5)
            t = q - kf * 6.93147180369123816490e-01
            t = t - kf * 1.90821492927058770002e-10
            e = 1 / 6227020800
            e = e * t + 1 / 479001600
            e = e * t + 1 / 39916800
            e = e * t + 1 / 3628800
            e = e * t + 1 / 362880
            e = e * t + 1 / 40320
            e = e * t + 1 / 5040
            e = e * t + 1 / 720
            e = e * t + 1 / 120
            e = e * t + 1 / 24
            e = e * t + 1 / 6
            e = e * t + 0.5
            e = e * t + 1.0
            e = e * t + 1.0
            # via int32: AVX2 converts float64 vectors to int32 vectors, not to int64 ones
            k1 = np.int32(kf) >> 1
            k2 = np.int32(kf) - k1
            e = e * np.int64(np.int64(k1 + 1023) << 52).view(np.float64)
            e = e * np.int64(np.int64(k2 + 1023) << 52).view(np.float64)
            yr[i] = e
            s += e
        inv = np.divide(1.0, s)
        for i in range(n):
            yr[i] = yr[i] * inv

