"""``pyonnx check MODEL [--full]``: is a model valid ONNX? Prints ``MODEL: valid`` or one
violation per line (exit status 1); warnings (an IR version older than the opsets need) go to
standard error and do not change the status."""

from __future__ import annotations

import argparse
import sys
import warnings

from pyonnx.checker import check_model
from pyonnx.errors import ValidationError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="check a model against the ONNX specification",
                       description="Check a model against the rules of the ONNX IR "
                                   "specification (SSA, topological order, defined inputs, "
                                   "opset imports, operator signatures, tensors, functions) "
                                   "and print every violation, one per line.")
    p.add_argument("model", help="path to an .onnx file")
    p.add_argument("--full", action="store_true",
                   help="also check the types of node inputs and outputs against the "
                        "operators' type constraints and run strict shape inference")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            check_model(args.model, full_check=args.full)
        except ValidationError as e:
            _print_warnings(args.model, caught)
            for line in e.violations:
                print(line)
            return 1
    _print_warnings(args.model, caught)
    print(f"{args.model}: valid")
    return 0


def _print_warnings(model: str, caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        print(f"{model}: warning: {w.message}", file=sys.stderr)
