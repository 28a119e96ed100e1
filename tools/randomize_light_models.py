"""Give the onnx wheel's light_* CNNs seeded random weights.

The light models (onnx/backend/test/data/light/) compute their weights with ConstantOfShape
nodes filled with one value, so every output is a constant and no accuracy can be measured on
them. This script replaces each such node by an initializer of seeded random values of the same
shape (He-scaled normal weights, small biases, batch-norm scales and variances near 1), drops
the initializers from the graph inputs (IR 4 and later), and writes the result.

    python tools/randomize_light_models.py [OUT_DIR] [--seed 0] [--models light_resnet50 ...]

The default OUT_DIR is benchmarks/models/light_random (git-ignored). Also importable:
``randomize(model, seed) -> Model``; the one randomizer of the project (the to_torch tests, the
optimizer's acceptance sweep and the quantization benchmarks all use it).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

DEFAULT_MODELS = ("light_resnet50", "light_squeezenet", "light_shufflenet",
                  "light_inception_v2")


def light_dir() -> str:
    """The folder of the light models in the installed onnx wheel."""
    import onnx

    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def _values(rng: np.random.Generator, shape: tuple[int, ...], role: tuple[str, int] | None
            ) -> np.ndarray:
    op, index = role if role is not None else ("", -1)
    if op == "BatchNormalization" and index in (1, 4):   # scale, variance: positive, near 1
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if len(shape) <= 1:                                   # biases, shifts, means
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)
    fan_in = int(np.prod(shape[1:]))
    return (rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))).astype(np.float32)


def randomize(model, seed: int = 0, expose_logits: bool = True):
    """A copy of ``model`` (a pyonnx Model) whose ConstantOfShape weights are random; with
    ``expose_logits`` the input of the final Softmax is also a graph output."""
    from pyonnx.ir import DataType, Tensor, TensorType
    from pyonnx.optimizer._copy import copy_model

    m = copy_model(model)
    g = m.graph
    rng = np.random.default_rng(seed)
    for node in list(g.nodes):
        if node.op_type != "ConstantOfShape" or node.inputs[0] is None:
            continue
        shape_v = node.inputs[0]
        if shape_v.const_value is None:
            continue
        shape = tuple(int(d) for d in shape_v.const_value.numpy())
        out = node.outputs[0]
        role = (out.uses[0][0].op_type, out.uses[0][1]) if out.uses else None
        arr = _values(rng, shape, role)
        g.remove(node)
        out.producer = None
        out.const_value = Tensor(out.name, DataType.FLOAT, shape, arr)
        out.type = TensorType(DataType.FLOAT, shape)
        g.add_initializer(out)
    inits = set(g.initializers)
    g.inputs = [v for v in g.inputs if v.name not in inits]
    for name in [n for n, v in g.initializers.items() if not v.uses]:
        del g.initializers[name]   # the __SHAPE tensors
    m.ir_version = max(m.ir_version, 4)
    if expose_logits:
        # random weights saturate the final Softmax (one-hot outputs), so accuracy is measured
        # on its input: the logits become a second graph output
        for node in g.nodes:
            if node.op_type == "Softmax" and node.outputs[0] in g.outputs:
                g.add_output(node.inputs[0])
                break
    return m


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", default=os.path.join("benchmarks", "models",
                                                                "light_random"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", nargs="*", default=list(DEFAULT_MODELS))
    args = ap.parse_args(argv)
    import pyonnx

    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.models:
        src = os.path.join(light_dir(), f"{name}.onnx")
        dst = os.path.join(args.out_dir, f"{name}.onnx")
        pyonnx.save(randomize(pyonnx.load(src), args.seed), dst)
        print(f"{name}: {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
