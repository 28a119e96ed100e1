"""Conv followed by Mul or Add with a per-output-channel constant -> Conv with scaled weights or
a shifted bias.

Models converted from Caffe2 and older exporters spell BatchNormalization's affine part as a
``Mul`` by a channel scale and an ``Add`` of a channel shift after the convolution (inception_v2
and densenet121 of the onnx model zoo do, 69 and 121 times). Both are per-channel affine maps, so
they fold into the convolution as BatchNormalization does: ``Conv(x, W, B) * s = Conv(x, W * s,
B * s)`` and ``Conv(x, W, B) + t = Conv(x, W, B + t)``, computed in float64 and stored in the
weight's type (onnxruntime's ConvMulFusion and ConvAddFusion do the same at its basic level).

The constant must broadcast along the output channels only, never widening the result: after
padding its shape on the left to the output's rank (that of W), it is 1 everywhere except,
optionally, M (the number of output channels) on the channel axis.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Graph, Model, Node
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import (
    constant_of, graph_inputs, insert_node, is_standard, new_initializer, protected_values,
    since_version, single_consumer, unique_name,
)

__all__ = ["FoldConvAffine"]


class FoldConvAffine(GraphPass):
    """``Mul(Conv(x, W, b), s) -> Conv(x, W * s, b * s)``; ``Add(Conv(x, W, b), t) ->
    Conv(x, W, b + t)`` (either operand order) for per-channel constants ``s`` and ``t``."""

    name = "fold_conv_affine"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for conv in list(graph.nodes):
            # a chain Conv -> Mul -> Add folds step by step into the Conv each fold creates
            while conv is not None and conv.graph is graph:
                conv = self._fold_next(graph, model, conv, keep, inputs)
                modified = modified or conv is not None
        return modified

    @staticmethod
    def _fold_next(graph: Graph, model: Model, conv: Node, keep: set[int],
                   inputs: set[int]) -> Node | None:
        """Fold the Mul or Add after ``conv`` into it; the new Conv, or None."""
        if conv.op_type != "Conv" or not is_standard(conv) or len(conv.outputs) != 1:
            return None
        w = constant_of(conv.inputs[1], inputs)
        has_b = len(conv.inputs) > 2 and conv.inputs[2] is not None
        b = constant_of(conv.inputs[2], inputs) if has_b else None
        if w is None or w.dtype.kind != "f" or w.ndim < 3 or (has_b and b is None):
            return None
        m = w.shape[0]
        if b is not None and b.shape != (m,):
            return None
        y = conv.outputs[0]
        op = single_consumer(y, keep)
        if op is None or op.graph is not graph or op.op_type not in ("Mul", "Add") \
                or not is_standard(op) or len(op.inputs) != 2 or since_version(model, op) < 7:
            return None  # Mul/Add before version 7 broadcast by their legacy attributes
        other = op.inputs[1] if op.inputs[0] is y else op.inputs[0]
        if other is y:
            return None
        c = constant_of(other, inputs)
        vec = _per_channel(c, m, w.ndim, w.dtype)
        if vec is None:
            return None
        b64 = b.astype(np.float64) if b is not None else np.zeros(m)
        if op.op_type == "Mul":
            w2 = (w.astype(np.float64) * vec.reshape((m,) + (1,) * (w.ndim - 1))).astype(w.dtype)
            wv = new_initializer(graph, unique_name(model, (conv.inputs[1].name or "W") + "_mul"),
                                 w2)
            b2 = (b64 * vec).astype(w.dtype) if b is not None else None
        else:
            wv = conv.inputs[1]
            b2 = (b64 + vec).astype(w.dtype)
        new_inputs = [conv.inputs[0], wv]
        if b2 is not None:
            new_inputs.append(new_initializer(
                graph, unique_name(model, (conv.name or "conv") + "_" + op.op_type.lower()
                                   + "_bias"), b2))
        out = op.outputs[0]
        graph.remove(op)  # its output becomes the output of the new Conv
        folded = Node("Conv", new_inputs, [out], domain=conv.domain, name=conv.name,
                      attributes=list(conv.attributes.values()), doc_string=conv.doc_string)
        insert_node(graph, folded, conv)
        graph.remove(conv)
        return folded


def _per_channel(c: np.ndarray | None, m: int, rank: int, dtype: np.dtype) -> np.ndarray | None:
    """The constant as M float64 values, one per output channel, or None when it is not a
    per-channel (or uniform) constant of the weight's type for an output of ``rank``."""
    if c is None or c.dtype != dtype or c.ndim > rank:
        return None
    shape = (1,) * (rank - c.ndim) + tuple(c.shape)
    if shape[0] != 1 or shape[1] not in (1, m) or any(d != 1 for d in shape[2:]):
        return None
    return np.broadcast_to(np.asarray(c, np.float64).reshape(-1), (m,)).copy()
