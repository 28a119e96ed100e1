"""com.microsoft ``FusedConv``: the Conv + (residual Add) + activation fusion that onnxruntime's
extended optimizer writes, and that ``pyonnx.optimize(level="extended")`` writes too.

``FusedConv(X, W, B, Z)`` computes ``activation(Conv(X, W, B) + Z)`` with Conv's attributes;
``activation`` is one of Relu, LeakyRelu, Sigmoid, Tanh, HardSigmoid, Clip (or absent) and
``activation_params`` holds its attributes in order (LeakyRelu: alpha; HardSigmoid: alpha,
beta; Clip: min, max). This is the reference: the standard kernels applied one after the
other. The CPU provider runs it (and pyonnx's internal ``pyonnx::FusedConv``, the same
definition) with its fast Conv and the activation applied in place
(:mod:`pyonnx.backends.cpu.fused`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops import activation as _act
from pyonnx.ops.conv import conv
from pyonnx.ops.registry import KernelContext, get_kernel, kernel

__all__ = ["ACTIVATIONS", "check_activation", "activation_reference"]

MS = "com.microsoft"

#: The activations a fused Conv/Gemm/MatMul applies, with how many parameters each takes.
ACTIVATIONS = {"": 0, "Relu": 0, "LeakyRelu": 1, "Sigmoid": 0, "Tanh": 0, "HardSigmoid": 2,
               "Clip": 2}


def check_activation(activation: str, params: Sequence[float] | None,
                     known: dict[str, int] = ACTIVATIONS) -> list[float]:
    """The activation's parameters, checked against ``known`` (name -> parameter count;
    :data:`ACTIVATIONS` for com.microsoft's fused ops)."""
    params = list(params or ())
    want = known.get(activation)
    if want is None:
        raise ExecutionError(f"unknown fused activation {activation!r} (known: "
                             f"{', '.join(a for a in known if a)})")
    if len(params) != want:
        raise ExecutionError(f"fused activation {activation} takes {want} parameters, got "
                             f"{len(params)}")
    return params


def activation_reference(y: np.ndarray, activation: str, params: Sequence[float]) -> np.ndarray:
    """``activation(y)`` by the standard kernel (Clip with its bounds as scalars of y's type)."""
    if not activation:
        return y
    if activation == "LeakyRelu":
        return _act.LeakyRelu(y, alpha=float(params[0]))[0]
    if activation == "HardSigmoid":
        return _act.HardSigmoid(y, alpha=float(params[0]), beta=float(params[1]))[0]
    if activation == "Clip":
        if y.dtype.kind != "f":
            raise ExecutionError(f"fused Clip: expected a float result, got {y.dtype}")
        typ = y.dtype.type
        with np.errstate(all="ignore"):
            return np.clip(y, typ(params[0]), typ(params[1]))
    return getattr(_act, activation)(y)[0]


@kernel("FusedConv", versions=(1,), domain=MS)
def fused_conv(X: np.ndarray, W: np.ndarray, B: np.ndarray | None = None,
               Z: np.ndarray | None = None, *,
               auto_pad: str = "NOTSET", dilations: Sequence[int] | None = None,
               group: int = 1, kernel_shape: Sequence[int] | None = None,
               pads: Sequence[int] | None = None, strides: Sequence[int] | None = None,
               activation: str = "", activation_params: Sequence[float] | None = None,
               ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """``activation(Conv(X, W, B) + Z)`` (``Z`` broadcast as Add's second input)."""
    params = check_activation(activation, activation_params)
    (y,) = conv(X, W, B, auto_pad=auto_pad, dilations=dilations, group=group,
                kernel_shape=kernel_shape, pads=pads, strides=strides, ctx=ctx)
    if Z is not None:
        (y,) = get_kernel("", "Add", 14)(y, Z)  # Add's checks and broadcasting
    return (activation_reference(y, activation, params),)
