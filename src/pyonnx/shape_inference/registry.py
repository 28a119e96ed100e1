"""The shape-rule registry: which function infers an operator's output types at a schema version.

Rules are keyed exactly like kernels: ``(domain, op_type, since_version)``. The engine resolves the
schema version a model's opset selects (through :mod:`pyonnx.defs`) and takes the rule registered
for exactly that version.

A rule is ``rule(ctx: InferenceContext) -> Sequence[Type | None] | Type | None``: one entry per
node output (a single type stands for a one-output node); ``None`` means unknown. A rule may also
record known output *values* (``ctx.set_value``) for data propagation. It raises
:class:`~pyonnx.errors.ShapeInferenceError` (through ``ctx.fail``) when the inputs contradict the
operator's contract.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pyonnx import defs
from pyonnx.defs import normalize_domain
from pyonnx.defs.custom import exact_custom_op
from pyonnx.shape_inference.custom import custom_rule

__all__ = ["Rule", "shape_rule", "get_rule", "registered_rules", "all_versions"]

Rule = Callable[[Any], Any]

_RULES: dict[tuple[str, str, int], Rule] = {}
_loaded = False


def all_versions(op_type: str, domain: str = "") -> tuple[int, ...]:
    """Every since_version the schema table lists for ``op_type`` (for rules valid in all)."""
    return defs.versions(domain, op_type)


def shape_rule(op_type: str | Sequence[str], versions: Sequence[int] | None = None,
               domain: str = "") -> Callable[[Rule], Rule]:
    """Register the decorated function as the shape rule of ``op_type`` for each since_version.

    ``op_type`` may be a list of operators that share the rule; ``versions=None`` means every
    version the schema table knows for each of them. Registering a key twice raises ValueError.
    """
    dom = normalize_domain(domain)
    ops = [op_type] if isinstance(op_type, str) else list(op_type)

    def register(fn: Rule) -> Rule:
        for op in ops:
            vs = versions if versions is not None else all_versions(op, dom)
            if not vs:
                raise ValueError(f"shape rule {op!r}: no versions (unknown operator?)")
            for v in vs:
                key = (dom, op, int(v))
                if key in _RULES:
                    raise ValueError(f"shape rule for {dom or 'ai.onnx'}::{op} version {v} "
                                     f"registered twice")
                _RULES[key] = fn
        return fn

    return register


def get_rule(domain: str, op_type: str, since_version: int) -> Rule | None:
    """The rule registered for exactly this schema version, or ``None``; a visible custom
    operator's (:mod:`pyonnx.defs.custom`) when no built-in one exists."""
    _ensure_loaded()
    rule = _RULES.get((normalize_domain(domain), op_type, int(since_version)))
    if rule is None:
        op = exact_custom_op(domain, op_type, int(since_version))
        if op is not None:
            return custom_rule(op)
    return rule


def rule_versions(domain: str, op_type: str) -> tuple[int, ...]:
    """The since_versions that have a rule, ascending."""
    _ensure_loaded()
    dom = normalize_domain(domain)
    return tuple(sorted(v for (d, o, v) in _RULES if d == dom and o == op_type))


def registered_rules() -> list[tuple[str, str, int]]:
    """Every registered (domain, op_type, since_version), sorted."""
    _ensure_loaded()
    return sorted(_RULES)


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from pyonnx.shape_inference import (  # noqa: F401  (registration by import)
            rules_contrib,
            rules_control_flow,
            rules_elementwise,
            rules_misc,
            rules_ml,
            rules_nn,
            rules_reduce,
            rules_tensor,
            rules_training,
        )
