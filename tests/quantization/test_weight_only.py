"""Weight-only int4/int8 quantization: both output forms, block sizes, symmetric/asymmetric."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyonnx
from pyonnx.errors import InvalidArgument
from pyonnx.quantization import QuantFormat
from pyonnx.quantization.weight_only import (MatMulNBitsQuantizer, block_quantize,
                                             quantize_weight_only)
from tests.quantization._models import cosine, full_check, op_counts, run_ort, run_pyonnx


def _model(k: int = 96, n: int = 40, seed: int = 0) -> onnx.ModelProto:
    """x @ W1 (MatMul), Gemm(transB) and a MatMul through Transpose(W3)."""
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    w2 = (rng.standard_normal((k, n)) / np.sqrt(n)).astype(np.float32)
    b2 = (rng.standard_normal(k) * 0.1).astype(np.float32)
    w3 = (rng.standard_normal((24, k)) / np.sqrt(k)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm"),
             helper.make_node("Gemm", ["h", "w2", "b2"], ["g"], name="gemm", transB=1),
             helper.make_node("Transpose", ["w3"], ["w3t"], name="t", perm=[1, 0]),
             helper.make_node("MatMul", ["g", "w3t"], ["y"], name="head")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [3, k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 24])],
                          [numpy_helper.from_array(a, nm) for nm, a in
                           (("w1", w1), ("w2", w2), ("b2", b2), ("w3", w3))])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _x(k: int = 96) -> dict:
    return {"x": np.random.default_rng(5).standard_normal((3, k)).astype(np.float32)}


@pytest.mark.parametrize("block_size", [32, 64, 128])
@pytest.mark.parametrize("symmetric", [True, False])
def test_block_quantize_reconstructs(block_size, symmetric):
    rng = np.random.default_rng(block_size)
    w = rng.standard_normal((7, 200)).astype(np.float32)   # K not a multiple of the block
    q, s, z = block_quantize(w, 4, block_size, symmetric)
    assert q.shape == w.shape and q.max() <= 15 and s.shape == (7, -(-200 // block_size))
    idx = np.arange(200) // block_size
    back = (q.astype(np.float32) - z[:, idx]) * s[:, idx]
    # rounding to 16 levels: an rms error near step / sqrt(12) (clipping may add a little)
    rms = np.sqrt(np.mean(((back - w) / s[:, idx]) ** 2))
    assert rms < 0.4
    assert cosine(back, w) > 0.99
    if symmetric:
        assert np.all(z == 8)


@pytest.mark.parametrize("form", ["qdq", "matmulnbits"])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("bits,block_size", [(4, 32), (4, 64), (4, 128), (8, 32)])
def test_forms_agree_and_run_on_both_engines(tmp_path, form, symmetric, bits, block_size):
    src = _model()
    out = str(tmp_path / "q.onnx")
    quantize_weight_only(src, out, bits=bits, block_size=block_size, symmetric=symmetric,
                         form=form)
    full_check(out)
    ops = op_counts(out)
    m = onnx.load(out)
    if form == "qdq":
        assert ops["DequantizeLinear"] == 3 and m.opset_import[0].version >= 21
        qtypes = {i.data_type for i in m.graph.initializer if i.name.endswith("_quantized")}
        want = {(4, True): TensorProto.INT4, (4, False): TensorProto.UINT4,
                (8, True): TensorProto.INT8, (8, False): TensorProto.UINT8}[(bits, symmetric)]
        assert qtypes == {want}
    else:
        assert ops["com.microsoft::MatMulNBits"] == 3 and "MatMul" not in ops
    feed = _x()
    y = run_ort(src, feed)
    yp, yo = run_pyonnx(out, feed), run_ort(out, feed, optimize=False)
    assert cosine(y, yp) > (0.98 if bits == 4 else 0.9999)  # 16 levels: about 1% error
    np.testing.assert_allclose(yp, yo, rtol=1e-4, atol=1e-4)
    # onnxruntime's own fusions may quantize the activations too: close, not equal
    assert cosine(y, run_ort(out, feed)) > (0.97 if bits == 4 else 0.999)


def test_both_forms_dequantize_to_the_same_weights(tmp_path):
    src = _model()
    a, b = str(tmp_path / "a.onnx"), str(tmp_path / "b.onnx")
    quantize_weight_only(src, a, form="qdq", symmetric=False)
    quantize_weight_only(src, b, form="matmulnbits", symmetric=False)
    feed = _x()
    np.testing.assert_allclose(run_pyonnx(a, feed), run_pyonnx(b, feed), rtol=1e-5, atol=1e-5)


def test_ort_style_quantizer_and_bad_options(tmp_path):
    q = MatMulNBitsQuantizer(_model(), block_size=32, is_symmetric=True)
    q.process()
    path = str(tmp_path / "q.onnx")
    q.model.save_model_to_file(path)
    assert op_counts(path)["com.microsoft::MatMulNBits"] == 2   # MatMul only by default
    q = MatMulNBitsQuantizer(_model(), block_size=32, quant_format=QuantFormat.QDQ,
                             op_types_to_quantize=("MatMul", "Gemm"))
    q.process()
    assert sum(1 for n in q.model.model.graph.nodes if n.op_type == "DequantizeLinear") == 3
    with pytest.raises(InvalidArgument, match="block_size"):
        quantize_weight_only(_model(), path, block_size=48)
    with pytest.raises(InvalidArgument, match="bits"):
        quantize_weight_only(_model(), path, bits=3)


def test_source_model_untouched(tmp_path):
    m = pyonnx.load(_model().SerializeToString())
    before = pyonnx.serialize(m)
    quantize_weight_only(m, str(tmp_path / "q.onnx"))
    assert pyonnx.serialize(m) == before


def test_gptq_beats_rounding_on_the_layer_output():
    from pyonnx.quantization.weight_only import gptq_quantize

    rng = np.random.default_rng(3)
    k, n = 128, 48
    # correlated inputs: where GPTQ's error feedback has something to work with
    mix = rng.standard_normal((k, k)) / np.sqrt(k)
    x = rng.standard_normal((512, k)) @ mix
    w = rng.standard_normal((n, k)).astype(np.float32)
    idx = np.arange(k) // 32

    def out_err(q, s, z):
        back = (q.astype(np.float64) - z[:, idx]) * s[:, idx]
        return np.linalg.norm(x @ back.T - x @ w.T)

    rtn = out_err(*block_quantize(w, 4, 32, False))
    gptq = out_err(*gptq_quantize(w, x.T @ x, 4, 32, False))
    assert gptq < 0.8 * rtn
    q, s, z = gptq_quantize(w, x.T @ x, 4, 32, True)
    assert q.max() <= 15 and np.all(z == 8) and s.shape == (n, 4)


@pytest.mark.parametrize("form", ["qdq", "matmulnbits"])
def test_gptq_end_to_end(tmp_path, form):
    from pyonnx.quantization.weight_only import quantize_weight_only_model

    src = _model()
    calib = [{"x": np.random.default_rng(i).standard_normal((3, 96)).astype(np.float32)}
             for i in range(4)]
    m = quantize_weight_only_model(src, form=form, symmetric=False, algorithm="gptq",
                                   calibration_feeds=calib)
    out = str(tmp_path / "q.onnx")
    pyonnx.save(m, out)
    full_check(out)
    feed = _x()
    assert cosine(run_ort(src, feed), run_pyonnx(out, feed)) > 0.98
    np.testing.assert_allclose(run_pyonnx(out, feed), run_ort(out, feed, optimize=False),
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(InvalidArgument, match="calibration_feeds"):
        quantize_weight_only_model(src, algorithm="gptq")
