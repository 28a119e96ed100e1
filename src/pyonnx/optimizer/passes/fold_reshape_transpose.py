"""Reshape -> Transpose -> Reshape that merges leading axes, permutes only the others and splits
the leading axes back is one Transpose. The dynamo exporter writes ``K^T`` of attention this way
(``[B, H, S, D] -> [B*H, S, D] -> [B*H, D, S] -> [B, H, D, S]``).

The shapes come from :class:`~pyonnx.optimizer._facts.Facts` (symbolic dims included): the
first Reshape must keep x's trailing dims and merge its leading ones into one axis, the
Transpose must leave that axis first, and the second Reshape must give x's leading dims followed
by the permuted trailing ones. Row-major order within the merged axis is then unchanged, so the
three nodes compute ``Transpose(x, perm)`` with the leading axes fixed.
"""

from __future__ import annotations

from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node
from pyonnx.optimizer._facts import same_shape
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import attr, insert_node, is_standard, protected_values

__all__ = ["FoldReshapeTranspose"]


class FoldReshapeTranspose(FactsPass):
    """``Reshape(Transpose(Reshape(x, [L, *T]), [0, *p]), [*lead(x), *T[p]]) ->
    Transpose(x, [0..k-1, k + p - 1])``."""

    name = "fold_reshape_transpose"
    anchors = frozenset({"Transpose"})

    requires_facts = True

    def rewrite(self, graph: Graph, model: Model) -> bool:
        facts = self.facts
        keep = protected_values(model)
        modified = False
        for r2 in list(graph.nodes):
            if r2.graph is not graph or r2.op_type != "Reshape" or not is_standard(r2):
                continue
            t = r2.inputs[0].producer if r2.inputs[0] is not None else None
            if t is None or t.op_type != "Transpose" or not is_standard(t) or t.graph is not graph:
                continue
            r1 = t.inputs[0].producer if t.inputs[0] is not None else None
            if r1 is None or r1.op_type != "Reshape" or not is_standard(r1) \
                    or r1.graph is not graph:
                continue
            mid = [r1.outputs[0], t.outputs[0]]
            if any(id(v) in keep or len(v.uses) != 1 for v in mid):
                continue
            x = r1.inputs[0]
            xs, s1, s2 = facts.shape(x), facts.shape(r1.outputs[0]), facts.shape(r2.outputs[0])
            perm = attr(t, "perm")
            if xs is None or s1 is None or s2 is None or perm is None:
                continue
            perm = [int(p) for p in perm]  # type: ignore[union-attr]
            tail = len(s1) - 1
            k = len(xs) - tail
            if tail < 1 or k < 1 or len(perm) != len(s1) or perm[0] != 0 \
                    or sorted(perm) != list(range(len(perm))):
                continue
            if not same_shape(tuple(s1[1:]), tuple(xs[k:])):
                continue
            want = tuple(xs[:k]) + tuple(xs[k + p - 1] for p in perm[1:])
            if not same_shape(s2, want):
                continue
            new_perm = list(range(k)) + [k + p - 1 for p in perm[1:]]
            out = r2.outputs[0]
            fused = Node("Transpose", [x], [out], name=t.name,
                         attributes=[Attribute("perm", AttributeType.INTS, new_perm)])
            # Reshape(Transpose(Reshape(x))) that only moves trailing axes -> Transpose(x)
            insert_node(graph, fused, r2)
            graph.remove_many([r2, t, r1])
            modified = True
        return modified
