"""Contrib normalizations: SkipLayerNormalization, SkipSimplifiedLayerNormalization,
EmbedLayerNormalization (com.microsoft) and the version-1 LayerNormalization and
SimplifiedLayerNormalization that onnxruntime registers in the default domain.

Statistics are computed in float32 (float64 for double inputs), as onnxruntime does, and the
result rounded once to the output type.
"""

from __future__ import annotations

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops._common import check_indices, compute_dtype, normalize_axis, output_wanted
from pyonnx.ops._elementwise import FLOAT_TYPES, check_dtype
from pyonnx.ops.registry import KernelContext, kernel

MS = "com.microsoft"


def _stats(x: np.ndarray, axes: tuple[int, ...], epsilon: float, simplified: bool
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normalized x, mean, 1/std) over ``axes`` of float ``x``; mean is 0 when ``simplified``."""
    if simplified:
        mean = np.zeros(x.shape[:len(x.shape) - len(axes)] + (1,) * len(axes), x.dtype)
        ms = np.mean(np.square(x), axis=axes, keepdims=True)
        inv = 1 / np.sqrt(ms + x.dtype.type(epsilon))
        return x * inv, mean, inv
    mean = np.mean(x, axis=axes, keepdims=True)
    d = x - mean
    var = np.mean(np.square(d), axis=axes, keepdims=True)
    inv = 1 / np.sqrt(var + x.dtype.type(epsilon))
    d *= inv
    return d, mean, inv


def _check_hidden(op: str, p: np.ndarray | None, hidden: int, what: str) -> None:
    if p is not None and p.shape != (hidden,):
        raise ExecutionError(f"{op}: {what} must be 1-D with hidden_size ({hidden}) elements, "
                             f"got shape {p.shape}")


def _skip_norm(op: str, input: np.ndarray, skip: np.ndarray, gamma: np.ndarray,
               beta: np.ndarray | None, bias: np.ndarray | None, epsilon: float, simplified: bool,
               ctx: KernelContext | None) -> tuple[np.ndarray | None, ...]:
    check_dtype(op, input, FLOAT_TYPES, "input")
    if input.ndim not in (2, 3):
        raise ExecutionError(f"{op}: input must be 3-D (batch, sequence, hidden) or 2-D "
                             f"(tokens, hidden), got shape {input.shape}")
    hidden = input.shape[-1]
    ok = skip.ndim in (2, 3) and skip.shape[-1] == hidden and skip.ndim <= input.ndim
    if ok:
        try:
            ok = np.broadcast_shapes(input.shape, skip.shape) == input.shape
        except ValueError:
            ok = False
    if not ok:
        raise ExecutionError(f"{op}: skip of shape {skip.shape} must match input {input.shape}, "
                             f"or be (1, sequence, hidden) / (sequence, hidden)")
    for p, what in ((gamma, "gamma"), (beta, "beta"), (bias, "bias")):
        _check_hidden(op, p, hidden, what)
        if p is not None and p.dtype != input.dtype:
            raise ExecutionError(f"{op}: {what} has element type {p.dtype}, input has {input.dtype}")
    cdt = compute_dtype(input.dtype)
    s = input.astype(cdt) + skip.astype(cdt, copy=False)
    if bias is not None:
        s += bias.astype(cdt, copy=False)
    y, mean, inv = _stats(s, (-1,), epsilon, simplified)
    y *= gamma.astype(cdt, copy=False)
    if beta is not None:
        y += beta.astype(cdt, copy=False)
    out: list[np.ndarray | None] = [y.astype(input.dtype, copy=False)]
    n = ctx.num_outputs if ctx is not None else 1
    if n > 1:
        out.append(mean.astype(np.float32, copy=False) if output_wanted(ctx, 1) else None)
    if n > 2:
        out.append(inv.astype(np.float32, copy=False) if output_wanted(ctx, 2) else None)
    if n > 3:
        out.append(s.astype(input.dtype, copy=False) if output_wanted(ctx, 3) else None)
    return tuple(out)


@kernel("SkipLayerNormalization", versions=(1,), domain=MS)
def skip_layer_normalization(input: np.ndarray, skip: np.ndarray, gamma: np.ndarray,
                             beta: np.ndarray | None = None, bias: np.ndarray | None = None, *,
                             epsilon: float = 1e-12, ctx: KernelContext | None = None
                             ) -> tuple[np.ndarray | None, ...]:
    """s = input + skip (+ bias); output = LayerNorm(s) * gamma (+ beta); also the mean,
    1/std (float, hidden axis kept as 1) and s itself when asked for."""
    return _skip_norm("SkipLayerNormalization", input, skip, gamma, beta, bias, epsilon, False, ctx)


@kernel("SkipSimplifiedLayerNormalization", versions=(1,), domain=MS)
def skip_simplified_layer_normalization(input: np.ndarray, skip: np.ndarray, gamma: np.ndarray,
                                        bias: np.ndarray | None = None, *, epsilon: float = 1e-12,
                                        ctx: KernelContext | None = None
                                        ) -> tuple[np.ndarray | None, ...]:
    """s = input + skip (+ bias); output = s / sqrt(mean(s^2) + epsilon) * gamma (RMS norm)."""
    return _skip_norm("SkipSimplifiedLayerNormalization", input, skip, gamma, None, bias, epsilon,
                      True, ctx)


def _layer_norm_v1(op: str, X: np.ndarray, scale: np.ndarray, B: np.ndarray | None, axis: int,
                   epsilon: float, stash_type: int, simplified: bool,
                   ctx: KernelContext | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    check_dtype(op, X, FLOAT_TYPES, "X")
    check_dtype(op, scale, FLOAT_TYPES, "scale")
    ax = normalize_axis(axis, max(X.ndim, 1))
    axes = tuple(range(ax, X.ndim))
    norm_shape = X.shape[ax:]
    for p, what in ((scale, "scale"), (B, "B")):
        if p is None:
            continue
        if p.dtype != scale.dtype:
            raise ExecutionError(f"{op}: {what} has element type {p.dtype}, scale has {scale.dtype}")
        try:
            ok = np.broadcast_shapes(norm_shape, p.shape) == norm_shape
        except ValueError:
            ok = False
        if not ok:
            raise ExecutionError(f"{op}: {what} of shape {p.shape} does not broadcast to the "
                                 f"normalized shape {norm_shape}")
    if stash_type not in (1, 11):
        raise ExecutionError(f"{op}: stash_type must be 1 (float) or 11 (double), got {stash_type}")
    # onnxruntime computes the statistics in float32 unless the input or stash type is double.
    cdt = compute_dtype(X.dtype)
    x = X.astype(cdt, copy=False)
    y, mean, inv = _stats(x, axes, epsilon, simplified)
    y = y * scale.astype(cdt, copy=False)
    if B is not None:
        y += B.astype(cdt, copy=False)
    sdt = np.float64 if stash_type == 11 or X.dtype == np.float64 else np.float32
    return (y.astype(scale.dtype, copy=False), mean.astype(sdt), inv.astype(sdt))


@kernel("LayerNormalization", versions=(1,))
def layer_normalization_1(X: np.ndarray, Scale: np.ndarray, B: np.ndarray | None = None, *,
                          axis: int = -1, epsilon: float = 1e-5, stash_type: int = 1,
                          ctx: KernelContext | None = None) -> tuple[np.ndarray, ...]:
    """onnxruntime's LayerNormalization-1 (default domain): Y = (X - mean) / std * Scale + B over
    the axes from ``axis``; Scale and B may have another float type than X (Y has theirs)."""
    y, mean, inv = _layer_norm_v1("LayerNormalization", X, Scale, B, axis, epsilon, stash_type,
                                  False, ctx)
    n = ctx.num_outputs if ctx is not None else 1
    return (y, mean, inv)[:max(n, 1)]


@kernel("SimplifiedLayerNormalization", versions=(1,))
def simplified_layer_normalization(X: np.ndarray, scale: np.ndarray, *, axis: int = -1,
                                   epsilon: float = 1e-5, stash_type: int = 1,
                                   ctx: KernelContext | None = None) -> tuple[np.ndarray, ...]:
    """onnxruntime's SimplifiedLayerNormalization-1 (default domain, RMS norm):
    Y = X / sqrt(mean(X^2) + epsilon) * scale over the axes from ``axis``."""
    y, _mean, inv = _layer_norm_v1("SimplifiedLayerNormalization", X, scale, None, axis, epsilon,
                                   stash_type, True, ctx)
    n = ctx.num_outputs if ctx is not None else 1
    return (y, inv)[:max(n, 1)]


@kernel("EmbedLayerNormalization", versions=(1,), domain=MS)
def embed_layer_normalization(input_ids: np.ndarray, segment_ids: np.ndarray | None,
                              word_embedding: np.ndarray, position_embedding: np.ndarray,
                              segment_embedding: np.ndarray | None, gamma: np.ndarray,
                              beta: np.ndarray, mask: np.ndarray | None = None,
                              position_ids: np.ndarray | None = None, *, epsilon: float = 1e-12,
                              mask_index_type: int = 1, ctx: KernelContext | None = None
                              ) -> tuple[np.ndarray | None, ...]:
    """BERT embedding: word[input_ids] + position[position_ids or 0..S-1] (+ segment[segment_ids]),
    then LayerNorm * gamma + beta; mask_index is the number of 1s in each row of mask (zeros
    without a mask); embedding_sum is the sum before normalization."""
    op = "EmbedLayerNormalization"
    check_dtype(op, word_embedding, FLOAT_TYPES, "word_embedding")
    if input_ids.ndim != 2:
        raise ExecutionError(f"{op}: input_ids must be 2-D (batch, sequence), got {input_ids.shape}")
    b, s = input_ids.shape
    if word_embedding.ndim != 2:
        raise ExecutionError(f"{op}: word_embedding must be 2-D, got shape {word_embedding.shape}")
    hidden = word_embedding.shape[1]
    for p, what in ((position_embedding, "position_embedding"),
                    (segment_embedding, "segment_embedding")):
        if p is not None and (p.ndim != 2 or p.shape[1] != hidden):
            raise ExecutionError(f"{op}: {what} must be 2-D with hidden_size ({hidden}) columns, "
                                 f"got shape {p.shape}")
    _check_hidden(op, gamma, hidden, "gamma")
    _check_hidden(op, beta, hidden, "beta")
    if (segment_ids is None) != (segment_embedding is None):
        raise ExecutionError(f"{op}: segment_ids and segment_embedding must be given together")
    for t, what in ((segment_ids, "segment_ids"), (mask, "mask")):
        if t is not None and t.shape != (b, s):
            raise ExecutionError(f"{op}: {what} has shape {t.shape}; (batch {b}, sequence {s}) "
                                 f"expected")
    cdt = compute_dtype(word_embedding.dtype)
    ids = check_indices(input_ids, word_embedding.shape[0], "input_ids")
    if position_ids is None:
        pos = np.broadcast_to(np.arange(s, dtype=np.int64), (b, s))
        if s > position_embedding.shape[0]:
            raise ExecutionError(f"{op}: sequence length {s} exceeds the {position_embedding.shape[0]} "
                                 f"rows of position_embedding")
    else:
        if position_ids.shape not in ((b, s), (1, s)):
            raise ExecutionError(f"{op}: position_ids has shape {position_ids.shape}; (batch, "
                                 f"sequence) or (1, sequence) expected")
        pos = np.broadcast_to(check_indices(position_ids, position_embedding.shape[0],
                                            "position_ids"), (b, s))
    e = word_embedding[ids].astype(cdt, copy=False)
    e = e + position_embedding[pos].astype(cdt, copy=False)
    if segment_ids is not None:
        seg = check_indices(segment_ids, segment_embedding.shape[0], "segment_ids")
        e += segment_embedding[seg].astype(cdt, copy=False)
    y, _mean, _inv = _stats(e, (-1,), epsilon, False)
    y *= gamma.astype(cdt, copy=False)
    y += beta.astype(cdt, copy=False)
    out: list[np.ndarray | None] = [y.astype(word_embedding.dtype, copy=False)]
    n = ctx.num_outputs if ctx is not None else 1
    if n > 1:
        if mask is not None:
            mi = np.count_nonzero(mask == 1, axis=1).astype(np.int32)
        else:
            mi = np.zeros(b, np.int32)
        out.append(mi)
    if n > 2:
        out.append(e.astype(word_embedding.dtype, copy=False) if output_wanted(ctx, 2) else None)
    return tuple(out)
