"""The CPU provider's Resize (pyonnx.backends.cpu.resize) equals the reference kernel to the bit
on random geometries: every mode and coordinate transformation, up- and downsampling, one or
both image axes, the compiled loops and the NumPy path, the cases left to the reference, and
the same errors."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import jit, resize, threads
from pyonnx.backends.cpu.registry import get_fast_kernel
from pyonnx.errors import PyOnnxError
from pyonnx.ops import image
from pyonnx.ops.registry import NodeMemo

_CTMS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
         "tf_half_pixel_for_nn")


def _cases(rng: np.random.Generator, count: int):
    """(X, roi, scales, sizes, attributes) for Resize-13 on NCHW inputs."""
    for _ in range(count):
        n, c = int(rng.integers(1, 3)), int(rng.integers(1, 5))
        h, w = (int(v) for v in rng.integers(1, 20, size=2))
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        mode = str(rng.choice(["linear", "linear", "nearest", "cubic"]))
        attrs = dict(mode=mode, coordinate_transformation_mode=str(rng.choice(_CTMS)),
                     nearest_mode=str(rng.choice(["round_prefer_floor", "round_prefer_ceil",
                                                  "floor", "ceil"])),
                     exclude_outside=int(rng.integers(0, 2)) if mode == "cubic" else 0)
        axes = [(2, 3), (2,), (3,)][int(rng.integers(0, 3))]
        if rng.random() < 0.5:
            sizes = np.array([n, c, h, w], np.int64)
            for a in axes:
                sizes[a] = int(rng.integers(1, 40))
            yield x, None, None, sizes, attrs
        else:
            scales = np.ones(4, np.float32)
            for a in axes:
                scales[a] = float(rng.choice([0.5, 0.6, 0.75, 1.5, 2.0, 3.0, 8.0]))
            yield x, None, scales, None, attrs


def _same(*args, memo: NodeMemo | None = None, **attrs) -> np.ndarray:
    want = image.resize_11(*args, **attrs)[0]
    got = resize.resize_11(*args, **attrs, prepared=NodeMemo() if memo is None else memo)[0]
    assert got.shape == want.shape and got.dtype == want.dtype
    assert got.tobytes() == want.tobytes()
    return got


def test_registered_for_every_reference_version():
    for v, fn in ((10, resize.resize_10), (11, resize.resize_11), (13, resize.resize_11),
                  (18, resize.resize_18), (19, resize.resize_19)):
        assert get_fast_kernel("", "Resize", v) is fn


def test_compiled_loops_equal_reference(loop_calls):
    rng = np.random.default_rng(0)
    for x, roi, scales, sizes, attrs in _cases(rng, 60):
        _same(x, roi, scales, sizes, **attrs)
    ran = loop_calls.ran("resize_loops")
    assert ran and all(ran)


def test_numpy_path_equals_reference():
    rng = np.random.default_rng(1)
    with jit.disabled():
        for x, roi, scales, sizes, attrs in _cases(rng, 60):
            _same(x, roi, scales, sizes, **attrs)


@pytest.mark.parametrize("use_loops", [True, False])
def test_model_geometries_over_threads(use_loops):
    """LR-ASPP's two upsamplings (half_pixel, linear), split over the intra-op threads, and a
    float64 input; the memo kept across calls gives the same result."""
    threads.request(2)
    rng = np.random.default_rng(2)
    memo = NodeMemo()
    for shape, size, dtype in (((1, 21, 65, 65), 520, np.float32),
                               ((1, 128, 33, 33), 65, np.float32),
                               ((2, 3, 17, 9), 40, np.float64)):
        x = rng.standard_normal(shape).astype(dtype)
        sizes = np.array(list(shape[:2]) + [size, size], np.int64)
        attrs = dict(mode="linear", coordinate_transformation_mode="half_pixel",
                     nearest_mode="floor")
        if use_loops:
            _same(x, None, None, sizes, memo=memo, **attrs)
            _same(x, None, None, sizes, memo=memo, **attrs)
        else:
            with jit.disabled():
                _same(x, None, None, sizes, memo=memo, **attrs)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_special_values_and_other_versions():
    x = np.arange(2 * 3 * 5 * 4, dtype=np.float32).reshape(2, 3, 5, 4)
    x[0, 0, 1, 1] = np.nan
    x[1, 2, 3, 0] = np.inf
    x[0, 1, 0, 0] = -0.0
    scales = np.array([1, 1, 2.5, 0.5], np.float32)
    for m in ("linear", "nearest", "cubic"):
        _same(x, None, scales, None, mode=m)
        with jit.disabled():
            _same(x, None, scales, None, mode=m)
    want = image.resize_10(x, scales, mode="linear")[0]
    assert resize.resize_10(x, scales, mode="linear", prepared=NodeMemo())[0].tobytes() \
        == want.tobytes()
    for ref, fast in ((image.resize_18, resize.resize_18), (image.resize_19, resize.resize_19)):
        for kw in (dict(antialias=1, mode="linear"), dict(axes=[3, 2], mode="cubic"),
                   dict(keep_aspect_ratio_policy="not_larger", mode="linear")):
            sizes = np.array([9, 3] if "axes" in kw else [2, 3, 9, 3], np.int64)
            want = ref(x, None, None, sizes, **kw)[0]
            got = fast(x, None, None, sizes, **kw, prepared=NodeMemo())[0]
            assert got.tobytes() == want.tobytes()


def test_cases_left_to_the_reference():
    """Other ranks, integer types, strided inputs, a resized channel axis, extrapolation."""
    rng = np.random.default_rng(3)
    x3 = rng.standard_normal((2, 5, 7)).astype(np.float32)
    _same(x3, None, np.array([1, 2, 0.5], np.float32), None, mode="linear")
    xi = rng.integers(0, 255, (1, 2, 6, 6)).astype(np.uint8)
    _same(xi, None, np.array([1, 1, 1.5, 1.5], np.float32), None, mode="linear")
    xs = rng.standard_normal((1, 2, 6, 12)).astype(np.float32)[..., ::2]
    _same(xs, None, np.array([1, 1, 2, 2], np.float32), None, mode="linear")
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    _same(x, None, np.array([1, 0.5, 2, 2], np.float32), None, mode="linear")
    roi = np.array([0, 0, 0.1, -0.2, 1, 1, 0.9, 1.3], np.float32)
    _same(x, roi, np.array([1, 1, 2, 2], np.float32), None, mode="linear",
          coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=7.0)
    _same(x, None, np.array([1, 1, 1, 1], np.float32), None, mode="linear")
    _same(np.zeros((1, 0, 3, 3), np.float32), None, None, np.array([1, 0, 6, 6]), mode="linear")


def test_same_errors():
    x = np.ones((1, 1, 4, 4), np.float32)
    bad = [dict(scales=np.array([1, 1, 2], np.float32)),
           dict(scales=np.array([1, 1, 2, 2], np.float32), sizes=np.array([1, 1, 8, 8])),
           dict(scales=np.array([1, 1, -2, 2], np.float32)),
           dict(sizes=np.array([1, 1, 8, 8]), mode="bilinear")]
    for kw in bad:
        inputs = {k: kw.pop(k) for k in ("scales", "sizes") if k in kw}
        with pytest.raises(PyOnnxError) as want:
            image.resize_11(x, None, inputs.get("scales"), inputs.get("sizes"), **kw)
        with pytest.raises(PyOnnxError) as got:
            resize.resize_11(x, None, inputs.get("scales"), inputs.get("sizes"), **kw,
                             prepared=NodeMemo())
        assert str(got.value) == str(want.value)


@pytest.mark.parametrize("use_loops", [True, False])
def test_empty_and_single_pixel_outputs(use_loops):
    x = np.random.default_rng(4).random((1, 2, 4, 5)).astype(np.float32)
    for mode in ("nearest", "linear", "cubic"):
        for sizes in ([1, 2, 0, 7], [1, 2, 3, 0], [1, 2, 1, 1], [1, 2, 4, 5]):
            if use_loops:
                _same(x, None, None, np.array(sizes), mode=mode)
            else:
                with jit.disabled():
                    _same(x, None, None, np.array(sizes), mode=mode)


@pytest.mark.parametrize("opset", [10, 13, 18, 19])
def test_in_a_session_equal_to_the_reference_kernels(opset, monkeypatch):
    """The variant binds in a session (its per-node memo included) for each schema version,
    and runs twice with the same result."""
    import pyonnx

    calls = []
    real = resize._resize
    monkeypatch.setattr(resize, "_resize", lambda *a: calls.append(1) or real(*a))

    inputs = "(x, s)" if opset == 10 else "(x, , s)"
    model = pyonnx.parse_model(f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g (float[1, 3, 9, 7] x) => (float[1, 3, 18, 21] y) {{
        s = Constant <value = float[4] {{1, 1, 2, 3}}> ()
        y = Resize <mode = "linear"> {inputs}
    }}""")
    x = np.random.default_rng(5).standard_normal((1, 3, 9, 7)).astype(np.float32)
    fast_session = pyonnx.InferenceSession(model)
    ref_session = pyonnx.InferenceSession(
        model, providers=[("CPUExecutionProvider", {"use_reference_kernels": "1"})])
    want = ref_session.run(None, {"x": x})[0]
    for _ in range(2):
        got = fast_session.run(None, {"x": x})[0]
        assert got.shape == (1, 3, 18, 21) and got.tobytes() == want.tobytes()
    assert len(calls) == 2
