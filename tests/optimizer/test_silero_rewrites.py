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
