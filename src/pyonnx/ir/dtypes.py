"""ONNX element types (``TensorProto.DataType``) and their NumPy equivalents.

NumPy has no native bfloat16, float8, int4/int2 or float4/float6 types; ``ml_dtypes`` provides them
as real NumPy dtypes, so every ONNX element type maps to exactly one NumPy dtype and back.
Strings are NumPy object arrays of ``str``.
"""

from __future__ import annotations

import enum

import ml_dtypes
import numpy as np

__all__ = ["DataType"]


class DataType(enum.IntEnum):
    """An ONNX tensor element type; the values are the wire format's ``data_type`` codes."""

    UNDEFINED = 0
    FLOAT = 1
    UINT8 = 2
    INT8 = 3
    UINT16 = 4
    INT16 = 5
    INT32 = 6
    INT64 = 7
    STRING = 8
    BOOL = 9
    FLOAT16 = 10
    DOUBLE = 11
    UINT32 = 12
    UINT64 = 13
    COMPLEX64 = 14
    COMPLEX128 = 15
    BFLOAT16 = 16
    FLOAT8E4M3FN = 17
    FLOAT8E4M3FNUZ = 18
    FLOAT8E5M2 = 19
    FLOAT8E5M2FNUZ = 20
    UINT4 = 21
    INT4 = 22
    FLOAT4E2M1 = 23
    FLOAT8E8M0 = 24
    UINT2 = 25
    INT2 = 26
    FLOAT6E2M3 = 27
    FLOAT6E3M2 = 28

    @property
    def numpy(self) -> np.dtype:
        """The NumPy dtype that holds this element type (object for STRING)."""
        try:
            return _TO_NUMPY[self]
        except KeyError:
            raise ValueError(f"element type {self.name} has no NumPy equivalent") from None

    @property
    def itemsize_bits(self) -> int:
        """Bits one element takes in ``raw_data`` (4 for int4/uint4/float4, 6 for float6, 2 for int2)."""
        return _PACKED_BITS.get(self, 8 * self.numpy.itemsize if self != DataType.STRING else 0)

    @property
    def onnx_name(self) -> str:
        """The spelling used in type strings: ``tensor(float)``, ``tensor(float8e4m3fn)``."""
        return _TYPE_STR[self]

    @classmethod
    def from_numpy(cls, dtype: np.dtype | type) -> "DataType":
        """The element type of a NumPy dtype; raises ValueError for one ONNX lacks."""
        dt = np.dtype(dtype)
        try:
            return _FROM_NUMPY[dt]
        except KeyError:
            if dt.kind in ("U", "S", "O"):
                return cls.STRING
            raise ValueError(f"NumPy dtype {dt} has no ONNX element type") from None

    @classmethod
    def from_onnx_name(cls, name: str) -> "DataType":
        """Parse ``float`` / ``int64`` / ``bfloat16`` … as written in ``tensor(...)``."""
        try:
            return _FROM_TYPE_STR[name]
        except KeyError:
            raise ValueError(f"unknown element type name {name!r}") from None


_TO_NUMPY: dict[DataType, np.dtype] = {
    DataType.FLOAT: np.dtype(np.float32),
    DataType.UINT8: np.dtype(np.uint8),
    DataType.INT8: np.dtype(np.int8),
    DataType.UINT16: np.dtype(np.uint16),
    DataType.INT16: np.dtype(np.int16),
    DataType.INT32: np.dtype(np.int32),
    DataType.INT64: np.dtype(np.int64),
    DataType.STRING: np.dtype(object),
    DataType.BOOL: np.dtype(np.bool_),
    DataType.FLOAT16: np.dtype(np.float16),
    DataType.DOUBLE: np.dtype(np.float64),
    DataType.UINT32: np.dtype(np.uint32),
    DataType.UINT64: np.dtype(np.uint64),
    DataType.COMPLEX64: np.dtype(np.complex64),
    DataType.COMPLEX128: np.dtype(np.complex128),
    DataType.BFLOAT16: np.dtype(ml_dtypes.bfloat16),
    DataType.FLOAT8E4M3FN: np.dtype(ml_dtypes.float8_e4m3fn),
    DataType.FLOAT8E4M3FNUZ: np.dtype(ml_dtypes.float8_e4m3fnuz),
    DataType.FLOAT8E5M2: np.dtype(ml_dtypes.float8_e5m2),
    DataType.FLOAT8E5M2FNUZ: np.dtype(ml_dtypes.float8_e5m2fnuz),
    DataType.UINT4: np.dtype(ml_dtypes.uint4),
    DataType.INT4: np.dtype(ml_dtypes.int4),
    DataType.FLOAT4E2M1: np.dtype(ml_dtypes.float4_e2m1fn),
    DataType.FLOAT8E8M0: np.dtype(ml_dtypes.float8_e8m0fnu),
    DataType.UINT2: np.dtype(ml_dtypes.uint2),
    DataType.INT2: np.dtype(ml_dtypes.int2),
    DataType.FLOAT6E2M3: np.dtype(ml_dtypes.float6_e2m3fn),
    DataType.FLOAT6E3M2: np.dtype(ml_dtypes.float6_e3m2fn),
}
_FROM_NUMPY: dict[np.dtype, DataType] = {v: k for k, v in _TO_NUMPY.items()}

_PACKED_BITS: dict[DataType, int] = {
    DataType.UINT4: 4,
    DataType.INT4: 4,
    DataType.FLOAT4E2M1: 4,
    DataType.UINT2: 2,
    DataType.INT2: 2,
    # float6 values are a packed 6-bit stream in raw_data (one per int32_data entry otherwise)
    DataType.FLOAT6E2M3: 6,
    DataType.FLOAT6E3M2: 6,
}

_TYPE_STR: dict[DataType, str] = {
    dt: dt.name.lower() for dt in DataType if dt != DataType.UNDEFINED
}
_TYPE_STR[DataType.UNDEFINED] = "undefined"
_FROM_TYPE_STR: dict[str, DataType] = {v: k for k, v in _TYPE_STR.items()}
