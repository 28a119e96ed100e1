"""Element type conversion: Cast, CastLike and BitCast.

NumPy's ``astype`` (with ml_dtypes for the narrow float and integer types) does the rounding
(to nearest, ties to even); this module adds what the spec asks beyond it: saturation of float 8
targets, float8e8m0's rounding modes, wrap-around into int4/int2, and the string <-> number rules.
"""

from __future__ import annotations

import math
from typing import Any

import ml_dtypes
import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ir.dtypes import DataType
from pyonnx.ops._tensor import is_ml_dtype
from pyonnx.ops.registry import kernel

__all__: list[str] = []

_FLOAT8 = {DataType.FLOAT8E4M3FN, DataType.FLOAT8E4M3FNUZ, DataType.FLOAT8E5M2,
           DataType.FLOAT8E5M2FNUZ}
_FNUZ = {DataType.FLOAT8E4M3FNUZ, DataType.FLOAT8E5M2FNUZ}
# sub-byte integers: (bits, signed)
_SMALL_INT = {DataType.INT4: (4, True), DataType.UINT4: (4, False),
              DataType.INT2: (2, True), DataType.UINT2: (2, False)}
_UNSUPPORTED = {DataType.UNDEFINED, DataType.COMPLEX64, DataType.COMPLEX128}


def _as_numeric(x: np.ndarray) -> np.ndarray:
    """``x`` in a plain NumPy dtype that holds every value exactly.

    ml_dtypes' floats widen to float32 and their small integers to int8/uint8, so that every
    further conversion uses NumPy's own loops (and rounds once).
    """
    if not is_ml_dtype(x.dtype):
        return x
    if np.dtype(x.dtype) in (np.dtype(ml_dtypes.int4), np.dtype(ml_dtypes.int2)):
        return x.astype(np.int8)
    if np.dtype(x.dtype) in (np.dtype(ml_dtypes.uint4), np.dtype(ml_dtypes.uint2)):
        return x.astype(np.uint8)
    return x.astype(np.float32)


# --------------------------------------------------------------------------------------------
# strings
# --------------------------------------------------------------------------------------------


def _parse_float(s: Any) -> float:
    try:
        return float(s)
    except (TypeError, ValueError):
        raise ExecutionError(f"Cast cannot parse the string {s!r} as a number") from None


def _parse_int(s: Any) -> int:
    try:
        return int(s)
    except (TypeError, ValueError):
        pass
    v = _parse_float(s)  # "100.5" or "1e3": take the number, truncate toward zero
    if not math.isfinite(v):
        raise ExecutionError(f"Cast cannot convert the string {s!r} to an integer")
    return int(v)


def _from_string(x: np.ndarray, to: DataType, saturate: bool, round_mode: str,
                 fnuz_inf_nan: bool) -> np.ndarray:
    """Parse strings: decimal and scientific numbers, INF/+INF/-INF/NaN in any case."""
    flat = x.reshape(-1).tolist()
    target = to.numpy
    if to == DataType.BOOL:
        out = []
        for s in flat:
            t = str(s).strip().lower()
            out.append(t == "true" if t in ("true", "false") else _parse_float(s) != 0)
        return np.array(out, dtype=np.bool_).reshape(x.shape)
    if target.kind in "iu" or to in _SMALL_INT:
        ints = [_parse_int(s) for s in flat]
        # wrap into 64 bits first, then into the target like any other integer conversion
        arr = np.array([((v + 2**63) % 2**64) - 2**63 for v in ints], dtype=np.int64)
        return _cast_numeric(arr.reshape(x.shape), to, saturate, round_mode, fnuz_inf_nan)
    arr = np.array([_parse_float(s) for s in flat], dtype=np.float64).reshape(x.shape)
    if to == DataType.DOUBLE:
        return arr
    return _cast_numeric(arr, to, saturate, round_mode, fnuz_inf_nan)


def _to_string(x: np.ndarray) -> np.ndarray:
    """Print numbers: integers in decimal, floats in their shortest round-trip form.

    NaN and infinities print as the spec's literals NaN, INF and -INF; booleans as 1 and 0.
    """
    if x.dtype == object:
        return x
    if x.dtype == np.bool_:
        text = np.where(x, "1", "0")
    else:
        v = _as_numeric(x)
        text = v.astype(np.str_)
        if v.dtype.kind == "f":
            text = np.where(np.isnan(v), "NaN", text)
            text = np.where(np.isposinf(v), "INF", text)
            text = np.where(np.isneginf(v), "-INF", text)
    return text.astype(object)


# --------------------------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------------------------


def _to_float8(x: np.ndarray, to: DataType, saturate: bool, fnuz_inf_nan: bool) -> np.ndarray:
    """Round to a float 8 type; with ``saturate`` clamp out-of-range values to +/- max finite.

    ml_dtypes alone gives the saturate=0 table (NaN or Inf on overflow); clamping the input to
    the largest finite value first gives the saturate=1 table, since the max itself is exact.
    Opsets 19-23 keep +/-Inf -> NaN for the FNUZ types even when saturating.
    """
    target = to.numpy
    if x.dtype.kind not in "f":
        x = x.astype(np.float64) if x.dtype.kind in "iub" else _as_numeric(x)
    if saturate:
        big = float(ml_dtypes.finfo(target).max)
        with np.errstate(invalid="ignore"):
            clipped = np.clip(x, -big, big)
        if fnuz_inf_nan and to in _FNUZ:
            clipped = np.where(np.isinf(x), x, clipped)
        x = clipped
    with np.errstate(over="ignore", invalid="ignore"):
        return x.astype(target)


def _to_e8m0(x: np.ndarray, saturate: bool, round_mode: str) -> np.ndarray:
    """Round to float8e8m0 (powers of two 2^-127 .. 2^127, NaN) in the given rounding mode.

    Works on the float64 bit pattern, where every float32/float16 value is normal: the result
    exponent is the input's, plus one when the mode rounds the mantissa up. Inputs outside
    [2^-127, 2^127] (zero included) clamp to the smallest/largest value with ``saturate``, else
    become NaN. The sign is ignored (negative inputs are undefined behaviour in the spec).
    """
    if round_mode not in ("up", "down", "nearest"):
        raise UnsupportedOperatorError(f"Cast round_mode {round_mode!r} is not up, down or nearest")
    v = np.abs(_as_numeric(x).astype(np.float64))
    bits = v.view(np.uint64)
    exp = (bits >> np.uint64(52)).astype(np.int64)
    man = bits & np.uint64((1 << 52) - 1)
    e = exp - 1023 + 127
    if round_mode == "up":
        e = e + (man != 0)
    elif round_mode == "nearest":
        e = e + (man >= np.uint64(1 << 51))
    nan = np.isnan(v)
    # the spec's table tests x itself against the range (as onnxruntime does); within it no
    # rounding mode can leave the range
    under = v < 2.0**-127
    over = v > 2.0**127
    if saturate:
        e = np.where(under, 0, np.where(over, 254, e))
    else:
        e = np.where(under | over, 255, e)
    e = np.where(nan, 255, e)
    return e.astype(np.uint8).view(ml_dtypes.float8_e8m0fnu)


def _to_small_int(x: np.ndarray, to: DataType) -> np.ndarray:
    """Convert to int4/uint4/int2/uint2: truncate floats, then keep the low bits (wrap)."""
    bits, signed = _SMALL_INT[to]
    v = _as_numeric(x)
    if v.dtype.kind == "f":
        with np.errstate(invalid="ignore", over="ignore"):
            v = np.nan_to_num(np.trunc(v.astype(np.float64)), nan=0.0, posinf=0.0, neginf=0.0)
            v = v.astype(np.int64)
    v = v.astype(np.int64) & ((1 << bits) - 1)
    if signed:
        v = np.where(v >= 1 << (bits - 1), v - (1 << bits), v)
    return v.astype(np.int8 if signed else np.uint8).astype(to.numpy)


def _cast_numeric(x: np.ndarray, to: DataType, saturate: bool, round_mode: str,
                  fnuz_inf_nan: bool) -> np.ndarray:
    target = to.numpy
    # the clip/trunc/where steps of the narrow types turn a 0-d input into a NumPy scalar
    if to in _FLOAT8:
        return np.asarray(_to_float8(x, to, saturate, fnuz_inf_nan))
    if to == DataType.FLOAT8E8M0:
        return np.asarray(_to_e8m0(x, saturate, round_mode))
    if to in _SMALL_INT:
        return np.asarray(_to_small_int(x, to))
    v = _as_numeric(x)
    if to == DataType.BOOL:
        return np.asarray(v != 0)
    # float -> integer out of range is undefined in the spec; NumPy's result stands there
    with np.errstate(invalid="ignore", over="ignore"):
        return v.astype(target)


# targets that NumPy's astype converts exactly as the spec says, from any plain NumPy number
_PLAIN_TARGETS: dict[DataType, np.dtype] = {
    dt: dt.numpy for dt in (DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.INT8,
                            DataType.INT16, DataType.INT32, DataType.INT64, DataType.UINT8,
                            DataType.UINT16, DataType.UINT32, DataType.UINT64, DataType.BOOL)}


def _cast(x: np.ndarray, to: DataType, saturate: int = 1, round_mode: str = "up",
          fnuz_inf_nan: bool = False) -> np.ndarray:
    target = _PLAIN_TARGETS.get(to)
    if target is not None and x.dtype.kind in "biuf" and x.dtype.type.__module__ == "numpy":
        # the common case, kept short: shape computations cast small tensors all the time
        if x.dtype == target:
            return x
        if x.dtype.kind == "f" and target.kind in "iu":
            # float -> integer out of range is undefined in the spec; NumPy's result stands
            with np.errstate(invalid="ignore", over="ignore"):
                return x.astype(target)
        if x.dtype.kind == "f" and target.kind == "f" and target.itemsize < x.dtype.itemsize:
            # a value beyond the narrower type's range becomes +-inf, as IEEE 754 defines: no
            # NumPy warning for it
            with np.errstate(over="ignore"):
                return x.astype(target)
        return x.astype(target)
    if to in _UNSUPPORTED:
        raise UnsupportedOperatorError(f"Cast to {to.name} is not supported")
    if x.dtype == to.numpy:
        return x
    if to == DataType.STRING:
        return _to_string(x)
    if x.dtype == object:
        return _from_string(x, to, bool(saturate), round_mode, fnuz_inf_nan)
    return _cast_numeric(x, to, bool(saturate), round_mode, fnuz_inf_nan)


_BY_CODE: dict[int, DataType] = {int(dt): dt for dt in DataType}


def _target(to: int | str) -> DataType:
    try:
        if isinstance(to, str):
            return DataType[to.upper()]
        return _BY_CODE[int(to)]
    except (KeyError, ValueError):
        raise ExecutionError(f"Cast 'to' = {to!r} is not an ONNX element type") from None


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------


@kernel("Cast", versions=(1, 6, 9, 13))
def cast_1(input: np.ndarray, *, to: int | str) -> tuple[np.ndarray]:
    """Convert to the element type ``to`` (Cast-1 spells it as a name such as "FLOAT")."""
    return (_cast(input, _target(to)),)


@kernel("Cast", versions=(19, 21, 23))
def cast_19(input: np.ndarray, *, to: int, saturate: int = 1) -> tuple[np.ndarray]:
    """Convert to ``to``; float 8 targets saturate by default (FNUZ keeps Inf -> NaN)."""
    return (_cast(input, _target(to), saturate, fnuz_inf_nan=True),)


@kernel("Cast", versions=(24, 25, 28))
def cast_24(input: np.ndarray, *, to: int, saturate: int = 1,
            round_mode: str = "up") -> tuple[np.ndarray]:
    """Convert to ``to``; float 8 targets saturate by default, float8e8m0 rounds per round_mode."""
    return (_cast(input, _target(to), saturate, round_mode),)


@kernel("CastLike", versions=(15,))
def cast_like_15(input: np.ndarray, target_type: np.ndarray) -> tuple[np.ndarray]:
    """Convert to the element type of ``target_type``."""
    return (_cast(input, DataType.from_numpy(target_type.dtype)),)


@kernel("CastLike", versions=(19, 21, 23))
def cast_like_19(input: np.ndarray, target_type: np.ndarray, *,
                 saturate: int = 1) -> tuple[np.ndarray]:
    """Convert to the element type of ``target_type`` (saturating float 8 as Cast-19)."""
    return (_cast(input, DataType.from_numpy(target_type.dtype), saturate, fnuz_inf_nan=True),)


@kernel("CastLike", versions=(24, 25))
def cast_like_24(input: np.ndarray, target_type: np.ndarray, *, saturate: int = 1,
                 round_mode: str = "up") -> tuple[np.ndarray]:
    """Convert to the element type of ``target_type`` (as Cast-24)."""
    return (_cast(input, DataType.from_numpy(target_type.dtype), saturate, round_mode),)


def _bit_width(dt: DataType) -> int:
    if dt == DataType.BOOL:
        return 8
    return dt.itemsize_bits


@kernel("BitCast", versions=(26,))
def bit_cast(input: np.ndarray, *, to: int) -> tuple[np.ndarray]:
    """Reinterpret the bits of each element as type ``to`` of the same width (little endian)."""
    src = DataType.from_numpy(input.dtype)
    dst = _target(to)
    if DataType.STRING in (src, dst) or dst in _UNSUPPORTED - {DataType.COMPLEX64,
                                                                DataType.COMPLEX128}:
        raise ExecutionError(f"BitCast cannot convert {src.name} to {dst.name}")
    if _bit_width(src) != _bit_width(dst):
        raise ExecutionError(f"BitCast needs types of the same width: {src.name} has "
                             f"{_bit_width(src)} bits, {dst.name} {_bit_width(dst)}")
    if src == dst:
        return (input,)
    if dst == DataType.BOOL:
        # a NumPy bool must hold 0 or 1; any other byte pattern reads as true
        return (input.view(np.uint8) != 0,)
    # NumPy arrays are in native byte order, little endian on every platform NumPy wheels
    # target; ml_dtypes keeps 4- and 2-bit values in the low bits of one byte, so a view of
    # the bytes reinterprets those too
    out = np.ascontiguousarray(input).view(dst.numpy)
    return (out.reshape(input.shape),)
