"""Tiny float models for the quantization tests, built with onnx.helper, and helpers."""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SHARED = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                       "models"))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(arr), name)


def mlp_model(seed: int = 0, opset: int = 17) -> onnx.ModelProto:
    """Gather (embedding) -> MatMul -> Relu -> Gemm(transB) -> MatMul by Transpose(table)."""
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((50, 16)).astype(np.float32)
    w1 = (rng.standard_normal((16, 32)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((16, 32)) * 0.3).astype(np.float32)   # Gemm B, transposed
    b2 = (rng.standard_normal(16) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"], name="embed"),
        helper.make_node("MatMul", ["emb", "w1"], ["h"], name="mm1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "shape2d"], ["r2"], name="flat"),
        helper.make_node("Gemm", ["r2", "w2", "b2"], ["g"], name="gemm", transB=1),
        helper.make_node("Transpose", ["table"], ["tableT"], name="tied", perm=[1, 0]),
        helper.make_node("MatMul", ["g", "tableT"], ["logits"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [4, 50])],
        [_init("table", table), _init("w1", w1), _init("w2", w2), _init("b2", b2),
         _init("shape2d", np.array([4, 32], np.int64))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def cnn_model(seed: int = 0, opset: int = 13) -> onnx.ModelProto:
    """Conv -> Relu -> Conv(+bias) -> Add(skip) -> GlobalAveragePool -> Flatten -> Gemm."""
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    b1 = (rng.standard_normal(8) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((8, 8, 3, 3)) * 0.15).astype(np.float32)
    b2 = (rng.standard_normal(8) * 0.1).astype(np.float32)
    wf = (rng.standard_normal((8, 5)) * 0.3).astype(np.float32)
    bf = (rng.standard_normal(5) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["s"], name="skip"),
        helper.make_node("Relu", ["s"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [_init(n, a) for n, a in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2),
                                  ("wf", wf), ("bf", bf))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def cnn_samples(n: int, seed: int = 1) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, 3, 12, 12)).astype(np.float32)} for _ in range(n)]


def mlp_feed(seed: int = 3) -> dict[str, np.ndarray]:
    return {"ids": np.random.default_rng(seed).integers(0, 50, 4).astype(np.int64)}


def run_ort(model: str | bytes | onnx.ModelProto, feed: dict, optimize: bool = True
            ) -> np.ndarray:
    """Output 0 from onnxruntime; ``optimize=False`` disables its graph optimizations (its
    fusions of QDQ patterns compute differently, e.g. int8 activations inside MatMulNBits)."""
    import onnxruntime as ort

    if isinstance(model, onnx.ModelProto):
        model = model.SerializeToString()
    so = ort.SessionOptions()
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(None, feed)[0]


def run_pyonnx(model, feed: dict) -> np.ndarray:
    import pyonnx

    if isinstance(model, onnx.ModelProto):
        model = model.SerializeToString()
    return pyonnx.InferenceSession(model).run(None, feed)[0]


def op_counts(path: str) -> dict[str, int]:
    m = onnx.load(path)
    out: dict[str, int] = {}
    for n in m.graph.node:
        key = n.op_type if not n.domain else f"{n.domain}::{n.op_type}"
        out[key] = out.get(key, 0) + 1
    return out


def full_check(path: str) -> None:
    onnx.checker.check_model(onnx.load(path), full_check=True)
