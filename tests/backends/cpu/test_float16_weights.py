"""Large float16 weights stay float16 in a session (issue 14): ComputeHalfInFloat32 gives them
a Cast per run instead of a float32 copy, constant folding and the plan's semi-constant cache
keep that Cast (constant_folding.widens_constant), and FuseDequantizeLinear's kernels widen the
weight band by band; the widening is exact and the products agree with the Cast's."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyonnx
from pyonnx.backends.cpu import jit
from pyonnx.backends.cpu import quantized as cq
from pyonnx.errors import ExecutionError, PyOnnxError
from pyonnx.ir import Attribute, AttributeType, DataType, Node
from pyonnx.optimizer.passes.constant_folding import DEFAULT_MAX_WIDENED_VALUES, widens_constant

LEVELS = pyonnx.GraphOptimizationLevel


def _every_half() -> np.ndarray:
    """All 65,536 float16 bit patterns (NaN payloads, infinities, subnormals, -0.0)."""
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).reshape(256, 256)


@pytest.mark.parametrize("compiled", [True, False])
def test_widening_is_exact_for_every_float16_pattern(compiled, loop_calls_or_none):
    h = _every_half()
    want = h.astype(np.float32).view(np.uint32)
    buf = np.empty(h.size, np.float32)
    with (jit.disabled() if not compiled else _nothing()):
        got = cq._widen_into(h, slice(None), buf)
        assert got.flags.c_contiguous and got.shape == h.shape
        np.testing.assert_array_equal(got.view(np.uint32), want)
        band = cq._widen_into(h, slice(37, 101), buf)   # a band of columns
        np.testing.assert_array_equal(band.view(np.uint32), want[:, 37:101])
    if compiled and loop_calls_or_none is not None:
        assert loop_calls_or_none.ran("widen_loops") == [True, True]


@pytest.fixture
def loop_calls_or_none(request):  # type: ignore[no-untyped-def]
    """The loop_calls spy where the compiled loops run, else None (the NumPy path is tested)."""
    if not jit.available():
        return None
    return request.getfixturevalue("loop_calls")


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _close(got, want):
    """Products of the same float32 values, summed in another order (bands, BLAS blocking)."""
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("small_bands", [False, True])
@pytest.mark.parametrize("wdtype", [np.float16, ml_dtypes.bfloat16, np.int8])
def test_widened_matmul_is_the_cast_then_matmul(trans_b, small_bands, wdtype, monkeypatch):
    if small_bands:   # many bands, and a last one narrower than the others
        monkeypatch.setattr(cq, "_WIDE_BAND_VALUES", 40 * 64)
    rng = np.random.default_rng(0)
    k, n = 40, 300
    w = (rng.standard_normal((n, k) if trans_b else (k, n)) * 4).astype(wdtype)
    a = rng.standard_normal((2, 3, k)).astype(np.float32)
    c = rng.standard_normal(n).astype(np.float32)
    wf = w.astype(np.float32)
    b = wf.T if trans_b else wf
    (y,) = cq.dequantize_matmul(a, w, None, None, trans_b=trans_b)
    assert y.dtype == np.float32 and y.shape == (2, 3, n)
    _close(y, a @ b)
    (y,) = cq.dequantize_matmul(a, w, None, None, c, trans_b=trans_b, beta=0.5)
    _close(y, a @ b + (0.5 * c.astype(np.float64)).astype(np.float32))


def test_widened_gather_is_the_cast_then_gather():
    w = _every_half()
    ids = np.array([[0, 255], [-1, 124]], np.int64)
    (y,) = cq.dequantize_gather(w, None, None, ids)
    assert y.shape == (2, 2, 256) and y.dtype == np.float32
    np.testing.assert_array_equal(y.view(np.uint32),
                                  w.astype(np.float32)[ids].view(np.uint32))
    with pytest.raises(PyOnnxError):
        cq.dequantize_gather(w, None, None, np.array([256], np.int64))


def test_widened_kernels_refuse_what_the_cast_cannot_feed():
    w = np.ones((4, 3), np.float16)
    with pytest.raises(ExecutionError, match="float32"):
        cq.dequantize_matmul(np.ones((2, 4), np.float64), w, None)   # MatMul float64 x float32
    with pytest.raises(ExecutionError, match="zero point"):
        cq.dequantize_matmul(np.ones((2, 4), np.float32), w, None, np.zeros(3, np.float16))
    with pytest.raises(ExecutionError, match="cannot be multiplied"):
        cq.dequantize_matmul(np.ones((2, 5), np.float32), w, None)


def _cast(to: DataType) -> Node:
    return Node("Cast", attributes=[Attribute("to", AttributeType.INT, int(to))])


def test_widens_constant_decides_by_type_and_size():
    big, small = DEFAULT_MAX_WIDENED_VALUES + 1, DEFAULT_MAX_WIDENED_VALUES
    f16 = np.zeros(big, np.float16)
    assert widens_constant(_cast(DataType.FLOAT), [f16])
    assert widens_constant(_cast(DataType.DOUBLE), [f16])
    assert widens_constant(_cast(DataType.FLOAT), [np.zeros(big, ml_dtypes.bfloat16)])
    assert widens_constant(_cast(DataType.FLOAT16), [np.zeros(big, ml_dtypes.float8_e4m3fn)])
    assert widens_constant(_cast(DataType.FLOAT), [np.zeros(big, np.int8)])
    assert widens_constant(Node("CastLike"), [f16, np.zeros(1, np.float32)])
    assert widens_constant(Node("DequantizeLinear"), [np.zeros(big, np.uint8)])
    assert not widens_constant(_cast(DataType.FLOAT), [np.zeros(small, np.float16)])
    assert not widens_constant(_cast(DataType.FLOAT16), [f16])           # not wider
    assert not widens_constant(_cast(DataType.BFLOAT16), [f16])          # not wider
    assert not widens_constant(_cast(DataType.INT32), [f16])             # not a float
    assert not widens_constant(_cast(DataType.DOUBLE), [np.zeros(big, np.float32)])
    assert not widens_constant(_cast(DataType.INT32), [np.zeros(big, np.int8)])
    assert not widens_constant(Node("DequantizeLinear"), [f16])          # not quantized data
    assert not widens_constant(Node("Relu"), [f16])


# --- a float16 model with large weights, in sessions ------------------------------------------

K, N1, N2, N3 = 64, 512, 384, 256


def _half_model():
    """y = Cast32(Gemm(MatMul(Relu(MatMul(Cast16(x) + Gather(E, ids), W1)), W2), W3, b3;
    transB=1)), z = Cast32(Conv(Reshape(...), Wc)): every weight above the widening limit
    except b3."""
    rng = np.random.default_rng(0)

    def init(name, shape, scale=0.1):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float16),
                                       name)

    inits = [init("E", (300, K)), init("W1", (K, N1)), init("W2", (N1, N2)),
             init("W3", (N3, N2)), init("b3", (N3,)), init("Wc", (72, 4, 8, 8)),
             numpy_helper.from_array(np.array([4, 4, 8, 8], np.int64), "shape")]
    assert all(np.prod(i.dims) > DEFAULT_MAX_WIDENED_VALUES for i in inits
               if i.name not in ("b3", "shape"))
    nodes = [helper.make_node("Cast", ["x"], ["xh"], to=TensorProto.FLOAT16),
             helper.make_node("Gather", ["E", "ids"], ["e"]),
             helper.make_node("Add", ["xh", "e"], ["s"]),
             helper.make_node("MatMul", ["s", "W1"], ["h1"]),
             helper.make_node("Relu", ["h1"], ["r"]),
             helper.make_node("MatMul", ["r", "W2"], ["h2"]),
             helper.make_node("Gemm", ["h2", "W3", "b3"], ["g"], transB=1),
             helper.make_node("Cast", ["g"], ["y"], to=TensorProto.FLOAT),
             helper.make_node("Reshape", ["g", "shape"], ["g4"]),
             helper.make_node("Conv", ["g4", "Wc"], ["c"], name="conv"),
             helper.make_node("Cast", ["c"], ["z"], to=TensorProto.FLOAT)]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, K]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, N3]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [4, 72, 1, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    feeds = {"x": rng.standard_normal((4, K)).astype(np.float32),
             "ids": np.array([0, 7, 299, -2], np.int64)}
    w = {i.name: numpy_helper.to_array(i).astype(np.float32) for i in inits}
    # float32 throughout on the float16 inputs (the converted graph's arithmetic), rounded to
    # float16 where the model's outputs are
    s = feeds["x"].astype(np.float16).astype(np.float32) + w["E"][feeds["ids"]]
    g = np.maximum(s @ w["W1"], 0) @ w["W2"] @ w["W3"].T + w["b3"]
    c = np.einsum("nchw,mchw->nm", g.reshape(4, 4, 8, 8), w["Wc"])[:, :, None, None]
    return model.SerializeToString(), feeds, (g.astype(np.float16).astype(np.float32),
                                              c.astype(np.float16).astype(np.float32))


def _session(model, level):
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = level
    return pyonnx.InferenceSession(model, so)


def _wide_constants(sess):
    """float32 arrays above the widening limit that the session holds between runs."""
    plan = sess._plan
    held = list(plan.constants.values()) + list(plan._cached_template or [])
    return [a.shape for a in held if isinstance(a, np.ndarray) and a.dtype == np.float32
            and a.size > DEFAULT_MAX_WIDENED_VALUES]


@pytest.mark.parametrize("level", [LEVELS.ORT_ENABLE_BASIC, LEVELS.ORT_ENABLE_EXTENDED,
                                   LEVELS.ORT_ENABLE_ALL])
def test_large_half_weights_stay_half_in_the_session(level):
    model, feeds, want = _half_model()
    sess = _session(model, level)
    for _ in range(2):   # the second run would read the semi-constant cache
        got = sess.run(None, feeds)
        for g, w in zip(got, want):
            # float16 outputs: one rounding of results that differ in summation order only
            np.testing.assert_allclose(g, w, rtol=2e-3, atol=1e-3)
    assert not _wide_constants(sess)
    nodes = sess._model.graph.nodes
    ops = [(n.domain, n.op_type) for n in nodes]
    inits = sess._model.graph.initializers
    half = sorted(n for n, v in inits.items() if v.const_value.numpy().dtype == np.float16)
    assert half == ["E", "W1", "W2", "W3", "Wc"]
    if level >= LEVELS.ORT_ENABLE_EXTENDED:
        assert ops.count(("pyonnx", "DequantizeMatMul")) == 3
        assert ops.count(("pyonnx", "DequantizeGather")) == 1
        assert ("", "MatMul") not in ops and ("", "Gemm") not in ops
    else:   # each weight's Cast just before its reader
        for i, n in enumerate(nodes):
            if n.op_type in ("MatMul", "Gemm"):
                assert nodes[i - 1].op_type == "Cast" and nodes[i - 1].outputs[0] is n.inputs[1]
    conv = next(i for i, n in enumerate(nodes) if n.op_type in ("Conv", "FusedConv"))
    assert nodes[conv - 1].op_type == "Cast" and nodes[conv - 1].inputs[0].name == "Wc"


def test_small_half_weights_are_widened_once():
    model, feeds, want = _half_model()
    sess = _session(model, LEVELS.ORT_ENABLE_ALL)
    b3 = [v for n, v in sess._model.graph.initializers.items() if n.startswith("b3")]
    assert [v.const_value.numpy().dtype for v in b3] == [np.float32]


def test_float_model_storing_half_weights_keeps_them_half():
    """Cast(W16, to=float) -> MatMul in a float32 model: not folded (at any level), not cached
    (level 0), fused at the extended level; a small one still folds."""
    rng = np.random.default_rng(1)
    big = numpy_helper.from_array(rng.standard_normal((64, 300)).astype(np.float16), "W")
    small = numpy_helper.from_array(rng.standard_normal((300, 8)).astype(np.float16), "V")
    nodes = [helper.make_node("Cast", ["W"], ["Wf"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["x", "Wf"], ["h"]),
             helper.make_node("Cast", ["V"], ["Vf"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["h", "Vf"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         [3, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 8])],
                              [big, small])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model = model.SerializeToString()
    x = rng.standard_normal((3, 64)).astype(np.float32)
    want = x @ numpy_helper.to_array(big).astype(np.float32) @ \
        numpy_helper.to_array(small).astype(np.float32)
    for level in (LEVELS.ORT_DISABLE_ALL, LEVELS.ORT_ENABLE_BASIC, LEVELS.ORT_ENABLE_ALL):
        sess = _session(model, level)
        for _ in range(2):
            _close(sess.run(None, {"x": x})[0], want)
        assert not _wide_constants(sess), level
        ops = [n.op_type for n in sess._model.graph.nodes]
        if level == LEVELS.ORT_ENABLE_BASIC:
            assert ops == ["Cast", "MatMul", "MatMul"]    # the small Cast folded
        elif level == LEVELS.ORT_ENABLE_ALL:
            assert ops[0] == "DequantizeMatMul" and "Cast" not in ops
