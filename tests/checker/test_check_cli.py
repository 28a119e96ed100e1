"""``pyonnx check MODEL [--full]``: exit status and one violation per line."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as TP  # noqa: E402
from onnx import helper as h  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from pyonnx.cli.main import main  # noqa: E402


def _write(tmp_path, nodes, name="g", inits=(), ir=8):  # type: ignore[no-untyped-def]
    g = h.make_graph(nodes, name, [h.make_tensor_value_info("x", TP.FLOAT, [2])],
                     [h.make_tensor_value_info("y", TP.FLOAT, [2])], list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 18)], ir_version=ir)
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    return str(p)


def test_valid_model(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    p = _write(tmp_path, [h.make_node("Relu", ["x"], ["y"])])
    assert main(["check", p]) == 0
    assert capsys.readouterr().out == f"{p}: valid\n"


def test_invalid_model_prints_each_violation(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    p = _write(tmp_path, [h.make_node("Relu", ["nope"], ["z"], name="a"),
                          h.make_node("Relu", ["x"], ["y"], foo=1)], name="")
    assert main(["check", p]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3
    assert out[0].startswith("[name] main graph:")
    assert out[1].startswith("[undefined-input] main graph > node 'a' (Relu): input 0 'nope'")
    assert out[2].startswith("[unknown-attribute] main graph > node #1 (Relu): attribute 'foo'")


def test_full_flag_checks_types(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys
    import types

    monkeypatch.setitem(sys.modules, "pyonnx.shape_inference", types.ModuleType("disabled"))
    w = numpy_helper.from_array(np.ones(2, np.int64), "w")
    p = _write(tmp_path, [h.make_node("Add", ["x", "w"], ["y"])], inits=[w])
    assert main(["check", p]) == 0
    capsys.readouterr()
    assert main(["check", "--full", p]) == 1
    assert capsys.readouterr().out.startswith("[type-constraint] ")


def test_ir_version_warning_goes_to_stderr(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    p = _write(tmp_path, [h.make_node("Relu", ["x"], ["y"])], ir=3)
    assert main(["check", p]) == 0
    io = capsys.readouterr()
    assert io.out == f"{p}: valid\n"
    assert "warning: model has IR version 3" in io.err


def test_unreadable_file_is_one_error_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"\xff\xff\xff")
    assert main(["check", str(p)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pyonnx check: error:")
