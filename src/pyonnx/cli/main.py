"""Entry point of the ``pyonnx`` command: dispatches to one module per sub-command.

Every public module of this package (other than this one) is a sub-command; it defines ``register(subparsers)`` (adding its parser, with its help) and
``run(args) -> int``. Errors pyonnx raises on purpose print as one line, without a traceback, and
the command exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pyonnx import __version__
from pyonnx.errors import PyOnnxError



def _command_modules() -> list[str]:
    """Every public module of this package except ``main`` is a sub-command."""
    import pkgutil

    import pyonnx.cli as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                  if not m.name.startswith("_") and m.name != "main")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every sub-command registered."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="pyonnx",
        description="Inspect, check and run ONNX models with pyonnx.")
    parser.add_argument("--version", action="version", version=f"pyonnx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _command_modules():
        module = importlib.import_module(f"pyonnx.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PyOnnxError as e:
        print(f"pyonnx {args.command}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"pyonnx {args.command}: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pyonnx {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
