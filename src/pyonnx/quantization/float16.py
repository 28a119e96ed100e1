"""Float16 / bfloat16 conversion: a model computing in half precision, with Casts exactly where
a value crosses between a converted node and one that must stay in float32.

Which inputs of a node become half precision is read from its schema, not from a list of
special cases: a node is converted when it is not blocked and its schema lets the type
parameter of its float32 inputs take float16 (bfloat16); inputs whose schema type is fixed
(``tensor(float)``, such as Resize's ``scales``) keep float32 and get a Cast back when their
producer was converted. Nodes computing their output type from an attribute are rewritten
(``Cast(to=FLOAT)`` becomes ``Cast(to=FLOAT16)``, Constant and ConstantOfShape values are
converted), so Cast chains stay in half precision. Subgraphs (If, Loop, Scan bodies) are
converted the same way inside; their formal inputs and outputs keep float32, so the
control-flow node's contract does not change, and outer-scope values they read are cast inside.

Initializers are stored in half precision when every reader is converted (values beyond the
half range are clamped to ``max_finite_val``, non-zero magnitudes below ``min_positive_val``
raised to it), in both precisions when readers of both kinds exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ml_dtypes
import numpy as np

from pyonnx.errors import InvalidArgument
from pyonnx.ir import (Attribute, AttributeType, DataType, Graph, Model, Node, Tensor,
                       TensorType, Value)
from pyonnx.quantization._edit import Editor, all_value_names, drop_unused_initializers

__all__ = ["convert_float_to_float16", "convert_float_to_bfloat16", "DEFAULT_OP_BLOCK_LIST",
           "Float16Converter"]

# operators kept in float32 by default: half precision breaks what they compute (index and
# count arithmetic of Range/CumSum/TopK, box coordinates of NonMaxSuppression/RoiAlign, random
# draws), or their schemas take no float16 (the ai.onnx.ml operators, found from the schemas)
DEFAULT_OP_BLOCK_LIST = ("NonMaxSuppression", "RoiAlign", "Range", "CumSum", "TopK",
                         "RandomUniformLike", "RandomNormalLike", "RandomUniform",
                         "RandomNormal", "Multinomial", "EyeLike", "Upsample")

_FLOAT = DataType.FLOAT
_ATTR_TYPED = {"Cast", "Constant", "ConstantOfShape", "CastLike"}


def _tensor_dtype(t: Any) -> DataType | None:
    return t.elem_type if isinstance(t, TensorType) else None


def _typed_float(v: Value | None) -> bool | None:
    """Whether ``v`` held float32 in the source model by its declared type (None: unknown)."""
    if v is None:
        return False
    if v.const_value is not None and isinstance(v.const_value, Tensor):
        return v.const_value.data_type == _FLOAT
    t = _tensor_dtype(v.type)
    return None if t is None else t == _FLOAT


def _initializer_owner(graph: Graph, v: Value) -> Graph | None:
    """The graph (``graph`` or an enclosing one) whose initializer ``v`` is, or None."""
    if v.const_value is None or v.producer is not None:
        return None
    g: Graph | None = graph
    while g is not None:
        if g.initializers.get(v.name) is v:
            return g
        g = g.parent
    return None


class Float16Converter:
    """One conversion run over a model (see the module docstring)."""

    def __init__(self, model: Model, target: DataType, *, keep_io_types: bool | Sequence[str],
                 op_block_list: Sequence[str], node_block_list: Sequence[str],
                 min_positive_val: float, max_finite_val: float,
                 force_fp16_initializers: bool) -> None:
        self.model = model
        self.target = target
        self.keep_io = keep_io_types
        self.op_block = set(op_block_list)
        self.node_block = set(node_block_list)
        self.min_pos = float(min_positive_val)
        self.max_fin = float(max_finite_val)
        self.force_init = force_fp16_initializers
        self.names = all_value_names(model)
        self.half: set[int] = set()                 # ids of values now in half precision
        self.casts: dict[tuple[int, int, int], Value] = {}
        self.half_inits: dict[int, Value] = {}
        self.converted_nodes = 0
        # values whose type shape inference left unknown but that the schemas show to be
        # float32 (an output bound to the type variable of a float32 input)
        self.untyped_float: set[int] = set()
        self.converted_ids: set[int] = set()

    def _orig_float(self, v: Value | None) -> bool:
        """Whether ``v`` held float32 in the source model."""
        if v is None:
            return False
        if id(v) in self.untyped_float:
            return True
        if id(v) in self.half:
            return id(v) in self.converted_ids
        return bool(_typed_float(v))

    # --- values --------------------------------------------------------------------------
    def _to_half(self, arr: np.ndarray) -> np.ndarray:
        a = np.asarray(arr, np.float32)
        if self.target == DataType.FLOAT16:
            a = np.clip(a, -self.max_fin, self.max_fin)
            tiny = (a != 0) & (np.abs(a) < self.min_pos)
            a = np.where(tiny, np.copysign(self.min_pos, a), a)
            return a.astype(np.float16)
        return a.astype(ml_dtypes.bfloat16)

    def _set_half(self, v: Value) -> None:
        if self._orig_float(v) or _typed_float(v) is None:
            self.converted_ids.add(id(v))
        self.half.add(id(v))
        t = v.type
        shape = t.shape if isinstance(t, TensorType) else None
        v.type = TensorType(self.target, shape)

    def _half_init(self, ed: Editor, v: Value) -> Value:
        got = self.half_inits.get(id(v))
        if got is None:
            got = ed.initializer(f"{v.name}_{self.target.name.lower()}",
                                 self._to_half(v.const_value.numpy()))
            self.half.add(id(got))
            self.half_inits[id(v)] = got
        return got

    def _provide(self, ed: Editor, v: Value, want_half: bool, before: Node) -> Value:
        """``v`` in the wanted precision: itself, a converted initializer, or a Cast."""
        is_half = id(v) in self.half
        if is_half == want_half:
            return v
        owner = _initializer_owner(ed.graph, v)
        if want_half and owner is not None:
            # an initializer (of this graph or one enclosing it): stored converted, where the
            # original lives, so that subgraph readers share one copy
            return self._half_init(ed if owner is ed.graph else Editor(self.model, owner,
                                                                         self.names), v)
        key = (id(ed.graph), id(v), int(want_half))
        got = self.casts.get(key)
        if got is None:
            to = self.target if want_half else _FLOAT
            got = ed.value(f"{v.name}_cast_{to.name.lower()}", to,
                           v.type.shape if isinstance(v.type, TensorType) else None)
            if want_half:
                self.half.add(id(got))
            producer = v.producer
            # right after the producer when it is in this graph (every later reader can
            # share it), else before the first reader here
            if producer is not None and producer.graph is ed.graph:
                i = ed.graph.nodes.index(producer)
                after = ed.graph.nodes[i + 1] if i + 1 < len(ed.graph.nodes) else None
                ed.node("Cast", [v], [got], before=after, to=int(to),
                        name=f"{v.name}_cast_{to.name.lower()}")
            else:
                ed.node("Cast", [v], [got], before=before, to=int(to),
                        name=f"{v.name}_cast_{to.name.lower()}")
            self.casts[key] = got
        return got

    # --- nodes ---------------------------------------------------------------------------
    def _blocked(self, node: Node) -> bool:
        return node.op_type in self.op_block or node.name in self.node_block

    def _schema(self, node: Node):
        from pyonnx.defs import lookup

        opset = self.model.opset(node.domain)
        return lookup(node.domain, node.op_type, opset) if opset is not None else None

    def _half_type_vars(self, node: Node, schema) -> tuple[list[str | None], list[str | None]]:
        """The type string of each actual input and output, by the schema's formals."""
        def spread(formals, n):
            out = []
            for i in range(n):
                if i < len(formals):
                    out.append(formals[i].type_str)
                elif formals and formals[-1].is_variadic:
                    out.append(formals[-1].type_str)
                else:
                    out.append(None)
            return out
        return spread(schema.inputs, len(node.inputs)), spread(schema.outputs, len(node.outputs))

    def convert_graph(self, graph: Graph, is_main: bool) -> None:
        ed = Editor(self.model, graph, self.names)
        if is_main:
            for v in graph.inputs:
                if v.name not in graph.initializers and self._orig_float(v) and \
                        not self._keeps_io(v.name):
                    self._set_half(v)
        for node in list(graph.nodes):
            self._convert_node(ed, node)
        if is_main:
            for idx, v in enumerate(list(graph.outputs)):
                if not self._orig_float(v):
                    continue
                want_half = not self._keeps_io(v.name)
                if (id(v) in self.half) != want_half:
                    self._retype_output(ed, graph, idx, v, want_half)
        else:
            for idx, v in enumerate(list(graph.outputs)):
                if id(v) in self.half:
                    f = self._provide(ed, v, False, None)
                    graph.replace_output(idx, f)

    def _keeps_io(self, name: str) -> bool:
        if isinstance(self.keep_io, bool):
            return self.keep_io
        return name in self.keep_io

    def _retype_output(self, ed: Editor, graph: Graph, idx: int, v: Value, want_half: bool
                       ) -> None:
        """Graph output ``v`` in the wanted precision under its own name (the inner value is
        renamed and a Cast gives the output)."""
        name = v.name
        if v.producer is None:   # a graph input or initializer passed straight out
            inner = v
        else:
            v.name = ed.fresh(f"{name}_{'float' if want_half else 'half'}")
            inner = v
        to = self.target if want_half else _FLOAT
        out = Value(name, TensorType(to, v.type.shape if isinstance(v.type, TensorType)
                                     else None))
        if inner is v and v.producer is None:
            out.name = ed.fresh(f"{name}_cast")
        ed.node("Cast", [inner], [out], to=int(to), name=f"{name}_output_cast")
        if want_half:
            self.half.add(id(out))
        graph.replace_output(idx, out)

    def _note_untyped_outputs(self, node: Node, schema) -> None:
        """Mark the outputs of unknown type that the schema makes float32."""
        if all(_typed_float(v) is not None for v in node.outputs):
            return
        if node.op_type == "Cast" and node.domain in ("", "ai.onnx"):
            to = node.attributes.get("to")
            if to is not None and to.value == int(_FLOAT):
                self.untyped_float.add(id(node.outputs[0]))
            return
        if schema is None:
            return
        in_types, out_types = self._half_type_vars(node, schema)
        float_vars = {ts for v, ts in zip(node.inputs, in_types) if self._orig_float(v)}
        for v, ts in zip(node.outputs, out_types):
            if _typed_float(v) is None and (ts in float_vars or ts == "tensor(float)"):
                self.untyped_float.add(id(v))

    def _convert_node(self, ed: Editor, node: Node) -> None:
        subgraphs = list(node.subgraphs())
        schema = None if subgraphs else self._schema(node)
        self._note_untyped_outputs(node, schema)
        if subgraphs or schema is None or self._blocked(node):
            for g in subgraphs:
                self.convert_graph(g, False)
            if node.op_type == "If":
                # an output is float32 when a branch gives float32 in that position
                for j, v in enumerate(node.outputs):
                    if _typed_float(v) is None and any(
                            j < len(g.outputs) and self._orig_float(g.outputs[j])
                            for g in subgraphs):
                        self.untyped_float.add(id(v))
            for i, v in enumerate(node.inputs):
                if v is not None and self._orig_float(v) and id(v) in self.half:
                    node.set_input(i, self._provide(ed, v, False, node))
            if self.force_init and not subgraphs:
                self._force_initializers(ed, node)
            return
        if node.op_type in _ATTR_TYPED and node.domain in ("", "ai.onnx"):
            self._convert_attr_typed(ed, node)
            return
        in_types, out_types = self._half_type_vars(node, schema)
        half_allowed = {tv for tv, allowed in schema.type_constraints.items()
                        if f"tensor({self.target.onnx_name})" in allowed}
        convert_tv: set[str] = set()
        for v, ts in zip(node.inputs, in_types):
            if v is not None and ts in half_allowed and self._orig_float(v):
                convert_tv.add(ts)
        for v, ts in zip(node.outputs, out_types):
            if ts in half_allowed and self._orig_float(v):
                convert_tv.add(ts)
        # a type variable is converted only when all of its float32 readers can be: an input
        # bound to it that is float32 in the source must become half too (same type rule)
        for i, (v, ts) in enumerate(zip(node.inputs, in_types)):
            if v is None or not self._orig_float(v):
                continue
            node.set_input(i, self._provide(ed, v, ts in convert_tv, node))
        for v, ts in zip(node.outputs, out_types):
            if ts in convert_tv and self._orig_float(v):
                self._set_half(v)
        if convert_tv:
            self.converted_nodes += 1

    def _force_initializers(self, ed: Editor, node: Node) -> None:
        """force_fp16_initializers: a float32 initializer read by a blocked node is stored in
        half precision too and cast up at run time."""
        for i, v in enumerate(node.inputs):
            if v is not None and self._orig_float(v) and \
                    _initializer_owner(ed.graph, v) is not None:
                h = self._half_init(ed, v)
                node.set_input(i, self._provide(ed, h, False, node))

    def _convert_attr_typed(self, ed: Editor, node: Node) -> None:
        op = node.op_type
        if op == "Cast":
            to = node.attributes.get("to")
            if to is not None and to.value == int(_FLOAT):
                node.attributes["to"] = Attribute("to", AttributeType.INT, int(self.target))
                self._set_half(node.outputs[0])
                self.converted_nodes += 1
            return
        if op == "CastLike":
            target = node.inputs[1]
            if target is not None and self._orig_float(target):
                node.set_input(1, self._provide(ed, target, True, node))
                self._set_half(node.outputs[0])
                self.converted_nodes += 1
            return
        attr = node.attributes.get("value")
        if attr is not None and attr.type == AttributeType.TENSOR and \
                attr.value.data_type == _FLOAT:
            t = attr.value
            arr = self._to_half(t.numpy())
            node.attributes["value"] = Attribute(
                "value", AttributeType.TENSOR,
                Tensor(t.name, self.target, t.dims, arr))
            self._set_half(node.outputs[0])
            self.converted_nodes += 1
        elif op == "Constant" and "value_float" in node.attributes or \
                "value_floats" in node.attributes:
            a = node.attributes.pop("value_float", None) or node.attributes.pop("value_floats")
            arr = np.asarray(a.value, np.float32)
            node.attributes["value"] = Attribute(
                "value", AttributeType.TENSOR,
                Tensor("", self.target, arr.shape, self._to_half(arr)))
            self._set_half(node.outputs[0])
            self.converted_nodes += 1


def _out_of_range_nodes(model: Model, sample_feeds: Any, limit: float) -> set[str]:
    """Names of main-graph nodes that read or write a float32 value whose magnitude exceeds
    ``limit`` when the float model runs on ``sample_feeds`` (a feed dict or a list of them)."""
    from pyonnx.quantization.calibrate import MinMaxCalibrater

    feeds = [sample_feeds] if isinstance(sample_feeds, dict) else list(sample_feeds)
    cal = MinMaxCalibrater(model, show_progress=False)
    cal.collect_data(iter(feeds))
    data = cal.compute_data()
    big = {name for name, td in data.items()
           if max(abs(float(td.lowest)), abs(float(td.highest))) > limit}
    names: set[str] = set()
    for i, node in enumerate(model.graph.nodes):
        vals = [v for v in list(node.inputs) + list(node.outputs) if v is not None]
        if any(v.name in big for v in vals):
            if not node.name:
                node.name = f"_fp16_unnamed_{i}"   # so that the block list can name it
            names.add(node.name)
    return names


def _convert(model: Any, target: DataType, *, min_positive_val: float, max_finite_val: float,
             keep_io_types: bool | Sequence[str], disable_shape_infer: bool,
             op_block_list: Sequence[str] | None, node_block_list: Sequence[str] | None,
             force_fp16_initializers: bool, force_fp16_inputs: Any,
             use_bfloat16_as_blocked_nodes_dtype: bool, sample_feeds: Any = None) -> Any:
    from pyonnx.io import load, serialize
    from pyonnx.optimizer._copy import copy_model
    from pyonnx.shape_inference import infer_shapes

    if force_fp16_inputs:
        raise InvalidArgument("force_fp16_inputs is not supported by pyonnx's converter; block "
                              "or keep those nodes instead")
    if use_bfloat16_as_blocked_nodes_dtype:
        raise InvalidArgument("use_bfloat16_as_blocked_nodes_dtype is not supported by pyonnx; "
                              "use convert_float_to_bfloat16 for a bfloat16 model")
    proto_cls = None
    if isinstance(model, Model):
        m = copy_model(model)
    elif hasattr(model, "SerializeToString") and not isinstance(model, (str, bytes)):
        proto_cls = type(model)   # an onnx ModelProto: the result is one too
        m = load(model)
    else:
        m = load(model)
    if not disable_shape_infer or sample_feeds is not None:
        m = infer_shapes(m)
    node_block_list = list(node_block_list or ())
    if sample_feeds is not None:
        # values beyond half the half-precision range (a sum of squares in a hand-written layer
        # norm) would overflow or lose their last digits: their readers and writers stay float32
        node_block_list += sorted(_out_of_range_nodes(m, sample_feeds, max_finite_val / 2))
    conv = Float16Converter(
        m, target, keep_io_types=keep_io_types,
        op_block_list=DEFAULT_OP_BLOCK_LIST if op_block_list is None else op_block_list,
        node_block_list=node_block_list or (), min_positive_val=min_positive_val,
        max_finite_val=max_finite_val, force_fp16_initializers=force_fp16_initializers)
    conv.convert_graph(m.graph, True)
    if conv.converted_nodes == 0:
        import logging

        logging.getLogger("pyonnx.quantization").warning(
            "float16 conversion: no node computes in float32 (or all are blocked); the model "
            "is unchanged")
    drop_unused_initializers(m)
    if proto_cls is not None:
        return proto_cls.FromString(serialize(m))
    return m


def convert_float_to_float16(model: Any, min_positive_val: float = 5.96e-08,
                             max_finite_val: float = 65504.0,
                             keep_io_types: bool | Sequence[str] = False,
                             disable_shape_infer: bool = False,
                             op_block_list: Sequence[str] | None = None,
                             node_block_list: Sequence[str] | None = None,
                             force_fp16_initializers: bool = False,
                             force_fp16_inputs: Any = None,
                             use_bfloat16_as_blocked_nodes_dtype: bool = False,
                             sample_feeds: Any = None) -> Any:
    """A float16 copy of ``model`` (onnxruntime.transformers.float16's signature, plus
    ``sample_feeds``).

    ``model``: a pyonnx Model (a Model is returned), an onnx ModelProto (a ModelProto is
    returned), a path or bytes. ``keep_io_types``: True keeps every float32 graph input and
    output in float32 (Casts inside), or a list of the names to keep. ``op_block_list`` (default
    :data:`DEFAULT_OP_BLOCK_LIST`) and ``node_block_list``: operator types and node names kept
    in float32. ``sample_feeds`` (a feed dict or a list of them; pyonnx's addition) runs the
    float model first and keeps in float32 every node that reads or writes a value beyond half
    the float16 range, which half precision would turn into infinity. The caller's model is
    never modified.
    """
    return _convert(model, DataType.FLOAT16, min_positive_val=min_positive_val,
                    max_finite_val=max_finite_val, keep_io_types=keep_io_types,
                    disable_shape_infer=disable_shape_infer, op_block_list=op_block_list,
                    node_block_list=node_block_list,
                    force_fp16_initializers=force_fp16_initializers,
                    force_fp16_inputs=force_fp16_inputs,
                    use_bfloat16_as_blocked_nodes_dtype=use_bfloat16_as_blocked_nodes_dtype,
                    sample_feeds=sample_feeds)


def convert_float_to_bfloat16(model: Any, keep_io_types: bool | Sequence[str] = False,
                              disable_shape_infer: bool = False,
                              op_block_list: Sequence[str] | None = None,
                              node_block_list: Sequence[str] | None = None,
                              force_bf16_initializers: bool = False,
                              sample_feeds: Any = None) -> Any:
    """As :func:`convert_float_to_float16`, to bfloat16 (float32's range: nothing is clamped,
    and ``sample_feeds`` guards nothing but is accepted for symmetry)."""
    return _convert(model, DataType.BFLOAT16, min_positive_val=0.0,
                    max_finite_val=float(np.finfo(np.float32).max), keep_io_types=keep_io_types,
                    disable_shape_infer=disable_shape_infer, op_block_list=op_block_list,
                    node_block_list=node_block_list,
                    force_fp16_initializers=force_bf16_initializers, force_fp16_inputs=None,
                    use_bfloat16_as_blocked_nodes_dtype=False, sample_feeds=sample_feeds)
