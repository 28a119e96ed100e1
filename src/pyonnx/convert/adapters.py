"""The opset adapters: one function per (operator, schema boundary) whose meaning changed there.

``UP[(op, v)]`` moves a node from the schema before ``since_version`` *v* to schema *v*;
``DOWN[(op, v)]`` moves it from schema *v* to the one before. An adapter either edits the node in
place and returns None (the generic rule in :mod:`pyonnx.convert.version` then drops attributes
the next schema lacks when they hold their default), or returns the nodes that replace it, written
for the opset on the far side of the boundary (*v* going up, *v - 1* going down); those continue
from there. An adapter raises :class:`~pyonnx.convert._context.Refuse` with the reason when the
node has no equivalent. Changes that only add types or attributes with backward-compatible
defaults need no adapter: the generic rule and the final type check cover them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pyonnx.convert._context import Ctx, Refuse, attr_value, constant_node_holds, make_attr
from pyonnx.ir import DataType, Node

__all__ = ["UP", "DOWN"]

Adapter = Callable[[Ctx, Node], "list[Node] | None"]
UP: dict[tuple[str, int], Adapter] = {}
DOWN: dict[tuple[str, int], Adapter] = {}

REDUCE_18 = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
             "ReduceMin", "ReduceProd", "ReduceSumSquare")
REDUCE_ALL = (*REDUCE_18, "ReduceSum")
SOFTMAX_LIKE = ("Softmax", "LogSoftmax", "Hardmax")


def up(*keys: tuple[str, int]) -> Callable[[Adapter], Adapter]:
    def deco(fn: Adapter) -> Adapter:
        for k in keys:
            UP[k] = fn
        return fn
    return deco


def down(*keys: tuple[str, int]) -> Callable[[Adapter], Adapter]:
    def deco(fn: Adapter) -> Adapter:
        for k in keys:
            DOWN[k] = fn
        return fn
    return deco


# ---- shared moves --------------------------------------------------------------------------------

def attr_to_input(ctx: Ctx, node: Node, attr: str, index: int, dtype: Any = np.int64) -> None:
    """Attribute ``attr`` becomes constant input ``index`` (absent when the attribute is)."""
    value = attr_value(node, attr)
    if value is None:
        return
    del node.attributes[attr]
    ctx.set_input(node, index, ctx.constant(np.asarray(value, dtype=dtype), f"{node.name}_{attr}"))


def input_to_attr(ctx: Ctx, node: Node, index: int, attr: str, kind: type = int) -> None:
    """Constant input ``index`` becomes attribute ``attr`` (a list of ``kind``)."""
    data = ctx.need_const(node, index, attr)
    if data is not None:
        node.attributes[attr] = make_attr(attr, [kind(x) for x in np.asarray(data).reshape(-1)])
    ctx.drop_input(node, index)


def norm_axis(ctx: Ctx, node: Node, axis: int, rank: int | None) -> int:
    """``axis`` made non-negative (opsets before 11 do not accept negative axes)."""
    if axis >= 0:
        return axis
    if rank is None:
        raise Refuse(f"negative axis {axis} needs the input's rank, which is unknown")
    return axis + rank


def _normalize_axes_attr(name: str, rank_of: Callable[[Ctx, Node], int | None]) -> Adapter:
    def fn(ctx: Ctx, node: Node) -> None:
        v = attr_value(node, name)
        if v is None:
            return None
        if isinstance(v, list):
            if any(a < 0 for a in v):
                r = rank_of(ctx, node)
                node.attributes[name] = make_attr(name, [norm_axis(ctx, node, a, r) for a in v])
        elif v < 0:
            node.attributes[name] = make_attr(name, norm_axis(ctx, node, v, rank_of(ctx, node)))
        return None
    return fn


def _rank0(ctx: Ctx, node: Node) -> int | None:
    return ctx.rank(node.inputs[0])


def _unsqueeze_rank(ctx: Ctx, node: Node) -> int | None:
    r = ctx.rank(node.inputs[0])
    axes = attr_value(node, "axes") or []
    return None if r is None else r + len(axes)


# negative axes arrived in opset 11: going below it, make them non-negative
for _op in ("Concat", "Flatten", "Gather", "ArgMax", "ArgMin", "Split", "Compress", "OneHot",
            "TopK", "Hardmax", "LogSoftmax", "Softmax", "Squeeze", *REDUCE_ALL):
    _name = "axes" if _op == "Squeeze" or _op.startswith("Reduce") else "axis"
    DOWN[(_op, 11)] = _normalize_axes_attr(_name, _rank0)
DOWN[("Unsqueeze", 11)] = _normalize_axes_attr("axes", _unsqueeze_rank)
# OneHot's axis counts in the output, one rank above the indices
DOWN[("OneHot", 11)] = _normalize_axes_attr(
    "axis", lambda ctx, node: None if ctx.rank(node.inputs[0]) is None
    else ctx.rank(node.inputs[0]) + 1)


# ---- Reshape, Squeeze / Unsqueeze, Split, Slice, Pad, Clip, TopK ---------------------------------

@up(("Reshape", 5))
def _reshape_up5(ctx: Ctx, node: Node) -> None:
    attr_to_input(ctx, node, "shape", 1)
    node.attributes.pop("consumed_inputs", None)


@down(("Reshape", 14))
def _reshape_down14(ctx: Ctx, node: Node) -> None:
    if attr_value(node, "allowzero", 0):
        shape = ctx.const(node.inputs[1])
        same = (not (np.asarray(shape) == 0).any()) if shape is not None else \
            _zero_copy_agrees(ctx, node)
        if not same:
            raise Refuse("allowzero=1 with a shape that may hold 0 has no equivalent before "
                         "opset 14 (0 meant 'copy the input dim' then)")
        del node.attributes["allowzero"]


def _zero_copy_agrees(ctx: Ctx, node: Node) -> bool:
    """Whether a Reshape with a run-time shape gives the same result with allowzero=0: the two
    differ only where the shape holds 0 and the input dim there is not 0. Shape inference proves
    they do not when each output dim is a positive number or the very symbol of the input dim at
    that position (a 0 there would then be copied from an input dim that is 0 too)."""
    out, x = ctx.shape(node.outputs[0]), ctx.shape(node.inputs[0])
    if out is None:
        return False
    for i, d in enumerate(out):
        if isinstance(d, int) and d > 0:
            continue
        if isinstance(d, str) and x is not None and i < len(x) and x[i] == d:
            continue
        return False
    return True


@up(("Squeeze", 13), ("Unsqueeze", 13))
def _axes_up13(ctx: Ctx, node: Node) -> None:
    attr_to_input(ctx, node, "axes", 1)


@down(("Squeeze", 13), ("Unsqueeze", 13))
def _axes_down13(ctx: Ctx, node: Node) -> None:
    input_to_attr(ctx, node, 1, "axes")


@up(("Split", 13))
def _split_up13(ctx: Ctx, node: Node) -> None:
    attr_to_input(ctx, node, "split", 1)


@down(("Split", 13))
def _split_down13(ctx: Ctx, node: Node) -> None:
    input_to_attr(ctx, node, 1, "split")


@up(("Split", 18))
def _split_up18(ctx: Ctx, node: Node) -> None:
    if len(node.inputs) < 2 or node.inputs[1] is None:
        # equal parts: Split-18 wants the count stated
        node.attributes["num_outputs"] = make_attr("num_outputs", len(node.outputs))


@down(("Split", 18))
def _split_down18(ctx: Ctx, node: Node) -> None:
    n = attr_value(node, "num_outputs")
    if n is None:
        return
    del node.attributes["num_outputs"]
    shape = ctx.shape(node.inputs[0])
    axis = attr_value(node, "axis", 0)
    dim = None
    if shape is not None and -len(shape) <= axis < len(shape):
        dim = shape[axis]
    if isinstance(dim, int):
        # Split-18 makes ceil(d/n)-sized parts with a smaller last one; earlier opsets need them
        chunk = -(-dim // n)
        sizes = [min(chunk, max(0, dim - chunk * i)) for i in range(n)]
        ctx.set_input(node, 1, ctx.constant(np.array(sizes, np.int64), f"{node.name}_split"))
    # unknown dim: equal parts, as Split-13 without 'split' computes (it rejects uneven dims)


@up(("Slice", 10))
def _slice_up10(ctx: Ctx, node: Node) -> None:
    starts, ends = attr_value(node, "starts"), attr_value(node, "ends")
    axes = attr_value(node, "axes")
    for k in ("starts", "ends", "axes"):
        node.attributes.pop(k, None)
    ctx.set_input(node, 1, ctx.constant(np.array(starts, np.int64), f"{node.name}_starts"))
    ctx.set_input(node, 2, ctx.constant(np.array(ends, np.int64), f"{node.name}_ends"))
    if axes is not None:
        ctx.set_input(node, 3, ctx.constant(np.array(axes, np.int64), f"{node.name}_axes"))


@down(("Slice", 10))
def _slice_down10(ctx: Ctx, node: Node) -> None:
    steps = ctx.need_const(node, 4, "steps") if len(node.inputs) > 4 else None
    if steps is not None and (np.asarray(steps) != 1).any():
        raise Refuse("steps other than 1 have no equivalent before opset 10")
    if len(node.inputs) > 4:
        ctx.drop_input(node, 4)
    axes = ctx.need_const(node, 3, "axes") if len(node.inputs) > 3 else None
    starts = ctx.need_const(node, 1, "starts")
    ends = ctx.need_const(node, 2, "ends")
    for i in (3, 2, 1):
        if len(node.inputs) > i:
            ctx.drop_input(node, i)
    node.attributes["starts"] = make_attr("starts", [int(x) for x in np.reshape(starts, -1)])
    node.attributes["ends"] = make_attr("ends", [int(x) for x in np.reshape(ends, -1)])
    if axes is not None:
        node.attributes["axes"] = make_attr("axes", [int(x) for x in np.reshape(axes, -1)])


@down(("Slice", 11))
def _slice_down11(ctx: Ctx, node: Node) -> None:
    if len(node.inputs) > 3 and node.inputs[3] is not None:
        axes = ctx.need_const(node, 3, "axes")
        if (np.asarray(axes) < 0).any():
            r = ctx.rank(node.inputs[0])
            fixed = [norm_axis(ctx, node, int(a), r) for a in np.reshape(axes, -1)]
            ctx.drop_input(node, 3)
            ctx.set_input(node, 3, ctx.constant(np.array(fixed, np.int64), f"{node.name}_axes"))


@up(("Pad", 11))
def _pad_up11(ctx: Ctx, node: Node) -> None:
    pads = attr_value(node, "pads", attr_value(node, "paddings"))
    value = float(attr_value(node, "value", 0.0))
    for k in ("pads", "paddings", "value"):
        node.attributes.pop(k, None)
    ctx.set_input(node, 1, ctx.constant(np.array(pads, np.int64), f"{node.name}_pads"))
    if value != 0.0:
        dt = ctx.dtype(node.inputs[0])
        if dt is None:
            raise Refuse("the padding value must become an input of the data's type, "
                         "which is unknown")
        ctx.set_input(node, 2, ctx.constant(np.array(value, dt.numpy), f"{node.name}_value"))


@down(("Pad", 11))
def _pad_down11(ctx: Ctx, node: Node) -> None:
    pads = ctx.need_const(node, 1, "pads")
    value = ctx.need_const(node, 2, "constant_value") if len(node.inputs) > 2 else None
    for i in (2, 1):
        if len(node.inputs) > i:
            ctx.drop_input(node, i)
    node.attributes["pads"] = make_attr("pads", [int(x) for x in np.reshape(pads, -1)])
    if value is not None and np.asarray(value).size:
        node.attributes["value"] = make_attr("value", float(np.reshape(value, -1)[0]))


@down(("Pad", 18))
def _pad_down18(ctx: Ctx, node: Node) -> None:
    if len(node.inputs) < 4 or node.inputs[3] is None:
        return
    axes = ctx.need_const(node, 3, "axes")
    pads = ctx.need_const(node, 1, "pads")
    r = ctx.rank(node.inputs[0])
    if r is None:
        raise Refuse("'axes' can only be expanded into full pads when the data's rank is known")
    full = np.zeros(2 * r, np.int64)
    axes = [norm_axis(ctx, node, int(a), r) for a in np.reshape(axes, -1)]
    pads = np.reshape(pads, -1)
    for k, a in enumerate(axes):
        full[a] = pads[k]
        full[a + r] = pads[k + len(axes)]
    ctx.drop_input(node, 3)
    ctx.drop_input(node, 1)
    ctx.set_input(node, 1, ctx.constant(full, f"{node.name}_pads"))


@down(("Pad", 19))
def _pad_down19(ctx: Ctx, node: Node) -> None:
    if attr_value(node, "mode", "constant") == "wrap":
        raise Refuse("mode='wrap' has no equivalent before opset 19")


@up(("Clip", 11))
def _clip_up11(ctx: Ctx, node: Node) -> None:
    lo, hi = attr_value(node, "min"), attr_value(node, "max")
    node.attributes.pop("min", None)
    node.attributes.pop("max", None)
    if lo is None and hi is None:
        return
    dt = ctx.dtype(node.inputs[0]) or DataType.FLOAT
    if lo is not None:
        ctx.set_input(node, 1, ctx.constant(np.array(lo, dt.numpy), f"{node.name}_min"))
    if hi is not None:
        ctx.set_input(node, 2, ctx.constant(np.array(hi, dt.numpy), f"{node.name}_max"))


@down(("Clip", 11))
def _clip_down11(ctx: Ctx, node: Node) -> None:
    lo = ctx.need_const(node, 1, "min") if len(node.inputs) > 1 else None
    hi = ctx.need_const(node, 2, "max") if len(node.inputs) > 2 else None
    for i in (2, 1):
        if len(node.inputs) > i:
            ctx.drop_input(node, i)
    if lo is not None:
        node.attributes["min"] = make_attr("min", float(np.reshape(lo, -1)[0]))
    if hi is not None:
        node.attributes["max"] = make_attr("max", float(np.reshape(hi, -1)[0]))


@up(("TopK", 10))
def _topk_up10(ctx: Ctx, node: Node) -> None:
    attr_to_input(ctx, node, "k", 1)
    if len(node.inputs) > 1:  # K is a 1-D tensor of one element
        k = ctx.const(node.inputs[1])
        ctx.drop_input(node, 1)
        ctx.set_input(node, 1, ctx.constant(np.reshape(k, (1,)), f"{node.name}_k"))


@down(("TopK", 10))
def _topk_down10(ctx: Ctx, node: Node) -> None:
    k = ctx.need_const(node, 1, "K")
    ctx.drop_input(node, 1)
    node.attributes["k"] = make_attr("k", int(np.reshape(k, -1)[0]))


@down(("TopK", 11))
def _topk_down11(ctx: Ctx, node: Node) -> None:
    if not attr_value(node, "largest", 1):
        raise Refuse("largest=0 (the smallest k) has no equivalent before opset 11")
    node.attributes.pop("sorted", None)  # unsorted order is unspecified: sorted is one such
    node.attributes.pop("largest", None)
    _normalize_axes_attr("axis", _rank0)(ctx, node)


# ---- reductions --------------------------------------------------------------------------------

def _reduce_up(ctx: Ctx, node: Node) -> None:
    attr_to_input(ctx, node, "axes", 1)


def _reduce_down(ctx: Ctx, node: Node) -> list[Node] | None:
    noop = attr_value(node, "noop_with_empty_axes", 0)
    node.attributes.pop("noop_with_empty_axes", None)
    axes = ctx.need_const(node, 1, "axes") if len(node.inputs) > 1 else None
    if len(node.inputs) > 1:
        ctx.drop_input(node, 1)
    if axes is not None and np.asarray(axes).size:
        node.attributes["axes"] = make_attr("axes", [int(a) for a in np.reshape(axes, -1)])
        return None
    if noop:  # no axes and noop_with_empty_axes: the input unchanged
        return [ctx.node("Identity", [node.inputs[0]], outputs=node.outputs)]
    return None


UP[("ReduceSum", 13)] = _reduce_up
DOWN[("ReduceSum", 13)] = _reduce_down
for _op in REDUCE_18:
    UP[(_op, 18)] = _reduce_up
    DOWN[(_op, 18)] = _reduce_down


# ---- Softmax, LogSoftmax, Hardmax: the axis meaning before 13 ----------------------------------

def _softmax_up13(ctx: Ctx, node: Node) -> list[Node] | None:
    """Before 13 the input was coerced to 2-D at ``axis`` (default 1) and normalized over the
    second dim; from 13 over the one axis (default -1). Same meaning when axis is the last."""
    axis = attr_value(node, "axis", 1)
    r = ctx.rank(node.inputs[0])
    if axis == -1 or (r is not None and norm_axis(ctx, node, axis, r) == r - 1):
        node.attributes["axis"] = make_attr("axis", -1)
        return None
    # Flatten(axis) -> op over the last axis -> Reshape back to the input's shape
    x = node.inputs[0]
    flat = ctx.node("Flatten", [x], axis=axis)
    sm = ctx.node(node.op_type, [flat.outputs[0]], axis=-1)
    shape = ctx.node("Shape", [x])
    back = ctx.node("Reshape", [sm.outputs[0], shape.outputs[0]], outputs=node.outputs)
    return [flat, sm, shape, back]


def _softmax_down13(ctx: Ctx, node: Node) -> list[Node] | None:
    axis = attr_value(node, "axis", -1)
    r = ctx.rank(node.inputs[0])
    if axis == -1 or (r is not None and norm_axis(ctx, node, axis, r) == r - 1):
        # coerced to 2-D at the last axis, the old form normalizes over that axis alone
        node.attributes["axis"] = make_attr("axis", -1 if r is None else r - 1)
        return None
    if r is None:
        raise Refuse(f"axis={axis} other than the last needs the input's rank, which is unknown")
    a = norm_axis(ctx, node, axis, r)
    perm = list(range(r))
    perm[a], perm[-1] = perm[-1], perm[a]  # swap: its own inverse
    t1 = ctx.node("Transpose", [node.inputs[0]], perm=perm)
    sm = ctx.node(node.op_type, [t1.outputs[0]], axis=r - 1)
    t2 = ctx.node("Transpose", [sm.outputs[0]], outputs=node.outputs, perm=perm)
    return [t1, sm, t2]


for _op in SOFTMAX_LIKE:
    UP[(_op, 13)] = _softmax_up13
    DOWN[(_op, 13)] = _softmax_down13


# ---- Upsample / Resize ---------------------------------------------------------------------------

@up(("Upsample", 9))
def _upsample_up9(ctx: Ctx, node: Node) -> None:
    attr_to_input(ctx, node, "scales", 1, np.float32)


@down(("Upsample", 9))
def _upsample_down9(ctx: Ctx, node: Node) -> None:
    input_to_attr(ctx, node, 1, "scales", float)


@up(("Upsample", 10))
def _upsample_to_resize(ctx: Ctx, node: Node) -> list[Node]:
    mode = attr_value(node, "mode", "nearest")
    return [ctx.node("Resize", list(node.inputs[:2]), outputs=node.outputs, mode=mode)]


@down(("Resize", 10))
def _resize_to_upsample(ctx: Ctx, node: Node) -> list[Node]:
    scales = ctx.const(node.inputs[1])
    if scales is not None and (np.asarray(scales) < 1).any():
        raise Refuse("scales below 1 (downsampling) have no equivalent before opset 10")
    mode = attr_value(node, "mode", "nearest")
    return [ctx.node("Upsample", list(node.inputs[:2]), outputs=node.outputs, mode=mode)]


@up(("Resize", 11))
def _resize_up11(ctx: Ctx, node: Node) -> None:
    # Resize-10 samples as 'asymmetric' coordinates with 'floor' rounding for nearest
    mode = attr_value(node, "mode", "nearest")
    scales = node.inputs[1]
    ctx.set_input(node, 1, ctx.constant(np.zeros(0, np.float32), f"{node.name}_roi"))
    ctx.set_input(node, 2, scales)
    node.attributes["coordinate_transformation_mode"] = make_attr(
        "coordinate_transformation_mode", "asymmetric")
    if mode == "nearest":
        node.attributes["nearest_mode"] = make_attr("nearest_mode", "floor")


@down(("Resize", 11))
def _resize_down11(ctx: Ctx, node: Node) -> None:
    mode = attr_value(node, "mode", "nearest")
    ctm = attr_value(node, "coordinate_transformation_mode", "half_pixel")
    if mode not in ("nearest", "linear"):
        raise Refuse(f"mode={mode!r} has no equivalent before opset 11")
    if ctm != "asymmetric":
        if not _resize_is_identity_scale(ctx, node):
            raise Refuse(f"coordinate_transformation_mode={ctm!r} has no equivalent before "
                         f"opset 11 (Resize-10 samples as 'asymmetric')")
    if mode == "nearest" and attr_value(node, "nearest_mode", "round_prefer_floor") != "floor":
        if not _resize_is_identity_scale(ctx, node):
            raise Refuse("nearest_mode other than 'floor' has no equivalent before opset 11")
    if attr_value(node, "exclude_outside", 0):
        raise Refuse("exclude_outside=1 has no equivalent before opset 11")
    scales = _resize_scales(ctx, node)
    for k in ("coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a",
              "exclude_outside", "extrapolation_value"):
        node.attributes.pop(k, None)
    for i in range(len(node.inputs) - 1, 0, -1):
        ctx.drop_input(node, i)
    ctx.set_input(node, 1, ctx.constant(scales, f"{node.name}_scales"))


def _resize_scales(ctx: Ctx, node: Node) -> np.ndarray:
    """The scales of a Resize-11+ node, from its scales input or its sizes and the input shape."""
    scales = ctx.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None \
        else None
    if scales is not None and np.asarray(scales).size:
        return np.asarray(scales, np.float32)
    sizes = ctx.need_const(node, 3, "sizes") if len(node.inputs) > 3 else None
    if sizes is None:
        if len(node.inputs) > 2 and node.inputs[2] is not None:
            raise Refuse("input 2 (scales) is computed at run time; the target opset needs "
                         "it as a constant")
        raise Refuse("neither scales nor sizes is given")
    shape = ctx.shape(node.inputs[0])
    if shape is None or not all(isinstance(d, int) and d > 0 for d in shape):
        raise Refuse("'sizes' can only become scales when the input's shape is known")
    return (np.asarray(sizes, np.float64) / np.asarray(shape, np.float64)).astype(np.float32)


def _resize_is_identity_scale(ctx: Ctx, node: Node) -> bool:
    try:
        return bool((_resize_scales(ctx, node) == 1).all())
    except Refuse:
        return False


@down(("Resize", 13))
def _resize_down13(ctx: Ctx, node: Node) -> None:
    # Resize-11 wants roi and scales present (empty when unused)
    if len(node.inputs) < 2 or node.inputs[1] is None:
        ctx.set_input(node, 1, ctx.constant(np.zeros(0, np.float32), f"{node.name}_roi"))
    if len(node.inputs) < 3 or node.inputs[2] is None:
        ctx.set_input(node, 2, ctx.constant(np.zeros(0, np.float32), f"{node.name}_scales"))


@up(("Resize", 13))
def _resize_up13(ctx: Ctx, node: Node) -> None:
    # Resize-11 said 'absent' with an empty roi, or empty scales beside sizes; from 13 the input
    # itself is left out
    for i in (1, 2):
        if len(node.inputs) > i and node.inputs[i] is not None:
            c = ctx.const(node.inputs[i])
            with_sizes = len(node.inputs) > 3 and node.inputs[3] is not None
            if c is not None and np.asarray(c).size == 0 and (i == 1 or with_sizes):
                ctx.drop_input(node, i)


@down(("Resize", 18))
def _resize_down18(ctx: Ctx, node: Node) -> None:
    if attr_value(node, "antialias", 0):
        raise Refuse("antialias=1 has no equivalent before opset 18")
    if attr_value(node, "keep_aspect_ratio_policy", "stretch") != "stretch":
        raise Refuse("keep_aspect_ratio_policy other than 'stretch' has no equivalent before "
                     "opset 18")
    node.attributes.pop("keep_aspect_ratio_policy", None)
    node.attributes.pop("antialias", None)
    axes = attr_value(node, "axes")
    if axes is None:
        return
    del node.attributes["axes"]
    r = ctx.rank(node.inputs[0])
    if r is None:
        raise Refuse("'axes' can only be expanded when the input's rank is known")
    axes = [norm_axis(ctx, node, a, r) for a in axes]
    if axes == list(range(r)):
        return
    for i, fill in ((2, 1.0), (3, None)):
        if len(node.inputs) > i and node.inputs[i] is not None:
            data = ctx.need_const(node, i, "scales" if i == 2 else "sizes")
            if data.size == 0:
                continue
            if fill is None:
                shape = ctx.shape(node.inputs[0])
                if shape is None or not all(isinstance(shape[d], int) for d in range(r)
                                            if d not in axes):
                    raise Refuse("'axes' with 'sizes' needs the other dims of the input known")
                full = np.array([shape[d] for d in range(r)], np.int64)
            else:
                full = np.ones(r, np.float32)
            for k, a in enumerate(axes):
                full[a] = data[k]
            ctx.drop_input(node, i)
            ctx.set_input(node, i, ctx.constant(full, f"{node.name}_{i}"))
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        roi = ctx.need_const(node, 1, "roi")
        if roi.size:
            full = np.array([0.0] * r + [1.0] * r, roi.dtype)
            for k, a in enumerate(axes):
                full[a] = roi[k]
                full[a + r] = roi[k + len(axes)]
            ctx.drop_input(node, 1)
            ctx.set_input(node, 1, ctx.constant(full, f"{node.name}_roi"))


@down(("Resize", 19))
def _resize_down19(ctx: Ctx, node: Node) -> None:
    if attr_value(node, "coordinate_transformation_mode", "") == "half_pixel_symmetric":
        raise Refuse("coordinate_transformation_mode='half_pixel_symmetric' has no equivalent "
                     "before opset 19")


# ---- Dropout, BatchNormalization ---------------------------------------------------------------

@up(("Dropout", 12))
def _dropout_up12(ctx: Ctx, node: Node) -> None:
    ratio = attr_value(node, "ratio")
    node.attributes.pop("ratio", None)
    if ratio is not None and float(ratio) != 0.5:
        ctx.set_input(node, 1, ctx.constant(np.array(ratio, np.float32), f"{node.name}_ratio"))


@down(("Dropout", 12))
def _dropout_down12(ctx: Ctx, node: Node) -> None:
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        t = ctx.const(node.inputs[2])
        if t is None or bool(np.reshape(t, -1)[0]):
            raise Refuse("training_mode (random dropping at run time) has no equivalent before "
                         "opset 12")
        ctx.drop_input(node, 2)
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        ratio = ctx.const(node.inputs[1])
        ctx.drop_input(node, 1)
        if ratio is not None:
            node.attributes["ratio"] = make_attr("ratio", float(np.reshape(ratio, -1)[0]))
    node.attributes.pop("seed", None)


@down(("Dropout", 10))
def _dropout_down10(ctx: Ctx, node: Node) -> None:
    if len(node.outputs) > 1 and (node.outputs[1].uses or any(
            o is node.outputs[1] for o in ctx.graph.outputs)):
        raise Refuse("the mask output is bool from opset 10 on and of the data's type before")


@down(("BatchNormalization", 14))
def _bn_down14(ctx: Ctx, node: Node) -> None:
    if attr_value(node, "training_mode", 0):
        raise Refuse("training_mode=1 has no equivalent before opset 14")
    for o in node.outputs[1:]:
        if o.uses or any(g is o for g in ctx.graph.outputs):
            raise Refuse("running mean/var outputs are used; before opset 14 they mean "
                         "something else")
    del node.outputs[1:]


@up(("BatchNormalization", 14))
def _bn_up14(ctx: Ctx, node: Node) -> None:
    for o in node.outputs[1:]:
        if o.uses or any(g is o for g in ctx.graph.outputs):
            raise Refuse("training outputs (mean, var, saved mean/var) are used; from opset 14 "
                         "they exist only with training_mode=1")
    del node.outputs[1:]


@down(("Gemm", 11))
def _gemm_down11(ctx: Ctx, node: Node) -> None:
    # C became optional in 11; before, a zero C says 'no bias'
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        return
    dt = ctx.dtype(node.inputs[0])
    if dt is None:
        raise Refuse("C is absent and must become a zero of A's type, which is unknown")
    ctx.set_input(node, 2, ctx.constant(np.zeros((), dt.numpy), f"{node.name}_C"))


@down(("Mod", 28))
def _mod_down28(ctx: Ctx, node: Node) -> None:
    dt = ctx.dtype(node.inputs[0])
    if not attr_value(node, "fmod", 0) and (dt is None or dt.numpy.kind == "f"):
        raise Refuse("fmod=0 on floating-point inputs (Python-style remainder) arrived in "
                     "opset 28; before, float inputs require fmod=1"
                     + (" (the input type is unknown)" if dt is None else ""))


@down(("OptionalHasElement", 18))
def _has_element_down18(ctx: Ctx, node: Node) -> list[Node] | None:
    if node.inputs and node.inputs[0] is not None:
        return None
    # no input means an empty optional: the answer is a constant false
    from pyonnx.ir import Attribute, AttributeType, Tensor

    out = node.outputs[0]
    return [Node("Constant", [], [out], name=node.name, attributes=[Attribute(
        "value", AttributeType.TENSOR, Tensor.from_numpy(np.array(False), out.name))])]


def _scan_batch(ctx: Ctx, node: Node) -> None:
    raise Refuse("Scan-8 scans with a leading batch axis and a sequence_lens input, Scan-9 "
                 "without either; the converter does not rewrite between the two forms")


UP[("Scan", 9)] = _scan_batch
DOWN[("Scan", 9)] = _scan_batch


def _variadic_down8(ctx: Ctx, node: Node) -> list[Node] | None:
    """Sum/Max/Min/Mean broadcast their inputs from opset 8; before, all shapes must agree.
    A Sum of different shapes becomes a chain of (broadcasting) Adds."""
    shapes = [ctx.shape(v) for v in node.inputs if v is not None]
    if all(sh is not None and all(isinstance(d, int) for d in sh) for sh in shapes) and \
            len({tuple(sh) for sh in shapes}) <= 1:  # type: ignore[arg-type]
        return None
    if node.op_type == "Sum" and len(node.inputs) >= 2:
        nodes, acc = [], node.inputs[0]
        for i, v in enumerate(node.inputs[1:], start=1):
            last = i == len(node.inputs) - 1
            add = ctx.node("Add", [acc, v], outputs=node.outputs if last else None)
            nodes.append(add)
            acc = add.outputs[0]
        return nodes
    raise Refuse("inputs of different (or unknown) shapes need the broadcasting of opset 8")


for _op in ("Sum", "Max", "Min", "Mean"):
    DOWN[(_op, 8)] = _variadic_down8


# ---- pooling in ceil mode ----------------------------------------------------------------------

def _ceil_pool_22(ctx: Ctx, node: Node) -> None:
    """From opset 22, ceil mode drops a last window that would start in the end padding; before,
    it was kept. The two agree unless such a window exists, which takes the input's dims to
    tell."""
    if not attr_value(node, "ceil_mode", 0):
        return
    if attr_value(node, "auto_pad", "NOTSET") not in ("NOTSET", ""):
        return
    shape = ctx.shape(node.inputs[0])
    kernel = attr_value(node, "kernel_shape")
    if shape is None or kernel is None or not all(isinstance(d, int) for d in shape[2:]):
        raise Refuse("ceil_mode=1 changed meaning in opset 22 (a last window starting in the "
                     "padding is dropped); the input's spatial dims must be known to convert")
    n = len(kernel)
    pads = attr_value(node, "pads") or [0] * (2 * n)
    strides = attr_value(node, "strides") or [1] * n
    dil = attr_value(node, "dilations") or [1] * n
    for i in range(n):
        size = shape[2 + i] + pads[i] + pads[i + n] - ((kernel[i] - 1) * dil[i] + 1)
        out = -(-size // strides[i]) + 1
        if (out - 1) * strides[i] >= shape[2 + i] + pads[i]:
            raise Refuse("ceil_mode=1 with a last window starting in the padding: opset 22 "
                         "drops that window, earlier opsets keep it")


for _op in ("AveragePool", "MaxPool", "LpPool"):
    UP[(_op, 22)] = _ceil_pool_22
    DOWN[(_op, 22)] = _ceil_pool_22


# ---- Scatter -> ScatterElements, Shape, Constant, Cast, misc ------------------------------------

@up(("Scatter", 11))
def _scatter_up11(ctx: Ctx, node: Node) -> list[Node]:
    return [ctx.node("ScatterElements", list(node.inputs), outputs=node.outputs,
                     axis=attr_value(node, "axis", 0))]


@down(("ScatterElements", 11))
def _scatter_elements_down11(ctx: Ctx, node: Node) -> list[Node]:
    axis = attr_value(node, "axis", 0)
    axis = norm_axis(ctx, node, axis, ctx.rank(node.inputs[0]))
    return [ctx.node("Scatter", list(node.inputs), outputs=node.outputs, axis=axis)]


@down(("Shape", 15))
def _shape_down15(ctx: Ctx, node: Node) -> list[Node] | None:
    start, end = attr_value(node, "start"), attr_value(node, "end")
    if start in (None, 0) and end is None:
        node.attributes.pop("start", None)
        return None
    shape = ctx.node("Shape", [node.inputs[0]])
    big = np.iinfo(np.int64).max
    ins = [shape.outputs[0], ctx.constant(np.array([start or 0], np.int64), "shape_start"),
           ctx.constant(np.array([big if end is None else end], np.int64), "shape_end")]
    return [shape, ctx.node("Slice", ins, outputs=node.outputs)]


@down(("Constant", 12))
def _constant_down12(ctx: Ctx, node: Node) -> None:
    for key, dt in (("value_float", np.float32), ("value_floats", np.float32),
                    ("value_int", np.int64), ("value_ints", np.int64),
                    ("value_string", object), ("value_strings", object)):
        if key in node.attributes:
            data = ctx.const(node.outputs[0]) if dt is not object else np.array(
                attr_value(node, key), dtype=object)
            del node.attributes[key]
            from pyonnx.ir import Tensor

            node.attributes["value"] = make_attr("value", Tensor.from_numpy(
                np.asarray(data, dtype=dt), node.outputs[0].name))


@down(("Constant", 11))
def _constant_down11(ctx: Ctx, node: Node) -> None:
    a = node.attributes.get("sparse_value")
    if a is None:
        return
    from pyonnx.ir import Tensor

    del node.attributes["sparse_value"]
    node.attributes["value"] = make_attr("value", Tensor.from_numpy(a.value.to_dense(),
                                                                    node.outputs[0].name))


@down(("Constant", 9))
def _constant_down9(ctx: Ctx, node: Node) -> list[Node] | None:
    # Constant-1 holds float tensors only: any other type becomes an initializer
    data = ctx.const(node.outputs[0])
    if data is None or constant_node_holds(data.dtype, 8):
        return None
    ctx.to_initializer(node.outputs[0], np.asarray(data))
    return []


@down(("Cast", 19))
def _cast_down19(ctx: Ctx, node: Node) -> None:
    # saturate only matters for float8 targets, which do not exist before opset 19
    node.attributes.pop("saturate", None)


# the largest finite values of the float8 'FNUZ' types, by TensorProto code
_FNUZ_MAX = {int(DataType.FLOAT8E4M3FNUZ): 240.0, int(DataType.FLOAT8E5M2FNUZ): 57344.0}


def _fnuz_target(ctx: Ctx, node: Node) -> int | None:
    """The FNUZ type a saturating Cast/CastLike of a float input converts to, else None."""
    to = attr_value(node, "to") if node.op_type == "Cast" else (
        int(ctx.dtype(node.inputs[1])) if ctx.dtype(node.inputs[1]) is not None else None)
    if to not in _FNUZ_MAX or not attr_value(node, "saturate", 1):
        return None
    dt = ctx.dtype(node.inputs[0])
    if dt is None:
        raise Refuse("a saturating cast to a float8 FNUZ type treats infinities differently "
                     "before opset 24; the input's type must be known to convert it")
    return to if dt.numpy.kind == "f" or dt == DataType.BFLOAT16 else None


@down(("Cast", 24), ("CastLike", 24))
def _cast_fnuz_down24(ctx: Ctx, node: Node) -> list[Node] | None:
    """Saturating casts to FNUZ float8 map +-Inf to +-max from 24, to NaN before: clip first
    (NaN passes Clip unchanged, finite values beyond max saturate either way)."""
    to = _fnuz_target(ctx, node)
    if to is None:
        return None
    x = node.inputs[0]
    dt = ctx.dtype(x)
    m = _FNUZ_MAX[to]
    clip = ctx.node("Clip", [x, ctx.constant(np.array(-m, dt.numpy), "fnuz_min"),
                             ctx.constant(np.array(m, dt.numpy), "fnuz_max")])
    cast = Node(node.op_type, [clip.outputs[0], *node.inputs[1:]], node.outputs,
                name=node.name, attributes=list(node.attributes.values()))
    return [clip, cast]


@up(("Cast", 24), ("CastLike", 24))
def _cast_fnuz_up24(ctx: Ctx, node: Node) -> list[Node] | None:
    """The reverse: before 24 a saturating cast made +-Inf NaN; keep that by turning
    infinities into NaN first."""
    to = _fnuz_target(ctx, node)
    if to is None:
        return None
    x = node.inputs[0]
    dt = ctx.dtype(x)
    isinf = ctx.node("IsInf", [x])
    where = ctx.node("Where", [isinf.outputs[0], ctx.constant(np.array(np.nan, dt.numpy), "nan"),
                               x])
    cast = Node(node.op_type, [where.outputs[0], *node.inputs[1:]], node.outputs,
                name=node.name, attributes=list(node.attributes.values()))
    return [isinf, where, cast]


@down(("QuantizeLinear", 19), ("DequantizeLinear", 19))
def _q_down19(ctx: Ctx, node: Node) -> None:
    node.attributes.pop("saturate", None)


@down(("QuantizeLinear", 13), ("DequantizeLinear", 13))
def _q_down13(ctx: Ctx, node: Node) -> None:
    r = ctx.rank(node.inputs[1])
    if r is None:
        raise Refuse("the scale's rank is unknown; before opset 13 only a scalar scale "
                     "(per-tensor quantization) exists")
    if r != 0:
        raise Refuse("per-axis quantization (a 1-D scale) has no equivalent before opset 13")
    node.attributes.pop("axis", None)


@up(("RoiAlign", 16))
def _roialign_up16(ctx: Ctx, node: Node) -> None:
    node.attributes["coordinate_transformation_mode"] = make_attr(
        "coordinate_transformation_mode", "output_half_pixel")


@down(("RoiAlign", 16))
def _roialign_down16(ctx: Ctx, node: Node) -> None:
    mode = attr_value(node, "coordinate_transformation_mode", "half_pixel")
    if mode != "output_half_pixel":
        raise Refuse(f"coordinate_transformation_mode={mode!r} has no equivalent before opset "
                     f"16 (RoiAlign-10 behaves as 'output_half_pixel')")
    del node.attributes["coordinate_transformation_mode"]


@up(("GridSample", 20))
def _gridsample_up20(ctx: Ctx, node: Node) -> None:
    mode = attr_value(node, "mode", "bilinear")
    new = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    node.attributes["mode"] = make_attr("mode", new)


@down(("GridSample", 20))
def _gridsample_down20(ctx: Ctx, node: Node) -> None:
    if ctx.rank(node.inputs[0]) != 4:
        raise Refuse("only 4-D input (2-D sampling) exists before opset 20")
    mode = attr_value(node, "mode", "linear")
    node.attributes["mode"] = make_attr("mode", {"linear": "bilinear",
                                                 "cubic": "bicubic"}.get(mode, mode))


@up(("DFT", 20))
def _dft_up20(ctx: Ctx, node: Node) -> None:
    axis = attr_value(node, "axis", 1)
    node.attributes.pop("axis", None)
    ctx.set_input(node, 2, ctx.constant(np.array(axis, np.int64), f"{node.name}_axis"))


@down(("DFT", 20))
def _dft_down20(ctx: Ctx, node: Node) -> None:
    axis = ctx.need_const(node, 2, "axis") if len(node.inputs) > 2 else None
    axis = -2 if axis is None else int(np.reshape(axis, -1)[0])
    if len(node.inputs) > 2:
        ctx.drop_input(node, 2)
    r = ctx.rank(node.inputs[0])
    if axis < 0:
        if r is None:
            raise Refuse("a negative axis needs the input's rank, which is unknown")
        axis += r
    node.attributes["axis"] = make_attr("axis", axis)


@up(("GroupNormalization", 21))
def _groupnorm_up21(ctx: Ctx, node: Node) -> None:
    # scale and bias were per group; from 21 they are per channel
    g = attr_value(node, "num_groups")
    shape = ctx.shape(node.inputs[0])
    c = shape[1] if shape is not None and len(shape) > 1 else None
    if not isinstance(c, int):
        raise Refuse("the channel count must be known to give scale and bias per channel")
    for i in (1, 2):
        data = ctx.need_const(node, i, "scale" if i == 1 else "bias")
        ctx.replace_const_input(node, i, np.repeat(np.asarray(data), c // g))


@down(("GroupNormalization", 21))
def _groupnorm_down21(ctx: Ctx, node: Node) -> list[Node] | None:
    g = attr_value(node, "num_groups")
    if node.attributes.get("stash_type") is not None and attr_value(node, "stash_type") != 1:
        raise Refuse("stash_type other than float has no equivalent before opset 21")
    node.attributes.pop("stash_type", None)
    datas = [ctx.const(node.inputs[i]) for i in (1, 2)]
    if all(d is not None for d in datas):
        per = [np.asarray(d).reshape(g, -1) for d in datas]
        if all((p == p[:, :1]).all() for p in per):
            for i, p in zip((1, 2), per):
                ctx.replace_const_input(node, i, p[:, 0].copy())
            return None
    from pyonnx.convert.decompositions import group_norm

    return group_norm(ctx, node, per_channel=True)


from pyonnx.convert import decompositions as _decompositions  # noqa: E402,F401 - registers more
