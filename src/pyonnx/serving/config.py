"""A served model's effective settings: its tensors as the protocol sees them, and how it runs.

Settings come from three places, in this order of precedence: the model's ``config.pbtxt``
(Triton's text-format model configuration), the server's defaults (the ``pyonnx serve`` flags),
and the model itself (input and output names, element types, shapes). A ``config.pbtxt``, when a
model has one, decides batching for that model; the server's ``--max-batch-size`` and
``--max-queue-delay-ms`` apply to models without one.

Fields of ``config.pbtxt`` honoured (the rest of Triton's configuration is skipped with a
warning): ``name``, ``platform``/``backend`` (must name ONNX / onnxruntime when given),
``max_batch_size``, ``input``/``output`` (``name``, ``data_type``, ``dims``, ``optional``),
``dynamic_batching`` (``max_queue_delay_microseconds``, ``preferred_batch_size``,
``default_queue_policy`` ``max_queue_size`` and ``default_timeout_microseconds``),
``instance_group`` (``count``, summed over groups; every instance runs on the CPU) and
``default_model_filename``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format

from pyonnx.errors import ValidationError
from pyonnx.serving.datatypes import KSERVE_TO_TRITON, ONNX_TO_KSERVE, TRITON_TO_KSERVE
from pyonnx.serving.proto import kserve_pb2

log = logging.getLogger("pyonnx.serving")

PLATFORM = "onnxruntime_onnx"
BACKEND = "onnxruntime"


@dataclass
class TensorSpec:
    """One input or output as served: KServe datatype and full shape (batch dimension included;
    -1 where any size is accepted)."""

    name: str
    datatype: str
    shape: list[int]
    optional: bool = False

    def metadata(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass
class ServerDefaults:
    """Server-wide settings, and the defaults for models without a ``config.pbtxt``."""

    max_batch_size: int = 0            # >0: batch requests of batchable models up to this many rows
    max_queue_delay_us: int = 0        # how long a batch may wait for more requests
    instance_count: int = 1            # concurrent executions per model
    max_queue_size: int = 256          # requests waiting per model; beyond it, refused at once
    request_timeout_s: float = 60.0    # queue time and run time of one request together
    max_request_bytes: int = 64 << 20  # largest request body (HTTP) or message (gRPC)


@dataclass
class ModelSettings:
    """How one model version is served."""

    name: str
    version: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    batchable: bool                    # dim 0 is dynamic on every input and output
    max_batch_size: int = 0            # Triton's meaning: >0, dim 0 is the batch dimension
    dynamic_batching: bool = False
    max_queue_delay_us: int = 0
    preferred_batch_sizes: list[int] = field(default_factory=list)
    instance_count: int = 1
    max_queue_size: int = 256
    request_timeout_s: float = 60.0
    model_filename: str = "model.onnx"

    def to_config(self) -> kserve_pb2.ModelConfig:
        """The effective configuration, as Triton reports it (dims without the batch dimension
        when max_batch_size > 0)."""
        skip = 1 if self.max_batch_size > 0 else 0
        cfg = kserve_pb2.ModelConfig(name=self.name, platform=PLATFORM, backend=BACKEND,
                                     max_batch_size=self.max_batch_size,
                                     default_model_filename=self.model_filename)
        for spec in self.inputs:
            cfg.input.add(name=spec.name, data_type=KSERVE_TO_TRITON[spec.datatype],
                          dims=spec.shape[skip:], optional=spec.optional)
        for spec in self.outputs:
            cfg.output.add(name=spec.name, data_type=KSERVE_TO_TRITON[spec.datatype],
                           dims=spec.shape[skip:])
        cfg.instance_group.add(name=self.name, count=self.instance_count,
                               kind=kserve_pb2.ModelInstanceGroup.KIND_CPU)
        if self.dynamic_batching:
            db = cfg.dynamic_batching
            db.max_queue_delay_microseconds = self.max_queue_delay_us
            db.preferred_batch_size.extend(self.preferred_batch_sizes)
            db.default_queue_policy.max_queue_size = self.max_queue_size
            db.default_queue_policy.default_timeout_microseconds = int(self.request_timeout_s * 1e6)
        return cfg

    def config_json(self) -> dict:
        """The effective configuration as the REST ``config`` route returns it (Triton's JSON:
        proto field names, enum names as strings, integers as numbers)."""
        cfg = self.to_config()
        out: dict = {
            "name": cfg.name, "platform": cfg.platform, "backend": cfg.backend,
            "max_batch_size": cfg.max_batch_size,
            "input": [{"name": i.name, "data_type": kserve_pb2.DataType.Name(i.data_type),
                       "dims": list(i.dims), "optional": i.optional} for i in cfg.input],
            "output": [{"name": o.name, "data_type": kserve_pb2.DataType.Name(o.data_type),
                        "dims": list(o.dims)} for o in cfg.output],
            "instance_group": [{"name": g.name, "count": g.count, "kind": "KIND_CPU"}
                               for g in cfg.instance_group],
            "default_model_filename": cfg.default_model_filename,
        }
        if cfg.HasField("dynamic_batching"):
            db = cfg.dynamic_batching
            out["dynamic_batching"] = {
                "preferred_batch_size": list(db.preferred_batch_size),
                "max_queue_delay_microseconds": db.max_queue_delay_microseconds,
                "default_queue_policy": {
                    "max_queue_size": db.default_queue_policy.max_queue_size,
                    "default_timeout_microseconds":
                        db.default_queue_policy.default_timeout_microseconds},
            }
        return out


def parse_config_text(text: str, where: str) -> kserve_pb2.ModelConfig:
    """Parse a ``config.pbtxt``; fields pyonnx does not honour are skipped with a warning."""
    kept, ignored = _strip_unknown_fields(text, where)
    if ignored:
        log.warning("%s: fields not honoured by pyonnx, ignored: %s", where, ", ".join(ignored))
    cfg = kserve_pb2.ModelConfig()
    try:
        text_format.Parse(kept, cfg)
    except text_format.ParseError as e:
        raise ValidationError(f"{where}: not a valid model configuration: {e}") from None
    return cfg


# tokens of the protobuf text format: strings, comments, names/numbers, punctuation
_TOKEN = re.compile(r"""\s+|\#[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[A-Za-z0-9_.+-]+|[{}\[\]:,;<>]|.""")


def _strip_unknown_fields(text: str, where: str) -> tuple[str, list[str]]:
    """``text`` without the fields (at any depth) that pyonnx's message definitions lack, and
    their dotted names. protobuf's own unknown-field skipping cannot skip a list of messages
    (``model_warmup [ {...} ]``), which real Triton configurations have, hence this pass."""
    tokens = [(m.start(), m.end(), m.group(0)) for m in _TOKEN.finditer(text)]
    sig = [t for t in tokens if not t[2].isspace() and not t[2].startswith("#")]
    drop: list[tuple[int, int]] = []
    ignored: list[str] = []

    def skip_value(i: int) -> int:
        """Index past the value starting at sig[i] (a scalar, {...}, <...> or [...])."""
        opener = sig[i][2]
        if opener in "{[<":
            depth = 0
            while i < len(sig):
                tok = sig[i][2]
                if tok in "{[<":
                    depth += 1
                elif tok in "}]>":
                    depth -= 1
                    if depth == 0:
                        return i + 1
                i += 1
            raise ValidationError(f"{where}: unbalanced brackets in the model configuration")
        return i + 1

    def walk(i: int, desc, path: str, closer: str | None) -> int:
        while i < len(sig):
            tok = sig[i][2]
            if closer is not None and tok == closer:
                return i
            if tok in ",;":
                i += 1
                continue
            name = tok
            field = desc.fields_by_name.get(name) if desc is not None else None
            j = i + 1
            has_colon = j < len(sig) and sig[j][2] == ":"
            if has_colon:
                j += 1
            if j >= len(sig):
                return j
            if field is None:
                ignored.append(path + name)
                end = skip_value(j)
                if end < len(sig) and sig[end][2] in ",;":  # its separator goes with it
                    end += 1
                drop.append((sig[i][0], sig[end - 1][1]))
                i = end
                continue
            sub = field.message_type
            if sig[j][2] == "[" and sub is not None:
                j += 1
                while j < len(sig) and sig[j][2] != "]":
                    if sig[j][2] == ",":
                        j += 1
                        continue
                    j = walk_message(j, sub, path + name + ".")
                i = j + 1
            elif sig[j][2] in "{<" and sub is not None:
                i = walk_message(j, sub, path + name + ".")
            else:
                i = skip_value(j)
        return i

    def walk_message(j: int, desc, path: str) -> int:
        """Walk the ``{ ... }`` or ``< ... >`` body opening at sig[j]; index past its end."""
        if sig[j][2] not in "{<":
            raise ValidationError(f"{where}: expected '{{' at {text[sig[j][0]:sig[j][0] + 30]!r}")
        end = walk(j + 1, desc, path, "}" if sig[j][2] == "{" else ">")
        return end + 1

    walk(0, kserve_pb2.ModelConfig.DESCRIPTOR, "", None)
    out, pos = [], 0
    for start, end in sorted(drop):
        out.append(text[pos:start])
        pos = end
    out.append(text[pos:])
    return "".join(out), ignored


def _dim(d: object) -> int:
    return d if isinstance(d, int) else -1


def build_settings(name: str, version: str, session, config: kserve_pb2.ModelConfig | None,
                   defaults: ServerDefaults, where: str) -> ModelSettings:
    """The settings of model ``name`` version ``version`` served by ``session``.

    ``config`` is its parsed ``config.pbtxt`` or None; ``where`` names the configuration file
    in error messages. Raises ValidationError when the configuration contradicts the model.
    """
    def specs(args, what: str) -> list[TensorSpec]:
        out = []
        for a in args:
            dt = ONNX_TO_KSERVE.get(a.type)
            if dt is None:
                raise ValidationError(f"model {name!r}: {what} {a.name!r} has type {a.type}, "
                                      f"which the KServe v2 protocol cannot carry")
            if a.shape is None:
                raise ValidationError(f"model {name!r}: {what} {a.name!r} has unknown rank; "
                                      f"give it a shape in the model to serve it")
            out.append(TensorSpec(a.name, dt, [_dim(d) for d in a.shape]))
        return out

    inputs = specs(session.get_inputs(), "input")
    outputs = specs(session.get_outputs(), "output")
    batchable = all(len(s.shape) >= 1 and s.shape[0] == -1 for s in inputs + outputs)
    st = ModelSettings(name=name, version=version, inputs=inputs, outputs=outputs,
                       batchable=batchable, instance_count=defaults.instance_count,
                       max_queue_size=defaults.max_queue_size,
                       request_timeout_s=defaults.request_timeout_s)
    if config is None:
        if defaults.max_batch_size > 0 and batchable:
            st.max_batch_size = defaults.max_batch_size
            st.dynamic_batching = True
            st.max_queue_delay_us = defaults.max_queue_delay_us
        elif defaults.max_batch_size > 0:
            log.info("model %r is not batched: dimension 0 is not dynamic on every input and "
                     "output", name)
        return st
    _apply_config(st, config, where)
    return st


def _apply_config(st: ModelSettings, cfg: kserve_pb2.ModelConfig, where: str) -> None:
    if cfg.name and cfg.name != st.name:
        raise ValidationError(f"{where}: name {cfg.name!r} differs from the model's folder "
                              f"name {st.name!r}")
    if cfg.platform and cfg.platform != PLATFORM:
        raise ValidationError(f"{where}: platform {cfg.platform!r} is not {PLATFORM!r}; pyonnx "
                              f"serves ONNX models only")
    if cfg.backend and cfg.backend != BACKEND:
        raise ValidationError(f"{where}: backend {cfg.backend!r} is not {BACKEND!r}; pyonnx "
                              f"serves ONNX models only")
    if cfg.max_batch_size < 0:
        raise ValidationError(f"{where}: max_batch_size must be >= 0, got {cfg.max_batch_size}")
    if cfg.max_batch_size > 0 and not st.batchable:
        bad = next(s for s in st.inputs + st.outputs if not s.shape or s.shape[0] != -1)
        raise ValidationError(
            f"{where}: max_batch_size {cfg.max_batch_size} needs dimension 0 to be a dynamic "
            f"batch dimension on every input and output, but {bad.name!r} has shape {bad.shape}")
    st.max_batch_size = cfg.max_batch_size
    if cfg.default_model_filename:
        st.model_filename = cfg.default_model_filename
    skip = 1 if st.max_batch_size > 0 else 0
    for what, declared, specs in (("input", cfg.input, st.inputs), ("output", cfg.output, st.outputs)):
        by_name = {s.name: s for s in specs}
        for d in declared:
            spec = by_name.get(d.name)
            if spec is None:
                raise ValidationError(f"{where}: {what} {d.name!r} is not an {what} of the model "
                                      f"(it has {', '.join(by_name)})")
            if d.data_type != kserve_pb2.TYPE_INVALID:
                dt = TRITON_TO_KSERVE.get(kserve_pb2.DataType.Name(d.data_type))
                if dt != spec.datatype:
                    raise ValidationError(
                        f"{where}: {what} {d.name!r} has data_type "
                        f"{kserve_pb2.DataType.Name(d.data_type)}, the model's is "
                        f"{KSERVE_TO_TRITON[spec.datatype]}")
            if d.dims:
                full = ([-1] if skip else []) + list(d.dims)
                if len(full) != len(spec.shape):
                    raise ValidationError(
                        f"{where}: {what} {d.name!r} dims {list(d.dims)} give rank {len(full)}, "
                        f"the model's {what} has rank {len(spec.shape)} (shape {spec.shape}"
                        f"{'; dims exclude the batch dimension when max_batch_size > 0' if skip else ''})")
                merged = []
                for c, m in zip(full, spec.shape):
                    if c != -1 and m != -1 and c != m:
                        raise ValidationError(f"{where}: {what} {d.name!r} dims {list(d.dims)} "
                                              f"contradict the model's shape {spec.shape}")
                    merged.append(m if c == -1 else c)
                spec.shape = merged
            if what == "input":
                spec.optional = d.optional
    if cfg.instance_group:
        count = 0
        for g in cfg.instance_group:
            if g.kind == kserve_pb2.ModelInstanceGroup.KIND_GPU:
                log.warning("%s: instance_group kind KIND_GPU: pyonnx runs these instances on "
                            "the CPU", where)
            count += g.count if g.count > 0 else 1
        st.instance_count = count
    if cfg.HasField("dynamic_batching"):
        if st.max_batch_size <= 0:
            raise ValidationError(f"{where}: dynamic_batching needs max_batch_size > 0")
        db = cfg.dynamic_batching
        st.dynamic_batching = True
        st.max_queue_delay_us = db.max_queue_delay_microseconds
        for p in db.preferred_batch_size:
            if not 0 < p <= st.max_batch_size:
                raise ValidationError(f"{where}: preferred_batch_size {p} is not in "
                                      f"1..max_batch_size ({st.max_batch_size})")
        st.preferred_batch_sizes = sorted(set(db.preferred_batch_size))
        if db.default_queue_policy.max_queue_size:
            st.max_queue_size = db.default_queue_policy.max_queue_size
        if db.default_queue_policy.default_timeout_microseconds:
            st.request_timeout_s = db.default_queue_policy.default_timeout_microseconds / 1e6


def read_config(path: Path) -> kserve_pb2.ModelConfig | None:
    """The parsed ``config.pbtxt`` at ``path``, or None if there is none."""
    if not path.is_file():
        return None
    return parse_config_text(path.read_text(encoding="utf-8"), str(path))
