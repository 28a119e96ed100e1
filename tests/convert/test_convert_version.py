"""The opset converter on every ONNX backend node case.

Each case is converted to the lowest and highest opset (7-28) where all its operators exist and to
the opsets next to its own; every converted file must pass onnx.checker's full check and, run on
the case's inputs, give the case's expected outputs (the conformance harness's run_case: same
tolerances and spec-undefined rules). A refusal is allowed (a node can be inexpressible, e.g. an
axes input computed at run time that an older opset wants as an attribute) but must be the typed
error naming the nodes. The full sweep over all of 7-28, beside onnx's converter, is
tools/convert_opset_table.py and its table.
"""

from __future__ import annotations

import pytest

pytest.importorskip("onnx", reason="the backend cases come from the onnx package (test extra)")

import onnx  # noqa: E402

from pyonnx import defs  # noqa: E402
from pyonnx.convert import OpsetConversionError, convert_version  # noqa: E402
from pyonnx.convert.version import MIN_OPSET, _removed  # noqa: E402
from pyonnx.errors import UnsupportedOperatorError  # noqa: E402
from pyonnx.io import load, serialize  # noqa: E402
from tests.conformance.backend import Case, load_expected_failures, node_cases, run_case  # noqa: E402

_XFAIL = load_expected_failures()


def _exists(model: object, opset: int) -> bool:
    for n in model.graph.all_nodes():  # type: ignore[attr-defined]
        if n.domain in ("", "ai.onnx"):
            s = defs.lookup("", n.op_type, opset)
            if s is None or _removed(s):
                return False
    return True


def _targets(case: Case) -> list[int]:
    """Lowest and highest opset where the case's operators exist, and its neighbours."""
    m = load(case.model)
    src = m.opset("")
    if src is None:  # no default-domain operators (the training preview cases)
        return []
    ok = [t for t in range(MIN_OPSET, defs.max_opset("") + 1) if _exists(m, t)]
    if not ok:
        return []
    wanted = {ok[0], ok[-1], src - 1, src + 1}
    return sorted(t for t in wanted if t in ok and t != src)


def _schema_versions(model: object) -> list[tuple[str, int]]:
    opset = model.opset("")  # type: ignore[attr-defined]
    return [(n.op_type, defs.lookup("", n.op_type, opset).since_version)
            if n.domain in ("", "ai.onnx") else (n.op_type, -1)
            for n in model.graph.all_nodes()]  # type: ignore[attr-defined]


def _run_converted(case: Case, model_bytes: bytes) -> None:
    """run_case on pyonnx; a kernel pyonnx lacks for an older schema version is the engine's gap,
    not the converter's: then onnxruntime runs it against the same expected outputs."""
    c = Case(case.name, case.kind, model_bytes, case.data_sets, case.rtol, case.atol,
             case.op_types)
    try:
        run_case(c)
    except UnsupportedOperatorError:
        _run_onnxruntime(c)


def _run_onnxruntime(case: Case) -> None:
    import onnxruntime as ort

    from tests.conformance.backend import _only_defined, assert_similar, undefined_rule

    so = ort.SessionOptions()
    so.log_severity_level = 4
    sess = ort.InferenceSession(case.model, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    rule = undefined_rule(case.name)
    for k, (inputs, expected) in enumerate(case.data_sets):
        got = sess.run(None, dict(zip(names, inputs)))
        assert len(got) == len(expected), f"{len(got)} outputs, expected {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, got)):
            if rule is not None:
                e, a = _only_defined(rule, inputs, e, a)
            assert_similar(e, a, case.rtol, case.atol, f"onnxruntime, data set {k} output {i}")


_CASES = [c for c in node_cases() if c.name not in _XFAIL]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in _CASES])
def test_backend_case_converted(case: Case) -> None:
    source = load(case.model)
    before = _schema_versions(source)
    # a few cases fail onnx's full check already (onnx's own function bodies, e.g. MVN's, do
    # not type-check at every opset): their converted files get the structural check only
    try:
        onnx.checker.check_model(onnx.load_from_string(case.model), full_check=True)
        full = True
    except onnx.checker.ValidationError:
        full = False
    except onnx.shape_inference.InferenceError:
        full = False
    for target in _targets(case):
        try:
            converted = convert_version(source, target)
        except OpsetConversionError as e:
            assert e.problems and all("node" in p for p in e.problems), str(e)
            continue
        data = serialize(converted)
        onnx.checker.check_model(onnx.load_from_string(data), full_check=full)
        if _schema_versions(converted) == before:
            continue  # same nodes, same schemas: the conformance suite already runs these
        try:
            _run_converted(case, data)
        except AssertionError as e:
            raise AssertionError(f"converted to opset {target}: {e}") from None
