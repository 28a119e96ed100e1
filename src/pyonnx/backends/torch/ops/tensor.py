"""Tensor-shaping and indexing operators. Shapes read from tensors (Reshape's shape, Slice's
starts, ...) are read at run time, so converted modules keep dynamic shapes."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pyonnx.backends.torch.dtypes import from_numpy, torch_dtype
from pyonnx.backends.torch.ops import torch_op


def _ints(t):
    """A 1-D (or scalar) integer tensor's values as Python ints."""
    if t is None:
        return None
    if isinstance(t, (list, tuple)):
        return [int(v) for v in t]
    return [int(v) for v in t.reshape(-1).tolist()]


def _axis(a: int, rank: int) -> int:
    return a + rank if a < 0 else a


# ---------------------------------------------------------------- constants

def _no_strings(node):
    if "value_string" in node.attributes or "value_strings" in node.attributes:
        return "string constants have no torch tensor"
    v = node.attributes.get("value")
    if v is not None and getattr(v.value, "dtype", None) is not None:
        from pyonnx.backends.torch.dtypes import supported
        if not supported(v.value.dtype):
            return f"constant of element type {v.value.dtype.name}, which torch lacks"
    return None


@torch_op("Constant", needs_device=True, check=_no_strings)
def constant(value=None, value_float=None, value_floats=None, value_int=None, value_ints=None,
             value_string=None, value_strings=None, sparse_value=None, device=None):
    if value is not None:
        return from_numpy(np.asarray(value), device)
    if sparse_value is not None:
        return from_numpy(np.asarray(sparse_value), device)
    if value_float is not None:
        return torch.tensor(value_float, dtype=torch.float32, device=device)
    if value_floats is not None:
        return torch.tensor(value_floats, dtype=torch.float32, device=device)
    if value_int is not None:
        return torch.tensor(value_int, dtype=torch.int64, device=device)
    return torch.tensor(list(value_ints), dtype=torch.int64, device=device)


@torch_op("ConstantOfShape")
def constant_of_shape(shape, value=None):
    if value is None:
        return torch.zeros(_ints(shape), dtype=torch.float32, device=shape.device)
    # value: a NumPy array (a kernel's attribute) or a tensor (a converted module's buffer)
    v = from_numpy(value).reshape(-1)
    return torch.full(_ints(shape), v[0].item(), dtype=v.dtype, device=shape.device)


@torch_op("Range")
def range_(start, limit, delta):
    s, l, d = start.item(), limit.item(), delta.item()
    n = max(int(np.ceil((l - s) / d)), 0)
    return (start + torch.arange(n, device=start.device, dtype=start.dtype) * delta).to(start.dtype)


@torch_op("EyeLike")
def eye_like(x, dtype=None, k=0):
    dt = torch_dtype(dtype) if dtype is not None else x.dtype
    n, m = x.shape
    return torch.ones(n, m, device=x.device).tril(k).triu(k).to(dt)  # ones on diagonal k


# ---------------------------------------------------------------- shape

@torch_op("Shape", 1)
def shape(x, start=0, end=None):
    r = x.dim()
    s = start + r if start < 0 else start
    e = r if end is None else (end + r if end < 0 else end)
    s, e = min(max(s, 0), r), min(max(e, 0), r)
    return torch.tensor(list(x.shape)[s:e], dtype=torch.int64, device=x.device)


@torch_op("Size")
def size(x):
    return torch.tensor(x.numel(), dtype=torch.int64, device=x.device)


@torch_op("Reshape", 5)
def reshape(x, shape, allowzero=0):
    dims = _ints(shape)
    if not allowzero:
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return torch.reshape(x, dims)


@torch_op("Flatten")
def flatten(x, axis=1):
    a = _axis(axis, x.dim())
    return torch.reshape(x, (int(np.prod(x.shape[:a])), -1 if x.numel() else int(np.prod(x.shape[a:]))))


@torch_op("Squeeze", 1)
def squeeze_attr(x, axes=None):
    return squeeze(x, axes)


@torch_op("Squeeze", 13)
def squeeze(x, axes=None):
    if axes is None:
        return torch.squeeze(x)
    dims = [_axis(a, x.dim()) for a in _ints(axes)]
    return torch.squeeze(x, dims) if dims else x


@torch_op("Unsqueeze", 1)
def unsqueeze_attr(x, axes=()):
    return unsqueeze(x, list(axes))


@torch_op("Unsqueeze", 13)
def unsqueeze(x, axes):
    r = x.dim() + len(_ints(axes))
    for a in sorted(_axis(a, r) for a in _ints(axes)):
        x = torch.unsqueeze(x, a)
    return x


@torch_op("Transpose")
def transpose(x, perm=None):
    if perm is None:
        perm = list(range(x.dim()))[::-1]
    return torch.permute(x, list(perm))


@torch_op("Concat")
def concat(*xs, axis):
    return torch.cat(xs, _axis(axis, xs[0].dim()))


def _outputs(node):
    return {"_n": len(node.outputs)}


@torch_op("Split", 2, node_kwargs=_outputs)
def split_attr(x, axis=0, split=None, _n=None):
    return split_(x, split, axis=axis, _n=_n)


@torch_op("Split", 13, node_kwargs=_outputs)
def split_(x, split=None, axis=0, num_outputs=None, _n=None):
    a = _axis(axis, x.dim())
    n = x.shape[a]
    if split is not None:
        return tuple(torch.split(x, _ints(split), a))
    k = num_outputs or _n  # equal parts, the last one smaller
    size = -(-n // k)
    return tuple(torch.split(x, size, a))


@torch_op("Slice", 10)
def slice_(x, starts, ends, axes=None, steps=None):
    st, en = _ints(starts), _ints(ends)
    ax = _ints(axes) if axes is not None else list(range(len(st)))
    sp = _ints(steps) if steps is not None else [1] * len(st)
    index = [slice(None)] * x.dim()
    flips = []
    for s, e, a, k in zip(st, en, ax, sp):
        a = _axis(a, x.dim())
        n = x.shape[a]
        if k > 0:
            s = min(max(s + n if s < 0 else s, 0), n)
            e = min(max(e + n if e < 0 else e, 0), n)
            index[a] = slice(s, max(e, s), k)
        else:
            # torch has no negative steps: slice the mirrored range, then flip
            s = min(max(s + n if s < 0 else s, -1), n - 1)
            e = min(max(e + n if e < 0 else e, -1), n - 1)
            if e >= s:
                index[a] = slice(0, 0)
            else:
                index[a] = slice(e + 1, s + 1)
                flips.append((a, -k))
    out = x[tuple(index)]
    for a, k in flips:
        # elements s, s-k, s-2k, ... : flip the range e+1..s, then take every k-th from the top
        out = torch.flip(out, [a])[(slice(None),) * a + (slice(0, None, k),)]
    return out


@torch_op("Slice", 1)
def slice_attr(x, starts, ends, axes=None):
    return slice_(x, list(starts), list(ends), list(axes) if axes is not None else None)


@torch_op("Expand")
def expand(x, shape):
    # bidirectional broadcast (a 1 in shape keeps x's dimension); a view, not a copy
    return torch.broadcast_to(x, torch.broadcast_shapes(tuple(x.shape), tuple(_ints(shape))))


@torch_op("Tile")
def tile(x, repeats):
    return torch.tile(x, _ints(repeats))


@torch_op("Gather")
def gather(x, indices, axis=0):
    a = _axis(axis, x.dim())
    idx = torch.where(indices < 0, indices + x.shape[a], indices)
    return torch.index_select(x, a, idx.reshape(-1).long()).reshape(
        x.shape[:a] + idx.shape + x.shape[a + 1:])


@torch_op("GatherElements")
def gather_elements(x, indices, axis=0):
    a = _axis(axis, x.dim())
    idx = torch.where(indices < 0, indices + x.shape[a], indices)
    return torch.gather(x, a, idx.long())


@torch_op("GatherND")
def gather_nd(x, indices, batch_dims=0):
    b = batch_dims
    k = indices.shape[-1]
    bshape = x.shape[:b]
    nb = int(np.prod(bshape)) if b else 1
    xf = x.reshape((nb,) + x.shape[b:])
    idx = indices.reshape(nb, -1, k).long()
    dims = torch.tensor(x.shape[b:b + k], device=x.device)
    idx = torch.where(idx < 0, idx + dims, idx)
    rows = [xf[i][tuple(idx[i].unbind(-1))] for i in range(nb)]
    out = torch.stack(rows)
    return out.reshape(tuple(indices.shape[:-1]) + tuple(x.shape[b + k:]))


def _reduce_name(reduction):
    return {"none": None, "add": "sum", "mul": "prod", "max": "amax", "min": "amin"}[reduction]


@torch_op("ScatterElements", 11)
def scatter_elements(x, indices, updates, axis=0, reduction="none"):
    a = _axis(axis, x.dim())
    idx = torch.where(indices < 0, indices + x.shape[a], indices).long()
    r = _reduce_name(reduction)
    if r is None:
        return torch.scatter(x, a, idx, updates)
    return torch.scatter_reduce(x, a, idx, updates, r, include_self=True)


@torch_op("Scatter", 9)
def scatter(x, indices, updates, axis=0):
    return scatter_elements(x, indices, updates, axis=axis)


@torch_op("ScatterND", 11)
def scatter_nd(x, indices, updates, reduction="none"):
    out = x.clone()
    k = indices.shape[-1]
    idx = indices.reshape(-1, k).long()
    dims = torch.tensor(x.shape[:k], device=x.device)
    idx = torch.where(idx < 0, idx + dims, idx)
    upd = updates.reshape((idx.shape[0],) + tuple(x.shape[k:]))
    where = tuple(idx.unbind(-1))
    if reduction == "none":
        return out.index_put(where, upd)
    if reduction == "add":
        return out.index_put(where, upd, accumulate=True)
    for i in range(idx.shape[0]):  # mul/max/min: one update at a time, in order
        w = tuple(idx[i].tolist())
        cur = out[w]
        new = {"mul": lambda: cur * upd[i], "max": lambda: torch.maximum(cur, upd[i]),
               "min": lambda: torch.minimum(cur, upd[i])}[reduction]()
        out = out.index_put(tuple(torch.tensor([j], device=x.device) for j in w), new.unsqueeze(0))
    return out


# ---------------------------------------------------------------- Pad

@torch_op("Pad", 11)
def pad(x, pads, constant_value=None, axes=None, mode="constant"):
    p = _ints(pads)
    r = x.dim()
    ax = [_axis(a, r) for a in _ints(axes)] if axes is not None else list(range(r))
    n = len(ax)
    full = [0] * (2 * r)
    for i, a in enumerate(ax):
        full[a], full[r + a] = p[i], p[n + i]
    # F.pad takes (last_begin, last_end, previous_begin, ...); negative values crop
    tp = []
    for a in reversed(range(r)):
        tp += [full[a], full[r + a]]
    if mode == "constant":
        v = constant_value.item() if constant_value is not None and constant_value.numel() else 0
        return F.pad(x, tp, mode="constant", value=v)
    # reflect/replicate/circular in torch only pad the trailing dims of a batched tensor
    out = x
    torch_mode = {"reflect": "reflect", "edge": "replicate", "wrap": "circular"}[mode]
    for a in range(r):
        b, e = full[a], full[r + a]
        if b == 0 and e == 0:
            continue
        moved = out.movedim(a, -1)
        shp = moved.shape
        flat = moved.reshape(1, -1, shp[-1])
        if flat.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            flat = F.pad(flat, (b, e), mode=torch_mode)
        else:
            flat = F.pad(flat.double(), (b, e), mode=torch_mode).to(flat.dtype)
        out = flat.reshape(shp[:-1] + (flat.shape[-1],)).movedim(-1, a)
    return out


@torch_op("Pad", 2)
def pad_attr(x, pads=(), mode="constant", value=0.0):
    return pad(x, list(pads), torch.tensor(value), mode=mode)


# ---------------------------------------------------------------- misc

@torch_op("Trilu")
def trilu(x, k=None, upper=1):
    kk = int(k.item()) if k is not None else 0
    return torch.triu(x, kk) if upper else torch.tril(x, kk)


@torch_op("CumSum")
def cumsum(x, axis, exclusive=0, reverse=0):
    a = _axis(int(axis.item()), x.dim())
    if reverse:
        x = torch.flip(x, [a])
    out = torch.cumsum(x, a).to(x.dtype)
    if exclusive:
        out = out - x
    return torch.flip(out, [a]) if reverse else out


@torch_op("CumProd")
def cumprod(x, axis, exclusive=0, reverse=0):
    a = _axis(int(axis.item()), x.dim())
    if reverse:
        x = torch.flip(x, [a])
    if exclusive:  # shift by one step, starting from 1
        x = torch.cat([torch.ones_like(x.narrow(a, 0, 1)), x.narrow(a, 0, x.shape[a] - 1)], a)
    out = torch.cumprod(x, a).to(x.dtype)
    return torch.flip(out, [a]) if reverse else out


@torch_op("OneHot")
def one_hot(indices, depth, values, axis=-1):
    d = int(depth.item())
    idx = indices.long()
    idx = torch.where(idx < 0, idx + d, idx)
    valid = (idx >= 0) & (idx < d)
    oh = F.one_hot(torch.where(valid, idx, torch.zeros_like(idx)), d) * valid.unsqueeze(-1)
    a = _axis(axis, indices.dim() + 1)
    oh = oh.movedim(-1, a)
    return torch.where(oh.bool(), values[1], values[0])


@torch_op("TopK", 10)
def topk(x, k, axis=-1, largest=1, sorted=1):
    a = _axis(axis, x.dim())
    kk = int(k.reshape(-1)[0].item())
    # ties: ONNX wants the lower index first, which a stable sort gives (torch.topk does not)
    s = torch.sort(x, dim=a, descending=bool(largest), stable=True)
    return s.values.narrow(a, 0, kk), s.indices.narrow(a, 0, kk)


@torch_op("NonZero")
def nonzero(x):
    if x.dim() == 0:
        return torch.nonzero(x.reshape(1)).T[:0] if not bool(x) else torch.zeros(
            (0, 1), dtype=torch.int64, device=x.device)
    return torch.nonzero(x).T.contiguous()


@torch_op("Compress")
def compress(x, condition, axis=None):
    c = condition.bool()
    if axis is None:
        x = x.reshape(-1)
        a = 0
    else:
        a = _axis(axis, x.dim())
    c = c[: x.shape[a]]
    idx = torch.nonzero(c).reshape(-1)
    return torch.index_select(x, a, idx)


@torch_op("DepthToSpace")
def depth_to_space(x, blocksize, mode="DCR"):
    b, c, h, w = x.shape
    s = blocksize
    if mode == "DCR":
        t = x.reshape(b, s, s, c // (s * s), h, w).permute(0, 3, 4, 1, 5, 2)
    else:
        t = x.reshape(b, c // (s * s), s, s, h, w).permute(0, 1, 4, 2, 5, 3)
    return t.reshape(b, c // (s * s), h * s, w * s)


@torch_op("SpaceToDepth")
def space_to_depth(x, blocksize, mode="DCR"):
    b, c, h, w = x.shape
    s = blocksize
    t = x.reshape(b, c, h // s, s, w // s, s)
    # DCR: depth is (block row, block column, channel); CRD: (channel, block row, block column)
    t = t.permute(0, 3, 5, 1, 2, 4) if mode == "DCR" else t.permute(0, 1, 3, 5, 2, 4)
    return t.reshape(b, c * s * s, h // s, w // s)


@torch_op("Einsum")
def einsum(*xs, equation):
    return torch.einsum(equation, *xs)


@torch_op("MatMul")
def matmul(a, b):
    return torch.matmul(a, b)


@torch_op("Gemm")
def gemm(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0):
    a = a.T if transA else a
    b = b.T if transB else b
    y = torch.matmul(a, b)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y


def _no_training_input(node):
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        return "a training_mode input may turn on random dropout, which is not implemented"
    return None


@torch_op("Dropout", 12, check=_no_training_input)
def dropout(x, ratio=None, training_mode=None, seed=None):
    # inference: the identity, and a mask of all True
    return x, torch.ones_like(x, dtype=torch.bool)


@torch_op("Dropout", 7)
def dropout_attr(x, ratio=0.5, is_test=None):
    return x, torch.ones_like(x, dtype=torch.bool)


@torch_op("ReverseSequence")
def reverse_sequence(x, sequence_lens, batch_axis=1, time_axis=0):
    out = x.clone()
    for b, n in enumerate(sequence_lens.tolist()):
        idx = [slice(None)] * x.dim()
        idx[batch_axis] = b
        idx[time_axis] = slice(0, n)
        part = x[tuple(idx)]
        ta = time_axis - (1 if batch_axis < time_axis else 0)
        out[tuple(idx)] = torch.flip(part, [ta])
    return out
