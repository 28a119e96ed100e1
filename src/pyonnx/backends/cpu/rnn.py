"""RNN, GRU and LSTM on the CPU provider: the reference's arithmetic in a lean step loop.

The reference kernels (:mod:`pyonnx.ops.rnn`) already project the input for all time steps with
one matmul; their step loop is written for every option (activation lists, clip, masks per
sequence length) and allocates a dozen temporaries per step, and its recurrent product is a
batched ``matmul`` over the direction axis of a transposed view, which NumPy runs 2x slower than
a plain 2-D product. At batch 1 and hidden size 256 a step is ~15 µs of BLAS and ~60 µs of
NumPy call overhead.

The variants here take the configuration that converters emit (default activations, no clip,
no per-batch sequence lengths shorter than the sequence, no peepholes, no coupled gates) and run
each step as 2-D ``np.dot`` products into preallocated buffers and in-place element-wise
operations, each output written straight into ``Y`` (with one direction and batch 1, on 1-D
views of the buffers: NumPy's ufuncs take 1-D contiguous operands on their fastest path).
Every element-wise operation is the reference's, in the same order and dtype (the in-place
forms compute the same IEEE results), so the outputs equal the reference's except for the
recurrent product, where a 2-D product may sum in another order than the batched one (float
rounding). Any other configuration runs the reference kernel itself.

The LSTM step also folds the sigmoid's inner halving into its weights, takes one tanh over all
four gates and one product for ``i * g`` and ``f * c`` (gates and cell state side by side).

With the fast extra, float32 GRU and LSTM layers (and float16 ones, computed in float32) run
their whole time loop in one compiled function (``jit/rnn_loops.gru_seq``, ``lstm_seq``): no
NumPy call per step. Its recurrent product sums each dot product in vector lanes (another
order than BLAS's), its tanh is its own (within 1.5 ulp of the exact value, as NumPy's float32
tanh is within 1.4; the two differ by at most 3 ulp) and ``f * c + i * g`` may be one fused
multiply-add;
every other operation is the reference's, in its order. The outputs equal the reference's
within float32 rounding carried through the steps (tested at 1e-5). Float64 LSTM layers keep
the step loop with a compiled cell update (``jit/rnn_loops.lstm_cell``). The loops take the
input projection as one product of all directions, split over the intra-op threads.

CPU time per layer at the benchmark taggers' size (hidden 256, sequence 128, batch 1, one
thread; lower quartile of 5 interleaved runs on the 2-core dev VM at load average 5-6, where
the recurrent product, 1 MB of weights read from the shared L3 cache per LSTM step, is slowed
by the other processes): LSTM 5.4 ms with the step loop and compiled cell update, 4.2 with the
sequence loop (of which the recurrent product ~2.9, tanh ~0.3); GRU 4.9 -> 3.2. Without the
fast extra, GRU 5.1 -> 4.8 (folded halving, no transposed copy of R), LSTM ~6.3. Measured
again in session 7 (lower quartile of 40 runs, load average ~3, one thread): the sequence
loops 4.0-4.4 ms CPU per LSTM layer and 2.4-3.0 per GRU layer (linear_before_reset); the
NumPy step loops 8.4 and 8.3 ms, of which their 128 recurrent products (``np.dot``) 4.0 and
3.5; the 1-D views took the LSTM's to ~7.7-8.2 (lower quartiles of 3 interleaved runs each,
9.05 -> 8.23 median of them, outputs unchanged to the bit), the GRU's unchanged within the
noise.

The compiled sequence loops share their steps with the intra-op pool (session 11,
``rnn_loops.lstm_seq``, ``gru_seq``): each step's hidden units are cut into pieces (one per
direction and thread; a whole direction for a GRU without linear_before_reset, whose h gate
needs all of r), claimed by the caller from the first and by a pool thread from the last, so
that each core keeps its rows of R in its cache; no thread starts a step before the last
one's pieces have all finished. lstm2_tagger at default threads: 6.85 ms against 10.1 on one thread
(onnxruntime 4.5). A thread that starts late catches up, and one alone computes every piece,
but a piece claimed by a thread that the OS then deschedules holds the step until it resumes:
session 7 measured an OpenMP ``prange`` per step (fixed halves, threads spinning at the
barrier) 6-9x slower than the serial loop at load average ~3.5, and only ~5% faster at load
1.3 (31.8 -> 30.2 µs a step at H=256; each half of R, 512 KB, fills a core's L2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pyonnx.backends.cpu import gemm, jit, threads
from pyonnx.backends.cpu.registry import fast_kernel
from pyonnx.ops import rnn as ref
from pyonnx.ops.registry import KernelContext

__all__: list[str] = []


_F32 = np.dtype(np.float32)
_JIT_DTYPES = (_F32, np.dtype(np.float64))


def _sigmoid_halved_(x: np.ndarray) -> None:
    """The reference's sigmoid (0.5 * tanh(0.5 a) + 0.5), in place, of x = 0.5 a."""
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5


def _default_only(activations: Sequence[str] | None, defaults: Sequence[str], directions: int,
                  clip: float | None) -> bool:
    """Whether the layer runs the default activations without clipping (alpha/beta are not
    consumed by Sigmoid and Tanh, so they do not matter)."""
    if clip is not None:
        return False
    if not activations:
        return True
    names = [a.lower() for a in activations]
    want = [d.lower() for d in defaults]
    return names == want * directions or (directions == 2 and names == want)


def _lean(s: ref._Setup) -> bool:
    """Whether the set-up layer has no per-batch sequence lengths (the masks of the reference)."""
    return s.lens is None


def _recurrent(s: ref._Setup) -> list[np.ndarray]:
    """Per direction, R^T as a C-contiguous [H, gates*H] matrix (one copy per run)."""
    return [np.ascontiguousarray(s.R[d].T) for d in range(s.D)]


def _outputs(s: ref._Setup) -> np.ndarray:
    """The step-ordered output buffer [T, D, B, H] (or [1, D, B, H] when Y is not wanted: the
    state is then kept in its only slot)."""
    steps = s.T if s.outputs_used[0] else 1
    return np.zeros((steps, s.D, s.B, s.H), s.cdt)


def _flat(s: ref._Setup) -> bool:
    """Whether a NumPy step loop may view its per-step operands as 1-D (one direction, batch
    1: the [D, B, ...] axes are 1): NumPy's ufuncs run a 1-D contiguous operand on their
    fastest path (measured: tanh of 1024 float32 3.8 µs as 1-D, 6.6 as [1, 1, 1024])."""
    return s.D * s.B == 1


def _dot_each(flat: bool, h: np.ndarray, RT: np.ndarray, out: np.ndarray) -> None:
    """``out[d] = h[d] @ RT[d]`` for each direction d, as 2-D products; ``flat`` (see
    :func:`_flat`): the operands are the one direction's own (1-D ``h`` and ``out``)."""
    if flat:
        np.dot(h, RT, out=out)
    else:
        for d in range(len(RT)):
            np.dot(h[d], RT[d], out=out[d])


def _work(s: ref._Setup) -> int:
    """The size of a layer's work for jit.MIN_ELEMENTS: its hidden states over the sequence."""
    return s.T * s.D * s.B * s.H


def _sequence_loop(s: ref._Setup) -> bool:
    """Whether the layer may run a compiled sequence loop (float32 computation, and jit.call's
    conditions, checked before its inputs are computed; jit.call still falls back where the
    loop fails to compile)."""
    return s.cdt == _F32 and _work(s) >= jit.MIN_ELEMENTS and jit.available()


def _projection(s: ref._Setup) -> np.ndarray:
    """X W^T for every direction, [T, B, D, G] in time order, as one product split over the
    intra-op threads (:func:`gemm.matmul2d`; the reference computes the same products, per
    direction)."""
    G = s.W.shape[1]
    xw = gemm.matmul2d(s.X.reshape(s.T * s.B, s.I), s.W.reshape(s.D * G, s.I).T)
    return xw.reshape(s.T, s.B, s.D, G)


def _zeros_if_none(s: ref._Setup, bias: np.ndarray | None) -> np.ndarray:
    """The folded biases [D, G] for a sequence loop (zeros without B)."""
    if bias is None:
        return np.zeros((s.D, s.W.shape[1]), s.cdt)
    return np.ascontiguousarray(bias)


def _reversed(s: ref._Setup) -> np.ndarray:
    """[D] 1 where the direction runs backwards, for a sequence loop."""
    return np.array([int(r) for r in s.reverse], np.int64)


#: Sequence loops share their steps with the intra-op threads from this many recurrent
#: multiply-adds per step (a step's pieces end in a wait for the slowest; about 8 µs of one
#: core). lstm2_tagger (hidden 256: 262K per step), default threads, one process per run, six
#: interleaved rounds: 6.85 ms against 10.1 with the steps on one thread (onnxruntime 4.5).
MIN_SHARED_STEP_MACS = 1 << 16


def _sequence(s: ref._Setup, name: str, gates: int, args: tuple, h: np.ndarray,
              whole: bool = False) -> bool:
    """The sequence loop ``name`` (``rnn_loops.lstm_seq`` or ``gru_seq``, ``gates`` rows of R
    per hidden unit) on ``args`` (the loop's arguments before its state buffer): with several
    intra-op threads and ``MIN_SHARED_STEP_MACS`` per step, shared with the pool's idle ones,
    each direction's hidden units in ``share() // D`` pieces (one per direction on two threads
    and two directions; a whole direction per piece with ``whole``); else on this thread, one
    piece per direction. ``h`` becomes the final state. False where the loop did not run."""
    shared = threads.share() >= 2 \
        and gates * s.H * s.H * s.B * s.D >= MIN_SHARED_STEP_MACS
    per = max(1, threads.share() // s.D) if shared and not whole else 1
    parts = s.T * s.D * per
    hbuf = np.empty((2,) + h.shape, np.float32)
    hbuf[0] = h
    # alone also where a step is one piece (GRU without linear_before_reset, one direction):
    # a pool thread would only wait
    ok = threads.shared_loop(
        name, args + (hbuf, -(-s.H // per), np.zeros(2 + parts, np.int64), parts), parts,
        elements=_work(s), alone=not shared or parts < 2 * s.T)
    if ok:
        h[...] = hbuf[s.T % 2]
    return ok


def _rnn_fast(X, W, R, B, sequence_lens, initial_h, *, activations, clip, direction,
              hidden_size, layout, ctx, reference: Callable[[], tuple]) -> tuple:
    s = ref._Setup("RNN", 1, X, W, R, B, sequence_lens, hidden_size, direction, layout, ctx)
    if not (_lean(s) and _default_only(activations, ["Tanh"], s.D, clip)):
        return reference()
    wb, rb = ref._bias_parts(s, 1)
    xw = s.project(None if wb is None else (wb + rb)[:, None, :])
    h = s.state(initial_h, "initial_h")
    RT = _recurrent(s)
    ys = _outputs(s)
    want_y = s.outputs_used[0]
    acc = np.empty((s.D, s.B, s.H), s.cdt)
    flat = _flat(s)
    if flat:
        xw, ys_steps, acc, h, RT = xw[:, 0, 0], ys[:, 0, 0], acc[0, 0], h[0, 0], RT[0]
    else:
        ys_steps = ys
    for t in range(s.T):
        _dot_each(flat, h, RT, acc)
        # the reference's f(xw[t] + h R^T)
        out = ys_steps[t] if want_y else ys_steps[0]
        np.add(xw[t], acc, out=out)
        np.tanh(out, out=out)
        h = out
    # the state is a slot of ys, which finish_y reorders in place: take it first
    h_last = s.finish_state(h.reshape(s.D, s.B, s.H).copy())
    return s.finish_y(ys if want_y else None), h_last


def _gru_fast(X, W, R, B, sequence_lens, initial_h, *, activations, clip, direction,
              hidden_size, linear_before_reset, layout, ctx,
              reference: Callable[[], tuple]) -> tuple:
    s = ref._Setup("GRU", 3, X, W, R, B, sequence_lens, hidden_size, direction, layout, ctx)
    if not (_lean(s) and _default_only(activations, ["Sigmoid", "Tanh"], s.D, clip)):
        return reference()
    H, D = s.H, s.D
    lbr = bool(linear_before_reset)
    h = np.ascontiguousarray(s.state(initial_h, "initial_h"))
    ys = _outputs(s)
    want_y = s.outputs_used[0]
    # the fast extra's float32 layers: the whole time loop compiled (h becomes the final state)
    if _sequence_loop(s):
        bias, rbh = ref.gru_biases(s, lbr)
        rb = np.zeros((D, H), s.cdt) if rbh is None else np.ascontiguousarray(rbh[:, 0])
        if _sequence(s, "rnn_loops.gru_seq", 3,
                     (_projection(s), _zeros_if_none(s, bias), _reversed(s),
                      np.ascontiguousarray(s.R), rb, int(rbh is not None), int(lbr), ys,
                      int(want_y)), h, whole=not lbr):
            return s.finish_y(ys if want_y else None), s.finish_state(h)
    xw, rbh = ref.gru_projection(s, lbr)
    # The sigmoid of z and r is the reference's 0.5 * tanh(0.5 x) + 0.5; its inner halving is
    # folded into xw's and R's z and r rows once (exact, as in the LSTM step below), which
    # saves a call per step. R [3H, H] is scaled in its own layout and used transposed (BLAS
    # reads the transpose in place; a transposed copy per run costs more than it saves).
    np.multiply(xw[..., :2 * H], 0.5, out=xw[..., :2 * H])
    scale = np.ones((3 * H, 1), s.cdt)
    scale[:2 * H] = 0.5
    Rs = [np.multiply(s.R[d], scale) for d in range(D)]
    # np.dot writes only into C-contiguous buffers: with linear_before_reset the product of all
    # three gates lands in hr; without it the z/r product and the hidden one get buffers of
    # their own
    if lbr:
        RT = [m.T for m in Rs]  # [H, 3H] views
        hr = np.empty((D, s.B, 3 * H), s.cdt)
        zr, lin = hr[..., :2 * H], hr[..., 2 * H:]
    else:
        zr = np.empty((D, s.B, 2 * H), s.cdt)
        lin = np.empty((D, s.B, H), s.cdt)
        RT_zr = [m[:2 * H].T for m in Rs]
        RT_h = [m[2 * H:].T for m in Rs]
    rh = np.empty((D, s.B, H), s.cdt)
    hnew = np.empty((2, D, s.B, H), s.cdt) if not want_y else None
    steps = ys if want_y else hnew
    x_zr, x_h = xw[..., :2 * H], xw[..., 2 * H:]
    flat = _flat(s)
    if flat:  # [T, D, B, ...] as [T, ...] and [D, B, ...] as [...] (views)
        x_zr, x_h, steps = x_zr[:, 0, 0], x_h[:, 0, 0], steps[:, 0, 0]
        zr, lin, rh, h = zr[0, 0], lin[0, 0], rh[0, 0], h[0, 0]
        if lbr:
            hr, RT = hr[0, 0], RT[0]
        else:
            RT_zr, RT_h = RT_zr[0], RT_h[0]
        rbh = None if rbh is None else rbh[0, 0]
    z, r = zr[..., :H], zr[..., H:]
    for t in range(s.T):
        if lbr:
            _dot_each(flat, h, RT, hr)
            # zr = f(x_zr + hr_zr) (both halved); hh = g(x_h + r * (hr_h + Rbh))
            np.add(x_zr[t], zr, out=zr)
            _sigmoid_halved_(zr)
            if rbh is not None:
                np.add(lin, rbh, out=lin)
            np.multiply(r, lin, out=lin)
        else:
            _dot_each(flat, h, RT_zr, zr)
            np.add(x_zr[t], zr, out=zr)
            _sigmoid_halved_(zr)
            # hh = g(x_h + (r * h) Rh^T)
            np.multiply(r, h, out=rh)
            _dot_each(flat, rh, RT_h, lin)
        np.add(x_h[t], lin, out=lin)
        hh = lin
        np.tanh(hh, out=hh)
        # the reference's hh + z * (h - hh)
        out = steps[t] if want_y else steps[t & 1]
        np.subtract(h, hh, out=out)
        np.multiply(z, out, out=out)
        np.add(hh, out, out=out)
        h = out
    # the state is a slot of ys, which finish_y reorders in place: take it first
    h_last = s.finish_state(h.reshape(D, s.B, H).copy())
    return s.finish_y(ys if want_y else None), h_last


def _lstm_fast(X, W, R, B, sequence_lens, initial_h, initial_c, P, *, activations, clip,
               direction, hidden_size, input_forget, layout, ctx,
               reference: Callable[[], tuple]) -> tuple:
    s = ref._Setup("LSTM", 4, X, W, R, B, sequence_lens, hidden_size, direction, layout, ctx)
    if not (_lean(s) and P is None and not input_forget
            and _default_only(activations, ["Sigmoid", "Tanh", "Tanh"], s.D, clip)):
        return reference()
    H, D, Bn = s.H, s.D, s.B
    wb, rb = ref._bias_parts(s, 4)
    h = np.ascontiguousarray(s.state(initial_h, "initial_h"))
    c0 = np.ascontiguousarray(s.state(initial_c, "initial_c"))
    ys = _outputs(s)
    want_y = s.outputs_used[0]
    # the fast extra's float32 layers: the whole time loop compiled (h and c0 become the final
    # states)
    if _sequence_loop(s):
        args = (_projection(s), _zeros_if_none(s, None if wb is None else wb + rb),
                _reversed(s), np.ascontiguousarray(s.R))
        if _sequence(s, "rnn_loops.lstm_seq", 4, args + (c0, ys, int(want_y)), h):
            return s.finish_y(ys if want_y else None), s.finish_state(h), s.finish_state(c0)
    xw = s.project(None if wb is None else (wb + rb)[:, None, :])
    # The sigmoid of the i, o, f gates is the reference's 0.5 * tanh(0.5 x) + 0.5. Its inner
    # halving is folded into the projections: xw's and R^T's i, o, f columns are halved once
    # (exact barring subnormals and overflow: a power of two, and the product of halved columns
    # is the halved product, each rounding scaled alike), so one tanh call covers all four
    # gates at every step.
    np.multiply(xw[..., :3 * H], 0.5, out=xw[..., :3 * H])
    scale = np.ones((4 * H, 1), s.cdt)
    scale[:3 * H] = 0.5
    # R [4H, H] scaled in its own layout (a transposed copy costs 6x more) and used transposed:
    # BLAS reads the transpose in place
    RT = [np.multiply(s.R[d], scale).T for d in range(D)]  # [H, 4H] views
    acc = np.empty((D, Bn, 4 * H), s.cdt)  # h R^T (np.dot writes C-contiguous buffers only)
    # gates i, o, f, g (the cell gate) and the cell state c side by side per (direction, batch
    # entry), so that i * g and f * c are one product of two strided views
    state = np.empty((D, Bn, 5, H), s.cdt)
    gates = state[:, :, :4].reshape(D, Bn, 4 * H) if Bn == 1 else state[:, :, :4]
    iof = state[:, :, :3]
    o = state[:, :, 1]
    i_f = state[:, :, 0:3:2]  # i and f
    g_c = state[:, :, 3:5]    # g and c
    cell = state[:, :, 4]
    cell[...] = c0
    prods = np.empty((D, Bn, 2, H), s.cdt)
    hnew = np.empty((2, D, Bn, H), s.cdt) if not want_y else None
    # the fast extra's compiled cell update (jit/rnn_loops.lstm_cell; float64, or float32 where
    # lstm_seq failed to compile) replaces the four NumPy calls between the gates' tanh and the
    # cell state's; its size is the whole sequence's
    state3 = state.reshape(D * Bn, 5, H)
    work = _work(s)
    steps = ys if want_y else hnew
    flat = _flat(s)
    if flat:  # [T, D, B, ...] as [T, ...] and [D, B, ...] as [...] (views)
        xw, steps, acc, h, RT = xw[:, 0, 0], steps[:, 0, 0], acc[0, 0], h[0, 0], RT[0]
        st = state[0, 0]  # [5, H]
        gates, iof, o, i_f, g_c, cell = st[:4].reshape(4 * H), st[:3].reshape(3 * H), st[1], \
            st[0:3:2], st[3:5], st[4]
        prods = prods[0, 0]
    p_i, p_f = prods[..., 0, :], prods[..., 1, :]
    cell_loop = None  # set once the first step's call ran the compiled loop
    for t in range(s.T):
        _dot_each(flat, h, RT, acc)
        # the reference's xw[t] + h R^T (both halved on i, o, f), then f on i, o, f and g on
        # the cell gate: tanh of everything, and 0.5 * t + 0.5 on i, o, f
        if Bn == 1:
            np.add(xw[t], acc, out=gates)
        else:
            np.add(xw[t], acc, out=acc)
            gates[...] = acc.reshape(D, Bn, 4, H)
        np.tanh(gates, out=gates)
        if cell_loop is not None and t:
            cell_loop(state3)
        elif t == 0 and s.cdt in _JIT_DTYPES and jit.call("rnn_loops.lstm_cell", state3,
                                                          elements=work):
            cell_loop = jit.loop("rnn_loops.lstm_cell", elements=work)
        else:
            cell_loop = None
            np.multiply(iof, 0.5, out=iof)
            np.add(iof, 0.5, out=iof)
            # c_new = f * c + i * g (a sum of two products: their order does not matter)
            np.multiply(i_f, g_c, out=prods)
            np.add(p_f, p_i, out=cell)
        # h = o * h(c_new)
        out = steps[t] if want_y else steps[t & 1]
        np.tanh(cell, out=out)
        np.multiply(o, out, out=out)
        h = out
    # the state is a slot of ys, which finish_y reorders in place: take it first
    h_last = s.finish_state(h.reshape(D, Bn, H).copy())
    return (s.finish_y(ys if want_y else None), h_last,
            s.finish_state(cell.reshape(D, Bn, H).copy()))


# --- registrations: the reference signatures, one variant per reference kernel ---------------

@fast_kernel("RNN", versions=(1,))
def rnn_1(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None,
          sequence_lens: np.ndarray | None = None, initial_h: np.ndarray | None = None, *,
          activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
          activations: list[str] | None = None, clip: float | None = None,
          direction: str = "forward", hidden_size: int | None = None, output_sequence: int = 0,
          ctx: KernelContext | None = None) -> tuple:
    """RNN-1 in the lean step loop (see the module docstring)."""
    args = locals().copy()
    return _rnn_fast(X, W, R, B, sequence_lens, initial_h, activations=activations, clip=clip,
                     direction=direction, hidden_size=hidden_size, layout=0, ctx=ctx,
                     reference=lambda: ref.rnn_1(**args))


@fast_kernel("RNN", versions=(7, 14, 22))
def rnn_7(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None,
          sequence_lens: np.ndarray | None = None, initial_h: np.ndarray | None = None, *,
          activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
          activations: list[str] | None = None, clip: float | None = None,
          direction: str = "forward", hidden_size: int | None = None, layout: int = 0,
          ctx: KernelContext | None = None) -> tuple:
    """RNN-7/14/22 in the lean step loop (see the module docstring)."""
    args = locals().copy()
    return _rnn_fast(X, W, R, B, sequence_lens, initial_h, activations=activations, clip=clip,
                     direction=direction, hidden_size=hidden_size, layout=layout, ctx=ctx,
                     reference=lambda: ref.rnn_7(**args))


@fast_kernel("GRU", versions=(1,))
def gru_1(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None,
          sequence_lens: np.ndarray | None = None, initial_h: np.ndarray | None = None, *,
          activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
          activations: list[str] | None = None, clip: float | None = None,
          direction: str = "forward", hidden_size: int | None = None, output_sequence: int = 0,
          ctx: KernelContext | None = None) -> tuple:
    """GRU-1 in the lean step loop (see the module docstring)."""
    args = locals().copy()
    return _gru_fast(X, W, R, B, sequence_lens, initial_h, activations=activations, clip=clip,
                     direction=direction, hidden_size=hidden_size, linear_before_reset=0,
                     layout=0, ctx=ctx, reference=lambda: ref.gru_1(**args))


@fast_kernel("GRU", versions=(3,))
def gru_3(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None,
          sequence_lens: np.ndarray | None = None, initial_h: np.ndarray | None = None, *,
          activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
          activations: list[str] | None = None, clip: float | None = None,
          direction: str = "forward", hidden_size: int | None = None,
          linear_before_reset: int = 0, output_sequence: int = 0,
          ctx: KernelContext | None = None) -> tuple:
    """GRU-3 in the lean step loop (see the module docstring)."""
    args = locals().copy()
    return _gru_fast(X, W, R, B, sequence_lens, initial_h, activations=activations, clip=clip,
                     direction=direction, hidden_size=hidden_size,
                     linear_before_reset=linear_before_reset, layout=0, ctx=ctx,
                     reference=lambda: ref.gru_3(**args))


@fast_kernel("GRU", versions=(7, 14, 22))
def gru_7(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None,
          sequence_lens: np.ndarray | None = None, initial_h: np.ndarray | None = None, *,
          activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
          activations: list[str] | None = None, clip: float | None = None,
          direction: str = "forward", hidden_size: int | None = None,
          linear_before_reset: int = 0, layout: int = 0,
          ctx: KernelContext | None = None) -> tuple:
    """GRU-7/14/22 in the lean step loop (see the module docstring)."""
    args = locals().copy()
    return _gru_fast(X, W, R, B, sequence_lens, initial_h, activations=activations, clip=clip,
                     direction=direction, hidden_size=hidden_size,
                     linear_before_reset=linear_before_reset, layout=layout, ctx=ctx,
                     reference=lambda: ref.gru_7(**args))


@fast_kernel("LSTM", versions=(1,))
def lstm_1(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None,
           sequence_lens: np.ndarray | None = None, initial_h: np.ndarray | None = None,
           initial_c: np.ndarray | None = None, P: np.ndarray | None = None, *,
           activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
           activations: list[str] | None = None, clip: float | None = None,
           direction: str = "forward", hidden_size: int | None = None, input_forget: int = 0,
           output_sequence: int = 0, ctx: KernelContext | None = None) -> tuple:
    """LSTM-1 in the lean step loop (see the module docstring)."""
    args = locals().copy()
    return _lstm_fast(X, W, R, B, sequence_lens, initial_h, initial_c, P,
                      activations=activations, clip=clip, direction=direction,
                      hidden_size=hidden_size, input_forget=input_forget, layout=0, ctx=ctx,
                      reference=lambda: ref.lstm_1(**args))


@fast_kernel("LSTM", versions=(7, 14, 22))
def lstm_7(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None,
           sequence_lens: np.ndarray | None = None, initial_h: np.ndarray | None = None,
           initial_c: np.ndarray | None = None, P: np.ndarray | None = None, *,
           activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
           activations: list[str] | None = None, clip: float | None = None,
           direction: str = "forward", hidden_size: int | None = None, input_forget: int = 0,
           layout: int = 0, ctx: KernelContext | None = None) -> tuple:
    """LSTM-7/14/22 in the lean step loop (see the module docstring)."""
    args = locals().copy()
    return _lstm_fast(X, W, R, B, sequence_lens, initial_h, initial_c, P,
                      activations=activations, clip=clip, direction=direction,
                      hidden_size=hidden_size, input_forget=input_forget, layout=layout,
                      ctx=ctx, reference=lambda: ref.lstm_7(**args))
