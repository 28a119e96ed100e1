"""Kernels of onnxruntime's contrib operators (domain ``com.microsoft``, version 1).

These are the fused and quantized operators that onnxruntime's transformer optimizer and
quantization tools write into models (Gelu, SkipLayerNormalization, Attention, MatMulNBits,
QLinearAdd, ...). Their definitions live in onnxruntime's ``docs/ContribOperators.md``; each
module here holds one family. Two operators that onnxruntime registers in the default domain
at version 1 (``LayerNormalization`` and ``SimplifiedLayerNormalization``) are here too.
"""
