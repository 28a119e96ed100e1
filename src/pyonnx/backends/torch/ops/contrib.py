"""Operators outside the standard domain that sessions meet: onnxruntime's ``com.microsoft``
fusions (which sessions optimized at the extended level contain) and pyonnx's own fused kernels
(domain ``pyonnx``, written by the session's graph optimizer). Claiming them keeps a fused node
on the torch device instead of sending it to the CPU provider."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pyonnx.backends.torch.ops import torch_op
from pyonnx.backends.torch.ops.nn import conv
from pyonnx.backends.torch.ops.tensor import gemm, matmul

MS = "com.microsoft"
PYONNX = "pyonnx"

#: fused activation (pyonnx.ops.fused.ACTIVATIONS) -> torch function of (y, params)
_ACTIVATIONS = {
    "": lambda y, p: y,
    "Relu": lambda y, p: torch.relu(y),
    "Sigmoid": lambda y, p: torch.sigmoid(y),
    "Tanh": lambda y, p: torch.tanh(y),
    "LeakyRelu": lambda y, p: F.leaky_relu(y, p[0]),
    "HardSigmoid": lambda y, p: torch.clamp(p[0] * y + p[1], 0, 1),
    "Clip": lambda y, p: torch.clamp(y, p[0], p[1]),
}


def _activation_check(node):
    a = node.attributes.get("activation")
    name = a.value if a is not None else ""
    name = name.decode() if isinstance(name, bytes) else name
    return None if name in _ACTIVATIONS else f"fused activation {name!r} is not implemented"


def _act(y, activation, params):
    name = activation.decode() if isinstance(activation, bytes) else activation
    return _ACTIVATIONS[name](y, list(params or ()))


def fused_conv(x, w, b=None, z=None, auto_pad="NOTSET", dilations=None, group=1,
               kernel_shape=None, pads=None, strides=None, activation="",
               activation_params=None):
    y = conv(x, w, b, auto_pad=auto_pad, dilations=dilations, group=group,
             kernel_shape=kernel_shape, pads=pads, strides=strides)
    if z is not None:
        y = y + z
    return _act(y, activation, activation_params)


def fused_gemm(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0, activation="",
               activation_params=None, activation_alpha=None, activation_beta=None,
               activation_gamma=None):
    params = activation_params
    if params is None and activation_alpha is not None:  # onnxruntime's spelling
        params = [activation_alpha] + ([activation_beta] if activation_beta is not None else [])
    return _act(gemm(a, b, c, alpha=alpha, beta=beta, transA=transA, transB=transB),
                activation, params)


def fused_matmul(a, b, bias=None, activation="", activation_params=None):
    y = matmul(a, b)
    if bias is not None:
        y = y + bias
    return _act(y, activation, activation_params)


for _domain in (MS, PYONNX):
    torch_op("FusedConv", domain=_domain, check=_activation_check)(fused_conv)
    torch_op("FusedGemm", domain=_domain, check=_activation_check)(fused_gemm)
torch_op("FusedMatMul", domain=PYONNX, check=_activation_check)(fused_matmul)


@torch_op("Gelu", domain=MS)
def ms_gelu(x):
    return F.gelu(x)


@torch_op("BiasGelu", domain=MS)
def bias_gelu(a, b):
    return F.gelu(a + b)


@torch_op("FastGelu", domain=MS)
def fast_gelu(x, bias=None):
    return F.gelu(x + bias if bias is not None else x, approximate="tanh")


@torch_op("QuickGelu", domain=MS)
def quick_gelu(x, alpha=1.702):
    return x * torch.sigmoid(alpha * x)


@torch_op("BiasAdd", domain=MS)
def bias_add(x, bias, skip):
    return x + bias + skip


def _skip_outputs(node):
    return {"_n": len(node.outputs)}


def _skip_norm(x, skip, gamma, beta, bias, epsilon, simplified, n):
    s = x + skip
    if bias is not None:
        s = s + bias
    sf = s.float() if s.dtype in (torch.float16, torch.bfloat16) else s
    if simplified:
        mean = torch.zeros_like(sf[..., :1])
        inv = torch.rsqrt((sf * sf).mean(-1, keepdim=True) + epsilon)
        y = sf * inv
    else:
        mean = sf.mean(-1, keepdim=True)
        inv = torch.rsqrt(((sf - mean) ** 2).mean(-1, keepdim=True) + epsilon)
        y = (sf - mean) * inv
    y = y.to(x.dtype) * gamma
    if beta is not None:
        y = y + beta
    return (y, mean.float(), inv.float(), s)[:max(n, 1)]


@torch_op("SkipLayerNormalization", domain=MS, node_kwargs=_skip_outputs)
def skip_layer_normalization(x, skip, gamma, beta=None, bias=None, epsilon=1e-12, _n=1):
    return _skip_norm(x, skip, gamma, beta, bias, epsilon, False, _n)


@torch_op("SkipSimplifiedLayerNormalization", domain=MS, node_kwargs=_skip_outputs)
def skip_simplified_layer_normalization(x, skip, gamma, bias=None, epsilon=1e-12, _n=1):
    return _skip_norm(x, skip, gamma, None, bias, epsilon, True, _n)


def _mha_check(node):
    """MultiHeadAttention on separate 3-D query, key and value with an optional attention_bias:
    the form the optimizer's extended level writes (fuse_multi_head_attention). Packed inputs,
    the projection bias, key-padding masks, past state and the present outputs stay with the
    CPU provider's kernel."""
    ins = list(node.inputs) + [None] * (10 - len(node.inputs))
    if ins[1] is None or ins[2] is None:
        return "packed query/key/value inputs are not implemented"
    if any(ins[i] is not None for i in (3, 4, 6, 7, 8, 9)):
        return "bias, key_padding_mask, past and cache inputs are not implemented"
    if any(v.name for v in node.outputs[1:]):
        return "the present_key/present_value outputs are not implemented"
    a = node.attributes.get("unidirectional")
    if a is not None and a.value:
        return "unidirectional=1 is not implemented"
    for v in ins[:3]:
        shape = getattr(v.type, "shape", None)
        if shape is not None and len(shape) != 3:
            return "only 3-D query, key and value (batch, sequence, heads * head size)"
    return None


@torch_op("MultiHeadAttention", domain=MS, check=_mha_check)
def multi_head_attention(query, key, value, bias=None, key_padding_mask=None,
                         attention_bias=None, past_key=None, past_value=None,
                         past_sequence_length=None, cache_indirection=None, num_heads=1,
                         unidirectional=0, scale=None, mask_filter_value=-10000.0):
    """softmax(scale * Q K^T + attention_bias) V per head, Q [B, S, H*D], K [B, T, H*D],
    V [B, T, H*Dv] -> [B, S, H*Dv]; scale 0 or absent means 1/sqrt(D)."""
    b, s, hd = query.shape
    t, h = key.shape[1], int(num_heads)
    d, dv = hd // h, value.shape[2] // h
    q = query.reshape(b, s, h, d).transpose(1, 2)
    k = key.reshape(b, t, h, d).transpose(1, 2)
    v = value.reshape(b, t, h, dv).transpose(1, 2)
    sc = float(scale) if scale else d ** -0.5
    mask = None if attention_bias is None else attention_bias.to(q.dtype)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=sc)
    return y.transpose(1, 2).reshape(b, s, h * dv)
