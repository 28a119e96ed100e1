"""``pyonnx infer-shapes MODEL -o OUT``: write a copy of a model with every value's type and
shape inferred (graph outputs and value_info), optionally after fixing input dims."""

from __future__ import annotations

import argparse

from pyonnx.errors import InvalidArgument
from pyonnx.io import load, save
from pyonnx.ir import TensorType


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "infer-shapes", help="infer every value's type and shape and save the annotated model",
        description="Infer the type and shape of every value of a model (symbolic dims where "
                    "they are not fixed, small shape computations evaluated) and save a copy "
                    "with graph outputs and value_info filled in.")
    p.add_argument("model", help="path to an .onnx file")
    p.add_argument("-o", "--output", required=True, help="where to write the annotated model")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=DIMS",
                   help="fix the dims of a graph input before inference, e.g. "
                        "input=1,3,224,224 (a dim may be a symbol name or '?'; 'NAME=' is a "
                        "scalar); repeat for several inputs")
    p.add_argument("--strict", action="store_true",
                   help="fail on a contradiction between inferred and declared types")
    p.add_argument("--no-data-prop", action="store_true",
                   help="do not evaluate shape computations (Shape -> ... -> Reshape)")
    p.add_argument("--initializer-inputs", choices=("auto", "value", "unknown"), default="auto",
                   help="what an initializer that is also a graph input means: 'value' uses "
                        "its stored value (onnx's behaviour), 'unknown' treats it as any feed, "
                        "'auto' (default) uses the value only below IR version 4, where a feed "
                        "cannot override it")
    p.add_argument("--check-type", action="store_true",
                   help="also check each node's input types against its operator's type "
                        "constraints (onnx's check_type)")
    p.add_argument("--external-data", action="store_true",
                   help="store large initializers in a data file beside the output")
    p.set_defaults(func=run)


def parse_input_shape(text: str) -> tuple[str, list[int | str | None]]:
    """``NAME=1,3,224,224`` -> (name, dims); a dim is an int, a symbol or ``?`` (unknown)."""
    name, sep, dims = text.rpartition("=")
    if not sep or not name:
        raise InvalidArgument(f"--input-shape {text!r}: expected NAME=DIMS, e.g. input=1,3,224,224")
    out: list[int | str | None] = []
    for part in (d.strip() for d in dims.split(",")) if dims.strip() else ():
        if part == "?":
            out.append(None)
        elif part.lstrip("-").isdigit():
            v = int(part)
            if v < 0:
                raise InvalidArgument(f"--input-shape {text!r}: dim {v} is negative")
            out.append(v)
        elif part:
            out.append(part)
        else:
            raise InvalidArgument(f"--input-shape {text!r}: empty dim")
    return name, out


def run(args: argparse.Namespace) -> int:
    from pyonnx.shape_inference import infer_shapes

    shapes: dict[str, list[int | str | None]] = {}
    for text in args.input_shape:
        name, dims = parse_input_shape(text)
        shapes[name] = dims
    model = load(args.model)
    out = infer_shapes(model, input_shapes=shapes or None, data_prop=not args.no_data_prop,
                       strict=args.strict, initializer_inputs=args.initializer_inputs,
                       check_type=args.check_type)
    save(out, args.output, external_data=args.external_data)
    values = [v for n in out.graph.all_nodes() for v in n.outputs if v.name]
    typed = [v for v in values if v.type is not None]
    concrete = [v for v in typed if isinstance(v.type, TensorType) and v.type.shape is not None
                and all(isinstance(d, int) for d in v.type.shape)]
    print(f"{len(typed)}/{len(values)} values typed, {len(concrete)} with concrete shapes; "
          f"written to {args.output}")
    return 0
