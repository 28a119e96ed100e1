"""pyonnx.ir.lint: each invariant, broken on purpose, is reported; sound IR gives no report."""

from __future__ import annotations

import pytest

from pyonnx.errors import ValidationError
from pyonnx.ir import (
    Attribute,
    AttributeType,
    DataType,
    Graph,
    Model,
    Node,
    TensorType,
    Value,
    assert_lint_clean,
    lint,
)
from pyonnx.optimizer import Pass, PassManager


def _chain() -> tuple[Model, Node, Node]:
    """x -> Relu -> a -> Neg -> y"""
    x = Value("x", TensorType(DataType.FLOAT, (2,)))
    a, y = Value("a"), Value("y")
    relu = Node("Relu", [x], [a], name="relu")
    neg = Node("Neg", [a], [y], name="neg")
    return Model(Graph("g", inputs=[x], outputs=[y], nodes=[relu, neg])), relu, neg


def test_sound_model_is_clean() -> None:
    m, _, _ = _chain()
    assert lint(m) == []
    assert_lint_clean(m)


def test_topological_order() -> None:
    m, relu, neg = _chain()
    m.graph.nodes.reverse()
    problems = lint(m)
    assert any("'neg'" in p and "topological order" in p for p in problems), problems


def test_use_list_out_of_date() -> None:
    m, relu, neg = _chain()
    neg.inputs[0] = m.graph.inputs[0]  # edited behind the IR's back: uses not updated
    problems = lint(m)
    assert any("not recorded once" in p for p in problems), problems
    assert any("does not read it" in p for p in problems), problems


def test_use_by_removed_node() -> None:
    m, relu, neg = _chain()
    m.graph.nodes.remove(neg)  # dropped without Graph.remove: 'a' still lists its use
    neg.graph = None
    problems = lint(m)
    assert any("no longer in a graph" in p for p in problems), problems
    assert any("output 0 ('y') is not defined" in p for p in problems), problems


def test_single_assignment() -> None:
    m, relu, neg = _chain()
    neg.outputs[0].name = "a"
    problems = lint(m)
    assert any("second value of that name" in p for p in problems), problems


def test_producer_links_and_ownership() -> None:
    m, relu, neg = _chain()
    relu.outputs[0].producer_index = 3
    neg.graph = Graph("other")
    problems = lint(m)
    assert any("does not name this node as its producer" in p for p in problems), problems
    assert any("owned by another graph" in p for p in problems), problems


def test_subgraph_reads_outer_scope_and_parent_link() -> None:
    c = Value("c", TensorType(DataType.BOOL, ()))
    x = Value("x", TensorType(DataType.FLOAT, (2,)))
    then_out, else_out, y = Value("t"), Value("e"), Value("y")
    then_g = Graph("then", outputs=[then_out], nodes=[Node("Relu", [x], [then_out])])
    else_g = Graph("else", outputs=[else_out], nodes=[Node("Neg", [x], [else_out])])
    node = Node("If", [c], [y], name="if", attributes=[
        Attribute("then_branch", AttributeType.GRAPH, then_g),
        Attribute("else_branch", AttributeType.GRAPH, else_g)])
    g = Graph("main", inputs=[c, x], outputs=[y], nodes=[node])
    then_g.parent = else_g.parent = g
    assert lint(g) == []  # reading x from the enclosing graph is fine
    else_g.parent = None
    assert any("parent" in p for p in lint(g))


def test_pass_manager_debug_names_the_breaking_pass() -> None:
    class Breaks(Pass):
        name = "Breaks"

        def call(self, model: Model) -> bool:
            model.graph.nodes.reverse()
            return True

    m, _, _ = _chain()
    with pytest.raises(ValidationError, match="after Breaks"):
        PassManager([Breaks()], max_iterations=1, debug=True)(m)
    m, _, _ = _chain()
    PassManager([Breaks()], max_iterations=1, debug=False)(m)  # not checked outside debug


def test_checker_reports_broken_links_of_an_in_memory_model() -> None:
    import pyonnx

    m, relu, neg = _chain()
    m.opset_imports = {"": 17}
    m.graph.outputs[0].type = TensorType(DataType.FLOAT, (2,))
    pyonnx.check_model(m)  # sound
    neg.inputs[0] = m.graph.inputs[0]  # the names still line up; the links do not
    with pytest.raises(ValidationError, match=r"\[ir-structure\]"):
        pyonnx.check_model(m)
