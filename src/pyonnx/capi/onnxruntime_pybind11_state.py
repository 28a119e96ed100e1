"""The names of onnxruntime's compiled module ``onnxruntime.capi.onnxruntime_pybind11_state``.

The exception classes are onnxruntime's status classes. pyonnx's own errors derive from them
(see :mod:`pyonnx.errors`): ``except InvalidArgument`` (this module's) catches pyonnx's
:class:`pyonnx.errors.InvalidArgument`, ``except Fail`` catches a failing kernel's
:class:`pyonnx.errors.ExecutionError`, and so on.
"""

from pyonnx.errors import (  # noqa: F401 - re-exported under onnxruntime's names
    OrtEngineError as EngineError,
    OrtEPFail as EPFail,
    OrtFail as Fail,
    OrtInvalidArgument as InvalidArgument,
    OrtInvalidGraph as InvalidGraph,
    OrtInvalidProtobuf as InvalidProtobuf,
    OrtModelLoaded as ModelLoaded,
    OrtNoModel as NoModel,
    OrtNoSuchFile as NoSuchFile,
    OrtNotImplemented as NotImplemented,  # noqa: A001 - onnxruntime's name
    OrtRuntimeException as RuntimeException,
)
from pyonnx.runtime.environment import (  # noqa: F401
    create_and_register_allocator,
    create_and_register_allocator_v2,
    disable_telemetry_events,
    enable_telemetry_events,
    get_all_providers,
    get_available_providers,
    get_build_info,
    get_device,
    get_version_string,
    has_collective_ops,
    set_default_logger_callback,
    set_default_logger_severity,
    set_default_logger_verbosity,
    set_global_thread_pool_sizes,
    set_seed,
)
from pyonnx.runtime.adapters import LoraAdapter  # noqa: F401
from pyonnx.runtime.iobinding import SessionIOBinding  # noqa: F401
from pyonnx.runtime.options import (  # noqa: F401
    ExecutionMode,
    ExecutionOrder,
    GraphOptimizationLevel,
    RunOptions,
    SessionOptions,
)
from pyonnx.runtime.ortvalue import (  # noqa: F401
    OrtAllocatorType,
    OrtArenaCfg,
    OrtDevice,
    OrtDeviceMemoryType,
    OrtMemoryInfo,
    OrtMemoryInfoDeviceType,
    OrtMemType,
    OrtSparseFormat,
    OrtValue,
    OrtValueVector,
    SparseTensor,
    is_dlpack_uint8_tensor,
)
from pyonnx.runtime.session import (  # noqa: F401
    InferenceSession,
    ModelMetadata,
    NodeArg,
    OrtEpAssignedNode,
    OrtEpAssignedSubgraph,
)


def get_default_session_options() -> SessionOptions:
    """A new SessionOptions with the defaults."""
    return SessionOptions()
