"""Execution providers: what runs a session's nodes, by onnxruntime's provider names.

``CPUExecutionProvider`` (:mod:`pyonnx.backends.cpu`) is always available. Other providers
register a factory under their name with :func:`register_provider` (tests register a toy one);
sessions then accept that name in ``providers=[...]``. See :mod:`pyonnx.backends.base` for the
protocol.

Providers of optional extras (the torch provider) are *lazy*: :data:`_LAZY` names the module
that holds each one's factory and availability probe, so listing the available providers never
imports the extra (``import pyonnx`` and sessions on the CPU provider stay torch-free); the
module is imported when a session asks for the provider by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from pyonnx.backends.base import HOST, Provider
from pyonnx.backends.cpu import CPUProvider

__all__ = ["Provider", "CPUProvider", "HOST", "register_provider", "unregister_provider",
           "available_providers", "create_provider"]

ProviderFactory = Callable[[dict[str, str]], Provider]

# name -> factory, in registration order; the CPU provider stays last (the fallback of every list)
_FACTORIES: dict[str, ProviderFactory] = {}

# name -> (module, factory attribute, probe attribute) of providers that live in optional
# extras; the module itself must import without its extra (it imports the extra in the factory)
# and ``probe()`` says, cheaply and without importing the extra, whether the provider can run
_LAZY: dict[str, tuple[str, str, str]] = {
    "CUDAExecutionProvider": ("pyonnx.backends.torch", "cuda_provider", "cuda_available"),
    "TorchExecutionProvider": ("pyonnx.backends.torch", "torch_provider", "torch_available"),
}


def _lazy(name: str, attr: int) -> Callable[..., object]:
    module, *attrs = _LAZY[name]
    return getattr(importlib.import_module(module), attrs[attr])


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Make ``name`` usable in a session's ``providers`` list; ``factory(options)`` builds the
    provider for one session. A name registered twice raises ``ValueError``."""
    if name == CPUProvider.name or name in _FACTORIES or name in _LAZY:
        raise ValueError(f"provider {name!r} is already registered")
    _FACTORIES[name] = factory


def unregister_provider(name: str) -> None:
    """Remove a provider registered with :func:`register_provider` (sessions that hold one
    keep it)."""
    if name not in _FACTORIES:
        raise ValueError(f"provider {name!r} is not registered")
    del _FACTORIES[name]


def available_providers() -> list[str]:
    """The provider names sessions accept, the registered ones first, then the optional
    extras' that can run here, the CPU provider last."""
    return [*_FACTORIES, *(n for n in _LAZY if _lazy(n, 1)()), CPUProvider.name]


def create_provider(name: str, options: dict[str, str] | None = None, *,
                    arena: bool = False) -> Provider:
    """A new provider ``name`` for one session, with its provider ``options``; ``arena`` is the
    session's ``enable_cpu_mem_arena`` (for the CPU provider, which owns the arena)."""
    if name == CPUProvider.name:
        return CPUProvider(options, arena=arena)
    factory = _FACTORIES.get(name)
    if factory is None and name in _LAZY and _lazy(name, 1)():
        factory = _lazy(name, 0)
    if factory is None:
        raise ValueError(f"provider {name!r} is not available (available: "
                         f"{', '.join(available_providers())})")
    return factory(dict(options or {}))
