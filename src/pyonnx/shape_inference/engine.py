"""The inference engine: walks a model's graphs in order, applies each node's shape rule, merges
the result with what the model already says, and writes the types back.

What flows along the edges:

* types (``Value.type``), written onto the Values of a structural copy of the caller's model;
* with data propagation, *known values*: a NumPy array when every element is known (from an
  initializer, a Constant, or a node the engine evaluated with its kernel because all of its
  inputs were known), or a :class:`Partial` — the elements of a rank-0/1 integer tensor, each an
  ``int``, a symbolic dim or ``None`` (what ``Shape`` of a tensor with named dims gives).

Merging with an existing annotation (a graph output's or value_info type): equal facts agree; a
concrete dim beats a symbolic one, which beats an unknown one; two different concrete dims, two
element types or two ranks are a conflict — a :class:`ShapeInferenceError` naming the value, the
node and both facts in strict mode, otherwise resolved in favour of the inferred fact (it follows
from the model's data flow; an annotation may be stale). Dims a rule cannot determine get fresh
symbols ``unk__0``, ``unk__1``, … so later nodes can relate them; they are never guessed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from pyonnx import defs
from pyonnx.errors import (
    InvalidArgument,
    PyOnnxError,
    ResourceLimitExceeded,
    ShapeInferenceError,
    ValidationError,
)
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
    Type,
    Value,
)
from pyonnx.io.limits import DEFAULT_MAX_NESTING_DEPTH, check_nesting_depth
from pyonnx.ir.types import Dim
from pyonnx.ops._values import attribute_value
from pyonnx.shape_inference._copy import copy_graph, copy_model
from pyonnx.shape_inference._types import input_type_error
from pyonnx.shape_inference.registry import get_rule, rule_versions

__all__ = ["infer_shapes", "InferenceContext", "Partial", "SeqElems", "merge_types"]

#: Largest number of elements of a value kept for data propagation (and of a node output the
#: engine computes with its kernel).
VALUE_LIMIT = 1 << 16
#: Largest total number of input elements a shape probe (``InferenceContext.probe``) builds.
PROBE_LIMIT = 1 << 18
#: How deep function calls may nest while inlining (a recursive function is invalid anyway).
MAX_CALL_DEPTH = 32

# ops whose kernel is never run during inference: random, or with effects beyond their outputs
_NO_EVAL = frozenset({
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Bernoulli",
    "Multinomial", "Dropout", "If", "Loop", "Scan", "SequenceMap", "ImageDecoder",
})
# ops whose output size is bounded by their inputs' although it depends on their values
_BOUNDED = frozenset({
    "NonZero", "Unique", "Compress", "TopK", "NonMaxSuppression", "StringSplit", "Slice",
    "Range", "Squeeze", "Reshape", "Gather", "Where", "Equal", "Concat", "Unsqueeze",
})


@dataclasses.dataclass(frozen=True)
class Partial:
    """The elements of an integer tensor of rank 0 (``scalar``) or 1 whose entries are dims:
    ``int`` when known, a symbolic expression string, or ``None``."""

    dims: tuple[Dim, ...]
    scalar: bool = False

    def concrete(self) -> bool:
        return all(isinstance(d, int) for d in self.dims)


@dataclasses.dataclass(frozen=True)
class SeqElems:
    """A sequence whose length is known: the type of each element, in order."""

    types: tuple[Type | None, ...]


def _schema_default(schema: defs.OpSchema | None, name: str) -> Any:
    if schema is None:
        return None
    a = schema.attributes.get(name)
    if a is None or a.default is None or isinstance(a.default, defs.TensorDefault):
        return None
    return list(a.default) if isinstance(a.default, tuple) else a.default


def type_str(t: Type | None) -> str:
    """``float32[N,3,224,224]``-like description used in error messages."""
    if t is None:
        return "unknown"
    if isinstance(t, (TensorType, SparseTensorType)):
        dims = "?" if t.shape is None else ",".join("?" if d is None else str(d) for d in t.shape)
        return f"{t}[{dims}]"
    return str(t)


class InferenceContext:
    """What a shape rule sees of one node: input types, attributes, known input values, the
    opset; and how it reports output values, fresh symbols, subgraph results and errors."""

    def __init__(self, engine: "_Engine", node: Node, opset: int, schema: defs.OpSchema | None,
                 since_version: int, attr_env: dict[str, Attribute] | None,
                 opsets: dict[str, int]) -> None:
        self._engine = engine
        self.node = node
        self.opset = opset
        self.schema = schema
        self.since_version = since_version
        self._attr_env = attr_env
        self.opsets = opsets

    # ------------------------------------------------------------------ inputs
    @property
    def num_inputs(self) -> int:
        """How many inputs the node lists (absent optional ones included)."""
        return len(self.node.inputs)

    @property
    def num_outputs(self) -> int:
        return len(self.node.outputs)

    def has_input(self, i: int) -> bool:
        return i < len(self.node.inputs) and self.node.inputs[i] is not None

    def input_type(self, i: int) -> Type | None:
        if not self.has_input(i):
            return None
        return self._engine.type_of(self.node.inputs[i])  # type: ignore[arg-type]

    def tensor_type(self, i: int) -> TensorType | None:
        t = self.input_type(i)
        return t if isinstance(t, TensorType) else None

    def shape(self, i: int) -> tuple[Dim, ...] | None:
        """The shape of tensor input ``i``; None when absent, not a tensor, or of unknown rank."""
        t = self.input_type(i)
        if isinstance(t, (TensorType, SparseTensorType)) and t.shape is not None:
            return tuple(t.shape)
        return None

    def rank(self, i: int) -> int | None:
        s = self.shape(i)
        return None if s is None else len(s)

    def elem(self, i: int) -> DataType | None:
        t = self.input_type(i)
        if isinstance(t, (TensorType, SparseTensorType)) and t.elem_type != DataType.UNDEFINED:
            return t.elem_type
        return None

    # ------------------------------------------------------------------ attributes
    def _attribute(self, name: str) -> Attribute | None:
        a = self.node.attributes.get(name)
        if a is not None and a.ref_attr_name:
            env = self._attr_env or {}
            ref = env.get(a.ref_attr_name)
            if ref is None:
                return None
            return Attribute(name, ref.type, ref.value)
        return a

    def has_attr(self, name: str) -> bool:
        return self._attribute(name) is not None

    def attr(self, name: str, default: Any = None) -> Any:
        """The decoded attribute, else the schema's default, else ``default``."""
        a = self._attribute(name)
        if a is not None and not (a.type == AttributeType.UNDEFINED and a.value is None):
            return attribute_value(a)
        d = _schema_default(self.schema, name)
        return d if d is not None else default

    def attributes(self) -> dict[str, Any]:
        """Every attribute set on the node, decoded (graphs left as Graph objects)."""
        out = {}
        for name in self.node.attributes:
            a = self._attribute(name)
            if a is not None and not (a.type == AttributeType.UNDEFINED and a.value is None):
                out[name] = attribute_value(a)
        return out

    # ------------------------------------------------------------------ values
    def value(self, i: int) -> np.ndarray | None:
        """The known value of input ``i`` (every element known), or None."""
        if not self.has_input(i):
            return None
        return self._engine.value_of(self.node.inputs[i])  # type: ignore[arg-type]

    def partial(self, i: int) -> list[Dim] | None:
        """The elements of a rank-0/1 integer input as dims (symbolic entries allowed)."""
        if not self.has_input(i):
            return None
        return self._engine.partial_of(self.node.inputs[i])  # type: ignore[arg-type]

    def set_value(self, i: int, value: np.ndarray | Partial | Sequence[Dim] | None,
                  scalar: bool = False) -> None:
        """Record the known value of output ``i`` (an array, or dims of a rank-0/1 tensor)."""
        if value is None or i >= len(self.node.outputs):
            return
        if not self._engine.data_prop and self.node.op_type != "Constant":
            return  # without data propagation only initializers and Constants have values
        if not isinstance(value, (np.ndarray, Partial)):
            dims = tuple(value)
            if len(dims) > VALUE_LIMIT:
                return
            value = Partial(dims, scalar)
        elif isinstance(value, np.ndarray) and value.size > VALUE_LIMIT:
            return
        self._engine.values[id(self.node.outputs[i])] = value

    def seq_elems(self, i: int) -> list[Type | None] | None:
        """The element types of sequence input ``i`` when its length is known, else None."""
        if not self.has_input(i):
            return None
        x = self._engine.values.get(id(self.node.inputs[i]))
        return list(x.types) if isinstance(x, SeqElems) else None

    def set_seq_elems(self, i: int, types: Sequence[Type | None]) -> None:
        """Record that output ``i`` is a sequence of exactly these element types."""
        if i < len(self.node.outputs) and len(types) <= VALUE_LIMIT:
            self._engine.values[id(self.node.outputs[i])] = SeqElems(tuple(types))

    # ------------------------------------------------------------------ helpers
    def fresh(self) -> str:
        """A new symbol for a dim no fact determines."""
        return self._engine.fresh()

    def fail(self, message: str) -> ShapeInferenceError:
        """The error to raise when the inputs contradict the operator's contract."""
        return ShapeInferenceError(f"{self.node.describe()}: {message}")

    def probe(self, values: Sequence[int] = ()) -> list[TensorType | None] | None:
        """Output types found by running the kernel on placeholder inputs (zeros of the input
        shapes; known values where there are some). Only for operators whose output shapes
        follow from input shapes, attributes and the inputs listed in ``values`` (whose values
        must then be known); None when a shape is not concrete or such a value unknown, the
        inputs are large, or the kernel refuses the placeholders."""
        args: list[Any] = []
        total = 0
        for i in range(self.num_inputs):
            if not self.has_input(i):
                args.append(None)
                continue
            v = self.value(i)
            if v is not None:
                args.append(v)
                continue
            if i in values:
                return None
            t = self.tensor_type(i)
            if t is None or t.shape is None or not all(isinstance(d, int) for d in t.shape):
                return None
            n = int(np.prod(t.shape, dtype=np.int64))
            total += n
            if total > PROBE_LIMIT or t.elem_type == DataType.UNDEFINED:
                return None
            if t.elem_type == DataType.STRING:
                a = np.full(t.shape, "", dtype=object)
            else:
                a = np.zeros(t.shape, dtype=t.elem_type.numpy)
            args.append(a)
        outs = self._engine.call_kernel(self.node, self, args)
        if outs is None:
            return None
        res: list[TensorType | None] = []
        for o in outs[:self.num_outputs]:
            try:
                res.append(TensorType(DataType.from_numpy(o.dtype), tuple(int(d) for d in o.shape))
                           if isinstance(o, np.ndarray) else None)
            except ValueError:
                res.append(None)
        return res

    def graph_attr(self, name: str) -> Graph | None:
        a = self._attribute(name)
        if a is None or a.type != AttributeType.GRAPH:
            return None
        return a.value

    def infer_graph(self, graph: Graph, input_types: Sequence[Type | None]) -> list[Type | None]:
        """Infer a subgraph (If branch, Loop/Scan body) whose inputs have the given types;
        returns the types of its outputs. Outer-scope values keep their inferred types."""
        return self._engine.infer_subgraph(graph, input_types, self.opsets, self._attr_env)

    def try_infer_graph(self, graph: Graph, input_types: Sequence[Type | None]
                        ) -> tuple[list[Type | None], str | None]:
        """Like :meth:`infer_graph`, also saying whether inference proved the subgraph fails
        with these inputs: the first contradiction found inside it (a
        :class:`ShapeInferenceError` of one of its nodes, raised or, outside strict mode,
        recorded), else None. A run of such a subgraph cannot succeed."""
        eng = self._engine
        before = len(eng.failures)
        try:
            outs = eng.infer_subgraph(graph, input_types, self.opsets, self._attr_env)
            found = eng.failures[before] if len(eng.failures) > before else None
        except ShapeInferenceError as e:
            outs, found = [None] * len(graph.outputs), str(e)
        # the caller now owns these contradictions: it resolves them (a branch left out) or
        # raises its own error, so they must not mark the enclosing graph as failing
        del eng.failures[before:]
        return outs, found


#: Values of ``infer_shapes(initializer_inputs=...)``: how an initializer that is also listed as
#: a graph input (an *overridable* initializer, whose value a feed may replace) is treated.
INITIALIZER_INPUT_POLICIES = ("auto", "value", "unknown")


def initializers_are_values(model: Model, policy: str) -> bool:
    """Whether overridable initializers count as known values under ``policy`` (see
    :func:`infer_shapes`): ``"auto"`` answers True only below IR version 4, where every
    initializer must be a graph input and runtimes treat them all as constants."""
    if policy not in INITIALIZER_INPUT_POLICIES:
        raise InvalidArgument(
            f"initializer_inputs must be one of {', '.join(INITIALIZER_INPUT_POLICIES)}; "
            f"got {policy!r}")
    if policy == "auto":
        return 0 < model.ir_version < 4
    return policy == "value"


class _Engine:
    def __init__(self, model: Model, *, data_prop: bool, strict: bool,
                 initializer_values: bool = False, check_type: bool = False) -> None:
        self.model = model
        self.data_prop = data_prop
        self.strict = strict
        # whether node input types are checked against the schema's type constraints
        self.check_type = check_type
        # whether an initializer that is also a graph input gives its value (see infer_shapes)
        self.initializer_values = initializer_values
        self.functions: dict[tuple[str, str, str], Function] = {f.key: f for f in model.functions}
        # values and original are keyed by id(Value): every Value keyed must outlive the engine,
        # or a later object at the same address would inherit its entry. The model's Values do;
        # the copies of function bodies inferred per call are kept alive in ``inlined``.
        self.values: dict[int, Any] = {}
        self.original: dict[int, Type | None] = {}
        self.inlined: list[Graph] = []
        self.graph_inputs: set[int] = set()
        self.used_names: set[str] = set()
        self.counter = 0
        self.call_depth = 0
        # contradictions found (and, outside strict mode, passed over) so far, in order
        self.failures: list[str] = []
        self.call_stack: list[tuple[str, str, str]] = []  # functions being inlined, outermost first
        self._collect_names(model.graph)
        for f in model.functions:
            self._collect_names(f.graph)

    # ------------------------------------------------------------------ symbols
    def _collect_names(self, g: Graph) -> None:
        def visit(t: Type | None) -> None:
            if isinstance(t, (TensorType, SparseTensorType)) and t.shape is not None:
                self.used_names.update(d for d in t.shape if isinstance(d, str))
            elif isinstance(t, (SequenceType, OptionalType)):
                visit(t.elem_type)
            elif isinstance(t, MapType):
                visit(t.value_type)

        for v in [*g.inputs, *g.outputs, *g.value_info]:
            visit(v.type)
        for n in g.nodes:
            for v in n.outputs:
                visit(v.type)
            for sg in n.subgraphs():
                self._collect_names(sg)

    def fresh(self) -> str:
        while True:
            name = f"unk__{self.counter}"
            self.counter += 1
            if name not in self.used_names:
                self.used_names.add(name)
                return name

    def _fill_fresh(self, t: Type | None) -> Type | None:
        if isinstance(t, TensorType) and t.shape is not None and any(d is None for d in t.shape):
            return dataclasses.replace(
                t, shape=tuple(self.fresh() if d is None else d for d in t.shape))
        if isinstance(t, SequenceType):
            return SequenceType(self._fill_fresh(t.elem_type))
        if isinstance(t, OptionalType):
            return OptionalType(self._fill_fresh(t.elem_type))
        return t

    # ------------------------------------------------------------------ values
    def type_of(self, v: Value) -> Type | None:
        if v.type is None and isinstance(v.const_value, Tensor):
            v.type = TensorType(v.const_value.data_type, v.const_value.dims)
        elif v.type is None and isinstance(v.const_value, SparseTensor):
            v.type = SparseTensorType(v.const_value.values.data_type, v.const_value.dims)
        return v.type

    def value_of(self, v: Value) -> np.ndarray | None:
        x = self.values.get(id(v))
        if isinstance(x, np.ndarray):
            return x
        if isinstance(x, Partial):
            if not x.concrete():
                return None
            t = v.type
            dt = t.elem_type.numpy if isinstance(t, TensorType) and t.elem_type in _INT_TYPES \
                else np.dtype(np.int64)
            try:
                arr = np.array(x.dims, dtype=dt)
            except OverflowError:  # dims computed past the element type's range: not a value
                return None
            return arr.reshape(()) if x.scalar and arr.size == 1 else arr
        c = v.const_value
        if c is not None and (self.initializer_values or id(v) not in self.graph_inputs):
            if isinstance(c, Tensor) and c.size <= VALUE_LIMIT:
                arr = c.numpy()
                self.values[id(v)] = arr
                return arr
            if isinstance(c, SparseTensor) and int(np.prod(c.dims)) <= VALUE_LIMIT:
                arr = c.to_dense()
                self.values[id(v)] = arr
                return arr
        return None

    def partial_of(self, v: Value) -> list[Dim] | None:
        x = self.values.get(id(v))
        if isinstance(x, Partial):
            return list(x.dims)
        arr = self.value_of(v)
        if arr is not None and arr.dtype.kind in "iu" and arr.ndim <= 1:
            return [int(a) for a in arr.reshape(-1)]
        return None

    # ------------------------------------------------------------------ walking
    def run(self) -> None:
        opsets = {defs.normalize_domain(d): v for d, v in self.model.opset_imports.items()}
        if self.strict:
            self._check_main_inputs(self.model.graph)
        self.walk(self.model.graph, opsets, None)
        _write_value_info(self.model.graph)

    def _check_main_inputs(self, g: Graph) -> None:
        """Strict mode: a main-graph input needs an element type, and an initializer listed as
        an input must agree with the type the input declares (its value is what a run gets
        when no feed overrides it)."""
        for v in g.inputs:
            t = v.type
            if isinstance(t, TensorType) and t.elem_type == DataType.UNDEFINED:
                raise ShapeInferenceError(
                    f"graph input {v.name!r} has no element type; declare one (for example "
                    f"float) so that the nodes that read it can be checked")
            c = v.const_value
            if not isinstance(c, Tensor) or not isinstance(t, TensorType):
                continue
            if t.elem_type != c.data_type:
                raise ShapeInferenceError(
                    f"graph input {v.name!r} is declared {t.elem_type.name} but its initializer "
                    f"holds {c.data_type.name}")
            if t.shape is not None and (len(t.shape) != len(c.dims) or any(
                    isinstance(d, int) and d != cd for d, cd in zip(t.shape, c.dims))):
                raise ShapeInferenceError(
                    f"graph input {v.name!r} is declared with shape {type_str(t)} but its "
                    f"initializer has dims {list(c.dims)}")

    def walk(self, g: Graph, opsets: dict[str, int], attr_env: dict[str, Attribute] | None) -> None:
        self.graph_inputs.update(id(v) for v in g.inputs)
        for v in g.initializers.values():
            self.type_of(v)
        for node in g.nodes:
            self.infer_node(node, opsets, attr_env)

    def infer_subgraph(self, g: Graph, input_types: Sequence[Type | None],
                       opsets: dict[str, int],
                       attr_env: dict[str, Attribute] | None) -> list[Type | None]:
        for v, t in zip(g.inputs, input_types):
            old = self.original.setdefault(id(v), v.type)
            where = f"input of graph {g.name!r}"
            try:
                v.type = merge_types(old, t, True, v.name, where)
            except ShapeInferenceError:
                # A body's declared input is its contract: shapes that differ from what the
                # node passes (a Loop body declaring the iteration number int64[1] where the
                # spec passes a scalar) keep the declaration, as onnx does; element types and
                # kinds of type must agree.
                if self.strict and _kind_or_elem_differs(old, t):
                    raise
                v.type = old
            self.values.pop(id(v), None)
        self.walk(g, opsets, attr_env)
        return [self.type_of(v) for v in g.outputs]

    def _resolve(self, node: Node, opsets: dict[str, int]) -> tuple[Any, defs.OpSchema | None,
                                                                    int, int]:
        domain = defs.normalize_domain(node.domain)
        opset = opsets.get(domain)
        if opset is None:
            return None, None, 0, 0
        schema = defs.lookup(domain, node.op_type, opset)
        if schema is not None:
            return get_rule(domain, node.op_type, schema.since_version), schema, opset, \
                schema.since_version
        # a domain without schemas (com.microsoft), or a rule for a version the spec lacks
        # (onnxruntime's LayerNormalization-1): the newest rule not after the opset
        spec_versions = set(defs.versions(domain, node.op_type))
        usable = [v for v in rule_versions(domain, node.op_type)
                  if v <= opset and v not in spec_versions]
        if usable:
            return get_rule(domain, node.op_type, usable[-1]), None, opset, usable[-1]
        return None, None, opset, 0

    def infer_node(self, node: Node, opsets: dict[str, int],
                   attr_env: dict[str, Attribute] | None) -> None:
        n_out = len(node.outputs)
        fkey = (node.domain, node.op_type, node.overload)
        results: list[Type | None]
        if fkey in self.functions:
            results = self._infer_call(node, self.functions[fkey], opsets, attr_env)
        else:
            rule, schema, opset, since = self._resolve(node, opsets)
            ctx = InferenceContext(self, node, opset, schema, since, attr_env, opsets)
            results = [None] * n_out
            if rule is not None:
                try:
                    if self.check_type and schema is not None:
                        bad = input_type_error(schema, node.inputs,
                                               [ctx.input_type(i) for i in range(len(node.inputs))])
                        if bad is not None:  # a rule must not reason from data the op refuses
                            raise ctx.fail(bad)
                    res = rule(ctx)
                except ShapeInferenceError as e:
                    if self.strict:
                        raise
                    self.failures.append(str(e))
                    res = None
                except ResourceLimitExceeded:
                    raise
                except PyOnnxError as e:
                    if self.strict:
                        raise ShapeInferenceError(f"{node.describe()}: {e}") from e
                    res = None
                except MemoryError as e:  # never swallowed: a rule must not allocate in
                    raise ResourceLimitExceeded(  # proportion to a size the model declares
                        f"{node.describe()}: shape inference ran out of memory") from e
                except Exception as e:  # a rule that trips over odd input must not stop
                    if self.strict:     # inference of the rest of the model
                        raise ShapeInferenceError(
                            f"{node.describe()}: shape inference failed: {type(e).__name__}: "
                            f"{e}") from e
                    res = None
                if res is not None:
                    if not isinstance(res, (list, tuple)):
                        res = [res]
                    for i, t in enumerate(list(res)[:n_out]):
                        results[i] = t
            if self.data_prop and schema is not None:
                self._evaluate(node, ctx, schema, results)
        for i, v in enumerate(node.outputs):
            if not v.name:
                continue
            old = self.original.setdefault(id(v), v.type)
            new = self._fill_fresh(self._valid_dims(node, v, results[i] if i < len(results)
                                                    else None))
            v.type = merge_types(old, new, self.strict, v.name, node.describe())

    def _valid_dims(self, node: Node, v: Value, t: Type | None) -> Type | None:
        """A rule's result with every concrete dim checked to be a valid tensor dim (0 to
        2**63 - 1, what the format can store): in strict mode an error naming the node and the
        value, else that dim becomes unknown (arithmetic on huge declared dims must never
        produce a type the model cannot be written with)."""
        if isinstance(t, (SequenceType, OptionalType)):
            inner = self._valid_dims(node, v, t.elem_type)
            return type(t)(inner) if inner is not t.elem_type else t
        if not isinstance(t, TensorType) or t.shape is None:
            return t
        bad = [d for d in t.shape if isinstance(d, int) and not 0 <= d <= _INT64_MAX]
        if not bad:
            return t
        if self.strict:
            what = "overflows int64" if any(d > _INT64_MAX for d in bad) else "is negative"
            raise ShapeInferenceError(
                f"{node.describe()}: output {v.name!r} would have shape {type_str(t)}: dim "
                f"{bad[0]} {what}, which no tensor can have")
        return dataclasses.replace(t, shape=tuple(
            None if isinstance(d, int) and not 0 <= d <= _INT64_MAX else d for d in t.shape))

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, node: Node, ctx: InferenceContext, schema: defs.OpSchema,
                  results: list[Type | None]) -> None:
        """Run the node's kernel when every input value is known and the result is small."""
        if node.op_type in _NO_EVAL or any(True for _ in node.subgraphs()):
            return
        if schema.node_determinism == "non_deterministic":
            return
        args = []
        for i, v in enumerate(node.inputs):
            if v is None:
                args.append(None)
                continue
            a = ctx.value(i)
            if a is None:
                return
            args.append(a)
        small_out = bool(results) and all(
            isinstance(t, TensorType) and t.shape is not None
            and all(isinstance(d, int) for d in t.shape)
            and int(np.prod(t.shape, dtype=np.int64)) <= VALUE_LIMIT for t in results)
        if not small_out:
            if node.op_type not in _BOUNDED or any(
                    a is not None and a.size > VALUE_LIMIT for a in args):
                return
        outs = self.call_kernel(node, ctx, args)
        if outs is None:
            return
        for i, o in enumerate(outs[:len(node.outputs)]):
            if isinstance(o, np.ndarray):
                try:
                    dt = DataType.from_numpy(o.dtype)
                except ValueError:
                    continue
                results[i] = TensorType(dt, tuple(int(d) for d in o.shape))
                if o.size <= VALUE_LIMIT:
                    self.values[id(node.outputs[i])] = o

    def call_kernel(self, node: Node, ctx: InferenceContext, args: list[Any]) -> list[Any] | None:
        """Run the node's kernel on ``args``; None when there is none or it refuses them."""
        from pyonnx.ops.bind import bind, signature_problem
        from pyonnx.ops.registry import get_kernel

        if not ctx.since_version:
            return None
        fn = get_kernel(node.domain, node.op_type, ctx.since_version)
        if fn is None:
            return None
        attrs = {k: v for k, v in ctx.attributes().items() if not isinstance(v, Graph)}
        if signature_problem(node, fn, len(args), attrs) is not None:
            return None  # a session refuses the node; inference keeps the rule's answer
        try:
            bound = bind(node, fn, ctx.since_version, ctx.opset, attrs,
                         rng=np.random.default_rng(0), max_tensor_bytes=VALUE_LIMIT * 64)
            return list(bound(*args))
        except MemoryError as e:
            raise ResourceLimitExceeded(
                f"{node.describe()}: evaluating the node during shape inference ran out of "
                f"memory") from e
        except Exception:  # noqa: BLE001 - the rule's answer stands; a run reports the cause
            return None

    # ------------------------------------------------------------------ functions
    def _infer_call(self, node: Node, fn: Function, opsets: dict[str, int],
                    attr_env: dict[str, Attribute] | None) -> list[Type | None]:
        """Infer a call of a model-local function by inferring a copy of its body."""
        if fn.key in self.call_stack:
            # a function that calls itself (directly or through others) never ends: the model
            # is invalid whatever the mode, as the spec forbids recursion
            cycle = " -> ".join(f"{d}::{n}" if d else n for d, n, _ in
                                [*self.call_stack[self.call_stack.index(fn.key):], fn.key])
            raise ValidationError(f"{node.describe()}: function calls are recursive ({cycle}); "
                                  f"the ONNX spec does not allow a function to call itself")
        if self.call_depth >= MAX_CALL_DEPTH:
            if self.strict:
                raise ShapeInferenceError(
                    f"{node.describe()}: function calls nest deeper than {MAX_CALL_DEPTH} levels")
            return [None] * len(node.outputs)
        if self.strict and len(node.outputs) != len(fn.graph.outputs):
            raise ShapeInferenceError(
                f"{node.describe()}: calls function {fn.key[1]!r} (domain {fn.key[0]!r}), "
                f"which has {len(fn.graph.outputs)} outputs, with {len(node.outputs)}")
        if self.strict and len(node.inputs) > len(fn.graph.inputs):
            raise ShapeInferenceError(
                f"{node.describe()}: calls function {fn.key[1]!r} (domain {fn.key[0]!r}), "
                f"which has {len(fn.graph.inputs)} inputs, with {len(node.inputs)}")
        body = copy_graph(fn.graph)
        self.inlined.append(body)
        env: dict[str, Attribute] = dict(fn.attribute_defaults)
        for name, a in node.attributes.items():
            if a.ref_attr_name:
                ref = (attr_env or {}).get(a.ref_attr_name)
                if ref is None:
                    continue
                a = Attribute(name, ref.type, ref.value)
            env[name] = a
        for formal, actual in zip(body.inputs, node.inputs):
            if actual is None:
                continue
            formal.type = self.type_of(actual)
            if id(actual) in self.values:
                self.values[id(formal)] = self.values[id(actual)]
            else:
                arr = self.value_of(actual)
                if arr is not None:
                    self.values[id(formal)] = arr
        fopsets = dict(opsets)
        fopsets.update({defs.normalize_domain(d): v for d, v in fn.opset_imports.items()})
        self.call_depth += 1
        self.call_stack.append(fn.key)
        try:
            self.walk(body, fopsets, env)
        finally:
            self.call_depth -= 1
            self.call_stack.pop()
        out = []
        for formal, actual in zip(body.outputs, node.outputs):
            out.append(self.type_of(formal))
            if id(formal) in self.values:
                self.values[id(actual)] = self.values[id(formal)]
        return out + [None] * (len(node.outputs) - len(out))


_INT64_MAX = 2**63 - 1
_INT_TYPES = frozenset({DataType.INT64, DataType.INT32, DataType.INT16, DataType.INT8,
                        DataType.UINT64, DataType.UINT32, DataType.UINT16, DataType.UINT8})


# ---------------------------------------------------------------------- merging

def _conflict(strict: bool, name: str, where: str, old: Type | None, new: Type | None,
              what: str) -> None:
    if strict:
        raise ShapeInferenceError(
            f"value {name!r} (output of {where}): {what}: the model declares {type_str(old)}, "
            f"inference gives {type_str(new)}")


def merge_types(old: Type | None, new: Type | None, strict: bool = False, name: str = "",
                where: str = "") -> Type | None:
    """Combine a declared type with an inferred one (see the module docstring)."""
    if old is None:
        return new
    if new is None:
        return old
    if isinstance(old, (TensorType, SparseTensorType)) and type(old) is type(new):
        assert isinstance(new, (TensorType, SparseTensorType))
        elem = old.elem_type
        if new.elem_type != DataType.UNDEFINED:
            if elem not in (DataType.UNDEFINED, new.elem_type):
                _conflict(strict, name, where, old, new, "element types differ")
            elem = new.elem_type
        if old.shape is None:
            shape = new.shape
        elif new.shape is None:
            shape = old.shape
        elif len(old.shape) != len(new.shape):
            _conflict(strict, name, where, old, new, "ranks differ")
            shape = new.shape
        else:
            dims: list[Dim] = []
            for i, (a, b) in enumerate(zip(old.shape, new.shape)):
                if a is None:
                    dims.append(b)
                elif b is None:
                    dims.append(a)
                elif isinstance(a, int) and isinstance(b, int):
                    if a != b:
                        _conflict(strict, name, where, old, new, f"dim {i} differs")
                    dims.append(b)
                elif isinstance(b, int):
                    dims.append(b)
                else:
                    dims.append(a)  # both symbolic: the model's own name is the clearer one
            shape = tuple(dims)
        if isinstance(old, TensorType):
            return TensorType(elem, shape, old.denotations)
        return SparseTensorType(elem, shape)
    if isinstance(old, SequenceType) and isinstance(new, SequenceType):
        return SequenceType(merge_types(old.elem_type, new.elem_type, strict, name, where))
    if isinstance(old, OptionalType) and isinstance(new, OptionalType):
        return OptionalType(merge_types(old.elem_type, new.elem_type, strict, name, where))
    if isinstance(old, MapType) and isinstance(new, MapType):
        if old.key_type != new.key_type:
            _conflict(strict, name, where, old, new, "map key types differ")
            return new
        return MapType(old.key_type, merge_types(old.value_type, new.value_type, strict, name,
                                                 where))
    if type(old) is not type(new):
        _conflict(strict, name, where, old, new, "kinds of type differ")
    return new


def _kind_or_elem_differs(a: Type | None, b: Type | None) -> bool:
    """Whether two known types differ in kind or in a defined element type."""
    if a is None or b is None:
        return False
    if type(a) is not type(b):
        return True
    if isinstance(a, (TensorType, SparseTensorType)):
        ea, eb = a.elem_type, b.elem_type  # type: ignore[union-attr]
        return DataType.UNDEFINED not in (ea, eb) and ea != eb
    if isinstance(a, (SequenceType, OptionalType)):
        return _kind_or_elem_differs(a.elem_type, b.elem_type)  # type: ignore[union-attr]
    return False


def _write_value_info(g: Graph) -> None:
    """List every typed intermediate value of ``g`` (and of its subgraphs) in value_info."""
    listed = {id(v) for v in g.value_info} | {id(v) for v in g.outputs}
    for node in g.nodes:
        for v in node.outputs:
            if v.name and v.type is not None and id(v) not in listed:
                g.value_info.append(v)
                listed.add(id(v))
        for sg in node.subgraphs():
            _write_value_info(sg)


def _strip_shape(t: Type | None) -> Type | None:
    if isinstance(t, TensorType):
        return TensorType(t.elem_type, None, t.denotations)
    if isinstance(t, SequenceType):
        return SequenceType(_strip_shape(t.elem_type))
    if isinstance(t, OptionalType):
        return OptionalType(_strip_shape(t.elem_type))
    return t


def _apply_input_shapes(model: Model, input_shapes: dict[str, Sequence[int | str | None]]) -> None:
    g = model.graph
    by_name = {v.name: v for v in g.inputs}
    for name, dims in input_shapes.items():
        v = by_name.get(name)
        if v is None:
            known = ", ".join(repr(x.name) for x in g.inputs if x.name not in g.initializers)
            raise InvalidArgument(
                f"input_shapes names {name!r}, which is not an input of the model "
                f"(inputs: {known or 'none'})")
        if not isinstance(v.type, TensorType):
            raise InvalidArgument(
                f"input_shapes gives a shape for {name!r}, whose type is "
                f"{v.type if v.type is not None else 'unknown'}, not a tensor")
        shape: list[Dim] = []
        for d in dims:
            if d is None or isinstance(d, str):
                shape.append(d)
            else:
                di = int(d)
                if di < 0:
                    raise InvalidArgument(f"input_shapes[{name!r}] has a negative dim {di}")
                shape.append(di)
        v.type = TensorType(v.type.elem_type, tuple(shape), v.type.denotations)
    # annotations downstream were derived from the old input shapes: keep element types only
    for node in g.all_nodes():
        for v in node.outputs:
            v.type = _strip_shape(v.type)


def infer_shapes(model: Model, *, input_shapes: dict[str, Sequence[int | str | None]] | None = None,
                 data_prop: bool = True, strict: bool = False,
                 max_nesting_depth: int = DEFAULT_MAX_NESTING_DEPTH,
                 initializer_inputs: str = "auto", check_type: bool = False) -> Model:
    """Infer the type and shape of every value of ``model``; returns a new Model.

    The caller's model is not modified (graphs, nodes and values are copied; tensors are
    shared). Inferred types are written to the node outputs, listed in ``value_info`` (of the
    main graph and of subgraphs) and set on graph outputs.

    ``input_shapes`` ({input name: dims}) fixes graph-input dims first (an ``int``, a symbol
    name, or None each); intermediate annotations then lose their dims, as they were derived
    from the old ones. A name that is not a graph input raises :class:`InvalidArgument`.
    ``data_prop`` evaluates small integer computations (shape arithmetic) so that Reshape,
    Expand, ConstantOfShape … get concrete shapes. ``strict`` turns contradictions between
    inferred and declared facts, and inputs an operator cannot take, into
    :class:`ShapeInferenceError`. ``max_nesting_depth`` bounds subgraph nesting, as in
    SessionOptions (:class:`~pyonnx.errors.ResourceLimitExceeded` above it).

    ``initializer_inputs`` says what an initializer that is also a graph input means here. A
    feed may replace its value at run time (onnxruntime's *overridable initializers*, IR >= 4),
    so by default (``"auto"``) inference uses only its declared type, and its value only when
    the model's IR version is below 4 (every initializer had to be an input then, and runtimes
    treat them all as constants). ``"value"`` always uses the stored value, as
    ``onnx.shape_inference`` does (shapes then hold only for runs that do not override it);
    ``"unknown"`` never does. Initializers that are not inputs are always known values.

    ``check_type`` also checks each node's input types against its schema's type constraints
    (the checker reports all such violations; here the first one of a node is an error in
    strict mode, and leaves that node's outputs unknown otherwise).
    """
    if isinstance(model, (str, bytes, os.PathLike)):
        if isinstance(model, bytes):
            raise InvalidArgument("infer_shapes takes a Model; load the bytes with pyonnx.load "
                                  "first")
        raise InvalidArgument(
            f"infer_shapes takes a Model, not the path {os.fspath(model)!r}: use "
            f"infer_shapes_path(path, output_path) for a model file")
    check_nesting_depth(model, max_nesting_depth)
    init_values = initializers_are_values(model, initializer_inputs)
    out = copy_model(model)
    if input_shapes:
        _apply_input_shapes(out, dict(input_shapes))
    engine = _Engine(out, data_prop=data_prop, strict=strict, initializer_values=init_values,
                     check_type=check_type)
    engine.run()
    return out
