"""More property tests: for random input shapes and attributes, the shapes inferred for a one-node
model equal the shapes its kernel produces (normalizations, layout ops, index ops, recurrent
ops, Resize, Einsum, value-dependent ops ...). Complements test_shape_rule_properties.py.

Unlike the helper there, :func:`check` here requires the kernel to run (every drawn case is a
valid model), so that no test passes by drawing only invalid cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pyonnx.ir import Attribute, AttributeType, DataType, Graph, Model, Node, Tensor, TensorType, Value
from pyonnx.runtime import InferenceSession
from pyonnx.shape_inference import infer_shapes

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
dims = st.integers(1, 5)
shapes = st.lists(dims, min_size=0, max_size=4).map(tuple)
ranked = st.lists(dims, min_size=1, max_size=4).map(tuple)


class Inp:
    """A graph input of ``shape`` and element type ``dtype``, fed with random data."""

    def __init__(self, shape: tuple[int, ...], dtype: type = np.float32) -> None:
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    def data(self, rng: np.random.Generator) -> np.ndarray:
        if self.dtype == np.bool_:
            return rng.integers(0, 2, self.shape).astype(bool)
        if self.dtype.kind in "iu":
            return rng.integers(1, 8, self.shape).astype(self.dtype)
        return rng.standard_normal(self.shape).astype(self.dtype)


class Feed:
    """A graph input (not a constant) fed with exactly this array."""

    def __init__(self, array) -> None:
        self.array = np.asarray(array)


def _attr(name: str, v) -> Attribute:
    if isinstance(v, Tensor):
        return Attribute(name, AttributeType.TENSOR, v)
    if isinstance(v, str):
        return Attribute(name, AttributeType.STRING, v)
    if isinstance(v, (bool, int, np.integer)):
        return Attribute(name, AttributeType.INT, int(v))
    if isinstance(v, float):
        return Attribute(name, AttributeType.FLOAT, v)
    v = list(v)
    if v and isinstance(v[0], str):
        return Attribute(name, AttributeType.STRINGS, v)
    if v and isinstance(v[0], float):
        return Attribute(name, AttributeType.FLOATS, [float(x) for x in v])
    return Attribute(name, AttributeType.INTS, [int(x) for x in v])


def check(op: str, inputs: list, attrs: dict | None = None, n_out: int = 1, opset: int = 21,
          loose: dict[int, set[int]] | None = None) -> None:
    """Run a one-node model and compare every output's shape and element type with inference.

    ``inputs``: a shape tuple (float graph input), :class:`Inp`, :class:`Feed`, an array (an
    initializer) or None (an omitted optional input). ``loose`` maps an output index to the dims
    that depend on input values and so may be inferred as symbols; the rank and every other dim
    must still be exact.
    """
    g = Graph("g")
    ins, feeds = [], {}
    rng = np.random.default_rng(0)
    for i, x in enumerate(inputs):
        if x is None:
            ins.append(None)
            continue
        if isinstance(x, tuple):
            x = Inp(x)
        if isinstance(x, (Inp, Feed)):
            arr = x.array if isinstance(x, Feed) else x.data(rng)
            v = Value(f"x{i}", TensorType(DataType.from_numpy(arr.dtype), arr.shape))
            g.inputs.append(v)
            feeds[v.name] = arr
        else:
            arr = np.asarray(x)
            v = Value(f"c{i}", TensorType(DataType.from_numpy(arr.dtype), arr.shape),
                      const_value=Tensor.from_numpy(arr, f"c{i}"))
            g.initializers[v.name] = v
        ins.append(v)
    outs = [Value(f"y{i}") for i in range(n_out)]
    g.append(Node(op, ins, outs, attributes=[_attr(k, v) for k, v in (attrs or {}).items()]))
    g.outputs = outs
    model = Model(g, opset_imports={"": opset})
    actual = InferenceSession(model).run(None, feeds)
    inferred = [v.type for v in infer_shapes(model, strict=True).graph.outputs]
    where = f"{op} {[getattr(x, 'shape', x) for x in inputs]} {attrs}"
    for i, (t, a) in enumerate(zip(inferred, actual)):
        a = np.asarray(a)
        assert isinstance(t, TensorType), f"{where}: output {i}: no tensor type inferred"
        assert t.elem_type == DataType.from_numpy(a.dtype), \
            f"{where}: output {i}: inferred {t.elem_type}, ran {a.dtype}"
        free = (loose or {}).get(i, set())
        if not free:
            assert t.shape == a.shape, f"{where}: output {i}: inferred {t.shape}, ran {a.shape}"
            continue
        assert t.shape is not None and len(t.shape) == a.ndim, \
            f"{where}: output {i}: inferred rank of {t.shape}, ran {a.shape}"
        for d, (s, n) in enumerate(zip(t.shape, a.shape)):
            assert s == n or (d in free and not isinstance(s, int)), \
                f"{where}: output {i}: inferred {t.shape}, ran {a.shape}"


def _axis(data, rank: int, extra: int = 0) -> int:
    return data.draw(st.integers(-rank - extra, rank - 1 + extra))


# --- normalizations and friends ----------------------------------------------------------------


@given(st.data(), st.sampled_from(["Softmax", "LogSoftmax", "Hardmax"]),
       st.sampled_from([11, 13]))
@SETTINGS
def test_softmax_family(data, op, opset):
    s = data.draw(ranked)
    check(op, [s], {"axis": _axis(data, len(s))}, opset=opset)


@given(st.data())
@SETTINGS
def test_layer_and_rms_normalization(data):
    s = data.draw(ranked)
    axis = _axis(data, len(s))
    norm = s[axis % len(s):]
    bias = norm if data.draw(st.booleans()) else None
    check("LayerNormalization", [s, norm, bias], {"axis": axis}, n_out=3, opset=17)
    check("RMSNormalization", [s, norm], {"axis": axis}, opset=23)


@given(st.data())
@SETTINGS
def test_channel_normalizations(data):
    n, c = data.draw(dims), data.draw(dims)
    spatial = data.draw(st.lists(dims, min_size=0, max_size=2).map(tuple))
    x = (n, c, *spatial)
    ch = (c,)
    check("BatchNormalization", [x, ch, ch, ch, np.ones(c, np.float32)], {}, opset=15)
    check("BatchNormalization", [x, ch, ch, ch, np.ones(c, np.float32)], {"training_mode": 1},
          n_out=3, opset=15)
    if spatial:
        check("InstanceNormalization", [x, ch, ch])
        check("LRN", [x], {"size": data.draw(st.sampled_from([1, 3, 5]))})
        groups = data.draw(st.sampled_from([g for g in range(1, c + 1) if c % g == 0]))
        check("GroupNormalization", [x, ch, ch], {"num_groups": groups}, opset=21)
    check("MeanVarianceNormalization", [x], {"axes": [0] + list(range(2, len(x)))})
    check("LpNormalization", [x], {"axis": _axis(data, len(x))})


# --- layout ------------------------------------------------------------------------------------


@given(st.data(), st.sampled_from(["DCR", "CRD"]))
@SETTINGS
def test_depth_space(data, mode):
    b = data.draw(st.integers(1, 3))
    n, c, h, w = data.draw(dims), data.draw(st.integers(1, 3)), data.draw(dims), data.draw(dims)
    check("DepthToSpace", [(n, c * b * b, h, w)], {"blocksize": b, "mode": mode})
    check("SpaceToDepth", [(n, c, h * b, w * b)], {"blocksize": b})


@given(st.data())
@SETTINGS
def test_trilu_cumsum_reverse_sequence(data):
    s = data.draw(st.lists(dims, min_size=2, max_size=4).map(tuple))
    k = data.draw(st.one_of(st.none(), st.integers(-6, 6)))
    ins = [s] if k is None else [s, np.array(k, np.int64)]
    check("Trilu", ins, {"upper": data.draw(st.integers(0, 1))})
    check("CumSum", [s, np.array(_axis(data, len(s)), np.int64)],
          {"exclusive": data.draw(st.integers(0, 1)), "reverse": data.draw(st.integers(0, 1))})
    batch_axis = data.draw(st.integers(0, 1))
    tb = s[:2] if batch_axis == 0 else s[1::-1]  # (batch, time)
    lens = np.random.default_rng(2).integers(1, tb[1] + 1, tb[0]).astype(np.int64)
    check("ReverseSequence", [s, lens], {"batch_axis": batch_axis, "time_axis": 1 - batch_axis})


# --- generators --------------------------------------------------------------------------------


@given(st.data())
@SETTINGS
def test_onehot(data):
    s = data.draw(shapes)
    depth = data.draw(dims)
    idx = np.random.default_rng(3).integers(-depth, depth, s).astype(np.int64)
    dtype = data.draw(st.sampled_from([np.float32, np.int64, np.float64]))
    check("OneHot", [Feed(idx), np.array(depth, np.int64), np.array([0, 1], dtype)],
          {"axis": _axis(data, len(s), extra=1)})


@given(st.data(), st.sampled_from([np.int64, np.int32, np.float32, np.float64]))
@SETTINGS
def test_range(data, dtype):
    start = data.draw(st.integers(-6, 6))
    limit = data.draw(st.integers(-6, 6))
    delta = data.draw(st.sampled_from([-3, -1, 1, 2]))
    if np.dtype(dtype).kind == "f":
        start, limit, delta = start + 0.5, limit * 0.7, delta * 0.9
    check("Range", [np.array(start, dtype), np.array(limit, dtype), np.array(delta, dtype)])


@given(st.data())
@SETTINGS
def test_constant_of_shape_eye_like(data):
    s = data.draw(shapes)
    value = data.draw(st.sampled_from([None, np.array([2], np.int32), np.array([1.5], np.float64)]))
    attrs = {} if value is None else {"value": Tensor.from_numpy(value, "value")}
    check("ConstantOfShape", [np.array(s, np.int64)], attrs)
    two = (data.draw(dims), data.draw(dims))
    attrs = {"k": data.draw(st.integers(-3, 3))}
    if data.draw(st.booleans()):
        attrs["dtype"] = int(DataType.INT32)
    check("EyeLike", [two], attrs)


@given(st.data())
@SETTINGS
def test_shape_size_cast(data):
    s = data.draw(shapes)
    r = len(s)
    attrs = {}
    if data.draw(st.booleans()):
        attrs["start"] = data.draw(st.integers(-r - 2, r + 2))
    if data.draw(st.booleans()):
        attrs["end"] = data.draw(st.integers(-r - 2, r + 2))
    check("Shape", [s], attrs)
    check("Size", [s])
    to = data.draw(st.sampled_from([DataType.INT64, DataType.FLOAT16, DataType.BOOL,
                                    DataType.DOUBLE, DataType.UINT8]))
    check("Cast", [s], {"to": int(to)})
    check("CastLike", [s, np.zeros((), to.numpy)])


# --- index ops ---------------------------------------------------------------------------------


@given(st.data())
@SETTINGS
def test_topk(data):
    s = data.draw(ranked)
    axis = _axis(data, len(s))
    k = data.draw(st.integers(0, s[axis]))
    check("TopK", [s, np.array([k], np.int64)],
          {"axis": axis, "largest": data.draw(st.integers(0, 1))}, n_out=2, opset=11)


@given(st.data())
@SETTINGS
def test_gather_scatter_nd(data):
    s = data.draw(ranked)
    b = data.draw(st.integers(0, len(s) - 1))
    k = data.draw(st.integers(1, len(s) - b))
    idx_batch = s[:b]
    idx_mid = data.draw(st.lists(dims, max_size=2).map(tuple))
    rng = np.random.default_rng(4)
    idx = np.stack([rng.integers(0, s[b + j], idx_batch + idx_mid) for j in range(k)], -1)
    check("GatherND", [s, idx.astype(np.int64)], {"batch_dims": b})
    # ScatterND (batch_dims 0): distinct index tuples so the result is well defined.
    sidx = np.array(np.unravel_index(rng.permutation(int(np.prod(s[:k])))[:data.draw(dims)],
                                     s[:k])).T.astype(np.int64)
    upd = (len(sidx),) + s[k:]
    check("ScatterND", [s, sidx, upd])


@given(st.data())
@SETTINGS
def test_scatter_elements(data):
    s = data.draw(ranked)
    axis = _axis(data, len(s))
    ishape = tuple(data.draw(st.integers(1, d)) for d in s)
    idx = np.zeros(ishape, np.int64)
    check("ScatterElements", [s, idx, ishape], {"axis": axis, "reduction": "add"}, opset=18)


@given(st.data())
@SETTINGS
def test_compress_nonzero_unique(data):
    s = data.draw(ranked)
    rng = np.random.default_rng(5)
    axis = data.draw(st.one_of(st.none(), st.integers(-len(s), len(s) - 1)))
    n = int(np.prod(s)) if axis is None else s[axis]
    cond = rng.integers(0, 2, data.draw(st.integers(1, n))).astype(bool)
    attrs = {} if axis is None else {"axis": axis}
    free = {0} if axis is None else {axis % len(s)}
    check("Compress", [s, Feed(cond)], attrs, loose={0: free})
    x = rng.integers(0, 2, s).astype(np.float32)
    check("NonZero", [Feed(x)], loose={0: {1}})
    u = rng.integers(0, 3, s).astype(np.int64)
    ax = data.draw(st.one_of(st.none(), st.integers(-len(s), len(s) - 1)))
    uattrs = {"sorted": data.draw(st.integers(0, 1))}
    if ax is not None:
        uattrs["axis"] = ax
    n_axis = 0 if ax is None else ax % len(s)
    check("Unique", [Feed(u)], uattrs, n_out=4,
          loose={0: {n_axis}, 1: {0}, 3: {0}})  # inverse_indices: one per input slice


# --- Einsum, Resize ----------------------------------------------------------------------------


EINSUM = [
    ("ij,jk->ik", "ij jk"), ("ij,jk", "ij jk"), ("bij,bjk->bik", "bij bjk"), ("ii->i", "ii"),
    ("ij->ji", "ij"), ("ij->", "ij"), ("i,i->", "i i"), ("i,j->ij", "i j"),
    ("...ij,...jk->...ik", "Bij Bjk"), ("ij...->...", "ijB"), ("bhid,bhjd->bhij", "bhid bhjd"),
    ("ii", "ii"), ("ij,ij->ij", "ij ij"),
]


@given(st.data(), st.sampled_from(EINSUM))
@SETTINGS
def test_einsum(data, case):
    eq, operands = case
    size = {c: data.draw(dims) for c in "ijkbhd"}
    batch = data.draw(st.lists(dims, max_size=2).map(tuple))
    ins = []
    for term in operands.split():
        shape: tuple[int, ...] = ()
        for c in term:
            shape += batch if c == "B" else (size[c],)
        ins.append(shape)
    check("Einsum", ins, {"equation": eq}, opset=12)


@given(st.data(), st.sampled_from(["nearest", "linear", "cubic"]))
@SETTINGS
def test_resize(data, mode):
    r = data.draw(st.integers(1, 4))
    s = tuple(data.draw(dims) for _ in range(r))
    attrs = {"mode": mode}
    axes = None
    if data.draw(st.booleans()):
        axes = sorted(data.draw(st.sets(st.integers(0, r - 1), min_size=1)))
        attrs["axes"] = axes
    n = r if axes is None else len(axes)
    if data.draw(st.booleans()):
        scales = np.array([data.draw(st.sampled_from([0.5, 0.7, 1.0, 1.5, 2.0, 3.0]))
                           for _ in range(n)], np.float32)
        check("Resize", [s, None, scales], attrs, opset=19)
    else:
        sizes = np.array([data.draw(dims) for _ in range(n)], np.int64)
        policy = data.draw(st.sampled_from(["stretch", "not_larger", "not_smaller"]))
        attrs["keep_aspect_ratio_policy"] = policy
        check("Resize", [s, None, None, sizes], attrs, opset=19)


@given(st.data())
@SETTINGS
def test_resize_older_opsets_and_upsample(data):
    s = tuple(data.draw(dims) for _ in range(data.draw(st.integers(1, 4))))
    scales = np.array([data.draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0])) for _ in s],
                      np.float32)
    empty = np.zeros(0, np.float32)
    check("Resize", [s, empty, scales], opset=13)
    check("Resize", [s, empty, empty, np.array([data.draw(dims) for _ in s], np.int64)],
          opset=11)
    check("Upsample", [s, np.maximum(scales, 1.0)], opset=9)



# --- recurrent ---------------------------------------------------------------------------------


@given(st.data(), st.sampled_from(["RNN", "GRU", "LSTM"]))
@SETTINGS
def test_recurrent(data, op):
    seq, batch, inp, hidden = (data.draw(st.integers(1, 4)) for _ in range(4))
    direction = data.draw(st.sampled_from(["forward", "reverse", "bidirectional"]))
    layout = data.draw(st.integers(0, 1))
    nd = 2 if direction == "bidirectional" else 1
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    x = (seq, batch, inp) if layout == 0 else (batch, seq, inp)
    ins: list = [x, (nd, gates * hidden, inp), (nd, gates * hidden, hidden)]
    if data.draw(st.booleans()):
        ins.append((nd, 2 * gates * hidden))
    n_out = 3 if op == "LSTM" else 2
    check(op, ins, {"hidden_size": hidden, "direction": direction, "layout": layout},
          n_out=n_out, opset=14)


# --- convolution-like --------------------------------------------------------------------------


@given(st.data())
@SETTINGS
def test_conv_transpose(data):
    nsp = data.draw(st.integers(1, 2))
    group = data.draw(st.integers(1, 2))
    x = (data.draw(st.integers(1, 2)), 2 * group, *(data.draw(dims) for _ in range(nsp)))
    k = [data.draw(st.integers(1, 3)) for _ in range(nsp)]
    strides = [data.draw(st.integers(1, 3)) for _ in range(nsp)]
    attrs: dict = {"strides": strides, "group": group,
                   "dilations": [data.draw(st.integers(1, 2)) for _ in range(nsp)]}
    how = data.draw(st.sampled_from(["pads", "auto_pad", "output_shape"]))
    if how == "pads":
        attrs["pads"] = [data.draw(st.integers(0, 1)) for _ in range(2 * nsp)]
        attrs["output_padding"] = [data.draw(st.integers(0, s - 1)) for s in strides]
    elif how == "auto_pad":
        attrs["auto_pad"] = data.draw(st.sampled_from(["SAME_UPPER", "SAME_LOWER", "VALID"]))
    else:
        attrs["output_shape"] = [d * s + data.draw(st.integers(0, s - 1))
                                 for d, s in zip(x[2:], strides)]
    if how == "pads":  # pads must leave a non-empty output
        assume(all(s * (n - 1) + op + (kk - 1) * d + 1 - pb - pe >= 1 for s, n, op, kk, d, pb, pe in
                   zip(strides, x[2:], attrs["output_padding"], k, attrs["dilations"],
                       attrs["pads"][:nsp], attrs["pads"][nsp:])))
    w = np.zeros((x[1], data.draw(st.integers(1, 2)), *k), np.float32)
    bias = np.zeros(w.shape[1] * group, np.float32) if data.draw(st.booleans()) else None
    check("ConvTranspose", [x, w] + ([bias] if bias is not None else []), attrs)


@given(st.data())
@SETTINGS
def test_col2im(data):
    image = [data.draw(st.integers(2, 6)) for _ in range(2)]
    block = [data.draw(st.integers(1, d)) for d in image]
    strides = [data.draw(st.integers(1, 2)) for _ in range(2)]
    pads = [data.draw(st.integers(0, 1)) for _ in range(4)]
    dil = [1, 1]
    counts = [(image[i] + pads[i] + pads[i + 2] - dil[i] * (block[i] - 1) - 1) // strides[i] + 1
              for i in range(2)]
    n, c = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    x = (n, c * block[0] * block[1], counts[0] * counts[1])
    check("Col2Im", [x, np.array(image, np.int64), np.array(block, np.int64)],
          {"strides": strides, "pads": pads, "dilations": dil}, opset=18)


@given(st.data())
@SETTINGS
def test_dft(data):
    s = data.draw(st.lists(dims, min_size=1, max_size=3).map(tuple))
    complex_in = data.draw(st.booleans())
    x = s + ((2,) if complex_in else (1,))
    # The last dim holds (real, imag): axis is in [-r, -2] or [0, r - 2].
    axis = data.draw(st.sampled_from([a for a in range(-len(x), len(x) - 1) if a != -1]))
    onesided = 0 if complex_in else data.draw(st.integers(0, 1))
    inverse = 0 if onesided else data.draw(st.integers(0, 1))
    length = data.draw(st.one_of(st.none(), st.integers(1, 6)))
    n = None if length is None else np.array(length, np.int64)
    ins: list = [x, n, np.array(axis, np.int64)]
    check("DFT", ins, {"onesided": onesided, "inverse": inverse}, opset=20)


# --- integer elementwise -----------------------------------------------------------------------


@given(st.data())
@SETTINGS
def test_mod_bitshift(data):
    a = data.draw(shapes)
    b = tuple(d if data.draw(st.booleans()) else 1 for d in a[len(a) - data.draw(
        st.integers(0, len(a))):])
    check("Mod", [Inp(a, np.int32), Inp(b, np.int32)])
    check("Mod", [a, b], {"fmod": 1})
    check("BitShift", [Inp(a, np.uint8), Inp(b, np.uint8)],
          {"direction": data.draw(st.sampled_from(["LEFT", "RIGHT"]))})


# --- pooling, image, quantization, losses, misc -------------------------------------------------


@given(st.data(), st.sampled_from(["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"]))
@SETTINGS
def test_global_pool_max_unpool(data, op):
    x = (data.draw(dims), data.draw(dims), *data.draw(st.lists(dims, min_size=1, max_size=2)))
    check(op, [x])
    k = [data.draw(st.integers(1, 3)) for _ in x[2:]]
    strides = [data.draw(st.integers(1, 3)) for _ in x[2:]]
    check("MaxUnpool", [x, np.zeros(x, np.int64)], {"kernel_shape": k, "strides": strides},
          opset=11)


@given(st.data())
@SETTINGS
def test_image_ops(data):
    n, c, h, w = (data.draw(dims) for _ in range(4))
    ho, wo = data.draw(dims), data.draw(dims)
    check("GridSample", [(n, c, h, w), (n, ho, wo, 2)],
          {"mode": data.draw(st.sampled_from(["linear", "nearest", "cubic"]))}, opset=20)
    check("AffineGrid", [(n, 2, 3), np.array([n, c, ho, wo], np.int64)], opset=20)
    r = data.draw(dims)
    rois = np.tile(np.array([[0, 0, w - 0.5, h - 0.5]], np.float32), (r, 1))
    check("RoiAlign", [(n, c, h, w), rois, np.zeros(r, np.int64)],
          {"output_height": data.draw(dims), "output_width": data.draw(dims)}, opset=16)
    s = data.draw(ranked)
    axes = sorted(data.draw(st.sets(st.integers(0, len(s) - 1), min_size=1)))
    target = np.array([data.draw(st.integers(1, 6)) for _ in axes], np.int64)
    check("CenterCropPad", [s, target], {"axes": axes}, opset=18)


@given(st.data())
@SETTINGS
def test_quantization(data):
    s = data.draw(ranked)
    per_axis = data.draw(st.booleans())
    axis = _axis(data, len(s))
    scale = np.ones(s[axis] if per_axis else (), np.float32)
    zp = np.zeros(scale.shape, data.draw(st.sampled_from([np.uint8, np.int8])))
    check("QuantizeLinear", [s, scale, zp], {"axis": axis}, opset=21)
    check("DequantizeLinear", [Inp(s, zp.dtype), scale, zp], {"axis": axis}, opset=21)
    check("DynamicQuantizeLinear", [s], n_out=3, opset=11)


@given(st.data(), st.sampled_from(["none", "mean", "sum"]))
@SETTINGS
def test_losses(data, reduction):
    n, c = data.draw(dims), data.draw(dims)
    extra = tuple(data.draw(st.lists(dims, max_size=2)))
    target = np.random.default_rng(6).integers(0, c, (n, *extra)).astype(np.int64)
    check("NegativeLogLikelihoodLoss", [(n, c, *extra), target], {"reduction": reduction},
          opset=13)
    check("SoftmaxCrossEntropyLoss", [(n, c, *extra), target], {"reduction": reduction},
          n_out=2, opset=13)


@given(st.data())
@SETTINGS
def test_misc(data):
    s = data.draw(shapes)
    m = data.draw(dims)
    check("Det", [tuple(data.draw(st.lists(dims, max_size=2))) + (m, m)])
    check("Dropout", [s, np.array(0.5, np.float32), np.array(True)], n_out=2, opset=13)
    check("Clip", [s, np.array(-0.5, np.float32), None], opset=13)
    check("RandomNormalLike", [s], {"dtype": int(DataType.DOUBLE)}, opset=15)
    check("RandomUniform", [], {"shape": list(s)}, opset=15)
    check("Bernoulli", [Feed(np.full(s, 0.5, np.float32))], opset=15)
    size = data.draw(st.integers(1, 9))
    check("HannWindow", [np.array(size, np.int64)], {"periodic": data.draw(st.integers(0, 1))},
          opset=17)
    dft_len = data.draw(st.integers(2, 16))
    check("MelWeightMatrix", [np.array(data.draw(st.integers(1, 5)), np.int64),
                              np.array(dft_len, np.int64), np.array(8000, np.int64),
                              np.array(20.0, np.float32), np.array(3000.0, np.float32)],
          opset=17)


def test_check_catches_a_wrong_rule(monkeypatch):
    """``check`` notices a rule that gives a wrong concrete dim, even where dims are loose."""
    from pyonnx.shape_inference import registry

    key = ("", "NonZero", 13)
    monkeypatch.setitem(registry._RULES, key, lambda ctx: TensorType(DataType.INT64, (3, "n")))
    with pytest.raises(AssertionError, match="inferred"):
        check("NonZero", [Feed(np.ones((2, 2), np.float32))], loose={0: {1}})
