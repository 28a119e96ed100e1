"""com.microsoft NhwcMaxPool, GridSample, Inverse and Trilu against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.errors import ExecutionError
from pyonnx.ops.contrib.misc import inverse
from tests.contrib._compare import compare

R = np.random.default_rng(5)


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3, 2], "pads": [1, 0, 1, 1], "strides": [2, 1]},
    {"kernel_shape": [2, 2], "dilations": [2, 1], "pads": [1, 0, 0, 1]},
    {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER"},
])
def test_nhwc_max_pool(dt: type, attrs: dict) -> None:
    info = np.iinfo(dt)
    x = R.integers(info.min, info.max + 1, (2, 7, 6, 3)).astype(dt)
    compare("NhwcMaxPool", [("x", x)], attrs=attrs)


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_grid_sample(mode: str, padding_mode: str, align_corners: int) -> None:
    X = R.standard_normal((2, 3, 5, 6)).astype(np.float32)
    G = (R.random((2, 4, 3, 2)) * 2.4 - 1.2).astype(np.float32)
    compare("GridSample", [("x", X), ("g", G)],
            attrs={"mode": mode, "padding_mode": padding_mode, "align_corners": align_corners})


def test_inverse() -> None:
    M = R.standard_normal((2, 3, 4, 4)).astype(np.float32) + np.eye(4, dtype=np.float32) * 3
    compare("Inverse", [("x", M)])
    compare("Inverse", [("x", M.astype(np.float64))])
    compare("Inverse", [("x", M.astype(np.float16))], rtol=1e-2, atol=1e-2)
    with pytest.raises(ExecutionError, match="singular"):
        inverse(np.zeros((3, 3), np.float32))


@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [None, -1, 2])
def test_trilu(upper: int, k: int | None) -> None:
    T = R.standard_normal((2, 4, 5)).astype(np.float32)
    compare("Trilu", [("x", T), ("k", None if k is None else np.array(k, np.int64))],
            attrs={"upper": upper})
