"""Weight-only quantized weights stay quantized in a session (issue 14): constant folding and
the plan's semi-constant cache keep the DequantizeLinear of a large constant weight; the CPU
provider's fused kernels (DequantizeMatMul, DequantizeGather) and MatMulNBits dequantize in
bands; all agree with the reference definitions."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyonnx
from pyonnx.backends.cpu import quantized as cq
from pyonnx.ops import quantization as ref_q
from pyonnx.ops.contrib import matmul as ref_contrib
from pyonnx.ops.indexing import gather as ref_gather
from pyonnx.optimizer.passes.constant_folding import DEFAULT_MAX_WIDENED_VALUES

RTOL, ATOL = 1e-4, 1e-5

_QTYPES = {"int4": (ml_dtypes.int4, TensorProto.INT4, -8, 7),
           "uint4": (ml_dtypes.uint4, TensorProto.UINT4, 0, 15),
           "int8": (np.int8, TensorProto.INT8, -128, 127),
           "uint8": (np.uint8, TensorProto.UINT8, 0, 255)}


def _blocked(rng, shape, axis, block, kind, symmetric):
    """Random quantized data, scales and (unless symmetric) zero points, blocked on ``axis``."""
    dt, _, lo, hi = _QTYPES[kind]
    q = rng.integers(lo, hi + 1, shape).astype(dt)
    pshape = list(shape)
    pshape[axis] = -(-shape[axis] // block)
    scale = (rng.random(pshape) * 0.1 + 0.01).astype(np.float32)
    zp = None if symmetric else rng.integers(lo, hi + 1, pshape).astype(dt)
    return q, scale, zp


def _close(got, want):
    """Float agreement of two products: summation order differs, so the tolerance scales with
    the products' magnitude (a cancelling sum of large terms keeps their absolute error)."""
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL * max(1.0, np.abs(want).max()))


def _dq_model(k: int, n: int, kind: str = "uint4", block: int = 32, seed: int = 0):
    """y = x @ DequantizeLinear(Wq (K x N) blocked along K) + Gather of a second table."""
    rng = np.random.default_rng(seed)
    q, scale, zp = _blocked(rng, (k, n), 0, block, kind, False)
    tq, tscale, tzp = _blocked(rng, (100, k), 1, block, kind, False)
    ttype = _QTYPES[kind][1]

    def init(name, arr, t=None):
        if t is None:
            return numpy_helper.from_array(arr, name)
        return helper.make_tensor(name, t, arr.shape, arr.astype(np.int32).ravel().tolist())

    nodes = [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0,
                              block_size=block, name="dq_w"),
             helper.make_node("DequantizeLinear", ["tq", "ts", "tz"], ["t"], axis=1,
                              block_size=block, name="dq_t"),
             helper.make_node("Gather", ["t", "ids"], ["e"], name="embed"),
             helper.make_node("Add", ["x", "e"], ["xe"], name="add"),
             helper.make_node("MatMul", ["xe", "w"], ["y"], name="mm")]
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, k]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, n])],
        [init("wq", q, ttype), init("ws", scale), init("wz", zp, ttype),
         init("tq", tq, ttype), init("ts", tscale), init("tz", tzp, ttype)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


def _feeds(k: int):
    rng = np.random.default_rng(1)
    return {"x": rng.standard_normal((3, k)).astype(np.float32),
            "ids": np.array([0, 49, -1], np.int64)}


def _session(model, level):
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = level
    return pyonnx.InferenceSession(model.SerializeToString(), so)


def _steps(sess):
    return [(st.node.domain, st.node.op_type) for st in sess._plan.steps]


def _float_constants(sess, size):
    """The float arrays of at least ``size`` values that the session holds between runs
    (initializers and cached semi-constants)."""
    plan = sess._plan
    held = list(plan.constants.values()) + list(plan._cached_template or [])
    return [a for a in held if isinstance(a, np.ndarray) and a.dtype.kind == "f" and
            a.size >= size]


def _expected(model, feeds):
    return _session(model, pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL).run(None, feeds)[0]


def test_large_dequantize_is_not_folded_nor_cached():
    k, n = 256, 192                      # 49,152 values: above the folding limit
    assert k * n > DEFAULT_MAX_WIDENED_VALUES
    model, feeds = _dq_model(k, n), _feeds(k)
    want = _expected(model, feeds)
    for level in (pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL,
                  pyonnx.GraphOptimizationLevel.ORT_ENABLE_BASIC):
        s = _session(model, level)
        for _ in range(2):               # the second run reads the semi-constant cache
            np.testing.assert_allclose(s.run(None, feeds)[0], want, rtol=RTOL, atol=ATOL)
        assert _steps(s).count(("", "DequantizeLinear")) == 2, level
        assert not _float_constants(s, k * n // 2), level
    s = _session(model, pyonnx.GraphOptimizationLevel.ORT_ENABLE_ALL)
    for _ in range(2):
        np.testing.assert_allclose(s.run(None, feeds)[0], want, rtol=RTOL, atol=ATOL)
    steps = _steps(s)
    assert ("", "DequantizeLinear") not in steps
    assert ("pyonnx", "DequantizeMatMul") in steps and ("pyonnx", "DequantizeGather") in steps
    assert not _float_constants(s, k * n // 2)


def test_small_dequantize_still_folds():
    k, n = 64, 32                        # 2,048 values: a float copy costs 8 KiB
    model, feeds = _dq_model(k, n), _feeds(k)
    s = _session(model, pyonnx.GraphOptimizationLevel.ORT_ENABLE_BASIC)
    np.testing.assert_allclose(s.run(None, feeds)[0], _expected(model, feeds), rtol=RTOL,
                               atol=ATOL)
    assert ("", "DequantizeLinear") not in _steps(s)


def test_semi_constant_cache_keeps_values_that_uncached_steps_read():
    # c = Neg(W) is cached; Add(c, x) reads it early (not cached: x is fed), Abs(c) is cached and
    # its last reader: filling the cache must not drop c before keeping it
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    nodes = [helper.make_node("Neg", ["w"], ["c"]),
             helper.make_node("Add", ["c", "x"], ["a"]),
             helper.make_node("Abs", ["c"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
                          [numpy_helper.from_array(w, "w")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    s = _session(model, pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL)
    x = np.ones((2, 3), np.float32)
    for _ in range(3):
        np.testing.assert_array_equal(s.run(None, {"x": x})[0], -w + x + w)


# --- the kernels against the reference, on random configurations -------------------------------

_CONFIGS = [(kind, block, sym) for kind in ("int4", "uint4", "int8", "uint8")
            for block in (32, 64, 128) for sym in (True, False)]


@pytest.fixture
def small_bands(monkeypatch):
    # bands of 2,048 values: the small shapes below then take several bands
    monkeypatch.setattr(cq, "_BAND_VALUES", 1 << 11)


@pytest.mark.parametrize("kind,block,symmetric", _CONFIGS)
@pytest.mark.parametrize("trans_b", [0, 1])
def test_dequantize_matmul_matches_reference(kind, block, symmetric, trans_b, small_bands):
    rng = np.random.default_rng(block * 7 + trans_b + (2 if symmetric else 0))
    k, n = int(rng.integers(block, 3 * block)), int(rng.integers(40, 300))  # K may cut a block
    stored = (n, k) if trans_b else (k, n)
    for axis in (0, 1):                  # blocks along K, or along N
        q, scale, zp = _blocked(rng, stored, axis, block, kind, symmetric)
        a = rng.standard_normal((2, 5, k)).astype(np.float32)
        (w,) = ref_q.dequantize_linear(q, scale, zp, axis=axis, block_size=block)
        want = a @ (w.T if trans_b else w)
        (got,) = cq.dequantize_matmul(a, q, scale, zp, axis=axis, block_size=block,
                                      trans_b=trans_b)
        _close(got, want)
        # with Gemm's C and beta
        c = rng.standard_normal(n).astype(np.float32)
        (got,) = cq.dequantize_matmul(a[0], q, scale, zp, c, axis=axis, block_size=block,
                                      trans_b=trans_b, beta=0.5)
        _close(got, a[0] @ (w.T if trans_b else w) + 0.5 * c)


@pytest.mark.parametrize("kind,block,symmetric", _CONFIGS)
def test_blocked_dequantize_linear_is_the_reference(kind, block, symmetric):
    rng = np.random.default_rng(block + (1 if symmetric else 0))
    for shape, axis in (((3 * block, 20), 0), ((20, 2 * block + 5), 1), ((4, block, 3), 1)):
        q, scale, zp = _blocked(rng, shape, axis, block, kind, symmetric)
        (want,) = ref_q.dequantize_linear(q, scale, zp, axis=axis, block_size=block)
        (got,) = cq._dequantize_linear_fast(q, scale, zp, axis=axis, block_size=block)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)   # the same float operations: bit for bit


@pytest.mark.parametrize("kind,block,symmetric", _CONFIGS)
def test_dequantize_gather_matches_reference(kind, block, symmetric):
    rng = np.random.default_rng(block * 3 + (1 if symmetric else 0))
    ids = np.array([[0, 3, -1], [5, 5, -7]], np.int64)
    for axis in (0, 1):
        q, scale, zp = _blocked(rng, (70, 2 * block + 3), axis, block, kind, symmetric)
        (w,) = ref_q.dequantize_linear(q, scale, zp, axis=axis, block_size=block)
        (want,) = ref_gather(w, ids, axis=0)
        (got,) = cq.dequantize_gather(q, scale, zp, ids, axis=axis, block_size=block)
        np.testing.assert_array_equal(got, want)
    with pytest.raises(pyonnx.ExecutionError):
        cq.dequantize_gather(q, scale, zp, np.array([70], np.int64), axis=1, block_size=block)


@pytest.mark.parametrize("block", [32, 64, 128])
@pytest.mark.parametrize("symmetric", [True, False])
def test_matmul_nbits_bands_match_reference(block, symmetric, small_bands):
    rng = np.random.default_rng(block + symmetric)
    k, n = 2 * block, 150
    kb = k // block
    packed = rng.integers(0, 256, (n, kb, block // 2)).astype(np.uint8)
    scales = (rng.random(n * kb) * 0.1 + 0.01).astype(np.float32)
    zps = None if symmetric else rng.integers(0, 256, n * -(-kb // 2)).astype(np.uint8)
    bias = rng.standard_normal(n).astype(np.float32)
    a = rng.standard_normal((2, 3, k)).astype(np.float32)
    kw = dict(K=k, N=n, block_size=block, bits=4)
    (want,) = ref_contrib.matmul_nbits(a, packed, scales, zps, None, bias, **kw)
    (got,) = cq.matmul_nbits(a, packed, scales, zps, None, bias, **kw)
    _close(got, want)


# --- a weight-only model end to end -----------------------------------------------------------

def _tied_model(k: int = 128, n: int = 160, vocab: int = 200):
    """Gather(E, ids) -> MatMul(W1) -> Gemm(W2, transB) -> MatMul(Transpose(E)): every reader
    kind the session fuses, the embedding E tied to the head as in GPT-2."""
    rng = np.random.default_rng(3)
    e = (rng.standard_normal((vocab, k)) * 0.1).astype(np.float32)
    w1 = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    w2 = (rng.standard_normal((k, n)) / np.sqrt(n)).astype(np.float32)   # Gemm B, transposed
    b2 = (rng.standard_normal(k) * 0.1).astype(np.float32)
    nodes = [helper.make_node("Gather", ["e", "ids"], ["x"], name="embed"),
             helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm"),
             helper.make_node("Gemm", ["h", "w2", "b2"], ["g"], name="gemm", transB=1),
             helper.make_node("Transpose", ["e"], ["et"], name="tied", perm=[1, 0]),
             helper.make_node("MatMul", ["g", "et"], ["logits"], name="head")]
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [6])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [6, vocab])],
        [numpy_helper.from_array(a, nm) for nm, a in
         (("e", e), ("w1", w1), ("w2", w2), ("b2", b2))])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("bits", [4, 8])
def test_weight_only_model_runs_fused_and_matches_reference(tmp_path, symmetric, bits):
    from pyonnx.quantization import quantize_weight_only

    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    src.write_bytes(_tied_model().SerializeToString())
    quantize_weight_only(str(src), str(dst), form="qdq", bits=bits, block_size=32,
                         symmetric=symmetric)
    feeds = {"ids": np.array([0, 5, 199, -1, 17, 5], np.int64)}
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL
    ref = pyonnx.InferenceSession(str(dst), so, providers=["CPUExecutionProvider"],
                                  provider_options=[{"use_reference_kernels": "1"}])
    want = ref.run(None, feeds)[0]
    s = pyonnx.InferenceSession(str(dst))
    steps = _steps(s)
    assert ("", "DequantizeLinear") not in steps
    assert steps.count(("pyonnx", "DequantizeMatMul")) == 3
    assert ("pyonnx", "DequantizeGather") in steps
    assert not _float_constants(s, 128 * 160 // 2)
    for _ in range(2):
        _close(s.run(None, feeds)[0], want)
