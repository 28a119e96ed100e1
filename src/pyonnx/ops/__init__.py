"""Operator kernels, one module per family, registered with :func:`registry.kernel`.

Every public module of this package (and of its sub-packages) is a kernel module; importing
them all fills the registry. Modules starting with ``_`` hold shared helpers.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["load_all"]

_done = False


def load_all() -> None:
    """Import every kernel module of this package (idempotent)."""
    global _done
    if _done:
        return
    _done = True
    for info in pkgutil.walk_packages(__path__, prefix=__name__ + "."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf.startswith("_") or leaf == "registry":
            continue
        importlib.import_module(info.name)
