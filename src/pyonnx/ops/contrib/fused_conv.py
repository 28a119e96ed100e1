"""com.microsoft ``FusedConv``: the Conv + (residual Add) + activation fusion that onnxruntime's
extended optimizer writes, and that ``pyonnx.optimize(level="extended")`` writes too.

``FusedConv(X, W, B, Z)`` computes ``activation(Conv(X, W, B) + Z)`` with Conv's attributes;
``activation`` is one of Relu, LeakyRelu, Sigmoid, Tanh, HardSigmoid, Clip (or absent) and
``activation_params`` holds its attributes in order (LeakyRelu: alpha; HardSigmoid: alpha,
beta; Clip: min, max). The definition is the same as pyonnx's internal ``pyonnx::FusedConv``,
so this kernel is that one registered under onnxruntime's domain.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyonnx.ops.fused import fused_conv as _fused_conv
from pyonnx.ops.registry import KernelContext, kernel

MS = "com.microsoft"


@kernel("FusedConv", versions=(1,), domain=MS)
def fused_conv(X: np.ndarray, W: np.ndarray, B: np.ndarray | None = None,
               Z: np.ndarray | None = None, *,
               auto_pad: str = "NOTSET", dilations: Sequence[int] | None = None,
               group: int = 1, kernel_shape: Sequence[int] | None = None,
               pads: Sequence[int] | None = None, strides: Sequence[int] | None = None,
               activation: str = "", activation_params: Sequence[float] | None = None,
               ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """``activation(Conv(X, W, B) + Z)`` (``Z`` broadcast as Add's second input)."""
    return _fused_conv(X, W, B, Z, auto_pad=auto_pad, dilations=dilations, group=group,
                       kernel_shape=kernel_shape, pads=pads, strides=strides,
                       activation=activation, activation_params=activation_params, ctx=ctx)
