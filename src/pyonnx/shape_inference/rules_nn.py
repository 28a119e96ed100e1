"""Neural-network operators: convolution and pooling windows, matrix products, normalizations,
recurrent cells, attention, losses, quantization, signal processing."""

from __future__ import annotations

import math
import string
from collections.abc import Sequence

from pyonnx.ir import DataType, TensorType
from pyonnx.ir.types import Dim
from pyonnx.shape_inference._common import (
    broadcast,
    check_int64,
    norm_axis,
    tensor,
    unknown_dims,
    window_out,
)
from pyonnx.shape_inference.engine import InferenceContext
from pyonnx.shape_inference.registry import shape_rule
from pyonnx.shape_inference.symbolic import (
    dim_add,
    dim_ceildiv,
    dim_exact_div,
    dim_mul,
    dim_sub,
    is_concrete,
)

# ---------------------------------------------------------------------- windows


def _int_list_attr(ctx: InferenceContext, name: str, length: int | None, minimum: int,
                   what: str = "one per spatial axis") -> list[int] | None:
    """Attribute ``name`` as a list of ints, checked: ``length`` values (when given), each at
    least ``minimum`` (1: strictly positive; 0: non-negative). None when the node lacks it."""
    v = ctx.attr(name, None)
    if v is None:
        return None
    vals = [int(x) for x in v]
    if length is not None and len(vals) != length:
        raise ctx.fail(f"attribute {name!r} = {vals} has {len(vals)} values; expected {length} "
                       f"({what})")
    for i, x in enumerate(vals):
        if x < minimum:
            kind = "positive" if minimum == 1 else "non-negative"
            raise ctx.fail(f"attribute {name!r} = {vals}: value {x} at index {i} must be {kind}")
    return vals


def _auto_pad(ctx: InferenceContext) -> str:
    """The auto_pad attribute (NOTSET when absent). Explicit non-zero pads with another mode
    are an error: the spec says pads 'cannot be used simultaneously with auto_pad', and the
    two would disagree. All-zero pads beside auto_pad (an exporter habit that runtimes run)
    say nothing and are accepted."""
    auto_pad = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    if auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise ctx.fail(f"attribute 'auto_pad' = {auto_pad!r} is not one of NOTSET, SAME_UPPER, "
                       f"SAME_LOWER, VALID")
    if auto_pad != "NOTSET" and any(int(p) for p in ctx.attr("pads", None) or []):
        raise ctx.fail(f"attribute 'pads' = {list(ctx.attr('pads'))} cannot be used together "
                       f"with auto_pad={auto_pad}")
    return auto_pad


def _check_kernel(ctx: InferenceContext, kernel: Sequence[Dim], n: int) -> None:
    """Concrete kernel sizes must be positive, one per spatial axis."""
    if len(kernel) != n:
        raise ctx.fail(f"kernel_shape {list(kernel)} has {len(kernel)} values; expected {n} "
                       f"(one per spatial axis)")
    for i, k in enumerate(kernel):
        if is_concrete(k) and k < 1:  # type: ignore[operator]
            raise ctx.fail(f"kernel_shape {list(kernel)}: value {k} at index {i} must be positive")


def _spatial(ctx: InferenceContext, s: Sequence[Dim], kernel: Sequence[Dim],
             ceil_mode: bool = False, dilations_attr: bool = True) -> list[Dim]:
    """Output spatial dims of a sliding window over ``s`` (the spatial dims of the input)."""
    n = len(s)
    _check_kernel(ctx, kernel, n)
    strides = _int_list_attr(ctx, "strides", n, 1) or [1] * n
    dil = (_int_list_attr(ctx, "dilations", n, 1) if dilations_attr else None) or [1] * n
    auto_pad = _auto_pad(ctx)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return [dim_ceildiv(d, int(st)) for d, st in zip(s, strides)]
    if auto_pad == "VALID":
        return [window_out(d, k, int(st), int(dl), 0) for d, k, st, dl in
                zip(s, kernel, strides, dil)]
    pads = _int_list_attr(ctx, "pads", 2 * n, 0, "a begin and an end per spatial axis") \
        or [0] * (2 * n)
    out: list[Dim] = []
    for i in range(n):
        if is_concrete(kernel[i]):
            check_int64(ctx, (kernel[i] - 1) * int(dil[i]) + 1,  # type: ignore[operator]
                        f"the effective kernel size (kernel_shape - 1) * dilations + 1 of "
                        f"spatial axis {i}")
        o = window_out(s[i], kernel[i], int(strides[i]), int(dil[i]), pads[i] + pads[i + n],
                       ceil_mode)
        if ceil_mode:
            if is_concrete(o) and is_concrete(s[i]):
                if (o - 1) * int(strides[i]) >= s[i] + pads[i]:  # type: ignore[operator]
                    o -= 1  # type: ignore[operator]
            elif int(strides[i]) != 1:
                o = None  # the dropped-last-window rule needs the concrete length
        if is_concrete(o) and o < 0:  # type: ignore[operator]
            raise ctx.fail(f"the window is larger than the padded input along spatial axis {i}")
        out.append(o)
    return out


def _kernel_shape(ctx: InferenceContext, w: Sequence[Dim] | None) -> list[Dim] | None:
    k = ctx.attr("kernel_shape", None)
    if k is not None:
        return list(k)
    return list(w[2:]) if w is not None else None


def _check_conv_ranks(ctx: InferenceContext, x: Sequence[Dim], w: Sequence[Dim] | None,
                      x_name: str = "X", w_name: str = "W") -> None:
    """Data of rank >= 3 ([N, C, spatial…]); the weight tensor has the same rank."""
    if len(x) < 3:
        raise ctx.fail(f"input {x_name} has shape {list(x)}; it must have rank >= 3 "
                       f"([N, C, D1, …])")
    if w is not None and len(w) != len(x):
        raise ctx.fail(f"the weight tensor {w_name} has shape {list(w)} (rank {len(w)}) but the "
                       f"input {x_name} has rank {len(x)}: they must have the same rank")


def _conv_output(ctx: InferenceContext, x_index: int, w_index: int,
                 elem: DataType | None) -> TensorType | None:
    """[N, M, spatial…] of a convolution whose data and weight are inputs x_index, w_index."""
    x, w = ctx.shape(x_index), ctx.shape(w_index)
    if x is None:
        if w is not None and len(w) >= 3:
            # the data has the weight's rank, and the weight gives the output channels: what a
            # later Shape -> Gather(1) (a squeeze guard) needs, even when the data's rank is
            # unknown (it comes out of an If whose branches differ in rank)
            return tensor(elem, [None, w[0]] + [None] * (len(w) - 2))
        return tensor(elem, None)
    _check_conv_ranks(ctx, x, w)
    k = _kernel_shape(ctx, w)
    m = w[0] if w is not None else None
    if k is None:
        return tensor(elem, [x[0], m] + [None] * (len(x) - 2))
    return tensor(elem, [x[0], m, *_spatial(ctx, x[2:], k)])


@shape_rule(("Conv", "ConvInteger", "DeformConv"))
def conv(ctx: InferenceContext) -> TensorType | None:
    elem = DataType.INT32 if ctx.node.op_type == "ConvInteger" else ctx.elem(0)
    return _conv_output(ctx, 0, 1, elem)


@shape_rule("QLinearConv")
def qlinear_conv(ctx: InferenceContext) -> TensorType | None:
    return _conv_output(ctx, 0, 3, ctx.elem(7))  # inputs: x, x_scale, x_zp, w, …, y_zp


@shape_rule("ConvTranspose")
def conv_transpose(ctx: InferenceContext) -> TensorType | None:
    x, w = ctx.shape(0), ctx.shape(1)
    elem = ctx.elem(0)
    if x is None:
        return tensor(elem, None)
    _check_conv_ranks(ctx, x, w)
    n = len(x) - 2
    group = int(ctx.attr("group", 1))
    if group < 1:
        raise ctx.fail(f"attribute 'group' = {group} must be positive")
    c = dim_mul(w[1], group) if w is not None else None
    k = _kernel_shape(ctx, w)
    if k is not None:
        _check_kernel(ctx, k, n)
    strides = _int_list_attr(ctx, "strides", n, 1) or [1] * n
    dil = _int_list_attr(ctx, "dilations", n, 1) or [1] * n
    opad = _int_list_attr(ctx, "output_padding", n, 0) or [0] * n
    auto_pad = _auto_pad(ctx)
    pads = _int_list_attr(ctx, "pads", 2 * n, 0, "a begin and an end per spatial axis")
    out_shape = ctx.attr("output_shape", None)
    if out_shape is not None:
        out_shape = [int(d) for d in out_shape]
        if any(d < 0 for d in out_shape):
            raise ctx.fail(f"attribute 'output_shape' = {out_shape} has a negative value")
        if len(out_shape) not in (n, n + 2):
            raise ctx.fail(f"attribute 'output_shape' = {out_shape} has {len(out_shape)} values; "
                           f"expected {n} (one per spatial axis)")
        return tensor(elem, [x[0], c, *out_shape[-n:]])
    if k is None:
        return tensor(elem, [x[0], c] + [None] * n)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return tensor(elem, [x[0], c, *[dim_mul(d, int(s)) for d, s in zip(x[2:], strides)]])
    if auto_pad == "VALID" or pads is None:
        pads = [0] * (2 * n)
    out: list[Dim] = []
    for i in range(n):
        eff = dim_add(dim_mul(dim_sub(k[i], 1), int(dil[i])), 1)
        o = dim_add(dim_mul(dim_sub(x[2 + i], 1), int(strides[i])), eff)
        o = dim_sub(dim_add(o, int(opad[i])), pads[i] + pads[i + n])
        out.append(o)
    return tensor(elem, [x[0], c, *out])


def _pool(ctx: InferenceContext, *, dilations: bool) -> TensorType | None:
    x = ctx.shape(0)
    elem = ctx.elem(0)
    if x is None:
        return tensor(elem, None)
    k = ctx.attr("kernel_shape", None)
    if k is None:
        raise ctx.fail("attribute 'kernel_shape' is required")
    if len(x) < 3:
        raise ctx.fail(f"input X has shape {list(x)}; it must have rank >= 3 ([N, C, D1, …])")
    ceil_mode = bool(int(ctx.attr("ceil_mode", 0)))
    return tensor(elem, [x[0], x[1], *_spatial(ctx, x[2:], list(k), ceil_mode, dilations)])


@shape_rule("MaxPool")
def max_pool(ctx: InferenceContext) -> list[TensorType | None]:
    y = _pool(ctx, dilations=ctx.since_version >= 10)
    return [y, tensor(DataType.INT64, y.shape if y is not None else None)]


@shape_rule(("AveragePool", "LpPool"))
def avg_pool(ctx: InferenceContext) -> TensorType | None:
    return _pool(ctx, dilations=ctx.since_version >= (19 if ctx.node.op_type == "AveragePool"
                                                       else 18))


@shape_rule(("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"))
def global_pool(ctx: InferenceContext) -> TensorType | None:
    x = ctx.shape(0)
    if x is None:
        return tensor(ctx.elem(0), None)
    return tensor(ctx.elem(0), [*x[:2], *([1] * (len(x) - 2))])


@shape_rule("MaxRoiPool")
def max_roi_pool(ctx: InferenceContext) -> TensorType | None:
    x, rois = ctx.shape(0), ctx.shape(1)
    if ctx.attr("pooled_shape") is None:
        raise ctx.fail("attribute 'pooled_shape' is required")
    ps = _int_list_attr(ctx, "pooled_shape", None, 1)
    assert ps is not None
    if x is not None and len(ps) != len(x) - 2:
        raise ctx.fail(f"attribute 'pooled_shape' = {ps} has {len(ps)} values; expected "
                       f"{len(x) - 2} (one per spatial axis)")
    return tensor(ctx.elem(0), [rois[0] if rois else None, x[1] if x else None, *ps])


@shape_rule("RoiAlign")
def roi_align(ctx: InferenceContext) -> TensorType | None:
    x, rois, idx = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    h, w = int(ctx.attr("output_height", 1)), int(ctx.attr("output_width", 1))
    if h < 1 or w < 1:
        raise ctx.fail(f"attributes output_height={h} and output_width={w} must be positive")
    if rois is not None and len(rois) != 2:
        raise ctx.fail(f"input rois has shape {list(rois)}; it must be 2-D [num_rois, 4]")
    if idx is not None and len(idx) != 1:
        raise ctx.fail(f"input batch_indices has shape {list(idx)}; it must be 1-D [num_rois]")
    # rois and batch_indices both count the regions: a concrete count beats a symbolic one
    n = [d for d in (rois[0] if rois else None, idx[0] if idx else None) if d is not None]
    num = next((d for d in n if is_concrete(d)), n[0] if n else None)
    if len({d for d in n if is_concrete(d)}) > 1:
        raise ctx.fail(f"rois has {rois[0] if rois else '?'} regions but batch_indices has "
                       f"{idx[0] if idx else '?'} entries")
    return tensor(ctx.elem(0), [num, x[1] if x else None, h, w])


@shape_rule("MaxUnpool")
def max_unpool(ctx: InferenceContext) -> TensorType | None:
    x = ctx.shape(0)
    elem = ctx.elem(0)
    ind = ctx.shape(1)
    if ind is not None and x is not None and len(ind) != len(x):
        raise ctx.fail(f"input I (indices) has shape {list(ind)} but X has shape {list(x)}: "
                       f"they must have the same shape")
    if ctx.has_input(2):
        p = ctx.partial(2)
        if p is not None:
            return tensor(elem, p)
        r = ctx.shape(2)
        return tensor(elem, unknown_dims(r[0]) if r and len(r) == 1 else None)
    if x is None:
        return tensor(elem, None)
    n = len(x) - 2
    if n < 1:
        raise ctx.fail(f"input X has shape {list(x)}; it must have rank >= 3 ([N, C, D1, …])")
    k = _int_list_attr(ctx, "kernel_shape", n, 1)
    if k is None:
        raise ctx.fail("attribute 'kernel_shape' is required")
    strides = _int_list_attr(ctx, "strides", n, 1) or [1] * n
    pads = _int_list_attr(ctx, "pads", 2 * n, 0, "a begin and an end per spatial axis") \
        or [0] * (2 * n)
    out = [dim_sub(dim_add(dim_mul(dim_sub(x[2 + i], 1), int(strides[i])), k[i]),
                   pads[i] + pads[i + n]) for i in range(n)]
    return tensor(elem, [x[0], x[1], *out])


@shape_rule("Col2Im")
def col2im(ctx: InferenceContext) -> TensorType | None:
    x = ctx.shape(0)
    img, blk = ctx.partial(1), ctx.partial(2)
    if x is None:
        return tensor(ctx.elem(0), None)
    if blk is not None:
        for i, b in enumerate(blk):
            if is_concrete(b) and b < 1:  # type: ignore[operator]
                raise ctx.fail(f"input block_shape {list(blk)}: value {b} at index {i} must be "
                               f"positive")
    c = dim_exact_div(x[1], check_int64(ctx, math.prod(blk), f"the block size product of "
                                        f"block_shape {list(blk)}")) \
        if blk is not None and all(is_concrete(b) for b in blk) else None
    n = len(img) if img is not None else (len(blk) if blk is not None else None)
    if n is None:
        return tensor(ctx.elem(0), None)
    return tensor(ctx.elem(0), [x[0], c, *(img if img is not None else [None] * n)])


@shape_rule("GridSample")
def grid_sample(ctx: InferenceContext) -> TensorType | None:
    x, g = ctx.shape(0), ctx.shape(1)
    if x is None or g is None:
        return tensor(ctx.elem(0), None if x is None else [x[0], x[1]] + [None] * (len(x) - 2))
    return tensor(ctx.elem(0), [x[0], x[1], *g[1:-1]])


@shape_rule("AffineGrid")
def affine_grid(ctx: InferenceContext) -> TensorType | None:
    size = ctx.partial(1)
    if size is None:
        return tensor(ctx.elem(0), None)
    n, spatial = size[0], size[2:]
    return tensor(ctx.elem(0), [n, *spatial, len(spatial)])


# ---------------------------------------------------------------------- matrix products

def _matmul_shape(ctx: InferenceContext, a: Sequence[Dim] | None,
                  b: Sequence[Dim] | None) -> tuple[Dim, ...] | None:
    if a is None or b is None:
        return None
    if len(a) == 0 or len(b) == 0:
        raise ctx.fail("MatMul inputs must have rank >= 1")
    a2 = [1, *a] if len(a) == 1 else list(a)
    b2 = [*b, 1] if len(b) == 1 else list(b)
    ka, kb = a2[-1], b2[-2]
    if is_concrete(ka) and is_concrete(kb) and ka != kb:
        raise ctx.fail(f"inner dims differ: {list(a)} x {list(b)}")
    batch = broadcast([a2[:-2], b2[:-2]], ctx)
    assert batch is not None
    out = [*batch, a2[-2], b2[-1]]
    if len(a) == 1:
        out.pop(-2)
    if len(b) == 1:
        out.pop(-1)
    return tuple(out)


@shape_rule("MatMul")
def matmul(ctx: InferenceContext) -> TensorType | None:
    return tensor(ctx.elem(0), _matmul_shape(ctx, ctx.shape(0), ctx.shape(1)))


@shape_rule("MatMulInteger")
def matmul_integer(ctx: InferenceContext) -> TensorType | None:
    return tensor(DataType.INT32, _matmul_shape(ctx, ctx.shape(0), ctx.shape(1)))


@shape_rule("QLinearMatMul")
def qlinear_matmul(ctx: InferenceContext) -> TensorType | None:
    return tensor(ctx.elem(7), _matmul_shape(ctx, ctx.shape(0), ctx.shape(3)))


@shape_rule("Gemm")
def gemm(ctx: InferenceContext) -> TensorType | None:
    a, b = ctx.shape(0), ctx.shape(1)
    elem = ctx.elem(0)
    if a is None or b is None:
        return tensor(elem, [None, None])
    if len(a) != 2 or len(b) != 2:
        raise ctx.fail("A and B must be matrices")
    m = a[1] if int(ctx.attr("transA", 0)) else a[0]
    n = b[0] if int(ctx.attr("transB", 0)) else b[1]
    return tensor(elem, [m, n])


@shape_rule("Einsum")
def einsum(ctx: InferenceContext) -> TensorType | None:
    eq = str(ctx.attr("equation")).replace(" ", "")
    elem = ctx.elem(0)
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    sizes: dict[str, Dim] = {}
    ell: tuple[Dim, ...] | None = ()
    for i, t in enumerate(terms):
        s = ctx.shape(i)
        if s is None:
            return tensor(elem, None)
        letters = t.replace("...", "")
        n_ell = len(s) - len(letters)
        if "..." in t:
            pos = t.index("...")
            e = s[pos:pos + n_ell]
            ell = broadcast([ell, e], ctx) if ell is not None else None
            rest = list(s[:pos]) + list(s[pos + n_ell:])
        else:
            if n_ell != 0:
                raise ctx.fail(f"term {t!r} has {len(letters)} letters for a rank-{len(s)} input")
            rest = list(s)
        for ch, d in zip(letters, rest):
            prev = sizes.get(ch)
            if prev is None or prev == 1:
                sizes[ch] = d
            elif d != 1 and d is not None and prev != d and is_concrete(prev) and is_concrete(d):
                raise ctx.fail(f"label {ch!r} has sizes {prev} and {d}")
    if not arrow:
        counts = {ch: lhs.count(ch) for ch in set(lhs) if ch in string.ascii_letters}
        rhs_letters = "".join(sorted(ch for ch, c in counts.items() if c == 1))
        out_ell = list(ell) if ell is not None else None
        if out_ell is None:
            return tensor(elem, None)
        return tensor(elem, [*out_ell, *[sizes[c] for c in rhs_letters]])
    out: list[Dim] = []
    if "..." in rhs:
        if ell is None:
            return tensor(elem, None)
        pre, _, post = rhs.partition("...")
        out = [sizes.get(c) for c in pre] + list(ell) + [sizes.get(c) for c in post]
    else:
        out = [sizes.get(c) for c in rhs]
    return tensor(elem, out)


# ---------------------------------------------------------------------- normalization

@shape_rule("BatchNormalization")
def batch_norm(ctx: InferenceContext) -> list[TensorType | None]:
    x = ctx.tensor_type(0)
    c = ctx.shape(1)
    # statistics are per channel ([C]) unless an old version's spatial=0 asks for per-activation
    n_params = 5 if int(ctx.attr("spatial", 1)) == 1 else 0
    for i, name in list(enumerate(("X", "scale", "B", "input_mean", "input_var")))[1:n_params]:
        s = ctx.shape(i)
        if s is not None and len(s) != 1:
            raise ctx.fail(f"input {name} has shape {list(s)}; it must be 1-D [C]")
    # scale, B, mean and var all have shape [C]: the first one known says it
    c = next((ctx.shape(i) for i in range(1, 5) if ctx.shape(i) is not None), c) \
        if n_params else c
    stat = tensor(ctx.elem(3) or ctx.elem(1), c)
    out: list[TensorType | None] = [x]
    if ctx.num_outputs > 1:
        out += [stat] * (ctx.num_outputs - 1)
    return out


@shape_rule(("InstanceNormalization", "GroupNormalization"))
def same_norm(ctx: InferenceContext) -> TensorType | None:
    return ctx.tensor_type(0)


@shape_rule(("LayerNormalization", "RMSNormalization"))
def layer_norm(ctx: InferenceContext) -> list[TensorType | None]:
    x = ctx.shape(0)
    y = ctx.tensor_type(0)
    if ctx.num_outputs == 1:
        return [y]
    stash = ctx.attr("stash_type", 1)
    stat_elem = DataType(int(stash)) if stash is not None else DataType.FLOAT
    if x is None:
        return [y, tensor(stat_elem, None), tensor(stat_elem, None)]
    axis = norm_axis(int(ctx.attr("axis", -1)), len(x), ctx)
    st = tensor(stat_elem, [*x[:axis], *([1] * (len(x) - axis))])
    return [y, st, st]


@shape_rule("Dropout")
def dropout(ctx: InferenceContext) -> list[TensorType | None]:
    y = ctx.tensor_type(0)
    mask_elem = DataType.BOOL if ctx.since_version >= 10 else ctx.elem(0)
    return [y, tensor(mask_elem, ctx.shape(0))]


# ---------------------------------------------------------------------- recurrent

@shape_rule(("RNN", "GRU", "LSTM"))
def recurrent(ctx: InferenceContext) -> list[TensorType | None]:
    x = ctx.shape(0)
    elem = ctx.elem(0)
    hidden = ctx.attr("hidden_size", None)
    w = ctx.shape(1)
    if hidden is None and ctx.shape(2) is not None:
        hidden = ctx.shape(2)[-1]  # type: ignore[index]
    if x is not None and len(x) != 3:
        raise ctx.fail(f"input X has shape {list(x)}; it must be 3-D (sequence, batch, input "
                       f"size), or (batch, sequence, input size) with layout=1")
    # the direction attribute defines num_directions; W's first dim is checked by the kernel
    nd = 2 if ctx.attr("direction", "forward") == "bidirectional" else 1
    layout = int(ctx.attr("layout", 0)) if ctx.since_version >= 14 else 0
    if x is None:
        seq = batch = None
    elif layout == 0:
        seq, batch = x[0], x[1]
    else:
        batch, seq = x[0], x[1]
    if layout == 0:
        y = [seq, nd, batch, hidden]
        yh = [nd, batch, hidden]
    else:
        y = [batch, seq, nd, hidden]
        yh = [batch, nd, hidden]
    outs = [tensor(elem, y), tensor(elem, yh)]
    if ctx.node.op_type == "LSTM":
        outs.append(tensor(elem, yh))
    return outs


# ---------------------------------------------------------------------- losses

@shape_rule("NegativeLogLikelihoodLoss")
def nll_loss(ctx: InferenceContext) -> TensorType | None:
    reduction = ctx.attr("reduction", "mean")
    x, t = ctx.shape(0), ctx.shape(1)
    if x is not None and len(x) < 2:
        raise ctx.fail(f"input 'input' has shape {list(x)}; it must be [N, C] or "
                       f"[N, C, d1, …]")
    if x is not None and t is not None:
        want = [x[0], *x[2:]]
        if len(t) != len(want) or any(is_concrete(a) and is_concrete(b) and a != b
                                      for a, b in zip(t, want)):
            raise ctx.fail(f"input target has shape {list(t)}; for input {list(x)} it must be "
                           f"[N, d1, …] = {want}")
    if reduction != "none":
        return tensor(ctx.elem(0), [])
    return tensor(ctx.elem(0), ctx.shape(1))


@shape_rule("SoftmaxCrossEntropyLoss")
def sce_loss(ctx: InferenceContext) -> list[TensorType | None]:
    reduction = ctx.attr("reduction", "mean")
    loss = tensor(ctx.elem(0), [] if reduction != "none" else ctx.shape(1))
    return [loss, ctx.tensor_type(0)]


# ---------------------------------------------------------------------- quantization

@shape_rule("QuantizeLinear")
def quantize_linear(ctx: InferenceContext) -> TensorType | None:
    elem = ctx.elem(2)
    od = int(ctx.attr("output_dtype", 0) or 0) if ctx.since_version >= 21 else 0
    if od and elem is not None and DataType(od) != elem:
        raise ctx.fail(f"attribute 'output_dtype' is {DataType(od).name} but input y_zero_point "
                       f"is {elem.name}; they must agree")
    if elem is None:
        elem = DataType(od) if od else DataType.UINT8
    return tensor(elem, ctx.shape(0))


@shape_rule("DequantizeLinear")
def dequantize_linear(ctx: InferenceContext) -> TensorType | None:
    od = ctx.attr("output_dtype", 0) if ctx.since_version >= 23 else 0
    elem = DataType(int(od)) if od else (ctx.elem(1) if ctx.since_version >= 19
                                         else DataType.FLOAT)
    return tensor(elem, ctx.shape(0))


@shape_rule("DynamicQuantizeLinear")
def dynamic_quantize_linear(ctx: InferenceContext) -> list[TensorType | None]:
    return [tensor(DataType.UINT8, ctx.shape(0)), tensor(DataType.FLOAT, []),
            tensor(DataType.UINT8, [])]


# ---------------------------------------------------------------------- misc nn

@shape_rule("Det")
def det(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    return tensor(ctx.elem(0), None if s is None else s[:-2])


@shape_rule("SwiGLU")
def swiglu(ctx: InferenceContext) -> TensorType | None:
    # A and B have identical shapes (no broadcasting); Y has that shape
    a, b = ctx.shape(0), ctx.shape(1)
    if a is None or b is None:
        return tensor(ctx.elem(0), a if a is not None else b)
    if len(a) != len(b):
        raise ctx.fail(f"A {list(a)} and B {list(b)} must have identical shapes")
    out = []
    for x, y in zip(a, b):
        if isinstance(x, int) and isinstance(y, int) and x != y:
            raise ctx.fail(f"A {list(a)} and B {list(b)} must have identical shapes")
        out.append(x if isinstance(x, int) or y is None else y)
    return tensor(ctx.elem(0), out)


@shape_rule("RotaryEmbedding")
def rotary_embedding(ctx: InferenceContext) -> TensorType | None:
    return ctx.tensor_type(0)
