"""Small pattern-matching helpers shared by the fusion passes."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from pyonnx.ir import Node, Value
from pyonnx.optimizer._rewrite import constant_of, is_standard

__all__ = ["scalar", "made_by", "other_input", "used_only_by", "consumers"]


def scalar(v: Value | None, inputs: set[int]) -> float | None:
    """The value of a one-element float constant, else None."""
    c = constant_of(v, inputs)
    if c is None or c.size != 1 or c.dtype.kind != "f":
        return None
    return float(c.ravel()[0])


def made_by(v: Value | None, op_type: str, graph: object = None) -> Node | None:
    """The standard-domain node of ``op_type`` that produces ``v`` (in ``graph`` if given)."""
    if v is None:
        return None
    n = v.producer
    if n is None or n.op_type != op_type or not is_standard(n) or len(n.outputs) < 1:
        return None
    if graph is not None and n.graph is not graph:
        return None
    return n


def other_input(node: Node, v: Value) -> Value | None:
    """The other input of a two-input node one of whose inputs is ``v`` (None when both are)."""
    if len(node.inputs) != 2:
        return None
    a, b = node.inputs
    if a is v and b is not v:
        return b
    if b is v and a is not v:
        return a
    return None


def consumers(v: Value, op_type: str) -> list[Node]:
    """The standard-domain nodes of ``op_type`` that read ``v``."""
    return [n for n, _ in v.uses if n.op_type == op_type and is_standard(n)]


def used_only_by(values: Iterable[Value], nodes: Iterable[Node], keep: set[int]) -> bool:
    """Whether every value is unprotected and read only by ``nodes`` (the interior of a
    pattern that a fusion replaces)."""
    ids = {id(n) for n in nodes}
    for v in values:
        if id(v) in keep or any(id(n) not in ids for n, _ in v.uses):
            return False
    return True


def close(a: float | None, b: float, rel: float = 1e-3) -> bool:
    """Whether a matched constant is the expected one (exporters round them to float32)."""
    return a is not None and abs(a - b) <= rel * abs(b)


def one_d(a: np.ndarray | None, size: object) -> bool:
    """Whether ``a`` is a 1-D float array of ``size`` elements (any size when not an int)."""
    return (a is not None and a.ndim == 1 and a.dtype.kind == "f"
            and (not isinstance(size, int) or a.shape[0] == size))
