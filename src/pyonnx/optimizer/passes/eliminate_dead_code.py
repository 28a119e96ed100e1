"""Dead-code elimination: nodes none of whose outputs are read (by a node of any graph, or as
a graph output) are removed, last to first so that chains disappear in one sweep; then
initializers nothing reads (and that are not graph inputs) are dropped."""

from __future__ import annotations

from pyonnx.ir import Graph, Model, Node
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import protected_values

__all__ = ["EliminateDeadCode"]


class EliminateDeadCode(GraphPass):
    """``y = op(...)`` with ``y`` unused -> nothing."""

    name = "eliminate_dead_code"
    preserves_facts = True  # drops nodes / reads an equal value instead

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        # last to first: a node is dead when every reader of its outputs is dead already
        dead: dict[int, Node] = {}
        for node in reversed(graph.nodes):
            if any(id(v) in keep or any(id(n) not in dead for n, _ in v.uses)
                   for v in node.outputs):
                continue
            dead[id(node)] = node
        graph.remove_many(dead.values())  # one sweep: removing one by one is quadratic
        modified = bool(dead)
        inputs = {v.name for v in graph.inputs}
        for name, v in list(graph.initializers.items()):
            if not v.uses and id(v) not in keep and name not in inputs:
                del graph.initializers[name]
                modified = True
        if modified:  # annotations of values that no longer exist would only mislead a reader
            graph.value_info = [v for v in graph.value_info
                                if v.producer is not None and v.producer.graph is graph
                                or v.uses]
        return modified
