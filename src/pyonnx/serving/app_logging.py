"""Logging for ``pyonnx serve``: server events as text, access logs as JSON lines, on stderr."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str = "info", access_log: bool = True) -> None:
    """Send ``pyonnx.serving`` events (and, if ``access_log``, one JSON line per request on
    ``pyonnx.serving.access``) to stderr. Idempotent."""
    root = logging.getLogger("pyonnx.serving")
    if not any(getattr(h, "_pyonnx_serving", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._pyonnx_serving = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        access = logging.getLogger("pyonnx.serving.access")
        access.propagate = False
        raw = logging.StreamHandler(sys.stderr)
        raw.setFormatter(logging.Formatter("%(message)s"))
        raw._pyonnx_serving = True  # type: ignore[attr-defined]
        access.addHandler(raw)
    root.setLevel(level.upper())
    logging.getLogger("pyonnx.serving.access").setLevel(logging.INFO if access_log
                                                        else logging.WARNING)
