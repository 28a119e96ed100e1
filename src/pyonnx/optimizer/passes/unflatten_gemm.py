"""A Gemm between a flattening Reshape and the Reshape that restores the leading dims ->
MatMul (+ Add of the bias) on the unflattened tensor.

Exporters run a linear layer on a [batch, seq, K] tensor as
``Reshape(Gemm(Reshape(x, [-1, K]), W, b), [batch, seq, N])`` (GPT-2's Conv1D modules: sixteen
of them in gpt2_small). MatMul takes the leading dims as they are, so this is
``Add(MatMul(x, W), b)``: two Reshapes (and the Shape/Concat nodes computing the second one's
target) fewer, and the session then fuses the bias add into the product. It applies when shape
inference proves that the first Reshape keeps x's last axis (K) and flattens the rest, and that
the second one restores x's leading dims exactly (equal ints or equal symbols); Gemm must be
``alpha = beta = 1``, ``transA = 0``, a constant weight (``transB = 1``: transposed once here)
and a bias that broadcasts over rows only ([N], [1, N] or a scalar) or none.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Graph, Model, Node
from pyonnx.optimizer._core import all_graphs
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import (
    attr, constant_of, graph_inputs, insert_node, is_standard, new_initializer,
    protected_values, unique_name,
)
from pyonnx.optimizer.passes._match import made_by

__all__ = ["UnflattenGemm"]


class UnflattenGemm(FactsPass):
    """``Reshape(Gemm(Reshape(x, [-1, K]), W, b), x.shape[:-1] + [N]) -> MatMul(x, W) + b``."""

    name = "unflatten_gemm"
    anchors = frozenset({"Gemm"})
    requires_facts = True

    def applies(self, model: Model) -> bool:
        # a Gemm read from a Reshape and read by one, looked for before the facts are built
        return any(n.op_type == "Gemm" and n.inputs and made_by(n.inputs[0], "Reshape")
                   is not None and any(r.op_type == "Reshape" for r, _ in n.outputs[0].uses)
                   for g in all_graphs(model.graph) for n in g.nodes)

    def rewrite(self, graph: Graph, model: Model) -> bool:
        facts = self.facts
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for gemm in list(graph.nodes):
            if gemm.graph is not graph or gemm.op_type != "Gemm" or not is_standard(gemm) \
                    or len(gemm.inputs) < 2 or None in gemm.inputs[:2]:
                continue
            if float(attr(gemm, "alpha", 1.0)) != 1.0 or float(attr(gemm, "beta", 1.0)) != 1.0 \
                    or int(attr(gemm, "transA", 0)) != 0:  # type: ignore[arg-type]
                continue
            g_out = gemm.outputs[0]
            if id(g_out) in keep or len(g_out.uses) != 1:
                continue
            back = g_out.uses[0][0]
            if back.op_type != "Reshape" or not is_standard(back) or back.graph is not graph \
                    or g_out.uses[0][1] != 0:
                continue
            flat = made_by(gemm.inputs[0], "Reshape", graph)
            if flat is None or flat.inputs[0] is None:
                continue
            x = flat.inputs[0]
            xs, fs = facts.shape(x), facts.shape(gemm.inputs[0])
            gs, ys = facts.shape(g_out), facts.shape(back.outputs[0])
            if xs is None or fs is None or gs is None or ys is None or len(xs) < 2 \
                    or len(fs) != 2 or len(gs) != 2:
                continue
            k, n = xs[-1], gs[1]
            # the flattening keeps the last axis; the restoring Reshape gives x's leading dims
            if not isinstance(k, int) or fs[1] != k or not isinstance(n, int) \
                    or len(ys) != len(xs) or ys[-1] != n \
                    or any(d is None or d != e for d, e in zip(ys[:-1], xs[:-1])):
                continue
            w = constant_of(gemm.inputs[1], inputs)
            if w is None or w.ndim != 2:
                continue
            bias = gemm.inputs[2] if len(gemm.inputs) > 2 else None
            c = constant_of(bias, inputs) if bias is not None else None
            if bias is not None and (c is None or not (c.ndim <= 1 or (c.ndim == 2
                                                                       and c.shape[0] == 1))):
                continue
            weight = gemm.inputs[1]
            if int(attr(gemm, "transB", 0)):  # type: ignore[arg-type]
                name = unique_name(model, (weight.name or "w") + "_t")
                weight = new_initializer(graph, name, np.ascontiguousarray(w.T))
            y = back.outputs[0]
            graph.remove(back)
            back.outputs = []
            if bias is None:
                # Reshape(Gemm(Reshape(x), W)) -> MatMul(x, W)
                insert_node(graph, Node("MatMul", [x, weight], [y], name=gemm.name), gemm)
            else:
                from pyonnx.ir import TensorType, Value

                mm = Value(unique_name(model, (y.name or "gemm") + "_matmul"),
                           TensorType(y.type.elem_type, None)
                           if isinstance(y.type, TensorType) else None)
                # Reshape(Gemm(Reshape(x), W, b)) -> Add(MatMul(x, W), b)
                insert_node(graph, Node("MatMul", [x, weight], [mm], name=gemm.name), gemm)
                insert_node(graph, Node("Add", [mm, bias], [y]), gemm)
            graph.remove(gemm)
            modified = True
        return modified
