"""Reductions (Reduce*, ArgMax/ArgMin): the reduced axes become 1 (keepdims) or disappear."""

from __future__ import annotations

from pyonnx.ir import DataType, TensorType
from pyonnx.shape_inference._common import norm_axis, tensor
from pyonnx.shape_inference.engine import InferenceContext
from pyonnx.shape_inference.registry import shape_rule

REDUCE = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
          "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare")


@shape_rule(REDUCE)
def reduce(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    elem = ctx.elem(0)
    keepdims = bool(int(ctx.attr("keepdims", 1)))
    axes_as_input = ctx.since_version >= (13 if ctx.node.op_type == "ReduceSum" else 18)
    if axes_as_input:
        noop = bool(int(ctx.attr("noop_with_empty_axes", 0)))
        if ctx.has_input(1) and not (ctx.shape(1) == (0,)):
            p = ctx.partial(1)
            if p is None or not all(isinstance(d, int) for d in p):
                if s is None:
                    return tensor(elem, None)
                if keepdims:  # a dim of 1 stays 1 whether reduced or not
                    return tensor(elem, [1 if d == 1 else None for d in s])
                k = ctx.shape(1)
                if k is not None and len(k) == 1 and isinstance(k[0], int) and k[0] > 0:
                    return tensor(elem, [None] * (len(s) - k[0]))  # axes are distinct
                return tensor(elem, None)
            axes = [int(d) for d in p]  # type: ignore[arg-type]
        else:
            axes = []
        if not axes and noop:
            return tensor(elem, s)
    else:
        axes = list(ctx.attr("axes", []) or [])
    if s is None:
        return tensor(elem, None)
    ax = {norm_axis(a, len(s), ctx) for a in axes} if axes else set(range(len(s)))
    if keepdims:
        return tensor(elem, [1 if i in ax else d for i, d in enumerate(s)])
    return tensor(elem, [d for i, d in enumerate(s) if i not in ax])


@shape_rule(("ArgMax", "ArgMin"))
def arg_reduce(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    if s is None:
        return tensor(DataType.INT64, None)
    axis = norm_axis(int(ctx.attr("axis", 0)), len(s), ctx)
    if int(ctx.attr("keepdims", 1)):
        return tensor(DataType.INT64, [1 if i == axis else d for i, d in enumerate(s)])
    return tensor(DataType.INT64, [d for i, d in enumerate(s) if i != axis])
