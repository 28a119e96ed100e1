"""CPU latency of the torch execution provider against onnxruntime, on the benchmark suite.

    PYTHONPATH=src python benchmarks/torch_provider.py [--runs N] [--models SUBSTR,...]
                                   [--compile | --compile-models SUBSTR,...] [--json FILE]

Models: the nine light_* CNNs with seeded random weights (tests/convert/light_models.py) and
every model in ../shared/models, batch 1 (text models at seq 128, Silero on 512 samples). Each
model runs in one process in onnxruntime (default options, CPUExecutionProvider), in pyonnx on
``TorchExecutionProvider`` (default options: compile off), and with ``--compile`` also with
``compile=1`` (``--compile-models``: only on the models named, since compiling a large model
takes minutes on a small machine); runs alternate between engines. Also measured, for information: the module
``pyonnx.convert.to_torch`` makes, called eagerly. The summary is the issue-15 figure: the
geometric mean of torch-provider / onnxruntime latency over the models where onnxruntime takes
at least 5 ms, and the ratios of the faster ones.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import statistics
import sys
import time
import warnings
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, ROOT)

SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "models"))


def suite() -> list[tuple[str, bytes | str, int]]:
    """(name, model, seq) for each benchmarked model."""
    from tests.convert.light_models import light_paths, random_light

    out: list[tuple[str, bytes | str, int]] = [
        (os.path.basename(p)[:-5], random_light(p), 128) for p in light_paths()]
    for p in sorted(glob.glob(os.path.join(SHARED, "*.onnx"))):
        name = os.path.basename(p)[:-5]
        out.append((name, p, 512 if name.startswith("silero") else 128))
    return out


def geomean(xs: list[float]) -> float | None:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def bench(name: str, model: bytes | str, seq: int, runs: int, compile_too: bool
          ) -> dict[str, Any]:
    import onnxruntime as ort

    import pyonnx
    from pyonnx.cli._benchfeeds import make_feeds

    engines: dict[str, Any] = {}
    t0 = time.perf_counter()
    engines["onnxruntime"] = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    feeds = make_feeds(engines["onnxruntime"].get_inputs(), 1, seq)
    if name.startswith("silero"):
        import numpy as np

        feeds["sr"] = np.array(16000, np.int64)
    create = {"onnxruntime": time.perf_counter() - t0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        engines["torch"] = pyonnx.InferenceSession(model, providers=["TorchExecutionProvider"])
        create["torch"] = time.perf_counter() - t0
        if compile_too:
            t0 = time.perf_counter()
            engines["torch-compile"] = pyonnx.InferenceSession(
                model, providers=[("TorchExecutionProvider", {"compile": "1"})])
            create["torch-compile"] = time.perf_counter() - t0
        # torch is imported here, after the provider's first import of it (which sets its
        # OpenMP threads to sleep when idle, as a user's session would)
        import torch

        from pyonnx.convert import to_torch

        gm = to_torch(model)
    names = [i.name for i in engines["onnxruntime"].get_inputs()]
    args = [torch.as_tensor(feeds[n]) for n in names]

    def module_run(_names: Any, _feeds: Any) -> Any:
        with torch.no_grad():
            return gm(*args)

    class _Module:
        run = staticmethod(module_run)

    engines["to_torch-module"] = _Module()
    times: dict[str, list[float]] = {e: [] for e in engines}
    for e, s in engines.items():  # warm-up (compilation happens here)
        t0 = time.perf_counter()
        for _ in range(2):
            s.run(None, feeds)
        create[e + "_warmup"] = time.perf_counter() - t0
    order = list(engines)
    for r in range(runs):
        for k in range(len(order)):
            e = order[(r + k) % len(order)]
            t0 = time.perf_counter()
            engines[e].run(None, feeds)
            times[e].append(time.perf_counter() - t0)
    med = {e: statistics.median(ts) * 1e3 for e, ts in times.items()}
    return {"model": name, "median_ms": med,
            "ratio_vs_onnxruntime": {e: med[e] / med["onnxruntime"] for e in med
                                     if e != "onnxruntime"},
            "setup_s": create}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    big = [r for r in rows if r["median_ms"]["onnxruntime"] >= 5.0]
    small = [r for r in rows if r["median_ms"]["onnxruntime"] < 5.0]
    out: dict[str, Any] = {"models_ge_5ms": [r["model"] for r in big]}
    for eng in ("torch", "torch-compile", "to_torch-module"):
        ratios = [r["ratio_vs_onnxruntime"][eng] for r in big if eng in r["ratio_vs_onnxruntime"]]
        if ratios:
            out[f"{eng}_geomean_ratio_ge_5ms"] = geomean(ratios)
            out[f"{eng}_models_ge_5ms"] = len(ratios)
            out[f"{eng}_worst_ge_5ms"] = max(
                (r["ratio_vs_onnxruntime"][eng], r["model"]) for r in big
                if eng in r["ratio_vs_onnxruntime"])
            out[f"{eng}_sub_5ms"] = {r["model"]: r["ratio_vs_onnxruntime"].get(eng)
                                     for r in small}
    compiled = [r for r in big if "torch-compile" in r["ratio_vs_onnxruntime"]]
    if compiled:  # compile off over the same models, for a like-for-like comparison
        out["torch_geomean_ratio_on_compiled_ge_5ms"] = geomean(
            [r["ratio_vs_onnxruntime"]["torch"] for r in compiled])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--models", default="")
    ap.add_argument("--compile", action="store_true", help="also measure compile=1")
    ap.add_argument("--compile-models", default="",
                    help="also measure compile=1, on the models whose names contain one of "
                         "these comma-separated strings")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    wanted = [w for w in args.models.split(",") if w]
    rows = []
    for name, model, seq in suite():
        if wanted and not any(w in name for w in wanted):
            continue
        compile_here = args.compile or any(w in name for w in args.compile_models.split(",")
                                           if w)
        row = bench(name, model, seq, args.runs, compile_here)
        rows.append(row)
        cells = "  ".join(f"{e} {v:8.2f} ms" for e, v in row["median_ms"].items())
        print(f"{name:28s} {cells}", flush=True)
    summary = summarize(rows)
    print(json.dumps(summary, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "summary": summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
