"""The optional compiled-loop mechanism (pyonnx.backends.cpu.jit): switches, fallback, failure handling.

The loops themselves are tested against the NumPy paths in test_jit_<family>.py.
"""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest

from pyonnx.backends.cpu import jit


def _axpy(y, x, a):
    """y += a * x (a loop in numba's subset, for the mechanism tests)."""
    for i in range(y.shape[0]):
        y[i] += a * x[i]


def _reciprocal(y, x):
    """y = 1 / x elementwise (division by zero must follow NumPy, not Python)."""
    for i in range(y.shape[0]):
        y[i] = 1.0 / x[i]


@pytest.fixture
def fake_loops(monkeypatch):
    """A loop module ``pyonnx.backends.cpu.jit.fake_loops`` holding ``_axpy`` as ``axpy``, with
    the loops switched on whatever the environment says (these tests are of the mechanism; a
    run under ``PYONNX_JIT=0`` tests the NumPy paths elsewhere)."""
    monkeypatch.delenv("PYONNX_JIT", raising=False)
    monkeypatch.setattr(jit, "_env_on", None)  # read again
    mod = types.ModuleType("pyonnx.backends.cpu.jit.fake_loops")
    mod.axpy = _axpy
    mod.reciprocal = _reciprocal
    monkeypatch.setitem(sys.modules, "pyonnx.backends.cpu.jit.fake_loops", mod)
    monkeypatch.setattr(jit, "_loops", {})
    return mod


def test_env_switch_turns_loops_off(monkeypatch, fake_loops):
    monkeypatch.setenv("PYONNX_JIT", "0")
    assert not jit.available()  # the first question reads it
    monkeypatch.setenv("PYONNX_JIT", "1")
    assert not jit.available()  # and it is read once
    y = np.zeros(4)
    assert jit.call("fake_loops.axpy", y, np.ones(4), 2.0, elements=1 << 20) is False
    assert not y.any()  # nothing ran


def test_disabled_block_turns_loops_off(fake_loops):
    with jit.disabled():
        assert not jit.available()
        y = np.zeros(4)
        assert jit.call("fake_loops.axpy", y, np.ones(4), 2.0, elements=1 << 20) is False
        assert not y.any()


def test_missing_loop_warns_once_and_falls_back(fake_loops):
    if not jit.available():
        pytest.skip("numba is not installed: no loop is ever attempted")
    with pytest.warns(RuntimeWarning, match="no_such_loop"):
        assert jit.call("fake_loops.no_such_loop", np.zeros(2), elements=1 << 20) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second call is silent
        assert jit.call("fake_loops.no_such_loop", np.zeros(2), elements=1 << 20) is False



def test_loop_runs_and_type_failure_falls_back(fake_loops):
    pytest.importorskip("numba", reason="numba (the optional 'fast' extra) is not installed")
    assert jit.available()
    y = np.zeros(5, dtype=np.float32)
    assert jit.call("fake_loops.axpy", y, np.arange(5, dtype=np.float32), np.float32(2),
                    elements=1 << 20) is True
    np.testing.assert_array_equal(y, [0, 2, 4, 6, 8])
    # arguments numba cannot type (an object array) make the loop unavailable, with a warning
    with pytest.warns(RuntimeWarning, match="fake_loops.axpy"):
        assert jit.call("fake_loops.axpy", np.zeros(2, dtype=object), np.zeros(2), 1.0,
                        elements=1 << 20) is False
    # stays off afterwards
    assert jit.call("fake_loops.axpy", y, y, np.float32(1), elements=1 << 20) is False


def test_division_by_zero_follows_numpy(fake_loops):
    pytest.importorskip("numba", reason="numba (the optional 'fast' extra) is not installed")
    y = np.empty(3)
    assert jit.call("fake_loops.reciprocal", y, np.array([0.0, -0.0, 2.0]),
                    elements=1 << 20) is True
    np.testing.assert_array_equal(y, [np.inf, -np.inf, 0.5])


def test_small_work_stays_in_numpy(fake_loops, monkeypatch):
    """Below MIN_ELEMENTS the loop is not even looked up: numba is imported only for work where
    it pays off."""
    monkeypatch.setattr(jit, "MIN_ELEMENTS", 1 << 14)  # the default (tests/ops lowers it)
    y = np.zeros(4)
    assert jit.call("fake_loops.axpy", y, np.ones(4), 2.0, elements=jit.MIN_ELEMENTS - 1) is False
    assert not y.any()
    assert "fake_loops.axpy" not in jit._loops


def test_loop_compiles_without_a_disk_cache(fake_loops, monkeypatch):
    """Where numba finds no writable cache directory, the loop compiles in memory instead."""
    numba = pytest.importorskip("numba", reason="numba (the optional 'fast' extra) is not installed")
    real_njit = numba.njit

    def njit(*args, **kwargs):
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real_njit(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", njit)
    y = np.zeros(3)
    assert jit.call("fake_loops.axpy", y, np.ones(3), 2.0, elements=1 << 20) is True
    np.testing.assert_array_equal(y, [2, 2, 2])
