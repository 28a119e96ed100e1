"""Process-wide settings and queries with onnxruntime's module-level names: providers, version,
build info, the default logger, the random seed, telemetry and shared allocators.

``ORT_API_VERSION`` is the onnxruntime Python API version pyonnx implements;
``get_version_string()`` reports it, as code written for onnxruntime compares it with the
versions it needs. pyonnx's own version is ``pyonnx.__version__``.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from pyonnx.errors import InvalidRequest
from pyonnx.runtime.ortvalue import OrtArenaCfg, OrtMemoryInfo

__all__ = [
    "ORT_API_VERSION", "get_all_providers", "get_available_providers", "get_device",
    "get_version_string", "get_build_info", "set_default_logger_severity",
    "set_default_logger_verbosity", "set_default_logger_callback", "set_seed",
    "enable_telemetry_events", "disable_telemetry_events", "create_and_register_allocator",
    "create_and_register_allocator_v2", "set_global_thread_pool_sizes", "has_collective_ops",
    "log",
]

ORT_API_VERSION = "1.32.0"
PYONNX_VERSION = "0.1.0"

# every provider onnxruntime 1.32 knows, highest default priority first; CPU is last
_ALL_PROVIDERS = [
    "TensorrtExecutionProvider", "CUDAExecutionProvider", "MIGraphXExecutionProvider",
    "NvTensorRTRTXExecutionProvider", "OpenVINOExecutionProvider", "DnnlExecutionProvider",
    "VitisAIExecutionProvider", "QNNExecutionProvider", "NnapiExecutionProvider",
    "VSINPUExecutionProvider", "JsExecutionProvider", "CoreMLExecutionProvider",
    "ArmNNExecutionProvider", "ACLExecutionProvider", "DmlExecutionProvider",
    "RknpuExecutionProvider", "WebNNExecutionProvider", "WebGpuExecutionProvider",
    "XnnpackExecutionProvider", "CANNExecutionProvider", "AzureExecutionProvider",
    "CPUExecutionProvider",
]
def get_all_providers() -> list[str]:
    """Every provider name onnxruntime knows, by default priority; CPUExecutionProvider last.

    A name in this list that pyonnx lacks is a known provider (the session falls back from it);
    a name outside it is unknown (``set_providers`` rejects it)."""
    return list(_ALL_PROVIDERS)


def get_available_providers() -> list[str]:
    """Execution providers this pyonnx can run (onnxruntime's names, and those registered with
    :func:`pyonnx.backends.register_provider`), the CPU provider last."""
    from pyonnx.backends import available_providers

    return available_providers()


def get_device() -> str:
    """The device kind sessions run on, as onnxruntime reports it."""
    return "CPU"


def get_version_string() -> str:
    """The onnxruntime API version pyonnx implements (``ORT_API_VERSION``)."""
    return ORT_API_VERSION


def get_build_info() -> str:
    """One line saying what this build is."""
    return (f"Build Info: pyonnx {PYONNX_VERSION} implementing the onnxruntime {ORT_API_VERSION} "
            f"Python API, CPUExecutionProvider, numpy {np.__version__}, "
            f"python {sys.version.split()[0]}")


def has_collective_ops() -> bool:
    """pyonnx has no collective-communication operators."""
    return False


# ---------------------------------------------------------------------------- logging

_logger = logging.getLogger("pyonnx")
_severity = 2
_verbosity = 0
_callback: Callable[[int, str, str, str, str], Any] | None = None
_callback_severity = 2
_lock = threading.Lock()
_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR,
           4: logging.CRITICAL}


def _check_severity(severity: Any) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
            or not 0 <= int(severity) <= 4:
        raise InvalidRequest(f"severity must be 0 (verbose) to 4 (fatal), got {severity!r}")
    return int(severity)


def set_default_logger_severity(severity: int) -> None:
    """Minimum severity logged: 0 verbose, 1 info, 2 warning (default), 3 error, 4 fatal."""
    global _severity
    _severity = _check_severity(severity)
    _logger.setLevel(_LEVELS[_severity])


def set_default_logger_verbosity(verbosity: int) -> None:
    """Verbosity of verbose (severity 0) messages; pyonnx has one verbose level, so any
    non-negative value is accepted."""
    global _verbosity
    if int(verbosity) < 0:
        raise InvalidRequest(f"verbosity must be 0 or more, got {verbosity}")
    _verbosity = int(verbosity)


def set_default_logger_callback(callback: Callable[[int, str, str, str, str], Any] | None,
                                severity: int = 2) -> None:
    """Send log records to ``callback(severity, category, logid, code_location, message)``
    from ``severity`` up (None restores the standard ``logging`` logger ``pyonnx``).

    A callback that raises is ignored for that record: logging never stops a session."""
    global _callback, _callback_severity, _severity
    if callback is not None and not callable(callback):
        raise InvalidRequest(f"the logger callback must be callable or None, got "
                             f"{type(callback).__name__}")
    sev = _check_severity(severity)
    with _lock:
        _callback = callback
        if callback is not None:
            _callback_severity = sev
            _severity = sev


def log(severity: int, message: str, logid: str = "", category: str = "pyonnx",
        code_location: str = "") -> None:
    """Emit one log record through the callback (if set) or the ``pyonnx`` logger, when
    ``severity`` reaches the default logger severity."""
    if severity < _severity:
        return
    cb = _callback
    if cb is not None:
        if severity >= _callback_severity:
            try:
                cb(int(severity), category, logid, code_location, message)
            except Exception:  # noqa: BLE001 - a broken callback must not break the caller
                pass
        return
    _logger.log(_LEVELS.get(severity, logging.WARNING), "%s%s", f"[{logid}] " if logid else "",
                message)


# ---------------------------------------------------------------------------- the rest


def set_seed(seed: int) -> None:
    """Seed the generators random operators use when they have no ``seed`` attribute."""
    np.random.seed(int(seed) % 2**32)
    random.seed(int(seed))


_telemetry = False


def enable_telemetry_events() -> None:
    """pyonnx sends no telemetry; this records the request and does nothing else."""
    global _telemetry
    _telemetry = True


def disable_telemetry_events() -> None:
    """pyonnx sends no telemetry."""
    global _telemetry
    _telemetry = False


_shared_allocators: dict[tuple[str, str], tuple[OrtMemoryInfo, OrtArenaCfg | None]] = {}


def create_and_register_allocator(mem_info: OrtMemoryInfo, arena_cfg: OrtArenaCfg | None
                                  ) -> None:
    """Register a process-wide CPU allocator (sessions with the config entry
    ``session.use_env_allocators`` = 1 use it). pyonnx allocates through NumPy, so this records
    the request; it never changes results."""
    if not isinstance(mem_info, OrtMemoryInfo):
        raise InvalidRequest("create_and_register_allocator needs an OrtMemoryInfo")
    if mem_info.device_type != 0:
        raise InvalidRequest("pyonnx can register CPU allocators only")
    _shared_allocators[("CPUExecutionProvider", mem_info.name)] = (mem_info, arena_cfg)


def create_and_register_allocator_v2(provider_type: str, mem_info: OrtMemoryInfo,
                                     provider_options: dict[str, str],
                                     arena_cfg: OrtArenaCfg | None) -> None:
    """As :func:`create_and_register_allocator`, for a named provider (CPU only here)."""
    available = get_available_providers()
    if provider_type not in available:
        raise InvalidRequest(f"{provider_type} is not available in pyonnx (available: "
                             f"{', '.join(available)})")
    create_and_register_allocator(mem_info, arena_cfg)


def set_global_thread_pool_sizes(intra_op_num_threads: int = 0,
                                 inter_op_num_threads: int = 0) -> None:
    """Thread counts for sessions that share global pools: a performance hint; pyonnx's BLAS
    pool is sized per session by ``SessionOptions.intra_op_num_threads``."""
    for name, n in (("intra_op_num_threads", intra_op_num_threads),
                    ("inter_op_num_threads", inter_op_num_threads)):
        if int(n) < 0:
            raise InvalidRequest(f"{name} must be 0 or more, got {n}")
