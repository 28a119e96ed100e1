"""Rules on the model as a whole: its IR version, its opset imports, and its model-local
functions (unique ids, distinct parameter names, bodies checked with the graph rules under the
function's own opset imports, no recursion).

An IR version older than the one that introduced the imported opsets (the release table of the
ONNX versioning document) is reported as an :class:`IrVersionWarning`, not a violation:
``onnx.checker`` and onnxruntime accept such models, and they run correctly.
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Sequence

from pyonnx import defs
from pyonnx.checker._context import CheckContext, GraphEnv
from pyonnx.checker.graph_rules import check_graph
from pyonnx.ir import AttributeType, Function, Graph, Node

__all__ = ["IrVersionWarning", "check_versions", "check_opset_imports", "check_functions",
           "check_function_recursion", "min_ir_version"]


class IrVersionWarning(UserWarning):
    """The model's IR version predates the opsets it imports (the model is still accepted)."""


# From the release table of onnx docs/Versioning.md: for each domain, the first opset version
# that each IR version shipped with, as (first opset, IR version) pairs in ascending order. An
# opset needs at least the IR version of the release that introduced it.
_FIRST_IR: dict[str, tuple[tuple[int, int], ...]] = {
    "": ((1, 3), (9, 4), (10, 5), (11, 6), (12, 7), (15, 8), (19, 9), (21, 10), (23, 11),
         (24, 12), (25, 13), (28, 14)),
    "ai.onnx.ml": ((1, 3), (2, 6), (3, 8), (4, 9), (5, 10)),
    "ai.onnx.training": ((1, 7),),
}


def min_ir_version(domain: str, version: int) -> int | None:
    """The oldest IR version whose release includes opset ``version`` of ``domain`` (None when
    the table does not cover the domain)."""
    table = _FIRST_IR.get(defs.normalize_domain(domain))
    if table is None or version < 1:
        return None
    i = bisect.bisect_right([first for first, _ in table], version) - 1
    return table[max(i, 0)][1]


def check_versions(ctx: CheckContext) -> None:
    """The IR version is set and supported; warn when it predates the imported opsets."""
    m = ctx.model
    if m.ir_version < 1:
        ctx.report("ir-version", "model",
                   f"ir_version is {m.ir_version}; set it to the IR version the model follows "
                   f"(1 to {defs.MAX_IR_VERSION})")
        return
    if m.ir_version > defs.MAX_IR_VERSION:
        ctx.report("ir-version", "model",
                   f"ir_version {m.ir_version} is newer than pyonnx supports "
                   f"({defs.MAX_IR_VERSION})")
        return
    needs = []
    for domain, version in m.opset_imports.items():
        need = min_ir_version(domain, version)
        if need is not None and need > m.ir_version:
            needs.append((need, domain or "ai.onnx", version))
    if needs:
        need, domain, version = max(needs)
        warnings.warn(IrVersionWarning(
            f"model has IR version {m.ir_version} but imports opset {version} of {domain}, "
            f"which came with IR version {need}; re-save the model with ir_version={need} (it "
            f"is accepted as it is)"), stacklevel=3)


def check_opset_imports(ctx: CheckContext, imports: dict[str, int], location: str) -> None:
    """Versions are >= 1 and known; the default domain is not imported twice (as ``""`` and
    ``"ai.onnx"``)."""
    if "" in imports and "ai.onnx" in imports:
        ctx.report("opset-import", location,
                   f"the default domain is imported twice, as '' (opset {imports['']}) and as "
                   f"'ai.onnx' (opset {imports['ai.onnx']}); keep one entry")
    for domain, version in imports.items():
        name = domain or "ai.onnx"
        if version < 1:
            ctx.report("opset-import", location,
                       f"domain {name!r} is imported with version {version}; versions start at 1")
            continue
        top = defs.max_opset(domain)
        if top is not None and version > top:
            ctx.report("opset-import", location,
                       f"opset {version} of {name} does not exist (pyonnx knows 1 to {top})")


def check_functions(ctx: CheckContext, functions: Sequence[Function] | None = None) -> None:
    """Function ids are unique; signatures have distinct names; bodies pass the graph rules.
    ``functions`` defaults to every model-local function of the context."""
    seen: set[tuple[str, str, str]] = set()
    for f in ctx.model_functions if functions is None else functions:
        loc = f"function '{f.domain}::{f.name}'" + (f" (overload {f.overload!r})"
                                                      if f.overload else "")
        if not f.name:
            ctx.report("name", loc, "the function has no name")
        key = (defs.normalize_domain(f.domain), f.name, f.overload)
        if key in seen:
            ctx.report("function", loc,
                       "another model-local function has the same (domain, name, overload); "
                       "function ids must be unique")
            continue
        seen.add(key)
        _check_signature(ctx, f, loc)
        check_opset_imports(ctx, f.opset_imports, loc)
        check_graph(ctx, f.graph, loc, GraphEnv(f.opset_imports, f), None, function=True)


def _check_signature(ctx: CheckContext, f, loc: str) -> None:  # type: ignore[no-untyped-def]
    for kind, names in (("input", [v.name for v in f.graph.inputs]),
                        ("output", [v.name for v in f.graph.outputs]),
                        ("attribute", list(f.attributes))):
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            ctx.report("function", loc,
                       f"{kind} name(s) {', '.join(map(repr, dup))} appear more than once in the "
                       f"signature")
        if any(not n for n in names) and kind != "attribute":
            ctx.report("name", loc, f"a formal {kind} has an empty name")
    both = sorted(set(f.attributes) & set(f.attribute_defaults))
    if both:
        ctx.report("function", loc,
                   f"attribute(s) {', '.join(map(repr, both))} are declared both without and "
                   f"with a default (attribute and attribute_proto); declare each once")


def check_function_recursion(ctx: CheckContext) -> None:
    """No model-local function calls itself, directly or through other functions (including
    calls made from the subgraphs of its nodes): inlining such a function never ends."""
    ids = {id(f): f for f in ctx.functions.values()}
    calls: dict[int, list[Function]] = {}
    for f in ids.values():
        env = GraphEnv(f.opset_imports, f)
        seen: dict[int, Function] = {}
        for node in _all_nodes(f.graph):
            g = _called_function(ctx, node, env)
            if g is not None:
                seen.setdefault(id(g), g)
        calls[id(f)] = list(seen.values())
    # depth-first search with an explicit stack; a back edge closes a cycle
    state: dict[int, int] = {}  # 1 = on the current path, 2 = finished
    reported: set[frozenset[int]] = set()
    for root in ids.values():
        if state.get(id(root)):
            continue
        path: list[Function] = [root]
        stack = [iter(calls[id(root)])]
        state[id(root)] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[id(path.pop())] = 2
                stack.pop()
                continue
            s = state.get(id(nxt))
            if s == 1:
                cycle = path[[id(p) for p in path].index(id(nxt)):] + [nxt]
                key = frozenset(id(p) for p in cycle)
                if key not in reported:
                    reported.add(key)
                    chain = " -> ".join(_fid(p) for p in cycle)
                    ctx.report("function", f"function {_fid(nxt)}",
                               f"Cycle detected in model-local function references: {chain}; "
                               f"a function may not call itself, directly or through other "
                               f"functions")
            elif s is None:
                state[id(nxt)] = 1
                path.append(nxt)
                stack.append(iter(calls[id(nxt)]))


def _fid(f: Function) -> str:
    return f"'{f.domain}::{f.name}'" + (f" (overload {f.overload!r})" if f.overload else "")


def _all_nodes(graph: Graph) -> list[Node]:
    """The nodes of ``graph`` and of every subgraph nested in their attributes."""
    out: list[Node] = []
    todo = [graph]
    while todo:
        g = todo.pop()
        for n in g.nodes:
            out.append(n)
            for a in n.attributes.values():
                if a.type == AttributeType.GRAPH and isinstance(a.value, Graph):
                    todo.append(a.value)
                elif a.type == AttributeType.GRAPHS and isinstance(a.value, (list, tuple)):
                    todo.extend(x for x in a.value if isinstance(x, Graph))
    return out


def _called_function(ctx: CheckContext, node: Node, env: GraphEnv) -> Function | None:
    """The model-local function a node calls (a standard operator takes precedence)."""
    f = ctx.function_for(node)
    if f is None:
        return None
    domain = defs.normalize_domain(node.domain)
    version = env.opset(node.domain)
    if domain in defs.domains() and version is not None and \
            defs.lookup(domain, node.op_type, version) is not None:
        return None
    return f
