"""The ai.onnx.preview.training operators: the optimizers Adagrad, Momentum and Adam, and
Gradient.

An optimizer takes ``R`` (learning rate) and ``T`` (update count), then equally long groups of
tensors: (X, G, H) for Adagrad, (X, G, V) for Momentum, (X, G, V, H) for Adam. It writes the new
X group, then the new state groups (H; V; V and H), each new tensor of the type and shape of the
tensor it replaces. Gradient writes, for each name of its ``xs`` attribute, a gradient of that
input's type and shape (the node's inputs are the values of ``xs`` and then ``zs``).
"""

from __future__ import annotations

from pyonnx.ir import Type
from pyonnx.shape_inference.engine import InferenceContext
from pyonnx.shape_inference.registry import shape_rule

TRAINING = "ai.onnx.preview.training"

# input groups after R and T, and which of them the output groups replace (in output order)
_GROUPS = {
    "Adagrad": (3, (0, 2)),      # X, G, H -> X_new, H_new
    "Momentum": (3, (0, 2)),     # X, G, V -> X_new, V_new
    "Adam": (4, (0, 2, 3)),      # X, G, V, H -> X_new, V_new, H_new
}


@shape_rule(tuple(_GROUPS), domain=TRAINING)
def optimizer(ctx: InferenceContext) -> list[Type | None]:
    n_groups, written = _GROUPS[ctx.node.op_type]
    rest = ctx.num_inputs - 2
    if rest < n_groups or rest % n_groups:
        raise ctx.fail(f"expects R, T and then {n_groups} equally long groups of tensors; got "
                       f"{rest} tensors after R and T")
    n = rest // n_groups
    if ctx.num_outputs > n * len(written):
        raise ctx.fail(f"has {ctx.num_outputs} outputs; {n} tensors per group give at most "
                       f"{n * len(written)}")
    outs: list[Type | None] = []
    for k in range(ctx.num_outputs):
        group, j = written[k // n], k % n
        outs.append(ctx.input_type(2 + group * n + j))
    return outs


@shape_rule("Gradient", domain=TRAINING)
def gradient(ctx: InferenceContext) -> list[Type | None]:
    xs = list(ctx.attr("xs", None) or [])
    if ctx.num_outputs > len(xs):
        raise ctx.fail(f"has {ctx.num_outputs} outputs but attribute 'xs' names {len(xs)} "
                       f"tensors")
    return [ctx.input_type(i) for i in range(ctx.num_outputs)]
