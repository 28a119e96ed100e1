"""``pyonnx bench MODEL``: latency, throughput, session creation time and peak memory of pyonnx,
optionally side by side with onnxruntime and onnx.reference in one run.

Latency runs alternate between engines in a balanced order (:func:`balanced_order`: every engine
runs right after every other equally often, since an engine that follows onnxruntime is slowed
while onnxruntime's pool threads still spin), so that the machine's load drifts affect every
engine alike; onnx.reference, far slower, is timed after
the others. The figures are the median and the 90th percentile after warm-up. Peak memory is measured for each engine in its own process (the peak
resident set of a fresh interpreter that imports only that engine, creates the session and runs
it). onnxruntime and onnx are imported only when ``--compare`` names them.
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
                    "in the same run, the runs alternating between engines, and the ratio "
                    "pyonnx/other.")
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
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory workers")
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
                profile: bool = False) -> dict[str, Any]:
    """Measure ``model`` in each engine (pyonnx first). Returns a dict: per engine
    ``create_ms``, ``median_ms``, ``p90_ms``, ``throughput_per_s``, ``peak_rss_mb`` (or
    ``error``), plus ``ratio`` (pyonnx / engine latency) and, with ``profile``, the pyonnx
    operator table and dispatch overhead."""
    result: dict[str, Any] = {"model": os.path.basename(model), "batch": batch, "seq": seq,
                              "threads": threads, "compiled_loops": jit.describe(),
                              "engines": {}}
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
            result["dynamic_batch"] = dynamic_batch(sess.get_inputs())
    if feeds is None:
        return result
    # warm-up (and drop engines that fail or are far too slow)
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
    times: dict[str, list[float]] = {e: [] for e in sessions}
    # The fast engines alternate run by run; onnx.reference, tens to thousands of times slower,
    # runs after them: between two runs of the others, its gigabytes of temporaries would leave
    # whichever engine runs next with cold caches (measured: up to +25% on sub-ms models).
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
        result["engines"][eng].update(_stats(ts, batch))
    base = result["engines"].get("pyonnx", {}).get("median_ms")
    result["ratio"] = {e: base / v["median_ms"] for e, v in result["engines"].items()
                       if e != "pyonnx" and base and v.get("median_ms")}
    if profile and "pyonnx" in sessions:
        small = result["engines"]["pyonnx"]["median_ms"] < 5.0
        # sub-5 ms models, where dispatch matters, are cheap: profile many runs of them
        result["profile"] = profile_pyonnx(model, feeds, threads, level,
                                           runs=max(50, runs) if small else max(3, runs // 4),
                                           plain=sessions["pyonnx"])
    del sessions
    if memory:
        for eng in engines:
            if "error" in result["engines"].get(eng, {"error": 1}):
                continue
            result["engines"][eng]["peak_rss_mb"] = peak_memory(eng, model, threads, batch, seq,
                                                                level, runs=3)
        pm = result["engines"].get("pyonnx", {}).get("peak_rss_mb")
        om = result["engines"].get("onnxruntime", {}).get("peak_rss_mb")
        if pm and om:
            result["memory_ratio"] = pm / om
    return result


def profile_pyonnx(model: str, feeds: dict[str, Any], threads: int, level: int, runs: int,
                   plain: Any = None) -> dict[str, Any]:
    """Per-operator time of pyonnx (share of kernel time) and the dispatch overhead per
    executed node: the median over ``runs`` pairs of a run of ``plain`` (a session without
    profiling) and, right after it, a profiled run of (plain run's wall time - the profiled
    run's kernel time) / executed nodes."""
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
    walls = []
    for _ in range(runs):
        if plain is not None:
            t0 = time.perf_counter()
            plain.run(None, feeds)
            walls.append(time.perf_counter() - t0)
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
    if walls and events and len(events) % runs == 0:
        # What a run costs beyond its kernels (feed checks, the plan loop, control-flow
        # plumbing), per executed node. The plain run pays no profiling (the profiler's clock
        # reads and records would count as dispatch); its kernel time is that of the profiled
        # run right after it (each run executes the same nodes: its events are the next
        # len/runs of the list), so load drifts hit both halves of a pair alike.
        per_run = len(events) // runs
        gaps = [(walls[i] * 1e6 - sum(e["dur"] for e in events[i * per_run:(i + 1) * per_run]))
                / per_run for i in range(runs)]
        out["dispatch_us_per_node"] = max(0.0, statistics.median(gaps))
    return out


_WORKER = r"""
import json, os, resource, runpy, sys, time
engine, model, threads, batch, seq, level, runs, feeds_py = sys.argv[1:9]
def rss_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
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
    raise SystemExit("memory worker: unknown engine " + engine)
base = rss_mb("VmRSS:")
sess = make()
feeds = runpy.run_path(feeds_py)["make_feeds"](sess.get_inputs(), int(batch), int(seq))
for _ in range(int(runs)):
    sess.run(None, feeds)
print(json.dumps({"peak_mb": rss_mb("VmHWM:"), "base_mb": base}))
"""


def peak_memory(engine: str, model: str, threads: int, batch: int, seq: int, level: int,
                runs: int = 3) -> float | None:
    """Peak resident memory (MiB) of a fresh process that imports only ``engine``, creates a
    session of ``model`` and runs it ``runs`` times; None when the worker fails."""
    if engine == "reference":
        return None
    feeds_py = os.path.join(os.path.dirname(__file__), "_benchfeeds.py")
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        out = subprocess.run([sys.executable, "-c", _WORKER, engine, model, str(threads),
                              str(batch), str(seq), str(level), str(runs), feeds_py],
                             capture_output=True, text=True, env=env, timeout=1800)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        return None
    try:
        return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"])
    except (ValueError, IndexError, KeyError):
        return None


# ------------------------------------------------------------------ output

def format_result(res: dict[str, Any]) -> str:
    """The table ``pyonnx bench`` prints for one model."""
    lines = [f"{res['model']}  batch {res['batch']}"
             + (f"  seq {res['seq']}" if res.get("seq") else "")
             + (f"  threads {res['threads']}" if res.get("threads") else "")
             + (f"  compiled loops: {res['compiled_loops']}" if res.get("compiled_loops") else "")]
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
                      profile=args.profile)
    print(format_result(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    err = res["engines"].get("pyonnx", {}).get("error")
    return 1 if err else 0
