"""Conv + BatchNormalization (inference) -> Conv with scaled weights and a shifted bias.

BatchNormalization in inference mode is per-channel affine: ``y = a * x + c`` with
``a = scale / sqrt(var + epsilon)`` and ``c = B - mean * a``. Applied to a convolution's output,
it folds into the convolution: ``W'[m] = a[m] * W[m]``, ``B'[m] = a[m] * (Bconv[m] - mean[m])
+ B[m]``. The new parameters are computed in float64 and stored in the weight's type.

When the parameters are not constants but are computed only from initializers that a feed may
override (graph inputs with an initializer, as in IR version 3 models), the fold cannot happen at
session creation; the pass then inserts a ``pyonnx::FoldBatchNormIntoConv`` node computing
``(W', B')`` from them. Its inputs being semi-constant, the plan computes it once and reuses the
result while no such input is fed, and recomputes it on every run that feeds one.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node, Tensor, Value
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import (
    FUSED_DOMAIN, attr, constant_of, graph_inputs, inference_batch_norm, insert_node, is_standard,
    new_initializer, protected_values, schema_of, single_consumer, unique_name,
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
            if not inference_batch_norm(bn):
                continue
            w = constant_of(conv.inputs[1], inputs)
            b = constant_of(conv.inputs[2], inputs) if len(conv.inputs) > 2 and \
                conv.inputs[2] is not None else None
            params = [constant_of(v, inputs) for v in bn.inputs[1:5]]
            has_b = len(conv.inputs) > 2 and conv.inputs[2] is not None
            if w is None or (has_b and b is None) or any(p is None for p in params):
                if self._fold_at_run(graph, model, conv, bn):
                    modified = True
                continue
            if w.dtype.kind != "f" or w.ndim < 3 or len(params) != 4:
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


    def _fold_at_run(self, graph: Graph, model: Model, conv: Node, bn: Node) -> bool:
        """``BN(Conv(x, W, b), s, B, m, v) -> Conv(x, *FoldBatchNormIntoConv(W, b, s, B, m, v))``
        when every parameter is semi-constant (computed from initializers only)."""
        memo: dict[int, bool] = {}
        params = [conv.inputs[1]] + ([conv.inputs[2]] if len(conv.inputs) > 2 else []) \
            + list(bn.inputs[1:5])
        if not all(v is None or _semi_constant(v, model, memo) for v in params):
            return False
        b = conv.inputs[2] if len(conv.inputs) > 2 else None
        base = conv.name or "conv"
        w2 = Value(unique_name(model, base + "_bn_W"))
        b2 = Value(unique_name(model, base + "_bn_B"))
        eps = float(attr(bn, "epsilon", 1e-5))  # type: ignore[arg-type]
        fold = Node("FoldBatchNormIntoConv", [conv.inputs[1], b] + list(bn.inputs[1:5]),
                    [w2, b2], domain=FUSED_DOMAIN, name=unique_name(model, base + "_bn_fold"),
                    attributes=[Attribute("epsilon", AttributeType.FLOAT, eps)])
        insert_node(graph, fold, conv)
        out = bn.outputs[0]
        graph.remove(bn)
        fused = Node("Conv", [conv.inputs[0], w2, b2], [out], domain=conv.domain,
                     name=conv.name, attributes=list(conv.attributes.values()),
                     doc_string=conv.doc_string)
        insert_node(graph, fused, conv)
        graph.remove(conv)
        model.opset_imports.setdefault(FUSED_DOMAIN, 1)
        return True


def _semi_constant(v: Value, model: Model, memo: dict[int, bool]) -> bool:
    """Whether ``v`` is an initializer (overridable or not) or computed from initializers only
    by deterministic standard nodes without subgraphs."""
    got = memo.get(id(v))
    if got is not None:
        return got
    memo[id(v)] = False  # cycles cannot occur in a valid graph; this guards a broken one
    p = v.producer
    if p is None:
        ok = isinstance(v.const_value, Tensor)
    else:
        schema = schema_of(model, p) if is_standard(p) else None
        ok = (schema is not None and schema.node_determinism == "deterministic"
              and not any(True for _ in p.subgraphs())
              and all(i is None or _semi_constant(i, model, memo) for i in p.inputs))
    memo[id(v)] = ok
    return ok
