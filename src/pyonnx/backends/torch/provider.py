"""The torch execution provider: the op table's functions as kernels, torch tensors as values.

Values on this provider live on ``self.torch_device``; :meth:`TorchProvider.from_host` and
:meth:`TorchProvider.to_host` move them (on the CPU both share memory with the NumPy array, no
copy). Its ``device`` name is ``torch:<torch device>`` (``torch:cpu``, ``torch:cuda:0``): torch
tensors are not the host's NumPy arrays even on the CPU, so the plan inserts the (free) copy
steps between this provider and the CPU provider.

*Partitions*: the plan hands each run of consecutive steps of this provider (its nodes and the
copies to and from its device) to :meth:`TorchProvider.partition`, which turns the nodes into
one ``torch.fx.GraphModule`` (:class:`pyonnx.backends.torch.fx.NodeEmitter`, the translation
:func:`pyonnx.convert.to_torch` uses) and runs it under one ``torch.inference_mode``: a plain
run pays the plan's per-node work once per partition, not once per node. With the option
``compile=1`` each partition's module goes through ``torch.compile`` (dynamic shapes after
the first change of shapes), which
fuses across the partition's operators; a partition that torch cannot compile runs eagerly,
with a warning. Runs that observe single nodes (profiling, ``RunOptions.terminate``, deadlines,
byte limits) run one node at a time, eagerly.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.fx

from pyonnx.backends.base import Provider
from pyonnx.backends.torch.dtypes import from_numpy, to_numpy
from pyonnx.backends.torch.fx import Names, NodeEmitter
from pyonnx.backends.torch.ops import TorchOp, claim
from pyonnx.ir import Node
from pyonnx.ops.registry import Kernel

__all__ = ["TorchProvider", "parse_device"]

_log = logging.getLogger("pyonnx")


def parse_device(options: dict[str, str]) -> torch.device:
    """The torch device that provider options name (``device``, ``device_id``); ValueError
    naming the device when it is not there."""
    spec = str(options.get("device", "cpu")).strip().lower()
    did = options.get("device_id")
    if spec.startswith("cuda") and ":" not in spec and did is not None:
        spec = f"cuda:{int(did)}"
    try:
        dev = torch.device(spec)
    except RuntimeError as e:
        raise ValueError(f"device {spec!r} is not a torch device ({e})") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise ValueError(f"device {spec!r}: the torch provider runs on 'cpu' or 'cuda[:N]'")
    if not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} is not there: torch {torch.__version__} sees no CUDA "
                         f"GPU")
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise ValueError(f"device 'cuda:{index}' is not there: torch sees "
                         f"{torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device("cuda", index)


def _use_thread_budget() -> None:
    """torch's intra-op threads follow the process's thread budget
    (:mod:`pyonnx.backends.cpu.threads`: the largest ``intra_op_num_threads`` a session asked
    for, the cores by default, as onnxruntime). torch's pool is process-wide, like the
    budget; it is set when a session binds its nodes, never per run."""
    from pyonnx.backends.cpu import threads

    n = threads.budget()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


class TorchProvider(Provider):
    """Runs the nodes the torch op table claims (:func:`pyonnx.backends.torch.ops.claim`) on
    one torch device; the plan gives the rest to the CPU provider. Consecutive claimed nodes
    run as partitions (see the module docstring); ``compile="1"`` compiles each partition
    with ``torch.compile``."""

    name = "TorchExecutionProvider"

    def __init__(self, options: dict[str, str] | None = None, *, name: str | None = None) -> None:
        super().__init__(options)
        if name is not None:
            self.name = name
        unknown = set(self.options) - {"device", "device_id", "compile"}
        if unknown:
            raise ValueError(f"unknown provider option(s) {sorted(unknown)} (the torch provider "
                             f"takes device, device_id, compile)")
        flag = str(self.options.get("compile", "0"))
        if flag not in ("0", "1", "True", "False", "true", "false"):
            raise ValueError(f"option compile must be '0' or '1', got {flag!r}")
        self.compile = flag in ("1", "True", "true")
        self.torch_device = parse_device(self.options)
        self.device = f"torch:{self.torch_device}"
        self._threads_set = False

    def kernel_for(self, node: Node, domain: str, since_version: int,
                   reference: Kernel) -> Kernel | None:
        entry, _ = claim(node, domain, since_version)
        if entry is None:
            return None
        if not self._threads_set and self.torch_device.type == "cpu":
            _use_thread_budget()  # the session has asked for its threads by now
            self._threads_set = True
        return self._kernel(entry, node)

    def _kernel(self, entry: TorchOp, node: Node) -> Kernel:
        """The node's kernel when it runs alone (a run that observes nodes, or a node with no
        claimed neighbour): the table function under ``torch.inference_mode``."""
        fn = entry.fn
        extra: dict[str, Any] = dict(entry.node_kwargs(node)) if entry.node_kwargs else {}
        if entry.needs_device:
            extra["device"] = self.torch_device

        def kernel(*inputs: Any, **attributes: Any) -> tuple:
            with torch.inference_mode():
                out = fn(*inputs, **attributes, **extra)
            return out if isinstance(out, tuple) else (out,)

        kernel.__name__ = f"torch_{node.op_type}"
        kernel.__qualname__ = kernel.__name__
        kernel.torch_op = entry  # type: ignore[attr-defined]  # what partition() emits
        return kernel

    def partition(self, steps: tuple[Any, ...], inputs: tuple[int, ...],
                  outputs: tuple[int, ...], constants: dict[int, Any]
                  ) -> Callable[..., tuple] | None:
        """One function for consecutive steps of this provider (see
        :meth:`pyonnx.backends.base.Provider.partition`): the nodes as one GraphModule, the
        copies from the host before it and to the host after it."""
        if sum(1 for st in steps if not st.is_copy) < 2 and not self.compile:
            return None  # one node: its own kernel is as fast
        try:
            return _Partition(self, steps, inputs, outputs, constants)
        except Exception as e:  # noqa: BLE001 - a partition is an optimization only
            _log.warning("torch provider: nodes %s run one by one (%s: %s)",
                         [st.node.name for st in steps if not st.is_copy][:3],
                         type(e).__name__, e)
            return None

    def from_host(self, value: Any) -> Any:
        return from_numpy(value, self.torch_device)

    def to_host(self, value: Any) -> Any:
        return to_numpy(value)


class _Partition:
    """Consecutive steps of a plan as one call: the copies of host values to the device (``pre``),
    the torch nodes as one GraphModule (eager, or compiled on its first call), then the copies
    of its results to the host (``post``). The constant tensors it reads (weights, cached
    semi-constants) are buffers of the module rather than arguments. Holds no per-run state, so
    sessions may run it from several threads at once."""

    def __init__(self, provider: TorchProvider, steps: tuple[Any, ...], inputs: tuple[int, ...],
                 outputs: tuple[int, ...], constants: dict[int, Any]) -> None:
        emitter = NodeEmitter(torch.nn.Module(), Names())
        made: dict[int, torch.fx.Node] = {}   # slot -> the fx node computing it
        placeholders: list[int] = []          # slots the module reads, in its argument order
        pre: list[tuple[int, int, Callable[..., tuple]]] = []
        post: list[tuple[int, int, Callable[..., tuple]]] = []
        computed: set[int] = set()            # slots the module's nodes compute
        for st in steps:
            if st.is_copy:
                src, dst = st.ins[0], st.outs[0]
                (post if src in computed else pre).append((src, dst, st.fn))
                continue
            entry = getattr(st.fn, "torch_op", None)
            if entry is None:
                raise ValueError(f"{st.node.describe()} has no torch op table entry")
            for v, s in zip(st.node.inputs, st.ins):
                if v is None:
                    continue
                if s not in made:
                    value = constants.get(s)
                    if isinstance(value, torch.Tensor):
                        made[s] = emitter._attr(v.name, value, False)
                    else:
                        made[s] = emitter.fx.placeholder(emitter.names(v.name, "input"))
                        placeholders.append(s)
                emitter.env[id(v)] = made[s]
            emitter.call(st.node, entry, st.kwargs)
            for v, s in zip(st.node.outputs, st.outs):
                if id(v) in emitter.env:
                    made[s] = emitter.env[id(v)]
                    computed.add(s)
        wanted = set(outputs) | {src for src, _, _ in post}
        results = [s for s in made if s in computed and s in wanted]
        emitter.fx.output(tuple(made[s] for s in results))
        gm = torch.fx.GraphModule(emitter.root, emitter.fx, class_name="TorchPartition")
        if provider.torch_device.type != "cpu":
            gm = gm.to(provider.torch_device)  # the attribute buffers
        self.module = gm
        self.inputs, self.outputs = inputs, outputs
        self.placeholders, self.results = tuple(placeholders), tuple(results)
        self.pre, self.post = tuple(pre), tuple(post)
        self.nodes = [st.node for st in steps if not st.is_copy]
        self._lock = threading.Lock()
        self.fn: Callable[..., Any] = gm
        if provider.compile:
            # dynamic=None: compiled for the first shapes seen, then once more with dynamic
            # shapes when they change. dynamic=True from the start compiled squeezenet for
            # over 15 minutes on a loaded 2-core machine (27 s this way) and ran the Silero
            # models 2x slower than eager. No inductor freezing (weights folded and
            # prepacked): with dynamic shapes it fails on convolutions in torch 2.13
            self.fn = torch.compile(gm)
        # the common shape: no copies, every result wanted (the arguments the module reads
        # are picked out of the plan's by position)
        self._direct = not pre and not post and self.results == outputs
        self._take = tuple(inputs.index(s) for s in placeholders) if self._direct else ()

    def __call__(self, *args: Any) -> tuple:
        if self._direct:
            with torch.inference_mode():
                return self._module([args[i] for i in self._take])
        vals = dict(zip(self.inputs, args))
        for src, dst, copy in self.pre:
            vals[dst] = copy(vals[src])[0]
        with torch.inference_mode():
            res = self._module([vals[s] for s in self.placeholders])
        vals.update(zip(self.results, res))
        for src, dst, copy in self.post:
            vals[dst] = copy(vals[src])[0]
        return tuple(vals[s] for s in self.outputs)

    def _module(self, args: Any) -> tuple:
        fn = self.fn
        if fn is self.module:
            return fn(*args)
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - eager decides whether the inputs are at fault
            res = self.module(*args)  # raises when the nodes themselves fail
            with self._lock:
                if self.fn is not self.module:
                    self.fn = self.module
                    msg = (f"torch.compile failed for the partition of {len(self.nodes)} "
                           f"node(s) from {self.nodes[0].describe()}; it runs eagerly "
                           f"({type(e).__name__}: {str(e)[:300]})")
                    _log.warning(msg)
                    warnings.warn(msg, RuntimeWarning, stacklevel=2)
            return res
