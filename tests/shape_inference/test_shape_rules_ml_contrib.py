"""Shape rules of the ai.onnx.ml, com.microsoft and ai.onnx.preview.training operators.

Each case is a tiny model run by pyonnx.InferenceSession: the types inferred for its outputs
must describe what the kernels return. Inputs carry a symbolic batch dim ``N``: an inferred dim
is an int equal to the run's, or an expression over the inputs' symbols that evaluates to it;
a fresh ``unk__`` symbol (a dim no fact determines) is accepted only where the case says the
dim depends on values. The same model with the inputs' concrete shapes (``input_shapes``) must
infer exactly the run's shapes. Models exported by skl2onnx (skipped without it) check every
value of the graph the same way.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

import pyonnx  # noqa: E402
from pyonnx.ir import DataType, MapType, SequenceType, TensorType  # noqa: E402
from pyonnx.shape_inference import infer_shapes  # noqa: E402
from pyonnx.shape_inference.registry import registered_rules  # noqa: E402
from pyonnx.shape_inference.symbolic import parse  # noqa: E402

ML, MS, TRAIN = "ai.onnx.ml", "com.microsoft", "ai.onnx.preview.training"
FL, I64, STR, U8, I8 = (TensorProto.FLOAT, TensorProto.INT64, TensorProto.STRING,
                        TensorProto.UINT8, TensorProto.INT8)

if (ML, "ZipMap", 1) not in registered_rules():
    pytest.skip("the shape-rule registry does not load rules_ml / rules_training yet "
                "(registry._ensure_loaded must import them)", allow_module_level=True)


# ---------------------------------------------------------------------- checking

def _eval_dim(d: str, bind: dict[str, int]) -> int | None:
    """The value of a symbolic dim under the inputs' bindings; None when it names a symbol
    that no input binds (a fresh ``unk__`` one)."""
    total = 0
    for mono, coef in parse(d).items():
        term = coef
        for atom in mono:
            if atom not in bind:
                return None
            term *= bind[atom]
        total += term
    return total


def _check_type(name: str, t: Any, value: Any, bind: dict[str, int],
                unknown: set[int]) -> None:
    if isinstance(value, list):  # a sequence (of maps, for ZipMap)
        assert isinstance(t, SequenceType), f"{name}: inferred {t}, ran a sequence"
        for item in value:
            _check_type(name + "[]", t.elem_type, item, bind, unknown)
        return
    if isinstance(value, dict):
        assert isinstance(t, MapType), f"{name}: inferred {t}, ran a map"
        for k, v in value.items():
            want = DataType.STRING if isinstance(k, str) else DataType.INT64
            assert t.key_type == want, f"{name}: key type {t.key_type}, ran {type(k)}"
            _check_type(name + "{}", t.value_type, np.asarray(v, np.float32), bind, unknown)
        return
    arr = np.asarray(value)
    assert isinstance(t, TensorType), f"{name}: inferred {t}, ran a tensor"
    assert t.elem_type == DataType.from_numpy(arr.dtype), \
        f"{name}: inferred {t.elem_type}, ran {arr.dtype}"
    assert t.shape is not None and len(t.shape) == arr.ndim, \
        f"{name}: inferred shape {t.shape}, ran {arr.shape}"
    for i, (d, n) in enumerate(zip(t.shape, arr.shape)):
        if isinstance(d, int):
            assert d == n, f"{name}: inferred {t.shape}, ran {arr.shape}"
            continue
        assert isinstance(d, str), f"{name}: dim {i} left None"
        v = _eval_dim(d, bind)
        if v is None:
            assert i in unknown, f"{name}: dim {i} is unknown ({d!r}); the run gave {n}"
        else:
            assert v == n, f"{name}: dim {i} is {d!r} = {v}; the run gave {n}"


def _bindings(model: pyonnx.ir.Model, feeds: dict[str, Any]) -> dict[str, int]:
    bind: dict[str, int] = {}
    for v in model.graph.inputs:
        if isinstance(v.type, TensorType) and v.type.shape is not None and v.name in feeds:
            for d, n in zip(v.type.shape, np.asarray(feeds[v.name]).shape):
                if isinstance(d, str):
                    assert bind.setdefault(d, n) == n, f"feeds disagree on {d}"
    return bind


def check(proto: Any, feeds: dict[str, Any], unknown: dict[str, set[int]] | None = None,
          every_value: bool = False) -> None:
    """Infer ``proto``'s types strictly (symbolic, then with concrete input shapes) and compare
    them with a run. ``unknown`` lists the dims (output name -> axes) that depend on values."""
    unknown = unknown or {}
    model = pyonnx.load(proto.SerializeToString())
    if every_value:
        names = {v.name for v in model.graph.outputs}
        model.graph.outputs += [v for n in model.graph.nodes for v in n.outputs
                                if v.name and v.name not in names]
    out_names = [v.name for v in model.graph.outputs]
    results = pyonnx.InferenceSession(model).run(None, feeds)
    bind = _bindings(model, feeds)
    symbolic = infer_shapes(model, strict=True)
    types = {v.name: v.type for v in symbolic.graph.outputs}
    for name, value in zip(out_names, results):
        _check_type(name, types[name], value, bind, unknown.get(name, set()))
    shapes = {v.name: list(np.asarray(feeds[v.name]).shape) for v in model.graph.inputs
              if isinstance(v.type, TensorType) and v.name in feeds}
    concrete = infer_shapes(model, input_shapes=shapes, strict=True)
    types = {v.name: v.type for v in concrete.graph.outputs}
    for name, value in zip(out_names, results):
        _check_type(name, types[name], value, {}, unknown.get(name, set()))


def model(nodes: list, inputs: list, outputs: list, inits: list | None = None,
          ml: int = 3, ms: bool = False, train: bool = False, ir: int = 10) -> Any:
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid(ML, ml)]
    if ms:
        opsets.append(helper.make_opsetid(MS, 1))
    if train:
        opsets.append(helper.make_opsetid(TRAIN, 1))
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits or [])
    return helper.make_model(g, opset_imports=opsets, ir_version=ir)


def tin(name: str, elem: int, shape: list) -> Any:
    return helper.make_tensor_value_info(name, elem, shape)


def tout(name: str) -> Any:
    """An output declared without a type: everything about it comes from inference."""
    return helper.make_value_info(name, onnx.TypeProto())


def const(name: str, arr: np.ndarray) -> Any:
    return onnx.numpy_helper.from_array(np.asarray(arr), name)


def node(op: str, ins: list[str], outs: list[str], domain: str = ML, **attrs: Any) -> Any:
    return helper.make_node(op, ins, outs, domain=domain, **attrs)


RNG = np.random.default_rng(0)


def rows(n: int, f: int, dtype: Any = np.float32) -> np.ndarray:
    return RNG.standard_normal((n, f)).astype(dtype)


# ---------------------------------------------------------------------- ai.onnx.ml: models

@pytest.mark.parametrize("intercepts,labels", [
    ([0.1, 0.2, 0.3], {"classlabels_ints": [3, 5, 7]}),
    ([0.5], {"classlabels_strings": ["no", "yes"]}),            # binary: two score columns
    (None, {"classlabels_ints": [0, 1, 2]}),                    # rows from coefficients / F
])
def test_linear_classifier(intercepts, labels):
    k = len(intercepts) if intercepts else 3
    attrs = dict(coefficients=RNG.standard_normal(4 * k).tolist(), **labels)
    if intercepts:
        attrs["intercepts"] = intercepts
    m = model([node("LinearClassifier", ["X"], ["Y", "Z"], post_transform="SOFTMAX", **attrs)],
              [tin("X", FL, ["N", 4])], [tout("Y"), tout("Z")])
    check(m, {"X": rows(5, 4)})


def test_linear_classifier_one_row_input():
    m = model([node("LinearClassifier", ["X"], ["Y", "Z"], coefficients=[1.0, 2.0, 3.0, 4.0],
                    intercepts=[0.0, 1.0], classlabels_ints=[0, 1])],
              [tin("X", FL, [2])], [tout("Y"), tout("Z")])
    check(m, {"X": np.array([0.5, -1.0], np.float32)})


def test_linear_regressor():
    m = model([node("LinearRegressor", ["X"], ["Y"], coefficients=RNG.standard_normal(6).tolist(),
                    intercepts=[1.0, 2.0], targets=2)],
              [tin("X", FL, ["N", 3])], [tout("Y")])
    check(m, {"X": rows(4, 3)})


def _svc(n_classes: int, proba: bool, vectors: bool, strings: bool) -> dict[str, Any]:
    f = 3
    labels = ({"classlabels_strings": [f"c{i}" for i in range(n_classes)]} if strings
              else {"classlabels_ints": list(range(n_classes))})
    a: dict[str, Any] = dict(kernel_type="RBF", kernel_params=[0.5, 0.0, 3.0], **labels)
    pairs = n_classes * (n_classes - 1) // 2
    if vectors:
        per = [2] * n_classes
        nv = sum(per)
        a.update(vectors_per_class=per, support_vectors=RNG.standard_normal(nv * f).tolist(),
                 coefficients=RNG.standard_normal((n_classes - 1) * nv).tolist(),
                 rho=RNG.standard_normal(pairs).tolist())
    else:
        a.update(coefficients=RNG.standard_normal(n_classes * f).tolist(), rho=[0.1],
                 kernel_type="LINEAR")
    if proba:
        a.update(prob_a=(-np.ones(pairs)).tolist(), prob_b=np.zeros(pairs).tolist())
    return a


@pytest.mark.parametrize("n_classes,proba,vectors,strings", [
    (3, False, True, False),   # one decision value per class pair
    (4, False, True, True),    # 6 pairs
    (2, False, True, False),   # binary: [-s, s]
    (3, True, True, True),     # probabilities: one per class
    (3, False, False, False),  # linear (no support vectors): one score per class
])
def test_svm_classifier(n_classes, proba, vectors, strings):
    m = model([node("SVMClassifier", ["X"], ["Y", "Z"],
                    **_svc(n_classes, proba, vectors, strings))],
              [tin("X", FL, ["N", 3])], [tout("Y"), tout("Z")])
    check(m, {"X": rows(5, 3)})


def test_svm_regressor():
    m = model([node("SVMRegressor", ["X"], ["Y"], n_supports=2, kernel_type="RBF",
                    kernel_params=[0.5, 0.0, 3.0], support_vectors=RNG.standard_normal(6).tolist(),
                    coefficients=[1.0, -1.0], rho=[0.2])],
              [tin("X", FL, ["N", 3])], [tout("Y")])
    check(m, {"X": rows(4, 3)})


_TREE = dict(nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[1, 0, 0],
             nodes_values=[0.0, 0.0, 0.0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
             nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0])


@pytest.mark.parametrize("labels", [{"classlabels_strings": ["a", "b", "c"]},
                                    {"classlabels_int64s": [10, 20]}])
def test_tree_ensemble_classifier(labels):
    k = len(next(iter(labels.values())))
    m = model([node("TreeEnsembleClassifier", ["X"], ["Y", "Z"], **_TREE, **labels,
                    class_treeids=[0] * k, class_nodeids=[1] * k, class_ids=list(range(k)),
                    class_weights=[0.5] * k)],
              [tin("X", FL, ["N", 2])], [tout("Y"), tout("Z")])
    check(m, {"X": rows(6, 2)})


def test_tree_ensemble_regressor():
    m = model([node("TreeEnsembleRegressor", ["X"], ["Y"], **_TREE, n_targets=2,
                    target_treeids=[0, 0, 0], target_nodeids=[1, 2, 2], target_ids=[0, 0, 1],
                    target_weights=[1.0, 2.0, 3.0])],
              [tin("X", FL, ["N", 2])], [tout("Y")])
    check(m, {"X": rows(6, 2)})


@pytest.mark.parametrize("dtype,elem", [(np.float32, FL), (np.float64, TensorProto.DOUBLE)])
def test_tree_ensemble_v5(dtype, elem):
    m = model([node("TreeEnsemble", ["X"], ["Y"], n_targets=3, nodes_featureids=[0],
                    nodes_splits=const("s", np.array([0.0], dtype)),
                    nodes_modes=const("m", np.array([0], np.uint8)), nodes_truenodeids=[0],
                    nodes_trueleafs=[1], nodes_falsenodeids=[1], nodes_falseleafs=[1],
                    tree_roots=[0], leaf_targetids=[0, 2],
                    leaf_weights=const("w", np.array([1.0, 2.0], dtype)))],
              [tin("X", elem, ["N", 2])], [tout("Y")], ml=5)
    check(m, {"X": rows(4, 2, dtype)})


# ---------------------------------------------------------------------- ai.onnx.ml: features

@pytest.mark.parametrize("op,attrs,dtype,elem", [
    ("Scaler", dict(offset=[1.0], scale=[2.0, 3.0]), np.int64, I64),
    ("Normalizer", dict(norm="L2"), np.float64, TensorProto.DOUBLE),
    ("Binarizer", dict(threshold=0.5), np.float32, FL),
    ("Imputer", dict(imputed_value_int64s=[7], replaced_value_int64=0), np.int64, I64),
])
def test_elementwise_transforms(op, attrs, dtype, elem):
    m = model([node(op, ["X"], ["Y"], **attrs)], [tin("X", elem, ["N", 2])], [tout("Y")])
    check(m, {"X": (rows(3, 2) * 3).astype(dtype)})


@pytest.mark.parametrize("ml,attrs,x", [
    (1, dict(classes_strings=["a", "b"]), np.array([["a", "z"]], object)),
    (1, dict(classes_strings=["a", "b"]), np.array([[0, 5], [1, 1]], np.int64)),
    (2, dict(keys_strings=["a", "b"], values_floats=[0.5, 1.5]), np.array([["a"], ["q"]], object)),
    (4, dict(keys_int64s=[1, 2], values_tensor=const("v", np.array([3, 4], np.int32))),
     np.array([[1, 2, 9]], np.int64)),
])
def test_label_encoder(ml, attrs, x):
    elem = STR if x.dtype == object else I64
    m = model([node("LabelEncoder", ["X"], ["Y"], **attrs)], [tin("X", elem, ["N", x.shape[1]])],
              [tout("Y")], ml=ml)
    check(m, {"X": x})


@pytest.mark.parametrize("x", [np.array([["a", "q"]], object), np.array([[1, 5]], np.int64)])
def test_category_mapper(x):
    elem = STR if x.dtype == object else I64
    m = model([node("CategoryMapper", ["X"], ["Y"], cats_strings=["a", "b"], cats_int64s=[1, 2])],
              [tin("X", elem, ["N", 2])], [tout("Y")])
    check(m, {"X": x})


def test_one_hot_encoder():
    m = model([node("OneHotEncoder", ["X"], ["Y"], cats_int64s=[1, 2, 4])],
              [tin("X", I64, ["N", 2])], [tout("Y")])
    check(m, {"X": np.array([[1, 4], [2, 2], [3, 1]], np.int64)})


@pytest.mark.parametrize("xshape,idx", [(["N", 5], [[0, 3]]), ([5], [4, 1, 1]),
                                        (["N", 2, 5], [2])])
def test_array_feature_extractor(xshape, idx):
    m = model([node("ArrayFeatureExtractor", ["X", "I"], ["Z"])], [tin("X", FL, xshape)],
              [tout("Z")], inits=[const("I", np.array(idx, np.int64))])
    shape = [3 if d == "N" else d for d in xshape]
    check(m, {"X": RNG.standard_normal(shape).astype(np.float32)})


@pytest.mark.parametrize("dims", [[2, 4], None])
def test_feature_vectorizer(dims):
    attrs = {"inputdimensions": dims} if dims else {}
    m = model([node("FeatureVectorizer", ["A", "B"], ["Y"], **attrs)],
              [tin("A", FL, ["N", 2]), tin("B", I64, ["N", 3])], [tout("Y")])
    check(m, {"A": rows(4, 2), "B": np.arange(12, dtype=np.int64).reshape(4, 3)})


# ---------------------------------------------------------------------- ai.onnx.ml: maps

def _map_input(name: str, key: int, value: int) -> Any:
    return helper.make_value_info(
        name, helper.make_map_type_proto(key, helper.make_tensor_type_proto(value, None)))


@pytest.mark.parametrize("key,vocab,feed", [
    (STR, {"string_vocabulary": ["a", "b", "c"]}, {"a": 1.5, "c": 2.0}),
    (I64, {"int64_vocabulary": [5, 6, 7, 8]}, {6: 0.5, 8: 1.0, 9: 3.0}),
])
def test_dict_vectorizer(key, vocab, feed):
    m = model([node("DictVectorizer", ["X"], ["Y"], **vocab)], [_map_input("X", key, FL)],
              [tout("Y")])
    check(m, {"X": feed})


@pytest.mark.parametrize("attrs,unknown", [
    (dict(cast_to="TO_FLOAT", map_form="SPARSE", max_map=6), {}),
    (dict(cast_to="TO_INT64"), {"Y": {1}}),   # DENSE: one column per map entry
    (dict(cast_to="TO_STRING", map_form="SPARSE", max_map=4), {}),
])
def test_cast_map(attrs, unknown):
    m = model([node("CastMap", ["X"], ["Y"], **attrs)], [_map_input("X", I64, FL)], [tout("Y")])
    check(m, {"X": {3: 1.5, 0: 2.25, 1: -1.0}}, unknown=unknown)


@pytest.mark.parametrize("labels", [{"classlabels_strings": ["x", "y", "z"]},
                                    {"classlabels_int64s": [1, 2, 3]}])
def test_zip_map(labels):
    m = model([node("ZipMap", ["X"], ["Z"], **labels)], [tin("X", FL, ["N", 3])], [tout("Z")])
    check(m, {"X": rows(4, 3)})
    out = infer_shapes(pyonnx.load(m.SerializeToString()), strict=True).graph.outputs[0].type
    key = DataType.STRING if "classlabels_strings" in labels else DataType.INT64
    assert out == SequenceType(MapType(key, TensorType(DataType.FLOAT, ())))


def test_unknown_stays_unknown():
    # without the vocabulary or labels inference says nothing it does not know
    m = model([node("LinearClassifier", ["X"], ["Y", "Z"], coefficients=[1.0] * 6,
                    classlabels_ints=[0, 1, 2])],
              [tin("X", FL, ["N", "F"])], [tout("Y"), tout("Z")])
    types = [v.type for v in infer_shapes(pyonnx.load(m.SerializeToString())).graph.outputs]
    assert types[0].shape == ("N",)
    z = types[1].shape
    assert z[0] == "N" and isinstance(z[1], str) and z[1].startswith("unk__")


def test_strict_rejects_rank_3_rows():
    m = model([node("LinearRegressor", ["X"], ["Y"], coefficients=[1.0, 2.0])],
              [tin("X", FL, [2, 2, 2])], [tout("Y")])
    with pytest.raises(pyonnx.ShapeInferenceError, match="1-D or 2-D"):
        infer_shapes(pyonnx.load(m.SerializeToString()), strict=True)


# ---------------------------------------------------------------------- com.microsoft

def _q(name: str, value: Any, dtype: Any) -> Any:
    return const(name, np.array(value, dtype))


QPARAMS = [_q("s", 0.05, np.float32), _q("z", 128, np.uint8), _q("s2", 0.1, np.float32),
           _q("z2", 100, np.uint8), _q("zi", 3, np.int8)]


def u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, shape).astype(np.uint8)


def ms(nodes: list, inputs: list, outputs: list, inits: list | None = None) -> Any:
    return model(nodes, inputs, outputs, inits=QPARAMS + (inits or []), ms=True)


@pytest.mark.parametrize("op,ins,attrs", [
    ("Inverse", [], {}),
    ("Trilu", [], {"upper": 0}),
    ("BiasAdd", ["B", "X"], {}),
    ("BiasSoftmax", ["B"], {"axis": -1}),
])
def test_contrib_float_same_shape(op, ins, attrs):
    inits = [const("B", RNG.standard_normal(3).astype(np.float32))]
    m = ms([node(op, ["X", *ins], ["Y"], domain=MS, **attrs)], [tin("X", FL, ["N", 3, 3])],
           [tout("Y")], inits)
    check(m, {"X": RNG.standard_normal((2, 3, 3)).astype(np.float32) + 3 * np.eye(3, dtype=np.float32)})


@pytest.mark.parametrize("op,attrs", [("QLinearSigmoid", {}), ("QLinearLeakyRelu", {"alpha": 0.2})])
def test_qlinear_unary(op, attrs):
    m = ms([node(op, ["X", "s", "z", "s2", "z2"], ["Y"], domain=MS, **attrs)],
           [tin("X", U8, ["N", 5])], [tout("Y")])
    check(m, {"X": u8(2, 5)})


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
def test_qlinear_binary(op):
    m = ms([node(op, ["A", "s", "z", "B", "s2", "z2", "s", "z"], ["C"], domain=MS)],
           [tin("A", U8, ["N", 1, 4]), tin("B", U8, [3, 1])], [tout("C")])
    check(m, {"A": u8(2, 1, 4), "B": u8(3, 1)})


def test_qlinear_concat():
    m = ms([node("QLinearConcat", ["s", "z", "A", "s2", "z2", "B", "s", "z"], ["Y"], domain=MS,
                 axis=1)],
           [tin("A", U8, ["N", 2, 3]), tin("B", U8, ["N", 4, 3])], [tout("Y")])
    check(m, {"A": u8(2, 2, 3), "B": u8(2, 4, 3)})


@pytest.mark.parametrize("zp", [True, False])
def test_contrib_quantize_dequantize(zp):
    q_in = ["X", "s", "zi"] if zp else ["X", "s"]
    m = ms([node("QuantizeLinear", q_in, ["Q"], domain=MS),
            node("DequantizeLinear", ["Q", "s2"], ["D"], domain=MS)],
           [tin("X", FL, ["N", 3])], [tout("Q"), tout("D")])
    check(m, {"X": rows(2, 3)})


def test_contrib_grid_sample():
    m = ms([node("GridSample", ["X", "G"], ["Y"], domain=MS, align_corners=1)],
           [tin("X", FL, ["N", 2, 5, 6]), tin("G", FL, ["N", 3, 4, 2])], [tout("Y")])
    check(m, {"X": RNG.standard_normal((2, 2, 5, 6)).astype(np.float32),
              "G": RNG.uniform(-1, 1, (2, 3, 4, 2)).astype(np.float32)})


@pytest.mark.parametrize("a,b,attrs", [
    (["N", 3, 4], [4, 5], {}),
    (["N", 4, 3], [5, 4], {"transA": 1, "transB": 1}),
    ([4, "N", 3], ["N", 3, 5], {"transBatchA": 1, "alpha": 2.0}),
    (["N", 2, 3], [3, 2, 5], {"transBatchB": 1}),
    ([3], ["N", 3, 5], {}),
])
def test_contrib_fused_matmul(a, b, attrs):
    m = ms([node("FusedMatMul", ["A", "B"], ["Y"], domain=MS, **attrs)],
           [tin("A", FL, a), tin("B", FL, b)], [tout("Y")])
    n = 2
    check(m, {"A": RNG.standard_normal([n if d == "N" else d for d in a]).astype(np.float32),
              "B": RNG.standard_normal([n if d == "N" else d for d in b]).astype(np.float32)})


def test_matmul_integer_to_float_and_dynamic_quantize_matmul():
    m = ms([node("MatMulIntegerToFloat", ["A", "W", "s", "s2", "z", "z2"], ["Y"], domain=MS),
            node("DynamicQuantizeMatMul", ["F", "W", "s2", "z2"], ["Z"], domain=MS)],
           [tin("A", U8, ["N", 2, 4]), tin("F", FL, ["M", 4])], [tout("Y"), tout("Z")],
           [const("W", u8(4, 6))])
    check(m, {"A": u8(3, 2, 4), "F": rows(5, 4)})


def test_matmul_nbits():
    k, n, block = 32, 5, 16
    m = ms([node("MatMulNBits", ["A", "B", "S"], ["Y"], domain=MS, K=k, N=n, block_size=block,
                 bits=4)],
           [tin("A", FL, ["N", 2, k])], [tout("Y")],
           [const("B", u8(n, k // block, block // 2)),
            const("S", RNG.uniform(0.01, 0.1, n * (k // block)).astype(np.float32))])
    check(m, {"A": RNG.standard_normal((3, 2, k)).astype(np.float32)})


@pytest.mark.parametrize("out,attrs", [([], {}), (["s", "zi"], {"transA": 1}),
                                       (["s"], {"transB": 1})])
def test_qgemm(out, attrs):
    a = [4, "N"] if attrs.get("transA") else ["N", 4]
    b = [6, 4] if attrs.get("transB") else [4, 6]
    ins = ["A", "s", "z", "B", "s2", "z2", "C", *out]
    m = ms([node("QGemm", ins, ["Y"], domain=MS, **attrs)], [tin("A", U8, a)], [tout("Y")],
           [const("B", u8(*b)), const("C", np.arange(6, dtype=np.int32))])
    check(m, {"A": u8(*[3 if d == "N" else d for d in a])})


@pytest.mark.parametrize("attrs", [
    dict(kernel_shape=[2, 2]),
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
    dict(kernel_shape=[2, 3], auto_pad="SAME_UPPER", dilations=[1, 2]),
])
def test_nhwc_max_pool(attrs):
    m = ms([node("NhwcMaxPool", ["X"], ["Y"], domain=MS, **attrs)],
           [tin("X", U8, ["N", 7, 8, 3])], [tout("Y")])
    check(m, {"X": u8(2, 7, 8, 3)})


@pytest.mark.parametrize("channels_last", [0, 1])
def test_qlinear_pools(channels_last):
    shape = ["N", 6, 7, 3] if channels_last else ["N", 3, 6, 7]
    m = ms([node("QLinearAveragePool", ["X", "s", "z", "s2", "z2"], ["P"], domain=MS,
                 kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 0],
                 channels_last=channels_last),
            node("QLinearGlobalAveragePool", ["X", "s", "z", "s2", "z2"], ["G"], domain=MS,
                 channels_last=channels_last)],
           [tin("X", U8, shape)], [tout("P"), tout("G")])
    check(m, {"X": u8(*[2 if d == "N" else d for d in shape])})


@pytest.mark.parametrize("direction,hidden_attr", [("forward", True), ("bidirectional", False)])
def test_dynamic_quantize_lstm(direction, hidden_attr):
    nd, hs, isz = (2 if direction == "bidirectional" else 1), 3, 4
    attrs: dict[str, Any] = {"direction": direction}
    if hidden_attr:
        attrs["hidden_size"] = hs
    inits = [const("W", u8(nd, isz, 4 * hs)), const("R", u8(nd, hs, 4 * hs)),
             _q("ws", [0.01] * nd, np.float32), _q("wz", [128] * nd, np.uint8),
             _q("rs", [0.02] * nd, np.float32), _q("rz", [120] * nd, np.uint8)]
    ins = ["X", "W", "R", "", "", "", "", "", "ws", "wz", "rs", "rz"]
    m = ms([node("DynamicQuantizeLSTM", ins, ["Y", "Yh", "Yc"], domain=MS, **attrs)],
           [tin("X", FL, ["S", "N", isz])], [tout("Y"), tout("Yh"), tout("Yc")], inits)
    check(m, {"X": RNG.standard_normal((5, 2, isz)).astype(np.float32)})


# ---------------------------------------------------------------------- ai.onnx.preview.training

@pytest.mark.parametrize("op,groups,attrs", [
    ("Adagrad", 3, {"decay_factor": 0.1}),
    ("Momentum", 3, {"alpha": 0.9, "beta": 0.1, "mode": "nesterov", "norm_coefficient": 0.0}),
    ("Adam", 4, {}),
])
def test_optimizers(op, groups, attrs):
    shapes = [["N", 3], [2]]
    ins, feeds, inputs = ["R", "T"], {}, []
    for g in range(groups):
        for j, s in enumerate(shapes):
            name = f"g{g}_{j}"
            ins.append(name)
            inputs.append(tin(name, FL, s))
            feeds[name] = np.abs(RNG.standard_normal([4 if d == "N" else d for d in s])
                                 ).astype(np.float32)
    n_out = (groups - 1) * len(shapes)
    outs = [f"o{i}" for i in range(n_out)]
    m = model([node(op, ins, outs, domain=TRAIN, **attrs)], inputs, [tout(o) for o in outs],
              inits=[const("R", np.array(0.1, np.float32)), const("T", np.array(1, np.int64))],
              train=True)
    check(m, feeds)


def test_gradient():
    nodes = [helper.make_node("Mul", ["a", "b"], ["c"]),
             helper.make_node("Sigmoid", ["c"], ["y"]),
             node("Gradient", ["a", "b"], ["da", "db"], domain=TRAIN, xs=["a", "b"], y="y")]
    # y is an output too: the session's dead-node elimination does not see that Gradient
    # reads the nodes computing y through its attribute
    m = model(nodes, [tin("a", FL, ["N", 3]), tin("b", FL, [3])],
              [tout("y"), tout("da"), tout("db")], train=True)
    check(m, {"a": rows(2, 3), "b": RNG.standard_normal(3).astype(np.float32)})


# ---------------------------------------------------------------------- skl2onnx models

def _sklearn_models() -> list[tuple[str, Any, Any, Any]]:
    """(name, fitted model, initial types, feed) for models covering the ml converters."""
    from skl2onnx.common.data_types import (
        DictionaryType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
    from sklearn import ensemble, feature_extraction, impute, linear_model, pipeline
    from sklearn import preprocessing, svm

    x = np.random.default_rng(1).standard_normal((40, 4)).astype(np.float32)
    y3 = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5)
    y2 = (x[:, 2] > 0).astype(int)
    yr = x @ np.array([1.0, -2.0, 0.5, 3.0])
    ft = [("X", FloatTensorType([None, 4]))]
    cats = np.random.default_rng(2).integers(0, 3, (40, 2)).astype(np.int64)
    out = [
        ("logreg_pipeline", pipeline.make_pipeline(
            impute.SimpleImputer(), preprocessing.StandardScaler(),
            linear_model.LogisticRegression(max_iter=200)).fit(x, y3), ft, x[:5]),
        ("linear_svc_strings", svm.LinearSVC().fit(x, np.array(["a", "b"])[y2]), ft, x[:5]),
        ("svc_proba", svm.SVC(probability=True, random_state=0).fit(x, y3), ft, x[:5]),
        ("svr", svm.SVR().fit(x, yr), ft, x[:5]),
        ("forest", ensemble.RandomForestClassifier(3, max_depth=3, random_state=0).fit(x, y3),
         ft, x[:5]),
        ("gbr", ensemble.GradientBoostingRegressor(n_estimators=3, max_depth=2).fit(x, yr),
         ft, x[:5]),
        ("linreg_normalizer", pipeline.make_pipeline(
            preprocessing.Normalizer(), preprocessing.Binarizer(threshold=0.1),
            linear_model.LinearRegression()).fit(x, yr), ft, x[:5]),
        ("one_hot", preprocessing.OneHotEncoder().fit(cats), [("X", Int64TensorType([None, 2]))],
         cats[:5]),
        ("label_encoder", preprocessing.LabelEncoder().fit(["b", "a", "c"]),
         [("X", StringTensorType([None]))], np.array(["c", "a", "q"], object)),
        ("dict_vectorizer", feature_extraction.DictVectorizer(sparse=False).fit(
            [{"a": 1.0, "b": 2.0}, {"c": 3.0}]),
         [("X", DictionaryType(StringTensorType([1]), FloatTensorType([1])))],
         {"a": 4.0, "c": 1.0}),
    ]
    return out


def test_skl2onnx_models_every_value():
    pytest.importorskip("sklearn", reason="scikit-learn is not installed (test extra)")
    skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx is not installed (test extra)")
    failures = []
    for name, est, types, feed in _sklearn_models():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proto = skl2onnx.to_onnx(est, initial_types=types,
                                     target_opset={"": 17, "ai.onnx.ml": 3})
        # skl2onnx may import a domain twice at one version; pyonnx refuses repeats
        seen, keep = set(), []
        for o in proto.opset_import:
            if (o.domain, o.version) not in seen:
                seen.add((o.domain, o.version))
                keep.append((o.domain, o.version))
        del proto.opset_import[:]
        for d, v in keep:
            proto.opset_import.add(domain=d, version=v)
        # the batch dim becomes the symbol N, so inference can relate it across the graph
        inp = proto.graph.input[0].type
        if inp.HasField("tensor_type") and inp.tensor_type.shape.dim:
            inp.tensor_type.shape.dim[0].dim_param = "N"
        try:
            check(proto, {"X": feed}, every_value=True)
        except AssertionError as e:
            failures.append(f"{name}: {e}")
    assert not failures, "\n".join(failures)
