"""The CPU provider's NonMaxSuppression equals the reference kernel: same selections in the same
order, same errors (random clustered boxes, ties, thresholds, degenerate boxes, every path: each
test runs with the compiled loop where numba is installed, and with the NumPy paths)."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import jit, nms
from pyonnx.backends.cpu.registry import get_fast_kernel
from pyonnx.errors import ExecutionError
from pyonnx.ops.image import non_max_suppression_10 as reference

fast = nms.non_max_suppression_10


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def path(request):  # type: ignore[no-untyped-def]
    """Every test twice: with the compiled loop (where available) and with NumPy only."""
    if request.param == "compiled":
        yield request.param
    else:
        with jit.disabled():
            yield request.param


def _boxes(rng, batches, n, clusters, center, dtype=np.float32):
    """[batches, n, 4] boxes around a few cluster centres (so that many overlap), corners in
    either diagonal order, or centre form."""
    centres = rng.uniform(0, 100, (batches, clusters, 2))
    which = rng.integers(0, clusters, (batches, n))
    c = np.take_along_axis(centres, which[..., None], axis=1) + rng.normal(0, 3, (batches, n, 2))
    wh = rng.uniform(1, 20, (batches, n, 2))
    if center:
        out = np.concatenate([c[..., ::-1], wh[..., ::-1]], axis=-1)  # xc, yc, w, h
    else:
        p0, p1 = c - wh / 2, c + wh / 2
        swap = rng.random((batches, n, 1)) < 0.3
        out = np.concatenate([np.where(swap, p1, p0), np.where(swap, p0, p1)], axis=-1)
    return out.astype(dtype)


def _same(*args, **kw):
    want = reference(*args, **kw)[0]
    got = fast(*args, **kw)[0]
    assert got.dtype == np.int64 and got.shape[1:] == (3,)
    np.testing.assert_array_equal(got, want)
    return got


def test_registered_for_the_reference_versions():
    for v in (10, 11):
        assert get_fast_kernel("", "NonMaxSuppression", v) is fast


@pytest.mark.parametrize("seed", range(12))
def test_random_clusters(seed):
    rng = np.random.default_rng(seed)
    batches, classes = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    n = int(rng.choice([1, 5, 31, 32, 100, 400]))
    center = int(rng.integers(0, 2))
    boxes = _boxes(rng, batches, n, int(rng.integers(1, 6)), center)
    # coarse scores: many ties, which the reference breaks by the lower box index
    scores = (rng.integers(0, 8, (batches, classes, n)) / 8).astype(np.float32)
    max_out = np.array([int(rng.choice([1, 3, 10, 1000, 2**62]))], np.int64)
    iou = np.array([rng.choice([0.0, 0.1, 0.5, 0.7, 1.0])], np.float32)
    st = None if rng.random() < 0.5 else np.array([0.3], np.float32)
    _same(boxes, scores, max_out, iou, st, center_point_box=center)


def test_many_boxes_small_max_out_uses_a_prefix():
    rng = np.random.default_rng(7)
    boxes = _boxes(rng, 1, 3000, 40, 0)
    scores = rng.random((1, 2, 3000)).astype(np.float32)
    for k in (1, 5, 50, 700, 3000):
        got = _same(boxes, scores, np.array([k], np.int64), np.array([0.4], np.float32))
        assert 0 < got.shape[0] <= 2 * k


def test_integer_grid_iou_at_the_threshold():
    # corners on a grid of quarters: many IoUs are exactly 1/2, 1/3, 1/4 (kept at the threshold)
    rng = np.random.default_rng(13)
    for n in (40, 300):
        p0 = rng.integers(0, 24, (1, n, 2)) / 4
        wh = rng.integers(1, 16, (1, n, 2)) / 4
        boxes = np.concatenate([p0, p0 + wh], axis=-1).astype(np.float32)
        scores = (rng.integers(0, 5, (1, 2, n)) / 4).astype(np.float32)
        for thr in (0.25, 1 / 3, 0.5, 0.0):
            _same(boxes, scores, np.array([n], np.int64), np.array([thr], np.float32))


def test_compiled_loop_runs(path, request):
    if path != "compiled":
        pytest.skip("the NumPy path runs no loop")
    loop_calls = request.getfixturevalue("loop_calls")
    rng = np.random.default_rng(4)
    boxes = _boxes(rng, 1, 400, 6, 0)
    scores = rng.random((1, 3, 400)).astype(np.float32)
    _same(boxes, scores, np.array([25], np.int64), np.array([0.45], np.float32))
    ran = loop_calls.ran("nms_loops")
    assert ran and all(ran)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_shifted_classes_every_path(path, monkeypatch):
    """Many x components (torchvision's batched NMS): the compiled loop, or on the NumPy path
    the rounds over all components at once (checked to run), with NaN boxes among them."""
    ran = []
    real = nms._greedy_rounds
    monkeypatch.setattr(nms, "_greedy_rounds", lambda *a: ran.append(1) or real(*a))
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        per, classes = int(rng.integers(3, 80)), int(rng.integers(8, 20))
        b = _boxes(rng, 1, per * classes, int(rng.integers(1, 4)), 0)[0]
        if seed % 2:
            b = np.round(b * 2) / 2  # IoUs exactly at the threshold
        b += (np.repeat(np.arange(classes), per) * 150.0)[:, None].astype(np.float32)
        b[::11] = np.nan
        scores = (rng.integers(0, 6, (1, 2, per * classes)) / 6).astype(np.float32)
        for k in (3, 10**6):
            _same(b[None], scores, np.array([k], np.int64), np.array([0.5], np.float32))
    assert bool(ran) == (path == "numpy" or not jit.available())


def test_batched_nms_shifted_classes():
    # torchvision's batched NMS: one class, boxes of each real class shifted apart
    rng = np.random.default_rng(3)
    per, classes = 300, 12
    b = _boxes(rng, 1, per * classes, 3, 0)[0]
    b += (np.repeat(np.arange(classes), per) * 1000.0)[:, None].astype(np.float32)
    scores = np.full((1, 1, per * classes), 1 / 91, np.float32)  # all tied
    got = _same(b[None], scores, np.array([2**62], np.int64), np.array([0.55], np.float32),
                np.array([0.001], np.float32))
    assert got.shape[0] > classes


# the reference kernel warns on the NaN and infinite boxes (its union of two inf areas)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_degenerate_boxes():
    rng = np.random.default_rng(11)
    boxes = _boxes(rng, 1, 200, 4, 0)
    boxes[0, ::7] = np.nan
    boxes[0, 3::11, 2] = boxes[0, 3::11, 0]  # zero height
    boxes[0, 5::13] = [[1, 1, 1, 1]]  # a point
    boxes[0, 6::17] = [[0, 0, np.inf, np.inf]]
    boxes[0, 8::19] = [[-np.inf, 0, 5, 5]]
    scores = rng.random((1, 2, 200)).astype(np.float32)
    scores[0, 0, ::9] = np.nan
    for thr in (0.0, 0.3, 1.0):
        _same(boxes, scores, np.array([100], np.int64), np.array([thr], np.float32))


def test_center_form_negative_sizes():
    rng = np.random.default_rng(5)
    boxes = _boxes(rng, 1, 120, 3, 1)
    boxes[0, ::3, 2:] *= -1  # negative width and height: positive area, inverted corners
    scores = rng.random((1, 1, 120)).astype(np.float32)
    _same(boxes, scores, np.array([50], np.int64), np.array([0.2], np.float32),
          center_point_box=1)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_types(dtype):
    rng = np.random.default_rng(2)
    boxes = _boxes(rng, 2, 150, 5, 0, dtype)
    scores = rng.random((2, 3, 150)).astype(dtype)
    _same(boxes, scores, np.array([40], np.int64), np.array([0.5], np.float32),
          np.array([0.2], np.float32))


def test_dense_cluster_falls_back_to_the_reference_loop(monkeypatch):
    rng = np.random.default_rng(9)
    boxes = _boxes(rng, 1, 500, 2, 0)
    scores = rng.random((1, 2, 500)).astype(np.float32)
    args = (boxes, scores, np.array([1000], np.int64), np.array([0.5], np.float32))
    want = reference(*args)[0]
    monkeypatch.setattr(nms, "_PAIRS_PER_BOX", 0)
    monkeypatch.setattr(nms, "_PAIRS_FLOOR", 0)
    np.testing.assert_array_equal(fast(*args)[0], want)


def test_empty_and_absent_inputs():
    boxes = np.zeros((1, 0, 4), np.float32)
    scores = np.zeros((1, 2, 0), np.float32)
    _same(boxes, scores, np.array([5], np.int64))
    rng = np.random.default_rng(1)
    b = _boxes(rng, 1, 40, 2, 0)
    s = rng.random((1, 1, 40)).astype(np.float32)
    _same(b, s)  # no max_output_boxes_per_class: nothing selected
    _same(b, s, np.array([0], np.int64))
    _same(b, s, np.array([10], np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32))
    _same(b, s, np.array([10], np.int64), None, np.array([2.0], np.float32))  # none pass


@pytest.mark.parametrize("bad", [
    dict(boxes=np.zeros((1, 3, 3), np.float32)),
    dict(scores=np.zeros((1, 1, 4), np.float32)),
    dict(iou_threshold=np.array([1.5], np.float32)),
    dict(center_point_box=2),
])
def test_same_errors(bad):
    kw = dict(boxes=np.zeros((1, 3, 4), np.float32), scores=np.zeros((1, 1, 3), np.float32),
              max_output_boxes_per_class=np.array([3], np.int64),
              iou_threshold=np.array([0.5], np.float32))
    kw.update(bad)
    with pytest.raises(ExecutionError) as want:
        reference(**kw)
    with pytest.raises(ExecutionError) as got:
        fast(**kw)
    assert str(got.value) == str(want.value)
