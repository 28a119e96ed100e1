"""The squeeze-and-excitation kernel (pyonnx domain, what FuseSqueezeExcitation writes): its
compiled loop (``act_loops.squeeze_excitation``) against the four nodes' kernels (its NumPy
path), for each activation the loop has, NaN included."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import jit
from pyonnx.backends.cpu.fused import squeeze_excitation
from pyonnx.ops.registry import NodeMemo

_ACTS = [("Relu", []), ("HardSigmoid", [0.2, 0.5]), ("Sigmoid", []), ("Swish", [1.0]),
         ("HardSwish", []), ("Clip", [-0.5, 0.7]), ("", [])]


@pytest.mark.parametrize("act1,p1", _ACTS)
@pytest.mark.parametrize("act2,p2", [("HardSigmoid", [1 / 6, 0.5]), ("Sigmoid", [])])
def test_loop_matches_the_nodes(loop_calls, act1, p1, act2, p2):
    rng = np.random.default_rng(3)
    c, r = 20, 6
    x = rng.standard_normal((2, c, 5, 7)).astype(np.float32)
    x[1, 3, 2, 2] = np.nan  # one channel's mean, and then every gate of that image
    w1 = (rng.standard_normal((r, c, 1, 1)) * 0.5).astype(np.float32)
    b1 = rng.standard_normal(r).astype(np.float32)
    w2 = (rng.standard_normal((c, r, 1, 1)) * 0.5).astype(np.float32)
    b2 = rng.standard_normal(c).astype(np.float32)
    attrs = dict(activation1=act1, activation1_params=p1, activation2=act2,
                 activation2_params=p2)
    got = squeeze_excitation(x, w1, b1, w2, b2, prepared=NodeMemo(), **attrs)[0]
    assert loop_calls.ran("act_loops.squeeze_excitation") == [True]
    with jit.disabled():
        want = squeeze_excitation(x, w1, b1, w2, b2, prepared=NodeMemo(), **attrs)[0]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_without_biases_and_in_float64(loop_calls):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 8, 4, 4))
    w1, w2 = rng.standard_normal((2, 8, 1, 1)), rng.standard_normal((8, 2, 1, 1))
    attrs = dict(activation1="Relu", activation2="Sigmoid")
    y64 = squeeze_excitation(x, w1, None, w2, None, **attrs)[0]  # the nodes' kernels
    assert y64.dtype == np.float64 and loop_calls.ran("act_loops.squeeze_excitation") == []
    gate = 1 / (1 + np.exp(-(w2[:, :, 0, 0] @ np.maximum(w1[:, :, 0, 0] @ x.mean(axis=(2, 3))[0],
                                                            0))))
    np.testing.assert_allclose(y64, x * gate[None, :, None, None], rtol=1e-12)
    y32 = squeeze_excitation(*(a.astype(np.float32) for a in (x, w1)), None,
                             w2.astype(np.float32), None, **attrs)[0]
    assert loop_calls.ran("act_loops.squeeze_excitation") == [True]
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6)


def test_constant_weights_keep_the_nodes_arguments(loop_calls, monkeypatch):
    from pyonnx.backends.cpu import fused

    made = []
    real = fused._SEBlock.__init__
    monkeypatch.setattr(fused._SEBlock, "__init__",
                        lambda self, *a: made.append(1) or real(self, *a))
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 12, 6, 6)).astype(np.float32)
    ws = [rng.standard_normal(s).astype(np.float32) for s in ((4, 12, 1, 1), (4,),
                                                             (12, 4, 1, 1), (12,))]
    for w in ws:
        w.flags.writeable = False
    memo = NodeMemo()
    attrs = dict(activation1="Relu", activation2="Sigmoid")
    first = squeeze_excitation(x, *ws, prepared=memo, **attrs)[0]
    for _ in range(3):
        np.testing.assert_array_equal(squeeze_excitation(x, *ws, prepared=memo, **attrs)[0],
                                      first)
    assert len(made) == 1
    other = [w.copy() for w in ws]  # other arrays (writeable): made anew each call
    np.testing.assert_array_equal(squeeze_excitation(x, *other, prepared=memo, **attrs)[0],
                                  first)
    squeeze_excitation(x, *other, prepared=memo, **attrs)
    assert len(made) == 3
