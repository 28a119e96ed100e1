"""Sequence and Optional operators: sequences are Python lists, an empty optional is None."""

from __future__ import annotations

from typing import Any

import numpy as np

from pyonnx.errors import ExecutionError
from pyonnx.ir.dtypes import DataType
from pyonnx.ops._common import as_int_list, normalize_axis
from pyonnx.ops.registry import kernel


def _position(position: np.ndarray | None, length: int, default: int, allow_end: bool) -> int:
    """Resolve a (possibly negative) sequence position, checking its range."""
    if position is None:
        return default
    p = int(np.asarray(position).reshape(-1)[0])
    hi = length if allow_end else length - 1
    if not -length <= p <= hi:
        raise ExecutionError(f"position {p} is out of range for a sequence of length {length} "
                             f"(allowed: {-length} to {hi})")
    return p + length if p < 0 else p


@kernel("SequenceEmpty", versions=(11,))
def sequence_empty(*, dtype: int = int(DataType.FLOAT)) -> tuple:
    """An empty sequence (its element type is only a declaration)."""
    return ([],)


@kernel("SequenceConstruct", versions=(11,))
def sequence_construct(*inputs: np.ndarray) -> tuple:
    """A sequence of the given tensors, in order."""
    return (list(inputs),)


@kernel("SequenceInsert", versions=(11,))
def sequence_insert(input_sequence: list[Any], tensor: np.ndarray,
                    position: np.ndarray | None = None) -> tuple:
    """A new sequence with ``tensor`` inserted at ``position`` (default: at the end)."""
    seq = list(input_sequence)
    seq.insert(_position(position, len(seq), len(seq), allow_end=True), tensor)
    return (seq,)


@kernel("SequenceAt", versions=(11,))
def sequence_at(input_sequence: list[Any], position: np.ndarray) -> tuple:
    """The element at ``position``."""
    return (input_sequence[_position(position, len(input_sequence), 0, allow_end=False)],)


@kernel("SequenceErase", versions=(11,))
def sequence_erase(input_sequence: list[Any], position: np.ndarray | None = None) -> tuple:
    """A new sequence without the element at ``position`` (default: the last)."""
    seq = list(input_sequence)
    if not seq:
        raise ExecutionError("SequenceErase on an empty sequence")
    del seq[_position(position, len(seq), len(seq) - 1, allow_end=False)]
    return (seq,)


@kernel("SequenceLength", versions=(11,))
def sequence_length(input_sequence: list[Any]) -> tuple:
    """The number of elements, as an int64 scalar."""
    return (np.array(len(input_sequence), dtype=np.int64),)


@kernel("SplitToSequence", versions=(11, 24))
def split_to_sequence(input: np.ndarray, split: np.ndarray | None = None, *, axis: int = 0,
                      keepdims: int = 1) -> tuple:
    """Split a tensor along ``axis`` into a sequence (equal chunks, sizes, or single slices)."""
    axis = normalize_axis(axis, input.ndim)
    dim = input.shape[axis]
    if split is None:
        parts = [np.take(input, i, axis=axis) if not keepdims
                 else np.take(input, [i], axis=axis) for i in range(dim)]
        return (parts,)
    s = np.asarray(split)
    if s.ndim == 0:
        size = int(s)
        if size <= 0:
            raise ExecutionError(f"split size must be positive, got {size}")
        sizes = [size] * (dim // size) + ([dim % size] if dim % size else [])
    else:
        sizes = as_int_list(s)
        if any(v < 0 for v in sizes) or sum(sizes) != dim:
            raise ExecutionError(f"split sizes {sizes} must be non-negative and sum to the "
                                 f"dimension {dim} of axis {axis}")
    bounds = np.cumsum([0] + sizes)
    parts = [np.take(input, np.arange(bounds[i], bounds[i + 1]), axis=axis)
             for i in range(len(sizes))]
    return (parts,)


@kernel("ConcatFromSequence", versions=(11,))
def concat_from_sequence(input_sequence: list[np.ndarray], *, axis: int, new_axis: int = 0
                         ) -> tuple:
    """Concatenate (or stack, with new_axis=1) the sequence's tensors along ``axis``."""
    if not input_sequence:
        raise ExecutionError("ConcatFromSequence on an empty sequence")
    rank = input_sequence[0].ndim + (1 if new_axis else 0)
    axis = normalize_axis(axis, rank)
    try:
        if new_axis:
            return (np.stack(input_sequence, axis=axis),)
        return (np.concatenate(input_sequence, axis=axis),)
    except ValueError as e:
        shapes = [list(t.shape) for t in input_sequence]
        raise ExecutionError(f"cannot concatenate tensors of shapes {shapes} on axis {axis}"
                             ) from e


@kernel("Optional", versions=(15, 28))
def optional(input: Any = None, *, type: Any = None) -> tuple:
    """An optional holding ``input``, or an empty optional (None) when it is absent."""
    return (input,)


@kernel("OptionalHasElement", versions=(15, 18, 28))
def optional_has_element(input: Any = None) -> tuple:
    """Whether the optional (or an absent input, from opset 18) holds a value."""
    return (np.array(input is not None),)


@kernel("OptionalGetElement", versions=(15, 18, 28))
def optional_get_element(input: Any) -> tuple:
    """The value inside the optional (a plain tensor or sequence passes through, from 18)."""
    if input is None:
        raise ExecutionError("OptionalGetElement on an empty optional")
    return (input,)
