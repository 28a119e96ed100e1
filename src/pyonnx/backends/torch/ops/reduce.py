"""Reductions (axes as an attribute before their opset-13/18 versions, as an input after) and
ArgMax/ArgMin."""

from __future__ import annotations

import torch

from pyonnx.backends.torch.ops import torch_op
from pyonnx.backends.torch.ops.tensor import _axis, _ints


def _reduce_sum_square(x, d, k):
    return torch.sum(x * x, d, keepdim=k)


def _reduce_log_sum(x, d, k):
    return torch.log(torch.sum(x, d, keepdim=k))


def _reduce_l1(x, d, k):
    return torch.sum(torch.abs(x), d, keepdim=k).to(x.dtype)


def _reduce_l2(x, d, k):
    return torch.sqrt(torch.sum(x * x, d, keepdim=k)).to(x.dtype)


def _reduce_prod(x, d, k):
    out = x
    for a in sorted(d, reverse=True):
        out = torch.prod(out, a, keepdim=k)
    return out


def _reduce_max(x, d, k):
    if x.dtype == torch.bool:
        return torch.amax(x.to(torch.uint8), d, keepdim=k).bool()
    return torch.amax(x, d, keepdim=k)


def _reduce_min(x, d, k):
    if x.dtype == torch.bool:
        return torch.amin(x.to(torch.uint8), d, keepdim=k).bool()
    return torch.amin(x, d, keepdim=k)


#: reduction -> (torch function of (x, dims, keepdim), value over an empty set, version axes
#: became an input)
_REDUCTIONS = {
    "ReduceSum": (lambda x, d, k: torch.sum(x, d, keepdim=k).to(x.dtype), 0, 13),
    "ReduceMean": (lambda x, d, k: torch.mean(x, d, keepdim=k), float("nan"), 18),
    "ReduceMax": (_reduce_max, float("-inf"), 18),
    "ReduceMin": (_reduce_min, float("inf"), 18),
    "ReduceProd": (_reduce_prod, 1, 18),
    "ReduceSumSquare": (_reduce_sum_square, 0, 18),
    "ReduceLogSum": (_reduce_log_sum, float("-inf"), 18),
    "ReduceLogSumExp": (lambda x, d, k: torch.logsumexp(x, d, keepdim=k), float("-inf"), 18),
    "ReduceL1": (_reduce_l1, 0, 18),
    "ReduceL2": (_reduce_l2, 0, 18),
}


def _reduce(fn, empty, x, axes, keepdims, noop_with_empty_axes):
    if not axes:
        if noop_with_empty_axes:
            return x
        axes = list(range(x.dim()))
    dims = sorted({_axis(a, x.dim()) for a in axes})
    if x.dim() == 0:
        return fn(x.reshape(1), [0], False).reshape(())
    if any(x.shape[a] == 0 for a in dims):
        shape = [1 if a in dims else s for a, s in enumerate(x.shape)] if keepdims else \
            [s for a, s in enumerate(x.shape) if a not in dims]
        if x.dtype == torch.bool:  # max of nothing is False, min of nothing True
            empty = empty > 0
        return torch.full(shape, empty, dtype=x.dtype, device=x.device)
    return fn(x, dims, bool(keepdims))


def _make(name, fn, empty, input_since):
    def with_attr(x, axes=None, keepdims=1):
        return _reduce(fn, empty, x, list(axes) if axes is not None else None, keepdims, 0)

    def with_input(x, axes=None, keepdims=1, noop_with_empty_axes=0):
        return _reduce(fn, empty, x, _ints(axes) if axes is not None else None, keepdims,
                       noop_with_empty_axes)

    with_attr.__name__ = with_input.__name__ = name
    torch_op(name, 1)(with_attr)
    torch_op(name, input_since)(with_input)


for _name, (_fn, _empty, _since) in _REDUCTIONS.items():
    _make(_name, _fn, _empty, _since)


def _arg(fn, x, axis, keepdims, select_last_index):
    a = _axis(axis, x.dim())
    if select_last_index:
        n = x.shape[a]
        return (n - 1) - fn(torch.flip(x, [a]), a, keepdim=bool(keepdims))
    return fn(x, a, keepdim=bool(keepdims))


@torch_op("ArgMax")
def arg_max(x, axis=0, keepdims=1, select_last_index=0):
    return _arg(torch.argmax, x, axis, keepdims, select_last_index)


@torch_op("ArgMin")
def arg_min(x, axis=0, keepdims=1, select_last_index=0):
    return _arg(torch.argmin, x, axis, keepdims, select_last_index)
