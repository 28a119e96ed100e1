"""Node input types against the operator schema's type constraints, as inference checks them.

The checker reports every violation in a model (``checker/node_rules.py``); inference needs only
the first one of a node, to refuse running a shape rule on inputs the operator cannot take (a
rule could otherwise compute shapes from data the operator would never read, such as int32
dims for ConstantOfShape).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyonnx import defs
from pyonnx.defs.type_strings import type_string_of
from pyonnx.ir import Type, Value

__all__ = ["input_type_error"]


def input_type_error(schema: defs.OpSchema, inputs: Sequence[Value | None],
                     types: Sequence[Type | None]) -> str | None:
    """What is wrong with the first input whose known type the schema does not allow (or that
    binds a type parameter differently from an earlier input); None when all are allowed."""
    formals = schema.inputs
    sig = f"{schema.name}-{schema.since_version}"
    bound: dict[str, tuple[str, str]] = {}
    for i, (v, t) in enumerate(zip(inputs, types)):
        if v is None or not formals or (i >= len(formals) and not formals[-1].is_variadic):
            continue
        formal = formals[min(i, len(formals) - 1)]
        ts = type_string_of(t)
        if ts is None:
            continue
        what = f"input {i} ({v.name!r}, {formal.name})"
        allowed = schema.type_constraints.get(formal.type_str)
        if allowed is None:  # a concrete type such as tensor(int64)
            if ts != formal.type_str.replace(" ", ""):
                return f"{what} has type {ts} but {sig} requires {formal.type_str}"
            continue
        if ts not in {a.replace(" ", "") for a in allowed}:
            return (f"{what} has type {ts}, which {sig} does not allow for {formal.type_str} "
                    f"(allowed: {', '.join(allowed)})")
        if formal.is_variadic and not formal.is_homogeneous:
            continue
        prev = bound.get(formal.type_str)
        if prev is None:
            bound[formal.type_str] = (ts, what)
        elif prev[0] != ts:
            return (f"{what} has type {ts} but {prev[1]} has {prev[0]}; {sig} requires both to "
                    f"have the same type {formal.type_str}")
    return None
