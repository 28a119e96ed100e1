"""Safe reading and writing of tensor data stored outside the model file.

A TensorProto whose ``data_location`` is EXTERNAL names its bytes with ``external_data``
key/value pairs: ``location`` (a file path relative to the model file's folder), ``offset``
and ``length`` (decimal byte counts) and ``checksum`` (accepted, not verified). A model is
untrusted input, so before any byte is read this module enforces:

* only those four keys; ``location`` present, relative, with no drive letter or UNC prefix;
* the data file's real path (every symlink resolved) lies inside the *trusted folder*, the
  real folder of the model file's real path. A ``..`` or a symlink that leads outside is
  refused; one that stays inside is fine. Because the trusted folder comes from the model
  file's real path, the Hugging Face cache layout works: there ``snapshots/<rev>/model.onnx``
  and ``snapshots/<rev>/model.onnx_data`` are both symlinks into one ``blobs/`` folder;
* the data file is a regular file with a single hard link (a hard link can alias any file
  on the volume and cannot be told apart from the original), unless the caller opts in;
* offset and length are non-negative decimal integers, the region lies within the file and,
  when the tensor's size is known, holds exactly that many bytes.

Two folders are involved, and :func:`model_dirs` computes both from the model's path:
``base_dir`` is the folder ``location`` is relative to (the model path's folder as given,
symlinks not resolved: ``snapshots/<rev>`` in the cache layout), and ``trusted_dir`` is the
real folder of the model file's real path (``blobs``). For a model that is no symlink the
two are the same folder, and ``trusted_dir`` may be left out.

Regions of :data:`MMAP_THRESHOLD` bytes or more are memory-mapped read-only, so a large
weight costs no memory until it is touched; smaller ones are read. No file descriptor stays
open after a call (a mapping holds its own duplicate, released with the array).
"""

from __future__ import annotations

import mmap
import ntpath
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import NoReturn

import numpy as np

from pyonnx.errors import DecodeError, InvalidArgument

__all__ = [
    "ALLOWED_KEYS",
    "ALIGNMENT",
    "CHUNK_BYTES",
    "DataFileWriter",
    "MMAP_THRESHOLD",
    "array_chunks",
    "load_external",
    "model_dirs",
    "write_external",
]

#: The external_data keys the ONNX IR defines; any other key is refused.
ALLOWED_KEYS = frozenset({"location", "offset", "length", "checksum"})

#: Regions at least this large are memory-mapped instead of read.
MMAP_THRESHOLD = 1 << 20

#: write_external starts every tensor at a multiple of this many bytes (one page): mapped
#: arrays are then aligned for any element type, and no page holds two tensors.
ALIGNMENT = 4096

_DECIMAL = re.compile(r"[0-9]+")  # int() would also accept "+1", " 1", "1_0" and non-ASCII digits

PathLike = str | os.PathLike


def model_dirs(model_path: PathLike) -> tuple[str, str]:
    """Return ``(base_dir, trusted_dir)`` for the external data of the model at model_path.

    base_dir is the absolute folder of model_path as given (symlinks kept), against which
    locations are resolved; trusted_dir is the real folder of the model file's real path,
    inside which every data file must really lie.
    """
    path = os.fspath(model_path)
    return os.path.dirname(os.path.abspath(path)), os.path.dirname(os.path.realpath(path))


def _problem(tensor_name: str, what: str, todo: str) -> str:
    return f"external data of tensor {tensor_name!r}: {what}; {todo}"


def _resolve_location(
    location: str,
    base_dir: PathLike,
    trusted_dir: PathLike | None,
    fail: Callable[[str, str], NoReturn],
) -> str:
    """Check location and return the real path it names, or call fail(what, todo)."""
    if not location:
        fail("'location' is empty", "set it to the data file's path relative to the model file")
    if "\0" in location:
        fail(f"location {location!r} contains a NUL character", "fix the location")
    # Windows forms are refused on every platform: a model file travels between systems.
    if (
        os.path.isabs(location)
        or location.startswith(("/", "\\"))
        or ntpath.splitdrive(location)[0]
    ):
        fail(
            f"location {location!r} is an absolute path",
            "external data must be named relative to the model file's folder; move the file "
            "next to the model and store its relative path",
        )
    base = os.path.abspath(os.fspath(base_dir))
    trusted = os.path.realpath(os.fspath(trusted_dir) if trusted_dir is not None else base)
    real = os.path.realpath(os.path.join(base, location))
    if os.path.commonpath([real, trusted]) != trusted:
        fail(
            f"location {location!r} resolves to {real!r}, outside the model's folder {trusted!r} "
            "(through '..' or a symlink)",
            "keep the data file inside the model's folder; external data may not point elsewhere",
        )
    return real


def load_external(
    entries: Mapping[str, str],
    base_dir: PathLike,
    tensor_name: str,
    expected_nbytes: int | None,
    *,
    allow_hardlinks: bool = False,
    trusted_dir: PathLike | None = None,
) -> np.ndarray:
    """Return the bytes of one externally stored tensor as a read-only 1-D uint8 array.

    entries are the tensor's external_data pairs; base_dir is the folder ``location`` is
    relative to and trusted_dir the real folder of the model file's real path (default: the
    real path of base_dir; see :func:`model_dirs` and the module docstring). expected_nbytes,
    when given, is the byte size the tensor's dims and type call for. Regions of
    MMAP_THRESHOLD bytes or more come back as a read-only memory map (np.ndarray viewing an
    mmap), smaller ones as a fresh array. Every rule broken raises DecodeError naming
    tensor_name, the fault and the fix.
    """

    def fail(what: str, todo: str) -> NoReturn:
        raise DecodeError(_problem(tensor_name, what, todo))

    unknown = sorted(set(entries) - ALLOWED_KEYS)
    if unknown:
        fail(
            f"unknown key(s) {', '.join(map(repr, unknown))}",
            f"only {', '.join(sorted(ALLOWED_KEYS))} are allowed; remove the others",
        )
    if "location" not in entries:
        fail("no 'location' key", "add the data file's path relative to the model file")

    def non_negative(key: str) -> int | None:
        if key not in entries:
            return None
        text = entries[key]
        if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
            fail(f"{key} {text!r} is not a non-negative decimal integer", f"fix the {key} entry")
        return int(text)

    offset = non_negative("offset") or 0
    length = non_negative("length")
    location = entries["location"]
    real = _resolve_location(location, base_dir, trusted_dir, fail)

    try:
        before = os.stat(real)
    except FileNotFoundError:
        fail(
            f"data file {location!r} not found (looked for {real!r})",
            "put the data file next to the model file, where its location points",
        )
    except OSError as exc:
        fail(f"cannot read data file {real!r} ({exc.strerror})", "check the file and its permissions")
    # A FIFO or device would block or never end; only plain files hold tensor data.
    if not stat.S_ISREG(before.st_mode):
        fail(f"{real!r} is not a regular file", "point location at the data file itself")

    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        fail(f"cannot open data file {real!r} ({exc.strerror})", "check the file and its permissions")
    try:
        st = os.fstat(fd)
        # The file opened must be the one checked (nothing swapped in meanwhile).
        if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISREG(st.st_mode):
            fail(f"data file {real!r} changed while being opened", "retry once nothing writes to it")
        if st.st_nlink > 1 and not allow_hardlinks:
            fail(
                f"data file {real!r} has {st.st_nlink} hard links; a hard link can alias any file",
                "copy the file so it has a single link, or pass allow_hardlinks=True if you "
                "trust the model",
            )
        size = st.st_size
        if offset > size:
            fail(f"offset {offset} is past the end of {real!r} ({size} bytes)", "fix the offset")
        if length is None:
            length = size - offset
        elif offset + length > size:
            fail(
                f"region offset {offset} + length {length} = {offset + length} passes the end of "
                f"{real!r} ({size} bytes)",
                "the data file is truncated or the entry is wrong; re-export the model",
            )
        if expected_nbytes is not None and length != expected_nbytes:
            fail(
                f"region holds {length} bytes but the tensor's dims and type need "
                f"{expected_nbytes}",
                "the entry's length or the tensor's dims are wrong; re-export the model",
            )
        if length == 0:
            out = np.empty(0, dtype=np.uint8)
        elif length >= MMAP_THRESHOLD:
            out = _map(fd, offset, length)
        else:
            out = _read(fd, offset, length, real, fail)
    finally:
        os.close(fd)
    out.flags.writeable = False
    return out


def _map(fd: int, offset: int, length: int) -> np.ndarray:
    """Map [offset, offset+length) of fd read-only; the array keeps the mapping alive."""
    start = offset - offset % mmap.ALLOCATIONGRANULARITY  # mmap offsets must be aligned
    mapped = mmap.mmap(fd, length + (offset - start), access=mmap.ACCESS_READ, offset=start)
    return np.frombuffer(mapped, dtype=np.uint8, count=length, offset=offset - start)


def _read(
    fd: int, offset: int, length: int, real: str, fail: Callable[[str, str], NoReturn]
) -> np.ndarray:
    """Read [offset, offset+length) of fd into a new array."""
    out = np.empty(length, dtype=np.uint8)
    view = memoryview(out)
    os.lseek(fd, offset, os.SEEK_SET)
    done = 0
    while done < length:
        chunk = os.read(fd, length - done)
        if not chunk:
            fail(f"{real!r} ended early while reading", "the file shrank; re-export the model")
        view[done : done + len(chunk)] = chunk
        done += len(chunk)
    return out


def write_external(
    tensors: Sequence[tuple[str, bytes | bytearray | memoryview | np.ndarray]],
    base_dir: PathLike,
    location: str,
) -> list[dict[str, str]]:
    """Append each (tensor name, bytes) to base_dir/location; return their external_data entries.

    The file is created if absent. Each tensor starts at the next multiple of ALIGNMENT
    (zero padding between), so mapped weights are page-aligned. The entries, in the order
    given, are ``{"location": location, "offset": str, "length": str}``. location follows the
    reading rules (relative, and really inside base_dir); a target file with more than one
    hard link is refused too, since writing through it would change the other names.
    Problems raise InvalidArgument naming the first tensor and saying what to do.
    """
    first = tensors[0][0] if tensors else "<none>"
    with DataFileWriter(base_dir, location, first_tensor=first) as writer:
        return [writer.append(name, array_chunks(data) if isinstance(data, np.ndarray)
                              else [memoryview(data).cast("B")])
                for name, data in tensors]


#: Bytes written per chunk when streaming a tensor: big enough that the system calls cost
#: nothing, small enough that a chunk's temporary copy (a byte swap, a bit packing) is cheap.
CHUNK_BYTES = 16 << 20


class DataFileWriter:
    """Appends tensors to one external data file, each streamed in chunks.

    Opening checks ``location`` as :func:`write_external` documents (relative, inside
    ``base_dir``, not a multiply linked file) and opens the file for appending (it is
    created if absent). :meth:`append` writes one tensor at the next multiple of
    :data:`ALIGNMENT` and returns its external_data entries. Use it as a context manager so
    the file is closed when saving fails half-way.
    """

    def __init__(self, base_dir: PathLike, location: str, *, first_tensor: str = "<none>"
                 ) -> None:
        def fail(what: str, todo: str) -> NoReturn:
            raise InvalidArgument(_problem(first_tensor, what, todo))

        real = _resolve_location(location, base_dir, None, fail)
        if os.path.lexists(real):
            st = os.stat(real)
            if not stat.S_ISREG(st.st_mode):
                fail(f"{real!r} exists and is not a regular file", "choose another location")
            if st.st_nlink > 1:
                fail(f"{real!r} has {st.st_nlink} hard links", "choose another location")
        os.makedirs(os.path.dirname(real), exist_ok=True)
        self.location = location
        self.path = real
        self._file = open(real, "ab")
        self._end = self._file.seek(0, os.SEEK_END)

    def append(self, name: str, chunks: Iterable[bytes | bytearray | memoryview]
               ) -> dict[str, str]:
        """Write one tensor's bytes, given as consecutive chunks, at the next aligned offset;
        return ``{"location", "offset", "length"}`` for it. ``name`` is for messages only."""
        pad = -self._end % ALIGNMENT
        if pad:
            self._file.write(bytes(pad))
            self._end += pad
        start = self._end
        for chunk in chunks:
            self._file.write(chunk)
            self._end += memoryview(chunk).nbytes
        return {"location": self.location, "offset": str(start),
                "length": str(self._end - start)}

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "DataFileWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def array_chunks(arr: np.ndarray, chunk_bytes: int | None = None) -> Iterator[memoryview]:
    """The array's elements in C order and little-endian byte order, as consecutive byte
    chunks of about ``chunk_bytes`` (default :data:`CHUNK_BYTES`), without a copy of the whole
    array.

    A C-contiguous little-endian array is handed out as views of its own memory; any other
    gets one temporary copy per chunk. When the array views a read-only memory map (a weight
    :func:`load_external` mapped), the pages of each chunk are given back to the system once
    the consumer has taken the next chunk: streaming a mapped multi-gigabyte weight to a file
    then keeps only about one chunk resident instead of the whole file.
    """
    chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    n = arr.size
    per = max(1, chunk_bytes // max(1, arr.itemsize))
    if arr.flags.c_contiguous and dtype == arr.dtype:
        flat = arr.reshape(-1).view(np.uint8) if n else np.empty(0, np.uint8)
        release = _page_releaser(arr)
        step = per * arr.itemsize
        for i in range(0, flat.size, step):
            yield memoryview(flat[i:i + step])
            release(flat[i:i + step])
        return
    flat_iter = arr.flat
    for i in range(0, n, per):
        part = np.asarray(flat_iter[i:i + per]).astype(dtype, copy=False)
        yield memoryview(np.ascontiguousarray(part).view(np.uint8))


def _page_releaser(arr: np.ndarray) -> Callable[[np.ndarray], None]:
    """A function dropping the pages behind a slice of arr from this process's resident set,
    when arr views a read-only memory map; a no-op otherwise.

    Only read-only (shared, file-backed) mappings qualify: their pages are read back from the
    file when touched again, so dropping them loses nothing. A writable or copy-on-write
    mapping could hold changes that exist nowhere else, and is left alone.
    """
    owner: object = arr
    while isinstance(owner, np.ndarray):
        owner = owner.base
    if isinstance(owner, memoryview):
        owner = owner.obj
    if not (isinstance(owner, mmap.mmap) and hasattr(owner, "madvise")
            and hasattr(mmap, "MADV_DONTNEED")):
        return lambda part: None
    mapped = owner
    with memoryview(mapped) as view:
        if view.readonly is False or len(view) == 0:
            return lambda part: None
    start = np.frombuffer(mapped, dtype=np.uint8).ctypes.data  # where the mapping begins
    size = len(mapped)
    page = mmap.PAGESIZE

    def release(part: np.ndarray) -> None:
        if part.size == 0:
            return
        lo = part.ctypes.data - start
        hi = lo + part.nbytes
        lo -= lo % page  # madvise wants a page-aligned start; neighbours are only re-read
        hi = min(size, hi)
        if 0 <= lo < hi:
            mapped.madvise(mmap.MADV_DONTNEED, lo, hi - lo)

    return release
