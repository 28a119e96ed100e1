"""Operators outside the ONNX standard that pyonnx has kernels for: onnxruntime's contrib ops
(``com.microsoft`` and its default-domain LayerNormalization-1 / SimplifiedLayerNormalization-1)
and pyonnx's own fused ops (``pyonnx``), which the optimizer creates.

The quantized contrib ops (QLinear*, QGemm, …) take each tensor followed by its scale and zero
point, so their tensors sit at input positions 0, 3, 6 …; their outputs have the element type
of the output zero point (uint8 when it is absent), or float where they dequantize.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyonnx.ir import DataType, TensorType
from pyonnx.ir.types import Dim
from pyonnx.shape_inference._common import broadcast, norm_axis, tensor
from pyonnx.shape_inference.engine import InferenceContext
from pyonnx.shape_inference.registry import shape_rule
from pyonnx.shape_inference.rules_nn import (
    _matmul_shape,  # the MatMul broadcasting rule, shared with the contrib products
    _spatial,  # sliding-window output sizes, shared with the contrib pools
    conv,
    gemm,
    grid_sample,
    matmul,
    quantize_linear,
)
from pyonnx.shape_inference.symbolic import dim_add, dim_exact_div, dim_mul, is_concrete

MS = "com.microsoft"

shape_rule("FusedGemm", versions=(1,), domain="pyonnx")(gemm)


@shape_rule(("FusedConv", "FusedMatMul"), versions=(1,), domain="pyonnx")
def fused_with_addend(ctx: InferenceContext) -> TensorType | None:
    """Conv or MatMul, then broadcast with the folded Add's other input (Z or bias)."""
    fused_conv = ctx.node.op_type == "FusedConv"
    out = conv(ctx) if fused_conv else matmul(ctx)
    addend = 3 if fused_conv else 2
    if out is None or not ctx.has_input(addend):
        return out
    shape = None if out.shape is None else broadcast([out.shape, ctx.shape(addend)], ctx)
    return tensor(out.elem_type, shape)


# com.microsoft FusedConv has the same inputs (X, W, B, Z) and output as the pyonnx one
shape_rule("FusedConv", versions=(1,), domain=MS)(fused_with_addend)


@shape_rule(("BiasAdd", "BiasGelu", "FastGelu", "Gelu", "QuickGelu", "BiasSoftmax",
             "RotaryEmbedding"), versions=(1,), domain=MS)
def same_as_first(ctx: InferenceContext) -> TensorType | None:
    return ctx.tensor_type(0)


def _norm_outputs(ctx: InferenceContext, axis: int, extra_sum: bool) -> list[TensorType | None]:
    x = ctx.shape(0)
    y = tensor(ctx.elem(2) if ctx.node.op_type == "LayerNormalization" and ctx.elem(1) else
               ctx.elem(0), x)
    if ctx.node.op_type == "LayerNormalization" and ctx.elem(1) is not None:
        y = tensor(ctx.elem(1), x)
    if x is None:
        stat = tensor(DataType.FLOAT, None)
    else:
        a = norm_axis(axis, len(x), ctx)
        stat = tensor(DataType.FLOAT, [*x[:a], *([1] * (len(x) - a))])
    outs: list[TensorType | None] = [y, stat, stat]
    if extra_sum:
        outs.append(ctx.tensor_type(0))
    return outs


@shape_rule(("LayerNormalization", "SimplifiedLayerNormalization"), versions=(1,))
def contrib_layer_norm(ctx: InferenceContext) -> list[TensorType | None]:
    stash = ctx.attr("stash_type", 1)
    outs = _norm_outputs(ctx, int(ctx.attr("axis", -1)), False)
    if outs[1] is not None and outs[1].shape is not None:
        st = tensor(DataType(int(stash)), outs[1].shape)
        outs[1] = outs[2] = st
    return outs[:ctx.num_outputs] if ctx.node.op_type == "LayerNormalization" else \
        [outs[0], outs[2]][:ctx.num_outputs]


@shape_rule(("SkipLayerNormalization", "SkipSimplifiedLayerNormalization"), versions=(1,),
            domain=MS)
def skip_layer_norm(ctx: InferenceContext) -> list[TensorType | None]:
    outs = _norm_outputs(ctx, -1, True)
    return outs[:ctx.num_outputs]


@shape_rule(("Attention", "MultiHeadAttention", "EmbedLayerNormalization"), versions=(1,),
            domain=MS)
def contrib_probe(ctx: InferenceContext) -> list[TensorType | None] | None:
    # shapes follow from input shapes and attributes; the kernel on placeholders says them
    return ctx.probe()


@shape_rule("QAttention", versions=(1,), domain=MS)
def qattention(ctx: InferenceContext) -> list[TensorType | None]:
    """output (batch, sequence, hidden) and present (2, batch, num_heads, past_sequence +
    sequence, head_size), both of bias's float type, with hidden = weight's columns / 3. Written
    out rather than probed so that symbolic batch and sequence dims carry through."""
    x, w, past = ctx.shape(0), ctx.shape(1), ctx.shape(8) if ctx.has_input(8) else None
    for shape, what, rank in ((x, "input", 3), (w, "weight", 2), (past, "past", 5)):
        if shape is not None and len(shape) != rank:
            raise ctx.fail(f"{what} must be {rank}-D, got shape {list(shape)}")
    heads = ctx.attr("num_heads", None)
    if heads is None or int(heads) <= 0:
        raise ctx.fail(f"attribute 'num_heads' must be a positive integer, got {heads}")
    heads = int(heads)
    b, s = (x[0], x[1]) if x is not None else (None, None)
    hidden = dim_exact_div(w[1], 3) if w is not None else None
    if w is not None and is_concrete(w[1]) and (w[1] % 3 or (w[1] // 3) % heads):
        raise ctx.fail(f"weight has {w[1]} columns; 3 * hidden with hidden a multiple of "
                       f"num_heads {heads} expected")
    elem = ctx.elem(2)
    outs = [tensor(elem, [b, s, hidden])]
    if ctx.num_outputs > 1:
        total = s if past is None else dim_add(past[3], s)
        head_size = dim_exact_div(hidden, heads)
        outs.append(tensor(elem, [2, b, heads, total, head_size]))
    return outs


# ---------------------------------------------------------------------- same type as input 0

shape_rule(("Inverse", "Trilu", "QLinearSigmoid", "QLinearLeakyRelu"), versions=(1,),
           domain=MS)(same_as_first)
# com.microsoft GridSample-1 is ai.onnx GridSample-16 on 4-D inputs
shape_rule("GridSample", versions=(1,), domain=MS)(grid_sample)
# y has x's shape and y_zero_point's type (uint8 without one), as ai.onnx QuantizeLinear
shape_rule("QuantizeLinear", versions=(1,), domain=MS)(quantize_linear)


@shape_rule("DequantizeLinear", versions=(1,), domain=MS)
def contrib_dequantize_linear(ctx: InferenceContext) -> TensorType | None:
    # y has x's shape and x_scale's float type
    return tensor(ctx.elem(1), ctx.shape(0))


# ---------------------------------------------------------------------- matrix products

def _fused_operand(s: Sequence[Dim] | None, trans: int, trans_batch: int) -> list[Dim] | None:
    """An operand's shape as FusedMatMul multiplies it: transBatch moves the first axis just
    before the last (the batch axes come first), trans swaps the last two."""
    if s is None:
        return None
    out = list(s)
    if trans_batch and len(out) > 2:
        out = out[1:-1] + [out[0], out[-1]]
    if trans and len(out) >= 2:
        out[-1], out[-2] = out[-2], out[-1]
    return out


@shape_rule("FusedMatMul", versions=(1,), domain=MS)
def contrib_fused_matmul(ctx: InferenceContext) -> TensorType | None:
    a = _fused_operand(ctx.shape(0), int(ctx.attr("transA", 0)), int(ctx.attr("transBatchA", 0)))
    b = _fused_operand(ctx.shape(1), int(ctx.attr("transB", 0)), int(ctx.attr("transBatchB", 0)))
    return tensor(ctx.elem(0), _matmul_shape(ctx, a, b))


@shape_rule("MatMulIntegerToFloat", versions=(1,), domain=MS)
def matmul_integer_to_float(ctx: InferenceContext) -> TensorType | None:
    # Y has the float type of a_scale
    return tensor(ctx.elem(2), _matmul_shape(ctx, ctx.shape(0), ctx.shape(1)))


@shape_rule("DynamicQuantizeMatMul", versions=(1,), domain=MS)
def dynamic_quantize_matmul(ctx: InferenceContext) -> TensorType | None:
    return tensor(DataType.FLOAT, _matmul_shape(ctx, ctx.shape(0), ctx.shape(1)))


@shape_rule("MatMulNBits", versions=(1,), domain=MS)
def matmul_nbits(ctx: InferenceContext) -> TensorType | None:
    # Y = A @ W^T with W (N, K) stored in blocks: A's leading dims, then N
    a = ctx.shape(0)
    n = ctx.attr("N", None)
    if a is None:
        return tensor(ctx.elem(0), None)
    if len(a) == 0:
        raise ctx.fail("A must have at least one dimension")
    k = ctx.attr("K", None)
    if k is not None and is_concrete(a[-1]) and a[-1] != int(k):
        raise ctx.fail(f"A's last dimension {a[-1]} is not K = {int(k)}")
    return tensor(ctx.elem(0), [*a[:-1], None if n is None else int(n)])


@shape_rule("GatherBlockQuantized", versions=(1,), domain=MS)
def gather_block_quantized(ctx: InferenceContext) -> TensorType | None:
    # Gather's shape over the logical data (uint8 packs 8 / bits values a byte along its last
    # axis); the element type of scales
    s, idx = ctx.shape(0), ctx.shape(1)
    elem = ctx.elem(2)
    if s is None or idx is None:
        return tensor(elem, None)
    if len(s) == 0:
        raise ctx.fail("data must have rank >= 1")
    ga = norm_axis(int(ctx.attr("gather_axis", 0)), len(s), ctx, "gather_axis")
    norm_axis(int(ctx.attr("quantize_axis", 1)), len(s), ctx, "quantize_axis")
    logical = list(s)
    if ctx.elem(0) == DataType.UINT8:
        bits = int(ctx.attr("bits", 4))
        if bits not in (2, 4, 8):
            raise ctx.fail(f"uint8 data takes bits 2, 4 or 8, got {bits}")
        if ga != 0 or len(s) < 2:
            raise ctx.fail("uint8 data needs gather_axis 0 and rank >= 2")
        logical[-1] = dim_mul(logical[-1], 8 // bits)
    return tensor(elem, [*logical[:ga], *idx, *logical[ga + 1:]])


@shape_rule("QGemm", versions=(1,), domain=MS)
def qgemm(ctx: InferenceContext) -> TensorType | None:
    # float output without y_scale; else requantized to y_zero_point's type (uint8 without one)
    if ctx.has_input(7):
        elem = ctx.elem(8) if ctx.has_input(8) else DataType.UINT8
    else:
        elem = DataType.FLOAT
    a, b = ctx.shape(0), ctx.shape(3)
    if a is not None and len(a) != 2 or b is not None and len(b) != 2:
        raise ctx.fail("A and B must be matrices")
    m = None if a is None else a[1] if int(ctx.attr("transA", 0)) else a[0]
    n = None if b is None else b[0] if int(ctx.attr("transB", 0)) else b[1]
    return tensor(elem, [m, n])


# ---------------------------------------------------------------------- quantized element-wise

@shape_rule(("QLinearAdd", "QLinearMul"), versions=(1,), domain=MS)
def qlinear_binary(ctx: InferenceContext) -> TensorType | None:
    # inputs A, A_scale, A_zero_point, B, …: A and B broadcast; C has A's type
    return tensor(ctx.elem(0), broadcast([ctx.shape(0), ctx.shape(3)], ctx))


@shape_rule("QLinearConcat", versions=(1,), domain=MS)
def qlinear_concat(ctx: InferenceContext) -> TensorType | None:
    # inputs Y_scale, Y_zero_point, then (tensor, scale, zero point) triples
    elem = ctx.elem(1)
    if (ctx.num_inputs - 2) % 3 or ctx.num_inputs < 5:
        raise ctx.fail(f"expects Y_scale, Y_zero_point and (tensor, scale, zero point) triples; "
                       f"got {ctx.num_inputs} inputs")
    shapes = [ctx.shape(i) for i in range(2, ctx.num_inputs, 3)]
    known = [s for s in shapes if s is not None]
    if not known:
        return tensor(elem, None)
    rank = len(known[0])
    if any(len(s) != rank for s in known):
        raise ctx.fail(f"the tensors have different ranks: {[len(s) for s in known]}")
    axis = norm_axis(int(ctx.attr("axis")), rank, ctx)
    out: list[Dim] = []
    for d in range(rank):
        if d == axis:
            total: Dim = 0
            for s in shapes:
                total = dim_add(total, s[d] if s is not None else None)
            out.append(total)
            continue
        dims = [s[d] for s in known]
        concrete = {x for x in dims if is_concrete(x)}
        if len(concrete) > 1:
            raise ctx.fail(f"the tensors differ in dimension {d} (outside axis {axis}): "
                           f"{sorted(concrete)}")  # type: ignore[type-var]
        out.append(next(iter(concrete)) if concrete else
                   next((x for x in dims if x is not None), None))
    return tensor(elem, out)


# ---------------------------------------------------------------------- quantized and NHWC pools

def _channels_last_pool(ctx: InferenceContext, nhwc: bool, dilations: bool) -> TensorType | None:
    x = ctx.shape(0)
    elem = ctx.elem(0)
    if x is None:
        return tensor(elem, None)
    if len(x) < 3:
        raise ctx.fail(f"X must have a batch, a channel and spatial axes, got rank {len(x)}")
    k = ctx.attr("kernel_shape", None)
    if k is None:
        raise ctx.fail("attribute 'kernel_shape' is required")
    ceil_mode = bool(int(ctx.attr("ceil_mode", 0)))
    if nhwc:
        spatial = _spatial(ctx, x[1:-1], list(k), ceil_mode, dilations)
        return tensor(elem, [x[0], *spatial, x[-1]])
    spatial = _spatial(ctx, x[2:], list(k), ceil_mode, dilations)
    return tensor(elem, [x[0], x[1], *spatial])


@shape_rule("NhwcMaxPool", versions=(1,), domain=MS)
def nhwc_max_pool(ctx: InferenceContext) -> TensorType | None:
    return _channels_last_pool(ctx, True, True)


@shape_rule("QLinearAveragePool", versions=(1,), domain=MS)
def qlinear_average_pool(ctx: InferenceContext) -> TensorType | None:
    return _channels_last_pool(ctx, bool(int(ctx.attr("channels_last", 0))), False)


@shape_rule("QLinearGlobalAveragePool", versions=(1,), domain=MS)
def qlinear_global_average_pool(ctx: InferenceContext) -> TensorType | None:
    x = ctx.shape(0)
    if x is None:
        return tensor(ctx.elem(0), None)
    if len(x) < 3:
        raise ctx.fail(f"X must have a batch, a channel and spatial axes, got rank {len(x)}")
    ones = [1] * (len(x) - 2)
    if int(ctx.attr("channels_last", 0)):
        return tensor(ctx.elem(0), [x[0], *ones, x[-1]])
    return tensor(ctx.elem(0), [x[0], x[1], *ones])


# ---------------------------------------------------------------------- recurrent

@shape_rule("DynamicQuantizeLSTM", versions=(1,), domain=MS)
def dynamic_quantize_lstm(ctx: InferenceContext) -> list[TensorType | None]:
    # W is (num_directions, input_size, 4 * hidden) and R (num_directions, hidden, 4 * hidden):
    # transposed against ai.onnx LSTM's
    x, w, r = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    if x is not None and len(x) != 3:
        raise ctx.fail(f"X must be (seq_length, batch_size, input_size), got rank {len(x)}")
    hidden: Dim = ctx.attr("hidden_size", None)
    if hidden is None and w is not None and len(w) == 3:
        hidden = dim_exact_div(w[2], 4)
    if hidden is None and r is not None and len(r) == 3:
        hidden = r[1]
    direction = ctx.attr("direction", "forward")
    nd: Dim = 2 if direction == "bidirectional" else 1
    if w is not None and w and is_concrete(w[0]):
        nd = w[0]
    seq, batch = (x[0], x[1]) if x is not None else (None, None)
    state = [nd, batch, hidden]
    elem = DataType.FLOAT
    return [tensor(elem, [seq, *state]), tensor(elem, state), tensor(elem, state)]


# ---------------------------------------------------------------------- text

@shape_rule("Tokenizer", versions=(1,), domain=MS)
def tokenizer(ctx: InferenceContext) -> TensorType | None:
    """X's shape plus a last axis as long as the row with most tokens (data-dependent).

    An empty X is onnxruntime's exception: [C] with C = 0 gives [0], and [N, C] with N or C = 0
    gives [N, 0]; that is followed where a zero dim is known, otherwise the rule assumes the
    common non-empty case.
    """
    s = ctx.shape(0)
    if s is None:
        return tensor(DataType.STRING, None)
    if len(s) not in (1, 2):
        raise ctx.fail(f"X must be [C] or [N, C], got rank {len(s)}")
    if any(is_concrete(d) and d == 0 for d in s):
        return tensor(DataType.STRING, [*s[:-1], 0])
    return tensor(DataType.STRING, [*s, None])
