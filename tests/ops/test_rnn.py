"""RNN, GRU and LSTM kernels: against onnxruntime, layouts, optional outputs and error paths."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ops.registry import get_kernel
from tests.ops._oracle import run_kernel, run_ort

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _make(op: str, rng: np.random.Generator, T: int = 5, B: int = 3, I: int = 4, H: int = 6,
          D: int = 1, seq: list[int] | None = None, peep: bool = False) -> list:
    G = GATES[op]
    f = np.float32
    ins = [rng.standard_normal((T, B, I)).astype(f),
           (rng.standard_normal((D, G * H, I)) * 0.5).astype(f),
           (rng.standard_normal((D, G * H, H)) * 0.5).astype(f),
           rng.standard_normal((D, 2 * G * H)).astype(f),
           None if seq is None else np.array(seq, np.int32),
           rng.standard_normal((D, B, H)).astype(f)]
    if op == "LSTM":
        ins.append(rng.standard_normal((D, B, H)).astype(f))
        ins.append(rng.standard_normal((D, 3 * H)).astype(f) if peep else None)
    while ins[-1] is None:
        ins.pop()
    return ins


CASES = [
    (op, direction, seq)
    for op in ("RNN", "GRU", "LSTM")
    for direction in ("forward", "reverse", "bidirectional")
    for seq in (None, [5, 3, 1], [2, 5, 0])
]


@pytest.mark.parametrize("op,direction,seq", CASES)
def test_matches_onnxruntime(op: str, direction: str, seq: list[int] | None) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{op}{direction}{seq}".encode()))
    D = 2 if direction == "bidirectional" else 1
    ins = _make(op, rng, D=D, seq=seq)
    n_out = 3 if op == "LSTM" else 2
    attrs = {"hidden_size": 6, "direction": direction}
    exp = run_ort(op, ins, attrs, opset=14, outputs=n_out)
    got = run_kernel(op, *ins, opset=14, num_outputs=n_out, **attrs)
    for e, g in zip(exp, got):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op,attrs,peep", [
    ("GRU", {"linear_before_reset": 1}, False),
    ("GRU", {"clip": 0.4}, False),
    ("LSTM", {"clip": 0.4}, False),
    ("LSTM", {"input_forget": 1}, False),
    ("LSTM", {}, True),
    ("RNN", {"activations": ["Relu", "LeakyRelu"], "activation_alpha": [0.2]}, False),
    ("GRU", {"activations": ["HardSigmoid", "Elu", "Sigmoid", "Softsign"],
             "activation_alpha": [0.3, 0.8], "activation_beta": [0.6]}, False),
    ("LSTM", {"activations": ["Sigmoid", "ScaledTanh", "Affine"] * 2,
              "activation_alpha": [0.9, 1.1, 0.5, 1.0], "activation_beta": [0.7, 0.2, 1.0, 0.0]},
     True),
])
def test_attributes_match_onnxruntime(op: str, attrs: dict, peep: bool) -> None:
    rng = np.random.default_rng(7)
    ins = _make(op, rng, D=2, seq=[4, 5, 2], peep=peep)
    n_out = 3 if op == "LSTM" else 2
    a = {"hidden_size": 6, "direction": "bidirectional", **attrs}
    for e, g in zip(run_ort(op, ins, a, opset=14, outputs=n_out),
                    run_kernel(op, *ins, opset=14, num_outputs=n_out, **a)):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_layout_1_is_batch_major(op: str) -> None:
    rng = np.random.default_rng(3)
    ins = _make(op, rng, D=2, seq=[5, 2, 3])
    n_out = 3 if op == "LSTM" else 2
    ref = run_kernel(op, *ins, opset=14, num_outputs=n_out, hidden_size=6,
                     direction="bidirectional")
    bm = list(ins)
    bm[0] = ins[0].transpose(1, 0, 2)
    for k in (5, 6):
        if k < len(bm) and bm[k] is not None:
            bm[k] = ins[k].transpose(1, 0, 2)
    got = run_kernel(op, *bm, opset=14, num_outputs=n_out, hidden_size=6, direction="bidirectional",
                     layout=1)
    np.testing.assert_allclose(got[0], ref[0].transpose(2, 0, 1, 3), rtol=1e-6)
    for g, r in zip(got[1:], ref[1:]):
        np.testing.assert_allclose(g, r.transpose(1, 0, 2), rtol=1e-6)


def test_sequence_lens_semantics() -> None:
    rng = np.random.default_rng(5)
    ins = _make("LSTM", rng, seq=[5, 2, 0])
    Y, Yh, Yc = run_kernel("LSTM", *ins, opset=14, num_outputs=3, hidden_size=6)
    assert (Y[2:, 0, 1] == 0).all() and (Y[:, 0, 2] == 0).all()
    np.testing.assert_array_equal(Yh[0, 1], Y[1, 0, 1])  # last valid step of batch 1
    assert (Yh[0, 2] == 0).all() and (Yc[0, 2] == 0).all()  # empty sequence


def test_only_requested_outputs_are_computed() -> None:
    rng = np.random.default_rng(1)
    ins = _make("LSTM", rng)
    Y, Yh, _ = run_kernel("LSTM", *ins, opset=14, num_outputs=3, used=(False, True, False),
                          hidden_size=6)
    assert Y is None and Yh.shape == (1, 3, 6)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_dtype_is_preserved(dtype: type) -> None:
    rng = np.random.default_rng(2)
    ins = [a.astype(dtype) if a is not None and a.dtype == np.float32 else a
           for a in _make("GRU", rng)]
    Y, Yh = run_kernel("GRU", *ins, opset=14, num_outputs=2, hidden_size=6)
    assert Y.dtype == dtype and Yh.dtype == dtype
    ref = run_kernel("GRU", *[a.astype(np.float32) if a is not None and a.dtype == dtype else a
                              for a in ins], opset=14, num_outputs=2, hidden_size=6)
    np.testing.assert_allclose(Y.astype(np.float32), ref[0], rtol=1e-2, atol=1e-2)


def test_opset1_versions_registered() -> None:
    rng = np.random.default_rng(0)
    ins = _make("GRU", rng)
    # GRU-1's documented default direction is misspelled "foward"; it means forward
    a = run_kernel("GRU", *ins, opset=1, num_outputs=2, hidden_size=6, direction="foward")
    b = run_kernel("GRU", *ins, opset=7, num_outputs=2, hidden_size=6)
    np.testing.assert_allclose(a[1], b[1])
    for op, versions in {"RNN": (1, 7, 14, 22), "GRU": (1, 3, 7, 14, 22),
                         "LSTM": (1, 7, 14, 22)}.items():
        for v in versions:
            assert get_kernel("", op, v) is not None


def test_errors() -> None:
    rng = np.random.default_rng(0)
    ins = _make("LSTM", rng)
    with pytest.raises(UnsupportedOperatorError, match="direction"):
        run_kernel("LSTM", *ins, opset=14, num_outputs=3, hidden_size=6, direction="sideways")
    with pytest.raises(UnsupportedOperatorError, match="Swish"):
        run_kernel("LSTM", *ins, opset=14, num_outputs=3, hidden_size=6,
                   activations=["Sigmoid", "Swish", "Tanh"])
    with pytest.raises(ExecutionError, match="activations has 2 entries"):
        run_kernel("LSTM", *ins, opset=14, num_outputs=3, hidden_size=6,
                   activations=["Sigmoid", "Tanh"])
    bad = list(ins)
    bad[4] = np.array([5, 6, 1], np.int32)
    with pytest.raises(ExecutionError, match="sequence_lens contains 6"):
        run_kernel("LSTM", *bad, opset=14, num_outputs=3, hidden_size=6)
    with pytest.raises(ExecutionError, match="W has shape"):
        run_kernel("LSTM", *ins, opset=14, num_outputs=3, hidden_size=5)
    bad = list(ins)
    bad[5] = ins[5][:, :2]
    with pytest.raises(ExecutionError, match="initial_h has shape"):
        run_kernel("LSTM", *bad, opset=14, num_outputs=3, hidden_size=6)
