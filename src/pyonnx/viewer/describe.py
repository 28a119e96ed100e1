"""A model as the viewer's page sees it: one JSON-ready dict, without weights.

:func:`describe_model` walks the model once (after shape inference, so every value carries the
type and symbolic shape pyonnx infers) and returns::

    {"format": "pyonnx-viewer/1", "title", "model": {metadata}, "counts": {...},
     "opHistogram": [{"op", "domain", "count"}], "opDocs": {...}, "graph": GRAPH, "functions": [FUNCTION],
     "violations": [{"rule", "location", "message", "node"}], "notes": [str],
     "profile": None, "compare": None}

A GRAPH is ``{"id", "name", "doc", "inputs", "outputs", "nodes", "edges", "captures",
"values", "initializers"}``: ``nodes`` in file order, each ``{"id", "name", "op", "domain",
"version", "doc", "attrs", "in", "out", "sub", "fn"}`` (``opDocs`` maps ``"domain::op"`` to
the operator's documentation); ``edges`` are
``[src, dst, value]`` with a node index, ``"i<k>"`` (graph input k) or ``"o<k>"`` (graph output
k) at either end; ``captures`` are ``[value, node index]`` for values a subgraph reads from an
enclosing graph (the page resolves them through the graphs it has expanded); ``values`` maps a
value name to its type (``type``, ``dtype``, ``shape`` with ints, symbol strings and None);
``initializers`` maps a name to :func:`~pyonnx.viewer.stats.tensor_stats`. Subgraphs
(``sub``) are ``[label, GRAPH]`` with label ``body``, ``then_branch`` or ``branches[2]``.

Node ids are paths: ``"12"`` is node 12 of the main graph, ``"12/body/3"`` node 3 of its body,
``"f0/5"`` node 5 of model-local function 0. Checker violations are attached to the node whose
location (as :func:`pyonnx.check_model` writes it) is the longest prefix of theirs.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from pyonnx import defs
from pyonnx.checker._context import node_label
from pyonnx.errors import PyOnnxError
from pyonnx.ir import AttributeType, DataType, Graph, Model, Node, TensorType, Value
from pyonnx.ir.tensor import SparseTensor, Tensor
from pyonnx.viewer.stats import tensor_stats

__all__ = ["describe_model", "doc_url", "FORMAT"]

FORMAT = "pyonnx-viewer/1"

#: Longest attribute list shown in full; longer ones are cut with a count of the rest.
_MAX_LIST = 64
#: Longest string attribute shown in full.
_MAX_TEXT = 4096

_DOCS = {
    "": "https://github.com/onnx/onnx/blob/main/docs/Operators.md#{op}",
    "ai.onnx.ml": "https://github.com/onnx/onnx/blob/main/docs/Operators-ml.md#ai.onnx.ml.{op}",
    "ai.onnx.preview.training":
        "https://github.com/onnx/onnx/blob/main/docs/Operators.md#ai.onnx.preview.training.{op}",
    "com.microsoft":
        "https://github.com/microsoft/onnxruntime/blob/main/docs/ContribOperators.md"
        "#com.microsoft.{op}",
}


def doc_url(domain: str, op_type: str) -> str | None:
    """The operator's section in its specification (ONNX's Operators.md, onnxruntime's
    ContribOperators.md for com.microsoft), or None for a domain without one."""
    template = _DOCS.get("" if domain == "ai.onnx" else domain)
    if template is None or not op_type.replace("_", "").isalnum():
        return None
    return template.format(op=op_type)


def describe_model(model: Model | str | os.PathLike[str] | bytes, *, title: str | None = None,
                   infer: bool = True, check: bool = True) -> dict[str, Any]:
    """The JSON-ready description of ``model`` (see the module docstring).

    ``infer`` runs :func:`pyonnx.infer_shapes` first (a failure is recorded in ``notes`` and
    the declared types are shown instead); ``check`` runs the checker and attaches its
    violations to their nodes. Raises :class:`~pyonnx.errors.DecodeError` for a file that
    cannot be read; nothing else about a broken model stops the description.
    """
    if not isinstance(model, Model):
        from pyonnx.io import load

        if title is None and isinstance(model, (str, os.PathLike)):
            title = os.path.basename(os.fspath(model))
        model = load(model)
    notes: list[str] = []
    shown = model
    if infer:
        from pyonnx.shape_inference import infer_shapes

        try:
            shown = infer_shapes(model)
        except PyOnnxError as e:
            notes.append(f"shape inference failed, declared types are shown: {e}")
        except Exception as e:  # noqa: BLE001 - a bug in inference must not hide the model
            notes.append(f"shape inference failed with an internal error, declared types are "
                         f"shown: {type(e).__name__}: {e}")
    builder = _Builder(shown)
    graph = builder.graph(shown.graph, "", "main graph", shown.opset_imports)
    functions = []
    for k, f in enumerate(shown.functions):
        loc = f"function '{f.domain}::{f.name}'" + (f" (overload {f.overload!r})"
                                                      if f.overload else "")
        g = builder.graph(f.graph, f"f{k}", loc, f.opset_imports or shown.opset_imports)
        functions.append({"id": f"f{k}", "domain": f.domain, "name": f.name,
                          "overload": f.overload, "doc": f.doc_string,
                          "attributes": list(f.attributes), "opsets": dict(f.opset_imports),
                          "graph": g})
    # the calls of local functions point at their function (the page expands them in place)
    fn_index = {(_norm(f.domain), f.name, f.overload): f"f{k}"
                for k, f in enumerate(shown.functions)}
    for nd, node in builder.all_nodes:
        fid = fn_index.get((_norm(node.domain), node.op_type, node.overload))
        if fid is not None:
            nd["fn"] = fid
    violations = _violations(model, builder.locations, notes) if check else []
    hist = Counter((n.domain if n.domain != "ai.onnx" else "", n.op_type)
                   for _, n in builder.all_nodes)
    return {
        "format": FORMAT,
        "title": title or model.graph.name or "model",
        "model": {
            "ir_version": model.ir_version, "opsets": dict(model.opset_imports),
            "producer_name": model.producer_name, "producer_version": model.producer_version,
            "domain": model.domain, "model_version": model.model_version,
            "doc": model.doc_string, "metadata": dict(model.metadata_props),
            "graph_name": model.graph.name,
        },
        "counts": {"nodes": len(model.graph.nodes), "all_nodes": len(builder.all_nodes),
                   "initializers": builder.n_initializers,
                   "parameters": builder.n_parameters, "functions": len(model.functions)},
        "opHistogram": [{"op": op, "domain": dom, "count": c}
                        for (dom, op), c in sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))],
        # one documentation link per operator type (not per node: a large graph repeats few)
        "opDocs": {f"{dom}::{op}": url for (dom, op) in hist
                   if (url := doc_url(dom, op)) is not None},
        "graph": graph,
        "functions": functions,
        "violations": violations,
        "notes": notes,
        "profile": None,
        "compare": None,
    }


def _norm(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain


class _Builder:
    """Walks graphs, recording every node with its id and checker location."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.all_nodes: list[tuple[dict[str, Any], Node]] = []
        #: checker location of each node -> node id
        self.locations: dict[str, str] = {}
        self.n_initializers = 0
        self.n_parameters = 0
        self._versions: dict[tuple[str, str, int | None], int | None] = {}

    def graph(self, g: Graph, gid: str, location: str, opsets: dict[str, int]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for v in [*g.inputs, *g.outputs, *g.value_info, *g.initializers.values()]:
            self._value(values, v)
        inits: dict[str, Any] = {}
        for name, v in [*g.initializers.items(), *g.sparse_initializers.items()]:
            if v.const_value is not None:
                inits[name] = tensor_stats(v.const_value)
                self.n_initializers += 1
                self.n_parameters += inits[name]["size"]
        produced: dict[str, int | str] = {}
        for k, v in enumerate(g.inputs):
            produced[v.name] = f"i{k}"
        for name in inits:
            produced.setdefault(name, "init")
        nodes, edges, captures = [], [], []
        for i, node in enumerate(g.nodes):
            nid = f"{gid}/{i}" if gid else str(i)
            where = f"{location} > {node_label(node, i)}"
            self.locations[where] = nid
            nd = self._node(node, nid, where, opsets)
            nodes.append(nd)
            self.all_nodes.append((nd, node))
            for v in node.inputs:
                if v is None or not v.name:
                    continue
                src = produced.get(v.name)
                if src is None:
                    captures.append([v.name, i])
                elif src != "init":
                    edges.append([src, i, v.name])
            for v in node.outputs:
                self._value(values, v)
                if v.name:
                    produced[v.name] = i
        for k, v in enumerate(g.outputs):
            src = produced.get(v.name)
            if src is None:
                captures.append([v.name, f"o{k}"])
            elif src != "init":
                edges.append([src, f"o{k}", v.name])
        return {"id": gid, "name": g.name, "doc": g.doc_string,
                "inputs": [v.name for v in g.inputs], "outputs": [v.name for v in g.outputs],
                "nodes": nodes, "edges": edges, "captures": captures, "values": values,
                "initializers": inits}

    def _value(self, values: dict[str, Any], v: Value) -> None:
        if not v.name:
            return
        entry: dict[str, Any] = {"type": str(v.type) if v.type is not None else None}
        t = v.type
        if isinstance(t, TensorType):
            entry["dtype"] = t.elem_type.onnx_name if t.elem_type != DataType.UNDEFINED else None
            entry["shape"] = list(t.shape) if t.shape is not None else None
        elif t is not None and getattr(t, "elem_type", None) is not None:
            inner = getattr(t, "elem_type")
            if isinstance(inner, TensorType) and inner.shape is not None:
                entry["shape"] = list(inner.shape)
        if v.doc_string:
            entry["doc"] = v.doc_string
        values[v.name] = entry

    def _node(self, node: Node, nid: str, where: str,
              opsets: dict[str, int]) -> dict[str, Any]:
        dom = _norm(node.domain)
        opset = opsets.get(dom, opsets.get("ai.onnx") if not dom else None)
        key = (dom, node.op_type, opset)
        version = self._versions.get(key, -1)
        if version == -1:  # a large graph repeats few operators: look each up once
            version = None
            if opset is not None:
                try:
                    schema = defs.lookup(node.domain, node.op_type, opset)
                except PyOnnxError:
                    schema = None
                version = schema.since_version if schema is not None else None
            self._versions[key] = version
        attrs, subs = [], []
        for name, a in node.attributes.items():
            attrs.append(self._attribute(a))
            if a.ref_attr_name:
                continue
            if a.type == AttributeType.GRAPH and isinstance(a.value, Graph):
                subs.append([name, self.graph(a.value, f"{nid}/{name}", f"{where} > {name}",
                                                 opsets)])
            elif a.type == AttributeType.GRAPHS:
                for k, g in enumerate(a.value):
                    label = f"{name}[{k}]"
                    subs.append([label, self.graph(g, f"{nid}/{label}", f"{where} > {label}",
                                                   opsets)])
        out: dict[str, Any] = {
            "id": nid, "name": node.name, "op": node.op_type, "domain": node.domain,
            "version": version,
            "in": [v.name if v is not None else "" for v in node.inputs],
            "out": [v.name for v in node.outputs], "attrs": attrs,
        }
        if node.doc_string:
            out["doc"] = node.doc_string
        if node.overload:
            out["overload"] = node.overload
        if node.metadata_props:
            out["meta"] = dict(node.metadata_props)
        if subs:
            out["sub"] = subs
        return out

    def _attribute(self, a: Any) -> dict[str, Any]:
        """One attribute as ``{"name", "type", "value"}`` where ``value`` is display text (a
        tensor attribute also gets ``stats``)."""
        out: dict[str, Any] = {"name": a.name, "type": a.type.name.lower()}
        if a.ref_attr_name:
            out["value"] = f"@{a.ref_attr_name} (the calling node's attribute)"
            return out
        v, t = a.value, a.type
        if t == AttributeType.TENSOR and isinstance(v, Tensor):
            out["stats"] = tensor_stats(v)
            out["value"] = _tensor_text(v, out["stats"])
        elif t == AttributeType.SPARSE_TENSOR and isinstance(v, SparseTensor):
            out["stats"] = tensor_stats(v)
            out["value"] = f"sparse {out['stats']['dtype']}{list(v.dims)}"
        elif t == AttributeType.GRAPH:
            out["value"] = f"graph {getattr(v, 'name', '')!r} ({len(getattr(v, 'nodes', []))} nodes)"
        elif t == AttributeType.GRAPHS:
            out["value"] = f"{len(v)} graphs"
        elif t in (AttributeType.TENSORS, AttributeType.SPARSE_TENSORS):
            out["value"] = f"{len(v)} tensors"
        elif t in (AttributeType.FLOATS, AttributeType.INTS, AttributeType.STRINGS,
                   AttributeType.TYPE_PROTOS):
            items = [_scalar_text(x) for x in list(v)[:_MAX_LIST]]
            more = len(v) - len(items)
            out["value"] = "[" + ", ".join(items) + (f", … {more} more" if more > 0 else "") + "]"
        else:
            out["value"] = _scalar_text(v)
        if a.doc_string:
            out["doc"] = a.doc_string
        return out


def _scalar_text(x: Any) -> str:
    if isinstance(x, bytes):
        x = x.decode("utf-8", "replace")
    if isinstance(x, str):
        return repr(x if len(x) <= _MAX_TEXT else x[:_MAX_TEXT] + "…")
    if isinstance(x, float):
        return repr(x)
    return str(x)


def _tensor_text(t: Tensor, stats: dict[str, Any]) -> str:
    """A small constant is shown with its values; a larger one by type and shape."""
    head = f"{stats['dtype']}[{','.join(str(d) for d in t.dims)}]"
    if stats["size"] <= 16 and "error" not in stats:
        try:
            vals = [_scalar_text(x.item() if hasattr(x, "item") else x)
                    for x in t.numpy().reshape(-1)]
        except Exception:  # noqa: BLE001 - undecodable data: show the type only
            return head
        return f"{head} [{', '.join(vals)}]"
    return head


def _violations(model: Model, locations: dict[str, str], notes: list[str]) -> list[dict]:
    from pyonnx.checker import collect_violations

    try:
        found = collect_violations(model)
    except PyOnnxError as e:
        notes.append(f"the checker stopped: {e}")
        return []
    except Exception as e:  # noqa: BLE001 - as for inference above
        notes.append(f"the checker stopped with an internal error: {type(e).__name__}: {e}")
        return []
    out = []
    for v in found:
        node = None
        loc = v.location
        # the node is the longest ' > '-separated prefix that names one
        while loc:
            if loc in locations:
                node = locations[loc]
                break
            loc = loc.rpartition(" > ")[0]
        out.append({"rule": v.rule, "location": v.location, "message": v.message, "node": node})
    return out
