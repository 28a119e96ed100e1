"""The packed 1x1 convolution (``pyonnx.backends.cpu.pointwise`` and its compiled loop
``gemm_loops.pointwise``) against a float64 product: every shape class of its tiles (whole
tiles, the 8-column and 16-column tails, panels with fewer than six rows), bias, residual and
clip bounds in its stores, NaN and infinity, the split over the intra-op threads, the packed
weights' cache, the cases it declines, and the session path (FusedConv with each activation,
constants seen read-only)."""

from __future__ import annotations

import gc

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pyonnx.backends.cpu import conv as fast_conv
from pyonnx.backends.cpu import fused, jit, pointwise, threads
from pyonnx.ops.conv import conv as reference_conv

_LOOP = "gemm_loops.pointwise"


def _want(x, w, bias, z, activation="", params=()):
    """activation(W @ X + bias + z) in float64, in the unfused graph's order."""
    y = np.einsum("mc,nc...->nm...", w.reshape(w.shape[0], -1).astype(np.float64),
                  x.astype(np.float64))
    if bias is not None:
        y = y + bias.astype(np.float64).reshape((1, -1) + (1,) * (x.ndim - 2))
    if z is not None:
        y = y + z
    return fused.apply_activation(y, activation, list(params))


def _inputs(n, c, m, spatial, seed=0, bias=True, residual=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c) + spatial).astype(np.float32)
    w = rng.standard_normal((m, c, 1, 1)).astype(np.float32)
    w.flags.writeable = False
    b = rng.standard_normal(m).astype(np.float32) if bias else None
    z = rng.standard_normal((n, m) + spatial).astype(np.float32) if residual else None
    return x, w, b, z


_STORED = [("", []), ("Relu", []), ("Clip", [0.0, 6.0]), ("Clip", [-0.5, 0.25]),
           ("HardSigmoid", [0.2, 0.5]), ("HardSwish", []), ("Sigmoid", []), ("Swish", [1.0]),
           ("Swish", [1.702])]


# (images, channels, output channels, spatial): columns a multiple of 16, 16k + 1 (a 7x7 map),
# 16k + 4 (14x14), fewer than 8, between 8 and 16; output channels below, at and past a panel
@pytest.mark.parametrize("shape", [(1, 8, 12, (4, 4)), (1, 32, 40, (7, 7)),
                                   (2, 5, 7, (14, 14)), (1, 3, 6, (1, 3)), (1, 17, 13, (3, 4)),
                                   (1, 1, 1, (5, 5)), (3, 24, 64, (2, 24)), (1, 9, 11, (33,))])
@pytest.mark.parametrize("activation,params", _STORED)
@pytest.mark.parametrize("bias,residual", [(True, False), (False, False), (True, True),
                                           (False, True)])
def test_matches_float64_product(loop_calls, shape, activation, params, bias, residual):
    n, c, m, spatial = shape
    x, w, b, z = _inputs(n, c, m, spatial, seed=c * m, bias=bias, residual=residual)
    if len(spatial) == 1:
        w = w.reshape(m, c, 1)
    got = pointwise.pointwise_conv(x, w, b, z, pointwise.store_activation(activation, params))
    assert got is not None and loop_calls.ran(_LOOP) and all(loop_calls.ran(_LOOP))
    assert got.shape == (n, m) + spatial and got.dtype == np.float32
    want = _want(x, w, b, z, activation, params)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1, c))


@pytest.mark.parametrize("activation,params", [("Clip", [0, 6]), ("Sigmoid", []),
                                               ("Swish", [1.0]), ("HardSwish", [])])
def test_nan_and_infinity_reach_only_their_outputs(loop_calls, activation, params):
    x, w, b, _ = _inputs(1, 10, 9, (5, 7), seed=3)
    x = x.copy()
    x[0, 2, 1, 3] = np.nan
    x[0, 4, 4, 6] = np.inf  # +-inf sums: Swish(-inf) is NaN, as -inf * sigmoid(-inf) = -inf * 0
    got = pointwise.pointwise_conv(x, w, b, None, pointwise.store_activation(activation, params))
    assert loop_calls.ran(_LOOP)
    with np.errstate(invalid="ignore", over="ignore"):
        want = _want(x, w, b, None, activation, params)
    # NaN stays NaN through the clip (as np.clip); an infinite input gives +-inf sums, clipped
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[:, :, 1, 3]).all()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_shared_equals_unshared_bit_for_bit(loop_calls, shared_pool, monkeypatch):
    monkeypatch.setattr(pointwise, "MIN_SHARED_MACS", 1 << 10)
    clip = pointwise.store_activation("Clip", [0, 6])
    # pieces of W's panels (7x7 maps, 50 outputs) and of X's columns (20 x 21 maps)
    for out, spatial in ((50, (7, 7)), (10, (20, 21))):
        shared_pool.clear()
        threads._budget = 2
        x, w, b, z = _inputs(2, 24, out, spatial, seed=5, residual=True)
        got = pointwise.pointwise_conv(x, w, b, z, clip)
        assert shared_pool, "the product was not shared"
        # one product per image, each of several pieces, every piece claimed and finished
        assert len(shared_pool) == 2 and all(parts > 1 for _, _, parts in shared_pool)
        assert all(c[1] == parts and c[0] >= parts for _, c, parts in shared_pool)
        threads._budget = 1
        want = pointwise.pointwise_conv(x, w, b, z, clip)
        np.testing.assert_array_equal(got, want)


def test_constant_weights_are_packed_once(loop_calls, monkeypatch):
    packs = []
    real = pointwise.pack_rows
    monkeypatch.setattr(pointwise, "pack_rows", lambda w2: packs.append(w2.shape) or real(w2))
    x, w, b, _ = _inputs(1, 12, 20, (6, 6), seed=7)
    b.flags.writeable = False
    first = pointwise.pointwise_conv(x, w, b)
    for _ in range(3):
        np.testing.assert_array_equal(pointwise.pointwise_conv(x, w, b),
                                      first)
    assert packs == [(20, 12)]
    # another bias with the same weights is another product: packed anew
    b2 = (b + 1).astype(np.float32)
    b2.flags.writeable = False
    pointwise.pointwise_conv(x, w, b2)
    assert len(packs) == 2
    # the entry goes with its weights
    key = id(w)
    assert key in pointwise._packed
    del w
    gc.collect()
    assert key not in pointwise._packed


def test_weights_that_can_change_are_packed_on_each_call(loop_calls, monkeypatch):
    packs = []
    real = pointwise.pack_rows
    monkeypatch.setattr(pointwise, "pack_rows", lambda w2: packs.append(1) or real(w2))
    x, w, b, _ = _inputs(1, 12, 20, (6, 6), seed=8)
    w = w.copy()  # writeable: a weight fed at run time, which the caller may change
    first = pointwise.pointwise_conv(x, w, b)
    w *= 2
    second = pointwise.pointwise_conv(x, w, b)
    assert len(packs) == 2 and id(w) not in pointwise._packed
    np.testing.assert_allclose(second, _want(x, w, b, None), rtol=1e-5, atol=1e-4)
    assert not np.allclose(first, second)


def test_declines_what_it_does_not_compute(loop_calls):
    x, w, b, z = _inputs(1, 6, 8, (4, 4), residual=True)
    assert pointwise.pointwise_conv(x.astype(np.float64), w.astype(np.float64), None) is None
    assert pointwise.pointwise_conv(x, w, b.astype(np.float64)) is None
    # a residual that broadcasts is added by the caller, not by the stores
    assert pointwise.pointwise_conv(x, w, b, z[:, :, :1, :1]) is None
    with jit.disabled():
        assert pointwise.pointwise_conv(x, w, b) is None
    # activations the stores do not apply
    assert [pointwise.store_activation(a, p) for a, p in
            [("LeakyRelu", [0.1]), ("Tanh", [])]] == [None] * 2
    assert loop_calls.ran(_LOOP) == []


_ACTIVATIONS = [("", []), ("Relu", []), ("Clip", [-1.0, 2.5]), ("HardSwish", []),
                ("HardSigmoid", [0.3, 0.4]), ("Sigmoid", []), ("Swish", [1.0]),
                ("LeakyRelu", [0.1]), ("Tanh", [])]


@pytest.mark.parametrize("activation,params", _ACTIVATIONS)
@pytest.mark.parametrize("residual", ["none", "whole", "broadcast"])
def test_fused_conv_takes_it_with_each_activation(loop_calls, activation, params, residual):
    x, w, b, z = _inputs(1, 16, 24, (7, 7), seed=11, residual=residual != "none")
    if residual == "broadcast":
        z = z[:, :, :1, :]
    got = fused.private_fused_conv(x, w, b, z, activation=activation,
                                   activation_params=params)[0]
    assert loop_calls.ran(_LOOP) == [True]
    y = reference_conv(x, w, b)[0].astype(np.float64)
    if z is not None:
        y = y + z
    y = y.astype(np.float32)
    want = fused.apply_activation(y, activation, params)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_plain_conv_takes_it(loop_calls, monkeypatch):
    x, w, b, _ = _inputs(1, 8, 10, (6, 6))
    calls = _record(monkeypatch)
    got = fast_conv.conv(x, w, b)[0]
    np.testing.assert_allclose(got, reference_conv(x, w, b)[0], rtol=1e-5, atol=1e-5)
    assert calls == [True]


def test_large_convs_take_it_too(loop_calls, shared_pool, monkeypatch):
    """1x1 convolutions of more than two split parts' work (LR-ASPP's at 33x33 and 260x260;
    here made large by a small ``MIN_PART_MACS``) take the packed product shared with the pool,
    not the split into OpenBLAS bands, plain Conv and FusedConv alike."""
    monkeypatch.setattr(fast_conv, "MIN_PART_MACS", 1)
    threads._budget = 2
    x, w, b, z = _inputs(1, 8, 10, (17, 17), residual=True)  # past _SPLIT_ROWS_BELOW
    calls = _record(monkeypatch)
    got = fast_conv.conv(x, w, b)[0]
    np.testing.assert_allclose(got, reference_conv(x, w, b)[0], rtol=1e-5, atol=1e-5)
    fused_got = fused.fused_conv(x, w, b, z, activation="Relu")[0]
    want = np.maximum(reference_conv(x, w, b)[0] + z, 0)
    np.testing.assert_allclose(fused_got, want, rtol=1e-5, atol=1e-5)
    assert calls == [True, True]


def _record(monkeypatch):
    """Whether each call of the packed product (``Product.into``) made by the Conv paths
    ran."""
    calls = []
    real = pointwise.Product.into

    def spy(*a, **k):
        calls.append(real(*a, **k))
        return calls[-1]

    monkeypatch.setattr(pointwise.Product, "into", spy)
    return calls


# larger kernels of one group through each column-matrix path: a network's stem (few column
# rows), strided and padded kernels, a whole-image column matrix, bands of output rows (a small
# column budget), non-overlapping windows, batches, 1-D and 3-D
_IM2COL = [((1, 3, 32, 32), (16, 3, 3, 3), dict(pads=[1, 1, 1, 1], strides=[2, 2]), None),
           ((2, 12, 15, 13), (20, 12, 3, 3), dict(pads=[1, 0, 2, 1]), None),
           ((1, 16, 30, 31), (24, 16, 3, 3), dict(pads=[1, 1, 1, 1]), 1 << 12),
           ((1, 6, 16, 16), (7, 6, 4, 4), dict(strides=[4, 4]), None),
           ((1, 8, 40, 40), (9, 8, 5, 5), dict(dilations=[2, 2], pads=[4, 4, 4, 4]), 1 << 14),
           ((1, 5, 50), (11, 5, 3), dict(strides=[2], pads=[1, 1]), None),
           ((1, 4, 6, 7, 8), (5, 4, 3, 3, 3), dict(pads=[1] * 6), None),
           ((1, 16, 31, 31), (40, 16, 1, 1), dict(strides=[2, 2]), None)]


@pytest.mark.parametrize("case", range(len(_IM2COL)))
def test_column_matrix_products_take_it(loop_calls, monkeypatch, case):
    xs, ws, attrs, budget = _IM2COL[case]
    if budget is not None:
        monkeypatch.setattr(fast_conv, "_COLS_BUDGET", budget)
    rng = np.random.default_rng(case)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    w.flags.writeable = False
    b = rng.standard_normal(ws[0]).astype(np.float32)
    calls = _record(monkeypatch)
    got = fast_conv.conv(x, w, b, **attrs)[0]
    fused_got = fused.private_fused_conv(x, w, b, activation="Relu", **attrs)[0]
    # over a column matrix (Product.into), or, for a 2-D kernel without dilation, over bands of
    # it that the compiled loop builds
    banded = loop_calls.ran("conv_loops.columns_product_claimed")
    assert calls + banded and all(calls + banded), "the packed product did not run"
    want = reference_conv(x, w, b, **attrs)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(fused_got, np.maximum(want, 0), rtol=1e-5, atol=1e-4)
    with jit.disabled():
        np.testing.assert_allclose(fast_conv.conv(x, w, b, **attrs)[0], got, rtol=1e-5,
                                   atol=1e-4)


@pytest.mark.parametrize("activation,params", _ACTIVATIONS)
def test_stem_applies_bias_and_activation_in_its_stores(loop_calls, monkeypatch, activation,
                                                        params):
    # a network's stem (3 channels, 3x3 at stride 2): one column matrix and the packed
    # product, whose stores add the bias and apply the activations they can
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 3, 64, 62)).astype(np.float32)
    w = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    epilogues = []
    real = pointwise.product

    def spy(*a, **k):  # product(w, bias, n_img, k, length, epilogue, has_z)
        epilogues.append((a[1] is not None, a[5]))
        return real(*a, **k)

    monkeypatch.setattr(fast_conv, "product", spy)
    attrs = dict(pads=[1, 1, 1, 1], strides=[2, 2])
    got = fused.private_fused_conv(x, w, b, activation=activation, activation_params=params,
                                   **attrs)[0]
    stored = pointwise.store_activation(activation, params) if activation else None
    assert epilogues == [(True, stored or pointwise.IDENTITY)]
    assert loop_calls.ran("conv_loops.columns_product_claimed") == [True]
    want = fused.apply_activation(reference_conv(x, w, b, **attrs)[0], activation, params)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    with jit.disabled():
        np.testing.assert_allclose(fused.private_fused_conv(
            x, w, b, activation=activation, activation_params=params, **attrs)[0], got,
            rtol=1e-5, atol=1e-4)


def test_session_sees_its_constants_read_only(loop_calls, monkeypatch):
    """A session hands its kernels its initializers read-only (a kernel may keep what it
    derives from them, as the packed weights here); results match onnxruntime's."""
    ort = pytest.importorskip("onnxruntime")
    import pyonnx.runtime as rt

    rng = np.random.default_rng(12)
    w = rng.standard_normal((30, 20, 1, 1)).astype(np.float32)
    b = rng.standard_normal(30).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"]),
             helper.make_node("Add", ["c", "r"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 20, 7, 7]),
                     helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 30, 7, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 30, 7, 7])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    seen = []
    real = pointwise._packed_weights
    monkeypatch.setattr(pointwise, "_packed_weights",
                        lambda w_, b_: seen.append(w_.flags.writeable) or real(w_, b_))
    feeds = {"x": rng.standard_normal((1, 20, 7, 7)).astype(np.float32),
             "r": rng.standard_normal((1, 30, 7, 7)).astype(np.float32)}
    sess = rt.InferenceSession(model.SerializeToString())
    got = [sess.run(None, feeds)[0] for _ in range(2)]
    want = ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    assert seen == [False]  # packed once: the second run makes the node's kept call
    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("c, m, spatial, taken", [
    (960, 160, (7, 7), True),     # 7.8K outputs, 7.5M multiply-adds: a late projection
    (96, 24, (4, 4), True),       # 384 outputs, 37K multiply-adds: 16 columns
    (960, 240, (1, 1), False),    # a squeeze-and-excitation product: one column
    (8, 8, (4, 4), False),        # 128 outputs, 1K multiply-adds
])
def test_small_outputs_take_it_by_their_multiply_adds(loop_calls, monkeypatch, c, m, spatial,
                                                      taken):
    """Below jit.MIN_ELEMENTS outputs, a product takes the packed loop from
    MIN_PRODUCT_MACS multiply-adds over at least one tile's columns (outputs as in models: the
    fixture's MIN_ELEMENTS of 0 set back, the multiply-adds scaled to these small cases)."""
    monkeypatch.setattr(jit, "MIN_ELEMENTS", 1 << 14)
    monkeypatch.setattr(pointwise, "MIN_PRODUCT_MACS", 1 << 15)
    x, w, b, z = _inputs(1, c, m, spatial, residual=True)
    calls = _record(monkeypatch)
    got = fused.private_fused_conv(x, w, b, z, activation="Relu", activation_params=[])[0]
    assert calls == ([True] if taken else [])
    want = np.maximum(reference_conv(x, w, b)[0] + z, 0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
