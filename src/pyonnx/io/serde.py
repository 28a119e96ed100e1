"""Conversion between the protobuf messages and the IR (the only module that knows both).

Decoding checks what the wire format cannot: element type codes, dims, and that the byte count
of ``raw_data`` or external data agrees with the dims and element type. Every failure is a
:class:`~pyonnx.errors.DecodeError` that names the tensor, node or graph involved. Tensor data is
decoded lazily, on first access.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from pyonnx.errors import DecodeError, InvalidArgument, ResourceLimitExceeded
from pyonnx.io import proto as P
from pyonnx.io.external_data import load_external
from pyonnx.ir import (
    Attribute,
    AttributeType,
    DataType,
    Function,
    Graph,
    MapType,
    Model,
    Node,
    OpaqueType,
    OptionalType,
    SequenceType,
    SparseTensor,
    SparseTensorType,
    Tensor,
    TensorType,
    Type,
    Value,
)

__all__ = [
    "DecodeOptions",
    "model_from_proto",
    "model_to_proto",
    "tensor_from_proto",
    "tensor_to_proto",
    "type_from_proto",
    "type_to_proto",
    "pack_bits",
    "unpack_bits",
]


@dataclasses.dataclass
class DecodeOptions:
    """What decoding needs beyond the message: where external data lives and the limits.

    ``base_dir`` is the folder external-data locations are relative to (the model path's folder;
    None when the model came from bytes: external data is then refused); ``trusted_dir`` is the
    folder the data files must really lie in (the real folder of the model file; by default the
    real path of ``base_dir``). ``max_nesting_depth`` bounds subgraph nesting. ``main_raw``
    holds the raw data cut out of the main graph's initializers before parsing (by their
    position among the initializers; see :mod:`pyonnx.io.lean_load`).
    """

    base_dir: str | None = None
    trusted_dir: str | None = None
    allow_hardlinks: bool = False
    max_nesting_depth: int = 64
    main_raw: dict[int, Any] | None = None


# --------------------------------------------------------------------------- bit packing


def unpack_bits(raw: bytes | memoryview | np.ndarray, count: int, bits: int) -> np.ndarray:
    """Unpack ``count`` values of ``bits`` bits each from a little-endian bit stream (uint8 out).

    Element i occupies bits [i*bits, (i+1)*bits) of the stream, lowest bit first: the layout ONNX
    uses for int4/uint4/float4 (two per byte, low nibble first), int2/uint2 and float6.
    """
    data = np.frombuffer(raw, dtype=np.uint8) if not isinstance(raw, np.ndarray) else raw
    if bits == 4:
        out = np.empty(data.size * 2, dtype=np.uint8)
        out[0::2] = data & 0x0F
        out[1::2] = data >> 4
        return out[:count]
    stream = np.unpackbits(data, bitorder="little")[: count * bits].reshape(count, bits)
    weights = (1 << np.arange(bits, dtype=np.uint8)).astype(np.uint8)
    return (stream * weights).sum(axis=1, dtype=np.uint8)


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """The inverse of :func:`unpack_bits`: values' low ``bits`` bits as a packed byte stream."""
    v = np.ascontiguousarray(values).reshape(-1).view(np.uint8) & ((1 << bits) - 1)
    if bits == 4:
        if v.size % 2:
            v = np.concatenate([v, np.zeros(1, np.uint8)])
        return (v[0::2] | (v[1::2] << 4)).astype(np.uint8).tobytes()
    stream = np.unpackbits(v[:, None], axis=1, bitorder="little")[:, :bits].reshape(-1)
    return np.packbits(stream, bitorder="little").tobytes()


# --------------------------------------------------------------------------- tensors

# which repeated field holds each element type when raw_data is not used
_INT32_FIELD = {DataType.INT32, DataType.INT16, DataType.INT8, DataType.UINT16, DataType.UINT8,
                DataType.BOOL, DataType.FLOAT16, DataType.BFLOAT16, DataType.FLOAT8E4M3FN,
                DataType.FLOAT8E4M3FNUZ, DataType.FLOAT8E5M2, DataType.FLOAT8E5M2FNUZ,
                DataType.FLOAT8E8M0, DataType.UINT4, DataType.INT4, DataType.FLOAT4E2M1,
                DataType.UINT2, DataType.INT2, DataType.FLOAT6E2M3, DataType.FLOAT6E3M2}
_UINT64_FIELD = {DataType.UINT32, DataType.UINT64}


def _data_type(code: int, what: str) -> DataType:
    try:
        dt = DataType(code)
    except ValueError:
        raise DecodeError(f"{what} has unknown data_type {code}; pyonnx knows codes 1 to "
                          f"{max(DataType)}") from None
    if dt == DataType.UNDEFINED:
        raise DecodeError(f"{what} has data_type UNDEFINED (0); set a real element type")
    return dt


#: NumPy arrays have at most this many dimensions.
MAX_RANK = 64
_MAX_NBYTES = 2**63 - 1  # NumPy sizes are signed 64-bit


def _dims(dims: Iterable[int], what: str) -> tuple[int, ...]:
    out = tuple(int(d) for d in dims)
    for d in out:
        if d < 0:
            raise DecodeError(f"{what} has a negative dimension {d} in dims {list(out)}")
    if len(out) > MAX_RANK:
        raise DecodeError(f"{what} has {len(out)} dims; pyonnx (NumPy) supports at most "
                          f"{MAX_RANK}")
    # NumPy refuses a shape whose non-zero dims multiply past its signed 64-bit size, even when
    # another dim is 0; computed in Python integers, so nothing wraps around
    n = 16  # the widest element (complex128)
    for d in out:
        n *= d or 1
    if n > _MAX_NBYTES:
        raise DecodeError(f"{what} has dims {list(out)}, which multiply past 2**63 bytes: no "
                          f"array can have that shape")
    return out


def _expected_nbytes(dt: DataType, count: int) -> int:
    return (count * dt.itemsize_bits + 7) // 8


def _from_raw(raw: Any, dt: DataType, dims: tuple[int, ...], count: int) -> np.ndarray:
    bits = dt.itemsize_bits
    if bits in (2, 4, 6):
        return unpack_bits(raw, count, bits).view(dt.numpy).reshape(dims)
    return np.frombuffer(raw, dtype=dt.numpy, count=count).reshape(dims)


def _from_fields(tp: Any, dt: DataType, dims: tuple[int, ...], count: int, what: str) -> np.ndarray:
    if dt == DataType.STRING:
        vals = list(tp.string_data)
        arr = np.empty(len(vals), dtype=object)
        arr[:] = [v.decode("utf-8", errors="surrogateescape") for v in vals]
    elif dt in (DataType.FLOAT, DataType.COMPLEX64):
        arr = np.array(tp.float_data, dtype=np.float32)
        if dt == DataType.COMPLEX64:
            arr = arr.view(np.complex64) if arr.size % 2 == 0 else arr
    elif dt in (DataType.DOUBLE, DataType.COMPLEX128):
        arr = np.array(tp.double_data, dtype=np.float64)
        if dt == DataType.COMPLEX128:
            arr = arr.view(np.complex128) if arr.size % 2 == 0 else arr
    elif dt == DataType.INT64:
        arr = np.array(tp.int64_data, dtype=np.int64)
    elif dt in _UINT64_FIELD:
        arr = np.array(tp.uint64_data, dtype=np.uint64).astype(dt.numpy)
    elif dt in _INT32_FIELD:
        raw32 = np.array(tp.int32_data, dtype=np.int64)
        bits = dt.itemsize_bits
        if bits in (2, 4):
            # packed: each int32 entry holds one byte of the packed stream
            need = -(-count * bits // 8)
            if raw32.size != need:
                raise DecodeError(f"{what} has {raw32.size} packed bytes in int32_data for dims "
                                  f"{list(dims)} ({need} expected: {count} values of {bits} "
                                  f"bits)")
            arr = unpack_bits(raw32.astype(np.uint8), count, bits).view(dt.numpy)
        elif bits == 6:
            arr = (raw32.astype(np.uint8) & 0x3F).view(dt.numpy)
        elif bits == 8:
            arr = raw32.astype(np.uint8).view(dt.numpy) if dt.numpy.kind not in "ib" else \
                raw32.astype(dt.numpy)
        else:  # 16-bit types: float16/bfloat16 keep their bit patterns in int32_data
            arr = raw32.astype(np.uint16).view(dt.numpy) if dt.numpy.kind not in "iu" else \
                raw32.astype(dt.numpy)
    else:
        raise DecodeError(f"{what}: element type {dt.name} cannot be stored in typed fields")
    if arr.size != count:
        raise DecodeError(f"{what} has {arr.size} values for dims {list(dims)} "
                          f"({count} expected)")
    return arr.reshape(dims)


def tensor_from_proto(tp: Any, opts: DecodeOptions, what: str | None = None,
                      raw: Any = None) -> Tensor:
    """Decode a TensorProto into a lazily-loaded :class:`Tensor` (sizes checked up front);
    ``raw``, when given, is the tensor's raw_data, cut out of the message before parsing."""
    name = tp.name
    what = what or f"tensor {name!r}"
    if tp.HasField("segment"):
        raise DecodeError(f"{what} uses segments, which pyonnx does not support; save the "
                          f"tensor whole")
    dt = _data_type(tp.data_type, what)
    dims = _dims(tp.dims, what)
    count = math.prod(dims)
    external = None
    if tp.data_location == P.TensorProto.EXTERNAL:
        entries: dict[str, str] = {}
        for e in tp.external_data:
            if e.key in entries:
                raise DecodeError(f"{what}: external_data key {e.key!r} given twice")
            entries[e.key] = e.value
        external = entries
        if dt == DataType.STRING:
            raise DecodeError(f"{what}: string tensors cannot use external data")
        if opts.base_dir is None:
            raise DecodeError(f"{what} keeps its data in an external file, but the model was "
                              f"given as bytes: load it from its path so the data can be found")
        expected = _expected_nbytes(dt, count)
        base = opts.base_dir
        hard = opts.allow_hardlinks

        # the checks (path, size) run now; only the data is read later
        region = load_external(entries, base, name, expected, allow_hardlinks=hard,
                               trusted_dir=opts.trusted_dir)

        def loader() -> np.ndarray:
            return _from_raw(region, dt, dims, count)

        return Tensor(name, dt, dims, loader=loader, doc_string=tp.doc_string,
                      metadata_props=_props(tp.metadata_props), external=external)
    if raw is not None or tp.HasField("raw_data"):
        if dt == DataType.STRING:
            raise DecodeError(f"{what}: string tensors cannot use raw_data; use string_data")
        if raw is None:
            raw = tp.raw_data
        expected = _expected_nbytes(dt, count)
        if len(raw) != expected:
            raise DecodeError(f"{what}: Data size mismatch: raw_data has {len(raw)} bytes but "
                              f"dims {list(dims)} of {dt.name} need {expected}")

        def loader() -> np.ndarray:
            return _from_raw(raw, dt, dims, count)
    else:
        # typed fields are small in practice (large tensors use raw_data); checking the count now
        arr = _from_fields(tp, dt, dims, count, what)

        def loader() -> np.ndarray:
            return arr
    return Tensor(name, dt, dims, loader=loader, doc_string=tp.doc_string,
                  metadata_props=_props(tp.metadata_props))


def tensor_to_proto(t: Tensor, name: str | None = None, *, with_data: bool = True) -> Any:
    """Encode a :class:`Tensor` as a TensorProto with raw_data (string_data for strings); with
    ``with_data=False`` only name, type, dims and annotations (for a writer that stores the
    data elsewhere)."""
    tp = P.TensorProto()
    tp.name = t.name if name is None else name
    tp.data_type = int(t.data_type)
    tp.dims.extend(t.dims)
    if t.doc_string:
        tp.doc_string = t.doc_string
    _set_props(tp.metadata_props, t.metadata_props)
    if not with_data:
        return tp
    arr = t.numpy()
    if t.data_type == DataType.STRING:
        tp.string_data.extend(
            s.encode("utf-8", errors="surrogateescape") if isinstance(s, str) else bytes(s)
            for s in arr.reshape(-1))
        return tp
    tp.raw_data = tensor_bytes(t)
    return tp


def tensor_bytes(t: Tensor) -> bytes:
    """The tensor's data in the wire format's little-endian (bit-packed where needed) layout."""
    arr = t.numpy()
    bits = t.data_type.itemsize_bits
    if bits in (2, 4, 6):
        return pack_bits(arr, bits)
    arr = np.ascontiguousarray(arr, dtype=t.data_type.numpy)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr.tobytes()


def _sparse_from_proto(sp: Any, opts: DecodeOptions, what: str) -> SparseTensor:
    values = tensor_from_proto(sp.values, opts, f"{what} values")
    indices = tensor_from_proto(sp.indices, opts, f"{what} indices")
    dims = _dims(sp.dims, what)
    if len(values.dims) != 1:
        raise DecodeError(f"{what}: values must be 1-D, got dims {list(values.dims)}")
    if indices.data_type != DataType.INT64:
        raise DecodeError(f"{what}: indices must be int64, got {indices.data_type.name}")
    nnz = values.dims[0]
    if indices.dims not in ((nnz,), (nnz, len(dims))):
        raise DecodeError(f"{what}: indices dims {list(indices.dims)} must be [{nnz}] or "
                          f"[{nnz}, {len(dims)}]")
    return SparseTensor(values, indices, dims)


def _sparse_to_proto(st: SparseTensor) -> Any:
    sp = P.SparseTensorProto()
    sp.values.CopyFrom(tensor_to_proto(st.values))
    sp.indices.CopyFrom(tensor_to_proto(st.indices))
    sp.dims.extend(st.dims)
    return sp


# --------------------------------------------------------------------------- types


def _dim_from_proto(d: Any) -> int | None:
    """A ``dim_value`` as an IR dim: its size, or None (unknown) when it is negative.

    Exporters write ``dim_value: -1`` for a dynamic dimension (Paddle does for every batch
    axis); onnx's checker accepts it and onnxruntime treats any negative value as unknown, so a
    negative value is decoded here as the IR's one spelling of an unknown dim. Doing it at decode
    time (not in feed validation) means the checker, shape inference, ``NodeArg.shape`` (None,
    as onnxruntime shows it) and the feed checks all see the same thing; saving writes the dim
    back without a value, the canonical unknown. 0 stays a legal empty dimension.
    """
    v = int(d.dim_value)
    return v if v >= 0 else None


def type_from_proto(tp: Any, what: str = "type") -> Type | None:
    """Decode a TypeProto; None for an empty (unset) type."""
    which = tp.WhichOneof("value")
    if which is None:
        return None
    if which == "tensor_type" or which == "sparse_tensor_type":
        t = getattr(tp, which)
        elem = _data_type(t.elem_type, what) if t.elem_type else DataType.UNDEFINED
        shape = None
        denots = None
        if t.HasField("shape"):
            dims: list[int | str | None] = []
            dn: list[str] = []
            for d in t.shape.dim:
                k = d.WhichOneof("value")
                dims.append(_dim_from_proto(d) if k == "dim_value" else
                            d.dim_param if k == "dim_param" else None)
                dn.append(d.denotation)
            shape = tuple(dims)
            denots = tuple(dn) if any(dn) else None
        if which == "sparse_tensor_type":
            return SparseTensorType(elem, shape)
        return TensorType(elem, shape, denots)
    if which == "sequence_type":
        return SequenceType(type_from_proto(tp.sequence_type.elem_type, what))
    if which == "map_type":
        return MapType(_data_type(tp.map_type.key_type, what),
                       type_from_proto(tp.map_type.value_type, what))
    if which == "optional_type":
        return OptionalType(type_from_proto(tp.optional_type.elem_type, what))
    if which == "opaque_type":
        return OpaqueType(tp.opaque_type.domain, tp.opaque_type.name)
    raise DecodeError(f"{what}: unsupported type kind {which}")


def type_to_proto(t: Type | None, out: Any = None) -> Any:
    """Encode a type into a (new or given) TypeProto."""
    tp = P.TypeProto() if out is None else out
    if t is None:
        return tp
    if isinstance(t, (TensorType, SparseTensorType)):
        dst = tp.tensor_type if isinstance(t, TensorType) else tp.sparse_tensor_type
        dst.elem_type = int(t.elem_type)
        if t.shape is not None:
            dst.shape.SetInParent()
            den = getattr(t, "denotations", None)
            for i, d in enumerate(t.shape):
                dim = dst.shape.dim.add()
                if isinstance(d, int):
                    if not 0 <= d < 2**63:
                        # a hand-built IR can hold any int; the file's dims are int64 sizes
                        raise InvalidArgument(
                            f"dimension {i} of type {t} is {d}: a known dimension is a size in "
                            f"0..2**63-1 (use None or a symbolic name for an unknown one)")
                    dim.dim_value = d
                elif isinstance(d, str):
                    dim.dim_param = d
                if den and den[i]:
                    dim.denotation = den[i]
    elif isinstance(t, SequenceType):
        tp.sequence_type.SetInParent()
        if t.elem_type is not None:
            type_to_proto(t.elem_type, tp.sequence_type.elem_type)
    elif isinstance(t, MapType):
        tp.map_type.key_type = int(t.key_type)
        if t.value_type is not None:
            type_to_proto(t.value_type, tp.map_type.value_type)
    elif isinstance(t, OptionalType):
        tp.optional_type.SetInParent()
        if t.elem_type is not None:
            type_to_proto(t.elem_type, tp.optional_type.elem_type)
    elif isinstance(t, OpaqueType):
        tp.opaque_type.SetInParent()
        if t.domain:
            tp.opaque_type.domain = t.domain
        if t.name:
            tp.opaque_type.name = t.name
    return tp


# --------------------------------------------------------------------------- helpers


def _props(entries: Iterable[Any]) -> dict[str, str]:
    return {e.key: e.value for e in entries}


def _set_props(field: Any, props: dict[str, str]) -> None:
    for k, v in props.items():
        e = field.add()
        e.key = k
        e.value = v


def _s(b: bytes) -> str:
    return b.decode("utf-8", errors="surrogateescape")


def _b(s: str | bytes) -> bytes:
    return s if isinstance(s, bytes) else s.encode("utf-8", errors="surrogateescape")


# --------------------------------------------------------------------------- graphs


class _Decoder:
    """Decodes graphs with lexical scoping: a subgraph sees the values of its enclosing graphs."""

    def __init__(self, opts: DecodeOptions) -> None:
        self.opts = opts
        # the raw data cut out of the main graph's initializers: for the first graph decoded
        self._main_raw = opts.main_raw or {}

    def attribute(self, ap: Any, scope: dict[str, Value], where: str, depth: int,
                  parent: Graph | None) -> Attribute:
        what = f"attribute {ap.name!r} of {where}"
        if ap.ref_attr_name:
            return Attribute(ap.name, AttributeType(ap.type) if ap.type in AttributeType._value2member_map_
                             else AttributeType.UNDEFINED, None, ref_attr_name=ap.ref_attr_name,
                             doc_string=ap.doc_string)
        atype = ap.type
        if atype == 0:  # very old files leave type unset: infer it from the field that is set
            atype = _infer_attr_type(ap)
        try:
            at = AttributeType(atype)
        except ValueError:
            raise DecodeError(f"{what} has unknown type code {atype}") from None
        T = AttributeType
        if at == T.FLOAT:
            v: Any = float(ap.f)
        elif at == T.INT:
            v = int(ap.i)
        elif at == T.STRING:
            v = _s(ap.s)
        elif at == T.TENSOR:
            v = tensor_from_proto(ap.t, self.opts, f"tensor of {what}")
        elif at == T.GRAPH:
            v = self.graph(ap.g, scope, depth + 1, parent, f"{what}")
        elif at == T.SPARSE_TENSOR:
            v = _sparse_from_proto(ap.sparse_tensor, self.opts, f"sparse tensor of {what}")
        elif at == T.TYPE_PROTO:
            v = type_from_proto(ap.tp, what)
        elif at == T.FLOATS:
            v = [float(x) for x in ap.floats]
        elif at == T.INTS:
            v = [int(x) for x in ap.ints]
        elif at == T.STRINGS:
            v = [_s(x) for x in ap.strings]
        elif at == T.TENSORS:
            v = [tensor_from_proto(t, self.opts, f"tensor {i} of {what}") for i, t in enumerate(ap.tensors)]
        elif at == T.GRAPHS:
            v = [self.graph(g, scope, depth + 1, parent, f"{what}[{i}]") for i, g in enumerate(ap.graphs)]
        elif at == T.SPARSE_TENSORS:
            v = [_sparse_from_proto(s, self.opts, f"sparse tensor {i} of {what}")
                 for i, s in enumerate(ap.sparse_tensors)]
        elif at == T.TYPE_PROTOS:
            v = [type_from_proto(t, what) for t in ap.type_protos]
        else:
            raise DecodeError(f"{what} has type UNDEFINED and no value")
        return Attribute(ap.name, at, v, doc_string=ap.doc_string)

    def graph(self, gp: Any, outer: dict[str, Value] | None, depth: int,
              parent: Graph | None, where: str = "") -> Graph:
        if depth > self.opts.max_nesting_depth:
            raise ResourceLimitExceeded(
                f"subgraph {gp.name!r} ({where}) is nested {depth} levels deep, above the limit of "
                f"{self.opts.max_nesting_depth} (max_nesting_depth)")
        g = Graph(gp.name, doc_string=gp.doc_string)
        g.parent = parent
        g.metadata_props = _props(gp.metadata_props)
        local: dict[str, Value] = {}

        def new_value(name: str, t: Type | None = None) -> Value:
            v = Value(name, t)
            if name and name not in local:
                local[name] = v
            return v

        for vi in gp.input:
            v = new_value(vi.name, type_from_proto(vi.type, f"graph input {vi.name!r}"))
            v.doc_string = vi.doc_string
            v.metadata_props = _props(vi.metadata_props)
            g.inputs.append(v)
        raws, self._main_raw = self._main_raw, {}
        for k, tp in enumerate(gp.initializer):
            if tp.name in g.initializers:
                raise DecodeError(f"graph {gp.name!r} has two initializer tensors named {tp.name!r}")
            t = tensor_from_proto(tp, self.opts, raw=raws.get(k))
            v = local.get(tp.name)
            if v is None or v.const_value is not None:
                v = new_value(tp.name, TensorType(t.data_type, t.dims))
                local[tp.name] = local.get(tp.name, v)
            v.const_value = t
            g.initializers[tp.name] = v
        for sp in gp.sparse_initializer:
            st = _sparse_from_proto(sp, self.opts, f"sparse initializer {sp.values.name!r}")
            v = local.get(st.name) or new_value(st.name, SparseTensorType(st.values.data_type, st.dims))
            v.const_value = st
            g.sparse_initializers[st.name] = v
        annotated = {vi.name: vi for vi in gp.value_info}

        # outputs first so that nodes can refer to values produced later (the checker reports
        # the order); a name defined twice keeps its first definition for lookups
        node_outputs: list[list[Value]] = []
        for np_ in gp.node:
            node_outputs.append([new_value(o) if o else Value("") for o in np_.output])
        visible = dict(outer or {})
        visible.update(local)
        for np_, outs in zip(gp.node, node_outputs):
            where_n = f"node {np_.name!r} ({np_.op_type})" if np_.name else f"a {np_.op_type} node"
            inputs: list[Value | None] = []
            for name in np_.input:
                if not name:
                    inputs.append(None)
                    continue
                v = visible.get(name)
                if v is None:  # undefined: kept as a dangling value, the checker reports it
                    v = Value(name)
                    visible[name] = v
                inputs.append(v)
            attrs = [self.attribute(a, visible, where_n, depth, g) for a in np_.attribute]
            if len({a.name for a in attrs}) != len(attrs):
                dup = sorted({a.name for a in attrs if [b.name for b in attrs].count(a.name) > 1})
                raise DecodeError(f"{where_n} gives attribute(s) {dup} more than once")
            node = Node(np_.op_type, inputs, outs, domain=np_.domain, name=np_.name,
                        attributes=attrs, overload=np_.overload, doc_string=np_.doc_string,
                        metadata_props=_props(np_.metadata_props))
            g.append(node)
        for vi in gp.output:
            v = visible.get(vi.name)
            if v is None:
                v = Value(vi.name)
            t = type_from_proto(vi.type, f"graph output {vi.name!r}")
            if t is not None and (v.type is None or v.producer is not None):
                v.type = t
            if vi.doc_string:
                v.doc_string = vi.doc_string
            g.outputs.append(v)
        for name, vi in annotated.items():
            v = visible.get(name) or Value(name)
            t = type_from_proto(vi.type, f"value_info {name!r}")
            if v.producer is not None:
                if t is not None:
                    v.type = t
                g.value_info.append(v)
            else:
                # an annotation of an input, initializer or undefined name is kept as written,
                # without overriding the type that value declares itself
                g.value_info.append(_annotation(v, t) if t is not None else v)
        for qa in gp.quantization_annotation:
            g.quantization_annotation.append(
                (qa.tensor_name, _props(qa.quant_parameter_tensor_names)))
        return g

    def function(self, fp: Any) -> Function:
        g = Graph(fp.name)
        local: dict[str, Value] = {}
        for name in fp.input:
            v = Value(name)
            local[name] = v
            g.inputs.append(v)
        body = P.GraphProto()
        body.name = fp.name
        body.node.extend(fp.node)
        body.value_info.extend(fp.value_info)
        for name in fp.output:
            body.output.add().name = name
        inner = self.graph(body, local, 0, None, f"function {fp.domain}::{fp.name}")
        inner.inputs = g.inputs
        inner.name = fp.name
        defaults = [self.attribute(a, {}, f"function {fp.name!r}", 0, None) for a in fp.attribute_proto]
        return Function(fp.domain, fp.name, inner, overload=fp.overload,
                        attributes=list(fp.attribute), attribute_defaults=defaults,
                        opset_imports={o.domain: o.version for o in fp.opset_import},
                        doc_string=fp.doc_string, metadata_props=_props(fp.metadata_props))


def _annotation(v: Value, t: Type) -> Value:
    """A value_info entry for a value that is not produced by a node (kept as written)."""
    a = Value(v.name, t)
    return a


def _infer_attr_type(ap: Any) -> int:
    T = AttributeType
    for field, t in (("f", T.FLOAT), ("i", T.INT), ("s", T.STRING), ("t", T.TENSOR),
                     ("g", T.GRAPH), ("sparse_tensor", T.SPARSE_TENSOR), ("tp", T.TYPE_PROTO)):
        if ap.HasField(field):
            return int(t)
    for field, t in (("floats", T.FLOATS), ("ints", T.INTS), ("strings", T.STRINGS),
                     ("tensors", T.TENSORS), ("graphs", T.GRAPHS),
                     ("sparse_tensors", T.SPARSE_TENSORS), ("type_protos", T.TYPE_PROTOS)):
        if len(getattr(ap, field)):
            return int(t)
    return 0


#: ModelProto's optional header fields, in onnx.printer's order (see ``Model.stated_fields``)
HEADER_FIELDS = ("producer_name", "producer_version", "domain", "model_version", "doc_string")


def model_from_proto(mp: Any, opts: DecodeOptions | None = None) -> Model:
    """Decode a ModelProto into a :class:`Model`."""
    opts = opts or DecodeOptions()
    dec = _Decoder(opts)
    opsets: dict[str, int] = {}
    for o in mp.opset_import:
        if o.domain in opsets and opsets[o.domain] != int(o.version):
            raise DecodeError(f"model imports domain {o.domain or 'ai.onnx'!r} twice (versions "
                              f"{opsets[o.domain]} and {o.version}); keep one opset_import entry")
        # the same import twice (skl2onnx writes that) is harmless: onnx and onnxruntime accept it
        opsets[o.domain] = int(o.version)
    graph = dec.graph(mp.graph, None, 0, None, "main graph")
    model = Model(graph, ir_version=int(mp.ir_version), opset_imports=opsets,
                  producer_name=mp.producer_name, producer_version=mp.producer_version,
                  domain=mp.domain, model_version=int(mp.model_version),
                  doc_string=mp.doc_string, functions=[dec.function(f) for f in mp.functions],
                  metadata_props=_props(mp.metadata_props))
    model.training_info = [t.SerializeToString() for t in mp.training_info]
    model.configuration = [c.SerializeToString() for c in mp.configuration]
    model.base_dir = opts.base_dir
    model.stated_fields = {f for f in HEADER_FIELDS if mp.HasField(f)}
    return model


# --------------------------------------------------------------------------- encoding


class _Encoder:
    """Encodes IR objects; ``external`` (when set) decides which tensors go to a data file."""

    def __init__(self, tensor_encoder: Any = None, ir_version: int = 10) -> None:
        self.tensor = tensor_encoder or tensor_to_proto
        self.ir_version = ir_version

    def attribute(self, a: Attribute) -> Any:
        ap = P.AttributeProto()
        ap.name = a.name
        ap.type = int(a.type)
        if a.doc_string:
            ap.doc_string = a.doc_string
        if a.ref_attr_name:
            ap.ref_attr_name = a.ref_attr_name
            return ap
        T, v = AttributeType, a.value
        if a.type == T.FLOAT:
            ap.f = float(v)
        elif a.type == T.INT:
            ap.i = int(v)
        elif a.type == T.STRING:
            ap.s = _b(v)
        elif a.type == T.TENSOR:
            ap.t.CopyFrom(self.tensor(v))
        elif a.type == T.GRAPH:
            ap.g.CopyFrom(self.graph(v))
        elif a.type == T.SPARSE_TENSOR:
            ap.sparse_tensor.CopyFrom(_sparse_to_proto(v))
        elif a.type == T.TYPE_PROTO:
            type_to_proto(v, ap.tp)
        elif a.type == T.FLOATS:
            ap.floats.extend(float(x) for x in v)
        elif a.type == T.INTS:
            ap.ints.extend(int(x) for x in v)
        elif a.type == T.STRINGS:
            ap.strings.extend(_b(x) for x in v)
        elif a.type == T.TENSORS:
            ap.tensors.extend(self.tensor(x) for x in v)
        elif a.type == T.GRAPHS:
            ap.graphs.extend(self.graph(x) for x in v)
        elif a.type == T.SPARSE_TENSORS:
            ap.sparse_tensors.extend(_sparse_to_proto(x) for x in v)
        elif a.type == T.TYPE_PROTOS:
            for t in v:
                type_to_proto(t, ap.type_protos.add())
        return ap

    def node(self, n: Node) -> Any:
        np_ = P.NodeProto()
        np_.op_type = n.op_type
        if n.domain:
            np_.domain = n.domain
        if n.name:
            np_.name = n.name
        if n.overload:
            np_.overload = n.overload
        if n.doc_string:
            np_.doc_string = n.doc_string
        np_.input.extend(v.name if v is not None else "" for v in n.inputs)
        np_.output.extend(v.name for v in n.outputs)
        np_.attribute.extend(self.attribute(a) for a in n.attributes.values())
        _set_props(np_.metadata_props, n.metadata_props)
        return np_

    def value_info(self, v: Value, out: Any) -> Any:
        out.name = v.name
        if v.type is not None:
            type_to_proto(v.type, out.type)
        if v.doc_string:
            out.doc_string = v.doc_string
        _set_props(out.metadata_props, v.metadata_props)
        return out

    def graph(self, g: Graph) -> Any:
        gp = P.GraphProto()
        gp.name = g.name
        if g.doc_string:
            gp.doc_string = g.doc_string
        for v in g.inputs:
            self.value_info(v, gp.input.add())
        if self.ir_version < 4:
            # before IR version 4 every initializer must also be a graph input (IR.md); one a
            # rewrite created (a folded constant) is listed as an input of its own type
            listed = {v.name for v in g.inputs}
            for name, v in g.initializers.items():
                if name not in listed:
                    t = v.const_value
                    vi = gp.input.add()
                    vi.name = name
                    type_to_proto(TensorType(t.data_type, tuple(int(d) for d in t.dims)),
                                  vi.type)
        for name, v in g.initializers.items():
            gp.initializer.append(self.tensor(v.const_value, name))
        for name, v in g.sparse_initializers.items():
            gp.sparse_initializer.append(_sparse_to_proto(v.const_value))
        gp.node.extend(self.node(n) for n in g.nodes)
        for v in g.outputs:
            self.value_info(v, gp.output.add())
        for v in g.value_info:
            self.value_info(v, gp.value_info.add())
        for tensor_name, params in g.quantization_annotation:
            qa = gp.quantization_annotation.add()
            qa.tensor_name = tensor_name
            _set_props(qa.quant_parameter_tensor_names, params)
        _set_props(gp.metadata_props, g.metadata_props)
        return gp

    def function(self, f: Function) -> Any:
        fp = P.FunctionProto()
        fp.name = f.name
        fp.domain = f.domain
        if f.overload:
            fp.overload = f.overload
        fp.input.extend(v.name for v in f.graph.inputs)
        fp.output.extend(v.name for v in f.graph.outputs)
        fp.attribute.extend(f.attributes)
        fp.attribute_proto.extend(self.attribute(a) for a in f.attribute_defaults.values())
        fp.node.extend(self.node(n) for n in f.graph.nodes)
        for v in f.graph.value_info:
            self.value_info(v, fp.value_info.add())
        for d, ver in f.opset_imports.items():
            o = fp.opset_import.add()
            o.domain, o.version = d, ver
        if f.doc_string:
            fp.doc_string = f.doc_string
        _set_props(fp.metadata_props, f.metadata_props)
        return fp


def model_to_proto(model: Model, tensor_encoder: Any = None) -> Any:
    """Encode a :class:`Model`; ``tensor_encoder(tensor, name)`` may write data externally."""
    enc = _Encoder(tensor_encoder, model.ir_version)
    mp = P.ModelProto()
    mp.ir_version = model.ir_version
    for d, ver in model.opset_imports.items():
        o = mp.opset_import.add()
        o.domain, o.version = d, ver
    for field in HEADER_FIELDS:  # written when set, or stated in the file it came from
        value = getattr(model, field)
        if value or field in model.stated_fields:
            setattr(mp, field, value)
    mp.graph.CopyFrom(enc.graph(model.graph))
    mp.functions.extend(enc.function(f) for f in model.functions)
    _set_props(mp.metadata_props, model.metadata_props)
    for raw in model.training_info:
        mp.training_info.add().ParseFromString(raw)
    for raw in model.configuration:
        mp.configuration.add().ParseFromString(raw)
    return mp
