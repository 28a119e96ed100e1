"""What every rule module shares: the :class:`Violation` record, the rule tags, and the
:class:`CheckContext` that collects violations while the model is walked.

A violation reads ``[rule] location: message``. The location is a path from the model down to
the element, e.g. ``main graph > node 'loop1' (Loop) > body > node #3 (Add)``, so a user can find
it in a viewer; the rule tag says which rule of the specification is broken.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from pyonnx.ir import Function, Model, Node

__all__ = ["RULES", "Violation", "CheckContext", "GraphEnv", "node_label"]

#: Every rule tag a violation may carry, with what the rule says.
RULES: Mapping[str, str] = MappingProxyType({
    "ir-version": "ir_version must be set (>= 1) and no newer than pyonnx supports",
    "opset-import": "every domain a node uses is imported once, with a version >= 1 that exists",
    "decode": "(parts checked on their own) the protobuf message can be represented: stored "
              "data matches the dims, names are unique where the format requires it (what "
              "pyonnx.load refuses with DecodeError)",
    "ssa": "each value name is defined once in a graph (inputs, initializers, node outputs); a "
           "subgraph's node outputs may not reuse a name visible from an outer graph",
    "subgraph-initializer-input": "from IR version 4, a subgraph name may not be both an input "
                                  "and an initializer",
    "initializer-input": "up to IR version 3, every initializer is also a graph input",
    "topological-order": "a node only reads values defined before it (nodes are topologically "
                         "sorted, no cycles)",
    "undefined-input": "every node input names a graph input, an initializer, an earlier node "
                       "output or (in a subgraph) a value of an enclosing graph",
    "graph-output": "every graph output is a value defined in that graph",
    "value-info": "graph inputs, outputs and value_info entries carry well-formed types (main "
                  "graph: a type with a known element type and a shape)",
    "name": "names the specification requires are present (graph, op_type, attribute, value "
            "info, function)",
    "unknown-operator": "the operator exists in its domain at the imported opset version",
    "deprecated-operator": "the operator is not deprecated at the imported opset version",
    "unknown-attribute": "a node only sets attributes its operator declares",
    "missing-attribute": "a node sets every required attribute of its operator",
    "attribute-type": "each attribute has the type its operator declares",
    "attribute-reference": "ref_attr_name is only used inside a function body and names an "
                           "attribute that function declares",
    "arity": "input/output counts lie within the operator's (or called function's) bounds and "
             "required (non-optional) inputs/outputs are not left empty",
    "tensor": "a tensor has a known element type, non-negative dims and as many values as its "
              "dims require, of its element type",
    "sparse-tensor": "a sparse tensor's indices are int64, in range and in ascending order "
                     "without duplicates",
    "function": "model-local functions have unique (domain, name, overload) ids and distinct "
                "parameter names, and none calls itself, directly or through others",
    "undefined-function": "a node in a domain of model-local functions calls a function that "
                          "exists",
    "type-constraint": "(full check) input/output types satisfy the operator's type "
                       "constraints and one type parameter binds one type",
    "operator-constraint": "(full check) the known shapes and attributes of a node meet its "
                           "operator's constraints (e.g. ConvTranspose's channels divisible "
                           "by group)",
    "ir-structure": "(a Model built in memory) the IR objects link up: use lists, producers, "
                    "node ownership and subgraph parents agree with the nodes (pyonnx.ir.lint)",
    "shape-inference": "(full check) strict shape inference finds no contradiction",
})


@dataclasses.dataclass(frozen=True)
class Violation:
    """One broken rule: its tag (a key of :data:`RULES`), where, and what is wrong."""

    rule: str
    location: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.location}: {self.message}"


@dataclasses.dataclass(frozen=True)
class GraphEnv:
    """What is in force while a graph is walked: the opset imports that resolve its nodes and the
    function whose body it belongs to (None in the main graph and its subgraphs)."""

    opsets: Mapping[str, int]
    function: Function | None = None

    def opset(self, domain: str) -> int | None:
        """The imported version of ``domain`` (``""`` and ``"ai.onnx"`` are the same domain)."""
        if domain in ("", "ai.onnx"):
            v = self.opsets.get("")
            return v if v is not None else self.opsets.get("ai.onnx")
        return self.opsets.get(domain)


class CheckContext:
    """The state of one check run: what is checked against, the options, the violations found.

    ``model`` is None when a part (a graph, a node, a function) is checked on its own; then
    ``ir_version`` and ``functions`` say what the part is checked against.
    """

    def __init__(self, model: Model | None, full_check: bool, *, ir_version: int | None = None,
                 functions: Sequence[Function] | None = None, closed_world: bool = True) -> None:
        from pyonnx import defs

        self.model = model
        self.full_check = full_check
        self.ir_version = (model.ir_version if model is not None else
                           ir_version if ir_version is not None else defs.MAX_IR_VERSION)
        #: the model-local functions nodes may call
        self.model_functions: list[Function] = list(
            model.functions if model is not None else functions or ())
        self.violations: list[Violation] = []
        # model-local functions by id; a duplicate id keeps the first (the duplicate is reported)
        self.functions: dict[tuple[str, str, str], Function] = {}
        for f in self.model_functions:
            self.functions.setdefault((_norm(f.domain), f.name, f.overload), f)
        # a node of one of these domains must call a known function; when a part is checked
        # without the model's functions (closed_world False), nothing can be said about that
        self.function_domains = ({_norm(f.domain) for f in self.model_functions}
                                 if closed_world else set())
        self._seen: set[object] = set()

    def first_time(self, key: object) -> bool:
        """True the first time ``key`` is seen in this run (for findings reported once)."""
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def report(self, rule: str, location: str, message: str) -> None:
        """Record one violation (``rule`` must be a key of :data:`RULES`)."""
        assert rule in RULES, rule
        self.violations.append(Violation(rule, location, message))

    def function_for(self, node: Node) -> Function | None:
        """The model-local function a node calls, if any."""
        return self.functions.get((_norm(node.domain), node.op_type, node.overload))


def _norm(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain


def node_label(node: Node, index: int) -> str:
    """How locations name a node: ``node 'conv1' (Conv)``, or ``node #3 (Conv)`` when unnamed."""
    dom = f"{node.domain}::" if node.domain not in ("", "ai.onnx") else ""
    label = f"node {node.name!r}" if node.name else f"node #{index}"
    return f"{label} ({dom}{node.op_type})"
