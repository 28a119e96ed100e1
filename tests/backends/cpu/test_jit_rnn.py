"""The compiled recurrent loops against the CPU provider's NumPy step and the reference kernel:
the whole-sequence LSTM and GRU loops (``rnn_loops.lstm_seq``, ``gru_seq``; float32, and float16
computed in float32) and the float64 LSTM cell update (``rnn_loops.lstm_cell``), over random
directions, batches, hidden sizes, lengths and layouts; their tanh and the cell update against
NumPy.

Tolerances: the sequence loops sum the recurrent product in another order than BLAS and take
their own tanh (within 1.5 ulp of the exact value; NumPy's is within 1.4, so the two differ by
at most 3 ulp), so their outputs are the reference's within float32 rounding carried over the
steps (1e-5 here: up to 9 steps with weights of order 1, and 128 steps at the taggers' size)."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import jit
from pyonnx.backends.cpu import rnn as fast
from pyonnx.ops import rnn as ref
from pyonnx.ops.registry import KernelContext


def _lstm_args(seed: int, dtype=None):
    rng = np.random.default_rng(500 + seed)
    direction = str(rng.choice(["forward", "reverse", "bidirectional"]))
    D = 2 if direction == "bidirectional" else 1
    T, Bn, I, H = (int(rng.integers(1, 10)), int(rng.integers(1, 4)), int(rng.integers(1, 9)),
                   int(rng.integers(1, 40)))
    dtype = dtype or (np.float32 if seed % 3 else np.float64)
    X = rng.standard_normal((T, Bn, I)).astype(dtype)
    W = (rng.standard_normal((D, 4 * H, I)) * 0.5).astype(dtype)
    R = (rng.standard_normal((D, 4 * H, H)) * 0.5).astype(dtype)
    B = (rng.standard_normal((D, 8 * H)) * 0.5).astype(dtype)
    h0 = rng.standard_normal((D, Bn, H)).astype(dtype) if rng.random() < 0.6 else None
    c0 = rng.standard_normal((D, Bn, H)).astype(dtype) if rng.random() < 0.6 else None
    attrs = {"direction": direction, "hidden_size": H}
    return (X, W, R, B, None, h0, c0, None), attrs


@pytest.mark.parametrize("seed", range(8))
def test_cell_loop_matches_numpy_step_and_reference(loop_calls, seed):
    # float64 layers (float32 ones run the whole-sequence loop)
    args, attrs = _lstm_args(seed, np.float64)
    used = (True, True, True) if seed % 2 else (False, True, True)
    ctx = KernelContext(outputs_used=used)
    got = fast.lstm_7(*args, ctx=ctx, **attrs)
    assert loop_calls.ran("rnn_loops.lstm_cell") == [True], "the compiled cell loop did not run"
    with jit.disabled():
        numpy_step = fast.lstm_7(*args, ctx=ctx, **attrs)
    want = ref.lstm_7(*args, ctx=ctx, **attrs)
    tol = 1e-12
    for k, (g, n, w) in enumerate(zip(got, numpy_step, want)):
        if w is None:
            assert g is None and n is None
            continue
        assert g.dtype == w.dtype and g.shape == w.shape, k
        np.testing.assert_allclose(g, n, rtol=tol, atol=tol, err_msg=f"output {k}: loop vs NumPy")
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=f"output {k}: vs reference")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cell_loop_is_the_numpy_formula(loop_calls, dtype):
    rng = np.random.default_rng(1)
    state = np.tanh(rng.standard_normal((3, 5, 17)) * 3).astype(dtype)
    state[:, 4] = rng.standard_normal((3, 17)) * 4  # the cell state
    want = state.copy()
    sig = 0.5 * want[:, :3] + 0.5
    want[:, 4] = sig[:, 2] * want[:, 4] + sig[:, 0] * want[:, 3]
    want[:, 1] = sig[:, 1]
    assert jit.call("rnn_loops.lstm_cell", state, elements=state.size)
    assert loop_calls.ran("rnn_loops.lstm_cell") == [True]
    tol = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(state, want, rtol=tol, atol=tol)


def test_loop_handle_only_where_call_would_run(loop_calls, monkeypatch):
    state = np.zeros((1, 5, 4), np.float32)
    assert jit.call("rnn_loops.lstm_cell", state, elements=state.size)
    assert jit.loop("rnn_loops.lstm_cell", elements=state.size) is not None
    with jit.disabled():
        assert jit.loop("rnn_loops.lstm_cell", elements=state.size) is None
    monkeypatch.setattr(jit, "MIN_ELEMENTS", 1 << 14)
    assert jit.loop("rnn_loops.lstm_cell", elements=100) is None


def test_step_loop_uses_numpy_when_loops_are_off():
    """With the loops off, the lean step (its NumPy cell update) still equals the reference."""
    args, attrs = _lstm_args(3)
    with jit.disabled():
        got = fast.lstm_7(*args, **attrs)
    want = ref.lstm_7(*args, **attrs)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def _seq_args(seed: int):
    rng = np.random.default_rng(900 + seed)
    op = "LSTM" if seed % 2 else "GRU"
    g = 4 if op == "LSTM" else 3
    direction = str(rng.choice(["forward", "reverse", "bidirectional"]))
    D = 2 if direction == "bidirectional" else 1
    T, Bn, I, H = (int(rng.integers(0, 10)), int(rng.integers(1, 4)), int(rng.integers(1, 9)),
                   int(rng.integers(1, 40)))
    layout = int(rng.integers(0, 2))
    dtype = np.float16 if seed % 5 == 4 else np.float32
    X = rng.standard_normal((Bn, T, I) if layout else (T, Bn, I)).astype(dtype)
    W = (rng.standard_normal((D, g * H, I)) * 0.5).astype(dtype)
    R = (rng.standard_normal((D, g * H, H)) * 0.5).astype(dtype)
    B = (rng.standard_normal((D, 2 * g * H)) * 0.5).astype(dtype) if rng.random() < 0.7 else None
    shape = (Bn, D, H) if layout else (D, Bn, H)
    h0 = rng.standard_normal(shape).astype(dtype) if rng.random() < 0.6 else None
    c0 = rng.standard_normal(shape).astype(dtype) if rng.random() < 0.6 else None
    attrs = {"direction": direction, "hidden_size": H, "layout": layout}
    if op == "GRU":
        attrs["linear_before_reset"] = int(rng.integers(0, 2))
        args = (X, W, R, B, None, h0)
    else:
        args = (X, W, R, B, None, h0, c0, None)
    used = tuple(bool(u) for u in rng.random(3) < 0.7)
    return op, args, attrs, used


@pytest.mark.parametrize("seed", range(20))
def test_sequence_loops_match_numpy_step_and_reference(loop_calls, seed):
    op, args, attrs, used = _seq_args(seed)
    kernel = {"LSTM": "lstm_7", "GRU": "gru_7"}[op]
    ctx = KernelContext(outputs_used=used)
    got = getattr(fast, kernel)(*args, ctx=ctx, **attrs)
    loop = f"rnn_loops.{op.lower()}_seq"
    assert loop_calls.ran(loop) == [True], "the compiled sequence loop did not run"
    with jit.disabled():
        numpy_step = getattr(fast, kernel)(*args, ctx=ctx, **attrs)
    want = getattr(ref, kernel)(*args, ctx=ctx, **attrs)
    tol = 1e-3 if args[0].dtype == np.float16 else 1e-5
    for k, (g, n, w) in enumerate(zip(got, numpy_step, want)):
        if w is None:
            assert g is None and n is None
            continue
        assert g.dtype == w.dtype and g.shape == w.shape, k
        g, n, w = (a.astype(np.float64) for a in (g, n, w))
        np.testing.assert_allclose(g, n, rtol=tol, atol=tol, err_msg=f"output {k}: loop vs NumPy")
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=f"output {k}: vs reference")


def test_sequence_loops_at_tagger_size(loop_calls):
    """A long sequence at the benchmark taggers' size (T=128, H=256): the rounding differences
    stay at float32 level over the whole sequence."""
    rng = np.random.default_rng(7)
    T, I, H = 128, 64, 256
    for op, g in (("LSTM", 4), ("GRU", 3)):
        X = rng.standard_normal((T, 1, I)).astype(np.float32)
        W = (rng.standard_normal((1, g * H, I)) * 0.1).astype(np.float32)
        R = (rng.standard_normal((1, g * H, H)) * 0.1).astype(np.float32)
        B = (rng.standard_normal((1, 2 * g * H)) * 0.1).astype(np.float32)
        if op == "LSTM":
            args, attrs = (X, W, R, B, None, None, None, None), {}
        else:
            args, attrs = (X, W, R, B, None, None), {"linear_before_reset": 1}
        kernel = {"LSTM": "lstm_7", "GRU": "gru_7"}[op]
        got = getattr(fast, kernel)(*args, hidden_size=H, **attrs)
        assert loop_calls.ran(f"rnn_loops.{op.lower()}_seq")[-1:] == [True]
        want = getattr(ref, kernel)(*args, hidden_size=H, **attrs)
        for g_, w in zip(got, want):
            np.testing.assert_allclose(g_, w, rtol=1e-5, atol=1e-5)


def test_tanh(loop_calls):
    """The loops' tanh (float32): within 1.5 ulp of the exact tanh over [-12, 12] and
    magnitudes from the subnormals up, so within 3 ulp of NumPy's (within 1.4); odd, at most 1
    in magnitude, signed zeros kept, +-1 at infinity, NaN kept."""
    tiny = np.logspace(-45, 0, 20_001, dtype=np.float64).astype(np.float32)
    x = np.concatenate([np.linspace(-12, 12, 400_001, dtype=np.float32), tiny, -tiny,
                        np.array([0.0, -0.0, np.inf, -np.inf, np.nan], np.float32)])
    y = np.empty_like(x)
    assert jit.call("rnn_loops.tanh_f32", x, y, elements=x.size)
    assert loop_calls.ran("rnn_loops.tanh_f32") == [True]
    finite = np.isfinite(x)
    exact = np.tanh(x[finite].astype(np.float64))
    ulp = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
    assert (np.abs(y[finite] - exact) <= 1.5 * ulp).all()
    npt = np.tanh(x[finite])
    assert (np.abs(y[finite] - npt)
            <= 3 * np.spacing(np.maximum(np.abs(y[finite]), np.abs(npt)))).all()
    assert np.abs(y[:-1]).max() <= 1
    np.testing.assert_array_equal(-y[:400_001], y[:400_001][::-1])  # odd
    assert y[-5] == 0 and not np.signbit(y[-5]) and y[-4] == 0 and np.signbit(y[-4])
    assert y[-3] == 1 and y[-2] == -1 and np.isnan(y[-1])


@pytest.mark.parametrize("op, lbr", [("LSTM", None), ("GRU", 1), ("GRU", 0)])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("batch", [1, 3])
def test_steps_shared_with_the_pool_give_one_threads_values(loop_calls, shared_pool,
                                                            monkeypatch, op, lbr, direction,
                                                            batch):
    """The sequence loops' steps cut into pieces of hidden units for two threads (uneven
    pieces: H = 37; a whole direction per piece for GRU without linear_before_reset) give one
    thread's values to the bit, run after run."""
    from pyonnx.backends.cpu import threads

    monkeypatch.setattr(fast, "MIN_SHARED_STEP_MACS", 1)
    rng = np.random.default_rng(11)
    D = 2 if direction == "bidirectional" else 1
    g = 4 if op == "LSTM" else 3
    T, I, H = 9, 5, 37
    X = rng.standard_normal((T, batch, I)).astype(np.float32)
    W = (rng.standard_normal((D, g * H, I)) * 0.5).astype(np.float32)
    R = (rng.standard_normal((D, g * H, H)) * 0.5).astype(np.float32)
    B = (rng.standard_normal((D, 2 * g * H)) * 0.5).astype(np.float32)
    h0 = rng.standard_normal((D, batch, H)).astype(np.float32)
    if op == "LSTM":
        kernel, attrs = "lstm_7", {}
        args = (X, W, R, B, None, h0, rng.standard_normal((D, batch, H)).astype(np.float32),
                None)
    else:
        kernel, attrs = "gru_7", {"linear_before_reset": lbr}
        args = (X, W, R, B, None, h0)
    run = lambda: getattr(fast, kernel)(*args, direction=direction, hidden_size=H, **attrs)
    threads._budget = 1
    alone = run()
    threads._budget = 2
    for _ in range(5):
        got = run()
        for a, b in zip(got, alone):
            np.testing.assert_array_equal(a, b)
    loop = f"rnn_loops.{op.lower()}_seq"
    assert loop_calls.ran(loop)[-1:] == [True]
    pieces = [parts for name, _, parts in shared_pool if name == loop]
    # two pieces per step (per direction, or halves of one), one without lbr on one direction
    assert pieces[-1] == T * (D if lbr == 0 else 2)
    want = getattr(ref, kernel)(*args, direction=direction, hidden_size=H, **attrs)
    for a, w in zip(got, want):
        np.testing.assert_allclose(a, w, rtol=1e-5, atol=1e-5)
