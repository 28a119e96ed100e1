"""Float vs quantized, tensor by tensor (onnxruntime's ``qdq_loss_debug`` functions).

A quantized model keeps the names of the float model's activations (the rewrites give a
replaced node's output to the new nodes), so the two models' tensors are matched by name:
:func:`collect_activations` runs a model with its float activations exposed,
:func:`create_activation_matching` pairs them, :func:`compute_activation_error` gives the
signal-to-quantization-noise ratio (dB) of each pair; the weight functions do the same for
each weight against its dequantized form.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from pyonnx.ir import DataType, Model

__all__ = ["collect_activations", "create_activation_matching", "compute_activation_error",
           "create_weight_matching", "compute_weight_error",
           "compute_signal_to_quantization_noise_ratio",
           "compute_signal_to_quantization_noice_ratio", "per_tensor_report"]


def compute_signal_to_quantization_noise_ratio(x: Any, y: Any) -> float:
    """SQNR in dB of ``y`` as an approximation of ``x`` (inf when equal)."""
    xs = np.concatenate([np.asarray(a, np.float64).ravel() for a in
                         (x if isinstance(x, (list, tuple)) else [x])])
    ys = np.concatenate([np.asarray(a, np.float64).ravel() for a in
                         (y if isinstance(y, (list, tuple)) else [y])])
    noise = float(np.sum((xs - ys) ** 2))
    signal = float(np.sum(xs ** 2))
    if noise == 0:
        return float("inf")
    return 10.0 * np.log10(max(signal, 1e-30) / noise)


compute_signal_to_quantization_noice_ratio = compute_signal_to_quantization_noise_ratio


def collect_activations(model: Any, input_reader: Iterable[dict[str, np.ndarray]],
                        session_options: Any = None, execution_providers: Any = None
                        ) -> dict[str, list[np.ndarray]]:
    """Every float activation of ``model``'s main graph for each feed of ``input_reader``
    (kept for all samples: a debugging tool, use a few samples)."""
    from pyonnx.io import load
    from pyonnx.quantization.calibrate import _augmented, _float_tensor_names
    from pyonnx.runtime import InferenceSession
    from pyonnx.shape_inference import infer_shapes

    m = model if isinstance(model, Model) else load(model)
    m = infer_shapes(m)
    names = _float_tensor_names(m, None)
    sess = InferenceSession(_augmented(m, names), sess_options=session_options)
    outs = [o.name for o in sess.get_outputs()]
    result: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for feed in input_reader:
        vals = dict(zip(outs, sess.run(outs, feed)))
        for n in names:
            result[n].append(np.asarray(vals[n]))
    return result


def create_activation_matching(qdq_activations: dict[str, list[np.ndarray]],
                               float_activations: dict[str, list[np.ndarray]] | None = None
                               ) -> dict[str, dict[str, list[np.ndarray]]]:
    """{tensor: {"pre_qdq": float model's values, "post_qdq": quantized model's values}} for
    the tensors both models have (with ``float_activations`` None, the quantized model's
    QuantizeLinear inputs and DequantizeLinear outputs are paired instead, by the names the
    QDQ rewrite gives: ``X`` and ``X_DequantizeLinear_Output``)."""
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    if float_activations is None:
        for name, vals in qdq_activations.items():
            dq = qdq_activations.get(f"{name}_DequantizeLinear_Output")
            if dq is not None:
                out[name] = {"pre_qdq": vals, "post_qdq": dq}
        return out
    for name, vals in float_activations.items():
        if name in qdq_activations:
            out[name] = {"float": vals, "post_qdq": qdq_activations[name]}
    return out


def compute_activation_error(activations_match: dict[str, dict[str, list[np.ndarray]]]
                             ) -> dict[str, dict[str, float]]:
    """SQNR (dB) per tensor: ``xmodel_err`` float model vs quantized model, ``qdq_err`` the
    value before vs after its own QuantizeLinear/DequantizeLinear pair."""
    out: dict[str, dict[str, float]] = {}
    for name, m in activations_match.items():
        e: dict[str, float] = {}
        if "float" in m:
            e["xmodel_err"] = compute_signal_to_quantization_noise_ratio(m["float"],
                                                                         m["post_qdq"])
        if "pre_qdq" in m:
            e["qdq_err"] = compute_signal_to_quantization_noise_ratio(m["pre_qdq"],
                                                                      m["post_qdq"])
        out[name] = e
    return out


def create_weight_matching(float_model_path: Any, qdq_model_path: Any
                           ) -> dict[str, dict[str, np.ndarray]]:
    """{weight: {"float": its values, "dequantized": DequantizeLinear of its quantized form}}
    for the weights a QDQ or weight-only rewrite quantized (named ``W_quantized``)."""
    from pyonnx.io import load

    fm = float_model_path if isinstance(float_model_path, Model) else load(float_model_path)
    qm = qdq_model_path if isinstance(qdq_model_path, Model) else load(qdq_model_path)
    out: dict[str, dict[str, np.ndarray]] = {}
    for n in qm.graph.nodes:
        if n.op_type != "DequantizeLinear" or n.inputs[0] is None:
            continue
        q = n.inputs[0]
        if q.const_value is None or not q.name.endswith("_quantized"):
            continue
        base = q.name[: -len("_quantized")]
        f = fm.graph.initializers.get(base)
        if f is None or f.const_value is None or f.const_value.data_type != DataType.FLOAT:
            continue
        from pyonnx.ops.quantization import dequantize_linear

        def const(v):
            return None if v is None or v.const_value is None else v.const_value.numpy()
        if any(v is not None and v.const_value is None for v in n.inputs):
            continue
        attrs = {k: a.value for k, a in n.attributes.items() if k in ("axis", "block_size")}
        deq = dequantize_linear(*[const(v) for v in n.inputs], **attrs)[0]
        out[base] = {"float": f.const_value.numpy(), "dequantized": deq}
    return out


def compute_weight_error(weights_match: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
    """SQNR (dB) of each dequantized weight against its float original."""
    return {name: compute_signal_to_quantization_noise_ratio(m["float"], m["dequantized"])
            for name, m in weights_match.items()}


def per_tensor_report(float_model: Any, quantized_model: Any,
                      feeds: Sequence[dict[str, np.ndarray]]) -> list[tuple[str, float]]:
    """(tensor, SQNR dB) for every activation both models share, worst first."""
    fa = collect_activations(float_model, list(feeds))
    qa = collect_activations(quantized_model, list(feeds))
    errs = compute_activation_error(create_activation_matching(qa, fa))
    rows = [(name, e["xmodel_err"]) for name, e in errs.items() if "xmodel_err" in e]
    return sorted(rows, key=lambda r: r[1])
