"""The offline optimizer (``pyonnx.optimize``) and its new passes: each pass on a tiny graph,
verification and bisection with an injected wrong pass, and written files that onnx.checker
accepts and onnxruntime runs to the original's outputs on real models."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import pyonnx
from pyonnx.errors import InvalidArgument, VerificationError
from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node, Tensor, Value
from pyonnx.optimizer import PassManager, copy_model
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer.api import op_counts
from pyonnx.optimizer.passes import (
    DeduplicateInitializers, EliminateCommonSubexpressions, EliminateDeadCode,
    EliminateShapeSubgraphs, FuseActivation, FuseConvAdd, FuseGelu, FuseLayerNorm,
    FuseSkipLayerNorm, ModernizeInitializers,
)
from tests.optimizer.test_optimizer_passes import init, ints, model_of, ops, run, tval

MS = "com.microsoft"
SHARED = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                       "models"))
_SKIP_SHARED = pytest.mark.skipif(not os.path.isdir(SHARED),
                                  reason=f"{SHARED} is absent (the shared real models live "
                                         f"beside the project checkout)")


def _apply(model: Model, *passes: object) -> Model:
    return PassManager([*passes, EliminateDeadCode()], debug=True)(model).model  # type: ignore[list-item]


def _same(a: list, b: list) -> None:
    for x, y in zip(a, b):
        np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-5 * float(np.max(np.abs(x))))


def c(name: str, value: object, dt: type = np.float32) -> Value:
    return init(name, np.array(value, dt))


# ---------------------------------------------------------------- common subexpressions
def test_cse_merges_equal_nodes_only() -> None:
    x = tval("x", ("n", 4))
    a, b, d, e = (tval(k) for k in "abde")
    out = tval("out")
    nodes = [Node("Relu", [x], [a]), Node("Relu", [x], [b]),
             Node("Softmax", [x], [d], attributes=[Attribute("axis", AttributeType.INT, 0)]),
             Node("Softmax", [x], [e], attributes=[Attribute("axis", AttributeType.INT, 1)]),
             Node("Sum", [a, b, d, e], [out])]
    m = model_of(nodes, [x], [out])
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)}
    want = run(m, feeds)
    opt = _apply(copy_model(m), EliminateCommonSubexpressions())
    assert ops(opt) == ["Relu", "Softmax", "Softmax", "Sum"]  # the Softmax axes differ
    _same(want, run(opt, feeds))


def test_cse_keeps_random_ops_and_graph_outputs() -> None:
    x = tval("x", (2, 2))
    a, b = tval("a"), tval("b")
    m = model_of([Node("RandomUniformLike", [x], [a]), Node("RandomUniformLike", [x], [b])],
                 [x], [a, b])
    assert ops(_apply(copy_model(m), EliminateCommonSubexpressions())) == ops(m)


# ---------------------------------------------------------------- initializers
def test_duplicate_and_unused_initializers() -> None:
    x = tval("x", (3,))
    y1, out = tval("y1"), tval("out")
    w1, w2, unused = c("w1", [1, 2, 3]), c("w2", [1, 2, 3]), c("unused", [5])
    m = model_of([Node("Add", [x, w1], [y1]), Node("Mul", [y1, w2], [out])], [x], [out],
                 [w1, w2, unused])
    opt = _apply(copy_model(m), DeduplicateInitializers())
    assert sorted(opt.graph.initializers) == ["w1"]
    feeds = {"x": np.arange(3, dtype=np.float32)}
    _same(run(m, feeds), run(opt, feeds))


def test_ir3_initializer_inputs_become_ir4_constants() -> None:
    x = tval("x", (3,))
    w = c("w", [1, 2, 3])
    out = tval("out")
    m = model_of([Node("Add", [x, w], [out])], [x, w], [out], [w])
    m.ir_version = 3
    opt = _apply(copy_model(m), ModernizeInitializers())
    assert opt.ir_version == 4 and [v.name for v in opt.graph.inputs] == ["x"]


# ---------------------------------------------------------------- shape subgraphs
def _reshape_chain_model() -> Model:
    """Reshape(x, Concat(Shape(x)[0], Shape(x)[1], [2, -1])): the target is [batch, seq, 2, 4]."""
    x = tval("x", ("batch", "seq", 8))
    s, s0, s1, tgt, out = tval("s"), tval("s0"), tval("s1"), tval("tgt"), tval("out")
    zero, one, two = c("zero", [0], np.int64), c("one", [1], np.int64), c("two", [2], np.int64)
    tail = c("tail", [2, -1], np.int64)
    nodes = [Node("Shape", [x], [s]),
             Node("Slice", [s, zero, one], [s0]),
             Node("Slice", [s, one, two], [s1]),
             Node("Concat", [s0, s1, tail], [tgt], attributes=[Attribute("axis",
                                                                         AttributeType.INT, 0)]),
             Node("Reshape", [x, tgt], [out])]
    return model_of(nodes, [x], [out], [zero, one, two, tail])


def test_shape_subgraph_becomes_a_constant_target() -> None:
    m = _reshape_chain_model()
    opt = _apply(copy_model(m), EliminateShapeSubgraphs())
    assert ops(opt) == ["Reshape"]
    target = opt.graph.nodes[0].inputs[1].const_value.numpy().tolist()
    assert target == [0, 0, 2, -1]
    feeds = {"x": np.arange(3 * 5 * 8, dtype=np.float32).reshape(3, 5, 8)}
    _same(run(m, feeds), run(opt, feeds))


def test_reshape_to_its_own_shape_is_dropped() -> None:
    x = tval("x", ("batch", 4))
    s, out, y = tval("s"), tval("out"), tval("y")
    m = model_of([Node("Shape", [x], [s]), Node("Reshape", [x, s], [y]),
                  Node("Relu", [y], [out])], [x], [out])
    opt = _apply(copy_model(m), EliminateShapeSubgraphs())
    assert ops(opt) == ["Relu"]


# ---------------------------------------------------------------- layer norm, gelu
def _decomposed_layer_norm(x: Value, gamma: Value, beta: Value, opset: int,
                           out: Value) -> tuple[list[Node], list[Value]]:
    names = ["mean", "d", "p", "var", "ve", "s", "n", "y"]
    mean, d, p, var, ve, s, n, y = (tval(k) for k in names)
    two, eps = c("two", 2.0), c("eps", 1e-5)
    axes: list[Value] = []
    if opset >= 18:
        ax = c("axes", [-1], np.int64)
        axes = [ax]
        rm = lambda i, o: Node("ReduceMean", [i, ax], [o])  # noqa: E731
    else:
        rm = lambda i, o: Node("ReduceMean", [i], [o], attributes=[ints("axes", [-1])])  # noqa: E731
    nodes = [rm(x, mean), Node("Sub", [x, mean], [d]), Node("Pow", [d, two], [p]), rm(p, var),
             Node("Add", [var, eps], [ve]), Node("Sqrt", [ve], [s]), Node("Div", [d, s], [n]),
             Node("Mul", [n, gamma], [y]), Node("Add", [y, beta], [out])]
    return nodes, [two, eps, gamma, beta, *axes]


@pytest.mark.parametrize("opset", [14, 18])
def test_layer_norm_from_decomposed_form(opset: int) -> None:
    x, out = tval("x", ("n", 6, 8)), tval("out")
    g, b = c("gamma", np.linspace(0.5, 1.5, 8)), c("beta", np.linspace(-1, 1, 8))
    nodes, inits = _decomposed_layer_norm(x, g, b, opset, out)
    m = model_of(nodes, [x], [out], inits, opset=opset)
    opt = _apply(copy_model(m), FuseLayerNorm())
    # the standard operator exists from opset 17 on; before it the form stays
    assert ops(opt) == (["LayerNormalization"] if opset >= 17 else ops(m))
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 6, 8)).astype(np.float32)}
    _same(run(m, feeds), run(opt, feeds))


@pytest.mark.parametrize("opset", [14, 18])
def test_skip_layer_norm_with_bias_and_residual_output(opset: int) -> None:
    a, skip = tval("a", ("n", 6, 8)), tval("skip", ("n", 6, 8))
    ab, x, out, res = tval("ab"), tval("x"), tval("out"), tval("res")
    bias = c("bias", np.linspace(-0.5, 0.5, 8))
    g, b = c("gamma", np.linspace(0.5, 1.5, 8)), c("beta", np.linspace(-1, 1, 8))
    nodes, inits = _decomposed_layer_norm(x, g, b, opset, out)
    nodes = [Node("Add", [a, bias], [ab]), Node("Add", [ab, skip], [x])] + nodes + \
        [Node("Add", [x, out], [res])]  # the sum is read again (the next residual)
    m = model_of(nodes, [a, skip], [res], inits + [bias], opset=opset)
    opt = _apply(copy_model(m), FuseLayerNorm(), FuseSkipLayerNorm())
    assert ops(opt) == ["SkipLayerNormalization", "Add"]
    fused = opt.graph.nodes[0]
    assert fused.domain == MS and len(fused.inputs) == 5 and fused.outputs[3].uses
    rng = np.random.default_rng(1)
    feeds = {k: rng.standard_normal((2, 6, 8)).astype(np.float32) for k in ("a", "skip")}
    _same(run(m, feeds), run(opt, feeds))


def _gelu_model(form: str, with_bias: bool, opset: int = 18) -> Model:
    a = tval("a", ("n", 4, 8))
    inits: list[Value] = []
    nodes: list[Node] = []
    x = a
    if with_bias:
        bias = c("bias", np.linspace(-1, 1, 8))
        x = tval("x")
        nodes.append(Node("Add", [a, bias], [x]))
        inits.append(bias)
    f, u, h, out = tval("f"), tval("u"), tval("h"), tval("out")
    half, one = c("half", 0.5), c("one", 1.0)
    inits += [half, one]
    if form == "erf":
        r2, q = c("r2", math.sqrt(2)), tval("q")
        inits.append(r2)
        nodes += [Node("Div", [x, r2], [q]), Node("Erf", [q], [f])]
    else:
        three, k, s = c("three", 3.0), c("k", 0.044715), c("s", math.sqrt(2 / math.pi))
        p, pk, ad, sc = tval("p"), tval("pk"), tval("ad"), tval("sc")
        inits += [three, k, s]
        nodes += [Node("Pow", [x, three], [p]), Node("Mul", [p, k], [pk]),
                  Node("Add", [x, pk], [ad]), Node("Mul", [ad, s], [sc]),
                  Node("Tanh", [sc], [f])]
    nodes += [Node("Add", [f, one], [u]), Node("Mul", [half, u], [h]), Node("Mul", [x, h], [out])]
    return model_of(nodes, [a], [out], inits, opset=opset)


@pytest.mark.parametrize("form,with_bias,want", [
    ("erf", False, "Gelu"), ("erf", True, "BiasGelu"),
    ("tanh", False, "FastGelu"), ("tanh", True, "FastGelu")])
def test_gelu_to_onnxruntime_ops(form: str, with_bias: bool, want: str) -> None:
    m = _gelu_model(form, with_bias)
    opt = _apply(copy_model(m), FuseGelu(MS))
    assert ops(opt) == [want] and opt.graph.nodes[0].domain == MS
    assert len(opt.graph.nodes[0].inputs) == (2 if with_bias else 1)
    feeds = {"a": np.random.default_rng(2).standard_normal((2, 4, 8)).astype(np.float32)}
    _same(run(m, feeds), run(opt, feeds))


@pytest.mark.parametrize("form", ["erf", "tanh"])
def test_gelu_to_standard_op_from_opset_20(form: str) -> None:
    m = _gelu_model(form, False, opset=20)
    opt = _apply(copy_model(m), FuseGelu())
    assert ops(opt) == ["Gelu"] and opt.graph.nodes[0].domain == ""
    approx = opt.graph.nodes[0].attributes.get("approximate")
    assert (approx.value if approx else "none") == ("tanh" if form == "tanh" else "none")
    assert ops(_apply(_gelu_model(form, False, opset=18), FuseGelu())) != ["Gelu"]


def test_gelu_with_an_interior_value_read_elsewhere_is_kept() -> None:
    m = _gelu_model("erf", False)
    f = next(v for n in m.graph.nodes for v in n.outputs if v.name == "f")
    m.graph.outputs.append(f)
    assert "Gelu" not in ops(_apply(copy_model(m), FuseGelu(MS)))


# ---------------------------------------------------------------- FusedConv (com.microsoft)
def test_conv_add_relu_to_onnxruntime_fused_conv() -> None:
    x, z = tval("x", (1, 2, 5, 5)), tval("z", (1, 3, 5, 5))
    y, s, out = tval("y", (1, 3, 5, 5)), tval("s"), tval("out")
    w = c("w", np.random.default_rng(3).standard_normal((3, 2, 3, 3)))
    m = model_of([Node("Conv", [x, w], [y], attributes=[ints("pads", [1, 1, 1, 1])]),
                  Node("Add", [y, z], [s]), Node("Relu", [s], [out])], [x, z], [out], [w])
    opt = _apply(copy_model(m), FuseConvAdd(MS), FuseActivation(MS))
    assert ops(opt) == ["FusedConv"] and opt.graph.nodes[0].domain == MS
    rng = np.random.default_rng(4)
    feeds = {"x": rng.standard_normal((1, 2, 5, 5)).astype(np.float32),
             "z": rng.standard_normal((1, 3, 5, 5)).astype(np.float32)}
    _same(run(m, feeds), run(opt, feeds))


# ---------------------------------------------------------------- the public function
def test_optimize_levels_and_no_private_ops() -> None:
    m = _gelu_model("erf", True)
    before = ops(m)
    basic = pyonnx.optimize(m, level="basic")
    extended = pyonnx.optimize(m, level="extended")
    assert ops(m) == before  # the caller's model is untouched
    assert all(n.domain == "" for n in basic.graph.nodes) and basic.opset_imports == {"": 18}
    assert ops(extended) == ["BiasGelu"]
    assert "pyonnx" not in extended.opset_imports
    with pytest.raises(InvalidArgument, match="level"):
        pyonnx.optimize(m, level="max")
    with pytest.raises(InvalidArgument, match="unknown pass"):
        pyonnx.optimize(m, passes=["no_such_pass"])
    with pytest.raises(InvalidArgument, match="extended"):
        pyonnx.optimize(m, passes=["fuse_gelu"])


class _WrongRelu(GraphPass):
    """An injected bug: rewrites Relu into Abs (wrong for negative inputs)."""

    name = "wrong_relu"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        changed = False
        for n in list(graph.nodes):
            if n.op_type == "Relu":
                new = Node("Abs", list(n.inputs), list(n.outputs), name=n.name)
                graph.insert_before(new, n)
                graph.remove(n)
                changed = True
        return changed


def test_verification_names_the_wrong_pass_and_the_drifted_value() -> None:
    x = tval("x", ("n", 4))
    a, b, r, out = tval("a"), tval("b"), tval("r"), tval("out")
    one = c("one", [1.0, 1.0, 1.0, 1.0])
    m = model_of([Node("Identity", [x], [a]), Node("Add", [a, one], [b]),
                  Node("Relu", [b], [r]), Node("Mul", [r, one], [out])], [x], [out], [one])
    with pytest.raises(VerificationError) as info:
        pyonnx.optimize(m, passes=["eliminate_identity", _WrongRelu(), "constant_folding"],
                        verify=2)
    assert info.value.pass_name == "wrong_relu"
    assert info.value.value_name == "r"
    assert "wrong_relu" in str(info.value) and "'r'" in str(info.value)
    # without the wrong pass the same pipeline verifies
    pyonnx.optimize(m, passes=["eliminate_identity", "constant_folding"], verify=2)


def test_input_shapes_fix_dims_before_optimizing() -> None:
    m = _reshape_chain_model()
    opt = pyonnx.optimize(m, input_shapes={"x": [3, 5, 8]})
    assert ops(opt) == ["Reshape"]
    assert [d for d in opt.graph.inputs[0].type.shape] == [3, 5, 8]


def test_session_file_is_standard_and_session_fuses_privately(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = tval("x", (2, 8))
    w = c("w", np.random.default_rng(5).standard_normal((8, 8)))
    bias = c("bias", np.linspace(-1, 1, 8))
    y, z, out = tval("y"), tval("z"), tval("out")
    m = model_of([Node("MatMul", [x, w], [y]), Node("Add", [y, bias], [z]),
                  Node("Relu", [z], [out])], [x], [out], [w, bias])
    so = pyonnx.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    sess = pyonnx.InferenceSession(m, so)
    saved = pyonnx.load(str(tmp_path / "opt.onnx"))
    assert all(n.domain in ("", MS) for n in saved.graph.nodes)
    assert "pyonnx" not in saved.opset_imports
    assert any(n.domain == "pyonnx" for n in sess._model.graph.nodes)  # fused inside
    feeds = {"x": np.random.default_rng(6).standard_normal((2, 8)).astype(np.float32)}
    _same(run(m, feeds), sess.run(None, feeds))


def test_op_counts_include_subgraphs() -> None:
    cond, out = tval("cond", (), pyonnx.ir.DataType.BOOL), tval("out")
    t_out, e_out = tval("t"), tval("e")
    then = Graph("then", outputs=[t_out], nodes=[Node("Constant", [], [t_out], attributes=[
        Attribute("value", AttributeType.TENSOR, Tensor.from_numpy(np.ones(1, np.float32)))])])
    els = Graph("else", outputs=[e_out], nodes=[Node("Constant", [], [e_out], attributes=[
        Attribute("value", AttributeType.TENSOR, Tensor.from_numpy(np.zeros(1, np.float32)))])])
    m = model_of([Node("If", [cond], [out], attributes=[
        Attribute("then_branch", AttributeType.GRAPH, then),
        Attribute("else_branch", AttributeType.GRAPH, els)])], [cond], [out])
    assert op_counts(m) == {"If": 1, "Constant": 2}


# ---------------------------------------------------------------- real models, written files
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _ort_outputs(path: str, feeds: dict) -> list:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


@_SKIP_SHARED
@pytest.mark.parametrize("name,level,at_most", [
    ("bert_small_legacy", "extended", 258), ("gpt2_small", "extended", 225),
    ("bert_small_legacy", "basic", 359)])
def test_written_file_is_valid_and_onnxruntime_agrees(tmp_path, name: str, level: str,  # type: ignore[no-untyped-def]
                                                      at_most: int) -> None:
    from pyonnx.optimizer.verify import random_feeds

    src = os.path.join(SHARED, f"{name}.onnx")
    model = pyonnx.load(src)
    feeds = random_feeds(model, 1, seed=3, batch=1, other=16)[0]
    opt = pyonnx.optimize(model, level=level, verify_inputs=[feeds])
    assert sum(op_counts(opt).values()) <= at_most  # onnxruntime's / onnxsim's node count
    path = str(tmp_path / "opt.onnx")
    pyonnx.save(opt, path)
    onnx.checker.check_model(path, full_check=True)
    ref = _ort_outputs(src, feeds)
    for r, g in zip(ref, _ort_outputs(path, feeds)):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5 * float(np.max(np.abs(r))))


@_SKIP_SHARED
def test_silero_extended_counts_at_most_onnxruntimes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """onnxruntime's extended level leaves 36 nodes in silero-vad's main graph and 108 with its
    If branches (onnxruntime 1.32, optimized_model_filepath); pyonnx inlines the If whose
    condition the state's static shape decides, so it must match both counts at once."""
    from pyonnx.optimizer.verify import random_feeds

    src = os.path.join(SHARED, "silero_vad_16k_op15.onnx")
    model = pyonnx.load(src)
    feeds = random_feeds(model, 1, seed=1)[0]
    opt = pyonnx.optimize(model, level="extended", verify_inputs=[feeds])
    assert len(opt.graph.nodes) <= 36 and sum(op_counts(opt).values()) <= 108
    path = str(tmp_path / "opt.onnx")
    pyonnx.save(opt, path)
    onnx.checker.check_model(path, full_check=True)
    for r, g in zip(_ort_outputs(src, feeds), _ort_outputs(path, feeds)):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5 * float(np.max(np.abs(r))))


# ---------------------------------------------------------------- reshape/transpose, neutral, scale
def test_reshape_transpose_reshape_becomes_one_transpose() -> None:
    from pyonnx.optimizer.passes import FoldReshapeTranspose

    x = tval("x", ("b", 3, 5, 4))
    r1, t, out = tval("r1"), tval("t"), tval("out")
    s1, s2 = c("s1", [-1, 5, 4], np.int64), c("s2", [-1, 3, 4, 5], np.int64)
    m = model_of([Node("Reshape", [x, s1], [r1]),
                  Node("Transpose", [r1], [t], attributes=[ints("perm", [0, 2, 1])]),
                  Node("Reshape", [t, s2], [out])], [x], [out], [s1, s2])
    opt = _apply(copy_model(m), FoldReshapeTranspose())
    assert ops(opt) == ["Transpose"]
    assert opt.graph.nodes[0].attributes["perm"].value == [0, 1, 3, 2]
    feeds = {"x": np.arange(2 * 60, dtype=np.float32).reshape(2, 3, 5, 4)}
    _same(run(m, feeds), run(opt, feeds))


def test_reshape_transpose_reshape_that_mixes_axes_is_kept() -> None:
    from pyonnx.optimizer.passes import FoldReshapeTranspose

    x = tval("x", (2, 3, 5, 4))
    r1, t, out = tval("r1"), tval("t"), tval("out")
    s1, s2 = c("s1", [6, 5, 4], np.int64), c("s2", [3, 2, 4, 5], np.int64)  # splits 6 as 3x2
    m = model_of([Node("Reshape", [x, s1], [r1]),
                  Node("Transpose", [r1], [t], attributes=[ints("perm", [0, 2, 1])]),
                  Node("Reshape", [t, s2], [out])], [x], [out], [s1, s2])
    assert ops(_apply(copy_model(m), FoldReshapeTranspose())) == ops(m)


def test_neutral_elements_and_zero_masks() -> None:
    from pyonnx.optimizer.passes import EliminateZeroMask

    x = tval("x", (2, 4))
    a, b, e, w, s, out, wide = (tval(k) for k in ("a", "b", "e", "w", "s", "out", "wide"))
    zeros, ones = c("zeros", np.zeros(4)), c("ones", np.ones(4))
    big = c("big", np.zeros((3, 2, 4)))  # widens x: that Add stays
    cond, shape = init("cond", np.ones((1, 1), bool)), c("shape", [2, 4], np.int64)
    zero, neg = c("zero", 0.0), c("neg", -1e9)
    m = model_of([Node("Add", [x, zeros], [a]), Node("Mul", [ones, a], [b]),
                  Node("Expand", [cond, shape], [e]), Node("Where", [e, zero, neg], [w]),
                  Node("Add", [b, w], [s]), Node("Relu", [s], [out]),
                  Node("Add", [x, big], [wide])],
                 [x], [out, wide], [zeros, ones, big, cond, shape, zero, neg])
    opt = _apply(copy_model(m), EliminateZeroMask())
    assert ops(opt) == ["Relu", "Add"]  # x + 0, 1 * a and the all-true mask are gone
    assert opt.graph.nodes[0].inputs[0].name == "x"
    feeds = {"x": np.random.default_rng(7).standard_normal((2, 4)).astype(np.float32)}
    _same(run(m, feeds), run(opt, feeds))


def _scaled_linear(relu_after: bool, bias: bool = True) -> Model:
    x = tval("x", (2, 3, 8))
    mm, lin, r, t, scaled, out = (tval(k) for k in ("mm", "lin", "r", "t", "scaled", "out"))
    rng = np.random.default_rng(8)
    w, b = c("w", rng.standard_normal((8, 8))), c("b", rng.standard_normal(8))
    shape, s = c("shape", [2, 3, 2, 4], np.int64), c("s", 0.35355338)
    linear = [Node("MatMul", [x, w], [mm]), Node("Add", [mm, b], [lin])] if bias else \
        [Node("MatMul", [x, w], [lin])]
    nodes = linear + [Node("Reshape", [lin, shape], [r]),
             Node("Transpose", [r], [t], attributes=[ints("perm", [0, 2, 1, 3])]),
             Node("Mul", [t, s], [scaled])]
    if relu_after:
        nodes.append(Node("Relu", [scaled], [out]))
    return model_of(nodes, [x], [out if relu_after else scaled], [w, b, shape, s])


@pytest.mark.parametrize("bias", [True, False])
def test_scale_folds_into_linear_weights(bias: bool) -> None:
    from pyonnx.optimizer.passes import FoldScaleIntoWeights

    m = _scaled_linear(True, bias)
    opt = _apply(copy_model(m), FoldScaleIntoWeights())
    assert ops(opt) == ["MatMul"] + ["Add"] * bias + ["Reshape", "Transpose", "Relu"]
    feeds = {"x": np.random.default_rng(9).standard_normal((2, 3, 8)).astype(np.float32)}
    _same(run(m, feeds), run(opt, feeds))
    # a Mul whose output is a graph output stays, and the weights stay unscaled
    m2 = _scaled_linear(False)
    opt2 = _apply(copy_model(m2), FoldScaleIntoWeights())
    assert ops(opt2)[-1] == "Mul"
    _same(run(m2, feeds), run(opt2, feeds))


def test_if_with_a_constant_condition_is_inlined() -> None:
    from pyonnx.optimizer.passes import InlineConstantIf

    x = tval("x", (3,))
    t_out, e_out, y, out = tval("t_out"), tval("e_out"), tval("y"), tval("out")
    then = Graph("then", outputs=[t_out], nodes=[Node("Relu", [x], [t_out])])
    els = Graph("else", outputs=[e_out], nodes=[Node("Neg", [x], [e_out])])
    cond = init("cond", np.array(True))
    node = Node("If", [cond], [y], attributes=[
        Attribute("then_branch", AttributeType.GRAPH, then),
        Attribute("else_branch", AttributeType.GRAPH, els)])
    m = model_of([node, Node("Abs", [y], [out])], [x], [out], [cond])
    then.parent = els.parent = m.graph
    opt = _apply(copy_model(m), InlineConstantIf())
    assert ops(opt) == ["Relu", "Abs"]
    feeds = {"x": np.array([-1.0, 0.5, 2.0], np.float32)}
    _same(run(m, feeds), run(opt, feeds))


def test_session_file_of_an_ir3_model_passes_the_checker(tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                       "light_squeezenet.onnx")
    so = pyonnx.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    sess = pyonnx.InferenceSession(src, so)
    onnx.checker.check_model(so.optimized_model_filepath, full_check=True)
    saved = pyonnx.load(so.optimized_model_filepath)
    assert {n.domain for n in saved.graph.nodes} <= {"", MS}
    feeds = {sess.get_inputs()[0].name: np.random.default_rng(10).standard_normal(
        (1, 3, 224, 224)).astype(np.float32)}
    got = _ort_outputs(so.optimized_model_filepath, feeds)
    _same(_ort_outputs(src, feeds), got)


def test_matmul_of_a_transposed_operand_to_fused_matmul(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pyonnx.optimizer.passes import FuseMatMulTranspose

    a, b = tval("a", (2, 3, 4, 5)), tval("b", (2, 3, 6, 5))
    bt, out = tval("bt"), tval("out", (2, 3, 4, 6))
    m = model_of([Node("Transpose", [b], [bt], attributes=[ints("perm", [0, 1, 3, 2])]),
                  Node("MatMul", [a, bt], [out])], [a, b], [out])
    opt = _apply(copy_model(m), FuseMatMulTranspose())
    assert ops(opt) == ["FusedMatMul"] and opt.graph.nodes[0].attributes["transB"].value == 1
    rng = np.random.default_rng(11)
    feeds = {"a": rng.standard_normal((2, 3, 4, 5)).astype(np.float32),
             "b": rng.standard_normal((2, 3, 6, 5)).astype(np.float32)}
    want = run(m, feeds)
    _same(want, run(opt, feeds))
    path = str(tmp_path / "fm.onnx")
    pyonnx.save(opt, path)
    onnx.checker.check_model(path, full_check=True)
    _same(want, _ort_outputs(path, feeds))


def test_no_op_cast_and_slice_and_slice_merging() -> None:
    from pyonnx.optimizer.passes import EliminateNoOps

    x = tval("x", ("n", 6, 8))
    cx, full, s1, s2, out = (tval(k) for k in ("cx", "full", "s1", "s2", "out"))
    big = c("big", [2 ** 63 - 1], np.int64)
    zero, one, two, three = (c(k, [v], np.int64) for k, v in
                             (("zero", 0), ("one", 1), ("two", 2), ("three", 3)))
    m = model_of([Node("Cast", [x], [cx], attributes=[Attribute("to", AttributeType.INT, 1)]),
                  Node("Slice", [cx, zero, big, zero], [full]),  # keeps everything
                  Node("Slice", [full, one, three, one], [s1]),  # axis 1: 1..3
                  Node("Slice", [s1, zero, two, two], [s2]),  # axis 2: 0..2
                  Node("Relu", [s2], [out])], [x], [out], [big, zero, one, two, three])
    opt = _apply(copy_model(m), EliminateNoOps())
    assert ops(opt) == ["Slice", "Relu"] and opt.graph.nodes[0].inputs[0].name == "x"
    feeds = {"x": np.random.default_rng(12).standard_normal((2, 6, 8)).astype(np.float32)}
    _same(run(m, feeds), run(opt, feeds))


def test_cli_optimize_writes_the_model_and_reports_counts(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from pyonnx.cli.main import main

    src, out = str(tmp_path / "in.onnx"), str(tmp_path / "out.onnx")
    pyonnx.save(_gelu_model("erf", True), src)
    assert main(["optimize", src, out, "--level", "extended", "--verify", "1"]) == 0
    text = capsys.readouterr().out
    assert "com.microsoft::BiasGelu" in text and "Erf" in text
    assert "6 -> 1 nodes (extended, verified on 1 random input set(s))" in text
    assert ops(pyonnx.load(out)) == ["BiasGelu"]
    assert main(["optimize", src, out, "--passes", "no_such_pass"]) == 1
    assert "unknown pass" in capsys.readouterr().err
