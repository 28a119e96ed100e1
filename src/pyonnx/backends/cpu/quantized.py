"""Fast variants of the integer-product kernels: exact integer results through float32 BLAS.

NumPy's integer matmul has no BLAS behind it, and a float64 GEMM (what the reference kernels
use when a product might not be exact in float32) runs at half the speed of a float32 one. A
float32 GEMM is exact when every partial sum it forms is an integer below 2^24 in magnitude:
with operands bounded by ``amax`` and ``bmax`` that holds for any summation order as long as
the reduction length is at most ``2^24 // (amax * bmax)``. The variants here split K into
chunks of that length (bounds from the operand types and zero points, so no pass over the data
is needed; 8-bit activations against symmetric int8 weights give chunks of about 500-1000), run
one float32 GEMM per chunk and add the chunk results exactly in float64. The operands are
converted per call (the shifted 8-bit values as float32); no float copy of a weight outlives
the call.

Each variant keeps its reference kernel's checks and post-processing (it calls the same
helpers), so the results are bit for bit the reference's: the integer accumulator is the same
exact value, and everything after it is the same float code.
"""

from __future__ import annotations

import numpy as np

from pyonnx.backends.cpu.registry import fast_kernel
from pyonnx.errors import ExecutionError
from pyonnx.ops import linalg as _linalg
from pyonnx.ops.contrib import attention as _ca
from pyonnx.ops.contrib import matmul as _cm
from pyonnx.ops.contrib import quantized as _cq
from pyonnx.ops.quantization import _row_param, dynamic_quantize_linear
from pyonnx.ops import quantization as _q
from pyonnx.ops._common import check_alloc
from pyonnx.ops._quantization import INT_RANGES, requantize
from pyonnx.ops.registry import KernelContext

__all__ = ["exact_int_matmul", "chunk_length"]

_EXACT = 1 << 24          # float32 represents every integer of magnitude up to 2^24
_F32 = np.dtype(np.float32)
_INT8 = (np.dtype(np.int8), np.dtype(np.uint8))


def _bound(dtype: np.dtype, zero_point: np.ndarray | None) -> int:
    """The largest |q - zero_point| for q of an 8-bit ``dtype`` (zero points known)."""
    info = np.iinfo(dtype)
    if zero_point is None or np.asarray(zero_point).size == 0:
        z_lo = z_hi = 0
    else:
        z = np.asarray(zero_point).astype(np.int64)
        z_lo, z_hi = int(z.min()), int(z.max())
    return max(int(info.max) - z_lo, z_hi - int(info.min), 1)


def chunk_length(amax: int, bmax: int) -> int:
    """The longest reduction whose float32 partial sums stay exact integers."""
    return max(_EXACT // (amax * bmax), 1)


def exact_int_matmul(a: np.ndarray, b: np.ndarray, amax: int, bmax: int) -> np.ndarray:
    """``a @ b`` (numpy matmul semantics, rank >= 2 for ``a``, 2-D ``b``) for float32 arrays
    holding integers bounded by ``amax`` / ``bmax``, exactly, as float64."""
    k = a.shape[-1]
    c = chunk_length(amax, bmax)
    lead = a.shape[:-1]
    a2 = a.reshape(int(np.prod(lead, dtype=np.int64)), k)  # (-1, k) is ambiguous for k = 0
    if k <= c:
        return np.matmul(a2, b).astype(np.float64).reshape(lead + (b.shape[-1],))
    # one float32 GEMM per chunk of K (column slices: no copies), each exact, summed exactly
    acc = np.zeros((a2.shape[0], b.shape[-1]), np.float64)
    for start in range(0, k, c):
        acc += np.matmul(a2[:, start:start + c], b[start:start + c])
    return acc.reshape(lead + (b.shape[-1],))


def _shifted(x: np.ndarray, zp: np.ndarray | None) -> np.ndarray:
    """x - zp as float32 (exact for 8-bit values), in one pass."""
    if zp is None:
        return x.astype(np.float32)
    return np.subtract(x, np.asarray(zp).astype(np.float32), dtype=np.float32)


def _simple(a: np.ndarray, b: np.ndarray) -> bool:
    """Shapes the chunked path takes: a of rank >= 2, b a matrix."""
    return a.ndim >= 2 and b.ndim == 2


# --- MatMulInteger ---------------------------------------------------------------------------

@fast_kernel("MatMulInteger", versions=(10,))
def matmul_integer(A: np.ndarray, B: np.ndarray, a_zero_point: np.ndarray | None = None,
                   b_zero_point: np.ndarray | None = None, *, ctx: KernelContext | None = None
                   ) -> tuple[np.ndarray]:
    """Y (int32) = (A - a_zero_point) @ (B - b_zero_point) (see the module docstring)."""
    if not _simple(A, B) or A.dtype not in _INT8 or B.dtype not in _INT8:
        return _linalg.matmul_integer(A, B, a_zero_point, b_zero_point, ctx=ctx)
    shape = _linalg._matmul_shape(A.shape, B.shape, "MatMulInteger")
    if ctx is not None:
        check_alloc(shape, np.int32, ctx.max_tensor_bytes, "MatMulInteger output")
    az = _linalg._mmi_zero_point(a_zero_point, "a_zero_point", A, -2, A.shape[-2])
    bz = _linalg._mmi_zero_point(b_zero_point, "b_zero_point", B, -1, B.shape[-1])
    if bz.ndim > 1 or (az.ndim > 1 and az.shape != (A.shape[-2], 1)):
        # N-D zero points: the reference's general broadcasting
        return _linalg.matmul_integer(A, B, a_zero_point, b_zero_point, ctx=ctx)
    a = _shifted(A, az.reshape(-1, 1) if az.ndim == 1 else az)
    b = _shifted(B, bz)
    acc = exact_int_matmul(a, b, _bound(A.dtype, az), _bound(B.dtype, bz))
    return (acc.astype(np.int32),)


# --- com.microsoft MatMulIntegerToFloat, DynamicQuantizeMatMul, QGemm ------------------------

def _int_matmul(op: str, a: np.ndarray, a_zp: np.ndarray | None, b: np.ndarray,
                b_zp: np.ndarray | None) -> np.ndarray:
    """The contrib kernels' exact accumulator (float64), as ``contrib.matmul._int_matmul``
    computes it, by the chunked float32 route when the shapes allow."""
    if not _simple(a, b) or a.dtype not in _INT8 or b.dtype not in _INT8:
        return _cm._int_matmul(op, a, a_zp, b, b_zp)
    if a_zp is not None and a_zp.dtype != a.dtype:
        raise ExecutionError(f"{op}: a_zero_point is {a_zp.dtype}, A is {a.dtype}")
    if b_zp is not None and b_zp.dtype != b.dtype:
        raise ExecutionError(f"{op}: b_zero_point is {b_zp.dtype}, B is {b.dtype}")
    az = None if a_zp is None else _cm._scalar(a_zp, "a_zero_point", op)
    bz = None if b_zp is None else _cm._per_column(b_zp, b.shape[-1], "b_zero_point", op)
    if a.shape[-1] != b.shape[-2]:
        raise ExecutionError(f"{op}: A {a.shape} and B {b.shape} cannot be multiplied")
    return exact_int_matmul(_shifted(a, az), _shifted(b, bz), _bound(a.dtype, az),
                            _bound(b.dtype, bz))


# MatMulIntegerToFloat, DynamicQuantizeMatMul and QGemm: the reference kernels' bodies with the
# exact accumulator above in place of the int64 one
_INTEGER_MATMULS = _cm.integer_matmul_kernels(_int_matmul)
matmul_integer_to_float = fast_kernel("MatMulIntegerToFloat", versions=(1,), domain=_cm.MS)(
    _INTEGER_MATMULS["MatMulIntegerToFloat"])
dynamic_quantize_matmul = fast_kernel("DynamicQuantizeMatMul", versions=(1,), domain=_cm.MS)(
    _INTEGER_MATMULS["DynamicQuantizeMatMul"])
qgemm = fast_kernel("QGemm", versions=(1,), domain=_cm.MS)(_INTEGER_MATMULS["QGemm"])


# --- QLinearMatMul -----------------------------------------------------------------------------

@fast_kernel("QLinearMatMul", versions=(10, 21))
def qlinear_matmul(a: np.ndarray, a_scale: np.ndarray, a_zero_point: np.ndarray,
                   b: np.ndarray, b_scale: np.ndarray, b_zero_point: np.ndarray,
                   y_scale: np.ndarray, y_zero_point: np.ndarray, *,
                   ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    a_zp_in, b_zp_in = np.asarray(a_zero_point), np.asarray(b_zero_point)
    simple = (_simple(a, b) and a.dtype in _INT8 and b.dtype in _INT8 and
              a_zp_in.dtype == a.dtype and b_zp_in.dtype == b.dtype and
              a_zp_in.size == 1 and (b_zp_in.size == 1 or b_zp_in.shape == (b.shape[-1],)))
    if not simple:
        return _q.qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
                                 y_zero_point, ctx=ctx)
    if a.shape[-1] != b.shape[-2]:
        raise ExecutionError(f"QLinearMatMul: a has shape {a.shape} and b {b.shape}; the last "
                             f"dimension of a must equal the first matrix dimension of b")
    out_dt = np.asarray(y_zero_point).dtype
    a_s = _row_param(a_scale, a.ndim)
    if ctx is not None:
        check_alloc(a.shape[:-1] + (b.shape[-1],), np.float64, ctx.max_tensor_bytes,
                    "QLinearMatMul result")
    az = a_zp_in.reshape(())
    acc = exact_int_matmul(_shifted(a, az), _shifted(b, b_zp_in), _bound(a.dtype, az),
                           _bound(b.dtype, b_zp_in))
    # from here on, the reference's arithmetic
    real = acc * (a_s.astype(np.float64) * np.asarray(b_scale).astype(np.float64)).astype(_F32)
    q = real.astype(_F32) / np.asarray(y_scale).astype(_F32)
    is_int = out_dt in INT_RANGES
    if is_int:
        np.rint(q, out=q)
    q += np.asarray(y_zero_point).astype(_F32)
    return (requantize(q, out_dt, rounded=is_int, inplace=True),)


# --- ConvInteger ---------------------------------------------------------------------------------

def _reference(op_type: str, version: int):
    """The reference kernel (looked up, so that this module does not depend on which ops/
    module defines it)."""
    from pyonnx.ops.registry import get_kernel

    return get_kernel("", op_type, version)


@fast_kernel("ConvInteger", versions=(10,))
def conv_integer(x: np.ndarray, w: np.ndarray, x_zero_point: np.ndarray | None = None,
                 w_zero_point: np.ndarray | None = None, *, auto_pad: str = "NOTSET",
                 dilations=None, group: int = 1, kernel_shape=None, pads=None, strides=None,
                 ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """y (int32) = convolution of (x - x_zero_point) with (w - w_zero_point).

    A convolution is a sum over input channels: the reference kernel runs on slices of input
    channels small enough that its float32 path is exact for each (it falls back to float64
    for the whole reduction otherwise), and the exact int32 partial results are added. Groups,
    or a single channel whose kernel alone is too large, take the reference kernel as is.
    """
    ref = _reference("ConvInteger", 10)
    kwargs = dict(auto_pad=auto_pad, dilations=dilations, group=group,
                  kernel_shape=kernel_shape, pads=pads, strides=strides, ctx=ctx)
    if group != 1 or x.ndim < 3 or w.ndim != x.ndim or x.dtype not in _INT8 or \
            w.dtype not in _INT8 or x.shape[1] != w.shape[1]:
        return ref(x, w, x_zero_point, w_zero_point, **kwargs)
    per_channel = int(np.prod(w.shape[2:], dtype=np.int64))
    bound = _bound(x.dtype, x_zero_point) * _bound(w.dtype, w_zero_point)
    step = _EXACT // (bound * max(per_channel, 1))
    c = w.shape[1]
    if step < 1 or step >= c:
        return ref(x, w, x_zero_point, w_zero_point, **kwargs)
    total = None
    for c0 in range(0, c, step):
        # padded positions contribute 0 after the zero point is removed, in every slice
        (part,) = ref(x[:, c0:c0 + step], w[:, c0:c0 + step], x_zero_point, w_zero_point,
                      **kwargs)
        total = part.astype(np.int64) if total is None else total + part
    return (total.astype(np.int32),)


# --- com.microsoft MatMulNBits -----------------------------------------------------------------

@fast_kernel("MatMulNBits", versions=(1,), domain=_cm.MS)
def matmul_nbits(A: np.ndarray, B: np.ndarray, scales: np.ndarray,
                 zero_points: np.ndarray | None = None, g_idx: np.ndarray | None = None,
                 bias: np.ndarray | None = None, *, K: int, N: int, block_size: int,
                 bits: int = 4, accuracy_level: int = 0, weight_prepacked: int = 0,
                 ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """The reference's weight dequantization without its per-element gathers: 4-bit blocks
    unpacked with two shifts and scaled by broadcasting one scale and zero point per block.
    The dequantized values are the same float32 numbers (same operations, same order), in the
    same (N, K) layout, multiplied by the same GEMM, so the result is the reference's; the
    float weight lives only for the call. Other cases (8- or 2-bit, g_idx, K not a multiple
    of the block, float zero points) run the reference."""
    from pyonnx.ops._common import compute_dtype

    kb = -(-K // block_size) if block_size > 0 else 0
    usual = (bits == 4 and g_idx is None and not weight_prepacked and block_size >= 16 and
             not block_size & (block_size - 1) and K % block_size == 0 and
             A.dtype in (np.float32, np.float16) and A.ndim >= 1 and A.shape[-1] == K and
             B.dtype == np.uint8 and B.shape == (N, kb, block_size // 2) and
             scales.size == N * kb and
             (zero_points is None or (zero_points.dtype == np.uint8 and
                                      zero_points.size == N * -(-kb // 2))) and
             (bias is None or bias.shape == (N,)))
    if not usual:
        return _cm.matmul_nbits(A, B, scales, zero_points, g_idx, bias, K=K, N=N,
                                block_size=block_size, bits=bits, accuracy_level=accuracy_level,
                                weight_prepacked=weight_prepacked, ctx=ctx)
    cdt = compute_dtype(A.dtype)
    q = np.empty((N, kb, block_size), np.uint8)
    q[:, :, 0::2] = B & np.uint8(0x0F)    # low nibble first
    q[:, :, 1::2] = B >> np.uint8(4)
    sc = scales.reshape(N, kb).astype(cdt)
    if zero_points is None:
        zp = np.full((N, kb), float(1 << (bits - 1)), cdt)
    else:
        zb = zero_points.reshape(N, -1)
        zp = np.empty((N, zb.shape[1] * 2), np.uint8)
        zp[:, 0::2] = zb & np.uint8(0x0F)
        zp[:, 1::2] = zb >> np.uint8(4)
        zp = zp[:, :kb].astype(cdt)
    w = q.astype(cdt)
    w -= zp[:, :, None]
    w *= sc[:, :, None]
    y = A.astype(cdt, copy=False) @ w.reshape(N, K).T
    if bias is not None:
        y += bias.astype(cdt)
    return (y.astype(A.dtype, copy=False),)


# --- QLinearConv ---------------------------------------------------------------------------------

def _conv_int_exact32(x: np.ndarray, w: np.ndarray, group: int, strides, dilations, pads,
                      amax: int, bmax: int) -> np.ndarray:
    """``ops._quantization.conv_int_exact`` with float32 columns and chunked exact GEMMs:
    the same exact integer convolution (as float64), half the bytes per column."""
    from pyonnx.ops._quantization import conv_int_exact

    n, c = x.shape[:2]
    m = w.shape[0]
    nsp = x.ndim - 2
    kernel = w.shape[2:]
    if c % group or m % group or w.shape[1] != c // group:
        return conv_int_exact(x, w, group, strides, dilations, pads)   # its errors
    cg, mg = c // group, m // group
    xf = x
    if any(pads):
        xf = np.pad(xf, [(0, 0), (0, 0)] + [(pads[i], pads[i + nsp]) for i in range(nsp)])
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    out_sp = [(xf.shape[2 + i] - eff[i]) // strides[i] + 1 for i in range(nsp)]
    if any(o <= 0 for o in out_sp):
        return conv_int_exact(x, w, group, strides, dilations, pads)   # its error
    win = np.lib.stride_tricks.sliding_window_view(xf, eff, axis=tuple(range(2, 2 + nsp)))
    sl = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides) + tuple(
        slice(None, None, d) for d in dilations)
    win = win[sl][(slice(None), slice(None)) + tuple(slice(0, o) for o in out_sp)]
    length = int(np.prod(out_sp))
    ksize = int(np.prod(kernel))
    win = win.reshape((n, group, cg) + tuple(out_sp) + tuple(kernel))
    perm = (0, 1) + tuple(range(3, 3 + nsp)) + (2,) + tuple(range(3 + nsp, 3 + 2 * nsp))
    cols = np.ascontiguousarray(win.transpose(perm)).reshape(n, group, length, cg * ksize)
    wm = w.reshape(group, mg, cg * ksize)
    out = np.empty((n, group, mg, length), np.float64)
    for gi in range(group):
        wt = np.ascontiguousarray(wm[gi].T)
        for ni in range(n):
            out[ni, gi] = exact_int_matmul(cols[ni, gi], wt, amax, bmax).T
    return out.reshape((n, m) + tuple(out_sp))


@fast_kernel("QLinearConv", versions=(10,))
def qlinear_conv(x: np.ndarray, x_scale: np.ndarray, x_zero_point: np.ndarray, w: np.ndarray,
                 w_scale: np.ndarray, w_zero_point: np.ndarray, y_scale: np.ndarray,
                 y_zero_point: np.ndarray, B: np.ndarray | None = None, *,
                 auto_pad: str = "NOTSET", dilations=None, group: int = 1, kernel_shape=None,
                 pads=None, strides=None, ctx: KernelContext | None = None
                 ) -> tuple[np.ndarray]:
    """The reference's QLinearConv with the integer convolution in float32 chunks (see
    :func:`_conv_int_exact32`); everything around it is the reference's arithmetic."""
    from pyonnx.ops._quantization import conv_pads

    ref = _reference("QLinearConv", 10)
    x, w = np.asarray(x), np.asarray(w)
    xz_in, wz_in = np.asarray(x_zero_point), np.asarray(w_zero_point)
    nsp = x.ndim - 2
    m = w.shape[0] if w.ndim else 0
    w_s = np.asarray(w_scale).reshape(-1)
    w_zp = wz_in.reshape(-1)
    simple = (x.ndim >= 3 and w.ndim == x.ndim and x.dtype in _INT8 and w.dtype in _INT8 and
              xz_in.dtype == x.dtype and wz_in.dtype == w.dtype and xz_in.size == 1 and
              np.asarray(x_scale).size == 1 and w_s.size in (1, m) and w_zp.size in (1, m) and
              (not kernel_shape or list(kernel_shape) == list(w.shape[2:])) and
              (B is None or np.asarray(B).shape == (m,)))
    if not simple:
        return ref(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B,
                   auto_pad=auto_pad, dilations=dilations, group=group,
                   kernel_shape=kernel_shape, pads=pads, strides=strides, ctx=ctx)
    strides = list(strides) if strides else [1] * nsp
    dilations = list(dilations) if dilations else [1] * nsp
    if len(strides) != nsp or len(dilations) != nsp:
        raise ExecutionError(f"strides {strides} and dilations {dilations} need {nsp} values")
    p = conv_pads(x.shape[2:], w.shape[2:], strides, dilations, pads, auto_pad)
    wshift = (1, -1) + (1,) * nsp
    xz = xz_in.reshape(())
    per_m = (-1,) + (1,) * (nsp + 1)
    wz = w_zp.reshape(per_m) if w_zp.size > 1 else w_zp.reshape(())
    if ctx is not None:
        check_alloc((x.shape[0], m) + tuple(x.shape[2:]), np.float64, ctx.max_tensor_bytes,
                    "QLinearConv result")
    acc = _conv_int_exact32(_shifted(x, xz), _shifted(w, wz), int(group), strides, dilations,
                            p, _bound(x.dtype, xz), _bound(w.dtype, w_zp))
    # from here on, the reference's arithmetic
    if B is not None:
        acc += np.asarray(B).astype(np.float64).reshape(wshift)
    out_dt = np.asarray(y_zero_point).dtype
    mult = (np.asarray(x_scale, dtype=np.float32).reshape(()) * w_s.astype(np.float32))
    real = acc.astype(np.float32) * (mult.reshape(wshift) if mult.size > 1 else mult.reshape(()))
    q = real / np.asarray(y_scale, dtype=np.float32).reshape(())
    np.rint(q, out=q)
    q += np.asarray(y_zero_point).astype(np.float32).reshape(())
    return (requantize(q, out_dt, rounded=True, inplace=True),)


# --- com.microsoft DynamicQuantizeLSTM -------------------------------------------------------------

_F32T = np.float32


class _ShiftedWeight:
    """An 8-bit weight minus its zero point as float32, made once per kernel call (it is
    integer data, not dequantized weights, and is dropped when the call returns)."""

    def __init__(self, w: np.ndarray, zp: np.ndarray) -> None:
        self.values = _shifted(w, zp)
        self.bound = _bound(w.dtype, zp)

    def product(self, a: np.ndarray, w_scale: np.ndarray) -> np.ndarray:
        """``ops.contrib.quantized._dynamic_qgemm(a, w, w_scale, zp)``, exactly."""
        aq, a_scale, a_zp = dynamic_quantize_linear(a)
        acc = exact_int_matmul(_shifted(aq, a_zp), self.values, _bound(aq.dtype, a_zp),
                               self.bound)
        return acc.astype(_F32T) * (a_scale * w_scale)


def _shifted_weight_product(w: np.ndarray, zero_point: np.ndarray):
    return _ShiftedWeight(w, zero_point).product


#: The reference DynamicQuantizeLSTM (ops/contrib/quantized.py), step for step, with its products
#: ``a @ dequantize(W or R)`` done by :class:`_ShiftedWeight`: the shifted integer weights are
#: converted to float32 once per call instead of to float64 at every step, and the exact product
#: runs as float32 GEMMs. Same exact accumulators, same float code after them: the reference's
#: results.
dynamic_quantize_lstm = fast_kernel("DynamicQuantizeLSTM", versions=(1,), domain=_cq.MS)(
    _cq.dynamic_quantize_lstm_kernel(_shifted_weight_product))


# --- com.microsoft QAttention ------------------------------------------------------------------
# (kept as its own section: other variants above are edited independently)

#: The reference QAttention (ops/contrib/attention.py) with its integer projection
#: (input - input_zero_point) @ (weight - weight_zero_point) by the chunked float32 route of
#: :func:`_int_matmul`: the same exact accumulator, then the same float code (scaling, bias and
#: Attention's softmax), so the reference's results bit for bit.
qattention = fast_kernel("QAttention", versions=(1,), domain=_cm.MS)(
    _ca.qattention_kernel(_int_matmul))
