"""``Unsqueeze(Reduce(Squeeze(x)))`` around size-1 axes -> one ``Reduce(x)``.

Squeezing a size-1 axis, reducing, and unsqueezing a size-1 axis back are all bookkeeping of
unit axes: a mean (sum, max, min, product) over an axis of size 1 is the identity, so the unit
axes can as well be reduced (dropped) or kept by the one reduction. silero-vad ends with
``Unsqueeze(ReduceMean(Squeeze(p, [1]), [1]), [1])`` on p of shape [N, 1, T], which is
``ReduceMean(p, [2], keepdims=0)``. The rewrite applies when every squeezed axis is known to have
size 1 and the unit axes the Unsqueeze inserts can be matched, in order, with size-1 axes of x.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node, Value
from pyonnx.optimizer._core import all_graphs
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import (
    attr, constant_of, graph_inputs, insert_node, is_standard, new_initializer,
    protected_values, since_version, unique_name,
)
from pyonnx.optimizer.passes._match import made_by

__all__ = ["FoldSqueezeReduce"]

# reductions that are the identity over an axis of size 1 (not ReduceSumSquare, ReduceL2, …)
_REDUCE = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd")


class FoldSqueezeReduce(FactsPass):
    """``Unsqueeze(Reduce(Squeeze(x, Q), R, keepdims=0), U) -> Reduce(x, A, keepdims=0)``."""

    name = "fold_squeeze_reduce"
    anchors = frozenset({"Squeeze"})
    requires_facts = True

    def applies(self, model: Model) -> bool:
        # the chain itself, looked for before the facts are built
        for g in all_graphs(model.graph):
            for n in g.nodes:
                if n.op_type == "Unsqueeze" and n.inputs and n.inputs[0] is not None:
                    red = n.inputs[0].producer
                    if red is not None and red.op_type in _REDUCE and red.inputs \
                            and made_by(red.inputs[0], "Squeeze") is not None:
                        return True
        return False

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for unsq in list(graph.nodes):
            if unsq.graph is not graph or unsq.op_type != "Unsqueeze" or not is_standard(unsq):
                continue
            red = None
            for op in _REDUCE:
                red = made_by(unsq.inputs[0], op, graph)
                if red is not None:
                    break
            if red is None or int(attr(red, "keepdims", 1)) != 0:  # type: ignore[arg-type]
                continue
            sq = made_by(red.inputs[0], "Squeeze", graph)
            if sq is None:
                continue
            inner = [red.outputs[0], sq.outputs[0]]
            if any(id(v) in keep or len(v.uses) != 1 for v in inner):
                continue
            axes = self._axes_after(model, inputs, sq, red, unsq)
            if axes is None:
                continue
            self._replace(graph, model, red, unsq, sq.inputs[0], axes)
            graph.remove_many([red, sq])
            modified = True
        return modified

    def _axes_after(self, model: Model, inputs: set[int], sq: Node, red: Node, unsq: Node
                    ) -> list[int] | None:
        """The axes of x that the one reduction reduces, or None when the rewrite does not
        apply."""
        x = sq.inputs[0]
        shape = self.facts.shape(x) if self.facts is not None else None
        if shape is None:
            return None
        n = len(shape)
        q = _axes(model, sq, inputs, n)
        if not q or any(shape[a] != 1 for a in q):
            return None  # Squeeze without axes drops every size-1 axis: not handled
        kept = [i for i in range(n) if i not in q]  # x-axes of the squeezed tensor
        r = _axes(model, red, inputs, len(kept))
        if not r or int(attr(red, "noop_with_empty_axes", 0)):  # type: ignore[arg-type]
            return None
        reduced = {kept[j] for j in r}
        real = [a for a in kept if a not in reduced]  # the reduction's output axes, in order
        u = _axes(model, unsq, inputs, len(real) + len(_raw_axes(model, unsq, inputs) or ()))
        if u is None:
            return None
        units = sorted(set(q) | {a for a in reduced if shape[a] == 1})
        # out slot p: a unit axis (p in u) or the next real axis; the kept x-axes must increase
        chosen: list[int] = []
        last = -1
        it = iter(real)
        for p in range(len(real) + len(u)):
            if p in u:
                nxt = next((c for c in units if c > last and c not in chosen), None)
                if nxt is None:
                    return None
                chosen.append(nxt)
                last = nxt
            else:
                a = next(it)
                if a <= last:
                    return None
                last = a
        drop = sorted((set(q) | reduced) - set(chosen))
        return drop or None

    def _replace(self, graph: Graph, model: Model, red: Node, unsq: Node, x: Value,
                 axes: list[int]) -> None:
        ins: list[Value | None] = [x]
        attrs = [Attribute("keepdims", AttributeType.INT, 0)]
        if _axes_as_input(model, red):
            name = unique_name(model, (unsq.outputs[0].name or "reduce") + "_axes")
            ins.append(new_initializer(graph, name, np.array(axes, np.int64)))
        else:
            attrs.append(Attribute("axes", AttributeType.INTS, axes))
        out = unsq.outputs[0]
        node = Node(red.op_type, ins, [out], name=red.name, attributes=attrs)
        # Unsqueeze(Reduce(Squeeze(x))) -> Reduce(x) in the Unsqueeze's place
        insert_node(graph, node, unsq)
        graph.remove(unsq)
        unsq.outputs = []


def _axes_as_input(model: Model, node: Node) -> bool:
    v = since_version(model, node)
    return v >= (13 if node.op_type in ("ReduceSum", "Squeeze", "Unsqueeze") else 18)


def _raw_axes(model: Model, node: Node, inputs: set[int]) -> list[int] | None:
    if _axes_as_input(model, node):
        if len(node.inputs) < 2 or node.inputs[1] is None:
            return []
        c = constant_of(node.inputs[1], inputs)
        return None if c is None or c.ndim > 1 else [int(a) for a in np.ravel(c)]
    a = attr(node, "axes", None)
    return [] if a is None else [int(i) for i in a]  # type: ignore[union-attr]


def _axes(model: Model, node: Node, inputs: set[int], rank: int) -> list[int] | None:
    """The node's axes, normalized to 0..rank-1 and sorted (None: unknown or invalid)."""
    raw = _raw_axes(model, node, inputs)
    if raw is None:
        return None
    out = sorted({a + rank if a < 0 else a for a in raw})
    if any(a < 0 or a >= rank for a in out) or len(out) != len(raw):
        return None
    return out
