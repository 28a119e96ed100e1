"""onnxruntime's value and device objects, on CPU memory: OrtValue, SparseTensor, OrtDevice,
OrtMemoryInfo, OrtArenaCfg and their enums.

pyonnx keeps every value in host memory as a NumPy array (tensors), a list (sequences), a dict
(maps) or None (an empty optional), so an :class:`OrtValue` is a thin typed handle on one of
those. A CPU OrtValue made from a C-contiguous array shares that array's memory, as in
onnxruntime. With the ``torch`` extra and a CUDA GPU, an OrtValue may also hold a torch tensor in
GPU memory (``ortvalue_from_numpy(x, "cuda", 0)``, or ``from_dlpack`` of a GPU tensor from torch
or CuPy), exchanged through DLPack without copies (:mod:`pyonnx.backends.torch.device_values`);
asking for any other device raises :class:`~pyonnx.errors.NotSupported`.

onnxruntime splits each of these classes into a Python wrapper and a C++ object reached through
``_get_c_value()`` / ``_ortvalue`` / ``_get_c_device()``; here one class plays both roles and
those accessors return the object itself, so code that reaches for the C++ object still works.
"""

from __future__ import annotations

import ctypes
import enum
from collections.abc import Sequence
from typing import Any

import numpy as np

from pyonnx.errors import InvalidArgumentType, InvalidRequest, NotSupported
from pyonnx.ir import DataType

__all__ = [
    "OrtDeviceVendorId", "OrtAllocatorType", "OrtMemType", "OrtDeviceMemoryType",
    "OrtMemoryInfoDeviceType", "OrtSparseFormat", "OrtDevice", "OrtMemoryInfo", "OrtArenaCfg",
    "OrtValue", "OrtValueVector", "SparseTensor", "is_dlpack_uint8_tensor",
    "value_type_string", "copy_tensors", "cpu_device", "onnx_data_type",
    "string_array",
]


class OrtDeviceVendorId(enum.IntEnum):
    """PCI vendor ids onnxruntime attaches to devices."""

    NONE = 0x0000
    AMD = 0x1002
    NVIDIA = 0x10DE
    ARM = 0x13B5
    MICROSOFT = 0x1414
    HUAWEI = 0x19E5
    QUALCOMM = 0x5143
    INTEL = 0x8086


class OrtAllocatorType(enum.IntEnum):
    """Kinds of allocator (descriptive here: pyonnx allocates through NumPy)."""

    INVALID = -1
    ORT_DEVICE_ALLOCATOR = 0
    ORT_ARENA_ALLOCATOR = 1


class OrtMemType(enum.IntEnum):
    """Where a kernel wants a value (onnxruntime's values; CPU is an alias of CPU_OUTPUT)."""

    CPU_INPUT = -2
    CPU_OUTPUT = -1
    CPU = -1
    DEFAULT = 0


class OrtDeviceMemoryType(enum.IntEnum):
    """Memory kind of a device."""

    DEFAULT = 0
    HOST_ACCESSIBLE = 5


class OrtMemoryInfoDeviceType(enum.IntEnum):
    """Device kinds in OrtMemoryInfo.create_v2."""

    CPU = 0
    GPU = 1
    FPGA = 2
    NPU = 3


class OrtSparseFormat(enum.IntEnum):
    """Storage format of a SparseTensor."""

    ORT_SPARSE_UNDEFINED = 0
    ORT_SPARSE_COO = 1
    ORT_SPARSE_CSRC = 2
    ORT_SPARSE_BLOCK_SPARSE = 4


# device kinds as onnxruntime numbers them (OrtDevice::CPU, GPU, FPGA, NPU)
_CPU, _GPU, _FPGA, _NPU = 0, 1, 2, 3
_DEVICE_KINDS = {"cpu": _CPU, "cuda": _GPU, "dml": _GPU, "webgpu": _GPU, "gpu": _GPU,
                 "cann": _NPU, "npu": _NPU}
_ALIAS_VENDORS = {"cuda": OrtDeviceVendorId.NVIDIA, "dml": OrtDeviceVendorId.MICROSOFT,
                  "cann": OrtDeviceVendorId.HUAWEI, "webgpu": OrtDeviceVendorId.NONE}


class OrtDevice:
    """A device description: kind (0 CPU, 1 GPU, 2 FPGA, 3 NPU), memory type, vendor, id.

    Any device can be described; only the CPU can hold pyonnx's data.
    """

    __slots__ = ("_type", "_mem", "_vendor", "_id", "_name")

    def __init__(self, device_type: int = _CPU, mem_type: int = 0, *ids: int,
                 name: str = "") -> None:
        """onnxruntime's C-level constructors: ``(device_type, mem_type, device_id)`` or
        ``(device_type, mem_type, vendor_id, device_id)``."""
        if len(ids) > 2:
            raise InvalidArgumentType("OrtDevice takes (device_type, mem_type, device_id) or "
                                      "(device_type, mem_type, vendor_id, device_id)")
        vendor_id, device_id = (0, ids[0]) if len(ids) == 1 else (ids or (0, 0))
        self._type = int(device_type)
        self._mem = int(mem_type)
        self._vendor = int(vendor_id)
        self._id = int(device_id)
        self._name = name or {_CPU: "cpu", _GPU: "gpu", _FPGA: "fpga", _NPU: "npu"}.get(
            self._type, "cpu")

    @staticmethod
    def make(ort_device_name: str, device_id: int,
             vendor_id: int | OrtDeviceVendorId = -1) -> "OrtDevice":
        """The device named ``cpu``, ``cuda``, ``dml``, ``cann``, ``webgpu``, ``gpu`` or ``npu``."""
        name = str(ort_device_name).lower()
        kind = _DEVICE_KINDS.get(name)
        if kind is None:
            raise InvalidRequest(f"Unsupported device type: {ort_device_name} (known: "
                                 f"{', '.join(_DEVICE_KINDS)})")
        if vendor_id is None or int(vendor_id) < 0:
            vendor = int(_ALIAS_VENDORS.get(name, OrtDeviceVendorId.NONE))
        else:
            vendor = int(vendor_id)
        return OrtDevice(kind, 0, vendor, int(device_id), name=name)

    # onnxruntime's C-level constants
    @staticmethod
    def cpu() -> int:
        return _CPU

    @staticmethod
    def cuda() -> int:
        return _GPU

    gpu = dml = webgpu = cuda

    @staticmethod
    def npu() -> int:
        return _NPU

    cann = npu

    @staticmethod
    def fpga() -> int:
        return _FPGA

    @staticmethod
    def default_memory() -> int:
        return 0

    def _get_c_device(self) -> "OrtDevice":
        return self

    def device_id(self) -> int:
        return self._id

    def device_type(self) -> int:
        return self._type

    def device_vendor_id(self) -> int:
        return self._vendor

    vendor_id = device_vendor_id

    def device_mem_type(self) -> int:
        return self._mem

    mem_type = device_mem_type

    def is_cpu(self) -> bool:
        return self._type == _CPU

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, OrtDevice) and (self._type, self._mem, self._vendor, self._id)
                == (other._type, other._mem, other._vendor, other._id))

    def __hash__(self) -> int:
        return hash((self._type, self._mem, self._vendor, self._id))

    def __repr__(self) -> str:
        return f"OrtDevice({self._name!r}, device_id={self._id})"


def cpu_device(device_type: str | OrtDevice = "cpu", device_id: int = 0, vendor_id: int = -1,
               what: str = "this value") -> OrtDevice:
    """The CPU device, or NotSupported naming ``what`` when another device is asked for.
    ``device_type`` is a device name or (as onnxruntime's C-level calls pass) an OrtDevice."""
    dev = device_type if isinstance(device_type, OrtDevice) else \
        OrtDevice.make(device_type, device_id, vendor_id)
    if not dev.is_cpu():
        raise NotSupported(
            f"{what} cannot live on device {device_type!r}: pyonnx keeps all data in CPU memory "
            f"(use device_type='cpu')")
    return dev


class OrtMemoryInfo:
    """Describes memory: a name (``Cpu``), allocator type, device id and memory type."""

    __slots__ = ("name", "allocator_type", "device_id", "mem_type", "device_mem_type",
                 "device_vendor_id", "device_type", "alignment")

    def __init__(self, name: str = "Cpu",
                 allocator_type: int = OrtAllocatorType.ORT_ARENA_ALLOCATOR,
                 device_id: int = 0, mem_type: int = OrtMemType.DEFAULT) -> None:
        self.name = str(name)
        self.allocator_type = OrtAllocatorType(int(allocator_type))
        self.device_id = int(device_id)
        self.mem_type = OrtMemType(int(mem_type))
        self.device_mem_type = OrtDeviceMemoryType.DEFAULT
        self.device_vendor_id = 0
        self.device_type = OrtMemoryInfoDeviceType.CPU
        self.alignment = 0

    @classmethod
    def create_v2(cls, name: str, device_type: int, vendor_id: int, device_id: int,
                  mem_type: int, alignment: int, allocator_type: int) -> "OrtMemoryInfo":
        """onnxruntime's second constructor: device kind, vendor and device memory type given."""
        info = cls(name, allocator_type, device_id, OrtMemType.DEFAULT)
        info.device_type = OrtMemoryInfoDeviceType(int(device_type))
        info.device_vendor_id = int(vendor_id)
        info.device_mem_type = OrtDeviceMemoryType(int(mem_type))
        info.alignment = int(alignment)
        return info

    def __repr__(self) -> str:
        return (f"OrtMemoryInfo(name={self.name!r}, allocator_type={self.allocator_type.name}, "
                f"device_id={self.device_id}, mem_type={self.mem_type.name})")


class OrtArenaCfg:
    """Arena allocator settings. pyonnx allocates through NumPy, so these are recorded (and
    readable) but change nothing; they never change results."""

    _KEYS = ("max_mem", "arena_extend_strategy", "initial_chunk_size_bytes",
             "max_dead_bytes_per_chunk", "initial_growth_chunk_size_bytes",
             "max_power_of_two_extend_bytes")

    def __init__(self, *args: Any) -> None:
        values = dict.fromkeys(self._KEYS, -1)
        if len(args) == 1 and isinstance(args[0], dict):
            for k, v in args[0].items():
                if k not in values:
                    raise InvalidRequest(f"OrtArenaCfg has no option {k!r} (options: "
                                         f"{', '.join(self._KEYS)})")
                values[k] = int(v)
        elif len(args) == 4:
            for k, v in zip(self._KEYS, args):
                values[k] = int(v)
        elif args:
            raise InvalidArgumentType(
                "OrtArenaCfg takes (max_mem, arena_extend_strategy, initial_chunk_size_bytes, "
                "max_dead_bytes_per_chunk) or a dict of options")
        for k, v in values.items():
            setattr(self, k, v)


# ---------------------------------------------------------------------------- type strings


def _device_values() -> Any:
    """:mod:`pyonnx.backends.torch.device_values`, or None without torch (imported on demand:
    only device values need it)."""
    from pyonnx.backends.torch import torch_available

    if not torch_available():
        return None
    from pyonnx.backends.torch import device_values

    return device_values


def _is_device(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "device") and \
        value.device.type != "cpu"


def _elem_type(arr: np.ndarray) -> DataType:
    if arr.dtype.kind in ("U", "S", "O"):
        return DataType.STRING
    try:
        return DataType.from_numpy(arr.dtype)
    except ValueError:
        raise InvalidRequest(f"numpy dtype {arr.dtype} has no ONNX element type") from None


def value_type_string(value: Any) -> str:
    """onnxruntime's type string of a Python-side value: ``tensor(float)``,
    ``seq(tensor(int64))``, ``map(string,tensor(float))``, ``optional(...)`` is not knowable
    from an empty value, so None gives ``""``."""
    if isinstance(value, np.ndarray):
        return f"tensor({_elem_type(value).onnx_name})"
    if _is_device(value):
        return f"tensor({DataType(_device_values().element_type(value)).onnx_name})"
    if isinstance(value, SparseTensor):
        return value.data_type()
    if isinstance(value, list):
        inner = value_type_string(value[0]) if value else "tensor(float)"
        return f"seq({inner})"
    if isinstance(value, dict):
        if not value:
            return "map(string,tensor(float))"
        k, v = next(iter(value.items()))
        key = "string" if isinstance(k, str) else "int64"
        val = value_type_string(np.asarray(v)) if not isinstance(v, (list, dict)) else \
            value_type_string(v)
        return f"map({key},{val})"
    return ""


# ---------------------------------------------------------------------------- OrtValue


class OrtValue:
    """A value in CPU memory with onnxruntime's OrtValue interface.

    Holds a tensor (NumPy array, sharing memory with the array it was made from when that array
    is C-contiguous), a sequence (list), a map (dict), a SparseTensor, or nothing (an empty
    optional). ``type_string`` records the declared ONNX type where the value came from a model
    output, so an empty sequence still knows its element type.
    """

    __slots__ = ("_value", "_type_string", "_numpy_obj", "__weakref__")

    def __init__(self, value: Any, type_string: str = "", numpy_obj: Any = None) -> None:
        if isinstance(value, OrtValue):
            value, type_string = value._value, type_string or value._type_string
        if isinstance(value, np.generic):
            value = np.asarray(value)
        self._value = value
        self._type_string = type_string or value_type_string(value)
        self._numpy_obj = numpy_obj  # keeps a caller's buffer alive, as onnxruntime does

    # -- construction ------------------------------------------------------------------

    @classmethod
    def ortvalue_from_numpy(cls, numpy_obj: Any, device_type: str | OrtDevice = "cpu",
                            device_id: int = 0, vendor_id: int = -1) -> "OrtValue":
        """An OrtValue over ``numpy_obj`` (shared memory when it is C-contiguous).

        onnxruntime refuses anything but a NumPy array (RuntimeError); so does pyonnx, except
        that string arrays are accepted (pyonnx keeps strings as object arrays). On a CUDA
        device (the torch extra) the value is a copy in GPU memory."""
        dv = _device_values()
        if str(device_type).lower() in ("cuda", "gpu") and dv is not None:
            return cls(dv.to_device(np.asarray(numpy_obj), str(device_type), int(device_id)))
        cpu_device(device_type, device_id, vendor_id, "an OrtValue")
        if isinstance(numpy_obj, np.generic):
            numpy_obj = np.asarray(numpy_obj)
        if not isinstance(numpy_obj, np.ndarray):
            raise InvalidRequest(
                f"Creation of OrtValues is only supported from numpy arrays, not "
                f"{type(numpy_obj).__name__} (convert it with numpy.asarray first)")
        arr = numpy_obj
        if arr.dtype.kind in ("U", "S"):
            arr = string_array(arr)
        _elem_type(arr)  # an unsupported dtype fails here, not in a later run
        arr = np.ascontiguousarray(arr)
        return cls(arr, numpy_obj=numpy_obj)

    @classmethod
    def ortvalue_from_numpy_with_onnx_type(cls, data: np.ndarray,
                                           onnx_element_type: int) -> "OrtValue":
        """An OrtValue viewing ``data``'s bytes as ONNX element type ``onnx_element_type`` (for
        types NumPy lacks, e.g. bfloat16 stored as uint16); item sizes must agree."""
        dt = onnx_data_type(onnx_element_type)
        target = np.dtype(dt.numpy)
        arr = np.ascontiguousarray(data)
        if arr.dtype.itemsize != target.itemsize or dt == DataType.STRING:
            raise InvalidRequest(
                f"cannot view numpy {arr.dtype} ({arr.dtype.itemsize} bytes per element) as "
                f"{dt.onnx_name} ({target.itemsize} bytes per element)")
        return cls(arr.view(target), numpy_obj=data)

    @classmethod
    def ortvalue_from_shape_and_type(cls, shape: Sequence[int], element_type: Any,
                                     device_type: str = "cpu", device_id: int = 0,
                                     vendor_id: int = -1,
                                     memory_info: OrtMemoryInfo | None = None) -> "OrtValue":
        """A new tensor of ``shape`` and ``element_type`` (a NumPy type or an ONNX type number),
        its contents unspecified (zeros here)."""
        if memory_info is not None and memory_info.device_type != OrtMemoryInfoDeviceType.CPU:
            raise NotSupported("pyonnx keeps all data in CPU memory; memory_info must describe "
                               "CPU memory")
        cpu_device(device_type, device_id, vendor_id, "an OrtValue")
        dims = [int(d) for d in shape]
        if any(d < 0 for d in dims):
            raise InvalidRequest(f"shape {dims} has a negative dimension")
        if isinstance(element_type, (int, np.integer)) and not isinstance(element_type, bool):
            dtype = np.dtype(onnx_data_type(int(element_type)).numpy)
        else:
            try:
                dtype = np.dtype(element_type)
            except TypeError:
                raise InvalidRequest(f"element_type {element_type!r} is not a numpy type or "
                                     f"an ONNX type number") from None
        if dtype.kind in ("U", "S", "O"):
            arr = np.full(dims, "", dtype=object)
        else:
            arr = np.zeros(dims, dtype=dtype)
        _elem_type(arr)
        return cls(arr)

    @classmethod
    def ort_value_from_sparse_tensor(cls, sparse_tensor: "SparseTensor") -> "OrtValue":
        """An OrtValue holding ``sparse_tensor``."""
        if not isinstance(sparse_tensor, SparseTensor):
            raise InvalidArgumentType("ort_value_from_sparse_tensor needs a SparseTensor, not "
                                      f"{type(sparse_tensor).__name__}")
        return cls(sparse_tensor)

    @classmethod
    def from_dlpack(cls, data: Any, is_bool_tensor: bool = False) -> "OrtValue":
        """An OrtValue sharing memory with a DLPack producer (an object with ``__dlpack__``, or
        a DLPack capsule). ``is_bool_tensor`` reads a uint8 tensor as bool (legacy producers)."""
        source = data if hasattr(data, "__dlpack__") else _Capsule(data)
        if hasattr(source, "__dlpack_device__") and source.__dlpack_device__()[0] not in (1, 3):
            # not host memory (kDLCPU, kDLCUDAHost): keep it on its device, as a torch tensor
            dv = _device_values()
            if dv is None:
                raise NotSupported(f"a DLPack tensor on device {source.__dlpack_device__()} "
                                   f"needs the torch extra (pip install 'pyonnx[torch]')")
            return cls(dv.from_dlpack(source), numpy_obj=data)
        try:
            arr = np.from_dlpack(source)
        except (TypeError, BufferError, RuntimeError) as e:
            raise InvalidArgumentType(f"cannot import a DLPack tensor: {e}") from e
        if is_bool_tensor and arr.dtype == np.uint8:
            arr = arr.view(np.bool_)
        return cls(arr, numpy_obj=data)

    # -- onnxruntime's C-level accessors ----------------------------------------------

    def _get_c_value(self) -> "OrtValue":
        return self

    @property
    def _ortvalue(self) -> "OrtValue":
        return self

    # -- queries ------------------------------------------------------------------------

    def _tensor(self, what: str) -> np.ndarray:
        if _is_device(self._value):
            return _device_values().host_copy(self._value)  # a host copy, as onnxruntime gives
        if not isinstance(self._value, np.ndarray):
            raise InvalidRequest(f"{what} needs an OrtValue holding a tensor; this one holds "
                                 f"{self.data_type() or 'no value'}")
        return self._value

    def data_ptr(self) -> int:
        """Address of the first element of the tensor's buffer."""
        if _is_device(self._value):
            return int(self._value.data_ptr())
        arr = self._tensor("data_ptr()")
        if arr.dtype == object:
            raise InvalidRequest("data_ptr() is not available for string tensors")
        return int(arr.ctypes.data)

    def device_name(self) -> str:
        """``cpu``, or ``cuda`` for a value in GPU memory."""
        if _is_device(self._value):
            return _device_values().describe(self._value)[0]
        return "cpu"

    def shape(self) -> list[int]:
        """Dims of the tensor (or the dense shape of a sparse tensor)."""
        if isinstance(self._value, SparseTensor):
            return self._value.dense_shape()
        if _is_device(self._value):
            return [int(d) for d in self._value.shape]
        return [int(d) for d in self._tensor("shape()").shape]

    def data_type(self) -> str:
        """The ONNX type string, e.g. ``tensor(int64)`` or ``seq(tensor(float))``."""
        return self._type_string

    def element_type(self) -> int:
        """The ONNX element type number of a tensor (1 for float, 7 for int64, ...)."""
        if isinstance(self._value, SparseTensor):
            return int(self._value._elem)
        if _is_device(self._value):
            return _device_values().element_type(self._value)
        return int(_elem_type(self._tensor("element_type()")))

    def tensor_size_in_bytes(self) -> int:
        """Bytes the tensor's elements take."""
        return int(self._tensor("tensor_size_in_bytes()").nbytes)

    def has_value(self) -> bool:
        """False for an empty optional."""
        return self._value is not None

    def is_tensor(self) -> bool:
        """True for a tensor, and (as in onnxruntime) for an empty optional of a tensor type."""
        return isinstance(self._value, np.ndarray) or _is_device(self._value) or (
            self._value is None and self._type_string.startswith("tensor("))

    def is_sparse_tensor(self) -> bool:
        return isinstance(self._value, SparseTensor)

    def is_tensor_sequence(self) -> bool:
        return isinstance(self._value, list)

    def as_sparse_tensor(self) -> "SparseTensor":
        if not isinstance(self._value, SparseTensor):
            raise InvalidRequest(f"this OrtValue holds {self.data_type() or 'no value'}, not a "
                                 f"sparse tensor")
        return self._value

    def numpy(self) -> np.ndarray:
        """The tensor as a NumPy array sharing this value's memory."""
        return self._tensor("numpy()")

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        arr = self.numpy()
        if copy is not None:
            return np.array(arr, dtype=dtype, copy=copy)
        if dtype is not None:
            return np.asarray(arr, dtype=dtype)
        return arr

    def update_inplace(self, data: Any) -> None:
        """Copy ``data`` (an array or an OrtValue with as many elements and the same element
        type) into this tensor's buffer, keeping its address."""
        arr = self._tensor("update_inplace()")
        src = data.numpy() if isinstance(data, OrtValue) else data
        if not isinstance(src, np.ndarray):
            raise InvalidArgumentType("data must be a numpy.ndarray or an OrtValue, not "
                                      f"{type(data).__name__}")
        if src.size != arr.size:
            raise InvalidRequest(f"The input size of numpy arrays does not match the size of the "
                                 f"OrtValue: {src.size} elements given, {arr.size} held")
        if src.dtype != arr.dtype and not (arr.dtype == object and src.dtype.kind in "US"):
            raise InvalidRequest(f"update_inplace() got numpy {src.dtype} for an OrtValue of "
                                 f"{self.data_type()}; convert it first")
        np.copyto(arr, src.reshape(arr.shape), casting="unsafe")

    # -- DLPack ------------------------------------------------------------------------

    def __dlpack__(self, *, stream: Any = None, **kwargs: Any) -> Any:
        if _is_device(self._value):
            return self._value.__dlpack__(stream=stream, **kwargs)
        return self.numpy().__dlpack__(stream=stream, **kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        if _is_device(self._value):
            return self._value.__dlpack_device__()
        return (1, 0)  # kDLCPU, device 0

    def to_dlpack(self) -> Any:
        """A DLPack capsule sharing this tensor's memory."""
        if _is_device(self._value):
            return self._value.__dlpack__()
        return self.numpy().__dlpack__()

    def __repr__(self) -> str:
        return f"<pyonnx OrtValue {self.data_type() or 'empty optional'} on {self.device_name()}>"


def copy_tensors(src: Sequence[OrtValue], dst: Sequence[OrtValue], stream: Any = None) -> None:
    """Copy each source tensor's data into the destination tensor at the same position (same
    element type and element count); ``stream`` is accepted for onnxruntime's signature."""
    if len(src) != len(dst):
        raise InvalidRequest(f"copy_tensors got {len(src)} sources and {len(dst)} destinations")
    for i, (s, d) in enumerate(zip(src, dst)):
        if not isinstance(s, OrtValue) or not isinstance(d, OrtValue):
            raise InvalidArgumentType(f"copy_tensors: item {i} is not a pair of OrtValues")
        d.update_inplace(s)


class OrtValueVector(list):
    """A list of OrtValues (what onnxruntime's C-level run_with_ort_values returns)."""

    def push_back(self, value: OrtValue) -> None:
        self.append(value if isinstance(value, OrtValue) else OrtValue(value))


class _Capsule:
    """Presents a bare DLPack capsule to numpy.from_dlpack, which wants a producer object."""

    def __init__(self, capsule: Any) -> None:
        self._capsule = capsule

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self._capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)


_capsule_name = ctypes.pythonapi.PyCapsule_GetName
_capsule_name.restype = ctypes.c_char_p
_capsule_name.argtypes = [ctypes.py_object]
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def is_dlpack_uint8_tensor(capsule: Any) -> bool:
    """Whether a DLPack capsule holds a uint8 tensor (onnxruntime's helper of that name).

    Reads the DLDataType of the capsule's DLTensor: in a legacy ``dltensor`` capsule the
    DLTensor comes first, in a ``dltensor_versioned`` one after a 32-byte header; its dtype
    (code, bits, lanes) sits 20 bytes in, after data, device and ndim.
    """
    try:
        name = _capsule_name(capsule)
    except (TypeError, ValueError):
        raise InvalidArgumentType("is_dlpack_uint8_tensor needs a DLPack capsule") from None
    if name not in (b"dltensor", b"dltensor_versioned"):
        raise InvalidArgumentType(f"capsule {name!r} is not an unused DLPack capsule")
    base = _capsule_pointer(capsule, name)
    tensor = base + (32 if name == b"dltensor_versioned" else 0)
    code, bits = ctypes.c_uint8.from_address(tensor + 20).value, \
        ctypes.c_uint8.from_address(tensor + 21).value
    return code == 1 and bits == 8  # kDLUInt, 8 bits


def onnx_data_type(onnx_type: int) -> DataType:
    """The DataType of an ONNX element type number; InvalidRequest (a RuntimeError, as in
    onnxruntime) for a number that is none."""
    try:
        dt = DataType(int(onnx_type))
    except ValueError:
        raise InvalidRequest(f"tensor type {onnx_type} is not supported (not an ONNX element "
                             f"type number)") from None
    if dt == DataType.UNDEFINED:
        raise InvalidRequest("tensor type 0 (UNDEFINED) is not supported")
    return dt


def string_array(arr: np.ndarray) -> np.ndarray:
    """A str/bytes array as pyonnx's string tensors: an object array of str (bytes decoded as
    UTF-8, as onnxruntime returns strings)."""
    if arr.dtype.kind == "S":
        try:
            text = [b.decode("utf-8") for b in arr.ravel()]
        except UnicodeDecodeError as e:
            raise InvalidRequest(f"a bytes string is not UTF-8 ({e}); ONNX strings are "
                                 f"UTF-8") from None
        return np.array(text, dtype=object).reshape(arr.shape)
    return arr.astype(object)


# ---------------------------------------------------------------------------- SparseTensor


class _CooView:
    def __init__(self, indices: np.ndarray) -> None:
        self._indices = indices

    def indices(self) -> np.ndarray:
        return self._indices


class _CsrView:
    def __init__(self, inner: np.ndarray, outer: np.ndarray) -> None:
        self._inner, self._outer = inner, outer

    def inner(self) -> np.ndarray:
        return self._inner

    def outer(self) -> np.ndarray:
        return self._outer


def _read_only(arr: np.ndarray) -> np.ndarray:
    view = arr.view()
    view.flags.writeable = False
    return view


class SparseTensor:
    """A sparse tensor in CPU memory, COO or CSR(C) as onnxruntime offers them.

    Values and indices are kept as given (numeric arrays shared, strings copied) and handed back
    read-only. :meth:`to_dense` gives the dense array.
    """

    def __init__(self, fmt: OrtSparseFormat, dense_shape: Sequence[int], values: np.ndarray,
                 indices: tuple[np.ndarray, ...]) -> None:
        self._format = fmt
        self._shape = [int(d) for d in dense_shape]
        self._values = values
        self._indices = indices
        self._elem = _elem_type(values)

    @staticmethod
    def _check(dense_shape: Any, values: Any, ort_device: OrtDevice | None
               ) -> tuple[list[int], np.ndarray]:
        if ort_device is not None and not ort_device.is_cpu():
            raise NotSupported("pyonnx keeps sparse tensors in CPU memory only")
        shape = [int(d) for d in np.asarray(dense_shape).ravel()]
        if any(d < 0 for d in shape):
            raise InvalidRequest(f"dense_shape {shape} has a negative dimension")
        vals = np.asarray(values)
        if vals.ndim != 1:
            raise InvalidRequest(f"values must be 1-D, got shape {list(vals.shape)}")
        if vals.dtype.kind in ("U", "S"):
            vals = string_array(vals)
        return shape, vals

    @staticmethod
    def _indices_array(arr: Any, what: str) -> np.ndarray:
        idx = np.asarray(arr)
        if idx.dtype != np.int64:
            raise InvalidRequest(f"{what} must be int64, got {idx.dtype}")
        return np.ascontiguousarray(idx)

    @classmethod
    def sparse_coo_from_numpy(cls, dense_shape: Any, values: Any, coo_indices: Any,
                              ort_device: OrtDevice | None = None) -> "SparseTensor":
        """COO: ``coo_indices`` holds one linear index per value (1-D) or one coordinate tuple
        per value (2-D, ``[nnz, rank]``)."""
        shape, vals = cls._check(dense_shape, values, ort_device)
        idx = cls._indices_array(coo_indices, "coo_indices")
        size = int(np.prod(shape)) if shape else 1
        nnz = vals.shape[0]
        if idx.ndim == 1:
            if idx.shape[0] != nnz:
                raise InvalidRequest(f"coo_indices has {idx.shape[0]} linear indices for {nnz} "
                                     f"values")
            if nnz and (idx.min() < 0 or idx.max() >= size):
                raise InvalidRequest(f"coo_indices must lie in [0, {size}) for dense shape "
                                     f"{shape}")
        elif idx.ndim == 2:
            if idx.shape != (nnz, len(shape)):
                raise InvalidRequest(f"coo_indices has shape {list(idx.shape)}; expected "
                                     f"[{nnz}, {len(shape)}]")
            if nnz and ((idx < 0).any() or (idx >= np.asarray(shape)).any()):
                raise InvalidRequest(f"coo_indices lie outside dense shape {shape}")
        else:
            raise InvalidRequest(f"coo_indices must be 1-D or 2-D, got rank {idx.ndim}")
        return cls(OrtSparseFormat.ORT_SPARSE_COO, shape, vals, (idx,))

    @classmethod
    def sparse_csr_from_numpy(cls, dense_shape: Any, values: Any, inner_indices: Any,
                              outer_indices: Any, ort_device: OrtDevice | None = None
                              ) -> "SparseTensor":
        """CSR(C) of a 2-D tensor: ``inner_indices`` are the column of each value,
        ``outer_indices`` (rows + 1 entries) where each row starts in ``values``."""
        shape, vals = cls._check(dense_shape, values, ort_device)
        if len(shape) != 2:
            raise InvalidRequest(f"CSR needs a 2-D dense shape, got {shape}")
        inner = cls._indices_array(inner_indices, "inner_indices")
        outer = cls._indices_array(outer_indices, "outer_indices")
        nnz = vals.shape[0]
        if inner.ndim != 1 or inner.shape[0] != nnz:
            raise InvalidRequest(f"inner_indices must be 1-D with {nnz} entries (one per value)")
        if outer.ndim != 1 or outer.shape[0] != shape[0] + 1:
            raise InvalidRequest(f"outer_indices must be 1-D with {shape[0] + 1} entries (rows + 1)")
        if nnz and (inner.min() < 0 or inner.max() >= shape[1]):
            raise InvalidRequest(f"inner_indices must lie in [0, {shape[1]})")
        if outer[0] != 0 or outer[-1] != nnz or (np.diff(outer) < 0).any():
            raise InvalidRequest(f"outer_indices must rise from 0 to {nnz} (the value count)")
        return cls(OrtSparseFormat.ORT_SPARSE_CSRC, shape, vals, (inner, outer))

    def _get_c_tensor(self) -> "SparseTensor":
        return self

    def values(self) -> np.ndarray:
        """The non-zero values (read-only)."""
        return _read_only(self._values)

    def as_coo_view(self) -> _CooView:
        if self._format != OrtSparseFormat.ORT_SPARSE_COO:
            raise InvalidRequest(f"this sparse tensor is {self._format.name}, not COO")
        return _CooView(_read_only(self._indices[0]))

    get_coo_data = as_coo_view

    def as_csrc_view(self) -> _CsrView:
        if self._format != OrtSparseFormat.ORT_SPARSE_CSRC:
            raise InvalidRequest(f"this sparse tensor is {self._format.name}, not CSR(C)")
        return _CsrView(_read_only(self._indices[0]), _read_only(self._indices[1]))

    get_csrc_data = as_csrc_view

    def as_blocksparse_view(self) -> Any:
        raise InvalidRequest(f"this sparse tensor is {self._format.name}, not block-sparse "
                             f"(pyonnx creates COO and CSR(C) only)")

    def to_cuda(self, ort_device: OrtDevice) -> "SparseTensor":
        raise NotSupported("SparseTensor.to_cuda: pyonnx has no CUDA device; sparse tensors "
                           "stay in CPU memory")

    def format(self) -> OrtSparseFormat:
        return self._format

    def dense_shape(self) -> list[int]:
        return list(self._shape)

    def data_type(self) -> str:
        return f"sparse_tensor({self._elem.onnx_name})"

    def device_name(self) -> str:
        return "cpu"

    def to_dense(self) -> np.ndarray:
        """The dense array this sparse tensor stands for (pyonnx extension)."""
        fill: Any = "" if self._values.dtype == object else 0
        dense = np.full(self._shape, fill, dtype=self._values.dtype)
        if self._format == OrtSparseFormat.ORT_SPARSE_COO:
            idx = self._indices[0]
            if idx.ndim == 1:
                dense.reshape(-1)[idx] = self._values
            else:
                dense[tuple(idx.T)] = self._values
        else:
            inner, outer = self._indices
            rows = np.repeat(np.arange(self._shape[0]), np.diff(outer))
            dense[rows, inner] = self._values
        return dense
