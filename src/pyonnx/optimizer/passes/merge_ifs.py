"""Two Ifs on the same condition value -> one If with both sets of outputs.

``If(c, A1, B1)`` and a later ``If(c, A2, B2)`` that does not depend on the first one's outputs
become ``If(c, A1+A2, B1+B2)``: each merged branch holds both branches' nodes and outputs (they
run under the same condition, so together). Exporters write one If per wrapped value (silero-vad
adds a batch axis to its LSTM's input and to its state under two Ifs of one rank test).
Merging is left alone when the branches have inputs, when names inside them would collide, or
when the second If reads (directly or from inside its branches) a value the first one's
position does not yet see.
"""

from __future__ import annotations

from pyonnx.ir import Graph, Model, Node, Value
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import is_standard

__all__ = ["MergeIfs"]


class MergeIfs(GraphPass):
    """``If(c, A1, B1); If(c, A2, B2) -> If(c, A1+A2, B1+B2)``."""

    name = "merge_ifs"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        modified = False
        first_if: dict[int, Node] = {}
        for node in list(graph.nodes):
            if node.graph is not graph or node.op_type != "If" or not is_standard(node) \
                    or not node.inputs or node.inputs[0] is None:
                continue
            cond = node.inputs[0]
            a = first_if.get(id(cond))
            if a is None or a.graph is not graph:
                first_if[id(cond)] = node
                continue
            if _mergeable(graph, a, node):
                _merge(graph, a, node)
                modified = True
            else:
                first_if[id(cond)] = node  # later Ifs may merge with this one instead
        return modified


def _branches(n: Node) -> tuple[Graph, Graph] | None:
    t, e = n.attributes.get("then_branch"), n.attributes.get("else_branch")
    if t is None or e is None or not isinstance(t.value, Graph) \
            or not isinstance(e.value, Graph) or len(n.attributes) != 2:
        return None
    return t.value, e.value


def _free_values(g: Graph) -> list[Value]:
    """Values that ``g`` (nested graphs included) reads but does not define."""
    defined: set[int] = set()
    free: list[Value] = []

    def walk(graph: Graph) -> None:
        defined.update(id(v) for v in graph.inputs)
        defined.update(id(v) for v in graph.initializers.values())
        for n in graph.nodes:
            for v in n.inputs:
                if v is not None and id(v) not in defined:
                    free.append(v)
            for sg in n.subgraphs():
                walk(sg)
            defined.update(id(v) for v in n.outputs)
        free.extend(v for v in graph.outputs if id(v) not in defined)

    walk(g)
    return free


def _names(g: Graph) -> set[str]:
    names = set(g.initializers)
    for n in g.nodes:
        names.update(v.name for v in n.outputs if v.name)
    return names


def _mergeable(graph: Graph, a: Node, b: Node) -> bool:
    ba, bb = _branches(a), _branches(b)
    if ba is None or bb is None:
        return False
    for ga, gb in zip(ba, bb):
        if ga.inputs or gb.inputs or _names(ga) & _names(gb) \
                or {v.name for v in ga.outputs} & {v.name for v in gb.outputs}:
            return False
    # b moves up to a's place: everything it reads must be defined before a
    pos = {id(n): i for i, n in enumerate(graph.nodes)}
    at = pos[id(a)]
    reads = list(b.inputs) + [v for g in bb for v in _free_values(g)]
    for v in reads:
        if v is None:
            continue
        p = v.producer
        if p is not None and p.graph is graph and pos.get(id(p), -1) >= at:
            return False
    return True


def _merge(graph: Graph, a: Node, b: Node) -> None:
    for ga, gb in zip(_branches(a), _branches(b)):  # type: ignore[arg-type]
        for v in gb.initializers.values():
            ga.add_initializer(v)
        moved = list(gb.nodes)
        for n in moved:
            for sg in n.subgraphs():
                sg.parent = ga
            # a copy keeping every use-def link, appended to a's branch in b's order
            ga.append(Node(n.op_type, list(n.inputs), list(n.outputs), domain=n.domain,
                           name=n.name, attributes=list(n.attributes.values()),
                           overload=n.overload, doc_string=n.doc_string,
                           metadata_props=n.metadata_props))
        gb.remove_many(moved)
        ga.outputs = list(ga.outputs) + list(gb.outputs)
    outs = list(b.outputs)
    graph.remove(b)
    b.outputs = []
    for v in outs:  # If(c, A1+A2, B1+B2) yields b's values after a's own
        v.producer = a
        v.producer_index = len(a.outputs)
        a.outputs.append(v)
