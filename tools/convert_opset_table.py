"""Prove the opset converter on the ONNX backend node cases and write the table.

Every node case (``tests.conformance.backend.node_cases``) is converted to every opset 7-28, by ``pyonnx.convert.convert_version`` and by
``onnx.version_converter.convert_version``. Each converted model is run on the case's inputs and
compared with the case's expected outputs, with the conformance harness's tolerances and
spec-undefined rules (``run_case``): by pyonnx, and by onnxruntime when pyonnx cannot run it
(a kernel gap of the engine is not the converter's fault). A result is

- ``ok``: the converted model computes the expected outputs;
- ``wrong``: it runs on neither engine to the expected outputs, or fails onnx.checker full_check
  (pyonnx's output only: onnx's own converter output is judged by running it; a case whose own
  model fails the full check gets the structural check);
- ``refused``: the converter declined (pyonnx: a typed error naming the nodes).

Cases that pyonnx fails at their own opset (tests/conformance/expected_failures.txt) are left out.
Run from the repository root:

    PYTHONPATH=src python tools/convert_opset_table.py [-j JOBS] [--only SUBSTR] [-o TABLE.md]

It writes tools/convert_opset_table.md: per target opset, ok / wrong / refused for each converter,
in two tables: the opsets where all of the case's default-domain operators exist (a removed
operator such as Upsample counts as absent from the opset that removed it), and the others
(where only a decomposition or replacement can convert); then every wrong pyonnx conversion.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

TARGETS = range(7, 29)


def ops_exist(model_bytes: bytes, opset: int) -> bool:
    """Whether every default-domain operator of the model (subgraphs included) has a schema at
    ``opset`` that is not the one removing it."""
    from pyonnx import defs
    from pyonnx.convert.version import _removed
    from pyonnx.io import load

    m = load(model_bytes)
    for n in m.graph.all_nodes():
        if n.domain not in ("", "ai.onnx"):
            continue
        s = defs.lookup("", n.op_type, opset)
        if s is None or _removed(s):
            return False
    return True


def _run_ok(case: Any, model_bytes: bytes) -> tuple[bool, str]:
    """Run the converted model as the conformance harness does: pyonnx, then onnxruntime."""
    from tests.conformance.backend import Case, run_case

    c = Case(case.name, case.kind, model_bytes, case.data_sets, case.rtol, case.atol,
             case.op_types)
    try:
        run_case(c)
        return True, ""
    except Exception as e:  # noqa: BLE001 - any failure is a verdict
        first = f"pyonnx: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    try:
        _run_ort(c)
        return True, ""
    except Exception as e:  # noqa: BLE001
        return False, (first + f" | onnxruntime: {type(e).__name__}: "
                       f"{str(e).splitlines()[0] if str(e) else ''}")[:300]


def _run_ort(case: Any) -> None:
    import onnxruntime as ort

    from tests.conformance.backend import _only_defined, assert_similar, undefined_rule

    so = ort.SessionOptions()
    so.log_severity_level = 4
    sess = ort.InferenceSession(case.model, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    rule = undefined_rule(case.name)
    for inputs, expected in case.data_sets:
        got = sess.run(None, dict(zip(names, inputs)))
        if len(got) != len(expected):
            raise AssertionError(f"{len(got)} outputs, expected {len(expected)}")
        for e, a in zip(expected, got):
            if rule is not None:
                e, a = _only_defined(rule, inputs, e, a)
            assert_similar(e, a, case.rtol, case.atol)


def judge_pyonnx(case: Any, target: int) -> tuple[str, str]:
    import onnx

    from pyonnx.convert import OpsetConversionError, convert_version
    from pyonnx.io import serialize

    try:
        out = serialize(convert_version(case.model, target))
    except OpsetConversionError as e:
        return "refused", str(e).splitlines()[-1].strip()[:300]
    except Exception as e:  # noqa: BLE001 - a crash is a wrong result
        return "wrong", f"crash: {type(e).__name__}: {e}"[:300]
    try:
        onnx.checker.check_model(onnx.load_from_string(out), full_check=_full_check_ok(case))
    except Exception as e:  # noqa: BLE001
        return "wrong", f"checker: {str(e).splitlines()[0]}"[:300]
    ok, msg = _run_ok(case, out)
    return ("ok", "") if ok else ("wrong", msg)


def _full_check_ok(case: Any) -> bool:
    """Whether the case's own model passes onnx's full check (a few do not: onnx's function
    bodies, e.g. MeanVarianceNormalization's, fail type checking); their conversions get the
    structural check only."""
    import onnx

    try:
        onnx.checker.check_model(onnx.load_from_string(case.model), full_check=True)
        return True
    except Exception:  # noqa: BLE001
        return False


def judge_onnx(case: Any, target: int) -> tuple[str, str]:
    import onnx
    from onnx import version_converter

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = version_converter.convert_version(onnx.load_from_string(case.model), target)
        out = m.SerializeToString()
    except Exception as e:  # noqa: BLE001 - onnx raises several kinds
        return "refused", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
    ok, msg = _run_ok(case, out)
    return ("ok", "") if ok else ("wrong", msg)


Row = tuple[str, int, str, str, str, str, bool]


def _work(args: tuple[int, list[int]]) -> list[Row]:
    from tests.conformance.backend import node_cases

    index, targets = args
    case = node_cases()[index]
    rows = []
    for t in targets:
        p, pm = judge_pyonnx(case, t)
        o, om = judge_onnx(case, t)
        rows.append((case.name, t, p, pm, o, om, ops_exist(case.model, t)))
    return rows


def _plan(only: list[str]) -> list[tuple[int, list[int]]]:
    from tests.conformance.backend import load_expected_failures, node_cases

    xfail = load_expected_failures()
    plan = []
    for i, c in enumerate(node_cases()):
        if c.name in xfail or (only and not any(o in c.name for o in only)):
            continue
        if any(ops_exist(c.model, t) for t in TARGETS):
            plan.append((i, list(TARGETS)))
    return plan


def _table(rows: list[Row]) -> list[str]:
    per: dict[int, dict[str, Counter]] = defaultdict(lambda: {"p": Counter(), "o": Counter()})
    for _, t, p, _, o, _, _ in rows:
        per[t]["p"][p] += 1
        per[t]["o"][o] += 1
    lines = [
        "| target opset | cases | pyonnx ok | pyonnx wrong | pyonnx refused "
        "| onnx ok | onnx wrong | onnx refused |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    tot = {"p": Counter(), "o": Counter()}
    for t in sorted(per):
        p, o = per[t]["p"], per[t]["o"]
        tot["p"].update(p)
        tot["o"].update(o)
        lines.append(f"| {t} | {sum(p.values())} | {p['ok']} | {p['wrong']} | {p['refused']} "
                     f"| {o['ok']} | {o['wrong']} | {o['refused']} |")
    p, o = tot["p"], tot["o"]
    lines.append(f"| **all** | {sum(p.values())} | {p['ok']} | {p['wrong']} | {p['refused']} "
                 f"| {o['ok']} | {o['wrong']} | {o['refused']} |")
    return lines


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("-o", "--output", default=os.path.join(os.path.dirname(__file__),
                                                           "convert_opset_table.md"))
    args = ap.parse_args(argv)
    t0 = time.time()
    plan = _plan(args.only)
    rows: list[Row] = []
    with ProcessPoolExecutor(args.jobs) as ex:
        for k, part in enumerate(ex.map(_work, plan, chunksize=4)):
            rows.extend(part)
            if k % 100 == 0:
                print(f"{k}/{len(plan)} cases, {time.time() - t0:.0f} s", file=sys.stderr)
    exist = [r for r in rows if r[6]]
    beyond = [r for r in rows if not r[6]]
    lines = [
        "# Opset conversion of the ONNX backend node cases",
        "",
        "Generated by `tools/convert_opset_table.py` (see its docstring for the method). Each",
        "backend node case is converted to every opset 7-28 and the converted model is run",
        "against the case's expected outputs (pyonnx, onnxruntime where pyonnx cannot run it).",
        "ok = correct outputs; wrong = wrong outputs, failure to run, or (for pyonnx) an output",
        "file that fails onnx.checker full_check; refused = the converter declined.",
        f"{len(plan)} cases, {len(rows)} conversions per converter, {time.time() - t0:.0f} s.",
        "",
        "## Target opsets where all the case's operators exist",
        "",
        *_table(exist),
        "",
        "## Target opsets where some operator of the case does not exist",
        "",
        "Before the opset that introduced it (pyonnx writes a decomposition where it knows one:",
        "LayerNormalization, Gelu, GroupNormalization, Attention, HardSwish, Mish, Celu, …) or",
        "after the one that removed it.",
        "",
        *_table(beyond),
    ]
    wrong = [r for r in rows if r[2] == "wrong"]
    lines += ["", f"## pyonnx conversions with wrong results ({len(wrong)})", ""]
    lines += [f"- {r[0]} -> opset {r[1]}: {r[3]}" for r in wrong] or ["none"]
    refused = Counter(_reason(r[3]) for r in rows
                      if r[2] == "refused")
    lines += ["", "## Why pyonnx refused (most common reasons)", ""]
    lines += [f"- {n} x {why}" for why, n in refused.most_common(40)]
    text = "\n".join(lines) + "\n"
    with open(args.output, "w") as f:
        f.write(text)
    print(text[:6000])
    return 0


def _reason(msg: str) -> str:
    """A refusal message without the node name: what to group by."""
    import re

    return re.sub(r"^.*?\)( in graph '[^']*')?: ", "", msg)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
