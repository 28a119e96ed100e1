"""MatMul of a transposed operand -> com.microsoft FusedMatMul with ``transA``/``transB``, as
onnxruntime's extended level writes it: ``MatMul(A, Transpose(B, swap last two axes)) =
FusedMatMul(A, B, transB=1)``, which multiplies without materializing the transpose (attention's
``Q @ K^T``). Float32 operands of equal known rank only, as onnxruntime runs it.
"""

from __future__ import annotations

from pyonnx.ir import Attribute, AttributeType, DataType, Graph, Model, Node, TensorType, Value
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer._rewrite import attr, insert_node, is_standard, protected_values
from pyonnx.optimizer.passes._match import made_by

__all__ = ["FuseMatMulTranspose"]

MS = "com.microsoft"


class FuseMatMulTranspose(FactsPass):
    """``MatMul(Transpose(A), Transpose(B))`` (last two axes swapped) -> ``FusedMatMul(A, B,
    transA, transB)``."""

    name = "fuse_matmul_transpose"
    anchors = frozenset({"Transpose"})

    requires_facts = True

    def rewrite(self, graph: Graph, model: Model) -> bool:
        facts = self.facts
        keep = protected_values(model)
        modified = False
        for mm in list(graph.nodes):
            if mm.graph is not graph or mm.op_type != "MatMul" or not is_standard(mm) \
                    or len(mm.inputs) != 2 or any(v is None for v in mm.inputs):
                continue
            ranks = [facts.rank(v) for v in mm.inputs]
            t = facts.type(mm.inputs[0])
            if ranks[0] is None or ranks[0] < 2 or ranks[0] != ranks[1] \
                    or not isinstance(t, TensorType) or t.elem_type != DataType.FLOAT:
                continue
            ins: list[Value] = list(mm.inputs)  # type: ignore[arg-type]
            flags = [0, 0]
            doomed: list[Node] = []
            for i, v in enumerate(mm.inputs):
                tr = made_by(v, "Transpose", graph)
                if tr is None or id(v) in keep or len(v.uses) != 1 or mm.inputs[0] is mm.inputs[1]:
                    continue
                perm = attr(tr, "perm")
                r = ranks[i]
                want = list(range(r - 2)) + [r - 1, r - 2]  # type: ignore[operator]
                if perm is None or [int(p) for p in perm] != want:  # type: ignore[union-attr]
                    continue
                ins[i] = tr.inputs[0]  # type: ignore[assignment]
                flags[i] = 1
                doomed.append(tr)
            if not doomed:
                continue
            out = mm.outputs[0]
            fused = Node("FusedMatMul", ins, [out], domain=MS, name=mm.name, attributes=[
                Attribute("transA", AttributeType.INT, flags[0]),
                Attribute("transB", AttributeType.INT, flags[1]),
                Attribute("alpha", AttributeType.FLOAT, 1.0)])
            # MatMul(A, Transpose(B)) -> FusedMatMul(A, B, transB=1)
            insert_node(graph, fused, mm)
            graph.remove(mm)
            graph.remove_many(doomed)
            model.opset_imports.setdefault(MS, 1)
            modified = True
        return modified
