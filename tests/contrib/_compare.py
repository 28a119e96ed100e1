"""Build one-node models of com.microsoft operators and run them in onnxruntime and pyonnx.

A thin layer over tests/ops/_oracle.py with the contrib tests' conventions: inputs as (name,
array) pairs, the com.microsoft domain and default opset 17, looser float tolerances, and
``assert_close(reference, got)`` argument order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tests.ops import _oracle

FLOAT_RTOL = 1e-3
FLOAT_ATOL = 1e-5

Pairs = Sequence[tuple[str, np.ndarray | None]]


def one_node_model(op: str, inputs: Pairs, n_out: int = 1, attrs: dict[str, Any] | None = None,
                   domain: str = "com.microsoft", opset: int = 17,
                   outputs: Sequence[str] | None = None, initializers: Sequence[str] = (),
                   output_types: dict[int, np.dtype] | None = None) -> bytes:
    """A model with one ``op`` node; an input given as None is left out (empty name).

    Inputs named in ``initializers`` become initializers (constant weights), others graph inputs.
    ``output_types`` declares the element type of outputs that onnxruntime cannot infer.
    """
    return _oracle.one_node_model(op, list(inputs), attrs, opset=opset, domain=domain,
                                  outputs=n_out if outputs is None else outputs,
                                  output_types=output_types, initializers=initializers,
                                  opsets={"com.microsoft": 1})


def feeds(inputs: Pairs, initializers: Sequence[str] = ()) -> dict[str, np.ndarray]:
    return _oracle.feeds_of(list(inputs), initializers)


def run_both(model: bytes, feed: dict[str, np.ndarray]) -> tuple[list[Any], list[Any]]:
    """(onnxruntime outputs, pyonnx outputs) for one model and feed."""
    return _oracle.ort_session_run(model, feed), _oracle.pyonnx_session_run(model, feed)


def assert_close(ref: Any, got: Any, rtol: float = FLOAT_RTOL, atol: float = FLOAT_ATOL,
                 what: str = "") -> None:
    """``got`` has onnxruntime's (``ref``'s) dtype and shape, and its values within tolerance
    (floats) or equal (others)."""
    _oracle.assert_close(np.asarray(got), ref, rtol, atol, what=what)


def compare(op: str, inputs: Pairs, n_out: int = 1, attrs: dict[str, Any] | None = None,
            domain: str = "com.microsoft", outputs: Sequence[str] | None = None,
            initializers: Sequence[str] = (), rtol: float = FLOAT_RTOL, atol: float = FLOAT_ATOL,
            opset: int = 17, skip_outputs: Sequence[int] = (),
            output_types: dict[int, np.dtype] | None = None) -> list[Any]:
    """Run a one-node model in both runtimes and assert that every output agrees."""
    model = one_node_model(op, inputs, n_out, attrs, domain, opset, outputs, initializers,
                           output_types)
    ref, got = run_both(model, feeds(inputs, initializers))
    assert len(got) == len(ref)
    for i, (r, g) in enumerate(zip(ref, got)):
        if i not in skip_outputs:
            assert_close(r, g, rtol, atol, what=f"{op} output {i}")
    return got
