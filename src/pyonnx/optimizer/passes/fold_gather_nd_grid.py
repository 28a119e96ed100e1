"""``GatherND`` at a full grid of coordinates -> ``Unsqueeze`` (basic level, standard ops).

torch's exporter writes the masks it builds with ``vmap`` (the causal and packed-sequence masks
of Hugging Face models) as GatherND of a ``[B, S]`` tensor at index grids::

    i = Concat(Unsqueeze(Expand(b, shape), -1), Unsqueeze(Expand(q, shape), -1), axis=-1)
    y = GatherND(t, i)                  # y[b, 0, q, 0] = t[b, q]

with ``b`` and ``q`` coordinates (``Range(0, n, 1)`` placed on an axis by Unsqueeze, broadcast
by Expand). When the grid's axes run over all of ``t``'s axes, in order, each spanning exactly
``t``'s dim there, and every other output axis has size 1, the gather reads every element of
``t`` once in place, and ``y`` is ``t`` with unit axes inserted: ``Unsqueeze(t, others)``. The
grid's construction (Max, Shape, Expand, Unsqueeze, Concat) then goes as dead code. The axes'
sizes come from shape inference (the same int or symbol).
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import (
    graph_inputs, insert_node, is_standard, new_initializer, since_version, unique_name,
)
from pyonnx.optimizer.passes._coordinates import grid_axes, same_dims

__all__ = ["FoldGatherNDGrid"]


class FoldGatherNDGrid(FactsPass):
    """``GatherND(t, grid over t's axes) -> Unsqueeze(t, the other axes)``."""

    name = "fold_gather_nd_grid"
    anchors = frozenset({"GatherND"})
    requires_facts = True

    def rewrite(self, graph: Graph, model: Model) -> bool:
        facts = self.facts
        assert facts is not None
        inputs = graph_inputs(model)
        modified = False
        for node in list(graph.nodes):
            if node.graph is not graph or node.op_type != "GatherND" or not is_standard(node) \
                    or len(node.inputs) != 2 or None in node.inputs or len(node.outputs) != 1 \
                    or since_version(model, node) < 11:
                continue
            data, y = node.inputs[0], node.outputs[0]
            sd, sy = facts.shape(data), facts.shape(y)
            axes = grid_axes(node, graph, facts, inputs)
            if axes is None or sd is None or sy is None or len(axes) != len(sd) \
                    or len(sy) < len(sd):
                continue
            pos = [len(sy) + a for a in axes]
            if any(p < 0 for p in pos) or pos != sorted(set(pos)) \
                    or not all(same_dims(sy[p], d) for p, d in zip(pos, sd)):
                continue
            others = [p for p in range(len(sy)) if p not in pos]
            if any(sy[p] != 1 for p in others):
                continue
            # GatherND(t, grid) -> Unsqueeze(t, others): each element of t read once in place
            if others and _opset(model) >= 13:
                ax = new_initializer(graph, unique_name(model, f"{y.name}_axes"),
                                     np.array(others, np.int64))
                new = Node("Unsqueeze", [data, ax], [y], name=node.name)
            elif others:  # axes as an attribute before opset 13
                new = Node("Unsqueeze", [data], [y], name=node.name,
                           attributes=[Attribute("axes", AttributeType.INTS, others)])
            else:
                new = Node("Identity", [data], [y], name=node.name)
            insert_node(graph, new, node)
            node.outputs = []
            graph.remove_many([node])
            modified = True
        return modified


def _opset(model: Model) -> int:
    return int(model.opset_imports.get("", model.opset_imports.get("ai.onnx", 1)))
