"""Convert the shared and light models to opsets 11, 13, 17 and 21 and check what they compute.

For every model of ../shared/models and the nine light_* CNNs of the onnx wheel, each target
opset is tried with ``pyonnx.convert.convert_version`` and with ``onnx.version_converter``. A
converted model is run by onnxruntime on the same random inputs as the original and compared with
the original's outputs (rtol 1e-4, atol 1e-5 * max|reference|, the issue's acceptance bound);
pyonnx's output must also pass onnx.checker full_check. The light models hold their weights as
ConstantOfShape nodes, which makes every output a constant: they are first given random weights
(seeded, the same for both converters), so that a wrong conversion shows.

    PYTHONPATH=src python tools/convert_opset_models.py [-o tools/convert_opset_models.md]
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
import warnings
from typing import Any

import numpy as np

ROOT = os.path.join(os.path.dirname(__file__), "..")
SHARED = os.path.join(ROOT, "..", "..", "shared", "models")
TARGETS = (11, 13, 17, 21)


def _models() -> list[tuple[str, bytes]]:
    import onnx.backend.test

    out = []
    shared = SHARED if os.path.isdir(SHARED) else "/work/shared/models"
    for p in sorted(glob.glob(os.path.join(shared, "*.onnx"))):
        with open(p, "rb") as f:
            out.append((os.path.basename(p)[:-5], f.read()))
    light = os.path.join(os.path.dirname(onnx.backend.test.__file__), "data", "light")
    for p in sorted(glob.glob(os.path.join(light, "light_*.onnx"))):
        out.append((os.path.basename(p)[:-5], _randomize(p)))
    return out


def _randomize(path: str) -> bytes:
    """The model with every ConstantOfShape of a constant shape replaced by a random initializer
    (scaled by 1/sqrt(fan-in) so activations stay finite)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    rng = np.random.default_rng(0)
    consts = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
    keep = []
    for n in m.graph.node:
        if n.op_type == "ConstantOfShape" and n.input[0] in consts:
            shape = tuple(int(d) for d in consts[n.input[0]])
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else max(1, shape[0] if shape else 1)
            value = [a.t for a in n.attribute if a.name == "value"]
            dtype = numpy_helper.to_array(value[0]).dtype if value else np.dtype(np.float32)
            w = rng.standard_normal(shape) / np.sqrt(max(1, fan_in))
            if len(shape) == 1:  # biases, BN statistics: positive, near 1 (variances must be)
                w = 1.0 + 0.1 * np.abs(w)
            w = w.astype(dtype)
            m.graph.initializer.append(numpy_helper.from_array(w, n.output[0]))
            if m.ir_version < 4:
                m.graph.input.append(onnx.helper.make_tensor_value_info(
                    n.output[0], onnx.helper.np_dtype_to_tensor_dtype(dtype), shape))
        else:
            keep.append(n)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    return m.SerializeToString()


def _feeds(model: bytes) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else (16 if "seq" in str(d).lower() or "sequence" in
                                               str(d).lower() else 1) for d in i.shape]
        if i.name == "sr":
            feeds[i.name] = np.array(16000, np.int64)
        elif i.type == "tensor(int64)":
            feeds[i.name] = (np.ones(shape, np.int64) if "mask" in i.name
                             else rng.integers(0, 100, shape).astype(np.int64))
        elif i.type == "tensor(int32)":
            feeds[i.name] = rng.integers(0, 257, shape).astype(np.int32)
        else:
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    # silero's audio chunk must be 512 samples at 16 kHz
    for k, v in feeds.items():
        if k == "input" and v.ndim == 2 and "sr" in feeds:
            feeds[k] = rng.standard_normal((1, 512)).astype(np.float32)
    return feeds


def _ort_run(model: bytes, feeds: dict[str, np.ndarray]) -> list[Any]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 4
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _close(ref: list[Any], got: list[Any]) -> str:
    if len(ref) != len(got):
        return f"{len(got)} outputs, expected {len(ref)}"
    for k, (r, g) in enumerate(zip(ref, got)):
        r, g = np.asarray(r), np.asarray(g)
        if r.shape != g.shape or r.dtype != g.dtype:
            return f"output {k}: {g.dtype}{list(g.shape)} != {r.dtype}{list(r.shape)}"
        if r.dtype.kind == "f":
            atol = 1e-5 * float(np.max(np.abs(r))) if r.size else 0.0
            if not np.allclose(g, r, rtol=1e-4, atol=atol, equal_nan=True):
                return f"output {k}: max |diff| {float(np.max(np.abs(g - r))):.3g}"
        elif not np.array_equal(g, r):
            return f"output {k}: values differ"
    return ""


def _pyonnx(model: bytes, target: int, feeds: dict, ref: list) -> tuple[str, str]:
    import onnx

    from pyonnx.convert import OpsetConversionError, convert_version
    from pyonnx.io import serialize

    try:
        out = serialize(convert_version(model, target))
    except OpsetConversionError as e:
        return "refused", "; ".join(e.problems)[:400]
    except Exception as e:  # noqa: BLE001
        return "wrong", f"crash: {type(e).__name__}: {e}"[:300]
    try:
        onnx.checker.check_model(onnx.load_from_string(out), full_check=True)
    except Exception as e:  # noqa: BLE001
        return "wrong", f"checker: {str(e).splitlines()[0]}"[:300]
    try:
        why = _close(ref, _ort_run(out, feeds))
    except Exception as e:  # noqa: BLE001
        why = f"onnxruntime: {type(e).__name__}: {str(e).splitlines()[0]}"[:300]
    return ("ok", "") if not why else ("wrong", why)


def _onnx(model: bytes, target: int, feeds: dict, ref: list) -> tuple[str, str]:
    import onnx
    from onnx import version_converter

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = version_converter.convert_version(onnx.load_from_string(model), target)
        data = out.SerializeToString()
    except Exception as e:  # noqa: BLE001
        return "refused", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
    try:
        why = _close(ref, _ort_run(data, feeds))
    except Exception as e:  # noqa: BLE001
        why = f"onnxruntime: {type(e).__name__}: {str(e).splitlines()[0]}"[:200]
    return ("ok", "") if not why else ("wrong", why)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=os.path.join(os.path.dirname(__file__),
                                                           "convert_opset_models.md"))
    ap.add_argument("--only", action="append", default=[])
    args = ap.parse_args(argv)
    t0 = time.time()
    rows = []
    for name, model in _models():
        if args.only and not any(o in name for o in args.only):
            continue
        feeds = _feeds(model)
        ref = _ort_run(model, feeds)
        for t in TARGETS:
            p, pm = _pyonnx(model, t, feeds, ref)
            o, om = _onnx(model, t, feeds, ref)
            rows.append((name, t, p, pm, o, om))
            print(f"{name} -> {t}: pyonnx {p} {pm[:150]} | onnx {o} {om[:100]}", file=sys.stderr)
    count = {k: {s: sum(1 for r in rows if r[2 if k == 'p' else 4] == s)
                 for s in ("ok", "wrong", "refused")} for k in ("p", "o")}
    lines = [
        "# Opset conversion of the shared and light models",
        "",
        "Generated by `tools/convert_opset_models.py`: each model converted to opsets "
        "11/13/17/21 and run by onnxruntime against the original's outputs (rtol 1e-4, atol "
        "1e-5*max|ref|); light models with random weights. "
        f"{len(rows)} conversions per converter, {time.time() - t0:.0f} s.",
        "",
        f"**pyonnx: {count['p']['ok']} ok, {count['p']['wrong']} wrong, "
        f"{count['p']['refused']} refused; onnx.version_converter: {count['o']['ok']} ok, "
        f"{count['o']['wrong']} wrong, {count['o']['refused']} refused.**",
        "",
        "| model | opset | pyonnx | onnx | pyonnx detail | onnx detail |",
        "|---|---:|---|---|---|---|",
    ]
    for name, t, p, pm, o, om in rows:
        clean = (lambda s: s.replace("|", "/").replace("\n", " ")[:160])
        lines.append(f"| {name} | {t} | {p} | {o} | {clean(pm)} | {clean(om)} |")
    text = "\n".join(lines) + "\n"
    with open(args.output, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
