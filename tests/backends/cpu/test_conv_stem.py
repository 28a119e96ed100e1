"""The CPU provider's Conv on a network's stem (few input channels, an image larger than the
small-input limit): one column matrix instead of bands (pyonnx.backends.cpu.conv._FEW_COLS) on
the NumPy path; with compiled loops, a 2-D kernel without dilation builds its columns band by
band (``conv_loops.columns_product_claimed``, from the input's column phases), shared with the
intra-op threads, to the bit what the product over the whole column matrix gives. Both against
the reference kernel."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import conv as fast_conv
from pyonnx.backends.cpu import jit, pointwise, threads
from pyonnx.ops.conv import conv as reference_conv
from pyonnx.ops.conv import conv_window

_STEMS = [((1, 3, 96, 96), (16, 3, 3, 3), dict(pads=[1, 1, 1, 1], strides=[2, 2])),
          ((2, 3, 70, 66), (8, 3, 3, 3), dict(pads=[0, 1, 2, 1], strides=[1, 2])),
          ((1, 2, 80, 80), (4, 2, 4, 4), dict(strides=[1, 1], dilations=[2, 1]))]


def _inputs(xs, ws):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    return x, w, b


@pytest.mark.parametrize("xs,ws,attrs", _STEMS)
def test_stem_takes_one_column_matrix_and_equals_reference(monkeypatch, xs, ws, attrs):
    x, w, b = _inputs(xs, ws)
    calls = []
    real = fast_conv._im2col_small

    def spy(*args):  # type: ignore[no-untyped-def]
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(fast_conv, "_im2col_small", spy)
    with jit.disabled():
        got = fast_conv.conv(x, w, b, **attrs)[0]
    assert calls == [x.shape]  # above the small-input limit, yet one column matrix
    want = reference_conv(x, w, b, **attrs)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


# stems and other small-column kernels: strides 1, 2 and 3 (phases), padding on every side or
# none, kernels wider than their stride, batches, outputs of a few rows (one band)
_BANDED = [((1, 3, 96, 96), (16, 3, 3, 3), [1, 1, 1, 1], [2, 2]),
           ((2, 3, 70, 66), (8, 3, 3, 3), [0, 1, 2, 1], [1, 2]),
           ((2, 2, 9, 12), (5, 2, 5, 5), [2, 2, 2, 2], [2, 2]),
           ((1, 4, 10, 13), (7, 4, 2, 2), [0, 0, 0, 0], [3, 3]),
           ((3, 1, 12, 15), (4, 1, 7, 7), [3, 3, 3, 3], [2, 2]),
           ((1, 3, 8, 11), (20, 3, 3, 3), [0, 0, 0, 0], [1, 1])]


@pytest.mark.parametrize("budget", [1, 2])
@pytest.mark.parametrize("xs,ws,pads,strides", _BANDED)
def test_banded_stem_is_the_whole_matrix_product(loop_calls, shared_pool, monkeypatch, budget,
                                                 xs, ws, pads, strides):
    x, w, b = _inputs(xs, ws)
    threads._budget = budget
    win = conv_window(x, w, b, "NOTSET", None, 1, list(ws[2:]), pads, strides, None, None)
    stored = pointwise.store_activation("HardSwish", [])
    got = fast_conv._small_columns_product(x, w, win, b, stored)
    assert loop_calls.ran("conv_loops.columns_product_claimed") == [True]
    length = got.size // (xs[0] * ws[0])
    plan = pointwise.product(w, b, xs[0], w.size // ws[0], length, stored, False)
    whole = np.empty_like(got)
    assert plan.into(fast_conv._im2col_small(x, win), whole.reshape(-1), ws[0] * length,
                     length, None)
    np.testing.assert_array_equal(got, whole)
    want = reference_conv(x, w, b, pads=pads, strides=strides)[0]
    want = want * np.clip(want / 6 + 0.5, 0, 1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_a_large_stem_is_built_in_bands(loop_calls, shared_pool):
    """A stem whose whole column matrix is past twice the band budget (LR-ASPP's, on a 520x520
    image, here 3 x 420 x 420) is still built band by band by the compiled loop, not by the
    split OpenBLAS path, and equals the reference."""
    x, w, b = _inputs((1, 3, 420, 420), (16, 3, 3, 3))
    threads._budget = 2
    attrs = dict(pads=[1, 1, 1, 1], strides=[2, 2])
    cols_bytes = 27 * 210 * 210 * 4
    assert not fast_conv._small_columns(1, 3, 9, 210 * 210, 4) \
        and cols_bytes > 2 * fast_conv._COLS_BUDGET
    got = fast_conv.conv(x, w, b, **attrs)[0]
    assert loop_calls.ran("conv_loops.columns_product_claimed") == [True]
    want = reference_conv(x, w, b, **attrs)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_a_large_stem_whose_loop_does_not_run_takes_the_bands(monkeypatch):
    """Where the banded loop does not run (here: it reports so), a large stem is not built as
    one whole column matrix: the convolution's own bands compute it."""
    x, w, b = _inputs((1, 3, 420, 420), (16, 3, 3, 3))
    attrs = dict(pads=[1, 1, 1, 1], strides=[2, 2])
    monkeypatch.setattr(threads, "shared_loop", lambda *a, **k: False)
    whole = []
    real = fast_conv._im2col_small
    monkeypatch.setattr(fast_conv, "_im2col_small", lambda *a: whole.append(1) or real(*a))
    got = fast_conv.conv(x, w, b, **attrs)[0]
    assert whole == []
    np.testing.assert_allclose(got, reference_conv(x, w, b, **attrs)[0], rtol=1e-4, atol=1e-4)
