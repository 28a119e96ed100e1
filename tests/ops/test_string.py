"""String kernels: StringNormalizer, StringSplit, StringConcat, RegexFullMatch, TfIdfVectorizer.
Edge cases, error paths and agreement with onnxruntime on one-node models."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from tests.ops._oracle import run_ort
from tests.ops._oracle import kernel as k

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto  # noqa: E402


def s(*items: str) -> np.ndarray:
    a = np.empty(len(items), dtype=object)
    a[:] = list(items)
    return a


# --- StringNormalizer ----------------------------------------------------------------------

def test_normalizer_case_insensitive_stopwords_and_upper():
    x = s("Monday", "tuesday", "MONDAY", "straße")
    (y,) = k("StringNormalizer", 10)(x, stopwords=["monday"], case_change_action="UPPER")
    assert y.dtype == object and y.tolist() == ["TUESDAY", "STRASSE"]
    (y,) = k("StringNormalizer", 10)(x, stopwords=["monday"], is_case_sensitive=1)
    assert y.tolist() == ["Monday", "tuesday", "MONDAY", "straße"]


def test_normalizer_everything_dropped_keeps_rank():
    (y,) = k("StringNormalizer", 10)(s("a", "A").reshape(1, 2), stopwords=["a"])
    assert y.shape == (1, 1) and y.tolist() == [[""]]
    (y,) = k("StringNormalizer", 10)(s("a"), stopwords=["a"])
    assert y.shape == (1,) and y.tolist() == [""]


def test_normalizer_rejects_bad_shapes_and_locales():
    with pytest.raises(ExecutionError, match=r"\[C\] or \[1, C\]"):
        k("StringNormalizer", 10)(s("a", "b").reshape(2, 1))
    with pytest.raises(UnsupportedOperatorError, match="tr_TR"):
        k("StringNormalizer", 10)(s("i"), case_change_action="UPPER", locale="tr_TR")
    (y,) = k("StringNormalizer", 10)(s("i"), case_change_action="UPPER", locale="en_US")
    assert y.tolist() == ["I"]


# --- StringSplit ---------------------------------------------------------------------------

def test_split_whitespace_strips_and_pads():
    y, z = k("StringSplit", 20)(s("  a  b ", "", "c\td\ne  ").reshape(3, 1))
    assert y.shape == (3, 1, 3) and z.shape == (3, 1) and z.dtype == np.int64
    assert y.tolist() == [[["a", "b", ""]], [["", "", ""]], [["c", "d", "e"]]]
    assert z.ravel().tolist() == [2, 0, 3]
    y, z = k("StringSplit", 20)(s(" a b  c  "), maxsplit=1)
    assert y.tolist() == [["a", "b  c"]] and z.tolist() == [2]


@pytest.mark.parametrize("attrs", [{"delimiter": "-"}, {"delimiter": "--", "maxsplit": 1},
                                   {"delimiter": ","}])
def test_split_delimiter_matches_onnxruntime(attrs):
    x = s("a-b--c-", "-", "abc", "x--y--z")
    y, z = k("StringSplit", 20)(x, **attrs)
    ry, rz = run_ort("StringSplit", {"x": x}, opset=20,
                     output_types=[TensorProto.STRING, TensorProto.INT64], **attrs)
    assert y.tolist() == ry.tolist() and z.tolist() == rz.tolist()


def test_split_empty_input():
    y, z = k("StringSplit", 20)(np.empty((0, 2), dtype=object), delimiter=",")
    assert y.shape == (0, 2, 0) and z.shape == (0, 2)


# --- StringConcat --------------------------------------------------------------------------

def test_concat_broadcasts_and_keeps_0d_arrays():
    (z,) = k("StringConcat", 20)(s("a", "b").reshape(2, 1), s("x", "y", "z"))
    assert z.shape == (2, 3) and z.tolist() == [["ax", "ay", "az"], ["bx", "by", "bz"]]
    (z,) = k("StringConcat", 20)(np.array("ab", dtype=object), np.array("c", dtype=object))
    assert isinstance(z, np.ndarray) and z.shape == () and z.item() == "abc"
    with pytest.raises(ExecutionError, match="do not broadcast"):
        k("StringConcat", 20)(s("a", "b"), s("x", "y", "z"))


# --- RegexFullMatch ------------------------------------------------------------------------

_WORDS = s("abc", "abc\n", "ab12", "AB", "a_b", "٣", "3", "", "a.b@gmail.com")


@pytest.mark.parametrize("pattern", [
    "abc$", r"abc\z", r"\d", "[[:alpha:]]+", "[[:alnum:]_]+", r"\w+", "(?i)ab",
    r"[\w.]+@(gmail|yahoo)\.com", r"\Q.b@\E", ".*", "[]a]+", r"a\.b.*",
])
def test_regex_matches_onnxruntime(pattern):
    (y,) = k("RegexFullMatch", 20)(_WORDS, pattern=pattern)
    (ref,) = run_ort("RegexFullMatch", {"x": _WORDS}, opset=20, output_types=[TensorProto.BOOL],
                     pattern=pattern)
    assert y.dtype == np.bool_
    assert y.tolist() == ref.tolist()


@pytest.mark.parametrize("pattern,match", [
    ("a(b", "invalid regex pattern"),
    (r"(a)\1", "backreferences"),
    ("a(?=b)", "lookaround"),
    ("[[:nope:]]", "unknown POSIX class"),
])
def test_regex_invalid_pattern_raises(pattern, match):
    with pytest.raises(ExecutionError, match=match):
        k("RegexFullMatch", 20)(s("ab"), pattern=pattern)


def test_regex_unicode_class_unsupported():
    with pytest.raises(UnsupportedOperatorError, match="Unicode class"):
        k("RegexFullMatch", 20)(s("ab"), pattern=r"\pL+")


# --- TfIdfVectorizer -----------------------------------------------------------------------

_POOL_ATTRS = dict(min_gram_length=1, max_gram_length=3, max_skip_count=2,
                   ngram_counts=[0, 3, 7], ngram_indexes=[6, 0, 1, 2, 3, 4, 5, 8])


@pytest.mark.parametrize("mode", ["TF", "IDF", "TFIDF"])
def test_tfidf_int_pool_matches_onnxruntime(mode):
    rng = np.random.default_rng(7)
    x = rng.integers(1, 6, (3, 11)).astype(np.int64)
    attrs = dict(_POOL_ATTRS, mode=mode,
                 pool_int64s=[1, 2, 3, 1, 2, 2, 3, 4, 5, 1, 2, 3, 3, 3, 3, 3],
                 weights=[0.5, 1.0, 2.0, 3.0, 0.25, 1.5, 1.0, 4.0])
    (y,) = k("TfIdfVectorizer", 9)(x, **attrs)
    (ref,) = run_ort("TfIdfVectorizer", {"x": x}, opset=9, output_types=[TensorProto.FLOAT],
                     **attrs)
    assert y.dtype == np.float32 and y.shape == (3, 9)
    np.testing.assert_allclose(y, ref, rtol=1e-6)


def test_tfidf_string_pool_matches_onnxruntime():
    x = s("a", "b", "c", "a", "b", "zz", "a", "c", "b")
    attrs = dict(min_gram_length=1, max_gram_length=2, max_skip_count=1, mode="TF",
                 ngram_counts=[0, 3], ngram_indexes=[0, 1, 2, 3, 4],
                 pool_strings=["a", "b", "zz", "a", "b", "b", "c"])
    (y,) = k("TfIdfVectorizer", 9)(x, **attrs)
    (ref,) = run_ort("TfIdfVectorizer", {"x": x}, opset=9, output_types=[TensorProto.FLOAT],
                     **attrs)
    assert y.shape == (5,)
    np.testing.assert_array_equal(y, ref)


def test_tfidf_errors():
    base = dict(min_gram_length=1, max_gram_length=1, max_skip_count=0, mode="TF",
                ngram_counts=[0], ngram_indexes=[0, 1])
    with pytest.raises(ExecutionError, match="exactly one of pool_int64s and pool_strings"):
        k("TfIdfVectorizer", 9)(np.zeros(3, np.int64), **base)
    with pytest.raises(ExecutionError, match="pool holds 3 n-grams but ngram_indexes has 2"):
        k("TfIdfVectorizer", 9)(np.zeros(3, np.int64), pool_int64s=[1, 2, 3], **base)
    with pytest.raises(ExecutionError, match="mode 'BM25'"):
        k("TfIdfVectorizer", 9)(np.zeros(3, np.int64), pool_int64s=[1, 2],
                                **dict(base, mode="BM25"))
