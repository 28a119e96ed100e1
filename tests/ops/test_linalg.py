"""Linear algebra kernels: matmul promotion and broadcasting, Gemm's C broadcasting across
versions, exact integer products, Einsum's equation forms and validation, Det, dtypes, and every
error path."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError, ResourceLimitExceeded
from pyonnx.ops.registry import KernelContext, registered_versions
from tests.ops._oracle import normal_f32, run_ort, schema_versions
from tests.ops._oracle import kernel as k

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

OPS = ["MatMul", "Gemm", "MatMulInteger", "Einsum", "Det"]
RNG = np.random.default_rng(3)
f32 = normal_f32(RNG)


def test_every_schema_version_registered():
    for op in OPS:
        assert list(registered_versions("", op)) == schema_versions(op), op


# --------------------------------------------------------------------------------------- MatMul

@pytest.mark.parametrize("a,b", [((4,), (4,)), ((4,), (4, 3)), ((2, 4), (4,)), ((5, 1, 2, 4), (3, 4, 6)),
                                 ((3, 2, 4), (4, 5)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)),
                                 ((0, 4), (4, 2)), ((2, 0), (0, 3))])
def test_matmul_numpy_semantics(a, b):
    x, y = f32(*a), f32(*b)
    got = k("MatMul")(x, y)[0]
    want = np.matmul(x, y)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32, np.int64, np.uint32])
def test_matmul_keeps_dtype(dtype):
    x = (f32(3, 4) * 4).astype(dtype) if np.dtype(dtype).kind != "u" else \
        RNG.integers(0, 9, (3, 4)).astype(dtype)
    y = (f32(4, 2) * 4).astype(dtype) if np.dtype(dtype).kind != "u" else \
        RNG.integers(0, 9, (4, 2)).astype(dtype)
    got = k("MatMul")(x, y)[0]
    assert got.dtype == dtype
    np.testing.assert_allclose(got.astype(np.float64),
                               x.astype(np.float64) @ y.astype(np.float64), rtol=2e-3, atol=1e-2)


def test_matmul_bfloat16():
    import ml_dtypes
    x, y = f32(3, 4).astype(ml_dtypes.bfloat16), f32(4, 2).astype(ml_dtypes.bfloat16)
    got = k("MatMul")(x, y)[0]
    assert got.dtype == ml_dtypes.bfloat16


@pytest.mark.parametrize("a,b,needle", [((3, 4), (5, 2), "inner dimensions"),
                                        ((2, 3, 4), (3, 4, 2), "cannot be broadcast"),
                                        ((), (3,), "rank >= 1")])
def test_matmul_errors(a, b, needle):
    with pytest.raises(ExecutionError, match=needle):
        k("MatMul")(f32(*a), f32(*b))


def test_matmul_output_bounded():
    with pytest.raises(ResourceLimitExceeded):
        k("MatMul")(f32(64, 2), f32(2, 64), ctx=KernelContext(max_tensor_bytes=1000))


# ----------------------------------------------------------------------------------------- Gemm

@pytest.mark.parametrize("cshape", [None, (), (1,), (5,), (3, 1), (1, 5), (3, 5)])
@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_gemm_matches_onnxruntime(cshape, ta, tb):
    a = f32(4, 3) if ta else f32(3, 4)
    b = f32(5, 4) if tb else f32(4, 5)
    c = None if cshape is None else f32(*cshape)
    attrs = dict(transA=ta, transB=tb, alpha=0.7, beta=-1.3)
    got = k("Gemm")(a, b, c, **attrs)[0]
    want = run_ort("Gemm", {"a": a, "b": b, "c": c}, opset=13, **attrs)[0]
    assert got.dtype == np.float32 and got.shape == (3, 5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_gemm_old_versions_broadcast_attribute():
    a, b = f32(3, 4), f32(4, 5)
    c = f32(5)
    with pytest.raises(ExecutionError, match="broadcast is 0"):
        k("Gemm", 6)(a, b, c)
    got = k("Gemm", 6)(a, b, c, broadcast=1)[0]
    np.testing.assert_allclose(got, a @ b + c, rtol=1e-5, atol=1e-5)
    full = f32(3, 5)
    np.testing.assert_allclose(k("Gemm", 1)(a, b, full)[0], a @ b + full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, np.float64])
def test_gemm_keeps_dtype(dtype):
    a = RNG.integers(-5, 5, (3, 4)).astype(dtype)
    b = RNG.integers(-5, 5, (4, 2)).astype(dtype)
    c = RNG.integers(-5, 5, (2,)).astype(dtype)
    got = k("Gemm")(a, b, c, alpha=2.0, beta=3.0)[0]
    assert got.dtype == dtype
    np.testing.assert_array_equal(got.astype(np.int64),
                                  2 * (a.astype(np.int64) @ b.astype(np.int64)) + 3 * c)


def test_gemm_beta_zero_ignores_c():
    a, b = f32(2, 3), f32(3, 2)
    c = np.full((2, 2), np.inf, np.float32)
    np.testing.assert_allclose(k("Gemm")(a, b, c, beta=0.0)[0], a @ b, rtol=1e-6)


@pytest.mark.parametrize("a,b,c,attrs,needle", [
    ((3, 4), (5, 2), None, {}, "inner dimensions 4 and 5"),
    ((3, 4), (4, 5), (4, 5), {}, "cannot be broadcast"),
    ((3, 4), (4, 5), (2, 3, 5), {}, "cannot be broadcast"),
    ((3, 4, 1), (4, 5), None, {}, "2-D"),
])
def test_gemm_errors(a, b, c, attrs, needle):
    with pytest.raises(ExecutionError, match=needle):
        k("Gemm")(f32(*a), f32(*b), None if c is None else f32(*c), **attrs)


# -------------------------------------------------------------------------------- MatMulInteger

@pytest.mark.parametrize("adt,bdt", [(np.uint8, np.uint8), (np.int8, np.int8),
                                     (np.uint8, np.int8)])
def test_matmul_integer_matches_onnxruntime(adt, bdt):
    # (uint8 x int8 is compared with exact integers: onnxruntime's AVX2 u8s8 kernel saturates
    # pairs of products to 16 bits and differs for large values.)
    a = RNG.integers(np.iinfo(adt).min, np.iinfo(adt).max + 1, (2, 3, 7), dtype=adt)
    b = RNG.integers(np.iinfo(bdt).min, np.iinfo(bdt).max + 1, (7, 4), dtype=bdt)
    az = np.array(3, adt)
    bz = RNG.integers(0, 5, (4,)).astype(bdt)
    got = k("MatMulInteger")(a, b, az, bz)[0]
    if adt == bdt:
        want = run_ort("MatMulInteger", {"a": a, "b": b, "az": az, "bz": bz}, opset=10)[0]
    else:
        want = (a.astype(np.int64) - az.astype(np.int64)) @ (b.astype(np.int64)
                                                            - bz.astype(np.int64))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


def test_matmul_integer_exact_with_long_rows_and_per_row_zero_point():
    a = RNG.integers(0, 256, (3, 2000), dtype=np.uint8)
    b = RNG.integers(0, 256, (2000, 2), dtype=np.uint8)
    az = np.array([0, 255, 7], np.uint8)
    got = k("MatMulInteger")(a, b, az, None)[0]
    want = (a.astype(np.int64) - az.reshape(3, 1).astype(np.int64)) @ b.astype(np.int64)
    np.testing.assert_array_equal(got, want)


def test_matmul_integer_errors():
    a, b = np.zeros((2, 3), np.uint8), np.zeros((3, 4), np.uint8)
    with pytest.raises(ExecutionError, match="a_zero_point has 3 values"):
        k("MatMulInteger")(a, b, np.zeros(3, np.uint8), None)
    with pytest.raises(ExecutionError, match="inner dimensions"):
        k("MatMulInteger")(a, np.zeros((4, 3), np.uint8))
    with pytest.raises(ExecutionError, match="int8 or uint8"):
        k("MatMulInteger")(a.astype(np.int32), b)


# --------------------------------------------------------------------------------------- Einsum

EINSUM_CASES = [
    ("ij->ji", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ij->", [(3, 4)]),
    ("i,i", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("bhqk,bhkd->bhqd", [(2, 3, 4, 6), (2, 3, 6, 5)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (1, 5, 4, 2)]),
    ("...ij,jk", [(2, 3, 4), (4, 5)]),
    ("i...,i...->...", [(3, 2, 4), (3, 2, 4)]),
    ("ab,bc,cd->ad", [(2, 3), (3, 4), (4, 5)]),
    ("ij,ij->i", [(3, 4), (3, 4)]),
    ("ijk,ikl->jl", [(2, 3, 4), (2, 4, 5)]),
    ("Ab,bA->A", [(3, 4), (4, 3)]),
    ("ba,ab", [(3, 4), (4, 3)]),
    ("bij,bjk->", [(2, 3, 4), (2, 4, 5)]),
    ("ij,kl->iljk", [(2, 3), (4, 5)]),
    ("ii,ij->j", [(3, 3), (3, 4)]),
    ("abc,c->ab", [(2, 3, 4), (4,)]),
    ("i j , j k -> i k", [(3, 4), (4, 5)]),
    ("->", [()]),
    ("ij,j->i", [(3, 1), (4,)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM_CASES)
def test_einsum_matches_numpy(eq, shapes):
    ops = [f32(*s) for s in shapes]
    got = k("Einsum")(*ops, equation=eq)[0]
    want = np.einsum(eq.replace(" ", ""), *[o.astype(np.float64) for o in ops])
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("eq,shapes", [EINSUM_CASES[9], EINSUM_CASES[11], EINSUM_CASES[2]])
def test_einsum_matches_onnxruntime(eq, shapes):
    ops = {f"x{i}": f32(*s) for i, s in enumerate(shapes)}
    got = k("Einsum")(*ops.values(), equation=eq)[0]
    want = run_ort("Einsum", ops, opset=12, equation=eq)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_einsum_implicit_output_orders_upper_case_first():
    a, b = f32(2, 3), f32(3, 4)
    got = k("Einsum")(a, b, equation="aB,Bc")[0]
    assert got.shape == (2, 4)  # a and c remain; 'B' is summed
    got = k("Einsum")(f32(2, 3), equation="bA")[0]
    assert got.shape == (3, 2)  # 'A' < 'b' in ASCII


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, np.float64])
def test_einsum_keeps_dtype(dtype):
    a = RNG.integers(-4, 4, (2, 3)).astype(dtype)
    b = RNG.integers(-4, 4, (3, 4)).astype(dtype)
    got = k("Einsum")(a, b, equation="ij,jk->ik")[0]
    assert got.dtype == dtype
    np.testing.assert_array_equal(got.astype(np.int64), a.astype(np.int64) @ b.astype(np.int64))


def test_einsum_bfloat16_from_version_28():
    import ml_dtypes
    a = f32(2, 3).astype(ml_dtypes.bfloat16)
    got = k("Einsum", 28)(a, equation="ij->ji")[0]
    assert got.dtype == ml_dtypes.bfloat16 and got.shape == (3, 2)


@pytest.mark.parametrize("eq,shapes,needle", [
    ("ij,jk->ik", [(2, 3)], "2 input terms but the node has 1"),
    ("ijk->i", [(2, 3)], "names 3 axes but input 0 has rank 2"),
    ("i1->i", [(2, 3)], "contains '1'"),
    ("ij->k", [(2, 3)], "'k' does not appear"),
    ("ij->ii", [(2, 3)], "repeats"),
    ("i.j->i", [(2, 3)], "not part of an ellipsis"),
    ("...i,...i->...", [(2, 3), (2, 4, 3)], "same number"),
    ("...ij->ij", [(5, 2, 3)], "add '...'"),
    ("ij,jk->ik", [(2, 3), (4, 5)], "subscript 'j' has size 3"),
    ("i->j->k", [(2,)], "more than one '->'"),
])
def test_einsum_errors_say_what_is_wrong(eq, shapes, needle):
    with pytest.raises(ExecutionError, match=needle):
        k("Einsum")(*[f32(*s) for s in shapes], equation=eq)


def test_einsum_mixed_dtypes_rejected():
    with pytest.raises(ExecutionError, match="same type"):
        k("Einsum")(f32(2), np.ones(2, np.float64), equation="i,i")


# ------------------------------------------------------------------------------------------ Det

@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (1, 1), (2, 0, 0)])
def test_det_matches_numpy(shape):
    x = f32(*shape)
    got = k("Det")(x)[0]
    assert got.dtype == np.float32 and got.shape == shape[:-2]
    np.testing.assert_allclose(got, np.linalg.det(x.astype(np.float64)), rtol=1e-4, atol=1e-5)


def test_det_float16_and_errors():
    x = np.eye(3, dtype=np.float16) * 2
    got = k("Det")(x)[0]
    assert got.dtype == np.float16 and got == 8
    with pytest.raises(ExecutionError, match="square"):
        k("Det")(f32(2, 3))
    with pytest.raises(ExecutionError, match="square"):
        k("Det")(f32(3))
