"""Every optimizer test runs the pass manager in debug mode: the IR's invariants
(pyonnx.ir.lint) are checked after each pass that changes a model, so a pass that breaks a use
list or the topological order fails here even when the outputs still happen to match."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _debug_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYONNX_DEBUG_PASSES", "1")
