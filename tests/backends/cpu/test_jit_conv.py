"""The compiled depthwise 2-D convolution loop (``conv_loops.depthwise2d``) against Conv's NumPy
path and onnxruntime: the shufflenet shapes, a seeded random sweep of geometries, and the edge
cases (1x1 kernel with padding, kernel larger than the input, dilation, stride 3, asymmetric and
automatic padding, windows that end in the padding, channel multiplier, batches, NaN and
infinity, float16 which computes in float32)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from pyonnx.backends.cpu import jit  # noqa: E402
from pyonnx.backends.cpu.conv import conv  # noqa: E402
from pyonnx.backends.cpu.fused import (  # noqa: E402
    apply_activation, fused_conv, private_fused_conv)
from tests.ops._oracle import assert_close, run_ort  # noqa: E402


# (name, X shape, W shape, attributes, with bias)
_NAMED = [
    ("shufflenet_272_14", (1, 272, 14, 14), (272, 1, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    ("shufflenet_112_56_s2", (1, 112, 56, 56), (112, 1, 3, 3),
     dict(pads=[1, 1, 1, 1], strides=[2, 2]), True),
    ("shufflenet_136_28", (1, 136, 28, 28), (136, 1, 3, 3), dict(pads=[1, 1, 1, 1]), False),
    ("shufflenet_136_28_s2", (1, 136, 28, 28), (136, 1, 3, 3),
     dict(pads=[1, 1, 1, 1], strides=[2, 2]), False),
    ("shufflenet_544_7", (1, 544, 7, 7), (544, 1, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    ("kernel_1x1_padded", (1, 4, 5, 6), (4, 1, 1, 1), dict(pads=[1, 2, 0, 1]), True),
    ("kernel_1x1_padded_stride2", (2, 3, 7, 6), (3, 1, 1, 1),
     dict(pads=[2, 1, 1, 2], strides=[2, 2]), False),
    ("kernel_larger_than_input", (1, 3, 2, 3), (3, 1, 5, 5), dict(pads=[2, 2, 2, 2]), True),
    ("kernel_larger_than_input_one_output", (1, 3, 2, 2), (3, 1, 4, 4),
     dict(pads=[1, 1, 1, 1]), False),
    ("dilation_2", (1, 6, 9, 10), (6, 1, 3, 3), dict(pads=[2, 2, 2, 2], dilations=[2, 2]), True),
    ("dilation_2_stride_2", (1, 5, 13, 12), (5, 1, 3, 3),
     dict(pads=[1, 2, 2, 1], dilations=[2, 2], strides=[2, 2]), True),
    ("dilation_3_1", (1, 4, 12, 9), (4, 1, 3, 2), dict(pads=[3, 0, 3, 1], dilations=[3, 1]), True),
    ("stride_3", (1, 5, 11, 13), (5, 1, 3, 3), dict(pads=[1, 1, 1, 1], strides=[3, 3]), True),
    ("stride_3_1", (1, 3, 10, 8), (3, 1, 4, 2), dict(pads=[1, 0, 2, 1], strides=[3, 1]), True),
    ("asymmetric_pads", (1, 6, 8, 9), (6, 1, 3, 3), dict(pads=[0, 2, 3, 1]), True),
    ("pads_larger_than_kernel", (1, 2, 4, 5), (2, 1, 2, 2), dict(pads=[4, 3, 5, 4]), True),
    ("window_ends_in_padding", (1, 4, 10, 10), (4, 1, 3, 3),
     dict(pads=[0, 0, 2, 2], strides=[4, 4]), True),
    ("input_rows_left_unread", (1, 4, 10, 11), (4, 1, 3, 3), dict(strides=[4, 3]), True),
    ("no_padding", (1, 8, 12, 12), (8, 1, 3, 3), {}, False),
    ("multiplier_2", (1, 4, 8, 8), (8, 1, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    ("multiplier_3_stride_2", (2, 3, 9, 7), (9, 1, 3, 3), dict(pads=[1, 1, 1, 1],
                                                               strides=[2, 2]), False),
    ("batch_3", (3, 6, 7, 9), (6, 1, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    ("kernel_5x5", (1, 7, 15, 15), (7, 1, 5, 5), dict(pads=[2, 2, 2, 2]), True),
    ("kernel_7x7_stride_2", (1, 4, 20, 18), (4, 1, 7, 7), dict(pads=[3, 3, 3, 3],
                                                               strides=[2, 2]), True),
    ("kernel_1x5", (1, 4, 6, 16), (4, 1, 1, 5), dict(pads=[0, 2, 0, 2]), True),
    ("kernel_5x1", (1, 4, 16, 6), (4, 1, 5, 1), dict(pads=[2, 0, 2, 0]), False),
    ("kernel_2x4", (1, 3, 9, 10), (3, 1, 2, 4), dict(pads=[1, 1, 0, 2]), True),
    ("same_upper_stride_2", (1, 5, 9, 8), (5, 1, 3, 3),
     dict(auto_pad="SAME_UPPER", strides=[2, 2]), True),
    ("same_lower_stride_2", (1, 5, 9, 8), (5, 1, 4, 4),
     dict(auto_pad="SAME_LOWER", strides=[2, 2]), True),
    ("valid", (2, 3, 6, 7), (3, 1, 3, 3), dict(auto_pad="VALID"), True),
    ("one_by_one_input", (1, 3, 1, 1), (3, 1, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    # 3x3 at stride 2 reads a zero-bordered plane: pads of 2, none, and input rows and columns
    # that no window reaches
    ("stride_2_pads_2", (1, 6, 11, 10), (6, 1, 3, 3), dict(pads=[2, 2, 2, 2], strides=[2, 2]),
     True),
    ("stride_2_unread_rows", (1, 4, 12, 12), (4, 1, 3, 3), dict(pads=[0, 2, 0, 0],
                                                               strides=[2, 2]), True),
    ("stride_2_wide", (1, 3, 9, 70), (3, 1, 3, 3), dict(pads=[1, 1, 1, 1], strides=[2, 2]),
     False),
]


def _random_case(seed: int) -> tuple[str, tuple, tuple, dict, bool]:
    rng = np.random.default_rng(1000 + seed)
    c = int(rng.integers(2, 9))
    mult = int(rng.choice([1, 1, 2, 3]))
    k = [int(rng.integers(1, 6)) for _ in range(2)]
    s = [int(rng.integers(1, 4)) for _ in range(2)]
    d = [int(rng.integers(1, 3)) for _ in range(2)]
    p = [int(rng.integers(0, 4)) for _ in range(4)]
    ek = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
    size = [int(rng.integers(max(1, e - p[i] - p[i + 2]), 20)) for i, e in enumerate(ek)]
    if k == [1, 1] and not any(p):
        p[0] = 1  # a 1x1 kernel without padding is a matrix product, not this path
    n = int(rng.integers(1, 3))
    attrs = dict(pads=p, strides=s, dilations=d)
    return f"random_{seed}", (n, c, *size), (c * mult, 1, *k), attrs, bool(rng.random() < 0.7)


_CASES = _NAMED + [_random_case(i) for i in range(24)]


def _inputs(x_shape, w_shape, with_bias, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if with_bias else None
    return x, w, b


def _conv(x, w, b, attrs):
    return conv(x, w, b, group=x.shape[1], **attrs)[0]


def _tolerance(dtype):
    return (1e-5, 1e-5) if dtype == np.float32 else (1e-12, 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name, x_shape, w_shape, attrs, with_bias", _CASES,
                         ids=[c[0] for c in _CASES])
def test_loop_matches_numpy_path_and_onnxruntime(loop_calls, name, x_shape, w_shape, attrs,
                                                 with_bias, dtype):
    x, w, b = _inputs(x_shape, w_shape, with_bias, dtype)
    got = _conv(x, w, b, attrs)
    ran = loop_calls.ran("conv_loops.depthwise2d")  # once per part where the call is split
    assert ran and all(ran), "the compiled depthwise loop did not run"
    with jit.disabled():
        want = _conv(x, w, b, attrs)
    rtol, atol = _tolerance(dtype)
    assert_close(got, want, rtol, atol, what=f"{name}: loop vs NumPy path")
    if dtype == np.float32:
        inputs = [x, w] + ([b] if b is not None else [])
        ref = run_ort("Conv", inputs, dict(group=x_shape[1], **attrs), opset=17)[0]
        assert_close(got, ref, 1e-4, 1e-5, what=f"{name}: loop vs onnxruntime")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("strides", [[1, 1], [2, 2]], ids=["stride1", "stride2"])
def test_nan_and_infinity_propagate_as_in_numpy_path(loop_calls, dtype, strides):
    x, w, b = _inputs((2, 3, 9, 8), (6, 1, 3, 3), True, dtype)
    # on the borders (next to the padding, where the loop's rows wrap) and inside
    x[0, 0, 0, 0] = np.nan
    x[0, 1, 4, 7] = np.inf
    x[0, 1, 8, 0] = -np.inf
    x[1, 2, 3, 3] = np.inf
    x[1, 2, 3, 4] = -np.inf  # inf - inf: NaN where both are in a window
    x[1, 0, 8, 7] = np.nan
    w[1, 0, 1, 1] = 0.0  # 0 * inf is NaN
    attrs = dict(pads=[1, 1, 1, 1], strides=strides)
    got = _conv(x, w, b, attrs)
    assert loop_calls.ran("conv_loops.depthwise2d") == [True]
    with jit.disabled(), np.errstate(invalid="ignore"):  # inf - inf in the product is meant
        want = _conv(x, w, b, attrs)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
    assert np.isnan(got).any() and np.isinf(got).any()
    rtol, atol = _tolerance(dtype)
    assert_close(got, want, rtol, atol)


def test_float16_computes_in_float32(loop_calls):
    x, w, b = _inputs((1, 8, 10, 10), (8, 1, 3, 3), True, np.float16)
    attrs = dict(pads=[1, 1, 1, 1], strides=[2, 1])
    got = _conv(x, w, b, attrs)
    assert loop_calls.ran("conv_loops.depthwise2d") == [True]  # the loop ran on the float32 compute copy
    assert got.dtype == np.float16
    with jit.disabled():
        want = _conv(x, w, b, attrs)
    assert_close(got, want, 1e-3, 1e-3)
    ref = _conv(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), attrs)
    assert_close(got, ref.astype(np.float16), 1e-3, 1e-2)


def test_non_contiguous_input(loop_calls):
    x, w, b = _inputs((1, 6, 12, 10), (6, 1, 3, 3), True, np.float32)
    xs = x[:, :, ::2, 1:]
    got = _conv(xs, w, b, dict(pads=[1, 1, 1, 1]))
    assert loop_calls.ran("conv_loops.depthwise2d") == [True]
    with jit.disabled():
        want = _conv(xs, w, b, dict(pads=[1, 1, 1, 1]))
    assert_close(got, want, 1e-5, 1e-5)


def test_fused_conv_takes_the_loop(loop_calls):
    x, w, b = _inputs((1, 6, 9, 9), (6, 1, 3, 3), True, np.float32)
    attrs = dict(group=6, pads=[1, 1, 1, 1], activation="Relu")
    got = fused_conv(x, w, b, **attrs)[0]
    assert loop_calls.ran("conv_loops.depthwise2d") == [True]
    with jit.disabled():
        want = fused_conv(x, w, b, **attrs)[0]
    assert_close(got, want, 1e-5, 1e-5)
    assert (got >= 0).all()


# Relu and Clip are applied by the loop as it stores; the others by the epilogue after it
_STORED = [("Relu", []), ("Clip", [-0.5, 0.7]), ("HardSigmoid", [0.25, 0.4]),
           ("HardSwish", []), ("Sigmoid", []), ("Swish", [1.0])]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("activation,params", _STORED)
@pytest.mark.parametrize("w_shape,attrs", [
    ((8, 1, 3, 3), dict(pads=[1, 1, 1, 1])),                       # the one-pass 3x3 loop
    ((8, 1, 3, 3), dict(pads=[1, 0, 1, 2], strides=[2, 2])),
    ((16, 1, 3, 3), dict(pads=[2, 2, 2, 2], dilations=[2, 2])),    # channel multiplier 2
    ((8, 1, 5, 5), dict(pads=[2, 2, 2, 2]))],                      # the general passes
    ids=["3x3", "3x3_stride2", "3x3_dilated_mult2", "5x5"])
@pytest.mark.parametrize("width", [18, 70], ids=["short_rows", "long_rows"])
def test_fused_activation_with_the_loop(loop_calls, dtype, activation, params, w_shape,
                                               attrs, width):
    """FusedConv (the pyonnx domain's, which has HardSwish) with each activation through the
    depthwise loop (which applies Relu and Clip as it stores; NaN stays NaN): the same values
    as the convolution followed by the activation's own kernel. Output rows of 32 and more
    take the one-pass 3x3 loop."""
    x, w, b = _inputs((1, 8, 17, width), w_shape, True, dtype)
    x[0, 3, 4, 5] = np.nan
    attrs = dict(group=8, activation=activation, activation_params=params, **attrs)
    got = private_fused_conv(x, w, b, **attrs)[0]
    assert loop_calls.ran("conv_loops.depthwise2d") == [True]
    plain = {k: v for k, v in attrs.items()
             if k not in ("activation", "activation_params", "group")}
    with jit.disabled():
        want = private_fused_conv(x, w, b, **attrs)[0]
        unfused = apply_activation(_conv(x, w, b, plain), activation, params)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got).any()
    tol = (1e-5, 1e-5) if dtype == np.float32 else (1e-12, 1e-12)
    assert_close(got, want, *tol)
    assert_close(got, unfused, *tol)


def test_numpy_path_when_loops_are_off():
    """With the loops off, the same geometry gives onnxruntime's result through NumPy alone."""
    x, w, b = _inputs((1, 5, 8, 8), (10, 1, 3, 3), True, np.float32)
    attrs = dict(pads=[1, 0, 2, 1], strides=[2, 1])
    with jit.disabled():
        got = _conv(x, w, b, attrs)
    ref = run_ort("Conv", [x, w, b], dict(group=5, **attrs), opset=17)[0]
    assert_close(got, ref, 1e-4, 1e-5)


# shared with the intra-op pool (threads.shared_loop): pieces of channels of the phase loop
# (long rows, stride 2, a channel multiplier) and of the channels-last loop (7x7 outputs)
_SHARED = [((1, 48, 28, 28), (48, 1, 3, 3), dict(pads=[1, 1, 1, 1], strides=[2, 2])),
           ((1, 40, 40, 40), (40, 1, 3, 3), dict(pads=[1, 1, 1, 1])),
           ((1, 12, 20, 20), (36, 1, 5, 5), dict(pads=[2, 2, 2, 2])),
           ((1, 200, 7, 7), (200, 1, 5, 5), dict(pads=[2, 2, 2, 2])),
           ((1, 96, 14, 14), (96, 1, 3, 3), dict(pads=[1, 1, 1, 1], strides=[2, 2]))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", range(len(_SHARED)))
def test_shared_with_the_pool_equals_one_thread(loop_calls, shared_pool, monkeypatch, case,
                                                dtype):
    from pyonnx.backends.cpu import conv as fast_conv
    from pyonnx.backends.cpu import threads

    x_shape, w_shape, attrs = _SHARED[case]
    x, w, b = _inputs(x_shape, w_shape, True, dtype, seed=case)
    monkeypatch.setattr(fast_conv, "MIN_SHARED_DEPTHWISE_MACS", 1 << 10)
    got = [_conv(x, w, b, attrs) for _ in range(5)]
    assert shared_pool and all(n.startswith("conv_loops.depthwise2d") for n, _, _ in shared_pool)
    assert all(parts > 1 and c[1] == parts for _, c, parts in shared_pool)
    threads._budget = 1
    want = _conv(x, w, b, attrs)
    for g in got:
        np.testing.assert_array_equal(g, want)
    with jit.disabled():  # onnxruntime has no float64 Conv: NumPy's path is the oracle
        ref = _conv(x, w, b, attrs)
    np.testing.assert_allclose(want, ref, *_tolerance(dtype))
