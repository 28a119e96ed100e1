"""Replay a saved finding: ``python -m fuzz.replay fuzz/findings/<stage>-<digest>.pkl``.

Runs the stage on the saved input in this process, so the traceback shows where it escaped.
"""

from __future__ import annotations

import pickle
import sys

from fuzz.harness import _run_stage


def main(paths: list[str]) -> int:
    for path in paths:
        with open(path, "rb") as f:
            case = pickle.load(f)
        print(f"{path}: stage {case['stage']}")
        _run_stage(case["stage"], case["data"], case["feeds"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
