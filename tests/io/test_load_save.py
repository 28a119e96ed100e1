"""load / save / serialize: sources, tensor decoding checks, external data, packed types."""

from __future__ import annotations

import io
import os

import ml_dtypes
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import pyonnx  # noqa: E402
from pyonnx.errors import DecodeError, InvalidArgument  # noqa: E402
from pyonnx.ir import DataType, Tensor  # noqa: E402


def _model_with(init: TensorProto, opset: int = 18) -> onnx.ModelProto:
    g = helper.make_graph([helper.make_node("Identity", [init.name], ["y"])], "g", [],
                          [helper.make_tensor_value_info("y", init.data_type, None)], [init])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=9)


def test_every_source_kind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    m = _model_with(numpy_helper.from_array(np.arange(4, dtype=np.float32), "w"))
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    for src in (str(path), path, m.SerializeToString(), m, io.BytesIO(m.SerializeToString()),
                open(path, "rb")):
        model = pyonnx.load(src)
        np.testing.assert_array_equal(model.graph.initializers["w"].const_value.numpy(),
                                      np.arange(4, dtype=np.float32))
    with pytest.raises(InvalidArgument, match="takes a path"):
        pyonnx.load(12345)


@pytest.mark.parametrize("data", [b"", b"\x00\x01garbage\xff" * 7, b"\x0a\xff\xff\xff\xff\x0f"])
def test_garbage_bytes_are_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        pyonnx.load(data)


def test_missing_file_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="cannot read model file"):
        pyonnx.load("/nonexistent/model.onnx")


def test_raw_data_size_must_match_dims() -> None:
    t = numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")
    t.raw_data = t.raw_data[:-4]
    with pytest.raises(DecodeError, match=r"tensor 'w'.*12 bytes.*need 16"):
        pyonnx.load(_model_with(t))


def test_typed_field_count_must_match_dims() -> None:
    t = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    t.dims[0] = 3  # onnx's helper refuses to build it; edit the message afterwards
    with pytest.raises(DecodeError, match="tensor 'w' has 2 values"):
        pyonnx.load(_model_with(t))


def test_unknown_data_type_and_negative_dims() -> None:
    t = numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")
    t.data_type = 99
    with pytest.raises(DecodeError, match="tensor 'w' has unknown data_type 99"):
        pyonnx.load(_model_with(t).SerializeToString())
    t = numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")
    t.dims[0] = -4
    with pytest.raises(DecodeError, match="tensor 'w' has a negative dimension"):
        pyonnx.load(_model_with(t).SerializeToString())


def _external_model(tmp_path, location: str) -> str:  # type: ignore[no-untyped-def]
    t = numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", location
    path = tmp_path / "model" / "m.onnx"
    path.parent.mkdir(exist_ok=True)
    onnx.save(_model_with(t), str(path))
    return str(path)


def test_external_data_through_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _external_model(tmp_path, "w.bin")
    (tmp_path / "model" / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    m = pyonnx.load(path)
    np.testing.assert_array_equal(m.graph.initializers["w"].const_value.numpy(), np.arange(4))
    # the same bytes without a folder cannot find the data
    with pytest.raises(DecodeError, match="tensor 'w'.*external file.*given as bytes"):
        pyonnx.load(open(path, "rb").read())


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin"])
def test_external_data_escaping_the_folder_is_refused(tmp_path, location: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    path = _external_model(tmp_path, location)
    with pytest.raises(DecodeError, match="'w'"):
        pyonnx.load(path)


def test_external_data_symlink_out_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    path = _external_model(tmp_path, "w.bin")
    os.symlink(tmp_path / "secret.bin", tmp_path / "model" / "w.bin")
    with pytest.raises(DecodeError, match="'w'"):
        pyonnx.load(path)


def test_save_with_external_data_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    big = numpy_helper.from_array(np.arange(1000, dtype=np.float32), "big")
    small = numpy_helper.from_array(np.arange(3, dtype=np.float32), "small")
    g = helper.make_graph([helper.make_node("Add", ["small", "small"], ["y"]),
                           helper.make_node("Identity", ["big"], ["z"])], "g", [],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3]),
                           helper.make_tensor_value_info("z", TensorProto.FLOAT, [1000])],
                          [big, small])
    m = pyonnx.load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]))
    out = tmp_path / "saved.onnx"
    pyonnx.save(m, out, external_data=True, size_threshold=100, location="weights.bin")
    assert (tmp_path / "weights.bin").stat().st_size >= 4000
    proto = onnx.load(str(out), load_external_data=False)
    kinds = {t.name: t.data_location for t in proto.graph.initializer}
    assert kinds == {"big": TensorProto.EXTERNAL, "small": TensorProto.DEFAULT}
    onnx.checker.check_model(str(out))
    y, z = pyonnx.InferenceSession(str(out)).run(None, {})
    np.testing.assert_array_equal(z, np.arange(1000, dtype=np.float32))
    np.testing.assert_array_equal(y, 2 * np.arange(3, dtype=np.float32))
    # saving again over the same data file rewrites it instead of appending forever
    pyonnx.save(pyonnx.load(out), out, external_data=True, size_threshold=100,
                location="weights.bin")
    assert (tmp_path / "weights.bin").stat().st_size < 8192 + 4000


def test_model_over_2gib_needs_external_data() -> None:
    m = pyonnx.load(_model_with(numpy_helper.from_array(np.zeros(1, np.float32), "w")))
    huge = Tensor("w", DataType.FLOAT, (2**29 + 1,), loader=lambda: pytest.fail("decoded"))
    m.graph.initializers["w"].const_value = huge
    with pytest.raises(InvalidArgument, match="external_data=True"):
        pyonnx.serialize(m)


@pytest.mark.parametrize("dtype, code", [
    (ml_dtypes.int4, TensorProto.INT4), (ml_dtypes.uint4, TensorProto.UINT4),
    (ml_dtypes.float4_e2m1fn, TensorProto.FLOAT4E2M1), (ml_dtypes.int2, TensorProto.INT2),
    (ml_dtypes.uint2, TensorProto.UINT2), (ml_dtypes.float6_e2m3fn, TensorProto.FLOAT6E2M3),
    (ml_dtypes.float6_e3m2fn, TensorProto.FLOAT6E3M2), (ml_dtypes.bfloat16, TensorProto.BFLOAT16),
    (ml_dtypes.float8_e4m3fn, TensorProto.FLOAT8E4M3FN),
])
@pytest.mark.parametrize("n", [1, 3, 4, 7, 16])
def test_packed_types_agree_with_onnx(dtype, code, n: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(n)
    info = ml_dtypes.finfo(dtype) if "float" in np.dtype(dtype).name else ml_dtypes.iinfo(dtype)
    vals = rng.uniform(float(info.min), float(info.max), size=(n,)).astype(dtype)
    theirs = numpy_helper.from_array(vals, "w")
    assert theirs.data_type == code
    ours = pyonnx.load(_model_with(theirs, opset=25)).graph.initializers["w"].const_value.numpy()
    np.testing.assert_array_equal(ours.view(np.uint8), vals.view(np.uint8))
    back = onnx.load_from_string(pyonnx.serialize(pyonnx.load(_model_with(theirs, opset=25))))
    np.testing.assert_array_equal(numpy_helper.to_array(back.graph.initializer[0]).view(np.uint8),
                                  vals.view(np.uint8))


@pytest.mark.parametrize("code, n_bytes", [(TensorProto.INT2, 0), (TensorProto.UINT2, 2),
                                           (TensorProto.INT4, 0), (TensorProto.UINT4, 3)])
def test_packed_typed_field_of_the_wrong_length_is_a_decode_error(code, n_bytes) -> None:  # type: ignore[no-untyped-def]
    """A 2- or 4-bit tensor keeps one packed byte per int32_data entry: too few or too many
    entries name the tensor (found by the fuzzer: an empty int32_data for an int2 tensor)."""
    t = TensorProto(name="w", data_type=code, dims=[3], int32_data=[1] * n_bytes)
    with pytest.raises(DecodeError, match=r"'w'.*packed bytes in int32_data"):
        pyonnx.load(_model_with(t, opset=25))


# ------------------------------------------------------------------ negative dim_value (dynamic)

def _dynamic_dims_model() -> onnx.ModelProto:
    """A Paddle-style export: every dynamic dimension is written as ``dim_value: -1`` (graph
    inputs, outputs, an intermediate value_info and a sequence element), beside a fixed dim and an
    empty (0) one."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Relu", ["h"], ["y"]),
             helper.make_node("Shape", ["z"], ["zs"]),
             helper.make_node("SequenceConstruct", ["y", "y"], ["seq"])]
    g = helper.make_graph(
        nodes, "paddle_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, -1, 3]),
         helper.make_tensor_value_info("z", TensorProto.INT64, [0, -7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, -1, 4]),
         helper.make_tensor_value_info("zs", TensorProto.INT64, [2]),
         helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, [-1, -1, 4])],
        [w], value_info=[helper.make_tensor_value_info("h", TensorProto.FLOAT, [-1, -1, 4])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_negative_dim_value_is_an_unknown_dim() -> None:
    m = _dynamic_dims_model()
    onnx.checker.check_model(m, full_check=True)  # onnx accepts -1 dims; so must pyonnx
    pyonnx.check_model(m, full_check=True)
    model = pyonnx.load(m)
    x = model.graph.inputs[0]
    assert tuple(x.type.shape) == (None, None, 3)
    assert tuple(model.graph.inputs[1].type.shape) == (0, None)  # 0 stays an empty dimension
    assert tuple(model.graph.outputs[2].type.elem_type.shape) == (None, None, 4)
    # shape inference (strict) sees unknown dims, not a size of -1 to check products against
    y = pyonnx.infer_shapes(model, strict=True).graph.outputs[0].type
    assert y.shape[2] == 4 and not any(isinstance(d, int) for d in y.shape[:2])


def test_negative_dim_value_accepts_any_size_like_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    m = _dynamic_dims_model()
    ours = pyonnx.InferenceSession(m.SerializeToString())
    theirs = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    assert ([(i.name, i.shape) for i in ours.get_inputs()]
            == [(i.name, i.shape) for i in theirs.get_inputs()] == [("x", [None, None, 3]),
                                                                    ("z", [0, None])])
    assert [o.shape for o in ours.get_outputs()] == [o.shape for o in theirs.get_outputs()]
    rng = np.random.default_rng(1)
    for n, k, zn in ((1, 1, 0), (5, 2, 3), (0, 4, 1), (2, 0, 9)):
        feed = {"x": rng.standard_normal((n, k, 3)).astype(np.float32),
                "z": np.zeros((0, zn), np.int64)}
        got, want = ours.run(None, feed), theirs.run(None, feed)
        for g_, w_ in zip(got[:2], want[:2]):
            assert g_.dtype == w_.dtype and g_.shape == w_.shape
            np.testing.assert_allclose(g_, w_, rtol=1e-5, atol=1e-6)
        assert [s.shape for s in got[2]] == [s.shape for s in want[2]]
    # the fixed dims are still enforced, on both engines alike
    bad = {"x": np.zeros((2, 2, 5), np.float32), "z": np.zeros((0, 1), np.int64)}
    with pytest.raises(InvalidArgument, match="dimension 5 at axis 2"):
        ours.run(None, bad)
    with pytest.raises(Exception, match="index: 2 Got: 5 Expected: 3"):
        theirs.run(None, bad)
    with pytest.raises(InvalidArgument, match="axis 0"):
        ours.run(None, {"x": np.zeros((2, 2, 3), np.float32), "z": np.zeros((1, 1), np.int64)})


def test_negative_dim_value_saves_as_an_unknown_dim(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "m.onnx"
    pyonnx.save(pyonnx.load(_dynamic_dims_model()), path)
    saved = onnx.load(str(path))
    onnx.checker.check_model(saved, full_check=True)
    dims = saved.graph.input[0].type.tensor_type.shape.dim
    # written as a dim with neither value nor param: the canonical unknown dim (no -1 survives)
    assert [d.WhichOneof("value") for d in dims] == [None, None, "dim_value"]
    assert dims[2].dim_value == 3
    assert saved.graph.input[1].type.tensor_type.shape.dim[0].WhichOneof("value") == "dim_value"
    again = pyonnx.load(str(path))
    assert tuple(again.graph.inputs[0].type.shape) == (None, None, 3)
    assert tuple(again.graph.inputs[1].type.shape) == (0, None)
    out = pyonnx.InferenceSession(str(path)).run(
        ["y"], {"x": np.ones((3, 7, 3), np.float32), "z": np.zeros((0, 2), np.int64)})[0]
    assert out.shape == (3, 7, 4)


# ------------------------------------------------------------------ header fields with defaults

_HEADER = ("producer_name", "producer_version", "domain", "model_version", "doc_string")


@pytest.mark.parametrize("stated", [(), ("model_version", "doc_string"), _HEADER])
def test_header_fields_stated_with_their_default_are_kept(stated: tuple[str, ...]) -> None:
    """skl2onnx writes model_version 0 and an empty doc_string: the file states them, and a
    pyonnx save keeps exactly the fields the file had (onnx.printer shows stated ones)."""
    mp = helper.make_model(helper.make_graph([], "g", [], []))
    for f in _HEADER:
        mp.ClearField(f)
    for f in stated:
        setattr(mp, f, 0 if f == "model_version" else "")
    m = pyonnx.load(mp.SerializeToString())
    assert m.stated_fields == set(stated)
    back = onnx.ModelProto.FromString(pyonnx.serialize(m))
    assert [f for f in _HEADER if back.HasField(f)] == [f for f in _HEADER if f in stated]
    m.model_version = 3  # a value that is set is written whether stated or not
    assert onnx.ModelProto.FromString(pyonnx.serialize(m)).model_version == 3
