"""The CPU provider's Conv (its strategies chosen from the shapes) against the reference Conv of
pyonnx.ops on the reference tests' configurations, in float32 and float64, with the banded
column path forced by a tiny column budget."""

from __future__ import annotations

import numpy as np
import pytest

import pyonnx
from pyonnx.backends.cpu import conv as fast_conv
from pyonnx.ops.conv import conv as reference_conv
from tests.ops.test_conv import CONV_CASES


def _inputs(xs, ws, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    return x, w, rng.standard_normal(ws[0]).astype(dtype)


def _close(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_fast_conv_equals_reference(case, dtype):
    xs, ws, attrs = CONV_CASES[case]
    x, w, b = _inputs(xs, ws, dtype)
    for bias in (None, b):
        want = reference_conv(x, w, bias, **attrs)[0]
        got = fast_conv.conv(x, w, bias, **attrs)[0]
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, **_close(dtype))


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_banded_column_path_equals_reference(monkeypatch, case):
    """A tiny column budget forces the banded im2col path (per image, a reused buffer)."""
    xs, ws, attrs = CONV_CASES[case]
    x, w, _ = _inputs(xs, ws, np.float32)
    monkeypatch.setattr(fast_conv, "_COLS_BUDGET", 64)
    np.testing.assert_allclose(fast_conv.conv(x, w, **attrs)[0],
                               reference_conv(x, w, **attrs)[0], rtol=1e-4, atol=1e-4)


def test_fast_conv_raises_the_reference_errors():
    x = np.zeros((1, 3, 5, 5), np.float32)
    w = np.zeros((4, 2, 3, 3), np.float32)
    for fn in (fast_conv.conv, reference_conv):
        with pytest.raises(pyonnx.ExecutionError, match="group is 1, so X should have 2 channels"):
            fn(x, w)


@pytest.mark.parametrize("n_img", [1, 2])
def test_grouped_convolution_by_groups_equals_reference(monkeypatch, n_img):
    """A grouped convolution whose columns need bands but whose groups each fit the budget
    (a positional convolution) runs group by group."""
    rng = np.random.default_rng(n_img)
    x = rng.standard_normal((n_img, 64, 40)).astype(np.float32)
    w = rng.standard_normal((64, 16, 24)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    calls = []
    real = fast_conv._group_products
    monkeypatch.setattr(fast_conv, "_group_products", lambda *a: calls.append(1) or real(*a))
    # one group's columns and outputs fit, the whole matrix's 41 output positions do not
    monkeypatch.setattr(fast_conv, "_COLS_BUDGET", (16 * 24 + 16) * 41 * 4)
    attrs = dict(group=4, pads=[12, 12])
    np.testing.assert_allclose(fast_conv.conv(x, w, b, **attrs)[0],
                               reference_conv(x, w, b, **attrs)[0], rtol=1e-4, atol=1e-4)
    assert calls


@pytest.mark.parametrize("shape", [(1, 72, 1, 1), (1, 16, 3, 2), (1, 8, 5)])
def test_tiny_pointwise_convolution_equals_reference(monkeypatch, shape):
    """The squeeze-and-excitation convolutions' short path (one product, no strategy) gives
    the reference's result; the strategies are not consulted."""
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((24, shape[1]) + (1,) * (len(shape) - 2)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    monkeypatch.setattr(fast_conv, "_conv_core", None)  # would raise if called
    for bias in (None, b):
        np.testing.assert_allclose(fast_conv.conv(x, w, bias)[0],
                                   reference_conv(x, w, bias)[0], rtol=1e-5, atol=1e-5)
