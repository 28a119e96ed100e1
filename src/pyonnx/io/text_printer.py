"""The ONNX textual syntax, printing side: :func:`to_text` turns IR objects into text.

The text is what ``onnx.printer.to_text`` writes for the same model, byte for byte: the same
layout (three-space indents, ``{1,-2,127}`` tensor values, ``[1, 2]`` attribute lists, a
graph's initializer block on its own line, attributes after the inputs of a node that holds a
subgraph), and numbers in the shortest form that reads back exactly, chosen as C++'s
``std::to_chars`` chooses it (``0`` rather than ``0.0``, ``1e-04`` rather than ``0.0001``). It
parses back with :func:`pyonnx.io.text.parse_model` and with ``onnx.parser``.

Tensor values are written the way the syntax stores them in ``TensorProto``'s typed fields:
float16/bfloat16/float8 elements as their unsigned bit patterns, booleans as 0/1.

By default the text is exactly onnx.printer's, so the two tools' texts of a model compare
equal. In a few places onnx.printer drops information or writes text that no parser reads;
``to_text(..., lossless=True)`` writes the information instead, so the text always parses back
into the same model. Those places (the only ones where the two modes differ):

* 4-bit, 2-bit, 6-bit and complex tensors: onnx writes ``...`` (which no parser reads);
  lossless writes complex numbers as (real, imaginary) pairs, 4-bit and 2-bit elements as the
  bytes of their packed stream (one ``int32_data`` entry per byte, two 4-bit or four 2-bit
  values each, as ``onnx.proto`` defines ``int32_data`` for those types), and 6-bit elements as
  their bit patterns (one per entry, as ``int32_data`` holds them);
* an empty string tensor or STRINGS attribute: onnx writes ``}`` / ``]`` with no opening
  bracket; lossless writes ``{}`` / ``[]``;
* sparse initializers and SPARSE_TENSOR(S) attributes, which onnx omits (the syntax has no
  spelling for them; onnx writes the attribute's name with no value): lossless writes
  ``sparse_tensor(float[3,4]) name = {values} @ int64[2] {indices}``, which only pyonnx's parser
  reads;
* a function's doc string, attribute defaults and value_info, which onnx omits although its
  parser reads them;
* a graph name, or the name of a value written without its type, that is a type keyword
  (``float``) or a float word (``nan``), and domains, operator and attribute names that are not
  identifiers: onnx writes them bare (and its text does not read back); lossless quotes them;
* an attribute reference with no type: onnx writes ``name: undefined = @ref`` (which its parser
  refuses); lossless writes ``name = @ref``.

Three things that ``pyonnx.load`` normalizes print as loaded, so a file that has them prints
differently from onnx.printer's text of the file itself: a ``-1`` dim (an unknown dim, as
Paddle and some converters write it) prints as ``?``; an opset imported twice with the same
version (skl2onnx writes that) prints once; a graph output that is also a graph input (a
subgraph passing a value through) prints with the input's type when the two declare different
shapes (pyonnx holds one value).

What the syntax has no place for is not printed by either: doc strings of graphs, nodes and
values, metadata_props other than the model's, dimension denotations, training_info.
"""

from __future__ import annotations

import functools
import math
import re
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
    OpaqueType,
    OptionalType,
    SequenceType,
    SparseTensor,
    SparseTensorType,
    Tensor,
    TensorType,
    Value,
)

__all__ = ["to_text", "TYPE_KEYWORDS", "is_identifier", "quote", "field_values", "format_float"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: Words that start a type: a value named like one is quoted, so it cannot be read as its type.
TYPE_KEYWORDS = frozenset(
    [dt.onnx_name for dt in DataType if dt != DataType.UNDEFINED]
    + ["seq", "map", "optional", "sparse_tensor", "opaque"])
# a graph-valued attribute whose graph has one of these names would read as a float literal
_FLOAT_WORDS = frozenset(["inf", "infinity", "nan"])
_STEP = 3  # onnx.printer indents by three spaces per level


def is_identifier(s: str) -> bool:
    """Whether ``s`` can be written bare (not quoted) as a name."""
    return bool(_IDENT.match(s)) and s not in TYPE_KEYWORDS and s.lower() not in _FLOAT_WORDS


def quote(s: str) -> str:
    """A string literal: only ``"`` and ``\\`` are escaped (a backslash keeps the next char)."""
    if "\\" in s or '"' in s:
        s = s.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def _id(name: str) -> str:
    """A value, node or function name: bare when it is an identifier, as onnx writes it (a
    name such as ``seq`` reads back as a name wherever a name is expected)."""
    return name if _IDENT.match(name) else quote(name)


def _word(name: str) -> str:
    """A name where a type or a float literal could also start (a graph name, a value written
    without its type): quoted when it is a type keyword or a float word, so it reads back."""
    return name if is_identifier(name) else quote(name)


def _bare(name: str) -> str:
    """Names onnx writes unquoted (attribute names, operator types): quoted only when they are
    no identifier at all, which onnx's text could not read back."""
    return name if _IDENT.match(name) else quote(name)


# --------------------------------------------------------------------------- numbers

_REPR = re.compile(r"(-?)(\d*)\.?(\d*)(?:e([+-]?\d+))?\Z")


@functools.lru_cache(maxsize=4096)
def _to_chars(shortest: str, float32: bool) -> str:
    """Re-lay the shortest round-trip spelling of a float (NumPy's, any layout) the way
    ``std::to_chars`` lays it out: fixed or scientific, whichever is shorter (fixed on a tie),
    the exponent with a sign and at least two digits, no trailing ``.0``. A fixed integer
    longer than the shortest digits is written with its exact digits, as printf's ``%f``
    writes it (``54879810615766784``, not ``...780``)."""
    if shortest in ("nan", "-nan", "inf", "-inf"):
        return shortest
    m = _REPR.match(shortest)
    if m is None:  # not a number NumPy writes; keep it as it is
        return shortest
    sign, whole, frac, exp = m.groups()
    all_digits = whole + frac
    digits = all_digits.lstrip("0")
    if not digits:
        return sign + "0"
    lead = len(all_digits) - len(digits)
    digits = digits.rstrip("0")
    e = len(whole) + int(exp or 0) - lead - 1  # the exponent of the first significant digit
    n = len(digits)
    sci = (digits[0] + ("." + digits[1:] if n > 1 else "") + "e" + ("-" if e < 0 else "+")
           + f"{abs(e):02d}")
    if e >= n - 1:
        exact = float(np.float32(shortest)) if float32 else float(shortest)
        fixed = str(abs(int(exact)))
    elif e < 0:
        fixed = "0." + "0" * (-e - 1) + digits
    else:
        fixed = digits[:e + 1] + "." + digits[e + 1:]
    return sign + (fixed if len(fixed) <= len(sci) else sci)


def format_float(value: float, float32: bool = True) -> str:
    """The shortest text that reads back as the same float32 (or float64), laid out as
    ``onnx.printer`` writes it; NaN keeps its sign (``-nan``), its payload has no spelling."""
    if math.isnan(value):
        return "-nan" if math.copysign(1.0, value) < 0 else "nan"
    return _to_chars(str(np.float32(value)) if float32 else repr(float(value)), float32)


def _floats(flat: np.ndarray) -> list[str]:
    """Each element of a float32 or float64 array as :func:`format_float` writes it."""
    float32 = flat.dtype == np.float32
    texts = flat.astype(str).tolist()
    for i, t in enumerate(texts):
        # NumPy writes a non-integral value from 1e-3 up in fixed notation, which is also the
        # shorter layout there: only exponents, integers and 0.000… need re-laying (fast path)
        if "e" in t or t.endswith(".0") or t.startswith(("0.000", "-0.000")):
            texts[i] = _to_chars(t, float32)
    neg_nan = np.isnan(flat) & np.signbit(flat)
    if neg_nan.any():
        for i in np.flatnonzero(neg_nan).tolist():
            texts[i] = "-nan"
    return texts


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
#: element types whose values onnx.printer writes as ``...`` (it does not decode them)
_UNPRINTED = frozenset(_PACKED) | _FLOAT6 | {DataType.COMPLEX64, DataType.COMPLEX128}


def field_values(t: Tensor, limit: int | None = None) -> tuple[list[str], bool]:
    """The tensor's values as the entries written between ``{`` and ``}``, and whether some
    were elided (``limit``, the ``--max-elements`` of ``pyonnx print``, keeps that many)."""
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
        texts = [quote(s if isinstance(s, str) else
                       bytes(s).decode("utf-8", errors="surrogateescape"))
                 for s in flat.tolist()]
    elif dt in (DataType.FLOAT, DataType.COMPLEX64, DataType.DOUBLE, DataType.COMPLEX128):
        texts = _floats(flat)
    elif dt == DataType.BOOL:
        texts = list(map(str, flat.astype(np.uint8).tolist()))
    else:
        texts = list(map(str, flat.tolist()))
    return texts, elided


# --------------------------------------------------------------------------- printer


class _Printer:
    """Accumulates text in ``self.out``. ``indent`` is onnx.printer's indent level: nodes are
    written that many spaces in, and a graph-valued attribute adds one step while its graph is
    written. ``limit`` elides long tensor values. ``lossless`` writes what onnx.printer drops
    (the module docstring lists each place)."""

    def __init__(self, limit: int | None, lossless: bool = False) -> None:
        self.limit = limit
        self.lossless = lossless
        self.out: list[str] = []
        self.indent = _STEP

    def word(self, name: str) -> str:
        """A graph name or an untyped value name (see :func:`_word`); onnx quotes it only when
        it is no identifier, so a type keyword or float word stays bare."""
        return _word(name) if self.lossless else _id(name)

    def bare(self, name: str) -> str:
        """An attribute, operator or domain name (see :func:`_bare`); onnx never quotes one."""
        return _bare(name) if self.lossless else name

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
            return f"map({_type_name(t.key_type)}, {self.type(t.value_type)})"
        if isinstance(t, OptionalType):
            return f"optional({self.type(t.elem_type)})"
        if isinstance(t, OpaqueType):
            return f"opaque({t.domain + ',' if t.domain else ''}{t.name})"
        if t is None:
            return ""
        raise InvalidArgument(f"cannot print type {t!r}: it is not an ONNX type")

    @staticmethod
    def _tensor_type(elem: DataType, shape: tuple | None) -> str:
        name = _type_name(elem)
        if shape is None:
            return f"{name}[]"  # rank unknown
        if not shape:
            return name  # a scalar
        dims = ",".join("?" if d is None else str(d) if isinstance(d, int) else
                        d if _IDENT.match(d) else quote(d) for d in shape)
        return f"{name}[{dims}]"

    def value_info(self, v: Value) -> str:
        return f"{self.type(v.type)} {_id(v.name) if v.type is not None else self.word(v.name)}"

    # ----- constants

    def tensor(self, t: Tensor, name: str | None, initializer: bool) -> str:
        """``float[2] w =  {1,2}`` (initializer) or ``float[2] {1,2}`` (attribute value)."""
        head = self._tensor_type(t.data_type, t.dims)
        if name:
            head += " " + _id(name)
        if initializer:
            head += " = "
        if t.external is not None and not t.is_loaded:
            props = ", ".join(f"{quote(k)}: {quote(v)}" for k, v in t.external.items())
            return f"{head}[{props}]"
        return head + self.values(t)

    def values(self, t: Tensor) -> str:
        if not self.lossless and t.data_type in _UNPRINTED:
            return "..."  # onnx.printer does not decode these types
        texts, elided = field_values(t, self.limit)
        if elided:
            texts.append("...")
        if t.data_type == DataType.STRING:
            if not texts and not self.lossless:
                return "}"  # onnx.printer's opening brace goes with the first string
            return "{" + ", ".join(texts) + "}"
        return " {" + ",".join(texts) + "}"

    def sparse(self, st: SparseTensor, name: str | None, initializer: bool) -> str:
        head = f"sparse_tensor({self._tensor_type(st.values.data_type, st.dims)})"
        if name:
            head += " " + _id(name)
        if initializer:
            head += " ="
        idx = st.indices
        return (f"{head}{self.values(st.values)} @ "
                f"{self._tensor_type(idx.data_type, idx.dims)}{self.values(idx)}")

    # ----- attributes

    def attribute(self, a: Attribute) -> str:
        if a.type == AttributeType.UNDEFINED:
            if a.ref_attr_name:
                if not self.lossless:
                    return f"{a.name}: undefined = @{a.ref_attr_name}"
                return f"{_bare(a.name)} = @{_id(a.ref_attr_name)}"
            raise InvalidArgument(f"cannot print attribute {a.name!r}: it has no type")
        head = f"{self.bare(a.name)}: {a.type.name.lower()} = "
        if a.ref_attr_name:
            return f"{head}@{a.ref_attr_name}"
        T, v = AttributeType, a.value
        if a.type == T.FLOAT:
            return head + format_float(v)
        if a.type == T.INT:
            return head + str(int(v))
        if a.type == T.STRING:
            return head + quote(v)
        if a.type == T.TENSOR:
            return head + self.tensor(v, v.name, False)
        if a.type == T.GRAPH:
            return head + self.subgraph(v)
        if a.type in (T.SPARSE_TENSOR, T.SPARSE_TENSORS) and not self.lossless:
            return head  # onnx.printer writes no value for a sparse tensor
        if a.type == T.SPARSE_TENSOR:
            return head + self.sparse(v, v.name, False)
        if a.type == T.TYPE_PROTO:
            return head + self.type(v)
        if a.type == T.FLOATS:
            return head + "[" + ", ".join(format_float(x) for x in v) + "]"
        if a.type == T.INTS:
            return head + "[" + ", ".join(str(int(x)) for x in v) + "]"
        if a.type == T.STRINGS:
            if not v and not self.lossless:
                return head + "]"  # onnx.printer's opening bracket goes with the first string
            return head + "[" + ", ".join(quote(x) for x in v) + "]"
        if a.type == T.TENSORS:
            return head + "[" + ", ".join(self.tensor(x, x.name, False) for x in v) + "]"
        if a.type == T.GRAPHS:
            return head + "[" + ", ".join(self.subgraph(x) for x in v) + "]"
        if a.type == T.SPARSE_TENSORS:
            return head + "[" + ", ".join(self.sparse(x, x.name, False) for x in v) + "]"
        return head + "[" + ", ".join(self.type(x) for x in v) + "]"  # TYPE_PROTOS

    def subgraph(self, g: Graph) -> str:
        sub = _Printer(self.limit, self.lossless)
        sub.indent = self.indent + _STEP
        sub.graph(g)
        return "".join(sub.out)

    # ----- nodes and graphs

    def node(self, n: Node) -> None:
        label = f"[{_id(n.name)}] " if n.name else ""
        outs = ", ".join(_id(v.name) for v in n.outputs)
        dom = ""
        if n.domain:
            dotted = all(_IDENT.match(p) for p in n.domain.split("."))
            dom = (n.domain if dotted or not self.lossless else quote(n.domain)) + "."
        op = f"{dom}{self.bare(n.op_type)}{':' + _id(n.overload) if n.overload else ''}"
        ins = " (" + ", ".join(_id(v.name) if v is not None else '""' for v in n.inputs) + ")"
        attrs = ""
        if n.attributes:
            attrs = " <" + ", ".join(self.attribute(a) for a in n.attributes.values()) + ">"
        has_graph = any(not a.ref_attr_name and (
            (a.type == AttributeType.GRAPH and a.value is not None)
            or (a.type == AttributeType.GRAPHS and len(a.value) > 0))
            for a in n.attributes.values())
        self.w(" " * self.indent, label, outs, " = ", op)
        if has_graph:  # the subgraph text is long: onnx writes the inputs first
            self.w(ins, attrs, "\n")
        else:
            self.w(attrs, ins, "\n")

    def nodes(self, nodes: list[Node]) -> None:
        self.w("{\n")
        for n in nodes:
            self.node(n)
        self.w(" " * max(self.indent - _STEP, 0), "}")

    def graph(self, g: Graph) -> None:
        ins = ", ".join(self.value_info(v) for v in g.inputs)
        outs = ", ".join(self.value_info(v) for v in g.outputs)
        self.w(self.word(g.name), " (", ins, ") => (", outs, ") ")
        entries = [self.tensor(v.const_value, name, True) for name, v in g.initializers.items()]
        if self.lossless:  # onnx.printer omits sparse initializers
            entries += [self.sparse(v.const_value, name, True)
                        for name, v in g.sparse_initializers.items()]
        entries += [self.value_info(v) for v in g.value_info]
        if entries:
            self.w("\n", " " * self.indent, "<", ", ".join(entries), ">\n")
        self.nodes(g.nodes)

    def function(self, f: Function) -> None:
        self.w("<\n", "  domain: ", quote(f.domain), ",\n")
        if f.overload:
            self.w("  overload: ", quote(f.overload), ",\n")
        self.w("  opset_import: ", self.opsets(f.opset_imports, ","))
        if f.doc_string and self.lossless:  # onnx.printer omits a function's doc string,
            self.w(",\n  doc_string: ", quote(f.doc_string))
        self.w("\n>\n", _id(f.name), " ")
        attrs = [self.bare(a) for a in f.attributes]
        if self.lossless:  # its attribute defaults
            attrs += [self.attribute(a) for a in f.attribute_defaults.values()]
        if attrs:
            self.w("<", ",".join(attrs), ">")
        ins = ", ".join(_id(v.name) for v in f.graph.inputs)
        outs = ", ".join(_id(v.name) for v in f.graph.outputs)
        self.w("(", ins, ") => (", outs, ")\n")
        if f.graph.value_info and self.lossless:  # and its value_info
            self.w("<", ", ".join(self.value_info(v) for v in f.graph.value_info), ">\n")
        self.nodes(f.graph.nodes)

    @staticmethod
    def opsets(opsets: dict[str, int], sep: str = ", ") -> str:
        return "[" + sep.join(f"{quote(d)} : {v}" for d, v in opsets.items()) + "]"

    def model(self, m: Model) -> None:
        from pyonnx.io.serde import HEADER_FIELDS

        pad = " " * self.indent
        head = [f"{pad}ir_version: {m.ir_version}",
                f"{pad}opset_import: {self.opsets(m.opset_imports)}"]
        for key in HEADER_FIELDS:  # set, or stated with their default in the model's file
            value = getattr(m, key)
            if value or key in m.stated_fields:
                head.append(f"{pad}{key}: {value if key == 'model_version' else quote(value)}")
        if m.metadata_props:
            props = ", ".join(f"{quote(k)}: {quote(v)}" for k, v in m.metadata_props.items())
            head.append(f"{pad}metadata_props: [{props}]")
        self.w("<\n", ",\n".join(head), "\n>\n")
        self.graph(m.graph)
        for f in m.functions:
            self.w("\n")
            self.function(f)


def _type_name(dt: DataType) -> str:
    return "undefined" if dt == DataType.UNDEFINED else DataType(dt).onnx_name


def to_text(obj: Model | Graph | Function | Node, *, max_elements: int | None = None,
            lossless: bool = False) -> str:
    """The ONNX text of a model, graph, function or node, exactly as ``onnx.printer.to_text``
    writes it.

    onnx's text loses a few things (4-bit, 2-bit, 6-bit and complex tensor values, sparse
    tensors, a function's doc string, attribute defaults and value_info; the module docstring
    lists them all). With ``lossless=True`` they are written too, so that ``parse_model`` gives
    back the same model; the text then differs from onnx.printer's in those places only.

    Every other tensor value is written in full. With ``max_elements``, tensors longer than
    that show their first ``max_elements`` values and ``...``: easier to read, but no longer
    parseable.
    """
    if max_elements is not None and max_elements < 0:
        raise InvalidArgument(f"max_elements must be 0 or more, not {max_elements}")
    p = _Printer(max_elements, lossless)
    if isinstance(obj, Model):
        p.model(obj)
    elif isinstance(obj, Graph):
        p.graph(obj)
    elif isinstance(obj, Function):
        p.function(obj)
    elif isinstance(obj, Node):
        p.node(obj)
    else:
        raise InvalidArgument(f"to_text() takes a Model, Graph, Function or Node, not "
                              f"{type(obj).__name__}; load a file with pyonnx.load first")
    return "".join(p.out)
