"""Session and run options with onnxruntime's names, plus pyonnx's resource limits.

An unknown attribute raises AttributeError, as in onnxruntime, so a typo never passes silently.
"""

from __future__ import annotations

import enum
from typing import Any

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
    """Accepted for compatibility; pyonnx runs nodes one after another."""

    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class ExecutionOrder(enum.IntEnum):
    """Accepted for compatibility; pyonnx runs nodes in the graph's topological order."""

    DEFAULT = 0
    PRIORITY_BASED = 1
    MEMORY_EFFICIENT = 2


class SessionOptions:
    """Options of an InferenceSession.

    onnxruntime's attributes keep their names and meanings. pyonnx adds its limits (defaults far
    above real models): ``max_tensor_bytes`` (one computed tensor), ``max_run_bytes`` (the
    tensors a run holds at once, counted after each node; 0 = not counted), ``max_nesting_depth``
    (subgraphs), ``max_loop_iterations`` (subgraph body executions per run: Loop and Scan
    iterations, If branches, summed over nesting), ``run_timeout_s`` (a run's deadline, 0 = none),
    ``allow_external_data_hardlinks``, and ``strict_providers`` (a requested provider pyonnx lacks
    is an error instead of a warning and a fallback).
    """

    __slots__ = (
        "enable_cpu_mem_arena", "enable_mem_pattern", "enable_mem_reuse", "enable_profiling",
        "profile_file_prefix", "execution_mode", "execution_order", "graph_optimization_level",
        "inter_op_num_threads", "intra_op_num_threads", "log_severity_level",
        "log_verbosity_level", "logid", "optimized_model_filepath", "use_deterministic_compute",
        "use_per_session_threads",
        "max_tensor_bytes", "max_run_bytes", "max_nesting_depth", "max_loop_iterations", "run_timeout_s",
        "allow_external_data_hardlinks", "strict_providers",
        "_config", "_free_dims", "_custom_ops",
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
        self._custom_ops: list[Any] = []  # CustomOps of sessions made with these options

    def add_session_config_entry(self, key: str, value: str) -> None:
        """Store a free-form configuration entry (any key, as onnxruntime accepts)."""
        self._config[str(key)] = str(value)

    def get_session_config_entry(self, key: str) -> str:
        """A stored entry; a missing key raises KeyError (onnxruntime raises an error too)."""
        try:
            return self._config[key]
        except KeyError:
            raise KeyError(f"session config entry {key!r} is not set") from None

    def add_free_dimension_override_by_name(self, dim_name: str, dim_value: int) -> None:
        """Fix a symbolic input dimension (e.g. ``batch``) to a value for feed validation."""
        self._free_dims[str(dim_name)] = int(dim_value)

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
                 "only_execute_path_to_fetches", "_config")

    def __init__(self) -> None:
        self.terminate = False
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.logid = ""
        self.run_tag = ""
        self.only_execute_path_to_fetches = False
        self._config: dict[str, str] = {}

    def add_run_config_entry(self, key: str, value: str) -> None:
        """Store a free-form run configuration entry."""
        self._config[str(key)] = str(value)

    def get_run_config_entry(self, key: str) -> str:
        """A stored run configuration entry."""
        try:
            return self._config[key]
        except KeyError:
            raise KeyError(f"run config entry {key!r} is not set") from None
