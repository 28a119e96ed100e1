"""Identity removal: consumers of an Identity (or of a Dropout that cannot drop anything at
inference) read its input directly; dead-code elimination then drops the node.

An Identity whose output is a graph output is kept: graph outputs keep their names.
"""

from __future__ import annotations

from pyonnx.ir import Graph, Model, Node, TensorType
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import (
    attr, constant_of, graph_inputs, is_standard, protected_values, replace_uses,
)

__all__ = ["EliminateIdentity"]


class EliminateIdentity(GraphPass):
    """``Identity(x) -> x``; ``Dropout(x)`` in inference mode (mask unused) ``-> x``."""

    name = "eliminate_identity"
    preserves_facts = True  # drops nodes / reads an equal value instead

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for node in list(graph.nodes):
            if not is_standard(node) or not node.outputs or not node.inputs:
                continue
            x = node.inputs[0]
            y = node.outputs[0]
            if x is None or id(y) in keep or not y.uses:
                continue
            if node.op_type == "Identity":
                if not _tensor_or_unknown(x, y):
                    continue
                replace_uses(y, x)  # Identity(x) -> x
                modified = True
            elif node.op_type == "Dropout" and _inference_dropout(node, inputs):
                replace_uses(y, x)  # Dropout(x, training_mode=false) -> x
                modified = True
        return modified


def _tensor_or_unknown(x: object, y: object) -> bool:
    # Identity of a sequence or optional is an identity as well; only an explicitly different
    # declared type (which a valid model cannot have) would make the bypass visible
    tx, ty = getattr(x, "type", None), getattr(y, "type", None)
    if tx is None or ty is None:
        return True
    if isinstance(tx, TensorType) and isinstance(ty, TensorType):
        return tx.elem_type == ty.elem_type
    return type(tx) is type(ty)


def _inference_dropout(node: Node, inputs: set[int]) -> bool:
    """Dropout is the identity when it is not training: ``is_test`` (versions 1-6), always in
    7-11, and in 12+ when ``training_mode`` is absent or a constant false. The mask output
    must be unused, since in inference mode it would be all ones."""
    if len(node.outputs) > 1 and (node.outputs[1].uses or node.outputs[1].name and
                                  node.outputs[1] in (node.graph.outputs if node.graph else [])):
        return False
    if len(node.inputs) >= 3 and node.inputs[2] is not None:
        t = constant_of(node.inputs[2], inputs)
        if t is None or t.size != 1 or bool(t.ravel()[0]):
            return False
    # versions 1-6: is_test=0 means training (dropping at random)
    if "is_test" in node.attributes and not attr(node, "is_test", 0):
        return False
    return True
