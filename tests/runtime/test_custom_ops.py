"""Custom operators: declaration, and how the checker, shape inference, the text syntax, the
optimizer and the runtime honour a declaration (process-wide, per session, per scope)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

import pyonnx
from pyonnx import (
    CustomOp,
    ExecutionError,
    InvalidArgument,
    Param,
    PyCustomOpDef,
    ShapeInferenceError,
    UnsupportedOperatorError,
    ValidationError,
    custom_op_scope,
    onnx_op,
)
from pyonnx.ir import DataType, TensorType
from pyonnx.optimizer import copy_model, optimize

DOMAIN = "ai.onnx.contrib"

# x -> Relu -> custom Scale (attribute alpha) -> y
SCALE_MODEL = """
<ir_version: 8, opset_import: ["": 17, "ai.onnx.contrib": 1]>
g (float[N, 3] x) => (float[N, 3] y) {
  t = Relu(x)
  y = ai.onnx.contrib.Scale <alpha: float = 2.0> (t)
}
"""


def _scale(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return x * np.asarray(alpha, dtype=x.dtype)


def _scale_op(**kw) -> CustomOp:  # type: ignore[no-untyped-def]
    args = dict(inputs=["T"], outputs=["T"],
                type_constraints={"T": ["tensor(float)", "tensor(double)"]},
                attrs={"alpha": 1.0}, shape_rule=lambda s, alpha: s)
    args.update(kw)
    return CustomOp("Scale", _scale, **args)


@pytest.fixture
def registered() -> Iterator[list[CustomOp]]:
    """Process-wide declarations made by a test, removed afterwards whatever happens."""
    ops: list[CustomOp] = []
    yield ops
    for op in ops:
        if op in pyonnx.registered_custom_ops():
            pyonnx.unregister_custom_op(op)


def _register(registered: list[CustomOp], op: CustomOp) -> CustomOp:
    pyonnx.register_custom_op(op)
    registered.append(op)
    return op


def _options(*ops: CustomOp) -> pyonnx.SessionOptions:
    so = pyonnx.SessionOptions()
    for op in ops:
        so.register_custom_op(op)
    return so


# ----------------------------------------------------------------------------- declaration

def test_onnx_op_decorator_reads_like_onnxruntime_extensions(registered: list[CustomOp]) -> None:
    @onnx_op(op_type="AddOne", inputs=[PyCustomOpDef.dt_float], outputs=[PyCustomOpDef.dt_float])
    def add_one(x):  # type: ignore[no-untyped-def]
        return x + np.float32(1)

    registered.append(add_one)
    assert isinstance(add_one, CustomOp)
    assert (add_one.domain, add_one.op_type, add_one.since_version) == (DOMAIN, "AddOne", 1)
    assert add_one in pyonnx.registered_custom_ops()
    # the decorated name still computes
    np.testing.assert_array_equal(add_one(np.zeros(2, np.float32)), np.ones(2, np.float32))
    s = add_one.schema
    assert [p.type_str for p in s.inputs] == ["tensor(float)"]
    assert (s.min_input, s.max_input, s.node_determinism) == (1, 1, "non_deterministic")
    assert pyonnx.defs.lookup(DOMAIN, "AddOne", 1) is s
    assert pyonnx.defs.versions(DOMAIN, "AddOne") == (1,)


def test_op_type_defaults_to_the_function_name_and_bare_decorator(
        registered: list[CustomOp]) -> None:
    @onnx_op
    def Negate(x):  # type: ignore[no-untyped-def]  # noqa: N802
        return -x

    registered.append(Negate)
    assert Negate.op_type == "Negate"
    assert [p.type_str for p in Negate.schema.outputs] == ["tensor(float)"]  # the default


def test_declared_attributes_and_types() -> None:
    op = CustomOp("Many", lambda *a, **k: a[0], inputs=[
        PyCustomOpDef.dt_int64, "tensor( double )", np.float16, Param("seq(tensor(int32))"),
        Param("T", optional=True), Param("T", variadic=True, min_arity=0)],
        outputs=["map(string, tensor(float))"], type_constraints={"T": [PyCustomOpDef.dt_bool]},
        attrs={"i": PyCustomOpDef.dt_int64, "f": PyCustomOpDef.dt_float, "s": str,
               "n": 7, "x": 0.5, "name": "a", "ks": [1, 2], "fs": [1, 2.5], "ss": ["a"],
               "t": np.ndarray, "names": list[str], "mode": "float"})
    s = op.schema
    assert [p.type_str for p in s.inputs] == ["tensor(int64)", "tensor(double)",
                                             "tensor(float16)", "seq(tensor(int32))", "T", "T"]
    assert s.outputs[0].type_str == "map(string,float)"
    assert (s.min_input, s.max_input) == (4, pyonnx.defs.UNBOUNDED)
    assert s.type_constraints == {"T": ("tensor(bool)",)}
    types = {n: (a.type, a.default) for n, a in s.attributes.items()}
    assert types == {"i": ("INT", None), "f": ("FLOAT", None), "s": ("STRING", None),
                     "n": ("INT", 7), "x": ("FLOAT", 0.5), "name": ("STRING", "a"),
                     "ks": ("INTS", (1, 2)), "fs": ("FLOATS", (1.0, 2.5)),
                     "ss": ("STRINGS", ("a",)), "t": ("TENSOR", None), "names": ("STRINGS", None),
                     "mode": ("STRING", "float")}
    assert dict(op.attribute_defaults) == {"n": 7, "x": 0.5, "name": "a", "ks": [1, 2],
                                           "fs": [1.0, 2.5], "ss": ["a"], "mode": "float"}
    # onnxruntime-extensions' list form: string attributes
    listed = CustomOp("L", lambda x, **k: x, attrs=["a", "b"])
    assert {n: a.type for n, a in listed.schema.attributes.items()} == {"a": "STRING",
                                                                       "b": "STRING"}


@pytest.mark.parametrize("kwargs, words", [
    ({"inputs": ["tensor(flaot)"]}, ["input 0", "tensor(flaot)", "unknown element type 'flaot'"]),
    ({"inputs": ["tensor(float"]}, ["input 0", "missing ')'"]),
    ({"outputs": ["vector(float)"]}, ["output 0", "unknown type constructor 'vector'"]),
    ({"inputs": ["float"]}, ["input 0", "'float'", "type parameter"]),
    ({"inputs": [PyCustomOpDef.undefined]}, ["input 0", "undefined"]),
    ({"inputs": [3.5]}, ["input 0", "3.5", "is not a type"]),
    ({"type_constraints": {"T": ["tensor(float)"]}}, ["T", "used by no input or output"]),
    ({"inputs": ["T"], "type_constraints": {"T": []}}, ["type_constraints['T']", "non-empty"]),
    ({"inputs": [Param("tensor(float)", variadic=True), "tensor(float)"]},
     ["input 0", "variadic but not the last"]),
    ({"attrs": {"a-b": 1}}, ["'a-b'", "identifier"]),
    ({"attrs": {"ctx": 1}}, ["'ctx'", "reserved"]),
    ({"attrs": {"k": []}}, ["'k'", "cannot tell the attribute type"]),
    ({"attrs": {"k": dict}}, ["dict is not an attribute type"]),
    ({"attrs": {"k": list[bytes]}}, ["list[bytes] is not an attribute type"]),
    ({"domain": ""}, ["standard domain", "'ai.onnx'"]),
    ({"domain": "ai.onnx.ml"}, ["standard domain"]),
    ({"domain": "pyonnx"}, ["reserved"]),
    ({"since_version": 0}, ["since_version", ">= 1"]),
    ({"shape_rule": 3}, ["shape_rule must be callable"]),
])
def test_declaration_mistakes_are_invalid_argument(kwargs: dict, words: list[str]) -> None:
    with pytest.raises(InvalidArgument) as info:
        CustomOp("Bad", lambda x: x, **kwargs)
    msg = str(info.value)
    assert "custom operator" in msg and "Bad" in msg
    for w in words:
        assert w in msg, msg


def test_a_builtin_operator_cannot_be_redeclared() -> None:
    with pytest.raises(InvalidArgument, match="already defines"):
        CustomOp("FusedMatMul", lambda x: x, domain="com.microsoft")
    with pytest.raises(InvalidArgument, match="op_type must be an identifier"):
        CustomOp("", lambda x: x)
    with pytest.raises(InvalidArgument, match="kernel must be callable"):
        CustomOp("K", None)  # type: ignore[arg-type]


def test_duplicate_registration_and_unregister(registered: list[CustomOp]) -> None:
    op = _register(registered, _scale_op())
    with pytest.raises(InvalidArgument, match="already registered"):
        pyonnx.register_custom_op(op)
    with pytest.raises(InvalidArgument, match="already registered.*unregister_custom_op"):
        pyonnx.register_custom_op(_scale_op())
    # a second version is a different declaration
    v2 = _register(registered, _scale_op(since_version=2))
    assert pyonnx.defs.versions(DOMAIN, "Scale") == (1, 2)
    assert pyonnx.defs.lookup(DOMAIN, "Scale", 1) is op.schema
    assert pyonnx.defs.lookup(DOMAIN, "Scale", 5) is v2.schema
    pyonnx.unregister_custom_op(op)
    assert pyonnx.defs.lookup(DOMAIN, "Scale", 1) is None
    with pytest.raises(InvalidArgument, match="not registered"):
        pyonnx.unregister_custom_op(op)
    so = pyonnx.SessionOptions()
    so.register_custom_op(op)
    with pytest.raises(InvalidArgument, match="SessionOptions.register_custom_op.*already"):
        so.register_custom_op(_scale_op())
    with pytest.raises(InvalidArgument, match="takes a CustomOp"):
        so.register_custom_op(_scale)


# ----------------------------------------------------------------------------- runtime

def test_undeclared_custom_op_says_how_to_declare_it() -> None:
    with pytest.raises(UnsupportedOperatorError) as info:
        pyonnx.InferenceSession(pyonnx.parse_model(SCALE_MODEL))
    msg = str(info.value)
    for w in ["'Scale'", "'ai.onnx.contrib'", "pyonnx.onnx_op", "register_custom_op",
              "SessionOptions.register_custom_op"]:
        assert w in msg, msg


def test_unknown_standard_operator_gets_no_custom_op_advice() -> None:
    m = pyonnx.parse_model(SCALE_MODEL.replace("ai.onnx.contrib.Scale", "Scale")
                           .replace(" <alpha: float = 2.0>", ""))
    with pytest.raises(UnsupportedOperatorError) as info:
        pyonnx.InferenceSession(m)
    assert "onnx_op" not in str(info.value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_run_with_type_constraint_and_attribute(dtype) -> None:  # type: ignore[no-untyped-def]
    text = SCALE_MODEL.replace("float[", "double[") if dtype == np.float64 else SCALE_MODEL
    sess = pyonnx.InferenceSession(pyonnx.parse_model(text), _options(_scale_op()))
    x = np.array([[1, -2, 3], [-4, 5, 6]], dtype)
    (y,) = sess.run(None, {"x": x})
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, np.maximum(x, 0) * 2)


def test_attribute_defaults_and_every_attribute_type() -> None:
    seen: dict = {}

    def kernel(x, **attrs):  # type: ignore[no-untyped-def]
        seen.update(attrs)
        return x

    op = CustomOp("Attrs", kernel, attrs={"n": 3, "f": PyCustomOpDef.dt_float, "s": "dflt",
                                          "ks": [1], "fs": list[float], "ss": ["q"],
                                          "t": np.ndarray, "unset": int})
    text = """
    <ir_version: 8, opset_import: ["": 17, "ai.onnx.contrib": 1]>
    g (float[2] x) => (float[2] y) {
      y = ai.onnx.contrib.Attrs <f: float = 0.25, s: string = "hi", ks: ints = [4, 5],
                                 fs: floats = [1.5], t: tensor = int64[2] {7, 8}> (x)
    }"""
    sess = pyonnx.InferenceSession(pyonnx.parse_model(text), _options(op))
    sess.run(None, {"x": np.zeros(2, np.float32)})
    t = seen.pop("t")
    np.testing.assert_array_equal(t, np.array([7, 8], np.int64))
    # declared defaults fill what the node omits; an attribute without default is not passed
    assert seen == {"n": 3, "f": 0.25, "s": "hi", "ks": [4, 5], "fs": [1.5], "ss": ["q"]}


def test_multiple_outputs_optional_and_variadic_inputs() -> None:
    def kernel(x, bias, *rest):  # type: ignore[no-untyped-def]
        total = x + (bias if bias is not None else 0) + sum(rest, np.zeros_like(x))
        return total, np.array(x.shape, np.int64)

    op = CustomOp("Sum", kernel, inputs=["T", Param("T", optional=True),
                                         Param("T", variadic=True, min_arity=0)],
                  outputs=["T", PyCustomOpDef.dt_int64],
                  type_constraints={"T": [np.float32, np.int32]})
    text = """
    <ir_version: 8, opset_import: ["": 17, "ai.onnx.contrib": 1]>
    g (int32[2] a, int32[2] b, int32[2] c) => (int32[2] s, int64[1] shape, int32[2] s2) {
      s, shape = ai.onnx.contrib.Sum (a, b, c, c)
      s2, unused = ai.onnx.contrib.Sum (a, , c)
    }"""
    sess = pyonnx.InferenceSession(pyonnx.parse_model(text), _options(op))
    a, b, c = (np.array([1, 2], np.int32) * k for k in (1, 10, 100))
    s, shape, s2 = sess.run(None, {"a": a, "b": b, "c": c})
    np.testing.assert_array_equal(s, a + b + 2 * c)
    np.testing.assert_array_equal(shape, [2])
    np.testing.assert_array_equal(s2, a + c)
    assert s.dtype == np.int32


def test_kernel_returning_the_wrong_dtype_names_the_node() -> None:
    op = CustomOp("Half", lambda x: x / 2, inputs=[PyCustomOpDef.dt_int64],
                  outputs=[PyCustomOpDef.dt_int64])  # true division gives float64
    text = """
    <ir_version: 8, opset_import: ["": 17, "ai.onnx.contrib": 1]>
    g (int64[2] x) => (int64[2] y) {
      [halver] y = ai.onnx.contrib.Half (x)
    }"""
    sess = pyonnx.InferenceSession(pyonnx.parse_model(text), _options(op))
    with pytest.raises(ExecutionError) as info:
        sess.run(None, {"x": np.array([2, 4], np.int64)})
    msg = str(info.value)
    for w in ["halver", "Half", "output 0", "tensor(double)", "tensor(int64)"]:
        assert w in msg, msg


@pytest.mark.parametrize("kernel, words", [
    (lambda x: 1.5, ["returned a float", "numpy.ndarray"]),
    (lambda x: (), ["returned 0 outputs", "the node has 1"]),
    (lambda x: None, ["returned None for output 0"]),
])
def test_kernel_returning_a_wrong_value_names_the_node(kernel: object, words: list[str]) -> None:
    op = CustomOp("Bad", kernel)
    text = """
    <ir_version: 8, opset_import: ["": 17, "ai.onnx.contrib": 1]>
    g (float[2] x) => (float[2] y) { [bad_node] y = ai.onnx.contrib.Bad (x) }"""
    sess = pyonnx.InferenceSession(pyonnx.parse_model(text), _options(op))
    with pytest.raises(ExecutionError) as info:
        sess.run(None, {"x": np.zeros(2, np.float32)})
    for w in ["bad_node", *words]:
        assert w in str(info.value), str(info.value)


def test_input_of_an_undeclared_type_is_an_execution_error() -> None:
    op = CustomOp("OnlyFloat", lambda x: x)
    text = """
    <ir_version: 8, opset_import: ["": 17, "ai.onnx.contrib": 1]>
    g (int64[2] x) => (int64[2] y) { [n1] y = ai.onnx.contrib.OnlyFloat (x) }"""
    sess = pyonnx.InferenceSession(pyonnx.parse_model(text), _options(op))
    with pytest.raises(ExecutionError, match=r"n1.*input 0 has type tensor\(int64\).*"
                                             r"tensor\(float\)"):
        sess.run(None, {"x": np.zeros(2, np.int64)})


def test_undeclared_attribute_is_refused_at_session_creation() -> None:
    text = SCALE_MODEL.replace("alpha: float = 2.0", "beta: float = 2.0")
    with pytest.raises(ValidationError, match="'beta'"):
        pyonnx.InferenceSession(pyonnx.parse_model(text), _options(_scale_op()))


def test_too_many_inputs_are_refused_at_creation_too_few_at_run() -> None:
    many = SCALE_MODEL.replace("(t)", "(t, t)")
    with pytest.raises(ValidationError, match="2 inputs.*at most 1"):
        pyonnx.InferenceSession(pyonnx.parse_model(many), _options(_scale_op()))
    op = CustomOp("Two", lambda a, b: a + b, inputs=[PyCustomOpDef.dt_float] * 2)
    text = """
    <ir_version: 8, opset_import: ["": 17, "ai.onnx.contrib": 1]>
    g (float[2] x) => (float[2] y) { [two] y = ai.onnx.contrib.Two (x) }"""
    sess = pyonnx.InferenceSession(pyonnx.parse_model(text), _options(op))
    with pytest.raises(ExecutionError, match="two.*takes 2 inputs, the node gives 1"):
        sess.run(None, {"x": np.zeros(2, np.float32)})


def test_custom_op_inside_an_if_branch() -> None:
    text = """
    <ir_version: 8, opset_import: ["": 17, "ai.onnx.contrib": 1]>
    g (bool c, float[3] x) => (float[3] y) {
      y = If (c) <
        then_branch = then_g () => (float[3] a) {
          a = ai.onnx.contrib.Scale <alpha: float = 3.0> (x)
        },
        else_branch = else_g () => (float[3] b) { b = Neg (x) }
      >
    }"""
    m = pyonnx.parse_model(text)
    with pytest.raises(UnsupportedOperatorError, match="Scale"):
        pyonnx.InferenceSession(m)
    op = _scale_op()
    sess = pyonnx.InferenceSession(m, _options(op))
    x = np.array([1, 2, 3], np.float32)
    np.testing.assert_array_equal(sess.run(None, {"c": np.array(True), "x": x})[0], 3 * x)
    np.testing.assert_array_equal(sess.run(None, {"c": np.array(False), "x": x})[0], -x)
    with custom_op_scope([op]):
        pyonnx.check_model(m, full_check=True)
        inferred = pyonnx.infer_shapes(m)
    then_out = inferred.graph.nodes[0].attributes["then_branch"].value.nodes[0].outputs[0]
    assert then_out.type == TensorType(DataType.FLOAT, (3,))


# ----------------------------------------------------------------------------- visibility

def test_per_session_declarations_do_not_leak(registered: list[CustomOp]) -> None:
    m = pyonnx.parse_model(SCALE_MODEL)
    x = np.ones((1, 3), np.float32)
    sess = pyonnx.InferenceSession(m, _options(_scale_op()))
    with pytest.raises(UnsupportedOperatorError):
        pyonnx.InferenceSession(m)
    with pytest.raises(UnsupportedOperatorError):
        pyonnx.InferenceSession(m, pyonnx.SessionOptions())
    assert pyonnx.defs.lookup(DOMAIN, "Scale", 1) is None
    # the first session keeps working: its plan bound the kernel
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], 2 * x)
    # a process-wide declaration is visible everywhere; a session's own one wins inside it
    _register(registered, CustomOp("Scale", lambda x, alpha=1.0: x + np.float32(alpha),
                                   attrs={"alpha": float}))
    added = pyonnx.InferenceSession(m).run(None, {"x": x})[0]
    scaled = pyonnx.InferenceSession(m, _options(_scale_op())).run(None, {"x": x})[0]
    np.testing.assert_array_equal(added, x + 2)
    np.testing.assert_array_equal(scaled, x * 2)


def test_a_scope_is_visible_only_to_the_thread_that_entered_it() -> None:
    # what a session does while it is created on another thread: its declarations stay there
    m = pyonnx.parse_model(SCALE_MODEL)
    started, release = threading.Event(), threading.Event()

    def slow_rule(s, alpha):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(10)
        return s

    errors: list[BaseException] = []

    def create() -> None:
        try:
            with custom_op_scope([_scale_op(shape_rule=slow_rule)]):
                pyonnx.infer_shapes(m)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=create)
    t.start()
    try:
        assert started.wait(10)
        assert pyonnx.defs.lookup(DOMAIN, "Scale", 1) is None
    finally:
        release.set()
        t.join()
    assert not errors


# ----------------------------------------------------------------------------- checker

def test_checker_validates_against_the_declaration() -> None:
    m = pyonnx.parse_model(SCALE_MODEL)
    pyonnx.check_model(m, full_check=True)  # undeclared: accepted as written, as in onnx
    with custom_op_scope([_scale_op()]):
        pyonnx.check_model(m, full_check=True)
        bad = pyonnx.parse_model(SCALE_MODEL.replace("alpha: float = 2.0", "alpha: int = 2")
                                 .replace("(t)", "(t, t)"))
        with pytest.raises(ValidationError) as info:
            pyonnx.check_model(bad)
        text = "\n".join(info.value.violations)
        assert "attribute 'alpha' has type INT but Scale-1 declares FLOAT" in text
        assert "the node has 2 inputs but Scale-1 takes 1" in text
        extra = pyonnx.parse_model(SCALE_MODEL.replace("alpha: float", "gamma: float"))
        with pytest.raises(ValidationError, match="'gamma' is not an attribute of Scale-1"):
            pyonnx.check_model(extra)
        ints = pyonnx.parse_model(SCALE_MODEL.replace("float[", "int64["))
        with pytest.raises(ValidationError, match=r"tensor\(int64\), which Scale-1 does not "
                                                  r"allow for T"):
            pyonnx.check_model(ints, full_check=True)


# ----------------------------------------------------------------------------- shape inference

def test_shape_rule_is_used_by_infer_shapes() -> None:
    def rule(x_shape, repeats):  # type: ignore[no-untyped-def]
        if x_shape is None:
            return None
        return (x_shape[0] * repeats if isinstance(x_shape[0], int) else None, *x_shape[1:])

    op = CustomOp("RepeatRows", lambda x, repeats=1: np.repeat(x, repeats, axis=0),
                  inputs=["T"], outputs=["T"], type_constraints={"T": ["tensor(float)",
                                                                       "tensor(int64)"]},
                  attrs={"repeats": 1}, shape_rule=rule)
    text = """
    <ir_version: 8, opset_import: ["": 17, "ai.onnx.contrib": 1]>
    g (int64[4, K] x) => (int64[8, K] y, int64[8, K] z) {
      y = ai.onnx.contrib.RepeatRows <repeats: int = 2> (x)
      z = ai.onnx.contrib.RepeatRows (y)
    }"""
    m = pyonnx.parse_model(text)
    with custom_op_scope([op]):
        out = pyonnx.infer_shapes(m, strict=True)
        pyonnx.check_model(m, full_check=True)
    types = {v.name: v.type for v in out.graph.outputs}
    assert types["y"] == TensorType(DataType.INT64, (8, "K"))
    assert types["z"] == TensorType(DataType.INT64, (8, "K"))  # the declared default repeats=1
    sess = pyonnx.InferenceSession(m, _options(op))
    (y, z) = sess.run(None, {"x": np.arange(8, dtype=np.int64).reshape(4, 2)})
    assert y.shape == z.shape == (8, 2)


def test_string_outputs_become_object_arrays_and_list_defaults_stay_fresh() -> None:
    def kernel(x, tags=None):  # type: ignore[no-untyped-def]
        tags.append("seen")  # a careless kernel: must not change the declared default
        return np.array([f"{v:g}:{len(tags)}" for v in x])  # NumPy's <U dtype

    op = CustomOp("Label", kernel, outputs=[PyCustomOpDef.dt_string], attrs={"tags": ["a"]})
    text = """
    <ir_version: 8, opset_import: ["": 17, "ai.onnx.contrib": 1]>
    g (float[2] x) => (string[2] y) {
      s = ai.onnx.contrib.Label (x)
      y = Identity (s)
    }"""
    sess = pyonnx.InferenceSession(pyonnx.parse_model(text), _options(op))
    for _ in range(2):
        (y,) = sess.run(None, {"x": np.array([1, 2.5], np.float32)})
        assert y.dtype == object and list(y) == ["1:2", "2.5:2"]
    assert op.attribute_defaults["tags"] == ["a"]


def test_without_shape_rule_outputs_get_declared_types_and_unknown_shapes() -> None:
    op = CustomOp("Tokenize", lambda s: np.array([len(x) for x in s], np.int64),
                  inputs=[PyCustomOpDef.dt_string], outputs=[PyCustomOpDef.dt_int64])
    text = """
    <ir_version: 8, opset_import: ["": 17, "ai.onnx.contrib": 1]>
    g (string[3] s) => (y) { y = ai.onnx.contrib.Tokenize (s) }"""
    m = pyonnx.parse_model(text)
    assert pyonnx.infer_shapes(m).graph.outputs[0].type is None  # undeclared: nothing known
    with custom_op_scope([op]):
        out = pyonnx.infer_shapes(m)
    assert out.graph.outputs[0].type == TensorType(DataType.INT64, None)
    sess = pyonnx.InferenceSession(m, _options(op))
    (y,) = sess.run(None, {"s": np.array(["a", "bb", ""], dtype=object)})
    np.testing.assert_array_equal(y, [1, 2, 0])


def test_shape_rule_mistakes_are_shape_inference_errors_in_strict_mode() -> None:
    op = _scale_op(shape_rule=lambda s, alpha: ["rows", -1])
    m = pyonnx.parse_model(SCALE_MODEL)
    with custom_op_scope([op]):
        pyonnx.infer_shapes(m)  # not strict: the output is simply left as declared
        with pytest.raises(ShapeInferenceError, match=r"shape rule of ai.onnx.contrib::Scale-1"
                                                      r" returned"):
            pyonnx.infer_shapes(m, strict=True)
    ints = pyonnx.parse_model(SCALE_MODEL.replace("float[", "int64["))
    with custom_op_scope([_scale_op()]):
        with pytest.raises(ShapeInferenceError, match=r"input 0 has type tensor\(int64\)"):
            pyonnx.infer_shapes(ints, strict=True)


# ----------------------------------------------------------------------------- text syntax

def test_text_round_trip_of_a_model_using_a_custom_op() -> None:
    m = pyonnx.parse_model(SCALE_MODEL)
    text = pyonnx.to_text(m)
    assert "ai.onnx.contrib.Scale <alpha: float = 2> (t)" in text  # as onnx.printer writes it
    again = pyonnx.parse_model(text)
    assert pyonnx.to_text(again) == text
    op = _scale_op()
    x = np.array([[1, -1, 2]], np.float32)
    with custom_op_scope([op]):
        pyonnx.check_model(again, full_check=True)
    a = pyonnx.InferenceSession(m, _options(op)).run(None, {"x": x})[0]
    b = pyonnx.InferenceSession(again, _options(op)).run(None, {"x": x})[0]
    np.testing.assert_array_equal(a, b)
    # through the binary format too
    c = pyonnx.InferenceSession(pyonnx.serialize(again), _options(op)).run(None, {"x": x})[0]
    np.testing.assert_array_equal(a, c)


# ----------------------------------------------------------------------------- optimizer

CONST_MODEL = """
<ir_version: 8, opset_import: ["": 17, "ai.onnx.contrib": 1]>
g (float[3] x) => (float[3] y) <float[3] w = {1.0, 2.0, 3.0}> {
  c = ai.onnx.contrib.Counted <alpha: float = 10.0> (w)
  y = Add (x, c)
}
"""


def _counted(deterministic: bool) -> tuple[CustomOp, list[int]]:
    calls = [0]

    def kernel(x, alpha=1.0):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return x * np.float32(alpha)

    return CustomOp("Counted", kernel, attrs={"alpha": 1.0}, deterministic=deterministic), calls


@pytest.mark.parametrize("deterministic", [False, True])
def test_constant_folding_evaluates_only_deterministic_custom_ops(deterministic: bool) -> None:
    op, calls = _counted(deterministic)
    m = pyonnx.parse_model(CONST_MODEL)
    with custom_op_scope([op]):
        folded = optimize(copy_model(m))
    left = [n.op_type for n in folded.graph.nodes]
    assert ("Counted" in left) is (not deterministic)
    assert calls[0] == (1 if deterministic else 0)
    # in a session: a non-deterministic kernel runs on every run, a deterministic one never
    calls[0] = 0
    sess = pyonnx.InferenceSession(m, _options(op))
    at_creation = calls[0]
    x = np.zeros(3, np.float32)
    for _ in range(2):
        np.testing.assert_array_equal(sess.run(None, {"x": x})[0], [10, 20, 30])
    assert at_creation == (1 if deterministic else 0)
    assert calls[0] - at_creation == (0 if deterministic else 2)


def test_deterministic_custom_op_is_evaluated_by_data_propagation() -> None:
    # the engine evaluates a node whose output size it knows: the shape rule says it
    op = CustomOp("Double", lambda x: x * 2, inputs=[PyCustomOpDef.dt_int64],
                  outputs=[PyCustomOpDef.dt_int64], shape_rule=lambda s: s, deterministic=True)
    text = """
    <ir_version: 8, opset_import: ["": 17, "ai.onnx.contrib": 1]>
    g (float[12] x) => (y) <int64[2] s = {1, 3}> {
      s2 = ai.onnx.contrib.Double (s)
      y = Reshape (x, s2)
    }"""
    # the target shape is only known by evaluating the custom op on the constant
    with custom_op_scope([op]):
        out = pyonnx.infer_shapes(pyonnx.parse_model(text))
    assert out.graph.outputs[0].type == TensorType(DataType.FLOAT, (2, 6))
    nondet = CustomOp("Double", lambda x: x * 2, inputs=[PyCustomOpDef.dt_int64],
                      outputs=[PyCustomOpDef.dt_int64], shape_rule=lambda s: s)
    with custom_op_scope([nondet]):
        out = pyonnx.infer_shapes(pyonnx.parse_model(text))
    shape = out.graph.outputs[0].type.shape
    assert shape is None or not all(isinstance(d, int) for d in shape)


# ----------------------------------------------------------------------------- more places

def test_custom_op_inside_a_model_local_function() -> None:
    text = """
    <ir_version: 8, opset_import: ["": 17, "ai.onnx.contrib": 1, "local": 1]>
    g (float[3] x) => (float[3] y) { y = local.ScaleTwice (x) }

    <domain: "local", opset_import: ["ai.onnx.contrib": 1]>
    ScaleTwice (a) => (b) {
      t = ai.onnx.contrib.Scale <alpha: float = 2.0> (a)
      b = ai.onnx.contrib.Scale <alpha: float = 5.0> (t)
    }"""
    m = pyonnx.parse_model(text)
    op = _scale_op()
    sess = pyonnx.InferenceSession(m, _options(op))
    x = np.array([1, 2, 3], np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], 10 * x)
    with custom_op_scope([op]):
        pyonnx.check_model(m, full_check=True)
        assert pyonnx.infer_shapes(m).graph.outputs[0].type == TensorType(DataType.FLOAT, (3,))


def test_nested_scopes_and_a_new_operator_in_com_microsoft() -> None:
    outer = CustomOp("Thing", lambda x: x + np.float32(1), domain="com.microsoft")
    inner = CustomOp("Thing", lambda x: x + np.float32(2), domain="com.microsoft")
    other = CustomOp("Other", lambda x: x, domain="com.microsoft")
    with custom_op_scope([outer, other]):
        assert pyonnx.defs.lookup("com.microsoft", "Thing", 1) is outer.schema
        with custom_op_scope([inner]):
            assert pyonnx.defs.lookup("com.microsoft", "Thing", 1) is inner.schema
            assert pyonnx.defs.lookup("com.microsoft", "Other", 1) is other.schema
        assert pyonnx.defs.lookup("com.microsoft", "Thing", 1) is outer.schema
    assert pyonnx.defs.lookup("com.microsoft", "Thing", 1) is None
    with pytest.raises(InvalidArgument, match="custom_op_scope.*already registered"):
        with custom_op_scope([outer, inner]):
            pass


def test_a_session_runs_its_custom_op_from_other_threads() -> None:
    sess = pyonnx.InferenceSession(pyonnx.parse_model(SCALE_MODEL), _options(_scale_op()))
    results: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        x = np.full((2, 3), i, np.float32)
        results[i] = sess.run(None, {"x": x})[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        np.testing.assert_array_equal(results[i], np.full((2, 3), 2 * i, np.float32))
