"""Rules on constant tensors: initializers, sparse initializers and tensor-valued attributes.

A tensor (V, S) of the IR specification has as many values as the product of its dims, all of
its element type. External data was validated when the model was loaded (location, size), so the
checker does not read it again; in-memory data is decoded and compared with the dims.
A sparse tensor's indices must be int64, lie inside the dense dims and appear in ascending order
without duplicates (lexicographic order for [NNZ, rank] coordinates), as ``onnx.proto`` states.
"""

from __future__ import annotations

import math

import numpy as np

from pyonnx.checker._context import CheckContext
from pyonnx.ir import DataType, SparseTensor, Tensor

__all__ = ["check_tensor", "check_sparse_tensor"]


def check_tensor(ctx: CheckContext, t: Tensor, location: str, what: str) -> None:
    """Element type known, dims non-negative, data count and dtype agreeing with the dims."""
    if t.data_type == DataType.UNDEFINED:
        ctx.report("tensor", location, f"{what} has data_type UNDEFINED; set its element type")
        return
    if any(d < 0 for d in t.dims):
        ctx.report("tensor", location, f"{what} has a negative dimension in dims {list(t.dims)}")
        return
    if t.external is not None and not t.is_loaded:
        return  # validated against the file when the model was loaded
    try:
        arr = np.asarray(t.numpy())
    except Exception as e:  # a loader that fails is itself the finding
        ctx.report("tensor", location, f"{what}: its data cannot be decoded ({e})")
        return
    expected = math.prod(t.dims)
    if arr.size != expected:
        ctx.report("tensor", location,
                   f"{what} has {arr.size} values but dims {list(t.dims)} require {expected}")
        return
    if t.data_type == DataType.STRING:
        bad = [x for x in arr.reshape(-1) if not isinstance(x, (str, bytes))]
        if bad:
            ctx.report("tensor", location,
                       f"{what} is a STRING tensor but holds {type(bad[0]).__name__} values")
        return
    try:
        want = t.data_type.numpy
    except ValueError:
        return
    if arr.dtype != want:
        ctx.report("tensor", location,
                   f"{what} is declared {t.data_type.name} but its data is {arr.dtype}")


def check_sparse_tensor(ctx: CheckContext, st: SparseTensor, location: str, what: str) -> None:
    """Values and indices well formed; indices int64, in range, ascending, no duplicates."""
    check_tensor(ctx, st.values, location, f"{what} values")
    check_tensor(ctx, st.indices, location, f"{what} indices")
    dims = st.dims
    if any(d < 0 for d in dims):
        ctx.report("sparse-tensor", location, f"{what} has a negative dimension in {list(dims)}")
        return
    if len(st.values.dims) != 1:
        ctx.report("sparse-tensor", location,
                   f"{what}: values must be 1-D, got dims {list(st.values.dims)}")
        return
    nnz = st.values.dims[0]
    if st.indices.data_type != DataType.INT64:
        ctx.report("sparse-tensor", location,
                   f"{what}: indices must be int64, got {st.indices.data_type.name}")
        return
    rank = len(dims)
    if st.indices.dims not in ((nnz,), (nnz, rank)):
        ctx.report("sparse-tensor", location,
                   f"{what}: indices dims {list(st.indices.dims)} must be [{nnz}] or "
                   f"[{nnz}, {rank}]")
        return
    try:
        idx = np.asarray(st.indices.numpy(), dtype=np.int64)
    except Exception as e:
        ctx.report("sparse-tensor", location, f"{what}: indices cannot be decoded ({e})")
        return
    if nnz == 0:
        return
    size = math.prod(dims)
    if idx.ndim == 1:
        bad = np.nonzero((idx < 0) | (idx >= size))[0]
        if bad.size:
            i = int(bad[0])
            ctx.report("sparse-tensor", location,
                       f"{what}: linear index {int(idx[i])} (entry {i}) is outside [0, {size}) "
                       f"for dims {list(dims)}")
            return
        linear = idx
    else:
        upper = np.asarray(dims, dtype=np.int64)
        bad = np.nonzero(((idx < 0) | (idx >= upper)).any(axis=1))[0]
        if bad.size:
            i = int(bad[0])
            ctx.report("sparse-tensor", location,
                       f"{what}: index {idx[i].tolist()} (entry {i}) is outside dims {list(dims)}")
            return
        # ascending linear positions <=> lexicographic order of the coordinates
        linear = np.ravel_multi_index(tuple(idx.T), dims) if rank else np.zeros(nnz, np.int64)
    steps = np.diff(linear)
    bad = np.nonzero(steps <= 0)[0]
    if bad.size:
        i = int(bad[0]) + 1
        kind = "duplicates" if steps[i - 1] == 0 else "comes after a larger index"
        ctx.report("sparse-tensor", location,
                   f"{what}: index entry {i} {kind}; indices must be in ascending order "
                   f"without duplicates")
