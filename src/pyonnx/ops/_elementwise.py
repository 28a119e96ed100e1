"""Helpers shared by the element-wise and activation kernels.

Broadcasting (multidirectional, unidirectional and the legacy ``broadcast``/``axis`` form of
opsets 1 to 6), dtype families, the float32 working precision for float16/bfloat16, and a
vectorized ``erf`` (NumPy has none, and SciPy is not a run-time dependency) with the exact Gelu
built on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import ml_dtypes
import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops._common import check_alloc

__all__ = [
    "FLOAT_TYPES",
    "FLOAT8_TYPES",
    "SIGNED_INT_TYPES",
    "UNSIGNED_INT_TYPES",
    "INT_TYPES",
    "NUMERIC_TYPES",
    "BOOL_TYPES",
    "LOW_PRECISION",
    "FLOAT32",
    "BFLOAT16",
    "check_dtype",
    "check_same_dtype",
    "broadcast_shape",
    "check_broadcast_alloc",
    "check_unidirectional",
    "legacy_broadcast",
    "erf",
    "erf_plus_one",
    "gelu_erf",
]

FLOAT32 = np.dtype(np.float32)
BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
# float16 and bfloat16 are computed in float32 wherever a kernel chains several operations:
# NumPy's float16 arithmetic is an order of magnitude slower than float32, ml_dtypes' bfloat16
# does not take part in NumPy's weak scalar promotion, and one final rounding is more accurate.
LOW_PRECISION = frozenset({np.dtype(np.float16), BFLOAT16})
FLOAT_TYPES = frozenset({np.dtype(np.float16), FLOAT32, np.dtype(np.float64), BFLOAT16})
FLOAT8_TYPES = frozenset(np.dtype(t) for t in (ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz,
                                                ml_dtypes.float8_e5m2, ml_dtypes.float8_e5m2fnuz))
SIGNED_INT_TYPES = frozenset(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
UNSIGNED_INT_TYPES = frozenset(np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64))
INT_TYPES = SIGNED_INT_TYPES | UNSIGNED_INT_TYPES
NUMERIC_TYPES = INT_TYPES | FLOAT_TYPES
BOOL_TYPES = frozenset({np.dtype(np.bool_)})


def check_dtype(op: str, x: np.ndarray, allowed: frozenset[np.dtype], what: str = "input") -> None:
    """Raise if ``x``'s element type is not one the operator accepts (NumPy would silently
    promote, say, Sqrt of int32 to float64 and give the wrong output type)."""
    if x.dtype not in allowed:
        raise ExecutionError(f"{op}: {what} has element type {x.dtype}, which {op} does not accept "
                             f"(allowed: {', '.join(sorted(str(d) for d in allowed))})")


def check_same_dtype(op: str, arrays: Sequence[np.ndarray], names: Sequence[str]) -> None:
    """All inputs bound to one type parameter must have the same element type."""
    first = arrays[0].dtype
    for a, n in zip(arrays[1:], names[1:]):
        if a.dtype != first:
            raise ExecutionError(f"{op}: input {n} has element type {a.dtype} but {names[0]} has "
                                 f"{first}; they must be the same")


def broadcast_shape(op: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The multidirectional (NumPy-style) broadcast of ``shapes``, or an error naming them."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ExecutionError(f"{op}: shapes {', '.join(str(list(s)) for s in shapes)} cannot be "
                             f"broadcast together (multidirectional broadcasting)") from None


def check_broadcast_alloc(op: str, arrays: Sequence[np.ndarray], dtype: np.dtype,
                          limit: int) -> None:
    """Refuse a broadcast whose output would exceed ``limit`` bytes, before allocating it.

    The output of a broadcast holds at most the product of the input sizes, so the exact shape is
    computed only when that cheap bound is above the limit.
    """
    bound = max(np.dtype(dtype).itemsize, 1)
    for a in arrays:
        bound *= max(a.size, 1)
    if bound > limit:
        check_alloc(broadcast_shape(op, *(a.shape for a in arrays)), dtype, limit, f"{op} output")


def check_unidirectional(op: str, target: tuple[int, ...], shape: tuple[int, ...],
                         what: str) -> None:
    """``shape`` must broadcast to ``target`` without changing it (unidirectional broadcasting)."""
    try:
        ok = tuple(np.broadcast_shapes(target, shape)) == tuple(target)
    except ValueError:
        ok = False
    if not ok:
        raise ExecutionError(f"{op}: {what} of shape {list(shape)} cannot be broadcast to shape "
                             f"{list(target)} (unidirectional broadcasting)")


def legacy_broadcast(op: str, a: np.ndarray, b: np.ndarray, broadcast: int,
                     axis: int | None) -> np.ndarray:
    """``b`` as a view that NumPy broadcasts to ``a``'s shape, per the opset 1-6 rules.

    Without ``broadcast=1`` the shapes must be equal. With it, ``b``'s dims line up with a
    contiguous run of ``a``'s dims, the trailing ones (suffix matching) or those starting at
    ``axis``, each equal to ``a``'s or 1 (exporters of that era relied on 1-dim expansion, which
    the spec text calls unsupported; the backend suite's models use it); a one-element ``b`` is
    always accepted.
    """
    if a.shape == b.shape:
        return b
    if not broadcast:
        raise ExecutionError(f"{op}: inputs have shapes {list(a.shape)} and {list(b.shape)}; "
                             f"before opset 7 they must be equal unless the attribute "
                             f"broadcast=1 is set")
    if b.size == 1:
        return b.reshape(())
    if b.ndim > a.ndim:
        raise ExecutionError(f"{op}: with broadcast=1, B of shape {list(b.shape)} has a higher "
                             f"rank than A of shape {list(a.shape)}")
    start = a.ndim - b.ndim if axis is None else int(axis)
    if start < 0:
        start += a.ndim
    if not (0 <= start <= a.ndim - b.ndim
            and all(db in (1, da) for db, da in zip(b.shape, a.shape[start:]))):
        where = "trailing dims" if axis is None else f"dims starting at axis {axis}"
        raise ExecutionError(f"{op}: with broadcast=1, B of shape {list(b.shape)} must match "
                             f"(or have 1 in) the {where} of A of shape {list(a.shape)}")
    return b.reshape(b.shape + (1,) * (a.ndim - start - b.ndim))


# --- erf ---------------------------------------------------------------------------------------
# erf(x) = x * P(x^2) for |x| < 1; above, erfc(|x|) = exp(-x^2) * G(1/|x| - m), where G
# approximates erfc(x) * exp(x^2), a smooth slowly varying function, and erf = sign(x) * (1 - erfc).
# The coefficients are near-minimax Chebyshev fits computed for pyonnx with mpmath (50 digits):
# P on t = x^2 in [0, 1]; G on 1/x - m for x in [1, c], c being where erf rounds to exactly 1 in
# the target precision (6 for float64, 4 for float32). Beyond c the polynomial is extrapolated; it
# stays bounded there (|x| -> inf maps into a finite interval) and exp(-x^2) makes the product
# negligible against 1, so no clamping is needed (for 1 + erf on the negative side it keeps ~1e-3
# relative accuracy down to values ~1e-40). Measured maximum relative error of erf, evaluated
# in the target precision: 1.4 ulp (float32) and 1.2 ulp (float64), normal numbers; the unit
# tests check it against math.erf.
_ERF_P64 = (
    1.1283791670955126, -0.37612638903183543, 0.11283791670945006, -0.02686617064323777,
    0.0052239776071164225, -0.0008548325975389692, 0.00012055294904839707,
    -1.492473690741966e-05, 1.6447424703317362e-06, -1.6208483801871705e-07,
    1.3720064546777686e-08, -7.795898827002142e-10,
)
_ERF_G64 = (
    0.28972211632346423, 0.39687045603027304, -0.17758685092855078, 0.03899932735718061,
    0.03431997862942735, -0.058794960120704655, 0.05075799563691019, -0.025356987093996343,
    -0.004454343006751723, 0.02874967927047561, -0.04119961131407306, 0.039309866181363444,
    -0.02423938064521924, 8.266548173737836e-05, 0.026787661188521678, -0.04751900964768695,
    0.055211971351097365, -0.055847955159806055, 0.049424393623161214, 0.007945955458625236,
    -0.11687443541414241, 0.14546020072464388, -0.05748129436398578,
)
_ERF_M64 = 0.5833333333333334  # (1/1 + 1/6) / 2
_ERF_P32 = (
    1.1283791261787373, -0.37612343775327806, 0.11280316652505075, -0.02671505423226643,
    0.004921762027877231, -0.0005648059865503044,
)
_ERF_G32 = (
    0.3059530069238784, 0.382283684766419, -0.17239797770381918, 0.043785230188042895,
    0.023425013859936613, -0.04758712541336812, 0.04270744711046179, -0.019605029369706144,
)
_ERF_M32 = 0.625  # (1/1 + 1/4) / 2
def _horner(coefs: Sequence[float], t: np.ndarray) -> np.ndarray:
    """sum(coefs[k] * t**k) in t's precision, in place on one new array."""
    typ = t.dtype.type
    r = np.multiply(t, typ(coefs[-1]))
    for c in coefs[-2:0:-1]:
        r += typ(c)
        r *= t
    r += typ(coefs[0])
    return r


def _erf(x: np.ndarray, plus_one: bool) -> np.ndarray:
    if x.dtype == np.float64:
        p, g, m = _ERF_P64, _ERF_G64, _ERF_M64
    elif x.dtype == np.float32:
        p, g, m = _ERF_P32, _ERF_G32, _ERF_M32
    else:
        raise TypeError(f"erf needs float32 or float64, got {x.dtype}")
    if x.ndim == 0:
        return _erf(x.reshape(1), plus_one).reshape(())
    typ = x.dtype.type
    # C order, so that the flat views below are views (writes through them reach ``out``).
    x = x if x.flags.c_contiguous else x.copy(order="C")
    with np.errstate(all="ignore"):
        out = _horner(p, np.square(x))
        out *= x
        if plus_one:
            out += typ(1)
        # Only the elements with |x| >= 1 (a minority in typical activations) take this branch.
        xf = x.reshape(-1)
        big = np.flatnonzero(np.abs(xf) >= 1)
        if big.size:
            xb = xf[big]
            neg = np.signbit(xb) if plus_one else None
            np.abs(xb, out=xb)
            e = np.square(xb)
            np.negative(e, out=e)
            np.exp(e, out=e)
            u = np.divide(typ(1), xb)
            u -= typ(m)
            e *= _horner(g, u)  # erfc(|x|)
            r = np.subtract(typ(1), e)
            if plus_one:
                # 1 + erf(x) is 2 - erfc(x) for x >= 1 and erfc(|x|) (no cancellation) for
                # x <= -1: computed as e + pos * 2 * (1 - e), an arithmetic blend (a masked
                # select on unpredictable signs costs ten times more)
                r *= np.logical_not(neg)
                r *= typ(2)
                r += e
            else:
                np.copysign(r, xf[big], out=r)
            out.reshape(-1)[big] = r
    return out


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, element-wise, for float32 or float64 ``x`` (same dtype out)."""
    return _erf(x, False)


def erf_plus_one(x: np.ndarray) -> np.ndarray:
    """1 + erf(x) (that is, erfc(-x)) without the cancellation of adding 1 to erf(x) near -1;
    float32 or float64. Gelu needs it for accurate negative tails."""
    return _erf(x, True)


def gelu_erf(x: np.ndarray) -> np.ndarray:
    """Gelu without approximation, 0.5 * x * (1 + erf(x / sqrt(2))), for float32 or float64 ``x``
    (same dtype out); the negative tail keeps its relative accuracy (see ``erf_plus_one``)."""
    typ = x.dtype.type
    with np.errstate(all="ignore"):
        y = erf_plus_one(np.multiply(x, typ(1 / np.sqrt(2))))
        y *= x
        y *= typ(0.5)
    return y
