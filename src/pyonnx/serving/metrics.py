"""Prometheus metrics of one server (served at ``/metrics``) and its structured access log.

Each server has its own registry, so several servers in one process (tests) keep apart.
Access log lines go to the ``pyonnx.serving.access`` logger as one JSON object per request.
"""

from __future__ import annotations

import json
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401  (re-exported for the REST app)

access_log = logging.getLogger("pyonnx.serving.access")

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServerMetrics:
    """The counters and histograms the server updates."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "pyonnx_inference_requests", "Inference requests by model, protocol and outcome "
            "(success, bad_request, not_found, too_large, unavailable, timeout, error)",
            ["model", "version", "protocol", "outcome"], registry=r)
        self.queue_seconds = Histogram(
            "pyonnx_inference_queue_seconds", "Time a request waited in its model's queue",
            ["model", "version"], buckets=_LATENCY_BUCKETS, registry=r)
        self.compute_seconds = Histogram(
            "pyonnx_inference_compute_seconds", "Time of one model execution (a whole batch)",
            ["model", "version"], buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram(
            "pyonnx_inference_batch_size", "Rows per model execution",
            ["model", "version"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=r)
        self.queue_depth = Gauge(
            "pyonnx_inference_queue_depth", "Requests accepted and not yet running (queued or in a batch still filling)",
            ["model", "version"], registry=r)

    def count(self, model: str, version: str, protocol: str, outcome: str) -> None:
        self.requests.labels(model or "", version or "", protocol, outcome).inc()

    def exposition(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)


def outcome_of(status: int) -> str:
    """The ``outcome`` label for an HTTP status."""
    return {200: "success", 400: "bad_request", 404: "not_found", 413: "too_large",
            503: "unavailable", 504: "timeout"}.get(status, "error" if status >= 500 else
                                                    "bad_request")


def log_access(**fields) -> None:
    """Write one access log line (a JSON object) if the access logger is enabled."""
    if access_log.isEnabledFor(logging.INFO):
        fields = {"ts": round(time.time(), 6), **fields}
        access_log.info(json.dumps(fields, separators=(",", ":"), default=str))
