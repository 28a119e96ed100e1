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

        # Inference runs on the model itself, and every type it writes is put back afterwards:
        # the model stays as it was (declared types, value_info), while the inferred types are
        # kept here. (A structural copy to infer on cost as much as the inference itself, and
        # facts are built several times per optimization.) Holding every value of the model
        # also means that no value a later rewrite drops is freed while the facts live, so its
        # id, by which the facts look values up, is never reused by a new value.
        values = _values_of(model.graph)
        self._held = values
        declared = [v.type for v in values]
        listed = [(g, list(g.value_info)) for g in _graphs_of(model.graph)]
        self._types: dict[int, Type | None] = {}
        self._engine: Any = _Engine(model, data_prop=True, strict=False)
        try:
            self._engine.run()
            self.ok = True
        except Exception:  # noqa: BLE001 - inference is an aid here; without it, no facts
            self.ok = False
        finally:
            for v, t in zip(values, declared):
                self._types[id(v)] = v.type
                v.type = t
            for g, vi in listed:
                g.value_info = vi

    def _known(self, v: Value | None) -> bool:
        return v is not None and self.ok and id(v) in self._types

    def type(self, v: Value | None) -> Type | None:
        """The inferred (or declared) type of ``v``."""
        if self._known(v):
            return self._types[id(v)]
        return v.type if v is not None else None

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
        return self._read(v, "partial_of")

    def value(self, v: Value | None) -> np.ndarray | None:
        """The value of ``v`` when every element is known."""
        return self._read(v, "value_of")

    def _read(self, v: Value | None, how: str) -> Any:
        if not self._known(v):
            return None
        # the engine reads the element type of a computed shape from the value's type: give it
        # the inferred one while it reads
        declared = v.type  # type: ignore[union-attr]
        v.type = self._types[id(v)]  # type: ignore[union-attr]
        try:
            return getattr(self._engine, how)(v)
        finally:
            v.type = declared  # type: ignore[union-attr]


def _graphs_of(graph: Graph) -> list[Graph]:
    graphs = [graph]
    for g in graphs:  # (grows while it is walked: every nested graph once)
        for n in g.nodes:
            graphs.extend(n.subgraphs())
    return graphs


def _values_of(graph: Graph) -> list[Value]:
    """Every value of ``graph`` and its subgraphs, each once: inputs, initializers, node inputs
    and outputs, outputs and value_info."""
    seen: dict[int, Value] = {}
    for g in _graphs_of(graph):
        for v in (*g.inputs, *g.initializers.values(), *g.outputs, *g.value_info):
            seen.setdefault(id(v), v)
        for n in g.nodes:
            for v in (*n.inputs, *n.outputs):
                if v is not None:
                    seen.setdefault(id(v), v)
    return list(seen.values())


def same_shape(a: tuple[Dim, ...] | None, b: tuple[Dim, ...] | None) -> bool:
    """Whether two inferred shapes are provably equal: same rank, every dim the same int or the
    same symbol (no unknown dim)."""
    if a is None or b is None or len(a) != len(b):
        return False
    return all(x is not None and x == y for x, y in zip(a, b))
