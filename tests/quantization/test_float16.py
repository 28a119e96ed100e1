"""convert_float_to_float16 / bfloat16: Cast placement, schema-fixed inputs, Cast chains,
subgraphs, block lists, I/O types, overflow guarding."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyonnx
from pyonnx.errors import InvalidArgument
from pyonnx.quantization.float16 import convert_float_to_bfloat16, convert_float_to_float16
from tests.quantization._models import SHARED, run_ort

F = TensorProto.FLOAT


def _tricky_model() -> onnx.ModelProto:
    """Resize with float scales, Range, a Cast chain, an If whose branches read an outer
    initializer, and a Constant."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 4)).astype(np.float32)
    then_g = helper.make_graph(
        [helper.make_node("Add", ["m", "w"], ["t_out"], name="then_add")], "then", [],
        [helper.make_tensor_value_info("t_out", F, None)])
    else_g = helper.make_graph(
        [helper.make_node("Sub", ["m", "w"], ["e_out"], name="else_sub")], "else", [],
        [helper.make_tensor_value_info("e_out", F, None)])
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
        helper.make_node("Resize", ["m4", "", "scales"], ["r"], name="resize", mode="nearest"),
        helper.make_node("Reshape", ["m", "shape4"], ["m4"], name="to4d"),
        helper.make_node("ReduceSum", ["r"], ["rs"], name="rsum", keepdims=0),
        helper.make_node("Cast", ["rs"], ["rs_i"], name="to_int", to=TensorProto.INT32),
        helper.make_node("Cast", ["rs_i"], ["rs_f"], name="back_float", to=F),
        helper.make_node("Constant", [], ["one"], name="const",
                         value=numpy_helper.from_array(np.array(1.0, np.float32))),
        helper.make_node("Range", ["zero", "rs_abs", "one"], ["rng"], name="range"),
        helper.make_node("Abs", ["rs_f"], ["rs_abs0"], name="abs"),
        helper.make_node("Min", ["rs_abs0", "five"], ["rs_abs"], name="clamp"),
        helper.make_node("Greater", ["rs_f", "zero"], ["cond"], name="gt"),
        helper.make_node("If", ["cond"], ["branch"], name="if", then_branch=then_g,
                         else_branch=else_g),
        helper.make_node("Mul", ["branch", "one"], ["y"], name="out_mul"),
    ]
    # topological order for the checker
    order = ["mm", "to4d", "resize", "rsum", "to_int", "back_float", "const", "abs", "clamp",
             "range", "gt", "if", "out_mul"]
    nodes = sorted(nodes, key=lambda n: order.index(n.name))
    graph = helper.make_graph(
        nodes, "tricky", [helper.make_tensor_value_info("x", F, [4, 4])],
        [helper.make_tensor_value_info("y", F, None),
         helper.make_tensor_value_info("rng", F, None),
         helper.make_tensor_value_info("r", F, None)],
        [numpy_helper.from_array(w, "w"),
         numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
         numpy_helper.from_array(np.array([1, 1, 4, 4], np.int64), "shape4"),
         numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
         numpy_helper.from_array(np.array(5.0, np.float32), "five")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _feed(dtype=np.float32) -> dict:
    return {"x": (np.random.default_rng(1).standard_normal((4, 4)) * 0.5).astype(dtype)}


def _types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    out = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + \
            list(inferred.graph.input):
        out[vi.name] = vi.type.tensor_type.elem_type
    return out


@pytest.mark.parametrize("keep_io", [False, True])
def test_tricky_model_converts_correctly(keep_io):
    src = _tricky_model()
    before = src.SerializeToString()
    m16 = convert_float_to_float16(src, keep_io_types=keep_io)
    assert isinstance(m16, onnx.ModelProto) and src.SerializeToString() == before
    onnx.checker.check_model(m16, full_check=True)
    nodes = {n.name: n for n in m16.graph.node}
    # Resize's scales input is tensor(float) by its schema: it stays float32
    scales = nodes["resize"].input[2]
    inits = {i.name: i for i in m16.graph.initializer}
    assert inits[scales].data_type == F
    assert inits[nodes["mm"].input[1]].data_type == TensorProto.FLOAT16
    # the Cast chain stays in half precision; Range is blocked by default
    assert helper.get_attribute_value(
        [a for a in nodes["back_float"].attribute if a.name == "to"][0]) == TensorProto.FLOAT16
    types = _types(m16)
    assert types[nodes["range"].input[1]] == F and types["rng"] == F if keep_io else True
    io_type = F if keep_io else TensorProto.FLOAT16
    assert m16.graph.input[0].type.tensor_type.elem_type == io_type
    assert {o.type.tensor_type.elem_type for o in m16.graph.output} == {io_type}
    # the If branches compute in half precision but keep float32 outputs
    then_g = helper.get_attribute_value(
        [a for a in nodes["if"].attribute if a.name == "then_branch"][0])
    assert any(n.op_type == "Cast" for n in then_g.node)
    feed32 = _feed()
    feed = feed32 if keep_io else _feed(np.float16)
    ref = run_ort(src, feed32)
    for got in (run_ort(m16, feed), pyonnx.InferenceSession(m16.SerializeToString())
                .run(None, feed)[0]):
        got = np.asarray(got, np.float64)
        assert np.abs(got - ref).max() <= 1e-2 * np.abs(ref).max()


def test_block_lists_and_selected_io():
    src = _tricky_model()
    m16 = convert_float_to_float16(src, op_block_list=["MatMul"], node_block_list=["resize"],
                                   keep_io_types=["x"])
    onnx.checker.check_model(m16, full_check=True)
    nodes = {n.name: n for n in m16.graph.node}
    inits = {i.name: i for i in m16.graph.initializer}
    assert inits[nodes["mm"].input[1]].data_type == F   # MatMul blocked: float32 weight
    types = _types(m16)
    assert types[nodes["resize"].output[0]] == F
    assert m16.graph.input[0].type.tensor_type.elem_type == F
    assert m16.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    got = pyonnx.InferenceSession(m16.SerializeToString()).run(None, _feed())[0]
    ref = run_ort(src, _feed())
    assert np.abs(got.astype(np.float64) - ref).max() <= 1e-2 * np.abs(ref).max()


def test_overflow_is_guarded_by_sample_feeds():
    """x^2 summed over 1024 values of ~10 exceeds float16's 65504: without sample feeds the
    half model overflows (evaluated as the spec defines it, in half precision: the reference
    kernels; the CPU provider's default kernels compute half precision in float32, as
    onnxruntime's do); with them the sum and its reader stay float32."""
    nodes = [helper.make_node("Mul", ["x", "x"], ["sq"], name="square"),
             helper.make_node("ReduceSum", ["sq"], ["s"], name="sum", keepdims=1),
             helper.make_node("Div", ["s", "n"], ["mean"], name="mean"),
             helper.make_node("Sqrt", ["mean"], ["y"], name="rms")]
    g = helper.make_graph(nodes, "rms", [helper.make_tensor_value_info("x", F, [1, 1024])],
                          [helper.make_tensor_value_info("y", F, [1, 1])],
                          [numpy_helper.from_array(np.array(1024.0, np.float32), "n")])
    src = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    x = np.full((1, 1024), 10.0, np.float32)
    plain = convert_float_to_float16(src, keep_io_types=True)
    strict = [("CPUExecutionProvider", {"use_reference_kernels": "1"})]
    assert not np.isfinite(pyonnx.InferenceSession(plain.SerializeToString(), providers=strict)
                           .run(None, {"x": x})[0]).all()
    guarded = convert_float_to_float16(src, keep_io_types=True,
                                       sample_feeds={"x": x * 0.9})
    onnx.checker.check_model(guarded, full_check=True)
    y = pyonnx.InferenceSession(guarded.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(y, [[10.0]], rtol=1e-3)
    np.testing.assert_allclose(run_ort(guarded, {"x": x}), [[10.0]], rtol=1e-3)


def test_bfloat16_and_pyonnx_model_input():
    model = pyonnx.load(_tricky_model().SerializeToString())
    before = pyonnx.serialize(model)
    mb = convert_float_to_bfloat16(model, keep_io_types=True)
    assert isinstance(mb, pyonnx.ir.Model) and pyonnx.serialize(model) == before
    pyonnx.check_model(mb, full_check=True)
    w = [v for k, v in mb.graph.initializers.items() if k.startswith("w")]
    assert w[0].const_value.numpy().dtype == np.dtype(ml_dtypes.bfloat16)
    got = pyonnx.InferenceSession(mb).run(None, _feed())[0].astype(np.float64)
    ref = run_ort(_tricky_model(), _feed())
    assert np.abs(got - ref).max() <= 3e-2 * np.abs(ref).max()   # 8 significant bits


def test_unsupported_options_raise():
    with pytest.raises(InvalidArgument, match="force_fp16_inputs"):
        convert_float_to_float16(_tricky_model(), force_fp16_inputs={"Resize": [2]})
    with pytest.raises(InvalidArgument, match="use_bfloat16"):
        convert_float_to_float16(_tricky_model(), use_bfloat16_as_blocked_nodes_dtype=True)


def test_values_are_clamped_to_half_range():
    nodes = [helper.make_node("Mul", ["x", "c"], ["y"], name="mul")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [3])],
                          [helper.make_tensor_value_info("y", F, [3])],
                          [numpy_helper.from_array(np.array([1e6, 1e-9, -2.0], np.float32),
                                                   "c")])
    m16 = convert_float_to_float16(helper.make_model(
        g, opset_imports=[helper.make_opsetid("", 18)]))
    c = numpy_helper.to_array(m16.graph.initializer[0])
    assert c.dtype == np.float16
    np.testing.assert_array_equal(c, np.array([65504.0, 5.96e-08, -2.0], np.float16))


@pytest.mark.skipif(not __import__("os").path.isdir(SHARED), reason=f"{SHARED} is absent")
def test_shared_vit_fp16_within_tolerance():
    import os

    from tests.models.test_real_models import shared_feeds

    src = os.path.join(SHARED, "vit_tiny.onnx")
    m16 = convert_float_to_float16(pyonnx.load(src), keep_io_types=True)
    feed = shared_feeds("vit_tiny")
    ref = run_ort(src, feed)
    got = pyonnx.InferenceSession(m16).run(None, feed)[0].astype(np.float64)
    assert np.abs(got - ref).max() <= 1e-2 * np.abs(ref).max()
