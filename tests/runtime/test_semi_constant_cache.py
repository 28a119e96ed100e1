"""The plan's semi-constant cache and the run-time Conv+BatchNormalization fold: nodes computed
only from initializers that are also graph inputs (overridable) are computed once while no feed
overrides them, and every run that feeds one sees its value."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import pyonnx


def _model() -> bytes:
    """An IR-3 style CNN: every parameter is an initializer listed as a graph input; the
    weight is built by ConstantOfShape from one of them."""
    rng = np.random.default_rng(0)
    inits = {
        "W_shape": np.array([4, 3, 3, 3], np.int64),
        "scale": rng.random(4).astype(np.float32) + 0.5,
        "bias": rng.standard_normal(4).astype(np.float32),
        "mean": rng.standard_normal(4).astype(np.float32),
        "var": rng.random(4).astype(np.float32) + 0.1,
        "b": rng.standard_normal(4).astype(np.float32),
    }
    nodes = [
        helper.make_node("ConstantOfShape", ["W_shape"], ["W"],
                         value=numpy_helper.from_array(np.array([0.1], np.float32))),
        helper.make_node("Conv", ["x", "W", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["n"],
                         epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["y"]),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])] + [
        helper.make_tensor_value_info(k, TensorProto.INT64 if v.dtype == np.int64
                                      else TensorProto.FLOAT, list(v.shape))
        for k, v in inits.items()]
    g = helper.make_graph(nodes, "g", inputs,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    return m.SerializeToString()


def _session(level: int) -> pyonnx.InferenceSession:
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = level
    return pyonnx.InferenceSession(_model(), so)


def test_cached_runs_match_unoptimized_and_feeds_override() -> None:
    x = np.random.default_rng(1).standard_normal((1, 3, 6, 6)).astype(np.float32)
    plain, fast = _session(0), _session(99)
    want = plain.run(None, {"x": x})[0]
    for _ in range(2):  # the first run fills the cache, the second uses it
        np.testing.assert_allclose(fast.run(None, {"x": x})[0], want, rtol=1e-5, atol=1e-6)
    # an override must be honoured by the cached session
    feeds = {"x": x, "W_shape": np.array([4, 3, 1, 1], np.int64),
             "var": np.full(4, 2.0, np.float32)}
    with_feed = plain.run(None, feeds)[0]
    np.testing.assert_allclose(fast.run(None, feeds)[0], with_feed, rtol=1e-5, atol=1e-6)
    assert with_feed.shape != want.shape  # the fed kernel shape took effect
    # and a later run without it is back to the stored values
    np.testing.assert_allclose(fast.run(None, {"x": x})[0], want, rtol=1e-5, atol=1e-6)


def test_overridable_batchnorm_is_folded_at_run_time() -> None:
    ops = [n.op_type for n in _session(99).model.graph.nodes]
    assert "BatchNormalization" not in ops
    assert "FoldBatchNormIntoConv" in ops


def test_cached_output_is_not_shared_with_the_caller() -> None:
    """A graph output computed only from initializers comes back as the caller's own array."""
    g = helper.make_graph(
        [helper.make_node("ConstantOfShape", ["s"], ["y"])], "g",
        [helper.make_tensor_value_info("s", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([3], np.int64), "s")])
    sess = pyonnx.InferenceSession(helper.make_model(
        g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    a = sess.run(None, {})[0]
    a[:] = 5
    np.testing.assert_array_equal(sess.run(None, {})[0], np.zeros(3, np.float32))
    assert onnx is not None
