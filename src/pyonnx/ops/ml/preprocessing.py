"""Feature preprocessing of the ai.onnx.ml domain.

Scaler, Normalizer, Binarizer, Imputer, OneHotEncoder, LabelEncoder (1, 2, 4), CategoryMapper,
DictVectorizer, FeatureVectorizer, ArrayFeatureExtractor and CastMap. Numeric look-ups are
vectorized with sorted keys and ``searchsorted``; string look-ups go through a dict (NumPy has
no vectorized hash look-up for Python strings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ops.ml._common import as_2d, attr_array
from pyonnx.ops.registry import kernel

__all__ = [
    "scaler", "normalizer", "binarizer", "imputer", "one_hot_encoder", "label_encoder_1",
    "label_encoder_2", "label_encoder_4", "category_mapper", "dict_vectorizer",
    "feature_vectorizer", "array_feature_extractor", "cast_map",
]

_ML = "ai.onnx.ml"


def _is_str(x: np.ndarray) -> bool:
    return x.dtype == object or x.dtype.kind in "US"


def _set(v: Any) -> bool:
    """Whether an optional list/tensor attribute was given (present and non-empty)."""
    if v is None:
        return False
    return np.asarray(v).size > 0 if isinstance(v, np.ndarray) else len(v) > 0


# --------------------------------------------------------------------------- numeric transforms


@kernel("Scaler", versions=(1,), domain=_ML)
def scaler(X: np.ndarray, *, offset: Sequence[float] | None = None,
           scale: Sequence[float] | None = None) -> tuple[np.ndarray]:
    """Y = (X - offset) * scale (float); offset/scale have one value or one per feature."""
    x = np.asarray(X)
    n_features = x.shape[-1] if x.ndim else 1
    off = attr_array(offset, np.float32)
    sc = attr_array(scale, np.float32)
    for name, v in (("offset", off), ("scale", sc)):
        if v.size not in (0, 1, n_features):
            raise ExecutionError(f"Scaler: {name} has {v.size} values but X has {n_features} "
                                 f"features (shape {list(x.shape)}); expected 1 or {n_features}")
    work = np.float32 if x.dtype == np.float32 else np.float64
    y = x.astype(work)
    if off.size:
        y = y - off.astype(work)
    if sc.size:
        y = y * sc.astype(work)
    return (y.astype(np.float32),)


@kernel("Normalizer", versions=(1,), domain=_ML)
def normalizer(X: np.ndarray, *, norm: str = "MAX") -> tuple[np.ndarray]:
    """Each row divided by its max (MAX), its sum of |x| (L1) or its Euclidean norm (L2);
    a row whose divisor is 0 is left unchanged. Output float, same shape as X."""
    if norm not in ("MAX", "L1", "L2"):
        raise UnsupportedOperatorError(f"Normalizer: norm {norm!r} is not supported (expected "
                                       f"MAX, L1 or L2)")
    x = np.asarray(X)
    if x.ndim not in (1, 2):
        raise ExecutionError(f"Normalizer: X must be 1-D or 2-D, got shape {list(x.shape)}")
    rows = as_2d("Normalizer", x).astype(np.float64)
    if norm == "MAX":
        d = rows.max(axis=1, keepdims=True) if rows.shape[1] else np.ones((rows.shape[0], 1))
    elif norm == "L1":
        d = np.abs(rows).sum(axis=1, keepdims=True)
    else:
        d = np.sqrt((rows * rows).sum(axis=1, keepdims=True))
    y = np.divide(rows, d, out=rows.copy(), where=d != 0)
    return (y.astype(np.float32).reshape(x.shape),)


@kernel("Binarizer", versions=(1,), domain=_ML)
def binarizer(X: np.ndarray, *, threshold: float = 0.0) -> tuple[np.ndarray]:
    """Y = 1 where X > threshold, else 0, in X's type. A NaN input is an error (as in
    onnxruntime): it is neither above nor below the threshold."""
    x = np.asarray(X)
    if x.dtype.kind == "f":
        nan = np.isnan(x)
        if nan.any():
            i = int(np.flatnonzero(nan.reshape(-1))[0])
            raise ExecutionError(f"Binarizer: X contains NaN (flat index {i})")
        thr = x.dtype.type(threshold)
    else:
        thr = threshold
    return (np.asarray(x > thr).astype(x.dtype),)  # a 0-d comparison gives a NumPy scalar


@kernel("Imputer", versions=(1,), domain=_ML)
def imputer(X: np.ndarray, *, imputed_value_floats: Sequence[float] | None = None,
            imputed_value_int64s: Sequence[int] | None = None,
            replaced_value_float: float = 0.0,
            replaced_value_int64: int = 0) -> tuple[np.ndarray]:
    """Y = X with every element equal to the replaced value (NaN matches NaN) set to the
    imputed value of its feature (one value, or one per feature of the last axis)."""
    x = np.asarray(X)
    if x.dtype.kind == "f":
        if not _set(imputed_value_floats):
            raise ExecutionError(f"Imputer: X is {x.dtype}, so imputed_value_floats must be set")
        imputed = attr_array(imputed_value_floats, np.float32).astype(x.dtype)
        rv = np.float32(replaced_value_float)
        hit = np.isnan(x) if np.isnan(rv) else x == x.dtype.type(rv)
    elif x.dtype.kind in "iu":
        if not _set(imputed_value_int64s):
            raise ExecutionError(f"Imputer: X is {x.dtype}, so imputed_value_int64s must be set")
        imputed = attr_array(imputed_value_int64s, np.int64)
        hit = x == int(replaced_value_int64)
        imputed = imputed.astype(x.dtype)
    else:
        raise ExecutionError(f"Imputer: X must be a numeric tensor, got {x.dtype}")
    n_features = x.shape[-1] if x.ndim else 1
    if imputed.size not in (1, n_features):
        raise ExecutionError(f"Imputer: {imputed.size} imputed values for {n_features} features "
                             f"(shape {list(x.shape)}); expected 1 or {n_features}")
    fill = np.broadcast_to(imputed if imputed.size == n_features else imputed[:1], x.shape)
    return (np.where(hit, fill, x).astype(x.dtype),)


# --------------------------------------------------------------------------- look-ups


def _numeric_lookup(x: np.ndarray, keys: np.ndarray, values: np.ndarray, default: Any,
                    out_dtype: Any, nan_matches: bool) -> np.ndarray:
    """values[i] where x == keys[i] (the last of repeated keys wins), else default."""
    keys = keys.astype(x.dtype, copy=False)
    out = np.empty(x.shape, dtype=out_dtype)
    out[...] = default
    if keys.size == 0:
        return out
    nan_val = None
    if x.dtype.kind == "f":
        kn = np.isnan(keys)
        if nan_matches and kn.any():
            nan_val = values[np.flatnonzero(kn)[-1]]
        keys, values = keys[~kn], values[~kn]
    if keys.size:
        # Keep the last occurrence of each key: unique on the reversed arrays.
        uk, first_rev = np.unique(keys[::-1], return_index=True)
        uv = values[::-1][first_rev]
        pos = np.minimum(np.searchsorted(uk, x), uk.size - 1)
        match = uk[pos] == x
        out[match] = uv[pos[match]]
    if nan_val is not None:
        out[np.isnan(x)] = nan_val
    return out


def _string_lookup(x: np.ndarray, keys: Sequence[Any], values: Sequence[Any], default: Any,
                   out_dtype: Any) -> np.ndarray:
    table = dict(zip(keys, values))  # later keys overwrite earlier ones
    flat = [table.get(v, default) for v in x.reshape(-1).tolist()]
    return np.array(flat, dtype=out_dtype).reshape(x.shape)


def _lookup(op: str, x: np.ndarray, keys: Any, values: Any, default: Any, out_dtype: Any,
            nan_matches: bool) -> np.ndarray:
    if _is_str(x):
        ks = [str(k) for k in np.asarray(keys, dtype=object).reshape(-1).tolist()]
        vs = np.asarray(values, dtype=object if out_dtype == object else out_dtype).reshape(-1)
        return _string_lookup(x.astype(object), ks, list(vs.tolist()), default, out_dtype)
    vals = np.asarray(values, dtype=out_dtype).reshape(-1)
    return _numeric_lookup(x, np.asarray(keys).reshape(-1), vals, default, out_dtype, nan_matches)


@kernel("LabelEncoder", versions=(1,), domain=_ML)
def label_encoder_1(X: np.ndarray, *, classes_strings: Sequence[str] | None = None,
                    default_int64: int = -1,
                    default_string: str = "_Unused") -> tuple[np.ndarray]:
    """Strings -> their index in classes_strings (default_int64 if absent); int64 -> the
    string at that index (default_string when out of range)."""
    x = np.asarray(X)
    classes = list(classes_strings or [])
    if _is_str(x):
        table: dict[str, int] = {}
        for i, c in enumerate(classes):
            table.setdefault(c, i)
        flat = [table.get(v, int(default_int64)) for v in x.reshape(-1).tolist()]
        return (np.array(flat, dtype=np.int64).reshape(x.shape),)
    if x.dtype != np.int64:
        raise ExecutionError(f"LabelEncoder: X must be string or int64, got {x.dtype}")
    arr = np.array(classes + [default_string], dtype=object)
    idx = np.where((x >= 0) & (x < len(classes)), x, len(classes))
    return (np.asarray(arr[idx], dtype=object),)  # a 0-d index picks out a bare str


def _check_input_kind(op: str, x: np.ndarray, kind: str, name: str) -> None:
    got = "string" if _is_str(x) else str(x.dtype).replace("float32", "float")
    if got != kind:
        raise ExecutionError(f"{op}: {name} holds {kind} keys but X is a {got} tensor")


@kernel("LabelEncoder", versions=(2,), domain=_ML)
def label_encoder_2(X: np.ndarray, *, default_float: float = -0.0, default_int64: int = -1,
                    default_string: str = "_Unused", keys_floats: Sequence[float] | None = None,
                    keys_int64s: Sequence[int] | None = None,
                    keys_strings: Sequence[str] | None = None,
                    values_floats: Sequence[float] | None = None,
                    values_int64s: Sequence[int] | None = None,
                    values_strings: Sequence[str] | None = None) -> tuple[np.ndarray]:
    """Y[i] = values[j] where X[i] == keys[j], else the default of the values' type."""
    return (_label_encoder("LabelEncoder", np.asarray(X), keys_floats, keys_int64s, keys_strings,
                           None, values_floats, values_int64s, values_strings, None,
                           default_float, default_int64, default_string, None,
                           nan_matches=True),)


@kernel("LabelEncoder", versions=(4,), domain=_ML)
def label_encoder_4(X: np.ndarray, *, default_float: float = -0.0, default_int64: int = -1,
                    default_string: str = "_Unused", default_tensor: np.ndarray | None = None,
                    keys_floats: Sequence[float] | None = None,
                    keys_int64s: Sequence[int] | None = None,
                    keys_strings: Sequence[str] | None = None,
                    keys_tensor: np.ndarray | None = None,
                    values_floats: Sequence[float] | None = None,
                    values_int64s: Sequence[int] | None = None,
                    values_strings: Sequence[str] | None = None,
                    values_tensor: np.ndarray | None = None) -> tuple[np.ndarray]:
    """Y[i] = values[j] where X[i] == keys[j] (any NaN key matches any NaN; the last of
    repeated keys wins), else the default (default_tensor, or the default_* of the values'
    type)."""
    return (_label_encoder("LabelEncoder", np.asarray(X), keys_floats, keys_int64s, keys_strings,
                           keys_tensor, values_floats, values_int64s, values_strings,
                           values_tensor, default_float, default_int64, default_string,
                           default_tensor, nan_matches=True),)


def _label_encoder(op: str, x: np.ndarray, keys_floats: Any, keys_int64s: Any, keys_strings: Any,
                   keys_tensor: Any, values_floats: Any, values_int64s: Any, values_strings: Any,
                   values_tensor: Any, default_float: float, default_int64: int,
                   default_string: str, default_tensor: Any, nan_matches: bool) -> np.ndarray:
    key_attrs = {"keys_strings": keys_strings, "keys_int64s": keys_int64s,
                 "keys_floats": keys_floats}
    if keys_tensor is not None:
        key_attrs["keys_tensor"] = keys_tensor
    given = {k: v for k, v in key_attrs.items() if _set(v)}
    if len(given) != 1:
        raise ExecutionError(f"{op}: exactly one of {', '.join(key_attrs)} must be set "
                             f"(got {', '.join(given) or 'none'})")
    kname, keys = next(iter(given.items()))
    if kname == "keys_tensor":
        kt = np.asarray(keys)
        kdt = np.dtype(object) if _is_str(kt) else kt.dtype
        if (kdt == object) != _is_str(x) or (kdt != object and kdt != x.dtype):
            raise ExecutionError(f"{op}: keys_tensor is {kdt} but X is {x.dtype}")
    else:
        _check_input_kind(op, x, {"keys_strings": "string", "keys_int64s": "int64",
                                  "keys_floats": "float"}[kname], kname)
    val_attrs = {"values_strings": values_strings, "values_int64s": values_int64s,
                 "values_floats": values_floats}
    if values_tensor is not None:
        val_attrs["values_tensor"] = values_tensor
    vgiven = {k: v for k, v in val_attrs.items() if _set(v)}
    if len(vgiven) != 1:
        raise ExecutionError(f"{op}: exactly one of {', '.join(val_attrs)} must be set "
                             f"(got {', '.join(vgiven) or 'none'})")
    vname, values = next(iter(vgiven.items()))
    if vname == "values_strings":
        out_dtype: Any = np.dtype(object)
    elif vname == "values_int64s":
        out_dtype = np.dtype(np.int64)
    elif vname == "values_floats":
        out_dtype = np.dtype(np.float32)
    else:
        vt = np.asarray(values)
        out_dtype = np.dtype(object) if _is_str(vt) else vt.dtype
    n_keys = np.asarray(keys).size if isinstance(keys, np.ndarray) else len(keys)
    n_values = np.asarray(values).size if isinstance(values, np.ndarray) else len(values)
    if n_keys != n_values:
        raise ExecutionError(f"{op}: {kname} has {n_keys} entries but {vname} has {n_values}")
    if default_tensor is not None and np.asarray(default_tensor).size:
        default: Any = np.asarray(default_tensor).reshape(-1)[0]
        default = str(default) if out_dtype == object else out_dtype.type(default)
    elif out_dtype == object:
        default = default_string
    elif out_dtype.kind == "f":
        default = out_dtype.type(default_float)
    else:
        default = out_dtype.type(default_int64)
    return _lookup(op, x, keys, values, default, out_dtype, nan_matches)


@kernel("CategoryMapper", versions=(1,), domain=_ML)
def category_mapper(X: np.ndarray, *, cats_int64s: Sequence[int] | None = None,
                    cats_strings: Sequence[str] | None = None, default_int64: int = -1,
                    default_string: str = "_Unused") -> tuple[np.ndarray]:
    """Strings -> the paired integer (default_int64 if absent); int64 -> the paired string
    (default_string if absent)."""
    op = "CategoryMapper"
    ints = list(cats_int64s or [])
    strs = list(cats_strings or [])
    if len(ints) != len(strs):
        raise ExecutionError(f"{op}: cats_int64s has {len(ints)} entries but cats_strings has "
                             f"{len(strs)}")
    x = np.asarray(X)
    if _is_str(x):
        table = dict(zip(strs, ints))
        flat = [table.get(v, int(default_int64)) for v in x.reshape(-1).tolist()]
        return (np.array(flat, dtype=np.int64).reshape(x.shape),)
    if x.dtype != np.int64:
        raise ExecutionError(f"{op}: X must be string or int64, got {x.dtype}")
    return (_numeric_lookup(x, np.asarray(ints, np.int64), np.asarray(strs, dtype=object),
                            default_string, object, False),)


@kernel("OneHotEncoder", versions=(1,), domain=_ML)
def one_hot_encoder(X: np.ndarray, *, cats_int64s: Sequence[int] | None = None,
                    cats_strings: Sequence[str] | None = None,
                    zeros: int = 1) -> tuple[np.ndarray]:
    """Y[..., j] = 1 where X equals category j (float, shape X.shape + [categories]).

    Numeric inputs are truncated to integers and looked up in cats_int64s. An unknown value
    gives a row of zeros, or an error when ``zeros`` is 0.
    """
    op = "OneHotEncoder"
    x = np.asarray(X)
    if _set(cats_strings) == _set(cats_int64s):
        raise ExecutionError(f"{op}: exactly one of cats_int64s and cats_strings must be set")
    if _is_str(x):
        if not _set(cats_strings):
            raise ExecutionError(f"{op}: X is a string tensor, so cats_strings must be set")
        cats: list[Any] = list(cats_strings)
        table: dict[Any, int] = {}
        for i, c in enumerate(cats):
            table.setdefault(c, i)
        flat_in = x.reshape(-1).tolist()
        idx = np.fromiter((table.get(v, -1) for v in flat_in), np.int64, len(flat_in))
    else:
        if not _set(cats_int64s):
            raise ExecutionError(f"{op}: X is a numeric tensor, so cats_int64s must be set")
        cats = [int(c) for c in cats_int64s]
        flat_in = x.reshape(-1).astype(np.int64)
        ck = np.asarray(cats, np.int64)
        order = np.argsort(ck, kind="stable")
        sk = ck[order]
        pos = np.minimum(np.searchsorted(sk, flat_in), sk.size - 1)
        idx = np.where(sk[pos] == flat_in, order[pos], -1)
        flat_in = flat_in.tolist()
    missing = idx < 0
    if not int(zeros) and missing.any():
        bad = flat_in[int(np.flatnonzero(missing)[0])]
        raise ExecutionError(f"{op}: value {bad!r} is not one of the {len(cats)} categories and "
                             f"zeros is 0")
    y = np.zeros((idx.size, len(cats)), np.float32)
    hit = np.flatnonzero(~missing)
    y[hit, idx[hit]] = 1
    return (y.reshape(x.shape + (len(cats),)),)


# --------------------------------------------------------------------------- maps and features


def _map_value_dtype(values: list[Any]) -> np.dtype:
    """The element type of a map's values, as the kernel sees them (the declared map type is
    not passed to kernels): NumPy scalars keep their type, Python floats are float32 (the
    converters' map(string, float)), ints int64, strings string."""
    if not values:
        return np.dtype(np.float32)
    v = values[0]
    if isinstance(v, np.generic):
        return np.dtype(object) if isinstance(v, np.str_) else v.dtype
    if isinstance(v, str):
        return np.dtype(object)
    if isinstance(v, (bool, int)):
        return np.dtype(np.int64)
    return np.dtype(np.float32)


@kernel("DictVectorizer", versions=(1,), domain=_ML)
def dict_vectorizer(X: dict, *, int64_vocabulary: Sequence[int] | None = None,
                    string_vocabulary: Sequence[str] | None = None) -> tuple[np.ndarray]:
    """Y[0, j] = X[vocabulary[j]] (0 for keys absent from the map; keys outside the
    vocabulary are ignored). Output shape [1, len(vocabulary)]."""
    op = "DictVectorizer"
    if not isinstance(X, dict):
        raise ExecutionError(f"{op}: X must be a map (dict), got {type(X).__name__}")
    if _set(int64_vocabulary) == _set(string_vocabulary):
        raise ExecutionError(f"{op}: exactly one of int64_vocabulary and string_vocabulary "
                             f"must be set")
    vocab: list[Any] = ([str(v) for v in string_vocabulary] if _set(string_vocabulary)
                        else [int(v) for v in int64_vocabulary])
    items = list(X.items())
    dtype = _map_value_dtype([v for _, v in items])
    y = np.zeros((1, len(vocab)), dtype=dtype) if dtype != object else \
        np.full((1, len(vocab)), "", dtype=object)
    pos = {k: i for i, k in enumerate(vocab)}
    for k, v in items:
        key = str(k) if isinstance(k, (str, np.str_)) else int(k)
        j = pos.get(key)
        if j is not None:
            y[0, j] = v
    return (y,)


@kernel("FeatureVectorizer", versions=(1,), domain=_ML)
def feature_vectorizer(*X: np.ndarray,
                       inputdimensions: Sequence[int] | None = None) -> tuple[np.ndarray]:
    """Concatenate the inputs along the feature axis (float), each truncated or zero-padded
    to its entry of inputdimensions; a 1-D input is one row."""
    op = "FeatureVectorizer"
    if not X:
        raise ExecutionError(f"{op}: at least one input is required")
    dims = [int(d) for d in inputdimensions] if inputdimensions else None
    if dims is not None and len(dims) != len(X):
        raise ExecutionError(f"{op}: inputdimensions has {len(dims)} entries for {len(X)} inputs")
    parts = [as_2d(op, np.asarray(x)) for x in X]
    n = parts[0].shape[0]
    for i, p in enumerate(parts):
        if p.shape[0] != n:
            raise ExecutionError(f"{op}: input {i} has {p.shape[0]} rows, input 0 has {n}")
    widths = dims if dims is not None else [p.shape[1] for p in parts]
    y = np.zeros((n, sum(widths)), np.float32)
    col = 0
    for p, w in zip(parts, widths):
        k = min(w, p.shape[1])
        y[:, col:col + k] = p[:, :k]
        col += w
    return (y,)


@kernel("ArrayFeatureExtractor", versions=(1,), domain=_ML)
def array_feature_extractor(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray]:
    """Z = X[..., Y] on the last axis (Y flattened); a 1-D X gives shape [1, len(Y)]."""
    op = "ArrayFeatureExtractor"
    x = np.asarray(X)
    idx = np.asarray(Y).reshape(-1)
    if idx.dtype != np.int64:
        raise ExecutionError(f"{op}: Y must be int64, got {idx.dtype}")
    if x.ndim == 0:
        raise ExecutionError(f"{op}: X must have at least one dimension")
    d = x.shape[-1]
    bad = (idx < 0) | (idx >= d)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise ExecutionError(f"{op}: index Y[{j}] = {int(idx[j])} is out of range [0, {d}) for "
                             f"X of shape {list(x.shape)}")
    z = x[..., idx]
    if x.ndim == 1:
        z = z.reshape(1, -1)
    return (z,)


_CAST_TO = {"TO_FLOAT": np.dtype(np.float32), "TO_STRING": np.dtype(object),
            "TO_INT64": np.dtype(np.int64)}


def _cast_value(v: Any, cast_to: str) -> Any:
    if cast_to == "TO_STRING":
        if isinstance(v, (str, np.str_)):
            return str(v)
        return f"{float(np.float32(v)):f}"  # printf "%f" of the float value
    if isinstance(v, (str, np.str_)):
        try:
            f = float(v)
        except ValueError:
            raise ExecutionError(f"CastMap: value {v!r} cannot be cast {cast_to}") from None
        return np.float32(f) if cast_to == "TO_FLOAT" else int(np.trunc(f))
    if cast_to == "TO_FLOAT":
        return np.float32(v)
    return int(np.trunc(np.float32(v)))


@kernel("CastMap", versions=(1,), domain=_ML)
def cast_map(X: dict, *, cast_to: str = "TO_FLOAT", map_form: str = "DENSE",
             max_map: int = 1) -> tuple[np.ndarray]:
    """The map's values in ascending key order, cast, as a [1, n] tensor. SPARSE places each
    value at the position its key names in a [1, max_map] tensor (0 elsewhere; the string
    "0.f" for TO_STRING, as onnxruntime writes it)."""
    op = "CastMap"
    if cast_to not in _CAST_TO:
        raise UnsupportedOperatorError(f"{op}: cast_to {cast_to!r} is not supported (expected "
                                       f"TO_FLOAT, TO_STRING or TO_INT64)")
    if map_form not in ("DENSE", "SPARSE"):
        raise UnsupportedOperatorError(f"{op}: map_form {map_form!r} is not supported (expected "
                                       f"DENSE or SPARSE)")
    if not isinstance(X, dict):
        raise ExecutionError(f"{op}: X must be a map (dict), got {type(X).__name__}")
    dtype = _CAST_TO[cast_to]
    items = sorted((int(k), v) for k, v in X.items())
    if map_form == "DENSE":
        vals = [_cast_value(v, cast_to) for _, v in items]
        return (np.array(vals, dtype=dtype).reshape(1, len(vals)),)
    size = int(max_map)
    if size < 1:
        raise ExecutionError(f"{op}: max_map must be positive for SPARSE, got {size}")
    fill: Any = "0.f" if cast_to == "TO_STRING" else 0
    y = np.full((1, size), fill, dtype=dtype)
    for k, v in items:
        if not 0 <= k < size:
            raise ExecutionError(f"{op}: key {k} is outside [0, {size}) (max_map {size})")
        y[0, k] = _cast_value(v, cast_to)
    return (y,)
