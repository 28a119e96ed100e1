"""Convolution kernels: Conv, ConvTranspose, ConvInteger, DeformConv, Col2Im.

These are the readable reference kernels. Conv is im2col + one GEMM per group: the padded input
seen through a strided view that presents every (channel, kernel element, output position)
triple, one contiguous copy of that view as the column matrix, and one ``np.matmul`` batched
over images and groups. ConvTranspose is the adjoint: one GEMM to columns, then a scatter-add of
the columns into the output (col2im), which Col2Im shares. The 16-bit float types compute in
float32 and are rounded once at the end. The CPU provider's fast Conv (banded columns,
depthwise by stride phases, compiled loops) is :mod:`pyonnx.backends.cpu.conv`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from pyonnx.errors import ExecutionError
from pyonnx.ops._common import as_int_list, check_alloc, compute_dtype, prod
from pyonnx.ops._conv import (
    AUTO_PADS,
    Window,
    int_attr_list,
    kernel_offsets,
    offset_slices,
    pad_spatial,
    resolve_window,
)
from pyonnx.ops.registry import KernelContext, NodeMemo, kernel, node_memo

# --------------------------------------------------------------------------------------------
# Checks shared by the convolution family
# --------------------------------------------------------------------------------------------

def _check_conv_shapes(x: np.ndarray, w: np.ndarray, group: int, kernel_shape: Sequence[int] | None,
                       op: str = "Conv") -> None:
    """X is (N, C, *spatial), W is (M, C/group, *kernel) with M divisible by group."""
    if x.ndim < 3:
        raise ExecutionError(f"{op}: input X must have rank >= 3 (N, C, spatial...), got shape "
                             f"{list(x.shape)}")
    if w.ndim != x.ndim:
        raise ExecutionError(f"{op}: weight W has rank {w.ndim} (shape {list(w.shape)}) but X has "
                             f"rank {x.ndim} (shape {list(x.shape)}); they must be equal")
    group = int(group)
    if group < 1:
        raise ExecutionError(f"{op}: group must be >= 1, got {group}")
    c, m = x.shape[1], w.shape[0]
    if c % group:
        raise ExecutionError(f"{op}: group {group} does not divide the {c} input channels of X")
    if m % group:
        raise ExecutionError(f"{op}: group {group} does not divide the {m} output channels "
                             f"(W.shape[0])")
    if w.shape[1] * group != c:
        raise ExecutionError(f"{op}: W has {w.shape[1]} input channels per group (W.shape[1]) and "
                             f"group is {group}, so X should have {w.shape[1] * group} channels, "
                             f"but it has {c}")
    if kernel_shape is not None and len(kernel_shape) and \
            [int(k) for k in kernel_shape] != list(w.shape[2:]):
        raise ExecutionError(f"{op}: kernel_shape {list(kernel_shape)} does not match the spatial "
                             f"shape {list(w.shape[2:])} of W")


def _check_bias(b: np.ndarray | None, m: int, op: str) -> None:
    if b is not None and (b.ndim != 1 or b.shape[0] != m):
        raise ExecutionError(f"{op}: bias B must be 1-D with {m} values (one per output channel), "
                             f"got shape {list(b.shape)}")


def _add_bias(y: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    if b is not None:
        y += b.astype(y.dtype, copy=False).reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


# --------------------------------------------------------------------------------------------
# Forward convolution (float arrays in the compute dtype)
# --------------------------------------------------------------------------------------------

def conv_columns(x: np.ndarray, win: Window) -> np.ndarray:
    """The column matrix (N, C * prod(kernel), prod(out)) of ``x``: for every output position,
    the input values its window covers (padding included, as zeros), channel by channel."""
    n_img, c = x.shape[:2]
    xp = pad_spatial(x, win, 0)
    sp = xp.strides[2:]
    # a view (N, C, *kernel, *out): kernel element k of output o reads padded position
    # o * stride + k * dilation on each spatial axis
    strides = xp.strides[:2] + tuple(t * d for t, d in zip(sp, win.dilations)) \
        + tuple(t * s for t, s in zip(sp, win.strides))
    view = as_strided(xp, shape=(n_img, c) + win.kernel + win.out, strides=strides,
                      writeable=False)
    return np.ascontiguousarray(view).reshape(n_img, c * prod(win.kernel), prod(win.out))


def conv_forward(x: np.ndarray, w: np.ndarray, group: int, win: Window,
                 bias: np.ndarray | None = None) -> np.ndarray:
    """Y (N, M, *out) = convolution of x (N, C, *in) with w (M, C/group, *kernel), plus the
    per-channel ``bias`` when given: the column matrix times the weights, group by group."""
    n_img, c = x.shape[:2]
    m = w.shape[0]
    cg, mg = c // group, m // group
    nk, length = prod(win.kernel), prod(win.out)
    cols = conv_columns(x, win).reshape(n_img, group, cg * nk, length)
    y = np.matmul(w.reshape(group, mg, cg * nk), cols)
    return _add_bias(y.reshape((n_img, m) + win.out), bias)


# --------------------------------------------------------------------------------------------
# Conv
# --------------------------------------------------------------------------------------------

def conv_window(X: np.ndarray, W: np.ndarray, B: np.ndarray | None, auto_pad: str,
                dilations: Sequence[int] | None, group: int, kernel_shape: Sequence[int] | None,
                pads: Sequence[int] | None, strides: Sequence[int] | None,
                ctx: KernelContext | None, prepared: NodeMemo | None) -> Window:
    """Conv's checks and its window geometry for these inputs and attributes.

    ``prepared`` (the node's memo, see :mod:`pyonnx.ops.bind`) keeps the validated geometry
    per input shapes: a model calls each Conv node with the same shapes run after run, and on
    the small tensors of streaming models (silero) the checks and the window arithmetic cost
    more than the convolution itself. The attributes and the allocation limit are fixed per
    node, so the shapes and element type are the whole key.
    """
    key = (X.shape, W.shape, None if B is None else B.shape, X.dtype)
    win = prepared.get(key) if prepared is not None else None
    if win is None:
        _check_conv_shapes(X, W, group, kernel_shape)
        _check_bias(B, W.shape[0], "Conv")
        win = resolve_window(X.shape[2:], W.shape[2:], strides=strides, dilations=dilations,
                             pads=pads, auto_pad=auto_pad)
        if ctx is not None:
            check_alloc((X.shape[0], W.shape[0]) + win.out, X.dtype, ctx.max_tensor_bytes,
                        "Conv output")
        if prepared is not None:
            prepared.remember(key, win)
    return win


def conv_kernel(forward: Callable[..., np.ndarray]) -> Callable[..., tuple[np.ndarray]]:
    """The Conv kernel that computes the convolution itself with ``forward`` (a function like
    :func:`conv_forward`): the reference passes its own, the CPU provider its fast one, and
    both share the checks, the geometry memo and the dtype rules."""

    def conv(X: np.ndarray, W: np.ndarray, B: np.ndarray | None = None, *,
             auto_pad: str = "NOTSET", dilations: Sequence[int] | None = None, group: int = 1,
             kernel_shape: Sequence[int] | None = None, pads: Sequence[int] | None = None,
             strides: Sequence[int] | None = None, ctx: KernelContext | None = None,
             prepared: NodeMemo | None = None) -> tuple[np.ndarray]:
        """Y = convolution of X (N, C, *spatial) with W (M, C/group, *kernel), plus bias B."""
        win = conv_window(X, W, B, auto_pad, dilations, group, kernel_shape, pads, strides,
                          ctx, prepared)
        cdt = compute_dtype(X.dtype)
        y = forward(X.astype(cdt, copy=False), W.astype(cdt, copy=False), int(group), win, B)
        return (y.astype(X.dtype, copy=False),)

    return conv


conv = kernel("Conv", versions=(1, 11, 22), prepare=node_memo)(conv_kernel(conv_forward))


# --------------------------------------------------------------------------------------------
# ConvInteger
# --------------------------------------------------------------------------------------------

def _zero_point(zp: np.ndarray | None, name: str, allowed_len: int | None = None) -> np.ndarray:
    """A zero point as an int32 array: a scalar, or (when allowed_len) one value per channel."""
    if zp is None:
        return np.zeros((), np.int32)
    zp = np.asarray(zp)
    if zp.dtype.kind not in "iu":
        raise ExecutionError(f"{name} must be an integer tensor, got {zp.dtype}")
    if zp.size == 1:
        return zp.reshape(()).astype(np.int32)
    if allowed_len is not None and zp.ndim == 1 and zp.shape[0] == allowed_len:
        return zp.astype(np.int32)
    raise ExecutionError(f"{name} must be a scalar"
                         + (f" or hold one value per output channel ({allowed_len})"
                            if allowed_len is not None else "")
                         + f", got shape {list(zp.shape)}")


def _exact_float_type(k: int, amax: int, bmax: int) -> np.dtype:
    """A float type in which sums of k products of integers bounded by amax, bmax are exact."""
    return np.dtype(np.float32) if k * amax * bmax <= (1 << 24) else np.dtype(np.float64)


@kernel("ConvInteger", versions=(10,))
def conv_integer(x: np.ndarray, w: np.ndarray, x_zero_point: np.ndarray | None = None,
                 w_zero_point: np.ndarray | None = None, *, auto_pad: str = "NOTSET",
                 dilations: Sequence[int] | None = None, group: int = 1,
                 kernel_shape: Sequence[int] | None = None, pads: Sequence[int] | None = None,
                 strides: Sequence[int] | None = None, ctx: KernelContext | None = None
                 ) -> tuple[np.ndarray]:
    """y (int32) = convolution of (x - x_zero_point) with (w - w_zero_point).

    The products are summed in a float type in which they are exact (BLAS speed, integer result).
    """
    _check_conv_shapes(x, w, group, kernel_shape, "ConvInteger")
    m = w.shape[0]
    xz = _zero_point(x_zero_point, "x_zero_point")
    wz = _zero_point(w_zero_point, "w_zero_point", m)
    win = resolve_window(x.shape[2:], w.shape[2:], strides=strides, dilations=dilations,
                         pads=pads, auto_pad=auto_pad)
    if ctx is not None:
        check_alloc((x.shape[0], m) + win.out, np.int32, ctx.max_tensor_bytes, "ConvInteger output")
    xs = x.astype(np.int32) - xz
    ws = w.astype(np.int32) - (wz.reshape((-1,) + (1,) * (w.ndim - 1)) if wz.ndim else wz)
    amax = int(np.abs(xs).max()) if xs.size else 0
    bmax = int(np.abs(ws).max()) if ws.size else 0
    ft = _exact_float_type(w.shape[1] * prod(w.shape[2:]), amax, bmax)
    # Padding after the zero point is removed: a padded position contributes exactly zero.
    y = conv_forward(xs.astype(ft), ws.astype(ft), int(group), win)
    return (np.rint(y).astype(np.int32),)


# --------------------------------------------------------------------------------------------
# ConvTranspose and Col2Im (scatter-add of columns)
# --------------------------------------------------------------------------------------------

def _col2im_add(cols: np.ndarray, buf: np.ndarray, win: Window) -> None:
    """Add cols (N, C, *kernel, *positions) into buf (N, C, *padded image).

    Kernel element k at position o lands on padded coordinate ``o * stride + k * dilation``.
    """
    lead = (slice(None), slice(None))
    for off in kernel_offsets(win.kernel):
        buf[lead + offset_slices(off, win)] += cols[lead + off]


@kernel("ConvTranspose", versions=(1, 11, 22))
def conv_transpose(X: np.ndarray, W: np.ndarray, B: np.ndarray | None = None, *,
                   auto_pad: str = "NOTSET", dilations: Sequence[int] | None = None,
                   group: int = 1, kernel_shape: Sequence[int] | None = None,
                   output_padding: Sequence[int] | None = None,
                   output_shape: Sequence[int] | None = None,
                   pads: Sequence[int] | None = None, strides: Sequence[int] | None = None,
                   ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Y = transposed convolution (gradient of Conv with respect to its input) of X with W.

    W is (C, M/group, *kernel); the output size comes from pads, or output_shape (pads derived),
    or auto_pad, as the spec's formulas say.
    """
    if X.ndim < 3:
        raise ExecutionError(f"ConvTranspose: input X must have rank >= 3, got shape "
                             f"{list(X.shape)}")
    if W.ndim != X.ndim:
        raise ExecutionError(f"ConvTranspose: W has rank {W.ndim} (shape {list(W.shape)}) but X "
                             f"has rank {X.ndim}")
    group = int(group)
    if group < 1:
        raise ExecutionError(f"ConvTranspose: group must be >= 1, got {group}")
    n_img, c = X.shape[:2]
    if c % group:
        raise ExecutionError(f"ConvTranspose: group {group} does not divide the {c} input "
                             f"channels of X")
    if W.shape[0] != c:
        raise ExecutionError(f"ConvTranspose: W.shape[0] is {W.shape[0]} but X has {c} channels; "
                             f"W must be (C, M/group, *kernel)")
    kern = tuple(W.shape[2:])
    if kernel_shape is not None and len(kernel_shape) and [int(k) for k in kernel_shape] != \
            list(kern):
        raise ExecutionError(f"ConvTranspose: kernel_shape {list(kernel_shape)} does not match the "
                             f"spatial shape {list(kern)} of W")
    mg = W.shape[1]
    m = mg * group
    _check_bias(B, m, "ConvTranspose")
    in_sp = tuple(X.shape[2:])
    nsp = len(in_sp)
    s = int_attr_list(strides, nsp, 1, "strides", 1)
    d = int_attr_list(dilations, nsp, 1, "dilations", 1)
    opad = int_attr_list(output_padding, nsp, 0, "output_padding", 0)
    for i in range(nsp):
        if opad[i] >= s[i] and opad[i] >= d[i]:
            raise ExecutionError(f"ConvTranspose: output_padding {list(opad)} must be smaller than "
                                 f"the stride ({s[i]}) or the dilation ({d[i]}) along axis {i}")
    if auto_pad not in AUTO_PADS:
        raise ExecutionError(f"ConvTranspose: auto_pad {auto_pad!r} is not one of "
                             f"{', '.join(AUTO_PADS)}")
    ek = tuple((k - 1) * dd + 1 for k, dd in zip(kern, d))
    full = tuple(st * (i - 1) + e for st, i, e in zip(s, in_sp, ek))  # all contributions

    if output_shape is not None and len(output_shape):
        osh = [int(v) for v in output_shape]
        if len(osh) == nsp + 2:  # some exporters include N and C
            osh = osh[2:]
        if len(osh) != nsp:
            raise ExecutionError(f"ConvTranspose: output_shape {list(output_shape)} must have one "
                                 f"value per spatial axis ({nsp})")
        if any(v < 0 for v in osh):
            raise ExecutionError(f"ConvTranspose: output_shape {osh} has a negative value")
        pb, pe = [], []
        for i in range(nsp):
            total = full[i] + opad[i] - osh[i]
            half = total // 2
            if total < 0:
                # output_shape beyond every contribution: the extra (zero) positions go at the
                # end, as the backend test data and onnxruntime both have it.
                pb.append(0)
                pe.append(total)
            elif auto_pad == "SAME_UPPER":
                pb.append(half)
                pe.append(total - half)
            else:
                pb.append(total - half)
                pe.append(half)
        out_sp = tuple(osh)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out_sp = tuple(i * st for i, st in zip(in_sp, s))
        pb, pe = [], []
        for i in range(nsp):
            total = max(0, full[i] + opad[i] - out_sp[i])
            half = total // 2
            if auto_pad == "SAME_UPPER":
                pb.append(half)
                pe.append(total - half)
            else:
                pb.append(total - half)
                pe.append(half)
    else:
        if auto_pad == "VALID" or pads is None or len(pads) == 0:
            pv = [0] * (2 * nsp)
        else:
            pv = [int(v) for v in pads]
            if len(pv) != 2 * nsp:
                raise ExecutionError(f"ConvTranspose: pads {pv} must have {2 * nsp} values")
            if any(v < 0 for v in pv):
                raise ExecutionError(f"ConvTranspose: pads {pv} contains a negative value")
        pb, pe = pv[:nsp], pv[nsp:]
        out_sp = tuple(f + o - a - b for f, o, a, b in zip(full, opad, pb, pe))
        if any(v < 0 for v in out_sp):
            raise ExecutionError(f"ConvTranspose: pads {pv} remove more than the whole output "
                                 f"(size before padding {[f + o for f, o in zip(full, opad)]})")

    if ctx is not None:
        check_alloc((n_img, m) + out_sp, X.dtype, ctx.max_tensor_bytes, "ConvTranspose output")
    cdt = compute_dtype(X.dtype)
    x = X.astype(cdt, copy=False)
    w = W.astype(cdt, copy=False)
    nk = prod(kern)
    lin = prod(in_sp)
    cg = c // group
    # Columns: for each output channel and kernel element, the weighted sum over input channels.
    if group == 1:
        cols = np.matmul(w.reshape(c, m * nk).T, x.reshape(n_img, c, lin))
    else:
        wt = w.reshape(group, cg, mg * nk).transpose(0, 2, 1)  # (g, Mg*K, Cg)
        cols = np.matmul(wt, x.reshape(n_img, group, cg, lin))
    cols = cols.reshape((n_img, m) + kern + in_sp)

    win = Window(in_sp, kern, s, d, (0,) * nsp, (0,) * nsp, (0,) * nsp, in_sp)
    if nk == 1 and all(st == 1 for st in s):
        buf = cols.reshape((n_img, m) + in_sp)
    else:
        buf = np.zeros((n_img, m) + full, dtype=cdt)
        _col2im_add(cols, buf, win)

    # Y[o] = buf[o + pads_begin]; positions outside buf (output_padding, or an output_shape
    # larger than the contributions) hold zero before the bias.
    if all(b == 0 for b in pb) and out_sp == full:
        y = buf
    else:
        y = np.zeros((n_img, m) + out_sp, dtype=cdt)
        src, dst = [], []
        for i in range(nsp):
            lo = max(0, -pb[i])
            hi = min(out_sp[i], full[i] - pb[i])
            if hi <= lo:
                lo = hi = 0
            dst.append(slice(lo, hi))
            src.append(slice(lo + pb[i], hi + pb[i]))
        y[(slice(None), slice(None)) + tuple(dst)] = buf[(slice(None), slice(None)) + tuple(src)]
    y = _add_bias(y, B)
    return (y.astype(X.dtype, copy=False),)


@kernel("Col2Im", versions=(18,))
def col2im(input: np.ndarray, image_shape: np.ndarray, block_shape: np.ndarray, *,
           dilations: Sequence[int] | None = None, pads: Sequence[int] | None = None,
           strides: Sequence[int] | None = None, ctx: KernelContext | None = None
           ) -> tuple[np.ndarray]:
    """Sum column blocks (N, C * prod(block_shape), L) back into images (N, C, *image_shape)."""
    img = as_int_list(image_shape)
    blk = as_int_list(block_shape)
    if len(img) != len(blk):
        raise ExecutionError(f"Col2Im: image_shape {img} and block_shape {blk} must have the same "
                             f"length")
    if input.ndim != 3:
        raise ExecutionError(f"Col2Im: input must be 3-D (N, C * prod(block_shape), L), got shape "
                             f"{list(input.shape)}")
    if any(v < 1 for v in blk) or any(v < 0 for v in img):
        raise ExecutionError(f"Col2Im: block_shape {blk} must be >= 1 and image_shape {img} >= 0")
    nk = prod(blk)
    n_img, ck, length = input.shape
    if ck % nk:
        raise ExecutionError(f"Col2Im: input.shape[1] = {ck} is not a multiple of "
                             f"prod(block_shape) = {nk}")
    c = ck // nk
    win = resolve_window(img, blk, strides=strides, dilations=dilations, pads=pads)
    if prod(win.out) != length:
        raise ExecutionError(f"Col2Im: input has L = {length} blocks but image_shape {img}, "
                             f"block_shape {blk}, strides, pads and dilations give "
                             f"{list(win.out)} = {prod(win.out)} blocks")
    if ctx is not None:
        check_alloc([n_img, c] + img, input.dtype, ctx.max_tensor_bytes, "Col2Im output")
    cdt = compute_dtype(input.dtype) if input.dtype.kind == "f" or input.dtype.kind == "V" \
        else input.dtype
    cols = input.astype(cdt, copy=False).reshape((n_img, c) + tuple(blk) + win.out)
    padded = tuple(i + a + b for i, a, b in zip(img, win.pads_begin, win.pads_end))
    buf = np.zeros((n_img, c) + padded, dtype=cdt)
    _col2im_add(cols, buf, win)
    y = buf[(slice(None), slice(None)) + tuple(slice(b, b + i) for b, i in
                                              zip(win.pads_begin, img))]
    return (np.ascontiguousarray(y).astype(input.dtype, copy=False),)


# --------------------------------------------------------------------------------------------
# DeformConv
# --------------------------------------------------------------------------------------------

@kernel("DeformConv", versions=(19, 22))
def deform_conv(X: np.ndarray, W: np.ndarray, offset: np.ndarray, B: np.ndarray | None = None,
                mask: np.ndarray | None = None, *, dilations: Sequence[int] | None = None,
                group: int = 1, kernel_shape: Sequence[int] | None = None,
                offset_group: int = 1, pads: Sequence[int] | None = None,
                strides: Sequence[int] | None = None, ctx: KernelContext | None = None
                ) -> tuple[np.ndarray]:
    """Deformable convolution: each kernel element samples X at its regular position plus a
    learned offset (n-linear interpolation, zero outside the input), times an optional mask."""
    _check_conv_shapes(X, W, group, kernel_shape, "DeformConv")
    m = W.shape[0]
    _check_bias(B, m, "DeformConv")
    n_img, c = X.shape[:2]
    in_sp = tuple(X.shape[2:])
    nsp = len(in_sp)
    og = int(offset_group)
    if og < 1 or c % og:
        raise ExecutionError(f"DeformConv: offset_group {og} must be >= 1 and divide the {c} "
                             f"input channels")
    win = resolve_window(in_sp, W.shape[2:], strides=strides, dilations=dilations, pads=pads)
    nk = prod(win.kernel)
    out = win.out
    length = prod(out)
    want = (n_img, og * nk * nsp) + out
    if tuple(offset.shape) != want:
        raise ExecutionError(f"DeformConv: offset has shape {list(offset.shape)}, expected "
                             f"{list(want)} (N, offset_group * prod(kernel) * {nsp}, *output)")
    if mask is not None and tuple(mask.shape) != (n_img, og * nk) + out:
        raise ExecutionError(f"DeformConv: mask has shape {list(mask.shape)}, expected "
                             f"{[n_img, og * nk, *out]} (N, offset_group * prod(kernel), *output)")
    if ctx is not None:
        check_alloc((n_img, m) + out, X.dtype, ctx.max_tensor_bytes, "DeformConv output")
    cdt = compute_dtype(X.dtype)
    x = X.astype(cdt, copy=False)
    off = offset.astype(cdt, copy=False).reshape((n_img, og, nk, nsp, length))

    # Regular sampling position of kernel element k for output o along axis i.
    grids = np.meshgrid(*[np.arange(o) * st - pb for o, st, pb in
                          zip(out, win.strides, win.pads_begin)], indexing="ij")
    kgrid = np.meshgrid(*[np.arange(k) * dd for k, dd in zip(win.kernel, win.dilations)],
                        indexing="ij")
    cog = c // og
    xr = x.reshape(n_img, og, cog, prod(in_sp))
    lo, frac = [], []
    for i in range(nsp):
        base = (kgrid[i].reshape(nk, 1) + grids[i].reshape(1, length)).astype(cdt)
        pos = base + off[:, :, :, i]  # (N, og, K, L)
        f = np.floor(pos)
        lo.append(f.astype(np.int64))
        frac.append(pos - f)
    sample = np.zeros((n_img, og, cog, nk * length), dtype=cdt)
    sp_strides = [prod(in_sp[i + 1:]) for i in range(nsp)]
    for corner in kernel_offsets((2,) * nsp):
        weight = np.ones((n_img, og, nk, length), dtype=cdt)
        flat = np.zeros((n_img, og, nk, length), dtype=np.int64)
        valid = np.ones((n_img, og, nk, length), dtype=bool)
        for i, bit in enumerate(corner):
            idx = lo[i] + bit
            weight *= frac[i] if bit else (1 - frac[i])
            valid &= (idx >= 0) & (idx < in_sp[i])
            flat += np.clip(idx, 0, max(in_sp[i] - 1, 0)) * sp_strides[i]
        weight *= valid
        g = np.take_along_axis(xr, flat.reshape(n_img, og, 1, nk * length), axis=3)
        sample += g * weight.reshape(n_img, og, 1, nk * length)
    if mask is not None:
        sample *= mask.astype(cdt, copy=False).reshape(n_img, og, 1, nk * length)
    group = int(group)
    cg, mg = c // group, m // group
    cols = sample.reshape(n_img, group, cg * nk, length)
    y = np.matmul(W.astype(cdt, copy=False).reshape(group, mg, cg * nk), cols)
    y = y.reshape((n_img, m) + out)
    y = _add_bias(y, B)
    return (y.astype(X.dtype, copy=False),)
