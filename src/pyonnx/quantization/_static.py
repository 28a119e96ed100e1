"""Static quantization as optimizer passes: activation scales fixed by calibration.

QDQ format (:class:`QDQPass`): each selected node reads its float activations through a
``QuantizeLinear -> DequantizeLinear`` pair and its weights through a ``DequantizeLinear`` of
an integer initializer (the bias as int32 with scale ``x_scale * w_scale``); the float
operator stays, and a runtime may fuse the pattern into an integer kernel.

QOperator format (:class:`QOperatorPass`): Conv -> QLinearConv, MatMul -> QLinearMatMul,
Gemm -> com.microsoft QGemm, Add/Mul -> com.microsoft QLinearAdd/QLinearMul; consecutive
quantized nodes pass integer tensors to each other, and a DequantizeLinear gives float
consumers their value.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pyonnx.ir import DataType, Model, Node, Value
from pyonnx.optimizer._core import Pass
from pyonnx.quantization._edit import Editor, const_array, float_type_of
from pyonnx.quantization._options import QuantOptions
from pyonnx.quantization._params import quantize_array, scale_zero_point, weight_params
from pyonnx.quantization._types import QuantType, data_type_of, qrange

__all__ = ["QDQPass", "QOperatorPass", "QDQ_OPS", "QOPERATOR_OPS", "activations_to_calibrate",
           "DEFAULT_STATIC_OPS"]

QDQ_OPS = ("Conv", "MatMul", "Gemm", "BatchNormalization", "Add", "Mul", "Concat", "MaxPool",
           "AveragePool", "GlobalAveragePool", "Relu", "Clip", "Resize", "Sigmoid", "Softmax",
           "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Split", "Gather", "Where",
           "Pad", "LeakyRelu", "Sub", "Div", "ReduceMean")
# by default the operators where quantization pays (weights shrink, integer kernels exist) and
# the joins between them; others on request through op_types_to_quantize
DEFAULT_STATIC_OPS = ("Conv", "MatMul", "Gemm", "BatchNormalization", "Add", "Mul", "Concat",
                      "MaxPool", "AveragePool", "GlobalAveragePool")
QOPERATOR_OPS = ("Conv", "MatMul", "Gemm", "Add", "Mul")
MS = "com.microsoft"

_FLOAT = DataType.FLOAT


def _weight_axis(node: Node, index: int) -> int | None:
    """The output-channel axis of a weight input (for per-channel scales), None for others."""
    if node.op_type == "Conv" and index == 1:
        return 0
    if node.op_type == "MatMul" and index == 1:
        return 1
    if node.op_type == "BatchNormalization" and index == 1:
        return 0
    if node.op_type == "Gemm" and index == 1:
        t = node.attributes.get("transB")
        return 0 if (t is not None and t.value) else 1
    return None


def _keeps_float(node: Node, index: int) -> bool:
    """Constant inputs a QDQ rewrite leaves float: BatchNormalization's mean and variance
    (the variance sits under a square root; the pair is usually folded into a Conv anyway)."""
    return node.op_type == "BatchNormalization" and index >= 3


def _is_bias(node: Node, index: int) -> bool:
    if node.op_type in ("Conv", "BatchNormalization") and index == 2:
        return True
    if node.op_type == "Gemm" and index == 2:
        alpha = node.attributes.get("alpha")
        beta = node.attributes.get("beta")
        return (alpha is None or alpha.value == 1.0) and (beta is None or beta.value == 1.0)
    return False


def _float_inputs(node: Node) -> list[tuple[int, Value]]:
    return [(i, v) for i, v in enumerate(node.inputs)
            if v is not None and float_type_of(v) == _FLOAT]


def activations_to_calibrate(model: Model, options: QuantOptions, qoperator: bool) -> list[str]:
    """Names of the float activations the selected nodes read (and, for QOperator, write)."""
    names: list[str] = []
    seen: set[str] = set()
    for node in model.graph.nodes:
        if not options.selects(node):
            continue
        if qoperator and node.op_type not in QOPERATOR_OPS:
            continue
        vals = [v for _, v in _float_inputs(node) if const_array(v) is None]
        if qoperator:
            vals += [v for v in node.outputs if float_type_of(v) == _FLOAT]
        for v in vals:
            if v.name not in seen:
                seen.add(v.name)
                names.append(v.name)
    return names


class _StaticBase(Pass):
    """Shared state: calibrated ranges and the cache of quantized weights."""

    def __init__(self, options: QuantOptions, ranges: Mapping[str, tuple[float, float]]) -> None:
        self.options = options
        self.ranges = ranges
        self.quantized: list[str] = []

    def _act_params(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.ranges[name]
        o = self.options
        s, z = scale_zero_point(lo, hi, o.activation_type, symmetric=o.activation_symmetric)
        return (np.asarray(s, np.float32).reshape(()),
                np.asarray(z).astype(data_type_of(o.activation_type).numpy).reshape(()))

    def _weight(self, ed: Editor, v: Value, axis: int | None
                ) -> tuple[Value, Value, Value, int | None]:
        key = (v.name, axis)
        if key not in self._weights:
            o = self.options
            w = const_array(v)
            ax = axis if (o.per_channel and axis is not None and w.ndim >= 2) else None
            p = weight_params(w, o.weight_type, symmetric=o.weight_symmetric,
                              reduce_range=o.reduce_range, axis=ax)
            q = quantize_array(w, p.scale, p.zero_point, o.weight_type, p.axis)
            self._weights[key] = (ed.initializer(f"{v.name}_quantized", q),
                                  ed.initializer(f"{v.name}_scale", p.scale),
                                  ed.initializer(f"{v.name}_zero_point", p.zero_point), p.axis)
        return self._weights[key]

    def _bias(self, ed: Editor, v: Value, x_scale: np.ndarray, w_scale: np.ndarray
              ) -> tuple[Value, Value, Value]:
        """The bias as int32 in the product's scale ``x_scale * w_scale`` (zero point 0)."""
        b = const_array(v).astype(np.float64)
        scale = (x_scale.astype(np.float64) * w_scale.astype(np.float64)).astype(np.float32)
        scale = np.broadcast_to(scale, b.shape).copy() if scale.ndim else scale
        q = np.clip(np.rint(b / np.where(scale == 0, 1, scale)), -2**31, 2**31 - 1)
        return (ed.initializer(f"{v.name}_quantized", q.astype(np.int32)),
                ed.initializer(f"{v.name}_scale", scale.astype(np.float32)),
                ed.initializer(f"{v.name}_zero_point", np.zeros(scale.shape, np.int32)))


class QDQPass(_StaticBase):
    """Inserts QuantizeLinear/DequantizeLinear pairs for the selected nodes (module docstring)."""

    name = "qdq_quantize"

    def call(self, model: Model) -> bool:
        ed = Editor(model)
        self._weights: dict = {}
        self._remove_relus(model)
        acts: dict[str, tuple[Value, np.ndarray]] = {}   # activation -> (its DQ output, scale)
        for node in list(model.graph.nodes):
            if not self.options.selects(node):
                continue
            changed = False
            x_scale = None
            for i, v in _float_inputs(node):
                if const_array(v) is None:
                    if v.name not in self.ranges:
                        continue
                    if v.name not in acts:
                        s, z = self._act_params(v.name)
                        sv = ed.initializer(f"{v.name}_scale", s)
                        zv = ed.initializer(f"{v.name}_zero_point", z)
                        q = ed.value(f"{v.name}_QuantizeLinear_Output", data_type_of(
                            self.options.activation_type))
                        dq = ed.value(f"{v.name}_DequantizeLinear_Output", _FLOAT)
                        ed.node("QuantizeLinear", [v, sv, zv], [q], before=node,
                                name=f"{v.name}_QuantizeLinear")
                        ed.node("DequantizeLinear", [q, sv, zv], [dq], before=node,
                                name=f"{v.name}_DequantizeLinear")
                        acts[v.name] = (dq, s)
                    node.set_input(i, acts[v.name][0])
                    if i == 0:
                        x_scale = acts[v.name][1]
                    changed = True
        # weights and biases once the activations are known (a bias needs its input's scale)
            for i, v in _float_inputs(node):
                if const_array(v) is None or v.producer is not None:
                    continue
                if _is_bias(node, i) or _keeps_float(node, i):
                    continue
                wq, ws, wz, axis = self._weight(ed, v, _weight_axis(node, i))
                dq = ed.value(f"{v.name}_DequantizeLinear_Output", _FLOAT)
                ed.node("DequantizeLinear", [wq, ws, wz], [dq], before=node,
                        name=f"{v.name}_DequantizeLinear", axis=axis)
                node.set_input(i, dq)
                changed = True
                if self.options.quantize_bias and x_scale is not None and \
                        _weight_axis(node, i) is not None and len(node.inputs) > 2:
                    b = node.inputs[2]
                    if b is not None and const_array(b) is not None and _is_bias(node, 2) \
                            and const_array(b).ndim == 1:
                        bq, bs, bz = self._bias(ed, b, x_scale, ws.const_value.numpy())
                        bdq = ed.value(f"{b.name}_DequantizeLinear_Output", _FLOAT)
                        ed.node("DequantizeLinear", [bq, bs, bz], [bdq], before=node,
                                name=f"{b.name}_DequantizeLinear",
                                axis=0 if bs.const_value.numpy().ndim else None)
                        node.set_input(2, bdq)
            if changed:
                self.quantized.append(node.name)
        return bool(self.quantized)


    def _remove_relus(self, model: Model) -> None:
        """Drop each Relu whose output is quantized with the zero point at the activation
        type's minimum (a calibrated range from 0), as onnxruntime's quantizer does: the
        QuantizeLinear then clamps the negatives to the value that dequantizes to 0, which is
        the Relu's work, so its readers take the Relu's input through the same Q/DQ pair (the
        Relu's range) to the bit. Only where every reader of the output quantizes it (a
        selected node reading it as an activation), the output is no graph output, and the
        Relu is its input's only reader."""
        o = self.options
        if o.activation_type == QuantType.QFLOAT8E4M3FN:
            return
        outputs = {id(v) for v in model.graph.outputs}
        qmin = qrange(o.activation_type, symmetric=o.activation_symmetric)[0]
        for node in list(model.graph.nodes):
            if node.op_type != "Relu" or node.domain not in ("", "ai.onnx") \
                    or node.name in o.nodes_to_exclude:
                continue
            x, y = node.inputs[0], node.outputs[0]
            if x is None or x.producer is None or len(x.uses) != 1 or id(y) in outputs \
                    or y.name not in self.ranges or not y.uses:
                continue
            if int(self._act_params(y.name)[1]) != qmin:
                continue
            if not all(self.options.selects(r) and any(v is y for _, v in _float_inputs(r))
                       for r, _ in y.uses):
                continue
            self.ranges = {**self.ranges, x.name: self.ranges[y.name]}
            for reader, i in list(y.uses):
                reader.set_input(i, x)
            model.graph.remove(node)


class QOperatorPass(_StaticBase):
    """Replaces the selected Conv/MatMul/Gemm/Add/Mul nodes by quantized operators."""

    name = "qoperator_quantize"

    def call(self, model: Model) -> bool:
        ed = Editor(model)
        self._ed = ed
        self._weights: dict = {}
        self._q: dict[str, tuple[Value, Value, Value, np.ndarray]] = {}
        for node in list(model.graph.nodes):
            if not self.options.selects(node) or node.op_type not in QOPERATOR_OPS:
                continue
            out = node.outputs[0]
            if float_type_of(out) != _FLOAT or out.name not in self.ranges:
                continue
            ins = _float_inputs(node)
            if any(const_array(v) is None and v.name not in self.ranges for _, v in ins):
                continue
            if getattr(self, f"_{node.op_type.lower()}")(node):
                self.quantized.append(node.name)
        if any(n.domain == MS for n in model.graph.nodes):
            model.opset_imports.setdefault(MS, 1)
        return bool(self.quantized)

    def _act(self, v: Value, before: Node) -> tuple[Value, Value, Value, np.ndarray]:
        """The quantized form of activation v: a QLinear output already, or a new
        QuantizeLinear."""
        got = self._q.get(v.name)
        if got is None:
            ed = self._ed
            s, z = self._act_params(v.name)
            sv = ed.initializer(f"{v.name}_scale", s)
            zv = ed.initializer(f"{v.name}_zero_point", z)
            q = ed.value(f"{v.name}_quantized", data_type_of(self.options.activation_type))
            ed.node("QuantizeLinear", [v, sv, zv], [q], before=before,
                    name=f"{v.name}_QuantizeLinear")
            got = self._q[v.name] = (q, sv, zv, s)
        return got

    def _output(self, node: Node, make: "callable") -> None:
        """Create the quantized node (``make(yq, ys, yz)``), give float consumers the
        dequantized output under the original value, and drop ``node``."""
        ed = self._ed
        out = node.outputs[0]
        s, z = self._act_params(out.name)
        ys = ed.initializer(f"{out.name}_scale", s)
        yz = ed.initializer(f"{out.name}_zero_point", z)
        yq = ed.value(f"{out.name}_quantized", data_type_of(self.options.activation_type))
        make(yq, ys, yz)
        graph = node.graph
        i = graph.nodes.index(node)
        after = graph.nodes[i + 1] if i + 1 < len(graph.nodes) else None
        graph.remove(node)
        ed.node("DequantizeLinear", [yq, ys, yz], [out], before=after,
                name=f"{out.name}_DequantizeLinear")
        self._q[out.name] = (yq, ys, yz, s)

    def _operand(self, node: Node, i: int, axis: int | None
                 ) -> tuple[Value, Value, Value, np.ndarray]:
        v = node.inputs[i]
        if const_array(v) is not None:
            wq, ws, wz, _ = self._weight(self._ed, v, axis)
            return wq, ws, wz, ws.const_value.numpy()
        return self._act(v, node)

    def _conv(self, node: Node) -> bool:
        if const_array(node.inputs[1]) is None:
            return False
        x = self._act(node.inputs[0], node)
        w = self._operand(node, 1, 0)
        b = None
        if len(node.inputs) > 2 and node.inputs[2] is not None:
            if const_array(node.inputs[2]) is None:
                return False
            b = self._bias(self._ed, node.inputs[2], x[3], w[3])[0]
        attrs = dict(node.attributes)
        self._output(node, lambda yq, ys, yz: self._ed.node(
            "QLinearConv", [x[0], x[1], x[2], w[0], w[1], w[2], ys, yz, b], [yq], before=node,
            name=f"{node.name}_quant", **attrs))
        return True

    def _matmul(self, node: Node) -> bool:
        a = self._operand(node, 0, None)
        b = self._operand(node, 1, 1)
        self._output(node, lambda yq, ys, yz: self._ed.node(
            "QLinearMatMul", [a[0], a[1], a[2], b[0], b[1], b[2], ys, yz], [yq], before=node,
            name=f"{node.name}_quant"))
        return True

    def _gemm(self, node: Node) -> bool:
        beta = node.attributes.get("beta")
        if beta is not None and beta.value != 1.0:
            return False
        trans_b = node.attributes.get("transB")
        a = self._operand(node, 0, None)
        b = self._operand(node, 1, 0 if (trans_b is not None and trans_b.value) else 1)
        c = None
        if len(node.inputs) > 2 and node.inputs[2] is not None:
            if const_array(node.inputs[2]) is None or const_array(node.inputs[2]).ndim != 1:
                return False
            alpha = node.attributes.get("alpha")
            al = np.float32(alpha.value if alpha is not None else 1.0)
            c = self._bias(self._ed, node.inputs[2], a[3] * al, b[3])[0]
        attrs = {k: v for k, v in node.attributes.items() if k in ("alpha", "transA", "transB")}
        self._output(node, lambda yq, ys, yz: self._ed.node(
            "QGemm", [a[0], a[1], a[2], b[0], b[1], b[2], c, ys, yz], [yq], before=node,
            domain=MS, name=f"{node.name}_quant", **attrs))
        return True

    def _binary(self, node: Node, op: str) -> bool:
        a = self._operand(node, 0, None)
        b = self._operand(node, 1, None)
        if a[1].const_value.numpy().ndim or b[1].const_value.numpy().ndim:
            return False  # QLinearAdd/QLinearMul take per-tensor parameters only
        self._output(node, lambda yq, ys, yz: self._ed.node(
            op, [a[0], a[1], a[2], b[0], b[1], b[2], ys, yz], [yq], before=node, domain=MS,
            name=f"{node.name}_quant"))
        return True

    def _add(self, node: Node) -> bool:
        return self._binary(node, "QLinearAdd")

    def _mul(self, node: Node) -> bool:
        return self._binary(node, "QLinearMul")
