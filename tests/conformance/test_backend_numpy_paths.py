"""The backend cases of the operators that have compiled loops (pyonnx.backends.cpu.jit), run again with
the loops turned off: the NumPy paths, which a plain install (no numba) uses, must pass them too.

Without numba installed, test_backend.py already runs these paths and this module checks that
the loops are indeed off.
"""

from __future__ import annotations

import pytest

pytest.importorskip("onnx", reason="the backend suite comes from the onnx package (test extra)")

from pyonnx.backends.cpu import jit  # noqa: E402
from tests.conformance.backend import load_expected_failures, node_cases, run_case  # noqa: E402

# the operators whose kernels call a compiled loop, and the models built on them
_LOOP_OPS = {"Conv", "Erf", "Gelu", "LayerNormalization", "Softmax", "Attention"}
_XFAIL = load_expected_failures()
_CASES = [c for c in node_cases() if _LOOP_OPS & set(c.op_types)]


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=_XFAIL[c.name])]
                 if c.name in _XFAIL else []) for c in _CASES])
def test_backend_case_numpy_path(case) -> None:  # type: ignore[no-untyped-def]
    with jit.disabled():
        assert not jit.available()
        run_case(case)


def test_numpy_path_cases_exist() -> None:
    assert len(_CASES) > 100
