"""The kernel of a user-declared custom operator (:class:`pyonnx.defs.custom.CustomOp`).

The user's function takes NumPy arrays and attributes as keyword arguments and returns an array or
a tuple of arrays. :func:`custom_kernel` wraps it into a registry kernel (the calling convention
of :mod:`pyonnx.ops.registry`) that holds it to its declaration: the input count and types before
the call, the output count and types after it. A disagreement is an
:class:`~pyonnx.errors.ExecutionError`, which the runtime re-raises naming the node. The wrapper's
signature lists the declared attributes, so a session refuses a node with an undeclared attribute
when it is created, as it does for built-in operators.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from pyonnx.defs import UNBOUNDED
from pyonnx.defs.custom import CustomOp
from pyonnx.defs.type_strings import value_type_string
from pyonnx.errors import ExecutionError
from pyonnx.ops.registry import Kernel, KernelContext

__all__ = ["custom_kernel"]


def custom_kernel(op: CustomOp) -> Kernel:
    """The registry kernel of ``op`` (built once per declaration and reused: the runtime caches
    per-kernel facts such as its signature)."""
    fn = op._adapters.get("kernel")
    if fn is None:
        fn = op._adapters["kernel"] = _make_kernel(op)
    return fn


def _make_kernel(op: CustomOp) -> Kernel:
    schema = op.schema
    defaults = dict(op.attribute_defaults)

    def run(*inputs: Any, ctx: KernelContext | None = None, **attrs: Any) -> tuple:
        n = len(inputs)
        if n < schema.min_input or n > schema.max_input:
            raise ExecutionError(f"{op} takes {_count(schema.min_input, schema.max_input)} "
                                 f"inputs, the node gives {n}")
        bound: dict[str, str] = {}
        problem = op.bind_types("input", [value_type_string(x) for x in inputs], bound)
        if problem:
            raise ExecutionError(problem)
        # a fresh copy of list defaults per call: a kernel that appends to one cannot change it
        kwargs = {**{k: list(v) if isinstance(v, list) else v for k, v in defaults.items()},
                  **attrs}
        result = op.kernel(*inputs, **kwargs)
        n_out = ctx.num_outputs if ctx is not None else len(schema.outputs)
        outs = _as_outputs(op, result, n_out)
        problem = op.bind_types("output", [value_type_string(x) for x in outs], bound)
        if problem:
            raise ExecutionError(f"the kernel {_kernel_name(op)} returned a wrong type: "
                                 f"{problem}")
        return outs

    # the signature the runtime inspects at session creation: a node with more inputs than
    # declared, or an undeclared attribute, is refused then rather than at its first run
    P = inspect.Parameter
    if schema.max_input == UNBOUNDED:
        params = [P("inputs", P.VAR_POSITIONAL)]
    else:
        params = [P(f"input{i}", P.POSITIONAL_ONLY,
                    **({} if i < schema.min_input else {"default": None}))
                  for i in range(len(schema.inputs))]
    params += [P(name, P.KEYWORD_ONLY, default=None) for name in schema.attributes]
    params.append(P("ctx", P.KEYWORD_ONLY, default=None))
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__qualname__ = run.__name__ = f"custom_op_{op.op_type}"
    return run


def _as_outputs(op: CustomOp, result: Any, n_out: int) -> tuple:
    """The kernel's result as one entry per node output; NumPy scalars become 0-d arrays."""
    if isinstance(result, tuple):
        outs = list(result)
    elif isinstance(result, list) and n_out > 1:
        outs = list(result)
    else:
        outs = [result]
    outs = [_normalized(x) for x in outs]
    if len(outs) < n_out:
        raise ExecutionError(f"the kernel {_kernel_name(op)} returned {len(outs)} output"
                             f"{'s' if len(outs) != 1 else ''}, the node has {n_out}")
    for i, x in enumerate(outs[:n_out]):
        declared = _declared(op, i)
        if x is None and declared is not None and not declared.is_optional:
            raise ExecutionError(f"the kernel {_kernel_name(op)} returned None for output {i}, "
                                 f"which {op} does not declare optional")
        if x is not None and not isinstance(x, (np.ndarray, list, dict)):
            raise ExecutionError(f"the kernel {_kernel_name(op)} returned a "
                                 f"{type(x).__name__} for output {i}; return a numpy.ndarray "
                                 f"of the declared type")
    return tuple(outs[:n_out])


def _normalized(x: Any) -> Any:
    """A NumPy scalar as a 0-d array; NumPy text (``<U``, ``|S``) as the object array of ``str``
    that pyonnx's string tensors are, so the next kernel gets what it expects."""
    if isinstance(x, np.generic):
        x = np.asarray(x)
    if isinstance(x, np.ndarray) and x.dtype.kind in "US":
        if x.dtype.kind == "S":
            x = np.char.decode(x, "utf-8")
        x = x.astype(object)
    return x


def _declared(op: CustomOp, i: int) -> Any:
    outs = op.schema.outputs
    return outs[min(i, len(outs) - 1)] if outs else None


def _kernel_name(op: CustomOp) -> str:
    return getattr(op.kernel, "__qualname__", repr(op.kernel))


def _count(lo: int, hi: int) -> str:
    if lo == hi:
        return str(lo)
    return f"at least {lo}" if hi == UNBOUNDED else f"{lo} to {hi}"
