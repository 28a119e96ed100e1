"""Benchmark inputs built from a session's declared inputs (works for pyonnx and onnxruntime
sessions alike: both describe inputs as NodeArg with ``name``, ``type`` and ``shape``).

This module imports only NumPy so that a memory-measuring worker for onnxruntime can run it
by path without importing pyonnx (which would inflate onnxruntime's measured memory).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_DTYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_, "tensor(int16)": np.int16,
}


def make_feeds(inputs: list[Any], batch: int = 1, seq: int = 128, seed: int = 0
               ) -> dict[str, np.ndarray]:
    """Random inputs of the declared shapes: a symbolic dimension named like a batch (or the
    first symbolic one of an input) takes ``batch``, other symbolic ones ``seq``. Values follow
    the conventions of the shared models' inputs: integer ids in [0, 256], masks of ones,
    ``sr`` = 16000, recurrent ``state`` zeros, float signals scaled to +-0.1 when 2-D."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for arg in inputs:
        dt = _DTYPES.get(arg.type)
        if dt is None:
            raise ValueError(f"input {arg.name!r}: cannot make benchmark data of type {arg.type}")
        shape = []
        seen_symbolic = False
        for d in (arg.shape or []):
            if isinstance(d, int) and d > 0:
                shape.append(d)
                continue
            name = str(d or "").lower()
            if "batch" in name or (not seen_symbolic and "seq" not in name
                                   and "len" not in name):
                shape.append(batch)
            else:
                shape.append(seq)
            seen_symbolic = True
        lname = arg.name.lower()
        if lname == "sr":
            feeds[arg.name] = np.array(16000, dt).reshape(shape)
        elif "mask" in lname:
            feeds[arg.name] = np.ones(shape, dt)
        elif lname == "state":
            feeds[arg.name] = np.zeros(shape, dt)
        elif np.issubdtype(dt, np.integer):
            feeds[arg.name] = rng.integers(0, 257, shape).astype(dt)
        elif dt is np.bool_:
            feeds[arg.name] = rng.random(shape) < 0.5
        else:
            x = rng.standard_normal(shape).astype(dt)
            feeds[arg.name] = x * dt(0.1) if len(shape) == 2 else x
    return feeds


def dynamic_batch(inputs: list[Any]) -> bool:
    """Whether the inputs' first dimensions are symbolic (a batch size can be chosen)."""
    firsts = [a.shape[0] for a in inputs if a.shape]
    return bool(firsts) and any(not isinstance(d, int) or d <= 0 for d in firsts)
