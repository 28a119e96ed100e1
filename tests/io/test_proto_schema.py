"""pyonnx's onnx.proto must match the onnx package's onnx-ml.proto on the wire.

The onnx package is the oracle: every message, enum, field (number, label, type, referenced
type name, oneof) and enum value must agree, modulo the package name; and models written by
onnx must parse in our module and serialize back to the same bytes, with no unknown fields.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from google.protobuf import descriptor as _d  # noqa: E402
from google.protobuf.unknown_fields import UnknownFieldSet  # noqa: E402
from onnx import helper, numpy_helper, onnx_ml_pb2  # noqa: E402

from pyonnx.io import proto as ours_pkg  # noqa: E402
from pyonnx.io.proto import onnx_pb2 as ours  # noqa: E402

THEIR_PKG = "onnx."
OUR_PKG = "pyonnx.proto."


def _rel(full_name: str, prefix: str) -> str:
    assert full_name.startswith(prefix), full_name
    return full_name[len(prefix):]


def _label(f: _d.FieldDescriptor) -> str:
    # protobuf 7 dropped FieldDescriptor.label; is_repeated/is_required exist since 4.x.
    if f.is_repeated:
        return "repeated"
    return "required" if f.is_required else "optional"


def _field_sig(f: _d.FieldDescriptor, prefix: str) -> tuple:
    ref = f.message_type or f.enum_type
    return (
        f.number,
        _label(f),
        f.type,
        _rel(ref.full_name, prefix) if ref is not None else None,
        f.containing_oneof.name if f.containing_oneof is not None else None,
        f.is_packed,
        f.has_presence,
        f.default_value if f.type != f.TYPE_MESSAGE and not f.is_repeated else None,
    )


def _enum_sig(e: _d.EnumDescriptor) -> dict[str, int]:
    return {v.name: v.number for v in e.values}


def _walk(file_desc: _d.FileDescriptor, prefix: str) -> tuple[dict, dict]:
    """All messages and enums (nested included) by package-relative name."""
    messages: dict[str, _d.Descriptor] = {}
    enums: dict[str, _d.EnumDescriptor] = {}

    def visit(m: _d.Descriptor) -> None:
        messages[_rel(m.full_name, prefix)] = m
        for e in m.enum_types:
            enums[_rel(e.full_name, prefix)] = e
        for n in m.nested_types:
            visit(n)

    for m in file_desc.message_types_by_name.values():
        visit(m)
    for e in file_desc.enum_types_by_name.values():
        enums[_rel(e.full_name, prefix)] = e
    return messages, enums


THEIR_MSGS, THEIR_ENUMS = _walk(onnx_ml_pb2.DESCRIPTOR, THEIR_PKG)
OUR_MSGS, OUR_ENUMS = _walk(ours.DESCRIPTOR, OUR_PKG)


def test_package_is_ours() -> None:
    assert ours.DESCRIPTOR.package == "pyonnx.proto"


def test_same_message_and_enum_names() -> None:
    assert sorted(OUR_MSGS) == sorted(THEIR_MSGS)
    assert sorted(OUR_ENUMS) == sorted(THEIR_ENUMS)


@pytest.mark.parametrize("name", sorted(THEIR_MSGS))
def test_message_fields_match(name: str) -> None:
    theirs, mine = THEIR_MSGS[name], OUR_MSGS[name]
    their_fields = {f.name: _field_sig(f, THEIR_PKG) for f in theirs.fields}
    our_fields = {f.name: _field_sig(f, OUR_PKG) for f in mine.fields}
    assert our_fields == their_fields
    assert [o.name for o in mine.oneofs] == [o.name for o in theirs.oneofs]


@pytest.mark.parametrize("name", sorted(THEIR_ENUMS))
def test_enum_values_match(name: str) -> None:
    assert _enum_sig(OUR_ENUMS[name]) == _enum_sig(THEIR_ENUMS[name])


def test_package_reexports_every_top_level_type() -> None:
    top = set(ours.DESCRIPTOR.message_types_by_name) | set(ours.DESCRIPTOR.enum_types_by_name)
    assert top <= set(ours_pkg.__all__)
    assert ours_pkg.ModelProto is ours.ModelProto


# --- wire round trips -----------------------------------------------------------------------

_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"


def _backend_models() -> list[Path]:
    found = sorted(_DATA.glob("light/*.onnx"))
    for suite in ("simple", "pytorch-converted"):
        found += sorted(_DATA.glob(f"{suite}/*/model.onnx"))
    return found


def _assert_no_unknown_fields(msg) -> None:  # noqa: ANN001 - any generated message
    assert len(UnknownFieldSet(msg)) == 0, f"unknown fields in {msg.DESCRIPTOR.full_name}"
    for field, value in msg.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        for sub in value if field.is_repeated else [value]:
            _assert_no_unknown_fields(sub)


def _roundtrip(data: bytes) -> None:
    model = ours.ModelProto.FromString(data)
    _assert_no_unknown_fields(model)
    assert model.SerializeToString() == data


BACKEND_MODELS = _backend_models()


def test_backend_models_found() -> None:
    assert len(BACKEND_MODELS) > 50, f"backend suite models not found under {_DATA}"


def _model_id(path: Path) -> str:
    rel = path.relative_to(_DATA)
    return str(rel.parent if path.name == "model.onnx" else rel)


@pytest.mark.parametrize("path", BACKEND_MODELS, ids=[_model_id(p) for p in BACKEND_MODELS])
def test_backend_model_roundtrip(path: Path) -> None:
    data = onnx.load_model(str(path), load_external_data=False).SerializeToString()
    _roundtrip(data)


def _kitchen_sink_model() -> onnx.ModelProto:
    """A model touching every message and most fields, built and serialized by onnx."""
    T = onnx.TensorProto
    tensor = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    tensor.metadata_props.add(key="k", value="v")
    tensor.segment.begin = 0
    tensor.segment.end = 6
    ext = T(name="ext", data_type=T.FLOAT, dims=[4], data_location=T.EXTERNAL)
    for k, v in (("location", "w.bin"), ("offset", "0"), ("length", "16")):
        ext.external_data.add(key=k, value=v)
    typed = T(name="typed", data_type=T.DOUBLE, dims=[2], double_data=[1.5, -2.0])
    u64 = T(name="u64", data_type=T.UINT64, dims=[1], uint64_data=[2**63 + 5])
    strs = T(name="s", data_type=T.STRING, dims=[2], string_data=[b"a", b"bc"])
    sparse = helper.make_sparse_tensor(
        helper.make_tensor("sv", T.FLOAT, [2], [1.0, 2.0]),
        helper.make_tensor("si", T.INT64, [2], [0, 3]),
        [2, 2],
    )
    seq_t = helper.make_sequence_type_proto(helper.make_tensor_type_proto(T.FLOAT, ["N", None, 3]))
    map_t = helper.make_map_type_proto(T.STRING, helper.make_tensor_type_proto(T.INT64, [1]))
    opt_t = helper.make_optional_type_proto(seq_t)
    sparse_t = helper.make_sparse_tensor_type_proto(T.FLOAT, [2, 2])
    opaque_t = onnx.TypeProto(opaque_type=onnx.TypeProto.Opaque(domain="d", name="n"), denotation="X")
    sub = helper.make_graph(
        [helper.make_node("Identity", ["a"], ["b"])], "sub",
        [helper.make_tensor_value_info("a", T.FLOAT, [1])],
        [helper.make_tensor_value_info("b", T.FLOAT, [1])],
    )
    node = helper.make_node(
        "Custom", ["x", ""], ["y"], name="n0", domain="ai.onnx.ml", doc_string="doc",
        f=1.5, i=-3, s="text", t=tensor, g=sub, sp=sparse, tp=seq_t,
        fs=[1.0, 2.0], is_=[1, -2, 3], ss=["a", "b"], ts=[tensor, typed], gs=[sub, sub],
        sps=[sparse], tps=[map_t, opt_t],
    )
    node.overload = "ov"
    node.metadata_props.add(key="nk", value="nv")
    dc = node.device_configurations.add(configuration_id="cfg", pipeline_stage=1)
    spec = dc.sharding_spec.add(tensor_name="x", device=[0, 1])
    spec.index_to_device_group_map.add(key=0, value=[0, 1])
    sd = spec.sharded_dim.add(axis=0)
    sd.simple_sharding.add(dim_value=4, num_shards=2)
    sd.simple_sharding.add(dim_param="B", num_shards=2)
    ref_attr = helper.make_attribute_ref("alpha", onnx.AttributeProto.FLOAT)
    fnode = helper.make_node("Mul", ["u", "u"], ["v"])
    fnode.attribute.append(ref_attr)
    func = helper.make_function(
        "local", "F", ["u"], ["v"], [fnode], [helper.make_opsetid("", 21)],
        attributes=["beta"], attribute_protos=[helper.make_attribute("alpha", 2.0)],
        doc_string="fd", value_info=[helper.make_tensor_value_info("v", T.FLOAT, None)], overload="o1",
    )
    func.metadata_props.add(key="fk", value="fv")
    x = helper.make_tensor_value_info("x", T.FLOAT, ["N", 3], doc_string="input")
    x.metadata_props.add(key="vk", value="vv")
    x.type.tensor_type.shape.dim[0].denotation = "DATA_BATCH"
    graph = helper.make_graph(
        [node], "g",
        [x, helper.make_value_info("m", map_t), helper.make_value_info("o", opaque_t)],
        [helper.make_value_info("y", opt_t), helper.make_value_info("z", sparse_t)],
        initializer=[tensor, ext, typed, u64, strs], doc_string="gd",
        value_info=[helper.make_tensor_value_info("q", T.BFLOAT16, [])],
        sparse_initializer=[sparse],
    )
    graph.quantization_annotation.add(tensor_name="x").quant_parameter_tensor_names.add(
        key="SCALE_TENSOR", value="w"
    )
    graph.metadata_props.add(key="gk", value="gv")
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)],
        producer_name="p", producer_version="1", domain="com.example", model_version=7,
        doc_string="md", functions=[func],
    )
    helper.set_model_props(model, {"author": "me"})
    model.configuration.add(name="cfg", num_devices=2, device=["cuda:0", "cuda:1"])
    ti = model.training_info.add(initialization=sub, algorithm=sub)
    ti.initialization_binding.add(key="w", value="b")
    ti.update_binding.add(key="w", value="b")
    return model


def test_kitchen_sink_roundtrip_both_ways() -> None:
    data = _kitchen_sink_model().SerializeToString()
    _roundtrip(data)
    # and our serialization parses in onnx identically
    mine = ours.ModelProto.FromString(data)
    assert onnx.ModelProto.FromString(mine.SerializeToString()).SerializeToString() == data
