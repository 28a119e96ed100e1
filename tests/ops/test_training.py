"""Training-domain operators and ImageDecoder: error paths the backend suite does not reach."""

from __future__ import annotations

import builtins
import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

import pyonnx  # noqa: E402
from pyonnx.errors import UnsupportedOperatorError  # noqa: E402
from pyonnx.ops.image_decoder import image_decoder  # noqa: E402
from pyonnx.ops.training import momentum  # noqa: E402


def _gradient_model(op: str) -> bytes:
    g = helper.make_graph(
        [helper.make_node(op, ["a"], ["c"]),
         helper.make_node("Gradient", ["a"], ["dc_da"], domain="ai.onnx.preview.training",
                          xs=["a"], y="c")],
        "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("dc_da", TensorProto.FLOAT, [3])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18),
                                               helper.make_opsetid("ai.onnx.preview.training", 1)],
                             ir_version=9).SerializeToString()


def test_gradient_of_supported_ops() -> None:
    a = np.array([-1.0, 0.5, 2.0], np.float32)
    (g,) = pyonnx.InferenceSession(_gradient_model("Tanh")).run(None, {"a": a})
    np.testing.assert_allclose(g, 1 - np.tanh(a) ** 2, rtol=1e-6)
    (g,) = pyonnx.InferenceSession(_gradient_model("Relu")).run(None, {"a": a})
    np.testing.assert_array_equal(g, [0, 1, 1])


def test_gradient_of_unsupported_op_names_it() -> None:
    with pytest.raises(UnsupportedOperatorError, match="cannot differentiate.*Cos"):
        pyonnx.InferenceSession(_gradient_model("Cos"))


def test_momentum_rejects_unknown_mode() -> None:
    one = np.array(1.0, np.float32)
    with pytest.raises(UnsupportedOperatorError, match="'heavy'"):
        momentum(one, one, one, one, one, alpha=0.9, beta=0.1, mode="heavy",
                 norm_coefficient=0.0)


def test_image_decoder_corrupt_stream_gives_empty_tensor() -> None:
    (out,) = image_decoder(np.frombuffer(b"not an image", np.uint8))
    assert out.shape == (0, 0, 3) and out.dtype == np.uint8


def test_image_decoder_png_and_bgr() -> None:
    PIL = pytest.importorskip("PIL.Image")
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 200
    buf = io.BytesIO()
    PIL.fromarray(rgb).save(buf, format="PNG")
    stream = np.frombuffer(buf.getvalue(), np.uint8)
    np.testing.assert_array_equal(image_decoder(stream)[0], rgb)
    np.testing.assert_array_equal(image_decoder(stream, pixel_format="BGR")[0], rgb[..., ::-1])


def test_image_decoder_without_pillow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("no PIL")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(UnsupportedOperatorError, match=r"pyonnx\[image\]"):
        image_decoder(np.zeros(4, np.uint8))
