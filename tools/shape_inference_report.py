"""Measure pyonnx shape inference against the runtime (and onnx's inference as a reference).

1. Every ONNX backend node case with its output and value_info shapes removed: infer, then
   compare each tensor output with the shape the runtime produces (pyonnx InferenceSession on the
   case inputs; the expected outputs where the run fails). Counts "exact" (concrete and equal),
   "wrong" (concrete and different: must be 0) and "symbolic/unknown"; the same for
   onnx.shape_inference.infer_shapes on the same stripped models.
2. The real models of ../shared/models with concrete input shapes: how many intermediate values
   get fully concrete shapes, and whether each equals the shape seen at run time (every value of
   the main graph made a graph output of a copy).

Usage: PYTHONPATH=src python tools/shape_inference_report.py [--cases-only | --models-only] [-v]
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections import Counter
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, ROOT)

import onnx  # noqa: E402
import onnx.shape_inference  # noqa: E402

import pyonnx  # noqa: E402
from pyonnx.ir import TensorType  # noqa: E402
from pyonnx.shape_inference import infer_shapes  # noqa: E402

MODELS_DIR = os.path.join(ROOT, "..", "shared", "models")


def strip(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove value_info and the shapes of graph outputs, in the graph and its subgraphs."""
    m = onnx.ModelProto()
    m.CopyFrom(model)

    def visit(g: onnx.GraphProto) -> None:
        del g.value_info[:]
        for o in g.output:
            if o.type.HasField("tensor_type"):
                o.type.tensor_type.ClearField("shape")
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    visit(a.g)
                for sg in a.graphs:
                    visit(sg)

    visit(m.graph)
    for f in m.functions:
        del f.value_info[:]
    return m


def _onnx_shape(vi: onnx.ValueInfoProto) -> tuple | None:
    t = vi.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    out = []
    for d in t.tensor_type.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") else None)
    return tuple(out)


def _classify(inferred: tuple | None, actual: tuple) -> str:
    if inferred is None or any(not isinstance(d, int) for d in inferred):
        return "symbolic"
    return "exact" if tuple(inferred) == tuple(actual) else "wrong"


def _actual_outputs(case: Any, model_bytes: bytes) -> list[Any]:
    inputs, expected = case.data_sets[0]
    try:
        sess = pyonnx.InferenceSession(model_bytes)
        names = [i.name for i in sess.get_inputs()]
        return sess.run(None, dict(zip(names, inputs)))
    except Exception:  # noqa: BLE001 - fall back to the stored expected outputs
        return list(expected)


def node_case_report(verbose: bool) -> None:
    from tests.conformance.backend import node_cases

    ours: Counter = Counter()
    theirs: Counter = Counter()
    theirs_dp: Counter = Counter()
    wrong: list[str] = []
    errors: list[str] = []
    t0 = time.time()
    n_cases = 0
    for case in node_cases():
        n_cases += 1
        m = strip(onnx.load_from_string(case.model))
        mb = m.SerializeToString()
        actual = _actual_outputs(case, case.model)
        try:
            inferred_model = infer_shapes(pyonnx.load(mb))
            got = [v.type for v in inferred_model.graph.outputs]
        except Exception as e:  # noqa: BLE001
            errors.append(f"{case.name}: {type(e).__name__}: {e}")
            got = [None] * len(m.graph.output)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                om = onnx.shape_inference.infer_shapes(m)
                o_shapes = [_onnx_shape(o) for o in om.graph.output]
            except Exception:  # noqa: BLE001
                o_shapes = [None] * len(m.graph.output)
            try:
                om2 = onnx.shape_inference.infer_shapes(m, data_prop=True)
                o_shapes2 = [_onnx_shape(o) for o in om2.graph.output]
            except Exception:  # noqa: BLE001
                o_shapes2 = [None] * len(m.graph.output)
        for i, a in enumerate(actual):
            if not isinstance(a, np.ndarray):
                continue
            t = got[i] if i < len(got) else None
            mine = tuple(t.shape) if isinstance(t, TensorType) and t.shape is not None else None
            c = _classify(mine, a.shape)
            ours[c] += 1
            if c == "wrong":
                wrong.append(f"{case.name} output {i}: inferred {list(mine)}, "
                             f"actual {list(a.shape)}")
            theirs[_classify(o_shapes[i] if i < len(o_shapes) else None, a.shape)] += 1
            theirs_dp[_classify(o_shapes2[i] if i < len(o_shapes2) else None, a.shape)] += 1
            if verbose and c == "symbolic":
                print(f"  symbolic: {case.name} output {i}: {mine} vs {list(a.shape)}")
    total = sum(ours.values())
    print(f"backend node cases: {n_cases} cases, {total} tensor outputs "
          f"({time.time() - t0:.0f} s)")
    print(f"  pyonnx:              exact {ours['exact']}, wrong {ours['wrong']}, "
          f"symbolic/unknown {ours['symbolic']}")
    print(f"  onnx:                exact {theirs['exact']}, wrong {theirs['wrong']}, "
          f"symbolic/unknown {theirs['symbolic']}")
    print(f"  onnx (data_prop):    exact {theirs_dp['exact']}, wrong {theirs_dp['wrong']}, "
          f"symbolic/unknown {theirs_dp['symbolic']}")
    for w in wrong:
        print(f"  WRONG {w}")
    for e in errors:
        print(f"  ERROR {e}")


MODEL_INPUTS = {
    "silero": {"input": [1, 512], "state": [2, 1, 128], "sr": []},
}


def _input_shapes(model: pyonnx.ir.Model, name: str) -> dict[str, list[int]]:
    for key, shapes in MODEL_INPUTS.items():
        if name.startswith(key):
            return shapes
    out = {}
    for v in model.graph.inputs:
        if v.name in model.graph.initializers or not isinstance(v.type, TensorType):
            continue
        dims = []
        for i, d in enumerate(v.type.shape or ()):
            if isinstance(d, int):
                dims.append(d)
            else:  # batch first, then sequence length
                dims.append(1 if i == 0 else 128)
        out[v.name] = dims
    return out


def _feeds(model: pyonnx.ir.Model, shapes: dict[str, list[int]]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for v in model.graph.inputs:
        if v.name not in shapes:
            continue
        dt = v.type.elem_type.numpy
        shape = shapes[v.name]
        if v.name == "sr":
            feeds[v.name] = np.array(16000, dtype=dt)
        elif dt.kind in "iu":
            feeds[v.name] = rng.integers(0, 256 if "bytes" in v.name else 100, size=shape).astype(dt)
        else:
            feeds[v.name] = rng.standard_normal(shape).astype(dt)
    return feeds


def model_report(verbose: bool) -> None:
    if not os.path.isdir(MODELS_DIR):
        print(f"models: {MODELS_DIR} is absent; skipped")
        return
    for fn in sorted(os.listdir(MODELS_DIR)):
        if not fn.endswith(".onnx"):
            continue
        path = os.path.join(MODELS_DIR, fn)
        model = pyonnx.load(path)
        shapes = _input_shapes(model, fn)
        t0 = time.time()
        inferred = infer_shapes(model, input_shapes=shapes)
        dt = time.time() - t0
        main_vals = [v for n in inferred.graph.nodes for v in n.outputs if v.name]
        sub_vals = [v for n in inferred.graph.nodes for g in n.subgraphs()
                    for m in g.all_nodes() for v in m.outputs if v.name]

        def concrete(v: Any) -> bool:
            t = v.type
            return isinstance(t, TensorType) and t.shape is not None and all(
                isinstance(d, int) for d in t.shape)

        n_conc = sum(concrete(v) for v in main_vals)
        s_conc = sum(concrete(v) for v in sub_vals)
        # run time: every main-graph value an output of a copy of the original model
        probe = pyonnx.load(path)
        names = {v.name for v in probe.graph.outputs}
        for n in probe.graph.nodes:
            for v in n.outputs:
                if v.name and v.name not in names:
                    probe.graph.outputs.append(v)
                    names.add(v.name)
        sess = pyonnx.InferenceSession(probe)
        out_names = [o.name for o in sess.get_outputs()]
        res = sess.run(None, _feeds(model, shapes))
        actual = dict(zip(out_names, res))
        agree = wrong = 0
        wrongs = []
        for v in main_vals:
            a = actual.get(v.name)
            if not concrete(v) or not isinstance(a, np.ndarray):
                continue
            if tuple(v.type.shape) == a.shape:
                agree += 1
            else:
                wrong += 1
                wrongs.append(f"{v.name}: inferred {list(v.type.shape)}, run {list(a.shape)}")
        print(f"{fn}: inputs {shapes}; main graph {n_conc}/{len(main_vals)} values concrete, "
              f"{agree} checked equal at run time, {wrong} wrong; subgraphs {s_conc}/"
              f"{len(sub_vals)} concrete; inference {dt:.2f} s")
        for w in wrongs:
            print(f"  WRONG {w}")
        if verbose:
            for v in main_vals + sub_vals:
                if not concrete(v):
                    print(f"  not concrete: {v.name} {v.type} "
                          f"{getattr(v.type, 'shape', None)} ({v.producer.op_type})")


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    if "--models-only" not in argv:
        node_case_report(verbose)
    if "--cases-only" not in argv:
        model_report(verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
