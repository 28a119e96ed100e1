"""The viewer's page: one HTML document with everything inlined.

The same page serves both ways of looking at a model: ``pyonnx view`` serves it (with the
``api`` buttons that run a profile or a comparison on demand), and ``pyonnx view --html`` writes
it to a file that opens offline. The app's script, its stylesheet, the layout worker and the
vendored layout library (dagre, MIT, ``static/vendor``) are inlined, and so is the model's
description (never its weights). A Content-Security-Policy allows only the page's own script
and style (by nonce) and the layout worker (a ``blob:`` URL), so that even a model string that
got past the escaping below could not run script.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from importlib import resources
from typing import Any

__all__ = ["render_page", "page_csp", "STATIC_FILES"]

#: The files of ``static/`` the page is made of (the vendored library with its licence).
STATIC_FILES = ("index.html", "app.js", "app.css", "layout_worker.js", "vendor/dagre.min.js",
                "vendor/dagre.LICENSE")

_PLACEHOLDER = re.compile(r"@(CSP|NONCE|CSS|CONFIG|DATA|WORKER|APP)@")


def _static(name: str) -> str:
    return resources.files("pyonnx.viewer").joinpath("static", name).read_text(encoding="utf-8")


def _script_safe(text: str, what: str) -> str:
    """Code inlined in a <script> element must not be able to end it early."""
    low = text.lower()
    if "</script" in low or "<!--" in low:
        raise ValueError(f"{what} contains '</script' or '<!--' and cannot be inlined")
    return text


def _json_for_html(value: Any) -> str:
    """JSON inside a <script type="application/json"> element: ``<``, ``>`` and ``&`` are
    written as \\u escapes (JSON.parse reads them back), so no string from the model can
    close the element or open a comment. NaN and infinities (not JSON) become null."""
    try:
        text = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_finite(value), ensure_ascii=True, allow_nan=False,
                          separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def page_csp(nonce: str, *, api: bool) -> str:
    """The page's Content-Security-Policy (``connect-src 'self'`` only when served, for the
    on-demand profile and comparison)."""
    connect = "'self'" if api else "'none'"
    return ("default-src 'none'; "
            f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; worker-src blob:; "
            f"img-src data:; connect-src {connect}; base-uri 'none'; form-action 'none'")


def render_page(description: dict[str, Any], *, api: bool = False, token: str | None = None,
                nonce: str | None = None) -> str:
    """The page for ``description`` (:func:`~pyonnx.viewer.describe_model`'s result, with
    any overlays set). ``api`` and ``token`` are for the server: they enable the buttons that
    call it back. ``nonce`` (random by default) authorises the page's own script and style."""
    nonce = nonce or secrets.token_urlsafe(16)
    worker = (_script_safe(_static("vendor/dagre.min.js"), "dagre") + "\n;\n" +
              _script_safe(_static("layout_worker.js"), "layout_worker.js"))
    parts = {
        "CSP": page_csp(nonce, api=api),
        "NONCE": nonce,
        "CSS": _static("app.css").replace("</", "<\\/"),
        "CONFIG": _json_for_html({"api": bool(api), "token": token if api else None}),
        "DATA": _json_for_html(description),
        "WORKER": worker,
        "APP": _script_safe(_static("app.js"), "app.js"),
    }
    # one pass: text substituted in is never searched for placeholders again
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)], _static("index.html"))
