"""Neutral elements: adding zeros or multiplying by ones, where the result has x's own shape (the
other operand does not widen it):

* ``Add(x, 0)``, ``Sub(x, 0)``, ``Mul(x, 1)``, ``Div(x, 1)`` with a constant 0 or 1 (zero
  biases of freshly initialized layers);
* ``Mul(x, 0)`` for an integer x: zeros (silero-vad multiplies its sample-rate input by 0);
* ``Add(x, Where(all_true, 0, c))``: a mask that is provably zero, the condition being a
  constant of all true or an Expand of one (exporters write such masks for models without
  padding, as ViT's attention).

``x + 0`` equals ``x`` exactly, except that -0.0 becomes +0.0.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Graph, Model, Node, Value
from pyonnx.optimizer._facts import Facts, same_shape
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import (
    constant_of, graph_inputs, is_standard, new_initializer, protected_values, replace_uses,
    unique_name,
)
from pyonnx.optimizer.passes._match import made_by

__all__ = ["EliminateZeroMask"]


class EliminateZeroMask(FactsPass):
    """``x + 0 -> x``, ``x * 1 -> x``, ``Add(x, Where(true, 0, c)) -> x`` (no broadcast beyond
    x's shape)."""

    name = "eliminate_zero_mask"
    anchors = frozenset({"Add", "Sub", "Mul", "Div"})

    requires_facts = True

    def rewrite(self, graph: Graph, model: Model) -> bool:
        facts = self.facts
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for add in list(graph.nodes):
            if add.graph is not graph or add.op_type not in ("Add", "Sub", "Mul", "Div") \
                    or not is_standard(add) \
                    or len(add.inputs) != 2 or "broadcast" in add.attributes:
                continue
            y = add.outputs[0]
            if add.op_type == "Mul" and self._integer_times_zero(graph, model, add, facts,
                                                                 keep, inputs):
                modified = True
                continue
            # a graph output of this graph can be bypassed as well: x takes over its place
            # and its name (below), when x is an unprotected value computed in this graph
            as_output = id(y) in keep and any(o is y for o in graph.outputs) \
                and not any(i is y for i in graph.inputs)
            if (id(y) in keep and not as_output) or (not y.uses and not as_output):
                continue
            pairs = [tuple(add.inputs)] if add.op_type in ("Sub", "Div") else \
                [tuple(add.inputs), tuple(add.inputs[::-1])]
            for x, m in pairs:
                if x is None or m is None or x is m:
                    continue
                neutral = 0.0 if add.op_type in ("Add", "Sub") else 1.0
                c = constant_of(m, inputs)
                if c is not None and c.dtype.kind == "f" and np.all(c == neutral) \
                        and _same_type(x, y, facts) \
                        and (c.ndim == 0 or same_shape(facts.shape(x), facts.shape(y))):
                    # (a rank-0 operand never widens x, whatever x's shape is)
                    if as_output and not _takes_over(graph, x, y, keep):
                        continue
                    replace_uses(y, x)  # x + 0 -> x, x * 1 -> x
                    modified = True
                    break
                if add.op_type != "Add":
                    continue
                where = made_by(m, "Where", graph)
                if where is None or not _all_true(where.inputs[0], inputs):
                    continue
                zero = constant_of(where.inputs[1], inputs)
                if zero is None or zero.dtype.kind != "f" or np.any(zero != 0):
                    continue
                if not same_shape(facts.shape(x), facts.shape(y)):
                    continue
                if as_output and not _takes_over(graph, x, y, keep):
                    continue
                replace_uses(y, x)  # x + 0 -> x
                modified = True
                break
        return modified


    @staticmethod
    def _integer_times_zero(graph: Graph, model: Model, mul: Node, facts: Facts,
                            keep: set[int], inputs: set[int]) -> bool:
        """``Mul(x, 0)`` for an integer x -> a constant of zeros (exact: an integer times zero
        is zero, with no NaN or infinity to propagate), when the product's shape is static."""
        y = mul.outputs[0]
        if id(y) in keep or not y.uses:
            return False
        for x, m in (tuple(mul.inputs), tuple(mul.inputs[::-1])):
            c = constant_of(m, inputs)
            if x is None or c is None or c.dtype.kind not in "iu" or np.any(c != 0):
                continue
            t = facts.type(y)
            shape = facts.shape(y)
            if getattr(t, "elem_type", None) is None or shape is None \
                    or not all(isinstance(d, int) for d in shape) \
                    or t.elem_type.numpy != c.dtype:  # type: ignore[union-attr]
                continue
            zeros = np.zeros(tuple(int(d) for d in shape), c.dtype)
            z = new_initializer(graph, unique_name(model, (y.name or "mul") + "_zeros"), zeros)
            replace_uses(y, z)  # Mul(x: int, 0) -> 0
            return True
        return False


def _takes_over(graph: Graph, x: Value, y: Value, keep: set[int]) -> bool:
    """Make ``x`` (computed by a node of ``graph``, not itself protected) the graph output
    ``y`` was, under ``y``'s name; False when it cannot."""
    if id(x) in keep or x.producer is None or x.producer.graph is not graph or not y.name:
        return False
    x.name = y.name
    if y.type is not None:  # a graph output declares its type: the output's, x computes it
        x.type = y.type
    for i, o in enumerate(graph.outputs):
        if o is y:
            graph.replace_output(i, x)
    y.name = ""  # the bypassed Add's output (dead code now) gives its name up
    return True


def _same_type(x: Value, y: Value, facts: Facts) -> bool:
    tx, ty = facts.type(x), facts.type(y)
    return getattr(tx, "elem_type", None) is not None and \
        getattr(tx, "elem_type", None) == getattr(ty, "elem_type", None)


def _all_true(v: Value | None, inputs: set[int]) -> bool:
    c = constant_of(v, inputs)
    if c is not None:
        return c.dtype == np.bool_ and bool(np.all(c))
    expand = made_by(v, "Expand")
    if expand is not None:
        c = constant_of(expand.inputs[0], inputs)
        return c is not None and c.dtype == np.bool_ and bool(np.all(c))
    return False
