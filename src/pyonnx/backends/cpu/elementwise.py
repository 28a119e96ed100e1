"""The CPU provider's row and element-wise kernels: compiled loops (the ``fast`` extra) for the
row kernels, and the cheapest element-wise kernels without their per-call overhead.

Softmax over the last axis, LayerNormalization over trailing axes, Erf and the exact Gelu each
take several NumPy passes over their data in the reference kernels (:mod:`pyonnx.ops`); the
compiled loops of :mod:`pyonnx.backends.cpu.jit` do each in one pass. Every variant here takes
its loop for float32/float64 inputs when numba is installed and the work is large enough, and
otherwise runs the reference kernel unchanged, so the checks and every other case are the
reference's. tests/backends/cpu/test_elementwise.py holds each against its reference.

A loop over a large input is split into bands of rows (of elements, for Erf and Gelu) over the
intra-op threads (:func:`rows_call`); every row is computed by the same code whichever band it
falls in, so the result does not depend on the split.

Add, Sub, Mul, Div and Relu of float tensors are a single NumPy call, which on the small tensors
of small models costs less than the reference kernel's checks and its ``np.errstate`` around
the call (a [1, 16] Add: 1.1 µs bare, 3.9 µs in the reference kernel). Their variants here call
the ufunc alone where a run has silenced floating-point exceptions already
(:func:`~pyonnx.ops._common.quiet_float_errors`), the two operands have one float type and the
result is no larger than an operand (so the reference's allocation bound cannot apply); any other
case, and any error, is the reference kernel's. The ufunc is the reference's, so the result is
the same to the bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from pyonnx.backends.cpu import jit, threads
from pyonnx.backends.cpu.registry import fast_kernel
from pyonnx.ops import _elementwise as _ew
from pyonnx.ops.contrib.activations import _add_bias
from pyonnx.ops.normalization import layer_norm_operands, layer_norm_outputs
from pyonnx.ops._common import float_errors_quiet, output_wanted
from pyonnx.ops.registry import KernelContext, get_kernel

__all__ = ["loop_input", "rows_call", "softmax_loop", "softmax_rows", "erf_loop"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def loop_input(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous read-only array for a compiled loop: numba compiles a loop once
    per layout and writeability of its arguments, so giving inputs one form keeps it to one
    compilation per element type."""
    a = np.ascontiguousarray(a)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


#: Elements a band of a split row-wise loop has at least (about 0.2-0.5 ms of one core, as
#: gemm.MIN_BLOCK_MACS: handing a band to another thread costs up to a scheduler time slice on a
#: busy machine).
MIN_BAND_ELEMENTS = 1 << 18


def rows_call(name: str, rows: int, n: int, args: Callable[[int, int], tuple]) -> bool:
    """Run compiled loop ``name`` over ``rows`` rows of ``n`` elements, in bands of rows split
    over the intra-op threads (one band when small): ``args(start, stop)`` gives the loop's
    arguments for rows [start, stop) (slices of its inputs and outputs). Returns False, as
    :func:`jit.call` does, when the loop is unavailable or the work too small; the caller then
    computes everything with NumPy."""
    total = rows * n
    if total < jit.MIN_ELEMENTS or not jit.available():
        return False
    ran: list[bool] = []
    threads.parallel_for(rows, lambda a, b: ran.append(jit.call(name, *args(a, b),
                                                                elements=total)),
                         min_per_part=max(1, -(-MIN_BAND_ELEMENTS // max(1, n))))
    return all(ran)


_SOFTMAX_LOOPS = {np.dtype(np.float32): "rows_loops.softmax_f32",
                  np.dtype(np.float64): "rows_loops.softmax_f64"}
_NO_BIAS = {t: loop_input(np.zeros((1, 1), t)) for t in _FLOATS}


def softmax_loop(x: np.ndarray, y: np.ndarray, masked_rows_zero: bool, scale: float = 1.0,
                 bias: np.ndarray | None = None, *, elements: int | None = None) -> bool:
    """Softmax of each row of ``x * scale (+ bias)`` into ``y`` by the compiled loop, on this
    thread: ``x``, ``y`` and ``bias`` are C-contiguous (rows, n) float32/float64 matrices of
    one type (``y`` may be ``x``, updated in place; ``bias`` may have m rows, of which x's
    row r takes row r % m: heads stacked in x that share one bias). A row of all -inf gives zeros with
    ``masked_rows_zero`` (Attention's masked query), NaN otherwise (Softmax's rule).
    ``elements`` is the size of the whole job this call is a part of (for jit.MIN_ELEMENTS;
    default: x's). Returns False, having done nothing, when the loop is unavailable."""
    loop = _SOFTMAX_LOOPS.get(x.dtype)
    if loop is None:
        return False
    xr = x
    if x.flags.writeable:
        # one compilation: the loop always reads a read-only x (when y is x, the same memory,
        # which the loop reads before it writes)
        xr = x.view()
        xr.flags.writeable = False
    typ = x.dtype.type
    b = _NO_BIAS[x.dtype] if bias is None else loop_input(bias)
    return jit.call(loop, xr, y, int(masked_rows_zero), typ(scale), b, int(bias is not None),
                    elements=x.size if elements is None else elements)


def softmax_rows(x: np.ndarray, masked_rows_zero: bool) -> np.ndarray | None:
    """Softmax over the last axis of float32/float64 ``x`` by the compiled loop (one pass per
    row instead of NumPy's five), as a new array, split over the intra-op threads when large;
    None when the loop is unavailable. A row of all -inf gives zeros with ``masked_rows_zero``
    (Attention's masked query), NaN otherwise (Softmax's rule)."""
    loop = _SOFTMAX_LOOPS.get(x.dtype)
    if loop is None or x.size == 0:
        return None
    n = x.shape[-1]
    x2 = loop_input(x.reshape(-1, n))
    y = np.empty(x.shape, dtype=x.dtype)
    y2 = y.reshape(-1, n)
    typ = x.dtype.type
    if not rows_call(loop, x2.shape[0], n,
                     lambda a, b: (x2[a:b], y2[a:b], int(masked_rows_zero), typ(1),
                                   _NO_BIAS[x.dtype], 0)):
        return None
    return y


# The reference's erf coefficients as arguments of the compiled loops (jit/erf_loops.py):
# tuples of the element type, whose length numba knows when compiling, so it unrolls them.
_ERF_LOOPS = {
    np.dtype(np.float64): ("erf_loops.erf_f64", tuple(map(float, _ew._ERF_P64)),
                           tuple(map(float, _ew._ERF_G64)), _ew._ERF_M64),
    np.dtype(np.float32): ("erf_loops.erf_f32", tuple(map(np.float32, _ew._ERF_P32)),
                           tuple(map(np.float32, _ew._ERF_G32)), np.float32(_ew._ERF_M32)),
}


def erf_loop(x: np.ndarray, gelu: bool) -> np.ndarray | None:
    """erf(x), or with ``gelu`` 0.5 * x * (1 + erf(x / sqrt(2))), by the compiled loop for
    float32 and float64; None when the loop is unavailable and NumPy must compute it."""
    loop = _ERF_LOOPS.get(x.dtype)
    if loop is None:
        return None
    name, p, g, m = loop
    y = np.empty(x.shape, dtype=x.dtype)
    xf, yf = loop_input(x.reshape(-1)), y.reshape(-1)
    if not rows_call(name, x.size, 1, lambda a, b: (xf[a:b], yf[a:b], int(gelu), p, g, m)):
        return None
    return y


# ------------------------------------------------------------------------------------ kernels

_ERF = get_kernel("", "Erf", 13)
_GELU = get_kernel("", "Gelu", 20)
_MS_GELU = get_kernel("com.microsoft", "Gelu", 1)
_SOFTMAX = get_kernel("", "Softmax", 13)

_LAYER_NORM = get_kernel("", "LayerNormalization", 17)


@fast_kernel("Erf", versions=(9, 13))
def erf(X: np.ndarray, *, consumed_inputs: list[int] | None = None) -> tuple[np.ndarray]:
    """Erf (the reference for other element types)."""
    if X.dtype in _FLOATS:
        y = erf_loop(X, False)
        if y is not None:
            return (y,)
    return _ERF(X, consumed_inputs=consumed_inputs)


@fast_kernel("Gelu", versions=(20,))
def gelu(X: np.ndarray, *, approximate: str = "none") -> tuple[np.ndarray]:
    """Gelu; the exact form of float32/float64 by the loop."""
    if approximate == "none" and X.dtype in _FLOATS:
        y = erf_loop(X, True)
        if y is not None:
            return (y,)
    return _GELU(X, approximate=approximate)


@fast_kernel("Gelu", versions=(1,), domain="com.microsoft")
def ms_gelu(X: np.ndarray) -> tuple[np.ndarray]:
    """com.microsoft Gelu (the exact form)."""
    if X.dtype in _FLOATS:
        y = erf_loop(X, True)
        if y is not None:
            return (y,)
    return _MS_GELU(X)


@fast_kernel("BiasGelu", versions=(1,), domain="com.microsoft")
def ms_bias_gelu(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray]:
    """com.microsoft BiasGelu: Gelu(A + B) with the reference's bias checks and rounding."""
    s = _add_bias("BiasGelu", A, B)
    if s.dtype in _FLOATS:
        y = erf_loop(s, True)
        if y is not None:
            return (y.astype(A.dtype, copy=False),)
    return (_MS_GELU(s)[0].astype(A.dtype, copy=False),)


@fast_kernel("Softmax", versions=(13,))
def softmax(input: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray]:
    """Softmax over the last axis of a float32/float64 input by the loop."""
    if input.dtype in _FLOATS and input.ndim and axis in (-1, input.ndim - 1):
        y = softmax_rows(input, False)
        if y is not None:
            return (y,)
    return _SOFTMAX(input, axis=axis)


def _softmax_coerced(version: int):
    """The fast Softmax of ``version`` 1 or 11: the input coerced to 2-D at ``axis``, softmax
    over each row (the loop for float32/float64; the reference otherwise, which also owns the
    rules for ``axis``)."""
    reference = get_kernel("", "Softmax", version)

    @fast_kernel("Softmax", versions=(version,))
    def softmax_coerced(input: np.ndarray, *, axis: int = 1) -> tuple[np.ndarray]:
        if input.dtype in _FLOATS and input.size and -input.ndim <= axis < input.ndim:
            cols = math.prod(input.shape[axis % input.ndim:])
            y = softmax_rows(input.reshape(-1, cols), False)
            if y is not None:
                return (y.reshape(input.shape),)
        return reference(input, axis=axis)

    softmax_coerced.__name__ = softmax_coerced.__qualname__ = f"softmax_v{version}"
    return softmax_coerced


softmax_v1 = _softmax_coerced(1)
softmax_v11 = _softmax_coerced(11)


def _row_param(p: np.ndarray, shape: tuple[int, ...], ax: int) -> np.ndarray | None:
    """``p`` (which broadcasts to ``shape``) as a contiguous vector over the trailing dims
    ``shape[ax:]``, or None when it varies along the leading dims (one value per row)."""
    if p.shape == shape[ax:]:
        return loop_input(p.reshape(-1))
    p = p.reshape((1,) * (len(shape) - p.ndim) + p.shape)
    if any(d != 1 for d in p.shape[:ax]):
        return None
    return loop_input(np.broadcast_to(p.reshape(p.shape[ax:]), shape[ax:]).reshape(-1))


def _layer_norm_loop(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, has_bias: bool,
                     epsilon: float, y: np.ndarray, mean: np.ndarray, inv_std: np.ndarray
                     ) -> bool:
    """``rows_loops.layer_norm`` over the rows of matrix ``x`` into ``y``, ``mean`` and
    ``inv_std`` (rows, 1), in bands over the intra-op threads; False when unavailable."""
    m, i = mean.reshape(-1), inv_std.reshape(-1)
    return rows_call("rows_loops.layer_norm", x.shape[0], x.shape[1],
                     lambda a, b: (x[a:b], scale, bias, int(has_bias), float(epsilon), y[a:b],
                                   m[a:b], i[a:b]))


@fast_kernel("LayerNormalization", versions=(17,))
def layer_normalization(X: np.ndarray, Scale: np.ndarray, B: np.ndarray | None = None, *,
                        axis: int = -1, epsilon: float = 1e-5, stash_type: int = 1,
                        ctx: KernelContext | None = None) -> tuple:
    """LayerNormalization by the loop (``rows_loops.layer_norm``) for float32/float64 inputs
    normalized in their own type, with scale and bias of that type constant across rows."""
    x, ax, stash = layer_norm_operands(X, Scale, B, axis, stash_type)
    scale = np.asarray(Scale)
    bias = None if B is None else np.asarray(B)
    if (x.dtype == stash and x.dtype in _FLOATS and x.size and scale.dtype == x.dtype
            and (bias is None or bias.dtype == x.dtype)):
        s = _row_param(scale, x.shape, ax)
        b = s if bias is None else _row_param(bias, x.shape, ax)
        if s is not None and b is not None:
            rows, cols = math.prod(x.shape[:ax]), math.prod(x.shape[ax:])
            y = np.empty(x.shape, dtype=x.dtype)
            mean = np.empty((rows, 1), dtype=x.dtype)
            inv_std = np.empty((rows, 1), dtype=x.dtype)
            if _layer_norm_loop(loop_input(x.reshape(rows, cols)), s, b, bias is not None,
                                epsilon, y.reshape(rows, cols), mean, inv_std):
                return layer_norm_outputs(x, ax, y, mean, inv_std, ctx)
    return _LAYER_NORM(X, Scale, B, axis=axis, epsilon=epsilon, stash_type=stash_type, ctx=ctx)


_SKIP_LAYER_NORM = get_kernel("com.microsoft", "SkipLayerNormalization", 1)


@fast_kernel("SkipLayerNormalization", versions=(1,), domain="com.microsoft")
def skip_layer_normalization(input: np.ndarray, skip: np.ndarray, gamma: np.ndarray,
                             beta: np.ndarray | None = None, bias: np.ndarray | None = None, *,
                             epsilon: float = 1e-12, ctx: KernelContext | None = None
                             ) -> tuple[np.ndarray | None, ...]:
    """SkipLayerNormalization by the layer-norm loop: ``s = input + skip (+ bias)`` in the
    input's own type (float32/float64, as the reference computes those), then the loop over s.
    Any other case (other types, a broadcast skip, 1-D parameters of another size or type) is
    the reference's, which also owns the checks."""
    hidden = input.shape[-1] if input.ndim else 0
    params = [p for p in (gamma, beta, bias) if p is not None]
    if (input.dtype in _FLOATS and input.ndim in (2, 3) and input.size and hidden
            and skip.shape == input.shape and skip.dtype == input.dtype
            and all(p.shape == (hidden,) and p.dtype == input.dtype for p in params)):
        s = input + skip
        if bias is not None:
            s += bias
        rows = s.size // hidden
        y = np.empty(s.shape, dtype=s.dtype)
        mean = np.empty((rows, 1), dtype=s.dtype)
        inv_std = np.empty((rows, 1), dtype=s.dtype)
        g = loop_input(gamma)
        b = g if beta is None else loop_input(beta)
        if _layer_norm_loop(loop_input(s.reshape(rows, hidden)), g, b, beta is not None,
                            epsilon, y.reshape(rows, hidden), mean, inv_std):
            out: list[np.ndarray | None] = [y]
            n = ctx.num_outputs if ctx is not None else 1
            stat_shape = s.shape[:-1] + (1,)
            if n > 1:
                out.append(mean.reshape(stat_shape).astype(np.float32, copy=False)
                           if output_wanted(ctx, 1) else None)
            if n > 2:
                out.append(inv_std.reshape(stat_shape).astype(np.float32, copy=False)
                           if output_wanted(ctx, 2) else None)
            if n > 3:
                out.append(s if output_wanted(ctx, 3) else None)
            return tuple(out)
    return _SKIP_LAYER_NORM(input, skip, gamma, beta, bias, epsilon=epsilon, ctx=ctx)


# ------------------------------------------------------- arithmetic without per-call overhead

# the reference kernels' float types but bfloat16 (whose Relu the reference computes otherwise)
_IEEE = _ew.FLOAT_TYPES - {_ew.BFLOAT16}
try:
    from numpy._core.umath import clip as _CLIP  # the ufunc that np.clip calls
except ImportError:  # pragma: no cover - another NumPy layout: np.clip itself
    _CLIP = np.clip


def _within_operands(sa: tuple[int, ...], sb: tuple[int, ...]) -> bool:
    """Whether broadcasting shapes ``sa`` and ``sb`` (if they broadcast) gives no more elements
    than one of them has: equal shapes, or shapes (the shorter one padded with leading 1s) whose
    per-axis maximum is one of them (the true broadcast shape is at most that maximum on every
    axis, and smaller only where an axis is 0)."""
    if sa == sb:
        return True
    if len(sa) != len(sb):
        n = max(len(sa), len(sb))
        sa, sb = (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb
    m = tuple(map(max, sa, sb))
    return m == sa or m == sb


def _make_arith(op: str, ufunc: np.ufunc) -> None:
    versions = (7, 13, 14)
    ref = get_kernel("", op, 14)  # one reference function serves the three versions

    def arith(A: np.ndarray, B: np.ndarray, *, ctx: KernelContext | None = None
              ) -> tuple[np.ndarray]:
        dt = A.dtype
        if dt in _IEEE and B.dtype is dt and float_errors_quiet() and A.ndim and B.ndim \
                and _within_operands(A.shape, B.shape):
            try:
                return (ufunc(A, B),)
            except ValueError:
                pass  # shapes that do not broadcast: the reference names them
        return ref(A, B, ctx=ctx)

    arith.__name__ = arith.__qualname__ = op.lower()
    arith.__doc__ = (f"{op} of two float tensors of one type as one ``np.{ufunc.__name__}`` "
                     "call in a quiet run (see the module docstring); the reference otherwise.")
    fast_kernel(op, versions=versions)(arith)


for _op, _ufunc in (("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply),
                    ("Div", np.divide)):
    _make_arith(_op, _ufunc)

_RELU = get_kernel("", "Relu", 14)
_ZERO_INF = {t: (t.type(0), t.type(np.inf)) for t in _IEEE}


@fast_kernel("Relu", versions=(1, 6, 13, 14))
def relu(X: np.ndarray, *, consumed_inputs: list[int] | None = None) -> tuple[np.ndarray]:
    """Relu of a float tensor as one call of the ufunc behind ``np.clip`` (the reference's
    clip to [0, inf], so -0.0 and NaN come out as there; ``np.clip``'s Python wrapper costs 4x
    the ufunc on small tensors, and ``np.maximum`` keeps or drops the sign of -0.0 depending on
    operand order, type and SIMD path); the reference for other types and 0-d tensors."""
    bounds = _ZERO_INF.get(X.dtype)
    if bounds is not None and X.ndim:
        return (_CLIP(X, *bounds),)
    return _RELU(X, consumed_inputs=consumed_inputs)
