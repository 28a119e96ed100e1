"""The checker rejects every model of the invalid corpus (tools/make_invalid_models.py: valid
models each broken in one rule), naming the rule each breaks; onnx.checker's verdicts on the same
models are compared, and every case where onnx accepts a model pyonnx rejects is listed below
with the reason pyonnx is right."""

from __future__ import annotations

import warnings

import pytest

onnx = pytest.importorskip("onnx")

from pyonnx.checker import check_model  # noqa: E402
from pyonnx.errors import DecodeError, ValidationError  # noqa: E402
from tools.make_invalid_models import invalid_cases  # noqa: E402

#: mutation -> why pyonnx rejects what onnx.checker.check_model(full_check=True) accepts
ONNX_ACCEPTS = {
    "duplicate_default_import": "'' and 'ai.onnx' name the same operator set; two imports of it "
                                "(possibly with different versions) leave the node's schema "
                                "ambiguous. onnx takes one of them silently.",
    "opset_version_zero": "operator set versions start at 1 (IR spec: monotonically increasing "
                          "from the first published version); onnx does not look at imports "
                          "no node uses.",
    "output_undefined_elem_type": "the main graph's inputs and outputs MUST define their types "
                                  "(IR spec, Graphs); element type UNDEFINED is no type. onnx "
                                  "only checks that the field is present.",
    "ref_attr_outside_function": "IR spec, Attributes: ref_attr_name 'can only be used within "
                                 "the function body'; onnx does not check where it appears.",
    "function_ref_undeclared": "a reference must name one of the function's attribute "
                               "parameters (IR spec, Functions); onnx does not check it.",
    "call_missing_function": "the model declares the functions of domain 'local' and the "
                             "node names none of them; onnx treats any node of a non-standard "
                             "domain as an unknown custom op.",
}


def test_invalid_corpus_is_rejected_with_the_rule_named() -> None:
    cases = list(invalid_cases(per_mutation=8, max_seed_bytes=4_000_000))
    assert len(cases) >= 200
    assert len({c.rule for c in cases}) >= 20
    missed, onnx_accepts = [], []
    for case in cases:
        data = case.to_bytes()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                check_model(data, full_check=case.full)
            missed.append(f"{case.name}: accepted (breaks [{case.rule}])")
        except ValidationError as e:
            if not any(v.startswith(f"[{case.rule}] ") for v in e.violations):
                missed.append(f"{case.name}: [{case.rule}] not named in {e.violations}")
        except DecodeError as e:
            if case.stage != "decode":
                missed.append(f"{case.name}: unexpected DecodeError {e}")
            elif "tensor" not in str(e):
                missed.append(f"{case.name}: DecodeError does not name the tensor: {e}")
        else:
            if case.stage == "decode":
                missed.append(f"{case.name}: loaded although its tensor data is invalid")
        try:
            onnx.checker.check_model(case.model, full_check=True)
        except Exception:
            continue
        onnx_accepts.append(case.name)
    assert missed == []
    unexplained = [n for n in onnx_accepts if n.rsplit("/", 1)[1] not in ONNX_ACCEPTS]
    assert unexplained == []
