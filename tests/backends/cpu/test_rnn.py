"""The CPU provider's RNN, GRU and LSTM equal the reference kernels: random shapes, directions,
layouts, optional inputs and outputs; configurations outside the lean loop (clip, activations,
sequence lengths, peepholes) go to the reference itself, errors included."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import rnn as fast
from pyonnx.backends.cpu.registry import get_fast_kernel
from pyonnx.errors import PyOnnxError
from pyonnx.ops import rnn as ref
from pyonnx.ops.registry import KernelContext

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
KERNELS = {("RNN", 1): "rnn_1", ("RNN", 7): "rnn_7", ("GRU", 1): "gru_1", ("GRU", 3): "gru_3",
           ("GRU", 7): "gru_7", ("LSTM", 1): "lstm_1", ("LSTM", 7): "lstm_7"}


def _inputs(rng, op, T, Bn, I, H, D, layout, dtype, with_b, with_h):
    g = GATES[op]
    X = rng.standard_normal((Bn, T, I) if layout else (T, Bn, I)).astype(dtype)
    W = (rng.standard_normal((D, g * H, I)) * 0.3).astype(dtype)
    R = (rng.standard_normal((D, g * H, H)) * 0.3).astype(dtype)
    B = (rng.standard_normal((D, 2 * g * H)) * 0.3).astype(dtype) if with_b else None
    shape = (Bn, D, H) if layout else (D, Bn, H)
    h0 = rng.standard_normal(shape).astype(dtype) if with_h else None
    c0 = rng.standard_normal(shape).astype(dtype) if with_h else None
    return X, W, R, B, h0, c0


def _call(module, op, version, X, W, R, B, lens, h0, c0, ctx, **attrs):
    fn = getattr(module, KERNELS[(op, version)])
    if op == "LSTM":
        return fn(X, W, R, B, lens, h0, c0, attrs.pop("P", None), ctx=ctx, **attrs)
    return fn(X, W, R, B, lens, h0, ctx=ctx, **attrs)


def _compare(op, version, args, attrs, used=(True, True, True), exact=False):
    ctx = KernelContext(outputs_used=used) if used is not None else None
    want = _call(ref, op, version, *args, ctx, **dict(attrs))
    got = _call(fast, op, version, *args, ctx, **dict(attrs))
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        if w is None:
            assert g is None
            continue
        assert g.dtype == w.dtype and g.shape == w.shape, k
        if exact:
            np.testing.assert_array_equal(g, w)
        else:
            # the recurrent product may sum in another order (float rounding only)
            tol = 1e-3 if w.dtype == np.float16 else 1e-5
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64),
                                       rtol=tol, atol=tol)


def test_registered_for_every_reference_version():
    for (op, first), name in KERNELS.items():
        for v in {1: (1,), 3: (3,), 7: (7, 14, 22)}[first]:
            assert get_fast_kernel("", op, v) is getattr(fast, name)


@pytest.mark.parametrize("seed", range(24))
def test_random_lean_configurations(seed):
    rng = np.random.default_rng(seed)
    op = ["RNN", "GRU", "LSTM"][seed % 3]
    version = int(rng.choice([v for (o, v) in KERNELS if o == op]))
    direction = str(rng.choice(["forward", "reverse", "bidirectional"]))
    D = 2 if direction == "bidirectional" else 1
    layout = int(rng.integers(0, 2)) if version == 7 else 0
    T, Bn, I, H = (int(rng.integers(lo, hi)) for lo, hi in ((0, 9), (1, 4), (1, 6), (1, 7)))
    dtype = rng.choice([np.float32, np.float64, np.float16])
    args = _inputs(rng, op, T, Bn, I, H, D, layout, dtype, rng.random() < 0.7, rng.random() < 0.6)
    X, W, R, B, h0, c0 = args
    attrs = {"direction": direction, "hidden_size": H}
    if layout:
        attrs["layout"] = layout
    if op == "GRU" and version != 1:
        attrs["linear_before_reset"] = int(rng.integers(0, 2))
    if rng.random() < 0.3:
        attrs["activations"] = {"RNN": ["tanh"], "GRU": ["Sigmoid", "TANH"],
                                "LSTM": ["sigmoid", "Tanh", "tanh"]}[op] * D
    lens = np.full(Bn, T, np.int32) if rng.random() < 0.3 else None  # full lengths: lean
    used = tuple(bool(u) for u in rng.random(3) < 0.8)
    _compare(op, version, (X, W, R, B, lens, h0, c0), attrs, used)


def test_no_context_means_every_output():
    rng = np.random.default_rng(1)
    args = _inputs(rng, "LSTM", 5, 2, 3, 4, 1, 0, np.float32, True, True)
    _compare("LSTM", 7, (*args[:4], None, *args[4:]), {"hidden_size": 4}, used=None)


@pytest.mark.parametrize("op,case", [
    (op, case) for op in ("RNN", "GRU", "LSTM")
    for case in ("clip", "activations", "lens") + (("peephole", "input_forget") if op == "LSTM"
                                                   else ())])
def test_other_configurations_run_the_reference(op, case):
    rng = np.random.default_rng(3)
    H, D = 4, 2
    X, W, R, B, h0, c0 = _inputs(rng, op, 6, 3, 2, H, D, 0, np.float32, True, True)
    attrs = {"hidden_size": H, "direction": "bidirectional"}
    lens = None
    if case == "clip":
        attrs["clip"] = 0.5
    elif case == "activations":
        attrs["activations"] = {"RNN": ["Relu", "Tanh"], "GRU": ["HardSigmoid", "Tanh"] * 2,
                                "LSTM": ["Sigmoid", "Tanh", "Relu"] * 2}[op]
        attrs["activation_alpha"] = [0.3]
    elif case == "lens":
        lens = np.array([6, 0, 3], np.int32)
    elif case == "peephole":
        attrs["P"] = rng.standard_normal((D, 3 * H)).astype(np.float32)
    else:
        attrs["input_forget"] = 1
    _compare(op, 7, (X, W, R, B, lens, h0, c0), attrs, exact=True)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_same_errors(op):
    rng = np.random.default_rng(4)
    X, W, R, B, h0, c0 = _inputs(rng, op, 3, 2, 2, 3, 1, 0, np.float32, True, True)
    bad_cases = [
        dict(W=W[:, :-1]),
        dict(h0=h0[:, :1]),
        dict(lens=np.array([1, 9], np.int32)),
        dict(attrs={"direction": "sideways"}),
        dict(attrs={"activations": ["Tanh"] * 5}),
    ]
    for bad in bad_cases:
        a = dict(X=X, W=W, R=R, B=B, lens=None, h0=h0, c0=c0)
        attrs = {"hidden_size": 3, **bad.pop("attrs", {})}
        a.update(bad)
        args = (a["X"], a["W"], a["R"], a["B"], a["lens"], a["h0"], a["c0"])
        with pytest.raises(PyOnnxError) as want:
            _call(ref, op, 7, *args, None, **attrs)
        with pytest.raises(PyOnnxError) as got:
            _call(fast, op, 7, *args, None, **attrs)
        assert type(got.value) is type(want.value) and str(got.value) == str(want.value)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_tagger_sizes(op):
    # the size of the benchmark taggers (BLAS kernels, not the tiny-matrix paths)
    rng = np.random.default_rng(8)
    X, W, R, B, h0, c0 = _inputs(rng, op, 12, 2, 32, 96, 2, 0, np.float32, True, False)
    W *= 0.3
    R *= 0.3
    attrs = {"hidden_size": 96, "direction": "bidirectional"}
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    _compare(op, 7, (X, W, R, B, None, h0, c0), attrs)


@pytest.mark.parametrize("op,lbr", [("RNN", 0), ("GRU", 0), ("GRU", 1), ("LSTM", 0)])
@pytest.mark.parametrize("direction,Bn", [("forward", 1), ("reverse", 1), ("bidirectional", 1),
                                          ("forward", 3)])
def test_numpy_step_loops(op, lbr, direction, Bn):
    """The NumPy step loops (float32 layers without the compiled loops), on 1-D views of their
    buffers with one direction and batch 1, on the [D, B, ...] buffers otherwise
    (``lbr``: GRU's linear_before_reset)."""
    from pyonnx.backends.cpu import jit
    rng = np.random.default_rng(31)
    D = 2 if direction == "bidirectional" else 1
    X, W, R, B, h0, c0 = _inputs(rng, op, 7, Bn, 5, 6, D, 0, np.float32, True, True)
    attrs = {"hidden_size": 6, "direction": direction}
    if op == "GRU":
        attrs["linear_before_reset"] = lbr
    for used in ((True, True, True), (False, True, True)):
        with jit.disabled():
            _compare(op, 7, (X, W, R, B, None, h0, c0), attrs, used)
