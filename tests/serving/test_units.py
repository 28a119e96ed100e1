"""In-process tests of the serving package's parts: repository paths, config.pbtxt, the
runner's batching, queue bound and timeouts, and the raw tensor encodings."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import pyonnx
from pyonnx.errors import ValidationError
from pyonnx.serving.config import ServerDefaults, build_settings, parse_config_text
from pyonnx.serving.datatypes import decode_raw, encode_raw, from_json_data
from pyonnx.serving.errors import BadRequest, ModelNotFound, RequestTimeout, Unavailable
from pyonnx.serving.repository import ModelRepository, check_name, check_version
from pyonnx.serving.runner import ModelRunner
from pyonnx.serving.server import InferenceServer
from tests.serving.conftest import SHARED_MODELS, SRC, save_add_model


def test_import_pyonnx_does_not_import_the_server():
    code = ("import sys, pyonnx, pyonnx.cli.main as m; m.build_parser(); "
            "bad = [n for n in ('pyonnx.serving', 'starlette', 'uvicorn', 'grpc', "
            "'prometheus_client') if n in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(SRC)))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "../x", "a\\b", ".hidden", "x" * 200,
                                  "a..b", "name\0"])
def test_names_that_are_not_plain_are_refused(name):
    with pytest.raises(BadRequest, match="not a plain name"):
        check_name(name)


@pytest.mark.parametrize("version", ["../1", "-1", "1a", "1/2", " 1"])
def test_versions_that_are_not_numbers_are_refused(version):
    with pytest.raises(BadRequest, match="not a number"):
        check_version(version)


def test_repository_layouts_and_symlinks(tmp_path):
    repo = tmp_path / "repo"
    save_add_model(repo / "a" / "1" / "model.onnx")
    save_add_model(repo / "a" / "10" / "model.onnx")
    save_add_model(repo / "plain.onnx")
    outside = tmp_path / "outside"
    save_add_model(outside / "1" / "model.onnx")
    os.symlink(outside, repo / "escape")
    (repo / "file_link" / "2").mkdir(parents=True)
    os.symlink(outside / "1" / "model.onnx", repo / "file_link" / "2" / "model.onnx")
    r = ModelRepository(repo)
    assert r.names() == ["a", "file_link", "plain"]   # 'escape' resolves outside: not listed
    assert [s.version for s in r.sources("a")] == ["1", "10"]
    assert r.sources("plain")[0].path == (repo / "plain.onnx").resolve()
    with pytest.raises(ModelNotFound, match="outside the model repository"):
        r.sources("escape")
    with pytest.raises(ModelNotFound, match="outside the model repository"):
        r.sources("file_link")
    with pytest.raises(ModelNotFound, match="unknown model"):
        r.sources("nope")
    single = ModelRepository(repo / "plain.onnx")
    assert single.names() == ["plain"] and single.sources("plain")[0].version == "1"


def _add_session(tmp_path):
    return pyonnx.InferenceSession(str(save_add_model(tmp_path / "add.onnx")))


def test_config_pbtxt_fields_are_honoured_and_others_ignored(tmp_path, caplog):
    text = """
        name: "add"
        platform: "onnxruntime_onnx"
        max_batch_size: 8
        input [ { name: "x", data_type: TYPE_FP32, dims: [ 4 ] } ]
        output [ { name: "y", data_type: TYPE_FP32, dims: [ -1 ] } ]
        dynamic_batching {
          preferred_batch_size: [ 4, 8 ]
          max_queue_delay_microseconds: 500
          default_queue_policy { max_queue_size: 7, default_timeout_microseconds: 2000000 }
        }
        instance_group [ { count: 2, kind: KIND_CPU }, { count: 1, kind: KIND_GPU } ]
        optimization { execution_accelerators { cpu_execution_accelerator: [ { name: "x" } ] } }
        model_warmup [ { name: "w" } ]  # a list of messages: protobuf cannot skip it by itself
        parameters: { key: "a" value: { string_value: "} [" } }
    """
    with caplog.at_level(logging.WARNING, logger="pyonnx.serving"):
        cfg = parse_config_text(text, "add/config.pbtxt")
        st = build_settings("add", "1", _add_session(tmp_path), cfg, ServerDefaults(), "cfg")
    for ignored in ("model_warmup", "optimization", "parameters"):
        assert ignored in caplog.text
    assert "KIND_GPU" in caplog.text
    assert (st.max_batch_size, st.dynamic_batching, st.max_queue_delay_us) == (8, True, 500)
    assert st.preferred_batch_sizes == [4, 8] and st.instance_count == 3
    assert st.max_queue_size == 7 and st.request_timeout_s == 2.0
    assert st.inputs[0].shape == [-1, 4]
    js = st.config_json()
    assert js["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [4], "optional": False}]
    assert js["dynamic_batching"]["preferred_batch_size"] == [4, 8]


@pytest.mark.parametrize("text, message", [
    ('input [ { name: "w", data_type: TYPE_FP32 } ]', "not an input of the model"),
    ('input [ { name: "x", data_type: TYPE_INT64 } ]', "TYPE_INT64, the model's is TYPE_FP32"),
    ('max_batch_size: 4\ninput [ { name: "x", dims: [ 5 ] } ]', "contradict the model's shape"),
    ('input [ { name: "x", dims: [ 4 ] } ]', "give rank 1"),
    ('name: "other"', "differs from the model's folder name"),
    ('platform: "tensorflow_savedmodel"', "serves ONNX models only"),
    ('dynamic_batching { }', "needs max_batch_size > 0"),
    ('max_batch_size: 2\ndynamic_batching { preferred_batch_size: [ 4 ] }', "not in 1..max_batch_size"),
    ('max_batch_size: { }', "not a valid model configuration"),
])
def test_config_that_contradicts_the_model_is_refused(tmp_path, text, message):
    with pytest.raises(ValidationError, match=message):
        cfg = parse_config_text(text, "cfg")
        build_settings("add", "1", _add_session(tmp_path), cfg, ServerDefaults(), "cfg")


@pytest.mark.skipif(not SHARED_MODELS.is_dir(), reason="../shared/models is absent (it holds "
                    "the real models; see its README)")
def test_a_model_with_batch_on_dimension_1_is_never_batched():
    sess = pyonnx.InferenceSession(str(SHARED_MODELS / "silero_vad.onnx"))
    st = build_settings("vad", "1", sess, None, ServerDefaults(max_batch_size=8), "x")
    assert not st.batchable and not st.dynamic_batching and st.max_batch_size == 0
    with pytest.raises(ValidationError, match="'state' has shape \\[2, -1, 128\\]"):
        build_settings("vad", "1", sess, parse_config_text("max_batch_size: 4", "c"),
                       ServerDefaults(), "c")


def _runner(tmp_path, session=None, **defaults):
    sess = session or _add_session(tmp_path)
    st = build_settings("add", "1", sess, None, ServerDefaults(**defaults), "x")
    return ModelRunner(sess, st), sess


def test_runner_batches_concurrent_requests_and_splits_the_answers(tmp_path):
    runner, sess = _runner(tmp_path, max_batch_size=4, max_queue_delay_us=60_000_000)
    xs = [np.full((1 + i % 2, 4), i, np.float32) for i in range(3)]   # 1 + 2 + 1 = 4 rows
    futures = [runner.submit({"x": x}) for x in xs]
    outs = [f.result(60) for f in futures]
    runner.stop()
    assert runner.stats.execution_count == 1 and list(runner.stats.batches) == [4]
    want = sess.run(None, {"x": np.concatenate(xs)})
    rows = 0
    for x, out in zip(xs, outs):
        assert np.array_equal(out["y"], want[0][rows:rows + len(x)])
        assert np.array_equal(out["z"], want[1][rows:rows + len(x)])
        rows += len(x)


class _BlockingSession:
    """A session whose runs wait until ``release`` is set (to hold a worker busy)."""

    def __init__(self, inner):
        self.inner, self.entered, self.release = inner, threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def run(self, names, feeds):
        self.entered.set()
        self.release.wait(60)
        return self.inner.run(names, feeds)


def test_full_queue_is_refused_at_once_and_late_requests_time_out(tmp_path):
    blocking = _BlockingSession(_add_session(tmp_path))
    runner, _ = _runner(tmp_path, session=blocking, max_queue_size=2)
    x = np.ones((1, 4), np.float32)
    first = runner.submit({"x": x})
    assert blocking.entered.wait(60)           # the only worker is busy with `first`
    queued = runner.submit({"x": x})
    late = runner.submit({"x": x}, timeout_s=0.001)
    with pytest.raises(Unavailable, match="queue is full"):
        runner.submit({"x": x})
    time.sleep(0.01)                           # `late` is now past its deadline
    blocking.release.set()
    assert np.array_equal(first.result(60)["y"], x + 1)
    assert np.array_equal(queued.result(60)["y"], x + 1)
    with pytest.raises(RequestTimeout):
        late.result(60)
    runner.stop()
    with pytest.raises(Unavailable, match="shutting down"):
        runner.submit({"x": x})
    assert runner.stats.fail.count == 1 and runner.stats.success.count == 2


def test_server_checks_requests_against_the_model(tmp_path):
    save_add_model(tmp_path / "repo" / "add" / "1" / "model.onnx")
    server = InferenceServer(tmp_path / "repo")
    server.start()
    m = server.model("add")
    with pytest.raises(BadRequest, match="has datatype FP32, the request gives INT32"):
        m.input_spec("x", "INT32", [1, 4])
    with pytest.raises(BadRequest, match=r"has shape \[-1, 4\]"):
        m.input_spec("x", "FP32", [1, 5])
    with pytest.raises(BadRequest, match="lacks input"):
        m.submit({})
    with pytest.raises(ModelNotFound, match="no version '2'"):
        server.model("add", "2")
    out = m.submit({"x": np.zeros((3, 4), np.float32)}).result(60)
    assert np.array_equal(out["y"], np.ones((3, 4), np.float32))
    server.shutdown()
    assert not server.ready()


def test_raw_and_json_encodings():
    s = np.array([b"a", b"", "\u00e9".encode()], dtype=object)
    raw = encode_raw(s, "BYTES")
    assert list(decode_raw(raw, "BYTES", [3], "s")) == list(s)
    with pytest.raises(BadRequest, match="ends after 2 of 3"):
        decode_raw(raw[:-2 - 4], "BYTES", [3], "s")
    with pytest.raises(BadRequest, match="left over"):
        decode_raw(raw + b"\0", "BYTES", [3], "s")
    x = np.arange(6, dtype=np.int16).reshape(2, 3)
    assert np.array_equal(decode_raw(encode_raw(x, "INT16"), "INT16", [2, 3], "x"), x)
    with pytest.raises(BadRequest, match="11 bytes of raw data, expected 12"):
        decode_raw(encode_raw(x, "INT16")[:-1], "INT16", [2, 3], "x")
    assert from_json_data([[1, 2], [3, 4]], "UINT8", [2, 2], "u").tolist() == [[1, 2], [3, 4]]
    with pytest.raises(BadRequest, match="out of the range of UINT8"):
        from_json_data([256], "UINT8", [1], "u")
    with pytest.raises(BadRequest, match="not a BOOL value"):
        from_json_data([1], "BOOL", [1], "b")
    with pytest.raises(BadRequest, match="unknown datatype"):
        from_json_data([1], "FP8", [1], "f")


def test_a_model_that_fails_to_load_is_listed_with_its_reason(tmp_path, caplog):
    repo = tmp_path / "repo"
    save_add_model(repo / "good" / "1" / "model.onnx")
    save_add_model(repo / "bad" / "1" / "model.onnx")
    (repo / "bad" / "config.pbtxt").write_text('input [ { name: "x", data_type: TYPE_INT8 } ]')
    (repo / "empty").mkdir()
    server = InferenceServer(repo)
    with caplog.at_level(logging.ERROR, logger="pyonnx.serving"):
        server.start()
    assert "model 'bad' not loaded" in caplog.text
    index = {e["name"]: e for e in server.index()}
    assert index["good"]["state"] == "READY"
    assert index["bad"]["state"] == "UNAVAILABLE" and "TYPE_INT8" in index["bad"]["reason"]
    assert index["empty"]["state"] == "UNAVAILABLE"
    assert [e["name"] for e in server.index(ready_only=True)] == ["good"]
    with pytest.raises(BadRequest, match="model 'bad' failed to load: .*TYPE_INT8"):
        server.load("bad")
    with pytest.raises(ModelNotFound, match="failed to load"):
        server.model("bad")
    with pytest.raises(ModelNotFound, match="no version folder"):
        server.load("empty")
    (repo / "bad" / "config.pbtxt").write_text('input [ { name: "x", data_type: TYPE_FP32 } ]')
    server.load("bad")                      # fixed on disk: loads now
    assert server.model_ready("bad")
    server.shutdown()
