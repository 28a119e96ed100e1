"""1x1 convolutions by the compiled, register-blocked product of ``jit/gemm_loops.py``, with
their weights packed once per weight tensor and the bias, residual and Relu/Clip applied in the
product's own stores (the ``fast`` extra, float32).

A 1x1 convolution without padding at unit strides is ``Y[n] = W @ X[n]`` for W [M, C] and each
image's X [C, positions]. :func:`pointwise_conv` computes it, or returns None where the
compiled loops do not run (the caller takes its BLAS path): numba missing or disabled, another
element type, work below ``jit.MIN_ELEMENTS`` outputs.

Packed weights are remembered per weight array while it lives, for arrays that cannot change
(``writeable`` False: the session's initializers and folded constants); a weight fed at run
time is packed on each call. Large products are split by panels of output channels over the
intra-op threads (:func:`pyonnx.backends.cpu.threads.parallel_for`), each part a call of the
loop, which releases the GIL.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from pyonnx.backends.cpu import jit, threads

__all__ = ["pack_rows", "pointwise_conv", "CLIP_ACTIVATIONS"]

#: Rows of W per packed panel (``jit/gemm_loops.py``'s ROWS; that module imports numba, so the
#: value is repeated here and checked against it by the tests).
ROWS = 6
#: Bytes of X's columns one chunk of the loop holds: half the second-level cache of a core
#: (512 KiB on the dev machine), so that the chunk stays there while every panel passes over it.
_CHUNK_BYTES = 256 << 10

#: The fused activations the product's stores apply, as (lower, upper) bounds from their
#: parameters: Relu is a clip at 0, no activation a clip at infinity.
CLIP_ACTIVATIONS = {
    "": lambda params: (-np.inf, np.inf),
    "Relu": lambda params: (0.0, np.inf),
    "Clip": lambda params: (params[0], params[1]),
}

#: Multiply-adds a part of a split product should have at least.
MIN_SPLIT_MACS = 1 << 23

_packed: dict[int, tuple[weakref.ref, np.ndarray, np.ndarray | None, np.ndarray]] = {}
_packed_lock = threading.Lock()


def pack_rows(w2: np.ndarray) -> np.ndarray:
    """W [M, K] as panels of ROWS rows, each laid out [K, ROWS] (k-major), the rows past M zero:
    a 1-D float32 array of ``ceil(M / ROWS) * K * ROWS`` elements."""
    m, k = w2.shape
    panels = -(-m // ROWS)
    padded = np.zeros((panels * ROWS, k), np.float32)
    padded[:m] = w2
    return np.ascontiguousarray(padded.reshape(panels, ROWS, k).transpose(0, 2, 1)).reshape(-1)


def _packed_weights(w: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(packed W, bias padded to whole panels) for the convolution weight ``w`` [M, K, 1...]
    and its bias, remembered while ``w`` lives when it cannot change."""
    m = w.shape[0]
    key = id(w)
    hit = _packed.get(key)
    if hit is not None and hit[0]() is w and hit[2] is bias:
        return hit[1], hit[3]
    wp = pack_rows(w.reshape(m, -1).astype(np.float32, copy=False))
    bp = np.zeros(-(-m // ROWS) * ROWS, np.float32)
    if bias is not None:
        bp[:m] = bias
    if not w.flags.writeable and (bias is None or not bias.flags.writeable):
        def forget(ref: weakref.ref, key: int = key) -> None:
            with _packed_lock:
                entry = _packed.get(key)
                if entry is not None and entry[0] is ref:
                    del _packed[key]

        with _packed_lock:
            _packed[key] = (weakref.ref(w, forget), wp, bias, bp)
    return wp, bp


def pointwise_conv(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                   z: np.ndarray | None, lo: float, hi: float) -> np.ndarray | None:
    """``clip(Conv(x, w, bias) + z, lo, hi)`` for a 1x1 kernel without padding at unit strides
    and one group: x (N, C, *spatial) and w (M, C, 1, ...) float32, ``bias`` (M,) or None,
    ``z`` None or float32 of the output's shape. None (nothing computed) where the compiled
    loop does not run."""
    n_img, c = x.shape[:2]
    m = w.shape[0]
    length = x.size // max(1, n_img * c)
    if (x.dtype != np.float32 or w.dtype != np.float32 or c == 0 or length == 0 or m == 0
            or (bias is not None and bias.dtype != np.float32)
            or (z is not None and (z.dtype != np.float32
                                   or z.shape != (n_img, m) + x.shape[2:]))):
        return None
    if not jit.available() or n_img * m * length < jit.MIN_ELEMENTS:
        return None
    wp, bp = _packed_weights(w, bias)
    x = np.ascontiguousarray(x)
    zc = np.ascontiguousarray(z) if z is not None else np.zeros(1, np.float32)
    y = np.empty((n_img, m) + x.shape[2:], np.float32)
    lo32, hi32 = np.float32(lo), np.float32(hi)
    chunk = max(16, _CHUNK_BYTES // (4 * c) // 16 * 16)
    panels = -(-m // ROWS)
    has_z = int(z is not None)
    xf, yf, zf = x.reshape(n_img, -1), y.reshape(n_img, -1), zc.reshape(n_img if has_z else 1, -1)

    def run(img: int, p0: int, p1: int) -> bool:
        return jit.call("gemm_loops.pointwise", wp, bp, m, c, xf[img], length, yf[img],
                        zf[img if has_z else 0], has_z, lo32, hi32, p0, p1, chunk,
                        elements=jit.MIN_ELEMENTS)

    macs = m * c * length
    for img in range(n_img):
        if threads.budget() > 1 and macs >= 2 * MIN_SPLIT_MACS and panels >= 2:
            ok = [True]

            def part(p0: int, p1: int, img: int = img) -> None:
                if not run(img, p0, p1):
                    ok[0] = False

            threads.parallel_for(panels, part, min_per_part=max(
                1, -(-MIN_SPLIT_MACS // (ROWS * c * length))))
            if not ok[0]:
                return None
        elif not run(img, 0, panels):
            return None
    return y
