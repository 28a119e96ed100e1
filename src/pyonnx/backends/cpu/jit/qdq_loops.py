"""QuantizeDequantize in one pass (for backends.cpu.quantized.quantize_dequantize): what
DequantizeLinear(QuantizeLinear(x, s, z), s, z) computes, without the 8-bit buffer.

``x`` and ``y`` are 1-D, C-contiguous float32; ``s``, ``z``, ``lo`` and ``hi`` float32 scalars
(the scale, the zero point and the quantized type's range). Each element is computed as the
pair computes it, in float32: ``q = rint(x / s) + z`` (round half to even), saturated to
``[lo, hi]``, then ``y = (q - z) * s``. The saturation uses comparisons that NaN fails, and
NaN becomes the quantized value 0, as the pair's cast to 8 bits gives on the platforms NumPy
supports. There is no product to contract and the order of the operations is the pair's, so
the results are the NumPy path's bit for bit (tests compare them).
"""

from __future__ import annotations

import numpy as np


def quantize_dequantize(x: np.ndarray, y: np.ndarray, s: np.float32, z: np.float32,
                        lo: np.float32, hi: np.float32) -> None:
    """y = DequantizeLinear(QuantizeLinear(x, s, z), s, z), per tensor."""
    nan_q = z - z   # the quantized value of NaN (0), in float32
    for i in range(x.shape[0]):
        q = np.rint(x[i] / s) + z
        if q < lo:
            q = lo
        elif q > hi:
            q = hi
        elif q != q:
            q = nan_q
        y[i] = (q - z) * s
