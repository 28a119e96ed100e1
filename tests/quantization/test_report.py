"""Accuracy reports: per-node sensitivity, quantize-to-target, float vs quantized tensors."""

from __future__ import annotations

import numpy as np
import pytest

import pyonnx
from pyonnx.errors import InvalidArgument
from pyonnx.quantization import quantize_static
from pyonnx.quantization import qdq_loss_debug as dbg
from pyonnx.quantization.report import (format_report, node_sensitivity, output_error,
                                        quantize_to_target)
from tests.quantization._models import cnn_model, cnn_samples, mlp_feed, mlp_model


def _mlp():
    return pyonnx.load(mlp_model().SerializeToString())


def test_node_sensitivity_dynamic_lists_each_quantizable_node():
    feeds = [mlp_feed(s) for s in range(3)]
    errs = node_sensitivity(_mlp(), feeds, mode="dynamic")
    assert sorted(e.name for e in errs) == ["embed", "gemm", "head", "mm1"]
    cos = [e.error.cosine for e in errs]
    assert cos == sorted(cos) and all(0.99 < c <= 1.0 for c in cos)
    text = format_report(errs)
    assert "embed" in text and "cosine" in text


def test_quantize_to_target_keeps_sensitive_nodes_float():
    feeds = [mlp_feed(s) for s in range(3)]
    m = _mlp()
    full, excluded, err = quantize_to_target(m, feeds, min_cosine=0.0, mode="dynamic")
    assert excluded == []
    errs = node_sensitivity(m, feeds, mode="dynamic")
    # a target between the all-quantized error and float forces exclusions, worst first
    target = (err.cosine + 1.0) / 2
    qm, excluded, err2 = quantize_to_target(m, feeds, min_cosine=target, mode="dynamic",
                                            sensitivity=errs)
    assert excluded and excluded == [e.name for e in errs[:len(excluded)]]
    assert err2.cosine >= target
    assert all(n.name not in excluded or n.op_type in ("MatMul", "Gemm", "Gather")
               for n in qm.graph.nodes)
    with pytest.raises(InvalidArgument, match="min_cosine"):
        quantize_to_target(m, feeds)


def test_static_and_weight_only_sensitivity():
    cnn = pyonnx.load(cnn_model().SerializeToString())
    errs = node_sensitivity(cnn, cnn_samples(2, seed=5), mode="static",
                            calibration_feeds=cnn_samples(4))
    assert {"conv1", "conv2", "fc"} <= {e.name for e in errs}
    errs = node_sensitivity(_mlp(), [mlp_feed()], mode="weight-int4", block_size=16)
    assert {e.name for e in errs} == {"mm1", "gemm", "head"}


def test_output_error_measures():
    a = [[np.array([1.0, 2.0, 3.0])]]
    e = output_error(a, [[np.array([1.0, 2.0, 3.3])]])
    assert e.max_rel_error == pytest.approx(0.1) and 0.99 < e.cosine < 1.0
    assert output_error(a, a).cosine == pytest.approx(1.0)


def test_qdq_loss_debug_matches_tensors(tmp_path):
    src = cnn_model()
    out = str(tmp_path / "q.onnx")
    quantize_static(src, out, _Reader(cnn_samples(4)))
    feeds = cnn_samples(2, seed=8)
    fa = dbg.collect_activations(pyonnx.load(src.SerializeToString()), feeds)
    qa = dbg.collect_activations(out, feeds)
    errs = dbg.compute_activation_error(dbg.create_activation_matching(qa, fa))
    assert "c1" in errs and 15 < errs["c1"]["xmodel_err"] < 80
    own = dbg.compute_activation_error(dbg.create_activation_matching(qa))
    # c2's Q/DQ pair is pure rounding (c1's clamps too: the Relu after it is gone, see
    # test_static_qdq_removes_relus_the_quantizer_clamps)
    assert "c2" in own and own["c2"]["qdq_err"] > 20
    w = dbg.compute_weight_error(dbg.create_weight_matching(
        pyonnx.load(src.SerializeToString()), out))
    assert set(w) >= {"w1", "w2", "wf"} and all(v > 30 for v in w.values())
    rows = dbg.per_tensor_report(pyonnx.load(src.SerializeToString()), out, feeds)
    assert rows[0][1] <= rows[-1][1]


class _Reader:
    def __init__(self, feeds):
        self.it = iter(feeds)

    def get_next(self):
        return next(self.it, None)

    def __iter__(self):
        return self.it
