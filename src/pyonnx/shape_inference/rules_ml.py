"""The ai.onnx.ml operators: classifiers and regressors (linear, SVM, tree ensembles), feature
preprocessing, look-ups, and the map and sequence-of-map converters (DictVectorizer, CastMap,
ZipMap).

Most of these operators see their input as ``[N, F]`` rows (a 1-D input is one row, ``N = 1``;
another rank is an error) and write ``[N]`` labels or ``[N, K]`` scores, where ``K`` follows
from the attributes: the class labels, ``targets``/``n_targets``, the vocabulary. Where the
runtime's layout is a convention of onnxruntime rather than the spec's words (two score
columns for a binary model, DictVectorizer's ``[1, V]``), the rule states the runtime's, which
the kernels implement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pyonnx.ir import DataType, MapType, SequenceType, TensorType
from pyonnx.ir.types import Dim
from pyonnx.shape_inference._common import tensor
from pyonnx.shape_inference.engine import InferenceContext
from pyonnx.shape_inference.registry import shape_rule
from pyonnx.shape_inference.symbolic import dim_add, dim_exact_div, dim_prod, is_concrete

ML = "ai.onnx.ml"


# ---------------------------------------------------------------------- helpers

def _given(v: Any) -> bool:
    """Whether an optional list or tensor attribute is present and non-empty (the kernels
    treat an empty list as absent)."""
    if v is None:
        return False
    return np.asarray(v).size > 0 if isinstance(v, np.ndarray) else len(v) > 0


def _count(v: Any) -> int:
    return int(np.asarray(v).size) if isinstance(v, np.ndarray) else len(v)


def _rows(ctx: InferenceContext, i: int = 0) -> tuple[Dim, Dim] | None:
    """``(N, F)`` of an input read as rows: a 1-D input is one row. None for an unknown rank;
    any rank other than 1 or 2 contradicts the operator."""
    s = ctx.shape(i)
    if s is None:
        return None
    if len(s) == 1:
        return 1, s[0]
    if len(s) == 2:
        return s[0], s[1]
    raise ctx.fail(f"input {i} must be 1-D or 2-D [N, F], got rank {len(s)}")


def _batch(ctx: InferenceContext) -> Dim:
    r = _rows(ctx)
    return None if r is None else r[0]


def _label_elem(ctx: InferenceContext, ints_name: str) -> DataType | None:
    """The element type of predicted labels: string labels when classlabels_strings is set,
    int64 when the integer labels are."""
    if _given(ctx.attr("classlabels_strings", None)):
        return DataType.STRING
    if _given(ctx.attr(ints_name, None)):
        return DataType.INT64
    return None


def _n_labels(ctx: InferenceContext, ints_name: str) -> int | None:
    for name in ("classlabels_strings", ints_name):
        v = ctx.attr(name, None)
        if _given(v):
            return _count(v)
    return None


# ---------------------------------------------------------------------- linear and SVM models

@shape_rule("LinearClassifier", domain=ML)
def linear_classifier(ctx: InferenceContext) -> list[TensorType | None]:
    # Z has one column per class score row of coefficients (len(intercepts) of them, or
    # coefficients / features); a single score row is a binary model written as [1 - s, s].
    rows = _rows(ctx)
    n, f = rows if rows is not None else (None, None)
    intercepts = ctx.attr("intercepts", None)
    coef = ctx.attr("coefficients", None)
    if not _given(coef):
        raise ctx.fail("attribute 'coefficients' is required")
    k: Dim
    if _given(intercepts):
        k = _count(intercepts)
    else:
        k = dim_exact_div(_count(coef), f) if f is not None else None
    if k == 1:
        k = 2
    return [tensor(_label_elem(ctx, "classlabels_ints"), [n]), tensor(DataType.FLOAT, [n, k])]


@shape_rule("LinearRegressor", domain=ML)
def linear_regressor(ctx: InferenceContext) -> TensorType | None:
    return tensor(DataType.FLOAT, [_batch(ctx), int(ctx.attr("targets", 1))])


@shape_rule("SVMClassifier", domain=ML)
def svm_classifier(ctx: InferenceContext) -> list[TensorType | None]:
    # With support vectors (one-vs-one SVC) Z holds the class probabilities when prob_a is
    # given, else one decision value per class pair (two columns [-s, s] for a binary model);
    # without support vectors (a linear model) one score per class.
    n = _batch(ctx)
    classes = _n_labels(ctx, "classlabels_ints")
    k: Dim = None
    if classes is not None:
        per_class = ctx.attr("vectors_per_class", None)
        if _given(per_class) and int(np.sum(np.asarray(per_class))) > 0:
            if _given(ctx.attr("prob_a", None)):
                k = classes
            elif classes <= 2:
                k = 2
            else:
                k = classes * (classes - 1) // 2
        else:
            k = classes
    return [tensor(_label_elem(ctx, "classlabels_ints"), [n]), tensor(DataType.FLOAT, [n, k])]


@shape_rule("SVMRegressor", domain=ML)
def svm_regressor(ctx: InferenceContext) -> TensorType | None:
    return tensor(DataType.FLOAT, [_batch(ctx), 1])


# ---------------------------------------------------------------------- tree ensembles

@shape_rule("TreeEnsembleClassifier", domain=ML)
def tree_ensemble_classifier(ctx: InferenceContext) -> list[TensorType | None]:
    n = _batch(ctx)
    return [tensor(_label_elem(ctx, "classlabels_int64s"), [n]),
            tensor(DataType.FLOAT, [n, _n_labels(ctx, "classlabels_int64s")])]


def _n_targets(ctx: InferenceContext) -> Dim:
    t = ctx.attr("n_targets", None)
    return int(t) if t is not None and int(t) >= 1 else None


@shape_rule("TreeEnsembleRegressor", domain=ML)
def tree_ensemble_regressor(ctx: InferenceContext) -> TensorType | None:
    return tensor(DataType.FLOAT, [_batch(ctx), _n_targets(ctx)])


def _elem_of(v: Any) -> DataType | None:
    """The element type of a decoded tensor attribute."""
    if v is None:
        return None
    arr = np.asarray(v)
    return DataType.STRING if arr.dtype == object or arr.dtype.kind in "US" \
        else DataType.from_numpy(arr.dtype)


def _same_lengths(ctx: InferenceContext, names: Sequence[str]) -> None:
    """The listed per-node (or per-leaf) attributes that are present have one length."""
    first: tuple[str, int] | None = None
    for name in names:
        v = ctx.attr(name, None)
        if v is None:
            continue
        n = _count(v)
        if first is None:
            first = (name, n)
        elif n != first[1]:
            raise ctx.fail(f"attribute {name!r} has {n} entries but {first[0]!r} has "
                           f"{first[1]}; they describe the same nodes and must have one length")


@shape_rule("TreeEnsemble", domain=ML)
def tree_ensemble(ctx: InferenceContext) -> TensorType | None:
    # TreeEnsemble-5 writes the type of its input
    _same_lengths(ctx, ("nodes_featureids", "nodes_splits", "nodes_modes", "nodes_truenodeids",
                        "nodes_falsenodeids", "nodes_trueleafs", "nodes_falseleafs",
                        "nodes_missing_value_tracks_true"))
    _same_lengths(ctx, ("leaf_targetids", "leaf_weights"))
    x = ctx.elem(0)
    for name in ("nodes_splits", "leaf_weights", "membership_values"):
        e = _elem_of(ctx.attr(name, None))
        if x is not None and e is not None and e != x:
            raise ctx.fail(f"attribute {name!r} holds {e.name} but input X is {x.name}; they "
                           f"must have the same element type")
    return tensor(x, [_batch(ctx), _n_targets(ctx)])


# ---------------------------------------------------------------------- element-wise transforms

@shape_rule(("Binarizer", "Imputer"), domain=ML)
def same_type(ctx: InferenceContext) -> TensorType | None:
    return ctx.tensor_type(0)


@shape_rule("Scaler", domain=ML)
def scaler(ctx: InferenceContext) -> TensorType | None:
    return tensor(DataType.FLOAT, ctx.shape(0))


@shape_rule("Normalizer", domain=ML)
def normalizer(ctx: InferenceContext) -> TensorType | None:
    _rows(ctx)  # rows are normalized: 1-D or 2-D only
    return tensor(DataType.FLOAT, ctx.shape(0))


# ---------------------------------------------------------------------- look-ups

@shape_rule("LabelEncoder", domain=ML)
def label_encoder(ctx: InferenceContext) -> TensorType | None:
    elem: DataType | None = None
    if ctx.since_version < 2:
        # version 1 maps strings to int64 and int64 back to strings
        x = ctx.elem(0)
        if x is not None:
            elem = DataType.INT64 if x == DataType.STRING else DataType.STRING
    else:
        for name, dt in (("values_strings", DataType.STRING), ("values_int64s", DataType.INT64),
                         ("values_floats", DataType.FLOAT)):
            if _given(ctx.attr(name, None)):
                elem = dt
                break
        vt = ctx.attr("values_tensor", None) if ctx.since_version >= 4 else None
        if elem is None and vt is not None:
            elem = _elem_of(vt)
        dt = ctx.attr("default_tensor", None) if ctx.since_version >= 4 else None
        if dt is not None:
            if np.asarray(dt).shape != (1,):
                raise ctx.fail(f"attribute 'default_tensor' has shape "
                               f"{list(np.asarray(dt).shape)}; it must hold one value, shape [1]")
            if elem is not None and _elem_of(dt) != elem:
                raise ctx.fail(f"attribute 'default_tensor' holds {_elem_of(dt).name} but the "
                               f"values are {elem.name}; they must have the same type")
    return tensor(elem, ctx.shape(0))


@shape_rule("CategoryMapper", domain=ML)
def category_mapper(ctx: InferenceContext) -> TensorType | None:
    ints, strs = ctx.attr("cats_int64s", None), ctx.attr("cats_strings", None)
    if not _given(ints) or not _given(strs):
        raise ctx.fail("attributes 'cats_int64s' and 'cats_strings' are both required (the two "
                       "sides of the mapping)")
    if _count(ints) != _count(strs):
        raise ctx.fail(f"attribute 'cats_int64s' has {_count(ints)} entries but 'cats_strings' "
                       f"has {_count(strs)}; the mapping pairs them one to one")
    x = ctx.elem(0)
    elem = None if x is None else DataType.INT64 if x == DataType.STRING else DataType.STRING
    return tensor(elem, ctx.shape(0))


@shape_rule("OneHotEncoder", domain=ML)
def one_hot_encoder(ctx: InferenceContext) -> TensorType | None:
    given = [n for n in ("cats_int64s", "cats_strings") if _given(ctx.attr(n, None))]
    if len(given) != 1:
        raise ctx.fail("exactly one of the attributes 'cats_int64s' and 'cats_strings' must be "
                       f"set; {'both are' if given else 'neither is'}")
    cats = None
    for name in ("cats_int64s", "cats_strings"):
        v = ctx.attr(name, None)
        if _given(v):
            cats = _count(v)
            break
    s = ctx.shape(0)
    return tensor(DataType.FLOAT, None if s is None else [*s, cats])


# ---------------------------------------------------------------------- feature assembly

@shape_rule("ArrayFeatureExtractor", domain=ML)
def array_feature_extractor(ctx: InferenceContext) -> TensorType | None:
    # Z = X[..., Y] with Y flattened; a 1-D X gives one row
    x, y = ctx.shape(0), ctx.shape(1)
    elem = ctx.elem(0)
    if x is None:
        return tensor(elem, None)
    if len(x) == 0:
        raise ctx.fail("X must have at least one dimension")
    k = dim_prod(y) if y is not None else None
    return tensor(elem, [1, k] if len(x) == 1 else [*x[:-1], k])


@shape_rule("FeatureVectorizer", domain=ML)
def feature_vectorizer(ctx: InferenceContext) -> TensorType | None:
    dims = ctx.attr("inputdimensions", None)
    present = [i for i in range(ctx.num_inputs) if ctx.has_input(i)]
    rows = [_rows(ctx, i) for i in present]
    # every input has the same number of rows: a concrete count wins over a symbolic one
    counts = [r[0] for r in rows if r is not None]
    concrete = sorted({d for d in counts if is_concrete(d)})  # type: ignore[type-var]
    if len(concrete) > 1:
        raise ctx.fail(f"the inputs have different numbers of rows: {concrete}")
    n: Dim = concrete[0] if concrete else (counts[0] if counts else None)
    width: Dim
    if _given(dims):
        if len(dims) != len(present):
            raise ctx.fail(f"inputdimensions has {len(dims)} entries for {len(present)} inputs")
        width = int(sum(int(d) for d in dims))
    else:
        width = 0
        for r in rows:
            width = dim_add(width, r[1] if r is not None else None)
    return tensor(DataType.FLOAT, [n, width])


# ---------------------------------------------------------------------- maps and sequences

def _map_input(ctx: InferenceContext) -> MapType | None:
    t = ctx.input_type(0)
    if t is None:
        return None
    if not isinstance(t, MapType):
        raise ctx.fail(f"X must be a map, got {t}")
    return t


def _value_elem(m: MapType | None) -> DataType | None:
    if m is None or not isinstance(m.value_type, TensorType):
        return None
    e = m.value_type.elem_type
    return None if e == DataType.UNDEFINED else e


@shape_rule("DictVectorizer", domain=ML)
def dict_vectorizer(ctx: InferenceContext) -> TensorType | None:
    # the spec calls Y a 1-D tensor of the vocabulary's length; onnxruntime (and the kernel)
    # write it as one row, [1, V]. Y holds the map's values, so it has their element type.
    m = _map_input(ctx)
    ints, strings = ctx.attr("int64_vocabulary", None), ctx.attr("string_vocabulary", None)
    if _given(ints) == _given(strings):
        raise ctx.fail("exactly one of int64_vocabulary and string_vocabulary must be set")
    vocab_key = DataType.INT64 if _given(ints) else DataType.STRING
    if m is not None and m.key_type != vocab_key:
        raise ctx.fail(f"the map's keys are {m.key_type.onnx_name} but the vocabulary is "
                       f"{vocab_key.onnx_name}")
    return tensor(_value_elem(m), [1, _count(ints if _given(ints) else strings)])


_CAST_TO = {"TO_FLOAT": DataType.FLOAT, "TO_STRING": DataType.STRING, "TO_INT64": DataType.INT64}


@shape_rule("CastMap", domain=ML)
def cast_map(ctx: InferenceContext) -> TensorType | None:
    # DENSE: one column per entry of the map (known only at run time); SPARSE: max_map columns
    _map_input(ctx)
    cast_to = ctx.attr("cast_to", "TO_FLOAT")
    elem = _CAST_TO.get(cast_to)
    if elem is None:
        raise ctx.fail(f"cast_to {cast_to!r} is not TO_FLOAT, TO_STRING or TO_INT64")
    form = ctx.attr("map_form", "DENSE")
    if form == "SPARSE":
        return tensor(elem, [1, int(ctx.attr("max_map", 1))])
    if form != "DENSE":
        raise ctx.fail(f"map_form {form!r} is not DENSE or SPARSE")
    return tensor(elem, [1, None])


@shape_rule("ZipMap", domain=ML)
def zip_map(ctx: InferenceContext) -> SequenceType:
    # one map {label: score} per row of X; the scores are float scalars
    ints, strings = ctx.attr("classlabels_int64s", None), ctx.attr("classlabels_strings", None)
    if _given(ints) == _given(strings):
        raise ctx.fail("exactly one of classlabels_int64s and classlabels_strings must be set")
    labels: Sequence[Any] = ints if _given(ints) else strings
    rows = _rows(ctx)
    if rows is not None and is_concrete(rows[1]) and rows[1] != _count(labels):
        raise ctx.fail(f"X has {rows[1]} columns but there are {_count(labels)} class labels")
    key = DataType.INT64 if _given(ints) else DataType.STRING
    return SequenceType(MapType(key, TensorType(DataType.FLOAT, ())))
