"""``pyonnx convert-opset IN OUT --opset N``: write a copy of a model converted to another
default-domain opset (up or down), computing the same outputs."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert-opset", help="convert a model to another ONNX opset version",
        description="Convert a model's default-domain operators to opset N (7 to the newest "
                    "pyonnx knows), up or down, with subgraphs and model-local functions. A node "
                    "that cannot be expressed at opset N is reported by name and nothing is "
                    "written.")
    p.add_argument("model", help="path to an .onnx file")
    p.add_argument("output", help="where to write the converted model")
    p.add_argument("--opset", type=int, required=True, metavar="N", help="the target opset")
    p.add_argument("--external-data", action="store_true",
                   help="store large initializers in a data file beside the output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyonnx.convert import convert_version
    from pyonnx.io import load, save

    model = load(args.model)
    before = model.opset("")
    out = convert_version(model, args.opset)
    save(out, args.output, external_data=args.external_data)
    print(f"converted from opset {before} to opset {args.opset} (IR version {out.ir_version}); "
          f"written to {args.output}")
    return 0
