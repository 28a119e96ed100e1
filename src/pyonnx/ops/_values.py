"""How kernels receive constants: attribute values and initializers decoded to NumPy.

The runtime, constant folding and shape inference's data propagation all call kernels; they all
decode a node's attributes the same way through :func:`attribute_value`. Decoding is bounded:
a sparse tensor's few stored values can describe terabytes of zeros, so its dense size is
checked against ``limit`` before allocating, and a MemoryError becomes ResourceLimitExceeded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyonnx.errors import ResourceLimitExceeded, ValidationError
from pyonnx.ir import Attribute, AttributeType, SparseTensor, Tensor, Value

__all__ = ["attribute_value", "constant_array", "tensor_array", "dense_array", "NO_LIMIT"]

NO_LIMIT = 1 << 62


def tensor_array(t: Tensor, what: str) -> np.ndarray:
    """A constant's data; a decoder that runs out of memory is a limit, not a crash."""
    try:
        return t.numpy()
    except MemoryError as e:
        raise ResourceLimitExceeded(f"{what} ({t.data_type.name}{list(t.dims)}) does not fit "
                                    f"in memory") from e


def dense_array(st: SparseTensor, limit: int, what: str) -> np.ndarray:
    """A sparse constant densified, its size checked before allocating."""
    n = 1
    for d in st.dims:
        n *= int(d)
    nbytes = n * max(st.values.data_type.numpy.itemsize, 1)
    if nbytes > limit:
        raise ResourceLimitExceeded(
            f"{what} has dims {list(st.dims)}: densified it would take {nbytes} bytes, above the "
            f"limit of {limit} bytes (SessionOptions max_tensor_bytes)")
    try:
        return st.to_dense()
    except MemoryError as e:
        raise ResourceLimitExceeded(f"{what} has dims {list(st.dims)} ({nbytes} bytes dense), "
                                    f"which does not fit in memory") from e
    except (ValidationError, ValueError, IndexError) as e:  # an index outside dims
        raise ValidationError(f"{what} cannot be densified: {e}") from e


def constant_array(v: Value, limit: int) -> np.ndarray | None:
    """The data of an initializer (dense or sparse), or None when ``v`` holds none."""
    c = v.const_value
    if isinstance(c, Tensor):
        return tensor_array(c, f"initializer {v.name!r}")
    if isinstance(c, SparseTensor):
        return dense_array(c, limit, f"sparse initializer {v.name!r}")
    return None


def attribute_value(a: Attribute, limit: int = NO_LIMIT, where: str = "") -> Any:
    """An attribute as a kernel receives it: tensors as arrays, sparse tensors densified, every
    other type as stored (numbers, str, lists, Graph, types)."""
    T, v = AttributeType, a.value
    what = f"attribute {a.name!r} of {where}" if where else f"attribute {a.name!r}"
    if a.type == T.TENSOR:
        return tensor_array(v, what)
    if a.type == T.TENSORS:
        return [tensor_array(t, what) for t in v]
    if a.type == T.SPARSE_TENSOR:
        return dense_array(v, limit, what)
    if a.type == T.SPARSE_TENSORS:
        return [dense_array(t, limit, what) for t in v]
    return v
