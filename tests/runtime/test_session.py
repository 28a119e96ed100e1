"""InferenceSession: onnxruntime's surface, feed validation, errors naming what is wrong."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import pyonnx  # noqa: E402
from pyonnx import (  # noqa: E402
    ExecutionError,
    InvalidArgument,
    UnsupportedOperatorError,
    ValidationError,
)


def _model(nodes, inputs, outputs, initializers=(), opset=18, ir=9, functions=()):  # type: ignore[no-untyped-def]
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir,
                          functions=list(functions))
    return m.SerializeToString()


def _add_model() -> bytes:
    return _model([helper.make_node("Add", ["x", "y"], ["z"], name="add0")],
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]),
                   helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                  [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3])])


def test_run_like_onnxruntime() -> None:
    sess = pyonnx.InferenceSession(_add_model(), providers=["CPUExecutionProvider"])
    x = np.ones((2, 3), np.float32)
    y = np.arange(3, dtype=np.float32).reshape(1, 3)
    (z,) = sess.run(None, {"x": x, "y": y})
    np.testing.assert_array_equal(z, x + y)
    assert sess.run(["z"], {"x": x, "y": y})[0].shape == (2, 3)
    (inp_x, inp_y) = sess.get_inputs()
    assert (inp_x.name, inp_x.type, inp_x.shape) == ("x", "tensor(float)", ["N", 3])
    assert sess.get_outputs()[0].shape == ["N", 3]
    assert sess.get_providers() == ["CPUExecutionProvider"]
    # the CPU provider always, last; the torch extra adds its providers before it
    assert pyonnx.get_available_providers()[-1] == "CPUExecutionProvider"


@pytest.mark.parametrize("feed, words", [
    ({"x": np.ones((2, 3), np.float32), "y": np.ones((1, 3), np.float32), "w": np.ones(1)},
     ["'w'", "not an input"]),
    ({"x": np.ones((2, 3), np.float32)}, ["missing", "y"]),
    ({"x": np.ones((2, 3), np.float64), "y": np.ones((1, 3), np.float32)},
     ["'x'", "tensor(double)", "tensor(float)"]),
    ({"x": np.ones((2, 3, 1), np.float32), "y": np.ones((1, 3), np.float32)},
     ["'x'", "rank 3", "rank 2"]),
    ({"x": np.ones((2, 4), np.float32), "y": np.ones((1, 3), np.float32)},
     ["'x'", "axis 1", "expected 3"]),
    # a bare Python scalar is refused, as in onnxruntime (lists are converted: test_ort_parity)
    ({"x": 1.0, "y": np.ones((1, 3), np.float32)}, ["'x'", "numpy.ndarray"]),
    ({"x": [[1.0, 2.0], [3.0]], "y": np.ones((1, 3), np.float32)}, ["'x'", "ragged"]),
])
def test_feed_validation_names_the_input(feed, words) -> None:  # type: ignore[no-untyped-def]
    sess = pyonnx.InferenceSession(_add_model())
    with pytest.raises(InvalidArgument) as e:
        sess.run(None, feed)
    for w in words:
        assert w in str(e.value)


def test_unknown_output_name() -> None:
    sess = pyonnx.InferenceSession(_add_model())
    with pytest.raises(InvalidArgument, match="'q' is not an output"):
        sess.run(["q"], {"x": np.ones((1, 3), np.float32), "y": np.ones((1, 3), np.float32)})


def test_kernel_failure_names_node_and_shapes() -> None:
    m = _model([helper.make_node("MatMul", ["a", "b"], ["c"], name="mm1")],
               [helper.make_tensor_value_info("a", TensorProto.FLOAT, None),
                helper.make_tensor_value_info("b", TensorProto.FLOAT, None)],
               [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)])
    sess = pyonnx.InferenceSession(m)
    with pytest.raises(ExecutionError) as e:
        sess.run(None, {"a": np.ones((2, 3), np.float32), "b": np.ones((4, 5), np.float32)})
    msg = str(e.value)
    assert "mm1" in msg and "MatMul" in msg and "float32[2,3]" in msg and "float32[4,5]" in msg
    assert e.value.__cause__ is not None


def test_overridable_initializer() -> None:
    w = numpy_helper.from_array(np.full((1, 3), 2.0, np.float32), "y")
    m = _model([helper.make_node("Mul", ["x", "y"], ["z"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]),
                helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
               [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3])], [w])
    sess = pyonnx.InferenceSession(m)
    assert [a.name for a in sess.get_inputs()] == ["x"]
    assert [a.name for a in sess.get_overridable_initializers()] == ["y"]
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], 2 * x)
    np.testing.assert_array_equal(sess.run(None, {"x": x, "y": 3 * x})[0], 3 * x)


def test_constant_output_is_a_copy() -> None:
    w = numpy_helper.from_array(np.arange(3, dtype=np.float32), "w")
    m = _model([helper.make_node("Identity", ["w"], ["out"])], [],
               [helper.make_tensor_value_info("out", TensorProto.FLOAT, [3])], [w])
    sess = pyonnx.InferenceSession(m)
    out = sess.run(None, {})[0]
    out[0] = 100.0  # the caller may write to what it gets back
    assert sess.run(None, {})[0][0] == 0.0


def test_provider_fallback_warns_and_strict_raises() -> None:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        sess = pyonnx.InferenceSession(_add_model(), providers=["CUDAExecutionProvider",
                                                                "CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert any("CUDAExecutionProvider" in str(x.message) for x in w)
    opts = pyonnx.SessionOptions()
    opts.strict_providers = True
    with pytest.raises(InvalidArgument, match="CUDAExecutionProvider"):
        pyonnx.InferenceSession(_add_model(), opts, providers=["CUDAExecutionProvider"])


def test_provider_options_and_session_options() -> None:
    opts = pyonnx.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.add_session_config_entry("session.any_key", "1")
    sess = pyonnx.InferenceSession(_add_model(), opts,
                                   providers=[("CPUExecutionProvider", {"arena": 0})])
    assert sess.get_session_options() is opts
    assert sess.get_provider_options() == {"CPUExecutionProvider": {"arena": "0"}}
    with pytest.raises(AttributeError):
        opts.no_such_option = 1  # type: ignore[attr-defined]
    x = np.ones((1, 3), np.float32)
    assert sess.run(None, {"x": x, "y": x})[0].sum() == 6


def test_unknown_operator_and_missing_version() -> None:
    m = _model([helper.make_node("NoSuchOp", ["x"], ["y"], name="n1")],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    with pytest.raises(UnsupportedOperatorError, match="NoSuchOp"):
        pyonnx.InferenceSession(m)
    # an op used at an opset before it existed
    m = _model([helper.make_node("Gelu", ["x"], ["y"], name="g")],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], opset=13)
    with pytest.raises(UnsupportedOperatorError, match="exists from version 20"):
        pyonnx.InferenceSession(m)


def test_opset_and_ir_too_new() -> None:
    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], opset=99)
    with pytest.raises(UnsupportedOperatorError, match="opsets 1 to 28"):
        pyonnx.InferenceSession(m)
    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], ir=99)
    with pytest.raises(UnsupportedOperatorError, match="IR version 99"):
        pyonnx.InferenceSession(m)


def test_undefined_input_is_a_validation_error() -> None:
    m = _model([helper.make_node("Relu", ["nope"], ["y"], name="r")],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    with pytest.raises(ValidationError, match="'nope'"):
        pyonnx.InferenceSession(m)


def test_sequence_and_optional_outputs() -> None:
    seq_t = helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, None)
    m = _model([helper.make_node("SequenceConstruct", ["x", "x"], ["s"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])], [seq_t])
    sess = pyonnx.InferenceSession(m)
    assert sess.get_outputs()[0].type == "seq(tensor(float))"
    out = sess.run(None, {"x": np.ones(2, np.float32)})[0]
    assert isinstance(out, list) and len(out) == 2


def test_if_reads_outer_scope_values() -> None:
    then_g = helper.make_graph([helper.make_node("Add", ["x", "x"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2])])
    m = _model([helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
               [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    sess = pyonnx.InferenceSession(m)
    x = np.array([1.0, 2.0], np.float32)
    np.testing.assert_array_equal(sess.run(None, {"c": np.array(True), "x": x})[0], 2 * x)
    np.testing.assert_array_equal(sess.run(None, {"c": np.array(False), "x": x})[0], -x)


def test_model_local_function() -> None:
    f = helper.make_function("custom", "Twice", ["a"], ["b"],
                             [helper.make_node("Add", ["a", "a"], ["b"])],
                             [helper.make_opsetid("", 18)])
    g = helper.make_graph([helper.make_node("Twice", ["x"], ["y"], domain="custom")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18),
                                            helper.make_opsetid("custom", 1)],
                          functions=[f], ir_version=9)
    sess = pyonnx.InferenceSession(m.SerializeToString())
    np.testing.assert_array_equal(sess.run(None, {"x": np.ones(2, np.float32)})[0], [2, 2])


def test_run_options_terminate() -> None:
    sess = pyonnx.InferenceSession(_add_model())
    ro = pyonnx.RunOptions()
    ro.terminate = True
    x = np.ones((1, 3), np.float32)
    with pytest.raises(ExecutionError, match="terminate"):
        sess.run(None, {"x": x, "y": x}, ro)


def test_profiling_writes_chrome_trace(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    opts = pyonnx.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp_path / "prof")
    sess = pyonnx.InferenceSession(_add_model(), opts)
    x = np.ones((1, 3), np.float32)
    sess.run(None, {"x": x, "y": x})
    path = sess.end_profiling()
    events = json.load(open(path))
    assert events[0]["args"]["op_type"] == "Add" and events[0]["ph"] == "X"
    assert events[0]["args"]["input_shapes"] == ["float32[1,3]", "float32[1,3]"]


def test_ir3_initializers_are_constants_not_overridable() -> None:
    """Before IR 4 every initializer was also listed as an input; like onnxruntime, pyonnx
    treats them as constants (and the optimizer may fold them)."""
    w = numpy_helper.from_array(np.full((1, 3), 2.0, np.float32), "y")
    m = _model([helper.make_node("Mul", ["x", "y"], ["z"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]),
                helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
               [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3])], [w],
               opset=8, ir=3)
    sess = pyonnx.InferenceSession(m)
    assert [a.name for a in sess.get_inputs()] == ["x"]
    assert sess.get_overridable_initializers() == []
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], 2 * x)
    with pytest.raises(InvalidArgument, match="'y' is not an input"):
        sess.run(None, {"x": x, "y": x})


def test_max_run_bytes_bounds_what_a_run_holds() -> None:
    # x (1 KiB) -> Tile x64 -> 64 KiB intermediate -> ReduceSum
    reps = numpy_helper.from_array(np.array([64], np.int64), "reps")
    m = _model([helper.make_node("Tile", ["x", "reps"], ["t"], name="tile"),
                helper.make_node("ReduceSum", ["t"], ["s"], keepdims=0)],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [256])],
               [helper.make_tensor_value_info("s", TensorProto.FLOAT, [])], [reps])
    x = np.ones(256, np.float32)
    opts = pyonnx.SessionOptions()
    opts.max_run_bytes = 16 * 1024
    with pytest.raises(pyonnx.ResourceLimitExceeded, match=r"'tile'.*max_run_bytes"):
        pyonnx.InferenceSession(m, opts).run(None, {"x": x})
    opts.max_run_bytes = 1 << 20
    assert pyonnx.InferenceSession(m, opts).run(None, {"x": x})[0] == 256 * 64


def test_cpu_mem_arena_follows_the_session_option(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """enable_cpu_mem_arena (on by default, as in onnxruntime): the session's CPU provider, which
    owns the arena, asks the allocator to keep freed memory; off, the allocator is left alone."""
    import sys

    import pyonnx.backends.cpu as cpu
    from pyonnx.backends.cpu import arena

    calls = []
    monkeypatch.setattr(cpu, "enable_arena", lambda: calls.append(1) or True)
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])]))
    so = pyonnx.SessionOptions()
    so.enable_cpu_mem_arena = False
    pyonnx.InferenceSession(model.SerializeToString(), so)
    assert calls == []
    pyonnx.InferenceSession(model.SerializeToString())
    assert calls == [1]
    if sys.platform.startswith("linux") and "glibc" in " ".join(__import__("platform").libc_ver()):
        assert arena.enable_arena() is True  # glibc took both settings


# ---------------------------------------------------------------------------- onnxruntime API
# (behaviour shared with onnxruntime is in test_ort_parity.py; these are pyonnx's own promises)


def _mul_model(metadata: dict[str, str] | None = None) -> bytes:
    w = helper.make_tensor("W", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    g = helper.make_graph([helper.make_node("Mul", ["x", "W"], ["y"], name="mul0")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    if metadata:
        helper.set_model_props(m, metadata)
    return m.SerializeToString()


@pytest.mark.parametrize("key, value", [
    ("session.load_model_format", "ORT"), ("session.save_model_format", "ORT"),
    ("session.set_denormal_as_zero", "1"), ("optimization.enable_gelu_approximation", "1"),
    ("mlas.enable_gemm_fastmath_arm64_bfloat16", "1"), ("ep.context_enable", "1"),
    ("session.collect_node_memory_stats_to_file", "stats.txt"),
])
def test_config_entries_pyonnx_cannot_honour_raise(key: str, value: str) -> None:
    so = pyonnx.SessionOptions()
    so.add_session_config_entry(key, value)
    with pytest.raises(pyonnx.errors.NotSupported, match=key.replace(".", r"\.")):
        pyonnx.InferenceSession(_mul_model(), so)


def test_strict_shape_type_inference_is_honoured() -> None:
    m = _model([helper.make_node("Add", ["a", "b"], ["c"])],
               [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2]),
                helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])],
               [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])])
    pyonnx.InferenceSession(m)  # without the entry the contradiction shows only at run time
    so = pyonnx.SessionOptions()
    so.add_session_config_entry("session.strict_shape_type_inference", "1")
    with pytest.raises(pyonnx.ShapeInferenceError):
        pyonnx.InferenceSession(m, so)


def test_add_initializer_names_what_is_wrong() -> None:
    so = pyonnx.SessionOptions()
    so.add_initializer("V", pyonnx.OrtValue.ortvalue_from_numpy(np.ones(3, np.float32)))
    with pytest.raises(InvalidArgument, match="no initializer.*'V'|'V'.*no initializer"):
        pyonnx.InferenceSession(_mul_model(), so)
    so = pyonnx.SessionOptions()
    so.add_initializer("W", pyonnx.OrtValue.ortvalue_from_numpy(np.ones(3, np.float64)))
    with pytest.raises(InvalidArgument, match="'W'.*double.*float"):
        pyonnx.InferenceSession(_mul_model(), so)
    # the caller's Model object is never modified
    model = pyonnx.load(_mul_model())
    so = pyonnx.SessionOptions()
    so.add_initializer("W", pyonnx.OrtValue.ortvalue_from_numpy(np.zeros(3, np.float32)))
    sess = pyonnx.InferenceSession(model, so)
    assert sess.run(None, {"x": np.ones(3, np.float32)})[0].tolist() == [0, 0, 0]
    assert pyonnx.InferenceSession(model).run(None, {"x": np.ones(3, np.float32)})[0].tolist() \
        == [1, 2, 3]


def test_session_options_from_the_model_config(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    meta = {"ort_config": json.dumps({"session_options": {
        "intra_op_num_threads": 2, "graph_optimization_level": 1, "enable_profiling": 1,
        "not_read": 3}})}
    so = pyonnx.SessionOptions()
    monkeypatch.delenv("ORT_LOAD_CONFIG_FROM_MODEL", raising=False)
    assert pyonnx.InferenceSession(_mul_model(meta), so).get_session_options() is so
    monkeypatch.setenv("ORT_LOAD_CONFIG_FROM_MODEL", "1")
    got = pyonnx.InferenceSession(_mul_model(meta), so).get_session_options()
    assert (got.intra_op_num_threads, got.graph_optimization_level, got.enable_profiling) == \
        (2, pyonnx.GraphOptimizationLevel.ORT_ENABLE_BASIC, True)
    assert so.intra_op_num_threads == 0  # the caller's options are left alone
    bad = {"ort_config": json.dumps({"session_options": {"graph_optimization_level": 7}})}
    with pytest.raises(InvalidArgument, match="graph_optimization_level"):
        pyonnx.InferenceSession(_mul_model(bad))


def test_logger_callback_receives_session_records() -> None:
    records = []
    pyonnx.set_default_logger_callback(lambda *r: records.append(r), severity=0)
    try:
        so = pyonnx.SessionOptions()
        so.logid = "mine"
        pyonnx.InferenceSession(_mul_model(), so)
        assert records and all(r[2] == "mine" for r in records)
        assert all(isinstance(r[0], int) and isinstance(r[4], str) for r in records)

        def broken(*r):  # type: ignore[no-untyped-def]
            raise ValueError("callback bug")

        pyonnx.set_default_logger_callback(broken, severity=0)
        pyonnx.InferenceSession(_mul_model())  # a failing callback never stops a session
        with pytest.raises(RuntimeError):
            pyonnx.set_default_logger_callback("not callable")
    finally:
        pyonnx.set_default_logger_callback(None)
        pyonnx.set_default_logger_severity(2)


def test_profile_file_has_one_event_per_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    so = pyonnx.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "prof")
    sess = pyonnx.InferenceSession(_mul_model(), so)
    sess.run(None, {"x": np.ones(3, np.float32)})
    path = sess.end_profiling()
    lines = open(path).read().splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) >= 3
    assert json.loads("\n".join(lines))[0]["args"]["op_type"] == "Mul"


def test_graph_assignment_info_needs_its_config_entry() -> None:
    with pytest.raises(pyonnx.capi.onnxruntime_pybind11_state.Fail,
                       match="record_ep_graph_assignment_info"):
        pyonnx.InferenceSession(_mul_model()).get_provider_graph_assignment_info()
    so = pyonnx.SessionOptions()
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    (sub,) = pyonnx.InferenceSession(_mul_model(), so).get_provider_graph_assignment_info()
    assert sub.ep_name == "CPUExecutionProvider"
    assert [(n.op_type, n.name) for n in sub.get_nodes()] == [("Mul", "mul0")]


def test_ortvalue_dlpack_round_trip() -> None:
    from pyonnx.capi import onnxruntime_pybind11_state as C

    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    v = pyonnx.OrtValue.ortvalue_from_numpy(arr)
    capsule = v.to_dlpack()
    assert not C.is_dlpack_uint8_tensor(capsule)
    back = C.OrtValue.from_dlpack(capsule, False)
    assert back.data_ptr() == v.data_ptr() and back.shape() == [2, 3]
    assert C.is_dlpack_uint8_tensor(np.zeros(2, np.uint8).__dlpack__())
    flags = pyonnx.OrtValue.from_dlpack(np.array([1, 0], np.uint8).__dlpack__(), True)
    assert flags.data_type() == "tensor(bool)"
    assert pyonnx.OrtValue.from_dlpack(v).data_ptr() == v.data_ptr()
    assert v.__dlpack_device__() == (1, 0)


def test_error_classes_are_onnxruntime_status_classes() -> None:
    """The hierarchy behind test_ort_parity's bad-call table."""
    C = pyonnx.capi.onnxruntime_pybind11_state
    assert issubclass(pyonnx.InvalidArgument, (C.InvalidArgument, ValueError))
    assert issubclass(pyonnx.errors.InvalidRequest, RuntimeError)
    assert issubclass(pyonnx.ExecutionError, C.Fail) and issubclass(pyonnx.ExecutionError,
                                                                    C.RuntimeException)
    assert issubclass(pyonnx.DecodeError, C.InvalidProtobuf)
    assert issubclass(pyonnx.errors.ModelFileNotFound, (C.NoSuchFile, FileNotFoundError))
    assert issubclass(pyonnx.UnsupportedOperatorError, (C.NotImplemented, C.InvalidGraph))
    assert issubclass(pyonnx.errors.NotSupported, (C.Fail, NotImplementedError))
    for name in ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "EngineError",
                 "RuntimeException", "InvalidProtobuf", "ModelLoaded", "NotImplemented",
                 "InvalidGraph", "EPFail"):
        assert issubclass(getattr(C, name), pyonnx.PyOnnxError)


def test_adapter_files_are_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pyonnx.runtime.adapters import read_adapter_file, write_adapter_file

    path = tmp_path / "a.onnx_adapter"
    write_adapter_file(path, 1, 2, {"w": np.arange(6, dtype=np.float32).reshape(2, 3)})
    fmt, adapter_version, model_version, params = read_adapter_file(path)
    assert (fmt, adapter_version, model_version) == (1, 1, 2)
    np.testing.assert_array_equal(params["w"], np.arange(6).reshape(2, 3))
    data = path.read_bytes()
    path.write_bytes(data[:-8])  # the raw data cut short
    with pytest.raises(pyonnx.errors.AdapterFileError, match="a.onnx_adapter"):
        read_adapter_file(path)
    path.write_bytes(b"\0" * 4 + b"XXXX" + data[8:])
    with pytest.raises(pyonnx.errors.AdapterFileError, match="TORT"):
        read_adapter_file(path)
    with pytest.raises(InvalidArgument, match="scalar"):
        write_adapter_file(path, 1, 1, {"s": np.float32(1.0) * np.ones(())})
    with pytest.raises(InvalidArgument, match="string"):
        write_adapter_file(path, 1, 1, {"s": np.array(["a"], dtype=object)})


def test_adapter_parameter_the_model_lacks() -> None:
    import tempfile

    from pyonnx.runtime.adapters import LoraAdapter, write_adapter_file

    with tempfile.TemporaryDirectory() as d:
        path = d + "/a.onnx_adapter"
        write_adapter_file(path, 1, 1, {"nope": np.ones(3, np.float32)})
        adapter = LoraAdapter()
        adapter.Load(path)
    ro = pyonnx.RunOptions()
    ro.add_active_adapter(adapter)
    with pytest.raises(InvalidArgument, match="'nope'"):
        pyonnx.InferenceSession(_mul_model()).run(None, {"x": np.ones(3, np.float32)}, ro)


def test_copy_tensors() -> None:
    """onnxruntime 1.32 has no CPU-to-CPU data transfer for copy_tensors; pyonnx copies."""
    src = pyonnx.OrtValue.ortvalue_from_numpy(np.arange(6, dtype=np.float32))
    dst = pyonnx.OrtValue.ortvalue_from_shape_and_type([6], np.float32)
    from pyonnx.runtime.ortvalue import copy_tensors

    copy_tensors([src], [dst])
    np.testing.assert_array_equal(dst.numpy(), np.arange(6))
    with pytest.raises(RuntimeError):
        copy_tensors([src], [])
