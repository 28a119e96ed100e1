"""The acceptance sweep of ``pyonnx optimize`` (issue 13): for every shared model and every light
model (weights randomized by ``tools/randomize_light_models.py``), at both levels, optimize with
verification, write the file, check it with ``onnx.checker`` (full_check) and run it with
onnxruntime (all its optimizations off, so the file itself is what runs) against the original,
``rtol=1e-4``, ``atol=1e-5*max|ref|``; print node counts (subgraphs and functions included).

    python tools/optimize_acceptance.py [--light-dir DIR] [--out-dir DIR] [MODEL ...]
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

import pyonnx
from pyonnx.optimizer.api import op_counts
from pyonnx.optimizer.verify import random_feeds

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "models")


def _ort_run(path: str, feeds: dict) -> list:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = {i.name for i in s.get_inputs()}
    return s.run(None, {k: v for k, v in feeds.items() if k in names})


def _close(ref: np.ndarray, got: np.ndarray) -> bool:
    ref, got = np.asarray(ref), np.asarray(got)
    if ref.shape != got.shape:
        return False
    if ref.dtype.kind != "f":
        return bool(np.array_equal(ref, got))
    atol = 1e-5 * float(np.max(np.abs(ref))) if ref.size else 0.0
    return bool(np.allclose(got, ref, rtol=1e-4, atol=atol, equal_nan=True))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*")
    p.add_argument("--light-dir", default=None, help="randomized light models (default: made)")
    p.add_argument("--out-dir", default=None)
    args = p.parse_args()
    out_dir = args.out_dir or tempfile.mkdtemp(prefix="pyonnx_opt_")
    os.makedirs(out_dir, exist_ok=True)
    light_dir = args.light_dir
    if light_dir is None:
        light_dir = os.path.join(out_dir, "light_random")
        sys.path.insert(0, os.path.dirname(__file__))
        from randomize_light_models import light_dir as src_dir, randomize
        os.makedirs(light_dir, exist_ok=True)
        for path in glob.glob(os.path.join(src_dir(), "light_*.onnx")):
            pyonnx.save(randomize(pyonnx.load(path), 0, expose_logits=False),
                        os.path.join(light_dir, os.path.basename(path)))
    paths = sorted(glob.glob(os.path.join(SHARED, "*.onnx"))) + \
        sorted(glob.glob(os.path.join(light_dir, "light_*.onnx")))
    failures = 0
    for path in paths:
        name = os.path.basename(path)[:-5]
        if args.models and name not in args.models:
            continue
        model = pyonnx.load(path)
        feeds = random_feeds(model, 1, seed=1)[0]
        ref = _ort_run(path, feeds)
        row = [name, str(sum(op_counts(model).values()))]
        for level in ("basic", "extended"):
            t = time.perf_counter()
            try:
                opt = pyonnx.optimize(model, level=level, verify_inputs=[feeds])
                out = os.path.join(out_dir, f"{name}.{level}.onnx")
                pyonnx.save(opt, out)
                onnx.checker.check_model(out, full_check=True)
                got = _ort_run(out, feeds)
                ok = len(got) == len(ref) and all(_close(r, g) for r, g in zip(ref, got))
                status = "ok" if ok else "ORT-MISMATCH"
            except Exception as e:  # noqa: BLE001 - report and go on
                status = f"FAIL {type(e).__name__}: {str(e)[:200]}"
                opt = None
            failures += status != "ok"
            n = sum(op_counts(opt).values()) if opt is not None else -1
            main_n = len(opt.graph.nodes) if opt is not None else -1
            row.append(f"{level}={n} (main {main_n}) {status} {time.perf_counter() - t:.1f}s")
        print(" | ".join(row), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
