"""Kernels that read or write tensors at computed positions: Gather*, Scatter*, OneHot, TopK, ...

Every index an operator takes from its inputs is range-checked (``check_indices``) before use:
NumPy would silently wrap ``-dim - 1`` around, which the spec makes an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ops._common import as_matrix, check_alloc, check_indices, normalize_axis, prod
from pyonnx.ops._tensor import is_ml_dtype, shape_str
from pyonnx.ops.registry import KernelContext, kernel

__all__: list[str] = []



def _sortable(x: np.ndarray) -> np.ndarray:
    """``x`` in a dtype NumPy sorts correctly.

    ml_dtypes' types sort NaN in the wrong place (bfloat16) or lack loops, so they are widened
    to float32, which holds each of their values exactly.
    """
    return x.astype(np.float32) if is_ml_dtype(x.dtype) else x


# --------------------------------------------------------------------------------------------
# Gather family
# --------------------------------------------------------------------------------------------


@kernel("Gather", versions=(1, 11, 13))
def gather(data: np.ndarray, indices: np.ndarray, *, axis: int = 0) -> tuple[np.ndarray]:
    """Take the slices of ``data`` along ``axis`` at ``indices`` (negative counts from the end)."""
    ax = normalize_axis(axis, data.ndim, "Gather axis")
    dim = data.shape[ax]
    if indices.ndim == 0:
        # a scalar index (the common shape-computation case) is basic indexing: a view
        i = int(indices)
        if not -dim <= i < dim:
            raise ExecutionError(f"Gather index {i} is outside the allowed range "
                                 f"[{-dim}, {dim - 1}] of axis {ax} (size {dim})")
        # (the trailing Ellipsis keeps a 0-d array rather than a NumPy or Python scalar)
        return (data[(slice(None),) * ax + (i, Ellipsis)],)
    idx = check_indices(indices, dim, f"Gather indices (axis {ax})")
    return (np.take(data, idx, axis=ax),)


def _along_axis_index(data_shape: tuple[int, ...], indices: np.ndarray, ax: int,
                      op: str) -> np.ndarray:
    """Checked, non-negative indices for the element-wise gather/scatter along ``ax``."""
    if indices.ndim != len(data_shape):
        raise ExecutionError(f"{op}: indices of shape {shape_str(indices.shape)} must have the "
                             f"rank of data of shape {shape_str(data_shape)}")
    for d, (i, s) in enumerate(zip(indices.shape, data_shape)):
        if d != ax and i > s:
            raise ExecutionError(f"{op}: indices of shape {shape_str(indices.shape)} exceed data "
                                 f"of shape {shape_str(data_shape)} in dimension {d}")
    return check_indices(indices, data_shape[ax], f"{op} indices (axis {ax})")


@kernel("GatherElements", versions=(11, 13))
def gather_elements(data: np.ndarray, indices: np.ndarray, *, axis: int = 0) -> tuple[np.ndarray]:
    """out[i][j] = data[indices[i][j]][j] (axis 0), and alike for other axes and ranks."""
    ax = normalize_axis(axis, data.ndim, "GatherElements axis")
    idx = _along_axis_index(data.shape, indices, ax, "GatherElements")
    # indices may be smaller than data in the other dims: only that corner is read
    corner = tuple(slice(None) if d == ax else slice(0, n) for d, n in enumerate(idx.shape))
    return (np.take_along_axis(data[corner], idx, axis=ax),)


def _nd_prepare(data: np.ndarray, indices: np.ndarray, batch_dims: int,
                op: str) -> tuple[int, int, tuple[np.ndarray, ...]]:
    """Check GatherND/ScatterND indices; return (batch size, k, per-coordinate index arrays).

    The index arrays have shape [prod(batch dims), M] and are non-negative.
    """
    r, q, b = data.ndim, indices.ndim, batch_dims
    if q < 1 or r < 1:
        raise ExecutionError(f"{op} needs data and indices of rank >= 1, got shapes "
                             f"{shape_str(data.shape)} and {shape_str(indices.shape)}")
    if not 0 <= b < min(q, r):
        raise ExecutionError(f"{op} batch_dims {b} must be in [0, min(rank(data), rank(indices)) "
                             f"- 1] = [0, {min(q, r) - 1}]")
    if data.shape[:b] != indices.shape[:b]:
        raise ExecutionError(f"{op}: the first {b} dims of data {shape_str(data.shape)} and "
                             f"indices {shape_str(indices.shape)} must be equal")
    k = indices.shape[-1]
    if not 1 <= k <= r - b:
        raise ExecutionError(f"{op}: the last dim of indices {shape_str(indices.shape)} must be in "
                             f"[1, {r - b}] for data of shape {shape_str(data.shape)}")
    nb = math.prod(data.shape[:b])
    flat = indices.reshape(nb, -1, k)
    cols = tuple(check_indices(flat[..., j], data.shape[b + j], f"{op} indices (dim {b + j})")
                 for j in range(k))
    return nb, k, cols


@kernel("GatherND", versions=(11, 12, 13))
def gather_nd(data: np.ndarray, indices: np.ndarray, *, batch_dims: int = 0) -> tuple[np.ndarray]:
    """Gather the slices of ``data`` addressed by the k-tuples in the last dim of ``indices``."""
    nb, k, cols = _nd_prepare(data, indices, batch_dims, "GatherND")
    b = batch_dims
    d = data.reshape((nb,) + data.shape[b:])
    out = d[(np.arange(nb)[:, None],) + cols]  # [nb, M, *data.shape[b+k:]]
    return (out.reshape(indices.shape[:-1] + data.shape[b + k:]),)


# --------------------------------------------------------------------------------------------
# Scatter family
# --------------------------------------------------------------------------------------------

_REDUCERS: dict[str, np.ufunc] = {
    "add": np.add,
    "mul": np.multiply,
    "max": np.maximum,
    "min": np.minimum,
}


def _check_reduction(reduction: str, allowed: tuple[str, ...], op: str) -> None:
    if reduction not in allowed:
        raise UnsupportedOperatorError(f"{op} reduction {reduction!r} is not supported at this "
                                       f"opset (allowed: {', '.join(allowed)})")


def _scatter_at(out: np.ndarray, index: tuple[Any, ...], updates: np.ndarray,
                reduction: str) -> None:
    if reduction == "none":
        out[index] = updates
    else:
        # ufunc.at applies every update, duplicates included, in order
        _REDUCERS[reduction].at(out, index, updates)


def _scatter_elements(data: np.ndarray, indices: np.ndarray, updates: np.ndarray, axis: int,
                      reduction: str, op: str) -> np.ndarray:
    ax = normalize_axis(axis, data.ndim, f"{op} axis")
    if updates.shape != indices.shape:
        raise ExecutionError(f"{op}: updates of shape {shape_str(updates.shape)} must have the "
                             f"shape of indices {shape_str(indices.shape)}")
    idx = _along_axis_index(data.shape, indices, ax, op)
    index = tuple(idx if d == ax else
                  np.arange(n).reshape((1,) * d + (n,) + (1,) * (idx.ndim - d - 1))
                  for d, n in enumerate(idx.shape))
    out = data.copy()
    _scatter_at(out, index, updates.astype(data.dtype, copy=False), reduction)
    return out


@kernel("Scatter", versions=(9, 11))
def scatter(data: np.ndarray, indices: np.ndarray, updates: np.ndarray, *,
            axis: int = 0) -> tuple[np.ndarray]:
    """Deprecated alias of ScatterElements without reduction."""
    return (_scatter_elements(data, indices, updates, axis, "none", "Scatter"),)


@kernel("ScatterElements", versions=(11, 13))
def scatter_elements_11(data: np.ndarray, indices: np.ndarray, updates: np.ndarray, *,
                        axis: int = 0) -> tuple[np.ndarray]:
    """Copy of data with out[indices[i][j]][j] = updates[i][j] (axis 0), and alike."""
    return (_scatter_elements(data, indices, updates, axis, "none", "ScatterElements"),)


@kernel("ScatterElements", versions=(16,))
def scatter_elements_16(data: np.ndarray, indices: np.ndarray, updates: np.ndarray, *,
                        axis: int = 0, reduction: str = "none") -> tuple[np.ndarray]:
    """ScatterElements with reduction none, add or mul."""
    _check_reduction(reduction, ("none", "add", "mul"), "ScatterElements")
    return (_scatter_elements(data, indices, updates, axis, reduction, "ScatterElements"),)


@kernel("ScatterElements", versions=(18,))
def scatter_elements_18(data: np.ndarray, indices: np.ndarray, updates: np.ndarray, *,
                        axis: int = 0, reduction: str = "none") -> tuple[np.ndarray]:
    """ScatterElements with reduction none, add, mul, max or min."""
    _check_reduction(reduction, ("none", "add", "mul", "max", "min"), "ScatterElements")
    return (_scatter_elements(data, indices, updates, axis, reduction, "ScatterElements"),)


def _scatter_nd(data: np.ndarray, indices: np.ndarray, updates: np.ndarray,
                reduction: str) -> np.ndarray:
    _, k, cols = _nd_prepare(data, indices, 0, "ScatterND")
    expected = indices.shape[:-1] + data.shape[k:]
    if updates.shape != expected:
        raise ExecutionError(f"ScatterND: updates of shape {shape_str(updates.shape)} must have "
                             f"shape {shape_str(expected)} (indices {shape_str(indices.shape)}, "
                             f"data {shape_str(data.shape)})")
    out = data.copy()
    index = tuple(c.reshape(-1) for c in cols)
    # the number of updated slices spelled out: -1 cannot be inferred when a slice is empty
    upd = updates.reshape((prod(indices.shape[:-1]),) + data.shape[k:]).astype(data.dtype,
                                                                              copy=False)
    _scatter_at(out, index, upd, reduction)
    return out


@kernel("ScatterND", versions=(11, 13))
def scatter_nd_11(data: np.ndarray, indices: np.ndarray, updates: np.ndarray) -> tuple[np.ndarray]:
    """Copy of data with the slices addressed by ``indices`` replaced by ``updates``."""
    return (_scatter_nd(data, indices, updates, "none"),)


@kernel("ScatterND", versions=(16,))
def scatter_nd_16(data: np.ndarray, indices: np.ndarray, updates: np.ndarray, *,
                  reduction: str = "none") -> tuple[np.ndarray]:
    """ScatterND with reduction none, add or mul."""
    _check_reduction(reduction, ("none", "add", "mul"), "ScatterND")
    return (_scatter_nd(data, indices, updates, reduction),)


@kernel("ScatterND", versions=(18,))
def scatter_nd_18(data: np.ndarray, indices: np.ndarray, updates: np.ndarray, *,
                  reduction: str = "none") -> tuple[np.ndarray]:
    """ScatterND with reduction none, add, mul, max or min."""
    _check_reduction(reduction, ("none", "add", "mul", "max", "min"), "ScatterND")
    return (_scatter_nd(data, indices, updates, reduction),)


@kernel("TensorScatter", versions=(24,))
def tensor_scatter(past_cache: np.ndarray, update: np.ndarray,
                   write_indices: np.ndarray | None = None, *, mode: str = "linear",
                   axis: int = -2) -> tuple[np.ndarray]:
    """KV-cache update: copy ``update`` into ``past_cache`` at write_indices[b] along ``axis``."""
    r = past_cache.ndim
    ax = normalize_axis(axis, r, "TensorScatter axis")
    if ax == 0:
        raise ExecutionError("TensorScatter axis must not be 0 (the batch dimension)")
    if mode not in ("linear", "circular"):
        raise UnsupportedOperatorError(f"TensorScatter mode {mode!r} is not linear or circular")
    if update.ndim != r or any(u != p for d, (u, p) in enumerate(zip(update.shape, past_cache.shape))
                               if d != ax):
        raise ExecutionError(f"TensorScatter: update of shape {shape_str(update.shape)} must match "
                             f"past_cache of shape {shape_str(past_cache.shape)} except in "
                             f"axis {ax}")
    nb, max_len, seq = past_cache.shape[0], past_cache.shape[ax], update.shape[ax]
    if seq > max_len:
        raise ExecutionError(f"TensorScatter: update has {seq} steps along axis {ax}, more than "
                             f"the cache's {max_len}")
    if write_indices is None:
        start = np.zeros(nb, dtype=np.int64)
    else:
        start = np.asarray(write_indices).astype(np.int64).reshape(-1)
        if start.shape[0] != nb:
            raise ExecutionError(f"TensorScatter write_indices has {start.shape[0]} entries for a "
                                 f"batch of {nb}")
    pos = start[:, None] + np.arange(seq)[None, :]  # [batch, seq]
    if mode == "circular":
        pos %= max_len
    elif start.size and (start.min() < 0 or start.max() + seq > max_len):
        bad = int(start.min()) if start.min() < 0 else int(start.max())
        raise ExecutionError(f"TensorScatter write_indices contains {bad}; in linear mode each must "
                             f"be in [0, {max_len - seq}] (cache length {max_len}, {seq} new steps)")
    shape = [1] * r
    shape[0], shape[ax] = nb, seq
    pos = pos.reshape(shape)
    out = past_cache.copy()
    np.put_along_axis(out, pos, update, axis=ax)
    return (out,)


# --------------------------------------------------------------------------------------------
# OneHot, Compress, NonZero
# --------------------------------------------------------------------------------------------


@kernel("OneHot", versions=(9, 11, 28))
def one_hot(indices: np.ndarray, depth: np.ndarray, values: np.ndarray, *, axis: int = -1,
            ctx: KernelContext) -> tuple[np.ndarray]:
    """values[1] where the new ``axis`` index equals the input index, values[0] elsewhere.

    Indices outside [-depth, depth - 1] give a row of off values, as the spec says.
    """
    if depth.size != 1:
        raise ExecutionError(f"OneHot depth must be a single value, got shape {shape_str(depth.shape)}")
    dv = depth.reshape(-1)[0]
    n = int(dv)
    if n < 1 or (depth.dtype.kind == "f" and not math.isfinite(float(dv))):
        raise ExecutionError(f"OneHot depth must be positive, got {dv}")
    if values.size != 2:
        raise ExecutionError(f"OneHot values must hold [off_value, on_value], got "
                             f"{values.size} elements")
    r = indices.ndim
    if not -r - 1 <= axis <= r:
        raise ExecutionError(f"OneHot axis {axis} is out of range for indices of rank {r} "
                             f"(allowed: {-r - 1} to {r})")
    ax = axis + r + 1 if axis < 0 else axis
    out_shape = list(indices.shape)
    out_shape.insert(ax, n)
    check_alloc(out_shape, values.dtype, ctx.max_tensor_bytes, "OneHot output")
    idx = indices
    if idx.dtype.kind == "f":
        idx = np.trunc(idx)
    idx = idx.astype(np.int64)
    idx = np.where(idx < 0, idx + n, idx)
    # compare against the new axis's coordinate; out-of-range indices match nothing
    coord = np.arange(n, dtype=np.int64).reshape((n,) + (1,) * (r - ax))
    hot = np.expand_dims(idx, ax) == coord
    v = values.reshape(-1)
    return (np.where(hot, v[1], v[0]).astype(values.dtype, copy=False),)


@kernel("Compress", versions=(9, 11, 28))
def compress(input: np.ndarray, condition: np.ndarray, *,
             axis: int | None = None) -> tuple[np.ndarray]:
    """The slices along ``axis`` (elements of the flattened input if absent) where condition holds."""
    cond = np.asarray(condition).astype(bool, copy=False).reshape(-1)
    if axis is None:
        data = input.reshape(-1)
        ax = 0
    else:
        data = input
        ax = normalize_axis(axis, input.ndim, "Compress axis")
    dim = data.shape[ax]
    if cond.shape[0] > dim:
        if cond[dim:].any():
            raise ExecutionError(f"Compress condition has {cond.shape[0]} entries and selects "
                                 f"beyond the {dim} slices of axis {ax}")
        cond = cond[:dim]
    return (np.compress(cond, data, axis=ax),)


@kernel("NonZero", versions=(9, 13))
def non_zero(X: np.ndarray) -> tuple[np.ndarray]:
    """The coordinates of the non-zero elements, shape [rank, count], in row-major order."""
    if X.ndim == 0:
        # a scalar counts as a one-element vector (as onnxruntime does)
        X = X.reshape(1)
    nz = X != 0 if X.dtype != object else X.astype(bool)
    return (np.array(np.nonzero(nz), dtype=np.int64).reshape(X.ndim, -1),)


# --------------------------------------------------------------------------------------------
# TopK, Unique
# --------------------------------------------------------------------------------------------


def _topk(X: np.ndarray, k: int, axis: int, largest: int) -> tuple[np.ndarray, np.ndarray]:
    ax = normalize_axis(axis, X.ndim, "TopK axis")
    n = X.shape[ax]
    if not 0 <= k <= n:
        raise ExecutionError(f"TopK k={k} is outside the allowed range [0, {n}] for axis {ax} "
                             f"of size {n}")
    keys = np.moveaxis(_sortable(X), ax, -1)
    if 0 < 4 * k < n and keys.dtype.kind in "iuf" and not (
            keys.dtype.kind == "f" and np.isnan(keys).any()):
        order = _topk_partial(keys.reshape(-1, n), k, largest).reshape(keys.shape[:-1] + (k,))
    else:
        order = _stable_order(keys, largest)[..., :k]
    order = np.moveaxis(order, -1, ax).astype(np.int64, copy=False)
    return np.take_along_axis(X, order, axis=ax), order


def _stable_order(keys: np.ndarray, largest: int) -> np.ndarray:
    """Argsort of the last axis, descending if ``largest``; equal values keep index order."""
    n = keys.shape[-1]
    if not largest:
        return np.argsort(keys, axis=-1, kind="stable")
    # a stable ascending sort of the reversed row, read backwards, is descending with the
    # lower original index first among equal values
    return (n - 1) - np.argsort(keys[..., ::-1], axis=-1, kind="stable")[..., ::-1]


def _topk_partial(rows: np.ndarray, k: int, largest: int) -> np.ndarray:
    """TopK for k much smaller than the row (no NaN): select in O(n), then sort only k.

    A partition picks k candidates: all values strictly beyond the k-th value, and some of
    the values equal to it. Where it left out an equal value of a lower index, the row is
    redone so that ties are taken lowest index first, as the spec's tie rule demands.
    """
    n = rows.shape[1]
    pos = n - k if largest else k - 1
    part = np.argpartition(rows, pos, axis=1)
    cand = part[:, n - k:] if largest else part[:, :k]
    kth = np.take_along_axis(rows, part[:, pos:pos + 1], axis=1)
    ties_all = np.count_nonzero(rows == kth, axis=1)
    ties_in = np.count_nonzero(np.take_along_axis(rows, cand, axis=1) == kth, axis=1)
    redo = np.nonzero(ties_all != ties_in)[0]
    if redo.size:
        sub, sub_kth = rows[redo], kth[redo]
        beyond = sub > sub_kth if largest else sub < sub_kth
        tie = sub == sub_kth
        need = k - beyond.sum(axis=1, keepdims=True)
        chosen = beyond | (tie & (np.cumsum(tie, axis=1, dtype=np.int32) <= need))
        # exactly k per row; np.nonzero lists them row by row in ascending index order
        cand = cand.copy()
        cand[redo] = np.nonzero(chosen)[1].reshape(-1, k)
    cand = np.sort(cand, axis=1)
    vals = np.take_along_axis(rows, cand, axis=1)
    return np.take_along_axis(cand, _stable_order(vals, largest), axis=1)


def _k_value(K: np.ndarray) -> int:
    if K.size != 1:
        raise ExecutionError(f"TopK K must hold one value, got shape {shape_str(K.shape)}")
    return int(K.reshape(-1)[0])


@kernel("TopK", versions=(1,))
def topk_1(X: np.ndarray, *, k: int, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """TopK-1: the ``k`` largest values along ``axis`` and their indices (k an attribute)."""
    return _topk(X, int(k), axis, 1)


@kernel("TopK", versions=(10,))
def topk_10(X: np.ndarray, K: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """TopK-10: the K largest values along ``axis`` and their indices."""
    return _topk(X, _k_value(K), axis, 1)


@kernel("TopK", versions=(11, 24))
def topk(X: np.ndarray, K: np.ndarray, *, axis: int = -1, largest: int = 1,
         sorted: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The K largest (or smallest) values along ``axis``, sorted, ties broken by lower index."""
    # sorted=0 leaves the order unspecified; returning it sorted is one valid order
    return _topk(X, _k_value(K), axis, largest)


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """np.unique(axis=0) for 2-D object arrays, which NumPy cannot sort along an axis."""
    keys = [tuple(r) for r in rows.tolist()]
    uniq = sorted(set(keys))
    pos = {key: i for i, key in enumerate(uniq)}
    inverse = np.array([pos[key] for key in keys], dtype=np.int64)
    first = np.full(len(uniq), len(keys), dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(len(keys)))
    counts = np.bincount(inverse, minlength=len(uniq)).astype(np.int64)
    return rows[first], first, inverse, counts


@kernel("Unique", versions=(11, 28))
def unique(X: np.ndarray, *, axis: int | None = None,
           sorted: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unique elements (or slices along ``axis``), first-occurrence indices, inverse, counts."""
    if axis is None:
        data = X.reshape(-1)
        ax = 0
    else:
        ax = normalize_axis(axis, X.ndim, "Unique axis")
        data = X
    keys = _sortable(data)
    moved = np.moveaxis(keys, ax, 0)
    rows = as_matrix(moved, 1)
    if rows.dtype == object and axis is not None:
        _, idx, inv, counts = _unique_rows(rows)
    elif axis is None:
        _, idx, inv, counts = np.unique(rows[:, 0] if rows.shape[1] else rows.reshape(-1),
                                        return_index=True, return_inverse=True,
                                        return_counts=True)
    else:
        _, idx, inv, counts = np.unique(rows, return_index=True, return_inverse=True,
                                        return_counts=True, axis=0)
    idx = idx.astype(np.int64)
    inv = inv.astype(np.int64).reshape(-1)
    counts = counts.astype(np.int64)
    if not sorted:
        # order by first occurrence instead of by value
        order = np.argsort(idx, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.shape[0])
        idx, counts, inv = idx[order], counts[order], rank[inv]
    Y = np.take(data, idx, axis=ax)
    return Y, idx, inv, counts


# --------------------------------------------------------------------------------------------
# CumSum, CumProd
# --------------------------------------------------------------------------------------------


def _cumulative(x: np.ndarray, axis: np.ndarray, exclusive: int, reverse: int,
                fn: Callable[..., np.ndarray], identity: int, op: str) -> np.ndarray:
    if axis.size != 1:
        raise ExecutionError(f"{op} axis must be a single value, got shape {shape_str(axis.shape)}")
    ax = normalize_axis(int(axis.reshape(-1)[0]), x.ndim, f"{op} axis")
    work = x
    if is_ml_dtype(x.dtype):
        work = x.astype(np.float32)  # bfloat16 has no NumPy accumulate loop
    if reverse:
        work = np.flip(work, ax)
    acc = fn(work, axis=ax, dtype=work.dtype)
    if exclusive:
        # shift by one along the axis, filling the first slot with the identity
        head = [slice(None)] * x.ndim
        head[ax] = slice(0, 1)
        body = [slice(None)] * x.ndim
        body[ax] = slice(0, -1)
        acc = np.concatenate([np.full_like(acc[tuple(head)], identity), acc[tuple(body)]], axis=ax)
    if reverse:
        acc = np.flip(acc, ax)
    return np.ascontiguousarray(acc).astype(x.dtype, copy=False)


@kernel("CumSum", versions=(11, 14))
def cumsum(x: np.ndarray, axis: np.ndarray, *, exclusive: int = 0,
           reverse: int = 0) -> tuple[np.ndarray]:
    """Running sum along ``axis``; ``exclusive`` leaves out the current element."""
    return (_cumulative(x, axis, exclusive, reverse, np.cumsum, 0, "CumSum"),)


@kernel("CumProd", versions=(26,))
def cumprod(x: np.ndarray, axis: np.ndarray, *, exclusive: int = 0,
            reverse: int = 0) -> tuple[np.ndarray]:
    """Running product along ``axis``; ``exclusive`` leaves out the current element."""
    return (_cumulative(x, axis, exclusive, reverse, np.cumprod, 1, "CumProd"),)
