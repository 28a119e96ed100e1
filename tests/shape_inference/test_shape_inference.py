"""pyonnx.infer_shapes: symbolic dims, data propagation, subgraphs, functions, merging with
annotations (strict conflicts), input_shapes, the CLI, and the real models."""

from __future__ import annotations

import os

import numpy as np
import pytest

import pyonnx
from pyonnx.errors import InvalidArgument, ShapeInferenceError
from pyonnx.ir import (
    Attribute,
    AttributeType,
    DataType,
    Function,
    Graph,
    Model,
    Node,
    SequenceType,
    Tensor,
    TensorType,
    Value,
)
from pyonnx.shape_inference import infer_shapes
from pyonnx.shape_inference.symbolic import (
    dim_add,
    dim_ceildiv,
    dim_exact_div,
    dim_floordiv,
    dim_mul,
    dim_sub,
    parse,
    render,
)

F, I64, B = DataType.FLOAT, DataType.INT64, DataType.BOOL
MODELS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "models")


def T(elem: DataType, *dims) -> TensorType:  # noqa: N802 - reads like the type it builds
    return TensorType(elem, tuple(dims))


def attr(name: str, value) -> Attribute:
    if isinstance(value, Graph):
        return Attribute(name, AttributeType.GRAPH, value)
    if isinstance(value, str):
        return Attribute(name, AttributeType.STRING, value)
    if isinstance(value, float):
        return Attribute(name, AttributeType.FLOAT, value)
    if isinstance(value, int):
        return Attribute(name, AttributeType.INT, value)
    if isinstance(value, np.ndarray):
        return Attribute(name, AttributeType.TENSOR, Tensor.from_numpy(value))
    return Attribute(name, AttributeType.INTS, list(value))


class Builder:
    """A tiny graph builder over the IR (no onnx needed)."""

    def __init__(self, opset: int = 21) -> None:
        self.g = Graph("g")
        self.opset = opset
        self.n = 0

    def input(self, name: str, t) -> Value:
        v = Value(name, t)
        self.g.inputs.append(v)
        return v

    def const(self, arr, name: str | None = None) -> Value:
        arr = np.asarray(arr)
        name = name or f"c{len(self.g.initializers)}"
        v = Value(name, TensorType(DataType.from_numpy(arr.dtype), arr.shape),
                  const_value=Tensor.from_numpy(arr, name))
        self.g.initializers[name] = v
        return v

    def op(self, op_type: str, inputs, n_out: int = 1, *, domain: str = "", **attrs):
        self.n += 1
        outs = [Value(f"{op_type.lower()}{self.n}_{i}") for i in range(n_out)]
        node = Node(op_type, inputs, outs, domain=domain, name=f"{op_type}{self.n}",
                    attributes=[attr(k, v) for k, v in attrs.items()])
        self.g.append(node)
        return outs[0] if n_out == 1 else outs

    def model(self, *outputs: Value, functions=()) -> Model:
        self.g.outputs = list(outputs)
        return Model(self.g, opset_imports={"": self.opset}, functions=functions)


def out_types(model: Model) -> list:
    return [v.type for v in infer_shapes(model).graph.outputs]


def shape_of(model: Model, i: int = 0):
    return out_types(model)[i].shape


# ---------------------------------------------------------------------- symbolic dims

def test_symbolic_canonical_forms():
    assert dim_mul("N", 2) == "2*N"
    assert dim_add("seq", 1) == "seq+1"
    assert dim_add(dim_floordiv(dim_sub(dim_add("H", 2), 3), 2), 1) == "floor((H+1)/2)"
    assert dim_sub(dim_add("N", 3), 3) == "N"
    assert dim_mul("N", "M") == dim_mul("M", "N") == "M*N"
    assert dim_floordiv(dim_mul("N", 4), 2) == "2*N"
    assert dim_ceildiv("L", 4) == "floor((L+3)/4)"
    assert dim_exact_div(dim_mul(dim_mul("B", "S"), 768), dim_mul("B", "S")) == 768
    assert dim_exact_div("N", 2) is None
    assert dim_add(3, 4) == 7 and dim_floordiv(7, 2) == 3
    assert dim_add(None, 1) is None and dim_floordiv("N", "K") is None
    assert render(parse("past_sequence_length + 1")) == "past_sequence_length+1"
    assert parse("batch size") == {("batch size",): 1}  # not in the grammar: one symbol


# ---------------------------------------------------------------------- element-wise, broadcast

def test_broadcast_with_symbols():
    b = Builder()
    x = b.input("x", T(F, "N", 1, 4))
    y = b.input("y", T(F, 3, 1))
    assert shape_of(b.model(b.op("Add", [x, y]))) == ("N", 3, 4)


def test_comparison_gives_bool_and_cast_gives_to():
    b = Builder()
    x = b.input("x", T(F, 2, 3))
    e = b.op("Less", [x, x])
    c = b.op("Cast", [x], to=int(DataType.INT32))
    t = out_types(b.model(e, c))
    assert t[0] == T(B, 2, 3) and t[1] == T(DataType.INT32, 2, 3)


def test_incompatible_broadcast_strict():
    b = Builder()
    x = b.input("x", T(F, 2, 3))
    y = b.input("y", T(F, 4))
    m = b.model(b.op("Add", [x, y]))
    with pytest.raises(ShapeInferenceError, match="Add"):
        infer_shapes(m, strict=True)
    assert infer_shapes(m).graph.outputs[0].type is None  # unknown, never guessed


# ---------------------------------------------------------------------- data propagation

def test_exporter_reshape_chain_is_symbolic():
    # x[N, S, 768] -> Shape -> Gather 0,1 -> Unsqueeze -> Concat [N, S, 12, 64] -> Reshape
    b = Builder()
    x = b.input("x", T(F, "N", "S", 768))
    s = b.op("Shape", [x])
    n = b.op("Gather", [s, b.const(np.array(0, np.int64))], axis=0)
    q = b.op("Gather", [s, b.const(np.array(1, np.int64))], axis=0)
    ax = b.const(np.array([0], np.int64))
    n1, q1 = b.op("Unsqueeze", [n, ax]), b.op("Unsqueeze", [q, ax])
    tgt = b.op("Concat", [n1, q1, b.const(np.array([12, 64], np.int64))], axis=0)
    r = b.op("Reshape", [x, tgt])
    flat = b.op("Reshape", [x, b.const(np.array([0, -1], np.int64))])
    assert out_types(b.model(r, flat)) == [T(F, "N", "S", 12, 64), T(F, "N", "768*S")]


def test_shape_arithmetic_and_expand():
    b = Builder()
    x = b.input("x", T(F, "N", 4))
    s = b.op("Shape", [x])
    doubled = b.op("Mul", [s, b.const(np.array([2, 1], np.int64))])
    c = b.op("ConstantOfShape", [doubled], value=np.array([0], np.int64))
    e = b.op("Expand", [b.const(np.ones((1, 4), np.float32)), s])
    assert out_types(b.model(c, e)) == [T(I64, "2*N", 4), T(F, "N", 4)]


def test_constant_values_are_evaluated_by_kernels():
    b = Builder()
    x = b.input("x", T(F, 2, 12))
    rng = b.op("Range", [b.const(np.array(0, np.int64)), b.const(np.array(6, np.int64)),
                         b.const(np.array(2, np.int64))])
    tgt = b.op("Concat", [b.const(np.array([-1], np.int64)), rng], axis=0)  # [-1, 0, 2, 4]
    cut = b.op("Slice", [tgt, b.const(np.array([0], np.int64)), b.const(np.array([3], np.int64))])
    r = b.op("Reshape", [x, cut])  # [-1, 0, 2]: 0 copies 12, -1 is 24 / 24
    assert out_types(b.model(r)) == [T(F, 1, 12, 2)]


def test_nonzero_and_unique_are_symbolic():
    b = Builder()
    x = b.input("x", T(F, 3, 4))
    nz = b.op("NonZero", [x])
    outs = b.op("Unique", [x], 4)
    t = out_types(b.model(nz, *outs))
    assert t[0].shape[0] == 2 and isinstance(t[0].shape[1], str)
    assert isinstance(t[1].shape[0], str) and t[1].shape[0] == t[2].shape[0]
    assert t[3] == T(I64, 12)


def test_without_data_prop_reshape_target_unknown():
    b = Builder()
    x = b.input("x", T(F, "N", 6))
    s = b.op("Shape", [x])
    r = b.op("Reshape", [x, s])
    m = b.model(r)
    assert infer_shapes(m).graph.outputs[0].type == T(F, "N", 6)
    got = infer_shapes(m, data_prop=False).graph.outputs[0].type
    assert got.shape is not None and all(isinstance(d, str) for d in got.shape)


# ---------------------------------------------------------------------- conv, pool, reduce

def test_conv_pool_symbolic_and_concrete():
    b = Builder()
    x = b.input("x", T(F, "N", 3, "H", 32))
    w = b.const(np.zeros((8, 3, 3, 3), np.float32))
    c = b.op("Conv", [x, w], pads=[1, 1, 1, 1], strides=[2, 2])
    p = b.op("MaxPool", [c], kernel_shape=[2, 2], strides=[2, 2])
    r = b.op("ReduceMean", [p, b.const(np.array([1], np.int64))], keepdims=0)
    t = out_types(b.model(c, p, r))
    assert t[0] == T(F, "N", 8, "floor((H+1)/2)", 16)
    assert t[1].shape[1:] == (8, "floor((floor((H+1)/2))/2)", 8) or t[1].shape[3] == 8
    assert t[2].shape[0] == "N" and len(t[2].shape) == 3


# ---------------------------------------------------------------------- subgraphs, functions

def _branch(name: str, value: Value, op: str, **attrs) -> Graph:
    out = Value(f"{name}_out")
    g = Graph(name, nodes=[Node(op, [value], [out], attributes=[attr(k, v) for k, v in
                                                                 attrs.items()])])
    g.outputs = [out]
    return g


def test_if_merges_branches():
    b = Builder()
    c = b.input("c", T(B))
    x = b.input("x", T(F, 2, 3))
    same = b.op("If", [c], then_branch=_branch("t", x, "Relu"), else_branch=_branch("e", x, "Neg"))
    diff = b.op("If", [c], then_branch=_branch("t2", x, "Relu"),
                else_branch=_branch("e2", x, "Transpose"))
    m = infer_shapes(b.model(same, diff))
    assert m.graph.outputs[0].type == T(F, 2, 3)
    d = m.graph.outputs[1].type.shape
    assert len(d) == 2 and all(isinstance(v, str) for v in d)  # 2 vs 3, 3 vs 2: symbolic
    sub = m.graph.nodes[0].attributes["then_branch"].value
    assert sub.outputs[0].type == T(F, 2, 3)  # subgraph values annotated too


def test_loop_scan_outputs_and_carried_growth():
    b = Builder()
    x = b.input("x", T(F, 2))
    body = Graph("body")
    i, cond, acc = Value("i", T(I64)), Value("cond", T(B)), Value("acc")
    grown = Value("grown")
    cat = Node("Concat", [acc, x], [grown], attributes=[attr("axis", 0)])
    scan_out = Value("so")
    ident = Node("Identity", [x], [scan_out])
    body.append(cat)
    body.append(ident)
    body.inputs = [i, cond, acc]
    body.outputs = [cond, grown, scan_out]
    lp = b.op("Loop", [b.const(np.array(5, np.int64)), None, b.const(np.zeros(0, np.float32))], 2,
              body=body)
    t = out_types(b.model(*lp))
    assert len(t[0].shape) == 1 and not isinstance(t[0].shape[0], int)  # grows: symbolic
    assert t[1] == T(F, 5, 2)  # trip count 5, cond passed through


def test_scan_inserts_sequence_axis():
    b = Builder()
    init = b.input("init", T(F, 4))
    seq = b.input("seq", T(F, 7, 4))
    body = Graph("body")
    s_in, x_in = Value("s"), Value("xi")
    s_out, y = Value("s2"), Value("y")
    body.append(Node("Add", [s_in, x_in], [s_out]))
    body.append(Node("Identity", [s_out], [y]))
    body.inputs, body.outputs = [s_in, x_in], [s_out, y]
    outs = b.op("Scan", [init, seq], 2, body=body, num_scan_inputs=1)
    assert out_types(b.model(*outs)) == [T(F, 4), T(F, 7, 4)]


def test_function_inferred_per_call_site():
    fb = Graph("f")
    a, y = Value("a"), Value("y")
    fb.append(Node("Transpose", [a], [y]))
    fb.inputs, fb.outputs = [a], [y]
    fn = Function("local", "Tr", fb, opset_imports={"": 21})
    b = Builder()
    x1 = b.input("x1", T(F, 2, 3))
    x2 = b.input("x2", T(F, "N", 5, 7))
    o1 = b.op("Tr", [x1], domain="local")
    o2 = b.op("Tr", [x2], domain="local")
    m = b.model(o1, o2, functions=[fn])
    m.opset_imports["local"] = 1
    assert out_types(m) == [T(F, 3, 2), T(F, 7, 5, "N")]


def test_sequence_ops_track_elements():
    b = Builder()
    x = b.input("x", T(F, 2, 3))
    y = b.input("y", T(F, 4, 3))
    s = b.op("SequenceConstruct", [x, y])
    c = b.op("ConcatFromSequence", [s], axis=0)
    n = b.op("SequenceLength", [s])
    t = out_types(b.model(s, c, n))
    assert t[0] == SequenceType(TensorType(F, (None, 3))) or isinstance(t[0], SequenceType)
    assert t[1] == T(F, 6, 3) and t[2] == T(I64)


# ---------------------------------------------------------------------- merging, strict, inputs

def test_annotations_merge_and_strict_conflicts():
    b = Builder()
    x = b.input("x", T(F, "N", 3))
    r = b.op("Relu", [x])
    r.type = T(F, 5, None)  # declares N == 5: more specific, kept
    m = b.model(r)
    assert infer_shapes(m).graph.outputs[0].type == T(F, 5, 3)

    b = Builder()
    x = b.input("x", T(F, 2, 3))
    r = b.op("Relu", [x])
    r.type = T(F, 2, 4)
    m = b.model(r)
    with pytest.raises(ShapeInferenceError) as e:
        infer_shapes(m, strict=True)
    msg = str(e.value)
    assert r.name in msg and "Relu" in msg and "[2,4]" in msg and "[2,3]" in msg
    assert infer_shapes(m).graph.outputs[0].type == T(F, 2, 3)

    r.type = T(DataType.DOUBLE, 2, 3)
    with pytest.raises(ShapeInferenceError, match="element types"):
        infer_shapes(m, strict=True)
    r.type = T(F, 2, 3, 1)
    with pytest.raises(ShapeInferenceError, match="ranks"):
        infer_shapes(m, strict=True)


def test_input_shapes_and_caller_model_untouched():
    b = Builder()
    x = b.input("x", T(F, "N", "C"))
    r = b.op("Relu", [x])
    inter = b.op("Neg", [r])
    m = b.model(inter)
    out = infer_shapes(m, input_shapes={"x": [4, 5]})
    assert out.graph.outputs[0].type == T(F, 4, 5)
    assert out.graph.inputs[0].type == T(F, 4, 5)
    assert [v.name for v in out.graph.value_info] == [r.name]
    assert m.graph.inputs[0].type == T(F, "N", "C") and r.type is None and not m.graph.value_info
    with pytest.raises(InvalidArgument, match="'nope'"):
        infer_shapes(m, input_shapes={"nope": [1]})


def test_serialized_round_trip_keeps_value_info(tmp_path):
    b = Builder()
    x = b.input("x", T(F, "N", 3))
    r = b.op("Relu", [x])
    m = infer_shapes(b.model(b.op("Neg", [r])))
    path = tmp_path / "m.onnx"
    pyonnx.save(m, str(path))
    back = pyonnx.load(str(path))
    assert {v.name: v.type for v in back.graph.value_info} == {r.name: T(F, "N", 3)}


def test_cli_infer_shapes(tmp_path, capsys):
    from pyonnx.cli.main import main

    b = Builder()
    x = b.input("x", T(F, "N", 3))
    m = b.model(b.op("Relu", [x]))
    src, dst = tmp_path / "in.onnx", tmp_path / "out.onnx"
    pyonnx.save(m, str(src))
    assert main(["infer-shapes", str(src), "-o", str(dst), "--input-shape", "x=2,3"]) == 0
    assert pyonnx.load(str(dst)).graph.outputs[0].type == T(F, 2, 3)
    assert main(["infer-shapes", str(src), "-o", str(dst), "--input-shape", "y=1"]) == 1
    assert "'y'" in capsys.readouterr().err


# ---------------------------------------------------------------------- real models

@pytest.mark.skipif(not os.path.isdir(MODELS), reason="../shared/models is absent (it holds the "
                    "real models; see its README)")
@pytest.mark.parametrize("name,shapes", [
    ("bert_small.onnx", {"input_ids": [1, 128], "attention_mask": [1, 128]}),
    ("gpt2_small.onnx", {"input_ids": [1, 128]}),
    ("silero_vad_16k_op15.onnx", {"input": [1, 512], "state": [2, 1, 128], "sr": []}),
])
def test_real_models_fully_concrete_and_match_runtime(name, shapes):
    model = pyonnx.load(os.path.join(MODELS, name))
    out = infer_shapes(model, input_shapes=shapes, strict=True)
    values = [v for n in out.graph.nodes for v in n.outputs if v.name]
    assert all(isinstance(v.type, TensorType) and all(isinstance(d, int) for d in v.type.shape)
               for v in values)
    probe = pyonnx.load(os.path.join(MODELS, name))
    names = {v.name for v in probe.graph.outputs}
    probe.graph.outputs += [v for n in probe.graph.nodes for v in n.outputs
                            if v.name and v.name not in names]
    sess = pyonnx.InferenceSession(probe)
    rng = np.random.default_rng(0)
    feeds = {}
    for v in probe.graph.inputs:
        if v.name in shapes:
            dt = v.type.elem_type.numpy
            feeds[v.name] = (np.array(16000, dt) if v.name == "sr" else
                             rng.integers(0, 100, shapes[v.name]).astype(dt) if dt.kind in "iu"
                             else rng.standard_normal(shapes[v.name]).astype(dt))
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    by_name = {v.name: v.type.shape for v in values}
    for k, arr in got.items():
        if k in by_name:
            assert by_name[k] == arr.shape, k
