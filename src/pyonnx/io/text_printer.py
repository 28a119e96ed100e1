"""The ONNX textual syntax, printing side: :func:`to_text` turns IR objects into text.

The output follows the syntax that ``onnx.parser`` reads (docs/Syntax.md of the ONNX repository),
so the text of a model parses back (with :func:`pyonnx.io.text.parse_model` or with
``onnx.parser.parse_model``) into the same model. Tensor values are written the way that syntax
stores them in ``TensorProto``'s typed fields: float16/bfloat16/float8 elements as their unsigned
bit patterns, 4-bit and 2-bit elements as the bytes of their packed stream, complex numbers as
(real, imaginary) pairs, booleans as 0/1. Floats are written with enough digits to read back
bit for bit (NaNs keep their sign; a NaN payload has no spelling in the syntax, and reads back
as the default quiet NaN).

What the syntax has no place for is not printed: doc strings of graphs, nodes and values,
metadata_props other than the model's, dimension denotations, training_info. Sparse tensors
(sparse initializers and SPARSE_TENSOR attributes) have no spelling in the ONNX syntax either;
pyonnx writes them as ``sparse_tensor(float[3,4]) name = {values} @ int64[2] {indices}`` so that
they survive a round trip through pyonnx (``onnx.parser`` rejects that text).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from pyonnx.errors import InvalidArgument
from pyonnx.ir import (
    Attribute,
    AttributeType,
    DataType,
    Function,
    Graph,
    MapType,
    Model,
    Node,
    OptionalType,
    SequenceType,
    SparseTensor,
    SparseTensorType,
    Tensor,
    TensorType,
    Value,
)

__all__ = ["to_text", "TYPE_KEYWORDS", "is_identifier", "quote"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: Words that start a type: a value named like one is quoted, so it cannot be read as its type.
TYPE_KEYWORDS = frozenset(
    [dt.onnx_name for dt in DataType if dt != DataType.UNDEFINED]
    + ["seq", "map", "optional", "sparse_tensor", "opaque"])
# a graph-valued attribute whose graph has one of these names would read as a float literal
_FLOAT_WORDS = frozenset(["inf", "infinity", "nan"])

# float32 tensors up to this size get the shortest round-trip spelling per element (NumPy's
# Dragon4, slow per element); larger ones use 9 significant digits, which always round-trip
_SHORTEST_MAX = 4096
_INDENT = "   "


def is_identifier(s: str) -> bool:
    """Whether ``s`` can be written bare (not quoted) as a name."""
    return bool(_IDENT.match(s)) and s not in TYPE_KEYWORDS and s.lower() not in _FLOAT_WORDS


def quote(s: str) -> str:
    """A string literal: only ``"`` and ``\\`` are escaped (a backslash keeps the next char)."""
    if "\\" in s or '"' in s:
        s = s.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def _id(name: str) -> str:
    return name if is_identifier(name) else quote(name)


def _float32(v: float) -> str:
    """The shortest text that reads back as the same float32 (NaN keeps its sign)."""
    text = str(np.float32(v))
    return "-nan" if text == "nan" and math.copysign(1.0, v) < 0 else text


# --------------------------------------------------------------------------- tensor values

_BIT_PATTERN = {  # element types written as the unsigned integer of their bits
    DataType.FLOAT16: np.uint16, DataType.BFLOAT16: np.uint16,
    DataType.FLOAT8E4M3FN: np.uint8, DataType.FLOAT8E4M3FNUZ: np.uint8,
    DataType.FLOAT8E5M2: np.uint8, DataType.FLOAT8E5M2FNUZ: np.uint8,
    DataType.FLOAT8E8M0: np.uint8,
}
_PACKED = {DataType.INT4: 4, DataType.UINT4: 4, DataType.FLOAT4E2M1: 4,
           DataType.INT2: 2, DataType.UINT2: 2}
_FLOAT6 = {DataType.FLOAT6E2M3, DataType.FLOAT6E3M2}


def _join_ints(values: np.ndarray) -> str:
    return ", ".join(map(str, values.tolist()))


def _join_float32(values: np.ndarray) -> str:
    flat = values.reshape(-1)
    if flat.size <= _SHORTEST_MAX:
        text = ", ".join(flat.astype(str).tolist())
    else:  # one %-format over the whole tuple runs in C; 9 significant digits identify a float32
        text = ", ".join(["%.9g"] * flat.size) % tuple(flat.astype(np.float64).tolist())
    return _signed_nans(flat, text)


def _join_float64(values: np.ndarray) -> str:
    flat = values.reshape(-1).astype(np.float64)
    return _signed_nans(flat, ", ".join(map(repr, flat.tolist())))


def _signed_nans(flat: np.ndarray, text: str) -> str:
    """Write NaNs with the sign bit set as ``-nan`` (NaN payloads have no spelling)."""
    neg = np.isnan(flat) & np.signbit(flat)
    if not neg.any():
        return text
    parts = text.split(", ")
    for i in np.flatnonzero(neg).tolist():
        parts[i] = "-nan"
    return ", ".join(parts)


def field_values(t: Tensor, limit: int | None = None) -> tuple[str, bool]:
    """The tensor's values as the text between ``{`` and ``}``, and whether some were elided.

    ``limit`` (the ``--max-elements`` of ``pyonnx print``) keeps only that many entries; the
    caller then marks the elision with ``...``, which no parser accepts.
    """
    from pyonnx.io.serde import pack_bits

    dt = t.data_type
    arr = np.asarray(t.numpy())
    flat = arr.reshape(-1)
    if dt in _PACKED:  # the bytes of the packed stream, one per entry
        flat = np.frombuffer(pack_bits(flat, _PACKED[dt]), dtype=np.uint8)
    elif dt in _FLOAT6:  # one 6-bit pattern per entry
        flat = flat.view(np.uint8) & 0x3F
    elif dt in _BIT_PATTERN:
        flat = flat.view(_BIT_PATTERN[dt])
    elif dt in (DataType.COMPLEX64, DataType.COMPLEX128):
        flat = flat.view(np.float32 if dt == DataType.COMPLEX64 else np.float64)
    elided = limit is not None and flat.size > limit
    if elided:
        flat = flat[:limit]
    if dt == DataType.STRING:
        text = ", ".join(quote(s if isinstance(s, str) else
                               bytes(s).decode("utf-8", errors="surrogateescape"))
                         for s in flat.tolist())
    elif dt in (DataType.FLOAT, DataType.COMPLEX64):
        text = _join_float32(flat)
    elif dt in (DataType.DOUBLE, DataType.COMPLEX128):
        text = _join_float64(flat)
    elif dt == DataType.BOOL:
        text = _join_ints(flat.astype(np.uint8))
    else:
        text = _join_ints(flat)
    return text, elided


# --------------------------------------------------------------------------- printer


def _undefined(t: Any) -> bool:
    """Whether a type has an UNDEFINED element type somewhere (or a missing inner type)."""
    if t is None:
        return True
    if isinstance(t, (TensorType, SparseTensorType)):
        return t.elem_type == DataType.UNDEFINED
    if isinstance(t, MapType):
        return _undefined(t.value_type)
    return _undefined(t.elem_type)


class _Printer:
    """Accumulates text in ``self.out``; ``limit`` elides long tensor values."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.out: list[str] = []

    def w(self, *parts: str) -> None:
        self.out.extend(parts)

    # ----- types

    def type(self, t: Any) -> str:
        if isinstance(t, TensorType):
            return self._tensor_type(t.elem_type, t.shape)
        if isinstance(t, SparseTensorType):
            return f"sparse_tensor({self._tensor_type(t.elem_type, t.shape)})"
        if isinstance(t, SequenceType):
            return f"seq({self.type(t.elem_type)})"
        if isinstance(t, MapType):
            return f"map({t.key_type.onnx_name}, {self.type(t.value_type)})"
        if isinstance(t, OptionalType):
            return f"optional({self.type(t.elem_type)})"
        if t is None:
            return ""
        raise InvalidArgument(f"cannot print type {t!r}: it is not an ONNX type")

    @staticmethod
    def _tensor_type(elem: DataType, shape: tuple | None) -> str:
        name = DataType(elem).onnx_name
        if shape is None:
            return f"{name}[]"
        if not shape:
            return name
        dims = ",".join("?" if d is None else str(d) if isinstance(d, int) else
                        d if _IDENT.match(d) else quote(d) for d in shape)
        return f"{name}[{dims}]"

    def value_info(self, v: Value) -> str:
        if v.type is None or _undefined(v.type):
            return _id(v.name)  # the syntax has no spelling for an unset element type
        return f"{self.type(v.type)} {_id(v.name)}"

    # ----- constants

    def tensor(self, t: Tensor, name: str | None, assign: bool) -> str:
        """``float[2] name = {1, 2}`` (initializer) or ``float[2] {1, 2}`` (attribute value)."""
        head = self._tensor_type(t.data_type, t.dims)
        if name:
            head += " " + _id(name)
        return f"{head}{' =' if assign else ''} {self.values(t)}"

    def values(self, t: Tensor) -> str:
        text, elided = field_values(t, self.limit)
        if elided:
            text = f"{text}, ..." if text else "..."
        return "{" + text + "}"

    def sparse(self, st: SparseTensor, name: str | None, assign: bool) -> str:
        head = f"sparse_tensor({self._tensor_type(st.values.data_type, st.dims)})"
        if name:
            head += " " + _id(name)
        idx = st.indices
        return (f"{head}{' =' if assign else ''} {self.values(st.values)} @ "
                f"{self._tensor_type(idx.data_type, idx.dims)} {self.values(idx)}")

    # ----- attributes

    def attribute(self, a: Attribute, level: int) -> str:
        tname = a.type.name.lower()
        name = a.name if _IDENT.match(a.name) else quote(a.name)
        head = f"{name}: {tname} = " if a.type != AttributeType.UNDEFINED else f"{name} = "
        if a.ref_attr_name:
            return f"{head}@{_id(a.ref_attr_name)}"
        T, v = AttributeType, a.value
        if a.type == T.FLOAT:
            return head + _float32(v)
        if a.type == T.INT:
            return head + str(int(v))
        if a.type == T.STRING:
            return head + quote(v)
        if a.type == T.TENSOR:
            return head + self.tensor(v, v.name, False)
        if a.type == T.GRAPH:
            return head + self.graph_text(v, level + 1)
        if a.type == T.SPARSE_TENSOR:
            return head + self.sparse(v, v.name, False)
        if a.type == T.TYPE_PROTO:
            return head + self.type(v)
        if a.type == T.FLOATS:
            return head + "[" + ", ".join(_float32(x) for x in v) + "]"
        if a.type == T.INTS:
            return head + "[" + ", ".join(str(int(x)) for x in v) + "]"
        if a.type == T.STRINGS:
            return head + "[" + ", ".join(quote(x) for x in v) + "]"
        if a.type == T.TENSORS:
            return head + "[" + ", ".join(self.tensor(x, x.name, False) for x in v) + "]"
        if a.type == T.GRAPHS:
            return head + "[" + ", ".join(self.graph_text(x, level + 1) for x in v) + "]"
        if a.type == T.SPARSE_TENSORS:
            return head + "[" + ", ".join(self.sparse(x, x.name, False) for x in v) + "]"
        if a.type == T.TYPE_PROTOS:
            return head + "[" + ", ".join(self.type(x) for x in v) + "]"
        raise InvalidArgument(f"cannot print attribute {a.name!r}: it has no type")

    # ----- nodes and graphs

    def node(self, n: Node, level: int) -> None:
        ind = _INDENT * level
        label = f"[{_id(n.name)}] " if n.name else ""
        outs = ", ".join(_id(v.name) for v in n.outputs)
        if n.domain:
            parts = n.domain.split(".")
            dom = (n.domain if all(_IDENT.match(p) for p in parts) else quote(n.domain)) + "."
        else:
            dom = ""
        op_type = n.op_type if _IDENT.match(n.op_type) else quote(n.op_type)
        op = f"{dom}{op_type}{':' + _id(n.overload) if n.overload else ''}"
        ins = "(" + ", ".join(_id(v.name) if v is not None else '""' for v in n.inputs) + ")"
        attrs = ""
        if n.attributes:
            attrs = "<" + ", ".join(self.attribute(a, level)
                                    for a in n.attributes.values()) + ">"
        has_graph = any(a.type in (AttributeType.GRAPH, AttributeType.GRAPHS) and
                        not a.ref_attr_name for a in n.attributes.values())
        lhs = f"{outs} = " if outs else "= "
        if has_graph:  # the subgraph text is long: inputs first keep the call readable
            self.w(ind, label, lhs, op, " ", ins, " ", attrs, "\n")
        else:
            self.w(ind, label, lhs, op, " ", attrs + " " if attrs else "", ins, "\n")

    def nodes(self, nodes: Iterable[Node], level: int) -> None:
        self.w("{\n")
        for n in nodes:
            self.node(n, level + 1)
        self.w(_INDENT * level, "}")

    def graph(self, g: Graph, level: int) -> None:
        ind = _INDENT * level
        ins = ", ".join(self.value_info(v) for v in g.inputs)
        outs = ", ".join(self.value_info(v) for v in g.outputs)
        self.w(_id(g.name), " (", ins, ") => (", outs, ")")
        entries = [self.tensor(v.const_value, name, True) for name, v in g.initializers.items()]
        entries += [self.sparse(v.const_value, name, True)
                    for name, v in g.sparse_initializers.items()]
        entries += [self.value_info(v) for v in g.value_info]
        if entries:
            self.w("\n", ind, _INDENT, "<", (",\n" + ind + _INDENT + " ").join(entries), ">")
        self.w("\n", ind)
        self.nodes(g.nodes, level)

    def graph_text(self, g: Graph, level: int) -> str:
        sub = _Printer(self.limit)
        sub.graph(g, level)
        return "".join(sub.out)

    def function(self, f: Function) -> None:
        head = [f'  domain: {quote(f.domain)}']
        if f.overload:
            head.append(f"  overload: {quote(f.overload)}")
        head.append("  opset_import: " + self.opsets(f.opset_imports))
        if f.doc_string:
            head.append(f"  doc_string: {quote(f.doc_string)}")
        self.w("<\n", ",\n".join(head), "\n>\n", _id(f.name), " ")
        attrs = [_id(a) for a in f.attributes]
        attrs += [self.attribute(a, 0) for a in f.attribute_defaults.values()]
        if attrs:
            self.w("<", ", ".join(attrs), "> ")
        ins = ", ".join(_id(v.name) for v in f.graph.inputs)
        outs = ", ".join(_id(v.name) for v in f.graph.outputs)
        self.w("(", ins, ") => (", outs, ")\n")
        if f.graph.value_info:
            self.w("<", ", ".join(self.value_info(v) for v in f.graph.value_info), ">\n")
        self.nodes(f.graph.nodes, 0)

    @staticmethod
    def opsets(opsets: dict[str, int]) -> str:
        return "[" + ", ".join(f"{quote(d)} : {v}" for d, v in opsets.items()) + "]"

    def model(self, m: Model) -> None:
        head = [f"   ir_version: {m.ir_version}",
                f"   opset_import: {self.opsets(m.opset_imports)}"]
        for key in ("producer_name", "producer_version", "domain"):
            if getattr(m, key):
                head.append(f"   {key}: {quote(getattr(m, key))}")
        if m.model_version:
            head.append(f"   model_version: {m.model_version}")
        if m.doc_string:
            head.append(f"   doc_string: {quote(m.doc_string)}")
        if m.metadata_props:
            props = ", ".join(f"{quote(k)}: {quote(v)}" for k, v in m.metadata_props.items())
            head.append(f"   metadata_props: [{props}]")
        self.w("<\n", ",\n".join(head), "\n>\n")
        self.graph(m.graph, 0)
        for f in m.functions:
            self.w("\n\n")
            self.function(f)
        self.w("\n")


def to_text(obj: Model | Graph | Function | Node, *, max_elements: int | None = None) -> str:
    """The ONNX text of a model, graph, function or node.

    Every tensor value is written in full, so the text parses back into the same model. With
    ``max_elements``, tensors longer than that show their first ``max_elements`` values and
    ``...``: easier to read, but no longer parseable.
    """
    if max_elements is not None and max_elements < 0:
        raise InvalidArgument(f"max_elements must be 0 or more, not {max_elements}")
    p = _Printer(max_elements)
    if isinstance(obj, Model):
        p.model(obj)
    elif isinstance(obj, Graph):
        p.graph(obj, 0)
        p.w("\n")
    elif isinstance(obj, Function):
        p.function(obj)
        p.w("\n")
    elif isinstance(obj, Node):
        p.node(obj, 0)
    else:
        raise InvalidArgument(f"to_text() takes a Model, Graph, Function or Node, not "
                              f"{type(obj).__name__}; load a file with pyonnx.load first")
    return "".join(p.out)
