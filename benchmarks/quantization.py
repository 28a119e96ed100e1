"""Quantized models in pyonnx: latency against the float model and against onnxruntime.

    PYTHONPATH=src python benchmarks/quantization.py [--runs N] [--models bert_small,...]
                                                     [--kinds dynamic,ort-dynamic,...]
                                                     [--profile]

For each shared model (../shared/models) the float model is quantized by pyonnx (dynamic int8;
weight-only int4 in both forms for gpt2_small; fp16) and by onnxruntime's quantize_dynamic,
into a temporary folder. Each quantized model then runs in pyonnx and in onnxruntime, with the
float model in pyonnx, alternating within one process (batch 1, sequence 128); the table gives
median latencies and the ratios the quantization issue states: pyonnx quantized / pyonnx float
and pyonnx / onnxruntime on the same quantized model, with their geometric means.
``--profile`` prints pyonnx's per-operator time for each quantized model.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))
sys.path.insert(0, os.path.join(HERE, ".."))

SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "models"))
MODELS = ("bert_small", "bert_small_legacy", "gpt2_small", "vit_tiny")
KINDS = ("dynamic", "ort-dynamic", "int4-qdq", "int4-nbits", "fp16")


def _feeds(name: str) -> dict:
    from tests.models.test_real_models import shared_feeds

    return shared_feeds(name)


def _make(kind: str, src: str, dst: str) -> bool:
    """Write the ``kind`` quantization of ``src`` to ``dst``; False when it does not apply."""
    import pyonnx.quantization as pq

    if kind == "dynamic":
        pq.quantize_dynamic(src, dst)
    elif kind == "ort-dynamic":
        import logging

        logging.getLogger().setLevel(logging.ERROR)
        from onnxruntime.quantization import quantize_dynamic

        quantize_dynamic(src, dst)
    elif kind in ("int4-qdq", "int4-nbits"):
        if "gpt2" not in src:
            return False
        pq.quantize_weight_only(src, dst, form="qdq" if kind == "int4-qdq" else "matmulnbits",
                                symmetric=False, block_size=32)
    elif kind == "fp16":
        import pyonnx

        pyonnx.save(pq.convert_float_to_float16(pyonnx.load(src), keep_io_types=True), dst)
    else:
        raise ValueError(kind)
    return True


def _time(fn, runs: int) -> float:
    fn()  # warm up
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    import onnxruntime as ort

    import pyonnx

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            src = os.path.join(SHARED, f"{name}.onnx")
            feeds = _feeds(name)
            f_sess = pyonnx.InferenceSession(src)
            for kind in args.kinds.split(","):
                dst = os.path.join(tmp, f"{name}.{kind}.onnx")
                if not _make(kind, src, dst):
                    continue
                p_sess = pyonnx.InferenceSession(dst)
                o_sess = ort.InferenceSession(dst, providers=["CPUExecutionProvider"])
                t_float = _time(lambda: f_sess.run(None, feeds), args.runs)
                t_q = _time(lambda: p_sess.run(None, feeds), args.runs)
                t_ort = _time(lambda: o_sess.run(None, feeds), args.runs)
                rows.append((name, kind, t_float, t_q, t_ort))
                print(f"{name:18s} {kind:12s} pyonnx float {t_float * 1e3:8.2f} ms  quantized "
                      f"{t_q * 1e3:8.2f} ms  onnxruntime {t_ort * 1e3:8.2f} ms  "
                      f"q/float {t_q / t_float:5.2f}  pyonnx/ort {t_q / t_ort:5.2f}", flush=True)
                if args.profile:
                    so = pyonnx.SessionOptions()
                    so.enable_profiling = True
                    s = pyonnx.InferenceSession(dst, so)
                    for _ in range(3):
                        s.run(None, feeds)
                    _print_profile(s.end_profiling())
    if rows:
        g1 = math.exp(np.mean([math.log(r[3] / r[2]) for r in rows]))
        g2 = math.exp(np.mean([math.log(r[3] / r[4]) for r in rows]))
        w1 = max(rows, key=lambda r: r[3] / r[2])
        w2 = max(rows, key=lambda r: r[3] / r[4])
        print(f"geomean quantized/float {g1:.2f} (worst {w1[3] / w1[2]:.2f} {w1[0]} {w1[1]}); "
              f"pyonnx/onnxruntime {g2:.2f} (worst {w2[3] / w2[4]:.2f} {w2[0]} {w2[1]})")
    return 0


def _print_profile(path: str) -> None:
    import json

    with open(path) as f:
        events = json.load(f)
    per_op: dict[str, float] = {}
    for e in events:
        args = e.get("args", {})
        op = args.get("op_type")
        if e.get("cat") == "Node" and op:
            per_op[op] = per_op.get(op, 0.0) + e.get("dur", 0) / 3e3
    os.remove(path)
    top = sorted(per_op.items(), key=lambda kv: -kv[1])[:8]
    print("    " + ", ".join(f"{k} {v:.2f} ms" for k, v in top))


if __name__ == "__main__":
    sys.exit(main())
