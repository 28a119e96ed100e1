"""The ONNX textual syntax: :func:`to_text` prints, :func:`parse_model` reads.

The syntax is the one of the ONNX repository's docs/Syntax.md (``onnx.printer`` /
``onnx.parser``)::

    <ir_version: 8, opset_import: ["" : 18]>
    agraph (float[N, 128] X) => (float[N, 10] C)
       <float[128, 10] W = {...}, float[10] B = {...}>
    {
       T = MatMul (X, W)
       C = Add (T, B)
    }

``parse_model(to_text(model))`` gives back the same model (graph, nodes, attributes, types,
initializer values bit for bit, functions, the model header); what the syntax cannot hold (doc
strings other than the model's and functions', metadata of graphs/nodes/values, dimension
denotations, training_info) is dropped. The printer writes what ``onnx.printer`` writes for the
same model, byte for byte, except where onnx's text would lose data (see
:mod:`pyonnx.io.text_printer`); the parser, in :mod:`pyonnx.io.text_parser`, reads what
``onnx.parser`` reads, and refuses text whose model would be invalid.
"""

from pyonnx.io.text_parser import (
    parse_function,
    parse_graph,
    parse_model,
    parse_model_proto,
    parse_node,
)
from pyonnx.io.text_printer import to_text

__all__ = ["to_text", "parse_model", "parse_graph", "parse_function", "parse_node",
           "parse_model_proto"]
