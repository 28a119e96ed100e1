"""Measure the ONNX text round trip on every backend-suite model (development tool, uses onnx).

For each case of ``tests.conformance.backend.all_cases()`` (node cases, model folders, light):

1. ``parse_model(to_text(m))`` against ``m``: both run through pyonnx.InferenceSession on the
   case's inputs, outputs compared exactly (same dtype and shape, bit-identical, NaN == NaN).
   Where pyonnx cannot run the original (a missing kernel, ...), the two models are compared
   structurally instead (the protobuf of each, with what the syntax cannot hold cleared: doc
   strings of graphs/nodes/values, their metadata_props, dimension denotations).
2. ``onnx.parser.parse_model`` on pyonnx's text.
3. pyonnx's ``parse_model`` on ``onnx.printer.to_text`` of the original; where onnx's own parser
   rejects that text too, the case is counted apart (onnx's printer wrote something unparseable).

Usage: ``PYTHONPATH=src python tools/text_roundtrip_report.py [-v] [SUBSTRING ...]``
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import onnx  # noqa: E402
import onnx.parser  # noqa: E402
import onnx.printer  # noqa: E402

import pyonnx  # noqa: E402
from pyonnx.io.serde import model_to_proto  # noqa: E402
from pyonnx.io.text import parse_model, to_text  # noqa: E402
from tests.conformance.backend import all_cases  # noqa: E402


def same_value(a: Any, b: Any) -> bool:
    """Exact equality of run outputs: bit-identical, except that any NaN equals any NaN."""
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and \
            all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and \
            all(same_value(a[k], b[k]) for k in a)
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype == object:
        return bool(np.array_equal(a, b))
    floaty = a.dtype.kind in "fc" or (a.dtype.kind == "V" and a.dtype.itemsize <= 2)
    if not floaty:
        return a.tobytes() == b.tobytes()
    wide = np.complex128 if a.dtype.kind == "c" else np.float64
    na, nb = np.isnan(a.astype(wide)), np.isnan(b.astype(wide))
    if not np.array_equal(na, nb):
        return False
    keep = ~na.reshape(-1)
    size = a.dtype.itemsize
    bytes_a = np.ascontiguousarray(a).reshape(-1).view(np.uint8).reshape(a.size, size)[keep]
    bytes_b = np.ascontiguousarray(b).reshape(-1).view(np.uint8).reshape(b.size, size)[keep]
    return bool(np.array_equal(bytes_a, bytes_b))


def canonical(model: pyonnx.ir.Model) -> bytes:
    """The model's protobuf with what the text syntax does not carry cleared."""
    mp = model_to_proto(model)
    mp.ClearField("training_info")
    mp.ClearField("configuration")

    def walk(msg: Any, top: bool) -> None:
        for field, value in msg.ListFields():
            if field.name in ("doc_string", "metadata_props") and not top:
                msg.ClearField(field.name)
            elif field.name == "denotation":
                msg.ClearField(field.name)
            elif field.type == field.TYPE_MESSAGE:
                items = [value] if hasattr(value, "ListFields") else value
                for item in items:
                    if hasattr(item, "ListFields"):
                        walk(item, type(item).__name__ == "FunctionProto" and
                             field.name == "functions")

    walk(mp, True)
    return mp.SerializeToString(deterministic=True)


def run_outputs(model: Any, case: Any) -> list[list[Any]]:
    sess = pyonnx.InferenceSession(model)
    names = [i.name for i in sess.get_inputs()]
    return [sess.run(None, dict(zip(names, inputs))) for inputs, _ in case.data_sets]


def first_line(e: BaseException) -> str:
    arg = e.args[0] if e.args else str(e)
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("[ParseError")]
    return f"{type(e).__name__}: {lines[-1] if lines else text}"[:160]


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    only = [a for a in argv if not a.startswith("-")]
    cases = [c for c in all_cases() if not only or any(o in c.name for o in only)]
    t0 = time.time()
    ran_same, ran_diff, struct_same, struct_diff, text_fail = [], [], [], [], []
    random_same: list[str] = []
    random_diff: list[str] = []
    onnx_parse_fail: list[tuple[str, str]] = []
    ours_on_onnx_fail: list[tuple[str, str]] = []
    onnx_self_fail: list[tuple[str, str]] = []
    unrunnable_reasons: Counter[str] = Counter()
    print_s = parse_s = 0.0
    for i, case in enumerate(cases):
        if verbose:
            print(f"[{i + 1}/{len(cases)}] {case.name}", file=sys.stderr)
        try:
            m = pyonnx.load(case.model, check_versions=False)
            t = time.perf_counter()
            text = to_text(m)
            t1 = time.perf_counter()
            m2 = parse_model(text)
            print_s += t1 - t
            parse_s += time.perf_counter() - t1
        except Exception as e:  # noqa: BLE001 - a report lists every failure
            text_fail.append((case.name, first_line(e)))
            continue
        structural = canonical(m) == canonical(m2)
        try:
            expected = run_outputs(m, case)
        except Exception as e:  # noqa: BLE001
            unrunnable_reasons[type(e).__name__] += 1
            (struct_same if structural else struct_diff).append(case.name)
        else:
            try:
                got = run_outputs(m2, case)
                ok = same_value(expected, got)
            except Exception as e:  # noqa: BLE001
                ok = False
                if verbose:
                    print(f"  parsed model failed: {first_line(e)}", file=sys.stderr)
            if ok:
                ran_same.append(case.name)
            elif not same_value(expected, run_outputs(m, case)):
                # a random operator (Bernoulli, RandomNormal without a seed): the original
                # differs from itself, so only the structure can be compared
                (random_same if structural else random_diff).append(case.name)
            else:
                ran_diff.append(case.name)
        try:
            onnx.parser.parse_model(text)
        except Exception as e:  # noqa: BLE001
            onnx_parse_fail.append((case.name, first_line(e)))
        otext = onnx.printer.to_text(onnx.load_from_string(case.model))
        try:
            parse_model(otext)
        except Exception as e:  # noqa: BLE001
            try:
                onnx.parser.parse_model(otext)
            except Exception:  # noqa: BLE001
                onnx_self_fail.append((case.name, first_line(e)))
            else:
                ours_on_onnx_fail.append((case.name, first_line(e)))

    n = len(cases)
    printable = n - len(text_fail)
    print(f"cases: {n} ({time.time() - t0:.0f} s; to_text {print_s:.1f} s, "
          f"parse_model {parse_s:.1f} s in all)")
    print(f"1. parse_model(to_text(m)) failed: {len(text_fail)}")
    for name, why in text_fail:
        print(f"     {name}: {why}")
    print(f"   ran in pyonnx, outputs bit-identical: {len(ran_same)}; different: {len(ran_diff)}")
    for name in ran_diff:
        print(f"     different outputs: {name}")
    print(f"   pyonnx cannot run the original ({dict(unrunnable_reasons)}): compared structurally:"
          f" {len(struct_same)} identical, {len(struct_diff)} different")
    for name in struct_diff:
        print(f"     structurally different: {name}")
    print(f"   nondeterministic in pyonnx (two runs of the original differ): compared "
          f"structurally: {len(random_same)} identical, {len(random_diff)} different "
          f"({', '.join(random_same + random_diff)})")
    for name in random_diff:
        print(f"     structurally different: {name}")
    ok2 = printable - len(onnx_parse_fail)
    print(f"2. onnx.parser.parse_model parses pyonnx's text: {ok2}/{printable} "
          f"({100 * ok2 / max(printable, 1):.1f}%)")
    for name, why in onnx_parse_fail:
        print(f"     {name}: {why}")
    ok3 = n - len(ours_on_onnx_fail) - len(onnx_self_fail)
    print(f"3. pyonnx parses onnx.printer.to_text's output: {ok3}/{n - len(onnx_self_fail)} "
          f"({100 * ok3 / max(n - len(onnx_self_fail), 1):.1f}%) of the texts onnx's own parser "
          f"accepts")
    for name, why in ours_on_onnx_fail:
        print(f"     {name}: {why}")
    print(f"   onnx.printer wrote text that onnx.parser also rejects: {len(onnx_self_fail)}")
    for name, why in onnx_self_fail:
        print(f"     {name}: {why}")
    shared_models(only)
    return 0


def shared_models(only: list[str]) -> None:
    """Section 4: the shared real models: text size, print/parse time, identical outputs."""
    from tests.models.test_real_models import SHARED, shared_feeds

    if not os.path.isdir(SHARED):
        print(f"4. shared models: {SHARED} is absent, skipped")
        return
    print("4. shared models (to_text / parse_model seconds, text size, result):")
    for name in sorted(os.listdir(SHARED)):
        if not name.endswith(".onnx") or only and not any(o in name for o in only):
            continue
        m = pyonnx.load(os.path.join(SHARED, name))
        t = time.perf_counter()
        text = to_text(m)
        t1 = time.perf_counter()
        m2 = parse_model(text)
        t2 = time.perf_counter()
        structural = canonical(m) == canonical(m2)
        feeds = shared_feeds(name.removesuffix(".onnx"), seq=16)
        same = same_value(pyonnx.InferenceSession(m).run(None, feeds),
                          pyonnx.InferenceSession(m2).run(None, feeds))
        try:
            onnx.parser.parse_model(text)
            theirs = "onnx.parser reads it"
        except Exception as e:  # noqa: BLE001
            theirs = f"onnx.parser rejects it ({first_line(e)})"
        try:
            parse_model(onnx.printer.to_text(onnx.load(os.path.join(SHARED, name))))
            ours = "pyonnx reads onnx.printer's text"
        except Exception as e:  # noqa: BLE001
            ours = f"pyonnx rejects onnx.printer's text ({first_line(e)})"
        print(f"     {name}: {t1 - t:.1f} s / {t2 - t1:.1f} s, {len(text) / 1e6:.1f} MB, "
              f"structurally {'identical' if structural else 'DIFFERENT'}, outputs "
              f"{'bit-identical' if same else 'DIFFERENT'}; {theirs}; {ours}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
