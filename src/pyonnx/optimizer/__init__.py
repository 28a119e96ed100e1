"""Graph optimizations run at session creation, as onnxruntime levels them.

``optimize(model, level)`` rewrites ``model`` in place with the passes of a level and returns it;
sessions call it on :func:`copy_model` of the caller's model, which is never modified.

========================  =====================================================================
level                     passes
========================  =====================================================================
0  ORT_DISABLE_ALL        none
1  ORT_ENABLE_BASIC       constant folding, shape folding, identity and dead-code removal,
                          transpose cancellation, Conv+BatchNormalization and Conv+Mul/Add
                          (per-channel constant) folding (onnxruntime counts these
                          semantics-preserving rewrites as basic)
2  ORT_ENABLE_EXTENDED    + MatMul+Add, Conv+Add (residual) and Conv/Gemm/MatMul+activation
                          fusion into the ``pyonnx`` domain's fused kernels
3, 99 (LAYOUT, ALL)       as EXTENDED (NumPy has no layout to choose)
========================  =====================================================================
"""

from __future__ import annotations

from pyonnx.ir import Model
from pyonnx.optimizer._copy import copy_graph, copy_model
from pyonnx.optimizer._core import GraphPass, Pass, PassManager, PassResult, all_graphs
from pyonnx.optimizer._rewrite import FUSED_DOMAIN
from pyonnx.optimizer.passes import (
    CancelTransposes,
    ConstantFolding,
    EliminateDeadCode,
    EliminateIdentity,
    FoldConvAffine,
    FoldConvBatchNorm,
    FoldShapes,
    FuseActivation,
    FuseConvAdd,
    FuseMatMulAdd,
)

__all__ = ["Pass", "GraphPass", "PassResult", "PassManager", "optimize", "passes_for_level",
           "copy_model", "copy_graph", "all_graphs", "FUSED_DOMAIN", "DISABLE_ALL",
           "ENABLE_BASIC", "ENABLE_EXTENDED", "ENABLE_ALL"]


# onnxruntime's GraphOptimizationLevel values
DISABLE_ALL = 0
ENABLE_BASIC = 1
ENABLE_EXTENDED = 2
ENABLE_ALL = 99


def passes_for_level(level: int, *, max_fold_bytes: int | None = None) -> list[Pass]:
    """The pass pipeline of an optimization level (onnxruntime's numbering)."""
    level = int(level)
    if level <= DISABLE_ALL:
        return []
    folding = ConstantFolding() if max_fold_bytes is None else ConstantFolding(max_fold_bytes)
    basic: list[Pass] = [FoldShapes(), folding, EliminateIdentity(), CancelTransposes(),
                         FoldConvBatchNorm(), FoldConvAffine(), EliminateDeadCode()]
    if level < ENABLE_EXTENDED:
        return basic
    return basic + [FuseMatMulAdd(), FuseConvAdd(), FuseActivation(), EliminateDeadCode()]


def optimize(model: Model, level: int = ENABLE_ALL, *, max_iterations: int = 8,
             max_fold_bytes: int | None = None) -> Model:
    """Rewrite ``model`` in place with the passes of ``level`` (run to a fixed point, at most
    ``max_iterations`` rounds) and return it. Graph outputs keep their names; fused nodes use
    the ``pyonnx`` domain, whose import is added when one is created."""
    passes = passes_for_level(level, max_fold_bytes=max_fold_bytes)
    if passes:
        model = PassManager(passes, max_iterations=max_iterations)(model).model
    if hasattr(model, "_pyonnx_opt_names"):
        del model._pyonnx_opt_names  # the pass-local name cache
    return model
