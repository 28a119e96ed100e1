"""com.microsoft QAttention: the reference kernel and the CPU provider's variant.

* exact: on N_CONFIGS random configurations (input hidden size K up to 4096, 8-bit values piled
  at the range ends, zero points at the range ends, int8/uint8 combinations, per-tensor and
  per-column weight parameters, every mask format, unidirectional, past state) the integer
  accumulator both kernels use equals an int64 NumPy product, the new keys and values in
  ``present`` equal that product scaled in float32 bit for bit, the output agrees with a float64
  attention of the same projection, and the fast variant equals the reference bit for bit;
* against onnxruntime's QAttention (CPU: uint8 input only) within one LSB-equivalent, with the
  differing elements counted;
* bad input raises a typed pyonnx error that names the node; what pyonnx does not implement
  (do_rotary, packed 3 * batch + 2 mask indices) raises UnsupportedOperatorError and has an
  xfail test against onnxruntime.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import pyonnx
from pyonnx.backends.cpu import quantized as fast
from pyonnx.errors import PyOnnxError, ResourceLimitExceeded, UnsupportedOperatorError
from pyonnx.ops.contrib import attention as ca
from pyonnx.ops.contrib import matmul as cm
from pyonnx.ops.registry import KernelContext

N_CONFIGS = 120
U8, I8 = np.dtype(np.uint8), np.dtype(np.int8)
MASK_FILTER = -10000.0
CTX2 = KernelContext(num_outputs=2, outputs_used=(True, True))


# ------------------------------------------------------------------------- random configurations

def _q(rng: np.random.Generator, dtype: np.dtype, shape: tuple, ends: bool) -> np.ndarray:
    info = np.iinfo(dtype)
    if ends:   # values piled at the range ends: the largest products
        return rng.choice(np.array([info.min, info.max], dtype), size=shape)
    return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=np.int64).astype(dtype)


def _zp(rng: np.random.Generator, dtype: np.dtype, kind: str, size: int | None = None
        ) -> np.ndarray:
    info = np.iinfo(dtype)
    shape = () if size is None else (size,)
    if kind == "low":
        return np.full(shape, info.min, dtype)
    if kind == "high":
        return np.full(shape, info.max, dtype)
    return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=np.int64).astype(dtype)


MASK_KINDS = ("none", "lengths", "end_start", "raw2d", "raw3d", "dummy")


def _mask(rng: np.random.Generator, kind: str, b: int, s: int, t: int) -> np.ndarray | None:
    """A mask_index of one of onnxruntime's CPU formats for (batch b, sequence s, total t)."""
    if kind == "none":
        return None
    if kind == "lengths":
        return rng.integers(1, t + 1, size=b).astype(np.int32)
    if kind == "end_start":
        end = rng.integers(1, t + 1, size=b)
        start = rng.integers(0, end)
        return np.concatenate([end, start]).astype(np.int32)
    if kind == "raw2d":
        return rng.integers(0, 2, size=(b, t)).astype(np.int32)
    if kind == "raw3d":
        return rng.integers(0, 2, size=(b, s, t)).astype(np.int32)
    return np.ones((b, 1), np.int32)   # "dummy": one value broadcast over the keys


def _config(rng: np.random.Generator, i: int, *, ort_only: bool = False) -> dict[str, Any]:
    """The inputs and attributes of one random QAttention node (``ort_only``: what onnxruntime's
    CPU kernel accepts: uint8 input, K up to 1024)."""
    ks = [1, 7, 64, 255, 256, 257, 513, 1024] + ([] if ort_only else [2049, 4096])
    k = int(rng.choice(ks))
    b, s = int(rng.integers(1, 3)), int(rng.integers(1, 5))
    heads, head_size = int(rng.integers(1, 4)), int(rng.choice([1, 2, 4, 8]))
    hidden = heads * head_size
    xdt = U8 if ort_only or rng.random() < 0.7 else I8
    wdt = I8 if rng.random() < 0.6 else U8
    zk = ["low", "high", "rand"][i % 3]
    ends = i % 4 == 0
    per_column = bool(rng.random() < 0.5)
    cols = 3 * hidden if per_column else None
    x = _q(rng, xdt, (b, s, k), ends)
    w = _q(rng, wdt, (k, 3 * hidden), ends)
    x_zp = _zp(rng, xdt, zk)
    w_zp = _zp(rng, wdt, zk, cols)
    # scales that keep the projection near unit size: scores neither flat nor one-hot
    unit = 1.0 / (np.sqrt(k) * 128.0 * 128.0)
    x_scale = np.array(rng.uniform(0.5, 2.0) * 128.0 * unit, np.float32)
    w_scale = (rng.uniform(0.5, 4.0, size=cols or ()) / 128.0).astype(np.float32)
    bias = rng.standard_normal(3 * hidden).astype(np.float32)
    past_len = int(rng.integers(1, 4)) if rng.random() < 0.3 else 0
    past = (rng.standard_normal((2, b, heads, past_len, head_size)).astype(np.float32)
            if past_len else None)
    mask_kind = MASK_KINDS[i % len(MASK_KINDS)]
    attrs: dict[str, Any] = {"num_heads": heads, "unidirectional": int(rng.random() < 0.4)}
    if rng.random() < 0.2:
        attrs["scale"] = float(rng.uniform(0.05, 1.0))
    if rng.random() < 0.2:
        attrs["mask_filter_value"] = -1.0
    return {"inputs": [x, w, bias, x_scale, w_scale, _mask(rng, mask_kind, b, s, past_len + s),
                       x_zp, w_zp, past], "attrs": attrs, "mask_kind": mask_kind,
            "what": f"config {i}: B={b} S={s} K={k} heads={heads} head_size={head_size} "
                    f"{xdt}x{wdt} zp={zk} ends={ends} per_column={per_column} "
                    f"past={past_len} mask={mask_kind} {attrs}"}


# ---------------------------------------------------------------------- the independent oracle

def _int64_product(x: np.ndarray, x_zp: np.ndarray, w: np.ndarray, w_zp: np.ndarray
                   ) -> np.ndarray:
    return (x.astype(np.int64) - np.asarray(x_zp).astype(np.int64)) @ (
        w.astype(np.int64) - np.asarray(w_zp).astype(np.int64))


def _projection(x, w, bias, x_scale, w_scale, x_zp, w_zp) -> np.ndarray:
    """The float32 [Q K V] as the operator defines it: the exact integer product times
    (input_scale * weight_scale), plus bias."""
    acc = _int64_product(x, x_zp, w, w_zp)
    return acc.astype(np.float32) * (np.float32(x_scale) * w_scale.astype(np.float32)) + bias


def _keep(mask: np.ndarray | None, b: int, s: int, t: int) -> np.ndarray:
    """(B, S, T) bool: which keys each query may see under ``mask`` (formats of _mask)."""
    j = np.arange(t)
    if mask is None or (mask.ndim == 2 and mask.shape[1] == 1 and t != 1):
        return np.ones((b, s, t), bool)
    if mask.ndim == 1 and mask.shape[0] == b:
        return np.broadcast_to((j[None, :] < mask[:, None])[:, None], (b, s, t))
    if mask.ndim == 1:
        end, start = mask[:b, None], mask[b:, None]
        return np.broadcast_to(((j[None] < end) & (j[None] >= start))[:, None], (b, s, t))
    if mask.ndim == 2:
        return np.broadcast_to((mask != 0)[:, None], (b, s, t))
    return mask != 0


def _attention64(qkv: np.ndarray, heads: int, mask, past, unidirectional: int,
                 scale: float | None, mask_filter: float) -> tuple[np.ndarray, np.ndarray]:
    """Attention in float64 on a float32 projection: (output (B, S, hidden), which (B, S)
    query rows have no key left unmasked)."""
    b, s, three_h = qkv.shape
    hidden = three_h // 3
    hs = hidden // heads

    def split(a):
        return a.reshape(b, s, heads, hs).transpose(0, 2, 1, 3).astype(np.float64)

    q, k, v = (split(qkv[..., i * hidden:(i + 1) * hidden]) for i in range(3))
    p = 0
    if past is not None:
        p = past.shape[3]
        k = np.concatenate([past[0].astype(np.float64), k], axis=2)
        v = np.concatenate([past[1].astype(np.float64), v], axis=2)
    t = k.shape[2]
    sc = 1.0 / np.sqrt(hs) if not scale else scale
    scores = q @ k.transpose(0, 1, 3, 2) * sc
    keep = _keep(mask, b, s, t)
    scores = scores + np.where(keep, 0.0, mask_filter)[:, None]
    visible = np.ones((s, t), bool)
    if unidirectional:
        visible = np.arange(t)[None, :] <= np.arange(s)[:, None] + p
        scores = np.where(visible, scores, -np.inf)
    scores -= scores.max(axis=-1, keepdims=True)
    e = np.exp(scores)
    out = (e / e.sum(axis=-1, keepdims=True)) @ v
    all_masked = ~(keep & visible).any(axis=-1)
    return out.transpose(0, 2, 1, 3).reshape(b, s, hidden), all_masked


def _tolerance(v_abs_max: float, all_masked: np.ndarray, hidden: int) -> np.ndarray:
    """Per-element absolute tolerance of a float32 attention against float64: tight, except on
    query rows whose keys are all masked, where adding mask_filter_value (-10000) in float32
    rounds the scores to about 1e-3."""
    tol = np.where(all_masked, 4e-4, 2e-5) * max(v_abs_max, 1.0)
    return np.broadcast_to(tol[..., None], all_masked.shape + (hidden,))


def _capturing(int_matmul):
    """``int_matmul`` that also records each accumulator it returns."""
    seen: list[np.ndarray] = []

    def wrapped(*args):
        acc = int_matmul(*args)
        seen.append(acc)
        return acc

    return wrapped, seen


# ---------------------------------------------------------------------------------- exactness

def test_exact_against_int64_reference_and_fast_equals_reference() -> None:
    rng = np.random.default_rng(14)
    ref_mm, ref_seen = _capturing(cm._int_matmul)
    fast_mm, fast_seen = _capturing(fast._int_matmul)
    ref_kernel, fast_kernel = ca.qattention_kernel(ref_mm), ca.qattention_kernel(fast_mm)
    masks_seen = set()
    for i in range(N_CONFIGS):
        cfg = _config(rng, i)
        x, w, bias, x_scale, w_scale, mask, x_zp, w_zp, past = cfg["inputs"]
        attrs = cfg["attrs"]
        what = cfg["what"]
        ref_out, ref_present = ref_kernel(*cfg["inputs"], ctx=CTX2, **attrs)
        fast_out, fast_present = fast_kernel(*cfg["inputs"], ctx=CTX2, **attrs)
        # the integer product, exactly
        want_acc = _int64_product(x, x_zp, w, w_zp)
        for seen in (ref_seen, fast_seen):
            np.testing.assert_array_equal(seen.pop(), want_acc, err_msg=what)
        # the scaled projection, bit for bit, in present's new keys and values
        qkv = _projection(x, w, bias, x_scale, w_scale, x_zp, w_zp)
        b, s, _ = x.shape
        heads = attrs["num_heads"]
        hidden = w.shape[1] // 3
        p = 0 if past is None else past.shape[3]
        new_kv = qkv[..., hidden:].reshape(b, s, 2, heads, hidden // heads).transpose(2, 0, 3, 1, 4)
        np.testing.assert_array_equal(ref_present[:, :, :, p:], new_kv, err_msg=what)
        if past is not None:
            np.testing.assert_array_equal(ref_present[:, :, :, :p], past, err_msg=what)
        # the attention, against float64
        want, all_masked = _attention64(qkv, heads, mask, past, attrs["unidirectional"],
                                        attrs.get("scale"),
                                        attrs.get("mask_filter_value", MASK_FILTER))
        tol = _tolerance(float(np.abs(ref_present[1]).max()), all_masked, hidden)
        err = np.abs(ref_out.astype(np.float64) - want)
        assert (err <= tol).all(), f"{what}: max error {err.max()} (tolerance {tol.max()})"
        assert ref_out.dtype == np.float32 and ref_out.shape == (b, s, hidden)
        # the CPU provider's variant: the reference's results
        np.testing.assert_array_equal(fast_out, ref_out, err_msg=what)
        np.testing.assert_array_equal(fast_present, ref_present, err_msg=what)
        masks_seen.add(cfg["mask_kind"])
    assert masks_seen == set(MASK_KINDS)


def test_large_k_accumulator_exceeds_float32_yet_is_exact() -> None:
    """K = 4096 at the range ends: partial sums pass 2^24, where one float32 GEMM is inexact;
    both kernels' accumulators are still the int64 product."""
    k, hidden = 4096, 4
    x = np.full((1, 2, k), 255, np.uint8)
    w = np.full((k, 3 * hidden), -128, np.int8)
    w[::2] = 127
    x_zp, w_zp = np.uint8(0), np.int8(-128)
    want = _int64_product(x, x_zp, w, w_zp)
    assert np.abs(want).max() > 1 << 24
    for int_matmul in (cm._int_matmul, fast._int_matmul):
        mm, seen = _capturing(int_matmul)
        ca.qattention_kernel(mm)(x, w, np.zeros(3 * hidden, np.float32), np.float32(1e-6),
                                 np.float32(1e-3), None, x_zp, w_zp, num_heads=2)
        np.testing.assert_array_equal(seen[0], want)


def test_float16_parameters_compute_in_float32() -> None:
    """float16 scales, bias and past (T3 allows them; onnxruntime's CPU kernel does not): the
    float32 computation on the same values, rounded to float16 at the end."""
    rng = np.random.default_rng(3)
    cfg = _config(rng, 1)
    x, w, bias, x_scale, w_scale, mask, x_zp, w_zp, _ = cfg["inputs"]
    heads = cfg["attrs"]["num_heads"]
    past = rng.standard_normal((2, x.shape[0], heads, 2, w.shape[1] // 3 // heads))
    half = [a.astype(np.float16) for a in (bias, x_scale, w_scale, past)]
    out16, present16 = ca.qattention(x, w, half[0], half[1], half[2], mask, x_zp, w_zp, half[3],
                                     num_heads=heads, ctx=CTX2)
    as32 = [a.astype(np.float32) for a in half]
    out32, present32 = ca.qattention(x, w, as32[0], as32[1], as32[2], mask, x_zp, w_zp, as32[3],
                                     num_heads=heads, ctx=CTX2)
    assert out16.dtype == present16.dtype == np.float16
    np.testing.assert_array_equal(out16, out32.astype(np.float16))
    np.testing.assert_array_equal(present16, present32.astype(np.float16))


def test_runs_in_a_session_with_the_fast_variant_and_infers_shapes() -> None:
    pytest.importorskip("onnx")
    from pyonnx.backends.cpu.registry import get_fast_kernel
    from tests.contrib._compare import feeds, one_node_model

    assert get_fast_kernel("com.microsoft", "QAttention", 1) is fast.qattention
    cfg = _config(np.random.default_rng(5), 2)
    names = ["x", "w", "b", "xs", "ws", "m", "xz", "wz", "past"]
    pairs = list(zip(names, cfg["inputs"]))
    model = one_node_model("QAttention", pairs, 2, cfg["attrs"], initializers=["w", "ws", "wz"])
    got = pyonnx.InferenceSession(model).run(None, feeds(pairs, ["w", "ws", "wz"]))
    want = ca.qattention(*cfg["inputs"], ctx=CTX2, **cfg["attrs"])
    for g, r in zip(got, want):
        np.testing.assert_array_equal(g, r)
    # shape inference with symbolic batch and sequence
    import onnx

    proto = onnx.load_from_string(model)
    for vi in proto.graph.input:
        if vi.name == "x":
            vi.type.tensor_type.shape.dim[0].dim_param = "batch"
            vi.type.tensor_type.shape.dim[1].dim_param = "seq"
    inferred = pyonnx.infer_shapes(pyonnx.load(proto.SerializeToString()))
    types = {v.name: v.type for v in inferred.graph.outputs}
    heads = cfg["attrs"]["num_heads"]
    hidden = cfg["inputs"][1].shape[1] // 3
    assert types["y0"].shape == ("batch", "seq", hidden)
    assert tuple(types["y1"].shape)[:3] == (2, "batch", heads)
    assert types["y1"].shape[4] == hidden // heads


# ------------------------------------------------------------------------------ onnxruntime

N_ORT = 48


def _ort_pairs(cfg: dict[str, Any]) -> list[tuple[str, Any]]:
    return list(zip(["x", "w", "b", "xs", "ws", "m", "xz", "wz", "past"], cfg["inputs"]))


def test_against_onnxruntime_within_one_lsb() -> None:
    """onnxruntime's QAttention on uint8 input: every output element within one LSB-equivalent,
    the value of one unit of the integer projection (input_scale * the smallest weight scale;
    the output mixes rows of V, so an error of one unit there moves it by at most one LSB).
    Elements that differ at all are counted and must be few. Where onnxruntime's uint8 x int8
    product saturates (``ort_u8s8_saturates``: AVX2 without VNNI) int8 weights are 7-bit, as
    its quantizer makes them for such CPUs; exactness on the full range is tested against
    int64 above."""
    pytest.importorskip("onnxruntime")
    from tests.contrib._compare import feeds, one_node_model
    from tests.ops._oracle import ort_session_run, ort_u8s8_saturates, pyonnx_session_run

    rng = np.random.default_rng(32)
    differing = total = 0
    worst = 0.0
    seven_bit = ort_u8s8_saturates()
    for i in range(N_ORT):
        cfg = _config(rng, i, ort_only=True)
        if seven_bit and cfg["inputs"][1].dtype == np.int8:
            cfg["inputs"][1] >>= 1  # [-64, 63], the range ends kept at the ends
        pairs = _ort_pairs(cfg)
        inits = ["w", "ws", "wz"] if i % 2 else []    # onnxruntime pre-packs constant weights
        model = one_node_model("QAttention", pairs, 2, cfg["attrs"], initializers=inits)
        feed = feeds(pairs, inits)
        ref, got = ort_session_run(model, feed), pyonnx_session_run(model, feed)
        lsb = float(np.float32(cfg["inputs"][3]) * np.min(cfg["inputs"][4]))
        for r, g, name in zip(ref, got, ("output", "present")):
            assert g.dtype == r.dtype and g.shape == r.shape, f"{cfg['what']} {name}"
            err = np.abs(g.astype(np.float64) - r.astype(np.float64)) / lsb
            assert err.max() <= 1.0, f"{cfg['what']}: {name} off by {err.max():.3f} LSB"
            worst = max(worst, float(err.max()))
            differing += int((g != r).sum())
            total += g.size
    print(f"\nQAttention vs onnxruntime: {N_ORT} configurations, {differing} of {total} "
          f"elements differ, worst {worst:.4f} LSB")
    assert differing <= total // 10


@pytest.mark.xfail(raises=UnsupportedOperatorError, strict=True,
                   reason="do_rotary=1: pyonnx raises; onnxruntime's CPU QAttention accepts the "
                          "attribute and does not apply any rotary embedding, which pyonnx will "
                          "not imitate silently")
def test_do_rotary_against_onnxruntime() -> None:
    pytest.importorskip("onnxruntime")
    from tests.ops._oracle import run_ort, run_pyonnx

    cfg = _config(np.random.default_rng(7), 3, ort_only=True)
    attrs = {**cfg["attrs"], "do_rotary": 1}
    pairs = _ort_pairs(cfg)
    ref = run_ort("QAttention", pairs, attrs, opset=17, domain="com.microsoft")
    got = run_pyonnx("QAttention", pairs, attrs, opset=17, domain="com.microsoft")
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-4, atol=1e-4)


@pytest.mark.xfail(raises=UnsupportedOperatorError, strict=True,
                   reason="a (3 * batch + 2) mask_index (key lengths then cumulative query and "
                          "key offsets of packed sequences) is not implemented; onnxruntime's "
                          "CPU kernel reads its first batch entries as key lengths")
def test_packed_mask_index_against_onnxruntime() -> None:
    pytest.importorskip("onnxruntime")
    from tests.ops._oracle import run_ort, run_pyonnx

    cfg = _config(np.random.default_rng(8), 0, ort_only=True)
    x = cfg["inputs"][0]
    b, s = x.shape[:2]
    lengths = np.full(b, s, np.int32)
    offsets = np.arange(b + 1, dtype=np.int32) * s
    cfg["inputs"][5] = np.concatenate([lengths, offsets, offsets])
    pairs = _ort_pairs(cfg)
    ref = run_ort("QAttention", pairs, cfg["attrs"], opset=17, domain="com.microsoft")
    got = run_pyonnx("QAttention", pairs, cfg["attrs"], opset=17, domain="com.microsoft")
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------- errors

B, S, K, HEADS, HS = 2, 3, 8, 2, 2
HID = HEADS * HS
GOOD = {"x": np.zeros((B, S, K), np.uint8), "w": np.zeros((K, 3 * HID), np.int8),
        "b": np.zeros(3 * HID, np.float32), "xs": np.array(0.1, np.float32),
        "ws": np.array(0.1, np.float32), "m": None, "xz": np.array(128, np.uint8),
        "wz": np.array(0, np.int8), "past": None}

BAD = {
    "input not 3-D": {"x": np.zeros((B * S, K), np.uint8)},
    "weight rows": {"w": np.zeros((K + 1, 3 * HID), np.int8)},
    "weight columns": {"w": np.zeros((K, 3 * HID + 3), np.int8),
                       "b": np.zeros(3 * HID + 3, np.float32)},
    "bias shape": {"b": np.zeros(HID, np.float32)},
    "weight_scale size": {"ws": np.full(5, 0.1, np.float32)},
    "input_scale not scalar": {"xs": np.full(2, 0.1, np.float32)},
    "input_zero_point not scalar": {"xz": np.full(2, 128, np.uint8)},
    "weight_zero_point size": {"wz": np.zeros(3, np.int8)},
    "mask shape": {"m": np.ones((B, S + 1), np.int32)},
    "past shape": {"past": np.zeros((2, B, HEADS + 1, 1, HS), np.float32)},
    "input float": {"x": np.zeros((B, S, K), np.float32)},
    "zero point type": {"xz": np.array(0, np.int8)},
    "scale type": {"xs": np.array(0.1, np.float16)},
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_a_typed_error_naming_the_node(case: str) -> None:
    pytest.importorskip("onnx")
    from onnx import helper

    from tests.contrib._compare import feeds

    inputs = {**GOOD, **BAD[case]}
    names = list(inputs)
    node = helper.make_node("QAttention", [n if inputs[n] is not None else "" for n in names],
                            ["y"], name="qattn_node", domain="com.microsoft", num_heads=HEADS)
    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype),
                                                  a.shape)
                    for n, a in inputs.items() if a is not None]
    graph = helper.make_graph([node], "g", graph_inputs,
                              [helper.make_tensor_value_info("y", 1, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    with pytest.raises(PyOnnxError, match="qattn_node"):
        session = pyonnx.InferenceSession(model.SerializeToString())
        session.run(None, feeds(list(inputs.items())))


def test_unsupported_settings_name_the_attribute() -> None:
    args = [GOOD[n] for n in ("x", "w", "b", "xs", "ws")]
    with pytest.raises(UnsupportedOperatorError, match="do_rotary"):
        ca.qattention(*args, num_heads=HEADS, do_rotary=1)
    with pytest.raises(UnsupportedOperatorError, match="3 \\* batch"):
        ca.qattention(*args, np.zeros(3 * B + 2, np.int32), num_heads=HEADS)
    with pytest.raises(PyOnnxError, match="past_present_share_buffer"):
        ca.qattention(*args, None, None, None, np.zeros((2, B, HEADS, 1, HS), np.float32),
                      num_heads=HEADS, past_present_share_buffer=1)
    with pytest.raises(PyOnnxError, match="num_heads"):
        ca.qattention(*args, num_heads=3)
    with pytest.raises(PyOnnxError, match="bias input is required"):
        ca.qattention(args[0], args[1], None, *args[3:], num_heads=HEADS)
    small = KernelContext(num_outputs=1, outputs_used=(True,), max_tensor_bytes=100)
    with pytest.raises(ResourceLimitExceeded, match="QAttention projection"):
        ca.qattention(*args, num_heads=HEADS, ctx=small)


# ------------------------------------------------------------------------ quantize_dynamic

def _attention_model(rng: np.random.Generator, *, past: bool = False, attrs=None,
                     extra_input: bool = False) -> bytes:
    """A float com.microsoft Attention node with a constant weight and bias: inputs x (batch,
    seq, 32), mask (batch, past + seq) and, with ``past``, past state and a present output."""
    from onnx import helper, numpy_helper

    d, heads, hs = 32, 4, 8
    w = (rng.standard_normal((d, 3 * heads * hs)) * 0.2).astype(np.float32)
    bias = (rng.standard_normal(3 * heads * hs) * 0.1).astype(np.float32)
    names = ["x", "W", "bias", "mask", "past" if past else ""]
    inputs = [helper.make_tensor_value_info("x", 1, ["batch", "seq", d]),
              helper.make_tensor_value_info("mask", 6, ["batch", "total"])]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(bias, "bias")]
    if past:
        inputs.append(helper.make_tensor_value_info("past", 1, [2, "batch", heads, "p", hs]))
    if extra_input:   # attention_bias: QAttention has no such input
        names.append("ab")
        inputs.append(helper.make_tensor_value_info("ab", 1, [1, heads, "seq", "total"]))
    node = helper.make_node("Attention", names, ["y", "present"] if past else ["y"],
                            name="attn", domain="com.microsoft",
                            **{"num_heads": heads, **(attrs or {})})
    shapes = {"y": ["batch", "seq", heads * hs], "present": [None] * 5}
    outs = [helper.make_tensor_value_info(o, 1, shapes[o]) for o in node.output]
    model = helper.make_model(helper.make_graph([node], "g", inputs, outs, initializer=inits),
                              opset_imports=[helper.make_opsetid("", 17),
                                             helper.make_opsetid("com.microsoft", 1)])
    return model.SerializeToString()


@pytest.mark.parametrize("per_channel,reduce_range,past",
                         [(False, False, False), (True, True, True)])
def test_quantize_dynamic_writes_qattention_as_onnxruntime_does(tmp_path, per_channel: bool,
                                                                reduce_range: bool,
                                                                past: bool) -> None:
    """com.microsoft Attention becomes DynamicQuantizeLinear + QAttention with the weights,
    scales and zero points onnxruntime's quantizer writes; the model runs in pyonnx within one
    LSB of onnxruntime and stays close to the float model."""
    pytest.importorskip("onnxruntime")
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    from pyonnx.quantization import quantize_dynamic
    from tests.ops._oracle import ort_session_run, pyonnx_session_run

    rng = np.random.default_rng(9)
    src = tmp_path / "float.onnx"
    src.write_bytes(_attention_model(rng, past=past, attrs={"unidirectional": 1}))
    ours, theirs = tmp_path / "pyonnx.onnx", tmp_path / "ort.onnx"
    kw = {"per_channel": per_channel, "reduce_range": reduce_range}
    quantize_dynamic(str(src), str(ours), **kw)
    ort_quantize_dynamic(str(src), str(theirs), **kw)
    mine, ref = onnx.load(str(ours)), onnx.load(str(theirs))
    assert [(n.op_type, n.domain or "") for n in mine.graph.node] == \
        [("DynamicQuantizeLinear", ""), ("QAttention", "com.microsoft")]
    assert [n.op_type for n in mine.graph.node] == [n.op_type for n in ref.graph.node]
    pyonnx.check_model(str(ours), full_check=True)   # schema and shape rule included
    ref_inits = {i.name: numpy_helper.to_array(i) for i in ref.graph.initializer}
    for init in mine.graph.initializer:
        np.testing.assert_array_equal(numpy_helper.to_array(init), ref_inits[init.name])

    b, s, p = 2, 5, 3 if past else 0
    x = rng.standard_normal((b, s, 32)).astype(np.float32)
    mask = np.ones((b, p + s), np.int32)
    mask[1, -2:] = 0
    feed = {"x": x, "mask": mask}
    if past:
        feed["past"] = rng.standard_normal((2, b, 4, p, 8)).astype(np.float32)
    got, want = pyonnx_session_run(ours.read_bytes(), feed), ort_session_run(ours.read_bytes(),
                                                                              feed)
    # one LSB: a unit of the integer projection (x's run-time scale from its range, as
    # DynamicQuantizeLinear computes it, times the smallest weight scale)
    x_scale = (max(x.max(), 0.0) - min(x.min(), 0.0)) / 255.0
    lsb = x_scale * float(ref_inits["W_scale"].min())
    for g, r in zip(got, want):
        assert g.dtype == r.dtype and g.shape == r.shape
        assert np.abs(g - r).max() <= lsb
    options = ort.SessionOptions()
    options.log_severity_level = 3
    (y_float, *_) = ort.InferenceSession(str(src), options).run(None, feed)
    cos = float((got[0] * y_float).sum() / np.linalg.norm(got[0]) / np.linalg.norm(y_float))
    assert cos > 0.999


@pytest.mark.parametrize("what", ["qkv_hidden_sizes", "attention_bias"])
def test_quantize_dynamic_keeps_attention_that_qattention_cannot_express(what: str) -> None:
    from pyonnx.quantization import quantize_dynamic_model

    rng = np.random.default_rng(10)
    if what == "qkv_hidden_sizes":
        model = _attention_model(rng, attrs={"qkv_hidden_sizes": [32, 32, 32]})
    else:
        model = _attention_model(rng, extra_input=True)
    q = quantize_dynamic_model(model)
    assert [n.op_type for n in q.graph.nodes] == ["Attention"]


def test_shape_inference_with_past_and_a_bad_weight() -> None:
    pytest.importorskip("onnx")
    from onnx import helper

    from pyonnx.errors import ShapeInferenceError

    def model(columns: int) -> pyonnx.Model:
        names = ["x", "w", "b", "xs", "ws", "", "", "", "past"]
        node = helper.make_node("QAttention", names, ["y", "present"], name="qa",
                                domain="com.microsoft", num_heads=2)
        inputs = [helper.make_tensor_value_info("x", 2, ["batch", "seq", 8]),
                  helper.make_tensor_value_info("w", 3, [8, columns]),
                  helper.make_tensor_value_info("b", 1, [columns]),
                  helper.make_tensor_value_info("xs", 1, []),
                  helper.make_tensor_value_info("ws", 1, []),
                  helper.make_tensor_value_info("past", 1, [2, "batch", 2, "p", 4])]
        outs = [helper.make_tensor_value_info(o, 1, None) for o in ("y", "present")]
        proto = helper.make_model(helper.make_graph([node], "g", inputs, outs),
                                  opset_imports=[helper.make_opsetid("", 17),
                                                 helper.make_opsetid("com.microsoft", 1)])
        return pyonnx.load(proto.SerializeToString())

    inferred = pyonnx.infer_shapes(model(24))
    types = {v.name: v.type for v in inferred.graph.outputs}
    assert types["y"].shape == ("batch", "seq", 8)
    present = types["present"].shape
    assert present[:3] == (2, "batch", 2) and present[4] == 4
    assert present[3] in ("p+seq", "seq+p")
    with pytest.raises(ShapeInferenceError, match="qa"):
        pyonnx.infer_shapes(model(15), strict=True)   # hidden 5 is not a multiple of 2 heads
