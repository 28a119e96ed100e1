"""FoldGatherNDGrid: GatherND at a full grid of coordinates (torch's vmap-built masks) becomes an
Unsqueeze of the gathered tensor, with the same results; grids that do not read every element
once in place (another order, an offset coordinate, a broadcast axis) stay GatherND."""

from __future__ import annotations

import numpy as np
import pytest

import pyonnx
from pyonnx.ir import Attribute, AttributeType, DataType, Graph, Model, Node, Tensor, TensorType, Value
from pyonnx.optimizer import PassManager, copy_model
from pyonnx.optimizer.passes import EliminateDeadCode, FoldGatherNDGrid

I64 = DataType.INT64


class _B:
    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.inits: list[Value] = []
        self.k = 0

    def c(self, arr: np.ndarray) -> Value:
        self.k += 1
        t = Tensor.from_numpy(arr, f"c{self.k}")
        v = Value(f"c{self.k}", TensorType(t.data_type, arr.shape), const_value=t)
        self.inits.append(v)
        return v

    def op(self, op_type: str, *ins: Value, dt: DataType = I64, **attrs: int) -> Value:
        self.k += 1
        out = Value(f"t{self.k}", TensorType(dt, None))
        at = [Attribute(k, AttributeType.INT, v) for k, v in attrs.items()]
        self.nodes.append(Node(op_type, list(ins), [out], attributes=at))
        return out


def _ints(*a: int) -> np.ndarray:
    return np.array(a, np.int64)


def _model(variant: str) -> Model:
    """y[b, 0, q, 0] = t[b, q] as torch's exporter writes it (``variant`` "grid"), or a grid
    that is not the identity: "swapped" (t[q, b] order), "offset" (q from Range(1, n + 1)),
    "wide" (an extra output axis of size S, not 1)."""
    b = _B()
    t = Value("t", TensorType(DataType.FLOAT, ("batch", "seq")))
    shp = b.op("Shape", t)
    nb = b.op("Squeeze", b.op("Slice", shp, b.c(_ints(0)), b.c(_ints(1))))
    ns = b.op("Squeeze", b.op("Slice", shp, b.c(_ints(1)), b.c(_ints(2))))
    zero, one = b.c(np.array(0, np.int64)), b.c(np.array(1, np.int64))
    rb = b.op("Unsqueeze", b.op("Range", zero, nb, one), b.c(_ints(1, 2, 3)))  # [B, 1, 1, 1]
    if variant == "offset":
        rq = b.op("Range", one, b.op("Add", ns, one), one)
    else:
        rq = b.op("Range", zero, ns, one)
    rq = b.op("Unsqueeze", rq, b.c(_ints(0, 1, 3)))  # [1, 1, S, 1]
    if variant == "wide":
        rk = b.op("Unsqueeze", b.op("Range", zero, ns, one), b.c(_ints(0, 1, 2)))  # [1, 1, 1, S]
        grid_shape = b.op("Shape", b.op("Max", b.op("Max", rb, rq), rk))
    else:
        grid_shape = b.op("Shape", b.op("Max", rb, rq))
    parts = [b.op("Unsqueeze", b.op("Expand", x, grid_shape), b.c(_ints(-1)))
             for x in ((rq, rb) if variant == "swapped" else (rb, rq))]
    idx = b.op("Concat", *parts, axis=-1)
    y = b.op("GatherND", t, idx, dt=DataType.FLOAT)
    y.name, y.type = "y", TensorType(DataType.FLOAT, None)
    g = Graph("g", inputs=[t], outputs=[y], nodes=b.nodes, initializers=b.inits)
    return Model(g, opset_imports={"": 18}, ir_version=9)


def _run(model: Model, feeds: dict) -> np.ndarray:
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL
    return pyonnx.InferenceSession(model, so).run(None, feeds)[0]


def _fold(model: Model) -> Model:
    return PassManager([FoldGatherNDGrid(), EliminateDeadCode()])(copy_model(model)).model


def test_the_exporters_grid_gather_is_an_unsqueeze():
    model = _model("grid")
    opt = _fold(model)
    ops = [n.op_type for n in opt.graph.nodes]
    assert ops == ["Unsqueeze"], ops  # the grid's construction went as dead code
    rng = np.random.default_rng(0)
    for shape in ((1, 1), (2, 5), (3, 7)):
        feeds = {"t": rng.standard_normal(shape).astype(np.float32)}
        want = _run(model, feeds)
        got = _run(opt, feeds)
        assert got.shape == want.shape == (shape[0], 1, shape[1], 1)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("variant", ["swapped", "offset", "wide"])
def test_other_grids_stay_gather_nd(variant):
    model = _model(variant)
    opt = _fold(model)
    assert any(n.op_type == "GatherND" for n in opt.graph.nodes)
    rng = np.random.default_rng(1)
    shape = (4, 4) if variant == "swapped" else (2, 5)
    feeds = {"t": rng.standard_normal(shape).astype(np.float32)}
    if variant == "offset":  # index seq is out of range: both fail alike
        with pytest.raises(pyonnx.PyOnnxError):
            _run(model, feeds)
        return
    np.testing.assert_array_equal(_run(opt, feeds), _run(model, feeds))


def test_shared_gpt2_mask_loses_its_gathers():
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "models",
                        "gpt2_small.onnx")
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent (the shared models come with the project's CI)")
    opt = pyonnx.optimize(pyonnx.load(path), level="basic")
    assert not any(n.op_type == "GatherND" for n in opt.graph.nodes)
