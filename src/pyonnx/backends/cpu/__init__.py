"""The CPU execution provider: every operator, on host NumPy arrays.

It runs the reference kernel of :mod:`pyonnx.ops` for each node unless a fast variant is
registered for that exact schema version (:mod:`pyonnx.backends.cpu.registry`), in which case
it runs the variant. The provider option ``use_reference_kernels="1"`` runs the reference
kernels only (what tests compare the variants against on whole models). With ``arena`` on (a
session's ``enable_cpu_mem_arena``, the default) it keeps freed memory in the process
(:mod:`pyonnx.backends.cpu.arena`, whose process-wide side is documented there).

The fast variants live beside this file: conv.py (Conv's strategies), elementwise.py (row and
element-wise loops), fused.py (fused kernels), pool.py (GlobalAveragePool), jit/ (the compiled
loops of the ``fast`` extra).
"""

from __future__ import annotations

from typing import Any

from pyonnx.backends.base import HOST, Provider
from pyonnx.backends.cpu.arena import enable_arena
from pyonnx.backends.cpu.registry import fast_kernel, get_fast_kernel
from pyonnx.ir import Node
from pyonnx.ops.registry import Kernel

__all__ = ["CPUProvider", "fast_kernel"]


class CPUProvider(Provider):
    """onnxruntime's ``CPUExecutionProvider``: claims every node (see the module docstring)."""

    name = "CPUExecutionProvider"
    device = HOST

    def __init__(self, options: dict[str, str] | None = None, *, arena: bool = False) -> None:
        super().__init__(options)
        self.arena = enable_arena() if arena else False
        flag = self.options.get("use_reference_kernels", "0")
        if flag not in ("0", "1"):
            raise ValueError(f"CPUExecutionProvider option use_reference_kernels must be '0' or "
                             f"'1', got {flag!r}")
        self.use_reference_kernels = flag == "1"

    def session_passes(self, level: int) -> list[Any]:
        """Half precision computed in float32 (float16.py; not with the reference kernels, which
        compute what the spec says in the types it says), then, at the extended level and above,
        the fusions into the fused kernels of fused.py and quantized.py (domain ``pyonnx``,
        :func:`pyonnx.optimizer.session_passes`), the quantized weights' readers first (before
        other fusions take their MatMuls), then the activations' QuantizeLinear -> DequantizeLinear
        pairs."""
        from pyonnx.backends.cpu.float16 import ComputeHalfInFloat32
        from pyonnx.backends.cpu.quantized import FuseDequantizeLinear, FuseQuantizeDequantize
        from pyonnx.optimizer import ENABLE_EXTENDED, session_passes

        passes: list[Any] = [] if self.use_reference_kernels else [ComputeHalfInFloat32()]
        if int(level) >= ENABLE_EXTENDED:
            passes += [FuseDequantizeLinear(), FuseQuantizeDequantize(), *session_passes()]
        return passes

    def kernel_for(self, node: Node, domain: str, since_version: int,
                   reference: Kernel) -> Kernel | None:
        if not self.use_reference_kernels:
            fast = get_fast_kernel(domain, node.op_type, since_version)
            if fast is not None:
                return fast
        return reference


# the fast variants register themselves on import
from pyonnx.backends.cpu import conv, elementwise, fused, gemm, indexing, nms, pool, quantized, resize, rnn  # noqa: E402,F401,I001
