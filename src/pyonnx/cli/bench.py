"""``pyonnx bench MODEL``: latency, throughput, session creation time and peak memory of pyonnx,
optionally side by side with onnxruntime and onnx.reference in one run.

By default each engine runs in a process of its own (:class:`EngineWorker`: a fresh interpreter
that imports only that engine), and the engines take turns in blocks of back-to-back runs: a
block starts after a pause (longer than any engine's idle spinning) with untimed runs, and the
blocks' order is balanced (:func:`balanced_order`) over a few rounds, so that load drifts hit
every engine alike while no engine's threads spin on the cores the other is timed on. Measured
on the 2-core machine, alternating engines run by run in one process (``--in-process``) timed
their contention instead: onnxruntime 8-13 ms a run of mobilenet_v3_small next to pyonnx,
2.1-2.6 ms alone. onnx.reference, far slower, runs in this process after the others. The
figures are the median and the 90th percentile after warm-up; peak memory is the worker's peak
resident set (``--in-process``: a worker that creates the session and runs it 3 times).
onnxruntime and onnx are imported only when ``--compare`` names them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from pyonnx.cli._benchfeeds import dynamic_batch, make_feeds
from pyonnx.backends.cpu import jit

#: "pyonnx-numpy" is pyonnx with its optional compiled loops turned off (``PYONNX_JIT=0``): the
#: plain install, measured beside the default in the same run when numba is installed.
ENGINES = ("pyonnx", "pyonnx-numpy", "onnxruntime", "reference")
_CONTROL_FLOW = {"If", "Loop", "Scan", "SequenceMap"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="time a model in pyonnx (and onnxruntime / onnx.reference side by side)",
        description="Measure session creation time, latency (median and p90 after warm-up), "
                    "throughput and peak memory; with --compare, the same for other engines "
                    "in the same run (each engine in a process of its own, taking turns in "
                    "blocks of runs), and the ratio pyonnx/other.")
    p.add_argument("model", help="path to an .onnx file")
    p.add_argument("--compare", default="", help="comma-separated engines to compare with: "
                                                  "onnxruntime, reference, pyonnx-numpy "
                                                  "(pyonnx without its compiled loops)")
    p.add_argument("--runs", type=int, default=20, help="timed runs per engine (default 20)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    p.add_argument("--threads", type=int, default=0,
                   help="intra-op threads for every engine (0: each engine's default)")
    p.add_argument("--batch", type=int, default=1, help="batch size for symbolic batch dims")
    p.add_argument("--seq", type=int, default=128, help="size of other symbolic dims")
    p.add_argument("--level", type=int, default=99,
                   help="pyonnx graph_optimization_level (0, 1, 2, 99; default 99)")
    p.add_argument("--profile", action="store_true",
                   help="print the operators that take the most time in pyonnx, and the "
                        "per-node dispatch overhead")
    p.add_argument("--no-memory", action="store_true", help="leave peak memory out")
    p.add_argument("--in-process", action="store_true",
                   help="run every engine in this process, alternating run by run (their "
                        "threads then contend for the cores), instead of each engine in a "
                        "process of its own taking turns in blocks")
    p.add_argument("--rounds", type=int, default=3,
                   help="blocks of runs per engine when each runs in its own process "
                        "(default 3)")
    p.add_argument("--reference-timeout", type=float, default=60.0,
                   help="seconds one onnx.reference run may take before it is dropped")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.set_defaults(func=run)


# ------------------------------------------------------------------ engines

def make_session(engine: str, model: str, threads: int = 0, level: int = 99) -> Any:
    """A session of ``engine`` with an onnxruntime-style ``run`` and ``get_inputs``."""
    if engine in ("pyonnx", "pyonnx-numpy"):
        import pyonnx

        so = pyonnx.SessionOptions()
        so.graph_optimization_level = level
        so.intra_op_num_threads = threads
        sess = pyonnx.InferenceSession(model, so)
        return sess if engine == "pyonnx" else _NumPyOnlySession(sess)
    if engine == "onnxruntime":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.log_severity_level = 3
        return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    if engine == "reference":
        return _ReferenceSession(model)
    raise ValueError(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")


class _NumPyOnlySession:
    """A pyonnx session whose runs take the NumPy path of every kernel (no compiled loops)."""

    def __init__(self, sess: Any) -> None:
        self._sess = sess

    def get_inputs(self) -> list[Any]:
        return self._sess.get_inputs()

    def run(self, names: Any, feeds: dict[str, Any]) -> list[Any]:
        with jit.disabled():
            return self._sess.run(names, feeds)


class _ReferenceSession:
    """onnx.reference.ReferenceEvaluator behind the session surface the benchmark uses."""

    def __init__(self, model: str) -> None:
        import onnx
        from onnx.reference import ReferenceEvaluator

        self._proto = onnx.load(model)
        self._ev = ReferenceEvaluator(self._proto)
        init = {i.name for i in self._proto.graph.initializer}
        self._inputs = [_Arg(i) for i in self._proto.graph.input if i.name not in init]

    def get_inputs(self) -> list[Any]:
        return self._inputs

    def run(self, names: Any, feeds: dict[str, Any]) -> list[Any]:
        import warnings

        import numpy as np

        # its NumPy kernels warn on the overflows random inputs cause (exp in Sigmoid, LSTM)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return self._ev.run(names, feeds)


class _Arg:
    def __init__(self, vi: Any) -> None:
        from onnx import helper

        tt = vi.type.tensor_type
        self.name = vi.name
        self.type = f"tensor({helper.tensor_dtype_to_string(tt.elem_type).split('.')[-1].lower()})"
        self.type = self.type.replace("tensor(float32)", "tensor(float)")
        self.shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                      for d in tt.shape.dim]


class _Timeout(Exception):
    pass


def _with_timeout(fn: Callable[[], Any], seconds: float) -> Any:
    """Run ``fn``; raise _Timeout after ``seconds`` (SIGALRM, main thread only)."""
    if seconds <= 0 or not hasattr(signal, "SIGALRM"):
        return fn()

    def on_alarm(*_: Any) -> None:
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------ measurements

def _stats(times: list[float], batch: int) -> dict[str, float]:
    s = sorted(times)
    med = statistics.median(s)
    p90 = s[min(len(s) - 1, max(0, math.ceil(0.9 * len(s)) - 1))]
    return {"median_ms": med * 1e3, "p90_ms": p90 * 1e3, "runs": len(s),
            "throughput_per_s": batch / med if med > 0 else float("inf")}


def balanced_order(engines: list[str], runs: int) -> list[str]:
    """The engines' timed runs in order: a cycle in which each engine runs right after each
    other engine exactly once (an Eulerian circuit of the complete directed graph on the
    engines, each engine ``len(engines) - 1`` times; the cycle also closes on itself), repeated
    until every engine has at least ``runs`` runs. So with three engines and ``runs=5`` each runs
    6 times; one or two engines simply alternate.

    A plain rotation (``abc bca cab ...``) is not balanced: for three engines it puts ``a``
    right after ``c`` twice as often as right after ``b``.
    """
    n = len(engines)
    if n <= 2:
        return [e for _ in range(runs) for e in engines]
    # Hierholzer's algorithm over the n(n-1) directed edges, each ordered pair once
    left = {i: [j for j in range(n - 1, -1, -1) if j != i] for i in range(n)}
    stack, circuit = [0], []
    while stack:
        i = stack[-1]
        if left[i]:
            stack.append(left[i].pop())
        else:
            circuit.append(stack.pop())
    cycle = circuit[::-1][:-1]  # the circuit returns to its start: drop the repeated end
    rounds = -(-runs // (n - 1))
    return [engines[i] for _ in range(rounds) for i in cycle]


def bench_model(model: str, engines: list[str], *, runs: int = 20, warmup: int = 2,
                threads: int = 0, batch: int = 1, seq: int = 128, level: int = 99,
                memory: bool = True, reference_timeout: float = 60.0,
                profile: bool = False, isolate: bool = True, rounds: int = 3) -> dict[str, Any]:
    """Measure ``model`` in each engine (pyonnx first). Returns a dict: per engine
    ``create_ms``, ``median_ms``, ``p90_ms``, ``throughput_per_s``, ``peak_rss_mb`` (or
    ``error``), plus ``ratio`` (pyonnx / engine latency) and, with ``profile``, the pyonnx
    operator table and dispatch overhead.

    With ``isolate`` (the default) every engine but onnx.reference runs in a worker process of
    its own, in ``rounds`` blocks of runs (:func:`_time_in_workers`); without it, the engines
    alternate run by run in this process."""
    result: dict[str, Any] = {"model": os.path.basename(model), "batch": batch, "seq": seq,
                              "threads": threads, "compiled_loops": jit.describe(),
                              "isolated": isolate, "engines": {}}
    times: dict[str, list[float]] = {}
    if isolate:
        times = _time_in_workers(result, model, [e for e in engines if e != "reference"],
                                 runs=runs, warmup=warmup, threads=threads, batch=batch,
                                 seq=seq, level=level, rounds=rounds)
    in_process = [e for e in engines if e == "reference" or not isolate]
    sessions, feeds = _in_process_sessions(result, model, in_process, warmup=warmup,
                                           threads=threads, batch=batch, seq=seq, level=level,
                                           reference_timeout=reference_timeout)
    times.update({e: [] for e in sessions})
    if not isolate:
        # The fast engines alternate run by run; onnx.reference, tens to thousands of times
        # slower, runs after them: between two runs of the others, its gigabytes of
        # temporaries would leave whichever engine runs next with cold caches (measured: up to
        # +25% on sub-ms models).
        for eng in balanced_order([e for e in sessions if e != "reference"], runs):
            t0 = time.perf_counter()
            sessions[eng].run(None, feeds)
            times[eng].append(time.perf_counter() - t0)
    if "reference" in sessions:
        for _ in range(runs):
            if times["reference"] and sum(times["reference"]) > 5.0:
                break  # a slow reference: one or a few runs are enough for its median
            t0 = time.perf_counter()
            sessions["reference"].run(None, feeds)
            times["reference"].append(time.perf_counter() - t0)
    for eng, ts in times.items():
        if ts:
            result["engines"][eng].update(_stats(ts, batch))
    base = result["engines"].get("pyonnx", {}).get("median_ms")
    result["ratio"] = {e: base / v["median_ms"] for e, v in result["engines"].items()
                       if e != "pyonnx" and base and v.get("median_ms")}
    if profile and base:
        plain = sessions.get("pyonnx") or make_session("pyonnx", model, threads, level)
        if feeds is None:
            feeds = make_feeds(plain.get_inputs(), batch, seq)
        small = base < 5.0
        # sub-5 ms models, where dispatch matters, are cheap: profile many runs of them
        result["profile"] = profile_pyonnx(model, feeds, threads, level,
                                           runs=max(50, runs) if small else max(3, runs // 4),
                                           plain=plain)
    del sessions
    if memory and not isolate:
        for eng in engines:
            if "error" in result["engines"].get(eng, {"error": 1}):
                continue
            result["engines"][eng]["peak_rss_mb"] = peak_memory(eng, model, threads, batch, seq,
                                                                level, runs=3)
    if not memory:
        for v in result["engines"].values():
            v.pop("peak_rss_mb", None)
    pm = result["engines"].get("pyonnx", {}).get("peak_rss_mb")
    om = result["engines"].get("onnxruntime", {}).get("peak_rss_mb")
    if pm and om:
        result["memory_ratio"] = pm / om
    return result


def _in_process_sessions(result: dict[str, Any], model: str, engines: list[str], *, warmup: int,
                         threads: int, batch: int, seq: int, level: int,
                         reference_timeout: float) -> tuple[dict[str, Any], Any]:
    """Sessions of ``engines`` in this process, created and warmed up (an engine that fails, or
    onnx.reference beyond ``reference_timeout``, is reported in ``result`` and left out), and
    the feeds."""
    sessions: dict[str, Any] = {}
    feeds: dict[str, Any] | None = None
    for eng in engines:
        t0 = time.perf_counter()
        try:
            sess = make_session(eng, model, threads, level)
        except Exception as e:  # an engine that cannot load the model is reported, not fatal
            result["engines"][eng] = {"error": f"{type(e).__name__}: {e}"[:300]}
            continue
        result["engines"][eng] = {"create_ms": (time.perf_counter() - t0) * 1e3}
        sessions[eng] = sess
        if feeds is None:
            feeds = make_feeds(sess.get_inputs(), batch, seq)
            result.setdefault("dynamic_batch", dynamic_batch(sess.get_inputs()))
    for eng in list(sessions):
        limit = reference_timeout if eng == "reference" else 0.0
        try:
            for _ in range(warmup if eng != "reference" else 1):
                t0 = time.perf_counter()
                _with_timeout(lambda s=sessions[eng]: s.run(None, feeds), limit)
                result["engines"][eng]["first_run_ms"] = (time.perf_counter() - t0) * 1e3
        except _Timeout:
            result["engines"][eng]["error"] = f"no result within {reference_timeout:g} s"
            del sessions[eng]
        except Exception as e:
            result["engines"][eng]["error"] = f"{type(e).__name__}: {e}"[:300]
            del sessions[eng]
    return sessions, feeds


#: Seconds between two engines' blocks of runs: longer than either engine's idle spinning
#: (onnxruntime's pool spins for well under a millisecond, pyonnx's for about one), so that the
#: next block starts on quiet cores.
BLOCK_PAUSE_S = 0.05
#: Seconds of untimed runs that start each block (at least one run). After the pause both
#: engines' first runs are slow on this VM (its idle virtual cores wake late): gru_tagger with
#: one untimed run and 2 timed runs a block, medians pyonnx 8.3 ms and onnxruntime 2.9 (p90
#: 11.7); with 10 timed runs a block, 3.3 and 2.0.
LEAD_IN_S = 0.1


def _time_in_workers(result: dict[str, Any], model: str, engines: list[str], *, runs: int,
                     warmup: int, threads: int, batch: int, seq: int, level: int,
                     rounds: int) -> dict[str, list[float]]:
    """Time each engine in a worker process of its own (:class:`EngineWorker`). The engines
    take turns in blocks: each of ``rounds`` rounds gives every engine, in a balanced order, a
    pause, untimed runs for :data:`LEAD_IN_S` (they wake the engine's threads and warm the
    caches after the other engine's block) and ``ceil(runs / rounds)`` timed runs back to
    back. Only one engine runs at
    a time (the others wait on their pipe), which is what a user's process sees; the rounds
    spread the machine's load drifts over every engine. Fills ``result`` with each engine's
    creation time, first run and peak memory (the worker's peak resident set); returns the
    timed runs."""
    workers: dict[str, EngineWorker] = {}
    for eng in engines:
        w = EngineWorker(eng, model, threads, batch, seq, level)
        if "error" in w.ready:
            result["engines"][eng] = {"error": w.ready["error"]}
            w.close()
            continue
        result["engines"][eng] = {"create_ms": w.ready["create_ms"]}
        result.setdefault("dynamic_batch", w.ready["dynamic_batch"])
        workers[eng] = w
    times: dict[str, list[float]] = {e: [] for e in workers}
    per_block = -(-runs // max(1, rounds))
    try:
        for eng in list(workers):
            try:
                first = workers[eng].run(max(1, warmup))
            except RuntimeError as e:
                result["engines"][eng]["error"] = str(e)
                workers.pop(eng).close()
                del times[eng]
                continue
            result["engines"][eng]["first_run_ms"] = first[0] * 1e3
        for eng in balanced_order(list(workers), max(1, rounds)):
            if eng not in workers:
                continue
            time.sleep(BLOCK_PAUSE_S)
            try:
                times[eng] += workers[eng].run(per_block, LEAD_IN_S)
            except RuntimeError as e:
                result["engines"][eng]["error"] = str(e)
                workers.pop(eng).close()
                del times[eng]
    finally:
        for eng, w in workers.items():
            peak = w.close()
            if peak is not None:
                result["engines"][eng]["peak_rss_mb"] = peak
    return times


def profile_pyonnx(model: str, feeds: dict[str, Any], threads: int, level: int, runs: int,
                   plain: Any = None) -> dict[str, Any]:
    """Per-operator time of pyonnx over ``runs`` profiled runs (share of kernel time) and,
    given ``plain`` (a pyonnx session of the same model without profiling), the dispatch
    overhead per executed node (:func:`dispatch_us_per_node`)."""
    import pyonnx

    so = pyonnx.SessionOptions()
    so.graph_optimization_level = level
    so.intra_op_num_threads = threads
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.gettempdir(), "pyonnx_bench_profile")
    sess = pyonnx.InferenceSession(model, so)
    sess.run(None, feeds)
    path = sess.end_profiling()
    os.unlink(path)
    for _ in range(runs):
        sess.run(None, feeds)
    path = sess.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.unlink(path)
    per_op: Counter[str] = Counter()
    count: Counter[str] = Counter()
    # a control-flow node's time includes its body's nodes, which have their own events
    events = [e for e in events if e["args"]["op_type"] not in _CONTROL_FLOW]
    for e in events:
        op = e["args"]["op_type"]
        dom = e["args"].get("domain") or ""
        key = f"{dom}::{op}" if dom not in ("", "ai.onnx") else op
        per_op[key] += e["dur"]
        count[key] += 1
    total_us = sum(per_op.values())
    ops = [{"op_type": k, "ms_per_run": v / runs / 1e3, "share": v / total_us if total_us else 0,
            "nodes_per_run": count[k] / runs} for k, v in per_op.most_common()]
    nodes = len(events) / runs
    out: dict[str, Any] = {"ops": ops, "nodes_per_run": nodes,
                           "kernel_ms_per_run": total_us / runs / 1e3}
    if plain is not None:
        out["dispatch_us_per_node"] = dispatch_us_per_node(plain, feeds)
    return out


#: Runs of a session with stand-in kernels that :func:`dispatch_us_per_node` times.
DISPATCH_RUNS = 200


def dispatch_us_per_node(sess: Any, feeds: dict[str, Any], runs: int = DISPATCH_RUNS) -> float:
    """What a run of pyonnx session ``sess`` costs beyond its kernels, per executed node (µs):
    the median time of ``runs`` runs whose kernels are stand-ins that return the outputs of
    a real run (:meth:`pyonnx.runtime.plan.Plan.stand_in_kernels`), over the nodes one run
    executes. It times the feed checks, the run loop (a Python call per node, slot reads,
    stores and frees) and the outputs, in the same session and process as the kernels, with
    nothing else to vary. Until session 13 it was the difference between a plain run's time
    and a profiled run's kernel time, two sessions' runs: their own variance (0.2-0.5 ms a
    run on gru_tagger's 14 nodes) moved that figure between 0 and 46 µs a node."""
    plan = sess._plan
    with plan.stand_in_kernels() as executed:
        sess.run(None, feeds)  # records the kernels' outputs
        before = executed()
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            sess.run(None, feeds)
            times.append(time.perf_counter() - t0)
        nodes = (executed() - before) / runs
    return statistics.median(times) * 1e6 / max(nodes, 1.0)


_WORKER = r"""
import json, os, resource, runpy, sys, time
engine, model, threads, batch, seq, level, feeds_py = sys.argv[1:8]
def rss_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def say(obj):  # the engines may print too: the parent reads only lines marked @@
    sys.stdout.write("@@" + json.dumps(obj) + "\n")
    sys.stdout.flush()
import numpy
if engine == "pyonnx-numpy":
    os.environ["PYONNX_JIT"] = "0"
    engine = "pyonnx"
if engine == "pyonnx":
    import pyonnx
    so = pyonnx.SessionOptions(); so.graph_optimization_level = int(level)
    so.intra_op_num_threads = int(threads)
    make = lambda: pyonnx.InferenceSession(model, so)
elif engine == "onnxruntime":
    import onnxruntime as ort
    so = ort.SessionOptions(); so.intra_op_num_threads = int(threads); so.log_severity_level = 3
    make = lambda: ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
else:
    raise SystemExit("bench worker: unknown engine " + engine)
feeding = runpy.run_path(feeds_py)
try:
    t0 = time.perf_counter()
    sess = make()
    created = (time.perf_counter() - t0) * 1e3
    inputs = sess.get_inputs()
    feeds = feeding["make_feeds"](inputs, int(batch), int(seq))
except Exception as e:
    say({"error": (type(e).__name__ + ": " + str(e))[:300]})
    raise SystemExit(0)
say({"create_ms": created, "dynamic_batch": feeding["dynamic_batch"](inputs)})
for line in sys.stdin:
    command, *args = line.split()
    if command != "run":
        break
    times = []
    try:
        # untimed runs for lead_in seconds first (at least one when lead_in > 0)
        lead_end = time.perf_counter() + float(args[1])
        while float(args[1]) > 0:
            sess.run(None, feeds)
            if time.perf_counter() >= lead_end:
                break
        for _ in range(int(args[0])):
            t0 = time.perf_counter()
            sess.run(None, feeds)
            times.append(time.perf_counter() - t0)
    except Exception as e:
        say({"error": (type(e).__name__ + ": " + str(e))[:300]})
        break
    say({"times": times})
say({"peak_mb": rss_mb("VmHWM:")})
"""


class EngineWorker:
    """One engine in a fresh interpreter that imports only that engine (so its peak memory and
    its threads are its own), driven over a pipe: the worker creates the session and its feeds
    (the same seeded feeds as :func:`make_feeds` here), then :meth:`run` times runs there and
    :meth:`close` ends it and returns its peak resident memory. ``ready`` holds the worker's
    first report: ``create_ms`` and ``dynamic_batch``, or ``error``."""

    def __init__(self, engine: str, model: str, threads: int, batch: int, seq: int,
                 level: int) -> None:
        if engine not in ("pyonnx", "pyonnx-numpy", "onnxruntime"):
            raise ValueError(f"no worker for engine {engine!r}")
        feeds_py = os.path.join(os.path.dirname(__file__), "_benchfeeds.py")
        env = dict(os.environ)
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                   else "")
        self._stderr = tempfile.TemporaryFile("w+")
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER, engine, model, str(threads), str(batch), str(seq),
             str(level), feeds_py],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            env=env)
        self.ready = self._report()

    def _report(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith("@@"):
                return json.loads(line[2:])
        self._stderr.seek(0)
        tail = self._stderr.read().strip()[-300:]
        return {"error": f"worker exited with {self._proc.wait()}: {tail}"}

    def _send(self, line: str) -> bool:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        except OSError:  # the worker has exited; its report says why
            return False
        return True

    def run(self, count: int, lead_in: float = 0.0) -> list[float]:
        """Seconds of each of ``count`` runs back to back, after untimed runs for ``lead_in``
        seconds (at least one when ``lead_in`` > 0); RuntimeError when a run fails."""
        self._send(f"run {count} {lead_in!r}")
        report = self._report()
        if "error" in report:
            raise RuntimeError(report["error"])
        return report["times"]

    def close(self) -> float | None:
        """End the worker; its peak resident memory in MiB (None when it failed)."""
        report = self._report() if self._send("quit") else {}
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()
        return report.get("peak_mb")


def peak_memory(engine: str, model: str, threads: int, batch: int, seq: int, level: int,
                runs: int = 3) -> float | None:
    """Peak resident memory (MiB) of a fresh process that imports only ``engine``, creates a
    session of ``model`` and runs it ``runs`` times; None when the worker fails."""
    if engine == "reference":
        return None
    worker = EngineWorker(engine, model, threads, batch, seq, level)
    if "error" not in worker.ready:
        try:
            worker.run(runs)
        except RuntimeError:
            worker.close()
            return None
    return worker.close()


# ------------------------------------------------------------------ output

def format_result(res: dict[str, Any]) -> str:
    """The table ``pyonnx bench`` prints for one model."""
    lines = [f"{res['model']}  batch {res['batch']}"
             + (f"  seq {res['seq']}" if res.get("seq") else "")
             + (f"  threads {res['threads']}" if res.get("threads") else "")
             + (f"  compiled loops: {res['compiled_loops']}" if res.get("compiled_loops") else "")
             + ("  (engines alternating in one process)" if res.get("isolated") is False
                else "")]
    lines.append(f"  {'engine':12s} {'create ms':>10s} {'median ms':>10s} {'p90 ms':>10s} "
                 f"{'per s':>9s} {'peak MiB':>9s}  pyonnx/engine")
    for eng, v in res["engines"].items():
        if "error" in v and "median_ms" not in v:
            lines.append(f"  {eng:12s} {v['error']}")
            continue
        ratio = res.get("ratio", {}).get(eng)
        mem = v.get("peak_rss_mb")
        lines.append(f"  {eng:12s} {v.get('create_ms', 0):10.1f} {v['median_ms']:10.2f} "
                     f"{v['p90_ms']:10.2f} {v['throughput_per_s']:9.1f} "
                     f"{mem if mem is not None else float('nan'):9.0f}  "
                     + (f"{ratio:.2f}x" if ratio is not None else ""))
    if res.get("memory_ratio"):
        lines.append(f"  peak memory pyonnx/onnxruntime: {res['memory_ratio']:.2f}")
    prof = res.get("profile")
    if prof:
        lines.append(f"  pyonnx profile: {prof['nodes_per_run']:.0f} nodes per run, kernels "
                     f"{prof['kernel_ms_per_run']:.2f} ms per run"
                     + (f", dispatch {prof['dispatch_us_per_node']:.1f} us per node"
                        if "dispatch_us_per_node" in prof else ""))
        for op in prof["ops"][:10]:
            lines.append(f"    {op['op_type']:28s} {op['share'] * 100:5.1f}%  "
                         f"{op['ms_per_run']:8.2f} ms  ({op['nodes_per_run']:.0f} nodes)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    engines = ["pyonnx"] + [e.strip() for e in args.compare.split(",") if e.strip()]
    for e in engines:
        if e not in ENGINES:
            print(f"pyonnx bench: error: unknown engine {e!r} (known: {', '.join(ENGINES)})",
                  file=sys.stderr)
            return 2
    if not os.path.isfile(args.model):
        print(f"pyonnx bench: error: no such model file: {args.model}", file=sys.stderr)
        return 1
    res = bench_model(args.model, engines, runs=max(1, args.runs), warmup=max(0, args.warmup),
                      threads=args.threads, batch=args.batch, seq=args.seq, level=args.level,
                      memory=not args.no_memory, reference_timeout=args.reference_timeout,
                      profile=args.profile, isolate=not args.in_process,
                      rounds=max(1, args.rounds))
    print(format_result(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    err = res["engines"].get("pyonnx", {}).get("error")
    return 1 if err else 0
