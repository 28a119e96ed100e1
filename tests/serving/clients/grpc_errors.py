"""Client (tritonclient venv): malformed gRPC requests get an error status, and the next good
request is answered correctly. Prints {case: status code name} and the good answer's check.

usage: grpc_errors.py GRPC_ADDR
"""
import json
import sys

import numpy as np
import tritonclient.grpc as tg
from tritonclient.utils import InferenceServerException

c = tg.InferenceServerClient(sys.argv[1])
x = np.arange(8, dtype=np.float32).reshape(2, 4)
out = {}


def attempt(case, model, inputs, version=""):
    try:
        c.infer(model, inputs, model_version=version)
        out[case] = "OK"
    except InferenceServerException as e:
        out[case] = e.status()


def inp(name, shape, dt, arr):
    i = tg.InferInput(name, shape, dt)
    i.set_data_from_numpy(arr)
    return i


attempt("unknown_model", "nope", [inp("x", [2, 4], "FP32", x)])
attempt("unknown_version", "add", [inp("x", [2, 4], "FP32", x)], version="7")
attempt("traversal_name", "../add", [inp("x", [2, 4], "FP32", x)])
attempt("traversal_version", "add", [inp("x", [2, 4], "FP32", x)], version="../1")
attempt("wrong_dtype", "add", [inp("x", [2, 4], "FP64", x.astype(np.float64))])
attempt("wrong_shape", "add", [inp("x", [2, 3], "FP32", x[:, :3].copy())])
attempt("unknown_input", "add", [inp("w", [2, 4], "FP32", x)])
bad = tg.InferInput("x", [2, 4], "FP32")
bad.set_data_from_numpy(x)
bad._raw_content = bad._raw_content[:-4]   # truncated raw payload
attempt("truncated_raw", "add", [bad])
r = c.infer("add", [inp("x", [2, 4], "FP32", x)])
out["good_after"] = bool(np.array_equal(r.as_numpy("y"), x + 1))

# the streaming RPC: a good request, a bad one (an error message in the stream), a good one
import queue  # noqa: E402

answers = queue.Queue()
c.start_stream(lambda result=None, error=None: answers.put((result, error)))
c.async_stream_infer("add", [inp("x", [2, 4], "FP32", x)])
c.async_stream_infer("nope", [inp("x", [2, 4], "FP32", x)])
c.async_stream_infer("add", [inp("x", [2, 4], "FP32", x * 3)])
got = [answers.get(timeout=120) for _ in range(3)]
c.stop_stream()
out["stream"] = [("error" if e is not None else
                  bool(np.array_equal(r.as_numpy("y"), x * (3 if i == 2 else 1) + 1)))
                 for i, (r, e) in enumerate(got)]
c.close()  # closed before exit, not by its finalizer (see batch.py)
print(json.dumps(out))
