"""Node input types against the operator schema's type constraints, as inference checks them.

The checker reports every violation in a model (``checker/node_rules.py``); inference needs only
the first one of a node, to refuse running a shape rule on inputs the operator cannot take (a
rule could otherwise compute shapes from data the operator would never read, such as int32
dims for ConstantOfShape).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyonnx import defs
from pyonnx.ir import DataType, MapType, OptionalType, SequenceType, SparseTensorType, TensorType
from pyonnx.ir import Type, Value

__all__ = ["type_signature", "input_type_error"]


def type_signature(t: Type | None) -> str | None:
    """The schema spelling of a type (``tensor(float)``, ``seq(tensor(int64))``, …); None when
    the type, or its element type, is unknown."""
    if isinstance(t, (TensorType, SparseTensorType)):
        if t.elem_type == DataType.UNDEFINED:
            return None
        kind = "tensor" if isinstance(t, TensorType) else "sparse_tensor"
        return f"{kind}({t.elem_type.onnx_name})"
    if isinstance(t, (SequenceType, OptionalType)):
        inner = type_signature(t.elem_type)
        kind = "seq" if isinstance(t, SequenceType) else "optional"
        return None if inner is None else f"{kind}({inner})"
    if isinstance(t, MapType):
        v = t.value_type
        if isinstance(v, TensorType) and v.elem_type != DataType.UNDEFINED:
            inner: str | None = v.elem_type.onnx_name  # the schemas write map(int64, float)
        else:
            inner = type_signature(v)
        return None if inner is None else f"map({t.key_type.onnx_name},{inner})"
    return None


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
        ts = type_signature(t)
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
