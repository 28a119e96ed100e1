"""``quant_pre_process``: prepare a float model for quantization.

pyonnx's offline optimizer (basic level: constant folding, BatchNormalization folded into Conv,
dead code, shape subgraph folding…; standard operators only) and then shape inference, so that
the quantizer sees fewer, larger operators with known types. onnxruntime's signature; its
symbolic shape inference options map onto pyonnx's one shape inference (symbolic dims are
always kept), so they take no effect of their own.
"""

from __future__ import annotations

import os
from typing import Any

from pyonnx.errors import InvalidArgument
from pyonnx.quantization._edit import check_output_path, load_input

__all__ = ["quant_pre_process", "preprocess_model"]


def preprocess_model(model: Any, *, skip_optimization: bool = False,
                     skip_onnx_shape: bool = False, skip_symbolic_shape: bool = False) -> Any:
    """The pre-processed copy of ``model`` (a pyonnx Model)."""
    from pyonnx.optimizer import optimize_model
    from pyonnx.shape_inference import infer_shapes

    m = load_input(model)
    if not skip_optimization:
        # the verification run would double the cost on large models; the passes are verified
        # by the optimizer's own tests
        m = optimize_model(m, level="basic", verify=False)
    if not (skip_onnx_shape and skip_symbolic_shape):
        m = infer_shapes(m)
    return m


def quant_pre_process(input_model: Any = None, output_model_path: Any = None,
                      skip_optimization: bool = False, skip_onnx_shape: bool = False,
                      skip_symbolic_shape: bool = False, auto_merge: bool = False,
                      int_max: int = 2**31 - 1, guess_output_rank: bool = False,
                      verbose: int = 0, save_as_external_data: bool = False,
                      all_tensors_to_one_file: bool = False,
                      external_data_location: str | None = None,
                      external_data_size_threshold: int = 1024, **deprecated_kwargs: Any) -> None:
    """Optimize and shape-infer ``input_model`` (path, bytes, ModelProto or Model) and write it
    to ``output_model_path``. ``auto_merge``, ``int_max``, ``guess_output_rank`` and
    ``verbose`` tune onnxruntime's symbolic shape inference, which pyonnx's inference replaces;
    they are accepted and have no effect on the result."""
    if deprecated_kwargs:
        raise InvalidArgument(f"quant_pre_process: unknown argument(s) "
                              f"{', '.join(sorted(deprecated_kwargs))}")
    if input_model is None or output_model_path is None:
        raise InvalidArgument("quant_pre_process needs input_model and output_model_path")
    out = check_output_path(output_model_path, "output_model_path")
    m = preprocess_model(input_model, skip_optimization=skip_optimization,
                         skip_onnx_shape=skip_onnx_shape, skip_symbolic_shape=skip_symbolic_shape)
    from pyonnx.io import save

    location = external_data_location or (os.path.basename(out) + ".data")
    save(m, out, external_data=bool(save_as_external_data),
         size_threshold=int(external_data_size_threshold),
         location=location if save_as_external_data else None)
