"""A structural copy of a model: new Graph, Node and Value objects, shared tensor data.

Sessions optimize a copy so that the caller's :class:`~pyonnx.ir.Model` is never modified; the
weights (:class:`~pyonnx.ir.Tensor` objects, possibly lazily loaded or memory-mapped) are shared,
because passes never write into a tensor: they create new ones.
"""

from __future__ import annotations

from typing import Any

from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node, Value

__all__ = ["copy_model", "copy_graph"]


def copy_model(model: Model) -> Model:
    """A copy of ``model`` whose graphs, nodes and values are new objects and whose tensors are
    the same objects. Function bodies are shared too (passes do not rewrite them)."""
    g = copy_graph(model.graph, {})
    m = Model(g, ir_version=model.ir_version, opset_imports=dict(model.opset_imports),
              producer_name=model.producer_name, producer_version=model.producer_version,
              domain=model.domain, model_version=model.model_version,
              doc_string=model.doc_string, functions=list(model.functions),
              metadata_props=dict(model.metadata_props))
    m.training_info = list(model.training_info)
    m.configuration = list(model.configuration)
    m.base_dir = model.base_dir
    return m


def _copy_value(v: Value, vmap: dict[int, Value]) -> Value:
    nv = vmap.get(id(v))
    if nv is None:
        nv = Value(v.name, v.type, const_value=v.const_value, doc_string=v.doc_string,
                   metadata_props=v.metadata_props)
        vmap[id(v)] = nv
    return nv


def _lookup(v: Value, vmap: dict[int, Value]) -> Value:
    # a value not defined in any graph copied so far (a dangling reference) is copied as is,
    # so that the plan reports it exactly as it would for the original
    return _copy_value(v, vmap)


def copy_graph(graph: Graph, vmap: dict[int, Value]) -> Graph:
    """Copy ``graph``; ``vmap`` maps ``id(old value)`` to its copy and carries the enclosing
    graphs' values into subgraphs (outer-scope reads stay links to the copied outer values)."""
    g = Graph(graph.name, doc_string=graph.doc_string)
    g.inputs = [_copy_value(v, vmap) for v in graph.inputs]
    g.initializers = {k: _copy_value(v, vmap) for k, v in graph.initializers.items()}
    g.sparse_initializers = {k: _copy_value(v, vmap)
                             for k, v in graph.sparse_initializers.items()}
    for n in graph.nodes:
        outs = [_copy_value(v, vmap) for v in n.outputs]
        ins = [None if v is None else _lookup(v, vmap) for v in n.inputs]
        attrs = [_copy_attribute(a, vmap, g) for a in n.attributes.values()]
        nn = Node(n.op_type, ins, outs, domain=n.domain, name=n.name, attributes=attrs,
                  overload=n.overload, doc_string=n.doc_string, metadata_props=n.metadata_props)
        g.append(nn)
    g.outputs = [_lookup(v, vmap) for v in graph.outputs]
    g.value_info = [_lookup(v, vmap) for v in graph.value_info]
    g.quantization_annotation = list(graph.quantization_annotation)
    g.metadata_props = dict(graph.metadata_props)
    return g


def _copy_attribute(a: Attribute, vmap: dict[int, Value], parent: Graph) -> Attribute:
    value: Any = a.value
    if a.type == AttributeType.GRAPH and value is not None:
        value = copy_graph(value, vmap)
        value.parent = parent
    elif a.type == AttributeType.GRAPHS and value is not None:
        value = [copy_graph(sg, vmap) for sg in value]
        for sg in value:
            sg.parent = parent
    elif isinstance(value, list):
        value = list(value)
    return Attribute(a.name, a.type, value, ref_attr_name=a.ref_attr_name,
                     doc_string=a.doc_string)

