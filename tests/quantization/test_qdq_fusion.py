"""The CPU provider's QuantizeDequantize fusion (backends/cpu/quantized.py): an activation
QuantizeLinear read only by a DequantizeLinear with the same per-tensor parameters runs as one
kernel computing exactly what the pair computes; and quantize_static's BatchNormalization fold.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyonnx
from pyonnx.backends.cpu import CPUProvider, jit
from pyonnx.backends.cpu import quantized as cq
from pyonnx.ops import quantization as ref_q
from pyonnx.optimizer import EliminateDeadCode, run_passes
from pyonnx.quantization import CalibrationDataReader
from pyonnx.quantization.quantize import quantize_static_model

from tests.quantization._models import cosine, run_ort

# x / scale overflows to infinity for the saturation cases, in the pair as in the fused kernel
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in divide")

RANGES = {np.int8: (-128, 127), np.uint8: (0, 255)}
# zero points at both ends of each type's range and inside it
ZERO_POINTS = [(np.int8, -128), (np.int8, 0), (np.int8, 3), (np.int8, 127),
               (np.uint8, 0), (np.uint8, 128), (np.uint8, 255)]


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


def _pair(x, scale, zp):
    q = ref_q.quantize_linear(x, scale, zp)[0]
    return ref_q.dequantize_linear(q, scale, zp)[0]


def _inputs(n: int, scale: float, zp: int, dt, seed: int) -> np.ndarray:
    """Random values, exact rounding ties (scale a power of two, so x / scale is exact), values
    saturating at both ends, signed zeros, tiny negatives and infinities."""
    rng = np.random.default_rng(seed)
    lo, hi = RANGES[dt]
    x = (rng.standard_normal(n) * (hi - lo) * scale).astype(np.float32)
    k = np.arange(lo - zp - 4, hi - zp + 4)
    ties = ((k + 0.5) * scale).astype(np.float32)
    special = np.array([0.0, -0.0, -0.1 * scale, -0.5 * scale, 0.5 * scale, -1e-30, 1e30, -1e30,
                        3e38, -3e38, np.inf, -np.inf, (lo - zp - 0.5) * scale,
                        (hi - zp + 0.5) * scale], np.float32)
    x[:ties.size] = ties
    x[ties.size:ties.size + special.size] = special
    return rng.permutation(x).astype(np.float32)


@pytest.mark.parametrize("dt,zp", ZERO_POINTS)
@pytest.mark.parametrize("scale", [0.25, 0.0173])
@pytest.mark.parametrize("n", [700, jit.MIN_ELEMENTS + 333])  # the NumPy path; the loop
def test_kernel_bit_identical_to_the_pair(dt, zp, scale, n):
    s, z = np.array(scale, np.float32), np.array(zp, dt)
    x = _inputs(n, scale, zp, dt, seed=n + zp)
    want = _pair(x, s, z)
    got = cq.quantize_dequantize(x, s, z)[0]
    np.testing.assert_array_equal(_bits(got), _bits(want))
    with jit.disabled():
        np.testing.assert_array_equal(_bits(cq.quantize_dequantize(x, s, z)[0]), _bits(want))
    # a 4-D activation, and the absent zero point (uint8 0)
    x4 = x[: (n // 60) * 60].reshape(1, 3, -1, 20)
    np.testing.assert_array_equal(_bits(cq.quantize_dequantize(x4, s, z)[0]),
                                  _bits(_pair(x4, s, z)))
    if dt is np.uint8 and zp == 0:
        np.testing.assert_array_equal(_bits(cq.quantize_dequantize(x, s, None)[0]),
                                      _bits(_pair(x, s, None)))


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")
@pytest.mark.parametrize("dt,zp", [(np.int8, 5), (np.uint8, 200)])
def test_nan_as_the_pair_computes_it_here(dt, zp):
    # the pair's cast of NaN to 8 bits gives 0 on the platforms NumPy supports; the fused
    # kernel gives that value on every platform
    s, z = np.array(0.5, np.float32), np.array(zp, dt)
    for n in (64, jit.MIN_ELEMENTS + 1):
        x = np.linspace(-200, 200, n).astype(np.float32)
        x[::7] = np.nan
        want = _pair(x, s, z)
        assert (want[::7] == (0 - zp) * np.float32(0.5)).all()
        np.testing.assert_array_equal(_bits(cq.quantize_dequantize(x, s, z)[0]), _bits(want))
        with jit.disabled():
            np.testing.assert_array_equal(_bits(cq.quantize_dequantize(x, s, z)[0]),
                                          _bits(want))


@pytest.mark.skipif(not jit.available(), reason="compiled loops are off: numba (the fast "
                    "extra) is not installed, or PYONNX_JIT=0")
def test_compiled_loop_runs():
    x = np.linspace(-3, 3, jit.MIN_ELEMENTS).astype(np.float32)
    y = np.empty_like(x)
    params = cq._qdq_params(np.array(0.02, np.float32), np.array(-7, np.int8))
    assert jit.call("qdq_loops.quantize_dequantize", x, y, *params, elements=x.size)
    np.testing.assert_array_equal(_bits(y), _bits(cq.quantize_dequantize_numpy(x, *params)))


def test_other_types_run_the_reference_pair():
    s, z = np.array(0.03, np.float32), np.array(4, np.int8)
    x = np.linspace(-3, 3, 50)                              # float64 x
    np.testing.assert_array_equal(cq.quantize_dequantize(x, s, z)[0], _pair(x, s, z))
    s2 = np.array([0.03, 0.05], np.float32)                 # per-axis parameters (axis 1)
    z2 = np.array([1, -1], np.int8)
    x2 = np.linspace(-3, 3, 20).astype(np.float32).reshape(10, 2)
    np.testing.assert_array_equal(cq.quantize_dequantize(x2, s2, z2)[0], _pair(x2, s2, z2))


# ---------------------------------------------------------------------------------------------
# the session pass


def _qdq_graph(*, q_scale=0.05, dq_scale=0.05, q_zp=(3, TensorProto.INT8),
               dq_zp=(3, TensorProto.INT8), q_output=False, second_reader=None,
               scale_shape=(), opset=21) -> onnx.ModelProto:
    """x -> QuantizeLinear -> DequantizeLinear -> Relu -> y (optionally the quantized value
    also an output, or read by a second DequantizeLinear / a node of ``second_reader``)."""
    inits = [numpy_helper.from_array(np.full(scale_shape, q_scale, np.float32), "qs"),
             numpy_helper.from_array(np.full(scale_shape, dq_scale, np.float32), "ds")]
    q_in, dq_in = ["x", "qs"], ["q", "ds"]
    for name, zp, ins in (("qz", q_zp, q_in), ("dz", dq_zp, dq_in)):
        if zp is not None:
            value, code = zp
            dt = onnx.helper.tensor_dtype_to_np_dtype(code)
            inits.append(numpy_helper.from_array(np.full(scale_shape, value, dt), name))
            ins.append(name)
    nodes = [helper.make_node("QuantizeLinear", q_in, ["q"], name="q", axis=1),
             helper.make_node("DequantizeLinear", dq_in, ["d"], name="dq", axis=1),
             helper.make_node("Relu", ["d"], ["y"], name="relu")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 8])]
    qtype = q_zp[1] if q_zp is not None else TensorProto.UINT8
    if q_output:
        outputs.append(helper.make_tensor_value_info("q", qtype, [2, 4, 8]))
    if second_reader == "dq":
        nodes.append(helper.make_node("DequantizeLinear", dq_in, ["d2"], name="dq2"))
        outputs.append(helper.make_tensor_value_info("d2", TensorProto.FLOAT, [2, 4, 8]))
    elif second_reader == "identity":
        nodes.append(helper.make_node("Identity", ["q"], ["q2"], name="id"))
        outputs.append(helper.make_tensor_value_info("q2", qtype, [2, 4, 8]))
    graph = helper.make_graph(
        nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 8])],
        outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _session_ops(model: onnx.ModelProto) -> list[str]:
    m = run_passes(pyonnx.load(model.SerializeToString()), CPUProvider().session_passes(99))
    return [n.op_type for n in m.graph.nodes]


def _outputs(model: onnx.ModelProto, feeds: dict, level=None) -> list[np.ndarray]:
    so = pyonnx.SessionOptions()
    if level is not None:
        so.graph_optimization_level = level
    return pyonnx.InferenceSession(model.SerializeToString(), so).run(None, feeds)


def _x(seed: int = 0) -> dict:
    return {"x": (np.random.default_rng(seed).standard_normal((2, 4, 8)) * 4)
            .astype(np.float32)}


@pytest.mark.parametrize("kwargs", [{}, {"q_zp": (255, TensorProto.UINT8),
                                         "dq_zp": (255, TensorProto.UINT8)},
                                    {"q_zp": None, "dq_zp": None}, {"scale_shape": (1,)},
                                    {"opset": 13}])
def test_pair_is_fused_and_computes_the_same(kwargs):
    model = _qdq_graph(**kwargs)
    ops = _session_ops(model)
    assert "QuantizeDequantize" in ops
    assert "QuantizeLinear" not in ops and "DequantizeLinear" not in ops
    feeds = _x()
    got = _outputs(model, feeds)
    want = _outputs(model, feeds, pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(_bits(g), _bits(w))


@pytest.mark.parametrize("kwargs", [
    {"q_output": True},                                     # the 8-bit value is an output
    {"second_reader": "dq"},                                # a second DequantizeLinear
    {"second_reader": "identity"},                          # another kind of reader
    {"dq_scale": 0.0501},                                   # different scales
    {"dq_zp": (4, TensorProto.INT8)},                       # different zero points
    {"q_zp": (3, TensorProto.INT8), "dq_zp": None},         # one without a zero point
    {"scale_shape": (4,)},                                  # per-channel
])
def test_pair_is_left_where_it_must_be(kwargs):
    model = _qdq_graph(**kwargs)
    ops = _session_ops(model)
    assert "QuantizeDequantize" not in ops
    assert "QuantizeLinear" in ops
    feeds = _x(1)
    for g, w in zip(_outputs(model, feeds),
                    _outputs(model, feeds, pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL)):
        np.testing.assert_array_equal(g, w)


def test_feedable_scale_is_not_fused():
    model = _qdq_graph()
    # the Q's scale also a graph input: a feed may override it, so it is not a constant
    model.graph.input.append(helper.make_tensor_value_info("qs", TensorProto.FLOAT, []))
    assert "QuantizeDequantize" not in _session_ops(model)


def _chain_model(middle: str, *, same=True, relu=False, scale=0.05) -> onnx.ModelProto:
    """x (1, 4, 6, 6) -> Q/DQ -> ``middle`` -> Q/DQ (same parameters or not) -> Abs -> y, where
    ``middle`` is "bn" (BatchNormalization, then Relu with ``relu``), "reshape", "transpose",
    "maxpool" or "concat" (of two pairs' results)."""
    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array(np.array(scale, np.float32), "s"),
             numpy_helper.from_array(np.array(-3, np.int8), "z"),
             numpy_helper.from_array(np.array(scale if same else scale * 1.5, np.float32), "s2"),
             numpy_helper.from_array(np.array(-3, np.int8), "z2"),
             numpy_helper.from_array(np.array([1, 4, 36], np.int64), "shape")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"])]
    if middle == "bn":
        for n, a in (("g", 1 + rng.random(4)), ("b", rng.random(4)), ("m", rng.random(4)),
                     ("v", 0.5 + rng.random(4))):
            inits.append(numpy_helper.from_array(a.astype(np.float32), n))
        nodes.append(helper.make_node("BatchNormalization", ["d", "g", "b", "m", "v"],
                                      ["n"], epsilon=1e-3))
        if relu:
            nodes.append(helper.make_node("Relu", ["n"], ["mid"]))
        else:
            nodes.append(helper.make_node("Identity", ["n"], ["mid"]))
    elif middle == "reshape":
        nodes.append(helper.make_node("Reshape", ["d", "shape"], ["mid"]))
    elif middle == "transpose":
        nodes.append(helper.make_node("Transpose", ["d"], ["mid"], perm=[0, 2, 3, 1]))
    elif middle == "maxpool":
        nodes.append(helper.make_node("MaxPool", ["d"], ["mid"], kernel_shape=[2, 2],
                                      pads=[1, 1, 1, 1]))
    else:
        nodes += [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["qb"]),
                  helper.make_node("DequantizeLinear", ["qb", "s", "z"], ["db"]),
                  helper.make_node("Concat", ["d", "db"], ["mid"], axis=1)]
    nodes += [helper.make_node("QuantizeLinear", ["mid", "s2", "z2"], ["q2"]),
              helper.make_node("DequantizeLinear", ["q2", "s2", "z2"], ["d2"]),
              helper.make_node("Abs", ["d2"], ["y"])]
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def _chain_feeds() -> dict:
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((1, 4, 6, 6)) * 4).astype(np.float32)
    x.reshape(-1)[:8] = [0.025, -0.025, 0.075, -0.0, 100.0, -100.0, 6.375, -6.425]
    return {"x": x}


def _same_as_unfused(model):
    feeds = _chain_feeds()
    got = _outputs(model, feeds)[0]
    want = _outputs(model, feeds, pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL)[0]
    np.testing.assert_array_equal(_bits(got), _bits(want))


@pytest.mark.parametrize("relu", [False, True])
def test_batch_norm_after_the_pair_joins_it(relu):
    model = _chain_model("bn", relu=relu)
    ops = _session_ops(model)
    assert "BatchNormalization" not in ops
    assert ("Relu" in ops) is False
    m = run_passes(pyonnx.load(model.SerializeToString()), CPUProvider().session_passes(99))
    first = [n for n in m.graph.nodes if n.op_type == "QuantizeDequantize"][0]
    assert len(first.inputs) == 5 and bool(first.attributes.get("relu")) is relu
    _same_as_unfused(model)
    with jit.disabled():
        _same_as_unfused(model)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")
def test_batch_norm_factors_give_the_batch_norm_kernel_values():
    from pyonnx.ops.normalization import _bn_inference

    from pyonnx.ops.activation import Relu

    rng = np.random.default_rng(13)
    s, z = np.array(0.07, np.float32), np.array(10, np.uint8)
    params = [rng.standard_normal(16).astype(np.float32), rng.standard_normal(16),
              rng.standard_normal(16).astype(np.float32), (0.1 + rng.random(16)).astype(np.float16)]
    # channel 0: a negative factor and a -0.0 shift (B = -0.0, mean -0.0), so y = -0.0 at x = 0
    params[0][0], params[1][0], params[2][0] = -1.5, -0.0, -0.0
    a, c = cq.batch_norm_affine(*params, 1e-3)
    assert a[0] < 0 and np.signbit(c[0])
    for shape in ((2, 16, 5, 7), (2, 16, 24, 24)):          # the NumPy path; the loop
        x = (rng.standard_normal(shape) * 3).astype(np.float32)
        x[0, 0, 0, :3] = [0.0, np.nan, 0.01]
        want = _bn_inference(_pair(x, s, z), *params, 1e-3)
        for relu in (0, 1):
            w = Relu(want)[0] if relu else want
            got = cq.quantize_dequantize(x, s, z, a, c, relu=relu)[0]
            np.testing.assert_array_equal(_bits(got), _bits(w))
            with jit.disabled():
                got = cq.quantize_dequantize(x, s, z, a, c, relu=relu)[0]
            np.testing.assert_array_equal(_bits(got), _bits(w))
    with pytest.raises(pyonnx.errors.ExecutionError, match="BatchNormalization"):
        cq.quantize_dequantize(x[:, :8], s, z, a, c)


@pytest.mark.parametrize("middle", ["reshape", "transpose", "concat"])
def test_requantization_on_the_same_grid_is_dropped(middle):
    model = _chain_model(middle)
    ops = _session_ops(model)
    # only the first pair(s) are left: the last one would return its input unchanged
    assert ops.count("QuantizeDequantize") == (2 if middle == "concat" else 1)
    _same_as_unfused(model)


@pytest.mark.parametrize("middle", ["reshape", "transpose", "concat"])
def test_requantization_with_other_parameters_is_kept(middle):
    model = _chain_model(middle, same=False)
    assert _session_ops(model).count("QuantizeDequantize") == (3 if middle == "concat" else 2)
    _same_as_unfused(model)


def test_requantization_after_max_pool_is_kept():
    # MaxPool may produce -inf (a window over padding only), which is on no grid
    model = _chain_model("maxpool")
    assert _session_ops(model).count("QuantizeDequantize") == 2
    _same_as_unfused(model)


def test_requantization_is_idempotent_for_random_scales():
    # what _drop_requantization relies on, over many scales and every quantized value
    rng = np.random.default_rng(11)
    for bad in (0.0, 1e-40, 1e-31, 1e31, np.inf, np.nan, -0.5):
        assert not cq._idempotent_scale(np.array(bad, np.float32))
    for scale in np.concatenate([10.0 ** rng.uniform(-29, 29, 300), [1.001e-30, 0.999e30]]):
        s = np.array(scale, np.float32)
        for dt, zp in ZERO_POINTS:
            z = np.array(zp, dt)
            lo, hi = RANGES[dt]
            k = np.arange(lo, hi + 1, dtype=np.float32) - np.float32(zp)
            y = (k * s).astype(np.float32)
            assert cq._idempotent_scale(s)
            np.testing.assert_array_equal(_bits(_pair(y, s, z)), _bits(y))


# ---------------------------------------------------------------------------------------------
# a whole static QDQ model


def _bn_cnn(seed: int = 0) -> onnx.ModelProto:
    """Conv -> BatchNormalization -> Relu -> MaxPool -> Conv -> Add(skip) -> Relu -> Concat ->
    GlobalAveragePool -> Flatten -> Gemm."""
    rng = np.random.default_rng(seed)

    def r(*shape, k=0.3):
        return (rng.standard_normal(shape) * k).astype(np.float32)

    inits = {"w1": r(8, 3, 3, 3), "b1": r(8, k=0.1), "g": 1 + r(8, k=0.1), "beta": r(8, k=0.1),
             "mean": r(8, k=0.1), "var": (0.5 + rng.random(8)).astype(np.float32),
             "w2": r(8, 8, 3, 3, k=0.15), "wf": r(16, 5), "bf": r(5, k=0.1)}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g", "beta", "mean", "var"], ["n1"],
                         name="bn1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "p1"], ["s"], name="skip"),
        helper.make_node("Relu", ["s"], ["r2"], name="relu2"),
        helper.make_node("Concat", ["r2", "p1"], ["cat"], name="cat", axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "bn_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(a, n) for n, a in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


class _Reader(CalibrationDataReader):
    def __init__(self, n: int = 8) -> None:
        rng = np.random.default_rng(7)
        self.it = iter([{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)}
                        for _ in range(n)])

    def get_next(self):
        return next(self.it, None)


@pytest.fixture(scope="module")
def static_qdq():
    float_model = _bn_cnn()
    q = quantize_static_model(float_model, _Reader(), per_channel=True)
    return float_model, _to_proto(q)


def _to_proto(model) -> onnx.ModelProto:
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "q.onnx")
        pyonnx.save(model, path)
        return onnx.load(path)


def test_static_qdq_model_same_outputs_without_the_fusion(static_qdq, monkeypatch):
    _, qmodel = static_qdq
    ops = _session_ops(qmodel)
    assert ops.count("QuantizeDequantize") >= 3
    feeds = {"x": np.random.default_rng(3).standard_normal((1, 3, 16, 16)).astype(np.float32)}
    fused = _outputs(qmodel, feeds)
    # the same session stages with this one pass replaced by a no-op
    monkeypatch.setattr(cq.FuseQuantizeDequantize, "__new__", lambda cls: EliminateDeadCode())
    assert "QuantizeDequantize" not in _session_ops(qmodel)
    unfused = _outputs(qmodel, feeds)
    np.testing.assert_array_equal(_bits(fused[0]), _bits(unfused[0]))


def test_quantize_static_folds_batch_norm(static_qdq):
    float_model, qmodel = static_qdq
    ops = [n.op_type for n in qmodel.graph.node]
    assert "BatchNormalization" not in ops
    assert ops.count("Conv") == 2
    onnx.checker.check_model(qmodel, full_check=True)
    feeds = {"x": np.random.default_rng(4).standard_normal((1, 3, 16, 16)).astype(np.float32)}
    ref = run_ort(float_model, feeds)
    assert cosine(run_ort(qmodel, feeds), ref) > 0.99
    assert cosine(_outputs(qmodel, feeds)[0], ref) > 0.99
    # the caller's model is left as it was
    assert any(n.op_type == "BatchNormalization" for n in float_model.graph.node)


def test_per_tensor_weights_keep_the_batch_norm():
    # folding would put the BatchNormalization's per-channel factors on one int8 grid
    q = quantize_static_model(_bn_cnn(), _Reader())
    assert "BatchNormalization" in [n.op_type for n in q.graph.nodes]


def test_batch_norm_with_overridable_parameters_is_kept():
    model = _bn_cnn()
    # the BatchNormalization's mean also a graph input: its value is known only at run time,
    # so the written model cannot hold the folded weights (nor a pyonnx-private node)
    model.graph.input.append(helper.make_tensor_value_info("mean", TensorProto.FLOAT, [8]))
    q = quantize_static_model(model, _Reader(), per_channel=True)
    ops = [(n.domain, n.op_type) for n in q.graph.nodes]
    assert ("", "BatchNormalization") in ops
    assert all(d in ("", "ai.onnx") for d, _ in ops)


def test_weight_dequantization_runs_just_before_its_reader():
    # onnxruntime's quantizer writes every weight's DequantizeLinear first: run in that order,
    # all dequantized weights would be alive from the start of the run
    rng = np.random.default_rng(17)
    inits = []
    for name, shape in (("w1", (8, 3, 3, 3)), ("w2", (8, 8, 3, 3))):
        inits += [numpy_helper.from_array(rng.integers(-127, 128, shape).astype(np.int8),
                                          name + "_q"),
                  numpy_helper.from_array(np.array(0.01, np.float32), name + "_s")]
    nodes = [helper.make_node("DequantizeLinear", ["w1_q", "w1_s"], ["w1"], name="dq1"),
             helper.make_node("DequantizeLinear", ["w2_q", "w2_s"], ["w2"], name="dq2"),
             helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["c1"], ["r1"], name="act"),
             helper.make_node("Conv", ["r1", "w2"], ["y"], name="conv2", pads=[1, 1, 1, 1])]
    graph = helper.make_graph(
        nodes, "weights_first",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    m = run_passes(pyonnx.load(model.SerializeToString()), CPUProvider().session_passes(99))
    names = [n.name for n in m.graph.nodes]
    assert names.index("dq2") == names.index("conv2") - 1
    assert names.index("dq1") == names.index("conv1") - 1
    feeds = {"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)}
    np.testing.assert_array_equal(
        _outputs(model, feeds)[0],
        _outputs(model, feeds, pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL)[0])
