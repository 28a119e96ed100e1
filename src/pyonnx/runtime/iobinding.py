"""``IOBinding``: bind a session's inputs and outputs to values before running, as in
onnxruntime (``sess.io_binding()`` then ``sess.run_with_iobinding(binding)``).

Everything lives in CPU memory, so an input bound from a NumPy array or an OrtValue is used
without a copy, an output bound to an OrtValue (or to a caller's buffer by address) is written
into that buffer, and an output bound to the device ``cpu`` gets a new OrtValue each run.
``synchronize_inputs`` / ``synchronize_outputs`` have nothing to wait for on the CPU.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

import numpy as np

from pyonnx.errors import InvalidArgumentType, InvalidRequest
from pyonnx.runtime.ortvalue import (
    OrtDevice,
    OrtValue,
    OrtValueVector,
    cpu_device,
    onnx_data_type,
)

if TYPE_CHECKING:
    from pyonnx.runtime.session import InferenceSession

__all__ = ["IOBinding", "SessionIOBinding"]


def _element_dtype(element_type: Any) -> np.dtype:
    """A NumPy dtype from a NumPy type or an ONNX element type number."""
    if isinstance(element_type, (int, np.integer)) and not isinstance(element_type, bool):
        return np.dtype(onnx_data_type(int(element_type)).numpy)
    try:
        return np.dtype(element_type)
    except TypeError:
        raise InvalidRequest(f"element_type {element_type!r} is not a numpy type or an ONNX "
                             f"type number") from None


def _array_at(buffer_ptr: int, element_type: Any, shape: Any, what: str) -> np.ndarray:
    """A NumPy array viewing ``buffer_ptr`` (caller-owned memory) with the given type/shape."""
    dtype = _element_dtype(element_type)
    if dtype == object:
        raise InvalidRequest(f"{what}: string tensors cannot be bound by address; bind an "
                             f"OrtValue or a numpy array")
    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        raise InvalidRequest(f"{what}: shape {dims} has a negative dimension")
    count = int(np.prod(dims)) if dims else 1
    if count == 0:
        return np.empty(dims, dtype)
    if not buffer_ptr:
        raise InvalidRequest(f"{what}: buffer_ptr is null")
    raw = (ctypes.c_char * (count * dtype.itemsize)).from_address(int(buffer_ptr))
    return np.frombuffer(raw, dtype=dtype, count=count).reshape(dims)


class IOBinding:
    """Inputs and outputs bound to one session (``session.io_binding()``)."""

    def __init__(self, session: "InferenceSession") -> None:
        # onnxruntime's C-level SessionIOBinding is made from the C-level session (sess._sess)
        self._session = getattr(session, "_session", session)
        self._inputs: dict[str, Any] = {}
        # name -> OrtValue to write into, or None: a new OrtValue per run
        self._outputs: dict[str, OrtValue | None] = {}
        self._results: list[OrtValue] = []

    @property
    def _iobinding(self) -> "IOBinding":
        """onnxruntime's C-level binding object; here the binding itself."""
        return self

    def _input_name(self, name: str) -> str:
        if name not in self._session._input_index:
            raise InvalidRequest(
                f"Failed to find NodeArg with name: {name} in the def list: {name!r} is not an "
                f"input of the model (inputs: "
                f"{', '.join(v.name for v in self._session._inputs) or 'none'})")
        return name

    # -- inputs ------------------------------------------------------------------------

    def bind_cpu_input(self, name: str, arr_on_cpu: Any) -> None:
        """Bind input ``name`` to an array in CPU memory (used without a copy)."""
        self._inputs[self._input_name(name)] = arr_on_cpu

    def bind_input(self, name: str, *args: Any) -> None:
        """Bind input ``name`` to caller-owned memory: ``(name, device_type, device_id,
        element_type, shape, buffer_ptr)`` (CPU only). onnxruntime's C-level forms work too:
        ``(name, array)`` and ``(name, OrtDevice, element_type, shape, buffer_ptr)``."""
        if len(args) == 1:
            self.bind_cpu_input(name, args[0])
            return
        if len(args) == 4 and isinstance(args[0], OrtDevice):
            device, element_type, shape, buffer_ptr = args
            device_id = device.device_id()
        elif len(args) == 5:
            device, device_id, element_type, shape, buffer_ptr = args
        else:
            raise InvalidArgumentType(
                "bind_input takes (name, device_type, device_id, element_type, shape, "
                "buffer_ptr)")
        cpu_device(device, device_id, -1, f"input {name!r}")
        self._inputs[self._input_name(name)] = _array_at(buffer_ptr, element_type, shape,
                                                         f"input {name!r}")

    def bind_ortvalue_input(self, name: str, ortvalue: OrtValue) -> None:
        """Bind input ``name`` to an OrtValue."""
        if not isinstance(ortvalue, OrtValue):
            raise InvalidRequest(f"bind_ortvalue_input({name!r}, ...) needs an OrtValue, got "
                                 f"{type(ortvalue).__name__}")
        self._inputs[self._input_name(name)] = ortvalue

    def synchronize_inputs(self) -> None:
        """Nothing to wait for: CPU memory is written synchronously."""

    # -- outputs -----------------------------------------------------------------------

    def bind_output(self, name: str, device_type: str | OrtDevice = "cpu", device_id: Any = 0,
                    element_type: Any = None, shape: Any = None,
                    buffer_ptr: int | None = None) -> None:
        """Bind output ``name`` to the CPU (a new value each run) or, with ``element_type``,
        ``shape`` and ``buffer_ptr``, to caller-owned memory the run writes into.
        ``device_type`` may be an OrtDevice, as in onnxruntime's C-level call (whose further
        arguments are then element_type, shape, buffer_ptr)."""
        if isinstance(device_type, OrtDevice) and device_id != 0:
            # C-level (name, device, element_type, shape, buffer_ptr): shift the arguments
            device_id, element_type, shape, buffer_ptr = 0, device_id, element_type, shape
        cpu_device(device_type, device_id, -1, f"output {name!r}")
        if buffer_ptr is None:
            self._outputs[name] = None
            return
        if element_type is None or shape is None:
            raise InvalidRequest("`element_type` and `shape` are to be provided if "
                                       "pre-allocated memory is provided")
        self._outputs[name] = OrtValue(_array_at(buffer_ptr, element_type, shape,
                                                 f"output {name!r}"))

    def bind_ortvalue_output(self, name: str, ortvalue: OrtValue) -> None:
        """Bind output ``name`` to an OrtValue the run writes into (shape and type must match
        what the model produces)."""
        if not isinstance(ortvalue, OrtValue):
            raise InvalidRequest(f"bind_ortvalue_output({name!r}, ...) needs an OrtValue, got "
                                 f"{type(ortvalue).__name__}")
        self._outputs[name] = ortvalue

    def synchronize_outputs(self) -> None:
        """Nothing to wait for: the run has finished writing when it returns."""

    def get_outputs(self) -> list[OrtValue]:
        """The output OrtValues of the last run, in binding order."""
        return list(self._results)

    def get_outputs_as_ortvaluevector(self) -> OrtValueVector:
        return OrtValueVector(self._results)

    def copy_outputs_to_cpu(self) -> list[Any]:
        """Copies of the last run's outputs (arrays; sequences as lists of arrays)."""
        out: list[Any] = []
        for v in self._results:
            value = v._value
            if isinstance(value, np.ndarray):
                out.append(value.copy())
            elif isinstance(value, list):
                out.append([e.copy() if isinstance(e, np.ndarray) else e for e in value])
            else:
                out.append(value)
        return out

    def clear_binding_inputs(self) -> None:
        self._inputs.clear()

    def clear_binding_outputs(self) -> None:
        self._outputs.clear()
        self._results = []


# onnxruntime's C-level name for the same object
SessionIOBinding = IOBinding
