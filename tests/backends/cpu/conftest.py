"""Fixtures of the tests of the CPU provider's compiled loops (pyonnx.backends.cpu.jit)."""

from __future__ import annotations

import pytest

from pyonnx.backends.cpu import jit


@pytest.fixture(autouse=True)
def _loops_for_any_size(monkeypatch):  # type: ignore[no-untyped-def]
    """Kernel tests run the compiled loops (where numba is installed) on inputs of every size,
    small edge cases included, not only from jit.MIN_ELEMENTS on as in models."""
    monkeypatch.setattr(jit, "MIN_ELEMENTS", 0)


class LoopCalls:
    """The (loop name, whether it ran) of every ``jit.call`` made during a test."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def ran(self, prefix: str) -> list[bool]:
        """Whether each call of the loops whose name starts with ``prefix`` ran."""
        return [ran for name, ran in self.calls if name.startswith(prefix)]


@pytest.fixture
def loop_calls(monkeypatch) -> LoopCalls:  # type: ignore[no-untyped-def]
    """Requires the compiled loops (skips, saying why, where they are unavailable) and records
    every call of one."""
    pytest.importorskip("numba", reason="numba is not installed: the kernels have only their "
                                        "NumPy paths")
    if not jit.available():
        pytest.skip("compiled loops are turned off (PYONNX_JIT=0)")
    record = LoopCalls()
    real = jit.call

    def spy(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        ran = real(name, *args, **kwargs)
        record.calls.append((name, ran))
        return ran

    monkeypatch.setattr(jit, "call", spy)
    return record


@pytest.fixture
def shared_pool(monkeypatch):  # type: ignore[no-untyped-def]
    """A pool of two threads (a pretend 2-core machine, BLAS left alone) and the calls of
    ``threads.shared_loop`` made meanwhile, as (loop name, its counter, its pieces). A test sets
    ``threads._budget = 1`` to compare with one thread; the module's state is put back
    afterwards."""
    from pyonnx.backends.cpu import threads

    saved = (threads._budget, threads._pool, threads._blas_set)
    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(threads, "_set_blas", lambda n: None)
    calls: list = []
    real = threads.shared_loop
    monkeypatch.setattr(threads, "shared_loop", lambda name, args, parts, **k: (
        calls.append((name, args[-2], parts)) or real(name, args, parts, **k)))
    threads._budget, threads._pool = 0, None
    threads.request(2)
    try:
        yield calls
    finally:
        if threads._pool is not None:
            threads._pool.shutdown()
        threads._budget, threads._pool, threads._blas_set = saved
