"""``infer_shapes_path``: shape inference from a model file to a model file (the counterpart of
``onnx.shape_inference.infer_shapes_path``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from pyonnx.io import load, save
from pyonnx.io.limits import DEFAULT_MAX_NESTING_DEPTH
from pyonnx.ir import Model
from pyonnx.shape_inference.engine import infer_shapes

__all__ = ["infer_shapes_path"]


def infer_shapes_path(model_path: str | os.PathLike, output_path: str | os.PathLike | None = None,
                      *, input_shapes: dict[str, Sequence[int | str | None]] | None = None,
                      data_prop: bool = True, strict: bool = False, check_type: bool = False,
                      initializer_inputs: str = "auto",
                      max_nesting_depth: int = DEFAULT_MAX_NESTING_DEPTH,
                      external_data: bool = False) -> Model:
    """Load the model file ``model_path``, infer its shapes (see :func:`infer_shapes` for the
    options) and write the result to ``output_path`` — by default back to ``model_path``, as
    onnx's ``infer_shapes_path`` does. Returns the inferred model.

    The model is read with :func:`pyonnx.load` (external data resolved next to the file, lazily)
    and written with :func:`pyonnx.save`; ``external_data=True`` writes large tensors to a data
    file beside ``output_path`` (needed above 2 GiB). Nothing is written when loading or
    inference fails.
    """
    model = load(model_path, max_nesting_depth=max_nesting_depth)
    out = infer_shapes(model, input_shapes=input_shapes, data_prop=data_prop, strict=strict,
                       check_type=check_type, initializer_inputs=initializer_inputs,
                       max_nesting_depth=max_nesting_depth)
    save(out, model_path if output_path is None else output_path, external_data=external_data)
    return out
