"""Rules on a graph: names, single static assignment, topological order, defined inputs and
outputs, well-formed value types, and its constants. Subgraphs (GRAPH/GRAPHS attributes) are
walked from the node that holds them, with the enclosing graphs as their outer scope.

What the IR specification says, and how it is checked here:

* a value name has one definition per graph: a graph input, an initializer or a node output. The
  one exception: a name may be both a graph input and an initializer (an overridable constant),
  except in subgraphs from IR version 4 on;
* a node output in a subgraph must differ from every name visible from the enclosing graphs
  (values computed before the node that holds the subgraph, as ``onnx.checker`` scopes them);
  a subgraph *input* may reuse an outer name (it shadows it), as the spec does not forbid it;
* a node input names a graph input, an initializer, an output of an earlier node, or (in a
  subgraph) a value of an enclosing graph defined before the node that holds the subgraph;
* a graph output names a value defined in that same graph (a subgraph that returns an outer
  value must pass it through a node such as Identity);
* up to IR version 3, every initializer is also a graph input;
* every graph has a name, and the main graph's inputs and outputs have a type with a known
  element type and a shape (the rank), while subgraph inputs and outputs may leave them out.
"""

from __future__ import annotations

import dataclasses

from pyonnx.checker._context import CheckContext, GraphEnv, node_label
from pyonnx.checker.node_rules import check_node, check_node_types
from pyonnx.checker.tensor_rules import check_sparse_tensor, check_tensor
from pyonnx.ir import (
    AttributeType,
    DataType,
    Graph,
    MapType,
    Node,
    OpaqueType,
    OptionalType,
    SequenceType,
    SparseTensor,
    SparseTensorType,
    Tensor,
    TensorType,
    Type,
)

__all__ = ["Scope", "check_graph", "check_value_type"]

#: Map keys must be integral or string (``TypeProto.Map.key_type``).
_MAP_KEYS = frozenset({DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64,
                       DataType.UINT8, DataType.UINT16, DataType.UINT32, DataType.UINT64,
                       DataType.STRING})


@dataclasses.dataclass
class Scope:
    """The names one graph defines, for its own nodes and for its subgraphs.

    ``position`` maps a name to where it is defined: -1 for graph inputs and initializers, the
    node's index for node outputs. ``current`` is the index of the node being checked, so a
    subgraph knows which outer values are already defined when its node runs.
    """

    position: dict[str, int]
    kind: dict[str, str]
    parent: "Scope | None" = None
    current: int = -1
    reported: set[str] = dataclasses.field(default_factory=set)

    def outer_definition(self, name: str) -> tuple["Scope", int] | None:
        """The nearest enclosing scope that defines ``name`` and where (None if none)."""
        s = self.parent
        while s is not None:
            if name in s.position:
                return s, s.position[name]
            s = s.parent
        return None

    def visible_outer_definition(self, name: str) -> tuple["Scope", int] | None:
        """Like :meth:`outer_definition`, but only a value already computed when the node
        holding this subgraph runs (a later outer value, or that node's own outputs, is not
        visible from inside, so reusing its name shadows nothing)."""
        found = self.outer_definition(name)
        if found is None or found[1] >= found[0].current:
            return None
        return found


def check_graph(ctx: CheckContext, graph: Graph, location: str, env: GraphEnv,
                parent: Scope | None, *, main: bool = False, function: bool = False) -> None:
    """Check ``graph`` and, recursively, the subgraphs of its nodes."""
    if not graph.name and not function:
        ctx.report("name", location, "the graph has no name; every graph must specify one")
    scope = _definitions(ctx, graph, location, parent, subgraph=not main and not function)
    _check_io_types(ctx, graph, location, main)
    for i, node in enumerate(graph.nodes):
        where = f"{location} > {node_label(node, i)}"
        scope.current = i
        _check_inputs(ctx, graph, node, i, where, scope)
        schema = check_node(ctx, node, where, env)
        if schema is not None and ctx.full_check:
            check_node_types(ctx, node, where, schema)
        for name, a in node.attributes.items():
            _check_attribute_value(ctx, a.type, a.value, f"{where}", name, env, scope)
    scope.current = len(graph.nodes)
    _check_outputs(ctx, graph, location, scope, function)


def _definitions(ctx: CheckContext, graph: Graph, location: str, parent: Scope | None,
                 subgraph: bool) -> Scope:
    """Collect every definition of the graph, reporting names defined twice."""
    position: dict[str, int] = {}
    kind: dict[str, str] = {}
    scope = Scope(position, kind, parent)
    for v in graph.inputs:
        if not v.name:
            ctx.report("name", location, "a graph input has an empty name")
        elif v.name in position:
            ctx.report("ssa", location, f"{v.name!r} is defined more than once as a graph input")
        else:
            position[v.name], kind[v.name] = -1, "graph input"
    input_names = set(position)
    first_input = {v.name: v for v in reversed(graph.inputs)}
    for name, v in graph.initializers.items():
        if not name:
            ctx.report("name", location, "an initializer has an empty name")
            continue
        if name in input_names:
            inp = first_input[name]
            if inp is not v and inp.const_value is not None and v.const_value is not None:
                # the loader attaches the first initializer of a name to the input and keeps
                # the next one apart: the name was given to two initializers
                ctx.report("ssa", location, f"initializer {name!r} is defined more than once")
            if subgraph and ctx.ir_version >= 4:
                ctx.report("subgraph-initializer-input", location,
                           f"{name!r} is both an input and an initializer of this subgraph, "
                           f"which IR version {ctx.ir_version} (>= 4) forbids; rename "
                           f"one of them")
            continue
        if ctx.ir_version <= 3:
            ctx.report("initializer-input", location,
                       f"initializer {name!r} is not a graph input, which IR version "
                       f"{ctx.ir_version} (<= 3) requires; list it among the inputs or save the "
                       f"model with IR version 4 or newer")
        position[name], kind[name] = -1, "initializer"
        if isinstance(v.const_value, Tensor):
            check_tensor(ctx, v.const_value, location, f"initializer {name!r}")
    for name, v in graph.sparse_initializers.items():
        if not name:
            ctx.report("name", location, "a sparse initializer has an empty name")
            continue
        if name in graph.initializers:
            ctx.report("ssa", location,
                       f"{name!r} is defined both as an initializer and a sparse initializer")
        elif name in input_names and subgraph and ctx.ir_version >= 4:
            ctx.report("subgraph-initializer-input", location,
                       f"{name!r} is both an input and a sparse initializer of this subgraph")
        position.setdefault(name, -1)
        kind.setdefault(name, "sparse initializer")
        if isinstance(v.const_value, SparseTensor):
            check_sparse_tensor(ctx, v.const_value, location, f"sparse initializer {name!r}")
    for i, node in enumerate(graph.nodes):
        label = node_label(node, i)
        for o in node.outputs:
            if not o.name:
                continue  # an omitted optional output
            if o.name in position:
                ctx.report("ssa", f"{location} > {label}",
                           f"output {o.name!r} is already defined as {_where(kind[o.name])}; "
                           f"each value must be assigned once")
                continue
            outer = scope.visible_outer_definition(o.name)
            if outer is not None:
                ctx.report("ssa", f"{location} > {label}",
                           f"output {o.name!r} reuses the name of {_where(outer[0].kind[o.name])}"
                           f" of an enclosing graph; a subgraph's node outputs must have names "
                           f"distinct from the outer scope")
            position[o.name], kind[o.name] = i, f"the output of {label}"
    return scope


def _where(kind: str) -> str:
    return kind if kind.startswith("the ") else f"a {kind}"


def _check_inputs(ctx: CheckContext, graph: Graph, node: Node, index: int, where: str,
                  scope: Scope) -> None:
    for k, v in enumerate(node.inputs):
        if v is None:
            continue
        name = v.name
        what = f"input {k} {name!r}"
        pos = scope.position.get(name)
        if pos is not None:
            if pos >= index:
                ctx.report("topological-order", where,
                           f"{what} is {scope.kind[name]}, which "
                           f"{'is this node itself' if pos == index else 'comes later'}; "
                           f"nodes must be topologically sorted (no cycles)")
            elif (pos == -1 and v.const_value is not None and v.producer is None
                  and scope.kind.get(name) == "initializer"
                  and graph.initializers.get(name) is not v and name not in scope.reported):
                # the loader keeps the last initializer of a name in ``initializers`` and binds
                # readers to the first: two initializers share the name
                scope.reported.add(name)
                ctx.report("ssa", where, f"initializer {name!r} is defined more than once")
            continue
        outer = scope.outer_definition(name)
        if outer is None:
            ctx.report("undefined-input", where,
                       f"{what} is not defined: it is no graph input, initializer or output of "
                       f"an earlier node{' in this or an enclosing graph' if scope.parent else ''}")
            continue
        s, p = outer
        if p >= s.current:
            ctx.report("topological-order", where,
                       f"{what} comes from {s.kind[name]} of an enclosing graph, which is not "
                       f"computed before the node holding this subgraph runs")


def _check_outputs(ctx: CheckContext, graph: Graph, location: str, scope: Scope,
                   function: bool) -> None:
    for j, v in enumerate(graph.outputs):
        if not v.name:
            ctx.report("graph-output" if not function else "name", location,
                       f"output {j} has an empty name")
            continue
        if v.name in scope.position:
            continue
        if scope.outer_definition(v.name) is not None:
            ctx.report("graph-output", location,
                       f"output {v.name!r} is a value of an enclosing graph; a subgraph must "
                       f"compute its outputs itself (pass the value through Identity)")
        else:
            ctx.report("graph-output", location,
                       f"output {v.name!r} is not defined in this graph: no node, input or "
                       f"initializer gives it")


def _check_io_types(ctx: CheckContext, graph: Graph, location: str, main: bool) -> None:
    for kind, values in (("input", graph.inputs), ("output", graph.outputs)):
        for v in values:
            if not v.name:
                continue
            if main:
                check_value_type(ctx, v.type, location, f"graph {kind} {v.name!r}", strict=True)
            elif v.type is not None:
                check_value_type(ctx, v.type, location, f"{kind} {v.name!r}", strict=False)
    for v in graph.value_info:
        if not v.name:
            ctx.report("name", location, "a value_info entry has an empty name")
        elif v.type is not None:
            check_value_type(ctx, v.type, location, f"value_info {v.name!r}", strict=False)


def check_value_type(ctx: CheckContext, t: Type | None, location: str, what: str, *,
                     strict: bool) -> None:
    """A type is well formed; ``strict`` (main graph inputs and outputs) also requires it to be
    present, with known element types and tensor shapes."""
    if t is None:
        if strict:
            ctx.report("value-info", location,
                       f"{what} has no type; the main graph's inputs and outputs must declare "
                       f"their type and shape")
        return
    if isinstance(t, (TensorType, SparseTensorType)):
        if t.elem_type == DataType.UNDEFINED and strict:
            ctx.report("value-info", location, f"{what} has element type UNDEFINED")
        if t.shape is None:
            if strict:
                ctx.report("value-info", location,
                           f"{what} has no shape; the main graph's inputs and outputs must "
                           f"state at least their rank")
        elif any(isinstance(d, int) and d < 0 for d in t.shape):
            ctx.report("value-info", location, f"{what} has a negative dimension in its shape")
    elif isinstance(t, (SequenceType, OptionalType)):
        label = "sequence" if isinstance(t, SequenceType) else "optional"
        if t.elem_type is None:
            if strict:
                ctx.report("value-info", location, f"{what} is a {label} with no element type")
        else:
            check_value_type(ctx, t.elem_type, location, f"{what} ({label} element)",
                             strict=False)
            if strict:
                _require_elem(ctx, t.elem_type, location, what)
    elif isinstance(t, OpaqueType):
        if not t.name and strict:
            ctx.report("value-info", location,
                       f"{what} is an opaque type with no name; name the type (the domain may "
                       f"be left empty)")
    elif isinstance(t, MapType):
        if t.key_type not in _MAP_KEYS:
            ctx.report("value-info", location,
                       f"{what} is a map with key type {t.key_type.name}; keys must be an "
                       f"integer type or string")
        if t.value_type is None:
            if strict:
                ctx.report("value-info", location, f"{what} is a map with no value type")
        else:
            check_value_type(ctx, t.value_type, location, f"{what} (map value)", strict=False)


def _require_elem(ctx: CheckContext, t: Type, location: str, what: str) -> None:
    """Inside a sequence/optional of the main graph's signature, element types must be known."""
    if isinstance(t, (TensorType, SparseTensorType)):
        if t.elem_type == DataType.UNDEFINED:
            ctx.report("value-info", location, f"{what} has element type UNDEFINED")
    elif isinstance(t, (SequenceType, OptionalType)):
        if t.elem_type is None:
            ctx.report("value-info", location, f"{what} has a container with no element type")
        else:
            _require_elem(ctx, t.elem_type, location, what)


def _check_attribute_value(ctx: CheckContext, atype: AttributeType, value: object, where: str,
                           name: str, env: GraphEnv, scope: Scope) -> None:
    """Constants held by attributes are checked like initializers; subgraphs are walked."""
    T = AttributeType
    if atype == T.TENSOR and isinstance(value, Tensor):
        check_tensor(ctx, value, where, f"the tensor of attribute {name!r}")
    elif atype == T.TENSORS and isinstance(value, (list, tuple)):
        for i, t in enumerate(value):
            if isinstance(t, Tensor):
                check_tensor(ctx, t, where, f"tensor {i} of attribute {name!r}")
    elif atype == T.SPARSE_TENSOR and isinstance(value, SparseTensor):
        check_sparse_tensor(ctx, value, where, f"the sparse tensor of attribute {name!r}")
    elif atype == T.SPARSE_TENSORS and isinstance(value, (list, tuple)):
        for i, st in enumerate(value):
            if isinstance(st, SparseTensor):
                check_sparse_tensor(ctx, st, where, f"sparse tensor {i} of attribute {name!r}")
    elif atype == T.GRAPH and isinstance(value, Graph):
        check_graph(ctx, value, f"{where} > {name}", env, scope)
    elif atype == T.GRAPHS and isinstance(value, (list, tuple)):
        for i, g in enumerate(value):
            if isinstance(g, Graph):
                check_graph(ctx, g, f"{where} > {name}[{i}]", env, scope)
