"""``ExecutionMode.ORT_PARALLEL``: a plan's steps run as a dependency graph on inter-op threads.

In the default mode (``ORT_SEQUENTIAL``) a plan runs its steps one after another in topological
order (``Plan._run``). In ``ORT_PARALLEL`` mode the session's main plan hands its steps to a
:class:`ParallelExecutor` instead: a step starts as soon as the steps that compute its inputs
(and the outer values its subgraphs read) have finished, so independent branches of a graph
(inception modules, attention heads, detection heads) overlap. NumPy releases the GIL inside
its array loops and BLAS calls, so two branches really compute at once on two cores; nodes
whose cost is Python dispatch gain nothing, and a plain chain runs as in sequential mode plus
the bookkeeping below (a few microseconds a node).

How a run goes. The executor compiles, once per step list (the plan's, and the shorter one of
its semi-constant cache), each step's count of predecessor steps, its successors, and how many
steps read each slot. A run keeps a stack of *ready* steps (all predecessors done) and these
counters. The calling thread runs ready steps; when a finished step makes more than one step
ready, it keeps one for itself (no hand-off on a chain) and offers the others to a helper
thread of the session's :class:`InterOpPool` while fewer than ``inter_op_num_threads`` threads
work on the run (the caller counts as one). A caller with nothing ready waits, and is woken
when a step becomes ready that no thread took, so the caller alone can always finish the run:
helpers that another run keeps busy only delay it.

Values are freed by reference counts: a slot dies when the last step reading it has finished
(and an output nobody reads right after the step that made it), which frees the same values
as the sequential loop's last-use frees, in completion order instead of step order. Graph
outputs and constants are never freed. Copy steps between providers (``MemcpyFromHost`` /
``MemcpyToHost``) are steps like any other, ordered by the slots they read and write.

Errors. The first step that fails stops the run: nothing more is started, the steps already
running finish (so no thread still writes into the frame), and the caller raises that error,
built exactly as the sequential loop builds it (same type and message, naming the node).
``RunOptions.terminate``, the deadline, profiling (each event carries its thread's id) and
``max_run_bytes`` go through the same hook as in sequential mode; the byte accounting follows
the reference-count frees.

Threads. Each inter-op thread (and the caller, while it runs steps) may split a kernel's work
over ``budget // inter_op_num_threads`` intra-op threads (:func:`pyonnx.backends.cpu.threads.
set_share`), so that inter-op x intra-op threads stay within the process's thread budget. Subgraph
bodies (If/Loop/Scan) and model-local function bodies run sequentially inside their node.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyonnx.backends.cpu import threads
from pyonnx.ops._common import quiet_float_errors
from pyonnx.runtime.plan import _NONE_SLOT, _nbytes

if TYPE_CHECKING:
    from pyonnx.runtime.plan import Plan, _RunState

__all__ = ["InterOpPool", "ParallelExecutor", "inter_op_threads"]


def inter_op_threads(requested: int) -> int:
    """The inter-op threads of a session that asks for ``requested``: 0 means one per core, as
    in onnxruntime; an explicit count is honoured as given, as onnxruntime honours it (above the
    cores, each thread's intra-op share is 1 and the threads time-slice)."""
    return threads.cores() if requested <= 0 else int(requested)


class InterOpPool:
    """Up to ``size`` persistent daemon threads that run the tasks given to :meth:`submit`, in
    order.

    The threads start with the first tasks and wait on one queue; they hold no reference to
    the session, whose finalizer calls :meth:`shutdown`.
    """

    def __init__(self, size: int, name: str = "pyonnx-inter-op") -> None:
        self.size = max(0, size)
        self._name = name
        self._queue: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, task: Callable[[], Any]) -> None:
        """Queue ``task``; until the pool has ``size`` threads, each task starts one more (so
        a task never waits for a busy thread while the pool could still grow)."""
        if len(self.threads) < self.size:
            with self._lock:
                if len(self.threads) < self.size and not self._closed:
                    t = threading.Thread(target=_serve, args=(self._queue,), daemon=True,
                                         name=f"{self._name}-{len(self.threads)}")
                    t.start()
                    self.threads.append(t)
        self._queue.put(task)

    def shutdown(self) -> None:
        """Let the threads end once the queued tasks are done."""
        with self._lock:
            self._closed = True
            for _ in self.threads:
                self._queue.put(None)


def _serve(tasks: queue.SimpleQueue) -> None:
    """An inter-op thread: run tasks until told to stop (None). Its nodes run as the caller's
    do, with floating-point exceptions silent (see :func:`quiet_float_errors`)."""
    with quiet_float_errors():
        while True:
            task = tasks.get()
            if task is None:
                return
            task()
            del task  # drop the run it referenced while waiting for the next


class _Graph:
    """The dependency structure of one list of steps.

    ``deps[i]``: how many distinct steps compute the inputs of step i (its predecessors);
    ``succ[i]``: the steps that have i as a predecessor; ``reads[i]``: the slots step i reads
    (inputs and the outer values its subgraphs capture) that may be freed; ``dead[i]``: the
    outputs of step i that no step reads and that may be freed at once; ``refs``: per slot, how
    many steps read it; ``roots``: the steps ready at the start; ``computed``: the slots the
    steps write (the byte accounting counts only those); ``special``: whether a step runs a
    subgraph or function body (which counts body executions in the run state).
    """

    __slots__ = ("deps", "succ", "reads", "dead", "refs", "roots", "computed", "special")

    def __init__(self, calls: list[tuple[Any, ...]], keep: set[int], frame_size: int) -> None:
        producer: dict[int, int] = {}
        for i, c in enumerate(calls):
            for s in c[3]:
                producer[s] = i
        n = len(calls)
        self.deps = [0] * n
        self.succ: list[list[int]] = [[] for _ in range(n)]
        self.refs = [0] * frame_size
        reads_all: list[set[int]] = []
        for i, c in enumerate(calls):
            st = c[-1]
            reads = set(c[1])
            for _, p in st.graph_attrs:
                reads.update(outer for outer, _own in p.captures)
            for _, ps in st.graphs_attrs:
                for p in ps:
                    reads.update(outer for outer, _own in p.captures)
            reads_all.append(reads)
            preds = {producer[s] for s in reads if s in producer}
            self.deps[i] = len(preds)
            for p in preds:
                self.succ[p].append(i)
            for s in reads:
                self.refs[s] += 1
        self.reads = [tuple(s for s in r if s not in keep) for r in reads_all]
        self.dead = [tuple(s for s in c[3] if self.refs[s] == 0 and s not in keep)
                     for c in calls]
        # the stack is popped from the end: reversed, the first steps in graph order run first
        self.roots = [i for i in range(n - 1, -1, -1) if self.deps[i] == 0]
        self.computed = {s for c in calls for s in c[3]}
        self.special = any(c[5] for c in calls)


class _Run:
    """One execution of a step list: the frame, the counters, and who works on it.

    Every field below the frame is read and written under ``lock``. ``pending``: steps ready or
    running; ``helpers``: helper tasks working on the run or still queued in the pool (at most
    ``limit - 1``: with the caller, at most ``limit`` threads run its steps); ``waiting``: the
    caller sleeps on ``wake``.
    """

    __slots__ = ("plan", "calls", "vals", "state", "graph", "limit", "share", "lock", "wake",
                 "left", "refs", "ready", "pending", "helpers", "waiting", "error", "count")

    def __init__(self, plan: "Plan", calls: list[tuple[Any, ...]], vals: list[Any],
                 state: "_RunState", graph: _Graph, limit: int, share: int) -> None:
        self.plan = plan
        self.calls = calls
        self.vals = vals
        self.state = state
        self.graph = graph
        self.limit = limit
        self.share = share
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.left = list(graph.deps)
        self.refs = list(graph.refs)
        self.ready = list(graph.roots)
        self.pending = len(self.ready)
        self.helpers = 0
        self.waiting = False
        self.error: BaseException | None = None
        self.count = bool(state.max_run_bytes)


class ParallelExecutor:
    """Runs a plan's steps as a dependency graph on ``inter_op_threads`` threads: the calling
    thread and up to ``inter_op_threads - 1`` helpers from a pool of that many threads (see the
    module docstring). Safe to use from several threads at once: each run has its own
    :class:`_Run`, and the compiled graphs are read only."""

    def __init__(self, inter_op_threads: int) -> None:
        self.threads = max(1, inter_op_threads)
        self.pool = InterOpPool(self.threads - 1)
        self._graphs: dict[bool, _Graph] = {}

    def close_with(self, owner: object) -> None:
        """Shut the pool down when ``owner`` (the session) is garbage-collected."""
        weakref.finalize(owner, self.pool.shutdown)

    def _graph(self, plan: "Plan", calls: list[tuple[Any, ...]], cached: bool) -> _Graph:
        g = self._graphs.get(cached)
        if g is None:
            # two runs may build it at once: they build the same thing, and one is kept
            keep = set(plan.output_slots) | set(plan.constants) | {_NONE_SLOT}
            g = self._graphs[cached] = _Graph(calls, keep, plan._frame_size)
        return g

    def run(self, plan: "Plan", vals: list[Any], state: "_RunState",
            calls: list[tuple[Any, ...]], cached: bool) -> None:
        """Execute ``calls`` (the plan's steps, or its cached variant's) on the frame ``vals``;
        return when every step has finished, or raise the first step's error."""
        graph = self._graph(plan, calls, cached)
        if not calls:
            return
        if state.has_hook:
            calls = state.hooked(calls, vals, count=False)  # the accounting is done here
        if state.lock is None and (state.max_run_bytes or graph.special):
            state.lock = threading.Lock()  # counters that several threads may update
        run = _Run(plan, calls, vals, state, graph, self.threads,
                   max(1, threads.budget() // self.threads))
        previous = threads.set_share(run.share)
        try:
            self._caller(run)
        finally:
            threads.set_share(previous)
        if run.error is not None:
            raise run.error

    # ------------------------------------------------------------------ scheduling

    def _caller(self, run: _Run) -> None:
        """The calling thread: run ready steps, sleep while none is ready, return at the end.
        The caller takes every ready step it finds (it needs no helper to finish the run)."""
        lock = run.lock
        with lock:
            i = self._take(run)
        while True:
            self._work(run, i, helper=False)
            with lock:
                while not run.ready and run.pending:
                    run.waiting = True
                    run.wake.wait()
                run.waiting = False
                if not run.pending:
                    return
                i = self._take(run)

    def _help(self, run: _Run) -> None:
        """A helper's task: work on the run while steps are ready."""
        threads.set_share(run.share)
        with run.lock:
            if not run.ready:
                run.helpers -= 1
                return
            i = self._take(run)
        self._work(run, i, helper=True)

    def _take(self, run: _Run) -> int:
        """(Under the lock.) Pop a ready step for the current thread and offer the rest to
        the caller, if it waits, and to helpers while the run has fewer than ``limit - 1``."""
        i = run.ready.pop()
        extra = len(run.ready)
        if extra and run.waiting:
            run.waiting = False
            run.wake.notify()
            extra -= 1
        while extra > 0 and run.helpers < run.limit - 1:
            run.helpers += 1
            extra -= 1
            self.pool.submit(lambda: self._help(run))
        return i

    def _work(self, run: _Run, i: int, helper: bool) -> None:
        """Run step ``i``, then each next step that is ready, until none is (a helper then
        leaves the run)."""
        lock = run.lock
        while True:
            error = self._execute(run, i)
            with lock:
                self._finish(run, i, error)
                if not run.ready or run.error is not None:
                    if helper:
                        run.helpers -= 1
                    if not run.pending and run.waiting:
                        run.waiting = False
                        run.wake.notify()
                    return
                i = self._take(run)

    def _finish(self, run: _Run, i: int, error: BaseException | None) -> None:
        """(Under the lock.) Step ``i`` finished: free what is dead, release its successors,
        or stop the run at the first error."""
        run.pending -= 1
        if error is None and run.error is None and run.count:
            error = self._account(run, i)
        if error is not None:
            if run.error is None:
                run.error = error
                run.pending -= len(run.ready)  # never started
                run.ready.clear()
            return
        if run.error is not None:
            return  # stopping: start nothing more
        vals, refs, g = run.vals, run.refs, run.graph
        for s in g.reads[i]:
            refs[s] -= 1
            if refs[s] == 0:
                vals[s] = None
        for s in g.dead[i]:
            vals[s] = None
        left = run.left
        for j in g.succ[i]:
            left[j] -= 1
            if left[j] == 0:
                run.ready.append(j)
                run.pending += 1

    @staticmethod
    def _account(run: _Run, i: int) -> BaseException | None:
        """(Under the lock, before the frees.) max_run_bytes: count step i's outputs and release
        the computed values that die with it; the limit's error, named as in sequential mode."""
        g, vals, refs = run.graph, run.vals, run.refs
        st = run.calls[i][-1]
        made = sum(_nbytes(vals[s]) for s in st.outs)
        freed = sum(_nbytes(vals[s]) for s in g.reads[i]
                    if refs[s] == 1 and s in g.computed and vals[s] is not None)
        freed += sum(_nbytes(vals[s]) for s in g.dead[i])
        try:
            run.state.account(st, made, freed)
        except Exception as e:  # noqa: BLE001 - the run's error, raised by the caller
            return e
        return None

    @staticmethod
    def _execute(run: _Run, i: int) -> BaseException | None:
        """Run step ``i`` as the sequential loop does (the same calls, the same errors) and
        store its outputs; return its error instead of raising it."""
        vals, plan = run.vals, run.plan
        fn, ins, kwargs, outs, _frees, special, arity, st = run.calls[i]
        try:
            try:
                if special:
                    kwargs = plan._bind(st, vals, run.state)
                if arity == 1:
                    res = fn(vals[ins[0]], **kwargs)
                elif arity == 2:
                    res = fn(vals[ins[0]], vals[ins[1]], **kwargs)
                else:
                    res = fn(*[vals[k] for k in ins], **kwargs)
            except Exception as e:
                err = plan._failure(st, [vals[k] for k in ins], e)
                if err is e:
                    raise
                raise err from e
            if len(res) < len(outs):
                raise plan._short(st, res)
            for s, r in zip(outs, res):
                vals[s] = r
        except BaseException as e:  # noqa: BLE001 - re-raised by the run's caller
            return e
        return None
