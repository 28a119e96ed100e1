"""Client (tritonclient venv): K concurrent requests per model (HTTP binary and gRPC mixed), so
that a server with dynamic batching runs them as one batch. Writes OUT/batch.npz with the
outputs of request j under "<model>::<j>::<output>", and prints each model's stats.

usage: batch.py HTTP_ADDR GRPC_ADDR INPUTS.npz OUT_DIR K
"""
import json
import sys
import threading

import numpy as np
import tritonclient.grpc as tg
import tritonclient.http as th

http_addr, grpc_addr, inputs_path, out_dir, k = sys.argv[1:6]
k = int(k)
with np.load(inputs_path, allow_pickle=True) as f:
    feeds = {key: f[key] for key in f.files}   # "<model>::<j>::<input>"
models = sorted({key.split("::")[0] for key in feeds})
hc = th.InferenceServerClient(http_addr, concurrency=k, network_timeout=600)
gc = tg.InferenceServerClient(grpc_addr)
out, stats = {}, {}
for model in models:
    md = hc.get_model_metadata(model)
    dtypes = {i["name"]: i["datatype"] for i in md["inputs"]}
    outputs = [o["name"] for o in md["outputs"]]
    pending, done = [], threading.Semaphore(0)
    grpc_results = {}
    for j in range(k):
        mine = {key.split("::")[2]: v for key, v in feeds.items()
                if key.startswith(f"{model}::{j}::")}
        if j % 2 == 0:   # even requests over HTTP (binary tensors), odd ones over gRPC
            ins = [th.InferInput(n, list(a.shape), dtypes[n]) for n, a in mine.items()]
            for i, a in zip(ins, mine.values()):
                i.set_data_from_numpy(a)
            pending.append((j, hc.async_infer(model, ins, outputs=[th.InferRequestedOutput(o)
                                                                   for o in outputs])))
        else:
            ins = [tg.InferInput(n, list(a.shape), dtypes[n]) for n, a in mine.items()]
            for i, a in zip(ins, mine.values()):
                i.set_data_from_numpy(a)

            def callback(result, error, j=j):
                grpc_results[j] = (result, error)
                done.release()
            gc.async_infer(model, ins, callback, outputs=[tg.InferRequestedOutput(o)
                                                          for o in outputs])
    results = {j: p.get_result() for j, p in pending}
    for _ in range(k // 2):
        # a lost gRPC callback fails the test now instead of hanging until the harness timeout
        if not done.acquire(timeout=120):
            raise SystemExit(f"{model}: a gRPC response did not arrive within 120 s")
    for j, (result, error) in grpc_results.items():
        if error is not None:
            raise error
        results[j] = result
    for j, r in results.items():
        for o in outputs:
            out[f"{model}::{j}::{o}"] = r.as_numpy(o)
    stats[model] = hc.get_inference_statistics(model)["model_stats"][0]["batch_stats"]
np.savez(f"{out_dir}/batch.npz", **out)
# close both clients before the interpreter exits: left to their finalizers, the http client's
# gevent pool join and the grpc channel's shutdown can deadlock at exit (seen about once in 10
# runs: the results were written, then the process never ended)
gc.close()
hc.close()
print(json.dumps(stats))
