"""The CPU provider computes float16 nodes in float32 (backends/cpu/float16.py): the
session's graph, the values every reader sees, and the results against a float32 evaluation
rounded once."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyonnx
from pyonnx.backends.cpu.float16 import HALF_TYPES

BF16 = np.dtype(ml_dtypes.bfloat16)


def _model(nodes, inputs, outputs, inits=(), opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def _mlp(elem=TensorProto.FLOAT16, dtype=np.float16):
    """y = Softmax(Relu(x @ W + b)), a = ArgMax(x @ W + b) (a decision: left in half precision),
    s = Shape(h); h is also a graph output."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((16, 8)).astype(dtype), "W")
    b = numpy_helper.from_array(rng.standard_normal(8).astype(dtype), "b")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["h"]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Softmax", ["r"], ["y"], axis=-1),
             helper.make_node("ArgMax", ["h"], ["a"], axis=-1),
             helper.make_node("Shape", ["h"], ["s"])]
    ins = [helper.make_tensor_value_info("x", elem, [4, 16])]
    outs = [helper.make_tensor_value_info("y", elem, [4, 8]),
            helper.make_tensor_value_info("h", elem, [4, 8]),
            helper.make_tensor_value_info("a", TensorProto.INT64, [4, 1]),
            helper.make_tensor_value_info("s", TensorProto.INT64, [2])]
    return _model(nodes, ins, outs, [w, b]), rng.standard_normal((4, 16)).astype(dtype), w, b


def _half_nodes(sess):
    """Nodes of the session's graph (other than Cast) that still compute in float16 or
    bfloat16."""
    half = (*HALF_TYPES, pyonnx.ir.DataType.BFLOAT16)
    return [n.op_type for n in sess._model.graph.nodes if n.op_type != "Cast" and any(
        getattr(v.type, "elem_type", None) in half for v in [*n.inputs, *n.outputs] if v)]


def _float32_reference(x, w, b, dtype):
    """The same computation in float32 on the half-precision inputs, rounded once at the end."""
    h = x.astype(np.float32) @ numpy_helper.to_array(w).astype(np.float32) \
        + numpy_helper.to_array(b).astype(np.float32)
    r = np.maximum(h, 0)
    e = np.exp(r - r.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(dtype), h.astype(dtype)


def test_half_precision_runs_in_float32_with_the_declared_types_outside():
    elem, dtype = TensorProto.FLOAT16, np.float16
    model, x, w, b = _mlp(elem, dtype)
    sess = pyonnx.InferenceSession(model)
    # every computing node runs in float32 except the decision (ArgMax reads the rounded value)
    assert _half_nodes(sess) == ["ArgMax"]
    casts = [n for n in sess._model.graph.nodes if n.op_type == "Cast"]
    assert len(casts) == 3  # x in; h and y out (h for the caller and ArgMax)
    # the weights were widened once; the half-precision copies left the session's graph
    inits = sess._model.graph.initializers
    assert {v.const_value.numpy().dtype for v in inits.values()} == {np.dtype(np.float32)}
    y, h, a, s = sess.run(None, {"x": x})
    want_y, want_h = _float32_reference(x, w, b, dtype)
    assert y.dtype == dtype and h.dtype == dtype
    np.testing.assert_array_equal(h, want_h)
    np.testing.assert_allclose(y.astype(np.float32), want_y.astype(np.float32), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(a[:, 0], np.argmax(want_h.astype(np.float32), axis=-1))
    np.testing.assert_array_equal(s, [4, 8])


def test_bfloat16_keeps_its_own_rounding():
    """bfloat16 is not widened: each step rounds as the model says (see float16.py)."""
    model, x, *_ = _mlp(TensorProto.BFLOAT16, BF16)
    sess = pyonnx.InferenceSession(model)
    assert "Softmax" in _half_nodes(sess) and not [
        n for n in sess._model.graph.nodes if n.op_type == "Cast"]
    strict = pyonnx.InferenceSession(
        model, providers=[("CPUExecutionProvider", {"use_reference_kernels": "1"})])
    for g, w in zip(sess.run(None, {"x": x}), strict.run(None, {"x": x})):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g.astype(np.float32), w.astype(np.float32))


def test_reference_kernels_and_disabled_optimization_keep_half_precision():
    model, x, *_ = _mlp()
    plain = pyonnx.InferenceSession(model)
    for opts, providers in (
            (None, [("CPUExecutionProvider", {"use_reference_kernels": "1"})]),
            ("disabled", None)):
        so = pyonnx.SessionOptions()
        if opts == "disabled":
            so.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = pyonnx.InferenceSession(model, so, providers=providers)
        assert "Softmax" in _half_nodes(sess)
        got, want = sess.run(None, {"x": x}), plain.run(None, {"x": x})
        np.testing.assert_allclose(got[0].astype(np.float32), want[0].astype(np.float32),
                                   rtol=2e-2, atol=1e-3)


def test_float16_value_captured_by_a_subgraph_keeps_its_type():
    """h (float16, computed in float32) is read inside If's branch: the branch sees float16."""
    then = helper.make_graph([helper.make_node("Mul", ["h", "h"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT16, [3])])
    other = helper.make_graph([helper.make_node("Neg", ["h"], ["t2"])], "else", [],
                              [helper.make_tensor_value_info("t2", TensorProto.FLOAT16, [3])])
    nodes = [helper.make_node("Add", ["x", "x"], ["h"]),
             helper.make_node("If", ["c"], ["z"], then_branch=then, else_branch=other)]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [3]),
                           helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                   [helper.make_tensor_value_info("z", TensorProto.FLOAT16, [3])])
    sess = pyonnx.InferenceSession(model)
    x = np.array([1.5, -2.25, 100.0], np.float16)
    for c, want in ((True, (x + x) * (x + x)), (False, -(x + x))):
        z, = sess.run(None, {"x": x, "c": np.array(c)})
        assert z.dtype == np.float16
        np.testing.assert_array_equal(z, want.astype(np.float16))


def test_float16_model_matches_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    model, x, *_ = _mlp()
    got = pyonnx.InferenceSession(model).run(None, {"x": x})
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=1e-3, atol=1e-3)
