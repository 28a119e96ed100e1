"""ops/bind.py: the one node-binding mechanism (kernel by exact schema version, attribute
decoding, the kernel context, per-node prepared state)."""

from __future__ import annotations

import numpy as np
import pytest

import pyonnx
from pyonnx.errors import UnsupportedOperatorError, ValidationError
from pyonnx.ir import Attribute, AttributeType, DataType, Graph, Node, TensorType, Value
from pyonnx.ops import bind as b
from pyonnx.ops import registry
from pyonnx.ops.registry import KernelContext, NodeMemo, kernel, kernel_parameters, node_memo

_DOMAIN = "test.bind"
_PREPARED: list[object] = []


def _prepare_scale(attributes: dict) -> dict:
    state = {"factor": float(attributes.get("factor", 1.0)), "calls": 0}
    _PREPARED.append(state)
    return state


def _scale(x: np.ndarray, *, factor: float = 1.0, prepared: dict | None = None,
           ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """y = x * factor; counts its calls in the node's prepared state."""
    if prepared is not None:
        prepared["calls"] += 1
    return (x * np.float32(factor),)


@pytest.fixture(autouse=True, scope="module")
def _scale_kernel():  # type: ignore[no-untyped-def]
    """test.bind::Scale is registered while this module's tests run, and only then: the kernel
    registry is process-wide, and the rank-0 sweep walks every registered kernel."""
    kernel("Scale", versions=(1,), domain=_DOMAIN, prepare=_prepare_scale)(_scale)
    yield
    registry._REGISTRY.pop((_DOMAIN, "Scale", 1), None)
    registry._PREPARE.pop(_scale, None)


def _node(op_type: str = "Scale", domain: str = _DOMAIN, **attrs: float) -> Node:
    x = Value("x", TensorType(DataType.FLOAT, (2,)))
    y = Value("y", TensorType(DataType.FLOAT, (2,)))
    return Node(op_type, [x], [y], domain=domain, name="n0",
                attributes=[Attribute(k, AttributeType.FLOAT, v) for k, v in attrs.items()])


def test_resolve_kernel_takes_the_exact_schema_version() -> None:
    node = _node("Relu", "")
    fn13, v13 = b.resolve_kernel(node, {"": 13})
    fn6, v6 = b.resolve_kernel(node, {"ai.onnx": 6})  # "ai.onnx" spells the default domain
    assert (v13, v6) == (13, 6)
    assert fn13 is registry.get_kernel("", "Relu", 13)
    assert fn6 is registry.get_kernel("", "Relu", 6)


def test_resolve_kernel_errors_name_the_node() -> None:
    with pytest.raises(ValidationError, match="n0.*does not import"):
        b.resolve_kernel(_node("Relu", "com.example"), {"": 13})
    with pytest.raises(UnsupportedOperatorError, match="unknown operator 'Nope'.*register_custom_op"):
        b.resolve_kernel(_node("Nope", "com.example"), {"com.example": 1})
    with pytest.raises(UnsupportedOperatorError, match="does not exist at opset 1"):
        b.resolve_kernel(_node("Gelu", ""), {"": 1})


def test_bind_runs_prepare_once_per_node_and_passes_its_state() -> None:
    before = len(_PREPARED)
    n1, n2 = _node(factor=2.0), _node(factor=3.0)
    fn, v = b.resolve_kernel(n1, {_DOMAIN: 1})
    attrs1, graphs = b.decode_attributes(n1.attributes.values(), n1.describe())
    assert attrs1 == {"factor": 2.0} and graphs == []
    b1 = b.bind(n1, fn, v, 1, attrs1)
    b2 = b.bind(n2, fn, v, 1, b.decode_attributes(n2.attributes.values(), "")[0])
    assert len(_PREPARED) == before + 2
    assert b1.prepared is not b2.prepared  # each bound node owns its state
    x = np.ones(2, np.float32)
    np.testing.assert_array_equal(b1(x)[0], [2, 2])
    np.testing.assert_array_equal(b2(x)[0], [3, 3])
    b1(x)
    assert (b1.prepared["calls"], b2.prepared["calls"]) == (2, 1)
    assert b1.wants_context and b1.kwargs["ctx"].node_name == "n0"
    assert b1.kwargs["ctx"].opset == 1


def test_sessions_bind_through_it() -> None:
    """Two sessions of one model own separate prepared states (nothing process-wide)."""
    m = pyonnx.parse_model("""
        <ir_version: 10, opset_import: ["" : 21, "test.bind" : 1]>
        g (float[2] x) => (float[2] y) { y = test.bind.Scale <factor: float = 4.0> (x) }""")
    before = len(_PREPARED)
    s1, s2 = pyonnx.InferenceSession(m), pyonnx.InferenceSession(m)
    assert len(_PREPARED) == before + 2
    x = np.arange(2, dtype=np.float32)
    np.testing.assert_array_equal(s1.run(None, {"x": x})[0], x * 4)
    s1.run(None, {"x": x})
    s2.run(None, {"x": x})
    assert [st["calls"] for st in _PREPARED[before:]] == [2, 1]


def test_undefined_attribute_reference_is_left_to_the_default() -> None:
    attrs, _ = b.decode_attributes([Attribute("alpha", AttributeType.UNDEFINED, None)], "n")
    assert attrs == {}


def test_graph_attributes_are_left_undecoded() -> None:
    g = Graph(name="body")
    _attrs, graphs = b.decode_attributes([Attribute("body", AttributeType.GRAPH, g)], "n")
    assert [a.name for a in graphs] == ["body"]


def test_signature_problem() -> None:
    node = _node(factor=2.0)
    assert b.signature_problem(node, _scale, 1, ["factor"]) is None
    assert "attribute 'gamma'" in b.signature_problem(node, _scale, 1, ["gamma"])
    # the reserved keyword parameters are never attributes
    assert "attribute 'prepared'" in b.signature_problem(node, _scale, 1, ["prepared"])
    assert "2 inputs" in b.signature_problem(node, _scale, 2, [])


def test_prepare_needs_the_prepared_parameter() -> None:
    with pytest.raises(ValueError, match="no keyword-only 'prepared'"):
        @kernel("NoState", versions=(1,), domain=_DOMAIN, prepare=node_memo)
        def _no_state(x: np.ndarray) -> tuple[np.ndarray]:
            return (x,)
    assert registry.get_kernel(_DOMAIN, "NoState", 1) is None  # a refused kernel is not kept


def test_parameter_cache_skips_closures() -> None:
    def make() -> object:
        k = 2

        def fn(x: np.ndarray, *, ctx: object = None) -> tuple:
            return (x * k,)
        return fn

    fn = make()
    assert kernel_parameters(fn) is not None
    assert fn not in registry._PARAMS  # a closure stays collectable
    assert registry.wants_context(fn) is True
    assert kernel_parameters(_scale) is registry._PARAMS[_scale]


def test_node_memo_is_bounded() -> None:
    memo = NodeMemo()
    for i in range(NodeMemo.limit + 5):
        assert memo.remember(i, i * i) == i * i
    assert len(memo) <= NodeMemo.limit
    assert memo[NodeMemo.limit + 4] == (NodeMemo.limit + 4) ** 2



def test_conv_pool_and_tree_keep_their_state_on_the_bound_node() -> None:
    """Conv's geometry, AveragePool's divisors and a forest live in each node's memo."""
    m = pyonnx.parse_model("""
        <ir_version: 10, opset_import: ["" : 21, "ai.onnx.ml" : 3]>
        g (float[1,1,5,5] x) => (float[1,1,5,5] y, float[1,1,5,5] z, float[1,1] t)
        <float[1,1,3,3] w = {1,1,1,1,1,1,1,1,1}> {
            c = Conv <pads: ints = [1,1,1,1]> (x, w)
            y = Conv <pads: ints = [1,1,1,1]> (c, w)
            z = AveragePool <kernel_shape: ints = [3,3], pads: ints = [1,1,1,1]> (x)
            f = Flatten <axis: int = 1> (x)
            t = ai.onnx.ml.TreeEnsembleRegressor <n_targets: int = 1,
                nodes_treeids: ints = [0,0,0], nodes_nodeids: ints = [0,1,2],
                nodes_featureids: ints = [0,0,0], nodes_values: floats = [0.5,0,0],
                nodes_modes: strings = ["BRANCH_LEQ","LEAF","LEAF"],
                nodes_truenodeids: ints = [1,0,0], nodes_falsenodeids: ints = [2,0,0],
                target_treeids: ints = [0,0], target_nodeids: ints = [1,2],
                target_ids: ints = [0,0], target_weights: floats = [1.0,2.0]> (f)
        }""")
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = pyonnx.InferenceSession(m, so)
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    sess.run(None, {"x": x})
    memos = {st.node.op_type: [] for st in sess._plan.steps}
    for st in sess._plan.steps:
        memos[st.node.op_type].append(st.bound.prepared)
    conv1, conv2 = memos["Conv"]
    assert conv1 is not conv2 and len(conv1) == len(conv2) == 1
    assert len(memos["AveragePool"][0]) == 1
    assert len(memos["TreeEnsembleRegressor"][0]) == 1
    assert memos["Flatten"] == [None]  # no prepare function: nothing prepared
    # a direct call (no bound node) computes everything and keeps nothing
    from pyonnx.ops.conv import conv
    w = np.ones((1, 1, 3, 3), np.float32)
    memo = NodeMemo()
    np.testing.assert_array_equal(conv(x, w, pads=[1, 1, 1, 1])[0],
                                  conv(x, w, pads=[1, 1, 1, 1], prepared=memo)[0])
    assert len(memo) == 1
