"""The prepared GPU check of issue 15 (run by check.sh on a machine lent with an NVIDIA GPU).

1. Conformance: the backend node cases the torch op table claims, through
   ``TorchExecutionProvider`` on the device (pass rate; the CPU figure is 99%).
2. DLPack: an OrtValue made from a device tensor shares its memory with torch (and CuPy when
   installed), and a session on the device runs from it.
3. Latency: each model built here with random weights (transformers' BERT-base and
   torchvision's ResNet-50 when those packages are installed, else a BERT-base-sized encoder
   and a ResNet-style CNN from torch.nn), exported to ONNX, run by pyonnx on the torch provider
   with ``compile=1`` against the same module run natively by torch on the device (eager and
   torch.compile), at batch 8 (text: sequence 128), batch 1 reported too.

Nothing is downloaded; the models are built from configurations. ``--device cpu --quick``
runs the same steps on small models on the CPU (how the script is tested without a GPU).
Results go to stdout and, as JSON, to ``$OUT/gpu_check.json`` when ``$OUT`` is set.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
import warnings
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, ROOT)


def log(*a: Any) -> None:
    print(*a, flush=True)


# ---------------------------------------------------------------- models

def text_model(quick: bool) -> tuple[str, Any]:
    import torch

    try:
        from transformers import BertConfig, BertModel

        cfg = BertConfig(num_hidden_layers=2 if quick else 12, hidden_size=128 if quick else 768,
                         num_attention_heads=2 if quick else 12,
                         intermediate_size=256 if quick else 3072)
        model = BertModel(cfg).eval()

        class Wrap(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.m = model

            def forward(self, ids: torch.Tensor) -> torch.Tensor:
                return self.m(input_ids=ids).last_hidden_state

        return "bert-base (transformers)", Wrap().eval()
    except ImportError:
        pass
    d, layers = (128, 2) if quick else (768, 12)

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(30522, d)
            self.pos = torch.nn.Parameter(torch.randn(512, d) * 0.02)
            layer = torch.nn.TransformerEncoderLayer(d, max(d // 64, 2), 4 * d, dropout=0.0,
                                                     activation="gelu", batch_first=True)
            self.enc = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            x = self.emb(ids) + self.pos[: ids.shape[1]]
            return self.enc(x)

    return f"bert-base-sized encoder (torch.nn, {layers} layers, hidden {d})", Encoder().eval()


def image_model(quick: bool) -> tuple[str, Any]:
    import torch

    try:
        import torchvision

        m = torchvision.models.resnet18(weights=None) if quick else \
            torchvision.models.resnet50(weights=None)
        return ("resnet18" if quick else "resnet50") + " (torchvision)", m.eval()
    except ImportError:
        pass
    nn = torch.nn

    def block(c_in: int, c_out: int, stride: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                             nn.BatchNorm2d(c_out), nn.ReLU(),
                             nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
                             nn.ReLU())

    widths = [16, 32] if quick else [64, 128, 256, 512]
    layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 7, 2, 3), nn.ReLU(),
                               nn.MaxPool2d(3, 2, 1)]
    c = widths[0]
    for w in widths:
        layers.append(block(c, w, 2 if w != widths[0] else 1))
        c = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1000)]
    return "ResNet-style CNN (torch.nn)", nn.Sequential(*layers).eval()


def export(module: Any, example: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), buf, dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch"}},
                          opset_version=17)
    return buf.getvalue()


# ---------------------------------------------------------------- steps

def conformance(device: str, limit: int | None) -> dict[str, Any]:
    from tests.backends.torch.cases import claimed_cases, pass_rate, run_with_provider

    cases = claimed_cases()
    if limit:
        cases = cases[:: max(len(cases) // limit, 1)]
    t0 = time.perf_counter()
    passed, failed = pass_rate(lambda c: run_with_provider(c, device), cases)
    out = {"claimed_cases": len(cases), "passed": passed, "rate": passed / len(cases),
           "seconds": time.perf_counter() - t0, "failed": sorted(failed)[:40]}
    log(f"conformance on {device}: {passed}/{len(cases)} ({out['rate']:.1%}) in "
        f"{out['seconds']:.0f} s")
    return out


def dlpack(device: str) -> dict[str, Any]:
    import numpy as np
    import torch

    import pyonnx

    out: dict[str, Any] = {}
    t = torch.arange(6, dtype=torch.float32, device=device).reshape(2, 3)
    ov = pyonnx.OrtValue.from_dlpack(t)
    back = torch.from_dlpack(ov)
    out["torch_zero_copy"] = back.data_ptr() == t.data_ptr()
    out["ortvalue_device"] = ov.device_name()
    np.testing.assert_array_equal(ov.numpy(), t.cpu().numpy())
    try:
        import cupy

        if device.startswith("cuda"):
            c = cupy.asarray(back)
            out["cupy_zero_copy"] = int(c.data.ptr) == t.data_ptr()
            ov2 = pyonnx.OrtValue.from_dlpack(c)
            out["cupy_to_ortvalue_zero_copy"] = ov2.data_ptr() == int(c.data.ptr)
    except ImportError:
        out["cupy"] = "not installed"
    log(f"dlpack: {out}")
    return out


def _median_ms(fn: Any, runs: int, sync: Any) -> float:
    for _ in range(3):
        fn()
    sync()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def latency(device: str, quick: bool, runs: int, on_row: Any = None) -> list[dict[str, Any]]:
    import numpy as np
    import torch

    import pyonnx

    sync = (lambda: torch.cuda.synchronize()) if device.startswith("cuda") else (lambda: None)
    rows = []
    for build, kind in ((text_model, "text"), (image_model, "image")):
        name, module = build(quick)
        torch.manual_seed(0)

        def example(batch: int) -> Any:
            if kind == "text":
                return torch.randint(0, 30000, (batch, 128 if not quick else 32))
            side = 224 if not quick else 64
            return torch.randn(batch, 3, side, side)

        model_bytes = export(module, example(2))  # on the CPU, with a dynamic batch axis
        dev_module = module.to(device)
        sessions = {}
        for flag in ("1", "0"):  # one session each, for both batches (shapes are dynamic)
            t0 = time.perf_counter()
            sessions[flag] = pyonnx.InferenceSession(model_bytes, providers=[
                ("TorchExecutionProvider", {"device": device, "compile": flag})])
            sessions[flag + "_created"] = time.perf_counter() - t0
        compiled = torch.compile(dev_module)
        for batch in (8, 1):
            x = example(batch)
            xd = x.to(device)
            row: dict[str, Any] = {"model": name, "batch": batch}
            with torch.no_grad():
                row["native_eager_ms"] = _median_ms(lambda: dev_module(xd), runs, sync)
                try:
                    row["native_compiled_ms"] = _median_ms(lambda: compiled(xd), runs, sync)
                except Exception as e:  # report, keep going
                    row["native_compiled_error"] = f"{type(e).__name__}: {e}"[:200]
                ref = dev_module(xd).float().cpu().numpy()
            feeds = {"x": x.numpy()}
            for flag in ("1", "0"):
                sess = sessions[flag]
                t0 = time.perf_counter()
                got = sess.run(None, feeds)[0]  # the first run compiles (compile=1)
                row[f"pyonnx_compile{flag}_first_run_s"] = time.perf_counter() - t0
                row[f"pyonnx_compile{flag}_ms"] = _median_ms(
                    lambda: sess.run(None, feeds), runs, sync)
                row[f"pyonnx_compile{flag}_max_abs_diff"] = float(
                    np.max(np.abs(got.astype(np.float32) - ref)))
            native = min(row["native_eager_ms"], row.get("native_compiled_ms", float("inf")))
            row["ratio_compile1_vs_best_native"] = row["pyonnx_compile1_ms"] / native
            row["ratio_compile0_vs_best_native"] = row["pyonnx_compile0_ms"] / native
            log(json.dumps(row))
            rows.append(row)
            if on_row is not None:
                on_row(rows)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default=os.environ.get("DEVICE", "cuda"))
    ap.add_argument("--quick", action="store_true", help="small models and a sample of cases")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--cases", type=int, default=0, help="at most this many node cases")
    args = ap.parse_args()
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        log("no CUDA device visible to torch: nothing to check (use --device cpu)")
        return 2
    result: dict[str, Any] = {"device": args.device, "torch": torch.__version__}
    if args.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
    out = os.environ.get("OUT")

    def save() -> None:  # after every step: a run cut short by the time limit keeps its figures
        if out:
            with open(os.path.join(out, "gpu_check.json"), "w") as f:
                json.dump(result, f, indent=1)

    t0 = time.perf_counter()
    result["conformance"] = conformance(args.device, args.cases or (60 if args.quick else None))
    save()
    result["dlpack"] = dlpack(args.device)
    save()
    result["latency"] = []

    def on_row(rows: list[dict[str, Any]]) -> None:
        result["latency"] = list(rows)
        save()

    latency(args.device, args.quick, 5 if args.quick else args.runs, on_row)
    result["seconds"] = time.perf_counter() - t0
    b8 = [r["ratio_compile1_vs_best_native"] for r in result["latency"] if r["batch"] == 8]
    result["batch8_worst_ratio_vs_native"] = max(b8) if b8 else None
    log(f"batch 8, pyonnx (compile=1) / best native torch: {b8} (target <= 1.5)")
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
