"""Dead-code elimination: nodes none of whose outputs are read (by a node of any graph, or as
a graph output) are removed, last to first so that chains disappear in one sweep; then
initializers nothing reads (and that are not graph inputs) are dropped."""

from __future__ import annotations

from pyonnx.ir import Graph, Model
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import protected_values

__all__ = ["EliminateDeadCode"]


class EliminateDeadCode(GraphPass):
    """``y = op(...)`` with ``y`` unused -> nothing."""

    name = "eliminate_dead_code"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        modified = False
        for node in reversed(list(graph.nodes)):
            if any(v.uses or id(v) in keep for v in node.outputs):
                continue
            graph.remove(node)
            modified = True
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
