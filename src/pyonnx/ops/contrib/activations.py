"""Contrib activations: Gelu, FastGelu, BiasGelu, QuickGelu, BiasAdd, BiasSoftmax (com.microsoft)."""

from __future__ import annotations

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops._common import as_matrix, normalize_axis
from pyonnx.ops._elementwise import FLOAT_TYPES, LOW_PRECISION, check_dtype
from pyonnx.ops.activation import Gelu as _onnx_gelu
from pyonnx.ops.registry import kernel

MS = "com.microsoft"


def _add_bias(op: str, X: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """X + bias, where bias is 1-D over X's last axis, in X's type."""
    check_dtype(op, X, FLOAT_TYPES, "X")
    if bias is None:
        return X
    if bias.dtype != X.dtype:
        raise ExecutionError(f"{op}: bias has element type {bias.dtype} but the input has {X.dtype}")
    if bias.ndim != 1 or X.ndim == 0 or bias.shape[0] != X.shape[-1]:
        raise ExecutionError(f"{op}: bias must be 1-D with the input's last dimension "
                             f"({X.shape[-1] if X.ndim else '?'}) elements, got shape {bias.shape}")
    if X.dtype in LOW_PRECISION:
        # onnxruntime adds the bias in float and rounds once, inside the activation.
        return X.astype(np.float32) + bias.astype(np.float32)
    return X + bias


@kernel("Gelu", versions=(1,), domain=MS)
def gelu(X: np.ndarray) -> tuple[np.ndarray]:
    """Y = 0.5 * X * (1 + erf(X / sqrt(2)))."""
    return _onnx_gelu(X)


@kernel("BiasGelu", versions=(1,), domain=MS)
def bias_gelu(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray]:
    """C = Gelu(A + B), B a 1-D bias over A's last axis."""
    s = _add_bias("BiasGelu", A, B)
    return (_onnx_gelu(s)[0].astype(A.dtype, copy=False),)


@kernel("FastGelu", versions=(1,), domain=MS)
def fast_gelu(X: np.ndarray, bias: np.ndarray | None = None) -> tuple[np.ndarray]:
    """Y = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) with x = X + bias."""
    s = _add_bias("FastGelu", X, bias)
    return (_onnx_gelu(s, approximate="tanh")[0].astype(X.dtype, copy=False),)


@kernel("QuickGelu", versions=(1,), domain=MS)
def quick_gelu(X: np.ndarray, *, alpha: float = 1.702) -> tuple[np.ndarray]:
    """Y = X * sigmoid(alpha * X)."""
    check_dtype("QuickGelu", X, FLOAT_TYPES, "X")
    w = X.astype(np.float32) if X.dtype in LOW_PRECISION else X
    typ = w.dtype.type
    with np.errstate(over="ignore"):
        t = np.asarray(np.multiply(w, typ(-alpha)))  # an array for a 0-d X: out= below
        np.exp(t, out=t)
        t += typ(1)
        y = np.asarray(np.divide(w, t))
    return (y.astype(X.dtype, copy=False),)


@kernel("BiasAdd", versions=(1,), domain=MS)
def bias_add(X: np.ndarray, bias: np.ndarray, skip: np.ndarray) -> tuple[np.ndarray]:
    """Y = X + bias + skip; X and skip are (N, S, C), bias is (C)."""
    check_dtype("BiasAdd", X, FLOAT_TYPES, "X")
    if X.ndim != 3:
        raise ExecutionError(f"BiasAdd: X must be 3-D (N, S, C), got shape {X.shape}")
    if skip.shape != X.shape:
        raise ExecutionError(f"BiasAdd: skip has shape {skip.shape}, X has {X.shape}; they must match")
    if bias.shape != (X.shape[2],):
        raise ExecutionError(f"BiasAdd: bias must have shape ({X.shape[2]},), got {bias.shape}")
    w = X.astype(np.float32) if X.dtype in LOW_PRECISION else X
    y = w + bias.astype(w.dtype, copy=False)
    y += skip.astype(w.dtype, copy=False)
    return (y.astype(X.dtype, copy=False),)


@kernel("BiasSoftmax", versions=(1,), domain=MS)
def bias_softmax(data: np.ndarray, bias: np.ndarray, *, axis: int = 1,
                 is_inner_broadcast: int = 0) -> tuple[np.ndarray]:
    """Y = softmax(data + bias) over the dimensions axis.. (flattened), bias broadcast to data.

    ``is_inner_broadcast`` only tells which dimensions of ``bias`` are 1 (the inner ones
    between the batch and the softmax axis, or the leading ones); NumPy broadcasting covers both.
    """
    check_dtype("BiasSoftmax", data, FLOAT_TYPES, "data")
    if bias.dtype != data.dtype:
        raise ExecutionError(f"BiasSoftmax: bias has element type {bias.dtype} but data has "
                             f"{data.dtype}")
    ax = normalize_axis(axis, max(data.ndim, 1))
    try:
        shape = np.broadcast_shapes(data.shape, bias.shape)
    except ValueError:
        shape = None
    if shape != data.shape:
        raise ExecutionError(f"BiasSoftmax: bias of shape {bias.shape} does not broadcast to data "
                             f"of shape {data.shape}")
    w = data.astype(np.float32) if data.dtype in LOW_PRECISION else data
    s = w + bias.astype(w.dtype, copy=False)
    s = as_matrix(s, ax)
    if s.size == 0:  # no rows, or rows of nothing: nothing to normalize (max has no identity)
        return (np.empty(data.shape, data.dtype),)
    s -= s.max(axis=1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=1, keepdims=True)
    return (s.reshape(data.shape).astype(data.dtype, copy=False),)
