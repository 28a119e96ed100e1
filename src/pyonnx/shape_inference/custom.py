"""The shape rule of a user-declared custom operator (:class:`pyonnx.defs.custom.CustomOp`).

Output *types* come from the declaration: a concrete output type, or the type its type
parameter is bound to by the inputs (a parameter that allows one type only needs no binding).
Output *shapes* come from the user's ``shape_rule(*input_shapes, **attrs)`` when the declaration
has one, and are unknown otherwise. An input whose type the declaration does not allow is a
:class:`~pyonnx.errors.ShapeInferenceError` (reported in strict mode, as for built-in operators).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pyonnx.defs.custom import CustomOp
from pyonnx.defs.type_strings import parse_type_string, type_string_of
from pyonnx.ir import SparseTensorType, TensorType, Type

__all__ = ["custom_rule"]


def custom_rule(op: CustomOp) -> Any:
    """The registry rule of ``op`` (built once per declaration)."""
    rule = op._adapters.get("rule")
    if rule is None:
        rule = op._adapters["rule"] = _make_rule(op)
    return rule


def _make_rule(op: CustomOp) -> Any:
    def rule(ctx: Any) -> list[Type | None]:
        n_in, n_out = ctx.num_inputs, ctx.num_outputs
        bound: dict[str, str] = {}
        problem = op.bind_types("input", [type_string_of(ctx.input_type(i)) if ctx.has_input(i)
                                          else None for i in range(n_in)], bound)
        if problem:
            raise ctx.fail(problem)
        types: list[Type | None] = [None if ts is None else parse_type_string(ts)[1]
                                    for ts in op.output_type_strings(bound, n_out)]
        if op.shape_rule is None:
            return types
        attrs = {**op.attribute_defaults, **ctx.attributes()}
        shapes = op.shape_rule(*[ctx.shape(i) for i in range(n_in)], **attrs)
        for i, shape in enumerate(_per_output(op, shapes, n_out, ctx)):
            t = types[i]
            if shape is not None and isinstance(t, (TensorType, SparseTensorType)):
                types[i] = type(t)(t.elem_type, shape)
        return types

    return rule


def _per_output(op: CustomOp, result: Any, n_out: int, ctx: Any) -> list[tuple | None]:
    """The rule's answer as one shape (tuple of dims) or None per output."""
    if result is None:
        return [None] * n_out
    if not isinstance(result, (list, tuple)):
        raise ctx.fail(f"the shape rule of {op} returned {result!r}; return a shape (a tuple of "
                       f"dims) or a list of shapes")
    one_shape = all(_is_dim(d) for d in result)
    shapes: Sequence[Any] = [result] if one_shape and len(op.schema.outputs) == 1 else result
    if one_shape and len(op.schema.outputs) != 1 and result:
        raise ctx.fail(f"the shape rule of {op} returned one shape {tuple(result)!r} but the "
                       f"operator has {len(op.schema.outputs)} outputs; return a list of shapes")
    out: list[tuple | None] = []
    for i, s in enumerate(list(shapes)[:n_out]):
        if s is None:
            out.append(None)
            continue
        if not isinstance(s, (list, tuple)) or not all(_is_dim(d) for d in s):
            raise ctx.fail(f"the shape rule of {op} returned {s!r} for output {i}; a shape is "
                           f"a tuple of dims (int >= 0, a symbol name, or None)")
        out.append(tuple(int(d) if isinstance(d, int) else d for d in s))
    return out + [None] * (n_out - len(out))


def _is_dim(d: Any) -> bool:
    if isinstance(d, bool):
        return False
    if isinstance(d, (int, np.integer)):
        return d >= 0
    return d is None or (isinstance(d, str) and bool(d))
