"""Loss kernels: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Both pick, for every sample position, the (log-)probability of its target class along axis 1
of an (N, C, d1, ..., dk) input. Targets equal to ``ignore_index`` contribute zero loss and
zero weight; any other target outside [0, C) is an error (NumPy would silently wrap a
negative one). float16/bfloat16 inputs are computed in float32 and the result cast back.
"""

from __future__ import annotations

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ops._common import compute_dtype
from pyonnx.ops.registry import KernelContext, kernel

__all__: list[str] = []

_REDUCTIONS = ("none", "sum", "mean")


def _nll(logp: np.ndarray, target: np.ndarray, weight: np.ndarray | None,
         ignore_index: int | None, reduction: str, what: str) -> np.ndarray:
    """The weighted negative log likelihood of ``target`` under ``logp`` (N, C, d...), reduced.

    ``logp`` is already in the compute dtype; the result is in that dtype too.
    """
    if reduction not in _REDUCTIONS:
        raise ExecutionError(f"reduction must be one of {list(_REDUCTIONS)}, got {reduction!r}")
    if logp.ndim < 2:
        raise ExecutionError(f"input must have shape (N, C) or (N, C, d1, ..., dk), got "
                             f"{list(logp.shape)}")
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise ExecutionError(f"{what} must be an integer tensor, got {t.dtype}")
    expected = (logp.shape[0],) + logp.shape[2:]
    if t.shape != expected:
        raise ExecutionError(f"{what} has shape {list(t.shape)}; for an input of shape "
                             f"{list(logp.shape)} it must be {list(expected)}")
    c = logp.shape[1]
    t = t.astype(np.int64, copy=False)
    if ignore_index is not None:
        valid = t != int(ignore_index)
    else:
        valid = None
    checked = t if valid is None else t[valid]
    if checked.size:
        lo, hi = int(checked.min()), int(checked.max())
        if lo < 0 or hi >= c:
            bad = lo if lo < 0 else hi
            extra = "" if ignore_index is None else f" and is not ignore_index {ignore_index}"
            raise ExecutionError(f"{what} contains {bad}, outside the class range [0, {c - 1}]"
                                 f"{extra}")
    t_safe = t if valid is None else np.where(valid, t, 0)
    picked = np.take_along_axis(logp, t_safe[:, None], axis=1)[:, 0]
    loss = np.negative(picked)
    if weight is not None:
        w = np.asarray(weight).astype(logp.dtype, copy=False).reshape(-1)
        if w.shape[0] != c:
            raise ExecutionError(f"weight must have C = {c} elements, got shape "
                                 f"{list(np.shape(weight))}")
        wt = w[t_safe]
        if valid is not None:
            wt *= valid
        loss *= wt
    elif valid is not None:
        wt = valid.astype(logp.dtype)
        loss *= wt
    else:
        wt = None
    if reduction == "none":
        return loss
    total = np.add.reduce(loss, axis=None)
    if reduction == "sum":
        return np.asarray(total)
    # mean: divide by the total weight of the samples that count (their number without weights).
    denom = loss.size if wt is None else np.add.reduce(wt, axis=None)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(total / denom, dtype=logp.dtype)


@kernel("NegativeLogLikelihoodLoss", versions=(12, 13, 22))
def negative_log_likelihood_loss(input: np.ndarray, target: np.ndarray,
                                 weight: np.ndarray | None = None, *,
                                 ignore_index: int | None = None,
                                 reduction: str = "mean") -> tuple[np.ndarray]:
    """NegativeLogLikelihoodLoss: -input[n, target[n, ...], ...] * weight[target], reduced."""
    x = np.asarray(input)
    cdt = compute_dtype(x.dtype)
    loss = _nll(x.astype(cdt, copy=False), target, weight, ignore_index, reduction, "target")
    return (np.asarray(loss).astype(x.dtype, copy=False),)


@kernel("SoftmaxCrossEntropyLoss", versions=(12, 13))
def softmax_cross_entropy_loss(scores: np.ndarray, labels: np.ndarray,
                               weights: np.ndarray | None = None, *,
                               ignore_index: int | None = None, reduction: str = "mean",
                               ctx: KernelContext | None = None) -> tuple:
    """SoftmaxCrossEntropyLoss: NLL of ``labels`` under log_softmax(scores, axis=1); the second
    output, when the node has it, is that log_softmax."""
    x = np.asarray(scores)
    if x.ndim < 2:
        raise ExecutionError(f"scores must have shape (N, C) or (N, C, D1, ..., Dk), got "
                             f"{list(x.shape)}")
    if x.shape[1] == 0 and x.size == 0 and x.shape[0] != 0:
        raise ExecutionError(f"scores of shape {list(x.shape)} have no classes (C = 0): no "
                             f"label can be scored")
    cdt = compute_dtype(x.dtype)
    xc = x.astype(cdt, copy=False)
    # log_softmax = (x - max) - log(sum(exp(x - max))), stable for large scores.
    m = np.maximum.reduce(xc, axis=1, keepdims=True)
    logp = xc - m
    lse = np.log(np.add.reduce(np.exp(logp), axis=1, keepdims=True))
    logp -= lse
    loss = _nll(logp, labels, weights, ignore_index, reduction, "labels")
    outs: list = [np.asarray(loss).astype(x.dtype, copy=False)]
    n_out = ctx.num_outputs if ctx is not None else 1
    if n_out > 1:
        used = ctx is None or len(ctx.outputs_used) < 2 or ctx.outputs_used[1]
        outs.append(logp.astype(x.dtype, copy=False) if used else None)
    return tuple(outs)
