"""Shape folding: ``Shape(x)`` and ``Size(x)`` of a tensor whose declared shape is fully static
become constants, so that the shape arithmetic after them folds too (constant folding).

Only shapes with every dimension an integer are used: a symbolic dimension (``batch``) may take
any value at run time. Feeds are checked against the declared shapes of graph inputs before any
kernel runs, so a folded input shape cannot disagree with the data.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Graph, Model, TensorType
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import (
    attr, is_standard, new_initializer, protected_values, replace_uses, unique_name,
)

__all__ = ["FoldShapes"]


class FoldShapes(GraphPass):
    """``Shape(x)`` with static ``x.shape`` -> constant int64 vector (``start``/``end``
    applied); ``Size(x)`` -> constant int64 scalar."""

    name = "fold_shapes"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        modified = False
        for node in list(graph.nodes):
            if node.graph is not graph or not is_standard(node) \
                    or node.op_type not in ("Shape", "Size") or len(node.inputs) != 1:
                continue
            x, y = node.inputs[0], node.outputs[0]
            t = getattr(x, "type", None)
            if id(y) in keep or not y.uses or not isinstance(t, TensorType) or t.shape is None \
                    or not all(isinstance(d, int) and d >= 0 for d in t.shape):
                continue
            dims = [int(d) for d in t.shape]
            if node.op_type == "Size":
                value = np.array(int(np.prod(dims, dtype=np.int64)), np.int64)  # Size(x) -> numel
            else:
                value = np.array(_slice(dims, attr(node, "start", 0), attr(node, "end")),
                                 np.int64)  # Shape(x) -> dims(x)[start:end]
            c = new_initializer(graph, unique_name(model, y.name or "shape"), value)
            replace_uses(y, c)
            modified = True
        return modified


def _slice(dims: list[int], start: object, end: object) -> list[int]:
    r = len(dims)
    s = int(start) if start is not None else 0  # type: ignore[call-overload]
    e = int(end) if end is not None else r  # type: ignore[call-overload]
    s = min(max(s + r if s < 0 else s, 0), r)
    e = min(max(e + r if e < 0 else e, 0), r)
    return dims[s:e]
