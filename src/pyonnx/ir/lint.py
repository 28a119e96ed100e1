"""The IR's own invariants, checked: what every pass and loader must leave true.

:func:`lint` walks a model (or one graph) and lists each broken invariant with its location:

- ownership: each node of ``graph.nodes`` has ``node.graph is graph``;
- producer links: output ``i`` of a node has ``producer is node`` and ``producer_index == i``;
- use lists: a node reading value ``v`` at input ``i`` appears in ``v.uses`` exactly once as
  ``(node, i)``, and every entry of ``v.uses`` is such a reading by a node still in a graph;
- single assignment: within a graph no two distinct Values share a non-empty name (an
  initializer that is also a graph input is one Value listed twice, which is allowed);
- topological order: a node reads only graph inputs, initializers, outputs of earlier nodes of
  its graph, or values visible from an enclosing graph at the point of the node that holds the
  subgraph; graph outputs are defined by the end of the graph.

These are structural facts about the Python objects, not ONNX rules about the file: the checker
(:mod:`pyonnx.checker`) reports the latter. A violation here is a bug in whatever built or
rewrote the IR, so tests and the pass manager's debug mode run :func:`lint` after each step.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyonnx.errors import ValidationError
from pyonnx.ir.graph import Graph, Model, Node, Value

__all__ = ["lint", "assert_lint_clean"]


def lint(target: Model | Graph) -> list[str]:
    """Every broken IR invariant of ``target`` (a model: its graph and function bodies), one
    message each, naming the graph, node and value; an empty list when all hold."""
    out: list[str] = []
    if isinstance(target, Model):
        _lint_graph(target.graph, frozenset(), "graph", out)
        for f in target.functions:
            _lint_graph(f.graph, frozenset(), f"function {f.domain}::{f.name}", out)
    else:
        _lint_graph(target, frozenset(), "graph", out)
    return out


def assert_lint_clean(target: Model | Graph, after: str = "") -> None:
    """Raise :class:`~pyonnx.errors.ValidationError` listing every broken invariant, if any.
    ``after`` names the step that ran last (a pass), so the message points at the culprit."""
    problems = lint(target)
    if problems:
        where = f" after {after}" if after else ""
        raise ValidationError(f"IR invariants broken{where}: {problems[0]}"
                              + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                              problems)


def _label(graph: Graph, path: str) -> str:
    return f"{path} {graph.name!r}" if graph.name else path


def _lint_graph(graph: Graph, outer: frozenset[int], path: str, out: list[str]) -> None:
    where = _label(graph, path)
    defined: set[int] = set()
    names: dict[str, Value] = {}

    def define(v: Value, what: str) -> None:
        if v.name:
            other = names.get(v.name)
            if other is not None and other is not v:
                out.append(f"{where}: {what} {v.name!r} is a second value of that name "
                           f"(single assignment)")
            names[v.name] = v
        defined.add(id(v))

    for v in graph.inputs:
        define(v, "input")
    for v in (*graph.initializers.values(), *graph.sparse_initializers.values()):
        define(v, "initializer")
    _check_uses(_values_read(graph), where, out)
    for node in graph.nodes:
        label = f"{where}: {node.describe()}"
        if node.graph is not graph:
            out.append(f"{label} is listed in the graph but owned by "
                       f"{'no graph' if node.graph is None else 'another graph'}")
        for i, v in enumerate(node.inputs):
            if v is None:
                continue
            if id(v) not in defined and id(v) not in outer:
                out.append(f"{label} reads {v.name!r} (input {i}) before it is defined or from "
                           f"outside its scope (topological order)")
            if sum(1 for (n, j) in v.uses if n is node and j == i) != 1:
                out.append(f"{label}: input {i} ({v.name!r}) is not recorded once in that "
                           f"value's use list")
        visible = None
        for a in node.attributes.values():
            for sub in _subgraphs(a.value):
                if visible is None:  # only for nodes with subgraphs: a copy per node is O(n^2)
                    visible = frozenset(defined) | outer
                if sub.parent is not graph:
                    out.append(f"{label}: subgraph attribute {a.name!r} does not name this graph "
                               f"as its parent")
                _lint_graph(sub, visible, f"{label} attribute {a.name!r}", out)
        for i, v in enumerate(node.outputs):
            if v.producer is not node or v.producer_index != i:
                out.append(f"{label}: output {i} ({v.name!r}) does not name this node as its "
                           f"producer at index {i}")
            define(v, "output")
    for i, v in enumerate(graph.outputs):
        if id(v) not in defined and id(v) not in outer:
            out.append(f"{where}: output {i} ({v.name!r}) is not defined in the graph")


def _subgraphs(value: object) -> Iterable[Graph]:
    if isinstance(value, Graph):
        return (value,)
    if isinstance(value, list):
        return [g for g in value if isinstance(g, Graph)]
    return ()


def _values_read(graph: Graph) -> dict[int, Value]:
    """The values the nodes of ``graph`` read, and its own inputs, initializers and outputs."""
    seen: dict[int, Value] = {}
    for v in (*graph.inputs, *graph.initializers.values(), *graph.sparse_initializers.values(),
              *graph.outputs):
        seen[id(v)] = v
    for node in graph.nodes:
        for v in (*node.inputs, *node.outputs):
            if v is not None:
                seen[id(v)] = v
    return seen


def _check_uses(values: dict[int, Value], where: str, out: list[str]) -> None:
    """Every recorded use of a value is a real reading by a node that is still in a graph."""
    for v in values.values():
        for n, i in v.uses:
            if not isinstance(n, Node) or i >= len(n.inputs) or n.inputs[i] is not v:
                out.append(f"{where}: value {v.name!r} lists a use by {_describe(n)} at input {i} "
                           f"that does not read it")
            elif n.graph is None:
                out.append(f"{where}: value {v.name!r} lists a use by {_describe(n)}, which is "
                           f"no longer in a graph")


def _describe(n: object) -> str:
    return n.describe() if isinstance(n, Node) else repr(n)
