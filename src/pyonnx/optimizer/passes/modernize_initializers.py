"""IR version 3 models list every initializer among the graph inputs, and onnxruntime and
pyonnx treat those inputs as constants. Passes add initializers (folded constants) that such a
file would have to list too, and leave the unused ones listed. This pass states the same model in
IR version 4: the initializers leave the input list (still constants, now by the rule of IR 4),
so the written file is valid and the unused ones can be dropped."""

from __future__ import annotations

from pyonnx.ir import Model
from pyonnx.optimizer._core import Pass

__all__ = ["ModernizeInitializers"]


class ModernizeInitializers(Pass):
    """IR 3 ``inputs = [x, W, b]`` with initializers W, b -> IR 4 ``inputs = [x]``."""

    name = "modernize_initializers"

    def call(self, model: Model) -> bool:
        if model.ir_version >= 4:
            return False
        g = model.graph
        # an IR-3 initializer listed as an input is a constant (never fed) -> not an input
        g.inputs = [v for v in g.inputs if v.name not in g.initializers]
        model.ir_version = 4
        return True
