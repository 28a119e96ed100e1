"""The CPU execution provider: every operator, on host NumPy arrays.

It runs the reference kernel of :mod:`pyonnx.ops` for each node unless a fast variant is
registered for that exact schema version (:mod:`pyonnx.backends.cpu.registry`), in which case
it runs the variant. The provider option ``use_reference_kernels="1"`` runs the reference
kernels only (what tests compare the variants against on whole models).
"""

from __future__ import annotations

from pyonnx.backends.base import HOST, Provider
from pyonnx.backends.cpu.registry import fast_kernel, get_fast_kernel
from pyonnx.ir import Node
from pyonnx.ops.registry import Kernel

__all__ = ["CPUProvider", "fast_kernel"]


class CPUProvider(Provider):
    """onnxruntime's ``CPUExecutionProvider``: claims every node (see the module docstring)."""

    name = "CPUExecutionProvider"
    device = HOST

    def __init__(self, options: dict[str, str] | None = None) -> None:
        super().__init__(options)
        flag = self.options.get("use_reference_kernels", "0")
        if flag not in ("0", "1"):
            raise ValueError(f"CPUExecutionProvider option use_reference_kernels must be '0' or "
                             f"'1', got {flag!r}")
        self.use_reference_kernels = flag == "1"

    def kernel_for(self, node: Node, domain: str, since_version: int,
                   reference: Kernel) -> Kernel | None:
        if not self.use_reference_kernels:
            fast = get_fast_kernel(domain, node.op_type, since_version)
            if fast is not None:
                return fast
        return reference
from pyonnx.backends.cpu import quantized as _quantized  # noqa: E402,F401  (fast integer kernels)
