"""com.microsoft GatherBlockQuantized: the reference kernel against a NumPy reference (dequantize
the whole table, then gather) and against onnxruntime, its shape rule, its errors, and the
weight-only quantizer's use of it for embedding tables (tiny models and gpt2_small)."""

from __future__ import annotations

import os

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyonnx
from pyonnx.errors import ExecutionError
from pyonnx.ops.contrib.quantized import gather_block_quantized
from pyonnx.quantization.weight_only import (GATHER_MIN_BYTES, block_quantize,
                                             quantize_weight_only, quantize_weight_only_model)
from tests.quantization._models import SHARED, cosine, full_check, op_counts, run_ort, run_pyonnx

MS = "com.microsoft"
# (element type of data, bits): what onnxruntime's CPU kernel registers for integer data
KINDS = [("int4", 4), ("uint4", 4), ("uint8", 4), ("uint8", 8), ("uint8", 2)]
_NP = {"int4": ml_dtypes.int4, "uint4": ml_dtypes.uint4, "uint8": np.uint8}
_ONNX = {"int4": TensorProto.INT4, "uint4": TensorProto.UINT4, "uint8": TensorProto.UINT8}


def _pack_last(v: np.ndarray, bits: int) -> np.ndarray:
    """``8 // bits`` values a byte along the last axis, the first in the lowest bits."""
    per = 8 // bits
    v = v.astype(np.uint8).reshape(v.shape[:-1] + (-1, per))
    return sum((v[..., i] << (i * bits)).astype(np.uint8) for i in range(per)).astype(np.uint8)


def _case(kind: str, bits: int, shape: tuple[int, ...], qa: int, block: int, with_zp: bool,
          seed: int = 0):
    """Random quantized values, scales and zero points of logical ``shape``, blocked along
    ``qa``: (stored data, scales, zero points or None, the full table dequantized by NumPy)."""
    rng = np.random.default_rng(seed)
    lo, hi = {"int4": (-8, 7), "uint4": (0, 15)}.get(kind, (0, (1 << bits) - 1))
    q = rng.integers(lo, hi + 1, shape)
    sshape = list(shape)
    sshape[qa] = -(-shape[qa] // block)
    scales = rng.uniform(0.01, 0.2, sshape).astype(np.float32)
    zp = rng.integers(lo, hi + 1, sshape) if with_zp else None
    default_zp = (1 << (bits - 1)) if kind == "uint8" else 0
    def expand(p):   # each block's parameter repeated over its values along qa
        return np.repeat(p, block, axis=qa).take(np.arange(shape[qa]), axis=qa)

    table = ((q - (expand(zp) if with_zp else default_zp)) * expand(scales)).astype(np.float32)
    if kind == "uint8" and bits < 8:
        data = _pack_last(q, bits)
        zp_s = None if zp is None else _pack_last(
            np.pad(zp, [(0, 0)] * (zp.ndim - 1) + [(0, (-zp.shape[-1]) % (8 // bits))]), bits)
    else:
        data = q.astype(_NP[kind])
        zp_s = None if zp is None else zp.astype(_NP[kind])
    return data, scales, zp_s, table


def _reference(table: np.ndarray, indices: np.ndarray, axis: int) -> np.ndarray:
    """Gather with onnxruntime's rule for a bad index: zeros instead of an error."""
    n = table.shape[axis]
    ok = (indices >= -n) & (indices < n)
    out = np.take(table, np.where(ok, indices, 0), axis=axis)
    keep = ok.reshape((1,) * axis + ok.shape + (1,) * (table.ndim - axis - 1))
    return np.where(keep, out, np.float32(0))


def _model(data, indices_shape, scales, zp, kind, out_shape, **attrs) -> onnx.ModelProto:
    def init(name, arr):
        if arr.dtype in (np.dtype(ml_dtypes.int4), np.dtype(ml_dtypes.uint4)):
            return helper.make_tensor(name, _ONNX[kind], arr.shape,
                                      arr.astype(np.int8).ravel().tolist())
        return numpy_helper.from_array(arr, name)

    inits = [init("data", data), init("scales", scales)]
    if zp is not None:
        inits.append(init("zp", zp))
    node = helper.make_node("GatherBlockQuantized",
                            ["data", "ids", "scales"] + (["zp"] if zp is not None else []),
                            ["y"], domain=MS, **attrs)
    scale_type = helper.np_dtype_to_tensor_dtype(scales.dtype)
    graph = helper.make_graph([node], "gbq",
                              [helper.make_tensor_value_info("ids", TensorProto.INT64,
                                                             indices_shape)],
                              [helper.make_tensor_value_info("y", scale_type, out_shape)],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                   helper.make_opsetid(MS, 1)], ir_version=10)


def _check(kind, bits, shape, ga, qa, block, with_zp, ids, seed=0):
    data, scales, zp, table = _case(kind, bits, shape, qa, block, with_zp, seed)
    want = _reference(table, ids, ga)
    attrs = dict(gather_axis=ga, quantize_axis=qa, block_size=block, bits=bits)
    (got,) = gather_block_quantized(data, ids, scales, zp, **attrs)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    model = _model(data, list(ids.shape), scales, zp, kind, list(want.shape), **attrs)
    onnx.checker.check_model(model, full_check=True)
    feed = {"ids": ids}
    y_ort = run_ort(model, feed)
    np.testing.assert_array_equal(run_pyonnx(model, feed), y_ort)  # same float32 arithmetic
    return got


@pytest.mark.parametrize("kind,bits", KINDS)
@pytest.mark.parametrize("block", [32, 64, 128])
@pytest.mark.parametrize("with_zp", [False, True])
def test_embedding_layout_matches_numpy_and_onnxruntime(kind, bits, block, with_zp):
    # gather_axis 0, quantize_axis 1 (the embedding layout, the only one uint8 allows); 200
    # values a row: a partial last block for every block size
    ids = np.array([[3, 0, -1, 17], [5, 5, 99, -21]], np.int64)   # 99, -21: out of range
    _check(kind, bits, (20, 200), 0, 1, block, with_zp, ids)


@pytest.mark.parametrize("kind", ["int4", "uint4"])
@pytest.mark.parametrize("shape,ga,qa", [((40, 24), 1, 0), ((40, 24), 0, 0), ((40, 24), 1, 1),
                                         ((6, 40, 10), 1, 2), ((6, 40, 10), 2, 1),
                                         ((40, 6, 10), 0, -2)])
@pytest.mark.parametrize("with_zp", [False, True])
def test_4bit_axis_variations(kind, shape, ga, qa, with_zp):
    n = shape[ga]
    ids = np.array([[0, n - 1, -2], [7, n + 3, 2]], np.int64)
    _check(kind, 4, shape, ga, qa % len(shape), 16 if qa % len(shape) == ga else 32,
           with_zp, ids)


def test_float16_scales_and_int32_indices():
    data, scales, zp, table = _case("uint4", 4, (30, 64), 1, 32, True, seed=4)
    ids = np.array([2, 29, 0], np.int32)
    (got,) = gather_block_quantized(data, ids, scales.astype(np.float16), zp, block_size=32)
    assert got.dtype == np.float16
    q_scales = scales.astype(np.float16).astype(np.float32)
    want = _reference(((table / np.repeat(scales, 32, 1)) * np.repeat(q_scales, 32, 1)), ids, 0)
    np.testing.assert_allclose(got, want.astype(np.float16), rtol=1e-3)


def test_shape_inference():
    data, scales, _, _ = _case("uint8", 4, (20, 64), 1, 32, False)
    model = _model(data, [2, "seq"], scales, None, "uint8", [2, "seq", 64], block_size=32)
    model.graph.output[0].type.tensor_type.ClearField("shape")
    out = pyonnx.infer_shapes(pyonnx.load(model.SerializeToString()), strict=True)
    t = out.graph.outputs[0].type
    assert [d for d in t.shape] == [2, "seq", 64] and t.elem_type == pyonnx.ir.DataType.FLOAT


@pytest.mark.parametrize("change,match", [
    (dict(scales=np.ones((20, 3), np.float32)), "scales has shape"),
    (dict(gather_axis=1), "gather_axis 0"),
    (dict(bits=3), "bits 2, 4 or 8"),
    (dict(block_size=24), "power of two"),
    (dict(zp=np.zeros((20, 2), np.int8)), "zero_points is int8"),
])
def test_bad_inputs_raise(change, match):
    data, scales, _, _ = _case("uint8", 4, (20, 64), 1, 32, False)
    args = dict(data=data, indices=np.array([1]), scales=scales, zp=None, block_size=32)
    args.update(change)
    zp = args.pop("zp")
    with pytest.raises(pyonnx.PyOnnxError, match=match):
        gather_block_quantized(args.pop("data"), args.pop("indices"), args.pop("scales"), zp,
                               **args)
    with pytest.raises(ExecutionError, match="indices must be int32 or int64"):
        gather_block_quantized(data, np.array([1.0]), scales, block_size=32)


# --------------------------------------------------------------------------- the quantizer

def _tied_model(vocab: int = 4096, hidden: int = 64, seed: int = 0) -> onnx.ModelProto:
    """Gather(table) -> MatMul -> Relu -> MatMul(Transpose(table)): a tied embedding of 1 MiB,
    and a 32 x 64 position table read by a second Gather (under GATHER_MIN_BYTES)."""
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((vocab, hidden)).astype(np.float32)
    pos = (rng.standard_normal((32, hidden)) * 0.1).astype(np.float32)
    w = (rng.standard_normal((hidden, hidden)) * 0.2).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"], name="embed"),
        helper.make_node("Gather", ["pos", "pos_ids"], ["pe"], name="position"),
        helper.make_node("Add", ["emb", "pe"], ["x"], name="add"),
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Transpose", ["table"], ["tableT"], name="tied", perm=[1, 0]),
        helper.make_node("MatMul", ["r", "tableT"], ["logits"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "tied",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 8]),
         helper.make_tensor_value_info("pos_ids", TensorProto.INT64, [1, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 8, vocab])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(pos, "pos"),
         numpy_helper.from_array(w, "w")])
    assert table.nbytes >= GATHER_MIN_BYTES > pos.nbytes
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _tied_feed(vocab: int = 4096) -> dict:
    rng = np.random.default_rng(5)
    return {"ids": rng.integers(0, vocab, (1, 8)).astype(np.int64),
            "pos_ids": np.arange(8, dtype=np.int64)[None]}


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("block_size", [32, 64])
def test_matmulnbits_form_quantizes_the_tied_embedding(tmp_path, symmetric, block_size):
    src = _tied_model()
    out = str(tmp_path / "q.onnx")
    quantize_weight_only(src, out, form="matmulnbits", symmetric=symmetric,
                         block_size=block_size)
    full_check(out)
    ops = op_counts(out)
    # the large table's Gather is quantized, the small position table stays float
    assert ops[f"{MS}::GatherBlockQuantized"] == 1 and ops["Gather"] == 1
    assert ops[f"{MS}::MatMulNBits"] == 2 and "MatMul" not in ops and "Transpose" not in ops
    m = onnx.load(out)
    assert not any(i.name == "table" for i in m.graph.initializer)   # no float copy is left
    gbq = next(n for n in m.graph.node if n.op_type == "GatherBlockQuantized")
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    assert inits[gbq.input[0]].dtype == np.uint8 and inits[gbq.input[0]].shape == (4096, 32)
    assert (len(gbq.input) == 4) != symmetric
    # the embedding's rows are exactly the LM head's dequantized weight rows (one quantization)
    q, scale, zp = block_quantize(numpy_helper.to_array(src.graph.initializer[0]), 4,
                                  block_size, symmetric)
    ids = np.array([0, 7, 4095], np.int64)
    rows = (q[ids].astype(np.float32) - np.repeat(zp[ids], block_size, 1)) * \
        np.repeat(scale[ids], block_size, 1)
    (got,) = gather_block_quantized(*(inits[i] if i in inits else ids for i in gbq.input[:3]),
                                    *([inits[gbq.input[3]]] if len(gbq.input) == 4 else []),
                                    block_size=block_size, bits=4)
    np.testing.assert_allclose(got, rows, rtol=1e-6, atol=1e-7)
    feed = _tied_feed()
    y = run_ort(src, feed)
    yp, yo = run_pyonnx(out, feed), run_ort(out, feed, optimize=False)
    np.testing.assert_allclose(yp, yo, rtol=1e-4, atol=1e-4)
    assert cosine(y, yp) > 0.98


def test_gather_options(tmp_path):
    src = _tied_model()
    # naming the small Gather quantizes it too; op_types without Gather keeps both float
    m = quantize_weight_only_model(src, form="matmulnbits",
                                   nodes_to_quantize=["embed", "position", "mm", "head"])
    assert sum(n.op_type == "GatherBlockQuantized" for n in m.graph.nodes) == 2
    m = quantize_weight_only_model(src, form="matmulnbits", op_types=("MatMul",))
    assert sum(n.op_type == "Gather" for n in m.graph.nodes) == 2
    # the QDQ form keeps its default (the tied table's DequantizeLinear feeds the Gather);
    # a listed Gather of its own table reads it through a blocked DequantizeLinear
    m = quantize_weight_only_model(src, form="qdq")
    assert sum(n.op_type == "DequantizeLinear" for n in m.graph.nodes) == 2
    m = quantize_weight_only_model(src, form="qdq", op_types=("MatMul", "Gather"),
                                   nodes_to_quantize=["embed", "position", "mm", "head"])
    assert sum(n.op_type == "DequantizeLinear" for n in m.graph.nodes) == 3
    path = str(tmp_path / "qdq.onnx")
    pyonnx.save(m, path)
    full_check(path)
    feed = _tied_feed()
    assert cosine(run_ort(src, feed), run_pyonnx(path, feed)) > 0.98
    with pytest.raises(pyonnx.InvalidArgument, match="Conv"):
        quantize_weight_only_model(src, op_types=("MatMul", "Conv"))


@pytest.mark.skipif(not os.path.isdir(SHARED),
                    reason="../shared/models is absent (it lives beside the checkout in CI)")
def test_gpt2_small_matmulnbits_form_with_quantized_embedding(tmp_path):
    from tests.models.test_real_models import shared_feeds

    src = os.path.join(SHARED, "gpt2_small.onnx")
    calib = [shared_feeds("gpt2_small", seed=100 + i) for i in range(8)]
    out = str(tmp_path / "q.onnx")
    quantize_weight_only(src, out, form="matmulnbits", symmetric=False, block_size=32,
                         algorithm="gptq", calibration_feeds=calib)
    full_check(out)
    ops = op_counts(out)
    f = onnx.load(src)
    consts = {i.name for i in f.graph.initializer}
    consts |= {n.output[0] for n in f.graph.node
               if n.op_type == "Transpose" and n.input[0] in consts}
    n_weights = sum(n.op_type in ("MatMul", "Gemm") and n.input[1] in consts
                    for n in f.graph.node)
    assert ops[f"{MS}::MatMulNBits"] == n_weights   # every MatMul weight is 4-bit
    assert ops[f"{MS}::GatherBlockQuantized"] == 1   # the token embedding (tied to the head)
    feed = shared_feeds("gpt2_small")
    y = run_ort(src, feed)
    yp, yo = run_pyonnx(out, feed), run_ort(out, feed)
    assert cosine(y, yp) >= 0.99 and cosine(y, yo) >= 0.99
    assert cosine(yp, yo) > 0.99999
