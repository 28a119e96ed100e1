"""The ONNX backend node cases that the torch op table claims, and two ways to run one: through
the torch execution provider (a session) and through :func:`pyonnx.convert.to_torch`.

A case is *claimed* when the table claims every node of its graph (If, Loop and Scan count
as claimed when their bodies are, since to_torch turns them into Python control flow; a
session runs them on the CPU provider). The rest are accounted for by the committed exclusion
list (``src/pyonnx/backends/torch/ops/exclusions.txt``)."""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from tests.conformance.backend import Case, _only_defined, assert_similar, node_cases, \
    undefined_rule

CONTROL_FLOW = ("If", "Loop", "Scan")


def unclaimed(model_bytes: bytes) -> list[tuple[str, str]]:
    """(op_type, why) for each node of the model the torch op table does not claim."""
    import pyonnx
    from pyonnx import defs
    from pyonnx.backends.torch.ops import claim

    m = pyonnx.load(model_bytes)
    out = []
    for n in m.graph.all_nodes():
        if n.op_type in CONTROL_FLOW and n.domain in ("", "ai.onnx"):
            if n.op_type == "Scan" and (m.opset("") or 0) < 9:
                out.append((n.op_type, "Scan before version 9 (with a batch axis)"))
            continue
        dom = defs.normalize_domain(n.domain)
        schema = defs.lookup(dom, n.op_type, m.opset(dom) or 0) if m.opset(dom) else None
        if schema is None:
            out.append((n.op_type, "no schema"))
            continue
        entry, why = claim(n, dom, schema.since_version)
        if entry is None:
            out.append((n.op_type, why or ""))
    return out


@functools.cache
def claimed_cases() -> tuple[Case, ...]:
    """The node cases whose every node the table claims."""
    return tuple(c for c in node_cases() if not unclaimed(c.model))


def _compare(case: Case, inputs: list[Any], expected: list[Any], got: list[Any], k: int) -> None:
    if len(got) != len(expected):
        raise AssertionError(f"{len(got)} outputs, expected {len(expected)}")
    rule = undefined_rule(case.name)
    for i, (e, a) in enumerate(zip(expected, got)):
        where = f"{case.name} data set {k} output {i}"
        if rule is not None:
            e, a = _only_defined(rule, inputs, e, a)
        assert_similar(e, a, case.rtol, case.atol, where)


def run_with_provider(case: Case, device: str = "cpu") -> None:
    """Run ``case`` in a session on the torch provider (``device``); raise on a mismatch."""
    import pyonnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sess = pyonnx.InferenceSession(
            case.model, providers=[("TorchExecutionProvider", {"device": device}),
                                   "CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        for k, (inputs, expected) in enumerate(case.data_sets):
            _compare(case, inputs, expected, sess.run(None, dict(zip(names, inputs))), k)


def run_with_to_torch(case: Case) -> None:
    """Run ``case`` as the module :func:`pyonnx.convert.to_torch` makes; raise on a mismatch."""
    import torch

    from pyonnx.backends.torch.dtypes import from_numpy, to_numpy
    from pyonnx.convert import to_torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = to_torch(case.model)
        for k, (inputs, expected) in enumerate(case.data_sets):
            with torch.no_grad():
                out = gm(*[from_numpy(np.asarray(x) if not isinstance(x, list) else x)
                           for x in inputs])
            out = list(out) if isinstance(out, tuple) else [out]
            _compare(case, inputs, expected, [to_numpy(o) for o in out], k)


def pass_rate(run: Any, cases: tuple[Case, ...]) -> tuple[int, dict[str, str]]:
    """(passed, {failed case: error}) of ``run`` over ``cases``."""
    failed: dict[str, str] = {}
    for c in cases:
        try:
            run(c)
        except Exception as e:  # a failure of any kind counts against the rate
            failed[c.name] = f"{type(e).__name__}: {str(e)[:200]}"
    return len(cases) - len(failed), failed
