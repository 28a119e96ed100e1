"""Greedy non-maximum suppression by a compiled loop (for :mod:`pyonnx.backends.cpu.nms`).

The boxes come grouped into components (boxes of different components never overlap on x, so
never suppress each other), each in rank order; the loop runs the spec's greedy selection in each
component, comparing a candidate with the boxes kept so far in its component only. The IoU is the
reference's expression in the boxes' element type (``FASTMATH = False``: each operation rounded
as NumPy rounds it), so the selections are the reference's.
"""

from __future__ import annotations

import numpy as np

FASTMATH = False


def greedy(starts: np.ndarray, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray,
           areas: np.ndarray, iou_thr: np.floating, max_out: int, keep: np.ndarray) -> None:
    """Component ``c`` holds positions ``starts[c]`` to ``starts[c + 1]`` of the coordinate
    arrays, in rank order; ``keep[i]`` is set to 1 where box ``i`` is selected (at most
    ``max_out`` per component: no more can be among the first ``max_out`` overall)."""
    kept = np.empty(x0.shape[0], np.int64)
    for c in range(starts.shape[0] - 1):
        count = 0
        for i in range(starts[c], starts[c + 1]):
            ax0, ay0, ax1, ay1, ai = x0[i], y0[i], x1[i], y1[i], areas[i]
            suppressed = False
            for t in range(count):
                k = kept[t]
                iw = min(x1[k], ax1) - max(x0[k], ax0)
                ih = min(y1[k], ay1) - max(y0[k], ay0)
                if iw > 0 and ih > 0:
                    inter = iw * ih
                    union = areas[k] + ai - inter
                    if union > 0 and not (inter / union <= iou_thr):
                        suppressed = True
                        break
            if not suppressed:
                kept[count] = i
                count += 1
                keep[i] = 1
                if count >= max_out:
                    break
