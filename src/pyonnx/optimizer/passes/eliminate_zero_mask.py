"""Adding a mask that is provably zero: ``Add(x, Where(all_true, 0, c))`` is ``x`` when the
condition is a constant of all true (or an Expand of one) and the sum has x's own shape (the
mask does not widen it). Exporters write such masks for models without padding (ViT's
attention). ``x + 0`` equals ``x`` exactly, except that -0.0 becomes +0.0.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Graph, Model, Value
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._facts import Facts, same_shape
from pyonnx.optimizer._rewrite import (
    constant_of, graph_inputs, is_standard, protected_values, replace_uses,
)
from pyonnx.optimizer.passes._match import made_by

__all__ = ["EliminateZeroMask"]


class EliminateZeroMask(GraphPass):
    """``Add(x, Where(true, 0, c)) -> x`` (no broadcast beyond x's shape)."""

    name = "eliminate_zero_mask"

    def call(self, model: Model) -> bool:
        self._facts = Facts(model)
        try:
            return super().call(model) if self._facts.ok else False
        finally:
            del self._facts

    def rewrite(self, graph: Graph, model: Model) -> bool:
        facts = self._facts
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for add in list(graph.nodes):
            if add.graph is not graph or add.op_type != "Add" or not is_standard(add) \
                    or len(add.inputs) != 2 or "broadcast" in add.attributes:
                continue
            y = add.outputs[0]
            if id(y) in keep or not y.uses:
                continue
            for x, m in (add.inputs, add.inputs[::-1]):
                if x is None or m is None or x is m:
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


def _all_true(v: Value | None, inputs: set[int]) -> bool:
    c = constant_of(v, inputs)
    if c is not None:
        return c.dtype == np.bool_ and bool(np.all(c))
    expand = made_by(v, "Expand")
    if expand is not None:
        c = constant_of(expand.inputs[0], inputs)
        return c is not None and c.dtype == np.bool_ and bool(np.all(c))
    return False
