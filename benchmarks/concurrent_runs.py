"""Many threads on one session: every shared model, T threads x R runs each, bit-identical to
serial runs (the acceptance check of the provider-layer issue; CI runs a small version in
tests/runtime/test_concurrent_runs.py).

    PYTHONPATH=src python benchmarks/concurrent_runs.py [--threads 8] [--runs 200]
                                                        [--models SUBSTR,...] [--seq 128]

For each model in ../shared/models: one session, a few distinct feeds, their serial results,
then T threads started together, thread i's run j feeding (i + j) mod the number of feeds, every
output compared with the serial result byte for byte. Prints one line per model (runs, wall
time, mismatches) and exits 1 when any run differed or raised.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))
sys.path.insert(0, os.path.join(HERE, ".."))

import pyonnx  # noqa: E402
from tests.runtime.test_concurrent_runs import (  # noqa: E402
    SHARED,
    SHARED_MODELS,
    hammer,
    shared_feeds,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--runs", type=int, default=200, help="runs per thread")
    ap.add_argument("--models", default="", help="comma-separated substrings of model names")
    ap.add_argument("--seq", type=int, default=128, help="sequence length of the text models")
    args = ap.parse_args()
    if not os.path.isdir(SHARED):
        print(f"{SHARED} is absent: nothing to run", file=sys.stderr)
        return 2
    wanted = [s for s in args.models.split(",") if s]
    failed = False
    for name in SHARED_MODELS:
        if wanted and not any(w in name for w in wanted):
            continue
        sess = pyonnx.InferenceSession(os.path.join(SHARED, name))
        feeds = [shared_feeds(name, seed, args.seq) for seed in range(4)]
        t0 = time.perf_counter()
        problems = hammer(sess, feeds, args.threads, args.runs)
        wall = time.perf_counter() - t0
        failed |= bool(problems)
        print(f"{name:32s} {args.threads} threads x {args.runs} runs: {wall:7.1f} s, "
              f"{len(problems)} mismatches" + (f" (first: {problems[0]})" if problems else ""),
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
