"""The nine light_* CNNs of the onnx package with seeded random weights.

Their weights are ConstantOfShape nodes (every weight one constant), which makes every output
constant and a comparison of two engines meaningless. :func:`random_light` replaces each
ConstantOfShape whose shape is an initializer by an initializer of seeded random values
(tools/randomize_light_models.py).
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
    """The model at ``path`` with its ConstantOfShape weights replaced by seeded random ones
    (tools/randomize_light_models.py, the project's one randomizer)."""
    import pyonnx
    from tools.randomize_light_models import randomize

    return pyonnx.serialize(randomize(pyonnx.load(path), seed, expose_logits=False))


def light_feed(model: bytes, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for a light model (its declared shapes, batch 1)."""
    import onnx

    m = onnx.load_from_string(model)
    inits = {i.name for i in m.graph.initializer}
    rng = np.random.default_rng(seed)
    return {x.name: rng.random([d.dim_value or 1 for d in x.type.tensor_type.shape.dim],
                               dtype=np.float32)
            for x in m.graph.input if x.name not in inits}
