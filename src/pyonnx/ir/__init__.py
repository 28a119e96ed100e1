"""The in-memory IR: no protobuf here, only Python objects and NumPy arrays."""

from pyonnx.ir.dtypes import DataType
from pyonnx.ir.graph import Attribute, AttributeType, Function, Graph, Model, Node, Value
from pyonnx.ir.lint import assert_lint_clean, lint
from pyonnx.ir.tensor import SparseTensor, Tensor
from pyonnx.ir.types import (
    Dim,
    MapType,
    OpaqueType,
    OptionalType,
    SequenceType,
    Shape,
    SparseTensorType,
    TensorType,
    Type,
)

__all__ = [
    "DataType", "Attribute", "AttributeType", "Function", "Graph", "Model", "Node", "Value",
    "SparseTensor", "Tensor", "Dim", "MapType", "OpaqueType", "OptionalType", "SequenceType",
    "Shape", "SparseTensorType", "TensorType", "Type", "lint", "assert_lint_clean",
]
