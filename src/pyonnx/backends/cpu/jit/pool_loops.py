"""Global average pooling by compiled loops (for :mod:`pyonnx.backends.cpu.pool`): NumPy's
pairwise sum over a channel's positions runs at a fraction of the memory's speed, a compiled
sum with reassociation allowed (jit's fastmath) runs on vector lanes.
"""

from __future__ import annotations

import numpy as np


def row_means(x: np.ndarray, length: int, y: np.ndarray) -> None:
    """``y[r]`` = the mean of row ``r`` of ``x`` (1-D, C-contiguous: rows of ``length``
    elements), summed in x's element type."""
    for r in range(y.shape[0]):
        # a 1-D slice: x[r * length + i] would stop the compiler from vectorizing the sum
        xr = x[r * length:(r + 1) * length]
        s = xr[0] - xr[0]
        for i in range(length):
            s += xr[i]
        y[r] = s / np.float32(length)
