"""The session's attention fusion (pyonnx::DotProductAttention): it finds the exporters'
attention core with and without mask and NaN guard, gives the unfused graph's results to the bit
(fully masked rows and NaN inputs included), leaves patterns it cannot prove alone, and never
reaches a written file; and why no com.microsoft attention op is written for guarded attention."""

from __future__ import annotations

import numpy as np
import pytest

import pyonnx
from pyonnx.ir import Attribute, AttributeType, DataType, Graph, Model, Node, Tensor, TensorType, Value
from pyonnx.optimizer import PassManager, copy_model
from pyonnx.optimizer.passes import EliminateDeadCode, FuseAttention

F = DataType.FLOAT
B, H, S, D = 2, 2, 5, 4


def _v(name: str, shape: tuple | None = None, dt: DataType = F) -> Value:
    return Value(name, TensorType(dt, shape))


def _c(name: str, arr: np.ndarray) -> Value:
    t = Tensor.from_numpy(arr, name)
    return Value(name, TensorType(t.data_type, arr.shape), const_value=t)


def _attention(mask: bool, guard: bool, softmax_axis: int = -1, extra_reader: bool = False,
               zero: float = 0.0) -> Model:
    """Y = MatMul(guard(Softmax(MatMul(q, kt) [+ m])), v) on 4-D inputs."""
    q, kt, v = _v("q", (B, H, S, D)), _v("kt", (B, H, D, S)), _v("v", (B, H, S, D))
    inputs = [q, kt, v]
    s = _v("s", (B, H, S, S))
    nodes = [Node("MatMul", [q, kt], [s])]
    if mask:
        m = _v("m", (B, 1, 1, S))
        inputs.append(m)
        sm = _v("sm", (B, H, S, S))
        nodes.append(Node("Add", [s, m], [sm]))
        s = sm
    p = _v("p", (B, H, S, S))
    nodes.append(Node("Softmax", [s], [p],
                      attributes=[Attribute("axis", AttributeType.INT, softmax_axis)]))
    inits = []
    if guard:
        nan, pg = _v("nan", (B, H, S, S), DataType.BOOL), _v("pg", (B, H, S, S))
        z = _c("zero", np.array(zero, np.float32))
        inits.append(z)
        nodes += [Node("IsNaN", [p], [nan]), Node("Where", [nan, z, p], [pg])]
        p = pg
    y = _v("y", (B, H, S, D))
    nodes.append(Node("MatMul", [p, v], [y]))
    outputs = [y]
    if extra_reader:
        outputs.append(s)  # the scores are read outside the pattern
    g = Graph("g", inputs=inputs, outputs=outputs, nodes=nodes, initializers=inits)
    return Model(g, opset_imports={"": 18})


def _feeds(mask: bool, rng: np.random.Generator) -> dict[str, np.ndarray]:
    f = {"q": rng.standard_normal((B, H, S, D)).astype(np.float32),
         "kt": rng.standard_normal((B, H, D, S)).astype(np.float32),
         "v": rng.standard_normal((B, H, S, D)).astype(np.float32)}
    if mask:
        m = np.zeros((B, 1, 1, S), np.float32)
        m[0, ..., 3:] = -np.inf  # padding of the first sequence
        m[1] = -np.inf  # the second is all padding: every row fully masked
        f["m"] = m
    return f


def _run(model: Model, feeds: dict, level: int) -> list[np.ndarray]:
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = level
    sess = pyonnx.InferenceSession(model, so)
    return sess.run(None, feeds), sess


@pytest.mark.parametrize("mask,guard", [(True, True), (True, False), (False, True),
                                        (False, False)])
def test_attention_core_fuses_and_gives_the_same_bits(mask: bool, guard: bool) -> None:
    model = _attention(mask, guard)
    fused = PassManager([FuseAttention(), EliminateDeadCode()])(copy_model(model)).model
    assert [n.op_type for n in fused.graph.nodes] == ["DotProductAttention"]
    node = fused.graph.nodes[0]
    assert node.domain == "pyonnx" and node.attributes["nan_to_zero"].value == int(guard)
    assert len(node.inputs) == (4 if mask else 3)
    assert fused.graph.outputs[0].name == "y"
    rng = np.random.default_rng(3)
    feeds = _feeds(mask, rng)
    feeds["q"][0, 0, 1, 0] = np.nan  # a NaN activation: the guard's other case
    (ref,), _ = _run(model, feeds, 1)  # basic level: no session fusions
    (got,), sess = _run(model, feeds, 99)
    assert any(n.op_type == "DotProductAttention" for n in sess._model.graph.nodes)
    np.testing.assert_array_equal(got, ref)  # bit for bit, NaNs where the original has them
    if guard and mask:
        assert np.all(got[1] == 0)  # fully masked rows: zeros, as the guard defines


@pytest.mark.parametrize("case", ["softmax_axis", "extra_reader", "negative_zero"])
def test_attention_patterns_it_cannot_prove_are_left_alone(case: str) -> None:
    model = {"softmax_axis": lambda: _attention(True, True, softmax_axis=2),
             "extra_reader": lambda: _attention(True, True, extra_reader=True),
             "negative_zero": lambda: _attention(True, True, zero=-0.0)}[case]()
    before = [n.op_type for n in model.graph.nodes]
    assert not FuseAttention()(model).modified
    assert [n.op_type for n in model.graph.nodes] == before


def test_attention_fusion_never_reaches_a_written_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = _attention(True, True)
    so = pyonnx.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    sess = pyonnx.InferenceSession(model, so)
    saved = pyonnx.load(str(tmp_path / "opt.onnx"))
    assert "Softmax" in [n.op_type for n in saved.graph.nodes]
    assert "pyonnx" not in saved.opset_imports
    assert any(n.op_type == "DotProductAttention" for n in sess._model.graph.nodes)
    written = pyonnx.optimize(model, level="extended", verify=False)
    assert all(n.domain in ("", "com.microsoft") for n in written.graph.nodes)


def test_onnxruntime_attention_differs_from_the_guarded_pattern() -> None:
    """The reason the extended level writes no MultiHeadAttention for guarded attention:
    onnxruntime's kernel gives NaN where the guarded original gives zeros (a query row fully
    masked with -inf, as the TorchScript exporter writes the mask). If this ever fails,
    onnxruntime has changed and the fusion may become exact."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    hd = H * D
    node = helper.make_node("MultiHeadAttention", ["q", "k", "v", "", "", "bias"], ["o"],
                            domain="com.microsoft", num_heads=H, scale=1.0)
    g = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [B, S, hd])
                      for n in "qkv"]
        + [helper.make_tensor_value_info("bias", TensorProto.FLOAT, [B, 1, S, S])],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18),
                                            helper.make_opsetid("com.microsoft", 1)])
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((B, S, hd)).astype(np.float32) for _ in range(3))
    bias = np.zeros((B, 1, S, S), np.float32)
    bias[1] = -np.inf  # the second sequence fully masked
    (o,) = sess.run(None, {"q": q, "k": k, "v": v, "bias": bias})
    # the guarded pattern on the same operands (per head), run by pyonnx
    heads = lambda t: t.reshape(B, S, H, D).transpose(0, 2, 1, 3)  # noqa: E731
    model = _attention(True, True)
    feeds = {"q": np.ascontiguousarray(heads(q)),
             "kt": np.ascontiguousarray(heads(k).transpose(0, 1, 3, 2)),
             "v": np.ascontiguousarray(heads(v)), "m": bias[:, :, :1, :].copy()}
    (ref,), _ = _run(model, feeds, 1)
    assert np.all(ref[1] == 0)
    assert np.all(np.isnan(o[1]))
    np.testing.assert_allclose(o[0], ref[0].transpose(1, 0, 2).reshape(S, hd), rtol=1e-5,
                               atol=1e-6)
