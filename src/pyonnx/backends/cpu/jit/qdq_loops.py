"""QuantizeDequantize in one pass (for backends.cpu.quantized.quantize_dequantize): what
DequantizeLinear(QuantizeLinear(x, s, z), s, z) computes, without the 8-bit buffer.

``x`` and ``y`` are 1-D, C-contiguous float32; ``s``, ``z``, ``lo`` and ``hi`` float32 scalars
(the scale, the zero point and the quantized type's range). Each element is computed as the
pair computes it, in float32: ``q = rint(x / s) + z`` (round half to even), saturated to
``[lo, hi]``, then ``y = (q - z) * s``. NaN becomes the quantized value 0, as the pair's cast
to 8 bits gives on the platforms NumPy supports. The order of the operations is the pair's and
nothing is contracted into a fused multiply-add (``FASTMATH = False``: the
BatchNormalization's ``y * a + c`` is rounded twice, as in NumPy), so the results are the
NumPy path's bit for bit (tests compare them).
"""

from __future__ import annotations

import numpy as np

#: no fast-math flags at all (read by jit._compile): every operation is rounded on its own
FASTMATH = False


def quantize_dequantize(x: np.ndarray, y: np.ndarray, s: np.float32, z: np.float32,
                        lo: np.float32, hi: np.float32) -> None:
    """y = DequantizeLinear(QuantizeLinear(x, s, z), s, z), per tensor."""
    nan_q = z - z   # the quantized value of NaN (0), in float32
    for i in range(x.shape[0]):
        q = np.rint(x[i] / s) + z
        q = min(max(q, lo), hi) if q == q else nan_q   # branch-free: vectorized
        y[i] = (q - z) * s


def quantize_dequantize_affine(x: np.ndarray, y: np.ndarray, s: np.float32, z: np.float32,
                               lo: np.float32, hi: np.float32, a: np.ndarray, c: np.ndarray,
                               inner: int, relu: int) -> None:
    """y = DequantizeLinear(QuantizeLinear(x)) * a[ch] + c[ch], then max(y, 0) with ``relu``
    (as ``np.clip(y, 0, inf)``: NaN and -0.0 kept), where ``ch`` is the channel of the element
    in an (N, C, inner) layout (C = a.shape[0]): a BatchNormalization (and Relu) after the
    pair, in the same pass."""
    nan_q = z - z   # 0 in float32: NaN's quantized value, and Relu's bound
    channels = a.shape[0]
    outer = x.shape[0] // (channels * inner)
    for o in range(outer):
        for ch in range(channels):
            ai = a[ch]
            ci = c[ch]
            base = (o * channels + ch) * inner
            xs = x[base:base + inner]
            ys = y[base:base + inner]
            # branch-free bodies (the compiler vectorizes them; with the branches of
            # quantize_dequantize this loop ran 6x slower)
            for j in range(inner):
                q = np.rint(xs[j] / s) + z
                q = min(max(q, lo), hi) if q == q else nan_q
                v = (q - z) * s
                v = v * ai
                ys[j] = v + ci
            if relu:
                for j in range(inner):
                    if ys[j] < nan_q:
                        ys[j] = nan_q
