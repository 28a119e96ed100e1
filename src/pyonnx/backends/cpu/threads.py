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

Kernels split work with :func:`parallel_for` (Python parts), or run a compiled loop that hands
out its own pieces on several threads at once with :func:`shared_loop` (the convolutions,
products, epilogues and recurrent steps of the ``fast`` extra); the pieces must be independent
(each writes its own slice of an output; a recurrent loop's pieces within one step, the loop
itself waiting between steps), so the result does not depend on how the work is split. A kernel
that runs on a pool worker (nested use) runs its pieces inline, so the pool cannot deadlock on
itself; runs from several Python threads share the pool (their pieces queue up in order).
"""

from __future__ import annotations

import collections
import itertools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pyonnx.backends.cpu import jit

__all__ = ["cores", "request", "budget", "parallel_for", "shared_loop", "split",
           "set_share", "share"]

_lock = threading.Lock()
_budget = 0                      # 0: nobody asked yet (then: one thread, no pool)
_pool: _Pool | None = None
_local = threading.local()       # .share: see set_share (1 on the pool's own threads)
_blas_set: int | None = None     # what BLAS's pool was last set to by request()


def cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


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
                _pool = _Pool(want - 1)
            if old is not None:
                old.shutdown(wait=False)  # its callers still finish their own work
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
    finished = np.zeros(1, np.int64)
    errors: list[BaseException] = []

    def work(seen: int = 0) -> None:
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
                    finished[0] = 1
                    pool.wake_callers()

    job = pool.post(work, total - 1)
    work()
    pool.wait(finished, 0, 1)
    pool.drop(job)
    if errors:
        raise errors[0]


def shared_loop(name: str, args: tuple, parts: int, *, elements: int,
                alone: bool = False) -> bool:
    """Run compiled loop ``name`` (:func:`jit.call`) on the calling thread and, at once, on
    the pool's idle threads; the loop hands out its ``parts`` pieces itself, through the
    counter ``args[-2]`` (int64 [2]: pieces claimed, pieces finished; zeros on entry; its
    ``args[-1]`` is ``parts``). Returns when every piece has finished: the caller waits only
    for pieces that another thread has started (a thread that comes late finds none left and
    returns). Without a pool, on a pool thread (nested use), or with ``alone``, the caller
    runs every piece. Returns False, having done nothing, where :func:`jit.call` would (the
    caller then computes the result another way).

    The loop takes three arguments after ``args``, given here: the pool's ``sync`` array, the
    thread's role (:data:`ALONE`, :data:`CALLER`, :data:`WORKER`) and, for a pool thread, the
    count of posted work it has seen. The loop announces itself to the idle pool threads once
    its caller has released the GIL, and a pool thread stays in it after its pieces until the
    next loop does (:mod:`pyonnx.backends.cpu.jit.sync_loops`): no thread then waits for the
    GIL that another holds, which costs 20-30 µs a hand-off on the development VM.

    This is how the small, frequent kernels of mobile CNNs use a second core: a piece costs no
    Python call and no GIL, where :func:`parallel_for`'s parts cost a Python call each and a
    part handed to a sleeping thread up to a scheduler slice."""
    pool = _pool
    counter = args[-2]
    if alone or pool is None or share() < 2 or parts < 2:
        return jit.call(name, *args, _NO_SYNC, ALONE, 0, elements=elements)
    fn = jit.loop(name, elements=elements)  # None until jit.call has compiled it
    if fn is None or _spin_waits() is None:
        return jit.call(name, *args, _NO_SYNC, ALONE, 0, elements=elements)
    sync = pool.sync
    if not sync[1]:
        sync[1] = _spins(WORKER_SPIN_S)

    def work(seen: int) -> None:
        try:
            fn(*args, sync, WORKER, seen)
        except Exception:  # noqa: BLE001 - the caller runs the same loop and reports it
            pass

    # posted without a signal: the loop announces itself once this thread runs it
    job = pool.post(work, min(parts, share()) - 1, announce=False)
    ran = jit.call(name, *args, sync, CALLER, 0, elements=elements)  # the caller's share
    pool.drop(job)
    if ran:
        pool.wait(counter, 1, parts)
    else:  # the loop failed here before it claimed a piece: wait for what others claimed
        while counter[1] < min(counter[0], parts):
            time.sleep(0.0001)
    return ran


#: The roles of a thread in a shared loop (:func:`shared_loop`): the only thread running it,
#: the thread that posted it, or a pool thread.
ALONE, CALLER, WORKER = 0, 1, 2
# the sync argument of a loop that runs alone (it reads no element of it)
_NO_SYNC = np.zeros(2, np.int64)


#: The most pieces a shared loop's work is cut into (:func:`shared_loop`): several per thread,
#: so that a thread that starts late or runs slower leaves the rest to the others.
MAX_PIECES = 8


#: How long a pool thread keeps watching for new work after its last (then it sleeps on a
#: condition variable), and how long a caller watches for its work on other threads to finish
#: (then it sleeps until woken). Nodes of a model follow each other within tens of
#: microseconds, so the workers stay awake through a run and between runs that follow each
#: other; onnxruntime's threads, by comparison, spin for tens of milliseconds after each of its
#: runs. (10 ms of a caller's watching measured 3-5% faster than 0.2 ms on mobilenet_v2 and
#: efficientnet_b0 on an idle machine; a pool thread wakes its sleeping callers after each
#: piece of work.) Until session 13 the waits' calibration (:func:`_spin_waits`) returned at
#: its first read and so fell to its floor of 0.05 ns a read: a wait of 1 ms made 20M reads,
#: 5.4-9.4 ms at the 0.27-0.47 ns a read measured since. These say 5 ms, about what the
#: waits have run (and been measured with) since.
WORKER_SPIN_S = 0.005
CALLER_SPIN_S = 0.005


class _Job:
    """Work posted to the pool: ``work(seen)`` is run by at most ``copies`` pool threads (each
    claims one copy), besides the caller; ``seen`` is the count of posted work that the thread
    read before it took the job."""

    def __init__(self, work: Callable[[int], None], copies: int) -> None:
        self.work = work
        self.copies = copies
        self.claim = itertools.count()  # next() on it is atomic under the GIL


class _Pool:
    """``workers`` persistent threads that join the work of :func:`parallel_for` and
    :func:`shared_loop` calls.

    A caller posts its job (a deque of jobs, and the count of posted work ``sync[0]``, bumped
    per job: by the caller, or by a shared loop once it runs) and works on it too. An idle
    worker watches the count with the compiled wait of
    :mod:`pyonnx.backends.cpu.jit.sync_loops` (no GIL held; once a shared loop has run, so that
    the pool itself never imports numba) for ``WORKER_SPIN_S``, then sleeps on a condition
    variable that a poster notifies only while someone sleeps. Where compiled
    loops are unavailable (the plain install), workers and callers sleep at once: a hand-off
    then costs 50-150 µs instead of a few (measured on the 2-core development VM, whose halted
    virtual CPUs wake through the hypervisor), which is why :func:`parallel_for`'s callers use
    large parts.
    """

    def __init__(self, workers: int) -> None:
        self.jobs: collections.deque[_Job] = collections.deque()
        # [0]: the count of posted work, which idle threads watch; [1]: the reads a shared
        # loop's pool thread watches it for (see shared_loop), set once the waits are measured
        self.sync = np.zeros(2, np.int64)
        self.cond = threading.Condition(threading.Lock())
        self.sleepers = 0
        self.stopped = False
        self.threads = [threading.Thread(target=self._work, name=f"pyonnx-intra-op_{i}",
                                         daemon=True) for i in range(workers)]
        for t in self.threads:
            t.start()

    def post(self, work: Callable[[int], None], copies: int, announce: bool = True) -> _Job:
        """Queue ``work(seen)`` for ``copies`` pool threads; without ``announce``, the work
        bumps the count of posted work itself (a shared loop, see :func:`shared_loop`)."""
        job = _Job(work, copies)
        if copies > 0:
            self.jobs.append(job)
            if announce or self.sleepers:  # a sleeping thread looks at the count when woken
                self.sync[0] += 1
            if self.sleepers:
                with self.cond:
                    self.cond.notify_all()
        return job

    def wait(self, counter: np.ndarray, index: int, target: int) -> None:
        """Return once ``counter[index] >= target`` (set by the job's threads)."""
        if counter[index] >= target:
            return
        waits = _spin_waits() if _spin_ns is not None else None
        if waits is not None:
            waits[1](counter, index, target, _spins(CALLER_SPIN_S))
        with self.cond:
            self.sleepers += 1
            while counter[index] < target:
                self.cond.wait(0.001)
            self.sleepers -= 1

    def wake_callers(self) -> None:
        """Wake callers sleeping in :meth:`wait` (they also look again every millisecond)."""
        if self.sleepers:
            with self.cond:
                self.cond.notify_all()

    def drop(self, job: _Job) -> None:
        try:
            self.jobs.remove(job)
        except ValueError:
            pass  # a worker dropped it first, or it was never queued

    def shutdown(self, wait: bool = True) -> None:
        """Stop the workers once they have finished their current work."""
        self.stopped = True
        self.sync[0] += 1
        with self.cond:
            self.cond.notify_all()
        if wait:
            for t in self.threads:
                t.join()

    def _work(self) -> None:
        _local.share = 1  # nested use runs inline (see the module docstring)
        while not self.stopped:
            seen = int(self.sync[0])  # read before looking for work: no post is missed
            try:
                job = self.jobs[0]
            except IndexError:
                self._idle(seen)
                continue
            if next(job.claim) < job.copies:
                job.work(seen)
                self.wake_callers()  # a shared loop's caller may sleep on its last pieces
            else:
                self.drop(job)

    def _idle(self, seen: int) -> None:
        waits = _spin_waits() if _spin_ns is not None else None
        if waits is not None:
            waits[0](self.sync, seen, _spins(WORKER_SPIN_S))
            if self.sync[0] != seen:
                return
        with self.cond:
            self.sleepers += 1
            while self.sync[0] == seen and not self.stopped:
                self.cond.wait()
            self.sleepers -= 1


# Nanoseconds per read of the compiled waits, measured when a shared loop first runs. Until
# then (None) idle workers and waiting callers sleep without spinning, so the pool does not
# import numba (a session whose work is all small, or that runs without compiled loops, never
# pays for it).
_spin_ns: float | None = None
_WAITS = ("sync_loops.spin_while_equal", "sync_loops.spin_until_at_least")
_waits: tuple[Callable[..., None], Callable[..., None]] | None = None


def _spin_waits() -> tuple[Callable[..., None], Callable[..., None]] | None:
    """The compiled waits (:func:`pyonnx.backends.cpu.jit.sync_loops.spin_while_equal` and
    ``spin_until_at_least``), or None where compiled loops are unavailable or off (in a
    ``jit.disabled()`` block too: the pool then behaves as in the plain install, which the
    benchmark's NumPy-only engine measures that way). Once found they are kept (a lookup costs
    microseconds, and every shared loop asks). The pool splits only work far above the loops'
    size rule, hence ``elements=jit.MIN_ELEMENTS``."""
    global _spin_ns, _waits
    if not jit.available():
        return None
    if _waits is not None:
        return _waits
    loops = [jit.loop(name, elements=jit.MIN_ELEMENTS) for name in _WAITS]
    if None in loops:
        probe = np.zeros(2, np.int64)
        if not (jit.call(_WAITS[0], probe, 1, 1, elements=jit.MIN_ELEMENTS)
                and jit.call(_WAITS[1], probe, 1, 1, 1, elements=jit.MIN_ELEMENTS)):
            return None
        loops = [jit.loop(name, elements=jit.MIN_ELEMENTS) for name in _WAITS]
        if None in loops:
            return None
    if _spin_ns is None:
        # every read sees the value it waits on to change (0), so the wait makes all its
        # reads; the fastest of three tries (a try the OS interrupts only measures longer)
        reads = 1 << 20
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            loops[0](np.zeros(1, np.int64), 0, reads)
            best = min(best, time.perf_counter() - t0)
        _spin_ns = max(0.05, best * 1e9 / reads)
    _waits = loops[0], loops[1]
    return _waits


def _spins(seconds: float) -> int:
    """The reads of a compiled wait that take about ``seconds``."""
    return max(1, int(seconds * 1e9 / (_spin_ns or 1.0)))
