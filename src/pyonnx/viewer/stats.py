"""Summary statistics of a weight tensor, for the viewer's side panel.

The viewer never ships weights to the page: it ships these numbers instead (shape, element type,
min/max/mean/std, share of zeros, a histogram). They are computed in chunks so that a large
embedding table costs a bounded amount of extra memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyonnx.ir import DataType, Tensor
from pyonnx.ir.tensor import SparseTensor

__all__ = ["tensor_stats", "HISTOGRAM_BINS"]

#: Bins of the histogram of finite values.
HISTOGRAM_BINS = 24
#: Elements converted to float64 at a time (32 MiB of scratch memory).
_CHUNK = 1 << 22


def _finite_float(x: float) -> float | None:
    """JSON has no NaN or infinity: those become None (the page shows them as 'n/a')."""
    return float(x) if np.isfinite(x) else None


def tensor_stats(tensor: Tensor | SparseTensor) -> dict[str, Any]:
    """Statistics of one tensor: ``dtype``, ``shape``, ``size``, ``bytes`` and, for numeric
    data, ``min``, ``max``, ``mean``, ``std``, ``zeros`` (share of elements equal to zero),
    ``nonfinite`` (count of NaN and infinities) and ``hist`` (``lo``, ``hi``, ``counts``);
    ``external`` when the data lives in an external file, ``sparse`` with ``nnz`` for a sparse
    tensor. An error decoding the data (a missing external file) is reported as ``error``
    rather than raised: the viewer still shows the rest of the model.
    """
    sparse = isinstance(tensor, SparseTensor)
    head = tensor.values if sparse else tensor
    out: dict[str, Any] = {
        "dtype": head.data_type.onnx_name if head.data_type != DataType.UNDEFINED else "undefined",
        "shape": list(tensor.dims),
        "size": int(np.prod(tensor.dims, dtype=np.int64)) if tensor.dims else 1,
    }
    if sparse:
        out["sparse"] = True
        out["nnz"] = int(np.prod(head.dims, dtype=np.int64)) if head.dims else 1
    else:
        out["bytes"] = (out["size"] * head.data_type.itemsize_bits + 7) // 8 \
            if head.data_type not in (DataType.STRING, DataType.UNDEFINED) else None
        if head.external:
            out["external"] = head.external.get("location", "")
    try:
        arr = tensor.to_dense() if sparse else tensor.numpy()
    except Exception as e:  # noqa: BLE001 - any failure to read the data is shown, not raised
        out["error"] = f"{type(e).__name__}: {e}"
        return out
    out.update(_array_stats(np.asarray(arr)))
    return out


def _array_stats(arr: np.ndarray) -> dict[str, Any]:
    if arr.size == 0:
        return {}
    if arr.dtype == object or arr.dtype.kind in "US":
        return {"strings": True}
    flat = arr.reshape(-1)
    if flat.dtype.kind == "c":
        flat = np.abs(flat)  # magnitudes: what a histogram of complex weights can show
    lo, hi = np.inf, -np.inf
    total = 0.0
    zeros = nonfinite = finite_n = 0
    # first pass: range, sum, zeros; the mean is needed before the variance (two-pass: exact)
    for start in range(0, flat.size, _CHUNK):
        c = flat[start:start + _CHUNK].astype(np.float64)
        zeros += int(np.count_nonzero(c == 0))
        ok = np.isfinite(c)
        n = int(np.count_nonzero(ok))
        nonfinite += c.size - n
        if n:
            f = c[ok] if n != c.size else c
            lo, hi = min(lo, float(f.min())), max(hi, float(f.max()))
            total += float(f.sum())
            finite_n += n
    out: dict[str, Any] = {"zeros": zeros / flat.size, "nonfinite": nonfinite}
    if not finite_n:
        return out
    mean = total / finite_n
    sq = 0.0
    edges_lo, edges_hi = lo, hi
    if not hi - lo > max(abs(lo), abs(hi)) * 1e-9:
        # one value (or nearly): a window around it, relative to its size, so that float64
        # can still split it into bins
        pad = max(abs(lo), abs(hi), 1.0) * 1e-3
        edges_lo, edges_hi = lo - pad, hi + pad
    counts = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
    for start in range(0, flat.size, _CHUNK):
        c = flat[start:start + _CHUNK].astype(np.float64)
        f = c[np.isfinite(c)]
        sq += float(np.square(f - mean).sum())
        counts += np.histogram(np.clip(f, edges_lo, edges_hi), bins=HISTOGRAM_BINS,
                               range=(edges_lo, edges_hi))[0]
    out.update({"min": _finite_float(lo), "max": _finite_float(hi),
                "mean": _finite_float(mean), "std": _finite_float(np.sqrt(sq / finite_n)),
                "hist": {"lo": edges_lo, "hi": edges_hi, "counts": counts.tolist()}})
    if arr.dtype == bool:
        out["true"] = int(np.count_nonzero(arr))
    return out
