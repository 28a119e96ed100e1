"""pyonnx.defs: the schema table matches the onnx package and resolves versions per the spec."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path

import numpy as np
import onnx
import onnx.defs
import onnx.helper
import pytest

import pyonnx.defs as defs
from pyonnx.defs import UNBOUNDED, FormalParameterOption, OpSchema

REPO = Path(__file__).resolve().parents[2]
JSON_PATH = REPO / "src" / "pyonnx" / "defs" / "schemas.json"

ALL_ONNX = onnx.defs.get_all_schemas_with_history()

_OPTION = {
    onnx.defs.OpSchema.FormalParameterOption.Single: FormalParameterOption.SINGLE,
    onnx.defs.OpSchema.FormalParameterOption.Optional: FormalParameterOption.OPTIONAL,
    onnx.defs.OpSchema.FormalParameterOption.Variadic: FormalParameterOption.VARIADIC,
}


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_schemas", REPO / "tools" / "gen_schemas.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _expected_default(attr: onnx.defs.OpSchema.Attribute):
    """The default of an onnx schema attribute as pyonnx should hold it (None if none)."""
    proto = attr.default_value
    if proto.type == onnx.AttributeProto.UNDEFINED:
        return None
    value = onnx.helper.get_attribute_value(proto)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return tuple(v.decode("utf-8") if isinstance(v, bytes) else v for v in value)
    return value


def _same_value(ours, theirs, attr_type: str) -> bool:
    if attr_type == "FLOAT":
        # AttributeProto holds float32: the table's shortest decimal must name the same float32.
        return np.float32(ours) == np.float32(theirs) or (math.isnan(ours) and math.isnan(theirs))
    if attr_type == "FLOATS":
        return len(ours) == len(theirs) and all(
            np.float32(a) == np.float32(b) for a, b in zip(ours, theirs)
        )
    return ours == theirs and type(ours) is type(theirs)


def assert_matches_onnx(ours: OpSchema, theirs: onnx.defs.OpSchema) -> None:
    where = f"{theirs.domain or 'ai.onnx'}::{theirs.name}-{theirs.since_version}"
    assert ours.name == ours.op_type == theirs.name, where
    assert ours.domain == theirs.domain, where
    assert ours.since_version == theirs.since_version, where
    assert ours.deprecated == theirs.deprecated, where
    assert (ours.min_input, ours.max_input, ours.min_output, ours.max_output) == (
        theirs.min_input,
        theirs.max_input,
        theirs.min_output,
        theirs.max_output,
    ), where
    assert ours.has_function == theirs.has_function, where
    assert ours.has_context_dependent_function == theirs.has_context_dependent_function, where
    for mine, formal in ((ours.inputs, theirs.inputs), (ours.outputs, theirs.outputs)):
        assert [(p.name, p.type_str, p.option, p.is_homogeneous, p.min_arity) for p in mine] == [
            (p.name, p.type_str, _OPTION[p.option], p.is_homogeneous, p.min_arity) for p in formal
        ], where
    assert set(ours.attributes) == set(theirs.attributes), where
    for name, attr in theirs.attributes.items():
        mine = ours.attributes[name]
        assert mine.name == name, where
        assert mine.type == attr.type.name, (where, name)
        assert mine.required == attr.required, (where, name)
        expected = _expected_default(attr)
        if expected is None:
            assert not mine.has_default and mine.default is None, (where, name)
        else:
            assert mine.has_default, (where, name)
            assert _same_value(mine.default, expected, mine.type), (where, name, mine.default)
    assert dict(ours.type_constraints) == {
        tc.type_param_str: tuple(tc.allowed_type_strs) for tc in theirs.type_constraints
    }, where


# ---------------------------------------------------------------------------------------------
# version resolution


@pytest.mark.parametrize(
    ("domain", "op_type", "opset", "since"),
    [
        ("", "Clip", 12, 12),
        ("", "Clip", 10, 6),
        ("", "Clip", 11, 11),
        ("", "Clip", 28, 13),
        ("", "Relu", 28, 14),
        ("", "Relu", 5, 1),
        ("", "Relu", 6, 6),
        ("ai.onnx", "Relu", 13, 13),
        ("ai.onnx", "Clip", 10, 6),
        ("", "Gelu", 20, 20),
        ("ai.onnx.ml", "TreeEnsemble", 5, 5),
        ("ai.onnx.ml", "LabelEncoder", 3, 2),
        ("ai.onnx.preview.training", "Adam", 1, 1),
        # newer than the table: the newest schema (the caller checks max_opset)
        ("", "Relu", 1000, 14),
    ],
)
def test_lookup_resolves_the_largest_since_version_not_above_opset(domain, op_type, opset, since):
    schema = defs.lookup(domain, op_type, opset)
    assert schema is not None
    assert schema.op_type == op_type
    assert schema.since_version == since
    assert schema.domain == defs.normalize_domain(domain)


@pytest.mark.parametrize(
    ("domain", "op_type", "opset"),
    [
        ("", "NoSuchOp", 28),  # unknown operator
        ("", "Gelu", 19),  # exists only from opset 20
        ("", "Relu", 0),  # before any version
        ("ai.onnx.ml", "TreeEnsemble", 4),
        ("ai.onnx.ml", "Relu", 5),  # an op of another domain
        ("", "TreeEnsemble", 28),
        ("com.microsoft", "WordConvEmbedding", 1),  # a contrib op pyonnx has no schema for
        ("org.example", "Anything", 1),  # a domain the table does not have
        ("ai.onnx.training", "Adam", 1),
    ],
)
def test_lookup_returns_none(domain, op_type, opset):
    assert defs.lookup(domain, op_type, opset) is None


def test_ai_onnx_is_an_alias_of_the_default_domain():
    assert defs.lookup("ai.onnx", "Conv", 17) is defs.lookup("", "Conv", 17)
    assert defs.versions("ai.onnx", "Conv") == defs.versions("", "Conv") == (1, 11, 22)
    assert defs.has_op("ai.onnx", "Conv")
    assert defs.op_types("ai.onnx") == defs.op_types("")
    assert defs.max_opset("ai.onnx") == defs.max_opset("") == onnx.defs.onnx_opset_version()
    assert defs.lookup("ai.onnx", "Conv", 17).domain == ""


def test_deprecated_versions_are_returned_flagged():
    upsample = defs.lookup("", "Upsample", 28)
    assert upsample is not None and upsample.since_version == 10 and upsample.deprecated
    assert not defs.lookup("", "Upsample", 9).deprecated
    scatter = defs.lookup("", "Scatter", 13)
    assert scatter is not None and scatter.since_version == 11 and scatter.deprecated
    assert defs.has_op("", "Upsample")


def test_lookup_agrees_with_onnx_get_schema_at_every_opset():
    for domain in defs.domains():
        if domain == "com.microsoft":  # onnxruntime's contrib schemas; onnx does not know them
            continue
        top = defs.max_opset(domain)
        for op_type in defs.op_types(domain):
            for opset in range(1, top + 1):
                ours = defs.lookup(domain, op_type, opset)
                try:
                    theirs = onnx.defs.get_schema(op_type, opset, domain)
                except onnx.defs.SchemaError:
                    theirs = None
                if theirs is None:
                    assert ours is None, (domain, op_type, opset)
                else:
                    assert ours is not None, (domain, op_type, opset)
                    assert ours.since_version == theirs.since_version, (domain, op_type, opset)


def test_lookup_returns_the_same_cached_instance():
    assert defs.lookup("", "Add", 14) is defs.lookup("", "Add", 17)


# ---------------------------------------------------------------------------------------------
# table-level queries


def test_every_onnx_schema_is_present_and_nothing_else():
    ours = {
        (d, op, v) for d in defs.domains() if d != "com.microsoft"  # onnxruntime's, tested below
        for op in defs.op_types(d) for v in defs.versions(d, op)
    }
    theirs = {(s.domain, s.name, s.since_version) for s in ALL_ONNX}
    assert ours == theirs
    assert len(theirs) == len(ALL_ONNX)


def test_versions_are_ascending_and_match_onnx():
    expected: dict[tuple[str, str], list[int]] = {}
    for s in ALL_ONNX:
        expected.setdefault((s.domain, s.name), []).append(s.since_version)
    for (domain, op_type), vs in expected.items():
        assert defs.versions(domain, op_type) == tuple(sorted(vs))
    assert defs.versions("", "NoSuchOp") == ()
    assert defs.versions("com.microsoft", "WordConvEmbedding") == ()


def test_domains_op_types_and_max_opset():
    version_map = onnx.defs.C.schema_version_map()
    assert defs.domains() == sorted([*version_map, "com.microsoft"])
    for domain, (_, hi) in version_map.items():
        assert defs.max_opset(domain) == hi
    assert defs.max_opset("") == 28
    assert defs.max_opset("ai.onnx.ml") == 5
    assert defs.max_opset("com.microsoft") == 1
    assert defs.max_opset("org.example") is None
    assert defs.max_opset("ai.onnx.training") == 1
    assert defs.op_types("ai.onnx.training") == []
    assert "SkipLayerNormalization" in defs.op_types("com.microsoft")
    assert defs.lookup("com.microsoft", "MatMulNBits", 1).since_version == 1
    assert defs.lookup("", "SimplifiedLayerNormalization", 28) is None  # contrib, not ONNX
    names = defs.op_types("")
    assert names == sorted(names) and "Conv" in names and "Upsample" in names
    assert defs.has_op("", "Conv") and not defs.has_op("", "NoSuchOp")
    assert not defs.has_op("com.microsoft", "WordConvEmbedding")
    assert defs.op_types("ai.onnx.ml") == sorted(
        {s.name for s in ALL_ONNX if s.domain == "ai.onnx.ml"}
    )


def test_ir_and_onnx_versions():
    assert defs.MAX_IR_VERSION == onnx.IR_VERSION
    assert defs.onnx_version() == onnx.__version__


# ---------------------------------------------------------------------------------------------
# schema contents


@pytest.mark.parametrize("op_type", ["Conv", "Resize", "LSTM"])
def test_full_schemas_match_onnx(op_type):
    schemas = [s for s in ALL_ONNX if s.name == op_type and s.domain == ""]
    assert schemas
    for theirs in schemas:
        ours = defs.lookup("", op_type, theirs.since_version)
        assert ours is not None
        assert_matches_onnx(ours, theirs)


def test_every_schema_matches_onnx():
    # all 659 schemas, field by field (a superset of any random sample; it takes ~0.1 s)
    for theirs in ALL_ONNX:
        ours = defs.lookup(theirs.domain, theirs.name, theirs.since_version)
        assert ours is not None
        assert_matches_onnx(ours, theirs)


def test_conv_by_hand():
    conv = defs.lookup("", "Conv", 22)
    assert [p.name for p in conv.inputs] == ["X", "W", "B"]
    assert [p.option for p in conv.inputs] == [
        FormalParameterOption.SINGLE,
        FormalParameterOption.SINGLE,
        FormalParameterOption.OPTIONAL,
    ]
    assert conv.inputs[2].is_optional and not conv.inputs[0].is_optional
    assert (conv.min_input, conv.max_input, conv.min_output, conv.max_output) == (2, 3, 1, 1)
    a = conv.attributes
    assert set(a) == {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}
    assert a["auto_pad"].type == "STRING" and a["auto_pad"].default == "NOTSET"
    assert a["group"].type == "INT" and a["group"].default == 1
    assert a["pads"].type == "INTS" and not a["pads"].has_default and not a["pads"].required
    assert conv.type_constraints["T"] == (
        "tensor(bfloat16)",
        "tensor(float16)",
        "tensor(float)",
        "tensor(double)",
    )
    assert conv.required_attributes == ()


def test_resize_and_lstm_by_hand():
    resize = defs.lookup("", "Resize", 19)
    a = resize.attributes
    assert a["mode"].default == "nearest"
    assert a["coordinate_transformation_mode"].default == "half_pixel"
    assert a["cubic_coeff_a"].type == "FLOAT" and a["cubic_coeff_a"].default == -0.75
    assert a["extrapolation_value"].default == 0.0
    assert a["keep_aspect_ratio_policy"].default == "stretch"
    assert a["nearest_mode"].default == "round_prefer_floor"
    assert a["antialias"].default == 0 and a["exclude_outside"].default == 0
    assert a["axes"].type == "INTS" and not a["axes"].has_default
    assert [p.name for p in resize.inputs] == ["X", "roi", "scales", "sizes"]
    assert (resize.min_input, resize.max_input) == (1, 4)
    # Resize-10 had scales as a required input and only the mode attribute
    assert set(defs.lookup("", "Resize", 10).attributes) == {"mode"}

    lstm = defs.lookup("", "LSTM", 22)
    a = lstm.attributes
    assert a["direction"].default == "forward"
    assert a["layout"].default == 0 and a["input_forget"].default == 0
    assert a["activations"].type == "STRINGS" and not a["activations"].has_default
    assert a["clip"].type == "FLOAT" and not a["clip"].has_default
    assert (lstm.min_input, lstm.max_input, lstm.min_output, lstm.max_output) == (3, 8, 0, 3)
    assert all(p.is_optional for p in lstm.outputs)
    assert "layout" not in defs.lookup("", "LSTM", 7).attributes
    # RNN-1 is one of the few schemas with a list default
    assert defs.lookup("", "RNN", 1).attributes["activations"].default == ("Tanh", "Tanh")


def test_float_defaults_are_the_shortest_float32_decimal():
    # stored as float32 9.99999974738e-06 in AttributeProto; the table says 1e-05
    assert defs.lookup("", "LayerNormalization", 17).attributes["epsilon"].default == 1e-05
    assert defs.lookup("", "BatchNormalization", 15).attributes["momentum"].default == 0.9
    assert defs.lookup("", "LeakyRelu", 16).attributes["alpha"].default == 0.01


def test_arity_fields():
    concat = defs.lookup("", "Concat", 13)
    assert concat.max_input == UNBOUNDED and concat.min_input == 1
    assert concat.inputs[0].is_variadic and concat.inputs[0].min_arity == 1
    assert concat.attributes["axis"].required

    split = defs.lookup("", "Split", 18)
    assert split.outputs[0].is_variadic and split.max_output == UNBOUNDED
    assert split.min_output == 1

    loop = defs.lookup("", "Loop", 25)
    m, cond, v_initial = loop.inputs
    assert m.is_optional and cond.is_optional
    assert v_initial.is_variadic and not v_initial.is_homogeneous and v_initial.min_arity == 0
    assert loop.attributes["body"].type == "GRAPH" and loop.attributes["body"].required
    assert loop.node_determinism == "non_deterministic"

    dropout = defs.lookup("", "Dropout", 13)
    assert (dropout.min_output, dropout.max_output) == (1, 2)

    optional = defs.lookup("", "Optional", 15)
    assert optional.attributes["type"].type == "TYPE_PROTO"
    assert defs.lookup("", "Constant", 13).attributes["value"].type == "TENSOR"

    cast = defs.lookup("", "Cast", 21)
    assert "tensor(float8e4m3fn)" in cast.type_constraints["T1"]
    assert defs.lookup("", "Shape", 15).outputs[0].type_str == "T1"
    assert defs.lookup("", "Shape", 15).type_constraints["T1"] == ("tensor(int64)",)


def test_function_flags():
    assert defs.lookup("", "Relu", 18).has_function  # Relu-14 is defined by a function body
    assert not defs.lookup("", "Conv", 22).has_function
    layer_norm = defs.lookup("", "LayerNormalization", 17)
    assert layer_norm.has_context_dependent_function


def test_schemas_are_immutable():
    conv = defs.lookup("", "Conv", 22)
    with pytest.raises(dataclasses.FrozenInstanceError):
        conv.since_version = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        conv.attributes["group"] = None  # type: ignore[index]
    with pytest.raises(TypeError):
        conv.type_constraints["T"] = ()  # type: ignore[index]
    assert isinstance(conv.inputs, tuple)
    assert hash(conv) == hash(defs.lookup("", "Conv", 22))
    assert repr(conv) == "<OpSchema ai.onnx::Conv-22>"


# ---------------------------------------------------------------------------------------------
# the committed data


def test_committed_json_is_what_the_generator_writes_today(tmp_path):
    generator = _load_generator()
    out = tmp_path / "schemas.json"
    assert generator.main(["--output", str(out)]) == 0
    assert out.read_text("utf-8") == JSON_PATH.read_text("utf-8"), (
        "src/pyonnx/defs/schemas.json is stale: run python tools/gen_schemas.py"
    )


def test_json_size_is_reasonable():
    assert JSON_PATH.stat().st_size < 3_000_000
