"""Coverage-guided fuzzing with atheris (libFuzzer) over the load/check/infer/session stages.

The first byte of each input picks the stage, the rest is the model. The seed corpus is the
backend suite's node models, written to a folder on first use::

    python -m fuzz.atheris_fuzz -atheris_runs=200000 /tmp/pyonnx_atheris_corpus

(any libFuzzer flag works: ``-max_total_time=3600``, ``-timeout=60``, ``-rss_limit_mb=4096``).
An exception that is not a PyOnnxError is a crash for libFuzzer: it stops and writes the input
as ``crash-<sha1>``, which ``python -m fuzz.atheris_fuzz crash-<sha1>`` replays.
"""

from __future__ import annotations

import os
import sys

import atheris

with atheris.instrument_imports():
    import pyonnx  # noqa: F401
    import pyonnx.checker  # noqa: F401
    import pyonnx.shape_inference  # noqa: F401
    from pyonnx.ops.registry import _ensure_loaded

from fuzz.harness import COUNTS, call_stage, limit_memory, seeds

_STAGES = ("load", "check", "infer", "session")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    call_stage(_STAGES[data[0] % len(_STAGES)], bytes(data[1:]))


def write_corpus(folder: str) -> None:
    """One file per seed model and stage, if the folder is empty."""
    os.makedirs(folder, exist_ok=True)
    if os.listdir(folder):
        return
    for i, (_name, model, _feeds) in enumerate(seeds()):
        with open(os.path.join(folder, f"seed{i:05d}"), "wb") as f:
            f.write(bytes([i % len(_STAGES)]) + model)


def main() -> None:
    _ensure_loaded()
    limit_memory()
    dirs = [a for a in sys.argv[1:] if not a.startswith("-") and os.path.isdir(a)]
    for d in dirs:
        write_corpus(d)
    atheris.Setup(sys.argv, test_one_input)
    try:
        atheris.Fuzz()
    finally:
        print(f"executions per stage: {COUNTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
