"""Compiled loops for the recurrent kernels (see :mod:`pyonnx.backends.cpu.jit`).

Plain functions in numba's nopython subset; :mod:`pyonnx.backends.cpu.rnn` calls them from its
step loop and keeps its NumPy path as the reference.
"""

from __future__ import annotations

import numpy as np

from pyonnx.backends.cpu.jit import inline
from pyonnx.backends.cpu.jit.rows_loops import row_dots
from pyonnx.backends.cpu.jit.sync_loops import announce, fetch_add, load_acquire, watch
from pyonnx.backends.cpu.threads import WORKER


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

@inline
def _tanh(x: np.float32) -> np.float32:
    """tanh of a float32 in float32 arithmetic, within 1.5 ulp of the exact value (measured
    1.46 at most over [-12, 12] and every magnitude from the subnormals up, 98% correctly
    rounded; NumPy's own float32 tanh is within 1.4 ulp, and its result depends on the SIMD
    level it dispatches to).

    Arithmetic and selects only, so LLVM vectorizes the loops that call it (libm's tanhf is a
    scalar call, ~25 ns an element). For |x| >= 0.55: 1 - 2 / (e + 1) with e = exp(2|x|) =
    2^k exp(r), r = 2|x| - k ln 2 in [-ln 2 / 2, ln 2 / 2] (ln 2 in two parts, the upper one
    with trailing zero bits so that k times it is exact) and exp(r) by its Taylor series to
    degree 7 (as ``erf_loops``); |x| is clamped to 10 (tanh rounds to 1 in float32 from 9.01
    on). Below 0.55 the odd Taylor series to degree 15 (truncation below 2e-8 relative), and x
    itself below 1e-4 (within 3.4e-9 relative: keeps signed zeros and subnormals). NaN is kept
    (the clamps' comparisons are false for NaN, which then runs through the arithmetic).
    """
    f32 = np.float32
    a = abs(x)
    a = f32(10.0) if a > f32(10.0) else a
    q = a + a
    # k = round(q / ln 2), from a copy of q with NaN replaced (a float-to-int conversion of NaN
    # is undefined)
    qk = q if q <= f32(20.0) else f32(20.0)
    k = np.int32(qk * f32(1.4426950408889634) + f32(0.5))
    kf = f32(k)
    r = q - kf * f32(0.693145751953125)
    r = r - kf * f32(1.4286067653301870e-06)
    e = f32(1 / 5040)
    e = e * r + f32(1 / 720)
    e = e * r + f32(1 / 120)
    e = e * r + f32(1 / 24)
    e = e * r + f32(1 / 6)
    e = e * r + f32(0.5)
    e = e * r + f32(1.0)
    e = e * r + f32(1.0)
    e = e * np.int32((k + 127) << 23).view(np.float32)  # 2^k from its exponent bits
    big = f32(1.0) - np.divide(f32(2.0), e + f32(1.0))
    big = big if x >= f32(0.0) else -big
    s = x * x
    p = f32(-929569 / 638512875)
    p = p * s + f32(21844 / 6081075)
    p = p * s + f32(-1382 / 155925)
    p = p * s + f32(62 / 2835)
    p = p * s + f32(-17 / 315)
    p = p * s + f32(2 / 15)
    p = p * s + f32(-1 / 3)
    small = x + x * (s * p)
    small = x if a < f32(1e-4) else small
    return small if a < f32(0.55) else big


def tanh_f32(x: np.ndarray, y: np.ndarray) -> None:
    """y = tanh(x) as the sequence loops compute it (1-D float32 arrays; for tests)."""
    for j in range(x.shape[0]):
        y[j] = _tanh(x[j])


def lstm_seq(xw: np.ndarray, bias: np.ndarray, reverse: np.ndarray, R: np.ndarray,
             c: np.ndarray, ys: np.ndarray, write_y: int, hbuf: np.ndarray, width: int,
             counter: np.ndarray, parts: int, sync: np.ndarray, role: int, seen: int) -> None:
    """A whole LSTM layer's time loop (default activations, no peepholes, full lengths),
    float32, on one thread or several at once.

    ``xw`` [T, B, D, 4H] is the input projection X W^T in time order, ``bias`` [D, 4H] the
    biases Wb + Rb (zeros without B), ``reverse`` [D] 1 for a direction that runs backwards;
    ``R`` [D, 4H, H] the recurrent weights (gates i, o, f, c); with ``write_y`` each step's h
    goes to ``ys`` ([T, D, B, H]) in step order (a reverse direction's first step, time T-1, at
    0). Per step and direction the recurrent product is a dot product of each row of R with h
    (a row read once for every batch entry), summed in vector lanes (another order than
    BLAS's); the rest is the reference's arithmetic: a = (xw + bias) + h R^T; i, o, f = 0.5 *
    tanh(0.5 a) + 0.5; g = tanh(a); c = f * c + i * g (may be one fused multiply-add); h = o *
    tanh(c), with :func:`_tanh`.

    Each step is cut into pieces of ``width`` hidden units of one direction (all four gates'
    rows for them, then their cell and hidden values), which the threads running the loop
    claim; no thread starts a step before every piece of the one before has finished (a piece
    reads the whole previous h). A piece's rows of R stay in the cache of the core that
    computes it: the caller claims the pieces of a step from the first, a pool thread from the
    last, so that with two threads each keeps its own. The pieces do not change the values.

    h is double-buffered: ``hbuf`` [2, D, B, H] holds the initial state in ``hbuf[0]``; step t
    reads ``hbuf[t % 2]`` and writes ``hbuf[(t + 1) % 2]`` (the final state is ``hbuf[T % 2]``).
    ``c`` [D, B, H] is replaced by the final cell state. ``counter`` (int64, zeros on entry):
    [0] pieces claimed, [1] pieces finished, then one claim flag per piece of each step;
    ``parts`` is T times the pieces of a step (see
    :func:`pyonnx.backends.cpu.threads.shared_loop`; ``sync``, ``role`` and ``seen``: the
    hand-off of :mod:`~pyonnx.backends.cpu.jit.sync_loops`). A thread that comes late finds
    the pieces of the steps before claimed and catches up; one alone computes every piece."""
    T, Bn, D, G = xw.shape
    H = G // 4
    per = (H + width - 1) // width
    P = D * per
    a = np.empty((Bn, 4 * width), np.float32)
    announce(sync, role)
    for t in range(T):
        for q in range(P):
            p = _claim(counter, t, P, q, role)
            if p < 0:
                continue
            d = p // per
            j0 = p % per * width
            _lstm_piece(xw, bias, reverse, R, hbuf[t % 2], hbuf[(t + 1) % 2], c, ys, write_y,
                        a, t, d, j0, min(H, j0 + width))
            fetch_add(counter, 1, 1)
        _wait_for_step(counter, t, P)
    watch(sync, role, seen)


@inline
def _claim(counter: np.ndarray, t: int, pieces: int, q: int, role: int) -> int:
    """The piece of step ``t`` that a thread's ``q``-th try claims (the caller tries them from
    the first, a pool thread from the last), or -1 where another thread has it; see
    :func:`lstm_seq` for ``counter``."""
    p = pieces - 1 - q if role == WORKER else q
    if fetch_add(counter, 2 + t * pieces + p, 1) != 0:
        return -1
    fetch_add(counter, 0, 1)
    return p


@inline
def _wait_for_step(counter: np.ndarray, t: int, pieces: int) -> None:
    """Return once every piece of the steps up to ``t`` has finished."""
    done = (t + 1) * pieces
    while load_acquire(counter, 1) < done:
        pass


@inline
def _lstm_piece(xw: np.ndarray, bias: np.ndarray, reverse: np.ndarray, R: np.ndarray,
                hin: np.ndarray, hout: np.ndarray, c: np.ndarray, ys: np.ndarray, write_y: int,
                a: np.ndarray, t: int, d: int, j0: int, j1: int) -> None:
    """Step ``t`` of direction ``d`` for hidden units ``[j0, j1)`` of :func:`lstm_seq`, reading h
    from ``hin`` and writing it to ``hout``."""
    T, Bn, D, G = xw.shape
    H = G // 4
    w = j1 - j0
    half = np.float32(0.5)
    tx = T - 1 - t if reverse[d] else t
    for g in range(4):
        row_dots(R[d], g * H + j0, g * H + j1, hin[d], a, g * w)
        for jj in range(w):
            j = g * H + j0 + jj
            for b in range(Bn):
                a[b, g * w + jj] = (xw[tx, b, d, j] + bias[d, j]) + a[b, g * w + jj]
    for b in range(Bn):
        for jj in range(3 * w):
            a[b, jj] = _tanh(a[b, jj] * half)
        for jj in range(3 * w, 4 * w):
            a[b, jj] = _tanh(a[b, jj] * np.float32(1.0))
        for jj in range(w):
            j = j0 + jj
            i = half * a[b, jj] + half
            o = half * a[b, w + jj] + half
            f = half * a[b, 2 * w + jj] + half
            cj = f * c[d, b, j] + i * a[b, 3 * w + jj]
            c[d, b, j] = cj
            hj = o * _tanh(cj)
            hout[d, b, j] = hj
            if write_y:
                ys[t, d, b, j] = hj


def gru_seq(xw: np.ndarray, bias: np.ndarray, reverse: np.ndarray, R: np.ndarray,
            rbh: np.ndarray, has_rbh: int, lbr: int, ys: np.ndarray, write_y: int,
            hbuf: np.ndarray, width: int, counter: np.ndarray, parts: int, sync: np.ndarray,
            role: int, seen: int) -> None:
    """A whole GRU layer's time loop (default activations, full lengths), float32, on one
    thread or several at once.

    ``xw`` [T, B, D, 3H] is the input projection X W^T in time order, ``bias`` [D, 3H] the
    biases that ``ops.rnn.gru_biases`` folds into it (zeros without B), ``reverse`` [D] 1 for
    a direction that runs backwards; ``R`` [D, 3H, H] (gates z, r, h); ``rbh`` [D, H] the h
    gate's recurrent bias kept apart when ``lbr`` (linear_before_reset), used when
    ``has_rbh``; with ``write_y`` each step's h goes to ``ys`` in step order (as in
    :func:`lstm_seq`). The recurrent products are dot products summed in vector lanes (another
    order than BLAS's); the rest is the reference's arithmetic, with x = xw + bias: z, r = 0.5
    * tanh(0.5 (x + h R^T)) + 0.5; hh = tanh(x_h + r * (h Rh^T + Rbh)) with ``lbr``, tanh(x_h
    + (r * h) Rh^T) without; h = hh + z * (h - hh), with :func:`_tanh`.

    Steps, pieces, ``hbuf``, ``counter`` and the threads as in :func:`lstm_seq` (a piece: the
    three gates' rows of ``width`` hidden units of one direction). Without ``lbr`` the h gate's
    product needs r for every hidden unit, so a piece is a whole direction (``width`` = H)."""
    T, Bn, D, G = xw.shape
    H = G // 3
    per = (H + width - 1) // width
    P = D * per
    a = np.empty((Bn, 3 * width), np.float32)
    x = np.empty((Bn, 3 * width), np.float32)
    rh = np.empty((Bn, H), np.float32)
    announce(sync, role)
    for t in range(T):
        for q in range(P):
            p = _claim(counter, t, P, q, role)
            if p < 0:
                continue
            d = p // per
            j0 = p % per * width
            _gru_piece(xw, bias, reverse, R, rbh, has_rbh, lbr, hbuf[t % 2],
                       hbuf[(t + 1) % 2], ys, write_y, a, x, rh, t, d, j0, min(H, j0 + width))
            fetch_add(counter, 1, 1)
        _wait_for_step(counter, t, P)
    watch(sync, role, seen)


@inline
def _gru_piece(xw: np.ndarray, bias: np.ndarray, reverse: np.ndarray, R: np.ndarray,
               rbh: np.ndarray, has_rbh: int, lbr: int, hin: np.ndarray, hout: np.ndarray,
               ys: np.ndarray, write_y: int, a: np.ndarray, x: np.ndarray, rh: np.ndarray,
               t: int, d: int, j0: int, j1: int) -> None:
    """Step ``t`` of direction ``d`` for hidden units ``[j0, j1)`` of :func:`gru_seq` (all of
    them without ``lbr``), reading h from ``hin`` and writing it to ``hout``."""
    T, Bn, D, G = xw.shape
    H = G // 3
    w = j1 - j0
    half = np.float32(0.5)
    tx = T - 1 - t if reverse[d] else t
    for b in range(Bn):
        for g in range(3):
            for jj in range(w):
                j = g * H + j0 + jj
                x[b, g * w + jj] = xw[tx, b, d, j] + bias[d, j]
    # z and r (and with lbr the h gate's product, which needs no r)
    for g in range(3 if lbr else 2):
        row_dots(R[d], g * H + j0, g * H + j1, hin[d], a, g * w)
    for b in range(Bn):
        for jj in range(2 * w):
            a[b, jj] = half * _tanh(half * (x[b, jj] + a[b, jj])) + half
    if lbr:
        for b in range(Bn):
            for jj in range(w):
                lin = a[b, 2 * w + jj]
                if has_rbh:
                    lin = lin + rbh[d, j0 + jj]
                a[b, 2 * w + jj] = x[b, 2 * w + jj] + a[b, w + jj] * lin
    else:  # one piece per direction: r is known for every hidden unit
        for b in range(Bn):
            for k in range(H):
                rh[b, k] = a[b, w + k] * hin[d, b, k]
        row_dots(R[d], 2 * H, 2 * H + w, rh, a, 2 * w)
        for b in range(Bn):
            for jj in range(w):
                a[b, 2 * w + jj] = x[b, 2 * w + jj] + a[b, 2 * w + jj]
    for b in range(Bn):
        for jj in range(w):
            j = j0 + jj
            hh = _tanh(a[b, 2 * w + jj])
            hj = hh + a[b, jj] * (hin[d, b, j] - hh)
            hout[d, b, j] = hj
            if write_y:
                ys[t, d, b, j] = hj


