"""The execution-provider protocol: what a backend implements to run nodes of a session.

A *provider* (onnxruntime's word) executes nodes on one device. A session holds a list of them in
preference order, the CPU provider always last; the plan (:mod:`pyonnx.runtime.plan`) gives each
node to the first provider that claims it and inserts a copy step wherever a value must move
between devices. A provider answers these questions:

* :meth:`Provider.kernel_for`: which kernel runs this node here (``None``: not claimed). The
  plan has already resolved the node's schema version, so a provider only ever sees nodes that
  are valid at the model's opset, and it answers for that exact version;
* :meth:`Provider.bind`: the node bound to that kernel, once, at session creation
  (:func:`pyonnx.ops.bind.bind`: attribute decoding, the kernel's context, its per-node
  ``prepare`` state); providers rarely need to override it;
* :meth:`Provider.from_host` / :meth:`Provider.to_host`: moving a value between host memory
  (NumPy arrays) and the provider's device. A provider whose values *are* host NumPy arrays sets
  ``device = "cpu"`` and needs no copies between it and the CPU provider;
* :meth:`Provider.partition`: optionally, one function for a run of consecutive steps the
  provider executes (the torch provider's partitions), so that a run pays no per-node work;
* :meth:`Provider.session_passes`: graph rewrites into the provider's own fused kernels, run on
  the session's private copy of the model after anything is written to a file.

Values between nodes are whatever the provider's kernels return for its device (a NumPy array
on the host, a device tensor elsewhere). Graph inputs, initializers and graph outputs live on the
host. Nodes that run subgraphs (If, Loop, Scan) and calls of model-local functions run on the CPU
provider, and so do the producers of values that a subgraph reads, so subgraph bodies only ever
see host values (their own nodes are partitioned the same way inside).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyonnx.ir import Node
from pyonnx.ops.bind import BoundNode, bind
from pyonnx.ops.registry import Kernel

__all__ = ["Provider", "HOST"]

#: The device name of host memory: values there are NumPy arrays (or sequences/maps of them).
HOST = "cpu"


class Provider:
    """Base class of execution providers (see the module docstring).

    ``name`` is the name sessions list it by (``"CPUExecutionProvider"``); ``device`` names the
    memory its values live in (``"cpu"`` for host NumPy arrays, else e.g. ``"cuda:0"``); two
    providers with the same ``device`` exchange values without copies. ``options`` are the
    provider options the session was given for it (strings, as onnxruntime passes them).
    """

    name: str = ""
    device: str = HOST

    def __init__(self, options: dict[str, str] | None = None) -> None:
        self.options: dict[str, str] = dict(options or {})

    # ---------------------------------------------------------------- node assignment

    def kernel_for(self, node: Node, domain: str, since_version: int,
                   reference: Kernel) -> Kernel | None:
        """The kernel that runs ``node`` (of ``domain``, schema ``since_version``) on this
        provider, or None when the provider does not claim the node. ``reference`` is the
        reference kernel of :mod:`pyonnx.ops` for that exact version (which a provider for the
        host may return as is)."""
        raise NotImplementedError

    def bind(self, node: Node, kernel: Kernel, since_version: int, opset: int,
             attributes: dict[str, Any], *, rng: np.random.Generator | None,
             max_tensor_bytes: int, max_iterations: int) -> BoundNode:
        """``node`` bound to ``kernel`` once (see :func:`pyonnx.ops.bind.bind`)."""
        return bind(node, kernel, since_version, opset, attributes, rng=rng,
                    max_tensor_bytes=max_tensor_bytes, max_iterations=max_iterations)

    # ---------------------------------------------------------------- memory

    def from_host(self, value: Any) -> Any:
        """``value`` (a host value) on this provider's device."""
        if self.device == HOST:
            return value
        raise NotImplementedError(f"{self.name} must define from_host for device {self.device}")

    def to_host(self, value: Any) -> Any:
        """``value`` (on this provider's device) as a host value."""
        if self.device == HOST:
            return value
        raise NotImplementedError(f"{self.name} must define to_host for device {self.device}")

    # ---------------------------------------------------------------- partitions

    def partition(self, steps: tuple[Any, ...], inputs: tuple[int, ...],
                  outputs: tuple[int, ...], constants: dict[int, Any]) -> Any:
        """A function that executes ``steps`` (consecutive steps of a plan that this provider
        runs: its nodes and the copies to and from its device) as one, or None to run them one
        by one (the default). Each step has ``node``, ``fn``, ``ins``, ``outs`` (value slots),
        ``kwargs`` and ``is_copy``. The function takes the values of the slots ``inputs`` and
        returns those of the slots ``outputs``, in order. ``constants`` are the inputs whose
        value is the same in every call (initializers on the device, cached semi-constants),
        which the function may hold instead of reading its arguments. It is called only by
        runs that observe no single node (no profiling, terminate flag, deadline or byte
        limit), and when it raises, the plan runs the steps one by one, which names the
        failing node."""
        return None

    # ---------------------------------------------------------------- session set-up

    def session_passes(self, level: int) -> list[Any]:
        """Rewrites into this provider's private kernels for a session at optimization
        ``level`` (onnxruntime's numbering), run after anything is written (default: none)."""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} on {self.device}>"
