"""Malformed REST requests get a 4xx with the protocol's error body, and the server answers
the next good request correctly; plus the REST routes perf_analyzer and operators read."""

from __future__ import annotations

import http.client
import json
import os

import numpy as np
import pytest

from tests.serving.conftest import save_add_model

X = np.arange(8, dtype=np.float32).reshape(2, 4)
GOOD = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4], "data": X.ravel().tolist()}]}


def _request(addr: str, method: str, path: str, body: bytes | None = None,
             headers: dict | None = None) -> tuple[int, dict, bytes]:
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def _good_request_works(addr: str) -> None:
    status, _, body = _request(addr, "POST", "/v2/models/add/infer", json.dumps(GOOD).encode())
    assert status == 200, body
    outs = {o["name"]: o for o in json.loads(body)["outputs"]}
    assert outs["y"]["shape"] == [2, 4]
    assert np.array_equal(np.array(outs["y"]["data"], np.float32).reshape(2, 4), X + 1)


def _binary_body(header: dict, *chunks: bytes) -> tuple[bytes, dict]:
    h = json.dumps(header).encode()
    return h + b"".join(chunks), {"Inference-Header-Content-Length": str(len(h)),
                                  "Content-Type": "application/octet-stream"}


@pytest.fixture
def server(serve, tmp_path):
    repo = tmp_path / "repo"
    save_add_model(repo / "add" / "1" / "model.onnx")
    save_add_model(repo / "add" / "3" / "model.onnx")
    outside = tmp_path / "outside"
    save_add_model(outside / "1" / "model.onnx")
    os.symlink(outside, repo / "escape")                          # a folder pointing outside
    (repo / "sneaky" / "1").mkdir(parents=True)
    os.symlink(outside / "1" / "model.onnx", repo / "sneaky" / "1" / "model.onnx")
    return serve(repo, "--max-request-mb", "0.05")  # 52 kB


def _binary_x(shape=(2, 4), size=None, data=None):
    raw = X.tobytes() if data is None else data
    header = {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(shape),
                          "parameters": {"binary_data_size": len(raw) if size is None else size}}],
              "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}
    return _binary_body(header, raw)


CASES = {
    "bad json": (400, "/v2/models/add/infer", b'{"inputs": [', {}),
    "not an object": (400, "/v2/models/add/infer", b"[1, 2]", {}),
    "no inputs": (400, "/v2/models/add/infer", b"{}", {}),
    "wrong datatype": (400, "/v2/models/add/infer", json.dumps(
        {"inputs": [{"name": "x", "datatype": "INT32", "shape": [2, 4], "data": list(range(8))}]}
    ).encode(), {}),
    "wrong shape": (400, "/v2/models/add/infer", json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 5], "data": [0.0] * 10}]}
    ).encode(), {}),
    "data and shape disagree": (400, "/v2/models/add/infer", json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4], "data": [0.0] * 7}]}
    ).encode(), {}),
    "strings for FP32": (400, "/v2/models/add/infer", json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": ["a"] * 4}]}
    ).encode(), {}),
    "unknown input": (400, "/v2/models/add/infer", json.dumps(
        {"inputs": [{"name": "w", "datatype": "FP32", "shape": [2, 4], "data": [0.0] * 8}]}
    ).encode(), {}),
    "unknown output": (400, "/v2/models/add/infer", json.dumps(
        dict(GOOD, outputs=[{"name": "nope"}])).encode(), {}),
    "unknown model": (404, "/v2/models/nope/infer", json.dumps(GOOD).encode(), {}),
    "unknown version": (404, "/v2/models/add/versions/2/infer", json.dumps(GOOD).encode(), {}),
    "version not a number": (400, "/v2/models/add/versions/1a/infer", json.dumps(GOOD).encode(), {}),
    # an encoded slash splits the path (the server decodes it), so no route matches: 404
    "name with dot-dot": (404, "/v2/models/..%2Fescape/infer", json.dumps(GOOD).encode(), {}),
    "name .. encoded": (400, "/v2/models/%2E%2E/infer", json.dumps(GOOD).encode(), {}),
    "version with dot-dot": (404, "/v2/models/add/versions/..%2F1/infer", json.dumps(GOOD).encode(), {}),
    "symlinked folder outside": (404, "/v2/models/escape/infer", json.dumps(GOOD).encode(), {}),
    "symlinked file outside": (404, "/v2/models/sneaky/infer", json.dumps(GOOD).encode(), {}),
    "oversized body": (413, "/v2/models/add/infer", json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [20000, 4],
                     "data": [0.5] * 80000}]}).encode(), {}),
    "truncated binary": (400, "/v2/models/add/infer", *_binary_x(size=32 + 8, data=X.tobytes())),
    "binary size wrong for shape": (400, "/v2/models/add/infer", *_binary_x(shape=(1, 4))),
    "header length past body": (400, "/v2/models/add/infer", b"{}",
                                {"Inference-Header-Content-Length": "999"}),
    "gzip bomb": (413, "/v2/models/add/infer", __import__("gzip").compress(b" " * 10_000_000),
                  {"Content-Encoding": "gzip"}),
    "not gzip": (400, "/v2/models/add/infer", b"plain", {"Content-Encoding": "gzip"}),
    "unknown encoding": (400, "/v2/models/add/infer", b"{}", {"Content-Encoding": "br"}),
    "unclaimed binary bytes": (400, "/v2/models/add/infer", _binary_x()[0] + b"\0" * 4,
                               _binary_x()[1]),
}


def test_malformed_requests_get_4xx_and_the_next_request_works(server):
    for case, (status, path, body, headers) in CASES.items():
        got, hdrs, text = _request(server.http, "POST", path, body, headers)
        assert got == status, (case, got, text)
        err = json.loads(text)
        assert set(err) == {"error"} and isinstance(err["error"], str) and err["error"], case
        _good_request_works(server.http)
    # unknown routes and methods answer with the error body too
    for method, path, status in (("GET", "/v2/nothing", 404), ("GET", "/v2/models/add/infer", 405)):
        got, _, text = _request(server.http, method, path)
        assert got == status and "error" in json.loads(text)
    # the refused requests were counted by outcome
    _, _, metrics = _request(server.http, "GET", "/metrics")
    text = metrics.decode()
    for outcome in ("bad_request", "not_found", "too_large", "success"):
        assert f'outcome="{outcome}"' in text, outcome


def test_binary_round_trip_and_metadata_routes(server):
    body, headers = _binary_x()
    status, hdrs, data = _request(server.http, "POST", "/v2/models/add/infer", body, headers)
    assert status == 200
    n = int(hdrs["inference-header-content-length"])
    header = json.loads(data[:n])
    (out,) = header["outputs"]
    assert out["name"] == "y" and out["parameters"]["binary_data_size"] == 32
    assert np.array_equal(np.frombuffer(data[n:], np.float32).reshape(2, 4), X + 1)

    def get(path):
        status, _, text = _request(server.http, "GET", path)
        assert status == 200, (path, text)
        return json.loads(text) if text else None

    assert get("/v2")["extensions"]
    assert get("/v2/models/add")["versions"] == ["1", "3"]
    assert get("/v2/models/add/versions/1")["inputs"] == [
        {"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    cfg = get("/v2/models/add/config")
    assert cfg["max_batch_size"] == 0 and cfg["input"][0]["data_type"] == "TYPE_FP32"
    assert cfg["input"][0]["dims"] == [-1, 4]
    get("/v2/health/live")
    get("/v2/health/ready")
    get("/v2/models/add/ready")
    stats = get("/v2/models/add/stats")["model_stats"]
    assert {s["version"] for s in stats} == {"1", "3"}
    status, _, text = _request(server.http, "POST", "/v2/repository/index", b"")
    index = json.loads(text)
    assert {"name": "add", "version": "3", "state": "READY"} in index
    # the models behind symlinks that leave the repository are listed but never loaded
    assert all(e["state"] != "READY" for e in index if e["name"] in ("escape", "sneaky"))
    # unload, then the model is gone; load brings it back
    assert _request(server.http, "POST", "/v2/repository/models/add/unload", b"")[0] == 200
    assert _request(server.http, "GET", "/v2/models/add/ready")[0] == 404
    assert _request(server.http, "POST", "/v2/repository/models/add/load", b"")[0] == 200
    _good_request_works(server.http)
    assert _request(server.http, "POST", "/v2/repository/models/..%2F..%2Ftmp/load", b"")[0] == 404
    assert _request(server.http, "POST", "/v2/repository/models/%2E%2E/load", b"")[0] == 400
    assert _request(server.http, "POST", "/v2/repository/models/escape/load", b"")[0] == 404
