"""Type strings as the ONNX schemas spell them: ``tensor(float)``, ``seq(tensor(int64))``,
``optional(...)``, ``sparse_tensor(...)``, ``map(string,float)``.

One canonical spelling (no spaces; a map of tensors written with the bare element type, as the
schemas write it) serves declarations, the checker's comparisons and run-time type checks: two
types are the same exactly when their canonical strings are equal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyonnx.ir import (
    DataType,
    MapType,
    OptionalType,
    SequenceType,
    SparseTensorType,
    TensorType,
    Type,
)

__all__ = ["parse_type_string", "type_string_of", "value_type_string"]

def parse_type_string(text: str) -> tuple[str, Type]:
    """Parse a type string (``tensor(float)``, ``seq(tensor(int64))``, ``optional(...)``,
    ``sparse_tensor(...)``, ``map(string, tensor(float))``) into its canonical spelling and the
    IR type it means. The canonical spelling is the checker's: no spaces, and a map of tensors
    written ``map(string,float)`` as the ONNX schemas write it. Raises ``ValueError``."""
    s = text.replace(" ", "")
    canonical, t, end = _parse(s, 0)
    if end != len(s):
        raise ValueError(f"unexpected {s[end:]!r} after {s[:end]!r}")
    return canonical, t


def _parse(s: str, i: int) -> tuple[str, Type, int]:
    j = s.find("(", i)
    if j < 0:
        raise ValueError(f"expected a type such as tensor(float) at {s[i:]!r}")
    head = s[i:j]
    if head in ("tensor", "sparse_tensor"):
        k = s.find(")", j)
        if k < 0:
            raise ValueError(f"missing ')' in {s[i:]!r}")
        elem = _elem(s[j + 1:k])
        t: Type = TensorType(elem) if head == "tensor" else SparseTensorType(elem)
        return f"{head}({elem.onnx_name})", t, k + 1
    if head in ("seq", "optional"):
        inner_s, inner_t, k = _parse(s, j + 1)
        if k >= len(s) or s[k] != ")":
            raise ValueError(f"missing ')' after {s[i:k]!r}")
        t = SequenceType(inner_t) if head == "seq" else OptionalType(inner_t)
        return f"{head}({inner_s})", t, k + 1
    if head == "map":
        comma = s.find(",", j)
        if comma < 0:
            raise ValueError(f"map needs a key and a value type: {s[i:]!r}")
        key = _elem(s[j + 1:comma])
        if key not in (DataType.STRING, DataType.INT64, DataType.INT32, DataType.INT16,
                       DataType.INT8, DataType.UINT64, DataType.UINT32, DataType.UINT16,
                       DataType.UINT8):
            raise ValueError(f"a map key must be an integer type or string, not {key.onnx_name}")
        if s.startswith(("tensor(", "seq(", "map(", "optional(", "sparse_tensor("), comma + 1):
            value_s, value_t, k = _parse(s, comma + 1)
        else:  # the schemas' short form map(int64,float)
            k = s.find(")", comma)
            if k < 0:
                raise ValueError(f"missing ')' in {s[i:]!r}")
            value_t = TensorType(_elem(s[comma + 1:k]))
            value_s = f"tensor({value_t.elem_type.onnx_name})"
        if k >= len(s) or s[k] != ")":
            raise ValueError(f"missing ')' after {s[i:k]!r}")
        short = (value_t.elem_type.onnx_name if isinstance(value_t, TensorType) else value_s)
        return f"map({key.onnx_name},{short})", MapType(key, value_t), k + 1
    raise ValueError(f"unknown type constructor {head!r} (use tensor, sparse_tensor, seq, "
                     f"optional or map)")


def _elem(name: str) -> DataType:
    try:
        dt = DataType.from_onnx_name(name)
    except ValueError:
        raise ValueError(f"unknown element type {name!r}") from None
    if dt == DataType.UNDEFINED:
        raise ValueError("the element type 'undefined' names no type")
    return dt


def type_string_of(t: Type | None) -> str | None:
    """The canonical type string of an IR type (see :func:`parse_type_string`); None when its
    element type is unknown."""
    if isinstance(t, (TensorType, SparseTensorType)):
        if t.elem_type == DataType.UNDEFINED:
            return None
        kind = "tensor" if isinstance(t, TensorType) else "sparse_tensor"
        return f"{kind}({t.elem_type.onnx_name})"
    if isinstance(t, (SequenceType, OptionalType)):
        inner = type_string_of(t.elem_type)
        kind = "seq" if isinstance(t, SequenceType) else "optional"
        return None if inner is None else f"{kind}({inner})"
    if isinstance(t, MapType):
        v = t.value_type
        if isinstance(v, TensorType) and v.elem_type != DataType.UNDEFINED:
            inner = v.elem_type.onnx_name
        else:
            inner = type_string_of(v)
        return None if inner is None else f"map({t.key_type.onnx_name},{inner})"
    return None


def value_type_string(value: Any) -> str | None:
    """The canonical type string of a run-time value (an array, a list of arrays); None when
    it cannot be told (an empty list, a dict, something else)."""
    if isinstance(value, np.ndarray):
        try:
            return f"tensor({DataType.from_numpy(value.dtype).onnx_name})"
        except ValueError:
            return f"numpy {value.dtype}"  # matches no declaration: reported as it is
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        inner = value_type_string(value[0])
        return None if inner is None else f"seq({inner})"
    return None
