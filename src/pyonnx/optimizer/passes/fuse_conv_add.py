"""Conv + Add (or two-input Sum) of another tensor -> FusedConv(X, W, B, Z), in pyonnx's own
domain (inside sessions) or in com.microsoft (what ``optimize(level="extended")`` writes, which
onnxruntime runs: there only for float32 and a ``Z`` of exactly the output's shape).

Residual blocks (ResNet, ShuffleNet) add a shortcut to a convolution's output and then apply an
activation. The fused kernel adds ``Z`` in place into the freshly computed convolution (no
allocation, one pass fewer), and FuseActivation, which runs after this pass, can then fold the
activation in as well: ``act(Conv(X, W, B) + Z)`` as one node, as onnxruntime's FusedConv does.

Only a plain Conv whose output is read by nothing but the Add is fused (the unfused sum must
not be needed elsewhere). The kernel checks at run time what Add would check (equal element
types, broadcastable shapes) and raises Add's errors; a broadcast that widens the result falls
back to an out-of-place add.
"""

from __future__ import annotations

from pyonnx.ir import DataType, Graph, Model, Node, TensorType
from pyonnx.optimizer._facts import Facts, same_shape
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import (
    FUSED_DOMAIN, insert_node, is_standard, protected_values, since_version, single_consumer,
)

__all__ = ["FuseConvAdd", "MS_DOMAIN"]

#: onnxruntime's contrib domain, where the fused ops that files may hold live
MS_DOMAIN = "com.microsoft"



class FuseConvAdd(FactsPass):
    """``Add(Conv(X, W, B), Z)`` or ``Add(Z, Conv(...))`` (or ``Sum`` of the two) ->
    ``FusedConv(X, W, B, Z)``."""

    name = "fuse_conv_add"
    anchors = frozenset({"Conv"})

    def __init__(self, domain: str = FUSED_DOMAIN) -> None:
        self.domain = domain

    def wants_facts(self, model: Model) -> bool:
        return self.domain == MS_DOMAIN  # only com.microsoft FusedConv needs operand shapes

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        modified = False
        for conv in list(graph.nodes):
            if conv.graph is not graph or conv.op_type != "Conv" or not is_standard(conv) \
                    or len(conv.outputs) != 1:
                continue
            y = conv.outputs[0]
            add = single_consumer(y, keep)
            if add is None or add.graph is not graph or not _is_binary_sum(add, model):
                continue
            z = add.inputs[1] if add.inputs[0] is y else add.inputs[0]
            if z is None or z is y or _known_different_types(y, z):
                continue
            if self.facts is not None and not _ms_conv_operands(self.facts, conv, z):
                continue
            out = add.outputs[0]
            inputs = list(conv.inputs) + [None] * (3 - len(conv.inputs))
            # Add(Conv(X, W, B), Z) -> FusedConv(X, W, B, Z), where the Add was: Z may be
            # computed after the Conv
            fused = Node("FusedConv", inputs[:3] + [z], [out], domain=self.domain,
                         name=conv.name or add.name, attributes=list(conv.attributes.values()))
            insert_node(graph, fused, add)
            graph.remove(add)
            graph.remove(conv)
            model.opset_imports.setdefault(self.domain, 1)
            modified = True
        return modified


def _ms_conv_operands(facts: Facts, conv: Node, z: object) -> bool:
    """onnxruntime's FusedConv: float32 only, and its ``Z`` must have the output's shape."""
    t = facts.type(conv.inputs[0])
    return isinstance(t, TensorType) and t.elem_type == DataType.FLOAT \
        and same_shape(facts.shape(conv.outputs[0]), facts.shape(z))  # type: ignore[arg-type]


def _is_binary_sum(node: Node, model: Model) -> bool:
    """An Add or Sum of exactly two inputs with NumPy broadcasting (not the legacy forms)."""
    if not is_standard(node) or len(node.inputs) != 2 or len(node.outputs) != 1:
        return False
    if node.op_type == "Add":
        return "broadcast" not in node.attributes and "axis" not in node.attributes \
            and since_version(model, node) >= 7
    return node.op_type == "Sum" and since_version(model, node) >= 8


def _known_different_types(a: object, b: object) -> bool:
    """Both element types are declared and differ: the Add must fail as itself."""
    ta, tb = getattr(a, "type", None), getattr(b, "type", None)
    return isinstance(ta, TensorType) and isinstance(tb, TensorType) \
        and ta.elem_type is not None and tb.elem_type is not None and ta.elem_type != tb.elem_type
