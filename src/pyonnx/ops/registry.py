"""The kernel registry: which Python function computes an operator at a schema version.

A kernel is registered for the exact ``since_version`` values of the schemas whose semantics it
implements. The runtime first resolves which schema version a model's opset selects (through
:mod:`pyonnx.defs`) and then asks for the kernel of exactly that version, so a kernel is never used
for a version it does not know.

Calling convention (mirrors the spec):

* inputs are positional, ``None`` for an absent optional input; variadic inputs arrive as ``*args``;
* attributes present on the node arrive as keyword arguments; the kernel's own defaults are the
  spec's defaults (they apply when the node omits the attribute);
* a graph attribute arrives as a :class:`Subgraph` (a callable running the body);
* a kernel that declares a keyword-only parameter named ``ctx`` also receives a
  :class:`KernelContext`;
* a kernel registered with ``prepare=`` receives, as the keyword-only ``prepared``, what its
  prepare function returned when the node was bound (once per node, see :mod:`pyonnx.ops.bind`):
  per-node state such as a memo of shape checks, kept on the bound node rather than in a
  process-wide cache; called directly (tests, tools) it gets ``None`` and computes everything;
* the kernel returns a tuple with one entry per output: ``numpy.ndarray`` for tensors (exact
  ONNX dtype, strings as object arrays of ``str``), ``list`` for sequences, ``dict`` for maps,
  ``None`` for an empty optional;
* a kernel never mutates its inputs.

Kernels raise :class:`~pyonnx.errors.ExecutionError` (or another ``PyOnnxError``) with a message
that says what is wrong; the runtime adds which node failed.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from pyonnx.defs import normalize_domain  # "" and "ai.onnx" are one domain
from pyonnx.defs.custom import exact_custom_op

__all__ = [
    "Kernel",
    "KernelContext",
    "Subgraph",
    "kernel",
    "registrar",
    "get_kernel",
    "graph_kernel",
    "get_graph_kernel",
    "graph_kernel_ops",
    "registered_versions",
    "registered_ops",
    "kernel_prepare",
    "kernel_parameters",
    "wants_context",
    "NodeMemo",
    "node_memo",
    "normalize_domain",
]

Kernel = Callable[..., tuple]

_REGISTRY: dict[tuple[str, str, int], Kernel] = {}
# ops whose meaning depends on the graph around the node (Gradient): factories that build the
# kernel at session creation from the node and the graph's nodes
_GRAPH_KERNELS: dict[tuple[str, str, int], Callable[..., Kernel]] = {}
# kernel -> its prepare function (``prepare(attributes) -> state``), for kernels that have one
_PREPARE: dict[Kernel, Callable[[dict[str, Any]], Any]] = {}


def kernel(op_type: str, versions: Sequence[int], domain: str = "",
           prepare: Callable[[dict[str, Any]], Any] | None = None
           ) -> Callable[[Kernel], Kernel]:
    """Register the decorated function as the kernel of ``op_type`` for each since_version.

    ``prepare(attributes)``, when given, is called once per bound node with the node's decoded
    attributes; the kernel then declares the keyword-only parameter ``prepared`` and receives
    the result on every call for that node (see :mod:`pyonnx.ops.bind`).

    Registering the same (domain, op_type, version) twice raises ``ValueError``: two kernels
    for one version would make the choice silent.
    """
    return registrar(_REGISTRY, op_type, versions, domain, prepare)


def registrar(table: dict[tuple[str, str, int], Kernel], op_type: str, versions: Sequence[int],
              domain: str = "", prepare: Callable[[dict[str, Any]], Any] | None = None
              ) -> Callable[[Kernel], Kernel]:
    """The decorator that registers a function in ``table`` for each since_version (what
    :func:`kernel` does for the reference table; a provider's table of kernel variants uses it
    too). Every check comes before the first entry, so a refused kernel leaves the table as it
    was."""
    dom = normalize_domain(domain)
    if not versions:
        raise ValueError(f"kernel {op_type!r}: versions must not be empty")

    def register(fn: Kernel) -> Kernel:
        if prepare is not None:
            params = kernel_parameters(fn)
            p = params.get("prepared") if params is not None else None
            if p is None or p.kind != inspect.Parameter.KEYWORD_ONLY:
                raise ValueError(f"kernel {fn.__module__}.{fn.__qualname__} is registered with a "
                                 f"prepare function but has no keyword-only 'prepared' parameter")
        keys = [(dom, op_type, int(v)) for v in versions]
        for key in keys:
            if key in table:
                other = table[key]
                raise ValueError(
                    f"kernel for {dom or 'ai.onnx'}::{op_type} version {key[2]} registered twice "
                    f"({other.__module__}.{other.__qualname__} and {fn.__module__}.{fn.__qualname__})"
                )
        for key in keys:
            table[key] = fn
        if prepare is not None:
            _PREPARE[fn] = prepare
        return fn

    return register


def kernel_prepare(fn: Kernel) -> Callable[[dict[str, Any]], Any] | None:
    """The prepare function registered with ``fn``, or ``None``."""
    return _PREPARE.get(fn)


class NodeMemo(dict):  # type: ignore[type-arg]
    """Per-node memo of results a kernel derives from its input shapes (validated geometry,
    window counts, a compiled forest): what ``node_memo`` prepares.

    Safe to share between concurrent runs of one session without a lock: entries are computed
    from the key alone and never mutated, a dict's single get or set is atomic, so a race at
    worst computes one entry twice. Bounded: ``remember`` clears it when full (a model whose
    shapes change on every run keeps recomputing, as it would without the memo).
    """

    __slots__ = ()
    limit = 64

    def remember(self, key: Any, value: Any) -> Any:
        """Store ``value`` under ``key`` and return it."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


def node_memo(attributes: dict[str, Any]) -> NodeMemo:
    """The prepare function of kernels whose per-node state is a memo keyed by input shapes."""
    return NodeMemo()


def graph_kernel(op_type: str, versions: Sequence[int], domain: str = ""
                 ) -> Callable[[Callable[..., Kernel]], Callable[..., Kernel]]:
    """Register a factory ``factory(node, graph, resolve) -> kernel`` for an operator whose
    computation is defined by other nodes of its graph (``Gradient``). ``resolve(node)`` gives the
    kernel of another node. The registry lookup prefers these factories."""
    dom = normalize_domain(domain)

    def register(factory: Callable[..., Kernel]) -> Callable[..., Kernel]:
        for v in versions:
            key = (dom, op_type, int(v))
            if key in _REGISTRY or key in _GRAPH_KERNELS:
                raise ValueError(f"kernel for {dom or 'ai.onnx'}::{op_type} version {v} "
                                 f"registered twice")
            _GRAPH_KERNELS[key] = factory
        return factory

    return register


def get_graph_kernel(domain: str, op_type: str, since_version: int
                     ) -> Callable[..., Kernel] | None:
    """The graph-kernel factory registered for exactly this schema version, or ``None``."""
    _ensure_loaded()
    return _GRAPH_KERNELS.get((normalize_domain(domain), op_type, int(since_version)))


def graph_kernel_ops() -> set[tuple[str, str]]:
    """(domain, op_type) of every operator whose kernel reads its graph by name (Gradient):
    graph rewrites must leave graphs holding such a node alone."""
    _ensure_loaded()
    return {(d, o) for (d, o, _v) in _GRAPH_KERNELS}


def get_kernel(domain: str, op_type: str, since_version: int) -> Kernel | None:
    """The kernel registered for exactly this schema version, or ``None``; a visible custom
    operator's (:mod:`pyonnx.defs.custom`) when no built-in one exists."""
    _ensure_loaded()
    fn = _REGISTRY.get((normalize_domain(domain), op_type, int(since_version)))
    if fn is None:
        op = exact_custom_op(domain, op_type, int(since_version))
        if op is not None:
            from pyonnx.ops.custom import custom_kernel  # it imports this module

            return custom_kernel(op)
    return fn


def registered_versions(domain: str, op_type: str) -> tuple[int, ...]:
    """The since_versions that have a kernel, ascending."""
    _ensure_loaded()
    dom = normalize_domain(domain)
    return tuple(sorted(v for (d, o, v) in (*_REGISTRY, *_GRAPH_KERNELS)
                        if d == dom and o == op_type))


def registered_ops() -> list[tuple[str, str, int]]:
    """Every registered (domain, op_type, since_version), sorted."""
    _ensure_loaded()
    return sorted(_REGISTRY)


# registered kernel -> its parameters: inspect.signature is slow and every binding asks
_PARAMS: dict[Kernel, Any] = {}


def kernel_parameters(fn: Kernel) -> Any:
    """``inspect.signature(fn).parameters``, None when not introspectable. Cached for plain
    module-level functions (the registered kernels), never for closures made per node or per
    custom operator, which the cache would keep alive with everything they hold."""
    params = _PARAMS.get(fn)
    if params is not None:
        return params
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if inspect.isfunction(fn) and fn.__closure__ is None:
        _PARAMS[fn] = params
    return params


def wants_context(fn: Kernel) -> bool:
    """Whether the kernel declares the keyword-only ``ctx`` parameter."""
    params = kernel_parameters(fn)
    p = params.get("ctx") if params is not None else None
    return p is not None and p.kind == inspect.Parameter.KEYWORD_ONLY


class Subgraph(Protocol):
    """A graph attribute (If branch, Loop/Scan body) bound to the outer scope of its node.

    Calling it runs the body once on the given inputs (in the order of the body's graph
    inputs) and returns its outputs in order. A subgraph may also have ``output_types`` (the
    declared :class:`~pyonnx.ir.Type` of each body output, None where undeclared): Loop and Scan
    read it to give a scan output of zero iterations its element type and shape.
    """

    input_names: list[str]
    output_names: list[str]

    def __call__(self, *inputs: Any) -> list[Any]: ...


@dataclasses.dataclass
class KernelContext:
    """What a kernel may need to know about its node beyond inputs and attributes.

    ``num_outputs`` is how many outputs the node declares (``outputs_used[i]`` is False where
    the output name is empty, so the kernel may skip computing it); ``opset`` is the version of
    the node's domain that the model imports; ``rng`` is the session's generator for random ops
    without a seed; ``max_tensor_bytes`` bounds what one computed tensor may take (checked before
    allocating, see :func:`pyonnx.ops._common.check_alloc`); ``max_iterations`` bounds Loop and
    Scan iterations.
    """

    node_name: str = ""
    op_type: str = ""
    domain: str = ""
    opset: int = 0
    num_outputs: int = 1
    outputs_used: tuple[bool, ...] = (True,)
    rng: np.random.Generator = dataclasses.field(default_factory=np.random.default_rng)
    max_tensor_bytes: int = 1 << 40
    max_iterations: int = 1_000_000


_loaded = False


def _ensure_loaded() -> None:
    """Import every kernel module once so that their ``@kernel`` decorators have run."""
    global _loaded
    if not _loaded:
        _loaded = True
        from pyonnx import ops  # noqa: F401  (importing the package imports all kernel modules)

        ops.load_all()
