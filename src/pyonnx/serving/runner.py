"""Runs one model version's requests: a bounded queue, worker threads, dynamic batching.

A :class:`ModelRunner` owns the model's :class:`~pyonnx.InferenceSession` (one session serves
every worker: pyonnx sessions may run from several threads at once) and ``instance_count``
worker threads, the model's concurrency. Requests wait in a queue of at most ``max_queue_size``;
one that finds it full is refused at once (:class:`Unavailable`).

With dynamic batching on, a worker that takes a request keeps collecting queued requests whose
inputs agree on every dimension but the first (the batch dimension) until the batch holds
``max_batch_size`` rows, reaches a preferred batch size, or the first request has waited
``max_queue_delay_us``; it runs them as one batch (inputs concatenated along dimension 0) and
splits the outputs along dimension 0 again. A request served alone runs exactly as an in-process
``session.run`` of its inputs would.
"""

from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from pyonnx.errors import InvalidArgument, PyOnnxError
from pyonnx.serving.config import ModelSettings
from pyonnx.serving.errors import BadRequest, InferenceFailed, RequestTimeout, Unavailable


@dataclass
class _Duration:
    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += ns

    def as_dict(self) -> dict:
        return {"count": self.count, "ns": self.ns}


@dataclass
class ModelStats:
    """Triton's per-model statistics (what ``/v2/models/{m}/stats`` reports)."""

    success: _Duration = field(default_factory=_Duration)
    fail: _Duration = field(default_factory=_Duration)
    queue: _Duration = field(default_factory=_Duration)
    compute_input: _Duration = field(default_factory=_Duration)
    compute_infer: _Duration = field(default_factory=_Duration)
    compute_output: _Duration = field(default_factory=_Duration)
    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0
    # batch size -> [compute_input, compute_infer, compute_output]
    batches: dict[int, list[_Duration]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record_failure(self, ns: int) -> None:
        with self.lock:
            self.fail.add(ns)

    def as_dict(self, name: str, version: str) -> dict:
        with self.lock:
            return {
                "name": name, "version": version,
                "last_inference": self.last_inference_ms,
                "inference_count": self.inference_count,
                "execution_count": self.execution_count,
                "inference_stats": {
                    k: getattr(self, k).as_dict() for k in
                    ("success", "fail", "queue", "compute_input", "compute_infer",
                     "compute_output")} | {"cache_hit": {"count": 0, "ns": 0},
                                           "cache_miss": {"count": 0, "ns": 0}},
                "batch_stats": [
                    {"batch_size": bs, "compute_input": d[0].as_dict(),
                     "compute_infer": d[1].as_dict(), "compute_output": d[2].as_dict()}
                    for bs, d in sorted(self.batches.items())],
            }


@dataclass(eq=False)
class _Pending:
    """One queued request."""

    feeds: dict[str, np.ndarray]
    rows: int                        # rows along the batch dimension (1 when not batching)
    key: tuple                       # requests with equal keys may share a batch
    future: Future
    enqueued_ns: int
    deadline: float                  # time.monotonic() after which it is dropped


class ModelRunner:
    """The queue and workers of one model version; see the module docstring."""

    def __init__(self, session, settings: ModelSettings, metrics=None) -> None:
        self.session = session
        self.settings = settings
        self.stats = ModelStats()
        self.metrics = metrics
        self._queue: collections.deque[_Pending] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._flush = False   # set when draining: batches stop waiting for more requests
        self._waiting = 0     # accepted and not yet running (queued, or in a forming batch)
        self._labels = (settings.name, settings.version)
        self._workers = [threading.Thread(target=self._work, daemon=True,
                                          name=f"pyonnx-serve-{settings.name}-{i}")
                         for i in range(max(1, settings.instance_count))]
        for w in self._workers:
            w.start()

    # ------------------------------------------------------------------ submitting
    def submit(self, feeds: dict[str, np.ndarray], timeout_s: float | None = None) -> Future:
        """Queue a request (inputs already validated); its future gives every output by name.

        Raises Unavailable at once if the queue is full or the runner is stopping.
        """
        st = self.settings
        rows = 1
        key: tuple = ()
        if st.dynamic_batching:
            rows = next(iter(feeds.values())).shape[0] if feeds else 1
            key = tuple(sorted((n, a.shape[1:], a.dtype.str) for n, a in feeds.items()))
        timeout = st.request_timeout_s if timeout_s is None else min(timeout_s, st.request_timeout_s)
        item = _Pending(feeds, rows, key, Future(), time.monotonic_ns(),
                        time.monotonic() + timeout)
        with self._cond:
            if self._stopping:
                raise Unavailable(f"model {st.name!r} is shutting down; request refused")
            if len(self._queue) >= st.max_queue_size:
                raise Unavailable(f"model {st.name!r}: the request queue is full "
                                  f"({st.max_queue_size} waiting); retry later")
            self._queue.append(item)
            self._waiting += 1
            self._set_depth()
            # a batching worker may be waiting for more rows: wake every waiter, not just one
            if st.dynamic_batching:
                self._cond.notify_all()
            else:
                self._cond.notify()
        return item.future

    def _set_depth(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.labels(*self._labels).set(self._waiting)

    # ------------------------------------------------------------------ workers
    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[_Pending] | None:
        """The next batch to run (one request unless batching); None when stopped and empty."""
        st = self.settings
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._cond.wait()
            first = self._queue.popleft()
            batch = [first]
            if st.dynamic_batching and first.rows < st.max_batch_size:
                rows = first.rows
                deadline = first.enqueued_ns / 1e9 + st.max_queue_delay_us / 1e6
                while rows < st.max_batch_size and rows not in st.preferred_batch_sizes:
                    for item in list(self._queue):
                        if item.key == first.key and rows + item.rows <= st.max_batch_size:
                            self._queue.remove(item)
                            batch.append(item)
                            rows += item.rows
                            if rows >= st.max_batch_size or rows in st.preferred_batch_sizes:
                                break
                    remaining = deadline - time.monotonic_ns() / 1e9
                    if (rows >= st.max_batch_size or rows in st.preferred_batch_sizes
                            or remaining <= 0 or self._stopping or self._flush):
                        break
                    self._cond.wait(remaining)
            self._waiting -= len(batch)
            self._set_depth()
        return batch

    def _run(self, batch: list[_Pending]) -> None:
        now = time.monotonic()
        live = []
        for item in batch:
            if not item.future.set_running_or_notify_cancel():
                continue  # the client gave up (timed out) while it waited
            if now > item.deadline:
                item.future.set_exception(RequestTimeout(
                    f"model {self.settings.name!r}: the request waited in the queue past its "
                    f"timeout of {self.settings.request_timeout_s:g} s"))
                self.stats.record_failure(time.monotonic_ns() - item.enqueued_ns)
                continue
            live.append(item)
        if not live:
            return
        start = time.monotonic_ns()
        for item in live:
            q = start - item.enqueued_ns
            with self.stats.lock:
                self.stats.queue.add(q)
            if self.metrics is not None:
                self.metrics.queue_seconds.labels(*self._labels).observe(q / 1e9)
        try:
            if len(live) == 1:
                feeds = live[0].feeds
            else:
                feeds = {n: np.concatenate([it.feeds[n] for it in live], axis=0)
                         for n in live[0].feeds}
            t_in = time.monotonic_ns()
            results = self.session.run(None, feeds)
            t_run = time.monotonic_ns()
            names = [o.name for o in self.settings.outputs]
            if len(live) == 1:
                per_item = [dict(zip(names, results))]
            else:
                per_item = self._split(live, names, results)
            t_out = time.monotonic_ns()
        except BaseException as e:  # every waiting client must hear about it
            if isinstance(e, InvalidArgument):
                err: Exception = BadRequest(f"model {self.settings.name!r}: {e}")
            elif isinstance(e, PyOnnxError):
                err = InferenceFailed(f"model {self.settings.name!r} failed: {e}")
            else:
                err = InferenceFailed(f"model {self.settings.name!r} failed: "
                                      f"{type(e).__name__}: {e}")
            end = time.monotonic_ns()
            for item in live:
                self.stats.record_failure(end - item.enqueued_ns)
                item.future.set_exception(err)
            if not isinstance(e, Exception):
                raise
            return
        rows = sum(it.rows for it in live) if self.settings.dynamic_batching else len(live)
        with self.stats.lock:
            s = self.stats
            s.compute_input.add(t_in - start, len(live))
            s.compute_infer.add(t_run - t_in, len(live))
            s.compute_output.add(t_out - t_run, len(live))
            s.inference_count += rows
            s.execution_count += 1
            s.last_inference_ms = int(time.time() * 1000)
            b = s.batches.setdefault(rows, [_Duration(), _Duration(), _Duration()])
            b[0].add(t_in - start)
            b[1].add(t_run - t_in)
            b[2].add(t_out - t_run)
            for item in live:
                s.success.add(t_out - item.enqueued_ns)
        if self.metrics is not None:
            self.metrics.compute_seconds.labels(*self._labels).observe((t_out - start) / 1e9)
            self.metrics.batch_size.labels(*self._labels).observe(rows)
        for item, out in zip(live, per_item):
            item.future.set_result(out)

    def _split(self, live: list[_Pending], names: list[str], results: list) -> list[dict]:
        total = sum(it.rows for it in live)
        bounds = np.cumsum([0] + [it.rows for it in live])
        per_item: list[dict] = [{} for _ in live]
        for name, r in zip(names, results):
            if not isinstance(r, np.ndarray) or r.ndim == 0 or r.shape[0] != total:
                raise InferenceFailed(
                    f"model {self.settings.name!r}: output {name!r} of a batch of {total} rows "
                    f"has shape {getattr(r, 'shape', None)}, not {total} rows along dimension 0; "
                    f"this model cannot be batched (set max_batch_size: 0 in its config.pbtxt)")
            for i in range(len(live)):
                per_item[i][name] = r[bounds[i]:bounds[i + 1]]
        return per_item

    # ------------------------------------------------------------------ lifecycle
    def pending(self) -> int:
        """Requests accepted and not yet running (queued, or held by a batch still filling)."""
        with self._cond:
            return self._waiting

    def flush(self) -> None:
        """Run what is queued without waiting for batches to fill (the server is draining)."""
        with self._cond:
            self._flush = True
            self._cond.notify_all()

    def stop(self, timeout: float | None = None) -> None:
        """Refuse new requests, finish every queued and running one, stop the workers."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for w in self._workers:
            w.join(timeout)
