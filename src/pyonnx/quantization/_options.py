"""The options of one quantization run, read once from onnxruntime's arguments."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from pyonnx.errors import InvalidArgument
from pyonnx.ir import Node
from pyonnx.quantization._types import QuantType

__all__ = ["QuantOptions", "KNOWN_EXTRA_OPTIONS"]

# extra_options keys pyonnx honours (onnxruntime's spelling). A key outside this set raises:
# silently ignoring a setting that changes the written model is worse than refusing it.
KNOWN_EXTRA_OPTIONS = {
    "ActivationSymmetric", "WeightSymmetric", "MatMulConstBOnly", "QuantizeBias",
    "CalibTensorRangeSymmetric", "CalibMovingAverage", "CalibMovingAverageConstant",
    "CalibNumBins", "CalibNumQuantizedBins", "CalibPercentile", "CalibScenario",
    # memory tuning of onnxruntime's calibration (pyonnx streams one sample at a time) and
    # the default pyonnx already has (activations are never removed): no effect on results
    "CalibMaxIntermediateOutputs", "QDQKeepRemovableActivations",
}
# onnxruntime options that change the written model in ways pyonnx does not implement: refused
# when set to anything but their default
UNSUPPORTED_EXTRA_OPTIONS = {
    "EnableSubgraph": False, "ForceQuantizeNoInputCheck": False, "AddQDQPairToWeight": False,
    "DedicatedQDQPair": False, "UseQDQContribOps": False, "QDQOpTypePerChannelSupportToAxis": None,
    "MinimumRealRange": None, "CalibStridedMinMax": None, "DefaultTensorType": None,
    "TensorQuantOverrides": None,
}


#: The onnxruntime contrib operators a quantizer may rewrite (selected by their op_type, as
#: onnxruntime's quantizer selects them): com.microsoft Attention, into QAttention.
CONTRIB_QUANTIZABLE = {("com.microsoft", "Attention")}


@dataclasses.dataclass
class QuantOptions:
    """What to quantize and how (see :func:`pyonnx.quantization.quantize_static`)."""

    op_types: set[str]
    per_channel: bool = False
    reduce_range: bool = False
    weight_type: QuantType = QuantType.QInt8
    activation_type: QuantType = QuantType.QUInt8
    nodes_to_quantize: set[str] | None = None
    nodes_to_exclude: set[str] = dataclasses.field(default_factory=set)
    activation_symmetric: bool = False
    weight_symmetric: bool = True
    matmul_const_b_only: bool = False
    quantize_bias: bool = True
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def build(cls, *, default_ops: Sequence[str], supported_ops: Sequence[str],
              op_types_to_quantize: Sequence[str] | None, per_channel: bool, reduce_range: bool,
              weight_type: QuantType, activation_type: QuantType,
              nodes_to_quantize: Sequence[str] | None, nodes_to_exclude: Sequence[str] | None,
              extra_options: dict[str, Any] | None, const_b_default: bool) -> "QuantOptions":
        for what, t in (("weight_type", weight_type), ("activation_type", activation_type)):
            if not isinstance(t, QuantType):
                raise InvalidArgument(f"{what} must be a QuantType, got {t!r}")
        extra = dict(extra_options or {})
        unsupported = sorted(k for k, v in extra.items()
                             if k in UNSUPPORTED_EXTRA_OPTIONS
                             and v not in (UNSUPPORTED_EXTRA_OPTIONS[k], None, {}))
        if unsupported:
            raise InvalidArgument(f"extra_options: pyonnx does not implement "
                                  f"{', '.join(unsupported)} (it would change the written "
                                  f"model); leave them at their defaults")
        unknown = sorted(set(extra) - KNOWN_EXTRA_OPTIONS - set(UNSUPPORTED_EXTRA_OPTIONS))
        if unknown:
            raise InvalidArgument(f"extra_options: pyonnx does not know {', '.join(unknown)}; "
                                  f"known: {', '.join(sorted(KNOWN_EXTRA_OPTIONS))}")
        ops = set(op_types_to_quantize) if op_types_to_quantize else set(default_ops)
        signed_w = weight_type in (QuantType.QInt8, QuantType.QInt16, QuantType.QInt4,
                                   QuantType.QFLOAT8E4M3FN)
        return cls(
            op_types=ops & set(supported_ops),
            per_channel=bool(per_channel), reduce_range=bool(reduce_range),
            weight_type=weight_type, activation_type=activation_type,
            nodes_to_quantize=set(nodes_to_quantize) if nodes_to_quantize else None,
            nodes_to_exclude=set(nodes_to_exclude or ()),
            activation_symmetric=bool(extra.get("ActivationSymmetric", False)),
            weight_symmetric=bool(extra.get("WeightSymmetric", signed_w)),
            matmul_const_b_only=bool(extra.get("MatMulConstBOnly", const_b_default)),
            quantize_bias=bool(extra.get("QuantizeBias", True)),
            extra=extra,
        )

    def selects(self, node: Node) -> bool:
        """Whether the node is one the caller asked to quantize (by type and name)."""
        if node.op_type not in self.op_types:
            return False
        if node.domain not in ("", "ai.onnx") and \
                (node.domain, node.op_type) not in CONTRIB_QUANTIZABLE:
            return False
        if node.name in self.nodes_to_exclude:
            return False
        if self.nodes_to_quantize is not None and node.name not in self.nodes_to_quantize:
            return False
        return True
