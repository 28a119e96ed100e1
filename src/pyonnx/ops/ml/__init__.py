"""Kernels of the ai.onnx.ml domain: tree ensembles, linear and SVM models, preprocessing,
ZipMap."""
