"""Train and write the model that ``pyonnx demo`` runs: a handwritten-digit classifier.

The model is a two-layer perceptron (64 -> 32 -> 10, ReLU, softmax) trained here with plain NumPy
on scikit-learn's bundled 8x8 digits data set (no download), and written with pyonnx's own IR and
``pyonnx.save``. It also writes a few held-out test digits for the demo to show.

Run (needs scikit-learn, a development dependency only):
    python tools/make_demo_model.py
Outputs, committed: src/pyonnx/cli/data/digits.onnx and src/pyonnx/cli/data/digits_samples.npz
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import pyonnx  # noqa: E402
from pyonnx.ir import (  # noqa: E402
    Attribute, AttributeType, DataType, Graph, Model, Node, Tensor, TensorType, Value,
)

OUT = os.path.join(os.path.dirname(__file__), "..", "src", "pyonnx", "cli", "data")


def train(x: np.ndarray, y: np.ndarray, hidden: int = 32, epochs: int = 300, lr: float = 0.5,
          seed: int = 0) -> tuple[np.ndarray, ...]:
    """Full-batch gradient descent on cross-entropy; returns W1, b1, W2, b2 (float32)."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.1, (64, hidden))
    b1 = np.zeros(hidden)
    w2 = rng.normal(0, 0.1, (hidden, 10))
    b2 = np.zeros(10)
    onehot = np.eye(10)[y]
    for _ in range(epochs):
        h = np.maximum(x @ w1 + b1, 0)
        logits = h @ w2 + b2
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(x)
        gw2, gb2 = h.T @ g, g.sum(0)
        gh = g @ w2.T * (h > 0)
        gw1, gb1 = x.T @ gh, gh.sum(0)
        w1 -= lr * gw1
        b1 -= lr * gb1
        w2 -= lr * gw2
        b2 -= lr * gb2
    return tuple(a.astype(np.float32) for a in (w1, b1, w2, b2))


def build(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> Model:
    """pixels[N,8,8] (0..16) -> probabilities[N,10]."""
    pixels = Value("pixels", TensorType(DataType.FLOAT, ("N", 8, 8)))
    inits = []
    for name, arr in (("scale", np.array(1 / 16, np.float32)), ("W1", w1), ("B1", b1),
                      ("W2", w2), ("B2", b2)):
        inits.append(Value(name, TensorType(DataType.FLOAT, arr.shape),
                           const_value=Tensor.from_numpy(arr, name)))
    scale, W1, B1, W2, B2 = inits
    flat, x, h1, h1r, logits = (Value(n) for n in ("flat", "x", "h1", "h1_relu", "logits"))
    probs = Value("probabilities", TensorType(DataType.FLOAT, ("N", 10)))
    nodes = [
        Node("Flatten", [pixels], [flat], name="flatten", attributes=[
            Attribute("axis", AttributeType.INT, 1)]),
        Node("Mul", [flat, scale], [x], name="normalize"),
        Node("Gemm", [x, W1, B1], [h1], name="dense1"),
        Node("Relu", [h1], [h1r], name="relu1"),
        Node("Gemm", [h1r, W2, B2], [logits], name="dense2"),
        Node("Softmax", [logits], [probs], name="softmax", attributes=[
            Attribute("axis", AttributeType.INT, 1)]),
    ]
    g = Graph("digits_mlp", inputs=[pixels], outputs=[probs], nodes=nodes, initializers=inits,
              doc_string="8x8 handwritten digit classifier (0-9)")
    return Model(g, ir_version=10, opset_imports={"": 21}, producer_name="pyonnx",
                 producer_version=pyonnx.__version__, doc_string=(
                     "Two-layer perceptron trained on scikit-learn's 8x8 digits data set."),
                 metadata_props={"labels": ",".join(str(i) for i in range(10))})


def main() -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.data.astype(np.float64) / 16.0
    y = d.target
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    train_idx, test_idx = order[:1500], order[1500:]
    w = train(x[train_idx], y[train_idx])
    model = build(*w)
    os.makedirs(OUT, exist_ok=True)
    pyonnx.save(model, os.path.join(OUT, "digits.onnx"))
    sess = pyonnx.InferenceSession(os.path.join(OUT, "digits.onnx"))
    test_x = d.data[test_idx].reshape(-1, 8, 8).astype(np.float32)
    (p,) = sess.run(None, {"pixels": test_x})
    acc = float((p.argmax(1) == y[test_idx]).mean())
    print(f"held-out accuracy: {acc:.3f} on {len(test_idx)} digits")
    pick = test_idx[:8]
    np.savez_compressed(os.path.join(OUT, "digits_samples.npz"),
                        pixels=d.data[pick].reshape(-1, 8, 8).astype(np.uint8),
                        labels=y[pick].astype(np.int64))


if __name__ == "__main__":
    main()
