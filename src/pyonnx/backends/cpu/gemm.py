"""Matrix products on the CPU provider, split over the intra-op threads.

BLAS runs with one thread in a pyonnx process that uses the intra-op pool
(:mod:`pyonnx.backends.cpu.threads`): its own threads take fixed shares of each product, so on a
machine whose cores are busy with other work a product waits for its slowest share (measured on
the 2-core dev VM under load: DistilBERT 3.0 s per run with two BLAS threads, 0.34 s with one).
Instead a large product is cut here into blocks of output rows (or, when there are fewer rows
than columns, of columns; or of matrices of a stack), each one single-threaded BLAS call into its slice of
the output, claimed dynamically by the caller and the pool's threads. With the compiled loops
(the ``fast`` extra) a float32 product's blocks are claimed inside one loop that calls BLAS's
``cblas_sgemm`` itself (``jit/blas_loops.py``), so no thread waits for the GIL to start its
block: a chain of T5-small's 36 projections (128 tokens), 8 interleaved rounds of one process
each, medians per round 34-45 ms against 40-47 with ``parallel_for`` (onnxruntime 30-33).

A block may take another of BLAS's kernels than the unsplit product would (OpenBLAS has its
own kernels for small matrices), which sums over K in another order: the result is within a few
roundings of the unsplit product's. The blocks depend only on the shapes and the thread budget,
so a session gives the same results run after run; blocks keep at least two rows or columns so
that NumPy never switches to its matrix-vector path for one.
"""

from __future__ import annotations

import numpy as np

from pyonnx.backends.cpu import jit, threads
from pyonnx.backends.cpu.registry import fast_kernel
from pyonnx.ops import linalg as ref
from pyonnx.ops._common import as_matrix, check_alloc
from pyonnx.ops.registry import KernelContext

__all__ = ["gemm", "matmul2d", "matmul_stack"]

#: Multiply-adds a block should have at least (about 0.2-0.4 ms of one core). Handing a block to
#: another thread costs 10-30 µs on an idle machine but up to a scheduler time slice on a busy
#: one (measured on the 2-core dev VM under load: a 3.6M multiply-add 1x1 convolution took
#: 0.70 ms split in two, 0.15 ms whole), so only products of 16M multiply-adds and more split.
MIN_BLOCK_MACS = 1 << 23
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _blocks(count: int, macs_per_item: int) -> int:
    """Items per block so that a block has at least MIN_BLOCK_MACS multiply-adds (and 2 items)."""
    return max(2, -(-MIN_BLOCK_MACS // max(1, macs_per_item)))


def matmul2d(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for matrices a [M, K] and b [K, N] of one float type, split over the intra-op
    threads when large (rows of a, or columns of b when M is small); into ``out`` [M, N] when
    given (any view BLAS can write, e.g. a band of a larger output)."""
    m, k = a.shape
    n = b.shape[1]
    if out is None:
        out = np.empty((m, n), np.result_type(a, b))
    if threads.budget() < 2 or m * n * k < 2 * MIN_BLOCK_MACS:
        return np.matmul(a, b, out=out)
    rows = _blocks(m, n * k)
    cols = _blocks(n, m * k)
    by_rows = m >= 2 * rows
    by_cols = n >= 2 * cols and m >= 2
    # Each block reads all of the operand that it does not split: by rows, every block reads
    # b (K x N); by columns, every block reads a (M x K). With fewer rows than columns (a
    # transformer's projections of a short sequence: 49 x 768 @ 768 x 3072), splitting the
    # columns reads less (measured there: 4.4 ms of CPU time split by columns, 5.0 by rows,
    # 3.9 unsplit).
    if by_cols and (m < n or not by_rows):
        if not _shared_product(a, b, out, True, n // cols):
            threads.parallel_for(n, lambda s, e: np.matmul(a, b[:, s:e], out=out[:, s:e]),
                                 min_per_part=cols)
        return out
    if by_rows:
        if not _shared_product(a, b, out, False, m // rows):
            threads.parallel_for(m, lambda s, e: np.matmul(a[s:e], b, out=out[s:e]),
                                 min_per_part=rows)
        return out
    return np.matmul(a, b, out=out)


def _shared_product(a: np.ndarray, b: np.ndarray, out: np.ndarray, by_cols: bool,
                    blocks: int) -> bool:
    """``out = a @ b`` in up to ``blocks`` blocks of columns (``by_cols``) or rows, claimed by
    the caller and the pool's idle threads inside the compiled loop
    ``blas_loops.sgemm_claimed``, each block one call of BLAS's ``cblas_sgemm``
    (:func:`blas_sgemm`): no GIL to hand over between the threads. float32 operands whose
    rows are contiguous; False (nothing done) where the loop does not run: the caller then
    splits with ``parallel_for``."""
    if not (a.dtype == b.dtype == out.dtype == np.float32 and jit.available()):
        return False
    # BLAS's layout: contiguous rows, a leading dimension of at least a row (no broadcast or
    # overlapping rows), and an output apart from the operands (np.matmul copies where they
    # overlap; BLAS would read what it has written)
    if any(x.strides[1] != 4 or x.strides[0] % 4 or x.strides[0] < 4 * x.shape[1]
           for x in (a, b, out)):
        return False
    if np.may_share_memory(out, a) or np.may_share_memory(out, b):
        return False
    fn = blas_sgemm()
    if fn is None:
        return False
    parts = max(2, min(threads.MAX_PIECES, 2 * threads.share(), blocks))
    return threads.shared_loop("blas_loops.sgemm_claimed",
                               (fn, a, b, out, int(by_cols), np.zeros(2, np.int64), parts),
                               parts, elements=out.size)


_sgemm_address: int | None | bool = False  # False: not looked up yet


def blas_sgemm() -> int | None:
    """The address of the ``cblas_sgemm`` of NumPy's OpenBLAS with 64-bit integers
    (``scipy_cblas_sgemm64_`` in NumPy's wheels, or ``cblas_sgemm64_``), which
    ``jit/blas_loops.py`` calls; looked up once. None where the process's OpenBLAS exports
    neither (another BLAS, or one with 32-bit integers): products then split with
    ``parallel_for``."""
    global _sgemm_address
    if _sgemm_address is False:
        _sgemm_address = _find_sgemm()
    return _sgemm_address  # type: ignore[return-value]


def _find_sgemm() -> int | None:
    import ctypes

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    libs = [i["filepath"] for i in threadpool_info() if i.get("internal_api") == "openblas"]
    # NumPy's own first: the library np.matmul calls
    libs.sort(key=lambda path: "numpy" not in path)
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_cblas_sgemm64_", "cblas_sgemm64_"):
            fn = getattr(lib, name, None)
            if fn is not None:
                return ctypes.cast(fn, ctypes.c_void_p).value
    return None


def matmul_stack(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul(a, b)`` for stacks a [..., M, K] and b [..., K, N] with equal batch shapes,
    the stack's matrices split over the intra-op threads when large."""
    out = np.empty(a.shape[:-1] + (b.shape[-1],), np.result_type(a, b))
    batch = int(np.prod(a.shape[:-2], dtype=np.int64))
    m, k = a.shape[-2:]
    n = b.shape[-1]
    if threads.budget() < 2 or batch < 2 or batch * m * n * k < 2 * MIN_BLOCK_MACS:
        return np.matmul(a, b, out=out)
    a3 = a.reshape((batch, m, k))
    b3 = b.reshape((batch, k, n))
    o3 = out.reshape((batch, m, n))  # a view: out is C-contiguous
    threads.parallel_for(batch, lambda s, e: np.matmul(a3[s:e], b3[s:e], out=o3[s:e]),
                         min_per_part=max(1, -(-MIN_BLOCK_MACS // max(1, m * n * k))))
    return out


@fast_kernel("MatMul", versions=(1, 9, 13))
def matmul(A: np.ndarray, B: np.ndarray, *, ctx: KernelContext | None = None
           ) -> tuple[np.ndarray]:
    """MatMul with large float32/float64 products split over the intra-op threads: a stack
    times a matrix (the projections of a transformer) as one split GEMM, a stack times a stack
    of the same batch shape (attention) split by matrices; everything else (and a budget of
    one thread) is the reference kernel."""
    if (threads.budget() < 2 or A.dtype != B.dtype or A.dtype not in _FLOATS
            or A.ndim < 2 or B.ndim < 2):
        return ref.matmul(A, B, ctx=ctx)
    shape = ref._matmul_shape(A.shape, B.shape, "MatMul")
    if ctx is not None:
        check_alloc(shape, A.dtype, ctx.max_tensor_bytes, "MatMul output")
    if B.ndim == 2 and A.flags.c_contiguous:
        return (matmul2d(as_matrix(A, A.ndim - 1), B).reshape(shape),)
    if A.shape[:-2] == B.shape[:-2] and A.flags.c_contiguous and B.flags.c_contiguous:
        return (matmul_stack(A, B),)
    return ref.matmul(A, B, ctx=ctx)


# --------------------------------------------------------------------------------------------
# Gemm's matrix-vector form
# --------------------------------------------------------------------------------------------

#: Gemm with at most this many rows of A and B transposed (a classifier at batch 1: y = x W^T
#: + b) takes the compiled row-dot loop ``gemm_loops.rows_dot_claimed`` from
#: ``MIN_ROWS_DOT_MACS`` multiply-adds, its runs of W's rows shared with the pool's idle
#: threads. The weights are rarely in cache when the node runs, and one core reads memory at
#: about half the rate two do. Measured, one thread, the weights evicted before each product: 1000 x 1280,
#: 361 µs by OpenBLAS's product, 208 by the loop; 1024 x 576, 219 and 138.
MAX_ROWS_DOT_M = 4
MIN_ROWS_DOT_MACS = 1 << 16


@fast_kernel("Gemm", versions=(7, 9, 11, 13))
def gemm(A: np.ndarray, B: np.ndarray, C: np.ndarray | None = None, *, alpha: float = 1.0,
         beta: float = 1.0, transA: int = 0, transB: int = 0,
         ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Gemm, the reference's checks and arithmetic, with the product of the matrix-vector form
    (float32, at most ``MAX_ROWS_DOT_M`` rows, B transposed) by the compiled row-dot loop where
    it runs (:func:`_product`)."""
    return ref._gemm(A, B, C, float(alpha), float(beta), int(transA), int(transB), None, ctx,
                     product=_product)


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for :func:`gemm`: where ``b`` is the transpose of a C-ordered [N, K] float32
    matrix and ``a`` has at most ``MAX_ROWS_DOT_M`` rows, by ``gemm_loops.rows_dot_claimed``
    (its rows of b in up to ``threads.MAX_PIECES`` runs shared with the pool); else
    ``np.matmul``."""
    bt = b.T
    m, k = a.shape
    n = bt.shape[0]
    if not (a.dtype == bt.dtype == np.float32 and m <= MAX_ROWS_DOT_M and bt.flags.c_contiguous
            and m * n * k >= MIN_ROWS_DOT_MACS and jit.available()):
        return np.matmul(a, b)
    y = np.empty((m, n), np.float32)
    parts = min(threads.MAX_PIECES, n // 16) if threads.budget() > 1 else 1
    ok = threads.shared_loop("gemm_loops.rows_dot_claimed",
                             (np.ascontiguousarray(a), bt, y, np.zeros(2, np.int64),
                              max(1, parts)),
                             max(1, parts), elements=jit.MIN_ELEMENTS, alone=parts < 2)
    return y if ok else np.matmul(a, b)
