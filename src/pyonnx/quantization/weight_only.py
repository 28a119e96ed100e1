"""Weight-only quantization of MatMul/Gemm weights to 4 or 8 bits in blocks along K.

Activations stay float; each weight is stored as small integers with one scale (and, when
asymmetric, one zero point) per ``block_size`` consecutive values along the reduction axis K.

Two forms of output:

- ``"qdq"`` (default, standard ONNX): the weight is an INT4/UINT4 (or 8-bit) initializer read
  through a blocked ``DequantizeLinear`` (opset 21+; the model is converted when older);
  the float operator stays.
- ``"matmulnbits"``: com.microsoft ``MatMulNBits``, the weight packed two 4-bit values a byte
  in onnxruntime's layout (N, K blocks, block bytes), low nibble first.

A weight read through ``Transpose`` (a tied embedding used as the LM head) is quantized in its
stored orientation: the QDQ form dequantizes it once for every reader, the MatMulNBits form
takes it as is (MatMulNBits's B is already N x K).

``Gather`` nodes on axis 0 of a constant 2-D float table (token embeddings) are quantized too
when ``op_types`` names ``Gather`` -- by default in the MatMulNBits form, as onnxruntime's
quantizer does when its ``op_types_to_quantize`` includes Gather: each becomes com.microsoft
``GatherBlockQuantized`` reading the table in blocks along its rows, packed as MatMulNBits packs
(uint8, low bits first; symmetric blocks leave out the zero points, whose default 2^(bits-1) is
the symmetric one), so that only the gathered rows are ever dequantized. Tables under
:data:`GATHER_MIN_BYTES` stay float unless ``nodes_to_quantize`` names their Gather: a position
embedding saves little memory, while its 4-bit error reaches every position's input (on
gpt2_small, quantizing its 256 KiB position table lowers the GPTQ model's logits cosine from
0.9905 to 0.9889, for 0.2 MiB). A tied embedding keeps one quantization for both readers: the
Gather's table and the LM head's MatMulNBits hold the same values (as two initializers, since
the two operators lay them out differently). In the QDQ form a listed Gather reads the table
through a blocked DequantizeLinear, shared with the table's other readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pyonnx.errors import InvalidArgument
from pyonnx.ir import DataType, Model, Node, Value
from pyonnx.optimizer._core import Pass
from pyonnx.quantization._edit import (Editor, check_output_path, const_array,
                                       drop_unused_initializers, ensure_ir_version,
                                       ensure_opset, float_type_of, load_input)
from pyonnx.quantization._types import QuantFormat

__all__ = ["quantize_weight_only", "quantize_weight_only_model", "WeightOnlyPass",
           "MatMulNBitsQuantizer", "block_quantize", "gptq_quantize", "collect_hessians"]

MS = "com.microsoft"
FORMS = ("qdq", "matmulnbits")
#: The operators quantized by default in each form (``op_types=None``).
DEFAULT_OP_TYPES = {"qdq": ("MatMul", "Gemm"), "matmulnbits": ("MatMul", "Gemm", "Gather")}
#: A Gather's float table smaller than this stays float unless its node is named in
#: ``nodes_to_quantize`` (module docstring).
GATHER_MIN_BYTES = 1 << 20


def _block_round(w: np.ndarray, lo: np.ndarray, hi: np.ndarray, qmax: int, symmetric: bool
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantize blocks ``w`` (N, KB, B) to [0, qmax] over the ranges [lo, hi] of each block."""
    if symmetric:
        half = (qmax + 1) // 2
        # the largest magnitude maps to -half (the end with one more level), whatever its sign
        scale = (np.maximum(-lo, hi) / half).astype(np.float32)
        scale[scale == 0] = 1.0
        zp = np.full(scale.shape, half, np.float32)
    else:
        scale = ((hi - lo) / qmax).astype(np.float32)
        scale[scale == 0] = 1.0
        zp = np.clip(np.rint(-lo / scale), 0, qmax).astype(np.float32)
    q = np.clip(np.rint(w / scale[..., None]) + zp[..., None], 0, qmax)
    return q, scale, zp


def block_quantize(w_nk: np.ndarray, bits: int, block_size: int, symmetric: bool,
                   search: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantize ``w_nk`` (N, K) in blocks of ``block_size`` along K.

    Returns unsigned values ``q`` (N, K) in [0, 2^bits), ``scales`` and ``zero_points``
    (N, ceil(K / block_size)) with ``w ~= (q - zero_point) * scale``. Symmetric blocks have
    zero point 2^(bits-1) (so the signed value is ``q - 2^(bits-1)``).

    With ``search`` each block's range is also tried shrunk (by factors down to 0.6) and the
    range with the least squared reconstruction error kept: clipping a few outliers buys
    finer steps for every other value, which at 16 levels lowers the error markedly.
    """
    n, k = w_nk.shape
    kb = -(-k // block_size)
    pad = kb * block_size - k
    w = np.pad(w_nk.astype(np.float32), ((0, 0), (0, pad))).reshape(n, kb, block_size)
    qmax = (1 << bits) - 1
    lo = np.minimum(w.min(axis=2), 0.0)
    hi = np.maximum(w.max(axis=2), 0.0)
    best = None
    for f in (np.linspace(1.0, 0.6, 9) if search else (1.0,)):
        q, scale, zp = _block_round(w, lo * f, hi * f, qmax, symmetric)
        err = (((q - zp[..., None]) * scale[..., None] - w) ** 2).sum(axis=2)
        if best is None:
            best = [q, scale, zp, err]
            continue
        better = err < best[3]
        best[0] = np.where(better[..., None], q, best[0])
        best[1] = np.where(better, scale, best[1])
        best[2] = np.where(better, zp, best[2])
        best[3] = np.minimum(err, best[3])
    q, scale, zp = best[0], best[1], best[2]
    q = q.reshape(n, kb * block_size)[:, :k].astype(np.uint8)
    return q, scale.astype(np.float32), zp.astype(np.uint8)


def gptq_quantize(w_nk: np.ndarray, hessian: np.ndarray, bits: int, block_size: int,
                  symmetric: bool, damp: float = 0.01
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`block_quantize` with GPTQ's error feedback (Frantar et al., 2022).

    ``hessian`` is ``X^T X`` (K x K) of the layer's inputs X over calibration data. The rows of
    W (K x N) are quantized in order; the rounding error of each row is spread over the rows
    not yet quantized, weighted by the inverse Hessian, so that ``X @ W_quantized`` stays close
    to ``X @ W`` rather than each weight close to itself. Each block's scale and zero point
    come from the block's weights as they stand when the block is reached.
    """
    w = w_nk.T.astype(np.float64).copy()          # (K, N)
    k, n = w.shape
    h = np.array(hessian, dtype=np.float64, copy=True)
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[dead, :] = 0.0
    h += damp * float(np.mean(np.diag(h))) * np.eye(k)
    # upper Cholesky factor of H^-1: row i holds how row i's error moves the later rows
    hinv = np.linalg.cholesky(np.linalg.inv(h)).T
    qmax = (1 << bits) - 1
    kb = -(-k // block_size)
    q = np.zeros((k, n), np.uint8)
    scales = np.zeros((n, kb), np.float32)
    zps = np.zeros((n, kb), np.uint8)
    for b in range(kb):
        s0, s1 = b * block_size, min(k, (b + 1) * block_size)
        _, sc, z = block_quantize(w[s0:s1].T.astype(np.float32), bits, s1 - s0, symmetric)
        scales[:, b], zps[:, b] = sc[:, 0], z[:, 0]
        sc64, z64 = sc[:, 0].astype(np.float64), z[:, 0].astype(np.float64)
        for r in range(s0, s1):
            qr = np.clip(np.rint(w[r] / sc64) + z64, 0, qmax)
            err = (w[r] - (qr - z64) * sc64) / hinv[r, r]
            w[r + 1:] -= np.outer(hinv[r, r + 1:], err)
            q[r] = qr.astype(np.uint8)
    return q.T.copy(), scales, zps


def collect_hessians(model: Model, names: Sequence[str], feeds: Sequence[dict[str, np.ndarray]]
                     ) -> dict[str, np.ndarray]:
    """``X^T X`` (float64, K x K) of each named activation X (rows: every position of its
    leading dims), accumulated over ``feeds`` one at a time."""
    from pyonnx.quantization.calibrate import _augmented, _check_feed
    from pyonnx.runtime import InferenceSession

    sess = InferenceSession(_augmented(model, list(names)))
    out_names = [o.name for o in sess.get_outputs()]
    hs: dict[str, np.ndarray] = {}
    for i, feed in enumerate(feeds):
        vals = dict(zip(out_names, sess.run(out_names, _check_feed(model, feed, i))))
        for name in names:
            x = np.asarray(vals[name], np.float64)
            x = x.reshape(-1, x.shape[-1])
            hs[name] = hs.get(name, 0.0) + x.T @ x
    return hs


def _pack(vals: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned ``bits``-bit values along the last axis, low bits first."""
    if bits == 8:
        return vals.astype(np.uint8)
    per = 8 // bits
    pad = (-vals.shape[-1]) % per
    v = np.pad(vals.astype(np.uint8), [(0, 0)] * (vals.ndim - 1) + [(0, pad)])
    v = v.reshape(v.shape[:-1] + (-1, per))
    out = np.zeros(v.shape[:-1], np.uint8)
    for i in range(per):
        out |= (v[..., i] << (i * bits)).astype(np.uint8)
    return out


class WeightOnlyPass(Pass):
    """Rewrites the weights of the selected MatMul/Gemm nodes (see the module docstring)."""

    name = "weight_only_quantize"

    def __init__(self, *, bits: int = 4, block_size: int = 32, symmetric: bool = True,
                 form: str = "qdq", op_types: Sequence[str] | None = None,
                 nodes_to_exclude: Sequence[str] = (), nodes_to_quantize: Sequence[str] | None
                 = None, accuracy_level: int | None = None,
                 hessians: dict[str, np.ndarray] | None = None) -> None:
        if bits not in (4, 8):
            raise InvalidArgument(f"weight-only quantization takes bits 4 or 8, got {bits}")
        if block_size < 16 or block_size & (block_size - 1):
            raise InvalidArgument(f"block_size must be a power of two >= 16, got {block_size}")
        if form not in FORMS:
            raise InvalidArgument(f"form must be one of {', '.join(FORMS)}, got {form!r}")
        self.bits, self.block_size, self.symmetric, self.form = bits, block_size, symmetric, form
        self.op_types = set(DEFAULT_OP_TYPES[form] if op_types is None else op_types)
        unknown = self.op_types - {"MatMul", "Gemm", "Gather"}
        if unknown:
            raise InvalidArgument(f"weight-only quantization handles MatMul, Gemm and Gather, not "
                                  f"{', '.join(sorted(unknown))}")
        self.exclude = set(nodes_to_exclude)
        self.include = set(nodes_to_quantize) if nodes_to_quantize else None
        self.accuracy_level = accuracy_level
        self.hessians = hessians or {}
        self.quantized: list[str] = []

    def _selected(self, node: Node) -> bool:
        return (node.domain in ("", "ai.onnx") and node.op_type in self.op_types
                and node.name not in self.exclude
                and (self.include is None or node.name in self.include))

    def call(self, model: Model) -> bool:
        self._ed = Editor(model)
        self._dq: dict[tuple[str, int], Value] = {}
        # the blocks of each weight stored N x K as its MatMul/Gemm quantized them: a Gather
        # of the same table (a tied embedding) reads the same values
        self._blocks: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        nodes = list(model.graph.nodes)
        # Gathers last, so that a tied table takes its LM head's (possibly GPTQ) blocks
        for node in [n for n in nodes if n.op_type != "Gather"] + \
                [n for n in nodes if n.op_type == "Gather"]:
            if self._selected(node) and float_type_of(node.inputs[0]) == DataType.FLOAT:
                if self._rewrite(node):
                    self.quantized.append(node.name)
        if self.form == "matmulnbits" and self.quantized:
            model.opset_imports.setdefault(MS, 1)
        return bool(self.quantized)

    def _weight_of(self, node: Node) -> tuple[Value, np.ndarray, bool] | None:
        """(stored weight value, its data, whether it is stored N x K) or None."""
        if node.op_type not in ("MatMul", "Gemm"):
            return None
        attrs = {k: a.value for k, a in node.attributes.items()}
        b = node.inputs[1]
        if node.op_type == "Gemm":
            if attrs.get("transA", 0):
                return None
            w = const_array(b)
            if w is None or w.ndim != 2 or w.dtype != np.float32:
                return None
            return b, w, bool(attrs.get("transB", 0))
        w = const_array(b)
        if w is not None:
            return (b, w, False) if w.ndim == 2 and w.dtype == np.float32 else None
        t = b.producer
        if t is not None and t.op_type == "Transpose" and t.domain in ("", "ai.onnx"):
            src = t.inputs[0]
            w = const_array(src)
            perm = t.attributes.get("perm")
            if w is not None and w.ndim == 2 and w.dtype == np.float32 and \
                    (perm is None or list(perm.value) == [1, 0]):
                return src, w, True
        return None

    def _rewrite(self, node: Node) -> bool:
        if node.op_type == "Gather":
            return self._gather(node)
        found = self._weight_of(node)
        if found is None:
            return False
        v, w, stored_nk = found
        if self.form == "qdq":
            return self._qdq(node, v, w, stored_nk)
        return self._nbits(node, v, w, stored_nk)

    def _block_quantize(self, node: Node, w_nk: np.ndarray, v: Value | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Blocks of ``w_nk`` (GPTQ where a MatMul/Gemm input has a Hessian); ``v``: the
        weight when stored N x K, whose blocks a Gather of it then shares."""
        if node.op_type == "Gather":
            if v is not None and v.name in self._blocks:
                return self._blocks[v.name]
            return block_quantize(w_nk, self.bits, self.block_size, self.symmetric)
        h = self.hessians.get(node.inputs[0].name) if node.inputs[0] is not None else None
        if h is not None and h.shape == (w_nk.shape[1],) * 2:
            blocks = gptq_quantize(w_nk, h, self.bits, self.block_size, self.symmetric)
        else:
            blocks = block_quantize(w_nk, self.bits, self.block_size, self.symmetric)
        if v is not None:
            self._blocks.setdefault(v.name, blocks)
        return blocks

    def _gather(self, node: Node) -> bool:
        """Gather(table, indices) on axis 0 of a constant 2-D float table -> the table's rows in
        blocks along them: GatherBlockQuantized, or (QDQ form) a blocked DequantizeLinear."""
        v = node.inputs[0]
        w = const_array(v)
        axis = node.attributes.get("axis")
        if w is None or w.ndim != 2 or w.dtype != np.float32 or \
                (axis is not None and int(axis.value) not in (0, -2)):
            return False
        if w.nbytes < GATHER_MIN_BYTES and (self.include is None or node.name not in self.include):
            return False
        if self.form == "qdq":
            return self._qdq(node, v, w, stored_nk=True)   # shares the table's DequantizeLinear
        per_byte = 8 // self.bits
        if w.shape[1] % per_byte:   # the packed last axis must hold whole rows
            return False
        q, scale, zp = self._block_quantize(node, w, v)
        ed = self._ed
        dv = ed.initializer(f"{v.name}_gather_Q{self.bits}", _pack(q, self.bits))
        sv = ed.initializer(f"{v.name}_gather_scales", scale)
        zv = None if self.symmetric else ed.initializer(f"{v.name}_gather_zero_points",
                                                        _pack(zp, self.bits))
        ed.node("GatherBlockQuantized",
                [dv, node.inputs[1], sv] + ([zv] if zv is not None else []), [node.outputs[0]],
                before=node, domain=MS, name=f"{node.name}_Q{self.bits}", gather_axis=0,
                quantize_axis=1, block_size=self.block_size, bits=self.bits)
        node.graph.remove(node)
        return True

    def _qdq(self, node: Node, v: Value, w: np.ndarray, stored_nk: bool) -> bool:
        ed = self._ed
        axis = 1 if stored_nk else 0           # the K axis of the stored array
        key = (v.name, axis)
        dq = self._dq.get(key)
        if dq is None:
            w_nk = w if stored_nk else w.T
            q, scale, zp = self._block_quantize(node, w_nk)
            half = 1 << (self.bits - 1)
            if self.symmetric:
                dt = {4: DataType.INT4, 8: DataType.INT8}[self.bits]
                vals = (q.astype(np.int16) - half).astype(dt.numpy)
                zps = None
            else:
                dt = {4: DataType.UINT4, 8: DataType.UINT8}[self.bits]
                vals = q.astype(dt.numpy)
                zps = zp.astype(dt.numpy)
            if not stored_nk:   # back to the stored K x N orientation
                vals, scale = vals.T, scale.T
                zps = None if zps is None else zps.T
            qv = ed.initializer(f"{v.name}_quantized", np.ascontiguousarray(vals))
            sv = ed.initializer(f"{v.name}_scale", np.ascontiguousarray(scale))
            zv = None if zps is None else ed.initializer(f"{v.name}_zero_point",
                                                         np.ascontiguousarray(zps))
            dq = ed.value(f"{v.name}_DequantizeLinear_Output", DataType.FLOAT, w.shape)
            first = min((u for u, _ in v.uses if u.graph is node.graph),
                        key=node.graph.nodes.index, default=node)
            ed.node("DequantizeLinear", [qv, sv, zv], [dq], before=first,
                    name=f"{v.name}_DequantizeLinear", axis=axis, block_size=self.block_size)
            # every reader of the weight (a tied embedding's Gather too) reads it dequantized
            for u, i in list(v.uses):
                if u is not dq.producer:
                    u.set_input(i, dq)
            self._dq[key] = dq
        return True

    def _nbits(self, node: Node, v: Value, w: np.ndarray, stored_nk: bool) -> bool:
        ed = self._ed
        attrs = {k: a.value for k, a in node.attributes.items()}
        bias = None
        if node.op_type == "Gemm" and len(node.inputs) > 2 and node.inputs[2] is not None:
            c = const_array(node.inputs[2])
            if c is None or c.ndim != 1 or attrs.get("alpha", 1.0) != 1.0 or \
                    attrs.get("beta", 1.0) != 1.0:
                return False
            bias = node.inputs[2]
        elif node.op_type == "Gemm" and attrs.get("alpha", 1.0) != 1.0:
            return False
        w_nk = w if stored_nk else w.T
        n, k = w_nk.shape
        q, scale, zp = self._block_quantize(node, w_nk, v if stored_nk else None)
        kb = scale.shape[1]
        blob = self.block_size * self.bits // 8
        qpad = np.pad(q, ((0, 0), (0, kb * self.block_size - k)))
        packed = _pack(qpad.reshape(n, kb, self.block_size), self.bits)
        assert packed.shape == (n, kb, blob)
        bv = ed.initializer(f"{v.name}_Q{self.bits}", packed)
        sv = ed.initializer(f"{v.name}_scales", scale.reshape(-1))
        zv = None if self.symmetric else ed.initializer(f"{v.name}_zero_points",
                                                        _pack(zp, self.bits).reshape(-1))
        extra = {} if self.accuracy_level is None else {"accuracy_level": self.accuracy_level}
        ed.node("MatMulNBits", [node.inputs[0], bv, sv, zv, None, bias], [node.outputs[0]],
                before=node, domain=MS, name=f"{node.name}_Q{self.bits}", K=k, N=n,
                bits=self.bits, block_size=self.block_size, **extra)
        node.graph.remove(node)
        return True


def quantize_weight_only_model(model: Any, *, bits: int = 4, block_size: int = 32,
                               symmetric: bool = True, form: str = "qdq",
                               op_types: Sequence[str] | None = None,
                               nodes_to_exclude: Sequence[str] = (),
                               nodes_to_quantize: Sequence[str] | None = None,
                               accuracy_level: int | None = None, algorithm: str = "rtn",
                               calibration_feeds: Sequence[dict[str, np.ndarray]] | None = None
                               ) -> Model:
    """A copy of ``model`` with 4- or 8-bit block-quantized MatMul/Gemm weights (module
    docstring); the caller's model is not modified.

    ``op_types``: the operators whose constant weights are quantized, from MatMul, Gemm and
    Gather (embedding tables); by default MatMul and Gemm, and Gather too in the
    ``"matmulnbits"`` form (com.microsoft GatherBlockQuantized).

    ``algorithm``: ``"rtn"`` rounds each block to its nearest levels (with a range search);
    ``"gptq"`` runs ``calibration_feeds`` (feed dicts) through the float model to learn each
    layer's input statistics and lets later rows absorb each row's rounding error
    (:func:`gptq_quantize`): slower, and closer outputs.
    """
    if algorithm not in ("rtn", "gptq"):
        raise InvalidArgument(f"algorithm must be 'rtn' or 'gptq', got {algorithm!r}")
    if algorithm == "gptq" and not calibration_feeds:
        raise InvalidArgument("algorithm='gptq' needs calibration_feeds (a list of feed dicts)")
    m = load_input(model)
    if form == "qdq":
        m = ensure_opset(m, 21)   # blocked DequantizeLinear and 4-bit types
    from pyonnx.shape_inference import infer_shapes

    m = infer_shapes(m)
    hessians = None
    if algorithm == "gptq":
        probe = WeightOnlyPass(bits=bits, block_size=block_size, symmetric=symmetric, form=form,
                               op_types=op_types, nodes_to_exclude=nodes_to_exclude,
                               nodes_to_quantize=nodes_to_quantize)
        names = sorted({n.inputs[0].name for n in m.graph.nodes if probe._selected(n)
                        and n.inputs[0] is not None and probe._weight_of(n) is not None})
        hessians = collect_hessians(m, names, list(calibration_feeds))
    p = WeightOnlyPass(bits=bits, block_size=block_size, symmetric=symmetric, form=form,
                       op_types=op_types, nodes_to_exclude=nodes_to_exclude,
                       nodes_to_quantize=nodes_to_quantize, accuracy_level=accuracy_level,
                       hessians=hessians)
    p(m)
    if not p.quantized:
        import logging

        logging.getLogger("pyonnx.quantization").warning(
            "weight-only quantization: no MatMul/Gemm with a constant 2-D float weight; the "
            "model is unchanged")
        return m
    from pyonnx.optimizer.passes import EliminateDeadCode

    EliminateDeadCode()(m)
    drop_unused_initializers(m)
    ensure_ir_version(m, 10 if form == "qdq" else 7)
    return m


def quantize_weight_only(model_input: Any, model_output: Any, **options: Any) -> None:
    """:func:`quantize_weight_only_model`, read from and written to files."""
    out = check_output_path(model_output)
    m = quantize_weight_only_model(model_input, **options)
    from pyonnx.io import save

    save(m, out)


class _ModelHandle:
    """What onnxruntime's ``ONNXModel`` offers the callers of the weight-only quantizer."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def save_model_to_file(self, output_path: str, use_external_data_format: bool = False
                           ) -> None:
        from pyonnx.io import save

        save(self.model, check_output_path(output_path),
             external_data=bool(use_external_data_format))


class MatMulNBitsQuantizer:
    """onnxruntime's ``MatMulNBitsQuantizer``: ``process()`` quantizes, ``model`` holds the
    result (``model.save_model_to_file(path)``). ``quant_format`` QOperator writes
    MatMulNBits, QDQ the standard blocked DequantizeLinear form."""

    def __init__(self, model: Any, bits: int = 4, block_size: int = 128,
                 is_symmetric: bool = False, accuracy_level: int | None = None,
                 nodes_to_exclude: Sequence[str] | None = None,
                 nodes_to_include: Sequence[str] | None = None,
                 quant_format: QuantFormat = QuantFormat.QOperator,
                 op_types_to_quantize: Sequence[str] | None = None, **kwargs: Any) -> None:
        if kwargs:
            raise InvalidArgument(f"MatMulNBitsQuantizer: pyonnx does not support "
                                  f"{', '.join(sorted(kwargs))}")
        self._source = model
        self._options = dict(bits=bits, block_size=block_size, symmetric=is_symmetric,
                             form="matmulnbits" if quant_format == QuantFormat.QOperator
                             else "qdq",
                             op_types=tuple(op_types_to_quantize or ("MatMul",)),
                             nodes_to_exclude=tuple(nodes_to_exclude or ()),
                             nodes_to_quantize=nodes_to_include, accuracy_level=accuracy_level)
        self.model: _ModelHandle | None = None

    def process(self) -> None:
        self.model = _ModelHandle(quantize_weight_only_model(self._source, **self._options))
