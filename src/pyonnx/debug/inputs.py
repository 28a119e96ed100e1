"""Inputs for debugging runs: made up from the model's declared input types, or read from files.

Made-up inputs are deterministic for a seed: floats from a standard normal, integers in
[0, 10), booleans at random, strings ``"a"``. A symbolic or unknown dimension takes the value
given for the input (``input_shapes``) or for the symbol (``dims``), else 1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pyonnx.errors import InvalidArgument
from pyonnx.ir import DataType, Model, SequenceType, TensorType, Value

__all__ = ["model_inputs", "random_inputs", "load_inputs"]


def model_inputs(model: Model) -> list[Value]:
    """The graph inputs a caller feeds: initializers listed as inputs (IR < 4) are not."""
    g = model.graph
    return [v for v in g.inputs if v.name not in g.initializers
            and v.name not in g.sparse_initializers]


def random_inputs(model: Model, *, input_shapes: Mapping[str, Sequence[int]] | None = None,
                  dims: Mapping[str, int] | None = None, seed: int = 0,
                  given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A feed for every input of ``model`` not in ``given`` (those are kept as they are).

    ``input_shapes`` fixes an input's whole shape ({name: [d0, d1, ...]}); ``dims`` gives
    symbolic dimensions by symbol name. Raises :class:`InvalidArgument` for an input whose
    type cannot be made up (maps, unknown rank without ``input_shapes``) or a shape of the
    wrong rank.
    """
    rng = np.random.default_rng(seed)
    shapes = {k: [int(d) for d in v] for k, v in (input_shapes or {}).items()}
    dims = dict(dims or {})
    feeds: dict[str, Any] = dict(given or {})
    names = {v.name for v in model_inputs(model)}
    unknown = sorted(set(shapes) - names)
    if unknown:
        raise InvalidArgument(f"input shape given for {', '.join(unknown)}, which the model "
                              f"does not take as input(s) (inputs: {', '.join(sorted(names))})")
    for v in model_inputs(model):
        if v.name not in feeds:
            feeds[v.name] = _make(v.name, v.type, shapes.get(v.name), dims, rng)
    return feeds


def _make(name: str, t: Any, shape: list[int] | None, dims: dict[str, int],
          rng: np.random.Generator) -> Any:
    if isinstance(t, SequenceType) and isinstance(t.elem_type, TensorType):
        return [_make(name, t.elem_type, shape, dims, rng)]
    if not isinstance(t, TensorType):
        raise InvalidArgument(f"input {name!r} has type {t}; random data can only be made for "
                              f"tensors: give this input from a file")
    if shape is None:
        if t.shape is None:
            raise InvalidArgument(f"input {name!r} has unknown rank: give its shape "
                                  f"(--input-shape {name}=d0,d1,...) or its data from a file")
        shape = [d if isinstance(d, int) else dims.get(d, 1) if isinstance(d, str) else 1
                 for d in t.shape]
    elif t.shape is not None and len(shape) != len(t.shape):
        raise InvalidArgument(f"input {name!r} has rank {len(t.shape)}, but the shape given "
                              f"for it, {shape}, has rank {len(shape)}")
    dt = t.elem_type
    if dt == DataType.STRING:
        return np.full(shape, "a", dtype=object)
    if dt == DataType.BOOL:
        return rng.random(shape) < 0.5
    np_dtype = dt.numpy
    if np_dtype.kind in "iu":
        return rng.integers(0, 10, size=shape).astype(np_dtype)
    if np_dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np_dtype)
    return rng.standard_normal(shape).astype(np_dtype)


def load_inputs(specs: Sequence[str]) -> dict[str, Any]:
    """Read feeds from files: ``FILE.npz`` gives one input per array (named by its key),
    ``NAME=FILE.npy`` one input. Raises :class:`InvalidArgument` naming a file that cannot
    be read."""
    feeds: dict[str, Any] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = "", spec
        if not os.path.exists(path):
            raise InvalidArgument(f"input file {path!r} does not exist")
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InvalidArgument(f"cannot read {path!r} as a .npy or .npz file: {e}") from e
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                if name:
                    raise InvalidArgument(f"{spec!r}: a .npz file holds named arrays already; "
                                          f"give it without NAME=")
                feeds.update({k: data[k] for k in data.files})
        else:
            if not name:
                raise InvalidArgument(f"{spec!r}: a .npy file holds one array; say which input "
                                      f"it feeds as NAME=FILE.npy")
            feeds[name] = data
    return feeds
