"""Scaled dot-product attention -> ``pyonnx::DotProductAttention`` (session only).

The core of attention as the exporters write it::

    S = MatMul(Q, Kt)                    # (..., q, d) @ (..., d, k)
    S = Add(S, M)                        # optional: the additive mask / bias
    P = Softmax(S, axis=-1)
    P = Where(IsNaN(P), 0, P)            # optional: torch's guard for fully masked rows
    Y = MatMul(P, V)

becomes one node of the session-private domain whose kernel (backends/cpu/fused.py) runs the
same steps with the same kernels, so the result is the same to the bit, guard included: it only
saves the dispatch of five nodes and the temporaries between them (the scores are updated in
place). The scale, the projections and the head reshapes stay as they are.

Where every softmax row provably keeps a finite score (no mask, or a causal mask), the extended
stage has already written the pattern as com.microsoft MultiHeadAttention
(:mod:`~pyonnx.optimizer.passes.fuse_multi_head_attention`), and this pass finds nothing there.
What it still fuses is the rest, a key-padding mask above all: onnxruntime's kernels have no NaN
guard, and for a query whose row of ``S + M`` is all -inf (a fully padded sequence) or holds a
NaN/inf (overflowing activations), the guarded model gives zeros and onnxruntime's
MultiHeadAttention gives NaN (measured with onnxruntime 1.32), so that fusion would change
results the original defines, and it stays private to the session.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node, TensorType, Value
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import (
    FUSED_DOMAIN, attr, constant_of, graph_inputs, insert_node, is_standard, protected_values,
    since_version,
)
from pyonnx.optimizer.passes._match import made_by, used_only_by

__all__ = ["FuseAttention"]


class FuseAttention(GraphPass):
    """``MatMul(Where(IsNaN(P), 0, P) | P, V)`` with ``P = Softmax(MatMul(Q, Kt) [+ M])`` ->
    ``pyonnx::DotProductAttention(Q, Kt, V[, M])`` (``nan_to_zero`` records the guard)."""

    name = "fuse_attention"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for mm2 in list(graph.nodes):
            if mm2.graph is not graph or mm2.op_type != "MatMul" or not is_standard(mm2) \
                    or len(mm2.inputs) != 2 or None in mm2.inputs:
                continue
            match = _match(mm2, graph, model, keep, inputs)
            if match is None:
                continue
            q, kt, v, mask, guard_zero, interior = match
            out = mm2.outputs[0]
            ins = [q, kt, v] + ([mask] if mask is not None else [])
            attrs = [Attribute("nan_to_zero", AttributeType.INT, int(guard_zero is not None))]
            # the fused node takes over the final MatMul's output at the final MatMul's place,
            # where all four inputs are defined; then the pattern's nodes go (every value
            # between them is read only inside it)
            fused = Node("DotProductAttention", ins, [out], domain=FUSED_DOMAIN,
                         name=mm2.name or "attention", attributes=attrs)
            insert_node(graph, fused, mm2)
            graph.remove_many(interior)
            mm2.outputs = []
            model.opset_imports.setdefault(FUSED_DOMAIN, 1)
            modified = True
        return modified


def _match(mm2: Node, graph: Graph, model: Model, keep: set[int], inputs: set[int],
           rank: Callable[[Value], int | None] | None = None
           ) -> tuple[Value, Value, Value, Value | None, float | None, list[Node]] | None:
    """The attention core ending in ``mm2``: (Q, Kt, V, mask or None, the guard's zero or None,
    the core's nodes in order); ``rank`` gives a value's rank (default: its declared type's)."""
    rank = rank or _rank
    p, v = mm2.inputs
    guard_zero = None
    nodes: list[Node] = []
    where = made_by(p, "Where", graph)
    if where is not None:  # Where(IsNaN(P), 0, P)
        cond, zero, p_in = where.inputs
        isnan = made_by(cond, "IsNaN", graph)
        z = constant_of(zero, inputs)
        if isnan is None or isnan.inputs[0] is not p_in or z is None or z.size != 1 \
                or z.dtype.kind != "f" or float(z.ravel()[0]) != 0.0 or z.ndim > 1 \
                or bool(np.signbit(z.ravel()[0])):  # -0.0 would be a different guard
            return None
        guard_zero = float(z.ravel()[0])
        nodes += [where, isnan]
        p = p_in
    softmax = made_by(p, "Softmax", graph)
    if softmax is None or since_version(model, softmax) < 13 \
            or int(attr(softmax, "axis", -1)) != -1:  # type: ignore[arg-type]
        return None
    nodes.append(softmax)
    s = softmax.inputs[0]
    mask = None
    add = made_by(s, "Add", graph)
    if add is not None and len(add.inputs) == 2 and "broadcast" not in add.attributes:
        a, b = add.inputs
        mm1 = made_by(a, "MatMul", graph)
        if mm1 is None:
            mm1, b = made_by(b, "MatMul", graph), a
        if mm1 is None or b is None:
            return None
        # the scores must keep their shape when the mask is added (an in-place add): the mask
        # may not have more dimensions than the scores, where both ranks are known
        rs, rm = rank(mm1.outputs[0]), rank(b)
        if rm is not None and (rs is None or rm > rs):
            return None
        mask = b
        nodes.append(add)
    else:
        mm1 = made_by(s, "MatMul", graph)
        if mm1 is None:
            return None
    nodes.append(mm1)
    if len(mm1.inputs) != 2 or None in mm1.inputs:
        return None
    q, kt = mm1.inputs
    interior = [n.outputs[0] for n in nodes]
    # every value between the first MatMul and the last is read only inside the pattern (the
    # IsNaN and the Where both read the softmax)
    if not used_only_by(interior, nodes + [mm2], keep):
        return None
    if any(len(n.outputs) != 1 for n in nodes):
        return None
    return q, kt, v, mask, guard_zero, nodes[::-1] + [mm2]


def _rank(v: Value) -> int | None:
    t = v.type
    if isinstance(t, TensorType) and t.shape is not None:
        return len(t.shape)
    return None
