"""Conv or BatchNormalization followed by Mul or Add with a per-channel constant -> the same node
with scaled weights or a shifted bias.

Models converted from Caffe2 and older exporters spell BatchNormalization's affine part as a
``Mul`` by a channel scale and an ``Add`` of a channel shift after the convolution (inception_v2
and densenet121 of the onnx model zoo do, 69 and 121 times). Both are per-channel affine maps, so
they fold into the convolution as BatchNormalization does: ``Conv(x, W, B) * s = Conv(x, W * s,
B * s)`` and ``Conv(x, W, B) + t = Conv(x, W, B + t)``, computed in float64 and stored in the
weight's type (onnxruntime's ConvMulFusion and ConvAddFusion do the same at its basic level).

An inference-mode BatchNormalization is a per-channel affine map too, so a Mul or Add after it
(densenet121 has 62 BatchNormalization-Mul-Add chains on concatenated features) folds into its
scale and B the same way: ``BN(x, s, B, mean, var) * k + t = BN(x, s * k, B * k + t, mean,
var)``.

The constant must broadcast along the channels only, never widening the result: after padding
its shape on the left to the output's rank (that of W for a Conv; for a BatchNormalization, the
rank its input is known to have), it is 1 everywhere except, optionally, the number of channels
on axis 1.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Graph, Model, Node, TensorType, Value
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import (
    constant_of, graph_inputs, inference_batch_norm, insert_node, is_standard, new_initializer,
    protected_values, since_version, single_consumer, unique_name,
)

__all__ = ["FoldConvAffine"]


class FoldConvAffine(GraphPass):
    """``Mul(Conv(x, W, b), s) -> Conv(x, W * s, b * s)``; ``Add(Conv(x, W, b), t) ->
    Conv(x, W, b + t)`` (either operand order) for per-channel constants ``s`` and ``t``; the
    same for an inference BatchNormalization's scale and B."""

    name = "fold_conv_affine"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for node in list(graph.nodes):
            # a chain Conv -> Mul -> Add folds step by step into the node each fold creates
            while node is not None and node.graph is graph:
                if node.op_type == "BatchNormalization":
                    node = self._fold_into_bn(graph, model, node, keep, inputs)
                else:
                    node = self._fold_next(graph, model, node, keep, inputs)
                modified = modified or node is not None
        return modified

    @staticmethod
    def _fold_into_bn(graph: Graph, model: Model, bn: Node, keep: set[int],
                      inputs: set[int]) -> Node | None:
        """Fold the Mul or Add after an inference BatchNormalization into its scale and B;
        the new BatchNormalization, or None."""
        if not is_standard(bn) or not inference_batch_norm(bn):
            return None
        scale, bias = (constant_of(v, inputs) for v in bn.inputs[1:3])
        if scale is None or bias is None or scale.dtype.kind != "f" or bias.dtype != scale.dtype \
                or scale.ndim != 1 or bias.shape != scale.shape:
            return None
        rank = known_rank(bn.inputs[0], inputs, {})
        if rank is None or rank < 2:
            return None
        found = _affine_consumer(graph, model, bn, keep, inputs, scale.shape[0], rank,
                                 scale.dtype)
        if found is None:
            return None
        op, vec = found
        s64, b64 = scale.astype(np.float64), bias.astype(np.float64)
        if op.op_type == "Mul":
            s2, b2 = (s64 * vec).astype(scale.dtype), (b64 * vec).astype(scale.dtype)
        else:
            s2, b2 = scale, (b64 + vec).astype(scale.dtype)
        base = bn.name or "bn"
        sv = new_initializer(graph, unique_name(model, base + "_scale"), s2) \
            if op.op_type == "Mul" else bn.inputs[1]
        bv = new_initializer(graph, unique_name(model, base + "_B"), b2)
        out = op.outputs[0]
        graph.remove(op)
        folded = Node("BatchNormalization", [bn.inputs[0], sv, bv] + list(bn.inputs[3:5]),
                      [out], domain=bn.domain, name=bn.name,
                      attributes=list(bn.attributes.values()), doc_string=bn.doc_string)
        insert_node(graph, folded, bn)
        graph.remove(bn)
        return folded

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
        found = _affine_consumer(graph, model, conv, keep, inputs, m, w.ndim, w.dtype)
        if found is None:
            return None
        op, vec = found
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


def _affine_consumer(graph: Graph, model: Model, node: Node, keep: set[int], inputs: set[int],
                     m: int, rank: int, dtype: np.dtype) -> tuple[Node, np.ndarray] | None:
    """The Mul or Add that alone reads ``node``'s output, with a per-channel constant of ``dtype``
    for an output of ``rank`` with ``m`` channels, and that constant as M float64 values."""
    y = node.outputs[0]
    op = single_consumer(y, keep)
    if op is None or op.graph is not graph or op.op_type not in ("Mul", "Add") \
            or not is_standard(op) or len(op.inputs) != 2 or since_version(model, op) < 7:
        return None  # Mul/Add before version 7 broadcast by their legacy attributes
    other = op.inputs[1] if op.inputs[0] is y else op.inputs[0]
    if other is y:
        return None
    vec = _per_channel(constant_of(other, inputs), m, rank, dtype)
    return None if vec is None else (op, vec)


# Operators whose output has the rank of their (first) input, and those whose output rank is the
# largest of their inputs' (broadcasting), for ``known_rank``.
_SAME_RANK = {"Relu", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool",
              "GlobalMaxPool", "LRN", "Identity", "Dropout", "Sigmoid", "Tanh", "LeakyRelu",
              "Clip", "Concat", "Softmax", "InstanceNormalization", "Pad"}
_BROADCAST = {"Add", "Mul", "Sub", "Div", "Sum", "Max", "Min"}


def known_rank(v: Value | None, inputs: set[int], memo: dict[int, int | None],
               depth: int = 0) -> int | None:
    """The rank ``v`` certainly has (declared type, a constant, or what its producer implies
    from its own inputs' known ranks), or None. Exact when it answers."""
    if v is None or depth > 64:
        return None
    if id(v) in memo:
        return memo[id(v)]
    memo[id(v)] = None
    t = v.type
    rank: int | None = None
    if isinstance(t, TensorType) and t.shape is not None:
        rank = len(t.shape)
    elif v.producer is None:
        c = constant_of(v, inputs)
        rank = None if c is None else c.ndim
    else:
        p = v.producer
        if is_standard(p) and v is p.outputs[0]:
            if p.op_type == "Conv" and len(p.inputs) > 1:
                w = constant_of(p.inputs[1], inputs)
                rank = None if w is None else w.ndim
            elif p.op_type in _SAME_RANK and p.inputs:
                rank = known_rank(p.inputs[0], inputs, memo, depth + 1)
            elif p.op_type in _BROADCAST and p.inputs and not p.attributes:
                ranks = [known_rank(i, inputs, memo, depth + 1) for i in p.inputs]
                known = [r for r in ranks if r is not None]
                rank = max(known) if len(known) == len(ranks) else None
    memo[id(v)] = rank
    return rank


def _per_channel(c: np.ndarray | None, m: int, rank: int, dtype: np.dtype) -> np.ndarray | None:
    """The constant as M float64 values, one per output channel, or None when it is not a
    per-channel (or uniform) constant of the weight's type for an output of ``rank``."""
    if c is None or c.dtype != dtype or c.ndim > rank:
        return None
    shape = (1,) * (rank - c.ndim) + tuple(c.shape)
    if shape[0] != 1 or shape[1] not in (1, m) or any(d != 1 for d in shape[2:]):
        return None
    return np.broadcast_to(np.asarray(c, np.float64).reshape(-1), (m,)).copy()
