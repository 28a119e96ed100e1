"""Shape-subgraph elimination with symbolic dims.

Exporters compute target shapes at run time (``Shape -> Gather -> Unsqueeze -> Concat ->
Reshape``) even where shape inference proves them from the graph inputs' declared dims, most of
which are symbolic (``batch``, ``seq``). With the facts of :class:`~pyonnx.optimizer._facts.Facts`:

* a small integer tensor whose every element is known (``[-1, 197, 64]`` sliced out of the shape
  of a ``[batch, 3, 197, 64]`` value) becomes a constant;
* a Reshape whose target is known up to symbols gets a constant target: a symbol equal to the
  input's dim at the same position becomes ``0`` (copy that dim), one remaining symbol ``-1``
  (the size that makes the element counts agree);
* a Reshape or Expand whose output provably has its input's shape is dropped.

Feeds are checked against the declared dims of graph inputs before any kernel runs, so what is
proved from them holds for every accepted run. Dead-code elimination removes the shape
computations nothing reads any more.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node
from pyonnx.optimizer._facts import Facts, same_shape
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import (
    attr, constant_of, graph_inputs, is_standard, new_initializer, protected_values,
    replace_uses, since_version, unique_name,
)

__all__ = ["EliminateShapeSubgraphs"]

#: Largest integer tensor turned into a constant (elements): shapes, indices, axes.
MAX_ELEMENTS = 64


class EliminateShapeSubgraphs(FactsPass):
    """Known shape values -> constants; ``Reshape(x, s)`` with ``s`` known up to symbols ->
    ``Reshape(x, c)``; ``Reshape/Expand(x, s)`` of ``x``'s own shape -> ``x``."""

    name = "eliminate_shape_subgraphs"

    requires_facts = True

    def rewrite(self, graph: Graph, model: Model) -> bool:
        facts = self.facts
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for node in list(graph.nodes):
            if node.graph is not graph or not is_standard(node):
                continue
            if node.op_type in ("Reshape", "Expand") and len(node.inputs) == 2 \
                    and node.inputs[0] is not None and node.inputs[1] is not None:
                x, y = node.inputs[0], node.outputs[0]
                if id(y) not in keep and y.uses \
                        and same_shape(facts.shape(x), facts.shape(y)) \
                        and _same_elem(facts.type(x), facts.type(y)):
                    replace_uses(y, x)  # Reshape/Expand(x, shape(x)) -> x
                    modified = True
                    continue
                if node.op_type == "Reshape" and since_version(model, node) >= 5 \
                        and constant_of(node.inputs[1], inputs) is None \
                        and self._constant_target(node, model, facts):
                    modified = True
                    continue
            for v in node.outputs:
                if not v.uses or id(v) in keep or node.op_type == "Constant":
                    continue
                value = facts.value(v)
                if value is None or value.dtype.kind not in "iu" or value.ndim > 1 \
                        or value.size > MAX_ELEMENTS:
                    continue
                c = new_initializer(graph, unique_name(model, v.name or "shape"),
                                    np.array(value))
                replace_uses(v, c)  # shape arithmetic whose result is known -> constant
                modified = True
        return modified

    def _constant_target(self, node: Node, model: Model, facts: Facts) -> bool:
        dims = facts.partial(node.inputs[1])
        if dims is None or any(d is None for d in dims):
            return False
        allowzero = int(attr(node, "allowzero", 0) or 0)  # type: ignore[arg-type]
        literal_zero = any(isinstance(d, int) and d == 0 for d in dims)
        # with allowzero=1 a 0 is a zero-size dim: "copy" entries need allowzero=0, which is
        # only the same Reshape when no entry is a literal 0
        may_copy = allowzero == 0 or not literal_zero
        have_minus_one = any(isinstance(d, int) and d == -1 for d in dims)
        xs = facts.shape(node.inputs[0])
        target: list[int] = []
        copied = False
        for i, d in enumerate(dims):
            if isinstance(d, int):
                target.append(d)
            elif may_copy and xs is not None and i < len(xs) and xs[i] == d:
                target.append(0)  # the same symbol as the input's dim i: copy it
                copied = True
            elif not have_minus_one:
                target.append(-1)  # the one remaining unknown: inferred from the sizes
                have_minus_one = True
            else:
                return False
        new_allowzero = 0 if copied else allowzero
        c = new_initializer(node.graph, unique_name(model, f"{node.outputs[0].name}_shape"),
                            np.array(target, np.int64))
        # Reshape(x, Concat(Shape(x)[0], ...)) -> Reshape(x, [0, ...])
        node.set_input(1, c)
        if "allowzero" in node.attributes or new_allowzero:
            node.attributes["allowzero"] = Attribute("allowzero", AttributeType.INT,
                                                     new_allowzero)
        return True


def _same_elem(a: object, b: object) -> bool:
    ea, eb = getattr(a, "elem_type", None), getattr(b, "elem_type", None)
    return ea is not None and ea == eb

