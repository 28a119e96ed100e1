"""com.microsoft normalizations (and onnxruntime's default-domain LayerNormalization-1 and
SimplifiedLayerNormalization-1) against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx import defs
from pyonnx.errors import ExecutionError
from pyonnx.ops.contrib.normalization import (
    embed_layer_normalization,
    layer_normalization_1,
    simplified_layer_normalization,
)
from pyonnx.ops.registry import KernelContext
from tests.contrib._compare import assert_close, compare, one_node_model, run_both, feeds

R = np.random.default_rng(1)
X = R.standard_normal((2, 3, 8)).astype(np.float32)
G = R.standard_normal(8).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_skip_layer_normalization(dtype: type) -> None:
    tol = {} if dtype == np.float32 else {"rtol": 1e-2, "atol": 1e-2}
    x, s, g = X.astype(dtype), (X * 2)[:, ::-1].astype(dtype), G.astype(dtype)
    compare("SkipLayerNormalization", [("x", x), ("s", s), ("g", g), ("b", g * 3), ("bias", g * 5)],
            n_out=4, attrs={"epsilon": 1e-5}, **tol)
    compare("SkipLayerNormalization", [("x", x), ("s", s[0]), ("g", g)], n_out=4, **tol)
    compare("SkipLayerNormalization", [("x", x), ("s", s[:1]), ("g", g), ("b", None), ("bias", g)],
            n_out=4, outputs=["y", "", "", "sum"], **tol)
    compare("SkipLayerNormalization", [("x", x), ("s", s), ("g", g)], **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_skip_simplified_layer_normalization(dtype: type) -> None:
    tol = {} if dtype == np.float32 else {"rtol": 1e-2, "atol": 1e-2}
    x, g = X.astype(dtype), G.astype(dtype)
    compare("SkipSimplifiedLayerNormalization", [("x", x), ("s", x[0]), ("g", g), ("bias", g)],
            n_out=4, **tol)
    compare("SkipSimplifiedLayerNormalization", [("x", x[0]), ("s", x[1]), ("g", g)],
            n_out=4, attrs={"epsilon": 1e-3}, **tol)


def _default_domain_v1(op: str, inputs: list, n_out: int, attrs: dict, kernel) -> None:
    """Compare a default-domain version-1 onnxruntime operator: through a session when pyonnx's
    schema table knows it, else the kernel itself against onnxruntime's outputs."""
    model = one_node_model(op, inputs, n_out, attrs, domain="", opset=13)
    if defs.lookup("", op, 13) is not None:
        ref, got = run_both(model, feeds(inputs))
    else:
        import onnxruntime as ort
        ref = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds(inputs))
        ctx = KernelContext(num_outputs=n_out, outputs_used=(True,) * n_out)
        got = kernel(*[a for _, a in inputs], **attrs, ctx=ctx)
    for i, (r, g) in enumerate(zip(ref, got)):
        assert_close(r, g, what=f"{op} output {i}")


@pytest.mark.parametrize("axis", [-1, 1])
def test_layer_normalization_v1(axis: int) -> None:
    scale = R.standard_normal(X.shape[axis:]).astype(np.float32)
    _default_domain_v1("LayerNormalization", [("x", X), ("s", scale), ("b", scale * 2)], 3,
                       {"axis": axis, "epsilon": 1e-3}, layer_normalization_1)
    _default_domain_v1("SimplifiedLayerNormalization", [("x", X), ("s", scale)], 2,
                       {"axis": axis}, simplified_layer_normalization)


def _embed_inputs(segment: bool = True, mask: np.ndarray | None = None,
                  position_ids: np.ndarray | None = None) -> list:
    b, s, h = 2, 5, 8
    return [("ids", R.integers(0, 20, (b, s)).astype(np.int32)),
            ("seg", R.integers(0, 2, (b, s)).astype(np.int32) if segment else None),
            ("we", R.standard_normal((20, h)).astype(np.float32)),
            ("pe", R.standard_normal((16, h)).astype(np.float32)),
            ("se", R.standard_normal((2, h)).astype(np.float32) if segment else None),
            ("g", R.standard_normal(h).astype(np.float32)),
            ("b", R.standard_normal(h).astype(np.float32)),
            ("mask", mask), ("pid", position_ids)]


def test_embed_layer_normalization() -> None:
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], np.int32)
    got = compare("EmbedLayerNormalization", _embed_inputs(mask=mask), n_out=3)
    assert got[1].tolist() == [3, 4]
    got = compare("EmbedLayerNormalization", _embed_inputs(segment=False), n_out=3)
    assert got[1].tolist() == [0, 0]
    pid = R.integers(0, 16, (1, 5)).astype(np.int32)
    compare("EmbedLayerNormalization", _embed_inputs(position_ids=pid), n_out=3)
    pid2 = R.integers(0, 16, (2, 5)).astype(np.int32)
    compare("EmbedLayerNormalization", _embed_inputs(mask=mask, position_ids=pid2), n_out=2,
            attrs={"epsilon": 1e-5})


def test_embed_layer_normalization_bad_id() -> None:
    ins = [a for _, a in _embed_inputs()]
    ins[0] = ins[0].copy()
    ins[0][0, 0] = 20
    with pytest.raises(ExecutionError, match="input_ids contains 20"):
        embed_layer_normalization(*ins)
