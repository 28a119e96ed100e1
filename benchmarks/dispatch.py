"""Dispatch cost per executed node (issue 12's "<= 3 µs per node" line): a chain of 300 tiny
nodes ([1, 16] Add, Mul, Relu in turn; graph optimizations off, so every node runs), timed
per run in pyonnx and onnxruntime, beside the same 300 NumPy operations called bare.

    PYTHONPATH=src python benchmarks/dispatch.py [--runs 300]

Prints microseconds per node: pyonnx's (kernel and dispatch), bare NumPy's (the kernels' floor)
and onnxruntime's. The lower quartile of the runs is used (the machine's noise is one-sided).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

NODES = 300
_OPS = ("Add", "Mul", "Relu")


def chain_model() -> bytes:
    """The 300-node chain y = relu(x * c + c)... as a serialized ONNX model."""
    from onnx import helper, numpy_helper

    c = numpy_helper.from_array(np.full((1, 16), 1.0001, np.float32), "c")
    nodes, prev = [], "x"
    for i in range(NODES):
        op = _OPS[i % 3]
        nodes.append(helper.make_node(op, [prev, "c"] if op != "Relu" else [prev], [f"t{i}"]))
        prev = f"t{i}"
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", 1, [1, 16])],
                          [helper.make_tensor_value_info(prev, 1, [1, 16])], [c])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def lower_quartile(fn: Callable[[], object], runs: int) -> float:
    """Seconds per call: the lower quartile of ``runs`` timed calls after one warm-up."""
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 4]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args()

    import onnxruntime as ort

    import pyonnx

    model = chain_model()
    x = np.random.default_rng(0).random((1, 16), dtype=np.float32)
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = pyonnx.InferenceSession(model, sess_options=so)
    oso = ort.SessionOptions()
    oso.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    osess = ort.InferenceSession(model, oso, providers=["CPUExecutionProvider"])
    c = np.full((1, 16), 1.0001, np.float32)

    def bare() -> None:
        y = x
        for i in range(NODES):
            k = i % 3
            y = y + c if k == 0 else (y * c if k == 1 else np.maximum(y, 0))

    per_node = {name: lower_quartile(fn, args.runs) / NODES * 1e6 for name, fn in (
        ("pyonnx", lambda: sess.run(None, {"x": x})), ("bare NumPy", bare),
        ("onnxruntime", lambda: osess.run(None, {"x": x})))}
    print("µs per node: " + ", ".join(f"{k} {v:.2f}" for k, v in per_node.items()))
    print(f"pyonnx over bare NumPy: {per_node['pyonnx'] - per_node['bare NumPy']:.2f} µs per node")


if __name__ == "__main__":
    main()
