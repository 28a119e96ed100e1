"""Accuracy of a quantization: how much each node costs, and keeping the costliest in float.

:func:`node_sensitivity` quantizes one node at a time (everything else float) and measures the
model outputs against the float model's on the given feeds; :func:`quantize_to_target`
quantizes everything and, while the output error misses the target, returns the most
sensitive nodes to float (``nodes_to_exclude``), one at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from pyonnx.errors import InvalidArgument
from pyonnx.ir import Model

__all__ = ["NodeError", "OutputError", "output_error", "node_sensitivity",
           "quantize_to_target", "MODES", "format_report"]

MODES = ("dynamic", "static", "weight-int4", "weight-int8")


@dataclasses.dataclass
class OutputError:
    """How far a model's outputs are from the float model's over some feeds: the smallest
    cosine similarity of an output, and the largest ``max|y - y_float| / max|y_float|``."""

    cosine: float
    max_rel_error: float


@dataclasses.dataclass
class NodeError:
    """The output error when only ``name`` (an ``op_type`` node) is quantized."""

    name: str
    op_type: str
    error: OutputError


def _outputs(model: Model, feeds: Sequence[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
    from pyonnx.runtime import InferenceSession

    sess = InferenceSession(model)
    return [[np.asarray(y) for y in sess.run(None, f)] for f in feeds]


def output_error(reference: list[list[np.ndarray]], got: list[list[np.ndarray]]
                 ) -> OutputError:
    """Compare outputs run by run and output by output (float outputs only)."""
    cos, rel = 1.0, 0.0
    for ref_run, got_run in zip(reference, got):
        for r, g in zip(ref_run, got_run):
            if r.dtype.kind != "f":
                continue
            a = r.astype(np.float64).ravel()
            b = g.astype(np.float64).ravel()
            na, nb = np.linalg.norm(a), np.linalg.norm(b)
            c = 1.0 if na == 0 and nb == 0 else float(a @ b / (na * nb)) if na and nb else 0.0
            cos = min(cos, c)
            scale = float(np.abs(a).max()) if a.size else 0.0
            if a.size:
                rel = max(rel, float(np.abs(a - b).max()) / (scale or 1.0))
    return OutputError(cos, rel)


def _quantizer(mode: str, options: dict[str, Any], reader_feeds: Sequence[dict] | None,
               model: Model):
    """A function nodes_to_exclude/nodes_to_quantize -> quantized Model, and the names of
    the nodes a full quantization rewrites."""
    from pyonnx.quantization.quantize import quantize_dynamic_model, quantize_static_model
    from pyonnx.quantization.weight_only import quantize_weight_only_model

    if mode == "dynamic":
        def q(**sel):
            return quantize_dynamic_model(model, **options, **sel)
    elif mode == "static":
        if not reader_feeds:
            raise InvalidArgument("static mode needs calibration feeds")
        from pyonnx.quantization._options import QuantOptions
        from pyonnx.quantization._static import (DEFAULT_STATIC_OPS, QDQ_OPS,
                                                 activations_to_calibrate)
        from pyonnx.quantization._types import CalibrationMethod, QuantType
        from pyonnx.quantization.calibrate import collect_ranges
        from pyonnx.shape_inference import infer_shapes

        # calibrate once: every per-node quantization reuses these ranges
        opts = QuantOptions.build(
            default_ops=DEFAULT_STATIC_OPS, supported_ops=QDQ_OPS,
            op_types_to_quantize=options.get("op_types_to_quantize"), per_channel=False,
            reduce_range=False, weight_type=QuantType.QInt8, activation_type=QuantType.QInt8,
            nodes_to_quantize=None, nodes_to_exclude=None, extra_options=None,
            const_b_default=False)
        typed = infer_shapes(model)
        names = activations_to_calibrate(typed, opts, False)
        data = collect_ranges(typed, names, iter(list(reader_feeds)),
                              options.get("calibrate_method", CalibrationMethod.MinMax), {})
        ranges = {t: (float(d.lowest), float(d.highest)) for t, d in data.items()}

        def q(**sel):
            return quantize_static_model(model, None, ranges=ranges, **options, **sel)
    elif mode in ("weight-int4", "weight-int8"):
        bits = 4 if mode == "weight-int4" else 8

        def q(nodes_to_exclude=(), nodes_to_quantize=None):
            return quantize_weight_only_model(model, bits=bits, nodes_to_exclude=nodes_to_exclude,
                                              nodes_to_quantize=nodes_to_quantize, **options)
    else:
        raise InvalidArgument(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return q


def _candidates(model: Model, q, mode: str, options: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, op_type) of the nodes a full quantization rewrites (found by running it): the
    selectable nodes that are gone or now read a DequantizeLinear."""
    from pyonnx.quantization._dynamic import DYNAMIC_OPS
    from pyonnx.quantization._static import DEFAULT_STATIC_OPS

    if mode == "dynamic":
        ops = set(options.get("op_types_to_quantize") or DYNAMIC_OPS)
    elif mode == "static":
        ops = set(options.get("op_types_to_quantize") or DEFAULT_STATIC_OPS)
    else:
        ops = set(options.get("op_types") or ("MatMul", "Gemm"))
    full = q()
    kept = {n.name for n in full.graph.nodes}
    return [(n.name, n.op_type) for n in model.graph.nodes
            if n.name and n.op_type in ops and (n.name not in kept or _rewired(full, n.name))]


def _rewired(full: Model, name: str) -> bool:
    """Whether node ``name`` kept in ``full`` now reads a DequantizeLinear (QDQ form)."""
    def from_dq(v) -> bool:
        p = v.producer if v is not None else None
        while p is not None and p.op_type in ("Transpose", "Reshape"):   # layout on the way
            p = p.inputs[0].producer if p.inputs and p.inputs[0] is not None else None
        return p is not None and p.op_type == "DequantizeLinear"

    for n in full.graph.nodes:
        if n.name == name:
            return any(from_dq(v) for v in n.inputs)
    return False


def node_sensitivity(model: Any, feeds: Sequence[dict[str, np.ndarray]], *,
                     mode: str = "dynamic", calibration_feeds: Sequence[dict] | None = None,
                     **options: Any) -> list[NodeError]:
    """The output error of quantizing each quantizable node alone, worst first."""
    from pyonnx.quantization._edit import load_input

    m = load_input(model)
    q = _quantizer(mode, options, calibration_feeds, m)
    ref = _outputs(m, feeds)
    out = []
    for name, op in _candidates(m, q, mode, options):
        out.append(NodeError(name, op, output_error(ref, _outputs(q(nodes_to_quantize=[name]),
                                                                     feeds))))
    out.sort(key=lambda e: (e.error.cosine, -e.error.max_rel_error))
    return out


def quantize_to_target(model: Any, feeds: Sequence[dict[str, np.ndarray]], *,
                       min_cosine: float | None = None, max_rel_error: float | None = None,
                       mode: str = "dynamic", calibration_feeds: Sequence[dict] | None = None,
                       sensitivity: list[NodeError] | None = None, **options: Any
                       ) -> tuple[Model, list[str], OutputError]:
    """Quantize, keeping the most sensitive nodes in float until the outputs meet the target
    (``min_cosine`` and/or ``max_rel_error``). Returns the model, the nodes kept in float and
    the error reached (the target may stay missed when every node is back in float)."""
    if min_cosine is None and max_rel_error is None:
        raise InvalidArgument("quantize_to_target needs min_cosine or max_rel_error")
    from pyonnx.quantization._edit import load_input

    m = load_input(model)
    q = _quantizer(mode, options, calibration_feeds, m)
    ref = _outputs(m, feeds)
    if sensitivity is None:
        sensitivity = node_sensitivity(m, feeds, mode=mode, calibration_feeds=calibration_feeds,
                                       **options)

    def ok(e: OutputError) -> bool:
        return ((min_cosine is None or e.cosine >= min_cosine) and
                (max_rel_error is None or e.max_rel_error <= max_rel_error))

    excluded: list[str] = []
    qm = q()
    err = output_error(ref, _outputs(qm, feeds))
    for node in sensitivity:
        if ok(err):
            break
        excluded.append(node.name)
        qm = q(nodes_to_exclude=list(excluded))
        err = output_error(ref, _outputs(qm, feeds))
    return qm, excluded, err


def format_report(errors: Sequence[NodeError], limit: int = 20) -> str:
    """A table of the most sensitive nodes."""
    lines = [f"{'node':40s} {'op':16s} {'cosine':>10s} {'max rel err':>12s}"]
    for e in list(errors)[:limit]:
        lines.append(f"{e.name[:40]:40s} {e.op_type[:16]:16s} {e.error.cosine:10.6f} "
                     f"{e.error.max_rel_error:12.3e}")
    if len(errors) > limit:
        lines.append(f"... {len(errors) - limit} more")
    return "\n".join(lines)
