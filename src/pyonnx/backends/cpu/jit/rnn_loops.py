"""Compiled loops for the recurrent kernels (see :mod:`pyonnx.backends.cpu.jit`).

Plain functions in numba's nopython subset; :mod:`pyonnx.backends.cpu.rnn` calls them from its
step loop and keeps its NumPy path as the reference.
"""

from __future__ import annotations

import numpy as np


def lstm_cell(state: np.ndarray) -> None:
    """One LSTM step's cell update, in place, after the step's gates went through tanh.

    ``state`` is [N, 5, H] (N = directions x batch): rows 0-2 hold ``tanh(0.5 a)`` of the i, o, f
    gates' pre-activations ``a``, row 3 ``tanh`` of the cell gate's (g), row 4 the cell state c.
    The sigmoids are completed as in the reference (``0.5 * t + 0.5``: the halving is exact, so a
    fused multiply-add rounds alike), then ``c = f * c + i * g`` goes to row 4 and the sigmoid
    of o to row 1 (the caller forms ``h = o * tanh(c)`` with NumPy's tanh, which is vectorized;
    a scalar tanh in a compiled loop costs ~25 ns an element, 30x NumPy's). Rows 0 and 2 are
    left as they were.
    """
    n, _, hid = state.shape
    for b in range(n):
        for j in range(hid):
            i = 0.5 * state[b, 0, j] + 0.5
            f = 0.5 * state[b, 2, j] + 0.5
            state[b, 4, j] = f * state[b, 4, j] + i * state[b, 3, j]
            state[b, 1, j] = 0.5 * state[b, 1, j] + 0.5


# --- whole sequences --------------------------------------------------------------------------

def _tanh(x: np.float32) -> np.float32:
    """tanh of a float32, evaluated in float64 and rounded once: correctly rounded on every
    argument tested (NumPy's float32 tanh is within 1.4 ulp), so the two agree within 1 ulp.

    Arithmetic and selects only, so LLVM vectorizes the loops that call it (libm's tanh is a
    scalar call, ~25 ns an element): for |x| >= 0.01, 1 - 2 / (e + 1) with e = exp(2|x|) =
    2^k exp(r), r = 2|x| - k ln 2 in [-ln 2 / 2, ln 2 / 2] and exp(r) by its Taylor series to
    degree 9 (truncation below 1e-11 relative); |x| is clamped to 10 (tanh rounds to 1 in
    float32 from 9.01 on). Below 0.01 the odd series x (1 - x^2/3 + 2x^4/15 - 17x^6/315), whose
    truncation is below 1e-13 relative (the other form cancels there). Signed zeros and NaN are
    kept (the clamps' comparisons are false for NaN, which then runs through the arithmetic).
    """
    v = np.float64(x)
    a = abs(v)
    a = 10.0 if a > 10.0 else a
    q = a + a
    # k = round(q / ln 2), from a copy of q with NaN replaced (a float-to-int conversion of NaN
    # is undefined)
    qk = q if q <= 20.0 else 20.0
    k = np.int64(qk * 1.4426950408889634 + 0.5)
    r = q - np.float64(k) * 0.6931471805599453
    e = 1.0 / 362880
    e = e * r + 1.0 / 40320
    e = e * r + 1.0 / 5040
    e = e * r + 1.0 / 720
    e = e * r + 1.0 / 120
    e = e * r + 1.0 / 24
    e = e * r + 1.0 / 6
    e = e * r + 0.5
    e = e * r + 1.0
    e = e * r + 1.0
    e = e * np.int64((k + 1023) << 52).view(np.float64)  # 2^k from its exponent bits
    big = 1.0 - np.divide(2.0, e + 1.0)
    big = big if v >= 0.0 else -big
    s = v * v
    small = v * (1.0 + s * (-1.0 / 3 + s * (2.0 / 15 + s * (-17.0 / 315))))
    return np.float32(small if a < 0.01 else big)


def tanh_f32(x: np.ndarray, y: np.ndarray) -> None:
    """y = tanh(x) as the sequence loops compute it (1-D float32 arrays; for tests)."""
    for j in range(x.shape[0]):
        y[j] = _tanh(x[j])


def lstm_seq(xw: np.ndarray, bias: np.ndarray, reverse: np.ndarray, R: np.ndarray,
             h: np.ndarray, c: np.ndarray, ys: np.ndarray, write_y: int) -> None:
    """A whole LSTM layer's time loop (default activations, no peepholes, full lengths), float32.

    ``xw`` [T, B, D, 4H] is the input projection X W^T in time order, ``bias`` [D, 4H] the
    biases Wb + Rb (zeros without B), ``reverse`` [D] 1 for a direction that runs backwards;
    ``R`` [D, 4H, H] the recurrent weights (gates i, o, f, c); ``h`` and ``c`` [D, B, H] the
    initial states, replaced by the final ones; with ``write_y`` each step's h goes to ``ys``
    ([T, D, B, H]) in step order (a reverse direction's first step, time T-1, at 0). Per step
    and direction the recurrent product is a dot product of each row of R with h (a row read
    once for every batch entry), summed in vector lanes (another order than BLAS's); the rest
    is the reference's arithmetic: a = (xw + bias) + h R^T; i, o, f = 0.5 * tanh(0.5 a) + 0.5;
    g = tanh(a); c = f * c + i * g (may be one fused multiply-add); h = o * tanh(c), with
    :func:`_tanh`.
    """
    T, Bn, D, G = xw.shape
    H = G // 4
    half = np.float32(0.5)
    a = np.empty((Bn, G), np.float32)
    # the sigmoid's inner halving per gate (exact: x * 1 is x)
    scale = np.full(G, half, np.float32)
    scale[3 * H:] = np.float32(1.0)
    for t in range(T):
        for d in range(D):
            tx = T - 1 - t if reverse[d] else t
            for j in range(G):
                for b in range(Bn):
                    acc = np.float32(0.0)
                    for k in range(H):
                        acc += R[d, j, k] * h[d, b, k]
                    a[b, j] = (xw[tx, b, d, j] + bias[d, j]) + acc
            for b in range(Bn):
                for j in range(G):
                    a[b, j] = _tanh(a[b, j] * scale[j])
                for j in range(H):
                    i = half * a[b, j] + half
                    f = half * a[b, 2 * H + j] + half
                    o = half * a[b, H + j] + half
                    cj = f * c[d, b, j] + i * a[b, 3 * H + j]
                    c[d, b, j] = cj
                    hj = o * _tanh(cj)
                    h[d, b, j] = hj
                    if write_y:
                        ys[t, d, b, j] = hj


def gru_seq(xw: np.ndarray, bias: np.ndarray, reverse: np.ndarray, R: np.ndarray,
            rbh: np.ndarray, has_rbh: int, lbr: int, h: np.ndarray, ys: np.ndarray,
            write_y: int) -> None:
    """A whole GRU layer's time loop (default activations, full lengths), float32.

    ``xw`` [T, B, D, 3H] is the input projection X W^T in time order, ``bias`` [D, 3H] the
    biases that ``ops.rnn.gru_biases`` folds into it (zeros without B), ``reverse`` [D] 1 for
    a direction that runs backwards; ``R`` [D, 3H, H] (gates z, r, h); ``rbh`` [D, H] the h
    gate's recurrent bias kept apart when ``lbr`` (linear_before_reset), used when
    ``has_rbh``; ``h`` [D, B, H] the initial state, replaced by the final one; with ``write_y``
    each step's h goes to ``ys`` in step order (as in :func:`lstm_seq`). The recurrent products
    are dot products summed in vector lanes (another order than BLAS's); the rest is the
    reference's arithmetic, with x = xw + bias: z, r = 0.5 * tanh(0.5 (x + h R^T)) + 0.5;
    hh = tanh(x_h + r * (h Rh^T + Rbh)) with ``lbr``, tanh(x_h + (r * h) Rh^T) without;
    h = hh + z * (h - hh), with :func:`_tanh`.
    """
    T, Bn, D, G = xw.shape
    H = G // 3
    half = np.float32(0.5)
    a = np.empty((Bn, G), np.float32)
    rh = np.empty((Bn, H), np.float32)
    x = np.empty((Bn, G), np.float32)
    for t in range(T):
        for d in range(D):
            tx = T - 1 - t if reverse[d] else t
            for b in range(Bn):
                for j in range(G):
                    x[b, j] = xw[tx, b, d, j] + bias[d, j]
            # z and r (and with lbr the h gate's product, which needs no r)
            rows = G if lbr else 2 * H
            for j in range(rows):
                for b in range(Bn):
                    acc = np.float32(0.0)
                    for k in range(H):
                        acc += R[d, j, k] * h[d, b, k]
                    a[b, j] = acc
            for b in range(Bn):
                for j in range(2 * H):
                    a[b, j] = half * _tanh(half * (x[b, j] + a[b, j])) + half
            if lbr:
                for b in range(Bn):
                    for j in range(H):
                        lin = a[b, 2 * H + j]
                        if has_rbh:
                            lin = lin + rbh[d, j]
                        a[b, 2 * H + j] = x[b, 2 * H + j] + a[b, H + j] * lin
            else:
                for b in range(Bn):
                    for j in range(H):
                        rh[b, j] = a[b, H + j] * h[d, b, j]
                for j in range(2 * H, G):
                    for b in range(Bn):
                        acc = np.float32(0.0)
                        for k in range(H):
                            acc += R[d, j, k] * rh[b, k]
                        a[b, j] = x[b, j] + acc
            for b in range(Bn):
                for j in range(H):
                    hh = _tanh(a[b, 2 * H + j])
                    hj = hh + a[b, j] * (h[d, b, j] - hh)
                    h[d, b, j] = hj
                    if write_y:
                        ys[t, d, b, j] = hj


try:
    import numba as _numba
except Exception:  # noqa: BLE001 - not installed (or broken): the loops are then never compiled
    _numba = None
if _numba is not None:
    # numba compiles only the loop it is asked for (jit.call); a function the loops call must
    # be compiled itself, here inlined into them
    _tanh = _numba.njit(inline="always", cache=True, error_model="numpy",
                        fastmath={"contract", "reassoc"})(_tanh)
