"""The errors the server answers with, each carrying its HTTP status and gRPC status code.

They are :class:`pyonnx.errors.PyOnnxError` subclasses, so library users catch them like every
other pyonnx error; the REST and gRPC front ends turn them into the protocol's error replies
(``{"error": "..."}`` with the status, or a gRPC status with the message).
"""

from __future__ import annotations

from pyonnx.errors import PyOnnxError


class ServingError(PyOnnxError):
    """A request the server refuses or cannot complete; ``http_status`` and ``grpc_code`` say how."""

    http_status = 500
    grpc_code = "INTERNAL"


class BadRequest(ServingError):
    """The request is malformed: bad JSON, wrong datatype or shape, unknown tensor name, ..."""

    http_status = 400
    grpc_code = "INVALID_ARGUMENT"


class ModelNotFound(ServingError):
    """No such model or version in the repository (or a name that points outside it)."""

    http_status = 404
    grpc_code = "NOT_FOUND"


class PayloadTooLarge(ServingError):
    """The request body is larger than the server's limit."""

    http_status = 413
    grpc_code = "RESOURCE_EXHAUSTED"


class Unavailable(ServingError):
    """The server cannot take the request now: queue full, model not ready, shutting down."""

    http_status = 503
    grpc_code = "UNAVAILABLE"


class RequestTimeout(ServingError):
    """The request waited longer than its timeout (queue time and run time together)."""

    http_status = 504
    grpc_code = "DEADLINE_EXCEEDED"


class InferenceFailed(ServingError):
    """The model failed while running on a well-formed request."""

    http_status = 500
    grpc_code = "INTERNAL"
