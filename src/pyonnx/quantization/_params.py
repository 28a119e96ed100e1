"""Scales and zero points from value ranges, and the quantization of weight arrays.

All of it follows the ONNX definition ``q = saturate(round_half_even(x / scale) + zero_point)``,
with ``x / scale`` computed in float32 as QuantizeLinear does, so a weight quantized here equals
QuantizeLinear's result for the same scale and zero point.
"""

from __future__ import annotations

import numpy as np

from pyonnx.quantization._types import QuantType, data_type_of, qrange

__all__ = ["scale_zero_point", "quantize_array", "QParams", "weight_params"]


class QParams:
    """The quantization parameters of one tensor: ``scale`` (float32 array: scalar, one per
    channel along ``axis``, or one per block) and ``zero_point`` (same shape, the quantized
    type's NumPy dtype)."""

    __slots__ = ("scale", "zero_point", "qtype", "axis", "block_size")

    def __init__(self, scale: np.ndarray, zero_point: np.ndarray, qtype: QuantType,
                 axis: int | None = None, block_size: int | None = None) -> None:
        self.scale = np.asarray(scale, dtype=np.float32)
        self.zero_point = np.asarray(zero_point).astype(data_type_of(qtype).numpy)
        self.qtype = qtype
        self.axis = axis
        self.block_size = block_size


def scale_zero_point(rmin: np.ndarray | float, rmax: np.ndarray | float, qtype: QuantType, *,
                     symmetric: bool, reduce_range: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point mapping [rmin, rmax] (widened to hold 0, which must stay exact:
    zero padding and ReLU outputs) onto the type's range; elementwise for array ranges."""
    rmin = np.minimum(np.asarray(rmin, dtype=np.float64), 0.0)
    rmax = np.maximum(np.asarray(rmax, dtype=np.float64), 0.0)
    qmin, qmax = qrange(qtype, reduce_range=reduce_range, symmetric=symmetric)
    if qtype == QuantType.QFLOAT8E4M3FN:
        # float8 has no zero point: the largest magnitude maps to the type's largest value.
        absmax = np.maximum(-rmin, rmax)
        scale = np.where(absmax > 0, absmax / qmax, 1.0).astype(np.float32)
        return scale, np.zeros(scale.shape, np.float32)
    if symmetric:
        absmax = np.maximum(-rmin, rmax)
        rmin, rmax = -absmax, absmax
    scale = (rmax - rmin) / (qmax - qmin)
    # a range of width 0 (an all-zero tensor): any scale is exact; 1 keeps the division finite
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    if symmetric:
        zp = np.full(scale.shape, np.rint((qmin + qmax) / 2.0 + 0.25) if qmin == 0 else 0.0)
    else:
        zp = np.clip(np.rint(qmin - rmin / scale.astype(np.float64)), qmin, qmax)
    return scale, zp


def quantize_array(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, qtype: QuantType,
                   axis: int | None = None, block_size: int | None = None) -> np.ndarray:
    """x quantized with the given parameters (per tensor, per ``axis``, or blocked along
    ``axis`` in blocks of ``block_size``), as QuantizeLinear computes it."""
    x = np.asarray(x, dtype=np.float32)
    s = np.asarray(scale, dtype=np.float32)
    z = np.asarray(zero_point).astype(np.float32)
    if axis is not None and s.ndim > 0:
        ax = axis % x.ndim
        if block_size:
            s = np.repeat(s, block_size, axis=ax)
            z = np.repeat(z, block_size, axis=ax)
            sl = [slice(None)] * x.ndim
            sl[ax] = slice(0, x.shape[ax])
            s, z = s[tuple(sl)], z[tuple(sl)]
        else:
            shape = [1] * x.ndim
            shape[ax] = -1
            s, z = s.reshape(shape), z.reshape(shape)
    dt = data_type_of(qtype).numpy
    if qtype == QuantType.QFLOAT8E4M3FN:
        lo, hi = qrange(qtype)
        return np.clip(x / s, lo, hi).astype(dt)
    q = np.rint(x / s) + z
    lo, hi = qrange(qtype)
    return np.clip(q, lo, hi).astype(dt)


def weight_params(w: np.ndarray, qtype: QuantType, *, symmetric: bool, reduce_range: bool,
                  axis: int | None = None) -> QParams:
    """Parameters for a weight: from its overall range, or per slice along ``axis``."""
    w = np.asarray(w, dtype=np.float32)
    if axis is None or w.ndim == 0:
        lo, hi = (float(w.min()), float(w.max())) if w.size else (0.0, 0.0)
        s, z = scale_zero_point(lo, hi, qtype, symmetric=symmetric, reduce_range=reduce_range)
        return QParams(s.reshape(()), np.asarray(z).reshape(()), qtype)
    ax = axis % w.ndim
    other = tuple(i for i in range(w.ndim) if i != ax)
    lo, hi = w.min(axis=other), w.max(axis=other)
    s, z = scale_zero_point(lo, hi, qtype, symmetric=symmetric, reduce_range=reduce_range)
    return QParams(s, z, qtype, axis=ax)
