"""``pyonnx.version_converter.convert_version``: where onnx's users look for the opset converter
(``onnx.version_converter.convert_version``); the implementation is :mod:`pyonnx.convert`."""

from pyonnx.convert import OpsetConversionError, convert_version

__all__ = ["convert_version", "OpsetConversionError"]
