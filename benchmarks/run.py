"""The pyonnx benchmark suite: every light_* model of the onnx package and every model in
../shared/models, in pyonnx, onnxruntime and onnx.reference, measured side by side in one run.

    PYTHONPATH=src python benchmarks/run.py [--runs N] [--threads N] [--json FILE]
                                            [--models SUBSTR,...] [--no-reference]
                                            [--models-dir DIR] [--batches 1,8]

Each model runs at batch 1 (text models at seq 128, the Silero models on 512-sample windows),
and again at batch 8 when its batch dimension is dynamic. Each engine runs in a process of its
own, the engines taking turns in blocks of runs (``pyonnx bench``'s default; ``--in-process``
alternates them run by run in one process); peak memory is each engine's process's peak. The
summary gives the acceptance figures of the performance issue: the geometric mean of
pyonnx/onnxruntime latency over models whose onnxruntime latency is >= 5 ms (and the worst one),
the same at batch 8, the geometric mean over the smaller models and the dispatch overhead per
executed node of each of them, the speed-up over onnx.reference, and the peak-memory ratios.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from pyonnx.cli.bench import bench_model, format_result  # noqa: E402

SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "models"))


def suite(models_dir: str | None = None) -> list[tuple[str, int]]:
    """(model path, seq) for every benchmarked model; with `models_dir`, that folder's models
    instead (e.g. benchmarks/models/ of tools/export_bench_models.py, sequences fixed there)."""
    import onnx

    if models_dir:
        return [(p, 128) for p in sorted(glob.glob(os.path.join(models_dir, "*.onnx")))]

    light = sorted(glob.glob(os.path.join(os.path.dirname(onnx.__file__), "backend", "test",
                                          "data", "light", "light_*.onnx")))
    shared = sorted(glob.glob(os.path.join(SHARED, "*.onnx"))) if os.path.isdir(SHARED) else []
    return [(p, 128) for p in light] + [
        (p, 512 if os.path.basename(p).startswith("silero") else 128) for p in shared]


def geomean(xs: list[float]) -> float | None:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def _numpy_only(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The same figures for pyonnx without compiled loops, when the run measured it."""
    pairs = [(r["ratio"]["onnxruntime"] / r["ratio"]["pyonnx-numpy"], r["model"]) for r in rows
             if "pyonnx-numpy" in r["ratio"]]
    if not pairs:
        return {}
    return {"numpy_only_geomean_ratio_vs_onnxruntime": geomean([p[0] for p in pairs]),
            "numpy_only_worst": max(pairs)}


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The acceptance figures over all results."""
    out: dict[str, Any] = {"compiled_loops": results[0].get("compiled_loops") if results else None}
    for batch in (1, 8):
        rows = [r for r in results if r["batch"] == batch and "onnxruntime" in r.get("ratio", {})]
        big = [r for r in rows if r["engines"]["onnxruntime"]["median_ms"] >= 5.0]
        small = [r for r in rows if r["engines"]["onnxruntime"]["median_ms"] < 5.0]
        ratios = [r["ratio"]["onnxruntime"] for r in big]
        out[f"batch{batch}"] = {
            "models_ge_5ms": len(big),
            "geomean_ratio_vs_onnxruntime": geomean(ratios),
            "worst": max(((r["ratio"]["onnxruntime"], r["model"]) for r in big), default=None),
            **_numpy_only(big),
            "small_models": {r["model"]: {
                "ratio": r["ratio"]["onnxruntime"],
                "dispatch_us_per_node": r.get("profile", {}).get("dispatch_us_per_node")}
                for r in small},
            "small_geomean_ratio_vs_onnxruntime": geomean([r["ratio"]["onnxruntime"]
                                                           for r in small]),
            "small_numpy_only_geomean_ratio_vs_onnxruntime": _numpy_only(small).get(
                "numpy_only_geomean_ratio_vs_onnxruntime"),
        }
    with_ref = [r for r in results if "reference" in r.get("ratio", {})]
    out["speedup_vs_reference_geomean"] = geomean([1.0 / r["ratio"]["reference"]
                                                   for r in with_ref])
    out["reference_models"] = len(with_ref)
    # the same figure for onnxruntime on the same models: what the best engine here reaches
    out["onnxruntime_speedup_vs_reference_geomean"] = geomean(
        [r["ratio"]["onnxruntime"] / r["ratio"]["reference"] for r in with_ref
         if "onnxruntime" in r["ratio"]])
    numpy_ref = [r["ratio"]["pyonnx-numpy"] / r["ratio"]["reference"] for r in with_ref
                 if "pyonnx-numpy" in r["ratio"]]
    if numpy_ref:
        out["numpy_only_speedup_vs_reference_geomean"] = geomean(numpy_ref)
    mem = [r["memory_ratio"] for r in results if r.get("memory_ratio")]
    out["memory_ratio_max"] = max(mem) if mem else None
    out["memory_ratio_geomean"] = geomean(mem)
    numpy_mem = [r["engines"]["pyonnx-numpy"]["peak_rss_mb"]
                 / r["engines"]["onnxruntime"]["peak_rss_mb"] for r in results
                 if r["engines"].get("pyonnx-numpy", {}).get("peak_rss_mb")
                 and r["engines"].get("onnxruntime", {}).get("peak_rss_mb")]
    if numpy_mem:
        out["numpy_only_memory_ratio_max"] = max(numpy_mem)
        out["numpy_only_memory_ratio_geomean"] = geomean(numpy_mem)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--models", default="", help="only models whose file name contains one of "
                                                 "these comma-separated strings")
    ap.add_argument("--models-dir", metavar="DIR",
                    help="benchmark the .onnx files of DIR instead of the default suite")
    ap.add_argument("--batches", default="1,8",
                    help="batch sizes, comma-separated (batches above 1 only for models with a "
                         "dynamic batch dimension)")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--numpy-too", action="store_true",
                    help="also measure pyonnx without its compiled loops (engine pyonnx-numpy)")
    ap.add_argument("--reference-timeout", type=float, default=60.0)
    ap.add_argument("--in-process", action="store_true",
                    help="alternate the engines run by run in this process (they contend for "
                         "the cores) instead of one process per engine taking turns in blocks")
    ap.add_argument("--rounds", type=int, default=3,
                    help="blocks of runs per engine and model (default 3)")
    args = ap.parse_args(argv)
    wanted = [w for w in args.models.split(",") if w]
    results = []
    batches = [int(b) for b in args.batches.split(",") if b]
    for path, seq in suite(args.models_dir):
        if wanted and not any(w in os.path.basename(path) for w in wanted):
            continue
        for batch in batches:
            engines = ["pyonnx"] + (["pyonnx-numpy"] if args.numpy_too else []) \
                + ["onnxruntime"]
            if batch == 1 and not args.no_reference:
                engines.append("reference")
            res = bench_model(path, engines, runs=args.runs, threads=args.threads, batch=batch,
                              seq=seq, memory=not args.no_memory,
                              reference_timeout=args.reference_timeout, profile=True,
                              isolate=not args.in_process, rounds=max(1, args.rounds))
            results.append(res)
            print(format_result(res), flush=True)
            if not res.get("dynamic_batch"):
                break
    summary = summarize(results)
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "summary": summary}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
