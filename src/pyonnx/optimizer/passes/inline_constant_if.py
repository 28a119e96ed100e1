"""An If whose condition is a constant runs one branch, always: that branch's nodes move into
the enclosing graph in the If's place and the If's readers read the branch's outputs
(``If(true, then=G1, else=G2) -> G1 inlined``). Branch initializers move too; a branch value
whose name the enclosing graph already uses is renamed (branch names are local to it).
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Graph, Model, Node
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import (
    attr, constant_of, graph_inputs, insert_node, is_standard, protected_values, replace_uses,
    unique_name,
)

__all__ = ["InlineConstantIf"]


class InlineConstantIf(GraphPass):
    """``If(constant c, then_branch, else_branch)`` -> the nodes of the branch ``c`` selects."""

    name = "inline_constant_if"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for node in list(graph.nodes):
            if node.graph is not graph or node.op_type != "If" or not is_standard(node):
                continue
            c = constant_of(node.inputs[0] if node.inputs else None, inputs)
            if c is None or c.size != 1:
                continue
            branch = attr(node, "then_branch" if bool(np.asarray(c).ravel()[0]) else "else_branch")
            if not isinstance(branch, Graph) or branch.inputs \
                    or len(branch.outputs) != len(node.outputs):
                continue
            if any(id(o) in keep for o in node.outputs):
                continue  # a graph output keeps its name, so its If stays
            self._inline(graph, model, node, branch)
            modified = True
        return modified

    def _inline(self, graph: Graph, model: Model, node: Node, branch: Graph) -> None:
        taken = _names_in_scope(graph)
        for name, v in list(branch.initializers.items()):
            if name in taken or name in graph.initializers:
                v.name = unique_name(model, name)
            graph.add_initializer(v)
        moved = list(branch.nodes)
        for n in moved:
            for v in n.outputs:
                if v.name and v.name in taken:
                    v.name = unique_name(model, v.name)
            for sg in n.subgraphs():
                sg.parent = graph
        # If(c, G) -> G's nodes here: copies that keep every use-def link, in branch order
        for n in moved:
            copy = Node(n.op_type, list(n.inputs), list(n.outputs), domain=n.domain, name=n.name,
                        attributes=list(n.attributes.values()), overload=n.overload,
                        doc_string=n.doc_string, metadata_props=n.metadata_props)
            insert_node(graph, copy, node)
        branch.remove_many(moved)
        outs = list(branch.outputs)
        for o, b in zip(node.outputs, outs):
            replace_uses(o, b)
        graph.remove(node)


def _names_in_scope(graph: Graph) -> set[str]:
    names: set[str] = set()
    g: Graph | None = graph
    while g is not None:
        names.update(v.name for v in g.inputs)
        names.update(g.initializers)
        for n in g.nodes:
            names.update(v.name for v in n.outputs)
        g = g.parent
    return names

