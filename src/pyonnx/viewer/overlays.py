"""What the viewer paints over the graph: a profile (time per node) and a cross-engine
comparison (which nodes disagree).

A profile comes from a Chrome trace JSON as pyonnx's and onnxruntime's sessions write it with
``SessionOptions.enable_profiling`` (:func:`profile_from_trace`), or from a run made on demand
(:func:`profile_model`). The comparison is :func:`pyonnx.debug.compare`'s report, reduced to one
verdict per node (:func:`compare_overlay`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pyonnx.errors import InvalidArgument
from pyonnx.ir import Graph, Model, Node

__all__ = ["profile_from_trace", "profile_model", "compare_overlay", "node_ids"]

#: onnxruntime writes three events per node run: fences around the kernel
_FENCES = ("_fence_before", "_fence_after")
_KERNEL = "_kernel_time"


def node_ids(model: Model) -> dict[int, str]:
    """``id(node)`` -> the viewer's node id, for every node of the main graph and its
    subgraphs (the same paths :func:`~pyonnx.viewer.describe.describe_model` gives)."""
    out: dict[int, str] = {}

    def walk(g: Graph, gid: str) -> None:
        for i, n in enumerate(g.nodes):
            nid = f"{gid}/{i}" if gid else str(i)
            out[id(n)] = nid
            for name, a in n.attributes.items():
                if isinstance(a.value, Graph):
                    walk(a.value, f"{nid}/{name}")
                elif isinstance(a.value, list):
                    for k, sub in enumerate(a.value):
                        if isinstance(sub, Graph):
                            walk(sub, f"{nid}/{name}[{k}]")

    walk(model.graph, "")
    return out


def _names(model: Model) -> dict[str, list[tuple[str, Node]]]:
    """Node name -> the nodes of that name (with their viewer ids)."""
    ids = node_ids(model)
    by_name: dict[str, list[tuple[str, Node]]] = defaultdict(list)
    for n in model.graph.all_nodes():
        if n.name:
            by_name[n.name].append((ids[id(n)], n))
    return by_name


def _events(trace: Any, source: str) -> list[dict[str, Any]]:
    if isinstance(trace, dict) and isinstance(trace.get("traceEvents"), list):
        trace = trace["traceEvents"]
    if not isinstance(trace, list):
        raise InvalidArgument(f"profile {source}: a trace is a JSON list of events (or an "
                              f"object with 'traceEvents'), as enable_profiling writes it")
    return [e for e in trace if isinstance(e, dict)]


def profile_from_trace(model: Model, trace: str | os.PathLike[str] | list | dict, *,
                       source: str | None = None) -> dict[str, Any]:
    """The profile overlay from a trace (a path, or the parsed JSON).

    Returns ``{"source", "total_us", "runs", "nodes": {id: {"us", "count"}}, "ops": [{"op",
    "count", "us", "share"}], "unmatched": [{"name", "op", "us"}]}``: the kernel time of each
    node summed over the runs in the trace (``runs`` is the largest number of times one node
    ran), the time per operator type (the table of top operators), and the events whose node
    name is not in the model (nodes fused by an optimized session, unnamed nodes).
    Raises :class:`InvalidArgument` for a file that is not such a trace.
    """
    if isinstance(trace, (str, os.PathLike)):
        source = source or os.fspath(trace)
        try:
            with open(trace, encoding="utf-8") as f:
                trace = json.load(f)
        except json.JSONDecodeError as e:
            raise InvalidArgument(f"profile {source}: not JSON ({e})") from None
    source = source or "trace"
    by_name = _names(model)
    nodes: dict[str, dict[str, float]] = {}
    ops: dict[str, dict[str, float]] = defaultdict(lambda: {"count": 0, "us": 0.0})
    unmatched: dict[str, dict[str, Any]] = {}
    total = 0.0
    for e in _events(trace, source):
        if e.get("cat") != "Node" or e.get("ph", "X") != "X":
            continue
        name = str(e.get("name", ""))
        if name.endswith(_FENCES):
            continue
        name = name[:-len(_KERNEL)] if name.endswith(_KERNEL) else name
        args = e.get("args") if isinstance(e.get("args"), dict) else {}
        try:
            dur = float(e.get("dur", 0.0))
        except (TypeError, ValueError):
            continue
        op = str(args.get("op_name") or args.get("op_type") or "?")
        total += dur
        ops[op]["count"] += 1
        ops[op]["us"] += dur
        matches = by_name.get(name, [])
        if len(matches) >= 1:
            nid = matches[0][0]
            entry = nodes.setdefault(nid, {"us": 0.0, "count": 0})
            entry["us"] += dur
            entry["count"] += 1
        else:
            u = unmatched.setdefault(name, {"name": name, "op": op, "us": 0.0})
            u["us"] += dur
    table = sorted(({"op": op, "count": int(v["count"]), "us": v["us"],
                     "share": v["us"] / total if total else 0.0} for op, v in ops.items()),
                   key=lambda r: -r["us"])
    return {"source": source, "total_us": total,
            "runs": max((int(v["count"]) for v in nodes.values()), default=0),
            "nodes": nodes, "ops": table,
            "unmatched": sorted(unmatched.values(), key=lambda r: -r["us"])[:50]}


def profile_model(model: Model, *, runs: int = 3, feeds: Mapping[str, Any] | None = None,
                  seed: int = 0) -> dict[str, Any]:
    """Run ``model`` with pyonnx's profiler and return its profile overlay.

    Graph optimizations are off for this run, so that every timed node is a node of the graph
    on screen (an optimized session fuses nodes under new names). Unnamed nodes get names for
    the run only. Inputs not in ``feeds`` are random
    (:func:`pyonnx.debug.inputs.random_inputs`); ``runs`` runs are summed.
    """
    from pyonnx.debug.inputs import random_inputs
    from pyonnx.optimizer import copy_model
    from pyonnx.runtime import GraphOptimizationLevel, InferenceSession, SessionOptions

    if runs < 1:
        raise InvalidArgument(f"profile runs must be at least 1, got {runs}")
    run_model = copy_model(model)
    # names for unnamed nodes, unique and mapped back to the nodes of the caller's model
    # (the copy has the caller's structure, so the ids are the same)
    ids = node_ids(run_model)
    for n in run_model.graph.all_nodes():
        if not n.name:
            n.name = f"pyonnx_viewer_node_{ids[id(n)]}"
    feed = random_inputs(run_model, seed=seed, given=feeds)
    folder = tempfile.mkdtemp(prefix="pyonnx_view_profile_")
    try:
        opts = SessionOptions()
        opts.graph_optimization_level = GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(folder, "profile")
        sess = InferenceSession(run_model, opts)
        for _ in range(runs):
            sess.run(None, feed)
        path = sess.end_profiling()
        with open(path, encoding="utf-8") as f:
            trace = json.load(f)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    prof = profile_from_trace(run_model, trace, source=f"pyonnx, {runs} run(s), "
                                                       f"graph optimizations off")
    return prof


def compare_overlay(model: Model, engine: str | Any = "onnxruntime", *,
                    engines: Sequence[Any] | None = None,
                    inputs: Mapping[str, Any] | None = None, seed: int = 0,
                    **tolerances: float) -> dict[str, Any]:
    """Compare pyonnx with ``engine`` (the baseline) through :func:`pyonnx.debug.compare`
    and return the compare overlay.

    ``engines`` replaces the pair (names or :class:`~pyonnx.debug.engines.Engine` objects;
    the baseline is then ``engine`` when given by name, else compare's default). Returns
    ``{"engines": [{"name", "ok", "exposed", "error"}], "baseline", "rtol", "atol",
    "nodes": {id: {"ok", "value", "reason", "max_abs", "max_rel", "bad", "total",
    "engine"}}, "first": id or None, "text": the report as ``pyonnx compare`` prints it}``;
    a node's verdict is its worst output.
    """
    from pyonnx.debug import compare

    pair = list(engines) if engines is not None else ["pyonnx", engine]
    baseline = engine if isinstance(engine, str) else None
    report = compare(model, engines=pair, inputs=inputs, seed=seed, baseline=baseline,
                     **tolerances)
    ids = node_ids(model)
    nodes: dict[str, dict[str, Any]] = {}
    for d in report.diffs:
        nid = ids.get(id(report.order[d.node_index]))
        if nid is None:
            continue
        prev = nodes.get(nid)
        if prev is not None and (not prev["ok"] or d.ok):
            continue  # keep the first disagreeing output of a node
        nodes[nid] = {"ok": d.ok, "value": d.value, "reason": d.reason, "engine": d.engine,
                      "max_abs": _num(d.max_abs), "max_rel": _num(d.max_rel),
                      "bad": d.bad, "total": d.total}
    first = report.first_node
    return {
        "engines": [{"name": e.name, "ok": e.ok, "exposed": e.exposed, "error": e.error}
                    for e in report.engines],
        "baseline": report.baseline, "rtol": report.rtol, "atol": report.atol,
        "nodes": nodes, "first": ids.get(id(first)) if first is not None else None,
        "agree": report.agree, "text": report.format(),
    }


def _num(x: float | None) -> float | None:
    import math

    return x if x is not None and math.isfinite(x) else None
