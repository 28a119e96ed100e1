"""Shape and type inference: ``infer_shapes(model) -> Model`` with symbolic dims and data
propagation.

One rule per operator (``@shape_rule``, keyed like kernels by since_version) computes output
types from input types, attributes and known input values; the engine walks graphs, subgraphs
and function calls in order, evaluates small shape computations with the kernels themselves,
and merges the results with the model's own annotations. See :mod:`.engine` for the merge rules
and :mod:`.symbolic` for the grammar of symbolic dims.
"""

from pyonnx.shape_inference._path import infer_shapes_path
from pyonnx.shape_inference.engine import InferenceContext, infer_shapes
from pyonnx.shape_inference.registry import get_rule, registered_rules, shape_rule

__all__ = ["infer_shapes", "infer_shapes_path", "InferenceContext", "shape_rule", "get_rule",
           "registered_rules"]
