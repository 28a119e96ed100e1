"""Cross-engine comparison: run a model on several engines with every intermediate value exposed
and find the first node whose outputs disagree.

Exposing: a copy of the model lists every value a main-graph node produces and some node reads
as a graph output (an output nothing reads cannot change the results), declared without a type:
each engine infers it, where a declaration from pyonnx's inference, if wrong, would only make an
engine refuse the copy. Each engine runs that copy with its graph optimizations off, so the
values keep their names and come from the nodes that name them. Values computed inside
subgraphs (If, Loop, Scan bodies) cannot be graph outputs of the main graph: the node that holds
the subgraph is compared through its own outputs. If an engine cannot run that copy, it retries
with only the values whose element type pyonnx infers, declared with it, then with the graph
outputs only; the report says how much each engine exposed.

Comparing: every engine is compared with the *baseline* engine (by default onnxruntime, else
onnx's reference evaluator, else the first engine that ran), value by value in topological order
of the producing nodes. Floats agree when ``|x - base| <= atol + rtol * |base|`` element-wise, NaN
where the baseline has NaN; integers, booleans and strings must be equal; dtypes and shapes must
match.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pyonnx.debug._graph import topological_order
from pyonnx.debug.engines import Engine, resolve_engines
from pyonnx.debug.inputs import model_inputs, random_inputs
from pyonnx.errors import InvalidArgument, PyOnnxError
from pyonnx.ir import DataType, Model, Node, TensorType

__all__ = ["compare", "Report", "EngineRun", "ValueDiff", "expose_values", "summarize",
           "diff_values", "DEFAULT_RTOL", "DEFAULT_ATOL"]

#: Default tolerances: onnx's backend-test rtol; an atol that absorbs float32 accumulation-order
#: noise in values near zero (a LayerNormalization output, a residual sum).
DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-4

#: How much of the graph an engine ran with exposed: every value, the values of known tensor
#: type, or the graph outputs only.
EXPOSE_LEVELS = ("all", "typed", "outputs")


@dataclasses.dataclass
class EngineRun:
    """What one engine did: ``ok`` with ``values`` (by name) and the exposure level it ran at,
    or the ``error`` that stopped it (its exception's type and message)."""

    name: str
    ok: bool
    exposed: str | None = None
    values: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    error: str | None = None
    #: errors of the runs that failed before the one that worked (level -> message)
    retries: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ValueDiff:
    """One value compared between an engine and the baseline."""

    value: str
    node: str              # the producing node, as error messages name it
    node_index: int        # its position in topological order
    engine: str
    baseline: str
    ok: bool
    reason: str = ""       # why it disagrees (dtype, shape, values), empty when ok
    max_abs: float | None = None
    max_rel: float | None = None
    where: tuple[int, ...] | None = None   # index of the largest absolute difference
    bad: int = 0           # elements beyond tolerance
    total: int = 0         # elements compared

    def describe(self, values: Mapping[str, Any]) -> str:
        """Several lines: both values summarised and how they differ."""
        width = max(len(self.engine), len(self.baseline))
        lines = [f"  {self.baseline:<{width}}  {summarize(values[self.baseline])}",
                 f"  {self.engine:<{width}}  {summarize(values[self.engine])}",
                 f"  {self.engine} vs {self.baseline}: {self.reason}"]
        if self.max_abs is not None:
            a, b = values[self.engine], values[self.baseline]
            at = ""
            if self.where is not None and isinstance(a, np.ndarray) and \
                    isinstance(b, np.ndarray) and a.shape == b.shape:
                at = (f" at {list(self.where)} ({self.engine} {a[self.where].item()}, "
                      f"{self.baseline} {b[self.where].item()})")
            lines.append(f"    max abs diff {self.max_abs:.6g}{at}, max rel diff "
                         f"{self.max_rel:.6g}; {self.bad} of {self.total} elements beyond "
                         f"tolerance")
        return "\n".join(lines)


@dataclasses.dataclass
class Report:
    """The result of :func:`compare`.

    ``engines`` says what each engine did; ``diffs`` lists every comparison made, in
    topological order; ``first`` is the first disagreement (None when all agree), and
    ``first_values`` the value of that output in each engine. ``inputs`` is the feed used.
    """

    model: Model
    engines: list[EngineRun]
    baseline: str | None
    inputs: dict[str, Any]
    diffs: list[ValueDiff]
    rtol: float
    atol: float
    order: list[Node]

    @property
    def mismatches(self) -> list[ValueDiff]:
        return [d for d in self.diffs if not d.ok]

    @property
    def first(self) -> ValueDiff | None:
        return next((d for d in self.diffs if not d.ok), None)

    @property
    def first_node(self) -> Node | None:
        """The node (of ``model``) whose output disagrees first."""
        d = self.first
        return None if d is None else self.order[d.node_index]

    @property
    def ran(self) -> list[EngineRun]:
        return [e for e in self.engines if e.ok]

    @property
    def failed(self) -> list[EngineRun]:
        return [e for e in self.engines if not e.ok]

    @property
    def agree(self) -> bool:
        """True when at least two engines ran and every compared value agrees."""
        return len(self.ran) >= 2 and self.first is None

    def engine(self, name: str) -> EngineRun:
        for e in self.engines:
            if e.name == name:
                return e
        raise KeyError(name)

    def values_of(self, name: str) -> dict[str, Any]:
        """The value called ``name`` in each engine that computed it."""
        return {e.name: e.values[name] for e in self.ran if name in e.values}

    def format(self) -> str:
        """The report as text (what ``pyonnx compare`` prints)."""
        lines = []
        for e in self.engines:
            if e.ok:
                how = {"all": "every intermediate value exposed",
                       "typed": "values of inferred tensor type exposed",
                       "outputs": "graph outputs only"}[e.exposed or "outputs"]
                n = len(e.values)
                lines.append(f"engine {e.name}: ran ({n} value{'s' * (n != 1)}; {how})")
                for level, err in e.retries.items():
                    lines.append(f"    (with {level} exposed it failed: {_first_line(err)})")
            else:
                lines.append(f"engine {e.name}: FAILED: {e.error}")
        if len(self.ran) < 2:
            lines.append("fewer than two engines ran: nothing to compare")
            return "\n".join(lines)
        nodes = len({d.node_index for d in self.diffs})
        n = len(self.diffs)
        lines.append(f"baseline {self.baseline}: compared {n} value{'s' * (n != 1)} of {nodes} "
                     f"node{'s' * (nodes != 1)} (rtol {self.rtol:g}, atol {self.atol:g})")
        first = self.first
        if first is None:
            lines.append("all engines agree")
            return "\n".join(lines)
        node = self.order[first.node_index]
        lines.append(f"first disagreement: {node.describe()}, number {first.node_index + 1} of "
                     f"{len(self.order)} in topological order, output {first.value!r}")
        for line in self._input_lines(node):
            lines.append(line)
        vals = self.values_of(first.value)
        for d in self.diffs:
            if d.value == first.value and not d.ok:
                lines.append(d.describe(vals))
        later = len({d.value for d in self.mismatches}) - 1
        if later:
            lines.append(f"{later} later value(s) disagree too")
        return "\n".join(lines)

    def _input_lines(self, node: Node) -> list[str]:
        """The node's inputs as the baseline saw them (they agreed, or the node would not
        be the first to disagree)."""
        base = self.engine(self.baseline).values if self.baseline else {}
        g = self.model.graph
        out = []
        for v in node.inputs:
            if v is None:
                continue
            if v.name in base:
                what = summarize(base[v.name])
            elif v.name in self.inputs:
                what = summarize(self.inputs[v.name]) + " (graph input)"
            elif v.name in g.initializers and g.initializers[v.name].const_value is not None:
                t = g.initializers[v.name].const_value
                what = (f"{t.data_type.name.lower()} [{','.join(map(str, t.dims))}] "
                        f"(initializer)")
            else:
                what = "not exposed"
            out.append(f"  input {v.name!r}: {what}")
        return out

    def __str__(self) -> str:
        return self.format()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


# --------------------------------------------------------------------------- summaries and diffs


def summarize(value: Any) -> str:
    """One line: dtype, shape and min/max/mean (or a sequence's, map's or optional's size)."""
    if value is None:
        return "empty optional"
    if isinstance(value, list):
        return f"sequence of {len(value)} tensors" + (
            f", first {summarize(value[0])}" if value else "")
    if isinstance(value, dict):
        return f"map of {len(value)} entries"
    arr = np.asarray(value)
    head = f"{arr.dtype} [{','.join(str(d) for d in arr.shape)}]"
    if arr.size == 0:
        return head + " empty"
    if arr.dtype == object or arr.dtype.kind in "US":
        sample = ", ".join(repr(s) for s in arr.reshape(-1)[:3])
        return f"{head} [{sample}{', ...' if arr.size > 3 else ''}]"
    if arr.dtype == bool:
        return f"{head} true={int(arr.sum())} false={int(arr.size - arr.sum())}"
    data = np.abs(arr) if arr.dtype.kind == "c" else arr.astype(np.float64)
    finite = data[np.isfinite(data)]
    stats = (f"min={finite.min():.6g} max={finite.max():.6g} mean={finite.mean():.6g}"
             if finite.size else "no finite values")
    nonfinite = data.size - finite.size
    return f"{head} {stats}" + (f" non-finite={nonfinite}" if nonfinite else "")


def diff_values(x: Any, base: Any, rtol: float, atol: float) -> dict[str, Any]:
    """How ``x`` differs from ``base``: ``ok`` and, when not, ``reason``; for floats also
    ``max_abs``, ``max_rel``, ``where`` (index of the largest difference), ``bad`` and ``total``
    (elements beyond tolerance, elements compared)."""
    if base is None or x is None:
        same = base is None and x is None
        return {"ok": same, "reason": "" if same else
                f"one is an empty optional, the other {summarize(x if base is None else base)}"}
    if isinstance(base, list) or isinstance(x, list):
        if not (isinstance(base, list) and isinstance(x, list)):
            return {"ok": False, "reason": "one is a sequence, the other is not"}
        if len(base) != len(x):
            return {"ok": False, "reason": f"sequences of {len(x)} and {len(base)} tensors"}
        for i, (a, b) in enumerate(zip(x, base)):
            d = diff_values(a, b, rtol, atol)
            if not d["ok"]:
                d["reason"] = f"sequence element {i}: {d['reason']}"
                d.pop("where", None)
                return d
        return {"ok": True, "reason": ""}
    if isinstance(base, dict) or isinstance(x, dict):
        if not (isinstance(base, dict) and isinstance(x, dict)) or set(base) != set(x):
            return {"ok": False, "reason": "maps with different keys"}
        for k in base:
            d = diff_values(x[k], base[k], rtol, atol)
            if not d["ok"]:
                d["reason"] = f"map entry {k!r}: {d['reason']}"
                d.pop("where", None)
                return d
        return {"ok": True, "reason": ""}
    a, b = np.asarray(x), np.asarray(base)
    if a.dtype != b.dtype and not (a.dtype.kind in "OUS" and b.dtype.kind in "OUS"):
        return {"ok": False, "reason": f"dtype {a.dtype} vs {b.dtype}"}
    if a.shape != b.shape:
        return {"ok": False, "reason": f"shape {list(a.shape)} vs {list(b.shape)}"}
    total = int(b.size)
    if not _is_float(b.dtype):
        eq = a == b
        bad = int(eq.size - np.count_nonzero(eq))
        if not bad:
            return {"ok": True, "reason": "", "total": total}
        where = tuple(int(i) for i in np.argwhere(~np.asarray(eq))[0]) if a.ndim else ()
        return {"ok": False, "reason": f"{bad} of {total} elements differ (exact comparison)",
                "where": where, "bad": bad, "total": total}
    a64 = a.astype(np.complex128 if b.dtype.kind == "c" else np.float64)  # exact for all
    b64 = b.astype(a64.dtype)
    nan_a, nan_b = np.isnan(a64), np.isnan(b64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a64 - b64)
        same_inf = np.isinf(a64) & np.isinf(b64) & (a64 == b64)
        diff = np.where(same_inf | (nan_a & nan_b), 0.0, diff)
        diff = np.where(nan_a ^ nan_b, np.inf, diff)
        limit = atol + rtol * np.abs(np.where(np.isfinite(b64), b64, 0))
        bad_mask = diff > limit
        # relative to the baseline; infinite where the baseline is 0 and the value is not
        mag = np.abs(b64)
        rel = np.where(mag > 0, diff / np.where(mag > 0, mag, 1), np.where(diff > 0, np.inf, 0))
    bad = int(np.count_nonzero(bad_mask))
    out: dict[str, Any] = {"ok": bad == 0, "bad": bad, "total": total}
    if total:
        flat = int(np.argmax(diff))
        out["max_abs"] = float(diff.reshape(-1)[flat])
        out["max_rel"] = float(np.max(np.where(diff > 0, rel, 0.0)))
        out["where"] = tuple(int(i) for i in np.unravel_index(flat, diff.shape)) if diff.ndim \
            else ()
    nan_mismatch = int(np.count_nonzero(nan_a ^ nan_b))
    out["reason"] = "" if bad == 0 else (
        "values differ beyond tolerance"
        + (f" ({nan_mismatch} NaN in one engine only)" if nan_mismatch else ""))
    return out


def _is_float(dtype: np.dtype) -> bool:
    """Floating point or complex, ml_dtypes' bfloat16, float8 and float4 types included (NumPy
    files those under kind 'V', like its integer int4)."""
    return dtype.kind in "fc" or (dtype.kind == "V" and dtype.name.startswith(("float",
                                                                               "bfloat")))


# --------------------------------------------------------------------------- exposing


def expose_values(model: Model, level: str = "all") -> tuple[Model, list[Node]]:
    """A copy of ``model`` with main-graph intermediate values as extra graph outputs.

    ``level`` is ``"all"`` (every named node output that some node reads, declared without a
    type: engines infer it, and a wrong declaration could only make them refuse the copy),
    ``"typed"`` (those whose element type pyonnx infers, declared with it, for an engine that
    wants declared types) or ``"outputs"`` (none added). Returns the copy and its main-graph
    nodes in topological order. The caller's model is not modified; weights are shared.
    """
    from pyonnx.optimizer import copy_model
    from pyonnx.shape_inference import infer_shapes

    if level not in EXPOSE_LEVELS:
        raise InvalidArgument(f"expose level {level!r}; choose one of {EXPOSE_LEVELS}")
    m = None
    if level == "typed":
        try:
            m = infer_shapes(model)
        except PyOnnxError:  # then only what the model declares is known
            pass
    m = m or copy_model(model)
    g = m.graph
    order = topological_order(g)
    if level == "outputs":
        return m, order
    taken = {v.name for v in g.outputs} | {v.name for v in g.inputs} | set(g.initializers)
    exposed: set[int] = set()
    for n in order:
        for v in n.outputs:
            if not v.name or v.name in taken or not v.uses:
                # an output nothing reads (Dropout's mask at inference) cannot affect the
                # model's results, and what engines put there is often unspecified
                continue
            t = v.type
            if level == "all":
                v.type = None
            elif isinstance(t, TensorType) and t.elem_type != DataType.UNDEFINED:
                # element type only: a declared shape an engine disagrees with would be refused
                v.type = TensorType(t.elem_type, None)
            else:
                continue
            taken.add(v.name)
            exposed.add(id(v))
            g.outputs.append(v)
    # their annotations would repeat (or contradict) what the outputs now declare
    g.value_info = [v for v in g.value_info if id(v) not in exposed]
    return m, order


# --------------------------------------------------------------------------- compare


class _Files:
    """Writes each exposed copy to a temporary folder once, for the engines that read files."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="pyonnx_compare_")
        self.paths: dict[str, str] = {}

    def path(self, level: str, model: Model) -> str:
        if level not in self.paths:
            from pyonnx.io import save

            p = os.path.join(self.folder, f"exposed_{level}.onnx")
            # weights as external data: the copy may pass protobuf's 2 GiB, and streaming
            # them costs little memory
            save(model, p, external_data=True, size_threshold=1 << 20)
            self.paths[level] = p
        return self.paths[level]

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _error_text(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip()
    return text if len(text) <= 2000 else text[:2000] + " ..."


def _run_engine(engine: Engine, models: dict[str, tuple[Model, list[Node]]], files: _Files,
                feeds: Mapping[str, Any], source: Model) -> EngineRun:
    retries: dict[str, str] = {}
    for level in EXPOSE_LEVELS:
        if level not in models:
            models[level] = expose_values(source, level)
        m = models[level][0]
        try:
            path = files.path(level, m) if engine.needs_file else ""
            values = engine.run(m, path, feeds)
        except ImportError as e:  # the engine's package is missing: no retry will help
            return EngineRun(engine.name, False, error=_error_text(e))
        except Exception as e:  # noqa: BLE001 - any failure of an engine is reported
            retries[level] = _error_text(e)
            continue
        return EngineRun(engine.name, True, level, values, retries=retries)
    last = retries.pop("outputs")
    return EngineRun(engine.name, False, error=last, retries=retries)


def _choose_baseline(runs: list[EngineRun], baseline: str | None) -> str | None:
    ran = [r.name for r in runs if r.ok]
    if baseline is not None:
        if baseline not in [r.name for r in runs]:
            raise InvalidArgument(f"baseline {baseline!r} is not one of the engines "
                                  f"{[r.name for r in runs]}")
        return baseline if baseline in ran else None
    for preferred in ("onnxruntime", "reference"):
        if preferred in ran:
            return preferred
    return ran[0] if ran else None


def compare(model: Model | str | os.PathLike, *,
            engines: Sequence[str | Engine] | str = ("pyonnx", "onnxruntime", "reference"),
            inputs: Mapping[str, Any] | None = None,
            input_shapes: Mapping[str, Sequence[int]] | None = None,
            dims: Mapping[str, int] | None = None, seed: int = 0,
            rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL,
            baseline: str | None = None) -> Report:
    """Run ``model`` on ``engines`` with its intermediate values exposed and compare them.

    ``inputs`` feeds some or all graph inputs; the others are made up
    (:func:`pyonnx.debug.inputs.random_inputs` with ``input_shapes``, ``dims`` and ``seed``).
    ``baseline`` names the engine the others are compared with (default: onnxruntime, else
    reference, else the first engine that ran). An engine that cannot run the model is
    reported in :attr:`Report.engines`, never raised. Raises :class:`InvalidArgument` for
    unknown engines or inputs, :class:`~pyonnx.errors.DecodeError` for an unreadable model.
    """
    from pyonnx.io import load

    if not isinstance(model, Model):
        model = load(model)
    runners = resolve_engines(engines)
    if rtol < 0 or atol < 0:
        raise InvalidArgument(f"tolerances must not be negative (rtol {rtol}, atol {atol})")
    names = {v.name for v in model.graph.inputs}  # overridable initializers included
    unknown = sorted(set(inputs or {}) - names)
    if unknown:
        raise InvalidArgument(f"input(s) {', '.join(unknown)} given, but the model takes "
                              f"{', '.join(sorted(v.name for v in model_inputs(model)))}")
    feeds = random_inputs(model, input_shapes=input_shapes, dims=dims, seed=seed,
                          given=inputs)
    models: dict[str, tuple[Model, list[Node]]] = {}
    files = _Files()
    try:
        runs = [_run_engine(e, models, files, feeds, model) for e in runners]
    finally:
        files.close()
    base = _choose_baseline(runs, baseline)
    # node order and names come from the caller's model (the copies list the same nodes)
    order = topological_order(model.graph)
    diffs: list[ValueDiff] = []
    if base is not None:
        base_values = next(r for r in runs if r.name == base).values
        for idx, n in enumerate(order):
            for v in n.outputs:
                if not v.name or v.name not in base_values:
                    continue
                for r in runs:
                    if not r.ok or r.name == base or v.name not in r.values:
                        continue
                    d = diff_values(r.values[v.name], base_values[v.name], rtol, atol)
                    diffs.append(ValueDiff(v.name, n.describe(), idx, r.name, base, **d))
    return Report(model, runs, base, dict(feeds), diffs, rtol, atol, order)
