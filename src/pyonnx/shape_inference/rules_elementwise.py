"""Element-wise operators: unary (same shape), binary and variadic broadcasting, comparisons,
Cast/CastLike, Where, Clip and friends; with data propagation of shape arithmetic."""

from __future__ import annotations

from collections.abc import Callable

from pyonnx.ir import DataType, TensorType
from pyonnx.ir.types import Dim
from pyonnx.shape_inference._common import broadcast, norm_axis, tensor
from pyonnx.shape_inference.engine import InferenceContext
from pyonnx.shape_inference.registry import shape_rule
from pyonnx.shape_inference.symbolic import (
    dim_add,
    dim_floordiv,
    dim_mul,
    dim_sub,
    is_concrete,
)

# y has x's shape and element type
UNARY_SAME = (
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Celu", "Cos", "Cosh",
    "Elu", "Erf", "Exp", "Floor", "Gelu", "HardSigmoid", "HardSwish", "LeakyRelu", "Log", "Mish",
    "Neg", "Reciprocal", "Relu", "Round", "Selu", "Sigmoid", "Sign", "Sin", "Sinh", "Softplus",
    "Softsign", "Sqrt", "Tan", "Tanh", "ThresholdedRelu", "Shrink", "Swish", "BitwiseNot", "Not",
    "Hardmax", "LogSoftmax", "Softmax", "LpNormalization", "MeanVarianceNormalization", "LRN",
    "Clip", "Trilu", "CumSum", "CumProd",
)
# shape of the first input, element type bool
UNARY_BOOL = ("IsNaN", "IsInf")

BINARY_SAME = ("Add", "Sub", "Mul", "Div", "Mod", "Pow", "BitShift", "BitwiseAnd", "BitwiseOr",
               "BitwiseXor", "PRelu")
BINARY_BOOL = ("And", "Or", "Xor", "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual")
VARIADIC = ("Max", "Min", "Sum", "Mean")


_SOFTMAX_FAMILY = frozenset({"Softmax", "LogSoftmax", "Hardmax"})


@shape_rule(UNARY_SAME)
def unary_same(ctx: InferenceContext) -> TensorType | None:
    if ctx.node.op_type in _SOFTMAX_FAMILY:
        # the axis must name a dim of the input, so a scalar input has none to normalize over
        r = ctx.rank(0)
        if r is not None:
            axis = int(ctx.attr("axis", -1 if ctx.since_version >= 13 else 1))
            if r == 0:
                raise ctx.fail("input is a scalar (rank 0); it needs at least one dim to "
                               "normalize over")
            norm_axis(axis, r, ctx)
    return ctx.tensor_type(0)


@shape_rule(UNARY_BOOL)
def unary_bool(ctx: InferenceContext) -> TensorType | None:
    return tensor(DataType.BOOL, ctx.shape(0))


def _legacy_broadcast(ctx: InferenceContext) -> tuple[Dim, ...] | None:
    """Opset < 7 binary ops broadcast B onto A only when ``broadcast=1``: the output is A's.
    PRelu broadcasts its slope onto X (per channel before opset 7): the output is always X's."""
    if ctx.since_version < 7 or ctx.node.op_type == "PRelu":
        return ctx.shape(0)
    return broadcast([ctx.shape(i) for i in range(ctx.num_inputs)], ctx)


_ARITH: dict[str, Callable[[Dim, Dim], Dim]] = {
    "Add": dim_add,
    "Sub": dim_sub,
    "Mul": dim_mul,
    "Div": lambda a, b: (dim_floordiv(a, b) if is_concrete(b) and b > 0  # type: ignore[operator]
                         and (not is_concrete(a) or a >= 0) else None),  # type: ignore[operator]
}


def _propagate_arith(ctx: InferenceContext, fn: Callable[[Dim, Dim], Dim]) -> None:
    """Shape arithmetic on rank-0/1 integer vectors with symbolic entries (``N*2``)."""
    elem = ctx.elem(0)
    if elem not in (DataType.INT64, DataType.INT32):
        return
    a, b = ctx.partial(0), ctx.partial(1)
    if a is None or b is None or ctx.rank(0) is None or ctx.rank(1) is None:
        return
    if len(a) != len(b):
        if len(a) == 1:
            a = a * len(b)
        elif len(b) == 1:
            b = b * len(a)
        else:
            return
    out = [fn(x, y) if x is not None and y is not None else None for x, y in zip(a, b)]
    ctx.set_value(0, out, scalar=max(ctx.rank(0) or 0, ctx.rank(1) or 0) == 0)


@shape_rule(BINARY_SAME)
def binary_same(ctx: InferenceContext) -> TensorType | None:
    fn = _ARITH.get(ctx.node.op_type)
    if fn is not None:
        _propagate_arith(ctx, fn)
    return tensor(ctx.elem(0), _legacy_broadcast(ctx))


@shape_rule(BINARY_BOOL)
def binary_bool(ctx: InferenceContext) -> TensorType | None:
    shape = _legacy_broadcast(ctx)
    if ctx.node.op_type == "Equal" and ctx.rank(0) is not None and ctx.rank(0) <= 1 \
            and ctx.rank(1) is not None and ctx.rank(1) <= 1:
        _propagate_equal(ctx)
    return tensor(DataType.BOOL, shape)


def _propagate_equal(ctx: InferenceContext) -> None:
    """``Equal(shape, -1)`` and the like on dims: a symbolic dim equals itself and is never
    negative; anything else undecided leaves the value unknown."""
    a, b = ctx.partial(0), ctx.partial(1)
    if a is None or b is None:
        return
    if len(a) != len(b):
        if len(a) == 1:
            a = a * len(b)
        elif len(b) == 1:
            b = b * len(a)
        else:
            return
    out = []
    for x, y in zip(a, b):
        if x is None or y is None:
            return
        if x == y:
            out.append(True)
        elif is_concrete(x) and is_concrete(y):
            out.append(False)
        elif (is_concrete(x) and x < 0) or (is_concrete(y) and y < 0):  # type: ignore[operator]
            out.append(False)
        else:
            return
    import numpy as np

    arr = np.array(out, dtype=bool)
    ctx.set_value(0, arr.reshape(()) if max(ctx.rank(0) or 0, ctx.rank(1) or 0) == 0 else arr)


@shape_rule(VARIADIC)
def variadic(ctx: InferenceContext) -> TensorType | None:
    present = [i for i in range(ctx.num_inputs) if ctx.has_input(i)]
    if ctx.since_version < 8:
        shapes = [ctx.shape(i) for i in present]
        if any(s is not None and s != shapes[0] for s in shapes):
            return tensor(ctx.elem(present[0]) if present else None, None)
        return tensor(ctx.elem(present[0]) if present else None, shapes[0] if shapes else None)
    shape = broadcast([ctx.shape(i) for i in present], ctx)
    if ctx.node.op_type in ("Max", "Min") and ctx.rank(present[0]) == 1 and len(present) == 2:
        a, b = ctx.partial(present[0]), ctx.partial(present[1])
        if a is not None and b is not None and len(a) == len(b):
            out = [x if x == y else None for x, y in zip(a, b)]
            ctx.set_value(0, out)
    return tensor(ctx.elem(present[0]) if present else None, shape)


@shape_rule("Where")
def where(ctx: InferenceContext) -> TensorType | None:
    shape = broadcast([ctx.shape(0), ctx.shape(1), ctx.shape(2)], ctx)
    cond = ctx.value(0)
    x, y = ctx.partial(1), ctx.partial(2)
    if cond is not None and x is not None and y is not None and cond.ndim <= 1 \
            and shape is not None and len(shape) == 1 and is_concrete(shape[0]):
        n = shape[0]
        c = list(cond.reshape(-1)) * (n if cond.size == 1 else 1)
        xs = x * (n if len(x) == 1 else 1)
        ys = y * (n if len(y) == 1 else 1)
        if len(c) == len(xs) == len(ys) == n:
            ctx.set_value(0, [a if bool(k) else b for k, a, b in zip(c, xs, ys)])
    return tensor(ctx.elem(1) or ctx.elem(2), shape)


@shape_rule("Cast")
def cast(ctx: InferenceContext) -> TensorType | None:
    to = ctx.attr("to")
    if isinstance(to, str):  # Cast-1 spells the type as a string
        try:
            elem = DataType[to.upper()]
        except KeyError:
            elem = None
    else:
        elem = DataType(int(to)) if to is not None else None
    p = ctx.partial(0)
    if p is not None and elem in (DataType.INT64, DataType.INT32) and ctx.rank(0) is not None:
        ctx.set_value(0, p, scalar=ctx.rank(0) == 0)
    return tensor(elem, ctx.shape(0))


@shape_rule("CastLike")
def cast_like(ctx: InferenceContext) -> TensorType | None:
    elem = ctx.elem(1)
    p = ctx.partial(0)
    if p is not None and elem in (DataType.INT64, DataType.INT32) and ctx.rank(0) is not None:
        ctx.set_value(0, p, scalar=ctx.rank(0) == 0)
    return tensor(elem, ctx.shape(0))
