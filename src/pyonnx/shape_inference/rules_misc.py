"""Sequences, optionals, strings, random generators, windows and spectral ops, and the rest."""

from __future__ import annotations

from pyonnx.ir import DataType, OptionalType, SequenceType, TensorType, Type
from pyonnx.ir.types import Dim
from pyonnx.shape_inference._common import broadcast, norm_axis, tensor
from pyonnx.shape_inference.engine import InferenceContext
from pyonnx.shape_inference.registry import shape_rule
from pyonnx.shape_inference.rules_control_flow import join_types
from pyonnx.shape_inference.symbolic import dim_add, dim_floordiv, dim_mul, dim_sub, is_concrete


def _dtype(ctx: InferenceContext, name: str, default: DataType | None) -> DataType | None:
    v = ctx.attr(name, None)
    return DataType(int(v)) if v is not None else default


def _join_all(types: list[Type | None]) -> Type | None:
    if not types:
        return None
    out = types[0]
    for t in types[1:]:
        out = join_types(out, t)
    return out


# ---------------------------------------------------------------------- sequences

@shape_rule("SequenceEmpty")
def sequence_empty(ctx: InferenceContext) -> SequenceType:
    ctx.set_seq_elems(0, [])
    return SequenceType(TensorType(_dtype(ctx, "dtype", DataType.FLOAT), None))  # type: ignore[arg-type]


@shape_rule("SequenceConstruct")
def sequence_construct(ctx: InferenceContext) -> SequenceType:
    types = [ctx.input_type(i) for i in range(ctx.num_inputs)]
    ctx.set_seq_elems(0, types)
    return SequenceType(_join_all(types))


def _elem_type(ctx: InferenceContext, i: int) -> Type | None:
    t = ctx.input_type(i)
    return t.elem_type if isinstance(t, SequenceType) else None


def _position(ctx: InferenceContext, i: int, n: int, insert: bool = False) -> int | None:
    v = ctx.value(i)
    if v is None or v.size != 1:
        return None
    p = int(v.reshape(-1)[0])
    hi = n if insert else n - 1
    if p < -n or p > hi:
        raise ctx.fail(f"position {p} is out of range for a sequence of {n}")
    return p + n if p < 0 else p


@shape_rule("SequenceInsert")
def sequence_insert(ctx: InferenceContext) -> SequenceType:
    elems = ctx.seq_elems(0)
    t = ctx.input_type(1)
    if elems is not None:
        pos = len(elems) if not ctx.has_input(2) else _position(ctx, 2, len(elems), insert=True)
        if pos is not None:
            elems.insert(pos, t)
            ctx.set_seq_elems(0, elems)
        return SequenceType(_join_all(elems) if pos is not None else _join_all([*elems, t]))
    return SequenceType(join_types(_elem_type(ctx, 0), t))


@shape_rule("SequenceErase")
def sequence_erase(ctx: InferenceContext) -> Type | None:
    elems = ctx.seq_elems(0)
    if elems:
        pos = len(elems) - 1 if not ctx.has_input(1) else _position(ctx, 1, len(elems))
        if pos is not None:
            del elems[pos]
            ctx.set_seq_elems(0, elems)
    return ctx.input_type(0)


@shape_rule("SequenceAt")
def sequence_at(ctx: InferenceContext) -> Type | None:
    elems = ctx.seq_elems(0)
    if elems:
        pos = _position(ctx, 1, len(elems))
        if pos is not None:
            return elems[pos]
    return _elem_type(ctx, 0)


@shape_rule("SequenceLength")
def sequence_length(ctx: InferenceContext) -> TensorType:
    elems = ctx.seq_elems(0)
    if elems is not None:
        ctx.set_value(0, [len(elems)], scalar=True)
    return TensorType(DataType.INT64, ())


@shape_rule("ConcatFromSequence")
def concat_from_sequence(ctx: InferenceContext) -> TensorType | None:
    et = _elem_type(ctx, 0)
    elems = ctx.seq_elems(0)
    new_axis = bool(int(ctx.attr("new_axis", 0)))
    axis = int(ctx.attr("axis"))
    if not isinstance(et, TensorType):
        return None
    if et.shape is None:
        return TensorType(et.elem_type, None)
    r = len(et.shape) + (1 if new_axis else 0)
    a = norm_axis(axis, r, ctx)
    shape = list(et.shape)
    n: Dim = None
    if elems is not None and all(isinstance(e, TensorType) and e.shape is not None
                                 for e in elems):
        if new_axis:
            n = len(elems)
        else:
            n = 0
            for e in elems:
                n = dim_add(n, e.shape[a])  # type: ignore[union-attr, index]
    if new_axis:
        shape.insert(a, n)
    else:
        shape[a] = n
    return TensorType(et.elem_type, tuple(shape))


# ---------------------------------------------------------------------- optionals

@shape_rule("Optional")
def optional(ctx: InferenceContext) -> OptionalType | None:
    if ctx.has_input(0):
        return OptionalType(ctx.input_type(0))
    t = ctx.attr("type", None)
    return OptionalType(t) if t is not None else None


@shape_rule("OptionalHasElement")
def optional_has_element(ctx: InferenceContext) -> TensorType:
    return TensorType(DataType.BOOL, ())


@shape_rule("OptionalGetElement")
def optional_get_element(ctx: InferenceContext) -> Type | None:
    t = ctx.input_type(0)
    return t.elem_type if isinstance(t, OptionalType) else t


# ---------------------------------------------------------------------- strings

@shape_rule("StringConcat")
def string_concat(ctx: InferenceContext) -> TensorType | None:
    return tensor(DataType.STRING, broadcast([ctx.shape(0), ctx.shape(1)], ctx))


@shape_rule("RegexFullMatch")
def regex_full_match(ctx: InferenceContext) -> TensorType | None:
    return tensor(DataType.BOOL, ctx.shape(0))


@shape_rule("StringNormalizer")
def string_normalizer(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    if s is None:
        return tensor(DataType.STRING, None)
    if not ctx.attr("stopwords", None):
        return tensor(DataType.STRING, s)
    # stopwords removed: the count of what remains depends on the strings
    return tensor(DataType.STRING, [*s[:-1], None] if s else [None])


@shape_rule("StringSplit")
def string_split(ctx: InferenceContext) -> list[TensorType | None]:
    s = ctx.shape(0)
    if s is None:
        return [tensor(DataType.STRING, None), tensor(DataType.INT64, None)]
    return [tensor(DataType.STRING, [*s, None]), tensor(DataType.INT64, s)]


# ---------------------------------------------------------------------- random

@shape_rule(("RandomNormal", "RandomUniform"))
def random_(ctx: InferenceContext) -> TensorType | None:
    return tensor(_dtype(ctx, "dtype", DataType.FLOAT), list(ctx.attr("shape", [])))


@shape_rule(("RandomNormalLike", "RandomUniformLike", "Bernoulli"))
def random_like(ctx: InferenceContext) -> TensorType | None:
    return tensor(_dtype(ctx, "dtype", ctx.elem(0)), ctx.shape(0))


@shape_rule("Multinomial")
def multinomial(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    n = int(ctx.attr("sample_size", 1))
    return tensor(_dtype(ctx, "dtype", DataType.INT32), [s[0] if s else None, n])


# ---------------------------------------------------------------------- signal

@shape_rule(("HannWindow", "HammingWindow", "BlackmanWindow"))
def window(ctx: InferenceContext) -> TensorType | None:
    p = ctx.partial(0)
    return tensor(_dtype(ctx, "output_datatype", DataType.FLOAT),
                  [p[0] if p is not None and len(p) == 1 else None])


@shape_rule("MelWeightMatrix")
def mel_weight_matrix(ctx: InferenceContext) -> TensorType | None:
    bins, n = ctx.partial(0), ctx.partial(1)
    rows = dim_add(dim_floordiv(n[0], 2), 1) if n is not None and len(n) == 1 else None
    return tensor(_dtype(ctx, "output_datatype", DataType.FLOAT),
                  [rows, bins[0] if bins is not None and len(bins) == 1 else None])


def _scalar(ctx: InferenceContext, i: int) -> Dim:
    """The value of a rank-0 (or one-element) integer input as a dim; None when unknown."""
    p = ctx.partial(i)
    return p[0] if p is not None and len(p) == 1 else None


@shape_rule("DFT")
def dft(ctx: InferenceContext) -> TensorType | None:
    """The input's shape with the transformed axis resized (n, n // 2 + 1 one-sided, or the
    inverse one-sided length) and the last dim 2 (complex), or 1 for the real result of an
    inverse one-sided transform."""
    s = ctx.shape(0)
    elem = ctx.elem(0)
    if s is None:
        return tensor(elem, None)
    r = len(s)
    if r < 2:
        raise ctx.fail(f"input has shape {list(s)}; it needs a signal axis and a last dim of "
                       f"1 (real) or 2 (complex)")
    last = s[-1]
    if is_concrete(last) and last not in (1, 2):
        raise ctx.fail(f"input has shape {list(s)}; its last dim must be 1 (real) or 2 "
                       f"(complex), not {last}")
    inverse = int(ctx.attr("inverse", 0))
    onesided = int(ctx.attr("onesided", 0))
    if onesided and not inverse and last == 2:
        raise ctx.fail("onesided=1 (forward) needs a real input ([..., 1]); a complex input "
                       "has no one-sided transform")
    if onesided and inverse and last == 1:
        raise ctx.fail("onesided=1 with inverse=1 needs a complex one-sided spectrum "
                       "([..., 2]), got a real input")
    if ctx.since_version < 20:
        axis: Dim = int(ctx.attr("axis", 1))
    else:
        axis = _scalar(ctx, 2) if ctx.has_input(2) else -2
    if is_concrete(axis) and not (-r <= axis <= -2 or 0 <= axis <= r - 2):  # type: ignore[operator]
        raise ctx.fail(f"axis {axis} is out of range for an input of rank {r} (allowed: "
                       f"[{-r}, -2] or [0, {r - 2}]; the last dim holds the real and imaginary "
                       f"parts)")
    n: Dim = _scalar(ctx, 1) if ctx.has_input(1) else None
    if is_concrete(n) and n < 1:  # type: ignore[operator]
        raise ctx.fail(f"dft_length is {n}; it must be positive")
    out_last = 1 if onesided and inverse else 2
    if not is_concrete(axis):
        if not onesided and not ctx.has_input(1):
            return tensor(elem, [*s[:-1], 2])  # every axis keeps its length
        return tensor(elem, [None] * (r - 1) + [out_last])
    ax = int(axis) + r if int(axis) < 0 else int(axis)  # type: ignore[arg-type]
    n_in = s[ax]
    if onesided and inverse:
        length = n if ctx.has_input(1) else dim_mul(dim_sub(n_in, 1), 2) \
            if n_in is not None else None
    else:
        length = n if ctx.has_input(1) else n_in
        if onesided:
            length = dim_add(dim_floordiv(length, 2), 1) if length is not None else None
    out = list(s)
    out[ax] = length
    out[-1] = out_last
    return tensor(elem, out)


@shape_rule("STFT")
def stft(ctx: InferenceContext) -> TensorType | None:
    """[batch, frames, bins, 2]: frames = (length - frame_length) // frame_step + 1, bins =
    frame_length // 2 + 1 one-sided (the default) or frame_length; the frame length is the
    frame_length input, else the window's length, else the signal's."""
    s = ctx.shape(0)
    elem = ctx.elem(0)
    if s is not None and len(s) != 3:
        raise ctx.fail(f"input signal has shape {list(s)}; it must be [batch, length, 1 or 2]")
    if s is not None and is_concrete(s[2]) and s[2] not in (1, 2):
        raise ctx.fail(f"input signal has shape {list(s)}; its last dim must be 1 (real) or 2 "
                       f"(complex)")
    onesided = int(ctx.attr("onesided", 1))
    if onesided and s is not None and s[2] == 2:
        raise ctx.fail("onesided=1 needs a real signal ([..., 1]); set onesided=0 for a "
                       "complex one")
    step = _scalar(ctx, 1)
    if is_concrete(step) and step < 1:  # type: ignore[operator]
        raise ctx.fail(f"frame_step is {step}; it must be positive")
    w = ctx.shape(2)
    if w is not None and len(w) != 1:
        raise ctx.fail(f"input window has shape {list(w)}; it must be 1-D")
    flen: Dim = _scalar(ctx, 3) if ctx.has_input(3) else None
    if w is not None:
        if is_concrete(flen) and is_concrete(w[0]) and flen != w[0]:
            raise ctx.fail(f"window has length {w[0]} but frame_length is {flen}; they must "
                           f"be equal")
        flen = w[0] if flen is None else flen
    length = s[1] if s is not None else None
    if flen is None and not ctx.has_input(3) and w is None:
        flen = length
    if is_concrete(flen) and (flen < 1 or is_concrete(length)  # type: ignore[operator]
                              and flen > length):  # type: ignore[operator]
        raise ctx.fail(f"frame_length {flen} must be in [1, signal length {length}]")
    frames: Dim = None
    if length is not None and flen is not None and is_concrete(step):
        frames = dim_add(dim_floordiv(dim_sub(length, flen), step), 1)
    bins = (dim_add(dim_floordiv(flen, 2), 1) if onesided else flen) if flen is not None \
        else None
    return tensor(elem, [s[0] if s is not None else None, frames, bins, 2])


@shape_rule("TfIdfVectorizer")
def tfidf(ctx: InferenceContext) -> TensorType | None:
    s = ctx.shape(0)
    idx = ctx.attr("ngram_indexes", None)
    c: Dim = (max(idx) + 1) if idx else None
    if s is None:
        return tensor(DataType.FLOAT, None)
    return tensor(DataType.FLOAT, [c] if len(s) <= 1 else [s[0], c])


# ---------------------------------------------------------------------- other

@shape_rule("BitCast")
def bit_cast(ctx: InferenceContext) -> TensorType | None:
    return tensor(_dtype(ctx, "to", None), ctx.shape(0))


@shape_rule("ImageDecoder")
def image_decoder(ctx: InferenceContext) -> TensorType:
    fmt = ctx.attr("pixel_format", "RGB")
    return TensorType(DataType.UINT8, (None, None, 1 if fmt == "Grayscale" else 3))




@shape_rule("NonMaxSuppression")
def non_max_suppression(ctx: InferenceContext) -> TensorType:
    # [num_selected, 3]: how many boxes survive depends on the scores
    return TensorType(DataType.INT64, (None, 3))
