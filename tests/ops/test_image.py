"""Resize, Upsample, GridSample, AffineGrid, RoiAlign and NonMaxSuppression kernels."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError, ResourceLimitExceeded, UnsupportedOperatorError
from tests.ops._oracle import check, run_kernel, run_ort

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

F32 = np.float32
EMPTY = np.array([], F32)
RNG = np.random.default_rng(0)
X4 = RNG.standard_normal((2, 3, 7, 9)).astype(F32)


# --- Resize -----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("ctm", ["half_pixel", "pytorch_half_pixel", "asymmetric",
                                 "half_pixel_symmetric"])
@pytest.mark.parametrize("scales", [[1, 1, 2, 1.5], [1, 1, 0.5, 0.7], [1, 1, 1.7, 0.35]])
def test_resize_scales_match_onnxruntime(mode: str, ctm: str, scales: list[float]) -> None:
    check("Resize", [X4, EMPTY, np.array(scales, F32)],
          {"mode": mode, "coordinate_transformation_mode": ctm}, 19)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("ctm", ["half_pixel", "align_corners", "asymmetric"])
def test_resize_sizes_match_onnxruntime(mode: str, ctm: str) -> None:
    for sizes in ([2, 3, 13, 4], [2, 3, 1, 1]):
        check("Resize", [X4, EMPTY, None, np.array(sizes, np.int64)],
              {"mode": mode, "coordinate_transformation_mode": ctm}, 19)


@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil"])
def test_resize_nearest_modes(nearest_mode: str) -> None:
    check("Resize", [X4, EMPTY, np.array([1, 1, 2.5, 0.6], F32)],
          {"mode": "nearest", "nearest_mode": nearest_mode}, 19)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("scales", [[1, 1, 0.5, 0.7], [1, 1, 0.3, 0.25], [1, 1, 2, 0.45]])
def test_resize_antialias(mode: str, scales: list[float]) -> None:
    check("Resize", [X4, EMPTY, np.array(scales, F32)], {"mode": mode, "antialias": 1}, 19)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_resize_tf_crop_and_resize(mode: str) -> None:
    roi = np.array([0, 0, -0.3, 0.2, 1, 1, 1.3, 0.9], F32)
    check("Resize", [X4, roi, None, np.array([2, 3, 5, 12], np.int64)],
          {"mode": mode, "coordinate_transformation_mode": "tf_crop_and_resize",
           "extrapolation_value": 3.0}, 19)


def test_resize_axes_keep_aspect_and_exclude_outside() -> None:
    check("Resize", [X4, EMPTY, None, np.array([4, 5], np.int64)],
          {"mode": "linear", "axes": [3, 2], "keep_aspect_ratio_policy": "not_larger"}, 19)
    check("Resize", [X4, EMPTY, np.array([1, 1, 0.4, 0.6], F32)],
          {"mode": "cubic", "exclude_outside": 1, "cubic_coeff_a": -0.5}, 19)
    # negative axes mean the same as their positive spelling
    a = run_kernel("Resize", X4, EMPTY, None, np.array([4, 5], np.int64), opset=19, mode="linear",
                   axes=[-1, -2], keep_aspect_ratio_policy="not_smaller")[0]
    b = run_kernel("Resize", X4, EMPTY, None, np.array([4, 5], np.int64), opset=19, mode="linear",
                   axes=[3, 2], keep_aspect_ratio_policy="not_smaller")[0]
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 3, 5, 6)


@pytest.mark.parametrize("opset", [10, 11, 13])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_older_opsets(opset: int, mode: str) -> None:
    for sc in ([1, 1, 2, 3], [1, 1, 0.5, 0.7], [1, 1, 1.7, 0.35]):
        scales = np.array(sc, F32)
        ins = [X4, scales] if opset == 10 else [X4, EMPTY, scales]
        check("Resize", ins, {"mode": mode}, opset)


def test_resize_nd_and_dtypes() -> None:
    x5 = RNG.standard_normal((1, 2, 4, 5, 6)).astype(F32)
    check("Resize", [x5, EMPTY, np.array([1, 1, 2, 0.5, 1.5], F32)], {"mode": "linear"}, 19)
    y = run_kernel("Resize", X4.astype(np.float64), EMPTY, np.array([1, 1, 2, 1.5], F32), opset=19,
                   mode="cubic")[0]
    assert y.dtype == np.float64
    # integers: the weighted sum is rounded half to even and saturated
    xu = np.array([[[[0, 255, 1, 2]]]], np.uint8)
    y = run_kernel("Resize", xu, EMPTY, np.array([1, 1, 1, 2], F32), opset=19, mode="cubic")[0]
    assert y.dtype == np.uint8 and y.min() >= 0
    y = run_kernel("Resize", np.array([[1, 2]], np.uint8), EMPTY, np.array([1, 2], F32), opset=19,
                   mode="linear", coordinate_transformation_mode="align_corners")[0]
    np.testing.assert_array_equal(y, [[1, 1, 2, 2]])  # 1.333 -> 1, 1.667 -> 2
    # nearest works for any element type
    xs = np.array([["a", "b"], ["c", "d"]], dtype=object)
    y = run_kernel("Resize", xs, EMPTY, np.array([1, 2], F32), opset=19, mode="nearest")[0]
    assert y.tolist() == [["a", "a", "b", "b"], ["c", "c", "d", "d"]]


def test_resize_align_corners_uses_unrounded_output_width() -> None:
    # the backend suite's downsample_scales_linear_align_corners: 4 * 0.6 = 2.4 wide
    x = np.array([[[[1, 2, 3, 4], [5, 6, 7, 8]]]], F32)
    y = run_kernel("Resize", x, EMPTY, np.array([1, 1, 0.6, 0.6], F32), opset=19, mode="linear",
                   coordinate_transformation_mode="align_corners")[0]
    np.testing.assert_allclose(y, [[[[1, 3.142857]]]], rtol=1e-5)


def test_resize_output_length_in_float32() -> None:
    x = np.zeros((1, 10), F32)
    y = run_kernel("Resize", x, EMPTY, np.array([1, 0.7], F32), opset=19, mode="nearest")[0]
    assert y.shape == (1, 7)  # 10 * 0.7f is 7 in float32, as in onnxruntime


def test_resize_errors() -> None:
    sc = np.array([1, 1, 2, 2], F32)
    with pytest.raises(UnsupportedOperatorError, match="mode 'bilinear'.*'nearest', 'linear'"):
        run_kernel("Resize", X4, EMPTY, sc, opset=19, mode="bilinear")
    with pytest.raises(UnsupportedOperatorError, match="coordinate_transformation_mode"):
        run_kernel("Resize", X4, EMPTY, sc, opset=19, coordinate_transformation_mode="corners")
    with pytest.raises(UnsupportedOperatorError, match="half_pixel_symmetric"):
        run_kernel("Resize", X4, EMPTY, sc, opset=18,
                   coordinate_transformation_mode="half_pixel_symmetric")
    with pytest.raises(UnsupportedOperatorError, match="nearest_mode"):
        run_kernel("Resize", X4, EMPTY, sc, opset=19, nearest_mode="up")
    with pytest.raises(UnsupportedOperatorError, match="keep_aspect_ratio_policy"):
        run_kernel("Resize", X4, EMPTY, sc, opset=19, keep_aspect_ratio_policy="fit")
    with pytest.raises(ExecutionError, match="both scales and sizes"):
        run_kernel("Resize", X4, EMPTY, sc, np.array([2, 3, 4, 4], np.int64), opset=19)
    with pytest.raises(ExecutionError, match="neither scales nor sizes"):
        run_kernel("Resize", X4, EMPTY, opset=19)
    with pytest.raises(ExecutionError, match="scales has 3 elements; expected 4"):
        run_kernel("Resize", X4, EMPTY, np.array([1, 2, 2], F32), opset=19)
    with pytest.raises(ExecutionError, match="sizes has 3 elements; expected 2"):
        run_kernel("Resize", X4, EMPTY, None, np.array([1, 2, 2], np.int64), opset=19,
                   axes=[2, 3])
    with pytest.raises(ExecutionError, match="roi has 4 elements; expected 8"):
        run_kernel("Resize", X4, np.array([0, 0, 1, 1], F32), sc, opset=19,
                   coordinate_transformation_mode="tf_crop_and_resize")
    with pytest.raises(ExecutionError, match="greater than 0"):
        run_kernel("Resize", X4, EMPTY, np.array([1, 1, 0, 2], F32), opset=19)
    with pytest.raises(ResourceLimitExceeded, match="Resize output"):
        run_kernel("Resize", X4, EMPTY, np.array([1, 1, 1e6, 1e6], F32), opset=19,
                   max_bytes=1 << 30)


# --- Upsample ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_matches_onnxruntime(mode: str) -> None:
    x = RNG.standard_normal((1, 2, 5, 7)).astype(F32)
    for sc in ([1, 1, 2, 3], [1, 1, 1.5, 2.7]):
        check("Upsample", [x, np.array(sc, F32)], {"mode": mode}, 9)
        check("Upsample", [x], {"mode": mode, "scales": [float(v) for v in sc]}, 7)


def test_upsample_v1_and_errors() -> None:
    x = np.arange(4, dtype=F32).reshape(1, 1, 2, 2)
    y = run_kernel("Upsample", x, opset=1, height_scale=2.0, width_scale=3.0)[0]
    assert y.shape == (1, 1, 4, 6) and y[0, 0, 3, 5] == 3
    with pytest.raises(ExecutionError, match=">= 1"):
        run_kernel("Upsample", x, np.array([1, 1, 0.5, 1], F32), opset=9)
    with pytest.raises(UnsupportedOperatorError, match="mode"):
        run_kernel("Upsample", x, np.array([1, 1, 2, 2], F32), opset=9, mode="cubic")


# --- GridSample / AffineGrid ------------------------------------------------------------------

@pytest.mark.parametrize("opset,mode", [(16, "bilinear"), (16, "nearest"), (16, "bicubic"),
                                        (20, "linear"), (20, "nearest"), (20, "cubic")])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_grid_sample_matches_onnxruntime(opset: int, mode: str, padding_mode: str,
                                         align_corners: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 6)).astype(F32)
    grid = (rng.random((2, 4, 7, 2)) * 3 - 1.5).astype(F32)
    check("GridSample", [x, grid], {"mode": mode, "padding_mode": padding_mode,
                                    "align_corners": align_corners}, opset)


@pytest.mark.parametrize("mode", ["linear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_grid_sample_volumetric(mode: str, padding_mode: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 4, 5, 6)).astype(F32)
    grid = (rng.random((1, 3, 4, 5, 3)) * 3 - 1.5).astype(F32)
    check("GridSample", [x, grid], {"mode": mode, "padding_mode": padding_mode}, 20)


def test_grid_sample_errors() -> None:
    x = np.zeros((1, 1, 4, 4), F32)
    with pytest.raises(UnsupportedOperatorError, match="padding_mode"):
        run_kernel("GridSample", x, np.zeros((1, 2, 2, 2), F32), opset=20, padding_mode="wrap")
    with pytest.raises(UnsupportedOperatorError, match="mode 'linear'"):
        run_kernel("GridSample", x, np.zeros((1, 2, 2, 2), F32), opset=16, mode="linear")
    with pytest.raises(ExecutionError, match="grid has shape"):
        run_kernel("GridSample", x, np.zeros((1, 2, 2, 3), F32), opset=20)


@pytest.mark.parametrize("align_corners", [0, 1])
def test_affine_grid_matches_onnxruntime(align_corners: int) -> None:
    rng = np.random.default_rng(3)
    check("AffineGrid", [rng.standard_normal((2, 2, 3)).astype(F32),
                         np.array([2, 3, 5, 7], np.int64)], {"align_corners": align_corners}, 20)
    check("AffineGrid", [rng.standard_normal((2, 3, 4)).astype(F32),
                         np.array([2, 3, 4, 5, 6], np.int64)], {"align_corners": align_corners},
          20)
    with pytest.raises(ExecutionError, match="theta has shape"):
        run_kernel("AffineGrid", np.zeros((2, 2, 3), F32), np.array([2, 3, 4, 5, 6], np.int64),
                   opset=20)


# --- RoiAlign ---------------------------------------------------------------------------------

ROIS = np.array([[0, 0, 9, 11], [1.3, 2.2, 7.7, 5.1], [-3, -2, 4, 5], [5, 6, 15, 20],
                 [2, 2, 2.3, 2.2]], F32)
BATCH = np.array([0, 1, 0, 1, 1], np.int64)


@pytest.mark.parametrize("opset,ctm", [(10, None), (16, "half_pixel"), (16, "output_half_pixel")])
@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align_matches_onnxruntime(opset: int, ctm: str | None, mode: str,
                                       sampling_ratio: int) -> None:
    x = np.random.default_rng(4).standard_normal((2, 3, 12, 10)).astype(F32)
    attrs = {"mode": mode, "sampling_ratio": sampling_ratio, "spatial_scale": 0.5,
             "output_height": 3, "output_width": 4}
    if ctm:
        attrs["coordinate_transformation_mode"] = ctm
    check("RoiAlign", [x, ROIS, BATCH], attrs, opset)


def test_roi_align_errors() -> None:
    x = np.zeros((2, 1, 4, 4), F32)
    with pytest.raises(ExecutionError, match="batch_indices contains 2"):
        run_kernel("RoiAlign", x, ROIS[:1], np.array([2], np.int64), opset=16)
    with pytest.raises(ExecutionError, match="batch_indices contains -1"):
        run_kernel("RoiAlign", x, ROIS[:1], np.array([-1], np.int64), opset=16)
    with pytest.raises(UnsupportedOperatorError, match="mode"):
        run_kernel("RoiAlign", x, ROIS[:1], np.array([0], np.int64), opset=16, mode="sum")


# --- NonMaxSuppression ------------------------------------------------------------------------

@pytest.mark.parametrize("trial", range(12))
def test_nms_matches_onnxruntime(trial: int) -> None:
    rng = np.random.default_rng(100 + trial)
    B, C, S = int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(1, 50))
    boxes = (rng.random((B, S, 4)) * 10).astype(F32)
    if trial % 4 == 0:
        boxes[:, : S // 2] = boxes[:, :1]  # identical boxes
    scores = np.round(rng.random((B, C, S)), 1).astype(F32)  # ties, scores at the threshold
    ins = [boxes, scores, np.array([rng.integers(0, 20)], np.int64),
           np.array([rng.choice([0.0, 0.3, 0.5, 1.0])], F32)]
    if trial % 3:
        ins.append(np.array([rng.choice([0.0, 0.3, 0.5])], F32))
    exp = run_ort("NonMaxSuppression", ins, {"center_point_box": trial % 2}, opset=11)[0]
    got = run_kernel("NonMaxSuppression", *ins, opset=11, center_point_box=trial % 2)[0]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, exp)


def test_nms_defaults_and_errors() -> None:
    boxes = np.array([[[0, 0, 1, 1]]], F32)
    scores = np.array([[[0.9]]], F32)
    assert run_kernel("NonMaxSuppression", boxes, scores, opset=11)[0].shape == (0, 3)
    with pytest.raises(ExecutionError, match="scores has shape"):
        run_kernel("NonMaxSuppression", boxes, np.zeros((1, 1, 2), F32), np.array([3]), opset=11)
