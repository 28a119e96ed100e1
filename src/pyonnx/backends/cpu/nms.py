"""NonMaxSuppression on the CPU provider: greedy NMS from the overlapping pairs only.

The reference kernel (:func:`pyonnx.ops.image.non_max_suppression_10`) runs the greedy loop as
the spec states it: take the best remaining box, drop every remaining box whose IoU with it
exceeds the threshold, repeat. Each selection costs a pass over all remaining boxes, so a class
with thousands of candidates and little suppression costs selections x candidates operations:
torchvision's batched NMS (SSDlite) puts ~27000 boxes of 90 classes into one class (shifted
apart per class) and selects ~6000 of them, 1.2 s in NumPy.

This variant computes the same result from the pairs of boxes that can suppress each other:

1. A box suppresses another only when their IoU is positive, which needs both intervals to
   overlap on x and on y (the reference computes IoU as 0 otherwise, and the threshold is at
   least 0). Boxes sorted by their left edge give every x-overlapping pair by a sweep
   (``searchsorted`` of each right edge), compared tile by tile.
2. For those pairs the IoU is computed with the reference's exact expression (same dtype, same
   order of operations; IoU is symmetric bit for bit since ``min``, ``max``, ``+`` and ``*``
   commute), which gives the "suppresses" edges, oriented from the better-ranked box.
3. The greedy pass then visits only boxes that have an edge; a box without one is always kept.

The selection order (score descending, ties by lower index) and the ``max_output_boxes_per_class``
cut are the reference's. When the boxes overlap so much that the pair count would exceed what the
reference loop costs, the reference loop runs instead (dense clusters suppress fast there).

Where the ``fast`` extra's compiled loops run (float32/float64 boxes, from 32 candidates), a
class takes another route, which needs no pair list: the valid boxes sorted by left edge split
into x components (a component ends where the next left edge reaches no right edge so far, so
boxes of different components never overlap), and ``jit/nms_loops.greedy`` runs the greedy
selection within each component in rank order, a candidate compared with the boxes its component
has kept so far, with the same IoU expression. Each component keeps at most
``max_output_boxes_per_class``; the kept boxes of all components in rank order, cut there, are
the reference's selection. SSDlite's 27000 boxes form 90 components (its shifted classes):
~5 ms where the pair sweep takes 120 ms (CPU time); one dense component costs candidates x kept
IoUs, as onnxruntime's loop does.

Without the compiled loops, many small components (at least ``_ROUNDS_COMPONENTS``, none above
``_ROUNDS_LARGEST`` boxes) run the reference's loop in all components at once: each round every
component selects its best remaining box and drops the boxes that it suppresses, a few array
operations over all remaining boxes (SSDlite: ~18 ms); other cases take the pair sweep above.
"""

from __future__ import annotations

import numpy as np

from pyonnx.backends.cpu import jit
from pyonnx.backends.cpu.registry import fast_kernel
from pyonnx.ops.image import _corners, nms_arguments

__all__: list[str] = []

# rows of one tile of the sweep at most (bounds the temporaries)
_TILE_ROWS = 128
# pair-sweep only when the x-overlapping pairs are at most this many per candidate (plus a
# constant): beyond it the reference loop, whose cost falls with heavy suppression, is used
_PAIRS_PER_BOX = 256
_PAIRS_FLOOR = 1 << 20
# element types of the compiled loop
_LOOP_TYPES = (np.dtype(np.float32), np.dtype(np.float64))
# the rounds of all components at once (NumPy path) when the components are this many at
# least and none holds more boxes than this (a round costs ~20 array operations; rounds are at
# most the largest component's size)
_ROUNDS_COMPONENTS = 8
_ROUNDS_LARGEST = 512
# classes with fewer candidates than this run the reference loop (its per-call cost is lower)
_SMALL = 32


def _suppress_mask(i: np.ndarray, j: np.ndarray, x0: np.ndarray, y0: np.ndarray,
                   x1: np.ndarray, y1: np.ndarray, areas: np.ndarray,
                   iou_thr: np.floating) -> np.ndarray:
    """For box pairs (i[k], j[k]): True where one suppresses the other, computed exactly as the
    reference computes IoU (see the module docstring)."""
    iw = np.minimum(x1[i], x1[j]) - np.maximum(x0[i], x0[j])
    ih = np.minimum(y1[i], y1[j]) - np.maximum(y0[i], y0[j])
    inter = iw * ih
    ai, aj = areas[i], areas[j]
    union = ai + aj - inter
    overlap = (iw > 0) & (ih > 0) & (ai > 0) & (aj > 0) & (union > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(overlap, inter / np.where(union > 0, union, 1), 0)
    return ~(iou <= iou_thr)


def _greedy_reference(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray,
                      areas: np.ndarray, iou_thr: np.floating, max_out: int) -> list[int]:
    """The reference's loop on boxes already in rank order: kept ranks."""
    alive = np.arange(x0.shape[0])
    kept: list[int] = []
    while alive.size and len(kept) < max_out:
        i = int(alive[0])
        kept.append(i)
        rest = alive[1:]
        mine = np.full(rest.shape, i)
        alive = rest[~_suppress_mask(mine, rest, x0, y0, x1, y1, areas, iou_thr)]
    return kept


def _edges(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, areas: np.ndarray,
           iou_thr: np.floating) -> tuple[np.ndarray, np.ndarray] | None:
    """The suppression edges (better rank, worse rank) among boxes in rank order, or None when
    there are too many x-overlapping pairs for the sweep to pay.

    In left-edge order, the boxes that overlap box p on x and come after it are the positions
    p+1 .. ends[p]-1; a block of positions is compared with the union of their ranges as one
    dense tile (broadcasting, no gathers). A pair may be listed twice (harmless to the greedy
    pass)."""
    n = x0.shape[0]
    # an invalid box never suppresses nor is suppressed
    valid = _valid(x0, y0, x1, y1, areas)
    if valid.size < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    by_x = valid[np.argsort(x0[valid], kind="stable")]
    X0, X1, Y0, Y1, A = x0[by_x], x1[by_x], y0[by_x], y1[by_x], areas[by_x]
    m = by_x.size
    ends = np.searchsorted(X0, X1, side="left")
    counts = ends - np.arange(1, m + 1)
    total = int(counts.sum())
    if total > _PAIRS_PER_BOX * n + _PAIRS_FLOOR:
        return None
    # rows per tile: about the mean range length, so that the tile's wasted corner stays small
    rows = int(min(_TILE_ROWS, max(16, total // m)))
    his: list[np.ndarray] = []
    los: list[np.ndarray] = []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for p0 in range(0, m, rows):
            p1 = min(p0 + rows, m)
            e = int(ends[p0:p1].max())
            c0 = p0 + 1
            if e <= c0:
                continue
            r = slice(p0, p1)
            c = slice(c0, e)
            # The tile holds every pair (row p, column q) with p0 <= p < p1 and p < q < e, and
            # some others: q <= p (the pair again, or the box itself, removed below) and
            # q >= ends[p] (no x overlap: iw <= 0 drops them).
            iw = np.minimum(X1[r, None], X1[None, c])
            iw -= np.maximum(X0[r, None], X0[None, c])
            ih = np.minimum(Y1[r, None], Y1[None, c])
            ih -= np.maximum(Y0[r, None], Y0[None, c])
            hit = iw > 0
            hit &= ih > 0
            inter = iw
            inter *= ih
            union = A[r, None] + A[None, c]
            union -= inter
            # where both boxes are valid and overlap, union >= the larger area > 0 (inter is
            # at most the smaller area, in floats too: every rounding is monotone), so the
            # reference's IoU there is inter / union, finite; elsewhere hit masks it off
            iou = inter
            iou /= union
            hit &= iou > iou_thr
            ri, ci = np.nonzero(hit)
            if ri.size:
                a = by_x[ri + p0]
                b = by_x[ci + c0]
                keep = a != b
                a, b = a[keep], b[keep]
                his.append(np.minimum(a, b))
                los.append(np.maximum(a, b))
    if not his:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(his), np.concatenate(los)


def _greedy_pairs(hi: np.ndarray, lo: np.ndarray, n: int, max_out: int) -> np.ndarray:
    """Kept ranks (ascending, at most max_out) of the greedy pass over n ranked boxes given
    the suppression edges hi -> lo (hi better ranked)."""
    if hi.size == 0:
        return np.arange(min(n, max_out))
    order = np.argsort(hi, kind="stable")
    lows = lo[order]
    bounds = np.searchsorted(hi[order], np.arange(n + 1)).tolist()
    involved = np.zeros(n, bool)
    involved[hi] = True
    involved[lo] = True
    removed = np.zeros(n, bool)
    kept_involved: list[int] = []
    for r in np.nonzero(involved)[0].tolist():
        if removed[r]:
            continue
        kept_involved.append(r)
        b0, b1 = bounds[r], bounds[r + 1]
        if b1 > b0:
            removed[lows[b0:b1]] = True
    keep = ~involved
    keep[kept_involved] = True
    return np.nonzero(keep)[0][:max_out]


def _valid(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray,
           areas: np.ndarray) -> np.ndarray:
    """Positions of the boxes that can suppress or be suppressed: a box with x0 >= x1,
    y0 >= y1, a NaN corner, or an area that is not positive and finite has IoU 0 with every
    box in the reference (its union is NaN or infinite, or the overlap test fails)."""
    return np.nonzero((x0 < x1) & (y0 < y1) & (areas > 0) & np.isfinite(areas))[0]


def _components(x0: np.ndarray, x1: np.ndarray, valid: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """The valid boxes by x component, then by rank (``order``), and where each component
    starts in it (``starts``, one more entry than components): boxes of different components
    never overlap on x, so never suppress each other."""
    by_x = valid[np.argsort(x0[valid], kind="stable")]
    # a component ends where the next left edge is at or past every right edge so far (an
    # x overlap needs min(right) - max(left) > 0, that is the later left edge below a right one)
    reach = np.maximum.accumulate(x1[by_x])
    comp = np.zeros(by_x.size, np.int64)
    if by_x.size > 1:
        np.cumsum(x0[by_x[1:]] >= reach[:-1], out=comp[1:])
    order = by_x[np.lexsort((by_x, comp))]
    count = int(comp[-1]) + 1 if comp.size else 0
    return order, np.searchsorted(comp, np.arange(count + 1))


def _greedy_compiled(order: np.ndarray, starts: np.ndarray, x0: np.ndarray, y0: np.ndarray,
                     x1: np.ndarray, y1: np.ndarray, areas: np.ndarray, iou_thr: np.floating,
                     max_out: int, keep: np.ndarray) -> bool:
    """Mark the selected valid boxes in ``keep`` by the compiled loop
    ``jit/nms_loops.greedy``; False (nothing done) where the loop is unavailable."""
    if x0.dtype not in _LOOP_TYPES or not jit.available():
        return False
    kept = np.zeros(order.size, np.uint8)
    if not jit.call("nms_loops.greedy", starts, x0[order], y0[order], x1[order], y1[order],
                    areas[order], iou_thr, max_out, kept, elements=x0.shape[0] ** 2):
        return False
    keep[order[kept.view(bool)]] = True
    return True


def _greedy_rounds(order: np.ndarray, starts: np.ndarray, x0: np.ndarray, y0: np.ndarray,
                   x1: np.ndarray, y1: np.ndarray, areas: np.ndarray, iou_thr: np.floating,
                   max_out: int, keep: np.ndarray) -> None:
    """Mark the selected valid boxes in ``keep``: the reference's loop run in every component
    at once. Each round, every component with boxes left selects its best one (the first left
    in ``order``) and drops those that it suppresses, with the reference's IoU expression; so
    after round r each such component has selected r boxes, and max_out rounds are enough."""
    alive = order
    comp = np.repeat(np.arange(starts.size - 1), np.diff(starts))
    head = np.empty(alive.size, bool)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(max_out):
            if not alive.size:
                break
            head = head[:alive.size]
            head[0] = True
            np.not_equal(comp[1:], comp[:-1], out=head[1:])
            heads = alive[head]
            keep[heads] = True
            # each box against the head of its component (a head against itself: IoU 1, and
            # dropped as a head anyway)
            h = heads[np.cumsum(head) - 1]
            iw = np.minimum(x1[h], x1[alive]) - np.maximum(x0[h], x0[alive])
            ih = np.minimum(y1[h], y1[alive]) - np.maximum(y0[h], y0[alive])
            inter = iw * ih
            union = areas[h] + areas[alive] - inter
            # valid boxes: positive finite areas, so where both overlap union > 0 (see _edges)
            survive = ~((iw > 0) & (ih > 0) & ~(inter / union <= iou_thr))
            survive &= ~head
            alive = alive[survive]
            comp = comp[survive]


def _select(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray,
            areas: np.ndarray, iou_thr: np.floating, max_out: int) -> np.ndarray:
    """Kept ranks of boxes already in rank order (the reference's greedy result)."""
    n = x0.shape[0]
    if n < _SMALL:
        return np.asarray(_greedy_reference(x0, y0, x1, y1, areas, iou_thr, max_out), np.int64)
    valid = _valid(x0, y0, x1, y1, areas)
    order, starts = _components(x0, x1, valid)
    # invalid boxes are always selected (nothing suppresses them, they suppress nothing)
    keep = np.ones(n, bool)
    keep[valid] = False
    largest = int(np.diff(starts).max()) if starts.size > 1 else 0
    if _greedy_compiled(order, starts, x0, y0, x1, y1, areas, iou_thr, max_out, keep):
        return np.nonzero(keep)[0][:max_out]
    if largest <= _ROUNDS_LARGEST and starts.size - 1 >= _ROUNDS_COMPONENTS:
        _greedy_rounds(order, starts, x0, y0, x1, y1, areas, iou_thr, max_out, keep)
        return np.nonzero(keep)[0][:max_out]
    # the first max_out selections only depend on the boxes ranked before the last of them:
    # try a prefix first when max_out is small against n, growing it until enough are kept
    p = n if max_out >= n // 4 else max(4 * max_out, 256)
    while True:
        p = min(p, n)
        ends = _edges(x0[:p], y0[:p], x1[:p], y1[:p], areas[:p], iou_thr)
        if ends is None:
            return np.asarray(_greedy_reference(x0, y0, x1, y1, areas, iou_thr, max_out),
                              np.int64)
        kept = _greedy_pairs(ends[0], ends[1], p, max_out)
        if kept.size >= max_out or p == n:
            return kept
        p *= 4


@fast_kernel("NonMaxSuppression", versions=(10, 11))
def non_max_suppression_10(boxes: np.ndarray, scores: np.ndarray,
                           max_output_boxes_per_class: np.ndarray | None = None,
                           iou_threshold: np.ndarray | None = None,
                           score_threshold: np.ndarray | None = None, *,
                           center_point_box: int = 0) -> tuple[np.ndarray]:
    """NonMaxSuppression from the overlapping pairs (see the module docstring)."""
    max_out, ft, iou_thr, score_thr = nms_arguments(
        boxes, scores, max_output_boxes_per_class, iou_threshold, score_threshold,
        center_point_box)
    if max_out <= 0:
        return (np.zeros((0, 3), np.int64),)
    y0, x0, y1, x1 = _corners(boxes.astype(ft, copy=False), center_point_box)
    areas = (x1 - x0) * (y1 - y0)
    parts: list[np.ndarray] = []
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            s = scores[b, c]
            cand = np.arange(s.shape[0]) if score_thr is None else np.nonzero(s > score_thr)[0]
            # highest score first; ties keep the lower box index first (as the reference)
            ranked = cand[np.argsort(-s[cand], kind="stable")]
            if ranked.size == 0:
                continue
            kept = _select(x0[b, ranked], y0[b, ranked], x1[b, ranked], y1[b, ranked],
                           areas[b, ranked], iou_thr, max_out)
            if kept.size:
                part = np.empty((kept.size, 3), np.int64)
                part[:, 0] = b
                part[:, 1] = c
                part[:, 2] = ranked[kept]
                parts.append(part)
    if not parts:
        return (np.zeros((0, 3), np.int64),)
    return (np.concatenate(parts),)
