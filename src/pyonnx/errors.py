"""The error types pyonnx raises.

Every failure pyonnx reports is a :class:`PyOnnxError` subclass, so a caller can catch one
type and know the message names the model element (tensor, node, input) and what is wrong.

Code written for onnxruntime catches onnxruntime's status exceptions (``Fail``,
``InvalidArgument``, ``NoSuchFile``, ... from ``onnxruntime.capi.onnxruntime_pybind11_state``)
or Python's built-in ones (``ValueError``, ``RuntimeError``, ``TypeError``). pyonnx keeps its own
classes, and makes each one a subclass of every class that onnxruntime raises for the same kind
of failure, so the ``except`` clause that catches onnxruntime's error also catches pyonnx's.
The status classes are defined here (``Ort...``) and exported under onnxruntime's names by
:mod:`pyonnx.capi.onnxruntime_pybind11_state`.
"""

from __future__ import annotations

__all__ = [
    "PyOnnxError",
    "DecodeError",
    "ModelFileNotFound",
    "AdapterFileError",
    "ValidationError",
    "ShapeInferenceError",
    "UnsupportedOperatorError",
    "InvalidArgument",
    "InvalidRequest",
    "InvalidArgumentType",
    "NotSupported",
    "ResourceLimitExceeded",
    "ExecutionError",
    "OrtFail", "OrtInvalidArgument", "OrtNoSuchFile", "OrtNoModel", "OrtEngineError",
    "OrtRuntimeException", "OrtInvalidProtobuf", "OrtModelLoaded", "OrtNotImplemented",
    "OrtInvalidGraph", "OrtEPFail",
    "VerificationError",
]


class PyOnnxError(Exception):
    """Base of every error pyonnx raises on purpose."""


# ---------------------------------------------------------------- onnxruntime's status classes
# One per onnxruntime status code (onnxruntime_pybind_exceptions.cc). pyonnx's own errors below
# derive from the ones onnxruntime raises for the same failure; they may also be raised directly
# where pyonnx has no more specific class (e.g. OrtFail for a query that needs a session option).


class OrtFail(PyOnnxError):
    """onnxruntime's ``Fail`` (status FAIL): a generic failure."""


class OrtInvalidArgument(PyOnnxError):
    """onnxruntime's ``InvalidArgument`` (status INVALID_ARGUMENT)."""


class OrtNoSuchFile(PyOnnxError):
    """onnxruntime's ``NoSuchFile`` (status NO_SUCHFILE): a model or data file does not exist."""


class OrtNoModel(PyOnnxError):
    """onnxruntime's ``NoModel`` (status NO_MODEL)."""


class OrtEngineError(PyOnnxError):
    """onnxruntime's ``EngineError`` (status ENGINE_ERROR)."""


class OrtRuntimeException(PyOnnxError):
    """onnxruntime's ``RuntimeException`` (status RUNTIME_EXCEPTION): a failure while running."""


class OrtInvalidProtobuf(PyOnnxError):
    """onnxruntime's ``InvalidProtobuf`` (status INVALID_PROTOBUF): bytes that do not parse."""


class OrtModelLoaded(PyOnnxError):
    """onnxruntime's ``ModelLoaded`` (status MODEL_LOADED)."""


class OrtNotImplemented(PyOnnxError):
    """onnxruntime's ``NotImplemented`` (status NOT_IMPLEMENTED)."""


class OrtInvalidGraph(PyOnnxError):
    """onnxruntime's ``InvalidGraph`` (status INVALID_GRAPH): the model breaks a graph rule."""


class OrtEPFail(PyOnnxError):
    """onnxruntime's ``EPFail`` (status EP_FAIL): an execution provider failed."""


# ---------------------------------------------------------------- pyonnx's errors


class DecodeError(OrtInvalidProtobuf, OrtInvalidArgument, OrtFail):
    """The bytes or file given are not a readable ONNX model (or external data is unsafe).

    onnxruntime reports unparsable bytes as INVALID_PROTOBUF, a model without a graph as
    INVALID_ARGUMENT and unreadable external data as FAIL, hence the three bases.
    """


class ModelFileNotFound(DecodeError, OrtNoSuchFile, FileNotFoundError):
    """The model file named by a path does not exist (onnxruntime: NO_SUCHFILE)."""


class AdapterFileError(DecodeError, RuntimeError):
    """A LoRA adapter file is missing or not in onnxruntime's adapter format (onnxruntime:
    RuntimeError)."""


class ValidationError(OrtInvalidGraph, OrtFail, OrtInvalidArgument):
    """The model breaks a rule of the ONNX specification.

    ``violations`` lists every violation found (location and message), not only the first.
    onnxruntime reports such models as INVALID_GRAPH, FAIL or INVALID_ARGUMENT depending on the
    rule, hence the three bases.
    """

    def __init__(self, message: str, violations: list[str] | None = None) -> None:
        super().__init__(message)
        self.violations: list[str] = list(violations or [message])


class ShapeInferenceError(OrtFail):
    """Shape or type inference found a contradiction (strict mode) or could not proceed."""


class UnsupportedOperatorError(OrtNotImplemented, OrtInvalidGraph, OrtFail):
    """No kernel (or schema) exists for an operator at the opset the model selects.

    onnxruntime reports an unknown operator as INVALID_GRAPH, a missing kernel as
    NOT_IMPLEMENTED and an opset or IR version it does not know as FAIL.
    """


class InvalidArgument(OrtInvalidArgument, ValueError):
    """An argument given by the caller (a feed, an option, an output name) is wrong.

    A ``ValueError`` too, as onnxruntime raises ValueError for some bad feeds (missing inputs).
    """


class InvalidRequest(InvalidArgument, RuntimeError):
    """A wrong argument that onnxruntime reports as ``RuntimeError``: an unknown provider in
    ``set_providers``, a configuration key that is not set, a device this build lacks, a logger
    severity out of range."""


class InvalidArgumentType(InvalidArgument, TypeError):
    """An argument of the wrong Python type, where onnxruntime raises ``TypeError``."""


class NotSupported(OrtNotImplemented, OrtFail, NotImplementedError):
    """An onnxruntime feature that pyonnx cannot provide: loading a C++ custom-op library, data
    on a device other than the CPU. onnxruntime reports these as FAIL or RuntimeError."""


class ResourceLimitExceeded(OrtRuntimeException, OrtFail, RuntimeError):
    """A configured limit (tensor bytes, nesting depth, iterations, deadline) was reached."""


class ExecutionError(OrtFail, OrtRuntimeException, RuntimeError):
    """A kernel failed while running a node; the message names the node and its inputs.

    onnxruntime reports a failing kernel as FAIL or RUNTIME_EXCEPTION from ``run`` and as
    RuntimeError from ``run_with_iobinding``, hence the three bases.
    """


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
