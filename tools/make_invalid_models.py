"""Make invalid ONNX models, each breaking one rule of the IR specification, from valid ones.

Seeds (all valid): a few small hand-built models covering what the backend folders lack
(If/Loop subgraphs, a model-local function with an attribute reference, a sparse initializer,
an ai.onnx.ml node, required attributes), the model folders of the onnx backend suite
(``simple``, ``pytorch-converted``, ``pytorch-operator``, ``light``) and the real models of
``../shared/models`` when present. Each mutation edits a copy of a seed through onnx's protobuf
classes and is tagged with the checker rule it breaks (a key of ``pyonnx.checker.RULES``).

Two mutations break rules the loader already enforces: a tensor whose data count disagrees with
its dims, and a tensor of element type UNDEFINED cannot be decoded, so ``pyonnx.load`` raises
DecodeError for them (``stage == "decode"``). ``full`` marks cases only ``check_model(...,
full_check=True)`` can see (type constraints).

In memory (what tests use)::

    from tools.make_invalid_models import invalid_cases
    for case in invalid_cases(max_seed_bytes=4_000_000): ...

To a folder (``index.tsv`` lists name, rule, stage, full)::

    python tools/make_invalid_models.py OUT_DIR [--per-mutation 8] [--max-seed-bytes N]
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import sys
from collections.abc import Callable, Iterator

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from pyonnx import defs  # noqa: E402

SHARED = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                       "models"))
BACKEND_FOLDERS = ("simple", "pytorch-converted", "pytorch-operator")


@dataclasses.dataclass
class InvalidCase:
    """One invalid model: ``seed/mutation`` name, the rule tag it breaks, the model."""

    name: str
    rule: str
    model: onnx.ModelProto
    stage: str = "check"  # "decode": pyonnx.load itself refuses the model
    full: bool = False  # only check_model(full_check=True) sees it

    def to_bytes(self) -> bytes:
        return self.model.SerializeToString()


# --------------------------------------------------------------------------- seeds


def _model(nodes, inputs, outputs, inits=(), opsets=(("", 18),), ir=8, name="g",
           functions=(), sparse=()) -> onnx.ModelProto:  # type: ignore[no-untyped-def]
    g = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(inits),
                          sparse_initializer=list(sparse))
    return helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                             ir_version=ir, functions=list(functions))


def _vi(name: str, elem: int = TensorProto.FLOAT, shape=(2,)) -> onnx.ValueInfoProto:  # type: ignore[no-untyped-def]
    return helper.make_tensor_value_info(name, elem, list(shape) if shape is not None else None)


def hand_built_seeds() -> list[tuple[str, onnx.ModelProto]]:
    """Small valid models with the features the backend folders lack."""
    seeds = []
    # If with two branches reading an outer value, then an Add with an initializer
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then_branch", [],
                               [_vi("t")])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else_branch", [],
                               [_vi("e")])
    seeds.append(("hand/if", _model(
        [helper.make_node("If", ["c"], ["r"], name="if1", then_branch=then_g, else_branch=else_g),
         helper.make_node("Add", ["r", "w"], ["y"], name="add1")],
        [_vi("x"), _vi("c", TensorProto.BOOL, ())], [_vi("y")],
        [numpy_helper.from_array(np.array([1, 2], np.float32), "w")])))
    # Loop: body (i, cond, v) -> (cond, v + x)
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"], name="keep"),
         helper.make_node("Add", ["v_in", "x"], ["v_out"], name="acc")],
        "body", [_vi("i", TensorProto.INT64, ()), _vi("cond_in", TensorProto.BOOL, ()),
                 _vi("v_in")],
        [_vi("cond_out", TensorProto.BOOL, ()), _vi("v_out")])
    seeds.append(("hand/loop", _model(
        [helper.make_node("Loop", ["n", "", "x"], ["y"], name="loop1", body=body)],
        [_vi("x"), _vi("n", TensorProto.INT64, ())], [_vi("y")])))
    # a model-local function with an attribute parameter used through ref_attr_name
    ref = helper.make_attribute_ref("alpha", onnx.AttributeProto.FLOAT)
    leaky = helper.make_node("LeakyRelu", ["a"], ["b"], name="leaky")
    leaky.attribute.append(ref)
    fn = helper.make_function("local", "Leaky", ["a"], ["b"], [leaky],
                              [helper.make_opsetid("", 18)], attributes=["alpha"])
    seeds.append(("hand/function", _model(
        [helper.make_node("Leaky", ["x"], ["h"], domain="local", name="call", alpha=0.2),
         helper.make_node("Relu", ["h"], ["y"], name="relu")],
        [_vi("x")], [_vi("y")], opsets=(("", 18), ("local", 1)), ir=10, functions=[fn])))
    # a sparse initializer (read by nothing but present: sparse constants are legal on their own)
    sp = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "s"),
        numpy_helper.from_array(np.array([0, 3], np.int64), "s_idx"), [4])
    seeds.append(("hand/sparse", _model(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], [_vi("x")], [_vi("y")],
        sparse=[sp])))
    # ai.onnx.ml
    seeds.append(("hand/ml", _model(
        [helper.make_node("Normalizer", ["x"], ["y"], domain="ai.onnx.ml", norm="MAX",
                          name="norm")],
        [_vi("x", shape=(1, 3))], [_vi("y", shape=(1, 3))],
        opsets=(("", 18), ("ai.onnx.ml", 3)))))
    # required and typed attributes
    seeds.append(("hand/attrs", _model(
        [helper.make_node("Concat", ["x", "x"], ["xx"], axis=0, name="concat"),
         helper.make_node("Cast", ["xx"], ["xd"], to=TensorProto.DOUBLE, name="cast"),
         helper.make_node("LeakyRelu", ["xd"], ["l"], alpha=0.1, name="leaky"),
         helper.make_node("Transpose", ["l"], ["y"], perm=[0], name="transpose")],
        [_vi("x")], [_vi("y", TensorProto.DOUBLE, (4,))])))
    return seeds


def backend_seeds() -> list[tuple[str, onnx.ModelProto]]:
    """The model folders and light models of the installed onnx backend suite."""
    import onnx.backend.test

    root = os.path.join(os.path.dirname(onnx.backend.test.__file__), "data")
    out = []
    for kind in BACKEND_FOLDERS:
        for path in sorted(glob.glob(os.path.join(root, kind, "*", "model.onnx"))):
            out.append((f"{kind}/{os.path.basename(os.path.dirname(path))}", onnx.load(path)))
    for path in sorted(glob.glob(os.path.join(root, "light", "light_*.onnx"))):
        out.append((f"light/{os.path.basename(path)[6:-5]}", onnx.load(path)))
    return out


def shared_seeds(max_bytes: int | None = None) -> list[tuple[str, onnx.ModelProto]]:
    """The real models of ../shared/models (none when the folder is absent)."""
    out = []
    for path in sorted(glob.glob(os.path.join(SHARED, "*.onnx"))):
        if max_bytes is not None and os.path.getsize(path) > max_bytes:
            continue
        out.append((f"shared/{os.path.basename(path)[:-5]}", onnx.load(path)))
    return out


# --------------------------------------------------------------------------- helpers


def _copy(m: onnx.ModelProto) -> onnx.ModelProto:
    c = onnx.ModelProto()
    c.CopyFrom(m)
    return c


def _opset(m: onnx.ModelProto, domain: str = "") -> int | None:
    for o in m.opset_import:
        if defs.normalize_domain(o.domain) == domain:
            return int(o.version)
    return None


def _schema(m: onnx.ModelProto, n: onnx.NodeProto) -> defs.OpSchema | None:
    v = _opset(m, defs.normalize_domain(n.domain))
    if v is None:
        return None
    s = defs.lookup(n.domain, n.op_type, v)
    return s if s is not None and not s.deprecated else None


def _set_nodes(g: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> None:
    copies = [onnx.NodeProto() for _ in nodes]
    for c, n in zip(copies, nodes):
        c.CopyFrom(n)
    del g.node[:]
    g.node.extend(copies)


def _subgraphs(g: onnx.GraphProto) -> Iterator[tuple[int, onnx.GraphProto]]:
    """(index of the holding node in g, subgraph) for the GRAPH attributes of g's nodes."""
    for i, n in enumerate(g.node):
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield i, a.g


def _first_schema_node(m: onnx.ModelProto, pred: Callable[[onnx.NodeProto, defs.OpSchema], bool]
                       ) -> tuple[onnx.NodeProto, defs.OpSchema] | None:
    for n in m.graph.node:
        s = _schema(m, n)
        if s is not None and pred(n, s):
            return n, s
    return None


def _defined_name(m: onnx.ModelProto) -> str | None:
    for v in m.graph.input:
        return v.name
    for t in m.graph.initializer:
        return t.name
    return None


# --------------------------------------------------------------------------- mutations
# Each takes a copy of a valid model, edits it in place, and returns False when it does not
# apply to that model.


def dup_node_output(m: onnx.ModelProto) -> bool:
    nodes = [n for n in m.graph.node if n.output and n.output[0]]
    if len(nodes) < 2 or nodes[0].output[0] == nodes[-1].output[0]:
        return False
    nodes[-1].output[0] = nodes[0].output[0]
    return True


def dup_graph_input(m: onnx.ModelProto) -> bool:
    if not m.graph.input:
        return False
    m.graph.input.add().CopyFrom(m.graph.input[0])
    return True


def output_redefines_input(m: onnx.ModelProto) -> bool:
    if not m.graph.input or not m.graph.node or not m.graph.node[-1].output:
        return False
    m.graph.node[-1].output[0] = m.graph.input[0].name
    return True


def dup_initializer(m: onnx.ModelProto) -> bool:
    used = {i for n in m.graph.node for i in n.input}
    for t in m.graph.initializer:
        if t.name in used:
            m.graph.initializer.add().CopyFrom(t)
            return True
    return False


def reorder_nodes(m: onnx.ModelProto) -> bool:
    nodes = list(m.graph.node)
    made = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    for j, n in enumerate(nodes):
        producers = [made[x] for x in n.input if x in made and made[x] < j]
        if producers:
            i = min(producers)
            nodes.insert(i, nodes.pop(j))
            _set_nodes(m.graph, nodes)
            return True
    return False


def delete_producer(m: onnx.ModelProto) -> bool:
    nodes = list(m.graph.node)
    for i, n in enumerate(nodes):
        later = {x for k in nodes[i + 1:] for x in k.input}
        if any(o and o in later for o in n.output):
            del nodes[i]
            _set_nodes(m.graph, nodes)
            return True
    return False


def rename_input_undefined(m: onnx.ModelProto) -> bool:
    for n in m.graph.node:
        for k, x in enumerate(n.input):
            if x:
                n.input[k] = "never_defined_value"
                return True
    return False


def drop_opset_import(m: onnx.ModelProto) -> bool:
    used = {defs.normalize_domain(n.domain) for n in m.graph.node}
    for k, o in enumerate(m.opset_import):
        d = defs.normalize_domain(o.domain)
        if d and d in used:
            del m.opset_import[k]
            return True
    if "" not in used:
        return False
    for k, o in enumerate(m.opset_import):
        if defs.normalize_domain(o.domain) == "":
            del m.opset_import[k]
            break
    if not m.opset_import:
        # keep the list non-empty: an empty list reads as "no imports" in very old files
        m.opset_import.add(domain="com.example.unused", version=1)
    return True


def duplicate_default_import(m: onnx.ModelProto) -> bool:
    v = _opset(m)
    if v is None or any(o.domain == "ai.onnx" for o in m.opset_import):
        return False
    m.opset_import.add(domain="ai.onnx", version=v)
    return True


def opset_version_zero(m: onnx.ModelProto) -> bool:
    m.opset_import.add(domain="com.example.custom", version=0)
    return True


def add_unknown_attribute(m: onnx.ModelProto) -> bool:
    hit = _first_schema_node(m, lambda n, s: "not_an_attribute" not in s.attributes)
    if hit is None:
        return False
    hit[0].attribute.append(helper.make_attribute("not_an_attribute", 1))
    return True


def drop_required_attribute(m: onnx.ModelProto) -> bool:
    hit = _first_schema_node(m, lambda n, s: any(a.name in s.required_attributes
                                                 for a in n.attribute))
    if hit is None:
        return False
    n, s = hit
    for k, a in enumerate(n.attribute):
        if a.name in s.required_attributes:
            del n.attribute[k]
            return True
    return False


_RETYPE = {
    onnx.AttributeProto.INT: lambda a: (onnx.AttributeProto.FLOAT, "f", float(a.i)),
    onnx.AttributeProto.FLOAT: lambda a: (onnx.AttributeProto.INT, "i", int(a.f)),
    onnx.AttributeProto.INTS: lambda a: (onnx.AttributeProto.FLOATS, "floats",
                                         [float(x) for x in a.ints]),
    onnx.AttributeProto.FLOATS: lambda a: (onnx.AttributeProto.INTS, "ints",
                                           [int(x) for x in a.floats]),
    onnx.AttributeProto.STRING: lambda a: (onnx.AttributeProto.INT, "i", 1),
}


def change_attribute_type(m: onnx.ModelProto) -> bool:
    hit = _first_schema_node(m, lambda n, s: any(a.type in _RETYPE and a.name in s.attributes
                                                 for a in n.attribute))
    if hit is None:
        return False
    n, s = hit
    for a in n.attribute:
        if a.type in _RETYPE and a.name in s.attributes:
            new_type, field, value = _RETYPE[a.type](a)
            name = a.name
            a.Clear()
            a.name, a.type = name, new_type
            if isinstance(value, list):
                getattr(a, field).extend(value)
            else:
                setattr(a, field, value)
            return True
    return False


def extra_inputs(m: onnx.ModelProto) -> bool:
    name = _defined_name(m)
    hit = _first_schema_node(m, lambda n, s: s.max_input < defs.UNBOUNDED)
    if hit is None or name is None:
        return False
    n, s = hit
    while len(n.input) <= s.max_input:
        n.input.append(name)
    return True


def too_few_inputs(m: onnx.ModelProto) -> bool:
    hit = _first_schema_node(m, lambda n, s: s.min_input >= 1)
    if hit is None:
        return False
    n, s = hit
    del n.input[s.min_input - 1:]
    return True


def empty_required_input(m: onnx.ModelProto) -> bool:
    hit = _first_schema_node(m, lambda n, s: bool(n.input) and bool(s.inputs)
                             and not s.inputs[0].is_optional and not s.inputs[0].is_variadic)
    if hit is None:
        return False
    hit[0].input[0] = ""
    return True


def extra_outputs(m: onnx.ModelProto) -> bool:
    hit = _first_schema_node(m, lambda n, s: s.max_output < defs.UNBOUNDED)
    if hit is None:
        return False
    n, s = hit
    k = 0
    while len(n.output) <= s.max_output:
        n.output.append(f"extra_output_{k}")
        k += 1
    return True


def future_operator(m: onnx.ModelProto) -> bool:
    v = _opset(m)
    if v is None:
        return False
    for n in m.graph.node:
        if defs.normalize_domain(n.domain) != "" or not n.input:
            continue
        for op in defs.op_types(""):
            since = defs.versions("", op)
            if since[0] <= v:
                continue
            s = defs.lookup("", op, since[0])
            if s is None or s.deprecated or s.required_attributes:
                continue
            if s.min_input <= len(n.input) <= s.max_input and \
                    s.min_output <= len(n.output) <= s.max_output:
                n.op_type = op
                del n.attribute[:]
                return True
    return False


def deprecated_operator(m: onnx.ModelProto) -> bool:
    v = _opset(m)
    if v is None or v < 10:
        return False
    for n in m.graph.node:
        if defs.normalize_domain(n.domain) == "" and n.input:
            n.op_type = "Upsample"  # deprecated from opset 10
            del n.attribute[:]
            return True
    return False


def empty_op_type(m: onnx.ModelProto) -> bool:
    if not m.graph.node:
        return False
    m.graph.node[0].op_type = ""
    return True


def init_dims_mismatch(m: onnx.ModelProto) -> bool:
    for t in m.graph.initializer:
        if t.data_location != TensorProto.EXTERNAL:
            if t.dims:
                t.dims[0] += 1
            else:
                t.dims.append(2)
            return True
    return False


def undefined_data_type(m: onnx.ModelProto) -> bool:
    if not m.graph.initializer:
        return False
    m.graph.initializer[0].data_type = TensorProto.UNDEFINED
    return True


def graph_output_undefined(m: onnx.ModelProto) -> bool:
    m.graph.output.append(_vi("never_computed_output"))
    return True


def rename_graph_output(m: onnx.ModelProto) -> bool:
    if not m.graph.output:
        return False
    m.graph.output[0].name = "renamed_output_nobody_computes"
    return True


def empty_graph_name(m: onnx.ModelProto) -> bool:
    m.graph.name = ""
    return True


def empty_subgraph_name(m: onnx.ModelProto) -> bool:
    for _, sg in _subgraphs(m.graph):
        sg.name = ""
        return True
    return False


def input_without_type(m: onnx.ModelProto) -> bool:
    if not m.graph.input:
        return False
    m.graph.input[0].ClearField("type")
    return True


def input_without_shape(m: onnx.ModelProto) -> bool:
    for v in m.graph.input:
        if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape"):
            v.type.tensor_type.ClearField("shape")
            return True
    return False


def output_without_type(m: onnx.ModelProto) -> bool:
    if not m.graph.output:
        return False
    m.graph.output[0].ClearField("type")
    return True


def output_undefined_elem_type(m: onnx.ModelProto) -> bool:
    for v in m.graph.output:
        if v.type.HasField("tensor_type"):
            v.type.tensor_type.elem_type = TensorProto.UNDEFINED
            return True
    return False


def ref_attr_outside_function(m: onnx.ModelProto) -> bool:
    for n in m.graph.node:
        for a in n.attribute:
            if a.type in _RETYPE:
                name, atype = a.name, a.type
                a.Clear()
                a.name, a.type, a.ref_attr_name = name, atype, "caller_attribute"
                return True
    return False


def subgraph_output_shadows_outer(m: onnx.ModelProto) -> bool:
    if not m.graph.input:
        return False
    outer = m.graph.input[0].name
    for _, sg in _subgraphs(m.graph):
        sg.node.append(helper.make_node(
            "Constant", [], [outer], name="shadow",
            value=numpy_helper.from_array(np.zeros(1, np.float32))))
        return True
    return False


def subgraph_returns_outer_value(m: onnx.ModelProto) -> bool:
    if not m.graph.input:
        return False
    for _, sg in _subgraphs(m.graph):
        if sg.output:
            sg.output[0].name = m.graph.input[0].name
            return True
    return False


def subgraph_reads_later_value(m: onnx.ModelProto) -> bool:
    for i, sg in _subgraphs(m.graph):
        # an output of the holding node itself or of a node after it
        later = [o for n in list(m.graph.node)[i:] for o in n.output if o]
        if later:
            sg.node.append(helper.make_node("Identity", [later[-1]], ["reads_later_value"],
                                            name="early_read"))
            return True
    return False


def subgraph_initializer_is_input(m: onnx.ModelProto) -> bool:
    if m.ir_version < 4:
        return False
    for _, sg in _subgraphs(m.graph):
        for v in sg.input:
            if v.type.HasField("tensor_type"):
                elem = v.type.tensor_type.elem_type or TensorProto.FLOAT
                arr = np.zeros((), helper.tensor_dtype_to_np_dtype(elem))
                sg.initializer.append(numpy_helper.from_array(arr, v.name))
                return True
    return False


def _to_sparse(m: onnx.ModelProto, breaker: Callable[[np.ndarray, int], np.ndarray]) -> bool:
    if m.ir_version < 6:
        return False
    for k, t in enumerate(m.graph.initializer):
        if t.data_location == TensorProto.EXTERNAL or t.data_type == TensorProto.STRING:
            continue
        arr = numpy_helper.to_array(t)
        if arr.size < 2:
            continue
        flat = arr.reshape(-1)
        idx = breaker(np.arange(flat.size, dtype=np.int64), flat.size)
        sp = helper.make_sparse_tensor(numpy_helper.from_array(flat.copy(), t.name),
                                       numpy_helper.from_array(idx, t.name + "_indices"),
                                       list(arr.shape))
        del m.graph.initializer[k]
        m.graph.sparse_initializer.append(sp)
        return True
    return False


def sparse_index_out_of_range(m: onnx.ModelProto) -> bool:
    def out_of_range(idx: np.ndarray, size: int) -> np.ndarray:
        idx[-1] = size
        return idx
    return _to_sparse(m, out_of_range)


def sparse_indices_unsorted(m: onnx.ModelProto) -> bool:
    def unsorted(idx: np.ndarray, size: int) -> np.ndarray:
        idx[[0, 1]] = idx[[1, 0]]
        return idx
    return _to_sparse(m, unsorted)


def ir_version_zero(m: onnx.ModelProto) -> bool:
    m.ir_version = 0
    return True


def duplicate_function(m: onnx.ModelProto) -> bool:
    if not m.functions:
        return False
    m.functions.add().CopyFrom(m.functions[0])
    return True


def function_ref_undeclared(m: onnx.ModelProto) -> bool:
    for f in m.functions:
        for n in f.node:
            for a in n.attribute:
                if a.ref_attr_name:
                    a.ref_attr_name = "undeclared_attribute"
                    return True
    return False


def call_missing_function(m: onnx.ModelProto) -> bool:
    ids = {(f.domain, f.name) for f in m.functions}
    for n in m.graph.node:
        if (n.domain, n.op_type) in ids:
            n.op_type = "NoSuchFunction"
            return True
    return False


def function_without_opset(m: onnx.ModelProto) -> bool:
    for f in m.functions:
        if f.node:
            del f.opset_import[:]
            return True
    return False


_ODD_TYPES = (TensorProto.STRING, TensorProto.BOOL, TensorProto.COMPLEX128,
              TensorProto.FLOAT8E4M3FN, TensorProto.UINT64)


def input_type_not_allowed(m: onnx.ModelProto) -> bool:
    inits = {t.name for t in m.graph.initializer}
    for v in m.graph.input:
        if v.name in inits or not v.type.HasField("tensor_type"):
            continue
        for n in m.graph.node:
            s = _schema(m, n)
            if s is None or v.name not in n.input:
                continue
            k = list(n.input).index(v.name)
            formal = s.inputs[min(k, len(s.inputs) - 1)]
            allowed = s.type_constraints.get(formal.type_str, (formal.type_str,))
            for elem in _ODD_TYPES:
                ts = f"tensor({helper.tensor_dtype_to_string(elem)[len('TensorProto.'):].lower()})"
                if ts not in allowed:
                    v.type.tensor_type.elem_type = elem
                    return True
    return False


#: (mutation, rule tag it breaks, stage, full check needed)
MUTATIONS: list[tuple[Callable[[onnx.ModelProto], bool], str, str, bool]] = [
    (dup_node_output, "ssa", "check", False),
    (dup_graph_input, "ssa", "check", False),
    (output_redefines_input, "ssa", "check", False),
    (dup_initializer, "ssa", "decode", False),
    (reorder_nodes, "topological-order", "check", False),
    (delete_producer, "undefined-input", "check", False),
    (rename_input_undefined, "undefined-input", "check", False),
    (drop_opset_import, "opset-import", "check", False),
    (duplicate_default_import, "opset-import", "check", False),
    (opset_version_zero, "opset-import", "check", False),
    (add_unknown_attribute, "unknown-attribute", "check", False),
    (drop_required_attribute, "missing-attribute", "check", False),
    (change_attribute_type, "attribute-type", "check", False),
    (extra_inputs, "arity", "check", False),
    (too_few_inputs, "arity", "check", False),
    (empty_required_input, "arity", "check", False),
    (extra_outputs, "arity", "check", False),
    (future_operator, "unknown-operator", "check", False),
    (deprecated_operator, "deprecated-operator", "check", False),
    (empty_op_type, "name", "check", False),
    (init_dims_mismatch, "tensor", "decode", False),
    (undefined_data_type, "tensor", "decode", False),
    (graph_output_undefined, "graph-output", "check", False),
    (rename_graph_output, "graph-output", "check", False),
    (empty_graph_name, "name", "check", False),
    (empty_subgraph_name, "name", "check", False),
    (input_without_type, "value-info", "check", False),
    (input_without_shape, "value-info", "check", False),
    (output_without_type, "value-info", "check", False),
    (output_undefined_elem_type, "value-info", "check", False),
    (ref_attr_outside_function, "attribute-reference", "check", False),
    (subgraph_output_shadows_outer, "ssa", "check", False),
    (subgraph_returns_outer_value, "graph-output", "check", False),
    (subgraph_reads_later_value, "topological-order", "check", False),
    (subgraph_initializer_is_input, "subgraph-initializer-input", "check", False),
    (sparse_index_out_of_range, "sparse-tensor", "check", False),
    (sparse_indices_unsorted, "sparse-tensor", "check", False),
    (ir_version_zero, "ir-version", "check", False),
    (duplicate_function, "function", "check", False),
    (function_ref_undeclared, "attribute-reference", "check", False),
    (call_missing_function, "undefined-function", "check", False),
    (function_without_opset, "opset-import", "check", False),
    (input_type_not_allowed, "type-constraint", "check", True),
]


def invalid_cases(per_mutation: int = 8, max_seed_bytes: int | None = None,
                  include_shared: bool = True) -> Iterator[InvalidCase]:
    """Every mutation applied to up to ``per_mutation`` seeds it fits (the seed pool is rotated
    per mutation so that all seeds get used); shared models larger than ``max_seed_bytes`` are
    left out."""
    pool = hand_built_seeds() + (shared_seeds(max_seed_bytes) if include_shared else []) + \
        backend_seeds()
    for k, (mutate, rule, stage, full) in enumerate(MUTATIONS):
        made = 0
        start = (k * 37) % len(pool)
        for j in range(len(pool)):
            name, seed = pool[(start + j) % len(pool)]
            m = _copy(seed)
            if not mutate(m):
                continue
            yield InvalidCase(f"{name}/{mutate.__name__}", rule, m, stage, full)
            made += 1
            if made >= per_mutation:
                break


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir", help="folder to write the invalid models and index.tsv into")
    p.add_argument("--per-mutation", type=int, default=8,
                   help="how many seeds each mutation is applied to (default 8)")
    p.add_argument("--max-seed-bytes", type=int, default=None,
                   help="leave out shared models larger than this")
    args = p.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    rows = []
    for case in invalid_cases(args.per_mutation, args.max_seed_bytes):
        fname = case.name.replace("/", "__") + ".onnx"
        with open(os.path.join(args.out_dir, fname), "wb") as f:
            f.write(case.to_bytes())
        rows.append(f"{fname}\t{case.rule}\t{case.stage}\t{int(case.full)}")
    with open(os.path.join(args.out_dir, "index.tsv"), "w") as f:
        f.write("file\trule\tstage\tfull\n" + "\n".join(rows) + "\n")
    print(f"wrote {len(rows)} invalid models to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
