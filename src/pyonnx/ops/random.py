"""Random generators and Dropout: RandomNormal, RandomUniform, RandomNormalLike,
RandomUniformLike, Multinomial, Bernoulli, Dropout.

A node with a ``seed`` attribute draws from a generator built from that seed on every call, so
the same model gives the same values run after run (within pyonnx: no two implementations
share a generator, and the spec does not ask them to). Without a seed the session's generator
(``ctx.rng``) is used.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ir.dtypes import DataType
from pyonnx.ops._common import check_alloc, compute_dtype, tensor_limit
from pyonnx.ops.registry import KernelContext, kernel

__all__: list[str] = []

_FLOAT_TYPES = (DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16)


def _rng(seed: float | int | None, ctx: KernelContext | None) -> np.random.Generator:
    """The generator for one call: seeded from the attribute, else the session's."""
    if seed is None:
        return ctx.rng if ctx is not None else np.random.default_rng()
    # Seed with the bit pattern of the value so that fractional float seeds stay distinct.
    if isinstance(seed, float):
        return np.random.default_rng(int(np.float64(seed).view(np.uint64)))
    return np.random.default_rng(int(seed) & 0xFFFFFFFFFFFFFFFF)


def _float_dtype(dtype: int, what: str = "dtype") -> np.dtype:
    """The NumPy dtype of a floating ONNX type code; other types are an error here."""
    try:
        dt = DataType(int(dtype))
    except ValueError:
        raise ExecutionError(f"{what} {dtype} is not an ONNX element type") from None
    if dt not in _FLOAT_TYPES:
        raise ExecutionError(f"{what} {int(dtype)} ({dt.name}) is not allowed: the output must be "
                             "float16, bfloat16, float or double")
    return dt.numpy


def _gen_dtype(dt: np.dtype) -> type:
    """Generators produce float32 or float64 directly; narrower floats are cast from float32."""
    return np.float64 if dt == np.float64 else np.float32


def _shape(shape: Sequence[int] | None, ctx: KernelContext | None, dt: np.dtype) -> tuple[int, ...]:
    if shape is None:
        raise ExecutionError("the attribute 'shape' is required")
    shp = tuple(int(d) for d in shape)
    check_alloc(shp, dt, tensor_limit(ctx))
    return shp


def _normal(shape: tuple[int, ...], dt: np.dtype, mean: float, scale: float,
            rng: np.random.Generator) -> np.ndarray:
    g = _gen_dtype(dt)
    out = rng.standard_normal(shape, dtype=g)
    out *= g(scale)
    out += g(mean)
    return out.astype(dt, copy=False)


def _uniform(shape: tuple[int, ...], dt: np.dtype, low: float, high: float,
             rng: np.random.Generator) -> np.ndarray:
    g = _gen_dtype(dt)
    out = rng.random(shape, dtype=g)
    out *= g(high - low)
    out += g(low)
    return out.astype(dt, copy=False)


# ----------------------------------------------------------------------------- RandomNormal/Uniform

@kernel("RandomNormal", versions=(1, 22))
def random_normal(*, shape: list[int] | None = None, dtype: int = 1, mean: float = 0.0,
                  scale: float = 1.0, seed: float | None = None,
                  ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """RandomNormal: a tensor of ``shape`` drawn from N(mean, scale^2)."""
    dt = _float_dtype(dtype)
    return (_normal(_shape(shape, ctx, dt), dt, mean, scale, _rng(seed, ctx)),)


@kernel("RandomUniform", versions=(1, 22))
def random_uniform(*, shape: list[int] | None = None, dtype: int = 1, low: float = 0.0,
                   high: float = 1.0, seed: float | None = None,
                   ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """RandomUniform: a tensor of ``shape`` drawn uniformly from [low, high)."""
    dt = _float_dtype(dtype)
    return (_uniform(_shape(shape, ctx, dt), dt, low, high, _rng(seed, ctx)),)


def _like_dtype(x: np.ndarray, dtype: int | None) -> np.dtype:
    if dtype is not None:
        return _float_dtype(dtype)
    dt = np.asarray(x).dtype
    try:
        code = DataType.from_numpy(dt)
    except ValueError:
        code = None
    if code not in _FLOAT_TYPES:
        raise ExecutionError(f"the input has type {dt}, which cannot be the output type; set the "
                             "dtype attribute to a floating type")
    return dt


@kernel("RandomNormalLike", versions=(1, 22))
def random_normal_like(input: np.ndarray, *, dtype: int | None = None, mean: float = 0.0,
                       scale: float = 1.0, seed: float | None = None,
                       ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """RandomNormalLike: N(mean, scale^2) samples shaped like ``input``."""
    dt = _like_dtype(input, dtype)
    return (_normal(np.shape(input), dt, mean, scale, _rng(seed, ctx)),)


@kernel("RandomUniformLike", versions=(1, 22))
def random_uniform_like(input: np.ndarray, *, dtype: int | None = None, low: float = 0.0,
                        high: float = 1.0, seed: float | None = None,
                        ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """RandomUniformLike: uniform [low, high) samples shaped like ``input``."""
    dt = _like_dtype(input, dtype)
    return (_uniform(np.shape(input), dt, low, high, _rng(seed, ctx)),)


# ----------------------------------------------------------------------------- Multinomial

@kernel("Multinomial", versions=(7, 22))
def multinomial(input: np.ndarray, *, dtype: int = 6, sample_size: int = 1,
                seed: float | None = None, ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Multinomial: ``sample_size`` class indices per row, drawn with probabilities
    softmax(input[row]) (the input holds unnormalized log-probabilities)."""
    x = np.asarray(input)
    if x.ndim != 2:
        raise ExecutionError(f"input must have shape [batch_size, class_size], got {list(x.shape)}")
    if int(dtype) not in (DataType.INT32, DataType.INT64):
        raise ExecutionError(f"dtype {dtype} is not allowed: the output must be int32 (6) or "
                             "int64 (7)")
    out_dt = DataType(int(dtype)).numpy
    batch, classes = x.shape
    if sample_size < 0:
        raise ExecutionError(f"sample_size must be >= 0, got {sample_size}")
    check_alloc((batch, sample_size), out_dt, tensor_limit(ctx))
    if classes == 0:
        raise ExecutionError("input has no classes to sample from (class_size is 0)")
    rng = _rng(seed, ctx)
    lp = x.astype(np.float64)
    top = lp.max(axis=1, keepdims=True)
    bad = ~np.isfinite(top[:, 0]) | np.isnan(lp).any(axis=1)
    if bad.any():
        raise ExecutionError(f"input row {int(np.argmax(bad))} has no finite log-probability to "
                             "sample from (all -inf, +inf or NaN)")
    lp -= top
    p = np.exp(lp)
    cdf = np.cumsum(p, axis=1)
    cdf /= cdf[:, -1:]
    cdf[:, -1] = 1.0  # rounding must not leave a gap above the last class
    u = rng.random((batch, sample_size))
    # One searchsorted over all rows: offsetting row r by r keeps the concatenated CDFs sorted.
    offs = np.arange(batch, dtype=np.float64)[:, None]
    flat = (cdf + offs).ravel()
    idx = np.searchsorted(flat, (u + offs).ravel(), side="right").reshape(batch, sample_size)
    idx -= (np.arange(batch) * classes)[:, None]
    np.minimum(idx, classes - 1, out=idx)
    return (idx.astype(out_dt),)


# ----------------------------------------------------------------------------- Bernoulli

@kernel("Bernoulli", versions=(15, 22))
def bernoulli(input: np.ndarray, *, dtype: int | None = None, seed: float | None = None,
              ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Bernoulli: 1 with probability input[i], else 0, in ``dtype`` (default the input's)."""
    p = np.asarray(input)
    if dtype is None:
        out_dt = p.dtype
    else:
        try:
            out_dt = DataType(int(dtype)).numpy
        except ValueError:
            raise ExecutionError(f"dtype {dtype} is not an ONNX element type") from None
    if p.size and not (float(np.min(p)) >= 0.0 and float(np.max(p)) <= 1.0):
        bad = np.asarray(p, np.float64).reshape(-1)
        bad = bad[~((bad >= 0) & (bad <= 1))][0]
        raise ExecutionError(f"input holds the probability {bad}, outside [0, 1]")
    rng = _rng(seed, ctx)
    u = rng.random(p.shape, dtype=compute_dtype(p.dtype))
    # for a 0-d input the generator draws a Python float and the comparison a NumPy scalar
    return (np.asarray(u < p).astype(out_dt),)


# ----------------------------------------------------------------------------- Dropout

def _dropout(data: np.ndarray, ratio: float, training: bool, seed: float | int | None,
             ctx: KernelContext | None, mask_dtype: np.dtype) -> tuple:
    """Inference: output = data (the same array; kernels never mutate) and mask all ones.
    Training: drop each element with probability ``ratio`` and scale the kept ones by
    1 / (1 - ratio)."""
    x = np.asarray(data)
    n_out = ctx.num_outputs if ctx is not None else 1
    want_mask = n_out > 1 and (ctx is None or len(ctx.outputs_used) < 2 or ctx.outputs_used[1])
    if not training or ratio == 0:
        mask = np.ones(x.shape, mask_dtype) if want_mask else None
        return (x, mask)[:max(n_out, 1)]
    if not 0 <= ratio < 1:
        raise ExecutionError(f"ratio must be in [0, 1), got {ratio}")
    # for a 0-d input the generator draws a Python float: keep it an array
    keep = np.asarray(_rng(seed, ctx).random(x.shape) >= ratio)
    wide = (np.dtype(np.float32), np.dtype(np.float64))
    cdt = x.dtype if x.dtype in wide else np.dtype(np.float32)  # half and float8 via float32
    y = np.asarray(np.multiply(x, keep, dtype=cdt))
    y *= cdt.type(1.0 / (1.0 - ratio))
    y = y.astype(x.dtype, copy=False)
    mask = keep.astype(mask_dtype, copy=False) if want_mask else None
    return (y, mask)[:max(n_out, 1)]


@kernel("Dropout", versions=(1, 6))
def dropout_1(data: np.ndarray, *, is_test: int = 0, ratio: float = 0.5,
              consumed_inputs: list[int] | None = None,
              ctx: KernelContext | None = None) -> tuple:
    """Dropout-1/6: random dropout unless is_test; the mask has the data's type."""
    return _dropout(data, ratio, not is_test, None, ctx, np.asarray(data).dtype)


@kernel("Dropout", versions=(7,))
def dropout_7(data: np.ndarray, *, ratio: float = 0.5,
              ctx: KernelContext | None = None) -> tuple:
    """Dropout-7: the input unchanged; the mask (in the data's type) all ones.

    Versions 7 and 10 have no attribute or input that selects training, so they run as in
    inference, as other runtimes do.
    """
    return _dropout(data, ratio, False, None, ctx, np.asarray(data).dtype)


@kernel("Dropout", versions=(10,))
def dropout_10(data: np.ndarray, *, ratio: float = 0.5,
               ctx: KernelContext | None = None) -> tuple:
    """Dropout-10: the input unchanged; the bool mask all True (inference, as Dropout-7)."""
    return _dropout(data, ratio, False, None, ctx, np.dtype(np.bool_))


@kernel("Dropout", versions=(12, 13, 22))
def dropout_12(data: np.ndarray, ratio: np.ndarray | None = None,
               training_mode: np.ndarray | None = None, *, seed: int | None = None,
               ctx: KernelContext | None = None) -> tuple:
    """Dropout-12+: random dropout scaled by 1/(1-ratio) when training_mode is true, else the
    input unchanged."""
    training = bool(np.asarray(training_mode).reshape(-1)[0]) if training_mode is not None \
        and np.size(training_mode) else False
    r = float(np.asarray(ratio, dtype=np.float64).reshape(-1)[0]) if ratio is not None \
        and np.size(ratio) else 0.5
    return _dropout(data, r, training, seed, ctx, np.dtype(np.bool_))
