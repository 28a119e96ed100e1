"""Concurrent ``run`` calls on one session give the same bits as serial runs.

Sessions are meant to be shared by the threads of a server, as onnxruntime's are: no mutable
state may be shared between runs outside the run's own frame, and per-node state (Conv's
geometry, AveragePool's divisors, compiled tree forests, the semi-constant cache) must tolerate
two runs filling it at once. Each case runs T threads x R runs on one session, the threads
cycling through several distinct feeds (so a run that read another run's state would show), and
compares every output with the serial result of its feed, bit for bit.

The sizes here are modest for CI; ``benchmarks/concurrent_runs.py`` runs the full 8 x 200.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import pyonnx

SHARED = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                       "models"))
_SHARED_MISSING = (f"{SHARED} is absent: the shared real models live beside the project "
                   f"checkout in CI and development, not in a fresh clone")

THREADS = 4
RUNS = 10


def same_bits(a: Any, b: Any) -> bool:
    """Whether two outputs are identical: dtype, shape and every byte (NaN payloads included);
    sequences and maps element by element; object (string) arrays by value."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_bits(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_bits(a[k], b[k]) for k in a)
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return a == b
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == object:
        return bool(np.array_equal(a, b))
    return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def hammer(sess: pyonnx.InferenceSession, feeds: list[dict[str, Any]], threads: int,
           runs: int) -> list[str]:
    """Run ``threads`` x ``runs`` on ``sess`` at once (thread i, run j uses feed (i + j) mod
    len(feeds)); the mismatches with the serial results, described (empty when all agree)."""
    serial = [sess.run(None, f) for f in feeds]
    start = threading.Barrier(threads)
    problems: list[str] = []

    def worker(i: int) -> None:
        start.wait()  # all threads begin together: the first runs overlap
        for j in range(runs):
            k = (i + j) % len(feeds)
            try:
                got = sess.run(None, feeds[k])
            except Exception as e:  # noqa: BLE001 - reported with the others below
                problems.append(f"thread {i} run {j} (feed {k}) raised {e!r}")
                return
            for o, (g, s) in enumerate(zip(got, serial[k])):
                if not same_bits(g, s):
                    problems.append(f"thread {i} run {j} (feed {k}) output {o} differs")

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return problems


def shared_feeds(name: str, seed: int, seq: int = 16) -> dict[str, Any]:
    """Inputs for a shared model, as its README describes them, at batch 1 and sequence
    ``seq`` for the text models (short by default: CI cost)."""
    rng = np.random.default_rng(seed)
    if name.startswith("silero"):
        return {"input": rng.standard_normal((1, 512)).astype(np.float32) * 0.1,
                "state": rng.standard_normal((2, 1, 128)).astype(np.float32) * 0.1,
                "sr": np.array(16000, np.int64)}
    if name.startswith("magika"):
        return {"bytes": rng.integers(0, 257, (1, 2048)).astype(np.int32)}
    if name.startswith("bert"):
        return {"input_ids": rng.integers(0, 1000, (1, seq)).astype(np.int64),
                "attention_mask": (rng.random((1, seq)) < 0.8).astype(np.int64)}
    if name.startswith("gpt2"):
        return {"input_ids": rng.integers(0, 8000, (1, seq)).astype(np.int64)}
    if name.startswith("vit"):
        return {"pixel_values": rng.standard_normal((1, 3, 224, 224)).astype(np.float32)}
    raise KeyError(name)


SHARED_MODELS = ["silero_vad.onnx", "silero_vad_16k_op15.onnx", "silero_vad_op18_ifless.onnx",
                 "magika_standard_v3_3.onnx", "bert_small.onnx", "bert_small_legacy.onnx",
                 "gpt2_small.onnx", "vit_tiny.onnx"]
# the heavier models run fewer times each in CI (the threads still overlap from the start)
_RUNS = {"vit_tiny.onnx": 3, "bert_small.onnx": 5, "bert_small_legacy.onnx": 5,
         "gpt2_small.onnx": 5}


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_shared_model(name: str) -> None:
    path = os.path.join(SHARED, name)
    if not os.path.isfile(path):
        pytest.skip(_SHARED_MISSING)
    sess = pyonnx.InferenceSession(path)
    feeds = [shared_feeds(name, seed) for seed in range(3)]
    assert hammer(sess, feeds, THREADS, _RUNS.get(name, RUNS)) == []


def _light(name: str) -> str:
    onnx = pytest.importorskip("onnx")  # the light CNNs ship inside the onnx wheel
    path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                        f"light_{name}.onnx")
    if not os.path.isfile(path):
        pytest.skip(f"{path} is absent from this onnx wheel")
    return path


@pytest.mark.parametrize("name", ["squeezenet", "inception_v1"])
def test_light_cnn(name: str) -> None:
    """Conv, MaxPool, AveragePool (inception's padded one), Concat, LRN: the onnx wheel's light
    CNNs, whose weights the plan computes once (semi-constant cache) under concurrent runs."""
    sess = pyonnx.InferenceSession(_light(name))
    (inp,) = sess.get_inputs()
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    feeds = [{inp.name: np.random.default_rng(s).random(shape, dtype=np.float32)}
             for s in range(3)]
    assert hammer(sess, feeds, THREADS, 3) == []


_POOLS = """
<ir_version: 10, opset_import: ["" : 21]>
g (float[1,2,H,W] x) => (float[1,4,A,B] y, float[1,2,C,D] z, float[1,2,E,F] m) {
    w = Constant <value: tensor = float[4,2,3,3] {%s}> ()
    c = Conv <pads: ints = [1,1,1,1], strides: ints = [2,1]> (x, w)
    y = Relu (c)
    z = AveragePool <kernel_shape: ints = [3,3], pads: ints = [1,1,1,1]> (x)
    m = MaxPool <kernel_shape: ints = [2,2], ceil_mode: int = 1> (x)
}""" % ",".join(str((i % 7) - 3) for i in range(72))


def test_conv_and_pools_with_changing_shapes() -> None:
    """Each thread feeds another image size, so the nodes' memos (geometry per input shape)
    are filled and read by several runs at once."""
    sess = pyonnx.InferenceSession(pyonnx.parse_model(_POOLS))
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal((1, 2, h, w)).astype(np.float32)}
             for h, w in [(5, 7), (8, 8), (9, 4), (6, 11), (7, 7)]]
    assert hammer(sess, feeds, THREADS, RUNS) == []


def _mobile_head() -> bytes:
    """A stem (3 -> 16 channels, 3x3 at stride 2, HardSwish), GlobalAveragePool, Flatten and a
    classifier Gemm (16 -> 4096, B transposed): the kernels whose compiled loops hand pieces to
    the pool's threads (the stem's bands in per-thread scratch, the classifier's rows)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    weights = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) * 0.2, n)
               for n, s in [("w", (16, 3, 3, 3)), ("b", (16,)), ("fc", (4096, 16)),
                            ("fcb", (4096,))]]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3],
                              strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("HardSwish", ["c"], ["h"]),
             helper.make_node("GlobalAveragePool", ["h"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], transB=1)]
    graph = helper.make_graph(
        nodes, "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4096]),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 16, 112, 112])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_stem_and_classifier() -> None:
    """Concurrent runs of a stem and a classifier, on two intra-op threads: each run's loops
    claim their pieces (and the stem its scratch slots) apart from the other runs'."""
    so = pyonnx.SessionOptions()
    so.intra_op_num_threads = 2
    sess = pyonnx.InferenceSession(_mobile_head(), so)
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal((1, 3, 224, 224)).astype(np.float32)} for _ in range(3)]
    assert hammer(sess, feeds, THREADS, 4) == []


def _forest_model() -> pyonnx.ir.Model:
    """A TreeEnsembleRegressor of 8 random depth-3 trees over 4 features (two targets)."""
    rng = np.random.default_rng(1)
    tree, node, feat, vals, modes, true, false = [], [], [], [], [], [], []
    ttree, tnode, tid, tw = [], [], [], []
    for t in range(8):
        for n in range(15):  # a complete binary tree: 7 branches, 8 leaves
            tree.append(t)
            node.append(n)
            if n < 7:
                feat.append(int(rng.integers(0, 4)))
                vals.append(round(float(rng.standard_normal()), 3))
                modes.append('"BRANCH_LEQ"')
                true.append(2 * n + 1)
                false.append(2 * n + 2)
            else:
                feat.append(0)
                vals.append(0.0)
                modes.append('"LEAF"')
                true.append(0)
                false.append(0)
                for target in range(2):
                    ttree.append(t)
                    tnode.append(n)
                    tid.append(target)
                    tw.append(round(float(rng.standard_normal()), 3))

    def ints(xs: list[int]) -> str:
        return "[" + ",".join(str(x) for x in xs) + "]"

    def floats(xs: list[float]) -> str:
        return "[" + ",".join(repr(float(x)) for x in xs) + "]"

    return pyonnx.parse_model(f"""
        <ir_version: 10, opset_import: ["" : 21, "ai.onnx.ml" : 3]>
        g (float[N,4] x) => (float[N,2] y) {{
            y = ai.onnx.ml.TreeEnsembleRegressor <n_targets: int = 2,
                nodes_treeids: ints = {ints(tree)}, nodes_nodeids: ints = {ints(node)},
                nodes_featureids: ints = {ints(feat)}, nodes_values: floats = {floats(vals)},
                nodes_modes: strings = [{",".join(modes)}],
                nodes_truenodeids: ints = {ints(true)}, nodes_falsenodeids: ints = {ints(false)},
                target_treeids: ints = {ints(ttree)}, target_nodeids: ints = {ints(tnode)},
                target_ids: ints = {ints(tid)}, target_weights: floats = {floats(tw)},
                post_transform: string = "LOGISTIC"> (x)
        }}""")


def test_tree_ensemble() -> None:
    """The compiled forest lives in the node's memo: built by whichever run comes first."""
    sess = pyonnx.InferenceSession(_forest_model())
    rng = np.random.default_rng(2)
    feeds = [{"x": rng.standard_normal((n, 4)).astype(np.float32)} for n in (1, 7, 33)]
    assert hammer(sess, feeds, THREADS, RUNS) == []


def test_hammer_reports_a_mismatch() -> None:
    """The harness itself: a session whose results depend on shared mutable state is caught."""

    class Racy:
        def __init__(self) -> None:
            self.calls = 0

        def run(self, _names: Any, feed: dict[str, Any]) -> list[Any]:
            self.calls += 1
            return [feed["x"] + (self.calls > 3)]

    feeds: list[dict[str, Any]] = [{"x": np.zeros(2)}, {"x": np.ones(2)}]
    run: Callable[..., Any] = hammer
    assert run(Racy(), feeds, 2, 2) != []
    assert not same_bits(np.array([np.nan], np.float32), np.array([np.nan], np.float64))
    assert same_bits(np.array([np.nan]), np.array([np.nan]))
