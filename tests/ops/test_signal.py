"""DFT, STFT, window and MelWeightMatrix kernels."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError
from tests.ops._oracle import check, run_kernel

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

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
        check("DFT", [x, None if n is None else _i(n), _i(axis)],
              {"inverse": inverse, "onesided": onesided}, 20, atol=1e-4)
        if axis >= 0:
            check("DFT", [x] + ([] if n is None else [_i(n)]),
                  {"inverse": inverse, "onesided": onesided, "axis": axis}, 17, atol=1e-4)


def test_dft_round_trip_and_dtype() -> None:
    x = RNG.standard_normal((3, 16, 2))
    y = run_kernel("DFT", run_kernel("DFT", x, opset=20)[0], opset=20, inverse=1)[0]
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, x, atol=1e-12)
    spec = run_kernel("DFT", x[..., :1], None, _i(1), opset=20, onesided=1)[0]
    back = run_kernel("DFT", spec, _i(16), _i(1), opset=20, onesided=1, inverse=1)[0]
    np.testing.assert_allclose(back, x[..., :1], atol=1e-12)


def test_dft_errors() -> None:
    with pytest.raises(ExecutionError, match="axis 3 is out of range"):
        run_kernel("DFT", XR, None, _i(3), opset=20)
    with pytest.raises(ExecutionError, match="axis -1 is out of range"):
        run_kernel("DFT", XR, opset=17, axis=-1)
    with pytest.raises(ExecutionError, match="needs a real input"):
        run_kernel("DFT", XC, opset=20, onesided=1)
    with pytest.raises(ExecutionError, match="needs a complex input"):
        run_kernel("DFT", XR, opset=20, onesided=1, inverse=1)
    with pytest.raises(ExecutionError, match="dft_length must be positive"):
        run_kernel("DFT", XR, _i(0), opset=20)
    with pytest.raises(ExecutionError, match="last dimension"):
        run_kernel("DFT", np.zeros((2, 3, 3), np.float32), opset=20)


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
    check("STFT", ins, {"onesided": onesided}, 17, atol=1e-4)


def test_stft_complex_and_errors() -> None:
    s = RNG.standard_normal((2, 50, 2)).astype(np.float32)
    check("STFT", [s, _i(5), None, _i(10)], {"onesided": 0}, 17, atol=1e-4)
    with pytest.raises(ExecutionError, match="onesided=1 needs a real signal"):
        run_kernel("STFT", s, _i(5), None, _i(10), opset=17)
    with pytest.raises(ExecutionError, match="window has length 4 but frame_length is 10"):
        run_kernel("STFT", s, _i(5), np.ones(4, np.float32), _i(10), opset=17, onesided=0)
    with pytest.raises(ExecutionError, match="frame_length 60"):
        run_kernel("STFT", s, _i(5), None, _i(60), opset=17, onesided=0)
    with pytest.raises(ExecutionError, match="frame_step must be positive"):
        run_kernel("STFT", s, _i(0), None, _i(10), opset=17, onesided=0)


@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
@pytest.mark.parametrize("periodic", [0, 1])
@pytest.mark.parametrize("n", [2, 10, 33])
@pytest.mark.parametrize("dtype", [1, 11])
def test_windows_match_onnxruntime(op: str, periodic: int, n: int, dtype: int) -> None:
    y = check(op, [_i(n)], {"periodic": periodic, "output_datatype": dtype}, 17, atol=1e-4)
    assert y.shape == (n,)


def test_window_edge_cases() -> None:
    # a one-point symmetric window is its peak (the formula would divide by zero)
    np.testing.assert_array_equal(run_kernel("HannWindow", _i(1), opset=17, periodic=0)[0], [1.0])
    assert run_kernel("HammingWindow", _i(0), opset=17)[0].shape == (0,)
    y = run_kernel("BlackmanWindow", _i(8), opset=17, output_datatype=7)[0]
    assert y.dtype == np.int64
    with pytest.raises(ExecutionError, match="size must not be negative"):
        run_kernel("HannWindow", _i(-1), opset=17)


@pytest.mark.parametrize("args", [(8, 16, 8192, 0.0, 4096.0), (10, 256, 16000, 20.0, 7000.0),
                                  (40, 512, 22050, 0.0, 11025.0), (3, 33, 100, 5.0, 49.0)])
def test_mel_weight_matrix_matches_onnxruntime(args: tuple) -> None:
    m, n, sr, lo, hi = args
    y = check("MelWeightMatrix",
              [_i(m), _i(n), _i(sr), np.array(lo, np.float32), np.array(hi, np.float32)], {}, 17,
              atol=1e-4)
    assert y.shape == (n // 2 + 1, m)


def test_mel_weight_matrix_errors() -> None:
    with pytest.raises(ExecutionError, match="lower_edge_hertz < upper_edge_hertz"):
        run_kernel("MelWeightMatrix", _i(8), _i(16), _i(8000), np.array(500.0, np.float32),
                   np.array(100.0, np.float32), opset=17)
