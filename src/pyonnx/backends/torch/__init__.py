"""The torch execution provider (the ``torch`` extra): ONNX nodes run as torch functions on a
torch device, the CPU or a CUDA GPU.

This package's ``__init__`` never imports torch: it holds the availability probes and factories
that :mod:`pyonnx.backends` calls lazily. The provider is :mod:`pyonnx.backends.torch.provider`,
its kernels the op table :mod:`pyonnx.backends.torch.ops` (which
:func:`pyonnx.convert.to_torch` shares).

Names: ``TorchExecutionProvider`` (provider options ``device`` = ``cpu`` / ``cuda`` /
``cuda:N``, ``device_id``, ``compile`` = ``0`` / ``1``) wherever torch is installed, and
``CUDAExecutionProvider``, the same provider on ``cuda:<device_id>``, where torch sees a GPU.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from typing import Any

__all__ = ["torch_available", "cuda_available", "torch_provider", "cuda_provider"]


def torch_available() -> bool:
    """Whether torch is installed (found, not imported)."""
    return "torch" in sys.modules or importlib.util.find_spec("torch") is not None


def cuda_available() -> bool:
    """Whether torch can use a CUDA GPU. When torch is imported already, torch says; otherwise
    this reads the installed build's ``torch/version.py`` (a CPU build has ``cuda = None``) and
    looks for the NVIDIA driver, so that listing providers never imports torch."""
    if "torch" in sys.modules:
        import torch

        return bool(torch.cuda.is_available())
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    version = os.path.join(list(spec.submodule_search_locations)[0], "version.py")
    try:
        with open(version, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return False
    if not re.search(r"^cuda\s*(:[^=]*)?=\s*['\"]", text, re.M):
        return False
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")


def _import_provider() -> Any:
    """The provider class, importing torch. When this is the process's first import of torch,
    OpenMP's idle threads are made to sleep rather than spin (``OMP_WAIT_POLICY=PASSIVE``,
    unless the environment sets it): spinning threads of torch's pool fight every other thread
    for the cores, which on a shared machine made runs 10-30x slower (benchmarks/README.md)."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from pyonnx.backends.torch.provider import TorchProvider

    return TorchProvider


def torch_provider(options: dict[str, str]) -> Any:
    """A ``TorchExecutionProvider`` for one session."""
    TorchProvider = _import_provider()

    return TorchProvider(options)


def cuda_provider(options: dict[str, str]) -> Any:
    """A ``CUDAExecutionProvider``: the torch provider on ``cuda:<device_id>``."""
    TorchProvider = _import_provider()

    opts = dict(options)
    opts.setdefault("device", "cuda")
    return TorchProvider(opts, name="CUDAExecutionProvider")
