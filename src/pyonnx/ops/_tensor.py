"""Helpers shared by the tensor, indexing and cast kernel modules."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["shape_str", "is_ml_dtype"]


def shape_str(shape: Sequence[int]) -> str:
    """A shape as the spec writes it: ``[2, 3, 4]``."""
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def is_ml_dtype(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is one of ml_dtypes' types (bfloat16, float8, int4, float4, ...)."""
    return np.dtype(dtype).type.__module__ == "ml_dtypes"
