"""Every registered kernel on rank-0 and zero-size inputs of every element type it accepts.

Exporters emit these all the time: torch.onnx and tf2onnx compute shapes with rank-0 integer
tensors (``size // stride`` is an integer ``Div`` of two scalars), and empty batches or empty
index lists give zero-size tensors. NumPy turns a 0-d result into a NumPy scalar (``np.int64``,
not an array) and reduces an empty array in its own ways, so kernels break there and nowhere else.

The sweep walks the kernel registry and each kernel's schema. For each registered
(domain, op_type, since_version), for each element type of each type constraint (the other
constraints held at a default type), and for each input kind of :data:`KINDS`, it builds inputs
from the schema (every required input, one value per variadic one, optional inputs absent) and
calls the kernel as a session does. Then:

* the kernel returns, or raises a ``PyOnnxError`` (never NumPy's or Python's own exception);
* every tensor output is a ``numpy.ndarray`` (never a NumPy or Python scalar) whose dtype is the
  one the schema's type constraints give (the input's type for a shared constraint, the stated
  type for a fixed one);
* where the kernel computes at the default element types, the same one-node model run in
  ``pyonnx.InferenceSession`` (feed checks, the plan's calls) gives the kernel's outputs;
* at the default element types, onnxruntime runs the same one-node model: where onnxruntime
  computes a result, pyonnx must compute the same dtype, shape and values (where onnxruntime
  cannot load or run the model, pyonnx may refuse as well);
* an element type the schema accepts is not refused where the default type of the same inputs is
  computed (except the documented :data:`DTYPE_REFUSALS`), and gives the same output shapes.

Ops whose inputs need particular shapes or attributes get a hand-written builder in
:data:`BUILDERS`; kernels that cannot be swept are listed in :data:`EXCLUDED` with the reason, and
a kernel refused on every kind of input without being listed there fails the coverage test, so
nothing is skipped silently. Where pyonnx and onnxruntime part ways on purpose, the tables
:data:`DTYPE_REFUSALS`, :data:`ORT_LENIENT` and :data:`VALUE_DIFFERENCES` say why, and an entry
no case needs any more fails the coverage test too.

(``Gradient`` is not in the walk: its kernel is built from the graph around the node, through
``registry.graph_kernel``, and its tests build such graphs.)

The last tests run the same kinds of input through ``pyonnx.InferenceSession`` and onnxruntime:
the shape arithmetic exporters emit, and the control-flow ops the kernel sweep excludes.
"""

from __future__ import annotations

import atexit
import functools
import pickle
import struct
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from pyonnx import defs
from pyonnx.defs.schema import FormalParameter, OpSchema
from pyonnx.errors import PyOnnxError
from pyonnx.ir import DataType
from pyonnx.ops.registry import KernelContext, get_kernel, registered_ops, wants_context

# ------------------------------------------------------------------------------------ inputs

#: The input kinds: a shape that every tensor input of the generic builder takes.
KINDS: dict[str, tuple[int, ...]] = {"rank0": (), "empty1": (0,), "empty2": (2, 0)}

#: Which element type a type constraint takes while another one is swept: the first of these
#: that the constraint allows (else its first type).
_PREFERRED = ("float", "int64", "int32", "bool", "string", "uint8", "float16", "double")


def _dtype(type_str: str) -> np.dtype | None:
    """The NumPy dtype of ``tensor(<elem>)``; None for sequences, maps, optionals and types
    without a NumPy equivalent."""
    if not type_str.startswith("tensor(") or not type_str.endswith(")"):
        return None
    try:
        return DataType.from_onnx_name(type_str[7:-1]).numpy
    except ValueError:
        return None


def _default_type(types: tuple[str, ...]) -> str:
    for name in _PREFERRED:
        if f"tensor({name})" in types:
            return f"tensor({name})"
    return types[0]


def filled(shape: tuple[int, ...], dtype: np.dtype, value: int = 1) -> np.ndarray:
    """A tensor of ``shape`` and ``dtype`` holding ``value`` (its decimal text for strings, which
    casts parse)."""
    dtype = np.dtype(dtype)
    if dtype == object:
        return np.full(shape, str(value), dtype=object)
    return np.full(shape, value).astype(dtype)


@dataclass
class Case:
    """One kernel call: positional inputs (None for an absent optional input), attributes, and
    the element type each type constraint is bound to."""

    inputs: list[Any]
    attrs: dict[str, Any] = field(default_factory=dict)
    binding: dict[str, str] = field(default_factory=dict)
    num_outputs: int | None = None  # default: every formal output


class Types:
    """What a hand-written builder knows: the dtype bound to each type constraint (``T("T1")``,
    with a fallback for a constraint this version of the schema lacks) and the schema version
    (inputs and attributes change between versions)."""

    def __init__(self, binding: Mapping[str, str], version: int) -> None:
        self.binding = binding
        self.version = version

    def __call__(self, param: str, default: Any = None) -> np.dtype:
        if param not in self.binding and default is not None:
            return np.dtype(default)
        dt = _dtype(self.binding.get(param, param))
        assert dt is not None, f"{param} is bound to {self.binding.get(param)}, not a tensor"
        return dt


#: A hand-written builder: (kind, types) -> the case, or None where that kind of input does not
#: apply to the op.
Builder = Callable[[str, Types], Case | None]


#: Attributes the generic builder sets: those the schema requires (or whose default the generic
#: inputs cannot meet), by op_type.
REQUIRED_ATTRS: dict[str, dict[str, Any]] = {
    "BitShift": {"direction": "LEFT"},
    "Concat": {"axis": 0},
    "Mod": {"fmod": 1},  # fmod=0 is for integers only before opset 28
    "Unsqueeze": {"axes": [0]},  # Unsqueeze-1/11 (later versions take axes as an input)
    "ConcatFromSequence": {"axis": 0},
    "Momentum": {"alpha": 0.9, "beta": 0.1, "mode": "standard", "norm_coefficient": 0.0},
    # for the generic inputs on kinds where an op's hand-written builder has no case
    **{op: {"blocksize": 2} for op in ("DepthToSpace", "SpaceToDepth")},
    **{op: {"kernel_shape": [2, 2]} for op in ("AveragePool", "MaxPool", "LpPool", "MaxUnpool",
                                               "NhwcMaxPool", "QLinearAveragePool")},
    "Slice": {"starts": [0], "ends": [1]},
    "TopK": {"k": 1},
    "Upsample": {"height_scale": 2.0, "width_scale": 2.0, "scales": [2.0]},
    "MatMulNBits": {"K": 16, "N": 2, "block_size": 16},
    "QLinearConcat": {"axis": 0},
    "Einsum": {"equation": "->"},
    "LinearAttention": {"q_num_heads": 1, "kv_num_heads": 1},
    "LRN": {"size": 3},
    "GroupNormalization": {"num_groups": 1},
    "MaxRoiPool": {"pooled_shape": [1, 1]},
    "TfIdfVectorizer": {"mode": "TF", "min_gram_length": 1, "max_gram_length": 1,
                        "max_skip_count": 0, "ngram_counts": [0], "ngram_indexes": [0],
                        "pool_int64s": [1]},
}

#: Ops whose output element type is an attribute: the attribute, set from the constraint the
#: sweep binds (swept over all its types like an input's).
OUTPUT_TYPE_ATTRS: dict[str, tuple[str, str]] = {
    "Cast": ("T2", "to"),
    "EyeLike": ("T2", "dtype"),
    "RandomNormalLike": ("T2", "dtype"),
    "RandomUniformLike": ("T2", "dtype"),
    "Bernoulli": ("T2", "dtype"),
}


def _is_per_tensor(p: FormalParameter) -> bool:
    """Quantization scales and zero points are given per tensor (rank 0) by the generic builder:
    the zero-size kinds apply to the data, not to its parameters."""
    return p.name.endswith(("_scale", "zero_point"))


def generic_case(schema: OpSchema, kind: str, binding: Mapping[str, str]) -> Case | None:
    """Every required input (and one value of a variadic one) of the kind's shape, optional
    inputs absent; None when an input is not a tensor."""
    shape = KINDS[kind]
    inputs: list[Any] = []
    for p in schema.inputs:
        if p.is_optional and not p.name.endswith("zero_point"):
            inputs.append(None)  # (a zero point is given: it binds the quantized output type)
            continue
        dt = _dtype(binding.get(p.type_str, p.type_str))
        if dt is None:
            return None
        for _ in range(max(p.min_arity, 1) if p.is_variadic else 1):
            inputs.append(filled(() if _is_per_tensor(p) else shape, dt))
    while inputs and inputs[-1] is None:  # absent trailing inputs are not passed at all
        inputs.pop()
    attrs = {k: v for k, v in REQUIRED_ATTRS.get(schema.name, {}).items()
             if k in schema.attributes}  # (attributes come and go between versions)
    if schema.name in OUTPUT_TYPE_ATTRS:
        param, attr = OUTPUT_TYPE_ATTRS[schema.name]
        attrs[attr] = int(DataType.from_onnx_name(binding[param][7:-1]))
    return Case(inputs, attrs, dict(binding))


# ------------------------------------------------------------------------ hand-written builders
#
# A builder gets the kind and the binding of the type constraints and returns the case, or None
# where the kind does not apply (most ops below have no rank-0 form; their zero-size case is an
# empty batch, the one exporters produce). Where a builder returns None the generic inputs still
# run, and the kernel must refuse them with a PyOnnxError.

I64 = np.dtype(np.int64)


def _a(values: Any, dtype: Any = I64) -> np.ndarray:
    return np.array(values, dtype=dtype)


def _empty_batch(build: Callable[[Types], Case]) -> Builder:
    """A builder that has only a zero-size case (under ``empty1``), built by ``build`` from a
    function giving the dtype bound to a constraint name."""
    def builder(kind: str, T: Types) -> Case | None:
        return build(T) if kind == "empty1" else None
    return builder


def _x(shape: tuple[int, ...], dt: np.dtype, value: int = 1) -> np.ndarray:
    return filled(shape, dt, value)


def _pool(**attrs: Any) -> Builder:
    return _empty_batch(lambda T: Case([_x((0, 1, 3, 3), T("T"))], dict(attrs)))


def _conv(t: str = "T", **attrs: Any) -> Builder:
    return _empty_batch(lambda T: Case([_x((0, 2, 3, 3), T(t)), _x((4, 2, 2, 2), T(t))],
                                       dict(attrs)))


def _rnn(gates: int) -> Builder:
    # sequence of 2 steps, empty batch, input size 3, hidden size 2
    return _empty_batch(lambda T: Case(
        [_x((2, 0, 3), T("T")), _x((1, gates * 2, 3), T("T")), _x((1, gates * 2, 2), T("T"))],
        {"hidden_size": 2}))


def _by_kind(cases: Mapping[str, Callable[[Types], Case]]) -> Builder:
    """A builder with a case for each kind named in ``cases``."""
    def builder(kind: str, T: Types) -> Case | None:
        build = cases.get(kind)
        return None if build is None else build(T)
    return builder


def _each_kind(make: Callable[[tuple[int, ...], Types], Case | None]) -> Builder:
    """A builder calling ``make(shape, types)`` with the shape of each kind."""
    return lambda kind, T: make(KINDS[kind], T)


def _slice() -> Builder:
    def build(shape: tuple[int, ...]) -> Callable[[Types], Case]:
        def make(T: Types) -> Case:
            if T.version < 10:
                return Case([_x(shape, T("T"))], {"starts": [0], "ends": [1], "axes": [0]})
            return Case([_x(shape, T("T")), _a([0], T("Tind")), _a([1], T("Tind")),
                         _a([0], T("Tind"))])
        return make
    return _by_kind({"empty1": build((0,)), "empty2": build((2, 0))})


def _sequence(op: str) -> Builder:
    """Sequence and optional ops on float32 elements of the kind's shape (the element type is
    not swept: these kernels never compute on the elements)."""
    def make(shape: tuple[int, ...]) -> Callable[[Types], Case]:
        def build(T: Types) -> Case:
            x = _x(shape, np.dtype(np.float32))
            return {
                "SequenceAt": Case([[x], _a(0)]),
                "SequenceErase": Case([[x], _a(0)]),
                "SequenceInsert": Case([[x], x]),
                "SequenceLength": Case([[x]]),
                "ConcatFromSequence": Case([[x, x]], {"axis": 0}),
                "OptionalHasElement": Case([x]),
                "OptionalGetElement": Case([x]),
            }[op]
        return build
    return _by_kind({k: make(v) for k, v in KINDS.items()})


#: One tree of one leaf (the attributes TreeEnsembleRegressor/Classifier share).
_LEAF: dict[str, Any] = {"nodes_treeids": [0], "nodes_nodeids": [0], "nodes_featureids": [0],
                         "nodes_modes": ["LEAF"], "nodes_values": [0.0],
                         "nodes_truenodeids": [0], "nodes_falsenodeids": [0]}
#: Term frequencies of the 1-grams {1}.
_TFIDF: dict[str, Any] = {"mode": "TF", "min_gram_length": 1, "max_gram_length": 1,
                          "max_skip_count": 0, "ngram_counts": [0], "ngram_indexes": [0],
                          "pool_int64s": [1]}

BUILDERS: dict[tuple[str, str], Builder] = {
    # pooling, normalization and convolution over an empty batch (N = 0)
    **{("", op): _pool(kernel_shape=[2, 2]) for op in ("AveragePool", "MaxPool", "LpPool")},
    ("com.microsoft", "NhwcMaxPool"): _empty_batch(lambda T: Case(
        [_x((0, 3, 3, 1), T("T"))], {"kernel_shape": [2, 2]})),
    **{("", op): _pool() for op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
                                    "MeanVarianceNormalization")},
    ("", "LRN"): _pool(size=3),
    ("", "InstanceNormalization"): _empty_batch(lambda T: Case(
        [_x((0, 2, 3), T("T")), _x((2,), T("T")), _x((2,), T("T"))])),
    ("", "GroupNormalization"): _empty_batch(lambda T: Case(  # scale per group before 21
        [_x((0, 4, 3), T("T"))] + [_x((4 if T.version >= 21 else 2,), T("T"))] * 2,
        {"num_groups": 2})),
    ("", "BatchNormalization"): _empty_batch(lambda T: Case(
        [_x((0, 2, 3), T("T"))] + [_x((2,), T("T"))] * 4, num_outputs=1)),
    ("", "Conv"): _conv(),
    ("com.microsoft", "FusedConv"): _conv(),  # Conv + activation: the same inputs
    ("", "ConvTranspose"): _empty_batch(lambda T: Case(
        [_x((0, 2, 3, 3), T("T")), _x((2, 4, 2, 2), T("T"))])),
    ("", "ConvInteger"): _empty_batch(lambda T: Case(
        [_x((0, 2, 3, 3), T("T1")), _x((4, 2, 2, 2), T("T2"))])),
    ("", "DeformConv"): _empty_batch(lambda T: Case(
        [_x((0, 2, 3, 3), T("T")), _x((4, 2, 2, 2), T("T")), _x((0, 8, 2, 2), T("T"))])),
    ("", "QLinearConv"): _empty_batch(lambda T: Case(
        [_x((0, 2, 3, 3), T("T1")), _a(0.5, np.float32), _a(0, T("T1")),
         _x((4, 2, 2, 2), T("T2")), _a(0.5, np.float32), _a(0, T("T2")),
         _a(0.5, np.float32), _a(0, T("T3"))])),
    ("", "MaxUnpool"): _empty_batch(lambda T: Case(
        [_x((0, 1, 1, 1), T("T1")), _a(np.zeros((0, 1, 1, 1)), T("T2"))],
        {"kernel_shape": [2, 2]})),
    ("", "DepthToSpace"): _empty_batch(lambda T: Case([_x((0, 4, 1, 1), T("T"))],
                                                      {"blocksize": 2})),
    ("", "SpaceToDepth"): _empty_batch(lambda T: Case([_x((0, 1, 2, 2), T("T"))],
                                                      {"blocksize": 2})),
    ("", "Resize"): _empty_batch(lambda T: Case(
        [_x((0, 1, 2, 2), T("T1", T("T", np.float32)))]
        + ([None] if T.version >= 11 else []) + [_a([1, 1, 2, 2], np.float32)])),
    ("", "Upsample"): _empty_batch(lambda T: (
        Case([_x((0, 1, 2, 2), T("T")), _a([1, 1, 2, 2], np.float32)]) if T.version >= 9
        else Case([_x((0, 1, 2, 2), T("T"))], {"scales": [1.0, 1.0, 2.0, 2.0]}) if T.version == 7
        else Case([_x((0, 1, 2, 2), T("T"))], {"height_scale": 2.0, "width_scale": 2.0}))),
    ("", "GridSample"): _empty_batch(lambda T: Case(
        [_x((0, 1, 2, 2), T("T1")), _x((0, 2, 2, 2), T("T2"))])),
    ("com.microsoft", "GridSample"): _empty_batch(lambda T: Case(
        [_x((0, 1, 2, 2), T("T1")), _x((0, 2, 2, 2), T("T2"))])),
    ("", "AffineGrid"): _empty_batch(lambda T: Case(
        [_x((0, 2, 3), T("T1")), _a([0, 1, 2, 2], T("T2"))])),
    ("", "RoiAlign"): _empty_batch(lambda T: Case(
        [_x((1, 1, 2, 2), T("T1")), _x((0, 4), T("T1")), _a(np.zeros(0), T("T2"))])),
    ("", "MaxRoiPool"): _empty_batch(lambda T: Case(
        [_x((1, 1, 2, 2), T("T")), _x((0, 5), T("T"))], {"pooled_shape": [1, 1]})),
    ("", "Col2Im"): _empty_batch(lambda T: Case(
        [_x((0, 4, 4), T("T")), _a([3, 3]), _a([2, 2])])),
    ("", "CenterCropPad"): _empty_batch(lambda T: Case(
        [_x((0, 3), T("T")), _a([0, 2], T("Tind"))])),
    ("", "RNN"): _rnn(1), ("", "GRU"): _rnn(3), ("", "LSTM"): _rnn(4),
    # matrix products with an empty inner or outer dimension
    ("", "Gemm"): _by_kind({
        "empty1": lambda T: Case([_x((0, 3), T("T")), _x((3, 4), T("T"))]),
        "empty2": lambda T: Case([_x((2, 0), T("T")), _x((0, 4), T("T"))])}),
    ("", "Det"): _by_kind({"empty1": lambda T: Case([_x((0, 2, 2), T("T"))])}),
    ("com.microsoft", "Inverse"): _by_kind({"empty1": lambda T: Case([_x((0, 2, 2), T("T"))])}),
    ("com.microsoft", "Tokenizer"): _each_kind(lambda shape, T: Case(  # required attributes
        [_x(shape, T("T"))], {"mark": 1, "mincharnum": 1, "pad_value": "#", "separators": [" "]})),
    ("", "QLinearMatMul"): _by_kind({
        "empty1": lambda T: Case([_x((0, 3), T("T1")), _a(0.5, T("TS", np.float32)), _a(0, T("T1")),
                                  _x((3, 4), T("T2")), _a(0.5, T("TS", np.float32)), _a(0, T("T2")),
                                  _a(0.5, T("TS", np.float32)), _a(0, T("T3"))]),
        "empty2": lambda T: Case([_x((2, 0), T("T1")), _a(0.5, T("TS", np.float32)), _a(0, T("T1")),
                                  _x((0, 4), T("T2")), _a(0.5, T("TS", np.float32)), _a(0, T("T2")),
                                  _a(0.5, T("TS", np.float32)), _a(0, T("T3"))])}),
    ("com.microsoft", "DynamicQuantizeMatMul"): _by_kind({
        "empty1": lambda T: Case([_x((0, 3), T("T1")), _x((3, 4), T("T2")), _a(0.5, T("T1"))]),
        "empty2": lambda T: Case([_x((2, 0), T("T1")), _x((0, 4), T("T2")), _a(0.5, T("T1"))])}),
    ("com.microsoft", "MatMulIntegerToFloat"): _by_kind({
        "empty1": lambda T: Case([_x((0, 3), T("T1")), _x((3, 4), T("T2")), _a(0.5, T("T3")),
                                  _a(0.5, T("T3"))]),
        "empty2": lambda T: Case([_x((2, 0), T("T1")), _x((0, 4), T("T2")), _a(0.5, T("T3")),
                                  _a(0.5, T("T3"))])}),
    ("com.microsoft", "QGemm"): _by_kind({
        "empty1": lambda T: Case([_x((0, 3), T("TA")), _a(0.5, np.float32), _a(0, T("TA")),
                                  _x((3, 4), T("TB")), _a(0.5, np.float32), _a(0, T("TB"))])}),
    ("", "Einsum"): _by_kind({
        "rank0": lambda T: Case([_x((), T("T"))], {"equation": "->"}),
        "empty1": lambda T: Case([_x((0,), T("T"))], {"equation": "i->"}),
        "empty2": lambda T: Case([_x((2, 0), T("T")), _x((0, 3), T("T"))],
                                 {"equation": "ij,jk->ik"})}),
    ("", "BitCast"): _each_kind(lambda s, T: Case(  # to the input's own type: same width
        [_x(s, T("T1"))], {"to": int(DataType.from_numpy(T("T1")))})),
    ("", "MatMul"): _by_kind({
        "empty1": lambda T: Case([_x((0,), T("T")), _x((0,), T("T"))]),  # a dot product: 0-d
        "empty2": lambda T: Case([_x((2, 2, 0), T("T")), _x((0, 3), T("T"))])}),
    # indices, axes, counts given as inputs
    ("", "Unsqueeze"): _each_kind(lambda s, T: (
        Case([_x(s, T("T")), _a([0])]) if T.version >= 13 else Case([_x(s, T("T"))],
                                                                     {"axes": [0]}))),
    ("", "Slice"): _slice(),
    ("", "Tile"): _each_kind(lambda s, T: (
        Case([_x(s, T("T")), _a([2] * len(s))]) if T.version >= 6
        else Case([_x(s, T("T")), _a(2), _a(0)]) if s else None)),
    ("", "Pad"): _each_kind(lambda s, T: (
        Case([_x(s, T("T")), _a([0, 1] * len(s))]) if T.version >= 11
        else Case([_x(s, T("T"))], {"paddings" if T.version < 2 else "pads": [0, 1] * len(s)}))),
    ("", "TopK"): _each_kind(lambda s, T: None if not s else (
        Case([_x(s, T("T")), _a([0])]) if T.version >= 10 else Case([_x(s, T("T"))], {"k": 0}))),
    ("", "CumSum"): _by_kind({"empty1": lambda T: Case([_x((0,), T("T")), _a(0, T("T2"))]),
                              "empty2": lambda T: Case([_x((2, 0), T("T")), _a(1, T("T2"))])}),
    ("", "CumProd"): _by_kind({"empty1": lambda T: Case([_x((0,), T("T")), _a(0, T("T2"))]),
                               "empty2": lambda T: Case([_x((2, 0), T("T")), _a(1, T("T2"))])}),
    ("", "GatherND"): _by_kind({
        "empty1": lambda T: Case([_x((0,), T("T")), _a(np.zeros((0, 1)))]),
        "empty2": lambda T: Case([_x((2, 0), T("T")), _a(np.zeros((0, 1)))])}),
    ("", "ScatterND"): _by_kind({
        "empty1": lambda T: Case([_x((0,), T("T")), _a(np.zeros((0, 1))), _x((0,), T("T"))]),
        "empty2": lambda T: Case([_x((2, 0), T("T")), _a(np.zeros((0, 1))),
                                  _x((0, 0), T("T"))])}),
    ("", "OneHot"): _by_kind({k: (lambda s: lambda T: Case(
        [_x(s, T("T1"), 0), _a(3, T("T2")), _a([0, 1], T("T3"))]))(v)
        for k, v in KINDS.items()}),
    ("", "NonMaxSuppression"): _empty_batch(lambda T: Case(
        [_x((1, 0, 4), np.float32), _x((1, 1, 0), np.float32)])),
    ("", "Multinomial"): _empty_batch(lambda T: Case([_x((0, 3), T("T1"))])),
    ("", "NegativeLogLikelihoodLoss"): _empty_batch(lambda T: Case(
        [_x((0, 3), T("T")), _a(np.zeros(0), T("Tind"))])),
    ("", "SoftmaxCrossEntropyLoss"): _empty_batch(lambda T: Case(
        [_x((0, 3), T("T")), _a(np.zeros(0), T("Tind"))], num_outputs=1)),
    # values that are attributes
    ("", "Constant"): _by_kind({k: (lambda s: lambda T: Case([], {"value": _x(s, T("T"))}))(v)
                                for k, v in KINDS.items()}),
    **{("", op): _by_kind({k: (lambda s: lambda T: Case([], {"shape": list(s)}))(v)
                           for k, v in KINDS.items()})
       for op in ("RandomNormal", "RandomUniform")},
    # sequences and optionals, holding tensors of the kind's shape
    **{("", op): _sequence(op) for op in ("SequenceAt", "SequenceErase", "SequenceInsert",
                                          "SequenceLength", "OptionalHasElement",
                                          "OptionalGetElement")},
    ("", "ConcatFromSequence"): _by_kind({
        "empty1": lambda T: Case([[_x((0,), np.float32)] * 2], {"axis": 0}),
        "empty2": lambda T: Case([[_x((2, 0), np.float32)] * 2], {"axis": 1})}),
    # training
    **{("ai.onnx.preview.training", op): _each_kind(lambda s, T, op=op, n=n: Case(
        [_a(0.1, T("T1")), _a(1, T("T2"))] + [_x(s, T("T3"))] * n,
        dict(REQUIRED_ATTRS.get(op, {}))))
       for op, n in (("Adagrad", 3), ("Adam", 4), ("Momentum", 3))},
    # signal processing over an empty batch; MelWeightMatrix with no mel bins
    ("", "DFT"): _empty_batch(lambda T: Case([_x((0, 4, 1), T("T1"))])),
    ("", "STFT"): _empty_batch(lambda T: Case([_x((0, 8, 1), T("T1")), _a(2, T("T2")), None,
                                               _a(4, T("T2"))])),
    ("", "MelWeightMatrix"): _empty_batch(lambda T: Case(
        [_a(0, T("T1")), _a(4, T("T1")), _a(8000, T("T1")), _a(0, T("T2")),
         _a(4000, T("T2"))])),
    # attention over an empty batch: (batch, heads, sequence, head size)
    ("", "Attention"): _empty_batch(lambda T: Case(
        [_x((0, 1, 2, 4), T("T1")), _x((0, 1, 2, 4), T("T1")), _x((0, 1, 2, 4), T("T2"))],
        num_outputs=1)),
    ("", "RotaryEmbedding"): _empty_batch(lambda T: Case(
        [_x((0, 1, 2, 4), T("T")), _x((0, 2, 2), T("T")), _x((0, 2, 2), T("T"))])),
    ("com.microsoft", "MultiHeadAttention"): _empty_batch(lambda T: Case(
        [_x((0, 2, 4), T("T")), _x((0, 2, 4), T("T")), _x((0, 2, 4), T("T"))],
        {"num_heads": 1}, num_outputs=1)),
    ("com.microsoft", "Attention"): _empty_batch(lambda T: Case(
        [_x((0, 2, 4), T("T")), _x((4, 12), T("T")), _x((12,), T("T"))], {"num_heads": 1},
        num_outputs=1)),
    ("com.microsoft", "QAttention"): _empty_batch(lambda T: Case(
        [_x((0, 2, 4), T("T1")), _x((4, 12), T("T2")), _x((12,), T("T3")), _a(0.5, T("T3")),
         _a(0.5, T("T3"))], {"num_heads": 1}, num_outputs=1)),
    ("com.microsoft", "EmbedLayerNormalization"): _empty_batch(lambda T: Case(
        [_a(np.zeros((0, 2)), T("T1")), None, _x((5, 4), T("T")), _x((4, 4), T("T")), None,
         _x((4,), T("T")), _x((4,), T("T"))], num_outputs=2)),
    ("com.microsoft", "MatMulNBits"): _empty_batch(lambda T: Case(  # K=16 in one 4-bit block
        [_x((0, 16), T("T1")), _a(np.zeros((2, 1, 8)), T("T2")), _x((2,), T("T1"))],
        {"K": 16, "N": 2, "bits": 4, "block_size": 16})),
    # traditional ML over an empty batch (one-leaf trees, two classes)
    ("ai.onnx.ml", "LinearClassifier"): _empty_batch(lambda T: Case(
        [_x((0, 2), T("T1"))], {"coefficients": [1.0, 2.0, 3.0, 4.0],
                                "classlabels_ints": [0, 1]})),
    ("ai.onnx.ml", "TreeEnsembleRegressor"): _empty_batch(lambda T: Case(
        [_x((0, 2), T("T"))], {**_LEAF, "n_targets": 1, "target_treeids": [0],
                               "target_nodeids": [0], "target_ids": [0],
                               "target_weights": [1.0]})),
    ("ai.onnx.ml", "TreeEnsembleClassifier"): _empty_batch(lambda T: Case(
        [_x((0, 2), T("T1"))], {**_LEAF, "class_treeids": [0], "class_nodeids": [0],
                                "class_ids": [1], "class_weights": [1.0],
                                "classlabels_int64s": [0, 1]})),
    ("ai.onnx.ml", "TreeEnsemble"): _empty_batch(lambda T: Case(
        [_x((0, 2), T("T"))], {"tree_roots": [0], "nodes_featureids": [0],
                               "nodes_splits": _a([0.5], T("T")), "nodes_modes": _a([0], np.uint8),
                               "nodes_truenodeids": [0], "nodes_trueleafs": [1],
                               "nodes_falsenodeids": [1], "nodes_falseleafs": [1],
                               "leaf_targetids": [0, 0], "leaf_weights": _a([1, 2], T("T")),
                               "n_targets": 1})),
    ("ai.onnx.ml", "SVMClassifier"): _empty_batch(lambda T: Case(  # linear, one vs one
        [_x((0, 2), T("T1"))], {"kernel_type": "LINEAR", "coefficients": [1.0, -1.0],
                                "support_vectors": [0.0, 1.0, 1.0, 0.0],
                                "vectors_per_class": [1, 1], "rho": [0.0],
                                "classlabels_ints": [0, 1]})),
    ("ai.onnx.ml", "Imputer"): _empty_batch(lambda T: Case(
        [_x((0, 2), T("T"))], {"imputed_value_floats": [0.0, 0.0],
                               "replaced_value_float": float("nan")} if T("T").kind == "f"
        else {"imputed_value_int64s": [0, 0], "replaced_value_int64": -1})),
    ("ai.onnx.ml", "LabelEncoder"): _empty_batch(lambda T: Case(
        [_x((0,), np.dtype(object))], {"keys_strings": ["1"], "values_int64s": [7]}
        if T.version >= 2 else {"classes_strings": ["1"]})),
    ("ai.onnx.ml", "OneHotEncoder"): _empty_batch(lambda T: Case(
        [_a(np.zeros(0), I64)], {"cats_int64s": [1, 2]})),
    ("ai.onnx.ml", "ZipMap"): _empty_batch(lambda T: Case(
        [_x((0, 2), np.float32)], {"classlabels_int64s": [0, 1]})),
    ("", "TfIdfVectorizer"): _by_kind({
        **{k: (lambda s: lambda T: Case([_x(s, T("T"))], _TFIDF))(KINDS[k])
           for k in ("empty1", "empty2")}}),
    # caches and recurrent state over an empty batch
    ("", "TensorScatter"): _empty_batch(lambda T: Case(  # (batch, sequence, features)
        [_x((0, 4, 2), T("T")), _x((0, 1, 2), T("T"))])),
    ("", "LinearAttention"): _empty_batch(lambda T: Case(  # (batch, sequence, heads * size)
        [_x((0, 3, 4), T("T"))] * 3, {"q_num_heads": 1, "kv_num_heads": 1,
                                      "update_rule": "linear"}, num_outputs=2)),
    ("", "CausalConvWithState"): _empty_batch(lambda T: Case(  # depthwise: (C, 1, kernel)
        [_x((0, 2, 3), T("T")), _x((2, 1, 2), T("T"))], num_outputs=2)),
    ("ai.onnx.preview", "FlexAttention"): _empty_batch(lambda T: Case(
        [_x((0, 1, 2, 4), T("T1"))] * 3)),
    ("com.microsoft", "RotaryEmbedding"): _empty_batch(lambda T: Case(  # (batch, seq, hidden)
        [_x((0, 2, 4), T("T")), _a(np.zeros((0, 2)), T("M")), _x((4, 2), T("T")),
         _x((4, 2), T("T"))])),
    ("com.microsoft", "DynamicQuantizeLSTM"): _empty_batch(lambda T: Case(
        [_x((2, 0, 3), T("T")), _a(np.zeros((1, 3, 8)), T("T2")),
         _a(np.zeros((1, 2, 8)), T("T2"))] + [None] * 5
        + [_a([0.01], T("T")), _a([0], T("T2")), _a([0.01], T("T")), _a([0], T("T2"))],
        {"hidden_size": 2}, num_outputs=3)),
    # contrib layouts over an empty batch
    ("com.microsoft", "BiasAdd"): _empty_batch(lambda T: Case(
        [_x((0, 2, 3), T("T")), _x((3,), T("T")), _x((0, 2, 3), T("T"))])),
    ("com.microsoft", "SkipLayerNormalization"): _empty_batch(lambda T: Case(
        [_x((0, 2, 3), T("T")), _x((0, 2, 3), T("T")), _x((3,), T("T"))], num_outputs=1)),
    ("com.microsoft", "SkipSimplifiedLayerNormalization"): _empty_batch(lambda T: Case(
        [_x((0, 2, 3), T("T")), _x((0, 2, 3), T("T")), _x((3,), T("T"))], num_outputs=1)),
    ("com.microsoft", "BiasSoftmax"): _empty_batch(lambda T: Case(
        [_x((0, 2, 3), T("T")), _x((0, 2, 3), T("T"))], {"is_inner_broadcast": 0})),
    ("com.microsoft", "QLinearAveragePool"): _empty_batch(lambda T: Case(
        [_x((0, 1, 3, 3), T("T")), _a(0.5, np.float32), _a(0, T("T")), _a(0.5, np.float32),
         _a(0, T("T"))], {"kernel_shape": [2, 2]})),
    ("com.microsoft", "QLinearGlobalAveragePool"): _empty_batch(lambda T: Case(
        [_x((0, 1, 3, 3), T("T")), _a(0.5, np.float32), _a(0, T("T")), _a(0.5, np.float32),
         _a(0, T("T"))])),
    ("com.microsoft", "QLinearConcat"): _empty_batch(lambda T: Case(
        [_a(0.5, np.float32), _a(0, T("T8")), _x((0, 2), T("T8")), _a(0.5, np.float32),
         _a(0, T("T8"))], {"axis": 1})),
}

# ------------------------------------------------------------------------- documented gaps

#: (domain, op_type) or (domain, op_type, since_version) -> why the sweep does not call that
#: kernel (all its versions, or the one named).
EXCLUDED: dict[tuple[str, str] | tuple[str, str, int], str] = {
    **{("", op): "runs a graph attribute: the kernel needs a Subgraph the runtime binds; "
                 "test_control_flow_on_rank0_and_empty_inputs below runs its rank-0 and empty "
                 "inputs (conditions, trip counts, scanned sequences) through sessions"
       for op in ("If", "Loop", "Scan", "SequenceMap")},
    ("ai.onnx.ml", "CastMap"): "takes a map (a dict), which has no rank-0 or zero-size form",
    ("ai.onnx.ml", "DictVectorizer"): "takes a map (a dict), which has no rank-0 or zero-size "
                                      "form",
    ("", "LayerNormalization", 1): "onnxruntime's internal default-domain version, with no "
                                   "schema in pyonnx's table to build inputs from "
                                   "(LayerNormalization-17 is swept); tests/contrib covers it",
    ("", "SimplifiedLayerNormalization", 1): "as LayerNormalization-1",
    **{("pyonnx", op, 1): "a session-private fused kernel with no schema: the fusion pass that "
                          "creates it fixes its inputs; tests/optimizer, tests/contrib and "
                          "tests/quantization/test_int4_memory.py and test_qdq_fusion.py run it"
       for op in ("DequantizeGather", "DequantizeMatMul", "DotProductAttention",
                  "FoldBatchNormIntoConv", "FusedConv", "FusedGemm", "FusedMatMul",
                  "QuantizeDequantize", "SqueezeExcitation")},
}

#: (domain, op_type, element type or "*" for all) -> why the kernel refuses that type where the
#: default type of the same inputs is computed.
DTYPE_REFUSALS: dict[tuple[str, str, str], str] = {
    ("", "DequantizeLinear", "float8e8m0"): "the spec requires output_dtype when x_scale is "
                                            "float8e8m0 (it cannot be the output type)",
    ("", "GridSample", "string"): "interpolating strings has no meaning; the spec lists string "
                                  "only for mode 'nearest'",
    **{("", "ReduceMean", t): "the mean of an empty set is undefined in the spec; an integer "
                              "type has no NaN to say so, so the kernel refuses"
       for t in ("int32", "int64", "uint32", "uint64")},
    ("", "TfIdfVectorizer", "string"): "the builder's n-grams are integers (pool_int64s), "
                                       "which string input cannot match",
    ("com.microsoft", "GridSample", "*"): "the contrib schema's output is float whatever X's "
                                          "type: X must be float (as onnxruntime registers it)",
}

#: (domain, op_type, kind) -> why pyonnx refuses inputs that onnxruntime computes: where the
#: spec makes them invalid and onnxruntime does not check.
ORT_LENIENT: dict[tuple[str, str, str], str] = {
    ("", "MeanVarianceNormalization", "empty2"): "the default axes [0, 2, 3] do not exist in a "
                                                 "2-D tensor; onnxruntime ignores them",
    ("", "ArgMax", "rank0"): "axis 0 does not exist in a rank-0 tensor (the spec's range is "
                             "[-r, r-1]); onnxruntime returns the scalar's index 0",
    ("", "ArgMin", "rank0"): "as ArgMax",
}

#: (domain, op_type, kind) -> why pyonnx's values differ from onnxruntime's there (dtype and
#: shape are still compared).
VALUE_DIFFERENCES: dict[tuple[str, str, str], str] = {
    ("", "DynamicQuantizeLinear", "empty1"): "the spec's formula gives y_scale 0 for a range "
                                             "of [0, 0] (no values); onnxruntime substitutes 1",
    ("", "MatMulInteger", "empty1"): "onnxruntime returns uninitialized memory for an empty "
                                     "inner dimension; the sum over nothing is 0",
    ("", "QLinearMatMul", "empty2"): "onnxruntime returns uninitialized memory for an empty "
                                     "inner dimension; the quantized 0 is the zero point",
    ("", "NegativeLogLikelihoodLoss", "empty1"): "the mean over an empty batch is 0/0; pyonnx "
                                                 "gives NaN (as the spec's formula and PyTorch), "
                                                 "onnxruntime 0",
    ("", "ReduceMean", "empty1"): "the mean of an empty set is undefined in the spec: pyonnx "
                                  "gives NaN (as NumPy), onnxruntime 0",
    ("", "ReduceMean", "empty2"): "as empty1",
    ("", "DynamicQuantizeLinear", "empty2"): "as empty1",
}

# ------------------------------------------------------------------------------------ the sweep


@dataclass
class Outcome:
    """What one case gave: the outputs, or the PyOnnxError raised (message), and the problems
    found (an empty list is a pass)."""

    outputs: tuple | None = None
    refused: str | None = None
    problems: list[str] = field(default_factory=list)


def _bindings(schema: OpSchema) -> list[dict[str, str]]:
    """The default binding, then one binding per other element type of each constraint that an
    input uses (the rest held at their defaults)."""
    used = {p.type_str for p in schema.inputs if p.type_str in schema.type_constraints}
    if schema.name in OUTPUT_TYPE_ATTRS:
        used.add(OUTPUT_TYPE_ATTRS[schema.name][0])
    default = {k: _default_type(v) for k, v in schema.type_constraints.items()}
    out = [default]
    for param in sorted(used):
        for t in schema.type_constraints[param]:
            if t != default[param] and _dtype(t) is not None:
                out.append({**default, param: t})
    return out


def _expected_dtype(p: FormalParameter, schema: OpSchema, binding: Mapping[str, str],
                    inputs_bound: set[str]) -> tuple[np.dtype | None, tuple[str, ...]]:
    """(exact dtype, allowed type strings) of a formal output: exact where the constraint is
    bound by an input or the type is fixed; else only the constraint's list."""
    if p.type_str in schema.type_constraints:
        if p.type_str in inputs_bound:
            return _dtype(binding[p.type_str]), (binding[p.type_str],)
        return None, schema.type_constraints[p.type_str]
    return _dtype(p.type_str), (p.type_str,)


def _present_params(schema: OpSchema, case: Case) -> set[str]:
    """The type constraints that the case's present inputs bind (an absent optional input, such
    as QuantizeLinear's y_zero_point, leaves its constraint to the attributes' default)."""
    bound = set()
    formals = list(schema.inputs)
    for i, value in enumerate(case.inputs):
        p = formals[min(i, len(formals) - 1)]
        if value is not None:
            bound.add(p.type_str)
    return bound


def _check_outputs(res: Any, schema: OpSchema, case: Case) -> list[str]:
    """The problems with a kernel's result: not a tuple, too few outputs, a tensor output that is
    not an ndarray of the schema's dtype."""
    if not isinstance(res, tuple):
        return [f"returned {type(res).__name__}, not a tuple"]
    if len(res) < schema.min_output:
        return [f"returned {len(res)} outputs, the schema requires {schema.min_output}"]
    problems = []
    inputs_bound = _present_params(schema, case)
    if schema.name in OUTPUT_TYPE_ATTRS:
        inputs_bound.add(OUTPUT_TYPE_ATTRS[schema.name][0])
    formals = list(schema.outputs)
    for i, value in enumerate(res):
        p = formals[min(i, len(formals) - 1)]
        if p.is_optional and value is None:
            continue
        exact, allowed = _expected_dtype(p, schema, case.binding, inputs_bound)
        if not all(t.startswith("tensor(") for t in allowed):
            continue  # sequences, maps, optionals: the sequence tests cover their values
        if not isinstance(value, np.ndarray):
            problems.append(f"output {i} ({p.name}) is {type(value).__module__}."
                            f"{type(value).__qualname__}, not numpy.ndarray")
            continue
        if exact is not None and value.dtype != exact:
            problems.append(f"output {i} ({p.name}) has dtype {value.dtype}, the schema "
                            f"gives {exact}")
        elif exact is None and value.dtype not in {_dtype(t) for t in allowed}:
            problems.append(f"output {i} ({p.name}) has dtype {value.dtype}, outside "
                            f"{', '.join(allowed)}")
    return problems


def _call(schema: OpSchema, case: Case) -> Outcome:
    fn = get_kernel(schema.domain, schema.name, schema.since_version)
    attrs = dict(case.attrs)
    n_out = case.num_outputs if case.num_outputs is not None else len(schema.outputs)
    if wants_context(fn):
        attrs["ctx"] = KernelContext(op_type=schema.name, domain=schema.domain,
                                     opset=schema.since_version, num_outputs=n_out,
                                     outputs_used=(True,) * n_out,
                                     rng=np.random.default_rng(0))
    try:
        with np.errstate(all="ignore"):
            res = fn(*case.inputs, **attrs)
    except PyOnnxError as e:
        return Outcome(refused=f"{type(e).__name__}: {e}")
    except Exception as e:  # noqa: BLE001 - any other exception is the finding
        return Outcome(problems=[f"raised {type(e).__module__}.{type(e).__qualname__}: {e}"])
    return Outcome(outputs=res, problems=_check_outputs(res, schema, case))


# ------------------------------------------------------------------------------ onnxruntime


#: The onnxruntime worker: reads (model bytes, feeds) requests, pickled with a length prefix,
#: and answers ("ok", outputs) or ("err", message). onnxruntime runs in its own process because
#: some of its kernels kill the process on degenerate inputs (onnxruntime 1.32's GRU and LSTM
#: die of a SIGFPE on an empty batch, as did its com.microsoft quantized kernels on rank-0
#: inputs): a dead worker means "no reference here", and the next case starts a new one.
_WORKER = r"""
import pickle, struct, sys
import onnxruntime as ort
inp, out = sys.stdin.buffer, sys.stdout.buffer
options = ort.SessionOptions()
options.log_severity_level = 4
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
options.intra_op_num_threads = 1  # a thread pool per session would cost more than the run
options.inter_op_num_threads = 1
while True:
    head = inp.read(8)
    if len(head) < 8:
        break
    model, feeds = pickle.loads(inp.read(struct.unpack("<Q", head)[0]))
    try:
        s = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        reply = ("ok", s.run(None, feeds))
    except Exception as e:
        reply = ("err", str(e))
    data = pickle.dumps(reply)
    out.write(struct.pack("<Q", len(data)) + data)
    out.flush()
"""


class _OrtWorker:
    """A child process running onnxruntime, restarted after a crash."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.crashes: list[str] = []

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.close()  # the worker's loop ends at end of input
            self.proc.wait()
            self.proc.stdout.close()
        self.proc = None

    def run(self, model: bytes, feeds: dict[str, np.ndarray], what: str) -> list[Any] | None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        data = pickle.dumps((model, feeds))
        try:
            self.proc.stdin.write(struct.pack("<Q", len(data)) + data)
            self.proc.stdin.flush()
            head = self.proc.stdout.read(8)
            if len(head) < 8:
                raise EOFError
            status, value = pickle.loads(self.proc.stdout.read(struct.unpack("<Q", head)[0]))
        except (EOFError, BrokenPipeError):
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                try:
                    pipe.close()
                except BrokenPipeError:  # closing flushes what the dead worker never read
                    pass
            self.crashes.append(what)
            self.proc = None
            return None
        return value if status == "ok" else None


@functools.cache
def _ort() -> _OrtWorker | None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    worker = _OrtWorker()
    atexit.register(worker.close)
    return worker


def _one_node(schema: OpSchema, case: Case) -> tuple[bytes, dict[str, np.ndarray]] | None:
    """The case as a serialized one-node model and its feeds; None where the case has inputs
    that are not tensors of standard NumPy types (sequences, ml_dtypes) or onnx's helper cannot
    write its attributes."""
    if any(not isinstance(a, np.ndarray) or a.dtype.kind == "V"
           for a in case.inputs if a is not None):
        return None
    try:
        from onnx import numpy_helper
    except ImportError:
        return None
    from tests.ops._oracle import one_node_model

    n_out = case.num_outputs if case.num_outputs is not None else len(schema.outputs)
    named = [(f"i{k}", a) for k, a in enumerate(case.inputs)]
    domain = schema.domain
    attrs = {k: numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v
             for k, v in case.attrs.items()}
    try:
        model = one_node_model(
            schema.name, named, attrs, domain=domain, outputs=n_out,
            opset=schema.since_version if not domain else 21,
            opsets={domain: schema.since_version} if domain else None)
    except Exception:  # noqa: BLE001 - onnx's helper refusing the attributes: no model
        return None
    return model, {n: a for n, a in named if a is not None}


def _ort_run(schema: OpSchema, case: Case) -> list[Any] | None:
    """onnxruntime's outputs for the case as a one-node model; None where onnxruntime cannot
    load the model (no kernel for the type or opset, shape inference refusing the static shapes),
    refuses to run it, or crashes."""
    ort = _ort()
    built = _one_node(schema, case) if ort is not None else None
    if built is None:
        return None
    return ort.run(*built, f"{schema.domain}:{schema.name}-{schema.since_version}")


def _session_problems(schema: OpSchema, case: Case, outputs: tuple) -> list[str]:
    """Run the case as a one-node model in pyonnx.InferenceSession, the way exporters' models
    reach the kernels (feed checks, the plan's calls, its outputs), and compare with the kernel's
    own outputs."""
    built = _one_node(schema, case)
    if built is None:
        return []
    import pyonnx

    try:
        got = pyonnx.InferenceSession(built[0]).run(None, built[1])
    except PyOnnxError as e:
        return [f"the kernel computes, but a session refuses: {type(e).__name__}: {e}"]
    problems = [f"session output {i} is {type(g).__qualname__}, not numpy.ndarray"
                for i, g in enumerate(got)
                if not isinstance(g, (np.ndarray, list, dict, type(None)))]
    return problems + [f"session vs kernel, {p}" for p in _compare(
        tuple(got), [o for o in outputs[:len(got)]], schema, values=True)]


def _compare(got: tuple, want: list[Any], schema: OpSchema, values: bool) -> list[str]:
    problems = []
    for i, (g, w) in enumerate(zip(got, want)):
        if not isinstance(w, np.ndarray) or not isinstance(g, np.ndarray):
            continue
        if g.dtype != w.dtype or g.shape != w.shape:
            problems.append(f"output {i}: pyonnx gives {g.dtype}{list(g.shape)}, onnxruntime "
                            f"{w.dtype}{list(w.shape)}")
        elif values and schema.node_determinism == "deterministic":
            if w.dtype.kind == "f":
                ok = np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=1e-3,
                                 atol=1e-5, equal_nan=True)
            else:
                ok = bool(np.array_equal(g, w))
            if not ok:
                problems.append(f"output {i}: pyonnx gives {g!r}, onnxruntime {w!r}")
    return problems


# ------------------------------------------------------------------------------- per kernel


def _label(case: Case, default: Mapping[str, str]) -> str:
    """Which constraints the case binds to other than their default types."""
    swept = [f"{k}={v[7:-1]}" for k, v in case.binding.items() if v != default.get(k)]
    return ",".join(swept) or "default types"


@dataclass
class SweepResult:
    """What the sweep of one kernel version found: the problems, the kinds on which the kernel
    computed a result at its default types, and the table entries the cases needed (entries of
    DTYPE_REFUSALS, ORT_LENIENT and VALUE_DIFFERENCES that no case needs are stale)."""

    problems: list[str] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    used: set[tuple[str, tuple[str, str, str]]] = field(default_factory=set)


@functools.cache
def sweep(domain: str, op_type: str, version: int) -> SweepResult:
    """Run every case of one kernel version (see the module docstring)."""
    schema = defs.lookup(domain, op_type, version)
    assert schema is not None and schema.since_version == version
    builder = BUILDERS.get((domain, op_type))
    result = SweepResult()
    problems = result.problems
    bindings = _bindings(schema)
    default = bindings[0]
    for kind in KINDS:
        key = (domain, op_type, kind)
        base: Outcome | None = None
        for binding in bindings:
            case = builder(kind, Types(binding, version)) if builder is not None else None
            if case is None:  # where a builder has no case, the generic inputs must at least
                case = generic_case(schema, kind, binding)  # get a PyOnnxError, not a crash
            if case is None:
                continue
            case.binding = dict(binding)
            out = _call(schema, case)
            where = f"{op_type}-{version} {kind} ({_label(case, default)})"
            problems += [f"{where}: {p}" for p in out.problems]
            if binding is default:
                base = out
                if out.outputs is not None:
                    result.accepted.add(kind)
                    problems += [f"{where}: {p}"
                                 for p in _session_problems(schema, case, out.outputs)]
                want = _ort_run(schema, case)
                if want is None:
                    continue
                if out.refused is not None:
                    if key in ORT_LENIENT:
                        result.used.add(("ORT_LENIENT", key))
                    else:
                        problems.append(f"{where}: refused ({out.refused}) but onnxruntime "
                                        f"computes {[getattr(w, 'shape', w) for w in want]}")
                elif out.outputs is not None:
                    # (an entry counts as needed wherever onnxruntime computes the case: some of
                    # its values there are uninitialized memory, equal to ours by chance)
                    listed = key in VALUE_DIFFERENCES
                    if listed:
                        result.used.add(("VALUE_DIFFERENCES", key))
                    found = _compare(out.outputs, want, schema, values=not listed)
                    problems += [f"{where}: {p}" for p in found]
                continue
            if base is None or base.outputs is None:
                continue
            swept = next(v for k, v in binding.items() if v != default[k])[7:-1]
            if out.refused is not None:
                listed = [k for k in ((domain, op_type, swept), (domain, op_type, "*"))
                          if k in DTYPE_REFUSALS]
                result.used.update(("DTYPE_REFUSALS", k) for k in listed)
                if not listed:
                    problems.append(f"{where}: refused ({out.refused}) though the default "
                                    f"types are computed")
            elif out.outputs is not None:
                shapes = [getattr(o, "shape", None) for o in out.outputs]
                base_shapes = [getattr(o, "shape", None) for o in base.outputs]
                if shapes != base_shapes:
                    problems.append(f"{where}: output shapes {shapes}, at the default types "
                                    f"{base_shapes}")
    return result


def _kernels() -> list[tuple[str, str, int]]:
    """The registered (domain, op_type, since_version) the sweep runs."""
    return [k for k in registered_ops() if (k[0], k[1]) not in EXCLUDED and k not in EXCLUDED]


def _ops() -> list[tuple[str, str]]:
    return sorted({(d, o) for d, o, _ in _kernels()})


@pytest.mark.parametrize("domain,op_type", _ops(), ids=lambda x: x or "ai.onnx")
def test_rank0_and_zero_size(domain: str, op_type: str) -> None:
    problems = []
    for d, o, v in _kernels():
        if (d, o) == (domain, op_type):
            problems += sweep(d, o, v).problems
    assert not problems, "\n".join(problems)


def test_every_kernel_is_swept_or_excluded() -> None:
    """Each registered kernel computes at least one kind of input (else it needs a builder or an
    EXCLUDED entry with its reason), and no table lists an op or a case that no longer needs it:
    the lists only shrink."""
    registered = {(d, o) for d, o, _ in registered_ops()}
    problems = [f"EXCLUDED lists {key}, which has no kernel" for key in EXCLUDED
                if key not in registered and key not in set(registered_ops())]
    problems += [f"BUILDERS has {d or 'ai.onnx'}::{o}, which has no kernel (or is EXCLUDED)"
                 for d, o in BUILDERS if (d, o) not in registered or (d, o) in EXCLUDED]
    used: set[tuple[str, tuple[str, str, str]]] = set()
    for d, o, v in _kernels():
        result = sweep(d, o, v)
        used |= result.used
        if not result.accepted:
            problems.append(f"{d or 'ai.onnx'}::{o}-{v} computes none of {list(KINDS)}: give "
                            f"it a builder in BUILDERS or an EXCLUDED entry saying why")
    tables = {"DTYPE_REFUSALS": DTYPE_REFUSALS}
    if _ort() is not None:  # the other two tables are about onnxruntime's answers
        tables |= {"ORT_LENIENT": ORT_LENIENT, "VALUE_DIFFERENCES": VALUE_DIFFERENCES}
    for name, table in tables.items():
        problems += [f"{name}[{k}] is needed by no case: remove it" for k in table
                     if (name, k) not in used]
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------- through a session


def _session_pair(model: Any) -> tuple[Any, Any]:
    """(pyonnx's, onnxruntime's) sessions of an onnx ModelProto."""
    ort = pytest.importorskip("onnxruntime")
    import pyonnx

    data = model.SerializeToString()
    return (pyonnx.InferenceSession(data),
            ort.InferenceSession(data, providers=["CPUExecutionProvider"]))


def _assert_same_runs(model: Any, feeds_list: list[dict[str, np.ndarray]]) -> None:
    ours, theirs = _session_pair(model)
    for feeds in feeds_list:
        got, want = ours.run(None, feeds), theirs.run(None, feeds)
        assert len(got) == len(want)
        for i, (g, w) in enumerate(zip(got, want)):
            if isinstance(w, list):
                assert isinstance(g, list) and len(g) == len(w), f"output {i}"
                pairs = list(zip(g, w))
            else:
                pairs = [(g, w)]
            for g_, w_ in pairs:
                assert isinstance(g_, np.ndarray), f"output {i} is {type(g_).__name__}"
                assert (g_.dtype, g_.shape) == (w_.dtype, w_.shape), f"output {i}"
                np.testing.assert_allclose(g_, w_, rtol=1e-5, atol=1e-6)


def test_exporter_shape_arithmetic_through_a_session() -> None:
    """The shape computation torch.onnx and tf2onnx emit for ``x.view(n // k, k, c)``: rank-0
    integer Div, Mul and Sub of dims taken with Shape/Gather, unsqueezed and concatenated into a
    Reshape target; on a batch of any size, the empty one included. (A -1 in the target is
    ambiguous for an empty x: both engines refuse it.)"""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto as TP
    from onnx import helper as h

    def c(name: str, value: Any) -> Any:
        return h.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(
            np.array(value, np.int64), name))

    nodes = [h.make_node("Shape", ["x"], ["s"]), c("zero", 0), c("one", 1), c("k", 2),
             c("axes", [0]),
             h.make_node("Gather", ["s", "zero"], ["n"], axis=0),       # n: rank 0
             h.make_node("Gather", ["s", "one"], ["cols"], axis=0),
             h.make_node("Div", ["n", "k"], ["q"]),                     # n // k
             h.make_node("Mul", ["q", "k"], ["qk"]),
             h.make_node("Sub", ["n", "qk"], ["r"]),                    # n % k, rank 0
             h.make_node("Unsqueeze", ["q", "axes"], ["q1"]),
             h.make_node("Unsqueeze", ["k", "axes"], ["k1"]),
             h.make_node("Unsqueeze", ["cols", "axes"], ["c1"]),
             h.make_node("Concat", ["q1", "k1", "c1"], ["target"], axis=0),
             h.make_node("Reshape", ["x", "target"], ["y"])]
    g = h.make_graph(nodes, "shape_math", [h.make_tensor_value_info("x", TP.FLOAT, ["n", 3])],
                     [h.make_tensor_value_info("y", TP.FLOAT, None),
                      h.make_tensor_value_info("r", TP.INT64, None)])
    model = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    _assert_same_runs(model, [{"x": np.arange(n * 3, dtype=np.float32).reshape(n, 3)}
                              for n in (4, 6, 0)])


def test_control_flow_on_rank0_and_empty_inputs() -> None:
    """The ops EXCLUDED from the kernel sweep for their graph attributes, through sessions: If on
    a rank-0 condition returning a rank-0 or empty tensor, Loop with a zero trip count and with
    rank-0 state, Scan over an empty sequence axis, SequenceMap over empty tensors."""
    pytest.importorskip("onnx")
    from onnx import TensorProto as TP
    from onnx import helper as h

    F = TP.FLOAT
    opset = [h.make_opsetid("", 17)]

    def vi(name: str, shape: Any, elem: int = F) -> Any:
        return h.make_tensor_value_info(name, elem, shape)

    # If: then doubles x, else negates it
    then_g = h.make_graph([h.make_node("Add", ["x", "x"], ["t"])], "then", [], [vi("t", None)])
    else_g = h.make_graph([h.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e", None)])
    if_model = h.make_model(h.make_graph(
        [h.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)], "if",
        [vi("c", [], TP.BOOL), vi("x", None)], [vi("y", None)]), opset_imports=opset)
    _assert_same_runs(if_model, [{"c": np.array(c), "x": x} for c in (True, False)
                                 for x in (np.array(1.5, np.float32),
                                           np.zeros((0, 2), np.float32))])

    # Loop: state s += x each iteration, scan output s; zero or three iterations
    body = h.make_graph(
        [h.make_node("Identity", ["cond_in"], ["cond_out"]),
         h.make_node("Add", ["s_in", "x"], ["s_out"]),
         h.make_node("Identity", ["s_out"], ["scan"])], "body",
        [vi("i", [], TP.INT64), vi("cond_in", [], TP.BOOL), vi("s_in", None)],
        [vi("cond_out", [], TP.BOOL), vi("s_out", None), vi("scan", None)])
    loop_model = h.make_model(h.make_graph(
        [h.make_node("Loop", ["m", "c", "s0"], ["s", "scans"], body=body)], "loop",
        [vi("m", [], TP.INT64), vi("c", [], TP.BOOL), vi("s0", None), vi("x", None)],
        [vi("s", None), vi("scans", None)]), opset_imports=opset)
    _assert_same_runs(loop_model, [
        {"m": np.array(m, np.int64), "c": np.array(True), "s0": s0, "x": s0}
        for m in (0, 3) for s0 in (np.array(2.0, np.float32), np.zeros((0, 3), np.float32))])

    # Scan: running sum over the first axis of x, which may be empty
    scan_body = h.make_graph(
        [h.make_node("Add", ["acc_in", "row"], ["acc_out"]),
         h.make_node("Identity", ["acc_out"], ["out_row"])], "scan_body",
        [vi("acc_in", [3]), vi("row", [3])], [vi("acc_out", [3]), vi("out_row", [3])])
    scan_model = h.make_model(h.make_graph(
        [h.make_node("Scan", ["acc0", "xs"], ["acc", "rows"], body=scan_body,
                     num_scan_inputs=1)], "scan",
        [vi("acc0", [3]), vi("xs", ["n", 3])], [vi("acc", [3]), vi("rows", ["n", 3])]),
        opset_imports=opset)
    _assert_same_runs(scan_model, [{"acc0": np.zeros(3, np.float32),
                                    "xs": np.ones((2, 3), np.float32)}])
    # zero iterations: see test_scan_of_zero_iterations_through_a_session

    # SequenceMap: Shape of each element (empty and rank-0 elements)
    map_body = h.make_graph([h.make_node("Shape", ["e"], ["es"])], "map_body",
                            [vi("e", None)], [vi("es", None, TP.INT64)])
    seq_model = h.make_model(h.make_graph(
        [h.make_node("SequenceConstruct", ["a", "b"], ["seq"]),
         h.make_node("SequenceMap", ["seq"], ["shapes"], body=map_body)], "seqmap",
        [vi("a", None), vi("b", None)],
        [h.make_tensor_sequence_value_info("shapes", TP.INT64, None)]), opset_imports=opset)
    _assert_same_runs(seq_model, [{"a": np.zeros((0, 2), np.float32),
                                   "b": np.array(1.0, np.float32)}])


def _scan_sum_model() -> Any:
    from onnx import TensorProto as TP
    from onnx import helper as h

    body = h.make_graph(
        [h.make_node("Add", ["acc_in", "row"], ["acc_out"]),
         h.make_node("Identity", ["acc_out"], ["out_row"])], "scan_body",
        [h.make_tensor_value_info(n, TP.INT64, [3]) for n in ("acc_in", "row")],
        [h.make_tensor_value_info(n, TP.INT64, [3]) for n in ("acc_out", "out_row")])
    return h.make_model(h.make_graph(
        [h.make_node("Scan", ["acc0", "xs"], ["acc", "rows"], body=body, num_scan_inputs=1)],
        "scan", [h.make_tensor_value_info("acc0", TP.INT64, [3]),
                 h.make_tensor_value_info("xs", TP.INT64, ["n", 3])],
        [h.make_tensor_value_info("acc", TP.INT64, [3]),
         h.make_tensor_value_info("rows", TP.INT64, ["n", 3])]),
        opset_imports=[h.make_opsetid("", 17)])


class _DeclaredBody:
    """A Subgraph stand-in that is never called (zero iterations) and declares its outputs."""

    def __init__(self, n_outputs: int, output_type: Any) -> None:
        self.input_names = [f"i{k}" for k in range(n_outputs + 1)]
        self.output_names = [f"o{k}" for k in range(n_outputs)]
        self.output_types = [output_type] * n_outputs

    def __call__(self, *inputs: Any) -> list[Any]:
        raise AssertionError("a body of zero iterations must not run")


def test_zero_iterations_take_the_declared_element_type_and_shape() -> None:
    """A scan output of zero iterations is an empty stack of the body output's declared type:
    int64 of per-iteration shape [3] gives int64 [0, 3] (not float32 [0])."""
    from pyonnx.ir import DataType, TensorType

    declared = TensorType(DataType.INT64, (3,))
    fn = get_kernel("", "Scan", 16)
    ctx = KernelContext(op_type="Scan", num_outputs=2, outputs_used=(True, True))
    acc, rows = fn(np.zeros(3, np.int64), np.zeros((0, 3), np.int64),
                   body=_DeclaredBody(2, declared), num_scan_inputs=1, ctx=ctx)
    assert (rows.dtype, rows.shape) == (np.int64, (0, 3))
    loop = get_kernel("", "Loop", 16)
    ctx = KernelContext(op_type="Loop", num_outputs=2, outputs_used=(True, True))
    state, scans = loop(np.array(0, np.int64), np.array(True), np.array(5, np.int64),
                        body=_DeclaredBody(3, declared), ctx=ctx)
    assert (state.dtype, state.shape, int(state)) == (np.int64, (), 5)
    assert (scans.dtype, scans.shape) == (np.int64, (0, 3))


def test_scan_of_zero_iterations_through_a_session() -> None:
    """Scan over an empty axis: the state passes through and the scan output is empty with the
    body's declared type and shape. (onnxruntime 1.32 fails there, "Invalid dim0_offset of 0",
    so the expected values are written out.)"""
    pytest.importorskip("onnx")
    import pyonnx

    acc0 = np.array([1, 2, 3], np.int64)
    acc, rows = pyonnx.InferenceSession(_scan_sum_model().SerializeToString()).run(
        None, {"acc0": acc0, "xs": np.zeros((0, 3), np.int64)})
    np.testing.assert_array_equal(acc, acc0)
    assert (rows.dtype, rows.shape) == (np.int64, (0, 3))
