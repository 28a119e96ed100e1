"""The ONNX backend suite as pytest cases (see backend.py for what is compared and how).

A case listed in expected_failures.txt is an expected failure with its reason; if it passes, the
test fails (strict), so the list can only shrink. A case of ``machine_dependent_failures`` (this
machine's arithmetic decides it) is an expected failure that may pass.
"""

from __future__ import annotations

import pytest

pytest.importorskip("onnx", reason="the backend suite comes from the onnx package (test extra)")

from tests.conformance.backend import (  # noqa: E402
    UNDEFINED_RULES,
    _only_defined,
    all_cases,
    load_expected_failures,
    load_spec_undefined,
    machine_dependent_failures,
    run_case,
)

_XFAIL = load_expected_failures()
_MAY_FAIL = machine_dependent_failures()
_CASES = all_cases()


def _param(case):  # type: ignore[no-untyped-def]
    marks = []
    if case.name in _XFAIL:
        marks.append(pytest.mark.xfail(strict=True, reason=_XFAIL[case.name]))
    elif case.name in _MAY_FAIL:
        marks.append(pytest.mark.xfail(strict=False, reason=_MAY_FAIL[case.name]))
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


def test_spec_undefined_rules_name_real_cases() -> None:
    """Every spec_undefined.txt line matches a case, names a known rule and gives a reason; no
    case it matches is also an expected failure."""
    import fnmatch

    names = [c.name for c in _CASES]
    for pattern, rule, reason in load_spec_undefined():
        matched = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        assert matched, f"spec_undefined.txt pattern {pattern!r} matches no case"
        assert rule in UNDEFINED_RULES, f"unknown rule {rule!r} for {pattern!r}"
        assert reason, f"no reason for {pattern!r}"
        assert not set(matched) & set(_XFAIL), f"{pattern!r} also lists expected failures"


def test_cast_in_range_compares_every_defined_element() -> None:
    """The rule leaves out only out-of-range, NaN and infinite inputs: a wrong in-range element
    is still caught."""
    import ml_dtypes
    import numpy as np

    from tests.conformance.backend import assert_similar

    x = np.array([-9.0, -8.0, 7.9, 8.0, np.nan, np.inf, -0.5], np.float32)
    expected = np.array([0, -8, 7, 0, 0, 0, 0], ml_dtypes.int4)
    actual = np.array([7, -8, 7, -8, 3, 1, 0], ml_dtypes.int4)  # differs only where undefined
    e, a = _only_defined("cast_in_range", [x], expected, actual)
    assert e.size == 3  # -8, 7.9 and -0.5
    assert_similar(e, a, 1e-3, 1e-7)
    actual[1] = 0  # an in-range element wrong
    e, a = _only_defined("cast_in_range", [x], expected, actual)
    with pytest.raises(AssertionError):
        assert_similar(e, a, 1e-3, 1e-7)
