"""MatMul + Add(constant bias) -> pyonnx::FusedMatMul(A, B, bias).

The fused kernel adds the bias in place into the freshly computed product, saving the
allocation and the extra pass of a separate Add. The bias must be a constant that does not
widen the product when broadcast (at most as many dimensions as the product's declared rank,
when that is known); the kernel still falls back to an out-of-place add if it would.
"""

from __future__ import annotations

from pyonnx.ir import Graph, Model, Node, TensorType
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import (
    FUSED_DOMAIN, constant_of, graph_inputs, insert_node, is_standard, protected_values,
    single_consumer,
)

__all__ = ["FuseMatMulAdd"]



class FuseMatMulAdd(GraphPass):
    """``Add(MatMul(A, B), c)`` or ``Add(c, MatMul(A, B))`` -> ``FusedMatMul(A, B, c)``."""

    name = "fuse_matmul_add"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for mm in list(graph.nodes):
            if mm.graph is not graph or mm.op_type != "MatMul" or not is_standard(mm):
                continue
            y = mm.outputs[0]
            add = single_consumer(y, keep)
            if add is None or add.op_type != "Add" or not is_standard(add) \
                    or add.graph is not graph or len(add.inputs) != 2:
                continue
            other = add.inputs[1] if add.inputs[0] is y else add.inputs[0]
            if other is y or other is None:
                continue
            c = constant_of(other, inputs)
            if c is None or c.dtype.kind != "f":
                continue
            rank = _rank(y) or _rank(add.outputs[0])
            if c.ndim > 1 and (rank is None or c.ndim > rank):
                continue
            if "broadcast" in add.attributes or "axis" in add.attributes:
                continue  # Add-1/6 legacy broadcasting is not numpy broadcasting
            out = add.outputs[0]
            graph.remove(add)
            # Add(MatMul(A, B), c) -> FusedMatMul(A, B, c)
            fused = Node("FusedMatMul", [mm.inputs[0], mm.inputs[1], other], [out],
                         domain=FUSED_DOMAIN, name=mm.name or add.name)
            insert_node(graph, fused, mm)
            graph.remove(mm)
            model.opset_imports.setdefault(FUSED_DOMAIN, 1)
            modified = True
        return modified


def _rank(v: object) -> int | None:
    t = getattr(v, "type", None)
    if isinstance(t, TensorType) and t.shape is not None:
        return len(t.shape)
    return None
