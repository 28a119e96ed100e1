"""Constant tensors (initializers, attribute values) backed by NumPy, decoded lazily.

A :class:`Tensor` knows its element type and dims from the file without decoding its data; the
array is produced on first access by a loader (which may memory-map external data), so opening a
large model does not read every weight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pyonnx.errors import ValidationError
from pyonnx.ir.dtypes import DataType

__all__ = ["Tensor", "SparseTensor"]


class Tensor:
    """A named constant tensor.

    ``external`` holds the ``external_data`` entries the tensor was read from (location, offset,
    length, checksum), so tools can report where it lives; the data itself always comes from
    :meth:`numpy`.
    """

    __slots__ = ("name", "data_type", "dims", "doc_string", "metadata_props", "external",
                 "_array", "_loader")

    def __init__(
        self,
        name: str,
        data_type: DataType,
        dims: tuple[int, ...],
        array: np.ndarray | None = None,
        *,
        loader: Callable[[], np.ndarray] | None = None,
        doc_string: str = "",
        metadata_props: dict[str, str] | None = None,
        external: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.data_type = DataType(data_type)
        self.dims = tuple(int(d) for d in dims)
        self.doc_string = doc_string
        self.metadata_props = dict(metadata_props or {})
        self.external = dict(external) if external else None
        self._array = array
        self._loader = loader

    @classmethod
    def from_numpy(cls, array: Any, name: str = "") -> "Tensor":
        """Wrap a NumPy array (or anything ``np.asarray`` accepts); strings become STRING."""
        arr = np.asarray(array)
        if arr.dtype.kind in ("U", "S"):
            arr = arr.astype(object)
        return cls(name, DataType.from_numpy(arr.dtype), arr.shape, arr)

    def numpy(self) -> np.ndarray:
        """The data as an array of the element type's NumPy dtype, shaped by ``dims``."""
        if self._array is None:
            assert self._loader is not None, f"tensor {self.name!r} has neither data nor loader"
            self._array = self._loader()
            self._loader = None
        return self._array

    @property
    def is_loaded(self) -> bool:
        """Whether the data has been decoded (or was given as an array)."""
        return self._array is not None

    @property
    def size(self) -> int:
        """Number of elements (from dims, without decoding)."""
        n = 1
        for d in self.dims:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """Bytes the data takes in the file's packed layout (from dims, without decoding)."""
        if self.data_type == DataType.STRING:
            return int(sum(len(s.encode() if isinstance(s, str) else s) for s in self.numpy().flat))
        return (self.size * self.data_type.itemsize_bits + 7) // 8

    def __repr__(self) -> str:
        return f"Tensor({self.name!r}, {self.data_type.name}, dims={list(self.dims)})"


class SparseTensor:
    """A sparse tensor in COO layout: ``values`` (1-D) at ``indices`` of a dense ``dims`` tensor.

    ``indices`` is either [NNZ, rank] coordinates or [NNZ] linear positions, as the spec allows.
    """

    __slots__ = ("values", "indices", "dims")

    def __init__(self, values: Tensor, indices: Tensor, dims: tuple[int, ...]) -> None:
        self.values = values
        self.indices = indices
        self.dims = tuple(int(d) for d in dims)

    @property
    def name(self) -> str:
        return self.values.name

    def to_dense(self) -> np.ndarray:
        """The dense array (zeros where no value is given)."""
        vals = self.values.numpy().reshape(-1)
        idx = self.indices.numpy().astype(np.int64)
        dense = np.zeros(self.dims, dtype=vals.dtype if vals.dtype != object else object)
        if dense.dtype == object:
            dense[...] = ""
        size = dense.size
        outside = ValidationError(f"sparse tensor {self.name!r}: an index lies outside its dims "
                                  f"{list(self.dims)}")
        if idx.ndim == 1:
            flat = idx
        elif idx.size and (idx.min() < 0 or (idx >= np.array(self.dims, np.int64)).any()):
            raise outside
        else:
            flat = np.ravel_multi_index(tuple(idx.T), self.dims) if idx.size else idx.reshape(-1)
        flat = np.asarray(flat, dtype=np.int64)
        if flat.size and (flat.min() < 0 or flat.max() >= size):
            raise outside
        dense.reshape(-1)[flat] = vals
        return dense

    def __repr__(self) -> str:
        return f"SparseTensor({self.name!r}, nnz={self.values.size}, dims={list(self.dims)})"
