"""Files pyonnx writes are valid ONNX that onnxruntime runs, also where the IR version imposes
rules a rewrite can break (before IR 4 every initializer must be a graph input)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx's checker is the oracle (test extra)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle (test extra)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import pyonnx  # noqa: E402


def _ir3_model() -> bytes:
    """y = x + (a * b), a and b initializers listed as inputs (IR 3): folding a * b creates a
    new initializer that IR 3 also requires to be an input."""
    a = numpy_helper.from_array(np.full((2,), 2.0, np.float32), "a")
    b = numpy_helper.from_array(np.full((2,), 3.0, np.float32), "b")
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("x", "a", "b")]
    g = helper.make_graph(
        [helper.make_node("Mul", ["a", "b"], ["ab"]), helper.make_node("Add", ["x", "ab"], ["y"])],
        "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], [a, b])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 8)], ir_version=3)
    return m.SerializeToString()


def test_ir3_model_optimized_to_a_file_is_valid(tmp_path) -> None:  # type: ignore[no-untyped-def]
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_ENABLE_BASIC
    path = str(tmp_path / "opt.onnx")
    so.optimized_model_filepath = path
    x = np.arange(2, dtype=np.float32)
    ours = pyonnx.InferenceSession(_ir3_model(), so).run(None, {"x": x})[0]
    written = onnx.load(path)
    assert [n.op_type for n in written.graph.node] == ["Add"]  # the Mul was folded
    onnx.checker.check_model(written, full_check=True)
    inputs = {i.name for i in written.graph.input}
    # the optimizer restates an IR-3 model in IR 4 (its initializers leave the input list);
    # written as IR 3, every initializer must be an input
    assert written.ir_version >= 4 or {i.name for i in written.graph.initializer} <= inputs
    assert "x" in inputs and not {"a", "b"} & inputs  # constants stay constants
    theirs = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(ours, x + 6.0)
    np.testing.assert_array_equal(theirs, ours)


def test_ir3_serialize_adds_missing_initializer_inputs() -> None:
    m = pyonnx.load(_ir3_model())
    m.graph.inputs = [v for v in m.graph.inputs if v.name == "x"]  # as a rewrite may leave it
    out = onnx.load_from_string(pyonnx.serialize(m))
    onnx.checker.check_model(out, full_check=True)
    assert [i.name for i in out.graph.input] == ["x", "a", "b"]
    m.ir_version = 4  # from IR 4 on, initializers need not be inputs: nothing is added
    out = onnx.load_from_string(pyonnx.serialize(m))
    assert [i.name for i in out.graph.input] == ["x"]


@pytest.mark.parametrize("dim", [-1, 2**63, 2**70])
def test_a_dim_outside_int64_sizes_is_refused_when_writing(dim: int) -> None:
    """A hand-built IR may hold any int as a dim; the file holds int64 sizes: writing one outside
    0..2**63-1 is an InvalidArgument naming it, never a protobuf ValueError or a silent -1."""
    from pyonnx.errors import InvalidArgument
    from pyonnx.ir import DataType, Graph, Model, Node, TensorType, Value

    x = Value("x", TensorType(DataType.FLOAT, (dim, 2)))
    y = Value("y", TensorType(DataType.FLOAT, (dim, 2)))
    m = Model(Graph("g", inputs=[x], outputs=[y], nodes=[Node("Relu", [x], [y])]))
    with pytest.raises(InvalidArgument, match=f"dimension 0 .* is {dim}"):
        pyonnx.serialize(m)
