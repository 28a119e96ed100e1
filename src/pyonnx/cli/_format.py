"""Formatting shared by the sub-commands: types, shapes, sizes, array summaries."""

from __future__ import annotations

from typing import Any

import numpy as np


def fmt_shape(shape: Any) -> str:
    """``[N,3,224,224]``; unknown dims print as ``?``, unknown rank as ``[...]``."""
    if shape is None:
        return "[...]"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def fmt_bytes(n: int) -> str:
    """Human-readable byte count (``1.5 MB``)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def summarize(value: Any) -> str:
    """One line describing an output: dtype, shape and statistics (or sequence/map sizes)."""
    if value is None:
        return "empty optional"
    if isinstance(value, list):
        return f"sequence of {len(value)} elements"
    if isinstance(value, dict):
        return f"map with {len(value)} entries"
    arr = np.asarray(value)
    head = f"{arr.dtype} {fmt_shape(arr.shape)}"
    if arr.size == 0:
        return head + " (empty)"
    if arr.dtype == object:
        sample = ", ".join(repr(s) for s in arr.reshape(-1)[:3])
        return f"{head} [{sample}{', ...' if arr.size > 3 else ''}]"
    if arr.dtype == bool:
        return f"{head} true={int(arr.sum())} false={int(arr.size - arr.sum())}"
    data = arr.astype(np.float64) if arr.dtype.kind not in "c" else np.abs(arr)
    finite = data[np.isfinite(data)]
    stats = (f"min={finite.min():.6g} max={finite.max():.6g} mean={finite.mean():.6g} "
             f"std={finite.std():.6g}") if finite.size else "no finite values"
    nonfinite = data.size - finite.size
    return head + " " + stats + (f" non-finite={nonfinite}" if nonfinite else "")
