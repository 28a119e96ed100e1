"""onnxruntime's ``onnxruntime.capi`` package layout, over pyonnx.

``pyonnx.capi.onnxruntime_pybind11_state`` (also reachable as ``pyonnx.capi._pybind_state``)
holds what onnxruntime's compiled module holds: the status exception classes (``Fail``,
``InvalidArgument``, ...), the value and option classes and the module functions.
``pyonnx.capi.onnxruntime_inference_collection`` holds the Python-level classes. The shim in
:mod:`pyonnx.compat` maps ``onnxruntime.capi.*`` to these modules.
"""

from pyonnx.capi import onnxruntime_pybind11_state
from pyonnx.capi import onnxruntime_pybind11_state as _pybind_state
from pyonnx.capi import onnxruntime_inference_collection

__all__ = ["onnxruntime_pybind11_state", "_pybind_state", "onnxruntime_inference_collection"]
