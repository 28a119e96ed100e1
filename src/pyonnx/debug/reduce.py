"""Reduce a disagreement between engines to the smallest sub-model that still shows it.

Start from the first disagreeing node alone: its inputs become graph inputs fed with the
baseline engine's values (initializers stay initializers, and values a subgraph of the node
reads from outside are inputs too), its disagreeing outputs the graph outputs. If that node
alone agrees (the difference needed its inputs' own small differences to grow), the producers of
its inputs join, level by level, until the sub-model disagrees; then every node but the first
disagreeing one is dropped again where the rest still disagrees. The result runs on the engines
that disagreed and is written with its inputs, ready for ``pyonnx compare OUT --inputs
OUT.inputs.npz`` (or a bug report).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pyonnx.debug._graph import node_inputs, topological_order
from pyonnx.debug.compare import Report, compare
from pyonnx.debug.engines import Engine, resolve_engines
from pyonnx.errors import InvalidArgument
from pyonnx.ir import DataType, Model, SequenceType, TensorType, Value

__all__ = ["Reduction", "reduce", "extract"]


@dataclasses.dataclass
class Reduction:
    """The reduced model, the feed that reproduces the disagreement, and the comparison of
    the reduced model on that feed (``report``); ``nodes`` is its node count. ``path`` and
    ``inputs_path`` are set when written."""

    model: Model
    inputs: dict[str, Any]
    report: Report
    nodes: int
    path: str | None = None
    inputs_path: str | None = None


def _type_of(value: Any, declared: Any) -> Any:
    """The type a graph input fed with ``value`` declares (exact shape from the value)."""
    if isinstance(value, np.ndarray) or np.isscalar(value):
        arr = np.asarray(value)
        return TensorType(DataType.from_numpy(arr.dtype), tuple(int(d) for d in arr.shape))
    if isinstance(value, list) and value and all(isinstance(x, np.ndarray) for x in value):
        return SequenceType(TensorType(DataType.from_numpy(value[0].dtype), None))
    return declared


def _output_type(v: Value, value: Any) -> Any:
    """A graph output's type: element type and rank (of the baseline's value), dims unknown:
    the rank the checker requires of a main graph's outputs, no dims an engine that gets them
    wrong could be refused for."""
    if isinstance(value, np.ndarray):
        return TensorType(DataType.from_numpy(value.dtype), (None,) * value.ndim)
    return v.type


def extract(model: Model, keep: Sequence[int], outputs: Sequence[str],
            values: Mapping[str, Any]) -> tuple[Model, dict[str, Any]] | None:
    """The sub-model of the main-graph nodes at positions ``keep`` (of the model's
    topological order) with graph outputs ``outputs``, and its feed.

    Every value the kept nodes read that no kept node produces becomes a graph input fed from
    ``values`` (graph inputs of the model included), except initializers, which stay. Returns
    None when such a value is missing from ``values``.
    """
    from pyonnx.optimizer import copy_model

    m = copy_model(model)
    g = m.graph
    order = topological_order(g)
    kept = [order[i] for i in sorted(set(keep))]
    kept_ids = {id(n) for n in kept}
    produced = {id(v) for n in kept for v in n.outputs}
    boundary: dict[str, Value] = {}
    used_inits: set[str] = set()
    for n in kept:
        for v in node_inputs(n):
            if id(v) in produced:
                continue
            if v.name in g.initializers and g.initializers[v.name] is v:
                used_inits.add(v.name)
            elif v.name in g.sparse_initializers and g.sparse_initializers[v.name] is v:
                used_inits.add(v.name)
            else:
                boundary.setdefault(v.name, v)
    feeds: dict[str, Any] = {}
    new_inputs: list[Value] = []
    for name, v in boundary.items():
        if name not in values:
            return None
        feeds[name] = values[name]
        nv = Value(name, _type_of(values[name], v.type))
        # every reader of v among the kept nodes (and in their subgraphs) reads the input now
        for user, index in list(v.uses):
            if _inside(user, kept_ids):
                user.set_input(index, nv)
        new_inputs.append(nv)
    g.remove_many(n for n in g.nodes if id(n) not in kept_ids)
    by_name = {v.name: v for n in kept for v in n.outputs if v.name}
    missing = [o for o in outputs if o not in by_name]
    if missing:
        raise InvalidArgument(f"outputs {missing} are not produced by the kept nodes")
    for o in outputs:
        by_name[o].type = _output_type(by_name[o], values.get(o))
    g.inputs = new_inputs
    g.outputs = [by_name[o] for o in outputs]
    g.initializers = {k: v for k, v in g.initializers.items() if k in used_inits}
    g.sparse_initializers = {k: v for k, v in g.sparse_initializers.items() if k in used_inits}
    g.value_info = [v for v in g.value_info if id(v) in produced and v.name not in outputs]
    g.quantization_annotation = [qa for qa in g.quantization_annotation
                                 if qa[0] in by_name or qa[0] in used_inits]
    return m, feeds


def _inside(node: Any, kept_ids: set[int]) -> bool:
    """Whether node is a kept node or lies in a subgraph of one."""
    while node is not None:
        if id(node) in kept_ids:
            return True
        graph = node.graph
        node = _owner(graph)
    return False


def _owner(graph: Any) -> Any:
    """The node holding ``graph`` as an attribute (None for a main graph)."""
    parent = getattr(graph, "parent", None)
    if parent is None:
        return None
    for n in parent.nodes:
        if any(sg is graph for sg in n.subgraphs()):
            return n
    return None


def reduce(model: Model, report: Report, *, out: str | os.PathLike | None = None,
           engines: Sequence[str | Engine] | None = None, max_rounds: int = 64) -> Reduction:
    """The smallest sub-model around ``report``'s first disagreement that still disagrees.

    ``report`` comes from :func:`pyonnx.debug.compare` on ``model`` with the baseline's
    intermediate values (its tolerances are reused). ``engines`` default to the baseline and
    the engine that disagreed. With ``out``, the model is written there (checked, weights over
    2 GiB as external data) and its inputs to ``<out without .onnx>.inputs.npz``. Raises
    :class:`InvalidArgument` when the report has no disagreement, or when no sub-model
    reproduces it (the whole model is then the smallest).
    """
    first = report.first
    if first is None or report.baseline is None:
        raise InvalidArgument("the engines agree on this model: there is nothing to reduce")
    runners = resolve_engines(list(engines) if engines is not None
                              else [report.baseline, first.engine])
    base_values = dict(report.engine(report.baseline).values)
    base_values.update(report.inputs)
    order = topological_order(model.graph)
    index = {id(n): i for i, n in enumerate(order)}
    target = first.node_index
    outputs = [d.value for d in report.mismatches if d.node_index == target]
    outputs = list(dict.fromkeys(outputs))

    def attempt(keep: set[int]) -> tuple[Model, dict[str, Any], Report] | None:
        got = extract(model, sorted(keep), outputs, base_values)
        if got is None:
            return None
        sub, feeds = got
        r = compare(sub, engines=runners, inputs=feeds, rtol=report.rtol, atol=report.atol,
                    baseline=report.baseline)
        return (sub, feeds, r) if r.first is not None else None

    keep = {target}
    found = attempt(keep)
    rounds = 0
    while found is None:
        rounds += 1
        grow = {index[id(v.producer)] for i in keep for v in node_inputs(order[i])
                if v.producer is not None and id(v.producer) in index} - keep
        if not grow or rounds > max_rounds:
            raise InvalidArgument(
                f"no sub-model around {order[target].describe()} reproduces the disagreement "
                f"on {first.value!r}: it needs the whole model")
        keep |= grow
        found = attempt(keep)
    # shrink: drop each helper node whose removal keeps the disagreement
    for i in sorted(keep - {target}, reverse=True):
        trial = attempt(keep - {i})
        if trial is not None:
            keep -= {i}
            found = trial
    sub, feeds, r = found
    result = Reduction(sub, feeds, r, len(keep))
    if out is not None:
        _write(result, os.fspath(out))
    return result


def _write(result: Reduction, path: str) -> None:
    from pyonnx.checker import check_model
    from pyonnx.io import save

    arrays = {k: v for k, v in result.inputs.items() if isinstance(v, np.ndarray)}
    if len(arrays) != len(result.inputs):
        odd = sorted(set(result.inputs) - set(arrays))
        raise InvalidArgument(f"the reduced model's inputs {odd} are not tensors and cannot "
                              f"be written to a .npz file")
    check_model(result.model, full_check=True)
    size = sum(v.const_value.nbytes for v in result.model.graph.initializers.values()
               if hasattr(v.const_value, "nbytes"))
    save(result.model, path, external_data=size >= (1 << 31) - (64 << 20))
    stem = path[:-5] if path.endswith(".onnx") else path
    inputs_path = stem + ".inputs.npz"
    np.savez(inputs_path, **arrays)
    result.path, result.inputs_path = path, inputs_path
