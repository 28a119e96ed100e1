"""Checking one part of a model on its own: a tensor, a sparse tensor, a node, a graph, a function.

These are the fine-grained checks of ``onnx.checker`` (``check_tensor``, ``check_node``, …) for
pyonnx: each takes a pyonnx IR object, or a protobuf message of the same kind (onnx's or
pyonnx's, read through its bytes), runs the rules of :func:`pyonnx.check_model` that apply to
it, and raises one :class:`~pyonnx.errors.ValidationError` listing every violation.

What :func:`check_model` takes from the model comes from the arguments instead:

* ``opset_imports`` resolves the nodes' operators (default: the newest opset pyonnx knows of
  every standard domain, as ``onnx.checker``'s default context does for the default domain);
* ``ir_version`` selects the IR rules (default: the newest pyonnx knows);
* ``functions`` are the model-local functions nodes may call.

A graph is checked as a main graph: its inputs and outputs need types with a shape. A protobuf
message whose content pyonnx cannot even represent (a tensor whose stored data disagrees with
its dims, two initializers with one name) is a violation too, so it raises ValidationError here
where :func:`pyonnx.load` raises DecodeError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pyonnx import defs
from pyonnx.checker._context import CheckContext, GraphEnv, Violation
from pyonnx.checker.graph_rules import check_graph as _graph_rules
from pyonnx.checker.model_rules import (
    check_function_recursion,
    check_functions,
    check_opset_imports,
)
from pyonnx.checker.node_rules import check_node as _node_rules
from pyonnx.checker.tensor_rules import check_sparse_tensor as _sparse_rules
from pyonnx.checker.tensor_rules import check_tensor as _tensor_rules
from pyonnx.errors import DecodeError, ResourceLimitExceeded, ValidationError
from pyonnx.ir import Function, Graph, Node, SparseTensor, Tensor

__all__ = ["check_tensor", "check_sparse_tensor", "check_node", "check_graph",
           "check_function", "raise_violations"]


def check_tensor(tensor: Tensor | Any) -> None:
    """A tensor has a known element type, non-negative dims and exactly the values its dims
    require, of its element type."""
    t = _decode(tensor, "TensorProto")
    ctx = CheckContext(None, False)
    _tensor_rules(ctx, t, _tensor_label(t), "the tensor")
    raise_violations(ctx)


def check_sparse_tensor(sparse: SparseTensor | Any) -> None:
    """A sparse tensor's values and indices are well formed, and its int64 indices lie inside
    its dims in ascending order without duplicates."""
    st = _decode(sparse, "SparseTensorProto")
    ctx = CheckContext(None, False)
    _sparse_rules(ctx, st, f"sparse tensor {st.name!r}" if st.name else "sparse tensor",
                  "the sparse tensor")
    raise_violations(ctx)


def check_node(node: Node | Any, opset_imports: Mapping[str, int] | None = None, *,
               ir_version: int | None = None, functions: Sequence[Function | Any] = ()) -> None:
    """A node names an operator that exists at ``opset_imports`` (or one of ``functions``),
    with the attributes and input/output counts its signature allows."""
    n = _decode(node, "NodeProto")
    ctx = CheckContext(None, False, ir_version=ir_version, functions=_functions(functions))
    env = GraphEnv(_opsets(opset_imports))
    label = f"node {n.name!r} ({n.op_type})" if n.name else f"node ({n.op_type})"
    _node_rules(ctx, n, label, env)
    raise_violations(ctx)


def check_graph(graph: Graph | Any, opset_imports: Mapping[str, int] | None = None, *,
                ir_version: int | None = None, functions: Sequence[Function | Any] = (),
                full_check: bool = False) -> None:
    """A graph follows the rules of a main graph (names, single assignment, topological order,
    defined inputs and outputs, typed signature, valid constants, valid nodes); its subgraphs
    are checked with it. ``full_check`` adds the type-constraint rules of each node."""
    g = _decode(graph, "GraphProto")
    ctx = CheckContext(None, full_check, ir_version=ir_version,
                       functions=_functions(functions))
    _graph_rules(ctx, g, f"graph {g.name!r}" if g.name else "graph",
                 GraphEnv(_opsets(opset_imports)), None, main=True)
    raise_violations(ctx)


def check_function(function: Function | Any, opset_imports: Mapping[str, int] | None = None,
                   *, ir_version: int | None = None,
                   functions: Sequence[Function | Any] = ()) -> None:
    """A function has a name, distinct parameter names and opset imports of its own, and its
    body follows the graph rules under those imports; ``functions`` are the other model-local
    functions it may call (recursion among them is refused). ``opset_imports`` (the model's)
    fills in domains the function does not import itself."""
    f = _decode(function, "FunctionProto")
    if opset_imports:
        merged = dict(opset_imports)
        merged.update(f.opset_imports)
        f.opset_imports = merged
    others = [g for g in _functions(functions) if (g.domain, g.name, g.overload) !=
              (f.domain, f.name, f.overload)]
    # without the other functions, a call into the function's domain cannot be judged
    ctx = CheckContext(None, False, ir_version=ir_version, functions=[f, *others],
                       closed_world=bool(functions))
    check_opset_imports(ctx, f.opset_imports, _function_label(f))
    check_functions(ctx, [f])
    check_function_recursion(ctx)
    raise_violations(ctx)


def raise_violations(ctx: CheckContext) -> None:
    """Raise one ValidationError listing the context's violations (nothing when there are
    none)."""
    if ctx.violations:
        n = len(ctx.violations)
        head = f"{n} rule{'s' if n != 1 else ''} of the ONNX specification broken:"
        lines = [str(v) for v in ctx.violations]
        raise ValidationError("\n".join([head, *lines]), lines)


# --------------------------------------------------------------------------- helpers


_DATA_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "raw_data",
                "double_data", "uint64_data")


def _one_data_field(tp: Any) -> None:
    """A TensorProto keeps its values in one field: two would leave it ambiguous which holds
    them (the IR keeps one, so the check is made on the message)."""
    used = [f for f in _DATA_FIELDS if len(getattr(tp, f))]
    if len(used) > 1:
        raise DecodeError(f"tensor {tp.name!r} stores values in {len(used)} fields "
                          f"({', '.join(used)}); a tensor keeps its data in exactly one")


def _functions(functions: Sequence[Function | Any]) -> list[Function]:
    return [_decode(f, "FunctionProto") for f in functions]


def _opsets(opset_imports: Mapping[str, int] | None) -> dict[str, int]:
    """The given imports, or the newest version of every standard domain."""
    if opset_imports is not None:
        return dict(opset_imports)
    out: dict[str, int] = {}
    for d in defs.domains():
        top = defs.max_opset(d)
        if top is not None:
            out[d] = top
    return out


def _tensor_label(t: Tensor) -> str:
    return f"tensor {t.name!r}" if t.name else "tensor"


def _function_label(f: Function) -> str:
    return f"function '{f.domain}::{f.name}'" + (f" (overload {f.overload!r})"
                                                 if f.overload else "")


_KINDS: dict[str, type] = {"TensorProto": Tensor, "SparseTensorProto": SparseTensor,
                           "NodeProto": Node, "GraphProto": Graph, "FunctionProto": Function}


def _decode(obj: Any, kind: str) -> Any:
    """``obj`` itself when it is the IR class for ``kind``; a protobuf message of that kind
    (any package: it is read back from its bytes) decoded into the IR."""
    ir_class = _KINDS[kind]
    if isinstance(obj, ir_class):
        return obj
    if not hasattr(obj, "SerializeToString"):
        raise TypeError(f"expected a pyonnx {ir_class.__name__} or a protobuf {kind}, not "
                        f"{type(obj).__name__}")
    name = type(obj).DESCRIPTOR.name if hasattr(type(obj), "DESCRIPTOR") else kind
    if name != kind:
        raise TypeError(f"expected a pyonnx {ir_class.__name__} or a protobuf {kind}, not a "
                        f"{name}")
    from pyonnx.io import proto as P
    from pyonnx.io import serde

    try:
        msg = getattr(P, kind).FromString(obj.SerializeToString())
        if kind == "TensorProto":
            _one_data_field(msg)
        opts = serde.DecodeOptions()
        if kind == "TensorProto":
            return serde.tensor_from_proto(msg, opts)
        if kind == "SparseTensorProto":
            return serde._sparse_from_proto(msg, opts, "the sparse tensor")
        dec = serde._Decoder(opts)
        if kind == "FunctionProto":
            return dec.function(msg)
        if kind == "GraphProto":
            return dec.graph(msg, None, 0, None, f"graph {msg.name!r}")
        holder = P.GraphProto()
        holder.node.append(msg)
        node = dec.graph(holder, None, 0, None, "node").nodes[0]
        node.graph = None
        return node
    except ResourceLimitExceeded:
        raise
    except DecodeError as e:
        # the message holds something the IR cannot represent: that is the violation
        v = str(Violation("decode", kind, str(e)))
        raise ValidationError(f"1 rule of the ONNX specification broken:\n{v}", [v]) from e
