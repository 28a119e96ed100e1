"""The engines ``compare`` runs: pyonnx, onnxruntime and onnx's reference evaluator.

An engine runs a model on a feed and returns every graph output by name. Each runs with its
graph optimizations off, so that the intermediate values ``compare`` exposes as graph outputs
keep their names and are computed by the nodes that name them. onnxruntime and onnx are imported
only when their engine runs (they are test and debugging oracles, not dependencies); a missing
package is a failure of that engine, reported like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pyonnx.errors import InvalidArgument
from pyonnx.ir import Model

__all__ = ["Engine", "ENGINES", "resolve_engines"]


class Engine:
    """A named way to run a model: ``run(model, path, feeds) -> {output name: value}``.

    ``model`` is the pyonnx IR and ``path`` the same model written to a file (with its
    weights as external data next to it); an engine uses whichever it reads. Values come back
    as NumPy arrays (sequences as lists). Any exception means the engine could not run the
    model.
    """

    def __init__(self, name: str, run: Callable[[Model, str, Mapping[str, Any]], dict[str, Any]],
                 needs_file: bool = True) -> None:
        self.name = name
        self._run = run
        #: whether run reads ``path`` (the file is written only when some engine needs it)
        self.needs_file = needs_file

    def run(self, model: Model, path: str, feeds: Mapping[str, Any]) -> dict[str, Any]:
        return self._run(model, path, feeds)

    def __repr__(self) -> str:
        return f"Engine({self.name!r})"


def _run_pyonnx(model: Model, path: str, feeds: Mapping[str, Any]) -> dict[str, Any]:
    from pyonnx.runtime import GraphOptimizationLevel, InferenceSession, SessionOptions

    opts = SessionOptions()
    opts.graph_optimization_level = GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = InferenceSession(model, opts)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, dict(feeds))))


def _run_onnxruntime(model: Model, path: str, feeds: Mapping[str, Any]) -> dict[str, Any]:
    import onnxruntime as ort  # only here: an oracle, imported where a user asks to compare

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    # its log would repeat on stderr the failures the report gives, and warn about shapes
    opts.log_severity_level = 4
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    wanted = {i.name for i in sess.get_inputs()}
    run_opts = ort.RunOptions()
    run_opts.log_severity_level = 4
    return dict(zip(names, sess.run(None, {k: v for k, v in feeds.items() if k in wanted},
                                    run_opts)))


def _run_reference(model: Model, path: str, feeds: Mapping[str, Any]) -> dict[str, Any]:
    import onnx  # only here, as onnxruntime above
    from onnx.reference import ReferenceEvaluator

    import numpy as np

    ref = ReferenceEvaluator(onnx.load(path))
    wanted = set(ref.input_names)
    # its NumPy kernels warn on overflow in exp (Sigmoid of large inputs) where the result is
    # still right; the comparison, not a warning, says whether a value is wrong
    with np.errstate(all="ignore"):
        outs = ref.run(None, {k: v for k, v in feeds.items() if k in wanted})
    return dict(zip(ref.output_names, outs))


#: The engines known by name.
ENGINES: dict[str, Engine] = {
    "pyonnx": Engine("pyonnx", _run_pyonnx, needs_file=False),
    "onnxruntime": Engine("onnxruntime", _run_onnxruntime),
    "reference": Engine("reference", _run_reference),
}


def resolve_engines(engines: Sequence[str | Engine] | str) -> list[Engine]:
    """Engines from names (a comma-separated string or a list) or :class:`Engine` objects.
    An unknown name raises :class:`InvalidArgument` listing the known ones."""
    if isinstance(engines, str):
        engines = [e.strip() for e in engines.split(",") if e.strip()]
    out: list[Engine] = []
    for e in engines:
        if isinstance(e, Engine):
            out.append(e)
        elif e in ENGINES:
            out.append(ENGINES[e])
        else:
            raise InvalidArgument(f"unknown engine {e!r}; the engines are "
                                  f"{', '.join(ENGINES)}")
    if len({e.name for e in out}) != len(out):
        raise InvalidArgument(f"engines {[e.name for e in out]} name one engine twice")
    if len(out) < 2:
        raise InvalidArgument(f"compare needs at least two engines, got "
                              f"{[e.name for e in out]}")
    return out
