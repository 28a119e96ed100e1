"""The CPU provider's memory arena (``SessionOptions.enable_cpu_mem_arena``, on by default as in
onnxruntime): freed tensor memory stays in the process for the next tensors.

Every kernel returns fresh NumPy arrays, and NumPy takes their memory from the C allocator. With
glibc's defaults, large blocks are mapped from the operating system and unmapped when freed, and
the top of the heap is handed back once enough of it is free, so a run that frees and
reallocates megabytes of activations can fault every page in again on each run (measured on
light_shufflenet: about 650 page faults and 2-3 ms of system time per 20 ms run). onnxruntime
keeps an arena of its own for this. pyonnx asks glibc to do the same: blocks up to 32 MiB come
from the heap (``M_MMAP_THRESHOLD``, glibc's largest allowed value) and free heap memory is
returned to the system only past 1 GiB (``M_TRIM_THRESHOLD``).

The CPU provider of a session with the arena on (:class:`pyonnx.backends.CPUProvider`) makes the
setting; that is its one process-wide side: the setting belongs to the whole process, is made
once, by the first such session, and never undone (other sessions and libraries in the process
share the allocator). To opt out, create every session with ``enable_cpu_mem_arena = False``. The peak memory
of a run does not grow; memory freed after the peak is kept for reuse instead of being returned.
Elsewhere than Linux with glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading

__all__ = ["enable_arena"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 << 20
_TRIM_THRESHOLD = 1 << 30

_lock = threading.Lock()
_state: bool | None = None  # None: not tried yet


def enable_arena() -> bool:
    """Keep freed memory in the process (once per process); True when the allocator took the
    setting."""
    global _state
    with _lock:
        if _state is None:
            _state = _set_glibc()
        return _state


def _set_glibc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) \
        and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
