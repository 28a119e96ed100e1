"""ai.onnx.ml kernels on hand-built one-node models, compared with onnxruntime, and error paths.

Random tree ensembles exercise every node mode, NaN routing, base values, the aggregate
functions, the post transforms and onnxruntime's two-class conventions; the preprocessing
operators are checked on the edge cases the backend suite does not cover.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto as TP  # noqa: E402
from onnx import helper as oh  # noqa: E402

import pyonnx  # noqa: E402
from pyonnx.errors import ExecutionError, PyOnnxError, UnsupportedOperatorError  # noqa: E402
from pyonnx.ops.ml import linear, preprocessing, tree, zipmap  # noqa: E402

ort.set_default_logger_severity(3)
ML = "ai.onnx.ml"
MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]
VALUES = np.array([-1, -0.5, 0, 0.5, 1], np.float32)  # thresholds and inputs share values


def _model(node: Any, inputs: list[Any], outputs: list[Any], ml_opset: int = 3) -> bytes:
    g = oh.make_graph([node], "g", inputs, outputs)
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", 17), oh.make_opsetid(ML, ml_opset)])
    return m.SerializeToString()


def _both(model: bytes, feeds: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    ref = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
    got = pyonnx.InferenceSession(model).run(None, feeds)
    return ref, got


def _close(got: Any, ref: Any) -> None:
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape and got.dtype == ref.dtype, (got.shape, got.dtype, ref.shape,
                                                               ref.dtype)
    if ref.dtype.kind == "f":
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, ref)


def _random_forest(rng: np.random.Generator, n_trees: int, n_features: int, n_targets: int,
                   mixed: bool, positive: bool, one_target: int | None) -> tuple[dict, dict]:
    """Trees in the (tree id, node id) encoding with random modes, thresholds and weights."""
    nodes: dict[str, list] = {k: [] for k in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
        "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true")}
    leaves: dict[str, list] = {"treeids": [], "nodeids": [], "ids": [], "weights": []}
    mode0 = str(rng.choice(MODES))
    for t in range(n_trees):
        depth = int(rng.integers(0, 4))
        queue, nxt = [(0, 0)], 1
        while queue:
            node, d = queue.pop(0)
            leaf = d >= depth or (d > 0 and rng.random() < 0.3)
            nodes["nodes_treeids"].append(t)
            nodes["nodes_nodeids"].append(node)
            nodes["nodes_featureids"].append(0 if leaf else int(rng.integers(0, n_features)))
            nodes["nodes_values"].append(0.0 if leaf else float(rng.choice(VALUES)))
            nodes["nodes_missing_value_tracks_true"].append(int(rng.integers(0, 2)))
            if leaf:
                nodes["nodes_modes"].append("LEAF")
                nodes["nodes_truenodeids"].append(0)
                nodes["nodes_falsenodeids"].append(0)
                k = int(rng.integers(1, min(2, n_targets) + 1))
                targets = ([one_target] if one_target is not None
                           else rng.choice(n_targets, size=k, replace=False))
                for c in targets:
                    leaves["treeids"].append(t)
                    leaves["nodeids"].append(node)
                    leaves["ids"].append(int(c))
                    w = rng.random() if positive else rng.normal()
                    leaves["weights"].append(float(np.round(w, 3)))
            else:
                nodes["nodes_modes"].append(str(rng.choice(MODES)) if mixed else mode0)
                nodes["nodes_truenodeids"].append(nxt)
                nodes["nodes_falsenodeids"].append(nxt + 1)
                queue += [(nxt, d + 1), (nxt + 1, d + 1)]
                nxt += 2
    return nodes, leaves


def _inputs(rng: np.random.Generator, n: int, f: int, dtype: Any = np.float32) -> np.ndarray:
    x = rng.choice(np.append(VALUES, np.nan), size=(n, f)).astype(dtype)
    x[: n // 2, 0] += rng.normal(size=n // 2).astype(dtype)
    return x


@pytest.mark.parametrize("seed", range(4))
def test_tree_ensemble_classifier_matches_onnxruntime(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(20):
        n_classes = int(rng.choice([2, 2, 3]))
        one = int(rng.integers(0, 2)) if n_classes == 2 and rng.random() < 0.6 else None
        nodes, leaves = _random_forest(rng, int(rng.integers(1, 5)), 3, n_classes,
                                       rng.random() < 0.5, rng.random() < 0.5, one)
        transform = str(rng.choice(["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"]))
        n_base = int(rng.choice(([0, 2] if one is None else [0, 1, 2]) if n_classes == 2
                                else [0, n_classes]))
        kw: dict[str, Any] = dict(nodes, class_treeids=leaves["treeids"],
                                  class_nodeids=leaves["nodeids"], class_ids=leaves["ids"],
                                  class_weights=leaves["weights"], post_transform=transform)
        if n_base:
            kw["base_values"] = [float(v) for v in np.round(rng.normal(size=n_base), 2)]
        strings = rng.random() < 0.3
        if strings:
            kw["classlabels_strings"] = [f"c{i}" for i in range(n_classes)]
        else:
            kw["classlabels_int64s"] = list(range(n_classes))
        node = oh.make_node("TreeEnsembleClassifier", ["X"], ["Y", "Z"], domain=ML, **kw)
        model = _model(node, [oh.make_tensor_value_info("X", TP.FLOAT, [None, 3])], [
            oh.make_tensor_value_info("Y", TP.STRING if strings else TP.INT64, [None]),
            oh.make_tensor_value_info("Z", TP.FLOAT, [None, n_classes])])
        ref, got = _both(model, {"X": _inputs(rng, 40, 3)})
        _close(got[0], ref[0])
        if transform == "PROBIT" and n_classes == 2:
            # onnxruntime leaves the second column unset for a lone PROBIT score.
            ref[1], got[1] = ref[1][:, :1], got[1][:, :1]
        _close(got[1], ref[1])


@pytest.mark.parametrize("seed", range(3))
def test_tree_ensemble_regressor_matches_onnxruntime(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for _ in range(20):
        n_targets = int(rng.choice([1, 3]))
        nodes, leaves = _random_forest(rng, int(rng.integers(1, 5)), 3, n_targets,
                                       rng.random() < 0.5, False, None)
        kw: dict[str, Any] = dict(
            nodes, target_treeids=leaves["treeids"], target_nodeids=leaves["nodeids"],
            target_ids=leaves["ids"], target_weights=leaves["weights"], n_targets=n_targets,
            post_transform=str(rng.choice(["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO",
                                           "PROBIT"])),
            aggregate_function=str(rng.choice(["SUM", "AVERAGE", "MIN", "MAX"])))
        if rng.random() < 0.5:
            kw["base_values"] = [float(v) for v in np.round(rng.normal(size=n_targets), 2)]
        double = rng.random() < 0.3
        if double:  # v3: double thresholds and weights, double input
            kw["nodes_values_as_tensor"] = oh.make_tensor(
                "v", TP.DOUBLE, [len(kw["nodes_values"])], kw.pop("nodes_values"))
            kw["target_weights_as_tensor"] = oh.make_tensor(
                "w", TP.DOUBLE, [len(kw["target_weights"])], kw.pop("target_weights"))
        node = oh.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain=ML, **kw)
        model = _model(node, [oh.make_tensor_value_info("X", TP.DOUBLE if double else TP.FLOAT,
                                                        [None, 3])],
                       [oh.make_tensor_value_info("Y", TP.FLOAT, [None, n_targets])])
        ref, got = _both(model, {"X": _inputs(rng, 40, 3, np.float64 if double else np.float32)})
        _close(got[0], ref[0])


def test_tree_ensemble_5_all_modes_and_membership() -> None:
    """TreeEnsemble 5: every mode including BRANCH_MEMBER, NaN routing, leaf-only trees."""
    rng = np.random.default_rng(7)
    # Tree 0: node0 x0 <= 0 ? node1 : node2; node1: x1 in {1, 3} ? L0 : L1 (NaN -> true);
    # node2: x2 != 0.5 ? L2 : node3; node3: x0 > 1 ? L3 : L4. Tree 1: a single leaf (L5).
    # Tree 2: node4 x1 >= 2 ? L6 : node5; node5: x2 == 1 (member {1}) ? L7 : node6;
    # node6: x0 < -1 ? L8 : L9.
    kw = dict(
        nodes_featureids=[0, 1, 2, 0, 1, 2, 0, 0],
        nodes_modes=oh.make_tensor("m", TP.UINT8, [8], [0, 6, 5, 3, 2, 6, 1, 4]),
        nodes_splits=oh.make_tensor("s", TP.FLOAT, [8], [0, 0, 0.5, 1, 2, 0, -1, 9]),
        nodes_truenodeids=[1, 0, 2, 3, 6, 7, 8, 5],
        nodes_trueleafs=[0, 1, 1, 1, 1, 1, 1, 1],
        nodes_falsenodeids=[2, 1, 3, 4, 5, 6, 9, 5],
        nodes_falseleafs=[0, 1, 0, 1, 0, 0, 1, 1],
        nodes_missing_value_tracks_true=[0, 1, 0, 1, 0, 0, 1, 0],
        membership_values=oh.make_tensor("mv", TP.FLOAT, [4], [1, 3, np.nan, 1]),
        tree_roots=[0, 7, 4],
        leaf_targetids=[0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
        leaf_weights=oh.make_tensor("w", TP.FLOAT, [10], list(range(1, 11))),
        n_targets=2)
    x = rng.choice(np.array([-2, -1, 0, 0.5, 1, 2, 3, np.nan], np.float32), size=(64, 3))
    def model(aggregate: int, transform: int) -> bytes:
        node = oh.make_node("TreeEnsemble", ["X"], ["Y"], domain=ML,
                            aggregate_function=aggregate, post_transform=transform, **kw)
        return _model(node, [oh.make_tensor_value_info("X", TP.FLOAT, [None, 3])],
                      [oh.make_tensor_value_info("Y", TP.FLOAT, [None, 2])], ml_opset=5)

    for aggregate in range(4):
        for transform in range(5):
            # The spec numbers SOFTMAX 1 and LOGISTIC 2; onnxruntime 1.32 reads the codes in its
            # own enum order (1 LOGISTIC, 2 SOFTMAX), so its reference runs with them swapped.
            ort_code = {1: 2, 2: 1}.get(transform, transform)
            ref = ort.InferenceSession(model(aggregate, ort_code),
                                       providers=["CPUExecutionProvider"]).run(None, {"X": x})
            got = pyonnx.InferenceSession(model(aggregate, transform)).run(None, {"X": x})
            _close(got[0], ref[0])


def test_tree_ensemble_5_float16_and_double() -> None:
    kw = dict(nodes_featureids=[0], nodes_truenodeids=[0], nodes_trueleafs=[1],
              nodes_falsenodeids=[1], nodes_falseleafs=[1], tree_roots=[0],
              leaf_targetids=[0, 0], n_targets=1)
    for dtype, et in ((np.float16, TP.FLOAT16), (np.float64, TP.DOUBLE)):
        out = tree.tree_ensemble(np.array([[0.25], [0.75]], dtype),
                                 nodes_modes=np.array([0], np.uint8),
                                 nodes_splits=np.array([0.5], dtype),
                                 leaf_weights=np.array([1.5, -2.0], dtype), **kw)[0]
        assert out.dtype == dtype and out.shape == (2, 1)
        np.testing.assert_array_equal(out[:, 0], np.array([1.5, -2.0], dtype))


def test_linear_and_svm_post_transforms_match_onnxruntime() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    for transform in ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"):
        for n_targets, labels in ((1, [0, 1]), (3, [4, 5, 6])):
            coef = [float(v) for v in rng.normal(size=4 * n_targets) * 0.3]
            node = oh.make_node("LinearClassifier", ["X"], ["Y", "Z"], domain=ML,
                                coefficients=coef, intercepts=[0.1] * n_targets,
                                classlabels_ints=labels, post_transform=transform)
            width = 2 if n_targets == 1 and len(labels) == 2 else n_targets
            model = _model(node, [oh.make_tensor_value_info("X", TP.FLOAT, [None, 4])], [
                oh.make_tensor_value_info("Y", TP.INT64, [None]),
                oh.make_tensor_value_info("Z", TP.FLOAT, [None, width])], ml_opset=1)
            if transform == "PROBIT" and width == 2:
                continue  # onnxruntime writes an undefined second column there
            ref, got = _both(model, {"X": x * 0.1})
            _close(got[0], ref[0])
            _close(got[1], ref[1])
        node = oh.make_node("LinearRegressor", ["X"], ["Y"], domain=ML, targets=2,
                            coefficients=[float(v) for v in rng.normal(size=8) * 0.2],
                            intercepts=[0.2, -0.1], post_transform=transform)
        model = _model(node, [oh.make_tensor_value_info("X", TP.FLOAT, [None, 4])],
                       [oh.make_tensor_value_info("Y", TP.FLOAT, [None, 2])], ml_opset=1)
        ref, got = _both(model, {"X": x * 0.1})
        _close(got[0], ref[0])
    # SVMClassifier without support vectors (liblinear mode), binary and multiclass.
    for labels in ([0, 1], [0, 1, 2]):
        coef = [float(v) for v in rng.normal(size=4 * len(labels))]
        node = oh.make_node("SVMClassifier", ["X"], ["Y", "Z"], domain=ML, coefficients=coef,
                            rho=[0.3], classlabels_ints=labels, kernel_type="LINEAR",
                            kernel_params=[0.0, 0.0, 0.0])
        model = _model(node, [oh.make_tensor_value_info("X", TP.FLOAT, [None, 4])], [
            oh.make_tensor_value_info("Y", TP.INT64, [None]),
            oh.make_tensor_value_info("Z", TP.FLOAT, [None, len(labels)])], ml_opset=1)
        ref, got = _both(model, {"X": x})
        _close(got[0], ref[0])
        _close(got[1], ref[1])


def _one(op: str, attrs: dict, feeds: list[Any], in_types: list[Any], out_types: list[Any],
         ml_opset: int = 1) -> bytes:
    ins = [oh.make_value_info(f"x{i}", t) for i, t in enumerate(in_types)]
    outs = [oh.make_value_info(f"y{i}", t) for i, t in enumerate(out_types)]
    node = oh.make_node(op, [f"x{i}" for i in range(len(feeds))],
                        [f"y{i}" for i in range(len(out_types))], domain=ML, **attrs)
    return _model(node, ins, outs, ml_opset)


def _tt(et: int) -> Any:
    return oh.make_tensor_type_proto(et, None)


def _mt(k: int, v: int) -> Any:
    return oh.make_map_type_proto(k, oh.make_tensor_type_proto(v, None))


PREPROCESSING = [
    ("Normalizer", {"norm": "MAX"}, [np.array([[-1, -2, -4], [0, -1, 0], [3, 0, 1]], np.float32)],
     [_tt(TP.FLOAT)], [_tt(TP.FLOAT)], 1),
    ("Normalizer", {"norm": "L1"}, [np.array([[1, -3, 0], [0, 0, 0]], np.float32)],
     [_tt(TP.FLOAT)], [_tt(TP.FLOAT)], 1),
    ("Normalizer", {"norm": "L2"}, [np.array([1, 3], np.int64)], [_tt(TP.INT64)],
     [_tt(TP.FLOAT)], 1),
    ("Scaler", {"offset": [1.0, 2.0], "scale": [2.0, 3.0]}, [np.array([[1, 2], [3, 4]], np.int64)],
     [_tt(TP.INT64)], [_tt(TP.FLOAT)], 1),
    ("Scaler", {"offset": [1.0], "scale": [2.0]}, [np.array([[1, 2], [3, 4]], np.float64)],
     [_tt(TP.DOUBLE)], [_tt(TP.FLOAT)], 1),
    ("Imputer", {"replaced_value_float": float("nan"), "imputed_value_floats": [9.0, 8.0]},
     [np.array([[np.nan, 1], [2, np.nan]], np.float32)], [_tt(TP.FLOAT)], [_tt(TP.FLOAT)], 1),
    ("Imputer", {"replaced_value_int64": -1, "imputed_value_int64s": [7]},
     [np.array([[-1, 1], [2, -1]], np.int64)], [_tt(TP.INT64)], [_tt(TP.INT64)], 1),
    ("OneHotEncoder", {"cats_int64s": [1, 2, 3]}, [np.array([[1.7, 2.0], [3.2, -1]], np.float32)],
     [_tt(TP.FLOAT)], [_tt(TP.FLOAT)], 1),
    ("OneHotEncoder", {"cats_strings": ["a", "b"]}, [np.array(["a", "c"], object)],
     [_tt(TP.STRING)], [_tt(TP.FLOAT)], 1),
    ("CategoryMapper", {"cats_strings": ["a", "b"], "cats_int64s": [5, 6], "default_int64": 42},
     [np.array([["a", "z"]], object)], [_tt(TP.STRING)], [_tt(TP.INT64)], 1),
    ("CategoryMapper", {"cats_strings": ["a", "b"], "cats_int64s": [5, 6],
                        "default_string": "??"},
     [np.array([5, 7], np.int64)], [_tt(TP.INT64)], [_tt(TP.STRING)], 1),
    ("LabelEncoder", {"classes_strings": ["a", "b"], "default_int64": 42},
     [np.array(["b", "z"], object)], [_tt(TP.STRING)], [_tt(TP.INT64)], 1),
    ("LabelEncoder", {"classes_strings": ["a", "b"], "default_string": "zz"},
     [np.array([1, 5, -1], np.int64)], [_tt(TP.INT64)], [_tt(TP.STRING)], 1),
    ("LabelEncoder", {"keys_int64s": [1, 2], "values_floats": [0.5, 1.5]},
     [np.array([1, 3], np.int64)], [_tt(TP.INT64)], [_tt(TP.FLOAT)], 2),
    ("ArrayFeatureExtractor", {}, [np.array([1., 2, 3], np.float32), np.array([2, 0], np.int64)],
     [_tt(TP.FLOAT), _tt(TP.INT64)], [_tt(TP.FLOAT)], 1),
    ("ArrayFeatureExtractor", {}, [np.arange(24, dtype=np.float32).reshape(2, 3, 4),
                                   np.array([[2, 0]], np.int64)],
     [_tt(TP.FLOAT), _tt(TP.INT64)], [_tt(TP.FLOAT)], 1),
    ("FeatureVectorizer", {"inputdimensions": [2, 3]},
     [np.array([[1, 2, 3], [4, 5, 6]], np.float32), np.array([[1.5], [2.5]], np.float32)],
     [_tt(TP.FLOAT), _tt(TP.FLOAT)], [_tt(TP.FLOAT)], 1),
    ("DictVectorizer", {"string_vocabulary": ["a", "c", "b", "z"]},
     [{"a": 4.0, "c": 8.0, "q": 1.0}],
     [_mt(TP.STRING, TP.FLOAT)], [_tt(TP.FLOAT)], 1),
    ("CastMap", {"cast_to": "TO_STRING", "map_form": "SPARSE", "max_map": 5},
     [{1: 1.5, 3: -2.25, 0: 7.0}], [_mt(TP.INT64, TP.FLOAT)], [_tt(TP.STRING)], 1),
    ("CastMap", {"cast_to": "TO_INT64", "map_form": "DENSE"},
     [{1: 1.5, 3: -2.25, 0: 7.0}], [_mt(TP.INT64, TP.FLOAT)], [_tt(TP.INT64)], 1),
    ("CastMap", {"cast_to": "TO_FLOAT", "map_form": "SPARSE", "max_map": 4},
     [{1: 1.5, 3: -2.25}], [_mt(TP.INT64, TP.FLOAT)], [_tt(TP.FLOAT)], 1),
]


@pytest.mark.parametrize("op,attrs,feeds,in_types,out_types,ml_opset", PREPROCESSING,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(PREPROCESSING)])
def test_preprocessing_matches_onnxruntime(op: str, attrs: dict, feeds: list[Any],
                                           in_types: list[Any], out_types: list[Any],
                                           ml_opset: int) -> None:
    model = _one(op, attrs, feeds, in_types, out_types, ml_opset)
    ref, got = _both(model, {f"x{i}": v for i, v in enumerate(feeds)})
    for g, r in zip(got, ref):
        _close(g, r)


def test_zipmap_returns_list_of_dicts() -> None:
    seq = oh.make_sequence_type_proto(_mt(TP.INT64, TP.FLOAT))
    model = _one("ZipMap", {"classlabels_int64s": [3, 5]},
                 [np.array([[0.25, 0.75], [1, 0]], np.float32)], [_tt(TP.FLOAT)], [seq])
    ref, got = _both(model, {"x0": np.array([[0.25, 0.75], [1, 0]], np.float32)})
    assert got[0] == ref[0] == [{3: 0.25, 5: 0.75}, {3: 1.0, 5: 0.0}]
    z = zipmap.zip_map(np.array([[0.5, 0.5]], np.float32), classlabels_strings=["a", "b"])[0]
    assert z == [{"a": 0.5, "b": 0.5}] and all(type(v) is float for v in z[0].values())


def test_label_encoder_4_repeated_and_nan_keys() -> None:
    """The last of repeated keys wins; a NaN key matches any NaN input (spec of v4)."""
    out = preprocessing.label_encoder_4(np.array([1.0, np.nan, 7.0]),
                                        keys_tensor=np.array([1.0, np.nan, 1.0]),
                                        values_tensor=np.array([3, 4, 5], np.int32))[0]
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [5, 4, -1])
    s = preprocessing.label_encoder_4(np.array(["a", "b"], object), keys_strings=["a", "a"],
                                      values_strings=["x", "y"], default_string="?")[0]
    assert s.tolist() == ["y", "?"]


# ------------------------------------------------------------------------------ error paths


def _stump(**over: Any) -> dict[str, Any]:
    kw: dict[str, Any] = dict(
        nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[5, 0, 0],
        nodes_values=[0.5, 0, 0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0], target_treeids=[0, 0],
        target_nodeids=[1, 2], target_ids=[0, 0], target_weights=[1.0, 2.0], n_targets=1)
    kw.update(over)
    return kw


def test_error_bad_feature_count() -> None:
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ExecutionError, match="feature 5 but X has 3 features"):
        tree.tree_ensemble_regressor(x, **_stump())
    with pytest.raises(ExecutionError, match="X has 3 features"):
        linear.linear_classifier(x, coefficients=[1.0] * 8, intercepts=[0.0, 0.0],
                                 classlabels_ints=[0, 1])
    with pytest.raises(ExecutionError, match="needs exactly 2 class labels, got 1"):
        linear.linear_classifier(x, coefficients=[1.0] * 3, intercepts=[0.0],
                                 classlabels_ints=[7])
    with pytest.raises(ExecutionError, match="X has 3 features"):
        linear.svm_regressor(x, coefficients=[1.0] * 4, rho=[0.0])
    # Through a session the runtime names the node and keeps the kernel's message.
    node = oh.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain=ML, **_stump())
    model = _model(node, [oh.make_tensor_value_info("X", TP.FLOAT, [None, 3])],
                   [oh.make_tensor_value_info("Y", TP.FLOAT, [None, 1])])
    with pytest.raises(PyOnnxError, match="feature 5"):
        pyonnx.InferenceSession(model).run(None, {"X": x})


def test_error_unknown_category_without_default() -> None:
    with pytest.raises(ExecutionError, match="'purple' is not one of the 2 categories"):
        preprocessing.one_hot_encoder(np.array(["red", "purple"], object),
                                      cats_strings=["red", "blue"], zeros=0)
    with pytest.raises(ExecutionError, match="value 9 is not one of"):
        preprocessing.one_hot_encoder(np.array([1, 9], np.int64), cats_int64s=[1, 2], zeros=0)
    with pytest.raises(ExecutionError, match=r"index Y\[1\] = 4 is out of range"):
        preprocessing.array_feature_extractor(np.zeros((2, 3), np.float32),
                                              np.array([0, 4], np.int64))
    with pytest.raises(ExecutionError, match="key 7 is outside"):
        preprocessing.cast_map({7: 1.0}, map_form="SPARSE", max_map=3)


def test_error_unsupported_attribute_values() -> None:
    x = np.zeros((2, 6), np.float32)
    with pytest.raises(UnsupportedOperatorError, match="post_transform 'SQUASH'"):
        tree.tree_ensemble_regressor(x, **_stump(post_transform="SQUASH"))
    with pytest.raises(UnsupportedOperatorError, match="post_transform 'SQUASH'"):
        linear.linear_regressor(x, coefficients=[1.0] * 6, post_transform="SQUASH")
    with pytest.raises(UnsupportedOperatorError, match="post_transform 9"):
        tree.tree_ensemble(x, nodes_featureids=[0], nodes_modes=np.array([0], np.uint8),
                           nodes_splits=np.array([0.0], np.float32), nodes_truenodeids=[0],
                           nodes_trueleafs=[1], nodes_falsenodeids=[0], nodes_falseleafs=[1],
                           tree_roots=[0], leaf_targetids=[0],
                           leaf_weights=np.array([1.0], np.float32), n_targets=1,
                           post_transform=9)
    with pytest.raises(UnsupportedOperatorError, match="aggregate_function 'MEDIAN'"):
        tree.tree_ensemble_regressor(x, **_stump(aggregate_function="MEDIAN"))
    with pytest.raises(UnsupportedOperatorError, match="node mode 'BRANCH_MEMBER'"):
        tree.tree_ensemble_regressor(x, **_stump(nodes_modes=["BRANCH_MEMBER", "LEAF", "LEAF"]))
    with pytest.raises(UnsupportedOperatorError, match="kernel_type 'CUBIC'"):
        linear.svm_regressor(x, coefficients=[1.0] * 6, kernel_type="CUBIC")
    with pytest.raises(UnsupportedOperatorError, match="norm 'L3'"):
        preprocessing.normalizer(x, norm="L3")
    with pytest.raises(ExecutionError, match="node 3 of tree 0, which does not exist"):
        tree.tree_ensemble_regressor(x, **_stump(nodes_falsenodeids=[3, 0, 0]))
    with pytest.raises(ExecutionError, match="2 columns but there are 3 class labels"):
        zipmap.zip_map(np.zeros((1, 2), np.float32), classlabels_int64s=[1, 2, 3])
