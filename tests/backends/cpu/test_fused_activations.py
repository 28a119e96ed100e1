"""The session-private fused activations (pyonnx.backends.cpu.fused): the in-place activations
against the reference kernels, the ``pyonnx`` FusedConv's HardSwish and Swish (SiLU), which
com.microsoft's FusedConv must keep refusing, and the fusion pass that creates them
(session stage only: the public extended stage leaves HardSwish and SiLU alone)."""

from __future__ import annotations

import numpy as np
import pytest

import pyonnx
from pyonnx.backends.cpu import fused, jit
from pyonnx.errors import ExecutionError
from pyonnx.ir import (Attribute, AttributeType, DataType, Graph, Model, Node, Tensor, TensorType,
                       Value)
from pyonnx.ops import activation as act
from pyonnx.ops.contrib.fused_conv import fused_conv as ms_reference_fused_conv
from pyonnx.ops.conv import conv as reference_conv
from pyonnx.optimizer import MS_DOMAIN, PassManager, optimize
from pyonnx.optimizer.passes import EliminateDeadCode, FuseActivation

_REFERENCE = {
    "Sigmoid": ([], lambda y: act.Sigmoid(y)[0]),
    "HardSigmoid": ([0.3, 0.4], lambda y: act.HardSigmoid(y, alpha=0.3, beta=0.4)[0]),
    "HardSwish": ([], lambda y: act.HardSwish(y)[0]),
    "Swish": ([1.0], lambda y: act.Swish(y, alpha=1.0)[0]),
    "Swish-0.5": ([0.5], lambda y: act.Swish(y, alpha=0.5)[0]),
}


def _values(dtype) -> np.ndarray:
    rng = np.random.default_rng(0)
    y = (rng.standard_normal((2, 3, 7, 5)) * 6).astype(dtype)
    y.flat[:4] = [0, -3, 3, 200]  # HardSwish's corners and a sigmoid that saturates
    y.flat[4] = -200
    return y


@pytest.mark.parametrize("name", sorted(_REFERENCE))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_in_place_activation_equals_reference(name, dtype):
    params, reference = _REFERENCE[name]
    op = name.split("-")[0]
    y = _values(dtype)
    want = reference(y.copy())
    with jit.disabled():  # the NumPy path
        got = fused.apply_activation(y, op, params)
    assert got.dtype == want.dtype and got.shape == want.shape
    # the reference's operations in its order: equal to the last bit
    np.testing.assert_array_equal(got, want)
    if dtype != np.float16:
        assert got is y  # updated in place, no new array


@pytest.mark.parametrize("name,params", [("HardSwish", []), ("HardSigmoid", [0.3, 0.4]),
                                         ("HardSigmoid", [1 / 6, 0.5])])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_hard_activations_equal_reference(loop_calls, name, params, dtype):
    y = _values(dtype)
    y.flat[5:8] = [np.nan, np.inf, -np.inf]
    reference = _REFERENCE["HardSwish"][1] if name == "HardSwish" else \
        (lambda v: act.HardSigmoid(v, alpha=params[0], beta=params[1])[0])
    want = reference(y.copy())
    got = fused.apply_activation(y, name, params)
    assert loop_calls.ran("act_loops") == [True]
    assert got is y and got.dtype == want.dtype
    # alpha * v + beta may be one fused multiply-add: a last-place rounding difference at most
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    # NaN stays NaN; inf and -inf as the reference gives them (HardSwish(-inf) is -inf * 0)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_non_contiguous_result_takes_the_numpy_path(loop_calls):
    y = _values(np.float32)[..., ::2]
    want = act.HardSwish(y.copy())[0]
    got = fused.apply_activation(y, "HardSwish", [])
    assert loop_calls.ran("act_loops") == []
    np.testing.assert_array_equal(got, want)


def test_read_only_result_is_not_modified():
    y = _values(np.float32)
    y.flags.writeable = False
    got = fused.apply_activation(y, "HardSwish", [])
    assert got is not y
    np.testing.assert_array_equal(got, act.HardSwish(y)[0])


def _conv_inputs():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 4, 9, 9)).astype(np.float32) * 3
    w = rng.standard_normal((4, 1, 5, 5)).astype(np.float32)  # depthwise, as MobileNetV3's
    b = rng.standard_normal(4).astype(np.float32)
    return x, w, b


@pytest.mark.parametrize("name", ["HardSwish", "Swish"])
def test_private_fused_conv_equals_conv_then_activation(name):
    x, w, b = _conv_inputs()
    params, reference = _REFERENCE[name]
    attrs = dict(group=4, pads=[2, 2, 2, 2], strides=[2, 2])
    want = reference(reference_conv(x, w, b, **attrs)[0])
    got = fused.private_fused_conv(x, w, b, activation=name, activation_params=params,
                                   **attrs)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["HardSwish", "Swish"])
def test_com_microsoft_fused_conv_keeps_refusing_private_activations(name):
    x, w, b = _conv_inputs()
    params = _REFERENCE[name][0]
    for kernel in (fused.fused_conv, ms_reference_fused_conv):
        with pytest.raises(ExecutionError, match="unknown fused activation"):
            kernel(x, w, b, group=4, activation=name, activation_params=params)
    with pytest.raises(ExecutionError, match="takes 1 parameters"):
        fused.private_fused_conv(x, w, b, group=4, activation="Swish")


# -- the pass -----------------------------------------------------------------------------


def _model(tail: str, extra_use: str = "") -> Model:
    """x -> Conv -> c, then ``tail``: "HardSwish", "silu" (Sigmoid and Mul(c, s)), "silu-swapped"
    (Mul(s, c)); ``extra_use`` "c" or "s" also makes that value a graph output."""
    rng = np.random.default_rng(2)
    x = Value("x", TensorType(DataType.FLOAT, (1, 3, 6, 6)))
    warr = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    w = Value("w", TensorType(DataType.FLOAT, warr.shape),
              const_value=Tensor.from_numpy(warr, "w"))
    c, y = Value("c"), Value("y")
    nodes = [Node("Conv", [x, w], [c], attributes=[Attribute("pads", AttributeType.INTS,
                                                               [1, 1, 1, 1])])]
    outs = [y]
    if tail == "HardSwish":
        nodes.append(Node("HardSwish", [c], [y]))
    else:
        s = Value("s")
        nodes.append(Node("Sigmoid", [c], [s]))
        nodes.append(Node("Mul", [s, c] if tail == "silu-swapped" else [c, s], [y]))
        if extra_use == "s":
            outs.append(s)
    if extra_use == "c":
        outs.append(c)
    g = Graph("g", inputs=[x], outputs=outs, nodes=nodes, initializers=[w])
    return Model(g, opset_imports={"": 18})


def _run(model: Model, level: int) -> list:
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = level
    x = np.random.default_rng(3).standard_normal((1, 3, 6, 6)).astype(np.float32) * 4
    return pyonnx.InferenceSession(model, so).run(None, {"x": x})


def _kinds(model: Model) -> list[tuple[str, str, str]]:
    return [(n.domain, n.op_type, n.attributes["activation"].value
             if "activation" in n.attributes else "") for n in model.graph.nodes]


@pytest.mark.parametrize("tail,act_name", [("HardSwish", "HardSwish"), ("silu", "Swish"),
                                           ("silu-swapped", "Swish")])
def test_pass_fuses_private_activations(tail, act_name):
    m = _model(tail)
    want = _run(m, 0)
    PassManager([FuseActivation(), EliminateDeadCode()])(m)
    assert _kinds(m) == [("pyonnx", "FusedConv", act_name)]
    # equal up to the compiled HardSwish loop's fused multiply-add (exact on the NumPy path)
    np.testing.assert_allclose(_run(m, 0)[0], want[0], rtol=1e-6, atol=1e-6)
    with jit.disabled():  # the convolution's product too is BLAS's on both sides there
        np.testing.assert_array_equal(_run(m, 0)[0], _run(_model(tail), 0)[0])
    # and a whole session (every stage) gives the unfused result
    np.testing.assert_allclose(_run(_model(tail), 99)[0], want[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("tail", ["HardSwish", "silu"])
def test_public_stage_leaves_private_activations(tail):
    m = _model(tail)
    before = _kinds(m)
    assert not FuseActivation(MS_DOMAIN)(m).modified
    optimize(m, 99, private=False)  # what a written file may hold
    assert _kinds(m) == before


@pytest.mark.parametrize("tail,extra_use", [("silu", "c"), ("silu", "s"), ("HardSwish", "c")])
def test_pass_keeps_values_read_elsewhere(tail, extra_use):
    m = _model(tail, extra_use)
    want = _run(m, 0)
    assert not FuseActivation()(m).modified
    got = _run(m, 99)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_mul_of_another_value_is_not_silu():
    # Mul(c, Sigmoid(c)) only: Mul(c, c) with a Sigmoid elsewhere is not SiLU
    m = _model("silu")
    mul = m.graph.nodes[2]
    mul.set_input(1, mul.inputs[0])
    m.graph.outputs.append(m.graph.nodes[1].outputs[0])
    assert not FuseActivation()(m).modified
