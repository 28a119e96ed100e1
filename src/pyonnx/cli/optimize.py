"""``pyonnx optimize IN OUT``: write an optimized copy of a model that any runtime can run,
verified by running the original and the result, with a report of operator counts."""

from __future__ import annotations

import argparse

from pyonnx.cli.infer_shapes import parse_input_shape
from pyonnx.io import load, save


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "optimize", help="optimize a model offline (standard or onnxruntime operators) and "
                         "verify the result",
        description="Optimize a model and save it. --level basic keeps standard ONNX operators "
                    "and the opset imports; --level extended also uses the com.microsoft fused "
                    "operators onnxruntime runs. The result is checked by running it and the "
                    "original on random inputs; a difference names the pass responsible.")
    p.add_argument("model", help="path to an .onnx file")
    p.add_argument("output", help="where to write the optimized model")
    p.add_argument("--level", choices=("basic", "extended"), default="basic")
    p.add_argument("--passes", default=None, metavar="NAME,NAME,...",
                   help="run these passes instead of the level's list (see --list-passes)")
    p.add_argument("--list-passes", action="store_true", help="print the pass names and exit")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=DIMS",
                   help="fix the dims of a graph input first, e.g. input_ids=1,128; repeat for "
                        "several inputs (the result then accepts only those shapes)")
    p.add_argument("--verify", type=int, default=2, metavar="N",
                   help="random input sets to verify with (0: do not verify; default 2)")
    p.add_argument("--external-data", action="store_true",
                   help="store large initializers in a data file beside the output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyonnx.optimizer import PASSES
    from pyonnx.optimizer.api import op_counts, optimize_model

    if args.list_passes:
        print("\n".join(PASSES))
        return 0
    shapes = dict(parse_input_shape(t) for t in args.input_shape)
    passes = [s.strip() for s in args.passes.split(",") if s.strip()] if args.passes else None
    model = load(args.model)
    before = op_counts(model)
    out = optimize_model(model, level=args.level, passes=passes, input_shapes=shapes or None,
                         verify=max(args.verify, 0))
    after = op_counts(out)
    save(out, args.output, external_data=args.external_data)
    print(_report(before, after))
    verified = f"verified on {args.verify} random input set(s)" if args.verify > 0 \
        else "not verified"
    print(f"{sum(before.values())} -> {sum(after.values())} nodes ({args.level}, {verified}); "
          f"written to {args.output}")
    return 0


def _report(before: dict[str, int], after: dict[str, int]) -> str:
    """A table of operator counts before and after, largest changes first."""
    ops = sorted(set(before) | set(after),
                 key=lambda k: (-(abs(after.get(k, 0) - before.get(k, 0))), k))
    width = max([len(o) for o in ops] + [8])
    lines = [f"{'operator':<{width}}  {'before':>6}  {'after':>6}"]
    for o in ops:
        b, a = before.get(o, 0), after.get(o, 0)
        lines.append(f"{o:<{width}}  {b:>6}  {a:>6}")
    return "\n".join(lines)
