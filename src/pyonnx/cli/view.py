"""``pyonnx view MODEL``: look at a model in the browser, with inferred shapes, checker
violations, weight statistics, and optionally a profile and a cross-engine comparison."""

from __future__ import annotations

import argparse
import os
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "view", help="open the model in a browser viewer (or write it as one HTML file)",
        description="Draw MODEL as a graph in the browser: inferred types and symbolic shapes, "
                    "attributes, weight statistics (never the weights), checker violations on "
                    "their nodes, subgraphs and local functions expandable in place, search, "
                    "and overlays for a profile and a cross-engine comparison. By default a "
                    "local server starts on 127.0.0.1 with a random launch token in its URL "
                    "(press Ctrl-C to stop it); --html writes one self-contained file instead.")
    p.add_argument("model", help="path to an .onnx file")
    p.add_argument("--profile", metavar="TRACE.json | run",
                   help="a profile written with SessionOptions.enable_profiling (pyonnx or "
                        "onnxruntime) to color nodes by time; 'run' profiles the model now "
                        "with pyonnx on random inputs (graph optimizations off)")
    p.add_argument("--compare-with", metavar="ENGINE", choices=("onnxruntime", "reference"),
                   help="compare pyonnx with ENGINE (onnxruntime or reference) value by value "
                        "and mark the nodes that disagree")
    p.add_argument("--port", type=int, default=0,
                   help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--html", metavar="OUT.html",
                   help="write one self-contained HTML file (no weights) and exit")
    p.add_argument("--no-browser", action="store_true",
                   help="print the URL without opening a browser")
    p.add_argument("--no-infer", action="store_true",
                   help="show the declared types only (skip shape inference)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyonnx.io import load
    from pyonnx.viewer import (ViewerServer, compare_overlay, describe_model, profile_from_trace,
                               profile_model)
    from pyonnx.viewer.page import render_page

    model = load(args.model)
    desc = describe_model(model, title=os.path.basename(args.model), infer=not args.no_infer)
    if args.profile == "run" and not os.path.exists("run"):
        desc["profile"] = profile_model(model)
    elif args.profile:
        desc["profile"] = profile_from_trace(model, args.profile)
    if args.compare_with:
        print(f"pyonnx view: comparing pyonnx with {args.compare_with} ...", file=sys.stderr)
        desc["compare"] = compare_overlay(model, args.compare_with)
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(render_page(desc))
        print(f"wrote {args.html}")
        return 0
    server = ViewerServer(desc, model, port=args.port)
    print(f"pyonnx view: serving {args.model} at {server.url}", flush=True)
    print("press Ctrl-C to stop", flush=True)
    if not args.no_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    finally:
        server.httpd.server_close()
    return 0
