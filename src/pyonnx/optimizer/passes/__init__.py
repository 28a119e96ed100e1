"""The optimizer's passes, one rewrite family per module."""

from pyonnx.optimizer.passes.cancel_transposes import CancelTransposes
from pyonnx.optimizer.passes.constant_folding import ConstantFolding
from pyonnx.optimizer.passes.deduplicate_initializers import DeduplicateInitializers
from pyonnx.optimizer.passes.eliminate_common_subexpressions import EliminateCommonSubexpressions
from pyonnx.optimizer.passes.eliminate_dead_code import EliminateDeadCode
from pyonnx.optimizer.passes.eliminate_identity import EliminateIdentity
from pyonnx.optimizer.passes.eliminate_no_ops import EliminateNoOps
from pyonnx.optimizer.passes.eliminate_shape_subgraphs import EliminateShapeSubgraphs
from pyonnx.optimizer.passes.eliminate_zero_mask import EliminateZeroMask
from pyonnx.optimizer.passes.fold_gather_nd_grid import FoldGatherNDGrid
from pyonnx.optimizer.passes.fold_if_not import FoldIfNot
from pyonnx.optimizer.passes.fold_reshape_transpose import FoldReshapeTranspose
from pyonnx.optimizer.passes.fold_scale_into_weights import FoldScaleIntoWeights
from pyonnx.optimizer.passes.fold_conv_affine import FoldConvAffine
from pyonnx.optimizer.passes.fold_conv_bn import FoldConvBatchNorm
from pyonnx.optimizer.passes.fold_shapes import FoldShapes
from pyonnx.optimizer.passes.fold_squeeze_reduce import FoldSqueezeReduce
from pyonnx.optimizer.passes.fuse_activation import FuseActivation
from pyonnx.optimizer.passes.fuse_attention import FuseAttention
from pyonnx.optimizer.passes.fuse_conv_add import FuseConvAdd
from pyonnx.optimizer.passes.fuse_dynamic_quantize_matmul import FuseDynamicQuantizeMatMul
from pyonnx.optimizer.passes.fuse_gelu import FuseGelu
from pyonnx.optimizer.passes.fuse_layer_norm import FuseLayerNorm
from pyonnx.optimizer.passes.fuse_matmul_add import FuseMatMulAdd
from pyonnx.optimizer.passes.fuse_matmul_transpose import FuseMatMulTranspose
from pyonnx.optimizer.passes.fuse_multi_head_attention import FuseMultiHeadAttention
from pyonnx.optimizer.passes.fuse_skip_layer_norm import FuseSkipLayerNorm
from pyonnx.optimizer.passes.fuse_slices_to_split import FuseSlicesToSplit
from pyonnx.optimizer.passes.fuse_squeeze_excitation import FuseSqueezeExcitation
from pyonnx.optimizer.passes.inline_constant_if import InlineConstantIf
from pyonnx.optimizer.passes.merge_ifs import MergeIfs
from pyonnx.optimizer.passes.modernize_initializers import ModernizeInitializers
from pyonnx.optimizer.passes.unflatten_gemm import UnflattenGemm

__all__ = ["CancelTransposes", "ConstantFolding", "DeduplicateInitializers",
           "EliminateCommonSubexpressions", "EliminateDeadCode", "EliminateIdentity", "EliminateNoOps",
           "EliminateShapeSubgraphs", "EliminateZeroMask", "FoldGatherNDGrid", "FoldIfNot",
           "FoldReshapeTranspose",
           "FoldScaleIntoWeights", "FoldConvAffine", "FoldConvBatchNorm", "FoldShapes",
           "FoldSqueezeReduce",
           "FuseActivation", "FuseAttention", "FuseConvAdd", "FuseDynamicQuantizeMatMul",
           "FuseGelu", "FuseLayerNorm", "FuseMatMulAdd", "FuseMatMulTranspose",
           "FuseMultiHeadAttention",
           "FuseSkipLayerNorm", "FuseSlicesToSplit", "FuseSqueezeExcitation", "InlineConstantIf",
           "MergeIfs",
           "ModernizeInitializers", "UnflattenGemm"]
