"""The CPU provider's Add, Sub, Mul, Div and Relu without per-call overhead
(pyonnx.backends.cpu.elementwise): bit for bit the reference's results and errors, the short
path taken only where a run has silenced floating-point exceptions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx import TensorProto, helper

import pyonnx
from pyonnx.backends.cpu import elementwise as ew
from pyonnx.errors import ExecutionError
from pyonnx.ops._common import float_errors_quiet, quiet_float_errors
from pyonnx.ops.registry import get_kernel

OPS = ["Add", "Sub", "Mul", "Div"]
SPECIAL = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-40, 3e38, -3e38, 65504.0]


def _values(dtype, extra=()) -> np.ndarray:
    with np.errstate(over="ignore"):  # 3e38 is inf in float16, as intended
        return np.array(SPECIAL + list(extra), dtype)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.itemsize])


def _fast(op: str):
    from pyonnx.backends.cpu.registry import get_fast_kernel

    return get_fast_kernel("", op, 14)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shapes", [((3, 5), (3, 5)), ((2, 3, 4), (4,)), ((2, 3, 4), (1, 3, 1)),
                                    ((1, 3, 1), (2, 3, 4)), ((4, 1), (1, 4)), ((2, 3), (1,)),
                                    ((0, 3), (1, 3))])
def test_same_bits_as_the_reference(op, dtype, shapes):
    rng = np.random.default_rng(0)
    a = rng.choice(_values(dtype), shapes[0])
    b = rng.choice(_values(dtype), shapes[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither path may warn inside a run
        with quiet_float_errors():
            (got,) = _fast(op)(a, b)
    (want,) = get_kernel("", op, 14)(a, b)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(_bits(got), _bits(want))


def test_short_path_only_in_a_quiet_run(monkeypatch):
    calls = []
    monkeypatch.setattr(ew, "_within_operands", lambda sa, sb: calls.append("checked") or True)
    a = np.ones((2, 2), np.float32)
    # outside a run: the reference (which silences errors itself), never the bare ufunc
    assert not float_errors_quiet()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (y,) = _fast("Div")(a, np.zeros((2, 2), np.float32))
    assert np.isinf(y).all() and calls == []
    with quiet_float_errors():
        assert float_errors_quiet()
        _fast("Add")(a, a)
    assert calls == ["checked"]
    assert not float_errors_quiet()


@pytest.mark.parametrize("a, b, match", [
    (np.ones((2, 3), np.float32), np.ones((2, 4), np.float32), "broadcast"),
    (np.ones((2, 3), np.float32), np.ones((2, 3), np.float64), "type"),
])
def test_errors_are_the_references(a, b, match):
    with quiet_float_errors():
        with pytest.raises(ExecutionError, match=match):
            _fast("Add")(a, b)


@pytest.mark.parametrize("sa, sb, within", [
    ((3, 5), (3, 5), True), ((2, 3, 4), (4,), True), ((4,), (2, 3, 4), True),
    ((2, 3, 4), (1, 3, 1), True), ((2, 1), (1, 3), False), ((1, 4), (3, 1, 1), False),
    ((0, 3), (1, 3), True), ((5,), (), True)])
def test_within_operands(sa, sb, within):
    assert ew._within_operands(sa, sb) is within
    if within:  # then the broadcast result is no larger than an operand
        assert np.prod(np.broadcast_shapes(sa, sb)) <= max(np.prod(sa), np.prod(sb))


def test_other_cases_take_the_reference():
    ref = get_kernel("", "Add", 14)
    with quiet_float_errors():
        for a, b in [(np.array(2.0, np.float32), np.array(3.0, np.float32)),  # 0-d
                     (np.arange(4, dtype=np.int32), np.arange(4, dtype=np.int32)),  # ints
                     (np.ones((1, 4), np.float32), np.ones((3, 1), np.float32))]:  # grows
            (got,) = _fast("Add")(a, b)
            (want,) = ref(a, b)
            assert isinstance(got, np.ndarray) and got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 16, 33, 1000])
def test_relu_same_bits_as_the_reference(dtype, n):
    rng = np.random.default_rng(n)
    x = rng.choice(_values(dtype, [-5e-8, 6e-8]), n)
    (want,) = get_kernel("", "Relu", 14)(x)
    for v, w in ((x, want), (x[::2], want[::2]), (x.reshape(-1, 1), want.reshape(-1, 1))):
        (got,) = _fast("Relu")(v)
        assert got.dtype == w.dtype and got.shape == w.shape
        np.testing.assert_array_equal(_bits(got), _bits(w))


def test_relu_other_types_take_the_reference():
    for x in (np.array([-3, 0, 4], np.int32), np.array(-1.5, np.float32)):
        (got,) = _fast("Relu")(x)
        np.testing.assert_array_equal(got, get_kernel("", "Relu", 14)(x)[0])


def test_a_run_warns_of_nothing():
    """Overflow, division by zero and NaN inside a run are the spec's results, not warnings."""
    g = helper.make_graph(
        [helper.make_node("Mul", ["x", "x"], ["m"]), helper.make_node("Div", ["m", "z"], ["d"]),
         helper.make_node("Sub", ["d", "d"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    sess = pyonnx.InferenceSession(model.SerializeToString())
    x = np.array([[3e38, 1.0, 0.0, -2.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (y,) = sess.run(None, {"x": x, "z": np.zeros((1, 4), np.float32)})
    assert np.isnan(y).all()
    assert not float_errors_quiet()
    # and the floating-point state the caller had is back
    assert np.geterr()["over"] == "warn"
