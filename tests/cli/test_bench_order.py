"""``pyonnx bench``'s run order: each engine runs right after each other engine equally often
(an engine that follows onnxruntime is slowed while onnxruntime's threads still spin)."""

from __future__ import annotations

from collections import Counter

import pytest

from pyonnx.cli.bench import balanced_order


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("runs", [1, 5, 12])
def test_every_engine_follows_every_other_equally_often(n, runs):
    engines = ["pyonnx", "pyonnx-numpy", "onnxruntime", "e4", "e5"][:n]
    order = balanced_order(engines, runs)
    counts = Counter(order)
    assert set(counts) == set(engines)
    assert len(set(counts.values())) == 1 and counts[engines[0]] >= runs
    if n == 1:
        return
    # as a cycle (the last run leads into the first), every ordered pair of distinct engines
    # is adjacent the same number of times, and no engine runs twice in a row
    pairs = Counter(zip(order, order[1:] + order[:1]))
    assert all(a != b for a, b in pairs)
    assert len(pairs) == n * (n - 1) and len(set(pairs.values())) == 1

