"""Real scikit-learn models, exported with skl2onnx, run in pyonnx and onnxruntime.

Each model is trained here on small synthetic or bundled data, exported with an ai.onnx opset
between 17 and 21 and ai.onnx.ml 3, and run by both runtimes on the same inputs: predicted
labels must equal scikit-learn's exactly, and every output (labels, probabilities as ZipMap
dicts or tensors, scores, regression values) must agree with onnxruntime at rtol 1e-5,
atol 1e-6. scikit-learn, skl2onnx (and pandas for the ColumnTransformer case) are test-only
dependencies: without them the tests skip with a reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed (test extra)")
skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx is not installed (test extra)")

from sklearn import cluster, ensemble, impute, linear_model, neighbors, pipeline  # noqa: E402
from sklearn import preprocessing, svm, tree  # noqa: E402
from sklearn.datasets import load_iris, make_classification, make_regression  # noqa: E402

import pyonnx  # noqa: E402

RTOL, ATOL = 1e-5, 1e-6

# SVC(probability=True) is deprecated in scikit-learn 1.9 but still what users export.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def _iris() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    return x.astype(np.float32), y


def _binary() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_classification(160, 6, n_informative=4, random_state=0)
    return x.astype(np.float32), y


def _regression(targets: int = 1) -> tuple[np.ndarray, np.ndarray]:
    x, y = make_regression(120, 5, n_targets=targets, noise=0.5, random_state=0)
    return x.astype(np.float32), y


def _export(model: Any, sample: Any, opset: int, initial_types: Any = None,
            options: Any = None) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if initial_types is not None:
            onx = skl2onnx.to_onnx(model, initial_types=initial_types,
                                   target_opset={"": opset, "ai.onnx.ml": 3}, options=options)
        else:
            onx = skl2onnx.to_onnx(model, sample, target_opset={"": opset, "ai.onnx.ml": 3},
                                   options=options)
    # skl2onnx imports the default domain twice at the same version in every regressor-only
    # model; onnx.checker and onnxruntime accept that, while pyonnx's decoder currently refuses
    # any repeated domain. Dropping exact duplicates changes nothing about the model.
    seen: set[tuple[str, int]] = set()
    keep = []
    for o in onx.opset_import:
        if (o.domain, o.version) not in seen:
            seen.add((o.domain, o.version))
            keep.append((o.domain, o.version))
    if len(keep) != len(onx.opset_import):
        del onx.opset_import[:]
        for domain, version in keep:
            onx.opset_import.add(domain=domain, version=version)
    return onx.SerializeToString()


def _assert_same(name: str, got: Any, ref: Any) -> None:
    """Compare one output of pyonnx with onnxruntime's (ZipMap lists of dicts included)."""
    if isinstance(ref, list):
        assert isinstance(got, list) and len(got) == len(ref), name
        for g, r in zip(got, ref):
            assert isinstance(g, dict) and set(g) == set(r), f"{name}: map keys differ"
            keys = sorted(r)
            np.testing.assert_allclose([g[k] for k in keys], [r[k] for k in keys],
                                       rtol=RTOL, atol=ATOL, err_msg=name)
        return
    ref = np.asarray(ref)
    got = np.asarray(got)
    assert got.shape == ref.shape, f"{name}: shape {got.shape} != onnxruntime {ref.shape}"
    assert got.dtype == ref.dtype, f"{name}: dtype {got.dtype} != onnxruntime {ref.dtype}"
    if ref.dtype.kind == "f":
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL, err_msg=name)
    else:
        np.testing.assert_array_equal(got, ref, err_msg=name)


def _run_both(model_bytes: bytes, feeds: dict[str, Any]) -> tuple[list[Any], list[Any], list[str]]:
    ref_sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    names = [o.name for o in ref_sess.get_outputs()]
    ref = ref_sess.run(None, feeds)
    got = pyonnx.InferenceSession(model_bytes).run(None, feeds)
    assert len(got) == len(ref)
    for n, g, r in zip(names, got, ref):
        _assert_same(n, g, r)
    return got, ref, names


def _check_estimator(model: Any, x: Any, opset: int, expected_labels: np.ndarray | None = None,
                     **export: Any) -> list[Any]:
    model_bytes = _export(model, x[:1] if export.get("initial_types") is None else None, opset,
                          **export)
    feed_name = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"]
                                     ).get_inputs()[0].name
    got, _, names = _run_both(model_bytes, {feed_name: x})
    if expected_labels is not None:
        labels = got[names.index("label")] if "label" in names else got[0]
        np.testing.assert_array_equal(np.asarray(labels).reshape(-1),
                                      np.asarray(expected_labels).reshape(-1))
    return got


# (id, opset, builder returning (fitted model, X, expected labels or None))
Case = tuple[str, int, Callable[[], tuple[Any, np.ndarray, np.ndarray | None]]]


def _classifier(est: Any, data: Callable[[], tuple[np.ndarray, np.ndarray]],
                labels: np.ndarray | None = None) -> Callable[[], tuple[Any, Any, Any]]:
    def build() -> tuple[Any, Any, Any]:
        x, y = data()
        if labels is not None:
            y = labels[y]
        m = est.fit(x, y)
        return m, x, m.predict(x)
    return build


def _regressor(est: Any, targets: int = 1) -> Callable[[], tuple[Any, Any, Any]]:
    def build() -> tuple[Any, Any, Any]:
        x, y = _regression(targets)
        return est.fit(x, y), x, None
    return build


_NAMES = np.array(["setosa", "versicolor", "virginica"])

CASES: list[Case] = [
    ("random_forest_classifier", 17, _classifier(
        ensemble.RandomForestClassifier(12, max_depth=6, random_state=0), _iris)),
    ("random_forest_classifier_binary", 18, _classifier(
        ensemble.RandomForestClassifier(8, max_depth=5, random_state=0), _binary)),
    ("random_forest_regressor", 19, _regressor(
        ensemble.RandomForestRegressor(10, max_depth=6, random_state=0))),
    ("random_forest_regressor_2_targets", 20, _regressor(
        ensemble.RandomForestRegressor(5, max_depth=4, random_state=0), targets=2)),
    ("gradient_boosting_classifier", 21, _classifier(
        ensemble.GradientBoostingClassifier(n_estimators=15, random_state=0), _iris)),
    ("gradient_boosting_classifier_binary", 17, _classifier(
        ensemble.GradientBoostingClassifier(n_estimators=20, random_state=0), _binary)),
    ("gradient_boosting_regressor", 18, _regressor(
        ensemble.GradientBoostingRegressor(n_estimators=20, random_state=0))),
    ("extra_trees_classifier_string_labels", 19, _classifier(
        ensemble.ExtraTreesClassifier(6, max_depth=5, random_state=0), _iris, _NAMES)),
    ("decision_tree_classifier", 20, _classifier(
        tree.DecisionTreeClassifier(max_depth=5, random_state=0), _iris)),
    ("decision_tree_regressor", 21, _regressor(
        tree.DecisionTreeRegressor(max_depth=6, random_state=0))),
    ("logistic_regression_multiclass", 17, _classifier(
        linear_model.LogisticRegression(max_iter=500), _iris)),
    ("logistic_regression_binary", 18, _classifier(
        linear_model.LogisticRegression(max_iter=500), _binary)),
    ("logistic_regression_string_labels", 19, _classifier(
        linear_model.LogisticRegression(max_iter=500), _iris, _NAMES)),
    ("linear_svc", 20, _classifier(svm.LinearSVC(), _iris)),
    ("linear_regression", 21, _regressor(linear_model.LinearRegression())),
    ("ridge_2_targets", 17, _regressor(linear_model.Ridge(), targets=2)),
    ("svc_rbf_probability", 18, _classifier(
        svm.SVC(probability=True, random_state=0), _iris)),
    ("svc_poly_probability_binary", 19, _classifier(
        svm.SVC(kernel="poly", probability=True, random_state=0), _binary)),
    ("svc_sigmoid_probability", 20, _classifier(
        svm.SVC(kernel="sigmoid", probability=True, random_state=0), _iris)),
    ("svc_linear_no_probability", 21, _classifier(svm.SVC(kernel="linear"), _iris)),
    ("svr_rbf", 17, _regressor(svm.SVR())),
    ("knn_classifier", 18, _classifier(neighbors.KNeighborsClassifier(3), _iris)),
]


@pytest.mark.parametrize("name,opset,build", CASES, ids=[c[0] for c in CASES])
def test_estimator(name: str, opset: int, build: Callable[[], tuple[Any, Any, Any]]) -> None:
    model, x, labels = build()
    _check_estimator(model, x, opset, labels)


def test_kmeans_labels_and_distances() -> None:
    x, _ = _iris()
    km = cluster.KMeans(3, n_init=3, random_state=0).fit(x)
    got = _check_estimator(km, x, 19)
    np.testing.assert_array_equal(got[0], km.predict(x))


def test_hist_gradient_boosting() -> None:
    x, y = _iris()
    model = ensemble.HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(x, y)
    try:
        model_bytes = _export(model, x[:1], 18)
    except Exception as e:  # skl2onnx's converter lags behind scikit-learn's internals
        pytest.skip(f"skl2onnx {skl2onnx.__version__} cannot export "
                    f"HistGradientBoostingClassifier of scikit-learn {sklearn.__version__}: "
                    f"{type(e).__name__}")
    got, _, names = _run_both(model_bytes, {"X": x})
    np.testing.assert_array_equal(got[names.index("label")], model.predict(x))


def test_preprocessing_transformers() -> None:
    """Normalizer (l1, l2, max), Binarizer, StandardScaler, MaxAbsScaler, SimpleImputer."""
    x, _ = _iris()
    shifted = x - 3.0
    for norm in ("l1", "l2", "max"):
        _check_estimator(preprocessing.Normalizer(norm=norm).fit(shifted), shifted, 17)
    _check_estimator(preprocessing.Binarizer(threshold=2.0).fit(x), x, 18)
    _check_estimator(preprocessing.StandardScaler().fit(x), x, 19)
    _check_estimator(preprocessing.MaxAbsScaler().fit(x), x, 20)
    holes = x.copy()
    holes[::7, 1] = np.nan
    holes[::5, 3] = np.nan
    _check_estimator(impute.SimpleImputer().fit(holes), holes, 21)


def test_label_and_category_encoders() -> None:
    from skl2onnx.common.data_types import StringTensorType

    rng = np.random.default_rng(0)
    words = rng.choice(np.array(["red", "green", "blue"], dtype=object), size=(40, 2))
    le = preprocessing.LabelEncoder().fit(words[:, 0])
    got = _check_estimator(le, words[:, 0], 17,
                           initial_types=[("X", StringTensorType([None]))])
    np.testing.assert_array_equal(got[0], le.transform(words[:, 0]))
    oe = preprocessing.OrdinalEncoder().fit(words)
    got = _check_estimator(oe, words, 18, initial_types=[("X", StringTensorType([None, 2]))])
    np.testing.assert_allclose(got[0], oe.transform(words))
    ohe = preprocessing.OneHotEncoder().fit(words)
    got = _check_estimator(ohe, words, 19, initial_types=[("X", StringTensorType([None, 2]))])
    np.testing.assert_allclose(got[0], ohe.transform(words).toarray())


def test_dict_vectorizer() -> None:
    from skl2onnx.common.data_types import DictionaryType, FloatTensorType, StringTensorType
    from sklearn.feature_extraction import DictVectorizer

    dv = DictVectorizer().fit([{"a": 1.0, "b": 2.0}, {"c": 3.0}])
    model_bytes = _export(dv, None, 17, initial_types=[
        ("X", DictionaryType(StringTensorType([1]), FloatTensorType([1])))])
    got, _, _ = _run_both(model_bytes, {"X": {"a": 5.0, "c": 2.5, "unknown": 1.0}})
    np.testing.assert_allclose(got[0], dv.transform([{"a": 5.0, "c": 2.5}]).toarray())


def test_pipeline_column_transformer() -> None:
    """StandardScaler on numeric columns + OneHotEncoder on string columns + a classifier,
    with a category never seen in training (handle_unknown='ignore')."""
    pd = pytest.importorskip("pandas", reason="pandas is needed for a ColumnTransformer on "
                                              "mixed numeric and string columns")
    from sklearn import compose

    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "a": rng.normal(size=150).astype(np.float32),
        "b": rng.normal(size=150).astype(np.float32),
        "color": rng.choice(["red", "green", "blue"], 150),
        "size": rng.choice(["S", "M", "L"], 150),
    })
    target = ((df.a + (df.color == "red") - 0.5 * (df["size"] == "L")) > 0.3).astype(int)
    pre = compose.ColumnTransformer([
        ("num", preprocessing.StandardScaler(), ["a", "b"]),
        ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), ["color", "size"]),
    ])
    feeds = {c: (df[[c]].to_numpy(dtype=np.float32) if df[c].dtype.kind == "f"
                 else df[[c]].to_numpy(dtype=object)).copy() for c in df.columns}
    feeds["color"][3, 0] = "purple"
    test_df = df.copy()
    test_df.loc[3, "color"] = "purple"
    for i, clf in enumerate((linear_model.LogisticRegression(),
                             ensemble.RandomForestClassifier(6, max_depth=5, random_state=0))):
        pipe = pipeline.Pipeline([("pre", pre), ("clf", clf)]).fit(df, target)
        model_bytes = _export(pipe, df[:1], 18 + i)
        got, _, names = _run_both(model_bytes, feeds)
        label = next(n for n in names if "label" in n)
        np.testing.assert_array_equal(got[names.index(label)], pipe.predict(test_df))
