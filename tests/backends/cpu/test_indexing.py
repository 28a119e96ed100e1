"""The CPU provider's TopK and GatherND (pyonnx.backends.cpu.indexing) equal the reference
kernels exactly: random shapes, axes and k, many ties, NaN, signed zeros, infinities, integer
types, negative indices, the types left to the reference, and the same errors."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import indexing as fast
from pyonnx.backends.cpu.registry import get_fast_kernel
from pyonnx.errors import PyOnnxError
from pyonnx.ops import indexing as reference


def _equal(got: tuple[np.ndarray, ...], want: tuple[np.ndarray, ...]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == np.ascontiguousarray(w).tobytes()


def test_registered_for_the_reference_versions():
    for v, fn in ((1, fast.topk_1), (10, fast.topk_10), (11, fast.topk), (24, fast.topk)):
        assert get_fast_kernel("", "TopK", v) is fn
    for v in (11, 12, 13):
        assert get_fast_kernel("", "GatherND", v) is fast.gather_nd


def _values(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        # few distinct values (ties), with NaNs of both signs, signed zeros and infinities
        x = rng.choice(np.array([-np.inf, -2.5, -1, -0.0, 0.0, 0.5, 1, 3, np.inf, np.nan,
                                 -np.nan], np.float32), size=shape)
        if rng.random() < 0.5:
            x = np.where(rng.random(shape) < 0.5, x, rng.standard_normal(shape))
        return x.astype(dtype)
    info = np.iinfo(dtype)
    pool = np.array([info.min, info.min + 1, -1 if info.min else 0, 0, 1, 7, info.max - 1,
                     info.max], np.int64)
    return rng.choice(pool, size=shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int16, np.int32, np.uint8,
                                   np.uint16, np.uint32, np.float64, np.int64])
def test_topk_random(dtype):
    rng = np.random.default_rng(0)
    for _ in range(40):
        rank = int(rng.integers(1, 4))
        shape = tuple(int(v) for v in rng.integers(1, 9, size=rank))
        x = _values(rng, shape, dtype)
        axis = int(rng.integers(-rank, rank))
        n = shape[axis]
        k = int(rng.integers(1, n + 1))
        K = np.array([k], np.int64)
        largest = int(rng.integers(0, 2))
        _equal(fast.topk(x, K, axis=axis, largest=largest),
               reference.topk(x, K, axis=axis, largest=largest))
        _equal(fast.topk_10(x, K, axis=axis), reference.topk_10(x, K, axis=axis))
        _equal(fast.topk_1(x, k=k, axis=axis), reference.topk_1(x, k=k, axis=axis))


def test_topk_detection_sizes():
    """SSDlite's TopK (300 of 3234 scores), with distinct values and all equal."""
    rng = np.random.default_rng(1)
    K = np.array([300], np.int64)
    for x in (rng.random(3234).astype(np.float32), np.full(3234, 0.011, np.float32),
              np.round(rng.random(3234) * 20).astype(np.float32) / 20):
        for largest in (0, 1):
            _equal(fast.topk(x, K, largest=largest), reference.topk(x, K, largest=largest))
    x = rng.standard_normal((4, 1000, 3)).astype(np.float32)
    _equal(fast.topk(x, K, axis=1), reference.topk(x, K, axis=1))


def test_topk_left_to_the_reference_and_errors():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    _equal(fast.topk(x, np.array([0], np.int64)), reference.topk(x, np.array([0], np.int64)))
    empty = np.zeros((0, 3), np.float32)
    _equal(fast.topk(empty, np.array([2], np.int64)), reference.topk(empty, np.array([2])))
    for args, kw in (((x, np.array([4], np.int64)), {}), ((x, np.array([1], np.int64)),
                                                         {"axis": 2}),
                     ((x, np.array([1, 2], np.int64)), {}),
                     ((x, np.array([-1], np.int64)), {})):
        with pytest.raises(PyOnnxError) as want:
            reference.topk(*args, **kw)
        with pytest.raises(PyOnnxError) as got:
            fast.topk(*args, **kw)
        assert str(got.value) == str(want.value)


def test_gather_nd_random():
    rng = np.random.default_rng(2)
    for _ in range(60):
        rank = int(rng.integers(1, 5))
        shape = tuple(int(v) for v in rng.integers(1, 6, size=rank))
        data = rng.standard_normal(shape).astype(rng.choice([np.float32, np.int64]))
        k = int(rng.integers(1, rank + 1))
        lead = tuple(int(v) for v in rng.integers(0, 4, size=int(rng.integers(0, 3))))
        cols = [rng.integers(-shape[j], shape[j], size=lead + (1,)) for j in range(k)]
        indices = np.concatenate(cols, axis=-1).astype(rng.choice([np.int64, np.int32]))
        _equal(fast.gather_nd(data, indices), reference.gather_nd(data, indices))


def test_gather_nd_batch_dims_and_errors():
    rng = np.random.default_rng(3)
    data = rng.standard_normal((2, 3, 4)).astype(np.float32)
    idx = rng.integers(0, 3, (2, 5, 1))
    _equal(fast.gather_nd(data, idx, batch_dims=1), reference.gather_nd(data, idx, batch_dims=1))
    for bad_data, bad_idx, kw in ((data, np.array([[3]]), {}), (data, np.array([[-4]]), {}),
                                  (data, np.zeros((2, 4), np.int64), {}),
                                  (data, np.zeros((2,), np.float32), {}),
                                  (data, np.zeros((3, 1), np.int64), {"batch_dims": 1})):
        with pytest.raises(PyOnnxError) as want:
            reference.gather_nd(bad_data, bad_idx, **kw)
        with pytest.raises(PyOnnxError) as got:
            fast.gather_nd(bad_data, bad_idx, **kw)
        assert str(got.value) == str(want.value)
