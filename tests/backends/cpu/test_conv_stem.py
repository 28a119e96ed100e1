"""The CPU provider's Conv on a network's stem (few input channels, an image larger than the
small-input limit): one column matrix instead of bands (pyonnx.backends.cpu.conv._FEW_COLS),
against the reference kernel."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import conv as fast_conv
from pyonnx.ops.conv import conv as reference_conv


@pytest.mark.parametrize("xs,ws,attrs", [
    ((1, 3, 96, 96), (16, 3, 3, 3), dict(pads=[1, 1, 1, 1], strides=[2, 2])),
    ((2, 3, 70, 66), (8, 3, 3, 3), dict(pads=[0, 1, 2, 1], strides=[1, 2])),
    ((1, 2, 80, 80), (4, 2, 4, 4), dict(strides=[1, 1], dilations=[2, 1])),
])
def test_stem_takes_one_column_matrix_and_equals_reference(monkeypatch, xs, ws, attrs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    calls = []
    real = fast_conv._im2col_small

    def spy(*args):  # type: ignore[no-untyped-def]
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(fast_conv, "_im2col_small", spy)
    got = fast_conv.conv(x, w, b, **attrs)[0]
    assert calls == [x.shape]  # above the small-input limit, yet one column matrix
    want = reference_conv(x, w, b, **attrs)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
