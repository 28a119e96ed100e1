"""ai.onnx.preview.training: the optimizers Adagrad, Adam, Momentum, and Gradient.

The optimizers apply the spec's update rules to each (X, G, state…) group of their variadic
input. ``Gradient`` is defined by the nodes of its graph that compute ``y`` from ``xs`` and ``zs``:
its kernel re-runs that forward sub-graph on the node's inputs and differentiates it in reverse
mode, with one backward rule per supported operator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError, ValidationError
from pyonnx.ir import Graph, Node, Value
from pyonnx.ops._values import attribute_value
from pyonnx.ops.registry import graph_kernel, kernel

_DOMAIN = "ai.onnx.preview.training"


def _groups(args: tuple[Any, ...], n_groups: int, op: str) -> list[list[np.ndarray]]:
    if len(args) % n_groups:
        raise ExecutionError(f"{op} takes R, T and then {n_groups} equally long lists of "
                             f"tensors; got {len(args)} tensors after R and T")
    n = len(args) // n_groups
    return [list(args[i * n:(i + 1) * n]) for i in range(n_groups)]


def _scalar(x: np.ndarray) -> float:
    return float(np.asarray(x).reshape(-1)[0])


def _like(value: Any, ref: np.ndarray) -> np.ndarray:
    """``value`` as an array of ``ref``'s dtype: arithmetic on 0-d tensors with Python floats
    gives NumPy scalars, and kernels return arrays."""
    return np.asarray(value).astype(ref.dtype, copy=False)


@kernel("Adagrad", versions=(1,), domain=_DOMAIN)
def adagrad(R: np.ndarray, T: np.ndarray, *inputs: np.ndarray, decay_factor: float = 0.0,
            epsilon: float = 1e-6, norm_coefficient: float = 0.0) -> tuple:
    """ADAGRAD: returns the new X values, then the new accumulated squared gradients H."""
    xs, gs, hs = _groups(inputs, 3, "Adagrad")
    r = _scalar(R) / (1 + _scalar(T) * decay_factor)
    new_x, new_h = [], []
    for x, g, h in zip(xs, gs, hs):
        g_reg = norm_coefficient * x + g
        h_new = h + g_reg * g_reg
        new_x.append(_like(x - r * g_reg / (np.sqrt(h_new) + epsilon), x))
        new_h.append(_like(h_new, h))
    return tuple(new_x + new_h)


@kernel("Momentum", versions=(1,), domain=_DOMAIN)
def momentum(R: np.ndarray, T: np.ndarray, *inputs: np.ndarray, alpha: float, beta: float,
             mode: str, norm_coefficient: float) -> tuple:
    """SGD with standard or Nesterov momentum: new X values, then new momenta V."""
    if mode not in ("standard", "nesterov"):
        raise UnsupportedOperatorError(f"Momentum mode {mode!r} is not 'standard' or 'nesterov'")
    xs, gs, vs = _groups(inputs, 3, "Momentum")
    r = _scalar(R)
    beta_adj = beta if _scalar(T) > 0 else 1.0
    new_x, new_v = [], []
    for x, g, v in zip(xs, gs, vs):
        g_reg = norm_coefficient * x + g
        v_new = alpha * v + beta_adj * g_reg
        step = v_new if mode == "standard" else g_reg + alpha * v_new
        new_x.append(_like(x - r * step, x))
        new_v.append(_like(v_new, v))
    return tuple(new_x + new_v)


@kernel("Adam", versions=(1,), domain=_DOMAIN)
def adam(R: np.ndarray, T: np.ndarray, *inputs: np.ndarray, alpha: float = 0.9,
         beta: float = 0.999, epsilon: float = 1e-6, norm_coefficient: float = 0.0,
         norm_coefficient_post: float = 0.0) -> tuple:
    """Adam: new X values, then the new first moments V, then the new second moments H."""
    xs, gs, vs, hs = _groups(inputs, 4, "Adam")
    r, t = _scalar(R), _scalar(T)
    r_adj = r * np.sqrt(1 - beta ** t) / (1 - alpha ** t) if t > 0 else r
    new_x, new_v, new_h = [], [], []
    for x, g, v, h in zip(xs, gs, vs, hs):
        g_reg = norm_coefficient * x + g
        v_new = alpha * v + (1 - alpha) * g_reg
        h_new = beta * h + (1 - beta) * g_reg * g_reg
        x_new = x - r_adj * v_new / (np.sqrt(h_new) + epsilon)
        new_x.append(_like((1 - norm_coefficient_post) * x_new, x))
        new_v.append(_like(v_new, v))
        new_h.append(_like(h_new, h))
    return tuple(new_x + new_v + new_h)


# --------------------------------------------------------------------------- Gradient


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a gradient over the axes that broadcasting expanded, back to ``shape``."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, d in enumerate(shape):
        if d == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


# backward rules: (inputs, output, output gradient) -> gradient of each input
_Backward = Callable[[list[np.ndarray], np.ndarray, np.ndarray], list[np.ndarray]]
_BACKWARD: dict[str, _Backward] = {
    "Add": lambda i, y, g: [_unbroadcast(g, i[0].shape), _unbroadcast(g, i[1].shape)],
    "Sub": lambda i, y, g: [_unbroadcast(g, i[0].shape), _unbroadcast(-g, i[1].shape)],
    "Mul": lambda i, y, g: [_unbroadcast(g * i[1], i[0].shape), _unbroadcast(g * i[0], i[1].shape)],
    "Div": lambda i, y, g: [_unbroadcast(g / i[1], i[0].shape),
                            _unbroadcast(-g * i[0] / (i[1] * i[1]), i[1].shape)],
    "Neg": lambda i, y, g: [-g],
    "Identity": lambda i, y, g: [g],
    "Relu": lambda i, y, g: [g * (i[0] > 0)],
    "Sigmoid": lambda i, y, g: [g * y * (1 - y)],
    "Tanh": lambda i, y, g: [g * (1 - y * y)],
    "Exp": lambda i, y, g: [g * y],
    "Log": lambda i, y, g: [g / i[0]],
    "Sqrt": lambda i, y, g: [g / (2 * y)],
    "MatMul": lambda i, y, g: [_unbroadcast(g @ np.swapaxes(i[1], -1, -2), i[0].shape)
                               if i[1].ndim > 1 else np.multiply.outer(g, i[1]),
                               _unbroadcast(np.swapaxes(i[0], -1, -2) @ g, i[1].shape)
                               if i[0].ndim > 1 else np.multiply.outer(i[0], g)],
}


@graph_kernel("Gradient", versions=(1,), domain=_DOMAIN)
def gradient(node: Node, graph: Graph, resolve: Callable[[Node], Any]) -> Callable[..., tuple]:
    """Build the kernel of a Gradient node: d(y)/d(x) for each x of ``xs``.

    The node's inputs are the values of ``xs`` followed by ``zs``; the forward sub-graph is the
    set of nodes of the same graph on a path from them to ``y``.
    """
    attrs = {a.name: a.value for a in node.attributes.values()}
    xs: list[str] = list(attrs.get("xs", []))
    zs: list[str] = list(attrs.get("zs", []))
    y: str | None = attrs.get("y")
    where = node.describe()
    if not xs or not y:
        raise ValidationError(f"{where} needs the attributes xs and y")
    leaves = xs + zs
    producers: dict[str, Node] = {v.name: n for n in graph.nodes for v in n.outputs if v.name}
    # walk back from y to the leaves; every node on the way is part of the forward pass
    needed: list[Node] = []
    seen: set[int] = set()

    def visit(name: str) -> None:
        if name in leaves:
            return
        n = producers.get(name)
        if n is None:
            raise ValidationError(f"{where}: {name!r} is not computed from xs and zs "
                                  f"(it is a graph input or constant not listed in xs/zs)")
        if id(n) in seen:
            return
        seen.add(id(n))
        for v in n.inputs:
            if v is not None:
                visit(v.name)
        needed.append(n)

    visit(y)
    forward: list[tuple[Node, Any]] = []
    for n in needed:
        if n.op_type not in _BACKWARD or n.domain not in ("", "ai.onnx"):
            raise UnsupportedOperatorError(
                f"{where}: cannot differentiate {n.describe()}; Gradient supports "
                f"{', '.join(sorted(_BACKWARD))}")
        forward.append((n, resolve(n)))

    def run(*inputs: np.ndarray, **_attributes: Any) -> tuple:  # attributes used above
        if len(inputs) != len(leaves):
            raise ExecutionError(f"Gradient expects {len(leaves)} inputs (xs then zs), got "
                                 f"{len(inputs)}")
        env: dict[str, np.ndarray] = dict(zip(leaves, inputs))
        for n, fn in forward:
            outs = fn(*[env[v.name] if v is not None else None for v in n.inputs],
                      **{a.name: attribute_value(a) for a in n.attributes.values()})
            for v, o in zip(n.outputs, outs):
                env[v.name] = o
        grads: dict[str, np.ndarray] = {y: np.ones_like(env[y])}
        for n, _fn in reversed(forward):
            out: Value = n.outputs[0]
            g = grads.get(out.name)
            if g is None:
                continue
            ins = [env[v.name] for v in n.inputs if v is not None]
            for v, gi in zip([v for v in n.inputs if v is not None],
                             _BACKWARD[n.op_type](ins, env[out.name], g)):
                grads[v.name] = grads[v.name] + gi if v.name in grads else gi
        return tuple(np.asarray(grads.get(x, np.zeros_like(env[x])), dtype=env[x].dtype)
                     for x in xs)

    return run
