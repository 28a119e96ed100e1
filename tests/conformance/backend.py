"""The ONNX backend test suite, run through pyonnx's InferenceSession.

Cases come from the installed ``onnx`` package: every node case of
``onnx.backend.test.case.node.collect_testcases`` and the model folders ``simple``,
``pytorch-converted``, ``pytorch-operator`` and ``light`` of its backend data. Outputs are compared
as the onnx backend runner compares them: same count, shape and dtype, strings and integers
exactly, floats with the case's rtol/atol (1e-3 / 1e-7 by default).

Run ``python -m tests.conformance.backend`` for the totals and a per-operator table.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import glob
import os
import sys
import time
import traceback
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np

EXPECTED_FAILURES_FILE = os.path.join(os.path.dirname(__file__), "expected_failures.txt")
SPEC_UNDEFINED_FILE = os.path.join(os.path.dirname(__file__), "spec_undefined.txt")
MODEL_FOLDERS = ("simple", "pytorch-converted", "pytorch-operator")


@dataclasses.dataclass
class Case:
    """One conformance case: a model (bytes) and its data sets of (inputs, expected outputs)."""

    name: str
    kind: str  # node / simple / pytorch-converted / pytorch-operator / light
    model: bytes
    data_sets: list[tuple[list[Any], list[Any]]]
    rtol: float = 1e-3
    atol: float = 1e-7
    op_types: tuple[str, ...] = ()


def _data_root() -> str:
    import onnx.backend.test

    return os.path.join(os.path.dirname(onnx.backend.test.__file__), "data")


def _read_pb(path: str) -> Any:
    """Read a stored test value: TensorProto, SequenceProto, MapProto or OptionalProto."""
    import onnx
    from onnx import numpy_helper

    with open(path, "rb") as f:
        data = f.read()
    for cls in (onnx.TensorProto, onnx.SequenceProto, onnx.OptionalProto, onnx.MapProto):
        msg = cls()
        try:
            msg.ParseFromString(data)
        except Exception:
            continue
        if cls is onnx.TensorProto and msg.HasField("data_type") or cls is not onnx.TensorProto and msg.ByteSize():
            if cls is onnx.TensorProto:
                return numpy_helper.to_array(msg)
            if cls is onnx.SequenceProto:
                return numpy_helper.to_list(msg)
            if cls is onnx.OptionalProto:
                return numpy_helper.to_optional(msg)
            return numpy_helper.to_dict(msg)
    raise ValueError(f"cannot read test data {path}")


def _op_types(model_bytes: bytes) -> tuple[str, ...]:
    import onnx

    m = onnx.load_from_string(model_bytes)
    return tuple(sorted({n.op_type for n in m.graph.node}))


@functools.cache
def node_cases() -> tuple[Case, ...]:
    """Every node case of the installed onnx (about 1,880), collected once per process."""
    return tuple(_node_cases())


def _node_cases() -> Iterator[Case]:
    import onnx
    from onnx import numpy_helper
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    def norm(x: Any) -> Any:  # some cases store TensorProto objects instead of arrays
        return numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else x

    for c in cases:
        mb = c.model.SerializeToString()
        sets = [([norm(a) for a in i], [norm(b) for b in o]) for i, o in c.data_sets]
        yield Case(c.name, "node", mb, sets,
                   c.rtol, c.atol, _op_types(mb))


@functools.cache
def folder_cases() -> tuple[Case, ...]:
    """Model folders: model.onnx plus test_data_set_*/input_*.pb and output_*.pb."""
    return tuple(_folder_cases())


def _folder_cases() -> Iterator[Case]:
    root = _data_root()
    for kind in MODEL_FOLDERS:
        for d in sorted(glob.glob(os.path.join(root, kind, "*"))):
            model_path = os.path.join(d, "model.onnx")
            if not os.path.exists(model_path):
                continue
            with open(model_path, "rb") as f:
                mb = f.read()
            sets = []
            for ds in sorted(glob.glob(os.path.join(d, "test_data_set_*"))):
                ins = [_read_pb(p) for p in sorted(glob.glob(os.path.join(ds, "input_*.pb")),
                                                   key=_index)]
                outs = [_read_pb(p) for p in sorted(glob.glob(os.path.join(ds, "output_*.pb")),
                                                    key=_index)]
                sets.append((ins, outs))
            yield Case(f"{kind}/{os.path.basename(d)}", kind, mb, sets, op_types=_op_types(mb))


@functools.cache
def light_cases() -> tuple[Case, ...]:
    """The nine light_* CNNs with their stored outputs; inputs as the onnx runner makes them
    (arange(n)/n in the input's shape), tolerances as the onnx model cases set them."""
    return tuple(_light_cases())


def _light_cases() -> Iterator[Case]:
    import onnx

    tolerances = {"densenet121": 2e-3}
    root = os.path.join(_data_root(), "light")
    for path in sorted(glob.glob(os.path.join(root, "light_*.onnx"))):
        name = os.path.basename(path)[len("light_"):-len(".onnx")]
        m = onnx.load(path)
        inits = {i.name for i in m.graph.initializer}
        ins = []
        for x in m.graph.input:
            if x.name in inits:
                continue
            shape = tuple(d.dim_value if d.HasField("dim_value") else 1
                          for d in x.type.tensor_type.shape.dim)
            n = int(np.prod(shape))
            ins.append((np.arange(n).reshape(shape) / n).astype(np.float32))
        outs = [_read_pb(p) for p in sorted(glob.glob(path[:-5] + "_output_*.pb"), key=_index)]
        with open(path, "rb") as f:
            mb = f.read()
        yield Case(f"light/{name}", "light", mb, [(ins, outs)], tolerances.get(name, 1e-3), 1e-7,
                   _op_types(mb))


def _index(path: str) -> int:
    stem = os.path.splitext(os.path.basename(path))[0]
    return int(stem.rsplit("_", 1)[1])


def all_cases() -> list[Case]:
    """Node cases, then model folders, then the light models."""
    return [*node_cases(), *folder_cases(), *light_cases()]


def blas_rounds_alike_rows_apart() -> bool:
    """Whether NumPy's BLAS gives equal rows of A unequal rows of A @ B (float32). OpenBLAS's
    AVX2 kernels on an AMD EPYC machine do: some rows of a micro-tile are summed in another
    order (rows 6-11 of every 12 there), so equal rows come out a few units in the last place
    apart."""
    a = np.broadcast_to(np.linspace(-1.0, 1.0, 64, dtype=np.float32), (24, 64)).copy()
    b = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32) * 1e4
    y = a @ b
    return not np.array_equal(y, np.broadcast_to(y[:1], y.shape))


def machine_dependent_failures() -> dict[str, str]:
    """``case name -> reason`` for cases that this machine's arithmetic cannot be relied on to
    pass: expected failures that may pass (non-strict), unlike expected_failures.txt's."""
    if not blas_rounds_alike_rows_apart():
        return {}
    return {"light/squeezenet": (
        "its constant weights make every channel alike and its logits reach 1e10 before the "
        "final Softmax, so the stored output (all 0.001) needs every channel rounded alike; "
        "this machine's BLAS rounds alike rows apart (blas_rounds_alike_rows_apart), and one "
        "unit in the last place at 1e10 is 1024, which the Softmax turns into a one-hot output "
        "unless the average pool's sums happen to even the channels out")}


def load_expected_failures() -> dict[str, str]:
    """``case name -> reason`` from expected_failures.txt (``name  # reason`` per line)."""
    out: dict[str, str] = {}
    if not os.path.exists(EXPECTED_FAILURES_FILE):
        return out
    with open(EXPECTED_FAILURES_FILE) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, reason = line.partition("#")
            out[name.strip()] = reason.strip()
    return out


def assert_similar(expected: Any, actual: Any, rtol: float, atol: float, where: str = "") -> None:
    """Compare as the onnx backend runner does (plus exactness for non-float types)."""
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)):
            raise AssertionError(f"{where}: expected a sequence, got {type(actual).__name__}")
        if len(expected) != len(actual):
            raise AssertionError(f"{where}: sequence length {len(actual)} != {len(expected)}")
        for j, (e, a) in enumerate(zip(expected, actual)):
            assert_similar(e, a, rtol, atol, f"{where}[{j}]")
        return
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(expected) != set(actual):
            raise AssertionError(f"{where}: map keys differ")
        for k in expected:
            assert_similar(expected[k], actual[k], rtol, atol, f"{where}[{k!r}]")
        return
    if expected is None:
        if actual is not None:
            raise AssertionError(f"{where}: expected an empty optional, got {type(actual).__name__}")
        return
    if not isinstance(actual, np.ndarray):
        raise AssertionError(f"{where}: expected an array, got {type(actual).__name__}")
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{where}: shape {actual.shape} != expected {expected.shape}")
    if expected.dtype == object:
        np.testing.assert_array_equal(actual, expected, err_msg=where)
        return
    if actual.dtype != expected.dtype:
        raise AssertionError(f"{where}: dtype {actual.dtype} != expected {expected.dtype}")
    kind = expected.dtype.kind
    if kind in "biu":
        np.testing.assert_array_equal(actual, expected, err_msg=where)
    elif kind == "c":
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=where)
    else:  # float, float16 and the ml_dtypes float types
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                                   rtol=rtol, atol=atol, err_msg=where, equal_nan=True)


def _cast_in_range(inputs: list[Any], expected: np.ndarray) -> np.ndarray:
    """The elements of a float -> integer Cast whose result the spec defines: the input value,
    truncated toward zero, lies inside the output type's range (NaN and infinities do not)."""
    import ml_dtypes

    x = np.asarray(inputs[0]).astype(np.float64)
    info = ml_dtypes.iinfo(expected.dtype)  # NumPy's integer types and ml_dtypes' narrow ones
    with np.errstate(invalid="ignore"):
        t = np.trunc(x)
        return np.isfinite(x) & (t >= int(info.min)) & (t <= int(info.max))


# rule name -> function(inputs of the data set, expected output) -> mask of the defined elements
UNDEFINED_RULES = {"cast_in_range": _cast_in_range}


def load_spec_undefined() -> list[tuple[str, str, str]]:
    """``(case pattern, rule, reason)`` from spec_undefined.txt (``pattern rule  # reason``)."""
    out: list[tuple[str, str, str]] = []
    with open(SPEC_UNDEFINED_FILE) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            head, _, reason = line.partition("#")
            pattern, rule = head.split()
            out.append((pattern, rule, reason.strip()))
    return out


def undefined_rule(name: str) -> str | None:
    """The spec_undefined.txt rule that applies to case ``name``, if any."""
    for pattern, rule, _ in load_spec_undefined():
        if fnmatch.fnmatchcase(name, pattern):
            return rule
    return None


def _only_defined(rule: str, inputs: list[Any], expected: Any, actual: Any) -> tuple[Any, Any]:
    """Both outputs with the elements ``rule`` marks undefined taken out (flattened); shape and
    dtype are compared before this, on the whole outputs."""
    if not (isinstance(expected, np.ndarray) and isinstance(actual, np.ndarray)
            and expected.shape == actual.shape and expected.dtype == actual.dtype):
        return expected, actual  # let assert_similar report the difference
    mask = np.broadcast_to(UNDEFINED_RULES[rule](inputs, expected), expected.shape)
    return expected[mask], actual[mask]


def run_case(case: Case) -> None:
    """Run one case through pyonnx; raise on any mismatch or error."""
    import pyonnx

    rule = undefined_rule(case.name)
    sess = pyonnx.InferenceSession(case.model)
    names = [i.name for i in sess.get_inputs()]
    for k, (inputs, expected) in enumerate(case.data_sets):
        feeds = {}
        for n, v in zip(names, inputs):
            feeds[n] = v
        got = sess.run(None, feeds)
        if len(got) != len(expected):
            raise AssertionError(f"{len(got)} outputs, expected {len(expected)}")
        for i, (e, a) in enumerate(zip(expected, got)):
            where = f"data set {k} output {i}"
            if rule is not None:
                e, a = _only_defined(rule, inputs, e, a)
                where += f" (elements defined by the spec, rule {rule})"
            assert_similar(e, a, case.rtol, case.atol, where)


def main(argv: list[str]) -> int:
    """Run the suite; print failures (with -v), totals and a per-operator table."""
    verbose = "-v" in argv
    only = [a for a in argv if not a.startswith("-")]
    xfail = load_expected_failures()
    may_fail = machine_dependent_failures()
    t0 = time.time()
    results: dict[str, tuple[bool, str]] = {}
    cases = all_cases()
    for c in cases:
        if only and not any(o in c.name or o in c.op_types for o in only):
            continue
        try:
            run_case(c)
            results[c.name] = (True, "")
        except Exception as e:  # noqa: BLE001 - the report lists every kind of failure
            msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:240]
            results[c.name] = (False, msg)
            if verbose:
                traceback.print_exc(limit=2)
    by_name = {c.name: c for c in cases}
    per_op: dict[str, Counter] = defaultdict(Counter)
    per_kind: dict[str, Counter] = defaultdict(Counter)
    for name, (ok, msg) in results.items():
        c = by_name[name]
        per_kind[c.kind]["pass" if ok else "fail"] += 1
        if c.kind == "node":
            for op in c.op_types:
                per_op[op]["pass" if ok else "fail"] += 1
        if not ok:
            tag = "xfail" if name in xfail or name in may_fail else "FAIL "
            print(f"{tag} {name}: {msg}")
    unexpected_pass = [n for n, (ok, _) in results.items() if ok and n in xfail]
    for n in unexpected_pass:
        print(f"XPASS {n}: listed in expected_failures.txt but passes; remove it")
    print("\nper operator (node cases): op  passed/total")
    for op in sorted(per_op):
        c = per_op[op]
        tot = c["pass"] + c["fail"]
        mark = "" if c["fail"] == 0 else "  <-"
        print(f"  {op:32s} {c['pass']:4d}/{tot:<4d}{mark}")
    print("\ntotals by kind:")
    for kind, c in per_kind.items():
        print(f"  {kind:18s} {c['pass']:5d} passed, {c['fail']:5d} failed")
    npass = sum(ok for ok, _ in results.values())
    nfail = len(results) - npass
    unexpected_fail = [n for n, (ok, _) in results.items()
                       if not ok and n not in xfail and n not in may_fail]
    for n in may_fail:
        print(f"machine-dependent: {n} (may fail here: {may_fail[n][:100]}...)")
    print(f"\nconformance: {npass} passed, {nfail} failed of {len(results)} "
          f"({100.0 * npass / max(1, len(results)):.1f}%) in {time.time() - t0:.0f} s; "
          f"{len(unexpected_fail)} unexpected failures, {len(unexpected_pass)} unexpected passes")
    return 1 if unexpected_fail or unexpected_pass else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
