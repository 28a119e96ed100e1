"""Kernels of pyonnx.ops.tensor: edge cases the backend suite misses, error paths, and
differential checks against onnxruntime on one-node models."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError, ResourceLimitExceeded
from tests.ops._oracle import assert_same, run_ort
from tests.ops._oracle import run_kernel as run

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


# ---------------------------------------------------------------------------------- Reshape


def test_reshape_zero_copies_and_minus_one_infers_and_is_a_view():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    (y,) = run("Reshape", x, np.array([0, -1], dtype=np.int64))
    assert y.shape == (2, 12)
    assert np.shares_memory(x, y)


def test_reshape_allowzero_makes_zero_dims():
    x = np.zeros((0, 3), dtype=np.float32)
    (y,) = run("Reshape", x, np.array([3, 0], dtype=np.int64), allowzero=1)
    assert y.shape == (3, 0)


def test_reshape_v1_uses_the_shape_attribute():
    (y,) = run("Reshape", np.arange(6), opset=1, shape=[3, -1])
    assert y.shape == (3, 2)


@pytest.mark.parametrize("shape, allowzero, msg", [
    ([5, -1], 0, "cannot reshape"),
    ([-1, -1], 0, "more than one -1"),
    ([2, -2, 3], 0, "invalid dimension -2"),
    ([0, -1], 1, "both 0 and -1"),
    ([4, 7], 0, "cannot reshape"),
    ([1, 1, 1, 0], 0, "no dimension 3"),
])
def test_reshape_errors(shape, allowzero, msg):
    x = np.zeros((2, 3, 4))
    with pytest.raises(ExecutionError, match=msg):
        run("Reshape", x, np.array(shape, dtype=np.int64), allowzero=allowzero)


def test_flatten_squeeze_unsqueeze_are_views():
    x = np.arange(24.0).reshape(1, 2, 3, 4)
    for op, args, kw in [("Flatten", (), {"axis": -2}), ("Squeeze", (), {}),
                         ("Unsqueeze", (np.array([0, -1]),), {})]:
        (y,) = run(op, x, *args, **kw)
        assert np.shares_memory(x, y)
    assert run("Flatten", x, axis=0)[0].shape == (1, 24)
    assert run("Flatten", x, axis=4)[0].shape == (24, 1)
    assert run("Squeeze", x)[0].shape == (2, 3, 4)
    assert run("Unsqueeze", x, np.array([5, 0]))[0].shape == (1, 1, 2, 3, 4, 1)
    assert run("Squeeze", x, opset=11, axes=[0])[0].shape == (2, 3, 4)
    assert run("Unsqueeze", x, opset=11, axes=[-1])[0].shape == (1, 2, 3, 4, 1)


def test_squeeze_unsqueeze_errors():
    x = np.zeros((1, 2))
    with pytest.raises(ExecutionError, match="size 2, not 1"):
        run("Squeeze", x, np.array([1]))
    with pytest.raises(ExecutionError, match="out of range"):
        run("Squeeze", x, np.array([2]))
    with pytest.raises(ExecutionError, match="more than once"):
        run("Unsqueeze", x, np.array([0, -4]))
    with pytest.raises(ExecutionError, match="out of range"):
        run("Flatten", x, axis=3)


def test_transpose_default_reverses_and_bad_perm_fails():
    x = np.arange(6).reshape(1, 2, 3)
    assert run("Transpose", x)[0].shape == (3, 2, 1)
    with pytest.raises(ExecutionError, match="not a permutation"):
        run("Transpose", x, perm=[0, 0, 1])


# ---------------------------------------------------------------------------------- Concat/Split


def test_concat_checks_shapes():
    a, b = np.zeros((2, 3)), np.zeros((3, 3))
    assert run("Concat", a, b, axis=0)[0].shape == (5, 3)
    with pytest.raises(ExecutionError, match=r"\[2, 3\], \[3, 3\]"):
        run("Concat", a, b, axis=1)
    assert run("Concat", np.zeros((0, 3)), a, axis=-2)[0].shape == (2, 3)


def test_split_versions():
    x = np.arange(10)
    outs = run("Split", x, num_outputs=4, axis=0, opset=18)
    assert [o.tolist() for o in outs] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    outs = run("Split", x, np.array([2, 8]), num_outputs=2, opset=13)
    assert [len(o) for o in outs] == [2, 8]
    outs = run("Split", x, num_outputs=2, opset=11, split=[3, 7])
    assert [len(o) for o in outs] == [3, 7]
    outs = run("Split", x, num_outputs=5, opset=2)
    assert [len(o) for o in outs] == [2] * 5
    outs = run("Split", x, np.array([4, 6]), num_outputs=2, opset=1)
    assert [len(o) for o in outs] == [4, 6]
    with pytest.raises(ExecutionError, match="sum to 10"):
        run("Split", x, np.array([2, 7]), num_outputs=2)
    with pytest.raises(ExecutionError, match="3 equal parts"):
        run("Split", x, num_outputs=3, opset=13)
    with pytest.raises(ExecutionError, match="into 4 parts"):
        run("Split", np.arange(5), num_outputs=4, opset=18)


# ---------------------------------------------------------------------------------- Slice


def test_slice_matches_onnxruntime_on_random_cases():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 6, 7)).astype(np.float32)
    big = np.iinfo(np.int64).max
    for _ in range(60):
        n = int(rng.integers(1, 4))
        axes = rng.choice([-3, -2, -1, 0, 1, 2], size=n, replace=False)
        if len(set(a % 3 for a in axes)) != n:
            continue
        starts = rng.choice([-big, -9, -3, -1, 0, 1, 2, 5, 9, big], size=n)
        ends = rng.choice([-big, -9, -3, -1, 0, 1, 4, 6, 9, big], size=n)
        steps = rng.choice([-3, -2, -1, 1, 2, 3], size=n)
        # onnxruntime reads end=INT64_MAX with a negative step as "through index 0"; the
        # spec clamps it to dim-1, which selects nothing
        if any(e == big and st < 0 for e, st in zip(ends, steps)):
            continue
        args = [np.array(v, dtype=np.int64) for v in (starts, ends, axes, steps)]
        (got,) = run("Slice", x, *args)
        (exp,) = run_ort("Slice", [x, *args], opset=21)
        assert_same(got, exp)


def test_slice_v1_attributes_and_zero_step():
    x = np.arange(10)
    (y,) = run("Slice", x, opset=1, starts=[-3], ends=[1000])
    assert y.tolist() == [7, 8, 9]
    with pytest.raises(ExecutionError, match="step"):
        run("Slice", x, np.array([0]), np.array([5]), np.array([0]), np.array([0]))


# ---------------------------------------------------------------------------------- Pad & co


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "wrap"])
@pytest.mark.parametrize("pads", [[0, 2, 0, -1], [1, -1, -1, 2], [2, 1, 1, 1], [-1, 0, 0, -2]])
def test_pad_matches_onnxruntime(mode, pads):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    p = np.array(pads, dtype=np.int64)
    (got,) = run("Pad", x, p, np.array(1.5, np.float32), mode=mode)
    (exp,) = run_ort("Pad", [x, p, np.array(1.5, np.float32)], {"mode": mode}, opset=21)
    assert_same(got, exp)


def test_pad_axes_strings_and_old_versions():
    x = np.array([["a", "b"]], dtype=object)
    (y,) = run("Pad", x, np.array([1, 1]), None, np.array([-1]))
    assert y.tolist() == [["", "a", "b", ""]]
    (y,) = run("Pad", np.ones((1, 2), np.float32), opset=2, pads=[0, 1, 0, 0], value=7.0)
    assert y.tolist() == [[7, 1, 1]] and y.dtype == np.float32
    (y,) = run("Pad", np.ones((1, 2), np.float32), opset=1, paddings=[1, 0, 0, 0])
    assert y.shape == (2, 2)
    with pytest.raises(ExecutionError, match="2 \\* 2 entries"):
        run("Pad", np.ones((2, 2)), np.array([1, 1]))


def test_pad_refuses_huge_output():
    with pytest.raises(ResourceLimitExceeded):
        run("Pad", np.ones((2, 2)), np.array([0, 0, 10**6, 10**6]), max_bytes=1 << 20)


def test_center_crop_pad():
    x = np.arange(20, dtype=np.float32).reshape(4, 5)
    (y,) = run("CenterCropPad", x, np.array([2, 8]))
    assert y.shape == (2, 8)
    assert y[:, 1:6].tolist() == x[1:3].tolist() and not y[:, 0].any() and not y[:, 6:].any()


def test_expand_tile_and_limits():
    x = np.array([[1], [2]], dtype=np.int32)
    (y,) = run("Expand", x, np.array([2, 1, 3]))
    assert y.shape == (2, 2, 3) and y.flags.writeable
    with pytest.raises(ExecutionError, match="cannot be broadcast"):
        run("Expand", x, np.array([3, 3]))
    with pytest.raises(ResourceLimitExceeded):
        run("Expand", x, np.array([10**9, 1, 10**9]))
    (y,) = run("Tile", x, np.array([2, 3]))
    assert y.shape == (4, 3)
    with pytest.raises(ResourceLimitExceeded):
        run("Tile", x, np.array([10**9, 10**9]))
    with pytest.raises(ExecutionError, match="one entry per"):
        run("Tile", x, np.array([2]))
    (y,) = run("Tile", x, np.array(3), np.array(1), opset=1)
    assert y.shape == (2, 3)


# ---------------------------------------------------------------------------------- creation


def test_shape_start_end_and_size():
    x = np.zeros((2, 3, 4))
    assert run("Shape", x, start=-1)[0].tolist() == [4]
    assert run("Shape", x, end=-1)[0].tolist() == [2, 3]
    assert run("Shape", x, start=-10, end=10)[0].tolist() == [2, 3, 4]
    assert run("Shape", x, start=2, end=1)[0].shape == (0,)
    (s,) = run("Size", x)
    assert s.dtype == np.int64 and s.shape == () and int(s) == 24


def test_constant_variants():
    assert run("Constant", value_float=1.5)[0].dtype == np.float32
    assert run("Constant", value_ints=[1, 2])[0].dtype == np.int64
    (s,) = run("Constant", value_strings=["a", "bc"])
    assert s.dtype == object and s.tolist() == ["a", "bc"]
    (s,) = run("Constant", value_string="x")
    assert s.shape == () and s.dtype == object
    with pytest.raises(ExecutionError, match="exactly one"):
        run("Constant", value_int=1, value_float=2.0)


def test_constant_of_shape_and_range_limits():
    (y,) = run("ConstantOfShape", np.array([2, 3]))
    assert y.dtype == np.float32 and y.shape == (2, 3) and not y.any()
    (y,) = run("ConstantOfShape", np.array([], dtype=np.int64), value=np.array([7], np.int32))
    assert y.shape == () and y.dtype == np.int32 and int(y) == 7
    with pytest.raises(ResourceLimitExceeded):
        run("ConstantOfShape", np.array([10**10, 10**10]))
    with pytest.raises(ExecutionError, match="negative"):
        run("ConstantOfShape", np.array([-1]))
    with pytest.raises(ResourceLimitExceeded):
        run("Range", np.array(0, np.int64), np.array(10**15, np.int64), np.array(1, np.int64))
    with pytest.raises(ExecutionError, match="delta"):
        run("Range", np.array(0, np.int32), np.array(5, np.int32), np.array(0, np.int32))


@pytest.mark.parametrize("dtype, start, limit, delta", [
    (np.int32, 10, 4, -2), (np.int64, 3, 9, 3), (np.int16, 0, 1, 5), (np.float32, 1.0, 5.0, 0.7),
    (np.float64, -1.0, 1.0, 0.25), (np.int64, 5, 3, 1)])
def test_range_matches_onnxruntime(dtype, start, limit, delta):
    args = [np.array(v, dtype=dtype) for v in (start, limit, delta)]
    (got,) = run("Range", *args, opset=11)
    (exp,) = run_ort("Range", args, opset=21)
    assert got.dtype == exp.dtype and got.shape == exp.shape
    np.testing.assert_allclose(got, exp, rtol=1e-6)


def test_eyelike_and_trilu():
    (y,) = run("EyeLike", np.zeros((3, 4), np.float32), k=1, dtype=7)
    assert y.dtype == np.int64 and y.tolist() == np.eye(3, 4, 1).tolist()
    assert not run("EyeLike", np.zeros((2, 2)), k=5)[0].any()
    x = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    for k in (-(2**63), -4, -1, 0, 2, 10, 2**63 - 1):
        for upper in (0, 1):
            (got,) = run("Trilu", x, np.array(k, np.int64), upper=upper)
            ref = np.triu(x, max(min(k, 10), -10)) if upper else np.tril(x, max(min(k, 10), -10))
            assert_same(got, ref)


# ---------------------------------------------------------------------------------- rearrangement


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_space_round_trip(mode):
    x = np.arange(2 * 8 * 3 * 2, dtype=np.float32).reshape(2, 8, 3, 2)
    (d,) = run("DepthToSpace", x, blocksize=2, mode=mode)
    (exp,) = run_ort("DepthToSpace", [x], {"blocksize": 2, "mode": mode}, opset=21)
    assert_same(d, exp)
    (back,) = run("SpaceToDepth", d, blocksize=2, mode=mode)
    assert_same(back, x)
    (s,) = run("SpaceToDepth", d, blocksize=2, opset=13)
    (exp,) = run_ort("SpaceToDepth", [d], {"blocksize": 2}, opset=21)
    assert_same(s, exp)
    with pytest.raises(ExecutionError, match="multiple"):
        run("DepthToSpace", x, blocksize=3)


@pytest.mark.parametrize("batch_axis, time_axis", [(0, 1), (1, 0)])
def test_reverse_sequence(batch_axis, time_axis):
    x = np.arange(4 * 5 * 2, dtype=np.float32).reshape(4, 5, 2)
    if batch_axis == 1:
        x = x.reshape(5, 4, 2)
    n_b = x.shape[batch_axis]
    lens = np.array([1, 3, 0, 4, 5][:n_b], dtype=np.int64)
    if x.shape[time_axis] < 5:
        lens = np.minimum(lens, x.shape[time_axis])
    lens = np.maximum(lens, 1)  # onnxruntime rejects 0
    attrs = {"batch_axis": batch_axis, "time_axis": time_axis}
    (got,) = run("ReverseSequence", x, lens, **attrs)
    (exp,) = run_ort("ReverseSequence", [x, lens], attrs, opset=21)
    assert_same(got, exp)
    with pytest.raises(ExecutionError, match="sequence_lens contains 9"):
        run("ReverseSequence", x, np.full(n_b, 9, np.int64), **attrs)


def test_identity_passes_sequences_and_none():
    seq = [np.zeros(2)]
    assert run("Identity", seq)[0] is seq
    assert run("Identity", None)[0] is None


def test_empty_axes_and_split_tensors_count_as_absent():
    x = np.zeros((1, 3, 1), np.float32)
    assert run("Squeeze", x, np.array([], np.int64))[0].shape == (3,)
    outs = run("Split", np.zeros((4, 2)), np.array([], np.int64), num_outputs=2, opset=13)
    assert [o.shape for o in outs] == [(2, 2), (2, 2)]


def test_range_float16_stash_type():
    args = [np.array(v, dtype=np.float16) for v in (2048.0, 2058.0, 1.0)]
    (y,) = run("Range", *args, opset=27)
    assert y.dtype == np.float16 and y.shape == (10,)
    # float16 cannot hold 2049, so start + i * delta rounds; float32 stash computes exactly
    (y16,) = run("Range", *args, opset=27, stash_type=10)
    assert y16.shape == (10,)
