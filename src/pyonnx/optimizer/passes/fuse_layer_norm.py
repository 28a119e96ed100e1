"""LayerNormalization from its decomposed form, as the TorchScript exporter writes it::

    m = ReduceMean(x, axes=[-1]); d = Sub(x, m); v = ReduceMean(Pow(d, 2), axes=[-1])
    y = Div(d, Sqrt(Add(v, eps)))  [* gamma]  [+ beta]

becomes ``LayerNormalization(x, gamma, beta, axis=-1, epsilon=eps)`` (opset 17 and later, where
the standard operator exists). :func:`match_layer_norm` is shared with the
SkipLayerNormalization fusion, which also takes the decomposed form in older opsets.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node, Value
from pyonnx.optimizer._facts import Facts
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import (
    attr, constant_of, graph_inputs, insert_node, is_standard, new_initializer,
    protected_values, since_version, unique_name,
)
from pyonnx.optimizer.passes._match import made_by, one_d, other_input, scalar, used_only_by

__all__ = ["FuseLayerNorm", "LayerNormMatch", "match_layer_norm"]


@dataclasses.dataclass
class LayerNormMatch:
    """A decomposed layer normalization over the last axis: ``out = LN(x) * gamma + beta``."""

    x: Value
    gamma: np.ndarray | None
    beta: np.ndarray | None
    epsilon: float
    nodes: list[Node]   # every node of the pattern, the last one computes ``out``
    out: Value


def _last_axis_mean(node: Node | None, model: Model, inputs: set[int], rank: int | None) -> bool:
    """A ReduceMean over the last axis only, keeping dims."""
    if node is None or int(attr(node, "keepdims", 1) or 0) != 1:  # type: ignore[arg-type]
        return False
    if since_version(model, node) >= 18:
        if len(node.inputs) < 2 or node.inputs[1] is None:
            return False
        axes = constant_of(node.inputs[1], inputs)
        axes_list = None if axes is None else [int(a) for a in axes.ravel()]
    else:
        a = attr(node, "axes")
        axes_list = None if a is None else [int(x) for x in a]  # type: ignore[union-attr]
    if axes_list is None or len(axes_list) != 1:
        return False
    return axes_list[0] == -1 or (rank is not None and axes_list[0] == rank - 1)


def match_layer_norm(div: Node, model: Model, facts: Facts, keep: set[int],
                     inputs: set[int]) -> LayerNormMatch | None:
    """The decomposed layer normalization whose ``Div`` is ``div``, or None."""
    graph = div.graph
    if div.op_type != "Div" or not is_standard(div) or len(div.inputs) != 2:
        return None
    d, s = div.inputs
    sub = made_by(d, "Sub", graph)
    sqrt = made_by(s, "Sqrt", graph)
    if sub is None or sqrt is None:
        return None
    x, m = sub.inputs
    rank = facts.rank(x)
    mean = made_by(m, "ReduceMean", graph)
    if mean is None or mean.inputs[0] is not x or not _last_axis_mean(mean, model, inputs, rank):
        return None
    add_eps = made_by(sqrt.inputs[0], "Add", graph)
    if add_eps is None:
        return None
    var = None
    eps = None
    for a, b in (add_eps.inputs, add_eps.inputs[::-1]):
        var, eps = made_by(a, "ReduceMean", graph), scalar(b, inputs)
        if var is not None and eps is not None:
            break
    if var is None or eps is None or not _last_axis_mean(var, model, inputs, rank):
        return None
    pow_ = made_by(var.inputs[0], "Pow", graph)
    if pow_ is None or pow_.inputs[0] is not d or scalar(pow_.inputs[1], inputs) != 2.0:
        return None
    nodes = [mean, sub, pow_, var, add_eps, sqrt, div]
    out = div.outputs[0]
    gamma = beta = None
    hidden = (facts.shape(x) or (None,))[-1]
    # [* gamma] [+ beta]: constant 1-D vectors over the hidden axis
    for op in ("Mul", "Add"):
        if len(out.uses) != 1 or id(out) in keep:
            break
        nxt = out.uses[0][0]
        if nxt.op_type != op or not is_standard(nxt) or nxt.graph is not graph:
            break
        c = constant_of(other_input(nxt, out), inputs)
        if not one_d(c, hidden):
            break
        if op == "Mul":
            gamma = c
        else:
            beta = c
        nodes.append(nxt)
        out = nxt.outputs[0]
    interior = [v for n in nodes[:-1] for v in n.outputs]
    if not used_only_by(interior, nodes, keep):
        return None
    return LayerNormMatch(x, gamma, beta, float(eps), nodes, out)


def layer_norm_params(match: LayerNormMatch, graph: Graph, model: Model,
                      hidden: object, facts: Facts) -> tuple[Value, Value | None] | None:
    """Initializers for the match's gamma (ones when absent) and beta (None when absent)."""
    t = facts.type(match.x)
    dtype = None
    if match.gamma is not None:
        dtype = match.gamma.dtype
    elif match.beta is not None:
        dtype = match.beta.dtype
    elif getattr(t, "elem_type", None) is not None:
        dtype = t.elem_type.numpy  # type: ignore[union-attr]
    if dtype is None:
        return None
    gamma = match.gamma
    if gamma is None:
        if not isinstance(hidden, int):
            return None
        gamma = np.ones(hidden, dtype)
    base = match.out.name or "layer_norm"
    g = new_initializer(graph, unique_name(model, base + "_gamma"), gamma)
    b = None if match.beta is None else new_initializer(
        graph, unique_name(model, base + "_beta"), match.beta)
    return g, b


class FuseLayerNorm(FactsPass):
    """``(x - mean(x)) / sqrt(var(x) + eps) * gamma + beta -> LayerNormalization(x, gamma,
    beta)`` (opset 17 and later)."""

    name = "fuse_layer_norm"
    anchors = frozenset({"ReduceMean"})

    def applies(self, model: Model) -> bool:
        return (model.opset("") or 0) >= 17  # LayerNormalization is standard from 17

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for node in list(graph.nodes):
            if node.graph is not graph or node.op_type != "Div":
                continue
            match = match_layer_norm(node, model, self.facts, keep, inputs)
            if match is None:
                continue
            hidden = (self.facts.shape(match.x) or (None,))[-1]
            params = layer_norm_params(match, graph, model, hidden, self.facts)
            if params is None:
                continue
            gamma, beta = params
            out = match.out
            ln = Node("LayerNormalization", [match.x, gamma] + ([beta] if beta else []), [out],
                      name=match.nodes[-1].name,
                      attributes=[Attribute("axis", AttributeType.INT, -1),
                                  Attribute("epsilon", AttributeType.FLOAT, match.epsilon)])
            # (x - mean) / sqrt(var + eps) * gamma + beta -> LayerNormalization(x, gamma, beta)
            insert_node(graph, ln, match.nodes[-1])
            graph.remove_many(match.nodes)
            modified = True
        return modified
