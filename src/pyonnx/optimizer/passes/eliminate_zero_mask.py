"""Neutral elements: adding zeros or multiplying by ones, where the result has x's own shape (the
other operand does not widen it):

* ``Add(x, 0)``, ``Sub(x, 0)``, ``Mul(x, 1)``, ``Div(x, 1)`` with a constant 0 or 1 (zero
  biases of freshly initialized layers);
* ``Add(x, Where(all_true, 0, c))``: a mask that is provably zero, the condition being a
  constant of all true or an Expand of one (exporters write such masks for models without
  padding, as ViT's attention).

``x + 0`` equals ``x`` exactly, except that -0.0 becomes +0.0.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Graph, Model, Value
from pyonnx.optimizer._facts import Facts, same_shape
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import (
    constant_of, graph_inputs, is_standard, protected_values, replace_uses,
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
            if id(y) in keep or not y.uses:
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
                        and same_shape(facts.shape(x), facts.shape(y)):
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
                replace_uses(y, x)  # x + 0 -> x
                modified = True
                break
        return modified


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
