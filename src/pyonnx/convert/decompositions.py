"""Operators expressed by older ones, for going below the opset that introduced them.

Each entry is a DOWN adapter at the operator's first ``since_version`` *v*: it returns nodes
written for opset *v - 1* that compute the same outputs (the algebra of the spec's function body
or defining formula, stated in the docstring). The nodes then continue down like any others, so
a decomposition needs only operators that exist at *v - 1*; where one of those is missing further
down, that node is refused there.
"""

from __future__ import annotations

import math

import numpy as np

from pyonnx.convert._context import Ctx, Refuse, attr_value
from pyonnx.convert.adapters import DOWN, down
from pyonnx.ir import DataType, Node, Value

__all__ = ["group_norm"]

_FLOATS = (DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16)


def _float_dtype(ctx: Ctx, node: Node, v: Value | None) -> DataType:
    dt = ctx.dtype(v)
    if dt is None:
        raise Refuse("the decomposition needs the input's element type, which is unknown")
    if dt not in _FLOATS:
        raise Refuse(f"the decomposition is defined for float types, not {dt.onnx_name}")
    return dt


class _Emit:
    """Collects the nodes of one decomposition; ``op`` returns the first output."""

    def __init__(self, ctx: Ctx, at: int) -> None:
        self.ctx = ctx
        self.at = at  # the opset the nodes are written for
        self.nodes: list[Node] = []

    def reduce(self, op_type: str, x: Value, axes: list[int]) -> Value:
        """A keepdims reduction over ``axes``, its axes an input from opset 18 on."""
        if self.at >= 18:
            return self.op(op_type, x, self.ctx.constant(np.array(axes, np.int64), "axes"),
                           keepdims=1)
        return self.op(op_type, x, axes=axes, keepdims=1)

    def op(self, op_type: str, *inputs: Value | None, outputs: list[Value] | None = None,
           n: int = 1, **attrs: object) -> Value:
        node = self.ctx.node(op_type, list(inputs), n, outputs=outputs, **attrs)
        self.nodes.append(node)
        return node.outputs[0]

    def const(self, value: object, dt: DataType, hint: str = "c") -> Value:
        return self.ctx.constant(np.array(value, dtype=dt.numpy), hint)


@down(("Gelu", 20))
def _gelu(ctx: Ctx, node: Node) -> list[Node]:
    """none: x/2 * (1 + erf(x / sqrt 2)); tanh: x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))."""
    x = node.inputs[0]
    dt = _float_dtype(ctx, node, x)
    e = _Emit(ctx, 19)
    if attr_value(node, "approximate", "none") == "tanh":
        cube = e.op("Mul", e.op("Mul", x, x), x)
        inner = e.op("Add", x, e.op("Mul", cube, e.const(0.044715, dt)))
        t = e.op("Tanh", e.op("Mul", inner, e.const(math.sqrt(2 / math.pi), dt)))
    else:
        t = e.op("Erf", e.op("Mul", x, e.const(1 / math.sqrt(2), dt)))
    one_plus = e.op("Add", t, e.const(1.0, dt))
    e.op("Mul", e.op("Mul", x, e.const(0.5, dt)), one_plus, outputs=node.outputs[:1])
    return e.nodes


def _mean_var_normalize(e: _Emit, x: Value, axes: list[int], eps: float, dt: DataType
                        ) -> tuple[Value, Value, Value]:
    """(x - mean) / sqrt(var + eps) over ``axes``; returns (normalized, mean, 1/sqrt(var+eps))."""
    mean = e.reduce("ReduceMean", x, axes)
    d = e.op("Sub", x, mean)
    var = e.reduce("ReduceMean", e.op("Mul", d, d), axes)
    inv = e.op("Reciprocal", e.op("Sqrt", e.op("Add", var, e.const(eps, dt))))
    return e.op("Mul", d, inv), mean, inv


@down(("LayerNormalization", 17))
def _layer_norm(ctx: Ctx, node: Node) -> list[Node]:
    """Y = (X - mean) / sqrt(var + eps) * Scale + B over axes [axis, rank); computed in the
    stash type (float by default); Mean and InvStdDev are the statistics kept (keepdims)."""
    x, scale = node.inputs[0], node.inputs[1]
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    dt = _float_dtype(ctx, node, x)
    axis = attr_value(node, "axis", -1)
    eps = float(attr_value(node, "epsilon", 1e-5))
    stash = attr_value(node, "stash_type", 1)
    r = ctx.rank(x)
    if axis < 0:
        axes = list(range(axis, 0))
    elif r is not None:
        axes = list(range(axis, r))
    else:
        raise Refuse(f"axis={axis} needs the input's rank, which is unknown")
    e = _Emit(ctx, 16)
    cdt = DataType.FLOAT if stash == 1 else dt
    xc = x if cdt == dt else e.op("Cast", x, to=int(cdt))
    normed, mean, inv = _mean_var_normalize(e, xc, axes, eps, cdt)
    if cdt != dt:
        normed = e.op("Cast", normed, to=int(dt))
    outs = node.outputs
    y = e.op("Mul", normed, scale, outputs=None if bias is not None else outs[:1])
    if bias is not None:
        e.op("Add", y, bias, outputs=outs[:1])
    for k, stat in ((1, mean), (2, inv)):
        if len(outs) > k and outs[k].name:
            e.op("Identity", stat, outputs=[outs[k]])
    return e.nodes


@down(("RMSNormalization", 23))
def _rms_norm(ctx: Ctx, node: Node) -> list[Node]:
    """Y = X / sqrt(mean(X^2) + eps) * scale over axes [axis, rank), in the stash type."""
    x, scale = node.inputs[0], node.inputs[1]
    dt = _float_dtype(ctx, node, x)
    axis = attr_value(node, "axis", -1)
    eps = float(attr_value(node, "epsilon", 1e-5))
    r = ctx.rank(x)
    if axis < 0:
        axes = list(range(axis, 0))
    elif r is not None:
        axes = list(range(axis, r))
    else:
        raise Refuse(f"axis={axis} needs the input's rank, which is unknown")
    e = _Emit(ctx, 22)
    cdt = DataType.FLOAT if attr_value(node, "stash_type", 1) == 1 else dt
    xc = x if cdt == dt else e.op("Cast", x, to=int(cdt))
    ms = e.reduce("ReduceMean", e.op("Mul", xc, xc), axes)
    inv = e.op("Reciprocal", e.op("Sqrt", e.op("Add", ms, e.const(eps, cdt))))
    normed = e.op("Mul", xc, inv)
    if cdt != dt:
        normed = e.op("Cast", normed, to=int(dt))
    e.op("Mul", normed, scale, outputs=node.outputs[:1])
    return e.nodes


def group_norm(ctx: Ctx, node: Node, per_channel: bool) -> list[Node]:
    """GroupNormalization: X [N, C, ...] seen as [N, G, -1] is normalized per (n, g); before
    opset 21 scale/bias are per group (applied in that view), from 21 per channel (applied in
    the [N, C, -1] view). The result takes X's shape back."""
    x, scale, bias = node.inputs[0], node.inputs[1], node.inputs[2]
    dt = _float_dtype(ctx, node, x)
    g = int(attr_value(node, "num_groups"))
    eps = float(attr_value(node, "epsilon", 1e-5))
    e = _Emit(ctx, 20 if per_channel else 17)
    grouped = e.op("Reshape", x, ctx.constant(np.array([0, g, -1], np.int64), "gn_shape"))
    normed, _, _ = _mean_var_normalize(e, grouped, [2], eps, dt)
    if per_channel:  # opset 21's per-channel scale and bias: view the result as [N, C, -1]
        normed = e.op("Reshape", normed,
                      e.op("Concat", e.op("Slice", e.op("Shape", x),
                                          ctx.constant(np.array([0], np.int64), "s"),
                                          ctx.constant(np.array([2], np.int64), "e")),
                           ctx.constant(np.array([-1], np.int64), "m1"), axis=0))
    col = ctx.constant(np.array([-1, 1], np.int64), "gn_col")
    y = e.op("Add", e.op("Mul", normed, e.op("Reshape", scale, col)), e.op("Reshape", bias, col))
    e.op("Reshape", y, e.op("Shape", x), outputs=node.outputs[:1])
    return e.nodes


@down(("GroupNormalization", 18))
def _group_norm18(ctx: Ctx, node: Node) -> list[Node]:
    return group_norm(ctx, node, per_channel=False)


@down(("HardSwish", 14))
def _hard_swish(ctx: Ctx, node: Node) -> list[Node]:
    """x * HardSigmoid(x, alpha=1/6, beta=1/2)."""
    x = node.inputs[0]
    e = _Emit(ctx, 13)
    hs = e.op("HardSigmoid", x, alpha=1 / 6, beta=0.5)
    e.op("Mul", x, hs, outputs=node.outputs[:1])
    return e.nodes


@down(("Mish", 18))
def _mish(ctx: Ctx, node: Node) -> list[Node]:
    """x * tanh(softplus(x))."""
    x = node.inputs[0]
    e = _Emit(ctx, 17)
    e.op("Mul", x, e.op("Tanh", e.op("Softplus", x)), outputs=node.outputs[:1])
    return e.nodes


@down(("Celu", 12))
def _celu(ctx: Ctx, node: Node) -> list[Node]:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)), with min(0, y) = -relu(-y)."""
    x = node.inputs[0]
    dt = _float_dtype(ctx, node, x)
    alpha = float(attr_value(node, "alpha", 1.0))
    e = _Emit(ctx, 11)
    em1 = e.op("Sub", e.op("Exp", e.op("Div", x, e.const(alpha, dt))), e.const(1.0, dt))
    neg = e.op("Relu", e.op("Neg", e.op("Mul", em1, e.const(alpha, dt))))
    e.op("Sub", e.op("Relu", x), neg, outputs=node.outputs[:1])
    return e.nodes


def _or_equal(strict: str):
    def fn(ctx: Ctx, node: Node) -> list[Node]:
        """a >= b is (a > b) or (a == b) (NaN compares false in both)."""
        a, b = node.inputs
        e = _Emit(ctx, 11)
        e.op("Or", e.op(strict, a, b), e.op("Equal", a, b), outputs=node.outputs[:1])
        return e.nodes
    return fn


DOWN[("GreaterOrEqual", 12)] = _or_equal("Greater")
DOWN[("LessOrEqual", 12)] = _or_equal("Less")


@down(("CastLike", 15))
def _cast_like(ctx: Ctx, node: Node) -> list[Node]:
    """Cast to the element type of the second input."""
    dt = ctx.dtype(node.inputs[1])
    if dt is None:
        raise Refuse("the target type (input 1's element type) is unknown")
    if node.attributes.get("saturate") is not None and not attr_value(node, "saturate"):
        raise Refuse("saturate=0 has no equivalent before opset 19")
    return [ctx.node("Cast", [node.inputs[0]], outputs=node.outputs[:1], to=int(dt))]


@down(("Swish", 24))
def _swish(ctx: Ctx, node: Node) -> list[Node]:
    """x * sigmoid(alpha * x)."""
    x = node.inputs[0]
    dt = _float_dtype(ctx, node, x)
    alpha = float(attr_value(node, "alpha", 1.0))
    e = _Emit(ctx, 23)
    ax = x if alpha == 1.0 else e.op("Mul", x, e.const(alpha, dt))
    e.op("Mul", x, e.op("Sigmoid", ax), outputs=node.outputs[:1])
    return e.nodes


@down(("ThresholdedRelu", 10))
def _thresholded_relu(ctx: Ctx, node: Node) -> list[Node]:
    """x where x > alpha, else 0."""
    x = node.inputs[0]
    dt = _float_dtype(ctx, node, x)
    alpha = float(attr_value(node, "alpha", 1.0))
    e = _Emit(ctx, 9)
    e.op("Where", e.op("Greater", x, e.const(alpha, dt)), x, e.const(0.0, dt),
         outputs=node.outputs[:1])
    return e.nodes


@down(("Attention", 23))
def _attention(ctx: Ctx, node: Node) -> list[Node]:
    """Scaled dot-product attention, the common form: softmax(softcap(Q K^T * scale) + mask) V
    with an optional additive or boolean mask, an upper-left causal mask, grouped KV heads and
    3-D (heads packed in the last dim) or 4-D inputs. Past/present key-value caches, the
    qk_matmul output and softmax_precision are refused."""
    q, k, v = node.inputs[0], node.inputs[1], node.inputs[2]
    mask = node.inputs[3] if len(node.inputs) > 3 else None
    if any(i is not None for i in node.inputs[4:]):
        raise Refuse("past key/value caches (and nonpad_kv_seqlen) are not decomposed")
    if any(o.name for o in node.outputs[1:]):
        raise Refuse("only output Y is decomposed (present key/value and qk_matmul_output "
                     "are not)")
    if attr_value(node, "softmax_precision") is not None:
        raise Refuse("softmax_precision is not decomposed")
    dt = _float_dtype(ctx, node, q)
    if dt == DataType.BFLOAT16:
        raise Refuse("bfloat16 attention is not decomposed: its scores lose too much precision "
                     "in bfloat16 MatMul/Softmax")
    rank = ctx.rank(q)
    if rank not in (3, 4) or ctx.rank(k) != rank or ctx.rank(v) != rank:
        raise Refuse("Q, K and V must have a known rank, 3 or 4")
    e = _Emit(ctx, 22)
    hq, hkv = attr_value(node, "q_num_heads"), attr_value(node, "kv_num_heads")
    if rank == 3:
        if not hq or not hkv:
            raise Refuse("3-D inputs need q_num_heads and kv_num_heads")

        def heads(x: Value, h: int) -> Value:  # [B, S, h*D] -> [B, h, S, D]
            shape = ctx.constant(np.array([0, 0, h, -1], np.int64), "heads")
            return e.op("Transpose", e.op("Reshape", x, shape), perm=[0, 2, 1, 3])

        q, k, v = heads(q, hq), heads(k, hkv), heads(v, hkv)
    else:
        qs, ks = ctx.shape(q), ctx.shape(k)
        hq, hkv = qs[1], ks[1]
    if hq != hkv:
        if not (isinstance(hq, int) and isinstance(hkv, int) and hq % hkv == 0):
            raise Refuse("grouped KV heads need the head counts known")
        group = hq // hkv

        def repeat(x: Value) -> Value:  # [B, Hkv, L, D] -> [B, Hkv*group, L, D]
            x5 = e.op("Unsqueeze", x, ctx.constant(np.array([2], np.int64), "ax"))
            x5 = e.op("Expand", x5, ctx.constant(np.array([1, 1, group, 1, 1], np.int64), "g"))
            # [B, Hkv, group, L, D] -> [B, Hq, L, D]: B and D read from the value's shape
            return e.op("Reshape", x5, e.op(
                    "Concat", e.op("Slice", e.op("Shape", x5), ctx.constant(
                        np.array([0], np.int64), "s0"), ctx.constant(np.array([1], np.int64),
                                                                    "s1")),
                    ctx.constant(np.array([hq, -1], np.int64), "hq"),
                    e.op("Slice", e.op("Shape", x5), ctx.constant(np.array([4], np.int64), "s4"),
                         ctx.constant(np.array([5], np.int64), "s5")), axis=0))

        k, v = repeat(k), repeat(v)
    head = ctx.shape(node.inputs[0])
    scale = attr_value(node, "scale")
    if scale is None:
        d = head[-1] if rank == 4 else None
        if rank == 3 and isinstance(head[-1], int):
            d = head[-1] // hq
        if not isinstance(d, int):
            raise Refuse("the default scale needs the head size known")
        scale = 1.0 / math.sqrt(d)
    scores = e.op("MatMul", q, e.op("Transpose", k, perm=[0, 1, 3, 2]))
    scores = e.op("Mul", scores, e.const(scale, dt))
    softcap = float(attr_value(node, "softcap", 0.0))
    if softcap > 0:
        scores = e.op("Mul", e.op("Tanh", e.op("Div", scores, e.const(softcap, dt))),
                      e.const(softcap, dt))
    if mask is not None:
        if ctx.dtype(mask) == DataType.BOOL:
            scores = e.op("Where", mask, scores, e.const(-np.inf, dt))
        else:
            scores = e.op("Add", scores, mask)
    if attr_value(node, "is_causal", 0):
        s, l_ = ctx.shape(q if rank == 4 else node.inputs[0]), ctx.shape(node.inputs[1])
        sq, lk = s[-2] if rank == 4 else s[1], l_[-2] if rank == 4 else l_[1]
        if not (isinstance(sq, int) and isinstance(lk, int)):
            raise Refuse("is_causal needs the query and key lengths known")
        keep = np.tril(np.ones((sq, lk), bool))
        scores = e.op("Where", ctx.constant(keep, "causal"), scores, e.const(-np.inf, dt))
    probs = e.op("Softmax", scores, axis=-1)
    if mask is not None or attr_value(node, "is_causal", 0):
        # a fully masked row (all -inf) attends to nothing: zeros, not softmax's NaN
        masked = e.op("Equal", e.reduce("ReduceMax", scores, [-1]), e.const(-np.inf, dt))
        probs = e.op("Where", masked, e.const(0.0, dt), probs)
    y = e.op("MatMul", probs, v, outputs=None if rank == 3 else node.outputs[:1])
    if rank == 3:
        t = e.op("Transpose", y, perm=[0, 2, 1, 3])
        e.op("Reshape", t, ctx.constant(np.array([0, 0, -1], np.int64), "merge"),
             outputs=node.outputs[:1])
    return e.nodes
