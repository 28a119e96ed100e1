"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: label checks, ignore_index,
reductions, and agreement with onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError
from pyonnx.ops.registry import registered_versions
from tests.ops._oracle import run_ort, schema_versions
from tests.ops._oracle import context as ctx
from tests.ops._oracle import kernel as k

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(3)


def test_every_schema_version_registered():
    for op in ("NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"):
        assert list(registered_versions("", op)) == schema_versions(op), op


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("with_weight", [False, True])
def test_sce_matches_onnxruntime(reduction, with_weight):
    scores = RNG.standard_normal((3, 5, 2, 2)).astype(np.float32) * 4
    labels = RNG.integers(0, 5, (3, 2, 2)).astype(np.int64)
    labels[0, 0, 0] = -1
    feeds = {"s": scores, "l": labels}
    if with_weight:
        feeds["w"] = RNG.uniform(0.1, 1, 5).astype(np.float32)
    loss, logp = k("SoftmaxCrossEntropyLoss", 13)(*feeds.values(), reduction=reduction,
                                                  ignore_index=-1, ctx=ctx(2))
    rloss, rlogp = run_ort("SoftmaxCrossEntropyLoss", feeds, opset=13, outputs=2,
                           reduction=reduction, ignore_index=-1)
    assert loss.dtype == rloss.dtype and loss.shape == rloss.shape
    np.testing.assert_allclose(loss, rloss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logp, rlogp, rtol=1e-5, atol=1e-5)


def test_sce_log_prob_only_when_requested():
    scores = RNG.standard_normal((2, 3)).astype(np.float32)
    labels = np.array([0, 2], np.int64)
    assert len(k("SoftmaxCrossEntropyLoss", 13)(scores, labels, ctx=ctx(1))) == 1


def test_sce_labels_out_of_range():
    scores = np.zeros((2, 3), np.float32)
    with pytest.raises(ExecutionError, match="contains 3"):
        k("SoftmaxCrossEntropyLoss", 13)(scores, np.array([0, 3], np.int64), ctx=ctx(1))
    # -1 is an error unless it is the ignore_index (NumPy would wrap it to the last class).
    with pytest.raises(ExecutionError, match="contains -1"):
        k("SoftmaxCrossEntropyLoss", 13)(scores, np.array([-1, 0], np.int64), ctx=ctx(1))
    with pytest.raises(ExecutionError, match="not ignore_index 5"):
        k("SoftmaxCrossEntropyLoss", 13)(scores, np.array([-1, 0], np.int64), ignore_index=5,
                                         ctx=ctx(1))
    (loss,) = k("SoftmaxCrossEntropyLoss", 13)(scores, np.array([-1, 0], np.int64),
                                               ignore_index=-1, reduction="none", ctx=ctx(1))
    np.testing.assert_allclose(loss, [0.0, np.log(3)], rtol=1e-6)


def test_nll_ignore_index_and_mean():
    logp = np.log(np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]], np.float32))
    target = np.array([1, 7, 0], np.int32)
    (loss,) = k("NegativeLogLikelihoodLoss", 22)(logp, target, ignore_index=7)
    # mean over the two samples that count
    np.testing.assert_allclose(loss, -(np.log(0.8) + np.log(0.9)) / 2, rtol=1e-6)
    w = np.array([2.0, 1.0], np.float32)
    (loss,) = k("NegativeLogLikelihoodLoss", 22)(logp, target, w, ignore_index=7)
    np.testing.assert_allclose(loss, -(np.log(0.8) * 1 + np.log(0.9) * 2) / 3, rtol=1e-6)
    ref = run_ort("NegativeLogLikelihoodLoss", {"x": logp, "t": target, "w": w}, opset=13,
                  ignore_index=7)[0]
    np.testing.assert_allclose(loss, ref, rtol=1e-6)


def test_nll_float16_and_shape_errors():
    logp = np.log(np.full((2, 4), 0.25, np.float16))
    (loss,) = k("NegativeLogLikelihoodLoss", 13)(logp, np.array([0, 3], np.int64), reduction="sum")
    assert loss.dtype == np.float16 and loss.shape == ()
    np.testing.assert_allclose(float(loss), 2 * np.log(4), rtol=1e-3)
    with pytest.raises(ExecutionError, match="must be \\[2\\]"):
        k("NegativeLogLikelihoodLoss", 13)(logp, np.array([[0, 3]], np.int64))
    with pytest.raises(ExecutionError, match="contains 4"):
        k("NegativeLogLikelihoodLoss", 13)(logp, np.array([0, 4], np.int64))
    with pytest.raises(ExecutionError, match="reduction"):
        k("NegativeLogLikelihoodLoss", 13)(logp, np.array([0, 1], np.int64), reduction="avg")
