"""What the plain install (NumPy, no compiled loops) can reach on the deployed models' hot
nodes, against onnxruntime at its default options (issue 12's plain-install lines).

    PYTHONPATH=src python benchmarks/plain_floor.py [--runs 200]

Three measurements, each engine in this one process (the plain install's pool is idle between
them; onnxruntime's sessions are created after pyonnx's figures, so its spinning threads do
not sit on the cores while pyonnx is timed):

1. **Hand-off**: what giving half of a tiny NumPy job to the intra-op pool's other thread costs
   in the plain install (``threads.parallel_for`` of two parts, after the caller has itself
   computed for a while, as between a model's nodes), against doing both halves inline. Without
   compiled loops the pool's threads sleep on a condition variable and take the GIL for each
   part, so this is the least a node must save by splitting.
2. **Recurrent product**: one LSTM step's ``h @ R^T`` (hidden 256: 1 MB of float32 weights) and
   one GRU step's (768 KB) by ``np.dot`` on one thread, times the 256 steps of the 2-layer
   taggers, against onnxruntime's whole LSTM layer pair (two one-node models, sequence 128).
3. **Depthwise convolutions** of mobilenet_v2 (3x3, with bias and Relu6 as the model's fused
   nodes): pyonnx-numpy's one-node session against onnxruntime's, medians per node.

Prints one table per measurement; every figure is a median of ``--runs`` timed calls.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ["PYONNX_JIT"] = "0"  # the plain install: numba never imported here

import numpy as np  # noqa: E402

#: mobilenet_v2's depthwise convolutions (channels, input size, stride), each shape once (the
#: model has 17 such layers)
DEPTHWISE = ((32, 112, 1), (96, 112, 2), (144, 56, 1), (144, 56, 2), (192, 28, 1),
             (192, 28, 2), (384, 14, 1), (576, 14, 1), (576, 14, 2), (960, 7, 1))


def median_us(fn: Callable[[], object], runs: int) -> float:
    """Median µs per call of ``fn`` over ``runs`` calls after five warm-up calls."""
    for _ in range(5):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        ts.append(time.perf_counter_ns() - t0)
    return statistics.median(ts) / 1e3


def hand_off(runs: int) -> None:
    from pyonnx.backends.cpu import threads

    threads.request(0)
    a = np.ones((2, 1024), np.float32)
    out = np.empty_like(a)
    busy = np.ones(1 << 16, np.float32)

    def part(s: int, e: int) -> None:
        np.multiply(a[s:e], 2.0, out=out[s:e])

    def after(work_us: float, fn: Callable[[], None]) -> float:
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            while time.perf_counter_ns() - t0 < work_us * 1e3:
                np.multiply(busy, 1.0, out=busy)
            t1 = time.perf_counter_ns()
            fn()
            ts.append(time.perf_counter_ns() - t1)
        return statistics.median(ts) / 1e3

    print(f"1. hand-off (plain install, {threads.budget()} intra-op threads), µs")
    print("| caller computed before (µs) | two parts on the pool | both inline |")
    print("|---|---|---|")
    for work in (50, 200, 1000):
        split = after(work, lambda: threads.parallel_for(2, part, min_per_part=1))
        inline = after(work, lambda: (part(0, 1), part(1, 2)))
        print(f"| {work} | {split:.1f} | {inline:.1f} |")


def _lstm_model(op: str, hidden: int, inputs: int, steps: int) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    g = 4 if op == "LSTM" else 3
    w = numpy_helper.from_array((rng.standard_normal((1, g * hidden, inputs)) * 0.1)
                                .astype(np.float32), "W")
    r = numpy_helper.from_array((rng.standard_normal((1, g * hidden, hidden)) * 0.1)
                                .astype(np.float32), "R")
    b = numpy_helper.from_array((rng.standard_normal((1, 2 * g * hidden)) * 0.1)
                                .astype(np.float32), "B")
    extra = {"linear_before_reset": 1} if op == "GRU" else {}
    node = helper.make_node(op, ["X", "W", "R", "B"], ["Y"], hidden_size=hidden, **extra)
    graph = helper.make_graph(
        [node], op.lower(), [helper.make_tensor_value_info("X", TensorProto.FLOAT,
                                                           [steps, 1, inputs])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], [w, r, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]
                             ).SerializeToString()


def recurrent(runs: int) -> None:
    import onnxruntime as ort

    hidden, steps = 256, 128
    rng = np.random.default_rng(0)
    print(f"\n2. recurrent product per step (hidden {hidden}, one thread) and the 2-layer "
          f"taggers' {2 * steps} steps, µs")
    print("| layer | np.dot per step | x 256 steps | onnxruntime, both layers "
          "(inputs 128, 256) | floor / onnxruntime |")
    print("|---|---|---|---|---|")
    for op, gates in (("LSTM", 4), ("GRU", 3)):
        rt = rng.standard_normal((gates * hidden, hidden)).astype(np.float32).T
        h = rng.standard_normal(hidden).astype(np.float32)
        acc = np.empty(gates * hidden, np.float32)
        dot = median_us(lambda: np.dot(h, rt, out=acc), runs * 10)
        total = 0.0
        for inputs in (128, hidden):
            sess = ort.InferenceSession(_lstm_model(op, hidden, inputs, steps),
                                        providers=["CPUExecutionProvider"])
            x = rng.standard_normal((steps, 1, inputs)).astype(np.float32)
            total += median_us(lambda: sess.run(None, {"X": x}), max(20, runs // 5))
        floor = dot * 2 * steps
        print(f"| {op} | {dot:.1f} | {floor:.0f} | {total:.0f} | {floor / total:.2f} |")


def _depthwise_model(c: int, size: int, stride: int) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((c, 1, 3, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "B")
    lo = numpy_helper.from_array(np.array(0, np.float32), "lo")
    hi = numpy_helper.from_array(np.array(6, np.float32), "hi")
    nodes = [helper.make_node("Conv", ["X", "W", "B"], ["C"], group=c, pads=[1] * 4,
                              strides=[stride] * 2),
             helper.make_node("Clip", ["C", "lo", "hi"], ["Y"])]
    graph = helper.make_graph(
        nodes, "dw", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, c, size, size])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], [w, b, lo, hi])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]
                             ).SerializeToString()


def depthwise(runs: int) -> None:
    import pyonnx

    rng = np.random.default_rng(0)
    cases = [(c, s, st, _depthwise_model(c, s, st),
              rng.standard_normal((1, c, s, s)).astype(np.float32)) for c, s, st in DEPTHWISE]
    plain = []
    for _, _, _, model, x in cases:
        sess = pyonnx.InferenceSession(model)
        plain.append(median_us(lambda: sess.run(None, {"X": x}), runs))
        del sess
    import onnxruntime as ort

    print("\n3. mobilenet_v2's depthwise convolutions (3x3, bias, Relu6; one-node sessions), "
          "µs")
    print("| channels, size, stride | pyonnx-numpy | onnxruntime | ratio |")
    print("|---|---|---|---|")
    total_p = total_o = 0.0
    for (c, s, st, model, x), p in zip(cases, plain):
        sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        o = median_us(lambda: sess.run(None, {"X": x}), runs)
        total_p += p
        total_o += o
        print(f"| {c}, {s}, {st} | {p:.0f} | {o:.0f} | {p / o:.2f} |")
    print(f"| all | {total_p:.0f} | {total_o:.0f} | {total_p / total_o:.2f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args(argv)
    hand_off(args.runs)
    recurrent(args.runs)
    depthwise(args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
