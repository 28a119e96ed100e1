"""``pyonnx quantize``: every mode writes a model that runs, and the report prints."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from pyonnx.cli.main import main
from tests.quantization._models import cnn_model, cnn_samples, mlp_model


@pytest.fixture()
def cnn_path(tmp_path):
    p = tmp_path / "cnn.onnx"
    onnx.save(cnn_model(), str(p))
    calib = tmp_path / "calib"
    calib.mkdir()
    for i, f in enumerate(cnn_samples(6)):
        np.savez(calib / f"s{i:02d}.npz", **f)
    return str(p), str(calib)


@pytest.mark.parametrize("mode,extra", [("dynamic", ["--per-channel"]),
                                        ("static", ["--format", "QOperator"]),
                                        ("static", ["--calibrate-method", "Percentile"]),
                                        ("fp16", ["--keep-io-types"]), ("fp16", []),
                                        ("bf16", ["--keep-io-types"])])
def test_modes(tmp_path, cnn_path, capsys, mode, extra):
    src, calib = cnn_path
    out = str(tmp_path / "q.onnx")
    assert main(["quantize", src, out, "--mode", mode, "--calibration", calib] + extra) == 0
    text = capsys.readouterr().out
    assert "MB ->" in text and "cosine" in text and "written to" in text
    cos = float(text.split("cosine ")[1].split(",")[0])
    assert cos > 0.98
    onnx.checker.check_model(onnx.load(out), full_check=True)


def test_weight_int4_report_and_target(tmp_path, capsys):
    src = str(tmp_path / "mlp.onnx")
    onnx.save(mlp_model(), src)
    out = str(tmp_path / "q.onnx")
    assert main(["quantize", src, out, "--mode", "weight-int4", "--block-size", "16",
                 "--report", "--matmulnbits"]) == 0
    text = capsys.readouterr().out
    assert "per-node error" in text and "gemm" in text
    assert main(["quantize", src, out, "--mode", "weight-int4", "--block-size", "16",
                 "--gptq", "--asymmetric"]) == 0
    assert "cosine" in capsys.readouterr().out
    assert main(["quantize", src, out, "--mode", "dynamic", "--target-cosine", "0.99999999"]) == 0
    text = capsys.readouterr().out
    assert "kept in float" in text


def test_bad_arguments(tmp_path, cnn_path, capsys):
    src, calib = cnn_path
    assert main(["quantize", src, str(tmp_path / "q.onnx"), "--mode", "static"]) == 1
    assert "needs --calibration" in capsys.readouterr().err
    assert main(["quantize", src, str(tmp_path / "nope" / "q.onnx"), "--mode", "dynamic"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["quantize", src, str(tmp_path / "q.onnx"), "--mode", "static",
                 "--calibration", str(tmp_path)]) == 1
    assert "no .npz" in capsys.readouterr().err
