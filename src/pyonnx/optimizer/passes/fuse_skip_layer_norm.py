"""com.microsoft SkipLayerNormalization: a residual Add (and the bias Add of the MatMul before
it) followed by a layer normalization over the last axis, as one onnxruntime operator::

    s = Add(Add(m, bias), skip); y = LayerNormalization(s, gamma, beta)
    -> y, _, _, s = SkipLayerNormalization(m, skip, gamma, beta, bias)

The layer normalization is the standard operator or its decomposed form (any opset; see
:func:`~pyonnx.optimizer.passes.fuse_layer_norm.match_layer_norm`). onnxruntime requires
rank-3 float inputs of one shape and 1-D parameters over the hidden axis; the sum ``s`` is the
fused node's fourth output when something else (the next residual) reads it.
"""

from __future__ import annotations

from pyonnx.ir import Attribute, AttributeType, DataType, Graph, Model, Node, TensorType, Value
from pyonnx.optimizer._facts import Facts, same_shape
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import (
    attr, constant_of, graph_inputs, insert_node, is_standard, protected_values, replace_uses,
)
from pyonnx.optimizer.passes._match import made_by, one_d, used_only_by
from pyonnx.optimizer.passes.fuse_layer_norm import layer_norm_params, match_layer_norm

__all__ = ["FuseSkipLayerNorm"]

MS = "com.microsoft"
_FLOATS = (DataType.FLOAT, DataType.FLOAT16)


class FuseSkipLayerNorm(FactsPass):
    """``LayerNorm(a + skip [+ bias])`` -> ``SkipLayerNormalization(a, skip, gamma, beta,
    bias)``."""

    name = "fuse_skip_layer_norm"
    anchors = frozenset({"LayerNormalization", "ReduceMean"})

    def rewrite(self, graph: Graph, model: Model) -> bool:
        facts = self.facts
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for node in list(graph.nodes):
            if node.graph is not graph or not is_standard(node):
                continue
            # the normalization: (input, gamma, beta, epsilon, nodes, out)
            if node.op_type == "LayerNormalization":
                if len(node.outputs) != 1 or int(attr(node, "axis", -1)) not in (-1, 2) \
                        or len(node.inputs) < 2:  # type: ignore[arg-type]
                    continue
                x = node.inputs[0]
                gamma_v = node.inputs[1]
                beta_v = node.inputs[2] if len(node.inputs) > 2 else None
                hidden = (facts.shape(x) or (None,))[-1]
                if not one_d(constant_of(gamma_v, inputs), hidden) or (
                        beta_v is not None and not one_d(constant_of(beta_v, inputs), hidden)):
                    continue
                eps = float(attr(node, "epsilon", 1e-5))  # type: ignore[arg-type]
                nodes, out = [node], node.outputs[0]
            elif node.op_type == "Div":
                match = match_layer_norm(node, model, facts, keep, inputs)
                if match is None:
                    continue
                x, eps, nodes, out = match.x, match.epsilon, match.nodes, match.out
                hidden = (facts.shape(x) or (None,))[-1]
                gamma_v = beta_v = None
            else:
                continue
            add = made_by(x, "Add", graph)
            if add is None or len(add.inputs) != 2 or any(v is None for v in add.inputs):
                continue
            a, skip = add.inputs
            shape = facts.shape(x)
            t = facts.type(x)
            if shape is None or len(shape) != 3 or not isinstance(hidden, int) \
                    or not isinstance(t, TensorType) or t.elem_type not in _FLOATS \
                    or not same_shape(facts.shape(a), shape) \
                    or not same_shape(facts.shape(skip), shape):
                continue
            # the sum's other readers (the next residual) read the fused node's sum output
            if not used_only_by([v for n in nodes[:-1] for v in n.outputs], nodes + [add], keep):
                continue
            x_readers_outside = [u for u in x.uses if u[0] not in nodes]
            if id(x) in keep:
                continue
            bias_node, bias_v = self._bias(a, skip, graph, keep, inputs, facts, hidden)
            if bias_node is not None:
                a = bias_node.inputs[0] if bias_node.inputs[1] is bias_v else bias_node.inputs[1]
            elif (b2 := self._bias(skip, a, graph, keep, inputs, facts, hidden))[0] is not None:
                bias_node, bias_v = b2
                skip = bias_node.inputs[0] if bias_node.inputs[1] is bias_v else \
                    bias_node.inputs[1]
            if gamma_v is None:
                params = layer_norm_params(match, graph, model, hidden, facts)
                if params is None:
                    continue
                gamma_v, beta_v = params
            ins: list[Value | None] = [a, skip, gamma_v, beta_v, bias_v]
            while ins[-1] is None:
                ins.pop()
            outs = [out, Value(""), Value(""),
                    Value(x.name, x.type) if x_readers_outside else Value("")]
            if not x_readers_outside:
                outs = outs[:1]
            fused = Node("SkipLayerNormalization", ins, outs, domain=MS, name=nodes[-1].name,
                         attributes=[Attribute("epsilon", AttributeType.FLOAT, eps)])
            # LayerNorm(a + skip + bias) -> SkipLayerNormalization(a, skip, gamma, beta, bias)
            insert_node(graph, fused, nodes[-1])
            if x_readers_outside:
                replace_uses(x, outs[3])
            doomed = nodes + [add] + ([bias_node] if bias_node is not None else [])
            graph.remove_many(doomed)
            model.opset_imports.setdefault(MS, 1)
            modified = True
        return modified

    def _bias(self, a: Value, other: Value, graph: Graph, keep: set[int], inputs: set[int],
              facts: Facts, hidden: int) -> tuple[Node | None, Value | None]:
        """``a = Add(m, bias)`` with a constant 1-D bias, read only by the residual Add."""
        node = made_by(a, "Add", graph)
        if node is None or id(a) in keep or len(a.uses) != 1 or len(node.inputs) != 2:
            return None, None
        for m, b in (node.inputs, node.inputs[::-1]):
            if m is None or b is None or m is other:
                continue
            if one_d(constant_of(b, inputs), hidden) and constant_of(m, inputs) is None \
                    and same_shape(facts.shape(m), facts.shape(a)):
                return node, b
        return None, None
