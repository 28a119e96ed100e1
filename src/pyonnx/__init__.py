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
    VerificationError,
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
from pyonnx.shape_inference import infer_shapes, infer_shapes_path
from pyonnx.optimizer import optimize_model as optimize
from pyonnx.runtime import (
    AdapterFormat,
    ExecutionMode,
    ExecutionOrder,
    GraphOptimizationLevel,
    InferenceSession,
    IOBinding,
    LoraAdapter,
    ModelMetadata,
    NodeArg,
    OrtAllocatorType,
    OrtArenaCfg,
    OrtDevice,
    OrtDeviceMemoryType,
    OrtDeviceVendorId,
    OrtMemoryInfo,
    OrtMemoryInfoDeviceType,
    OrtMemType,
    OrtSparseFormat,
    OrtValue,
    RunOptions,
    SessionOptions,
    SparseTensor,
    create_and_register_allocator,
    create_and_register_allocator_v2,
    disable_telemetry_events,
    enable_telemetry_events,
    get_all_providers,
    get_available_providers,
    get_build_info,
    get_device,
    get_version_string,
    set_default_logger_callback,
    set_default_logger_severity,
    set_default_logger_verbosity,
    set_global_thread_pool_sizes,
    set_seed,
)
from pyonnx import capi

from pyonnx import convert, version_converter  # noqa: E402 - convert_version, as in onnx

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "load", "save", "serialize", "check_model", "infer_shapes", "infer_shapes_path",
    "to_text", "parse_model",
    "InferenceSession", "SessionOptions", "RunOptions", "GraphOptimizationLevel",
    "ExecutionMode", "ExecutionOrder", "ModelMetadata", "NodeArg",
    "get_available_providers", "get_device", "IOBinding", "OrtValue", "SparseTensor",
    "OrtDevice", "OrtDeviceVendorId", "OrtMemoryInfo", "OrtArenaCfg", "OrtAllocatorType",
    "OrtMemType", "OrtDeviceMemoryType", "OrtMemoryInfoDeviceType", "OrtSparseFormat",
    "get_all_providers", "get_build_info", "get_version_string", "set_default_logger_severity",
    "set_default_logger_verbosity", "set_default_logger_callback", "set_seed",
    "enable_telemetry_events", "disable_telemetry_events", "create_and_register_allocator",
    "create_and_register_allocator_v2", "set_global_thread_pool_sizes", "capi",
    "AdapterFormat", "LoraAdapter",
    "onnx_op", "PyCustomOpDef", "CustomOp", "Param", "register_custom_op",
    "unregister_custom_op", "registered_custom_ops", "custom_op_scope",
    "PyOnnxError", "DecodeError", "ValidationError", "ShapeInferenceError",
    "UnsupportedOperatorError", "InvalidArgument", "ResourceLimitExceeded", "ExecutionError",
    "VerificationError", "optimize",
]
