"""Common-subexpression elimination: two nodes that apply the same deterministic operator, with
the same attributes, to the same input values compute the same outputs; the later one's readers
read the earlier one's outputs and dead-code elimination drops it.

Nodes with subgraphs are left alone (comparing graphs is not worth it), so are operators whose
schema is unknown or not deterministic (random ops, custom ops that may keep state).
"""

from __future__ import annotations

from typing import Any

from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node, Tensor
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import protected_values, replace_uses, schema_of

__all__ = ["EliminateCommonSubexpressions"]


class EliminateCommonSubexpressions(GraphPass):
    """``y1 = op(a, b); y2 = op(a, b)`` -> readers of ``y2`` read ``y1``."""

    name = "eliminate_common_subexpressions"
    preserves_facts = True  # drops nodes / reads an equal value instead

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        seen: dict[tuple[Any, ...], Node] = {}
        modified = False
        for node in list(graph.nodes):
            key = _key(node, model)
            if key is None:
                continue
            first = seen.setdefault(key, node)
            if first is node:
                continue
            if any(id(v) in keep for v in node.outputs):
                continue  # a graph output keeps its own name
            for old, new in zip(node.outputs, first.outputs):
                if not old.name and old.uses:
                    break
                if old.uses and not new.name:
                    break
            else:
                for old, new in zip(node.outputs, first.outputs):
                    replace_uses(old, new)  # op(a, b) twice -> once
                modified = True
        return modified


def _key(node: Node, model: Model) -> tuple[Any, ...] | None:
    if not node.outputs or any(True for _ in node.subgraphs()):
        return None
    schema = schema_of(model, node)
    if schema is None or schema.node_determinism != "deterministic":
        return None
    attrs = []
    for a in sorted(node.attributes.values(), key=lambda a: a.name):
        k = _attr_key(a)
        if k is None:
            return None
        attrs.append(k)
    return (node.domain or "", node.op_type, node.overload, len(node.outputs),
            tuple(id(v) if v is not None else None for v in node.inputs), tuple(attrs))


def _attr_key(a: Attribute) -> tuple[Any, ...] | None:
    if a.ref_attr_name:
        return None
    v = a.value
    if a.type == AttributeType.TENSOR and isinstance(v, Tensor):
        arr = v.numpy()
        return (a.name, "T", str(arr.dtype), arr.shape, arr.tobytes())
    if a.type in (AttributeType.INT, AttributeType.FLOAT, AttributeType.STRING):
        return (a.name, a.type, v)
    if a.type in (AttributeType.INTS, AttributeType.FLOATS, AttributeType.STRINGS):
        return (a.name, a.type, tuple(v))
    return None
