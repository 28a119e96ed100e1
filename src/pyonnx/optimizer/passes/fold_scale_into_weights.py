"""A constant scalar factor after a linear layer folds into its weights:
``Mul(Add(MatMul(a, W), b), s) = Add(MatMul(a, s*W), s*b)`` (``Mul(MatMul(a, W), s) =
MatMul(a, s*W)`` without a bias), also through Reshape and
Transpose nodes between the layer and the Mul (a scalar commutes with both). Attention scales
its query and key this way (``q * d^-1/4``). The scaled weights are new initializers (the old
ones may have other readers); products are rounded once more, within float tolerance.
"""

from __future__ import annotations

from pyonnx.ir import Graph, Model, Node, Value
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import (
    constant_of, graph_inputs, is_standard, new_initializer, protected_values, replace_uses,
    unique_name,
)
from pyonnx.optimizer.passes._match import made_by, other_input

__all__ = ["FoldScaleIntoWeights"]

_THROUGH = ("Reshape", "Transpose")


class FoldScaleIntoWeights(GraphPass):
    """``Mul(Add(MatMul(a, W), b), s) -> Add(MatMul(a, s*W), s*b)`` for a constant scalar s."""

    name = "fold_scale_into_weights"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for mul in list(graph.nodes):
            if mul.graph is not graph or mul.op_type != "Mul" or not is_standard(mul) \
                    or len(mul.inputs) != 2 or id(mul.outputs[0]) in keep:
                continue  # (a graph output keeps its Mul: its readers cannot be rewired)
            for v, s in (mul.inputs, mul.inputs[::-1]):
                sc = constant_of(s, inputs)
                if v is None or sc is None or sc.size != 1 or sc.ndim > 0 \
                        or sc.dtype.kind != "f":
                    continue
                if self._fold(graph, model, mul, v, sc, keep, inputs):
                    modified = True
                    break
        return modified

    def _fold(self, graph: Graph, model: Model, mul: Node, v: Value, sc: object,
              keep: set[int], inputs: set[int]) -> bool:
        # walk up through single-use Reshape / Transpose to Add(MatMul(a, W), b)
        cur = v
        while True:
            if id(cur) in keep or len(cur.uses) != 1:
                return False
            p = cur.producer
            if p is None or p.graph is not graph or not is_standard(p):
                return False
            if p.op_type in _THROUGH:
                cur = p.inputs[0]
                if cur is None:
                    return False
                continue
            break
        mm = made_by(cur, "MatMul", graph)
        if mm is not None:  # a linear layer without bias
            w = constant_of(mm.inputs[1], inputs)
            if w is None or w.dtype != sc.dtype:  # type: ignore[attr-defined]
                return False
            w_name = unique_name(model, (mm.inputs[1].name or "w") + "_scaled")
            # Mul(MatMul(a, W), s) -> MatMul(a, s*W)
            mm.set_input(1, new_initializer(graph, w_name, (w * sc).astype(w.dtype)))
            replace_uses(mul.outputs[0], v)
            return True
        add = made_by(cur, "Add", graph)
        if add is None or len(add.inputs) != 2:
            return False
        for mm_out in add.inputs:
            mm = made_by(mm_out, "MatMul", graph)
            b = other_input(add, mm_out) if mm is not None else None
            if mm is None or b is None or id(mm_out) in keep or len(mm_out.uses) != 1:
                continue
            w = constant_of(mm.inputs[1], inputs)
            bias = constant_of(b, inputs)
            dt = sc.dtype  # type: ignore[attr-defined]
            if w is None or bias is None or w.dtype != dt or bias.dtype != dt:
                continue
            w_name = unique_name(model, (mm.inputs[1].name or "w") + "_scaled")
            new_w = new_initializer(graph, w_name, (w * sc).astype(w.dtype))
            new_b = new_initializer(graph, unique_name(model, (b.name or "b") + "_scaled"),
                                    (bias * sc).astype(bias.dtype))
            # Mul(Add(MatMul(a, W), b), s) -> Add(MatMul(a, s*W), s*b)
            mm.set_input(1, new_w)
            add.set_input(1 if add.inputs[1] is b else 0, new_b)
            replace_uses(mul.outputs[0], v)
            return True
        return False
