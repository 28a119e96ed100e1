"""``pyonnx compare MODEL``: run a model on several engines, find the first node where they
disagree, and optionally reduce the disagreement to a small model (``--reduce OUT``)."""

from __future__ import annotations

import argparse

from pyonnx.errors import InvalidArgument


def register(sub: argparse._SubParsersAction) -> None:
    from pyonnx.debug import DEFAULT_ATOL, DEFAULT_RTOL

    p = sub.add_parser(
        "compare", help="compare engines value by value and find the first disagreeing node",
        description="Run MODEL on several engines with every intermediate value exposed as a "
                    "graph output (graph optimizations off), compare each value with the "
                    "baseline engine in topological order, and print the first node whose "
                    "outputs disagree beyond the tolerance, with both values summarised. An "
                    "engine that cannot run the model is reported. Exit status: 0 when the "
                    "engines agree, 1 when they disagree or fewer than two ran.")
    p.add_argument("model", help="path to an .onnx file")
    p.add_argument("--engines", default="pyonnx,onnxruntime,reference",
                   help="comma-separated engines among pyonnx, onnxruntime, reference "
                        "(default: all three)")
    p.add_argument("--baseline", help="the engine the others are compared with (default: "
                                      "onnxruntime, else reference, else the first that ran)")
    p.add_argument("--inputs", "-i", action="append", default=[],
                   metavar="FILE.npz | NAME=FILE.npy",
                   help="feed inputs from files (repeatable); inputs not given are random")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,...",
                   help="shape of a random input (repeatable); otherwise symbolic dims are 1 "
                        "unless set with --dim")
    p.add_argument("--dim", action="append", default=[], metavar="SYMBOL=VALUE",
                   help="value of a symbolic dimension for random inputs (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--rtol", type=float, default=DEFAULT_RTOL,
                   help=f"relative tolerance (default {DEFAULT_RTOL:g})")
    p.add_argument("--atol", type=float, default=DEFAULT_ATOL,
                   help=f"absolute tolerance (default {DEFAULT_ATOL:g})")
    p.add_argument("--reduce", metavar="OUT.onnx",
                   help="write the smallest sub-model that still disagrees to OUT.onnx and "
                        "its inputs (the baseline's values) to OUT.inputs.npz")
    p.set_defaults(func=run)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        if not sep or not name or not value:
            raise InvalidArgument(f"{what} {item!r} must look like NAME=VALUE")
        out[name] = value
    return out


def _shape(text: str, name: str) -> list[int]:
    parts = text.replace("x", ",").strip("[]").split(",")
    try:
        dims = [int(p) for p in parts if p.strip()]
    except ValueError:
        raise InvalidArgument(f"--input-shape {name}={text}: dims must be integers, like "
                              f"{name}=1,3,224,224") from None
    if any(d < 0 for d in dims):
        raise InvalidArgument(f"--input-shape {name}={text}: dims must not be negative")
    return dims


def run(args: argparse.Namespace) -> int:
    from pyonnx.debug import compare, load_inputs, reduce
    from pyonnx.io import load

    shapes = {k: _shape(v, k) for k, v in _pairs(args.input_shape, "--input-shape").items()}
    try:
        dims = {k: int(v) for k, v in _pairs(args.dim, "--dim").items()}
    except ValueError:
        raise InvalidArgument("--dim values must be integers, like batch=1") from None
    feeds = load_inputs(args.inputs)
    model = load(args.model)
    report = compare(model, engines=args.engines, inputs=feeds, input_shapes=shapes, dims=dims,
                     seed=args.seed, rtol=args.rtol, atol=args.atol, baseline=args.baseline)
    print(report.format())
    if args.reduce:
        if report.first is None:
            print("--reduce: nothing to reduce, the engines agree")
        else:
            result = reduce(model, report, out=args.reduce)
            print(f"reduced to {result.nodes} node(s): {result.path}, inputs in "
                  f"{result.inputs_path}")
            print(f"reproduce with: pyonnx compare {result.path} --inputs {result.inputs_path} "
                  f"--engines {report.baseline},{report.first.engine}")
    return 0 if report.agree else 1
