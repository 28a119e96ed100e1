"""``pyonnx.optimize``: the offline optimizer, whose output any runtime can run, verified by a
run of the original and the result.

``level="basic"`` writes standard ONNX operators only and keeps the opset imports;
``level="extended"`` adds the com.microsoft fused operators onnxruntime runs (Gelu, BiasGelu,
FastGelu, SkipLayerNormalization, FusedConv, and MultiHeadAttention where no softmax row can be
fully masked). pyonnx-private operators (domain ``pyonnx``) are never in the result: those
fusions happen only inside a session.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from pyonnx.errors import InvalidArgument
from pyonnx.ir import Model
from pyonnx.optimizer._copy import copy_model
from pyonnx.optimizer._core import Pass, PassManager, all_graphs
from pyonnx.optimizer._facts import forget_facts
from pyonnx.optimizer._rewrite import FUSED_DOMAIN

__all__ = ["optimize_model", "LEVELS", "op_counts"]

LEVELS = ("basic", "extended")


def _pipeline(level: str, passes: Sequence[str | Pass] | None) -> list[Pass]:
    from pyonnx.optimizer import PASSES, basic_passes, extended_passes
    from pyonnx.optimizer.passes import EliminateDeadCode

    if level not in LEVELS:
        raise InvalidArgument(f"optimize: level must be one of {', '.join(LEVELS)}, got {level!r}")
    if passes is None:
        out = basic_passes()
        return out + extended_passes() if level == "extended" else out
    out = []
    for p in passes:
        if isinstance(p, Pass):
            out.append(p)
            continue
        make = PASSES.get(str(p))
        if make is None:
            raise InvalidArgument(f"optimize: unknown pass {p!r}; known: {', '.join(PASSES)}")
        inst = make()  # type: ignore[operator]
        if level == "basic" and str(p) in ("fuse_gelu", "fuse_skip_layer_norm", "fuse_conv_add",
                                           "fuse_activation", "fuse_matmul_transpose",
                                           "fuse_multi_head_attention",
                                           "fuse_dynamic_quantize_matmul"):
            raise InvalidArgument(f"optimize: pass {p!r} writes com.microsoft operators; it "
                                  f"needs level='extended'")
        out.append(inst)
    if not any(isinstance(p, EliminateDeadCode) for p in out):
        out.append(EliminateDeadCode())  # what a rewrite leaves unused goes
    return out


def op_counts(model: Model) -> dict[str, int]:
    """How many nodes of each operator (``domain::op_type`` outside the default domain) the
    model has, subgraphs and function bodies included."""
    counts: dict[str, int] = {}
    graphs = list(all_graphs(model.graph))
    for f in model.functions:
        graphs.extend(all_graphs(f.graph))
    for g in graphs:
        for n in g.nodes:
            key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def optimize_model(model: Model | str | os.PathLike | bytes, *, level: str = "basic",
                   passes: Sequence[str | Pass] | None = None,
                   input_shapes: dict[str, Sequence[int | str | None]] | None = None,
                   verify: bool | int = True,
                   verify_inputs: Sequence[dict[str, np.ndarray]] | None = None,
                   max_iterations: int = 8) -> Model:
    """An optimized copy of ``model`` (a Model, a path or bytes; a given Model is not modified).

    ``level``: ``"basic"`` (standard operators, opset imports unchanged) or ``"extended"`` (also
    com.microsoft fused operators). ``passes``: names (see ``pyonnx.optimizer.PASSES``) or Pass
    objects to run instead of the level's list. ``input_shapes`` ({input: dims}) fixes input dims
    first, which lets more shape computations fold; the result then accepts only those shapes.
    ``verify``: True (2 input sets), a number of random input sets, or False; ``verify_inputs``
    gives the input sets instead of random ones. A mismatch raises
    :class:`~pyonnx.errors.VerificationError` naming the pass and the first value that drifted.
    """
    from pyonnx.io import load

    if isinstance(model, Model):
        source = model
    else:
        source = load(model)
    start = copy_model(source)
    if input_shapes:
        from pyonnx.shape_inference.engine import _apply_input_shapes

        _apply_input_shapes(start, dict(input_shapes))
    pipeline = _pipeline(level, passes)
    manager = PassManager(pipeline, max_iterations=max_iterations)
    result = manager(copy_model(start)).model
    if hasattr(result, "_pyonnx_opt_names"):
        del result._pyonnx_opt_names
    _check_portable(result)
    n_sets = 0 if verify is False else (2 if verify is True else int(verify))
    if verify_inputs is not None or n_sets > 0:
        from pyonnx.optimizer.verify import random_feeds, verify_or_raise

        feeds = list(verify_inputs) if verify_inputs is not None else random_feeds(start, n_sets)
        applied = list(manager.applied)

        def replay(k: int) -> Model:
            m = copy_model(start)
            for p in applied[:k]:
                m = p(m).model
                forget_facts(m)  # as the pass manager does after each change
            return m

        verify_or_raise(start, result, feeds, replay, applied)
    return result


def _check_portable(model: Model) -> None:
    """No pyonnx-private operator may reach a result that is written (a bug guard)."""
    for g in all_graphs(model.graph):
        for n in g.nodes:
            if n.domain == FUSED_DOMAIN:
                raise AssertionError(f"optimize produced the pyonnx-private {n.describe()}")
    model.opset_imports.pop(FUSED_DOMAIN, None)
