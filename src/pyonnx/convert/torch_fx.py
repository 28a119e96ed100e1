"""ONNX -> PyTorch: :func:`to_torch` turns a model into a ``torch.fx.GraphModule``.

The module holds the model's initializers (floating-point ones as trainable parameters, the
others as buffers) and its graph as one call per node of a function of the torch op table
(:mod:`pyonnx.backends.torch.ops`, the same functions the torch execution provider runs), so
``print(gm.code)`` reads like the ONNX graph. Shapes stay dynamic: Shape, Reshape, Slice and
their kin read sizes at run time. Control flow:

* ``If`` whose condition is a constant (an initializer or a Constant node) is resolved at
  conversion: the taken branch's nodes are inlined. Otherwise it calls :func:`onnx_if`, which
  runs ``torch.cond`` under ``torch.compile``/``torch.export`` and a Python branch in eager mode;
* ``Loop`` and ``Scan`` call :func:`onnx_loop` and :func:`onnx_scan`, Python loops over the body.

Each branch or body is a sub-``GraphModule`` whose inputs are the body's inputs followed by the
outer values it reads. torch is imported only when this module is (``pyonnx.convert`` imports it
lazily).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.fx

from pyonnx import defs
from pyonnx.backends.torch.dtypes import from_numpy
from pyonnx.backends.torch.fx import Names, NodeEmitter
from pyonnx.backends.torch.ops import claim
from pyonnx.errors import UnsupportedOperatorError
from pyonnx.ir import AttributeType, Graph, Model, Node, Value
from pyonnx.ops._values import NO_LIMIT, constant_array
from pyonnx.ops.bind import decode_attributes

__all__ = ["to_torch", "onnx_if", "onnx_loop", "onnx_scan"]


# ---------------------------------------------------------------- control flow at run time

def onnx_if(cond: torch.Tensor, then_branch: torch.nn.Module, else_branch: torch.nn.Module,
            *captured: torch.Tensor) -> Any:
    """ONNX If: ``then_branch(*captured)`` when ``cond`` holds, else ``else_branch(*captured)``.
    Under ``torch.compile`` or ``torch.export`` this is ``torch.cond`` (both branches traced,
    their outputs must agree in shape and dtype); eagerly, a Python branch."""
    if torch.compiler.is_compiling():
        return torch.cond(cond.reshape(()), then_branch, else_branch, tuple(captured))
    return then_branch(*captured) if bool(cond) else else_branch(*captured)


def _as_tuple(x: Any) -> tuple:
    return x if isinstance(x, tuple) else (x,)


def onnx_loop(max_trip_count: torch.Tensor | None, cond: torch.Tensor | None,
              body: torch.nn.Module, n_carried: int, *args: torch.Tensor) -> tuple:
    """ONNX Loop: run ``body(i, cond, *carried, *captured)`` while the condition holds and
    fewer than ``max_trip_count`` iterations ran; returns the final carried values, then each
    scan output stacked along a new first axis. ``args`` are the carried values then the
    captured outer values."""
    carried, captured = list(args[:n_carried]), args[n_carried:]
    limit = None if max_trip_count is None else int(max_trip_count)
    keep = True if cond is None else bool(cond)
    scans: list[list[torch.Tensor]] = []
    i = 0
    while keep and (limit is None or i < limit):
        outs = _as_tuple(body(torch.tensor(i, dtype=torch.int64), torch.tensor(keep),
                              *carried, *captured))
        keep = bool(outs[0])
        carried = list(outs[1:1 + n_carried])
        parts = outs[1 + n_carried:]
        if not scans:
            scans = [[] for _ in parts]
        for acc, p in zip(scans, parts):
            acc.append(p)
        i += 1
    return (*carried, *[torch.stack(acc) for acc in scans])


def onnx_scan(body: torch.nn.Module, n_states: int, n_scan_inputs: int, n_scan_outputs: int,
              input_axes: list[int], input_reverse: list[int], output_axes: list[int],
              output_reverse: list[int], *args: torch.Tensor) -> tuple:
    """ONNX Scan (version 9 and later): ``args`` are the initial states, the scan inputs, then
    the captured outer values; the body runs once per slice of the scan inputs along their
    axes (reversed where asked) and returns the final states, then the scan outputs stacked
    along theirs."""
    states = list(args[:n_states])
    xs = list(args[n_states:n_states + n_scan_inputs])
    captured = args[n_states + n_scan_inputs:]
    xs = [torch.flip(x, [a]) if r else x for x, a, r in zip(xs, input_axes, input_reverse)]
    steps = xs[0].shape[input_axes[0]] if xs else 0
    outs: list[list[torch.Tensor]] = [[] for _ in range(n_scan_outputs)]
    for t in range(steps):
        res = _as_tuple(body(*states, *[x.select(a, t) for x, a in zip(xs, input_axes)],
                             *captured))
        states = list(res[:n_states])
        for acc, y in zip(outs, res[n_states:]):
            acc.append(y)
    ys = []
    for acc, a, r in zip(outs, output_axes, output_reverse):
        y = torch.stack(acc, a)
        ys.append(torch.flip(y, [a]) if r else y)
    return (*states, *ys)


# ---------------------------------------------------------------- conversion

def _load(model: Any) -> Model:
    if isinstance(model, Model):
        return model
    import pyonnx

    return pyonnx.load(model)


def _free_values(graph: Graph) -> list[Value]:
    """The values that ``graph`` (and the graphs nested in it) read from enclosing scopes, in
    first-use order."""
    defined: set[int] = set()
    free: dict[int, Value] = {}

    def walk(g: Graph) -> None:
        defined.update(id(v) for v in g.inputs)
        defined.update(id(v) for v in g.initializers.values())
        for n in g.nodes:
            for v in n.inputs:
                if v is not None and id(v) not in defined and id(v) not in free:
                    free[id(v)] = v
            for sub in n.subgraphs():
                walk(sub)
            defined.update(id(v) for v in n.outputs)

    walk(graph)
    return [v for k, v in free.items() if k not in defined]


def _constant_bool(v: Value) -> bool | None:
    """The value of a condition known at conversion (an initializer or a Constant's output)."""
    if v.const_value is not None and hasattr(v.const_value, "numpy"):
        return bool(np.asarray(v.const_value.numpy()).reshape(-1)[0])
    p = v.producer
    if p is not None and p.op_type == "Constant" and "value" in p.attributes:
        return bool(np.asarray(p.attributes["value"].value.numpy()).reshape(-1)[0])
    return None


class _Converter(NodeEmitter):
    """Builds one GraphModule for a graph; nested graphs get their own converter."""

    def __init__(self, model: Model, root: torch.nn.Module, names: Names) -> None:
        super().__init__(root, names)
        self.model = model

    def _constant(self, name: str, array: Any) -> torch.fx.Node:
        t = from_numpy(np.array(array, copy=True))
        trainable = t.is_floating_point() and t.dim() > 0
        return self._attr(name, t, trainable)

    # ------------------------------------------------------------ graphs

    def graph_inputs(self, graph: Graph, free: list[Value]) -> None:
        for v in graph.inputs:
            if v.name in graph.initializers and graph.parent is None:
                continue  # an overridable initializer: a parameter of the module
            self.env[id(v)] = self.fx.placeholder(self.names(v.name, "input"))
        for v in free:
            self.env[id(v)] = self.fx.placeholder(self.names(v.name, "outer"))

    def nodes(self, graph: Graph) -> None:
        for name, v in graph.initializers.items():
            self.env[id(v)] = self._constant(name, constant_array(v, NO_LIMIT))
        for node in graph.nodes:
            self.node(node)

    def output(self, graph: Graph, as_tuple: bool) -> None:
        outs = tuple(self.env[id(v)] for v in graph.outputs)
        self.fx.output(outs if as_tuple or len(outs) != 1 else outs[0])

    def module(self, graph: Graph, free: list[Value], as_tuple: bool) -> torch.fx.GraphModule:
        self.graph_inputs(graph, free)
        self.nodes(graph)
        self.output(graph, as_tuple)
        return torch.fx.GraphModule(self.root, self.fx, class_name=self.names(graph.name or
                                                                                "graph", "g"))

    # ------------------------------------------------------------ nodes

    def _since(self, node: Node) -> tuple[str, int]:
        domain = defs.normalize_domain(node.domain)
        opset = self.model.opset(domain)
        schema = defs.lookup(domain, node.op_type, opset or 0) if opset else None
        if schema is None:
            raise UnsupportedOperatorError(
                f"{node.describe()}: no schema for {node.op_type} at opset {opset} of domain "
                f"{domain or 'ai.onnx'!r}; to_torch converts standard operators only")
        return domain, schema.since_version

    def node(self, node: Node) -> None:
        if node.op_type in ("If", "Loop", "Scan") and defs.normalize_domain(node.domain) == "":
            getattr(self, f"_{node.op_type.lower()}")(node)
            return
        domain, since = self._since(node)
        entry, why = claim(node, domain, since)
        if entry is None:
            raise UnsupportedOperatorError(f"to_torch cannot convert {why}")
        attrs, _ = decode_attributes(node.attributes.values(), node.describe())
        self.call(node, entry, attrs)

    def _subgraph(self, graph: Graph, as_tuple: bool = True
                  ) -> tuple[torch.fx.Node, list[torch.fx.Node]]:
        """A nested graph as a submodule (a get_attr node) and the outer values it reads."""
        free = _free_values(graph)
        sub = _Converter(self.model, torch.nn.Module(), self.names).module(graph, free, as_tuple)
        return self._attr(graph.name or "body", sub, False), [self._read(v) for v in free]

    def _if(self, node: Node) -> None:
        then_g = node.attributes["then_branch"].value
        else_g = node.attributes["else_branch"].value
        known = _constant_bool(node.inputs[0])
        if known is not None:
            # a condition known now: inline the taken branch (it reads this graph's values)
            branch = then_g if known else else_g
            for name, v in branch.initializers.items():
                self.env[id(v)] = self._constant(name, constant_array(v, NO_LIMIT))
            for n in branch.nodes:
                self.node(n)
            for v, out in zip(node.outputs, branch.outputs):
                self.env[id(v)] = self.env[id(out)]
            return
        then_m, then_free = self._subgraph(then_g)
        else_m, else_free = self._subgraph(else_g)
        # both branches take the union of what they read; each ignores the other's extras
        free = list(dict.fromkeys(then_free + else_free))
        then_m = self._widen(then_m, then_free, free)
        else_m = self._widen(else_m, else_free, free)
        result = self.fx.call_function(onnx_if, (self._read(node.inputs[0]), then_m, else_m,
                                                 *free))
        result.name = self.names(node.name or "if_")
        self._bind_outputs(node, result, True)

    def _widen(self, module_node: torch.fx.Node, own: list[torch.fx.Node],
               union: list[torch.fx.Node]) -> torch.fx.Node:
        """A branch module taking ``union`` in place of ``own`` (same order, extras ignored)."""
        if own == union:
            return module_node
        gm = getattr(self.root, module_node.target)
        positions = [union.index(n) for n in own]
        wrapper = _Select(gm, positions)
        return self._attr(f"{module_node.target}_args", wrapper, False)

    def _loop(self, node: Node) -> None:
        body = node.attributes["body"].value
        body_m, free = self._subgraph(body)
        m, cond = self._read(node.inputs[0]), self._read(node.inputs[1])
        carried = [self._read(v) for v in node.inputs[2:]]
        result = self.fx.call_function(onnx_loop, (m, cond, body_m, len(carried), *carried,
                                                    *free))
        result.name = self.names(node.name or "loop")
        self._bind_outputs(node, result, True)

    def _scan(self, node: Node) -> None:
        body = node.attributes["body"].value
        attrs = {k: a.value for k, a in node.attributes.items() if a.type != AttributeType.GRAPH}
        n_in = attrs["num_scan_inputs"]
        n_states = len(node.inputs) - n_in
        n_out = len(node.outputs) - n_states
        if self._since(node)[1] < 9:
            raise UnsupportedOperatorError(f"{node.describe()}: Scan before version 9 (with a "
                                           f"batch axis) is not converted")
        in_axes = list(attrs.get("scan_input_axes", [0] * n_in))
        in_rev = list(attrs.get("scan_input_directions", [0] * n_in))
        out_axes = list(attrs.get("scan_output_axes", [0] * n_out))
        out_rev = list(attrs.get("scan_output_directions", [0] * n_out))
        # negative axes: scan inputs count from their own rank, outputs from rank + 1
        in_ranks = [len(v.type.shape) if v.type is not None and getattr(v.type, "shape", None)
                    is not None else None for v in node.inputs[n_states:]]
        in_axes = [a + r if a < 0 and r is not None else a for a, r in zip(in_axes, in_ranks)]
        out_ranks = [len(v.type.shape) if v.type is not None and getattr(v.type, "shape", None)
                     is not None else None for v in node.outputs[n_states:]]
        out_axes = [a + r if a < 0 and r is not None else a for a, r in zip(out_axes, out_ranks)]
        body_m, free = self._subgraph(body)
        ins = [self._read(v) for v in node.inputs]
        result = self.fx.call_function(onnx_scan, (body_m, n_states, n_in, n_out, in_axes,
                                                   in_rev, out_axes, out_rev, *ins, *free))
        result.name = self.names(node.name or "scan")
        self._bind_outputs(node, result, True)


class _Select(torch.nn.Module):
    """Calls ``module`` with the arguments at ``positions`` (a branch's own outer values out of
    the union both branches of an If receive)."""

    def __init__(self, module: torch.nn.Module, positions: list[int]) -> None:
        super().__init__()
        self.module = module
        self.positions = positions

    def forward(self, *args: torch.Tensor) -> Any:
        return self.module(*[args[i] for i in self.positions])


def to_torch(model: Any) -> torch.fx.GraphModule:
    """``model`` (a path, bytes, a :class:`pyonnx.ir.Model` or an ``onnx.ModelProto``) as a
    ``torch.fx.GraphModule`` (see the module docstring). Its forward takes the graph inputs
    (those that are not initializers) in order and returns the output, or a tuple when the graph
    has several. A node the torch op table does not claim raises
    :class:`~pyonnx.errors.UnsupportedOperatorError` naming it and saying why."""
    m = _load(model)
    if m.functions:
        used = {(f.domain, f.name) for f in m.functions}
        if any((n.domain, n.op_type) in used for n in m.graph.all_nodes()):
            raise UnsupportedOperatorError("to_torch does not convert model-local functions; "
                                           "inline them first (pyonnx.optimize)")
    root = torch.nn.Module()
    conv = _Converter(m, root, Names())
    return conv.module(m.graph, [], as_tuple=False)
