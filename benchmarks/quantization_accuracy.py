"""The accuracy and size figures of the quantization issue, against onnxruntime's quantizer.

    PYTHONPATH=src python benchmarks/quantization_accuracy.py [--parts dynamic,static,int4,fp16]
                                                              [--light-dir DIR]

- dynamic: quantize_dynamic (pyonnx and onnxruntime) on bert_small, bert_small_legacy,
  gpt2_small, vit_tiny: size ratios, output cosine of each quantized model (onnxruntime and
  pyonnx running pyonnx's), onnx.checker full_check;
- static: quantize_static QDQ with 32 random calibration samples on the light_* CNNs given
  seeded random weights (tools/randomize_light_models.py; their logits are compared, the
  Softmax of random weights being one-hot);
- int4: weight-only int4 of gpt2_small (GPTQ, asymmetric, block 32) in both forms;
- fp16: convert_float_to_float16 (keep_io_types) on every shared model, max|y16 - y32| /
  max|y32| in onnxruntime and pyonnx.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))
sys.path.insert(0, os.path.join(HERE, ".."))

SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "models"))


def cosine(a, b) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _ort(path, feed, idx=0):
    import onnxruntime as ort

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feed)[idx]


def _py(path, feed, idx=0):
    import pyonnx

    return pyonnx.InferenceSession(path).run(None, feed)[idx]


def _check(path) -> str:
    import onnx

    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
        return "ok"
    except Exception as e:  # noqa: BLE001 - reported, not raised
        return f"FAILED {str(e)[:80]}"


def dynamic(tmp: str) -> None:
    import onnxruntime.quantization as oq

    import pyonnx.quantization as pq
    from tests.models.test_real_models import shared_feeds

    for name in ("bert_small", "bert_small_legacy", "gpt2_small", "vit_tiny"):
        src = os.path.join(SHARED, f"{name}.onnx")
        ours, theirs = os.path.join(tmp, f"{name}.py.onnx"), os.path.join(tmp, f"{name}.ort.onnx")
        pq.quantize_dynamic(src, ours)
        oq.quantize_dynamic(src, theirs)
        feed = shared_feeds(name)
        y = _ort(src, feed)
        size = os.path.getsize(src)
        c_t = cosine(y, _ort(theirs, feed))
        c_o, c_p = cosine(y, _ort(ours, feed)), cosine(y, _py(ours, feed))
        need = max(c_t - 0.001, 0.999)
        print(f"dynamic {name:18s} ratio pyonnx {size / os.path.getsize(ours):.3f} onnxruntime "
              f"{size / os.path.getsize(theirs):.3f}; cosine ours(ort) {c_o:.6f} ours(pyonnx) "
              f"{c_p:.6f} onnxruntime's {c_t:.6f} (need {need:.6f}); check {_check(ours)}",
              flush=True)


def static(tmp: str, light_dir: str) -> None:
    import onnx
    import onnxruntime.quantization as oq

    import pyonnx
    import pyonnx.quantization as pq
    from tools.randomize_light_models import DEFAULT_MODELS, light_dir as onnx_light, randomize

    for name in DEFAULT_MODELS:
        src = os.path.join(light_dir, f"{name}.onnx")
        if not os.path.exists(src):
            pyonnx.save(randomize(pyonnx.load(os.path.join(onnx_light(), f"{name}.onnx"))), src)
        inp = onnx.load(src).graph.input[0].name

        def samples():
            for i in range(32):
                yield {inp: np.random.default_rng(i).standard_normal((1, 3, 224, 224))
                       .astype(np.float32)}

        class PR(pq.CalibrationDataReader):
            def __init__(self):
                self.it = samples()

            def get_next(self):
                return next(self.it, None)

        class OR(oq.CalibrationDataReader):
            def __init__(self):
                self.it = samples()

            def get_next(self):
                return next(self.it, None)

        ours, theirs = os.path.join(tmp, f"{name}.py.onnx"), os.path.join(tmp, f"{name}.ort.onnx")
        pq.quantize_static(src, ours, PR())
        oq.quantize_static(src, theirs, OR())
        feed = {inp: np.random.default_rng(1000).standard_normal((1, 3, 224, 224))
                .astype(np.float32)}
        y = _ort(src, feed, -1)
        size = os.path.getsize(src)
        c_t = cosine(y, _ort(theirs, feed, -1))
        print(f"static QDQ {name:18s} ratio pyonnx {size / os.path.getsize(ours):.4f} "
              f"onnxruntime {size / os.path.getsize(theirs):.4f}; logits cosine ours(ort) "
              f"{cosine(y, _ort(ours, feed, -1)):.5f} ours(pyonnx) "
              f"{cosine(y, _py(ours, feed, -1)):.5f} onnxruntime's {c_t:.5f} (need "
              f"{c_t - 0.001:.5f}); check {_check(ours)}", flush=True)


def int4(tmp: str) -> None:
    import onnxruntime as ort

    import pyonnx
    from pyonnx.quantization.weight_only import quantize_weight_only_model
    from tests.models.test_real_models import shared_feeds

    src = os.path.join(SHARED, "gpt2_small.onnx")
    feed = shared_feeds("gpt2_small")
    y = _ort(src, feed)
    calib = [shared_feeds("gpt2_small", seed=100 + i) for i in range(8)]
    for form in ("qdq", "matmulnbits"):
        m = quantize_weight_only_model(src, form=form, symmetric=False, block_size=32,
                                       algorithm="gptq", calibration_feeds=calib)
        path = os.path.join(tmp, f"gpt2.int4.{form}.onnx")
        pyonnx.save(m, path)
        so = ort.SessionOptions()
        c_o = cosine(y, ort.InferenceSession(path, so).run(None, feed)[0])
        print(f"int4 gpt2_small {form:12s} ratio {os.path.getsize(src) / os.path.getsize(path):.2f}"
              f"; logits cosine pyonnx {cosine(y, _py(path, feed)):.5f} onnxruntime {c_o:.5f}; "
              f"check {_check(path)}", flush=True)


def fp16(tmp: str) -> None:
    import pyonnx
    from pyonnx.quantization import convert_float_to_float16
    from tests.models.test_real_models import shared_feeds

    for f in sorted(os.listdir(SHARED)):
        if not f.endswith(".onnx"):
            continue
        name = f[:-5]
        src = os.path.join(SHARED, f)
        m = convert_float_to_float16(pyonnx.load(src), keep_io_types=True,
                                     sample_feeds=[shared_feeds(name, seed=7)])
        path = os.path.join(tmp, f"{name}.fp16.onnx")
        pyonnx.save(m, path)
        feed = shared_feeds(name)
        import onnxruntime as ort

        ys = ort.InferenceSession(src).run(None, feed)
        errs = {}
        for engine, run in (("onnxruntime", lambda: ort.InferenceSession(path).run(None, feed)),
                            ("pyonnx", lambda: pyonnx.InferenceSession(path).run(None, feed))):
            got = run()
            errs[engine] = max(float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
                                     .max() / max(np.abs(np.asarray(a, np.float64)).max(), 1e-12))
                               for a, b in zip(ys, got) if np.asarray(a).dtype.kind == "f")
        print(f"fp16 {name:24s} max|y16-y32|/max|y32| onnxruntime {errs['onnxruntime']:.2e} "
              f"pyonnx {errs['pyonnx']:.2e} (need <= 1e-2); check {_check(path)}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="dynamic,static,int4,fp16")
    ap.add_argument("--light-dir", default=os.path.join(HERE, "models", "light_random"))
    args = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)
    os.makedirs(args.light_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts.split(","):
            if part == "static":
                static(tmp, args.light_dir)
            else:
                globals()[part](tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
