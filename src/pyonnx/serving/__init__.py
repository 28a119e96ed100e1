"""Serving ONNX models: a KServe v2 server (REST and gRPC) and, optionally, Ray.

Needs the ``serve`` extra (``pip install "pyonnx[serve]"``: Starlette, uvicorn, grpcio,
prometheus-client); ``pyonnx.serving.ray`` needs the ``ray`` extra. ``import pyonnx`` never
imports this package; the ``pyonnx serve`` command and users do.

- :class:`~pyonnx.serving.server.InferenceServer`: a model repository, loaded and served
  (protocol-independent; thread-safe).
- :func:`~pyonnx.serving.rest.build_app`: its KServe v2 REST routes as an ASGI application.
- :func:`~pyonnx.serving.grpc_server.build_grpc_server`: its gRPC service.
- :func:`~pyonnx.serving.app.serve`: both, until SIGTERM (what ``pyonnx serve`` runs).
"""

from __future__ import annotations

from pyonnx.serving.config import ServerDefaults
from pyonnx.serving.server import InferenceServer

__all__ = ["InferenceServer", "ServerDefaults"]
