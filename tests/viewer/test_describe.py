"""pyonnx.viewer's model description and overlays (no browser): inferred shapes on every
value, weight statistics without weights, subgraphs and functions nested with their edges,
checker violations on their nodes, profiles from pyonnx and onnxruntime traces, and the
compare overlay blaming a wrong kernel's node."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import pyonnx
from pyonnx.ir import Tensor
from pyonnx.ops import registry
from pyonnx.viewer import (compare_overlay, describe_model, doc_url, profile_from_trace,
                           profile_model)
from pyonnx.viewer.stats import HISTOGRAM_BINS, tensor_stats

MODELS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "models")

TINY = """
<ir_version: 8, opset_import: ["" : 17]>
tiny (float[N, 4] x) => (float[N, 3] y) {
    w = Constant <value = float[4, 3] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}> ()
    m = MatMul(x, w)
    r = Relu(m)
    s = Sigmoid(r)
    y = Add(s, m)
}
"""

NESTED = """
<ir_version: 8, opset_import: ["" : 17]>
nested (float[2, 3] x, bool c) => (float[2, 3] y) {
    a = Abs(x)
    b = If(c) <then_branch = g1 () => (float[2, 3] t) { t = Sigmoid(a) },
               else_branch = g2 () => (float[2, 3] e) { e = Neg(a) }>
    y = Add(b, a)
}
"""

FUNCTION = """
<ir_version: 8, opset_import: ["" : 17, "local" : 1]>
g (float[2] x) => (float[2] y) {
    y = local.Twice(x)
}
<domain: "local", opset_import: ["" : 17]>
Twice (a) => (b) {
    b = Add(a, a)
}
"""


def _by_op(desc: dict, op: str) -> dict:
    return next(n for n in desc["graph"]["nodes"] if n["op"] == op)


def test_import_pyonnx_does_not_import_the_viewer() -> None:
    code = "import sys, pyonnx; print('pyonnx.viewer' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ}, check=True)
    assert out.stdout.strip() == "False"


def test_nodes_edges_and_inferred_symbolic_shapes() -> None:
    desc = describe_model(pyonnx.parse_model(TINY), title="tiny")
    g = desc["graph"]
    assert [n["op"] for n in g["nodes"]] == ["Constant", "MatMul", "Relu", "Sigmoid", "Add"]
    assert [n["id"] for n in g["nodes"]] == ["0", "1", "2", "3", "4"]
    mm = _by_op(desc, "MatMul")
    assert mm["version"] == 13 and mm["in"] == ["x", "w"] and mm["out"] == ["m"]
    # inferred, with the symbol from the input
    assert g["values"]["m"] == {"type": "tensor(float)", "dtype": "float", "shape": ["N", 3]}
    assert g["values"]["y"]["shape"] == ["N", 3]
    # edges: graph input -> MatMul, Constant -> MatMul, MatMul -> Relu and Add, Add -> output
    assert ["i0", 1, "x"] in g["edges"] and [0, 1, "w"] in g["edges"]
    assert [1, 2, "m"] in g["edges"] and [1, 4, "m"] in g["edges"]
    assert [4, "o0", "y"] in g["edges"]
    assert desc["opHistogram"][0]["count"] == 1 and len(desc["opHistogram"]) == 5
    assert desc["opDocs"]["::MatMul"].endswith("Operators.md#MatMul")
    # the Constant's tensor is summarised, with its values since it is small
    (value,) = _by_op(desc, "Constant")["attrs"]
    assert value["stats"]["max"] == 12 and value["value"].startswith("float[4,3]")
    json.dumps(desc, allow_nan=False)  # plain JSON


def test_weight_statistics_without_weights() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 32)).astype(np.float32)
    w[w < -1] = 0
    st = tensor_stats(Tensor.from_numpy(w, "w"))
    assert st["shape"] == [64, 32] and st["dtype"] == "float" and st["bytes"] == w.nbytes
    assert st["min"] == pytest.approx(float(w.min())) and st["max"] == pytest.approx(float(w.max()))
    assert st["mean"] == pytest.approx(float(w.astype(np.float64).mean()))
    assert st["std"] == pytest.approx(float(w.astype(np.float64).std()))
    assert st["zeros"] == pytest.approx(float((w == 0).mean()))
    assert len(st["hist"]["counts"]) == HISTOGRAM_BINS and sum(st["hist"]["counts"]) == w.size
    # constant, integer, non-finite and string tensors
    assert tensor_stats(Tensor.from_numpy(np.full(5, 7.0, np.float32)))["hist"]["counts"][
        HISTOGRAM_BINS // 2] == 5
    big = tensor_stats(Tensor.from_numpy(np.array([2**62, 2**62], np.int64)))
    assert sum(big["hist"]["counts"]) == 2
    nf = tensor_stats(Tensor.from_numpy(np.array([np.nan, np.inf, 1.0], np.float32)))
    assert nf["nonfinite"] == 2 and nf["min"] == nf["max"] == 1.0
    assert tensor_stats(Tensor.from_numpy(np.array(["a", "b"])))["strings"]


@pytest.mark.skipif(not os.path.isdir(MODELS), reason="../shared/models is absent (it is on CI "
                                                      "and the development machine)")
def test_real_model_has_shapes_everywhere_and_no_weights() -> None:
    path = os.path.join(MODELS, "bert_small.onnx")
    desc = describe_model(path)
    g = desc["graph"]
    assert desc["title"] == "bert_small.onnx" and not desc["violations"]
    for n in g["nodes"]:
        for o in n["out"]:
            assert g["values"][o].get("shape") is not None, (n, o)
    text = json.dumps(desc)
    # 5.3 million weights described in well under their 21 MB
    assert desc["counts"]["parameters"] > 5_000_000 and len(text) < 2_000_000
    some = next(iter(g["initializers"].values()))
    assert {"min", "max", "mean", "std", "zeros", "hist"} <= set(some)


def test_subgraphs_nest_with_captures() -> None:
    desc = describe_model(pyonnx.parse_model(NESTED))
    node_if = _by_op(desc, "If")
    labels = [label for label, _ in node_if["sub"]]
    assert labels == ["then_branch", "else_branch"]
    then = node_if["sub"][0][1]
    assert then["id"] == "1/then_branch" and then["nodes"][0]["id"] == "1/then_branch/0"
    # 'a' comes from the enclosing graph
    assert then["captures"] == [["a", 0]] and [0, "o0", "t"] in then["edges"]
    assert then["values"]["t"]["shape"] == [2, 3]
    assert desc["counts"] == {"nodes": 3, "all_nodes": 5, "initializers": 0,
                              "parameters": 0, "functions": 0}


def test_local_function_calls_point_at_their_body() -> None:
    desc = describe_model(pyonnx.parse_model(FUNCTION))
    (call,) = desc["graph"]["nodes"]
    (f,) = desc["functions"]
    assert call["fn"] == f["id"] == "f0" and f["name"] == "Twice"
    assert f["graph"]["nodes"][0]["id"] == "f0/0" and f["graph"]["nodes"][0]["op"] == "Add"
    assert desc["model"]["opsets"] == {"": 17, "local": 1}


def test_checker_violations_are_attached_to_their_nodes() -> None:
    model = pyonnx.parse_model(NESTED)
    model.graph.nodes[2].attributes.clear()
    # an attribute Add does not have, in the main graph, and an unknown op in a branch
    from pyonnx.ir import Attribute, AttributeType

    model.graph.nodes[2].attributes["bogus"] = Attribute("bogus", AttributeType.INT, 1)
    then = model.graph.nodes[1].attributes["then_branch"].value
    then.nodes[0].op_type = "NoSuchOp"
    desc = describe_model(model)
    where = {v["node"] for v in desc["violations"]}
    assert "2" in where and "1/then_branch/0" in where, desc["violations"]
    assert any("bogus" in v["message"] for v in desc["violations"])


def test_doc_links() -> None:
    assert doc_url("", "Conv") == "https://github.com/onnx/onnx/blob/main/docs/Operators.md#Conv"
    assert doc_url("com.microsoft", "Attention").endswith("ContribOperators.md"
                                                          "#com.microsoft.Attention")
    assert doc_url("ai.onnx.ml", "TreeEnsembleClassifier").endswith(
        "Operators-ml.md#ai.onnx.ml.TreeEnsembleClassifier")
    assert doc_url("my.domain", "Thing") is None
    assert doc_url("", "<script>") is None  # never a link built from hostile text


def test_profile_from_a_pyonnx_trace(tmp_path: object) -> None:
    model = pyonnx.parse_model(TINY)
    for i, n in enumerate(model.graph.nodes):
        n.name = f"n{i}"
    opts = pyonnx.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = os.path.join(str(tmp_path), "p")
    opts.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = pyonnx.InferenceSession(model, opts)
    for _ in range(2):
        sess.run(None, {"x": np.ones((2, 4), np.float32)})
    prof = profile_from_trace(model, sess.end_profiling())
    assert set(prof["nodes"]) >= {"1", "2", "3", "4"}
    assert prof["runs"] == 2 and prof["total_us"] > 0
    assert {r["op"] for r in prof["ops"]} >= {"MatMul", "Relu", "Sigmoid", "Add"}
    assert sum(r["share"] for r in prof["ops"]) == pytest.approx(1.0)


def test_profile_from_an_onnxruntime_trace(tmp_path: object) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = pyonnx.parse_model(TINY)
    for i, n in enumerate(model.graph.nodes):
        n.name = f"n{i}"
    path = os.path.join(str(tmp_path), "m.onnx")
    pyonnx.save(model, path)
    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = os.path.join(str(tmp_path), "ort")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    sess.run(None, {"x": np.ones((2, 4), np.float32)})
    prof = profile_from_trace(model, sess.end_profiling())
    # onnxruntime's '<name>_kernel_time' events land on their nodes; fences are not counted
    assert {"1", "2", "3", "4"} <= set(prof["nodes"]), prof
    assert all(v["count"] == 1 for v in prof["nodes"].values())


def test_profile_on_demand_names_unnamed_nodes() -> None:
    prof = profile_model(pyonnx.parse_model(NESTED), runs=2)
    # every node of the main graph is timed, and the taken branch's node too
    assert {"0", "1", "2"} <= set(prof["nodes"])
    assert any(k.startswith("1/") for k in prof["nodes"])
    assert prof["nodes"]["0"]["count"] == 2


def test_bad_trace_is_a_typed_error(tmp_path: object) -> None:
    p = os.path.join(str(tmp_path), "t.json")
    with open(p, "w") as f:
        f.write("{not json")
    with pytest.raises(pyonnx.InvalidArgument, match="not JSON"):
        profile_from_trace(pyonnx.parse_model(TINY), p)
    with open(p, "w") as f:
        f.write('"a string"')
    with pytest.raises(pyonnx.InvalidArgument, match="list of events"):
        profile_from_trace(pyonnx.parse_model(TINY), p)


def _wrong_sigmoid(X: np.ndarray) -> tuple[np.ndarray]:
    return ((1.0 / (1.0 + np.exp(-X)) + 0.25).astype(X.dtype),)


@pytest.fixture
def broken_sigmoid(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyonnx's Sigmoid-13 kernel replaced by one that is off by 0.25 (restored after)."""
    registry.get_kernel("", "Sigmoid", 13)  # loads the registry before patching it
    monkeypatch.setitem(registry._REGISTRY, ("", "Sigmoid", 13), _wrong_sigmoid)


def test_compare_overlay_blames_the_broken_kernels_node(broken_sigmoid: None) -> None:
    pytest.importorskip("onnxruntime")
    ov = compare_overlay(pyonnx.parse_model(TINY), "onnxruntime")
    assert ov["first"] == "3" and ov["baseline"] == "onnxruntime"
    assert not ov["nodes"]["3"]["ok"] and ov["nodes"]["3"]["max_abs"] == pytest.approx(0.25)
    assert ov["nodes"]["1"]["ok"] and ov["nodes"]["2"]["ok"]
    assert not ov["nodes"]["4"]["ok"]  # downstream of it
    assert "first disagreement" in ov["text"] and not ov["agree"]


def test_compare_overlay_agrees_without_the_fault() -> None:
    pytest.importorskip("onnxruntime")
    ov = compare_overlay(pyonnx.parse_model(TINY), "onnxruntime")
    assert ov["agree"] and ov["first"] is None
    assert all(v["ok"] for v in ov["nodes"].values()) and len(ov["nodes"]) == 5
