"""float16 -> float32 in one pass (for backends.cpu.quantized: a float16 weight widened band by
band for the product it feeds). NumPy's conversion takes about 2 ns a value on x86 (value by
value, without the F16C instructions), a third of the float32 product at 128 rows; this loop,
which LLVM vectorizes, about 0.3 ns.

It is the exact bit-level conversion (F. Giesen's, "half to float, fast"): the exponent and
mantissa bits move to their float32 places and the exponent is rebased by 127 - 15; an
infinity or NaN exponent (all ones) moves to float32's all-ones exponent, keeping the NaN's
payload; a zero or subnormal is renormalized by a float32 subtraction, exact (its result is
representable); the sign bit is copied. Every one of the 65,536 patterns gives NumPy's
``astype(np.float32)`` bit for bit (the tests check all of them). Branch-free: selects only.
``FASTMATH = False``: the subtraction must stay as written.
"""

from __future__ import annotations

import numpy as np

#: no fast-math flags (read by jit._compile): the renormalizing subtraction is exact as written
FASTMATH = False


def half_to_float(h: np.ndarray, c0: int, y: np.ndarray) -> None:
    """y[i, j] = float32(h[i, c0 + j]) for the float16 bit patterns ``h`` (uint16, 2-D,
    C-contiguous) and float32 ``y`` (2-D, C-contiguous): columns c0 .. c0 + y.shape[1] of
    ``h``, so that a band of columns is read without a strided view (which LLVM would not
    vectorize)."""
    magic = np.float32(6.103515625e-05)                       # 2^-14, float32 bits 113 << 23
    n = y.shape[1]
    for i in range(y.shape[0]):
        hr = h[i, c0:c0 + n]   # row views: h[i, c0 + j] checks for a negative index and
        yr = y[i]              # does not vectorize (4x slower)
        for j in range(n):
            x = np.uint32(hr[j])
            u = np.uint32(np.uint32(x & np.uint32(0x7FFF)) << np.uint32(13))
            e = np.uint32(u & np.uint32(0x0F800000))          # the exponent bits, moved
            u = np.uint32(u + np.uint32(0x38000000))          # rebased: (127 - 15) << 23
            # infinity or NaN: rebased once more, to float32's all-ones exponent
            big = np.uint32(u + np.uint32(0x38000000)) if e == np.uint32(0x0F800000) else u
            # zero or subnormal: 1.m * 2^-14 minus 2^-14 is 0.m * 2^-14, exactly
            small = np.float32(np.uint32(u + np.uint32(0x00800000)).view(np.float32)
                               - magic).view(np.uint32)
            r = small if e == np.uint32(0) else big
            yr[j] = np.uint32(r | np.uint32(np.uint32(x & np.uint32(0x8000)) << np.uint32(16))
                              ).view(np.float32)
