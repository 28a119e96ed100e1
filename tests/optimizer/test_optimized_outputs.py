"""Outputs with ORT_ENABLE_ALL equal those with ORT_DISABLE_ALL (rtol 1e-4) on every backend
node case and on the shared real models.

Cases the optimizer leaves unchanged cannot differ and are not run twice; cases pyonnx cannot
run at all (unsupported operators, expected failures) are skipped.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("onnx")

import pyonnx  # noqa: E402
from pyonnx.optimizer import PassManager, copy_model, passes_for_level  # noqa: E402
from tests.conformance.backend import node_cases  # noqa: E402

SHARED = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                       "models"))


def _session(model: object, level: int) -> pyonnx.InferenceSession:
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = level
    so.intra_op_num_threads = 1
    return pyonnx.InferenceSession(model, so)


def _same(a: object, b: object, where: str) -> None:
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, where
        if a.dtype.kind in "fc" or a.dtype.kind == "V":
            # float16: one float16 step (2**-10 relative at most). The optimized session's CPU
            # provider computes float16 nodes in float32 (backends/cpu/float16.py), the
            # unoptimized one rounds after every node; a long chain (Attention's function
            # body) ends up to one step apart
            rtol = 1e-3 if a.dtype == np.float16 else 1e-4
            np.testing.assert_allclose(b.astype(np.float64), a.astype(np.float64), rtol=rtol,
                                       atol=1e-6, equal_nan=True, err_msg=where)
        else:
            np.testing.assert_array_equal(b, a, err_msg=where)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for x, y in zip(a, b):
            _same(x, y, where)
    else:
        assert (a is None) == (b is None), where


def test_node_cases_optimized_equal_unoptimized() -> None:
    compared = 0
    for case in node_cases():
        try:
            model = pyonnx.load(case.model)
            if not PassManager(passes_for_level(99))(copy_model(model)).modified:
                continue  # nothing rewritten: the two plans are the same
            plain = _session(model, 0)
        except pyonnx.PyOnnxError:
            continue  # pyonnx cannot run this case at all
        names = [i.name for i in plain.get_inputs()]
        for inputs, _ in case.data_sets:
            feeds = dict(zip(names, inputs))
            try:
                ref = plain.run(None, feeds)
            except pyonnx.PyOnnxError:
                continue
            got = _session(model, 99).run(None, feeds)
            for i, (a, b) in enumerate(zip(ref, got)):
                _same(a, b, f"{case.name} output {i}")
        compared += 1
    assert compared > 0


@pytest.mark.skipif(not os.path.isdir(SHARED), reason=f"{SHARED} is absent: the shared real "
                    "models live beside the project checkout in CI and development")
def test_shared_models_optimized_equal_unoptimized() -> None:
    from tests.models.test_real_models import shared_feeds

    for name in sorted(os.listdir(SHARED)):
        if not name.endswith(".onnx"):
            continue
        path = os.path.join(SHARED, name)
        feeds = shared_feeds(name[:-5], seq=32)
        ref = _session(path, 0).run(None, feeds)
        got = _session(path, 99).run(None, feeds)
        for i, (a, b) in enumerate(zip(ref, got)):
            _same(a, b, f"{name} output {i}")
