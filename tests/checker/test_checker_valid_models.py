"""The checker accepts every valid model: every case of the ONNX backend suite (node cases,
model folders, light models) and the real models of ../shared/models, with and without the
full check's type constraints. An IR version older than the opsets need only warns."""

from __future__ import annotations

import glob
import os
import sys
import types
import warnings

import pytest

pytest.importorskip("onnx")

from pyonnx.checker import IrVersionWarning, collect_violations  # noqa: E402

SHARED = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                       "models"))


def _rejections(sources: list[tuple[str, object]]) -> tuple[list[str], int]:
    """(violations of every model, number of models that warned about their IR version)."""
    bad, warned = [], 0
    for name, src in sources:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            found = collect_violations(src, full_check=True)
        warned += any(issubclass(w.category, IrVersionWarning) for w in caught)
        bad.extend(f"{name}: {v}" for v in found)
    return bad, warned


@pytest.fixture
def no_shape_inference(monkeypatch):  # type: ignore[no-untyped-def]
    # the full check's type-constraint rule is the checker's; strict shape inference is tested
    # with pyonnx.shape_inference itself
    monkeypatch.setitem(sys.modules, "pyonnx.shape_inference", types.ModuleType("disabled"))


def test_backend_suite_models_are_valid(no_shape_inference) -> None:  # type: ignore[no-untyped-def]
    from tests.conformance.backend import all_cases

    cases = all_cases()
    assert len(cases) > 1900
    bad, warned = _rejections([(c.name, c.model) for c in cases])
    assert bad == []
    # a dozen old pytorch exports declare IR 3 with opset 9: accepted with a warning
    assert warned < 50


@pytest.mark.skipif(not os.path.isdir(SHARED),
                    reason=f"{SHARED} is absent: the shared real models live beside the project "
                           f"checkout in CI and development, not in a fresh clone")
def test_shared_real_models_are_valid(no_shape_inference) -> None:  # type: ignore[no-untyped-def]
    paths = sorted(glob.glob(os.path.join(SHARED, "*.onnx")))
    assert paths
    bad, _ = _rejections([(os.path.basename(p), p) for p in paths])
    assert bad == []
