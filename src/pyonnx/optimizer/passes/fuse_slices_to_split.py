"""Slices that cut one axis of the same tensor into consecutive pieces -> one Split.

``Slice(x, 0, 129, axis 1)`` and ``Slice(x, 129, end, axis 1)`` on an axis of 258 are
``Split(x, [129, 129], axis 1)``: one node instead of one per piece (the STFT of silero-vad
splits its real and imaginary halves this way). Every piece must be a step-1 slice of that one
axis alone, the pieces must tile the whole axis in order without gap or overlap, and the axis
length must be known (Split states every piece's size); a slice running "to the end" may end the
tiling.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node
from pyonnx.optimizer._core import all_graphs
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import (
    graph_inputs, insert_node, is_standard, new_initializer, protected_values, since_version,
    unique_name,
)
from pyonnx.optimizer.passes.eliminate_no_ops import _slice_params

__all__ = ["FuseSlicesToSplit"]


class FuseSlicesToSplit(FactsPass):
    """``Slice(x, s_i, e_i, axis a)`` for pieces tiling axis ``a`` -> ``Split(x, axis a)``."""

    name = "fuse_slices_to_split"
    anchors = frozenset({"Slice"})
    requires_facts = True

    def applies(self, model: Model) -> bool:
        # a value read by two Slices at least: a cheap look before building the facts
        return any(sum(1 for r, _ in n.inputs[0].uses if r.op_type == "Slice") >= 2
                   for g in all_graphs(model.graph) for n in g.nodes
                   if n.op_type == "Slice" and n.inputs and n.inputs[0] is not None)

    def rewrite(self, graph: Graph, model: Model) -> bool:
        facts = self.facts
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        seen: set[int] = set()
        for node in list(graph.nodes):
            if node.graph is not graph or node.op_type != "Slice" or not is_standard(node) \
                    or node.inputs[0] is None or id(node.inputs[0]) in seen:
                continue
            x = node.inputs[0]
            seen.add(id(x))
            shape = facts.shape(x)
            if shape is None:
                continue
            # the pieces: Slice readers of x, grouped by the one axis each cuts
            by_axis: dict[int, list[tuple[int, int, Node]]] = {}
            for reader, index in x.uses:
                if index != 0 or reader.op_type != "Slice" or not is_standard(reader) \
                        or reader.graph is not graph or since_version(model, reader) < 10 \
                        or len(reader.outputs) != 1:
                    continue
                params = _slice_params(reader, inputs, len(shape))
                if params is None or len(params) != 1:
                    continue
                a, s, e, st = params[0]
                if st != 1 or a >= len(shape):
                    continue
                by_axis.setdefault(a, []).append((s, e, reader))
            for a, pieces in by_axis.items():
                if self._split(graph, model, x, a, shape[a], pieces):
                    modified = True
        return modified

    def _split(self, graph: Graph, model: Model, x: object, axis: int, dim: object,
               pieces: list[tuple[int, int, Node]]) -> bool:
        if len(pieces) < 2 or not isinstance(dim, int) or (model.opset("") or 0) < 2:
            return False
        pieces = sorted(pieces, key=lambda p: p[0])
        sizes = []
        at = 0
        for s, e, _node in pieces:
            e = min(e, dim)  # an end past the axis (INT64_MAX: "to the end") is clamped
            if s != at or e <= s:  # a gap, an overlap, a negative start or an empty piece
                return False
            sizes.append(e - s)
            at = e
        if at != dim:
            return False
        nodes = [p[2] for p in pieces]
        version = model.opset("") or 0
        attrs = [Attribute("axis", AttributeType.INT, axis)]
        ins = [x]
        if version >= 13:  # the sizes are an input from 13 on, an attribute before
            name = unique_name(model, (nodes[0].outputs[0].name or "split") + "_sizes")
            ins.append(new_initializer(graph, name, np.array(sizes, np.int64)))
        else:
            attrs.append(Attribute("split", AttributeType.INTS, sizes))
        first = min(nodes, key=graph.nodes.index)  # every piece's reader comes after it
        outs = [n.outputs[0] for n in nodes]
        split = Node("Split", ins, outs, name=first.name, attributes=attrs)
        insert_node(graph, split, first)
        graph.remove_many(nodes)
        for n in nodes:
            n.outputs = []
        return True
