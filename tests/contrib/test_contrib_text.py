"""com.microsoft Tokenizer against onnxruntime: separators, tokenexp, character tokenization,
marks, mincharnum, [C] and [N, C] inputs, empty strings and inputs, non-ASCII text; the
attribute and pattern errors; the shape rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import pyonnx
from tests.contrib._compare import compare

R = np.random.default_rng(11)

SENTENCES = ["the cat and the dog", "time flies, like an ARROW!", "", "  spaced   out  ",
             "a-b_c d.e", "naïve café über straße", "日本語 テキスト", "x"]


def _strings(values: Any) -> np.ndarray:
    """An object array of ``str`` (how string tensors are fed to both runtimes)."""
    a = np.empty(np.shape(values), dtype=object)
    a[...] = values
    return a


def _check(x: Any, **attrs: Any) -> np.ndarray:
    """Tokenize ``x`` in both runtimes (mark 0, mincharnum 1, pad "#" unless given) and assert
    the same shape and tokens; return pyonnx's output."""
    attrs = {"mark": 0, "mincharnum": 1, "pad_value": "#", **attrs}
    (y,) = compare("Tokenizer", [("x", _strings(x))], attrs=attrs,
                   output_types={0: np.dtype(object)})
    return y


@pytest.mark.parametrize("mark", [0, 1])
@pytest.mark.parametrize("seps", [[" "], [" ", ","], [",", " "], ["[ ,!]+"], [" +", "a"],
                                  ["\\s", "_", "-"], ["é|ü"], ["e|é"], ["x*"], ["\\b"], ["^t"],
                                  ["e$"], ["an|and"]])
def test_separators(seps: list[str], mark: int) -> None:
    _check(SENTENCES, separators=seps, mark=mark)


@pytest.mark.parametrize("mark", [0, 1])
@pytest.mark.parametrize("exp", ["[a-zA-Z0-9_]+", "\\w+", "\\b\\w\\w+\\b", "[^ ]+", "\\S+",
                                 "a|an|and", "t[a-z]*?", "f?l*i?e*s?", "\\d*",
                                 "[[:alpha:]]+", "\\bt", "e\\b", "x$", "^t\\w+",
                                 "(a|ab)(c|bcd)", "[éü]\\w*"])
def test_tokenexp(exp: str, mark: int) -> None:
    _check(SENTENCES[:2] + SENTENCES[3:6], tokenexp=exp, mark=mark)


@pytest.mark.parametrize("mincharnum", [1, 2, 3, 5])
def test_mincharnum(mincharnum: int) -> None:
    _check(SENTENCES, separators=[" "], mincharnum=mincharnum, mark=1)
    _check(SENTENCES, tokenexp="[a-z]+", mincharnum=mincharnum)


@pytest.mark.parametrize("how", [{"separators": [""]}, {"tokenexp": "."}])
@pytest.mark.parametrize("mark", [0, 1])
def test_character_tokenization(how: dict, mark: int) -> None:
    y = _check(["ab\nc", "é", "日本", ""], mark=mark, **how)
    assert y.shape == (4, 4 + 2 * mark)


def test_two_d_input_and_marks_layout() -> None:
    x = [["the cat", "a"], ["", "one two three"], ["x y", ""]]
    y = _check(x, separators=[" "], mark=1, pad_value="<pad>")
    assert y.shape == (3, 2, 5)
    # start mark, tokens, end mark, then the padding
    assert y[0, 0].tolist() == ["\x02", "the", "cat", "\x03", "<pad>"]
    assert y[1, 0].tolist() == ["\x02", "\x03", "<pad>", "<pad>", "<pad>"]


@pytest.mark.parametrize("x", [[""], ["", ""], [[" ", ","], ["  ", ""]]])
def test_no_tokens_gives_an_empty_last_axis(x: Any) -> None:
    y = _check(x, separators=[" ", ","], mark=1)
    assert y.shape == np.shape(x) + (0,)


@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0)])
def test_empty_input(shape: tuple[int, ...]) -> None:
    _check(np.empty(shape, dtype=object), separators=[" "], mark=1)
    _check(np.empty(shape, dtype=object), tokenexp="\\w+", mark=1)


def test_separators_win_over_tokenexp() -> None:
    _check(SENTENCES, separators=[" "], tokenexp="\\w")


def test_random_texts_against_onnxruntime() -> None:
    """Random strings over a small alphabet, where alternatives and repeats overlap a lot (the
    ground on which leftmost-first and leftmost-longest matching part ways)."""
    alphabet = list("aab b,.é ") + ["日"]
    texts = ["".join(R.choice(alphabet, R.integers(0, 16))) for _ in range(40)]
    x = np.array(texts, dtype=object).reshape(8, 5)
    for exp in ["a|ab|aab", "a*b?", "(a|b)+?", "b|ab,", "\\w+|\\w+\\.", "é?a*", "[^ ]"]:
        for mincharnum in (1, 2):
            _check(x, tokenexp=exp, mincharnum=mincharnum, mark=1)
    for seps in (["a|ab", " "], ["b*"], ["\\.|,", "é"], [" a", "a "]):
        _check(x, separators=seps, mincharnum=1)


# ---------------------------------------------------------------------------------- errors

def _model(attrs: dict[str, Any]) -> bytes:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    node = helper.make_node("Tokenizer", ["x"], ["y"], name="tok", domain="com.microsoft",
                            **attrs)
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.STRING, None)],
                              [helper.make_tensor_value_info("y", TensorProto.STRING, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                     helper.make_opsetid("com.microsoft", 1)])
    return model.SerializeToString()


def _run(x: Any, **attrs: Any) -> Any:
    attrs = {"mark": 0, "mincharnum": 1, "pad_value": "#", **attrs}
    return pyonnx.InferenceSession(_model(attrs)).run(None, {"x": _strings(x)})


@pytest.mark.parametrize("attrs, message", [
    ({}, "either the separators or the tokenexp"),
    ({"separators": [" "], "mincharnum": 0}, "mincharnum must be positive"),
    ({"separators": [""], "mincharnum": 2}, "too big for character tokenization"),
    ({"tokenexp": ".", "mincharnum": 2}, "too big for character tokenization"),
    ({"tokenexp": ""}, "tokenexp must not be empty"),
    ({"tokenexp": "a(?=b)"}, "not RE2 syntax"),  # onnxruntime refuses it too
    ({"tokenexp": "(a)\\1"}, "not RE2 syntax"),
    ({"tokenexp": "(?u)\\w+"}, "invalid regex"),  # RE2 has no (?u) flag
    ({"tokenexp": "[a-"}, "invalid regex"),
])
def test_bad_attributes(attrs: dict[str, Any], message: str) -> None:
    with pytest.raises(pyonnx.PyOnnxError, match=message) as info:
        _run(["a b"], **attrs)
    assert "tok" in str(info.value)


@pytest.mark.parametrize("attrs", [{"tokenexp": "\\pL+"}, {"separators": ["\\p{Greek}"]},
                                   {"tokenexp": "(?U)a+"}])
def test_patterns_python_re_cannot_run_are_refused(attrs: dict[str, Any]) -> None:
    """RE2 accepts these, Python's re cannot run them the same way: a clear refusal that names
    the node."""
    with pytest.raises(pyonnx.PyOnnxError, match="Tokenizer node 'tok'.*re module") as info:
        _run(["a b"], **attrs)
    assert "Python's re" in str(info.value)


def test_case_insensitive_pattern_on_non_ascii_text_is_refused() -> None:
    """RE2 folds case over Unicode, Python's re with ASCII classes only over ASCII: ASCII text
    runs, other text is refused."""
    _check(["Ab aB", "THE cat", ""], tokenexp="(?i)[a-z]+|x", mark=1)
    _check(["Ab aB", "THE cat", ""], tokenexp="a(?i:b)")
    with pytest.raises(pyonnx.PyOnnxError, match="Tokenizer node 'tok'.*case-insensitive"):
        _run(["Éa"], tokenexp="(?i)é")


@pytest.mark.parametrize("shape", [(), (1, 2, 3)])
def test_bad_rank(shape: tuple[int, ...]) -> None:
    with pytest.raises(pyonnx.PyOnnxError, match=r"\[C\] or \[N, C\]"):
        _run(np.full(shape, "a b", dtype=object), separators=[" "])


def test_invalid_utf8_bytes() -> None:
    from pyonnx.ops.contrib.text import tokenizer
    with pytest.raises(pyonnx.ExecutionError, match="not valid UTF-8"):
        tokenizer(np.array([b"ok", b"\xff"], dtype=object), mark=0, mincharnum=1,
                  pad_value="#", separators=[" "])


# ------------------------------------------------------------------------------ shape rule

def _inferred_output(x_shape: list[Any]) -> Any:
    """Y's type after strict shape inference of a Tokenizer whose X has shape ``x_shape``."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    node = helper.make_node("Tokenizer", ["x"], ["y"], domain="com.microsoft", mark=1,
                            mincharnum=1, pad_value="#", separators=[" "])
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.STRING, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                     helper.make_opsetid("com.microsoft", 1)])
    inferred = pyonnx.infer_shapes(pyonnx.load(model.SerializeToString()), strict=True)
    return inferred.graph.outputs[0].type


@pytest.mark.parametrize("x_shape, known", [
    (["N", 3], ["N", 3]), ([4], [4]),  # plus an unknown (data-dependent) last axis
    ([2, 0], [2, 0]), ([0], [0]), ([0, 3], [0, 0]),  # empty X: onnxruntime's [N, 0] / [0]
])
def test_shape_rule(x_shape: list[Any], known: list[Any]) -> None:
    y = _inferred_output(x_shape)
    assert y.elem_type == pyonnx.ir.DataType.STRING
    if 0 in x_shape:
        assert list(y.shape) == known
    else:
        assert list(y.shape[:-1]) == known and len(y.shape) == len(known) + 1
        assert isinstance(y.shape[-1], str)  # a fresh symbol: the row length is data-dependent


def test_shape_rule_refuses_rank_three() -> None:
    with pytest.raises(pyonnx.ShapeInferenceError, match=r"\[C\] or \[N, C\]"):
        _inferred_output([1, 2, 3])
