"""Dynamic quantization's MatMul pattern -> com.microsoft DynamicQuantizeMatMul, as onnxruntime's
extended level fuses it:

``Mul(Cast(MatMulInteger(DynamicQuantizeLinear(A), B, a_zp, b_zp), FLOAT), Mul(a_scale,
b_scale)) [+ bias] = DynamicQuantizeMatMul(A, B, b_scale, b_zp, bias)``

(what ``quantize_dynamic`` writes for each MatMul). The fused kernel quantizes A the same way
and multiplies the same exact integer product by the same float32 scale product, so the
outputs are unchanged, minus the Cast, the two Muls and the intermediate tensors.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import DataType, Graph, Model, Node
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import (attr, constant_of, graph_inputs, insert_node,
                                       protected_values, single_consumer)
from pyonnx.optimizer.passes._match import made_by

__all__ = ["FuseDynamicQuantizeMatMul"]

MS = "com.microsoft"


class FuseDynamicQuantizeMatMul(GraphPass):
    """See the module docstring."""

    name = "fuse_dynamic_quantize_matmul"

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for mul in list(graph.nodes):
            if mul.graph is not graph or mul.op_type != "Mul" or mul.domain not in ("", "ai.onnx") \
                    or len(mul.inputs) != 2:
                continue
            found = self._match(graph, mul, keep, inputs)
            if found is None:
                continue
            a, b, b_scale, b_zp, bias, out, doomed, before = found
            fused = Node("DynamicQuantizeMatMul", [a, b, b_scale, b_zp, bias], [out],
                         domain=MS, name=mul.name)
            insert_node(graph, fused, before)
            graph.remove_many(doomed)
            model.opset_imports.setdefault(MS, 1)
            modified = True
        return modified

    def _match(self, graph: Graph, mul: Node, keep: set[int], inputs: set[int]):
        for order in (0, 1):
            f, s = mul.inputs[order], mul.inputs[1 - order]
            cast = made_by(f, "Cast", graph)
            smul = made_by(s, "Mul", graph)
            if cast is None or smul is None or attr(cast, "to") != int(DataType.FLOAT):
                continue
            if single_consumer(f, keep) is not mul or single_consumer(s, keep) is not mul:
                continue
            mmi = made_by(cast.inputs[0], "MatMulInteger", graph)
            if mmi is None or single_consumer(cast.inputs[0], keep) is not cast or \
                    len(mmi.inputs) < 3:
                continue
            dql = made_by(mmi.inputs[0], "DynamicQuantizeLinear", graph)
            if dql is None or mmi.inputs[2] is not dql.outputs[2]:
                continue
            b = mmi.inputs[1]
            b_arr = constant_of(b, inputs)
            b_zp = mmi.inputs[3] if len(mmi.inputs) > 3 else None
            if b_arr is None or b_arr.ndim != 2 or \
                    (b_zp is not None and constant_of(b_zp, inputs) is None):
                continue
            a_scale = dql.outputs[1]
            others = [v for v in smul.inputs if v is not a_scale]
            if len(others) != 1 or len(smul.inputs) != 2:
                continue
            b_scale = others[0]
            bs = constant_of(b_scale, inputs)
            n = b_arr.shape[1]
            if bs is None or bs.dtype != np.float32 or bs.ndim > 1 or bs.size not in (1, n):
                continue
            if b_zp is not None:
                zp = constant_of(b_zp, inputs)
                if zp.ndim > 1 or zp.size not in (1, n):
                    continue
            out, bias, doomed = mul.outputs[0], None, [mul, cast, mmi, smul]
            before = mul
            add = single_consumer(out, keep)
            if add is not None and add.op_type == "Add" and add.domain in ("", "ai.onnx") and \
                    len(add.inputs) == 2 and add.graph is graph:
                other = add.inputs[1] if add.inputs[0] is out else add.inputs[0]
                c = constant_of(other, inputs)
                # y + bias, with the bias along the last axis: the fused node's optional input
                if c is not None and c.dtype == np.float32 and c.shape == (n,):
                    out, bias, before = add.outputs[0], other, add
                    doomed.append(add)
            return dql.inputs[0], b, b_scale, b_zp, bias, out, doomed, before
        return None
