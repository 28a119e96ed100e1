"""Activation functions (Relu, Sigmoid, Gelu, ...), PRelu, Shrink, and Softmax/LogSoftmax/Hardmax.

Every float kernel computes in the input's precision, except float16/bfloat16, which are computed
in float32 and rounded once at the end (see ``_elementwise.LOW_PRECISION``). Intermediate arrays
are reused in place (``out=``) so a kernel allocates about one array beyond its output.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops._common import normalize_axis
from pyonnx.ops._elementwise import (
    BFLOAT16,
    FLOAT32,
    FLOAT_TYPES,
    LOW_PRECISION,
    NUMERIC_TYPES,
    SIGNED_INT_TYPES,
    check_dtype,
    check_same_dtype,
    check_unidirectional,
    gelu_erf,
)
from pyonnx.ops.registry import kernel

Array = np.ndarray


def _float_op(op: str, X: Array, fn: Callable[[Array], Array]) -> Array:
    """Run ``fn`` on X in its working precision and return a fresh array of X's type and shape.

    ``fn`` receives an array of at least one dimension (so ``out=`` works; a ufunc on a 0-d
    array returns a NumPy scalar) and may return an array it allocated itself or reused in place,
    but never its argument unchanged when that is X.
    """
    if X.dtype not in FLOAT_TYPES:
        check_dtype(op, X, FLOAT_TYPES)
    w = X.astype(FLOAT32) if X.dtype in LOW_PRECISION else X
    if w.ndim == 0:
        w = w.reshape(1)
    with np.errstate(all="ignore"):  # overflow to inf / underflow to 0 are intended
        y = fn(w)
    return y.reshape(X.shape).astype(X.dtype, copy=False)


def _pos(x: Array) -> Array:
    """max(x, 0) as a new array (np.clip with two bounds is NumPy's fastest form of it)."""
    hi = np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).max
    return np.clip(x, x.dtype.type(0), x.dtype.type(hi))


def _neg(x: Array) -> Array:
    """min(x, 0) as a new array."""
    lo = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    return np.clip(x, x.dtype.type(lo), x.dtype.type(0))


def _sigmoid(w: Array, alpha: float = 1.0) -> Array:
    """sigmoid(alpha * w) = 1 / (1 + exp(-alpha * w)) in one new array.

    Stable for all inputs: exp(-alpha * w) overflowing to inf gives exactly 0, the true value
    being below the smallest normal number there.
    """
    typ = w.dtype.type
    t = np.negative(w) if alpha == 1 else np.multiply(w, typ(-alpha))
    np.exp(t, out=t)
    t += typ(1)
    return np.divide(typ(1), t, out=t)


def _log1p(e: Array) -> Array:
    """log(1 + e) for e >= 0, accurate to a few ulps, in a new array.

    np.log1p is several times slower than np.log, so this uses log(u) * e / (u - 1) with
    u = 1 + e rounded (the rounding error of u cancels in the quotient); where u rounds to
    exactly 1, log(u) is 0 and the result is e itself.
    """
    typ = e.dtype.type
    u = np.add(e, typ(1))
    d = np.subtract(u, typ(1))
    exact_one = d == 0
    np.clip(d, typ(np.finfo(e.dtype).tiny), typ(np.inf), out=d)
    np.log(u, out=u)
    u *= e
    u /= d
    u += e * exact_one
    return u


def _softplus(w: Array) -> Array:
    """log(1 + exp(x)) as max(x, 0) + log1p(exp(-|x|)): no overflow for large |x|."""
    t = np.abs(w)
    np.negative(t, out=t)
    np.exp(t, out=t)
    t = _log1p(t)
    t += _pos(w)
    return t


def _exp_minus_one_neg(w: Array, scale: float = 1.0) -> Array:
    """exp(min(w, 0) / scale) - 1, the negative branch of Elu/Selu/Celu, in a new array.

    exp(.) - 1 rather than np.expm1 (ten times slower in NumPy), as the spec's formulas read:
    the absolute error stays below one ulp of 1.
    """
    typ = w.dtype.type
    t = _neg(w)
    if scale != 1:
        t /= typ(scale)
    np.exp(t, out=t)
    t -= typ(1)
    return t


# --- simple activations ---------------------------------------------------------------------


@kernel("Relu", versions=(1, 6, 13, 14))
def Relu(X: Array, *, consumed_inputs: list[int] | None = None) -> tuple[Array]:
    """Relu: max(0, x); integer types too since version 14."""
    if X.dtype not in FLOAT_TYPES and X.dtype not in SIGNED_INT_TYPES:
        check_dtype("Relu", X, FLOAT_TYPES | SIGNED_INT_TYPES)
    if X.dtype == BFLOAT16:  # np.clip would return float32 for ml_dtypes' bfloat16
        return (np.asarray(np.maximum(X, X.dtype.type(0))),)
    return (np.asarray(_pos(X)),)


@kernel("LeakyRelu", versions=(1, 6, 16))
def LeakyRelu(X: Array, *, alpha: float = 0.009999999776482582,
              consumed_inputs: list[int] | None = None) -> tuple[Array]:
    """LeakyRelu: x for x >= 0, alpha * x otherwise."""

    def f(w: Array) -> Array:
        a = w.dtype.type(alpha)
        y = np.multiply(w, a)
        # for 0 <= alpha <= 1 the result is max(x, alpha*x); for alpha > 1 it is min(x, alpha*x)
        if 0 <= alpha <= 1:
            return np.maximum(w, y, out=y)
        if alpha > 1:
            return np.minimum(w, y, out=y)
        return np.where(w < 0, y, w)

    return (_float_op("LeakyRelu", X, f),)


@kernel("Elu", versions=(1, 6, 22))
def Elu(X: Array, *, alpha: float = 1.0, consumed_inputs: list[int] | None = None) -> tuple[Array]:
    """Elu: x for x >= 0, alpha * (exp(x) - 1) otherwise."""

    def f(w: Array) -> Array:
        # max(x, 0) + alpha * (exp(min(x, 0)) - 1): each term is 0 on the other side, which
        # avoids a masked select (slow on unpredictable signs)
        t = _exp_minus_one_neg(w)
        t *= w.dtype.type(alpha)
        t += _pos(w)
        return t

    return (_float_op("Elu", X, f),)


def _selu(X: Array, alpha: float, gamma: float) -> Array:
    def f(w: Array) -> Array:
        typ = w.dtype.type
        t = _exp_minus_one_neg(w)
        t *= typ(alpha)
        t += _pos(w)
        t *= typ(gamma)
        return t

    return _float_op("Selu", X, f)


@kernel("Selu", versions=(1,))
def Selu_1(X: Array, *, alpha: float = 1.673200011253357, gamma: float = 1.0506999492645264,
           consumed_inputs: list[int] | None = None) -> tuple[Array]:
    """Selu-1: gamma * x for x > 0, gamma * alpha * (exp(x) - 1) otherwise (version 1 had
    4-digit defaults)."""
    return (_selu(X, alpha, gamma),)


@kernel("Selu", versions=(6, 22))
def Selu(X: Array, *, alpha: float = 1.6732631921768188,
         gamma: float = 1.0507010221481323) -> tuple[Array]:
    """Selu: gamma * x for x > 0, gamma * alpha * (exp(x) - 1) otherwise."""
    return (_selu(X, alpha, gamma),)


@kernel("Celu", versions=(12, 28))
def Celu(X: Array, *, alpha: float = 1.0) -> tuple[Array]:
    """Celu: max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    if alpha == 0:
        raise ExecutionError("Celu: attribute alpha must not be 0")

    def f(w: Array) -> Array:
        # for either sign of alpha, min(0, alpha * (exp(x / alpha) - 1)) is
        # alpha * (exp(min(x, 0) / alpha) - 1), which cannot overflow
        t = _exp_minus_one_neg(w, alpha)
        t *= w.dtype.type(alpha)
        t += _pos(w)
        return t

    return (_float_op("Celu", X, f),)


@kernel("HardSigmoid", versions=(1, 6, 22))
def HardSigmoid(X: Array, *, alpha: float = 0.20000000298023224, beta: float = 0.5,
                consumed_inputs: list[int] | None = None) -> tuple[Array]:
    """HardSigmoid: max(0, min(1, alpha * x + beta))."""

    def f(w: Array) -> Array:
        typ = w.dtype.type
        t = np.multiply(w, typ(alpha))
        t += typ(beta)
        return np.clip(t, typ(0), typ(1), out=t)

    return (_float_op("HardSigmoid", X, f),)


@kernel("HardSwish", versions=(14, 22))
def HardSwish(X: Array) -> tuple[Array]:
    """HardSwish: x * max(0, min(1, x / 6 + 0.5))."""

    def f(w: Array) -> Array:
        typ = w.dtype.type
        t = np.multiply(w, typ(1 / 6))
        t += typ(0.5)
        np.clip(t, typ(0), typ(1), out=t)
        t *= w
        return t

    return (_float_op("HardSwish", X, f),)


@kernel("Sigmoid", versions=(1, 6, 13))
def Sigmoid(X: Array, *, consumed_inputs: list[int] | None = None) -> tuple[Array]:
    """Sigmoid: 1 / (1 + exp(-x))."""
    return (_float_op("Sigmoid", X, _sigmoid),)


@kernel("Tanh", versions=(1, 6, 13))
def Tanh(input: Array, *, consumed_inputs: list[int] | None = None) -> tuple[Array]:
    """Tanh: hyperbolic tangent."""
    return (_float_op("Tanh", input, np.tanh),)


@kernel("Softplus", versions=(1, 22))
def Softplus(X: Array) -> tuple[Array]:
    """Softplus: log(exp(x) + 1)."""
    return (_float_op("Softplus", X, _softplus),)


@kernel("Softsign", versions=(1, 22))
def Softsign(input: Array) -> tuple[Array]:
    """Softsign: x / (1 + |x|)."""

    def f(w: Array) -> Array:
        t = np.abs(w)
        t += 1
        return np.divide(w, t, out=t)

    return (_float_op("Softsign", input, f),)


@kernel("ThresholdedRelu", versions=(10, 22))
def ThresholdedRelu(X: Array, *, alpha: float = 1.0) -> tuple[Array]:
    """ThresholdedRelu: x for x > alpha, 0 otherwise."""
    return (_float_op("ThresholdedRelu", X,
                      lambda w: np.where(w > w.dtype.type(alpha), w, w.dtype.type(0))),)


@kernel("Mish", versions=(18, 22))
def Mish(X: Array) -> tuple[Array]:
    """Mish: x * tanh(softplus(x))."""

    def f(w: Array) -> Array:
        # tanh(log(1 + n)) with n = exp(x) is n (n + 2) / (n (n + 2) + 2): one exp instead of
        # exp, log1p and tanh, and no cancellation for negative x. Above x = 20 the factor is 1
        # to double precision, so clamping there keeps n^2 finite.
        typ = w.dtype.type
        n = np.clip(w, typ(-np.inf), typ(20))
        np.exp(n, out=n)
        p = np.add(n, typ(2))
        p *= n
        n = np.add(p, typ(2), out=n)
        p /= n
        p *= w
        return p

    return (_float_op("Mish", X, f),)


@kernel("Gelu", versions=(20,))
def Gelu(X: Array, *, approximate: str = "none") -> tuple[Array]:
    """Gelu: 0.5 * x * (1 + erf(x / sqrt(2))), or its tanh approximation."""
    if approximate == "none":
        f = gelu_erf
    elif approximate == "tanh":
        def f(w: Array) -> Array:
            typ = w.dtype.type
            t = np.square(w)
            t *= typ(0.044715)
            t += typ(1)
            t *= w
            t *= typ(math.sqrt(2 / math.pi))  # sqrt(2/pi) * (x + 0.044715 x^3)
            np.tanh(t, out=t)
            t += typ(1)
            t *= w
            t *= typ(0.5)
            return t
    else:
        raise ExecutionError(f"Gelu: attribute approximate must be 'none' or 'tanh', "
                             f"got {approximate!r}")
    return (_float_op("Gelu", X, f),)


@kernel("Swish", versions=(24,))
def Swish(X: Array, *, alpha: float = 1.0) -> tuple[Array]:
    """Swish: x * sigmoid(alpha * x)."""

    def f(w: Array) -> Array:
        t = _sigmoid(w, alpha)
        t *= w
        return t

    return (_float_op("Swish", X, f),)


@kernel("SwiGLU", versions=(28,))
def SwiGLU(A: Array, B: Array, *, alpha: float = 1.0) -> tuple[Array]:
    """SwiGLU: Swish_alpha(A) * B for A and B of identical shapes (no broadcasting)."""
    check_same_dtype("SwiGLU", (A, B), ("A", "B"))
    if A.shape != B.shape:
        raise ExecutionError(f"SwiGLU: A of shape {list(A.shape)} and B of shape {list(B.shape)} "
                             f"must have identical shapes (no broadcasting)")
    Bw = B.astype(FLOAT32) if B.dtype in LOW_PRECISION else B

    def f(w: Array) -> Array:
        t = _sigmoid(w, alpha)
        t *= w
        t *= Bw.reshape(t.shape)
        return t

    return (_float_op("SwiGLU", A, f),)


# --- PRelu, Shrink ---------------------------------------------------------------------------


def _prelu(X: Array, slope: Array) -> Array:
    check_dtype("PRelu", X, NUMERIC_TYPES, "X")
    check_same_dtype("PRelu", (X, slope), ("X", "slope"))
    if slope.shape != X.shape:
        check_unidirectional("PRelu", X.shape, slope.shape, "slope")

    def f(w: Array) -> Array:
        # max(x, 0) + slope * min(x, 0): an arithmetic blend instead of a masked select
        t = _neg(w)
        t *= slope if slope.dtype == w.dtype else slope.astype(w.dtype)
        t += _pos(w)
        return t

    if X.dtype in FLOAT_TYPES:
        return _float_op("PRelu", X, f)
    return f(X.reshape(1) if X.ndim == 0 else X).reshape(X.shape)


@kernel("PRelu", versions=(1, 6))
def PRelu_1(X: Array, slope: Array, *, consumed_inputs: list[int] | None = None) -> tuple[Array]:
    """PRelu-1/6: x for x >= 0, slope * x otherwise; a 1-D slope of X.shape[1] values is one
    value per channel (axis 1, as Caffe2 defined it), a one-element slope is shared."""
    if slope.ndim == 1 and X.ndim > 2 and slope.shape[0] == X.shape[1] != 1:
        slope = slope.reshape((-1,) + (1,) * (X.ndim - 2))
    return (_prelu(X, slope),)


@kernel("PRelu", versions=(7, 9, 16))
def PRelu(X: Array, slope: Array) -> tuple[Array]:
    """PRelu: x for x >= 0, slope * x otherwise; slope broadcasts unidirectionally to X."""
    return (_prelu(X, slope),)


@kernel("Shrink", versions=(9,))
def Shrink(input: Array, *, bias: float = 0.0, lambd: float = 0.5) -> tuple[Array]:
    """Shrink: x + bias for x < -lambd, x - bias for x > lambd, 0 otherwise."""
    check_dtype("Shrink", input, NUMERIC_TYPES)
    x = input
    # integer inputs are computed in double (bias and lambd are floats) and cast back
    if x.dtype.kind in "iu":
        work = np.dtype(np.float64)
    else:
        work = FLOAT32 if x.dtype in LOW_PRECISION else x.dtype
    w = x.astype(work, copy=False)
    typ = work.type
    with np.errstate(all="ignore"):
        y = np.where(w < typ(-lambd), w + typ(bias),
                     np.where(w > typ(lambd), w - typ(bias), typ(0)))
    return (y.astype(x.dtype, copy=False),)


# --- Softmax family --------------------------------------------------------------------------

def _softmax(w: Array, axis: int, dtype: np.dtype) -> Array:
    y = np.subtract(w, np.max(w, axis=axis, keepdims=True))
    np.exp(y, out=y)
    if dtype != w.dtype:
        # float16/bfloat16 computed in float32: round Exp's output and the sum to T as the
        # operator's function body does (its Exp, ReduceSum and Div each produce T), which the
        # backend tests' fp16 attention data depend on; the sum still accumulates in float32.
        y = y.astype(dtype).astype(w.dtype)
        s = np.sum(y, axis=axis, keepdims=True).astype(dtype).astype(w.dtype)
    else:
        s = np.sum(y, axis=axis, keepdims=True)
    y /= s
    return y


def _log_softmax(w: Array, axis: int, dtype: np.dtype) -> Array:
    y = np.subtract(w, np.max(w, axis=axis, keepdims=True))
    y -= np.log(np.sum(np.exp(y), axis=axis, keepdims=True))
    return y


def _hardmax(w: Array, axis: int, dtype: np.dtype) -> Array:
    y = np.zeros(w.shape, dtype=w.dtype)
    # argmax returns the first maximum, as the spec requires
    np.put_along_axis(y, np.expand_dims(np.argmax(w, axis=axis), axis), w.dtype.type(1), axis)
    return y


_SOFTMAX_FNS: dict[str, Callable[[Array, int, np.dtype], Array]] = {
    "Softmax": _softmax,
    "LogSoftmax": _log_softmax,
    "Hardmax": _hardmax,
}


def _along_axis(op: str, X: Array, axis: int, fn: Callable[[Array, int, np.dtype], Array]) -> Array:
    """Apply ``fn`` along one axis (opset 13 semantics)."""
    if X.dtype not in FLOAT_TYPES:
        check_dtype(op, X, FLOAT_TYPES)
    ax = normalize_axis(axis, X.ndim)
    if X.size == 0:
        return np.empty(X.shape, dtype=X.dtype)
    w = X.astype(FLOAT32) if X.dtype in LOW_PRECISION else X
    with np.errstate(all="ignore"):
        y = fn(w, ax, X.dtype)
    return y.astype(X.dtype, copy=False)


def _coerced_2d(op: str, X: Array, axis: int, fn: Callable[[Array, int, np.dtype], Array],
                axis_may_be_rank: bool = False) -> Array:
    """Apply ``fn`` to X viewed as a matrix [prod(dims before axis), prod(dims from axis)]
    along its second dimension (opset 1 and 11 semantics). Opset 1 states no range for axis, and
    its coercion rule gives [prod(dims), 1] for axis = rank (the default 1 on a 1-D input), as
    onnxruntime computes; opset 11 limits axis to [-r, r-1]."""
    if X.dtype not in FLOAT_TYPES:
        check_dtype(op, X, FLOAT_TYPES)
    ax = X.ndim if axis_may_be_rank and axis == X.ndim else normalize_axis(axis, X.ndim)
    if X.size == 0:
        return np.empty(X.shape, dtype=X.dtype)
    rows = math.prod(X.shape[:ax])
    return _along_axis(op, X.reshape(rows, -1), 1, fn).reshape(X.shape)


def _make_softmax(op: str, fn: Callable[[Array, int, np.dtype], Array],
                  coerce: bool, axis_may_be_rank: bool = False) -> Callable[..., tuple[Array]]:
    if coerce:
        def softmax(input: Array, *, axis: int = 1) -> tuple[Array]:
            return (_coerced_2d(op, input, axis, fn, axis_may_be_rank),)
    else:
        def softmax(input: Array, *, axis: int = -1) -> tuple[Array]:
            return (_along_axis(op, input, axis, fn),)
    softmax.__name__ = softmax.__qualname__ = op + ("_coerced" if coerce else "")
    softmax.__doc__ = (f"{op} of the input "
                       + ("coerced to 2-D at axis (along the flattened trailing dims)." if coerce
                          else "along one axis."))
    return softmax


for _op, _fn in _SOFTMAX_FNS.items():
    kernel(_op, versions=(1,))(_make_softmax(_op, _fn, True, axis_may_be_rank=True))
    kernel(_op, versions=(11,))(_make_softmax(_op, _fn, True))
    kernel(_op, versions=(13,))(_make_softmax(_op, _fn, False))
