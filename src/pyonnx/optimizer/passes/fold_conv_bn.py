"""Conv + BatchNormalization (inference) -> Conv with scaled weights and a shifted bias.

BatchNormalization in inference mode is per-channel affine: ``y = a * x + c`` with
``a = scale / sqrt(var + epsilon)`` and ``c = B - mean * a``. Applied to a convolution's output,
it folds into the convolution: ``W'[m] = a[m] * W[m]``, ``B'[m] = a[m] * (Bconv[m] - mean[m])
+ B[m]``. The new parameters are computed in float64 and stored in the weight's type.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Graph, Model, Node
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import (
    attr, constant_of, graph_inputs, insert_node, is_standard, new_initializer,
    protected_values, single_consumer, unique_name,
)

__all__ = ["FoldConvBatchNorm"]


class FoldConvBatchNorm(GraphPass):
    """``BatchNormalization(Conv(x, W, b), s, B, m, v) -> Conv(x, W * a, (b - m) * a + B)``."""

    name = "fold_conv_bn"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for conv in list(graph.nodes):
            if conv.graph is not graph or conv.op_type != "Conv" or not is_standard(conv):
                continue
            y = conv.outputs[0]
            bn = single_consumer(y, keep)
            if bn is None or bn.op_type != "BatchNormalization" or not is_standard(bn) \
                    or bn.graph is not graph or bn.inputs[0] is not y:
                continue
            if not _inference_bn(bn):
                continue
            w = constant_of(conv.inputs[1], inputs)
            b = constant_of(conv.inputs[2], inputs) if len(conv.inputs) > 2 and \
                conv.inputs[2] is not None else None
            if w is None or w.dtype.kind != "f" or w.ndim < 3 or (
                    len(conv.inputs) > 2 and conv.inputs[2] is not None and b is None):
                continue
            params = [constant_of(v, inputs) for v in bn.inputs[1:5]]
            if any(p is None for p in params) or len(params) != 4:
                continue
            m = w.shape[0]
            if any(p.size != m for p in params) or (b is not None and b.shape != (m,)):  # type: ignore[union-attr]
                continue
            scale, bias, mean, var = (np.asarray(p, np.float64).reshape(m) for p in params)  # type: ignore[arg-type]
            eps = float(attr(bn, "epsilon", 1e-5))  # type: ignore[arg-type]
            a = scale / np.sqrt(var + eps)
            w2 = (w.astype(np.float64) * a.reshape((m,) + (1,) * (w.ndim - 1))).astype(w.dtype)
            b0 = b.astype(np.float64) if b is not None else np.zeros(m)
            b2 = ((b0 - mean) * a + bias).astype(w.dtype)
            wv = new_initializer(graph, unique_name(model, (conv.inputs[1].name or "W") + "_bn"),
                                 w2)
            bv = new_initializer(graph, unique_name(model, (conv.name or "conv") + "_bn_bias"),
                                 b2)
            out = bn.outputs[0]
            graph.remove(bn)  # its Y becomes the output of the folded Conv
            fused = Node("Conv", [conv.inputs[0], wv, bv], [out], domain=conv.domain,
                         name=conv.name, attributes=list(conv.attributes.values()),
                         doc_string=conv.doc_string)
            insert_node(graph, fused, conv)
            graph.remove(conv)
            modified = True
        return modified


def _inference_bn(bn: Node) -> bool:
    """Whether a BatchNormalization node normalizes with its stored statistics only."""
    if len(bn.inputs) < 5 or any(v is None for v in bn.inputs[:5]):
        return False
    if attr(bn, "training_mode", 0):
        return False
    if "is_test" in bn.attributes and not attr(bn, "is_test", 0):
        return False
    if attr(bn, "spatial", 1) != 1:
        return False
    # the optional running-statistics outputs exist only in training mode
    return all(not v.name for v in bn.outputs[1:])
