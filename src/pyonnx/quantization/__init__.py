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
from pyonnx.quantization.quantize import (
    DynamicQuantConfig,
    QuantConfig,
    StaticQuantConfig,
    quantize,
    quantize_dynamic,
    quantize_static,
)

__all__ = [
    "CalibrationMethod", "QuantFormat", "QuantizationMode", "QuantType", "CalibraterBase",
    "CalibrationDataReader", "DistributionCalibrater", "EntropyCalibrater", "MinMaxCalibrater",
    "PercentileCalibrater", "TensorData", "TensorsData", "create_calibrator",
    "DynamicQuantConfig", "QuantConfig", "StaticQuantConfig", "quantize", "quantize_dynamic",
    "quantize_static",
]
