"""pyonnx.debug.compare / reduce and ``pyonnx compare``: a wrong kernel is found at its node,
real models agree across engines, a reduction is a valid model that reproduces the
disagreement, and an engine that fails is reported."""

from __future__ import annotations

import os

import numpy as np
import pytest

import pyonnx
from pyonnx import debug
from pyonnx.backends.cpu import registry as cpu_registry
from pyonnx.cli.main import main
from pyonnx.errors import InvalidArgument
from pyonnx.ops import registry

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

MODELS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "models")

TINY = """
<ir_version: 8, opset_import: ["" : 17]>
tiny (float[N, 4] x, float[4, 3] w) => (float[N, 3] y) {
    m = MatMul(x, w)
    r = Relu(m)
    s = Sigmoid(r)
    y = Add(s, m)
}
"""

NESTED = """
<ir_version: 8, opset_import: ["" : 17]>
nested (float[2, 3] x, bool c) => (float[2, 3] y) {
    a = Abs(x)
    b = If(c) <then_branch = g1 () => (float[2, 3] t) { t = Sigmoid(a) },
               else_branch = g2 () => (float[2, 3] e) { e = Neg(a) }>
    y = Add(b, a)
}
"""


def _wrong_sigmoid(X: np.ndarray) -> tuple[np.ndarray]:
    return ((1.0 / (1.0 + np.exp(-X)) + 0.25).astype(X.dtype),)


@pytest.fixture
def broken_sigmoid(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyonnx's Sigmoid-13 kernel replaced by one that is off by 0.25."""
    registry.get_kernel("", "Sigmoid", 13)  # loads the registry before patching it
    monkeypatch.setitem(registry._REGISTRY, ("", "Sigmoid", 13), _wrong_sigmoid)


def _node_names(model: pyonnx.ir.Model) -> list[str]:
    return [n.op_type for n in model.graph.nodes]


def test_wrong_kernel_is_found_at_its_node(broken_sigmoid: None) -> None:
    model = pyonnx.parse_model(TINY)
    report = debug.compare(model, engines=["pyonnx", "onnxruntime", "reference"])
    assert [e.exposed for e in report.engines] == ["all"] * 3
    assert report.baseline == "onnxruntime"
    first = report.first
    assert first is not None and not report.agree
    assert report.first_node.op_type == "Sigmoid" and first.value == "s"
    assert first.engine == "pyonnx"
    assert first.max_abs == pytest.approx(0.25, rel=1e-5)
    # the values before it agreed, and reference agrees with onnxruntime everywhere
    assert all(d.ok for d in report.diffs if d.node_index < first.node_index)
    assert all(d.ok for d in report.diffs if d.engine == "reference")
    text = report.format()
    assert "first disagreement: unnamed node (Sigmoid)" in text
    assert "max abs diff 0.25" in text and "float32 [1,3]" in text


def test_engines_agree_without_the_injected_fault() -> None:
    report = debug.compare(pyonnx.parse_model(TINY))
    assert report.agree, report.format()
    assert len(report.diffs) == 2 * 4  # four values, two engines against the baseline


def test_value_inside_a_subgraph_is_blamed_on_the_node_holding_it(broken_sigmoid: None
                                                                    ) -> None:
    model = pyonnx.parse_model(NESTED)
    report = debug.compare(model, engines="pyonnx,onnxruntime",
                           inputs={"c": np.array(True)})
    assert report.first_node.op_type == "If"
    # the else branch does not use the broken kernel
    report = debug.compare(model, engines="pyonnx,onnxruntime",
                           inputs={"c": np.array(False)})
    assert report.agree, report.format()


def test_failing_engine_is_reported_not_raised() -> None:
    def crash(model: object, path: str, feeds: object) -> dict:
        raise RuntimeError("this engine cannot run anything")

    report = debug.compare(pyonnx.parse_model(TINY),
                           engines=["pyonnx", debug.Engine("crashy", crash, needs_file=False),
                                    "onnxruntime"])
    (failed,) = report.failed
    assert failed.name == "crashy" and "cannot run anything" in failed.error
    assert set(failed.retries) == {"all", "typed"}
    assert report.agree  # the two others ran and agree
    assert "engine crashy: FAILED: RuntimeError: this engine cannot run anything" \
        in report.format()


def test_op_one_engine_lacks_is_reported() -> None:
    # com.microsoft's FastGelu: onnxruntime has it, onnx's reference evaluator does not
    model = pyonnx.parse_model("""
    <ir_version: 8, opset_import: ["" : 17, "com.microsoft" : 1]>
    g (float[2, 3] x) => (float[2, 3] y) { y = com.microsoft.FastGelu(x) }
    """)
    report = debug.compare(model, engines="onnxruntime,reference")
    assert [e.name for e in report.failed] == ["reference"]
    assert not report.agree and "fewer than two engines ran" in report.format()


def test_bad_arguments_are_typed_errors() -> None:
    model = pyonnx.parse_model(TINY)
    with pytest.raises(InvalidArgument, match="unknown engine 'tvm'"):
        debug.compare(model, engines="pyonnx,tvm")
    with pytest.raises(InvalidArgument, match="at least two engines"):
        debug.compare(model, engines="pyonnx")
    with pytest.raises(InvalidArgument, match=r"input\(s\) z given"):
        debug.compare(model, inputs={"z": np.zeros(1)})
    with pytest.raises(InvalidArgument, match="rank 2"):
        debug.compare(model, input_shapes={"x": [4]})


def test_diff_values_rules() -> None:
    f = np.array([1.0, np.nan, np.inf], np.float32)
    assert debug.diff_values(f, f.copy(), 1e-3, 0)["ok"]
    d = debug.diff_values(np.array([1.0, 2.0, np.inf], np.float32), f, 1e-3, 0)
    assert not d["ok"] and "(1 NaN in one engine only)" in d["reason"]
    assert "dtype" in debug.diff_values(f.astype(np.float64), f, 1, 1)["reason"]
    assert "shape" in debug.diff_values(f[:2], f, 1, 1)["reason"]
    d = debug.diff_values(np.array([1, 2, 3]), np.array([1, 2, 4]), 1, 1)
    assert not d["ok"] and d["where"] == (2,)  # integers are exact whatever the tolerance
    import ml_dtypes

    h = np.array([1.0, 2.0], ml_dtypes.bfloat16)
    step = np.array([2.0**-7, 0.0], ml_dtypes.bfloat16)  # one bfloat16 step above 1.0
    assert debug.diff_values(h + step, h, 1e-2, 0)["ok"]  # a float type: within tolerance
    assert not debug.diff_values(h * 2, h, 1e-2, 0)["ok"]
    assert debug.diff_values([f], [f], 0, 0)["ok"]
    assert not debug.diff_values([f], [f, f], 0, 0)["ok"]


# ------------------------------------------------------------------------------ reduce


def _check_with_onnx(path: str) -> None:
    onnx.checker.check_model(onnx.load(path), full_check=True)


def test_reduce_writes_a_valid_model_that_reproduces(broken_sigmoid: None, tmp_path) -> None:
    model = pyonnx.parse_model(TINY)
    report = debug.compare(model, engines="pyonnx,onnxruntime")
    out = str(tmp_path / "reduced.onnx")
    result = debug.reduce(model, report, out=out)
    assert result.nodes == 1
    assert result.path == out and result.inputs_path == str(tmp_path / "reduced.inputs.npz")
    _check_with_onnx(out)
    written = pyonnx.load(out)
    assert _node_names(written) == ["Sigmoid"]
    feeds = dict(np.load(result.inputs_path))
    assert set(feeds) == {"r"}  # the Sigmoid's input, fed with onnxruntime's value
    np.testing.assert_array_equal(feeds["r"], report.engine("onnxruntime").values["r"])
    again = debug.compare(written, engines="pyonnx,onnxruntime", inputs=feeds)
    assert again.first is not None and again.first.value == "s"


def test_reduce_keeps_initializers_and_captured_values(broken_sigmoid: None, tmp_path) -> None:
    model = pyonnx.parse_model("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2, 3] x, bool c) => (float[2, 3] y) <float[3] k = {1.0, 2.0, 3.0}> {
        a = Mul(x, k)
        b = If(c) <then_branch = g1 () => (float[2, 3] t) { t = Sigmoid(a) },
                   else_branch = g2 () => (float[2, 3] e) { e = Neg(a) }>
        y = Add(b, k)
    }
    """)
    report = debug.compare(model, engines="pyonnx,onnxruntime", inputs={"c": np.array(True)})
    out = str(tmp_path / "r.onnx")
    result = debug.reduce(model, report, out=out)
    _check_with_onnx(out)
    written = pyonnx.load(out)
    assert _node_names(written) == ["If"]
    assert sorted(v.name for v in written.graph.inputs) == ["a", "c"]  # a is captured
    again = debug.compare(written, engines="pyonnx,onnxruntime",
                          inputs=dict(np.load(result.inputs_path)))
    assert again.first is not None


def test_reduce_refuses_an_agreeing_report() -> None:
    model = pyonnx.parse_model(TINY)
    with pytest.raises(InvalidArgument, match="nothing to reduce"):
        debug.reduce(model, debug.compare(model, engines="pyonnx,onnxruntime"))


# ------------------------------------------------------------------------------ CLI


def test_cli_finds_the_node_and_reduces(broken_sigmoid: None, tmp_path, capsys) -> None:
    src = str(tmp_path / "tiny.onnx")
    pyonnx.save(pyonnx.parse_model(TINY), src)
    out = str(tmp_path / "small.onnx")
    status = main(["compare", src, "--engines", "pyonnx,onnxruntime", "--input-shape",
                   "x=2,4", "--reduce", out])
    text = capsys.readouterr().out
    assert status == 1
    assert "first disagreement: unnamed node (Sigmoid)" in text
    assert "float32 [2,3]" in text
    assert "reduced to 1 node(s)" in text
    _check_with_onnx(out)
    status = main(["compare", out, "--engines", "pyonnx,onnxruntime", "--inputs",
                   str(tmp_path / "small.inputs.npz")])
    assert status == 1 and "first disagreement" in capsys.readouterr().out


def test_cli_agreement_exits_zero(tmp_path, capsys) -> None:
    src = str(tmp_path / "tiny.onnx")
    pyonnx.save(pyonnx.parse_model(TINY), src)
    x = str(tmp_path / "x.npy")
    np.save(x, np.ones((3, 4), np.float32))
    assert main(["compare", src, "--inputs", f"x={x}", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert "all engines agree" in text and "engine reference: ran" in text


# ------------------------------------------------------------------------------ shared models


def _shared(name: str) -> str:
    path = os.path.join(MODELS, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent: the shared models live in ../shared/models of a "
                    f"development checkout (see DESIGN.md, Testing)")
    return path


def _silero_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"input": (rng.standard_normal((1, 512)) * 0.1).astype(np.float32),
            "state": np.zeros((2, 1, 128), np.float32), "sr": np.array(16000, np.int64)}


@pytest.mark.parametrize("name", [
    "bert_small.onnx", "bert_small_legacy.onnx", "gpt2_small.onnx", "vit_tiny.onnx",
    "magika_standard_v3_3.onnx", "silero_vad.onnx", "silero_vad_16k_op15.onnx",
    "silero_vad_op18_ifless.onnx"])
def test_shared_models_agree_across_engines(name: str) -> None:
    path = _shared(name)
    inputs = _silero_inputs() if name.startswith("silero") else None
    dims = {"seq": 16, "sequence": 16}
    report = debug.compare(path, inputs=inputs, dims=dims)
    assert report.engine("pyonnx").ok and report.engine("onnxruntime").ok, report.format()
    assert report.agree, report.format()


def test_wrong_kernel_in_a_real_model_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    path = _shared("bert_small.onnx")
    erf = registry.get_kernel("", "Erf", 13)

    def wrong_erf(X: np.ndarray) -> tuple[np.ndarray]:
        return ((erf(X)[0] * np.float32(1.01)).astype(X.dtype),)

    monkeypatch.setitem(registry._REGISTRY, ("", "Erf", 13), wrong_erf)
    # the CPU provider runs its fast Erf where one is registered: make that one wrong too
    from pyonnx.backends.cpu import registry as cpu_registry
    monkeypatch.setitem(cpu_registry._FAST, ("", "Erf", 13), wrong_erf)
    model = pyonnx.load(path)
    report = debug.compare(model, engines="pyonnx,onnxruntime")
    node = report.first_node
    first_erf = next(n for n in report.order if n.op_type == "Erf")
    assert node is first_erf, report.format()


def test_reduce_grows_when_the_node_alone_agrees(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path) -> None:
    """pyonnx's Add made wrong by a relative 1e-4 (inside rtol): the Sub after it cancels
    the equal parts and shows the error beyond atol. Sub alone, fed onnxruntime's values,
    agrees; the reduction must take the Add in too, and nothing else."""
    add = registry.get_kernel("", "Add", 14)

    def slightly_wrong_add(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray]:
        return ((add(A, B)[0] * np.float32(1 + 1e-4)).astype(A.dtype),)

    monkeypatch.setitem(registry._REGISTRY, ("", "Add", 14), slightly_wrong_add)
    # the CPU provider runs its own variant of a float Add: make that one wrong too
    monkeypatch.setitem(cpu_registry._FAST, ("", "Add", 14), slightly_wrong_add)
    model = pyonnx.parse_model("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[8] x) => (float[8] y) <float[1] zero = {0.0}> {
        n = Neg(x)
        a = Add(x, zero)
        d = Sub(a, x)
        y = Mul(d, n)
    }
    """)
    x = np.full(8, 1000.0, np.float32)
    report = debug.compare(model, engines="pyonnx,onnxruntime", inputs={"x": x})
    assert report.first_node.op_type == "Sub", report.format()
    result = debug.reduce(model, report, out=str(tmp_path / "r.onnx"))
    assert _node_names(result.model) == ["Add", "Sub"]
    assert set(result.inputs) == {"x"}
    _check_with_onnx(result.path)


def test_engine_refusing_untyped_outputs_falls_back_to_typed_ones() -> None:
    pyonnx_engine = debug.ENGINES["pyonnx"]

    def picky(model: pyonnx.ir.Model, path: str, feeds: dict) -> dict:
        untyped = [v.name for v in model.graph.outputs if v.type is None]
        if untyped:
            raise ValueError(f"graph outputs {untyped} declare no type")
        return pyonnx_engine.run(model, path, feeds)

    report = debug.compare(pyonnx.parse_model(TINY),
                           engines=[debug.Engine("picky", picky, needs_file=False),
                                    "onnxruntime"])
    run = report.engine("picky")
    assert run.ok and run.exposed == "typed" and "declare no type" in run.retries["all"]
    assert {d.value for d in report.diffs} == {"m", "r", "s", "y"}
    assert report.agree
    assert "values of inferred tensor type exposed" in report.format()


@pytest.mark.parametrize("text, values", [
    ("""<ir_version: 8, opset_import: ["" : 17, "local" : 1]>
        g (float[2, 3] x) => (float[2, 3] y) { a = local.twice(x)  y = Relu(a) }
        <domain: "local", opset_import: ["" : 17]>
        twice (u) => (v) { w = Add(u, u)  v = Neg(w) }""", {"a", "y"}),
    ("""<ir_version: 8, opset_import: ["" : 17]>
        g (float[2, 3] x) => (float[4, 3] y) {
            s = SequenceConstruct(x, x)
            y = ConcatFromSequence <axis = 0> (s)
        }""", {"s", "y"}),
], ids=["function-call", "sequence-value"])
def test_function_calls_and_sequences_are_compared(text: str, values: set[str]) -> None:
    report = debug.compare(pyonnx.parse_model(text))
    assert [e.exposed for e in report.engines] == ["all"] * 3, report.format()
    assert {d.value for d in report.diffs} == values
    assert report.agree, report.format()
