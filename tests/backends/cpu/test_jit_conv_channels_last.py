"""The compiled channels-last depthwise loop (``conv_loops.depthwise2d_channels_last``, taken for
small output maps with many channels) against Conv's NumPy path and the reference kernel: random
geometries (strides, dilations, asymmetric pads, pads larger than the kernel, windows that leave
input rows unread, batches, with and without bias, float32 and float64), NaN and infinity, and
the shapes that select it. float32 convolutions that the register tiles take (3x3 and 5x5 at
stride 1 or 2, ``test_jit_conv_tiles.py``) are tested here in float64."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import conv as fast
from pyonnx.backends.cpu import jit
from pyonnx.ops.conv import conv as reference
from tests.ops._oracle import assert_close

_LOOP = "conv_loops.depthwise2d_channels_last"


def _case(seed: int):
    rng = np.random.default_rng(9000 + seed)
    k = [int(rng.integers(1, 6)) for _ in range(2)]
    s = [int(rng.integers(1, 4)) for _ in range(2)]
    d = [int(rng.integers(1, 3)) for _ in range(2)]
    p = [int(rng.integers(0, 4)) for _ in range(4)]
    ek = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
    lo = [max(1, e - p[i] - p[i + 2]) for i, e in enumerate(ek)]
    # at most 8 output columns (the loop's maps): width + pads - extent <= 7
    size = [int(rng.integers(lo[0], 12)),
            int(rng.integers(lo[1], min(12, 8 + ek[1] - p[1] - p[3])))]
    if k == [1, 1] and not any(p):
        p[0] = 1  # a 1x1 kernel without padding is a matrix product, not a depthwise path
    ow = (size[1] + p[1] + p[3] - ek[1]) // s[1] + 1
    # enough channels per output column for the channels-last rule
    c = max(2, -(-fast._CHANNELS_LAST_MIN * ow // (k[0] * k[1]))) + int(rng.integers(0, 9))
    n = int(rng.integers(1, 3))
    dtype = np.float32 if rng.random() < 0.7 else np.float64
    if k[0] == k[1] and k[0] in (3, 5) and s[0] == s[1] and s[0] in (1, 2) and d == [1, 1]:
        dtype = np.float64  # float32 takes the register tiles
    x = rng.standard_normal((n, c, *size)).astype(dtype)
    w = rng.standard_normal((c, 1, *k)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype) if rng.random() < 0.7 else None
    return x, w, b, dict(group=c, kernel_shape=k, strides=s, dilations=d, pads=p)


@pytest.mark.parametrize("seed", range(30))
def test_loop_matches_numpy_path_and_reference(loop_calls, seed):
    x, w, b, attrs = _case(seed)
    got = fast.conv(x, w, b, **attrs)[0]
    assert got.shape[3] <= fast._JIT_CHANNELS_LAST_MAX_OW
    assert loop_calls.ran(_LOOP) == [True], "the channels-last loop did not run"
    again = fast.conv(x, w, b, **attrs)[0]  # reused scratch: the zero border is rewritten
    with jit.disabled():
        numpy_path = fast.conv(x, w, b, **attrs)[0]
    tol = (1e-5, 1e-5) if x.dtype == np.float32 else (1e-12, 1e-12)
    assert_close(got, numpy_path, *tol, what="loop vs NumPy path")
    assert_close(got, reference(x, w, b, **attrs)[0], *tol, what="loop vs reference")
    np.testing.assert_array_equal(again, got)


def test_nan_and_infinity_reach_only_their_windows(loop_calls):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 96, 7, 7))
    w = rng.standard_normal((96, 1, 3, 3))
    x[0, 0, 0, 0] = np.nan
    x[0, 7, 6, 6] = np.inf
    x[0, 9, 3, 3] = -np.inf
    w[9, 0, 1, 1] = 0.0  # 0 * -inf: NaN at that output only
    attrs = dict(group=96, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    got = fast.conv(x, w, None, **attrs)[0]
    assert loop_calls.ran(_LOOP) == [True]
    with np.errstate(invalid="ignore"):
        want = reference(x, w, None, **attrs)[0]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
    assert_close(got, want, 1e-12, 1e-12)


@pytest.mark.parametrize("c, size, k, stride, mult, chosen", [
    (576, 7, 5, 1, 1, True),
    (288, 14, 5, 2, 1, True),    # a 7x7 output
    (480, 14, 5, 1, 1, False),   # a 14x14 output: the phase loop
    (40, 7, 3, 1, 1, False),     # few channels per output column
    (96, 7, 3, 1, 2, False),     # a channel multiplier
])
def test_selection(loop_calls, c, size, k, stride, mult, chosen):
    rng = np.random.default_rng(c)
    x = rng.standard_normal((1, c, size, size))  # float64: float32 takes the register tiles
    w = rng.standard_normal((c * mult, 1, k, k))
    attrs = dict(group=c, kernel_shape=[k, k], pads=[k // 2] * 4, strides=[stride, stride])
    got = fast.conv(x, w, None, **attrs)[0]
    ran = loop_calls.ran(_LOOP)  # once per part where the call is split over threads
    assert (bool(ran) and all(ran)) if chosen else ran == []
    assert_close(got, reference(x, w, None, **attrs)[0], 1e-12, 1e-12)
