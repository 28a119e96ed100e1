"""The written attention fusion (com.microsoft MultiHeadAttention, extended level): it fuses the
exporters' self attention where no softmax row can be fully masked (no mask, a constant mask with
a finite entry per row, a causal mask proven to keep the diagonal), onnxruntime runs the written
file with the original's results, and a key-padding mask, which can mask a whole row, is left to
the session's guarded private kernel (onnxruntime's operator gives NaN there, the guard zeros);
and the CPU provider's fast MultiHeadAttention against the reference kernel."""

from __future__ import annotations

import os

import numpy as np
import pytest

import pyonnx
from pyonnx.ir import Attribute, AttributeType, DataType, Graph, Model, Node, Tensor, TensorType, Value
from pyonnx.ops.registry import get_kernel

F = DataType.FLOAT
HID, H = 8, 2
D = HID // H
SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "models")


def _v(name: str, shape: tuple | None = None, dt: DataType = F) -> Value:
    return Value(name, TensorType(dt, shape))


def _c(name: str, arr: np.ndarray) -> Value:
    t = Tensor.from_numpy(arr, name)
    return Value(name, TensorType(t.data_type, arr.shape), const_value=t)


def _ints(*a: int) -> np.ndarray:
    return np.array(a, np.int64)


class _B:
    """A small graph builder: nodes with fresh output names."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.inits: list[Value] = []
        self.k = 0

    def c(self, arr: np.ndarray) -> Value:
        self.k += 1
        v = _c(f"c{self.k}", arr)
        self.inits.append(v)
        return v

    def op(self, op_type: str, *ins: Value, dt: DataType = F, **attrs: object) -> Value:
        self.k += 1
        out = _v(f"t{self.k}", None, dt)
        at = []
        for name, val in attrs.items():
            if isinstance(val, list):
                at.append(Attribute(name, AttributeType.INTS, val))
            else:
                at.append(Attribute(name, AttributeType.INT, val))
        self.nodes.append(Node(op_type, list(ins), [out], attributes=at))
        return out


def _attention_model(mask: str, seq: int | str = "seq") -> Model:
    """y = attention(x) the way torch's exporter writes it (scaled Q and K^T, NaN guard) with
    ``mask``: "none", "causal" (k <= q, built from the input's length), "strict" (k < q: the
    first row fully masked), "padding" (an attention_mask input) or "constant" (a fixed causal
    mask; needs an int ``seq``)."""
    rng = np.random.default_rng(0)
    b = _B()
    x = _v("x", ("batch", seq, HID))
    inputs = [x]
    heads = b.c(_ints(0, 0, H, D))
    s = b.c(np.array(D ** -0.25, np.float32))

    def proj(name: str) -> Value:
        w = b.c((rng.standard_normal((HID, HID)) * 0.5).astype(np.float32))
        return b.op("Reshape", b.op("MatMul", x, w), heads)

    q = b.op("Mul", b.op("Transpose", proj("q"), perm=[0, 2, 1, 3]), s)
    kt = b.op("Mul", b.op("Transpose", proj("k"), perm=[0, 2, 3, 1]), s)
    v = b.op("Transpose", proj("v"), perm=[0, 2, 1, 3])
    scores = b.op("MatMul", q, kt)
    zero, ninf = b.c(np.array(0, np.float32)), b.c(np.array(-np.inf, np.float32))
    if mask in ("causal", "strict"):
        n = b.op("Squeeze", b.op("Slice", b.op("Shape", x, dt=DataType.INT64), b.c(_ints(1)),
                                 b.c(_ints(2)), dt=DataType.INT64), dt=DataType.INT64)
        r = b.op("Range", b.c(np.array(0, np.int64)), n, b.c(np.array(1, np.int64)),
                 dt=DataType.INT64)
        rq = b.op("Unsqueeze", r, b.c(_ints(0, 1, 3)), dt=DataType.INT64)  # [1, 1, S, 1]
        rk = b.op("Unsqueeze", r, b.c(_ints(0, 1, 2)), dt=DataType.INT64)  # [1, 1, 1, S]
        cond = b.op("LessOrEqual" if mask == "causal" else "Less", rk, rq, dt=DataType.BOOL)
        scores = b.op("Add", scores, b.op("Where", cond, zero, ninf))
    elif mask == "broadcast":
        # Equal(k0, q) with k0 = Range(0, min(S, 1)): the key coordinate of one element,
        # broadcast over the key axis (0 everywhere), so rows q >= 1 are fully masked
        n = b.op("Squeeze", b.op("Slice", b.op("Shape", x, dt=DataType.INT64), b.c(_ints(1)),
                                 b.c(_ints(2)), dt=DataType.INT64), dt=DataType.INT64)
        z, one = b.c(np.array(0, np.int64)), b.c(np.array(1, np.int64))
        r = b.op("Range", z, n, one, dt=DataType.INT64)
        r1 = b.op("Range", z, b.op("Min", n, one, dt=DataType.INT64), one, dt=DataType.INT64)
        k0 = b.op("Unsqueeze", r1, b.c(_ints(0, 1, 2)), dt=DataType.INT64)  # [1, 1, 1, 1]
        rq = b.op("Unsqueeze", r, b.c(_ints(0, 1, 3)), dt=DataType.INT64)  # [1, 1, S, 1]
        n1 = b.op("Unsqueeze", n, b.c(_ints(0)), dt=DataType.INT64)
        full = b.op("Concat", b.c(_ints(1, 1)), n1, n1, dt=DataType.INT64, axis=0)
        cond = b.op("Equal", k0, b.op("Expand", rq, full, dt=DataType.INT64), dt=DataType.BOOL)
        scores = b.op("Add", scores, b.op("Where", cond, zero, ninf))
    elif mask == "padding":
        am = _v("attention_mask", ("batch", seq), DataType.INT64)
        inputs.append(am)
        keep = b.op("Unsqueeze", b.op("Cast", am, dt=DataType.BOOL, to=int(DataType.BOOL)),
                    b.c(_ints(1, 2)), dt=DataType.BOOL)  # [B, 1, 1, S]
        full = b.op("Expand", keep, b.op("Concat", b.op("Shape", am, dt=DataType.INT64,
                                                         start=0, end=1),
                                          b.c(_ints(1)), b.op("Shape", am, dt=DataType.INT64,
                                                              start=1, end=2),
                                          b.op("Shape", am, dt=DataType.INT64, start=1, end=2),
                                          dt=DataType.INT64, axis=0), dt=DataType.BOOL)
        scores = b.op("Add", scores, b.op("Where", full, zero, ninf))
    elif mask == "constant":
        assert isinstance(seq, int)
        m = np.where(np.tril(np.ones((seq, seq), bool)), 0, -np.inf).astype(np.float32)
        scores = b.op("Add", scores, b.c(m[None, None]))
    p = b.op("Softmax", scores, axis=-1)
    p = b.op("Where", b.op("IsNaN", p, dt=DataType.BOOL), zero, p)
    y4 = b.op("Transpose", b.op("MatMul", p, v), perm=[0, 2, 1, 3])
    y = b.op("Reshape", y4, b.c(_ints(0, 0, HID)))
    y.name, y.type = "y", TensorType(F, ("batch", seq, HID))
    g = Graph("g", inputs=inputs, outputs=[y], nodes=b.nodes, initializers=b.inits)
    return Model(g, opset_imports={"": 18}, ir_version=9)


def _feeds(mask: str, seq: int = 6, batch: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    f = {"x": rng.standard_normal((batch, seq, HID)).astype(np.float32)}
    if mask == "padding":
        am = np.ones((batch, seq), np.int64)
        am[0, 4:] = 0  # padding of the first sequence
        am[1] = 0  # the second is all padding: every row of its scores fully masked
        f["attention_mask"] = am
    return f


def _ops(model: Model) -> list[tuple[str, str]]:
    return [(n.domain, n.op_type) for n in model.graph.nodes]


def _ort_run(model: Model, feeds: dict, tmp_path) -> list[np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    path = str(tmp_path / f"m{len(os.listdir(tmp_path))}.onnx")
    pyonnx.save(model, path)
    onnx.checker.check_model(path, full_check=True)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


@pytest.mark.parametrize("mask", ["none", "causal", "constant"])
def test_written_attention_runs_in_onnxruntime_as_the_original(mask, tmp_path):
    seq = 6 if mask == "constant" else "seq"
    model = _attention_model(mask, seq)
    opt = pyonnx.optimize(model, level="extended")
    ops = _ops(opt)
    assert ops.count(("com.microsoft", "MultiHeadAttention")) == 1, ops
    assert ("", "Softmax") not in ops and ("", "Transpose") not in ops
    feeds = _feeds(mask)
    ref = _ort_run(model, feeds, tmp_path)[0]
    got = _ort_run(opt, feeds, tmp_path)[0]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())
    # and pyonnx's own session of the written model (the CPU provider's fast kernel)
    mine = pyonnx.InferenceSession(opt).run(None, feeds)[0]
    np.testing.assert_allclose(mine, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("mask", ["padding", "strict", "broadcast"])
def test_a_mask_that_can_empty_a_row_is_not_written_as_multi_head_attention(mask, tmp_path):
    """A key-padding mask masks every key of a fully padded sequence; k < q masks the whole
    first row; a key coordinate broadcast from one element masks all rows but the first: the
    written file keeps the guarded graph, and the session fuses it privately."""
    model = _attention_model(mask)
    opt = pyonnx.optimize(model, level="extended")
    ops = _ops(opt)
    assert ("com.microsoft", "MultiHeadAttention") not in ops
    assert ("", "Softmax") in ops and ("", "IsNaN") in ops
    feeds = _feeds(mask)
    ref = _ort_run(model, feeds, tmp_path)[0]
    assert np.isfinite(ref).all()  # the guard turns the fully masked rows into zeros
    np.testing.assert_allclose(_ort_run(opt, feeds, tmp_path)[0], ref, rtol=1e-4, atol=1e-6)
    sess = pyonnx.InferenceSession(model)
    assert any(n.op_type == "DotProductAttention" for n in sess._model.graph.nodes)
    np.testing.assert_allclose(sess.run(None, feeds)[0], ref, rtol=1e-4, atol=1e-6)


def test_onnxruntime_multi_head_attention_gives_nan_for_a_fully_masked_row():
    """Why the padding case stays unfused: onnxruntime's operator has no NaN guard."""
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    b, s = 1, 3
    node = helper.make_node("MultiHeadAttention", ["q", "k", "v", "", "", "m"], ["y"],
                            domain="com.microsoft", num_heads=H)
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [b, s, HID]) for n in "qkv"]
    mi = helper.make_tensor_value_info("m", TensorProto.FLOAT, [b, 1, s, s])
    yi = helper.make_tensor_value_info("y", TensorProto.FLOAT, [b, s, HID])
    g = helper.make_graph([node], "g", vi + [mi], [yi])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18),
                                            helper.make_opsetid("com.microsoft", 1)])
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal((b, s, HID)).astype(np.float32) for n in "qkv"}
    mask = np.zeros((b, 1, s, s), np.float32)
    mask[..., 1, :] = -np.inf  # query 1 sees no key
    feeds["m"] = mask
    y = sess.run(None, feeds)[0]
    assert np.isnan(y[0, 1]).all() and np.isfinite(y[0, [0, 2]]).all()


def _shared(name: str) -> str:
    path = os.path.join(SHARED, f"{name}.onnx")
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent (the shared models come with the project's CI)")
    return path


@pytest.mark.parametrize("name,fused", [("gpt2_small", 4), ("vit_tiny", 4), ("bert_small", 4),
                                        ("bert_small_legacy", 0)])
def test_shared_models_written_attention(name, fused):
    """gpt2_small (causal mask only), vit_tiny (no mask) and bert_small (a key-padding mask of
    0 and float32's lowest: every score finite) get onnxruntime's operator in the written file
    (test_offline_optimize runs every written file in onnxruntime)."""
    opt = pyonnx.optimize(pyonnx.load(_shared(name)), level="extended")
    assert _ops(opt).count(("com.microsoft", "MultiHeadAttention")) == fused


# -------------------------------------------------------------- the CPU provider's fast kernel

_REF = get_kernel("com.microsoft", "MultiHeadAttention", 1)


@pytest.mark.parametrize("bias_shape", [None, (1, 1), (2, 1), (1, 3), (2, 3)])
@pytest.mark.parametrize("t", [5, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_multi_head_attention_matches_the_reference(bias_shape, t, dtype):
    from pyonnx.backends.cpu.fused import multi_head_attention

    rng = np.random.default_rng(2)
    b, s, h, d = 2, 5, 3, 4
    q = rng.standard_normal((b, s, h * d)).astype(dtype)
    k = rng.standard_normal((b, t, h * d)).astype(dtype)
    v = rng.standard_normal((b, t, h * 6)).astype(dtype)
    ab = None
    if bias_shape is not None:
        ab = rng.standard_normal(bias_shape + (s, t)).astype(dtype)
        ab[..., 1, :] = -np.inf  # one query fully masked: NaN in both
        ab[..., 2, 1:] = -np.inf
    for scale in (None, 0.3):
        with np.errstate(invalid="ignore"):  # the reference's -inf - -inf of a masked row
            want = _REF(q, k, v, None, None, ab, num_heads=h, scale=scale)[0]
        got = multi_head_attention(q, k, v, None, None, ab, num_heads=h, scale=scale)[0]
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)
        assert np.array_equal(np.isnan(got), np.isnan(want))


def test_fast_multi_head_attention_leaves_other_forms_to_the_reference():
    from pyonnx.backends.cpu.fused import multi_head_attention

    rng = np.random.default_rng(3)
    q = rng.standard_normal((1, 4, 8)).astype(np.float32)
    kpm = np.array([[1, 1, 0, 0]], np.int32)
    want = _REF(q, q, q, None, kpm, num_heads=2)[0]
    np.testing.assert_array_equal(multi_head_attention(q, q, q, None, kpm, num_heads=2)[0], want)
    with pytest.raises(pyonnx.ExecutionError, match="num_heads"):
        multi_head_attention(q, q, q, num_heads=3)


def test_the_session_and_level_99_keep_the_written_fusion():
    """The private stage runs after the written stages have converged: the session-private
    attention fusion does not take a pattern that the extended stage writes as
    MultiHeadAttention (it would in the same round, before the basic passes had simplified the
    heads)."""
    from pyonnx.optimizer import optimize

    gpt2 = optimize(pyonnx.load(_shared("gpt2_small")), 99)  # one round took it privately
    ops = _ops(gpt2)
    assert ops.count(("com.microsoft", "MultiHeadAttention")) == 4
    assert ("pyonnx", "DotProductAttention") not in ops
    model = _attention_model("causal")
    sess = pyonnx.InferenceSession(model)
    assert ("com.microsoft", "MultiHeadAttention") in _ops(sess._model)
    feeds = _feeds("causal")
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL
    ref = pyonnx.InferenceSession(model, so).run(None, feeds)[0]
    np.testing.assert_allclose(sess.run(None, feeds)[0], ref, rtol=1e-4,
                               atol=1e-5 * np.abs(ref).max())


# ------------------------------------------- Hugging Face exports: no NaN guard, scale after Q K^T

def _hf_attention_model(kind: str, seq: int = 6) -> Model:
    """y = attention(x) as Hugging Face models export it, without a NaN guard: "wav2vec2"
    (Softmax(Mul(Q Kt, c))), "distilbert" (plus a padding mask Where(keep, 0, float32's
    lowest)), "t5" (no scale; a constant position bias, then a padding mask) and "ninf" (a
    padding mask of -inf, which can make a row NaN, in the graph as in the operator)."""
    rng = np.random.default_rng(0)
    b = _B()
    x = _v("x", ("batch", seq, HID))
    inputs = [x]
    heads = b.c(_ints(0, 0, H, D))

    def proj() -> Value:
        w = (rng.standard_normal((HID, HID)) * 0.5).astype(np.float32)
        return b.op("Reshape", b.op("MatMul", x, b.c(w)), heads)

    q = b.op("Transpose", proj(), perm=[0, 2, 1, 3])
    kt = b.op("Transpose", proj(), perm=[0, 2, 3, 1])
    v = b.op("Transpose", proj(), perm=[0, 2, 1, 3])
    scores = b.op("MatMul", q, kt)
    if kind != "t5":
        scores = b.op("Mul", scores, b.c(np.array(D ** -0.5, np.float32)))
    if kind == "t5":
        pb = rng.standard_normal((1, H, seq, seq)).astype(np.float32)
        scores = b.op("Add", scores, b.c(pb))
    if kind in ("distilbert", "t5", "ninf"):
        am = _v("attention_mask", ("batch", seq), DataType.INT64)
        inputs.append(am)
        keep = b.op("Unsqueeze", b.op("Cast", am, dt=DataType.BOOL, to=int(DataType.BOOL)),
                    b.c(_ints(1, 2)), dt=DataType.BOOL)  # [B, 1, 1, S]
        full = b.op("Expand", keep, b.c(_ints(1, 1, seq, seq)), dt=DataType.BOOL)
        low = np.float32(-np.inf) if kind == "ninf" else np.finfo(np.float32).min
        mask = b.op("Where", full, b.c(np.array(0, np.float32)), b.c(np.array(low)))
        scores = b.op("Add", mask, scores) if kind == "distilbert" else b.op("Add", scores, mask)
    p = b.op("Softmax", scores, axis=-1)
    y4 = b.op("Transpose", b.op("MatMul", p, v), perm=[0, 2, 1, 3])
    y = b.op("Reshape", y4, b.c(_ints(0, 0, HID)))
    y.name, y.type = "y", TensorType(F, ("batch", seq, HID))
    g = Graph("g", inputs=inputs, outputs=[y], nodes=b.nodes, initializers=b.inits)
    return Model(g, opset_imports={"": 18}, ir_version=9)


@pytest.mark.parametrize("kind", ["wav2vec2", "distilbert", "t5", "ninf"])
def test_hugging_face_attention_is_written_and_runs_as_the_original(kind, tmp_path):
    model = _hf_attention_model(kind)
    opt = pyonnx.optimize(model, level="extended")
    ops = _ops(opt)
    assert ops.count(("com.microsoft", "MultiHeadAttention")) == 1, ops
    assert ("", "Softmax") not in ops and ("", "MatMul") in ops  # the projections stay
    feeds = _feeds("padding")  # sequence 1 is all padding: every row fully masked
    if kind == "wav2vec2":
        del feeds["attention_mask"]
    ref = _ort_run(model, feeds, tmp_path)[0]
    got = _ort_run(opt, feeds, tmp_path)[0]
    # a row of -inf is NaN in both; the lowest float32 masks every key of it evenly in both
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    assert np.isnan(ref).any() == (kind == "ninf")
    tol = dict(rtol=1e-4, atol=1e-5 * np.nanmax(np.abs(ref)), equal_nan=True)
    np.testing.assert_allclose(got, ref, **tol)
    mine = pyonnx.InferenceSession(opt).run(None, feeds)[0]
    np.testing.assert_allclose(mine, ref, **tol)
    if kind == "t5":  # the position bias and the padding mask added once, into one bias
        assert ops.count(("", "Add")) == 1


def test_two_layers_share_the_sum_of_their_masks():
    """T5 adds the same position bias and padding mask in every layer: one Add of the two."""
    from pyonnx.optimizer.passes.fuse_multi_head_attention import FuseMultiHeadAttention

    model = _hf_attention_model("t5")
    g = model.graph
    # a second layer reading the first one's output, with the same two masks
    adds = [n for n in g.nodes if n.op_type == "Add"]
    pb, mask = adds[0].inputs[1], adds[1].inputs[1]
    b = _B()
    b.k = 1000
    x = g.outputs[0]
    heads = b.c(_ints(0, 0, H, D))
    rng = np.random.default_rng(5)
    ws = [b.c((rng.standard_normal((HID, HID)) * 0.5).astype(np.float32)) for _ in range(3)]
    q, k, v = (b.op("Reshape", b.op("MatMul", x, w), heads) for w in ws)
    s = b.op("MatMul", b.op("Transpose", q, perm=[0, 2, 1, 3]),
             b.op("Transpose", k, perm=[0, 2, 3, 1]))
    p = b.op("Softmax", b.op("Add", b.op("Add", s, pb), mask), axis=-1)
    y4 = b.op("Transpose", b.op("MatMul", p, b.op("Transpose", v, perm=[0, 2, 1, 3])),
              perm=[0, 2, 1, 3])
    y2 = b.op("Reshape", y4, b.c(_ints(0, 0, HID)))
    y2.name, y2.type = "y2", TensorType(F, ("batch", 6, HID))
    g2 = Graph("g", inputs=list(g.inputs), outputs=[x, y2], nodes=list(g.nodes) + b.nodes,
               initializers=list(g.initializers.values()) + b.inits)
    two = Model(g2, opset_imports={"": 18}, ir_version=9)
    feeds = _feeds("padding")
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL
    ref = pyonnx.InferenceSession(two, so).run(None, feeds)
    opt = pyonnx.optimize(two, level="extended")
    ops = _ops(opt)
    assert ops.count(("com.microsoft", "MultiHeadAttention")) == 2 and ops.count(("", "Add")) == 1
    for got, want in zip(pyonnx.InferenceSession(opt).run(None, feeds), ref):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
