"""A toy execution provider for tests: a few ops on a "device" whose values are ToyTensor.

It plugs into sessions through the public protocol only (pyonnx.backends.Provider and
register_provider), the way an out-of-tree provider would. Its kernels refuse anything but a
ToyTensor, so a missing copy between devices fails loudly instead of passing by accident.
"""

from __future__ import annotations

import threading

import numpy as np

from pyonnx.backends import Provider


class ToyTensor:
    """A value on the toy device: a NumPy array it does not let anyone read directly."""

    __slots__ = ("_data",)

    def __init__(self, data: np.ndarray) -> None:
        self._data = data


def _device(x: object) -> np.ndarray:
    if not isinstance(x, ToyTensor):
        raise TypeError(f"toy kernel received {type(x).__name__}, not a ToyTensor")
    return x._data


def _add(a, b):
    return (ToyTensor(_device(a) + _device(b)),)


def _mul(a, b):
    return (ToyTensor(_device(a) * _device(b)),)


def _relu(x):
    d = _device(x)
    return (ToyTensor(np.maximum(d, d.dtype.type(0))),)


class ToyProvider(Provider):
    """Claims Add-14, Mul-14 and Relu-14 on float32 graphs, on the device "toy"."""

    name = "ToyExecutionProvider"
    device = "toy"
    KERNELS = {("Add", 14): _add, ("Mul", 14): _mul, ("Relu", 14): _relu}

    def __init__(self, options=None):
        super().__init__(options)
        self.lock = threading.Lock()
        self.copies_in = 0
        self.copies_out = 0

    def kernel_for(self, node, domain, since_version, reference):
        if domain != "":
            return None
        return self.KERNELS.get((node.op_type, since_version))

    def from_host(self, value):
        with self.lock:
            self.copies_in += 1
        return ToyTensor(np.array(value, copy=True))

    def to_host(self, value):
        with self.lock:
            self.copies_out += 1
        return np.array(_device(value), copy=True)
