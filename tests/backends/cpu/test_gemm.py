"""The CPU provider's split matrix products equal the reference MatMul (random shapes, every
split direction, fallbacks and errors)."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import gemm, threads
from pyonnx.backends.cpu.registry import get_fast_kernel
from pyonnx.errors import PyOnnxError
from pyonnx.ops import linalg as ref
from pyonnx.ops.registry import KernelContext


@pytest.fixture(autouse=True)
def three_threads(monkeypatch):
    """A budget of 3 on a pretend 4-core machine (BLAS untouched), small blocks so that test
    sizes split; the module state is put back after."""
    saved = (threads._budget, threads._pool, threads._blas_set)
    monkeypatch.setattr(threads, "cores", lambda: 4)
    monkeypatch.setattr(threads, "_set_blas", lambda n: None)
    monkeypatch.setattr(gemm, "MIN_BLOCK_MACS", 512)
    threads._budget, threads._pool = 0, None
    threads.request(3)
    yield
    threads._pool.shutdown(wait=True)
    threads._budget, threads._pool, threads._blas_set = saved


def _same(A, B):
    want = ref.matmul(A, B)[0]
    got = gemm.matmul(A, B)[0]
    assert got.dtype == want.dtype and got.shape == want.shape
    # a block may take another of OpenBLAS's kernels than the whole product (its small-matrix
    # kernels sum K in another order): equal up to a few roundings of the sums of |a| |b|,
    # which is where cancellation makes an absolute error large relative to the result
    eps = np.finfo(want.dtype).eps if want.dtype.kind == "f" else 0
    bound = np.matmul(np.abs(A).astype(np.float64), np.abs(B).astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-6 if A.dtype == np.float64 else 1e-5,
                               atol=1e-6 + 4 * eps * float(bound.max(initial=0)))
    return got


def test_registered():
    for v in (1, 9, 13):
        assert get_fast_kernel("", "MatMul", v) is gemm.matmul


@pytest.mark.parametrize("seed", range(20))
def test_random_shapes(seed):
    rng = np.random.default_rng(seed)
    dtype = rng.choice([np.float32, np.float64])
    m, k, n = (int(rng.integers(1, 70)) for _ in range(3))
    batch = tuple(int(d) for d in rng.integers(1, 4, int(rng.integers(0, 3))))
    A = rng.standard_normal(batch + (m, k)).astype(dtype)
    if rng.random() < 0.5:
        B = rng.standard_normal((k, n)).astype(dtype)
    else:
        B = rng.standard_normal(batch + (k, n)).astype(dtype)
    _same(A, B)


def test_each_split_direction(monkeypatch):
    """Blocks of rows, of columns, matrices of a stack: with parallel_for's Python parts (the
    plain install; here the shared product is turned off)."""
    seen = []
    real = threads.parallel_for

    def spy(count, fn, *, min_per_part=1):
        seen.append((count, len(threads.split(count, min_per_part))))
        return real(count, fn, min_per_part=min_per_part)

    monkeypatch.setattr(threads, "parallel_for", spy)
    monkeypatch.setattr(gemm, "blas_sgemm", lambda: None)
    rng = np.random.default_rng(0)
    f = np.float32
    _same(rng.standard_normal((2, 60, 40)).astype(f), rng.standard_normal((40, 30)).astype(f))
    _same(rng.standard_normal((3, 40)).astype(f), rng.standard_normal((40, 200)).astype(f))
    _same(rng.standard_normal((6, 20, 16)).astype(f), rng.standard_normal((6, 16, 20)).astype(f))
    assert seen == [(120, 3), (200, 3), (6, 3)]  # rows, columns, matrices


def _blas_loop():
    if gemm.blas_sgemm() is None:
        pytest.skip("NumPy's BLAS exports no cblas_sgemm with 64-bit integers (not NumPy's "
                    "OpenBLAS): products split with parallel_for")


@pytest.mark.parametrize("m,k,n", [(120, 40, 30), (3, 40, 200), (40, 1, 64), (65, 17, 64)])
def test_shared_product_by_blas_calls(loop_calls, monkeypatch, m, k, n):
    """A float32 product split in the compiled loop (blocks of rows or of columns, each one
    cblas_sgemm call, claimed by the caller and the pool's threads) equals the product; no
    block goes through parallel_for."""
    _blas_loop()
    monkeypatch.setattr(threads, "parallel_for", None)  # must not be called
    rng = np.random.default_rng(m * k + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    got = _same(a, b)
    assert loop_calls.ran("blas_loops.sgemm_claimed") == [True]
    # into a band of a larger output, from views with row strides of their own
    big = rng.standard_normal((m + 5, k + 3)).astype(np.float32)
    out = np.full((m + 2, n + 4), 7.0, np.float32)
    gemm.matmul2d(big[2:m + 2, 1:k + 1], b, out=out[1:m + 1, 2:n + 2])
    np.testing.assert_allclose(out[1:m + 1, 2:n + 2], big[2:m + 2, 1:k + 1] @ b,
                               rtol=1e-5, atol=1e-5)
    assert (out[0] == 7).all() and (out[m + 1] == 7).all()
    assert (out[:, :2] == 7).all() and (out[:, n + 2:] == 7).all()
    # the blocks are BLAS's own products of those blocks: as parallel_for's
    monkeypatch.setattr(gemm, "blas_sgemm", lambda: None)
    monkeypatch.setattr(threads, "parallel_for", _real_parallel_for)
    np.testing.assert_allclose(gemm.matmul2d(a, b), got, rtol=1e-6, atol=1e-6)


_real_parallel_for = threads.parallel_for


def test_shared_product_only_where_it_can(loop_calls):
    """float64, a column-strided operand, an output that is an operand: not the loop
    (parallel_for's parts, the same values)."""
    _blas_loop()
    rng = np.random.default_rng(3)
    a = rng.standard_normal((60, 40))
    b = rng.standard_normal((40, 30))
    np.testing.assert_allclose(gemm.matmul2d(a, b), a @ b, rtol=1e-12)
    a32 = rng.standard_normal((60, 80)).astype(np.float32)[:, ::2]
    b32 = b.astype(np.float32)
    np.testing.assert_allclose(gemm.matmul2d(a32, b32), a32 @ b32, rtol=1e-5, atol=1e-5)
    # the output is the first operand itself (BLAS would read the rows it has written)
    sq = rng.standard_normal((60, 40)).astype(np.float32)
    w = rng.standard_normal((40, 40)).astype(np.float32)
    want = sq @ w
    assert gemm.matmul2d(sq, w, out=sq) is sq
    np.testing.assert_allclose(sq, want, rtol=1e-5, atol=1e-5)
    assert "blas_loops.sgemm_claimed" not in [name for name, _ in loop_calls.calls]


def test_into_out_and_fallbacks():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((50, 30)).astype(np.float32)
    b = rng.standard_normal((30, 40)).astype(np.float32)
    out = np.empty((50, 40), np.float32)
    assert gemm.matmul2d(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-6)
    # not contiguous, broadcast batches, vectors, integers, float16: the reference itself
    _same(rng.standard_normal((30, 50)).T.astype(np.float32), b)
    _same(rng.standard_normal((2, 1, 8, 30)).astype(np.float32),
          rng.standard_normal((3, 30, 5)).astype(np.float32))
    _same(rng.standard_normal(30).astype(np.float32), b)
    ints = rng.integers(-5, 5, (20, 30)).astype(np.int32)
    np.testing.assert_array_equal(gemm.matmul(ints, ints.T.copy())[0],
                                  ref.matmul(ints, ints.T.copy())[0])
    h = rng.standard_normal((20, 30)).astype(np.float16)
    np.testing.assert_array_equal(gemm.matmul(h, h.T.copy())[0], ref.matmul(h, h.T.copy())[0])


@pytest.mark.parametrize("a_shape,b_shape,a_dtype", [
    ((4, 5), (6, 7), np.float32),
    ((4, 5), (5, 7), np.float64),
    ((2, 4, 5), (3, 5, 7), np.float32),
])
def test_same_errors(a_shape, b_shape, a_dtype):
    A = np.ones(a_shape, a_dtype)
    B = np.ones(b_shape, np.float32)
    with pytest.raises(PyOnnxError) as want:
        ref.matmul(A, B)
    with pytest.raises(PyOnnxError) as got:
        gemm.matmul(A, B)
    assert type(got.value) is type(want.value) and str(got.value) == str(want.value)


def test_allocation_limit_as_reference():
    A = np.ones((64, 64), np.float32)
    ctx = KernelContext(max_tensor_bytes=1000)
    with pytest.raises(PyOnnxError) as want:
        ref.matmul(A, A, ctx=ctx)
    with pytest.raises(PyOnnxError) as got:
        gemm.matmul(A, A, ctx=ctx)
    assert str(got.value) == str(want.value)


def _conv_cases():
    from tests.ops.test_conv import CONV_CASES

    return CONV_CASES


@pytest.mark.parametrize("case", _conv_cases(), ids=lambda c: f"{c[0]}x{c[1]}")
def test_conv_products_split(monkeypatch, case):
    """The CPU provider's Conv with its GEMMs split (1x1, whole-image and banded columns, patch
    embeddings) equals the reference Conv."""
    from pyonnx.backends.cpu import conv as fast_conv
    from pyonnx.ops.conv import conv as reference_conv
    calls = []
    real = gemm.matmul2d

    def spy(a, b, out=None):
        calls.append(a.shape)
        return real(a, b, out=out)

    monkeypatch.setattr(fast_conv, "matmul2d", spy)
    # the BLAS path (float32 products otherwise take the packed product of
    # pyonnx.backends.cpu.pointwise where the compiled loops run)
    monkeypatch.setattr(fast_conv, "pointwise_conv", lambda *a: None)
    monkeypatch.setattr(fast_conv, "product_into", lambda *a: False)
    monkeypatch.setattr(fast_conv, "product", lambda *a: None)
    xs, ws, attrs = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    for budget in (1 << 20, 64):
        monkeypatch.setattr(fast_conv, "_COLS_BUDGET", budget)
        np.testing.assert_allclose(fast_conv.conv(x, w, **attrs)[0],
                                   reference_conv(x, w, **attrs)[0], rtol=1e-4, atol=1e-4)
    if attrs.get("group", 1) == 1 and xs[0] == 1:
        assert calls, "a single-image, single-group Conv goes through matmul2d"


def test_concurrent_callers_get_their_own_products():
    """Two threads multiplying at once (two runs of one session) share the pool: each gets its
    own product."""
    import threading

    rng = np.random.default_rng(5)
    pairs = [(rng.standard_normal((64, 48)).astype(np.float32),
              rng.standard_normal((48, 40)).astype(np.float32)) for _ in range(4)]
    want = [ref.matmul(a, b)[0] for a, b in pairs]
    bad = []

    def worker(k):
        a, b = pairs[k]
        for _ in range(30):
            got = gemm.matmul(a, b)[0]
            if not np.allclose(got, want[k], rtol=1e-5, atol=1e-6):
                bad.append(k)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not bad


# --- Gemm's matrix-vector form (gemm.gemm, gemm_loops.rows_dot_claimed) -----------------------

def test_gemm_registered():
    for v in (7, 9, 11, 13):
        assert get_fast_kernel("", "Gemm", v) is gemm.gemm


def _gemm_same(A, B, C=None, **attrs):
    want = ref.gemm(A, B, C, **attrs)[0]
    got = gemm.gemm(A, B, C, **attrs)[0]
    assert got.dtype == want.dtype and got.shape == want.shape
    # the loop sums each dot product in vector lanes, another order than BLAS's
    bound = np.abs(A) @ np.abs(B.T if attrs.get("transB") else B)
    np.testing.assert_allclose(got, want, rtol=1e-5,
                               atol=4 * np.finfo(np.float32).eps * float(bound.max(initial=0)))
    return got


@pytest.mark.parametrize("m,n,k", [(1, 1000, 1280), (1, 37, 129), (3, 257, 64), (4, 16, 1),
                                   (1, 1, 300)])
def test_matrix_vector_gemm_by_the_loop(loop_calls, monkeypatch, m, n, k):
    """x W^T (+ C, alpha, beta) by the row-dot loop equals the reference Gemm; its pieces (one
    thread or the pool's) give the same bits."""
    monkeypatch.setattr(gemm, "MIN_ROWS_DOT_MACS", 1)
    rng = np.random.default_rng(m * n + k)
    A = rng.standard_normal((m, k)).astype(np.float32)
    W = rng.standard_normal((n, k)).astype(np.float32)
    C = rng.standard_normal((n,)).astype(np.float32)
    shared = _gemm_same(A, W, C, transB=1, alpha=0.5, beta=2.0)
    _gemm_same(A, W, None, transB=1)
    assert loop_calls.ran("gemm_loops.rows_dot_claimed") == [True, True]
    saved = threads._budget
    threads._budget = 1
    try:
        alone = gemm.gemm(A, W, C, transB=1, alpha=0.5, beta=2.0)[0]
    finally:
        threads._budget = saved
    np.testing.assert_array_equal(alone, shared)


@pytest.mark.parametrize("case", ["rows", "not transposed", "float64", "strided W", "small"])
def test_other_gemms_take_the_product(loop_calls, monkeypatch, case):
    """More rows than MAX_ROWS_DOT_M, B not transposed, another type, a W that is not C-ordered,
    or too little work: NumPy's product, the reference's result to the bit."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5 if case == "rows" else 1, 64)).astype(np.float32)
    W = rng.standard_normal((128, 64)).astype(np.float32)
    attrs = {"transB": 1}
    if case == "not transposed":
        W, attrs = np.ascontiguousarray(W.T), {}
    elif case == "float64":
        A, W = A.astype(np.float64), W.astype(np.float64)
    elif case == "strided W":
        W = rng.standard_normal((128, 128)).astype(np.float32)[:, ::2]
    monkeypatch.setattr(gemm, "MIN_ROWS_DOT_MACS", 64 * 128 + (case == "small"))
    np.testing.assert_array_equal(gemm.gemm(A, W, **attrs)[0], ref.gemm(A, W, **attrs)[0])
    assert loop_calls.ran("gemm_loops.rows_dot_claimed") == []


def test_gemm_errors_are_the_reference_ones():
    A = np.ones((1, 3), np.float32)
    with pytest.raises(PyOnnxError, match="inner dimensions 3 and 4"):
        gemm.gemm(A, np.ones((5, 4), np.float32), transB=1)
    with pytest.raises(PyOnnxError, match="cannot be broadcast"):
        gemm.gemm(A, np.ones((5, 3), np.float32), np.ones(4, np.float32), transB=1)
