"""Multi-head attention -> com.microsoft ``MultiHeadAttention`` (extended level, written files).

The exporters write self attention over projected ``q``, ``k``, ``v`` (each ``[B, S, H*D]``)
as::

    Q  = [Mul(., sq)] Transpose(Reshape(q, [B, S, H, D]), perm=[0, 2, 1, 3])
    Kt = [Mul(., sk)] Transpose(Reshape(k, [B, T, H, D]), perm=[0, 2, 3, 1])
    V  = Transpose(Reshape(v, [B, T, H, D]), perm=[0, 2, 1, 3])
    P  = Softmax(MatMul(Q, Kt) [+ M], axis=-1)
    P  = Where(IsNaN(P), 0, P)                  # optional: torch's guard
    Y  = Transpose(MatMul(P, V), perm=[0, 2, 1, 3])          # [B, S, H, D]

which becomes ``MultiHeadAttention(q, k, v, attention_bias=M, num_heads=H, scale=sq*sk)``
(``Y`` as a Reshape of its ``[B, S, H*D]`` output, or its output itself where only a Reshape to
fixed dims reads ``Y``). The core (the two products, mask, softmax and guard) is the one that
:mod:`~pyonnx.optimizer.passes.fuse_attention` matches.

When the fusion is exact. onnxruntime's MultiHeadAttention has no NaN guard: a softmax row that
is NaN (all its scores -inf, or a NaN/inf among them) stays NaN there, where the guarded graph
gives zeros. The pass therefore fuses only where every row of scores provably holds a finite
entry, so that for finite activations no row is NaN and the guard changes nothing:

* no mask at all (vision transformers, encoders without padding): every score is finite;
* a constant mask with a finite entry in every row (checked element by element);
* a mask ``Where(C, a, b)`` of two finite constants: every entry is finite (the padding masks
  of 0 and float32's lowest that torch and Hugging Face export: a fully padded row attends
  evenly, in the graph as in the operator);
* a mask ``M = Where(C, a, b)`` (``a`` a finite constant where C holds, or ``b`` one where it
  does not) whose condition provably holds (does not hold) on the diagonal ``q == k`` of the
  last two axes, with square scores (the query and key lengths are the same run-time size): the
  diagonal then keeps a finite score in every row. The proof follows the condition through
  And/Or/Not and comparisons (Equal, LessOrEqual, GreaterOrEqual true, Less, Greater false) of
  two integer values that are one function of the coordinates with the key axis read as the
  query axis, so that they are equal where ``q == k`` (:mod:`._coordinates`: coordinates built
  by Range(0, n, 1), Unsqueeze and Expand, one integer tensor placed by Unsqueeze or read by
  GatherND at such coordinates: the causal and packed-sequence masks that torch's exporter
  writes). Every value on the way spans the full ``[S, S]`` of the last two axes, and each
  compared coordinate its axis, so that no broadcast size-1 axis stands in for the diagonal.
  gpt2_small without an attention_mask input is such a case: its mask is ``pos[k] <= pos[q]``
  and-ed with ``segment[q] == segment[k]``.

A key-padding mask of -inf can mask a whole row (a fully padded sequence), so guarded, it is
never fused here; the session keeps ``pyonnx::DotProductAttention`` for it.

Without the guard (Hugging Face's exports: DistilBERT, T5, wav2vec2) a NaN row is NaN in the
graph as in the operator, so any float mask of attention_bias's shape is fused. These exports
also scale the scores after the first product, ``Mul(MatMul(Q, Kt), c)`` (the operator's
``scale``, applied where the graph applies it), and T5 adds two masks, its relative position
bias and then the padding mask, which become one bias ``Add(M1, M2)`` that the layers share
(:func:`_mask_sum` says how that rounds).
What remains different after the fusion is only for non-finite activations (a NaN or inf in Q,
K or the scores, where the guarded graph gives a zero row and onnxruntime NaN) and the rounding
of the scale (applied once to the scores instead of to Q and Kt), within float tolerance.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Attribute, AttributeType, DataType, Graph, Model, Node, TensorType, Value
from pyonnx.optimizer._facts import Facts
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import (
    attr, constant_of, graph_inputs, insert_node, is_standard, new_initializer,
    protected_values, replace_uses, since_version, unique_name,
)
from pyonnx.optimizer.passes._match import made_by, scalar, used_only_by
from pyonnx.optimizer.passes._coordinates import index_fn, int_typed, same_dims, unbroadcast
from pyonnx.optimizer.passes.fuse_attention import _match as match_attention_core

__all__ = ["FuseMultiHeadAttention", "diagonal_holds"]

MS = "com.microsoft"


class FuseMultiHeadAttention(FactsPass):
    """Exporters' self attention whose every score row keeps a finite entry ->
    ``com.microsoft.MultiHeadAttention`` (see the module docstring for when and why)."""

    name = "fuse_multi_head_attention"
    anchors = frozenset({"Softmax"})
    requires_facts = True

    def rewrite(self, graph: Graph, model: Model) -> bool:
        facts = self.facts
        assert facts is not None
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        sums: dict[tuple[int, int], Value] = {}  # the masks' sums, shared by the layers
        for mm2 in list(graph.nodes):
            if mm2.graph is not graph or mm2.op_type != "MatMul" or not is_standard(mm2) \
                    or len(mm2.inputs) != 2 or None in mm2.inputs:
                continue
            core = match_attention_core(mm2, graph, model, keep, inputs, rank=facts.rank)
            post_scale = 1.0
            if core is not None:
                q, kt, v, mask, guard, interior = core
                masks = [] if mask is None else [mask]
            else:
                plain = _unguarded_core(mm2, graph, model, keep, inputs)
                if plain is None:
                    continue
                q, kt, v, masks, post_scale, interior = plain
                guard = None
            qh = _heads(q, (0, 2, 1, 3), graph, facts, keep, inputs)
            kh = _heads(kt, (0, 2, 3, 1), graph, facts, keep, inputs)
            vh = _heads(v, (0, 2, 1, 3), graph, facts, keep, inputs, scaled=False)
            if qh is None or kh is None or vh is None:
                continue
            (q3, hq, dq, sq, q_nodes), (k3, hk, dk, sk, k_nodes), (v3, hv, dv, _, v_nodes) = \
                qh, kh, vh
            sq3, sk3, sv3 = facts.shape(q3), facts.shape(k3), facts.shape(v3)
            if not (hq == hk == hv and dq == dk) or not same_dims(sq3[0], sk3[0], sv3[0]) \
                    or not same_dims(sk3[1], sv3[1]):
                continue
            if not all(_float32(facts, x) for x in (q3, k3, v3)):
                continue
            # unguarded, a row of -inf is NaN in the graph as in the operator: any mask is exact
            if not all(_mask_ok(m, sq3, sk3, hq, graph, facts, inputs, guard is not None)
                       for m in masks):
                continue
            y = mm2.outputs[0]
            tr = _single_reader(y, "Transpose", keep)
            if tr is None or list(attr(tr, "perm", [])) != [0, 2, 1, 3]:  # type: ignore
                continue
            head_nodes = q_nodes + k_nodes + v_nodes
            if not used_only_by([n.outputs[0] for n in head_nodes],
                                head_nodes + interior, keep):
                continue
            y4 = tr.outputs[0]
            o3 = Value(unique_name(model, f"{y.name}_mha"),
                       TensorType(DataType.FLOAT, (sq3[0], sq3[1], hv * dv)))
            ins: list[Value | None] = [q3, k3, v3]
            if masks:
                ins += [None, None, _mask_sum(masks, sums, graph, model, facts, tr)]
            attrs = [Attribute("num_heads", AttributeType.INT, int(hq)),
                     Attribute("scale", AttributeType.FLOAT,
                               float(np.float32(sq * sk * post_scale)))]
            # softmax(sq*sk*c * q k^T + M) v per head, written by onnxruntime's operator
            mha = Node("MultiHeadAttention", ins,
                       [o3], domain=MS, name=mm2.name or "attention", attributes=attrs)
            insert_node(graph, mha, tr)
            readers = [n for n, _ in y4.uses]
            if id(y4) not in keep and readers and all(_fixed_reshape(n, inputs) for n in readers):
                replace_uses(y4, o3)  # Reshape(Y, fixed dims) = Reshape(o3, same dims)
            else:  # Y = Reshape(o3, [B, S, H, D])
                shape = new_initializer(graph, unique_name(model, f"{y.name}_heads"),
                                        np.array([0, 0, hv, dv], np.int64))
                back = Node("Reshape", [o3, shape], [y4], name=f"{tr.name}_heads")
                insert_node(graph, back, tr)
                tr.outputs = []
            graph.remove_many(interior + [tr] + head_nodes)
            model.opset_imports.setdefault(MS, 1)
            modified = True
        return modified


def _float32(facts: Facts, v: Value) -> bool:
    t = facts.type(v)
    return isinstance(t, TensorType) and t.elem_type == DataType.FLOAT


def _single_reader(v: Value, op_type: str, keep: set[int]) -> Node | None:
    if id(v) in keep or len(v.uses) != 1:
        return None
    n = v.uses[0][0]
    return n if n.op_type == op_type and is_standard(n) else None


def _heads(x: Value, perm: tuple[int, ...], graph: Graph, facts: Facts, keep: set[int],
           inputs: set[int], scaled: bool = True
           ) -> tuple[Value, int, int, float, list[Node]] | None:
    """``x = [Mul(., s)] Transpose(Reshape(x3, [B, S, H, D]), perm)`` with x3 ``[B, S, H*D]``:
    (x3, H, D, s, the nodes from the Reshape on)."""
    nodes: list[Node] = []
    s = 1.0
    if scaled:
        found = _unscaled(x, "Transpose", graph, inputs, nodes)
        if found is None:
            return None
        s, x = found
    tr = made_by(x, "Transpose", graph)
    if tr is None or tuple(attr(tr, "perm", ())) != perm:  # type: ignore[arg-type]
        return None
    rs = made_by(tr.inputs[0], "Reshape", graph)
    if rs is None or len(rs.inputs) != 2:
        return None
    x3 = rs.inputs[0]
    s3, s4 = facts.shape(x3), facts.shape(rs.outputs[0])
    if s3 is None or s4 is None or len(s3) != 3 or len(s4) != 4:
        return None
    h, d = s4[2], s4[3]
    if not isinstance(h, int) or not isinstance(d, int) or s3[2] != h * d or h <= 0 \
            or not same_dims(s3[0], s4[0]) or not same_dims(s3[1], s4[1]):
        return None
    nodes = [rs, tr] + nodes
    return x3, h, d, s, nodes


def _unscaled(x: Value, op_type: str, graph: Graph, inputs: set[int], nodes: list[Node]
              ) -> tuple[float, Value] | None:
    """``x``, or ``x = Mul(a, c)`` in either order with c a one-element constant of rank 4 at
    most (it leaves a's shape as it is) and a made by ``op_type``: (c, a), the Mul appended to
    ``nodes``; (1.0, x) where no Mul makes x; None where a Mul makes x that is no such scale."""
    mul = made_by(x, "Mul", graph)
    if mul is None:
        return 1.0, x
    if len(mul.inputs) != 2:
        return None
    for a, b in (mul.inputs, mul.inputs[::-1]):
        c = scalar(b, inputs)
        arr = constant_of(b, inputs)
        if c is not None and arr is not None and arr.ndim <= 4 and a is not None \
                and made_by(a, op_type, graph) is not None:
            nodes.append(mul)
            return c, a
    return None


def _fixed_reshape(node: Node, inputs: set[int]) -> bool:
    """Whether ``node`` is a Reshape whose result does not depend on how its input's elements
    are grouped into the trailing dims: a constant shape without a copied (0) dim past the
    first two (the batch and sequence dims, which Y and the fused output share)."""
    if node.op_type != "Reshape" or not is_standard(node) or len(node.inputs) != 2:
        return False
    shape = constant_of(node.inputs[1], inputs)
    if shape is None or shape.ndim != 1:
        return False
    if int(attr(node, "allowzero", 0)):  # type: ignore[arg-type]
        return True
    return not bool(np.any(shape[2:] == 0))


def _unguarded_core(mm2: Node, graph: Graph, model: Model, keep: set[int], inputs: set[int]
                    ) -> tuple[Value, Value, Value, list[Value], float, list[Node]] | None:
    """The attention core that Hugging Face models export without a NaN guard, ending in
    ``mm2`` = MatMul(P, V): ``P = Softmax(Add(Add(S, M1), M2), axis=-1)`` with up to two
    masks (T5's relative position bias, then the padding mask) and ``S = [Mul(](MatMul(Q, Kt)
    [, c)]`` scaled after the product by a scalar constant c (DistilBERT, wav2vec2): (Q, Kt,
    V, the masks, c, the core's nodes in order), or None."""
    p, v = mm2.inputs
    softmax = made_by(p, "Softmax", graph)
    if softmax is None or since_version(model, softmax) < 13 \
            or int(attr(softmax, "axis", -1)) != -1:  # type: ignore[arg-type]
        return None
    nodes = [softmax]
    x = softmax.inputs[0]
    masks: list[Value] = []
    for _ in range(2):
        add = made_by(x, "Add", graph)
        if add is None or len(add.inputs) != 2 or None in add.inputs:
            break
        a, b = add.inputs
        if made_by(a, "MatMul", graph) is None and made_by(a, "Mul", graph) is None \
                and made_by(a, "Add", graph) is None:
            a, b = b, a
        masks.insert(0, b)
        nodes.append(add)
        x = a
    found = _unscaled(x, "MatMul", graph, inputs, nodes)
    if found is None:
        return None
    scale, x = found
    mm1 = made_by(x, "MatMul", graph)
    if mm1 is None or len(mm1.inputs) != 2 or None in mm1.inputs or len(nodes) == 1:
        return None  # a bare Softmax(MatMul) is the shared core's (match_attention_core)
    nodes.append(mm1)
    if any(len(n.outputs) != 1 for n in nodes) \
            or not used_only_by([n.outputs[0] for n in nodes], nodes + [mm2], keep):
        return None
    q, kt = mm1.inputs
    return q, kt, v, masks, scale, nodes[::-1] + [mm2]


def _mask_sum(masks: list[Value], sums: dict[tuple[int, int], Value], graph: Graph,
              model: Model, facts: Facts, before: Node) -> Value:
    """The one attention bias of ``masks``: itself, or ``Add(M1, M2)`` for two (one node per
    pair in the graph, which every layer shares). ``(S + M1) + M2`` becomes ``S + (M1 + M2)``:
    exact where M2 is 0 or absorbs ``S + M1`` (a padding mask's 0 and float32's lowest), in
    general within a rounding of the scores' magnitude."""
    if len(masks) == 1:
        return masks[0]
    m1, m2 = masks
    key = (id(m1), id(m2))
    if key not in sums:
        s1, s2 = facts.shape(m1), facts.shape(m2)
        dims = tuple(a if b == 1 else b for a, b in zip(s1, s2))
        out = Value(unique_name(model, f"{m2.name}_bias"), TensorType(DataType.FLOAT, dims))
        insert_node(graph, Node("Add", [m1, m2], [out], name=unique_name(model, "mask_sum")),
                    before)
        sums[key] = out
    return sums[key]


def _mask_ok(mask: Value, sq3: tuple, sk3: tuple, heads: int, graph: Graph, facts: Facts,
             inputs: set[int], finite: bool = True) -> bool:
    """Whether ``mask`` is an attention_bias onnxruntime takes ([B or 1, H or 1, S, T], float)
    that, with ``finite``, leaves a finite score in every row (see :func:`_finite_diagonal`)."""
    shape = facts.shape(mask)
    if shape is None or len(shape) != 4 or not _float32(facts, mask):
        return False
    b, s, t = sq3[0], sq3[1], sk3[1]
    if not (shape[0] == 1 or same_dims(shape[0], b)) or shape[1] not in (1, heads) \
            or not same_dims(shape[2], s) or not same_dims(shape[3], t):
        return False
    return not finite or _finite_diagonal(mask, graph, facts, inputs)


def _finite_diagonal(mask: Value, graph: Graph, facts: Facts, inputs: set[int]) -> bool:
    """Every row of ``mask`` (over its last axis) holds a finite entry: a constant checked
    element by element, or ``Where(C, a, b)`` whose diagonal ``[..., i, i]`` selects a finite
    constant branch."""
    c = constant_of(mask, inputs)
    if c is not None:
        return c.ndim >= 1 and c.shape[-1] > 0 and bool(np.all(np.any(np.isfinite(c), axis=-1)))
    where = made_by(mask, "Where", graph)
    if where is None or len(where.inputs) != 3:
        return False
    cond, a, b = where.inputs
    both = [constant_of(x, inputs) for x in (a, b)]
    if all(c is not None and c.dtype.kind == "f" and bool(np.all(np.isfinite(c)))
           for c in both):
        return True  # every entry is finite (a padding mask of 0 and float32's lowest)
    shape = facts.shape(mask)
    holds = diagonal_holds(cond, graph, facts, inputs, shape[-1] if shape else None)
    if holds is None:
        return False
    chosen = constant_of(a if holds else b, inputs)
    return chosen is not None and chosen.dtype.kind == "f" and bool(np.all(np.isfinite(chosen)))


def diagonal_holds(v: Value | None, graph: Graph, facts: Facts, inputs: set[int],
                   size: object, depth: int = 0) -> bool | None:
    """What the boolean ``v`` is on the diagonal of its last two axes (``v[..., i, i]`` for
    every i < ``size``): True, False, or None when unproven. Every value on the way but a
    uniform constant must have ``size`` as its last two dims (a broadcast axis would read its
    one element for the whole diagonal)."""
    if v is None or size is None or depth > 32:
        return None
    c = constant_of(v, inputs)
    if c is not None:  # uniform constants only: any shape broadcasts the same value
        if c.dtype != np.bool_ or c.size == 0:
            return None
        if bool(np.all(c)):
            return True
        return False if not bool(np.any(c)) else None
    n = v.producer
    sv = facts.shape(v)
    if n is None or n.graph is not graph or not is_standard(n) or len(n.outputs) != 1 \
            or sv is None or len(sv) < 2 or not same_dims(sv[-1], sv[-2], size):
        return None
    op = n.op_type
    sub = [diagonal_holds(x, graph, facts, inputs, size, depth + 1) for x in n.inputs] \
        if op in ("And", "Or", "Not") else []
    if op == "Not" and len(sub) == 1 and sub[0] is not None:
        return not sub[0]
    if op == "And" and len(sub) == 2:
        if False in sub:
            return False
        return True if sub == [True, True] else None
    if op == "Or" and len(sub) == 2:
        if True in sub:
            return True
        return False if sub == [False, False] else None
    if op in ("Equal", "LessOrEqual", "GreaterOrEqual", "Less", "Greater") \
            and len(n.inputs) == 2:
        a, b = n.inputs
        if not all(int_typed(facts, x) for x in (a, b)):
            return None  # a float NaN is not equal to itself
        fa = index_fn(a, graph, facts, inputs)
        fb = index_fn(b, graph, facts, inputs)
        if fa is None or fb is None or fa[0] != fb[0] \
                or _on_diagonal(fa[1]) != _on_diagonal(fb[1]) \
                or not unbroadcast(a, fa[1], sv, facts) or not unbroadcast(b, fb[1], sv, facts):
            return None
        return op in ("Equal", "LessOrEqual", "GreaterOrEqual")  # x op x on the diagonal
    return None


def _on_diagonal(axes: tuple[int, ...]) -> tuple[int, ...]:
    """The coordinate axes with the key axis (-1) read as the query axis (-2)."""
    return tuple(-2 if a == -1 else a for a in axes)
