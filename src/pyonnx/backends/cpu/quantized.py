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

import functools

import numpy as np

from pyonnx.backends.cpu.registry import fast_kernel
from pyonnx.errors import ExecutionError
from pyonnx.ops import linalg as _linalg
from pyonnx.ops.contrib import attention as _ca
from pyonnx.ops.contrib import matmul as _cm
from pyonnx.ops.contrib import quantized as _cq
from pyonnx.ops.quantization import _row_param, dynamic_quantize_linear, requantize_conv
from pyonnx.ops import quantization as _q
from pyonnx.ops._common import check_alloc
from pyonnx.ops._quantization import INT_RANGES, requantize
from pyonnx.ops.registry import KernelContext

# Float values of one dequantized band of a weight (256 KiB of float32). Bands of 512 KiB or
# 1 MiB ran ~3% faster on gpt2_small but raised its session peak RSS by 3-4 MB (glibc then
# serves them from the heap, which keeps the pages).
_BAND_VALUES = 1 << 16

# Bands of a widened (float16) weight are larger: widening costs little next to the product,
# which then runs as fewer, wider GEMMs (products of 128 rows took 1.2-1.7x the float32 product
# in bands of _BAND_VALUES, 1.05-1.35x in these; measured interleaved on the 2-core dev VM under
# load), and their columns a multiple of 64, which BLAS's kernels divide evenly. The band is a
# 1 MiB float32 buffer during the call (session peak RSS of the float16 shared models 0.67-0.75x
# their float models', 0.58-0.69x with bands of _BAND_VALUES).
_WIDE_BAND_VALUES = 1 << 18
_WIDE_ALIGN = 64

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


def _exact_weight_product(a: np.ndarray, amax: int, w: np.ndarray, wz: np.ndarray | None
                          ) -> np.ndarray:
    """``exact_int_matmul(a, w - wz)`` for an 8-bit matrix ``w`` [K, N] and a zero point ``wz``
    (None, a scalar or one per column), as float64. A large ``w`` is widened to float32 a band
    of columns at a time (:func:`_band`, as the dequantizing kernels below do), so no float32
    copy of a whole weight exists even during the call: gpt2_small's tied LM head (its
    embedding table) made the session peak of its dynamic int8 model 1.02x the float model's."""
    wmax = _bound(w.dtype, wz)
    k, n = w.shape
    if w.size <= _WIDE_BAND_VALUES:
        return exact_int_matmul(a, _shifted(w, wz), amax, wmax)
    out = np.empty(a.shape[:-1] + (n,), np.float64)
    step = _band(n, k, _WIDE_ALIGN, _WIDE_BAND_VALUES)
    per_column = wz is not None and np.ndim(wz) == 1 and np.shape(wz)[0] == n
    for s in range(0, n, step):
        z = wz[s:s + step] if per_column else wz
        out[..., s:s + step] = exact_int_matmul(a, _shifted(w[:, s:s + step], z), amax, wmax)
    return out


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
    acc = _exact_weight_product(a, _bound(A.dtype, az), B, bz)
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
    return _exact_weight_product(_shifted(a, az), _bound(a.dtype, az), b, bz)


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
    same (N, K) layout, multiplied band by band (_BAND_VALUES values of the weight at a time)
    into the output's columns: the reference's products up to the summation order of the
    GEMM, with no float copy of the whole weight at any time. Other cases (8- or 2-bit,
    g_idx, K not a multiple of the block, float zero points) run the reference."""
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
    sc_all = scales.reshape(N, kb)
    zb_all = None if zero_points is None else zero_points.reshape(N, -1)
    a = A.astype(cdt, copy=False)
    # the weight is dequantized one band of rows (outputs) at a time, each band multiplied into
    # its columns of y and dropped: no float copy of the whole weight exists at any time
    step = max(_BAND_VALUES // K, 1)
    y = np.empty(a.shape[:-1] + (N,), cdt) if step < N else None
    for n0 in range(0, N, step):
        n1 = min(n0 + step, N)
        q = np.empty((n1 - n0, kb, block_size), np.uint8)
        q[:, :, 0::2] = B[n0:n1] & np.uint8(0x0F)    # low nibble first
        q[:, :, 1::2] = B[n0:n1] >> np.uint8(4)
        sc = sc_all[n0:n1].astype(cdt)
        if zb_all is None:
            zp = np.full((n1 - n0, kb), float(1 << (bits - 1)), cdt)
        else:
            zb = zb_all[n0:n1]
            zp = np.empty((n1 - n0, zb.shape[1] * 2), np.uint8)
            zp[:, 0::2] = zb & np.uint8(0x0F)
            zp[:, 1::2] = zb >> np.uint8(4)
            zp = zp[:, :kb].astype(cdt)
        w = q.astype(cdt)
        del q
        w -= zp[:, :, None]
        w *= sc[:, :, None]
        if y is None:   # one band: the whole product in one GEMM, as the reference does
            y = a @ w.reshape(N, K).T
        else:
            np.matmul(a, w.reshape(n1 - n0, K).T, out=y[..., n0:n1])
        del w
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
    xz = xz_in.reshape(())
    per_m = (-1,) + (1,) * (nsp + 1)
    wz = w_zp.reshape(per_m) if w_zp.size > 1 else w_zp.reshape(())
    if ctx is not None:
        check_alloc((x.shape[0], m) + tuple(x.shape[2:]), np.float64, ctx.max_tensor_bytes,
                    "QLinearConv result")
    acc = _conv_int_exact32(_shifted(x, xz), _shifted(w, wz), int(group), strides, dilations,
                            p, _bound(x.dtype, xz), _bound(w.dtype, w_zp))
    # from here on, the reference's arithmetic
    return (requantize_conv(acc, B, x_scale, w_s, y_scale, y_zero_point),)


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


# =================================================================================================
# Narrow weights at run time (issue 14): the DequantizeLinear of a quantized constant weight, or
# the Cast to float32 of a float16 one (what ComputeHalfInFloat32 gives a float16 model's large
# weights), feeding MatMul / Gemm / Gather, without a wide copy of the weight outliving a call.
#
# Constant folding leaves such a widening of a large constant in the graph
# (optimizer.passes.constant_folding.widens_constant). At the extended level and above,
# FuseDequantizeLinear (below) gives each reader of such a node a fused kernel of the session's
# private domain that widens the weight one band at a time:
#
# * DequantizeMatMul(A, Wq, scale, zero_point, C): Y = A @ W (or A @ W^T with trans_b=1)
#   [+ beta * C], W = DequantizeLinear(Wq, scale, zero_point; axis, block_size), or, with no
#   scale, W = Cast(Wq, to=float32). The weight is widened in bands of output columns, each
#   band multiplied into its columns of Y and dropped: the largest float temporary is one band
#   (about _BAND_VALUES values, _WIDE_BAND_VALUES for a Cast), not W.
# * DequantizeGather(Wq, scale, zero_point, indices): Gather(W, indices, axis=0), W as above:
#   the narrow rows are gathered and only they are widened (an embedding read by token ids).
#
# A widening is exact (every float16 value is a float32 value), so the fused kernels of a
# float16 weight compute what its reader computes on the float32 copy, up to the summation
# order of the banded GEMM.
#
# A DequantizeLinear that stays (lower levels, other readers) runs the blocked fast variant
# below, which dequantizes per call without expanding its scale and zero point to W's size.
# 4-bit values are converted through their bytes (2-4x faster than ml_dtypes' conversion): the
# dequantized numbers are the reference's exactly (the same float32 subtraction of the same
# small integers, then the same multiplication), only the products' summation may differ.
# =================================================================================================

from pyonnx.ops import activation as _ref_activation  # noqa: E402
from pyonnx.ops import quantization as _ref_quantization  # noqa: E402
from pyonnx.ops.registry import kernel as _ref_kernel  # noqa: E402

_PRIVATE = "pyonnx"                 # the session-private domain (backends.cpu.fused.DOMAIN)
_DQ_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_NIBBLE = np.uint8(0x0F)            # the low nibble: a 4-bit value in its byte


def _q_name(dt: np.dtype) -> str:
    return dt.name if dt.itemsize == 1 else ""


def _quantized_kind(dt: np.dtype) -> str | None:
    """'int8', 'uint8', 'int4', 'uint4' for the weight types the blocked path reads; else None."""
    if dt in _INT8:
        return dt.name
    if dt.itemsize == 1 and dt.name in ("int4", "uint4"):
        return dt.name
    return None


def _as_float(q: np.ndarray, dt: np.dtype) -> tuple[np.ndarray, float]:
    """``(f, offset)`` with ``f - offset == q`` as ``dt`` values (a fresh C-contiguous array):
    4-bit values go through their bytes (uint4 a byte each; int4 ``x`` stored as its low
    nibble ``u``, so ``(u ^ 8) == x + 8``)."""
    kind = q.dtype.name
    if kind == "uint4":
        return (q.view(np.uint8) & _NIBBLE).astype(dt), 0.0
    if kind == "int4":
        u = q.view(np.uint8) & _NIBBLE
        u ^= np.uint8(8)
        return u.astype(dt), 8.0
    return q.astype(dt, order="C"), 0.0


def _blocked_params(scale: np.ndarray, zp: np.ndarray | None, q_shape: tuple[int, ...],
                    axis: int, block_size: int) -> bool:
    """Whether (scale, zero point) are a valid blocked layout for a weight of ``q_shape``."""
    if block_size <= 0 or scale.ndim != len(q_shape):
        return False
    for i, (s, d) in enumerate(zip(scale.shape, q_shape)):
        if s != (-(-d // block_size) if i == axis else d):
            return False
    return zp is None or zp.shape == scale.shape


def _float_zero_points(zp: np.ndarray | None, kind: str, dt: np.dtype) -> np.ndarray | None:
    """The zero points to subtract from :func:`_as_float`'s values, as ``dt`` (int4's offset 8
    included; None when there is nothing to subtract). NumPy integers convert to float several
    times faster than ml_dtypes' 4-bit types, so those go through their bytes."""
    offset = 8 if kind == "int4" else 0
    if zp is None:
        return np.full((), offset, dt) if offset else None
    if zp.dtype.name == "uint4":
        z = (zp.view(np.uint8) & _NIBBLE).astype(dt)
    elif zp.dtype.name == "int4":
        z = ((zp.view(np.uint8) & _NIBBLE) ^ np.uint8(8)).astype(dt)   # x + 8, as _as_float
        return z
    else:
        z = zp.astype(dt)
    if offset:
        z += dt.type(offset)
    return z


def _dequantize_band(q: np.ndarray, scale: np.ndarray, zp: np.ndarray | None, axis: int,
                     block_size: int, dt: np.dtype, zf: np.ndarray | None | bool = False
                     ) -> np.ndarray:
    """DequantizeLinear of ``q`` (any rank, blocked along ``axis``; ``scale``/``zp`` already
    cut to ``q``'s extent in every other axis) as the reference computes it, with the
    parameters broadcast per block instead of repeated to ``q``'s size. ``zf``: the zero points
    already converted by :func:`_float_zero_points` (and cut like ``scale``), when the caller
    converts them once for many bands; ``zp`` is then unused."""
    y, _offset = _as_float(q, dt)
    if zf is False:
        zf = _float_zero_points(zp, q.dtype.name, dt)
    sc = scale.astype(dt, copy=False)
    d = q.shape[axis]
    if d % block_size == 0:
        # split the axis into (blocks, block_size) and give the parameters a unit axis after it
        split = q.shape[:axis] + (d // block_size, block_size) + q.shape[axis + 1:]
        y = y.reshape(split)
        sc = np.expand_dims(sc, axis + 1)
        z = None if zf is None else (zf if zf.ndim == 0 else np.expand_dims(zf, axis + 1))
    else:
        keep = np.arange(d)
        sc = np.repeat(sc, block_size, axis=axis).take(keep, axis=axis)
        z = None if zf is None else (zf if zf.ndim == 0 else np.repeat(
            zf, block_size, axis=axis).take(keep, axis=axis))
    if z is not None:
        y -= z
    y *= sc
    return y.reshape(q.shape)


def _blocked_ok(x: np.ndarray, scale: np.ndarray, zp: np.ndarray | None, axis: int,
                block_size: int, out_dt: np.dtype) -> bool:
    """The inputs the blocked path computes exactly as the reference; others take the
    reference (which also raises its errors for bad inputs)."""
    return (_quantized_kind(x.dtype) is not None and x.ndim >= 1 and -x.ndim <= axis < x.ndim
            and out_dt in _DQ_FLOATS and scale.dtype == out_dt
            and (zp is None or zp.dtype == x.dtype)
            and _blocked_params(scale, zp, x.shape, axis % x.ndim, block_size))


def _dequantize_linear_fast(x, x_scale, x_zero_point=None, *, axis: int = 1, block_size: int = 0,
                            output_dtype: int = 0, _version: int = 21):
    x, scale = np.asarray(x), np.asarray(x_scale)
    zp = None if x_zero_point is None else np.asarray(x_zero_point)
    out_dt = scale.dtype
    if output_dtype:
        from pyonnx.ir.dtypes import DataType
        try:
            out_dt = np.dtype(DataType(int(output_dtype)).numpy)
        except ValueError:
            out_dt = None
    if out_dt is None or not _blocked_ok(x, scale, zp, axis, block_size, out_dt):
        return _ref_quantization.dequantize_linear(x, x_scale, x_zero_point, axis=axis,
                                                   block_size=block_size,
                                                   output_dtype=output_dtype)
    return (_dequantize_band(x, scale, zp, axis % x.ndim, block_size, out_dt),)


def _dequantize_linear_blocked(x: np.ndarray, x_scale: np.ndarray,
                               x_zero_point: np.ndarray | None = None, *, axis: int = 1,
                               block_size: int = 0, output_dtype: int = 0
                               ) -> tuple[np.ndarray]:
    """DequantizeLinear with blocked parameters broadcast per block instead of repeated to
    ``x``'s size (see the section note); every other case is the reference kernel."""
    return _dequantize_linear_fast(x, x_scale, x_zero_point, axis=axis, block_size=block_size,
                                   output_dtype=output_dtype)


# block_size exists from version 21 (blocked quantization); earlier versions only have per-tensor
# and per-axis parameters, which the reference already broadcasts without copies
fast_kernel("DequantizeLinear", versions=(21, 23, 24, 25, 28))(_dequantize_linear_blocked)


def _band(n: int, k: int, align: int, values: int | None = None) -> int:
    """Columns per band: about ``values`` (default _BAND_VALUES) values of a K-long column
    each, a multiple of ``align`` (a band then holds whole blocks when the blocks run along
    N)."""
    cols = max((values or _BAND_VALUES) // max(k, 1), 1)
    cols = max(cols - cols % align, align)
    return min(cols, n) if n else 0


@functools.cache
def _half_table() -> np.ndarray:
    """The 65,536 float32 values of the float16 bit patterns (256 KiB, made on first use by
    NumPy's conversion, so a look-up gives exactly what ``astype`` gives)."""
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    return bits.view(np.float16).astype(_F32)


def _widen_into(q: np.ndarray, cols: slice, buf: np.ndarray) -> np.ndarray:
    """``q[:, cols]`` (``q`` 2-D) converted to float32 into the first values of ``buf`` (1-D
    float32), returned as a C-contiguous array: the Cast to float32, exact. float16 takes a
    compiled loop with the ``fast`` extra (:mod:`pyonnx.backends.cpu.jit.widen_loops`, 7x
    faster than NumPy's conversion, which converts value by value), else a look-up in a table
    of its 65,536 values (2x faster); other types (bfloat16, float8, integers) NumPy's cast."""
    c0, c1, _ = cols.indices(q.shape[1])
    w = buf[:q.shape[0] * (c1 - c0)].reshape(q.shape[0], c1 - c0)
    if q.dtype == np.float16:
        from pyonnx.backends.cpu import jit

        bits = q.view(np.uint16)
        if not (bits.flags.c_contiguous and
                jit.call("widen_loops.half_to_float", bits, c0, w, elements=w.size)):
            np.take(_half_table(), bits[:, c0:c1], out=w, mode="clip")  # 'clip': unbuffered
    else:
        np.copyto(w, q[:, c0:c1], casting="unsafe")
    return w


def _widened(Wq, scale, zp, axis: int, block_size: int) -> np.ndarray:
    """The whole weight, by the unfused definition: DequantizeLinear, or (no scale) a Cast to
    float32."""
    if scale is None:
        if zp is not None:
            raise ExecutionError("a widened weight (no scale) takes no zero point")
        return np.asarray(Wq).astype(np.float32)
    (w,) = _ref_quantization.dequantize_linear(Wq, scale, zp, axis=axis, block_size=block_size)
    return w


def _widening_ok(Wq: np.ndarray, zp: np.ndarray | None, out_dt: np.dtype) -> bool:
    """A weight the banded path widens (no scale): to float32, no zero point, and a type whose
    Cast to float32 is NumPy's conversion (floats, ml_dtypes' included, and integers; the
    conversion is exact for the narrow types that constant folding keeps narrow)."""
    return (zp is None and out_dt == _F32 and Wq.dtype != _F32 and
            (Wq.dtype.kind in "fiu" or "float" in Wq.dtype.name or
             Wq.dtype.name in ("int4", "uint4", "int2", "uint2")))


def _reference_dequantize_matmul(A, Wq, scale, zp, C, axis, block_size, trans_b, beta):
    """The unfused definition: DequantizeLinear (or Cast), then MatMul (or Gemm with C)."""
    w = _widened(Wq, scale, zp, axis, block_size)
    b = w.T if trans_b else w
    if A.dtype != b.dtype:
        raise ExecutionError(f"DequantizeMatMul: A is {A.dtype} but the dequantized weight is "
                             f"{b.dtype}; MatMul needs one element type")
    y = np.matmul(A, b)
    if C is not None:
        y = y + (C if beta == 1.0 else (beta * C.astype(np.float64)).astype(y.dtype))
    return (y,)


@_ref_kernel("DequantizeMatMul", versions=(1,), domain=_PRIVATE)
def dequantize_matmul(A: np.ndarray, Wq: np.ndarray, scale: np.ndarray | None = None,
                      zero_point: np.ndarray | None = None, C: np.ndarray | None = None, *,
                      axis: int = 0, block_size: int = 0, trans_b: int = 0, beta: float = 1.0,
                      ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """``A @ B [+ beta * C]`` with ``B = W`` (``W^T`` when ``trans_b``) and ``W`` the 2-D
    ``DequantizeLinear(Wq, scale, zero_point; axis, block_size)``: what ``MatMul(A,
    DequantizeLinear(...))`` (or ``Gemm`` with ``transA=0, alpha=1``) computes, with the weight
    dequantized one band of output columns at a time (see the section note). Without
    ``scale``, ``W`` is ``Cast(Wq, to=float32)`` (a float16 weight). Blocked weights of 4 or 8
    bits and widened ones take the banded path; any other layout computes the unfused
    definition."""
    from pyonnx.backends.cpu.gemm import matmul2d

    A, Wq = np.asarray(A), np.asarray(Wq)
    scale = None if scale is None else np.asarray(scale)
    zp = None if zero_point is None else np.asarray(zero_point)
    trans_b, beta = int(trans_b), float(beta)
    if scale is None:   # a widening: the blocks and their parameters mean nothing
        axis, block_size = 0, 1
        usual = Wq.ndim == 2 and A.ndim >= 1 and _widening_ok(Wq, zp, A.dtype)
        if usual and not Wq.flags.c_contiguous and Wq.T.flags.c_contiguous:
            # a transposed view (a folded Transpose of a tied embedding): its bands are read
            # as the rows of the stored layout
            Wq, trans_b = Wq.T, 1 - trans_b
    else:
        usual = (Wq.ndim == 2 and A.ndim >= 1 and A.dtype == scale.dtype and
                 _blocked_ok(Wq, scale, zp, axis, block_size, scale.dtype))
    if not usual:
        return _reference_dequantize_matmul(A, Wq, scale, zp, C, axis, block_size, trans_b, beta)
    ax = axis % 2
    k, n = (Wq.shape[1], Wq.shape[0]) if trans_b else Wq.shape
    if A.shape[-1] != k:
        raise ExecutionError(f"DequantizeMatMul: A of shape {list(A.shape)} cannot be multiplied "
                             f"by a weight of shape {[k, n]} (A's last dimension must be {k})")
    lead = A.shape[:-1]
    m = int(np.prod(lead, dtype=np.int64))
    if ctx is not None:
        check_alloc(lead + (n,), A.dtype, ctx.max_tensor_bytes, "DequantizeMatMul output")
    a2 = A.reshape(m, k)
    y = np.empty((m, n), A.dtype)
    # the N axis of the stored weight: bands along it hold whole blocks when it is the block axis
    n_axis = 0 if trans_b else 1
    if scale is None:
        step = _band(n, k, _WIDE_ALIGN, _WIDE_BAND_VALUES)
    else:
        step = _band(n, k, block_size if ax == n_axis else 1)
    zf_all = None if scale is None else _float_zero_points(zp, Wq.dtype.name, A.dtype)  # once
    # a widened band is written into one buffer, reused (a fresh 1 MiB array per band would be
    # mapped and unmapped each time). The bands run one after another: matmul2d splits a band's
    # product over the intra-op threads (splitting the bands instead made each pool thread
    # allocate its own buffers, which glibc keeps in that thread's arena: +4-8 MB of session
    # peak RSS on gpt2_small)
    buf = np.empty(k * step, A.dtype) if scale is None else None
    for n0 in range(0, n, step):
        n1 = min(n0 + step, n)
        if scale is None:
            w = _widen_into(Wq[n0:n1], slice(None), buf) if trans_b else \
                _widen_into(Wq, slice(n0, n1), buf)
        else:
            cut = [slice(None), slice(None)]
            cut[n_axis] = slice(n0, n1)
            pcut = list(cut)
            if ax == n_axis:   # parameters hold one entry per block of N
                pcut[n_axis] = slice(n0 // block_size, -(-n1 // block_size))
            zf = zf_all if zf_all is None or zf_all.ndim == 0 else zf_all[tuple(pcut)]
            w = _dequantize_band(Wq[tuple(cut)], scale[tuple(pcut)], None, ax, block_size,
                                 A.dtype, zf)
        matmul2d(a2, w.T if trans_b else w, out=y[:, n0:n1])
        del w  # the band's float values go before the next band is made
    y = y.reshape(lead + (n,))
    if C is not None:
        c = np.asarray(C)
        if c.dtype != y.dtype:
            raise ExecutionError(f"DequantizeMatMul: C is {c.dtype}, the product {y.dtype}")
        try:
            np.broadcast_shapes(c.shape, y.shape) == y.shape or _raise_bcast(c, y)
        except ValueError:
            _raise_bcast(c, y)
        if beta == 1.0:
            y += c
        else:
            y += (beta * c.astype(np.float64)).astype(y.dtype)
    return (y,)


def _raise_bcast(c: np.ndarray, y: np.ndarray) -> None:
    raise ExecutionError(f"DequantizeMatMul: C of shape {list(c.shape)} does not broadcast to "
                         f"the product's shape {list(y.shape)}")


@_ref_kernel("DequantizeGather", versions=(1,), domain=_PRIVATE)
def dequantize_gather(Wq: np.ndarray, scale: np.ndarray | None, zero_point: np.ndarray | None,
                      indices: np.ndarray, *, axis: int = 0, block_size: int = 0
                      ) -> tuple[np.ndarray]:
    """``Gather(DequantizeLinear(Wq, scale, zero_point; axis, block_size), indices, axis=0)``
    (without ``scale``: ``Gather(Cast(Wq, to=float32), indices, axis=0)``) for a 2-D ``Wq``:
    the narrow rows are gathered (with Gather's index checks) and only they are widened.
    Other layouts compute the unfused definition."""
    from pyonnx.ops.indexing import gather

    Wq = np.asarray(Wq)
    scale = None if scale is None else np.asarray(scale)
    zp = None if zero_point is None else np.asarray(zero_point)
    indices = np.asarray(indices)
    if scale is None:
        usual = Wq.ndim == 2 and _widening_ok(Wq, zp, _F32)
    else:
        usual = Wq.ndim == 2 and _blocked_ok(Wq, scale, zp, axis, block_size, scale.dtype)
    if not usual:
        return gather(_widened(Wq, scale, zp, axis, block_size), indices, axis=0)
    (rows,) = gather(Wq, indices, axis=0)        # checks the indices, as Gather does
    if scale is None:
        flat = rows.reshape(-1, Wq.shape[1])
        return (_widen_into(flat, slice(None), np.empty(flat.size, _F32)).reshape(rows.shape),)
    rows = rows.reshape(-1, Wq.shape[1])
    if axis % 2 == 1:
        # blocks along each row: the rows' own parameter rows
        idx = np.asarray(indices).reshape(-1).astype(np.int64)
        idx = np.where(idx < 0, idx + Wq.shape[0], idx)
        sc = scale[idx]
        z = None if zp is None else zp[idx]
        y = _dequantize_band(rows, sc, z, 1, block_size, scale.dtype)
    else:
        # blocks across rows: row i reads parameter row i // block_size, one value per element
        idx = np.asarray(indices).reshape(-1).astype(np.int64)
        idx = np.where(idx < 0, idx + Wq.shape[0], idx) // block_size
        y = _dequantize_band(rows, scale[idx], None if zp is None else zp[idx], 0, 1,
                             scale.dtype)
    return (y.reshape(indices.shape + (Wq.shape[1],)),)


class FuseDequantizeLinear:
    """The session pass that gives each reader of a large constant weight's DequantizeLinear,
    or of its Cast to float32 (a float16 weight), a fused kernel (see the section note):

    * ``MatMul(A, DequantizeLinear(Wq, s, z))`` -> ``DequantizeMatMul(A, Wq, s, z)``
    * ``MatMul(A, Transpose(DequantizeLinear(Wq, s, z), perm=[1, 0]))`` ->
      ``DequantizeMatMul(A, Wq, s, z, trans_b=1)``
    * ``Gemm(A, DequantizeLinear(Wq, s, z), C; transA=0, alpha=1, beta, transB)`` ->
      ``DequantizeMatMul(A, Wq, s, z, C, trans_b=transB, beta=beta)``
    * ``com.microsoft::FusedMatMul(A, DequantizeLinear(Wq, s, z); transB, alpha=1)`` (what the
      extended level makes of the Transpose form) -> ``DequantizeMatMul(A, Wq, s, z,
      trans_b=transB)``
    * ``Gather(DequantizeLinear(Wq, s, z), ids, axis=0)`` -> ``DequantizeGather(Wq, s, z, ids)``

    for a 2-D constant ``Wq`` that constant folding keeps narrow (``widens_constant``), with
    constant parameters; ``Cast(W16, to=float32)`` in place of the DequantizeLinear gives the
    same fused nodes without ``s`` and ``z``. Readers of other kinds keep the DequantizeLinear
    or Cast (computed per run); it is removed once no reader is left."""

    name = "fuse_dequantize_linear"

    def __new__(cls):
        # built on first use: the optimizer's base classes are imported lazily, as
        # CPUProvider.session_passes imports the optimizer
        return _fuse_dequantize_pass()()


def _fuse_dequantize_pass():
    global _FUSE_DQ_CLASS
    if _FUSE_DQ_CLASS is not None:
        return _FUSE_DQ_CLASS
    from pyonnx.ir import Graph, Model, Node
    from pyonnx.optimizer._core import GraphPass
    from pyonnx.optimizer._rewrite import (attr, constant_of, graph_inputs, insert_node,
                                           is_standard, make_attributes, protected_values)
    from pyonnx.ir import DataType
    from pyonnx.optimizer.passes.constant_folding import widens_constant

    def fused(op: str, inputs, outputs, name: str, attrs) -> Node:
        return Node(op, list(inputs), list(outputs), domain=_PRIVATE, name=name,
                    attributes=make_attributes(attrs))

    class _Pass(GraphPass):
        __doc__ = FuseDequantizeLinear.__doc__
        name = FuseDequantizeLinear.name

        def rewrite(self, graph: Graph, model: Model) -> bool:
            keep = protected_values(model)
            inputs = graph_inputs(model)
            modified = False
            for dq in list(graph.nodes):
                if dq.graph is not graph or dq.op_type not in ("DequantizeLinear", "Cast") or \
                        not is_standard(dq) or len(dq.outputs) != 1 or not dq.inputs:
                    continue
                cast = dq.op_type == "Cast"
                if cast:   # a widening to float32 (the fused kernels' type without a scale)
                    if int(attr(dq, "to", 0)) != int(DataType.FLOAT):
                        continue
                    ins = [dq.inputs[0], None, None]
                else:
                    ins = list(dq.inputs) + [None] * (3 - len(dq.inputs))
                q = constant_of(ins[0], inputs)
                if q is None or q.ndim != 2 or not widens_constant(dq, [q]):
                    continue
                if any(v is not None and constant_of(v, inputs) is None for v in ins[1:3]):
                    continue
                if not cast and attr(dq, "output_dtype", 0):
                    continue
                w = dq.outputs[0]
                if id(w) in keep:
                    continue
                dq_attrs = [] if cast else [("axis", int(attr(dq, "axis", 1)) % 2),
                                            ("block_size", int(attr(dq, "block_size", 0)))]
                for user, idx in list(w.uses):
                    if user.graph is not graph:
                        continue
                    if self._fuse_reader(graph, model, keep, dq, ins, dq_attrs, user, idx,
                                         fused):
                        modified = True
                if not w.uses:
                    graph.remove(dq)
                    modified = True
            if modified:
                model.opset_imports.setdefault(_PRIVATE, 1)
            return modified

        @staticmethod
        def _fuse_reader(graph, model, keep, dq, ins, dq_attrs, user, idx, make) -> bool:
            qsz = ins[:3]
            if user.domain == "com.microsoft" and user.op_type == "FusedMatMul" and idx == 1:
                # alpha * op(A) @ op(B), as the extended level fuses MatMul(A, Transpose(W))
                if float(attr(user, "alpha", 1.0)) != 1.0 or attr(user, "transA", 0) or \
                        attr(user, "transBatchA", 0) or attr(user, "transBatchB", 0):
                    return False
                node = make("DequantizeMatMul", [user.inputs[0], *qsz], user.outputs,
                            user.name, dq_attrs + [("trans_b", int(attr(user, "transB", 0)))])
                insert_node(graph, node, user)
                graph.remove(user)
                return True
            if not is_standard(user):
                return False
            if user.op_type == "MatMul" and idx == 1:
                node = make("DequantizeMatMul", [user.inputs[0], *qsz], user.outputs,
                            user.name, dq_attrs)
            elif user.op_type == "Gemm" and idx == 1:
                if attr(user, "transA", 0) or float(attr(user, "alpha", 1.0)) != 1.0:
                    return False
                c = user.inputs[2] if len(user.inputs) > 2 else None
                node = make("DequantizeMatMul", [user.inputs[0], *qsz, c], user.outputs,
                            user.name, dq_attrs + [("trans_b", int(attr(user, "transB", 0))),
                                                   ("beta", float(attr(user, "beta", 1.0)))])
            elif user.op_type == "Gather" and idx == 0 and int(attr(user, "axis", 0)) == 0:
                node = make("DequantizeGather", [*qsz, user.inputs[1]], user.outputs,
                            user.name, dq_attrs)
            elif user.op_type == "Transpose" and list(attr(user, "perm", []) or []) == [1, 0]:
                t = user.outputs[0]
                if id(t) in keep:
                    return False
                done = False
                for mm, j in list(t.uses):
                    if mm.graph is graph and is_standard(mm) and mm.op_type == "MatMul" \
                            and j == 1:
                        node = make("DequantizeMatMul", [mm.inputs[0], *qsz], mm.outputs,
                                    mm.name, dq_attrs + [("trans_b", 1)])
                        insert_node(graph, node, mm)
                        graph.remove(mm)
                        done = True
                if not t.uses:
                    graph.remove(user)
                return done
            else:
                return False
            insert_node(graph, node, user)
            graph.remove(user)
            return True

    _FUSE_DQ_CLASS = _Pass
    return _Pass


_FUSE_DQ_CLASS = None


# =================================================================================================
# Activation QuantizeLinear -> DequantizeLinear pairs
#
# A static QDQ model (quantize_static's QDQ format) quantizes every activation and dequantizes it
# again at once: QuantizeLinear(x, s, z) -> DequantizeLinear(q, s, z) -> Conv. Run as two nodes,
# the pair costs a float32 division, a rounding, a clip, a cast to 8 bits, a cast back and a
# multiplication, with three full-size buffers (about a fifth of a light CNN's QDQ run). Where
# the quantized value has no other reader, FuseQuantizeDequantize (below) replaces the pair with
# one QuantizeDequantize kernel of the session's private domain that computes the same float32
# values without the 8-bit buffer: in one compiled pass (jit/qdq_loops.py) or in five in-place
# NumPy passes over one fresh buffer.
# =================================================================================================

_QDQ_MIN_INT = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255)}


def _qdq_params(scale: np.ndarray, zero_point: np.ndarray | None
                ) -> tuple[np.float32, np.float32, np.float32, np.float32] | None:
    """(scale, zero point, lowest, highest quantized value) as float32 scalars, for a
    per-tensor float32 scale and an int8/uint8 zero point (absent: uint8 0); else None."""
    scale = np.asarray(scale)
    if scale.dtype != _F32 or scale.size != 1:
        return None
    if zero_point is None:
        zp_dt, z = np.dtype(np.uint8), 0
    else:
        zero_point = np.asarray(zero_point)
        if zero_point.size != 1 or zero_point.dtype not in _QDQ_MIN_INT:
            return None
        zp_dt, z = zero_point.dtype, int(zero_point.reshape(()))
    lo, hi = _QDQ_MIN_INT[zp_dt]
    return (np.float32(scale.reshape(())), np.float32(z), np.float32(lo), np.float32(hi))


def quantize_dequantize_numpy(x: np.ndarray, s: np.float32, z: np.float32, lo: np.float32,
                              hi: np.float32) -> np.ndarray:
    """DequantizeLinear(QuantizeLinear(x, s, z), s, z) for float32 ``x``, in NumPy.

    The pair computes ``q = clip(rint(x / s) + z, lo, hi)`` (a cast to 8 bits, exact for those
    integers) and ``y = (q - z) * s``, all in float32. Adding ``z``, clipping to ``[lo, hi]`` and
    subtracting ``z`` again is clipping to ``[lo - z, hi - z]`` (the integers in range are exact,
    and a sum out of range is clipped either way), so four passes over one fresh buffer do it:
    the division, the rounding, that clip and the multiplication; a fifth adds +0.0, which turns
    the -0.0 that ``rint`` gives a small negative ``x / s`` into the +0.0 that ``(z - z) * s``
    gives. NaN becomes the quantized value 0 (what the pair's cast to 8 bits gives for NaN on
    the platforms NumPy supports; C leaves it undefined), found by a sum, one read-only pass."""
    y = np.divide(x, s, dtype=_F32)
    y = np.asarray(y)
    np.rint(y, out=y)
    np.clip(y, lo - z, hi - z, out=y)
    np.multiply(y, s, out=y)
    np.add(y, np.float32(0.0), out=y)
    if y.size and np.isnan(np.add.reduce(y, axis=None)):
        np.copyto(y, (np.float32(0) - z) * s, where=np.isnan(y))
    return y


def _qdq_reference(x, scale, zero_point, q_attrs: dict, dq_attrs: dict) -> np.ndarray:
    q = _ref_quantization.quantize_linear(x, scale, zero_point, **q_attrs)[0]
    return _ref_quantization.dequantize_linear(q, scale, zero_point, **dq_attrs)[0]


def batch_norm_affine(scale, bias, mean, var, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """An inference BatchNormalization's per-channel ``(a, c)`` (``y = x * a + c``) as float32
    vectors, computed as the reference kernel computes them for a float32 input
    (ops/normalization.py: in float64, then cast), so ``x * a + c`` gives its values bit for
    bit. The fusion pass computes them once, when it joins the node."""
    s64, b64, m64, v64 = (np.asarray(p, np.float64).reshape(-1) for p in (scale, bias, mean, var))
    a = s64 / np.sqrt(v64 + epsilon)
    c = b64 - m64 * a
    return a.astype(_F32), c.astype(_F32)


def _affine_in_place(y: np.ndarray, a: np.ndarray, c: np.ndarray) -> None:
    """y = y * a + c per channel (axis 1; a 1-D ``y`` is one channel), in place, in float32."""
    yv = y.reshape(-1, 1) if y.ndim == 1 else y
    if yv.ndim < 2 or a.size != yv.shape[1] or c.size != yv.shape[1]:
        raise ExecutionError(f"BatchNormalization: scale must have C = "
                             f"{yv.shape[1] if yv.ndim > 1 else '?'} elements, got "
                             f"{a.size} (input shape {list(y.shape)})")
    shape = (1, yv.shape[1]) + (1,) * (yv.ndim - 2)
    np.multiply(yv, a.reshape(shape), out=yv)
    yv += c.reshape(shape)


@_ref_kernel("QuantizeDequantize", versions=(1,), domain=_PRIVATE)
def quantize_dequantize(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None = None,
                        bn_a: np.ndarray | None = None, bn_c: np.ndarray | None = None, *,
                        relu: int = 0) -> tuple[np.ndarray]:
    """DequantizeLinear(QuantizeLinear(x, scale, zero_point), scale, zero_point), bit for bit:
    round half to even, saturation to the zero point's type (int8 or uint8; uint8 when absent),
    the scale multiplied in float32. A per-tensor float32 scale and float32 ``x`` take the fused
    path (a compiled loop with the ``fast`` extra, else :func:`quantize_dequantize_numpy`);
    anything else runs the two reference kernels.

    With ``bn_a`` and ``bn_c`` (an inference BatchNormalization's per-channel factors, from
    :func:`batch_norm_affine`), the result then becomes ``y * a + c`` in place, what that
    BatchNormalization computes; ``relu`` 1 then applies Relu in place (the Relu kernel's
    ``np.clip(y, 0, inf)``)."""
    x = np.asarray(x)
    params = _qdq_params(scale, zero_point)
    if params is None or x.dtype != _F32:
        y = _qdq_reference(x, scale, zero_point, {}, {})
        if bn_a is not None:
            y = np.array(y, _F32)  # a float32 scale's DequantizeLinear gives float32
            _affine_in_place(y, np.asarray(bn_a, _F32), np.asarray(bn_c, _F32))
        if relu:
            y = _ref_activation.Relu(y)[0]
        return (y,)
    from pyonnx.backends.cpu import jit

    y = None
    if x.flags.c_contiguous:
        y = np.empty(x.shape, _F32)
        if bn_a is not None:
            # one pass for all of it where the factors fit the layout (else the checks below)
            bn_a, bn_c = np.asarray(bn_a, _F32), np.asarray(bn_c, _F32)
            ch = x.shape[1] if x.ndim > 1 else 1
            inner = int(np.prod(x.shape[2:], dtype=np.int64)) if x.ndim > 2 else 1
            if x.size and bn_a.size == ch and bn_c.size == ch and jit.call(
                    "qdq_loops.quantize_dequantize_affine", x.reshape(-1), y.reshape(-1),
                    *params, bn_a.reshape(-1), bn_c.reshape(-1), inner, int(bool(relu)),
                    elements=x.size):
                return (y,)
        if not jit.call("qdq_loops.quantize_dequantize", x.reshape(-1), y.reshape(-1), *params,
                        elements=x.size):
            y = None
    if y is None:
        y = quantize_dequantize_numpy(x, *params)
    if bn_a is not None:
        _affine_in_place(y, bn_a, bn_c)
    if relu:
        np.clip(y, np.float32(0), np.float32(np.inf), out=y)
    return (y,)


class FuseQuantizeDequantize:
    """The session pass that replaces ``DequantizeLinear(QuantizeLinear(x, s, z), s, z)`` with
    ``QuantizeDequantize(x, s, z)`` (see the section note) where

    * the quantized value is read by that DequantizeLinear only (not a graph output): a pair
      whose 8-bit value feeds another node as well stays as it is;
    * ``s`` and ``z`` are constants, the same values in both nodes (not necessarily the same
      initializer): a per-tensor float32 scale and an int8 or uint8 zero point (or none in
      both: uint8 0);
    * neither node sets an attribute that changes what it computes for such parameters
      (``output_dtype`` other than the zero point's / the scale's type, ``precision`` other
      than float32; ``axis``, ``block_size`` and ``saturate`` mean nothing for them).

    A pair applied again to values already on its grid is dropped: where the input of a fused
    pair is the output of ops that only move or copy elements (Reshape, Transpose, Concat,
    ...) whose data inputs all come from fused pairs with the same parameters (what
    onnxruntime's quantizer writes around such ops), the second pair would return its input
    unchanged, bit for bit (:func:`_idempotent_scale`).

    DequantizeLinear nodes of constants that stay (large weights) are moved to just before
    their first reader, so that each dequantized weight lives only while it is read.

    A QuantizeLinear whose other readers need its 8-bit value keeps its node; the pass then
    leaves its DequantizeLinear too (the fused kernel would compute the quantization twice).

    An inference BatchNormalization with constant parameters that alone reads the pair's
    result (what a QDQ model has where the quantizer did not fold it into its Conv: Conv ->
    QuantizeLinear -> DequantizeLinear -> BatchNormalization) joins the fused node as its
    per-channel factors (inputs 3 and 4, computed here once: :func:`batch_norm_affine`):
    applied in place on the kernel's fresh result, it costs no buffer and no node of its own;
    so does a Relu that alone reads that BatchNormalization (``relu`` 1)."""

    name = "fuse_quantize_dequantize"

    def __new__(cls):
        return _fuse_qdq_pass()()


#: ops whose output elements are input elements (moved, selected or copied), so a tensor on
#: a quantization grid stays on it
#: (not MaxPool: a window that covers only padding, possible with dilations or ceil_mode,
#: gives -inf, which is on no grid)
_GRID_KEEPING = frozenset({"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze",
                           "Identity", "Concat"})


def _idempotent_scale(scale: np.ndarray) -> bool:
    """Whether QuantizeDequantize with this per-tensor float32 scale returns its own results
    unchanged: a result is ``fl(k * s)`` for an integer ``|k| <= 255``, and ``fl(k * s) / s``
    is within ``|k| * 2^-22`` of ``k``, so it rounds back to ``k`` (then the same clip, the
    same product), as long as ``k * s`` is a normal float32 (no underflow, no overflow)."""
    s = float(np.asarray(scale, np.float32).reshape(()))
    return 1e-30 <= s <= 1e30


def _same_param(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.dtype == b.dtype and a.size == b.size == 1 and \
        a.reshape(-1).view(np.uint8).tobytes() == b.reshape(-1).view(np.uint8).tobytes()


def _fuse_qdq_pass():
    global _FUSE_QDQ_CLASS
    if _FUSE_QDQ_CLASS is not None:
        return _FUSE_QDQ_CLASS
    from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node
    from pyonnx.ir.dtypes import DataType
    from pyonnx.optimizer._core import GraphPass
    from pyonnx.optimizer._rewrite import (attr, constant_of, graph_inputs,
                                           inference_batch_norm, insert_node, is_standard,
                                           new_initializer, protected_values, unique_name)

    f32 = int(DataType.FLOAT)

    def params_of(node: Node, inputs: set[int]):
        """(scale, zero point) constants of a Q/DQ node, or None where one is not constant."""
        ins = list(node.inputs) + [None] * (3 - len(node.inputs))
        s = constant_of(ins[1], inputs)
        if s is None:
            return None
        z = None
        if ins[2] is not None:
            z = constant_of(ins[2], inputs)
            if z is None:
                return None
        return s, z

    class _Pass(GraphPass):
        __doc__ = FuseQuantizeDequantize.__doc__
        name = FuseQuantizeDequantize.name

        def rewrite(self, graph: Graph, model: Model) -> bool:
            keep = protected_values(model)
            inputs = graph_inputs(model)
            modified = False
            for q in list(graph.nodes):
                if q.graph is not graph or q.op_type != "QuantizeLinear" or \
                        not is_standard(q) or len(q.outputs) != 1 or not q.inputs:
                    continue
                qv = q.outputs[0]
                if id(qv) in keep or len(qv.uses) != 1:
                    continue
                dq, idx = next(iter(qv.uses))
                if dq.graph is not graph or dq.op_type != "DequantizeLinear" or idx != 0 or \
                        not is_standard(dq) or len(dq.outputs) != 1:
                    continue
                qp, dqp = params_of(q, inputs), params_of(dq, inputs)
                if qp is None or dqp is None or not _same_param(qp[0], dqp[0]) or \
                        not _same_param(qp[1], dqp[1]) or _qdq_params(*qp) is None:
                    continue
                z = qp[1]
                z_code = int(DataType.from_numpy(z.dtype if z is not None else np.uint8))
                if int(attr(q, "output_dtype", 0)) not in (0, z_code) or \
                        int(attr(q, "precision", 0)) not in (0, f32) or \
                        int(attr(dq, "output_dtype", 0)) not in (0, f32):
                    continue
                node = Node("QuantizeDequantize", [q.inputs[0], *dq.inputs[1:3]],
                            list(dq.outputs), domain=_PRIVATE, name=dq.name or q.name)
                insert_node(graph, node, dq)
                graph.remove(dq)
                graph.remove(q)
                modified = True
            for node in list(graph.nodes):
                if node.graph is graph and node.domain == _PRIVATE and \
                        node.op_type == "QuantizeDequantize" and len(node.inputs) <= 3:
                    if self._drop_requantization(graph, node, keep, inputs) or \
                            self._take_batch_norm(graph, model, node, keep, inputs):
                        modified = True
            if modified:
                model.opset_imports.setdefault(_PRIVATE, 1)
            return self._schedule_weights(graph) or modified

        @staticmethod
        def _schedule_weights(graph: Graph) -> bool:
            """Move each DequantizeLinear of constants (a weight kept quantized) to just before
            its first reader: the plan runs nodes in graph order and frees a value after its
            last reader, so a dequantized weight then lives for its reader only, not from the
            start of the run (onnxruntime's quantizer writes them all first)."""
            moved = False
            order = {id(n): i for i, n in enumerate(graph.nodes)}
            for dq in list(graph.nodes):
                if dq.op_type != "DequantizeLinear" or not is_standard(dq) or \
                        len(dq.outputs) != 1 or not dq.outputs[0].uses or \
                        any(v is not None and v.producer is not None for v in dq.inputs):
                    continue
                readers = [u for u, _ in dq.outputs[0].uses]
                if any(u.graph is not graph for u in readers):
                    continue
                first = min(readers, key=lambda u: order[id(u)])
                if order[id(first)] == order[id(dq)] + 1:
                    continue
                graph.nodes.remove(dq)
                graph.insert_before(dq, first)
                order = {id(n): i for i, n in enumerate(graph.nodes)}
                moved = True
            return moved

        @staticmethod
        def _drop_requantization(graph: Graph, node: Node, keep: set[int], inputs: set[int]
                                 ) -> bool:
            """Remove ``node`` where its input is already on its grid: the output of ops that
            only move or select elements (_GRID_KEEPING) whose data inputs all come from
            QuantizeDequantize nodes with the same parameters (see _idempotent_scale)."""
            x, y = node.inputs[0], node.outputs[0]
            src = x.producer
            if id(y) in keep or src is None or src.graph is not graph or not is_standard(src) \
                    or src.op_type not in _GRID_KEEPING:
                return False
            data = src.inputs if src.op_type == "Concat" else src.inputs[:1]
            mine = params_of(node, inputs)
            if mine is None or not _idempotent_scale(mine[0]):
                return False
            for v in data:
                p = v.producer if v is not None else None
                if p is None or p.domain != _PRIVATE or p.op_type != "QuantizeDequantize" or \
                        len(p.inputs) > 3:
                    return False
                theirs = params_of(p, inputs)
                if theirs is None or not _same_param(mine[0], theirs[0]) or \
                        not _same_param(mine[1], theirs[1]):
                    return False
            for user, idx in list(y.uses):
                user.set_input(idx, x)
            graph.remove(node)
            return True

        @staticmethod
        def _take_batch_norm(graph: Graph, model: Model, node: Node, keep: set[int],
                             inputs: set[int]) -> bool:
            y = node.outputs[0]
            if id(y) in keep or len(y.uses) != 1:
                return False
            bn, idx = next(iter(y.uses))
            if bn.graph is not graph or bn.op_type != "BatchNormalization" or idx != 0 or \
                    not is_standard(bn) or not inference_batch_norm(bn):
                return False
            params = [constant_of(v, inputs) for v in bn.inputs[1:5]]
            if any(p is None or p.dtype.kind != "f" for p in params):
                return False
            ins = list(node.inputs) + [None] * (3 - len(node.inputs))
            a, c = batch_norm_affine(*params, float(attr(bn, "epsilon", 1e-5)))
            if a.size != c.size:
                return False
            base = bn.name or node.name or "bn"
            ins += [new_initializer(graph, unique_name(model, base + "_qdq_a"), a),
                    new_initializer(graph, unique_name(model, base + "_qdq_c"), c)]
            attrs = []
            last, out = bn, bn.outputs[0]
            relu = next(iter(out.uses))[0] if len(out.uses) == 1 else None
            if relu is not None and id(out) not in keep and relu.graph is graph and \
                    relu.op_type == "Relu" and is_standard(relu):
                attrs.append(Attribute("relu", AttributeType.INT, 1))
                last, out = relu, relu.outputs[0]
            fused = Node("QuantizeDequantize", ins, [out],
                         domain=_PRIVATE, name=node.name, attributes=attrs)
            insert_node(graph, fused, last)
            for n in (last, bn, node):
                if n.graph is graph:
                    graph.remove(n)
            return True

    _FUSE_QDQ_CLASS = _Pass
    return _Pass


_FUSE_QDQ_CLASS = None
