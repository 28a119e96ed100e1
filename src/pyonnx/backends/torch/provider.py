"""The torch execution provider: the op table's functions as kernels, torch tensors as values.

Values on this provider live on ``self.torch_device``; :meth:`TorchProvider.from_host` and
:meth:`TorchProvider.to_host` move them (on the CPU both share memory with the NumPy array, no
copy). Its ``device`` name is ``torch:<torch device>`` (``torch:cpu``, ``torch:cuda:0``): torch
tensors are not the host's NumPy arrays even on the CPU, so the plan inserts the (free) copy
steps between this provider and the CPU provider.
"""

from __future__ import annotations

from typing import Any

import torch

from pyonnx.backends.base import Provider
from pyonnx.backends.torch.dtypes import from_numpy, to_numpy
from pyonnx.backends.torch.ops import TorchOp, claim
from pyonnx.ir import Node
from pyonnx.ops.registry import Kernel

__all__ = ["TorchProvider", "parse_device"]

# op function -> its torch.compile wrapper, shared by every session of the process (torch's
# compiled code is cached per function, so a second session reuses the first one's work)
_COMPILED: dict[Any, Any] = {}


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


class TorchProvider(Provider):
    """Runs the nodes the torch op table claims (:func:`pyonnx.backends.torch.ops.claim`) on
    one torch device; the plan gives the rest to the CPU provider. ``compile="1"`` runs each
    op function through ``torch.compile`` (dynamic shapes): the plan calls one kernel per
    node, so compilation fuses within an operator, not across operators; compiling a whole
    partition needs the session to run :meth:`session_passes`, which it does not yet."""

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

    def kernel_for(self, node: Node, domain: str, since_version: int,
                   reference: Kernel) -> Kernel | None:
        entry, _ = claim(node, domain, since_version)
        if entry is None:
            return None
        return self._kernel(entry, node)

    def _kernel(self, entry: TorchOp, node: Node) -> Kernel:
        fn = entry.fn
        if self.compile:
            fn = _COMPILED.get(fn) or _COMPILED.setdefault(fn, torch.compile(fn, dynamic=True))
        extra: dict[str, Any] = dict(entry.node_kwargs(node)) if entry.node_kwargs else {}
        if entry.needs_device:
            extra["device"] = self.torch_device

        def kernel(*inputs: Any, **attributes: Any) -> tuple:
            with torch.no_grad():
                out = fn(*inputs, **attributes, **extra)
            return out if isinstance(out, tuple) else (out,)

        kernel.__name__ = f"torch_{node.op_type}"
        kernel.__qualname__ = kernel.__name__
        return kernel

    def from_host(self, value: Any) -> Any:
        return from_numpy(value, self.torch_device)

    def to_host(self, value: Any) -> Any:
        return to_numpy(value)
