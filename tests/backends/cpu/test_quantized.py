"""The CPU provider's fast integer kernels: exact against an int64 NumPy reference, bit for bit
equal to the reference kernels, and against onnxruntime on a sample of configurations."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.backends.cpu import quantized as fast
from pyonnx.backends.cpu.quantized import chunk_length, exact_int_matmul
from pyonnx.backends.cpu.registry import get_fast_kernel
from pyonnx.errors import ExecutionError
from pyonnx.ops import linalg, quantization
from pyonnx.ops.contrib import matmul as cm
from tests.ops._oracle import ort_u8s8_saturates

N_CONFIGS = 120
U8, I8 = np.dtype(np.uint8), np.dtype(np.int8)


def _q(rng, dtype, shape, ends: bool):
    info = np.iinfo(dtype)
    if ends:   # values piled at the range ends: the largest products
        return rng.choice(np.array([info.min, info.max], dtype), size=shape)
    return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=np.int64).astype(dtype)


def _zp(rng, dtype, kind: str, size: int | None = None):
    info = np.iinfo(dtype)
    shape = () if size is None else (size,)
    if kind == "low":
        return np.full(shape, info.min, dtype)
    if kind == "high":
        return np.full(shape, info.max, dtype)
    return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=np.int64).astype(dtype)


def _configs(seed: int):
    """N_CONFIGS random shapes, types and zero points; K up to 4096."""
    rng = np.random.default_rng(seed)
    for i in range(N_CONFIGS):
        k = int(rng.choice([1, 7, 64, 255, 256, 257, 513, 1024, 2049, 4096]))
        m = int(rng.integers(1, 6))
        n = int(rng.integers(1, 20))
        batch = () if rng.random() < 0.6 else (int(rng.integers(1, 3)),)
        adt = U8 if rng.random() < 0.7 else I8
        bdt = I8 if rng.random() < 0.6 else U8
        zk = ["low", "high", "rand"][i % 3]
        yield rng, batch, m, k, n, adt, bdt, zk, (i % 4 == 0)


def _int64_matmul(a, az, b, bz):
    return np.matmul(a.astype(np.int64) - np.asarray(az).astype(np.int64),
                     b.astype(np.int64) - np.asarray(bz).astype(np.int64))


def test_every_variant_is_registered_for_the_reference_versions():
    for dom, op, v in [("", "MatMulInteger", 10), ("", "QLinearMatMul", 10),
                       ("", "QLinearMatMul", 21), ("com.microsoft", "QGemm", 1),
                       ("com.microsoft", "MatMulIntegerToFloat", 1),
                       ("com.microsoft", "DynamicQuantizeMatMul", 1), ("", "ConvInteger", 10)]:
        assert get_fast_kernel(dom, op, v) is not None


def test_exact_int_matmul_is_exact_where_one_float32_gemm_is_not():
    rng = np.random.default_rng(0)
    k = 4096
    # large odd products, all positive: the running sums pass 2^24 and float32 drops bits
    a = rng.choice(np.array([251.0, 253.0, 255.0], np.float32), size=(3, k))
    b = rng.choice(np.array([249.0, 251.0, 255.0], np.float32), size=(k, 5))
    want = a.astype(np.int64) @ b.astype(np.int64)
    assert (np.matmul(a, b).astype(np.int64) != want).any()
    np.testing.assert_array_equal(exact_int_matmul(a, b, 255, 255), want)
    assert chunk_length(255, 255) == 258


def test_matmul_integer_exact():
    for rng, batch, m, k, n, adt, bdt, zk, ends in _configs(1):
        A = _q(rng, adt, batch + (m, k), ends)
        B = _q(rng, bdt, (k, n), ends)
        per_col = rng.random() < 0.3
        az = _zp(rng, adt, zk)
        bz = _zp(rng, bdt, zk, n if per_col else None)
        (y,) = fast.matmul_integer(A, B, az, bz)
        assert y.dtype == np.int32
        np.testing.assert_array_equal(y, _int64_matmul(A, az, B, bz))
        np.testing.assert_array_equal(y, linalg.matmul_integer(A, B, az, bz)[0])
        (y0,) = fast.matmul_integer(A, B)
        np.testing.assert_array_equal(y0, _int64_matmul(A, 0, B, 0))


@pytest.mark.parametrize("per_col", [False, True])
def test_large_weights_widen_in_bands_exactly(per_col):
    """A weight above _WIDE_BAND_VALUES is widened a band of columns at a time (N not a
    multiple of the band: a short last band), still exact; MatMulInteger and the contrib
    kernels' accumulator both."""
    rng = np.random.default_rng(11)
    k, n = 700, 1000
    assert k * n > fast._WIDE_BAND_VALUES and n % fast._band(n, k, fast._WIDE_ALIGN,
                                                           fast._WIDE_BAND_VALUES)
    A = _q(rng, U8, (2, 3, k), True)
    B = _q(rng, I8, (k, n), False)
    az, bz = _zp(rng, U8, "high"), _zp(rng, I8, "low", n if per_col else None)
    (y,) = fast.matmul_integer(A, B, az, bz)
    np.testing.assert_array_equal(y, _int64_matmul(A, az, B, bz))
    acc = fast._int_matmul("MatMulIntegerToFloat", A, np.asarray(az, U8), B,
                           np.asarray(bz, I8))
    np.testing.assert_array_equal(acc, _int64_matmul(A, az, B, bz).astype(np.float64))


def test_contrib_float_outputs_equal_reference():
    for rng, batch, m, k, n, adt, bdt, zk, ends in _configs(2):
        A = _q(rng, adt, batch + (m, k), ends)
        B = _q(rng, bdt, (k, n), ends)
        az, bz = _zp(rng, adt, zk), _zp(rng, bdt, zk, n if rng.random() < 0.5 else None)
        a_s = np.float32(rng.uniform(1e-3, 0.1))
        b_s = rng.uniform(1e-3, 0.1, size=n).astype(np.float32)
        bias = rng.standard_normal(n).astype(np.float32)
        got = fast.matmul_integer_to_float(A, B, a_s, b_s, az, bz, bias)[0]
        ref = cm.matmul_integer_to_float(A, B, a_s, b_s, az, bz, bias)[0]
        np.testing.assert_array_equal(got, ref)
        exact = _int64_matmul(A, az, B, bz).astype(np.float64) * (
            np.float64(a_s) * b_s.astype(np.float64)) + bias
        np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-4 * np.abs(exact).max())
        X = rng.standard_normal(batch + (m, k)).astype(np.float32) * 3
        np.testing.assert_array_equal(fast.dynamic_quantize_matmul(X, B, b_s, bz, bias)[0],
                                      cm.dynamic_quantize_matmul(X, B, b_s, bz, bias)[0])


def test_qgemm_and_qlinear_matmul_equal_reference_with_saturation():
    for rng, batch, m, k, n, adt, bdt, zk, ends in _configs(3):
        A = _q(rng, adt, (m, k), ends)
        B = _q(rng, bdt, (k, n), ends)
        az, bz = _zp(rng, adt, zk), _zp(rng, bdt, zk)
        a_s, b_s = np.float32(rng.uniform(1e-3, 0.05)), np.float32(rng.uniform(1e-3, 0.05))
        # a small output scale saturates most outputs; a large one rounds
        y_s = np.float32(rng.choice([1e-4, 0.5, 50.0]))
        ydt = U8 if rng.random() < 0.5 else I8
        y_zp = _zp(rng, ydt, zk)
        C = rng.integers(-1000, 1000, n).astype(np.int32)
        trans_b = int(rng.random() < 0.5)
        Bt = np.ascontiguousarray(B.T) if trans_b else B
        for ys, yz in ((None, None), (y_s, y_zp)):
            got = fast.qgemm(A, a_s, az, Bt, b_s, bz, C, ys, yz, alpha=0.5, transB=trans_b)[0]
            ref = cm.qgemm(A, a_s, az, Bt, b_s, bz, C, ys, yz, alpha=0.5, transB=trans_b)[0]
            np.testing.assert_array_equal(got, ref)
        A3 = _q(rng, adt, batch + (m, k), ends)
        got = fast.qlinear_matmul(A3, a_s, az, B, b_s, bz, y_s, y_zp)[0]
        ref = quantization.qlinear_matmul(A3, a_s, az, B, b_s, bz, y_s, y_zp)[0]
        np.testing.assert_array_equal(got, ref)
        # the integer definition: acc exact, then one rounding and saturation
        acc = _int64_matmul(A3, az, B, bz).astype(np.float64)
        q = np.rint(acc * float(np.float32(np.float64(a_s) * np.float64(b_s))) / float(y_s))
        info = np.iinfo(ydt)
        want = np.clip(q + int(y_zp), info.min, info.max)
        assert np.abs(got.astype(np.int64) - want).max() <= 1


def test_errors_match_reference():
    A = np.zeros((2, 3), np.uint8)
    B = np.zeros((4, 5), np.int8)
    with pytest.raises(ExecutionError, match="inner dimensions"):
        fast.matmul_integer(A, B)
    with pytest.raises(ExecutionError, match="a_zero_point"):
        fast.matmul_integer_to_float(A, np.zeros((3, 5), np.int8), np.float32(1),
                                     np.float32(1), np.zeros((), np.int8))


def _matmul_integer_ort(A: np.ndarray, B: np.ndarray, az: np.ndarray, bz: np.ndarray
                        ) -> np.ndarray:
    """onnxruntime's MatMulInteger of A (uint8, fed) and the constant B (int8)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    m, n = A.shape[0], B.shape[1]
    g = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B", "az", "bz"], ["Y"])], "g",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, list(A.shape))],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
        [numpy_helper.from_array(B, "B"), numpy_helper.from_array(np.asarray(az), "az"),
         numpy_helper.from_array(np.asarray(bz), "bz")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    return ort.InferenceSession(model.SerializeToString()).run(None, {"A": A})[0]


def test_equal_to_onnxruntime_on_a_sample():
    """MatMulInteger equal to onnxruntime; QLinearMatMul within 1 step, differences counted.
    Where onnxruntime's own product saturates (``ort_u8s8_saturates``) the weights are 7-bit,
    as its quantizer makes them for such CPUs; exactness against int64 on the full range
    is :func:`test_matmul_integer_exact`'s."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    differing = total = 0
    rng = np.random.default_rng(9)
    seven_bit = ort_u8s8_saturates()
    for i in range(20):
        k = int(rng.choice([16, 300, 1024, 4096]))
        m, n = 3, 8
        A = _q(rng, U8, (m, k), i % 2 == 0)
        B = _q(rng, I8, (k, n), i % 2 == 0)
        if seven_bit:
            B >>= 1  # [-64, 63], the range ends kept at the ends
        az, bz = _zp(rng, U8, ["low", "high", "rand"][i % 3]), np.zeros((), np.int8)
        np.testing.assert_array_equal(fast.matmul_integer(A, B, az, bz)[0],
                                      _matmul_integer_ort(A, B, az, bz))
        a_s, b_s, y_s = np.float32(0.02), np.float32(0.01), np.float32(rng.choice([0.5, 20.0]))
        y_zp = np.uint8(128)
        g = helper.make_graph(
            [helper.make_node("QLinearMatMul", ["A", "as", "az", "B", "bs", "bz", "ys", "yz"],
                              ["Y"])], "g",
            [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
            [helper.make_tensor_value_info("Y", TensorProto.UINT8, [m, n])],
            [numpy_helper.from_array(x, nm) for nm, x in
             (("as", np.array(a_s)), ("az", az), ("B", B), ("bs", np.array(b_s)),
              ("bz", bz), ("ys", np.array(y_s)), ("yz", np.array(y_zp)))])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        y_ort = ort.InferenceSession(model.SerializeToString()).run(None, {"A": A})[0]
        got = fast.qlinear_matmul(A, a_s, az, B, b_s, bz, y_s, np.array(y_zp))[0]
        diff = np.abs(got.astype(np.int64) - y_ort.astype(np.int64))
        assert diff.max() <= 1
        differing += int((diff > 0).sum())
        total += diff.size
    # onnxruntime requantizes with its own float rounding: a few values one step apart
    assert differing <= total // 10, f"{differing} of {total} values differ by one step"


def test_conv_integer_exact():
    """Slices of input channels: exact against an int64 direct convolution."""
    from pyonnx.ops.registry import get_kernel

    ref = get_kernel("", "ConvInteger", 10)
    rng = np.random.default_rng(4)
    for i in range(N_CONFIGS):
        c = int(rng.choice([1, 3, 8, 40, 130]))
        kh = int(rng.choice([1, 3, 5]))
        m = int(rng.integers(1, 5))
        h = int(rng.integers(kh, kh + 6))
        xdt = U8 if i % 2 else I8
        wdt = I8 if i % 3 else U8
        zk = ["low", "high", "rand"][i % 3]
        x = _q(rng, xdt, (1, c, h, h), i % 4 == 0)
        w = _q(rng, wdt, (m, c, kh, kh), i % 4 == 0)
        xz = _zp(rng, xdt, zk)
        wz = _zp(rng, wdt, zk, m if i % 5 == 0 else None)
        pads = [1, 1, 1, 1] if i % 2 else [0, 0, 0, 0]
        (y,) = fast.conv_integer(x, w, xz, wz, pads=pads)
        np.testing.assert_array_equal(y, ref(x, w, xz, wz, pads=pads)[0])
        # int64 direct definition
        xs = np.pad(x.astype(np.int64) - int(xz), ((0, 0), (0, 0), (pads[0], pads[2]),
                                                    (pads[1], pads[3])))
        ws = w.astype(np.int64) - (wz.astype(np.int64).reshape(-1, 1, 1, 1) if wz.ndim
                                   else int(wz))
        oh = xs.shape[2] - kh + 1
        want = np.zeros((1, m, oh, oh), np.int64)
        for a in range(kh):
            for b in range(kh):
                want += np.einsum("nchw,mc->nmhw", xs[:, :, a:a + oh, b:b + oh], ws[:, :, a, b])
        np.testing.assert_array_equal(y, want)


def test_conv_integer_equal_to_onnxruntime():
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(12)
    for i in range(6):
        c, m, kh, h = int(rng.choice([3, 40, 130])), 4, 5, 9
        x = _q(rng, U8, (1, c, h, h), i % 2 == 0)
        w = _q(rng, U8, (m, c, kh, kh), i % 2 == 0)
        xz, wz = _zp(rng, U8, ["low", "high", "rand"][i % 3]), _zp(rng, U8, "rand")
        g = helper.make_graph(
            [helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], pads=[1, 1, 1, 1])],
            "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, list(x.shape))],
            [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
            [numpy_helper.from_array(w, "w"), numpy_helper.from_array(xz, "xz"),
             numpy_helper.from_array(wz, "wz")])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        y_ort = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
        np.testing.assert_array_equal(fast.conv_integer(x, w, xz, wz, pads=[1, 1, 1, 1])[0],
                                      y_ort)


def test_matmul_nbits_equals_reference():
    from pyonnx.quantization.weight_only import _pack, block_quantize

    rng = np.random.default_rng(21)
    for i in range(N_CONFIGS):
        bs = int(rng.choice([16, 32, 64, 128]))
        k = bs * int(rng.integers(1, 9)) + (0 if i % 7 else 5)   # some K off the block grid
        n = int(rng.integers(1, 40))
        w = rng.standard_normal((n, k)).astype(np.float32)
        sym = i % 2 == 0
        q, s, z = block_quantize(w, 4, bs, sym, search=False)
        kb = s.shape[1]
        qpad = np.pad(q, ((0, 0), (0, kb * bs - k)))
        packed = _pack(qpad.reshape(n, kb, bs), 4)
        zps = None if sym else _pack(z, 4).reshape(-1)
        dt = np.float32 if i % 5 else np.float16
        a = rng.standard_normal((int(rng.integers(1, 4)), 3, k)).astype(dt)
        bias = rng.standard_normal(n).astype(dt) if i % 3 == 0 else None
        args = (a, packed, s.reshape(-1).astype(dt), zps, None, bias)
        kw = dict(K=k, N=n, block_size=bs, bits=4)
        got = fast.matmul_nbits(*args, **kw)[0]
        np.testing.assert_array_equal(got, cm.matmul_nbits(*args, **kw)[0])
        idx = np.arange(k) // bs
        deq = (q.astype(np.float64) - z[:, idx]) * s[:, idx].astype(dt).astype(np.float64)
        want = a.astype(np.float64) @ deq.T + (0 if bias is None else bias.astype(np.float64))
        tol = 1e-3 if dt == np.float32 else 2e-2
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol,
                                   atol=tol * np.abs(want).max())


def test_qlinear_conv_equals_reference():
    rng = np.random.default_rng(31)
    for i in range(N_CONFIGS):
        group = int(rng.choice([1, 1, 2]))
        cg = int(rng.choice([1, 4, 16, 70]))
        c, m = cg * group, group * int(rng.integers(1, 4))
        kh = int(rng.choice([1, 3]))
        h = int(rng.integers(kh, kh + 6))
        xdt = U8 if i % 2 else I8
        wdt = I8 if i % 3 else U8
        zk = ["low", "high", "rand"][i % 3]
        x = _q(rng, xdt, (int(rng.integers(1, 3)), c, h, h), i % 4 == 0)
        w = _q(rng, wdt, (m, cg, kh, kh), i % 4 == 0)
        xz = _zp(rng, xdt, zk)
        wz = _zp(rng, wdt, zk, m if i % 5 == 0 else None)
        x_s, w_s = np.float32(rng.uniform(1e-3, 0.05)), rng.uniform(1e-3, 0.05, m).astype(
            np.float32)
        y_s = np.float32(rng.choice([1e-3, 0.3, 30.0]))   # saturating, rounding, coarse
        ydt = U8 if rng.random() < 0.5 else I8
        y_zp = _zp(rng, ydt, zk)
        bias = rng.integers(-5000, 5000, m).astype(np.int32) if i % 2 else None
        kw = dict(pads=[1, 1, 1, 1] if i % 2 else None, strides=[1 + i % 2] * 2, group=group)
        got = fast.qlinear_conv(x, x_s, xz, w, w_s, wz, y_s, y_zp, bias, **kw)[0]
        ref = quantization.qlinear_conv(x, x_s, xz, w, w_s, wz, y_s, y_zp, bias, **kw)[0]
        np.testing.assert_array_equal(got, ref)


def test_dynamic_quantize_lstm_equals_reference():
    from pyonnx.ops.contrib import quantized as cq

    rng = np.random.default_rng(41)
    for i in range(N_CONFIGS):
        direction = ["forward", "reverse", "bidirectional"][i % 3]
        nd = 2 if direction == "bidirectional" else 1
        seq, batch = int(rng.integers(1, 5)), int(rng.integers(1, 4))
        ins, hs = int(rng.integers(1, 40)), int(rng.choice([1, 8, 33]))
        wdt = I8 if i % 2 else U8
        X = (rng.standard_normal((seq, batch, ins)) * 2).astype(np.float32)
        W = _q(rng, wdt, (nd, ins, 4 * hs), i % 4 == 0)
        R = _q(rng, wdt, (nd, hs, 4 * hs), i % 4 == 0)
        per_col = i % 5 == 0
        shape = (nd, 4 * hs) if per_col else (nd,)
        ws = rng.uniform(1e-3, 0.02, shape).astype(np.float32)
        rs = rng.uniform(1e-3, 0.02, shape).astype(np.float32)
        info = np.iinfo(wdt)
        wz = rng.integers(info.min, int(info.max) + 1, shape).astype(wdt)
        rz = rng.integers(info.min, int(info.max) + 1, shape).astype(wdt)
        B = rng.standard_normal((nd, 8 * hs)).astype(np.float32) if i % 2 else None
        P = rng.standard_normal((nd, 3 * hs)).astype(np.float32) if i % 3 == 0 else None
        lens = rng.integers(0, seq + 1, batch).astype(np.int32) if i % 4 == 1 else None
        kw = dict(direction=direction, clip=3.0 if i % 6 == 0 else None)
        args = (X, W, R, B, lens, None, None, P, ws, wz, rs, rz)
        got = fast.dynamic_quantize_lstm(*args, **kw)
        ref = cq.dynamic_quantize_lstm(*args, **kw)
        for g, r in zip(got, ref):
            np.testing.assert_array_equal(g, r)
