"""What an opset adapter works with: the graph being rewritten, known value types, constants.

An adapter receives a :class:`Ctx` and one node. Through the context it reads the constant data
behind an input (an initializer or a ``Constant`` node's output), the element type and rank that
shape inference found for a value, makes new constants (always ``Constant`` nodes, which every
opset and IR version accepts, also inside functions and subgraphs) and new nodes, and reports
that a node cannot be expressed with :class:`Refuse`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from pyonnx.errors import UnsupportedOperatorError
from pyonnx.ir import Attribute, AttributeType, DataType, Graph, Node, Tensor, TensorType, Value

__all__ = ["Ctx", "OpsetConversionError", "Refuse", "attr_value", "make_attr"]


class OpsetConversionError(UnsupportedOperatorError):
    """Some nodes of a model cannot be expressed at the target opset.

    ``problems`` lists one line per node (its name, op_type, the graph it is in, and why).
    Nothing is written when this is raised.
    """

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = list(problems)


class Refuse(Exception):
    """Raised by an adapter: this node has no equivalent at the target opset (the reason)."""


def make_attr(name: str, value: Any) -> Attribute:
    """An attribute whose AttributeProto type follows from the Python value."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return Attribute(name, AttributeType.INT, value)
    if isinstance(value, float):
        return Attribute(name, AttributeType.FLOAT, value)
    if isinstance(value, (str, bytes)):
        return Attribute(name, AttributeType.STRING, value if isinstance(value, str)
                         else value.decode())
    if isinstance(value, Tensor):
        return Attribute(name, AttributeType.TENSOR, value)
    if isinstance(value, Graph):
        return Attribute(name, AttributeType.GRAPH, value)
    if isinstance(value, (list, tuple)):
        items = list(value)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
            return Attribute(name, AttributeType.INTS, [int(v) for v in items])
        if all(isinstance(v, (int, float, np.floating, np.integer)) for v in items):
            return Attribute(name, AttributeType.FLOATS, [float(v) for v in items])
        if all(isinstance(v, str) for v in items):
            return Attribute(name, AttributeType.STRINGS, items)
    raise TypeError(f"attribute {name!r}: cannot encode {value!r}")


def attr_value(node: Node, name: str, default: Any = None) -> Any:
    """The value of attribute ``name`` of ``node`` (``default`` when absent)."""
    a = node.attributes.get(name)
    if a is None:
        return default
    if a.ref_attr_name:
        raise Refuse(f"attribute {name!r} refers to the enclosing function's attribute "
                     f"{a.ref_attr_name!r}; its value must be known to convert this node")
    v = a.value
    return list(v) if isinstance(v, (list, tuple)) else v


def constant_node_holds(dtype: np.dtype, opset: int) -> bool:
    """Whether a ``Constant`` node can hold this element type at ``opset`` (floats only
    before 9)."""
    return opset >= 9 or np.dtype(dtype) in (np.float16, np.float32, np.float64)


class Ctx:
    """The conversion state of one graph (or function body) and the model-wide facts.

    ``types`` answers ``get(name)`` with the type shape inference found before conversion; values the
    converter creates get their element type recorded in ``new_types`` when an adapter knows it.
    """

    def __init__(self, graph: Graph, types: Any, names: set[str],
                 counter: itertools.count, in_function: bool, target: int) -> None:
        self.graph = graph
        self.target = target
        self.types = types
        self.names = names
        self.counter = counter
        self.in_function = in_function
        self.current: Node | None = None  # the node being converted: new nodes go before it
        self.new_types: dict[int, DataType] = {}
        self.detached_consts: list[Value] = []

    # ---- names -----------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        """A value name not used anywhere in the model."""
        while True:
            name = f"{hint}__cv{next(self.counter)}"
            if name not in self.names:
                self.names.add(name)
                return name

    def value(self, hint: str, dtype: DataType | None = None) -> Value:
        v = Value(self.fresh(hint))
        if dtype is not None:
            self.new_types[id(v)] = dtype
        return v

    # ---- facts about values ---------------------------------------------------------------
    def type_of(self, v: Value | None) -> Any:
        if v is None:
            return None
        if v.type is not None:
            return v.type
        return self.types.get(v.name)

    def dtype(self, v: Value | None) -> DataType | None:
        """The element type of a tensor value, if known."""
        if v is None:
            return None
        if id(v) in self.new_types:
            return self.new_types[id(v)]
        c = self.const(v)
        if c is not None:
            return DataType.from_numpy(c.dtype) if c.dtype != object else DataType.STRING
        t = self.type_of(v)
        return t.elem_type if isinstance(t, TensorType) else None

    def shape(self, v: Value | None) -> tuple | None:
        """The dims (int, symbol or None each) of a tensor value, None if the rank is unknown."""
        c = self.const(v) if v is not None else None
        if c is not None:
            return tuple(c.shape)
        t = self.type_of(v)
        return tuple(t.shape) if isinstance(t, TensorType) and t.shape is not None else None

    def rank(self, v: Value | None) -> int | None:
        s = self.shape(v)
        return None if s is None else len(s)

    def const(self, v: Value | None) -> np.ndarray | None:
        """The data of ``v`` when it is a constant: a (non-overridable) initializer or the
        output of a ``Constant`` node with a ``value`` attribute."""
        if v is None:
            return None
        if v.const_value is not None and isinstance(v.const_value, Tensor):
            return v.const_value.numpy()
        p = v.producer
        if p is not None and p.op_type == "Constant" and p.domain in ("", "ai.onnx"):
            a = p.attributes.get("value")
            if a is not None and not a.ref_attr_name and isinstance(a.value, Tensor):
                return a.value.numpy()
            for key, dt in (("value_float", np.float32), ("value_int", np.int64)):
                a = p.attributes.get(key)
                if a is not None and not a.ref_attr_name:
                    return np.array(a.value, dtype=dt)
            for key, dt in (("value_floats", np.float32), ("value_ints", np.int64)):
                a = p.attributes.get(key)
                if a is not None and not a.ref_attr_name:
                    return np.array(list(a.value), dtype=dt)
        return None

    def need_const(self, node: Node, index: int, what: str) -> np.ndarray | None:
        """The constant data of input ``index`` (None when the input is absent); refuses when
        the input is computed at run time, since the target opset wants it as an attribute."""
        v = node.inputs[index] if index < len(node.inputs) else None
        if v is None:
            return None
        c = self.const(v)
        if c is None:
            raise Refuse(f"input {index} ({what}, {v.name!r}) is computed at run time; the "
                         f"target opset needs it as an attribute, so it must be a constant")
        return c

    def drop_input(self, node: Node, index: int) -> None:
        """Disconnect input ``index`` and trim trailing absent inputs (its constant producer is
        removed at the end if nothing else uses it)."""
        if index < len(node.inputs):
            old = node.inputs[index]
            node.set_input(index, None)
            if old is not None:
                self.detached_consts.append(old)
        while node.inputs and node.inputs[-1] is None:
            node.inputs.pop()

    def replace_const_input(self, node: Node, index: int, array: Any) -> None:
        """Input ``index`` becomes a new constant holding ``array`` (the old one is dropped
        when nothing else reads it)."""
        old = node.inputs[index]
        self.set_input(node, index, self.constant(array, f"{node.name or node.op_type}_{index}"))
        if old is not None:
            self.detached_consts.append(old)

    def set_input(self, node: Node, index: int, value: Value | None) -> None:
        """Set input ``index``, padding with absent inputs as needed."""
        while len(node.inputs) <= index:
            node.inputs.append(None)
        node.set_input(index, value)

    # ---- new nodes ---------------------------------------------------------------------------
    def constant(self, array: Any, hint: str = "const", dtype: Any = None) -> Value:
        """A new ``Constant`` node holding ``array``, placed before the node being converted
        (an initializer instead where the target's Constant cannot hold the type)."""
        arr = np.asarray(array, dtype=dtype) if dtype is not None else np.asarray(array)
        out = self.value(hint)
        if not constant_node_holds(arr.dtype, self.target):
            self.to_initializer(out, arr)
            return out
        node = Node("Constant", [], [out], name=self.fresh(f"{hint}_const"),
                    attributes=[Attribute("value", AttributeType.TENSOR,
                                          Tensor.from_numpy(arr, out.name))])
        self.place(node)
        self.new_types[id(out)] = DataType.from_numpy(arr.dtype)
        return out

    def to_initializer(self, value: Value, array: np.ndarray) -> None:
        """Make ``value`` an initializer of this graph holding ``array`` (Constant before opset
        9 holds float types only)."""
        if self.in_function:
            raise Refuse(f"a {array.dtype} constant is needed, and before opset 9 a function "
                         f"body (no initializers) can only hold float constants")
        value.producer, value.producer_index = None, -1
        value.const_value = Tensor.from_numpy(array, value.name)
        value.type = TensorType(DataType.from_numpy(array.dtype) if array.dtype != object
                                else DataType.STRING, tuple(array.shape))
        self.new_types[id(value)] = value.type.elem_type
        self.graph.initializers[value.name] = value

    def place(self, node: Node) -> None:
        """Insert ``node`` before the node being converted."""
        if self.current is not None and self.current.graph is self.graph:
            self.graph.insert_before(node, self.current)
        else:
            self.graph.append(node)

    def node(self, op_type: str, inputs: Sequence[Value | None], n_outputs: int = 1, *,
             outputs: Iterable[Value] | None = None, **attrs: Any) -> Node:
        """A new default-domain node (not yet placed: the adapter returns it)."""
        outs = list(outputs) if outputs is not None else [
            self.value(op_type.lower()) for _ in range(n_outputs)]
        base = self.current.name if self.current is not None and self.current.name else op_type
        return Node(op_type, list(inputs), outs, name=self.fresh(f"{base}_{op_type}"),
                    attributes=[make_attr(k, v) for k, v in attrs.items() if v is not None])
