"""The enumerations of onnxruntime.quantization: what to quantize to, in which form, and how
to calibrate."""

from __future__ import annotations

import enum

import ml_dtypes
import numpy as np

from pyonnx.errors import InvalidArgument
from pyonnx.ir import DataType

__all__ = ["QuantType", "QuantFormat", "QuantizationMode", "CalibrationMethod", "qrange",
           "data_type_of"]


class QuantType(enum.Enum):
    """A quantized element type (onnxruntime's numbering)."""

    QInt8 = 0
    QUInt8 = 1
    QFLOAT8E4M3FN = 2
    QInt16 = 3
    QUInt16 = 4
    QInt4 = 5
    QUInt4 = 6

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def from_string(t: str) -> "QuantType":
        try:
            return QuantType[t]
        except KeyError:
            raise InvalidArgument(f"unknown QuantType {t!r}; one of "
                                  f"{', '.join(q.name for q in QuantType)}") from None

    @property
    def tensor_type(self) -> int:
        """The ONNX element type code (TensorProto.DataType) of this quantized type."""
        return int(data_type_of(self))


class QuantFormat(enum.Enum):
    """How a quantized model is written: QOperator (QLinearConv, MatMulInteger…) or QDQ
    (QuantizeLinear/DequantizeLinear pairs around the float operators)."""

    QOperator = 0
    QDQ = 1

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def from_string(f: str) -> "QuantFormat":
        try:
            return QuantFormat[f]
        except KeyError:
            raise InvalidArgument(f"unknown QuantFormat {f!r}; QOperator or QDQ") from None


class QuantizationMode(enum.Enum):
    """Integer operators (dynamic quantization) or QLinear operators (static)."""

    IntegerOps = 0
    QLinearOps = 1

    def __str__(self) -> str:
        return self.name


class CalibrationMethod(enum.Enum):
    """How activation ranges are chosen from calibration data: the observed min/max, the
    range minimizing the KL divergence of the quantized histogram (Entropy), a percentile of
    the absolute values, or the histogram's distribution (mean and spread, kept for float8)."""

    MinMax = 0
    Entropy = 1
    Percentile = 2
    Distribution = 3


_DATA_TYPES = {
    QuantType.QInt8: DataType.INT8, QuantType.QUInt8: DataType.UINT8,
    QuantType.QInt16: DataType.INT16, QuantType.QUInt16: DataType.UINT16,
    QuantType.QInt4: DataType.INT4, QuantType.QUInt4: DataType.UINT4,
    QuantType.QFLOAT8E4M3FN: DataType.FLOAT8E4M3FN,
}


def data_type_of(qtype: QuantType) -> DataType:
    """The IR element type of a quantized type."""
    if not isinstance(qtype, QuantType):
        raise InvalidArgument(f"expected a QuantType, got {qtype!r}")
    return _DATA_TYPES[qtype]


def qrange(qtype: QuantType, *, reduce_range: bool = False, symmetric: bool = False
           ) -> tuple[float, float]:
    """The integer range values are quantized into.

    ``symmetric`` drops the lowest value of a signed type so that the range is centred on 0
    (int8: -127..127), which keeps a symmetric scale exact for both signs. ``reduce_range``
    uses one bit less (7-bit values for 8-bit types), for CPUs whose int8 dot products
    overflow 16-bit intermediate sums.
    """
    if qtype == QuantType.QFLOAT8E4M3FN:
        m = float(ml_dtypes.finfo(ml_dtypes.float8_e4m3fn).max)
        return -m, m
    dt = data_type_of(qtype).numpy
    if qtype in (QuantType.QInt4, QuantType.QUInt4):
        lo, hi = (-8, 7) if qtype == QuantType.QInt4 else (0, 15)
    else:
        info = np.iinfo(dt)
        lo, hi = int(info.min), int(info.max)
    if reduce_range and qtype in (QuantType.QInt8, QuantType.QUInt8):
        lo, hi = (-64, 64) if qtype == QuantType.QInt8 else (0, 127)
    elif symmetric and lo < 0:
        lo = -hi
    return float(lo), float(hi)
