"""The CPU provider's intra-op thread pool and budget (backends/cpu/threads.py)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pyonnx.backends.cpu import threads


@pytest.fixture
def pool(monkeypatch):
    """A fresh budget on a pretend 4-core machine, BLAS left alone; the module's state is put
    back afterwards."""
    saved = (threads._budget, threads._pool, threads._blas_set)
    blas: list[int] = []
    monkeypatch.setattr(threads, "cores", lambda: 4)
    monkeypatch.setattr(threads, "_set_blas", blas.append)
    threads._budget, threads._pool = 0, None
    try:
        yield blas
    finally:
        if threads._pool is not None:
            threads._pool.shutdown(wait=True)
        threads._budget, threads._pool, threads._blas_set = saved


def test_budget_is_the_largest_request_capped_at_the_cores(pool):
    assert threads.budget() == 1
    assert threads.request(2) == 2
    assert threads.request(1) == 2  # never shrinks: other sessions use it
    assert threads.request(0) == 4  # 0: the cores, as onnxruntime
    assert threads.request(64) == 4
    assert threads._pool is not None and len(threads._pool.threads) == 3
    assert set(pool) == {1}  # BLAS: one thread, the pool splits products


def test_split_covers_the_range_once(pool):
    threads.request(3)
    for count in (0, 1, 5, 100, 101):
        for min_part in (1, 7, 50, 1000):
            parts = threads.split(count, min_part)
            assert len(parts) <= 3
            covered = [i for a, b in parts for i in range(a, b)]
            assert covered == list(range(count))
            if len(parts) > 1:
                assert all(b - a >= min_part for a, b in parts)


def test_parallel_for_runs_every_part_on_several_threads(pool):
    threads.request(4)
    out = np.zeros(1000)
    seen: set[str] = set()
    barrier = threading.Barrier(4, timeout=10)

    def fn(a, b):
        seen.add(threading.current_thread().name)
        barrier.wait()  # every part runs at once: one per pool thread plus the caller
        out[a:b] = np.arange(a, b)

    threads.parallel_for(1000, fn, min_per_part=10)
    np.testing.assert_array_equal(out, np.arange(1000))
    assert len(seen) == 4 and threading.current_thread().name in seen


def test_a_busy_pool_does_not_hold_the_caller(pool):
    # every worker blocked: the caller claims and runs every part itself
    threads.request(2)
    release = threading.Event()
    threads._pool.post(release.wait, 1)  # the one worker takes this first and blocks
    seen = []
    try:
        threads.parallel_for(100, lambda a, b: seen.append(threading.current_thread().name),
                             min_per_part=10)
    finally:
        release.set()
    assert seen == [threading.current_thread().name] * 2


def test_first_error_is_raised_after_every_part_finished(pool):
    threads.request(4)
    done = []

    def fn(a, b):
        if a == 0:
            raise ValueError("part 0")
        done.append(a)

    with pytest.raises(ValueError, match="part 0"):
        threads.parallel_for(40, fn, min_per_part=10)
    assert sorted(done) == [10, 20, 30]


def test_nested_use_runs_inline(pool):
    threads.request(2)
    inner_parts = []

    def inner(a, b):
        inner_parts.append((threading.current_thread().name, a, b))

    def outer(a, b):
        threads.parallel_for(100, inner, min_per_part=1)

    threads.parallel_for(2, outer, min_per_part=1)
    # each outer part covers [0, 100) once; on a pool thread in one piece (no deadlock on
    # itself), on the caller possibly in two
    assert sorted(i for _, a, b in inner_parts for i in range(a, b)) == sorted(list(range(100)) * 2)
    assert all((a, b) == (0, 100) for name, a, b in inner_parts
               if name.startswith("pyonnx-intra-op"))


def test_budget_one_means_no_pool(pool):
    threads.request(1)
    assert threads._pool is None
    calls = []
    threads.parallel_for(10, lambda a, b: calls.append((a, b)))
    assert calls == [(0, 10)]


def test_concurrent_callers_share_the_pool(pool):
    threads.request(2)
    results = {}

    def caller(k):
        out = np.zeros(10_000)

        def fn(a, b):
            out[a:b] = k

        for _ in range(50):
            threads.parallel_for(out.size, fn, min_per_part=100)
        results[k] = out

    ts = [threading.Thread(target=caller, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert sorted(results) == [0, 1, 2, 3]
    for k, out in results.items():
        assert (out == k).all()


def test_blas_pool_is_set_once_per_change():
    tpc = pytest.importorskip("threadpoolctl")
    info = [i for i in tpc.threadpool_info() if i["user_api"] == "blas"]
    assert info, "NumPy's BLAS is not visible to threadpoolctl"
    before = info[0]["num_threads"]
    saved = threads._blas_set
    try:
        threads._blas_set = None
        threads._set_blas(1)
        assert [i["num_threads"] for i in tpc.threadpool_info()
                if i["user_api"] == "blas"] == [1] * len(info)
        threads._set_blas(1)  # unchanged: no threadpoolctl call
    finally:
        tpc.threadpool_limits(limits=before, user_api="blas")
        threads._blas_set = saved


def test_shared_loop_pieces_are_each_run_once(pool):
    """A compiled loop shared with the pool (the packed product's, which claims pieces of
    panels or of column chunks through its counter): every piece claimed once and finished, the result equal to one
    thread's; with a budget of one the caller runs every piece itself."""
    pytest.importorskip("numba", reason="numba is not installed: no compiled loops to share")
    from pyonnx.backends.cpu import jit, pointwise

    if not jit.available():
        pytest.skip("compiled loops are turned off (PYONNX_JIT=0)")
    rng = np.random.default_rng(3)
    m, k, n = 60, 16, 300
    w = rng.standard_normal((m, k)).astype(np.float32)
    x = rng.standard_normal((k, n)).astype(np.float32)
    wp = pointwise.pack_rows(w)
    bp = np.zeros(-(-m // pointwise.ROWS) * pointwise.ROWS, np.float32)
    ep = pointwise.epilogue_values(pointwise.IDENTITY, np.dtype(np.float32))
    panels = len(bp) // pointwise.ROWS

    def run(parts, by_chunks=0):
        y = np.full(m * n, np.nan, np.float32)
        counter = np.zeros(2, np.int64)
        args = (wp, bp, m, k, x.reshape(-1), n, y, 0, n, np.zeros(1, np.float32), 0, ep, 0, 0,
                panels, 64, by_chunks, counter, parts)
        assert threads.shared_loop("gemm_loops.pointwise_claimed", args, parts,
                                   elements=jit.MIN_ELEMENTS)
        assert counter[1] == parts and counter[0] >= parts
        return y.reshape(m, n)

    threads.request(1)
    alone = run(5)
    np.testing.assert_allclose(alone, w @ x, rtol=1e-5, atol=1e-4)
    threads.request(4)
    for _ in range(20):
        np.testing.assert_array_equal(run(panels), alone)
        # or by runs of X's chunks of 64 columns
        np.testing.assert_array_equal(run(3, by_chunks=1), alone)


def test_a_shared_loop_announces_itself_and_its_pool_threads_watch_for_the_next(pool):
    """The hand-off without the GIL (jit/sync_loops.py): a shared loop's caller bumps the
    pool's count of posted work from inside the loop, and a pool thread, once no piece is left,
    stays in the loop until that count moves from what it had seen, or for ``sync[1]`` reads."""
    pytest.importorskip("numba", reason="numba is not installed: no compiled loops to share")
    from pyonnx.backends.cpu import jit, pointwise

    if not jit.available():
        pytest.skip("compiled loops are turned off (PYONNX_JIT=0)")
    m, k, n = pointwise.ROWS, 4, 64  # one panel
    wp = pointwise.pack_rows(np.ones((m, k), np.float32))
    bp = np.zeros(pointwise.ROWS, np.float32)
    ep = pointwise.epilogue_values(pointwise.IDENTITY, np.dtype(np.float32))
    x = np.ones(k * n, np.float32)

    def loop(sync, role, seen, parts=1):
        y = np.zeros(m * n, np.float32)
        counter = np.zeros(2, np.int64)
        args = (wp, bp, m, k, x, n, y, 0, n, np.zeros(1, np.float32), 0, ep, 0, 0, 1, 64, 0,
                counter, parts, sync, role, seen)
        assert jit.call("gemm_loops.pointwise_claimed", *args, elements=jit.MIN_ELEMENTS)
        return y, counter

    sync = np.array([5, 1000], np.int64)
    y, counter = loop(sync, threads.CALLER, 0)
    assert sync[0] == 6 and counter.tolist() == [2, 1] and (y == k).all()  # announced, computed
    loop(sync, threads.ALONE, 0)
    loop(sync, threads.WORKER, 6)  # nothing moved: gives up after sync[1] reads
    assert sync[0] == 6
    # a pool thread that has seen 6 leaves as soon as the next loop announces itself
    sync[1] = 1 << 62  # about forever
    done = threading.Event()
    watcher = threading.Thread(target=lambda: (loop(sync, threads.WORKER, 6, parts=0),
                                               done.set()))
    watcher.start()
    assert not done.wait(0.05)
    loop(sync, threads.CALLER, 0)
    assert done.wait(10)
    watcher.join()


def test_the_pool_does_not_import_numba():
    """A session on two threads whose work is all small runs no compiled loop: its pool's idle
    threads then sleep instead of spinning in one, and numba is never imported (a fresh
    process, so that no other test has imported it)."""
    import subprocess
    import sys

    code = """
import sys, time
import numpy as np
from onnx import TensorProto, helper
import pyonnx.runtime as rt
from pyonnx.backends.cpu import threads
node = helper.make_node("Relu", ["x"], ["y"])
graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
so = rt.SessionOptions()
so.intra_op_num_threads = 2
s = rt.InferenceSession(model.SerializeToString(), so)
threads.request(2)  # a pool even on a one-core machine
threads.parallel_for(4, lambda a, b: None, min_per_part=1)
s.run(None, {"x": np.ones(4, np.float32)})
time.sleep(0.05)
print("numba" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_waits_are_calibrated_on_reads_that_all_happen(monkeypatch):
    """The calibration of the compiled waits times a wait whose counter holds the value it
    watches, so that it makes every read it is given (until session 13 it watched for a value
    the counter did not hold, returned at its first read, and every wait then ran 5-10x longer
    than its setting)."""
    from pyonnx.backends.cpu import jit

    if not jit.available():
        pytest.skip("compiled loops are unavailable here: the pool's threads sleep, no wait "
                    "is calibrated")
    calls = []

    def wait(counter, seen, spins):
        calls.append((int(counter[0]), seen, spins))

    monkeypatch.setattr(threads, "_spin_ns", None)
    monkeypatch.setattr(threads, "_waits", None)
    monkeypatch.setattr(jit, "loop", lambda name, elements: wait)
    assert threads._spin_waits() == (wait, wait)
    assert calls and all(value == seen for value, seen, _ in calls)
    assert all(spins >= 1 << 20 for _, _, spins in calls)
