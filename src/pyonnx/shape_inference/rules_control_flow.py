"""Control flow: If (branch results merged), Loop and Scan (bodies inferred with the types their
inputs take; loop-carried dims that change between iterations become symbolic), SequenceMap."""

from __future__ import annotations

from collections.abc import Sequence

from pyonnx.ir import (
    DataType,
    MapType,
    OptionalType,
    SequenceType,
    SparseTensorType,
    TensorType,
    Type,
)
from pyonnx.ir.types import Dim
from pyonnx.shape_inference._common import norm_axis, tensor
from pyonnx.shape_inference.engine import InferenceContext
from pyonnx.shape_inference.registry import shape_rule


def join_types(a: Type | None, b: Type | None) -> Type | None:
    """The most specific type both ``a`` and ``b`` satisfy: equal dims kept, others unknown."""
    if a is None or b is None:
        return None
    if isinstance(a, TensorType) and isinstance(b, TensorType):
        elem = a.elem_type if a.elem_type == b.elem_type else (
            a.elem_type if b.elem_type == DataType.UNDEFINED else
            b.elem_type if a.elem_type == DataType.UNDEFINED else None)
        if elem is None:
            return None
        if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
            return TensorType(elem, None)
        return TensorType(elem, tuple(x if x == y else None for x, y in zip(a.shape, b.shape)))
    if isinstance(a, SparseTensorType) and isinstance(b, SparseTensorType):
        j = join_types(TensorType(a.elem_type, a.shape), TensorType(b.elem_type, b.shape))
        return SparseTensorType(j.elem_type, j.shape) if isinstance(j, TensorType) else None
    if isinstance(a, SequenceType) and isinstance(b, SequenceType):
        return SequenceType(join_types(a.elem_type, b.elem_type))
    if isinstance(a, OptionalType) and isinstance(b, OptionalType):
        return OptionalType(join_types(a.elem_type, b.elem_type))
    if isinstance(a, MapType) and isinstance(b, MapType) and a.key_type == b.key_type:
        return MapType(a.key_type, join_types(a.value_type, b.value_type))
    return None


def _fill(ctx: InferenceContext, t: Type | None) -> Type | None:
    """Unknown dims of a type get fresh symbols (so a body can relate them)."""
    if isinstance(t, TensorType) and t.shape is not None:
        return TensorType(t.elem_type, tuple(ctx.fresh() if d is None else d for d in t.shape))
    if isinstance(t, SequenceType):
        return SequenceType(_fill(ctx, t.elem_type))
    if isinstance(t, OptionalType):
        return OptionalType(_fill(ctx, t.elem_type))
    return t


@shape_rule("If")
def if_(ctx: InferenceContext) -> list[Type | None]:
    then_g, else_g = ctx.graph_attr("then_branch"), ctx.graph_attr("else_branch")
    if then_g is None or else_g is None:
        raise ctx.fail("then_branch and else_branch are required")
    cond = ctx.value(0)
    if cond is not None and cond.size == 1:
        # a known condition selects one branch; the other may not even fit these shapes
        # (exporters dispatch on rank or size this way), so it is not inferred
        taken = ctx.infer_graph(then_g if bool(cond.reshape(-1)[0]) else else_g, [])
        if len(taken) != ctx.num_outputs:
            raise ctx.fail(f"the branch has {len(taken)} outputs; the node has "
                           f"{ctx.num_outputs}")
        return list(taken)
    t, t_fail = ctx.try_infer_graph(then_g, [])
    e, e_fail = ctx.try_infer_graph(else_g, [])
    # A branch that inference proves would fail with these inputs cannot be the one a
    # successful run takes (exporters build both sides for every input size, as silero-vad's
    # 8 kHz branch for a 16 kHz frame): the node's outputs are the other branch's.
    if t_fail and e_fail:
        raise ctx.fail(f"both branches fail with these inputs: then_branch: {t_fail}; "
                       f"else_branch: {e_fail}")
    if t_fail or e_fail:
        taken = e if t_fail else t
        if len(taken) != ctx.num_outputs:
            raise ctx.fail(f"the branch has {len(taken)} outputs; the node has "
                           f"{ctx.num_outputs}")
        return list(taken)
    if len(t) != len(e):
        raise ctx.fail(f"then_branch has {len(t)} outputs, else_branch {len(e)}")
    if len(t) != ctx.num_outputs:
        raise ctx.fail(f"the branches have {len(t)} outputs; the node has {ctx.num_outputs}")
    return [join_types(a, b) for a, b in zip(t, e)]


def _same_pattern(a: Sequence[Type | None], b: Sequence[Type | None]) -> bool:
    return list(a) == list(b)


@shape_rule("Loop")
def loop(ctx: InferenceContext) -> list[Type | None]:
    body = ctx.graph_attr("body")
    if body is None:
        raise ctx.fail("attribute 'body' is required")
    n_carried = max(ctx.num_inputs - 2, 0)
    carried: list[Type | None] = [ctx.input_type(2 + i) for i in range(n_carried)]
    head = [TensorType(DataType.INT64, ()), TensorType(DataType.BOOL, ())]
    outs: list[Type | None] = []
    for _ in range(4):
        outs = ctx.infer_graph(body, head + carried)
        if len(outs) < 1 + n_carried:
            raise ctx.fail(f"the body has {len(outs)} outputs; it needs at least "
                           f"{1 + n_carried} (cond and the loop-carried values)")
        nxt = [join_types(c, o) for c, o in zip(carried, outs[1:1 + n_carried])]
        nxt = [n if n == c else _fill(ctx, n) for n, c in zip(nxt, carried)]
        if _same_pattern(nxt, carried):
            break
        carried = nxt
    # the number of iterations is known when the trip count is and cond never stops it early
    trip: Dim = None
    m = ctx.value(0)
    cond_in = body.inputs[1] if len(body.inputs) > 1 else None
    passthrough = body.outputs and cond_in is not None and body.outputs[0] is cond_in
    c0 = ctx.value(1)
    if m is not None and m.size == 1 and passthrough and (c0 is None and not ctx.has_input(1)
                                                           or c0 is not None and bool(c0)):
        trip = int(m.reshape(-1)[0])
    result: list[Type | None] = list(carried)
    for t in outs[1 + n_carried:]:
        if isinstance(t, TensorType):
            result.append(TensorType(t.elem_type, None if t.shape is None else (trip, *t.shape)))
        else:
            result.append(None)
    return result


@shape_rule("Scan")
def scan(ctx: InferenceContext) -> list[Type | None]:
    body = ctx.graph_attr("body")
    if body is None:
        raise ctx.fail("attribute 'body' is required")
    m = int(ctx.attr("num_scan_inputs"))
    legacy = ctx.since_version < 9  # Scan-8: sequence_lens input and a batch axis
    first = 1 if legacy else 0
    if not 1 <= m <= ctx.num_inputs - first:
        raise ctx.fail(f"num_scan_inputs is {m}, but the node has "
                       f"{ctx.num_inputs - first} state and scan inputs; it must be between 1 "
                       f"and that number")
    n_state = ctx.num_inputs - first - m
    if len(body.outputs) < n_state:
        raise ctx.fail(f"the body has {len(body.outputs)} outputs but the node has {n_state} "
                       f"loop state variables; the body must return each of them first")
    if len(body.inputs) != n_state + m:
        raise ctx.fail(f"the body has {len(body.inputs)} inputs; expected {n_state + m} (the "
                       f"{n_state} loop state variables, then one slice per scan input)")
    states = [ctx.input_type(first + i) for i in range(n_state)]
    scans = [ctx.tensor_type(first + n_state + j) for j in range(m)]
    in_axes = list(ctx.attr("scan_input_axes", None) or [0] * m) if not legacy else [1] * m
    seq: Dim = None
    slice_types: list[Type | None] = []
    batch: Dim = None
    for j, t in enumerate(scans):
        if t is None or t.shape is None:
            slice_types.append(t and TensorType(t.elem_type, None))
            continue
        ax = norm_axis(in_axes[j], len(t.shape), ctx)
        if seq is None:
            seq = t.shape[ax]
        if legacy:
            batch = t.shape[0]
            slice_types.append(TensorType(t.elem_type, t.shape[2:]))
        else:
            slice_types.append(TensorType(t.elem_type, t.shape[:ax] + t.shape[ax + 1:]))
    if legacy:
        body_states = [TensorType(s.elem_type, s.shape[1:] if s.shape else None)
                       if isinstance(s, TensorType) else None for s in states]
    else:
        body_states = list(states)
    outs = ctx.infer_graph(body, [*body_states, *slice_types])
    k = len(outs) - n_state
    out_axes = list(ctx.attr("scan_output_axes", None) or [0] * k) if not legacy else [0] * k
    result: list[Type | None] = []
    for i in range(n_state):
        t = join_types(body_states[i], outs[i]) if body_states[i] is not None else outs[i]
        if legacy and isinstance(t, TensorType) and t.shape is not None:
            t = TensorType(t.elem_type, (batch, *t.shape))
        result.append(t)
    for j, t in enumerate(outs[n_state:]):
        if not isinstance(t, TensorType) or t.shape is None:
            result.append(tensor(t.elem_type, None) if isinstance(t, TensorType) else None)
            continue
        if legacy:
            result.append(TensorType(t.elem_type, (batch, seq, *t.shape)))
            continue
        ax = norm_axis(out_axes[j], len(t.shape) + 1, ctx)
        shape = list(t.shape)
        shape.insert(ax, seq)
        result.append(TensorType(t.elem_type, tuple(shape)))
    return result


@shape_rule("SequenceMap")
def sequence_map(ctx: InferenceContext) -> list[Type | None]:
    body = ctx.graph_attr("body")
    if body is None:
        raise ctx.fail("attribute 'body' is required")
    ins: list[Type | None] = []
    for i in range(ctx.num_inputs):
        t = ctx.input_type(i)
        ins.append(t.elem_type if isinstance(t, SequenceType) else t)
    outs = ctx.infer_graph(body, ins)
    return [SequenceType(t) for t in outs]
