"""ExecutionMode.ORT_SEQUENTIAL vs ORT_PARALLEL on branchy models, pyonnx and onnxruntime.

    PYTHONPATH=src python benchmarks/parallel_execution.py [--runs 20] [--inter 0] [--threads 0]
                                                          [--models inception,ssd,...]

Models: the branchy light CNNs of the onnx package (inception v1 and v2: four-branch modules;
squeezenet: two-branch fire modules) and ``ssd_heads``, an SSD-like detector built here (a small
convolutional backbone with three feature maps, each with its own class and box heads: six
independent convolution chains, then their flattened outputs concatenated), and ``wide_matmul``,
the most favourable case (four independent chains of 512 x 512 products, which BLAS computes
without the GIL). Each model runs at
batch 1 in four sessions (pyonnx and onnxruntime, each sequential and parallel with
``--inter`` inter-op threads, 0 = one per core; ``--threads`` intra-op threads for all, 0 =
one per core), timed run by run in a balanced interleaved order (each engine right after each
other equally often) so that load drifts hit every session alike. The machine's load average
is printed with the figures: on a shared machine only the ratios of one run mean anything.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import pyonnx  # noqa: E402
from pyonnx.cli.bench import balanced_order, make_feeds  # noqa: E402


def ssd_heads_model(path: str, size: int = 160) -> str:
    """Write the SSD-like model (random weights, fixed seed) to ``path`` and return it."""
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(0)
    nodes: list[Any] = []
    inits: list[Any] = []

    def conv(x: str, cin: int, cout: int, k: int, stride: int, name: str, relu: bool = True
             ) -> str:
        w = (rng.standard_normal((cout, cin, k, k)) * (2.0 / (cin * k * k)) ** 0.5)
        inits.append(numpy_helper.from_array(w.astype(np.float32), f"{name}_w"))
        inits.append(numpy_helper.from_array(np.zeros(cout, np.float32), f"{name}_b"))
        out = f"{name}_out"
        nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [out], name=name,
                                      kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[k // 2] * 4))
        if relu:
            nodes.append(helper.make_node("Relu", [out], [f"{name}_r"], name=f"{name}_relu"))
            return f"{name}_r"
        return out

    x, cin = "image", 3
    feats = []
    for stage, cout in enumerate((32, 64, 96, 128, 160)):
        x = conv(x, cin, cout, 3, 2, f"stage{stage}")
        x = conv(x, cout, cout, 3, 1, f"stage{stage}b")
        cin = cout
        if stage >= 2:
            feats.append((x, cout))
    classes, anchors = 21, 6
    scores, boxes = [], []
    for f, (fx, fc) in enumerate(feats):
        for kind, per in (("cls", classes), ("box", 4)):
            h = conv(fx, fc, fc, 3, 1, f"{kind}{f}_a")
            h = conv(h, fc, fc, 3, 1, f"{kind}{f}_b")
            h = conv(h, fc, anchors * per, 3, 1, f"{kind}{f}_out", relu=False)
            t = f"{kind}{f}_t"
            nodes.append(helper.make_node("Transpose", [h], [t], perm=[0, 2, 3, 1]))
            shape = f"{kind}{f}_shape"
            inits.append(numpy_helper.from_array(np.array([1, -1, per], np.int64), shape))
            r = f"{kind}{f}_flat"
            nodes.append(helper.make_node("Reshape", [t, shape], [r]))
            (scores if kind == "cls" else boxes).append(r)
    nodes.append(helper.make_node("Concat", scores, ["scores"], axis=1))
    nodes.append(helper.make_node("Concat", boxes, ["boxes"], axis=1))
    g = helper.make_graph(
        nodes, "ssd_heads",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("boxes", TensorProto.FLOAT, None)], initializer=inits)
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def wide_matmul_model(path: str, branches: int = 4, depth: int = 3, size: int = 512) -> str:
    """Write ``branches`` independent chains of ``depth`` MatMul + Relu on one [size, size]
    input, summed at the end, to ``path``."""
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(0)
    nodes, inits, ends = [], [], []
    for b in range(branches):
        prev = "x"
        for d in range(depth):
            w = f"w{b}_{d}"
            inits.append(numpy_helper.from_array(
                (rng.standard_normal((size, size)) / size ** 0.5).astype(np.float32), w))
            nodes.append(helper.make_node("MatMul", [prev, w], [f"m{b}_{d}"]))
            nodes.append(helper.make_node("Relu", [f"m{b}_{d}"], [f"r{b}_{d}"]))
            prev = f"r{b}_{d}"
        ends.append(prev)
    nodes.append(helper.make_node("Sum", ends, ["y"]))
    g = helper.make_graph(nodes, "wide_matmul",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [size, size])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])],
                          initializer=inits)
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def models(tmp: str) -> list[str]:
    import onnx

    light = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    found = [p for name in ("inception_v1", "inception_v2", "squeezenet")
             for p in glob.glob(os.path.join(light, f"light_{name}.onnx"))]
    return found + [ssd_heads_model(os.path.join(tmp, "ssd_heads.onnx")),
                    wide_matmul_model(os.path.join(tmp, "wide_matmul.onnx"))]


def sessions(path: str, inter: int, threads: int) -> dict[str, Any]:
    import onnxruntime as ort

    made: dict[str, Any] = {}
    for engine, mod in (("pyonnx", pyonnx), ("onnxruntime", ort)):
        for mode in ("sequential", "parallel"):
            so = mod.SessionOptions()
            so.intra_op_num_threads = threads
            if mode == "parallel":
                so.execution_mode = mod.ExecutionMode.ORT_PARALLEL
                so.inter_op_num_threads = inter
            if engine == "onnxruntime":
                so.log_severity_level = 3
                made[f"{engine} {mode}"] = mod.InferenceSession(
                    path, so, providers=["CPUExecutionProvider"])
            else:
                made[f"{engine} {mode}"] = mod.InferenceSession(path, so)
    return made


def measure(path: str, runs: int, inter: int, threads: int) -> dict[str, Any]:
    sess = sessions(path, inter, threads)
    feeds = make_feeds(sess["pyonnx sequential"].get_inputs(), 1, 128)
    ref = None
    for name, s in sess.items():  # warm-up, and the modes agree
        for _ in range(2):
            out = s.run(None, feeds)
        if name.startswith("pyonnx"):
            if ref is None:
                ref = out
            else:
                for a, b in zip(ref, out):
                    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    times: dict[str, list[float]] = {n: [] for n in sess}
    load_before = os.getloadavg()[0]
    for name in balanced_order(list(sess), runs):
        t0 = time.perf_counter()
        sess[name].run(None, feeds)
        times[name].append(time.perf_counter() - t0)
    med = {n: statistics.median(t) * 1e3 for n, t in times.items()}
    return {"model": os.path.basename(path), "median_ms": med,
            "pyonnx_parallel_over_sequential": med["pyonnx parallel"] / med["pyonnx sequential"],
            "ort_parallel_over_sequential": (med["onnxruntime parallel"]
                                             / med["onnxruntime sequential"]),
            "load_avg_1min": (load_before, os.getloadavg()[0]),
            "nodes": len(sess["pyonnx sequential"]._plan.steps)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--inter", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--models", default="", help="comma-separated substrings of model names")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    wanted = [w for w in args.models.split(",") if w]
    results = []
    print(f"cores {os.cpu_count()}, inter-op {args.inter or 'one per core'}, intra-op "
          f"{args.threads or 'one per core'}, {args.runs} runs per session")
    with tempfile.TemporaryDirectory() as tmp:
        for path in models(tmp):
            if wanted and not any(w in os.path.basename(path) for w in wanted):
                continue
            r = measure(path, args.runs, args.inter, args.threads)
            results.append(r)
            m = r["median_ms"]
            print(f"{r['model']:28s} nodes {r['nodes']:4d}  pyonnx seq "
                  f"{m['pyonnx sequential']:8.2f} par {m['pyonnx parallel']:8.2f} ms (par/seq "
                  f"{r['pyonnx_parallel_over_sequential']:.2f})  onnxruntime seq "
                  f"{m['onnxruntime sequential']:8.2f} par {m['onnxruntime parallel']:8.2f} ms "
                  f"(par/seq {r['ort_parallel_over_sequential']:.2f})  load "
                  f"{r['load_avg_1min'][0]:.1f}->{r['load_avg_1min'][1]:.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
