"""The plan's one run loop and its hook (terminate, profiling, max_run_bytes accounting)."""

from __future__ import annotations

import numpy as np
import pytest

import pyonnx
from pyonnx.errors import ExecutionError
from pyonnx.runtime.plan import _RunState

_MODEL = """
<ir_version: 10, opset_import: ["" : 21]>
g (float[6] x, bool c) => (float[3] y, float[6] z) {
    k = Constant <value: tensor = int64[1] {3}> ()
    v, unused = TopK (x, k)
    y = Neg (v)
    z = If (c) <
        then_branch = t () => (float[6] a) { a = Relu (x) },
        else_branch = e () => (float[6] b) { b = Abs (x) }>
}"""


def _session() -> pyonnx.InferenceSession:
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL
    return pyonnx.InferenceSession(pyonnx.parse_model(_MODEL), so)


def _inputs() -> list[np.ndarray]:
    return [np.array([3, -1, 4, -1, 5, -9], np.float32), np.array(True)]


def test_profiling_hook_records_every_executed_node_with_its_inputs() -> None:
    sess = _session()
    profile: list[tuple] = []
    y, z = sess._plan.execute(_inputs(), _RunState(profile=profile))
    np.testing.assert_array_equal(y, [-5, -4, -3])
    np.testing.assert_array_equal(z, [3, 0, 4, 0, 5, 0])
    ops = [(e[0].op_type, e[3]) for e in profile]
    # the Constant is computed once for every run (semi-constant cache), not per run; the If's
    # body runs inside the If node, so its Relu is recorded first
    assert [o for o, _ in ops] == ["TopK", "Neg", "Relu", "If"]
    assert ops[0][1] == [(np.dtype(np.float32), (6,)), (np.dtype(np.int64), (1,))]
    assert all(e[2] >= 0 for e in profile)


def test_byte_accounting_returns_to_zero() -> None:
    """Every byte counted is released: a run's frames hand back what they still hold, and an
    output nobody reads (TopK's indices here) is released by the node that made it."""
    sess = _session()
    state = _RunState(max_run_bytes=1 << 30)
    sess._plan.execute(_inputs(), state)
    assert state.live_bytes == 0


def test_byte_limit_names_the_node() -> None:
    sess = _session()
    with pytest.raises(pyonnx.ResourceLimitExceeded, match="TopK.*above the limit of 20 bytes"):
        sess._plan.execute(_inputs(), _RunState(max_run_bytes=20))


def test_terminate_stops_before_the_first_node() -> None:
    sess = _session()
    ro = pyonnx.RunOptions()
    ro.terminate = True
    with pytest.raises(ExecutionError, match=r"^run terminated by RunOptions.terminate before"):
        sess.run(None, {"x": _inputs()[0], "c": _inputs()[1]}, ro)


def test_plain_run_matches_hooked_run() -> None:
    sess = _session()
    plain = sess._plan.execute(_inputs(), _RunState())
    hooked = sess._plan.execute(_inputs(), _RunState(profile=[], max_run_bytes=1 << 30))
    for a, b in zip(plain, hooked):
        np.testing.assert_array_equal(a, b)


def test_stand_in_kernels_replay_the_first_run_and_count_the_nodes() -> None:
    """Within ``Plan.stand_in_kernels`` (what ``pyonnx bench`` times as dispatch) the first
    run computes and records; later runs return the recorded outputs whatever is fed (no
    kernel work) and count one node per step; after the block the session computes again."""
    sess = _session()
    x, c = _inputs()
    with pytest.raises(ValueError, match="run the plan once first"):
        with sess._plan.stand_in_kernels():
            pass
    sess.run(None, {"x": x, "c": c})  # fills the semi-constant cache (the Constant)
    with sess._plan.stand_in_kernels() as executed:
        y0, z0 = sess.run(None, {"x": x, "c": c})
        before = executed()
        y1, z1 = sess.run(None, {"x": -x, "c": np.array(False)})
        # TopK, Neg, If (the Constant is cached; the If's body does not run)
        assert executed() - before == 3
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(z1, z0)
    y2, z2 = sess.run(None, {"x": -x, "c": np.array(False)})
    np.testing.assert_array_equal(y2, [-9, -1, -1])
    np.testing.assert_array_equal(z2, [3, 1, 4, 1, 5, 9])


def test_stand_in_kernels_refuse_a_parallel_plan() -> None:
    so = pyonnx.SessionOptions()
    so.execution_mode = pyonnx.ExecutionMode.ORT_PARALLEL
    sess = pyonnx.InferenceSession(pyonnx.parse_model(_MODEL), so)
    with pytest.raises(ValueError, match="ORT_PARALLEL"):
        with sess._plan.stand_in_kernels():
            pass
