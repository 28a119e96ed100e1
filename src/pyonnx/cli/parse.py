"""``pyonnx parse FILE -o MODEL``: read a model in the ONNX textual syntax, write the .onnx file."""

from __future__ import annotations

import argparse
import os
import sys

from pyonnx.errors import DecodeError
from pyonnx.io import save
from pyonnx.io.text import parse_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parse", help="turn ONNX text (as pyonnx print writes it) into an .onnx",
                       description="Read a model written in the ONNX textual syntax and save it "
                                   "as an .onnx file. External data locations in the text are "
                                   "relative to the text file's folder. A syntax error is "
                                   "reported with its line and column.")
    p.add_argument("file", help="the text file ('-' for standard input)")
    p.add_argument("--output", "-o", required=True, metavar="MODEL",
                   help="path of the .onnx file to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.file == "-":
        text = sys.stdin.read()
        base_dir = os.getcwd()
    else:
        with open(args.file, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
        base_dir = os.path.dirname(os.path.abspath(args.file))
    try:
        model = parse_model(text, base_dir=base_dir)
    except DecodeError as e:  # name the file: the message itself gives line and column
        raise DecodeError(f"{args.file}: {e}") from e
    save(model, args.output)
    return 0
