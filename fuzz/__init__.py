"""Fuzzing harnesses for pyonnx (see README.md)."""
