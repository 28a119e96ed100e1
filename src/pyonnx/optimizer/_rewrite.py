"""Helpers shared by the passes: what is constant, what must be kept, how to splice nodes.

Everything here goes through :meth:`Node.set_input`, the Node constructor and
:meth:`Graph.remove`, so use-def links stay correct without being edited by hand.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from pyonnx import defs
from pyonnx.ir import Attribute, AttributeType, DataType, Graph, Model, Node, Tensor, TensorType, Value

from pyonnx.optimizer._core import model_graphs, model_walk

#: The internal domain (version 1) of the fused nodes the passes create; its kernels are in
#: pyonnx.backends.cpu.fused.
FUSED_DOMAIN = "pyonnx"

__all__ = [
    "FUSED_DOMAIN", "protected_values", "constant_of", "is_constant", "replace_uses",
    "single_consumer",
    "insert_node", "new_initializer", "attr", "schema_of", "unique_name", "inference_batch_norm",
]


def protected_values(model: Model) -> set[int]:
    """ids of the values a pass must never replace or remove: the outputs of every graph
    (main and nested: a subgraph output may be an outer value) and every graph input.
    The caller may add to the set it gets (a copy of the one cached for the pass)."""
    return set(model_walk(model, "protected", _protected_values))


def _protected_values(model: Model) -> set[int]:
    keep: set[int] = set()
    for g in model_graphs(model):
        keep.update(id(v) for v in g.outputs)
        keep.update(id(v) for v in g.inputs)
    return keep


def graph_inputs(model: Model) -> set[int]:
    """ids of every graph input a feed can set (an initializer that is also an input may be
    overridden by a feed, so it is not a constant), except in IR version < 4 models: there every
    initializer had to be listed as an input, and it is a constant (as onnxruntime treats it)."""
    return model_walk(model, "inputs", _graph_inputs)


def _graph_inputs(model: Model) -> set[int]:
    ids: set[int] = set()
    for g in model_graphs(model):
        for v in g.inputs:
            if g is model.graph and model.ir_version < 4 and v.name in g.initializers:
                continue
            ids.add(id(v))
    return ids


def constant_of(v: Value | None, inputs: set[int]) -> np.ndarray | None:
    """The array of an initializer that no feed can override, else None."""
    if v is None or v.producer is not None or id(v) in inputs:
        return None
    c = v.const_value
    if isinstance(c, Tensor):
        return c.numpy()
    return None


def is_constant(v: Value | None, inputs: set[int]) -> bool:
    """Whether ``v`` is a non-overridable dense initializer."""
    return (v is not None and v.producer is None and id(v) not in inputs
            and isinstance(v.const_value, Tensor))


def replace_uses(old: Value, new: Value) -> None:
    """Make every consumer of ``old`` read ``new`` instead."""
    for node, i in list(old.uses):
        node.set_input(i, new)


def single_consumer(v: Value, keep: set[int]) -> Node | None:
    """The only node that reads ``v`` (once), if ``v`` is not a protected value."""
    if id(v) in keep or len(v.uses) != 1:
        return None
    return v.uses[0][0]


def insert_node(graph: Graph, node: Node, before: Node) -> None:
    """Put ``node`` into ``graph`` just before ``before`` (keeping the topological order)."""
    graph.insert_before(node, before)


def new_initializer(graph: Graph, name: str, array: np.ndarray) -> Value:
    """A fresh initializer Value named ``name`` holding ``array``, registered in ``graph``."""
    t = Tensor.from_numpy(array, name)
    v = Value(name, TensorType(t.data_type, tuple(int(d) for d in array.shape)), const_value=t)
    return graph.add_initializer(v)


def unique_name(model: Model, base: str) -> str:
    """A value name not used anywhere in the model, derived from ``base``."""
    taken = _names(model)
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def _names(model: Model) -> set[str]:
    cache = getattr(model, "_pyonnx_opt_names", None)
    if cache is None:
        cache = set()
        for g in model_graphs(model):
            cache.update(v.name for v in g.inputs)
            cache.update(g.initializers)
            cache.update(g.sparse_initializers)
            for n in g.nodes:
                cache.update(v.name for v in n.outputs)
        try:
            model._pyonnx_opt_names = cache  # type: ignore[attr-defined]
        except AttributeError:
            pass
    return cache


def attr(node: Node, name: str, default: object = None) -> object:
    """An attribute's value (``default`` when absent or a function-attribute reference)."""
    a = node.attributes.get(name)
    if a is None or a.ref_attr_name:
        return default
    return a.value


def schema_of(model: Model, node: Node) -> defs.OpSchema | None:
    """The schema a node's op_type resolves to under the model's opset imports."""
    dom = defs.normalize_domain(node.domain)
    opset = model.opset(dom)
    if opset is None:
        return None
    return defs.lookup(dom, node.op_type, opset)


def since_version(model: Model, node: Node) -> int:
    """The schema version of ``node`` (0 when unknown)."""
    s = schema_of(model, node)
    return s.since_version if s is not None else 0


def is_standard(node: Node) -> bool:
    """Whether the node is in the default ONNX domain."""
    return node.domain in ("", "ai.onnx")


def make_attributes(items: Iterable[tuple[str, object]]) -> list[Attribute]:
    """Attributes from (name, Python value) pairs: int, float, str, list of int or float."""
    out = []
    for name, value in items:
        if isinstance(value, bool) or isinstance(value, int):
            out.append(Attribute(name, AttributeType.INT, int(value)))
        elif isinstance(value, float):
            out.append(Attribute(name, AttributeType.FLOAT, value))
        elif isinstance(value, str):
            out.append(Attribute(name, AttributeType.STRING, value))
        elif isinstance(value, (list, tuple)):
            if all(isinstance(x, int) and not isinstance(x, bool) for x in value):
                out.append(Attribute(name, AttributeType.INTS, [int(x) for x in value]))
            else:
                out.append(Attribute(name, AttributeType.FLOATS, [float(x) for x in value]))
        else:
            raise TypeError(f"attribute {name!r}: unsupported value {value!r}")
    return out


def float_dtype(v: Value | None) -> bool:
    """Whether a value is known to be a float tensor (float16/32/64, bfloat16)."""
    t = v.type if v is not None else None
    return isinstance(t, TensorType) and t.elem_type in (
        DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16)


def inference_batch_norm(bn: Node) -> bool:
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
