"""Operators outside the ONNX standard that pyonnx has kernels for: onnxruntime's contrib ops
(``com.microsoft`` and its default-domain LayerNormalization-1 / SimplifiedLayerNormalization-1)
and pyonnx's own fused ops (``pyonnx``), which the optimizer creates."""

from __future__ import annotations

from pyonnx.ir import DataType, TensorType
from pyonnx.shape_inference._common import norm_axis, tensor
from pyonnx.shape_inference.engine import InferenceContext
from pyonnx.shape_inference.registry import shape_rule
from pyonnx.shape_inference.rules_nn import conv, gemm, matmul

MS = "com.microsoft"

shape_rule("FusedConv", versions=(1,), domain="pyonnx")(conv)
shape_rule("FusedGemm", versions=(1,), domain="pyonnx")(gemm)
shape_rule("FusedMatMul", versions=(1,), domain="pyonnx")(matmul)


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
