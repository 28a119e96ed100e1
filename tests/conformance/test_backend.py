"""The ONNX backend suite as pytest cases (see backend.py for what is compared and how).

A case listed in expected_failures.txt is an expected failure with its reason; if it passes, the
test fails (strict), so the list can only shrink.
"""

from __future__ import annotations

import pytest

pytest.importorskip("onnx", reason="the backend suite comes from the onnx package (test extra)")

from tests.conformance.backend import all_cases, load_expected_failures, run_case  # noqa: E402

_XFAIL = load_expected_failures()
_CASES = all_cases()


def _param(case):  # type: ignore[no-untyped-def]
    marks = []
    if case.name in _XFAIL:
        marks.append(pytest.mark.xfail(strict=True, reason=_XFAIL[case.name]))
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in _CASES])
def test_backend_case(case) -> None:  # type: ignore[no-untyped-def]
    run_case(case)


def test_expected_failures_name_real_cases() -> None:
    """Every line of expected_failures.txt names a case that exists and gives a reason."""
    names = {c.name for c in _CASES}
    unknown = sorted(set(_XFAIL) - names)
    assert not unknown, f"expected_failures.txt lists unknown cases: {unknown}"
    missing_reason = sorted(n for n, r in _XFAIL.items() if not r)
    assert not missing_reason, f"expected failures without a reason: {missing_reason}"
