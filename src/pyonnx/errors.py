"""The error types pyonnx raises.

Every failure pyonnx reports is a :class:`PyOnnxError` subclass, so a caller can catch one
type and know the message names the model element (tensor, node, input) and what is wrong.
"""

from __future__ import annotations

__all__ = [
    "PyOnnxError",
    "DecodeError",
    "ValidationError",
    "ShapeInferenceError",
    "UnsupportedOperatorError",
    "InvalidArgument",
    "ResourceLimitExceeded",
    "ExecutionError",
    "VerificationError",
]


class PyOnnxError(Exception):
    """Base of every error pyonnx raises on purpose."""


class DecodeError(PyOnnxError):
    """The bytes or file given are not a readable ONNX model (or external data is unsafe)."""


class ValidationError(PyOnnxError):
    """The model breaks a rule of the ONNX specification.

    ``violations`` lists every violation found (location and message), not only the first.
    """

    def __init__(self, message: str, violations: list[str] | None = None) -> None:
        super().__init__(message)
        self.violations: list[str] = list(violations or [message])


class ShapeInferenceError(PyOnnxError):
    """Shape or type inference found a contradiction (strict mode) or could not proceed."""


class UnsupportedOperatorError(PyOnnxError):
    """No kernel (or schema) exists for an operator at the opset the model selects."""


class InvalidArgument(PyOnnxError):
    """An argument given by the caller (a feed, an option, an output name) is wrong."""


class ResourceLimitExceeded(PyOnnxError):
    """A configured limit (tensor bytes, nesting depth, iterations, deadline) was reached."""


class ExecutionError(PyOnnxError):
    """A kernel failed while running a node; the message names the node and its inputs."""


class VerificationError(PyOnnxError):
    """A rewritten model computes other results than the original on the same inputs.

    ``pass_name`` names the optimizer pass that made the difference and ``value_name`` the first
    value (in the rewritten graph's order) that drifted, when they could be found; ``max_abs_diff``
    is the largest difference seen at that point."""

    def __init__(self, message: str, *, pass_name: str | None = None,
                 value_name: str | None = None, max_abs_diff: float | None = None) -> None:
        super().__init__(message)
        self.pass_name = pass_name
        self.value_name = value_name
        self.max_abs_diff = max_abs_diff
