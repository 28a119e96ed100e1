"""Reading and writing ONNX files: ``load``, ``save``, ``serialize``.

This package is the only code that touches protobuf; everything else works on :mod:`pyonnx.ir`.
"""

from __future__ import annotations

import os
from typing import Any

from pyonnx.errors import DecodeError, InvalidArgument, PyOnnxError, UnsupportedOperatorError
from pyonnx.ir import Model, Tensor

__all__ = ["load", "save", "serialize", "load_model_proto_bytes"]

_TWO_GIB = 2**31


def _check_versions(model: Model) -> None:
    """A model newer than pyonnx knows is refused, naming the versions pyonnx supports."""
    from pyonnx import defs

    if model.ir_version > defs.MAX_IR_VERSION:
        raise UnsupportedOperatorError(
            f"model has IR version {model.ir_version}; pyonnx supports IR versions 1 to "
            f"{defs.MAX_IR_VERSION}. Convert the model to an older IR version or upgrade pyonnx.")
    for domain, version in model.opset_imports.items():
        top = defs.max_opset(domain)
        if top is not None and version > top:
            name = domain or "ai.onnx"
            raise UnsupportedOperatorError(
                f"model imports opset {version} of domain {name!r}; pyonnx supports {name} "
                f"opsets 1 to {top}. Convert the model to opset {top} or upgrade pyonnx.")


def load_model_proto_bytes(data: bytes) -> Any:
    """Parse bytes into a ModelProto, turning every protobuf failure into DecodeError."""
    from pyonnx.io import proto as P

    mp = P.ModelProto()
    try:
        mp.ParseFromString(data)
    except Exception as e:  # protobuf raises DecodeError, RecursionError, ValueError…
        raise DecodeError(f"not a valid ONNX model: the bytes do not parse as a ModelProto "
                          f"({type(e).__name__}: {e})") from e
    if not mp.HasField("graph"):
        raise DecodeError("not a valid ONNX model: it has no graph (is this an ONNX file?)")
    _check_strings(mp)
    return mp


def _check_strings(mp: Any) -> None:
    """Refuse a string field that is not UTF-8 (protobuf hands such proto2 fields back as
    bytes, which no name lookup or message expects). Walks iteratively: nesting is bounded
    only later."""
    from google.protobuf.descriptor import FieldDescriptor

    string, message = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE
    stack = [mp]
    while stack:
        msg = stack.pop()
        for fd, value in msg.ListFields():
            if fd.type == string:
                bad = [v for v in value if not isinstance(v, str)] \
                    if fd.is_repeated else \
                    ([] if isinstance(value, str) else [value])
                if bad:
                    raise DecodeError(
                        f"not a valid ONNX model: field {fd.name!r} of a "
                        f"{msg.DESCRIPTOR.name} holds {bytes(bad[0])[:40]!r}, which is not UTF-8 "
                        f"text")
            elif fd.type == message:
                if fd.is_repeated:
                    stack.extend(value)
                else:
                    stack.append(value)


def load(source: Any, *, base_dir: str | os.PathLike | None = None,
         allow_hardlinks: bool = False, max_nesting_depth: int = 64,
         check_versions: bool = True) -> Model:
    """Read a model from a path, bytes, a binary file object, or a protobuf message.

    External data is resolved against the model file's folder (or ``base_dir`` for bytes), must
    really lie inside the real folder of the model file, and is read lazily. ``allow_hardlinks`` accepts data files with several hard links (refused
    by default: a hard link can alias any file). Raises :class:`DecodeError` for unreadable or
    unsafe input and :class:`UnsupportedOperatorError` for a model newer than pyonnx supports.
    """
    from pyonnx.io.external_data import model_dirs
    from pyonnx.io.serde import DecodeOptions, model_from_proto

    real_base: str | None = None
    trusted: str | None = None
    main_raw: dict[int, Any] | None = None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            lean = _lean_read(path)
            if lean is None:
                with open(path, "rb") as f:
                    data = f.read()
            else:
                data, main_raw = lean
        except OSError as e:
            raise DecodeError(f"cannot read model file {path!r}: {e.strerror or e}") from e
        real_base, trusted = model_dirs(path)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "SerializeToString"):
        data = source.SerializeToString()
    elif hasattr(source, "read"):
        data = source.read()
        name = getattr(source, "name", None)
        if isinstance(name, str) and os.path.exists(name):
            real_base, trusted = model_dirs(name)
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidArgument("load() needs a binary file object (opened with 'rb')")
    else:
        raise InvalidArgument(f"load() takes a path, bytes, a binary file or a ModelProto, "
                              f"not {type(source).__name__}")
    if base_dir is not None:
        real_base, trusted = os.fspath(base_dir), None
    mp = load_model_proto_bytes(bytes(data))
    big = main_raw is not None or len(data) >= _LEAN_MIN_FILE_BYTES
    # the parsed message holds its own copy of every byte: drop the file's before decoding
    # copies the tensors' raw data out of the message
    del data
    opts = DecodeOptions(base_dir=real_base, trusted_dir=trusted, allow_hardlinks=allow_hardlinks,
                         max_nesting_depth=max_nesting_depth, main_raw=main_raw)
    try:
        model = model_from_proto(mp, opts)
    except PyOnnxError:
        raise
    except RecursionError as e:
        raise DecodeError("model is nested too deeply to decode") from e
    if check_versions:
        _check_versions(model)
    del mp
    if big:  # (a quarter of a millisecond: not for every small model)
        _return_freed_memory()
    return model


#: files from this size on are read by :mod:`pyonnx.io.lean_load` (weights read once)
_LEAN_MIN_FILE_BYTES = 1 << 20


def _lean_read(path: str) -> tuple[bytes, dict[int, Any]] | None:
    """The model file's bytes without the main graph's large raw data, and that data read
    straight from the file (one copy of the weights, not three); None to read it whole."""
    from pyonnx.io import lean_load

    if os.path.getsize(path) < _LEAN_MIN_FILE_BYTES:
        return None
    mapped = lean_load.map_file(path)
    if mapped is None:
        return None
    buf, _ = mapped
    try:
        split = lean_load.split_raw_data(buf)
    finally:
        buf.close()
    if split is None:
        return None
    rest, regions = split
    return rest, lean_load.read_regions(path, regions)


def _return_freed_memory() -> None:
    """Give the memory that parsing freed back to the system (glibc keeps freed blocks in its
    heap otherwise: 160 MB of a 250 MB model's parse stayed resident). A no-op elsewhere."""
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        trim = getattr(libc, "malloc_trim", None)
        if trim is not None:
            trim(0)
    except OSError:
        pass


def serialize(model: Model) -> bytes:
    """The model as ONNX protobuf bytes (all tensor data inline)."""
    from pyonnx.io.serde import model_to_proto

    _check_inline_size(model)
    return model_to_proto(model).SerializeToString()


def _check_inline_size(model: Model) -> None:
    total = sum(t.nbytes for t in _all_tensors(model))
    if total >= _TWO_GIB:
        raise InvalidArgument(
            f"model tensors take {total} bytes, over the 2 GiB protobuf limit; save it with "
            f"save(model, path, external_data=True)")


def _all_tensors(model: Model) -> list[Tensor]:
    from pyonnx.ir import AttributeType

    out: list[Tensor] = []
    graphs = [model.graph] + [f.graph for f in model.functions]
    while graphs:
        g = graphs.pop()
        out.extend(v.const_value for v in g.initializers.values()
                   if isinstance(v.const_value, Tensor))
        for n in g.nodes:
            for a in n.attributes.values():
                if a.type == AttributeType.TENSOR and a.value is not None:
                    out.append(a.value)
                elif a.type == AttributeType.TENSORS:
                    out.extend(a.value)
            graphs.extend(n.subgraphs())
    return out


def save(model: Model, path: str | os.PathLike, *, external_data: bool = False,
         size_threshold: int = 1024, location: str | None = None) -> None:
    """Write the model to ``path``.

    With ``external_data=True``, every initializer and tensor attribute of at least
    ``size_threshold`` bytes goes to one data file ``location`` (default: the model file's name
    plus ``.data``) next to the model; the rest stays inline. A model over 2 GiB must be saved
    with external data, and says so otherwise.

    Saving with external data streams: each tensor goes to the data file chunk by chunk,
    straight from its memory (a memory-mapped weight of a loaded model is read through its
    mapping, whose pages are released as they are written), and the protobuf holds only the
    references. Saving a model with gigabytes of weights costs tens of megabytes.
    """
    from pyonnx.io import proto as P
    from pyonnx.io.external_data import DataFileWriter
    from pyonnx.io.serde import model_to_proto, tensor_to_proto

    path = os.fspath(path)
    if not external_data:
        _check_inline_size(model)
        data = model_to_proto(model).SerializeToString()
    else:
        base_dir = os.path.dirname(os.path.abspath(path))
        loc = location or os.path.basename(path) + ".data"
        target = os.path.join(base_dir, loc)
        if os.path.exists(target):
            # start from an empty data file. A weight mapped from this very file stays
            # readable: the mapping holds the old file, and the new one is a new file
            os.remove(target)
        with DataFileWriter(base_dir, loc) as writer:

            def encode(t: Tensor, name: str | None = None) -> Any:
                if t.data_type.name == "STRING" or t.nbytes < size_threshold:
                    return tensor_to_proto(t, name)
                tp = tensor_to_proto(t, name, with_data=False)
                entry = writer.append(tp.name, _wire_chunks(t))
                tp.data_location = P.TensorProto.EXTERNAL
                for k, v in entry.items():
                    e = tp.external_data.add()
                    e.key, e.value = k, str(v)
                return tp

            data = model_to_proto(model, encode).SerializeToString()
    with open(path, "wb") as f:
        f.write(data)


def _wire_chunks(t: Tensor) -> Any:
    """The tensor's bytes in the file's layout (little-endian; 2-, 4- and 6-bit types packed),
    as consecutive chunks, never the whole tensor copied at once."""
    import numpy as np

    from pyonnx.io.external_data import CHUNK_BYTES, array_chunks
    from pyonnx.io.serde import pack_bits

    arr = t.numpy()
    bits = t.data_type.itemsize_bits
    if bits in (2, 4, 6):
        # packed: a chunk of a multiple of 8 elements packs into whole bytes
        flat = arr.reshape(-1)
        per = max(8, CHUNK_BYTES // 8 * 8)
        return (pack_bits(flat[i:i + per], bits) for i in range(0, flat.size, per))
    if arr.dtype != t.data_type.numpy:
        arr = arr.astype(t.data_type.numpy)
    return array_chunks(np.asarray(arr))
