"""Opt-in compatibility layers that let unmodified code written for other packages use pyonnx.

:func:`install_onnxruntime_shim` makes ``import onnxruntime`` (and ``onnxruntime.capi...``)
load pyonnx for the rest of the process. It is never active unless called (pyonnx installs no
import hook or ``.pth`` file). ``python -m pyonnx.compat.onnxruntime script.py [args]`` runs a
script with the shim installed. The shim implements onnxruntime's Python API version
``pyonnx.compat.onnxruntime.__version__`` (1.32.0) on the CPU provider.
"""

from __future__ import annotations

import sys
import types

__all__ = ["install_onnxruntime_shim", "uninstall_onnxruntime_shim", "ONNXRUNTIME_MODULES"]

# module name under onnxruntime -> the pyonnx module that stands in for it
ONNXRUNTIME_MODULES = {
    "onnxruntime": "pyonnx.compat.onnxruntime",
    "onnxruntime.capi": "pyonnx.capi",
    "onnxruntime.capi._pybind_state": "pyonnx.capi.onnxruntime_pybind11_state",
    "onnxruntime.capi.onnxruntime_pybind11_state": "pyonnx.capi.onnxruntime_pybind11_state",
    "onnxruntime.capi.onnxruntime_inference_collection":
        "pyonnx.capi.onnxruntime_inference_collection",
}

_saved: dict[str, types.ModuleType | None] = {}


def install_onnxruntime_shim(replace: bool = False) -> types.ModuleType:
    """Make ``import onnxruntime`` give pyonnx's onnxruntime-compatible module; return it.

    If the real onnxruntime is already imported, code may hold references to it, so this
    raises RuntimeError unless ``replace=True`` (then later imports get pyonnx; references
    taken before keep the real package). Calling it twice is harmless.
    """
    import importlib

    current = sys.modules.get("onnxruntime")
    if current is not None and not getattr(current, "__pyonnx_shim__", False) and not replace:
        raise RuntimeError("onnxruntime is already imported in this process; install the "
                           "pyonnx shim before the first 'import onnxruntime' (or pass "
                           "replace=True)")
    for name, target in ONNXRUNTIME_MODULES.items():
        if name not in _saved:
            _saved[name] = sys.modules.get(name)
        sys.modules[name] = importlib.import_module(target)
    return sys.modules["onnxruntime"]


def uninstall_onnxruntime_shim() -> None:
    """Undo :func:`install_onnxruntime_shim`: the modules it replaced come back (or are
    removed, so the next import loads the real onnxruntime)."""
    for name, previous in _saved.items():
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
    _saved.clear()
