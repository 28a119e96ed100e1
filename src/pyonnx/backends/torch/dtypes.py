"""ONNX element types as torch dtypes, and host (NumPy) values as torch tensors and back.

torch has no string tensors and no 4-bit, 2-bit, 6-bit or float8e8m0 types; those element types
have no entry here, and nodes that use them are not claimed by the torch op table (they stay on
the CPU provider, and :func:`pyonnx.convert.to_torch` refuses them).
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import torch

from pyonnx.ir import DataType

__all__ = ["TORCH_DTYPE", "torch_dtype", "from_numpy", "to_numpy", "supported"]

#: ONNX element type -> torch dtype, for the element types torch computes with
TORCH_DTYPE: dict[DataType, torch.dtype] = {
    DataType.FLOAT: torch.float32, DataType.DOUBLE: torch.float64,
    DataType.FLOAT16: torch.float16, DataType.BFLOAT16: torch.bfloat16,
    DataType.INT8: torch.int8, DataType.INT16: torch.int16, DataType.INT32: torch.int32,
    DataType.INT64: torch.int64, DataType.UINT8: torch.uint8, DataType.BOOL: torch.bool,
    DataType.COMPLEX64: torch.complex64, DataType.COMPLEX128: torch.complex128,
}

#: torch's unsigned 16/32/64-bit types exist but most operators lack kernels for them, so the
#: op table does not claim nodes on them (they stay on the CPU provider)
UNSUPPORTED_NOTE = "torch has no kernels for this element type"

_FROM_TORCH = {v: k for k, v in TORCH_DTYPE.items()}
# NumPy dtypes without a torch.from_numpy path: reinterpreted through an integer of their width
_VIEW = {np.dtype(ml_dtypes.bfloat16): (np.int16, torch.bfloat16)}
_TO_NUMPY_VIEW = {torch.bfloat16: np.dtype(ml_dtypes.bfloat16)}


def supported(elem_type: DataType) -> bool:
    """Whether the op table computes on tensors of ``elem_type``."""
    return elem_type in TORCH_DTYPE


def torch_dtype(elem_type: int) -> torch.dtype:
    """The torch dtype of ONNX element type ``elem_type`` (an int code or :class:`DataType`)."""
    try:
        return TORCH_DTYPE[DataType(elem_type)]
    except (KeyError, ValueError):
        raise TypeError(f"element type {DataType(elem_type).name if elem_type in DataType._value2member_map_ else elem_type} "
                        f"has no torch equivalent") from None


def onnx_type(dtype: torch.dtype) -> DataType:
    """The ONNX element type of a torch dtype."""
    return _FROM_TORCH[dtype]


def from_numpy(a: Any, device: torch.device | str | None = None) -> Any:
    """A host value on torch: arrays become tensors (sharing memory on the CPU when NumPy's
    layout allows), lists (sequences) become lists of tensors, None stays None."""
    if a is None:
        return None
    if isinstance(a, list):
        return [from_numpy(x, device) for x in a]
    if isinstance(a, torch.Tensor):
        return a.to(device) if device is not None else a
    a = np.asarray(a)
    view = _VIEW.get(a.dtype)
    if view is not None:
        t = torch.from_numpy(np.ascontiguousarray(a).view(view[0])).view(view[1])
    else:
        if not a.flags.writeable:
            # torch.from_numpy warns on read-only memory; kernels never write, but a copy keeps
            # torch's contract (this happens for memory-mapped initializers, once)
            a = a.copy()
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("="))
        t = torch.from_numpy(a)
    return t if device is None else t.to(device)


def to_numpy(t: Any) -> Any:
    """A torch value as a host value: a NumPy array (sharing memory with a CPU tensor when it
    is contiguous), lists element-wise, None as None."""
    if t is None:
        return None
    if isinstance(t, (list, tuple)):
        return [to_numpy(x) for x in t]
    if not isinstance(t, torch.Tensor):
        return np.asarray(t)
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.is_conj():
        t = t.resolve_conj()
    np_view = _TO_NUMPY_VIEW.get(t.dtype)
    if np_view is not None:
        return t.contiguous().view(torch.int16).numpy().view(np_view)
    a = t.numpy()
    return a if a.flags.c_contiguous else a.copy()  # (np.ascontiguousarray makes 0-d 1-d)
