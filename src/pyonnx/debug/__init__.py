"""Debugging models: compare engines value by value, and reduce a disagreement to a small model.

* :func:`compare` runs a model on pyonnx, onnxruntime and onnx's reference evaluator (or any
  :class:`Engine`) with every intermediate value exposed, and reports the first node whose
  outputs disagree (:class:`Report`).
* :func:`reduce` cuts the smallest sub-model around that node that still disagrees, with its
  inputs (the baseline engine's values), and can write both to files.

onnxruntime and onnx are imported only when their engines run.
"""

from pyonnx.debug.compare import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    EngineRun,
    Report,
    ValueDiff,
    compare,
    diff_values,
    expose_values,
    summarize,
)
from pyonnx.debug.engines import ENGINES, Engine
from pyonnx.debug.inputs import load_inputs, random_inputs
from pyonnx.debug.reduce import Reduction, reduce

__all__ = ["compare", "Report", "EngineRun", "ValueDiff", "Engine", "ENGINES", "reduce",
           "Reduction", "expose_values", "diff_values", "summarize", "random_inputs",
           "load_inputs", "DEFAULT_RTOL", "DEFAULT_ATOL"]
