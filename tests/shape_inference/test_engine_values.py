"""The engine's value tracking (shape values it propagates between nodes)."""

from __future__ import annotations

from pyonnx.ir import DataType, Graph, Model, TensorType, Value
from pyonnx.shape_inference.engine import Partial, _Engine


def test_dims_beyond_the_value_type_are_an_unknown_value() -> None:
    """Shape arithmetic on hostile dims can leave the int64 range (a fuzz finding raised
    OverflowError); such a value is unknown, not an error."""
    v = Value("s", TensorType(DataType.INT64, (2,)))
    model = Model(Graph("g", inputs=[], outputs=[], nodes=[]), opset_imports={"": 18})
    engine = _Engine(model, data_prop=True, strict=False)
    engine.values[id(v)] = Partial((3, 2**63))
    assert engine.value_of(v) is None
    engine.values[id(v)] = Partial((3, 2**62))
    assert engine.value_of(v).tolist() == [3, 2**62]


def test_scan_with_num_scan_inputs_out_of_range_fails_at_once() -> None:
    """A hostile num_scan_inputs (-2**31) made the Scan rule loop over two billion states (a
    fuzz finding: a hang); it is a shape-inference error naming the attribute."""
    import pytest
    from onnx import TensorProto, helper

    import pyonnx
    from pyonnx.errors import ShapeInferenceError

    body = helper.make_graph(
        [helper.make_node("Add", ["s", "x"], ["s2"]), helper.make_node("Identity", ["s2"], ["y"])],
        "body", [helper.make_tensor_value_info("s", TensorProto.FLOAT, [2]),
                 helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("s2", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    for m in (-2**31, 0, 3):
        g = helper.make_graph(
            [helper.make_node("Scan", ["init", "xs"], ["final", "ys"], body=body,
                              num_scan_inputs=m)], "g",
            [helper.make_tensor_value_info("init", TensorProto.FLOAT, [2]),
             helper.make_tensor_value_info("xs", TensorProto.FLOAT, [3, 2])],
            [helper.make_tensor_value_info("final", TensorProto.FLOAT, None),
             helper.make_tensor_value_info("ys", TensorProto.FLOAT, None)])
        model = pyonnx.load(helper.make_model(
            g, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString())
        with pytest.raises(ShapeInferenceError, match=f"num_scan_inputs is {m}"):
            pyonnx.infer_shapes(model, strict=True)
