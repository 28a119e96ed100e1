"""Conv / Gemm / MatMul (with or without a fused bias) + activation -> one fused node of the
``pyonnx`` domain whose kernel applies the activation in place on the product; or, for files
(``domain="com.microsoft"``), Conv (and com.microsoft FusedConv) + activation -> onnxruntime's
FusedConv, float32 only as onnxruntime runs it.

Activations: Relu, LeakyRelu, Sigmoid, Tanh, HardSigmoid, and Clip with constant bounds. The
producer's output must be read only by the activation (otherwise the unactivated value is
still needed). The ``pyonnx`` domain also takes HardSwish and SiLU (``Mul(y, Sigmoid(y))``,
where ``y`` is read by those two nodes only; fused as ``Swish`` with alpha 1), which
onnxruntime's FusedConv lacks: the public extended stage leaves those alone.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import Attribute, AttributeType, Graph, Model, Node, Value
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import (
    FUSED_DOMAIN, attr, constant_of, graph_inputs, insert_node, is_standard, make_attributes,
    protected_values, since_version, single_consumer,
)

__all__ = ["FuseActivation"]


_FUSED_NAME = {"Conv": "FusedConv", "Gemm": "FusedGemm", "MatMul": "FusedMatMul"}


class FuseActivation(GraphPass):
    """``act(Conv(x, W, b)) -> FusedConv(x, W, b, activation=act)``; likewise Gemm and MatMul."""

    name = "fuse_activation"

    def __init__(self, domain: str = FUSED_DOMAIN) -> None:
        self.domain = domain

    def rewrite(self, graph: Graph, model: Model) -> bool:
        keep = protected_values(model)
        inputs = graph_inputs(model)
        modified = False
        for node in list(graph.nodes):
            if node.graph is not graph:
                continue
            kind = _anchor(node, model, self.domain)
            if kind is None:
                continue
            if self.domain != FUSED_DOMAIN and _weight_dtype(node, inputs) != np.float32:
                continue
            y = node.outputs[0]
            silu = _silu(y, keep, graph) if self.domain == FUSED_DOMAIN else None
            if silu is not None:
                op_type, params, out = "Swish", [1.0], silu[1].outputs[0]
                for n in reversed(silu):  # the Mul, then the Sigmoid it reads
                    graph.remove(n)
            else:
                act = single_consumer(y, keep)
                if act is None or act.graph is not graph or not is_standard(act) \
                        or not act.inputs or act.inputs[0] is not y:
                    continue
                params = _activation_params(act, model, inputs, node, self.domain)
                if params is None:
                    continue
                op_type, out = act.op_type, act.outputs[0]
                graph.remove(act)
            attrs = [a for a in node.attributes.values()
                     if a.name not in ("activation", "activation_params")]
            attrs += make_attributes([("activation", op_type)])
            attrs.append(Attribute("activation_params", AttributeType.FLOATS,
                                   [float(p) for p in params]))
            # act(op(...)) -> Fused<op>(..., activation=act)
            fused = Node(kind, list(node.inputs), [out], domain=self.domain,
                         name=node.name or out.name, attributes=attrs)
            insert_node(graph, fused, node)
            graph.remove(node)
            model.opset_imports.setdefault(self.domain, 1)
            modified = True
        return modified


def _anchor(node: Node, model: Model, domain: str = FUSED_DOMAIN) -> str | None:
    """The fused op_type a node can become in ``domain``, or None."""
    if domain != FUSED_DOMAIN:
        # onnxruntime's FusedConv (its FusedGemm and FusedMatMul are other operators)
        if node.domain == domain and node.op_type == "FusedConv":
            return None if attr(node, "activation", "") else "FusedConv"
        ok = is_standard(node) and node.op_type == "Conv" and len(node.outputs) == 1
        return "FusedConv" if ok else None
    if node.domain == FUSED_DOMAIN and node.op_type in ("FusedMatMul", "FusedConv"):
        # a fused MatMul+Add or Conv+Add that has no activation yet
        return None if attr(node, "activation", "") else node.op_type
    if not is_standard(node) or node.op_type not in _FUSED_NAME or len(node.outputs) != 1:
        return None
    if node.op_type == "Gemm" and since_version(model, node) < 7:
        return None  # Gemm-1/6 have the legacy broadcast attribute
    return _FUSED_NAME[node.op_type]


def _silu(y: Value, keep: set[int], graph: Graph) -> tuple[Node, Node] | None:
    """``(Sigmoid, Mul)`` when ``y`` is read only by ``s = Sigmoid(y)`` and ``Mul(y, s)`` (either
    order) and ``s`` only by that Mul: SiLU, ``y * sigmoid(y)``, which equals Swish with alpha 1
    to the last bit (the product of the same two factors)."""
    if id(y) in keep or len(y.uses) != 2:
        return None
    sig = next((n for n, _ in y.uses if n.op_type == "Sigmoid"), None)
    mul = next((n for n, _ in y.uses if n.op_type == "Mul"), None)
    if sig is None or mul is None or sig.graph is not graph or mul.graph is not graph \
            or not is_standard(sig) or not is_standard(mul) or len(sig.inputs) != 1 \
            or len(sig.outputs) != 1 or len(mul.inputs) != 2 or len(mul.outputs) != 1:
        return None
    s = sig.outputs[0]
    if single_consumer(s, keep) is not mul or {id(v) for v in mul.inputs} != {id(y), id(s)}:
        return None
    return sig, mul


def _activation_params(act: Node, model: Model, inputs: set[int],
                       anchor: Node, domain: str = FUSED_DOMAIN) -> list[float] | None:
    op = act.op_type
    if len(act.outputs) != 1:
        return None
    if op in ("Relu", "Sigmoid", "Tanh"):
        return [] if len(act.inputs) == 1 else None
    if op == "HardSwish":  # the pyonnx domain's only: onnxruntime's FusedConv has none
        return [] if domain == FUSED_DOMAIN and len(act.inputs) == 1 else None
    if op == "LeakyRelu":
        return [float(attr(act, "alpha", 0.01))]  # type: ignore[arg-type]
    if op == "HardSigmoid":
        return [float(attr(act, "alpha", 0.2)), float(attr(act, "beta", 0.5))]  # type: ignore[arg-type]
    if op == "Clip":
        v = since_version(model, act)
        if v < 6:
            return None
        if v < 11:
            big = 3.4028234663852886e38
            return [float(attr(act, "min", -big)), float(attr(act, "max", big))]  # type: ignore[arg-type]
        bounds = []
        wdt = _weight_dtype(anchor, inputs)
        for i, default in ((1, float("-inf")), (2, float("inf"))):
            if len(act.inputs) <= i or act.inputs[i] is None:
                bounds.append(default)
                continue
            c = constant_of(act.inputs[i], inputs)
            # Clip-11 requires bounds of the input's type: only fuse when the anchor's constant
            # weight shows that type, so the fused node fails exactly when Clip would
            if c is None or c.size != 1 or wdt is None or c.dtype != wdt:
                return None
            bounds.append(float(c.ravel()[0]))
        return bounds
    return None


def _weight_dtype(anchor: Node, inputs: set[int]) -> object:
    w = constant_of(anchor.inputs[1], inputs) if len(anchor.inputs) > 1 else None
    return w.dtype if w is not None and w.dtype.kind == "f" else None
