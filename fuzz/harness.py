"""Fuzzing harnesses: every stage of pyonnx must end in success or a PyOnnxError.

Stages, each fuzzed separately: ``load`` (bytes -> Model), ``check`` (check_model),
``infer`` (infer_shapes of a loaded model), ``session`` (InferenceSession creation) and
``run`` (session.run on fed values). Inputs are seeded from the ONNX backend suite's node
models (with their first data set as feeds) and mutated at two levels:

* bytes: flips, insertions, deletions, truncation, splices of two seeds;
* structure: the ModelProto is decoded and one of its fields changed to a value hostile input
  would use (extreme dims and element types, attribute values, rewired or duplicated nodes,
  renamed ops, external data pointing anywhere, nesting, opset versions), and feeds get
  extreme values, wrong shapes and wrong dtypes.

Whatever escapes as another exception type is a finding: :func:`call_stage` raises
:class:`Untyped` for it, carrying the stage, the exception and a reproducer of the input.
A stage that runs longer than :data:`HANG_SECONDS` is a hang (SIGALRM), and the process runs
under an address-space limit so that an unchecked allocation becomes a MemoryError finding
instead of exhausting the machine.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import random
import resource
import signal
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

STAGES = ("load", "check", "infer", "session", "run")
HANG_SECONDS = 60
ADDRESS_SPACE_LIMIT = 3 * 2**30
MAX_SEED_BYTES = 64 * 1024  # smaller models mutate into more varied programs per second


class Untyped(AssertionError):
    """A stage ended in something other than success or a PyOnnxError."""


class Hang(BaseException):
    """Raised by SIGALRM inside a stage that ran too long (BaseException: kernels that catch
    Exception must not swallow it)."""


def limit_memory(limit: int = ADDRESS_SPACE_LIMIT) -> None:
    """Cap this process's address space (unchecked allocations then fail as MemoryError)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


# ----------------------------------------------------------------------------------- seeds


@functools.cache
def seeds() -> tuple[tuple[str, bytes, dict[str, Any]], ...]:
    """(case name, model bytes, feeds) of the backend suite's node cases, small ones only,
    in a fixed order. Cached on disk: collecting the cases takes the onnx package ~25 s."""
    import onnx

    cache = os.path.join(tempfile.gettempdir(), f"pyonnx_fuzz_seeds_{onnx.__version__}.pkl")
    if os.path.exists(cache):
        with open(cache, "rb") as f:
            return pickle.load(f)
    from tests.conformance.backend import node_cases

    out = []
    for c in node_cases():
        if len(c.model) > MAX_SEED_BYTES or not c.data_sets:
            continue
        m = onnx.load_from_string(c.model)
        inits = {i.name for i in m.graph.initializer}
        names = [i.name for i in m.graph.input if i.name not in inits]
        ins = c.data_sets[0][0]
        if len(ins) != len(names) or any(not isinstance(a, np.ndarray) for a in ins) \
                or sum(a.nbytes for a in ins) > MAX_SEED_BYTES:
            continue
        out.append((c.name, c.model, dict(zip(names, ins))))
    out.sort(key=lambda s: s[0])
    tmp = cache + f".{os.getpid()}"
    with open(tmp, "wb") as f:
        pickle.dump(tuple(out), f)
    os.replace(tmp, cache)
    return tuple(out)


# ----------------------------------------------------------------------------------- stages


@contextlib.contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise Hang(f"no result within {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _run_stage(stage: str, data: bytes, feeds: dict[str, Any] | None) -> None:
    import pyonnx

    if stage == "load":
        pyonnx.load(data)
    elif stage == "check":
        pyonnx.check_model(data, full_check=True)
    elif stage == "infer":
        pyonnx.infer_shapes(pyonnx.load(data), strict=False)
    elif stage == "session":
        pyonnx.InferenceSession(data)
    elif stage == "run":
        pyonnx.InferenceSession(data).run(None, feeds or {})
    else:
        raise ValueError(stage)


#: executions per stage in this process (the README's numbers come from these)
COUNTS: dict[str, int] = {s: 0 for s in STAGES}


def call_stage(stage: str, data: bytes, feeds: dict[str, Any] | None = None, *,
               hang_seconds: int = HANG_SECONDS) -> str:
    """Run one stage on one input; return "ok" or the PyOnnxError's type name. Anything else
    raises :class:`Untyped` describing the finding."""
    from pyonnx.errors import PyOnnxError

    COUNTS[stage] += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"), _alarm(hang_seconds):
                _run_stage(stage, data, feeds)
        return "ok"
    except PyOnnxError as e:
        return type(e).__name__
    except (Exception, Hang) as e:  # noqa: BLE001 - the findings
        raise Untyped(f"stage {stage!r} raised {type(e).__name__}: {str(e)[:500]}\n"
                      f"reproduce: {reproducer(stage, data, feeds)}") from e


def reproducer(stage: str, data: bytes, feeds: dict[str, Any] | None) -> str:
    """Save the input under fuzz/findings/ and return how to replay it."""
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "findings")
    os.makedirs(folder, exist_ok=True)
    import hashlib

    digest = hashlib.sha1(data + repr(sorted((feeds or {}).keys())).encode()).hexdigest()[:12]
    path = os.path.join(folder, f"{stage}-{digest}.pkl")
    with open(path, "wb") as f:
        pickle.dump({"stage": stage, "data": data, "feeds": feeds}, f)
    return f"python -m fuzz.replay {path}"


# ----------------------------------------------------------------------------------- byte level

EXTREME_INTS = (-(2**63), -(2**31), -2, -1, 0, 1, 2, 3, 7, 64, 65, 255, 2**31 - 1, 2**31,
                2**32, 2**40, 2**62, 2**63 - 1)


def mutate_bytes(rng: random.Random, data: bytes, other: bytes) -> bytes:
    """One to four byte-level edits of data (other: a second seed for splicing)."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        if not b:
            b = bytearray(other[:64])
            continue
        i = rng.randrange(len(b))
        if op == 0:
            b[i] = rng.randrange(256)
        elif op == 1:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 2:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3:
            del b[i:i + rng.randint(1, 16)]
        elif op == 4:
            b = b[:i]
        else:
            j = rng.randrange(len(other)) if other else 0
            b[i:] = other[j:j + rng.randint(1, 256)]
    return bytes(b)


# ----------------------------------------------------------------------------------- structure


def _pick(rng: random.Random, seq: Any) -> Any:
    return seq[rng.randrange(len(seq))] if len(seq) else None


def _graphs(g: Any) -> list[Any]:
    out, stack = [], [g]
    while stack:
        x = stack.pop()
        out.append(x)
        for n in x.node:
            for a in n.attribute:
                if a.HasField("g"):
                    stack.append(a.g)
                stack.extend(a.graphs)
    return out


_OPS = ("Add", "Gather", "Reshape", "Expand", "ConstantOfShape", "Tile", "Pad", "Slice", "Loop",
        "If", "Scan", "Resize", "Range", "Concat", "Split", "TopK", "ScatterND", "GatherND",
        "Transpose", "Cast", "OneHot", "Squeeze", "Unsqueeze", "Conv", "MaxPool", "NoSuchOp",
        "SequenceAt", "Einsum", "CumSum", "Compress", "Identity", "MatMul")


def mutate_structure(rng: random.Random, data: bytes) -> bytes:
    """Decode, change one to three fields to hostile values, encode again."""
    from pyonnx.io import proto as P

    m = P.ModelProto()
    try:
        m.ParseFromString(data)
    except Exception:  # noqa: BLE001 - a byte-mutated seed: structure mutation does not apply
        return data
    for _ in range(rng.randint(1, 3)):
        graphs = _graphs(m.graph)
        g = _pick(rng, graphs)
        what = rng.randrange(16)
        nodes = list(g.node)
        n = _pick(rng, nodes)
        names = [x for nd in nodes for x in list(nd.input) + list(nd.output)] + \
            [i.name for i in g.input] + [t.name for t in g.initializer] + ["", "ghost"]
        if what == 0 and g.initializer:  # dims
            t = _pick(rng, g.initializer)
            if t.dims:
                t.dims[rng.randrange(len(t.dims))] = _pick(rng, EXTREME_INTS)
            else:
                t.dims.append(_pick(rng, EXTREME_INTS))
        elif what == 1 and g.initializer:  # element type
            _pick(rng, g.initializer).data_type = rng.choice([0, 1, 2, 3, 6, 7, 8, 9, 10, 16, 17,
                                                             21, 22, 23, 25, 26, 99, 2**31 - 1])
        elif what == 2 and n is not None and n.attribute:  # attribute value
            a = _pick(rng, n.attribute)
            v = _pick(rng, EXTREME_INTS)
            if a.type == P.AttributeProto.INT:
                a.i = v
            elif a.type == P.AttributeProto.INTS and a.ints:
                a.ints[rng.randrange(len(a.ints))] = v
            elif a.type == P.AttributeProto.FLOAT:
                a.f = rng.choice([float("nan"), float("inf"), -1e30, 1e30, 0.0])
            else:
                a.type = rng.choice([0, 1, 2, 3, 4, 5, 7, 13, 14])
        elif what == 3 and n is not None and n.input:  # rewire (cycles, undefined, SSA)
            n.input[rng.randrange(len(n.input))] = _pick(rng, names)
        elif what == 4 and n is not None and n.output:
            n.output[rng.randrange(len(n.output))] = _pick(rng, names)
        elif what == 5 and n is not None:
            n.op_type = _pick(rng, _OPS)
        elif what == 6 and n is not None:
            g.node.append(n)  # duplicate producer
        elif what == 7 and nodes:
            del g.node[rng.randrange(len(nodes))]
        elif what == 8 and m.opset_import:
            _pick(rng, m.opset_import).version = rng.choice([1, 6, 7, 9, 11, 13, 17, 21, 24, 26,
                                                            10_000, -1])
        elif what == 9 and g.initializer:  # external data
            t = _pick(rng, g.initializer)
            t.data_location = P.TensorProto.EXTERNAL
            del t.external_data[:]
            for k, v in rng.choice([{"location": "../x"}, {"location": "/etc/passwd"},
                                    {"location": "w", "offset": "-1"}, {"bogus": "1"},
                                    {"location": "model.onnx", "length": str(2**62)}]).items():
                e = t.external_data.add()
                e.key, e.value = k, v
        elif what == 10 and g.initializer:  # raw_data length
            t = _pick(rng, g.initializer)
            t.raw_data = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 3, 7, 64])))
        elif what == 11:  # value_info / input type shapes
            vis = list(g.input) + list(g.output) + list(g.value_info)
            vi = _pick(rng, vis)
            if vi is not None and vi.type.HasField("tensor_type"):
                tt = vi.type.tensor_type
                if rng.random() < 0.3:
                    tt.elem_type = rng.choice([0, 8, 99])
                elif tt.shape.dim:
                    tt.shape.dim[rng.randrange(len(tt.shape.dim))].dim_value = _pick(rng, EXTREME_INTS)
        elif what == 12 and n is not None:  # nest the node in an If
            body = P.GraphProto(name="nested")
            body.node.append(n)
            for o in n.output:
                body.output.add().name = o
            new = P.NodeProto(op_type="If", input=[_pick(rng, names)], output=list(n.output))
            for br in ("then_branch", "else_branch"):
                at = new.attribute.add()
                at.name, at.type = br, P.AttributeProto.GRAPH
                at.g.CopyFrom(body)
            g.node.remove(n)
            g.node.append(new)
        elif what == 13 and n is not None:  # a new attribute
            at = n.attribute.add()
            at.name = rng.choice(["axis", "perm", "to", "mode", "bogus", "body", "value"])
            at.type = P.AttributeProto.INT
            at.i = _pick(rng, EXTREME_INTS)
        elif what == 14 and n is not None:
            n.domain = rng.choice(["", "ai.onnx.ml", "com.microsoft", "evil", "ai.onnx"])
        elif what == 15:
            m.ir_version = rng.choice([0, 1, 3, 7, 10, 11, 13, 2**62])
    try:
        return m.SerializeToString()
    except Exception:  # noqa: BLE001 - protobuf refused what we built (e.g. too deep)
        return data


def mutate_feeds(rng: random.Random, feeds: dict[str, Any], values_only: bool = False
                 ) -> dict[str, Any]:
    """Change one feed: extreme integers (indices), NaN/inf, another shape or dtype
    (``values_only``: only the values, so the feed still passes validation)."""
    with np.errstate(all="ignore"):
        out = _mutate_feeds(rng, feeds, values_only)
        if values_only:
            for _ in range(rng.randint(0, 3)):
                out = _mutate_feeds(rng, out, values_only)
        return out


def _mutate_feeds(rng: random.Random, feeds: dict[str, Any], values_only: bool = False
                  ) -> dict[str, Any]:
    out = {k: v.copy() for k, v in feeds.items()}
    if not out:
        return out
    k = rng.choice(sorted(out))
    a = out[k]
    what = rng.randrange(2 if values_only else 5)
    if what == 0 and a.dtype.kind in "iu" and a.size:
        flat = a.reshape(-1)
        info = np.iinfo(a.dtype)
        vals = [v for v in EXTREME_INTS if info.min <= v <= info.max]
        flat[rng.randrange(flat.size)] = rng.choice(vals)
        out[k] = flat.reshape(a.shape)
    elif what == 1 and a.dtype.kind == "f" and a.size:
        flat = a.reshape(-1)
        flat[rng.randrange(flat.size)] = rng.choice([np.nan, np.inf, -np.inf, 1e30])
        out[k] = flat.reshape(a.shape)
    elif what == 2:
        shape = list(a.shape) or [1]
        shape[rng.randrange(len(shape))] = rng.choice([0, 1, 2, 5])
        out[k] = np.zeros(shape, a.dtype) if a.dtype != object else np.full(shape, "", object)
    elif what == 3:
        try:
            with np.errstate(all="ignore"):
                out[k] = a.astype(rng.choice([np.float64, np.int32, np.uint8, np.bool_]))
        except (ValueError, TypeError):  # strings that are no numbers
            out[k] = np.zeros(a.shape, np.float64)
    else:
        out[k] = a.reshape(-1) if a.ndim != 1 else a.reshape(1, -1)
    return out


# ----------------------------------------------------------------------------------- one step


def fuzz_one(stage: str, rng: random.Random, *, structure: bool) -> str:
    """Mutate a seed (structure-level or byte-level) and run ``stage`` on it. For ``run``,
    a third of the structure-level turns leave the model intact and mutate only the feeds,
    so the kernels meet extreme values instead of a model the session refuses."""
    pool = seeds()
    name, data, feeds = pool[rng.randrange(len(pool))]
    feeds_only = stage == "run" and structure and rng.random() < 0.34
    if feeds_only:
        pass
    elif structure:
        data = mutate_structure(rng, data)
    else:
        data = mutate_bytes(rng, data, pool[rng.randrange(len(pool))][1])
    if stage == "run" and (feeds_only or rng.random() < 0.7):
        feeds = mutate_feeds(rng, feeds, values_only=feeds_only)
    return call_stage(stage, data, feeds)



