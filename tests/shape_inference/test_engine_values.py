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
