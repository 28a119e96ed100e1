"""Execution plans: a graph compiled once into a flat list of steps over numbered value slots.

Compilation resolves every node's schema version from the model's opset, gives the node to the
first of the session's providers (:mod:`pyonnx.backends`) that claims it, binds it there once
(:func:`pyonnx.ops.bind.bind` through the provider: the kernel for exactly that version, the
decoded attributes, the kernel's per-node prepared state), assigns each value a slot, inserts a
copy step wherever a value must move to another provider's device, and computes where each slot
is last used so it can be freed. ``run`` is then one short loop (``Plan._run``): gather inputs
from slots, call the kernel, store outputs, drop what is dead; a run that asks for checks,
profiling or byte accounting runs the same loop over its hook's wrapped kernels. A run without
a hook runs each run of consecutive steps that a provider executes as one function
(:meth:`pyonnx.backends.base.Provider.partition`, the torch provider's partitions) as one step.

Subgraphs (If/Loop/Scan bodies) compile to nested plans. Their reads of enclosing-scope values are
*captures*: when a control-flow kernel calls its body, the body's frame is seeded with the current
values of those outer slots. Calls to model-local functions compile the function body (with the
caller's attributes substituted) into a nested plan too, run as if it were a kernel.

*Semi-constant caching*: an initializer that is also a graph input may be overridden by a feed,
so the optimizer cannot fold the nodes that read it (the light CNNs of the onnx package build all
their weights with ConstantOfShape from such initializers). The plan computes those nodes'
outputs once, on the first run where no such input is fed, and reuses them in every later run
where none is fed; a run that feeds one executes every node as written. Only deterministic nodes
without subgraphs whose inputs are all (semi-)constant are cached, except the widening of a large
narrow weight (a quantized or float16 one, and so whatever is computed from it), which constant
folding does not fold either (:func:`pyonnx.optimizer.passes.constant_folding.widens_constant`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from pyonnx import defs
from pyonnx.backends import CPUProvider, HOST, Provider
from pyonnx.errors import (
    ExecutionError,
    PyOnnxError,
    ResourceLimitExceeded,
    UnsupportedOperatorError,
    ValidationError,
)
from pyonnx.ir import Attribute, AttributeType, Function, Graph, Node, Value
from pyonnx.ops._values import constant_array
from pyonnx.optimizer.passes.constant_folding import widens_constant
from pyonnx.ops.bind import (
    BoundNode,
    decode_attributes,
    opset_of,
    resolve_kernel,
    signature_problem,
)

__all__ = ["PlanConfig", "Plan", "compile_graph", "check_structure", "describe_value"]

_NONE_SLOT = 0  # slot 0 always holds None: absent optional inputs read it


@dataclasses.dataclass
class PlanConfig:
    """What compilation needs besides the graph: opsets, functions, limits, the RNG."""

    opsets: dict[str, int]
    functions: dict[tuple[str, str, str], Function]
    max_tensor_bytes: int = 16 * 2**30
    max_nesting_depth: int = 64
    max_loop_iterations: int = 1_000_000
    rng: np.random.Generator = dataclasses.field(default_factory=np.random.default_rng)
    # the session's providers in preference order, the CPU provider last (see _assign)
    providers: tuple[Provider, ...] = dataclasses.field(default_factory=lambda: (CPUProvider(),))
    depth: int = 0

    def nested(self, opsets: dict[str, int] | None = None) -> "PlanConfig":
        """The config of a subgraph one level deeper (or of a function body with its opsets)."""
        return dataclasses.replace(self, opsets=opsets if opsets is not None else self.opsets,
                                   depth=self.depth + 1)


def _nbytes(v: Any) -> int:
    """Bytes a value holds (a sequence: its tensors'); views count as copies (an upper bound)."""
    if isinstance(v, np.ndarray):
        return v.nbytes
    if isinstance(v, list):
        return sum(_nbytes(x) for x in v)
    return 0


def describe_value(v: Any) -> str:
    """A short type-and-shape description for error messages: ``float32[1,3,224,224]``."""
    if v is None:
        return "None"
    if isinstance(v, np.ndarray):
        return f"{v.dtype}[{','.join(str(d) for d in v.shape)}]"
    if isinstance(v, list):
        return f"sequence of {len(v)}"
    if isinstance(v, dict):
        return f"map of {len(v)}"
    return type(v).__name__


class _Step:
    """One node of a plan: its kernel, the slots it reads and writes, the slots dead after it,
    the bodies it runs (bound to the caller's frame at call time) and the provider that runs it.
    A *copy step* moves one value between two providers' devices (its node is a stand-in named
    as onnxruntime names its copies, ``MemcpyFromHost`` / ``MemcpyToHost``).

    ``kwargs`` are the kernel's keyword arguments (the bound node's); ``special`` says the step
    needs per-run kwargs (bodies bound to the frame, the run state for a function call).
    ``call`` packs what the run loop reads per node into one plain tuple, (fn, ins, kwargs,
    outs, frees, special, arity, step), which the loop's ``for`` takes apart in one operation:
    reading seven attributes per node instead costs ~9% more per node on a chain of Identity
    nodes (measured).
    """

    __slots__ = ("node", "fn", "ins", "outs", "kwargs", "frees", "graph_attrs", "graphs_attrs",
                 "bound", "special", "call", "provider", "is_copy", "members")

    def __init__(self, node: Node, fn: Callable[..., Any], ins: tuple[int, ...],
                 outs: tuple[int, ...], kwargs: dict[str, Any],
                 graph_attrs: tuple[tuple[str, "Plan"], ...] = (),
                 graphs_attrs: tuple[tuple[str, tuple["Plan", ...]], ...] = (),
                 bound: BoundNode | None = None, provider: Provider | None = None,
                 is_copy: bool = False) -> None:
        self.node = node
        # the provider that runs the step (a copy step: the one on the far side of the copy)
        self.provider = provider
        self.is_copy = is_copy
        self.fn = fn
        self.ins = ins
        self.outs = outs
        self.kwargs = kwargs
        self.graph_attrs = graph_attrs
        self.graphs_attrs = graphs_attrs
        self.bound = bound  # None for a call of a model-local function (a nested plan)
        self.special = bool(graph_attrs or graphs_attrs or "_run_state" in kwargs)
        # a partition step (Plan._partitioned): the steps it executes as one function
        self.members: tuple[_Step, ...] = ()
        self.set_frees(())

    def set_frees(self, frees: tuple[int, ...]) -> None:
        """The slots dead after this step (Plan._compute_frees)."""
        self.frees = frees
        self.call = (self.fn, self.ins, self.kwargs, self.outs, frees, self.special,
                     len(self.ins), self)


class _BoundSubgraph:
    """A body plan bound to its caller's frame: what a control-flow kernel calls (``Subgraph``)."""

    __slots__ = ("plan", "frame", "run_state")

    def __init__(self, plan: "Plan", frame: list[Any], run_state: "_RunState") -> None:
        self.plan = plan
        self.frame = frame
        self.run_state = run_state

    @property
    def input_names(self) -> list[str]:
        return self.plan.input_names

    @property
    def output_names(self) -> list[str]:
        return self.plan.output_names

    @property
    def output_types(self) -> list[Any]:
        """The body's declared output types (what a Loop or Scan of zero iterations returns)."""
        return [v.type for v in self.plan.graph.outputs]

    def __call__(self, *inputs: Any) -> list[Any]:
        # one budget of body executions per run, whatever the nesting: a Loop inside a Loop
        # is bounded by the limit, not by its square
        rs = self.run_state
        if rs.lock is None:
            rs.body_calls += 1
        else:  # an ORT_PARALLEL run: bodies may run on several threads at once
            with rs.lock:
                rs.body_calls += 1
        if rs.body_calls > self.plan.config.max_loop_iterations:
            raise ResourceLimitExceeded(
                f"the run executed subgraph bodies (Loop/Scan iterations, If branches) more than "
                f"{self.plan.config.max_loop_iterations} times (SessionOptions "
                f"max_loop_iterations); graph {self.plan.graph.name!r} was next")
        return self.plan.execute(list(inputs), rs, self.frame)


class _RunState:
    """What one run carries between nodes, and the run loop's hook.

    The hook wraps each kernel call with the per-node work that only some runs ask for: the
    ``RunOptions.terminate`` flag and the deadline (checked before the node), profiling and the
    ``max_run_bytes`` accounting (after it). ``has_hook`` is False when the run asks for none of
    them, and the run loop then calls the kernels directly. The state also counts the
    subgraph bodies the run executed (bounded by max_loop_iterations).

    ``lock`` is None for a run on one thread; an ``ORT_PARALLEL`` run
    (:mod:`pyonnx.runtime.parallel`) sets one, and the counters shared by its threads
    (``body_calls``, ``live_bytes``) are then updated under it.
    """

    __slots__ = ("run_options", "deadline", "profile", "body_calls", "max_run_bytes",
                 "live_bytes", "has_hook", "lock")

    def __init__(self, run_options: Any = None, deadline: float = 0.0,
                 profile: list[tuple[Any, ...]] | None = None, max_run_bytes: int = 0) -> None:
        self.run_options = run_options
        self.deadline = deadline
        self.profile = profile
        self.body_calls = 0
        # bytes of the computed tensors the run holds (all frames), when max_run_bytes is set
        self.max_run_bytes = max_run_bytes
        self.live_bytes = 0
        self.has_hook = bool(profile is not None or run_options is not None or deadline
                           or max_run_bytes)
        self.lock: threading.Lock | None = None

    def check(self, node: Node) -> None:
        if self.run_options is not None and getattr(self.run_options, "terminate", False):
            raise ExecutionError(f"run terminated by RunOptions.terminate before {node.describe()}")
        if self.deadline and time.monotonic() > self.deadline:
            raise ResourceLimitExceeded(
                f"run exceeded its deadline (SessionOptions run_timeout_s) before {node.describe()}")

    def hooked(self, calls: list[tuple[Any, ...]], vals: list[Any],
               count: bool = True) -> list[tuple[Any, ...]]:
        """The steps' call tuples with each kernel wrapped in this run's hook (for the frame
        ``vals``): the loop then runs them like any other, and a run that asks for no check
        pays nothing per node. ``count=False`` leaves the byte accounting to the caller (the
        parallel executor, whose frees follow completion order, not the steps' ``frees``)."""
        # the slots these steps compute: the only ones the byte accounting counted (inputs,
        # initializers and cached semi-constants are freed too, but were never counted)
        count = count and bool(self.max_run_bytes)
        computed = {s for c in calls for s in c[3]} if count else set()
        # (fn, ins, kwargs, outs, frees, special, arity, step): fn is first, the step last
        return [(self._wrap(c[0], c[-1], vals, computed, count),) + c[1:] for c in calls]

    def _wrap(self, fn: Callable[..., Any], st: "_Step", vals: list[Any],
              computed: set[int], count: bool) -> Callable[..., Any]:
        def hooked(*args: Any, **kwargs: Any) -> Any:
            self.before(st)
            t0 = time.perf_counter_ns() if self.profile is not None else 0
            res = fn(*args, **kwargs)
            if self.profile is not None:
                # (node, start, duration, input (dtype, shape) or description, provider, the
                # thread's OS id): formatted when the trace is written, so that profiling adds
                # little to the run it measures (list.append is atomic: parallel runs share it)
                self.profile.append((st.node, t0, time.perf_counter_ns() - t0,
                                     [(a.dtype, a.shape) if isinstance(a, np.ndarray)
                                      else describe_value(a) for a in args],
                                     st.provider.name if st.provider is not None
                                     else CPUProvider.name, threading.get_native_id()))
            if count:
                self._count(st, res, vals, computed)
            return res

        return hooked

    def before(self, st: "_Step") -> None:
        """Before a node runs: stop the run if asked to (an error that names the node)."""
        try:
            self.check(st.node)
        except ExecutionError as e:
            e._pyonnx_node_named = True  # type: ignore[attr-defined]
            raise

    def _count(self, st: "_Step", res: Any, vals: list[Any], computed: set[int]) -> None:
        """Account the node's outputs and the values dead after it (``vals`` still holds the
        values before the node); over the limit is an error naming the node."""
        outs = st.outs
        freed = 0
        for s in st.frees:
            if s not in computed:
                continue
            # an output nobody reads dies at once: it is in res, not yet in vals
            v = res[outs.index(s)] if s in outs else vals[s]
            if v is not None:
                freed += _nbytes(v)
        self.account(st, sum(_nbytes(r) for r in res[:len(outs)]), freed)

    def account(self, st: "_Step", made: int, freed: int) -> None:
        """Count ``made`` bytes of outputs of ``st`` (an error naming the node when the run then
        holds more than max_run_bytes), then release ``freed`` bytes of values dead after it."""
        if self.lock is not None:
            with self.lock:
                self._account(st, made, freed)
        else:
            self._account(st, made, freed)

    def _account(self, st: "_Step", made: int, freed: int) -> None:
        self.live_bytes += made
        if self.live_bytes > self.max_run_bytes:
            raise ResourceLimitExceeded(
                f"{st.node.describe()}: the run holds {self.live_bytes} bytes of tensors after "
                f"this node, above the limit of {self.max_run_bytes} bytes "
                f"(SessionOptions max_run_bytes)")
        self.live_bytes -= freed

    def release(self, nbytes: int) -> None:
        """Release ``nbytes`` of counted values (what a frame still holds when it returns)."""
        if self.lock is not None:
            with self.lock:
                self.live_bytes -= nbytes
        else:
            self.live_bytes -= nbytes


class Plan:
    """A compiled graph. ``execute(inputs, state, outer_frame)`` returns the graph outputs.

    ``input_names``/``output_names`` are the graph's; ``captures`` maps outer-frame slots to this
    plan's slots (filled at the start of every execution).
    """

    def __init__(self, graph: Graph, config: PlanConfig, parent: "Plan | None" = None,
                 attr_env: dict[str, Attribute] | None = None) -> None:
        if config.depth > config.max_nesting_depth:
            raise ResourceLimitExceeded(
                f"graph {graph.name!r} is nested {config.depth} levels deep, above the limit of "
                f"{config.max_nesting_depth} (SessionOptions max_nesting_depth)")
        self.graph = graph
        self.config = config
        self.input_names = [v.name for v in graph.inputs]
        self.output_names = [v.name for v in graph.outputs]
        self._slot_of: dict[int, int] = {}  # id(Value) -> slot
        self._slot_names: list[str] = [""]
        self.captures: list[tuple[int, int]] = []  # (outer slot, own slot)
        self._parent = parent
        self._attr_env = attr_env
        self.constants: dict[int, Any] = {}
        self.steps: list[_Step] = []
        self._host = config.providers[-1]  # the CPU provider: host memory
        self._device: dict[int, str] = {}  # slot -> device of its value, when not the host
        self._copies: dict[tuple[int, str], int] = {}  # (slot, device) -> slot of its copy
        # ORT_PARALLEL: what runs this plan's steps instead of the sequential loop (the
        # session sets a pyonnx.runtime.parallel.ParallelExecutor on its main plan; nested
        # plans, subgraph and function bodies, always run sequentially)
        self.parallel: Any = None
        self._compile()
        self._plan_semi_constants()

    # ----------------------------------------------------------------- compilation

    def _slot(self, v: Value) -> int:
        s = self._slot_of.get(id(v))
        if s is None:
            s = len(self._slot_names)
            self._slot_of[id(v)] = s
            self._slot_names.append(v.name)
        return s

    def _compile(self) -> None:
        g = self.graph
        self.input_slots = [self._slot(v) for v in g.inputs]
        init_values: dict[int, Value] = {}
        for v in list(g.initializers.values()) + list(g.sparse_initializers.values()):
            s = self._slot(v)
            init_values[s] = v
            self.constants[s] = constant_array(v, self.config.max_tensor_bytes)
        defined = {id(v) for v in g.inputs} | {id(v) for v in init_values.values()}
        # SSA: a name is defined once in a graph (an initializer may back an input of its name)
        names = {v.name for v in g.inputs} | set(g.initializers) | set(g.sparse_initializers)
        for node in g.nodes:
            ins = []
            for v in node.inputs:
                if v is None:
                    ins.append(_NONE_SLOT)
                    continue
                if id(v) not in defined:
                    produced_here = v.producer is not None and v.producer.graph is g
                    if produced_here:
                        # reading a value before its producer ran would read nothing
                        raise ValidationError(
                            f"{node.describe()} reads {v.name!r} before {v.producer.describe()} "
                            f"computes it: the nodes of graph {g.name!r} are not in "
                            f"topological order or form a cycle")
                    if id(v) not in self._slot_of:
                        ins.append(self._capture(v, node))
                        continue
                ins.append(self._slot(v))
            outs = tuple(self._slot(v) for v in node.outputs)
            for v in node.outputs:
                defined.add(id(v))
                if v.name:
                    if v.name in names:
                        raise ValidationError(
                            f"{node.describe()} defines {v.name!r}, which graph {g.name!r} "
                            f"already defines (each name is assigned once: SSA)")
                    names.add(v.name)
            step = self._make_step(node, tuple(ins), outs)
            step.ins = tuple(self._on_device(slot, step.provider) for slot in step.ins)
            self._device.update((slot, step.provider.device) for slot in outs)
            self.steps.append(step)
        self.output_slots = []
        for v in g.outputs:
            if id(v) in self._slot_of or id(v) in defined:
                # graph outputs go back to the host
                self.output_slots.append(self._on_device(self._slot(v), self._host))
            else:
                self.output_slots.append(self._capture(v, None))
        self._frame_size = len(self._slot_names)
        self._compute_frees()
        self._template = [None] * self._frame_size
        for s, arr in self.constants.items():
            if isinstance(arr, np.ndarray) and arr.flags.writeable:
                # kernels see constants read-only: none may update one in place (a kernel
                # owns only the arrays it allocated), and a kernel may keep what it derives
                # from a constant across runs (packed weights); a view, so the arrays of a
                # model the caller holds keep their own flags
                arr = arr.view()
                arr.flags.writeable = False
            self._template[s] = arr

    def _on_device(self, slot: int, provider: Provider) -> int:
        """The slot holding ``slot``'s value on ``provider``'s device: ``slot`` itself when it is
        there already, else the slot of a copy (one per value and device, made by a copy step
        appended here, just before its first reader)."""
        src = self._device.get(slot, HOST)
        dst = provider.device
        if slot == _NONE_SLOT or src == dst:
            return slot
        copy = self._copies.get((slot, dst))
        if copy is not None:
            return copy
        source = self._host if src == HOST else next(
            st.provider for st in reversed(self.steps) if slot in st.outs)
        name = self._slot_names[slot]
        copy = len(self._slot_names)
        self._slot_names.append(f"{name}@{dst}")
        self._copies[(slot, dst)] = copy
        self._device[copy] = dst
        if slot in self.constants and slot not in self.input_slots:
            # an initializer no feed can override moves to the device once, here
            self.constants[copy] = provider.from_host(self.constants[slot])
            return copy
        if dst == HOST:
            op, fn = "MemcpyToHost", _copy_fn(source.to_host)
        elif src == HOST:
            op, fn = "MemcpyFromHost", _copy_fn(provider.from_host)
        else:  # device to device, through the host
            op, fn = "MemcpyFromHost", _copy_fn(lambda v: provider.from_host(source.to_host(v)))
        stand_in = Node(op, name=f"{op}_{name}_{dst}")
        self.steps.append(_Step(stand_in, fn, (slot,), (copy,), {},
                                provider=provider if dst != HOST else source, is_copy=True))
        return copy

    def _assign(self, node: Node, domain: str, since_version: int,
                reference: Callable[..., Any]) -> tuple[Provider, Callable[..., Any]]:
        """The provider that runs ``node`` and its kernel there: the first provider of the
        session's list that claims the node. Only the host may run a node whose outputs a
        subgraph reads (bodies see host values), and the CPU provider claims every node."""
        candidates = self.config.providers
        if len(candidates) > 1 and any(u.graph is not node.graph
                                       for v in node.outputs for u, _ in v.uses):
            candidates = tuple(p for p in candidates if p.device == HOST)
        for provider in candidates:
            fn = provider.kernel_for(node, domain, since_version, reference)
            if fn is not None:
                return provider, fn
        return self._host, reference

    def _provide(self, v: Value) -> int | None:
        """This plan's slot for ``v``, capturing it from an enclosing plan if needed (for a
        nested plan that reads a value of a graph further out); None if no scope defines it."""
        s = self._slot_of.get(id(v))
        if s is not None:
            return s
        if self._parent is None:
            return None
        outer = self._parent._provide(v)
        if outer is None:
            return None
        s = self._slot(v)
        self.captures.append((outer, s))
        return s

    def _capture(self, v: Value, node: Node | None) -> int:
        """A value of an enclosing graph: copy it into our frame at every execution."""
        outer = self._parent._provide(v) if self._parent is not None else None
        if outer is None:
            where = node.describe() if node is not None else f"output of graph {self.graph.name!r}"
            raise ValidationError(
                f"{where} reads {v.name!r}, which is not defined in graph {self.graph.name!r} "
                f"or any enclosing graph (no input, initializer or node output of that name)")
        s = self._slot(v)
        self.captures.append((outer, s))
        return s

    def _resolve_kernel(self, node: Node) -> Callable[..., Any] | Plan:
        """The kernel of ``node`` (through :func:`pyonnx.ops.bind.resolve_kernel`), or the
        compiled body of the model-local function it calls."""
        return self._resolve(node)[0]

    def _resolve(self, node: Node) -> tuple[Callable[..., Any] | Plan, int]:
        fkey = (node.domain, node.op_type, node.overload)
        if fkey in self.config.functions:
            return self._compile_function(node, self.config.functions[fkey]), 0
        return resolve_kernel(node, self.config.opsets, self.graph, self._resolve_kernel)

    def _compile_function(self, node: Node, fn: Function) -> "Plan":
        env: dict[str, Attribute] = dict(fn.attribute_defaults)
        for a in node.attributes.values():
            env[a.name] = self._attr(a)
        opsets = dict(self.config.opsets)
        opsets.update({defs.normalize_domain(d): v for d, v in fn.opset_imports.items()})
        return Plan(fn.graph, self.config.nested(opsets), attr_env=env)

    def _attr(self, a: Attribute) -> Attribute:
        """Resolve a reference to a calling function's attribute (``ref_attr_name``)."""
        if not a.ref_attr_name:
            return a
        if self._attr_env is None or a.ref_attr_name not in self._attr_env:
            return Attribute(a.name, AttributeType.UNDEFINED, None)
        ref = self._attr_env[a.ref_attr_name]
        return Attribute(a.name, ref.type, ref.value)

    def _make_step(self, node: Node, ins: tuple[int, ...], outs: tuple[int, ...]) -> _Step:
        target, since_version = self._resolve(node)
        attrs, graph_valued = decode_attributes(
            [self._attr(a) for a in node.attributes.values()], node.describe(),
            self.config.max_tensor_bytes)
        graph_attrs: list[tuple[str, Plan]] = []
        graphs_attrs: list[tuple[str, tuple[Plan, ...]]] = []
        for a in graph_valued:
            if a.type == AttributeType.GRAPH:
                graph_attrs.append((a.name, Plan(a.value, self.config.nested(), self,
                                                 self._attr_env)))
            else:
                graphs_attrs.append((a.name, tuple(
                    Plan(sg, self.config.nested(), self, self._attr_env) for sg in a.value)))
        if isinstance(target, Plan):
            fn: Callable[..., Any] = _function_kernel(target)
            return _Step(node, fn, ins, outs, {"_run_state": None}, tuple(graph_attrs),
                         tuple(graphs_attrs), provider=self._host)
        domain = defs.normalize_domain(node.domain)
        if graph_valued:
            provider, kernel_fn = self._host, self._host.kernel_for(node, domain, since_version,
                                                                    target) or target
        else:
            provider, kernel_fn = self._assign(node, domain, since_version, target)
        problem = signature_problem(node, kernel_fn, len(ins),
                                    [*attrs, *(a.name for a in graph_valued)])
        if problem is not None:
            raise ValidationError(problem)
        bound = provider.bind(node, kernel_fn, since_version,
                              opset_of(domain, self.config.opsets) or 0, attrs,
                              rng=self.config.rng, max_tensor_bytes=self.config.max_tensor_bytes,
                              max_iterations=self.config.max_loop_iterations)
        return _Step(node, kernel_fn, ins, outs, bound.kwargs, tuple(graph_attrs),
                     tuple(graphs_attrs), bound, provider)

    def _compute_frees(self) -> None:
        keep = set(self.output_slots) | set(self.constants) | {_NONE_SLOT}
        last: dict[int, int] = {}
        for i, st in enumerate(self.steps):
            for s in st.ins:
                last[s] = i
            for s in st.outs:
                last.setdefault(s, i)
                last[s] = max(last[s], i)
            for _, p in st.graph_attrs:
                for outer, _own in p.captures:
                    last[outer] = i
            for _, ps in st.graphs_attrs:
                for p in ps:
                    for outer, _own in p.captures:
                        last[outer] = i
        frees: dict[int, list[int]] = {}
        for s, i in last.items():
            if s not in keep:
                frees.setdefault(i, []).append(s)
        for i, st in enumerate(self.steps):
            st.set_frees(tuple(frees.get(i, ())))
        self._calls = [st.call for st in self.steps]
        inputs = set(self.input_slots)
        self._plain_calls = self._partitioned(
            self.steps, {s: v for s, v in self.constants.items() if s not in inputs})

    def _partitioned(self, steps: list[_Step], constants: dict[int, Any]
                     ) -> list[tuple[Any, ...]]:
        """The call tuples of ``steps`` for a run without a hook: each run of two or more
        consecutive steps that one provider offers to execute as one function
        (:meth:`Provider.partition`; its nodes and the copies to and from its device) becomes
        one *partition step*. That step reads the values its steps read from outside it, stores
        only the values read after it (or kept: outputs, constants) and frees what its steps
        would free of the values it reads. ``constants``: the slots that hold the same value in
        every run that executes these calls. Runs with a hook keep one step per node."""
        calls: list[tuple[Any, ...]] = []
        group: list[_Step] = []

        def flush() -> None:
            fused = self._partition(group, constants) if len(group) > 1 else None
            calls.extend([fused.call] if fused is not None else [g.call for g in group])
            group.clear()

        for st in steps:
            p = st.provider
            if st.special or p is None or type(p).partition is Provider.partition or \
                    (st.bound is None and not st.is_copy):
                flush()
                calls.append(st.call)
                continue
            if group and group[0].provider is not p:
                flush()
            group.append(st)
        flush()
        return calls

    def _partition(self, group: list[_Step], constants: dict[int, Any]) -> _Step | None:
        """One step for ``group`` (consecutive steps of one provider), or None when its
        provider declines (see :meth:`_partitioned`)."""
        if all(st.is_copy for st in group):
            return None
        produced: set[int] = set()
        ins: dict[int, None] = {}
        for st in group:
            ins.update((s, None) for s in st.ins if s not in produced and s != _NONE_SLOT)
            produced.update(st.outs)
        freed = {s for st in group for s in st.frees}
        outs = tuple(s for st in group for s in st.outs if s not in freed)
        provider = group[0].provider
        assert provider is not None
        fn = provider.partition(tuple(group), tuple(ins), outs,
                                {s: constants[s] for s in ins if s in constants})
        if fn is None:
            return None
        step = _Step(Node("Partition", name=f"{provider.name}_partition_{group[0].node.name}",
                          domain="pyonnx"), fn, tuple(ins), outs, {}, provider=provider)
        step.members = tuple(group)
        step.set_frees(tuple(s for st in group for s in st.frees if s not in produced))
        return step

    def _plan_semi_constants(self) -> None:
        """Find the steps whose outputs depend only on initializers (overridable or not) and
        prepare the cached variant of the plan (see the module docstring)."""
        # inputs with a default (an initializer of the same name): the cache is valid while
        # every one of them holds its default, i.e. while the caller feeds none of them
        self._roots = [(i, s) for i, s in enumerate(self.input_slots)
                       if self.constants.get(s) is not None]
        semi = set(self.constants) | {_NONE_SLOT}
        cacheable: list[int] = []
        for i, st in enumerate(self.steps):
            if st.special:
                continue
            if not all(s in semi for s in st.ins) or not (st.is_copy or
                                                          _deterministic(st.node, self.config)):
                continue
            if widens_constant(st.node, [self.constants.get(s) for s in st.ins]):
                # a wide copy of narrow weights is not kept for the session's lifetime
                # (constant folding's rule): it is widened per run, as its reader needs it
                continue
            cacheable.append(i)
            semi.update(st.outs)
        self._cacheable = cacheable
        self._cache_state = 0 if cacheable else -1  # 0 not filled, 1 filled, -1 never
        self._cached_template: list[Any] | None = None
        self._cached_steps: list[_Step] = []
        self._cached_calls: list[tuple[Any, ...]] = []
        self._cached_plain_calls: list[tuple[Any, ...]] = []

    def _fill_cache(self, inputs: Sequence[Any], state: _RunState,
                    outer_frame: list[Any] | None) -> None:
        """Run the cacheable steps once (with every overridable input at its default) and keep
        the outputs that the remaining steps, the graph outputs or a subgraph read."""
        vals = self._template.copy()
        for s, v in zip(self.input_slots, inputs):
            vals[s] = v
        steps = [self.steps[i] for i in self._cacheable]
        skip = set(self._cacheable)
        rest = [st for i, st in enumerate(self.steps) if i not in skip]
        needed: set[int] = set(self.output_slots)
        for st in rest:
            needed.update(st.ins)
            for _, p in st.graph_attrs:
                needed.update(o for o, _ in p.captures)
            for _, ps in st.graphs_attrs:
                for p in ps:
                    needed.update(o for o, _ in p.captures)
        # The steps' frees are the full plan's: a value whose last reader is a cacheable step
        # but which an earlier uncached step also reads (a weight read by a Gather near the
        # start and by a cached Transpose near the end) would be dropped by that cacheable
        # step before it is kept below. This run keeps what the cached plan needs.
        calls = [st.call[:4] + (tuple(s for s in st.frees if s not in needed),) + st.call[5:]
                 for st in steps]
        try:
            # no hook: a run that profiles or has limits still fills the cache unobserved
            self._run(vals, _RunState(), calls)
        except Exception:
            # the plain path runs these nodes on every run and reports the failure as usual
            self._cache_state = -1
            return
        tmpl = self._template.copy()
        for st in steps:
            for s in st.outs:
                if s in needed:
                    v = vals[s]
                    if isinstance(v, np.ndarray) and v.flags.writeable:
                        v.flags.writeable = False  # shared by every later run: never mutated
                    tmpl[s] = v
        self._cached_template = tmpl
        self._cached_steps = rest
        self._cached_calls = [st.call for st in rest]
        # in a cached run every overridable input holds its default: all of tmpl is constant
        self._cached_plain_calls = self._partitioned(
            rest, {s: v for s, v in enumerate(tmpl) if v is not None})
        self._cache_state = 1

    # ----------------------------------------------------------------- execution

    def execute(self, inputs: Sequence[Any], state: _RunState,
                outer_frame: list[Any] | None = None) -> list[Any]:
        """Run the plan on ``inputs`` (in graph-input order) and return the graph outputs."""
        cached = False
        if self._cache_state >= 0:
            tmpl = self._template
            cached = all(i < len(inputs) and inputs[i] is tmpl[s] for i, s in self._roots)
            if cached and self._cache_state == 0:
                self._fill_cache(inputs, state, outer_frame)
                cached = self._cache_state == 1
        if cached:
            vals = self._cached_template.copy()  # type: ignore[union-attr]
        else:
            vals = self._template.copy()
        for s, v in zip(self.input_slots, inputs):
            vals[s] = v
        if self.captures:
            assert outer_frame is not None
            for outer, own in self.captures:
                vals[own] = outer_frame[outer]
        steps = self._cached_steps if cached else self.steps
        if self.parallel is not None:  # ORT_PARALLEL: node by node, as a dependency graph
            self.parallel.run(self, vals, state, self._cached_calls if cached else self._calls,
                              cached)
        elif state.has_hook:  # one step per node, so that the hook observes each
            self._run(vals, state, self._cached_calls if cached else self._calls)
        else:
            self._run(vals, state, self._cached_plain_calls if cached else self._plain_calls)
        if state.max_run_bytes:
            # what this frame still holds goes back to the caller, which counts what it keeps
            state.release(sum(_nbytes(vals[s]) for st in steps for s in st.outs
                              if vals[s] is not None))
        return [vals[s] for s in self.output_slots]

    def _run(self, vals: list[Any], state: _RunState, calls: list[tuple[Any, ...]]) -> None:
        """The run loop: per step, gather the inputs from their slots, call the kernel, store
        the outputs, drop the slots that are dead. ``calls`` are the steps' ``call`` tuples.
        A run that asks for per-node checks (terminate, deadline), profiling or byte
        accounting runs the same loop over its hook's wrapped kernels (``_RunState.hooked``)."""
        if state.has_hook:
            calls = state.hooked(calls, vals)
        for fn, ins, kwargs, outs, frees, special, arity, st in calls:
            try:
                if special:
                    kwargs = self._bind(st, vals, state)
                # the common arities without building an argument list
                if arity == 1:
                    res = fn(vals[ins[0]], **kwargs)
                elif arity == 2:
                    res = fn(vals[ins[0]], vals[ins[1]], **kwargs)
                else:
                    res = fn(*[vals[i] for i in ins], **kwargs)
            except Exception as e:
                if st.members:
                    # a partition failed: its steps one by one name the node at fault (or,
                    # should they pass, leave their outputs and frees as the partition would)
                    self._run(vals, _RunState(), [m.call for m in st.members])
                    continue
                err = self._failure(st, [vals[i] for i in ins], e)
                if err is e:
                    raise
                raise err from e
            if len(res) == 1 and len(outs) == 1:
                vals[outs[0]] = res[0]
            else:
                if len(res) < len(outs):
                    raise self._short(st, res)
                for s, r in zip(outs, res):
                    vals[s] = r
            for s in frees:
                vals[s] = None

    @contextlib.contextmanager
    def stand_in_kernels(self) -> Iterator[Callable[[], int]]:
        """Measure what a run costs beyond its kernels. Within the block, runs of this plan
        without a hook (no profiling, limits or run options) call, in place of each step's
        kernel, a stand-in that returns what the kernel returned the first time the stand-in
        was called: the first run computes as usual and records, later runs do no kernel work,
        so their time is the run's dispatch (the caller's feed checks, this plan's run loop
        with its slot reads, stores and frees, a Python call per step, the outputs). Yields a
        function that returns the nodes the stand-ins have stood for so far (a partition step
        counts its nodes; a control-flow node's body does not run). For measurements only
        (``pyonnx bench``): later runs return the recorded arrays, shared between runs. Not for
        a plan that runs its steps as a dependency graph (``ExecutionMode.ORT_PARALLEL``), nor
        before the plan's first run, which may build its cached calls (semi-constant caching).
        """
        if self.parallel is not None:
            raise ValueError("stand_in_kernels: the plan runs in ExecutionMode.ORT_PARALLEL, "
                             "whose executor does not take stand-ins")
        if self._cache_state == 0:
            raise ValueError("stand_in_kernels: run the plan once first (its first run may "
                             "fill the semi-constant cache, which replaces the calls)")
        executed = [0]

        def stand_in(fn: Callable[..., Any], nodes: int) -> Callable[..., Any]:
            recorded: list[Any] = []

            def call(*args: Any, **kwargs: Any) -> Any:
                executed[0] += nodes
                if recorded:
                    return recorded[0]
                res = fn(*args, **kwargs)
                recorded.append(res)
                return res

            return call

        saved = self._plain_calls, self._cached_plain_calls
        self._plain_calls, self._cached_plain_calls = (
            [(stand_in(c[0], len(c[-1].members) or 1),) + c[1:] for c in calls]
            for calls in saved)
        try:
            yield lambda: executed[0]
        finally:
            self._plain_calls, self._cached_plain_calls = saved

    @staticmethod
    def _bind(st: _Step, vals: list[Any], state: _RunState) -> dict[str, Any]:
        """The step's kwargs with its bodies bound to this frame and the run state."""
        kwargs = dict(st.kwargs)
        for name, p in st.graph_attrs:
            kwargs[name] = _BoundSubgraph(p, vals, state)
        for name, ps in st.graphs_attrs:
            kwargs[name] = [_BoundSubgraph(p, vals, state) for p in ps]
        if "_run_state" in kwargs:
            kwargs["_run_state"] = state
        return kwargs

    @staticmethod
    def _short(st: _Step, res: Any) -> ExecutionError:
        return ExecutionError(
            f"{st.node.describe()}: kernel returned {len(res)} outputs, the node "
            f"declares {len(st.outs)}")

    @staticmethod
    def _failure(st: _Step, args: list[Any], e: Exception) -> Exception:
        """The error to raise for a kernel failure: one that names the node."""
        if isinstance(e, PyOnnxError):
            if isinstance(e, (ResourceLimitExceeded, UnsupportedOperatorError)):
                if st.node.describe() in str(e):
                    return e
                return type(e)(f"{st.node.describe()}: {e}")
            if isinstance(e, ExecutionError) and getattr(e, "_pyonnx_node_named", False):
                return e
            return _node_error(st.node, args, e)
        if isinstance(e, MemoryError):
            return ResourceLimitExceeded(
                f"{st.node.describe()} ran out of memory computing its outputs "
                f"(inputs {', '.join(describe_value(a) for a in args)})")
        if isinstance(e, RecursionError):
            return ResourceLimitExceeded(f"{st.node.describe()}: recursion too deep")
        return _node_error(st.node, args, e)  # a kernel bug or an input NumPy refuses


def check_structure(graph: Graph) -> None:
    """Refuse a graph (or any of its subgraphs) that breaks SSA or topological order.

    Sessions call this before optimizing: a pass may delete the very node that breaks a rule
    (a dead duplicate producer), and a model onnxruntime refuses must not run here with an
    answer that depends on which duplicate survived. Walks iteratively (nesting is bounded
    elsewhere, but a long chain of graphs costs no recursion here).
    """
    stack = [graph]
    while stack:
        g = stack.pop()
        names = {v.name for v in g.inputs} | set(g.initializers) | set(g.sparse_initializers)
        done: set[int] = {id(v) for v in g.inputs}
        done.update(id(v) for v in g.initializers.values())
        done.update(id(v) for v in g.sparse_initializers.values())
        for node in g.nodes:
            for v in node.inputs:
                if v is not None and id(v) not in done and v.producer is not None \
                        and v.producer.graph is g:
                    raise ValidationError(
                        f"{node.describe()} reads {v.name!r} before {v.producer.describe()} "
                        f"computes it: the nodes of graph {g.name!r} are not in topological "
                        f"order or form a cycle")
            for v in node.outputs:
                done.add(id(v))
                if not v.name:
                    continue
                if v.name in names:
                    raise ValidationError(
                        f"{node.describe()} defines {v.name!r}, which graph {g.name!r} already "
                        f"defines (each name is assigned once: SSA)")
                names.add(v.name)
            stack.extend(node.subgraphs())


def compile_graph(graph: Graph, config: PlanConfig) -> Plan:
    """Compile a main graph into a plan."""
    return Plan(graph, config)


def _node_error(node: Node, args: list[Any], cause: BaseException) -> ExecutionError:
    names = [v.name if v is not None else "" for v in node.inputs]
    desc = ", ".join(f"{n or '<absent>'}: {describe_value(a)}" for n, a in zip(names, args))
    err = ExecutionError(f"{node.describe()} failed: {cause} (inputs: {desc or 'none'})")
    err._pyonnx_node_named = True  # type: ignore[attr-defined]
    return err


def _deterministic(node: Node, config: PlanConfig) -> bool:
    """Whether a node's outputs are a function of its inputs and attributes alone (its schema
    says ``deterministic``; the optimizer's fused kernels all are)."""
    domain = defs.normalize_domain(node.domain)
    if domain == "pyonnx":
        return True
    opset = opset_of(domain, config.opsets)
    if opset is None:
        return False
    schema = defs.lookup(domain, node.op_type, opset)
    return schema is not None and schema.node_determinism == "deterministic"


def _copy_fn(move: Callable[[Any], Any]) -> Callable[[Any], tuple]:
    """A copy step's kernel: ``move`` one value (None, an absent optional, stays None)."""
    def copy(value: Any) -> tuple:
        return (None if value is None else move(value),)

    return copy


def _function_kernel(plan: Plan) -> Callable[..., tuple]:
    def call(*inputs: Any, _run_state: _RunState) -> tuple:
        return tuple(plan.execute(list(inputs), _run_state))

    return call
