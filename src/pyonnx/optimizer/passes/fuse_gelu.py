"""Gelu from its decomposed forms.

* erf form: ``0.5 * x * (1 + erf(x / sqrt(2)))`` (or ``x * 0.7071…`` inside the erf), the three
  factors multiplied in any order;
* tanh form: ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))``.

Targets: the standard ``Gelu`` (opset 20 and later; ``approximate="tanh"`` for the tanh form),
or onnxruntime's ops (``target="com.microsoft"``): the erf form becomes ``Gelu``, or
``BiasGelu(a, bias)`` when ``x = a + bias`` with a constant 1-D bias; the tanh form becomes
``FastGelu(x)`` or ``FastGelu(a, bias)``. The erf form never becomes FastGelu (another function).
"""

from __future__ import annotations

import math

from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node, Value
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import (
    constant_of, graph_inputs, insert_node, is_standard, protected_values,
)
from pyonnx.optimizer.passes._match import close, made_by, one_d, other_input, scalar, used_only_by

__all__ = ["FuseGelu"]

MS = "com.microsoft"
_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class FuseGelu(FactsPass):
    """``0.5 * x * (1 + erf(x / sqrt 2))`` -> ``Gelu(x)``; the tanh form -> ``Gelu(x,
    approximate="tanh")`` or ``FastGelu(x)``."""

    name = "fuse_gelu"
    anchors = frozenset({"Erf", "Tanh"})

    def __init__(self, target: str = "") -> None:
        self.target = target  # "" (the standard Gelu-20) or "com.microsoft"

    def applies(self, model: Model) -> bool:
        return self.target == MS or (model.opset("") or 0) >= 20  # Gelu is standard from 20

    def wants_facts(self, model: Model) -> bool:
        return self.target == MS

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for node in list(graph.nodes):
            if node.graph is not graph or not is_standard(node) \
                    or node.op_type not in ("Erf", "Tanh"):
                continue
            found = _match(node, graph, inputs)
            if found is None:
                continue
            x, nodes, out = found
            interior = [v for n in nodes[:-1] for v in n.outputs]
            if not used_only_by(interior, nodes, keep):
                continue
            tanh = node.op_type == "Tanh"
            ins: list[Value | None] = [x]
            if self.target == MS:
                op = "FastGelu" if tanh else "Gelu"
                bias_add = self._bias(x, nodes, keep, inputs)
                if bias_add is not None:
                    a, b = bias_add.inputs if constant_of(bias_add.inputs[1], inputs) \
                        is not None else bias_add.inputs[::-1]
                    ins = [a, b]
                    nodes = [bias_add] + nodes
                    op = "FastGelu" if tanh else "BiasGelu"
                attrs: list[Attribute] = []
                domain = MS
            else:
                op, domain = "Gelu", ""
                attrs = [Attribute("approximate", AttributeType.STRING, "tanh")] if tanh else []
            # 0.5 * x * (1 + erf(x / sqrt 2)) -> Gelu(x); the tanh form -> FastGelu(x)
            fused = Node(op, ins, [out], domain=domain, name=nodes[-1].name, attributes=attrs)
            insert_node(graph, fused, nodes[-1])
            graph.remove_many(nodes)
            if domain:
                model.opset_imports.setdefault(domain, 1)
            modified = True
        return modified

    def _bias(self, x: Value, nodes: list[Node], keep: set[int], inputs: set[int]) -> Node | None:
        """``x = Add(a, bias)`` with a 1-D constant bias over the last axis, read only by the
        pattern, whose ``a`` has at least x's rank (so the bias does not widen it)."""
        add = made_by(x, "Add", x.producer.graph if x.producer else None)
        if add is None or len(add.inputs) != 2 or not used_only_by([x], nodes, keep):
            return None
        a, b = add.inputs
        if constant_of(b, inputs) is None:
            a, b = b, a
        c = constant_of(b, inputs)
        facts = self.facts
        xs = facts.shape(x) if facts is not None else None
        if c is None or a is None or constant_of(a, inputs) is not None or xs is None \
                or not one_d(c, xs[-1]) or facts is None or facts.shape(a) is None \
                or len(facts.shape(a) or ()) != len(xs):  # type: ignore[arg-type]
            return None
        return add


def _match(act: Node, graph: Graph, inputs: set[int]) -> tuple[Value, list[Node], Value] | None:
    """(x, the pattern's nodes in order, its output) for the Gelu around an Erf or Tanh."""
    inner = act.inputs[0]
    nodes: list[Node] = []
    if act.op_type == "Erf":
        # x / sqrt(2) or x * (1 / sqrt(2))
        div = made_by(inner, "Div", graph)
        mul = made_by(inner, "Mul", graph)
        if div is not None and close(scalar(div.inputs[1], inputs), _SQRT2):
            x, pre = div.inputs[0], div
        elif mul is not None:
            x = None
            for a, b in (mul.inputs, mul.inputs[::-1]):
                if close(scalar(b, inputs), 1 / _SQRT2):
                    x = a
            pre = mul
        else:
            return None
        if x is None:
            return None
        nodes = [pre, act]
    else:
        # sqrt(2/pi) * (x + 0.044715 * x^3)
        scale = made_by(inner, "Mul", graph)
        if scale is None:
            return None
        s_in = None
        for a, b in (scale.inputs, scale.inputs[::-1]):
            if close(scalar(b, inputs), _SQRT_2_OVER_PI):
                s_in = a
        add = made_by(s_in, "Add", graph)
        if add is None:
            return None
        x = None
        cube_mul = pow_ = None
        for a, b in (add.inputs, add.inputs[::-1]):
            m = made_by(b, "Mul", graph)
            if m is None:
                continue
            for p, c in (m.inputs, m.inputs[::-1]):
                pw = made_by(p, "Pow", graph)
                if pw is not None and pw.inputs[0] is a and close(scalar(c, inputs), 0.044715) \
                        and scalar(pw.inputs[1], inputs) == 3.0:
                    x, cube_mul, pow_ = a, m, pw
        if x is None or cube_mul is None or pow_ is None:
            return None
        nodes = [pow_, cube_mul, add, scale, act]
    # 1 + f
    f = act.outputs[0]
    if len(f.uses) != 1:
        return None
    one = f.uses[0][0]
    if one.op_type != "Add" or not is_standard(one) or scalar(other_input(one, f), inputs) != 1.0:
        return None
    nodes.append(one)
    u = one.outputs[0]
    # the product of x, 0.5 and (1 + f), in any order, by two Muls
    if len(u.uses) != 1:
        return None
    m1 = u.uses[0][0]
    if m1.op_type != "Mul" or not is_standard(m1) or m1.graph is not graph:
        return None
    o = other_input(m1, u)
    half = made_by(o, "Mul", graph)
    if half is not None and _is_half_x(half, x, inputs):
        return x, nodes + [half, m1], m1.outputs[0]  # (0.5 * x) * (1 + f)
    if o is not x and not close(scalar(o, inputs), 0.5):
        return None
    m1_out = m1.outputs[0]
    if len(m1_out.uses) != 1:
        return None
    m2 = m1_out.uses[0][0]
    if m2.op_type != "Mul" or not is_standard(m2) or m2.graph is not graph:
        return None
    o2 = other_input(m2, m1_out)
    if o is x and close(scalar(o2, inputs), 0.5) or o2 is x and o is not x:
        return x, nodes + [m1, m2], m2.outputs[0]  # (x * (1 + f)) * 0.5 or (0.5 * (1 + f)) * x
    return None


def _is_half_x(node: Node, x: Value, inputs: set[int]) -> bool:
    o = other_input(node, x)
    return o is not None and close(scalar(o, inputs), 0.5)

