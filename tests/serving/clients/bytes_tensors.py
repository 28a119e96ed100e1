"""Client (tritonclient venv): BYTES tensors through the 'strings' model (Identity) over HTTP
JSON, HTTP binary and gRPC; prints what came back as text.

usage: bytes_tensors.py HTTP_ADDR GRPC_ADDR
"""
import json
import sys

import numpy as np
import tritonclient.grpc as tg
import tritonclient.http as th

s = np.array([b"hello", "d\u00e9j\u00e0".encode(), b"", b"x" * 300], dtype=object)
out = {}
hc = th.InferenceServerClient(sys.argv[1])
for binary in (False, True):
    i = th.InferInput("s", [4], "BYTES")
    i.set_data_from_numpy(s, binary_data=binary)
    r = hc.infer("strings", [i], outputs=[th.InferRequestedOutput("s_out", binary_data=binary)])
    out["http_binary" if binary else "http_json"] = [
        v.decode() if isinstance(v, bytes) else v for v in r.as_numpy("s_out").tolist()]
for algorithm in ("gzip", "deflate"):  # compressed request bodies
    i = th.InferInput("s", [4], "BYTES")
    i.set_data_from_numpy(s)
    r = hc.infer("strings", [i], request_compression_algorithm=algorithm)
    out[algorithm] = [v.decode() for v in r.as_numpy("s_out").tolist()]
gc = tg.InferenceServerClient(sys.argv[2])
i = tg.InferInput("s", [4], "BYTES")
i.set_data_from_numpy(s)
out["grpc"] = [v.decode() for v in gc.infer("strings", [i]).as_numpy("s_out").tolist()]
gc.close()  # closed before exit, not by finalizers (see batch.py)
hc.close()
print(json.dumps(out))
