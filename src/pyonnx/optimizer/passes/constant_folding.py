"""Constant folding: a node whose inputs are all constants is computed once, at session
creation, by the same kernel the runtime would call, and replaced by an initializer.

Never folded: nodes whose schema is not ``deterministic`` (random ops, Dropout, control flow),
nodes with subgraph attributes, nodes of domains without kernels, outputs that are not tensors,
and outputs larger than ``max_output_bytes``: folding must not turn a ``ConstantOfShape`` of a
huge shape into gigabytes held for the session's lifetime. A kernel that fails on the constant
inputs is left for the run to report, exactly as without optimization.

Nor is a large narrow constant widened (:func:`widens_constant`): a ``DequantizeLinear`` of a
constant of 8-bit-or-narrower integers, or a ``Cast``/``CastLike`` of such a constant or of a
float16/bfloat16/float8 one to a wider float type, with more than ``max_widened_values``
values, stays a node. Its result is the wide copy that storing the weight narrow was meant to
avoid (4 to 8 times the quantized bytes, twice a float16 weight's; an int4 model would hold its
weights twice, small and float); the kernels that read it widen per run, in bands where the CPU
provider fuses them (:mod:`pyonnx.backends.cpu.quantized`). onnxruntime likewise keeps the
DequantizeLinear of constant weights in quantized models, and the float16 weights of a float16
model. Small tables (zero points, int32 biases, a few thousand values) still fold: their wide
copy costs next to nothing. The runtime plan's semi-constant cache applies the same rule
(:mod:`pyonnx.runtime.plan`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pyonnx import defs
from pyonnx.errors import PyOnnxError
from pyonnx.ir import DataType, Graph, Model, Node, Tensor, TensorType
from pyonnx.ops.bind import bind, decode_attributes, signature_problem
from pyonnx.ops.registry import get_kernel
from pyonnx.optimizer._core import GraphPass, model_walk
from pyonnx.optimizer._rewrite import (
    _protected_values,
    constant_of,
    graph_inputs,
    protected_values,
    replace_uses,
)

__all__ = ["ConstantFolding", "DEFAULT_MAX_OUTPUT_BYTES", "DEFAULT_MAX_WIDENED_VALUES",
           "widens_constant"]

#: Largest folded output kept as an initializer (bytes).
DEFAULT_MAX_OUTPUT_BYTES = 64 << 20

#: Largest narrow constant (quantized integers, float16...) whose wide copy folding may keep,
#: in values: 16384 values widen to at most 64 KiB of float32.
DEFAULT_MAX_WIDENED_VALUES = 1 << 14

# The ops that widen their first input value by value.
_WIDENING = {"DequantizeLinear", "Cast", "CastLike"}


def widens_constant(node: Node, args: Sequence[Any],
                    max_values: int = DEFAULT_MAX_WIDENED_VALUES) -> bool:
    """Whether ``node`` would make a wide copy of a constant worth keeping narrow: its data
    input ``args[0]`` is a known array with more than ``max_values`` values and ``node`` is

    * a ``DequantizeLinear`` (any domain) of integers of 8 bits or fewer (int8, uint8, int4,
      uint4, int2, uint2) or of 8-bit floats, or
    * a ``Cast``/``CastLike`` of such integers to a float type (a Cast to a wider integer is not
      dequantization), or of a float of 16 bits or fewer (float16, bfloat16, float8...) to a
      wider float type (float16 weights computed in float32).

    Used by constant folding and by the runtime plan's semi-constant cache, which must not
    hold such a copy for a session's lifetime either."""
    if node.op_type not in _WIDENING or not args:
        return False
    x = args[0]
    if not isinstance(x, np.ndarray) or x.size <= max_values:
        return False
    narrow_int = _narrow_integer(x.dtype)
    narrow_float = _is_float(x.dtype) and x.dtype.itemsize <= 2
    if node.op_type == "DequantizeLinear":
        return narrow_int or (narrow_float and x.dtype.itemsize == 1)
    if not (narrow_int or narrow_float):
        return False
    if node.op_type == "Cast":
        a = node.attributes.get("to")
        try:
            target = np.dtype(DataType(int(a.value)).numpy) if a is not None else None
        except (ValueError, TypeError, KeyError, AttributeError):
            return False
    else:
        like = args[1] if len(args) > 1 else None
        target = like.dtype if isinstance(like, np.ndarray) else None
    if target is None or not _is_float(target):
        return False
    return narrow_int or target.itemsize > x.dtype.itemsize


def _is_float(dt: np.dtype) -> bool:
    """NumPy floats and ml_dtypes' (bfloat16, float8/6/4: kind 'V' to NumPy)."""
    return dt.kind == "f" or "float" in dt.name


def _narrow_integer(dt: np.dtype) -> bool:
    """8-bit or narrower integers, ml_dtypes' int4/uint4/int2/uint2 included (their kind is
    'V' to NumPy, and their itemsize 1)."""
    if dt.kind in "iu":
        return dt.itemsize == 1
    return dt.itemsize == 1 and dt.name in ("int4", "uint4", "int2", "uint2")

# Ops whose output size follows from input *values*: estimate it before running the kernel.
_SIZE_FROM_VALUES = {"ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Upsample", "Pad"}


class ConstantFolding(GraphPass):
    """``op(c1, c2, ...)`` with constant inputs -> ``initializer`` holding its result."""

    name = "constant_folding"

    def __init__(self, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
                 max_widened_values: int = DEFAULT_MAX_WIDENED_VALUES) -> None:
        self.max_output_bytes = int(max_output_bytes)
        self.max_widened_values = int(max_widened_values)

    def rewrite(self, graph: Graph, model: Model) -> bool:
        inputs = graph_inputs(model)
        keep = protected_values(model)
        modified = False
        for node in list(graph.nodes):
            if node.graph is not graph:
                continue
            consts = self._constant_inputs(node, inputs)
            if consts is None:
                continue
            results = self._evaluate(node, consts, model)
            if results is None:
                continue
            # op(c1, ..., cn) -> constant
            for v, arr in zip(node.outputs, results):
                if not v.name:
                    continue
                t = Tensor.from_numpy(arr, v.name)
                nv = type(v)(v.name, TensorType(t.data_type, tuple(arr.shape)), const_value=t,
                             doc_string=v.doc_string)
                replace_uses(v, nv)
                _replace_in_outputs(model, v, nv)
                if id(v) in keep:
                    keep.add(id(nv))
                graph.add_initializer(nv)
            graph.remove(node)
            modified = True
        return modified

    def _constant_inputs(self, node: Node, inputs: set[int]) -> list[Any] | None:
        if any(True for _ in node.subgraphs()):
            return None
        vals: list[Any] = []
        for v in node.inputs:
            if v is None:
                vals.append(None)
                continue
            arr = constant_of(v, inputs)
            if arr is None:
                return None
            vals.append(arr)
        return vals

    def _evaluate(self, node: Node, args: list[Any], model: Model) -> list[np.ndarray] | None:
        domain = defs.normalize_domain(node.domain)
        opset = model.opset(domain)
        if opset is None:
            return None
        schema = defs.lookup(domain, node.op_type, opset)
        if schema is None or schema.deprecated or schema.node_determinism != "deterministic":
            return None
        fn = get_kernel(domain, node.op_type, schema.since_version)
        if fn is None or any(a.ref_attr_name for a in node.attributes.values()):
            return None
        attrs, _graphs = decode_attributes(node.attributes.values(), node.describe(),
                                           self.max_output_bytes)
        if not self._small_enough(node, args):
            return None
        if widens_constant(node, args, self.max_widened_values):
            return None  # narrow weights stay narrow (see the module docstring)
        if signature_problem(node, fn, len(args), attrs) is not None:
            return None  # the session refuses the node, naming it, as without optimization
        bound = bind(node, fn, schema.since_version, opset, attrs,
                     max_tensor_bytes=self.max_output_bytes)
        try:
            res = bound(*args)
        except (PyOnnxError, ValueError, TypeError, ArithmeticError, IndexError, MemoryError,
                OverflowError):
            return None  # the run reports it, naming the node, as without optimization
        if not isinstance(res, tuple) or len(res) < len(node.outputs):
            return None
        out = []
        for v, r in zip(node.outputs, res):
            if not v.name:
                out.append(None)
                continue
            if not isinstance(r, np.ndarray) or r.nbytes > self.max_output_bytes:
                return None
            if not _representable(r):
                return None
            out.append(r)
        return out

    def _small_enough(self, node: Node, args: list[Any]) -> bool:
        """For ops whose output size depends on input values, estimate it before running."""
        if node.op_type not in _SIZE_FROM_VALUES:
            return True
        try:
            if node.op_type == "ConstantOfShape":
                n = int(np.prod(np.asarray(args[0], dtype=np.float64)))
            elif node.op_type == "Expand":
                shape = np.broadcast_shapes(np.shape(args[0]),
                                            tuple(int(d) for d in np.asarray(args[1]).ravel()))
                n = int(np.prod(shape, dtype=np.float64))
            elif node.op_type == "Tile":
                n = int(np.size(args[0]) * np.prod(np.asarray(args[1], dtype=np.float64)))
            elif node.op_type == "Range":
                start, limit, delta = (float(np.asarray(a).ravel()[0]) for a in args[:3])
                n = int(max(np.ceil((limit - start) / delta), 0)) if delta else 0
            else:
                return all(a is None or np.size(a) * 8 <= self.max_output_bytes for a in args)
        except (ValueError, TypeError, OverflowError, IndexError, ZeroDivisionError):
            return False
        return n * 8 <= self.max_output_bytes


def _replace_in_outputs(model: Model, old: Any, new: Any) -> None:
    """A folded graph output keeps its name; every graph listing the old Value gets the new."""
    from pyonnx.optimizer._core import all_graphs

    # only a value that was a graph output when the pass began can be one (a value this pass
    # created is an initializer, never folded again): skip the walk for all the others
    if id(old) not in model_walk(model, "protected", _protected_values):
        return
    for g in all_graphs(model.graph):
        for i, v in enumerate(g.outputs):
            if v is old:
                g.replace_output(i, new)


def _representable(arr: np.ndarray) -> bool:
    try:
        DataType.from_numpy(arr.dtype)
    except (ValueError, KeyError):
        return arr.dtype.kind in ("U", "S")
    return True
