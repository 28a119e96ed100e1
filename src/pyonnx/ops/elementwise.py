"""Element-wise math: unary functions, binary arithmetic/logic/comparison with broadcasting,
the variadic Sum/Max/Min/Mean, Where and Clip.

The plain ufunc-backed operators come from tables (op_type -> NumPy function, accepted element
types, schema versions) and are registered in loops; operators whose semantics NumPy does not
match directly (integer Div truncates, Mod's two modes, mixed-type Pow, Erf, IsInf) have their own
functions, which the tables reference.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops._common import tensor_limit
from pyonnx.ops._elementwise import (
    BOOL_TYPES,
    FLOAT8_TYPES,
    FLOAT32,
    FLOAT_TYPES,
    INT_TYPES,
    LOW_PRECISION,
    NUMERIC_TYPES,
    SIGNED_INT_TYPES,
    UNSIGNED_INT_TYPES,
    broadcast_shape,
    check_broadcast_alloc,
    check_dtype,
    check_same_dtype,
    erf,
    legacy_broadcast,
)
from pyonnx.ops.registry import KernelContext, kernel

_STRING_TYPES = frozenset({np.dtype(object)})
_ALL_TYPES_NO_STRING = NUMERIC_TYPES | BOOL_TYPES
_SIGNED_NUMERIC = SIGNED_INT_TYPES | FLOAT_TYPES


# ---------------------------------------------------------------------------------------------
# Unary
# ---------------------------------------------------------------------------------------------


def _erf(x: np.ndarray) -> np.ndarray:
    """erf, in float32 for float16/bfloat16 and float64 for integers (Erf-9 accepts integers and
    returns the same integer type, truncated)."""
    if x.dtype == np.float32 or x.dtype == np.float64:
        return erf(x)
    work = FLOAT32 if x.dtype in LOW_PRECISION else np.dtype(np.float64)
    return erf(x.astype(work)).astype(x.dtype)


# op_type -> (function, accepted element types, since_versions, may raise floating-point warnings)
_UnaryEntry = tuple[Callable[[np.ndarray], np.ndarray], frozenset[np.dtype], tuple[int, ...], bool]
_UNARY: dict[str, _UnaryEntry] = {
    "Abs": (np.absolute, NUMERIC_TYPES, (1, 6, 13), False),
    "Neg": (np.negative, _SIGNED_NUMERIC, (1, 6, 13), False),
    "Reciprocal": (np.reciprocal, FLOAT_TYPES, (1, 6, 13), True),
    "Floor": (np.floor, FLOAT_TYPES, (1, 6, 13), False),
    "Ceil": (np.ceil, FLOAT_TYPES, (1, 6, 13), False),
    # rint rounds halves to even, as Round requires
    "Round": (np.rint, FLOAT_TYPES, (11, 22), False),
    "Sign": (np.sign, NUMERIC_TYPES, (9, 13), False),
    "Sqrt": (np.sqrt, FLOAT_TYPES, (1, 6, 13), True),
    "Exp": (np.exp, FLOAT_TYPES, (1, 6, 13), True),
    "Log": (np.log, FLOAT_TYPES, (1, 6, 13), True),
    "Erf": (_erf, NUMERIC_TYPES, (9, 13), False),
    "Sin": (np.sin, FLOAT_TYPES, (7, 22), True),
    "Cos": (np.cos, FLOAT_TYPES, (7, 22), True),
    "Tan": (np.tan, FLOAT_TYPES, (7, 22), True),
    "Asin": (np.arcsin, FLOAT_TYPES, (7, 22), True),
    "Acos": (np.arccos, FLOAT_TYPES, (7, 22), True),
    "Atan": (np.arctan, FLOAT_TYPES, (7, 22), True),
    "Sinh": (np.sinh, FLOAT_TYPES, (9, 22), True),
    "Cosh": (np.cosh, FLOAT_TYPES, (9, 22), True),
    "Asinh": (np.arcsinh, FLOAT_TYPES, (9, 22), True),
    "Acosh": (np.arccosh, FLOAT_TYPES, (9, 22), True),
    "Atanh": (np.arctanh, FLOAT_TYPES, (9, 22), True),
    "IsNaN": (np.isnan, FLOAT_TYPES | FLOAT8_TYPES, (9, 13, 20), False),
    "Not": (np.logical_not, BOOL_TYPES, (1,), False),
    "BitwiseNot": (np.invert, INT_TYPES, (18,), False),
}


def _make_unary(op: str, fn: Callable[[np.ndarray], np.ndarray], allowed: frozenset[np.dtype],
                noisy: bool) -> Callable[..., tuple[np.ndarray]]:
    def unary(X: np.ndarray, *, consumed_inputs: list[int] | None = None) -> tuple[np.ndarray]:
        if X.dtype not in allowed:
            check_dtype(op, X, allowed)
        if noisy and X.dtype.kind not in "iub":
            # out-of-domain inputs give NaN/inf as the spec expects; NumPy would also warn
            with np.errstate(all="ignore"):
                return (np.asarray(fn(X)),)
        return (np.asarray(fn(X)),)

    unary.__name__ = unary.__qualname__ = op
    unary.__doc__ = f"{op}: applies {getattr(fn, '__name__', fn)} element-wise (same shape)."
    return unary


for _op, (_fn, _allowed, _versions, _noisy) in _UNARY.items():
    kernel(_op, versions=_versions)(_make_unary(_op, _fn, _allowed, _noisy))


@kernel("IsInf", versions=(10, 20))
def IsInf(X: np.ndarray, *, detect_negative: int = 1,
          detect_positive: int = 1) -> tuple[np.ndarray]:
    """IsInf: True where X is infinite (of the signs selected by the attributes)."""
    check_dtype("IsInf", X, FLOAT_TYPES | FLOAT8_TYPES)
    out = np.asarray(np.isinf(X))  # a 0-d X gives a NumPy scalar, which &= would not update
    if not (detect_negative and detect_positive):
        if detect_negative:
            out &= np.signbit(X)
        elif detect_positive:
            out &= ~np.signbit(X)
        else:
            out[...] = False
    return (out,)


# ---------------------------------------------------------------------------------------------
# Binary
# ---------------------------------------------------------------------------------------------


def _check_int_divisor(op: str, b: np.ndarray) -> None:
    if not b.all():
        raise ExecutionError(f"{op}: integer division by zero (the divisor contains 0)")


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Division; integers truncate toward zero as the spec requires (NumPy's // floors)."""
    if a.dtype.kind not in "iu":
        return np.divide(a, b)
    _check_int_divisor("Div", b)
    if a.dtype.kind == "u":
        return np.floor_divide(a, b)
    with np.errstate(all="ignore"):  # INT_MIN / -1 wraps, as in C
        q, r = np.divmod(a, b)
        q = np.asarray(q)  # a 0-d quotient comes back as a NumPy scalar, which out= refuses
        # floor and truncation differ by one where the division is inexact and the signs differ
        fix = r != 0
        fix &= np.bitwise_xor(a, b) < 0
        np.add(q, fix, out=q, casting="unsafe")
    return q


def _mod(a: np.ndarray, b: np.ndarray, fmod: int, version: int) -> np.ndarray:
    """Mod: fmod=0 takes the sign of the divisor (a - floor(a/b)*b), fmod=1 that of the dividend."""
    if fmod not in (0, 1):
        raise ExecutionError(f"Mod: attribute fmod must be 0 or 1, got {fmod}")
    if a.dtype.kind in "iu":
        _check_int_divisor("Mod", b)
        return np.fmod(a, b) if fmod else np.remainder(a, b)
    if not fmod and version < 28:
        raise ExecutionError(f"Mod: floating-point inputs ({a.dtype}) require fmod=1 before "
                             f"opset 28")
    # NumPy's remainder already follows the spec's special cases (±0, ±inf, NaN) for fmod=0
    return np.fmod(a, b) if fmod else np.remainder(a, b)


def _int_pow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Integer power with wraparound; a negative exponent gives the truncated 1/x**n."""
    ework = np.dtype(np.int64) if x.dtype.kind == "i" else np.dtype(np.uint64)
    if y.dtype.kind == "i" and y.size and y.min() < 0:
        neg = y < 0
        if np.any(neg & (x == 0)):
            raise ExecutionError("Pow: 0 raised to a negative integer power (division by zero)")
        r = np.power(x, np.where(neg, 0, y).astype(ework))
        # |x| >= 2 gives |1/x**n| < 1, truncated to 0; 1 gives 1; -1 gives (-1)**n
        odd = (y & 1).astype(bool)
        inv = np.where(x == 1, 1, np.where(x == -1, np.where(odd, -1, 1), 0))
        r = np.where(neg, inv, r)
    else:
        r = np.power(x, y.astype(ework, copy=False))
    return r.astype(x.dtype, copy=False)


def _pow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pow: the output has X's type whatever Y's numeric type is."""
    check_dtype("Pow", y, NUMERIC_TYPES, "Y")
    if x.dtype.kind in "iu":
        if y.dtype.kind in "iu":
            return _int_pow(x, y)
        # float exponent: compute in double, truncate toward zero as a C cast does
        with np.errstate(all="ignore"):
            return np.asarray(np.power(x.astype(np.float64), y.astype(np.float64))).astype(x.dtype)
    if y.dtype == x.dtype:
        if y.size == 1 and y.ndim <= x.ndim:
            # small integer exponents by multiplication, ten times faster than pow: x**2 is
            # exactly x*x (one rounding either way); x**3 as x*x*x is within an ulp or two
            # (GELU's tanh form exported by PyTorch uses Pow(x, 3)), as onnxruntime does it
            e = y.reshape(-1)[0]
            if e == 2:
                return np.square(x)
            if e == 3:
                r = np.square(x)
                r *= x
                return r
        if x.dtype in LOW_PRECISION:
            return np.power(x.astype(FLOAT32), y.astype(FLOAT32)).astype(x.dtype)
        return np.power(x, y)
    # mixed types: compute in the promoted type, round once to X's type
    wx = x.astype(FLOAT32) if x.dtype in LOW_PRECISION else x
    wy = y.astype(FLOAT32) if y.dtype in LOW_PRECISION else y
    return np.asarray(np.power(wx, wy)).astype(x.dtype, copy=False)


def _bitshift(x: np.ndarray, y: np.ndarray, direction: str) -> np.ndarray:
    # NumPy shifts give what the spec asks for shift amounts < 0 or >= the bit width: 0, or -1
    # for a right shift of a negative value.
    if direction == "LEFT":
        return np.left_shift(x, y)
    if direction == "RIGHT":
        return np.right_shift(x, y)
    raise ExecutionError(f"BitShift: attribute direction must be 'LEFT' or 'RIGHT', "
                         f"got {direction!r}")


# op_type -> (function, accepted element types of A, since_versions with multidirectional
# broadcasting, legacy since_versions with the broadcast/axis attributes)
_BinaryEntry = tuple[Callable[..., np.ndarray], frozenset[np.dtype], tuple[int, ...],
                     tuple[int, ...]]
_BINARY: dict[str, _BinaryEntry] = {
    "Add": (np.add, NUMERIC_TYPES, (7, 13, 14), (1, 6)),
    "Sub": (np.subtract, NUMERIC_TYPES, (7, 13, 14), (1, 6)),
    "Mul": (np.multiply, NUMERIC_TYPES, (7, 13, 14), (1, 6)),
    "Div": (_div, NUMERIC_TYPES, (7, 13, 14), (1, 6)),
    "Pow": (_pow, NUMERIC_TYPES, (7, 12, 13, 15), (1,)),
    "And": (np.logical_and, BOOL_TYPES, (7,), (1,)),
    "Or": (np.logical_or, BOOL_TYPES, (7,), (1,)),
    "Xor": (np.logical_xor, BOOL_TYPES, (7,), (1,)),
    "Equal": (np.equal, _ALL_TYPES_NO_STRING | _STRING_TYPES, (7, 11, 13, 19), (1,)),
    "Greater": (np.greater, NUMERIC_TYPES, (7, 9, 13), (1,)),
    "Less": (np.less, NUMERIC_TYPES, (7, 9, 13), (1,)),
    "GreaterOrEqual": (np.greater_equal, NUMERIC_TYPES, (12, 16), ()),
    "LessOrEqual": (np.less_equal, NUMERIC_TYPES, (12, 16), ()),
    "BitwiseAnd": (np.bitwise_and, INT_TYPES, (18,), ()),
    "BitwiseOr": (np.bitwise_or, INT_TYPES, (18,), ()),
    "BitwiseXor": (np.bitwise_xor, INT_TYPES, (18,), ()),
}
# Pow's exponent may have another numeric type than its base; every other binary op takes one T.
_MIXED_TYPES = frozenset({"Pow"})


def _apply_binary(op: str, fn: Callable[..., np.ndarray], a: np.ndarray, b: np.ndarray,
                  *extra: object) -> np.ndarray:
    """``fn(a, b)``, silent on floating-point exceptions, with broadcast errors made clear."""
    try:
        if a.dtype.kind in "iub":
            return np.asarray(fn(a, b, *extra))
        with np.errstate(all="ignore"):  # inf/NaN results are what the spec computes
            return np.asarray(fn(a, b, *extra))
    except ValueError:
        broadcast_shape(op, a.shape, b.shape)  # raises ExecutionError if that was the cause
        raise


def _make_binary(op: str, fn: Callable[..., np.ndarray], allowed: frozenset[np.dtype],
                 legacy: bool) -> Callable[..., tuple[np.ndarray]]:
    mixed = op in _MIXED_TYPES
    names = ("X", "Y") if op == "Pow" else ("A", "B")  # the spec's input names, for messages

    def check(A: np.ndarray, B: np.ndarray) -> None:
        if A.dtype not in allowed:
            check_dtype(op, A, allowed, names[0])
        if not mixed and B.dtype != A.dtype:
            check_same_dtype(op, (A, B), names)

    if legacy:
        def binary(A: np.ndarray, B: np.ndarray, *, broadcast: int = 0, axis: int | None = None,
                   consumed_inputs: list[int] | None = None) -> tuple[np.ndarray]:
            check(A, B)
            return (_apply_binary(op, fn, A, legacy_broadcast(op, A, B, broadcast, axis)),)
    else:
        def binary(A: np.ndarray, B: np.ndarray, *,
                   ctx: KernelContext | None = None) -> tuple[np.ndarray]:
            check(A, B)
            if A.shape != B.shape:
                check_broadcast_alloc(op, (A, B), A.dtype, tensor_limit(ctx))
            return (_apply_binary(op, fn, A, B),)

    binary.__name__ = binary.__qualname__ = op + ("_legacy" if legacy else "")
    binary.__doc__ = (f"{op}: element-wise {getattr(fn, '__name__', fn)} of A and B with "
                      + ("the opset 1-6 broadcast/axis rules." if legacy
                         else "multidirectional broadcasting."))
    return binary


for _op, (_fn, _allowed, _versions, _legacy_versions) in _BINARY.items():
    kernel(_op, versions=_versions)(_make_binary(_op, _fn, _allowed, False))
    if _legacy_versions:
        kernel(_op, versions=_legacy_versions)(_make_binary(_op, _fn, _allowed, True))


def _mod_kernel(A: np.ndarray, B: np.ndarray, fmod: int, version: int,
                ctx: KernelContext | None) -> np.ndarray:
    check_dtype("Mod", A, NUMERIC_TYPES, "A")
    check_same_dtype("Mod", (A, B), ("A", "B"))
    if A.shape != B.shape:
        check_broadcast_alloc("Mod", (A, B), A.dtype, tensor_limit(ctx))
    return _apply_binary("Mod", _mod, A, B, int(fmod), version)


@kernel("Mod", versions=(10, 13))
def Mod_10(A: np.ndarray, B: np.ndarray, *, fmod: int = 0,
           ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Mod-10/13: element-wise remainder with broadcasting; the sign follows B (fmod=0, integers
    only) or A (fmod=1)."""
    return (_mod_kernel(A, B, fmod, 10, ctx),)


@kernel("Mod", versions=(28,))
def Mod(A: np.ndarray, B: np.ndarray, *, fmod: int = 0,
        ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Mod-28: element-wise remainder with broadcasting; the sign follows B (fmod=0) or A
    (fmod=1)."""
    return (_mod_kernel(A, B, fmod, 28, ctx),)


def _bitshift_kernel(X: np.ndarray, Y: np.ndarray, direction: str, allowed: frozenset[np.dtype],
                     ctx: KernelContext | None) -> np.ndarray:
    check_dtype("BitShift", X, allowed, "X")
    check_same_dtype("BitShift", (X, Y), ("X", "Y"))
    if X.shape != Y.shape:
        check_broadcast_alloc("BitShift", (X, Y), X.dtype, tensor_limit(ctx))
    return _apply_binary("BitShift", _bitshift, X, Y, direction)


@kernel("BitShift", versions=(11,))
def BitShift_11(X: np.ndarray, Y: np.ndarray, *, direction: str = "",
                ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """BitShift-11: unsigned X shifted LEFT or RIGHT by Y bits."""
    return (_bitshift_kernel(X, Y, direction, UNSIGNED_INT_TYPES, ctx),)


@kernel("BitShift", versions=(28,))
def BitShift(X: np.ndarray, Y: np.ndarray, *, direction: str = "",
             ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """BitShift-28: X shifted LEFT or RIGHT by Y bits (arithmetic right shift for signed types)."""
    return (_bitshift_kernel(X, Y, direction, INT_TYPES, ctx),)


# ---------------------------------------------------------------------------------------------
# Variadic
# ---------------------------------------------------------------------------------------------

_VARIADIC: dict[str, tuple[Callable[..., np.ndarray], frozenset[np.dtype], tuple[int, ...]]] = {
    "Sum": (np.add, FLOAT_TYPES, (8, 13)),
    "Max": (np.maximum, NUMERIC_TYPES, (8, 12, 13)),  # maximum/minimum propagate NaN
    "Min": (np.minimum, NUMERIC_TYPES, (8, 12, 13)),
    "Mean": (np.add, FLOAT_TYPES, (8, 13)),
}


def _variadic(op: str, fn: Callable[..., np.ndarray], allowed: frozenset[np.dtype],
              inputs: tuple[np.ndarray, ...], same_shape: bool, limit: int) -> np.ndarray:
    if not inputs:
        raise ExecutionError(f"{op}: needs at least one input")
    names = [f"data_{i}" for i in range(len(inputs))]
    check_dtype(op, inputs[0], allowed, "data_0")
    check_same_dtype(op, inputs, names)
    dtype = inputs[0].dtype
    if same_shape:
        for x, n in zip(inputs[1:], names[1:]):
            if x.shape != inputs[0].shape:
                raise ExecutionError(f"{op}: before opset 8 all inputs must have the same "
                                     f"shape; data_0 is {list(inputs[0].shape)} but {n} is "
                                     f"{list(x.shape)}")
        shape = inputs[0].shape
    elif all(x.shape == inputs[0].shape for x in inputs[1:]):
        shape = inputs[0].shape
    else:
        shape = broadcast_shape(op, *(x.shape for x in inputs))
        check_broadcast_alloc(op, inputs, dtype, limit)
    # Sums of float16/bfloat16 accumulate in float32 and round once.
    work = FLOAT32 if (op in ("Sum", "Mean") and dtype in LOW_PRECISION) else None

    def w(x: np.ndarray) -> np.ndarray:
        return x if work is None else x.astype(work)

    with np.errstate(all="ignore"):
        if len(inputs) == 1:
            acc = np.array(inputs[0], dtype=work or dtype)  # a copy: outputs never alias inputs
        else:
            acc = np.asarray(fn(w(inputs[0]), w(inputs[1])))
            if len(inputs) > 2 and acc.shape != shape:
                acc = np.array(np.broadcast_to(acc, shape))
            for x in inputs[2:]:
                fn(acc, w(x), out=acc)
        if op == "Mean":
            np.divide(acc, acc.dtype.type(len(inputs)), out=acc)
    return acc.astype(dtype, copy=False)


def _make_variadic(op: str, fn: Callable[..., np.ndarray], allowed: frozenset[np.dtype],
                   same_shape: bool) -> Callable[..., tuple[np.ndarray]]:
    if same_shape:
        def variadic(*inputs: np.ndarray,
                     consumed_inputs: list[int] | None = None) -> tuple[np.ndarray]:
            return (_variadic(op, fn, allowed, inputs, True, 1 << 62),)
    else:
        def variadic(*inputs: np.ndarray, ctx: KernelContext | None = None) -> tuple[np.ndarray]:
            return (_variadic(op, fn, allowed, inputs, False, tensor_limit(ctx)),)
    variadic.__name__ = variadic.__qualname__ = op + ("_legacy" if same_shape else "")
    variadic.__doc__ = (f"{op}: element-wise {op.lower()} of all inputs"
                        + (" (equal shapes)." if same_shape
                           else " with multidirectional broadcasting."))
    return variadic


for _op, (_fn, _allowed, _versions) in _VARIADIC.items():
    kernel(_op, versions=_versions)(_make_variadic(_op, _fn, _allowed, False))
    kernel(_op, versions=(1, 6))(_make_variadic(_op, _fn, _allowed, True))


# ---------------------------------------------------------------------------------------------
# Where, Clip
# ---------------------------------------------------------------------------------------------


@kernel("Where", versions=(9, 16))
def Where(condition: np.ndarray, X: np.ndarray, Y: np.ndarray, *,
          ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Where: X where condition is true, else Y, with multidirectional broadcasting of all three."""
    check_dtype("Where", condition, BOOL_TYPES, "condition")
    check_same_dtype("Where", (X, Y), ("X", "Y"))
    if not (condition.shape == X.shape == Y.shape):
        broadcast_shape("Where", condition.shape, X.shape, Y.shape)
        check_broadcast_alloc("Where", (condition, X, Y), X.dtype, tensor_limit(ctx))
    return (np.where(condition, X, Y),)


def _clip(x: np.ndarray, lo: np.ndarray | float | None,
          hi: np.ndarray | float | None) -> np.ndarray:
    """Min(hi, Max(x, lo)): when lo > hi every element becomes hi, as the spec says; NaN stays."""
    if lo is None and hi is None:
        return x.copy()
    typ = x.dtype.type
    with np.errstate(all="ignore"):  # FLT_MAX defaults overflow to inf in float16, as intended
        # np.clip with two bounds is NumPy's fastest form (faster than maximum alone), so an
        # absent bound becomes the type's extreme
        if lo is None:
            lo = -np.inf if x.dtype.kind not in "iu" else np.iinfo(x.dtype).min
        if hi is None:
            hi = np.inf if x.dtype.kind not in "iu" else np.iinfo(x.dtype).max
        lo = lo if isinstance(lo, np.ndarray) else typ(lo)
        hi = hi if isinstance(hi, np.ndarray) else typ(hi)
        # (np.clip computes bfloat16 in float32; the cast back is exact)
        return np.asarray(np.clip(x, lo, hi)).astype(x.dtype, copy=False)


@kernel("Clip", versions=(1,))
def Clip_1(input: np.ndarray, *, min: float | None = None, max: float | None = None,
           consumed_inputs: list[int] | None = None) -> tuple[np.ndarray]:
    """Clip-1: limits input to [min, max] (attributes; an absent bound does not clip)."""
    check_dtype("Clip", input, FLOAT_TYPES)
    return (_clip(input, min, max),)


_FLT_MAX = float(np.finfo(np.float32).max)


@kernel("Clip", versions=(6,))
def Clip_6(input: np.ndarray, *, min: float = -_FLT_MAX,
           max: float = _FLT_MAX) -> tuple[np.ndarray]:
    """Clip-6: limits input to [min, max] (attributes, defaulting to the float range)."""
    check_dtype("Clip", input, FLOAT_TYPES)
    return (_clip(input, min, max),)


def _clip_bound(bound: np.ndarray | None, x: np.ndarray, name: str) -> np.ndarray | None:
    if bound is None:
        return None
    if bound.size != 1:
        raise ExecutionError(f"Clip: input {name} must be a scalar, got shape {list(bound.shape)}")
    if bound.dtype != x.dtype:
        raise ExecutionError(f"Clip: input {name} has element type {bound.dtype} but input has "
                             f"{x.dtype}; they must be the same")
    return bound.reshape(())


@kernel("Clip", versions=(11, 12, 13))
def Clip(input: np.ndarray, min: np.ndarray | None = None,
         max: np.ndarray | None = None) -> tuple[np.ndarray]:
    """Clip-11+: limits input to [min, max] given as optional scalar inputs."""
    check_dtype("Clip", input, NUMERIC_TYPES)
    return (_clip(input, _clip_bound(min, input, "min"), _clip_bound(max, input, "max")),)
