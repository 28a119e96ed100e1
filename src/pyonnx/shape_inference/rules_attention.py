"""The attention family: Attention (23-25), LinearAttention and CausalConvWithState (27),
FlexAttention (ai.onnx.preview 1).

Each rule works on symbolic dims: outputs keep whatever the inputs say (named batch and sequence
dims pass through), and every fact the spec ties together is checked where both sides are
known — ranks, head counts and their divisibility, agreeing batch/sequence/head sizes, element
types, attribute values and which optional inputs and outputs go together. A contradiction is a
:class:`~pyonnx.errors.ShapeInferenceError` naming the node, the input or attribute and the
values.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyonnx.ir import DataType, TensorType
from pyonnx.ir.types import Dim
from pyonnx.shape_inference._common import tensor
from pyonnx.shape_inference.engine import InferenceContext
from pyonnx.shape_inference.registry import shape_rule
from pyonnx.shape_inference.symbolic import dim_add, dim_exact_div, dim_mul, is_concrete

_FLOATS = frozenset({DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE})


def _unify(ctx: InferenceContext, what: str, *dims: Dim) -> Dim:
    """The one dim that several facts name: a concrete value beats a symbol, a symbol beats
    unknown; two different concrete values are an error naming ``what``."""
    best: Dim = None
    for d in dims:
        if d is None:
            continue
        if is_concrete(d):
            if is_concrete(best) and best != d:
                raise ctx.fail(f"{what} disagree: {best} vs {d}")
            best = d
        elif best is None:
            best = d
    return best


def _rank(ctx: InferenceContext, i: int, name: str, ranks: Sequence[int]) -> tuple[Dim, ...] | None:
    """Input ``i``'s shape, checked to have one of ``ranks``; None when its rank is unknown."""
    s = ctx.shape(i)
    if s is not None and len(s) not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ctx.fail(f"input {name} has shape {list(s)} (rank {len(s)}); rank {want} expected")
    return s


def _same_float_elem(ctx: InferenceContext, names: Sequence[tuple[int, str]]) -> DataType | None:
    """The element type the named inputs share (a float type); a mismatch is an error."""
    elem: DataType | None = None
    first = ""
    for i, name in names:
        e = ctx.elem(i)
        if e is None:
            continue
        if e not in _FLOATS:
            raise ctx.fail(f"input {name} has element type {e.name}; a float type expected")
        if elem is not None and e != elem:
            raise ctx.fail(f"inputs {first} ({elem.name}) and {name} ({e.name}) must have the "
                           f"same element type")
        if elem is None:
            elem, first = e, name
    return elem


def _heads_divide(ctx: InferenceContext, hq: Dim, hkv: Dim) -> None:
    if is_concrete(hq) and is_concrete(hkv):
        if hkv == 0 or hq % hkv:  # type: ignore[operator]
            raise ctx.fail(f"the number of query heads {hq} must be a multiple of the number of "
                           f"key/value heads {hkv}")


def _split(ctx: InferenceContext, hidden: Dim, heads: Dim, name: str) -> Dim:
    """Head size of a packed [.., heads * head_size] dim; indivisible concrete sizes fail."""
    if is_concrete(hidden) and is_concrete(heads):
        if hidden % heads:  # type: ignore[operator]
            raise ctx.fail(f"input {name} has hidden size {hidden}, not a multiple of its number "
                           f"of heads {heads}")
        return hidden // heads  # type: ignore[operator]
    return dim_exact_div(hidden, heads)


def _positive_attr(ctx: InferenceContext, name: str) -> int | None:
    v = ctx.attr(name, None)
    if v is None:
        return None
    if int(v) <= 0:
        raise ctx.fail(f"attribute {name!r} = {int(v)} must be positive")
    return int(v)


# ---------------------------------------------------------------------- Attention

@shape_rule("Attention")
def attention(ctx: InferenceContext) -> list[TensorType | None]:
    """Y, present_key, present_value, qk_matmul_output of scaled dot-product attention."""
    v = ctx.since_version
    names = ["Q", "K", "V", "attn_mask", "past_key", "past_value", "nonpad_kv_seqlen"]
    q = _rank(ctx, 0, "Q", (3, 4))
    k = _rank(ctx, 1, "K", (3, 4))
    val = _rank(ctx, 2, "V", (3, 4))
    ranks = {len(s) for s in (q, k, val) if s is not None}
    if len(ranks) > 1:
        raise ctx.fail(f"Q {list(q or [])}, K {list(k or [])} and V {list(val or [])} must all "
                       f"be 3-D or all 4-D")
    elem = _same_float_elem(ctx, [(0, "Q"), (1, "K"), (2, "V")])
    kv_elem = ctx.elem(4) or ctx.elem(1) or elem
    for a in ("left_window_size", "right_window_size"):
        w = ctx.attr(a, None)
        if w is not None and int(w) < -1:
            raise ctx.fail(f"attribute {a!r} = {int(w)} must be -1 (no limit) or >= 0")
    mode = int(ctx.attr("qk_matmul_output_mode", 0) or 0)
    if mode not in (0, 1, 2, 3):
        raise ctx.fail(f"attribute 'qk_matmul_output_mode' = {mode} must be 0, 1, 2 or 3")
    has_past = ctx.has_input(4), ctx.has_input(5)
    if has_past[0] != has_past[1]:
        raise ctx.fail("inputs past_key and past_value must be given together")
    wants = [i < ctx.num_outputs and bool(ctx.node.outputs[i].name) for i in range(4)]
    if wants[1] != wants[2]:
        raise ctx.fail("outputs present_key and present_value must be requested together")
    if has_past[0] and ctx.has_input(6):
        raise ctx.fail("input nonpad_kv_seqlen (an external KV cache) cannot be used together "
                       "with past_key/past_value")
    hq_attr = _positive_attr(ctx, "q_num_heads")
    hkv_attr = _positive_attr(ctx, "kv_num_heads")
    rank = ranks.pop() if ranks else None
    if rank == 4 and (hq_attr is not None or hkv_attr is not None):
        raise ctx.fail("attributes q_num_heads and kv_num_heads apply to 3-D Q, K, V only; "
                       "4-D inputs carry their heads in dim 1")
    if rank == 3 and (hq_attr is None or hkv_attr is None):
        raise ctx.fail("3-D Q, K, V need the attributes q_num_heads and kv_num_heads")
    pk = _rank(ctx, 4, "past_key", (4,))
    pv = _rank(ctx, 5, "past_value", (4,))
    # everything in the 4-D (batch, heads, length, head size) view
    if rank == 4:
        assert q is not None and k is not None and val is not None
        b = _unify(ctx, "batch sizes of Q, K, V", q[0], k[0], val[0])
        hq, sq, dq = q[1], q[2], q[3]
        hkv = _unify(ctx, "key/value head counts of K and V", k[1], val[1])
        skv = _unify(ctx, "sequence lengths of K and V", k[2], val[2])
        dk, dv = k[3], val[3]
    elif rank == 3:
        assert q is not None and k is not None and val is not None
        b = _unify(ctx, "batch sizes of Q, K, V", q[0], k[0], val[0])
        hq, hkv = hq_attr, hkv_attr
        sq = q[1]
        skv = _unify(ctx, "sequence lengths of K and V", k[1], val[1])
        dq = _split(ctx, q[2], hq, "Q")
        dk = _split(ctx, k[2], hkv, "K")
        dv = _split(ctx, val[2], hkv, "V")
    else:
        b = hq = sq = dq = hkv = skv = dk = dv = None
    if pk is not None:
        b = _unify(ctx, "batch sizes of Q and past_key", b, pk[0])
        hkv = _unify(ctx, "key/value head counts of K and past_key", hkv, pk[1])
        dk = _unify(ctx, "head sizes of K and past_key", dk, pk[3])
    if pv is not None:
        b = _unify(ctx, "batch sizes of Q and past_value", b, pv[0])
        hkv = _unify(ctx, "key/value head counts of V and past_value", hkv, pv[1])
        dv = _unify(ctx, "head sizes of V and past_value", dv, pv[3])
    if pk is not None and pv is not None:
        _unify(ctx, "past lengths of past_key and past_value", pk[2], pv[2])
    dk = _unify(ctx, "head sizes of Q and K", dq, dk)
    _heads_divide(ctx, hq, hkv)
    if ctx.has_input(6):
        nonpad = _rank(ctx, 6, "nonpad_kv_seqlen", (1,))
        if nonpad is not None:
            b = _unify(ctx, "batch sizes of Q and nonpad_kv_seqlen", b, nonpad[0])
    total = skv if pk is None else (dim_add(pk[2], skv) if pk[2] is not None else None)
    if rank is None:
        y = tensor(elem, None)
    elif rank == 4:
        y = tensor(elem, [b, hq, sq, dv])
    else:
        y = tensor(elem, [b, sq, dim_mul(hq, dv) if dv is not None else None])
    known = rank is not None or pk is not None
    present_k = tensor(kv_elem, [b, hkv, total, dk] if known else None)
    present_v = tensor(ctx.elem(5) or ctx.elem(2) or elem, [b, hkv, total, dv] if known else None)
    qk = tensor(elem, [b, hq, sq, total] if rank is not None else None)
    return [y, present_k, present_v, qk][:max(1, ctx.num_outputs)]


# ---------------------------------------------------------------------- LinearAttention

_UPDATE_RULES = ("linear", "gated", "delta", "gated_delta")


@shape_rule("LinearAttention")
def linear_attention(ctx: InferenceContext) -> list[TensorType | None]:
    """output [B, T, Hq * dv] and present_state [B, Hkv, dk, dv] of the linear recurrences."""
    rule = ctx.attr("update_rule", "gated_delta")
    if isinstance(rule, bytes):
        rule = rule.decode()
    if rule not in _UPDATE_RULES:
        raise ctx.fail(f"attribute 'update_rule' = {rule!r} must be one of "
                       f"{', '.join(_UPDATE_RULES)}")
    gated, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    if gated != ctx.has_input(4):
        raise ctx.fail(f"update_rule {rule!r} " + ("needs the decay input" if gated
                                                   else "takes no decay input"))
    if delta != ctx.has_input(5):
        raise ctx.fail(f"update_rule {rule!r} " + ("needs the beta input" if delta
                                                   else "takes no beta input"))
    hq = _positive_attr(ctx, "q_num_heads")
    hkv = _positive_attr(ctx, "kv_num_heads")
    if hq is None or hkv is None:
        raise ctx.fail("attributes q_num_heads and kv_num_heads are required")
    _heads_divide(ctx, hq, hkv)
    chunk = ctx.attr("chunk_size", None)
    if chunk is not None and int(chunk) <= 0:
        raise ctx.fail(f"attribute 'chunk_size' = {int(chunk)} must be positive")
    elem = _same_float_elem(ctx, [(0, "query"), (1, "key"), (2, "value")])
    q = _rank(ctx, 0, "query", (3,))
    k = _rank(ctx, 1, "key", (3,))
    v = _rank(ctx, 2, "value", (3,))
    ps = _rank(ctx, 3, "past_state", (4,))
    dec = _rank(ctx, 4, "decay", (3,))
    bet = _rank(ctx, 5, "beta", (3,))
    b = _unify(ctx, "batch sizes", *(s[0] for s in (q, k, v, dec, bet) if s is not None),
               ps[0] if ps is not None else None)
    t = _unify(ctx, "sequence lengths", *(s[1] for s in (q, k, v, dec, bet) if s is not None))
    dk = _unify(ctx, "key head sizes of query and key",
                _split(ctx, q[2], hq, "query") if q is not None else None,
                _split(ctx, k[2], hkv, "key") if k is not None else None,
                ps[2] if ps is not None else None)
    dv = _unify(ctx, "value head sizes of value and past_state",
                _split(ctx, v[2], hkv, "value") if v is not None else None,
                ps[3] if ps is not None else None)
    if ps is not None:
        _unify(ctx, "key/value head counts of kv_num_heads and past_state", hkv, ps[1])
    if dec is not None and is_concrete(dec[2]):
        per_key = dim_mul(hkv, dk) if dk is not None else None
        if dec[2] != hkv and not (is_concrete(per_key) and dec[2] == per_key):
            per = per_key if per_key is not None else "?"
            raise ctx.fail(f"input decay has last dim {dec[2]}; expected kv_num_heads ({hkv}) "
                           f"or kv_num_heads * head size ({per})")
    if bet is not None and is_concrete(bet[2]) and bet[2] not in (hkv, 1):
        raise ctx.fail(f"input beta has last dim {bet[2]}; expected kv_num_heads ({hkv}) or 1")
    state_elem = ctx.elem(3) or elem
    out = tensor(elem, [b, t, dim_mul(hq, dv) if dv is not None else None])
    state = tensor(state_elem, [b, hkv, dk, dv])
    return [out, state]


# ---------------------------------------------------------------------- CausalConvWithState

@shape_rule("CausalConvWithState")
def causal_conv_with_state(ctx: InferenceContext) -> list[TensorType | None]:
    """output [B, C, L] and present_state [B, C, k - 1] of a depthwise causal 1-D conv."""
    act = ctx.attr("activation", "none")
    if isinstance(act, bytes):
        act = act.decode()
    if act not in ("none", "silu", "swish"):
        raise ctx.fail(f"attribute 'activation' = {act!r} must be one of none, silu, swish")
    elem = ctx.elem(0)
    x = _rank(ctx, 0, "input", (3,))
    w = _rank(ctx, 1, "weight", (3,))
    ps = _rank(ctx, 3, "past_state", (3,))
    bias = _rank(ctx, 2, "bias", (1,))
    c = _unify(ctx, "channel counts of input, weight, bias and past_state",
               x[1] if x is not None else None, w[0] if w is not None else None,
               bias[0] if bias is not None else None, ps[1] if ps is not None else None)
    b = _unify(ctx, "batch sizes of input and past_state", x[0] if x is not None else None,
               ps[0] if ps is not None else None)
    kern = w[2] if w is not None else None
    if w is not None and is_concrete(w[1]) and w[1] != 1:
        raise ctx.fail(f"input weight has shape {list(w)}; dim 1 must be 1 (depthwise)")
    if is_concrete(kern) and kern < 1:  # type: ignore[operator]
        raise ctx.fail(f"input weight has shape {list(w or [])}: kernel size {kern} must be >= 1")
    state_len = dim_add(kern, -1) if kern is not None else None
    if ps is not None:
        state_len = _unify(ctx, "state lengths of weight (k - 1) and past_state", state_len,
                           ps[2])
    length = x[2] if x is not None else None
    known = x is not None or w is not None or ps is not None
    return [tensor(elem, [b, c, length] if x is not None else None),
            tensor(ctx.elem(3) or elem, [b, c, state_len] if known else None)]


# ---------------------------------------------------------------------- FlexAttention

@shape_rule("FlexAttention", domain="ai.onnx.preview")
def flex_attention(ctx: InferenceContext) -> TensorType | None:
    """Y [B, Hq, L, Dv] of attention with score/probability modifier subgraphs."""
    elem = _same_float_elem(ctx, [(0, "Q"), (1, "K"), (2, "V")])
    q = _rank(ctx, 0, "Q", (4,))
    k = _rank(ctx, 1, "K", (4,))
    v = _rank(ctx, 2, "V", (4,))
    b = _unify(ctx, "batch sizes of Q, K, V", *(s[0] for s in (q, k, v) if s is not None))
    hkv = _unify(ctx, "key/value head counts of K and V",
                 *(s[1] for s in (k, v) if s is not None))
    s_len = _unify(ctx, "sequence lengths of K and V", *(s[2] for s in (k, v) if s is not None))
    if q is not None and k is not None:
        _unify(ctx, "head sizes of Q and K", q[3], k[3])
    hq = q[1] if q is not None else None
    _heads_divide(ctx, hq, hkv)
    lq = q[2] if q is not None else None
    sp = ctx.attr("softmax_precision", None)
    if sp is not None:
        code = int(sp)
        if code not in DataType._value2member_map_ or DataType(code) not in _FLOATS:
            raise ctx.fail(f"attribute 'softmax_precision' = {code} is not a float type "
                           f"(1, 10, 11 or 16 expected)")
    # a modifier maps scores of shape [B, Hq, L, S] to the same shape
    mod_elem = DataType(int(sp)) if sp is not None else elem
    for name in ("score_mod", "prob_mod"):
        g = ctx.graph_attr(name)
        if g is None:
            continue
        if len(g.inputs) != 1 or len(g.outputs) != 1:
            raise ctx.fail(f"attribute {name!r}: the subgraph must have one input and one "
                           f"output, it has {len(g.inputs)} and {len(g.outputs)}")
        outs = ctx.infer_graph(g, [tensor(mod_elem, [b, hq, lq, s_len])])
        o = outs[0] if outs else None
        if isinstance(o, TensorType) and o.shape is not None and len(o.shape) != 4:
            raise ctx.fail(f"attribute {name!r}: the subgraph output has rank {len(o.shape)}; "
                           f"it must keep the rank-4 shape of its input")
    if q is None and v is None:
        return tensor(elem, None)
    return tensor(elem, [b, hq, lq, v[3] if v is not None else None])
