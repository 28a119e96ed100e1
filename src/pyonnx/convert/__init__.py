"""Model converters: the opset version converter (:func:`convert_version`).

``convert_version(model, target_opset)`` rewrites a model's default-domain operators for another
opset (7 to the newest pyonnx knows), up or down, keeping what it computes; see
:mod:`pyonnx.convert.version`.
"""

from pyonnx.convert._context import OpsetConversionError
from pyonnx.convert.version import MIN_OPSET, convert_version, ir_version_for_opset

__all__ = ["convert_version", "OpsetConversionError", "MIN_OPSET", "ir_version_for_opset"]
