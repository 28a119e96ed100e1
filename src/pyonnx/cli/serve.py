"""``pyonnx serve MODEL_OR_REPOSITORY``: serve models over KServe v2 REST and gRPC.

The server lives in :mod:`pyonnx.serving` (the ``serve`` extra); it is imported only when the
command runs, so ``pyonnx --help`` works without the extra.
"""

from __future__ import annotations

import argparse
import sys

from pyonnx.errors import InvalidArgument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="serve a model or a Triton-layout model repository (KServe v2 REST + gRPC)",
        description="Serve one .onnx file, or a model repository in Triton's layout "
                    "(NAME/config.pbtxt, NAME/VERSION/model.onnx), over the KServe v2 inference "
                    "protocol: REST (with the binary tensor extension) and gRPC, as Triton "
                    "clients expect. Prometheus metrics at /metrics. SIGTERM drains: in-flight "
                    "requests finish, new ones are refused, exit status 0. Needs the serve "
                    "extra: pip install 'pyonnx[serve]'.")
    p.add_argument("model", metavar="MODEL_OR_REPOSITORY", help=".onnx file or repository folder")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 "
                        "for every interface)")
    p.add_argument("--http-port", type=int, default=8000, help="REST port (default 8000; 0: any free)")
    p.add_argument("--grpc-port", type=int, default=8001,
                   help="gRPC port (default 8001; 0: any free; -1: no gRPC)")
    p.add_argument("--max-batch-size", type=int, default=0, metavar="N",
                   help="batch concurrent requests up to N rows, for models without a "
                        "config.pbtxt whose dimension 0 is dynamic on every input and output "
                        "(default 0: no dynamic batching)")
    p.add_argument("--max-queue-delay-ms", type=float, default=0.0, metavar="T",
                   help="with --max-batch-size, how long a batch may wait for more requests "
                        "(default 0: batch only what is already queued)")
    p.add_argument("--instances", type=int, default=1, metavar="K",
                   help="concurrent executions per model, for models without instance_group "
                        "(default 1)")
    p.add_argument("--max-queue-size", type=int, default=256,
                   help="requests waiting per model; more are refused at once (default 256)")
    p.add_argument("--request-timeout-s", type=float, default=60.0,
                   help="longest a request may wait and run (default 60)")
    p.add_argument("--max-request-mb", type=float, default=64.0,
                   help="largest request body or gRPC message, in MiB (default 64)")
    p.add_argument("--no-access-log", action="store_true",
                   help="do not write a JSON access-log line per request to stderr")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from pyonnx.serving.app import serve
        from pyonnx.serving.config import ServerDefaults
    except ImportError as e:
        raise InvalidArgument(f"pyonnx serve needs the serve extra ({e.name} is missing): "
                              f"pip install 'pyonnx[serve]'") from None
    for flag, value, low in (("--max-batch-size", args.max_batch_size, 0),
                             ("--instances", args.instances, 1),
                             ("--max-queue-size", args.max_queue_size, 1)):
        if value < low:
            raise InvalidArgument(f"{flag} must be >= {low}, got {value}")
    if args.max_queue_delay_ms < 0 or args.request_timeout_s <= 0 or args.max_request_mb <= 0:
        raise InvalidArgument("--max-queue-delay-ms must be >= 0, --request-timeout-s and "
                              "--max-request-mb > 0")
    defaults = ServerDefaults(max_batch_size=args.max_batch_size,
                              max_queue_delay_us=int(args.max_queue_delay_ms * 1000),
                              instance_count=args.instances, max_queue_size=args.max_queue_size,
                              request_timeout_s=args.request_timeout_s,
                              max_request_bytes=int(args.max_request_mb * (1 << 20)))

    def announce(http_port: int, grpc_port: int | None) -> None:
        # one machine-readable line: scripts (and the tests) read the ports from it
        print(f"pyonnx serve: listening http={args.host}:{http_port} "
              f"grpc={args.host}:{grpc_port if grpc_port is not None else 'off'}",
              file=sys.stderr, flush=True)

    return serve(args.model, host=args.host, http_port=args.http_port,
                 grpc_port=None if args.grpc_port < 0 else args.grpc_port, defaults=defaults,
                 access_log=not args.no_access_log, log_level=args.log_level, announce=announce)
