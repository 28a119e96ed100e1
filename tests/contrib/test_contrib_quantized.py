"""com.microsoft quantized operators against onnxruntime (integers compared exactly)."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.ops.contrib.quantized import qlinear_add
from tests.contrib._compare import compare

R = np.random.default_rng(4)
DTYPES = [np.uint8, np.int8]


def _f(v: object) -> np.ndarray:
    return np.array(v, np.float32)


def _q(dt: type, shape: tuple[int, ...]) -> np.ndarray:
    info = np.iinfo(dt)
    return R.integers(info.min, info.max + 1, shape).astype(dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_qlinear_binary(dt: type) -> None:
    A, B = _q(dt, (2, 3, 8)), _q(dt, (3, 8))
    z = lambda v: np.array(v, dt)  # noqa: E731
    compare("QLinearAdd", [("a", A), ("as", _f(0.05)), ("az", z(3)), ("b", B), ("bs", _f(0.11)),
                           ("bz", z(7)), ("cs", _f(0.13)), ("cz", z(5))])
    # Absent zero points mean 0 (onnxruntime's type inference refuses the node without them).
    with_zero = qlinear_add(A, _f(0.05), z(0), B, _f(0.11), z(0), _f(0.03), z(0))[0]
    np.testing.assert_array_equal(qlinear_add(A, _f(0.05), None, B, _f(0.11), None, _f(0.03))[0],
                                  with_zero)
    compare("QLinearMul", [("a", A), ("as", _f(0.05)), ("az", z(3)), ("b", B), ("bs", _f(0.11)),
                           ("bz", z(4)), ("cs", _f(0.4)), ("cz", z(5))])


@pytest.mark.parametrize("dt", DTYPES)
def test_qlinear_unary(dt: type) -> None:
    X = _q(dt, (2, 3, 8))
    z = lambda v: np.array(v, dt)  # noqa: E731
    compare("QLinearSigmoid", [("x", X), ("xs", _f(0.05)), ("xz", z(3)), ("ys", _f(1 / 256)),
                               ("yz", z(np.iinfo(dt).min))])
    compare("QLinearLeakyRelu", [("x", X), ("xs", _f(0.05)), ("xz", z(3)), ("ys", _f(0.02)),
                                 ("yz", z(9))], attrs={"alpha": 0.1})
    compare("QLinearLeakyRelu", [("x", X), ("xs", _f(0.05)), ("xz", z(3)), ("ys", _f(0.02)),
                                 ("yz", z(9))])


@pytest.mark.parametrize("dt", DTYPES)
def test_qlinear_concat(dt: type) -> None:
    z = lambda v: np.array(v, dt)  # noqa: E731
    compare("QLinearConcat", [("ys", _f(0.05)), ("yz", z(3)), ("a", _q(dt, (3, 8))), ("as", _f(0.05)),
                              ("az", z(3)), ("b", _q(dt, (2, 8))), ("bs", _f(0.1)), ("bz", z(1))],
            attrs={"axis": 0})
    compare("QLinearConcat", [("ys", _f(0.07)), ("yz", z(2)), ("a", _q(dt, (2, 3))), ("as", _f(0.05)),
                              ("az", z(3)), ("b", _q(dt, (2, 5))), ("bs", _f(0.1)), ("bz", z(1))],
            attrs={"axis": -1})


POOLS = [
    {"kernel_shape": [3, 2], "pads": [1, 0, 1, 1], "strides": [2, 1]},
    {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1, "ceil_mode": 1,
     "strides": [2, 2]},
    {"kernel_shape": [2, 2], "channels_last": 1, "auto_pad": "SAME_UPPER"},
    {"kernel_shape": [2, 3], "strides": [1, 2], "auto_pad": "VALID"},
]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("attrs", POOLS)
def test_qlinear_average_pool(dt: type, attrs: dict) -> None:
    z = lambda v: np.array(v, dt)  # noqa: E731
    compare("QLinearAveragePool", [("x", _q(dt, (2, 3, 7, 6))), ("xs", _f(0.05)), ("xz", z(3)),
                                   ("ys", _f(0.03)), ("yz", z(5))], attrs=attrs)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("channels_last", [0, 1])
def test_qlinear_global_average_pool(dt: type, channels_last: int) -> None:
    z = lambda v: np.array(v, dt)  # noqa: E731
    compare("QLinearGlobalAveragePool", [("x", _q(dt, (2, 3, 7, 6))), ("xs", _f(0.05)),
                                         ("xz", z(3)), ("ys", _f(0.03)), ("yz", z(5))],
            attrs={"channels_last": channels_last})


@pytest.mark.parametrize("dt", DTYPES)
def test_quantize_dequantize(dt: type) -> None:
    x = R.standard_normal((2, 3, 4)).astype(np.float32)
    compare("QuantizeLinear", [("x", x), ("s", _f(0.02)), ("z", np.array(3, dt))])
    compare("QuantizeLinear", [("x", x), ("s", _f([0.02, 0.03, 0.01, 0.05])),
                               ("z", np.array([1, 2, 3, 4], dt))], attrs={"axis": 2})
    compare("DequantizeLinear", [("x", _q(dt, (2, 3, 4))), ("s", _f([0.02, 0.03, 0.01])),
                                 ("z", np.array([1, 2, 3], dt))], attrs={"axis": 1})


def test_quantize_dequantize_other_types() -> None:
    x = R.standard_normal((3, 4)).astype(np.float32)
    compare("QuantizeLinear", [("x", x), ("s", _f(0.02))])
    compare("QuantizeLinear", [("x", x), ("s", _f(0.0002)), ("z", np.array(7, np.int16))])
    compare("DequantizeLinear", [("x", R.integers(-1000, 1000, (3, 4)).astype(np.int32)),
                                 ("s", _f(0.02))])


S, BATCH, I, H = 4, 3, 5, 6


@pytest.mark.parametrize("direction,per_col,lens,peep,init,clip,input_forget", [
    ("forward", False, None, False, False, None, 0),
    ("forward", True, None, False, True, None, 0),
    ("reverse", False, None, False, False, None, 0),
    ("bidirectional", False, None, False, True, None, 0),
    ("bidirectional", True, [4, 2, 3], False, False, None, 0),
    ("forward", False, None, True, False, 0.5, 0),
    ("forward", False, [1, 4, 3], False, False, None, 1),
])
def test_dynamic_quantize_lstm(direction: str, per_col: bool, lens: list | None, peep: bool,
                               init: bool, clip: float | None, input_forget: int) -> None:
    """onnxruntime re-quantizes the hidden state dynamically at each step in a way pyonnx does
    not reproduce bit for bit: the two agree within the 8-bit quantization error (1e-2)."""
    nd = 2 if direction == "bidirectional" else 1
    shp = (nd, 4 * H) if per_col else (nd,)
    ins = [("X", R.standard_normal((S, BATCH, I)).astype(np.float32)),
           ("W", R.integers(-64, 64, (nd, I, 4 * H)).astype(np.int8)),
           ("R", R.integers(-64, 64, (nd, H, 4 * H)).astype(np.int8)),
           ("B", (R.standard_normal((nd, 8 * H)) * 0.1).astype(np.float32)),
           ("sl", None if lens is None else np.array(lens, np.int32)),
           ("h0", R.standard_normal((nd, BATCH, H)).astype(np.float32) if init else None),
           ("c0", R.standard_normal((nd, BATCH, H)).astype(np.float32) if init else None),
           ("P", (R.standard_normal((nd, 3 * H)) * 0.1).astype(np.float32) if peep else None),
           ("ws", (R.random(shp) * 0.01 + 0.005).astype(np.float32)), ("wz", np.zeros(shp, np.int8)),
           ("rs", (R.random(shp) * 0.01 + 0.005).astype(np.float32)), ("rz", np.zeros(shp, np.int8))]
    attrs: dict = {"hidden_size": H, "direction": direction, "input_forget": input_forget}
    if clip:
        attrs["clip"] = clip
    compare("DynamicQuantizeLSTM", ins, n_out=3, attrs=attrs,
            initializers=["W", "R", "ws", "wz", "rs", "rz"], rtol=1e-2, atol=1e-2)
