"""Saving a model with big external data streams it: peak memory stays far below the data size.

A 200 MB Gather table is saved as external data, then a fresh interpreter loads the model
(the table memory-mapped) and saves it again, plainly and after the basic-level optimizer. The
worker's peak resident set (VmHWM) minus its RSS before loading must stay under a quarter of
the table: a writer that copies the table even once exceeds that fourfold. This measures memory,
not time. Linux only (it reads /proc/self/status).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import pyonnx
from pyonnx.ir import DataType, Graph, Model, Node, Tensor, TensorType, Value

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                                reason="peak RSS is read from /proc/self/status (Linux only)")

_TABLE_BYTES = 200 * 2**20
_WIDTH = 1024

_WORKER = r"""
import json, sys
import pyonnx

def kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])

src, dst, optimize = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
base = kb("VmRSS")
model = pyonnx.load(src)
if optimize:
    from pyonnx.optimizer import optimize as opt
    model = opt(model, 1)
pyonnx.save(model, dst, external_data=True)
print(json.dumps({"growth_bytes": (kb("VmHWM") - base) * 1024}))
"""


def _gather_model(table: np.ndarray) -> Model:
    ids = Value("ids", TensorType(DataType.INT64, ("n",)))
    tab = Value("table", TensorType(DataType.FLOAT, table.shape),
                const_value=Tensor.from_numpy(table, "table"))
    out = Value("out", TensorType(DataType.FLOAT, ("n", table.shape[1])))
    g = Graph("big", inputs=[ids], outputs=[out], initializers=[tab],
              nodes=[Node("Gather", [tab, ids], [out], name="gather")])
    return Model(g, ir_version=8, opset_imports={"": 17})


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, np.ndarray]:
    folder = tmp_path_factory.mktemp("big")
    rows = _TABLE_BYTES // (4 * _WIDTH)
    table = (np.arange(rows, dtype=np.float32)[:, None]
             + np.arange(_WIDTH, dtype=np.float32)[None, :] / _WIDTH)
    path = str(folder / "model.onnx")
    pyonnx.save(_gather_model(table), path, external_data=True)
    return path, table[::997].copy()


@pytest.mark.parametrize("optimize", [False, True], ids=["load+save", "load+optimize+save"])
def test_save_of_mapped_weights_does_not_copy_them(big_model: tuple[str, np.ndarray],
                                                   tmp_path: object, optimize: bool) -> None:
    src, sample = big_model
    dst = os.path.join(str(tmp_path), "copy.onnx")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(pyonnx.__file__))
    out = subprocess.run([sys.executable, "-c", _WORKER, src, dst, "1" if optimize else "0"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    growth = json.loads(out.stdout.strip().splitlines()[-1])["growth_bytes"]
    assert growth < _TABLE_BYTES // 4, (
        f"saving a {_TABLE_BYTES >> 20} MB mapped table grew the peak RSS by {growth >> 20} MB")
    # and what was written is the table
    back = pyonnx.load(dst).graph.initializers["table"].const_value
    assert back.external is not None
    np.testing.assert_array_equal(back.numpy()[::997], sample)


@pytest.mark.parametrize("kind", ["transposed", "big-endian", "int4", "uint2"])
def test_streamed_layouts_round_trip(tmp_path: object, kind: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrays that are not plain little-endian C-contiguous memory, and packed element types,
    are written chunk by chunk (a tiny chunk size forces many chunks) and read back equal."""
    from pyonnx.io import external_data

    monkeypatch.setattr(external_data, "CHUNK_BYTES", 64)
    rng = np.random.default_rng(0)
    if kind == "transposed":
        arr = rng.standard_normal((37, 29)).astype(np.float32).T
        t = Tensor.from_numpy(arr, "w")
    elif kind == "big-endian":
        arr = rng.standard_normal((50, 7)).astype(">f8")
        t = Tensor("w", DataType.DOUBLE, arr.shape, arr)
    else:
        dt = DataType.INT4 if kind == "int4" else DataType.UINT2
        lo, hi = (-8, 8) if kind == "int4" else (0, 4)
        arr = rng.integers(lo, hi, size=(101, 3)).astype(dt.numpy)
        t = Tensor("w", dt, arr.shape, arr)
    x = Value("x", TensorType(t.data_type, arr.shape))
    w = Value("w", TensorType(t.data_type, arr.shape), const_value=t)
    y = Value("y", TensorType(t.data_type, arr.shape))
    g = Graph("g", inputs=[x], outputs=[y], initializers=[w],
              nodes=[Node("Identity", [w], [y])])
    path = os.path.join(str(tmp_path), "m.onnx")
    pyonnx.save(Model(g, opset_imports={"": 21}), path, external_data=True, size_threshold=1)
    back = pyonnx.load(path).graph.initializers["w"].const_value
    assert back.external is not None
    np.testing.assert_array_equal(back.numpy().astype(np.float64), arr.astype(np.float64))
