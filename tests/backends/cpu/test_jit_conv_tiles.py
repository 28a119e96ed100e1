"""The register tiles of float32 depthwise convolutions (``conv_loops.depthwise2d_tiles``: 3x3
and 5x5 kernels at stride 1 or 2) against Conv's NumPy path and onnxruntime: the edges of the
tiling (maps narrower than a vector, a last vector or last tile of rows that overlaps the one
before, fewer output rows than a tile), padding (none, asymmetric, wider than the kernel,
automatic), input rows and columns no window reads, a channel multiplier, batches; every fused
activation applied in the tiles' stores, NaN included; and which convolutions take them."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from pyonnx.backends.cpu import jit  # noqa: E402
from pyonnx.backends.cpu.conv import conv  # noqa: E402
from pyonnx.backends.cpu.fused import apply_activation, private_fused_conv  # noqa: E402
from tests.ops._oracle import assert_close, run_ort  # noqa: E402

_LOOP = "conv_loops.depthwise2d_tiles"

# (name, X shape, W shape, attributes, with bias)
_CASES = [
    ("mobile_3x3", (1, 32, 16, 16), (32, 1, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    ("map_7x7", (1, 24, 7, 7), (24, 1, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    ("map_7x7_5x5", (1, 20, 7, 7), (20, 1, 5, 5), dict(pads=[2, 2, 2, 2]), False),
    ("stride_2_to_7x7", (1, 16, 14, 14), (16, 1, 3, 3), dict(pads=[1, 1, 1, 1], strides=[2, 2]),
     True),
    ("stride_2_odd", (1, 8, 15, 15), (8, 1, 3, 3), dict(pads=[1, 1, 1, 1], strides=[2, 2]), True),
    ("stride_2_5x5", (1, 8, 28, 28), (8, 1, 5, 5), dict(pads=[2, 2, 2, 2], strides=[2, 2]),
     True),
    ("three_output_rows", (1, 8, 3, 3), (8, 1, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    ("one_output", (1, 4, 1, 1), (4, 1, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    ("few_rows_wide_stride_2", (1, 6, 5, 40), (6, 1, 5, 5),
     dict(pads=[2, 2, 2, 2], strides=[2, 2]), False),
    ("wide_rows", (1, 4, 9, 70), (4, 1, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    ("eight_columns", (1, 3, 9, 8), (3, 1, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    ("nine_columns", (1, 3, 6, 9), (3, 1, 5, 5), dict(pads=[2, 2, 2, 2]), True),
    ("seventeen_columns", (1, 3, 5, 17), (3, 1, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    ("no_padding", (1, 6, 12, 12), (6, 1, 3, 3), {}, False),
    ("asymmetric_pads", (1, 5, 11, 10), (5, 1, 3, 3), dict(pads=[0, 2, 1, 0]), True),
    ("pads_wider_than_kernel", (1, 4, 6, 6), (4, 1, 3, 3), dict(pads=[2, 2, 2, 2]), True),
    ("pads_beyond_small_input", (1, 3, 2, 3), (3, 1, 5, 5), dict(pads=[4, 3, 4, 3]), True),
    ("input_rows_left_unread", (1, 4, 12, 12), (4, 1, 3, 3), dict(strides=[2, 2]), True),
    ("same_upper_stride_2", (1, 5, 9, 8), (5, 1, 3, 3),
     dict(auto_pad="SAME_UPPER", strides=[2, 2]), True),
    ("same_lower_5x5_stride_2", (1, 5, 10, 11), (5, 1, 5, 5),
     dict(auto_pad="SAME_LOWER", strides=[2, 2]), False),
    ("multiplier_2", (1, 4, 10, 10), (8, 1, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    ("multiplier_3_5x5_stride_2", (2, 3, 13, 9), (9, 1, 5, 5),
     dict(pads=[2, 2, 2, 2], strides=[2, 2]), True),
    ("batch_3", (3, 6, 9, 11), (6, 1, 3, 3), dict(pads=[1, 1, 1, 1]), True),
]


def _inputs(x_shape, w_shape, with_bias, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32) if with_bias else None
    return x, w, b


def _conv(x, w, b, attrs):
    return conv(x, w, b, group=x.shape[1], **attrs)[0]


@pytest.mark.parametrize("name, x_shape, w_shape, attrs, with_bias", _CASES,
                         ids=[c[0] for c in _CASES])
def test_tiles_match_numpy_path_and_onnxruntime(loop_calls, name, x_shape, w_shape, attrs,
                                                with_bias):
    x, w, b = _inputs(x_shape, w_shape, with_bias)
    got = _conv(x, w, b, attrs)
    assert loop_calls.ran(_LOOP) == [True], "the tiles did not run"
    np.testing.assert_array_equal(_conv(x, w, b, attrs), got)  # a second call, same bits
    with jit.disabled():
        want = _conv(x, w, b, attrs)
    assert_close(got, want, 1e-5, 1e-5, what=f"{name}: tiles vs NumPy path")
    inputs = [x, w] + ([b] if b is not None else [])
    ref = run_ort("Conv", inputs, dict(group=x_shape[1], **attrs), opset=17)[0]
    assert_close(got, ref, 1e-4, 1e-5, what=f"{name}: tiles vs onnxruntime")


def test_non_contiguous_input(loop_calls):
    x, w, b = _inputs((1, 6, 24, 20), (6, 1, 3, 3), True)
    xs = x[:, :, ::2, 1:]
    got = _conv(xs, w, b, dict(pads=[1, 1, 1, 1]))
    assert loop_calls.ran(_LOOP) == [True]
    with jit.disabled():
        want = _conv(xs, w, b, dict(pads=[1, 1, 1, 1]))
    assert_close(got, want, 1e-5, 1e-5)


_ACTIVATIONS = [("Relu", []), ("Clip", [-0.5, 0.7]), ("HardSigmoid", [0.25, 0.4]),
                ("HardSwish", []), ("Sigmoid", []), ("Swish", [1.0]), ("", [])]


@pytest.mark.parametrize("activation,params", _ACTIVATIONS,
                         ids=[a or "none" for a, _ in _ACTIVATIONS])
@pytest.mark.parametrize("x_shape,w_shape,attrs", [
    ((1, 8, 7, 7), (8, 1, 3, 3), dict(pads=[1, 1, 1, 1])),
    ((1, 8, 20, 21), (8, 1, 5, 5), dict(pads=[2, 2, 2, 2], strides=[2, 2]))],
    ids=["7x7", "5x5_stride2"])
def test_fused_activation_in_the_tiles(loop_calls, activation, params, x_shape, w_shape,
                                       attrs):
    """FusedConv (the pyonnx domain's) with each activation: the tiles apply the clips and the
    hard gates as they store, Sigmoid and Swish are left to the epilogue's pass after them;
    the values of the convolution followed by the activation's own kernel, NaN where the
    input's NaN reaches."""
    x, w, b = _inputs(x_shape, w_shape, True)
    x[0, 3, 4, 5] = np.nan
    x *= 3  # values beyond the hard gates' linear range
    attrs = dict(group=8, activation=activation, activation_params=params, **attrs)
    got = private_fused_conv(x, w, b, **attrs)[0]
    assert loop_calls.ran(_LOOP) == [True]
    in_tiles = activation not in ("Sigmoid", "Swish")
    after = [name for name, _ in loop_calls.calls[1:]]
    assert after == ([] if in_tiles else ["act_loops.bias_activation"])
    plain = {k: v for k, v in attrs.items()
             if k not in ("activation", "activation_params", "group")}
    with jit.disabled():
        unfused = apply_activation(_conv(x, w, b, plain), activation, params)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(unfused))
    assert np.isnan(got).any()
    assert_close(got, unfused, 1e-5, 1e-5)


@pytest.mark.parametrize("dtype, k, strides, dilations, taken", [
    (np.float32, (3, 3), (1, 1), (1, 1), True),
    (np.float32, (5, 5), (2, 2), (1, 1), True),
    (np.float64, (3, 3), (1, 1), (1, 1), False),
    (np.float32, (3, 3), (1, 1), (2, 2), False),
    (np.float32, (7, 7), (1, 1), (1, 1), False),
    (np.float32, (3, 5), (1, 1), (1, 1), False),
    (np.float32, (3, 3), (1, 2), (1, 1), False),
    (np.float32, (3, 3), (3, 3), (1, 1), False),
], ids=["3x3", "5x5_stride2", "float64", "dilated", "7x7", "3x5", "strides_1_2", "stride_3"])
def test_which_convolutions_take_the_tiles(loop_calls, dtype, k, strides, dilations, taken):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 16, 14, 14)).astype(dtype)
    w = rng.standard_normal((16, 1, *k)).astype(dtype)
    pads = [d * (kk // 2) for kk, d in zip(k, dilations)] * 2
    attrs = dict(pads=pads, strides=list(strides), dilations=list(dilations))
    got = _conv(x, w, None, attrs)
    assert (loop_calls.ran(_LOOP) == [True]) == taken
    assert loop_calls.ran("conv_loops.depthwise2d"), "no compiled depthwise loop ran"
    with jit.disabled():
        want = _conv(x, w, None, attrs)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert_close(got, want, tol, tol)
