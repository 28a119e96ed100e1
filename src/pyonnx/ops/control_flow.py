"""Control flow: If, Loop, Scan and SequenceMap, whose bodies arrive as bound Subgraphs.

The runtime compiles each body once into a nested plan that reads outer-scope values directly;
these kernels only decide which body runs, how often, and how outputs are gathered.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyonnx.errors import ExecutionError, ResourceLimitExceeded
from pyonnx.ops._common import normalize_axis
from pyonnx.ir import DataType, TensorType
from pyonnx.ops.registry import KernelContext, Subgraph, kernel

_ALL_VERSIONS_IF = (1, 11, 13, 16, 19, 21, 23, 24, 25)
_ALL_VERSIONS_LOOP = (1, 11, 13, 16, 19, 21, 23, 24, 25)
_SCAN_VERSIONS = (9, 11, 16, 19, 21, 23, 24, 25)


def _scalar_bool(x: Any, what: str) -> bool:
    arr = np.asarray(x)
    if arr.size != 1:
        raise ExecutionError(f"{what} must hold exactly one element, got shape {list(arr.shape)}")
    return bool(arr.reshape(-1)[0])


@kernel("If", versions=_ALL_VERSIONS_IF)
def if_(cond: np.ndarray, *, then_branch: Subgraph, else_branch: Subgraph) -> tuple:
    """Run then_branch when ``cond`` is true, else else_branch; return that branch's outputs."""
    branch = then_branch if _scalar_bool(cond, "If condition") else else_branch
    return tuple(branch())


def _stack(items: list[Any], what: str) -> np.ndarray:
    try:
        return np.stack(items)
    except ValueError as e:
        shapes = sorted({tuple(np.shape(i)) for i in items})
        raise ExecutionError(f"{what} has different shapes across iterations {shapes}: {e}") from e


@kernel("Loop", versions=_ALL_VERSIONS_LOOP)
def loop(M: np.ndarray | None, cond: np.ndarray | None, *v_initial: Any, body: Subgraph,
         ctx: KernelContext) -> tuple:
    """Run ``body`` while the trip count and condition allow, carrying the loop state.

    Body inputs: (iteration number, condition, carried values…); outputs: (condition, carried
    values…, scan outputs…). Scan outputs are stacked along a new first axis.
    """
    n_carried = len(v_initial)
    trip = None if M is None else int(np.asarray(M).reshape(-1)[0])
    keep_going = True if cond is None else _scalar_bool(cond, "Loop condition")
    limit = ctx.max_iterations
    if trip is not None and trip > limit and cond is None:
        raise ResourceLimitExceeded(
            f"Loop trip count {trip} is above the limit of {limit} iterations "
            f"(SessionOptions max_loop_iterations)")
    carried = list(v_initial)
    n_body_out = len(body.output_names)
    n_scan = n_body_out - 1 - n_carried
    if n_scan < 0:
        raise ExecutionError(f"Loop body has {n_body_out} outputs; it needs at least "
                             f"{1 + n_carried} (condition and {n_carried} carried values)")
    scans: list[list[Any]] = [[] for _ in range(n_scan)]
    i = 0
    cond_dtype = np.asarray(cond).dtype if cond is not None else np.dtype(bool)
    while keep_going and (trip is None or i < trip):
        if i >= limit:
            raise ResourceLimitExceeded(
                f"Loop ran {i} iterations, the limit (SessionOptions max_loop_iterations)")
        outs = body(np.array(i, dtype=np.int64), np.array(keep_going, dtype=cond_dtype), *carried)
        keep_going = _scalar_bool(outs[0], "Loop body condition output") if outs[0] is not None \
            else keep_going
        carried = list(outs[1:1 + n_carried])
        for k in range(n_scan):
            scans[k].append(outs[1 + n_carried + k])
        i += 1
    scan_out = []
    for k in range(n_scan):
        if scans[k]:
            first = scans[k][0]
            if isinstance(first, np.ndarray) or np.isscalar(first):
                scan_out.append(_stack(scans[k], f"Loop scan output {k}"))
            else:
                scan_out.append(scans[k])
        else:
            scan_out.append(_no_iterations(body, 1 + n_carried + k))
    return tuple(carried + scan_out)


def _no_iterations(body: Subgraph, index: int) -> np.ndarray:
    """The scan output of zero iterations: an empty stack of the body output ``index``, whose
    element type and per-iteration shape come from the body's declared output type where the
    subgraph states it (``output_types``); otherwise float32 of shape [0], as onnxruntime
    defaults when the shape is not found."""
    types = getattr(body, "output_types", None)
    t = types[index] if types is not None and index < len(types) else None
    if isinstance(t, TensorType) and t.elem_type != DataType.UNDEFINED:
        try:
            dtype = t.elem_type.numpy
        except ValueError:
            dtype = np.dtype(np.float32)
        dims = tuple(t.shape) if t.shape is not None else None
        if dims is not None and all(isinstance(d, int) for d in dims):
            return np.zeros((0,) + dims, dtype=dtype)
        return np.zeros((0,), dtype=dtype)
    return np.zeros((0,), dtype=np.float32)


def _scan_run(body: Subgraph, states: list[Any], scan_inputs: list[np.ndarray],
              num_scan_inputs: int, in_axes: list[int], in_dirs: list[int],
              out_axes: list[int], out_dirs: list[int], limit: int) -> tuple:
    """One Scan over unbatched inputs (opset 9+ semantics)."""
    n_state = len(states)
    if not scan_inputs:
        raise ExecutionError("Scan needs at least one scan input")
    lengths = {x.shape[a] for x, a in zip(scan_inputs, in_axes)}
    if len(lengths) != 1:
        raise ExecutionError(f"Scan inputs have different lengths along their scan axes: "
                             f"{sorted(lengths)}")
    steps = lengths.pop()
    if steps > limit:
        raise ResourceLimitExceeded(f"Scan would run {steps} iterations, above the limit of "
                                    f"{limit} (SessionOptions max_loop_iterations)")
    n_out = len(body.output_names) - n_state
    collected: list[list[Any]] = [[] for _ in range(n_out)]
    for t in range(steps):
        elems = []
        for x, a, d in zip(scan_inputs, in_axes, in_dirs):
            idx = steps - 1 - t if d else t
            elems.append(np.take(x, idx, axis=a))
        outs = body(*states, *elems)
        states = list(outs[:n_state])
        for k in range(n_out):
            collected[k].append(outs[n_state + k])
    results = []
    for k in range(n_out):
        items = collected[k]
        if out_dirs[k]:
            items = items[::-1]
        if items:
            stacked = _stack(items, f"Scan output {k}")
            axis = normalize_axis(out_axes[k], stacked.ndim, "scan_output_axes")
            results.append(np.moveaxis(stacked, 0, axis) if axis else stacked)
        else:
            empty = _no_iterations(body, n_state + k)
            axis = normalize_axis(out_axes[k], empty.ndim, "scan_output_axes")
            results.append(np.moveaxis(empty, 0, axis) if axis else empty)
    return tuple(states + results)


@kernel("Scan", versions=_SCAN_VERSIONS)
def scan(*initial_state_and_scan_inputs: Any, body: Subgraph, num_scan_inputs: int,
         scan_input_axes: list[int] | None = None, scan_input_directions: list[int] | None = None,
         scan_output_axes: list[int] | None = None,
         scan_output_directions: list[int] | None = None, ctx: KernelContext) -> tuple:
    """Iterate ``body`` over slices of the scan inputs, carrying state (opset 9+)."""
    args = list(initial_state_and_scan_inputs)
    n_state = len(args) - num_scan_inputs
    if n_state < 0:
        raise ExecutionError(f"Scan has {len(args)} inputs but num_scan_inputs is "
                             f"{num_scan_inputs}")
    states, xs = args[:n_state], [np.asarray(x) for x in args[n_state:]]
    in_axes = [normalize_axis(a, x.ndim, "scan_input_axes")
               for a, x in zip(scan_input_axes or [0] * len(xs), xs)]
    in_dirs = list(scan_input_directions or [0] * len(xs))
    n_out = len(body.output_names) - n_state
    out_axes = list(scan_output_axes or [0] * n_out)
    out_dirs = list(scan_output_directions or [0] * n_out)
    return _scan_run(body, states, xs, num_scan_inputs, in_axes, in_dirs, out_axes, out_dirs,
                     ctx.max_iterations)


@kernel("Scan", versions=(8,))
def scan_8(sequence_lens: np.ndarray | None, *initial_state_and_scan_inputs: Any,
           body: Subgraph, num_scan_inputs: int, directions: list[int] | None = None,
           ctx: KernelContext) -> tuple:
    """Opset-8 Scan: inputs carry a batch axis 0 and the scan axis 1; per-batch lengths."""
    args = list(initial_state_and_scan_inputs)
    n_state = len(args) - num_scan_inputs
    states, xs = args[:n_state], [np.asarray(x) for x in args[n_state:]]
    batch = xs[0].shape[0]
    max_len = xs[0].shape[1]
    lens = (np.full(batch, max_len, dtype=np.int64) if sequence_lens is None
            else np.asarray(sequence_lens).astype(np.int64))
    n_out = len(body.output_names) - n_state
    dirs = list(directions or [0] * len(xs))
    final_states: list[list[Any]] = [[] for _ in range(n_state)]
    outs: list[list[Any]] = [[] for _ in range(n_out)]
    for b in range(batch):
        n = int(lens[b])
        if not 0 <= n <= max_len:
            raise ExecutionError(f"Scan sequence_lens[{b}] = {n} is outside [0, {max_len}]")
        res = _scan_run(body, [s[b] for s in states], [x[b, :n] for x in xs], num_scan_inputs,
                        [0] * len(xs), dirs, [0] * n_out, [0] * n_out, ctx.max_iterations) \
            if n else tuple([s[b] for s in states])
        for k in range(n_state):
            final_states[k].append(res[k])
        for k in range(n_out):
            o = res[n_state + k] if n else None
            if o is None or o.shape[0] < max_len:
                ref = o if o is not None else None
                if ref is None:
                    raise ExecutionError("Scan-8 with a zero-length sequence cannot infer the "
                                         "scan output shape")
                pad = np.zeros((max_len - o.shape[0],) + o.shape[1:], dtype=o.dtype)
                o = np.concatenate([o, pad])
            outs[k].append(o)
    return tuple([np.stack(s) for s in final_states] + [np.stack(o) for o in outs])


@kernel("SequenceMap", versions=(17,))
def sequence_map(input_sequence: list[Any], *additional_inputs: Any, body: Subgraph) -> tuple:
    """Apply ``body`` to each element (and the matching element of sequence extra inputs)."""
    n = len(input_sequence)
    for k, extra in enumerate(additional_inputs):
        if isinstance(extra, list) and len(extra) != n:
            raise ExecutionError(f"SequenceMap additional input {k} has {len(extra)} elements, "
                                 f"the input sequence {n}")
    n_out = len(body.output_names)
    results: list[list[Any]] = [[] for _ in range(n_out)]
    for i in range(n):
        extras = [e[i] if isinstance(e, list) else e for e in additional_inputs]
        outs = body(input_sequence[i], *extras)
        for k in range(n_out):
            results[k].append(outs[k])
    return tuple(results)
