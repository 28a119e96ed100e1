"""Half precision on the CPU provider: float16 computed in float32.

NumPy has no half-precision arithmetic of its own: every float16 operation converts to float32
and back, and a float16 matrix product has no BLAS behind it. A model converted to float16
therefore ran 2-4x slower than its float32 original.
onnxruntime's CPU provider has the same gap (few half-precision kernels on x86) and closes it the
same way: it computes such nodes in float32 with Casts around them and drops the Cast pairs
between neighbours (its InsertCastTransformer).

:class:`ComputeHalfInFloat32` is that rewrite, a session pass of the CPU provider (it never
reaches a written file). Each node of an op listed below whose inputs or outputs are float16
reads and writes float32 instead:

- a half-precision input made by another converted node is read at float32 directly, with no
  rounding in between (so results are at least as accurate as computing in half precision; they
  can differ from a strict half-precision evaluation in the last bits, and where a half-precision
  intermediate would have overflowed to inf);
- a small half-precision constant initializer is widened once, at session creation; a large
  one (a weight: more values than constant folding widens, :func:`pyonnx.optimizer.passes.
  constant_folding.widens_constant`) stays half precision and gets a Cast placed just before
  its first reader, which neither constant folding nor the plan's semi-constant cache computes
  ahead: a float32 copy of every weight would hold the model twice over (1.3-1.7x the float
  model's session memory). At the extended level, the CPU provider's FuseDequantizeLinear
  gives that Cast's MatMul, Gemm and Gather readers fused kernels that widen the weight band by
  band (:mod:`pyonnx.backends.cpu.quantized`); any other reader (a Conv, an Add) gets the
  float32 copy for its own call only;
- any other half-precision input (a graph input, the output of a node left alone) gets a Cast;
- a converted output that a node left alone, a subgraph or the caller reads gets a Cast back to
  its own type under its own name, so they see exactly the type the model declares.

IsNaN is converted although its result is boolean: rounding to half precision makes no NaN and
keeps every NaN, so it decides the same (the NaN guard of exported attention reads it). Other
ops whose result is a discrete decision (comparisons, IsInf, ArgMax, TopK) and ops whose types come
from an attribute (Cast, ConstantOfShape, random generators) are left alone: they read the
half-precision value, rounded as the model defines it.

bfloat16 stays as it is: with 8 bits of mantissa, one skipped rounding moves a result by a
whole bfloat16 step (0.4-0.8%), and the spec's own test data for the bfloat16 function bodies
(Attention expanded) round every step; onnxruntime's CPU provider has no such rewrite for it.
"""

from __future__ import annotations

from pyonnx.ir import Attribute, AttributeType, DataType, Graph, Model, Node, TensorType, Value
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._facts import facts_for
from pyonnx.optimizer._rewrite import graph_inputs, is_constant, new_initializer, protected_values, unique_name
from pyonnx.optimizer.passes.constant_folding import widens_constant

__all__ = ["ComputeHalfInFloat32", "HALF_TYPES"]

#: The element types computed in float32.
HALF_TYPES = (DataType.FLOAT16,)

#: Standard ops whose float32 kernel computes what the half-precision one would, with more
#: precision: arithmetic, linear algebra, normalization, pooling, reductions, recurrences, and the
#: ops that only move elements (exact in any type; converting them avoids Casts around them).
_STANDARD = frozenset("""
    Abs Acos Acosh Add Asin Asinh Atan Atanh AveragePool BatchNormalization Celu Ceil Clip Concat
    Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Einsum Elu Erf Exp Expand
    Flatten Floor GRU IsNaN Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool
    GlobalMaxPool GroupNormalization HardSigmoid HardSwish Identity InstanceNormalization LSTM
    LayerNormalization LeakyRelu Log LogSoftmax LpNormalization LpPool MatMul Max MaxPool Mean Min
    Mish Mul Neg PRelu Pad Pow RMSNormalization RNN Reciprocal ReduceL1 ReduceL2 ReduceLogSum
    ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu
    Reshape Resize Round Selu Shrink Sigmoid Sign Sin Sinh Slice Softmax Softplus Softsign
    SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile Transpose Unsqueeze Where
""".split())

#: com.microsoft ops (those onnxruntime's extended level writes, and the fused kernels' inputs).
_MICROSOFT = frozenset("""
    Attention BiasAdd BiasGelu BiasSoftmax EmbedLayerNormalization FastGelu FusedConv FusedMatMul
    Gelu MatMulNBits MultiHeadAttention QuickGelu RotaryEmbedding SkipLayerNormalization
    SkipSimplifiedLayerNormalization
""".split())

#: Inputs of the CPU provider's fused kernels that hold a narrow weight the kernel widens band
#: by band itself (FuseDequantizeLinear's kernels, made from this pass's Casts of large weights):
#: read as they are.
_NARROW_INPUTS = frozenset({("DequantizeMatMul", 1), ("DequantizeGather", 0)})

#: Ops that only read their input's shape: they take the float32 value when one exists (no Cast
#: back to half precision just for them), and never get a Cast of their own.
_SHAPE_READERS = frozenset({"Shape", "Size"})


def _type_of(v: Value | None, facts) -> TensorType | None:
    """``v``'s tensor type: declared, else inferred (None when unknown or not a tensor)."""
    if v is None or not v.name:
        return None
    t = v.type if isinstance(v.type, TensorType) else facts.type(v) if facts else None
    return t if isinstance(t, TensorType) else None


def _listed(node: Node) -> bool:
    dom = node.domain
    if dom in ("", "ai.onnx"):
        return node.op_type in _STANDARD
    if dom == "com.microsoft":
        return node.op_type in _MICROSOFT
    return dom == "pyonnx"  # the CPU provider's fused kernels: float32 throughout


def _may_hold_half(graph: Graph) -> bool:
    """A cheap look before any inference: does a declared type, an initializer or a Cast name
    half precision? (A float32 model costs the pass nothing more.)"""
    for v in [*graph.inputs, *graph.outputs, *graph.value_info, *graph.initializers.values()]:
        if isinstance(v.type, TensorType) and v.type.elem_type in HALF_TYPES:
            return True
    for n in graph.nodes:
        a = n.attributes.get("to")
        if n.op_type == "Cast" and a is not None and a.value in HALF_TYPES:
            return True
        if any(isinstance(v.type, TensorType) and v.type.elem_type in HALF_TYPES
               for v in n.outputs):
            return True
    return False


#: What a large constant's widening is to ``widens_constant`` (a Cast to float32, unconnected).
_WIDEN = Node("Cast", attributes=[Attribute("to", AttributeType.INT, int(DataType.FLOAT))])


def _cast(source: Value, target: Value, to: DataType, model: Model) -> Node:
    return Node("Cast", [source], [target], name=unique_name(model, f"{target.name}_cast"),
                attributes=[Attribute("to", AttributeType.INT, int(to))])


class ComputeHalfInFloat32(GraphPass):
    """See the module docstring."""

    name = "compute_half_in_float32"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        if not _may_hold_half(graph) and (graph.parent is None or not any(
                _may_hold_half(g) for g in _enclosing(graph))):
            return False
        facts = facts_for(model)
        types = {}
        for n in graph.nodes:
            for v in (*n.inputs, *n.outputs):
                if v is not None and id(v) not in types:
                    types[id(v)] = _type_of(v, facts)

        def half(v: Value | None) -> bool:
            t = types.get(id(v)) if v is not None else None
            return t is not None and t.elem_type in HALF_TYPES

        def converts(n: Node) -> bool:
            """An op listed above touching half precision, not holding a subgraph, with every
            input and output type known (an unknown one might be half precision too)."""
            if not _listed(n) or any(True for _ in n.subgraphs()):
                return False
            values = [v for v in (*n.inputs, *n.outputs) if v is not None and v.name]
            return any(half(v) for v in values) and all(types[id(v)] is not None for v in values)

        converted = [n for n in graph.nodes if converts(n)]
        if not converted:
            return False
        inside = {id(n) for n in converted}
        readers = {id(n) for n in graph.nodes
                   if n.op_type in _SHAPE_READERS and n.domain in ("", "ai.onnx")}
        keep = protected_values(model)
        overridable = graph_inputs(model)
        wide: dict[int, Value] = {}          # id(half value) -> its float32 twin
        after: dict[int, list[Node]] = {}    # id(node) -> Casts to place just after it
        before: dict[int, list[Node]] = {}   # id(node) -> Casts of weights to place before it
        weights: set[int] = set()            # id(float32 twin) made per run of a large constant
        first: list[Node] = []               # Casts of values made outside this graph's nodes

        def twin(v: Value) -> Value:
            return Value(unique_name(model, f"{v.name}_f32"),
                         TensorType(DataType.FLOAT, types[id(v)].shape))

        # outputs: the node writes the float32 twin; readers left alone get a Cast back
        for n in converted:
            for i, v in enumerate(n.outputs):
                if not half(v):
                    continue
                w = twin(v)
                n.outputs[i] = w
                w.producer, w.producer_index = n, i
                v.producer, v.producer_index = None, -1
                wide[id(v)] = w
                if id(v) in keep or any(id(u) not in inside and id(u) not in readers
                                        or u.graph is not graph for u, _ in v.uses):
                    cast = _cast(w, v, types[id(v)].elem_type, model)
                    after.setdefault(id(n), []).append(cast)
        # inputs: read the twin, widening constants once and casting anything else
        for n in converted:
            for i, v in enumerate(n.inputs):
                if not half(v) or n.domain == "pyonnx" and (n.op_type, i) in _NARROW_INPUTS:
                    continue
                w = wide.get(id(v))
                if w is None:
                    if is_constant(v, overridable) and v.name in graph.initializers:
                        arr = v.const_value.numpy()
                        if widens_constant(_WIDEN, [arr]):
                            # widened per run, just before its first reader (this node: the
                            # converted nodes are visited in graph order)
                            w = twin(v)
                            before.setdefault(id(n), []).append(
                                _cast(v, w, DataType.FLOAT, model))
                            weights.add(id(w))
                        else:
                            w = new_initializer(graph, unique_name(model, f"{v.name}_f32"),
                                                arr.astype("float32"))
                    else:
                        w = twin(v)
                        cast = _cast(v, w, DataType.FLOAT, model)
                        if v.producer is not None and v.producer.graph is graph:
                            after.setdefault(id(v.producer), []).append(cast)
                        else:
                            first.append(cast)
                    wide[id(v)] = w
                n.set_input(i, w)
        # shape readers take the twin a converted node made (the value is the same shape)
        for n in graph.nodes:
            if id(n) in readers:
                for i, v in enumerate(n.inputs):
                    if v is not None and id(v) in wide and wide[id(v)].producer is not None \
                            and id(wide[id(v)]) not in weights:
                        n.set_input(i, wide[id(v)])
        # half-precision initializers and values that nothing reads any more leave the graph
        for name, v in list(graph.initializers.items()):
            if id(v) in wide and not v.uses and id(v) not in keep:
                del graph.initializers[name]
        graph.value_info = [v for v in graph.value_info
                            if id(v) not in wide or v.producer is not None]
        nodes = [*first]
        for n in graph.nodes:
            nodes.extend(before.get(id(n), ()))
            nodes.append(n)
            nodes.extend(after.get(id(n), ()))
        for n in nodes:
            n.graph = graph
        graph.nodes = nodes
        return True


def _enclosing(graph: Graph):
    g = graph.parent
    while g is not None:
        yield g
        g = g.parent
