"""Small builders of raw ONNX protobuf messages (pyonnx's own schema, no onnx package needed).

The hostile corpus needs models that pyonnx's IR cannot even hold (unknown element types,
negative dims, external data pointing anywhere), so it writes the wire messages directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from pyonnx.io import proto as P

FLOAT = 1
UINT8 = 2
INT32 = 6
INT64 = 7
BOOL = 9

_NP_TO_CODE = {np.dtype(np.float32): FLOAT, np.dtype(np.uint8): UINT8, np.dtype(np.int32): INT32,
               np.dtype(np.int64): INT64, np.dtype(np.bool_): BOOL}


def tensor(name: str, array: Any = None, *, dims: Sequence[int] | None = None,
           data_type: int | None = None, raw: bytes | None = None,
           external: dict[str, str] | None = None) -> Any:
    """A TensorProto: from an array (raw_data), or from explicit dims/type/raw/external parts."""
    tp = P.TensorProto()
    tp.name = name
    if array is not None:
        a = np.asarray(array)
        tp.data_type = _NP_TO_CODE[a.dtype]
        tp.dims.extend(a.shape)
        tp.raw_data = a.tobytes()
    if dims is not None:
        del tp.dims[:]
        tp.dims.extend(dims)
    if data_type is not None:
        tp.data_type = data_type
    if raw is not None:
        tp.raw_data = raw
    if external is not None:
        tp.ClearField("raw_data")
        tp.data_location = P.TensorProto.EXTERNAL
        for k, v in external.items():
            e = tp.external_data.add()
            e.key, e.value = k, v
    return tp


def value_info(name: str, elem_type: int | None = FLOAT,
               shape: Sequence[int | str | None] | None = None) -> Any:
    """A ValueInfoProto of a tensor type (elem_type None: no type at all)."""
    vi = P.ValueInfoProto()
    vi.name = name
    if elem_type is not None:
        tt = vi.type.tensor_type
        tt.elem_type = elem_type
        if shape is not None:
            tt.shape.SetInParent()
            for d in shape:
                dim = tt.shape.dim.add()
                if isinstance(d, int):
                    dim.dim_value = d
                elif isinstance(d, str):
                    dim.dim_param = d
    return vi


def attr(name: str, value: Any) -> Any:
    """An AttributeProto from a Python value (int, float, str, list, TensorProto, GraphProto)."""
    ap = P.AttributeProto()
    ap.name = name
    if isinstance(value, bool) or isinstance(value, int):
        ap.type, ap.i = P.AttributeProto.INT, int(value)
    elif isinstance(value, float):
        ap.type, ap.f = P.AttributeProto.FLOAT, value
    elif isinstance(value, (str, bytes)):
        ap.type = P.AttributeProto.STRING
        ap.s = value.encode() if isinstance(value, str) else value
    elif isinstance(value, P.TensorProto):
        ap.type = P.AttributeProto.TENSOR
        ap.t.CopyFrom(value)
    elif isinstance(value, P.SparseTensorProto):
        ap.type = P.AttributeProto.SPARSE_TENSOR
        ap.sparse_tensor.CopyFrom(value)
    elif isinstance(value, P.GraphProto):
        ap.type = P.AttributeProto.GRAPH
        ap.g.CopyFrom(value)
    elif isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        ap.type = P.AttributeProto.INTS
        ap.ints.extend(value)
    elif isinstance(value, list) and all(isinstance(v, float) for v in value):
        ap.type = P.AttributeProto.FLOATS
        ap.floats.extend(value)
    else:
        raise TypeError(f"attr {name!r}: cannot encode {type(value).__name__}")
    return ap


def node(op_type: str, inputs: Iterable[str], outputs: Iterable[str], *, name: str = "",
         domain: str = "", **attrs: Any) -> Any:
    """A NodeProto."""
    n = P.NodeProto()
    n.op_type = op_type
    n.name = name or f"{op_type.lower()}_node"
    n.domain = domain
    n.input.extend(inputs)
    n.output.extend(outputs)
    for k, v in attrs.items():
        n.attribute.append(attr(k, v))
    return n


def graph(nodes: Iterable[Any], inputs: Iterable[Any], outputs: Iterable[Any], *,
          initializers: Iterable[Any] = (), sparse_initializers: Iterable[Any] = (),
          name: str = "g") -> Any:
    """A GraphProto."""
    g = P.GraphProto()
    g.name = name
    g.node.extend(nodes)
    g.input.extend(inputs)
    g.output.extend(outputs)
    g.initializer.extend(initializers)
    g.sparse_initializer.extend(sparse_initializers)
    return g


def model(g: Any, *, opset: int = 21, ir_version: int = 10,
          extra_opsets: dict[str, int] | None = None, functions: Iterable[Any] = ()) -> Any:
    """A ModelProto importing the default domain at ``opset``."""
    m = P.ModelProto()
    m.ir_version = ir_version
    m.producer_name = "pyonnx-hostile-corpus"
    o = m.opset_import.add()
    o.domain, o.version = "", opset
    for d, v in (extra_opsets or {}).items():
        o = m.opset_import.add()
        o.domain, o.version = d, v
    m.graph.CopyFrom(g)
    m.functions.extend(functions)
    return m


def function(name: str, domain: str, inputs: Sequence[str], outputs: Sequence[str],
             nodes: Iterable[Any], *, opset: int = 21) -> Any:
    """A FunctionProto importing the default domain at ``opset``."""
    f = P.FunctionProto()
    f.name, f.domain = name, domain
    f.input.extend(inputs)
    f.output.extend(outputs)
    f.node.extend(nodes)
    o = f.opset_import.add()
    o.domain, o.version = "", opset
    return f


def single_op(op_type: str, inputs: Sequence[tuple[str, int, Sequence[int | str | None] | None]],
              n_outputs: int = 1, *, initializers: Iterable[Any] = (), opset: int = 21,
              domain: str = "", **attrs: Any) -> Any:
    """A model of one node whose inputs are graph inputs (name, elem type, shape) or initializers
    (listed in ``initializers`` under the same names; they need no graph input)."""
    inits = list(initializers)
    init_names = {t.name for t in inits}
    outs = [f"y{i}" for i in range(n_outputs)]
    g = graph([node(op_type, [i[0] for i in inputs], outs, domain=domain, **attrs)],
              [value_info(n, t, s) for n, t, s in inputs if n and n not in init_names],
              [P.ValueInfoProto(name=o) for o in outs], initializers=inits)
    extra = {domain: 1} if domain else None
    return model(g, opset=opset, extra_opsets=extra)
