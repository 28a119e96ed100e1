"""Structural copies of models and graphs: new Values, Nodes and Graphs, shared Tensors.

Shape inference writes types onto Values; copying the structure first keeps the caller's model
untouched while constant data (often hundreds of MB) is shared, never duplicated.
"""

from __future__ import annotations

from pyonnx.ir import Attribute, AttributeType, Function, Graph, Model, Node, Value

__all__ = ["copy_model", "copy_graph"]


def _copy_value(v: Value) -> Value:
    c = Value(v.name, v.type, const_value=v.const_value, doc_string=v.doc_string,
              metadata_props=v.metadata_props)
    return c


class _Copier:
    def __init__(self) -> None:
        self.memo: dict[int, Value] = {}

    def value(self, v: Value) -> Value:
        c = self.memo.get(id(v))
        if c is None:
            c = _copy_value(v)
            self.memo[id(v)] = c
        return c

    def attribute(self, a: Attribute, parent: Graph) -> Attribute:
        value = a.value
        if a.type == AttributeType.GRAPH:
            value = self.graph(a.value, parent)
        elif a.type == AttributeType.GRAPHS:
            value = [self.graph(g, parent) for g in a.value]
        elif isinstance(value, list):
            value = list(value)
        return Attribute(a.name, a.type, value, ref_attr_name=a.ref_attr_name,
                         doc_string=a.doc_string)

    def graph(self, g: Graph, parent: Graph | None) -> Graph:
        out = Graph(g.name, doc_string=g.doc_string)
        out.parent = parent
        out.metadata_props = dict(g.metadata_props)
        out.quantization_annotation = [(n, dict(p)) for n, p in g.quantization_annotation]
        out.inputs = [self.value(v) for v in g.inputs]
        out.initializers = {k: self.value(v) for k, v in g.initializers.items()}
        out.sparse_initializers = {k: self.value(v) for k, v in g.sparse_initializers.items()}
        for n in g.nodes:
            ins = [self.value(v) if v is not None else None for v in n.inputs]
            outs = [self.value(v) for v in n.outputs]
            node = Node(n.op_type, ins, outs, domain=n.domain, name=n.name,
                        attributes=[self.attribute(a, out) for a in n.attributes.values()],
                        overload=n.overload, doc_string=n.doc_string,
                        metadata_props=n.metadata_props)
            out.append(node)
        out.outputs = [self.value(v) for v in g.outputs]
        out.value_info = [self.value(v) for v in g.value_info]
        return out


def copy_graph(g: Graph, memo: dict[int, Value] | None = None) -> Graph:
    """A structural copy of ``g`` (and its subgraphs); ``memo`` maps ids of values defined
    outside ``g`` that the copy should use instead (for example outer-scope values)."""
    c = _Copier()
    if memo:
        c.memo.update(memo)
    return c.graph(g, g.parent)


def copy_model(model: Model) -> Model:
    """A new Model with copied graphs, nodes, values and functions; tensors are shared."""
    c = _Copier()
    m = Model(c.graph(model.graph, None), ir_version=model.ir_version,
              opset_imports=dict(model.opset_imports), producer_name=model.producer_name,
              producer_version=model.producer_version, domain=model.domain,
              model_version=model.model_version, doc_string=model.doc_string,
              metadata_props=dict(model.metadata_props))
    for f in model.functions:
        fc = _Copier()
        m.functions.append(Function(
            f.domain, f.name, fc.graph(f.graph, None), overload=f.overload,
            attributes=list(f.attributes), attribute_defaults=list(f.attribute_defaults.values()),
            opset_imports=dict(f.opset_imports), doc_string=f.doc_string,
            metadata_props=dict(f.metadata_props)))
    m.training_info = list(model.training_info)
    m.configuration = list(model.configuration)
    m.base_dir = model.base_dir
    return m
