"""The torch op table: one torch function per ONNX operator (and schema-version range).

Both users of torch share it: :func:`pyonnx.convert.to_torch` writes one call of a table function
per node into a ``torch.fx`` graph, and the torch execution provider
(:mod:`pyonnx.backends.torch`) runs the same functions as its kernels. A table function follows
the kernel convention of :mod:`pyonnx.ops`: inputs positional (``None`` for an absent optional
input), attributes as keyword arguments with the spec's defaults. It returns one tensor, or a
tuple for operators with several outputs, and is built from differentiable torch operations so
that converted modules train.

:func:`claim` says whether the table runs a node (the operator, its schema version, its element
types and attributes), and why not when it does not; the committed exclusion list
(``exclusions.txt`` beside this file) names every operator of the ONNX backend node cases the
table does not claim, with the reason.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from pyonnx.ir import Node, TensorType
from pyonnx.ir.types import OptionalType, SequenceType

__all__ = ["TorchOp", "torch_op", "lookup", "claim", "table", "exclusions", "MANY_OUTPUTS"]


@dataclasses.dataclass(frozen=True)
class TorchOp:
    """A table entry: ``fn`` implements ``op_type`` from schema version ``since`` on (until the
    next entry of the same operator). ``check(node)`` returns why a node is not claimed (an
    attribute value the function does not implement), or None. ``sequences`` marks functions
    that take or return sequences (lists of tensors). ``needs_device`` functions create tensors
    from attributes alone and take ``device=``; ``node_kwargs(node)`` gives keyword arguments
    read from the node itself (such as its number of outputs), which a kernel cannot see."""

    op_type: str
    since: int
    fn: Callable[..., Any]
    domain: str = ""
    check: Callable[[Node], str | None] | None = None
    sequences: bool = False
    needs_device: bool = False
    node_kwargs: Callable[[Node], dict[str, Any]] | None = None


_TABLE: dict[tuple[str, str], list[TorchOp]] = {}


def torch_op(op_type: str, since: int = 1, *, domain: str = "",
             check: Callable[[Node], str | None] | None = None, sequences: bool = False,
             needs_device: bool = False,
             node_kwargs: Callable[[Node], dict[str, Any]] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function for ``op_type`` versions ``since`` and later (until the
    operator's next registered ``since``)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        entries = _TABLE.setdefault((domain, op_type), [])
        if any(e.since == since for e in entries):
            raise ValueError(f"torch op {op_type} since {since} is registered twice")
        entries.append(TorchOp(op_type, since, fn, domain, check, sequences, needs_device,
                               node_kwargs))
        entries.sort(key=lambda e: e.since)
        return fn

    return deco


def lookup(domain: str, op_type: str, since_version: int) -> TorchOp | None:
    """The entry that implements schema version ``since_version`` of ``op_type``, or None."""
    domain = "" if domain == "ai.onnx" else domain
    found = None
    for e in _TABLE.get((domain, op_type), ()):
        if e.since <= since_version:
            found = e
    return found


def table() -> dict[tuple[str, str], list[TorchOp]]:
    """Every entry by (domain, op_type) (a copy, for coverage reports and tests)."""
    return {k: list(v) for k, v in _TABLE.items()}


def _type_problem(value: Any, sequences: bool) -> str | None:
    from pyonnx.backends.torch.dtypes import supported

    t = value.type
    if t is None:
        return None
    if isinstance(t, (SequenceType, OptionalType)):
        if not sequences:
            return f"value {value.name!r} is a {t}, which this function does not take"
        t = t.elem_type
        while isinstance(t, (SequenceType, OptionalType)):
            t = t.elem_type
        if t is None:
            return None
    if not isinstance(t, TensorType):
        return f"value {value.name!r} has type {t}, which torch does not hold"
    if not supported(t.elem_type):
        return f"value {value.name!r} has element type {t.elem_type.name}, which torch lacks"
    return None


def claim(node: Node, domain: str, since_version: int) -> tuple[TorchOp | None, str | None]:
    """(entry, None) when the table runs ``node`` at ``since_version``, else (None, why)."""
    entry = lookup(domain, node.op_type, since_version)
    if entry is None:
        return None, (f"{node.describe()}: the torch op table has no {node.op_type} (domain "
                      f"{domain or 'ai.onnx'!r}) for version {since_version}")
    for v in [*node.inputs, *node.outputs]:
        if v is None or not v.name:
            continue
        why = _type_problem(v, entry.sequences)
        if why:
            return None, f"{node.describe()}: {why}"
    if entry.check is not None:
        why = entry.check(node)
        if why:
            return None, f"{node.describe()}: {why}"
    return entry, None


#: operators whose function returns a tuple (one element per output the operator can have)
MANY_OUTPUTS = frozenset({"Split", "Dropout", "LayerNormalization", "MaxPool", "TopK", "LSTM",
                          "GRU", "RNN", "SkipLayerNormalization",
                          "SkipSimplifiedLayerNormalization"})


def exclusions() -> dict[str, str]:
    """The committed exclusion list: operator -> why the table does not claim it."""
    path = os.path.join(os.path.dirname(__file__), "exclusions.txt")
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            op, _, why = line.partition(" ")
            out[op] = why.strip()
    return out


# the table itself: importing the families registers their functions
from pyonnx.backends.torch.ops import contrib, elementwise, nn, reduce, rnn, tensor  # noqa: E402,F401,I001
