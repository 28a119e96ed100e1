"""Other contrib operators (com.microsoft): NhwcMaxPool, GridSample, Inverse and Trilu, the
versions onnxruntime kept from before (or beside) their standard counterparts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops._elementwise import FLOAT_TYPES, LOW_PRECISION, check_dtype
from pyonnx.ops.image import grid_sample_16
from pyonnx.ops.pool import max_pool
from pyonnx.ops.registry import KernelContext, kernel
from pyonnx.ops.tensor import trilu as _onnx_trilu

MS = "com.microsoft"


@kernel("NhwcMaxPool", versions=(1,), domain=MS)
def nhwc_max_pool(x: np.ndarray, *, kernel_shape: Sequence[int], auto_pad: str = "NOTSET",
                  ceil_mode: int = 0, dilations: Sequence[int] | None = None,
                  pads: Sequence[int] | None = None, strides: Sequence[int] | None = None,
                  ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """MaxPool over an (N, spatial..., C) tensor of 8-bit integers."""
    if x.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise ExecutionError(f"NhwcMaxPool: x must be int8 or uint8, got {x.dtype}")
    if x.ndim < 3:
        raise ExecutionError(f"NhwcMaxPool: x must be (N, spatial..., C), got shape {x.shape}")
    y, *_ = max_pool(np.moveaxis(x, -1, 1), auto_pad=auto_pad, ceil_mode=ceil_mode,
                     dilations=dilations, kernel_shape=kernel_shape, pads=pads, strides=strides)
    return (np.ascontiguousarray(np.moveaxis(y, 1, -1)),)


@kernel("GridSample", versions=(1,), domain=MS)
def grid_sample(X: np.ndarray, Grid: np.ndarray, *, align_corners: int = 0,
                mode: str = "bilinear", padding_mode: str = "zeros",
                ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Sample 4-D X at the normalized positions of Grid (as ai.onnx GridSample-16). The contrib
    schema's output is float whatever X's type, so X must be float (as onnxruntime registers)."""
    check_dtype("GridSample", X, FLOAT_TYPES, "X")
    return grid_sample_16(X, Grid, align_corners=align_corners, mode=mode,
                          padding_mode=padding_mode, ctx=ctx)


@kernel("Inverse", versions=(1,), domain=MS)
def inverse(X: np.ndarray) -> tuple[np.ndarray]:
    """The inverse of each square matrix in the last two axes."""
    check_dtype("Inverse", X, FLOAT_TYPES, "X")
    if X.ndim < 2 or X.shape[-1] != X.shape[-2]:
        raise ExecutionError(f"Inverse: X must be square matrices (..., n, n), got shape {X.shape}")
    w = X.astype(np.float32) if X.dtype in LOW_PRECISION else X
    try:
        y = np.linalg.inv(w)
    except np.linalg.LinAlgError as e:
        raise ExecutionError(f"Inverse: a matrix of X is singular ({e})") from None
    return (y.astype(X.dtype, copy=False),)


@kernel("Trilu", versions=(1,), domain=MS)
def trilu(X: np.ndarray, k: np.ndarray | None = None, *, upper: int = 1) -> tuple[np.ndarray]:
    """Keep the upper (or lower) triangle of the last two axes relative to diagonal k."""
    return _onnx_trilu(X, k, upper=upper)
