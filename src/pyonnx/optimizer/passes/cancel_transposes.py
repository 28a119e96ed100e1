"""Transpose cancellation: two Transposes in a row compose into one, or into nothing when the
composed permutation is the identity.

``Transpose(Transpose(x, p), q)`` reads ``x[..]`` with axis ``i`` of the result taken from axis
``p[q[i]]`` of ``x``, so it equals ``Transpose(x, [p[q[i]] for i])``. A Transpose without
``perm`` reverses the axes, which needs the rank; such pairs are rewritten only when the rank
is declared.
"""

from __future__ import annotations

from pyonnx.ir import Graph, Model, Node, TensorType, Value
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import (
    attr, insert_node, is_standard, make_attributes, protected_values, replace_uses,
)

__all__ = ["CancelTransposes"]


class CancelTransposes(GraphPass):
    """``Transpose(Transpose(x, p), q) -> x`` when ``p∘q`` is the identity, else
    ``Transpose(x, p∘q)``."""

    name = "cancel_transposes"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        modified = False
        for t2 in list(graph.nodes):
            if t2.graph is not graph or not _is_transpose(t2):
                continue
            mid = t2.inputs[0]
            t1 = mid.producer if mid is not None else None
            if t1 is None or t1.graph is not graph or not _is_transpose(t1):
                continue
            x = t1.inputs[0]
            p = _perm(t1, x)
            q = _perm(t2, mid)
            if p is None or q is None or len(p) != len(q):
                continue
            composed = [p[i] for i in q]
            out = t2.outputs[0]
            if composed == list(range(len(composed))):
                if id(out) in keep:
                    continue
                replace_uses(out, x)  # Transpose(Transpose(x, p), p^-1) -> x
            else:
                anchor = graph.nodes[graph.nodes.index(t2) + 1] \
                    if graph.nodes[-1] is not t2 else None
                graph.remove(t2)
                # Transpose(Transpose(x, p), q) -> Transpose(x, p∘q)
                fused = Node("Transpose", [x], [out], domain=t2.domain, name=t2.name,
                             attributes=make_attributes([("perm", composed)]))
                if anchor is None:
                    graph.append(fused)
                else:
                    insert_node(graph, fused, anchor)
            modified = True
        return modified


def _is_transpose(n: Node) -> bool:
    return (n.op_type == "Transpose" and is_standard(n) and len(n.inputs) == 1
            and n.inputs[0] is not None and len(n.outputs) == 1)


def _perm(n: Node, x: Value | None) -> list[int] | None:
    perm = attr(n, "perm")
    if perm is not None:
        return [int(i) for i in perm]  # type: ignore[union-attr]
    t = getattr(x, "type", None)
    if isinstance(t, TensorType) and t.shape is not None:
        return list(range(len(t.shape)))[::-1]
    return None

