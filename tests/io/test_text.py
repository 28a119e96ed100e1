"""The ONNX textual syntax: to_text / parse_model round trips, errors, interop with onnx."""

from __future__ import annotations

import math
import os
import re

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyonnx.errors import DecodeError
from pyonnx.io import load, serialize
from pyonnx.io.serde import model_to_proto
from pyonnx.io.text import parse_function, parse_graph, parse_model, parse_node, to_text
from pyonnx.ir import (
    Attribute,
    AttributeType,
    DataType,
    Graph,
    MapType,
    Model,
    Node,
    OptionalType,
    SequenceType,
    SparseTensorType,
    Tensor,
    TensorType,
    Value,
)

SHARED = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                       "models"))


def canonical(model: Model) -> bytes:
    """The model's protobuf without what the syntax cannot hold (doc strings, denotations)."""
    mp = model_to_proto(model)

    def walk(msg, top: bool) -> None:  # type: ignore[no-untyped-def]
        for field, value in msg.ListFields():
            if field.name in ("doc_string", "metadata_props") and not top or \
                    field.name == "denotation":
                msg.ClearField(field.name)
            elif field.type == field.TYPE_MESSAGE:
                for item in [value] if hasattr(value, "ListFields") else value:
                    if hasattr(item, "ListFields"):
                        walk(item, field.name == "functions")

    walk(mp, True)
    return mp.SerializeToString(deterministic=True)


def roundtrip(text: str) -> Model:
    """Parse, print (lossless), parse again: the second text must equal the first print."""
    m = parse_model(text)
    printed = to_text(m, lossless=True)
    m2 = parse_model(printed)
    assert to_text(m2, lossless=True) == printed
    assert canonical(m2) == canonical(m)
    return m


FULL = r'''
<
  ir_version: 10,
  opset_import: ["" : 21, "com.x" : 1],
  producer_name: "prod \"q\"",
  producer_version: "1.2",
  domain: "ai.test",
  model_version: 7,
  doc_string: "a \\ model
over two lines",
  metadata_props: ["k1": "v1", "k 2": "v\"2"]
>
main (float[N, 3] X, int64[] Y, seq(float[?]) S, map(string, int64) M,
      optional(seq(int32[2])) O, sparse_tensor(float[4, 4]) SP, "x.1") => (float[N,3] Z, B)
   <float[3] w = {1.5, -0.25, 3e10}, float[N, 3] "my t", int64 k = {7}>
{
   # a comment
   [first] "my t" = Add (X, w)
   Z = Identity ("my t")
   B, "" = com.x.Custom:v2 <f: float = 2, i: int = -3, s: string = "a\"b\\c"> (X, "", "x.1")
   = com.x.Sink (B)
}
'''


def test_model_header_and_graph_round_trip() -> None:
    m = roundtrip(FULL)
    assert m.ir_version == 10 and m.opset_imports == {"": 21, "com.x": 1}
    assert m.producer_name == 'prod "q"' and m.producer_version == "1.2"
    assert m.domain == "ai.test" and m.model_version == 7
    assert m.doc_string == "a \\ model\nover two lines"
    assert m.metadata_props == {"k1": "v1", "k 2": 'v"2'}
    g = m.graph
    assert g.name == "main"
    ins = {v.name: v.type for v in g.inputs}
    assert ins["X"] == TensorType(DataType.FLOAT, ("N", 3))
    assert ins["Y"] == TensorType(DataType.INT64, None)
    assert ins["S"] == SequenceType(TensorType(DataType.FLOAT, (None,)))
    assert ins["M"] == MapType(DataType.STRING, TensorType(DataType.INT64, ()))
    assert ins["O"] == OptionalType(SequenceType(TensorType(DataType.INT32, (2,))))
    assert ins["SP"] == SparseTensorType(DataType.FLOAT, (4, 4))
    assert ins["x.1"] is None
    assert [v.name for v in g.outputs] == ["Z", "B"] and g.outputs[1].type is None
    np.testing.assert_array_equal(g.initializers["w"].const_value.numpy(),
                                  np.array([1.5, -0.25, 3e10], np.float32))
    assert g.initializers["k"].const_value.dims == ()
    assert g.value_info[0].name == "my t"
    assert g.value_info[0].type == TensorType(DataType.FLOAT, ("N", 3))
    first, _, custom, sink = g.nodes
    assert first.name == "first" and first.op_type == "Add"
    assert custom.domain == "com.x" and custom.overload == "v2"
    assert custom.inputs[1] is None and custom.outputs[1].name == ""
    assert custom.attributes["f"].type == AttributeType.FLOAT and custom.attributes["f"].value == 2.0
    assert custom.attributes["i"].value == -3
    assert custom.attributes["s"].value == 'a"b\\c'
    assert sink.outputs == [] and sink.inputs[0] is custom.outputs[0]


def test_every_attribute_type_round_trips() -> None:
    text = r'''
<ir_version: 10, opset_import: ["" : 21]>
g (float[2] x) => (float[2] y) {
   y = Custom <
      f1: float = 1e-45, f2: float = -inf, f3: float = nan, f4: float = 3.4028235e+38,
      f5 = 0.1, f6: float = INF, f7: float = -0, i1 = 9223372036854775807, i2: int = -9223372036854775808,
      s1 = "", s2: string = "tab\there # not a comment",
      t1 = float[2,2] {1, 2, 3, 4}, t2: tensor = int64 tname {5}, t3 = string[2] "nm" = {"a", ""},
      g1 = body (float v) => (float w) { w = Neg (v) },
      fs: floats = [1, 2.5, -inf], is = [1, -2, 3], ss = ["x", "y"], e1: ints = [], e2: strings = [],
      ts: tensors = [float[1] {1}, int8[2] {-1, 2}],
      gs: graphs = [a () => () { }, b (float q) => (q) { }],
      tp1: type_proto = seq(float[3]), tps: type_protos = [int64, map(int64, float)],
      sp: sparse_tensor = sparse_tensor(float[3,3]) {1.5, 2.5} @ int64[2] {0, 8},
      sps: sparse_tensors = [sparse_tensor(int64[4]) {7} @ int64[1,1] {3}]
   > (x)
}
'''
    m = roundtrip(text)
    a = m.graph.nodes[0].attributes
    T = AttributeType
    assert {k: v.type for k, v in a.items()} == {
        "f1": T.FLOAT, "f2": T.FLOAT, "f3": T.FLOAT, "f4": T.FLOAT, "f5": T.FLOAT,
        "f6": T.FLOAT, "f7": T.FLOAT, "i1": T.INT, "i2": T.INT, "s1": T.STRING, "s2": T.STRING,
        "t1": T.TENSOR, "t2": T.TENSOR, "t3": T.TENSOR, "g1": T.GRAPH, "fs": T.FLOATS,
        "is": T.INTS, "ss": T.STRINGS, "e1": T.INTS, "e2": T.STRINGS, "ts": T.TENSORS,
        "gs": T.GRAPHS, "tp1": T.TYPE_PROTO, "tps": T.TYPE_PROTOS, "sp": T.SPARSE_TENSOR,
        "sps": T.SPARSE_TENSORS}
    assert np.float32(a["f1"].value) == np.float32(1e-45) and a["f2"].value == -math.inf
    assert math.isnan(a["f3"].value) and a["f6"].value == math.inf
    assert math.copysign(1.0, a["f7"].value) == -1.0  # onnx.printer writes -0.0f as -0
    assert np.float32(a["f5"].value) == np.float32(0.1)
    assert a["i1"].value == 2**63 - 1 and a["i2"].value == -2**63
    assert a["s2"].value == "tabthere # not a comment"  # a backslash keeps the next char
    assert a["t2"].value.name == "tname" and a["t3"].value.name == "nm"
    assert list(a["t3"].value.numpy()) == ["a", ""]
    assert a["g1"].value.nodes[0].op_type == "Neg"
    assert [g.name for g in a["gs"].value] == ["a", "b"]
    assert a["fs"].value == [1.0, 2.5, -math.inf] and a["e1"].value == []
    assert a["ts"].value[1].numpy().tolist() == [-1, 2]
    assert a["tp1"].value == SequenceType(TensorType(DataType.FLOAT, (3,)))
    assert a["tps"].value[1] == MapType(DataType.INT64, TensorType(DataType.FLOAT, ()))
    dense = a["sp"].value.to_dense()
    assert dense[0, 0] == 1.5 and dense[2, 2] == 2.5 and dense.sum() == 4.0
    assert a["sps"].value[0].to_dense().tolist() == [0, 0, 0, 7]


def test_subgraph_reads_outer_values() -> None:
    text = '''
<ir_version: 10, opset_import: ["" : 21]>
g (bool c, float[2] x) => (float[2] y) {
   y = If (c) <then_branch: graph = t () => (float[2] o) { o = Neg (x) },
               else_branch: graph = e () => (float[2] o2) { o2 = Identity (x) }>
}
'''
    m = roundtrip(text)
    node = m.graph.nodes[0]
    then = node.attributes["then_branch"].value
    assert then.nodes[0].inputs[0] is m.graph.inputs[1]
    printed = to_text(m)
    assert printed.index("(c)") < printed.index("then_branch")  # inputs before subgraphs


def test_function_round_trip() -> None:
    text = r'''
<ir_version: 10, opset_import: ["" : 21, "local" : 1]>
g (float[2] x) => (float[2] y) {
   y = local.Scale <alpha: float = 2> (x)
}

<domain: "local", opset_import: ["" : 21], overload: "o1", doc_string: "scales">
Scale <alpha, beta: float = 0.5, "gamma"> (float[2] a) => (b)
<float[2] t>
{
   c = Constant <value_float: float = @alpha> ()
   t = Mul (a, c)
   b = Add <dummy: int = @gamma> (t, a)
}
'''
    m = roundtrip(text)
    (f,) = m.functions
    assert (f.domain, f.name, f.overload, f.doc_string) == ("local", "Scale", "o1", "scales")
    assert f.opset_imports == {"": 21}
    assert f.attributes == ["alpha", "gamma"]
    assert f.attribute_defaults["beta"].value == 0.5
    ref = f.graph.nodes[0].attributes["value_float"]
    assert ref.ref_attr_name == "alpha" and ref.type == AttributeType.FLOAT
    assert f.graph.nodes[2].attributes["dummy"].ref_attr_name == "gamma"
    assert {v.name: v.type for v in f.graph.value_info}["t"] == TensorType(DataType.FLOAT, (2,))
    f2 = parse_function(to_text(f, lossless=True))
    assert to_text(f2, lossless=True) == to_text(f, lossless=True)


def test_graph_and_node_entry_points() -> None:
    g = parse_graph('g (float[2] x) => (float[2] y) <float[2] b = {1, 2}> { y = Add (x, b) }')
    assert isinstance(g, Graph) and list(g.initializers) == ["b"]
    assert parse_graph(to_text(g)).nodes[0].op_type == "Add"
    n = parse_node('[nm] a, b = com.ms.Op <k: ints = [1, 2]> (x, "", z)')
    assert isinstance(n, Node) and n.name == "nm" and n.domain == "com.ms"
    assert [v.name if v else None for v in n.inputs] == ["x", None, "z"]
    assert to_text(n).strip() == '[nm] a, b = com.ms.Op <k: ints = [1, 2]> (x, "", z)'
    # attributes may follow the inputs, as onnx.parser allows
    assert parse_node("y = Cast (x) <to = 1>").attributes["to"].value == 1


# --------------------------------------------------------------------------- tensor values

def _arrays() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    f32 = rng.standard_normal(5000).astype(np.float32) * 1e3  # > 4096: the %.9g path
    f32[:7] = [np.inf, -np.inf, np.nan, 0.0, -0.0, np.float32(1e-45), -np.nan]
    small = np.array([0.1, 1 / 3, 1e-38, 3.4028235e38, -2.5, -np.nan], np.float32)
    f64 = rng.standard_normal(50) * 1e-300
    f64[:3] = [0.1, 5e-324, -np.inf]
    return [
        f32.reshape(50, 100), small, f64,
        np.array([[1 + 2j, -3.5 - 0.5j]], np.complex64), np.array([1e300j], np.complex128),
        np.array([-128, 0, 127], np.int8), np.array([0, 255], np.uint8),
        np.array([-32768, 32767], np.int16), np.array([65535, 0], np.uint16),
        np.array([-2**31, 2**31 - 1], np.int32), np.array([2**32 - 1], np.uint32),
        np.array([-2**63, 2**63 - 1], np.int64), np.array([2**64 - 1, 0], np.uint64),
        np.array([True, False, True]), np.array(np.float32(2.5)), np.zeros((0, 3), np.float32),
        np.array([1.5, -np.inf, np.nan, 65504], np.float16),
        np.array([1.5, -3e38, 1e-40], ml_dtypes.bfloat16),
        np.array([1.5, -448, 0.015625], ml_dtypes.float8_e4m3fn),
        np.array([1.5, -240], ml_dtypes.float8_e4m3fnuz),
        np.array([1.5, -57344, np.inf], ml_dtypes.float8_e5m2),
        np.array([2, -1.5], ml_dtypes.float8_e5m2fnuz),
        np.array([1, 2.0**-127, 2.0**127], ml_dtypes.float8_e8m0fnu),
        np.array([-8, 7, 1], ml_dtypes.int4), np.array([15, 0, 3, 4], ml_dtypes.uint4),
        np.array([-6, 0.5, 3], ml_dtypes.float4_e2m1fn),
        np.array([-2, 1, 0, 1, -1], ml_dtypes.int2), np.array([3, 2, 1], ml_dtypes.uint2),
        np.array([-7.5, 0.125], ml_dtypes.float6_e2m3fn),
        np.array([28, -0.0625], ml_dtypes.float6_e3m2fn),
        np.array([["a", 'q"uote'], ["back\\slash", "new\nline é"]], dtype=object),
    ]


def _model_with(arrays: list[np.ndarray]) -> Model:
    g = Graph("g")
    for i, a in enumerate(arrays):
        t = Tensor.from_numpy(a, f"t{i}")
        v = Value(f"t{i}", TensorType(t.data_type, t.dims), const_value=t)
        g.initializers[v.name] = v
        g.outputs.append(v)
    return Model(g, ir_version=11, opset_imports={"": 23})


def _bits(a: np.ndarray) -> bytes:
    return a.tobytes() if a.dtype != object else repr(a.tolist()).encode()


def test_initializer_values_are_bit_exact_for_every_element_type() -> None:
    arrays = _arrays()
    m = _model_with(arrays)
    text = to_text(m, lossless=True)
    m2 = parse_model(text)
    for i, a in enumerate(arrays):
        t = m2.graph.initializers[f"t{i}"].const_value
        got = t.numpy()
        assert got.dtype == a.dtype and got.shape == a.shape, i
        if a.dtype.kind == "f" and np.isnan(a.astype(np.float64)).any():
            nan = np.isnan(a.astype(np.float64))
            assert np.array_equal(nan, np.isnan(got.astype(np.float64)))
            assert np.array_equal(np.signbit(a.astype(np.float64)), np.signbit(
                got.astype(np.float64)))  # -nan keeps its sign
            assert _bits(got[~nan]) == _bits(a[~nan]), i
        else:
            assert _bits(got) == _bits(a), i
    assert to_text(m2, lossless=True) == text
    assert "float16[4] t16 =  {15872,64512,32256,31743}" in text  # bit patterns, as onnx
    assert "int4[3] t23 =  {120,1}" in text  # packed bytes, low nibble first


def test_values_written_across_lines_with_comments_parse() -> None:
    m = parse_model('g () => (x) <int64[4] x = {1,   # first\n 2,\n\n3, -4 }> {}')
    assert m.graph.initializers["x"].const_value.numpy().tolist() == [1, 2, 3, -4]


def test_max_elements_elides_for_reading_only() -> None:
    m = _model_with([np.arange(10, dtype=np.int64)])
    text = to_text(m, max_elements=3)
    assert "{0,1,2,...}" in text
    with pytest.raises(DecodeError, match="elided"):
        parse_model(text)
    assert "{0,1,2,3,4,5,6,7,8,9}" in to_text(m)


def test_external_data_reference(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "w.bin").write_bytes(np.array([1.5, 2.5], "<f4").tobytes())
    text = 'g () => (x) <float[2] x = ["location": "w.bin"]> {}'
    m = parse_model(text, base_dir=tmp_path)
    assert m.graph.initializers["x"].const_value.numpy().tolist() == [1.5, 2.5]
    with pytest.raises(DecodeError, match="external"):
        parse_model(text)


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("text, line, col, expected", [
    ("g (float x) => (y) {\n  y = Relu (x\n}", 3, 1, "',' or ')' after the node inputs"),
    ("<ir_version: 8, opset: []>\ng () => () {}", 1, 17, "a model header key"),
    ("g (float[2 x) => () {}", 1, 12, "',' or ']' in the shape"),
    ("g (flot[2] x) => () {}", 1, 8, "',' or ')' after the graph input"),
    ("g () -> () {}", 1, 6, "'=>'"),
    ("g () => (y) {\n y = Foo <a: intz = 1> ()\n}", 2, 14, "an attribute type"),
    ("g () => (y) <int64[2] w = {1, 2.5}> {}", 1, 31, "an integer"),
    ("g () => (y) <float[3] w = {1, 2}> {}", 1, 27, "has 2 values, but its type float[3]"),
    ("g () => (y) <int8[1] w = {300}> {}", 1, 26, "out of range for int8"),
    # onnx.parser accepts this and builds a tensor that onnx's own checker refuses
    ("g () => (y) <complex64[1] w = {0}> {}", 1, 31, "needs 2 (real, imaginary) numbers"),
    ("g () => (y) {\n y = Foo <a = []> ()\n}", 2, 15, "needs a type"),
    ("g () => (y) {\n y = Foo <a: int = 1.5> ()\n}", 2, 20, "declared int"),
    ('g () => (y) { y = Foo <a = "open> () }', 1, 28, "not closed"),
    ("g () => (y) {\n y = Foo ()\n", 3, 1, "a node or '}'"),
    ("g () => () {} trailing", 1, 23, "'(' and the inputs of function 'trailing'"),
])
def test_parse_errors_name_line_column_and_expectation(text: str, line: int, col: int,
                                                       expected: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_model(text)
    message = str(info.value)
    assert message.startswith(f"line {line}, column {col}:"), message
    assert expected in message, message


def test_error_shows_the_line_and_a_caret() -> None:
    with pytest.raises(DecodeError) as info:
        parse_model("g (float x) => (y) {\n  y = Relu (x\n}")
    assert info.value.args[0].splitlines()[1:] == ["  }", "  ^"]


# --------------------------------------------------------------------------- onnx interop

onnx = pytest.importorskip("onnx")
import onnx.parser  # noqa: E402
import onnx.printer  # noqa: E402


def test_onnx_parser_reads_our_text_and_we_read_onnx_printer() -> None:
    text = to_text(parse_model(FULL.replace(", sparse_tensor(float[4, 4]) SP", "")))
    om = onnx.parser.parse_model(text)
    assert om.producer_name == 'prod "q"' and om.graph.node[2].overload == "v2"
    assert list(om.graph.node[2].input) == ["X", "", "x.1"]
    mine = parse_model(onnx.printer.to_text(om))
    assert canonical(mine) == canonical(parse_model(text))


def test_onnx_reads_our_bit_patterns() -> None:
    arrays = [a for a in _arrays() if a.dtype.itemsize > 0 and a.dtype != object and
              a.dtype.kind != "c" and a.dtype.name not in ("int2", "uint2", "float6_e2m3fn",
                                                             "float6_e3m2fn")]
    om = onnx.parser.parse_model(to_text(_model_with(arrays), lossless=True))
    from onnx import numpy_helper
    for a, t in zip(arrays, om.graph.initializer):
        got = numpy_helper.to_array(t)
        assert got.shape == a.shape, t.name
        if a.dtype.kind == "f" or a.dtype.kind == "V":
            np.testing.assert_array_equal(got.astype(np.float64), a.astype(np.float64),
                                          err_msg=t.name)
        else:
            np.testing.assert_array_equal(got.astype(a.dtype), a, err_msg=t.name)


# --------------------------------------------------------------------------- real models

_SHARED_MODELS = ["silero_vad.onnx", "magika_standard_v3_3.onnx", "vit_tiny.onnx"]


@pytest.mark.skipif(not os.path.isdir(SHARED),
                    reason=f"{SHARED} is absent: the shared real models live beside the project "
                           f"checkout in CI and development, not in a fresh clone")
@pytest.mark.parametrize("name", _SHARED_MODELS)
def test_shared_model_round_trip(name: str) -> None:
    m = load(os.path.join(SHARED, name))
    text = to_text(m, lossless=True)
    m2 = parse_model(text)
    assert canonical(m2) == canonical(m)
    assert serialize(m2) == serialize(parse_model(to_text(m2, lossless=True)))


# --------------------------------------------------------------------------- CLI

def test_cli_print_and_parse(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from pyonnx.cli.main import main

    model = parse_model(FULL)
    src = tmp_path / "m.onnx"
    src.write_bytes(serialize(model))
    assert main(["print", str(src)]) == 0
    text = capsys.readouterr().out
    assert text == to_text(load(str(src))) + "\n"
    (tmp_path / "m.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "back.onnx"
    assert main(["parse", str(tmp_path / "m.txt"), "-o", str(out)]) == 0
    assert canonical(load(str(out))) == canonical(model)
    (tmp_path / "bad.txt").write_text("g () => (y) {\n y = \n}", encoding="utf-8")
    assert main(["parse", str(tmp_path / "bad.txt"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "bad.txt: line 3, column 1: expected an operator name" in err


# --------------------------------------------------------------------------- property test

_OPS = ["Add", "Relu", "Concat", "Custom", "com.x.Fancy"]
_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}|[a-z]+[./:-][a-z0-9]+", fullmatch=True)
_FLOAT = st.floats(width=32, allow_nan=False) | st.just(math.nan)
_STR = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
_DTYPES = [np.float32, np.float64, np.int64, np.int8, np.uint16, np.bool_, np.float16,
           ml_dtypes.bfloat16, ml_dtypes.int4, ml_dtypes.float8_e5m2]
_SCALAR_TYPES = [DataType.FLOAT, DataType.INT64, DataType.STRING, DataType.BFLOAT16]


@st.composite
def _tensors(draw) -> Tensor:  # type: ignore[no-untyped-def]
    dtype = draw(st.sampled_from(_DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    raw = draw(st.binary(min_size=8 * math.prod(shape), max_size=8 * math.prod(shape)))
    arr = np.frombuffer(raw, np.uint8)[: np.dtype(dtype).itemsize * math.prod(shape)]
    arr = arr.view(dtype).reshape(shape) if np.dtype(dtype) != np.bool_ else \
        (arr % 2).astype(np.bool_).reshape(shape)
    if np.dtype(dtype).name in ("int4",):
        arr = (arr.view(np.int8) % 8).astype(dtype)
    if arr.dtype.kind == "f" and arr.dtype.itemsize >= 4:  # the syntax keeps a NaN's sign only
        arr = np.where(np.isnan(arr), np.copysign(np.nan, np.signbit(arr) * -2.0 + 1), arr
                       ).astype(dtype)
    return Tensor.from_numpy(arr.copy(), draw(st.sampled_from(["", "t", "a b"])))


def _types() -> st.SearchStrategy:
    dims = st.lists(st.one_of(st.integers(0, 9), st.sampled_from(["N", "seq len"]), st.none()),
                    max_size=3).map(tuple)
    tensor = st.builds(TensorType, st.sampled_from(_SCALAR_TYPES), st.none() | dims)
    return st.recursive(tensor, lambda inner: st.one_of(
        st.builds(SequenceType, inner), st.builds(OptionalType, inner),
        st.builds(MapType, st.sampled_from([DataType.INT64, DataType.STRING]), inner)),
        max_leaves=3)


def _attribute_values(depth: int) -> st.SearchStrategy:
    T = AttributeType
    options = [
        st.tuples(st.just(T.FLOAT), _FLOAT), st.tuples(st.just(T.INT), st.integers(-2**63, 2**63 - 1)),
        st.tuples(st.just(T.STRING), _STR), st.tuples(st.just(T.TENSOR), _tensors()),
        st.tuples(st.just(T.FLOATS), st.lists(_FLOAT, max_size=3)),
        st.tuples(st.just(T.INTS), st.lists(st.integers(-5, 5), max_size=3)),
        st.tuples(st.just(T.STRINGS), st.lists(_STR, max_size=3)),
        st.tuples(st.just(T.TENSORS), st.lists(_tensors(), max_size=2)),
        st.tuples(st.just(T.TYPE_PROTO), _types()),
        st.tuples(st.just(T.TYPE_PROTOS), st.lists(_types(), max_size=2)),
    ]
    if depth < 1:
        options.append(st.tuples(st.just(T.GRAPH), _graphs(depth + 1)))
        options.append(st.tuples(st.just(T.GRAPHS), st.lists(_graphs(depth + 1), max_size=2)))
    return st.one_of(options)


@st.composite
def _graphs(draw, depth: int = 0) -> Graph:  # type: ignore[no-untyped-def]
    g = Graph(draw(_NAME.filter(lambda s: re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s) is not None
                                and s.lower() not in ("inf", "nan", "infinity"))))
    known: list[Value] = []
    for i in range(draw(st.integers(0, 2))):
        v = Value(f"in{depth}_{i}", draw(st.none() | _types()))
        g.inputs.append(v)
        known.append(v)
    if draw(st.booleans()):
        t = draw(_tensors())
        v = Value(f"w{depth}", TensorType(t.data_type, t.dims), const_value=t)
        g.initializers[v.name] = v
        known.append(v)
    for k in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(_OPS))
        domain, _, op_type = op.rpartition(".")
        ins = [draw(st.sampled_from(known)) if known and draw(st.booleans()) else None
               for _ in range(draw(st.integers(0, 3)))]
        outs = [Value(draw(_NAME) + f"_{depth}_{k}_{j}" if draw(st.integers(0, 4)) else "")
                for j in range(draw(st.integers(0, 2)))]
        attrs = []
        for j in range(draw(st.integers(0, 3))):
            kind, value = draw(_attribute_values(depth))
            attrs.append(Attribute(f"a{j}", kind, value))
        node = Node(op_type, ins, outs, domain=domain, attributes=attrs,
                    name=draw(st.sampled_from(["", "n", "n.1 x"])))
        g.append(node)
        known.extend(v for v in outs if v.name)
    for v in known[-2:]:
        if v not in g.outputs:
            g.outputs.append(v)
    return g


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_graphs())
def test_random_graphs_round_trip_through_text(graph: Graph) -> None:
    model = Model(graph, ir_version=10, opset_imports={"": 21, "com.x": 1})
    text = to_text(model, lossless=True)
    again = parse_model(text)
    assert to_text(again, lossless=True) == text
    assert canonical(again) == canonical(model)


# --------------------------------------------------------------------------- onnx.printer parity
# to_text writes what onnx.printer.to_text writes for the same model, byte for byte; with
# lossless=True it also writes what onnx drops (4/2-bit and complex tensors print as "...", an
# empty string list prints without its opening bracket, sparse tensors and function attribute
# defaults are left out): see pyonnx.io.text_printer.


def _onnx_text(model: Model) -> str:
    return onnx.printer.to_text(onnx.ModelProto.FromString(serialize(model)))


def test_to_text_matches_onnx_printer_on_every_backend_node_model() -> None:
    from onnx.backend.test.case.node import collect_testcases

    differ = []
    cases = collect_testcases(None)
    assert len(cases) > 1000  # the whole node suite, not a silent subset
    for case in cases:
        mine = to_text(load(case.model.SerializeToString()))
        if mine != onnx.printer.to_text(case.model):
            differ.append(case.name)
    assert differ == []


def test_parse_model_reads_onnx_printer_text_as_onnx_parser_does() -> None:
    from onnx.backend.test.case.node import collect_testcases

    differ = []
    for case in collect_testcases(None)[::7]:  # every 7th case keeps the test short
        text = onnx.printer.to_text(case.model)
        expected = onnx.printer.to_text(onnx.parser.parse_model(text))
        got = onnx.printer.to_text(onnx.ModelProto.FromString(serialize(parse_model(text))))
        if got != expected:
            differ.append(case.name)
    assert differ == []


@pytest.mark.skipif(not os.path.isdir(SHARED),
                    reason=f"{SHARED} is absent: the shared real models live beside the project "
                           f"checkout in CI and development, not in a fresh clone")
# the smaller real models: printing every float of vit_tiny takes long, and adds no new form
@pytest.mark.parametrize("name", ["silero_vad.onnx", "silero_vad_16k_op15.onnx",
                                  "magika_standard_v3_3.onnx"])
def test_to_text_matches_onnx_printer_on_shared_models(name: str) -> None:
    om = onnx.load(os.path.join(SHARED, name))
    # a string field that is set but empty prints in onnx ('doc_string: ""'); the IR keeps no
    # difference between empty and unset, so the comparison clears such fields first
    for field in ("producer_name", "producer_version", "domain", "doc_string"):
        if om.HasField(field) and not getattr(om, field):
            om.ClearField(field)
    assert to_text(load(om.SerializeToString())) == onnx.printer.to_text(om)


@pytest.mark.parametrize(("value", "text"), [
    (0.0, "0"), (-0.0, "-0"), (1.5, "1.5"), (0.1, "0.1"), (1e-4, "1e-04"), (0.001, "0.001"),
    (100000.0, "1e+05"), (123456.0, "123456"), (1e10, "1e+10"), (3.4028234663852886e38,
    "3.4028235e+38"), (1e-45, "1e-45"), (math.inf, "inf"), (-math.inf, "-inf"),
    (math.nan, "nan"), (-math.nan, "-nan")])
def test_floats_are_written_as_cpp_to_chars_writes_them(value: float, text: str) -> None:
    from pyonnx.io.text_printer import format_float

    assert format_float(value) == text


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(width=32), min_size=1, max_size=20),
       st.lists(st.floats(), min_size=1, max_size=20))
def test_float_values_print_as_onnx_prints_them(f32: list[float], f64: list[float]) -> None:
    # NaN payloads have no spelling (both printers write nan / -nan): keep the default NaN
    a32 = np.array([math.copysign(math.nan, x) if math.isnan(x) else x for x in f32], np.float32)
    a64 = np.array([math.copysign(math.nan, x) if math.isnan(x) else x for x in f64], np.float64)
    g = Graph("g")
    for name, arr in (("a", a32), ("b", a64)):
        v = Value(name, TensorType(DataType.from_numpy(arr.dtype), arr.shape),
                  const_value=Tensor.from_numpy(arr, name))
        g.initializers[name] = v
        g.outputs.append(v)
    g.append(Node("Constant", [], [Value("c", None)], attributes=[
        Attribute("value_floats", AttributeType.FLOATS, [float(x) for x in a32])]))
    model = Model(g, ir_version=10, opset_imports={"": 21})
    assert to_text(model) == _onnx_text(model)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(_graphs())
def test_random_graphs_print_as_onnx_prints_them(graph: Graph) -> None:
    model = Model(graph, ir_version=10, opset_imports={"": 21, "com.x": 1})
    assert to_text(model) == _onnx_text(model)


FEATURES = '''<ir_version: 10, opset_import: ["" : 21, "local" : 1], producer_name: "p",
  model_version: 3, doc_string: "d", metadata_props: ["k": "v"]>
main (float[N,3] x, opaque(test.domain,MyType) o, seq(float[]) s) => (float[N,3] seq, y)
  <float[2] w = {1.5, -0}, string[1] names = {"a\\"b"}, float[N,3] mid>
{
  [n1] mid = Add (x, x)
  seq = local.Twice:v2 <alpha: float = 0.5> (mid)
  y = If (c) <then_branch: graph = t () => (float a) { a = Identity (x) },
              else_branch: graph = e () => (float b) <float[1] q = {1e10}> {
                 b = Identity (q) }>
}
<domain: "local", overload: "v2", opset_import: ["" : 21]>
Twice <alpha> (X) => (Y)
{
  Y = Add (X, X)
}
'''


def test_model_features_print_as_onnx_prints_them() -> None:
    model = parse_model(FEATURES)
    text = to_text(model)
    assert text == _onnx_text(model)
    assert "(float[N,3] seq,  y)" in text and "opaque(test.domain,MyType) o" in text
    assert canonical(parse_model(text)) == canonical(model)


def test_what_onnx_drops_is_written_and_reads_back() -> None:
    text = '''<ir_version: 10, opset_import: ["" : 21, "local" : 1]>
g (int4[3] x) => (y) <int4[3] w = {120, 1}, sparse_tensor(float[4]) sp = {2} @ int64[1] {3}> {
  y = local.F <names: strings = []> (x, w, sp)
}
<domain: "local", opset_import: ["" : 21], doc_string: "why">
F <names, alpha: float = 2> (a, b, c) => (z)
<float[3] t>
{
  z = Identity (a)
}
'''
    model = parse_model(text)
    printed = to_text(model, lossless=True)
    assert "int4[3] w =  {120,1}" in printed and "names: strings = []" in printed
    assert "sparse_tensor(float[4]) sp = {2} @ int64[1] {3}" in printed
    assert '<names,alpha: float = 2>' in printed and 'doc_string: "why"' in printed
    assert canonical(parse_model(printed)) == canonical(model)


def test_int4_values_are_packed_bytes_that_onnx_reads_back() -> None:
    from onnx import numpy_helper

    values = np.array([1, -2, 7, -8, 3], dtype=ml_dtypes.int4)
    model = _model_with([values])
    text = to_text(model, lossless=True)
    assert "int4[5] t0 =  {225,135,3}" in text  # two values a byte, the first in the low nibble
    got = numpy_helper.to_array(onnx.parser.parse_model(text).graph.initializer[0])
    assert got.astype(np.int8).tolist() == [1, -2, 7, -8, 3]


def test_value_names_that_are_keywords_stay_readable() -> None:
    g = Graph("g")
    x = Value("float", None)  # no type: a bare 'float' would read as a type
    g.inputs.append(x)
    seq = Value("seq", TensorType(DataType.FLOAT, (1,)))
    g.append(Node("Identity", [x], [seq]))
    g.outputs.append(seq)
    text = to_text(Model(g, ir_version=10, opset_imports={"": 21}), lossless=True)
    # ( "float"): onnx's spacing for a value written without a type
    assert 'g ( "float") => (float[1] seq)' in text and "seq = Identity (float)" in text
    back = parse_model(text).graph
    assert [v.name for v in back.inputs] == ["float"] and back.nodes[0].outputs[0].name == "seq"


# every place where onnx.printer drops information (issue 18): the default text is onnx's,
# lossless=True keeps the information
ONNX_DROPS = '''<ir_version: 10, opset_import: ["" : 21, "local" : 1, "a-b.c" : 1]>
float (int4[3] x, nan) => (y, z)
   <int4[3] w = {120, 1}, uint2[2] u = {9}, complex64[1] c = {1, -2},
    string[0] none = {}, sparse_tensor(float[4]) sp = {2} @ int64[1] {3}>
{
  y = local.F <names: strings = []> (x, w, sp)
  z = "a-b.c"."My-Op" <"my-attr": int = 1,
                     s: sparse_tensor = sparse_tensor(float[2]) {1} @ int64[1] {0}> (nan)
}
<domain: "local", opset_import: ["" : 21], doc_string: "why">
F <names, alpha: float = 2> (a, b, c) => (r)
<float[3] t>
{
  r = LeakyRelu <alpha = @alpha> (a)
}
'''


def test_default_text_is_onnx_printers_even_where_onnx_drops_data() -> None:
    model = parse_model(ONNX_DROPS)
    text = to_text(model)
    assert text == _onnx_text(model)
    assert "<int4[3] w = ..., uint2[2] u = ..., complex64[1] c = ..., string[0] none = }>" \
        in text  # and the sparse initializer is left out
    assert "sparse_tensor" not in text.replace("s: sparse_tensor = >", "")
    assert "names: strings = ]" in text and 'doc_string: "why"' not in text
    assert "F <names>(a, b, c) => (r)\n{" in text  # no attribute default, no value_info
    assert "alpha: undefined = @alpha" in text
    assert "float (int4[3] x,  nan)" in text and 'a-b.c.My-Op <my-attr: int = 1' in text


def test_lossless_text_keeps_what_onnx_drops() -> None:
    model = parse_model(ONNX_DROPS)
    text = to_text(model, lossless=True)
    assert text != to_text(model)
    assert "int4[3] w =  {120,1}, uint2[2] u =  {9}, complex64[1] c =  {1,-2}" in text
    assert "string[0] none = {}" in text and "names: strings = []" in text
    assert "sparse_tensor(float[4]) sp = {2} @ int64[1] {3}" in text
    assert 'doc_string: "why"' in text and "<names,alpha: float = 2>" in text
    assert "alpha = @alpha" in text
    assert '"float" (int4[3] x,  "nan")' in text and '"a-b.c"."My-Op" <"my-attr"' in text
    assert canonical(parse_model(text)) == canonical(model)


def test_onnx_printers_left_out_values_are_refused_with_a_pointer_to_lossless() -> None:
    model = parse_model(ONNX_DROPS)
    with pytest.raises(DecodeError, match=r"values of tensor 'w' were left out \('\.\.\.', as "
                                          r"onnx.printer writes int4 tensors\).*lossless=True"):
        parse_model(to_text(model))
    with pytest.raises(onnx.parser.ParseError):  # onnx's parser refuses it as well
        onnx.parser.parse_model(to_text(model))
    attr = 'g () => () { y = Constant <value: tensor = complex64[1] v...> () }'
    with pytest.raises(DecodeError, match="values of tensor 'v' were left out"):
        parse_graph(attr)


def test_cli_print_is_onnx_text_unless_lossless(tmp_path, capsys):  # type: ignore[no-untyped-def]
    from pyonnx.cli.main import main

    model = parse_model(ONNX_DROPS)
    src = tmp_path / "m.onnx"
    src.write_bytes(serialize(model))
    assert main(["print", str(src)]) == 0
    assert capsys.readouterr().out == _onnx_text(model) + "\n"
    assert main(["print", "--lossless", str(src)]) == 0
    assert capsys.readouterr().out == to_text(model, lossless=True) + "\n"


def test_every_element_type_prints_as_onnx_prints_it() -> None:
    # all 30 element types, as initializers and as a TENSORS attribute; onnx writes '...' for
    # the 4-bit, 2-bit, 6-bit and complex ones
    model = _model_with(_arrays())
    model.graph.append(Node("Foo", [], [Value("attr_out", None)], domain="com.x", attributes=[
        Attribute("ts", AttributeType.TENSORS, [Tensor.from_numpy(a, f"a{i}")
                                                for i, a in enumerate(_arrays())])]))
    model.opset_imports["com.x"] = 1
    text = to_text(model)
    assert text == _onnx_text(model)
    for name in ("int4", "uint2", "float6e2m3", "float4e2m1", "complex64", "complex128"):
        assert re.search(rf"<{name}\[\d+\] t\d+ = \.\.\.>|, {name}\[[\d,]+\] t\d+ = \.\.\.", text)


def test_header_fields_stated_with_their_default_print_as_onnx_prints_them() -> None:
    text = '''<ir_version: 10, opset_import: ["" : 21], producer_name: "", domain: "ai.onnx",
  model_version: 0, doc_string: "">
g () => () { }
'''
    model = parse_model(text)
    assert model.stated_fields == {"producer_name", "domain", "model_version", "doc_string"}
    printed = to_text(model)
    assert printed == _onnx_text(model) == onnx.printer.to_text(onnx.parser.parse_model(text))
    assert 'producer_name: "",\n   domain: "ai.onnx",\n   model_version: 0,\n   doc_string: ""' \
        in printed and "producer_version" not in printed
    bare = parse_model('<ir_version: 10, opset_import: ["" : 21]>\ng () => () { }')
    assert bare.stated_fields == set() and "model_version" not in to_text(bare)
