"""Build one-node models of com.microsoft operators and run them in onnxruntime and pyonnx."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

import pyonnx

FLOAT_RTOL = 1e-3
FLOAT_ATOL = 1e-5


def one_node_model(op: str, inputs: Sequence[tuple[str, np.ndarray | None]], n_out: int = 1,
                   attrs: dict[str, Any] | None = None, domain: str = "com.microsoft",
                   opset: int = 17, outputs: Sequence[str] | None = None,
                   initializers: Sequence[str] = (),
                   output_types: dict[int, np.dtype] | None = None) -> bytes:
    """A model with one ``op`` node; an input given as None is left out (empty name).

    Inputs named in ``initializers`` become initializers (constant weights), others graph inputs.
    ``output_types`` declares the element type of outputs that onnxruntime cannot infer.
    """
    names = [n if a is not None else "" for n, a in inputs]
    outs = list(outputs) if outputs is not None else [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, names, outs, domain=domain, **(attrs or {}))
    graph_inputs, inits = [], []
    for n, a in inputs:
        if a is None:
            continue
        if n in initializers:
            inits.append(onnx.numpy_helper.from_array(a, n))
        else:
            graph_inputs.append(helper.make_tensor_value_info(
                n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape))
    graph = helper.make_graph([node], "g", graph_inputs,
                              [_output(o, i, output_types) for i, o in enumerate(outs) if o],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                    helper.make_opsetid("com.microsoft", 1)])
    return model.SerializeToString()


def _output(name: str, i: int, types: dict[int, np.dtype] | None) -> onnx.ValueInfoProto:
    if types and i in types:
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(
            np.dtype(types[i])), None)
    return helper.make_value_info(name, onnx.TypeProto())


def feeds(inputs: Sequence[tuple[str, np.ndarray | None]],
          initializers: Sequence[str] = ()) -> dict[str, np.ndarray]:
    return {n: a for n, a in inputs if a is not None and n not in initializers}


def run_both(model: bytes, feed: dict[str, np.ndarray]) -> tuple[list[Any], list[Any]]:
    """(onnxruntime outputs, pyonnx outputs) for one model and feed."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ref = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(None, feed)
    got = pyonnx.InferenceSession(model).run(None, feed)
    return ref, got


def assert_close(ref: Any, got: Any, rtol: float = FLOAT_RTOL, atol: float = FLOAT_ATOL,
                 what: str = "") -> None:
    ref, got = np.asarray(ref), np.asarray(got)
    assert got.dtype == ref.dtype, f"{what}: dtype {got.dtype} != onnxruntime's {ref.dtype}"
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != onnxruntime's {ref.shape}"
    if ref.dtype.kind == "f" or ref.dtype == np.dtype("bfloat16"):
        np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), rtol=rtol,
                                   atol=atol, err_msg=what)
    else:
        np.testing.assert_array_equal(got, ref, err_msg=what)


def compare(op: str, inputs: Sequence[tuple[str, np.ndarray | None]], n_out: int = 1,
            attrs: dict[str, Any] | None = None, domain: str = "com.microsoft",
            outputs: Sequence[str] | None = None, initializers: Sequence[str] = (),
            rtol: float = FLOAT_RTOL, atol: float = FLOAT_ATOL, opset: int = 17,
            skip_outputs: Sequence[int] = (),
            output_types: dict[int, np.dtype] | None = None) -> list[Any]:
    """Run a one-node model in both runtimes and assert that every output agrees."""
    model = one_node_model(op, inputs, n_out, attrs, domain, opset, outputs, initializers,
                           output_types)
    ref, got = run_both(model, feeds(inputs, initializers))
    assert len(got) == len(ref)
    for i, (r, g) in enumerate(zip(ref, got)):
        if i not in skip_outputs:
            assert_close(r, g, rtol, atol, what=f"{op} output {i}")
    return got
