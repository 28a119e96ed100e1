"""Dynamic quantization as an optimizer pass: weights are quantized offline, activations at run
time from their own range (DynamicQuantizeLinear), and the products computed in integers.

- ``MatMul(A, W)`` -> ``DynamicQuantizeLinear(A)``, ``MatMulInteger(Aq, Wq, Azp, Wzp)``,
  ``Cast`` to float, ``Mul`` by ``A_scale * W_scale``: ``A @ W ~= (Aq - Azp)(Wq - Wzp) sA sW``.
- ``Conv(X, W, B)`` -> the same with ``ConvInteger``, then ``Add`` of the bias.
- ``Gemm(A, W, C)`` with a constant W and no transposed A -> the MatMul form with ``op(W)``
  stored transposed as needed, then ``Add`` of ``beta * C`` (``alpha`` joins the scale).
- ``Gather(E, idx)`` with a constant table -> ``DequantizeLinear(Gather(Eq, idx))``: only the
  rows read are dequantized.
- com.microsoft ``Attention(X, W, bias, mask_index, past)`` with a constant W ->
  ``QAttention(Xq, Wq, bias, X_scale, W_scale, mask_index, Xzp, Wzp, past)``, as onnxruntime's
  quantizer writes it.
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import DataType, Model, Node, Value
from pyonnx.optimizer._core import Pass
from pyonnx.quantization._edit import Editor, const_array, float_type_of
from pyonnx.quantization._options import QuantOptions
from pyonnx.quantization._params import quantize_array, weight_params

__all__ = ["DynamicQuantizePass", "DYNAMIC_OPS"]

DYNAMIC_OPS = ("MatMul", "Gemm", "Conv", "Gather", "Attention")


class DynamicQuantizePass(Pass):
    """Rewrites the selected MatMul, Conv and Gather nodes of the main graph (see the module
    docstring); ``quantized`` lists the names of the nodes it rewrote."""

    name = "dynamic_quantize"

    def __init__(self, options: QuantOptions) -> None:
        self.options = options
        self.quantized: list[str] = []

    def call(self, model: Model) -> bool:
        ed = Editor(model)
        self._ed = ed
        self._weights: dict[tuple[str, int | None], tuple[Value, Value, Value]] = {}
        self._dyn: dict[int, tuple[Value, Value, Value]] = {}
        for node in list(model.graph.nodes):
            if not self.options.selects(node):
                continue
            rewrite = getattr(self, f"_{node.op_type.lower()}")
            if rewrite(node):
                self.quantized.append(node.name)
        return bool(self.quantized)

    # --- pieces -------------------------------------------------------------------------
    def _weight(self, v: Value, axis: int | None) -> tuple[Value, Value, Value]:
        """The quantized form of constant ``v`` (values, scale, zero point), made once."""
        key = (v.name, axis)
        if key not in self._weights:
            o = self.options
            p = weight_params(const_array(v), o.weight_type, symmetric=o.weight_symmetric,
                              reduce_range=o.reduce_range, axis=axis)
            q = quantize_array(const_array(v), p.scale, p.zero_point, o.weight_type, p.axis)
            self._weights[key] = (self._ed.initializer(f"{v.name}_quantized", q),
                                  self._ed.initializer(f"{v.name}_scale", p.scale),
                                  self._ed.initializer(f"{v.name}_zero_point", p.zero_point))
        return self._weights[key]

    def _dynamic(self, v: Value, before: Node) -> tuple[Value, Value, Value]:
        """``DynamicQuantizeLinear(v)``, shared by every consumer of v."""
        got = self._dyn.get(id(v))
        if got is None:
            ed = self._ed
            q = ed.value(f"{v.name}_quantized", DataType.UINT8)
            s = ed.value(f"{v.name}_scale", DataType.FLOAT, ())
            z = ed.value(f"{v.name}_zero_point", DataType.UINT8, ())
            ed.node("DynamicQuantizeLinear", [v], [q, s, z], before=before,
                    name=f"{v.name}_QuantizeLinear")
            got = self._dyn[id(v)] = (q, s, z)
        return got

    def _rescale(self, node: Node, acc: Value, a_scale: Value, w_scale: Value,
                 out: Value, bias: Value | None = None) -> None:
        """out = float(acc) * (a_scale * w_scale) [+ bias], replacing ``node``."""
        ed = self._ed
        f = ed.value(f"{out.name}_cast", DataType.FLOAT)
        ed.node("Cast", [acc], [f], before=node, to=int(DataType.FLOAT),
                name=f"{node.name}_cast")
        s = ed.value(f"{out.name}_scale", DataType.FLOAT)
        ed.node("Mul", [a_scale, w_scale], [s], before=node, name=f"{node.name}_scales_mul")
        # the new nodes go before the old one, which is then dropped (its output value now
        # has the last new node as producer)
        if bias is None:
            ed.node("Mul", [f, s], [out], name=f"{node.name}_output_mul", before=node)
        else:
            y = ed.value(f"{out.name}_nobias", DataType.FLOAT)
            ed.node("Mul", [f, s], [y], name=f"{node.name}_output_mul", before=node)
            ed.node("Add", [y, bias], [out], name=f"{node.name}_bias_add", before=node)
        node.graph.remove(node)

    # --- rewrites ------------------------------------------------------------------------
    def _matmul(self, node: Node) -> bool:
        a, b = node.inputs[0], node.inputs[1]
        if float_type_of(a) != DataType.FLOAT or float_type_of(b) != DataType.FLOAT:
            return False
        w = const_array(b)
        ed = self._ed
        if w is not None and w.ndim == 2:
            axis = 1 if self.options.per_channel else None
            bq, bs, bz = self._weight(b, axis)
        elif w is None and _transposed_const(b) is not None:
            # B = Transpose(W) of a constant (a tied embedding read as the LM head): transpose
            # the quantized W at run time instead of storing a second, transposed copy
            src = _transposed_const(b)
            wq, bs, bz = self._weight(src, 0 if self.options.per_channel else None)
            bq = ed.value(f"{b.name}_quantized", wq.const_value.data_type)
            ed.node("Transpose", [wq], [bq], before=node, name=f"{node.name}_weight_transpose",
                    perm=[1, 0])
        elif w is None and not self.options.matmul_const_b_only:
            bq, bs, bz = self._dynamic(b, node)
        else:
            return False
        aq, as_, az = self._dynamic(a, node)
        acc = ed.value(f"{node.outputs[0].name}_int32", DataType.INT32)
        ed.node("MatMulInteger", [aq, bq, az, bz], [acc], before=node,
                name=f"{node.name}_quant")
        self._rescale(node, acc, as_, bs, node.outputs[0])
        return True

    def _gemm(self, node: Node) -> bool:
        a, b = node.inputs[0], node.inputs[1]
        attr = {k: a_.value for k, a_ in node.attributes.items()}
        w = const_array(b)
        if attr.get("transA", 0) or w is None or w.dtype != np.float32 or \
                float_type_of(a) != DataType.FLOAT:
            return False
        ed = self._ed
        if attr.get("transB", 0):
            b = ed.initializer(f"{b.name}_transposed", np.ascontiguousarray(w.T))
        alpha, beta = float(attr.get("alpha", 1.0)), float(attr.get("beta", 1.0))
        bq, bs, bz = self._weight(b, 1 if self.options.per_channel else None)
        if alpha != 1.0:
            bs = ed.initializer(f"{bs.name}_alpha", bs.const_value.numpy() * np.float32(alpha))
        c = node.inputs[2] if len(node.inputs) > 2 else None
        if c is not None and beta != 1.0:
            carr = const_array(c)
            if carr is None:
                return False
            c = ed.initializer(f"{c.name}_beta", (carr * np.float32(beta)).astype(carr.dtype))
        aq, as_, az = self._dynamic(a, node)
        acc = ed.value(f"{node.outputs[0].name}_int32", DataType.INT32)
        ed.node("MatMulInteger", [aq, bq, az, bz], [acc], before=node,
                name=f"{node.name}_quant")
        self._rescale(node, acc, as_, bs, node.outputs[0], c)
        return True

    def _conv(self, node: Node) -> bool:
        x, w_v = node.inputs[0], node.inputs[1]
        w = const_array(w_v)
        if float_type_of(x) != DataType.FLOAT or w is None or w.dtype != np.float32:
            return False
        bias = node.inputs[2] if len(node.inputs) > 2 else None
        per_channel = self.options.per_channel
        wq, ws, wz = self._weight(w_v, 0 if per_channel else None)
        ed = self._ed
        if per_channel:
            # ConvInteger takes a per-channel zero point; the scale multiplies the output's
            # channel axis, so it is reshaped to [M, 1, ...] to broadcast over the positions
            scale = ws.const_value.numpy().reshape((-1,) + (1,) * (w.ndim - 2))
            ws = ed.initializer(f"{w_v.name}_scale_reshaped", scale)
            zp = wz.const_value.numpy()
            if np.all(zp == zp.reshape(-1)[0]):
                wz = ed.initializer(f"{w_v.name}_zero_point_scalar", zp.reshape(-1)[0])
        xq, xs, xz = self._dynamic(x, node)
        acc = ed.value(f"{node.outputs[0].name}_int32", DataType.INT32)
        attrs = {k: a for k, a in node.attributes.items()}
        ed.node("ConvInteger", [xq, wq, xz, wz], [acc], before=node, name=f"{node.name}_quant",
                **attrs)
        b = None
        if bias is not None:
            barr = const_array(bias)
            if barr is not None:
                b = ed.initializer(f"{bias.name}_reshaped",
                                   barr.reshape((-1,) + (1,) * (w.ndim - 2)))
            else:
                shape = ed.initializer(f"{bias.name}_shape",
                                       np.array((-1,) + (1,) * (w.ndim - 2), np.int64))
                b = ed.value(f"{bias.name}_reshaped", DataType.FLOAT)
                ed.node("Reshape", [bias, shape], [b], before=node)
        self._rescale(node, acc, xs, ws, node.outputs[0], b)
        return True

    def _gather(self, node: Node) -> bool:
        data = node.inputs[0]
        table = const_array(data)
        if table is None or table.dtype != np.float32:
            return False
        q, s, z = self._weight(data, None)
        ed = self._ed
        out = node.outputs[0]
        g = ed.value(f"{out.name}_quantized", q.const_value.data_type)
        attrs = {k: a for k, a in node.attributes.items()}
        ed.node("Gather", [q, node.inputs[1]], [g], before=node, name=f"{node.name}_quant",
                **attrs)
        ed.node("DequantizeLinear", [g, s, z], [out], name=f"{node.name}_dequantize",
                before=node)
        node.graph.remove(node)
        return True

    #: Attention attributes that QAttention has too (the others have no QAttention form)
    _QATTENTION_ATTRS = ("num_heads", "unidirectional", "scale", "mask_filter_value")

    def _attention(self, node: Node) -> bool:
        """com.microsoft Attention with a constant 2-D weight -> QAttention. Left in float:
        the standard (ai.onnx) Attention, and what QAttention cannot express: separate Q/K/V
        sizes (qkv_hidden_sizes), a rotary embedding, an attention_bias input, a shared
        past/present buffer."""
        if node.domain != "com.microsoft":
            return False
        attrs = {k: a.value for k, a in node.attributes.items()}
        if attrs.get("qkv_hidden_sizes") or attrs.get("do_rotary", 0) or \
                attrs.get("past_present_share_buffer", 0):
            return False
        ins = list(node.inputs) + [None] * (7 - len(node.inputs))
        x, w_v, bias, mask, past = ins[:5]
        if any(v is not None for v in ins[5:]):
            return False
        w = const_array(w_v)
        if float_type_of(x) != DataType.FLOAT or w is None or w.dtype != np.float32 or \
                w.ndim != 2:
            return False
        ed = self._ed
        wq, ws, wz = self._weight(w_v, 1 if self.options.per_channel else None)
        if bias is None:   # optional in Attention, required in QAttention
            bias = ed.initializer(f"{w_v.name}_zero_bias", np.zeros(w.shape[1], np.float32))
        xq, xs, xz = self._dynamic(x, node)
        ed.node("QAttention", [xq, wq, bias, xs, ws, mask, xz, wz, past], list(node.outputs),
                before=node, domain="com.microsoft", name=f"{node.name}_quant",
                **{k: node.attributes[k] for k in self._QATTENTION_ATTRS if k in node.attributes})
        node.graph.remove(node)
        return True


def _transposed_const(v: Value) -> Value | None:
    """The constant 2-D float initializer W when ``v = Transpose(W)`` swaps its two axes."""
    n = v.producer
    if n is None or n.op_type != "Transpose" or n.domain not in ("", "ai.onnx"):
        return None
    src = n.inputs[0]
    w = const_array(src)
    perm = n.attributes.get("perm")
    if w is None or w.ndim != 2 or w.dtype != np.float32 or \
            (perm is not None and list(perm.value) != [1, 0]):
        return None
    return src
