"""Values in device memory for OrtValue and IOBinding: torch tensors on a CUDA device,
exchanged with torch and CuPy through DLPack without copies.

:mod:`pyonnx.runtime.ortvalue` calls these only when a caller asks for a device other than the
CPU (``OrtValue.ortvalue_from_numpy(x, "cuda", 0)``) or hands over a DLPack tensor that lives
on one (``OrtValue.from_dlpack(cupy_array)``); host values stay NumPy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pyonnx.backends.torch.dtypes import from_numpy, onnx_type, to_numpy
from pyonnx.errors import NotSupported

__all__ = ["is_device_tensor", "to_device", "from_dlpack", "describe", "element_type"]


def is_device_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor outside host memory."""
    return isinstance(value, torch.Tensor) and value.device.type != "cpu"


def _device(device_type: str, device_id: int) -> torch.device:
    # NotSupported, a RuntimeError, as onnxruntime raises for a device its build lacks
    kind = str(device_type).lower()
    if kind not in ("cuda", "gpu"):
        raise NotSupported(f"device {device_type!r}: pyonnx holds device values on CUDA "
                              f"GPUs through torch only")
    if not torch.cuda.is_available() or device_id >= torch.cuda.device_count():
        raise NotSupported(f"device 'cuda:{device_id}' is not there: torch sees "
                              f"{torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device("cuda", int(device_id))


def to_device(array: np.ndarray, device_type: str, device_id: int) -> torch.Tensor:
    """A copy of host ``array`` on the named device."""
    return from_numpy(np.ascontiguousarray(array), _device(device_type, device_id))


def from_dlpack(data: Any) -> torch.Tensor:
    """A torch tensor sharing the memory of a DLPack producer (torch, CuPy, ...)."""
    return torch.from_dlpack(data)


def describe(t: torch.Tensor) -> tuple[str, int]:
    """(onnxruntime's device name, device id) of a device tensor."""
    return ("cuda" if t.device.type == "cuda" else t.device.type, t.device.index or 0)


def element_type(t: torch.Tensor) -> int:
    """The ONNX element type number of a tensor."""
    return int(onnx_type(t.dtype))


def host_copy(t: torch.Tensor) -> np.ndarray:
    """A NumPy copy of a device tensor (what OrtValue.numpy() gives, as in onnxruntime)."""
    return to_numpy(t)
