"""Execution providers: what runs a session's nodes, by onnxruntime's provider names.

``CPUExecutionProvider`` (:mod:`pyonnx.backends.cpu`) is always available. Other providers
register a factory under their name with :func:`register_provider` (the torch extra does; tests
register a toy one); sessions then accept that name in ``providers=[...]``. See
:mod:`pyonnx.backends.base` for the protocol.
"""

from __future__ import annotations

from collections.abc import Callable

from pyonnx.backends.base import HOST, Provider
from pyonnx.backends.cpu import CPUProvider

__all__ = ["Provider", "CPUProvider", "HOST", "register_provider", "unregister_provider",
           "available_providers", "create_provider"]

ProviderFactory = Callable[[dict[str, str]], Provider]

# name -> factory, in registration order; the CPU provider stays last (the fallback of every list)
_FACTORIES: dict[str, ProviderFactory] = {}


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Make ``name`` usable in a session's ``providers`` list; ``factory(options)`` builds the
    provider for one session. A name registered twice raises ``ValueError``."""
    if name == CPUProvider.name or name in _FACTORIES:
        raise ValueError(f"provider {name!r} is already registered")
    _FACTORIES[name] = factory


def unregister_provider(name: str) -> None:
    """Remove a provider registered with :func:`register_provider` (sessions that hold one
    keep it)."""
    if name not in _FACTORIES:
        raise ValueError(f"provider {name!r} is not registered")
    del _FACTORIES[name]


def available_providers() -> list[str]:
    """The provider names sessions accept, the registered ones first, the CPU provider last."""
    return [*_FACTORIES, CPUProvider.name]


def create_provider(name: str, options: dict[str, str] | None = None, *,
                    arena: bool = False) -> Provider:
    """A new provider ``name`` for one session, with its provider ``options``; ``arena`` is the
    session's ``enable_cpu_mem_arena`` (for the CPU provider, which owns the arena)."""
    if name == CPUProvider.name:
        return CPUProvider(options, arena=arena)
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValueError(f"provider {name!r} is not available (available: "
                         f"{', '.join(available_providers())})")
    return factory(dict(options or {}))
