"""Small graph-editing helpers shared by the quantization rewrites: fresh names, initializers,
node insertion, and the loading / saving around every public entry point."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from pyonnx.errors import InvalidArgument
from pyonnx.ir import (Attribute, AttributeType, DataType, Graph, Model, Node, Tensor, TensorType,
                       Value)

__all__ = ["Editor", "load_input", "check_output_path", "ensure_opset", "float_type_of",
           "drop_unused_initializers", "all_value_names"]


def all_value_names(model: Model) -> set[str]:
    """Every value and node name of the model, subgraphs included."""
    from pyonnx.optimizer._core import all_graphs

    names: set[str] = set()
    for g in all_graphs(model.graph):
        names.update(v.name for v in g.inputs)
        names.update(g.initializers)
        for n in g.nodes:
            names.add(n.name)
            names.update(v.name for v in n.outputs)
    return names


class Editor:
    """Adds values, initializers and nodes to one graph under names no other element has."""

    def __init__(self, model: Model, graph: Graph | None = None,
                 names: set[str] | None = None) -> None:
        self.model = model
        self.graph = graph if graph is not None else model.graph
        self.names = names if names is not None else all_value_names(model)

    def fresh(self, base: str) -> str:
        """``base`` or, when taken, ``base_1``, ``base_2``…; reserved from then on."""
        name, k = base, 0
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def initializer(self, base: str, array: np.ndarray) -> Value:
        """A new initializer holding ``array`` (its dtype is the element type)."""
        arr = np.asarray(array)
        name = self.fresh(base)
        dt = DataType.from_numpy(arr.dtype)
        v = Value(name, TensorType(dt, tuple(arr.shape)),
                  const_value=Tensor(name, dt, arr.shape, arr))
        self.graph.initializers[name] = v
        return v

    def value(self, base: str, elem_type: DataType | None = None,
              shape: Sequence[Any] | None = None) -> Value:
        """A new intermediate value (typed when ``elem_type`` is given)."""
        t = TensorType(elem_type, None if shape is None else tuple(shape)) if elem_type else None
        return Value(self.fresh(base), t)

    def node(self, op_type: str, inputs: Iterable[Value | None], outputs: Iterable[Value], *,
             before: Node | None = None, domain: str = "", name: str | None = None,
             **attrs: Any) -> Node:
        """A new node inserted before ``before`` (appended when None); attributes from Python
        values (int, float, str, lists of int or float)."""
        attributes = [_attribute(k, v) for k, v in attrs.items() if v is not None]
        n = Node(op_type, inputs, outputs, domain=domain,
                 name=self.fresh(name or op_type), attributes=attributes)
        if before is None:
            self.graph.append(n)
        else:
            self.graph.insert_before(n, before)
        return n


def _attribute(name: str, value: Any) -> Attribute:
    if isinstance(value, Attribute):
        return Attribute(name, value.type, value.value)
    if isinstance(value, bool) or isinstance(value, (int, np.integer)):
        return Attribute(name, AttributeType.INT, int(value))
    if isinstance(value, (float, np.floating)):
        return Attribute(name, AttributeType.FLOAT, float(value))
    if isinstance(value, str):
        return Attribute(name, AttributeType.STRING, value)
    if isinstance(value, (list, tuple)):
        if all(isinstance(x, (int, np.integer)) for x in value):
            return Attribute(name, AttributeType.INTS, [int(x) for x in value])
        return Attribute(name, AttributeType.FLOATS, [float(x) for x in value])
    if isinstance(value, Tensor):
        return Attribute(name, AttributeType.TENSOR, value)
    raise TypeError(f"attribute {name}: unsupported value {value!r}")


def load_input(model_input: Any, what: str = "model_input") -> Model:
    """The model to work on as a new Model: a path, bytes, an onnx ModelProto or a pyonnx
    Model (copied: the caller's object is never modified)."""
    from pyonnx.io import load
    from pyonnx.optimizer._copy import copy_model

    if isinstance(model_input, Model):
        return copy_model(model_input)
    if isinstance(model_input, (str, os.PathLike)) and not os.path.exists(model_input):
        raise InvalidArgument(f"{what}: no model file at {os.fspath(model_input)!r}")
    return load(model_input)


def check_output_path(path: Any, what: str = "model_output") -> str:
    """The output path as a string, after checking that a file can be written there (before
    any work is done, so that a long quantization does not fail at its last step)."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgument(f"{what} must be a file path, got {type(path).__name__}")
    p = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(p))
    if os.path.isdir(p):
        raise InvalidArgument(f"{what} {p!r} is a folder; give a file path")
    if not os.path.isdir(folder):
        raise InvalidArgument(f"{what} {p!r}: folder {folder!r} does not exist")
    if os.path.exists(p):
        if not os.access(p, os.W_OK):
            raise InvalidArgument(f"{what} {p!r} is not writable")
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidArgument(f"{what} {p!r}: folder {folder!r} is not writable")
    return p


def ensure_opset(model: Model, minimum: int) -> Model:
    """``model`` at default-domain opset ``minimum`` or above (converted when older)."""
    cur = model.opset("") or 1
    if cur >= minimum:
        return model
    from pyonnx.convert import convert_version

    return convert_version(model, minimum)


def ensure_ir_version(model: Model, minimum: int) -> None:
    """Raise the IR version when what was added (int4 types, newer opsets) needs it."""
    if model.ir_version < minimum:
        model.ir_version = minimum


def float_type_of(v: Value | None) -> DataType | None:
    """The element type of a tensor value when known."""
    if v is None:
        return None
    if v.const_value is not None and isinstance(v.const_value, Tensor):
        return v.const_value.data_type
    t = v.type
    if isinstance(t, TensorType):
        return t.elem_type
    return None


def const_array(v: Value | None) -> np.ndarray | None:
    """The data of an initializer. One also listed as a graph input (every initializer below
    IR 4) counts as a constant too, as onnxruntime's quantizer treats it: quantizing a weight
    that a caller overrides at run time is the caller's choice to make."""
    if v is None or v.const_value is None or not isinstance(v.const_value, Tensor):
        return None
    return v.const_value.numpy()


def drop_unused_initializers(model: Model) -> None:
    """Remove initializers no node reads that are neither graph inputs nor outputs."""
    from pyonnx.optimizer._core import all_graphs

    for g in all_graphs(model.graph):
        keep = {v.name for v in g.inputs} | {v.name for v in g.outputs}
        for name, v in list(g.initializers.items()):
            if not v.uses and name not in keep:
                del g.initializers[name]
