"""Operator schemas as data: which operators exist, in which versions, with which parameters.

The table is ``schemas.json`` beside this file, generated from the ONNX specification by
``tools/gen_schemas.py`` (see there for when to regenerate) and loaded lazily, once per process,
on the first query. It holds the standard domains: ``""`` (alias ``"ai.onnx"``), ``ai.onnx.ml``,
``ai.onnx.preview`` and ``ai.onnx.preview.training``.

Version resolution follows the spec: a model importing opset *N* of a domain uses, for each
operator, the schema with the largest ``since_version`` that is ``<= N``::

    >>> lookup("", "Clip", 12).since_version
    12
    >>> lookup("ai.onnx", "Clip", 10).since_version
    6

:func:`lookup` also returns a *deprecated* schema (``Upsample`` from opset 10, ``Scatter`` from
11, …): it is the version that removed the operator, and the caller decides what to do with a
node that uses it (the checker rejects it, a runtime may refuse it). It does not check ``opset``
against :func:`max_opset` either: a model newer than the table is the caller's error to report.
"""

from __future__ import annotations

import bisect
import functools
import importlib.resources
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pyonnx.defs.schema import (
    UNBOUNDED,
    AttributeSchema,
    FormalParameter,
    FormalParameterOption,
    OpSchema,
    TensorDefault,
)

__all__ = [
    "MAX_IR_VERSION",
    "UNBOUNDED",
    "AttributeSchema",
    "FormalParameter",
    "FormalParameterOption",
    "OpSchema",
    "TensorDefault",
    "domains",
    "has_op",
    "lookup",
    "max_opset",
    "normalize_domain",
    "onnx_version",
    "op_types",
    "versions",
]

#: The newest IR version pyonnx reads and writes (``onnx.IR_VERSION`` of the onnx release the
#: schema table was generated from; tests keep the two in step).
MAX_IR_VERSION = 14


def normalize_domain(domain: str) -> str:
    """The default domain is spelled ``""``; ``"ai.onnx"`` is an alias of it."""
    return "" if domain == "ai.onnx" else domain


@dataclass(frozen=True, slots=True)
class _Table:
    onnx_version: str
    ir_version: int
    opset_range: Mapping[str, tuple[int, int]]
    # (domain, op_type) -> (ascending since_versions, schemas in the same order)
    index: Mapping[tuple[str, str], tuple[tuple[int, ...], tuple[OpSchema, ...]]]
    op_types: Mapping[str, tuple[str, ...]]


@functools.cache
def _table() -> _Table:
    text = importlib.resources.files("pyonnx.defs").joinpath("schemas.json").read_text("utf-8")
    data = json.loads(text)
    grouped: dict[tuple[str, str], list[OpSchema]] = {}
    for record in data["schemas"]:
        schema = OpSchema.from_json(record)
        grouped.setdefault((schema.domain, schema.name), []).append(schema)
    index = {}
    names: dict[str, list[str]] = {}
    for key, schemas in grouped.items():
        schemas.sort(key=lambda s: s.since_version)
        index[key] = (tuple(s.since_version for s in schemas), tuple(schemas))
        names.setdefault(key[0], []).append(key[1])
    return _Table(
        onnx_version=data["onnx_version"],
        ir_version=data["ir_version"],
        opset_range=MappingProxyType({d: (lo, hi) for d, (lo, hi) in data["opset_range"].items()}),
        index=index,
        op_types=MappingProxyType({d: tuple(sorted(v)) for d, v in names.items()}),
    )


def lookup(domain: str, op_type: str, opset: int) -> OpSchema | None:
    """The schema of ``op_type`` that opset ``opset`` of ``domain`` selects, or ``None``.

    That is the version with the largest ``since_version <= opset``. ``None`` when the domain has
    no such operator, or when the operator only exists from a later opset. A deprecated version is
    returned like any other (see the module docstring).
    """
    entry = _table().index.get((normalize_domain(domain), op_type))
    if entry is None:
        return None
    since, schemas = entry
    i = bisect.bisect_right(since, opset)
    return schemas[i - 1] if i else None


def versions(domain: str, op_type: str) -> tuple[int, ...]:
    """The ``since_version`` of every schema of ``op_type``, ascending; ``()`` if unknown."""
    entry = _table().index.get((normalize_domain(domain), op_type))
    return entry[0] if entry is not None else ()


def has_op(domain: str, op_type: str) -> bool:
    """Whether ``domain`` defines ``op_type`` in any version (deprecated ones included)."""
    return (normalize_domain(domain), op_type) in _table().index


def op_types(domain: str) -> list[str]:
    """The operators ``domain`` defines in any version, sorted; ``[]`` for an unknown domain."""
    return list(_table().op_types.get(normalize_domain(domain), ()))


def domains() -> list[str]:
    """The operator-set domains the table knows, sorted, the default domain spelled ``""``.

    This includes ``ai.onnx.training``, which the spec registers (opset 1) with no operators.
    """
    return sorted(_table().opset_range)


def max_opset(domain: str) -> int | None:
    """The newest opset version of ``domain`` the table covers; ``None`` for an unknown domain."""
    r = _table().opset_range.get(normalize_domain(domain))
    return r[1] if r is not None else None


def onnx_version() -> str:
    """The version of the onnx release whose specification the table was generated from."""
    return _table().onnx_version
