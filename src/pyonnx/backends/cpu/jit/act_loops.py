"""HardSigmoid and HardSwish in place, one pass (for the fused activations of
:mod:`pyonnx.backends.cpu.fused`): NumPy needs four passes and a temporary for HardSwish.

``y`` is 1-D and C-contiguous; ``alpha`` and ``beta`` are scalars of its element type. Each
element becomes ``t = min(1, max(0, alpha * v + beta))`` (``swish`` 0: HardSigmoid) or ``v * t``
(``swish`` 1: HardSwish). The bounds are applied with comparisons that NaN fails, so NaN
propagates as in ``np.clip``; ``alpha * v + beta`` may be contracted into one fused
multiply-add (a rounding difference of at most one unit in the last place).
"""

from __future__ import annotations

import numpy as np


def hard_sigmoid(y: np.ndarray, alpha: float, beta: float, swish: int) -> None:
    """y = HardSigmoid(y), or HardSwish(y) when ``swish`` is 1, in place."""
    zero = alpha - alpha  # 0 and 1 of y's element type (alpha and beta have it)
    one = zero + 1
    for i in range(y.shape[0]):
        v = y[i]
        t = v * alpha + beta
        if t < zero:
            t = zero
        elif t > one:
            t = one
        y[i] = v * t if swish else t
