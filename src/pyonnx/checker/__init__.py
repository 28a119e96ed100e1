"""The model checker: does a model follow the rules of the ONNX IR specification?

:func:`check_model` walks the whole model (main graph, subgraphs, model-local functions) and
collects every violation, each tagged with the rule it breaks (see :data:`RULES`) and located by
a path such as ``main graph > node 'loop1' (Loop) > body > node #2 (Add)``. All of them are
raised together in one :class:`~pyonnx.errors.ValidationError` whose message lists them one per
line. One function checks one rule; the modules group them by what they look at:

* ``model_rules``: IR version, opset imports, model-local functions;
* ``graph_rules``: names, SSA, topological order, defined inputs/outputs, value types;
* ``node_rules``: operator resolution, attributes, arity, type constraints (full check);
* ``tensor_rules``: initializers, sparse tensors, tensor attributes.

:mod:`~pyonnx.checker.parts` checks one part on its own (``check_tensor``,
``check_sparse_tensor``, ``check_node``, ``check_graph``, ``check_function``), as
``onnx.checker``'s functions of the same names do.

Two facts are decided by the loader rather than here: a tensor whose stored data disagrees with
its dims or element type (including UNDEFINED) cannot be decoded, so :func:`pyonnx.load` raises
:class:`~pyonnx.errors.DecodeError` for it (the tensor rule still checks models built in memory),
and external data is validated when it is opened.
"""

from __future__ import annotations

import os
from typing import Any

from pyonnx.checker._context import RULES, CheckContext, GraphEnv, Violation
from pyonnx.checker.graph_rules import check_graph as _check_graph_rules
from pyonnx.checker.node_rules import ExperimentalOperatorWarning
from pyonnx.checker.parts import (
    check_function,
    check_graph,
    check_node,
    check_sparse_tensor,
    check_tensor,
)
from pyonnx.checker.model_rules import (
    IrVersionWarning,
    check_function_recursion,
    check_functions,
    check_opset_imports,
    check_versions,
)
from pyonnx.errors import ShapeInferenceError, ValidationError
from pyonnx.io.limits import DEFAULT_MAX_NESTING_DEPTH, check_nesting_depth
from pyonnx.ir import Model
from pyonnx.ir.lint import lint

__all__ = ["check_model", "collect_violations", "check_tensor", "check_sparse_tensor",
           "check_node", "check_graph", "check_function", "IrVersionWarning",
           "ExperimentalOperatorWarning", "Violation", "RULES"]


def check_model(model: Model | str | os.PathLike[str] | bytes | Any,
                full_check: bool = False, *, max_nesting_depth: int = DEFAULT_MAX_NESTING_DEPTH,
                allow_hardlinks: bool = False) -> None:
    """Check a model against the ONNX IR specification; return None when it is valid.

    ``model`` is a :class:`~pyonnx.ir.Model` or anything :func:`pyonnx.load` reads (a path, bytes,
    a protobuf message); a file that cannot be decoded raises
    :class:`~pyonnx.errors.DecodeError`. With ``full_check``, the known types of each node's
    inputs and outputs must also satisfy its operator's type constraints, and strict shape
    inference must succeed. Raises :class:`~pyonnx.errors.ValidationError` listing every
    violation; an IR version older than the imported opsets only warns
    (:class:`IrVersionWarning`).

    ``max_nesting_depth`` bounds subgraph nesting (:class:`~pyonnx.errors.ResourceLimitExceeded`
    above it) and ``allow_hardlinks`` is passed to :func:`pyonnx.load`, with SessionOptions'
    defaults.
    """
    violations = collect_violations(model, full_check, max_nesting_depth=max_nesting_depth,
                                    allow_hardlinks=allow_hardlinks)
    if violations:
        n = len(violations)
        head = f"the model breaks {n} rule{'s' if n != 1 else ''} of the ONNX specification:"
        lines = [str(v) for v in violations]
        raise ValidationError("\n".join([head, *lines]), lines)


def collect_violations(model: Model | str | os.PathLike[str] | bytes | Any,
                       full_check: bool = False, *,
                       max_nesting_depth: int = DEFAULT_MAX_NESTING_DEPTH,
                       allow_hardlinks: bool = False) -> list[Violation]:
    """Every violation of the model, in the order the checker meets them (empty when valid)."""
    built_in_memory = isinstance(model, Model)
    if not built_in_memory:
        from pyonnx.io import load

        model = load(model, max_nesting_depth=max_nesting_depth, allow_hardlinks=allow_hardlinks)
    # the rules recurse over subgraphs: bound the depth first (a Model built in memory has not
    # been through load's check)
    check_nesting_depth(model, max_nesting_depth)
    ctx = CheckContext(model, full_check)
    check_versions(ctx)
    check_opset_imports(ctx, model.opset_imports, "model")
    _check_graph_rules(ctx, model.graph, "main graph", GraphEnv(model.opset_imports), None, main=True)
    check_functions(ctx)
    check_function_recursion(ctx)
    if built_in_memory and not ctx.violations:
        # a loaded model is built consistent; one assembled or rewritten by hand may not be,
        # and the rules above read names, not the links the runtime and passes follow
        for problem in lint(model):
            ctx.report("ir-structure", "model", problem)
    if full_check and not ctx.violations:
        _strict_shape_inference(ctx, max_nesting_depth)
    return ctx.violations


def _strict_shape_inference(ctx: CheckContext, max_nesting_depth: int) -> None:
    """Run strict shape inference when pyonnx has it (only on an otherwise valid model: the
    inference assumes the structure the other rules guarantee)."""
    try:
        from pyonnx.shape_inference import infer_shapes  # type: ignore[attr-defined]
    except ImportError:
        return  # shape inference is not part of this installation yet: types were checked above
    try:
        infer_shapes(ctx.model, strict=True, max_nesting_depth=max_nesting_depth)
    except ShapeInferenceError as e:
        ctx.report("shape-inference", "model", str(e))
