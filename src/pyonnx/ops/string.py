"""String kernels: StringNormalizer, StringSplit, StringConcat, RegexFullMatch, TfIdfVectorizer.

Strings are NumPy object arrays of ``str``. Work on strings is inherently per element (Python
``str`` methods); numeric parts (TfIdfVectorizer's n-gram matching and counting) are vectorized.
"""

from __future__ import annotations

import re

import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ops.registry import kernel

__all__: list[str] = []


def _as_str_array(x: np.ndarray, what: str = "input") -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != object and x.dtype.kind not in "US":
        raise ExecutionError(f"{what} must be a string tensor, got {x.dtype}")
    return x


def _obj(values: list, shape: tuple[int, ...]) -> np.ndarray:
    """An object array of the given shape holding ``values`` (no NumPy string conversion)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(shape)


# Languages whose case mappings differ from Unicode's default ones (dotted/dotless i, …):
# Python's str.upper/lower implement only the default mappings, which are en_US's.
_SPECIAL_CASING_LANGS = ("tr", "az", "lt")


@kernel("StringNormalizer", versions=(10,))
def string_normalizer(X: np.ndarray, *, case_change_action: str = "NONE",
                      is_case_sensitive: int = 0, locale: str = "",
                      stopwords: list[str] | None = None) -> tuple[np.ndarray]:
    """Drop stop words from a [C] or [1, C] string tensor, then optionally change case.

    Case changes use Unicode's default case mappings (those of en_US and most locales); a locale
    with special casing rules (Turkish, Azeri, Lithuanian) is refused rather than mishandled.
    """
    X = _as_str_array(X, "X")
    lang = locale.replace("-", "_").split("_")[0].lower()
    if lang in _SPECIAL_CASING_LANGS:
        raise UnsupportedOperatorError(
            f"StringNormalizer locale {locale!r} has special case mappings that pyonnx does not "
            f"implement; only locales using Unicode's default mappings (such as en_US) are "
            f"supported")
    if case_change_action not in ("NONE", "LOWER", "UPPER"):
        raise ExecutionError(f"case_change_action {case_change_action!r} must be one of "
                             f"NONE, LOWER, UPPER")
    if X.ndim == 1:
        two_d = False
    elif X.ndim == 2 and X.shape[0] == 1:
        two_d = True
    else:
        raise ExecutionError(f"StringNormalizer accepts a [C] or [1, C] tensor, got shape "
                             f"{X.shape}")
    items = [str(s) for s in X.reshape(-1)]
    if stopwords:
        if is_case_sensitive:
            stop = set(stopwords)
            items = [s for s in items if s not in stop]
        else:
            stop = {w.casefold() for w in stopwords}
            items = [s for s in items if s.casefold() not in stop]
    if case_change_action == "LOWER":
        items = [s.lower() for s in items]
    elif case_change_action == "UPPER":
        items = [s.upper() for s in items]
    if not items:
        items = [""]  # the spec's "empty value": one empty string
    shape = (1, len(items)) if two_d else (len(items),)
    return (_obj(items, shape),)


@kernel("StringSplit", versions=(20,))
def string_split(X: np.ndarray, *, delimiter: str = "", maxsplit: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Split each string on ``delimiter`` (whitespace runs when empty); pad with "" to one width."""
    X = _as_str_array(X, "X")
    limit = -1 if maxsplit is None else int(maxsplit)
    if limit < -1:
        raise ExecutionError(f"maxsplit must be non-negative, got {maxsplit}")
    sep = delimiter or None  # None: Python splits on whitespace runs and strips the ends
    parts = [str(s).split(sep, limit) for s in X.reshape(-1)]
    if sep is None:
        # Python keeps trailing whitespace on the unsplit remainder; the spec strips it.
        parts = [p[:-1] + [p[-1].rstrip()] if p else p for p in parts]
    counts = np.array([len(p) for p in parts], dtype=np.int64).reshape(X.shape)
    width = int(counts.max()) if counts.size else 0
    y = np.full((len(parts), width), "", dtype=object)
    for i, p in enumerate(parts):
        y[i, :len(p)] = p
    return (y.reshape(X.shape + (width,)), counts)


@kernel("StringConcat", versions=(20,))
def string_concat(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray]:
    """Element-wise concatenation of two string tensors, with NumPy broadcasting."""
    X, Y = _as_str_array(X, "X"), _as_str_array(Y, "Y")
    try:
        shape = np.broadcast_shapes(X.shape, Y.shape)
    except ValueError:
        raise ExecutionError(f"StringConcat inputs of shapes {X.shape} and {Y.shape} do not "
                             f"broadcast") from None
    out = np.empty(shape, dtype=object)
    # np.add on object arrays calls str.__add__ element-wise; `out=` keeps a 0-d result an array.
    np.add(X.astype(object, copy=False), Y.astype(object, copy=False), out=out)
    return (out,)


# --- RegexFullMatch -------------------------------------------------------------------------

_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}
_PERL_CLASSES = "dDwWsS"


def re2_to_python(pattern: str) -> str:
    """Translate an RE2 pattern to Python ``re`` syntax, refusing what RE2 itself rejects.

    Differences handled: ``\\z`` (end of text) becomes ``\\Z``; ``$`` outside a class matches only
    at the end of the text as in RE2 (Python's also matches before a final newline);
    ``\\Q...\\E`` literals are escaped; POSIX classes ``[[:alpha:]]`` are expanded.
    Backreferences and lookaround assertions are not RE2 syntax and raise ``ExecutionError``;
    Unicode classes ``\\p{..}`` / ``\\pL`` have no Python ``re`` equivalent and raise
    ``UnsupportedOperatorError``. ``\\d \\w \\s \\b`` are ASCII-only in RE2: the caller compiles
    with ``re.ASCII``.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = class_start = False
    multiline = re.search(r"\(\?[imsU]*m", pattern) is not None  # (?m): '$' is end of line
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise ExecutionError(f"invalid regex {pattern!r}: trailing backslash")
            e = pattern[i + 1]
            if e == "Q":
                end = pattern.find("\\E", i + 2)
                lit = pattern[i + 2:] if end < 0 else pattern[i + 2:end]
                out.append("".join("\\" + ch if not ch.isalnum() and ch != "_" else ch
                                   for ch in lit))
                i = n if end < 0 else end + 2
                continue
            if e in "pP":
                raise UnsupportedOperatorError(
                    f"regex {pattern!r} uses a Unicode class (\\{e}), which Python's re module "
                    f"(used by pyonnx for RE2 patterns) does not support")
            if e.isdigit() and e != "0" and not in_class:
                raise ExecutionError(f"invalid regex {pattern!r}: backreferences (\\{e}) are not "
                                     f"RE2 syntax")
            if e == "z" and not in_class:
                out.append("\\Z")
            elif e == "C":
                out.append(".")
            else:
                out.append(c + e)
            i += 2
            continue
        if in_class:
            if c == "[" and pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                name = pattern[i + 2:end] if end > 0 else ""
                neg = name.startswith("^")
                body = _POSIX_CLASSES.get(name.lstrip("^"))
                if body is None:
                    raise ExecutionError(f"invalid regex {pattern!r}: unknown POSIX class "
                                         f"[:{name}:]")
                if neg:
                    raise UnsupportedOperatorError(f"regex {pattern!r}: negated POSIX classes are "
                                                   f"not supported")
                out.append(body)
                i = end + 2
                continue
            if c == "]" and not class_start:
                in_class = False
            class_start = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            class_start = True  # a ']' right after '[' or '[^' is a literal
            continue
        if c == "(" and pattern.startswith("(?", i):
            if pattern.startswith(("(?=", "(?!", "(?<=", "(?<!", "(?>"), i) or \
                    pattern.startswith("(?P=", i):
                raise ExecutionError(f"invalid regex {pattern!r}: lookaround, atomic groups and "
                                     f"backreferences are not RE2 syntax")
        if c == "$" and not multiline:
            out.append("\\Z")
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


@kernel("RegexFullMatch", versions=(20,))
def regex_full_match(X: np.ndarray, *, pattern: str = "") -> tuple[np.ndarray]:
    """Whether each string fully matches ``pattern`` (RE2 syntax, run with Python's ``re``)."""
    X = _as_str_array(X, "X")
    try:
        rx = re.compile(re2_to_python(pattern), re.ASCII)
    except re.error as e:
        raise ExecutionError(f"invalid regex pattern {pattern!r}: {e}") from None
    flat = [rx.fullmatch(str(s)) is not None for s in X.reshape(-1)]
    return (np.array(flat, dtype=np.bool_).reshape(X.shape),)


# --- TfIdfVectorizer ------------------------------------------------------------------------

@kernel("TfIdfVectorizer", versions=(9,))
def tfidf_vectorizer(X: np.ndarray, *, max_gram_length: int, max_skip_count: int,
                     min_gram_length: int, mode: str, ngram_counts: list[int],
                     ngram_indexes: list[int], pool_int64s: list[int] | None = None,
                     pool_strings: list[str] | None = None,
                     weights: list[float] | None = None) -> tuple[np.ndarray]:
    """Count (TF), flag (IDF) or weight (TFIDF) the pool's n-grams found in each row of X.

    An n-gram of length n with skip s takes items at i, i+s+1, …, i+(n-1)(s+1); every skip from
    0 to ``max_skip_count`` is considered (1-grams once). Items are mapped to pool vocabulary ids
    first, so int and string pools share one vectorized matcher.
    """
    X = np.asarray(X)
    if mode not in ("TF", "IDF", "TFIDF"):
        raise ExecutionError(f"mode {mode!r} must be one of TF, IDF, TFIDF")
    if (pool_int64s is None) == (pool_strings is None):
        raise ExecutionError("exactly one of pool_int64s and pool_strings must be set")
    if X.ndim not in (1, 2):
        raise ExecutionError(f"TfIdfVectorizer input must be 1-D or 2-D, got shape {X.shape}")
    if not 1 <= min_gram_length <= max_gram_length:
        raise ExecutionError(f"min_gram_length {min_gram_length} and max_gram_length "
                             f"{max_gram_length} must satisfy 1 <= min <= max")
    if max_skip_count < 0:
        raise ExecutionError(f"max_skip_count must be non-negative, got {max_skip_count}")
    pool = list(pool_strings) if pool_strings is not None else [int(v) for v in pool_int64s]
    if pool_strings is not None and X.dtype != object and X.dtype.kind not in "US":
        raise ExecutionError(f"pool_strings is set, so X must be a string tensor, got {X.dtype}")
    if pool_int64s is not None and X.dtype.kind not in "iu":
        raise ExecutionError(f"pool_int64s is set, so X must be an integer tensor, got {X.dtype}")
    idx = [int(v) for v in ngram_indexes]
    if not idx:
        raise ExecutionError("ngram_indexes must not be empty")
    if min(idx) < 0:
        raise ExecutionError(f"ngram_indexes contains {min(idx)}; indexes must be non-negative")
    out_dim = max(idx) + 1
    if weights is not None and len(weights) != len(idx):
        raise ExecutionError(f"weights has {len(weights)} values but ngram_indexes has {len(idx)}")

    # Pool layout: ngram_counts[k] is where the (k+1)-grams start; the last run goes to the end.
    starts = [int(v) for v in ngram_counts] + [len(pool)]
    vocab: dict = {}
    grams_by_n: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    gram_no = 0
    for k in range(len(starts) - 1):
        n = k + 1
        lo, hi = starts[k], starts[k + 1]
        if hi < lo or (hi - lo) % n:
            raise ExecutionError(f"ngram_counts {list(ngram_counts)} does not split the pool of "
                                 f"{len(pool)} items into whole {n}-grams")
        count = (hi - lo) // n
        ids = np.array([vocab.setdefault(t, len(vocab)) for t in pool[lo:hi]],
                       dtype=np.int64).reshape(count, n)
        grams_by_n[n] = (ids, np.arange(gram_no, gram_no + count))
        gram_no += count
    if gram_no != len(idx):
        raise ExecutionError(f"the pool holds {gram_no} n-grams but ngram_indexes has {len(idx)} "
                             f"entries; they must match")
    out_index = np.array(idx, dtype=np.int64)

    rows = X.reshape(1, -1) if X.ndim == 1 else X
    nrows, ncols = rows.shape
    if pool_strings is not None:
        tok = np.array([vocab.get(str(t), -1) for t in rows.reshape(-1)],
                       dtype=np.int64).reshape(rows.shape)
    else:
        lookup = np.array(sorted(vocab), dtype=np.int64)
        ids_sorted = np.array([vocab[v] for v in sorted(vocab)], dtype=np.int64)
        r = rows.astype(np.int64)
        pos = np.clip(np.searchsorted(lookup, r), 0, max(len(lookup) - 1, 0))
        tok = np.where(lookup[pos] == r, ids_sorted[pos], -1) if len(lookup) else \
            np.full(r.shape, -1, dtype=np.int64)

    counts = np.zeros(nrows * out_dim, dtype=np.float64)
    for n in range(min_gram_length, max_gram_length + 1):
        if n not in grams_by_n or not len(grams_by_n[n][0]):
            continue
        pool_ids, pool_nos = grams_by_n[n]
        # Sort the pool's n-grams as void keys so each extracted n-gram is found by bisection.
        keys = np.ascontiguousarray(pool_ids).view(np.dtype((np.void, 8 * n))).reshape(-1)
        order = np.argsort(keys)
        keys_sorted = keys[order]
        skips = range(max_skip_count + 1) if n > 1 else range(1)
        for s in skips:
            span = (n - 1) * (s + 1)
            if span >= ncols:
                break
            starts_ = ncols - span
            g = np.stack([tok[:, j * (s + 1): j * (s + 1) + starts_] for j in range(n)], axis=-1)
            valid = (g >= 0).all(axis=-1)
            if not valid.any():
                continue
            gv = np.ascontiguousarray(g[valid])
            row_of = np.nonzero(valid)[0]
            gk = gv.view(np.dtype((np.void, 8 * n))).reshape(-1)
            p = np.clip(np.searchsorted(keys_sorted, gk), 0, len(keys_sorted) - 1)
            hit = keys_sorted[p] == gk
            if not hit.any():
                continue
            coord = out_index[pool_nos[order[p[hit]]]]
            counts += np.bincount(row_of[hit] * out_dim + coord, minlength=nrows * out_dim)
    counts = counts.reshape(nrows, out_dim)
    w = np.ones(out_dim) if weights is None else np.zeros(out_dim)
    if weights is not None:
        w[out_index] = np.asarray(weights, dtype=np.float64)
    if mode == "IDF":
        counts = np.minimum(counts, 1.0) * w
    elif mode == "TFIDF":
        counts = counts * w
    y = counts.astype(np.float32)
    return (y.reshape(out_dim) if X.ndim == 1 else y,)
