"""The viewer's local server: the page on the loopback interface, behind a launch token.

It serves exactly three things, each only to a request that carries the launch token
(``?token=...``, compared in constant time) and a ``Host`` header naming this server
(``127.0.0.1:PORT`` or ``localhost:PORT``, which stops DNS-rebinding pages from reading it):

* ``GET /``: the page (:func:`~pyonnx.viewer.page.render_page`);
* ``POST /api/profile``: run the model with pyonnx's profiler and return the profile overlay;
* ``POST /api/compare?engine=NAME``: compare pyonnx with an engine and return the overlay.

Anything else is refused: 403 without the token or with a foreign host, 404 for another path,
405 for another method. The standard library's threading HTTP server is enough for one local
user; no port is opened beyond 127.0.0.1.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pyonnx.errors import InvalidArgument, PyOnnxError
from pyonnx.ir import Model
from pyonnx.viewer.page import page_csp, render_page

__all__ = ["ViewerServer"]

_ENGINES = ("onnxruntime", "reference")


class ViewerServer:
    """Serves one model's page on ``127.0.0.1:port`` (``port`` 0 picks a free one).

    ``description`` is :func:`~pyonnx.viewer.describe_model`'s result; ``model`` the model it
    describes (the on-demand profile and comparison run it). :attr:`url` is the address to open,
    token included. Use :meth:`start` (a background thread) or :meth:`serve_forever`, and
    :meth:`close`.
    """

    def __init__(self, description: dict[str, Any], model: Model, *, port: int = 0,
                 token: str | None = None) -> None:
        if not 0 <= port <= 65535:
            raise InvalidArgument(f"port {port} is not a TCP port (0 to 65535)")
        self.description = description
        self.model = model
        self.token = token or secrets.token_urlsafe(24)
        self._lock = threading.Lock()  # one profile or comparison at a time
        handler = type("_Handler", (_Handler,), {"viewer": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    @property
    def allowed_hosts(self) -> frozenset[str]:
        return frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})

    def start(self) -> "ViewerServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name="pyonnx-view")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
        self.httpd.server_close()

    def __enter__(self) -> "ViewerServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # what the API runs (kept here so tests can substitute engines)
    def run_profile(self) -> dict[str, Any]:
        from pyonnx.viewer.overlays import profile_model

        return profile_model(self.model)

    def run_compare(self, engine: str) -> dict[str, Any]:
        from pyonnx.viewer.overlays import compare_overlay

        if engine not in _ENGINES:
            raise InvalidArgument(f"engine {engine!r}: choose one of {', '.join(_ENGINES)}")
        return compare_overlay(self.model, engine)


class _Handler(BaseHTTPRequestHandler):
    viewer: ViewerServer
    server_version = "pyonnx-view"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # a local viewer's access log would only clutter the terminal

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
              ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send(status, json.dumps({"error": message}).encode(), "application/json")

    def _allowed(self) -> tuple[str, dict[str, list[str]]] | None:
        """The path and query of an acceptable request; None (after answering) otherwise."""
        host = self.headers.get("Host", "")
        if host not in self.viewer.allowed_hosts:
            self._error(403, "foreign Host header")
            return None
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        given = (query.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), self.viewer.token.encode()):
            self._error(403, "missing or wrong launch token")
            return None
        return parts.path, query

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        req = self._allowed()
        if req is None:
            return
        path, _ = req
        if path != "/":
            self._error(404, "not found")
            return
        nonce = secrets.token_urlsafe(16)
        html = render_page(self.viewer.description, api=True, token=self.viewer.token,
                           nonce=nonce)
        self._send(200, html.encode("utf-8"), "text/html; charset=utf-8",
                   {"Content-Security-Policy": page_csp(nonce, api=True)})

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        req = self._allowed()
        if req is None:
            return
        path, query = req
        if path not in ("/api/profile", "/api/compare"):
            self._error(404, "not found")
            return
        try:
            with self.viewer._lock:
                if path == "/api/profile":
                    result = self.viewer.run_profile()
                    self.viewer.description["profile"] = result
                else:
                    engine = (query.get("engine") or ["onnxruntime"])[0]
                    result = self.viewer.run_compare(engine)
                    self.viewer.description["compare"] = result
        except PyOnnxError as e:
            self._error(400, str(e))
            return
        except Exception as e:  # noqa: BLE001 - the page shows what went wrong
            self._error(500, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")
            return
        from pyonnx.viewer.page import _json_for_html

        self._send(200, _json_for_html(result).encode(), "application/json")

    def _refuse(self) -> None:
        if self._allowed() is not None:
            self._error(405, "method not allowed")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse
