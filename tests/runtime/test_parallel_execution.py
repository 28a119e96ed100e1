"""``ExecutionMode.ORT_PARALLEL``: a session's nodes run as a dependency graph on inter-op threads
(pyonnx.runtime.parallel), with the results, errors, frees and reports of sequential mode.

Nothing here measures time. That branches really overlap is shown by a custom operator that
waits on a barrier two branches must reach together (sequential mode would never get there),
and that values are freed by weak references to the arrays a custom operator makes.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import weakref
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import pyonnx
from pyonnx import CustomOp, ExecutionError, InvalidArgument
from pyonnx.backends import register_provider, unregister_provider
from pyonnx.backends.cpu import threads
from pyonnx.runtime.parallel import ParallelExecutor
from pyonnx.runtime.plan import _RunState
from tests.backends.toy_provider import ToyProvider
from tests.runtime.test_concurrent_runs import (
    SHARED,
    SHARED_MODELS,
    _SHARED_MISSING,
    hammer,
    same_bits,
    shared_feeds,
)

PARALLEL = pyonnx.ExecutionMode.ORT_PARALLEL
CONTRIB = "ai.onnx.contrib"
LIGHT = os.path.join(os.path.dirname(__import__("onnx").__file__), "backend", "test", "data",
                     "light")


def _options(parallel: bool = True, inter: int = 2, level: int = 99,
             ops: tuple[CustomOp, ...] = ()) -> pyonnx.SessionOptions:
    so = pyonnx.SessionOptions()
    if parallel:
        so.execution_mode = PARALLEL
        so.inter_op_num_threads = inter
    so.graph_optimization_level = level
    for op in ops:
        so.register_custom_op(op)
    return so


def _pair(model: Any, inter: int = 2, level: int = 99, ops: tuple[CustomOp, ...] = (),
          providers: list[str] | None = None
          ) -> tuple[pyonnx.InferenceSession, pyonnx.InferenceSession]:
    """(sequential session, parallel session) of one model."""
    seq = pyonnx.InferenceSession(model, _options(False, level=level, ops=ops),
                                  providers=providers)
    par = pyonnx.InferenceSession(model, _options(True, inter, level, ops), providers=providers)
    assert seq._plan.parallel is None
    assert isinstance(par._plan.parallel, ParallelExecutor)
    return seq, par


def _unary(op_type: str, fn: Any, deterministic: bool = True) -> CustomOp:
    """A one-input float operator of the contrib domain running ``fn``."""
    return CustomOp(op_type, fn, inputs=["T"], outputs=["T"],
                    type_constraints={"T": ["tensor(float)"]}, shape_rule=lambda s: s,
                    deterministic=deterministic)


def _wide_model(branches: int = 6, depth: int = 3, size: int = 48, op: str = "") -> bytes:
    """x -> ``branches`` independent chains (MatMul by its own weight, then ``depth`` - 1
    element-wise nodes, or the custom ``op`` when given) -> one Sum; the chains are listed one
    after another, so sequential mode runs them one at a time."""
    rng = np.random.default_rng(0)
    nodes, inits, ends = [], [], []
    unary = ["Relu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp"]
    for b in range(branches):
        w = numpy_helper.from_array(
            (rng.standard_normal((size, size)) / size).astype(np.float32), f"w{b}")
        inits.append(w)
        prev = f"b{b}_0"
        nodes.append(helper.make_node("MatMul", ["x", f"w{b}"], [prev], name=f"mm{b}"))
        for d in range(1, depth):
            out = f"b{b}_{d}"
            if op:
                nodes.append(helper.make_node(op, [prev], [out], name=f"{op}{b}_{d}",
                                              domain=CONTRIB))
            else:
                nodes.append(helper.make_node(unary[(b + d) % len(unary)], [prev], [out],
                                              name=f"u{b}_{d}"))
            prev = out
        ends.append(prev)
    nodes.append(helper.make_node("Sum", ends, ["y"], name="sum"))
    g = helper.make_graph(nodes, "wide",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, size])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, size])],
                          initializer=inits)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(CONTRIB, 1)] if op else [])
    return helper.make_model(g, opset_imports=opsets).SerializeToString()


def _x(seed: int = 0, rows: int = 8, size: int = 48) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).standard_normal((rows, size)).astype(np.float32)}


# ------------------------------------------------------------------ results

def test_wide_graph_gives_the_sequential_bits() -> None:
    seq, par = _pair(_wide_model())
    for seed in range(5):
        feed = _x(seed)
        assert same_bits(par.run(None, feed), seq.run(None, feed))


_OPS = [("Add", 2), ("Mul", 2), ("Sub", 2), ("Neg", 1), ("Relu", 1), ("Abs", 1),
        ("Identity", 1), ("Max", 3)]


def _random_dag(picks: list[tuple[int, int, int, int]], outputs: list[int]) -> bytes:
    """A graph of element-wise nodes over two inputs; node i reads values made before it
    (chosen by ``picks``), and the graph outputs are the last value plus a few others."""
    values = ["x", "y"]
    nodes = []
    for i, (op_i, *choices) in enumerate(picks):
        op, arity = _OPS[op_i % len(_OPS)]
        ins = [values[c % len(values)] for c in choices[:arity]]
        nodes.append(helper.make_node(op, ins, [f"v{i}"], name=f"n{i}"))
        values.append(f"v{i}")
    outs = sorted({values[-1]} | {values[2 + o % len(picks)] for o in outputs})
    info = [helper.make_tensor_value_info(v, TensorProto.FLOAT, [5]) for v in outs]
    g = helper.make_graph(nodes, "dag", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [5])
                                         for n in ("x", "y")], info)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.tuples(*[st.integers(0, 1000)] * 4), min_size=1, max_size=30),
       outputs=st.lists(st.integers(0, 1000), max_size=3),
       inter=st.integers(2, 4))
def test_random_dags_give_the_sequential_bits(picks: list[tuple[int, int, int, int]],
                                              outputs: list[int], inter: int) -> None:
    model = _random_dag(picks, outputs)
    seq, par = _pair(model, inter=inter, level=0)
    rng = np.random.default_rng(len(picks))
    feed = {n: rng.standard_normal(5).astype(np.float32) for n in ("x", "y")}
    want = seq.run(None, feed)
    for _ in range(3):
        assert same_bits(par.run(None, feed), want)


def test_independent_branches_run_at_the_same_time() -> None:
    """Two branches each wait on a barrier of two parties: only a run that executes both at
    once gets past it (sequential mode would wait forever; the barrier's timeout turns that
    into an error instead of a hang)."""
    barrier = threading.Barrier(2, timeout=60)
    ran_on: set[int] = set()

    def meet(x: np.ndarray) -> np.ndarray:
        ran_on.add(threading.get_ident())
        barrier.wait()
        return x + 1

    op = _unary("Meet", meet, deterministic=False)
    g = helper.make_graph(
        [helper.make_node("Meet", ["x"], ["a"], domain=CONTRIB, name="left"),
         helper.make_node("Meet", ["x"], ["b"], domain=CONTRIB, name="right"),
         helper.make_node("Add", ["a", "b"], ["y"], name="join")], "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid(CONTRIB, 1)])
    sess = pyonnx.InferenceSession(model.SerializeToString(), _options(ops=(op,)))
    for _ in range(3):
        (y,) = sess.run(None, {"x": np.array([1, 2, 3], np.float32)})
        np.testing.assert_array_equal(y, [4, 6, 8])
    assert len(ran_on) >= 2  # the caller and at least one inter-op thread


def test_at_most_inter_op_num_threads_run_steps_at_once() -> None:
    """Eight branches of slow nodes on three inter-op threads: never more than three of the
    run's nodes at once, and the graph's width is used (more than one)."""
    lock = threading.Lock()
    now, most = [0], [0]
    gate = threading.Event()

    def busy(x: np.ndarray) -> np.ndarray:
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
            if now[0] >= 2:
                gate.set()
        gate.wait(0.2)  # give other runners the time to start theirs (no time is asserted)
        with lock:
            now[0] -= 1
        return x + 1

    op = _unary("Busy", busy, deterministic=False)
    sess = pyonnx.InferenceSession(_wide_model(branches=8, depth=3, op="Busy"),
                                   _options(inter=3, level=0, ops=(op,)))
    for _ in range(3):
        sess.run(None, _x())
    assert 2 <= most[0] <= 3


@pytest.mark.skipif(not os.path.exists(os.path.join(LIGHT, "light_inception_v2.onnx")),
                    reason="this onnx package has no light models")
def test_light_inception_v2_matches_sequential_and_the_stored_output() -> None:
    from onnx import load_tensor
    from onnx import numpy_helper as nh

    path = os.path.join(LIGHT, "light_inception_v2.onnx")
    seq, par = _pair(path)
    (inp,) = par.get_inputs()
    # the input as the onnx runner makes it for the stored output: arange(n) / n
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    n = int(np.prod(shape))
    feed = {inp.name: (np.arange(n).reshape(shape) / n).astype(np.float32)}
    (a,) = seq.run(None, feed)
    (b,) = par.run(None, feed)
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)
    stored = nh.to_array(load_tensor(os.path.join(LIGHT, "light_inception_v2_output_0.pb")))
    np.testing.assert_allclose(b, stored, rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("name", ["silero_vad.onnx", "bert_small.onnx", "gpt2_small.onnx"])
def test_shared_models_give_the_sequential_bits(name: str) -> None:
    """Real models: silero (nested If, LSTM), bert and gpt2 (attention heads as parallel
    branches) compute what sequential mode computes, from several threads at once too."""
    assert name in SHARED_MODELS
    path = os.path.join(SHARED, name)
    if not os.path.isfile(path):
        pytest.skip(_SHARED_MISSING)
    seq, par = _pair(path)
    feeds = [shared_feeds(name, seed) for seed in range(3)]
    for f in feeds:
        # not bit for bit: sequential mode may split a large product over the intra-op
        # threads, where each parallel node runner has a share of one (a different blocking)
        for a, b in zip(par.run(None, f), seq.run(None, f)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # a parallel session is bit-identical with itself, from several threads at once
    assert hammer(par, feeds, threads=3, runs=2) == []


def test_subgraphs_and_the_outer_values_they_read() -> None:
    """If and Loop bodies run inside their node (sequentially); the outer values they read stay
    alive until they have run, though no node of the main graph reads them."""
    model = pyonnx.parse_model("""
<ir_version: 10, opset_import: ["" : 21]>
g (float[4] x, bool c, int64 n) => (float[4] y, float[4] z, float[4] w) {
    a = Relu (x)
    b = Neg (x)
    e = Exp (x)
    y = If (c) <
        then_branch = t () => (float[4] ta) { ta = Add (a, b) },
        else_branch = f () => (float[4] fa) { fa = Sub (a, b) }>
    z = Loop (n, c, e) <body = body (int64 i, bool cin, float[4] acc) => (bool cout, float[4] nxt) {
        cout = Identity (cin)
        nxt = Add (acc, b)
    }>
    w = Mul (a, e)
}""")
    seq, par = _pair(model, level=0)
    x = np.array([-1, 0, 2, 3], np.float32)
    for c in (True, False):
        feed = {"x": x, "c": np.array(c), "n": np.array(3, np.int64)}
        assert same_bits(par.run(None, feed), seq.run(None, feed))


def test_local_function_calls() -> None:
    model = pyonnx.parse_model("""
<ir_version: 10, opset_import: ["" : 21, "local" : 1]>
g (float[4] x) => (float[4] y) {
    a = local.Twice (x)
    b = local.Twice (a)
    c = Neg (x)
    y = Add (b, c)
}
<domain: "local", opset_import: ["" : 21]>
Twice (t) => (u) { u = Add (t, t) }
""")
    seq, par = _pair(model, level=0)
    feed = {"x": np.array([1, 2, 3, 4], np.float32)}
    assert same_bits(par.run(None, feed), seq.run(None, feed))


def test_copies_between_providers() -> None:
    """A graph split between the toy device and the host: the MemcpyFromHost / MemcpyToHost
    steps order the branches as the values they move."""
    from tests.backends.test_provider_partition import SPLIT, _feed

    register_provider(ToyProvider.name, ToyProvider)
    try:
        seq, par = _pair(SPLIT, providers=[ToyProvider.name])
        kinds = {st.node.op_type for st in par._plan.steps}
        assert {"MemcpyFromHost", "MemcpyToHost"} <= kinds
        for seed in range(4):
            assert same_bits(par.run(None, _feed(seed)), seq.run(None, _feed(seed)))
    finally:
        unregister_provider(ToyProvider.name)


def test_run_with_iobinding() -> None:
    seq, par = _pair(_wide_model())
    feed = _x(3)
    (expected,) = seq.run(None, feed)
    binding = par.io_binding()
    binding.bind_cpu_input("x", feed["x"])
    out = np.empty_like(expected)
    binding.bind_output("y", "cpu", 0, np.float32, list(out.shape), out.ctypes.data)
    par.run_with_iobinding(binding)
    np.testing.assert_array_equal(out, expected)


def test_run_async() -> None:
    seq, par = _pair(_wide_model())
    feed = _x(4)
    done = threading.Event()
    got: list[Any] = []

    def callback(results: list[Any], user_data: Any, err: str) -> None:
        got.append((results, user_data, err))
        done.set()

    par.run_async(None, feed, callback, "tag")
    assert done.wait(60)
    results, tag, err = got[0]
    assert (tag, err) == ("tag", "")
    assert same_bits(results, seq.run(None, feed))


def test_concurrent_runs_on_one_parallel_session() -> None:
    seq, par = _pair(_wide_model())
    feeds = [_x(seed) for seed in range(4)]
    assert hammer(par, feeds, threads=4, runs=10) == []
    for f in feeds:  # and still what sequential mode computes
        assert same_bits(par.run(None, f), seq.run(None, f))


# ------------------------------------------------------------------ errors and stopping

_FAILING = """
<ir_version: 10, opset_import: ["" : 21]>
g (float[4] x, int64[2] idx) => (float[4] y, float[2] z) {
    a = Relu (x)
    b = Neg (a)
    y = Exp (b)
    g = Gather <axis: int = 0> (x, idx)
    z = Abs (g)
}"""


def _error_of(sess: pyonnx.InferenceSession, feed: dict[str, Any],
              run_options: pyonnx.RunOptions | None = None) -> BaseException:
    with pytest.raises(Exception) as info:
        sess.run(None, feed, run_options)
    return info.value


def test_a_failing_node_raises_what_sequential_mode_raises() -> None:
    seq, par = _pair(pyonnx.parse_model(_FAILING), level=0)
    bad = {"x": np.ones(4, np.float32), "idx": np.array([0, 9], np.int64)}
    want, got = _error_of(seq, bad), _error_of(par, bad)
    assert type(got) is type(want) and isinstance(got, ExecutionError)
    assert str(got) == str(want)
    assert "Gather" in str(got)
    assert type(got.__cause__) is type(want.__cause__)
    # the session is not left in a bad state: the next run works
    good = {"x": np.ones(4, np.float32), "idx": np.array([0, 3], np.int64)}
    assert same_bits(par.run(None, good), seq.run(None, good))


def test_an_error_while_other_branches_run_stops_the_run() -> None:
    """One branch fails while the other is still in a node: the run waits for that node, starts
    nothing after it, and raises the failure (no hang, no later node)."""
    started = threading.Event()
    release = threading.Event()
    after: list[str] = []

    def slow(x: np.ndarray) -> np.ndarray:
        started.set()
        release.wait(60)
        return x

    def boom(x: np.ndarray) -> np.ndarray:
        started.wait(60)  # the slow branch is running
        release.set()
        raise ValueError("boom in the kernel")

    def mark(x: np.ndarray) -> np.ndarray:
        after.append("ran")
        return x

    ops = (_unary("Slow", slow, False), _unary("Boom", boom, False), _unary("Mark", mark, False))
    g = helper.make_graph(
        [helper.make_node("Slow", ["x"], ["a"], domain=CONTRIB, name="slow"),
         helper.make_node("Mark", ["a"], ["b"], domain=CONTRIB, name="after_slow"),
         helper.make_node("Boom", ["x"], ["c"], domain=CONTRIB, name="boom"),
         helper.make_node("Add", ["b", "c"], ["y"], name="join")], "err",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid(CONTRIB, 1)])
    sess = pyonnx.InferenceSession(model.SerializeToString(), _options(ops=ops))
    with pytest.raises(ExecutionError, match="boom.*boom in the kernel") as info:
        sess.run(None, {"x": np.ones(3, np.float32)})
    assert isinstance(info.value.__cause__, ValueError)
    assert after == []  # the node after the slow one never started


def test_terminate_before_the_run() -> None:
    seq, par = _pair(_wide_model())
    ro = pyonnx.RunOptions()
    ro.terminate = True
    want = _error_of(seq, _x(), ro)
    with pytest.raises(ExecutionError, match=r"^run terminated by RunOptions.terminate before"):
        par.run(None, _x(), ro)
    # the first step in graph order is the first one started, so the message is the same
    assert str(_error_of(par, _x(), ro)) == str(want)


def test_terminate_during_the_run_stops_the_later_nodes() -> None:
    ro = pyonnx.RunOptions()
    ran: list[str] = []

    def stop(x: np.ndarray) -> np.ndarray:
        ran.append("stop")
        ro.terminate = True  # as another thread would
        return x

    def mark(x: np.ndarray) -> np.ndarray:
        ran.append("mark")
        return x

    ops = (_unary("Stop", stop, False), _unary("Mark", mark, False))
    g = helper.make_graph(
        [helper.make_node("Stop", ["x"], ["a"], domain=CONTRIB, name="stop"),
         helper.make_node("Mark", ["a"], ["y"], domain=CONTRIB, name="later")], "term",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid(CONTRIB, 1)])
    sess = pyonnx.InferenceSession(model.SerializeToString(), _options(ops=ops))
    with pytest.raises(ExecutionError, match=r"^run terminated by RunOptions.terminate before "
                                             r".*later"):
        sess.run(None, {"x": np.ones(3, np.float32)}, ro)
    assert ran == ["stop"]


# ------------------------------------------------------------------ memory

def test_values_are_freed_as_in_sequential_mode() -> None:
    """Every intermediate array is released by the end of the run, and while it runs a wide
    graph holds about as many arrays as sequential mode does (a branch's arrays die as it goes),
    far fewer than all of them."""
    made: list[weakref.ref] = []
    peak = [0]
    lock = threading.Lock()

    def probe(x: np.ndarray) -> np.ndarray:
        out = x * np.float32(0.5)
        with lock:
            peak[0] = max(peak[0], sum(r() is not None for r in made))
            made.append(weakref.ref(out))
        return out

    branches, depth = 8, 4
    op = _unary("Probe", probe, deterministic=False)
    model = _wide_model(branches=branches, depth=depth, op="Probe")
    seq, par = _pair(model, level=0, ops=(op,))
    peaks = {}
    for name, sess in (("sequential", seq), ("parallel", par)):
        for _ in range(3):
            made.clear()
            peak[0] = 0
            sess.run(None, _x())
            assert len(made) == branches * (depth - 1)
            assert all(r() is None for r in made), f"{name}: an intermediate array outlived the run"
            peaks[name] = max(peaks.get(name, 0), peak[0])
    # sequential: the ends of the finished branches plus the current one's input; parallel
    # adds at most one array per extra inter-op thread (2 threads here)
    assert peaks["sequential"] <= branches + 1
    assert peaks["parallel"] <= peaks["sequential"] + 2
    assert peaks["parallel"] < branches * (depth - 1)


def test_byte_accounting_follows_the_frees() -> None:
    seq, par = _pair(_wide_model(), level=0)
    feeds = [_x()["x"]]
    for sess in (seq, par):
        state = _RunState(max_run_bytes=1 << 30)
        sess._plan.execute(feeds, state)
        assert state.live_bytes == 0
    # a limit below what the widest moment needs names a node
    with pytest.raises(pyonnx.ResourceLimitExceeded, match=r"above the limit of 4000 bytes"):
        par._plan.execute(feeds, _RunState(max_run_bytes=4000))


# ------------------------------------------------------------------ reports and options

def test_profile_events_carry_their_threads(tmp_path: Any) -> None:
    barrier = threading.Barrier(2, timeout=60)

    def meet(x: np.ndarray) -> np.ndarray:
        barrier.wait()
        return x + 1

    op = _unary("Meet", meet, deterministic=False)
    g = helper.make_graph(
        [helper.make_node("Meet", ["x"], ["a"], domain=CONTRIB, name="left"),
         helper.make_node("Meet", ["x"], ["b"], domain=CONTRIB, name="right"),
         helper.make_node("Add", ["a", "b"], ["y"], name="join")], "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid(CONTRIB, 1)])
    so = _options(ops=(op,))
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "par")
    sess = pyonnx.InferenceSession(model.SerializeToString(), so)
    sess.run(None, {"x": np.ones(3, np.float32)})
    with open(sess.end_profiling()) as f:
        events = json.load(f)
    by_name = {e["name"]: e for e in events}
    assert set(by_name) == {"left", "right", "join"}
    assert by_name["left"]["tid"] != by_name["right"]["tid"]
    assert min(e["ts"] for e in events) == 0


def test_each_node_runner_gets_its_share_of_the_thread_budget() -> None:
    seen: list[int] = []

    def look(x: np.ndarray) -> np.ndarray:
        seen.append(threads.share())
        return x

    op = _unary("Look", look, deterministic=False)
    sess = pyonnx.InferenceSession(_wide_model(branches=3, depth=2, op="Look"),
                                   _options(inter=2, level=0, ops=(op,)))
    sess.run(None, _x())
    assert seen and set(seen) == {max(1, threads.budget() // sess._plan.parallel.threads)}
    assert threads.share() == threads.budget()  # the caller's own share is back


def test_the_pool_threads_end_with_their_session() -> None:
    sess = pyonnx.InferenceSession(_wide_model(), _options(inter=3))
    sess.run(None, _x())
    pool = sess._plan.parallel.pool
    assert pool.threads and all(t.is_alive() for t in pool.threads)
    del sess
    gc.collect()
    for t in pool.threads:
        t.join(30)
        assert not t.is_alive()


def test_thread_counts() -> None:
    model = _wide_model(branches=2, depth=2)
    one = pyonnx.InferenceSession(model, _options(inter=1))
    assert one._plan.parallel is None  # one inter-op thread: the sequential loop
    default = pyonnx.InferenceSession(model, _options(inter=0))  # 0: one per core
    if threads.cores() > 1:
        assert default._plan.parallel.threads == threads.cores()
    else:
        assert default._plan.parallel is None
    # an explicit count is honoured as onnxruntime honours it, above the cores too (the
    # intra-op share of each is then 1)
    many = pyonnx.InferenceSession(model, _options(inter=threads.cores() + 3))
    assert many._plan.parallel.threads == threads.cores() + 3
    seq = pyonnx.InferenceSession(model, _options(False))
    seq_inter = _options(False)
    seq_inter.inter_op_num_threads = 4  # no inter-op threads in sequential mode, as onnxruntime
    assert pyonnx.InferenceSession(model, seq_inter)._plan.parallel is None
    assert seq._plan.parallel is None
    with pytest.raises(InvalidArgument, match="inter_op_num_threads is -1"):
        pyonnx.InferenceSession(model, _options(inter=-1))
