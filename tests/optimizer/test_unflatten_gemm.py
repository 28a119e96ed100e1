"""Reshape -> Gemm -> Reshape around a [batch, seq, K] tensor becomes MatMul (+ Add): only when
shape inference proves the Reshapes flatten and restore the leading dims exactly."""

from __future__ import annotations

import numpy as np
import pytest

from pyonnx.ir import Attribute, AttributeType, Node
from pyonnx.optimizer import copy_model
from pyonnx.optimizer.passes import UnflattenGemm
from tests.optimizer.test_offline_optimize import _apply, _same, c
from tests.optimizer.test_optimizer_passes import model_of, ops, run, tval


def _model(trans_b: int = 0, bias: str = "row", target: list[int] | None = None,
           alpha: float = 1.0):  # type: ignore[no-untyped-def]
    x = tval("x", ("batch", 3, 4))
    rng = np.random.default_rng(8)
    w = c("w", rng.standard_normal((5, 4) if trans_b else (4, 5)))
    flat_shape = c("flat_shape", [-1, 4], np.int64)
    inits = [w, flat_shape]
    f, g, y = tval("f"), tval("g"), tval("y")
    gemm_ins = [f, w]
    if bias != "none":
        b = c("b", rng.standard_normal((1, 5) if bias == "row2d" else (5,)))
        inits.append(b)
        gemm_ins.append(b)
    # the restoring target: [batch, 3, 5] from x's own shape, as the exporters compute it
    shp, lead, back_shape = tval("shp"), tval("lead"), tval("back_shape")
    n = c("n", [5], np.int64)
    inits.append(n)
    nodes = [Node("Reshape", [x, flat_shape], [f]),
             Node("Gemm", gemm_ins, [g],
                  attributes=[Attribute("transB", AttributeType.INT, trans_b),
                              Attribute("alpha", AttributeType.FLOAT, alpha)]),
             Node("Shape", [x], [shp], attributes=[Attribute("end", AttributeType.INT, -1)])]
    if target is None:
        nodes.append(Node("Concat", [shp, n], [back_shape],
                          attributes=[Attribute("axis", AttributeType.INT, 0)]))
    else:
        back_shape = c("back_shape", target, np.int64)
        inits.append(back_shape)
    nodes.append(Node("Reshape", [g, back_shape], [y]))
    return model_of(nodes, [x], [y], inits)


@pytest.mark.parametrize("trans_b,bias", [(0, "row"), (1, "row"), (0, "row2d"), (0, "none")])
def test_gemm_between_reshapes_becomes_matmul(trans_b: int, bias: str) -> None:
    m = _model(trans_b, bias)
    opt = _apply(copy_model(m), UnflattenGemm())
    assert ops(opt) == (["MatMul"] if bias == "none" else ["MatMul", "Add"])
    assert opt.graph.outputs[0].name == "y"
    feeds = {"x": np.random.default_rng(9).standard_normal((2, 3, 4)).astype(np.float32)}
    _same(run(m, feeds), run(opt, feeds))


@pytest.mark.parametrize("case", ["other_target", "alpha"])
def test_gemm_whose_reshapes_are_not_proven_stays(case: str) -> None:
    # [3, -1, 5] gives [3, batch, 5], not x's leading dims [batch, 3] (equal only when batch
    # is 3); alpha != 1 would need a scaled weight
    m = _model(target=[3, -1, 5]) if case == "other_target" else _model(alpha=2.0)
    assert not UnflattenGemm()(m).modified
    assert "Gemm" in ops(m)
