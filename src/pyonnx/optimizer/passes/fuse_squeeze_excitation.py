"""GlobalAveragePool -> FusedConv -> FusedConv -> Mul of the pool's input -> one
``SqueezeExcitation`` node of pyonnx's own domain (inside sessions only; never written).

A squeeze-and-excitation block (MobileNetV3, EfficientNet) scales each channel of a tensor by
a gate computed from the tensor's channel means: two 1x1 convolutions on a 1x1 map with their
activations (Relu or SiLU, then HardSigmoid or Sigmoid), which FuseActivation has already
folded into FusedConv nodes. Each of the four nodes is a few microseconds of work and tens of
microseconds of Python per run; the fused kernel
(:func:`pyonnx.backends.cpu.fused.squeeze_excitation`) computes the block in one compiled call,
or runs the four kernels one after the other where the loop does not.

Fused only where the two convolutions are plain 1x1 products (constant weights of shapes [R,
C, 1, ...] and [C, R, 1, ...], one group, no padding, stride or dilation), each intermediate
value is read by the next node alone, and the Mul (with NumPy broadcasting, not Mul-1/6's
legacy ``broadcast``/``axis`` form) multiplies the pool's own input by the gate.
"""

from __future__ import annotations

from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node, Value
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import (
    FUSED_DOMAIN, constant_of, graph_inputs, insert_node, is_standard, make_attributes,
    protected_values, single_consumer,
)

__all__ = ["FuseSqueezeExcitation"]

_CONV_DOMAINS = (FUSED_DOMAIN, "com.microsoft")
# attributes a plain 1x1 convolution may carry, with the values that keep it one
_PLAIN = {"group": 1, "auto_pad": "NOTSET"}


class FuseSqueezeExcitation(GraphPass):
    """``Mul(X, FusedConv(FusedConv(GlobalAveragePool(X), W1, B1), W2, B2))`` (or ``Mul(gate,
    X)``) -> ``SqueezeExcitation(X, W1, B1, W2, B2)``."""

    name = "fuse_squeeze_excitation"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for pool in list(graph.nodes):
            if pool.graph is not graph or pool.op_type != "GlobalAveragePool" \
                    or not is_standard(pool) or len(pool.inputs) != 1:
                continue
            x = pool.inputs[0]
            fc1 = single_consumer(pool.outputs[0], keep)
            if not _plain_1x1(fc1, pool.outputs[0], graph):
                continue
            fc2 = single_consumer(fc1.outputs[0], keep)
            if not _plain_1x1(fc2, fc1.outputs[0], graph):
                continue
            mul = single_consumer(fc2.outputs[0], keep)
            if mul is None or mul.graph is not graph or mul.op_type != "Mul" \
                    or not is_standard(mul) or len(mul.inputs) != 2 \
                    or "broadcast" in mul.attributes or "axis" in mul.attributes \
                    or {id(v) for v in mul.inputs} != {id(x), id(fc2.outputs[0])}:
                continue
            w1 = constant_of(fc1.inputs[1], inputs)
            w2 = constant_of(fc2.inputs[1], inputs)
            if w1 is None or w2 is None or w1.ndim < 3 or w1.ndim != w2.ndim \
                    or any(d != 1 for d in w1.shape[2:] + w2.shape[2:]) \
                    or w2.shape[:2] != (w1.shape[1], w1.shape[0]):
                continue
            attrs = []
            for k, fc in (("1", fc1), ("2", fc2)):
                act = fc.attributes.get("activation")
                params = fc.attributes.get("activation_params")
                attrs += make_attributes([(f"activation{k}",
                                           _text(act.value) if act is not None else "")])
                attrs.append(Attribute(f"activation{k}_params", AttributeType.FLOATS,
                                       [float(p) for p in params.value] if params else []))
            fused = Node("SqueezeExcitation",
                         [x, fc1.inputs[1], _input(fc1, 2), fc2.inputs[1], _input(fc2, 2)],
                         [mul.outputs[0]], domain=FUSED_DOMAIN,
                         name=pool.name or mul.outputs[0].name, attributes=attrs)
            insert_node(graph, fused, mul)
            for n in (mul, fc2, fc1, pool):
                graph.remove(n)
            model.opset_imports.setdefault(FUSED_DOMAIN, 1)
            modified = True
        return modified


def _text(v: str | bytes) -> str:
    return v.decode() if isinstance(v, bytes) else v


def _input(node: Node, i: int) -> Value | None:
    return node.inputs[i] if len(node.inputs) > i else None


def _plain_1x1(node: Node | None, x: Value, graph: Graph) -> bool:
    """A FusedConv reading ``x`` as its input, without a residual, whose attributes keep it a
    plain product (1x1 weights checked by the caller)."""
    if node is None or node.graph is not graph or node.op_type != "FusedConv" \
            or node.domain not in _CONV_DOMAINS or not node.inputs or node.inputs[0] is not x \
            or len(node.inputs) > 3 and node.inputs[3] is not None or len(node.outputs) != 1:
        return False
    for name, a in node.attributes.items():
        v = a.value
        if name in ("activation", "activation_params", "kernel_shape"):
            continue
        if name in ("pads", "strides", "dilations"):
            if any(int(p) != (0 if name == "pads" else 1) for p in v):
                return False
        elif name not in _PLAIN or (_text(v) if isinstance(v, bytes) else v) != _PLAIN[name]:
            return False
    ks = node.attributes.get("kernel_shape")
    return ks is None or all(int(k) == 1 for k in ks.value)
