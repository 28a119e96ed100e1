"""The opset version converter: :func:`convert_version`.

A node of the default domain is moved one schema boundary at a time. Going up from opset *a* to
*b*, every ``since_version`` *v* of its operator with *a < v <= b* is a boundary; going down, the
node's current schema's ``since_version`` is one while it is above the target. At each boundary an
adapter registered for (operator, *v*) rewrites the node (an attribute becomes an input, a
``Softmax`` gets a ``Flatten``, an operator the target lacks becomes its decomposition, …); the
generic rule then drops attributes the next schema does not declare when they hold their default
value and refuses any other difference. Nodes an adapter produces continue from the opset they were
written for. At the end every node's input and output types are checked against the target
schema's type constraints.

Nothing is modified in place: the caller's model is copied (tensors are shared), and when any node
cannot be expressed an :class:`OpsetConversionError` lists every such node.
"""

from __future__ import annotations

import itertools
from typing import Any

from pyonnx import defs
from pyonnx.convert._context import Ctx, OpsetConversionError, Refuse
from pyonnx.errors import InvalidArgument, PyOnnxError
from pyonnx.ir import Graph, Model, Node, TensorType, Value

__all__ = ["convert_version", "MIN_OPSET", "ir_version_for_opset", "OpsetConversionError"]

#: The oldest default-domain opset the converter reads or writes.
MIN_OPSET = 7

# the IR version each default-domain opset was released with (the onnx release that introduced it)
_IR_FOR_OPSET = {7: 3, 8: 3, 9: 4, 10: 5, 11: 6, 12: 7, 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8,
                 19: 9, 20: 9, 21: 10, 22: 10, 23: 11, 24: 12, 25: 13, 26: 13, 27: 13, 28: 14}


def ir_version_for_opset(opset: int) -> int:
    """The IR version of the onnx release that introduced default-domain opset ``opset``."""
    if opset in _IR_FOR_OPSET:
        return _IR_FOR_OPSET[opset]
    return 3 if opset < MIN_OPSET else defs.MAX_IR_VERSION


def _is_default(domain: str) -> bool:
    return domain in ("", "ai.onnx")


def _removed(schema: Any) -> bool:
    """Whether ``schema`` is the version that removed its operator (deprecated and last)."""
    if schema is None or not schema.deprecated:
        return False
    return defs.versions(schema.domain, schema.name)[-1] == schema.since_version


def convert_version(model: Any, target_opset: int) -> Model:
    """A copy of ``model`` whose default-domain opset is ``target_opset`` (7 to the newest pyonnx
    knows), computing the same outputs.

    ``model`` is a :class:`~pyonnx.ir.Model` or anything :func:`pyonnx.load` reads. The main graph,
    its subgraphs and model-local functions are converted; other domains are kept. The IR version
    becomes the one the target opset was released with (at least what the model's other features
    need); below IR 4 every initializer is also listed as a graph input. Raises
    :class:`OpsetConversionError` (an :class:`~pyonnx.errors.UnsupportedOperatorError`) naming
    every node that cannot be expressed at the target opset, and :class:`InvalidArgument` for a
    target outside the supported range.
    """
    from pyonnx.io import load
    from pyonnx.shape_inference._copy import copy_model

    top = defs.max_opset("")
    if not isinstance(target_opset, int) or not MIN_OPSET <= target_opset <= top:
        raise InvalidArgument(f"target opset {target_opset!r} is outside the range pyonnx "
                              f"converts to ({MIN_OPSET} to {top})")
    if not isinstance(model, Model):
        model = load(model)
    source = model.opset("")
    if source is None:
        source = target_opset  # no default-domain operators to convert
    if source < 1 or source > top:
        raise InvalidArgument(f"model imports default-domain opset {source}; pyonnx converts "
                              f"from opsets 1 to {top}")
    out = copy_model(model)
    types = _LazyTypes(model)
    names = _all_names(out)
    counter = itertools.count()
    problems: list[str] = []
    _convert_graph(out.graph, source, target_opset, types, names, counter, problems, False)
    for f in out.functions:
        fsrc = f.opset_imports.get("", f.opset_imports.get("ai.onnx"))
        if fsrc is None:
            continue
        _convert_graph(f.graph, fsrc, target_opset, {}, names, counter, problems, True)
        f.opset_imports.pop("ai.onnx", None)
        f.opset_imports[""] = target_opset
    if problems:
        head = (f"cannot convert the model from opset {source} to opset {target_opset}: "
                f"{len(problems)} node(s) have no equivalent there (choose a target opset "
                f"closer to {source}, or rewrite these nodes first)")
        raise OpsetConversionError(head + ":\n  " + "\n  ".join(problems), problems)
    out.opset_imports.pop("ai.onnx", None)
    out.opset_imports[""] = target_opset
    out.ir_version = _ir_version(out, target_opset, model.ir_version)
    if out.ir_version < 4:
        _initializers_as_inputs(out.graph)
    return out


# ---- the walk ----------------------------------------------------------------------------------

def _convert_graph(graph: Graph, src: int, dst: int, types: Any, names: set[str],
                   counter: itertools.count, problems: list[str], in_function: bool) -> None:
    from pyonnx.convert.adapters import DOWN, UP

    ctx = Ctx(graph, types, names, counter, in_function, dst)
    refused: set[int] = set()
    for node in list(graph.nodes):
        for sg in node.subgraphs():
            _convert_graph(sg, src, dst, types, names, counter, problems, in_function)
        if not _is_default(node.domain):
            continue
        work: list[tuple[Node, int]] = [(node, src)]
        while work:
            n, cur = work.pop(0)
            ctx.current = n
            try:
                res = _step(ctx, n, cur, dst, UP, DOWN)
            except Refuse as e:
                problems.append(_where(n, graph, e))
                refused.add(id(n))
                continue
            if res is not None:
                new_nodes, at = res
                for v in n.outputs:  # outputs no replacement node produces (now initializers)
                    if v.producer is n:
                        v.producer, v.producer_index = None, -1
                for nn in new_nodes:
                    if nn.graph is None:
                        graph.insert_before(nn, n)
                graph.remove(n)
                work[0:0] = [(nn, at) for nn in new_nodes]
        ctx.current = None
    for n in graph.nodes if dst < src else ():  # going up, type sets only grow
        if _is_default(n.domain) and id(n) not in refused:
            try:
                _check_types(ctx, n, dst)
            except Refuse as e:
                problems.append(_where(n, graph, e))
    _drop_dead_constants(ctx)


def _where(node: Node, graph: Graph, e: Exception) -> str:
    g = f" in graph {graph.name!r}" if graph.name else ""
    return f"{node.describe()}{g}: {e}"


def _step(ctx: Ctx, node: Node, cur: int, dst: int, up: dict, down: dict
          ) -> tuple[list[Node], int] | None:
    """Move ``node`` from opset ``cur`` towards ``dst``; returns replacement nodes and the opset
    they are written for when an adapter replaced the node, else None (converted in place)."""
    op = node.op_type
    vs = defs.versions("", op)
    if not vs:
        raise Refuse(f"operator {op!r} is not part of the ONNX standard")
    start = defs.lookup("", op, cur)
    if start is None or _removed(start):
        raise Refuse(f"operator {op!r} does not exist at the model's opset {cur}")
    while cur != dst:
        if dst > cur:
            nxt = [v for v in vs if cur < v <= dst]
            if not nxt:
                return None
            v = nxt[0]
            before = defs.lookup("", op, v - 1)
            after = defs.lookup("", op, v)
            fn = up.get((op, v))
            res = fn(ctx, node) if fn is not None else None
            if res is not None:
                return res, v
            if _removed(after):
                raise Refuse(f"operator {op!r} was removed in opset {v} and has no replacement")
            _generic(ctx, node, before, after)
            cur = v
        else:
            s = defs.lookup("", op, cur)
            if s.since_version <= dst:
                return None
            v = s.since_version
            prev = defs.lookup("", op, v - 1)
            fn = down.get((op, v))
            res = fn(ctx, node) if fn is not None else None
            if res is not None:
                return res, v - 1
            if prev is None or _removed(prev):
                raise Refuse(f"operator {op!r} does not exist before opset {v} and no "
                             f"decomposition into older operators is known")
            _generic(ctx, node, s, prev)
            cur = v - 1
    return None


def _generic(ctx: Ctx, node: Node, old: Any, new: Any) -> None:
    """What every boundary needs: attributes the next schema lacks are dropped when they hold
    their default value, inputs and outputs beyond what it takes must be absent or unused."""
    from pyonnx.convert._context import attr_value

    for name in list(node.attributes):
        if name in new.attributes:
            continue
        spec = old.attributes.get(name)
        value = attr_value(node, name)
        default = spec.default if spec is not None else None
        if isinstance(default, tuple):
            default = list(default)
        if default is not None and value == default:
            del node.attributes[name]
            continue
        raise Refuse(f"attribute {name}={value!r} has no equivalent in {new.name}-"
                     f"{new.since_version}")
    while node.inputs and node.inputs[-1] is None:
        node.inputs.pop()
    if len(node.inputs) > new.max_input:
        raise Refuse(f"{len(node.inputs)} inputs given; {new.name}-{new.since_version} takes at "
                     f"most {new.max_input}")
    while len(node.outputs) > new.max_output:
        extra = node.outputs[-1]
        if extra.uses or _is_graph_output(node, extra):
            raise Refuse(f"output {len(node.outputs) - 1} ({extra.name!r}) is used; "
                         f"{new.name}-{new.since_version} has at most {new.max_output} outputs")
        node.outputs.pop()
    for name in new.required_attributes:
        if name not in node.attributes:
            raise Refuse(f"{new.name}-{new.since_version} requires attribute {name!r}, which "
                         f"has no source here")


def _is_graph_output(node: Node, v: Value) -> bool:
    g = node.graph
    return g is not None and any(o is v for o in g.outputs)


def _type_str(ctx: Ctx, v: Value) -> str | None:
    """The type of ``v`` as a schema spells it (``tensor(float)``), None when unknown."""
    t = ctx.type_of(v)
    if t is not None and not isinstance(t, TensorType):
        try:
            return str(t)
        except Exception:  # noqa: BLE001 - an incomplete sequence/map type cannot be checked
            return None
    dt = ctx.dtype(v)
    return f"tensor({dt.onnx_name})" if dt is not None else None


def _check_types(ctx: Ctx, node: Node, opset: int) -> None:
    """Every known input/output type must be one the target schema's constraints allow, and
    values bound to one type parameter must agree."""
    s = defs.lookup("", node.op_type, opset)
    if s is None or _removed(s):
        raise Refuse(f"operator {node.op_type!r} does not exist at opset {opset}")
    bound: dict[str, str] = {}
    for params, values, kind in ((s.inputs, node.inputs, "input"),
                                 (s.outputs, node.outputs, "output")):
        for i, v in enumerate(values):
            if v is None or not v.name and kind == "output":
                continue
            if not params:
                break
            p = params[min(i, len(params) - 1)]
            if i >= len(params) and not p.is_variadic:
                break
            ts = _type_str(ctx, v)
            if ts is None:
                continue
            allowed = s.type_constraints.get(p.type_str)
            if allowed is None:
                allowed = (p.type_str,)
            if ts not in allowed:
                raise Refuse(f"{kind} {i} ({v.name!r}) has type {ts}, which "
                             f"{s.name}-{s.since_version} does not accept at opset {opset} "
                             f"(allowed: {', '.join(allowed)})")
            if p.type_str in s.type_constraints and (p.is_homogeneous or not p.is_variadic):
                seen = bound.setdefault(p.type_str, ts)
                if seen != ts:
                    raise Refuse(f"{kind} {i} ({v.name!r}) has type {ts} but "
                                 f"{s.name}-{s.since_version} wants the same type as its other "
                                 f"{p.type_str} values ({seen})")


def _drop_dead_constants(ctx: Ctx) -> None:
    """Constants that adapters turned into attributes and that nothing else reads go away."""
    g = ctx.graph
    outs = {id(v) for v in g.outputs}
    for v in ctx.detached_consts:
        if v.uses or id(v) in outs:
            continue
        p = v.producer
        if p is not None and p.op_type == "Constant" and p.graph is g:
            g.remove(p)
        elif p is None and g.initializers.get(v.name) is v and all(i is not v for i in g.inputs):
            del g.initializers[v.name]


# ---- model-level facts -------------------------------------------------------------------------

class _LazyTypes:
    """Value name -> type, from shape inference over the source model, run on the first
    question (many conversions ask none: inference is most of a conversion's cost)."""

    def __init__(self, model: Model) -> None:
        self._model = model
        self._types: dict[str, Any] | None = None

    def get(self, name: str, default: Any = None) -> Any:
        if self._types is None:
            self._types = _known_types(self._model)
            self._model = None  # type: ignore[assignment]
        return self._types.get(name, default)


def _known_types(model: Model) -> dict[str, Any]:
    """Value name -> type, from shape inference over the model (declared types where it fails)."""
    types: dict[str, Any] = {}
    try:
        from pyonnx.shape_inference import infer_shapes

        typed = infer_shapes(model)
    except PyOnnxError:
        typed = model
    except Exception:  # noqa: BLE001 - a rule that crashes on an odd model only loses types
        typed = model

    def visit(g: Graph) -> None:
        for v in [*g.inputs, *g.outputs, *g.value_info, *g.initializers.values()]:
            if v.type is not None:
                types.setdefault(v.name, v.type)
        for n in g.nodes:
            for v in n.outputs:
                if v.type is not None:
                    types.setdefault(v.name, v.type)
            for sg in n.subgraphs():
                visit(sg)

    visit(typed.graph)
    return types


def _all_names(model: Model) -> set[str]:
    names: set[str] = set()

    def visit(g: Graph) -> None:
        names.update(v.name for v in g.inputs)
        names.update(g.initializers)
        for n in g.nodes:
            names.update(v.name for v in n.outputs)
            names.add(n.name)
            for sg in n.subgraphs():
                visit(sg)

    visit(model.graph)
    for f in model.functions:
        visit(f.graph)
    return names


def _ir_version(model: Model, opset: int, source_ir: int) -> int:
    """The IR version the converted model declares: the target opset's, raised to what the
    model's other opset imports and local functions need (the preview domains, whose opsets
    pyonnx does not convert, keep the source's)."""
    ir = ir_version_for_opset(opset)
    if model.functions:
        ir = max(ir, 8)
    for domain, version in model.opset_imports.items():
        if domain == "ai.onnx.ml":
            ir = max(ir, {1: 3, 2: 6, 3: 8, 4: 9, 5: 10}.get(version, 3))
        elif domain.startswith("ai.onnx.preview"):
            ir = max(ir, source_ir)
    return ir


def _initializers_as_inputs(graph: Graph) -> None:
    """IR < 4: every initializer of the main graph must also be a graph input."""
    listed = {v.name for v in graph.inputs}
    for name, v in graph.initializers.items():
        if name in listed:
            continue
        if v.type is None and v.const_value is not None:
            v.type = TensorType(v.const_value.data_type, tuple(v.const_value.dims))
        graph.inputs.append(v)
