"""Client (tritonclient venv): tritonclient.http only, against the 'add' model (y = x + 1,
z = 2x): readiness, metadata, config, and inference with JSON and binary tensors.

usage: http_add.py HTTP_ADDR
"""
import json
import sys

import numpy as np
import tritonclient.http as th

c = th.InferenceServerClient(sys.argv[1], network_timeout=300)
x = np.arange(12, dtype=np.float32).reshape(3, 4)
out = {"live": c.is_server_live(), "ready": c.is_model_ready("add"),
       "inputs": c.get_model_metadata("add")["inputs"],
       "max_batch_size": c.get_model_config("add")["max_batch_size"]}
for binary in (False, True):
    i = th.InferInput("x", [3, 4], "FP32")
    i.set_data_from_numpy(x, binary_data=binary)
    r = c.infer("add", [i], outputs=[th.InferRequestedOutput(n, binary_data=binary) for n in "yz"])
    out["binary" if binary else "json"] = bool(np.array_equal(r.as_numpy("y"), x + 1)
                                               and np.array_equal(r.as_numpy("z"), x * 2))
c.close()  # closed before exit, not by its finalizer (see batch.py)
print(json.dumps(out))
