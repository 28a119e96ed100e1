"""Nodes that provably change nothing, and Slice chains that are one Slice:

* ``Cast(x, to=T)`` of an x already of element type T -> ``x``;
* ``Slice(x)`` that keeps every element (each sliced axis from 0, or before it, to the end or
  past it, with step 1) -> ``x``;
* ``Slice(Slice(x, a1), a2)`` over disjoint axes -> one ``Slice(x, a1 + a2)`` (slicing
  separate axes commutes).

Slice parameters must be constants (Slice-10 and later, where they are inputs).
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Graph, Model, Node
from pyonnx.optimizer._facts import Facts
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import (
    attr, constant_of, graph_inputs, insert_node, is_standard, new_initializer,
    protected_values, replace_uses, since_version, unique_name,
)

__all__ = ["EliminateNoOps"]

#: an end at or past this is "to the end" whatever the dim (exporters write INT64_MAX)
_TO_END = 1 << 62


class EliminateNoOps(FactsPass):
    """``Cast(x: T, to=T) -> x``; ``Slice(x, 0, end) -> x``; ``Slice(Slice(x)) -> Slice(x)``."""

    name = "eliminate_no_ops"
    anchors = frozenset({"Cast", "Slice"})

    requires_facts = True

    def rewrite(self, graph: Graph, model: Model) -> bool:
        facts = self.facts
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for node in list(graph.nodes):
            if node.graph is not graph or not is_standard(node) or not node.inputs \
                    or node.inputs[0] is None:
                continue
            x, y = node.inputs[0], node.outputs[0]
            if id(y) in keep or not y.uses:
                continue
            if node.op_type == "Cast":
                t = getattr(facts.type(x), "elem_type", None)
                if t is not None and int(t) == int(attr(node, "to", -1)):  # type: ignore[arg-type]
                    replace_uses(y, x)  # Cast(x: T, to=T) -> x
                    modified = True
                continue
            if node.op_type != "Slice" or since_version(model, node) < 10:
                continue
            params = _slice_params(node, inputs, facts.rank(x))
            if params is None:
                continue
            shape = facts.shape(x)
            if shape is not None and _keeps_all(params, shape):
                replace_uses(y, x)  # Slice(x, 0, end) -> x
                modified = True
                continue
            if self._merge(graph, model, node, params, inputs, keep, facts):
                modified = True
        return modified

    def _merge(self, graph: Graph, model: Model, node: Node,
               params: list[tuple[int, int, int, int]], inputs: set[int], keep: set[int],
               facts: Facts) -> bool:
        first = node.inputs[0].producer  # type: ignore[union-attr]
        if first is None or first.op_type != "Slice" or not is_standard(first) \
                or first.graph is not graph or since_version(model, first) < 10:
            return False
        mid = first.outputs[0]
        if id(mid) in keep or len(mid.uses) != 1:
            return False
        p1 = _slice_params(first, inputs, facts.rank(first.inputs[0]))
        if p1 is None or {a for a, *_ in p1} & {a for a, *_ in params}:
            return False
        both = p1 + params
        cols = [np.array([p[i] for p in both], np.int64) for i in range(4)]
        base = unique_name(model, (node.outputs[0].name or "slice") + "_merged")
        ins = [first.inputs[0]] + [new_initializer(graph, f"{base}_{k}", col)
                                   for k, col in zip(("starts", "ends", "axes", "steps"),
                                                     (cols[1], cols[2], cols[0], cols[3]))]
        out = node.outputs[0]
        merged = Node("Slice", ins, [out], name=node.name)
        # Slice(Slice(x, axes a1), axes a2), a1 and a2 disjoint -> Slice(x, axes a1 + a2)
        insert_node(graph, merged, node)
        graph.remove(node)
        graph.remove(first)
        return True


def _slice_params(node: Node, inputs: set[int], rank: int | None
                  ) -> list[tuple[int, int, int, int]] | None:
    """(axis >= 0, start, end, step) per sliced axis, when all are constants."""
    def const(i: int) -> np.ndarray | None:
        if len(node.inputs) <= i or node.inputs[i] is None:
            return None
        return constant_of(node.inputs[i], inputs)

    starts, ends = const(1), const(2)
    if starts is None or ends is None or starts.shape != ends.shape or starts.ndim != 1:
        return None
    n = starts.size
    axes = const(3) if len(node.inputs) > 3 and node.inputs[3] is not None else np.arange(n)
    steps = const(4) if len(node.inputs) > 4 and node.inputs[4] is not None else np.ones(n)
    if axes is None or steps is None or axes.size != n or steps.size != n:
        return None
    out = []
    for a, s, e, st in zip(axes.tolist(), starts.tolist(), ends.tolist(), steps.tolist()):
        if a < 0:
            if rank is None:
                return None
            a += rank
        out.append((int(a), int(s), int(e), int(st)))
    if len({a for a, *_ in out}) != len(out):
        return None
    return out


def _keeps_all(params: list[tuple[int, int, int, int]], shape: tuple[object, ...]) -> bool:
    for a, s, e, st in params:
        if st != 1 or a >= len(shape):
            return False
        d = shape[a]
        starts_at_0 = s == 0 or (isinstance(d, int) and s <= -d)
        to_end = e >= _TO_END or (isinstance(d, int) and e >= d)
        if not (starts_at_0 and to_end):
            return False
    return True
