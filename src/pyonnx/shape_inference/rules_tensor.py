"""Tensor manipulation: Shape/Size, Reshape/Flatten/Squeeze/Unsqueeze, Transpose, Concat/Split,
Slice, Gather*, Expand/Tile/Pad, Constant*, Range, Resize, and ops whose output size depends on
input values (NonZero, Unique, Compress, TopK …: symbolic dims there, never a guess).

Shape computations that exporters emit (``Shape -> Gather/Slice -> Concat/Unsqueeze -> Reshape``)
are followed with symbolic entries through :class:`~pyonnx.shape_inference.engine.Partial`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pyonnx.ir import DataType, SequenceType, TensorType, Type
from pyonnx.ir.types import Dim
from pyonnx.shape_inference._common import (
    broadcast,
    check_int64,
    norm_axis,
    tensor,
    unknown_dims,
)
from pyonnx.shape_inference.engine import InferenceContext
from pyonnx.shape_inference.registry import shape_rule
from pyonnx.shape_inference.symbolic import (
    dim_add,
    dim_ceildiv,
    dim_exact_div,
    dim_floordiv,
    dim_mul,
    dim_prod,
    dim_sub,
    is_concrete,
)

_BIG = 2**31 - 1  # slice ends at or beyond this mean "to the end"


def _ints(x: Sequence[Dim] | None) -> list[int] | None:
    if x is None or not all(is_concrete(d) for d in x):
        return None
    return [int(d) for d in x]  # type: ignore[arg-type]


# ---------------------------------------------------------------------- Shape, Size, Identity

@shape_rule("Shape")
def shape_(ctx: InferenceContext) -> TensorType:
    s = ctx.shape(0)
    if s is None:
        return tensor(DataType.INT64, [None])
    r = len(s)
    start = int(ctx.attr("start", 0)) if ctx.since_version >= 15 else 0
    end = ctx.attr("end", None) if ctx.since_version >= 15 else None
    start = min(max(start + r if start < 0 else start, 0), r)
    e = r if end is None else int(end)
    e = min(max(e + r if e < 0 else e, 0), r)
    dims = list(s[start:e]) if e > start else []
    ctx.set_value(0, dims)
    return tensor(DataType.INT64, [len(dims)])


@shape_rule("Size")
def size(ctx: InferenceContext) -> TensorType:
    s = ctx.shape(0)
    if s is not None:
        n = dim_prod(s)
        if n is not None:
            ctx.set_value(0, [n], scalar=True)
    return tensor(DataType.INT64, [])


@shape_rule("Identity")
def identity(ctx: InferenceContext) -> Type | None:
    v = ctx.partial(0)
    if v is not None and ctx.rank(0) is not None:
        ctx.set_value(0, v, scalar=ctx.rank(0) == 0)
    return ctx.input_type(0)


# ---------------------------------------------------------------------- reshaping

def _reshape_dims(ctx: InferenceContext, in_shape: Sequence[Dim] | None, target: list[Dim],
                  allowzero: bool) -> list[Dim]:
    out: list[Dim] = []
    infer_at = -1
    for i, t in enumerate(target):
        if t == 0 and not allowzero:
            if in_shape is not None:
                if i >= len(in_shape):
                    raise ctx.fail(f"shape entry {i} is 0 (copy) but the input has rank "
                                   f"{len(in_shape)}")
                out.append(in_shape[i])
            else:
                out.append(None)
        elif t == -1:
            if infer_at >= 0:
                raise ctx.fail("shape has more than one -1 entry")
            infer_at = i
            out.append(None)
        elif is_concrete(t) and t < -1:  # type: ignore[operator]
            raise ctx.fail(f"shape entry {t} is invalid (entries are >= -1)")
        else:
            out.append(t)
    if infer_at >= 0 and in_shape is not None:
        known = [d for j, d in enumerate(out) if j != infer_at]
        if all(d is not None for d in known):
            total = dim_prod(in_shape)
            rest = dim_prod(known)
            if rest == 0:
                out[infer_at] = None
            else:
                q = dim_exact_div(total, rest)
                if q is None and is_concrete(total) and is_concrete(rest):
                    raise ctx.fail(f"cannot reshape {list(in_shape)} ({total} elements) to "
                                   f"{target}")
                out[infer_at] = q
    if in_shape is not None and infer_at < 0 and all(is_concrete(d) for d in out) \
            and all(is_concrete(d) for d in in_shape) \
            and dim_prod(out) != dim_prod(in_shape):
        raise ctx.fail(f"cannot reshape {list(in_shape)} to {out}: element counts differ")
    return out


@shape_rule("Reshape")
def reshape(ctx: InferenceContext) -> TensorType | None:
    elem = ctx.elem(0)
    in_shape = ctx.shape(0)
    if ctx.since_version < 5:
        shape_attr = ctx.attr("shape", None)
        if shape_attr is None:  # Reshape-1 without its shape attribute: nothing says the shape
            return tensor(elem, None)
        target = list(shape_attr)
    else:
        target = ctx.partial(1)  # type: ignore[assignment]
    if target is None:
        ts = ctx.shape(1)
        if ts is not None and len(ts) == 1 and is_concrete(ts[0]):
            return tensor(elem, unknown_dims(ts[0]))
        return tensor(elem, None)
    allowzero = bool(ctx.attr("allowzero", 0)) if ctx.since_version >= 14 else False
    out = _reshape_dims(ctx, in_shape, target, allowzero)
    p = ctx.partial(0)
    if p is not None and len(out) <= 1:
        ctx.set_value(0, p, scalar=len(out) == 0)
    return tensor(elem, out)


@shape_rule("Flatten")
def flatten(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    if s is None:
        return tensor(ctx.elem(0), [None, None])
    axis = int(ctx.attr("axis", 1))
    axis = axis + len(s) if axis < 0 else axis
    if axis < 0 or axis > len(s):
        raise ctx.fail(f"axis {axis} is out of range for rank {len(s)}")
    return tensor(ctx.elem(0), [dim_prod(s[:axis]), dim_prod(s[axis:])])


def _axes_input(ctx: InferenceContext, since_input: int, index: int = 1) -> tuple[bool, list[int] | None]:
    """(given, axes) from the attribute (older versions) or input ``index`` (newer)."""
    if ctx.since_version < since_input:
        a = ctx.attr("axes", None)
        return (a is not None), (list(a) if a is not None else None)
    if not ctx.has_input(index):
        return False, None
    return True, _ints(ctx.partial(index))


@shape_rule("Squeeze")
def squeeze(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    given, axes = _axes_input(ctx, 13)
    if s is None:
        return tensor(ctx.elem(0), None)
    if given and axes is None:
        return tensor(ctx.elem(0), None)
    if not given or not axes:
        if all(is_concrete(d) for d in s):
            out = [d for d in s if d != 1]
        else:
            return tensor(ctx.elem(0), None)
    else:
        ax = {norm_axis(a, len(s), ctx) for a in axes}
        for a in ax:
            if is_concrete(s[a]) and s[a] != 1:
                raise ctx.fail(f"cannot squeeze axis {a} of length {s[a]}")
        out = [d for i, d in enumerate(s) if i not in ax]
    p = ctx.partial(0)
    if p is not None and len(out) == 0 and len(p) == 1:
        ctx.set_value(0, p, scalar=True)
    return tensor(ctx.elem(0), out)


@shape_rule("Unsqueeze")
def unsqueeze(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    _, axes = _axes_input(ctx, 13)
    if s is None or axes is None:
        return tensor(ctx.elem(0), None)
    r = len(s) + len(axes)
    ax = sorted(norm_axis(a, r, ctx) for a in axes)
    if len(set(ax)) != len(ax):
        raise ctx.fail(f"axes {axes} repeat an axis")
    out: list[Dim] = []
    it = iter(s)
    for i in range(r):
        out.append(1 if i in ax else next(it))
    p = ctx.partial(0)
    if p is not None and len(out) == 1 and len(p) == 1:
        ctx.set_value(0, p)
    return tensor(ctx.elem(0), out)


@shape_rule("Transpose")
def transpose(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    if s is None:
        return tensor(ctx.elem(0), None)
    perm = ctx.attr("perm", None)
    if perm is None:
        perm = list(range(len(s)))[::-1]
    if sorted(int(p) for p in perm) != list(range(len(s))):
        raise ctx.fail(f"perm {list(perm)} is not a permutation of the {len(s)} axes")
    return tensor(ctx.elem(0), [s[int(p)] for p in perm])


# ---------------------------------------------------------------------- joining and splitting

def _merge_dim(a: Dim, b: Dim, ctx: InferenceContext, what: str) -> Dim:
    if a is None:
        return b
    if b is None or a == b:
        return a
    if is_concrete(a) and is_concrete(b):
        raise ctx.fail(f"{what}: dims {a} and {b} differ")
    return a if is_concrete(a) else b if is_concrete(b) else a


@shape_rule("Concat")
def concat(ctx: InferenceContext) -> TensorType | None:
    present = [i for i in range(ctx.num_inputs) if ctx.has_input(i)]
    elem = next((ctx.elem(i) for i in present if ctx.elem(i) is not None), None)
    shapes = [ctx.shape(i) for i in present]
    known = [s for s in shapes if s is not None]
    if not known:
        return tensor(elem, None)
    r = len(known[0])
    if any(len(s) != r for s in known):
        raise ctx.fail("inputs have different ranks")
    axis = ctx.attr("axis", 1 if ctx.since_version < 4 else None)
    if axis is None:
        raise ctx.fail("attribute 'axis' is required")
    axis = norm_axis(int(axis), r, ctx)
    out: list[Dim] = []
    for d in range(r):
        if d == axis:
            total: Dim = 0
            for s in shapes:
                total = dim_add(total, s[d]) if s is not None else None
            out.append(total)
        else:
            m: Dim = None
            for s in known:
                m = _merge_dim(m, s[d], ctx, f"axis {d}")
            out.append(m)
    if r == 1:
        parts = [ctx.partial(i) for i in present]
        if all(p is not None for p in parts):
            vals = [d for p in parts for d in p]  # type: ignore[union-attr]
            ctx.set_value(0, vals)
    return tensor(elem, out)


@shape_rule("Split")
def split(ctx: InferenceContext) -> list[TensorType | None]:
    n = ctx.num_outputs
    s = ctx.shape(0)
    elem = ctx.elem(0)
    if s is None:
        return [tensor(elem, None)] * n
    axis = norm_axis(int(ctx.attr("axis", 0)), len(s), ctx)
    sizes: list[Dim] | None
    if ctx.since_version >= 13 or (ctx.since_version == 1 and ctx.has_input(1)):
        given = ctx.has_input(1) and ctx.shape(1) != (0,)  # an empty split counts as absent
        sizes = ctx.partial(1) if given else None
    else:
        sp = ctx.attr("split", None)
        sizes = list(sp) if sp else None
        given = bool(sp)
    dim = s[axis]
    if given:
        if sizes is None:
            return [tensor(elem, [*s[:axis], None, *s[axis + 1:]]) for _ in range(n)]
        if len(sizes) != n:
            raise ctx.fail(f"split has {len(sizes)} entries for {n} outputs")
        if is_concrete(dim) and _ints(sizes) is not None and sum(_ints(sizes)) != dim:  # type: ignore[arg-type]
            raise ctx.fail(f"split {sizes} does not add up to the dim {dim} of axis {axis}")
    elif ctx.since_version >= 18:
        # ceil(dim / n) each, the last part smaller (possibly empty)
        num = int(ctx.attr("num_outputs", n))
        if num != n:
            raise ctx.fail(f"num_outputs is {num} but the node has {n} outputs")
        chunk = dim_ceildiv(dim, num)
        last = dim_sub(dim, dim_mul(chunk, num - 1)) if chunk is not None else None
        if is_concrete(last) and last < 0:  # type: ignore[operator]
            raise ctx.fail(f"cannot split dim {dim} into {num} parts of {chunk}")
        sizes = [chunk] * (num - 1) + [last]
    else:
        if is_concrete(dim) and dim % n:  # type: ignore[operator]
            raise ctx.fail(f"dim {dim} of axis {axis} does not split evenly into {n}")
        sizes = [dim_floordiv(dim, n)] * n
    return [tensor(elem, [*s[:axis], d, *s[axis + 1:]]) for d in sizes]


def _slice_range(dim: int, start: int, end: int, step: int) -> range:
    """The indices Slice takes along an axis, with the spec's clamping (not Python's: for a
    negative step the start clamps to [0, dim-1] and the end to [-1, dim-1])."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return range(start, end, step)


def _slice_len(dim: Dim, start: Dim, end: Dim, step: int) -> Dim:
    if is_concrete(dim) and is_concrete(start) and is_concrete(end):
        return len(_slice_range(int(dim), int(start), int(end), step))  # type: ignore[arg-type]
    if step == 1 and is_concrete(start) and start >= 0:  # type: ignore[operator]
        if is_concrete(end) and end >= _BIG:  # type: ignore[operator]
            return dim_sub(dim, start)
        if end is not None and not is_concrete(end):
            if end == dim:
                return dim_sub(dim, start)
            return dim_sub(end, start)  # a symbolic end is taken to lie within the dim
        if is_concrete(end) and end < 0 and not is_concrete(dim) and dim is not None:  # type: ignore[operator]
            return dim_sub(dim_add(dim, end), start)  # dim-k: the tensor is long enough
    return None


@shape_rule("Slice")
def slice_(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    elem = ctx.elem(0)
    if ctx.since_version < 10:
        starts: list[Dim] | None = list(ctx.attr("starts", []))
        ends: list[Dim] | None = list(ctx.attr("ends", []))
        axes = ctx.attr("axes", None)
        axes = list(axes) if axes is not None else None
        steps: list[Dim] | None = None
        axes_known = True
    else:
        starts, ends = ctx.partial(1), ctx.partial(2)
        axes = _ints(ctx.partial(3)) if ctx.has_input(3) else None
        axes_known = axes is not None or not ctx.has_input(3)
        steps = ctx.partial(4) if ctx.has_input(4) else None
        if ctx.has_input(4) and steps is None:
            steps = [None] * (len(starts) if starts is not None else 0)
    if s is None:
        return tensor(elem, None)
    if starts is None or ends is None or not axes_known:
        # which axes change is unknown: every dim might
        n = None
        if starts is None:
            st = ctx.shape(1)
            n = st[0] if st is not None and len(st) == 1 else None
        if axes is None and n is not None and n == len(s):
            return tensor(elem, [None] * len(s))
        return tensor(elem, [None] * len(s))
    if axes is None:
        axes = list(range(len(starts)))
    if steps is None:
        steps = [1] * len(starts)
    if not (len(starts) == len(ends) == len(axes) == len(steps)):
        raise ctx.fail("starts, ends, axes and steps have different lengths")
    out = list(s)
    for a, b, e, st in zip(axes, starts, ends, steps):
        ax = norm_axis(int(a), len(s), ctx)
        if not is_concrete(st):
            out[ax] = None
            continue
        if st == 0:
            raise ctx.fail("a step of 0 is invalid")
        out[ax] = _slice_len(s[ax], b, e, int(st))  # type: ignore[arg-type]
    p = ctx.partial(0)
    if p is not None and len(s) == 1 and len(axes) == 1 and all(
            is_concrete(x) for x in (starts[0], ends[0], steps[0])):
        vals = [p[i] for i in _slice_range(len(p), int(starts[0]), int(ends[0]),  # type: ignore[arg-type]
                                           int(steps[0]))]  # type: ignore[arg-type]
        ctx.set_value(0, vals)
    return tensor(elem, out)


# ---------------------------------------------------------------------- gathering, scattering

@shape_rule("Gather")
def gather(ctx: InferenceContext) -> TensorType | None:
    s, idx = ctx.shape(0), ctx.shape(1)
    elem = ctx.elem(0)
    if s is None or idx is None:
        return tensor(elem, None)
    axis = norm_axis(int(ctx.attr("axis", 0)), len(s), ctx)
    p = ctx.partial(0)
    iv = ctx.value(1)
    if p is not None and len(s) == 1 and iv is not None and iv.ndim <= 1:
        n = len(p)
        picks = []
        for i in iv.reshape(-1):
            i = int(i)
            if i < -n or i >= n:
                raise ctx.fail(f"index {i} is out of range for axis 0 of length {n}")
            picks.append(p[i + n if i < 0 else i])
        ctx.set_value(0, picks, scalar=iv.ndim == 0)
    return tensor(elem, [*s[:axis], *idx, *s[axis + 1:]])


@shape_rule("GatherElements")
def gather_elements(ctx: InferenceContext) -> TensorType | None:
    return tensor(ctx.elem(0), ctx.shape(1))


@shape_rule("GatherND")
def gather_nd(ctx: InferenceContext) -> TensorType | None:
    s, idx = ctx.shape(0), ctx.shape(1)
    elem = ctx.elem(0)
    if s is None or idx is None or not idx or not is_concrete(idx[-1]):
        return tensor(elem, None)
    b = int(ctx.attr("batch_dims", 0))
    k = int(idx[-1])  # type: ignore[arg-type]
    if b + k > len(s):
        raise ctx.fail(f"indices address {k} dims after {b} batch dims of a rank-{len(s)} tensor")
    return tensor(elem, [*idx[:-1], *s[b + k:]])


@shape_rule(("ScatterElements", "Scatter", "ScatterND", "TensorScatter", "ReverseSequence"))
def same_as_data(ctx: InferenceContext) -> TensorType | None:
    return ctx.tensor_type(0)


# ---------------------------------------------------------------------- growing

@shape_rule("Expand")
def expand(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    target = ctx.partial(1)
    if target is None:
        ts = ctx.shape(1)
        if ts is None or not is_concrete(ts[0]) or s is None:
            return tensor(ctx.elem(0), None)
        target = unknown_dims(ts[0])  # type: ignore[assignment]
        if target is None:
            return tensor(ctx.elem(0), None)
    if s is None:
        return tensor(ctx.elem(0), [d if d != 1 else None for d in target])
    return tensor(ctx.elem(0), broadcast([s, target], ctx))


@shape_rule("Tile")
def tile(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    if s is None:
        return tensor(ctx.elem(0), None)
    reps = ctx.partial(1)
    if ctx.since_version < 6:
        return tensor(ctx.elem(0), [None] * len(s))
    if reps is None:
        return tensor(ctx.elem(0), [None] * len(s))
    if len(reps) != len(s):
        raise ctx.fail(f"repeats has {len(reps)} entries for a rank-{len(s)} input")
    return tensor(ctx.elem(0), [dim_mul(d, r) for d, r in zip(s, reps)])


_INT64_LIMIT = 2**63


@shape_rule("Pad")
def pad(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    if s is None:
        return tensor(ctx.elem(0), None)
    r = len(s)
    if ctx.since_version < 11:
        pads = list(ctx.attr("pads" if ctx.since_version >= 2 else "paddings", []))
        axes: list[int] | None = None
    else:
        pads = ctx.partial(1)  # type: ignore[assignment]
        axes = _ints(ctx.partial(3)) if ctx.has_input(3) else list(range(r))
        if ctx.has_input(3) and axes is None:
            return tensor(ctx.elem(0), [None] * r)
    if axes is None:
        axes = list(range(r))
    if pads is None:
        return tensor(ctx.elem(0), [None] * r)
    axes = [norm_axis(a, r, ctx) for a in axes]
    if len(pads) != 2 * len(axes):
        raise ctx.fail(f"pads has {len(pads)} entries; expected {2 * len(axes)}")
    n = len(axes)
    for i in range(n):
        if is_concrete(pads[i]) and is_concrete(pads[i + n]) and \
                not -_INT64_LIMIT <= pads[i] + pads[i + n] < _INT64_LIMIT:  # type: ignore[operator]
            raise ctx.fail(f"pads {list(pads)}: the total padding of axis {axes[i]} "
                           f"({pads[i] + pads[i + n]}) overflows int64")  # type: ignore[operator]
    out = list(s)
    for i, a in enumerate(axes):
        out[a] = dim_add(dim_add(s[a], pads[i]), pads[i + len(axes)])
        if is_concrete(out[a]) and out[a] < 0:  # type: ignore[operator]
            raise ctx.fail(f"padding makes axis {a} negative ({out[a]})")
    return tensor(ctx.elem(0), out)


@shape_rule("CenterCropPad")
def center_crop_pad(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    if s is None:
        return tensor(ctx.elem(0), None)
    target = ctx.partial(1)
    axes = ctx.attr("axes", None)
    axes = list(range(len(s))) if axes is None else [norm_axis(a, len(s), ctx) for a in axes]
    out = list(s)
    for i, a in enumerate(axes):
        out[a] = target[i] if target is not None and i < len(target) else None
    return tensor(ctx.elem(0), out)


# ---------------------------------------------------------------------- creating

@shape_rule("Constant")
def constant(ctx: InferenceContext) -> TensorType | None:
    for name in ("value", "sparse_value"):
        v = ctx.attr(name)
        if v is not None:
            arr = np.asarray(v)
            ctx.set_value(0, arr)
            return TensorType(DataType.from_numpy(arr.dtype), arr.shape)
    scalars = {"value_float": (DataType.FLOAT, False), "value_int": (DataType.INT64, False),
               "value_string": (DataType.STRING, False), "value_floats": (DataType.FLOAT, True),
               "value_ints": (DataType.INT64, True), "value_strings": (DataType.STRING, True)}
    for name, (dt, is_list) in scalars.items():
        v = ctx.attr(name)
        if v is not None:
            if dt != DataType.STRING:
                ctx.set_value(0, np.array(v, dtype=dt.numpy))
            return TensorType(dt, (len(v),) if is_list else ())
    return None


@shape_rule("ConstantOfShape")
def constant_of_shape(ctx: InferenceContext) -> TensorType | None:
    v = ctx.attr("value", None)
    elem = DataType.from_numpy(np.asarray(v).dtype) if v is not None else DataType.FLOAT
    if ctx.elem(0) not in (None, DataType.INT64):
        raise ctx.fail(f"input 'input' (the shape) has element type {ctx.elem(0).name}; "
                       f"ConstantOfShape takes int64")
    dims = ctx.partial(0)
    if dims is None:
        ts = ctx.shape(0)
        if ts is not None and len(ts) == 1 and is_concrete(ts[0]):
            return tensor(elem, unknown_dims(ts[0]))
        return tensor(elem, None)
    for d in dims:
        if is_concrete(d) and d < 0:  # type: ignore[operator]
            raise ctx.fail(f"shape {dims} has a negative dim")
    if ctx.rank(0) == 1 or ctx.rank(0) is None:
        return tensor(elem, dims)
    return tensor(elem, None)


@shape_rule("Range")
def range_(ctx: InferenceContext) -> TensorType | None:
    elem = ctx.elem(0) or ctx.elem(1) or ctx.elem(2)
    st, li, de = ctx.value(0), ctx.value(1), ctx.value(2)
    if st is not None and li is not None and de is not None:
        s, l, d = st.reshape(-1)[0], li.reshape(-1)[0], de.reshape(-1)[0]
        if d == 0:
            raise ctx.fail("delta is 0")
        n = max(int(math.ceil((float(l) - float(s)) / float(d))), 0)
        return tensor(elem, [n])
    ps, pl, pd = ctx.partial(0), ctx.partial(1), ctx.partial(2)
    if ps and pl and pd and is_concrete(pd[0]) and pd[0] > 0:  # type: ignore[operator]
        n = dim_ceildiv(dim_sub(pl[0], ps[0]), pd[0])
        if isinstance(n, str):
            return tensor(elem, [n])
    return tensor(elem, [None])


@shape_rule("EyeLike")
def eye_like(ctx: InferenceContext) -> TensorType | None:
    dt = ctx.attr("dtype", None)
    elem = DataType(int(dt)) if dt is not None else ctx.elem(0)
    return tensor(elem, ctx.shape(0))


@shape_rule("OneHot")
def one_hot(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    elem = ctx.elem(2)
    if s is None:
        return tensor(elem, None)
    depth = ctx.value(1)
    d: Dim = None
    if depth is not None and depth.size == 1:
        d = int(depth.reshape(-1)[0])
    elif ctx.partial(1) is not None and len(ctx.partial(1) or []) == 1:
        d = ctx.partial(1)[0]  # type: ignore[index]
    if is_concrete(d) and d < 1:  # type: ignore[operator]
        raise ctx.fail(f"input depth is {d}; it must be positive")
    idx = ctx.value(0)
    if ctx.since_version < 11 and idx is not None and idx.size and idx.min() < 0:
        raise ctx.fail(f"input indices holds {int(idx.min())}; OneHot-{ctx.since_version} takes "
                       f"non-negative indices only (negative ones wrap from opset 11)")
    axis = int(ctx.attr("axis", -1))
    r = len(s) + 1
    axis = norm_axis(axis, r, ctx)
    out = list(s)
    out.insert(axis, d)
    return tensor(elem, out)


@shape_rule("DepthToSpace")
def depth_to_space(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    if s is None or len(s) != 4:
        return tensor(ctx.elem(0), None if s is None else [None] * len(s))
    b = int(ctx.attr("blocksize"))
    if b < 1:
        raise ctx.fail(f"attribute 'blocksize' = {b} must be positive")
    check_int64(ctx, b * b, f"the block area blocksize * blocksize for blocksize {b}")
    n, c, h, w = s
    return tensor(ctx.elem(0), [n, dim_exact_div(c, b * b) if c is not None else None,
                                dim_mul(h, b), dim_mul(w, b)])


@shape_rule("SpaceToDepth")
def space_to_depth(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    if s is None or len(s) != 4:
        return tensor(ctx.elem(0), None if s is None else [None] * len(s))
    b = int(ctx.attr("blocksize"))
    if b < 1:
        raise ctx.fail(f"attribute 'blocksize' = {b} must be positive")
    check_int64(ctx, b * b, f"the block area blocksize * blocksize for blocksize {b}")
    n, c, h, w = s
    return tensor(ctx.elem(0), [n, dim_mul(c, b * b), dim_exact_div(h, b), dim_exact_div(w, b)])


# ---------------------------------------------------------------------- value-dependent sizes

@shape_rule("NonZero")
def non_zero(ctx: InferenceContext) -> TensorType:
    r = ctx.rank(0)
    return tensor(DataType.INT64, [r, None] if r is not None else [None, None])


@shape_rule("Compress")
def compress(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    axis = ctx.attr("axis", None)
    if axis is None:
        return tensor(ctx.elem(0), [None])
    if s is None:
        return tensor(ctx.elem(0), None)
    a = norm_axis(int(axis), len(s), ctx)
    return tensor(ctx.elem(0), [*s[:a], None, *s[a + 1:]])


@shape_rule("Unique")
def unique(ctx: InferenceContext) -> list[TensorType | None]:
    s = ctx.shape(0)
    axis = ctx.attr("axis", None)
    u = ctx.fresh()  # every output's leading length is the number of unique entries
    if axis is None:
        y = tensor(ctx.elem(0), [u])
        n = dim_prod(s) if s is not None else None
    elif s is None:
        y, n = tensor(ctx.elem(0), None), None
    else:
        a = norm_axis(int(axis), len(s), ctx)
        y = tensor(ctx.elem(0), [*s[:a], u, *s[a + 1:]])
        n = s[a]
    i64 = DataType.INT64
    return [y, tensor(i64, [u]), tensor(i64, [n]), tensor(i64, [u])]


@shape_rule("TopK")
def top_k(ctx: InferenceContext) -> list[TensorType | None]:
    s = ctx.shape(0)
    if s is None:
        return [tensor(ctx.elem(0), None), tensor(DataType.INT64, None)]
    axis = norm_axis(int(ctx.attr("axis", -1)), len(s), ctx)
    if ctx.since_version < 10:
        k: Dim = int(ctx.attr("k"))
    else:
        p = ctx.partial(1)
        k = p[0] if p is not None and len(p) == 1 else None
    if is_concrete(k) and is_concrete(s[axis]) and k > s[axis]:  # type: ignore[operator]
        raise ctx.fail(f"k = {k} is larger than axis {axis} (length {s[axis]})")
    out = [*s[:axis], k, *s[axis + 1:]]
    return [tensor(ctx.elem(0), out), tensor(DataType.INT64, out)]


# ---------------------------------------------------------------------- resizing

def _resize_out(ctx: InferenceContext, s: Sequence[Dim], scales: np.ndarray | None,
                sizes: list[Dim] | None, axes: list[int] | None) -> list[Dim]:
    r = len(s)
    ax = list(range(r)) if axes is None else [norm_axis(a, r, ctx) for a in axes]
    out = list(s)
    if sizes is not None:
        if len(sizes) != len(ax):
            raise ctx.fail(f"sizes has {len(sizes)} entries for {len(ax)} axes")
        policy = ctx.attr("keep_aspect_ratio_policy", "stretch")
        if policy == "stretch":
            for i, a in enumerate(ax):
                out[a] = sizes[i]
        else:
            dims = [s[a] for a in ax]
            if not all(is_concrete(d) for d in dims) or _ints(sizes) is None:
                return [s[i] if i not in ax else None for i in range(r)]
            ratios = [sizes[i] / s[a] for i, a in enumerate(ax) if s[a]]  # type: ignore[operator]
            k = (min(ratios) if policy == "not_larger" else max(ratios)) if ratios else 1.0
            for a in ax:
                out[a] = int(math.floor(k * s[a] + 0.5))  # type: ignore[operator]
        return out
    if scales is not None:
        sc = scales.astype(np.float32).reshape(-1)
        if len(sc) != len(ax):
            raise ctx.fail(f"scales has {len(sc)} entries for {len(ax)} axes")
        for i, a in enumerate(ax):
            d = s[a]
            if is_concrete(d):
                out[a] = int(math.floor(np.float32(d) * sc[i]))
            elif float(sc[i]) == 1.0:
                out[a] = d
            elif float(sc[i]).is_integer():
                out[a] = dim_mul(d, int(sc[i]))
            else:
                out[a] = None
        return out
    return [None] * r


@shape_rule("Resize")
def resize(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    elem = ctx.elem(0)
    if s is None:
        return tensor(elem, None)
    axes = ctx.attr("axes", None) if ctx.since_version >= 18 else None
    if ctx.since_version < 11:
        scales, sizes, sizes_given = ctx.value(1), None, False
        scales_given = True
    else:
        sizes_given = ctx.has_input(3) and ctx.rank(3) != 0 and ctx.shape(3) != (0,)
        scales_given = ctx.has_input(2) and ctx.shape(2) != (0,)
        sizes = ctx.partial(3) if sizes_given else None
        scales = ctx.value(2) if scales_given and not sizes_given else None
        if scales is not None and scales.size == 0:
            scales = None
            scales_given = False
    if (sizes_given and sizes is None) or (not sizes_given and scales is None):
        return tensor(elem, [None] * len(s))
    return tensor(elem, _resize_out(ctx, s, scales, sizes, list(axes) if axes else None))


@shape_rule("Upsample")
def upsample(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    elem = ctx.elem(0)
    if s is None:
        return tensor(elem, None)
    if ctx.since_version >= 9:
        scales = ctx.value(1)
    elif ctx.since_version == 7:
        sc = ctx.attr("scales", None)
        scales = np.asarray(sc, dtype=np.float32) if sc is not None else None
    else:  # Upsample-1: height_scale / width_scale on NCHW
        hs, ws = ctx.attr("height_scale", None), ctx.attr("width_scale", None)
        scales = np.asarray([1, 1, hs, ws], dtype=np.float32) if hs and ws and len(s) == 4 \
            else None
    if scales is None:
        return tensor(elem, [None] * len(s))
    return tensor(elem, _resize_out(ctx, s, scales, None, None))


# ---------------------------------------------------------------------- sequences of tensors

@shape_rule("SplitToSequence")
def split_to_sequence(ctx: InferenceContext) -> SequenceType | None:
    s = ctx.shape(0)
    elem = ctx.elem(0)
    if s is None:
        return SequenceType(tensor(elem, None))
    axis = norm_axis(int(ctx.attr("axis", 0)), len(s), ctx)
    keepdims = int(ctx.attr("keepdims", 1))
    if not ctx.has_input(1):
        inner = [*s[:axis], 1, *s[axis + 1:]] if keepdims else [*s[:axis], *s[axis + 1:]]
        return SequenceType(tensor(elem, inner))
    sp = ctx.partial(1)
    for v in sp or []:
        if is_concrete(v) and (v < 0 or (ctx.rank(1) == 0 and v == 0)):  # type: ignore[operator]
            raise ctx.fail(f"input split holds {v}; a split length must be greater than zero "
                           f"(a scalar) or non-negative (a list)")
    if sp is not None and ctx.rank(1) == 0:
        # chunks of that length; the last is shorter unless the axis divides evenly
        k, n = sp[0], s[axis]
        even = is_concrete(k) and is_concrete(n) and n % k == 0  # type: ignore[operator]
        return SequenceType(tensor(elem, [*s[:axis], k if even else None, *s[axis + 1:]]))
    if sp is not None and len(set(sp)) == 1:
        return SequenceType(tensor(elem, [*s[:axis], sp[0], *s[axis + 1:]]))
    return SequenceType(tensor(elem, [*s[:axis], None, *s[axis + 1:]]))
