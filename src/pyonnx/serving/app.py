"""Run the REST (uvicorn) and gRPC (grpcio) front ends of one server, and drain on SIGTERM.

SIGTERM or SIGINT starts a graceful drain: the server stops accepting connections and RPCs,
answers requests that reach it anyway with 503/UNAVAILABLE, lets every in-flight request finish
(queued ones included), then exits with status 0. A second SIGINT stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading

import uvicorn

from pyonnx.serving.app_logging import setup_logging
from pyonnx.serving.config import ServerDefaults
from pyonnx.serving.grpc_server import build_grpc_server
from pyonnx.serving.rest import build_app
from pyonnx.serving.server import InferenceServer

log = logging.getLogger("pyonnx.serving")


class _Uvicorn(uvicorn.Server):
    """uvicorn's server with signal handling left to :func:`serve` (uvicorn's own handler
    re-raises the signal after shutting down, which would turn a clean drain into a kill)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def serve(location: str, *, host: str = "127.0.0.1", http_port: int = 8000,
          grpc_port: int | None = 8001, defaults: ServerDefaults | None = None,
          access_log: bool = True, log_level: str = "info", drain_timeout_s: float = 60.0,
          announce=None) -> int:
    """Serve the model or repository at ``location`` until SIGTERM/SIGINT; returns the exit status.

    ``http_port``/``grpc_port`` 0 pick free ports; ``grpc_port`` None turns gRPC off.
    ``announce(http_port, grpc_port)`` is called once both listen (the CLI prints the ports).
    """
    setup_logging(log_level, access_log)
    server = InferenceServer(location, defaults)
    server.start()
    grpc_server = None
    bound_grpc = None
    if grpc_port is not None:
        grpc_server, bound_grpc = build_grpc_server(server, _hostport(host, grpc_port))
        grpc_server.start()
    config = uvicorn.Config(build_app(server), host=host, port=http_port, access_log=False,
                            log_level="warning", lifespan="off", server_header=False,
                            timeout_graceful_shutdown=int(drain_timeout_s))
    web = _Uvicorn(config)
    sock = config.bind_socket()
    bound_http = sock.getsockname()[1]
    grpc_stopped = threading.Event()

    def drain(signum, frame) -> None:
        if web.should_exit:
            if signum == signal.SIGINT:
                web.force_exit = True
            return
        log.info("signal %s: draining (in-flight requests finish, new ones are refused)",
                 signal.Signals(signum).name)
        server.begin_drain()
        web.should_exit = True
        if grpc_server is not None:
            # stop() refuses new RPCs now and lets running ones finish within the grace period
            threading.Thread(target=lambda: (grpc_server.stop(drain_timeout_s).wait(),
                                             grpc_stopped.set()), daemon=True).start()

    previous = {s: signal.signal(s, drain) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        log.info("serving %s: HTTP on %s:%d, gRPC on %s:%s", location, host, bound_http, host,
                 bound_grpc if bound_grpc is not None else "off")
        if announce is not None:
            announce(bound_http, bound_grpc)
        asyncio.run(web.serve(sockets=[sock]))
        if grpc_server is not None:
            if not web.should_exit:  # uvicorn stopped on its own: stop gRPC too
                grpc_server.stop(drain_timeout_s).wait()
            else:
                grpc_stopped.wait(drain_timeout_s + 5)
        server.shutdown()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    log.info("stopped")
    return 0


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _main() -> int:  # python -m pyonnx.serving.app MODEL (same as pyonnx serve)
    from pyonnx.cli.main import main
    return main(["serve", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(_main())
