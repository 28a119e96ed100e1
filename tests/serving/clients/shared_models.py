"""Client (tritonclient venv): metadata and inference on every model of INPUTS.npz, over
HTTP (JSON and binary tensors) and gRPC. Writes OUT/<mode>.npz and prints a JSON summary.

usage: shared_models.py HTTP_ADDR GRPC_ADDR INPUTS.npz OUT_DIR
"""
import json
import sys

import numpy as np
import tritonclient.grpc as tg
import tritonclient.http as th

http_addr, grpc_addr, inputs_path, out_dir = sys.argv[1:5]
with np.load(inputs_path, allow_pickle=True) as f:
    feeds = {k: f[k] for k in f.files}
models = sorted({k.split("::")[0] for k in feeds})
hc = th.InferenceServerClient(http_addr, network_timeout=600, connection_timeout=600)
gc = tg.InferenceServerClient(grpc_addr)
summary = {"http_metadata": {}, "grpc_metadata": {}, "config_max_batch_size": {}}
results = {"http_json": {}, "http_binary": {}, "grpc": {}}
assert hc.is_server_live() and hc.is_server_ready() and gc.is_server_live() and gc.is_server_ready()
for model in models:
    assert hc.is_model_ready(model) and gc.is_model_ready(model)
    md = hc.get_model_metadata(model)
    summary["http_metadata"][model] = md
    gmd = gc.get_model_metadata(model, as_json=True)
    summary["grpc_metadata"][model] = gmd
    summary["config_max_batch_size"][model] = [hc.get_model_config(model).get("max_batch_size", 0),
                                               gc.get_model_config(model).config.max_batch_size]
    mine = {k.split("::")[1]: v for k, v in feeds.items() if k.startswith(model + "::")}
    outputs = [o["name"] for o in md["outputs"]]
    dtypes = {i["name"]: i["datatype"] for i in md["inputs"]}
    for mode in results:
        if mode == "grpc":
            ins = [tg.InferInput(n, list(a.shape), dtypes[n]) for n, a in mine.items()]
            for i, a in zip(ins, mine.values()):
                i.set_data_from_numpy(a)
            r = gc.infer(model, ins, outputs=[tg.InferRequestedOutput(o) for o in outputs])
        else:
            binary = mode == "http_binary"
            ins = [th.InferInput(n, list(a.shape), dtypes[n]) for n, a in mine.items()]
            for i, a in zip(ins, mine.values()):
                i.set_data_from_numpy(a, binary_data=binary)
            r = hc.infer(model, ins, outputs=[th.InferRequestedOutput(o, binary_data=binary)
                                              for o in outputs])
        for o in outputs:
            results[mode][f"{model}::{o}"] = r.as_numpy(o)
for mode, arrays in results.items():
    np.savez(f"{out_dir}/{mode}.npz", **arrays)
gc.close()  # closed before exit, not by finalizers (see batch.py)
hc.close()
print(json.dumps(summary))
