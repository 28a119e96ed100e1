"""Conv's fast paths (depthwise by stride phases, patch convolution, small inputs, 1x1, the
general column path) against onnxruntime on random configurations: each path is chosen from
the shapes, so random shapes exercise all of them, including dilation and channel multipliers."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from pyonnx.backends.cpu.conv import conv  # noqa: E402
from tests.ops._oracle import run_ort  # noqa: E402


def _config(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    nsp = int(rng.choice([1, 2, 2, 2, 3]))
    n, group = int(rng.integers(1, 3)), int(rng.choice([1, 2, 3]))
    depthwise = rng.random() < 0.4
    cg = 1 if depthwise else int(rng.integers(1, 4))
    m = group * int(rng.integers(1, 3))
    k = [int(rng.integers(1, 4)) for _ in range(nsp)]
    s = [int(rng.integers(1, 4)) for _ in range(nsp)]
    d = [int(rng.integers(1, 3)) for _ in range(nsp)]
    if rng.random() < 0.2:  # non-overlapping windows: the patch path
        s, d = list(k), [1] * nsp
    p = [0] * (2 * nsp) if rng.random() < 0.3 else [int(rng.integers(0, 3)) for _ in range(2 * nsp)]
    size = [int(rng.integers((kk - 1) * dd + 1, 12 if nsp < 3 else 6)) for kk, dd in zip(k, d)]
    if nsp < 3 and rng.random() < 0.15:  # large enough for the banded paths
        size = [30] * nsp
    x = rng.standard_normal((n, cg * group, *size)).astype(np.float32)
    w = rng.standard_normal((m, cg, *k)).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32)
    return x, w, b, dict(group=group, strides=s, pads=p, dilations=d)


@pytest.mark.parametrize("seed", range(60))
def test_conv_matches_onnxruntime(seed: int) -> None:
    x, w, b, attrs = _config(seed)
    expected = run_ort("Conv", {"x": x, "w": w, "b": b}, attrs, opset=13)[0]
    for _ in range(2):  # the second call runs with cached geometry and reused buffers
        (got,) = conv(x, w, b, **attrs)
        assert got.shape == expected.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
