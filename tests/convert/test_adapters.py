"""Unit tests of the opset converter: one small model per adapter, converted and run against the
original's outputs, plus the error cases (a typed error naming every node, nothing written)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyonnx
from pyonnx.cli.main import main
from pyonnx.convert import OpsetConversionError, convert_version
from pyonnx.errors import InvalidArgument, UnsupportedOperatorError

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, opset, inits=(), ir=None, functions=()):  # type: ignore[no-untyped-def]
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          functions=list(functions))
    m.ir_version = ir if ir is not None else min(pyonnx.convert.ir_version_for_opset(opset), 10)
    return m.SerializeToString()


def _vi(name, shape, dt=F):  # type: ignore[no-untyped-def]
    return helper.make_tensor_value_info(name, dt, shape)


def _run(model, feeds):  # type: ignore[no-untyped-def]
    return pyonnx.InferenceSession(model).run(None, feeds)


def _convert(model: bytes, target: int) -> bytes:
    """Convert, check with onnx's full checker, and return the bytes."""
    out = pyonnx.serialize(convert_version(model, target))
    proto = onnx.load_from_string(out)
    onnx.checker.check_model(proto, full_check=True)
    assert {o.domain: o.version for o in proto.opset_import}.get("", None) == target
    return out


def _same(model: bytes, target: int, feeds, ops_after=None):  # type: ignore[no-untyped-def]
    """Convert ``model`` to ``target``: outputs equal to the original's; returns the op types."""
    out = _convert(model, target)
    want = _run(model, feeds)
    got = _run(out, feeds)
    for w, g in zip(want, got):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=1e-5,
                                   atol=1e-6)
    ops = [n.op_type for n in onnx.load_from_string(out).graph.node]
    if ops_after is not None:
        for op in ops_after:
            assert op in ops, (op, ops)
    return ops


def _x(*shape):  # type: ignore[no-untyped-def]
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _const(name, arr):  # type: ignore[no-untyped-def]
    return numpy_helper.from_array(np.asarray(arr), name)


# ---- attribute <-> input moves -----------------------------------------------------------------

@pytest.mark.parametrize("src,dst", [(11, 13), (13, 11), (13, 7), (7, 21)])
def test_squeeze_unsqueeze_axes_move(src: int, dst: int) -> None:
    if src >= 13:
        nodes = [helper.make_node("Unsqueeze", ["x", "a"], ["u"]),
                 helper.make_node("Squeeze", ["u", "a"], ["y"])]
        inits = [_const("a", np.array([0], np.int64))]
    else:
        nodes = [helper.make_node("Unsqueeze", ["x"], ["u"], axes=[0]),
                 helper.make_node("Squeeze", ["u"], ["y"], axes=[0])]
        inits = []
    m = _model(nodes, [_vi("x", [2, 3])], [_vi("y", [2, 3])], src, inits)
    _same(m, dst, {"x": _x(2, 3)})


def test_reshape_allowzero_with_runtime_shape() -> None:
    # the shape keeps the input's own leading dims: a 0 there would be copied as 0 anyway
    inits = [_const("st", np.array([0], np.int64)), _const("en", np.array([2], np.int64)),
             _const("tail", np.array([2, 4], np.int64))]
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Slice", ["s", "st", "en"], ["lead"]),
             helper.make_node("Concat", ["lead", "tail"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"], allowzero=1)]
    m = _model(nodes, [_vi("x", ["batch", "seq", 8])], [_vi("y", ["batch", "seq", 2, 4])], 18,
               inits)
    _same(m, 13, {"x": _x(2, 3, 8)})
    dynamic = _model([helper.make_node("Reshape", ["x", "shape"], ["y"], allowzero=1, name="r")],
                     [_vi("x", [2, 3]), _vi("shape", [2], TensorProto.INT64)], [_vi("y", None)],
                     18)
    with pytest.raises(OpsetConversionError, match="'r' \\(Reshape\\).*allowzero"):
        convert_version(dynamic, 13)


def test_negative_axes_become_positive_below_11() -> None:
    m = _model([helper.make_node("Unsqueeze", ["x"], ["y"], axes=[-1])],
               [_vi("x", [2, 3])], [_vi("y", [2, 3, 1])], 11)
    out = _convert(m, 9)
    node = onnx.load_from_string(out).graph.node[0]
    assert list(node.attribute[0].ints) == [2]
    _same(m, 9, {"x": _x(2, 3)})


@pytest.mark.parametrize("dst", [7, 11, 13, 18, 21])
def test_split_forms(dst: int) -> None:
    m = _model([helper.make_node("Split", ["x"], ["a", "b"], axis=1, split=[1, 3])],
               [_vi("x", [2, 4])], [_vi("a", [2, 1]), _vi("b", [2, 3])], 11)
    _same(m, dst, {"x": _x(2, 4)})
    # equal parts without sizes: Split-18 needs num_outputs
    m = _model([helper.make_node("Split", ["x"], ["a", "b"], axis=1)],
               [_vi("x", [2, 4])], [_vi("a", [2, 2]), _vi("b", [2, 2])], 11)
    _same(m, dst, {"x": _x(2, 4)})


def test_split18_uneven_num_outputs_to_13() -> None:
    m = _model([helper.make_node("Split", ["x"], ["a", "b"], axis=0, num_outputs=2)],
               [_vi("x", [5])], [_vi("a", [3]), _vi("b", [2])], 18)
    _same(m, 13, {"x": _x(5)})


@pytest.mark.parametrize("dst", [7, 9, 10, 13])
def test_slice_attributes_and_inputs(dst: int) -> None:
    m = _model([helper.make_node("Slice", ["x"], ["y"], starts=[1, 0], ends=[3, -1], axes=[0, 1])],
               [_vi("x", [4, 5])], [_vi("y", [2, 4])], 9)
    _same(m, dst, {"x": _x(4, 5)})


def test_slice_steps_refused_below_10() -> None:
    inits = [_const(n, np.array(v, np.int64)) for n, v in
             (("s", [0]), ("e", [4]), ("a", [0]), ("st", [2]))]
    m = _model([helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"], name="sl")],
               [_vi("x", [4])], [_vi("y", [2])], 13, inits)
    with pytest.raises(OpsetConversionError, match="'sl' \\(Slice\\).*steps"):
        convert_version(m, 9)


@pytest.mark.parametrize("src,dst", [(7, 11), (11, 7), (18, 11), (18, 7)])
def test_pad_forms(src: int, dst: int) -> None:
    if src < 11:
        n = helper.make_node("Pad", ["x"], ["y"], pads=[0, 1, 0, 2], value=1.5)
        m = _model([n], [_vi("x", [2, 3])], [_vi("y", [2, 6])], src)
    else:
        pads = [1, 2] if src >= 18 else [0, 1, 0, 2]
        inits = [_const("p", np.array(pads, np.int64)), _const("v", np.array(1.5, np.float32))]
        names = ["x", "p", "v"]
        if src >= 18:
            inits.append(_const("ax", np.array([-1], np.int64)))
            names.append("ax")
        m = _model([helper.make_node("Pad", names, ["y"])], [_vi("x", [2, 3])],
                   [_vi("y", [2, 6])], src, inits)
    _same(m, dst, {"x": _x(2, 3)})


@pytest.mark.parametrize("src,dst", [(6, 11), (11, 7), (13, 7)])
def test_clip_forms(src: int, dst: int) -> None:
    if src < 11:
        m = _model([helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.5)],
                   [_vi("x", [5])], [_vi("y", [5])], src)
    else:
        inits = [_const("lo", np.array(-0.5, np.float32)), _const("hi", np.array(0.5, np.float32))]
        m = _model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
                   [_vi("x", [5])], [_vi("y", [5])], src, inits)
    _same(m, dst, {"x": _x(5)})


def test_clip_runtime_bound_refused_naming_the_node() -> None:
    m = _model([helper.make_node("Clip", ["x", "lo"], ["y"], name="clipper")],
               [_vi("x", [5]), _vi("lo", [])], [_vi("y", [5])], 13)
    with pytest.raises(OpsetConversionError) as e:
        convert_version(m, 10)
    assert "'clipper' (Clip)" in str(e.value) and "computed at run time" in str(e.value)
    assert isinstance(e.value, UnsupportedOperatorError)


@pytest.mark.parametrize("src,dst", [(7, 10), (7, 11), (11, 7)])
def test_topk_k_moves(src: int, dst: int) -> None:
    if src < 10:
        m = _model([helper.make_node("TopK", ["x"], ["v", "i"], k=2)],
                   [_vi("x", [3, 4])], [_vi("v", [3, 2]), _vi("i", [3, 2], TensorProto.INT64)], src)
    else:
        m = _model([helper.make_node("TopK", ["x", "k"], ["v", "i"])], [_vi("x", [3, 4])],
                   [_vi("v", [3, 2]), _vi("i", [3, 2], TensorProto.INT64)], src,
                   [_const("k", np.array([2], np.int64))])
    _same(m, dst, {"x": _x(3, 4)})


@pytest.mark.parametrize("op,boundary", [("ReduceSum", 13), ("ReduceMean", 18),
                                         ("ReduceMax", 18), ("ReduceL2", 18)])
@pytest.mark.parametrize("direction", ["up", "down"])
def test_reduce_axes_move(op: str, boundary: int, direction: str) -> None:
    if direction == "up":
        m = _model([helper.make_node(op, ["x"], ["y"], axes=[1], keepdims=0)],
                   [_vi("x", [2, 3, 4])], [_vi("y", [2, 4])], boundary - 1)
        ops = _same(m, boundary, {"x": _x(2, 3, 4)})
        assert "Constant" in ops
    else:
        m = _model([helper.make_node(op, ["x", "a"], ["y"], keepdims=0)],
                   [_vi("x", [2, 3, 4])], [_vi("y", [2, 4])], boundary,
                   [_const("a", np.array([-2], np.int64))])
        _same(m, 7 if op != "ReduceSum" else 9, {"x": _x(2, 3, 4)})


def test_reduce_noop_with_empty_axes_becomes_identity() -> None:
    m = _model([helper.make_node("ReduceSum", ["x"], ["y"], noop_with_empty_axes=1)],
               [_vi("x", [2, 3])], [_vi("y", [2, 3])], 13)
    ops = _same(m, 11, {"x": _x(2, 3)})
    assert ops == ["Identity"]


# ---- Softmax family axis meaning -----------------------------------------------------------------

@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_softmax_axis_meaning_up(op: str, axis: int) -> None:
    m = _model([helper.make_node(op, ["x"], ["y"], axis=axis)],
               [_vi("x", [2, 3, 4])], [_vi("y", [2, 3, 4])], 11)
    ops = _same(m, 13, {"x": _x(2, 3, 4)})
    assert ("Flatten" in ops) == (axis in (0, 1))


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_axis_meaning_down(op: str, axis: int) -> None:
    m = _model([helper.make_node(op, ["x"], ["y"], axis=axis)],
               [_vi("x", [2, 3, 4])], [_vi("y", [2, 3, 4])], 13)
    ops = _same(m, 7, {"x": _x(2, 3, 4)})
    assert ("Transpose" in ops) == (axis in (0, 1))


def test_softmax_down_unknown_rank_refused() -> None:
    m = _model([helper.make_node("Softmax", ["x"], ["y"], axis=0, name="sm")],
               [helper.make_tensor_value_info("x", F, None)], [_vi("y", None)], 13)
    with pytest.raises(OpsetConversionError, match="'sm' \\(Softmax\\).*rank"):
        convert_version(m, 11)


# ---- Upsample / Resize, Dropout, BatchNormalization, Scatter --------------------------------------

@pytest.mark.parametrize("dst", [9, 10, 11, 13, 19])
def test_upsample7_upgraded(dst: int) -> None:
    m = _model([helper.make_node("Upsample", ["x"], ["y"], scales=[1.0, 1.0, 2.0, 3.0])],
               [_vi("x", [1, 1, 2, 2])], [_vi("y", [1, 1, 4, 6])], 7)
    ops = _same(m, dst, {"x": _x(1, 1, 2, 2)})
    assert ("Resize" in ops) == (dst >= 10)


def test_resize_asymmetric_down_to_upsample() -> None:
    inits = [_const("s", np.array([1, 1, 2, 2], np.float32))]
    m = _model([helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest",
                                 coordinate_transformation_mode="asymmetric",
                                 nearest_mode="floor")],
               [_vi("x", [1, 1, 2, 2])], [_vi("y", [1, 1, 4, 4])], 13, inits)
    assert "Upsample" in _same(m, 9, {"x": _x(1, 1, 2, 2)})
    bad = _model([helper.make_node("Resize", ["x", "", "s"], ["y"], mode="linear", name="rs")],
                 [_vi("x", [1, 1, 2, 2])], [_vi("y", [1, 1, 4, 4])], 13, inits)
    with pytest.raises(OpsetConversionError, match="'rs' \\(Resize\\).*half_pixel"):
        convert_version(bad, 10)


@pytest.mark.parametrize("src,dst", [(10, 13), (13, 10), (13, 7)])
def test_dropout_ratio(src: int, dst: int) -> None:
    if src < 12:
        m = _model([helper.make_node("Dropout", ["x"], ["y"], ratio=0.3)],
                   [_vi("x", [4])], [_vi("y", [4])], src)
    else:
        m = _model([helper.make_node("Dropout", ["x", "r"], ["y"])], [_vi("x", [4])],
                   [_vi("y", [4])], src, [_const("r", np.array(0.3, np.float32))])
    _same(m, dst, {"x": _x(4)})


def test_batchnorm_training_mode_refused_and_inference_converted() -> None:
    inits = [_const(n, np.ones(3, np.float32)) for n in ("s", "b", "m", "v")]
    ok = _model([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])],
                [_vi("x", [2, 3, 4])], [_vi("y", [2, 3, 4])], 15, inits)
    for dst in (7, 9, 14):
        _same(ok, dst, {"x": _x(2, 3, 4)})
    train = _model([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"],
                                     ["y", "rm", "rv"], training_mode=1, name="bn")],
                   [_vi("x", [2, 3, 4])], [_vi("y", [2, 3, 4]), _vi("rm", [3]), _vi("rv", [3])],
                   15, inits)
    with pytest.raises(OpsetConversionError, match="'bn' \\(BatchNormalization\\)"):
        convert_version(train, 13)


def test_scatter_upgraded_to_scatter_elements() -> None:
    m = _model([helper.make_node("Scatter", ["x", "i", "u"], ["y"], axis=1)],
               [_vi("x", [2, 3]), _vi("i", [2, 1], TensorProto.INT64), _vi("u", [2, 1])],
               [_vi("y", [2, 3])], 9)
    feeds = {"x": _x(2, 3), "i": np.array([[0], [2]], np.int64), "u": _x(2, 1)}
    assert "ScatterElements" in _same(m, 13, feeds)


# ---- Cast / CastLike, Shape, Constant, types -----------------------------------------------------

def test_castlike_down_becomes_cast() -> None:
    m = _model([helper.make_node("CastLike", ["x", "t"], ["y"])],
               [_vi("x", [3]), _vi("t", [1], TensorProto.DOUBLE)],
               [_vi("y", [3], TensorProto.DOUBLE)], 15)
    assert _same(m, 13, {"x": _x(3), "t": np.zeros(1)}) == ["Cast"]


@pytest.mark.parametrize("src,dst", [(21, 28), (28, 21)])
@pytest.mark.parametrize("to", [TensorProto.FLOAT8E4M3FNUZ, TensorProto.FLOAT8E5M2FNUZ])
def test_cast_to_fnuz_infinity_meaning_across_24(src: int, dst: int, to: int) -> None:
    # saturating casts to FNUZ float8: +-Inf became +-max in opset 24 (NaN before)
    m = _model([helper.make_node("Cast", ["x"], ["y"], to=to)], [_vi("x", [5])],
               [_vi("y", [5], to)], src)
    x = np.array([np.inf, -np.inf, 1e6, np.nan, 1.5], np.float32)
    ops = _same(m, dst, {"x": x})
    assert ("Clip" in ops) == (dst < 24) and ("IsInf" in ops) == (dst >= 24)


def test_shape_start_end_down_becomes_slice() -> None:
    m = _model([helper.make_node("Shape", ["x"], ["y"], start=1, end=-1)],
               [_vi("x", [2, 3, 4, 5])], [_vi("y", [2], TensorProto.INT64)], 15)
    assert "Slice" in _same(m, 13, {"x": _x(2, 3, 4, 5)})


def test_int_constants_below_9_become_initializers_listed_as_inputs() -> None:
    m = _model([helper.make_node("Constant", [], ["s"], value=_const("s", np.array([3, 2],
                                                                                 np.int64))),
                helper.make_node("Reshape", ["x", "s"], ["y"])],
               [_vi("x", [6])], [_vi("y", [3, 2])], 13)
    out = _convert(m, 8)
    proto = onnx.load_from_string(out)
    assert proto.ir_version == 3
    assert {i.name for i in proto.graph.initializer} <= {i.name for i in proto.graph.input}
    assert [n.op_type for n in proto.graph.node] == ["Reshape"]
    np.testing.assert_array_equal(_run(out, {"x": _x(6)})[0], _x(6).reshape(3, 2))


def test_type_not_allowed_at_target_names_the_node() -> None:
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="r8")],
               [_vi("x", [3], TensorProto.INT8)], [_vi("y", [3], TensorProto.INT8)], 14)
    with pytest.raises(OpsetConversionError, match="'r8' \\(Relu\\).*tensor\\(int8\\)"):
        convert_version(m, 13)


# ---- decompositions of later operators --------------------------------------------------------

@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_decomposed(approximate: str) -> None:
    m = _model([helper.make_node("Gelu", ["x"], ["y"], approximate=approximate)],
               [_vi("x", [2, 5])], [_vi("y", [2, 5])], 20)
    ops = _same(m, 13, {"x": _x(2, 5)})
    assert "Gelu" not in ops and ("Erf" in ops) == (approximate == "none")


@pytest.mark.parametrize("dst", [11, 16])
def test_layer_norm_decomposed(dst: int) -> None:
    inits = [_const("s", np.linspace(0.5, 2, 4).astype(np.float32)),
             _const("b", np.linspace(-1, 1, 4).astype(np.float32))]
    m = _model([helper.make_node("LayerNormalization", ["x", "s", "b"], ["y", "mu", "inv"],
                                 axis=-1, epsilon=1e-3)],
               [_vi("x", [2, 3, 4])], [_vi("y", [2, 3, 4]), _vi("mu", [2, 3, 1]),
                                       _vi("inv", [2, 3, 1])], 17, inits)
    assert "LayerNormalization" not in _same(m, dst, {"x": _x(2, 3, 4)})


@pytest.mark.parametrize("op,src", [("HardSwish", 14), ("Mish", 18), ("Celu", 12)])
def test_activation_decomposed(op: str, src: int) -> None:
    m = _model([helper.make_node(op, ["x"], ["y"])], [_vi("x", [7])], [_vi("y", [7])], src)
    assert op not in _same(m, 9, {"x": _x(7) * 4})


@pytest.mark.parametrize("op", ["GreaterOrEqual", "LessOrEqual"])
def test_or_equal_decomposed(op: str) -> None:
    m = _model([helper.make_node(op, ["a", "b"], ["y"])], [_vi("a", [5]), _vi("b", [5])],
               [_vi("y", [5], TensorProto.BOOL)], 16)
    a = np.array([1, 2, 3, np.nan, 5], np.float32)
    b = np.array([2, 2, 2, 1, 6], np.float32)
    assert op not in _same(m, 11, {"a": a, "b": b})
    with pytest.raises(OpsetConversionError, match="Equal"):  # float Equal arrived in 11
        convert_version(m, 10)


@pytest.mark.parametrize("per_group_scale", [True, False])
def test_group_norm_across_21_and_decomposed(per_group_scale: bool) -> None:
    g, c = 2, 4
    if per_group_scale:
        s = np.array([0.5, 2.0], np.float32)
        b = np.array([0.1, -0.1], np.float32)
        src = 18
    else:
        s = np.array([0.5, 1.0, 2.0, 3.0], np.float32)
        b = np.array([0.1, 0.2, -0.1, 0.0], np.float32)
        src = 21
    m = _model([helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=g)],
               [_vi("x", [2, c, 3])], [_vi("y", [2, c, 3])], src,
               [_const("s", s), _const("b", b)])
    for dst in (17, 18 if src == 21 else 21):
        _same(m, dst, {"x": _x(2, c, 3)})


@pytest.mark.parametrize("rank,attrs,mask", [
    (4, {}, None), (4, {"is_causal": 1}, None), (4, {"softcap": 2.0, "scale": 0.3}, "bool"),
    (4, {}, "float"), (4, {}, "bool_row_masked"),
    (3, {"q_num_heads": 4, "kv_num_heads": 2}, None)])
def test_attention_decomposed(rank: int, attrs: dict, mask: str | None) -> None:
    b, s, l_, d = 2, 3, 5, 4
    hq, hkv = (4, 2) if rank == 3 else (2, 2)
    shapes = ([b, hq, s, d], [b, hkv, l_, d]) if rank == 4 else ([b, s, hq * d], [b, l_, hkv * d])
    ins = [_vi("q", shapes[0]), _vi("k", shapes[1]), _vi("v", shapes[1])]
    feeds = {"q": _x(*shapes[0]), "k": _x(*shapes[1]) * 0.5, "v": _x(*shapes[1]) + 1}
    names = ["q", "k", "v"]
    if mask in ("bool", "bool_row_masked"):
        ins.append(_vi("m", [s, l_], TensorProto.BOOL))
        feeds["m"] = np.random.default_rng(3).random((s, l_)) > 0.3
        feeds["m"][:, 0] = True
        if mask == "bool_row_masked":  # a query that may attend to nothing gets zeros
            feeds["m"][1] = False
        names.append("m")
    elif mask == "float":
        ins.append(_vi("m", [s, l_]))
        feeds["m"] = _x(s, l_)
        names.append("m")
    m = _model([helper.make_node("Attention", names, ["y"], **attrs)], ins,
               [_vi("y", shapes[0])], 23)
    assert "Attention" not in _same(m, 21, feeds)


# ---- subgraphs, functions, IR version, errors, CLI ----------------------------------------------

def test_if_branches_converted() -> None:
    def branch(axis: int, name: str) -> onnx.GraphProto:
        return helper.make_graph(
            [helper.make_node("ReduceSum", ["x", "ax"], [name], keepdims=0)], name, [],
            [_vi(name, [None])], initializer=[_const("ax", np.array([axis], np.int64))])

    m = _model([helper.make_node("If", ["c"], ["y"], then_branch=branch(0, "t"),
                                 else_branch=branch(1, "e"))],
               [_vi("c", [], TensorProto.BOOL), _vi("x", [2, 3])], [_vi("y", [None])], 13)
    for c in (True, False):
        _same(m, 11, {"c": np.array(c), "x": _x(2, 3)})


def test_model_local_function_converted() -> None:
    f = helper.make_function("local", "SumRows", ["x"], ["y"],
                             [helper.make_node("Constant", [], ["a"],
                                               value=_const("a", np.array([1], np.int64))),
                              helper.make_node("ReduceSum", ["x", "a"], ["y"], keepdims=0)],
                             [helper.make_opsetid("", 13)])
    g = helper.make_graph([helper.make_node("SumRows", ["x"], ["y"], domain="local")], "g",
                          [_vi("x", [2, 3])], [_vi("y", [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("local", 1)], functions=[f])
    m.ir_version = 8
    mb = m.SerializeToString()
    out = _same(mb, 11, {"x": _x(2, 3)})
    assert out == ["SumRows"]
    conv = onnx.load_from_string(_convert(mb, 11))
    assert conv.functions[0].opset_import[0].version == 11
    assert conv.ir_version >= 8
    assert [n.op_type for n in conv.functions[0].node] == ["ReduceSum"]


@pytest.mark.parametrize("dst", [7, 9, 13, 17, 21, 28])
def test_ir_version_follows_target(dst: int) -> None:
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [2])], [_vi("y", [2])], 13)
    out = onnx.load_from_string(_convert(m, dst))
    assert out.ir_version == pyonnx.convert.ir_version_for_opset(dst)


def test_every_refused_node_is_listed() -> None:
    m = _model([helper.make_node("Clip", ["x", "lo"], ["c"], name="c1"),
                helper.make_node("Unsqueeze", ["c", "ax"], ["y"], name="u1")],
               [_vi("x", [5]), _vi("lo", []), _vi("ax", [1], TensorProto.INT64)],
               [_vi("y", None)], 13)
    with pytest.raises(OpsetConversionError) as e:
        convert_version(m, 10)
    assert len(e.value.problems) == 2
    assert "'c1' (Clip)" in e.value.problems[0] and "'u1' (Unsqueeze)" in e.value.problems[1]


def test_target_out_of_range() -> None:
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [2])], [_vi("y", [2])], 13)
    for bad in (6, 29):
        with pytest.raises(InvalidArgument, match="target opset"):
            convert_version(m, bad)


def test_caller_model_untouched_and_alias_module() -> None:
    from pyonnx.version_converter import convert_version as alias

    model = pyonnx.load(_model([helper.make_node("ReduceSum", ["x"], ["y"], axes=[0])],
                               [_vi("x", [2])], [_vi("y", [1])], 11))
    out = alias(model, 13)
    assert model.opset("") == 11 and "axes" in model.graph.nodes[0].attributes
    assert out.opset("") == 13 and "axes" not in out.graph.nodes[0].attributes


def test_cli_converts_and_writes_nothing_on_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "good.onnx"
    good.write_bytes(_model([helper.make_node("ReduceSum", ["x"], ["y"], axes=[1])],
                            [_vi("x", [2, 3])], [_vi("y", [2, 1])], 11))
    assert main(["convert-opset", str(good), str(tmp_path / "out.onnx"), "--opset", "18"]) == 0
    assert onnx.load(str(tmp_path / "out.onnx")).opset_import[0].version == 18
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(_model([helper.make_node("Clip", ["x", "lo"], ["y"], name="clip7")],
                           [_vi("x", [5]), _vi("lo", [])], [_vi("y", [5])], 13))
    capsys.readouterr()
    assert main(["convert-opset", str(bad), str(tmp_path / "no.onnx"), "--opset", "9"]) == 1
    err = capsys.readouterr().err
    assert "pyonnx convert-opset: error:" in err and "'clip7' (Clip)" in err
    assert not (tmp_path / "no.onnx").exists()
