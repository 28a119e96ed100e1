"""Normalization kernels: BatchNormalization, InstanceNormalization, LayerNormalization,
GroupNormalization, RMSNormalization, LRN, LpNormalization, MeanVarianceNormalization.

Statistics (mean, variance) are computed in the ``stash_type`` the operator names (float32 by
default), or in float32 for float16/bfloat16 inputs of operators without one, and the result is
returned in the input type. Half-precision inputs get their scale and shift in float32 too and
are rounded once at the end (see :func:`_to_stage_two`). The variance is computed from the
centred values (two passes), which stays non-negative and accurate where E[x^2] - E[x]^2 would
cancel.
"""

from __future__ import annotations

import math

import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ir.dtypes import DataType
from pyonnx.ops._common import compute_dtype, normalize_axes, normalize_axis, output_wanted

from pyonnx.ops.registry import KernelContext, kernel

__all__: list[str] = []

# ----------------------------------------------------------------------------- helpers

def _stash_dtype(stash_type: int) -> np.dtype:
    """The NumPy dtype named by a ``stash_type`` attribute (an ONNX element type code)."""
    try:
        dt = DataType(int(stash_type)).numpy
    except ValueError:
        raise ExecutionError(f"stash_type {stash_type} is not an ONNX element type") from None
    if DataType(int(stash_type)) not in _FLOAT_TYPES:
        raise UnsupportedOperatorError(
            f"stash_type {stash_type} ({DataType(int(stash_type)).name}) is not a floating-point "
            "type; use 1 (float)")
    return np.dtype(dt)

_FLOAT_TYPES = (DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16)

def _check_broadcast_to(t: np.ndarray, shape: tuple[int, ...], what: str) -> None:
    """``t`` must broadcast to ``shape`` without enlarging it (unidirectional broadcasting)."""
    if t.shape == shape[len(shape) - t.ndim:]:  # the usual case, without np.broadcast_shapes' cost
        return
    try:
        ok = np.broadcast_shapes(t.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ExecutionError(f"{what} of shape {list(t.shape)} does not broadcast to the input "
                             f"shape {list(shape)}")

def _channel_param(p: np.ndarray, c: int, rank: int, what: str, dtype: np.dtype) -> np.ndarray:
    """A per-channel vector of size C reshaped to (1, C, 1, ...) for broadcasting against NC...."""
    p = np.asarray(p)
    if p.size != c:
        raise ExecutionError(f"{what} must have C = {c} elements, got shape {list(p.shape)}")
    return p.reshape((1, c) + (1,) * (rank - 2)).astype(dtype, copy=False)

_vecdot = getattr(np, "vecdot", None)  # NumPy >= 2.0; einsum is the (slower) fallback

def _row_sumsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of two 2-D arrays, without materializing a * b."""
    if _vecdot is not None:
        return _vecdot(a, b)
    return np.einsum("ij,ij->i", a, b)

def _centred_stats(x2: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row statistics of a 2-D array: (centred values, mean, 1/sqrt(var + epsilon)).

    ``mean`` and the inverse standard deviation have shape (rows, 1). The centred array is a
    fresh buffer the caller may modify in place.
    """
    n = x2.shape[1]
    mean = np.add.reduce(x2, axis=1, keepdims=True)
    mean /= max(n, 1)
    d = x2 - mean
    var = _row_sumsq(d, d)[:, None]
    var /= max(n, 1)
    var += epsilon
    inv_std = np.sqrt(var, out=var)
    np.reciprocal(inv_std, out=inv_std)
    return d, mean, inv_std

def _to_stage_two(y: np.ndarray, dt: np.dtype) -> np.ndarray:
    """The buffer in which to apply scale and shift to the normalized values ``y``.

    A wider input type (double with a float stash) gets its own precision back first. A
    narrower one (float16, bfloat16) stays in the float32 stash and is cast once at the end:
    that rounds once instead of after each step (within an ulp of the spec's half-precision
    steps) and avoids NumPy's slow emulated half-precision arithmetic.
    """
    if y.dtype != dt and np.dtype(dt).itemsize > y.dtype.itemsize:
        return y.astype(dt)
    return y

# ----------------------------------------------------------------------------- LayerNormalization

@kernel("LayerNormalization", versions=(17,))
def layer_normalization(X: np.ndarray, Scale: np.ndarray, B: np.ndarray | None = None, *,
                        axis: int = -1, epsilon: float = 1e-5, stash_type: int = 1,
                        ctx: KernelContext | None = None) -> tuple:
    """LayerNormalization: standardize over axes [axis, rank) in stash_type, then scale and shift.

    Outputs Mean and InvStdDev (stash_type, shape d[0..axis-1] + [1]*k) when the node names them.
    """
    x, ax, stash = layer_norm_operands(X, Scale, B, axis, stash_type)
    rows = math.prod(x.shape[:ax])
    x2 = x.astype(stash, copy=False).reshape(rows, math.prod(x.shape[ax:]))
    with np.errstate(divide="ignore", invalid="ignore"):
        d, mean, inv_std = _centred_stats(x2, epsilon)
        d *= inv_std
    # Stage two (scale, shift) on the buffer we own.
    y = _to_stage_two(d.reshape(x.shape), x.dtype)
    y *= Scale
    if B is not None:
        y += B
    return layer_norm_outputs(x, ax, y, mean, inv_std, ctx)

def layer_norm_operands(X: np.ndarray, Scale: np.ndarray, B: np.ndarray | None, axis: int,
                        stash_type: int) -> tuple[np.ndarray, int, np.dtype]:
    """LayerNormalization's checks: ``(x, normalized axis, stash dtype)``."""
    x = np.asarray(X)
    ax = normalize_axis(axis, x.ndim, "axis")
    _check_broadcast_to(np.asarray(Scale), x.shape, "Scale")
    if B is not None:
        _check_broadcast_to(np.asarray(B), x.shape, "B")
    return x, ax, _stash_dtype(stash_type)

def layer_norm_outputs(x: np.ndarray, ax: int, y: np.ndarray, mean: np.ndarray,
                       inv_std: np.ndarray, ctx: KernelContext | None) -> tuple:
    """LayerNormalization's outputs from the normalized ``y`` and the per-row statistics:
    Y in X's type, then Mean and InvStdDev (shape d[0..axis-1] + [1]*k) where the node names
    them."""
    outs: list = [y.astype(x.dtype, copy=False)]
    stat_shape = x.shape[:ax] + (1,) * (x.ndim - ax)
    if output_wanted(ctx, 1) or output_wanted(ctx, 2):
        outs.append(mean.reshape(stat_shape) if output_wanted(ctx, 1) else None)
        if ctx is not None and ctx.num_outputs > 2:
            outs.append(inv_std.reshape(stat_shape) if output_wanted(ctx, 2) else None)
    while ctx is not None and len(outs) < ctx.num_outputs:
        outs.append(None)
    return tuple(outs)

# ----------------------------------------------------------------------------- RMSNormalization

@kernel("RMSNormalization", versions=(23,))
def rms_normalization(X: np.ndarray, scale: np.ndarray, *, axis: int = -1,
                      epsilon: float = 1e-5, stash_type: int = 1) -> tuple[np.ndarray]:
    """RMSNormalization: X / sqrt(mean(X^2 over [axis, rank)) + epsilon) * scale."""
    x = np.asarray(X)
    scale = np.asarray(scale)
    ax = normalize_axis(axis, x.ndim, "axis")
    _check_broadcast_to(scale, x.shape, "scale")
    stash = _stash_dtype(stash_type)
    rows = int(np.prod(x.shape[:ax], dtype=np.int64))
    cols = int(np.prod(x.shape[ax:], dtype=np.int64))
    x2 = x.astype(stash, copy=False).reshape(rows, cols)
    ms = _row_sumsq(x2, x2)[:, None]
    ms /= max(cols, 1)
    ms += epsilon
    np.sqrt(ms, out=ms)
    np.reciprocal(ms, out=ms)
    y = _to_stage_two((x2 * ms).reshape(x.shape), x.dtype)
    y *= scale
    # Y has the type of scale (V), which the spec's Mul makes equal to X's type in practice.
    return (y.astype(scale.dtype, copy=False),)

# ----------------------------------------------------------------------------- Instance / Group

def _check_groups(x: np.ndarray, groups: int | None) -> int:
    """x must be (N, C, ...) with C a multiple of ``groups``; returns C."""
    if x.ndim < 2:
        raise ExecutionError(f"input must have rank >= 2 (N, C, ...), got shape {list(x.shape)}")
    c = x.shape[1]
    if groups is None:
        raise ExecutionError("GroupNormalization requires the attribute 'num_groups'")
    if groups <= 0 or c % groups:
        raise ExecutionError(f"num_groups {groups} must be a positive divisor of the number of "
                             f"channels C = {c}")
    return c

def _group_norm(x: np.ndarray, groups: int | None, scale_c: np.ndarray, bias_c: np.ndarray,
                epsilon: float, stash: np.dtype) -> np.ndarray:
    """Normalize x (N, C, ...) over each (instance, group of C/groups channels), then apply the
    per-channel scale and bias."""
    c = _check_groups(x, groups)
    x2 = x.astype(stash, copy=False).reshape(x.shape[0] * groups, c // groups * int(
        np.prod(x.shape[2:], dtype=np.int64)))
    with np.errstate(divide="ignore", invalid="ignore"):
        d, _, inv_std = _centred_stats(x2, epsilon)
        d *= inv_std
    y = _to_stage_two(d.reshape(x.shape), x.dtype)
    y *= _channel_param(scale_c, c, x.ndim, "scale", y.dtype)
    y += _channel_param(bias_c, c, x.ndim, "bias", y.dtype)
    return y.astype(x.dtype, copy=False)

@kernel("InstanceNormalization", versions=(1, 6, 22))
def instance_normalization(input: np.ndarray, scale: np.ndarray, B: np.ndarray, *,
                           epsilon: float = 1e-5, consumed_inputs: list[int] | None = None
                           ) -> tuple[np.ndarray]:
    """InstanceNormalization: scale * (x - mean) / sqrt(var + epsilon) + B, statistics per
    instance and channel."""
    x = np.asarray(input)
    c = x.shape[1] if x.ndim >= 2 else 0
    return (_group_norm(x, c, scale, B, epsilon, compute_dtype(x.dtype)),)

@kernel("GroupNormalization", versions=(18,))
def group_normalization_18(X: np.ndarray, scale: np.ndarray, bias: np.ndarray, *,
                           num_groups: int | None = None, epsilon: float = 1e-5
                           ) -> tuple[np.ndarray]:
    """GroupNormalization-18: scale and bias hold one value per group (applied to its channels)."""
    x = np.asarray(X)
    c = _check_groups(x, num_groups)
    scale, bias = np.asarray(scale), np.asarray(bias)
    for p, what in ((scale, "scale"), (bias, "bias")):
        if p.size != num_groups:
            raise ExecutionError(f"{what} must have num_groups = {num_groups} elements in "
                                 f"GroupNormalization-18, got shape {list(p.shape)}")
    per = c // num_groups
    return (_group_norm(x, num_groups, np.repeat(scale.reshape(-1), per),
                        np.repeat(bias.reshape(-1), per), epsilon, compute_dtype(x.dtype)),)

@kernel("GroupNormalization", versions=(21,))
def group_normalization_21(X: np.ndarray, scale: np.ndarray, bias: np.ndarray, *,
                           num_groups: int | None = None, epsilon: float = 1e-5,
                           stash_type: int = 1) -> tuple[np.ndarray]:
    """GroupNormalization-21: statistics in stash_type, scale and bias per channel."""
    return (_group_norm(np.asarray(X), num_groups, scale, bias, epsilon,
                        _stash_dtype(stash_type)),)

# ----------------------------------------------------------------------------- BatchNormalization

def _bn_view(x: np.ndarray) -> np.ndarray:
    """A 1-D input of size N is treated as (N, 1): one channel. A scalar has no channel axis."""
    if x.ndim == 0:
        raise ExecutionError("BatchNormalization: X must have shape (N, C, D1, ...), got a "
                             "rank-0 tensor")
    return x.reshape(-1, 1) if x.ndim == 1 else x

def _bn_param_shape(x: np.ndarray, p: np.ndarray, spatial: int, what: str) -> tuple[int, ...]:
    """The broadcast shape of a parameter: (1, C, 1, ...) spatially, (1, C, D1, ...) per
    activation (spatial=0)."""
    c = x.shape[1]
    p = np.asarray(p)
    if spatial or x.ndim == 2:
        if p.size != c:
            raise ExecutionError(f"{what} must have C = {c} elements, got shape {list(p.shape)}")
        return (1, c) + (1,) * (x.ndim - 2)
    feat = x.shape[1:]
    if p.size == c and p.size != int(np.prod(feat)):
        return (1, c) + (1,) * (x.ndim - 2)
    if p.size != int(np.prod(feat)):
        raise ExecutionError(f"{what} must have shape {list(feat)} (spatial=0), got "
                             f"{list(p.shape)}")
    return (1,) + feat

def _bn_inference(x: np.ndarray, scale: np.ndarray, b: np.ndarray, mean: np.ndarray,
                  var: np.ndarray, epsilon: float, spatial: int = 1) -> np.ndarray:
    """Y = (X - mean) / sqrt(var + epsilon) * scale + B, folded into one multiply-add."""
    xv = _bn_view(np.asarray(x))
    cdt = compute_dtype(xv.dtype)
    shapes = [_bn_param_shape(xv, p, spatial, w) for p, w in
              ((scale, "scale"), (b, "B"), (mean, "mean"), (var, "var"))]
    # Fold the four parameters into a and b in float64 (they are per channel, so cheap):
    # Y = X * a + (B - mean * a), with a = scale / sqrt(var + epsilon).
    s64, b64, m64, v64 = (np.asarray(p, np.float64).reshape(sh) for p, sh in
                          zip((scale, b, mean, var), shapes))
    a = s64 / np.sqrt(v64 + epsilon)
    c = b64 - m64 * a
    y = xv.astype(cdt, copy=False) * a.astype(cdt)
    y += c.astype(cdt)
    return y.astype(x.dtype, copy=False).reshape(np.shape(x))

def _bn_training(x: np.ndarray, scale: np.ndarray, b: np.ndarray, mean: np.ndarray,
                 var: np.ndarray, epsilon: float, momentum: float, spatial: int = 1
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Normalize with the batch statistics; returns (Y, running_mean, running_var, batch_mean,
    batch_var), the statistics shaped and typed like the ``mean`` input."""
    xv = _bn_view(np.asarray(x))
    cdt = compute_dtype(xv.dtype)
    pshape = _bn_param_shape(xv, mean, spatial, "mean")
    for p, what in ((scale, "scale"), (b, "B"), (var, "var")):
        if _bn_param_shape(xv, p, spatial, what) != pshape:
            raise ExecutionError(f"BatchNormalization: {what} has shape {list(np.shape(p))} "
                                 f"but mean has {list(np.shape(mean))}; they must agree")
    # Spatial statistics reduce over N and D1..Dn; per-activation (spatial=0) ones over N only.
    red = (0,) + tuple(range(2, xv.ndim)) if pshape[2:] == (1,) * (xv.ndim - 2) else (0,)
    xc = xv.astype(cdt, copy=False)
    count = int(np.prod([xv.shape[i] for i in red]))
    with np.errstate(divide="ignore", invalid="ignore"):
        bmean = np.add.reduce(xc, axis=red, keepdims=True) / count
        d = xc - bmean
        bvar = np.add.reduce(d * d, axis=red, keepdims=True) / count
        a = np.asarray(scale, cdt).reshape(pshape) / np.sqrt(bvar + cdt.type(epsilon))
        d *= a
        d += np.asarray(b, cdt).reshape(pshape)
    y = d.astype(x.dtype, copy=False).reshape(np.shape(x))
    mdt = np.asarray(mean).dtype
    mshape = np.shape(mean)
    m_in = np.asarray(mean, np.float64).reshape(pshape)
    v_in = np.asarray(var, np.float64).reshape(pshape)
    run_mean = m_in * momentum + bmean * (1.0 - momentum)
    run_var = v_in * momentum + bvar * (1.0 - momentum)

    def out(t: np.ndarray) -> np.ndarray:
        return np.asarray(t).astype(mdt, copy=False).reshape(mshape)

    return y, out(run_mean), out(run_var), out(bmean), out(bvar)

@kernel("BatchNormalization", versions=(1, 6))
def batch_normalization_1(X: np.ndarray, scale: np.ndarray, B: np.ndarray, mean: np.ndarray,
                          var: np.ndarray, *, epsilon: float = 1e-5, is_test: int = 0,
                          momentum: float = 0.9, spatial: int = 1,
                          consumed_inputs: list[int] | None = None,
                          ctx: KernelContext | None = None) -> tuple:
    """BatchNormalization-1/6: test mode (is_test, or Y only) uses the given statistics;
    training mode (is_test=0 with the extra outputs) uses and returns the batch statistics."""
    n_out = ctx.num_outputs if ctx is not None else 1
    if is_test or n_out == 1:
        return (_bn_inference(X, scale, B, mean, var, epsilon, spatial),) + (None,) * (n_out - 1)
    return _bn_training(X, scale, B, mean, var, epsilon, momentum, spatial)[:n_out]

@kernel("BatchNormalization", versions=(7,))
def batch_normalization_7(X: np.ndarray, scale: np.ndarray, B: np.ndarray, mean: np.ndarray,
                          var: np.ndarray, *, epsilon: float = 1e-5, momentum: float = 0.9,
                          spatial: int = 1, ctx: KernelContext | None = None) -> tuple:
    """BatchNormalization-7: test mode when only Y is requested, training mode otherwise."""
    n_out = ctx.num_outputs if ctx is not None else 1
    if n_out == 1:
        return (_bn_inference(X, scale, B, mean, var, epsilon, spatial),)
    return _bn_training(X, scale, B, mean, var, epsilon, momentum, spatial)[:n_out]

@kernel("BatchNormalization", versions=(9,))
def batch_normalization_9(X: np.ndarray, scale: np.ndarray, B: np.ndarray, mean: np.ndarray,
                          var: np.ndarray, *, epsilon: float = 1e-5, momentum: float = 0.9,
                          ctx: KernelContext | None = None) -> tuple:
    """BatchNormalization-9: spatial only; test mode when only Y is requested, else training."""
    n_out = ctx.num_outputs if ctx is not None else 1
    if n_out == 1:
        return (_bn_inference(X, scale, B, mean, var, epsilon),)
    return _bn_training(X, scale, B, mean, var, epsilon, momentum)[:n_out]

@kernel("BatchNormalization", versions=(14, 15))
def batch_normalization_14(X: np.ndarray, scale: np.ndarray, B: np.ndarray,
                           input_mean: np.ndarray, input_var: np.ndarray, *,
                           epsilon: float = 1e-5, momentum: float = 0.9, training_mode: int = 0,
                           ctx: KernelContext | None = None) -> tuple:
    """BatchNormalization-14/15: training_mode selects batch statistics and the running-statistic
    outputs (typed like input_mean); otherwise the given statistics are used."""
    n_out = ctx.num_outputs if ctx is not None else 1
    if not training_mode:
        y = _bn_inference(X, scale, B, input_mean, input_var, epsilon)
        # The spec calls extra outputs invalid in inference mode; a model that still names them
        # gets the statistics unchanged (nothing was learned) rather than a failed run.
        return (y, np.asarray(input_mean), np.asarray(input_var))[:max(n_out, 1)]
    y, rm, rv, _, _ = _bn_training(X, scale, B, input_mean, input_var, epsilon, momentum)
    return (y, rm, rv)[:max(n_out, 1)]

# ----------------------------------------------------------------------------- LRN

@kernel("LRN", versions=(1, 13))
def lrn(X: np.ndarray, *, size: int | None = None, alpha: float = 1e-4, beta: float = 0.75,
        bias: float = 1.0) -> tuple[np.ndarray]:
    """LRN: X / (bias + alpha / size * sum of squares over a window of channels) ** beta."""
    if size is None:
        raise ExecutionError("LRN requires the attribute 'size'")
    size = int(size)
    if size <= 0:
        raise ExecutionError(f"LRN size must be positive, got {size}")
    x = np.asarray(X)
    if x.ndim < 2:
        raise ExecutionError(f"LRN input must have rank >= 2 (N, C, ...), got shape "
                             f"{list(x.shape)}")
    cdt = compute_dtype(x.dtype)
    xc = x.astype(cdt, copy=False)
    sq = xc * xc
    c = x.shape[1]
    lo = (size - 1) // 2          # channels before c
    hi = size - 1 - lo            # channels after c: ceil((size - 1) / 2)
    ss = sq.copy()
    # Add the shifted squares one offset at a time (size is small, typically 5).
    for o in range(1, hi + 1):
        if o < c:
            ss[:, :c - o] += sq[:, o:]
    for o in range(1, lo + 1):
        if o < c:
            ss[:, o:] += sq[:, :c - o]
    ss *= alpha / size
    ss += bias
    np.power(ss, -beta, out=ss)
    ss *= xc
    return (ss.astype(x.dtype, copy=False),)

# ----------------------------------------------------------------------------- LpNormalization

@kernel("LpNormalization", versions=(1, 22))
def lp_normalization(input: np.ndarray, *, axis: int = -1, p: int = 2) -> tuple[np.ndarray]:
    """LpNormalization: input / ||input||_p along ``axis`` (0 where the norm is 0)."""
    x = np.asarray(input)
    ax = normalize_axis(axis, x.ndim, "axis")
    if p not in (1, 2):
        raise UnsupportedOperatorError(
            f"LpNormalization supports p = 1 or 2 (per the spec), got {p}")
    cdt = compute_dtype(x.dtype)
    xc = x.astype(cdt, copy=False)
    if p == 1:
        norm = np.add.reduce(np.abs(xc), axis=ax, keepdims=True)
    else:
        norm = np.sqrt(np.add.reduce(xc * xc, axis=ax, keepdims=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.divide(xc, norm, out=np.zeros(x.shape, cdt), where=norm != 0)
    return (y.astype(x.dtype, copy=False),)

# ----------------------------------------------------------------------------- MVN

@kernel("MeanVarianceNormalization", versions=(9, 13))
def mean_variance_normalization(X: np.ndarray, *, axes: list[int] | None = None
                                ) -> tuple[np.ndarray]:
    """MeanVarianceNormalization: (X - E[X]) / (sqrt(E[(X - E[X])^2]) + 1e-9) over ``axes``."""
    x = np.asarray(X)
    ax = normalize_axes([0, 2, 3] if axes is None else axes, x.ndim, "axes")
    cdt = compute_dtype(x.dtype)
    xc = x.astype(cdt, copy=False)
    n = max(int(np.prod([x.shape[a] for a in ax])), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.add.reduce(xc, axis=ax, keepdims=True) / n
        d = xc - mean
        std = np.sqrt(np.add.reduce(d * d, axis=ax, keepdims=True) / n)
        # The spec's function body adds epsilon 1e-9 to the standard deviation.
        std += cdt.type(1e-9)
        d /= std
    return (d.astype(x.dtype, copy=False),)
