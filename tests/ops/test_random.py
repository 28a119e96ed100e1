"""Random generators and Dropout: seeds, dtypes, shapes, value ranges, inference identity."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from pyonnx.errors import ExecutionError
from pyonnx.ops.registry import registered_versions
from tests.ops._oracle import context as ctx
from tests.ops._oracle import kernel as k


def test_every_schema_version_registered():
    onnx_defs = pytest.importorskip("onnx.defs")
    for op in ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
               "Multinomial", "Bernoulli", "Dropout"):
        want = sorted({s.since_version for s in onnx_defs.get_all_schemas_with_history()
                       if s.name == op and s.domain == ""})
        assert list(registered_versions("", op)) == want, op


def test_seed_is_reproducible_and_distinct():
    a = k("RandomNormal", 22)(shape=[3, 4], seed=1.5, ctx=ctx(seed=0))[0]
    b = k("RandomNormal", 22)(shape=[3, 4], seed=1.5, ctx=ctx(seed=99))[0]
    c = k("RandomNormal", 22)(shape=[3, 4], seed=2.5, ctx=ctx(seed=0))[0]
    assert a.dtype == np.float32 and a.shape == (3, 4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_without_seed_uses_session_generator():
    a = k("RandomUniform", 22)(shape=[5], ctx=ctx(seed=4))[0]
    b = k("RandomUniform", 22)(shape=[5], ctx=ctx(seed=4))[0]
    c = k("RandomUniform", 22)(shape=[5], ctx=ctx(seed=5))[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("code,dtype", [(1, np.float32), (10, np.float16), (11, np.float64),
                                        (16, ml_dtypes.bfloat16)])
def test_dtype_attribute(code, dtype):
    y = k("RandomUniform", 22)(shape=[1000], dtype=code, low=-2.0, high=3.0, seed=0.0,
                               ctx=ctx())[0]
    assert y.dtype == dtype
    y64 = y.astype(np.float64)
    assert y64.min() >= -2 and y64.max() <= 3 and y64.std() > 1
    y = k("RandomNormal", 22)(shape=[2000], dtype=code, mean=5.0, scale=0.5, ctx=ctx())[0]
    assert y.dtype == dtype and abs(y.astype(np.float64).mean() - 5) < 0.1


def test_non_float_dtype_is_an_error():
    with pytest.raises(ExecutionError, match="dtype 7"):
        k("RandomNormal", 22)(shape=[2], dtype=7, ctx=ctx())
    with pytest.raises(ExecutionError, match="dtype attribute"):
        k("RandomUniformLike", 22)(np.zeros(3, np.int64), ctx=ctx())


def test_like_variants_copy_shape_and_type():
    x = np.zeros((2, 3), np.float16)
    y = k("RandomNormalLike", 22)(x, ctx=ctx())[0]
    assert y.shape == (2, 3) and y.dtype == np.float16
    y = k("RandomUniformLike", 22)(np.zeros((4,), np.int32), dtype=11, ctx=ctx())[0]
    assert y.shape == (4,) and y.dtype == np.float64


def test_multinomial():
    with np.errstate(divide="ignore"):  # log(0) = -inf: a class that is never drawn
        logits = np.log(np.array([[0.0, 0.25, 0.75], [1.0, 0.0, 0.0]], np.float32))
    y = k("Multinomial", 22)(logits, sample_size=4000, seed=3.0, ctx=ctx())[0]
    assert y.dtype == np.int32 and y.shape == (2, 4000)
    assert set(np.unique(y[0])) == {1, 2} and set(np.unique(y[1])) == {0}
    assert abs((y[0] == 2).mean() - 0.75) < 0.03
    y = k("Multinomial", 7)(logits, dtype=7, ctx=ctx())[0]
    assert y.dtype == np.int64 and y.shape == (2, 1)
    with pytest.raises(ExecutionError, match="dtype 1"):
        k("Multinomial", 22)(logits, dtype=1, ctx=ctx())
    with pytest.raises(ExecutionError, match="row 1"):
        k("Multinomial", 22)(np.array([[0.0, 1.0], [-np.inf, -np.inf]], np.float32), ctx=ctx())


def test_bernoulli():
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5], np.float64)
    y = k("Bernoulli", 22)(p, ctx=ctx())[0]
    assert y.dtype == np.float64 and y[:4].tolist() == [0, 1, 0, 1] and y[4] in (0, 1)
    y = k("Bernoulli", 22)(p.astype(np.float32), dtype=9, seed=1.0, ctx=ctx())[0]
    assert y.dtype == np.bool_
    with pytest.raises(ExecutionError, match="1.5, outside"):
        k("Bernoulli", 22)(np.array([0.5, 1.5]), ctx=ctx())
    with pytest.raises(ExecutionError, match="nan"):
        k("Bernoulli", 22)(np.array([np.nan, 0.5]), ctx=ctx())
    big = np.full(10000, 0.3, np.float32)
    assert abs(k("Bernoulli", 22)(big, ctx=ctx())[0].mean() - 0.3) < 0.03


def test_dropout_inference_is_identity_with_true_mask():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    y, mask = k("Dropout", 22)(x, np.array(0.5, np.float32), ctx=ctx(2))
    np.testing.assert_array_equal(y, x)
    assert mask.dtype == np.bool_ and mask.all()
    y, mask = k("Dropout", 13)(x, np.array(0.5, np.float32), np.array(False), ctx=ctx(2))
    np.testing.assert_array_equal(y, x)
    # The mask is computed only when the node has it.
    assert len(k("Dropout", 13)(x, ctx=ctx(1))) == 1
    assert k("Dropout", 13)(x, ctx=ctx(2, used=(True, False)))[1] is None
    # Old versions: v7 mask in the data's type; v10 bool.
    assert k("Dropout", 7)(x, ratio=0.3, ctx=ctx(2))[1].dtype == np.float32
    assert k("Dropout", 10)(x, ctx=ctx(2))[1].dtype == np.bool_
    np.testing.assert_array_equal(k("Dropout", 6)(x, is_test=1, ctx=ctx(1))[0], x)


def test_dropout_training():
    x = np.ones((100, 100), np.float32)
    y, mask = k("Dropout", 22)(x, np.array(0.25, np.float32), np.array(True), seed=7, ctx=ctx(2))
    assert y.dtype == np.float32 and mask.dtype == np.bool_
    np.testing.assert_allclose(y[mask], 1 / 0.75, rtol=1e-6)
    assert np.all(y[~mask] == 0)
    assert abs(mask.mean() - 0.75) < 0.03
    y2, _ = k("Dropout", 22)(x, np.array(0.25, np.float32), np.array(True), seed=7, ctx=ctx(2))
    np.testing.assert_array_equal(y, y2)
    # ratio 0 in training: a copy of the input, mask all True.
    y, mask = k("Dropout", 12)(x, np.array(0.0, np.float32), np.array(True), ctx=ctx(2))
    np.testing.assert_array_equal(y, x)
    assert mask.all()
    with pytest.raises(ExecutionError, match="ratio"):
        k("Dropout", 22)(x, np.array(1.0, np.float32), np.array(True), ctx=ctx(1))


def test_dropout_float16_training_keeps_dtype():
    x = np.ones((8, 8), np.float16)
    (y,) = k("Dropout", 22)(x, np.array(0.5, np.float16), np.array(True), ctx=ctx(1))
    assert y.dtype == np.float16 and set(np.unique(y).tolist()) <= {0.0, 2.0}
