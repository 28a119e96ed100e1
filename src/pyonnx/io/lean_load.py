"""Loading a model file without holding its weights three times.

Parsing a whole ModelProto with protobuf copies every byte of the file into the message, and
reading a tensor's ``raw_data`` from the message copies it once more: with the file's own bytes,
a 250 MB model briefly took 750 MB. Here the file is scanned at the wire-format level first
(memory-mapped: only the pages holding message headers are touched), the ``raw_data`` of the
main graph's large initializers is cut out of the bytes that protobuf parses, and each one is
read straight from the file into its own array. The peak is then the weights once plus the
(small) rest of the message.

Anything unusual (a second ``graph`` field, a tensor with a segment, external data, string
data or two ``raw_data`` fields, a malformed or truncated field) makes :func:`split_raw_data`
give up, and the caller parses the whole file as before, so every error is reported exactly as
protobuf and the decoder report it.
"""

from __future__ import annotations

import mmap
import os
from typing import Any

import numpy as np

__all__ = ["MIN_RAW_BYTES", "split_raw_data", "read_regions", "map_file"]

#: raw_data below this many bytes stays in the parsed message (no gain in cutting it out)
MIN_RAW_BYTES = 4096

# field numbers (onnx.proto): ModelProto.graph, GraphProto.initializer, and TensorProto's
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_TENSOR_DATA_TYPE, _TENSOR_SEGMENT, _TENSOR_RAW_DATA, _TENSOR_DATA_LOCATION = 2, 3, 9, 14
_STRING = 8  # TensorProto.DataType.STRING: raw_data is refused for it, by the decoder

_LEN = 2  # the length-delimited wire type


class _Irregular(Exception):
    """The bytes are not the plain layout this module handles: parse them whole instead."""


def _varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    value, shift = 0, 0
    while True:
        if pos >= end or shift > 63:
            raise _Irregular
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fields(buf: Any, start: int, end: int):  # type: ignore[no-untyped-def]
    """(field number, wire type, field start, value start, value end) of each field of the
    message in ``buf[start:end]``; for a varint field the value is read into the 4th item."""
    pos = start
    while pos < end:
        first = pos
        tag, pos = _varint(buf, pos, end)
        field, wt = tag >> 3, tag & 7
        if wt == 0:
            value, pos = _varint(buf, pos, end)
            yield field, wt, first, value, pos
            continue
        if wt == 1:
            size = 8
        elif wt == 5:
            size = 4
        elif wt == _LEN:
            size, pos = _varint(buf, pos, end)
        else:
            raise _Irregular  # groups (deprecated) or a bad wire type
        if pos + size > end:
            raise _Irregular
        yield field, wt, first, pos, pos + size
        pos += size


def _tensor(buf: Any, start: int, end: int) -> tuple[list[Any], tuple[int, int]] | None:
    """The TensorProto at ``buf[start:end]`` without its raw_data, as pieces, and where the
    raw_data lies; None when it keeps its raw_data (small, or not the plain layout)."""
    raw: list[tuple[int, int, int]] = []
    plain, data_type = True, None
    for field, wt, first, vstart, vend in _fields(buf, start, end):
        if field == _TENSOR_RAW_DATA and wt == _LEN:
            raw.append((first, vstart, vend))
        elif field == _TENSOR_SEGMENT:
            plain = False
        elif field == _TENSOR_DATA_LOCATION and (wt != 0 or vstart != 0):
            plain = False
        elif field == _TENSOR_DATA_TYPE and wt == 0:
            data_type = vstart
    if not plain or len(raw) != 1 or data_type in (None, _STRING):
        return None
    first, vstart, vend = raw[0]
    if vend - vstart < MIN_RAW_BYTES:
        return None
    return [buf[start:first], buf[vend:end]], (vstart, vend - vstart)


def split_raw_data(buf: Any) -> tuple[bytes, dict[int, tuple[int, int]]] | None:
    """``(rest, regions)``: the ModelProto bytes ``buf`` with the raw_data of the main graph's
    large initializers cut out, and for each such initializer (by its position among the main
    graph's initializers) the (offset, length) of its raw_data in ``buf``. None when nothing
    is cut or the layout is not the plain one (then parse ``buf`` whole)."""
    try:
        return _split(buf)
    except _Irregular:
        return None


def _split(buf: Any) -> tuple[bytes, dict[int, tuple[int, int]]] | None:
    pieces: list[Any] = []
    regions: dict[int, tuple[int, int]] = {}
    graphs = 0
    for field, wt, first, vstart, vend in _fields(buf, 0, len(buf)):
        if field != _MODEL_GRAPH or wt != _LEN:
            pieces.append(buf[first:vend])
            continue
        graphs += 1
        graph: list[Any] = []
        k = 0
        for gfield, gwt, gfirst, gvstart, gvend in _fields(buf, vstart, vend):
            if gfield != _GRAPH_INITIALIZER or gwt != _LEN:
                graph.append(buf[gfirst:gvend])
                continue
            cut = _tensor(buf, gvstart, gvend)
            if cut is None:
                graph.append(buf[gfirst:gvend])
            else:
                rest, regions[k] = cut
                size = sum(len(p) for p in rest)
                graph += [buf[gfirst:_tag_end(buf, gfirst, gvstart)], _encode_varint(size),
                          *rest]
            k += 1
        size = sum(len(p) for p in graph)
        pieces += [buf[first:_tag_end(buf, first, vstart)], _encode_varint(size), *graph]
    if graphs != 1 or not regions:
        return None  # protobuf merges repeated message fields: leave that to protobuf
    return b"".join(pieces), regions


def _tag_end(buf: Any, first: int, vstart: int) -> int:
    """Where the tag of the field starting at ``first`` ends (its length prefix follows)."""
    return _varint(buf, first, vstart)[1]


def read_regions(path: str, regions: dict[int, tuple[int, int]]) -> dict[int, np.ndarray]:
    """Each region of the file as a fresh uint8 array, read straight into it."""
    out: dict[int, np.ndarray] = {}
    with open(path, "rb") as f:
        for k, (offset, length) in regions.items():
            a = np.empty(length, np.uint8)
            f.seek(offset)
            view = memoryview(a)
            done = 0
            while done < length:
                n = f.readinto(view[done:])
                if not n:
                    raise OSError(f"{path}: the file ended while reading tensor data")
                done += n
            out[k] = a
    return out


def map_file(path: str) -> tuple[mmap.mmap, int] | None:
    """The file read-only memory-mapped, with its size; None for an empty file."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return None
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), size
