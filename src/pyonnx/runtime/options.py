"""Session and run options with onnxruntime's names, plus pyonnx's resource limits.

An unknown attribute raises AttributeError, as in onnxruntime, so a typo never passes silently.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pyonnx.errors import InvalidArgumentType, InvalidRequest

__all__ = ["GraphOptimizationLevel", "ExecutionMode", "ExecutionOrder", "SessionOptions",
           "RunOptions"]


class GraphOptimizationLevel(enum.IntEnum):
    """How much the session rewrites the graph at creation (onnxruntime's levels)."""

    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_LAYOUT = 3
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    """How a session runs the nodes of its graph: ``ORT_SEQUENTIAL`` (the default) one after
    another in topological order; ``ORT_PARALLEL`` as a dependency graph on
    ``inter_op_num_threads`` threads, so that independent branches overlap
    (:mod:`pyonnx.runtime.parallel`)."""

    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class ExecutionOrder(enum.IntEnum):
    """Accepted for compatibility; pyonnx runs nodes in the graph's topological order."""

    DEFAULT = 0
    PRIORITY_BASED = 1
    MEMORY_EFFICIENT = 2


def _int_option(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgumentType(f"SessionOptions.{name} must be an int, got {value!r}")
    return int(value)


def _enum_option(enum_type: type[enum.IntEnum]) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        try:
            return enum_type(int(value)) if not isinstance(value, (bool, str, float)) else \
                enum_type(value)
        except (ValueError, TypeError):
            raise InvalidArgumentType(
                f"SessionOptions.{name} must be one of "
                f"{', '.join(f'{enum_type.__name__}.{m.name}' for m in enum_type)}, "
                f"got {value!r}") from None
    return check


def _bool_option(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, int, np.integer)):
        raise InvalidArgumentType(f"SessionOptions.{name} must be a bool, got {value!r}")
    return bool(value)


def _str_option(name: str, value: Any) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise InvalidArgumentType(f"SessionOptions.{name} must be a str, got {value!r}")
    return value


_VALIDATORS: dict[str, Callable[[str, Any], Any]] = {
    "graph_optimization_level": _enum_option(GraphOptimizationLevel),
    "execution_mode": _enum_option(ExecutionMode),
    "execution_order": _enum_option(ExecutionOrder),
    "intra_op_num_threads": _int_option, "inter_op_num_threads": _int_option,
    "log_severity_level": _int_option, "log_verbosity_level": _int_option,
    "enable_cpu_mem_arena": _bool_option, "enable_mem_pattern": _bool_option,
    "enable_mem_reuse": _bool_option, "enable_profiling": _bool_option,
    "use_deterministic_compute": _bool_option, "use_per_session_threads": _bool_option,
    "optimized_model_filepath": _str_option, "profile_file_prefix": _str_option,
    "logid": _str_option,
}


class _MissingEntry(InvalidRequest, KeyError):
    """A configuration key that is not set: onnxruntime raises RuntimeError; pyonnx's earlier
    KeyError is kept as a base for code that caught it."""

    __str__ = Exception.__str__


class SessionOptions:
    """Options of an InferenceSession.

    onnxruntime's attributes keep their names and meanings; setting an attribute to a value of
    the wrong type raises (InvalidArgumentType, a TypeError as in onnxruntime) and an unknown
    attribute raises AttributeError. pyonnx adds its limits (defaults far above real models):
    ``max_tensor_bytes`` (one computed tensor), ``max_run_bytes`` (the tensors a run holds at
    once, counted after each node; 0 = not counted), ``max_nesting_depth`` (subgraphs),
    ``max_loop_iterations`` (subgraph body executions per run: Loop and Scan iterations, If
    branches, summed over nesting), ``run_timeout_s`` (a run's deadline, 0 = none),
    ``allow_external_data_hardlinks``, and ``strict_providers`` (a requested provider pyonnx
    lacks is an error instead of a warning and a fallback).

    What pyonnx does with each onnxruntime setting:

    ========================================================  ==================================
    setting                                                   pyonnx
    ========================================================  ==================================
    graph_optimization_level                                  honoured (pyonnx's optimizer)
    optimized_model_filepath                                  honoured (the optimized model)
    enable_profiling, profile_file_prefix                     honoured (Chrome trace JSON)
    intra_op_num_threads                                      honoured (intra-op thread budget)
    execution_mode, inter_op_num_threads                      honoured (ORT_PARALLEL: nodes run
                                                              as a dependency graph on inter-op
                                                              threads, 0 = one per core; inter x
                                                              intra threads within the budget)
    log_severity_level, logid                                 honoured (session log records)
    add_initializer, add_external_initializers(_from_files_   honoured
    in_memory)
    add_free_dimension_override_by_name / _by_denotation      honoured (get_inputs, feed checks)
    config session.optimized_model_external_initializers_     honoured (written with the
    file_name / _min_size_in_bytes                            optimized model)
    config session.record_ep_graph_assignment_info            honoured
    config session.strict_shape_type_inference                honoured (strict shape inference)
    config session.load_model_format / save_model_format=ORT  raises: no ORT format in pyonnx
    config session.set_denormal_as_zero=1                     raises: NumPy keeps denormals
    config optimization.enable_gelu_approximation=1           raises: would change results
    config mlas.enable_gemm_fastmath_arm64_bfloat16=1         raises: would change results
    config ep.context_enable=1                                raises: writes EP context files
    config session.collect_node_memory_stats_to_file          raises: pyonnx writes no such file
    register_custom_ops_library                               raises: no C++ libraries
    execution_order, enable_cpu_mem_arena, enable_mem_        accepted, performance hints only
    pattern, enable_mem_reuse, use_per_session_threads, use_
    deterministic_compute
    (pyonnx is deterministic), log_verbosity_level, other
    config keys (spinning, prepacking, allocators, ...)
    ========================================================  ==================================
    """

    __slots__ = (
        "enable_cpu_mem_arena", "enable_mem_pattern", "enable_mem_reuse", "enable_profiling",
        "profile_file_prefix", "execution_mode", "execution_order", "graph_optimization_level",
        "inter_op_num_threads", "intra_op_num_threads", "log_severity_level",
        "log_verbosity_level", "logid", "optimized_model_filepath", "use_deterministic_compute",
        "use_per_session_threads",
        "max_tensor_bytes", "max_run_bytes", "max_nesting_depth", "max_loop_iterations", "run_timeout_s",
        "allow_external_data_hardlinks", "strict_providers",
        "_config", "_free_dims", "_free_dim_denotations", "_initializers",
        "_external_initializers", "_external_files", "_custom_ops",
    )

    def __init__(self) -> None:
        self.enable_cpu_mem_arena = True
        self.enable_mem_pattern = True
        self.enable_mem_reuse = True
        self.enable_profiling = False
        self.profile_file_prefix = "pyonnx_profile"
        self.execution_mode = ExecutionMode.ORT_SEQUENTIAL
        self.execution_order = ExecutionOrder.DEFAULT
        self.graph_optimization_level = GraphOptimizationLevel.ORT_ENABLE_ALL
        self.inter_op_num_threads = 0
        self.intra_op_num_threads = 0
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.logid = ""
        self.optimized_model_filepath = ""
        self.use_deterministic_compute = False
        self.use_per_session_threads = True
        self.max_tensor_bytes = 16 * 2**30
        self.max_run_bytes = 0  # counting costs a little per node, so it is opt-in
        self.max_nesting_depth = 64
        self.max_loop_iterations = 1_000_000
        self.run_timeout_s = 0.0
        self.allow_external_data_hardlinks = False
        self.strict_providers = False
        self._config: dict[str, str] = {}
        self._free_dims: dict[str, int] = {}
        self._free_dim_denotations: dict[str, int] = {}
        self._initializers: dict[str, Any] = {}
        self._external_initializers: dict[str, Any] = {}
        self._external_files: dict[str, bytes] = {}
        self._custom_ops: list[Any] = []  # CustomOps of sessions made with these options

    def __setattr__(self, name: str, value: Any) -> None:
        check = _VALIDATORS.get(name)
        object.__setattr__(self, name, check(name, value) if check is not None else value)

    def copy(self) -> "SessionOptions":
        """An independent copy (the session reports its effective options through one)."""
        new = SessionOptions()
        for name in self.__slots__:
            value = getattr(self, name)
            object.__setattr__(new, name, dict(value) if isinstance(value, dict) else
                               list(value) if isinstance(value, list) else value)
        return new

    def add_session_config_entry(self, key: str, value: str) -> None:
        """Store a configuration entry (any key, as onnxruntime accepts; the table above says
        which keys pyonnx honours and which make session creation raise)."""
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgumentType("add_session_config_entry takes two str (key, value), got "
                                      f"{type(key).__name__}, {type(value).__name__}")
        self._config[key] = value

    def get_session_config_entry(self, key: str) -> str:
        """A stored entry; a key that is not set raises (a RuntimeError, as in onnxruntime)."""
        try:
            return self._config[key]
        except KeyError:
            raise _MissingEntry(
                f"SessionOptions does not have configuration with key: {key}") from None

    def add_free_dimension_override_by_name(self, dim_name: str, dim_value: int) -> None:
        """Fix the symbolic input dimension named ``dim_name`` (e.g. ``batch``) to a value: feeds
        are checked against it and ``get_inputs()`` shows it."""
        self._free_dims[str(dim_name)] = _int_option("dim_value", dim_value)

    def add_free_dimension_override_by_denotation(self, dim_denotation: str,
                                                  dim_value: int) -> None:
        """Fix every input dimension whose denotation is ``dim_denotation`` (e.g.
        ``DATA_BATCH``) to a value, as :meth:`add_free_dimension_override_by_name` does."""
        self._free_dim_denotations[str(dim_denotation)] = _int_option("dim_value", dim_value)

    def add_initializer(self, name: str, ortvalue: Any) -> None:
        """Use ``ortvalue`` (an OrtValue) instead of the model's initializer ``name``."""
        from pyonnx.runtime.ortvalue import OrtValue

        if not isinstance(ortvalue, OrtValue) or not ortvalue.is_tensor():
            raise InvalidRequest(f"add_initializer({name!r}, ...) needs an OrtValue holding a "
                                 f"tensor (OrtValue.ortvalue_from_numpy), got "
                                 f"{type(ortvalue).__name__}")
        self._initializers[str(name)] = ortvalue

    def add_external_initializers(self, names: Sequence[str], ortvalues: Sequence[Any]) -> None:
        """Supply the data of initializers the model keeps in external files (which then need
        not exist): ``names[i]`` gets ``ortvalues[i]``."""
        from pyonnx.runtime.ortvalue import OrtValue

        names, ortvalues = list(names), list(ortvalues)
        if len(names) != len(ortvalues):
            raise InvalidRequest(f"add_external_initializers got {len(names)} names and "
                                 f"{len(ortvalues)} values; give one value per name")
        for n, v in zip(names, ortvalues):
            if not isinstance(v, OrtValue) or not v.is_tensor():
                raise InvalidRequest(f"external initializer {n!r} must be an OrtValue holding a "
                                     f"tensor, got {type(v).__name__}")
            self._external_initializers[str(n)] = v

    def add_external_initializers_from_files_in_memory(
            self, file_names: Sequence[str], buffers: Sequence[Any],
            lengths: Sequence[int]) -> None:
        """Supply external data files from memory: an initializer whose external data
        ``location`` is ``file_names[i]`` reads from ``buffers[i]`` (``lengths[i]`` bytes)."""
        file_names, buffers, lengths = list(file_names), list(buffers), list(lengths)
        if not len(file_names) == len(buffers) == len(lengths):
            raise InvalidRequest("add_external_initializers_from_files_in_memory needs as many "
                                 "buffers and lengths as file names")
        for name, buf, n in zip(file_names, buffers, lengths):
            data = bytes(memoryview(buf).cast("B"))
            if int(n) > len(data) or int(n) < 0:
                raise InvalidRequest(f"in-memory file {name!r}: length {n} is outside its "
                                     f"{len(data)} bytes")
            self._external_files[str(name)] = data[: int(n)]

    def register_custom_ops_library(self, library_path: str) -> None:
        """onnxruntime loads C++ custom operators from a shared library here. pyonnx runs no
        C++ code, so this always raises NotSupported (a Fail and a RuntimeError to
        onnxruntime-style except clauses): declare the operators in Python instead
        (``@pyonnx.onnx_op``, :meth:`register_custom_op`)."""
        from pyonnx.errors import NotSupported

        raise NotSupported(
            f"register_custom_ops_library({os.fspath(library_path)!r}): pyonnx cannot load C++ "
            f"custom-operator libraries (it runs no native code); declare the operators in "
            f"Python instead (@pyonnx.onnx_op, SessionOptions.register_custom_op)")

    def set_load_cancellation_flag(self, value: bool) -> None:
        """Accepted: pyonnx loads synchronously in the caller's thread."""

    def register_custom_op(self, op: object) -> None:
        """Declare a custom operator (a :class:`pyonnx.CustomOp`, or what
        ``@pyonnx.onnx_op(..., register=False)`` returns) for sessions created with these options
        only; process-wide declarations (:func:`pyonnx.register_custom_op`) stay visible too, and
        this one wins over a process-wide one of the same operator. A second declaration of one
        (domain, op_type, since_version) raises InvalidArgument."""
        from pyonnx.defs.custom import scope_table

        scope_table([*self._custom_ops, op], "SessionOptions.register_custom_op")  # validates
        self._custom_ops.append(op)


class RunOptions:
    """Options of one ``run`` call; setting ``terminate`` from another thread stops the run
    between two nodes."""

    __slots__ = ("terminate", "log_severity_level", "log_verbosity_level", "logid", "run_tag",
                 "only_execute_path_to_fetches", "_config", "_adapters")

    def __init__(self) -> None:
        self.terminate = False
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.logid = ""
        self.run_tag = ""
        self.only_execute_path_to_fetches = False
        self._config: dict[str, str] = {}
        self._adapters: list[Any] = []

    def add_active_adapter(self, adapter: Any) -> None:
        """Feed a :class:`pyonnx.runtime.adapters.LoraAdapter`'s parameters to runs with these
        options (each parameter by name, overriding the model's value of that name)."""
        from pyonnx.runtime.adapters import LoraAdapter

        if not isinstance(adapter, LoraAdapter):
            raise InvalidArgumentType(f"add_active_adapter needs a LoraAdapter, got "
                                      f"{type(adapter).__name__}")
        self._adapters.append(adapter)

    def add_run_config_entry(self, key: str, value: str) -> None:
        """Store a free-form run configuration entry (e.g. memory.enable_memory_arena_shrinkage:
        accepted, pyonnx's memory goes back to NumPy after each run anyway)."""
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgumentType("add_run_config_entry takes two str (key, value)")
        self._config[key] = value

    def get_run_config_entry(self, key: str) -> str:
        """A stored run configuration entry."""
        try:
            return self._config[key]
        except KeyError:
            raise _MissingEntry(f"RunOptions does not have configuration with key: {key}"
                                ) from None

    def synchronize_execution_providers(self) -> None:
        """Accepted: the CPU provider has nothing to synchronize."""
