"""Rules on one node: its operator exists at the imported opset, its attributes and its
input/output counts match the operator's signature, and (full check) the types of its inputs and
outputs satisfy the operator's type constraints.

How a node is resolved (IR spec, "Operators" and "Functions"):

* its domain must be imported (by the model, or by the function whose body holds the node);
* a standard domain (``ai.onnx``, ``ai.onnx.ml``, ``ai.onnx.preview[.training]``) resolves the
  node to the schema that the imported version selects; no schema, or a deprecated one, is an
  error. A model-local function with the same id serves where no schema exists;
* otherwise a model-local function with the node's (domain, op_type, overload) is its signature;
* a node of a domain that holds model-local functions but naming none of them is an error: the
  model declares what that domain contains;
* a custom operator declared to pyonnx (:mod:`pyonnx.defs.custom`, process-wide or in the current
  ``custom_op_scope``) is checked against its declaration like a standard one;
* any other domain (``com.microsoft``, a custom-op library) has no schema pyonnx knows: the node
  is accepted as written, since only the runtime that provides the domain can judge it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from pyonnx import defs
from pyonnx.checker._context import CheckContext, GraphEnv
from pyonnx.defs import OpSchema
from pyonnx.defs.custom import lookup_custom_schema
from pyonnx.defs.type_strings import type_string_of
from pyonnx.ir import (
    Attribute,
    AttributeType,
    Function,
    Node,
    TensorType,
    Value,
)

__all__ = ["check_node", "resolve_schema", "check_node_types",
           "ExperimentalOperatorWarning", "EXPERIMENTAL_OPERATORS"]

_STANDARD_DOMAINS = frozenset(defs.domains())

#: Experimental operators of the default domain that ONNX 1.x removed without a schema. Old
#: models (opsets 1 to 9, e.g. ImageScaler in early model-zoo files) still contain them;
#: onnx.checker accepts them with a warning, and so does pyonnx (no schema to check against).
EXPERIMENTAL_OPERATORS = frozenset({
    "ATen", "Affine", "ConstantFill", "Crop", "DynamicSlice", "GRUUnit", "GivenTensorFill",
    "ImageScaler", "ParametricSoftplus", "Scale", "ScaledTanh"})


class ExperimentalOperatorWarning(UserWarning):
    """A node uses a removed experimental operator (accepted unchecked: it has no schema)."""


def resolve_schema(node: Node, env: GraphEnv) -> OpSchema | None:
    """The schema the node's imported opset selects (None when unknown or not imported)."""
    version = env.opset(node.domain)
    if version is None:
        return None
    return defs.lookup(node.domain, node.op_type, version)


def check_node(ctx: CheckContext, node: Node, location: str, env: GraphEnv) -> OpSchema | None:
    """Check one node against its operator; returns the schema used (for the type check)."""
    if not node.op_type:
        ctx.report("name", location, "the node has no op_type; name the operator it calls")
        return None
    _check_attribute_refs(ctx, node, location, env)
    domain = defs.normalize_domain(node.domain)
    version = env.opset(node.domain)
    if version is None:
        owner = (f"function {env.function.domain}::{env.function.name}"
                 if env.function is not None else "the model")
        # one report per domain and importer: every node of the domain shares the cause
        if ctx.first_time(("opset-import", owner, domain)):
            ctx.report("opset-import", location,
                       f"domain {domain or 'ai.onnx'!r} is not imported by {owner} (this is "
                       f"the first node that uses it); add an opset_import entry for it")
        return None
    function = ctx.function_for(node)
    if domain in _STANDARD_DOMAINS:
        schema = defs.lookup(domain, node.op_type, version)
        if schema is None and function is None and domain == "" and \
                node.op_type in EXPERIMENTAL_OPERATORS:
            if ctx.first_time(("experimental", node.op_type)):
                warnings.warn(ExperimentalOperatorWarning(
                    f"{location}: {node.op_type} is a removed experimental operator; it is "
                    f"accepted unchecked, and no runtime is required to run it"), stacklevel=2)
            return None
        if schema is None and function is None:
            _unknown_operator(ctx, node, location, domain, version)
            return None
        if schema is not None:
            if schema.deprecated:
                ctx.report("deprecated-operator", location,
                           f"{node.op_type} is deprecated from opset {schema.since_version} of "
                           f"{domain or 'ai.onnx'} (the model imports {version}); replace it "
                           f"or import an older opset")
                return None
            _check_attributes(ctx, node, location, schema)
            _check_arity(ctx, node, location, schema)
            return schema
    if function is not None:
        _check_function_call(ctx, node, location, function)
        return None
    schema = lookup_custom_schema(domain, node.op_type, version)
    if schema is not None:  # a custom operator the user declared: its declaration is the rule
        _check_attributes(ctx, node, location, schema)
        _check_arity(ctx, node, location, schema)
        return schema
    if domain in ctx.function_domains:
        names = sorted({f.name for f in ctx.model_functions if defs.normalize_domain(f.domain)
                        == domain})
        overload = f" with overload {node.overload!r}" if node.overload else ""
        ctx.report("undefined-function", location,
                   f"domain {domain!r} holds model-local functions ({', '.join(names)}) but none "
                   f"named {node.op_type!r}{overload}")
    return None


def _unknown_operator(ctx: CheckContext, node: Node, location: str, domain: str,
                      version: int) -> None:
    name = domain or "ai.onnx"
    since = defs.versions(domain, node.op_type)
    if since:
        ctx.report("unknown-operator", location,
                   f"{node.op_type} does not exist at opset {version} of {name}: it was "
                   f"introduced in opset {since[0]}; import opset {since[0]} or newer")
    else:
        ctx.report("unknown-operator", location,
                   f"domain {name} has no operator named {node.op_type!r}")


def _check_attribute_refs(ctx: CheckContext, node: Node, location: str, env: GraphEnv) -> None:
    for name, a in node.attributes.items():
        if not name:
            ctx.report("name", location, "an attribute has an empty name")
        if not a.ref_attr_name:
            continue
        f = env.function
        if f is None:
            ctx.report("attribute-reference", location,
                       f"attribute {name!r} refers to a function attribute "
                       f"({a.ref_attr_name!r}) but the node is not inside a function body")
        elif a.ref_attr_name not in f.attributes and a.ref_attr_name not in f.attribute_defaults:
            declared = sorted({*f.attributes, *f.attribute_defaults})
            ctx.report("attribute-reference", location,
                       f"attribute {name!r} refers to {a.ref_attr_name!r}, which function "
                       f"{f.domain}::{f.name} does not declare (it declares "
                       f"{', '.join(declared) or 'no attributes'})")


def _check_attributes(ctx: CheckContext, node: Node, location: str, schema: OpSchema) -> None:
    sig = f"{schema.name}-{schema.since_version}"
    for name, a in node.attributes.items():
        spec = schema.attributes.get(name)
        if spec is None:
            known = ", ".join(sorted(schema.attributes)) or "none"
            ctx.report("unknown-attribute", location,
                       f"attribute {name!r} is not an attribute of {sig} (its attributes: "
                       f"{known})")
            continue
        if a.ref_attr_name and a.type == AttributeType.UNDEFINED:
            continue  # a reference's type is the caller's; it may be left unstated
        if a.type.name != spec.type:
            ctx.report("attribute-type", location,
                       f"attribute {name!r} has type {a.type.name} but {sig} declares "
                       f"{spec.type}")
            continue
        if not a.ref_attr_name:
            problem = _value_problem(a)
            if problem:
                ctx.report("attribute-type", location, f"attribute {name!r}: {problem}")
    for name in schema.required_attributes:
        if name not in node.attributes:
            ctx.report("missing-attribute", location,
                       f"required attribute {name!r} of {sig} is missing")


def _value_problem(a: Attribute) -> str | None:
    """Whether a (hand-built) attribute's Python value disagrees with its declared type."""
    T, v = AttributeType, a.value
    if a.type == T.INT and not isinstance(v, int):
        return f"type INT but value {v!r}"
    if a.type == T.FLOAT and not isinstance(v, (int, float)):
        return f"type FLOAT but value {v!r}"
    if a.type == T.STRING and not isinstance(v, (str, bytes)):
        return f"type STRING but value {v!r}"
    if a.type in (T.INTS, T.FLOATS, T.STRINGS, T.TENSORS, T.GRAPHS, T.SPARSE_TENSORS,
                  T.TYPE_PROTOS) and not isinstance(v, (list, tuple)):
        return f"type {a.type.name} but value is not a list"
    return None


def _check_arity(ctx: CheckContext, node: Node, location: str, schema: OpSchema) -> None:
    sig = f"{schema.name}-{schema.since_version}"
    _arity(ctx, location, sig, "input", [v is not None for v in node.inputs],
           schema.min_input, schema.max_input, schema.inputs)
    _arity(ctx, location, sig, "output", [bool(v.name) for v in node.outputs],
           schema.min_output, schema.max_output, schema.outputs)


def _arity(ctx: CheckContext, location: str, sig: str, kind: str, present: list[bool],
           lo: int, hi: int, formals: Sequence[defs.FormalParameter]) -> None:
    n = len(present)
    if n < lo or n > hi:
        bound = f"{lo}" if lo == hi else (f"at least {lo}" if hi == defs.UNBOUNDED
                                          else f"{lo} to {hi}")
        ctx.report("arity", location,
                   f"the node has {n} {kind}{'' if n == 1 else 's'} but {sig} takes {bound}")
        return
    for i, given in enumerate(present):
        if given or not formals:
            continue
        formal = formals[min(i, len(formals) - 1)]
        if i >= len(formals) - 1 and formal.is_variadic:
            continue  # a variadic slot may be left empty; the op decides what it means
        if not formal.is_optional and not formal.is_variadic:
            ctx.report("arity", location,
                       f"{kind} {i} ({formal.name!r}) of {sig} is required but left empty")


def _check_function_call(ctx: CheckContext, node: Node, location: str, f: Function) -> None:
    fid = f"function {f.domain}::{f.name}"
    n_in, n_out = len(f.graph.inputs), len(f.graph.outputs)
    if len(node.inputs) > n_in:
        ctx.report("arity", location,
                   f"the node passes {len(node.inputs)} inputs but {fid} declares {n_in}")
    if len(node.outputs) > n_out:
        ctx.report("arity", location,
                   f"the node asks for {len(node.outputs)} outputs but {fid} declares {n_out}")
    declared = {*f.attributes, *f.attribute_defaults}
    for name in node.attributes:
        if name not in declared:
            ctx.report("unknown-attribute", location,
                       f"attribute {name!r} is not an attribute of {fid} (it declares "
                       f"{', '.join(sorted(declared)) or 'no attributes'})")


# --------------------------------------------------------------------------- types (full check)


def check_node_types(ctx: CheckContext, node: Node, location: str, schema: OpSchema) -> None:
    """Known input/output types are allowed by the schema and bind each type parameter once;
    operator constraints on known shapes hold (ConvTranspose's channels and groups)."""
    sig = f"{schema.name}-{schema.since_version}"
    # type parameter -> (type string, which input/output bound it first); shared by both passes
    bound: dict[str, tuple[str, str]] = {}
    for kind, actuals, formals in (("input", node.inputs, schema.inputs),
                                   ("output", node.outputs, schema.outputs)):
        _bind(ctx, location, sig, kind, actuals, formals, schema, bound)
    if schema.domain == "" and schema.name == "ConvTranspose":
        _conv_transpose_groups(ctx, node, location)


def _conv_transpose_groups(ctx: CheckContext, node: Node, location: str) -> None:
    """ConvTranspose splits its C input channels into ``group`` groups, and its weight holds
    C rows (one per input channel): both follow from the known shapes."""
    a = node.attributes.get("group")
    group = a.value if a is not None and isinstance(a.value, int) else 1
    if group < 1:
        ctx.report("operator-constraint", location, f"attribute 'group' is {group}; it must be "
                                                     f"at least 1")
        return
    x = node.inputs[0] if node.inputs else None
    w = node.inputs[1] if len(node.inputs) > 1 else None
    c, wc = _dim(x, 1), _dim(w, 0)
    if x is not None and isinstance(c, int) and c % group:
        ctx.report("operator-constraint", location,
                   f"Input channels C must be divisible by group for ConvTranspose: input "
                   f"{x.name!r} has C = {c} channels and group is {group}")
    if w is not None and isinstance(c, int) and isinstance(wc, int) and c != wc:
        ctx.report("operator-constraint", location,
                   f"the weight {w.name!r} has {wc} rows (dim 0) but the input has C = {c} "
                   f"channels; ConvTranspose needs one weight row per input channel")


def _dim(v: Value | None, axis: int) -> int | str | None:
    t = v.type if v is not None else None
    if isinstance(t, TensorType) and t.shape is not None and len(t.shape) > axis:
        return t.shape[axis]
    return None


def _bind(ctx: CheckContext, location: str, sig: str, kind: str,
          actuals: Sequence[Value | None], formals: Sequence[defs.FormalParameter],
          schema: OpSchema, bound: dict[str, tuple[str, str]]) -> None:
    for i, v in enumerate(actuals):
        if v is None or not formals or (i >= len(formals) and not formals[-1].is_variadic):
            continue
        formal = formals[min(i, len(formals) - 1)]
        ts = type_string_of(v.type)
        if ts is None:
            continue
        what = f"{kind} {i} ({v.name!r})"
        allowed = schema.type_constraints.get(formal.type_str)
        if allowed is None:  # a concrete type such as tensor(int64)
            if ts != formal.type_str.replace(" ", ""):
                ctx.report("type-constraint", location,
                           f"{what} has type {ts} but {sig} requires {formal.type_str}")
            continue
        if ts not in {a.replace(" ", "") for a in allowed}:
            ctx.report("type-constraint", location,
                       f"{what} has type {ts}, which {sig} does not allow for "
                       f"{formal.type_str} (allowed: {', '.join(allowed)})")
            continue
        if formal.is_variadic and not formal.is_homogeneous:
            continue
        prev = bound.get(formal.type_str)
        if prev is None:
            bound[formal.type_str] = (ts, what)
        elif prev[0] != ts:
            ctx.report("type-constraint", location,
                       f"{what} has type {ts} but {prev[1]} has {prev[0]}; {sig} requires "
                       f"both to have the same type {formal.type_str}")
