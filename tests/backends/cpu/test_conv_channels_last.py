"""The channels-last depthwise path of the CPU provider's Conv (``_depthwise_2d_channels_last``,
taken without compiled loops where there are many channels per output column) against the
reference kernel: called directly on random geometries (strides, dilations, asymmetric pads,
pads larger than the kernel, windows that leave input rows unread, batches, with and without
bias, float32 and float64), and through ``conv`` to check the shapes that select it."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import conv as fast
from pyonnx.backends.cpu import jit
from pyonnx.ops.conv import conv as reference
from pyonnx.ops.conv import conv_window
from tests.ops._oracle import assert_close


def _case(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict]:
    rng = np.random.default_rng(7000 + seed)
    c = int(rng.integers(1, 40))
    k = [int(rng.integers(1, 6)) for _ in range(2)]
    s = [int(rng.integers(1, 4)) for _ in range(2)]
    d = [int(rng.integers(1, 3)) for _ in range(2)]
    p = [int(rng.integers(0, 4)) for _ in range(4)]
    ek = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
    size = [int(rng.integers(max(1, e - p[i] - p[i + 2]), 16)) for i, e in enumerate(ek)]
    n = int(rng.integers(1, 3))
    dtype = np.float32 if rng.random() < 0.7 else np.float64
    x = rng.standard_normal((n, c, *size)).astype(dtype)
    w = rng.standard_normal((c, 1, *k)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype) if rng.random() < 0.7 else None
    return x, w, b, dict(group=c, kernel_shape=k, strides=s, dilations=d, pads=p)


def _tol(dtype: np.dtype) -> tuple[float, float]:
    return (1e-5, 1e-5) if dtype == np.float32 else (1e-12, 1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_channels_last_matches_reference(seed: int) -> None:
    x, w, b, attrs = _case(seed)
    want = reference(x, w, b, **attrs)[0]
    win = conv_window(x, w, b, "NOTSET", attrs["dilations"], attrs["group"],
                      attrs["kernel_shape"], attrs["pads"], attrs["strides"], None, None)
    for _ in range(2):  # the second call reuses the scratch buffers (borders zeroed again)
        got = fast._depthwise_2d_channels_last(x, w, win, b)
        assert_close(got, want, *_tol(x.dtype))


def test_nan_and_infinity_reach_only_their_windows() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 80, 7, 7)).astype(np.float32)
    w = rng.standard_normal((80, 1, 3, 3)).astype(np.float32)
    x[0, 0, 0, 0] = np.nan
    x[0, 5, 6, 6] = np.inf
    attrs = dict(group=80, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    with jit.disabled():
        got = fast.conv(x, w, None, **attrs)[0]
    want = reference(x, w, None, **attrs)[0]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    assert_close(got, want, 1e-5, 1e-5)


@pytest.mark.parametrize("c, size, k, stride, chosen", [
    (576, 7, 5, 1, True),     # a late mobile-CNN layer
    (288, 14, 5, 2, True),
    (96, 28, 5, 2, True),
    (88, 28, 3, 1, False),    # few channels per output column: the phase-column path
    (32, 40, 3, 1, False),
])
def test_selection_by_channels_per_output_column(monkeypatch, c, size, k, stride, chosen) -> None:
    calls = []
    real = fast._depthwise_2d_channels_last

    def spy(*args):  # type: ignore[no-untyped-def]
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(fast, "_depthwise_2d_channels_last", spy)
    rng = np.random.default_rng(c)
    x = rng.standard_normal((1, c, size, size)).astype(np.float32)
    w = rng.standard_normal((c, 1, k, k)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    attrs = dict(group=c, kernel_shape=[k, k], pads=[k // 2] * 4, strides=[stride, stride])
    with jit.disabled():
        got = fast.conv(x, w, b, **attrs)[0]
    assert bool(calls) == chosen
    assert_close(got, reference(x, w, b, **attrs)[0], 1e-5, 1e-5)
