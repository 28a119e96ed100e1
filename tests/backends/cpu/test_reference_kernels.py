"""Whole models through the CPU provider's fast variants and through the reference kernels
(provider option ``use_reference_kernels``): the same outputs, within the backend runner's
tolerances (the variants sum in other orders)."""

from __future__ import annotations

import os

import pytest

import pyonnx
from tests.models.test_real_models import SHARED, _SKIP_SHARED, assert_close_to_reference, \
    shared_feeds

REFERENCE = [("CPUExecutionProvider", {"use_reference_kernels": "1"})]


@_SKIP_SHARED
@pytest.mark.parametrize("name", ["bert_small", "vit_tiny", "silero_vad_16k_op15",
                                  "magika_standard_v3_3"])
def test_fast_variants_match_the_reference_kernels(name):
    path = os.path.join(SHARED, f"{name}.onnx")
    feeds = shared_feeds(name, seq=32)
    fast = pyonnx.InferenceSession(path)
    ref = pyonnx.InferenceSession(path, providers=REFERENCE)
    assert ref.get_provider_options() == {"CPUExecutionProvider": {"use_reference_kernels": "1"}}
    assert_close_to_reference(fast.run(None, feeds), ref.run(None, feeds))


def test_reference_kernels_option_is_checked():
    model = pyonnx.parse_model("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y) { y = Relu(x) }""")
    with pytest.raises(pyonnx.InvalidArgument, match="use_reference_kernels"):
        pyonnx.InferenceSession(model, providers=[("CPUExecutionProvider",
                                                   {"use_reference_kernels": "yes"})])
