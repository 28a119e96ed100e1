"""Linear quantization kernels: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
QLinearMatMul and QLinearConv.

Rounding is half to even everywhere (``np.rint``) and integer results saturate to the target
type's range, as the spec says. Integer products are computed exactly (float64 holds every
product sum of 8-bit values exactly), so the only rounding is the final requantization.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ir.dtypes import DataType
from pyonnx.ops._common import check_alloc
from pyonnx.ops._quantization import (
    FLOAT_QUANT_TYPES,
    HALF_TYPES,
    INT_RANGES,
    conv_int_exact,
    conv_pads,
    expand_param,
    requantize,
)
from pyonnx.ops.registry import KernelContext, kernel

_F32 = np.dtype(np.float32)
_E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu)


def _dtype_of(code: int, what: str) -> np.dtype:
    try:
        return DataType(int(code)).numpy
    except ValueError:
        raise ExecutionError(f"{what} {code} is not an ONNX element type") from None


def _x_zero_point(x_zero_point: np.ndarray, x: np.ndarray, x_scale: np.ndarray, axis: int,
                  block_size: int) -> np.ndarray:
    """DequantizeLinear's zero point, checked against x and x_scale, expanded to x's shape."""
    zp = np.asarray(x_zero_point)
    if zp.dtype != x.dtype:
        raise ExecutionError(f"x_zero_point is {zp.dtype} but x is {x.dtype}; they must be the "
                             f"same type")
    _check_zero_point(zp, x_scale, "x")
    return expand_param(zp, x.shape, axis, block_size, "x_zero_point")


def _check_zero_point(zero_point: np.ndarray, scale: np.ndarray, what: str) -> None:
    zp, sc = np.asarray(zero_point), np.asarray(scale)
    if zp.shape != sc.shape and not (zp.size == 1 and sc.size == 1):
        raise ExecutionError(f"{what} zero point has shape {zp.shape} but its scale has shape "
                             f"{sc.shape}; they must match")


@kernel("QuantizeLinear", versions=(10, 13, 19, 21, 23, 24, 25, 28))
def quantize_linear(x: np.ndarray, y_scale: np.ndarray, y_zero_point: np.ndarray | None = None,
                    *, axis: int = 1, saturate: int = 1, block_size: int = 0,
                    output_dtype: int = 0, precision: int = 0) -> tuple[np.ndarray]:
    """y = saturate(round_half_even(x / y_scale) + y_zero_point), per tensor, axis or block."""
    x = np.asarray(x)
    y_scale = np.asarray(y_scale)
    if output_dtype:
        out_dt = _dtype_of(output_dtype, "output_dtype")
        if y_zero_point is not None and np.asarray(y_zero_point).dtype != out_dt:
            raise ExecutionError(
                f"output_dtype is {DataType.from_numpy(out_dt).onnx_name} but y_zero_point is "
                f"{np.asarray(y_zero_point).dtype}; they must be the same type")
    elif y_zero_point is not None:
        out_dt = np.asarray(y_zero_point).dtype
    else:
        out_dt = np.dtype(np.uint8)
    if out_dt not in INT_RANGES and out_dt not in FLOAT_QUANT_TYPES:
        raise ExecutionError(f"QuantizeLinear cannot produce {out_dt}")

    # The division runs in the precision of the scale unless `precision` says otherwise.
    if precision:
        div_dt = _dtype_of(precision, "precision")
    elif y_scale.dtype.kind == "f" or y_scale.dtype in HALF_TYPES:
        div_dt = y_scale.dtype
    else:  # int32 or float8e8m0 scales: powers of two / integers are exact in float32
        div_dt = _F32
    if div_dt == _E8M0:
        div_dt = _F32
    calc_dt = np.dtype(np.float64) if div_dt == np.float64 else _F32

    scale = expand_param(y_scale, x.shape, axis, block_size, "y_scale")
    xin = x if x.dtype in (np.float32, np.float64, np.int32) else x.astype(calc_dt)
    # a new buffer, owned here (an array even for a 0-d x, so that out= below takes it)
    q = np.asarray(np.divide(xin, scale.astype(calc_dt), dtype=calc_dt))
    if div_dt in HALF_TYPES:  # emulate a division done in half precision
        q = q.astype(div_dt).astype(calc_dt)
    is_int = out_dt in INT_RANGES
    if is_int:
        np.rint(q, out=q)
    if y_zero_point is not None:
        _check_zero_point(y_zero_point, y_scale, "y")
        zp = expand_param(np.asarray(y_zero_point), x.shape, axis, block_size, "y_zero_point")
        if zp.ndim == 0 and is_int and not zp.any():
            pass  # a zero zero point: skip a full pass
        else:
            q += zp.astype(calc_dt)
    return (requantize(q, out_dt, bool(saturate), rounded=is_int, inplace=True),)


@kernel("DequantizeLinear", versions=(10, 13, 19, 21, 23, 24, 25, 28))
def dequantize_linear(x: np.ndarray, x_scale: np.ndarray, x_zero_point: np.ndarray | None = None,
                      *, axis: int = 1, block_size: int = 0, output_dtype: int = 0
                      ) -> tuple[np.ndarray]:
    """y = (x - x_zero_point) * x_scale, in the precision of the output type."""
    x = np.asarray(x)
    x_scale = np.asarray(x_scale)
    if output_dtype:
        out_dt = _dtype_of(output_dtype, "output_dtype")
    elif x_scale.dtype == _E8M0:
        raise ExecutionError("x_scale is float8e8m0, which cannot be an output type: set the "
                             "output_dtype attribute")
    else:
        out_dt = x_scale.dtype
    if out_dt.kind != "f" and out_dt not in HALF_TYPES:
        raise ExecutionError(f"DequantizeLinear cannot produce {out_dt}")
    scale = expand_param(x_scale, x.shape, axis, block_size, "x_scale")

    if x.dtype in INT_RANGES and out_dt in (np.float32, np.float64):
        # Up to 16-bit values and their differences are exact in float32: one pass to float,
        # the zero point and the scale applied in place.
        y = x.astype(out_dt)
        if x_zero_point is not None:
            zp = _x_zero_point(x_zero_point, x, x_scale, axis, block_size)
            if zp.ndim or zp.any():
                y -= zp.astype(out_dt)
        y *= scale.astype(out_dt)
        return (y,)
    if x.dtype.kind in "iu" or x.dtype in INT_RANGES:
        wide = np.int64 if x.dtype == np.int32 else np.int32
        d = x.astype(wide)
        if x_zero_point is not None:
            d = d - _x_zero_point(x_zero_point, x, x_scale, axis, block_size).astype(wide)
    elif x.dtype in FLOAT_QUANT_TYPES:
        d = x.astype(_F32)
        if x_zero_point is not None:
            d = d - _x_zero_point(x_zero_point, x, x_scale, axis, block_size).astype(_F32)
    else:
        raise ExecutionError(f"DequantizeLinear cannot read x of type {x.dtype}")
    d = np.asarray(d)  # a 0-d difference is a NumPy scalar, which *= below would not update

    if out_dt in HALF_TYPES:
        # Round both factors to the output type; their product is exact in float32, so one
        # final rounding gives the correctly rounded half-precision product.
        y = d.astype(out_dt).astype(_F32)
        y *= scale.astype(out_dt).astype(_F32)
        return (y.astype(out_dt),)
    y = d.astype(out_dt)
    y *= scale.astype(out_dt)
    return (y,)


@kernel("DynamicQuantizeLinear", versions=(11,))
def dynamic_quantize_linear(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantize x to uint8 with a scale and zero point computed from its range (which holds 0)."""
    x = np.asarray(x, dtype=np.float32)
    qmin, qmax = 0.0, 255.0
    lo = min(0.0, float(x.min())) if x.size else 0.0
    hi = max(0.0, float(x.max())) if x.size else 0.0
    scale = np.float32((np.float32(hi) - np.float32(lo)) / np.float32(qmax - qmin))
    if scale == 0 or not np.isfinite(scale):
        # All zeros (or a non-finite range): any scale reproduces x; keep zero point 0.
        zp = np.float32(0)
    else:
        zp = np.rint(np.clip(np.float32(qmin) - np.float32(lo) / scale, qmin, qmax))
    if scale == 0:
        y = np.full(x.shape, zp, dtype=np.uint8)
    else:
        q = np.asarray(x / scale)  # an array for a 0-d x, so that out= takes it
        np.rint(q, out=q)
        q += zp
        np.clip(q, qmin, qmax, out=q)
        y = q.astype(np.uint8)
    return (y, np.asarray(scale, dtype=np.float32), np.asarray(zp, dtype=np.uint8))


def _shift(q: np.ndarray, zp: np.ndarray, what: str) -> np.ndarray:
    """q - zp as an exact float64 array (q and zp are 8-bit integers or float8)."""
    q, zp = np.asarray(q), np.asarray(zp)
    if zp.dtype != q.dtype:
        raise ExecutionError(f"{what}_zero_point is {zp.dtype} but {what} is {q.dtype}; they must "
                             f"be the same type")
    return q.astype(np.float64) - zp.astype(np.float64)


def _row_param(p: np.ndarray, a_ndim: int) -> np.ndarray:
    """A per-row parameter of ``a`` given as a 1-D vector of M values becomes (M, 1)."""
    p = np.asarray(p)
    if p.ndim == 1 and p.size > 1 and a_ndim >= 2:
        return p.reshape(-1, 1)
    return p


@kernel("QLinearMatMul", versions=(10, 21))
def qlinear_matmul(a: np.ndarray, a_scale: np.ndarray, a_zero_point: np.ndarray,
                   b: np.ndarray, b_scale: np.ndarray, b_zero_point: np.ndarray,
                   y_scale: np.ndarray, y_zero_point: np.ndarray, *,
                   ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Quantized matmul: exact integer product of the shifted inputs, requantized to y."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ExecutionError(f"QLinearMatMul inputs must have rank >= 1, got {a.shape} and "
                             f"{b.shape}")
    out_dt = np.asarray(y_zero_point).dtype
    a_zp = _row_param(a_zero_point, a.ndim)
    a_s = _row_param(a_scale, a.ndim)
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ExecutionError(f"QLinearMatMul: a has shape {a.shape} and b {b.shape}; the last "
                             f"dimension of a must equal the first matrix dimension of b")
    if ctx is not None:
        out_shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (
            (a.shape[-2],) if a.ndim > 1 else ()) + ((b.shape[-1],) if b.ndim > 1 else ())
        check_alloc(out_shape, np.float64, ctx.max_tensor_bytes, "QLinearMatMul result")
    acc = np.matmul(_shift(a, a_zp, "a"), _shift(b, b_zero_point, "b"))
    if a.ndim == 1 and a_s.ndim >= 1:
        a_s = a_s.reshape(())
    # Real value of the product, then quantized with y's scale: (acc * sa * sb) / sy.
    real = acc * (a_s.astype(np.float64) * np.asarray(b_scale).astype(np.float64)).astype(_F32)
    q = real.astype(_F32) / np.asarray(y_scale).astype(_F32)
    is_int = out_dt in INT_RANGES
    if is_int:
        np.rint(q, out=q)
    q += np.asarray(y_zero_point).astype(_F32)
    return (requantize(q, out_dt, rounded=is_int, inplace=True),)


@kernel("QLinearConv", versions=(10,))
def qlinear_conv(x: np.ndarray, x_scale: np.ndarray, x_zero_point: np.ndarray, w: np.ndarray,
                 w_scale: np.ndarray, w_zero_point: np.ndarray, y_scale: np.ndarray,
                 y_zero_point: np.ndarray, B: np.ndarray | None = None, *,
                 auto_pad: str = "NOTSET", dilations: list[int] | None = None, group: int = 1,
                 kernel_shape: list[int] | None = None, pads: list[int] | None = None,
                 strides: list[int] | None = None, ctx: KernelContext | None = None
                 ) -> tuple[np.ndarray]:
    """Quantized convolution: exact integer conv of the shifted inputs (+ int32 bias), requantized.

    The conv is pyonnx's own im2col (``_quantization.conv_int_exact``), independent of Conv.
    """
    x, w = np.asarray(x), np.asarray(w)
    if x.ndim < 3 or w.ndim != x.ndim:
        raise ExecutionError(f"QLinearConv needs x of rank >= 3 and w of the same rank, got "
                             f"{x.shape} and {w.shape}")
    nsp = x.ndim - 2
    m = w.shape[0]
    if kernel_shape and list(kernel_shape) != list(w.shape[2:]):
        raise ExecutionError(f"kernel_shape {list(kernel_shape)} does not match the weight's "
                             f"spatial shape {list(w.shape[2:])}")
    strides = list(strides) if strides else [1] * nsp
    dilations = list(dilations) if dilations else [1] * nsp
    if len(strides) != nsp or len(dilations) != nsp:
        raise ExecutionError(f"strides {strides} and dilations {dilations} need {nsp} values")
    p = conv_pads(x.shape[2:], w.shape[2:], strides, dilations, pads, auto_pad)

    if np.asarray(x_scale).size != 1 or np.asarray(x_zero_point).size != 1:
        raise ExecutionError("x_scale and x_zero_point must be scalars (per-tensor)")
    w_s = np.asarray(w_scale).reshape(-1)
    w_zp = np.asarray(w_zero_point).reshape(-1)
    for name, v in (("w_scale", w_s), ("w_zero_point", w_zp)):
        if v.size not in (1, m):
            raise ExecutionError(f"{name} has {v.size} elements; 1 or {m} (output channels) "
                                 f"expected")
    xs = _shift(x, np.asarray(x_zero_point).reshape(()), "x")
    per_m = (-1,) + (1,) * (nsp + 1)  # along w's output-channel axis 0
    ws = _shift(w, w_zp.reshape(per_m) if w_zp.size > 1 else w_zp.reshape(()), "w")
    if ctx is not None:
        check_alloc((x.shape[0], m) + tuple(x.shape[2:]), np.float64, ctx.max_tensor_bytes,
                    "QLinearConv result")
    acc = conv_int_exact(xs, ws, int(group), strides, dilations, p)
    if B is not None and np.asarray(B).shape != (m,):
        raise ExecutionError(f"B has shape {np.asarray(B).shape}; ({m},) expected")
    return (requantize_conv(acc, B, x_scale, w_s, y_scale, y_zero_point),)


def requantize_conv(acc: np.ndarray, B: np.ndarray | None, x_scale: np.ndarray,
                    w_scale: np.ndarray, y_scale: np.ndarray,
                    y_zero_point: np.ndarray) -> np.ndarray:
    """QLinearConv's output from its exact integer accumulator ``acc`` (N, M, spatial...): the
    int32 bias added, scaled by x_scale * w_scale (per tensor or per output channel, multiplied
    in float32), divided by y_scale, rounded half to even, shifted by y_zero_point and saturated
    to its type. The CPU provider's QLinearConv shares it (only its accumulator differs)."""
    wshift = (1, -1) + (1,) * (acc.ndim - 2)
    if B is not None:
        acc += np.asarray(B).astype(np.float64).reshape(wshift)
    mult = (np.asarray(x_scale, dtype=np.float32).reshape(()) * w_scale.astype(np.float32))
    real = acc.astype(np.float32) * (mult.reshape(wshift) if mult.size > 1 else mult.reshape(()))
    q = real / np.asarray(y_scale, dtype=np.float32).reshape(())
    np.rint(q, out=q)
    q += np.asarray(y_zero_point).astype(np.float32).reshape(())
    return requantize(q, np.asarray(y_zero_point).dtype, rounded=True, inplace=True)

