"""pyonnx as the ``onnxruntime`` package: the names of onnxruntime's top-level module, for
:func:`pyonnx.compat.install_onnxruntime_shim`.

``__version__`` (and ``get_version_string()``) is the onnxruntime Python API version this
implements, so version checks in code written for onnxruntime behave; ``__pyonnx_version__`` is
pyonnx's own version. Run a script with the shim installed::

    python -m pyonnx.compat.onnxruntime script.py [args ...]
"""

from __future__ import annotations

from pyonnx import capi  # noqa: F401 - onnxruntime.capi
from pyonnx.capi.onnxruntime_inference_collection import (  # noqa: F401
    AdapterFormat,
    IOBinding,
    OrtDevice,
    OrtDeviceVendorId,
    OrtValue,
    SparseTensor,
    copy_tensors,
)
from pyonnx.capi.onnxruntime_pybind11_state import (  # noqa: F401
    ExecutionMode,
    ExecutionOrder,
    GraphOptimizationLevel,
    InferenceSession,
    LoraAdapter,
    ModelMetadata,
    NodeArg,
    OrtAllocatorType,
    OrtArenaCfg,
    OrtDeviceMemoryType,
    OrtEpAssignedNode,
    OrtEpAssignedSubgraph,
    OrtMemoryInfo,
    OrtMemoryInfoDeviceType,
    OrtMemType,
    OrtSparseFormat,
    RunOptions,
    SessionIOBinding,
    SessionOptions,
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
from pyonnx.runtime.environment import ORT_API_VERSION, PYONNX_VERSION

__version__ = ORT_API_VERSION
__pyonnx_version__ = PYONNX_VERSION
__pyonnx_shim__ = True


def _main(argv: list[str]) -> int:
    """``python -m pyonnx.compat.onnxruntime script.py [args]``: run the script (or a module
    with ``-m name``) with ``import onnxruntime`` giving pyonnx."""
    import runpy
    import sys

    from pyonnx.compat import install_onnxruntime_shim

    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m pyonnx.compat.onnxruntime script.py [args ...]\n"
              "       python -m pyonnx.compat.onnxruntime -m module [args ...]\n"
              f"Runs the script with 'import onnxruntime' loading pyonnx (onnxruntime "
              f"{ORT_API_VERSION} Python API, CPU provider).")
        return 0 if argv else 2
    install_onnxruntime_shim()
    if argv[0] == "-m":
        if len(argv) < 2:
            print("-m needs a module name", file=sys.stderr)
            return 2
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
