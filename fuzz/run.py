"""Random-mutation fuzzing loop: ``python -m fuzz.run [--stages load,check,...] [--execs N]
[--seconds S] [--seed K]``.

Each execution picks a seed model from the backend suite, mutates it (half at the structure
level, half at the byte level) and runs one stage, rotating through the stages. A finding (an
exception that is not a PyOnnxError, or a hang) is printed with its reproducer and the loop
goes on; the exit status is 1 when anything was found. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import time

from fuzz.harness import COUNTS, STAGES, Untyped, fuzz_one, limit_memory, seeds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--execs", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: no limit)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    limit_memory()
    stages = args.stages.split(",")
    rng = random.Random(args.seed)
    print(f"{len(seeds())} seed models", flush=True)
    outcomes: collections.Counter[str] = collections.Counter()
    findings: list[str] = []
    t0 = time.monotonic()
    for i in range(args.execs):
        if args.seconds and time.monotonic() - t0 > args.seconds:
            break
        stage = stages[i % len(stages)]
        try:
            outcomes[f"{stage}:{fuzz_one(stage, rng, structure=bool(i // len(stages) % 2))}"] += 1
        except Untyped as e:
            findings.append(str(e))
            print(f"FINDING #{len(findings)} at exec {i}: {e}", flush=True)
        if (i + 1) % 1000 == 0:
            print(f"{i + 1} execs, {time.monotonic() - t0:.0f} s, {len(findings)} findings",
                  flush=True)
    total = sum(COUNTS.values())
    print(f"done: {total} executions {dict(COUNTS)} in {time.monotonic() - t0:.0f} s; "
          f"{len(findings)} findings")
    for k, v in sorted(outcomes.items()):
        print(f"  {k:40s} {v}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
