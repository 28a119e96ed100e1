"""Load test of ``pyonnx serve``: N requests at concurrency C, p50/p99 latency and throughput,
against an in-process run of the same model. The server runs in its own process (started here);
the client runs in this process: gRPC through grpcio with pyonnx's own messages (asynchronous
futures, C core), or HTTP through one keep-alive connection per client thread.

    PYTHONPATH=src python benchmarks/serving/load.py --model add --requests 20000 --concurrency 32
    PYTHONPATH=src python benchmarks/serving/load.py --model ../shared/models/bert_small.onnx \\
        --seq 128 --requests 2000 --concurrency 32 --max-batch-size 8 --max-queue-delay-ms 5

``--model add`` is a sub-millisecond model made on the fly (y = x + 1, z = 2x). Prints one
JSON object per scenario (and a markdown table row).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

import pyonnx  # noqa: E402
from pyonnx.serving.datatypes import ONNX_TO_KSERVE  # noqa: E402
from pyonnx.serving.proto import kserve_pb2 as pb  # noqa: E402


def make_add_model(folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], "add", [x], [y],
                              initializer=[helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])])
    path = folder / "add.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def make_inputs(sess, seq: int, rng) -> dict[str, np.ndarray]:
    feeds = {}
    for a in sess.get_inputs():
        shape = [1 if i == 0 else (d if isinstance(d, int) else seq) for i, d in enumerate(a.shape)]
        if "int" in a.type:
            feeds[a.name] = (np.ones(shape, np.int64) if "mask" in a.name
                             else rng.integers(0, 1000, shape).astype(np.int64))
        else:
            feeds[a.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


class Server:
    def __init__(self, model: Path, flags: list[str]) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pyonnx.cli.main", "serve", str(model), "--http-port", "0",
             "--grpc-port", "0", "--no-access-log", "--max-queue-size", "4096", *flags],
            stderr=subprocess.PIPE, text=True, env=env)
        for line in self.proc.stderr:
            m = re.search(r"listening http=(\S+) grpc=(\S+)", line)
            if m:
                self.http, self.grpc = m.group(1), m.group(2)
                break
        else:
            raise RuntimeError("server did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def stats(self, name: str) -> dict:
        host, port = self.http.rsplit(":", 1)
        c = http.client.HTTPConnection(host, int(port))
        c.request("GET", f"/v2/models/{name}/stats")
        return json.loads(c.getresponse().read())["model_stats"][0]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)


def grpc_load(addr: str, name: str, feeds, dtypes, n: int, conc: int) -> tuple[list[float], float]:
    channel = grpc.insecure_channel(addr)
    call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                               request_serializer=pb.ModelInferRequest.SerializeToString,
                               response_deserializer=pb.ModelInferResponse.FromString)
    req = pb.ModelInferRequest(model_name=name)
    for k, v in feeds.items():
        req.inputs.add(name=k, datatype=dtypes[k], shape=list(v.shape))
        req.raw_input_contents.append(v.tobytes())
    call(req, timeout=600)  # warm-up
    lat: list[float] = []
    slots = threading.Semaphore(conc)
    done = threading.Semaphore(0)
    errors = []

    def finished(fut, t0):
        lat.append(time.perf_counter() - t0)
        if fut.exception() is not None:
            errors.append(fut.exception())
        slots.release()
        done.release()

    start = time.perf_counter()
    for _ in range(n):
        slots.acquire()
        t0 = time.perf_counter()
        call.future(req, timeout=600).add_done_callback(lambda f, t0=t0: finished(f, t0))
    for _ in range(n):
        done.acquire()
    wall = time.perf_counter() - start
    channel.close()
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return lat, wall


def http_load(addr: str, name: str, feeds, dtypes, n: int, conc: int) -> tuple[list[float], float]:
    header = {"inputs": [], "parameters": {"binary_data_output": True}}
    blobs = []
    for k, v in feeds.items():
        header["inputs"].append({"name": k, "datatype": dtypes[k], "shape": list(v.shape),
                                 "parameters": {"binary_data_size": v.nbytes}})
        blobs.append(v.tobytes())
    h = json.dumps(header).encode()
    body = h + b"".join(blobs)
    headers = {"Inference-Header-Content-Length": str(len(h)),
               "Content-Type": "application/octet-stream"}
    host, port = addr.rsplit(":", 1)
    lat: list[float] = []
    counter = iter(range(n))
    lock = threading.Lock()
    errors = []

    def worker():
        c = http.client.HTTPConnection(host, int(port), timeout=600)
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            t0 = time.perf_counter()
            c.request("POST", f"/v2/models/{name}/infer", body, headers)
            r = c.getresponse()
            r.read()
            lat.append(time.perf_counter() - t0)
            if r.status != 200:
                errors.append(r.status)

    worker_conn = http.client.HTTPConnection(host, int(port))
    worker_conn.request("POST", f"/v2/models/{name}/infer", body, headers)  # warm-up
    worker_conn.getresponse().read()
    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, statuses {set(errors)}")
    return lat, wall


def in_process(sess, feeds, batch: int, runs: int) -> float:
    """Seconds per row of an in-process run at ``batch``."""
    if batch > 1:
        feeds = {k: np.concatenate([v] * batch) for k, v in feeds.items()}
    sess.run(None, feeds)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / batch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="add", help="'add' or an .onnx path")
    ap.add_argument("--seq", type=int, default=128, help="size of symbolic non-batch dims")
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--protocols", default="grpc,http")
    ap.add_argument("--max-batch-size", type=int, default=0)
    ap.add_argument("--max-queue-delay-ms", type=float, default=0)
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--in-process-batch", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = make_add_model(Path(tmp)) if args.model == "add" else Path(args.model).resolve()
        name = model.stem
        sess = pyonnx.InferenceSession(str(model))
        feeds = make_inputs(sess, args.seq, np.random.default_rng(0))
        dtypes = {a.name: ONNX_TO_KSERVE[a.type] for a in sess.get_inputs()}
        runs = 200 if args.model == "add" else 10
        per_row_1 = in_process(sess, feeds, 1, runs)
        per_row_b = in_process(sess, feeds, args.in_process_batch, max(3, runs // 4))
        flags = ["--instances", str(args.instances)]
        if args.max_batch_size:
            flags += ["--max-batch-size", str(args.max_batch_size), "--max-queue-delay-ms",
                      str(args.max_queue_delay_ms)]
        server = Server(model, flags)
        try:
            for protocol in args.protocols.split(","):
                load = grpc_load if protocol == "grpc" else http_load
                addr = server.grpc if protocol == "grpc" else server.http
                lat, wall = load(addr, name, feeds, dtypes, args.requests, args.concurrency)
                lat.sort()
                row = {
                    "model": name, "protocol": protocol, "requests": args.requests,
                    "concurrency": args.concurrency, "max_batch_size": args.max_batch_size,
                    "p50_ms": round(lat[len(lat) // 2] * 1e3, 3),
                    "p99_ms": round(lat[int(len(lat) * 0.99)] * 1e3, 3),
                    "throughput_rps": round(args.requests / wall, 1),
                    "in_process_batch1_rps": round(1 / per_row_1, 1),
                    f"in_process_batch{args.in_process_batch}_rows_per_s": round(1 / per_row_b, 1),
                    "server_overhead_ms_per_request": round(wall / args.requests * 1e3
                                                            - per_row_1 * 1e3, 3),
                }
                st = server.stats(name)
                row["executions"] = st["execution_count"]
                print(json.dumps(row), flush=True)
                print(f"| {name} | {protocol} | {args.max_batch_size or 'off'} | "
                      f"{row['p50_ms']} | {row['p99_ms']} | {row['throughput_rps']} | "
                      f"{row['in_process_batch1_rps']} | "
                      f"{row[f'in_process_batch{args.in_process_batch}_rows_per_s']} |", flush=True)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
