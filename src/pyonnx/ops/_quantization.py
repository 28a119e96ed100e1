"""Helpers of the quantization kernels: granularity of scales, saturating casts, exact integer conv.

Kept apart from ``quantization.py`` so that other families (QDQ-aware kernels, the quantizer) can
reuse the same rounding and saturation rules without importing a kernel module.
"""

from __future__ import annotations

from collections.abc import Sequence

import ml_dtypes
import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops._common import normalize_axis

__all__ = [
    "INT_RANGES",
    "FLOAT_QUANT_TYPES",
    "is_quant_int",
    "expand_param",
    "saturate_cast",
    "requantize",
    "conv_int_exact",
    "conv_pads",
]

# Integer types a quantized tensor may have, with their saturation bounds.
INT_RANGES: dict[np.dtype, tuple[int, int]] = {
    np.dtype(np.uint8): (0, 255),
    np.dtype(np.int8): (-128, 127),
    np.dtype(np.uint16): (0, 65535),
    np.dtype(np.int16): (-32768, 32767),
    np.dtype(ml_dtypes.uint4): (0, 15),
    np.dtype(ml_dtypes.int4): (-8, 7),
    np.dtype(ml_dtypes.uint2): (0, 3),
    np.dtype(ml_dtypes.int2): (-2, 1),
}

# Low-precision float types a tensor may be quantized to. float8 types have a non-saturating
# conversion (to NaN or inf); float4/float6 have no inf or NaN encoding, so they always saturate.
_FLOAT8 = tuple(np.dtype(t) for t in (ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz,
                                      ml_dtypes.float8_e5m2, ml_dtypes.float8_e5m2fnuz))
FLOAT_QUANT_TYPES: tuple[np.dtype, ...] = _FLOAT8 + tuple(
    np.dtype(t) for t in (ml_dtypes.float4_e2m1fn, ml_dtypes.float6_e2m3fn,
                          ml_dtypes.float6_e3m2fn))

HALF_TYPES = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))


def is_quant_int(dt: np.dtype) -> bool:
    """Whether ``dt`` is an integer type a quantized tensor may have."""
    return np.dtype(dt) in INT_RANGES


def expand_param(param: np.ndarray, x_shape: Sequence[int], axis: int, block_size: int,
                 what: str) -> np.ndarray:
    """Make a scale or zero point broadcastable against ``x`` according to its granularity.

    A scalar (or one-element 1-D tensor) is per-tensor; a 1-D tensor with ``x.shape[axis]``
    elements is per-axis; a tensor of ``x``'s rank whose ``axis`` dimension is
    ``ceil(D / block_size)`` is blocked (each entry repeated ``block_size`` times along ``axis``).
    """
    p = np.asarray(param)
    rank = len(x_shape)
    if block_size and block_size < 0:
        raise ExecutionError(f"block_size must be positive, got {block_size}")
    if not block_size and p.size == 1 and p.ndim <= 1:
        return p.reshape(())
    if rank == 0:
        raise ExecutionError(f"{what} of shape {p.shape} needs an input of rank >= 1 "
                             f"(per-axis or blocked), but the input is a scalar")
    ax = normalize_axis(axis, rank)
    dim = int(x_shape[ax])
    if not block_size:
        if p.ndim != 1:
            raise ExecutionError(
                f"{what} has shape {p.shape}: per-tensor quantization needs a scalar and per-axis "
                f"quantization a 1-D tensor; a {p.ndim}-D {what} is blocked quantization and "
                f"needs the block_size attribute")
        if p.shape[0] != dim:
            raise ExecutionError(
                f"{what} has {p.shape[0]} elements but input dimension {ax} (axis) has {dim}; "
                f"per-axis quantization needs one per index of that dimension")
        shape = [1] * rank
        shape[ax] = dim
        return p.reshape(shape)
    # Blocked quantization.
    if p.ndim != rank:
        raise ExecutionError(f"blocked quantization: {what} has rank {p.ndim} but the input has "
                             f"rank {rank}; they must match")
    for i in range(rank):
        if i != ax and p.shape[i] != x_shape[i]:
            raise ExecutionError(
                f"blocked quantization: {what} shape {p.shape} must equal the input shape "
                f"{tuple(x_shape)} except on axis {ax}")
    nblocks = p.shape[ax]
    if nblocks * block_size < dim or (nblocks - 1) * block_size >= dim:
        raise ExecutionError(
            f"blocked quantization: block_size {block_size} does not fit input dimension {dim} "
            f"(axis {ax}) with {nblocks} blocks in {what}; ceil({dim} / {block_size}) must be "
            f"{nblocks}")
    return np.repeat(p, block_size, axis=ax)[(slice(None),) * ax + (slice(0, dim),)]


def saturate_cast(values: np.ndarray, dtype: np.dtype, saturate: bool = True) -> np.ndarray:
    """Convert float values to a float8/float4/float6 type, rounding to nearest even.

    With ``saturate`` (and always for float4/float6) values beyond the type's range, infinities
    included, become its largest finite value with their sign; without it they become inf
    (float8e5m2) or NaN (other float8 types), as the Cast table of the spec says.
    """
    dtype = np.dtype(dtype)
    v = np.asarray(values)
    if saturate or dtype not in _FLOAT8:
        fmax = float(ml_dtypes.finfo(dtype).max)
        v = np.asarray(np.clip(v, -fmax, fmax))  # NaN stays NaN; a 0-d clip gives a scalar
    return v.astype(dtype)


def requantize(values: np.ndarray, dtype: np.dtype, saturate: bool = True, *,
               rounded: bool = False, inplace: bool = False) -> np.ndarray:
    """Round (half to even) and saturate float values to an integer or low-precision float type.

    ``values`` already include the zero point. ``rounded`` says they are already integral;
    ``inplace`` lets the caller hand over a buffer it owns (otherwise it is not mutated).
    """
    dtype = np.dtype(dtype)
    # a 0-d result of the caller's arithmetic is a NumPy scalar, which out= refuses
    values = np.asarray(values)
    if dtype in INT_RANGES:
        lo, hi = INT_RANGES[dtype]
        r = values if rounded else np.rint(values, out=values if inplace else None)
        r = np.clip(r, lo, hi, out=r if (inplace or not rounded) else None)
        return np.asarray(r).astype(dtype)
    if dtype in FLOAT_QUANT_TYPES:
        return saturate_cast(values, dtype, saturate)
    raise ExecutionError(f"{dtype} is not a quantized type")


def conv_pads(in_spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
              dilations: Sequence[int], pads: Sequence[int] | None, auto_pad: str
              ) -> list[int]:
    """Explicit ``[begin..., end...]`` pads for a convolution, resolving ``auto_pad``."""
    n = len(in_spatial)
    if auto_pad in ("", "NOTSET"):
        p = list(pads) if pads else [0] * (2 * n)
        if len(p) != 2 * n:
            raise ExecutionError(f"pads has {len(p)} values; {2 * n} expected for {n} spatial axes")
        if any(v < 0 for v in p):
            raise ExecutionError(f"pads {p} must not be negative")
        return p
    if auto_pad == "VALID":
        return [0] * (2 * n)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise ExecutionError(f"auto_pad {auto_pad!r} is not one of NOTSET, SAME_UPPER, "
                             f"SAME_LOWER, VALID")
    begin, end = [], []
    for size, k, s, d in zip(in_spatial, kernel, strides, dilations):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small = total // 2
        if auto_pad == "SAME_UPPER":
            begin.append(small)
            end.append(total - small)
        else:
            begin.append(total - small)
            end.append(small)
    return begin + end


def conv_int_exact(x: np.ndarray, w: np.ndarray, group: int, strides: Sequence[int],
                   dilations: Sequence[int], pads: Sequence[int]) -> np.ndarray:
    """N-D grouped convolution of small-integer tensors, exact, as float64.

    ``x`` is (N, C, *spatial) and ``w`` (M, C/group, *kernel), both holding integers (already
    shifted by their zero points). Products and sums of 8-bit values stay far below 2**53, so
    float64 BLAS matmuls give the exact integer result at BLAS speed (NumPy's integer matmul has
    no BLAS path). Padding contributes zeros, i.e. the input's zero point in quantized terms.
    """
    n, c = x.shape[:2]
    m = w.shape[0]
    nsp = x.ndim - 2
    kernel = w.shape[2:]
    if c % group or m % group:
        raise ExecutionError(f"group {group} must divide both the input channels ({c}) and the "
                             f"output channels ({m})")
    cg, mg = c // group, m // group
    if w.shape[1] != cg:
        raise ExecutionError(f"weight has {w.shape[1]} input channels per group; the input has "
                             f"{c} channels in {group} group(s), so {cg} expected")
    xf = np.asarray(x, dtype=np.float64)
    pad_width = [(0, 0), (0, 0)] + [(pads[i], pads[i + nsp]) for i in range(nsp)]
    if any(pads):
        xf = np.pad(xf, pad_width)
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    out_sp = [(xf.shape[2 + i] - eff[i]) // strides[i] + 1 for i in range(nsp)]
    if any(o <= 0 for o in out_sp):
        raise ExecutionError(f"the kernel {tuple(kernel)} (dilations {list(dilations)}) is larger "
                             f"than the padded input {xf.shape[2:]}")
    win = np.lib.stride_tricks.sliding_window_view(xf, eff, axis=tuple(range(2, 2 + nsp)))
    sl = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides) + tuple(
        slice(None, None, d) for d in dilations)
    win = win[sl]
    win = win[(slice(None), slice(None)) + tuple(slice(0, o) for o in out_sp)]
    # win: (N, C, *out, *kernel) -> columns (N, G, L, Cg * K)
    length = int(np.prod(out_sp))
    ksize = int(np.prod(kernel))
    win = win.reshape((n, group, cg) + tuple(out_sp) + tuple(kernel))
    perm = (0, 1) + tuple(range(3, 3 + nsp)) + (2,) + tuple(range(3 + nsp, 3 + 2 * nsp))
    cols = win.transpose(perm).reshape(n, group, length, cg * ksize)
    wm = np.asarray(w, dtype=np.float64).reshape(group, mg, cg * ksize)
    out = np.matmul(cols, wm.transpose(0, 2, 1))  # (N, G, L, Mg)
    return out.transpose(0, 1, 3, 2).reshape((n, m) + tuple(out_sp))
