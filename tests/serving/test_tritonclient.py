"""The real Triton clients (tritonclient.http and .grpc, in their own environment) against
``pyonnx serve``: metadata and inference on every shared model, exact equality with an
in-process run, dynamic batching, and a 2,000-request load over each protocol."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import pyonnx
from tests.serving.conftest import SHARED_MODELS, load_npz, save_add_model, save_strings_model

needs_shared_models = pytest.mark.skipif(
    not SHARED_MODELS.is_dir(),
    reason="../shared/models is absent (it holds the real models; see its README)")


def _model_inputs(path, rng: np.random.Generator, seq: int = 16) -> dict[str, np.ndarray]:
    """Inputs for a shared model: what its README says it takes, batch 1."""
    name = path.stem
    if name.startswith("silero_vad"):
        return {"input": rng.standard_normal((1, 512)).astype(np.float32) * 0.1,
                "state": rng.standard_normal((2, 1, 128)).astype(np.float32) * 0.1,
                "sr": np.array(16000, dtype=np.int64)}
    if name.startswith("bert_small"):
        return {"input_ids": rng.integers(0, 1000, (1, seq)).astype(np.int64),
                "attention_mask": np.ones((1, seq), np.int64)}
    if name == "gpt2_small":
        return {"input_ids": rng.integers(0, 8000, (1, seq)).astype(np.int64)}
    if name == "vit_tiny":
        return {"pixel_values": rng.standard_normal((1, 3, 224, 224)).astype(np.float32)}
    if name.startswith("magika"):
        return {"bytes": rng.integers(0, 257, (1, 2048)).astype(np.int32)}
    pytest.fail(f"{path.name}: add its inputs to _model_inputs (see ../shared/models/README.md)")


def _shared_models():
    return sorted(SHARED_MODELS.glob("*.onnx"))


@needs_shared_models
def test_every_shared_model_over_http_json_binary_and_grpc(serve, client, tmp_path):
    """Batching off: every output equals an in-process run exactly, in all three encodings."""
    rng = np.random.default_rng(0)
    feeds, expected = {}, {}
    for path in _shared_models():
        inputs = _model_inputs(path, rng)
        sess = pyonnx.InferenceSession(str(path))
        outs = sess.run(None, inputs)
        for n, a in inputs.items():
            feeds[f"{path.stem}::{n}"] = a
        for o, a in zip(sess.get_outputs(), outs):
            expected[f"{path.stem}::{o.name}"] = a
    np.savez(tmp_path / "inputs.npz", **feeds)
    server = serve(SHARED_MODELS, "--no-access-log")
    summary = client("shared_models.py", server.http, server.grpc, tmp_path / "inputs.npz", tmp_path)
    for path in _shared_models():
        sess = pyonnx.InferenceSession(str(path))
        md = summary["http_metadata"][path.stem]
        assert [i["name"] for i in md["inputs"]] == [i.name for i in sess.get_inputs()]
        assert [o["name"] for o in md["outputs"]] == [o.name for o in sess.get_outputs()]
        gmd = summary["grpc_metadata"][path.stem]
        assert [i["name"] for i in gmd["inputs"]] == [i.name for i in sess.get_inputs()]
        assert summary["config_max_batch_size"][path.stem] == [0, 0]
    for mode in ("http_json", "http_binary", "grpc"):
        got = load_npz(tmp_path / f"{mode}.npz")
        assert sorted(got) == sorted(expected), mode
        for key, want in expected.items():
            assert got[key].dtype == want.dtype, (mode, key)
            assert got[key].shape == want.shape, (mode, key)
            assert np.array_equal(got[key], want, equal_nan=True), (mode, key)


@needs_shared_models
def test_dynamic_batching_equals_an_in_process_batch(serve, client, tmp_path):
    """Three concurrent requests (HTTP and gRPC mixed) run as one batch of 3; each answer equals
    its rows of an in-process run of that batch. silero_vad models are never batched."""
    k = 3
    rng = np.random.default_rng(1)
    feeds, per_model = {}, {}
    for path in _shared_models():
        reqs = [_model_inputs(path, rng, seq=8) for _ in range(k)]
        per_model[path.stem] = (path, reqs)
        for j, r in enumerate(reqs):
            for n, a in r.items():
                feeds[f"{path.stem}::{j}::{n}"] = a
    np.savez(tmp_path / "inputs.npz", **feeds)
    # a long delay: the batch closes when it is full (3 rows), not when the delay ends
    server = serve(SHARED_MODELS, "--no-access-log", "--max-batch-size", str(k),
                   "--max-queue-delay-ms", "60000")
    stats = client("batch.py", server.http, server.grpc, tmp_path / "inputs.npz", tmp_path, k)
    got = load_npz(tmp_path / "batch.npz")
    for name, (path, reqs) in per_model.items():
        sess = pyonnx.InferenceSession(str(path))
        out_names = [o.name for o in sess.get_outputs()]
        sizes = {b["batch_size"]: int(b["compute_infer"]["count"]) for b in stats[name]}
        if name.startswith("silero_vad"):
            # state carries the batch on dimension 1: never batched, each request runs alone
            assert sizes == {1: k}, (name, sizes)
            for j, r in enumerate(reqs):
                want = sess.run(None, r)
                for o, w in zip(out_names, want):
                    assert np.array_equal(got[f"{name}::{j}::{o}"], w), (name, j, o)
            continue
        assert sizes == {k: 1}, (name, sizes)
        # the server's batch order is the arrival order, which the client does not control:
        # some order of the requests must reproduce every answer exactly
        for order in itertools.permutations(range(k)):
            batch = {n: np.concatenate([reqs[j][n] for j in order]) for n in reqs[0]}
            want = sess.run(None, batch)
            if all(np.array_equal(got[f"{name}::{j}::{o}"], w[row:row + 1])
                   for row, j in enumerate(order) for o, w in zip(out_names, want)):
                break
        else:
            pytest.fail(f"{name}: the batched answers equal no in-process run of the batch")


@pytest.fixture
def add_repository(tmp_path):
    """A Triton-layout repository: 'add' (batchable, sub-millisecond) and 'strings' (BYTES)."""
    repo = tmp_path / "repo"
    save_add_model(repo / "add" / "1" / "model.onnx")
    save_strings_model(repo / "strings" / "1" / "model.onnx")
    return repo


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_two_thousand_requests_at_concurrency_16(serve, client, add_repository, protocol):
    """2,000 requests, 16 in flight, each with its own input: none lost, none wrong."""
    (add_repository / "add" / "config.pbtxt").write_text(
        "max_batch_size: 16\ndynamic_batching { max_queue_delay_microseconds: 200 }\n"
        "instance_group [{ count: 2 kind: KIND_CPU }]\n")
    server = serve(add_repository, "--no-access-log")
    addr = server.http if protocol == "http" else server.grpc
    result = client("load.py", addr, protocol, 2000, 16)
    assert result == {"ok": 2000, "wrong": 0, "lost": 0, "errors": []}
    import urllib.request
    with urllib.request.urlopen(f"http://{server.http}/v2/models/add/stats") as r:
        stats = json.load(r)["model_stats"][0]
    assert stats["inference_count"] == 2000
    assert stats["inference_stats"]["success"]["count"] == 2000
    assert stats["inference_stats"]["fail"]["count"] == 0


def test_bytes_tensors_and_grpc_errors(serve, client, add_repository):
    """BYTES in and out over every encoding; malformed gRPC requests get an error status and
    the next good request is answered correctly."""
    server = serve(add_repository)
    got = client("bytes_tensors.py", server.http, server.grpc)
    want = ["hello", "d\u00e9j\u00e0", "", "x" * 300]
    assert got == {"http_json": want, "http_binary": want, "gzip": want, "deflate": want,
                   "grpc": want}

    errors = client("grpc_errors.py", server.grpc)
    assert errors == {
        "unknown_model": "StatusCode.NOT_FOUND", "unknown_version": "StatusCode.NOT_FOUND",
        "traversal_name": "StatusCode.INVALID_ARGUMENT",
        "traversal_version": "StatusCode.INVALID_ARGUMENT",
        "wrong_dtype": "StatusCode.INVALID_ARGUMENT", "wrong_shape": "StatusCode.INVALID_ARGUMENT",
        "unknown_input": "StatusCode.INVALID_ARGUMENT",
        "truncated_raw": "StatusCode.INVALID_ARGUMENT", "good_after": True,
        "stream": [True, "error", True]}
    # the access log has one JSON line per request
    lines = [json.loads(x) for x in server.log().splitlines() if x.startswith("{")]
    assert any(x["protocol"] == "grpc" and x["method"] == "ModelInfer" for x in lines)
    assert any(x["protocol"] == "http" and x["path"] == "/v2/models/strings/infer" for x in lines)


def test_grpc_messages_match_tritonclients_wire_format(client):
    """Every field pyonnx's private messages declare has the number, type and cardinality of
    the same field in tritonclient's own definitions (so the bytes on the wire agree)."""
    from pyonnx.serving.proto import kserve_pb2

    theirs = client("descriptors.py")
    pending = list(kserve_pb2.DESCRIPTOR.message_types_by_name.values())
    checked = 0
    while pending:
        m = pending.pop()
        pending.extend(m.nested_types)
        if m.GetOptions().map_entry:
            continue
        name = m.full_name.split("pyonnx.serving.kserve.", 1)[1]
        assert name in theirs, f"{name} is not a message of the protocol"
        for f in m.fields:
            repeated = f.is_repeated if hasattr(f, "is_repeated") else f.label == f.LABEL_REPEATED
            assert theirs[name].get(f.name) == [f.number, f.type, repeated], (name, f.name)
            checked += 1
    assert checked > 100
