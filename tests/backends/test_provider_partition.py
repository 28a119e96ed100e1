"""A provider outside pyonnx plugs in through the public protocol, and a graph split across it
and the CPU provider computes what the CPU provider alone computes (issue 11)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyonnx
from pyonnx.backends import register_provider, unregister_provider
from tests.backends.toy_provider import ToyProvider

TOY = ToyProvider.name


@pytest.fixture
def toy():
    """Register the toy provider for one test; the made providers are collected."""
    made: list[ToyProvider] = []

    def factory(options):
        p = ToyProvider(options)
        made.append(p)
        return p

    register_provider(TOY, factory)
    try:
        yield made
    finally:
        unregister_provider(TOY)


def _model(nodes, extra_inits=()):
    w = numpy_helper.from_array(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), "w")
    g = helper.make_graph(
        nodes, "split", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [3, 4])],
        initializer=[w, *extra_inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


# Add, Relu and Mul go to the toy device, Sigmoid and Neg stay on the host: values cross both ways
SPLIT = _model([
    helper.make_node("Add", ["x", "w"], ["a"], name="add"),
    helper.make_node("Relu", ["a"], ["r"], name="relu"),
    helper.make_node("Sigmoid", ["r"], ["s"], name="sigmoid"),
    helper.make_node("Mul", ["s", "a"], ["y"], name="mul"),
    helper.make_node("Neg", ["a"], ["z"], name="neg"),
])


def _feed(seed=0):
    return {"x": np.random.default_rng(seed).standard_normal((3, 4)).astype(np.float32)}


def test_split_graph_matches_the_cpu_provider(toy):
    ref = pyonnx.InferenceSession(SPLIT).run(None, _feed())
    sess = pyonnx.InferenceSession(SPLIT, providers=[TOY, "CPUExecutionProvider"])
    assert sess.get_providers() == [TOY, "CPUExecutionProvider"]
    p = toy[0]
    # the weight moved to the device once, at session creation
    assert (p.copies_in, p.copies_out) == (1, 0)
    p.copies_in = 0
    got = sess.run(None, _feed())
    for r, g in zip(ref, got):
        assert isinstance(g, np.ndarray)  # outputs come back to the host
        np.testing.assert_array_equal(r, g)
    # per run: x and s to the device; a (for Neg), r (for Sigmoid) and y back to the host
    assert (p.copies_in, p.copies_out) == (2, 3)


def test_assignment_and_copies_are_reported(toy):
    so = pyonnx.SessionOptions()
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    so.enable_profiling = True
    so.profile_file_prefix = "toyprof"
    sess = pyonnx.InferenceSession(SPLIT, so, providers=[TOY])
    where = {n.op_type: s.ep_name for s in sess.get_provider_graph_assignment_info()
             for n in s.get_nodes()}
    assert where["Add"] == where["Relu"] == where["Mul"] == TOY
    assert where["Sigmoid"] == where["Neg"] == "CPUExecutionProvider"
    assert {"MemcpyFromHost", "MemcpyToHost"} <= set(where)
    sess.run(None, _feed())
    path = sess.end_profiling()
    try:
        events = json.load(open(path))
    finally:
        import os
        os.remove(path)
    by_op = {e["args"]["op_type"]: e["args"]["provider"] for e in events}
    assert by_op["Add"] == TOY and by_op["Neg"] == "CPUExecutionProvider"
    assert "MemcpyToHost" in by_op and "MemcpyFromHost" in by_op


def test_concurrent_runs_on_a_split_session(toy):
    sess = pyonnx.InferenceSession(SPLIT, providers=[TOY])
    feeds = [_feed(i) for i in range(8)]
    expected = [sess.run(None, f) for f in feeds]
    bad = []

    def work(i):
        for _ in range(50):
            got = sess.run(None, feeds[i])
            if any(not np.array_equal(a, b) for a, b in zip(got, expected[i])):
                bad.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bad == []


def test_values_read_by_a_subgraph_stay_on_the_host(toy):
    # the If branch reads "a" from the outer graph: Add must run on the host then
    then = helper.make_graph([helper.make_node("Relu", ["a"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, [3, 4])])
    other = helper.make_graph([helper.make_node("Neg", ["a"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, [3, 4])])
    cond = numpy_helper.from_array(np.array(True), "c")
    model = _model([
        helper.make_node("Add", ["x", "w"], ["a"], name="add"),
        helper.make_node("If", ["c"], ["y"], name="if", then_branch=then, else_branch=other),
        helper.make_node("Mul", ["y", "y"], ["z"], name="square"),
    ], extra_inits=[cond])
    so = pyonnx.SessionOptions()
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    so.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = pyonnx.InferenceSession(model, so, providers=[TOY])
    where = {n.name: s.ep_name for s in sess.get_provider_graph_assignment_info()
             for n in s.get_nodes()}
    assert where["add"] == where["if"] == "CPUExecutionProvider"
    assert where["square"] == TOY
    ref = pyonnx.InferenceSession(model, so).run(None, _feed())
    for r, g in zip(ref, sess.run(None, _feed())):
        np.testing.assert_array_equal(r, g)


def test_unregistered_provider_falls_back_with_a_warning():
    with pytest.warns(RuntimeWarning, match="not available"):
        sess = pyonnx.InferenceSession(SPLIT, providers=["CUDAExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]


def test_provider_names_are_registered_once(toy):
    with pytest.raises(ValueError, match="already registered"):
        register_provider(TOY, ToyProvider)
    assert TOY in pyonnx.get_available_providers()
