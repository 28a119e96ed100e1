"""FuseSqueezeExcitation: GlobalAveragePool -> FusedConv -> FusedConv -> Mul of the pool's input
becomes one session-private SqueezeExcitation node, whose kernel (one compiled call, or the four
nodes' kernels in turn) gives the unfused graph's values: to the bit without compiled loops,
within float32 rounding with them."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import jit
from pyonnx.ir import Attribute, AttributeType, Node, Value
from pyonnx.optimizer import PassManager
from pyonnx.optimizer.passes import (EliminateDeadCode, FuseActivation,
                                     FuseSqueezeExcitation)
from tests.optimizer.test_optimizer_passes import init, model_of, ops, run, tval

# the blocks of MobileNetV3 (Relu, HardSigmoid) and EfficientNet (SiLU, Sigmoid)
_ACTS = {"v3": ("Relu", "HardSigmoid"), "effnet": ("silu", "Sigmoid")}


# large enough for the compiled loops' size rule (jit.MIN_ELEMENTS)
_C, _R, _HW = 96, 24, 12


def _se_model(kind: str = "v3", gate_first: bool = False, extra_use: bool = False,
              weight_input: bool = False, c: int = _C, r: int = _R, hw: int = _HW):
    rng = np.random.default_rng(1)
    x = tval("x", (2, c, hw, hw))
    w1 = init("w1", (rng.standard_normal((r, c, 1, 1)) * 0.3).astype(np.float32))
    b1 = init("b1", rng.standard_normal(r).astype(np.float32))
    w2 = init("w2", (rng.standard_normal((c, r, 1, 1)) * 0.3).astype(np.float32))
    b2 = init("b2", rng.standard_normal(c).astype(np.float32))
    if weight_input:  # a weight a feed sets: not a constant
        w2 = tval("w2", (c, r, 1, 1))
    s, a, a2, g, y = Value("s"), Value("a"), Value("a2"), Value("g"), Value("y")
    act1, act2 = _ACTS[kind]
    nodes = [Node("GlobalAveragePool", [x], [s]), Node("Conv", [s, w1, b1], [a])]
    if act1 == "silu":  # x * sigmoid(x), as torch exports SiLU
        sg = Value("sg")
        nodes += [Node("Sigmoid", [a], [sg]), Node("Mul", [a, sg], [a2])]
    else:
        nodes.append(Node(act1, [a], [a2]))
    c2 = Value("c2")
    nodes += [Node("Conv", [a2, w2, b2], [c2]), Node(act2, [c2], [g]),
              Node("Mul", [g, x] if gate_first else [x, g], [y])]
    outs = [y]
    if extra_use:
        e = Value("e")
        nodes.append(Node("Neg", [a2], [e]))
        outs.append(e)
    inputs = [x] + ([w2] if weight_input else [])
    inits = [w1, b1, b2] + ([] if weight_input else [w2])
    return model_of(nodes, inputs, outs, inits)


def _feeds(weight_input: bool = False, c: int = _C, r: int = _R, hw: int = _HW) -> dict:
    rng = np.random.default_rng(2)
    f = {"x": rng.standard_normal((2, c, hw, hw)).astype(np.float32)}
    if weight_input:
        f["w2"] = (rng.standard_normal((c, r, 1, 1)) * 0.3).astype(np.float32)
    return f


@pytest.mark.parametrize("kind", list(_ACTS))
@pytest.mark.parametrize("gate_first", [False, True])
def test_block_becomes_one_node_with_the_graphs_values(monkeypatch, kind: str,
                                                       gate_first: bool) -> None:
    m = _se_model(kind, gate_first)
    feeds = _feeds()
    want = run(m, feeds)[0]
    with jit.disabled():
        want_numpy = run(m, feeds)[0]
    PassManager([FuseActivation(), FuseSqueezeExcitation(), EliminateDeadCode()])(m)
    assert ops(m) == ["SqueezeExcitation"]
    se = m.graph.nodes[0]
    assert se.domain == "pyonnx" and [v.name for v in se.inputs] == ["x", "w1", "b1", "w2", "b2"]
    act1 = "Swish" if kind == "effnet" else "Relu"
    assert se.attributes["activation1"].value == act1
    assert se.attributes["activation2"].value == _ACTS[kind][1]
    with jit.disabled():  # the four kernels in turn: the unfused graph's values, to the bit
        np.testing.assert_array_equal(run(m, feeds)[0], want_numpy)
    if jit.available():  # the compiled block (the tests' autouse size rule is the models')
        calls = []
        real = jit.call
        monkeypatch.setattr(jit, "call", lambda name, *a, **k: (
            calls.append(name) or real(name, *a, **k)))
        np.testing.assert_allclose(run(m, feeds)[0], want, rtol=1e-5, atol=1e-6)
        assert "act_loops.squeeze_excitation" in calls


def test_sessions_fuse_blocks_and_keep_their_values() -> None:
    m = _se_model("v3")
    feeds = _feeds()
    want = run(m, feeds, level=0)[0]
    got = run(m, feeds, level=99)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ["extra_use", "weight_input"])
def test_blocks_that_are_not_plain_stay(case: str) -> None:
    m = _se_model(**{case: True})
    PassManager([FuseActivation(), FuseSqueezeExcitation(), EliminateDeadCode()])(m)
    assert "SqueezeExcitation" not in ops(m)


def test_padded_convolution_is_not_a_block() -> None:
    m = _se_model()
    m.graph.nodes[1].attributes["pads"] = Attribute("pads", AttributeType.INTS, [0, 0, 1, 1])
    PassManager([FuseActivation(), FuseSqueezeExcitation(), EliminateDeadCode()])(m)
    assert "SqueezeExcitation" not in ops(m)
