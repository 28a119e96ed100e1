"""DFT, STFT, window and MelWeightMatrix kernels."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError
from pyonnx.ops.registry import KernelContext, get_kernel

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper  # noqa: E402

_TYPES = {np.dtype(np.float32): 1, np.dtype(np.int64): 7, np.dtype(np.float64): 11}


def _ort_run(op: str, inputs: list, attrs: dict, opset: int) -> np.ndarray:
    names = [f"i{k}" if v is not None else "" for k, v in enumerate(inputs)]
    node = helper.make_node(op, names, ["y"], **attrs)
    g = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(n, _TYPES[v.dtype], v.shape)
         for n, v in zip(names, inputs) if v is not None],
        [helper.make_value_info("y", onnx.TypeProto())])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {n: v for n, v in zip(names, inputs) if v is not None})[0]


def _ours(op: str, inputs: list, attrs: dict, opset: int) -> np.ndarray:
    fn = get_kernel("", op, onnx.defs.get_schema(op, opset, "").since_version)
    assert fn is not None
    return fn(*inputs, **attrs, ctx=KernelContext(op_type=op, opset=opset))[0]


def _both(op: str, inputs: list, attrs: dict, opset: int) -> np.ndarray:
    exp = _ort_run(op, inputs, attrs, opset)
    got = _ours(op, inputs, attrs, opset)
    assert got.dtype == exp.dtype and got.shape == exp.shape
    np.testing.assert_allclose(got, exp, rtol=1e-4, atol=1e-4)
    return got


RNG = np.random.default_rng(0)
XR = RNG.standard_normal((2, 8, 6, 1)).astype(np.float32)
XC = RNG.standard_normal((2, 8, 6, 2)).astype(np.float32)


def _i(v: int) -> np.ndarray:
    return np.array(v, np.int64)


@pytest.mark.parametrize("x,inverse,onesided", [(XR, 0, 0), (XR, 0, 1), (XR, 1, 0),
                                                (XC, 0, 0), (XC, 1, 0), (XC, 1, 1)])
@pytest.mark.parametrize("axis", [1, 2, -2, -3])
def test_dft_matches_onnxruntime(x: np.ndarray, inverse: int, onesided: int, axis: int) -> None:
    lengths = [None] if inverse and onesided else [None, 5, 11]
    for n in lengths:
        _both("DFT", [x, None if n is None else _i(n), _i(axis)],
              {"inverse": inverse, "onesided": onesided}, 20)
        if axis >= 0:
            _both("DFT", [x] + ([] if n is None else [_i(n)]),
                  {"inverse": inverse, "onesided": onesided, "axis": axis}, 17)


def test_dft_round_trip_and_dtype() -> None:
    x = RNG.standard_normal((3, 16, 2))
    y = _ours("DFT", [_ours("DFT", [x], {}, 20)], {"inverse": 1}, 20)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, x, atol=1e-12)
    spec = _ours("DFT", [x[..., :1], None, _i(1)], {"onesided": 1}, 20)
    back = _ours("DFT", [spec, _i(16), _i(1)], {"onesided": 1, "inverse": 1}, 20)
    np.testing.assert_allclose(back, x[..., :1], atol=1e-12)


def test_dft_errors() -> None:
    with pytest.raises(ExecutionError, match="axis 3 is out of range"):
        _ours("DFT", [XR, None, _i(3)], {}, 20)
    with pytest.raises(ExecutionError, match="axis -1 is out of range"):
        _ours("DFT", [XR], {"axis": -1}, 17)
    with pytest.raises(ExecutionError, match="needs a real input"):
        _ours("DFT", [XC], {"onesided": 1}, 20)
    with pytest.raises(ExecutionError, match="needs a complex input"):
        _ours("DFT", [XR], {"onesided": 1, "inverse": 1}, 20)
    with pytest.raises(ExecutionError, match="dft_length must be positive"):
        _ours("DFT", [XR, _i(0)], {}, 20)
    with pytest.raises(ExecutionError, match="last dimension"):
        _ours("DFT", [np.zeros((2, 3, 3), np.float32)], {}, 20)


@pytest.mark.parametrize("step", [7, 16])
@pytest.mark.parametrize("onesided", [0, 1])
@pytest.mark.parametrize("frame_length,with_window", [(16, False), (None, True), (20, True)])
def test_stft_matches_onnxruntime(step: int, onesided: int, frame_length: int | None,
                                  with_window: bool) -> None:
    s = np.random.default_rng(1).standard_normal((2, 100, 1)).astype(np.float32)
    win = np.random.default_rng(2).random(20).astype(np.float32) if with_window else None
    ins = [s, _i(step), win, None if frame_length is None else _i(frame_length)]
    while ins[-1] is None:
        ins.pop()
    _both("STFT", ins, {"onesided": onesided}, 17)


def test_stft_complex_and_errors() -> None:
    s = RNG.standard_normal((2, 50, 2)).astype(np.float32)
    _both("STFT", [s, _i(5), None, _i(10)], {"onesided": 0}, 17)
    with pytest.raises(ExecutionError, match="onesided=1 needs a real signal"):
        _ours("STFT", [s, _i(5), None, _i(10)], {}, 17)
    with pytest.raises(ExecutionError, match="window has length 4 but frame_length is 10"):
        _ours("STFT", [s, _i(5), np.ones(4, np.float32), _i(10)], {"onesided": 0}, 17)
    with pytest.raises(ExecutionError, match="frame_length 60"):
        _ours("STFT", [s, _i(5), None, _i(60)], {"onesided": 0}, 17)
    with pytest.raises(ExecutionError, match="frame_step must be positive"):
        _ours("STFT", [s, _i(0), None, _i(10)], {"onesided": 0}, 17)


@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
@pytest.mark.parametrize("periodic", [0, 1])
@pytest.mark.parametrize("n", [2, 10, 33])
@pytest.mark.parametrize("dtype", [1, 11])
def test_windows_match_onnxruntime(op: str, periodic: int, n: int, dtype: int) -> None:
    y = _both(op, [_i(n)], {"periodic": periodic, "output_datatype": dtype}, 17)
    assert y.shape == (n,)


def test_window_edge_cases() -> None:
    # a one-point symmetric window is its peak (the formula would divide by zero)
    np.testing.assert_array_equal(_ours("HannWindow", [_i(1)], {"periodic": 0}, 17), [1.0])
    assert _ours("HammingWindow", [_i(0)], {}, 17).shape == (0,)
    y = _ours("BlackmanWindow", [_i(8)], {"output_datatype": 7}, 17)
    assert y.dtype == np.int64
    with pytest.raises(ExecutionError, match="size must not be negative"):
        _ours("HannWindow", [_i(-1)], {}, 17)


@pytest.mark.parametrize("args", [(8, 16, 8192, 0.0, 4096.0), (10, 256, 16000, 20.0, 7000.0),
                                  (40, 512, 22050, 0.0, 11025.0), (3, 33, 100, 5.0, 49.0)])
def test_mel_weight_matrix_matches_onnxruntime(args: tuple) -> None:
    m, n, sr, lo, hi = args
    y = _both("MelWeightMatrix", [_i(m), _i(n), _i(sr), np.array(lo, np.float32),
                                  np.array(hi, np.float32)], {}, 17)
    assert y.shape == (n // 2 + 1, m)


def test_mel_weight_matrix_errors() -> None:
    with pytest.raises(ExecutionError, match="lower_edge_hertz < upper_edge_hertz"):
        _ours("MelWeightMatrix", [_i(8), _i(16), _i(8000), np.array(500.0, np.float32),
                                  np.array(100.0, np.float32)], {}, 17)
