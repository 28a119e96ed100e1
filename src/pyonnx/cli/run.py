"""``pyonnx run MODEL``: run a model on inputs from .npy files or random data, show the outputs."""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from pyonnx.cli._format import summarize
from pyonnx.errors import InvalidArgument
from pyonnx.ir import DataType, SequenceType, TensorType, Value
from pyonnx.runtime import InferenceSession


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a model and summarize (and save) its outputs",
                       description="Run a model on inputs read from .npy files (--input) or made "
                                   "up (--random), print each output's name, dtype, shape and "
                                   "statistics, and optionally save them as .npy files.")
    p.add_argument("model", help="path to an .onnx file")
    p.add_argument("--input", "-i", action="append", default=[], metavar="NAME=FILE.npy",
                   help="feed input NAME from a .npy file (repeatable)")
    p.add_argument("--random", action="store_true",
                   help="make up every input not given with --input: floats from a standard "
                        "normal, integers in [0, 10), booleans at random; symbolic dims are 1 "
                        "unless set with --dim")
    p.add_argument("--dim", action="append", default=[], metavar="NAME=VALUE",
                   help="value of a symbolic dimension for --random (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    p.add_argument("--output-dir", "-o", metavar="DIR",
                   help="save each output as DIR/<name>.npy")
    p.set_defaults(func=run)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidArgument(f"{what} {item!r} must look like NAME=VALUE")
        out[name] = value
    return out


def random_value(v: Value, dims: dict[str, int], rng: np.random.Generator) -> Any:
    """Made-up data of the input's type (what ``--random`` feeds)."""
    t = v.type
    if isinstance(t, SequenceType) and isinstance(t.elem_type, TensorType):
        return [random_value(Value(v.name, t.elem_type), dims, rng)]
    if not isinstance(t, TensorType):
        raise InvalidArgument(f"input {v.name!r} has type {t}; --random can only make tensors "
                              f"(feed it with --input)")
    if t.shape is None:
        raise InvalidArgument(f"input {v.name!r} has unknown rank; feed it with --input")
    shape = []
    for d in t.shape:
        if isinstance(d, int):
            shape.append(d)
        elif isinstance(d, str) and d in dims:
            shape.append(dims[d])
        else:
            shape.append(1)
    dt = t.elem_type
    np_dtype = dt.numpy
    if dt == DataType.STRING:
        return np.full(shape, "a", dtype=object)
    if dt == DataType.BOOL:
        return rng.random(shape) < 0.5
    if np_dtype.kind in "iu":
        return rng.integers(0, 10, size=shape).astype(np_dtype)
    return rng.standard_normal(shape).astype(np_dtype)


def run(args: argparse.Namespace) -> int:
    sess = InferenceSession(args.model)
    files = _pairs(args.input, "--input")
    dims = {k: int(v) for k, v in _pairs(args.dim, "--dim").items()}
    rng = np.random.default_rng(args.seed)
    graph_inputs = {v.name: v for v in sess.model.graph.inputs}
    known = {a.name for a in sess.get_inputs()} | {a.name for a in sess.get_overridable_initializers()}
    feeds: dict[str, Any] = {}
    for name, path in files.items():
        if name not in known:
            raise InvalidArgument(f"--input {name}: the model has no input of that name "
                                  f"(inputs: {', '.join(sorted(known))})")
        try:
            feeds[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InvalidArgument(f"--input {name}: cannot read {path!r} as a .npy file: {e}"
                                  ) from e
    missing = [a.name for a in sess.get_inputs() if a.name not in feeds]
    if missing and not args.random:
        raise InvalidArgument(f"no data for input(s) {', '.join(missing)}: give --input "
                              f"NAME=FILE.npy or --random")
    for name in missing:
        feeds[name] = random_value(graph_inputs[name], dims, rng)
    for name, value in feeds.items():
        print(f"input  {name}: {summarize(value)}")
    outputs = sess.run(None, feeds)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    for meta, value in zip(sess.get_outputs(), outputs):
        print(f"output {meta.name}: {summarize(value)}")
        if args.output_dir:
            safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in meta.name)
            path = os.path.join(args.output_dir, f"{safe}.npy")
            np.save(path, np.asarray(value) if not isinstance(value, (list, dict)) else
                    np.array(value, dtype=object), allow_pickle=True)
            print(f"       saved to {path}")
    return 0
