"""The in-memory model: Model, Graph, Function, Node, Value, Attribute.

Values link producers and consumers: ``value.producer`` is the node that computes it (``None`` for
graph inputs, initializers and outer-scope captures) and ``value.uses`` lists ``(node, index)``
pairs in the order they were connected. Nodes keep those links up to date when their inputs change
(:meth:`Node.set_input`), so passes and tools never maintain them by hand.

A subgraph (If branch, Loop body) is a :class:`Graph` whose nodes may take as input a Value of an
enclosing graph: that is how outer-scope reads are represented.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from typing import Any

from pyonnx.ir.tensor import SparseTensor, Tensor
from pyonnx.ir.types import Type

__all__ = ["AttributeType", "Attribute", "Value", "Node", "Graph", "Function", "Model"]


class AttributeType(enum.IntEnum):
    """``AttributeProto.AttributeType`` codes."""

    UNDEFINED = 0
    FLOAT = 1
    INT = 2
    STRING = 3
    TENSOR = 4
    GRAPH = 5
    FLOATS = 6
    INTS = 7
    STRINGS = 8
    TENSORS = 9
    GRAPHS = 10
    SPARSE_TENSOR = 11
    SPARSE_TENSORS = 12
    TYPE_PROTO = 13
    TYPE_PROTOS = 14


class Attribute:
    """A node attribute: a typed value, or (inside a function) a reference to a caller's attribute.

    Values by type: FLOAT float, INT int, STRING str, TENSOR :class:`Tensor`, GRAPH :class:`Graph`,
    SPARSE_TENSOR :class:`SparseTensor`, TYPE_PROTO a :data:`Type`, and lists of those for the
    plural types. ``ref_attr_name`` is set when the value comes from the enclosing function call.
    """

    __slots__ = ("name", "type", "value", "ref_attr_name", "doc_string")

    def __init__(self, name: str, type: AttributeType, value: Any, *,
                 ref_attr_name: str = "", doc_string: str = "") -> None:
        self.name = name
        self.type = AttributeType(type)
        self.value = value
        self.ref_attr_name = ref_attr_name
        self.doc_string = doc_string

    def __repr__(self) -> str:
        if self.ref_attr_name:
            return f"Attribute({self.name!r}, ref={self.ref_attr_name!r})"
        return f"Attribute({self.name!r}, {self.type.name}, {self.value!r})"


class Value:
    """A named edge of the graph: a graph input, an initializer, or a node output.

    ``type`` is the declared or inferred type (None when unknown). ``const_value`` holds the data
    of an initializer (a :class:`Tensor` or :class:`SparseTensor`).
    """

    __slots__ = ("name", "type", "producer", "producer_index", "uses", "const_value",
                 "doc_string", "metadata_props", "__weakref__")

    def __init__(self, name: str, type: Type | None = None, *,
                 const_value: Tensor | SparseTensor | None = None, doc_string: str = "",
                 metadata_props: dict[str, str] | None = None) -> None:
        self.name = name
        self.type = type
        self.producer: Node | None = None
        self.producer_index = -1
        self.uses: list[tuple[Node, int]] = []
        self.const_value = const_value
        self.doc_string = doc_string
        self.metadata_props = dict(metadata_props or {})

    def __repr__(self) -> str:
        return f"Value({self.name!r}, {self.type})"


class Node:
    """One operator application: ``op_type`` in ``domain`` applied to inputs, giving outputs.

    ``inputs`` may contain ``None`` for an omitted optional input (an empty name in the file).
    Outputs with an empty name in the file are Values whose name is ``""``.
    """

    __slots__ = ("op_type", "domain", "name", "overload", "inputs", "outputs", "attributes",
                 "doc_string", "metadata_props", "graph", "__weakref__")

    def __init__(self, op_type: str, inputs: Iterable[Value | None] = (),
                 outputs: Iterable[Value] = (), *, domain: str = "", name: str = "",
                 attributes: Iterable[Attribute] = (), overload: str = "",
                 doc_string: str = "", metadata_props: dict[str, str] | None = None) -> None:
        self.op_type = op_type
        self.domain = domain
        self.name = name
        self.overload = overload
        self.doc_string = doc_string
        self.metadata_props = dict(metadata_props or {})
        self.attributes: dict[str, Attribute] = {}
        for a in attributes:
            self.attributes[a.name] = a
        self.graph: Graph | None = None
        self.inputs: list[Value | None] = []
        for v in inputs:
            self.inputs.append(v)
            if v is not None:
                v.uses.append((self, len(self.inputs) - 1))
        self.outputs: list[Value] = list(outputs)
        for i, v in enumerate(self.outputs):
            v.producer = self
            v.producer_index = i

    def set_input(self, index: int, value: Value | None) -> None:
        """Replace input ``index``, updating the use lists of the old and new values."""
        old = self.inputs[index]
        if old is not None:
            old.uses = [(n, i) for (n, i) in old.uses if not (n is self and i == index)]
        self.inputs[index] = value
        if value is not None:
            value.uses.append((self, index))

    def detach(self) -> None:
        """Remove this node's uses from its inputs (before dropping the node from a graph)."""
        for i in range(len(self.inputs)):
            self.set_input(i, None)

    def subgraphs(self) -> Iterator["Graph"]:
        """The graphs held by GRAPH and GRAPHS attributes."""
        for a in self.attributes.values():
            if a.type == AttributeType.GRAPH:
                yield a.value
            elif a.type == AttributeType.GRAPHS:
                yield from a.value

    def describe(self) -> str:
        """How error messages name this node: ``node 'conv1' (Conv)``."""
        dom = f"{self.domain}::" if self.domain not in ("", "ai.onnx") else ""
        label = f"node {self.name!r}" if self.name else "unnamed node"
        return f"{label} ({dom}{self.op_type})"

    def __repr__(self) -> str:
        return (f"Node({self.op_type!r}, name={self.name!r}, "
                f"inputs={[v.name if v else '' for v in self.inputs]}, "
                f"outputs={[v.name for v in self.outputs]})")


class Graph:
    """A list of nodes in (intended) topological order with its inputs, outputs and constants.

    ``initializers`` maps names to Values carrying a :class:`Tensor`; initializers that are also
    graph inputs appear in both (they are the overridable ones). ``sparse_initializers`` likewise
    for :class:`SparseTensor` constants. ``value_info`` lists the intermediate values that carry a
    type annotation. ``parent`` is the enclosing graph of a subgraph.
    """

    def __init__(self, name: str = "", *, inputs: Iterable[Value] = (),
                 outputs: Iterable[Value] = (), nodes: Iterable[Node] = (),
                 initializers: Iterable[Value] = (), doc_string: str = "") -> None:
        self.name = name
        self.doc_string = doc_string
        self.inputs: list[Value] = list(inputs)
        self.outputs: list[Value] = list(outputs)
        self.initializers: dict[str, Value] = {v.name: v for v in initializers}
        self.sparse_initializers: dict[str, Value] = {}
        self.value_info: list[Value] = []
        self.quantization_annotation: list[tuple[str, dict[str, str]]] = []
        self.metadata_props: dict[str, str] = {}
        self.parent: Graph | None = None
        self.nodes: list[Node] = []
        for n in nodes:
            self.append(n)

    def append(self, node: Node) -> Node:
        """Add a node at the end and make this graph its owner."""
        node.graph = self
        self.nodes.append(node)
        return node

    def insert_before(self, node: Node, before: Node) -> Node:
        """Add ``node`` just before ``before`` (a node of this graph): a rewrite that computes a
        value for ``before`` keeps the topological order this way."""
        if before.graph is not self:
            raise ValueError(f"{before.describe()} is not a node of graph {self.name!r}")
        node.graph = self
        self.nodes.insert(self.nodes.index(before), node)
        return node

    def add_initializer(self, value: Value) -> Value:
        """Make ``value`` (which carries its ``const_value``) the initializer of its name, in
        place of any earlier one of that name (a rewrite that recomputes a constant)."""
        if value.const_value is None:
            raise ValueError(f"initializer {value.name!r} has no const_value")
        self.initializers[value.name] = value
        return value

    def add_output(self, value: Value) -> None:
        """Expose ``value`` (computed in this graph) as one more graph output."""
        self.outputs.append(value)

    def replace_output(self, index: int, value: Value) -> None:
        """Make ``value`` graph output ``index`` in place of the current one (a rewrite that
        computes the output another way keeps the output's position and, by naming ``value``
        after it, its name)."""
        self.outputs[index] = value

    def remove(self, node: Node) -> None:
        """Drop a node and its input uses (its outputs must no longer be used)."""
        node.detach()
        self.nodes.remove(node)
        node.graph = None

    def remove_many(self, nodes: Iterable[Node]) -> None:
        """Drop several nodes at once (their outputs must no longer be used outside them): one
        pass over the node list and one filter per input value, instead of one per node."""
        doomed = {id(n): n for n in nodes}
        if not doomed:
            return
        touched: dict[int, Value] = {}
        for n in doomed.values():
            for v in n.inputs:
                if v is not None:
                    touched[id(v)] = v
            n.graph = None
        for v in touched.values():
            v.uses = [(n, i) for (n, i) in v.uses if id(n) not in doomed]
        for n in doomed.values():
            n.inputs = [None] * len(n.inputs)
        self.nodes = [n for n in self.nodes if id(n) not in doomed]

    def all_nodes(self) -> Iterator[Node]:
        """Every node of this graph and, recursively, of its subgraphs."""
        for n in self.nodes:
            yield n
            for g in n.subgraphs():
                yield from g.all_nodes()

    def depth(self) -> int:
        """How deeply this graph is nested (0 for a main graph)."""
        d, g = 0, self.parent
        while g is not None:
            d, g = d + 1, g.parent
        return d

    def __repr__(self) -> str:
        return (f"Graph({self.name!r}, {len(self.nodes)} nodes, "
                f"inputs={[v.name for v in self.inputs]}, outputs={[v.name for v in self.outputs]})")


class Function:
    """A model-local function (FunctionProto): a reusable body called as ``domain::name``.

    ``graph`` holds the body; its inputs and outputs are untyped Values named as the function's
    formal parameters. ``attributes`` lists the attribute names the body may reference;
    ``attribute_defaults`` those of them with a default value.
    """

    def __init__(self, domain: str, name: str, graph: Graph, *, overload: str = "",
                 attributes: Iterable[str] = (), attribute_defaults: Iterable[Attribute] = (),
                 opset_imports: dict[str, int] | None = None, doc_string: str = "",
                 metadata_props: dict[str, str] | None = None) -> None:
        self.domain = domain
        self.name = name
        self.overload = overload
        self.graph = graph
        self.attributes = list(attributes)
        self.attribute_defaults: dict[str, Attribute] = {a.name: a for a in attribute_defaults}
        self.opset_imports: dict[str, int] = dict(opset_imports or {})
        self.doc_string = doc_string
        self.metadata_props = dict(metadata_props or {})

    @property
    def key(self) -> tuple[str, str, str]:
        """How nodes find this function: (domain, name, overload)."""
        return (self.domain, self.name, self.overload)

    def __repr__(self) -> str:
        return f"Function({self.domain}::{self.name}, {len(self.graph.nodes)} nodes)"


class Model:
    """A whole model: the main graph, its opset imports, model-local functions and metadata.

    ``base_dir`` is the folder external data is resolved against (the real folder of the file the
    model was loaded from). ``training_info`` keeps TrainingInfoProto messages as serialized bytes:
    pyonnx does not run them but never drops them. ``stated_fields`` names the header fields
    (``producer_name``, ``producer_version``, ``domain``, ``model_version``, ``doc_string``) that
    the file states although they hold their default (``""`` or 0), as exporters such as
    skl2onnx write them: saving and printing keep them as they were read, as onnx does.
    """

    def __init__(self, graph: Graph, *, ir_version: int = 10,
                 opset_imports: dict[str, int] | None = None, producer_name: str = "",
                 producer_version: str = "", domain: str = "", model_version: int = 0,
                 doc_string: str = "", functions: Iterable[Function] = (),
                 metadata_props: dict[str, str] | None = None) -> None:
        self.graph = graph
        self.ir_version = ir_version
        self.opset_imports: dict[str, int] = ({"": 21} if opset_imports is None
                                              else dict(opset_imports))
        self.producer_name = producer_name
        self.producer_version = producer_version
        self.domain = domain
        self.model_version = model_version
        self.doc_string = doc_string
        self.functions: list[Function] = list(functions)
        self.metadata_props: dict[str, str] = dict(metadata_props or {})
        self.training_info: list[bytes] = []
        self.configuration: list[bytes] = []
        self.base_dir: str | None = None
        self.stated_fields: set[str] = set()

    def opset(self, domain: str = "") -> int | None:
        """The imported version of a domain (``""`` and ``"ai.onnx"`` are the same)."""
        if domain in ("", "ai.onnx"):
            v = self.opset_imports.get("")
            return v if v is not None else self.opset_imports.get("ai.onnx")
        return self.opset_imports.get(domain)

    def __repr__(self) -> str:
        return f"Model(ir_version={self.ir_version}, opsets={self.opset_imports}, {self.graph!r})"
