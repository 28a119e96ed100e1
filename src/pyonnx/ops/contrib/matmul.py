"""Contrib matrix products: FusedMatMul, MatMulNBits, MatMulIntegerToFloat,
DynamicQuantizeMatMul and QGemm (com.microsoft).

Integer products are exact (int64 accumulation, which cannot overflow for 8-bit operands at any
realistic K); the float scaling then follows onnxruntime: the product times
``a_scale * b_scale`` in float32.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ops._common import compute_dtype
from pyonnx.ops._elementwise import FLOAT_TYPES, LOW_PRECISION, check_dtype
from pyonnx.ops.linalg import matmul as _onnx_matmul
from pyonnx.ops.quantization import dynamic_quantize_linear
from pyonnx.ops.registry import KernelContext, kernel

MS = "com.microsoft"
_INT8 = (np.dtype(np.int8), np.dtype(np.uint8))


def _fused_perm(rank: int, trans: int, trans_batch: int) -> list[int] | None:
    """The axes permutation FusedMatMul applies to an operand (None: unchanged)."""
    perm = list(range(rank))
    if trans_batch and rank > 2:
        # (d0, d1, ..., d[r-2], d[r-1]) -> (d1, ..., d[r-2], d0, d[r-1]): the first dimension
        # becomes the matrix rows and the batch dimensions move to the front.
        perm = list(range(1, rank - 1)) + [0, rank - 1]
    if trans and rank >= 2:
        perm[-1], perm[-2] = perm[-2], perm[-1]
    return None if perm == list(range(rank)) else perm


@kernel("FusedMatMul", versions=(1,), domain=MS)
def fused_matmul(A: np.ndarray, B: np.ndarray, *, alpha: float = 1.0, transA: int = 0,
                 transB: int = 0, transBatchA: int = 0, transBatchB: int = 0,
                 ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Y = alpha * op(A) @ op(B), op transposing the last two axes (transA/B) and/or moving
    the first axis behind the batch axes (transBatchA/B), NumPy matmul broadcasting."""
    check_dtype("FusedMatMul", A, FLOAT_TYPES, "A")
    if B.dtype != A.dtype:
        raise ExecutionError(f"FusedMatMul: B has element type {B.dtype}, A has {A.dtype}")
    pa = _fused_perm(A.ndim, transA, transBatchA)
    pb = _fused_perm(B.ndim, transB, transBatchB)
    a = A.transpose(pa) if pa else A
    b = B.transpose(pb) if pb else B
    (y,) = _onnx_matmul(a, b, ctx=ctx)
    if alpha != 1.0:
        if y.dtype in LOW_PRECISION:
            y = (y.astype(np.float32) * np.float32(alpha)).astype(A.dtype)
        else:
            y = y * y.dtype.type(alpha)
    return (y,)


def _unpack_bits(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Little-end-first unpacking of ``bits``-wide unsigned values along the last axis."""
    if bits == 8:
        return packed[..., :count]
    per = 8 // bits
    shifts = (np.arange(per, dtype=np.uint8) * bits)
    vals = (packed[..., None] >> shifts) & np.uint8((1 << bits) - 1)
    return vals.reshape(packed.shape[:-1] + (packed.shape[-1] * per,))[..., :count]


@kernel("MatMulNBits", versions=(1,), domain=MS)
def matmul_nbits(A: np.ndarray, B: np.ndarray, scales: np.ndarray,
                 zero_points: np.ndarray | None = None, g_idx: np.ndarray | None = None,
                 bias: np.ndarray | None = None, *, K: int, N: int, block_size: int,
                 bits: int = 4, accuracy_level: int = 0, weight_prepacked: int = 0,
                 ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Y = A @ W^T (+ bias) with W (N, K) dequantized from blocks of ``bits``-bit values along K:
    W[n, k] = (q[n, k] - zero_point[n, k // block_size]) * scales[n, k // block_size].

    Computed in float32 whatever ``accuracy_level`` asks (a lower accuracy is a speed hint).
    """
    op = "MatMulNBits"
    check_dtype(op, A, FLOAT_TYPES, "A")
    if weight_prepacked:
        raise UnsupportedOperatorError(f"{op}: weight_prepacked={weight_prepacked} (a GPU layout) "
                                       f"is not supported")
    if bits not in (2, 4, 8):
        raise UnsupportedOperatorError(f"{op}: bits={bits} is not supported (2, 4 or 8)")
    if block_size < 16 or block_size & (block_size - 1):
        raise ExecutionError(f"{op}: block_size must be a power of two >= 16, got {block_size}")
    if A.ndim < 1 or A.shape[-1] != K:
        raise ExecutionError(f"{op}: A's last dimension must be K={K}, got shape {A.shape}")
    k_blocks = -(-K // block_size)
    blob = block_size * bits // 8
    out_shape = A.shape[:-1] + (N,)
    cdt = compute_dtype(A.dtype)
    if B.size == 0:
        # An omitted projection: zeros, or the bias broadcast.
        y = np.zeros(out_shape, cdt)
        if bias is not None:
            y += bias.astype(cdt)
        return (y.astype(A.dtype, copy=False),)
    if B.dtype != np.uint8 or B.shape != (N, k_blocks, blob):
        raise ExecutionError(f"{op}: B must be uint8 of shape (N {N}, k_blocks {k_blocks}, "
                             f"blob_size {blob}), got {B.dtype} {B.shape}")
    if scales.size != N * k_blocks:
        raise ExecutionError(f"{op}: scales must have N * k_blocks = {N * k_blocks} elements "
                             f"(N, k_blocks), got shape {scales.shape}")
    sc = scales.reshape(N, k_blocks).astype(cdt)
    q = _unpack_bits(B, bits, block_size).reshape(N, k_blocks * block_size)[:, :K]
    if zero_points is None:
        zp = np.full((N, k_blocks), float(1 << (bits - 1)), cdt)
    elif zero_points.dtype == np.uint8:
        zbytes = -(-k_blocks * bits // 8)
        if zero_points.size != N * zbytes:
            raise ExecutionError(f"{op}: packed zero_points must be (N {N}, {zbytes}) bytes, got "
                                 f"shape {zero_points.shape}")
        zp = _unpack_bits(zero_points.reshape(N, zbytes), bits, k_blocks).astype(cdt)
    else:
        if zero_points.size != N * k_blocks:
            raise ExecutionError(f"{op}: unpacked zero_points must be (N {N}, k_blocks "
                                 f"{k_blocks}), got shape {zero_points.shape}")
        zp = zero_points.reshape(N, k_blocks).astype(cdt)
    if g_idx is not None:
        gi = np.asarray(g_idx).reshape(-1).astype(np.int64)
        if gi.shape != (K,) or (gi.size and (gi.min() < 0 or gi.max() >= k_blocks)):
            raise ExecutionError(f"{op}: g_idx must hold K={K} block indices in [0, {k_blocks})")
    else:
        gi = np.arange(K) // block_size
    w = (q.astype(cdt) - zp[:, gi]) * sc[:, gi]  # (N, K)
    y = A.astype(cdt, copy=False) @ w.T
    if bias is not None:
        if bias.shape != (N,):
            raise ExecutionError(f"{op}: bias must have shape ({N},), got {bias.shape}")
        y += bias.astype(cdt)
    return (y.astype(A.dtype, copy=False),)


def _scalar(p: np.ndarray, what: str, op: str) -> np.ndarray:
    p = np.asarray(p)
    if p.size != 1 or p.ndim > 1:
        raise UnsupportedOperatorError(f"{op}: {what} must be a scalar (per-tensor), got shape "
                                       f"{p.shape}")
    return p.reshape(())


def _per_column(p: np.ndarray | None, n: int, what: str, op: str) -> np.ndarray | None:
    """A scalar or an (N) vector, as something that broadcasts over (..., N)."""
    if p is None:
        return None
    p = np.asarray(p)
    if p.size == 1 and p.ndim <= 1:
        return p.reshape(())
    if p.ndim == 1 and p.shape[0] == n:
        return p
    raise ExecutionError(f"{op}: {what} must be a scalar or 1-D with one value per column of B "
                         f"({n}), got shape {p.shape}")


def _int_matmul(op: str, a: np.ndarray, a_zp: np.ndarray | None, b: np.ndarray,
                b_zp: np.ndarray | None) -> np.ndarray:
    """(a - a_zp) @ (b - b_zp) exactly, in int64 (b_zp scalar or per column)."""
    if a.dtype not in _INT8 or b.dtype not in _INT8:
        raise ExecutionError(f"{op}: A and B must be int8 or uint8, got {a.dtype} and {b.dtype}")
    if b.ndim < 2:
        raise ExecutionError(f"{op}: B must be at least 2-D, got shape {b.shape}")
    ai = a.astype(np.int64)
    if a_zp is not None:
        if a_zp.dtype != a.dtype:
            raise ExecutionError(f"{op}: a_zero_point is {a_zp.dtype}, A is {a.dtype}")
        ai -= _scalar(a_zp, "a_zero_point", op).astype(np.int64)
    bi = b.astype(np.int64)
    if b_zp is not None:
        if b_zp.dtype != b.dtype:
            raise ExecutionError(f"{op}: b_zero_point is {b_zp.dtype}, B is {b.dtype}")
        bi -= _per_column(b_zp, b.shape[-1], "b_zero_point", op).astype(np.int64)
    if ai.ndim >= 1 and ai.shape[-1] != bi.shape[-2]:
        raise ExecutionError(f"{op}: A {a.shape} and B {b.shape} cannot be multiplied")
    # float64 matmul is exact for these magnitudes (|acc| < 2^53) and uses BLAS.
    return np.matmul(ai.astype(np.float64), bi.astype(np.float64))


def _bias(y: np.ndarray, bias: np.ndarray | None, n: int, op: str) -> np.ndarray:
    if bias is not None:
        if bias.shape != (n,):
            raise ExecutionError(f"{op}: bias must have shape ({n},), got {bias.shape}")
        y += bias.astype(y.dtype)
    return y


def _saturate(v: np.ndarray, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(v, info.min, info.max).astype(dtype)


def integer_matmul_kernels(int_matmul: Callable[..., np.ndarray]
                           ) -> dict[str, Callable[..., tuple]]:
    """MatMulIntegerToFloat, DynamicQuantizeMatMul and QGemm (by op_type) with their exact integer
    accumulator from ``int_matmul(op, a, a_zp, b, b_zp)`` (as :func:`_int_matmul`): the reference
    passes its own (int64), the CPU provider its float32-GEMM route. Checks, scaling and
    requantization are shared."""

    def matmul_integer_to_float(A: np.ndarray, B: np.ndarray, a_scale: np.ndarray,
                                b_scale: np.ndarray, a_zero_point: np.ndarray | None = None,
                                b_zero_point: np.ndarray | None = None,
                                bias: np.ndarray | None = None) -> tuple[np.ndarray]:
        """Y = ((A - a_zero_point) @ (B - b_zero_point)) * (a_scale * b_scale) + bias, in the scales'
        float type; a's parameters per tensor, b's per tensor or per column."""
        op = "MatMulIntegerToFloat"
        check_dtype(op, np.asarray(a_scale), FLOAT_TYPES, "a_scale")
        acc = int_matmul(op, A, a_zero_point, B, b_zero_point)
        n = B.shape[-1]
        mult = _scalar(a_scale, "a_scale", op).astype(np.float32) * \
            _per_column(b_scale, n, "b_scale", op).astype(np.float32)
        y = acc.astype(np.float32) * mult
        y = _bias(y, bias, n, op)
        return (y.astype(np.asarray(a_scale).dtype, copy=False),)


    def dynamic_quantize_matmul(A: np.ndarray, B: np.ndarray, b_scale: np.ndarray,
                                b_zero_point: np.ndarray | None = None,
                                bias: np.ndarray | None = None) -> tuple[np.ndarray]:
        """Quantize float A to uint8 from its range (as DynamicQuantizeLinear), then
        Y = ((Aq - a_zp) @ (B - b_zero_point)) * (a_scale * b_scale) + bias."""
        op = "DynamicQuantizeMatMul"
        if A.dtype != np.float32:
            raise ExecutionError(f"{op}: A must be float32, got {A.dtype}")
        aq, a_scale, a_zp = dynamic_quantize_linear(A)
        acc = int_matmul(op, aq, a_zp, B, b_zero_point)
        n = B.shape[-1]
        y = acc.astype(np.float32) * (a_scale * _per_column(b_scale, n, "b_scale", op)
                                      .astype(np.float32))
        return (_bias(y, bias, n, op),)


    def qgemm(A: np.ndarray, a_scale: np.ndarray, a_zero_point: np.ndarray, B: np.ndarray,
              b_scale: np.ndarray, b_zero_point: np.ndarray, C: np.ndarray | None = None,
              y_scale: np.ndarray | None = None, y_zero_point: np.ndarray | None = None, *,
              alpha: float = 1.0, transA: int = 0, transB: int = 0) -> tuple[np.ndarray]:
        """Quantized Gemm: acc = (op(A) - a_zp) @ (op(B) - b_zp) + C (int32, scale
        alpha * a_scale * b_scale); Y = acc * alpha * a_scale * b_scale as float, or requantized
        with y_scale / y_zero_point (round half to even, saturated) when y_scale is given."""
        op = "QGemm"
        if A.ndim != 2 or B.ndim != 2:
            raise ExecutionError(f"{op}: A and B must be 2-D, got {A.shape} and {B.shape}")
        a = A.T if transA else A
        b = B.T if transB else B
        if a.shape[1] != b.shape[0]:
            raise ExecutionError(f"{op}: op(A) {a.shape} and op(B) {b.shape} cannot be multiplied")
        acc = int_matmul(op, a, a_zero_point, b, b_zero_point)
        n = b.shape[1]
        if C is not None:
            if C.dtype != np.int32:
                raise ExecutionError(f"{op}: C must be int32, got {C.dtype}")
            try:
                fits = np.broadcast_shapes(C.shape, acc.shape) == acc.shape
            except ValueError:
                fits = False
            if not fits:
                raise ExecutionError(f"{op}: C of shape {C.shape} does not broadcast to {acc.shape}")
            acc = acc + C.astype(np.float64)
        mult = np.float32(alpha) * _scalar(a_scale, "a_scale", op).astype(np.float32) * \
            _per_column(b_scale, n, "b_scale", op).astype(np.float32)
        if y_scale is None:
            return (acc.astype(np.float32) * mult,)
        ys = _scalar(y_scale, "y_scale", op).astype(np.float32)
        if y_zero_point is not None:
            zp = _scalar(y_zero_point, "y_zero_point", op)
            out_dt = zp.dtype
        else:
            zp, out_dt = np.zeros((), np.uint8), np.dtype(np.uint8)
        y = np.rint(acc.astype(np.float32) * (mult / ys)) + np.float32(zp)
        return (_saturate(y, out_dt),)

    return {"MatMulIntegerToFloat": matmul_integer_to_float,
            "DynamicQuantizeMatMul": dynamic_quantize_matmul, "QGemm": qgemm}


_INTEGER_MATMULS = integer_matmul_kernels(_int_matmul)
matmul_integer_to_float = kernel("MatMulIntegerToFloat", versions=(1,), domain=MS)(
    _INTEGER_MATMULS["MatMulIntegerToFloat"])
dynamic_quantize_matmul = kernel("DynamicQuantizeMatMul", versions=(1,), domain=MS)(
    _INTEGER_MATMULS["DynamicQuantizeMatMul"])
qgemm = kernel("QGemm", versions=(1,), domain=MS)(_INTEGER_MATMULS["QGemm"])
