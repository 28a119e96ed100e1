"""The inference server's core, shared by the REST and gRPC front ends.

:class:`InferenceServer` owns the repository, the loaded models (one :class:`ServedModel` per
name and version, each with its :class:`~pyonnx.serving.runner.ModelRunner`), the metrics and
the server state (ready, draining). Front ends decode a request into NumPy arrays, ask the
server to check and queue it, and encode what comes back; everything protocol-independent is
here, so both protocols behave alike.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from pyonnx import __version__
from pyonnx.errors import PyOnnxError
from pyonnx.serving.config import ModelSettings, ServerDefaults, TensorSpec, build_settings, read_config
from pyonnx.serving.datatypes import element_count
from pyonnx.serving.errors import BadRequest, ModelNotFound, ServingError, Unavailable
from pyonnx.serving.metrics import ServerMetrics
from pyonnx.serving.repository import ModelRepository, check_name, check_version
from pyonnx.serving.runner import ModelRunner

log = logging.getLogger("pyonnx.serving")

SERVER_NAME = "pyonnx"
# the protocol extensions this server implements (Triton's names)
EXTENSIONS = ["binary_tensor_data", "model_repository", "model_configuration",
              "statistics", "parameters"]


@dataclass(eq=False)
class ServedModel:
    """One loaded model version: its settings, session and runner."""

    settings: ModelSettings
    session: object
    runner: ModelRunner

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def version(self) -> str:
        return self.settings.version

    def input_spec(self, name: str, datatype: str, shape: list[int]) -> TensorSpec:
        """The spec of input ``name`` after checking the request's datatype and shape against it."""
        spec = next((s for s in self.settings.inputs if s.name == name), None)
        if spec is None:
            raise BadRequest(f"model {self.name!r} has no input {name!r} (its inputs: "
                             f"{', '.join(s.name for s in self.settings.inputs)})")
        if datatype != spec.datatype:
            raise BadRequest(f"input {name!r} of model {self.name!r} has datatype "
                             f"{spec.datatype}, the request gives {datatype}")
        element_count(shape, name)
        if len(shape) != len(spec.shape) or any(d != -1 and d != s for d, s in zip(spec.shape, shape)):
            raise BadRequest(f"input {name!r} of model {self.name!r} has shape {spec.shape} (-1: "
                             f"any size), the request gives {list(shape)}")
        mbs = self.settings.max_batch_size
        if mbs > 0 and shape[0] > mbs:
            raise BadRequest(f"input {name!r} of model {self.name!r}: batch size {shape[0]} "
                             f"exceeds the model's max_batch_size {mbs}")
        return spec

    def output_names(self, requested: list[str]) -> list[str]:
        """``requested`` checked against the model's outputs (all outputs when empty)."""
        names = [s.name for s in self.settings.outputs]
        for r in requested:
            if r not in names:
                raise BadRequest(f"model {self.name!r} has no output {r!r} (its outputs: "
                                 f"{', '.join(names)})")
        return list(requested) if requested else names

    def output_spec(self, name: str) -> TensorSpec:
        return next(s for s in self.settings.outputs if s.name == name)

    def submit(self, arrays: dict[str, np.ndarray], timeout_s: float | None = None) -> Future:
        """Queue a request whose inputs passed :meth:`input_spec`; BadRequest if incomplete."""
        missing = [s.name for s in self.settings.inputs
                   if s.name not in arrays and not s.optional]
        if missing:
            raise BadRequest(f"model {self.name!r}: the request lacks input(s) "
                             f"{', '.join(map(repr, missing))}")
        feeds = {}
        for name, arr in arrays.items():
            if arr.dtype == object:  # BYTES: the session takes ONNX strings as str objects
                try:
                    arr = np.array([b.decode("utf-8") if isinstance(b, bytes) else b
                                    for b in arr.ravel()], dtype=object).reshape(arr.shape)
                except UnicodeDecodeError:
                    raise BadRequest(f"input {name!r} of model {self.name!r}: a BYTES element is "
                                     f"not UTF-8 text, which ONNX strings must be") from None
            feeds[name] = arr
        if self.settings.dynamic_batching and feeds:
            rows = {a.shape[0] for a in feeds.values()}
            if len(rows) > 1:
                raise BadRequest(f"model {self.name!r}: inputs disagree on the batch size "
                                 f"(dimension 0): {sorted(rows)}")
        return self.runner.submit(feeds, timeout_s)

    def metadata(self, versions: list[str]) -> dict:
        return {"name": self.name, "versions": versions, "platform": "onnxruntime_onnx",
                "inputs": [s.metadata() for s in self.settings.inputs],
                "outputs": [s.metadata() for s in self.settings.outputs]}


class InferenceServer:
    """The models of one repository, served; thread-safe."""

    def __init__(self, location: str | os.PathLike, defaults: ServerDefaults | None = None,
                 session_options=None) -> None:
        self.repository = ModelRepository(location)
        self.defaults = defaults or ServerDefaults()
        self.metrics = ServerMetrics()
        self.session_options = session_options
        self._lock = threading.RLock()
        self._models: dict[str, dict[str, ServedModel]] = {}
        self._failed: dict[str, str] = {}   # name -> why its last load failed
        self._started = False
        self.draining = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Load every model of the repository; a model that fails is logged and left unloaded."""
        for name in self.repository.names():
            try:
                self.load(name)
            except (PyOnnxError, OSError) as e:
                log.error("model %r not loaded: %s", name, e)
        self._started = True

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self._started and not self.draining

    def begin_drain(self) -> None:
        """Refuse new inference requests from now on (in-flight ones finish, without waiting
        for batches to fill)."""
        self.draining = True
        for m in self.served():
            m.runner.flush()

    def shutdown(self) -> None:
        """Drain: refuse new requests, finish queued and running ones, stop every runner."""
        self.draining = True
        with self._lock:
            models = [m for versions in self._models.values() for m in versions.values()]
        for m in models:
            m.runner.stop()

    # ------------------------------------------------------------------ repository
    def load(self, name: str) -> None:
        """(Re)load every version of model ``name`` from the repository."""
        from pyonnx.runtime import InferenceSession

        check_name(name)
        try:
            sources = self.repository.sources(name)
            loaded: dict[str, ServedModel] = {}
            config = read_config(sources[0].config_path) if sources[0].config_path else None
            for src in sources:
                session = InferenceSession(str(src.path), sess_options=self.session_options)
                settings = build_settings(name, src.version, session, config, self.defaults,
                                          str(src.config_path or src.path))
                loaded[src.version] = ServedModel(settings, session,
                                                  ModelRunner(session, settings, self.metrics))
        except ServingError:
            raise
        except (PyOnnxError, OSError) as e:
            with self._lock:
                self._failed[name] = str(e)
            raise BadRequest(f"model {name!r} failed to load: {e}") from e
        with self._lock:
            old = self._models.get(name, {})
            self._models[name] = loaded
            self._failed.pop(name, None)
        for m in old.values():  # the old versions finish what they have queued
            threading.Thread(target=m.runner.stop, daemon=True).start()
        log.info("model %r loaded (versions %s)", name, ", ".join(loaded))

    def unload(self, name: str) -> None:
        """Stop serving model ``name``; its queued and running requests still finish."""
        check_name(name)
        with self._lock:
            old = self._models.pop(name, None)
        if old is None:
            raise ModelNotFound(f"model {name!r} is not loaded")
        for m in old.values():
            threading.Thread(target=m.runner.stop, daemon=True).start()
        log.info("model %r unloaded", name)

    def index(self, ready_only: bool = False) -> list[dict]:
        """Triton's repository index: every model on disk with its state."""
        out = []
        with self._lock:
            for name in self.repository.names():
                versions = self._models.get(name)
                if versions:
                    out.extend({"name": name, "version": v, "state": "READY"} for v in versions)
                elif not ready_only:
                    entry = {"name": name, "state": "UNAVAILABLE",
                             "reason": self._failed.get(name, "unloaded")}
                    out.append(entry)
        return out

    # ------------------------------------------------------------------ lookup
    def model(self, name: str, version: str = "") -> ServedModel:
        """The loaded model ``name`` at ``version`` (highest when empty); ModelNotFound if none."""
        check_name(name)
        check_version(version)
        with self._lock:
            versions = self._models.get(name)
            if not versions:
                reason = self._failed.get(name)
                raise ModelNotFound(f"unknown model {name!r}" + (f" (failed to load: {reason})"
                                                                 if reason else ""))
            if not version:
                return versions[max(versions, key=int)]
            m = versions.get(str(int(version)))
            if m is None:
                raise ModelNotFound(f"model {name!r} has no version {version!r} (versions: "
                                    f"{', '.join(sorted(versions, key=int))})")
            return m

    def versions(self, name: str) -> list[str]:
        with self._lock:
            return sorted(self._models.get(name, {}), key=int)

    def model_ready(self, name: str, version: str = "") -> bool:
        try:
            self.model(name, version)
        except ModelNotFound:
            return False
        return not self.draining

    def served(self) -> list[ServedModel]:
        with self._lock:
            return [m for vs in self._models.values() for m in vs.values()]

    # ------------------------------------------------------------------ protocol helpers
    def metadata(self) -> dict:
        return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}

    def model_metadata(self, name: str, version: str = "") -> dict:
        m = self.model(name, version)
        return m.metadata(self.versions(name))

    def statistics(self, name: str = "", version: str = "") -> list[dict]:
        models = [self.model(name, version)] if name else self.served()
        if name and not version:  # every version of the model, as Triton does
            with self._lock:
                models = list(self._models.get(name, {}).values())
        return [m.runner.stats.as_dict(m.name, m.version) for m in models]

    def check_accepting(self) -> None:
        if self.draining:
            raise Unavailable("the server is shutting down; request refused")
