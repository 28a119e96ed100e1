"""``InferenceSession``: onnxruntime's Python API over pyonnx's plans and kernels.

Code written for onnxruntime works by changing the import::

    import pyonnx as ort
    sess = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
    outputs = sess.run(None, {"input": x})
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pyonnx.backends import Provider, create_provider
from pyonnx.defs.custom import custom_op_scope
from pyonnx.errors import (
    InvalidArgument,
    InvalidArgumentType,
    InvalidRequest,
    ModelFileNotFound,
    NotSupported,
    OrtFail,
)
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
    Tensor,
    TensorType,
    Type,
    Value,
)
from pyonnx.ops._common import quiet_float_errors
from pyonnx.optimizer import FUSED_DOMAIN, copy_model, optimize, run_passes
from pyonnx.runtime.environment import (
    get_all_providers,
    get_available_providers,
    get_device,
    log,
)
from pyonnx.runtime.iobinding import IOBinding
from pyonnx.runtime.options import (
    ExecutionMode,
    GraphOptimizationLevel,
    RunOptions,
    SessionOptions,
)
from pyonnx.runtime.ortvalue import (
    OrtMemoryInfo,
    OrtValue,
    OrtValueVector,
    SparseTensor,
    string_array,
)
from pyonnx.runtime.parallel import ParallelExecutor, inter_op_threads
from pyonnx.runtime.plan import Plan, PlanConfig, _RunState, check_structure

__all__ = ["InferenceSession", "NodeArg", "ModelMetadata", "get_available_providers",
           "get_device", "OrtEpAssignedSubgraph", "OrtEpAssignedNode"]


# config keys whose effect pyonnx cannot provide and that would change results or written files:
# key -> (values that are harmless, why pyonnx refuses the others)
_UNHONOURABLE_CONFIG = {
    "session.load_model_format": ({"", "ONNX"}, "pyonnx reads ONNX models only, not ORT format"),
    "session.save_model_format": ({"", "ONNX"}, "pyonnx writes ONNX models only, not ORT format"),
    "session.set_denormal_as_zero": ({"", "0"}, "NumPy cannot flush denormals to zero, so "
                                                "results would differ"),
    "optimization.enable_gelu_approximation": ({"", "0"}, "pyonnx computes Gelu exactly; the "
                                                          "approximation would change results"),
    "mlas.enable_gemm_fastmath_arm64_bfloat16": ({"", "0"}, "pyonnx computes float32 GEMMs in "
                                                            "float32; bfloat16 fast math would "
                                                            "change results"),
    "ep.context_enable": ({"", "0"}, "pyonnx writes no EP context models"),
    "session.collect_node_memory_stats_to_file": (set(), "pyonnx writes no node memory "
                                                         "statistics file"),
}
_EXTERNAL_FILE_KEY = "session.optimized_model_external_initializers_file_name"
_EXTERNAL_MIN_SIZE_KEY = "session.optimized_model_external_initializers_min_size_in_bytes"
_RECORD_ASSIGNMENT_KEY = "session.record_ep_graph_assignment_info"
_STRICT_SHAPES_KEY = "session.strict_shape_type_inference"


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


def _node_arg(v: Value, shape: list[int | str | None] | None = None) -> NodeArg:
    t = v.type
    if shape is None and isinstance(t, (TensorType, SparseTensorType)) and t.shape is not None:
        shape = list(t.shape)
    return NodeArg(v.name, _type_string(t), shape if shape is not None else
                   ([] if not isinstance(t, (TensorType, SparseTensorType)) else None))


def _overridden_shape(t: Type | None, options: SessionOptions) -> list[int | str | None] | None:
    """A tensor input's dims with the session's free-dimension overrides applied (by dim name,
    then by dim denotation), as onnxruntime shows them in ``get_inputs()``."""
    if not isinstance(t, TensorType) or t.shape is None:
        return None
    names, denots = options._free_dims, options._free_dim_denotations
    dens = t.denotations or ()
    out: list[int | str | None] = []
    for i, d in enumerate(t.shape):
        if isinstance(d, str) and d in names:
            d = names[d]
        elif not isinstance(d, int) and i < len(dens) and dens[i] in denots:
            d = denots[dens[i]]
        out.append(d)
    return out


def _fixed_symbols(inputs: Sequence[Value], options: SessionOptions) -> dict[str, int]:
    """Symbolic dim name -> value for every symbol the free-dimension overrides fix: those named
    directly, and those on an input dim whose denotation is overridden."""
    fixed = dict(options._free_dims)
    if options._free_dim_denotations:
        for v in inputs:
            t = v.type
            if not isinstance(t, TensorType) or t.shape is None or not t.denotations:
                continue
            for d, den in zip(t.shape, t.denotations):
                if isinstance(d, str) and den in options._free_dim_denotations:
                    fixed.setdefault(d, options._free_dim_denotations[den])
    return fixed


def _with_symbols(t: Type | None, fixed: dict[str, int]) -> list[int | str | None] | None:
    if not isinstance(t, TensorType) or t.shape is None:
        return None
    return [fixed.get(d, d) if isinstance(d, str) else d for d in t.shape]


class OrtEpAssignedNode:
    """A node as ``get_provider_graph_assignment_info`` describes it."""

    __slots__ = ("name", "op_type", "domain")

    def __init__(self, name: str, op_type: str, domain: str) -> None:
        self.name, self.op_type, self.domain = name, op_type, domain

    def __repr__(self) -> str:
        return f"OrtEpAssignedNode({self.domain}:{self.op_type}/{self.name})"


class OrtEpAssignedSubgraph:
    """Nodes assigned to one execution provider."""

    __slots__ = ("ep_name", "_nodes")

    def __init__(self, ep_name: str, nodes: list[OrtEpAssignedNode]) -> None:
        self.ep_name, self._nodes = ep_name, nodes

    def get_nodes(self) -> list[OrtEpAssignedNode]:
        return list(self._nodes)


class _CSession:
    """onnxruntime's C-level session (``InferenceSession._sess``): the same runs with the C
    API's argument order, returning OrtValueVector."""

    def __init__(self, session: "InferenceSession") -> None:
        self._session = session

    def run(self, output_names: Sequence[str], input_feed: dict[str, Any],
            run_options: RunOptions | None = None) -> list[Any]:
        return self._session.run(output_names, input_feed, run_options)

    def run_with_ort_values(self, input_dict: dict[str, Any], output_names: Sequence[str],
                            run_options: RunOptions | None = None) -> OrtValueVector:
        return OrtValueVector(self._session.run_with_ort_values(output_names, input_dict,
                                                                run_options))

    def run_with_iobinding(self, iobinding: IOBinding,
                           run_options: RunOptions | None = None) -> None:
        self._session.run_with_iobinding(iobinding, run_options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class InferenceSession:
    """Runs a model. Creation loads and compiles it once; ``run`` executes the compiled plan.

    ``path_or_bytes`` is a path, bytes, or a :class:`pyonnx.ir.Model`. ``providers`` lists
    execution providers by preference; one pyonnx lacks is skipped with a warning (an error when
    ``sess_options.strict_providers`` is set), as onnxruntime falls back.

    Besides ``run``, onnxruntime's other ways to run are here with its semantics:
    ``run_with_ort_values`` (OrtValues in and out), ``run_with_iobinding`` (with
    ``io_binding()``), and ``run_async`` (a callback on a worker thread). ``_sess`` is the
    stand-in for onnxruntime's C-level session that some onnxruntime code reaches for.
    Every run is independent: a session may run from several threads at once.
    """

    def __init__(self, path_or_bytes: str | os.PathLike | bytes | Model,
                 sess_options: SessionOptions | None = None,
                 providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
                 provider_options: Sequence[dict[str, Any]] | None = None,
                 **kwargs: Any) -> None:
        if sess_options is not None and not isinstance(sess_options, SessionOptions):
            raise InvalidArgumentType(f"sess_options must be a SessionOptions, got "
                                      f"{type(sess_options).__name__}")
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
        logid = opts.logid
        _check_config(opts)
        providers = self._make_providers()
        log(0, f"Loading the model for session {logid!r}", logid, "Session", "session.py")
        model, self._model_path = _load_model(path_or_bytes, opts)
        opts = self._options = _options_from_model(model, opts)
        if opts._initializers:
            model = _replace_initializers(model, opts._initializers,
                                          copy=isinstance(path_or_bytes, Model))
        check_structure(model.graph)
        for f in model.functions:
            check_structure(f.graph)
        if opts._config.get(_STRICT_SHAPES_KEY) == "1":
            from pyonnx.shape_inference import infer_shapes

            infer_shapes(model, strict=True)  # raises on the first contradiction
        level = int(opts.graph_optimization_level)
        if level > 0:
            # the caller's Model is never modified: rewrite a copy that shares the weights
            model = _optimized(model, level)
        if opts.optimized_model_filepath:
            _save_optimized(model, opts)  # standard / com.microsoft ops only
        if level > 0 and len(providers) == 1:
            # the provider's private fusions, after anything is written; only for a lone
            # provider, since they would fuse away nodes that another provider could claim
            model = _optimized(model, level, passes=providers[0].session_passes(level))
        self._model = model
        self._set_threads()
        functions = {f.key: f for f in model.functions}
        opsets = {("" if d == "ai.onnx" else d): v for d, v in model.opset_imports.items()}
        opsets.setdefault(FUSED_DOMAIN, 1)  # the optimizer's fused kernels
        config = PlanConfig(
            opsets=opsets,
            functions=functions, max_tensor_bytes=opts.max_tensor_bytes,
            max_nesting_depth=opts.max_nesting_depth,
            max_loop_iterations=opts.max_loop_iterations,
            providers=providers)
        self._plan = Plan(model.graph, config)
        self._set_execution_mode()
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
        self._all_outputs = list(range(len(g.outputs)))  # read only: shared by runs
        # dims a feed must have: the declared ones with free-dimension overrides applied
        self._input_shapes = {v.name: _overridden_shape(v.type, opts) for v in g.inputs}
        # a symbol fixed on an input is fixed wherever it appears, outputs included
        symbols = _fixed_symbols(g.inputs, opts)
        self._output_shapes = {v.name: _with_symbols(v.type, symbols) for v in g.outputs}
        self._defaults = [self._plan.constants.get(s) for s in self._plan.input_slots]
        self._const_output = [s in self._plan.constants or s in self._plan.input_slots
                              for s in self._plan.output_slots]
        # (node, start ns, duration ns, inputs) per executed node, see _RunState.after in plan.py
        self._profile_events: list[tuple[Any, ...]] | None = [] if opts.enable_profiling else None
        self._profile_start_ns = time.time_ns()
        self._sess = _CSession(self)
        log(1, f"Session {logid!r} created: {len(g.nodes)} nodes on "
               f"{', '.join(self._providers)}", logid, "Session", "session.py")

    # ------------------------------------------------------------------ providers & threads

    def _choose_providers(self, providers: Any, provider_options: Any,
                          unknown_raises: bool = False
                          ) -> tuple[list[str], list[dict[str, Any]]]:
        if isinstance(providers, str):
            raise InvalidArgument(f"providers must be a list of provider names, not the string "
                                  f"{providers!r} (write [{providers!r}])")
        available = get_available_providers()
        if providers is None:
            return [available[-1]], [{}]
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
            if unknown_raises and name not in get_all_providers():
                # onnxruntime's set_providers rejects a name it does not know at all
                raise InvalidRequest(
                    f"Unknown Provider Type: {name} (known providers: see "
                    f"get_all_providers(); pyonnx runs {', '.join(available)})")
            if name in available:
                names.append(name)
                options.append({str(k): str(v) for k, v in popts.items()})
                continue
            msg = (f"{name} is not available in pyonnx (available: "
                   f"{', '.join(available)})")
            if self._options.strict_providers:
                raise InvalidArgument(msg + "; strict_providers is set, so this is an error")
            warnings.warn(msg + "; falling back to the next provider", RuntimeWarning,
                          stacklevel=3)
        if not names:
            names, options = [available[-1]], [{}]
        elif available[-1] not in names:
            # as in onnxruntime, the CPU provider always comes last, for the nodes no other claims
            names.append(available[-1])
            options.append({})
        return names, options

    def _make_providers(self) -> tuple[Provider, ...]:
        """This session's providers (:mod:`pyonnx.backends`), built from the chosen names and
        options; an option a provider cannot honour raises InvalidArgument naming it."""
        made = []
        for name, popts in zip(self._providers, self._provider_options):
            try:
                made.append(create_provider(name, popts,
                                            arena=bool(self._options.enable_cpu_mem_arena)))
            except (ValueError, TypeError) as e:
                raise InvalidArgument(f"{name}: {e}") from e
        return tuple(made)

    def _set_threads(self) -> None:
        """``intra_op_num_threads`` (0: the cores, as onnxruntime) joins the process's intra-op
        thread budget (:mod:`pyonnx.backends.cpu.threads`), which sizes the CPU provider's pool
        and BLAS's once, at session creation, never per run."""
        from pyonnx.backends.cpu import threads

        self._threads = threads.request(int(self._options.intra_op_num_threads or 0))

    def _set_execution_mode(self) -> None:
        """``ExecutionMode.ORT_PARALLEL``: the main plan's steps run as a dependency graph on
        ``inter_op_num_threads`` threads (0: one per core, as onnxruntime),
        see :mod:`pyonnx.runtime.parallel`. With one inter-op thread that is the sequential
        loop, which then runs. ``ORT_SEQUENTIAL`` (the default) uses no inter-op threads, and
        ignores ``inter_op_num_threads`` as onnxruntime does."""
        opts = self._options
        if opts.execution_mode != ExecutionMode.ORT_PARALLEL:
            return
        requested = int(opts.inter_op_num_threads)
        if requested < 0:
            raise InvalidArgument(f"SessionOptions.inter_op_num_threads is {requested}: give 0 "
                                  f"(one thread per core) or a positive number of threads")
        n = inter_op_threads(requested)
        if n > 1:
            executor = ParallelExecutor(n)
            executor.close_with(self)
            self._plan.parallel = executor
        log(1, f"Session {opts.logid!r}: ORT_PARALLEL with {n} inter-op thread(s)", opts.logid,
            "Session", "session.py")

    # ------------------------------------------------------------------ onnxruntime surface

    def get_inputs(self) -> list[NodeArg]:
        """The inputs a caller must (or may) feed, without initializer-backed ones; symbolic
        dims fixed by free-dimension overrides show their value."""
        return [_node_arg(v, self._input_shapes.get(v.name)) for v in self._inputs]

    def get_outputs(self) -> list[NodeArg]:
        """The graph outputs; symbolic dims fixed by free-dimension overrides show their value,
        as in onnxruntime."""
        return [_node_arg(v, self._output_shapes.get(v.name)) for v in self._outputs]

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
        """The options the session runs with (those given, plus any the model's ``ort_config``
        metadata set when ORT_LOAD_CONFIG_FROM_MODEL=1)."""
        return self._options

    def get_profiling_start_time_ns(self) -> int:
        """When profiling started (ns since the epoch)."""
        return self._profile_start_ns

    def set_providers(self, providers: Sequence[str] | None = None,
                      provider_options: Sequence[dict[str, Any]] | None = None) -> None:
        """Choose providers again. A name onnxruntime does not know raises (InvalidRequest, a
        RuntimeError as in onnxruntime); a known provider pyonnx lacks falls back as at
        creation."""
        self._providers, self._provider_options = self._choose_providers(
            providers, provider_options, unknown_raises=True)

    def get_input_memory_infos(self) -> list[OrtMemoryInfo]:
        """Where each input is expected: CPU memory."""
        return [OrtMemoryInfo("Cpu") for _ in self._inputs]

    def get_output_memory_infos(self) -> list[OrtMemoryInfo]:
        """Where each output is produced: CPU memory."""
        return [OrtMemoryInfo("Cpu") for _ in self._outputs]

    def get_input_epdevices(self) -> list[None]:
        """The plugin-EP device of each input: none (the built-in CPU provider has none)."""
        return [None for _ in self._inputs]

    def get_provider_graph_assignment_info(self) -> list[OrtEpAssignedSubgraph]:
        """Which provider runs which nodes of the main graph (one subgraph per node, the copy
        steps between providers included, named as onnxruntime names them).
        Needs the config entry ``session.record_ep_graph_assignment_info`` = 1, as in
        onnxruntime."""
        if self._options._config.get(_RECORD_ASSIGNMENT_KEY) != "1":
            raise OrtFail(f"Session configuration entry '{_RECORD_ASSIGNMENT_KEY}' must be set "
                          f"to \"1\" to retrieve EP graph assignment information")
        return [OrtEpAssignedSubgraph(st.provider.name,
                                      [OrtEpAssignedNode(st.node.name, st.node.op_type,
                                                         st.node.domain)])
                for st in self._plan.steps]

    def get_tuning_results(self) -> list[dict[str, Any]]:
        """Kernel tuning results: the CPU provider tunes nothing, so none."""
        return []

    def set_tuning_results(self, results: Sequence[dict[str, Any]], *,
                           error_on_invalid: bool = False) -> None:
        """Accepted: the CPU provider has no tunable kernels, so there is nothing to load."""

    def io_binding(self) -> IOBinding:
        """A new IOBinding for this session."""
        return IOBinding(self)

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
        as None. Feeds may be arrays, OrtValues, or (nested) Python lists, which are converted
        to the input's declared element type as onnxruntime does. Feeds are checked before any
        kernel runs.
        """
        out_idx = self._output_indices(output_names)
        results = self._execute(self._validate_feeds(input_feed), run_options)
        out = []
        for i in out_idx:
            r = results[i]
            if isinstance(r, np.ndarray):
                if self._const_output[i] or not r.flags.writeable:
                    r = r.copy()  # never hand out our constants or read-only views of them
                if r.base is None:
                    # as in onnxruntime, the array handed out views the run's output buffer
                    r = r.view()
            out.append(r)
        return out

    def run_with_ort_values(self, output_names: Sequence[str] | None,
                            input_dict_ort_values: dict[str, Any],
                            run_options: RunOptions | None = None) -> list[OrtValue]:
        """Run with OrtValue feeds (arrays are accepted too) and return OrtValues."""
        out_idx = self._output_indices(output_names)
        results = self._execute(self._validate_feeds(input_dict_ort_values), run_options)
        return [self._ort_output(i, results[i]) for i in out_idx]

    def run_with_iobinding(self, iobinding: IOBinding,
                           run_options: RunOptions | None = None) -> None:
        """Run with the inputs and outputs bound in ``iobinding`` (from this session's
        ``io_binding()``). Outputs bound to an OrtValue are written into it; the others get new
        OrtValues; ``iobinding.get_outputs()`` returns them in binding order. Every failure is
        a RuntimeError here, as in onnxruntime."""
        if iobinding._session is not self:
            raise InvalidArgument("IOBinding must be used with the session that created it.")
        if not iobinding._outputs:
            raise InvalidRequest("At least one output should be requested: bind an output "
                                 "with bind_output or bind_ortvalue_output")
        names = list(iobinding._outputs)
        out_idx = self._output_indices(names, error=InvalidRequest)
        feeds = self._validate_feeds(iobinding._inputs, error=InvalidRequest)
        results = self._execute(feeds, run_options)
        values = []
        for name, i in zip(names, out_idx):
            target = iobinding._outputs[name]
            r = results[i]
            if target is None:
                values.append(self._ort_output(i, r))
                continue
            dest = target._value
            if not isinstance(r, np.ndarray) or not isinstance(dest, np.ndarray) \
                    or dest.shape != r.shape or dest.dtype != r.dtype:
                raise InvalidRequest(
                    f"output {name!r} is bound to {target.data_type()} of shape "
                    f"{list(getattr(dest, 'shape', []))}, but the run produced "
                    f"{_describe(r)}; bind a value of that shape and type, or bind to 'cpu'")
            np.copyto(dest, r)
            values.append(target)
        iobinding._results = values

    def run_async(self, output_names: Sequence[str] | None, input_feed: dict[str, Any],
                  callback: Callable[[list[Any], Any, str], Any], user_data: Any,
                  run_options: RunOptions | None = None) -> None:
        """Run on a worker thread and call ``callback(results, user_data, err)`` there: the
        outputs and ``""`` on success, ``[]`` and the error message on failure. Output names
        and feeds are checked here first, so those mistakes raise at once."""
        if not callable(callback):
            raise InvalidArgumentType("run_async needs a callable callback")
        out_idx = self._output_indices(output_names)
        feeds = self._validate_feeds(input_feed)

        def work() -> None:
            try:
                results = self._execute(feeds, run_options)
            except Exception as e:  # noqa: BLE001 - reported to the callback, as onnxruntime does
                callback([], user_data, f"{type(e).__name__}: {e}")
                return
            outputs = []
            for i in out_idx:
                r = results[i]
                if isinstance(r, np.ndarray) and (self._const_output[i] or not r.flags.writeable):
                    r = r.copy()  # never hand out our constants
                outputs.append(r)
            callback(outputs, user_data, "")

        threading.Thread(target=work, name="pyonnx-run-async", daemon=True).start()

    def _output_indices(self, output_names: Sequence[str] | None,
                        error: type[InvalidArgument] = InvalidArgument) -> list[int]:
        if output_names is None:
            return self._all_outputs
        if isinstance(output_names, (str, bytes)):
            raise InvalidArgumentType(f"output_names must be a list of names or None, not the "
                                      f"string {output_names!r}")
        if len(output_names) == 0:
            return self._all_outputs
        out_idx = []
        for n in output_names:
            i = self._output_index.get(n)
            if i is None:
                raise error(
                    f"Invalid output name: {n}: output {n!r} is not an output of the model "
                    f"(outputs: {', '.join(v.name for v in self._outputs)})")
            out_idx.append(i)
        return out_idx

    def _execute(self, feeds: list[Any], run_options: RunOptions | None) -> list[Any]:
        if run_options is not None and not isinstance(run_options, RunOptions):
            raise InvalidArgumentType(f"run_options must be a RunOptions, got "
                                      f"{type(run_options).__name__}")
        if run_options is not None and run_options._adapters:
            feeds = self._adapter_feeds(feeds, run_options)
        deadline = (time.monotonic() + self._options.run_timeout_s
                    if self._options.run_timeout_s else 0.0)
        profile = [] if self._profile_events is not None else None
        state = _RunState(run_options, deadline, profile, self._options.max_run_bytes)
        with quiet_float_errors():  # once per run, not per kernel (see quiet_float_errors)
            results = self._plan.execute(feeds, state)
        if profile is not None:
            self._profile_events.extend(profile)  # type: ignore[union-attr]
        return results

    def _adapter_feeds(self, feeds: list[Any], run_options: RunOptions) -> list[Any]:
        """``feeds`` with the active adapters' parameters in place of the inputs (or
        overridable initializers) they name; a name the model lacks is an error."""
        feeds = list(feeds)
        graph_inputs = self._model.graph.inputs
        for adapter in run_options._adapters:
            for name, value in adapter._parameters.items():
                i = self._input_index.get(name)
                if i is None:
                    raise InvalidArgument(
                        f"adapter parameter {name!r} is not an input or overridable "
                        f"initializer of the model (inputs: "
                        f"{', '.join(v.name for v in graph_inputs)})")
                feeds[i] = self._check_value(graph_inputs[i], value)
        return feeds

    def _ort_output(self, i: int, r: Any) -> OrtValue:
        if isinstance(r, np.ndarray) and (self._const_output[i] or not r.flags.writeable):
            r = r.copy()
        t = self._outputs[i].type
        if isinstance(t, OptionalType):
            t = t.elem_type  # an OrtValue reports the type it holds (or would hold)
        return OrtValue(r, type_string=str(t) if t is not None else "")

    def _validate_feeds(self, input_feed: dict[str, Any],
                        error: type[InvalidArgument] = InvalidArgument) -> list[Any]:
        if not isinstance(input_feed, dict):
            raise InvalidArgumentType(f"input_feed must be a dict of name -> value, got "
                                      f"{type(input_feed).__name__}")
        values = list(self._defaults)
        for name, value in input_feed.items():
            i = self._input_index.get(name)
            if i is None:
                raise error(
                    f"Invalid input name: {name}: {name!r} is not an input of the model "
                    f"(inputs: {', '.join(v.name for v in self._inputs) or 'none'})")
            values[i] = self._check_value(self._model.graph.inputs[i], value, error)
        missing = [v.name for v, val in zip(self._model.graph.inputs, values)
                   if val is None and v.name not in input_feed and not _is_optional(v)]
        if missing:
            # onnxruntime's wording, which code written for it may look for
            raise error(f"Required inputs ({missing}) are missing from input feed "
                        f"({list(input_feed)}): feed {', '.join(map(repr, missing))}")
        return values

    def _check_value(self, v: Value, value: Any,
                     error: type[InvalidArgument] = InvalidArgument) -> Any:
        t = v.type
        if isinstance(value, OrtValue):
            value = value._value
        if isinstance(t, TensorType):
            if type(value) is not np.ndarray:  # the common case skips these checks
                value = _as_array(v.name, t, value)
            if value.dtype.kind in ("U", "S", "V") and t.elem_type == DataType.STRING:
                value = string_array(value) if value.dtype.kind != "V" else _void_strings(value)
            expected = t.elem_type.numpy if t.elem_type != DataType.UNDEFINED else value.dtype
            if value.dtype != expected and value.dtype.newbyteorder("=") == expected:
                value = value.astype(expected)  # the same numbers in the other byte order
            if value.dtype != expected:
                got = (f"tensor({DataType.from_numpy(value.dtype).onnx_name})"
                       if _known_dtype(value.dtype) else f"numpy {value.dtype}")
                raise error(
                    f"Unexpected input data type. Actual: ({got}) , expected: ({t}): input "
                    f"{v.name!r} has the wrong element type")
            shape = self._input_shapes.get(v.name)
            if shape is not None:
                if value.ndim != len(shape):
                    raise error(
                        f"Invalid rank for input: {v.name} Got: {value.ndim} Expected: "
                        f"{len(shape)}: input {v.name!r} has rank {value.ndim} (shape "
                        f"{list(value.shape)}), expected rank {len(shape)} (shape "
                        f"{_fmt_shape(shape)})")
                for axis, (want, actual) in enumerate(zip(shape, value.shape)):
                    if isinstance(want, int) and want >= 0 and want != actual:
                        raise error(
                            f"Got invalid dimensions for input: {v.name}: input {v.name!r} has "
                            f"dimension {actual} at axis {axis}, expected {want} (shape "
                            f"{_fmt_shape(shape)}, got {list(value.shape)})")
            return value
        if isinstance(t, SequenceType):
            if not isinstance(value, (list, tuple)):
                raise error(f"input {v.name!r} expects {t} as a list, got "
                            f"{type(value).__name__}")
            if t.elem_type is None:
                return [e._value if isinstance(e, OrtValue) else e for e in value]
            # each element is checked as an input of the element type would be
            return [self._check_value(Value(f"{v.name}[{i}]", t.elem_type), e, error)
                    for i, e in enumerate(value)]
        if isinstance(t, MapType):
            if not isinstance(value, dict):
                raise error(f"input {v.name!r} expects {t} as a dict, got "
                            f"{type(value).__name__}")
            return value
        if isinstance(t, OptionalType):
            if value is None:
                return None
            inner = Value(v.name, t.elem_type)
            return self._check_value(inner, value, error) if t.elem_type is not None else value
        return value

    # ------------------------------------------------------------------ profiling

    def end_profiling(self) -> str:
        """Write the collected per-node timings as a Chrome trace JSON; return its path."""
        if self._profile_events is None:
            return ""
        events = []
        # the earliest start: events are recorded as nodes finish, which in ORT_PARALLEL mode
        # (and for a node that runs a subgraph) is not the order they started in
        base = min((e[1] for e in self._profile_events), default=0)
        for node, start_ns, dur_ns, inputs, provider, tid in self._profile_events:
            events.append({
                "name": node.name or node.op_type, "cat": "Node", "ph": "X", "pid": 0,
                "tid": tid,  # the OS id of the thread that ran the node, as onnxruntime writes
                "ts": (start_ns - base) / 1000.0, "dur": dur_ns / 1000.0,
                "args": {"op_type": node.op_type, "domain": node.domain, "provider": provider,
                         "input_shapes": [i if isinstance(i, str) else
                                          f"{i[0]}[{','.join(str(d) for d in i[1])}]"
                                          for i in inputs]},
            })
        prefix = self._options.profile_file_prefix or "pyonnx_profile"
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        path = os.path.abspath(f"{prefix}_{stamp}.json")
        # one event per line between "[" and "]", the layout onnxruntime writes
        text = "[\n" + ",\n".join(json.dumps(e) for e in events) + "\n]\n"
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError:
            fd, path = tempfile.mkstemp(prefix=prefix, suffix=".json")
            with os.fdopen(fd, "w") as f:
                f.write(text)
        self._profile_events = []
        return path


def _optimized(model: Model, level: int, passes: list[Any] | None = None) -> Model:
    """The model rewritten by the optimizer at ``level``; the model as given when a pass fails.

    Optimization is only ever an improvement: a pass that trips over a hostile or unusual model
    (a bug, or an input too large to fold) must not stop the session. The plan then compiles the
    unoptimized graph and reports any real problem of the model, with its own limits.
    """
    try:
        if passes is not None:  # a provider's private fusions, on the session's own copy
            return run_passes(copy_model(model), passes) if passes else model
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



def _as_array(name: str, t: TensorType, value: Any) -> np.ndarray:
    """A feed for tensor input ``name`` that is not a plain ndarray, as an array: NumPy
    scalars and ndarray subclasses as they are, (nested) lists converted; anything else is
    refused, as onnxruntime refuses bare Python scalars (RuntimeError)."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    if isinstance(value, SparseTensor):
        raise InvalidRequest(f"input {name!r} expects a dense {t}, got a sparse tensor; feed "
                             f"sparse.to_dense() instead")
    if isinstance(value, (list, tuple)):
        return _from_list(name, t, value)
    host = _torch_feed(name, value)
    if host is not None:
        return host
    raise InvalidRequest(
        f"input {name!r} expects {t} as a numpy.ndarray (or a list), got "
        f"{type(value).__name__}; wrap a scalar as numpy.array(x, dtype=...)")


def _torch_feed(name: str, value: Any) -> np.ndarray | None:
    """A torch tensor fed for input ``name`` as a NumPy array sharing its memory (None when
    ``value`` is no torch tensor). Feeds live in host memory: a tensor on a GPU is refused
    with what to do, never copied behind the caller's back."""
    torch = sys.modules.get("torch")  # a torch tensor implies torch is imported already
    if torch is None or not isinstance(value, torch.Tensor):
        return None
    if value.device.type != "cpu":
        raise InvalidArgument(
            f"input {name!r} is a torch tensor on {value.device}; run takes feeds in host "
            f"memory: pass {name}.cpu() (the torch provider moves host feeds to its device)")
    from pyonnx.backends.torch.dtypes import to_numpy

    return to_numpy(value)  # no copy for a contiguous tensor


def _from_list(name: str, t: TensorType, value: Any) -> np.ndarray:
    """A (nested) Python list fed for a tensor input, as an array of the input's declared
    element type (onnxruntime converts lists the same way)."""
    if t.elem_type == DataType.STRING:
        dtype: Any = object
    elif t.elem_type == DataType.UNDEFINED:
        dtype = None
    else:
        dtype = t.elem_type.numpy
    try:
        arr = np.array(value, dtype=dtype)
    except (ValueError, TypeError) as e:
        raise InvalidRequest(f"Could not create tensor from given input list for input {name!r} "
                             f"({t}): the list is ragged or holds values that are not numbers "
                             f"({e})") from None
    if arr.dtype == object and t.elem_type == DataType.STRING:
        if any(not isinstance(x, str) for x in arr.ravel()):
            raise InvalidRequest(f"input {name!r} expects strings; the list holds other values "
                                 f"or is ragged")
    elif arr.dtype == object:
        raise InvalidRequest(f"Could not create tensor from given input list for input {name!r}: "
                             f"the list is ragged")
    return arr


def _void_strings(arr: np.ndarray) -> np.ndarray:
    """A NumPy void array (raw bytes per element) as UTF-8 strings, as onnxruntime reads it."""
    try:
        text = [bytes(x).decode("utf-8") for x in arr.ravel()]
    except UnicodeDecodeError as e:
        raise InvalidRequest(f"a void (bytes) element is not UTF-8 ({e}); ONNX strings are "
                             f"UTF-8") from None
    return np.array(text, dtype=object).reshape(arr.shape)


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} of shape {list(value.shape)}"
    return type(value).__name__


def _check_config(opts: SessionOptions) -> None:
    """Raise for a configuration entry pyonnx cannot honour (see SessionOptions' table)."""
    for key, (fine, why) in _UNHONOURABLE_CONFIG.items():
        value = opts._config.get(key)
        if value is not None and value not in fine:
            raise NotSupported(f"session config entry {key!r} = {value!r} is not supported: {why}")
    if _EXTERNAL_MIN_SIZE_KEY in opts._config:
        text = opts._config[_EXTERNAL_MIN_SIZE_KEY]
        if not text.strip().isdigit():
            raise InvalidArgument(f"session config entry {_EXTERNAL_MIN_SIZE_KEY!r} must be a "
                                  f"number of bytes, got {text!r}")


def _load_model(source: Any, opts: SessionOptions) -> tuple[Model, str | None]:
    """The model from a path, bytes or Model, with the session options' external initializers
    in place; and the model's path (None when not loaded from a file)."""
    if isinstance(source, Model):
        check_nesting_depth(source, opts.max_nesting_depth)  # load checks the others
        if opts._external_initializers:
            return _replace_initializers(source, opts._external_initializers, copy=True), None
        return source, None
    path: str | None = None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise ModelFileNotFound(f"Load model from {path} failed: File doesn't exist")
    elif not isinstance(source, (bytes, bytearray, memoryview)) \
            and not hasattr(source, "SerializeToString") and not hasattr(source, "read"):
        raise InvalidArgumentType(f"Unable to load from type '{type(source)}': give a path, "
                                  f"bytes or a pyonnx Model")
    load_kw: dict[str, Any] = {"allow_hardlinks": opts.allow_external_data_hardlinks,
                               "max_nesting_depth": opts.max_nesting_depth}
    if opts._external_initializers or opts._external_files:
        from pyonnx.io.overrides import inline_external_initializers

        if path is not None:
            with open(path, "rb") as f:
                data = f.read()
            load_kw["base_dir"] = os.path.dirname(os.path.abspath(path))
        elif hasattr(source, "SerializeToString"):
            data = source.SerializeToString()
        else:
            data = bytes(source.read() if hasattr(source, "read") else source)
        tensors = {n: v.numpy() for n, v in opts._external_initializers.items()}
        source = inline_external_initializers(data, tensors, opts._external_files)
    return _load(source, **load_kw), path


def _replace_initializers(model: Model, values: dict[str, OrtValue], copy: bool) -> Model:
    """``model`` with the named initializers taking the given values (SessionOptions.
    add_initializer); each must exist and keep its element type and dims."""
    if copy:
        model = copy_model(model)
    inits = model.graph.initializers
    for name, ov in values.items():
        v = inits.get(name)
        if v is None:
            raise InvalidArgument(f"add_initializer({name!r}): the model has no initializer of "
                                  f"that name (initializers: {', '.join(sorted(inits)) or 'none'})")
        new = Tensor.from_numpy(ov.numpy(), name)
        old = v.const_value
        if isinstance(old, Tensor) and (old.data_type != new.data_type or old.dims != new.dims):
            raise InvalidArgument(
                f"add_initializer({name!r}): the value is {new.data_type.onnx_name} with dims "
                f"{list(new.dims)}, the model's initializer is {old.data_type.onnx_name} with "
                f"dims {list(old.dims)}")
        v.const_value = new
    return model


def _options_from_model(model: Model, opts: SessionOptions) -> SessionOptions:
    """With ORT_LOAD_CONFIG_FROM_MODEL=1, a copy of ``opts`` updated from the session options
    in the model's ``ort_config`` metadata (JSON), as onnxruntime reads them; else ``opts``."""
    if os.environ.get("ORT_LOAD_CONFIG_FROM_MODEL") != "1":
        return opts
    text = model.metadata_props.get("ort_config")
    if text is None:
        return opts
    try:
        config = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"Json stored in the `ort_config` key cannot be parsed: {e}") from e
    session = config.get("session_options", {}) if isinstance(config, dict) else {}
    new = opts.copy()
    setters: dict[str, Callable[[int], None]] = {
        "intra_op_num_threads": lambda n: setattr(new, "intra_op_num_threads", n),
        "inter_op_num_threads": lambda n: setattr(new, "inter_op_num_threads", n),
        "execution_mode": lambda n: setattr(new, "execution_mode", ExecutionMode(n)),
        "graph_optimization_level": lambda n: setattr(new, "graph_optimization_level",
                                                      GraphOptimizationLevel(n)),
        "enable_profiling": lambda n: setattr(new, "enable_profiling", bool(n)),
    }
    for key, value in session.items():
        setter = setters.get(key)
        if setter is None:
            continue  # onnxruntime reads only these keys and ignores the others
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"{key} in the model's ort_config must be a non-negative "
                                  f"integer, got {value!r}")
        try:
            setter(value)
        except (ValueError, TypeError) as e:
            raise InvalidArgument(f"Unsupported {key} value in ORT config: {value}") from e
    return new


def _save_optimized(model: Model, opts: SessionOptions) -> None:
    """Write the optimized model to ``optimized_model_filepath``; initializers of at least
    ``..._min_size_in_bytes`` (default 1024) go to the external file named by
    ``session.optimized_model_external_initializers_file_name`` when that is set."""
    location = opts._config.get(_EXTERNAL_FILE_KEY)
    if not location:
        _save(model, opts.optimized_model_filepath)
        return
    threshold = int(opts._config.get(_EXTERNAL_MIN_SIZE_KEY, "1024"))
    _save(model, opts.optimized_model_filepath, external_data=True, size_threshold=threshold,
          location=location)
