"""Integer tensors as functions of their element's coordinates, for the passes that reason about
masks built from index grids (torch's exporter writes causal and packed-sequence masks with
Range, Unsqueeze, Expand and GatherND at such grids).

An *index function* of a value ``v`` is ``(source, axes)`` meaning
``v[p] = source[p[axes[0]], p[axes[1]], ...]`` for every coordinate ``p`` of ``v``, with the axes
counted from the right of ``v``'s shape (-1 the last). ``source`` is 0 for the coordinates
themselves (then one axis: ``v[p] = p[axes[0]]``), else the id of an integer Value whose
elements are unknown (two index functions of one source agree where their coordinates do).
"""

from __future__ import annotations

import numpy as np

from pyonnx.ir import DataType, Graph, TensorType, Value
from pyonnx.optimizer._facts import Facts
from pyonnx.optimizer._rewrite import attr, constant_of, is_standard
from pyonnx.optimizer.passes._match import made_by

__all__ = ["IndexFn", "index_fn", "grid_axes", "int_typed", "same_dims", "unbroadcast"]

IndexFn = tuple[int, tuple[int, ...]]

_INTS = (DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.UINT8,
         DataType.UINT16, DataType.UINT32, DataType.UINT64, DataType.BOOL)


def same_dims(*dims: object) -> bool:
    """Whether the dims are all known and equal (ints, or one symbol: the same run-time size)."""
    return all(d is not None for d in dims) and all(d == dims[0] for d in dims)


def int_typed(facts: Facts, v: Value | None) -> bool:
    """Whether ``v`` is an integer or bool tensor (whose elements equal themselves)."""
    t = facts.type(v)
    return isinstance(t, TensorType) and t.elem_type in _INTS


def unbroadcast(x: Value, axes: tuple[int, ...], out: tuple, facts: Facts) -> bool:
    """Whether ``x`` has the full size of the shape ``out`` on each of ``axes``: a coordinate
    read from a size-1 axis would be 0 all across the broadcast one."""
    sx = facts.shape(x)
    return sx is not None and all(-a <= len(sx) and -a <= len(out) and same_dims(sx[a], out[a])
                                  for a in axes)


def index_fn(v: Value | None, graph: Graph, facts: Facts, inputs: set[int],
             depth: int = 0) -> IndexFn | None:
    """``v`` as a function of its coordinates (see the module docstring), or None."""
    if v is None or depth > 32:
        return None
    n = v.producer
    if n is None or n.graph is not graph or not is_standard(n) or len(n.outputs) != 1:
        return _leaf(v, facts)
    op = n.op_type
    if op == "Range" and len(n.inputs) == 3:
        start = _ints(n.inputs[0], facts, inputs)
        delta = _ints(n.inputs[2], facts, inputs)
        if start == [0] and delta == [1]:
            return 0, (-1,)  # v[i] = i
    elif op == "Unsqueeze":
        fx = index_fn(n.inputs[0], graph, facts, inputs, depth + 1)
        r_in, r_out = facts.rank(n.inputs[0]), facts.rank(v)
        axes = _ints(n.inputs[1], facts, inputs) if len(n.inputs) > 1 \
            else attr(n, "axes", None)
        if fx is not None and r_in is not None and r_out is not None and axes is not None:
            new = {int(a) % r_out for a in axes}  # type: ignore[union-attr]
            kept = [p for p in range(r_out) if p not in new]  # where the input's axes go
            if len(kept) == r_in:
                return fx[0], tuple(kept[a + r_in] - r_out for a in fx[1])
    elif op == "Expand" and len(n.inputs) == 2:
        x = n.inputs[0]
        fx = index_fn(x, graph, facts, inputs, depth + 1)
        sv = facts.shape(v)
        # a coordinate axis must not be broadcast (a size-1 axis stretched reads index 0)
        if fx is not None and sv is not None and unbroadcast(x, fx[1], sv, facts):
            return fx
    elif op == "GatherND" and len(n.inputs) == 2:
        data = n.inputs[0]
        axes = grid_axes(n, graph, facts, inputs, depth)
        fd = index_fn(data, graph, facts, inputs, depth + 1)
        r_data = facts.rank(data)
        if axes is not None and fd is not None and r_data == len(axes):
            # v[p] = data[p[axes[0]], ...] and data[c] = source[c[fd axes]]
            return fd[0], tuple(axes[r_data + a] for a in fd[1])
    return _leaf(v, facts)


def _leaf(v: Value, facts: Facts) -> IndexFn | None:
    """An integer value of known rank whose elements are unknown: ``v[p] = v[p]``."""
    r = facts.rank(v)
    if r is None or r == 0 or not int_typed(facts, v):
        return None
    return id(v), tuple(range(-r, 0))


def grid_axes(node, graph: Graph, facts: Facts, inputs: set[int], depth: int = 0
              ) -> tuple[int, ...] | None:
    """For ``GatherND(data, indices)`` (batch_dims 0) whose indices are a grid of coordinates,
    ``Concat([Unsqueeze(c_0, -1), Unsqueeze(c_1, -1), ...], axis=-1)`` with each ``c_j[p] =
    p[a_j]``: the axes ``(a_0, a_1, ...)`` of the output (from its right) that index data's
    axes 0, 1, ... (so ``output[p] = data[p[a_0], p[a_1], ...]``); else None."""
    if int(attr(node, "batch_dims", 0)) != 0:  # type: ignore[arg-type]
        return None
    idx = node.inputs[1]
    cat = made_by(idx, "Concat", graph)
    r_idx = facts.rank(idx)
    if cat is None or r_idx is None or int(attr(cat, "axis", 0)) not in (-1, r_idx - 1):  # type: ignore[arg-type]
        return None
    axes: list[int] = []
    for part in cat.inputs:
        un = made_by(part, "Unsqueeze", graph)
        if un is None:
            return None
        r_part = facts.rank(un.inputs[0])
        ua = _ints(un.inputs[1], facts, inputs) if len(un.inputs) > 1 \
            else attr(un, "axes", None)
        if r_part is None or r_part != r_idx - 1 or ua is None or len(ua) != 1 \
                or int(ua[0]) % (r_part + 1) != r_part:  # type: ignore[index]
            return None
        fp = index_fn(un.inputs[0], graph, facts, inputs, depth + 1)
        if fp is None or fp[0] != 0:
            return None
        # Concat takes parts of one shape (no broadcasting), so each part's coordinate axis
        # spans the output's axis
        axes.append(fp[1][0])
    return tuple(axes)


def _ints(v: Value | None, facts: Facts, inputs: set[int]) -> list[int] | None:
    """The elements of a small integer constant or of a value shape inference knows."""
    c = constant_of(v, inputs)
    if c is None:
        c = facts.value(v)
    if c is None:
        return None
    c = np.asarray(c)
    if c.ndim > 1 or c.dtype.kind not in "iu":
        return None
    return [int(a) for a in c.ravel()]
