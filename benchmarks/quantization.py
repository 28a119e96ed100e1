"""Quantized models in pyonnx: latency against the float model and against onnxruntime.

    PYTHONPATH=src python benchmarks/quantization.py [--runs N] [--models bert_small,...]
                                                     [--kinds dynamic,ort-dynamic,...]
                                                     [--profile] [--memory] [--cpu-time]
                                                     [--threads N]

For each shared model (../shared/models) the float model is quantized by pyonnx (dynamic int8;
weight-only int4 in both forms for gpt2_small; fp16) and by onnxruntime's quantize_dynamic,
into a temporary folder. The light CNNs (``--models light_resnet50,light_squeezenet,
light_shufflenet,light_inception_v2``, given seeded random weights by
tools/randomize_light_models.py) take the static QDQ kinds: ``static-qdq`` (pyonnx's
quantize_static) and ``ort-static-qdq`` (onnxruntime's), 32 random calibration samples as in
benchmarks/quantization_accuracy.py; ``static-qdq-pre`` and ``ort-static-qdq-pre`` first run
the same quantizer's ``quant_pre_process`` (the flow onnxruntime recommends: BatchNormalization
folded into Conv before quantizing, so no Q/DQ pair separates them). Each quantized model then runs in pyonnx and in onnxruntime, with the
float model in pyonnx, alternating run by run within one process (batch 1, sequence 128); the
table gives median latencies and the ratios the quantization issue states: pyonnx quantized / pyonnx float
and pyonnx / onnxruntime on the same quantized model, with their geometric means.
``--profile`` prints pyonnx's per-operator time for each quantized model. ``--cpu-time``
times each run by the process's CPU time instead of the wall clock (steadier on a loaded
machine; with one thread, ``--threads 1`` and OMP_NUM_THREADS=1, the two agree on an idle one:
with more, CPU time also counts the pools' threads).

``--memory`` adds each model's *session peak RSS*: in a fresh process per configuration (the
float model, then each quantized one), the peak resident memory (VmHWM) while creating the
session and running it ``--memory-runs`` times, less the resident memory just before creating
it; the table gives it with the ratio quantized / float (the issue's target for int4
weight-only: at most 0.6). Before that baseline the process runs a small warm-up session (a
LayerNormalization and a Softmax, QuantizeLinear -> DequantizeLinear pairs and a float16
MatMul, large enough to take the compiled loops that the models here use): the modules a
session imports lazily and, with the compiled loops on, numba, its compiler and each loop's
machine code are process-wide one-off costs (numba's alone is ~120 MB, several times
gpt2_small's weights; loading the QDQ pairs' loops ~2.6 MB, a fifth of light_squeezenet's
float session) that every session shares and that would otherwise hide the session's own
memory. ``PYONNX_JIT=0``
measures the NumPy path.
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
STATIC = ("static-qdq", "ort-static-qdq", "static-qdq-pre", "ort-static-qdq-pre")
KINDS = ("dynamic", "ort-dynamic", "int4-qdq", "int4-nbits", "fp16") + STATIC
LIGHT = ("light_resnet50", "light_squeezenet", "light_shufflenet", "light_inception_v2")


def _light_input(src: str, seed: int) -> dict:
    import onnx

    name = onnx.load(src, load_external_data=False).graph.input[0].name
    return {name: np.random.default_rng(seed).standard_normal((1, 3, 224, 224))
            .astype(np.float32)}


def _source(name: str, tmp: str, shared: str = SHARED) -> str:
    """The float model: a shared one (in ``shared``), or a light CNN given seeded random
    weights in ``tmp``."""
    if not name.startswith("light_"):
        return os.path.join(shared, f"{name}.onnx")
    import pyonnx
    from tools.randomize_light_models import light_dir, randomize

    src = os.path.join(tmp, f"{name}.onnx")
    pyonnx.save(randomize(pyonnx.load(os.path.join(light_dir(), f"{name}.onnx"))), src)
    return src


def _feeds(name: str, src: str) -> dict:
    if name.startswith("light_"):
        return _light_input(src, 1000)
    from tests.models.test_real_models import shared_feeds

    return shared_feeds(name)


def _calibration(src: str, base: type):
    """A ``base`` (pyonnx's or onnxruntime's CalibrationDataReader) of 32 random images."""
    class Reader(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.it = (_light_input(src, i) for i in range(32))

        def get_next(self):
            return next(self.it, None)

    return Reader()


def _make(kind: str, src: str, dst: str) -> bool:
    """Write the ``kind`` quantization of ``src`` to ``dst``; False when it does not apply."""
    import pyonnx.quantization as pq

    light = os.path.basename(src).startswith("light_")
    if light != (kind in STATIC):
        return False
    if kind in ("static-qdq", "static-qdq-pre"):
        if kind.endswith("-pre"):
            pq.quant_pre_process(src, dst + ".pre.onnx")
            src = dst + ".pre.onnx"
        pq.quantize_static(src, dst, _calibration(src, pq.CalibrationDataReader))
    elif kind in ("ort-static-qdq", "ort-static-qdq-pre"):
        import logging

        import onnxruntime.quantization as oq

        logging.getLogger().setLevel(logging.ERROR)
        if kind.endswith("-pre"):
            oq.quant_pre_process(src, dst + ".pre.onnx")
            src = dst + ".pre.onnx"
        oq.quantize_static(src, dst, _calibration(src, oq.CalibrationDataReader),
                           quant_format=oq.QuantFormat.QDQ)
    elif kind == "dynamic":
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


def _time(fns, runs: int, clock=time.perf_counter) -> list[float]:
    """Median seconds of each of ``fns``, run in turn within each of ``runs`` rounds (after
    one warm-up round): a load change on a shared machine then hits every engine alike."""
    for fn in fns:
        fn()  # warm up
    ts: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, t_list in zip(fns, ts):
            t = clock()
            fn()
            t_list.append(clock() - t)
    return [float(np.median(t_list)) for t_list in ts]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--models-dir", default=SHARED,
                    help="the folder of the shared models (default: %(default)s)")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--memory", action="store_true",
                    help="also measure each configuration's session peak RSS (own process)")
    ap.add_argument("--memory-runs", type=int, default=3)
    ap.add_argument("--cpu-time", action="store_true",
                    help="time runs by process CPU time instead of the wall clock")
    ap.add_argument("--threads", type=int, default=0,
                    help="intra-op threads of the timed sessions (both engines; 0: default)")
    args = ap.parse_args(argv)
    import onnxruntime as ort

    import pyonnx

    rows = []
    mem: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            src = _source(name, tmp, args.models_dir)
            feeds = _feeds(name, src)
            feeds_path = os.path.join(tmp, f"{name}.feeds.npz")
            np.savez(feeds_path, **feeds)
            p_opts, o_opts = pyonnx.SessionOptions(), ort.SessionOptions()
            p_opts.intra_op_num_threads = o_opts.intra_op_num_threads = args.threads
            f_sess = pyonnx.InferenceSession(src, p_opts)
            for kind in args.kinds.split(","):
                dst = os.path.join(tmp, f"{name}.{kind}.onnx")
                if not _make(kind, src, dst):
                    continue
                p_sess = pyonnx.InferenceSession(dst, p_opts)
                o_sess = ort.InferenceSession(dst, o_opts, providers=["CPUExecutionProvider"])
                t_float, t_q, t_ort = _time([lambda: f_sess.run(None, feeds),
                                             lambda: p_sess.run(None, feeds),
                                             lambda: o_sess.run(None, feeds)], args.runs,
                                            time.process_time if args.cpu_time
                                            else time.perf_counter)
                rows.append((name, kind, t_float, t_q, t_ort))
                print(f"{name:18s} {kind:12s} pyonnx float {t_float * 1e3:8.2f} ms  quantized "
                      f"{t_q * 1e3:8.2f} ms  onnxruntime {t_ort * 1e3:8.2f} ms  "
                      f"q/float {t_q / t_float:5.2f}  pyonnx/ort {t_q / t_ort:5.2f}", flush=True)
                if args.memory:
                    m_float = mem.get(name)
                    if m_float is None:
                        m_float = mem[name] = session_peak_rss(src, feeds_path,
                                                               args.memory_runs)
                    m_q = session_peak_rss(dst, feeds_path, args.memory_runs)
                    print(f"{'':18s} {'':12s} session peak RSS float {m_float['session_mb']:7.1f} "
                          f"MB  quantized {m_q['session_mb']:7.1f} MB  q/float "
                          f"{m_q['session_mb'] / m_float['session_mb']:5.2f}  (process peak "
                          f"{m_float['peak_mb']:.0f} / {m_q['peak_mb']:.0f} MB)", flush=True)
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


_MEMORY_WORKER = r"""
import json, sys
model, feeds_path, runs, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, root)
def rss_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
import numpy as np
import pyonnx
from onnx import TensorProto, helper, numpy_helper
feeds = dict(np.load(feeds_path))
# the warm-up session (see the module docstring): on 32,768 values LayerNormalization and
# Softmax take their compiled loops (those of the transformer models here), a QuantizeLinear ->
# DequantizeLinear pair (alone, and with a BatchNormalization and a Relu) those of the static
# QDQ models, a float16 MatMul weight the float16 models' widening loop
T = TensorProto
c = lambda name, arr: numpy_helper.from_array(arr, name)
g = helper.make_graph(
    [helper.make_node("LayerNormalization", ["x", "s", "b"], ["n"], axis=-1),
     helper.make_node("Softmax", ["n"], ["y"], axis=-1),
     helper.make_node("QuantizeLinear", ["v", "qs", "qz"], ["q1"]),
     helper.make_node("DequantizeLinear", ["q1", "qs", "qz"], ["d1"]),
     helper.make_node("QuantizeLinear", ["v", "qs", "qz"], ["q2"]),
     helper.make_node("DequantizeLinear", ["q2", "qs", "qz"], ["d2"]),
     helper.make_node("BatchNormalization", ["d2", "one", "zero", "zero", "one"], ["bn"]),
     helper.make_node("Relu", ["bn"], ["r"]),
     helper.make_node("Cast", ["x"], ["xh"], to=T.FLOAT16),
     helper.make_node("MatMul", ["xh", "w16"], ["mh"]),
     helper.make_node("Cast", ["mh"], ["m"], to=T.FLOAT)], "warm_up",
    [helper.make_tensor_value_info("x", T.FLOAT, [1, 128, 256]),
     helper.make_tensor_value_info("v", T.FLOAT, [1, 64, 16, 16])],
    [helper.make_tensor_value_info(n, T.FLOAT, None) for n in ("y", "d1", "r", "m")],
    [c("s", np.ones(256, np.float32)), c("b", np.zeros(256, np.float32)),
     c("qs", np.array(0.05, np.float32)), c("qz", np.array(0, np.int8)),
     c("one", np.ones(64, np.float32)), c("zero", np.zeros(64, np.float32)),
     c("w16", np.full((256, 128), 0.01, np.float16))])
warm = pyonnx.InferenceSession(helper.make_model(
    g, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString())
warm.run(None, {"x": np.ones((1, 128, 256), np.float32),
                "v": np.linspace(-3, 3, 64 * 256, dtype=np.float32).reshape(1, 64, 16, 16)})
del warm
base = rss_mb("VmRSS:")
sess = pyonnx.InferenceSession(model)
for _ in range(runs):
    sess.run(None, feeds)
peak = rss_mb("VmHWM:")
print(json.dumps({"session_mb": peak - base, "peak_mb": peak, "base_mb": base}))
"""


def session_peak_rss(model: str, feeds_path: str, runs: int) -> dict:
    """The session peak RSS of ``model`` (see the module docstring) run on the feeds saved in
    ``feeds_path`` (an .npz), measured in a fresh Python process: ``{"session_mb", "peak_mb",
    "base_mb"}``."""
    import json
    import subprocess

    root = os.path.normpath(os.path.join(HERE, ".."))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(root, "src") + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    out = subprocess.run([sys.executable, "-c", _MEMORY_WORKER, model, feeds_path, str(runs), root],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


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
