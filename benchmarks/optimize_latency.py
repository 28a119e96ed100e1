"""Session latency with the optimizer's new passes against without them (issue 13's acceptance:
median at least 5% lower on bert_small, gpt2_small and vit_tiny, in each of 3 runs).

"Without" is the session pipeline as it was before the new passes: the basic stage less
shape-subgraph elimination, common-subexpression elimination, initializer deduplication and
the LayerNorm/Gelu fusions, then the pyonnx-private fusions of that time (MatMul+Add,
Conv+Add, activations; no attention fusion, no com.microsoft stage). "With" is
the session's own pipeline (level 99: the basic and extended stages to their fixed point, then
the private stage, as InferenceSession runs them). Both models are then run by sessions with optimization
off, so that each runs exactly the graph built here; runs alternate between the two.

    PYTHONPATH=src python benchmarks/optimize_latency.py [--runs 30] [--repeats 3] [--seq 128]
        [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import pyonnx  # noqa: E402
from pyonnx.cli._benchfeeds import make_feeds  # noqa: E402
from pyonnx.optimizer import PassManager, copy_model, optimize  # noqa: E402
from pyonnx.optimizer.passes import (  # noqa: E402
    CancelTransposes, ConstantFolding, EliminateDeadCode, EliminateIdentity, FoldConvAffine,
    FoldConvBatchNorm, FoldShapes, FuseActivation, FuseConvAdd, FuseMatMulAdd,
)

SHARED = os.path.join(HERE, "..", "..", "shared", "models")
MODELS = ("bert_small", "gpt2_small", "vit_tiny")


def _old_pipeline() -> list:
    # the session stage as it was too: the attention fusion (FuseAttention) is one of the new
    # passes, so "without" pins the older private fusions rather than session_passes()
    return [FoldShapes(), ConstantFolding(), EliminateIdentity(), CancelTransposes(),
            FoldConvBatchNorm(), FoldConvAffine(), EliminateDeadCode(),
            FuseMatMulAdd(), FuseConvAdd(), FuseActivation(), EliminateDeadCode()]


def _session(model: pyonnx.ir.Model) -> pyonnx.InferenceSession:
    so = pyonnx.SessionOptions()
    so.graph_optimization_level = pyonnx.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    return pyonnx.InferenceSession(model, so)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: elapsed time (the latency a caller sees); cpu: the process's CPU "
                        "time, which other programs on a busy machine disturb far less (the "
                        "sessions run on one thread, so on an idle machine the two agree)")
    args = p.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    ok = True
    for name in args.models.split(","):
        model = pyonnx.load(os.path.join(SHARED, f"{name}.onnx"))
        old = PassManager(_old_pipeline())(copy_model(model)).model
        new = optimize(copy_model(model), 99)  # the written stages, then the private one
        s_old, s_new = _session(old), _session(new)
        feeds = make_feeds(s_old.get_inputs(), batch=1, seq=args.seq)
        for s in (s_old, s_new):
            for _ in range(3):
                s.run(None, feeds)
        for rep in range(args.repeats):
            t_old: list[float] = []
            t_new: list[float] = []
            for i in range(args.runs):
                order = ((s_old, t_old), (s_new, t_new)) if i % 2 == 0 else \
                    ((s_new, t_new), (s_old, t_old))
                for s, acc in order:
                    t = clock()
                    s.run(None, feeds)
                    acc.append(clock() - t)
            mo, mn = statistics.median(t_old), statistics.median(t_new)
            gain = 1 - mn / mo
            ok &= gain >= 0.05
            print(f"{name} run {rep + 1}: without {mo * 1e3:.2f} ms, with {mn * 1e3:.2f} ms, "
                  f"{gain * 100:+.1f}% lower ({len(old.graph.nodes)} -> "
                  f"{len(new.graph.nodes)} nodes)", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
