"""The compiled LSTM cell update (``rnn_loops.lstm_cell``) against the CPU provider's NumPy step
and the reference kernel: random directions, batches, hidden sizes, lengths and dtypes, and the
loop itself against the NumPy formula it replaces."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import jit
from pyonnx.backends.cpu import rnn as fast
from pyonnx.ops import rnn as ref
from pyonnx.ops.registry import KernelContext


def _lstm_args(seed: int):
    rng = np.random.default_rng(500 + seed)
    direction = str(rng.choice(["forward", "reverse", "bidirectional"]))
    D = 2 if direction == "bidirectional" else 1
    T, Bn, I, H = (int(rng.integers(1, 10)), int(rng.integers(1, 4)), int(rng.integers(1, 9)),
                   int(rng.integers(1, 40)))
    dtype = np.float32 if seed % 3 else np.float64
    X = rng.standard_normal((T, Bn, I)).astype(dtype)
    W = (rng.standard_normal((D, 4 * H, I)) * 0.5).astype(dtype)
    R = (rng.standard_normal((D, 4 * H, H)) * 0.5).astype(dtype)
    B = (rng.standard_normal((D, 8 * H)) * 0.5).astype(dtype)
    h0 = rng.standard_normal((D, Bn, H)).astype(dtype) if rng.random() < 0.6 else None
    c0 = rng.standard_normal((D, Bn, H)).astype(dtype) if rng.random() < 0.6 else None
    attrs = {"direction": direction, "hidden_size": H}
    return (X, W, R, B, None, h0, c0, None), attrs


@pytest.mark.parametrize("seed", range(16))
def test_cell_loop_matches_numpy_step_and_reference(loop_calls, seed):
    args, attrs = _lstm_args(seed)
    used = (True, True, True) if seed % 2 else (False, True, True)
    ctx = KernelContext(outputs_used=used)
    got = fast.lstm_7(*args, ctx=ctx, **attrs)
    assert loop_calls.ran("rnn_loops.lstm_cell") == [True], "the compiled cell loop did not run"
    with jit.disabled():
        numpy_step = fast.lstm_7(*args, ctx=ctx, **attrs)
    want = ref.lstm_7(*args, ctx=ctx, **attrs)
    tol = 1e-5 if args[0].dtype == np.float32 else 1e-12
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
