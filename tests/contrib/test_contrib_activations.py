"""com.microsoft activations against onnxruntime (BiasAdd and BiasSoftmax have no CPU kernel
there: they are compared with the equivalent standard-op graph run in onnxruntime)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper, TensorProto

import pyonnx
from tests.contrib._compare import assert_close, compare

R = np.random.default_rng(0)
X = R.standard_normal((2, 3, 8)).astype(np.float32) * 3
BIAS = R.standard_normal(8).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_gelu_family(dtype: type) -> None:
    x, b = X.astype(dtype), BIAS.astype(dtype)
    tol = {} if dtype == np.float32 else {"rtol": 1e-2, "atol": 1e-3}
    compare("Gelu", [("x", x)], **tol)
    compare("FastGelu", [("x", x)], **tol)
    compare("FastGelu", [("x", x), ("b", b)], **tol)
    compare("BiasGelu", [("x", x), ("b", b)], **tol)
    compare("QuickGelu", [("x", x)], **tol)
    compare("QuickGelu", [("x", x)], attrs={"alpha": 0.7}, **tol)


def _ort_graph(nodes: list, inputs: dict[str, np.ndarray], opset: int = 11) -> np.ndarray:
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in inputs.items()]
    g = helper.make_graph(nodes, "g", vi, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, inputs)[0]


def _pyonnx_node(op: str, inputs: dict[str, np.ndarray], **attrs: object) -> np.ndarray:
    node = helper.make_node(op, list(inputs), ["y"], domain="com.microsoft", **attrs)
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in inputs.items()]
    g = helper.make_graph([node], "g", vi, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("com.microsoft", 1)])
    return pyonnx.InferenceSession(m.SerializeToString()).run(None, inputs)[0]


def test_bias_add() -> None:
    feeds = {"x": X, "b": BIAS, "s": X[::-1].copy()}
    ref = _ort_graph([helper.make_node("Add", ["x", "b"], ["t"]),
                      helper.make_node("Add", ["t", "s"], ["y"])], feeds)
    assert_close(ref, _pyonnx_node("BiasAdd", feeds), what="BiasAdd")


@pytest.mark.parametrize("axis,bias_shape,inner", [(2, (2, 1, 8), 1), (1, (1, 3, 8), 0),
                                                   (2, (1, 3, 8), 0)])
def test_bias_softmax(axis: int, bias_shape: tuple[int, ...], inner: int) -> None:
    feeds = {"x": X, "b": R.standard_normal(bias_shape).astype(np.float32)}
    # Softmax-11 flattens the dimensions from axis, as BiasSoftmax does.
    ref = _ort_graph([helper.make_node("Add", ["x", "b"], ["t"]),
                      helper.make_node("Softmax", ["t"], ["y"], axis=axis)], feeds)
    got = _pyonnx_node("BiasSoftmax", feeds, axis=axis, is_inner_broadcast=inner)
    assert_close(ref, got, what="BiasSoftmax")


def test_bias_must_match_last_axis() -> None:
    from pyonnx.errors import ExecutionError
    from pyonnx.ops.contrib.activations import bias_gelu

    with pytest.raises(ExecutionError, match="bias must be 1-D"):
        bias_gelu(X, BIAS[:3])
