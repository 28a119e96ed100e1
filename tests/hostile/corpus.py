"""The hostile-model corpus: one hand-built model (or feed) per class of attack.

Each :class:`Case` builds its model into a fresh folder (external-data cases also write data
files, symlinks and hard links there) and states, for each stage it exercises, the outcome it
must end in: ``"ok"`` or the name of a :class:`~pyonnx.errors.PyOnnxError` subclass. Stages:

``load``     ``pyonnx.load(path)`` (with the case's load keyword arguments)
``check``    ``pyonnx.check_model(path)``
``infer``    ``pyonnx.serialize(pyonnx.infer_shapes(pyonnx.load(path)))``
``infer_strict`` the same with ``strict=True``
``session``  ``InferenceSession(path, opts)`` (the case's SessionOptions)
``run``      ``InferenceSession(path, opts).run(None, feeds)``

The runner (:mod:`tests.hostile.runner`) executes every stage of every case in its own forked
process under an address-space limit, so an allocation bomb that escapes the limits fails the
case with a MemoryError instead of taking the machine down.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pyonnx.io import proto as P
from tests.hostile._build import (
    BOOL,
    FLOAT,
    INT64,
    function,
    graph,
    model,
    node,
    single_op,
    tensor,
    value_info,
)

D, V, S, R, C, I, E, U = ("DecodeError", "ValidationError", "ShapeInferenceError",
                          "ResourceLimitExceeded", "ExecutionError", "InvalidArgument",
                          "ExecutionError", "UnsupportedOperatorError")
OK = "ok"


@dataclasses.dataclass
class Case:
    """One attack: ``build(folder)`` writes what it needs and returns the model path (or
    bytes); ``expect`` maps stage -> expected outcome; ``feeds()`` gives the run's feeds;
    ``options`` are SessionOptions attributes and ``load_kwargs`` keyword arguments of load."""

    name: str
    attack: str
    build: Callable[[Path], str | bytes]
    expect: dict[str, str]
    feeds: Callable[[], dict[str, Any]] | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    load_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)


CASES: list[Case] = []


def case(name: str, attack: str, expect: dict[str, str], *, feeds: Any = None,
         options: dict[str, Any] | None = None, load_kwargs: dict[str, Any] | None = None
         ) -> Callable[[Callable[[Path], Any]], Callable[[Path], Any]]:
    """Register the decorated builder as a corpus case."""

    def register(fn: Callable[[Path], Any]) -> Callable[[Path], Any]:
        assert all(c.name != name for c in CASES), name
        CASES.append(Case(name, attack, fn, expect, feeds, options or {}, load_kwargs or {}))
        return fn

    return register


def _write(folder: Path, m: Any, name: str = "model.onnx") -> str:
    path = folder / name
    path.write_bytes(m.SerializeToString())
    return str(path)


def _save(m: Any) -> Callable[[Path], str]:
    return lambda folder: _write(folder, m)


def _fixed(name: str, attack: str, expect: dict[str, str], m: Any, **kw: Any) -> None:
    case(name, attack, expect, **kw)(_save(m))


# every stage of a model that cannot be read fails the same way
def _all(outcome: str, *, run: bool = True) -> dict[str, str]:
    stages = ["load", "check", "infer", "session"] + (["run"] if run else [])
    return {s: outcome for s in stages}


# =========================================================================== external data

_W = np.arange(4, dtype=np.float32)  # 16 bytes


def _ext_model(entries: dict[str, str], *, dims: tuple[int, ...] = (4,), where: str = "init"
               ) -> Any:
    """A model y = x + w whose w keeps its data in external entries, placed ``where``: an
    initializer, a sparse initializer's values, a Constant attribute, an If branch's
    initializer, or a Constant inside a model-local function."""
    ext = tensor("w", dims=dims, data_type=FLOAT, external=entries)
    x = value_info("x", FLOAT, [4])
    y = value_info("y", FLOAT, [4])
    if where == "init":
        return model(graph([node("Add", ["x", "w"], ["y"])], [x], [y], initializers=[ext]))
    if where == "sparse":
        sp = P.SparseTensorProto()
        ext.name = "w"
        sp.values.CopyFrom(tensor("w", dims=(1,), data_type=FLOAT, external=entries))
        sp.indices.CopyFrom(tensor("w_idx", np.array([0], np.int64)))
        sp.dims.extend([4])
        return model(graph([node("Add", ["x", "w"], ["y"])], [x], [y], sparse_initializers=[sp]))
    if where == "constant":
        return model(graph([node("Constant", [], ["w"], value=ext), node("Add", ["x", "w"], ["y"])],
                           [x], [y]))
    if where == "subgraph":
        branch = graph([node("Add", ["x", "w"], ["b_out"])], [], [value_info("b_out", FLOAT, [4])],
                       initializers=[ext], name="then")
        other = graph([node("Identity", ["x"], ["e_out"])], [], [value_info("e_out", FLOAT, [4])],
                      name="else")
        return model(graph([node("If", ["c"], ["y"], then_branch=branch, else_branch=other)],
                           [x, value_info("c", BOOL, [])], [y]))
    if where == "function":
        f = function("AddW", "local", ["a"], ["b"],
                     [node("Constant", [], ["w"], value=ext), node("Add", ["a", "w"], ["b"])])
        return model(graph([node("AddW", ["x"], ["y"], domain="local")], [x], [y]),
                     extra_opsets={"local": 1}, functions=[f])
    raise ValueError(where)


def _ext_case(name: str, entries: dict[str, str], *, where: str = "init",
              prepare: Callable[[Path], None] | None = None, dims: tuple[int, ...] = (4,),
              outcome: str = D) -> None:
    def build(folder: Path) -> str:
        model_dir = folder / "model"
        model_dir.mkdir()
        (model_dir / "w.bin").write_bytes(_W.tobytes())
        (folder / "secret.bin").write_bytes(b"S" * 16)  # what an escape would read
        if prepare is not None:
            prepare(model_dir)
        return _write(model_dir, _ext_model(entries, dims=dims, where=where))

    case(f"external_{name}", "external data", _all(outcome, run=False))(build)


_ext_case("absolute_path", {"location": "/etc/passwd"})
_ext_case("absolute_to_secret", {"location": "@SECRET@"})  # replaced below by the real path
_ext_case("dotdot_first", {"location": "../secret.bin"})
_ext_case("dotdot_middle", {"location": "sub/../../secret.bin"})
_ext_case("dotdot_last", {"location": "w.bin/.."})  # the model folder itself: not a file
_ext_case("dotdot_deep", {"location": "a/b/../../../../../../../../etc/passwd"})
_ext_case("windows_drive", {"location": "C:\\secret.bin"})
_ext_case("backslash_dotdot", {"location": "..\\secret.bin"}, outcome=D)
_ext_case("nul_in_location", {"location": "w.bin\0../../secret.bin"})
_ext_case("symlink_out", {"location": "link.bin"},
          prepare=lambda d: os.symlink(d.parent / "secret.bin", d / "link.bin"))
_ext_case("symlinked_folder_out", {"location": "sub/secret.bin"},
          prepare=lambda d: os.symlink(d.parent, d / "sub"))
_ext_case("hardlink", {"location": "hard.bin"},
          prepare=lambda d: os.link(d.parent / "secret.bin", d / "hard.bin"))
_ext_case("device_via_symlink", {"location": "zero.bin", "length": "16"},
          prepare=lambda d: os.symlink("/dev/zero", d / "zero.bin"))
_ext_case("unknown_key", {"location": "w.bin", "evil": "1"})
_ext_case("no_location", {"offset": "0"})
_ext_case("empty_location", {"location": ""})
_ext_case("negative_offset", {"location": "w.bin", "offset": "-1"})
_ext_case("negative_length", {"location": "w.bin", "length": "-16"})
_ext_case("non_decimal_offset", {"location": "w.bin", "offset": "0x10"})
_ext_case("range_past_eof", {"location": "w.bin", "offset": "8", "length": "16"})
_ext_case("offset_past_eof", {"location": "w.bin", "offset": "1000"})
_ext_case("huge_length", {"location": "w.bin", "length": "9" * 40})
_ext_case("size_mismatch", {"location": "w.bin", "length": "16"}, dims=(8,))
_ext_case("huge_dims", {"location": "w.bin"}, dims=(2**40, 2**40))
_ext_case("missing_file", {"location": "nothing_here.bin"})
_ext_case("directory", {"location": "."})
for _where in ("sparse", "constant", "subgraph", "function"):
    _ext_case(f"dotdot_in_{_where}", {"location": "../secret.bin"}, where=_where)
    _ext_case(f"absolute_in_{_where}", {"location": "/etc/passwd"}, where=_where)
    _ext_case(f"symlink_in_{_where}", {"location": "link.bin"}, where=_where,
              prepare=lambda d: os.symlink(d.parent / "secret.bin", d / "link.bin"))
del _where


def _fix_secret_case() -> None:
    """external_absolute_to_secret points at the real path of the secret file next to the
    model folder (only known once the folder exists)."""
    for i, c in enumerate(CASES):
        if c.name == "external_absolute_to_secret":
            def build(folder: Path) -> str:
                model_dir = folder / "model"
                model_dir.mkdir()
                secret = folder / "secret.bin"
                secret.write_bytes(_W.tobytes())
                return _write(model_dir, _ext_model({"location": str(secret)}))

            CASES[i] = dataclasses.replace(c, build=build)


_fix_secret_case()


@case("external_data_in_bytes_model", "external data", {"load": D, "session": D})
def _ext_bytes(folder: Path) -> bytes:
    (folder / "w.bin").write_bytes(_W.tobytes())
    return _ext_model({"location": "w.bin"}).SerializeToString()


@case("external_duplicate_key", "external data", _all(D, run=False))
def _ext_dup(folder: Path) -> str:
    m = _ext_model({"location": "w.bin"})
    e = m.graph.initializer[0].external_data.add()
    e.key, e.value = "location", "../secret.bin"
    (folder / "w.bin").write_bytes(_W.tobytes())
    return _write(folder, m)


@case("external_valid_control", "external data (control: must load)",
      {"load": OK, "check": OK, "infer": OK, "session": OK, "run": OK},
      feeds=lambda: {"x": np.ones(4, np.float32)})
def _ext_ok(folder: Path) -> str:
    (folder / "w.bin").write_bytes(_W.tobytes())
    return _write(folder, _ext_model({"location": "w.bin", "offset": "0", "length": "16"}))


# =========================================================================== bytes

_SMALL = model(graph([node("Relu", ["x"], ["h"]), node("Neg", ["h"], ["y"])],
                     [value_info("x", FLOAT, [2])], [value_info("y", FLOAT, [2])],
                     initializers=[tensor("unused", np.ones(3, np.float32))]))
_SMALL_BYTES = _SMALL.SerializeToString()

case("bytes_empty", "truncated and random bytes", _all(D, run=False))(lambda f: b"")
case("bytes_truncated_in_tensor", "truncated and random bytes", _all(D, run=False))(
    lambda f: _SMALL_BYTES[:-5])
case("bytes_truncated_in_varint", "truncated and random bytes", _all(D, run=False))(
    lambda f: _SMALL_BYTES[:3])
case("bytes_random", "truncated and random bytes", _all(D, run=False))(
    lambda f: np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
case("bytes_zeros", "truncated and random bytes", _all(D, run=False))(lambda f: bytes(1000))
case("bytes_text_file", "truncated and random bytes", _all(D, run=False))(
    lambda f: b"<html><body>404 Not Found</body></html>\n")
# a length prefix promising 2**62 bytes
case("bytes_huge_length_prefix", "truncated and random bytes", _all(D, run=False))(
    lambda f: b"\x3a\xff\xff\xff\xff\xff\xff\xff\xff\x3f" + b"\x00" * 10)


@case("bytes_not_a_file", "truncated and random bytes", {"load": D, "check": D, "session": D})
def _no_file(folder: Path) -> str:
    return str(folder / "does_not_exist.onnx")


@case("bytes_directory", "truncated and random bytes", {"load": D, "check": D, "session": D})
def _dir_path(folder: Path) -> str:
    return str(folder)


# =========================================================================== tensors


def _init_model(t: Any) -> Any:
    return model(graph([node("Identity", [t.name], ["y"])], [], [value_info("y", FLOAT, None)],
                       initializers=[t]))


_fixed("tensor_unknown_dtype", "unknown dtype", _all(D, run=False),
       _init_model(tensor("t", dims=[1], data_type=99, raw=b"\0" * 4)))
_fixed("tensor_undefined_dtype", "unknown dtype", _all(D, run=False),
       _init_model(tensor("t", dims=[1], data_type=0, raw=b"\0" * 4)))
_fixed("tensor_negative_dim", "negative and huge dims", _all(D, run=False),
       _init_model(tensor("t", dims=[-1, 4], data_type=FLOAT, raw=b"\0" * 16)))
_fixed("tensor_huge_dims_small_raw", "negative and huge dims", _all(D, run=False),
       _init_model(tensor("t", dims=[2**31, 2**31, 2**31], data_type=FLOAT, raw=b"\0" * 16)))
_fixed("tensor_huge_dims_no_data", "negative and huge dims", _all(D, run=False),
       _init_model(tensor("t", dims=[2**62, 2**62], data_type=FLOAT)))
_fixed("tensor_dims_product_wraps_int64", "negative and huge dims", _all(D, run=False),
       _init_model(tensor("t", dims=[2**32, 2**32, 1], data_type=FLOAT, raw=b"")))
_fixed("tensor_raw_size_mismatch", "tensor byte count disagrees with dims", _all(D, run=False),
       _init_model(tensor("t", dims=[4], data_type=FLOAT, raw=b"\0" * 15)))
_fixed("tensor_typed_count_mismatch", "tensor byte count disagrees with dims", _all(D, run=False),
       _init_model(P.TensorProto(name="t", dims=[3], data_type=FLOAT, float_data=[1.0])))
_fixed("tensor_string_raw", "tensor byte count disagrees with dims", _all(D, run=False),
       _init_model(tensor("t", dims=[1], data_type=8, raw=b"abcd")))
_fixed("tensor_zero_with_huge_dim", "negative and huge dims", _all(D, run=False),
       _init_model(tensor("t", dims=[0, 2**62], data_type=FLOAT, raw=b"")))
_fixed("tensor_rank_100", "negative and huge dims", _all(D, run=False),
       _init_model(tensor("t", dims=[1] * 100, data_type=FLOAT, raw=b"\0" * 4)))


def _sparse(dims: list[int], indices: np.ndarray, values: np.ndarray) -> Any:
    sp = P.SparseTensorProto()
    sp.values.CopyFrom(tensor("s", values))
    sp.indices.CopyFrom(tensor("s_idx", indices))
    sp.dims.extend(dims)
    return sp


def _sparse_model(sp: Any) -> Any:
    return model(graph([node("Identity", ["s"], ["y"])], [], [value_info("y", FLOAT, None)],
                       sparse_initializers=[sp]))


_fixed("sparse_index_out_of_range", "out-of-range indices",
       {"load": OK, "check": V, "infer": V, "session": V},
       _sparse_model(_sparse([4], np.array([7], np.int64), np.ones(1, np.float32))))
_fixed("sparse_negative_index", "out-of-range indices",
       {"load": OK, "check": V, "infer": V, "session": V},
       _sparse_model(_sparse([4], np.array([-1], np.int64), np.ones(1, np.float32))))
_fixed("sparse_dense_bomb", "allocation bomb at load",
       {"load": OK, "session": R},
       _sparse_model(_sparse([2**20, 2**20], np.array([[0, 0]], np.int64), np.ones(1, np.float32))))
_fixed("sparse_dense_bomb_under_limit", "allocation bomb at load",
       {"load": OK, "session": R},  # 4 GiB: under max_tensor_bytes, over the address space
       _sparse_model(_sparse([2**15, 2**15], np.array([[0, 0]], np.int64), np.ones(1, np.float32))))
_fixed("sparse_constant_attribute_bomb", "allocation bomb at load",
       {"load": OK, "session": R},
       model(graph([node("Constant", [], ["y"], sparse_value=_sparse(
           [2**20, 2**20], np.array([[0, 0]], np.int64), np.ones(1, np.float32)))], [],
           [value_info("y", FLOAT, None)])))


# =========================================================================== graph structure

_X = value_info("x", FLOAT, [2])
_Y = value_info("y", FLOAT, [2])

_fixed("graph_cycle", "cycles", {"load": OK, "check": V, "session": V},
       model(graph([node("Relu", ["b"], ["a"], name="n1"), node("Neg", ["a"], ["b"], name="n2"),
                    node("Add", ["x", "b"], ["y"], name="n3")], [_X], [_Y])))
_fixed("graph_self_loop", "cycles", {"load": OK, "check": V, "session": V},
       model(graph([node("Add", ["x", "y"], ["y"])], [_X], [_Y])))
_fixed("graph_ssa_two_producers", "SSA violations", {"load": OK, "check": V, "session": V},
       model(graph([node("Relu", ["x"], ["y"], name="n1"), node("Neg", ["x"], ["y"], name="n2")],
                   [_X], [_Y])))
_fixed("graph_ssa_input_redefined", "SSA violations", {"load": OK, "check": V, "session": V},
       model(graph([node("Relu", ["x"], ["x"], name="n1"), node("Neg", ["x"], ["y"], name="n2")],
                   [_X], [_Y])))
_fixed("graph_undefined_input", "undefined inputs", {"load": OK, "check": V, "session": V},
       model(graph([node("Add", ["x", "ghost"], ["y"])], [_X], [_Y])))
_fixed("graph_undefined_output", "undefined inputs", {"load": OK, "check": V, "session": V},
       model(graph([node("Relu", ["x"], ["h"])], [_X], [_Y])))
_fixed("graph_unknown_op", "unknown ops and domains", {"load": OK, "check": V, "session": U},
       model(graph([node("NoSuchOp", ["x"], ["y"])], [_X], [_Y])))
# a custom domain is the checker's blind spot (as onnx's): only the session can tell
_fixed("graph_unknown_domain", "unknown ops and domains", {"load": OK, "check": OK, "session": U},
       model(graph([node("Relu", ["x"], ["y"], domain="evil.domain")], [_X], [_Y]),
             extra_opsets={"evil.domain": 1}))
_fixed("graph_unimported_domain", "unknown ops and domains",
       {"load": OK, "check": V, "session": V},
       model(graph([node("Relu", ["x"], ["y"], domain="not.imported")], [_X], [_Y])))
_fixed("graph_future_opset", "unknown ops and domains", _all(U, run=False),
       model(graph([node("Relu", ["x"], ["y"])], [_X], [_Y]), opset=10_000))
_fixed("graph_future_ir_version", "unknown ops and domains", _all(U, run=False),
       model(graph([node("Relu", ["x"], ["y"])], [_X], [_Y]), ir_version=10_000))
_fixed("graph_op_too_new_for_opset", "unknown ops and domains",
       {"load": OK, "check": V, "session": U},
       model(graph([node("Gelu", ["x"], ["y"])], [_X], [_Y]), opset=13))
_fixed("graph_unknown_attribute", "unknown ops and domains",
       {"load": OK, "check": V, "session": V},
       model(graph([node("Relu", ["x"], ["y"], evil=1)], [_X], [_Y])))
_fixed("graph_too_many_inputs", "unknown ops and domains",
       {"load": OK, "check": V, "session": V},
       model(graph([node("Relu", ["x", "x", "x"], ["y"])], [_X], [_Y])))
_fixed("graph_missing_required_attribute", "unknown ops and domains",
       {"load": OK, "check": V},
       model(graph([node("Cast", ["x"], ["y"])], [_X], [_Y])))


def _chain(n: int, op: str = "Identity") -> Any:
    nodes = [node(op, [f"v{i}" if i else "x"], [f"v{i + 1}" if i + 1 < n else "y"],
                  name=f"n{i}") for i in range(n)]
    return model(graph(nodes, [_X], [_Y]))


_fixed("graph_long_chain", "deep nesting (a 30,000-node chain must not recurse)",
       {"load": OK, "check": OK, "infer": OK, "session": OK, "run": OK}, _chain(30_000, "Relu"),
       feeds=lambda: {"x": np.ones(2, np.float32)})
_fixed("graph_identity_chain", "deep nesting (identities the optimizer removes)",
       {"load": OK, "check": OK, "infer": OK, "session": OK, "run": OK}, _chain(3_000),
       feeds=lambda: {"x": np.ones(2, np.float32)})


# =========================================================================== nesting


def _nested_ifs(depth: int) -> Any:
    leaf = graph([node("Identity", ["x"], ["out0"])], [], [value_info("out0", FLOAT, [2])],
                 name="leaf")
    inner = leaf
    for d in range(1, depth + 1):
        other = graph([node("Identity", ["x"], [f"e{d}"])], [], [value_info(f"e{d}", FLOAT, [2])],
                      name=f"else{d}")
        inner = graph([node("If", ["c"], [f"out{d}"], name=f"if{d}",
                            then_branch=inner, else_branch=other)],
                      [], [value_info(f"out{d}", FLOAT, [2])], name=f"level{d}")
    g = graph(list(inner.node), [_X, value_info("c", BOOL, [])],
              [value_info(f"out{depth}", FLOAT, [2])])
    return model(g)


def _deep_bytes(depth: int) -> bytes:
    """If nested ``depth`` levels, serialized by hand (protobuf's encoder refuses it too)."""
    inner = graph([node("Identity", ["x"], ["o"])], [], [value_info("o", FLOAT, [2])])
    data = inner.SerializeToString()
    for _ in range(depth):
        a = P.AttributeProto(name="then_branch", type=P.AttributeProto.GRAPH)
        a_bytes = a.SerializeToString() + _field(6, data)  # g = 6
        n = P.NodeProto(op_type="If", input=["c"], output=["o"])
        n_bytes = n.SerializeToString() + _field(5, a_bytes)  # attribute = 5
        data = P.GraphProto(name="g").SerializeToString() + _field(1, n_bytes)  # node = 1
    m = model(graph([], [], []))
    return m.SerializeToString() + _field(7, data)  # graph = 7 (last one wins)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    key = _varint(number << 3 | 2)
    return key + _varint(len(payload)) + payload


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


case("nesting_beyond_protobuf", "deep nesting", _all(D, run=False))(lambda f: _deep_bytes(400))
_fixed("nesting_over_option", "deep nesting",
       {"load": R, "session": R, "check": R, "infer": R}, _nested_ifs(12),
       options={"max_nesting_depth": 8}, load_kwargs={"max_nesting_depth": 8})
_fixed("nesting_within_protobuf_control", "deep nesting (control: must work)",
       {"load": OK, "check": OK, "infer": OK, "session": OK, "run": OK}, _nested_ifs(20),
       feeds=lambda: {"x": np.ones(2, np.float32), "c": np.array(True)})


def _recursive_function_model() -> Any:
    f = function("Rec", "local", ["a"], ["b"], [node("Rec", ["a"], ["b"], domain="local")])
    return model(graph([node("Rec", ["x"], ["y"], domain="local")], [_X], [_Y]),
                 extra_opsets={"local": 1}, functions=[f])


_fixed("function_recursion", "deep nesting", {"load": OK, "check": V, "session": R},
       _recursive_function_model())


def _mutual_recursion_model() -> Any:
    f = function("F", "local", ["a"], ["b"], [node("G", ["a"], ["b"], domain="local")])
    g = function("G", "local", ["a"], ["b"], [node("F", ["a"], ["b"], domain="local")])
    return model(graph([node("F", ["x"], ["y"], domain="local")], [_X], [_Y]),
                 extra_opsets={"local": 1}, functions=[f, g])


_fixed("function_mutual_recursion", "deep nesting", {"load": OK, "check": V, "session": R},
       _mutual_recursion_model())


# =========================================================================== allocation bombs

_I64 = lambda name, *vals: tensor(name, np.array(vals, np.int64))  # noqa: E731
_BIG = 2**40  # elements: 4 TiB of float32, far above any limit
_GIG = 2**28  # elements: 1 GiB of float32, under max_tensor_bytes, over the address space


def _bomb(op: str, size: int, stage_at: str, **kw: Any) -> None:
    """A model whose ``op`` computes a ``size``-element tensor from constant inputs: folding
    must refuse to compute it at session creation and the run must stop before allocating."""
    builders = {
        "ConstantOfShape": lambda: single_op("ConstantOfShape", [("shape", INT64, [1])],
                                             initializers=[_I64("shape", size)]),
        "Expand": lambda: single_op("Expand", [("x", FLOAT, [1]), ("shape", INT64, [2])],
                                    initializers=[tensor("x", np.ones(1, np.float32)),
                                                  _I64("shape", size // 4, 4)]),
        "Tile": lambda: single_op("Tile", [("x", FLOAT, [2]), ("r", INT64, [1])],
                                  initializers=[tensor("x", np.ones(2, np.float32)),
                                                _I64("r", size // 2)]),
        "Range": lambda: single_op("Range", [("a", FLOAT, []), ("b", FLOAT, []), ("d", FLOAT, [])],
                                   initializers=[tensor("a", np.array(0, np.float32)),
                                                 tensor("b", np.array(size, np.float32)),
                                                 tensor("d", np.array(1, np.float32))]),
        "Pad": lambda: single_op("Pad", [("x", FLOAT, [1]), ("p", INT64, [2])],
                                 initializers=[tensor("x", np.ones(1, np.float32)),
                                               _I64("p", 0, size)]),
        "Resize": lambda: single_op("Resize", [("x", FLOAT, [1, 1]), ("", 0, None),
                                               ("s", FLOAT, [2])],
                                    initializers=[tensor("x", np.ones((1, 1), np.float32)),
                                                  tensor("s", np.array([size // 2**14, 2**14],
                                                                       np.float32))]),
        "Reshape": lambda: model(graph(
            [node("ConstantOfShape", ["shape"], ["z"]), node("Reshape", ["z", "to"], ["y"])],
            [], [value_info("y", FLOAT, None)],
            initializers=[_I64("shape", 0), _I64("to", -1, size, size)])),
        "OneHot": lambda: single_op("OneHot", [("i", INT64, [1]), ("depth", INT64, []),
                                               ("v", FLOAT, [2])],
                                    initializers=[_I64("i", 1), tensor("depth", np.array(size, np.int64)),
                                                  tensor("v", np.array([0, 1], np.float32))]),
        "Upsample": lambda: single_op("Upsample", [("x", FLOAT, [1, 1]), ("s", FLOAT, [2])],
                                      initializers=[tensor("x", np.ones((1, 1), np.float32)),
                                                    tensor("s", np.array([size // 2**14, 2**14],
                                                                         np.float32))],
                                      opset=9),
        "ConstantOfShape_rank": lambda: single_op("ConstantOfShape", [("shape", INT64, [3])],
                                                  initializers=[_I64("shape", 2**21, 2**21, 2**21)]),
        "MatMul": lambda: single_op("MatMul", [("a", FLOAT, None), ("b", FLOAT, None)],
                                    initializers=[tensor("a", np.ones((size // 2**20, 1), np.float32)),
                                                  tensor("b", np.ones((1, 2**20), np.float32))]),
    }
    expect = {"load": OK, "session": OK, "run": C if op == "Reshape" else R}
    if stage_at == "infer":
        expect["infer"] = OK
    _fixed(f"bomb_{op.lower()}_{'huge' if size >= _BIG else 'gib'}", "allocation bomb at optimize "
           "and run time", expect, builders[op](), feeds=dict, **kw)


for _op in ("ConstantOfShape", "Expand", "Tile", "Range", "Pad", "Resize", "OneHot", "Upsample",
            "ConstantOfShape_rank"):
    _bomb(_op, _BIG, "infer")
for _op in ("ConstantOfShape", "Expand", "Tile", "Range", "Pad", "Resize"):
    _bomb(_op, _GIG, "run")
_bomb("Reshape", _BIG, "run")
_bomb("MatMul", 2**30, "run")  # 4 MiB of inputs, a 4 GiB product
del _op


# Shape inference itself: a shape input declared [2**31] (a few bytes of model) once made the
# ConstantOfShape/Expand/Reshape rules build a list of 2**31 unknown dims; the output's rank is
# simply unknown. Inferred dims past int64 (Concat of 2**63 - 1 and 1) are unknown, or an error
# in strict mode, never a model that cannot be written.
for _op, _ins in (("ConstantOfShape", [("shape", INT64, [2**31])]),
                  ("Expand", [("x", FLOAT, [1]), ("shape", INT64, [2**31])]),
                  ("Reshape", [("x", FLOAT, [1]), ("shape", INT64, [2**31])])):
    _fixed(f"bomb_infer_declared_shape_length_{_op.lower()}", "allocation bomb at inference",
           {"load": OK, "infer": OK, "infer_strict": OK}, single_op(_op, _ins))
_fixed("infer_dim_past_int64", "negative and huge dims (inferred)",
       {"load": OK, "infer": OK, "infer_strict": S},
       single_op("Concat", [("a", FLOAT, [2**63 - 1, 1]), ("b", FLOAT, [1, 1])], axis=0))
del _op, _ins


def _fed_shape_bomb() -> Any:
    return single_op("ConstantOfShape", [("shape", INT64, [None])])


_fixed("bomb_fed_shape", "allocation bomb at run time", {"session": OK, "run": R},
       _fed_shape_bomb(), feeds=lambda: {"shape": np.array([2**31, 2**31], np.int64)})
_fixed("bomb_fed_shape_wraps_int64", "allocation bomb at run time", {"session": OK, "run": R},
       _fed_shape_bomb(), feeds=lambda: {"shape": np.array([2**32, 2**32, 16], np.int64)})
_fixed("bomb_fed_negative_shape", "allocation bomb at run time", {"session": OK, "run": C},
       _fed_shape_bomb(), feeds=lambda: {"shape": np.array([-1, 2], np.int64)})
_fixed("bomb_tensor_limit_option", "allocation bomb at run time", {"session": OK, "run": R},
       single_op("Expand", [("x", FLOAT, [1]), ("shape", INT64, [1])]),
       feeds=lambda: {"x": np.ones(1, np.float32), "shape": np.array([1 << 20], np.int64)},
       options={"max_tensor_bytes": 1 << 20})


def _doubling_model(n: int) -> Any:
    """x -> Concat(x, x) n times: each step doubles, so memory grows to 2**n elements."""
    nodes = [node("Concat", [f"v{i}", f"v{i}"], [f"v{i + 1}" if i + 1 < n else "y"], axis=0,
                  name=f"double{i}") for i in range(n)]
    nodes[0].input[:] = ["x", "x"]
    for i in range(1, n):
        nodes[i].input[:] = [f"v{i}", f"v{i}"]
    return model(graph(nodes, [value_info("x", FLOAT, [1])], [value_info("y", FLOAT, None)]))


_fixed("bomb_doubling_chain", "allocation bomb at run time", {"session": OK, "run": R},
       _doubling_model(40), feeds=lambda: {"x": np.ones(1, np.float32)})


# =========================================================================== loops


def _loop_model(trip: int | None, cond: bool | None, body_cond: str = "cin") -> Any:
    body = graph([node("Identity", [body_cond], ["cout"]), node("Add", ["s", "one"], ["s2"])],
                 [value_info("i", INT64, []), value_info("cin", BOOL, []),
                  value_info("s", FLOAT, [1])],
                 [value_info("cout", BOOL, []), value_info("s2", FLOAT, [1])],
                 initializers=[tensor("one", np.ones(1, np.float32))], name="body")
    inits = [tensor("s0", np.zeros(1, np.float32))]
    ins = ["", "", "s0"]
    if trip is not None:
        inits.append(tensor("M", np.array(trip, np.int64)))
        ins[0] = "M"
    if cond is not None:
        inits.append(tensor("c", np.array(cond)))
        ins[1] = "c"
    return model(graph([node("Loop", ins, ["y"], body=body)], [], [value_info("y", FLOAT, [1])],
                       initializers=inits))


_fixed("loop_trip_count_bomb", "Loop trip-count bombs", {"session": OK, "run": R},
       _loop_model(2**62, None), feeds=dict)
_fixed("loop_trip_count_with_true_cond", "Loop trip-count bombs", {"session": OK, "run": R},
       _loop_model(2**62, True), feeds=dict, options={"max_loop_iterations": 10_000})
_fixed("loop_forever", "Loop trip-count bombs", {"session": OK, "run": R},
       _loop_model(None, True), feeds=dict, options={"run_timeout_s": 2.0})
_fixed("loop_negative_trip", "Loop trip-count bombs (control: zero iterations)",
       {"session": OK, "run": OK}, _loop_model(-5, None), feeds=dict)


def _scan_accumulating_loop() -> Any:
    """A loop whose scan output keeps a 64 MiB tensor per iteration."""
    body = graph([node("Identity", ["cin"], ["cout"]), node("Identity", ["s"], ["s2"]),
                  node("ConstantOfShape", ["shape"], ["big"])],
                 [value_info("i", INT64, []), value_info("cin", BOOL, []),
                  value_info("s", FLOAT, [1])],
                 [value_info("cout", BOOL, []), value_info("s2", FLOAT, [1]),
                  value_info("big", FLOAT, None)],
                 initializers=[_I64("shape", 2**24)], name="body")
    return model(graph([node("Loop", ["M", "", "s0"], ["y", "scan"], body=body)], [],
                       [value_info("y", FLOAT, [1]), value_info("scan", FLOAT, None)],
                       initializers=[tensor("M", np.array(1000, np.int64)),
                                     tensor("s0", np.zeros(1, np.float32))]))


_fixed("loop_scan_output_accumulates", "allocation bomb at run time", {"session": OK, "run": R},
       _scan_accumulating_loop(), feeds=dict)


# =========================================================================== indices


def _idx_case(name: str, m: Any, feeds: dict[str, np.ndarray], outcome: str = C) -> None:
    _fixed(f"index_{name}", "out-of-range indices", {"session": OK, "run": outcome}, m,
           feeds=lambda: {k: v.copy() for k, v in feeds.items()})


_F = lambda *shape: np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)  # noqa: E731
_L = lambda *v: np.array(v, np.int64)  # noqa: E731

_idx_case("gather_too_big", single_op("Gather", [("d", FLOAT, None), ("i", INT64, None)]),
          {"d": _F(3, 2), "i": _L(3)})
_idx_case("gather_wraps_negative", single_op("Gather", [("d", FLOAT, None), ("i", INT64, None)]),
          {"d": _F(3, 2), "i": _L(-4)})
_idx_case("gather_int64_min", single_op("Gather", [("d", FLOAT, None), ("i", INT64, None)]),
          {"d": _F(3, 2), "i": _L(-2**63)})
_idx_case("gather_axis_out_of_range",
          single_op("Gather", [("d", FLOAT, None), ("i", INT64, None)], axis=5),
          {"d": _F(3, 2), "i": _L(0)})
_idx_case("gather_elements", single_op("GatherElements", [("d", FLOAT, None), ("i", INT64, None)]),
          {"d": _F(3, 2), "i": np.array([[0, 3]], np.int64)})
_idx_case("gather_elements_negative",
          single_op("GatherElements", [("d", FLOAT, None), ("i", INT64, None)]),
          {"d": _F(3, 2), "i": np.array([[0, -4]], np.int64)})
_idx_case("gather_nd", single_op("GatherND", [("d", FLOAT, None), ("i", INT64, None)]),
          {"d": _F(3, 2), "i": np.array([[3, 0]], np.int64)})
_idx_case("gather_nd_negative", single_op("GatherND", [("d", FLOAT, None), ("i", INT64, None)]),
          {"d": _F(3, 2), "i": np.array([[-4, 0]], np.int64)})
_idx_case("gather_nd_too_long", single_op("GatherND", [("d", FLOAT, None), ("i", INT64, None)]),
          {"d": _F(3, 2), "i": np.array([[0, 0, 0]], np.int64)})
_idx_case("scatter_elements",
          single_op("ScatterElements", [("d", FLOAT, None), ("i", INT64, None), ("u", FLOAT, None)]),
          {"d": _F(3, 2), "i": np.array([[5, 0]], np.int64), "u": _F(1, 2)})
_idx_case("scatter_elements_negative",
          single_op("ScatterElements", [("d", FLOAT, None), ("i", INT64, None), ("u", FLOAT, None)]),
          {"d": _F(3, 2), "i": np.array([[-4, 0]], np.int64), "u": _F(1, 2)})
_idx_case("scatter_nd",
          single_op("ScatterND", [("d", FLOAT, None), ("i", INT64, None), ("u", FLOAT, None)]),
          {"d": _F(3, 2), "i": np.array([[3]], np.int64), "u": _F(1, 2)})
_idx_case("scatter_nd_negative",
          single_op("ScatterND", [("d", FLOAT, None), ("i", INT64, None), ("u", FLOAT, None)]),
          {"d": _F(3, 2), "i": np.array([[-4]], np.int64), "u": _F(1, 2)})
_idx_case("scatter_v9",
          single_op("Scatter", [("d", FLOAT, None), ("i", INT64, None), ("u", FLOAT, None)], opset=10),
          {"d": _F(3, 2), "i": np.array([[9, 0]], np.int64), "u": _F(1, 2)})
_idx_case("compress_condition_too_long",
          single_op("Compress", [("d", FLOAT, None), ("c", BOOL, None)], axis=0),
          {"d": _F(3, 2), "c": np.array([1, 0, 1, 1, 1], bool)})
_idx_case("topk_k_too_big", single_op("TopK", [("d", FLOAT, None), ("k", INT64, None)], 2),
          {"d": _F(3, 2), "k": _L(9)})
_idx_case("topk_k_negative", single_op("TopK", [("d", FLOAT, None), ("k", INT64, None)], 2),
          {"d": _F(3, 2), "k": _L(-1)})
_idx_case("slice_axis_out_of_range",
          single_op("Slice", [("d", FLOAT, None), ("s", INT64, None), ("e", INT64, None),
                              ("a", INT64, None)]),
          {"d": _F(3, 2), "s": _L(0), "e": _L(1), "a": _L(7)})
_idx_case("split_sizes_disagree", single_op("Split", [("d", FLOAT, None), ("s", INT64, None)], 2),
          {"d": _F(3, 2), "s": _L(2, 5)})
_idx_case("reverse_sequence_lens",
          single_op("ReverseSequence", [("d", FLOAT, None), ("l", INT64, None)],
                    batch_axis=1, time_axis=0),
          {"d": _F(3, 2), "l": _L(9, 1)})
_idx_case("maxunpool_indices",
          single_op("MaxUnpool", [("d", FLOAT, None), ("i", INT64, None)], kernel_shape=[2]),
          {"d": _F(1, 1, 2), "i": np.array([[[0, 99]]], np.int64)})
_idx_case("roialign_batch_index",
          single_op("RoiAlign", [("x", FLOAT, None), ("r", FLOAT, None), ("b", INT64, None)]),
          {"x": _F(1, 1, 4, 4), "r": np.array([[0, 0, 2, 2]], np.float32), "b": _L(3)})
_idx_case("cumsum_axis", single_op("CumSum", [("d", FLOAT, None), ("a", INT64, None)]),
          {"d": _F(3, 2), "a": np.array(4, np.int64)})
_idx_case("onehot_negative_depth",
          single_op("OneHot", [("i", INT64, None), ("depth", INT64, None), ("v", FLOAT, None)]),
          {"i": _L(1), "depth": np.array(-3, np.int64), "v": np.array([0, 1], np.float32)})
_idx_case("tensor_scatter_write_indices",
          single_op("TensorScatter", [("c", FLOAT, None), ("u", FLOAT, None), ("w", INT64, None)],
                    opset=24),
          {"c": _F(1, 4, 2), "u": _F(1, 2, 2), "w": _L(3)})


def _seq_model(op: str, *inputs: tuple[str, int], n_out: int = 1) -> Any:
    """SequenceConstruct(x, x) -> op(seq, extra inputs...)."""
    extra = [n for n, _ in inputs]
    g = graph([node("SequenceConstruct", ["x", "x"], ["seq"]),
               node(op, ["seq", *extra], [f"y{i}" for i in range(n_out)])],
              [value_info("x", FLOAT, None)] + [value_info(n, t, None) for n, t in inputs],
              [P.ValueInfoProto(name=f"y{i}") for i in range(n_out)])
    return model(g)


_idx_case("sequence_at", _seq_model("SequenceAt", ("p", INT64)),
          {"x": _F(2), "p": np.array(2, np.int64)})
_idx_case("sequence_at_negative", _seq_model("SequenceAt", ("p", INT64)),
          {"x": _F(2), "p": np.array(-3, np.int64)})
_idx_case("sequence_erase", _seq_model("SequenceErase", ("p", INT64)),
          {"x": _F(2), "p": np.array(5, np.int64)})
_idx_case("sequence_insert", _seq_model("SequenceInsert", ("t", FLOAT), ("p", INT64)),
          {"x": _F(2), "t": _F(2), "p": np.array(-4, np.int64)})


# =========================================================================== feeds


def _seq_input(name: str) -> Any:
    vi = P.ValueInfoProto(name=name)
    vi.type.sequence_type.elem_type.tensor_type.elem_type = FLOAT
    return vi


def _feed_case(name: str, feeds: Callable[[], Any], outcome: str = I, m: Any = None) -> None:
    _fixed(f"feed_{name}", "hostile feeds", {"session": OK, "run": outcome},
           m or model(graph([node("Relu", ["x"], ["y"])], [value_info("x", FLOAT, ["n"])],
                            [value_info("y", FLOAT, ["n"])])), feeds=feeds)


_feed_case("not_a_dict", lambda: [np.ones(2, np.float32)])
_feed_case("wrong_dtype", lambda: {"x": np.ones(2, np.float64)})
_feed_case("object_array", lambda: {"x": np.array([object(), 1], dtype=object)})
_feed_case("structured_dtype", lambda: {"x": np.zeros(2, dtype=[("a", "f4"), ("b", "i4")])})
_feed_case("python_list", lambda: {"x": [1.0, 2.0]}, outcome=OK)  # converted, as onnxruntime does
_feed_case("wrong_rank", lambda: {"x": np.ones((2, 2), np.float32)})
_feed_case("unknown_name", lambda: {"x": np.ones(2, np.float32), "evil": np.ones(1)})
_feed_case("non_string_name", lambda: {5: np.ones(2, np.float32)})
_feed_case("missing", lambda: {})
_feed_case("none_value", lambda: {"x": None})
_feed_case("big_endian", lambda: {"x": np.ones(2, ">f4")}, outcome=OK)
_feed_case("big_endian_wrong_type", lambda: {"x": np.ones(2, ">f8")})
_feed_case("non_contiguous", lambda: {"x": np.ones(8, np.float32)[::2]}, outcome=OK)
_feed_case("sequence_of_garbage", lambda: {"s": ["not an array", 3]},
           m=model(graph([node("SequenceLength", ["s"], ["y"])],
                         [_seq_input("s")], [value_info("y", INT64, [])])))


def by_name() -> dict[str, Case]:
    """The corpus indexed by case name."""
    return {c.name: c for c in CASES}


# =========================================================================== found by fuzzing


@case("fuzz_invalid_utf8_name", "found by fuzzing: a name that is not UTF-8 came back as bytes",
      _all(D, run=False))
def _bad_utf8(folder: Path) -> bytes:
    m = model(graph([node("Relu", ["ab"], ["y"])], [value_info("ab", FLOAT, [2])], [_Y]))
    return m.SerializeToString().replace(b"ab", b"\xff\xfe")


def _nested_loop_model() -> Any:
    """Loop(M=5000) whose body runs Loop(M=5000): each below the limit of 10,000, 25 million
    body executions in all."""
    inner = _loop_model(5000, None).graph
    inner_body = graph(list(inner.node) + [node("Identity", ["cin"], ["cout"])],
                       [value_info("i", INT64, []), value_info("cin", BOOL, []),
                        value_info("s", FLOAT, [1])],
                       [value_info("cout", BOOL, []), value_info("y", FLOAT, [1])],
                       initializers=list(inner.initializer), name="outer_body")
    # the inner Loop starts from its own s0 and ignores the carried s
    return model(graph([node("Loop", ["M", "", "s0"], ["y"], body=inner_body)], [],
                       [value_info("y", FLOAT, [1])],
                       initializers=[tensor("M", np.array(5000, np.int64)),
                                     tensor("s0", np.zeros(1, np.float32))]))


def _fed_loop_model() -> Any:
    m = _loop_model(1, True)
    g = m.graph
    keep = [t for t in g.initializer if t.name not in ("M", "c")]
    del g.initializer[:]
    g.initializer.extend(keep)
    g.input.extend([value_info("M", INT64, []), value_info("c", BOOL, [])])
    return m


_fixed("fuzz_loop_fed_trip_count", "found by fuzzing: a fed trip count of 2**62 with a true "
       "condition ran 10 million iterations", {"session": OK, "run": R}, _fed_loop_model(),
       feeds=lambda: {"M": np.array(2**62, np.int64), "c": np.array(True)},
       options={"max_loop_iterations": 100_000})
_fixed("loop_nested_trip_counts", "Loop trip-count bombs", {"session": OK, "run": R},
       _nested_loop_model(), feeds=dict, options={"max_loop_iterations": 10_000})
