"""com.microsoft matrix products against onnxruntime.

uint8 x int8 products use 7-bit weights ([-64, 63]), as onnxruntime's quantizer does with
reduce_range: with full-range int8 weights onnxruntime's x86 kernels saturate int16 pair sums
(vpmaddubsw) and give results that differ from the exact product pyonnx computes.
"""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError
from pyonnx.ops.contrib.matmul import matmul_nbits
from tests.contrib._compare import compare

R = np.random.default_rng(3)


def _f(*shape: int) -> np.ndarray:
    return R.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("shapes,attrs", [
    (((2, 3, 4, 5), (2, 3, 5, 6)), {"alpha": 0.5}),
    (((2, 3, 5, 4), (2, 3, 6, 5)), {"transA": 1, "transB": 1}),
    (((4, 2, 5), (2, 5, 6)), {"transBatchA": 1}),
    (((2, 4, 5), (5, 2, 6)), {"transBatchB": 1}),
    (((5, 2, 4), (2, 5, 6)), {"transBatchA": 1, "transA": 1}),
    (((2, 4, 5), (6, 2, 5)), {"transBatchB": 1, "transB": 1, "alpha": 3.0}),
    (((4, 2, 3, 5), (2, 3, 5, 6)), {"transBatchA": 1}),
    (((4, 5), (6, 5)), {"transB": 1, "alpha": 2.0}),
])
def test_fused_matmul(shapes: tuple, attrs: dict) -> None:
    compare("FusedMatMul", [("a", _f(*shapes[0])), ("b", _f(*shapes[1]))], attrs=attrs)


@pytest.mark.parametrize("K,N,block,bits,zp,bias,rank", [
    (64, 8, 32, 4, None, False, 2),
    (80, 8, 16, 4, "packed", True, 3),
    (64, 5, 32, 4, "float", False, 2),
    (70, 8, 32, 4, "packed", False, 2),
    (64, 8, 32, 8, "packed", True, 2),
    (64, 8, 16, 2, "packed", True, 2),
])
def test_matmul_nbits(K: int, N: int, block: int, bits: int, zp: str | None, bias: bool,
                      rank: int) -> None:
    kb = -(-K // block)
    ins = [("A", _f(*((3, K) if rank == 2 else (2, 3, K)))),
           ("B", R.integers(0, 256, (N, kb, block * bits // 8)).astype(np.uint8)),
           ("s", (R.random((N, kb)) * 0.1 + 0.01).astype(np.float32))]
    if zp == "packed":
        ins.append(("zp", R.integers(0, 256, (N, -(-kb * bits // 8))).astype(np.uint8)))
    elif zp == "float":
        ins.append(("zp", R.integers(0, 1 << bits, (N, kb)).astype(np.float32)))
    else:
        ins.append(("zp", None))
    ins += [("g", None), ("bias", _f(N) if bias else None)]
    compare("MatMulNBits", ins, attrs={"K": K, "N": N, "block_size": block, "bits": bits},
            initializers=["B", "s", "zp"])


def test_matmul_nbits_checks_shapes() -> None:
    with pytest.raises(ExecutionError, match="B must be uint8 of shape"):
        matmul_nbits(_f(2, 64), np.zeros((8, 2, 8), np.uint8), np.ones((8, 2), np.float32),
                     K=64, N=8, block_size=32)


def _q(dtype: type, shape: tuple[int, ...], weight: bool = False) -> np.ndarray:
    if dtype == np.int8:
        lo, hi = (-64, 64) if weight else (-128, 128)
    else:
        lo, hi = 0, 256
    return R.integers(lo, hi, shape).astype(dtype)


# onnxruntime's CPU kernels take uint8 A with uint8 or int8 B, and int8 A with int8 B.
PAIRS = [(np.uint8, np.uint8), (np.uint8, np.int8), (np.int8, np.int8)]


@pytest.mark.parametrize("adt,bdt", PAIRS)
def test_matmul_integer_to_float(adt: type, bdt: type) -> None:
    A, B = _q(adt, (2, 3, 16)), _q(bdt, (16, 8), weight=True)
    compare("MatMulIntegerToFloat", [
        ("A", A), ("B", B), ("as", np.array(0.02, np.float32)),
        ("bs", (R.random(8) * 0.1).astype(np.float32)), ("az", np.array(3, adt)),
        ("bz", _q(bdt, (8,), weight=True) // 8), ("bias", _f(8))])
    compare("MatMulIntegerToFloat", [("A", A), ("B", B), ("as", np.array(0.02, np.float32)),
                                     ("bs", np.array(0.05, np.float32))])


@pytest.mark.parametrize("bdt", [np.uint8, np.int8])
def test_dynamic_quantize_matmul(bdt: type) -> None:
    B = _q(bdt, (16, 8), weight=True)
    compare("DynamicQuantizeMatMul", [("A", _f(3, 16)), ("B", B),
                                      ("bs", (R.random(8) * 0.1).astype(np.float32)),
                                      ("bz", _q(bdt, (8,), weight=True) // 8), ("bias", _f(8))])
    compare("DynamicQuantizeMatMul", [("A", _f(2, 3, 16)), ("B", B), ("bs", np.array(0.07, np.float32))])


@pytest.mark.parametrize("adt,bdt", [(np.uint8, np.uint8), (np.uint8, np.int8), (np.int8, np.int8)])
def test_qgemm(adt: type, bdt: type) -> None:
    A, B = _q(adt, (3, 16)), _q(bdt, (16, 8), weight=True)
    base = [("A", A), ("as", np.array(0.02, np.float32)), ("az", np.array(3, adt)), ("B", B),
            ("bs", (R.random(8) * 0.1).astype(np.float32)), ("bz", _q(bdt, (8,), weight=True) // 8)]
    C = R.integers(-1000, 1000, (8,)).astype(np.int32)
    compare("QGemm", base + [("C", C)], attrs={"alpha": 0.7})
    compare("QGemm", base + [("C", C), ("ys", np.array(0.3, np.float32)), ("yz", np.array(5, adt))],
            attrs={"alpha": 0.7})
    tr = [("A", A.T.copy()), ("as", np.array(0.02, np.float32)), ("az", np.array(3, adt)),
          ("B", B.T.copy()), ("bs", np.array(0.03, np.float32)), ("bz", np.array(1, bdt))]
    compare("QGemm", tr + [("C", None), ("ys", np.array(0.1, np.float32)), ("yz", np.array(7, adt))],
            attrs={"transA": 1, "transB": 1})
