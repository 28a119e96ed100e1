"""Graph optimizations: the offline optimizer (:func:`optimize_model`, public as
``pyonnx.optimize``) and the session-time optimizations, one set of passes for both.

The passes come in three stages; each level runs a prefix of them:

========================  =====================================================================
stage                     passes
========================  =====================================================================
basic (standard ops)      IR-3 initializer inputs restated in IR 4, shape folding, constant
                          folding, identity, no-op Cast/Slice and dead-code removal, Slice
                          merging, slices tiling an axis to one Split, If with a constant
                          condition inlined, If(Not(c)) as If(c) with its branches
                          swapped, Ifs on one condition merged, Squeeze-Reduce-Unsqueeze of
                          unit axes as one Reduce, Gemm between flattening and restoring
                          Reshapes as MatMul + Add, transpose cancellation,
                          Conv+BatchNormalization and Conv+Mul/Add folding, shape-subgraph
                          elimination with symbolic dims, Reshape-Transpose-Reshape folding,
                          neutral elements and zero-mask removal (integer x*0 as zeros),
                          scalar factors folded into linear weights, GatherND at a full
                          coordinate grid as Unsqueeze,
                          common-subexpression elimination,
                          duplicate and unused initializer removal, LayerNormalization (opset
                          17+) and Gelu (opset 20+) from their decomposed forms
extended (com.microsoft)  MultiHeadAttention (where no softmax row can be fully masked),
                          Gelu / BiasGelu / FastGelu, SkipLayerNormalization, FusedMatMul
                          (MatMul of transposed operands), FusedConv (Conv + residual Add +
                          activation), as onnxruntime runs them
session (``pyonnx``)      attention's core (MatMul, mask Add, Softmax, NaN guard, MatMul),
                          MatMul+Add, Conv+Add and Conv/Gemm/MatMul+activation fusion into the
                          ``pyonnx`` domain's kernels: only ever inside a session, after
                          anything is written (files never hold pyonnx-private ops)
========================  =====================================================================

Session levels (onnxruntime's numbering): 0 none, 1 basic, 2 and above basic + extended +
session. ``SessionOptions.optimized_model_filepath`` saves the model after the extended stage.
"""

from __future__ import annotations

from pyonnx.ir import Model
from pyonnx.optimizer._copy import copy_graph, copy_model
from pyonnx.optimizer._core import GraphPass, Pass, PassManager, PassResult, all_graphs
from pyonnx.optimizer._rewrite import FUSED_DOMAIN
from pyonnx.optimizer.passes import (
    CancelTransposes,
    ConstantFolding,
    DeduplicateInitializers,
    EliminateCommonSubexpressions,
    EliminateDeadCode,
    EliminateIdentity,
    EliminateNoOps,
    EliminateShapeSubgraphs,
    EliminateZeroMask,
    FoldReshapeTranspose,
    FoldScaleIntoWeights,
    FoldConvAffine,
    FoldConvBatchNorm,
    FoldGatherNDGrid,
    FoldIfNot,
    FoldShapes,
    FoldSqueezeReduce,
    FuseActivation,
    FuseAttention,
    FuseConvAdd,
    FuseDynamicQuantizeMatMul,
    FuseGelu,
    FuseLayerNorm,
    FuseMatMulAdd,
    FuseMatMulTranspose,
    FuseMultiHeadAttention,
    FuseSkipLayerNorm,
    FuseSlicesToSplit,
    FuseSqueezeExcitation,
    InlineConstantIf,
    MergeIfs,
    ModernizeInitializers,
    UnflattenGemm,
)
from pyonnx.optimizer.passes.fuse_conv_add import MS_DOMAIN

__all__ = ["Pass", "GraphPass", "PassResult", "PassManager", "optimize", "run_passes",
           "passes_for_level", "basic_passes", "extended_passes", "session_passes",
           "optimize_model", "PASSES", "copy_model", "copy_graph", "all_graphs", "FUSED_DOMAIN",
           "MS_DOMAIN", "DISABLE_ALL", "ENABLE_BASIC", "ENABLE_EXTENDED", "ENABLE_ALL"]


# onnxruntime's GraphOptimizationLevel values
DISABLE_ALL = 0
ENABLE_BASIC = 1
ENABLE_EXTENDED = 2
ENABLE_ALL = 99


def basic_passes(max_fold_bytes: int | None = None) -> list[Pass]:
    """The basic stage: rewrites whose result holds standard operators only."""
    folding = ConstantFolding() if max_fold_bytes is None else ConstantFolding(max_fold_bytes)
    return [ModernizeInitializers(), FoldShapes(), folding, EliminateIdentity(),
            InlineConstantIf(), FoldIfNot(), MergeIfs(), CancelTransposes(),
            FoldConvBatchNorm(), FoldConvAffine(), EliminateShapeSubgraphs(), EliminateNoOps(),
            FuseSlicesToSplit(), FoldSqueezeReduce(), FoldReshapeTranspose(), FoldGatherNDGrid(),
            UnflattenGemm(),
            EliminateZeroMask(), FoldScaleIntoWeights(), EliminateCommonSubexpressions(),
            DeduplicateInitializers(), FuseLayerNorm(), FuseGelu(), EliminateDeadCode()]


def extended_passes() -> list[Pass]:
    """The extended stage: fusions into com.microsoft operators that onnxruntime runs."""
    return [FuseMultiHeadAttention(), FuseGelu(MS_DOMAIN), FuseSkipLayerNorm(),
            FuseMatMulTranspose(),
            FuseConvAdd(MS_DOMAIN), FuseActivation(MS_DOMAIN), FuseDynamicQuantizeMatMul(),
            EliminateDeadCode()]


def session_passes() -> list[Pass]:
    """The session stage: fusions into the ``pyonnx`` domain's kernels (never written)."""
    return [FuseAttention(), FuseMatMulAdd(), FuseConvAdd(), FuseActivation(),
            FuseSqueezeExcitation(), EliminateDeadCode()]


def passes_for_level(level: int, *, max_fold_bytes: int | None = None,
                     private: bool = True) -> list[Pass]:
    """The pass pipeline of a session level (onnxruntime's numbering); ``private=False`` leaves
    out the session stage (what may be written to a file)."""
    level = int(level)
    if level <= DISABLE_ALL:
        return []
    passes = basic_passes(max_fold_bytes)
    if level >= ENABLE_EXTENDED:
        passes += extended_passes()
        if private:
            passes += session_passes()
    return passes


#: Every pass by name, for ``optimize(passes=[...])`` and ``pyonnx optimize --passes``.
PASSES: dict[str, type[Pass] | object] = {}


def _register_names() -> None:
    makers = {
        "modernize_initializers": ModernizeInitializers, "fold_shapes": FoldShapes,
        "constant_folding": ConstantFolding, "eliminate_identity": EliminateIdentity,
        "inline_constant_if": InlineConstantIf, "fold_if_not": FoldIfNot, "merge_ifs": MergeIfs,
        "cancel_transposes": CancelTransposes,
        "fold_conv_bn": FoldConvBatchNorm, "fold_conv_affine": FoldConvAffine,
        "eliminate_shape_subgraphs": EliminateShapeSubgraphs, "eliminate_no_ops": EliminateNoOps,
        "fuse_slices_to_split": FuseSlicesToSplit, "fold_squeeze_reduce": FoldSqueezeReduce,
        "fold_gather_nd_grid": FoldGatherNDGrid,
        "fuse_attention": FuseAttention, "unflatten_gemm": UnflattenGemm,
        "fold_reshape_transpose": FoldReshapeTranspose, "eliminate_zero_mask": EliminateZeroMask,
        "fold_scale_into_weights": FoldScaleIntoWeights,
        "eliminate_common_subexpressions": EliminateCommonSubexpressions,
        "deduplicate_initializers": DeduplicateInitializers, "fuse_layer_norm": FuseLayerNorm,
        "fuse_gelu": lambda: FuseGelu(MS_DOMAIN), "fuse_gelu_standard": FuseGelu,
        "fuse_skip_layer_norm": FuseSkipLayerNorm, "fuse_matmul_transpose": FuseMatMulTranspose,
        "fuse_multi_head_attention": FuseMultiHeadAttention,
        "fuse_conv_add": lambda: FuseConvAdd(MS_DOMAIN),
        "fuse_activation": lambda: FuseActivation(MS_DOMAIN),
        "fuse_dynamic_quantize_matmul": FuseDynamicQuantizeMatMul,
        "eliminate_dead_code": EliminateDeadCode,
    }
    PASSES.update(makers)


_register_names()


def optimize(model: Model, level: int = ENABLE_ALL, *, max_iterations: int = 8,
             max_fold_bytes: int | None = None, private: bool = True) -> Model:
    """Rewrite ``model`` in place with the passes of session ``level`` (run to a fixed point,
    at most ``max_iterations`` rounds) and return it. Graph outputs keep their names.
    ``private=False`` stops before the ``pyonnx``-domain fusions (the result may be written).
    The private stage runs after the others have reached their fixed point, as in a session: a
    private fusion must not take a pattern that a later round of the written stages fuses (the
    com.microsoft attention, matched once the basic rounds have simplified its inputs)."""
    passes = passes_for_level(level, max_fold_bytes=max_fold_bytes, private=False)
    model = _run(model, passes, max_iterations)
    if private and int(level) >= ENABLE_EXTENDED:
        model = _run(model, session_passes(), max_iterations)
    return model


def run_passes(model: Model, passes: list[Pass], max_iterations: int = 8) -> Model:
    """Rewrite ``model`` in place with ``passes`` (to a fixed point, at most ``max_iterations``
    rounds) and return it: how a session applies its providers' private fusions
    (:meth:`pyonnx.backends.Provider.session_passes`) after anything is written."""
    return _run(model, passes, max_iterations)


def _run(model: Model, passes: list[Pass], max_iterations: int) -> Model:
    if passes:
        model = PassManager(passes, max_iterations=max_iterations)(model).model
    if hasattr(model, "_pyonnx_opt_names"):
        del model._pyonnx_opt_names  # the pass-local name cache
    return model


from pyonnx.optimizer.api import optimize_model  # noqa: E402  (the public entry point)
