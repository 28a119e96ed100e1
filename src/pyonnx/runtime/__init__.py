"""The runtime: InferenceSession (onnxruntime's API), options, values, bindings, and compiled
plans."""

from pyonnx.runtime.adapters import AdapterFormat, LoraAdapter
from pyonnx.runtime.environment import (
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
from pyonnx.runtime.iobinding import IOBinding
from pyonnx.runtime.options import (
    ExecutionMode,
    ExecutionOrder,
    GraphOptimizationLevel,
    RunOptions,
    SessionOptions,
)
from pyonnx.runtime.ortvalue import (
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
    SparseTensor,
)
from pyonnx.runtime.session import InferenceSession, ModelMetadata, NodeArg

__all__ = [
    "ExecutionMode", "ExecutionOrder", "GraphOptimizationLevel", "RunOptions", "SessionOptions",
    "InferenceSession", "ModelMetadata", "NodeArg", "IOBinding", "AdapterFormat", "LoraAdapter",
    "OrtValue", "SparseTensor", "OrtDevice", "OrtDeviceVendorId", "OrtMemoryInfo",
    "OrtArenaCfg", "OrtAllocatorType", "OrtMemType", "OrtDeviceMemoryType",
    "OrtMemoryInfoDeviceType", "OrtSparseFormat",
    "get_all_providers", "get_available_providers", "get_build_info", "get_device",
    "get_version_string", "set_default_logger_severity", "set_default_logger_verbosity",
    "set_default_logger_callback", "set_seed", "enable_telemetry_events",
    "disable_telemetry_events", "create_and_register_allocator",
    "create_and_register_allocator_v2", "set_global_thread_pool_sizes",
]
