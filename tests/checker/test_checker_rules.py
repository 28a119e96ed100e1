"""One tiny model per rule of the checker: a valid form passes, a broken form is reported with
the rule's tag and a location that names the element."""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as TP  # noqa: E402
from onnx import helper as h  # noqa: E402
from onnx import numpy_helper  # noqa: E402

import pyonnx  # noqa: E402
from pyonnx.checker import RULES, IrVersionWarning, check_model, collect_violations  # noqa: E402
from pyonnx.errors import DecodeError, ShapeInferenceError, ValidationError  # noqa: E402
from pyonnx.ir import (  # noqa: E402
    Attribute,
    AttributeType,
    DataType,
    Graph,
    Model,
    Node,
    SparseTensor,
    Tensor,
    TensorType,
    Value,
)


def vi(name: str, elem: int = TP.FLOAT, shape=(2,)):  # type: ignore[no-untyped-def]
    return h.make_tensor_value_info(name, elem, list(shape) if shape is not None else None)


def model(nodes, inputs=None, outputs=None, inits=(), opsets=(("", 18),), ir=8,  # type: ignore[no-untyped-def]
          name="g", functions=(), sparse=()):
    g = h.make_graph(list(nodes), name, [vi("x")] if inputs is None else list(inputs),
                     [vi("y")] if outputs is None else list(outputs), list(inits),
                     sparse_initializer=list(sparse))
    return h.make_model(g, opset_imports=[h.make_opsetid(d, v) for d, v in opsets],
                        ir_version=ir, functions=list(functions))


def found(m, full: bool = False) -> list[str]:  # type: ignore[no-untyped-def]
    """The violations of a ModelProto or Model, as strings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IrVersionWarning)
        src = m if isinstance(m, Model) else m.SerializeToString()
        return [str(v) for v in collect_violations(src, full)]


def tags(m, full: bool = False) -> set[str]:  # type: ignore[no-untyped-def]
    return {s[1:s.index("]")] for s in found(m, full)}


RELU = h.make_node("Relu", ["x"], ["y"], name="relu")


def test_valid_model_passes_and_returns_none() -> None:
    assert check_model(model([RELU]).SerializeToString()) is None
    assert found(model([RELU]), full=True) == []


def test_every_violation_is_reported_in_one_error_one_per_line() -> None:
    m = model([h.make_node("Relu", ["nope"], ["z"], name="a"),
               h.make_node("Relu", ["x"], ["w"], name="b", bogus=1)], name="")
    with pytest.raises(ValidationError) as ei:
        check_model(m.SerializeToString())
    err = ei.value
    assert len(err.violations) == 4
    lines = str(err).splitlines()
    assert lines[1:] == err.violations
    assert {s.split("]")[0] + "]" for s in err.violations} == {
        "[name]", "[undefined-input]", "[unknown-attribute]", "[graph-output]"}
    assert any("main graph > node 'a' (Relu)" in s for s in err.violations)


def test_accepts_model_object_path_and_proto(tmp_path) -> None:  # type: ignore[no-untyped-def]
    m = model([RELU])
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    check_model(str(p))
    check_model(m)
    check_model(pyonnx.load(str(p)))


def test_decode_error_propagates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"\x08\x07not a model")
    with pytest.raises(DecodeError):
        check_model(str(p))


# --------------------------------------------------------------------------- model rules


def test_ir_version_zero() -> None:
    assert tags(model([RELU], ir=0)) == {"ir-version"}


def test_ir_version_older_than_opset_warns_only() -> None:
    m = model([RELU], ir=3, opsets=(("", 18),))
    with pytest.warns(IrVersionWarning, match="IR version 3.*opset 18.*IR version 8"):
        check_model(m.SerializeToString())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_model(model([RELU], ir=8).SerializeToString())
    assert issubclass(IrVersionWarning, UserWarning)


def test_opset_import_rules() -> None:
    ml = h.make_node("Normalizer", ["x"], ["y"], domain="ai.onnx.ml", norm="MAX")
    assert tags(model([ml])) == {"opset-import"}
    assert found(model([ml], opsets=(("", 18), ("ai.onnx.ml", 3)))) == []
    assert tags(model([RELU], opsets=(("", 18), ("ai.onnx", 18)))) == {"opset-import"}
    assert tags(model([RELU], opsets=(("", 18), ("com.x", 0)))) == {"opset-import"}
    custom = h.make_node("Foo", ["x"], ["y"], domain="com.x")
    assert tags(model([custom])) == {"opset-import"}
    # a custom domain pyonnx has no schema for is accepted as written once imported
    assert found(model([custom], opsets=(("", 18), ("com.x", 1)))) == []


def test_opset_import_reported_once_per_domain() -> None:
    nodes = [h.make_node("Relu", ["x"], ["a"]), h.make_node("Relu", ["a"], ["y"])]
    assert len(found(model(nodes, opsets=(("com.x", 1),)))) == 1


# --------------------------------------------------------------------------- graph rules


def test_ssa() -> None:
    assert tags(model([RELU], inputs=[vi("x"), vi("x")])) == {"ssa"}
    two = [h.make_node("Relu", ["x"], ["y"]), h.make_node("Neg", ["x"], ["y"])]
    assert tags(model(two)) == {"ssa"}
    assert tags(model([h.make_node("Relu", ["x"], ["x"])], outputs=[vi("x")])) >= {"ssa"}
    w = numpy_helper.from_array(np.ones(2, np.float32), "w")
    add = h.make_node("Add", ["x", "w"], ["y"])
    assert found(model([add], inits=[w])) == []
    # two initializers of one name cannot even be represented: loading refuses them
    with pytest.raises(DecodeError, match="two initializer tensors named 'w'"):
        tags(model([add], inits=[w, w]))
    # input + initializer of one name: an overridable constant, legal in the main graph
    assert found(model([add], inputs=[vi("x"), vi("w")], inits=[w])) == []


def _if_model(then_nodes, then_out="t", ir=8):  # type: ignore[no-untyped-def]
    then_g = h.make_graph(then_nodes, "then", [], [vi(then_out)])
    else_g = h.make_graph([h.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e")])
    return model([h.make_node("If", ["c"], ["y"], name="if1", then_branch=then_g,
                              else_branch=else_g)],
                 inputs=[vi("x"), vi("c", TP.BOOL, ())], ir=ir)


def test_subgraph_scoping() -> None:
    assert found(_if_model([h.make_node("Relu", ["x"], ["t"])])) == []
    shadow = found(_if_model([h.make_node("Relu", ["c"], ["x"])], then_out="x"))
    assert any(s.startswith("[ssa] main graph > node 'if1' (If) > then_branch > node #0 (Relu)")
               for s in shadow)
    assert tags(_if_model([h.make_node("Relu", ["x"], ["t"])], then_out="x")) == {"graph-output"}
    assert tags(_if_model([h.make_node("Relu", ["nowhere"], ["t"])])) == {"undefined-input"}


def test_subgraph_reads_outer_value_computed_later() -> None:
    then_g = h.make_graph([h.make_node("Relu", ["late"], ["t"])], "then", [], [vi("t")])
    else_g = h.make_graph([h.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e")])
    m = model([h.make_node("If", ["c"], ["r"], name="if1", then_branch=then_g,
                           else_branch=else_g),
               h.make_node("Relu", ["x"], ["late"], name="later"),
               h.make_node("Add", ["r", "late"], ["y"])],
              inputs=[vi("x"), vi("c", TP.BOOL, ())])
    assert tags(m) == {"topological-order"}


def test_subgraph_initializer_input() -> None:
    body = h.make_graph([h.make_node("Identity", ["cond_in"], ["cond_out"]),
                         h.make_node("Identity", ["v_in"], ["v_out"])], "body",
                        [vi("i", TP.INT64, ()), vi("cond_in", TP.BOOL, ()), vi("v_in")],
                        [vi("cond_out", TP.BOOL, ()), vi("v_out")])
    loop = h.make_node("Loop", ["n", "", "x"], ["y"], body=body)
    ins = [vi("x"), vi("n", TP.INT64, ())]
    assert found(model([loop], inputs=ins)) == []
    body.initializer.append(numpy_helper.from_array(np.zeros(2, np.float32), "v_in"))
    loop = h.make_node("Loop", ["n", "", "x"], ["y"], body=body)
    assert tags(model([loop], inputs=ins)) == {"subgraph-initializer-input"}
    assert found(model([loop], inputs=ins, ir=3, opsets=(("", 8),))) == []


def test_topological_order_and_cycles() -> None:
    nodes = [h.make_node("Relu", ["z"], ["y"], name="second"),
             h.make_node("Relu", ["x"], ["z"], name="first")]
    out = found(model(nodes))
    assert len(out) == 1 and out[0].startswith("[topological-order] main graph > node 'second'")
    assert tags(model([h.make_node("Add", ["x", "y"], ["y"])])) == {"topological-order"}


def test_undefined_input_and_graph_output() -> None:
    assert tags(model([h.make_node("Relu", ["q"], ["y"])])) == {"undefined-input"}
    assert tags(model([RELU], outputs=[vi("y"), vi("nobody")])) == {"graph-output"}
    # a graph input may be returned as it is
    assert found(model([], outputs=[vi("x")])) == []


def test_names() -> None:
    assert tags(model([RELU], name="")) == {"name"}
    assert tags(model([h.make_node("", ["x"], ["y"])])) == {"name"}
    then_g = h.make_graph([h.make_node("Relu", ["x"], ["t"])], "", [], [vi("t")])
    else_g = h.make_graph([h.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e")])
    m = model([h.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
              inputs=[vi("x"), vi("c", TP.BOOL, ())])
    assert tags(m) == {"name"}


def test_value_info_rules() -> None:
    assert tags(model([RELU], inputs=[h.make_empty_tensor_value_info("x")])) == {"value-info"}
    assert tags(model([RELU], outputs=[h.make_empty_tensor_value_info("y")])) == {"value-info"}
    assert tags(model([RELU], inputs=[vi("x", shape=None)])) == {"value-info"}
    assert tags(model([RELU], outputs=[vi("y", TP.UNDEFINED)])) == {"value-info"}
    # subgraph outputs may leave their type out
    then_g = h.make_graph([h.make_node("Relu", ["x"], ["t"])], "then", [],
                          [h.make_empty_tensor_value_info("t")])
    else_g = h.make_graph([h.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e")])
    m = model([h.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
              inputs=[vi("x"), vi("c", TP.BOOL, ())])
    assert found(m) == []
    # sequence-typed main graph outputs need a known element type
    seq = h.make_node("SequenceConstruct", ["x"], ["y"])
    ok = h.make_tensor_sequence_value_info("y", TP.FLOAT, [2])
    assert found(model([seq], outputs=[ok])) == []


# --------------------------------------------------------------------------- node rules


def test_unknown_and_deprecated_operators() -> None:
    gelu = h.make_node("Gelu", ["x"], ["y"])
    out = found(model([gelu], opsets=(("", 18),)))
    assert len(out) == 1 and "[unknown-operator]" in out[0] and "introduced in opset 20" in out[0]
    assert found(model([gelu], opsets=(("", 20),), ir=9)) == []
    assert tags(model([h.make_node("NoSuchOp", ["x"], ["y"])])) == {"unknown-operator"}
    up = h.make_node("Upsample", ["x", "s"], ["y"])
    s = numpy_helper.from_array(np.ones(1, np.float32), "s")
    assert tags(model([up], inits=[s])) == {"deprecated-operator"}
    assert found(model([up], inits=[s], opsets=(("", 9),), ir=4)) == []


def test_attributes_against_schema() -> None:
    assert tags(model([h.make_node("Relu", ["x"], ["y"], foo=1)])) == {"unknown-attribute"}
    concat = h.make_node("Concat", ["x"], ["y"])
    assert tags(model([concat])) == {"missing-attribute"}
    assert found(model([h.make_node("Concat", ["x"], ["y"], axis=0)])) == []
    out = found(model([h.make_node("LeakyRelu", ["x"], ["y"], alpha=1)]))
    assert len(out) == 1 and "[attribute-type]" in out[0] and "INT" in out[0] and "FLOAT" in out[0]


def test_attribute_value_must_match_type_in_memory() -> None:
    x, y = Value("x", TensorType(DataType.FLOAT, (2,))), Value("y", TensorType(DataType.FLOAT, (2,)))
    n = Node("LeakyRelu", [x], [y], attributes=[Attribute("alpha", AttributeType.FLOAT, "big")])
    m = Model(Graph("g", inputs=[x], outputs=[y], nodes=[n]), ir_version=8,
              opset_imports={"": 18})
    assert tags(m) == {"attribute-type"}


def test_ref_attr_only_in_functions() -> None:
    n = h.make_node("LeakyRelu", ["x"], ["y"])
    n.attribute.append(h.make_attribute_ref("alpha", onnx.AttributeProto.FLOAT))
    assert tags(model([n])) == {"attribute-reference"}


def test_arity() -> None:
    assert tags(model([h.make_node("Relu", ["x", "x"], ["y"])])) == {"arity"}
    assert tags(model([h.make_node("Add", ["x"], ["y"])])) == {"arity"}
    assert tags(model([h.make_node("Add", ["x", ""], ["y"])])) == {"arity"}
    assert tags(model([h.make_node("Relu", ["x"], ["y", "z"])])) == {"arity"}
    # optional inputs may be left empty, variadic inputs may repeat
    clip = h.make_node("Clip", ["x", "", "mx"], ["y"])
    mx = numpy_helper.from_array(np.array(1, np.float32), "mx")
    assert found(model([clip], inits=[mx])) == []
    assert found(model([h.make_node("Sum", ["x", "x", "x"], ["y"])])) == []


# --------------------------------------------------------------------------- functions


def _function_model(fn_nodes, attributes=("alpha",), call_attrs=None, functions=None,  # type: ignore[no-untyped-def]
                    call_inputs=("x",), op="Leaky", fn_opsets=(("", 18),)):
    fn = h.make_function("local", "Leaky", ["a"], ["b"], fn_nodes,
                         [h.make_opsetid(d, v) for d, v in fn_opsets],
                         attributes=list(attributes))
    call = h.make_node(op, list(call_inputs), ["y"], domain="local", name="call",
                       **(call_attrs if call_attrs is not None else {"alpha": 0.2}))
    return model([call], opsets=(("", 18), ("local", 1)), ir=10,
                 functions=[fn] if functions is None else functions(fn))


def _leaky(ref: str = "alpha"):  # type: ignore[no-untyped-def]
    n = h.make_node("LeakyRelu", ["a"], ["b"], name="leaky")
    n.attribute.append(h.make_attribute_ref("alpha", onnx.AttributeProto.FLOAT))
    n.attribute[0].ref_attr_name = ref
    return n


def test_function_rules() -> None:
    assert found(_function_model([_leaky()])) == []
    assert tags(_function_model([_leaky("beta")])) == {"attribute-reference"}
    assert tags(_function_model([_leaky()], functions=lambda f: [f, f])) == {"function"}
    assert tags(_function_model([_leaky()], op="Missing")) == {"undefined-function"}
    assert tags(_function_model([_leaky()], call_inputs=("x", "x"))) == {"arity"}
    assert tags(_function_model([_leaky()], call_attrs={"gamma": 1.0})) == {"unknown-attribute"}
    out = found(_function_model([_leaky()], fn_opsets=()))
    assert len(out) == 1 and out[0].startswith("[opset-import] function 'local::Leaky' > node")
    body_undefined = [h.make_node("Relu", ["zz"], ["b"])]
    assert tags(_function_model(body_undefined, call_attrs={})) == {"undefined-input"}
    fn_sig = _function_model([_leaky()], attributes=("alpha", "alpha"))
    assert tags(fn_sig) == {"function"}


# --------------------------------------------------------------------------- tensors


def _ir_model_with_initializer(t: Tensor) -> Model:
    x = Value("x", TensorType(DataType.FLOAT, (2,)))
    w = Value("w", TensorType(t.data_type, t.dims), const_value=t)
    y = Value("y", TensorType(DataType.FLOAT, (2,)))
    g = Graph("g", inputs=[x], outputs=[y], initializers=[w],
              nodes=[Node("Add", [x, w], [y])])
    return Model(g, ir_version=8, opset_imports={"": 18})


def test_tensor_rules_in_memory() -> None:
    ok = Tensor("w", DataType.FLOAT, (2,), np.ones(2, np.float32))
    assert found(_ir_model_with_initializer(ok)) == []
    wrong_count = Tensor("w", DataType.FLOAT, (3,), np.ones(2, np.float32))
    out = found(_ir_model_with_initializer(wrong_count))
    assert len(out) == 1 and out[0].startswith("[tensor] main graph: initializer 'w' has 2 values")
    undefined = Tensor("w", DataType.UNDEFINED, (2,), np.ones(2, np.float32))
    assert tags(_ir_model_with_initializer(undefined)) == {"tensor"}
    wrong_dtype = Tensor("w", DataType.FLOAT, (2,), np.ones(2, np.int64))
    assert tags(_ir_model_with_initializer(wrong_dtype)) == {"tensor"}
    strings = Tensor("w", DataType.STRING, (2,), np.array([1, 2], dtype=object))
    assert "tensor" in tags(_ir_model_with_initializer(strings))


def test_tensor_data_errors_in_files_are_decode_errors() -> None:
    t = TP(name="w", data_type=TP.FLOAT, dims=[3])
    t.float_data.extend([1.0, 2.0])
    m = model([h.make_node("Add", ["x", "w"], ["y"])], inits=[t])
    with pytest.raises(DecodeError, match="'w'"):
        check_model(m.SerializeToString())


def test_sparse_initializer_rules() -> None:
    def sparse(indices):  # type: ignore[no-untyped-def]
        return h.make_sparse_tensor(numpy_helper.from_array(np.ones(2, np.float32), "s"),
                                    numpy_helper.from_array(np.array(indices, np.int64), "i"),
                                    [4])

    assert found(model([RELU], sparse=[sparse([0, 3])])) == []
    assert tags(model([RELU], sparse=[sparse([0, 4])])) == {"sparse-tensor"}
    assert tags(model([RELU], sparse=[sparse([3, 0])])) == {"sparse-tensor"}
    assert tags(model([RELU], sparse=[sparse([1, 1])])) == {"sparse-tensor"}
    coo = h.make_sparse_tensor(numpy_helper.from_array(np.ones(2, np.float32), "c"),
                               numpy_helper.from_array(np.array([[1, 0], [0, 1]], np.int64), "i"),
                               [2, 2])
    assert tags(model([RELU], sparse=[coo])) == {"sparse-tensor"}


def test_sparse_tensor_in_memory() -> None:
    st = SparseTensor(Tensor("s", DataType.FLOAT, (2,), np.ones(2, np.float32)),
                      Tensor("i", DataType.INT32, (2,), np.array([0, 1], np.int32)), (4,))
    m = _ir_model_with_initializer(Tensor("w", DataType.FLOAT, (2,), np.ones(2, np.float32)))
    m.graph.sparse_initializers["s"] = Value("s", const_value=st)
    assert tags(m) == {"sparse-tensor"}


def test_constant_attribute_tensor_checked() -> None:
    t = Tensor("", DataType.FLOAT, (3,), np.ones(2, np.float32))
    y = Value("y", TensorType(DataType.FLOAT, (3,)))
    g = Graph("g", outputs=[y], nodes=[Node("Constant", [], [y], attributes=[
        Attribute("value", AttributeType.TENSOR, t)])])
    out = found(Model(g, ir_version=8, opset_imports={"": 18}))
    assert len(out) == 1 and "attribute 'value'" in out[0]


# --------------------------------------------------------------------------- full check


def test_full_check_type_constraints() -> None:
    add = h.make_node("Add", ["x", "w"], ["y"], name="add")
    w_int = numpy_helper.from_array(np.ones(2, np.int64), "w")
    assert found(model([add], inits=[w_int])) == []  # types are only compared in a full check
    out = found(model([add], inits=[w_int]), full=True)
    assert len(out) == 1 and out[0].startswith("[type-constraint] main graph > node 'add' (Add)")
    assert "same type T" in out[0]
    s = model([RELU], inputs=[vi("x", TP.STRING)], outputs=[vi("y", TP.STRING)])
    out = found(s, full=True)
    assert out and all("[type-constraint]" in o for o in out)
    cast = h.make_node("Cast", ["x"], ["y"], to=TP.INT64)
    assert found(model([cast], outputs=[vi("y", TP.INT64)]), full=True) == []


def test_full_check_runs_strict_shape_inference(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls = []

    def infer_shapes(m, *, strict=False, **kw):  # type: ignore[no-untyped-def]
        calls.append(strict)
        raise ShapeInferenceError("node 'relu' (Relu): output rank 3 contradicts rank 1")

    fake = types.ModuleType("pyonnx.shape_inference")
    fake.infer_shapes = infer_shapes  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyonnx.shape_inference", fake)
    assert found(model([RELU])) == []
    out = found(model([RELU]), full=True)
    assert calls == [True] and out == [
        "[shape-inference] model: node 'relu' (Relu): output rank 3 contradicts rank 1"]
    # an invalid model is not handed to shape inference
    assert tags(model([RELU], name=""), full=True) == {"name"} and calls == [True]


def test_full_check_without_shape_inference(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "pyonnx.shape_inference", types.ModuleType("empty"))
    assert found(model([RELU]), full=True) == []


def test_every_rule_is_documented() -> None:
    for tag in ("ssa", "topological-order", "undefined-input", "graph-output", "opset-import",
                "arity", "tensor", "sparse-tensor", "function", "type-constraint"):
        assert tag in RULES
