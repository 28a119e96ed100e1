"""The CPU provider's Conv split over the intra-op threads (conv._split): every part computes
its channels or its band of output rows (columns, product and epilogue) as the whole
convolution would. A depthwise convolution's parts equal the unsplit result to the bit, with
and without the compiled loops, for the plain Conv and the fused epilogues. Parts that are
BLAS products may not: OpenBLAS picks its kernel by the product's shape, and a smaller product
may add the same K terms in another order (measured: a few float32 units in the last place),
so those are held to the unsplit result within float32 rounding of sums of K terms."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import conv as fast_conv, fused, jit, threads
from pyonnx.ops.conv import conv as reference_conv


@pytest.fixture
def two_threads(monkeypatch):
    """A budget of 2 (BLAS left alone), tiny parts so that small test convolutions split; the
    module's state is put back afterwards."""
    saved = (threads._budget, threads._pool, threads._blas_set)
    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(threads, "_set_blas", lambda n: None)
    monkeypatch.setattr(fast_conv, "MIN_PART_MACS", 1 << 12)
    threads._budget, threads._pool = 0, None
    threads.request(2)
    try:
        yield
    finally:
        threads._pool.shutdown(wait=True)
        threads._budget, threads._pool, threads._blas_set = saved


# x shape, w shape, attributes
_CASES = [
    ((1, 24, 40, 40), (24, 1, 3, 3), dict(group=24, pads=[1, 1, 1, 1])),
    ((1, 32, 41, 39), (32, 1, 3, 3), dict(group=32, pads=[1, 1, 1, 1], strides=[2, 2])),
    ((1, 96, 9, 9), (96, 1, 5, 5), dict(group=96, pads=[2, 2, 2, 2])),          # channels-last
    ((1, 300, 7, 7), (300, 1, 3, 3), dict(group=300, pads=[1, 1, 1, 1])),
    ((2, 16, 20, 20), (32, 1, 3, 3), dict(group=16, pads=[0, 1, 1, 0])),       # batch, mult 2
    ((1, 16, 30, 30), (40, 16, 1, 1), {}),                                      # 1x1
    ((1, 16, 31, 31), (40, 16, 1, 1), dict(strides=[2, 2])),
    ((1, 3, 64, 64), (16, 3, 3, 3), dict(pads=[1, 1, 1, 1], strides=[2, 2])),  # a stem
    ((1, 12, 20, 20), (24, 12, 3, 3), dict(pads=[1, 1, 1, 1])),
    ((1, 16, 20, 20), (32, 4, 3, 3), dict(group=4, pads=[1, 1, 1, 1])),        # grouped
    ((1, 8, 400), (16, 8, 3), dict(strides=[2])),                               # 1-D
    ((1, 64, 9), (64, 16, 24), dict(group=4, pads=[12, 12])),                  # by groups
]

_ACTIVATIONS = [("", []), ("Relu", []), ("Clip", [0.0, 6.0]), ("HardSwish", []),
                ("Swish", [1.0]), ("LeakyRelu", [0.1])]


def _inputs(xs, ws, dtype):
    rng = np.random.default_rng(sum(xs) + sum(ws))
    return (rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype),
            rng.standard_normal(ws[0]).astype(dtype))


def _same(got, want, exact, msg=""):
    if exact:
        np.testing.assert_array_equal(got, want, err_msg=msg)
    else:
        tol = 1e-5 if got.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=msg)


def _fused(x, w, b, attrs, activation, params):
    return fused.private_fused_conv(x, w, b, activation=activation, activation_params=params,
                                    **attrs)[0]


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(_CASES)))
def test_split_equals_unsplit(two_threads, monkeypatch, case, dtype, compiled):
    xs, ws, attrs = _CASES[case]
    exact = attrs.get("group", 1) == xs[1]  # depthwise: no BLAS product
    x, w, b = _inputs(xs, ws, dtype)
    # the BLAS paths' split: float32 1x1 convolutions otherwise take the packed product
    # (tests/backends/cpu/test_pointwise.py splits that one)
    monkeypatch.setattr(fast_conv, "pointwise_conv", lambda *a: None)
    monkeypatch.setattr(fused, "pointwise_product", lambda *a: None)
    calls = []
    split = fast_conv._split
    monkeypatch.setattr(fast_conv, "_split",
                        lambda *a: calls.append(split(*a)) or calls[-1])
    with (jit.disabled() if not compiled else _nothing()):
        for bias in (None, b):
            got = fast_conv.conv(x, w, bias, **attrs)[0]
            monkeypatch.setattr(threads, "_budget", 1)
            want = fast_conv.conv(x, w, bias, **attrs)[0]
            monkeypatch.setattr(threads, "_budget", 2)
            _same(got, want, exact)
            np.testing.assert_allclose(got, reference_conv(x, w, bias, **attrs)[0],
                                       rtol=1e-4, atol=1e-4)
        for activation, params in _ACTIVATIONS:
            if dtype == np.float64 and activation == "Swish":
                continue
            got = _fused(x, w, b, attrs, activation, params)
            monkeypatch.setattr(threads, "_budget", 1)
            want = _fused(x, w, b, attrs, activation, params)
            monkeypatch.setattr(threads, "_budget", 2)
            _same(got, want, exact, activation)
    if compiled and exact and jit.available():
        # the compiled depthwise loops share their pieces with the pool themselves
        assert calls == []
    else:
        assert any(y is not None for y in calls)  # some part ran split


def test_small_convolutions_are_not_split(two_threads, monkeypatch):
    monkeypatch.setattr(fast_conv, "MIN_PART_MACS", 1 << 30)
    parts = []
    monkeypatch.setattr(threads, "parallel_for", lambda *a, **k: parts.append(a))
    x, w, b = _inputs((1, 16, 30, 30), (40, 16, 1, 1), np.float32)
    np.testing.assert_allclose(fast_conv.conv(x, w, b)[0], reference_conv(x, w, b)[0],
                               rtol=1e-5, atol=1e-5)
    assert parts == []


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
