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

The printer writes what ``onnx.printer`` writes for the same model, byte for byte. Where onnx's
text loses data (4-bit, 2-bit, 6-bit and complex tensor values, sparse tensors, a few function
details: see :mod:`pyonnx.io.text_printer`), ``to_text(model, lossless=True)`` writes it too,
and ``parse_model(to_text(model, lossless=True))`` gives back the same model (graph, nodes,
attributes, types, initializer values bit for bit, functions, the model header); what the
syntax cannot hold (doc strings other than the model's and functions', metadata of
graphs/nodes/values, dimension denotations, training_info) is dropped. The parser, in
:mod:`pyonnx.io.text_parser`, reads what ``onnx.parser`` reads, and refuses text whose model
would be invalid.
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
