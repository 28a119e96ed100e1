"""Model converters: the opset version converter (:func:`convert_version`).

``convert_version(model, target_opset)`` rewrites a model's default-domain operators for another
opset (7 to the newest pyonnx knows), up or down, keeping what it computes; see
:mod:`pyonnx.convert.version`. ``to_torch(model)`` gives a ``torch.fx.GraphModule`` computing
the model (:mod:`pyonnx.convert.torch_fx`, the ``torch`` extra; torch is imported on first use; the
module is not named ``to_torch``, since importing it would shadow the function).
"""

from typing import Any

from pyonnx.convert._context import OpsetConversionError
from pyonnx.convert.version import MIN_OPSET, convert_version, ir_version_for_opset

__all__ = ["convert_version", "OpsetConversionError", "MIN_OPSET", "ir_version_for_opset",
           "to_torch"]


def __getattr__(name: str) -> Any:
    # to_torch imports torch: load it only when asked for, so `import pyonnx` stays torch-free
    if name == "to_torch":
        from pyonnx.convert.torch_fx import to_torch

        return to_torch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
