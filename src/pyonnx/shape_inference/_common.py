"""Helpers the rule families share: tensor types, broadcasting, axes, window output sizes."""

from __future__ import annotations

from collections.abc import Sequence

from pyonnx.ir import DataType, TensorType
from pyonnx.ir.types import Dim
from pyonnx.shape_inference.symbolic import (
    dim_add,
    dim_floordiv,
    dim_mul,
    dim_sub,
    is_concrete,
)

__all__ = [
    "tensor",
    "broadcast",
    "broadcast_dim",
    "norm_axis",
    "norm_axes",
    "window_out",
    "MAX_RANK",
    "unknown_dims",
    "INT64_MAX",
    "check_int64",
]

#: The largest value an ONNX dim (an int64) can hold.
INT64_MAX = 2**63 - 1

#: The most dims a tensor may have for inference to spell its shape out: NumPy (the runtime's
#: array type) holds at most 64 dims, so a shape tensor declared longer than this (a 1-D
#: ``shape`` input of length 2**31 costs a few bytes of model) gives an unknown rank instead
#: of a list as long as the declared length.
MAX_RANK = 64


def tensor(elem: DataType | None, shape: Sequence[Dim] | None) -> TensorType | None:
    """A tensor type; None when the element type is unknown and so is the shape."""
    if elem is None:
        if shape is None:
            return None
        elem = DataType.UNDEFINED
    return TensorType(elem, None if shape is None else tuple(shape))


def unknown_dims(n: Dim) -> list[Dim] | None:
    """``n`` unknown dims (the shape of a tensor whose rank alone is known); None, an unknown
    rank, when ``n`` is not a concrete count between 0 and :data:`MAX_RANK`."""
    if not is_concrete(n) or not 0 <= n <= MAX_RANK:  # type: ignore[operator]
        return None
    return [None] * int(n)  # type: ignore[arg-type]


def check_int64(ctx, value: Dim, what: str) -> Dim:  # type: ignore[no-untyped-def]
    """``value`` unchanged when it is symbolic or fits an int64; else the error (naming
    ``what``) that the computation overflows int64, as no tensor can have such a size."""
    if is_concrete(value) and not -INT64_MAX - 1 <= value <= INT64_MAX:  # type: ignore[operator]
        raise ctx.fail(f"{what} ({value}) overflows int64")
    return value


def broadcast_dim(a: Dim, b: Dim, ctx=None) -> Dim:  # type: ignore[no-untyped-def]
    """The dim two dims broadcast to (multidirectional); None when the facts do not say."""
    if a == b:
        return a
    if a == 1:
        return b
    if b == 1:
        return a
    if is_concrete(a) and is_concrete(b):
        if ctx is not None:
            raise ctx.fail(f"dims {a} and {b} cannot be broadcast together")
        return None
    # a symbol broadcast with a concrete dim other than 1 must be that dim (or the model fails)
    # (an unknown dim next to a concrete one other than 1 must be 1 or equal to it)
    if is_concrete(a):
        return a
    if is_concrete(b):
        return b
    return None


def broadcast(shapes: Sequence[Sequence[Dim] | None], ctx=None) -> tuple[Dim, ...] | None:  # type: ignore[no-untyped-def]
    """Numpy-style multidirectional broadcast of shapes; None when a rank is unknown."""
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)  # type: ignore[arg-type]
    out: list[Dim] = [1] * rank
    for s in shapes:
        s = tuple(s)  # type: ignore[arg-type]
        pad = (1,) * (rank - len(s)) + s
        out = [broadcast_dim(x, y, ctx) for x, y in zip(out, pad)]
    return tuple(out)


def norm_axis(axis: int, rank: int, ctx=None, what: str = "axis") -> int:  # type: ignore[no-untyped-def]
    """A possibly negative axis as an index in [0, rank)."""
    a = int(axis)
    if a < -rank or a >= rank:
        if ctx is not None:
            raise ctx.fail(f"{what} {a} is out of range for rank {rank}")
        raise ValueError(f"{what} {a} is out of range for rank {rank}")
    return a + rank if a < 0 else a


def norm_axes(axes: Sequence[int], rank: int, ctx=None) -> list[int]:  # type: ignore[no-untyped-def]
    return [norm_axis(a, rank, ctx) for a in axes]


def window_out(size: Dim, kernel: Dim, stride: int, dilation: int, pad_total: Dim,
               ceil_mode: bool = False) -> Dim:
    """Output length of a sliding window: floor-or-ceil((size + pads - ((k-1)*d+1)) / s) + 1."""
    if size is None or kernel is None or pad_total is None:
        return None
    eff = dim_add(dim_mul(dim_sub(kernel, 1), dilation), 1)
    span = dim_sub(dim_add(size, pad_total), eff)
    if ceil_mode:
        q = dim_floordiv(dim_add(span, stride - 1), stride)
    else:
        q = dim_floordiv(span, stride)
    return dim_add(q, 1)
