"""ZipMap: class scores to one {label: score} map per row (a sequence of maps)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops.registry import kernel

__all__ = ["zip_map"]


@kernel("ZipMap", versions=(1,), domain="ai.onnx.ml")
def zip_map(X: np.ndarray, *, classlabels_int64s: Sequence[int] | None = None,
            classlabels_strings: Sequence[str] | None = None) -> tuple[list[dict]]:
    """Z[i] = {label_j: X[i, j]}: a list with one dict per row, keyed by the int64 or string
    labels, values as Python floats (what onnxruntime returns for seq(map(_, float)))."""
    op = "ZipMap"
    has_int = classlabels_int64s is not None and len(classlabels_int64s) > 0
    has_str = classlabels_strings is not None and len(classlabels_strings) > 0
    if has_int == has_str:
        raise ExecutionError(f"{op}: exactly one of classlabels_int64s and classlabels_strings "
                             f"must be set")
    keys: list[int | str] = ([int(k) for k in classlabels_int64s] if has_int
                             else [str(k) for k in classlabels_strings])
    x = np.asarray(X)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2:
        raise ExecutionError(f"{op}: X must be 1-D or 2-D, got shape {list(x.shape)}")
    if x.shape[1] != len(keys):
        raise ExecutionError(f"{op}: X has {x.shape[1]} columns but there are {len(keys)} class "
                             f"labels")
    rows = x.astype(np.float32, copy=False).tolist()
    return ([dict(zip(keys, row)) for row in rows],)
