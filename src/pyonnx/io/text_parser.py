"""The ONNX textual syntax, reading side: text to protobuf messages to IR.

The parser reads the syntax of the ONNX repository's docs/Syntax.md, as ``onnx.parser`` does,
into the protobuf messages that syntax describes, then decodes them with
:mod:`pyonnx.io.serde`, so a parsed model is exactly what loading the equivalent ``.onnx`` file
gives. Tensor values mean what they mean in ``TensorProto``'s typed fields (see
:mod:`pyonnx.io.text_printer`). Beyond ``onnx.parser``, it reads lists of tensors, graphs and
types in attributes, quoted dimension names, subgraph names and domains, opaque types
(``opaque(domain,name)``, as onnx does), and pyonnx's spelling of sparse tensors (``sparse_tensor(float[3,4]) S = {values} @ int64[2] {indices}``).

Long tensor values are read in bulk with NumPy; only a value list that NumPy rejects is read
token by token, to say exactly where and what is wrong. Every error is a
:class:`~pyonnx.errors.DecodeError` whose message starts with ``line L, column C:`` and says what
was expected there.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from typing import Any, NoReturn

import numpy as np

from pyonnx.errors import DecodeError
from pyonnx.io import proto as P
from pyonnx.ir import AttributeType, DataType, Function, Graph, Model, Node

__all__ = ["parse_model", "parse_graph", "parse_function", "parse_node", "parse_model_proto"]

_WS = re.compile(r"(?:[ \t\r\n\f\v]+|#[^\n]*)*")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(
    r"-?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|(?i:infinity|inf|nan)(?![A-Za-z0-9_]))")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
_TOKEN = re.compile(r'"[^"\n]{0,20}"?|[A-Za-z_0-9.+-]{1,20}|\S')
_FLOAT_WORDS = ("inf", "infinity", "nan")

_PRIM = {dt.onnx_name: dt for dt in DataType if dt != DataType.UNDEFINED}
_TYPE_WORDS = frozenset([*_PRIM, "seq", "map", "optional", "sparse_tensor", "opaque"])
_ATTR_TYPES = {t.name.lower(): t for t in AttributeType if t != AttributeType.UNDEFINED}
_T = AttributeType
_SINGULAR = {_T.FLOATS: _T.FLOAT, _T.INTS: _T.INT, _T.STRINGS: _T.STRING, _T.TENSORS: _T.TENSOR,
             _T.GRAPHS: _T.GRAPH, _T.SPARSE_TENSORS: _T.SPARSE_TENSOR,
             _T.TYPE_PROTOS: _T.TYPE_PROTO}
_PLURAL = {v: k for k, v in _SINGULAR.items()}
_REF = "ref"

_MODEL_KEYS = ("ir_version", "opset_import", "producer_name", "producer_version", "domain",
               "model_version", "doc_string", "metadata_props")
_FUNCTION_KEYS = ("domain", "overload", "opset_import", "doc_string")

# how the values between { and } are read, per element type: (number kind, NumPy dtype range)
_INT_RANGE = {DataType.INT8: (-2**7, 2**7 - 1), DataType.INT16: (-2**15, 2**15 - 1),
              DataType.INT32: (-2**31, 2**31 - 1), DataType.UINT8: (0, 2**8 - 1),
              DataType.UINT16: (0, 2**16 - 1), DataType.UINT32: (0, 2**32 - 1)}
_BIT_PATTERN = {DataType.FLOAT16: 16, DataType.BFLOAT16: 16, DataType.FLOAT8E4M3FN: 8,
                DataType.FLOAT8E4M3FNUZ: 8, DataType.FLOAT8E5M2: 8, DataType.FLOAT8E5M2FNUZ: 8,
                DataType.FLOAT8E8M0: 8}
_PACKED = {DataType.INT4: 4, DataType.UINT4: 4, DataType.FLOAT4E2M1: 4, DataType.INT2: 2,
           DataType.UINT2: 2}
_FLOAT6 = (DataType.FLOAT6E2M3, DataType.FLOAT6E3M2)


def _kind(dt: DataType) -> str:
    if dt == DataType.STRING:
        return "string"
    if dt in (DataType.FLOAT, DataType.DOUBLE, DataType.COMPLEX64, DataType.COMPLEX128):
        return "float"
    if dt in (DataType.UINT64, DataType.UINT32):
        return "uint"
    return "int"


class _Parser:
    """A recursive-descent parser over ``text``; ``pos`` is the index of the next character."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.pos = 0
        self.n = len(text)
        self.number_text = ""  # the last number literal read: "-0" is 0 as an int, -0.0 as float

    # ------------------------------------------------------------------ errors and lexing

    def where(self, pos: int) -> str:
        line = self.s.count("\n", 0, pos) + 1
        start = self.s.rfind("\n", 0, pos) + 1
        return f"line {line}, column {pos - start + 1}"

    def fail(self, message: str, pos: int | None = None) -> NoReturn:
        """Raise DecodeError at ``pos`` (default: the next token) with the line shown."""
        if pos is None:
            self.skip()
            pos = self.pos
        start = self.s.rfind("\n", 0, pos) + 1
        end = self.s.find("\n", pos)
        line = self.s[start:end if end >= 0 else self.n]
        if len(line) > 120:  # very long lines (tensor values): show the part around the error
            cut = max(0, pos - start - 60)
            line, offset = line[cut:cut + 120], pos - start - cut
        else:
            offset = pos - start
        raise DecodeError(f"{self.where(pos)}: {message}\n  {line}\n  {' ' * offset}^")

    def expected(self, what: str, pos: int | None = None) -> NoReturn:
        if pos is None:
            self.skip()
            pos = self.pos
        m = _TOKEN.match(self.s, pos)
        found = "the end of the text" if pos >= self.n else repr(m.group(0) if m else self.s[pos])
        self.fail(f"expected {what}, found {found}", pos)

    def skip(self) -> None:
        self.pos = _WS.match(self.s, self.pos).end()

    def mark(self) -> int:
        """The position of the next token (after white space and comments)."""
        self.skip()
        return self.pos

    def peek(self) -> str:
        self.skip()
        return self.s[self.pos] if self.pos < self.n else ""

    def at_end(self) -> bool:
        return self.peek() == ""

    def matches(self, ch: str) -> bool:
        if self.peek() == ch:
            self.pos += 1
            return True
        return False

    def expect(self, ch: str, what: str | None = None) -> None:
        if not self.matches(ch):
            self.expected(what or repr(ch))

    def arrow(self) -> None:
        if self.peek() != "=" or self.s[self.pos + 1:self.pos + 2] != ">":
            self.expected("'=>' between the inputs and the outputs")
        self.pos += 2

    def peek_ident(self) -> str:
        self.skip()
        m = _IDENT.match(self.s, self.pos)
        return m.group(0) if m else ""

    def optional_ident(self) -> str:
        word = self.peek_ident()
        self.pos += len(word)
        return word

    def ident(self, what: str) -> str:
        word = self.optional_ident()
        if not word:
            self.expected(what)
        return word

    def string(self, what: str) -> str:
        self.skip()
        m = _STRING.match(self.s, self.pos)
        if not m:
            if self.peek() == '"':
                self.fail("this string is not closed: add the closing '\"'")
            self.expected(what)
        self.pos = m.end()
        body = m.group(1)
        return _ESCAPE.sub(r"\1", body) if "\\" in body else body

    def quotable(self, what: str) -> str:
        return self.string(what) if self.peek() == '"' else self.ident(what)

    def optional_quotable(self) -> tuple[bool, str]:
        """A name, ``""``, or nothing; a lone ``,`` counts as an empty name (as onnx.parser)."""
        if self.peek() == '"':
            return True, self.string("a name")
        word = self.optional_ident()
        return bool(word) or self.peek() == ",", word

    def number(self, what: str) -> tuple[str, int | float]:
        """An int or float literal: ('int', value) or ('float', value)."""
        self.skip()
        m = _NUMBER.match(self.s, self.pos)
        if not m:
            self.expected(what)
        self.pos = m.end()
        text = self.number_text = m.group(0)
        if any(c in text for c in ".eEiInN"):
            return "float", float(text)
        return "int", int(text)

    def integer(self, what: str) -> int:
        start = self.mark()
        kind, value = self.number(what)
        if kind != "int":
            self.expected(what, start)
        return int(value)

    # ------------------------------------------------------------------ types

    def is_type_next(self) -> bool:
        return self.peek_ident() in _TYPE_WORDS

    def type_into(self, tp: Any) -> None:
        start = self.mark()
        word = self.ident("a type (float[N], int64, seq(...), map(...), ...)")
        if word in _PRIM:
            self._tensor_type(tp.tensor_type, _PRIM[word])
        elif word == "seq":
            self.expect("(", "'(' after seq")
            self.type_into(tp.sequence_type.elem_type)
            self.expect(")", "')' closing seq(")
        elif word == "optional":
            self.expect("(", "'(' after optional")
            self.type_into(tp.optional_type.elem_type)
            self.expect(")", "')' closing optional(")
        elif word == "map":
            self.expect("(", "'(' after map")
            kstart = self.mark()
            key = self.ident("the key type of map(")
            if key not in _PRIM:
                self.expected("an element type as the map key (int64, string, ...)", kstart)
            tp.map_type.key_type = int(_PRIM[key])
            self.expect(",", "',' after the map key type")
            self.type_into(tp.map_type.value_type)
            self.expect(")", "')' closing map(")
        elif word == "sparse_tensor":
            self.expect("(", "'(' after sparse_tensor")
            estart = self.mark()
            elem = self.ident("an element type in sparse_tensor(")
            if elem not in _PRIM:
                self.expected("an element type in sparse_tensor(", estart)
            self._tensor_type(tp.sparse_tensor_type, _PRIM[elem])
            self.expect(")", "')' closing sparse_tensor(")
        elif word == "opaque":
            # opaque(), opaque(name), opaque(domain, name); the domain may be dotted, and a
            # lone (dotted) word is the name
            self.expect("(", "'(' after opaque")
            op = tp.opaque_type
            op.SetInParent()
            if not self.matches(")"):
                first = self._dotted("the name (or domain) in opaque(")
                if self.matches(","):
                    op.domain = first
                    op.name = self._dotted("the name in opaque(domain, name)")
                else:
                    op.name = first
                self.expect(")", "')' closing opaque(")
        else:
            self.expected("a type (float[N], int64, seq(...), map(...), ...)", start)

    def _dotted(self, what: str) -> str:
        """An identifier, or several joined by dots (``ai.onnx.ml``)."""
        parts = [self.ident(what)]
        while self.matches("."):
            parts.append(self.ident(what))
        return ".".join(parts)

    def _tensor_type(self, tt: Any, elem: DataType) -> None:
        tt.elem_type = int(elem)
        if not self.matches("["):
            tt.shape.SetInParent()  # no brackets: a scalar (rank 0)
            return
        if self.matches("]"):
            return  # float[]: rank unknown
        shape = tt.shape
        while True:
            dim = shape.dim.add()
            ch = self.peek()
            if ch == "?":
                self.pos += 1
            elif ch == '"':
                dim.dim_param = self.string("a dimension")
            elif _IDENT.match(self.s, self.pos):
                dim.dim_param = self.optional_ident()
            else:
                dim.dim_value = self.integer("a dimension (an integer, a name or '?')")
            if not self.matches(","):
                break
        self.expect("]", "',' or ']' in the shape")

    def value_info(self, vi: Any) -> None:
        if self.is_type_next():
            self.type_into(vi.type)
        vi.name = self.quotable("a value name")

    # ------------------------------------------------------------------ constants

    def _dims(self, tt: Any, start: int, what: str) -> list[int]:
        if not tt.HasField("shape"):
            self.fail(f"{what} needs a shape with numbers: write float[2,3] (or float for a "
                      f"scalar), not float[]", start)
        dims = []
        for d in tt.shape.dim:
            if d.WhichOneof("value") != "dim_value":
                self.fail(f"{what} needs numeric dimensions, not '?' or names", start)
            dims.append(int(d.dim_value))
        return dims

    def tensor_data(self, tensor: Any, tp: Any, start: int) -> None:
        """The value after a tensor type: ``{...}`` or external data ``["location": ...]``."""
        what = f"tensor {tensor.name!r}" if tensor.name else "a tensor constant"
        if not tp.HasField("tensor_type"):
            self.fail(f"{what} needs a tensor type (like float[2]) before its value", start)
        elem = DataType(tp.tensor_type.elem_type)
        dims = self._dims(tp.tensor_type, start, what)
        tensor.data_type = int(elem)
        tensor.dims.extend(dims)
        if self.matches("["):
            tensor.data_location = P.TensorProto.EXTERNAL
            for k, v in self.string_pairs("']' closing the external data"):
                e = tensor.external_data.add()
                e.key, e.value = k, v
            return
        vstart = self.mark()
        if self.s.startswith("...", vstart):
            # onnx.printer's text of a tensor whose values it does not write
            self.fail(f"the values of {what} were left out ('...', as onnx.printer writes "
                      f"{DataType(elem).onnx_name} tensors); print the model with "
                      f"pyonnx.to_text(..., lossless=True) to keep them", vstart)
        self.expect("{", f"'{{' and the values of {what}")
        values = self.values(elem)
        self._fill(tensor, elem, dims, values, vstart, what)

    def values(self, elem: DataType) -> Any:
        """The literals up to the closing ``}`` (which is consumed): an array or a list."""
        kind = _kind(elem)
        start = self.mark()
        if kind != "string":
            end = self.s.find("}", start)
            body = self.s[start:end] if end >= 0 else ""
            # NumPy drops the sign of "-nan": those values go token by token too
            if end >= 0 and "#" not in body and "..." not in body and '"' not in body and \
                    not (kind == "uint" and "-" in body) and "-n" not in body and "-N" not in body:
                if not body.strip():
                    self.pos = end + 1
                    return np.zeros(0, np.float64 if kind == "float" else np.int64)
                dtype = {"float": np.float64, "int": np.int64, "uint": np.uint64}[kind]
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("error")
                        arr = np.fromstring(body, dtype=dtype, sep=",")
                except (ValueError, DeprecationWarning):
                    arr = None
                if arr is not None and arr.size == body.count(",") + 1:
                    self.pos = end + 1
                    return arr
        # token by token: strings, comments, or a value NumPy rejected (to report it precisely)
        items: list[Any] = []
        if self.matches("}"):
            return items
        while True:
            self.skip()
            if self.s.startswith("...", self.pos):
                self.fail("tensor values were elided with '...' (pyonnx print --max-elements);"
                          " print the model without --max-elements to get text that parses")
            if kind == "string":
                items.append(self.string("a string literal in the tensor values"))
            else:
                vstart = self.mark()
                lit, value = self.number("a number in the tensor values")
                if lit == "float" and kind != "float":
                    self.expected(f"an integer (the tensor holds {elem.onnx_name})", vstart)
                if kind == "uint" and value < 0:
                    self.expected(f"a non-negative integer (the tensor holds {elem.onnx_name})",
                                  vstart)
                if kind == "int" and not -2**63 <= value < 2**63 or \
                        kind == "uint" and value >= 2**64:
                    self.fail(f"{value} is out of range for {elem.onnx_name}", vstart)
                items.append(float(self.number_text) if kind == "float" else value)
            if not self.matches(","):
                break
        self.expect("}", "',' or '}' in the tensor values")
        if kind == "string":
            return items
        dtype = {"float": np.float64, "int": np.int64, "uint": np.uint64}[kind]
        return np.array(items, dtype=dtype)

    def _fill(self, tensor: Any, dt: DataType, dims: list[int], values: Any, start: int,
              what: str) -> None:
        """Store parsed values in ``tensor`` (as raw_data), checking their count and range."""
        from pyonnx.io.serde import pack_bits

        count = math.prod(dims)
        need = count
        if dt in (DataType.COMPLEX64, DataType.COMPLEX128):
            need = 2 * count
        elif dt in _PACKED:
            need = (count * _PACKED[dt] + 7) // 8
        if len(values) != need:
            unit = " (real, imaginary) numbers" if need != count and dt not in _PACKED else \
                " bytes of packed values" if dt in _PACKED else " values"
            self.fail(f"{what} has {len(values)} values, but its type {dt.onnx_name}{dims} "
                      f"needs {need}{unit}", start)
        if dt == DataType.STRING:
            tensor.string_data.extend(v.encode("utf-8", errors="surrogateescape")
                                      for v in values)
            return
        arr = np.asarray(values)
        if dt in (DataType.FLOAT, DataType.COMPLEX64):
            with np.errstate(over="ignore"):
                tensor.raw_data = arr.astype("<f4").tobytes()
        elif dt in (DataType.DOUBLE, DataType.COMPLEX128):
            tensor.raw_data = arr.astype("<f8").tobytes()
        elif dt == DataType.INT64:
            tensor.raw_data = arr.astype("<i8").tobytes()
        elif dt == DataType.UINT64:
            tensor.raw_data = arr.astype("<u8").tobytes()
        elif dt == DataType.BOOL:
            tensor.raw_data = (arr != 0).astype(np.uint8).tobytes()
        else:
            if dt in _INT_RANGE:
                lo, hi = _INT_RANGE[dt]
            elif dt in _BIT_PATTERN:  # unsigned bit patterns (negative int16 patterns accepted)
                bits = _BIT_PATTERN[dt]
                lo, hi = -(1 << (bits - 1)), (1 << bits) - 1
            elif dt in _PACKED:
                lo, hi = 0, 255
            elif dt in _FLOAT6:
                lo, hi = 0, 63
            else:
                self.fail(f"{what}: element type {dt.onnx_name} cannot be written as text",
                          start)
            if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
                bad = int(arr.min()) if int(arr.min()) < lo else int(arr.max())
                self.fail(f"{what}: value {bad} is out of range for {dt.onnx_name} "
                          f"({lo} to {hi})", start)
            if dt in _INT_RANGE:
                tensor.raw_data = arr.astype(dt.numpy.newbyteorder("<")).tobytes()
            elif dt in _BIT_PATTERN:
                width = "<u2" if _BIT_PATTERN[dt] == 16 else "u1"
                tensor.raw_data = (arr.astype(np.int64) & ((1 << _BIT_PATTERN[dt]) - 1)
                                   ).astype(width).tobytes()
            elif dt in _PACKED:
                tensor.raw_data = arr.astype(np.uint8).tobytes()
            else:
                tensor.raw_data = pack_bits(arr.astype(np.uint8), 6)

    def sparse_data(self, sp: Any, tp: Any, name: str, start: int) -> None:
        """pyonnx's sparse spelling after the type: ``{values} @ int64[N] {indices}``."""
        what = f"sparse tensor {name!r}" if name else "a sparse tensor constant"
        st = tp.sparse_tensor_type
        elem = DataType(st.elem_type)
        sp.dims.extend(self._dims(st, start, what))
        vstart = self.mark()
        self.expect("{", f"'{{' and the values of {what}")
        values = self.values(elem)
        self.expect("@", f"'@' and the indices of {what}")
        istart = self.mark()
        itype = P.TypeProto()
        self.type_into(itype)
        sp.indices.name = ""
        self.tensor_data(sp.indices, itype, istart)
        idims = list(sp.indices.dims)
        if not idims:
            self.fail(f"the indices of {what} must be int64[NNZ] or int64[NNZ, rank]", istart)
        sp.values.name = name
        sp.values.data_type = int(elem)
        sp.values.dims.append(idims[0])
        self._fill(sp.values, elem, [idims[0]], values, vstart, f"the values of {what}")

    def string_pairs(self, close_what: str) -> list[tuple[str, str]]:
        pairs = []
        if self.matches("]"):
            return pairs
        while True:
            k = self.string("a quoted key")
            self.expect(":", "':' between key and value")
            pairs.append((k, self.string("a quoted value")))
            if not self.matches(","):
                break
        self.expect("]", close_what)
        return pairs

    # ------------------------------------------------------------------ attributes

    def attribute(self, name: str | None = None) -> Any:
        ap = P.AttributeProto()
        ap.name = name if name is not None else self.quotable("an attribute name")
        declared: AttributeType | None = None
        if self.matches(":"):
            tstart = self.mark()
            word = self.ident("an attribute type (int, float, string, tensor, graph, ints, ...)")
            if word not in _ATTR_TYPES:
                self.expected("an attribute type (int, float, string, tensor, graph, ints, "
                              "floats, strings, tensors, graphs, type_proto, ...)", tstart)
            declared = _ATTR_TYPES[word]
        self.expect("=", f"'=' and the value of attribute {ap.name!r}")
        if self.peek() == "[":
            lstart = self.pos + 1
            self.pos += 1
            if declared is not None and declared not in _SINGULAR:
                self.fail(f"attribute {ap.name!r} is declared {declared.name.lower()}, a single "
                          f"value, but is given a list", lstart - 1)
            single = _SINGULAR.get(declared) if declared is not None else None
            items: list[tuple[AttributeType, Any]] = []
            if not self.matches("]"):
                while True:
                    items.append(self.single_value(single, ap.name, in_list=True))
                    if not self.matches(","):
                        break
                self.expect("]", "',' or ']' in the attribute list")
            kinds = {k for k, _ in items}
            if declared is not None:
                at = declared
            elif not items:
                self.fail(f"the empty list of attribute {ap.name!r} needs a type: write "
                          f"{ap.name}: ints = [] (or floats, strings, ...)", lstart - 1)
            elif kinds == {_T.INT, _T.FLOAT}:
                at = _T.FLOATS
            elif len(kinds) == 1:
                at = _PLURAL[next(iter(kinds))]
            else:
                self.fail(f"the list of attribute {ap.name!r} mixes values of different types",
                          lstart)
            ap.type = int(at)
            self._store_list(ap, at, [v for _, v in items])
        else:
            kind, value = self.single_value(declared, ap.name, in_list=False)
            if kind == _REF:
                ap.ref_attr_name = value
                ap.type = int(declared) if declared is not None else 0
            else:
                ap.type = int(kind)
                self._store_single(ap, kind, value)
        return ap

    @staticmethod
    def _store_single(ap: Any, kind: AttributeType, value: Any) -> None:
        if kind == _T.FLOAT:
            ap.f = float(value)
        elif kind == _T.INT:
            ap.i = int(value)
        elif kind == _T.STRING:
            ap.s = value.encode("utf-8", errors="surrogateescape")
        elif kind == _T.TENSOR:
            ap.t.CopyFrom(value)
        elif kind == _T.GRAPH:
            ap.g.CopyFrom(value)
        elif kind == _T.SPARSE_TENSOR:
            ap.sparse_tensor.CopyFrom(value)
        elif kind == _T.TYPE_PROTO:
            ap.tp.CopyFrom(value)

    @staticmethod
    def _store_list(ap: Any, kind: AttributeType, values: list[Any]) -> None:
        if kind == _T.FLOATS:
            ap.floats.extend(float(v) for v in values)
        elif kind == _T.INTS:
            ap.ints.extend(int(v) for v in values)
        elif kind == _T.STRINGS:
            ap.strings.extend(v.encode("utf-8", errors="surrogateescape") for v in values)
        elif kind == _T.TENSORS:
            ap.tensors.extend(values)
        elif kind == _T.GRAPHS:
            ap.graphs.extend(values)
        elif kind == _T.SPARSE_TENSORS:
            ap.sparse_tensors.extend(values)
        elif kind == _T.TYPE_PROTOS:
            ap.type_protos.extend(values)

    def single_value(self, expected: AttributeType | None, name: str,
                     in_list: bool) -> tuple[Any, Any]:
        """One attribute value: (its AttributeType, the value) or (_REF, referenced name)."""
        ch = self.peek()
        start = self.mark()
        if ch == "@":
            if in_list:
                self.fail(f"attribute {name!r}: a list item cannot be a reference (@name)")
            self.pos += 1
            return _REF, self.quotable("the name of the referenced attribute after '@'")
        if ch == '"' and expected == _T.GRAPH:
            kind, value = _T.GRAPH, self.graph(self.string("a graph name"))
        elif ch == '"':
            kind, value = _T.STRING, self.string("a string")
        elif ch.isalpha() or ch == "_":
            word = self.peek_ident()
            if word in _TYPE_WORDS:
                tp = P.TypeProto()
                self.type_into(tp)
                nxt = self.peek()
                if nxt in ("{", "=", '"') or (nxt and (nxt.isalpha() or nxt == "_")):
                    tname = "" if nxt in ("{", "=") else self.quotable("a tensor name")
                    self.matches("=")
                    if tp.HasField("sparse_tensor_type"):
                        sp = P.SparseTensorProto()
                        self.sparse_data(sp, tp, tname, start)
                        kind, value = _T.SPARSE_TENSOR, sp
                    else:
                        t = P.TensorProto()
                        t.name = tname
                        self.tensor_data(t, tp, start)
                        kind, value = _T.TENSOR, t
                else:
                    kind, value = _T.TYPE_PROTO, tp
            elif word.lower() in _FLOAT_WORDS:
                kind, value = _T.FLOAT, self.number("a number")[1]
            else:
                kind, value = _T.GRAPH, self.graph(self.ident("a graph"))
        elif ch == "-" or ch == "." or ch.isdigit():
            lit, value = self.number("a number")
            kind = _T.FLOAT if lit == "float" else _T.INT
        else:
            self.expected(f"the value of attribute {name!r} (a number, a string, a tensor, "
                          f"a graph, a type, a list or @name)")
        if expected is not None and kind != expected:
            if expected == _T.FLOAT and kind == _T.INT:
                return _T.FLOAT, float(self.number_text)
            self.fail(f"attribute {name!r} is declared {expected.name.lower()} but its value "
                      f"is a {kind.name.lower()}", start)
        return kind, value

    # ------------------------------------------------------------------ nodes and graphs

    def id_list(self) -> list[str]:
        found, word = self.optional_quotable()
        if not found:
            return []
        items = [word]
        while self.matches(","):
            found, word = self.optional_quotable()
            if not found:
                break
            items.append(word)
        return items

    def attr_list(self, into: Any) -> None:
        self.expect("<")
        while True:
            into.append(self.attribute())
            if not self.matches(","):
                break
        self.expect(">", "',' or '>' after the attribute")

    def node(self) -> Any:
        nd = P.NodeProto()
        if self.matches("["):
            if self.peek() != "]":
                nd.name = self.quotable("a node name")
            self.expect("]", "']' closing the node name")
        nd.output.extend(self.id_list())
        self.expect("=", "'=' after the node outputs, or a node")
        if self.peek() == '"':  # pyonnx: a domain that is not a dotted identifier, quoted
            domain = self.string("a domain")
            self.expect(".", "'.' and the operator after the quoted domain")
            op = self.quotable("an operator name")
        else:
            parts = [self.quotable("an operator name (like Add or com.microsoft.Gelu)")]
            while self.matches("."):
                parts.append(self.quotable("an operator name after '.'"))
            domain, op = ".".join(parts[:-1]), parts[-1]
        nd.domain, nd.op_type = domain, op
        if self.matches(":"):
            nd.overload = self.quotable("an overload name after ':'")
        if self.peek() == "<":
            self.attr_list(nd.attribute)
        self.expect("(", "'(' and the node inputs")
        nd.input.extend(self.id_list())
        self.expect(")", "',' or ')' after the node inputs")
        if not nd.attribute and self.peek() == "<":
            self.attr_list(nd.attribute)
        return nd

    def node_list(self, into: Any) -> None:
        self.expect("{", "'{' and the nodes")
        while not self.matches("}"):
            if self.at_end():
                self.expected("a node or '}'")
            into.append(self.node())

    def _entry(self, gp: Any, into_inputs: bool) -> None:
        """``type name``, optionally ``= value`` (then also an initializer)."""
        start = self.mark()
        vi = P.ValueInfoProto()
        self.value_info(vi)
        if self.matches("="):
            if vi.type.HasField("sparse_tensor_type"):
                sp = P.SparseTensorProto()
                self.sparse_data(sp, vi.type, vi.name, start)
                gp.sparse_initializer.append(sp)
            else:
                t = P.TensorProto()
                t.name = vi.name
                self.tensor_data(t, vi.type, start)
                gp.initializer.append(t)
            if into_inputs:
                gp.input.append(vi)
        elif into_inputs:
            gp.input.append(vi)
        else:
            gp.value_info.append(vi)

    def graph(self, name: str) -> Any:
        gp = P.GraphProto()
        gp.name = name
        self.expect("(", f"'(' and the inputs of graph {name!r}")
        if not self.matches(")"):
            while True:
                self._entry(gp, True)
                if not self.matches(","):
                    break
            self.expect(")", "',' or ')' after the graph input")
        self.arrow()
        self.expect("(", f"'(' and the outputs of graph {name!r}")
        if not self.matches(")"):
            while True:
                self.value_info(gp.output.add())
                if not self.matches(","):
                    break
            self.expect(")", "',' or ')' after the graph output")
        if self.matches("<"):
            if not self.matches(">"):
                while True:
                    self._entry(gp, False)
                    if not self.matches(","):
                        break
                self.expect(">", "',' or '>' in the initializers and value infos")
        self.node_list(gp.node)
        return gp

    def opset_list(self, into: Any) -> None:
        self.expect("[", "'[' and the opset imports")
        if self.matches("]"):
            return
        while True:
            o = into.add()
            o.domain = self.string('a quoted domain (like "" or "com.microsoft")')
            self.expect(":", "':' between the domain and its version")
            o.version = self.integer("an opset version")
            if not self.matches(","):
                break
        self.expect("]", "',' or ']' in the opset imports")

    def _header_key(self, keys: tuple[str, ...], what: str) -> str:
        start = self.mark()
        word = self.optional_ident()
        if word not in keys:
            self.expected(f"a {what} key ({', '.join(keys)})", start)
        self.expect(":", f"':' after {word}")
        return word

    def function(self) -> Any:
        fp = P.FunctionProto()
        if self.matches("<"):
            while True:
                key = self._header_key(_FUNCTION_KEYS, "function header")
                if key == "opset_import":
                    self.opset_list(fp.opset_import)
                else:
                    setattr(fp, key, self.string(f"a quoted {key}"))
                if not self.matches(","):
                    break
            self.expect(">", "',' or '>' in the function header")
        fp.name = self.quotable("a function name")
        if self.matches("<"):
            while True:
                attr = self.quotable("an attribute name")
                if self.peek() in (":", "="):
                    fp.attribute_proto.append(self.attribute(attr))
                else:
                    fp.attribute.append(attr)
                if not self.matches(","):
                    break
            self.expect(">", "',' or '>' in the function attributes")
        for names in (fp.input, fp.output):
            self.expect("(", f"'(' and the {'inputs' if names is fp.input else 'outputs'} of "
                             f"function {fp.name!r}")
            if not self.matches(")"):
                while True:
                    if self.is_type_next():
                        vi = fp.value_info.add()
                        self.value_info(vi)
                        names.append(vi.name)
                    else:
                        names.append(self.quotable("a parameter name"))
                    if not self.matches(","):
                        break
                self.expect(")", "',' or ')' after the parameter")
            if names is fp.input:
                self.arrow()
        if self.matches("<"):
            if not self.matches(">"):
                while True:
                    self.value_info(fp.value_info.add())
                    if not self.matches(","):
                        break
                self.expect(">", "',' or '>' in the value infos")
        self.node_list(fp.node)
        return fp

    def model(self) -> Any:
        mp = P.ModelProto()
        if self.matches("<"):
            while True:
                key = self._header_key(_MODEL_KEYS, "model header")
                if key in ("ir_version", "model_version"):
                    setattr(mp, key, self.integer(f"an integer {key}"))
                elif key == "opset_import":
                    self.opset_list(mp.opset_import)
                elif key == "metadata_props":
                    self.expect("[", "'[' and the metadata entries")
                    for k, v in self.string_pairs("',' or ']' in metadata_props"):
                        e = mp.metadata_props.add()
                        e.key, e.value = k, v
                else:
                    setattr(mp, key, self.string(f"a quoted {key}"))
                if not self.matches(","):
                    break
            self.expect(">", "',' or '>' in the model header")
        mp.graph.CopyFrom(self.graph(self.quotable("the graph name")))
        while not self.at_end():
            mp.functions.append(self.function())
        return mp

    def done(self) -> None:
        if not self.at_end():
            self.expected("the end of the text")


def _text(text: str | bytes) -> str:
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text).decode("utf-8", errors="surrogateescape")
    if not isinstance(text, str):
        raise DecodeError(f"ONNX text must be a str or bytes, not {type(text).__name__}")
    return text


def parse_model_proto(text: str | bytes) -> Any:
    """The text of a model as a ``pyonnx.proto.ModelProto`` (what ``parse_model`` decodes)."""
    p = _Parser(_text(text))
    mp = p.model()
    p.done()
    return mp


def parse_model(text: str | bytes, *, base_dir: str | os.PathLike | None = None) -> Model:
    """Read a model written in the ONNX textual syntax.

    ``base_dir`` is the folder that external-data locations (``["location": "w.bin"]``) are
    relative to; without it, text that refers to external data is refused. Raises
    :class:`DecodeError` naming the line and column of the first error.
    """
    from pyonnx.io.serde import DecodeOptions, model_from_proto

    mp = parse_model_proto(text)
    base = os.fspath(base_dir) if base_dir is not None else None
    return model_from_proto(mp, DecodeOptions(base_dir=base))


def parse_graph(text: str | bytes) -> Graph:
    """Read a graph: ``name (inputs) => (outputs) <initializers> { nodes }``."""
    from pyonnx.io.serde import DecodeOptions, _Decoder

    p = _Parser(_text(text))
    gp = p.graph(p.quotable("the graph name"))
    p.done()
    return _Decoder(DecodeOptions()).graph(gp, None, 0, None, f"graph {gp.name!r}")


def parse_function(text: str | bytes) -> Function:
    """Read a function: ``<domain: "d", opset_import: [...]> Name <attrs> (ins) => (outs) {...}``."""
    from pyonnx.io.serde import DecodeOptions, _Decoder

    p = _Parser(_text(text))
    fp = p.function()
    p.done()
    return _Decoder(DecodeOptions()).function(fp)


def parse_node(text: str | bytes) -> Node:
    """Read one node: ``[name] outs = domain.Op <attrs> (ins)``; its values are new."""
    from pyonnx.io.serde import DecodeOptions, _Decoder

    p = _Parser(_text(text))
    nd = p.node()
    p.done()
    gp = P.GraphProto()
    gp.node.append(nd)
    g = _Decoder(DecodeOptions()).graph(gp, None, 0, None, "node")
    node = g.nodes[0]
    node.graph = None
    return node
