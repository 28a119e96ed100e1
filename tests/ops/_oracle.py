"""The machinery the operator tests share: call a pyonnx kernel the way a session would, build a
one-node ONNX model with ``onnx.helper``, run it in onnxruntime (the oracle) or in
``pyonnx.InferenceSession``, and compare results with exact dtype and shape.

onnx and onnxruntime are imported on first use through ``pytest.importorskip``, so a test that
only calls kernels does not need them; test modules that compare against onnxruntime still skip
as a whole (their own module-level ``importorskip``) when it is missing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from pyonnx.ops.registry import KernelContext, get_kernel, registered_versions, wants_context

#: Inputs of a one-node model, in the node's input order: a mapping name -> array, a sequence of
#: (name, array) pairs, or a sequence of arrays (named ``i0``, ``i1``, ...). An array given as
#: None is an omitted optional input (empty name in the node).
Inputs = Mapping[str, Any] | Sequence[Any]

#: Element type of a declared output: a TensorProto code or anything ``np.dtype`` accepts.
OutputType = int | np.dtype | type


# --------------------------------------------------------------------------------- kernels

def kernel(op: str, opset: int | None = None, domain: str = "",
           fast: bool = False) -> Callable[..., tuple]:
    """The kernel a model importing ``domain`` at version ``opset`` runs for ``op``: the newest
    registered since_version <= ``opset`` (the newest of all when ``opset`` is None); with
    ``fast``, the CPU provider's variant of that version where it has one."""
    versions = [v for v in registered_versions(domain, op) if opset is None or v <= opset]
    assert versions, f"no kernel for {domain or 'ai.onnx'}::{op} at opset {opset}"
    fn = get_kernel(domain, op, versions[-1])
    if fast:
        from pyonnx.backends.cpu.registry import get_fast_kernel

        fn = get_fast_kernel(domain, op, versions[-1]) or fn
    assert fn is not None, f"no kernel for {domain or 'ai.onnx'}::{op} v{versions[-1]}"
    return fn


def context(num_outputs: int = 1, used: Sequence[bool] | None = None, *, seed: int = 0,
            **fields: Any) -> KernelContext:
    """A KernelContext for a node with ``num_outputs`` outputs, of which ``used`` says which are
    wanted (all by default), and a generator seeded with ``seed`` so that runs repeat.
    ``fields`` sets other KernelContext fields (op_type, opset, max_tensor_bytes, ...)."""
    return KernelContext(num_outputs=num_outputs,
                         outputs_used=tuple(used) if used else (True,) * num_outputs,
                         rng=np.random.default_rng(seed), **fields)


def run_kernel(op: str, *inputs: Any, opset: int | None = None, domain: str = "",
               num_outputs: int = 1, used: Sequence[bool] | None = None,
               max_bytes: int = 1 << 40, fast: bool = False, **attrs: Any) -> tuple:
    """Call the kernel of ``op`` at ``opset`` (see :func:`kernel`, also for ``fast``) on
    positional ``inputs`` and attributes ``attrs``; a kernel that takes ``ctx`` gets one for
    ``num_outputs`` outputs (``used`` as in :func:`context`) with ``max_bytes`` as its
    allocation bound."""
    fn = kernel(op, opset, domain, fast)
    if wants_context(fn):
        attrs["ctx"] = context(num_outputs, used, op_type=op, domain=domain, opset=opset or 0,
                               max_tensor_bytes=max_bytes)
    out = fn(*inputs, **attrs)
    assert isinstance(out, tuple), f"{op} kernel returned {type(out).__name__}, not a tuple"
    return out


# ------------------------------------------------------------------------- one-node models

def _named(inputs: Inputs) -> list[tuple[str, Any]]:
    """``inputs`` as (name, array or None) pairs in input order."""
    if isinstance(inputs, Mapping):
        return list(inputs.items())
    return [item if isinstance(item, tuple) else (f"i{k}", item) for k, item in enumerate(inputs)]


def feeds_of(inputs: Inputs, initializers: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The feed dict for a model built from ``inputs``: every given input that is not an
    initializer, as an array (numpy scalars included)."""
    return {n: np.asarray(a) for n, a in _named(inputs) if a is not None and n not in initializers}


def _tensor_type(t: OutputType) -> int:
    from onnx import helper
    return t if isinstance(t, int) else helper.np_dtype_to_tensor_dtype(np.dtype(t))


def one_node_model(op: str, inputs: Inputs, attrs: Mapping[str, Any] | None = None, *,
                   opset: int, domain: str = "", outputs: int | Sequence[str] | None = None,
                   output_types: Sequence[OutputType] | Mapping[int, OutputType] | None = None,
                   initializers: Sequence[str] = (), opsets: Mapping[str, int] | None = None,
                   **more_attrs: Any) -> bytes:
    """The serialized model of one ``op`` node (of ``domain``) with attributes ``attrs`` and
    ``more_attrs``, importing the default domain at ``opset``, ``domain`` at version 1 and
    whatever ``opsets`` adds.

    ``outputs`` is the number of outputs (named ``y0``, ``y1``, ...) or their names, where an
    empty name leaves that output out; by default there are as many as ``output_types`` lists,
    else one. Outputs are untyped, for onnxruntime to infer, except where ``output_types`` (by
    position) declares the element type. Inputs named in ``initializers`` become initializers,
    the others graph inputs typed from their arrays.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    named = _named(inputs)
    if outputs is None:
        outputs = len(output_types) if isinstance(output_types, Sequence) else 1
    outs = [f"y{i}" for i in range(outputs)] if isinstance(outputs, int) else list(outputs)
    types = dict(enumerate(output_types)) if isinstance(output_types, Sequence) \
        else dict(output_types or {})
    node = helper.make_node(op, [n if a is not None else "" for n, a in named], outs,
                            domain=domain or None, **{**(attrs or {}), **more_attrs})
    graph_inputs, inits = [], []
    for name, a in named:
        if a is None:
            continue
        a = np.asarray(a)
        if name in initializers:
            inits.append(numpy_helper.from_array(a, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape))
    graph_outputs = [helper.make_tensor_value_info(o, _tensor_type(types[i]), None) if i in types
                     else helper.make_value_info(o, onnx.TypeProto())
                     for i, o in enumerate(outs) if o]
    imports = {"": opset, **({domain: 1} if domain else {}), **(opsets or {})}
    model = helper.make_model(
        helper.make_graph([node], "g", graph_inputs, graph_outputs, initializer=inits),
        opset_imports=[helper.make_opsetid(d, v) for d, v in imports.items()])
    return model.SerializeToString()


# ------------------------------------------------------------------------------- runtimes

def ort_session_run(model: bytes, feeds: Mapping[str, Any]) -> list[Any]:
    """Run ``model`` in onnxruntime's CPU provider with graph optimizations off (the model as
    written is the reference); skip the test, with onnxruntime's message, where onnxruntime has
    no kernel for it."""
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime lacks some float16/double/integer kernels
        if "NOT_IMPLEMENTED" in str(e):
            pytest.skip(f"onnxruntime has no kernel: {str(e).splitlines()[0]}")
        raise
    return session.run(None, dict(feeds))


def pyonnx_session_run(model: bytes, feeds: Mapping[str, Any]) -> list[Any]:
    """Run ``model`` in a pyonnx.InferenceSession."""
    import pyonnx
    return pyonnx.InferenceSession(model).run(None, dict(feeds))


@functools.lru_cache(maxsize=None)
def ort_u8s8_saturates() -> bool:
    """Whether onnxruntime's uint8 x int8 integer product is inexact on this CPU. On x86 CPUs
    with AVX2 but no VNNI its kernel adds pairs of products in saturating 16-bit lanes
    (``vpmaddubsw``): 255 * -128 twice overflows int16, so full-range int8 weights give wrong
    sums there (seen on an AMD EPYC machine: MatMulInteger off by up to 37,690, onnxruntime's
    own dynamically quantized MLP at cosine 0.989 to its float model). onnxruntime's quantizer
    avoids it with ``reduce_range`` (7-bit weights); a comparison against onnxruntime's integer
    kernels on such a CPU must keep int8 weights to 7 bits (``w >> 1`` keeps the range ends)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    a = rng.choice(np.array([0, 255], np.uint8), size=(2, 64))
    b = rng.choice(np.array([-128, 127], np.int8), size=(64, 4))
    g = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [2, 64])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [2, 4])],
        [numpy_helper.from_array(b, "b")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    y = ort_session_run(model.SerializeToString(), {"a": a})[0]
    return not np.array_equal(y, a.astype(np.int64) @ b.astype(np.int64))


def run_ort(op: str, inputs: Inputs, attrs: Mapping[str, Any] | None = None, *, opset: int,
            **options: Any) -> list[Any]:
    """onnxruntime's outputs for one ``op`` node on ``inputs``; ``options`` are those of
    :func:`one_node_model` (keywords it does not know are attributes)."""
    return ort_session_run(one_node_model(op, inputs, attrs, opset=opset, **options),
                           feeds_of(inputs, options.get("initializers", ())))


def run_pyonnx(op: str, inputs: Inputs, attrs: Mapping[str, Any] | None = None, *, opset: int,
               **options: Any) -> list[Any]:
    """pyonnx.InferenceSession's outputs for one ``op`` node, as :func:`run_ort`."""
    return pyonnx_session_run(one_node_model(op, inputs, attrs, opset=opset, **options),
                              feeds_of(inputs, options.get("initializers", ())))


# ------------------------------------------------------------------------------ comparing

def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind in "fc" or (dtype.kind == "V" and dtype.name.startswith(("bfloat", "float")))


def assert_close(got: Any, want: Any, rtol: float = 1e-5, atol: float = 1e-6, *,
                 what: str = "") -> None:
    """``got`` is an array of exactly ``want``'s dtype and shape whose values are within
    ``atol + rtol * |want|`` of it for floating types (NaN matching NaN) and equal otherwise."""
    prefix = f"{what}: " if what else ""
    assert isinstance(got, np.ndarray), f"{prefix}got {type(got).__name__}, not an ndarray"
    want = np.asarray(want)
    assert got.dtype == want.dtype, f"{prefix}dtype {got.dtype} != expected {want.dtype}"
    assert got.shape == want.shape, f"{prefix}shape {got.shape} != expected {want.shape}"
    if _is_float(want.dtype):
        np.testing.assert_allclose(got.astype(np.complex128 if want.dtype.kind == "c"
                                              else np.float64),
                                   want.astype(np.complex128 if want.dtype.kind == "c"
                                               else np.float64),
                                   rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def assert_same(got: Any, want: Any, *, what: str = "") -> None:
    """``got`` is an array of exactly ``want``'s dtype, shape and values (NaN matching NaN)."""
    prefix = f"{what}: " if what else ""
    assert isinstance(got, np.ndarray), f"{prefix}got {type(got).__name__}, not an ndarray"
    want = np.asarray(want)
    assert got.dtype == want.dtype, f"{prefix}dtype {got.dtype} != expected {want.dtype}"
    assert got.shape == want.shape, f"{prefix}shape {got.shape} != expected {want.shape}"
    np.testing.assert_array_equal(got, want, err_msg=what)


def check(op: str, inputs: Sequence[Any], attrs: Mapping[str, Any] | None, opset: int, *,
          rtol: float = 1e-4, atol: float = 1e-5) -> np.ndarray:
    """Run the default-domain ``op`` kernel at ``opset`` and onnxruntime on the same one-node
    model, assert that the (first) outputs agree (see :func:`assert_close`) and return pyonnx's."""
    want = run_ort(op, inputs, attrs, opset=opset)[0]
    (got, *_) = run_kernel(op, *inputs, opset=opset, **(attrs or {}))
    assert_close(got, want, rtol, atol, what=op)
    return got


def schema_versions(op: str, domain: str = "") -> list[int]:
    """The since_versions of ``op``'s schemas in onnx's table, ascending."""
    defs = pytest.importorskip("onnx.defs")
    return sorted({s.since_version for s in defs.get_all_schemas_with_history()
                   if s.name == op and s.domain == domain})


def normal_f32(rng: np.random.Generator) -> Callable[..., np.ndarray]:
    """A function of a shape that draws standard-normal float32 samples of it from ``rng``."""
    def f32(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)
    return f32
