"""quantize_dynamic / quantize_static: the rewrites, their options, their checks."""

from __future__ import annotations

import logging
import os

import numpy as np
import onnx
import pytest

import pyonnx
from pyonnx.errors import InvalidArgument
from pyonnx.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                 QuantType, quantize_dynamic, quantize_static)
from tests.quantization._models import (cnn_model, cnn_samples, cosine, full_check, mlp_feed,
                                        mlp_model, op_counts, run_ort, run_pyonnx)


class ListReader(CalibrationDataReader):
    def __init__(self, feeds):
        self.feeds = list(feeds)
        self.i = 0
        self.calls = 0

    def get_next(self):
        self.calls += 1
        if self.i >= len(self.feeds):
            return None
        self.i += 1
        return self.feeds[self.i - 1]

    def __len__(self):
        return len(self.feeds)


def test_import_pyonnx_does_not_import_quantization():
    import subprocess
    import sys

    code = "import sys, pyonnx; print('pyonnx.quantization' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ}, check=True).stdout.strip()
    assert out == "False"


def test_dynamic_rewrites_matmul_gemm_gather_and_tied_weight(tmp_path):
    src = mlp_model()
    out = str(tmp_path / "q.onnx")
    quantize_dynamic(src, out)
    full_check(out)
    ops = op_counts(out)
    assert ops.get("MatMulInteger") == 3            # mm1, gemm, head (through Transpose)
    assert ops.get("MatMul", 0) == 0 and ops.get("Gemm", 0) == 0
    assert ops.get("DequantizeLinear") == 1          # the Gather reads the quantized table
    m = onnx.load(out)
    assert {i.name for i in m.graph.initializer}.isdisjoint({"table", "w1", "w2"})
    feed = mlp_feed()
    y = run_ort(src, feed)
    yq_ort, yq_py = run_ort(out, feed), run_pyonnx(out, feed)
    assert cosine(y, yq_ort) > 0.995
    np.testing.assert_allclose(yq_py, yq_ort, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kw", [dict(per_channel=True), dict(reduce_range=True),
                                dict(weight_type=QuantType.QUInt8),
                                dict(extra_options={"WeightSymmetric": False})])
def test_dynamic_options_keep_accuracy(tmp_path, kw):
    """Each option's model close to the float model, in pyonnx and in onnxruntime, and the two
    engines equal on it. Full-range int8 weights (every option but reduce_range and uint8
    weights) lose accuracy in onnxruntime itself on CPUs where its uint8 x int8 product
    saturates (``ort_u8s8_saturates``: AVX2 without VNNI, the reason its quantizer has
    reduce_range); there only pyonnx's result is held to the float model."""
    from tests.ops._oracle import ort_u8s8_saturates

    src = mlp_model()
    out = str(tmp_path / "q.onnx")
    quantize_dynamic(src, out, **kw)
    full_check(out)
    feed = mlp_feed()
    y = run_ort(src, feed)
    assert cosine(y, run_pyonnx(out, feed)) > 0.99
    full_range_int8 = not kw.get("reduce_range") and "weight_type" not in kw
    if not (full_range_int8 and ort_u8s8_saturates()):
        assert cosine(y, run_ort(out, feed)) > 0.99
        np.testing.assert_allclose(run_pyonnx(out, feed), run_ort(out, feed), rtol=1e-4,
                                   atol=1e-4)
    m = onnx.load(out)
    w = {i.name: i for i in m.graph.initializer}
    qtype = kw.get("weight_type", QuantType.QInt8)
    assert w["w1_quantized"].data_type == qtype.tensor_type
    if kw.get("per_channel"):
        assert list(w["w1_scale"].dims) == [32]


def test_dynamic_selection_options(tmp_path):
    src = mlp_model()
    out = str(tmp_path / "q.onnx")
    quantize_dynamic(src, out, nodes_to_exclude=["mm1"], op_types_to_quantize=["MatMul"])
    ops = op_counts(out)
    assert ops["MatMul"] == 1 and ops["Gemm"] == 1 and ops["Gather"] == 1
    assert ops["MatMulInteger"] == 1
    quantize_dynamic(src, out, nodes_to_quantize=["gemm"])
    assert op_counts(out)["MatMulInteger"] == 1


def test_dynamic_conv(tmp_path):
    src = cnn_model()
    out = str(tmp_path / "q.onnx")
    quantize_dynamic(src, out, per_channel=True)
    full_check(out)
    ops = op_counts(out)
    assert ops["ConvInteger"] == 2
    feed = cnn_samples(1, seed=9)[0]
    assert cosine(run_ort(src, feed), run_ort(out, feed)) > 0.99
    np.testing.assert_allclose(run_pyonnx(out, feed), run_ort(out, feed), rtol=1e-4, atol=1e-4)


def test_nothing_to_quantize_writes_unchanged_model(tmp_path, caplog):
    src = mlp_model()
    out = str(tmp_path / "q.onnx")
    with caplog.at_level(logging.WARNING, logger="pyonnx.quantization"):
        quantize_dynamic(src, out, op_types_to_quantize=["LSTM"])
    assert "no node was quantized" in caplog.text and "unchanged" in caplog.text
    assert op_counts(out) == {k: v for k, v in op_counts_of(src).items()}
    feed = mlp_feed()
    np.testing.assert_array_equal(run_ort(out, feed), run_ort(src, feed))


def op_counts_of(model: onnx.ModelProto) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in model.graph.node:
        out[n.op_type] = out.get(n.op_type, 0) + 1
    return out


def test_unwritable_output_fails_before_any_work(tmp_path):
    reader = ListReader(cnn_samples(2))
    with pytest.raises(InvalidArgument, match="does not exist"):
        quantize_static(cnn_model(), str(tmp_path / "missing" / "q.onnx"), reader)
    assert reader.calls == 0
    with pytest.raises(InvalidArgument, match="is a folder"):
        quantize_dynamic(cnn_model(), str(tmp_path))
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):   # running as root: permissions do not bind
            pytest.skip("permissions are not enforced for this user (root)")
        with pytest.raises(InvalidArgument, match="not writable"):
            quantize_static(cnn_model(), str(ro / "q.onnx"), reader)
        assert reader.calls == 0
    finally:
        os.chmod(ro, 0o700)


def test_callers_objects_are_not_modified(tmp_path):
    proto = mlp_model()
    before = proto.SerializeToString()
    model = pyonnx.load(before)
    ir_before = pyonnx.serialize(model)
    quantize_dynamic(proto, str(tmp_path / "a.onnx"))
    quantize_dynamic(model, str(tmp_path / "b.onnx"))
    assert proto.SerializeToString() == before
    assert pyonnx.serialize(model) == ir_before
    feeds = cnn_samples(3)
    snapshot = [f["x"].copy() for f in feeds]
    quantize_static(cnn_model(), str(tmp_path / "c.onnx"), ListReader(feeds))
    for f, s in zip(feeds, snapshot):
        np.testing.assert_array_equal(f["x"], s)


def test_unknown_extra_option_and_bad_types_raise(tmp_path):
    with pytest.raises(InvalidArgument, match="NoSuchOption"):
        quantize_dynamic(mlp_model(), str(tmp_path / "q.onnx"),
                         extra_options={"NoSuchOption": 1})
    with pytest.raises(InvalidArgument, match="EnableSubgraph"):
        quantize_dynamic(mlp_model(), str(tmp_path / "q.onnx"),
                         extra_options={"EnableSubgraph": True})
    quantize_dynamic(mlp_model(), str(tmp_path / "q.onnx"),
                     extra_options={"EnableSubgraph": False, "CalibMaxIntermediateOutputs": 8})
    with pytest.raises(InvalidArgument, match="weight_type"):
        quantize_dynamic(mlp_model(), str(tmp_path / "q.onnx"), weight_type=QuantType.QInt4)
    with pytest.raises(InvalidArgument, match="QOperator"):
        quantize_static(cnn_model(), str(tmp_path / "q.onnx"), ListReader(cnn_samples(1)),
                        quant_format=QuantFormat.QOperator, activation_type=QuantType.QInt16)


@pytest.mark.parametrize("fmt", [QuantFormat.QDQ, QuantFormat.QOperator])
@pytest.mark.parametrize("per_channel", [False, True])
def test_static_formats(tmp_path, fmt, per_channel):
    src = cnn_model()
    out = str(tmp_path / "q.onnx")
    quantize_static(src, out, ListReader(cnn_samples(8)), quant_format=fmt,
                    per_channel=per_channel)
    full_check(out)
    ops = op_counts(out)
    if fmt == QuantFormat.QDQ:
        assert ops["Conv"] == 2 and ops["QuantizeLinear"] >= 3 and ops["DequantizeLinear"] >= 8
    else:
        assert ops["QLinearConv"] == 2 and ops["com.microsoft::QGemm"] == 1
        assert ops["com.microsoft::QLinearAdd"] == 1 and "Conv" not in ops
    feed = cnn_samples(1, seed=42)[0]
    y = run_ort(src, feed)
    yo, yp = run_ort(out, feed), run_pyonnx(out, feed)
    assert cosine(y, yo) > 0.99 and cosine(y, yp) > 0.99
    # the two engines may round a requantized value differently by one step
    np.testing.assert_allclose(yp, yo, atol=0.05 * float(np.abs(y).max()))


@pytest.mark.parametrize("symmetric", [False, True])
def test_static_qdq_removes_relus_the_quantizer_clamps(tmp_path, symmetric):
    """A Relu whose quantized output has its zero point at the type's minimum goes, as in
    onnxruntime's quantizer: its reader takes the Relu's input through the Relu's Q/DQ pair,
    which clamps the negatives itself, so the model computes the same values. Symmetric
    activations put the zero point mid-range, where the Relu must stay."""
    src = cnn_model()
    kept = str(tmp_path / "kept.onnx")
    out = str(tmp_path / "q.onnx")
    options = {"ActivationSymmetric": symmetric}
    quantize_static(src, out, ListReader(cnn_samples(4)), extra_options=options,
                    activation_type=QuantType.QInt8)
    full_check(out)
    # relu1 reads a Conv alone and feeds a quantized Conv: removable; relu2 reads the Add,
    # whose output also feeds nothing else, but its reader (GlobalAveragePool) is selected too
    assert op_counts(out).get("Relu", 0) == (2 if symmetric else 0)
    # the same model with the Relus excluded from removal: equal outputs to the bit
    quantize_static(src, kept, ListReader(cnn_samples(4)), extra_options=options,
                    activation_type=QuantType.QInt8, nodes_to_exclude=["relu1", "relu2"])
    assert op_counts(kept)["Relu"] == 2
    for feed in cnn_samples(3, seed=5):
        np.testing.assert_array_equal(run_pyonnx(out, feed), run_pyonnx(kept, feed))


@pytest.mark.parametrize("act,wt", [(QuantType.QUInt8, QuantType.QUInt8),
                                    (QuantType.QInt16, QuantType.QInt8),
                                    (QuantType.QInt8, QuantType.QInt4)])
def test_static_qdq_types(tmp_path, act, wt):
    src = cnn_model()
    out = str(tmp_path / "q.onnx")
    four_bit = wt == QuantType.QInt4  # 16 levels: per-channel scales keep it usable
    quantize_static(src, out, ListReader(cnn_samples(4)), activation_type=act, weight_type=wt,
                    per_channel=four_bit, extra_options={"ActivationSymmetric": True})
    full_check(out)
    m = onnx.load(out)
    if QuantType.QInt4 in (act, wt) or QuantType.QInt16 in (act, wt):
        assert m.opset_import[0].version >= 21 and m.ir_version >= 10
    feed = cnn_samples(1, seed=42)[0]
    assert cosine(run_ort(src, feed), run_pyonnx(out, feed)) > (0.95 if four_bit else 0.98)


@pytest.mark.parametrize("method", list(CalibrationMethod))
def test_static_calibration_methods(tmp_path, method):
    src = cnn_model()
    out = str(tmp_path / "q.onnx")
    quantize_static(src, out, ListReader(cnn_samples(6)), calibrate_method=method,
                    extra_options={"CalibMovingAverage": True})
    feed = cnn_samples(1, seed=42)[0]
    assert cosine(run_ort(src, feed), run_ort(out, feed)) > 0.97


@pytest.mark.parametrize("feed,match", [
    ({"nope": np.zeros((1, 3, 12, 12), np.float32)}, "'nope', which is not an input"),
    ({"x": np.zeros((1, 3, 12, 11), np.float32)}, "input 'x' has shape"),
    ({"x": np.zeros((1, 3, 12), np.float32)}, "input 'x' has shape"),
    ({"x": np.zeros((1, 3, 12, 12), np.float64)}, "input 'x' is float64"),
    ({}, "lacks input"),
])
def test_bad_calibration_samples_name_the_input(tmp_path, feed, match):
    with pytest.raises(InvalidArgument, match=match):
        quantize_static(cnn_model(), str(tmp_path / "q.onnx"), ListReader([feed]))
    assert not os.path.exists(tmp_path / "q.onnx")


def test_empty_reader_raises(tmp_path):
    with pytest.raises(InvalidArgument, match="no samples"):
        quantize_static(cnn_model(), str(tmp_path / "q.onnx"), ListReader([]))


def test_old_opset_is_raised_for_dynamic(tmp_path):
    src = cnn_model(opset=9)
    out = str(tmp_path / "q.onnx")
    quantize_dynamic(src, out)
    full_check(out)
    assert onnx.load(out).opset_import[0].version >= 11


def test_quant_pre_process_folds_and_infers(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    from pyonnx.quantization import quant_pre_process

    rng = np.random.default_rng(0)
    w = (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32)
    bn = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in
          (("s", rng.uniform(0.5, 1.5, 4)), ("b", rng.standard_normal(4)),
           ("mu", rng.standard_normal(4)), ("var", rng.uniform(0.5, 1.5, 4)))]
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
         helper.make_node("BatchNormalization", ["c", "s", "b", "mu", "var"], ["y"], name="bn")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        [numpy_helper.from_array(w, "w")] + bn)
    src = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    out = str(tmp_path / "pre.onnx")
    quant_pre_process(src, out)
    full_check(out)
    assert op_counts(out) == {"Conv": 1}
    feed = cnn_samples(1)[0]
    feed = {"x": np.resize(feed["x"], (1, 3, 8, 8)).astype(np.float32)}
    np.testing.assert_allclose(run_ort(out, feed), run_ort(src, feed), rtol=1e-4, atol=1e-5)
    with pytest.raises(InvalidArgument, match="unknown argument"):
        quant_pre_process(src, out, bogus=1)


def test_drop_in_names_match_onnxruntime():
    import inspect

    import onnxruntime.quantization as oq

    import pyonnx.quantization as pq

    for name in ("quantize_dynamic", "quantize_static", "quant_pre_process", "quantize"):
        ours = list(inspect.signature(getattr(pq, name)).parameters)
        theirs = list(inspect.signature(getattr(oq, name)).parameters)
        assert ours[:len(theirs)] == theirs, name
    for enum_name in ("QuantType", "QuantFormat", "CalibrationMethod"):
        assert [m.name for m in getattr(pq, enum_name)] == \
            [m.name for m in getattr(oq, enum_name)] or \
            {m.name for m in getattr(pq, enum_name)} == {m.name for m in getattr(oq, enum_name)}


@pytest.mark.skipif(not os.path.isdir(os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                                    "shared", "models")),
                    reason="../shared/models is absent (it lives beside the checkout in CI)")
@pytest.mark.parametrize("name", ["bert_small", "gpt2_small"])
def test_dynamic_on_shared_models_matches_onnxruntime_quantizer(tmp_path, name):
    """Size ratio at least onnxruntime's quantizer's; cosine >= max(its - 0.001, 0.999)."""
    import onnxruntime.quantization as oq

    from tests.models.test_real_models import SHARED, shared_feeds

    src = os.path.join(SHARED, f"{name}.onnx")
    ours, theirs = str(tmp_path / "ours.onnx"), str(tmp_path / "theirs.onnx")
    quantize_dynamic(src, ours)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)   # onnxruntime's pre-processing advice
    try:
        oq.quantize_dynamic(src, theirs)
    finally:
        root.setLevel(level)
    full_check(ours)
    size = os.path.getsize(src)
    assert size / os.path.getsize(ours) >= size / os.path.getsize(theirs)
    feed = shared_feeds(name)
    y = run_ort(src, feed)
    c_theirs = cosine(y, run_ort(theirs, feed))
    for got in (run_ort(ours, feed), run_pyonnx(ours, feed)):
        assert cosine(y, got) >= max(c_theirs - 0.001, 0.999)


def test_duck_typed_reader_and_plain_list(tmp_path):
    """onnxruntime's readers only promise get_next(); a list of feeds works too."""
    class OnlyGetNext:
        def __init__(self, feeds):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    out = str(tmp_path / "q.onnx")
    quantize_static(cnn_model(), out, OnlyGetNext(cnn_samples(3)))
    full_check(out)
    quantize_static(cnn_model(), out, cnn_samples(3))
    full_check(out)
