"""Neural-network operators: convolution, pooling, normalization, softmax, resize."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

from pyonnx.backends.torch.ops import torch_op
from pyonnx.backends.torch.ops.tensor import _axis, _ints

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _spatial_pads(x, kernel, strides, dilations, pads, auto_pad, ceil_mode=0):
    """ONNX pads (begin..., end...) for ``x``'s spatial dims, auto_pad resolved at run time."""
    n = len(kernel)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        begins, ends = [], []
        for i in range(n):
            size = x.shape[2 + i]
            o = -(-size // strides[i])
            total = max((o - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size, 0)
            small, big = total // 2, total - total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else big)
            ends.append(big if auto_pad == "SAME_UPPER" else small)
            out.append(o)
        return begins + ends
    if auto_pad == "VALID" or pads is None:
        return [0] * (2 * n)
    return list(pads)


def _torch_pad(pads):
    """ONNX (b1, b2, ..., e1, e2, ...) as F.pad's (last_b, last_e, ..., first_b, first_e)."""
    n = len(pads) // 2
    out = []
    for i in reversed(range(n)):
        out += [pads[i], pads[n + i]]
    return out


def _symmetric(pads):
    n = len(pads) // 2
    return all(pads[i] == pads[n + i] for i in range(n))


@torch_op("Conv")
def conv(x, w, b=None, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None,
         strides=None):
    n = x.dim() - 2
    kernel = list(kernel_shape) if kernel_shape is not None else list(w.shape[2:])
    strides = list(strides) if strides is not None else [1] * n
    dilations = list(dilations) if dilations is not None else [1] * n
    p = _spatial_pads(x, kernel, strides, dilations, pads, auto_pad)
    if _symmetric(p):
        padding = p[:n]
    else:
        x = F.pad(x, _torch_pad(p))
        padding = [0] * n
    return _CONV[n](x, w, b, strides, padding, dilations, group)


@torch_op("ConvTranspose")
def conv_transpose(x, w, b=None, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
                   output_padding=None, output_shape=None, pads=None, strides=None):
    n = x.dim() - 2
    kernel = list(kernel_shape) if kernel_shape is not None else list(w.shape[2:])
    strides = list(strides) if strides is not None else [1] * n
    dilations = list(dilations) if dilations is not None else [1] * n
    out_pad = list(output_padding) if output_padding is not None else [0] * n
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        shape = list(output_shape)[-n:] if output_shape is not None else \
            [x.shape[2 + i] * strides[i] for i in range(n)]
        p_begin, p_end = [], []
        for i in range(n):
            total = (strides[i] * (x.shape[2 + i] - 1) + out_pad[i]
                     + ((kernel[i] - 1) * dilations[i] + 1) - shape[i])
            half = total // 2
            if auto_pad == "SAME_UPPER":
                p_begin.append(half)
                p_end.append(total - half)
            else:
                p_begin.append(total - half)
                p_end.append(half)
        p = p_begin + p_end
    else:
        p = list(pads) if pads is not None and auto_pad != "VALID" else [0] * (2 * n)
    y = _CONV_T[n](x, w, b, strides, 0, out_pad, group, dilations)
    # remove the pads from the full output (F.pad crops for negative values; a negative pad,
    # from an output_shape larger than the full output, grows it with zeros)
    return F.pad(y, _torch_pad([-v for v in p]))


def _pool_out_extra(x, kernel, strides, dilations, p, ceil_mode):
    """Extra end padding so that torch's floor-mode pooling yields ONNX's ceil-mode windows
    (windows that start inside the padded input)."""
    n = len(kernel)
    extra = []
    for i in range(n):
        size = x.shape[2 + i] + p[i] + p[n + i]
        eff = (kernel[i] - 1) * dilations[i] + 1
        if ceil_mode:
            o = -(-(size - eff) // strides[i]) + 1
            if (o - 1) * strides[i] >= size - 0 and (o - 1) * strides[i] >= x.shape[2 + i] + p[i]:
                o -= 1
        else:
            o = (size - eff) // strides[i] + 1
        extra.append(max((o - 1) * strides[i] + eff - size, 0))
    return extra


def _outputs(node):
    return {"_n": len([v for v in node.outputs if v.name])}


def _native_padding(kernel, p):
    """The padding torch's pooling takes for ONNX pads ``p``, or None when torch cannot express
    them (asymmetric, or more than half the kernel)."""
    n = len(kernel)
    if not _symmetric(p) or any(p[i] > kernel[i] // 2 for i in range(n)):
        return None
    return p[:n]


def _window_max(xp, kernel, strides, dilations):
    """Max pooling of the (already padded) ``xp`` as the maximum of its kernel-offset strided
    views: without indices this is several times faster than torch's NCHW max_pool on the CPU,
    and as differentiable."""
    n = len(kernel)
    out = [(xp.shape[2 + i] - ((kernel[i] - 1) * dilations[i] + 1)) // strides[i] + 1
           for i in range(n)]
    y = None
    for offsets in itertools.product(*[range(k) for k in kernel]):
        index = [slice(None), slice(None)]
        for i, o in enumerate(offsets):
            start = o * dilations[i]
            index.append(slice(start, start + (out[i] - 1) * strides[i] + 1, strides[i]))
        v = xp[tuple(index)]
        y = v if y is None else torch.maximum(y, v)
    return y


@torch_op("MaxPool", node_kwargs=_outputs)
def max_pool(x, auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=(), pads=None,
             storage_order=0, strides=None, _n=2):
    n = x.dim() - 2
    kernel = list(kernel_shape)
    strides = list(strides) if strides is not None else [1] * n
    dilations = list(dilations) if dilations is not None else [1] * n
    p = _spatial_pads(x, kernel, strides, dilations, pads, auto_pad)
    fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[n]
    extra = _pool_out_extra(x, kernel, strides, dilations, p, ceil_mode)
    full = p[:n] + [p[n + i] + extra[i] for i in range(n)]
    neg = -math.inf if x.dtype.is_floating_point else torch.iinfo(x.dtype).min
    xp = F.pad(x.double() if not x.dtype.is_floating_point else x, _torch_pad(full), value=neg)
    if _n == 1:
        return (_window_max(xp, kernel, strides, dilations).to(x.dtype),)
    y, idx = fn(xp, kernel, strides, 0, dilations, return_indices=True)
    y = y.to(x.dtype)
    # indices into the padded input -> into the unpadded input, row-major (or column-major)
    coords = []
    rest = idx
    padded = xp.shape[2:]
    for i in reversed(range(n)):
        coords.append(rest % padded[i] - p[i])
        rest = rest // padded[i]
    coords = coords[::-1]
    flat = torch.zeros_like(idx)
    if storage_order:
        for i in reversed(range(n)):
            flat = flat * x.shape[2 + i] + coords[i]
    else:
        for i in range(n):
            flat = flat * x.shape[2 + i] + coords[i]
    nc = torch.arange(x.shape[0] * x.shape[1], device=x.device).reshape(
        x.shape[0], x.shape[1], *([1] * n)) * math.prod(x.shape[2:])
    return y, flat + nc


@torch_op("AveragePool")
def average_pool(x, auto_pad="NOTSET", ceil_mode=0, count_include_pad=0, dilations=None,
                 kernel_shape=(), pads=None, strides=None):
    n = x.dim() - 2
    kernel = list(kernel_shape)
    strides = list(strides) if strides is not None else [1] * n
    dilations = list(dilations) if dilations is not None else [1] * n
    p = _spatial_pads(x, kernel, strides, dilations, pads, auto_pad)
    native = _native_padding(kernel, p)
    if native is not None and not ceil_mode and all(d == 1 for d in dilations) and n <= 3:
        fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[n]
        return fn(x, kernel, strides, native, False, bool(count_include_pad))
    extra = _pool_out_extra(x, kernel, strides, dilations, p, ceil_mode)
    full = p[:n] + [p[n + i] + extra[i] for i in range(n)]
    # sum over each window with a ones kernel, then divide by the count of the cells that count
    c = x.shape[1]
    ones = torch.ones([c, 1, *kernel], dtype=x.dtype, device=x.device)
    xp = F.pad(x, _torch_pad(full))
    total = _CONV[n](xp, ones, None, strides, 0, dilations, c)
    mask = torch.ones([1, 1, *x.shape[2:]], dtype=x.dtype, device=x.device)
    if count_include_pad:
        mask = F.pad(mask, _torch_pad(p), value=1.0)
        mask = F.pad(mask, _torch_pad([0] * n + extra))
    else:
        mask = F.pad(mask, _torch_pad(full))
    count = _CONV[n](mask, ones[:1], None, strides, 0, dilations)
    return total / count


@torch_op("LpPool", 11)
def lp_pool(x, auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=(), p=2, pads=None,
            strides=None):
    n = x.dim() - 2
    kernel = list(kernel_shape)
    strides = list(strides) if strides is not None else [1] * n
    dilations = list(dilations) if dilations is not None else [1] * n
    pp = _spatial_pads(x, kernel, strides, dilations, pads, auto_pad)
    extra = _pool_out_extra(x, kernel, strides, dilations, pp, ceil_mode)
    full = pp[:n] + [pp[n + i] + extra[i] for i in range(n)]
    c = x.shape[1]
    ones = torch.ones([c, 1, *kernel], dtype=x.dtype, device=x.device)
    s = _CONV[n](F.pad(torch.abs(x) ** p, _torch_pad(full)), ones, None, strides, 0, dilations, c)
    return s ** (1.0 / p)


@torch_op("GlobalAveragePool")
def global_average_pool(x):
    return torch.mean(x, dim=tuple(range(2, x.dim())), keepdim=True)


@torch_op("GlobalMaxPool")
def global_max_pool(x):
    return torch.amax(x, dim=tuple(range(2, x.dim())), keepdim=True)


# ---------------------------------------------------------------- normalization

def _channel(v, rank):
    return v.reshape([1, -1] + [1] * (rank - 2))


def _inference_only(node):
    a = node.attributes.get("training_mode")
    if (a is not None and a.value) or len(node.outputs) > 1:
        return "training mode (batch statistics and running-mean outputs) is not implemented"
    return None


@torch_op("BatchNormalization", 9, check=_inference_only)
def batch_normalization(x, scale, b, mean, var, epsilon=1e-5, momentum=0.9, training_mode=0,
                        spatial=1):
    r = x.dim()
    inv = torch.rsqrt(var + epsilon) * scale
    return x * _channel(inv, r) + _channel(b - mean * inv, r)


@torch_op("InstanceNormalization")
def instance_normalization(x, scale, b, epsilon=1e-5):
    dims = tuple(range(2, x.dim()))
    mean = x.mean(dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dims, keepdim=True)
    return (x - mean) / torch.sqrt(var + epsilon) * _channel(scale, x.dim()) + _channel(b, x.dim())


@torch_op("LayerNormalization", 17)
def layer_normalization(x, scale, b=None, axis=-1, epsilon=1e-5, stash_type=1):
    a = _axis(axis, x.dim())
    dims = tuple(range(a, x.dim()))
    xs = x.float() if stash_type == 1 and x.dtype in (torch.float16, torch.bfloat16) else x
    mean = xs.mean(dims, keepdim=True)
    var = ((xs - mean) ** 2).mean(dims, keepdim=True)
    inv = torch.rsqrt(var + epsilon)
    y = ((xs - mean) * inv).to(x.dtype) * scale
    if b is not None:
        y = y + b
    return y, mean, inv


@torch_op("RMSNormalization", 23)
def rms_normalization(x, scale, axis=-1, epsilon=1e-5, stash_type=1):
    a = _axis(axis, x.dim())
    dims = tuple(range(a, x.dim()))
    xs = x.float() if stash_type == 1 and x.dtype in (torch.float16, torch.bfloat16) else x
    y = xs * torch.rsqrt((xs * xs).mean(dims, keepdim=True) + epsilon)
    return y.to(x.dtype) * scale


@torch_op("GroupNormalization", 21)
def group_normalization(x, scale, bias, epsilon=1e-5, num_groups=1, stash_type=1):
    n, c = x.shape[:2]
    g = x.reshape(n, num_groups, -1)
    mean = g.mean(-1, keepdim=True)
    var = ((g - mean) ** 2).mean(-1, keepdim=True)
    y = ((g - mean) / torch.sqrt(var + epsilon)).reshape(x.shape)
    return y * _channel(scale, x.dim()) + _channel(bias, x.dim())


@torch_op("LRN")
def lrn(x, size, alpha=0.0001, beta=0.75, bias=1.0):
    sq = (x * x).unsqueeze(1)
    half_lo, half_hi = (size - 1) // 2, size // 2 + (size % 2 == 0) * 0
    half_hi = math.ceil((size - 1) / 2)
    padded = F.pad(sq, [0, 0] * (x.dim() - 2) + [half_lo, half_hi])
    s = F.avg_pool3d(padded.reshape(x.shape[0], 1, padded.shape[2], x.shape[2], -1),
                     (size, 1, 1), 1).reshape(x.shape) * size
    return x / (bias + alpha / size * s) ** beta


@torch_op("LpNormalization")
def lp_normalization(x, axis=-1, p=2):
    norm = torch.linalg.vector_norm(x, ord=p, dim=axis, keepdim=True)
    return torch.where(norm == 0, torch.zeros_like(x), x / norm)  # a zero vector stays zero


@torch_op("MeanVarianceNormalization", 13)
def mean_variance_normalization(x, axes=(0, 2, 3)):
    dims = tuple(axes)
    mean = x.mean(dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dims, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-9)


# ---------------------------------------------------------------- softmax family

def _coerced(fn):
    """Before opset 13, softmax-like operators work on x flattened to 2-D at ``axis``."""
    def op(x, axis=1):
        a = _axis(axis, x.dim())
        flat = x.reshape(int(math.prod(x.shape[:a])), -1)
        return fn(flat, -1).reshape(x.shape)
    return op


def _hardmax(x, axis):
    idx = torch.argmax(x, axis, keepdim=True)
    return torch.zeros_like(x).scatter(axis, idx, 1.0)


torch_op("Softmax", 1)(_coerced(lambda x, a: torch.softmax(x, a)))
torch_op("LogSoftmax", 1)(_coerced(lambda x, a: torch.log_softmax(x, a)))
torch_op("Hardmax", 1)(_coerced(_hardmax))


@torch_op("Softmax", 13)
def softmax(x, axis=-1):
    return torch.softmax(x, axis)


@torch_op("LogSoftmax", 13)
def log_softmax(x, axis=-1):
    return torch.log_softmax(x, axis)


@torch_op("Hardmax", 13)
def hardmax(x, axis=-1):
    return _hardmax(x, axis)


# ---------------------------------------------------------------- Resize

def _resize_check(node):
    a = {k: v.value for k, v in node.attributes.items()}
    mode = a.get("mode", "nearest")
    if isinstance(mode, bytes):
        mode = mode.decode()
    ctm = a.get("coordinate_transformation_mode", "half_pixel")
    if isinstance(ctm, bytes):
        ctm = ctm.decode()
    nearest = a.get("nearest_mode", "round_prefer_floor")
    if isinstance(nearest, bytes):
        nearest = nearest.decode()
    if a.get("antialias", 0) or a.get("axes") is not None or a.get("keep_aspect_ratio_policy",
                                                                      "stretch") != "stretch":
        return "antialias, axes and keep_aspect_ratio_policy are not implemented"
    if mode == "nearest" and not (nearest == "floor" and ctm == "asymmetric"):
        return f"nearest resize with nearest_mode {nearest} and {ctm} is not implemented"
    if mode == "linear" and ctm not in ("half_pixel", "align_corners"):
        return f"linear resize with {ctm} is not implemented"
    if mode == "cubic" and (ctm not in ("half_pixel", "align_corners") or
                            a.get("cubic_coeff_a", -0.75) != -0.75 or a.get("exclude_outside", 0)):
        return "cubic resize other than torch's bicubic (a=-0.75, half_pixel) is not implemented"
    return None


@torch_op("Resize", 11, check=_resize_check)
def resize(x, roi=None, scales=None, sizes=None, antialias=0, axes=None,
           coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75, exclude_outside=0,
           extrapolation_value=0.0, keep_aspect_ratio_policy="stretch", mode="nearest",
           nearest_mode="round_prefer_floor"):
    n = x.dim() - 2
    if sizes is not None and sizes.numel():
        size = _ints(sizes)[2:]
        scale = None
    else:
        sc = [float(v) for v in scales.reshape(-1).tolist()]
        size = [int(math.floor(x.shape[2 + i] * sc[2 + i])) for i in range(n)]
        scale = sc[2:]
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    torch_mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[n] if mode == "linear" else "bicubic"
    align = coordinate_transformation_mode == "align_corners"
    if align or scale is None:
        return F.interpolate(x, size=size, mode=torch_mode, align_corners=align)
    return F.interpolate(x, scale_factor=scale, mode=torch_mode, align_corners=align,
                         recompute_scale_factor=False)
