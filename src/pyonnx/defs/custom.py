"""Custom operators: operators a user declares in a custom domain, computed by a Python kernel.

ONNX lets a model call operators outside the standard domains; the runtime that provides the
domain gives them meaning. In pyonnx a user provides it with a declaration, in the form
onnxruntime-extensions users know (``@onnx_op``, ``PyCustomOpDef``)::

    import numpy as np
    from pyonnx import PyCustomOpDef, onnx_op

    @onnx_op(op_type="Inverse", inputs=[PyCustomOpDef.dt_float],
             outputs=[PyCustomOpDef.dt_float])
    def inverse(x):
        return np.linalg.inv(x)

A declaration (:class:`CustomOp`) holds a schema (an :class:`~pyonnx.defs.OpSchema` like the
built-in ones), the kernel, an optional shape rule and whether the operator is deterministic. It
enters the tables the built-in operators live in: :func:`pyonnx.defs.lookup` returns its schema,
the kernel registry its kernel (:mod:`pyonnx.ops.custom` wraps it) and the shape-rule registry its
rule (:mod:`pyonnx.shape_inference.custom`), so the checker, shape inference, the optimizer and
the runtime treat its nodes like any other. Constant folding and data propagation evaluate a node
only when its schema says ``deterministic``, which a declaration says only with
``deterministic=True``.

Where a declaration is visible:

* process-wide: :func:`register_custom_op` (``@onnx_op`` does it by default) until
  :func:`unregister_custom_op`;
* for one session: ``SessionOptions.register_custom_op(op)``; the session creates its plan (and
  runs the optimizer) inside ``custom_op_scope`` of its options' declarations, so another session
  never sees them;
* for a block of code: ``with custom_op_scope([op]): check_model(model, full_check=True)``. A scope
  belongs to the thread (a :mod:`contextvars` variable) that enters it; scopes nest.

A scoped declaration of some (domain, op_type) hides every process-wide version of it: the
session's own declaration wins.

Declarations cannot touch what pyonnx already defines: the standard ONNX domains, the optimizer's
``pyonnx`` domain, and any operator of the built-in table (``com.microsoft``'s included).
"""

from __future__ import annotations

import contextlib
import contextvars
import keyword
import re
import threading
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from pyonnx.defs.schema import (
    UNBOUNDED,
    AttributeSchema,
    FormalParameter,
    FormalParameterOption,
    OpSchema,
)
from pyonnx.defs.type_strings import parse_type_string
from pyonnx.errors import InvalidArgument
from pyonnx.ir import DataType

__all__ = [
    "CustomOp",
    "DEFAULT_DOMAIN",
    "STANDARD_DOMAINS",
    "Param",
    "PyCustomOpDef",
    "custom_op_scope",
    "custom_versions",
    "find_custom_op",
    "lookup_custom_schema",
    "onnx_op",
    "register_custom_op",
    "registered_custom_ops",
    "unregister_custom_op",
]

#: The domain onnxruntime-extensions puts its Python operators in; ``onnx_op``'s default.
DEFAULT_DOMAIN = "ai.onnx.contrib"

# the optimizer's fused kernels live here (pyonnx.optimizer.FUSED_DOMAIN; defs sits below the
# optimizer, so the name is repeated rather than imported)
_RESERVED_DOMAINS = frozenset({"pyonnx"})
#: The ONNX standard's own domains: a user cannot add operators to them.
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview",
                               "ai.onnx.preview.training", "ai.onnx.training"})


class _ElemType(int):
    """An ONNX element type code that says "this is a type", unlike a plain int (a default
    value): ``attrs={"k": PyCustomOpDef.dt_int64}`` declares an INT attribute,
    ``attrs={"k": 7}`` one whose default is 7."""

    _names: dict[int, str] = {}

    def __repr__(self) -> str:
        return f"PyCustomOpDef.{self._names.get(int(self), int(self))}"


def _dt(name: str, code: int) -> _ElemType:
    _ElemType._names[code] = name
    return _ElemType(code)


class PyCustomOpDef:
    """Element types by onnxruntime-extensions' names (their values are ONNX's type codes).

    Used in ``inputs``/``outputs`` (a tensor of that element type) and in ``attrs`` (the
    attribute type: ``dt_float``/``dt_double`` FLOAT, integer types and ``dt_bool`` INT,
    ``dt_string`` STRING).
    """

    undefined = _dt("undefined", 0)
    dt_float = _dt("dt_float", 1)
    dt_uint8 = _dt("dt_uint8", 2)
    dt_int8 = _dt("dt_int8", 3)
    dt_uint16 = _dt("dt_uint16", 4)
    dt_int16 = _dt("dt_int16", 5)
    dt_int32 = _dt("dt_int32", 6)
    dt_int64 = _dt("dt_int64", 7)
    dt_string = _dt("dt_string", 8)
    dt_bool = _dt("dt_bool", 9)
    dt_float16 = _dt("dt_float16", 10)
    dt_double = _dt("dt_double", 11)
    dt_uint32 = _dt("dt_uint32", 12)
    dt_uint64 = _dt("dt_uint64", 13)
    dt_complex64 = _dt("dt_complex64", 14)
    dt_complex128 = _dt("dt_complex128", 15)
    dt_bfloat16 = _dt("dt_bfloat16", 16)


@dataclass(frozen=True)
class Param:
    """A formal input or output when a bare type is not enough.

    ``type`` is what a bare entry may be (a ``PyCustomOpDef`` constant, a type string such as
    ``"tensor(float)"``, a NumPy dtype, or a type parameter named in ``type_constraints``).
    ``optional``: the node may leave it empty (the kernel then gets ``None``). ``variadic``: the
    last parameter may repeat, at least ``min_arity`` times; ``homogeneous`` says whether all its
    values share one type.
    """

    type: Any
    name: str | None = None
    optional: bool = False
    variadic: bool = False
    min_arity: int = 1
    homogeneous: bool = True


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# ------------------------------------------------------------------------------- declarations

_FLOAT_CODES = {1, 10, 11, 16}


def _attribute_type(spec: Any) -> str | None:
    """The AttributeProto type name a type-like spec declares; None when ``spec`` is a value."""
    if isinstance(spec, _ElemType):
        if spec == PyCustomOpDef.dt_string:
            return "STRING"
        if int(spec) in _FLOAT_CODES:
            return "FLOAT"
        if spec in (PyCustomOpDef.undefined, PyCustomOpDef.dt_complex64,
                    PyCustomOpDef.dt_complex128):
            raise ValueError(f"{spec!r} is not an attribute type")
        return "INT"
    if spec is int or spec is bool:
        return "INT"
    if spec is float:
        return "FLOAT"
    if spec is str:
        return "STRING"
    if spec is np.ndarray:
        return "TENSOR"
    if typing.get_origin(spec) is list:  # list[int], list[float], list[str]
        args = typing.get_args(spec)
        item = args[0] if len(args) == 1 else None
        if item in (int, bool):
            return "INTS"
        if item is float:
            return "FLOATS"
        if item is str:
            return "STRINGS"
        raise ValueError(f"{spec} is not an attribute type (use list[int], list[float] or "
                         f"list[str])")
    if isinstance(spec, type):
        raise ValueError(f"{spec.__name__} is not an attribute type (use int, float, str, "
                         f"list[int], list[float], list[str], numpy.ndarray or a "
                         f"PyCustomOpDef constant)")
    return None


def _attribute_default(name: str, value: Any) -> tuple[str, Any]:
    """(type name, kernel default) of an attribute declared by its default value."""
    if isinstance(value, (bool, int, np.integer, np.bool_)):
        return "INT", int(value)
    if isinstance(value, (float, np.floating)):
        return "FLOAT", float(value)
    if isinstance(value, str):
        return "STRING", value
    if isinstance(value, np.ndarray):
        value = value.copy()
        value.flags.writeable = False  # shared by every call of the kernel
        return "TENSOR", value
    if isinstance(value, (list, tuple)) and value:
        items = list(value)
        if all(isinstance(x, (bool, int)) for x in items):
            return "INTS", [int(x) for x in items]
        if all(isinstance(x, (bool, int, float)) for x in items):
            return "FLOATS", [float(x) for x in items]
        if all(isinstance(x, str) for x in items):
            return "STRINGS", items
    raise ValueError(f"attribute {name!r}: cannot tell the attribute type of the default "
                     f"{value!r} (give a type such as int, float, str, list[int], or a "
                     f"PyCustomOpDef constant, or a non-empty list default)")


class CustomOp:
    """One version of a user-declared operator: schema, kernel, shape rule, determinism.

    ``inputs``/``outputs`` list one entry per formal parameter: a ``PyCustomOpDef`` constant, a
    type string (``"tensor(float)"``, ``"seq(tensor(int64))"``), a NumPy dtype, a type parameter
    named in ``type_constraints`` (``{"T": ["tensor(float)", "tensor(double)"]}``), or a
    :class:`Param` for a named, optional or variadic one. ``attrs`` maps each attribute name to
    its type (``int``, ``float``, ``str``, ``list[int]``, ``list[float]``, ``list[str]``,
    ``numpy.ndarray`` for a TENSOR, or a ``PyCustomOpDef`` constant) or to its default value
    (``1.0``, ``"mode"``, ``[1, 2]``; a plain int is a default, a ``PyCustomOpDef`` constant a
    type); a list of names declares STRING attributes, as in onnxruntime-extensions. A node may
    leave any attribute out: the kernel then gets the declared default, or no keyword at all.

    ``kernel(*inputs, **attrs)`` takes NumPy arrays (``None`` for an absent optional input) and
    returns one array or a tuple of arrays, one per output; the runtime checks the types of both
    against the declaration. ``shape_rule(*input_shapes, **attrs)`` (optional) gets each input's
    shape as a tuple of dims (int, a symbol name, or None) or None when unknown, and returns the
    output shapes (one shape for a one-output operator, else a list with one shape or None per
    output). ``deterministic=True`` promises the outputs depend on the inputs and attributes
    alone, which lets constant folding and data propagation evaluate the kernel ahead of a run.

    Calling the object calls the kernel (so ``@onnx_op`` leaves a usable function).
    Declaration mistakes raise :class:`~pyonnx.errors.InvalidArgument`.
    """

    __slots__ = ("op_type", "domain", "since_version", "kernel", "shape_rule", "deterministic",
                 "schema", "attribute_defaults", "_adapters", "__weakref__")

    def __init__(self, op_type: str, kernel: Callable[..., Any], *,
                 domain: str = DEFAULT_DOMAIN, inputs: Sequence[Any] | None = None,
                 outputs: Sequence[Any] | None = None,
                 attrs: Mapping[str, Any] | Sequence[str] | None = None,
                 type_constraints: Mapping[str, Sequence[Any]] | None = None,
                 shape_rule: Callable[..., Any] | None = None, deterministic: bool = False,
                 since_version: int = 1) -> None:
        where = f"custom operator {domain}::{op_type}"
        if not isinstance(op_type, str) or not _IDENT.match(op_type):
            raise InvalidArgument(f"{where}: op_type must be an identifier, got {op_type!r}")
        if not isinstance(domain, str):
            raise InvalidArgument(f"{where}: domain must be a string, got {domain!r}")
        if domain in STANDARD_DOMAINS:
            raise InvalidArgument(
                f"{where}: custom operators cannot be added to the standard domain "
                f"{domain or 'ai.onnx'!r}; use your own domain (onnxruntime-extensions uses "
                f"{DEFAULT_DOMAIN!r})")
        if domain in _RESERVED_DOMAINS:
            raise InvalidArgument(f"{where}: domain {domain!r} is reserved for pyonnx's fused "
                                  f"kernels; use your own domain")
        from pyonnx import defs  # the table; imported here, defs imports this module

        if defs.has_builtin_op(domain, op_type):
            raise InvalidArgument(f"{where}: pyonnx already defines this operator; a custom "
                                  f"declaration cannot replace a built-in one")
        if isinstance(since_version, bool) or not isinstance(since_version, int) \
                or since_version < 1:
            raise InvalidArgument(f"{where}: since_version must be an int >= 1, got "
                                  f"{since_version!r}")
        if not callable(kernel):
            raise InvalidArgument(f"{where}: the kernel must be callable, got {kernel!r}")
        if shape_rule is not None and not callable(shape_rule):
            raise InvalidArgument(f"{where}: shape_rule must be callable or None, got "
                                  f"{shape_rule!r}")
        if not isinstance(deterministic, bool):
            raise InvalidArgument(f"{where}: deterministic must be True or False")
        self.op_type = op_type
        self.domain = domain
        self.since_version = since_version
        self.kernel = kernel
        self.shape_rule = shape_rule
        self.deterministic = deterministic
        try:
            constraints = self._constraints(type_constraints)
            ins = self._formals("input", PyCustomOpDef.dt_float if inputs is None else None,
                                inputs, constraints)
            outs = self._formals("output", PyCustomOpDef.dt_float if outputs is None else None,
                                 outputs, constraints)
            used = {p.type_str for p in (*ins, *outs)}
            unused = sorted(set(constraints) - used)
            if unused:
                raise ValueError(f"type parameter(s) {', '.join(unused)} in type_constraints "
                                 f"are used by no input or output")
            attributes, defaults = self._attributes(attrs)
        except ValueError as e:
            raise InvalidArgument(f"{where}: {e}") from None
        self.attribute_defaults: Mapping[str, Any] = MappingProxyType(defaults)
        self.schema = OpSchema(
            name=op_type, domain=domain, since_version=since_version, inputs=ins, outputs=outs,
            attributes=MappingProxyType(attributes),
            type_constraints=MappingProxyType(constraints),
            min_input=_min_count(ins), max_input=_max_count(ins),
            min_output=_min_count(outs), max_output=_max_count(outs),
            node_determinism="deterministic" if deterministic else "non_deterministic")
        self._adapters: dict[str, Any] = {}  # the kernel/rule wrappers, built once (ops, shapes)

    # ------------------------------------------------------------------ declaration parsing

    @staticmethod
    def _constraints(tc: Mapping[str, Sequence[Any]] | None) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for name, allowed in (tc or {}).items():
            if not isinstance(name, str) or not _IDENT.match(name):
                raise ValueError(f"type parameter name {name!r} is not an identifier")
            if isinstance(allowed, (str, _ElemType)) or not allowed:
                raise ValueError(f"type_constraints[{name!r}] must be a non-empty list of types")
            types = []
            for spec in allowed:
                ts = _concrete_type(spec, f"type_constraints[{name!r}]")
                if ts not in types:
                    types.append(ts)
            out[name] = tuple(types)
        return out

    @staticmethod
    def _formals(kind: str, default: Any, specs: Sequence[Any] | None,
                 constraints: Mapping[str, tuple[str, ...]]) -> tuple[FormalParameter, ...]:
        if specs is None:
            specs = [default]
        if isinstance(specs, (str, _ElemType, Param)):
            specs = [specs]
        formals = []
        for i, spec in enumerate(specs):
            p = spec if isinstance(spec, Param) else Param(spec)
            what = f"{kind} {i}"
            if p.optional and p.variadic:
                raise ValueError(f"{what} cannot be both optional and variadic")
            if p.variadic and i != len(specs) - 1:
                raise ValueError(f"{what} is variadic but not the last {kind}")
            if p.variadic and (not isinstance(p.min_arity, int) or p.min_arity < 0):
                raise ValueError(f"{what}: min_arity must be an int >= 0")
            if isinstance(p.type, str) and _IDENT.match(p.type.strip()) \
                    and "(" not in p.type:
                type_str = p.type.strip()
                if type_str not in constraints:
                    raise ValueError(
                        f"{what} has type {type_str!r}, which is neither a type string such "
                        f"as 'tensor(float)' nor a type parameter declared in type_constraints")
            else:
                type_str = _concrete_type(p.type, what)
            option = (FormalParameterOption.VARIADIC if p.variadic else
                      FormalParameterOption.OPTIONAL if p.optional else
                      FormalParameterOption.SINGLE)
            name = p.name if p.name is not None else f"{kind}{i}"
            formals.append(FormalParameter(name=name, type_str=type_str, option=option,
                                           is_homogeneous=p.homogeneous,
                                           min_arity=p.min_arity if p.variadic else 1))
        return tuple(formals)

    @staticmethod
    def _attributes(attrs: Mapping[str, Any] | Sequence[str] | None
                    ) -> tuple[dict[str, AttributeSchema], dict[str, Any]]:
        if attrs is None:
            attrs = {}
        if isinstance(attrs, str):
            raise ValueError("attrs must be a dict of name -> type or default, or a list of "
                             "names")
        if not isinstance(attrs, Mapping):
            # onnxruntime-extensions: a list of names declares string attributes
            attrs = {name: PyCustomOpDef.dt_string for name in attrs}
        schemas: dict[str, AttributeSchema] = {}
        defaults: dict[str, Any] = {}
        for name, spec in attrs.items():
            if not isinstance(name, str) or not _IDENT.match(name) or keyword.iskeyword(name):
                raise ValueError(f"attribute name {name!r} is not a Python identifier (the "
                                 f"kernel receives attributes as keyword arguments)")
            if name == "ctx":
                raise ValueError("attribute name 'ctx' is reserved (kernel context)")
            type_name = _attribute_type(spec)
            if type_name is None:
                type_name, default = _attribute_default(name, spec)
                defaults[name] = default
                shown = None if type_name == "TENSOR" else (
                    tuple(default) if isinstance(default, list) else default)
                schemas[name] = AttributeSchema(name, type_name, False, shown)
            else:
                schemas[name] = AttributeSchema(name, type_name, False, None)
        return schemas, defaults

    # ------------------------------------------------------------------ types

    def bind_types(self, kind: str, actual: Sequence[str | None],
                   bound: dict[str, str]) -> str | None:
        """Check the (canonical) types of actual inputs or outputs against the declaration,
        binding type parameters in ``bound``; the first disagreement as a message, else None.
        A None entry (absent, or type unknown) is not checked."""
        formals = self.schema.inputs if kind == "input" else self.schema.outputs
        constraints = self.schema.type_constraints
        for i, ts in enumerate(actual):
            if ts is None or not formals:
                continue
            if i >= len(formals) and not formals[-1].is_variadic:
                continue  # the arity check reports it
            formal = formals[min(i, len(formals) - 1)]
            declared = formal.type_str
            allowed = constraints.get(declared)
            options = allowed if allowed is not None else (declared,)
            ok = [a for a in options if a == ts or a == f"optional({ts})"]
            if not ok:
                wanted = (f"{declared} (one of {', '.join(allowed)})" if allowed is not None
                          else declared)
                return f"{kind} {i} has type {ts} but {self} declares {wanted}"
            if allowed is None or (formal.is_variadic and not formal.is_homogeneous):
                continue
            prev = bound.get(declared)
            if prev is None:
                bound[declared] = ok[0]
            elif prev != ok[0]:
                return (f"{kind} {i} has type {ts} but type parameter {declared} is already "
                        f"{prev}; {self} declares both with the same type {declared}")
        return None

    def output_type_strings(self, bound: Mapping[str, str], n: int) -> list[str | None]:
        """Each of ``n`` outputs' type as the declaration and the bound parameters give it
        (None where a type parameter is unbound and allows several types)."""
        outs = self.schema.outputs
        result: list[str | None] = []
        for i in range(n):
            if not outs:
                result.append(None)
                continue
            declared = outs[min(i, len(outs) - 1)].type_str
            allowed = self.schema.type_constraints.get(declared)
            if allowed is None:
                result.append(declared)
            elif declared in bound:
                result.append(bound[declared])
            else:
                result.append(allowed[0] if len(allowed) == 1 else None)
        return result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.kernel(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.domain}::{self.op_type}-{self.since_version}"

    def __repr__(self) -> str:
        return f"<CustomOp {self} kernel={getattr(self.kernel, '__qualname__', self.kernel)}>"


def _concrete_type(spec: Any, what: str) -> str:
    """The canonical type string of a declared concrete type."""
    if isinstance(spec, _ElemType):
        if spec == PyCustomOpDef.undefined:
            raise ValueError(f"{what}: PyCustomOpDef.undefined names no type; declare a type "
                             f"parameter in type_constraints for an input of several types")
        return f"tensor({DataType(int(spec)).onnx_name})"
    if isinstance(spec, str):
        try:
            return parse_type_string(spec)[0]
        except ValueError as e:
            raise ValueError(f"{what}: bad type string {spec!r}: {e}") from None
    if isinstance(spec, np.dtype) or (isinstance(spec, type) and issubclass(spec, np.generic)):
        try:
            return f"tensor({DataType.from_numpy(spec).onnx_name})"
        except ValueError:
            raise ValueError(f"{what}: NumPy dtype {np.dtype(spec)} has no ONNX type") from None
    raise ValueError(f"{what}: {spec!r} is not a type (use a PyCustomOpDef constant, a type "
                     f"string such as 'tensor(float)', a NumPy dtype, or a type parameter)")


def _min_count(formals: Sequence[FormalParameter]) -> int:
    n = 0
    for i, f in enumerate(formals):
        if f.is_variadic:
            if f.min_arity > 0:  # all before it are then present too (inputs are positional)
                n = i + f.min_arity
        elif not f.is_optional:
            n = i + 1
    return n


def _max_count(formals: Sequence[FormalParameter]) -> int:
    if formals and formals[-1].is_variadic:
        return UNBOUNDED
    return len(formals)


# ------------------------------------------------------------------------------- registries

_Key = tuple[str, str]
# process-wide: (domain, op_type) -> versions ascending by since_version. Replaced, never
# mutated, under the lock, so a reader on another thread sees a whole table
_process: dict[_Key, tuple[CustomOp, ...]] = {}
_lock = threading.Lock()
# the innermost scope's view: its declarations and every enclosing scope's
_scope: contextvars.ContextVar[Mapping[_Key, tuple[CustomOp, ...]] | None] = \
    contextvars.ContextVar("pyonnx_custom_op_scope", default=None)


def _add(table: dict[_Key, tuple[CustomOp, ...]], op: CustomOp, where: str) -> None:
    if not isinstance(op, CustomOp):
        raise InvalidArgument(f"{where} takes a CustomOp (made by pyonnx.CustomOp(...) or "
                              f"@pyonnx.onnx_op), got {type(op).__name__}")
    key = (op.domain, op.op_type)
    versions = table.get(key, ())
    for other in versions:
        if other is op:
            raise InvalidArgument(f"{where}: {op} is already registered")
        if other.since_version == op.since_version:
            raise InvalidArgument(
                f"{where}: {op} is already registered (kernel "
                f"{getattr(other.kernel, '__qualname__', other.kernel)}); "
                f"unregister_custom_op it first, or declare another since_version")
    table[key] = tuple(sorted((*versions, op), key=lambda o: o.since_version))


def register_custom_op(op: CustomOp) -> CustomOp:
    """Make ``op`` visible process-wide, to every session, checker and inference run (a
    session's own declaration of the same operator still wins inside that session). Registering
    a second declaration of one (domain, op_type, since_version) raises InvalidArgument."""
    global _process
    with _lock:
        table = dict(_process)
        _add(table, op, "register_custom_op")
        _process = table
    return op


def unregister_custom_op(op: CustomOp) -> None:
    """Remove a process-wide declaration; sessions already created keep their kernels."""
    global _process
    with _lock:
        key = (getattr(op, "domain", None), getattr(op, "op_type", None))
        versions = _process.get(key, ())  # type: ignore[arg-type]
        if not any(o is op for o in versions):
            raise InvalidArgument(f"unregister_custom_op: {op!r} is not registered "
                                  f"process-wide")
        table = dict(_process)
        rest = tuple(o for o in versions if o is not op)
        if rest:
            table[key] = rest  # type: ignore[index]
        else:
            del table[key]  # type: ignore[arg-type]
        _process = table


def registered_custom_ops() -> list[CustomOp]:
    """The process-wide declarations, by domain, op_type and since_version."""
    return [op for key in sorted(_process) for op in _process[key]]


def scope_table(ops: Iterable[CustomOp], where: str) -> dict[_Key, tuple[CustomOp, ...]]:
    """The declarations of one scope keyed by (domain, op_type), duplicates refused."""
    table: dict[_Key, tuple[CustomOp, ...]] = {}
    for op in ops:
        _add(table, op, where)
    return table


@contextlib.contextmanager
def custom_op_scope(ops: Iterable[CustomOp]) -> Iterator[None]:
    """Make ``ops`` visible, in addition to the process-wide declarations, to what the current
    thread does inside the ``with`` block (what a session does while it is created). A scoped
    declaration of a (domain, op_type) hides the process-wide versions of it; scopes nest."""
    table = scope_table(ops, "custom_op_scope")
    outer = _scope.get()
    merged = {**outer, **table} if outer else table
    token = _scope.set(MappingProxyType(merged) if merged else outer)
    try:
        yield
    finally:
        _scope.reset(token)


def _versions(domain: str, op_type: str) -> tuple[CustomOp, ...]:
    key = (domain, op_type)
    scoped = _scope.get()
    if scoped is not None:
        found = scoped.get(key)
        if found is not None:
            return found
    return _process.get(key, ())


def find_custom_op(domain: str, op_type: str, opset: int) -> CustomOp | None:
    """The visible declaration that opset ``opset`` of ``domain`` selects (the largest
    since_version <= opset), or None."""
    best = None
    for op in _versions(domain, op_type):
        if op.since_version <= opset:
            best = op
    return best


def lookup_custom_schema(domain: str, op_type: str, opset: int) -> OpSchema | None:
    """The schema of the visible declaration that ``opset`` selects, or None."""
    op = find_custom_op(domain, op_type, opset)
    return op.schema if op is not None else None


def custom_versions(domain: str, op_type: str) -> tuple[int, ...]:
    """The since_versions of the visible declarations of ``op_type``, ascending."""
    return tuple(op.since_version for op in _versions(domain, op_type))


def exact_custom_op(domain: str, op_type: str, since_version: int) -> CustomOp | None:
    """The visible declaration of exactly this since_version (how kernels and rules are keyed)."""
    for op in _versions(domain, op_type):
        if op.since_version == since_version:
            return op
    return None


def onnx_op(op_type: str | Callable[..., Any] | None = None, *, domain: str = DEFAULT_DOMAIN,
            inputs: Sequence[Any] | None = None, outputs: Sequence[Any] | None = None,
            attrs: Mapping[str, Any] | Sequence[str] | None = None,
            type_constraints: Mapping[str, Sequence[Any]] | None = None,
            shape_rule: Callable[..., Any] | None = None, deterministic: bool = False,
            since_version: int = 1, register: bool = True
            ) -> Any:
    """Declare the decorated function as the kernel of a custom operator (onnxruntime-extensions'
    ``@onnx_op``): ``op_type`` defaults to the function's name, ``inputs``/``outputs`` to one
    float tensor each, ``domain`` to ``ai.onnx.contrib``. The other arguments are
    :class:`CustomOp`'s. With ``register=True`` (the default) the declaration is process-wide;
    ``register=False`` only builds it, for ``SessionOptions.register_custom_op``. Returns the
    :class:`CustomOp`, which calls the function when called."""
    def declare(fn: Callable[..., Any]) -> CustomOp:
        name: Any = op_type if isinstance(op_type, str) else getattr(fn, "__name__", None)
        op = CustomOp(name, fn, domain=domain, inputs=inputs, outputs=outputs, attrs=attrs,
                      type_constraints=type_constraints, shape_rule=shape_rule,
                      deterministic=deterministic, since_version=since_version)
        if register:
            register_custom_op(op)
        return op

    if callable(op_type) and not isinstance(op_type, str):
        return declare(op_type)  # used bare: @onnx_op
    return declare
