"""The rewrites that silero-vad's graph asked for: slices tiling an axis become one Split, an
integer times zero is a constant, ``x + 0`` can bypass an Add that is a graph output, and a
Conv whose data has an unknown rank still has known output channels (so a squeeze guard
``Gather(Shape(conv), 1) == 1`` folds and its If is inlined)."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.ir import Attribute, AttributeType, Model, Node
from pyonnx.optimizer import copy_model
from pyonnx.optimizer.passes import ConstantFolding, EliminateZeroMask, FuseSlicesToSplit
from tests.optimizer.test_offline_optimize import _apply, _same, c
from tests.optimizer.test_optimizer_passes import init, model_of, ops, run, tval


def _slices(pieces: list[tuple[int, int]], dim: int = 6, opset: int = 15) -> Model:
    x = tval("x", (2, dim, 3))
    nodes, outs, inits = [], [], []
    for k, (s, e) in enumerate(pieces):
        st, en, ax = c(f"s{k}", [s], np.int64), c(f"e{k}", [e], np.int64), c(f"a{k}", [1], np.int64)
        o = tval(f"y{k}")
        nodes.append(Node("Slice", [x, st, en, ax], [o]))
        outs.append(o)
        inits += [st, en, ax]
    return model_of(nodes, [x], outs, inits, opset=opset)


@pytest.mark.parametrize("opset", [11, 15])
@pytest.mark.parametrize("pieces", [[(0, 2), (2, 6)], [(2, 5), (0, 2), (5, 2 ** 63 - 1)]])
def test_slices_tiling_an_axis_become_one_split(pieces: list, opset: int) -> None:
    m = _slices(pieces, opset=opset)
    opt = _apply(copy_model(m), FuseSlicesToSplit())
    assert ops(opt) == ["Split"]
    split = opt.graph.nodes[0]
    assert split.attributes["axis"].value == 1
    assert [v.name for v in opt.graph.outputs] == [f"y{k}" for k in range(len(pieces))]
    feeds = {"x": np.arange(36, dtype=np.float32).reshape(2, 6, 3)}
    got, ref = run(opt, feeds), run(m, feeds)
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("pieces", [[(0, 2), (3, 6)],   # a gap
                                    [(0, 3), (2, 6)],   # an overlap
                                    [(0, 2), (2, 5)],   # the axis not covered to its end
                                    [(0, 6)]])          # one piece: nothing to merge
def test_slices_that_do_not_tile_the_axis_stay(pieces: list) -> None:
    m = _slices(pieces)
    assert not FuseSlicesToSplit()(m).modified
    assert set(ops(m)) == {"Slice"}


def test_integer_times_zero_is_a_constant_and_x_plus_0_bypasses_an_output_add() -> None:
    from pyonnx.ir import DataType, TensorType, Value

    sr = Value("sr", TensorType(DataType.INT64, ()))
    x = tval("x", (2, 3))
    h, z, zf, out = tval("h"), tval("z"), tval("zf"), tval("out", (2, 3))
    zero = c("zero", 0, np.int64)
    m = model_of([Node("Relu", [x], [h]), Node("Mul", [sr, zero], [z]),
                  Node("Cast", [z], [zf], attributes=[Attribute("to", AttributeType.INT, 1)]),
                  Node("Add", [h, zf], [out])], [x, sr], [out], [zero])
    opt = _apply(copy_model(m), EliminateZeroMask(), ConstantFolding())
    # Mul(sr, 0) -> 0, Cast(0) folds, Relu(x) + 0.0 -> Relu(x), which becomes the output "out"
    assert ops(opt) == ["Relu"]
    assert opt.graph.outputs[0].name == "out" and opt.graph.nodes[0].outputs[0].name == "out"
    assert opt.graph.outputs[0].type is not None  # the output keeps its declared type
    feeds = {"x": np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32),
             "sr": np.array(16000, np.int64)}
    _same(run(m, feeds), run(opt, feeds))


def test_float_times_zero_stays() -> None:
    x = tval("x", (2, 3))
    y, out = tval("y"), tval("out")
    zero = c("zero", 0.0)
    m = model_of([Node("Mul", [x, zero], [y]), Node("Relu", [y], [out])], [x], [out], [zero])
    assert not EliminateZeroMask()(m).modified  # x * 0 is NaN for x = inf or NaN


def test_conv_of_unknown_rank_data_has_known_channels() -> None:
    from pyonnx.ir import DataType, TensorType, Value
    from pyonnx.optimizer._facts import Facts

    x = Value("x", TensorType(DataType.FLOAT, None))  # rank unknown (an If's output, say)
    w = init("w", np.ones((5, 3, 1), np.float32))
    y = tval("y")
    m = model_of([Node("Conv", [x, w], [y])], [x], [y], [w])
    shape = Facts(m).shape(m.graph.nodes[0].outputs[0])
    assert shape is not None and len(shape) == 3 and shape[1] == 5  # [N?, 5, L?]
    assert not isinstance(shape[0], int) and not isinstance(shape[2], int)


# ------------------------------------------------------------------ If conditions and merging

def _branch(name: str, op: str, src, out_name: str):  # type: ignore[no-untyped-def]
    from pyonnx.ir import Graph

    o = tval(out_name)
    nodes = [Node(op, [src], [o])]
    return Graph(name, nodes=nodes, outputs=[o])


def _if(cond, then_g, else_g, outs):  # type: ignore[no-untyped-def]
    return Node("If", [cond], outs,
                attributes=[Attribute("then_branch", AttributeType.GRAPH, then_g),
                            Attribute("else_branch", AttributeType.GRAPH, else_g)])


def _two_ifs_model(negated: bool) -> Model:
    """c = (x.sum() > 0) [negated]; y1 = If(c, Neg(a), Relu(a)); y2 = If(c, Abs(b), Exp(b))."""
    from pyonnx.ir import DataType, TensorType, Value

    a, b = tval("a", (2, 3)), tval("b", (3,))
    s = tval("s")
    cond = Value("cond", TensorType(DataType.BOOL, ()))
    zero = c("zero", 0.0)
    nodes = [Node("ReduceSum", [a], [s], attributes=[Attribute("keepdims", AttributeType.INT,
                                                               0)]),
             Node("Greater", [s, zero], [cond])]
    cv = cond
    if negated:
        cv = Value("ncond", TensorType(DataType.BOOL, ()))
        nodes.append(Node("Not", [cond], [cv]))
    y1, y2 = tval("y1"), tval("y2")
    nodes.append(_if(cv, _branch("t1", "Neg", a, "t1o"), _branch("e1", "Relu", a, "e1o"), [y1]))
    nodes.append(_if(cv, _branch("t2", "Abs", b, "t2o"), _branch("e2", "Exp", b, "e2o"), [y2]))
    return model_of(nodes, [a, b], [y1, y2], [zero])


@pytest.mark.parametrize("negated", [False, True])
def test_ifs_on_one_condition_merge_and_a_negation_swaps_the_branches(negated: bool) -> None:
    from pyonnx.optimizer.passes import FoldIfNot, MergeIfs

    m = _two_ifs_model(negated)
    opt = _apply(copy_model(m), FoldIfNot(), MergeIfs())
    assert ops(opt) == ["ReduceSum", "Greater", "If"]
    merged = opt.graph.nodes[-1]
    assert [v.name for v in merged.outputs] == ["y1", "y2"]
    then_ops = [n.op_type for n in merged.attributes["then_branch"].value.nodes]
    assert then_ops == (["Relu", "Exp"] if negated else ["Neg", "Abs"])
    rng = np.random.default_rng(2)
    for sign in (1.0, -1.0):  # both conditions
        feeds = {"a": (sign * np.abs(rng.standard_normal((2, 3)))).astype(np.float32),
                 "b": rng.standard_normal(3).astype(np.float32)}
        _same(run(m, feeds), run(opt, feeds))


def test_an_if_that_reads_the_other_ifs_output_is_not_merged() -> None:
    from pyonnx.optimizer.passes import MergeIfs
    from pyonnx.ir import DataType, TensorType, Value

    a = tval("a", (2,))
    cond = Value("cond", TensorType(DataType.BOOL, ()))
    y1, y2 = tval("y1"), tval("y2")
    m = model_of([_if(cond, _branch("t1", "Neg", a, "t1o"), _branch("e1", "Relu", a, "e1o"),
                      [y1]),
                  _if(cond, _branch("t2", "Abs", y1, "t2o"), _branch("e2", "Exp", y1, "e2o"),
                      [y2])], [a, cond], [y2])
    assert not MergeIfs()(m).modified


# ------------------------------------------------------------------ Squeeze / Reduce / Unsqueeze

@pytest.mark.parametrize("opset", [15, 18])
def test_squeeze_reduce_unsqueeze_of_unit_axes_is_one_reduce(opset: int) -> None:
    from pyonnx.optimizer.passes import FoldSqueezeReduce

    x = tval("x", (2, 1, 5))
    s, r, y = tval("s"), tval("r"), tval("y")
    one = c("one", [1], np.int64)
    if opset >= 18:
        red = Node("ReduceMean", [s, one], [r],
                   attributes=[Attribute("keepdims", AttributeType.INT, 0)])
    else:
        red = Node("ReduceMean", [s], [r],
                   attributes=[Attribute("keepdims", AttributeType.INT, 0),
                               Attribute("axes", AttributeType.INTS, [1])])
    m = model_of([Node("Squeeze", [x, one], [s]), red, Node("Unsqueeze", [r, one], [y])],
                 [x], [y], [one], opset=opset)
    opt = _apply(copy_model(m), FoldSqueezeReduce())
    assert ops(opt) == ["ReduceMean"]  # ReduceMean(x, axes=[2], keepdims=0): [2, 1]
    feeds = {"x": np.random.default_rng(4).standard_normal((2, 1, 5)).astype(np.float32)}
    (ref,), (got,) = run(m, feeds), run(opt, feeds)
    assert got.shape == ref.shape == (2, 1)
    _same([ref], [got])


def test_squeeze_of_an_axis_not_known_to_be_1_stays() -> None:
    from pyonnx.optimizer.passes import FoldSqueezeReduce

    x = tval("x", (2, "n", 5))
    s, r, y = tval("s"), tval("r"), tval("y")
    one = c("one", [1], np.int64)
    m = model_of([Node("Squeeze", [x, one], [s]),
                  Node("ReduceMean", [s], [r],
                       attributes=[Attribute("keepdims", AttributeType.INT, 0),
                                   Attribute("axes", AttributeType.INTS, [1])]),
                  Node("Unsqueeze", [r, one], [y])], [x], [y], [one], opset=15)
    assert not FoldSqueezeReduce()(m).modified
