"""Verification of a rewritten model by running it: the original and the result are run by the
pyonnx engine (unoptimized) on the same inputs, and every output must agree within
``rtol=1e-4``, ``atol=1e-5 * max|reference|`` (integers, booleans and strings exactly). On a
mismatch, :func:`bisect` replays the passes' changes one prefix at a time to find the change that
made the difference, and compares every intermediate value before and after it to name the first
value that drifted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pyonnx.errors import InvalidArgument, PyOnnxError, VerificationError
from pyonnx.ir import Model, TensorType
from pyonnx.optimizer._copy import copy_model
from pyonnx.optimizer._core import Pass

__all__ = ["random_feeds", "run_model", "compare_outputs", "verify_or_raise", "RTOL",
           "ATOL_FRACTION"]

RTOL = 1e-4
#: the absolute tolerance, as a fraction of the reference's largest magnitude
ATOL_FRACTION = 1e-5

Feeds = dict[str, np.ndarray]


def _dim_value(name: str, d: object, batch: int, other: int) -> int:
    if isinstance(d, int) and d >= 0:
        return d
    return batch if "batch" in str(d or "").lower() else other


def random_feeds(model: Model, count: int, seed: int = 0, *, batch: int = 2,
                 other: int = 128) -> list[Feeds]:
    """``count`` sets of random inputs of the declared types and shapes (a symbolic dim named
    like a batch takes ``batch``, others ``other``, at least 512 in a model with a sample-rate
    input ``sr``). Floats are standard normal; integers lie in
    [0, 16) (valid token ids for any vocabulary), except masks (ones) and a scalar sample rate
    ``sr`` (16000); booleans are random."""
    g = model.graph
    inits = set(g.initializers)
    rng = np.random.default_rng(seed)
    if any(v.name == "sr" for v in g.inputs):
        other = max(other, 512)  # an audio model with a sample-rate input: 512-sample windows
    sets: list[Feeds] = []
    for _ in range(count):
        feeds: Feeds = {}
        for v in g.inputs:
            if v.name in inits:
                continue
            t = v.type
            if not isinstance(t, TensorType) or t.shape is None:
                raise InvalidArgument(f"cannot make random data for input {v.name!r} of type "
                                      f"{t}: give the inputs to verify with")
            shape = tuple(_dim_value(v.name, d, batch, other) for d in t.shape)
            dt = t.elem_type.numpy
            lname = v.name.lower()
            if dt.kind == "f":
                arr = rng.standard_normal(shape).astype(dt)
            elif dt.kind in "iu":
                if "mask" in lname:
                    arr = np.ones(shape, dt)
                elif lname == "sr" and not shape:
                    arr = np.array(16000, dt)
                else:
                    arr = rng.integers(0, 16, shape).astype(dt)
            elif dt.kind == "b":
                arr = rng.integers(0, 2, shape).astype(bool)
            else:
                raise InvalidArgument(f"cannot make random data for input {v.name!r} of element "
                                      f"type {t.elem_type.name}: give the inputs to verify with")
            feeds[v.name] = arr
        sets.append(feeds)
    return sets


def run_model(model: Model, feeds: Feeds, extra: Sequence[str] = ()) -> dict[str, Any]:
    """The outputs of ``model`` (unoptimized pyonnx engine) by name; ``extra`` names intermediate
    values of the main graph to return as well."""
    from pyonnx.runtime import InferenceSession, SessionOptions

    m = model
    if extra:
        m = copy_model(model)
        by_name = {v.name: v for n in m.graph.nodes for v in n.outputs if v.name}
        have = {v.name for v in m.graph.outputs}
        for name in extra:
            if name in by_name and name not in have:
                m.graph.add_output(by_name[name])
    opts = SessionOptions()
    opts.graph_optimization_level = 0
    sess = InferenceSession(m, opts)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def _close(ref: Any, got: Any) -> tuple[bool, float]:
    """Whether ``got`` matches ``ref`` and the largest absolute difference (0 when exact)."""
    if isinstance(ref, list) or isinstance(got, list):
        if not isinstance(ref, list) or not isinstance(got, list) or len(ref) != len(got):
            return False, float("inf")
        worst = 0.0
        for a, b in zip(ref, got):
            ok, d = _close(a, b)
            if not ok:
                return False, d
            worst = max(worst, d)
        return True, worst
    a, b = np.asarray(ref), np.asarray(got)
    if a.shape != b.shape:
        return False, float("inf")
    if a.dtype.kind != "f" or b.dtype.kind != "f":
        return bool(a.dtype == b.dtype and np.array_equal(a, b)), 0.0
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if not np.array_equal(np.isnan(a64), np.isnan(b64)):
        return False, float("inf")
    fin = np.isfinite(a64)
    if not np.array_equal(a64[~fin & ~np.isnan(a64)], b64[~fin & ~np.isnan(a64)]):
        return False, float("inf")
    if not fin.any():
        return True, 0.0
    diff = np.abs(a64[fin] - b64[fin])
    atol = ATOL_FRACTION * float(np.max(np.abs(a64[fin])))
    ok = bool(np.all(diff <= atol + RTOL * np.abs(a64[fin])))
    return ok, float(diff.max()) if diff.size else 0.0


def compare_outputs(ref: dict[str, Any], got: dict[str, Any]) -> tuple[str, float] | None:
    """The first output (in ``ref``'s order) that differs, with its largest difference."""
    for name, r in ref.items():
        if name not in got:
            return name, float("inf")
        ok, d = _close(r, got[name])
        if not ok:
            return name, d
    return None


def verify_or_raise(original: Model, result: Model, feeds_list: list[Feeds],
                    replay: Callable[[int], Model] | None, applied: Sequence[Pass]) -> None:
    """Run both models on every feed set; on a mismatch, bisect over ``applied`` (``replay(k)``
    gives the model after the first ``k`` changes) and raise :class:`VerificationError`."""
    for i, feeds in enumerate(feeds_list):
        try:
            ref = run_model(original, feeds)
        except PyOnnxError as e:
            raise InvalidArgument(f"verification: the original model cannot run on input set "
                                  f"{i} ({e}); give inputs it accepts") from e
        try:
            got = run_model(result, feeds)
        except PyOnnxError as e:
            bad: tuple[str, float] | None = ("<run failed>", float("inf"))
            err: Exception | None = e
        else:
            bad, err = compare_outputs(ref, got), None
        if bad is None:
            continue
        pass_name = value = None
        diff = bad[1]
        if replay is not None and applied:
            pass_name, value, diff = bisect(replay, applied, feeds, ref)
        where = f"; first drifted value {value!r}" if value else ""
        who = f"pass {pass_name!r}" if pass_name else "the optimization"
        detail = f" (the run failed: {err})" if err is not None else ""
        raise VerificationError(
            f"optimized model differs from the original on input set {i}: output {bad[0]!r} "
            f"(max |diff| {bad[1]:.3g}){detail}; made by {who}{where}. Leave that pass out "
            f"(passes=...) or report it", pass_name=pass_name, value_name=value,
            max_abs_diff=diff)


def _ok(model: Model, feeds: Feeds, ref: dict[str, Any]) -> bool:
    try:
        return compare_outputs(ref, run_model(model, feeds)) is None
    except PyOnnxError:
        return False


def bisect(replay: Callable[[int], Model], applied: Sequence[Pass], feeds: Feeds,
           ref: dict[str, Any]) -> tuple[str | None, str | None, float | None]:
    """(the pass of the first change after which the outputs differ, the first intermediate
    value that drifted in that change, its largest difference)."""
    lo, hi = 0, len(applied)  # after lo changes: agrees; after hi: differs
    if _ok(replay(hi), feeds, ref):
        return None, None, None  # not reproducible by replay
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _ok(replay(mid), feeds, ref):
            lo = mid
        else:
            hi = mid
    culprit = applied[hi - 1]
    name = culprit.name or type(culprit).__name__
    before, after = replay(hi - 1), replay(hi)
    names = [v.name for n in after.graph.nodes for v in n.outputs if v.name]
    before_names = {v.name for n in before.graph.nodes for v in n.outputs if v.name}
    shared = [n for n in names if n in before_names]
    try:
        a = run_model(before, feeds, shared)
        b = run_model(after, feeds, shared)
    except PyOnnxError:
        return name, None, None
    for n in shared + [v.name for v in after.graph.outputs]:
        if n in a and n in b:
            ok, d = _close(a[n], b[n])
            if not ok:
                return name, n, d
    return name, None, None

