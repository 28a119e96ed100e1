"""Checking parts of a model on their own (check_tensor, check_sparse_tensor, check_node,
check_graph, check_function), and the rules that onnx's own checker tests exercise: recursion
among model-local functions, opaque types, IR-3 initializers, ConvTranspose groups, removed
experimental operators, subgraph scoping of node outputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as TP  # noqa: E402
from onnx import helper as h  # noqa: E402
from onnx import numpy_helper  # noqa: E402

import pyonnx  # noqa: E402
from pyonnx.checker import (  # noqa: E402
    RULES,
    ExperimentalOperatorWarning,
    check_function,
    check_graph,
    check_model,
    check_node,
    check_sparse_tensor,
    check_tensor,
    collect_violations,
)
from pyonnx.errors import ValidationError  # noqa: E402
from pyonnx.io import proto as P  # noqa: E402
from pyonnx.io.text import parse_model  # noqa: E402
from pyonnx.ir import (  # noqa: E402
    DataType,
    Node,
    OpaqueType,
    SparseTensor,
    Tensor,
    TensorType,
    Value,
)


def vi(name: str, elem: int = TP.FLOAT, shape=(2,)):  # type: ignore[no-untyped-def]
    return h.make_tensor_value_info(name, elem, list(shape) if shape is not None else None)


def rules_of(exc: pytest.ExceptionInfo) -> set[str]:
    return {v[1:v.index("]")] for v in exc.value.violations}


# --------------------------------------------------------------------------- check_tensor


def test_check_tensor_accepts_ir_and_protobuf_forms() -> None:
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    check_tensor(Tensor.from_numpy(arr, "t"))
    check_tensor(numpy_helper.from_array(arr, "t"))  # onnx's TensorProto
    check_tensor(P.TensorProto.FromString(numpy_helper.from_array(arr, "t").SerializeToString()))
    check_tensor(h.make_tensor("empty", TP.FLOAT, [0], []))


@pytest.mark.parametrize("make", [
    lambda: TP(name="t", data_type=TP.FLOAT, dims=[4], float_data=[1, 2, 3]),  # too few values
    lambda: TP(name="t", data_type=TP.INT64, dims=[2], int64_data=[1, 2, 3]),  # too many
    lambda: TP(name="t", data_type=TP.COMPLEX64, dims=[2], float_data=[1, 2, 3]),  # half a pair
    lambda: TP(name="t", data_type=TP.INT32, dims=[2], float_data=[1, 2]),  # the wrong field
    lambda: TP(name="t", data_type=TP.FLOAT, dims=[2], raw_data=b"\0" * 7),
    lambda: TP(name="t", data_type=TP.STRING, dims=[1], raw_data=b"abc"),
    lambda: TP(name="t", data_type=TP.UNDEFINED, dims=[1]),
    lambda: TP(name="t", data_type=TP.INT4, dims=[10], int32_data=[0, 0]),  # 5 bytes needed
])
def test_check_tensor_rejects_data_that_disagrees_with_dims(  # type: ignore[no-untyped-def]
        make) -> None:
    with pytest.raises(ValidationError):
        check_tensor(make())


def test_check_tensor_rejects_values_in_two_fields() -> None:
    t = h.make_tensor("t", TP.FLOAT, [2], [1.0, 2.0])
    t.raw_data = np.array([1, 2], np.float32).tobytes()
    with pytest.raises(ValidationError, match="stores values in 2 fields"):
        check_tensor(t)


def test_check_tensor_rejects_negative_dims_in_memory() -> None:
    t = Tensor("t", DataType.FLOAT, (-1, 2), loader=lambda: np.zeros(2, np.float32))
    with pytest.raises(ValidationError, match="negative dimension"):
        check_tensor(t)


def test_check_tensor_rejects_other_messages() -> None:
    with pytest.raises(TypeError, match="TensorProto"):
        check_tensor(h.make_node("Relu", ["x"], ["y"]))


# --------------------------------------------------------------------------- check_sparse_tensor


def _sparse(dims, indices, idims=None, values=(1, 2, 3)):  # type: ignore[no-untyped-def]
    sp = onnx.SparseTensorProto()
    sp.dims.extend(dims)
    sp.values.CopyFrom(h.make_tensor("sp", TP.INT64, [len(values)], list(values)))
    sp.indices.CopyFrom(h.make_tensor("ix", TP.INT64, idims or [len(indices)], list(indices)))
    return sp


def test_check_sparse_tensor_linear_and_coordinate_indices() -> None:
    check_sparse_tensor(_sparse([100], [9, 27, 81]))
    check_sparse_tensor(_sparse([10, 10], [0, 9, 2, 7, 8, 1], [3, 2]))
    st = SparseTensor(Tensor.from_numpy(np.array([1.0], np.float32), "v"),
                      Tensor.from_numpy(np.array([3], np.int64), "i"), (4,))
    check_sparse_tensor(st)


@pytest.mark.parametrize(("dims", "indices", "idims", "what"), [
    ([100], [9, 27, 100], None, "outside"),
    ([100], [9, 81, 27], None, "ascending"),
    ([100], [9, 9, 27], None, "duplicates"),
    ([10, 10], [0, 9, 2, 10, 8, 1], [3, 2], "outside"),
    ([10, 10], [0, 9, 2, 7], [2, 2], "indices dims"),
])
def test_check_sparse_tensor_rejects_bad_indices(  # type: ignore[no-untyped-def]
        dims, indices, idims, what) -> None:
    with pytest.raises(ValidationError, match=what):
        check_sparse_tensor(_sparse(dims, indices, idims))


# --------------------------------------------------------------------------- check_node


def test_check_node_against_the_default_or_given_opset() -> None:
    check_node(h.make_node("Relu", ["x"], ["y"]))
    check_node(h.make_node("Gelu", ["x"], ["y"]), {"": 20})
    with pytest.raises(ValidationError) as e:
        check_node(h.make_node("Gelu", ["x"], ["y"]), {"": 19})
    assert rules_of(e) == {"unknown-operator"}
    with pytest.raises(ValidationError) as e:
        check_node(h.make_node("Relu", [""], ["y"]))
    assert rules_of(e) == {"arity"}
    with pytest.raises(ValidationError) as e:
        check_node(h.make_node("Relu", ["x"], ["y"], alpha=1.0))
    assert rules_of(e) == {"unknown-attribute"}
    check_node(h.make_node("Anything", ["x"], ["y"], domain="com.vendor"),
               {"": 21, "com.vendor": 1})
    # IR objects too
    check_node(Node("Relu", [Value("x")], [Value("y")]))


def test_removed_experimental_operators_pass_with_a_warning() -> None:
    with pytest.warns(ExperimentalOperatorWarning, match="GivenTensorFill"):
        check_node(h.make_node("GivenTensorFill", [], ["y"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalOperatorWarning)
        check_node(h.make_node("ImageScaler", ["x"], ["y"], scale=2.0), {"": 8})
    with pytest.raises(ValidationError):  # only the default domain's removed experiments
        check_node(h.make_node("ImageScaler", ["x"], ["y"], domain="ai.onnx.ml"))


# --------------------------------------------------------------------------- check_graph


def _relu_graph(**kw):  # type: ignore[no-untyped-def]
    return h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g", [vi("x")], [vi("y")], **kw)


def test_check_graph_as_a_main_graph() -> None:
    check_graph(_relu_graph())
    w = numpy_helper.from_array(np.zeros(2, np.float32), "w")
    check_graph(_relu_graph(initializer=[w]))
    g = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g", [vi("x", shape=None)], [vi("y")])
    with pytest.raises(ValidationError) as e:
        check_graph(g)
    assert rules_of(e) == {"value-info"}


def test_ir_version_3_initializers_are_graph_inputs() -> None:
    w = numpy_helper.from_array(np.zeros(2, np.float32), "w")
    with pytest.raises(ValidationError) as e:
        check_graph(_relu_graph(initializer=[w]), {"": 8}, ir_version=3)
    assert rules_of(e) == {"initializer-input"}
    x = numpy_helper.from_array(np.zeros(2, np.float32), "x")
    check_graph(_relu_graph(initializer=[x]), {"": 8}, ir_version=3)


def test_check_graph_names_and_duplicate_constants() -> None:
    w = numpy_helper.from_array(np.zeros(2, np.float32), "")
    with pytest.raises(ValidationError) as e:
        check_graph(_relu_graph(initializer=[w]))
    assert rules_of(e) == {"name"}
    sp = _sparse([100], [9, 27, 81])
    sp.values.name = ""
    with pytest.raises(ValidationError, match="sparse initializer has an empty name"):
        check_graph(_relu_graph(sparse_initializer=[sp]))
    x = numpy_helper.from_array(np.zeros(2, np.float32), "x")
    sp = _sparse([100], [9, 27, 81])
    sp.values.name = "x"
    with pytest.raises(ValidationError, match="both as an initializer and a sparse"):
        check_graph(_relu_graph(initializer=[x], sparse_initializer=[sp]))
    twice = _relu_graph(initializer=[w, w])
    twice.initializer[0].name = twice.initializer[1].name = "w"
    with pytest.raises(ValidationError) as e:  # the loader's refusal, reported as a violation
        check_graph(twice)
    assert rules_of(e) == {"decode"}


def test_subgraph_node_output_may_reuse_a_name_not_yet_defined_outside() -> None:
    # the If's own output 'z' is computed after its branches run: the branches may name a value
    # 'z' too (onnx.checker scopes names the same way); an outer value computed before may not
    inner = h.make_graph([h.make_node("Neg", ["x"], ["z"])], "inner", [], [vi("z")])
    node = h.make_node("If", ["c"], ["z"], then_branch=inner, else_branch=inner)
    g = h.make_graph([node], "g", [vi("c", TP.BOOL, ()), vi("x")], [vi("z")])
    check_graph(g)
    inner = h.make_graph([h.make_node("Neg", ["c"], ["x"])], "inner", [], [vi("x")])
    node = h.make_node("If", ["c"], ["z"], then_branch=inner, else_branch=inner)
    with pytest.raises(ValidationError) as e:
        check_graph(h.make_graph([node], "g", [vi("c", TP.BOOL, ()), vi("x")], [vi("z")]))
    assert "ssa" in rules_of(e)


# --------------------------------------------------------------------------- functions


def _fn(name: str, calls: list[str], domain: str = "local"):  # type: ignore[no-untyped-def]
    nodes = [h.make_node(c, ["a"], ["b" if i == len(calls) - 1 else f"t{i}"], domain=domain)
             for i, c in enumerate(calls)] or [h.make_node("Identity", ["a"], ["b"])]
    for i in range(1, len(nodes)):
        nodes[i].input[0] = f"t{i - 1}"
    return h.make_function(domain, name, ["a"], ["b"], nodes,
                           [h.make_opsetid("", 21), h.make_opsetid(domain, 1)])


def _fn_model(functions, main_op: str = "f"):  # type: ignore[no-untyped-def]
    g = h.make_graph([h.make_node(main_op, ["x"], ["y"], domain="local")], "g", [vi("x")],
                     [vi("y")])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 21), h.make_opsetid("local", 1)],
                        ir_version=10, functions=functions)


def test_check_function_alone_and_with_its_callees() -> None:
    outer = _fn("outer", ["inner", "inner"])
    check_function(outer)  # the callees are unknown here: nothing can be said about them
    check_function(outer, functions=[_fn("inner", [])])
    with pytest.raises(ValidationError) as e:  # given the model's functions, a missing one is
        check_function(outer, functions=[_fn("other", [])])
    assert rules_of(e) == {"undefined-function"}
    bad = h.make_function("local", "bad", ["a", "a"], ["b"], [h.make_node("Identity", ["a"],
                                                                           ["b"])],
                          [h.make_opsetid("", 21)])
    with pytest.raises(ValidationError, match="appear more than once"):
        check_function(bad)


def test_direct_and_mutual_recursion_is_rejected_naming_the_functions() -> None:
    with pytest.raises(ValidationError, match=r"'local::f' -> 'local::f'"):
        check_model(_fn_model([_fn("f", ["f"])]))
    with pytest.raises(ValidationError,
                       match=r"Cycle detected .*'local::f' -> 'local::g' -> 'local::h' -> "
                             r"'local::f'"):
        check_model(_fn_model([_fn("f", ["g"]), _fn("g", ["h"]), _fn("h", ["f"])]))
    check_model(_fn_model([_fn("f", ["g", "g"]), _fn("g", ["h"]), _fn("h", [])]))
    with pytest.raises(ValidationError) as e:
        check_function(_fn("f", ["g"]), functions=[_fn("g", ["f"])])
    assert rules_of(e) == {"function"}


def test_recursion_through_a_subgraph_is_rejected_once() -> None:
    body = h.make_graph([h.make_node("Identity", ["c"], ["c2"]),
                         h.make_node("f", ["v"], ["v2"], domain="local")], "body",
                        [vi("i", TP.INT64, ()), vi("c", TP.BOOL, ()), vi("v")],
                        [vi("c2", TP.BOOL, ()), vi("v2")])
    f = h.make_function("local", "f", ["a"], ["b"],
                        [h.make_node("Constant", [], ["n"], value_int=2),
                         h.make_node("Loop", ["n", "", "a"], ["b"], body=body)],
                        [h.make_opsetid("", 21), h.make_opsetid("local", 1)])
    violations = collect_violations(_fn_model([f]).SerializeToString())
    assert [v.rule for v in violations] == ["function"]
    assert "Cycle detected" in violations[0].message


def test_a_standard_operator_is_no_call_of_a_same_named_function() -> None:
    # a function named like a standard operator, in the default domain: a node 'Relu' in its
    # body resolves to the operator, so there is no recursion
    relu = h.make_function("", "Relu", ["a"], ["b"], [h.make_node("Relu", ["a"], ["b"])],
                           [h.make_opsetid("", 21)])
    g = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g", [vi("x")], [vi("y")])
    check_model(h.make_model(g, opset_imports=[h.make_opsetid("", 21)], ir_version=10,
                             functions=[relu]))


# --------------------------------------------------------------------------- opaque types


def test_opaque_types_load_print_and_check() -> None:
    text = '''<ir_version: 10, opset_import: ["": 21]>
g (opaque(ai.onnx.ml,Handle) x) => (opaque(Handle) y) { y = Identity(x) }'''
    m = parse_model(text)
    assert m.graph.inputs[0].type == OpaqueType("ai.onnx.ml", "Handle")
    assert m.graph.outputs[0].type == OpaqueType("", "Handle")
    check_model(m)
    again = pyonnx.load(pyonnx.serialize(m))
    assert again.graph.inputs[0].type == OpaqueType("ai.onnx.ml", "Handle")
    assert "opaque(ai.onnx.ml,Handle) x" in pyonnx.to_text(again)
    nameless = parse_model(text.replace("opaque(Handle) y", "opaque() y"))
    with pytest.raises(ValidationError, match="opaque type with no name") as e:
        check_model(nameless)
    assert rules_of(e) == {"value-info"}


# --------------------------------------------------------------------------- ConvTranspose


def _conv_transpose(x_shape, w_shape, group):  # type: ignore[no-untyped-def]
    node = h.make_node("ConvTranspose", ["X", "W"], ["Y"], group=group)
    g = h.make_graph([node], "g", [vi("X", shape=x_shape), vi("W", shape=w_shape)],
                     [vi("Y", shape=("N", None, None, None))])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


def test_conv_transpose_channels_divisible_by_group_in_full_check() -> None:
    check_model(_conv_transpose(("N", 32, 5, 5), (32, 4, 3, 3), 4), full_check=True)
    bad = _conv_transpose(("N", 32, 5, 5), (32, 4, 3, 3), 3)
    check_model(bad)  # the shape fact belongs to the full check, as in onnx
    with pytest.raises(ValidationError, match="C = 32 channels and group is 3") as e:
        check_model(bad, full_check=True)
    assert "operator-constraint" in rules_of(e)
    with pytest.raises(ValidationError, match="one weight row per input channel"):
        check_model(_conv_transpose(("N", 32, 5, 5), (16, 4, 3, 3), 4), full_check=True)
    check_model(_conv_transpose(("N", "C", 5, 5), (32, 4, 3, 3), 3), full_check=True)


def test_new_rules_are_documented() -> None:
    for tag in ("initializer-input", "operator-constraint", "decode"):
        assert tag in RULES
    assert TensorType(DataType.FLOAT, (1,))  # the IR names used above exist
