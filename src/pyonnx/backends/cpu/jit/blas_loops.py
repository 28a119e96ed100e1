"""A large matrix product shared with the intra-op pool's threads inside one compiled loop,
each piece a call of BLAS's own ``cblas_sgemm`` (NumPy's OpenBLAS), without the GIL.

:func:`pyonnx.backends.cpu.gemm.matmul2d` cuts a large product into blocks of output columns
(or rows). With :func:`~pyonnx.backends.cpu.threads.parallel_for` each block is a Python call
of ``np.matmul`` that a pool thread must take the GIL for, from the caller, which holds it until
its own block's BLAS call releases it: a hand-off through the kernel's futex, 20-30 µs on the
development VM, and the pool thread starts its block that much later. Here the caller and the
pool's threads claim the blocks inside this loop, as the other shared loops do
(:mod:`~pyonnx.backends.cpu.jit.sync_loops`), and call BLAS through its function pointer
(:func:`pyonnx.backends.cpu.gemm.blas_sgemm`: the 64-bit-integer ``cblas_sgemm`` that NumPy's
OpenBLAS exports). BLAS runs on one thread per call (:mod:`~pyonnx.backends.cpu.threads` sets
it so), and each block is the same BLAS call that ``np.matmul`` makes on that block, so the
result equals the ``parallel_for`` split's for the same blocks.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from pyonnx.backends.cpu.jit.sync_loops import announce, fetch_add, watch
from pyonnx.backends.cpu.jit.vector_ir import array_data

#: cblas enum values: row-major storage, no transpose
_ROW_MAJOR, _NO_TRANS = 101, 111


@intrinsic
def _sgemm(typingctx, fn, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc):
    """``c[c_off:] = a[a_off:] @ b[b_off:]`` for row-major float32 blocks (m x k times k x n
    with leading dimensions lda, ldb, ldc) by the ``cblas_sgemm`` (64-bit integers) at
    address ``fn``."""
    sig = types.void(fn, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc)

    def codegen(context, builder, sig, args):
        fn_, m_, n_, k_, a_, ao, lda_, b_, bo, ldb_, c_, co, ldc_ = args
        i32, i64, f32 = ir.IntType(32), ir.IntType(64), ir.FloatType()
        p = f32.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(),
                               [i32, i32, i32, i64, i64, i64, f32, p, i64, p, i64, f32, p, i64])
        call = builder.inttoptr(fn_, fnty.as_pointer())
        ad = builder.gep(array_data(context, builder, sig.args[4], a_), [ao])
        bd = builder.gep(array_data(context, builder, sig.args[7], b_), [bo])
        cd = builder.gep(array_data(context, builder, sig.args[10], c_), [co])
        builder.call(call, [ir.Constant(i32, _ROW_MAJOR), ir.Constant(i32, _NO_TRANS),
                            ir.Constant(i32, _NO_TRANS), m_, n_, k_, ir.Constant(f32, 1.0),
                            ad, lda_, bd, ldb_, ir.Constant(f32, 0.0), cd, ldc_])
        return context.get_dummy_value()

    return sig, codegen


def sgemm_claimed(fn: int, a: np.ndarray, b: np.ndarray, c: np.ndarray, by_cols: int,
                  counter: np.ndarray, parts: int, sync: np.ndarray, role: int,
                  seen: int) -> None:
    """``c = a @ b`` for float32 matrices a [M, K], b [K, N] and c [M, N] whose rows are
    contiguous (any row strides), in ``parts`` blocks of c's columns (``by_cols``) or rows that
    the threads running this loop claim through ``counter`` (int64 [2], zeros: blocks claimed,
    blocks finished); block p covers [size * p // parts, size * (p + 1) // parts). Each block
    is one call of the ``cblas_sgemm`` at address ``fn``. ``sync``, ``role`` and ``seen``: the
    hand-off of :mod:`~pyonnx.backends.cpu.jit.sync_loops`."""
    m, k = a.shape
    n = b.shape[1]
    lda, ldb, ldc = a.strides[0] // 4, b.strides[0] // 4, c.strides[0] // 4
    size = n if by_cols else m
    announce(sync, role)
    while True:
        p = fetch_add(counter, 0, 1)
        if p >= parts:
            break
        s = size * p // parts
        e = size * (p + 1) // parts
        if by_cols:
            _sgemm(fn, m, e - s, k, a, np.int64(0), lda, b, s, ldb, c, s, ldc)
        else:
            _sgemm(fn, e - s, n, k, a, s * lda, lda, b, np.int64(0), ldb, c, s * ldc, ldc)
        fetch_add(counter, 1, 1)
    watch(sync, role, seen)
