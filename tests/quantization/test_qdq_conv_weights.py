"""The CPU provider's DequantizeConvWeights session pass: a static QDQ model's conv weights are
dequantized once when the session is built, not in every run (backends/cpu/quantized.py)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import pyonnx
from pyonnx.optimizer.passes.constant_folding import DEFAULT_MAX_QUANTIZED_VALUES
from pyonnx.quantization import quantize_static
from tests.quantization._models import cnn_model, cnn_samples, full_check, run_ort

LEVELS = pyonnx.GraphOptimizationLevel


def _model():
    """x -> Conv(DQ(w1)) -> Relu -> Conv(DQ(w2)) -> y, and ReduceSum(DQ(w2)) -> s: w1 (int8,
    per channel) is read by its Conv only, w2 also by the ReduceSum."""
    rng = np.random.default_rng(0)
    w1 = rng.integers(-127, 128, (64, 32, 3, 3)).astype(np.int8)
    w2 = rng.integers(-127, 128, (32, 64, 3, 3)).astype(np.int8)
    assert w1.size > DEFAULT_MAX_QUANTIZED_VALUES and w2.size > DEFAULT_MAX_QUANTIZED_VALUES
    inits = [numpy_helper.from_array(w1, "w1_q"),
             numpy_helper.from_array(rng.uniform(0.001, 0.01, 64).astype(np.float32), "w1_s"),
             numpy_helper.from_array(np.zeros(64, np.int8), "w1_z"),
             numpy_helper.from_array(w2, "w2_q"),
             numpy_helper.from_array(np.float32(0.004), "w2_s")]
    nodes = [
        helper.make_node("DequantizeLinear", ["w1_q", "w1_s", "w1_z"], ["w1"], axis=0),
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r"]),
        helper.make_node("DequantizeLinear", ["w2_q", "w2_s"], ["w2"], name="dq2"),
        helper.make_node("Conv", ["r", "w2"], ["y"], name="conv2"),
        helper.make_node("ReduceSum", ["w2"], ["s"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "qdq_conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 10, 10]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, [])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _session(model, level):
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = level
    so.intra_op_num_threads = 1
    return pyonnx.InferenceSession(model.SerializeToString(), so)


def test_conv_only_weights_are_dequantized_once():
    model = _model()
    feed = {"x": np.random.default_rng(1).standard_normal((1, 32, 12, 12)).astype(np.float32)}
    want = _session(model, LEVELS.ORT_DISABLE_ALL).run(None, feed)
    sess = _session(model, LEVELS.ORT_ENABLE_ALL)
    got = sess.run(None, feed)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
    plan = sess._plan
    steps = [st.node for st in plan.steps]
    dqs = [n for n in steps if n.op_type == "DequantizeLinear"]
    # w1's DequantizeLinear is gone; w2's stays, since the ReduceSum reads it too
    assert [n.name for n in dqs] == ["dq2"]
    held = [a for a in plan.constants.values() if isinstance(a, np.ndarray)]
    assert not any(a.dtype == np.int8 and a.shape == (64, 32, 3, 3) for a in held)
    w1 = [a for a in held if a.dtype == np.float32 and a.shape == (64, 32, 3, 3)]
    assert len(w1) == 1   # the float weight, once
    # the basic level runs no session fusion: both stay
    basic = _session(model, LEVELS.ORT_ENABLE_BASIC)
    assert sum(st.node.op_type == "DequantizeLinear" for st in basic._plan.steps) == 2


def test_static_qdq_cnn_runs_with_the_pass(tmp_path):
    out = str(tmp_path / "q.onnx")
    quantize_static(cnn_model(), out, cnn_samples(4))
    full_check(out)
    feed = cnn_samples(1, seed=9)[0]
    m = onnx.load(out)
    y_all = _session(m, LEVELS.ORT_ENABLE_ALL).run(None, feed)[0]
    y_none = _session(m, LEVELS.ORT_DISABLE_ALL).run(None, feed)[0]
    np.testing.assert_allclose(y_all, y_none, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y_all, run_ort(out, feed), rtol=1e-4, atol=1e-4)
