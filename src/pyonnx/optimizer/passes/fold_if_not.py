"""``If(Not(c), then=A, else=B) -> If(c, then=B, else=A)``: the negation goes into the order of
the branches (exporters negate a rank test to pick the batched branch first; silero-vad's LSTM
wrapper reads one Not from three Ifs, which all lose it).
"""

from __future__ import annotations

from pyonnx.ir import Graph, Model
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import is_standard
from pyonnx.optimizer.passes._match import made_by

__all__ = ["FoldIfNot"]


class FoldIfNot(GraphPass):
    """``If(Not(c), A, B) -> If(c, B, A)``."""

    name = "fold_if_not"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        modified = False
        for node in list(graph.nodes):
            if node.graph is not graph or node.op_type != "If" or not is_standard(node) \
                    or not node.inputs or "then_branch" not in node.attributes \
                    or "else_branch" not in node.attributes:
                continue
            neg = made_by(node.inputs[0], "Not")
            if neg is None or not neg.inputs or neg.inputs[0] is None:
                continue
            then_a, else_a = node.attributes["then_branch"], node.attributes["else_branch"]
            then_a.value, else_a.value = else_a.value, then_a.value
            node.set_input(0, neg.inputs[0])  # the Not is dead once no If reads it
            modified = True
        return modified
