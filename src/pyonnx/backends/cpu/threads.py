"""The CPU provider's intra-op threads: one pool per process, one budget shared with BLAS.

onnxruntime gives each session a pool of ``intra_op_num_threads`` threads (default: the cores)
that its kernels split work over. pyonnx's kernels are NumPy calls, which release the GIL on
large arrays, so a kernel can split its work over threads too; its matrix products already run
on BLAS's own pool. Two pools each as large as the machine would oversubscribe the cores, and
resizing BLAS's pool around every run (threadpoolctl) costs tens of microseconds and races
between sessions running at once. So this module owns:

* the **budget**: how many threads intra-op work may use in this process. A session asks for
  its ``intra_op_num_threads`` (0: the cores, as onnxruntime) by :func:`request`; the budget is
  the largest request so far. BLAS gets one thread (set once, at the first session, through
  threadpoolctl; process-wide, so NumPy products elsewhere in the process run on one thread
  too): the provider splits large products itself (:mod:`pyonnx.backends.cpu.gemm`), in
  pieces that the pool's threads claim dynamically, where BLAS's own threads take fixed shares
  and wait for the slowest (2-10x slower per run on a 2-core machine busy with other work).
* the **pool**: ``budget - 1`` persistent worker threads; the calling thread takes a share of
  the work itself, so a budget of 1 means no workers and no hand-off at all.
* the **share** of a thread (:func:`set_share`): the most parts one kernel call on that thread
  may split into. Unset, it is the budget. A session in ``ExecutionMode.ORT_PARALLEL`` runs
  several nodes at once on its inter-op threads (:mod:`pyonnx.runtime.parallel`) and gives each
  of them ``budget // inter-op threads`` (at least 1), so inter-op x intra-op threads stay
  within the budget; a part counts as a thread only while one runs it (parts are claimed
  dynamically and a caller that waits for its parts does no work), so the threads computing at
  any moment are at most the budget.

Kernels split work with :func:`parallel_for`; the pieces must be independent (each writes its own
slice of an output), so the result does not depend on how the work is split. A kernel that runs
on a pool worker (nested use) runs its pieces inline, so the pool cannot deadlock on itself;
runs from several Python threads share the pool (their pieces queue up in order).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["cores", "request", "budget", "parallel_for", "split", "set_share", "share"]

_lock = threading.Lock()
_budget = 0                      # 0: nobody asked yet (then: one thread, no pool)
_pool: ThreadPoolExecutor | None = None
_local = threading.local()       # .share: see set_share (1 on the pool's own threads)
_blas_set: int | None = None     # what BLAS's pool was last set to by request()


def cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _mark_worker() -> None:
    _local.share = 1  # nested use runs inline (see the module docstring)


def set_share(parts: int) -> int:
    """Let kernel calls on the current thread split into at most ``parts`` parts (0: the
    budget, as on a thread that never set one). Returns the previous setting, for restoring."""
    previous = getattr(_local, "share", 0)
    _local.share = max(0, int(parts))
    return previous


def share() -> int:
    """The most parts a kernel call on the current thread may split into (see set_share)."""
    return getattr(_local, "share", 0) or budget()


def _set_blas(n: int) -> None:
    """BLAS's thread pool to n threads (process-wide; a no-op without threadpoolctl or BLAS)."""
    global _blas_set
    if _blas_set == n:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl is a dependency, but an odd install may lack it
        return
    threadpool_limits(limits=n, user_api="blas")
    _blas_set = n


def request(threads: int) -> int:
    """A session asks for ``threads`` intra-op threads (0 or less: the cores). The process
    budget becomes the largest request so far (capped at the cores: more threads than cores
    only time-slice); this module's pool follows when it grows, and BLAS is set to one thread
    (see the module docstring). Returns the budget."""
    global _budget, _pool
    want = cores() if threads <= 0 else min(int(threads), cores())
    with _lock:
        if want > _budget:
            _budget = want
            old, _pool = _pool, None
            if want > 1:
                _pool = ThreadPoolExecutor(max_workers=want - 1,
                                           thread_name_prefix="pyonnx-intra-op",
                                           initializer=_mark_worker)
            if old is not None:
                old.shutdown(wait=False)  # its queued pieces still run; new ones go to _pool
        _set_blas(1)
        return _budget


def budget() -> int:
    """The process's intra-op thread budget (1 until a session asked for more)."""
    return max(1, _budget)


def split(count: int, min_per_part: int) -> list[tuple[int, int]]:
    """[0, count) cut into at most budget() contiguous (start, stop) parts of at least
    ``min_per_part`` items each (one part when the work is small or the budget is 1)."""
    if count <= 0:
        return []
    # the thread's share: 1 on the pool's own threads (nested use runs inline, see the module
    # docstring), budget // inter-op threads on an ORT_PARALLEL session's node runners
    parts = max(1, min(share(), count // max(1, min_per_part)))
    step, extra = divmod(count, parts)
    out = []
    start = 0
    for p in range(parts):
        stop = start + step + (1 if p < extra else 0)
        out.append((start, stop))
        start = stop
    return out


def parallel_for(count: int, fn: Callable[[int, int], Any], *, min_per_part: int = 1) -> None:
    """Call ``fn(start, stop)`` over [0, count) cut by :func:`split`, and return when every
    part is done. The calling thread and up to budget() - 1 pool threads claim parts one at a
    time until none is left, so a part is never left waiting for a worker that the OS has not
    scheduled yet (on a busy machine the caller may simply do them all: the work is split
    dynamically, unlike BLAS's fixed shares). An exception of a part is raised once every
    claimed part has finished, so no part still writes into the caller's arrays."""
    parts = split(count, min_per_part)
    pool = _pool
    if len(parts) <= 1 or pool is None:
        for a, b in parts:
            fn(a, b)
        return
    claim = itertools.count()  # next() on it is atomic under the GIL
    total = len(parts)
    state = {"left": total}
    lock = threading.Lock()
    finished = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        while True:
            i = next(claim)
            if i >= total:
                return
            try:
                fn(*parts[i])
            except BaseException as e:  # noqa: BLE001 - re-raised by the caller
                errors.append(e)
            with lock:
                state["left"] -= 1
                if state["left"] == 0:
                    finished.set()

    try:
        for _ in range(total - 1):
            pool.submit(work)
    except RuntimeError:
        pass  # the pool was replaced and shut down meanwhile: the caller does the rest
    work()
    finished.wait()
    if errors:
        raise errors[0]


