"""Value types: tensors with (symbolic) shapes, sequences, maps, optionals, sparse tensors.

A dimension (``Dim``) is an ``int`` (known), a ``str`` (a named symbol such as ``"batch"``) or
``None`` (unknown). A shape is a tuple of dims; a tensor type whose shape is ``None`` has unknown
rank. ``str(type)`` gives onnxruntime's spelling (``tensor(float)``, ``seq(tensor(int64))``,
``map(string,tensor(float))``, ``optional(tensor(float))``).
"""

from __future__ import annotations

import dataclasses
from typing import Union

from pyonnx.ir.dtypes import DataType

__all__ = [
    "Dim",
    "Shape",
    "TensorType",
    "SparseTensorType",
    "SequenceType",
    "MapType",
    "OptionalType",
    "OpaqueType",
    "Type",
]

Dim = Union[int, str, None]
Shape = tuple[Dim, ...]


@dataclasses.dataclass(frozen=True)
class TensorType:
    """A dense tensor of ``elem_type``; ``shape`` is None when even the rank is unknown."""

    elem_type: DataType
    shape: Shape | None = None
    denotations: tuple[str, ...] | None = None

    def __str__(self) -> str:
        return f"tensor({self.elem_type.onnx_name})"


@dataclasses.dataclass(frozen=True)
class SparseTensorType:
    """A sparse tensor (COO values + indices) of ``elem_type``."""

    elem_type: DataType
    shape: Shape | None = None

    def __str__(self) -> str:
        return f"sparse_tensor({self.elem_type.onnx_name})"


@dataclasses.dataclass(frozen=True)
class SequenceType:
    """An ordered list of values of one type."""

    elem_type: "Type | None"

    def __str__(self) -> str:
        return f"seq({self.elem_type})"


@dataclasses.dataclass(frozen=True)
class MapType:
    """A map from an integer or string key type to values of one type (ai.onnx.ml)."""

    key_type: DataType
    value_type: "Type | None"

    def __str__(self) -> str:
        return f"map({self.key_type.onnx_name},{self.value_type})"


@dataclasses.dataclass(frozen=True)
class OptionalType:
    """A value that may be absent (``None`` at run time)."""

    elem_type: "Type | None"

    def __str__(self) -> str:
        return f"optional({self.elem_type})"


@dataclasses.dataclass(frozen=True)
class OpaqueType:
    """A type defined outside the ONNX specification (``TypeProto.Opaque``), named by
    ``domain`` and ``name``; pyonnx carries it through load, save, text and checks but no
    standard operator consumes it."""

    domain: str = ""
    name: str = ""

    def __str__(self) -> str:
        return f"opaque({self.domain + ',' if self.domain else ''}{self.name})"


Type = Union[TensorType, SparseTensorType, SequenceType, MapType, OptionalType, OpaqueType]
