"""The fused kernels' epilogue (pyonnx.backends.cpu.fused.bias_activation and the compiled
``act_loops.bias_activation``): a per-channel bias and an activation applied in one pass, and
the ``pyonnx`` FusedConv that uses it, against the reference kernels on random shapes."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import fused, jit
from pyonnx.ops import activation as act
from pyonnx.ops.conv import conv as reference_conv

# activation -> (its parameters, the reference kernel)
_ACTIVATIONS = {
    "Relu": ([], lambda y: act.Relu(y)[0]),
    "Sigmoid": ([], lambda y: act.Sigmoid(y)[0]),
    "Swish": ([1.0], lambda y: act.Swish(y, alpha=1.0)[0]),
    "Swish-0.7": ([0.7], lambda y: act.Swish(y, alpha=0.7)[0]),
    "HardSigmoid": ([0.3, 0.4], lambda y: act.HardSigmoid(y, alpha=0.3, beta=0.4)[0]),
    "HardSwish": ([], lambda y: act.HardSwish(y)[0]),
    "Clip": ([-1.5, 4.0], lambda y: np.clip(y, np.float32(-1.5), np.float32(4.0))),
    "Tanh": ([], lambda y: act.Tanh(y)[0]),
    "LeakyRelu": ([0.1], lambda y: act.LeakyRelu(y, alpha=0.1)[0]),
}

# The compiled exponential is within a few units in the last place of NumPy's (float32: 6e-8
# each); the hard activations' alpha * v + beta may be one fused multiply-add.
_RTOL = {np.float32: 2e-6, np.float64: 1e-13}


def _reference(name: str, y: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    y = y.copy()
    if bias is not None:
        y += bias.reshape((1, -1) + (1,) * (y.ndim - 2))
    return _ACTIVATIONS[name][1](y).astype(y.dtype)


def _random(rng: np.random.Generator, dtype) -> tuple[np.ndarray, np.ndarray]:
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 40))) \
        + tuple(int(v) for v in rng.integers(1, 20, size=int(rng.integers(0, 3))))
    y = (rng.standard_normal(shape) * 6).astype(dtype)
    return y, rng.standard_normal(shape[1]).astype(dtype)


@pytest.mark.parametrize("name", sorted(_ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [True, False])
def test_bias_activation_equals_reference(name, dtype, with_bias):
    rng = np.random.default_rng(abs(hash((name, with_bias))) % 1000)
    op = name.split("-")[0]
    params = _ACTIVATIONS[name][0]
    for _ in range(6):
        y, bias = _random(rng, dtype)
        if not with_bias:
            bias = None
        want = _reference(name, y, bias)
        got = fused.bias_activation(y, bias, op, params)
        assert got.dtype == want.dtype
        assert (got is y) == (op != "LeakyRelu")  # in place (LeakyRelu: the reference kernel)
        # absolute as well: a fused multiply-add near HardSigmoid's zero cancels to a last
        # place of its terms (values here are of order 1 to 30)
        np.testing.assert_allclose(got, want, rtol=_RTOL[dtype], atol=_RTOL[dtype])


@pytest.mark.parametrize("name", sorted(_ACTIVATIONS))
def test_numpy_path_is_bit_exact(name):
    # the NumPy path computes the reference's operations in their order: to the last bit
    rng = np.random.default_rng(7)
    op = name.split("-")[0]
    y, bias = _random(rng, np.float32)
    want = _reference(name, y, bias)
    with jit.disabled():
        got = fused.bias_activation(y, bias, op, _ACTIVATIONS[name][0])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["Sigmoid", "Swish", "Swish-0.7"])
def test_compiled_sigmoids_over_the_float32_range(loop_calls, name):
    op = name.split("-")[0]
    params = _ACTIVATIONS[name][0]
    v = np.linspace(-120, 120, 400_001, dtype=np.float32)
    v = np.concatenate([v, np.array([0, -0.0, 1e-40, -1e-40, 87.5, -87.5, 88.5, -88.5, 89.5,
                                     -89.5, 3e38, -3e38, np.inf, -np.inf, np.nan],
                                    np.float32)])
    y = v.reshape(1, 1, -1).copy()
    with np.errstate(all="ignore"):
        want = _ACTIVATIONS[name][1](y.copy())
    got = fused.apply_activation(y, op, params)
    assert loop_calls.ran("act_loops.bias_activation") == [True]
    # NaN where the reference has NaN (Swish(-inf) is -inf * 0), the same infinities
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    fin = np.isfinite(want)
    # a few units in the last place; results below 1e-36 (exponentials beyond float32's
    # range, which NumPy takes into denormals) may be 0 here
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-6, atol=1e-36)


def test_float64_sigmoids_take_numpy(loop_calls):
    y = np.random.default_rng(3).standard_normal((1, 4, 64, 64))
    want = act.Swish(y.copy(), alpha=1.0)[0]
    got = fused.bias_activation(y, None, "Swish", [1.0])
    assert loop_calls.ran("act_loops.bias_activation") == []
    np.testing.assert_array_equal(got, want)


def test_non_contiguous_or_read_only_results_take_numpy(loop_calls):
    y = np.random.default_rng(4).standard_normal((1, 3, 8, 8)).astype(np.float32)
    b = np.arange(3, dtype=np.float32)
    view = y[..., ::2]
    want = _reference("Swish", view, b)
    got = fused.bias_activation(view, b, "Swish", [1.0])
    assert loop_calls.ran("act_loops.bias_activation") == []
    np.testing.assert_allclose(got, want, rtol=1e-6)


# -- FusedConv through the epilogue --------------------------------------------------------

_CONVS = [  # x shape, w shape, group, pads, strides
    ((1, 16, 12, 12), (24, 16, 1, 1), 1, [0, 0, 0, 0], [1, 1]),      # 1x1: a plain product
    ((2, 8, 9, 9), (12, 8, 3, 3), 1, [1, 1, 1, 1], [2, 2]),          # columns
    ((1, 24, 10, 10), (24, 1, 3, 3), 24, [1, 1, 1, 1], [1, 1]),      # depthwise (bias inside)
    ((1, 80, 7, 7), (80, 1, 5, 5), 80, [2, 2, 2, 2], [1, 1]),        # channels-last depthwise
    ((1, 12, 8, 8), (12, 4, 3, 3), 3, [1, 1, 1, 1], [1, 1]),         # grouped
    ((1, 6, 20), (10, 6, 3), 1, [1, 1], [1]),                        # 1-D
]


@pytest.mark.parametrize("case", range(len(_CONVS)))
@pytest.mark.parametrize("name", ["Swish", "HardSwish", "Relu", "Sigmoid", "Clip", "Tanh"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_fused_conv_equals_conv_then_activation(case, name, with_bias):
    xs, ws, group, pads, strides = _CONVS[case]
    rng = np.random.default_rng(case)
    x = rng.standard_normal(xs).astype(np.float32) * 2
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32) if with_bias else None
    params, reference = _ACTIVATIONS[name]
    attrs = dict(group=group, pads=pads, strides=strides)
    want = reference(reference_conv(x, w, b, **attrs)[0])
    got = fused.private_fused_conv(x, w, b, activation=name, activation_params=params,
                                   **attrs)[0]
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    with jit.disabled():
        plain = fused.private_fused_conv(x, w, b, activation=name, activation_params=params,
                                         **attrs)[0]
    np.testing.assert_allclose(plain, want, rtol=1e-5, atol=1e-5)


def test_fused_conv_with_residual_and_half_precision_keep_their_path():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    z = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    attrs = dict(pads=[1, 1, 1, 1])
    want = act.Swish(reference_conv(x, w, b, **attrs)[0] + z, alpha=1.0)[0]
    got = fused.private_fused_conv(x, w, b, z, activation="Swish", activation_params=[1.0],
                                   **attrs)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    h = [a.astype(np.float16) for a in (x, w, b)]
    want16 = act.Swish(reference_conv(*h, **attrs)[0], alpha=1.0)[0]
    got16 = fused.private_fused_conv(*h, activation="Swish", activation_params=[1.0],
                                     **attrs)[0]
    assert got16.dtype == np.float16
    np.testing.assert_allclose(got16.astype(np.float32), want16.astype(np.float32),
                               rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", ["Relu", "Clip", "HardSwish", "Swish"])
def test_a_band_of_columns_takes_the_loop(loop_calls, name):
    """A band of output columns of a larger result (rows ``ld`` apart, as a split
    convolution's part finishes it) gets the loop, with the values of the contiguous case."""
    y = np.random.default_rng(5).standard_normal((1, 6, 40, 3000)).astype(np.float32)
    b = np.arange(6, dtype=np.float32) - 3
    band = y.reshape(1, 6, -1)[:, :, 1000:9000]
    want = fused.bias_activation(np.ascontiguousarray(band), b, name, _ACTIVATIONS[name][0])
    rest = y.reshape(1, 6, -1)[:, :, 9000:].copy()
    got = fused.bias_activation(band, b, name, _ACTIVATIONS[name][0])
    assert got is band and loop_calls.ran("act_loops.bias_activation") == [True, True]
    np.testing.assert_array_equal(band, want)
    np.testing.assert_array_equal(y.reshape(1, 6, -1)[:, :, 9000:], rest)  # untouched


@pytest.mark.parametrize("name", ["Sigmoid", "Swish"])
@pytest.mark.parametrize("shape, with_bias", [((1, 3, 70, 71), False), ((2, 5, 33, 20), True),
                                              ((1, 1, 9000, 1), False)],
                         ids=["one_row", "rows", "one_row_of_chunks"])
def test_sigmoid_epilogues_shared_with_the_pool_equal_one_thread(loop_calls, shared_pool,
                                                                 monkeypatch, name, shape,
                                                                 with_bias):
    """Sigmoid and Swish epilogues cut into pieces (of rows, or of the one row's chunks) for
    the pool's threads compute every element as one thread does (NaN and the clamps
    included)."""
    from pyonnx.backends.cpu import threads

    monkeypatch.setattr(fused, "MIN_SHARED_SIGMOID", 1 << 10)
    rng = np.random.default_rng(7)
    y0 = (rng.standard_normal(shape) * 40).astype(np.float32)
    y0.flat[::97] = np.nan
    bias = rng.standard_normal(shape[1]).astype(np.float32) if with_bias else None
    params = [1.5] if name == "Swish" else []
    got = [fused.bias_activation(y0.copy(), bias, name, params) for _ in range(4)]
    assert shared_pool and all(n == "act_loops.bias_activation_claimed" and parts > 1
                               for n, _, parts in shared_pool)
    threads._budget = 1
    want = fused.bias_activation(y0.copy(), bias, name, params)
    for g in got:
        np.testing.assert_array_equal(g, want)
