"""Binding a node to its kernel: the one mechanism every caller of kernels uses.

A :class:`BoundNode` is a node ready to compute: the kernel of exactly the schema version that
the model's opset selects, the node's attributes decoded into what the kernel takes, the
:class:`~pyonnx.ops.registry.KernelContext` when the kernel asks for one, and the node's
*prepared* state (what the kernel's registered ``prepare`` function returned, such as a memo of
validated geometry). The state lives on the bound node, so two sessions, or two nodes of one
session, never share it, and nothing on the run path is a process-wide cache.

Users: the runtime plan (which binds every node once, at session creation), constant folding and
shape inference's data propagation (which bind a node to evaluate it once). Model-local functions
are not kernels: the plan compiles their bodies itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from pyonnx import defs
from pyonnx.errors import UnsupportedOperatorError, ValidationError
from pyonnx.ir import Attribute, AttributeType, Graph, Node
from pyonnx.ops._values import NO_LIMIT, attribute_value
from pyonnx.ops.registry import (
    Kernel,
    KernelContext,
    get_graph_kernel,
    get_kernel,
    kernel_parameters,
    kernel_prepare,
    registered_versions,
    wants_context,
)

__all__ = ["BoundNode", "bind", "decode_attributes", "resolve_kernel", "signature_problem",
           "opset_of"]


@dataclasses.dataclass(eq=False)
class BoundNode:
    """A node bound to its kernel (see the module docstring).

    ``kwargs`` is what the kernel receives besides its inputs: the decoded attributes, ``ctx``
    when ``wants_context``, ``prepared`` when the kernel has a prepare function. Graph
    attributes are not in it: their callers compile them (the plan binds bodies per run).
    """

    node: Node
    kernel: Kernel
    since_version: int
    attributes: dict[str, Any]
    wants_context: bool
    prepared: Any
    kwargs: dict[str, Any]

    def __call__(self, *inputs: Any) -> tuple:
        """Compute the node's outputs from its inputs (``None`` for an absent optional one)."""
        return self.kernel(*inputs, **self.kwargs)


def opset_of(domain: str, opsets: dict[str, int]) -> int | None:
    """The version of ``domain`` (normalized) that ``opsets`` imports, or None."""
    opset = opsets.get(domain)
    if opset is None and domain == "":
        opset = opsets.get("ai.onnx")
    return opset


def resolve_kernel(node: Node, opsets: dict[str, int], graph: Graph | None = None,
                   resolve: Callable[[Node], Any] | None = None) -> tuple[Kernel, int]:
    """The kernel for ``node`` under ``opsets`` and the schema version it implements.

    The schema version the opset selects comes first, then the kernel registered for exactly
    that version (a custom operator's when no built-in one exists). A graph kernel (Gradient) is
    built from ``graph`` with ``resolve`` giving the kernels of the nodes it reads. Raises
    :class:`ValidationError` for a domain the model does not import and
    :class:`UnsupportedOperatorError`, naming what exists, when there is no kernel.
    """
    domain = defs.normalize_domain(node.domain)
    opset = opset_of(domain, opsets)
    if opset is None:
        raise ValidationError(
            f"{node.describe()} uses domain {domain or 'ai.onnx'!r}, which the model does "
            f"not import (add an opset_import for it)")
    schema = defs.lookup(domain, node.op_type, opset)
    if schema is not None:
        if graph is not None and resolve is not None:
            factory = get_graph_kernel(domain, node.op_type, schema.since_version)
            if factory is not None:
                return factory(node, graph, resolve), schema.since_version
        fn = get_kernel(domain, node.op_type, schema.since_version)
        if fn is None:
            have = registered_versions(domain, node.op_type)
            raise UnsupportedOperatorError(
                f"{node.describe()}: pyonnx has no kernel for {domain or 'ai.onnx'} "
                f"{node.op_type} version {schema.since_version} (selected by opset {opset}); "
                f"kernels exist for versions {list(have) or 'none'}")
        return fn, schema.since_version
    have = registered_versions(domain, node.op_type)
    usable = [v for v in have if v <= opset]
    if usable:
        # no ONNX schema at this opset, but a kernel exists: a domain pyonnx has no schemas
        # for, or one of onnxruntime's default-domain contrib ops (LayerNormalization-1,
        # SimplifiedLayerNormalization-1) that onnxruntime accepts before the standard op
        fn = get_kernel(domain, node.op_type, usable[-1])
        if fn is not None:
            return fn, usable[-1]
    known = defs.versions(domain, node.op_type)
    if known:
        raise UnsupportedOperatorError(
            f"{node.describe()}: operator {node.op_type} does not exist at opset {opset} of "
            f"{domain or 'ai.onnx'} (it exists from version {known[0]})")
    hint = ""
    if not defs.is_standard_domain(domain):
        hint = (f". If it is a custom operator, declare it with its kernel: "
                f"@pyonnx.onnx_op(op_type={node.op_type!r}, domain={domain!r}, inputs=..., "
                f"outputs=...) or pyonnx.register_custom_op(pyonnx.CustomOp(...)) for every "
                f"session, SessionOptions.register_custom_op(...) for one")
    raise UnsupportedOperatorError(
        f"{node.describe()}: unknown operator {node.op_type!r} in domain "
        f"{domain or 'ai.onnx'!r} (opset {opset}); pyonnx has no schema or kernel for it"
        f"{hint}")


def decode_attributes(attributes: Iterable[Attribute], where: str,
                      max_tensor_bytes: int = NO_LIMIT
                      ) -> tuple[dict[str, Any], list[Attribute]]:
    """The attributes as the kernel takes them, and the graph-valued ones left undecoded.

    An attribute of type UNDEFINED without a value (a function attribute reference that the
    caller did not set) is left out: the kernel's default, the spec's, applies. References
    (``ref_attr_name``) must have been resolved by the caller.
    """
    kwargs: dict[str, Any] = {}
    graphs: list[Attribute] = []
    for a in attributes:
        if a.type == AttributeType.UNDEFINED and a.value is None:
            continue
        if a.type in (AttributeType.GRAPH, AttributeType.GRAPHS):
            graphs.append(a)
        else:
            kwargs[a.name] = attribute_value(a, max_tensor_bytes, where)
    return kwargs, graphs


def signature_problem(node: Node, fn: Kernel, n_inputs: int, names: Iterable[str]) -> str | None:
    """Why the kernel cannot take this node's attributes ``names`` or ``n_inputs`` inputs (a
    message naming the node), or None when it can (or its signature cannot be inspected)."""
    params = kernel_parameters(fn)
    if params is None:
        return None
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        for name in names:
            if name not in params or name in ("ctx", "prepared", "_run_state"):
                return (f"{node.describe()} has attribute {name!r}, which this version of "
                        f"{node.op_type} does not define")
    positional = [p for p in params.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not any(p.kind == p.VAR_POSITIONAL for p in params.values()) and n_inputs > len(positional):
        return (f"{node.describe()} has {n_inputs} inputs; this version of {node.op_type} takes "
                f"at most {len(positional)}")
    return None


def bind(node: Node, fn: Kernel, since_version: int, opset: int, attributes: dict[str, Any], *,
         rng: np.random.Generator | None = None, max_tensor_bytes: int = 1 << 40,
         max_iterations: int = 1_000_000) -> BoundNode:
    """Bind ``node`` to ``fn`` with its decoded ``attributes``: build the kernel's context when
    it asks for one and run its prepare function once. Callers check the signature first
    (:func:`signature_problem`): the plan refuses a mismatch, the evaluators skip the node."""
    kwargs = dict(attributes)
    ctx = wants_context(fn)
    if ctx:
        kwargs["ctx"] = KernelContext(
            node_name=node.name, op_type=node.op_type, domain=node.domain, opset=opset,
            num_outputs=len(node.outputs),
            outputs_used=tuple(bool(v.name) for v in node.outputs),
            rng=rng if rng is not None else np.random.default_rng(),
            max_tensor_bytes=max_tensor_bytes, max_iterations=max_iterations)
    prepare = kernel_prepare(fn)
    prepared = None
    if prepare is not None:
        prepared = kwargs["prepared"] = prepare(attributes)
    return BoundNode(node, fn, since_version, attributes, ctx, prepared, kwargs)

