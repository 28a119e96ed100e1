"""Helpers shared by the ai.onnx.ml kernels: post transforms, attribute checks, input shaping.

The post transforms follow onnxruntime's numerics, which the converters (skl2onnx, onnxmltools)
are validated against: they run in float32, PROBIT uses the closed-form inverse-error-function
approximation with a = 0.147, SOFTMAX_ZERO leaves (near-)zero scores out of the sum, and a single
score column only ever receives PROBIT (LOGISTIC/SOFTMAX of a lone score are not applied).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError

__all__ = [
    "POST_TRANSFORMS",
    "check_post_transform",
    "post_transform",
    "logistic",
    "probit",
    "as_2d",
    "attr_array",
    "labels_array",
]

POST_TRANSFORMS = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")


def check_post_transform(op: str, value: str) -> str:
    """Return ``value`` if it names a post transform; else raise naming the bad value."""
    if value not in POST_TRANSFORMS:
        raise UnsupportedOperatorError(
            f"{op}: post_transform {value!r} is not supported (expected one of "
            f"{', '.join(POST_TRANSFORMS)})")
    return value


def logistic(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) in float32, computed on |x| so that large scores cannot overflow."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore"):
        v = (np.float32(1) / (np.float32(1) + np.exp(-np.abs(x)))).astype(np.float32)
    return np.where(x < 0, np.float32(1) - v, v).astype(np.float32)


def probit(x: np.ndarray) -> np.ndarray:
    """sqrt(2) * erfinv(2x - 1), erfinv by the a = 0.147 closed form (as onnxruntime has it)."""
    x = np.asarray(x, dtype=np.float32)
    y = np.float32(2) * x - np.float32(1)
    sgn = np.where(y < 0, np.float32(-1), np.float32(1)).astype(np.float32)
    t = (np.float32(1) - y) * (np.float32(1) + y)
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.log(t).astype(np.float32)
        # The constants are evaluated in float, as onnxruntime's float expressions round them:
        # near x = 0.5 the result is a small difference of large terms and shows every ulp.
        c1 = np.float32(2) / (np.float32(np.pi) * np.float32(0.147))
        c2 = np.float32(1) / np.float32(0.147)
        v = c1 + np.float32(0.5) * lg
        v2 = c2 * lg
        v3 = -v + np.sqrt(v * v - v2)
        r = sgn * np.sqrt(v3)
    return (np.float32(np.sqrt(2)) * r).astype(np.float32)


def _softmax(s: np.ndarray) -> np.ndarray:
    m = np.max(s, axis=1, keepdims=True)
    e = np.exp(s - m)
    return (e / np.sum(e, axis=1, keepdims=True)).astype(np.float32)


def _softmax_zero(s: np.ndarray) -> np.ndarray:
    # Scores within 1e-7 of zero count as "absent": they are scaled by exp(-max) instead of
    # exponentiated, and stay out of the normalizing sum.
    m = np.max(s, axis=1, keepdims=True)
    nonzero = (s > np.float32(1e-7)) | (s < np.float32(-1e-7))
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.where(nonzero, np.exp(s - m), s * np.exp(-m)).astype(np.float32)
        total = np.sum(np.where(nonzero, e, np.float32(0)), axis=1, keepdims=True)
        return (e / total).astype(np.float32)


def post_transform(scores: np.ndarray, transform: str) -> np.ndarray:
    """Apply a post transform to an [N, C] float32 score matrix, row-wise.

    With a single column only PROBIT applies, as in onnxruntime's regressors and classifiers.
    """
    s = np.asarray(scores, dtype=np.float32)
    if transform == "NONE":
        return s
    if transform == "PROBIT":
        return probit(s)
    if s.ndim == 2 and s.shape[1] < 2:
        return s
    if transform == "LOGISTIC":
        return logistic(s)
    if transform == "SOFTMAX":
        return _softmax(s)
    if transform == "SOFTMAX_ZERO":
        return _softmax_zero(s)
    raise UnsupportedOperatorError(f"post_transform {transform!r} is not supported")


def as_2d(op: str, x: np.ndarray) -> np.ndarray:
    """The [N, F] view of a model input: a 1-D input is one row; other ranks are errors."""
    x = np.asarray(x)
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim != 2:
        raise ExecutionError(f"{op}: input X must be 1-D or 2-D [N, F], got shape {list(x.shape)}")
    return x


def attr_array(value: Any, dtype: Any) -> np.ndarray:
    """A list (or tensor) attribute as a 1-D array of ``dtype``; an absent attribute is empty."""
    if value is None:
        return np.zeros(0, dtype=dtype)
    return np.asarray(value, dtype=dtype).reshape(-1)


def labels_array(labels: Sequence[Any], idx: np.ndarray) -> np.ndarray:
    """Pick class labels (int64 or strings) by index, returning the right ONNX dtype."""
    if labels and isinstance(labels[0], str):
        arr = np.asarray(list(labels), dtype=object)
    else:
        arr = np.asarray(list(labels), dtype=np.int64)
    return arr[idx]
