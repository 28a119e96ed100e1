"""The pass protocol and the pass manager.

A pass rewrites a model in place and says whether it changed anything:
``Pass.__call__(model) -> PassResult(model, modified)``. The :class:`PassManager` runs a list of
passes again and again until a whole round changes nothing (a fixed point) or an iteration cap is
reached, so that one rewrite may enable another (folding a constant exposes an Identity, removing
the Identity exposes a fusion).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from pyonnx.ir import AttributeType, Graph, Model
from pyonnx.ir.lint import assert_lint_clean
from pyonnx.optimizer._facts import forget_facts

__all__ = ["Pass", "PassResult", "PassManager", "GraphPass", "all_graphs"]


@dataclasses.dataclass
class PassResult:
    """What a pass returns: the (rewritten) model and whether anything changed."""

    model: Model
    modified: bool


class Pass:
    """A model-to-model rewrite. Subclasses implement :meth:`call`; ``name`` labels the pass in
    reports. A pass must keep the names of the graph outputs and the use-def links intact
    (rewire with :meth:`pyonnx.ir.Node.set_input`, drop nodes with :meth:`pyonnx.ir.Graph.remove`).
    """

    name: str = ""
    #: True for a pass whose rewrites only drop nodes, values or initializers and redirect reads
    #: to values that compute the same (dead code, duplicates, Identity): every value left in the
    #: model then computes what it did, so the facts shape inference proved about it still hold
    #: and the pass manager keeps them (values the pass adds have none: passes stay cautious).
    preserves_facts: bool = False

    def call(self, model: Model) -> bool:
        """Rewrite ``model`` in place; return True when something changed."""
        raise NotImplementedError

    def __call__(self, model: Model) -> PassResult:
        return PassResult(model, bool(self.call(model)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def all_graphs(graph: Graph) -> Iterator[Graph]:
    """``graph`` and every subgraph nested in it, outermost first."""
    yield graph
    for n in list(graph.nodes):
        # (the attribute types looked at inline: a generator per node made these walks, run by
        # every pass, a large part of the optimizer's time on big graphs without subgraphs)
        for a in n.attributes.values():
            if a.type == AttributeType.GRAPH:
                yield from all_graphs(a.value)
            elif a.type == AttributeType.GRAPHS:
                for g in a.value:
                    yield from all_graphs(g)


# Model-wide sets that the rewrite of each graph asks for (the ids of every graph's inputs and
# outputs), computed once per GraphPass call instead of once per graph: on a model with 50
# subgraphs the repeated walks were most of the session creation time. A rewrite changes only
# its own graph's nodes, never which values are graph inputs; a graph output it replaces is
# one the set still protects (the old id), so a set from the start of the call is at worst
# more cautious than a fresh one. Per thread: sessions may be created concurrently.
_WALKS = threading.local()


def model_walk(model: Model, key: str, compute: Callable[[Model], Any]) -> Any:
    """``compute(model)``, reused within the current GraphPass call on ``model``."""
    state = getattr(_WALKS, "state", None)
    if state is None or state[0] is not model:
        return compute(model)
    cache = state[1]
    if key not in cache:
        cache[key] = compute(model)
    return cache[key]


def model_graphs(model: Model) -> list[Graph]:
    """``model``'s graphs (main and nested), listed once per GraphPass call: the rewrites of a
    call only move nodes between graphs or drop them, so a listing from the start of the call
    covers every graph (and a dropped one only makes the sets built from it more cautious)."""
    return model_walk(model, "graphs", lambda m: list(all_graphs(m.graph)))


def _reads_itself_by_name(graph: Graph) -> bool:
    """Whether a node of ``graph`` is defined by other nodes of it, named in its attributes
    (Gradient differentiates the nodes between its ``xs`` and ``y``): rewriting such a graph
    would change what that node computes, so passes leave it as written."""
    from pyonnx.defs import normalize_domain
    from pyonnx.ops.registry import graph_kernel_ops

    special = graph_kernel_ops()
    names = {op for _d, op in special}  # the op type first: normalizing domains is slower
    return any(n.op_type in names and (normalize_domain(n.domain), n.op_type) in special
               for n in graph.nodes)


class GraphPass(Pass):
    """A pass that rewrites each graph of the model (the main graph and every subgraph) on its
    own. Model-local function bodies are left alone: they are compiled per call site with the
    caller's attributes, which a rewrite could not see; so are graphs holding a node that reads
    its graph by name (Gradient)."""

    def call(self, model: Model) -> bool:
        modified = False
        prev = getattr(_WALKS, "state", None)
        _WALKS.state = (model, {})
        try:
            for g in model_graphs(model):
                if _reads_itself_by_name(g):
                    continue
                if self.rewrite(g, model):
                    modified = True
        finally:
            _WALKS.state = prev
        return modified

    def rewrite(self, graph: Graph, model: Model) -> bool:
        """Rewrite one graph; return True when something changed."""
        raise NotImplementedError


class PassManager:
    """Runs ``passes`` in order, round after round, until a round modifies nothing or
    ``max_iterations`` rounds have run.

    ``history`` records, per round, the names of the passes that changed the model, and
    ``applied`` the pass objects that did, in order: replaying ``applied[:k]`` on a copy of the
    input reproduces the model after the k-th change (what verification bisects over). In debug
    mode (``debug=True``, or the environment variable ``PYONNX_DEBUG_PASSES=1``) the IR's
    invariants (:func:`pyonnx.ir.lint.lint`) are checked before the first pass and after each
    pass that changed the model, and a break raises ValidationError naming that pass.
    """

    def __init__(self, passes: Sequence[Pass], max_iterations: int = 8, *,
                 debug: bool | None = None) -> None:
        if max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {max_iterations}")
        self.passes = list(passes)
        self.max_iterations = max_iterations
        self.debug = os.environ.get("PYONNX_DEBUG_PASSES") == "1" if debug is None else debug
        self.history: list[list[str]] = []
        self.applied: list[Pass] = []

    def __call__(self, model: Model) -> PassResult:
        any_change = False
        if self.debug:
            assert_lint_clean(model, "loading (before the first pass)")
        for _ in range(self.max_iterations):
            changed: list[str] = []
            for p in self.passes:
                result = p(model)
                model = result.model
                if result.modified:
                    if not p.preserves_facts:
                        forget_facts(model)  # facts hold for the model as it was
                    self.applied.append(p)
                    changed.append(p.name or type(p).__name__)
                    if self.debug:
                        assert_lint_clean(model, changed[-1])
            self.history.append(changed)
            if not changed:
                break
            any_change = True
        forget_facts(model)
        return PassResult(model, any_change)

    def extend(self, passes: Iterable[Pass]) -> None:
        """Append passes to the pipeline."""
        self.passes.extend(passes)
