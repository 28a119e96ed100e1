"""Resize of the last two axes by compiled loops (for :mod:`pyonnx.backends.cpu.resize`).

The reference (:func:`pyonnx.ops._image.resample`) applies one axis at a time over the whole
tensor, a gather and a multiply-add per filter tap, each a pass over an output-sized array. These
loops do both axes of one plane row by row, the intermediate row in a small buffer, with the
reference's operations in its order: per axis ``t0 * w0``, then ``+ t_k * w_k`` for each further
tap, each product and sum rounded in the element type (``FASTMATH = False``: no fused
multiply-add), so the result is the reference's to the bit.
"""

from __future__ import annotations

import numpy as np

FASTMATH = False


def filter2d(x: np.ndarray, iy: np.ndarray, wy: np.ndarray, ix: np.ndarray, wx: np.ndarray,
             rows_first: bool, out: np.ndarray) -> None:
    """``out[p]`` = plane ``x[p]`` filtered along its rows axis (H: output row ``o`` is
    ``sum_k x[p, iy[k, o], :] * wy[k, o]``) and along its columns axis (W, likewise with
    ``ix``, ``wx``): H first when ``rows_first``, else W first. x (P, IH, IW), out (P, OH, OW)
    and the tables ([taps, out]) are C-contiguous; an axis left as it is has the table
    ``[[0, 1, ...]]`` with weights 1 (a product by 1 is exact). Two taps (linear) take an
    unrolled loop: the same operations, three times faster."""
    P, IH, IW = x.shape
    TY, OH = iy.shape
    TX, OW = ix.shape
    # rows pass: dst (len L) = sum_k src_plane[iy[k, o]] * wy[k, o]; columns pass:
    # dst[j] = sum_k src[ix[k, j]] * wx[k, j]; written out twice below (the order differs),
    # as numba compiles only the entry function of a module here
    if rows_first:
        mid = np.empty((1, IW), x.dtype)
        mid_rows = 1
    else:
        mid = np.empty((IH, OW), x.dtype)
        mid_rows = IH
    for p in range(P):
        xp = x[p]
        if not rows_first:
            for r in range(mid_rows):
                src = xp[r]
                dst = mid[r]
                if TX == 2:
                    i0, i1, w0, w1 = ix[0], ix[1], wx[0], wx[1]
                    for j in range(OW):
                        dst[j] = src[i0[j]] * w0[j] + src[i1[j]] * w1[j]
                else:
                    for j in range(OW):
                        dst[j] = src[ix[0, j]] * wx[0, j]
                    for k in range(1, TX):
                        for j in range(OW):
                            dst[j] = dst[j] + src[ix[k, j]] * wx[k, j]
        plane = xp if rows_first else mid
        for o in range(OH):
            dst = mid[0] if rows_first else out[p, o]
            src = plane[iy[0, o]]
            w = wy[0, o]
            if TY == 2:
                src1 = plane[iy[1, o]]
                w1 = wy[1, o]
                for i in range(dst.shape[0]):
                    dst[i] = src[i] * w + src1[i] * w1
            else:
                for i in range(dst.shape[0]):
                    dst[i] = src[i] * w
                for k in range(1, TY):
                    src = plane[iy[k, o]]
                    w = wy[k, o]
                    for i in range(dst.shape[0]):
                        dst[i] = dst[i] + src[i] * w
            if rows_first:
                src = mid[0]
                dst = out[p, o]
                if TX == 2:
                    i0, i1, w0, w1 = ix[0], ix[1], wx[0], wx[1]
                    for j in range(OW):
                        dst[j] = src[i0[j]] * w0[j] + src[i1[j]] * w1[j]
                else:
                    for j in range(OW):
                        dst[j] = src[ix[0, j]] * wx[0, j]
                    for k in range(1, TX):
                        for j in range(OW):
                            dst[j] = dst[j] + src[ix[k, j]] * wx[k, j]


def nearest2d(x: np.ndarray, iy: np.ndarray, ix: np.ndarray, out: np.ndarray) -> None:
    """``out[p, o, j] = x[p, iy[o], ix[j]]`` (x (P, IH, IW), out (P, OH, OW), C-contiguous);
    an output row whose source row is the previous one's is a copy of it."""
    P = x.shape[0]
    OH = iy.shape[0]
    OW = ix.shape[0]
    for p in range(P):
        xp = x[p]
        op = out[p]
        for o in range(OH):
            dst = op[o]
            if o > 0 and iy[o] == iy[o - 1]:
                prev = op[o - 1]
                for j in range(OW):
                    dst[j] = prev[j]
                continue
            src = xp[iy[o]]
            for j in range(OW):
                dst[j] = src[ix[j]]
