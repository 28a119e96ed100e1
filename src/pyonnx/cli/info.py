"""``pyonnx info MODEL``: what a model is, what it takes and gives, what it is made of."""

from __future__ import annotations

import argparse
from collections import Counter

from pyonnx.cli._format import fmt_bytes, fmt_shape
from pyonnx.io import load
from pyonnx.ir import Model, Tensor, TensorType


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show a model's versions, inputs, outputs, operators and size",
                       description="Show the IR version, opsets and producer of a model, its "
                                   "inputs and outputs with types and shapes, how often each "
                                   "operator is used, and its parameter count and bytes.")
    p.add_argument("model", help="path to an .onnx file")
    p.set_defaults(func=run)


def _io_line(v) -> str:  # type: ignore[no-untyped-def]
    t = v.type
    shape = fmt_shape(t.shape) if isinstance(t, TensorType) else ""
    return f"  {v.name}: {t if t is not None else 'unknown type'} {shape}".rstrip()


def describe(model: Model) -> str:
    """The text ``pyonnx info`` prints."""
    g = model.graph
    lines = [f"IR version: {model.ir_version}"]
    opsets = ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in sorted(model.opset_imports.items()))
    lines.append(f"opsets: {opsets}")
    prod = " ".join(x for x in (model.producer_name, model.producer_version) if x)
    lines.append(f"producer: {prod or '(not set)'}")
    if g.name:
        lines.append(f"graph: {g.name}")
    init = set(g.initializers)
    lines.append("inputs:")
    lines.extend(_io_line(v) for v in g.inputs if v.name not in init)
    lines.append("outputs:")
    lines.extend(_io_line(v) for v in g.outputs)
    hist = Counter(f"{n.domain + '::' if n.domain not in ('', 'ai.onnx') else ''}{n.op_type}"
                   for n in g.all_nodes())
    lines.append(f"operators ({sum(hist.values())} nodes, {len(hist)} kinds):")
    for op, n in sorted(hist.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {op:28s} {n}")
    params = 0
    nbytes = 0
    for v in list(g.initializers.values()):
        t = v.const_value
        if isinstance(t, Tensor):
            params += t.size
            nbytes += t.nbytes
    lines.append(f"parameters: {params:,} in {len(g.initializers)} initializers, "
                 f"{fmt_bytes(nbytes)}")
    if model.functions:
        lines.append(f"functions: {', '.join(f'{f.domain}::{f.name}' for f in model.functions)}")
    if model.metadata_props:
        lines.append("metadata:")
        lines.extend(f"  {k}: {v}" for k, v in model.metadata_props.items())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    print(describe(load(args.model)))
    return 0
