"""Resource limits shared by load, check_model, infer_shapes and InferenceSession.

The defaults sit far above real models (a VGG-19 weight is 411 MB, LLM embeddings pass 2 GB)
and only stop hostile ones; :class:`pyonnx.runtime.SessionOptions` carries the same names.
"""

from __future__ import annotations

from pyonnx.errors import ResourceLimitExceeded
from pyonnx.ir import Graph, Model

__all__ = ["DEFAULT_MAX_NESTING_DEPTH", "DEFAULT_MAX_TENSOR_BYTES", "check_nesting_depth"]

#: Subgraph levels below the main graph (protobuf's own decoder stops near 31 If levels).
DEFAULT_MAX_NESTING_DEPTH = 64

#: Bytes of one computed tensor.
DEFAULT_MAX_TENSOR_BYTES = 16 * 2**30


def check_nesting_depth(model: Model, limit: int = DEFAULT_MAX_NESTING_DEPTH) -> None:
    """Raise :class:`ResourceLimitExceeded` when a subgraph of ``model`` (or of one of its
    functions) lies more than ``limit`` levels below its top graph.

    Walks iteratively, so a model built in memory as deep as it likes cannot exhaust Python's
    recursion here; the code that later recurses over graphs can rely on the bound.
    """
    stack: list[tuple[Graph, int, str]] = [(model.graph, 0, "main graph")]
    stack += [(f.graph, 0, f"function {f.domain}::{f.name}") for f in model.functions]
    while stack:
        g, depth, where = stack.pop()
        if depth > limit:
            raise ResourceLimitExceeded(
                f"subgraph {g.name!r} ({where}) is nested {depth} levels deep, above the limit "
                f"of {limit} (max_nesting_depth)")
        for n in g.nodes:
            for sg in n.subgraphs():
                stack.append((sg, depth + 1, f"{where} > {n.describe()}"))
