"""The CPU provider's fast kernel variants: which function replaces a reference kernel here.

A fast variant computes exactly what the reference kernel of :mod:`pyonnx.ops` computes for the
same schema version (same inputs, attributes, outputs, errors), by a faster route: a cheaper
NumPy formulation, a compiled loop of the ``fast`` extra, a fused operation. It is registered for
the exact ``since_version`` values it implements, as a reference kernel is (the same registrar,
with its checks), and takes the same parameters, so that the CPU provider can swap one for the
other per node. Each variant is tested against its reference (tests/backends/cpu/).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pyonnx.ops.registry import Kernel, normalize_domain, registrar

__all__ = ["fast_kernel", "get_fast_kernel", "fast_kernels"]

_FAST: dict[tuple[str, str, int], Kernel] = {}


def fast_kernel(op_type: str, versions: Sequence[int], domain: str = "",
                prepare: Callable[[dict[str, Any]], Any] | None = None
                ) -> Callable[[Kernel], Kernel]:
    """Register the decorated function as the CPU provider's variant of ``op_type`` for each
    since_version in ``versions`` (``prepare`` as for :func:`pyonnx.ops.registry.kernel`); a
    second variant for one version raises ``ValueError``."""
    return registrar(_FAST, op_type, versions, domain, prepare)


def get_fast_kernel(domain: str, op_type: str, since_version: int) -> Kernel | None:
    """The fast variant for exactly this schema version, or None."""
    return _FAST.get((normalize_domain(domain), op_type, since_version))


def fast_kernels() -> dict[tuple[str, str, int], Kernel]:
    """Every registered variant by (domain, op_type, since_version) (a copy, for tests)."""
    return dict(_FAST)
