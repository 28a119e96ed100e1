"""Loading a model file reads its weights once (pyonnx.io.lean_load): the main graph's large
raw_data is cut out of the bytes protobuf parses and read straight from the file. The result
must be the model that parsing the whole file gives, and every layout the cut does not handle
must fall back to that whole parse with the same result or error. The peak-memory test reads
VmHWM in a fresh interpreter (Linux only); it measures memory, not time."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import pyonnx
import pyonnx.io as pio
from pyonnx.errors import DecodeError
from pyonnx.io import lean_load


@pytest.fixture(autouse=True)
def _lean_for_small_files(monkeypatch):  # type: ignore[no-untyped-def]
    """Small test files take the lean path too (it starts at 1 MiB in use)."""
    monkeypatch.setattr(pio, "_LEAN_MIN_FILE_BYTES", 0)


def _weights():
    rng = np.random.default_rng(0)
    return {"w": rng.standard_normal((64, 32)).astype(np.float32),
            "b": rng.standard_normal(32).astype(np.float32),  # small: stays in the message
            "e": rng.integers(-9, 9, (300, 8)).astype(np.int64),
            "h": rng.standard_normal((40, 40)).astype(np.float16)}


def _model_proto(subgraph_init: bool = False) -> onnx.ModelProto:
    w = _weights()
    inits = [numpy_helper.from_array(a, n) for n, a in w.items()]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["y"])]
    outputs = [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 32])]
    if subgraph_init:
        sub_w = numpy_helper.from_array(np.arange(2048, dtype=np.float32), "sw")
        then = helper.make_graph([helper.make_node("Identity", ["sw"], ["t"])], "then", [],
                                 [helper.make_tensor_value_info("t", 1, [2048])], [sub_w])
        other = helper.make_graph([helper.make_node("Identity", ["sw2"], ["t2"])], "else", [],
                                  [helper.make_tensor_value_info("t2", 1, [2048])],
                                  [numpy_helper.from_array(np.zeros(2048, np.float32), "sw2")])
        nodes.append(helper.make_node("If", ["c"], ["z"], then_branch=then, else_branch=other))
        outputs.append(helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [2048]))
    inputs = [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64])]
    if subgraph_init:
        inputs.append(helper.make_tensor_value_info("c", onnx.TensorProto.BOOL, []))
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _same(a: pyonnx.Model, b: pyonnx.Model) -> None:
    assert list(a.graph.initializers) == list(b.graph.initializers)
    for name, v in a.graph.initializers.items():
        x, y = v.const_value.numpy(), b.graph.initializers[name].const_value.numpy()
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)
        assert x.flags.aligned
    assert [n.op_type for n in a.graph.nodes] == [n.op_type for n in b.graph.nodes]


@pytest.mark.parametrize("subgraph_init", [False, True])
def test_lean_load_equals_whole_parse(tmp_path, subgraph_init):
    mp = _model_proto(subgraph_init)
    data = mp.SerializeToString()
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    split = lean_load.split_raw_data(data)
    assert split is not None
    rest, regions = split
    # w (8 KiB) and e (19 KiB) are cut; h (3.2 KiB) and b stay in the message
    names = [t.name for t in mp.graph.initializer]
    assert sorted(names[k] for k in regions) == ["e", "w"]
    assert len(rest) < len(data) - 8192
    lean = pyonnx.load(str(path))
    whole = pyonnx.load(data)  # bytes: parsed whole
    _same(lean, whole)
    if subgraph_init:
        then = lean.graph.nodes[-1].attributes["then_branch"].value
        np.testing.assert_array_equal(then.initializers["sw"].const_value.numpy(),
                                      np.arange(2048, dtype=np.float32))
    x = np.ones((1, 64), np.float32)
    feeds = {"x": x, "c": np.array(True)} if subgraph_init else {"x": x}
    got = pyonnx.InferenceSession(str(path)).run(None, feeds)
    w = _weights()
    np.testing.assert_allclose(got[0], x @ w["w"] + w["b"], rtol=1e-5)


def _raw_field(data: bytes) -> bytes:
    """A raw_data field (field 9) holding ``data``."""
    return bytes([9 << 3 | 2]) + lean_load._encode_varint(len(data)) + data


def test_two_raw_data_fields_fall_back_to_protobufs_rule(tmp_path):
    # protobuf keeps the last of two raw_data fields: the cut must not pick one itself
    mp = _model_proto()
    k = [t.name for t in mp.graph.initializer].index("w")
    other = np.full((64, 32), 7, np.float32)
    doubled = mp.graph.initializer[k].SerializeToString() + _raw_field(other.tobytes())
    assert lean_load._tensor(doubled, 0, len(doubled)) is None
    mp.graph.initializer[k].ParseFromString(doubled)
    path = tmp_path / "m.onnx"
    path.write_bytes(mp.SerializeToString())
    np.testing.assert_array_equal(pyonnx.load(str(path)).graph.initializers["w"]
                                  .const_value.numpy(), other)


def test_size_mismatch_is_reported_as_before(tmp_path):
    mp = _model_proto()
    k = [t.name for t in mp.graph.initializer].index("w")
    mp.graph.initializer[k].dims[:] = [64, 33]
    path = tmp_path / "m.onnx"
    path.write_bytes(mp.SerializeToString())
    with pytest.raises(DecodeError, match="Data size mismatch"):
        pyonnx.load(str(path))
    with pytest.raises(DecodeError, match="Data size mismatch"):
        pyonnx.load(mp.SerializeToString())


def test_truncated_and_repeated_graph_fall_back(tmp_path):
    data = _model_proto().SerializeToString()
    path = tmp_path / "m.onnx"
    path.write_bytes(data[:-100])
    assert lean_load.split_raw_data(data[:-100]) is None
    with pytest.raises(DecodeError, match="do not parse"):
        pyonnx.load(str(path))
    # a second graph field: protobuf merges the two, the cut leaves that to it
    extra = onnx.ModelProto()
    extra.graph.doc_string = "second"
    twice = data + extra.SerializeToString()
    assert lean_load.split_raw_data(twice) is None
    path.write_bytes(twice)
    assert pyonnx.load(str(path)).graph.doc_string == "second"


def test_external_and_string_tensors_are_not_cut():
    s = helper.make_tensor("s", onnx.TensorProto.STRING, [1], [b"x" * 5000])
    assert lean_load._tensor(s.SerializeToString(), 0, len(s.SerializeToString())) is None
    t = numpy_helper.from_array(np.zeros(4096, np.float32), "t")
    t.data_location = onnx.TensorProto.EXTERNAL
    assert lean_load._tensor(t.SerializeToString(), 0, len(t.SerializeToString())) is None
    t.data_location = onnx.TensorProto.DEFAULT
    assert lean_load._tensor(t.SerializeToString(), 0, len(t.SerializeToString())) is not None


_WORKER = r"""
import json, sys
import pyonnx

def kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])

base = kb("VmRSS")
model = pyonnx.load(sys.argv[1])
arrays = [v.const_value.numpy() for v in model.graph.initializers.values()]
print(json.dumps({"growth_bytes": (kb("VmHWM") - base) * 1024}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                    reason="peak RSS is read from /proc/self/status (Linux only)")
def test_loading_holds_the_weights_about_once(tmp_path):
    # 64 MB of weights in 8 initializers: parsing the whole file peaked at three copies
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(2 * 2**20).astype(np.float32),
                                     f"w{i}") for i in range(8)]
    g = helper.make_graph([helper.make_node("Identity", ["w0"], ["y"])], "g", [],
                          [helper.make_tensor_value_info("y", 1, [2 * 2**20])], inits)
    path = tmp_path / "big.onnx"
    path.write_bytes(helper.make_model(g).SerializeToString())
    weights = 64 * 2**20
    env = dict(os.environ, PYONNX_JIT="0")
    out = subprocess.run([sys.executable, "-c", _WORKER, str(path)], capture_output=True,
                         text=True, check=True, env=env)
    growth = json.loads(out.stdout.strip().splitlines()[-1])["growth_bytes"]
    assert growth < 1.4 * weights, f"loading grew the peak by {growth / 2**20:.0f} MiB"
