"""Property tests: for random input shapes and attributes, the shapes inferred for a one-node
model equal the shapes its kernel produces (and inference rejects in strict mode only what the
kernel rejects too)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyonnx.errors import PyOnnxError, ShapeInferenceError
from pyonnx.ir import Attribute, AttributeType, DataType, Graph, Model, Node, Tensor, TensorType, Value
from pyonnx.runtime import InferenceSession
from pyonnx.shape_inference import infer_shapes

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
dims = st.integers(1, 5)
shapes = st.lists(dims, min_size=0, max_size=4).map(tuple)


def _attr(name: str, v) -> Attribute:
    if isinstance(v, str):
        return Attribute(name, AttributeType.STRING, v)
    if isinstance(v, int):
        return Attribute(name, AttributeType.INT, v)
    return Attribute(name, AttributeType.INTS, [int(x) for x in v])


def check(op: str, inputs: list, attrs: dict | None = None, n_out: int = 1,
          opset: int = 21) -> None:
    """``inputs``: a shape tuple (a float graph input) or an array (an initializer)."""
    g = Graph("g")
    ins, feeds = [], {}
    rng = np.random.default_rng(0)
    for i, x in enumerate(inputs):
        if x is None:
            ins.append(None)
        elif isinstance(x, tuple):
            v = Value(f"x{i}", TensorType(DataType.FLOAT, x))
            g.inputs.append(v)
            feeds[v.name] = rng.standard_normal(x).astype(np.float32)
            ins.append(v)
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
    try:
        actual = InferenceSession(model).run(None, feeds)
    except PyOnnxError:
        actual = None
    try:
        inferred = [v.type for v in infer_shapes(model, strict=True).graph.outputs]
    except ShapeInferenceError:
        assert actual is None, f"{op} {inputs} {attrs}: inference rejects what the kernel runs"
        return
    if actual is None:
        return  # inference need not catch every invalid model
    for t, a in zip(inferred, actual):
        assert isinstance(t, TensorType), f"{op}: no type inferred"
        assert t.shape == a.shape, f"{op} {inputs} {attrs}: inferred {t.shape}, ran {a.shape}"
        assert t.elem_type == DataType.from_numpy(a.dtype)


def broadcastable(draw, base):
    out = []
    for d in base[len(base) - draw(st.integers(0, len(base))):]:
        out.append(d if draw(st.booleans()) else 1)
    return tuple(out)


@given(shapes, st.sampled_from(["Relu", "Sigmoid", "Neg", "Softmax", "Erf", "IsNaN"]))
@SETTINGS
def test_unary(shape, op):
    check(op, [shape])


@given(st.data(), st.sampled_from(["Add", "Mul", "Sub", "Div", "Less", "Equal", "PRelu",
                                   "Max", "Sum"]))
@SETTINGS
def test_broadcast(data, op):
    a = data.draw(shapes)
    b = broadcastable(data.draw, a)
    if data.draw(st.booleans()):
        a, b = b, a
    check(op, [a, b])


@given(st.data())
@SETTINGS
def test_where(data):
    a = data.draw(shapes)
    check("Where", [np.ones(broadcastable(data.draw, a), bool), a, broadcastable(data.draw, a)])


@given(st.data())
@SETTINGS
def test_reshape(data):
    s = data.draw(st.lists(dims, min_size=1, max_size=4).map(tuple))
    total = int(np.prod(s))
    target = []
    rest = total
    while rest > 1 and len(target) < 3:
        f = data.draw(st.sampled_from([k for k in range(1, rest + 1) if rest % k == 0]))
        target.append(f)
        rest //= f
    target.append(rest)
    if data.draw(st.booleans()):
        target[data.draw(st.integers(0, len(target) - 1))] = -1
    if data.draw(st.booleans()) and len(target) <= len(s) and target[0] == s[0]:
        target[0] = 0
    check("Reshape", [s, np.array(target, np.int64)])


@given(st.data())
@SETTINGS
def test_transpose_flatten_squeeze_unsqueeze(data):
    s = data.draw(st.lists(dims, min_size=1, max_size=4).map(tuple))
    perm = data.draw(st.permutations(range(len(s))))
    check("Transpose", [s], {"perm": perm})
    check("Flatten", [s], {"axis": data.draw(st.integers(-len(s), len(s)))})
    ones = tuple(d if i % 2 else 1 for i, d in enumerate(s))
    check("Squeeze", [ones])
    check("Squeeze", [ones, np.array([0], np.int64)])
    ax = data.draw(st.integers(-len(s) - 1, len(s)))
    check("Unsqueeze", [s, np.array([ax], np.int64)])


@given(st.data())
@SETTINGS
def test_concat_split(data):
    s = data.draw(st.lists(dims, min_size=1, max_size=4).map(tuple))
    axis = data.draw(st.integers(-len(s), len(s) - 1))
    other = list(s)
    other[axis] = data.draw(dims)
    check("Concat", [s, tuple(other)], {"axis": axis})
    n = data.draw(st.integers(1, 3))
    check("Split", [s], {"axis": axis, "num_outputs": n}, n_out=n, opset=18)
    sizes = [1] * (s[axis] - 1) + [1] if s[axis] > 1 else [1]
    check("Split", [s, np.array(sizes, np.int64)], {"axis": axis}, n_out=len(sizes))


@given(st.data())
@SETTINGS
def test_slice(data):
    s = data.draw(st.lists(dims, min_size=1, max_size=3).map(tuple))
    k = data.draw(st.integers(1, len(s)))
    axes = data.draw(st.permutations(range(len(s))))[:k]
    starts = [data.draw(st.integers(-7, 7)) for _ in axes]
    ends = [data.draw(st.sampled_from([-7, -1, 0, 2, 5, 2**62, -2**62])) for _ in axes]
    steps = [data.draw(st.sampled_from([1, 2, -1, -3])) for _ in axes]
    check("Slice", [s, np.array(starts, np.int64), np.array(ends, np.int64),
                    np.array(axes, np.int64), np.array(steps, np.int64)])


@given(st.data())
@SETTINGS
def test_gather_family(data):
    s = data.draw(st.lists(dims, min_size=1, max_size=3).map(tuple))
    axis = data.draw(st.integers(-len(s), len(s) - 1))
    idx_shape = data.draw(st.lists(dims, min_size=0, max_size=2).map(tuple))
    n = s[axis]
    idx = np.random.default_rng(1).integers(-n, n, idx_shape).astype(np.int64)
    check("Gather", [s, idx], {"axis": axis})
    eshape = tuple(data.draw(st.integers(1, d)) for d in s)
    eidx = np.zeros(eshape, np.int64)
    check("GatherElements", [s, eidx], {"axis": axis})


@given(st.data())
@SETTINGS
def test_expand_tile_pad(data):
    s = data.draw(shapes)
    target = list(broadcastable(data.draw, s))
    extra = data.draw(st.lists(dims, max_size=2))
    big = tuple(extra) + tuple(s)
    check("Expand", [tuple(target), np.array(big, np.int64)])
    reps = [data.draw(st.integers(1, 3)) for _ in s]
    check("Tile", [s, np.array(reps, np.int64)])
    pads = [data.draw(st.integers(-1, 2)) for _ in range(2 * len(s))]
    check("Pad", [s, np.array(pads, np.int64)])


@given(st.data(), st.sampled_from(["ReduceSum", "ReduceMean", "ReduceMax", "ReduceL2",
                                   "ArgMax"]))
@SETTINGS
def test_reductions(data, op):
    s = data.draw(st.lists(dims, min_size=1, max_size=4).map(tuple))
    keep = data.draw(st.integers(0, 1))
    if op == "ArgMax":
        check(op, [s], {"axis": data.draw(st.integers(-len(s), len(s) - 1)), "keepdims": keep})
        return
    axes = sorted(set(data.draw(st.lists(st.integers(-len(s), len(s) - 1), max_size=3))))
    if len({a % len(s) for a in axes}) != len(axes):
        return
    ins = [s, np.array(axes, np.int64)] if axes else [s]
    check(op, ins, {"keepdims": keep})


@given(st.data(), st.sampled_from(["Conv", "MaxPool", "AveragePool", "LpPool"]))
@SETTINGS
def test_windows(data, op):
    nsp = data.draw(st.integers(1, 2))
    spatial = tuple(data.draw(st.integers(1, 9)) for _ in range(nsp))
    x = (data.draw(st.integers(1, 2)), 2, *spatial)
    k = [data.draw(st.integers(1, 3)) for _ in range(nsp)]
    attrs = {"strides": [data.draw(st.integers(1, 3)) for _ in range(nsp)]}
    auto_pad = data.draw(st.sampled_from(["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    if auto_pad == "NOTSET":
        attrs["pads"] = [data.draw(st.integers(0, 2)) for _ in range(2 * nsp)]
    else:
        attrs["auto_pad"] = auto_pad
    attrs["dilations"] = [data.draw(st.integers(1, 2)) for _ in range(nsp)]
    if op == "Conv":
        check(op, [x, np.zeros((3, 2, *k), np.float32)], attrs)
    else:
        attrs["kernel_shape"] = k
        if op != "LpPool":
            attrs["ceil_mode"] = data.draw(st.integers(0, 1))
        check(op, [x], attrs, n_out=1)


@given(st.data())
@SETTINGS
def test_matmul_gemm(data):
    m, k, n = (data.draw(dims) for _ in range(3))
    batch = data.draw(st.lists(dims, max_size=2).map(tuple))
    a = batch + (m, k)
    b = broadcastable(data.draw, batch) + (k, n)
    check("MatMul", [a, b])
    check("MatMul", [(k,), (k, n)])
    check("MatMul", [a, (k,)])
    ta, tb = data.draw(st.integers(0, 1)), data.draw(st.integers(0, 1))
    check("Gemm", [(k, m) if ta else (m, k), (n, k) if tb else (k, n)],
          {"transA": ta, "transB": tb})


def test_property_helper_catches_a_wrong_rule(monkeypatch):
    """The check above would notice a rule that gives a wrong concrete shape."""
    from pyonnx.shape_inference import registry

    key = ("", "Relu", 14)
    monkeypatch.setitem(registry._RULES, key, lambda ctx: TensorType(DataType.FLOAT, (9,)))
    with pytest.raises(AssertionError, match="inferred"):
        check("Relu", [(2,)])
