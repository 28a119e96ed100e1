"""Kernels of pyonnx.ops.indexing: index range errors, tie-breaking, reductions, and
differential checks against onnxruntime on one-node models."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError, ResourceLimitExceeded, UnsupportedOperatorError
from tests.ops._oracle import assert_same, run_ort
from tests.ops._oracle import run_kernel as run

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


# ---------------------------------------------------------------------------------- Gather


def test_gather_negative_indices_and_scalar_view():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    (y,) = run("Gather", x, np.array([[-1, 0]]), axis=1)
    assert y.tolist() == [[[3, 0]], [[7, 4]], [[11, 8]]]
    (y,) = run("Gather", x, np.array(-3))
    assert y.tolist() == [0, 1, 2, 3] and np.shares_memory(x, y)
    (s,) = run("Gather", np.array(["a", "b"], dtype=object), np.array(1))
    assert s.dtype == object and s.shape == () and s[()] == "b"


@pytest.mark.parametrize("indices", [np.array([0, 3]), np.array([-4]), np.array(3),
                                     np.array(-4)])
def test_gather_out_of_range_names_the_value(indices):
    x = np.zeros((3, 2))
    bad = int(np.asarray(indices).reshape(-1)[-1])
    with pytest.raises(ExecutionError, match=rf"{bad}.*\[-3, 2\]"):
        run("Gather", x, indices)


def test_gather_elements():
    x = np.arange(12).reshape(3, 4)
    idx = np.array([[2, -1], [0, 1]])
    (y,) = run("GatherElements", x, idx, axis=0)
    assert y.tolist() == [[8, 9], [0, 5]]
    (exp,) = run_ort("GatherElements", [x, idx], {"axis": 0}, opset=21)
    assert_same(y, exp)
    with pytest.raises(ExecutionError, match=r"contains 3.*\[-3, 2\]"):
        run("GatherElements", x, np.array([[3]]), axis=0)
    with pytest.raises(ExecutionError, match="exceed data"):
        run("GatherElements", x, np.zeros((1, 5), np.int64), axis=0)
    with pytest.raises(ExecutionError, match="rank"):
        run("GatherElements", x, np.zeros(2, np.int64))


@pytest.mark.parametrize("batch_dims, data_shape, idx_shape", [
    (0, (2, 3, 4), (5, 2)), (0, (2, 3), (2, 2)), (1, (2, 3, 4), (2, 5, 1)),
    (2, (2, 3, 4, 5), (2, 3, 2)), (1, (2, 3), (2, 1))])
def test_gather_nd_matches_onnxruntime(batch_dims, data_shape, idx_shape):
    rng = np.random.default_rng(1)
    data = rng.standard_normal(data_shape).astype(np.float32)
    k = idx_shape[-1]
    dims = np.array(data_shape[batch_dims:batch_dims + k])
    idx = (rng.integers(0, 1 << 30, size=idx_shape) % dims) - (rng.integers(0, 2, idx_shape) * dims)
    (got,) = run("GatherND", data, idx, batch_dims=batch_dims)
    (exp,) = run_ort("GatherND", [data, idx], {"batch_dims": batch_dims}, opset=21)
    assert_same(got, exp)


def test_gather_nd_errors():
    data = np.zeros((2, 3))
    with pytest.raises(ExecutionError, match=r"contains 3.*\[-3, 2\]"):
        run("GatherND", data, np.array([[0, 3]]))
    with pytest.raises(ExecutionError, match=r"contains -3.*\[-2, 1\]"):
        run("GatherND", data, np.array([[-3, 0]]))
    with pytest.raises(ExecutionError, match="last dim"):
        run("GatherND", data, np.zeros((1, 3), np.int64))
    with pytest.raises(ExecutionError, match="first 1 dims"):
        run("GatherND", data, np.zeros((3, 1), np.int64), batch_dims=1)


# ---------------------------------------------------------------------------------- Scatter


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements_matches_onnxruntime(reduction):
    rng = np.random.default_rng(2)
    data = rng.standard_normal((4, 5)).astype(np.float32)
    idx = rng.integers(-4, 4, size=(3, 5))
    if reduction == "none":
        idx = np.array([[0, 1, 2, 3, -1], [1, 2, 3, 0, 0], [2, 3, 0, 1, 1]])
    upd = rng.standard_normal((3, 5)).astype(np.float32)
    (got,) = run("ScatterElements", data, idx, upd, axis=0, reduction=reduction)
    (exp,) = run_ort("ScatterElements", [data, idx, upd], {"axis": 0, "reduction": reduction},
                     opset=18)
    assert got.shape == exp.shape and got.dtype == exp.dtype
    np.testing.assert_allclose(got, exp, rtol=1e-5)
    assert not np.shares_memory(got, data)


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_nd_matches_onnxruntime(reduction):
    rng = np.random.default_rng(3)
    data = rng.standard_normal((4, 3, 2)).astype(np.float32)
    idx = rng.integers(-4, 4, size=(5, 1))
    if reduction == "none":
        idx = np.array([[0], [-1], [2]])
    upd = rng.standard_normal(idx.shape[:-1] + (3, 2)).astype(np.float32)
    (got,) = run("ScatterND", data, idx, upd, reduction=reduction)
    (exp,) = run_ort("ScatterND", [data, idx, upd], {"reduction": reduction}, opset=18)
    np.testing.assert_allclose(got, exp, rtol=1e-5)


def test_scatter_errors_and_version_reductions():
    data = np.zeros((3, 3), np.float32)
    with pytest.raises(ExecutionError, match=r"contains 3.*\[-3, 2\]"):
        run("ScatterElements", data, np.array([[3]]), np.ones((1, 1), np.float32))
    with pytest.raises(ExecutionError, match="shape of indices"):
        run("ScatterElements", data, np.array([[0]]), np.ones((1, 2), np.float32))
    with pytest.raises(ExecutionError, match=r"contains -4.*\[-3, 2\]"):
        run("Scatter", data, np.array([[-4]]), np.ones((1, 1), np.float32), opset=9)
    with pytest.raises(ExecutionError, match=r"contains 5.*\[-3, 2\]"):
        run("ScatterND", data, np.array([[1, 5]]), np.ones(1, np.float32))
    with pytest.raises(ExecutionError, match="updates of shape"):
        run("ScatterND", data, np.array([[1]]), np.ones((1, 2), np.float32))
    with pytest.raises(UnsupportedOperatorError, match="max"):
        run("ScatterND", data, np.array([[1]]), np.ones((1, 3), np.float32), opset=16,
            reduction="max")


def test_tensor_scatter_linear_and_circular():
    past = np.zeros((2, 3, 5, 2), np.float32)
    upd = np.ones((2, 3, 2, 2), np.float32)
    (y,) = run("TensorScatter", past, upd, np.array([1, 3]))
    assert y[0, :, 1:3].all() and not y[0, :, [0, 3, 4]].any()
    assert y[1, :, 3:5].all() and not y[1, :, :3].any()
    (y,) = run("TensorScatter", past, upd, np.array([0, 4]), mode="circular")
    assert y[1, :, [4, 0]].all() and not y[1, :, 1:4].any()
    with pytest.raises(ExecutionError, match="write_indices contains 4"):
        run("TensorScatter", past, upd, np.array([0, 4]))
    (y,) = run("TensorScatter", past, np.ones((2, 3, 5, 1), np.float32), axis=-1)
    assert y[..., 0].all() and not y[..., 1].any()


# ---------------------------------------------------------------------------------- OneHot & co


def test_one_hot():
    idx = np.array([[1, -1, 5], [0, 2, -4]], dtype=np.int64)
    vals = np.array([2, 7], dtype=np.float32)
    (y,) = run("OneHot", idx, np.array(3), vals, axis=1)
    (exp,) = run_ort("OneHot", [idx, np.array(3), vals], {"axis": 1}, opset=21)
    assert_same(y, exp)
    (y,) = run("OneHot", np.array([1.7, 0.2], np.float32), np.array(2.0, np.float32),
               np.array(["no", "yes"], dtype=object))
    assert y.tolist() == [["no", "yes"], ["yes", "no"]]
    with pytest.raises(ExecutionError, match="depth must be positive"):
        run("OneHot", idx, np.array(0), vals)
    with pytest.raises(ExecutionError, match="axis 4"):
        run("OneHot", idx, np.array(3), vals, axis=4)
    with pytest.raises(ResourceLimitExceeded):
        run("OneHot", idx, np.array(10**12), vals)


def test_compress_and_nonzero():
    x = np.arange(6).reshape(2, 3)
    assert run("Compress", x, np.array([False, True]), axis=0)[0].tolist() == [[3, 4, 5]]
    assert run("Compress", x, np.array([True, False, True]))[0].tolist() == [0, 2]
    with pytest.raises(ExecutionError, match="beyond"):
        run("Compress", x, np.array([False, False, True]), axis=0)
    (nz,) = run("NonZero", np.array([[0, 1], [2, 0]]))
    assert nz.dtype == np.int64 and nz.tolist() == [[0, 1], [1, 0]]
    assert run("NonZero", np.array(3.0))[0].shape == (1, 1)
    assert run("NonZero", np.array(0.0))[0].shape == (1, 0)


# ---------------------------------------------------------------------------------- TopK, Unique


@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("axis", [0, -1])
def test_topk_ties_take_the_lower_index_first(largest, axis):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 4, size=(6, 7)).astype(np.float32)
    k = np.array([4], dtype=np.int64)
    vals, idx = run("TopK", x, k, axis=axis, largest=largest, num_outputs=2)
    ev, ei = run_ort("TopK", [x, k], {"axis": axis, "largest": largest}, opset=21, outputs=2)
    assert_same(vals, ev)
    assert_same(idx, ei)


def test_topk_versions_types_and_k_errors():
    x = np.array([3, 1, 3, 2], dtype=np.uint8)
    v, i = run("TopK", x, opset=1, k=2)
    assert v.tolist() == [3, 3] and i.tolist() == [0, 2] and v.dtype == np.uint8
    v, i = run("TopK", x, np.array([0]), opset=10)
    assert v.shape == (0,) and i.dtype == np.int64
    with pytest.raises(ExecutionError, match=r"k=5.*\[0, 4\]"):
        run("TopK", x, np.array([5]))
    with pytest.raises(ExecutionError, match=r"k=-1.*\[0, 4\]"):
        run("TopK", x, np.array([-1]))


def test_unique_sorted_and_first_occurrence():
    x = np.array([2, 1, 1, 3, 4, 3], dtype=np.int32)
    y, idx, inv, cnt = run("Unique", x, sorted=0, num_outputs=4)
    assert y.tolist() == [2, 1, 3, 4] and idx.tolist() == [0, 1, 3, 4]
    assert inv.tolist() == [0, 1, 1, 2, 3, 2] and cnt.tolist() == [1, 2, 2, 1]
    x = np.array([[[1., 1.], [0., 1.], [2., 1.], [0., 1.]],
                  [[1., 1.], [0., 1.], [2., 1.], [0., 1.]]], dtype=np.float32)
    for sorted_ in (0, 1):
        got = run("Unique", x, axis=1, sorted=sorted_, num_outputs=4)
        exp = run_ort("Unique", [x], {"axis": 1, "sorted": sorted_}, opset=21, outputs=4)
        for g, e in zip(got, exp):
            assert_same(g, e)
    s = np.array([["b", "a"], ["b", "a"], ["a", "c"]], dtype=object)
    y, idx, inv, cnt = run("Unique", s, axis=0, num_outputs=4)
    assert y.tolist() == [["a", "c"], ["b", "a"]] and inv.tolist() == [1, 1, 0]
    assert idx.tolist() == [2, 0] and cnt.tolist() == [1, 2]


# ---------------------------------------------------------------------------------- CumSum/Prod


@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_cumsum_matches_onnxruntime(exclusive, reverse, dtype):
    x = np.arange(1, 13).reshape(3, 4).astype(dtype)
    ax = np.array(-1, np.int32)
    (got,) = run("CumSum", x, ax, exclusive=exclusive, reverse=reverse)
    (exp,) = run_ort("CumSum", [x, ax], {"exclusive": exclusive, "reverse": reverse}, opset=21)
    assert_same(got, exp)


def test_cumprod():
    x = np.array([1, 2, 3], dtype=np.float32)
    ax = np.array(0)
    assert run("CumProd", x, ax)[0].tolist() == [1, 2, 6]
    assert run("CumProd", x, ax, exclusive=1)[0].tolist() == [1, 1, 2]
    assert run("CumProd", x, ax, reverse=1)[0].tolist() == [6, 6, 3]
    assert run("CumProd", x, ax, exclusive=1, reverse=1)[0].tolist() == [6, 3, 1]
    with pytest.raises(ExecutionError, match="out of range"):
        run("CumProd", x, np.array(1))
