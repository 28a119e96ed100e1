"""ONNX nodes as ``torch.fx`` code: one call of the torch op table's function per node.

:class:`NodeEmitter` is the one translation of a node into torch code. Both users build on it:
:func:`pyonnx.convert.to_torch` (whole models, with their initializers as parameters and
control flow as Python) and the torch execution provider (a partition of consecutive nodes
of a session's plan as one ``GraphModule``, run eagerly or through ``torch.compile``).
"""

from __future__ import annotations

import keyword
import operator
import re
from typing import Any

import numpy as np
import torch
import torch.fx

from pyonnx.backends.torch.dtypes import from_numpy
from pyonnx.backends.torch.ops import MANY_OUTPUTS, TorchOp
from pyonnx.errors import UnsupportedOperatorError
from pyonnx.ir import Node, Value

__all__ = ["Names", "NodeEmitter"]


class Names:
    """Python identifiers for ONNX names, unique within one module."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, name: str, prefix: str = "v") -> str:
        base = re.sub(r"\W", "_", name) or prefix
        if base[0].isdigit() or keyword.iskeyword(base) or base.startswith("_"):
            base = f"{prefix}_{base.lstrip('_')}"
        out, i = base, 1
        while out in self.used:
            out, i = f"{base}_{i}", i + 1
        self.used.add(out)
        return out


class NodeEmitter:
    """Builds a ``torch.fx`` graph (``fx``) node by node; ``env`` maps an ONNX value (by id)
    to the fx node that computes it, and ``root`` owns the module's buffers, parameters and
    submodules. A caller adds placeholders to ``env`` for what the graph reads, emits its
    nodes with :meth:`call`, then adds the output."""

    def __init__(self, root: torch.nn.Module, names: Names) -> None:
        self.root = root  # the module that owns parameters, buffers and submodules
        self.names = names
        self.fx = torch.fx.Graph()
        self.env: dict[int, torch.fx.Node] = {}

    # ------------------------------------------------------------ attributes of the module

    def _attr(self, name: str, value: Any, trainable: bool) -> torch.fx.Node:
        target = self.names(name, "c")
        if isinstance(value, torch.nn.Module):
            self.root.add_module(target, value)
        elif trainable:
            self.root.register_parameter(target, torch.nn.Parameter(value))
        else:
            self.root.register_buffer(target, value)
        return self.fx.get_attr(target)

    def _read(self, v: Value | None) -> torch.fx.Node | None:
        if v is None:
            return None
        try:
            return self.env[id(v)]
        except KeyError:
            raise UnsupportedOperatorError(f"value {v.name!r} is read before it is defined") \
                from None

    def _bind_outputs(self, node: Node, result: torch.fx.Node, many: bool) -> None:
        if not many:
            self.env[id(node.outputs[0])] = result
            return
        for i, v in enumerate(node.outputs):
            if v.name:
                item = self.fx.call_function(operator.getitem, (result, i))
                item.name = self.names(v.name)
                self.env[id(v)] = item

    def call(self, node: Node, entry: TorchOp, attrs: dict[str, Any]) -> None:
        """Emit ``node`` as one call of its table function ``entry.fn`` with the decoded
        attributes ``attrs``, reading its inputs from and binding its outputs in ``env``. The
        torch provider builds its partitions through this too (with the attributes its plan
        bound), so a node becomes the same torch code in both."""
        if node.op_type == "Constant" and entry.domain == "":
            value = entry.fn(**attrs)
            self.env[id(node.outputs[0])] = self._attr(node.outputs[0].name, value, False)
            return
        kwargs: dict[str, Any] = {}
        for k, a in attrs.items():
            # tensor attributes become buffers (fx code holds plain Python values only)
            kwargs[k] = self._attr(f"{node.name or node.op_type}_{k}", from_numpy(a), False) \
                if isinstance(a, np.ndarray) else a
        if entry.node_kwargs is not None:
            kwargs.update(entry.node_kwargs(node))
        inputs = [self._read(v) for v in node.inputs]
        result = self.fx.call_function(entry.fn, tuple(inputs), kwargs)
        many = node.op_type in MANY_OUTPUTS
        result.name = self.names((node.name or node.outputs[0].name) if many else
                                 node.outputs[0].name)
        self._bind_outputs(node, result, many)
