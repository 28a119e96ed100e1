"""onnxruntime API parity: every test runs on both engines, onnxruntime and pyonnx.

pyonnx's engine is :mod:`pyonnx.compat.onnxruntime`, the module the opt-in shim installs as
``onnxruntime``; each test is written as code for onnxruntime would be and must pass on both.
``BAD_CALLS`` is the table of wrong calls: for each, the ``except`` clause that catches
onnxruntime's error (a built-in class or one of ``onnxruntime.capi`` status classes, taken from
the engine under test) must catch pyonnx's error too, and pyonnx's error is a PyOnnxError.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import pyonnx  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.abspath(pyonnx.__file__)))


@dataclass
class Engine:
    """One engine under test: the ``onnxruntime``-like module and its capi state module."""

    name: str
    ort: ModuleType

    @property
    def capi(self) -> ModuleType:
        return self.ort.capi.onnxruntime_pybind11_state


def _engine(name: str) -> Engine:
    if name == "onnxruntime":
        ort = pytest.importorskip("onnxruntime", reason="onnxruntime (the oracle) is not "
                                                        "installed")
        import onnxruntime.capi.onnxruntime_pybind11_state  # noqa: F401
        return Engine("onnxruntime", ort)
    import pyonnx.compat.onnxruntime as shim

    return Engine("pyonnx", shim)


@pytest.fixture(params=["onnxruntime", "pyonnx"])
def engine(request: pytest.FixtureRequest) -> Engine:
    return _engine(request.param)


# ---------------------------------------------------------------------------- models

F = TensorProto.FLOAT


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], initializers: tuple = (),
           opset: int = 18, ir: int = 9, extra_opsets: tuple = ()) -> bytes:
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset), *[helper.make_opsetid(d, v) for d, v in extra_opsets]]
    return helper.make_model(g, opset_imports=opsets, ir_version=ir).SerializeToString()


def add_model() -> bytes:
    """z = x + y with x [N, 3] and y [1, 3]."""
    return _model([helper.make_node("Add", ["x", "y"], ["z"], name="add0")],
                  [helper.make_tensor_value_info("x", F, ["N", 3]),
                   helper.make_tensor_value_info("y", F, [1, 3])],
                  [helper.make_tensor_value_info("z", F, ["N", 3])])


def seq_model() -> bytes:
    """s = [x, x] (a sequence) and y = x."""
    return _model([helper.make_node("SequenceConstruct", ["x", "x"], ["s"]),
                   helper.make_node("Identity", ["x"], ["y"])],
                  [helper.make_tensor_value_info("x", F, [2, 3])],
                  [helper.make_tensor_sequence_value_info("s", F, None),
                   helper.make_tensor_value_info("y", F, [2, 3])])


def weight_model(external: bool = False) -> tuple[bytes, np.ndarray]:
    """y = x * W with the initializer W [2, 3]; with ``external``, W's data lives in a file
    ``w.bin`` that is not there."""
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    wt = numpy_helper.from_array(w, "W")
    if external:
        wt.ClearField("raw_data")
        wt.data_location = TensorProto.EXTERNAL
        for k, v in (("location", "w.bin"), ("offset", "0"), ("length", "24")):
            e = wt.external_data.add()
            e.key, e.value = k, v
    m = _model([helper.make_node("Mul", ["x", "W"], ["y"])],
               [helper.make_tensor_value_info("x", F, [2, 3])],
               [helper.make_tensor_value_info("y", F, [2, 3])], [wt])
    return m, w


def denotation_model() -> bytes:
    """y = Abs(x), x [Batch (DATA_BATCH), Chan (DATA_CHANNEL), 5]."""
    xt = helper.make_tensor_type_proto(F, ["Batch", "Chan", 5])
    xt.tensor_type.shape.dim[0].denotation = "DATA_BATCH"
    xt.tensor_type.shape.dim[1].denotation = "DATA_CHANNEL"
    g = helper.make_graph([helper.make_node("Abs", ["x"], ["y"])], "g",
                          [helper.make_value_info("x", xt)],
                          [helper.make_tensor_value_info("y", F, ["Batch", "Chan", 5])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)],
                             ir_version=9).SerializeToString()


def matmul_model() -> bytes:
    """c = a @ b with unknown shapes (a kernel failure waits for bad shapes)."""
    return _model([helper.make_node("MatMul", ["a", "b"], ["c"], name="mm")],
                  [helper.make_tensor_value_info("a", F, None),
                   helper.make_tensor_value_info("b", F, None)],
                  [helper.make_tensor_value_info("c", F, None)])


X = np.arange(6, dtype=np.float32).reshape(2, 3)
Y = np.ones((1, 3), np.float32)


# ---------------------------------------------------------------------------- module functions


def test_module_functions(engine: Engine) -> None:
    ort = engine.ort
    assert ort.get_all_providers()[-1] == "CPUExecutionProvider"
    assert "CPUExecutionProvider" in ort.get_available_providers()
    assert ort.get_device() == "CPU"
    assert ort.get_version_string().startswith("1.")
    assert ort.__version__.startswith("1.")
    assert "Build Info" in ort.get_build_info()
    ort.set_default_logger_severity(3)
    ort.set_default_logger_severity(2)
    ort.set_default_logger_verbosity(0)
    ort.set_seed(7)
    ort.disable_telemetry_events()
    ort.enable_telemetry_events()
    for name in ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "EngineError",
                 "RuntimeException", "InvalidProtobuf", "ModelLoaded", "NotImplemented",
                 "InvalidGraph", "EPFail"):
        assert issubclass(getattr(engine.capi, name), Exception)


def test_logger_callback(engine: Engine) -> None:
    ort = engine.ort
    records: list[tuple[Any, ...]] = []
    ort.set_default_logger_callback(lambda *r: records.append(r), severity=0)
    try:
        ort.InferenceSession(add_model(), providers=["CPUExecutionProvider"])
    finally:
        ort.set_default_logger_callback(None)
        ort.set_default_logger_severity(2)
    assert records
    severity, category, logid, location, message = records[0]
    assert isinstance(severity, int) and isinstance(message, str)
    assert all(isinstance(x, str) for x in (category, logid, location))


def test_shim_reports_the_api_version() -> None:
    import pyonnx.compat.onnxruntime as shim

    assert shim.__version__ == shim.get_version_string() == "1.32.0"
    assert shim.__pyonnx_version__ == pyonnx.__version__


# ---------------------------------------------------------------------------- OrtValue


def test_ortvalue_tensor(engine: Engine) -> None:
    ort = engine.ort
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    v = ort.OrtValue.ortvalue_from_numpy(arr)
    assert v.shape() == [2, 3]
    assert v.data_type() == "tensor(float)"
    assert v.element_type() == TensorProto.FLOAT
    assert v.device_name() == "cpu"
    assert v.is_tensor() and v.has_value()
    assert not v.is_tensor_sequence() and not v.is_sparse_tensor()
    assert v.tensor_size_in_bytes() == 24
    assert v.data_ptr() == arr.ctypes.data  # CPU OrtValues share the array's memory
    assert np.shares_memory(v.numpy(), arr)
    np.testing.assert_array_equal(np.asarray(v), arr)
    assert np.asarray(v, dtype=np.float64).dtype == np.float64

    w = ort.OrtValue.ortvalue_from_shape_and_type([2, 3], np.float32)
    ptr = w.data_ptr()
    w.update_inplace(arr)
    assert w.data_ptr() == ptr
    np.testing.assert_array_equal(w.numpy(), arr)
    assert ort.OrtValue.ortvalue_from_shape_and_type([4], TensorProto.INT64).data_type() == \
        "tensor(int64)"
    assert ort.OrtValue.ortvalue_from_shape_and_type([4], TensorProto.FLOAT16).element_type() \
        == TensorProto.FLOAT16
    bf = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(np.zeros(3, np.uint16),
                                                         TensorProto.BFLOAT16)
    assert bf.data_type() == "tensor(bfloat16)" and bf.shape() == [3]


def test_ortvalue_as_feed_and_output(engine: Engine) -> None:
    ort = engine.ort
    sess = ort.InferenceSession(seq_model(), providers=["CPUExecutionProvider"])
    v = ort.OrtValue.ortvalue_from_numpy(X)
    (y,) = sess.run(["y"], {"x": v})
    np.testing.assert_array_equal(y, X)
    s_val, y_val = sess.run_with_ort_values(["s", "y"], {"x": v})
    assert isinstance(y_val, ort.OrtValue) and y_val.data_type() == "tensor(float)"
    np.testing.assert_array_equal(y_val.numpy(), X)
    assert s_val.is_tensor_sequence() and not s_val.is_tensor()
    assert s_val.data_type() == "seq(tensor(float))"
    with pytest.raises(RuntimeError):
        s_val.numpy()  # a sequence is not a tensor
    # the C-level session, as onnxruntime's own tests call it
    vect = sess._sess.run_with_ort_values({"x": v._get_c_value()}, ["y"],
                                          engine.capi.RunOptions())
    assert isinstance(vect, engine.capi.OrtValueVector)
    (seq,) = sess.run(["s"], {"x": X})
    assert isinstance(seq, list) and len(seq) == 2


def test_optional_outputs(engine: Engine) -> None:
    """An empty optional is None from run() and an OrtValue without a value otherwise."""
    ort = engine.ort
    opt = helper.make_optional_type_proto(helper.make_tensor_type_proto(F, [2]))
    m = _model([helper.make_node("Optional", [], ["o"], type=helper.make_tensor_type_proto(F, [2])),
                helper.make_node("Optional", ["x"], ["p"])],
               [helper.make_tensor_value_info("x", F, [2])],
               [helper.make_value_info("o", opt), helper.make_value_info("p", opt)])
    sess = ort.InferenceSession(m, providers=["CPUExecutionProvider"])
    assert [o.type for o in sess.get_outputs()] == ["optional(tensor(float))"] * 2
    o, p = sess.run(None, {"x": np.ones(2, np.float32)})
    assert o is None
    np.testing.assert_array_equal(p, [1, 1])
    o, p = sess.run_with_ort_values(None, {"x": ort.OrtValue.ortvalue_from_numpy(
        np.ones(2, np.float32))})
    assert not o.has_value() and o.is_tensor()  # onnxruntime calls an empty tensor optional a tensor
    assert p.has_value() and p.data_type() == "tensor(float)"


def test_map_outputs(engine: Engine) -> None:
    """ZipMap's sequence of maps comes back as a list of dicts."""
    m = _model([helper.make_node("ZipMap", ["x"], ["z"], domain="ai.onnx.ml",
                                 classlabels_strings=["a", "b"])],
               [helper.make_tensor_value_info("x", F, [2, 2])],
               [helper.make_value_info("z", helper.make_sequence_type_proto(
                   helper.make_map_type_proto(TensorProto.STRING,
                                              helper.make_tensor_type_proto(F, []))))],
               extra_opsets=(("ai.onnx.ml", 3),))
    sess = engine.ort.InferenceSession(m, providers=["CPUExecutionProvider"])
    assert sess.get_outputs()[0].type == "seq(map(string,tensor(float)))"
    (z,) = sess.run(None, {"x": np.array([[1, 2], [3, 4]], np.float32)})
    assert z == [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]


def test_sparse_tensor(engine: Engine) -> None:
    ort = engine.ort
    cpu = ort.OrtDevice.make("cpu", 0)
    values = np.array([1.0, 2.0, 3.0], np.float32)
    coo = ort.SparseTensor.sparse_coo_from_numpy([4, 4], values, np.array([1, 5, 15], np.int64),
                                                 cpu)
    assert coo.format() == ort.OrtSparseFormat.ORT_SPARSE_COO
    assert coo.dense_shape() == [4, 4]
    assert coo.data_type() == "sparse_tensor(float)"
    assert coo.device_name() == "cpu"
    assert not coo.values().flags.writeable
    np.testing.assert_array_equal(coo.as_coo_view().indices(), [1, 5, 15])
    inner = np.array([1, 1, 1], np.int64)
    outer = np.array([0, 1, 2, 3, 3], np.int64)
    csr = ort.SparseTensor.sparse_csr_from_numpy([4, 4], values, inner, outer, cpu)
    assert csr.format() == ort.OrtSparseFormat.ORT_SPARSE_CSRC
    np.testing.assert_array_equal(csr.as_csrc_view().inner(), inner)
    np.testing.assert_array_equal(csr.as_csrc_view().outer(), outer)
    ov = ort.OrtValue.ort_value_from_sparse_tensor(coo)
    assert ov.is_sparse_tensor() and not ov.is_tensor()
    np.testing.assert_array_equal(ov.as_sparse_tensor().values(), values)
    strings = ort.SparseTensor.sparse_coo_from_numpy([4, 4], np.array(["a", "b", "c"]),
                                                     np.array([1, 5, 15], np.int64), cpu)
    assert strings.data_type() == "sparse_tensor(string)"


def test_pyonnx_sparse_to_dense() -> None:
    st = pyonnx.SparseTensor.sparse_csr_from_numpy(
        [2, 3], np.array([5, 7], np.int64), np.array([2, 0], np.int64),
        np.array([0, 1, 2], np.int64))
    np.testing.assert_array_equal(st.to_dense(), [[0, 0, 5], [7, 0, 0]])
    st = pyonnx.SparseTensor.sparse_coo_from_numpy(
        [2, 3], np.array([5, 7], np.int64), np.array([[0, 2], [1, 0]], np.int64))
    np.testing.assert_array_equal(st.to_dense(), [[0, 0, 5], [7, 0, 0]])


def test_devices_memory_info_arena(engine: Engine) -> None:
    ort = engine.ort
    cpu = ort.OrtDevice.make("cpu", 0)
    assert (cpu.device_type(), cpu.device_id(), cpu.device_mem_type()) == (0, 0, 0)
    assert cpu.device_vendor_id() == ort.OrtDeviceVendorId.NONE
    assert ort.OrtDevice.make("cuda", 0).device_vendor_id() == ort.OrtDeviceVendorId.NVIDIA
    info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                             ort.OrtMemType.DEFAULT)
    assert (info.name, info.device_id, info.mem_type, info.allocator_type) == \
        ("Cpu", 0, ort.OrtMemType.DEFAULT, ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR)
    assert info.device_mem_type == ort.OrtDeviceMemoryType.DEFAULT
    cfg = ort.OrtArenaCfg(8, 0, 4, 2)
    assert (cfg.max_mem, cfg.arena_extend_strategy, cfg.initial_chunk_size_bytes,
            cfg.max_dead_bytes_per_chunk) == (8, 0, 4, 2)
    cfg = ort.OrtArenaCfg({"max_mem": 16, "initial_growth_chunk_size_bytes": 2})
    assert (cfg.max_mem, cfg.initial_growth_chunk_size_bytes) == (16, 2)
    ort.create_and_register_allocator(info, None)
    sess = ort.InferenceSession(add_model(), providers=["CPUExecutionProvider"])
    assert len(sess.get_input_memory_infos()) == 2
    assert len(sess.get_output_memory_infos()) == 1


# ---------------------------------------------------------------------------- IOBinding


def test_iobinding_to_cpu(engine: Engine) -> None:
    ort = engine.ort
    sess = ort.InferenceSession(seq_model(), providers=["CPUExecutionProvider"])
    b = sess.io_binding()
    b.bind_cpu_input("x", X)
    b.bind_output("y")
    b.bind_output("s", "cpu")
    b.synchronize_inputs()
    sess.run_with_iobinding(b)
    b.synchronize_outputs()
    y, s = b.copy_outputs_to_cpu()
    np.testing.assert_array_equal(y, X)
    assert len(s) == 2
    assert [o.data_type() for o in b.get_outputs()] == ["tensor(float)", "seq(tensor(float))"]
    b.clear_binding_outputs()
    b.bind_output("y")
    sess.run_with_iobinding(b)
    assert len(b.copy_outputs_to_cpu()) == 1
    b.clear_binding_inputs()
    with pytest.raises(RuntimeError):  # x is no longer bound
        sess.run_with_iobinding(b)


def test_iobinding_to_ortvalues_and_buffers(engine: Engine) -> None:
    ort = engine.ort
    sess = ort.InferenceSession(seq_model(), providers=["CPUExecutionProvider"])
    x = ort.OrtValue.ortvalue_from_numpy(X)
    y = ort.OrtValue.ortvalue_from_shape_and_type([2, 3], np.float32)
    b = sess.io_binding()
    b.bind_ortvalue_input("x", x)
    b.bind_ortvalue_output("y", y)
    sess.run_with_iobinding(b)
    np.testing.assert_array_equal(y.numpy(), X)  # written into the bound value
    assert b.get_outputs()[0].data_ptr() == y.data_ptr()
    # raw buffers by address
    out = np.zeros((2, 3), np.float32)
    b = sess.io_binding()
    b.bind_input("x", "cpu", 0, np.float32, [2, 3], X.ctypes.data)
    b.bind_output("y", "cpu", 0, np.float32, [2, 3], out.ctypes.data)
    sess.run_with_iobinding(b)
    np.testing.assert_array_equal(out, X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint32, np.int64,
                                   np.uint64, np.int16, np.uint16, np.int8, np.uint8, np.float16,
                                   np.bool_])
def test_c_level_binding(engine: Engine, dtype: Any) -> None:
    """The C-level objects (capi's OrtDevice, OrtValue, SessionIOBinding and ``sess._sess``),
    as some onnxruntime code uses them."""
    C = engine.capi
    x = np.arange(8).reshape(-1, 2).astype(dtype)
    elem = helper.np_dtype_to_tensor_dtype(x.dtype)
    m = _model([helper.make_node("Identity", ["X"], ["Y"])],
               [helper.make_tensor_value_info("X", elem, [None, 2])],
               [helper.make_tensor_value_info("Y", elem, [None, 2])])
    sess = engine.ort.InferenceSession(m, providers=["CPUExecutionProvider"])
    device = C.OrtDevice(C.OrtDevice.cpu(), C.OrtDevice.default_memory(), 0)
    bind = C.SessionIOBinding(sess._sess)
    value = C.OrtValue.ortvalue_from_numpy(x, device)
    bind.bind_ortvalue_input("X", value)
    bind.bind_output("Y", device)
    sess._sess.run_with_iobinding(bind, None)
    np.testing.assert_array_equal(bind.get_outputs()[0].numpy(), x)


# ---------------------------------------------------------------------------- run variants


def test_run_async_calls_back_on_a_worker_thread(engine: Engine) -> None:
    ort = engine.ort
    sess = ort.InferenceSession(add_model(), providers=["CPUExecutionProvider"])
    done = threading.Event()
    seen: dict[str, Any] = {}

    def callback(results: Any, user_data: Any, err: str) -> None:
        seen.update(results=results, user_data=user_data, err=err,
                    thread=threading.get_ident())
        done.set()

    marker = object()
    sess.run_async(["z"], {"x": X, "y": Y}, callback, marker)
    assert done.wait(30)
    assert seen["err"] == "" and seen["user_data"] is marker
    assert seen["thread"] != threading.get_ident()
    np.testing.assert_array_equal(seen["results"][0], X + Y)


def test_run_async_reports_kernel_failures_to_the_callback(engine: Engine) -> None:
    sess = engine.ort.InferenceSession(matmul_model(), providers=["CPUExecutionProvider"])
    done = threading.Event()
    seen: dict[str, Any] = {}

    def callback(results: Any, user_data: Any, err: str) -> None:
        seen.update(err=err)
        done.set()

    sess.run_async(None, {"a": np.ones((2, 3), np.float32), "b": np.ones((4, 5), np.float32)},
                   callback, None)
    assert done.wait(30)
    assert seen["err"]  # the failure's message, not an exception on the worker thread


def test_list_feeds_take_the_declared_type(engine: Engine) -> None:
    ort = engine.ort
    sess = ort.InferenceSession(add_model(), providers=["CPUExecutionProvider"])
    (z,) = sess.run(None, {"x": [[1, 2, 3], [4, 5, 6]], "y": [[0.5, 0.5, 0.5]]})
    assert z.dtype == np.float32
    np.testing.assert_array_equal(z, [[1.5, 2.5, 3.5], [4.5, 5.5, 6.5]])
    s = _model([helper.make_node("Identity", ["t"], ["u"])],
               [helper.make_tensor_value_info("t", TensorProto.STRING, [2])],
               [helper.make_tensor_value_info("u", TensorProto.STRING, [2])])
    (u,) = ort.InferenceSession(s, providers=["CPUExecutionProvider"]).run(None,
                                                                            {"t": ["a", "bc"]})
    assert list(u) == ["a", "bc"]


def test_outputs_do_not_alias_feeds(engine: Engine) -> None:
    m = _model([helper.make_node("Identity", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", F, [2, 3])],
               [helper.make_tensor_value_info("y", F, [2, 3]),
                helper.make_tensor_value_info("x", F, [2, 3])])
    sess = engine.ort.InferenceSession(m, providers=["CPUExecutionProvider"])
    x = X.copy()
    y, x_out = sess.run(None, {"x": x})
    assert not np.shares_memory(x_out, x)
    assert y.base is not None  # the array views the run's output buffer


# ---------------------------------------------------------------------------- session options


def test_add_initializer_overrides_the_model(engine: Engine) -> None:
    ort = engine.ort
    m, w = weight_model()
    so = ort.SessionOptions()
    w2 = w * 2
    value = ort.OrtValue.ortvalue_from_numpy(w2)  # onnxruntime needs both kept alive
    so.add_initializer("W", value)
    sess = ort.InferenceSession(m, so, providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(sess.run(None, {"x": X})[0], X * w2)


def test_add_external_initializers(engine: Engine, tmp_path: Any) -> None:
    ort = engine.ort
    m, w = weight_model(external=True)
    path = tmp_path / "m.onnx"
    path.write_bytes(m)
    so = ort.SessionOptions()
    w1 = w + 1
    value = ort.OrtValue.ortvalue_from_numpy(w1)  # onnxruntime needs both kept alive
    so.add_external_initializers(["W"], [value])
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(sess.run(None, {"x": X})[0], X * w1)
    so = ort.SessionOptions()
    data = w.tobytes()
    so.add_external_initializers_from_files_in_memory(["w.bin"], [data], [len(data)])
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(sess.run(None, {"x": X})[0], X * w)


def test_free_dimension_overrides(engine: Engine) -> None:
    ort = engine.ort
    so = ort.SessionOptions()
    so.add_free_dimension_override_by_name("Batch", 2)
    so.add_free_dimension_override_by_denotation("DATA_CHANNEL", 4)
    sess = ort.InferenceSession(denotation_model(), so, providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [2, 4, 5]
    assert sess.get_outputs()[0].shape == [2, 4, 5]  # the same symbols on the output
    sess.run(None, {"x": np.ones((2, 4, 5), np.float32)})
    with pytest.raises(engine.capi.InvalidArgument):
        sess.run(None, {"x": np.ones((3, 4, 5), np.float32)})


def test_optimized_model_with_external_initializers(engine: Engine, tmp_path: Any) -> None:
    ort = engine.ort
    w = np.arange(64, dtype=np.float32).reshape(8, 8)
    m = _model([helper.make_node("MatMul", ["x", "W"], ["y"])],
               [helper.make_tensor_value_info("x", F, [1, 8])],
               [helper.make_tensor_value_info("y", F, [1, 8])],
               [numpy_helper.from_array(w, "W")])
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    so.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                "opt.bin")
    so.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "100")
    ort.InferenceSession(m, so, providers=["CPUExecutionProvider"])
    assert (tmp_path / "opt.onnx").is_file()
    assert (tmp_path / "opt.bin").stat().st_size >= w.nbytes
    again = ort.InferenceSession(str(tmp_path / "opt.onnx"), providers=["CPUExecutionProvider"])
    x = np.ones((1, 8), np.float32)
    np.testing.assert_allclose(again.run(None, {"x": x})[0], x @ w)


def test_unhonourable_config_raises() -> None:
    """A setting that would change results and that pyonnx cannot honour is refused."""
    so = pyonnx.SessionOptions()
    so.add_session_config_entry("optimization.enable_gelu_approximation", "1")
    with pytest.raises(pyonnx.errors.NotSupported, match="gelu"):
        pyonnx.InferenceSession(add_model(), so)
    so = pyonnx.SessionOptions()
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # a performance hint
    pyonnx.InferenceSession(add_model(), so)


# ---------------------------------------------------------------------------- LoRA adapters

ADAPTER_PARAMS = {"a": np.arange(10, dtype=np.float32).reshape(5, 2),
                  "b": np.arange(10, dtype=np.int64).reshape(2, 5),
                  "h": np.ones(3, np.float16), "empty": np.zeros((0, 4), np.float32)}


@pytest.mark.parametrize("writer, reader", [("onnxruntime", "pyonnx"),
                                            ("pyonnx", "onnxruntime"), ("pyonnx", "pyonnx")])
def test_adapter_files_go_both_ways(writer: str, reader: str, tmp_path: Any) -> None:
    w, r = _engine(writer).ort, _engine(reader).ort
    values = {k: w.OrtValue.ortvalue_from_numpy(v) for k, v in ADAPTER_PARAMS.items()}
    fmt = w.AdapterFormat()
    fmt.set_adapter_version(3)
    fmt.set_model_version(4)
    fmt.set_parameters(values)
    path = str(tmp_path / "x.onnx_adapter")
    fmt.export_adapter(path)
    back = r.AdapterFormat.read_adapter(path)
    assert (back.get_adapter_version(), back.get_model_version()) == (3, 4)
    got = back.get_parameters()
    assert set(got) == set(ADAPTER_PARAMS)
    for k, v in ADAPTER_PARAMS.items():
        assert got[k].shape() == list(v.shape) and got[k].numpy().dtype == v.dtype
        np.testing.assert_array_equal(got[k].numpy(), v)


def test_run_with_an_active_adapter(engine: Engine, tmp_path: Any) -> None:
    """The adapter's parameters replace the initializers of their names for that run."""
    ort = engine.ort
    base = np.arange(1, 17, dtype=np.float32).reshape(4, 4)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "base"], ["m"]),
         helper.make_node("MatMul", ["x", "lora_a"], ["t"]),
         helper.make_node("MatMul", ["t", "lora_b"], ["u"]),
         helper.make_node("Add", ["m", "u"], ["y"])], "lora",
        [helper.make_tensor_value_info("x", F, [4, 4]),
         helper.make_tensor_value_info("lora_a", F, [4, "r"]),
         helper.make_tensor_value_info("lora_b", F, ["r", 4])],
        [helper.make_tensor_value_info("y", F, [4, 4])],
        initializer=[numpy_helper.from_array(base, "base"),
                     numpy_helper.from_array(np.zeros((4, 0), np.float32), "lora_a"),
                     numpy_helper.from_array(np.zeros((0, 4), np.float32), "lora_b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    a = np.array([[3], [4], [5], [6]], np.float32)
    b = np.array([[7, 8, 9, 10]], np.float32)
    values = {"lora_a": ort.OrtValue.ortvalue_from_numpy(a),
              "lora_b": ort.OrtValue.ortvalue_from_numpy(b)}
    fmt = ort.AdapterFormat()
    fmt.set_parameters(values)
    path = str(tmp_path / "lora.onnx_adapter")
    fmt.export_adapter(path)
    adapter = ort.LoraAdapter()
    adapter.Load(path)
    ro = ort.RunOptions()
    ro.add_active_adapter(adapter)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.ones((4, 4), np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x}, ro)[0], x @ base + x @ a @ b)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], x @ base)  # no adapter: the base


# ---------------------------------------------------------------------------- bad calls


def _sess(e: Engine, model: bytes | None = None) -> Any:
    return e.ort.InferenceSession(model if model is not None else add_model(),
                                  providers=["CPUExecutionProvider"])


def _set(obj: Any, name: str, value: Any) -> None:
    setattr(obj, name, value)


def _bind_run(e: Engine, inputs: dict[str, Any], outputs: list[str]) -> None:
    sess = _sess(e)
    b = sess.io_binding()
    for k, v in inputs.items():
        b.bind_cpu_input(k, v)
    for o in outputs:
        b.bind_output(o)
    sess.run_with_iobinding(b)


def _missing_external_data(e: Engine, tmp: Any) -> None:
    path = os.path.join(tmp, "ext.onnx")
    with open(path, "wb") as f:
        f.write(weight_model(external=True)[0])
    e.ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def _capi(name: str) -> Callable[[Engine], type]:
    return lambda e: getattr(e.capi, name)


def _builtin(cls: type) -> Callable[[Engine], type]:
    return lambda e: cls


_UNKNOWN_OP = _model([helper.make_node("NoSuchOp", ["x"], ["y"])],
                     [helper.make_tensor_value_info("x", F, [2])],
                     [helper.make_tensor_value_info("y", F, [2])])
_DANGLING = _model([helper.make_node("Relu", ["q"], ["y"])],
                   [helper.make_tensor_value_info("x", F, [2])],
                   [helper.make_tensor_value_info("y", F, [2])])

# (id, the bad call, the except clause that catches onnxruntime's error, pyonnx error class)
BAD_CALLS: list[tuple[str, Callable[[Engine, Any], Any], Callable[[Engine], type]]] = [
    ("missing feed", lambda e, t: _sess(e).run(None, {"x": X}), _builtin(ValueError)),
    ("unknown feed", lambda e, t: _sess(e).run(None, {"x": X, "y": Y, "w": Y}),
     _capi("InvalidArgument")),
    ("wrong dtype", lambda e, t: _sess(e).run(None, {"x": X.astype(np.float64), "y": Y}),
     _capi("InvalidArgument")),
    ("wrong rank", lambda e, t: _sess(e).run(None, {"x": X[None], "y": Y}),
     _capi("InvalidArgument")),
    ("wrong dim", lambda e, t: _sess(e).run(None, {"x": np.ones((2, 4), np.float32), "y": Y}),
     _capi("InvalidArgument")),
    ("unknown output name", lambda e, t: _sess(e).run(["q"], {"x": X, "y": Y}),
     _capi("InvalidArgument")),
    ("output names as a string", lambda e, t: _sess(e).run("z", {"x": X, "y": Y}),
     _builtin(TypeError)),
    ("python scalar feed", lambda e, t: _sess(e).run(None, {"x": 1.0, "y": Y}),
     _builtin(RuntimeError)),
    ("string feed for a tensor", lambda e, t: _sess(e).run(None, {"x": "abc", "y": Y}),
     _builtin(RuntimeError)),
    ("ragged list feed", lambda e, t: _sess(e).run(None, {"x": [[1, 2, 3], [4]], "y": Y}),
     _builtin(RuntimeError)),
    ("run_options of the wrong type", lambda e, t: _sess(e).run(None, {"x": X, "y": Y}, 3),
     _builtin(TypeError)),
    ("missing feed, run_with_ort_values",
     lambda e, t: _sess(e).run_with_ort_values(None, {"x": e.ort.OrtValue.ortvalue_from_numpy(X)}),
     _builtin(ValueError)),
    ("kernel failure", lambda e, t: _sess(e, matmul_model()).run(
        None, {"a": np.ones((2, 3), np.float32), "b": np.ones((4, 5), np.float32)}),
     _capi("Fail")),
    ("bad model bytes", lambda e, t: e.ort.InferenceSession(b"not a model at all"),
     _capi("InvalidProtobuf")),
    ("empty model bytes", lambda e, t: e.ort.InferenceSession(b""), _capi("InvalidArgument")),
    ("missing model file", lambda e, t: e.ort.InferenceSession(os.path.join(t, "none.onnx")),
     _capi("NoSuchFile")),
    ("model path is a folder", lambda e, t: e.ort.InferenceSession(t), _capi("InvalidProtobuf")),
    ("model of the wrong type", lambda e, t: e.ort.InferenceSession(12), _builtin(TypeError)),
    ("missing external data file", _missing_external_data, _capi("Fail")),
    ("unknown operator", lambda e, t: e.ort.InferenceSession(_UNKNOWN_OP),
     _capi("InvalidGraph")),
    ("node input never defined", lambda e, t: e.ort.InferenceSession(_DANGLING),
     _capi("InvalidArgument")),
    ("unknown provider in set_providers", lambda e, t: _sess(e).set_providers(["NoSuchProvider"]),
     _builtin(RuntimeError)),
    ("session config key not set",
     lambda e, t: e.ort.SessionOptions().get_session_config_entry("no.such.key"),
     _builtin(RuntimeError)),
    ("run config key not set", lambda e, t: e.ort.RunOptions().get_run_config_entry("no.such"),
     _builtin(RuntimeError)),
    ("bad graph_optimization_level",
     lambda e, t: _set(e.ort.SessionOptions(), "graph_optimization_level", 7),
     _builtin(TypeError)),
    ("intra_op_num_threads not an int",
     lambda e, t: _set(e.ort.SessionOptions(), "intra_op_num_threads", "four"),
     _builtin(TypeError)),
    ("config value not a string",
     lambda e, t: e.ort.SessionOptions().add_session_config_entry("k", 3), _builtin(TypeError)),
    ("unknown SessionOptions attribute", lambda e, t: _set(e.ort.SessionOptions(), "no_such", 1),
     _builtin(AttributeError)),
    ("logger severity out of range", lambda e, t: e.ort.set_default_logger_severity(7),
     _builtin(RuntimeError)),
    ("custom ops library", lambda e, t: e.ort.SessionOptions().register_custom_ops_library(
        os.path.join(t, "libnothing.so")), _capi("Fail")),
    ("add_initializer with a numpy array",
     lambda e, t: e.ort.SessionOptions().add_initializer("W", X), _builtin(RuntimeError)),
    ("add_external_initializers length mismatch",
     lambda e, t: e.ort.SessionOptions().add_external_initializers(
         ["a", "b"], [e.ort.OrtValue.ortvalue_from_numpy(X)]), _builtin(RuntimeError)),
    ("OrtValue from a list", lambda e, t: e.ort.OrtValue.ortvalue_from_numpy([1.0, 2.0]),
     _builtin(RuntimeError)),
    ("OrtValue on a CUDA device", lambda e, t: e.ort.OrtValue.ortvalue_from_numpy(X, "cuda", 0),
     _builtin(RuntimeError)),
    ("OrtValue of an unknown type number",
     lambda e, t: e.ort.OrtValue.ortvalue_from_shape_and_type([2], 12345), _builtin(RuntimeError)),
    ("update_inplace with another size",
     lambda e, t: e.ort.OrtValue.ortvalue_from_numpy(X.copy()).update_inplace(np.ones(4, np.float32)),
     _builtin(RuntimeError)),
    ("sequence OrtValue as numpy", lambda e, t: _sess(e, seq_model()).run_with_ort_values(
        ["s"], {"x": e.ort.OrtValue.ortvalue_from_numpy(X)})[0].numpy(), _builtin(RuntimeError)),
    ("sparse tensor to CUDA", lambda e, t: e.ort.SparseTensor.sparse_coo_from_numpy(
        [4], np.ones(1, np.float32), np.array([1], np.int64),
        e.ort.OrtDevice.make("cpu", 0)).to_cuda(e.ort.OrtDevice.make("cuda", 0)),
     _builtin(RuntimeError)),
    ("adapter file that is not one",
     lambda e, t: (open(os.path.join(t, "bad.onnx_adapter"), "wb").write(b"not an adapter file"),
                   e.ort.AdapterFormat.read_adapter(os.path.join(t, "bad.onnx_adapter"))),
     _builtin(RuntimeError)),
    ("missing adapter file", lambda e, t: e.ort.LoraAdapter().Load(os.path.join(t, "none")),
     _builtin(RuntimeError)),
    ("iobinding: unknown input", lambda e, t: _sess(e).io_binding().bind_cpu_input("q", X),
     _builtin(RuntimeError)),
    ("iobinding: no output bound", lambda e, t: _bind_run(e, {"x": X, "y": Y}, []),
     _builtin(RuntimeError)),
    ("iobinding: missing input", lambda e, t: _bind_run(e, {"x": X}, ["z"]),
     _builtin(RuntimeError)),
    ("iobinding: wrong dtype", lambda e, t: _bind_run(e, {"x": X.astype(np.float64), "y": Y},
                                                      ["z"]), _builtin(RuntimeError)),
]


@pytest.mark.filterwarnings("ignore:Specified provider")  # onnxruntime's own warning
@pytest.mark.parametrize("call, clause", [pytest.param(c, k, id=i) for i, c, k in BAD_CALLS])
def test_bad_call_is_caught_by_the_onnxruntime_except_clause(
        engine: Engine, call: Callable[[Engine, Any], Any], clause: Callable[[Engine], type],
        tmp_path: Any) -> None:
    with pytest.raises(clause(engine)) as info:
        call(engine, str(tmp_path))
    if engine.name == "pyonnx" and not issubclass(clause(engine), AttributeError):
        # pyonnx's own classes stay: a PyOnnxError whose message names what is wrong
        assert isinstance(info.value, pyonnx.PyOnnxError), type(info.value).__mro__


# ---------------------------------------------------------------------------- the shim


def _run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *args] if not code else
                          [sys.executable, "-c", code, *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_shim_runs_unmodified_onnxruntime_code(tmp_path: Any) -> None:
    script = tmp_path / "user_code.py"
    script.write_text(
        "import sys\n"
        "import numpy as np\n"
        "import onnxruntime as ort\n"
        "from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument, Fail\n"
        "from onnxruntime.capi import _pybind_state as C\n"
        "sess = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])\n"
        "x = np.ones((2, 3), np.float32)\n"
        "print(sess.run(None, {'x': x, 'y': x[:1]})[0].sum())\n"
        "try:\n"
        "    sess.run(None, {'x': x.astype(np.int64), 'y': x[:1]})\n"
        "except InvalidArgument:\n"
        "    print('caught')\n"
        "print(ort.__version__, type(sess).__module__, C.OrtValue.__module__)\n")
    model = tmp_path / "add.onnx"
    model.write_bytes(add_model())
    r = _run_python("", "-m", "pyonnx.compat.onnxruntime", str(script), str(model))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[:3] == ["12.0", "caught", "1.32.0"]
    assert lines[3].startswith("pyonnx.") and lines[4].startswith("pyonnx.")


def test_shim_is_opt_in_and_refuses_a_loaded_onnxruntime() -> None:
    r = _run_python(
        "import sys, pyonnx\n"
        "assert 'onnxruntime' not in sys.modules  # importing pyonnx installs nothing\n"
        "from pyonnx.compat import install_onnxruntime_shim, uninstall_onnxruntime_shim\n"
        "ort = install_onnxruntime_shim()\n"
        "import onnxruntime, onnxruntime.capi.onnxruntime_pybind11_state as st\n"
        "assert onnxruntime is ort and st.Fail is pyonnx.errors.OrtFail\n"
        "uninstall_onnxruntime_shim()\n"
        "assert 'onnxruntime' not in sys.modules\n"
        "print('ok')\n")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    pytest.importorskip("onnxruntime")
    r = _run_python("import onnxruntime\n"
                    "from pyonnx.compat import install_onnxruntime_shim\n"
                    "install_onnxruntime_shim()\n")
    assert r.returncode != 0 and "already imported" in r.stderr
