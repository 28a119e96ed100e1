"""``pyonnx print MODEL``: the model in the ONNX textual syntax (what ``pyonnx parse`` reads).

The module is named after the sub-command; it never uses the ``print`` builtin by name, which
the module name does not shadow inside it anyway, but writes to ``sys.stdout`` explicitly.
"""

from __future__ import annotations

import argparse
import sys

from pyonnx.errors import InvalidArgument
from pyonnx.io import load
from pyonnx.io.text import to_text


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("print", help="print a model in the ONNX textual syntax",
                       description="Print a model in the ONNX textual syntax (the one "
                                   "onnx.parser reads), exactly as onnx.printer writes it. "
                                   "onnx's text leaves out 4-bit, 2-bit and complex tensor "
                                   "values, sparse tensors and some function details; "
                                   "--lossless writes them too, so the text parses back into "
                                   "the same model (pyonnx parse). --max-elements shortens "
                                   "long values for reading, and then the text no longer "
                                   "parses.")
    p.add_argument("model", help="path to an .onnx file")
    p.add_argument("--max-elements", type=int, default=None, metavar="N",
                   help="show at most N values of each tensor, then '...' (for reading only)")
    p.add_argument("--lossless", action="store_true",
                   help="also write what onnx.printer leaves out, so the text parses back into "
                        "the same model")
    p.add_argument("--output", "-o", metavar="FILE", help="write the text to FILE instead of "
                                                           "standard output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.max_elements is not None and args.max_elements < 0:
        raise InvalidArgument(f"--max-elements must be 0 or more, not {args.max_elements}")
    # onnx.printer's text (and so to_text's) ends at the closing brace: end the file's line
    text = to_text(load(args.model), max_elements=args.max_elements,
                   lossless=args.lossless) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0
