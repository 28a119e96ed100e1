"""Tensor datatypes of the KServe v2 protocol, and how their elements travel.

KServe names datatypes with strings (``"FP32"``, ``"BYTES"``, ...), Triton's configuration with
``TYPE_*`` enum names, ONNX with ``tensor(float)`` strings; this module maps between them and
NumPy dtypes, and encodes and decodes the raw (binary) form of a tensor: the elements'
little-endian bytes, row-major, and for BYTES each element as a 4-byte little-endian length
followed by its bytes.
"""

from __future__ import annotations

import struct

import ml_dtypes
import numpy as np

from pyonnx.serving.errors import BadRequest

# KServe datatype -> NumPy dtype (BYTES: object arrays of bytes)
KSERVE_TO_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "BYTES": np.dtype(object),
}

# ONNX tensor element type (as NodeArg.type spells it) -> KServe datatype
ONNX_TO_KSERVE: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(bfloat16)": "BF16",
    "tensor(string)": "BYTES",
}

# KServe datatype <-> Triton configuration's DataType enum name
KSERVE_TO_TRITON: dict[str, str] = {k: ("TYPE_STRING" if k == "BYTES" else f"TYPE_{k}")
                                    for k in KSERVE_TO_NUMPY}
TRITON_TO_KSERVE: dict[str, str] = {v: k for k, v in KSERVE_TO_TRITON.items()}


def numpy_dtype(datatype: str, tensor: str) -> np.dtype:
    """The NumPy dtype of KServe ``datatype``; BadRequest naming ``tensor`` if it is unknown."""
    try:
        return KSERVE_TO_NUMPY[datatype]
    except KeyError:
        raise BadRequest(f"tensor {tensor!r}: unknown datatype {datatype!r} (expected one of "
                         f"{', '.join(KSERVE_TO_NUMPY)})") from None


def element_count(shape: list[int] | tuple[int, ...], tensor: str) -> int:
    """Number of elements of ``shape``; BadRequest if a dimension is negative or not an int."""
    n = 1
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool) or d < 0:
            raise BadRequest(f"tensor {tensor!r}: shape {list(shape)} must be non-negative integers")
        n *= d
    return n


def decode_raw(data: bytes | memoryview, datatype: str, shape: list[int], tensor: str) -> np.ndarray:
    """The array that raw bytes ``data`` hold; BadRequest if their size disagrees with the shape."""
    dtype = numpy_dtype(datatype, tensor)
    count = element_count(shape, tensor)
    if datatype == "BYTES":
        return np.array(_split_bytes(data, count, tensor), dtype=object).reshape(shape)
    expected = count * dtype.itemsize
    if len(data) != expected:
        raise BadRequest(f"tensor {tensor!r}: {len(data)} bytes of raw data, expected {expected} "
                         f"for {datatype} of shape {list(shape)}")
    # a copy: the request buffer may be reused, and the array must be writable and aligned
    return np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def _split_bytes(data: bytes | memoryview, count: int, tensor: str) -> list[bytes]:
    """The ``count`` length-prefixed elements of a raw BYTES tensor."""
    view = memoryview(data)
    out: list[bytes] = []
    pos = 0
    for _ in range(count):
        if pos + 4 > len(view):
            raise BadRequest(f"tensor {tensor!r}: raw BYTES data ends after {len(out)} of {count} "
                             f"elements")
        (n,) = struct.unpack_from("<I", view, pos)
        pos += 4
        if pos + n > len(view):
            raise BadRequest(f"tensor {tensor!r}: raw BYTES element {len(out)} claims {n} bytes, "
                             f"only {len(view) - pos} remain")
        out.append(bytes(view[pos:pos + n]))
        pos += n
    if pos != len(view):
        raise BadRequest(f"tensor {tensor!r}: {len(view) - pos} bytes left over after {count} "
                         f"BYTES elements")
    return out


def encode_raw(array: np.ndarray, datatype: str) -> bytes:
    """The raw (binary) form of ``array`` as KServe ``datatype``."""
    if datatype == "BYTES":
        parts = []
        for item in array.ravel():
            b = as_bytes(item)
            parts.append(struct.pack("<I", len(b)))
            parts.append(b)
        return b"".join(parts)
    dtype = KSERVE_TO_NUMPY[datatype]
    return np.ascontiguousarray(array, dtype=dtype.newbyteorder("<")).tobytes()


def as_bytes(item: object) -> bytes:
    """One BYTES element: bytes as they are, text as UTF-8."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    return str(item).encode("utf-8")


def from_json_data(data: object, datatype: str, shape: list[int], tensor: str) -> np.ndarray:
    """The array a JSON ``data`` field holds (flat or nested lists, row-major)."""
    dtype = numpy_dtype(datatype, tensor)
    count = element_count(shape, tensor)
    if not isinstance(data, list):
        data = [data]
    flat = _flatten(data, tensor)
    if len(flat) != count:
        raise BadRequest(f"tensor {tensor!r}: {len(flat)} elements of data, shape {list(shape)} "
                         f"needs {count}")
    if datatype == "BYTES":
        if not all(isinstance(x, str) for x in flat):
            raise BadRequest(f"tensor {tensor!r}: BYTES data in JSON must be strings")
        return np.array([x.encode("utf-8") for x in flat], dtype=object).reshape(shape)
    kind = dtype.kind
    for x in flat:
        ok = (isinstance(x, bool) if kind == "b" else
              isinstance(x, int) and not isinstance(x, bool) if kind in "iu" else
              isinstance(x, (int, float)) and not isinstance(x, bool))
        if not ok:
            raise BadRequest(f"tensor {tensor!r}: element {x!r} is not a {datatype} value")
    try:
        if kind in "iu":
            info = np.iinfo(dtype)
            if flat and (min(flat) < info.min or max(flat) > info.max):
                raise BadRequest(f"tensor {tensor!r}: a value is out of the range of {datatype}")
        arr = np.array(flat, dtype=np.float64 if dtype == ml_dtypes.bfloat16 else dtype)
    except (OverflowError, ValueError) as e:
        raise BadRequest(f"tensor {tensor!r}: data does not fit {datatype}: {e}") from None
    return arr.astype(dtype).reshape(shape)


def _flatten(data: list, tensor: str) -> list:
    out: list = []
    stack = [iter(data)]
    while stack:
        for x in stack[-1]:
            if isinstance(x, list):
                stack.append(iter(x))
                break
            if isinstance(x, dict) or x is None:
                raise BadRequest(f"tensor {tensor!r}: data holds {type(x).__name__} values")
            out.append(x)
        else:
            stack.pop()
    return out


def to_json_data(array: np.ndarray, datatype: str, tensor: str) -> list:
    """``array`` as the flat JSON list of a KServe output's ``data``."""
    if datatype == "BYTES":
        out = []
        for item in array.ravel():
            try:
                out.append(as_bytes(item).decode("utf-8"))
            except UnicodeDecodeError:
                raise BadRequest(f"output {tensor!r} holds bytes that are not UTF-8 text; ask for "
                                 f"it with binary_data") from None
        return out
    if datatype == "BF16":
        return array.astype(np.float32).ravel().tolist()
    return array.ravel().tolist()
