"""Kernels that reshape, rearrange, combine, slice, pad or create tensors.

Reshape, Squeeze, Unsqueeze, Flatten, Identity, Transpose, Split and Slice return NumPy views of
their input where they can: the runtime never mutates an array, so sharing memory is safe and
saves a copy on the operators real models run most.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ir.dtypes import DataType
from pyonnx.ops._common import as_int_list, check_alloc, normalize_axes, normalize_axis
from pyonnx.ops._tensor import shape_str
from pyonnx.ops.registry import KernelContext, kernel

__all__: list[str] = []



def _zero_of(dtype: np.dtype) -> Any:
    """The fill value the spec calls zero for a dtype: 0, False or the empty string."""
    if dtype == object:
        return ""
    return np.zeros((), dtype=dtype)


# --------------------------------------------------------------------------------------------
# Reshape, Flatten, Squeeze, Unsqueeze, Transpose
# --------------------------------------------------------------------------------------------


def _reshape_target(in_shape: tuple[int, ...], shape: Sequence[int], allowzero: int) -> list[int]:
    """Resolve the 0 (copy, unless allowzero) and -1 (infer) entries of a Reshape target."""
    out: list[int] = []
    infer_at = -1
    for i, d in enumerate(shape):
        d = int(d)
        if d == -1:
            if infer_at >= 0:
                raise ExecutionError(f"Reshape target shape {shape_str(shape)} has more than one -1")
            infer_at = i
            out.append(1)
        elif d == 0 and not allowzero:
            if i >= len(in_shape):
                raise ExecutionError(
                    f"Reshape target shape {shape_str(shape)} has 0 at position {i}, but the input "
                    f"of shape {shape_str(in_shape)} has no dimension {i} to copy")
            out.append(in_shape[i])
        elif d < 0:
            raise ExecutionError(f"Reshape target shape {shape_str(shape)} has the invalid "
                                 f"dimension {d} (allowed: -1, 0 or positive)")
        else:
            out.append(d)
    total = math.prod(in_shape)
    if infer_at >= 0:
        known = math.prod(out)
        if allowzero and any(int(d) == 0 for d in shape):
            raise ExecutionError(f"Reshape target shape {shape_str(shape)} has both 0 and -1 "
                                 "with allowzero=1, so the -1 dimension is not determined")
        if known == 0 or total % known:
            raise ExecutionError(f"cannot reshape a tensor of shape {shape_str(in_shape)} "
                                 f"({total} elements) to {shape_str(shape)}")
        out[infer_at] = total // known
    elif math.prod(out) != total:
        raise ExecutionError(f"cannot reshape a tensor of shape {shape_str(in_shape)} ({total} "
                             f"elements) to {shape_str(out)} ({math.prod(out)} elements)")
    return out


@kernel("Reshape", versions=(1,))
def reshape_1(data: np.ndarray, *, shape: Sequence[int] = (),
              consumed_inputs: Sequence[int] = ()) -> tuple[np.ndarray]:
    """Reshape-1: the target shape is the ``shape`` attribute (0 copies a dim, -1 infers one)."""
    return (data.reshape(_reshape_target(data.shape, list(shape), 0)),)


@kernel("Reshape", versions=(5, 13, 14, 19, 21, 23, 24, 25))
def reshape(data: np.ndarray, shape: np.ndarray, *, allowzero: int = 0) -> tuple[np.ndarray]:
    """Reshape data to the ``shape`` input; 0 copies the input dim unless ``allowzero``."""
    return (data.reshape(_reshape_target(data.shape, as_int_list(shape), allowzero)),)


@kernel("Flatten", versions=(1, 9, 11, 13, 21, 23, 24, 25))
def flatten(input: np.ndarray, *, axis: int = 1) -> tuple[np.ndarray]:
    """Reshape to 2-D: dims before ``axis`` form the rows, the rest the columns."""
    r = input.ndim
    if not -r <= axis <= r:
        raise ExecutionError(f"Flatten axis {axis} is out of range for rank {r} "
                             f"(allowed: {-r} to {r})")
    if axis < 0:
        axis += r
    rows = math.prod(input.shape[:axis])
    return (input.reshape(rows, math.prod(input.shape[axis:])),)


def _squeeze(data: np.ndarray, axes: Sequence[int] | None) -> np.ndarray:
    if axes is None:
        return data.reshape([d for d in data.shape if d != 1])
    ax = normalize_axes(axes, data.ndim, "Squeeze axes")
    for a in ax:
        if data.shape[a] != 1:
            raise ExecutionError(f"Squeeze axis {a} has size {data.shape[a]}, not 1 "
                                 f"(input shape {shape_str(data.shape)})")
    return data.reshape([d for i, d in enumerate(data.shape) if i not in ax])


@kernel("Squeeze", versions=(1, 11))
def squeeze_1(data: np.ndarray, *, axes: Sequence[int] | None = None) -> tuple[np.ndarray]:
    """Remove the size-1 dims named by the ``axes`` attribute (all size-1 dims if absent)."""
    return (_squeeze(data, None if axes is None else list(axes)),)


@kernel("Squeeze", versions=(13, 21, 23, 24, 25))
def squeeze(data: np.ndarray, axes: np.ndarray | None = None) -> tuple[np.ndarray]:
    """Remove the size-1 dims named by the ``axes`` input (all size-1 dims if absent or empty)."""
    # an empty axes tensor counts as absent, as in onnxruntime
    return (_squeeze(data, None if axes is None or axes.size == 0 else as_int_list(axes)),)


def _unsqueeze(data: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    out_rank = data.ndim + len(axes)
    ax = set(normalize_axes(axes, out_rank, "Unsqueeze axes"))
    it = iter(data.shape)
    return data.reshape([1 if i in ax else next(it) for i in range(out_rank)])


@kernel("Unsqueeze", versions=(1, 11))
def unsqueeze_1(data: np.ndarray, *, axes: Sequence[int]) -> tuple[np.ndarray]:
    """Insert size-1 dims at the output positions named by the ``axes`` attribute."""
    return (_unsqueeze(data, list(axes)),)


@kernel("Unsqueeze", versions=(13, 21, 23, 24, 25))
def unsqueeze(data: np.ndarray, axes: np.ndarray) -> tuple[np.ndarray]:
    """Insert size-1 dims at the output positions named by the ``axes`` input."""
    return (_unsqueeze(data, as_int_list(axes)),)


@kernel("Transpose", versions=(1, 13, 21, 23, 24, 25))
def transpose(data: np.ndarray, *, perm: Sequence[int] | None = None) -> tuple[np.ndarray]:
    """Permute the axes (reverse them when ``perm`` is absent); returns a strided view."""
    if perm is None:
        return (data.transpose(),)
    p = [int(a) for a in perm]
    if sorted(p) != list(range(data.ndim)):
        raise ExecutionError(f"Transpose perm {p} is not a permutation of the {data.ndim} axes "
                             f"of the input of shape {shape_str(data.shape)}")
    return (data.transpose(p),)


# --------------------------------------------------------------------------------------------
# Concat, Split, Slice
# --------------------------------------------------------------------------------------------


@kernel("Concat", versions=(1, 4, 11, 13))
def concat(*inputs: np.ndarray, axis: int = 1) -> tuple[np.ndarray]:
    """Join tensors of equal shape (except along ``axis``) along ``axis``."""
    if not inputs:
        raise ExecutionError("Concat needs at least one input")
    first = inputs[0]
    r = first.ndim
    if r == 0:
        raise ExecutionError("Concat cannot join scalars (rank 0 inputs)")
    ax = normalize_axis(axis, r, "Concat axis")
    for t in inputs[1:]:
        if t.ndim != r or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != ax):
            raise ExecutionError(
                f"Concat inputs must agree in every dimension except axis {ax}: got shapes "
                + ", ".join(shape_str(x.shape) for x in inputs))
        if t.dtype != first.dtype:
            raise ExecutionError(f"Concat inputs have different element types: {first.dtype} "
                                 f"and {t.dtype}")
    if len(inputs) == 1:
        return (first,)
    return (np.concatenate(inputs, axis=ax),)


def _split(input: np.ndarray, axis: int, sizes: list[int]) -> tuple[np.ndarray, ...]:
    ax = normalize_axis(axis, input.ndim, "Split axis")
    dim = input.shape[ax]
    if any(s < 0 for s in sizes) or sum(sizes) != dim:
        raise ExecutionError(f"Split sizes {sizes} must be non-negative and sum to {dim}, the "
                             f"size of axis {ax} of the input of shape {shape_str(input.shape)}")
    outs = []
    start = 0
    index: list[Any] = [slice(None)] * input.ndim
    for s in sizes:
        index[ax] = slice(start, start + s)
        outs.append(input[tuple(index)])
        start += s
    return tuple(outs)


def _equal_sizes(dim: int, n: int, axis: int) -> list[int]:
    if n <= 0 or dim % n:
        raise ExecutionError(f"Split cannot divide axis {axis} of size {dim} into {n} equal parts")
    return [dim // n] * n


def _check_count(sizes: list[int], ctx: KernelContext) -> list[int]:
    if len(sizes) != ctx.num_outputs:
        raise ExecutionError(f"Split sizes {sizes} give {len(sizes)} parts but the node has "
                             f"{ctx.num_outputs} outputs")
    return sizes


@kernel("Split", versions=(1,))
def split_1(input: np.ndarray, split_in: np.ndarray | None = None, *, axis: int = 0,
            split: Sequence[int] | None = None, ctx: KernelContext) -> tuple[np.ndarray, ...]:
    """Split-1: part sizes from the optional second input or the ``split`` attribute."""
    if split_in is not None:
        sizes = as_int_list(split_in)
    elif split is not None:
        sizes = [int(s) for s in split]
    else:
        ax = normalize_axis(axis, input.ndim, "Split axis")
        sizes = _equal_sizes(input.shape[ax], ctx.num_outputs, ax)
    return _split(input, axis, _check_count(sizes, ctx))


@kernel("Split", versions=(2, 11))
def split_2(input: np.ndarray, *, axis: int = 0, split: Sequence[int] | None = None,
            ctx: KernelContext) -> tuple[np.ndarray, ...]:
    """Split along ``axis`` into the ``split`` attribute's sizes, or equal parts."""
    if split is not None:
        sizes = [int(s) for s in split]
    else:
        ax = normalize_axis(axis, input.ndim, "Split axis")
        sizes = _equal_sizes(input.shape[ax], ctx.num_outputs, ax)
    return _split(input, axis, _check_count(sizes, ctx))


@kernel("Split", versions=(13,))
def split_13(input: np.ndarray, split: np.ndarray | None = None, *, axis: int = 0,
             ctx: KernelContext) -> tuple[np.ndarray, ...]:
    """Split along ``axis`` into the ``split`` input's sizes, or equal parts."""
    if split is not None and split.size:  # an empty split tensor counts as absent
        sizes = as_int_list(split)
    else:
        ax = normalize_axis(axis, input.ndim, "Split axis")
        sizes = _equal_sizes(input.shape[ax], ctx.num_outputs, ax)
    return _split(input, axis, _check_count(sizes, ctx))


@kernel("Split", versions=(18,))
def split_18(input: np.ndarray, split: np.ndarray | None = None, *, axis: int = 0,
             num_outputs: int | None = None, ctx: KernelContext) -> tuple[np.ndarray, ...]:
    """Split by the ``split`` input, or into ``num_outputs`` parts of ceil(dim/n), the last smaller."""
    if split is not None and split.size:  # an empty split tensor counts as absent
        if num_outputs is not None:
            raise ExecutionError("Split: give either the 'split' input or the 'num_outputs' "
                                 "attribute, not both")
        return _split(input, axis, _check_count(as_int_list(split), ctx))
    n = ctx.num_outputs if num_outputs is None else int(num_outputs)
    if n != ctx.num_outputs:
        raise ExecutionError(f"Split num_outputs={n} but the node has {ctx.num_outputs} outputs")
    ax = normalize_axis(axis, input.ndim, "Split axis")
    dim = input.shape[ax]
    if n <= 0:
        raise ExecutionError(f"Split num_outputs must be positive, got {n}")
    chunk = -(-dim // n)
    sizes = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
    if sizes[-1] < 0:
        raise ExecutionError(f"Split cannot divide axis {ax} of size {dim} into {n} parts of "
                             f"{chunk} with a smaller last part")
    return _split(input, ax, sizes)


def _slice(data: np.ndarray, starts: list[int], ends: list[int], axes: list[int] | None,
           steps: list[int] | None) -> np.ndarray:
    r = data.ndim
    n = len(starts)
    if len(ends) != n:
        raise ExecutionError(f"Slice starts {starts} and ends {ends} differ in length")
    if axes is None:
        if n > r:
            raise ExecutionError(f"Slice starts {starts} has more entries than the rank {r}")
        ax: Sequence[int] = range(n)
    elif len(axes) != n:
        raise ExecutionError(f"Slice axes {axes} and starts {starts} differ in length")
    else:
        ax = normalize_axes(axes, r, "Slice axes")
    if steps is None:
        steps = [1] * n
    elif len(steps) != n:
        raise ExecutionError(f"Slice steps {steps} and starts {starts} differ in length")
    index: list[slice] = [slice(None)] * r
    for a, s, e, st in zip(ax, starts, ends, steps):
        dim = data.shape[a]
        if st == 0:
            raise ExecutionError(f"Slice step for axis {a} is 0")
        if s < 0:
            s += dim
        if e < 0:
            e += dim
        if st > 0:
            s = min(max(s, 0), dim)
            e = min(max(e, 0), dim)
            index[a] = slice(s, e, st)
        else:
            s = min(max(s, 0), dim - 1)
            e = min(max(e, -1), dim - 1)
            # -1 here means "before index 0", which a Python slice spells as None
            index[a] = slice(s, e if e >= 0 else None, st)
    return data[tuple(index)]


@kernel("Slice", versions=(1,))
def slice_1(data: np.ndarray, *, starts: Sequence[int], ends: Sequence[int],
            axes: Sequence[int] | None = None) -> tuple[np.ndarray]:
    """Slice-1: ``starts``/``ends``/``axes`` attributes, step 1."""
    return (_slice(data, [int(x) for x in starts], [int(x) for x in ends],
                   None if axes is None else [int(x) for x in axes], None),)


@kernel("Slice", versions=(10, 11, 13))
def slice_(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, axes: np.ndarray | None = None,
           steps: np.ndarray | None = None) -> tuple[np.ndarray]:
    """Strided slice with clamped starts/ends per axis (negative steps walk backwards)."""
    return (_slice(data, as_int_list(starts), as_int_list(ends),
                   None if axes is None else as_int_list(axes),
                   None if steps is None else as_int_list(steps)),)


# --------------------------------------------------------------------------------------------
# Expand, Tile, Pad, CenterCropPad
# --------------------------------------------------------------------------------------------


def _broadcast_shape(a: Sequence[int], b: Sequence[int]) -> list[int]:
    r = max(len(a), len(b))
    a = [1] * (r - len(a)) + list(a)
    b = [1] * (r - len(b)) + list(b)
    out = []
    for x, y in zip(a, b):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ExecutionError
    return out


@kernel("Expand", versions=(8, 13))
def expand(input: np.ndarray, shape: np.ndarray, *, ctx: KernelContext) -> tuple[np.ndarray]:
    """Broadcast the input against ``shape`` (bidirectionally, like NumPy)."""
    target = as_int_list(shape)
    if any(d < 0 for d in target):
        raise ExecutionError(f"Expand shape {target} has a negative dimension")
    try:
        out_shape = _broadcast_shape(input.shape, target)
    except ExecutionError:
        raise ExecutionError(f"Expand: input shape {shape_str(input.shape)} cannot be "
                             f"broadcast with shape {shape_str(target)}") from None
    if tuple(out_shape) == input.shape:
        return (input,)
    check_alloc(out_shape, input.dtype, ctx.max_tensor_bytes, "Expand output")
    # a fresh array, not a read-only broadcast view: the result may be a graph output
    out = np.empty(out_shape, dtype=input.dtype)
    out[...] = input
    return (out,)


@kernel("Tile", versions=(1,))
def tile_1(input: np.ndarray, tiles: np.ndarray, axis: np.ndarray, *,
           ctx: KernelContext) -> tuple[np.ndarray]:
    """Tile-1: repeat the input ``tiles`` times along ``axis``."""
    ax = normalize_axis(int(np.asarray(axis).reshape(-1)[0]), input.ndim, "Tile axis")
    reps = [1] * input.ndim
    reps[ax] = int(np.asarray(tiles).reshape(-1)[0])
    return _tile(input, reps, ctx)


def _tile(input: np.ndarray, reps: list[int], ctx: KernelContext) -> tuple[np.ndarray]:
    if len(reps) != input.ndim:
        raise ExecutionError(f"Tile repeats {reps} must have one entry per input dimension "
                             f"(input shape {shape_str(input.shape)})")
    if any(r < 0 for r in reps):
        raise ExecutionError(f"Tile repeats {reps} must not be negative")
    out_shape = [d * r for d, r in zip(input.shape, reps)]
    check_alloc(out_shape, input.dtype, ctx.max_tensor_bytes, "Tile output")
    if all(r == 1 for r in reps):
        return (input,)
    return (np.tile(input, reps),)


@kernel("Tile", versions=(6, 13))
def tile(input: np.ndarray, repeats: np.ndarray, *, ctx: KernelContext) -> tuple[np.ndarray]:
    """Repeat the whole tensor ``repeats[i]`` times along each axis i."""
    return _tile(input, as_int_list(repeats), ctx)


def _pad(data: np.ndarray, pads: list[int], mode: str, value: Any, axes: list[int] | None,
         ctx: KernelContext) -> np.ndarray:
    r = data.ndim
    if axes is None:
        ax: tuple[int, ...] = tuple(range(r))
    else:
        ax = normalize_axes(axes, r, "Pad axes")
    if len(pads) != 2 * len(ax):
        raise ExecutionError(f"Pad pads {pads} must have 2 * {len(ax)} entries "
                             f"(input shape {shape_str(data.shape)})")
    before = [0] * r
    after = [0] * r
    for i, a in enumerate(ax):
        before[a] = pads[i]
        after[a] = pads[i + len(ax)]
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise UnsupportedOperatorError(f"Pad mode {mode!r} is not supported "
                                       "(constant, reflect, edge, wrap)")
    # negative pads remove elements: crop first, then pad the rest
    if any(p < 0 for p in before + after):
        index = []
        for d, b, e in zip(data.shape, before, after):
            s = -b if b < 0 else 0
            stop = d + e if e < 0 else d
            if stop < s:
                raise ExecutionError(f"Pad pads {pads} remove more than the input of shape "
                                     f"{shape_str(data.shape)} holds")
            index.append(slice(s, stop))
        data = data[tuple(index)]
        before = [max(p, 0) for p in before]
        after = [max(p, 0) for p in after]
    out_shape = [d + b + e for d, b, e in zip(data.shape, before, after)]
    check_alloc(out_shape, data.dtype, ctx.max_tensor_bytes, "Pad output")
    if not any(before) and not any(after):
        return data
    if mode == "constant":
        out = np.full(out_shape, value, dtype=data.dtype)
        out[tuple(slice(b, b + d) for b, d in zip(before, data.shape))] = data
        return out
    for d, b, e in zip(data.shape, before, after):
        if d == 0 and (b or e):
            raise ExecutionError(f"Pad mode {mode!r} cannot pad an axis of size 0 "
                                 f"(input shape {shape_str(data.shape)})")
    if mode == "edge" or (mode == "reflect" and all(b < d and e < d for d, b, e in
                                                    zip(data.shape, before, after))):
        return _pad_concat(data, before, after, mode)
    return np.pad(data, list(zip(before, after)), mode=mode)


def _pad_concat(data: np.ndarray, before: list[int], after: list[int], mode: str) -> np.ndarray:
    """Edge padding, or reflect padding narrower than the axis, as one concatenation per padded
    axis (``np.pad`` costs about 100 µs of Python per call, which dominates on the small
    tensors of streaming models)."""
    out = data
    r = data.ndim
    for a in range(r):
        b, e = before[a], after[a]
        if not (b or e):
            continue
        d = out.shape[a]
        lead = (slice(None),) * a
        parts = []
        if b:
            if mode == "reflect":  # x[b], x[b - 1], ..., x[1]
                parts.append(out[lead + (slice(b, 0, -1),)])
            else:
                parts.append(np.repeat(out[lead + (slice(0, 1),)], b, axis=a))
        parts.append(out)
        if e:
            if mode == "reflect":  # x[d - 2], ..., x[d - 1 - e]
                stop = d - 2 - e
                parts.append(out[lead + (slice(d - 2, stop if stop >= 0 else None, -1),)])
            else:
                parts.append(np.repeat(out[lead + (slice(d - 1, d),)], e, axis=a))
        out = np.concatenate(parts, axis=a)
    return out


def _pad_value(constant_value: np.ndarray | None, dtype: np.dtype) -> Any:
    if constant_value is None or constant_value.size == 0:
        return _zero_of(dtype)
    v = constant_value.reshape(-1)[0]
    return v if dtype == object else np.asarray(v).astype(dtype)


@kernel("Pad", versions=(1,))
def pad_1(data: np.ndarray, *, paddings: Sequence[int], mode: str = "constant",
          value: float = 0.0, ctx: KernelContext) -> tuple[np.ndarray]:
    """Pad-1: ``paddings`` attribute ([x1_begin, x2_begin, ..., x1_end, ...]) and ``value``."""
    if mode == "wrap":
        raise UnsupportedOperatorError("Pad mode 'wrap' needs opset 19 or later")
    return (_pad(data, [int(p) for p in paddings], mode, np.asarray(value).astype(data.dtype),
                 None, ctx),)


@kernel("Pad", versions=(2,))
def pad_2(data: np.ndarray, *, pads: Sequence[int], mode: str = "constant", value: float = 0.0,
          ctx: KernelContext) -> tuple[np.ndarray]:
    """Pad-2: ``pads`` attribute (negative values crop) and ``value``."""
    if mode == "wrap":
        raise UnsupportedOperatorError("Pad mode 'wrap' needs opset 19 or later")
    return (_pad(data, [int(p) for p in pads], mode, np.asarray(value).astype(data.dtype),
                 None, ctx),)


@kernel("Pad", versions=(11, 13))
def pad_11(data: np.ndarray, pads: np.ndarray, constant_value: np.ndarray | None = None, *,
           mode: str = "constant", ctx: KernelContext) -> tuple[np.ndarray]:
    """Pad with ``pads``/``constant_value`` inputs; modes constant, reflect, edge."""
    if mode == "wrap":
        raise UnsupportedOperatorError("Pad mode 'wrap' needs opset 19 or later")
    return (_pad(data, as_int_list(pads), mode, _pad_value(constant_value, data.dtype), None, ctx),)


@kernel("Pad", versions=(18,))
def pad_18(data: np.ndarray, pads: np.ndarray, constant_value: np.ndarray | None = None,
           axes: np.ndarray | None = None, *, mode: str = "constant",
           ctx: KernelContext) -> tuple[np.ndarray]:
    """Pad the axes named by the optional ``axes`` input; modes constant, reflect, edge."""
    if mode == "wrap":
        raise UnsupportedOperatorError("Pad mode 'wrap' needs opset 19 or later")
    return (_pad(data, as_int_list(pads), mode, _pad_value(constant_value, data.dtype),
                 None if axes is None else as_int_list(axes), ctx),)


@kernel("Pad", versions=(19, 21, 23, 24, 25))
def pad_19(data: np.ndarray, pads: np.ndarray, constant_value: np.ndarray | None = None,
           axes: np.ndarray | None = None, *, mode: str = "constant",
           ctx: KernelContext) -> tuple[np.ndarray]:
    """Pad the axes named by ``axes``; modes constant, reflect, edge, wrap; negative pads crop."""
    return (_pad(data, as_int_list(pads), mode, _pad_value(constant_value, data.dtype),
                 None if axes is None else as_int_list(axes), ctx),)


@kernel("CenterCropPad", versions=(18,))
def center_crop_pad(input_data: np.ndarray, shape: np.ndarray, *,
                    axes: Sequence[int] | None = None, ctx: KernelContext) -> tuple[np.ndarray]:
    """Crop (window start rounded down) or zero-pad (extra on the right) each axis to ``shape``."""
    r = input_data.ndim
    ax = normalize_axes(range(r) if axes is None else axes, r, "CenterCropPad axes")
    target = as_int_list(shape)
    if len(target) != len(ax):
        raise ExecutionError(f"CenterCropPad shape {target} must have one entry per axis {list(ax)}")
    if any(t < 0 for t in target):
        raise ExecutionError(f"CenterCropPad shape {target} has a negative dimension")
    out_shape = list(input_data.shape)
    src: list[slice] = [slice(None)] * r
    dst: list[slice] = [slice(None)] * r
    for a, t in zip(ax, target):
        d = input_data.shape[a]
        out_shape[a] = t
        if d >= t:
            s = (d - t) // 2
            src[a] = slice(s, s + t)
        else:
            s = (t - d) // 2
            dst[a] = slice(s, s + d)
    check_alloc(out_shape, input_data.dtype, ctx.max_tensor_bytes, "CenterCropPad output")
    cropped = input_data[tuple(src)]
    if all(d == slice(None) for d in dst):
        return (cropped,)
    out = np.full(out_shape, _zero_of(input_data.dtype), dtype=input_data.dtype)
    out[tuple(dst)] = cropped
    return (out,)


# --------------------------------------------------------------------------------------------
# Shape, Size, Identity, Constant, ConstantOfShape, Range, EyeLike, Trilu
# --------------------------------------------------------------------------------------------


@kernel("Shape", versions=(1, 13))
def shape_1(data: np.ndarray) -> tuple[np.ndarray]:
    """The input's shape as a 1-D int64 tensor."""
    return (np.array(data.shape, dtype=np.int64),)


@kernel("Shape", versions=(15, 19, 21, 23, 24, 25))
def shape(data: np.ndarray, *, start: int = 0, end: int | None = None) -> tuple[np.ndarray]:
    """The dims ``start:end`` of the input's shape (axes clamped to [0, rank]) as int64."""
    r = data.ndim
    s = start + r if start < 0 else start
    e = r if end is None else (end + r if end < 0 else end)
    s = min(max(s, 0), r)
    e = min(max(e, 0), r)
    return (np.array(data.shape[s:e] if s < e else (), dtype=np.int64),)


@kernel("Size", versions=(1, 13, 19, 21, 23, 24, 25))
def size(data: np.ndarray) -> tuple[np.ndarray]:
    """The number of elements as an int64 scalar."""
    return (np.array(data.size, dtype=np.int64),)


@kernel("Identity", versions=(1, 13, 14, 16, 19, 21, 23, 24, 25))
def identity(input: Any) -> tuple[Any]:
    """The input itself: a tensor, a sequence or an optional passes through unchanged."""
    return (input,)


@kernel("Constant", versions=(1, 9, 11, 12, 13, 19, 21, 23, 24, 25))
def constant(*, value: np.ndarray | None = None, sparse_value: np.ndarray | None = None,
             value_float: float | None = None, value_floats: Sequence[float] | None = None,
             value_int: int | None = None, value_ints: Sequence[int] | None = None,
             value_string: str | None = None,
             value_strings: Sequence[str] | None = None) -> tuple[np.ndarray]:
    """The tensor held by whichever one of the value attributes the node sets."""
    given = [(n, v) for n, v in (("value", value), ("sparse_value", sparse_value),
                                 ("value_float", value_float), ("value_floats", value_floats),
                                 ("value_int", value_int), ("value_ints", value_ints),
                                 ("value_string", value_string), ("value_strings", value_strings))
             if v is not None]
    if len(given) != 1:
        raise ExecutionError("Constant must set exactly one value attribute, got "
                             f"{[n for n, _ in given] or 'none'}")
    name, v = given[0]
    if name in ("value", "sparse_value"):
        return (np.asarray(v),)
    if name == "value_float":
        return (np.array(v, dtype=np.float32),)
    if name == "value_floats":
        return (np.array(list(v), dtype=np.float32).reshape(-1),)
    if name == "value_int":
        return (np.array(v, dtype=np.int64),)
    if name == "value_ints":
        return (np.array(list(v), dtype=np.int64).reshape(-1),)
    if name == "value_string":
        out = np.empty((), dtype=object)
        out[()] = v
        return (out,)
    out = np.empty(len(v), dtype=object)
    out[:] = list(v)
    return (out,)


@kernel("ConstantOfShape", versions=(9, 20, 21, 23, 24, 25))
def constant_of_shape(input: np.ndarray, *, value: np.ndarray | None = None,
                      ctx: KernelContext) -> tuple[np.ndarray]:
    """A tensor of shape ``input`` filled with the one-element ``value`` (default float32 0)."""
    dims = as_int_list(input)
    if value is None:
        value = np.zeros(1, dtype=np.float32)
    if value.size != 1:
        raise ExecutionError(f"ConstantOfShape value must hold one element, got {value.size}")
    check_alloc(dims, value.dtype, ctx.max_tensor_bytes, "ConstantOfShape output")
    return (np.full(dims, value.reshape(-1)[0], dtype=value.dtype),)


def _range(start: np.ndarray, limit: np.ndarray, delta: np.ndarray, compute: np.dtype,
           ctx: KernelContext) -> np.ndarray:
    dtype = start.dtype
    if not (start.size == limit.size == delta.size == 1):
        raise ExecutionError("Range start, limit and delta must be scalars")
    s, l, d = (np.asarray(x).reshape(()) for x in (start, limit, delta))
    if dtype.kind in "iu":
        si, li, di = int(s), int(l), int(d)
        if di == 0:
            raise ExecutionError("Range delta must not be 0")
        n = max(-((si - li) // di), 0)  # ceil((limit - start) / delta) in exact integers
        check_alloc([n], dtype, ctx.max_tensor_bytes, "Range output")
        return (si + np.arange(n, dtype=np.int64) * di).astype(dtype)
    sf, lf, df = float(s), float(l), float(d)
    if df == 0 or not math.isfinite(sf) or not math.isfinite(lf) or math.isnan(df):
        raise ExecutionError(f"Range needs finite start and limit and a non-zero delta, got "
                             f"start={sf}, limit={lf}, delta={df}")
    cs, cd = s.astype(compute), d.astype(compute)
    # the difference in the compute type, the division in double (as onnxruntime does)
    with np.errstate(over="ignore"):
        steps = float(l.astype(compute) - cs) / float(cd)
    if not math.isfinite(steps):
        raise ExecutionError(f"Range from {sf} to {lf} by {df} has no finite length")
    n = max(math.ceil(steps), 0)
    check_alloc([n], dtype, ctx.max_tensor_bytes, "Range output")
    return (cs + np.arange(n).astype(compute) * cd).astype(dtype)


@kernel("Range", versions=(11,))
def range_11(start: np.ndarray, limit: np.ndarray, delta: np.ndarray, *,
             ctx: KernelContext) -> tuple[np.ndarray]:
    """start + i * delta for i in [0, max(ceil((limit - start) / delta), 0))."""
    return (_range(start, limit, delta, start.dtype, ctx),)


@kernel("Range", versions=(27,))
def range_27(start: np.ndarray, limit: np.ndarray, delta: np.ndarray, *, stash_type: int = 1,
             ctx: KernelContext) -> tuple[np.ndarray]:
    """Range; float16/bfloat16 inputs compute in float32 when ``stash_type`` is 1 (default)."""
    compute = start.dtype
    if start.dtype in (np.float16, DataType.BFLOAT16.numpy) and stash_type == DataType.FLOAT:
        compute = np.dtype(np.float32)
    return (_range(start, limit, delta, compute, ctx),)


@kernel("EyeLike", versions=(9, 22))
def eye_like(input: np.ndarray, *, dtype: int | None = None, k: int = 0,
             ctx: KernelContext) -> tuple[np.ndarray]:
    """A matrix of the input's 2-D shape with ones on diagonal ``k`` and zeros elsewhere."""
    if input.ndim != 2:
        raise ExecutionError(f"EyeLike needs a 2-D input, got shape {shape_str(input.shape)}")
    out_dtype = input.dtype if dtype is None else DataType(dtype).numpy
    check_alloc(input.shape, out_dtype, ctx.max_tensor_bytes, "EyeLike output")
    n, m = input.shape
    out = np.zeros((n, m), dtype=out_dtype)
    if -n < k < m:
        i = np.arange(max(0, -k), min(n, m - k))
        out[i, i + k] = 1
    return (out,)


@kernel("Trilu", versions=(14,))
def trilu(input: np.ndarray, k: np.ndarray | None = None, *, upper: int = 1) -> tuple[np.ndarray]:
    """Keep the upper (or lower) triangle of the last two dims relative to diagonal ``k``."""
    if input.ndim < 2:
        raise ExecutionError(f"Trilu needs rank >= 2, got shape {shape_str(input.shape)}")
    kk = 0 if k is None else int(np.asarray(k).reshape(-1)[0])
    n, m = input.shape[-2:]
    kk = min(max(kk, -n - 1), m + 1)  # beyond the matrix every diagonal behaves alike
    rows = np.arange(n)[:, None]
    cols = np.arange(m)[None, :]
    keep = (cols - rows >= kk) if upper else (cols - rows <= kk)
    return (np.where(keep, input, _zero_of(input.dtype)).astype(input.dtype, copy=False),)


# --------------------------------------------------------------------------------------------
# DepthToSpace, SpaceToDepth, ReverseSequence
# --------------------------------------------------------------------------------------------


def _check_4d(x: np.ndarray, op: str, blocksize: int) -> tuple[int, int, int, int]:
    if x.ndim != 4:
        raise ExecutionError(f"{op} needs a 4-D input, got shape {shape_str(x.shape)}")
    if blocksize <= 0:
        raise ExecutionError(f"{op} blocksize must be positive, got {blocksize}")
    b, c, h, w = x.shape
    return b, c, h, w


@kernel("DepthToSpace", versions=(1, 11, 13, 28))
def depth_to_space(input: np.ndarray, *, blocksize: int, mode: str = "DCR") -> tuple[np.ndarray]:
    """Move blocks of channels into blocksize x blocksize spatial blocks (DCR or CRD order)."""
    b, c, h, w = _check_4d(input, "DepthToSpace", blocksize)
    bs = blocksize
    if c % (bs * bs):
        raise ExecutionError(f"DepthToSpace: channels {c} are not a multiple of blocksize^2 = "
                             f"{bs * bs}")
    c2 = c // (bs * bs)
    if mode == "DCR":
        tmp = input.reshape(b, bs, bs, c2, h, w).transpose(0, 3, 4, 1, 5, 2)
    elif mode == "CRD":
        tmp = input.reshape(b, c2, bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        raise UnsupportedOperatorError(f"DepthToSpace mode {mode!r} is not DCR or CRD")
    return (tmp.reshape(b, c2, h * bs, w * bs),)


def _space_to_depth(input: np.ndarray, blocksize: int, mode: str) -> np.ndarray:
    b, c, h, w = _check_4d(input, "SpaceToDepth", blocksize)
    bs = blocksize
    if h % bs or w % bs:
        raise ExecutionError(f"SpaceToDepth: height {h} and width {w} must be multiples of "
                             f"blocksize {bs}")
    tmp = input.reshape(b, c, h // bs, bs, w // bs, bs)
    if mode == "DCR":
        tmp = tmp.transpose(0, 3, 5, 1, 2, 4)
    elif mode == "CRD":
        tmp = tmp.transpose(0, 1, 3, 5, 2, 4)
    else:
        raise UnsupportedOperatorError(f"SpaceToDepth mode {mode!r} is not DCR or CRD")
    return tmp.reshape(b, c * bs * bs, h // bs, w // bs)


@kernel("SpaceToDepth", versions=(1, 13))
def space_to_depth_1(input: np.ndarray, *, blocksize: int) -> tuple[np.ndarray]:
    """Move blocksize x blocksize spatial blocks into channels (block offset outermost)."""
    return (_space_to_depth(input, blocksize, "DCR"),)


@kernel("SpaceToDepth", versions=(28,))
def space_to_depth(input: np.ndarray, *, blocksize: int, mode: str = "DCR") -> tuple[np.ndarray]:
    """Move blocksize x blocksize spatial blocks into channels, in DCR or CRD order."""
    return (_space_to_depth(input, blocksize, mode),)


@kernel("ReverseSequence", versions=(10, 28))
def reverse_sequence(input: np.ndarray, sequence_lens: np.ndarray, *, batch_axis: int = 1,
                     time_axis: int = 0) -> tuple[np.ndarray]:
    """Reverse the first sequence_lens[b] steps along ``time_axis`` of each batch entry."""
    if input.ndim < 2:
        raise ExecutionError(f"ReverseSequence needs rank >= 2, got shape {shape_str(input.shape)}")
    if {batch_axis, time_axis} != {0, 1}:
        raise ExecutionError(f"ReverseSequence batch_axis={batch_axis} and time_axis={time_axis} "
                             "must be 0 and 1 in some order")
    nb, nt = input.shape[batch_axis], input.shape[time_axis]
    lens = np.asarray(sequence_lens).astype(np.int64).reshape(-1)
    if lens.shape[0] != nb:
        raise ExecutionError(f"ReverseSequence sequence_lens has {lens.shape[0]} entries, but the "
                             f"batch axis has size {nb}")
    if lens.size and (lens.min() < 0 or lens.max() > nt):
        bad = int(lens.min()) if lens.min() < 0 else int(lens.max())
        raise ExecutionError(f"ReverseSequence sequence_lens contains {bad}, outside the allowed "
                             f"range [0, {nt}]")
    t = np.arange(nt)[None, :]
    L = lens[:, None]
    src = np.where(t < L, L - 1 - t, t)  # [batch, time]: the time step each output reads
    if batch_axis == 1:
        src = src.T  # [time, batch]
    src = src.reshape(src.shape + (1,) * (input.ndim - 2))
    return (np.take_along_axis(input, src, axis=time_axis),)
