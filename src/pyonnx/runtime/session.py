"""``InferenceSession``: onnxruntime's Python API over pyonnx's plans and kernels.

Code written for onnxruntime works by changing the import::

    import pyonnx as ort
    sess = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
    outputs = sess.run(None, {"input": x})
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from pyonnx.defs.custom import custom_op_scope
from pyonnx.errors import InvalidArgument
from pyonnx.io import load as _load
from pyonnx.io import save as _save
from pyonnx.io.limits import check_nesting_depth
from pyonnx.ir import (
    DataType,
    MapType,
    Model,
    OptionalType,
    SequenceType,
    SparseTensorType,
    TensorType,
    Type,
    Value,
)
from pyonnx.optimizer import FUSED_DOMAIN, copy_model, optimize, optimize_private
from pyonnx.runtime.arena import enable_arena
from pyonnx.runtime.options import RunOptions, SessionOptions
from pyonnx.runtime.plan import Plan, PlanConfig, _RunState, check_structure

__all__ = ["InferenceSession", "NodeArg", "ModelMetadata", "get_available_providers",
           "get_device"]

_PROVIDERS = ["CPUExecutionProvider"]


def get_available_providers() -> list[str]:
    """Execution providers this pyonnx can run (onnxruntime's names)."""
    return list(_PROVIDERS)


def get_device() -> str:
    """The device kind sessions run on, as onnxruntime reports it."""
    return "CPU"


class NodeArg:
    """A graph input or output as onnxruntime describes it: name, type string, shape."""

    __slots__ = ("name", "type", "shape")

    def __init__(self, name: str, type: str, shape: list[int | str | None] | None) -> None:
        self.name = name
        self.type = type
        self.shape = shape

    def __repr__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


class ModelMetadata:
    """What ``get_modelmeta()`` returns (onnxruntime's attribute names)."""

    def __init__(self, model: Model) -> None:
        self.producer_name = model.producer_name
        self.graph_name = model.graph.name
        self.domain = model.domain
        self.description = model.doc_string
        self.graph_description = model.graph.doc_string
        self.version = model.model_version
        self.custom_metadata_map = dict(model.metadata_props)


def _type_string(t: Type | None) -> str:
    return str(t) if t is not None else "unknown"


def _node_arg(v: Value) -> NodeArg:
    t = v.type
    shape: list[int | str | None] | None = None
    if isinstance(t, (TensorType, SparseTensorType)) and t.shape is not None:
        shape = list(t.shape)
    elif isinstance(t, (TensorType, SparseTensorType)):
        shape = None
    return NodeArg(v.name, _type_string(t), shape if shape is not None else
                   ([] if not isinstance(t, (TensorType, SparseTensorType)) else None))


class InferenceSession:
    """Runs a model. Creation loads and compiles it once; ``run`` executes the compiled plan.

    ``path_or_bytes`` is a path, bytes, or a :class:`pyonnx.ir.Model`. ``providers`` lists
    execution providers by preference; one pyonnx lacks is skipped with a warning (an error when
    ``sess_options.strict_providers`` is set), as onnxruntime falls back.
    """

    def __init__(self, path_or_bytes: str | os.PathLike | bytes | Model,
                 sess_options: SessionOptions | None = None,
                 providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
                 provider_options: Sequence[dict[str, Any]] | None = None,
                 **kwargs: Any) -> None:
        # the options' custom operators are visible to everything creation does (optimizer,
        # plan), and to nothing else: the plan binds their kernels, so runs need no scope
        custom = getattr(sess_options, "_custom_ops", ())
        with custom_op_scope(custom):
            self._create(path_or_bytes, sess_options, providers, provider_options)

    def _create(self, path_or_bytes: str | os.PathLike | bytes | Model,
                sess_options: SessionOptions | None,
                providers: Sequence[str | tuple[str, dict[str, Any]]] | None,
                provider_options: Sequence[dict[str, Any]] | None) -> None:
        self._options = sess_options if sess_options is not None else SessionOptions()
        self._providers, self._provider_options = self._choose_providers(providers,
                                                                        provider_options)
        opts = self._options
        if opts.enable_cpu_mem_arena:
            enable_arena()
        if isinstance(path_or_bytes, Model):
            model = path_or_bytes
            self._model_path = None
            check_nesting_depth(model, opts.max_nesting_depth)  # load checks the others
        else:
            model = _load(path_or_bytes, allow_hardlinks=opts.allow_external_data_hardlinks,
                          max_nesting_depth=opts.max_nesting_depth)
            self._model_path = (os.fspath(path_or_bytes)
                                if isinstance(path_or_bytes, (str, os.PathLike)) else None)
        check_structure(model.graph)
        for f in model.functions:
            check_structure(f.graph)
        level = int(opts.graph_optimization_level)
        if level > 0:
            # the caller's Model is never modified: rewrite a copy that shares the weights
            model = _optimized(model, level)
        if opts.optimized_model_filepath:
            _save(model, opts.optimized_model_filepath)  # standard / com.microsoft ops only
        if level > 0:
            model = _optimized(model, level, private=True)  # pyonnx-private fusions
        self._model = model
        self._set_threads()
        functions = {f.key: f for f in model.functions}
        opsets = {("" if d == "ai.onnx" else d): v for d, v in model.opset_imports.items()}
        opsets.setdefault(FUSED_DOMAIN, 1)  # the optimizer's fused kernels
        config = PlanConfig(
            opsets=opsets,
            functions=functions, max_tensor_bytes=opts.max_tensor_bytes,
            max_nesting_depth=opts.max_nesting_depth,
            max_loop_iterations=opts.max_loop_iterations)
        self._plan = Plan(model.graph, config)
        g = model.graph
        init_names = set(g.initializers) | set(g.sparse_initializers)
        self._inputs = [v for v in g.inputs if v.name not in init_names]
        # before IR version 4 every initializer had to be a graph input too; onnxruntime treats
        # those as constants, not as inputs a feed may override
        self._overridable = ([v for v in g.inputs if v.name in init_names]
                             if model.ir_version >= 4 else [])
        self._outputs = list(g.outputs)
        self._input_index = {v.name: i for i, v in enumerate(g.inputs)
                             if v.name not in init_names or model.ir_version >= 4}
        self._output_index = {v.name: i for i, v in enumerate(g.outputs)}
        self._defaults = [self._plan.constants.get(s) for s in self._plan.input_slots]
        self._const_output = [s in self._plan.constants or s in self._plan.input_slots
                              for s in self._plan.output_slots]
        # (node, start ns, duration ns, inputs) per executed node, see Plan._run_checked
        self._profile_events: list[tuple[Any, ...]] | None = [] if opts.enable_profiling else None
        self._profile_start_ns = time.time_ns()

    # ------------------------------------------------------------------ providers & threads

    def _choose_providers(self, providers: Any, provider_options: Any
                          ) -> tuple[list[str], list[dict[str, Any]]]:
        if providers is None:
            return list(_PROVIDERS), [{}]
        names: list[str] = []
        options: list[dict[str, Any]] = []
        for i, p in enumerate(providers):
            if isinstance(p, (tuple, list)):
                name, popts = p[0], dict(p[1]) if len(p) > 1 else {}
            else:
                name = p
                popts = dict(provider_options[i]) if provider_options and i < len(provider_options) else {}
            if not isinstance(name, str):
                raise InvalidArgument(f"providers[{i}] must be a provider name, got {name!r}")
            if name in _PROVIDERS:
                names.append(name)
                options.append({str(k): str(v) for k, v in popts.items()})
                continue
            msg = (f"{name} is not available in pyonnx (available: "
                   f"{', '.join(_PROVIDERS)})")
            if self._options.strict_providers:
                raise InvalidArgument(msg + "; strict_providers is set, so this is an error")
            warnings.warn(msg + "; falling back to the next provider", RuntimeWarning,
                          stacklevel=3)
        if not names:
            names, options = list(_PROVIDERS), [{}]
        return names, options

    def _set_threads(self) -> None:
        """``intra_op_num_threads`` > 0 limits the BLAS pool while this session runs."""
        n = int(self._options.intra_op_num_threads or 0)
        self._threads = n
        self._thread_controller: Any = None
        if n > 0:
            from threadpoolctl import ThreadpoolController

            self._thread_controller = ThreadpoolController()

    # ------------------------------------------------------------------ onnxruntime surface

    def get_inputs(self) -> list[NodeArg]:
        """The inputs a caller must (or may) feed, without initializer-backed ones."""
        return [_node_arg(v) for v in self._inputs]

    def get_outputs(self) -> list[NodeArg]:
        """The graph outputs."""
        return [_node_arg(v) for v in self._outputs]

    def get_overridable_initializers(self) -> list[NodeArg]:
        """Graph inputs that have an initializer: feeding them overrides the stored value."""
        return [_node_arg(v) for v in self._overridable]

    def get_modelmeta(self) -> ModelMetadata:
        """Producer, graph name, description, version and custom metadata."""
        return ModelMetadata(self._model)

    def get_providers(self) -> list[str]:
        """The providers this session uses, in preference order."""
        return list(self._providers)

    def get_provider_options(self) -> dict[str, dict[str, str]]:
        """Options per provider, as given."""
        return {n: dict(o) for n, o in zip(self._providers, self._provider_options)}

    def get_session_options(self) -> SessionOptions:
        """The options the session was created with."""
        return self._options

    def get_profiling_start_time_ns(self) -> int:
        """When profiling started (ns since the epoch)."""
        return self._profile_start_ns

    def set_providers(self, providers: Sequence[str] | None = None,
                      provider_options: Sequence[dict[str, Any]] | None = None) -> None:
        """Choose providers again (only the CPU provider exists)."""
        self._providers, self._provider_options = self._choose_providers(providers,
                                                                        provider_options)

    def disable_fallback(self) -> None:
        """Accepted for compatibility: pyonnx has no provider to fall back from."""

    def enable_fallback(self) -> None:
        """Accepted for compatibility: pyonnx has no provider to fall back from."""

    @property
    def model(self) -> Model:
        """The model being run (pyonnx extension)."""
        return self._model

    # ------------------------------------------------------------------ run

    def run(self, output_names: Sequence[str] | None, input_feed: dict[str, Any],
            run_options: RunOptions | None = None) -> list[Any]:
        """Run the model and return the requested outputs (all when ``output_names`` is None).

        Tensors come back as NumPy arrays, sequences as lists, maps as dicts, an empty optional
        as None. Feeds are checked before any kernel runs.
        """
        if output_names is None or len(output_names) == 0:
            out_idx = list(range(len(self._outputs)))
        else:
            out_idx = []
            for n in output_names:
                i = self._output_index.get(n)
                if i is None:
                    raise InvalidArgument(
                        f"output {n!r} is not an output of the model (outputs: "
                        f"{', '.join(v.name for v in self._outputs)})")
                out_idx.append(i)
        feeds = self._validate_feeds(input_feed)
        deadline = (time.monotonic() + self._options.run_timeout_s
                    if self._options.run_timeout_s else 0.0)
        profile = [] if self._profile_events is not None else None
        state = _RunState(run_options, deadline, profile, self._options.max_run_bytes)
        if self._thread_controller is not None:
            with self._thread_controller.limit(limits=self._threads, user_api="blas"):
                results = self._plan.execute(feeds, state)
        else:
            results = self._plan.execute(feeds, state)
        if profile is not None:
            self._profile_events.extend(profile)  # type: ignore[union-attr]
        out = []
        for i in out_idx:
            r = results[i]
            if isinstance(r, np.ndarray) and (self._const_output[i] or not r.flags.writeable):
                r = r.copy()  # never hand out our constants or read-only views of them
            out.append(r)
        return out

    def _validate_feeds(self, input_feed: dict[str, Any]) -> list[Any]:
        if not isinstance(input_feed, dict):
            raise InvalidArgument(f"input_feed must be a dict of name -> value, got "
                                  f"{type(input_feed).__name__}")
        values = list(self._defaults)
        for name, value in input_feed.items():
            i = self._input_index.get(name)
            if i is None:
                raise InvalidArgument(
                    f"input {name!r} is not an input of the model (inputs: "
                    f"{', '.join(v.name for v in self._inputs) or 'none'})")
            values[i] = self._check_value(self._model.graph.inputs[i], value)
        missing = [v.name for v, val in zip(self._model.graph.inputs, values)
                   if val is None and v.name not in input_feed and not _is_optional(v)]
        if missing:
            raise InvalidArgument(f"missing required input(s): {', '.join(missing)}")
        return values

    def _check_value(self, v: Value, value: Any) -> Any:
        t = v.type
        if isinstance(t, TensorType):
            if isinstance(value, np.generic):
                value = np.asarray(value)
            if not isinstance(value, np.ndarray):
                raise InvalidArgument(
                    f"input {v.name!r} expects {t} as a numpy.ndarray, got "
                    f"{type(value).__name__}")
            if value.dtype.kind in ("U", "S") and t.elem_type == DataType.STRING:
                value = value.astype(object)
            expected = t.elem_type.numpy if t.elem_type != DataType.UNDEFINED else value.dtype
            if value.dtype != expected and value.dtype.newbyteorder("=") == expected:
                value = value.astype(expected)  # the same numbers in the other byte order
            if value.dtype != expected:
                got = (f"tensor({DataType.from_numpy(value.dtype).onnx_name})"
                       if _known_dtype(value.dtype) else f"numpy {value.dtype}")
                raise InvalidArgument(
                    f"input {v.name!r} has the wrong element type: got {got}, expected {t}")
            if t.shape is not None:
                if value.ndim != len(t.shape):
                    raise InvalidArgument(
                        f"input {v.name!r} has rank {value.ndim} (shape {list(value.shape)}), "
                        f"expected rank {len(t.shape)} (shape {_fmt_shape(t.shape)})")
                free = self._options._free_dims
                for axis, (d, actual) in enumerate(zip(t.shape, value.shape)):
                    want = free.get(d, d) if isinstance(d, str) else d
                    if isinstance(want, int) and want != actual:
                        raise InvalidArgument(
                            f"input {v.name!r} has dimension {actual} at axis {axis}, expected "
                            f"{want} (shape {_fmt_shape(t.shape)}, got {list(value.shape)})")
            return value
        if isinstance(t, SequenceType):
            if not isinstance(value, (list, tuple)):
                raise InvalidArgument(f"input {v.name!r} expects {t} as a list, got "
                                      f"{type(value).__name__}")
            if t.elem_type is None:
                return list(value)
            # each element is checked as an input of the element type would be
            return [self._check_value(Value(f"{v.name}[{i}]", t.elem_type), e)
                    for i, e in enumerate(value)]
        if isinstance(t, MapType):
            if not isinstance(value, dict):
                raise InvalidArgument(f"input {v.name!r} expects {t} as a dict, got "
                                      f"{type(value).__name__}")
            return value
        if isinstance(t, OptionalType):
            if value is None:
                return None
            inner = Value(v.name, t.elem_type)
            return self._check_value(inner, value) if t.elem_type is not None else value
        return value

    # ------------------------------------------------------------------ profiling

    def end_profiling(self) -> str:
        """Write the collected per-node timings as a Chrome trace JSON; return its path."""
        if self._profile_events is None:
            return ""
        events = []
        base = None
        for node, start_ns, dur_ns, inputs in self._profile_events:
            if base is None:
                base = start_ns
            events.append({
                "name": node.name or node.op_type, "cat": "Node", "ph": "X", "pid": 0, "tid": 0,
                "ts": (start_ns - base) / 1000.0, "dur": dur_ns / 1000.0,
                "args": {"op_type": node.op_type, "domain": node.domain,
                         "input_shapes": [i if isinstance(i, str) else
                                          f"{i[0]}[{','.join(str(d) for d in i[1])}]"
                                          for i in inputs]},
            })
        prefix = self._options.profile_file_prefix or "pyonnx_profile"
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        path = os.path.abspath(f"{prefix}_{stamp}.json")
        try:
            with open(path, "w") as f:
                json.dump(events, f)
        except OSError:
            fd, path = tempfile.mkstemp(prefix=prefix, suffix=".json")
            with os.fdopen(fd, "w") as f:
                json.dump(events, f)
        self._profile_events = []
        return path


def _optimized(model: Model, level: int, private: bool = False) -> Model:
    """The model rewritten by the optimizer at ``level``; the model as given when a pass fails.

    Optimization is only ever an improvement: a pass that trips over a hostile or unusual model
    (a bug, or an input too large to fold) must not stop the session. The plan then compiles the
    unoptimized graph and reports any real problem of the model, with its own limits.
    """
    try:
        if private:  # the pyonnx-private fusions, after anything is written
            return optimize_private(copy_model(model), level)
        return optimize(copy_model(model), level, private=False)
    except Exception as e:  # noqa: BLE001 - any failure: run unoptimized
        warnings.warn(f"graph optimization failed ({type(e).__name__}: {e}); running the model "
                      f"without it", RuntimeWarning, stacklevel=3)
        return model


def _is_optional(v: Value) -> bool:
    return isinstance(v.type, OptionalType)


def _known_dtype(dt: np.dtype) -> bool:
    try:
        DataType.from_numpy(dt)
        return True
    except ValueError:
        return False


def _fmt_shape(shape: Any) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"

