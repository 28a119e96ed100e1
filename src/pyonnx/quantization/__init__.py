"""Quantization with onnxruntime.quantization's API: ``quantize_dynamic``, ``quantize_static``
(QDQ and QOperator formats), calibration through pyonnx's runtime, weight-only int4/int8
(:mod:`.weight_only`), float16/bfloat16 conversion (:mod:`.float16`), pre-processing
(:func:`quant_pre_process`) and accuracy reports (:mod:`.report`, :mod:`.qdq_loss_debug`).

Code written for ``onnxruntime.quantization`` works by changing the import. The rewrites are
optimizer passes over pyonnx's IR; the written models use standard and com.microsoft operators
only, so onnxruntime runs them too.
"""

from pyonnx.quantization._types import CalibrationMethod, QuantFormat, QuantizationMode, QuantType
from pyonnx.quantization.calibrate import (
    CalibraterBase,
    CalibrationDataReader,
    DistributionCalibrater,
    EntropyCalibrater,
    MinMaxCalibrater,
    PercentileCalibrater,
    TensorData,
    TensorsData,
    create_calibrator,
)
from pyonnx.quantization.float16 import convert_float_to_bfloat16, convert_float_to_float16
from pyonnx.quantization.preprocess import quant_pre_process
from pyonnx.quantization.weight_only import (
    MatMulNBitsQuantizer,
    quantize_weight_only,
    quantize_weight_only_model,
)
from pyonnx.quantization.quantize import (
    DynamicQuantConfig,
    QuantConfig,
    StaticQuantConfig,
    quantize,
    quantize_dynamic,
    quantize_dynamic_model,
    quantize_static,
    quantize_static_model,
)

__all__ = [
    "CalibrationMethod", "QuantFormat", "QuantizationMode", "QuantType", "CalibraterBase",
    "CalibrationDataReader", "DistributionCalibrater", "EntropyCalibrater", "MinMaxCalibrater",
    "PercentileCalibrater", "TensorData", "TensorsData", "create_calibrator",
    "DynamicQuantConfig", "QuantConfig", "StaticQuantConfig", "quantize", "quantize_dynamic",
    "quantize_static", "quant_pre_process", "convert_float_to_float16",
    "convert_float_to_bfloat16", "MatMulNBitsQuantizer", "quantize_weight_only",
    "quantize_weight_only_model", "quantize_dynamic_model", "quantize_static_model",
]
