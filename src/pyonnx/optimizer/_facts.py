"""What shape inference proves about a model's values, for passes that need types, shapes or
the values of small shape computations (``Shape -> Gather -> Concat`` chains with symbolic dims).

:class:`Facts` runs the shape-inference engine with data propagation on a structural copy of the
model (the model itself is not annotated) and answers per Value of the model: its inferred type,
shape (ints and symbol names; two equal symbol names denote the same run-time size) and, for
small integer tensors, their known elements (``int`` or symbol each).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyonnx.ir import Graph, Model, TensorType, Type, Value
from pyonnx.ir.types import Dim
from pyonnx.optimizer._copy import copy_graph

__all__ = ["Facts", "facts_for", "forget_facts", "same_shape"]

_CACHE = "_pyonnx_facts"


def facts_for(model: Model) -> "Facts":
    """The facts of ``model`` as it is now, shared by the passes that run until one of them
    changes the model (the pass manager then forgets them: :func:`forget_facts`)."""
    f = getattr(model, _CACHE, None)
    if f is None:
        f = Facts(model)
        try:
            setattr(model, _CACHE, f)
        except AttributeError:
            pass
    return f


def forget_facts(model: Model) -> None:
    """Drop the cached facts (the pass manager does so at each round)."""
    if hasattr(model, _CACHE):
        delattr(model, _CACHE)


class Facts:
    """Inferred facts about the values of ``model`` as it is now (build a new one after a
    rewrite that changes what a value computes)."""

    def __init__(self, model: Model) -> None:
        from pyonnx.shape_inference.engine import _Engine

        self._map: dict[int, Value] = {}
        g: Graph = copy_graph(model.graph, self._map)
        # the facts are looked up by id(value): hold every value of the model as it is now, so
        # that no value a later rewrite drops can be freed and its id reused by a new value
        # (which would then be given the dropped one's facts)
        self._held = _values_of(model.graph)
        copy = Model(g, ir_version=model.ir_version, opset_imports=dict(model.opset_imports),
                     functions=list(model.functions))
        self._engine: Any = _Engine(copy, data_prop=True, strict=False)
        try:
            self._engine.run()
            self.ok = True
        except Exception:  # noqa: BLE001 - inference is an aid here; without it, no facts
            self.ok = False

    def _copy(self, v: Value | None) -> Value | None:
        return None if v is None or not self.ok else self._map.get(id(v))

    def type(self, v: Value | None) -> Type | None:
        """The inferred (or declared) type of ``v``."""
        c = self._copy(v)
        return c.type if c is not None else (v.type if v is not None else None)

    def shape(self, v: Value | None) -> tuple[Dim, ...] | None:
        """``v``'s shape (dims int, symbol or None) when its rank is known, else None."""
        t = self.type(v)
        if isinstance(t, TensorType) and t.shape is not None:
            return tuple(t.shape)
        return None

    def rank(self, v: Value | None) -> int | None:
        s = self.shape(v)
        return None if s is None else len(s)

    def partial(self, v: Value | None) -> list[Dim] | None:
        """The elements of a rank-0/1 integer tensor as dims (int, symbol or None), if known."""
        c = self._copy(v)
        return None if c is None else self._engine.partial_of(c)

    def value(self, v: Value | None) -> np.ndarray | None:
        """The value of ``v`` when every element is known."""
        c = self._copy(v)
        return None if c is None else self._engine.value_of(c)


def _values_of(graph: Graph) -> list[Value]:
    held: list[Value] = []
    stack = [graph]
    while stack:
        g = stack.pop()
        held.extend(g.inputs)
        held.extend(g.initializers.values())
        for n in g.nodes:
            held.extend(n.outputs)
            stack.extend(n.subgraphs())
    return held


def same_shape(a: tuple[Dim, ...] | None, b: tuple[Dim, ...] | None) -> bool:
    """Whether two inferred shapes are provably equal: same rank, every dim the same int or the
    same symbol (no unknown dim)."""
    if a is None or b is None or len(a) != len(b):
        return False
    return all(x is not None and x == y for x, y in zip(a, b))
