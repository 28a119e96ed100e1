"""How the pass manager shares shape-inference facts between passes (session creation time):
facts survive passes that only drop nodes or read equal values, are rebuilt after any other
change, and a facts pass whose anchor operators are absent builds none."""

from __future__ import annotations

import numpy as np

import pyonnx.optimizer._facts as facts_module
from pyonnx.ir import DataType, Graph, Model, Node, Tensor, TensorType, Value
from pyonnx.optimizer import PassManager
from pyonnx.optimizer._facts import facts_for
from pyonnx.optimizer._facts_pass import FactsPass
from pyonnx.optimizer.passes import (
    EliminateDeadCode, EliminateIdentity, EliminateNoOps, FuseLayerNorm,
)

F = DataType.FLOAT


def _model() -> Model:
    """x -> Identity -> Relu -> y, with a dead Neg beside it."""
    x = Value("x", TensorType(F, (2, 3)))
    i = Value("i", TensorType(F, None))
    r = Value("y", TensorType(F, None))
    dead = Value("dead", TensorType(F, None))
    nodes = [Node("Identity", [x], [i]), Node("Relu", [i], [r]), Node("Neg", [x], [dead])]
    return Model(Graph("g", inputs=[x], outputs=[r], nodes=nodes), opset_imports={"": 18})


class _Count:
    """Counts the facts built while it is active."""

    def __init__(self, monkeypatch) -> None:  # type: ignore[no-untyped-def]
        self.n = 0
        orig = facts_module.Facts.__init__

        def counting(inner, model: Model) -> None:  # type: ignore[no-untyped-def]
            self.n += 1
            orig(inner, model)

        monkeypatch.setattr(facts_module.Facts, "__init__", counting)


class _ReadsFacts(FactsPass):
    """A facts pass that changes nothing and records the facts it saw."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    def rewrite(self, graph: Graph, model: Model) -> bool:
        self.seen.append(self.facts)
        return False


def test_facts_survive_dead_code_and_identity_removal(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    count = _Count(monkeypatch)
    model = _model()
    reader = _ReadsFacts()
    PassManager([reader, EliminateIdentity(), EliminateDeadCode(), reader])(model)
    assert [n.op_type for n in model.graph.nodes] == ["Relu"]
    # one build: the two removals left every remaining value computing what it did
    assert count.n == 1 and reader.seen[0] is reader.seen[1]
    # and what the facts say about the values still in the model is still true
    relu = model.graph.nodes[0]
    assert facts_for(model).shape(relu.outputs[0]) == (2, 3)


def test_facts_rebuilt_after_a_rewrite_that_changes_values(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from pyonnx.optimizer._core import Pass

    class _Mutates(Pass):
        """Changes what a kept value computes (as a weight-scaling fold does)."""

        done = False

        def call(self, model: Model) -> bool:
            if self.done:
                return False
            self.done = True
            model.graph.nodes[1].op_type = "Neg"
            return True

    count = _Count(monkeypatch)
    reader = _ReadsFacts()
    PassManager([reader, _Mutates(), reader])(_model())
    assert count.n >= 2 and reader.seen[0] is not reader.seen[1]


def test_facts_pass_without_its_anchor_ops_builds_no_facts(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    count = _Count(monkeypatch)
    model = _model()  # no ReduceMean: nothing a layer-norm fusion could start from
    assert not FuseLayerNorm()(model).modified
    assert count.n == 0
    # a pass whose anchor is present does build them, and still rewrites as before
    w = Value("w", TensorType(F, (3,)), const_value=Tensor.from_numpy(np.ones(3, np.float32), "w"))
    x = Value("x", TensorType(F, (3,)))
    c = Value("c", TensorType(F, None))
    y = Value("y", TensorType(F, None))
    g = Graph("g", inputs=[x], outputs=[y], initializers=[w],
              nodes=[Node("Cast", [x], [c], attributes=[_to_float()]), Node("Add", [c, w], [y])])
    m = Model(g, opset_imports={"": 18})
    assert EliminateNoOps()(m).modified  # Cast(x: float, to=float) -> x
    assert count.n == 1
    assert m.graph.nodes[-1].inputs[0] is x  # the Add reads x; the Cast is left dead


def _to_float():  # type: ignore[no-untyped-def]
    from pyonnx.ir import Attribute, AttributeType

    return Attribute("to", AttributeType.INT, int(F))
