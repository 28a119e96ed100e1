"""Peak memory of saving (and optimizing) a model whose weights live in a big external data file.

Builds, in a scratch folder (``/tmp`` by default), a model made of one Gather whose table is a
float32 initializer of ``--gb`` gigabytes stored as external data, then measures in a fresh
interpreter per case:

* ``load+save``: ``pyonnx.load`` then ``pyonnx.save(..., external_data=True)`` to a new file;
* ``load+optimize+save``: the same with ``pyonnx.optimizer.optimize`` at the basic level between;
* ``load+convert+save``: the same with ``pyonnx.convert.convert_version`` to opset 18 between
  (from 17; skipped where the converter is not in the checkout);
* ``session``: an ``InferenceSession`` created and run once (the memory-mapped reference point).

The figure reported is the peak resident set size of the worker (VmHWM) minus its RSS just
before loading (after importing pyonnx and NumPy), so the interpreter's own baseline is not
counted. The written model is loaded back and its table compared to the source, row samples
and the whole file's bytes by streaming, so a fast wrong writer cannot pass.

    PYTHONPATH=src python benchmarks/save_memory.py --gb 2.4
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

# the worker runs in its own interpreter so that each case starts from the same baseline
_WORKER = r"""
import json, os, sys
import numpy as np
import pyonnx

def rss_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0

case, src, dst = sys.argv[1:4]
base = rss_kb("VmRSS")
model = pyonnx.load(src)
if case == "load+optimize+save":
    from pyonnx.optimizer import optimize
    model = optimize(model, 1)
if case == "load+convert+save":
    try:
        from pyonnx.convert import convert_version
    except ImportError:
        print(json.dumps({"case": case, "skipped": "pyonnx.convert is not in this checkout"}))
        sys.exit(0)
    model = convert_version(model, 18)
if case == "session":
    sess = pyonnx.InferenceSession(src)
    sess.run(None, {"ids": np.array([[0, 1, 2]], dtype=np.int64)})
else:
    pyonnx.save(model, dst, external_data=True)
peak = rss_kb("VmHWM")
print(json.dumps({"case": case, "baseline_mb": base / 1024, "peak_mb": peak / 1024,
                  "growth_mb": (peak - base) / 1024}))
"""


def make_model(folder: str, nbytes: int, rows_width: int = 1024) -> tuple[str, int]:
    """Write ``model.onnx`` + ``model.onnx.data`` with a [rows, width] float32 Gather table of
    about nbytes, without ever holding the table in memory: the data file is written in
    chunks of a deterministic pattern (row r holds r + column/width)."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    from pyonnx.io import proto as P

    rows = max(1, nbytes // (4 * rows_width))
    data_path = os.path.join(folder, "model.onnx.data")
    with open(data_path, "wb") as f:
        step = max(1, (64 << 20) // (4 * rows_width))
        cols = np.arange(rows_width, dtype=np.float32) / rows_width
        for r0 in range(0, rows, step):
            r1 = min(rows, r0 + step)
            block = np.arange(r0, r1, dtype=np.float32)[:, None] + cols[None, :]
            f.write(block.tobytes())
    mp = P.ModelProto()
    mp.ir_version = 8
    mp.opset_import.add().version = 17
    g = mp.graph
    g.name = "big_gather"
    t = g.initializer.add()
    t.name, t.data_type = "table", P.TensorProto.FLOAT
    t.dims.extend([rows, rows_width])
    t.data_location = P.TensorProto.EXTERNAL
    for k, v in (("location", "model.onnx.data"), ("offset", "0"),
                 ("length", str(rows * rows_width * 4))):
        e = t.external_data.add()
        e.key, e.value = k, v
    n = g.node.add()
    n.op_type, n.name = "Gather", "gather"
    n.input.extend(["table", "ids"])
    n.output.append("out")
    for name, elem, dims in (("ids", P.TensorProto.INT64, ["batch", "seq"]),
                             ("out", P.TensorProto.FLOAT, ["batch", "seq", rows_width])):
        vi = (g.input if name == "ids" else g.output).add()
        vi.name = name
        vi.type.tensor_type.elem_type = elem
        for d in dims:
            dim = vi.type.tensor_type.shape.dim.add()
            if isinstance(d, int):
                dim.dim_value = d
            else:
                dim.dim_param = d
    path = os.path.join(folder, "model.onnx")
    with open(path, "wb") as f:
        f.write(mp.SerializeToString())
    return path, rows * rows_width * 4


def measure(case: str, src: str, dst: str) -> dict:
    """Run one case in a fresh interpreter and return its figures."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    out = subprocess.run([sys.executable, "-c", _WORKER, case, src, dst], env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])




def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gb", type=float, default=2.4, help="size of the Gather table (GB, 1e9)")
    p.add_argument("--dir", default=None, help="scratch folder (default: a new one in /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    folder = args.dir or tempfile.mkdtemp(prefix="pyonnx_save_memory_")
    os.makedirs(folder, exist_ok=True)
    try:
        src, nbytes = make_model(folder, int(args.gb * 1e9))
        print(f"model: {src} with a {nbytes / 1e9:.2f} GB float32 Gather table (external data)")
        results = []
        for case in ("session", "load+save", "load+optimize+save", "load+convert+save"):
            dst = os.path.join(folder, f"out_{case.replace('+', '_')}.onnx")
            r = measure(case, src, dst)
            if "skipped" in r:
                print(f"{case:20s} skipped: {r['skipped']}")
                results.append(r)
                continue
            if case != "session":
                r["data_identical"] = _written_ok(dst, src)
            results.append(r)
            extra = (f", written table identical: {r['data_identical']}"
                     if "data_identical" in r else "")
            print(f"{case:20s} peak RSS {r['peak_mb']:8.0f} MB = baseline "
                  f"{r['baseline_mb']:.0f} MB + {r['growth_mb']:.0f} MB{extra}")
            if case != "session":
                for f in (dst, dst + ".data"):
                    if os.path.exists(f):
                        os.remove(f)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"table_bytes": nbytes, "results": results}, f, indent=2)
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def _written_ok(dst: str, src: str) -> bool:
    """The saved model's table holds exactly the source bytes (one aligned region, so the
    data files match byte for byte once the writer's leading alignment is accounted for)."""
    from pyonnx.io import proto as P

    mp = P.ModelProto()
    with open(dst, "rb") as f:
        mp.ParseFromString(f.read())
    (t,) = mp.graph.initializer
    entries = {e.key: e.value for e in t.external_data}
    offset, length = int(entries.get("offset", 0)), int(entries["length"])
    data = os.path.join(os.path.dirname(dst), entries["location"])
    with open(data, "rb") as fa, open(src + ".data", "rb") as fb:
        fa.seek(offset)
        done = 0
        while done < length:
            n = min(64 << 20, length - done)
            if fa.read(n) != fb.read(n):
                return False
            done += n
        return fb.read(1) == b""


if __name__ == "__main__":
    sys.exit(main())
