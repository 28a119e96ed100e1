"""``pyonnx quantize IN OUT --mode ...``: quantize a model (dynamic int8, static int8 with
calibration samples, weight-only int4, float16) and report the size before and after and how
far the outputs moved."""

from __future__ import annotations

import argparse
import os

import numpy as np

from pyonnx.errors import InvalidArgument

MODES = ("dynamic", "static", "weight-int4", "weight-int8", "fp16", "bf16")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quantize", help="quantize a model (int8 dynamic/static, int4 weights, float16)",
        description="Quantize a model and save it, printing its size before and after and the "
                    "output error against the float model (on the first calibration samples, "
                    "or random inputs). static needs --calibration, a folder of .npz files, "
                    "one sample each, keyed by input name.")
    p.add_argument("model", help="path to an .onnx file")
    p.add_argument("output", help="where to write the quantized model")
    p.add_argument("--mode", choices=MODES, required=True)
    p.add_argument("--calibration", metavar="DIR",
                   help="folder of .npz samples (static mode; also used to measure the error)")
    p.add_argument("--per-channel", action="store_true", help="one weight scale per channel")
    p.add_argument("--format", choices=("QDQ", "QOperator"), default="QDQ",
                   help="static mode: QuantizeLinear/DequantizeLinear pairs (default) or "
                        "QLinear operators")
    p.add_argument("--calibrate-method", default="MinMax",
                   choices=("MinMax", "Entropy", "Percentile", "Distribution"))
    p.add_argument("--block-size", type=int, default=32, help="weight-int4/int8 block size")
    p.add_argument("--asymmetric", action="store_true",
                   help="weight-only: a zero point per block (default symmetric)")
    p.add_argument("--matmulnbits", action="store_true",
                   help="weight-only: com.microsoft MatMulNBits instead of standard "
                        "DequantizeLinear")
    p.add_argument("--gptq", action="store_true",
                   help="weight-only: GPTQ error feedback from the calibration samples (or "
                        "random inputs) instead of plain rounding")
    p.add_argument("--keep-io-types", action="store_true",
                   help="fp16/bf16: keep float32 graph inputs and outputs")
    p.add_argument("--exclude", default="", metavar="NODE,NODE",
                   help="names of nodes to keep in float")
    p.add_argument("--report", action="store_true",
                   help="also print the output error of quantizing each node alone")
    p.add_argument("--target-cosine", type=float, default=None, metavar="C",
                   help="keep the most sensitive nodes in float until the output cosine "
                        "similarity reaches C (dynamic, static, weight modes)")
    p.add_argument("--samples", type=int, default=2,
                   help="input sets the error is measured on (default 2)")
    p.set_defaults(func=run)


class NpzFolderReader:
    """A calibration reader over a folder of .npz files (sorted by name), one sample each."""

    def __init__(self, folder: str) -> None:
        if not os.path.isdir(folder):
            raise InvalidArgument(f"--calibration {folder!r} is not a folder")
        self.files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                            if f.endswith(".npz"))
        if not self.files:
            raise InvalidArgument(f"--calibration {folder!r} holds no .npz files")
        self.i = 0

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        s = self.get_next()
        if s is None:
            raise StopIteration
        return s

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.files):
            return None
        path = self.files[self.i]
        self.i += 1
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def first(self, n: int) -> list[dict[str, np.ndarray]]:
        out = []
        for path in self.files[:n]:
            with np.load(path, allow_pickle=False) as z:
                out.append({k: z[k] for k in z.files})
        return out


def _size(path: str) -> int:
    total = os.path.getsize(path)
    folder = os.path.dirname(os.path.abspath(path))
    data = os.path.join(folder, os.path.basename(path) + ".data")
    return total + (os.path.getsize(data) if os.path.exists(data) else 0)


def run(args: argparse.Namespace) -> int:
    from pyonnx.io import load, save
    from pyonnx.quantization._edit import check_output_path
    from pyonnx.quantization.report import format_report, node_sensitivity, output_error

    out_path = check_output_path(args.output, "OUT")
    model = load(args.model)
    reader = NpzFolderReader(args.calibration) if args.calibration else None
    if args.mode == "static" and reader is None:
        raise InvalidArgument("--mode static needs --calibration DIR (a folder of .npz samples)")
    if reader is not None:
        feeds = reader.first(max(args.samples, 1))
    else:
        from pyonnx.optimizer.verify import random_feeds

        feeds = random_feeds(model, max(args.samples, 1), batch=1)
    exclude = [s.strip() for s in args.exclude.split(",") if s.strip()]
    q, options, mode = _quantizer(args, exclude, reader, feeds)
    sensitivity = None
    if args.report or args.target_cosine is not None:
        if mode is None:
            raise InvalidArgument(f"--report and --target-cosine need a quantizing mode, not "
                                  f"{args.mode}")
        calib = reader.first(32) if reader is not None else None
        sensitivity = node_sensitivity(model, feeds, mode=mode, calibration_feeds=calib,
                                       **options)
    if args.target_cosine is not None:
        from pyonnx.quantization.report import quantize_to_target

        calib = reader.first(32) if reader is not None else None
        result, kept, _ = quantize_to_target(model, feeds, min_cosine=args.target_cosine,
                                             mode=mode, calibration_feeds=calib,
                                             sensitivity=sensitivity, **options)
        if kept:
            print(f"kept in float to reach cosine {args.target_cosine}: {', '.join(kept)}")
    else:
        result = q(model)
    save(result, out_path)
    from pyonnx.runtime import InferenceSession

    ref_sess, q_sess = InferenceSession(model), InferenceSession(result)
    cast = args.mode in ("fp16", "bf16") and not args.keep_io_types
    ref = [[np.asarray(y) for y in ref_sess.run(None, f)] for f in feeds]
    got = [[np.asarray(y) for y in q_sess.run(None, _half_feed(f, args.mode) if cast else f)]
           for f in feeds]
    err = output_error(ref, got)
    before, after = _size(args.model), _size(out_path)
    print(f"size: {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB ({before / max(after, 1):.2f}x "
          f"smaller)")
    print(f"output error on {len(feeds)} input set(s): cosine {err.cosine:.6f}, max |y - y_float| "
          f"/ max |y_float| {err.max_rel_error:.3e}")
    if sensitivity is not None and args.report:
        print("per-node error when only that node is quantized (worst first):")
        print(format_report(sensitivity))
    print(f"written to {out_path}")
    return 0


def _half_feed(feed: dict[str, np.ndarray], mode: str) -> dict[str, np.ndarray]:
    import ml_dtypes

    dt = np.float16 if mode == "fp16" else ml_dtypes.bfloat16
    return {k: v.astype(dt) if v.dtype == np.float32 else v for k, v in feed.items()}


def _quantizer(args: argparse.Namespace, exclude: list[str], reader, feeds):
    """(model -> quantized model, the options for the report functions, report mode)."""
    from pyonnx.quantization import (CalibrationMethod, QuantFormat, quantize_dynamic_model,
                                     quantize_static_model, quantize_weight_only_model)
    from pyonnx.quantization.float16 import convert_float_to_bfloat16, convert_float_to_float16

    if args.mode == "dynamic":
        opts = dict(per_channel=args.per_channel)
        return (lambda m: quantize_dynamic_model(m, nodes_to_exclude=exclude, **opts)), opts, \
            "dynamic"
    if args.mode == "static":
        opts = dict(quant_format=QuantFormat[args.format], per_channel=args.per_channel,
                    calibrate_method=CalibrationMethod[args.calibrate_method])
        return (lambda m: quantize_static_model(m, reader, nodes_to_exclude=exclude, **opts)), \
            opts, "static"
    if args.mode.startswith("weight-"):
        bits = 4 if args.mode == "weight-int4" else 8
        opts = dict(block_size=args.block_size, symmetric=not args.asymmetric,
                    form="matmulnbits" if args.matmulnbits else "qdq")
        if args.gptq:
            opts.update(algorithm="gptq",
                        calibration_feeds=reader.first(32) if reader is not None else feeds)
        return (lambda m: quantize_weight_only_model(m, bits=bits, nodes_to_exclude=exclude,
                                                     **opts)), opts, args.mode
    conv = convert_float_to_float16 if args.mode == "fp16" else convert_float_to_bfloat16
    # the sample inputs also find the values that would overflow half precision
    return (lambda m: conv(m, keep_io_types=args.keep_io_types, node_block_list=exclude,
                           sample_feeds=feeds)), {}, None
