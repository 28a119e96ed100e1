"""The nine light_* CNNs of the onnx package with seeded random weights.

Their weights are ConstantOfShape nodes (every weight one constant), which makes every output
constant and a comparison of two engines meaningless. :func:`random_light` replaces each
ConstantOfShape whose shape is an initializer by an initializer of seeded random values scaled
as a network's initialization is (He for weights, positive values near 1 for the per-channel
vectors, so that BatchNormalization variances stay positive), which keeps activations finite.
"""

from __future__ import annotations

import glob
import os

import numpy as np


def light_paths() -> list[str]:
    """The light_*.onnx files of the installed onnx package."""
    import onnx

    root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    return sorted(glob.glob(os.path.join(root, "light_*.onnx")))


def random_light(path: str, seed: int = 0) -> bytes:
    """The model at ``path`` with its ConstantOfShape weights replaced by seeded random ones."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    rng = np.random.default_rng(seed)
    keep = []
    for n in g.node:
        if n.op_type == "ConstantOfShape" and n.input[0] in inits:
            shape = [int(d) for d in inits[n.input[0]].reshape(-1)]
            if len(shape) >= 2:
                fan_in = int(np.prod(shape[1:]))
                w = rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))
            else:
                w = rng.uniform(0.5, 1.5, shape)
            g.initializer.append(numpy_helper.from_array(w.astype(np.float32), n.output[0]))
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    used = {i for n in keep for i in n.input}
    live = [i for i in g.initializer if i.name in used or i.name in {o.name for o in g.output}]
    dropped = {i.name for i in g.initializer} - {i.name for i in live}
    del g.initializer[:]
    g.initializer.extend(live)
    inputs = [x for x in g.input if x.name not in dropped]  # old IRs list them as inputs too
    del g.input[:]
    g.input.extend(inputs)
    return m.SerializeToString()


def light_feed(model: bytes, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for a light model (its declared shapes, batch 1)."""
    import onnx

    m = onnx.load_from_string(model)
    inits = {i.name for i in m.graph.initializer}
    rng = np.random.default_rng(seed)
    return {x.name: rng.random([d.dim_value or 1 for d in x.type.tensor_type.shape.dim],
                               dtype=np.float32)
            for x in m.graph.input if x.name not in inits}
