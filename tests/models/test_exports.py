"""Real exports against onnxruntime: the committed models under tests/models/exports/.

tools/export_models.py made each model (random weights, reduced widths) with the exporter its
users use: torch.onnx's TorchScript and dynamo exporters, tf2onnx from Keras and from a
tf.function, skl2onnx; and copies whose dynamic graph dims are written as dim_value -1, as
Paddle2ONNX writes them. Its docstring says which environment runs which exporter.

For every model:
- test_export_matches_onnxruntime: pyonnx (with its session-time optimizations and without)
  and onnxruntime describe the same inputs, outputs and overridable initializers, and run the
  stored inputs (NAME.npz), then their first row where the batch dim is free. Outputs must
  have the same names, types, dtypes and shapes; integers, booleans and strings must be
  equal; floats agree within the model's tolerance in CASES (|got - ref| <= atol + rtol *
  |ref|, NaN where the reference has NaN): the backend suite's rtol 1e-3 with an atol for
  the model's depth (1e-5 for torch, 1e-6 for Keras, 1e-4 for the detectors' pixel boxes),
  rtol 1e-5 / atol 1e-6 for the shallow skl2onnx graphs. The tolerances are stated, never
  tuned to make a case pass.
- test_pyonnx_writes_what_it_read: onnxruntime on pyonnx.serialize(pyonnx.load(file)) gives
  its results on the file.
- test_text_round_trip: the same for pyonnx.parse_model(pyonnx.to_text(..., lossless=True)).
- test_checker_accepts_export: onnx.checker and pyonnx.check_model(full_check=True) accept it.
- test_shape_inference_matches_runtime: strict infer_shapes agrees with the dtype and shape
  onnxruntime computes for every main-graph value.
- test_inferred_dims_are_never_negative: no inferred dim is a negative size.

Known gaps are strict xfails naming their cause (the marks above CASES). Needs numpy,
onnxruntime and onnx (test dependencies) and pyonnx: neither torch nor TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

import pyonnx  # noqa: E402
from pyonnx.ir import DataType, TensorType  # noqa: E402

EXPORTS = os.path.join(os.path.dirname(__file__), "exports")


@dataclass(frozen=True)
class Case:
    """One committed model: its file stem, who exported it, and the float tolerance."""

    name: str
    exporter: str
    rtol: float = 1e-3
    atol: float = 1e-5
    marks: tuple[Any, ...] = field(default=())


# name, exporter, rtol, atol (float outputs; other dtypes are compared exactly), known gap
CASES = [
    Case("mobilenet_v3_small_ts", "torch.onnx TorchScript, opset 18", 1e-3, 1e-5),
    Case("mobilenet_v3_small_functions_ts",
         "torch.onnx TorchScript, opset 18, modules as local functions", 1e-3, 1e-5),
    Case("mobilenet_v3_small_dynamo", "torch.onnx dynamo, opset 18", 1e-3, 1e-5),
    Case("mobilenet_v3_small_neg_dims", "mobilenet_v3_small_ts, batch dim_value -1", 1e-3, 1e-5),
    # boxes are pixel coordinates (up to 260): atol 1e-4 is far below a pixel; scores in [0, 1]
    Case("ssdlite_ts", "torch.onnx TorchScript, opset 17", 1e-3, 1e-4),
    Case("fasterrcnn_small_ts", "torch.onnx TorchScript, opset 17", 1e-3, 1e-4),
    Case("fasterrcnn_rpn_dynamo", "torch.onnx dynamo, opset 18 (backbone + RPN head)", 1e-3,
         1e-5),
    Case("bert_tiny_ts", "torch.onnx TorchScript, opset 14", 1e-3, 1e-5),
    Case("bert_tiny_dynamo", "torch.onnx dynamo, opset 18", 1e-3, 1e-5),
    Case("shape_arith_ts", "torch.onnx TorchScript, opset 18", 1e-3, 1e-5),
    Case("shape_arith_dynamo", "torch.onnx dynamo, opset 18", 1e-3, 1e-5),
    Case("shape_arith_init_inputs_ts",
         "torch.onnx TorchScript, opset 18, keep_initializers_as_inputs", 1e-3, 1e-5),
    Case("tagger_lstm_gru_ts", "torch.onnx TorchScript, opset 18", 1e-3, 1e-5),
    Case("tagger_lstm_gru_dynamo", "torch.onnx dynamo, opset 18", 1e-3, 1e-5),
    Case("decoder_ts", "torch.onnx TorchScript, opset 20", 1e-3, 1e-5),
    Case("decoder_dynamo", "torch.onnx dynamo, opset 20", 1e-3, 1e-5),
    Case("ops_mix_ts", "torch.onnx TorchScript, opset 18", 1e-3, 1e-5),
    Case("ops_mix_dynamo", "torch.onnx dynamo, opset 18", 1e-3, 1e-5),
    Case("keras_cnn", "tf2onnx from_keras, opset 17", 1e-3, 1e-6),
    Case("keras_lstm", "tf2onnx from_keras, opset 17", 1e-3, 1e-6),
    Case("keras_gru", "tf2onnx from_keras, opset 17", 1e-3, 1e-6),
    Case("keras_text_transformer", "tf2onnx from_keras, opset 17", 1e-3, 1e-6),
    Case("tf_while_cond", "tf2onnx from_function, opset 17", 1e-3, 1e-6),
    Case("tf_ops_mix", "tf2onnx from_function, opset 17", 1e-3, 1e-6),
    Case("tf_scan", "tf2onnx from_function, opset 17", 1e-3, 1e-6),
    # skl2onnx graphs are a few float32 ops deep: held tighter, as tests/ml holds them
    Case("skl_scaler_logreg", "skl2onnx, opset 18 + ai.onnx.ml 1", 1e-5, 1e-6),
    Case("skl_scaler_logreg_neg_dims", "skl_scaler_logreg, batch dim_value -1", 1e-5, 1e-6),
    Case("skl_forest", "skl2onnx, opset 18 + ai.onnx.ml 1", 1e-5, 1e-6),
    Case("skl_gbr", "skl2onnx, opset 18 + ai.onnx.ml 1", 1e-5, 1e-6),
    Case("skl_column_transformer", "skl2onnx, opset 18 + ai.onnx.ml 1", 1e-5, 1e-6),
    Case("skl_tfidf", "skl2onnx, opset 18 + ai.onnx.ml 1 + com.microsoft 1", 1e-5, 1e-6),
]


def load_inputs(name: str) -> dict[str, np.ndarray]:
    """The stored sample inputs; strings (stored as fixed-width unicode) become object arrays,
    the form skl2onnx users feed."""
    with np.load(os.path.join(EXPORTS, f"{name}.npz")) as z:
        return {k: (z[k].astype(object) if z[k].dtype.kind == "U" else z[k]) for k in z.files}


def assert_same(got: Any, ref: Any, case: Case, where: str) -> None:
    """Compare one output (tensor, sequence or map) of pyonnx with onnxruntime's."""
    if isinstance(ref, list):
        assert isinstance(got, list), f"{where}: {type(got).__name__}, expected a list"
        assert len(got) == len(ref), f"{where}: {len(got)} elements, expected {len(ref)}"
        for i, (g, r) in enumerate(zip(got, ref)):
            assert_same(g, r, case, f"{where}[{i}]")
        return
    if isinstance(ref, dict):
        assert isinstance(got, dict), f"{where}: {type(got).__name__}, expected a dict"
        assert list(got) == list(ref), f"{where}: keys {list(got)}, expected {list(ref)}"
        for k in ref:
            assert_same(got[k], ref[k], case, f"{where}[{k!r}]")
        return
    if not isinstance(ref, np.ndarray):          # a map's scalar value
        ref = np.asarray(ref)
        got = np.asarray(got)
    assert isinstance(got, np.ndarray), f"{where}: {type(got).__name__}, expected ndarray"
    assert got.dtype == ref.dtype, f"{where}: dtype {got.dtype}, expected {ref.dtype}"
    assert got.shape == ref.shape, f"{where}: shape {got.shape}, expected {ref.shape}"
    if ref.dtype.kind == "f":
        np.testing.assert_allclose(got, ref, rtol=case.rtol, atol=case.atol, equal_nan=True,
                                   err_msg=where)
    else:                                        # integers, booleans, strings: exact
        np.testing.assert_array_equal(got, ref, err_msg=where)


def test_every_export_is_listed() -> None:
    """The table and the folder agree: no committed model goes untested, none is missing."""
    on_disk = {f[:-5] for f in os.listdir(EXPORTS) if f.endswith(".onnx")}
    listed = {c.name for c in CASES}
    assert on_disk == listed
    for name in listed:
        assert os.path.exists(os.path.join(EXPORTS, f"{name}.npz")), name


def describe(arg: Any) -> tuple[str, str, Any]:
    """A NodeArg as onnxruntime's users see it: name, type string, shape."""
    return arg.name, arg.type, arg.shape


def first_rows(sess: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The feeds cut to their first row along axis 0, where the model lets every input of rank
    >= 1 have any size there (a dim_param, an unknown dim or dim_value -1) and the stored batch
    is larger than 1; None where it does not."""
    cut = {}
    for arg in sess.get_inputs():
        value = feeds[arg.name]
        if value.ndim == 0:
            cut[arg.name] = value
            continue
        first = arg.shape[0] if arg.shape else 0
        if (isinstance(first, int) and first >= 0) or value.shape[0] < 2:
            return None
        cut[arg.name] = value[:1]
    return cut


def compare_run(case: Case, sess: Any, ref_sess: Any, feeds: dict[str, np.ndarray],
                what: str) -> None:
    ref = ref_sess.run(None, feeds)
    got = sess.run(None, feeds)
    names = [o.name for o in ref_sess.get_outputs()]
    assert [o.name for o in sess.get_outputs()] == names
    assert len(got) == len(ref)
    for name, g, r in zip(names, got, ref):
        assert_same(g, r, case, f"{case.name}:{name} ({what}; {case.exporter})")


@pytest.mark.parametrize("optimized", [True, False], ids=["optimized", "unoptimized"])
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=c.marks) for c in CASES])
def test_export_matches_onnxruntime(case: Case, optimized: bool) -> None:
    """The sessions describe the same inputs, outputs and overridable initializers; they compute
    the same for the stored inputs, then, where the batch dimension is free, for their first
    row (a second shape: nothing from the first run may stick to the session).
    pyonnx runs with its default session-time graph optimizations, and without any (the
    reference kernels alone), so a difference points at the optimizer or at a kernel."""
    path = os.path.join(EXPORTS, f"{case.name}.onnx")
    feeds = load_inputs(case.name)
    ref_sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    options = pyonnx.SessionOptions()
    if not optimized:
        options.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = pyonnx.InferenceSession(path, options)
    for what in ("get_inputs", "get_outputs", "get_overridable_initializers"):
        assert [describe(a) for a in getattr(sess, what)()] == \
            [describe(a) for a in getattr(ref_sess, what)()], what
    compare_run(case, sess, ref_sess, feeds, "stored inputs")
    small = first_rows(ref_sess, feeds)
    if small is not None:
        compare_run(case, sess, ref_sess, small, "first row")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_pyonnx_writes_what_it_read(case: Case) -> None:
    """load -> serialize keeps everything onnxruntime needs: the rewritten bytes give
    onnxruntime's own results on the original file (exporters' quirks included: dynamo's
    per-node metadata, skl2onnx's repeated opset imports, string tensors, subgraphs)."""
    path = os.path.join(EXPORTS, f"{case.name}.onnx")
    feeds = load_inputs(case.name)
    ref_sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rewritten = ort.InferenceSession(pyonnx.serialize(pyonnx.load(path)),
                                     providers=["CPUExecutionProvider"])
    compare_run(case, rewritten, ref_sess, feeds, "rewritten by pyonnx")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_text_round_trip(case: Case) -> None:
    """parse_model(to_text(model, lossless=True)) keeps what onnxruntime needs to compute the
    same results, with the value names ('onnx::Mul_374', 'Identity:0'), string tensors,
    subgraphs and local functions real exporters write."""
    path = os.path.join(EXPORTS, f"{case.name}.onnx")
    feeds = load_inputs(case.name)
    ref_sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    reparsed = pyonnx.parse_model(pyonnx.to_text(pyonnx.load(path), lossless=True))
    rewritten = ort.InferenceSession(pyonnx.serialize(reparsed),
                                     providers=["CPUExecutionProvider"])
    compare_run(case, rewritten, ref_sess, feeds, "text round trip")


def _params(marks_of: Any) -> list[Any]:
    return [pytest.param(c, id=c.name, marks=marks_of(c)) for c in CASES]


@pytest.mark.parametrize("case", _params(lambda c: ()))
def test_checker_accepts_export(case: Case) -> None:
    """What the exporters write, and onnx.checker accepts, pyonnx's full check accepts."""
    onnx = pytest.importorskip("onnx")
    path = os.path.join(EXPORTS, f"{case.name}.onnx")
    onnx.checker.check_model(path, full_check=True)
    pyonnx.check_model(path, full_check=True)


@pytest.mark.parametrize("case", _params(lambda c: ()))
def test_shape_inference_matches_runtime(case: Case) -> None:
    """infer_shapes in strict mode, given the stored inputs' shapes, against what onnxruntime
    computes for every main-graph value: the same element type, and where a shape is inferred
    the same rank and every integer dim equal (symbolic dims, e.g. a NonZero count, match
    anything). Strict: a consistent export has no contradiction for inference to find."""
    onnx = pytest.importorskip("onnx")
    path = os.path.join(EXPORTS, f"{case.name}.onnx")
    feeds = load_inputs(case.name)
    inferred = pyonnx.infer_shapes(pyonnx.load(path),
                                   input_shapes={k: list(v.shape) for k, v in feeds.items()},
                                   strict=True)
    types = {v.name: v.type for v in inferred.graph.value_info}
    types.update({v.name: v.type for v in inferred.graph.outputs})
    # onnxruntime reports every node output when each is made a graph output
    proto = onnx.load(path)
    names = [o for n in proto.graph.node for o in n.output if o]
    del proto.graph.output[:]
    proto.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names)
    actual = ort.InferenceSession(proto.SerializeToString(),
                                  providers=["CPUExecutionProvider"]).run(None, feeds)
    wrong = []
    for name, value in zip(names, actual):
        t = types.get(name)
        if not isinstance(t, TensorType) or not isinstance(value, np.ndarray):
            continue                              # unknown, or a sequence / map
        if t.elem_type != DataType.UNDEFINED and t.elem_type.numpy != value.dtype:
            wrong.append(f"{name}: inferred {t}, onnxruntime has {value.dtype}")
        if t.shape is not None and (len(t.shape) != value.ndim or any(
                isinstance(d, int) and d != a for d, a in zip(t.shape, value.shape))):
            wrong.append(f"{name}: inferred shape {t.shape}, onnxruntime has {value.shape}")
    assert not wrong, "\n".join(wrong[:20])


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_inferred_dims_are_never_negative(case: Case) -> None:
    """infer_shapes on the file as it is (no input shapes given): every dim it states for a
    value is a size >= 0 or a symbol; -1 in a file means an unknown dim, never a size."""
    model = pyonnx.infer_shapes(pyonnx.load(os.path.join(EXPORTS, f"{case.name}.onnx")))
    g = model.graph
    negative = [f"{v.name}: {v.type.shape}" for v in [*g.inputs, *g.value_info, *g.outputs]
                if isinstance(v.type, TensorType) and v.type.shape is not None
                and any(isinstance(d, int) and d < 0 for d in v.type.shape)]
    assert not negative, "\n".join(negative[:20])
