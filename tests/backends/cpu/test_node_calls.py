"""A FusedConv node keeps its compiled call (the packed product's or the depthwise tiles'
prepared arguments) between runs: the same results as a fresh call, prepared once per input
shape, never kept for weights that can change, and prepared again when the intra-op budget
changes."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import conv as fast_conv
from pyonnx.backends.cpu import jit, pointwise, threads
from pyonnx.backends.cpu.fused import private_fused_conv
from pyonnx.ops.registry import NodeMemo

# (X shape, W shape, attributes, with a residual Z): a 1x1 convolution (packed product), one
# with its residual, a depthwise 3x3 (tiles) and a depthwise 5x5 at stride 2
_NODES = [((1, 16, 12, 12), (32, 16, 1, 1), {}, False),
          ((1, 16, 12, 12), (32, 16, 1, 1), {}, True),
          ((1, 24, 14, 14), (24, 1, 3, 3), dict(group=24, pads=[1, 1, 1, 1]), False),
          ((1, 24, 15, 15), (24, 1, 5, 5), dict(group=24, pads=[2, 2, 2, 2], strides=[2, 2]),
           False)]


def _constant(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _node(case: int, seed: int = 0):
    x_shape, w_shape, attrs, with_z = _NODES[case]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = _constant(rng.standard_normal(w_shape).astype(np.float32))
    b = _constant(rng.standard_normal(w_shape[0]).astype(np.float32))
    out = (x_shape[0], w_shape[0]) + tuple(
        (n + 2 * (w_shape[2] // 2 if attrs.get("pads") else 0) - w_shape[2])
        // attrs.get("strides", [1, 1])[0] + 1 for n in x_shape[2:])
    z = rng.standard_normal(out).astype(np.float32) if with_z else None
    return x, w, b, z, attrs


def _preparations(monkeypatch) -> list[str]:
    """The names of the call preparations made (Product and DepthwiseTiles built)."""
    made: list[str] = []
    for cls in (pointwise.Product, fast_conv.DepthwiseTiles):
        real = cls.__init__

        def spy(self, *a, real=real, name=cls.__name__, **k):
            made.append(name)
            real(self, *a, **k)

        monkeypatch.setattr(cls, "__init__", spy)
    return made


_PARAMS = {"Relu": [], "HardSwish": [], "Swish": [1.0], "LeakyRelu": [0.1]}


@pytest.mark.parametrize("case", range(len(_NODES)))
@pytest.mark.parametrize("activation", list(_PARAMS))
def test_kept_call_gives_a_fresh_calls_result(loop_calls, monkeypatch, case, activation):
    """Relu and HardSwish are applied in the stores; Swish in the product's stores and after
    the tiles; LeakyRelu after either, and a product followed by a pass is not kept."""
    x, w, b, z, attrs = _node(case)
    made = _preparations(monkeypatch)
    memo = NodeMemo()

    def run(x_, memo_):
        return private_fused_conv(x_, w, b, z, activation=activation,
                                  activation_params=_PARAMS[activation], prepared=memo_,
                                  **attrs)[0]

    first = run(x, memo)
    assert len(made) == 1
    again = [run(x, memo) for _ in range(3)]
    kept = activation != "LeakyRelu" or "group" in attrs
    assert len(made) == (1 if kept else 4), "the node's call was kept, or not, wrongly"
    fresh = run(x, None)  # no memo: prepared anew
    for y in again:
        np.testing.assert_array_equal(y, first)
    np.testing.assert_array_equal(fresh, first)
    x2 = np.random.default_rng(5).standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(run(x2, memo), run(x2, None))  # new values, same call
    with jit.disabled():
        np.testing.assert_allclose(first, run(x, NodeMemo()), rtol=1e-5, atol=1e-5)


def test_another_input_shape_prepares_its_own_call(loop_calls, monkeypatch):
    x, w, b, _, attrs = _node(0)
    made = _preparations(monkeypatch)
    memo = NodeMemo()
    wide = np.concatenate([x, x], axis=3)
    for xi in (x, wide, x, wide):
        y = private_fused_conv(xi, w, b, activation="Relu", activation_params=[],
                               prepared=memo, **attrs)[0]
        np.testing.assert_array_equal(y, private_fused_conv(
            xi, w, b, activation="Relu", activation_params=[], **attrs)[0])
    assert made.count("Product") == 2 + 4  # once per shape kept, once per call without memo


@pytest.mark.parametrize("case", [0, 2])
def test_writeable_weights_are_never_kept(loop_calls, case):
    """A weight fed at run time may change between runs: its call is prepared each time."""
    x, w, b, _, attrs = _node(case)
    w = w.copy()  # writeable
    memo = NodeMemo()
    first = private_fused_conv(x, w, b, activation="Relu", activation_params=[],
                               prepared=memo, **attrs)[0]
    w *= 2
    second = private_fused_conv(x, w, b, activation="Relu", activation_params=[],
                                prepared=memo, **attrs)[0]
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(second, private_fused_conv(
        x, w, b, activation="Relu", activation_params=[], **attrs)[0])


def test_a_new_budget_prepares_the_call_again(loop_calls, monkeypatch):
    x, w, b, _, attrs = _node(2)
    made = _preparations(monkeypatch)
    memo = NodeMemo()
    monkeypatch.setattr(threads, "_budget", 1)
    one = private_fused_conv(x, w, b, activation="Relu", activation_params=[], prepared=memo,
                             **attrs)[0]
    monkeypatch.setattr(threads, "_budget", 2)
    two = private_fused_conv(x, w, b, activation="Relu", activation_params=[], prepared=memo,
                             **attrs)[0]
    assert made == ["DepthwiseTiles", "DepthwiseTiles"]
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation, params", [("Relu", []), ("HardSigmoid", [0.2, 0.5]),
                                                ("Sigmoid", []), ("Swish", [1.0])])
def test_squeeze_and_excitation_convolutions_keep_their_product(monkeypatch, dtype, activation,
                                                                params):
    """The 1x1 convolutions of squeeze-and-excitation blocks (one small product) keep the
    weights as a matrix, with or without compiled loops: the same values as a fresh call, and
    as Conv followed by the activation."""
    from pyonnx.backends.cpu import fused
    from pyonnx.ops import activation as act
    from pyonnx.ops.conv import conv

    # the models' size rule: the packed product takes 1x1 outputs of any size otherwise
    monkeypatch.setattr(jit, "MIN_ELEMENTS", 1 << 14)
    rng = np.random.default_rng(2)
    w = _constant(rng.standard_normal((96, 24, 1, 1)).astype(dtype))
    b = _constant(rng.standard_normal(96).astype(dtype))
    made: list[int] = []
    real = fused._short_then
    monkeypatch.setattr(fused, "_short_then", lambda *a: made.append(1) or real(*a))

    def run(x_, memo_):
        return private_fused_conv(x_, w, b, activation=activation, activation_params=params,
                                  prepared=memo_)[0]

    for off in (False, True):
        memo = NodeMemo()
        with jit.disabled() if off else np.errstate():
            for seed in range(3):
                x = np.random.default_rng(seed).standard_normal((1, 24, 1, 1)).astype(dtype)
                y = run(x, memo)
                np.testing.assert_array_equal(y, run(x, None))
                attrs = dict(zip(("alpha", "beta"), params)) if activation != "Swish" \
                    else dict(alpha=params[0])
                want = getattr(act, activation)(conv(x, w, b)[0], **attrs)[0]
                tol = 1e-5 if dtype == np.float32 else 1e-12  # sums in another order
                np.testing.assert_allclose(y, want, rtol=tol, atol=tol)
        assert len(made) == 1 + 3  # once kept for the memo, once per call without one
        made.clear()
