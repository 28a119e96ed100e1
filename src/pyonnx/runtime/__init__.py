"""The runtime: InferenceSession (onnxruntime's API), options, and compiled plans."""

from pyonnx.runtime.options import (
    ExecutionMode,
    ExecutionOrder,
    GraphOptimizationLevel,
    RunOptions,
    SessionOptions,
)
from pyonnx.runtime.session import (
    InferenceSession,
    ModelMetadata,
    NodeArg,
    get_available_providers,
    get_device,
)

__all__ = [
    "ExecutionMode", "ExecutionOrder", "GraphOptimizationLevel", "RunOptions", "SessionOptions",
    "InferenceSession", "ModelMetadata", "NodeArg", "get_available_providers", "get_device",
]
