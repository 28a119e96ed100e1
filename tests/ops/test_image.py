"""Resize, Upsample, GridSample, AffineGrid, RoiAlign and NonMaxSuppression kernels."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError, ResourceLimitExceeded, UnsupportedOperatorError
from pyonnx.ops.registry import KernelContext, get_kernel, wants_context

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper  # noqa: E402

_TYPES = {np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int64): 7,
          np.dtype(np.float64): 11, np.dtype(np.int32): 6}


def _ort_run(op: str, inputs: list, attrs: dict, opset: int) -> np.ndarray:
    names = [f"i{k}" if v is not None else "" for k, v in enumerate(inputs)]
    node = helper.make_node(op, names, ["y"], **attrs)
    g = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(n, _TYPES[v.dtype], v.shape)
         for n, v in zip(names, inputs) if v is not None],
        [helper.make_value_info("y", onnx.TypeProto())])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {n: v for n, v in zip(names, inputs) if v is not None})[0]


def _ours(op: str, inputs: list, attrs: dict, opset: int, limit: int = 1 << 40) -> np.ndarray:
    schema = onnx.defs.get_schema(op, opset, "")
    fn = get_kernel("", op, schema.since_version)
    assert fn is not None
    kw = dict(attrs)
    if wants_context(fn):
        kw["ctx"] = KernelContext(op_type=op, opset=opset, max_tensor_bytes=limit)
    return fn(*inputs, **kw)[0]


def _both(op: str, inputs: list, attrs: dict, opset: int, rtol: float = 1e-4,
          atol: float = 1e-5) -> np.ndarray:
    exp = _ort_run(op, inputs, attrs, opset)
    got = _ours(op, inputs, attrs, opset)
    assert got.dtype == exp.dtype and got.shape == exp.shape
    np.testing.assert_allclose(got, exp, rtol=rtol, atol=atol)
    return got


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
    _both("Resize", [X4, EMPTY, np.array(scales, F32)],
          {"mode": mode, "coordinate_transformation_mode": ctm}, 19)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("ctm", ["half_pixel", "align_corners", "asymmetric"])
def test_resize_sizes_match_onnxruntime(mode: str, ctm: str) -> None:
    for sizes in ([2, 3, 13, 4], [2, 3, 1, 1]):
        _both("Resize", [X4, EMPTY, None, np.array(sizes, np.int64)],
              {"mode": mode, "coordinate_transformation_mode": ctm}, 19)


@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil"])
def test_resize_nearest_modes(nearest_mode: str) -> None:
    _both("Resize", [X4, EMPTY, np.array([1, 1, 2.5, 0.6], F32)],
          {"mode": "nearest", "nearest_mode": nearest_mode}, 19)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("scales", [[1, 1, 0.5, 0.7], [1, 1, 0.3, 0.25], [1, 1, 2, 0.45]])
def test_resize_antialias(mode: str, scales: list[float]) -> None:
    _both("Resize", [X4, EMPTY, np.array(scales, F32)], {"mode": mode, "antialias": 1}, 19)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_resize_tf_crop_and_resize(mode: str) -> None:
    roi = np.array([0, 0, -0.3, 0.2, 1, 1, 1.3, 0.9], F32)
    _both("Resize", [X4, roi, None, np.array([2, 3, 5, 12], np.int64)],
          {"mode": mode, "coordinate_transformation_mode": "tf_crop_and_resize",
           "extrapolation_value": 3.0}, 19)


def test_resize_axes_keep_aspect_and_exclude_outside() -> None:
    _both("Resize", [X4, EMPTY, None, np.array([4, 5], np.int64)],
          {"mode": "linear", "axes": [3, 2], "keep_aspect_ratio_policy": "not_larger"}, 19)
    _both("Resize", [X4, EMPTY, np.array([1, 1, 0.4, 0.6], F32)],
          {"mode": "cubic", "exclude_outside": 1, "cubic_coeff_a": -0.5}, 19)
    # negative axes mean the same as their positive spelling
    a = _ours("Resize", [X4, EMPTY, None, np.array([4, 5], np.int64)],
              {"mode": "linear", "axes": [-1, -2], "keep_aspect_ratio_policy": "not_smaller"}, 19)
    b = _ours("Resize", [X4, EMPTY, None, np.array([4, 5], np.int64)],
              {"mode": "linear", "axes": [3, 2], "keep_aspect_ratio_policy": "not_smaller"}, 19)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 3, 5, 6)


@pytest.mark.parametrize("opset", [10, 11, 13])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_older_opsets(opset: int, mode: str) -> None:
    for sc in ([1, 1, 2, 3], [1, 1, 0.5, 0.7], [1, 1, 1.7, 0.35]):
        scales = np.array(sc, F32)
        ins = [X4, scales] if opset == 10 else [X4, EMPTY, scales]
        _both("Resize", ins, {"mode": mode}, opset)


def test_resize_nd_and_dtypes() -> None:
    x5 = RNG.standard_normal((1, 2, 4, 5, 6)).astype(F32)
    _both("Resize", [x5, EMPTY, np.array([1, 1, 2, 0.5, 1.5], F32)], {"mode": "linear"}, 19)
    y = _ours("Resize", [X4.astype(np.float64), EMPTY, np.array([1, 1, 2, 1.5], F32)],
              {"mode": "cubic"}, 19)
    assert y.dtype == np.float64
    # integers: the weighted sum is rounded half to even and saturated
    xu = np.array([[[[0, 255, 1, 2]]]], np.uint8)
    y = _ours("Resize", [xu, EMPTY, np.array([1, 1, 1, 2], F32)], {"mode": "cubic"}, 19)
    assert y.dtype == np.uint8 and y.min() >= 0
    y = _ours("Resize", [np.array([[1, 2]], np.uint8), EMPTY, np.array([1, 2], F32)],
              {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, 19)
    np.testing.assert_array_equal(y, [[1, 1, 2, 2]])  # 1.333 -> 1, 1.667 -> 2
    # nearest works for any element type
    xs = np.array([["a", "b"], ["c", "d"]], dtype=object)
    y = _ours("Resize", [xs, EMPTY, np.array([1, 2], F32)], {"mode": "nearest"}, 19)
    assert y.tolist() == [["a", "a", "b", "b"], ["c", "c", "d", "d"]]


def test_resize_align_corners_uses_unrounded_output_width() -> None:
    # the backend suite's downsample_scales_linear_align_corners: 4 * 0.6 = 2.4 wide
    x = np.array([[[[1, 2, 3, 4], [5, 6, 7, 8]]]], F32)
    y = _ours("Resize", [x, EMPTY, np.array([1, 1, 0.6, 0.6], F32)],
              {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, 19)
    np.testing.assert_allclose(y, [[[[1, 3.142857]]]], rtol=1e-5)


def test_resize_output_length_in_float32() -> None:
    x = np.zeros((1, 10), F32)
    y = _ours("Resize", [x, EMPTY, np.array([1, 0.7], F32)], {"mode": "nearest"}, 19)
    assert y.shape == (1, 7)  # 10 * 0.7f is 7 in float32, as in onnxruntime


def test_resize_errors() -> None:
    sc = np.array([1, 1, 2, 2], F32)
    with pytest.raises(UnsupportedOperatorError, match="mode 'bilinear'.*'nearest', 'linear'"):
        _ours("Resize", [X4, EMPTY, sc], {"mode": "bilinear"}, 19)
    with pytest.raises(UnsupportedOperatorError, match="coordinate_transformation_mode"):
        _ours("Resize", [X4, EMPTY, sc], {"coordinate_transformation_mode": "corners"}, 19)
    with pytest.raises(UnsupportedOperatorError, match="half_pixel_symmetric"):
        _ours("Resize", [X4, EMPTY, sc],
              {"coordinate_transformation_mode": "half_pixel_symmetric"}, 18)
    with pytest.raises(UnsupportedOperatorError, match="nearest_mode"):
        _ours("Resize", [X4, EMPTY, sc], {"nearest_mode": "up"}, 19)
    with pytest.raises(UnsupportedOperatorError, match="keep_aspect_ratio_policy"):
        _ours("Resize", [X4, EMPTY, sc], {"keep_aspect_ratio_policy": "fit"}, 19)
    with pytest.raises(ExecutionError, match="both scales and sizes"):
        _ours("Resize", [X4, EMPTY, sc, np.array([2, 3, 4, 4], np.int64)], {}, 19)
    with pytest.raises(ExecutionError, match="neither scales nor sizes"):
        _ours("Resize", [X4, EMPTY], {}, 19)
    with pytest.raises(ExecutionError, match="scales has 3 elements; expected 4"):
        _ours("Resize", [X4, EMPTY, np.array([1, 2, 2], F32)], {}, 19)
    with pytest.raises(ExecutionError, match="sizes has 3 elements; expected 2"):
        _ours("Resize", [X4, EMPTY, None, np.array([1, 2, 2], np.int64)], {"axes": [2, 3]}, 19)
    with pytest.raises(ExecutionError, match="roi has 4 elements; expected 8"):
        _ours("Resize", [X4, np.array([0, 0, 1, 1], F32), sc],
              {"coordinate_transformation_mode": "tf_crop_and_resize"}, 19)
    with pytest.raises(ExecutionError, match="greater than 0"):
        _ours("Resize", [X4, EMPTY, np.array([1, 1, 0, 2], F32)], {}, 19)
    with pytest.raises(ResourceLimitExceeded, match="Resize output"):
        _ours("Resize", [X4, EMPTY, np.array([1, 1, 1e6, 1e6], F32)], {}, 19, limit=1 << 30)


# --- Upsample ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_matches_onnxruntime(mode: str) -> None:
    x = RNG.standard_normal((1, 2, 5, 7)).astype(F32)
    for sc in ([1, 1, 2, 3], [1, 1, 1.5, 2.7]):
        _both("Upsample", [x, np.array(sc, F32)], {"mode": mode}, 9)
        _both("Upsample", [x], {"mode": mode, "scales": [float(v) for v in sc]}, 7)


def test_upsample_v1_and_errors() -> None:
    x = np.arange(4, dtype=F32).reshape(1, 1, 2, 2)
    y = _ours("Upsample", [x], {"height_scale": 2.0, "width_scale": 3.0}, 1)
    assert y.shape == (1, 1, 4, 6) and y[0, 0, 3, 5] == 3
    with pytest.raises(ExecutionError, match=">= 1"):
        _ours("Upsample", [x, np.array([1, 1, 0.5, 1], F32)], {}, 9)
    with pytest.raises(UnsupportedOperatorError, match="mode"):
        _ours("Upsample", [x, np.array([1, 1, 2, 2], F32)], {"mode": "cubic"}, 9)


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
    _both("GridSample", [x, grid], {"mode": mode, "padding_mode": padding_mode,
                                    "align_corners": align_corners}, opset)


@pytest.mark.parametrize("mode", ["linear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_grid_sample_volumetric(mode: str, padding_mode: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 4, 5, 6)).astype(F32)
    grid = (rng.random((1, 3, 4, 5, 3)) * 3 - 1.5).astype(F32)
    _both("GridSample", [x, grid], {"mode": mode, "padding_mode": padding_mode}, 20)


def test_grid_sample_errors() -> None:
    x = np.zeros((1, 1, 4, 4), F32)
    with pytest.raises(UnsupportedOperatorError, match="padding_mode"):
        _ours("GridSample", [x, np.zeros((1, 2, 2, 2), F32)], {"padding_mode": "wrap"}, 20)
    with pytest.raises(UnsupportedOperatorError, match="mode 'linear'"):
        _ours("GridSample", [x, np.zeros((1, 2, 2, 2), F32)], {"mode": "linear"}, 16)
    with pytest.raises(ExecutionError, match="grid has shape"):
        _ours("GridSample", [x, np.zeros((1, 2, 2, 3), F32)], {}, 20)


@pytest.mark.parametrize("align_corners", [0, 1])
def test_affine_grid_matches_onnxruntime(align_corners: int) -> None:
    rng = np.random.default_rng(3)
    _both("AffineGrid", [rng.standard_normal((2, 2, 3)).astype(F32),
                         np.array([2, 3, 5, 7], np.int64)], {"align_corners": align_corners}, 20)
    _both("AffineGrid", [rng.standard_normal((2, 3, 4)).astype(F32),
                         np.array([2, 3, 4, 5, 6], np.int64)], {"align_corners": align_corners},
          20)
    with pytest.raises(ExecutionError, match="theta has shape"):
        _ours("AffineGrid", [np.zeros((2, 2, 3), F32), np.array([2, 3, 4, 5, 6], np.int64)],
              {}, 20)


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
    _both("RoiAlign", [x, ROIS, BATCH], attrs, opset)


def test_roi_align_errors() -> None:
    x = np.zeros((2, 1, 4, 4), F32)
    with pytest.raises(ExecutionError, match="batch_indices contains 2"):
        _ours("RoiAlign", [x, ROIS[:1], np.array([2], np.int64)], {}, 16)
    with pytest.raises(ExecutionError, match="batch_indices contains -1"):
        _ours("RoiAlign", [x, ROIS[:1], np.array([-1], np.int64)], {}, 16)
    with pytest.raises(UnsupportedOperatorError, match="mode"):
        _ours("RoiAlign", [x, ROIS[:1], np.array([0], np.int64)], {"mode": "sum"}, 16)


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
    exp = _ort_run("NonMaxSuppression", ins, {"center_point_box": trial % 2}, 11)
    got = _ours("NonMaxSuppression", ins, {"center_point_box": trial % 2}, 11)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, exp)


def test_nms_defaults_and_errors() -> None:
    boxes = np.array([[[0, 0, 1, 1]]], F32)
    scores = np.array([[[0.9]]], F32)
    assert _ours("NonMaxSuppression", [boxes, scores], {}, 11).shape == (0, 3)
    with pytest.raises(ExecutionError, match="scores has shape"):
        _ours("NonMaxSuppression", [boxes, np.zeros((1, 1, 2), F32), np.array([3])], {}, 11)
