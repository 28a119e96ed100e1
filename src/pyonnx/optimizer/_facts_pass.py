"""The base of the passes that read shape inference's facts (a module of its own: the pass
manager in ``_core`` forgets facts between rounds, so ``_facts`` cannot import ``_core``)."""

from __future__ import annotations

from pyonnx.ir import Model
from pyonnx.optimizer._core import GraphPass, all_graphs
from pyonnx.optimizer._facts import Facts, facts_for

__all__ = ["FactsPass"]


class FactsPass(GraphPass):
    """A :class:`GraphPass` whose rewrites read what shape inference proves about the model:
    during the pass ``self.facts`` holds its :class:`Facts` (None where :meth:`wants_facts` says
    the rewrite needs none). A pass with ``requires_facts`` does nothing when inference failed;
    :meth:`applies` lets a pass decline a model outright (an opset without its target op)."""

    requires_facts = False
    facts: "Facts | None" = None
    #: Operator types the pass's rewrites start from: when the model (subgraphs included) has
    #: none of them the pass has nothing to do, and does not build the facts (a shape inference
    #: of the whole model) to find that out. Empty: no such shortcut.
    anchors: frozenset[str] = frozenset()

    def applies(self, model: Model) -> bool:
        """Whether the pass can rewrite ``model`` at all."""
        return True

    def wants_facts(self, model: Model) -> bool:
        """Whether this run of the pass reads facts."""
        return True

    def call(self, model: Model) -> bool:
        if not self.applies(model) or (self.anchors and not _has_op(model, self.anchors)):
            return False
        self.facts = facts_for(model) if self.wants_facts(model) else None
        try:
            if self.requires_facts and (self.facts is None or not self.facts.ok):
                return False
            return super().call(model)
        finally:
            self.facts = None


def _has_op(model: Model, op_types: frozenset[str]) -> bool:
    """Whether a node of ``model``'s graphs has one of ``op_types``."""
    return any(n.op_type in op_types for g in all_graphs(model.graph) for n in g.nodes)
