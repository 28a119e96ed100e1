"""The pyonnx command line: info, run, demo, and one-line errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from pyonnx.cli.main import main

DEMO_MODEL = os.path.join(os.path.dirname(__file__), "..", "..", "src", "pyonnx", "cli", "data",
                          "digits.onnx")


def test_demo_classifies_the_bundled_digits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "digits classified correctly by pyonnx" in out
    assert "8 of 8" in out


def test_info_describes_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", DEMO_MODEL]) == 0
    out = capsys.readouterr().out
    assert "IR version: 10" in out and "opsets: ai.onnx 21" in out
    assert "pixels: tensor(float) [N,8,8]" in out
    assert "Gemm" in out and "parameters: 2,411" in out


def test_run_with_inputs_and_output_dir(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    x = np.zeros((2, 8, 8), np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", DEMO_MODEL, "--input", f"pixels={tmp_path / 'x.npy'}",
                 "--output-dir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "output probabilities: float32 [2,10]" in out
    probs = np.load(tmp_path / "out" / "probabilities.npy")
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_run_random_with_symbolic_dim(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", DEMO_MODEL, "--random", "--dim", "N=3"]) == 0
    assert "float32 [3,10]" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["run", DEMO_MODEL], ["no data for input(s) pixels", "--random"]),
    (["run", DEMO_MODEL, "--input", "nosuch=x.npy"], ["nosuch", "no input of that name"]),
    (["run", DEMO_MODEL, "--input", "pixels"], ["NAME=VALUE"]),
    (["info", "/nonexistent/model.onnx"], ["cannot read model file"]),
])
def test_errors_are_one_line(argv, words, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    for w in words:
        assert w in err


def test_console_script_help_for_every_command() -> None:
    """``--help`` works for the command and each sub-command, in a fresh process."""
    out = subprocess.run([sys.executable, "-m", "pyonnx.cli.main", "--help"],
                         capture_output=True, text=True, check=True).stdout
    commands = ["check", "demo", "info", "infer-shapes", "parse", "print", "run", "bench"]
    for c in commands:
        assert c in out
    for c in commands:
        r = subprocess.run([sys.executable, "-m", "pyonnx.cli.main", c, "--help"],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "usage: pyonnx" in r.stdout, (c, r.stderr)


def test_bench_side_by_side(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """``pyonnx bench`` times pyonnx, its NumPy-only form and onnxruntime in one run, with a
    peak-memory worker per engine, and writes the figures as JSON."""
    pytest.importorskip("onnxruntime", reason="onnxruntime (a test dependency) is the engine "
                                              "compared with")
    out_json = tmp_path / "bench.json"
    assert main(["bench", DEMO_MODEL, "--compare", "onnxruntime,pyonnx-numpy", "--runs", "3",
                 "--batch", "4", "--profile", "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "digits.onnx  batch 4" in text and "compiled loops:" in text
    import json

    res = json.loads(out_json.read_text())
    assert set(res["engines"]) == {"pyonnx", "pyonnx-numpy", "onnxruntime"}
    for eng, v in res["engines"].items():
        assert v["median_ms"] > 0 and v["p90_ms"] >= v["median_ms"], eng
        assert v["peak_rss_mb"] > 10, eng  # each engine measured in its own process
    assert set(res["ratio"]) == {"pyonnx-numpy", "onnxruntime"}
    assert res["profile"]["nodes_per_run"] > 0 and res["profile"]["ops"]
    assert 0 < res["profile"]["dispatch_us_per_node"] < float("inf")


def test_bench_in_worker_processes_and_in_process() -> None:
    """By default each engine is timed in a process of its own, in blocks of runs (rounds x
    ceil(runs / rounds) timed runs each); ``isolate=False`` alternates them in this process."""
    pytest.importorskip("onnxruntime", reason="onnxruntime (a test dependency) is the engine "
                                              "compared with")
    from pyonnx.cli.bench import bench_model

    res = bench_model(DEMO_MODEL, ["pyonnx", "onnxruntime"], runs=5, rounds=2, warmup=1)
    assert res["isolated"] is True and res["dynamic_batch"] is True
    for eng in ("pyonnx", "onnxruntime"):
        v = res["engines"][eng]
        assert v["runs"] == 6 and v["create_ms"] > 0 and v["first_run_ms"] > 0, eng
        assert v["peak_rss_mb"] > 10, eng
    res = bench_model(DEMO_MODEL, ["pyonnx", "onnxruntime"], runs=3, isolate=False,
                      memory=False)
    assert res["isolated"] is False and "memory_ratio" not in res
    assert all(v["runs"] == 3 and "peak_rss_mb" not in v for v in res["engines"].values())


def test_bench_worker_reports_a_model_it_cannot_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An engine that cannot load the model is reported with the worker's error; the others
    are still measured."""
    from pyonnx.cli.bench import EngineWorker, bench_model

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    worker = EngineWorker("pyonnx", str(bad), 0, 1, 128, 99)
    assert "not a valid ONNX model" in worker.ready.get("error", "")
    assert worker.close() is None
    res = bench_model(str(bad), ["pyonnx"], runs=2)
    assert "error" in res["engines"]["pyonnx"] and res["ratio"] == {}


def test_bench_rejects_an_unknown_engine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", DEMO_MODEL, "--compare", "tensorflow"]) == 2
    assert "unknown engine 'tensorflow'" in capsys.readouterr().err


def test_infer_shapes_initializer_inputs_option(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--initializer-inputs value uses an overridable initializer's stored value (onnx's
    behaviour); the default leaves it a feed from IR 4 on, so the Reshape stays symbolic."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    import pyonnx

    shape = numpy_helper.from_array(np.array([3, 2], np.int64), "shape")
    g = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6]),
         helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              str(path))
    dims = {}
    for mode in ("auto", "value"):
        out = tmp_path / f"{mode}.onnx"
        assert main(["infer-shapes", str(path), "-o", str(out), "--initializer-inputs", mode,
                     "--check-type"]) == 0
        dims[mode] = list(pyonnx.load(str(out)).graph.outputs[0].type.shape)
    assert dims["value"] == [3, 2]
    assert dims["auto"] != [3, 2] and len(dims["auto"]) == 2
