"""pyonnx: the ONNX system in Python.

Load, save and inspect models (:func:`load`, :func:`save`), run them with onnxruntime's API
(:class:`InferenceSession`), and catch one error type (:class:`PyOnnxError`) for everything that
can go wrong.
"""

from pyonnx.errors import (
    DecodeError,
    ExecutionError,
    InvalidArgument,
    PyOnnxError,
    ResourceLimitExceeded,
    ShapeInferenceError,
    UnsupportedOperatorError,
    ValidationError,
)
from pyonnx.checker import check_model
from pyonnx.defs.custom import (
    CustomOp,
    Param,
    PyCustomOpDef,
    custom_op_scope,
    onnx_op,
    register_custom_op,
    registered_custom_ops,
    unregister_custom_op,
)
from pyonnx.io import load, save, serialize
from pyonnx.io.text import parse_model, to_text
from pyonnx.shape_inference import infer_shapes
from pyonnx.runtime import (
    ExecutionMode,
    ExecutionOrder,
    GraphOptimizationLevel,
    InferenceSession,
    ModelMetadata,
    NodeArg,
    RunOptions,
    SessionOptions,
    get_available_providers,
    get_device,
)

from pyonnx import convert, version_converter  # noqa: E402 - convert_version, as in onnx

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "load", "save", "serialize", "check_model", "infer_shapes", "to_text", "parse_model",
    "InferenceSession", "SessionOptions", "RunOptions", "GraphOptimizationLevel",
    "ExecutionMode", "ExecutionOrder", "ModelMetadata", "NodeArg",
    "get_available_providers", "get_device",
    "onnx_op", "PyCustomOpDef", "CustomOp", "Param", "register_custom_op",
    "unregister_custom_op", "registered_custom_ops", "custom_op_scope",
    "PyOnnxError", "DecodeError", "ValidationError", "ShapeInferenceError",
    "UnsupportedOperatorError", "InvalidArgument", "ResourceLimitExceeded", "ExecutionError",
]
