"""Write copies of the onnx package's ``light_*`` models with random weights.

The light models compute every weight with ``ConstantOfShape`` (one value per tensor), which
makes each output a constant: an optimizer that broke the arithmetic would still match. This
script replaces each ``ConstantOfShape`` whose shape is an initializer by an initializer of
seeded random values (1-D tensors, the BatchNormalization parameters and biases, uniform in
[0.5, 1.5] so variances stay positive; others normal with variance 1/fan-in so activations
stay in range), keeping the IR version's rules (IR 3: every initializer is a graph input).

    python tools/randomize_light_weights.py OUT_DIR [--seed 0] [--models light_resnet50 ...]
"""

from __future__ import annotations

import argparse
import glob
import os

import numpy as np
import onnx
from onnx import numpy_helper


def light_dir() -> str:
    """The folder of the light models in the installed onnx package."""
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def randomize(model: onnx.ModelProto, seed: int) -> onnx.ModelProto:
    """A copy of ``model`` whose ConstantOfShape weights are random initializers."""
    rng = np.random.default_rng(seed)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    keep = []
    new = []
    for node in g.node:
        if node.op_type == "ConstantOfShape" and node.input and node.input[0] in inits:
            shape = [int(d) for d in numpy_helper.to_array(inits[node.input[0]]).ravel()]
            if len(shape) <= 1:
                arr = rng.uniform(0.5, 1.5, shape)
            else:
                fan_in = max(int(np.prod(shape[1:])), 1)
                arr = rng.standard_normal(shape) / np.sqrt(fan_in)
            new.append(numpy_helper.from_array(arr.astype(np.float32), node.output[0]))
        else:
            keep.append(node)
    del g.node[:]
    g.node.extend(keep)
    g.initializer.extend(new)
    if m.ir_version < 4:
        for t in new:
            g.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, t.dims))
    return m


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="*", help="names like light_resnet50 (default: all)")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for path in sorted(glob.glob(os.path.join(light_dir(), "light_*.onnx"))):
        name = os.path.basename(path)[:-5]
        if args.models and name not in args.models:
            continue
        out = os.path.join(args.out_dir, name + ".onnx")
        onnx.save(randomize(onnx.load(path), args.seed), out)
        print(f"{name}: written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
