"""LoRA adapters in onnxruntime's adapter file format: :class:`AdapterFormat` (read, write) and
:class:`LoraAdapter` (parameters a run feeds in, via ``RunOptions.add_active_adapter``).

An adapter file holds named tensors (the adapter's parameters) plus two version numbers. Its
layout is onnxruntime's: a FlatBuffers buffer with file identifier ``TORT`` whose root table
``Adapter`` has ``format_version`` (1), ``adapter_version``, ``model_version`` and a vector of
``Parameter`` tables (``name``, ``dims`` as int64, ``data_type`` as the ONNX element type
number, ``raw_data`` little-endian bytes aligned to 8). pyonnx reads and writes that layout
with ``struct`` (the schema is small and fixed), so files go both ways between the engines.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import numpy as np

from pyonnx.errors import AdapterFileError, InvalidArgument
from pyonnx.ir import DataType
from pyonnx.runtime.ortvalue import OrtValue

__all__ = ["AdapterFormat", "LoraAdapter", "read_adapter_file", "write_adapter_file"]

_IDENTIFIER = b"TORT"
_FORMAT_VERSION = 1
_MAX_DATA_TYPE = 20  # the adapter schema lists element types up to FLOAT8E5M2FNUZ


# ---------------------------------------------------------------------------- writing


class _Writer:
    """Lays a FlatBuffers buffer out front to back: each table is followed by what it points
    to, so every unsigned offset points forward, as the format requires."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def pad(self, alignment: int, extra: int = 0) -> None:
        """Pad so that what follows the next ``extra`` bytes (a length prefix) starts at a
        multiple of ``alignment``."""
        while (len(self.buf) + extra) % alignment:
            self.buf.append(0)

    def table(self, fields: list[tuple[str, Any]]) -> tuple[int, list[int]]:
        """Write a vtable and its table of 4-byte fields (``("i", int)`` or ``("o", None)`` for an
        offset patched later); return the table position and each field's position."""
        self.pad(2)
        vt_pos = len(self.buf)
        table_size = 4 + 4 * len(fields)
        self.buf += struct.pack(f"<{2 + len(fields)}H", 4 + 2 * len(fields), table_size,
                                *[4 + 4 * i for i in range(len(fields))])
        self.pad(4)
        t_pos = len(self.buf)
        self.buf += struct.pack("<i", t_pos - vt_pos)
        positions = []
        for kind, value in fields:
            positions.append(len(self.buf))
            self.buf += struct.pack("<i", value if kind == "i" else 0)
        return t_pos, positions

    def patch(self, at: int, target: int) -> None:
        self.buf[at:at + 4] = struct.pack("<I", target - at)

    def vector(self, data: bytes, count: int, elem_alignment: int) -> int:
        """Write a length-prefixed vector whose elements start ``elem_alignment``-aligned."""
        self.pad(max(4, elem_alignment), extra=4)
        pos = len(self.buf)
        self.buf += struct.pack("<I", count) + data
        return pos

    def string(self, text: str) -> int:
        raw = text.encode("utf-8")
        self.pad(4)
        pos = len(self.buf)
        self.buf += struct.pack("<I", len(raw)) + raw + b"\0"
        return pos


def write_adapter_file(path: str | os.PathLike, adapter_version: int, model_version: int,
                       parameters: dict[str, np.ndarray]) -> None:
    """Write an onnxruntime adapter file."""
    w = _Writer()
    w.buf += b"\0\0\0\0" + _IDENTIFIER
    root, (_, _, _, params_at) = w.table([("i", _FORMAT_VERSION), ("i", int(adapter_version)),
                                          ("i", int(model_version)), ("o", None)])
    w.patch(0, root)
    items = list(parameters.items())
    vec = w.vector(b"\0" * (4 * len(items)), len(items), 4)
    w.patch(params_at, vec)
    for i, (name, arr) in enumerate(items):
        dt = _adapter_type(name, arr)
        t_pos, (name_at, dims_at, _, raw_at) = w.table(
            [("o", None), ("o", None), ("i", int(dt)), ("o", None)])
        w.patch(vec + 4 + 4 * i, t_pos)
        w.patch(name_at, w.string(name))
        dims = np.asarray(arr.shape, dtype="<i8")
        w.patch(dims_at, w.vector(dims.tobytes(), dims.size, 8))
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        w.patch(raw_at, w.vector(raw, len(raw), 8))
    with open(path, "wb") as f:
        f.write(bytes(w.buf))


def _adapter_type(name: str, arr: np.ndarray) -> DataType:
    if arr.dtype == object or arr.dtype.kind in "US":
        raise InvalidArgument(f"adapter parameter {name!r}: string tensors cannot be stored in "
                              f"an adapter file")
    try:
        dt = DataType.from_numpy(arr.dtype)
    except ValueError:
        raise InvalidArgument(f"adapter parameter {name!r}: numpy {arr.dtype} has no ONNX "
                              f"element type") from None
    if arr.ndim == 0:
        # onnxruntime refuses to read a parameter without dims, so pyonnx never writes one
        raise InvalidArgument(f"adapter parameter {name!r} is a scalar; onnxruntime's adapter "
                              f"reader needs at least one dimension (reshape it to [1])")
    if int(dt) > _MAX_DATA_TYPE:
        raise InvalidArgument(f"adapter parameter {name!r}: {dt.onnx_name} is not an element "
                              f"type the adapter format stores")
    return dt


# ---------------------------------------------------------------------------- reading


class _Reader:
    """Bounds-checked reads from a FlatBuffers buffer; every fault is an AdapterFileError (a
    DecodeError) naming the file."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.what = data, what

    def fail(self, why: str) -> AdapterFileError:
        return AdapterFileError(f"{self.what} is not a valid onnxruntime adapter file: {why}")

    def unpack(self, fmt: str, pos: int) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise self.fail(f"an offset points outside the file (byte {pos})")
        return struct.unpack_from(fmt, self.data, pos)

    def fields(self, t_pos: int, count: int) -> list[int | None]:
        """Positions of a table's first ``count`` fields (None where absent)."""
        (soff,) = self.unpack("<i", t_pos)
        vt = t_pos - soff
        vt_size, _ = self.unpack("<HH", vt)
        out: list[int | None] = []
        for i in range(count):
            if 4 + 2 * i + 2 > vt_size:
                out.append(None)
                continue
            (off,) = self.unpack("<H", vt + 4 + 2 * i)
            out.append(t_pos + off if off else None)
        return out

    def follow(self, pos: int | None) -> int | None:
        if pos is None:
            return None
        (off,) = self.unpack("<I", pos)
        return pos + off

    def int32(self, pos: int | None) -> int:
        return 0 if pos is None else int(self.unpack("<i", pos)[0])

    def vector(self, pos: int | None, item: int) -> tuple[int, int]:
        start = self.follow(pos)
        if start is None:
            return 0, 0
        (n,) = self.unpack("<I", start)
        if start + 4 + n * item > len(self.data):
            raise self.fail("a vector runs past the end of the file")
        return start + 4, n

    def string(self, pos: int | None) -> str:
        start, n = self.vector(pos, 1)
        try:
            return self.data[start:start + n].decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a parameter name is not UTF-8") from None


def read_adapter_file(path: str | os.PathLike) -> tuple[int, int, int, dict[str, np.ndarray]]:
    """(format_version, adapter_version, model_version, parameters) of an adapter file."""
    what = f"adapter file {os.fspath(path)!r}"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise AdapterFileError(f"cannot read {what}: {e.strerror or e}") from e
    r = _Reader(data, what)
    if len(data) < 8 or data[4:8] != _IDENTIFIER:
        raise r.fail("it does not carry the identifier 'TORT'")
    (root_off,) = r.unpack("<I", 0)
    fmt_at, adapter_at, model_at, params_at = r.fields(root_off, 4)
    fmt = r.int32(fmt_at)
    if fmt != _FORMAT_VERSION:
        raise r.fail(f"format version {fmt} is not supported (pyonnx reads version "
                     f"{_FORMAT_VERSION})")
    start, count = r.vector(params_at, 4)
    params: dict[str, np.ndarray] = {}
    for i in range(count):
        t_pos = r.follow(start + 4 * i)
        assert t_pos is not None
        name_at, dims_at, type_at, raw_at = r.fields(t_pos, 4)
        name = r.string(name_at)
        d_start, nd = r.vector(dims_at, 8)
        dims = [int(d) for d in np.frombuffer(data, "<i8", nd, d_start)] if nd else []
        if any(d < 0 for d in dims):
            raise r.fail(f"parameter {name!r} has a negative dimension {dims}")
        code = r.int32(type_at)
        try:
            dt = DataType(code)
            dtype = np.dtype(dt.numpy)
        except (ValueError, TypeError):
            raise r.fail(f"parameter {name!r} has unknown element type {code}") from None
        if dt in (DataType.UNDEFINED, DataType.STRING):
            raise r.fail(f"parameter {name!r} has element type {dt.onnx_name}")
        raw_start, n_raw = r.vector(raw_at, 1)
        count_elems = int(np.prod(dims)) if dims else 1
        if n_raw != count_elems * dtype.itemsize:
            raise r.fail(f"parameter {name!r} holds {n_raw} bytes; dims {dims} of "
                         f"{dt.onnx_name} need {count_elems * dtype.itemsize}")
        arr = np.frombuffer(data, dtype.newbyteorder("<"), count_elems, raw_start)
        params[name] = arr.astype(dtype).reshape(dims)
    return fmt, r.int32(adapter_at), r.int32(model_at), params


# ---------------------------------------------------------------------------- the API


class AdapterFormat:
    """An adapter's parameters and versions, read from or written to an adapter file."""

    def __init__(self) -> None:
        self._format_version = _FORMAT_VERSION
        self._adapter_version = 0
        self._model_version = 0
        self._parameters: dict[str, OrtValue] = {}

    @staticmethod
    def read_adapter(file_path: str | os.PathLike) -> "AdapterFormat":
        fmt, adapter_version, model_version, params = read_adapter_file(file_path)
        out = AdapterFormat()
        out._format_version, out._adapter_version, out._model_version = \
            fmt, adapter_version, model_version
        out._parameters = {k: OrtValue(v) for k, v in params.items()}
        return out

    def export_adapter(self, file_path: str | os.PathLike) -> None:
        write_adapter_file(file_path, self._adapter_version, self._model_version,
                           {k: v.numpy() for k, v in self._parameters.items()})

    def get_format_version(self) -> int:
        return self._format_version

    def set_adapter_version(self, adapter_version: int) -> None:
        self._adapter_version = int(adapter_version)

    def get_adapter_version(self) -> int:
        return self._adapter_version

    def set_model_version(self, model_version: int) -> None:
        self._model_version = int(model_version)

    def get_model_version(self) -> int:
        return self._model_version

    def set_parameters(self, params: dict[str, OrtValue]) -> None:
        """Name -> OrtValue (a tensor) for every parameter."""
        for k, v in params.items():
            if not isinstance(v, OrtValue) or not v.is_tensor():
                raise InvalidArgument(f"adapter parameter {k!r} must be an OrtValue holding a "
                                      f"tensor, got {type(v).__name__}")
        self._parameters = dict(params)

    def get_parameters(self) -> dict[str, OrtValue]:
        return dict(self._parameters)


class LoraAdapter:
    """An adapter loaded for runs: ``RunOptions.add_active_adapter(adapter)`` feeds its
    parameters, by name, to the model's inputs (usually initializers they override)."""

    def __init__(self) -> None:
        self._parameters: dict[str, np.ndarray] = {}

    def Load(self, adapter_file_path: str | os.PathLike) -> None:  # noqa: N802 - onnxruntime's name
        """Read the adapter's parameters from an adapter file."""
        self._parameters = read_adapter_file(adapter_file_path)[3]

    def parameters(self) -> dict[str, np.ndarray]:
        """The loaded parameters (pyonnx extension)."""
        return dict(self._parameters)
