"""The optimizer's fuse_dynamic_quantize_matmul pass on quantize_dynamic's output."""

from __future__ import annotations

import numpy as np

import pyonnx
from pyonnx.optimizer.api import op_counts
from pyonnx.quantization import quantize_dynamic_model
from tests.quantization._models import mlp_feed, mlp_model, run_ort


def test_fusion_keeps_outputs_bit_for_bit():
    q = quantize_dynamic_model(mlp_model())
    fused = pyonnx.optimize(q, level="extended", passes=["fuse_dynamic_quantize_matmul"])
    counts = op_counts(fused)
    # mm1 and the Gemm (with its bias Add) fuse; the head reads Transpose(W_q), not a constant
    assert counts["com.microsoft::DynamicQuantizeMatMul"] == 2
    assert counts.get("Add", 0) == 0 and counts["MatMulInteger"] == 1
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL
    feed = mlp_feed()
    y0 = pyonnx.InferenceSession(q, so).run(None, feed)[0]
    y1 = pyonnx.InferenceSession(fused, so).run(None, feed)[0]
    np.testing.assert_array_equal(y0, y1)
    np.testing.assert_allclose(run_ort(pyonnx.serialize(fused), feed), y1, rtol=1e-4, atol=1e-4)


def test_basic_level_refuses_the_pass():
    import pytest

    from pyonnx.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="extended"):
        pyonnx.optimize(quantize_dynamic_model(mlp_model()), level="basic",
                        passes=["fuse_dynamic_quantize_matmul"])
