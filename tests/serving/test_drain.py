"""SIGTERM under load: in-flight requests (HTTP and gRPC) complete, new ones are refused, and
``pyonnx serve`` exits with status 0."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.request

import grpc
import numpy as np

from pyonnx.serving.proto import kserve_pb2 as pb
from tests.serving.conftest import save_add_model


def _http_infer(addr: str, x: np.ndarray) -> tuple[int, dict]:
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape),
                        "data": x.ravel().tolist()}], "outputs": [{"name": "y"}]}
    try:
        conn.request("POST", "/v2/models/add/infer", json.dumps(body))
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def _grpc_infer(addr: str, x: np.ndarray) -> np.ndarray:
    with grpc.insecure_channel(addr) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                   request_serializer=pb.ModelInferRequest.SerializeToString,
                                   response_deserializer=pb.ModelInferResponse.FromString)
        req = pb.ModelInferRequest(model_name="add")
        req.inputs.add(name="x", datatype="FP32", shape=list(x.shape))
        req.raw_input_contents.append(x.tobytes())
        req.outputs.add(name="y")
        resp = call(req, timeout=120)
        return np.frombuffer(resp.raw_output_contents[0], np.float32).reshape(x.shape)


def _waiting(addr: str) -> float:
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=30) as r:
        m = re.search(r'pyonnx_inference_queue_depth\{model="add",version="1"\} (\S+)',
                      r.read().decode())
    return float(m.group(1)) if m else 0.0


def test_sigterm_under_load_finishes_in_flight_refuses_new_exits_0(serve, tmp_path):
    repo = tmp_path / "repo"
    save_add_model(repo / "add" / "1" / "model.onnx")
    # batches wait up to a minute for more rows: the requests stay in flight until the drain
    server = serve(repo, "--max-batch-size", "64", "--max-queue-delay-ms", "60000")
    xs = [np.full((1, 4), i, np.float32) for i in range(5)]
    results: dict[int, object] = {}

    def run(i: int) -> None:
        try:
            if i < 3:
                results[i] = _http_infer(server.http, xs[i])
            else:
                results[i] = _grpc_infer(server.grpc, xs[i])
        except Exception as e:  # noqa: BLE001  (checked below)
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while _waiting(server.http) < 5:
        assert time.monotonic() < deadline, "the five requests never reached the queue"
        time.sleep(0.05)

    server.proc.terminate()  # SIGTERM
    refused = 0
    while server.proc.poll() is None:
        try:
            status, body = _http_infer(server.http, xs[0])
        except OSError:
            refused += 1  # the listening socket is closed: connection refused
        else:
            assert status == 503 and "shutting down" in body["error"], (status, body)
            refused += 1
        time.sleep(0.05)
    for t in threads:
        t.join(60)
    assert server.proc.wait(60) == 0
    for i in range(3):
        status, body = results[i]
        assert status == 200, body
        assert np.array_equal(np.array(body["outputs"][0]["data"], np.float32), (xs[i] + 1).ravel())
    for i in range(3, 5):
        assert isinstance(results[i], np.ndarray), results[i]
        assert np.array_equal(results[i], xs[i] + 1)
    # after the exit nothing listens any more
    try:
        _http_infer(server.http, xs[0])
        raise AssertionError("a request was answered after the server exited")
    except OSError:
        pass
    assert "draining" in server.log()
