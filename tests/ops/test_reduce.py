"""Reduce* and ArgMax/ArgMin kernels: edge cases the backend suite misses, error paths, and
agreement with onnxruntime on one-node models."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError
from pyonnx.ops.registry import registered_versions
from tests.ops._oracle import run_ort, schema_versions
from tests.ops._oracle import kernel as k

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

REDUCE_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
              "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]


def test_every_schema_version_registered():
    for op in REDUCE_OPS + ["ArgMax", "ArgMin"]:
        assert list(registered_versions("", op)) == schema_versions(op), op


@pytest.mark.parametrize("op,expected", [
    ("ReduceSum", 0.0), ("ReduceProd", 1.0), ("ReduceMax", -np.inf), ("ReduceMin", np.inf),
    ("ReduceL1", 0.0), ("ReduceL2", 0.0), ("ReduceSumSquare", 0.0),
    ("ReduceLogSum", -np.inf), ("ReduceLogSumExp", -np.inf)])
def test_empty_set_gives_identity(op, expected):
    x = np.zeros((2, 0, 4), np.float32)
    (y,) = k(op, 18)(x, np.array([1], np.int64), keepdims=1)
    assert y.dtype == np.float32 and y.shape == (2, 1, 4)
    assert np.all(y == expected)


@pytest.mark.parametrize("dtype,op,expected", [
    (np.int32, "ReduceMax", np.iinfo(np.int32).min),
    (np.int32, "ReduceMin", np.iinfo(np.int32).max),
    (np.uint8, "ReduceMax", 0), (np.uint8, "ReduceMin", 255),
    (np.bool_, "ReduceMax", False), (np.bool_, "ReduceMin", True)])
def test_empty_max_min_integer_and_bool(dtype, op, expected):
    x = np.zeros((0, 3), dtype)
    (y,) = k(op, 20)(x, np.array([0], np.int64), keepdims=0)
    assert y.dtype == dtype and y.shape == (3,)
    assert np.all(y == expected)


def test_bool_max_min():
    x = np.array([[True, False], [False, False]])
    assert k("ReduceMax", 20)(x, np.array([1], np.int64), keepdims=0)[0].tolist() == [True, False]
    assert k("ReduceMin", 20)(x, np.array([0], np.int64), keepdims=0)[0].tolist() == [False, False]


def test_keepdims_0_negative_axes():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    (y,) = k("ReduceSum", 13)(x, np.array([-1, -3], np.int64), keepdims=0)
    assert y.shape == (3,)
    np.testing.assert_array_equal(y, x.sum(axis=(0, 2)))
    (y,) = k("ReduceMean", 13)(x, axes=[-2], keepdims=0)
    assert y.shape == (2, 4)
    np.testing.assert_allclose(y, x.mean(axis=1))


def test_reduce_all_to_scalar_is_an_array():
    (y,) = k("ReduceSum", 13)(np.ones((2, 3), np.float32), None, keepdims=0)
    assert isinstance(y, np.ndarray) and y.shape == () and y == 6


def test_attribute_versions_reduce_all_without_axes():
    x = np.arange(6, dtype=np.int64).reshape(2, 3)
    (y,) = k("ReduceSum", 11)(x)
    assert y.shape == (1, 1) and y.dtype == np.int64 and y[0, 0] == 15


def test_noop_with_empty_axes_keeps_element_wise_steps():
    x = np.array([[1.0, -2.0], [3.0, 4.0]], np.float32)
    empty = np.array([], np.int64)
    assert np.array_equal(k("ReduceSum", 13)(x, empty, noop_with_empty_axes=1)[0], x)
    assert np.array_equal(k("ReduceSumSquare", 18)(x, None, noop_with_empty_axes=1)[0], x * x)
    assert np.array_equal(k("ReduceL1", 18)(x, empty, noop_with_empty_axes=1)[0], np.abs(x))
    np.testing.assert_allclose(k("ReduceLogSumExp", 18)(x, None, noop_with_empty_axes=1)[0], x,
                               rtol=1e-6)
    # Without noop, empty axes reduce everything.
    (y,) = k("ReduceSum", 13)(x, empty, keepdims=1)
    assert y.shape == (1, 1) and y[0, 0] == 6


def test_axis_out_of_range_names_axis():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ExecutionError, match="axes 2 is out of range"):
        k("ReduceSum", 13)(x, np.array([2], np.int64))
    with pytest.raises(ExecutionError, match="-3"):
        k("ReduceMax", 1)(x, axes=[-3])
    with pytest.raises(ExecutionError, match="more than once"):
        k("ReduceMean", 18)(x, np.array([1, -1], np.int64))
    with pytest.raises(ExecutionError, match="axis 5"):
        k("ArgMax", 13)(x, axis=5)


def test_integer_mean_truncates_and_matches_onnxruntime():
    x = np.array([[-3, -4], [3, 4], [-7, 0]], np.int32)
    (y,) = k("ReduceMean", 18)(x, np.array([1], np.int64), keepdims=0)
    assert y.dtype == np.int32
    assert y.tolist() == [-3, 3, -3]
    np.testing.assert_array_equal(y, run_ort("ReduceMean", {"x": x, "a": np.array([1])}, opset=18,
                                             keepdims=0)[0])


def test_integer_sum_stays_in_type():
    x = np.array([1, 2, 3], np.int32)
    (y,) = k("ReduceSum", 13)(x, None, keepdims=0)
    assert y.dtype == np.int32 and y == 6


def test_float16_sum_accumulates_in_float32():
    x = np.full(4096, 0.1, np.float16)
    (y,) = k("ReduceSum", 13)(x, None, keepdims=0)
    assert y.dtype == np.float16
    np.testing.assert_allclose(float(y), 4096 * float(np.float16(0.1)), rtol=1e-3)
    (y,) = k("ReduceSumSquare", 18)(np.full(4, 300, np.float16), None, keepdims=0)
    assert np.isinf(y) and y > 0  # 360000 exceeds the float16 range: +inf after the cast
    (y,) = k("ReduceL2", 18)(np.full(4, 300, np.float16), None, keepdims=0)
    assert y == 600  # no overflow in the intermediate square


def test_log_sum_exp_is_stable():
    x = np.array([[1000.0, 1000.0], [-np.inf, -np.inf]], np.float64)
    (y,) = k("ReduceLogSumExp", 18)(x, np.array([1], np.int64), keepdims=0)
    np.testing.assert_allclose(y[0], 1000 + np.log(2))
    assert y[1] == -np.inf


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("keepdims", [0, 1])
def test_matches_onnxruntime(op, keepdims):
    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 2.0, (3, 4, 5)).astype(np.float32)
    axes = np.array([0, -1], np.int64)
    (y,) = k(op, 18)(x, axes, keepdims=keepdims)
    ref = run_ort(op, {"x": x, "axes": axes}, opset=18, keepdims=keepdims)[0]
    assert y.dtype == ref.dtype and y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("last", [0, 1])
def test_arg_select_last_index(op, last):
    x = np.array([[2, 5, 5, 1], [1, 1, 0, 0]], np.float32)
    (y,) = k(op, 13)(x, axis=-1, keepdims=0, select_last_index=last)
    assert y.dtype == np.int64 and y.shape == (2,)
    ref = run_ort(op, {"x": x}, opset=13, axis=-1, keepdims=0, select_last_index=last)[0]
    np.testing.assert_array_equal(y, ref)


def test_arg_keepdims_and_empty_axis():
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    (y,) = k("ArgMin", 11)(x, axis=1)
    assert y.shape == (3, 1) and y.dtype == np.int64 and y.ravel().tolist() == [0, 0, 0]
    with pytest.raises(ExecutionError, match="size 0"):
        k("ArgMax", 13)(np.zeros((2, 0), np.float32), axis=1)
