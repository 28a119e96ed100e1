"""``quantize_dynamic``, ``quantize_static`` and ``quantize``: onnxruntime.quantization's entry
points, over pyonnx's IR, runtime and optimizer.

Every entry point takes a path, bytes, an onnx ``ModelProto`` or a pyonnx Model (never
modified), checks that the output path is writable before any work, rewrites a copy with the
passes of :mod:`._dynamic` / :mod:`._static`, and writes the result. A model with nothing to
quantize is written unchanged, with a warning saying why.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from pyonnx.errors import InvalidArgument
from pyonnx.ir import Model
from pyonnx.quantization._dynamic import DYNAMIC_OPS, DynamicQuantizePass
from pyonnx.quantization._edit import (check_output_path, drop_unused_initializers,
                                       ensure_ir_version, ensure_opset, load_input)
from pyonnx.quantization._options import QuantOptions
from pyonnx.quantization._static import (DEFAULT_STATIC_OPS, QDQ_OPS, QOPERATOR_OPS, QDQPass,
                                         QOperatorPass, activations_to_calibrate)
from pyonnx.quantization._types import CalibrationMethod, QuantFormat, QuantType
from pyonnx.quantization.calibrate import (CALIB_OPTION_KEYS, CalibrationDataReader,
                                           collect_ranges)

__all__ = ["quantize_dynamic", "quantize_static", "quantize", "QuantConfig",
           "StaticQuantConfig", "DynamicQuantConfig", "quantize_dynamic_model",
           "quantize_static_model"]

logger = logging.getLogger("pyonnx.quantization")

_4BIT = (QuantType.QInt4, QuantType.QUInt4)
_16BIT = (QuantType.QInt16, QuantType.QUInt16)


def _finish(model: Model, options: QuantOptions, rewritten: list[str]) -> Model:
    if not rewritten:
        logger.warning("quantize: no node was quantized (no %s node with float inputs and "
                       "constant weights among the selected ones); the model is unchanged",
                       "/".join(sorted(options.op_types)) or "selected")
        return model
    from pyonnx.optimizer.passes import EliminateDeadCode

    EliminateDeadCode()(model)  # what the rewrites left unread (a transposed float weight)
    drop_unused_initializers(model)
    if any(t in _4BIT or t in _16BIT for t in (options.weight_type, options.activation_type)):
        ensure_ir_version(model, 10)
    elif QuantType.QFLOAT8E4M3FN in (options.weight_type, options.activation_type):
        ensure_ir_version(model, 9)
    return model


def _min_opset(options: QuantOptions, dynamic: bool) -> int:
    types = (options.weight_type,) if dynamic else (options.weight_type, options.activation_type)
    if any(t in _4BIT or t in _16BIT for t in types):
        return 21
    if QuantType.QFLOAT8E4M3FN in types:
        return 19
    if options.per_channel:
        return 13
    return 11 if dynamic else 10


def _save(model: Model, path: str, use_external_data_format: bool) -> None:
    from pyonnx.io import save

    save(model, path, external_data=bool(use_external_data_format),
         location=os.path.basename(path) + ".data" if use_external_data_format else None)


def quantize_dynamic_model(model: Any, *, op_types_to_quantize: Sequence[str] | None = None,
                           per_channel: bool = False, reduce_range: bool = False,
                           weight_type: QuantType = QuantType.QInt8,
                           nodes_to_quantize: Sequence[str] | None = None,
                           nodes_to_exclude: Sequence[str] | None = None,
                           extra_options: dict[str, Any] | None = None) -> Model:
    """:func:`quantize_dynamic` in memory: returns the quantized Model."""
    if weight_type not in (QuantType.QInt8, QuantType.QUInt8):
        raise InvalidArgument(f"quantize_dynamic: weight_type must be QInt8 or QUInt8 (the "
                              f"integer operators take 8-bit weights), got {weight_type}")
    options = QuantOptions.build(
        default_ops=DYNAMIC_OPS, supported_ops=DYNAMIC_OPS,
        op_types_to_quantize=op_types_to_quantize, per_channel=per_channel,
        reduce_range=reduce_range, weight_type=weight_type, activation_type=QuantType.QUInt8,
        nodes_to_quantize=nodes_to_quantize, nodes_to_exclude=nodes_to_exclude,
        extra_options=extra_options, const_b_default=True)
    m = load_input(model)
    from pyonnx.shape_inference import infer_shapes

    m = infer_shapes(ensure_opset(m, _min_opset(options, True)))
    p = DynamicQuantizePass(options)
    p(m)
    return _finish(m, options, p.quantized)


def quantize_dynamic(model_input: Any, model_output: Any, op_types_to_quantize=None,
                     per_channel=False, reduce_range=False, weight_type=QuantType.QInt8,
                     nodes_to_quantize=None, nodes_to_exclude=None,
                     use_external_data_format=False, extra_options=None) -> None:
    """Quantize weights offline and activations at run time (onnxruntime's signature).

    MatMul with a constant 2-D weight becomes MatMulInteger (all MatMuls when
    ``extra_options={"MatMulConstBOnly": False}``), Conv becomes ConvInteger, Gather of a
    constant table reads a quantized table, com.microsoft Attention becomes QAttention;
    ``weight_type`` QInt8 (symmetric, the default) or QUInt8; ``per_channel`` one scale per
    output column/channel; ``reduce_range`` 7-bit weights.
    """
    out = check_output_path(model_output)
    m = quantize_dynamic_model(model_input, op_types_to_quantize=op_types_to_quantize,
                               per_channel=per_channel, reduce_range=reduce_range,
                               weight_type=weight_type, nodes_to_quantize=nodes_to_quantize,
                               nodes_to_exclude=nodes_to_exclude, extra_options=extra_options)
    _save(m, out, use_external_data_format)


def quantize_static_model(model: Any, calibration_data_reader: CalibrationDataReader | None,
                          *, quant_format: QuantFormat = QuantFormat.QDQ,
                          op_types_to_quantize: Sequence[str] | None = None,
                          per_channel: bool = False, reduce_range: bool = False,
                          activation_type: QuantType = QuantType.QInt8,
                          weight_type: QuantType = QuantType.QInt8,
                          nodes_to_quantize: Sequence[str] | None = None,
                          nodes_to_exclude: Sequence[str] | None = None,
                          calibrate_method: CalibrationMethod = CalibrationMethod.MinMax,
                          extra_options: dict[str, Any] | None = None,
                          ranges: dict[str, tuple[float, float]] | None = None) -> Model:
    """:func:`quantize_static` in memory: returns the quantized Model. ``ranges`` ({tensor:
    (min, max)}) replaces calibration for the tensors it names.

    With ``per_channel``, every inference BatchNormalization that reads a Conv's output alone
    is first folded into that Conv (scaled weights, shifted bias: the optimizer's
    ``fold_conv_bn`` pass, for constant parameters only), as ``quant_pre_process`` would do:
    otherwise the Conv's output is quantized and dequantized before the BatchNormalization,
    which then runs on its own at every run and adds a quantization step the float model does
    not have. The Conv keeps its name and takes the BatchNormalization's output; the range of
    the Conv's former output (in ``ranges``, or to calibrate) no longer exists. With per-tensor
    weights the fold is not done: the BatchNormalization's per-channel factors would spread the
    folded weight's channels over one int8 grid and lose more accuracy than the removed
    quantization step gains (logits cosine 0.9996 -> 0.9992 on the randomized light CNNs;
    per-channel: 0.9998 with the fold, 0.9997 without)."""
    if not isinstance(quant_format, QuantFormat):
        raise InvalidArgument(f"quant_format must be a QuantFormat, got {quant_format!r}")
    if not isinstance(calibrate_method, CalibrationMethod):
        raise InvalidArgument(f"calibrate_method must be a CalibrationMethod, got "
                              f"{calibrate_method!r}")
    qop = quant_format == QuantFormat.QOperator
    if qop and (activation_type not in (QuantType.QInt8, QuantType.QUInt8) or
                weight_type not in (QuantType.QInt8, QuantType.QUInt8)):
        raise InvalidArgument("QOperator format takes 8-bit types only (QLinearConv, "
                              "QLinearMatMul); use QuantFormat.QDQ for 4-, 16-bit or float8")
    options = QuantOptions.build(
        default_ops=DEFAULT_STATIC_OPS, supported_ops=QOPERATOR_OPS if qop else QDQ_OPS,
        op_types_to_quantize=op_types_to_quantize, per_channel=per_channel,
        reduce_range=reduce_range, weight_type=weight_type, activation_type=activation_type,
        nodes_to_quantize=nodes_to_quantize, nodes_to_exclude=nodes_to_exclude,
        extra_options=extra_options, const_b_default=False)
    m = load_input(model)
    if per_channel:
        m = _fold_batch_norms(m)
    from pyonnx.shape_inference import infer_shapes

    m = infer_shapes(ensure_opset(m, _min_opset(options, False)))
    tensors = activations_to_calibrate(m, options, qop)
    known = dict(ranges or {})
    todo = [t for t in tensors if t not in known]
    if todo:
        if calibration_data_reader is None:
            raise InvalidArgument("quantize_static needs a calibration_data_reader (or the "
                                  "ranges of every activation)")
        calib_opts = {CALIB_OPTION_KEYS[k]: v for k, v in options.extra.items()
                      if k in CALIB_OPTION_KEYS}
        data = collect_ranges(m, todo, calibration_data_reader, calibrate_method, calib_opts)
        for t in todo:
            if t in data:
                td = data[t]
                known[t] = (float(td.lowest), float(td.highest))
    p = (QOperatorPass if qop else QDQPass)(options, known)
    p(m)
    return _finish(m, options, p.quantized)


def _fold_batch_norms(m: Model) -> Model:
    """``m`` with each Conv -> BatchNormalization folded into one Conv where the parameters are
    constants (see :func:`quantize_static_model`; in place); the result is written, so never the
    run-time fold (a ``pyonnx``-domain node) that the session pass uses for overridable ones."""
    from pyonnx.optimizer import run_passes
    from pyonnx.optimizer.passes.fold_conv_bn import FoldConvBatchNorm

    class _FoldConstantConvBatchNorm(FoldConvBatchNorm):
        def _fold_at_run(self, graph, model, conv, bn) -> bool:
            return False

    if not any(n.op_type == "BatchNormalization" for n in m.graph.nodes):
        return m
    return run_passes(m, [_FoldConstantConvBatchNorm()])


def quantize_static(model_input: Any, model_output: Any,
                    calibration_data_reader: CalibrationDataReader | None = None,
                    quant_format=QuantFormat.QDQ, op_types_to_quantize=None, per_channel=False,
                    reduce_range=False, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, nodes_to_quantize=None, nodes_to_exclude=None,
                    use_external_data_format=False, calibrate_method=CalibrationMethod.MinMax,
                    calibration_providers=None, extra_options=None,
                    calibration_cache_path=None) -> None:
    """Quantize weights and activations with scales from calibration (onnxruntime's signature).

    The reader's samples run through pyonnx's InferenceSession one at a time (bounded memory);
    ``calibrate_method`` MinMax, Entropy, Percentile or Distribution; ``quant_format`` QDQ
    (default) or QOperator. ``calibration_providers`` must name providers pyonnx has;
    ``calibration_cache_path`` is not supported (raises when given). With ``per_channel``,
    BatchNormalization nodes that follow a Conv are folded into it before calibration (see
    :func:`quantize_static_model`), so that no quantization step separates them.
    """
    out = check_output_path(model_output)
    if calibration_cache_path is not None:
        raise InvalidArgument("quantize_static: calibration_cache_path is not supported by "
                              "pyonnx; pass the ranges to quantize_static_model instead")
    if calibration_providers:
        from pyonnx.runtime import get_available_providers

        missing = [p for p in calibration_providers if p not in get_available_providers()]
        if missing:
            raise InvalidArgument(f"calibration_providers: pyonnx has no {', '.join(missing)}")
    m = quantize_static_model(
        model_input, calibration_data_reader, quant_format=quant_format,
        op_types_to_quantize=op_types_to_quantize, per_channel=per_channel,
        reduce_range=reduce_range, activation_type=activation_type, weight_type=weight_type,
        nodes_to_quantize=nodes_to_quantize, nodes_to_exclude=nodes_to_exclude,
        calibrate_method=calibrate_method, extra_options=extra_options)
    _save(m, out, use_external_data_format)


class QuantConfig:
    """Options shared by the static and dynamic configurations (onnxruntime's classes)."""

    def __init__(self, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                 op_types_to_quantize=None, nodes_to_quantize=None, nodes_to_exclude=None,
                 per_channel=False, reduce_range=False, use_external_data_format=False):
        self.activation_type = activation_type
        self.weight_type = weight_type
        self.op_types_to_quantize = op_types_to_quantize
        self.nodes_to_quantize = nodes_to_quantize
        self.nodes_to_exclude = nodes_to_exclude
        self.per_channel = per_channel
        self.reduce_range = reduce_range
        self.use_external_data_format = use_external_data_format


class StaticQuantConfig(QuantConfig):
    """The arguments of :func:`quantize_static` as one object, for :func:`quantize`."""

    def __init__(self, calibration_data_reader, calibrate_method=CalibrationMethod.MinMax,
                 quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                 weight_type=QuantType.QInt8, op_types_to_quantize=None, nodes_to_quantize=None,
                 nodes_to_exclude=None, per_channel=False, reduce_range=False,
                 use_external_data_format=False, calibration_providers=None,
                 extra_options=None):
        super().__init__(activation_type, weight_type, op_types_to_quantize, nodes_to_quantize,
                         nodes_to_exclude, per_channel, reduce_range, use_external_data_format)
        self.calibration_data_reader = calibration_data_reader
        self.calibrate_method = calibrate_method
        self.quant_format = quant_format
        self.calibration_providers = calibration_providers
        self.extra_options = extra_options or {}


class DynamicQuantConfig(QuantConfig):
    """The arguments of :func:`quantize_dynamic` as one object, for :func:`quantize`."""

    def __init__(self, weight_type=QuantType.QInt8, op_types_to_quantize=None,
                 nodes_to_quantize=None, nodes_to_exclude=None, per_channel=False,
                 reduce_range=False, use_external_data_format=False, extra_options=None):
        super().__init__(QuantType.QUInt8, weight_type, op_types_to_quantize, nodes_to_quantize,
                         nodes_to_exclude, per_channel, reduce_range, use_external_data_format)
        self.extra_options = extra_options or {}


def quantize(model_input: Any, model_output: Any, quant_config: QuantConfig) -> None:
    """Quantize with a :class:`StaticQuantConfig` or :class:`DynamicQuantConfig`."""
    c = quant_config
    if isinstance(c, StaticQuantConfig):
        quantize_static(model_input, model_output, c.calibration_data_reader,
                        quant_format=c.quant_format, op_types_to_quantize=c.op_types_to_quantize,
                        per_channel=c.per_channel, reduce_range=c.reduce_range,
                        activation_type=c.activation_type, weight_type=c.weight_type,
                        nodes_to_quantize=c.nodes_to_quantize,
                        nodes_to_exclude=c.nodes_to_exclude,
                        use_external_data_format=c.use_external_data_format,
                        calibrate_method=c.calibrate_method,
                        calibration_providers=c.calibration_providers,
                        extra_options=c.extra_options)
    elif isinstance(c, DynamicQuantConfig):
        quantize_dynamic(model_input, model_output, op_types_to_quantize=c.op_types_to_quantize,
                         per_channel=c.per_channel, reduce_range=c.reduce_range,
                         weight_type=c.weight_type, nodes_to_quantize=c.nodes_to_quantize,
                         nodes_to_exclude=c.nodes_to_exclude,
                         use_external_data_format=c.use_external_data_format,
                         extra_options=c.extra_options)
    else:
        raise InvalidArgument(f"quant_config must be a StaticQuantConfig or DynamicQuantConfig, "
                              f"got {type(c).__name__}")
