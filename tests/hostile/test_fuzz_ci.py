"""The short, deterministic fuzzing run of CI: fuzz/test_hypothesis_fuzz.py under its ``ci``
profile (derandomized) and a fixed-seed pass of the random-mutation loop over every stage.
Long runs: see fuzz/README.md."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("onnx")

from fuzz.harness import STAGES, fuzz_one  # noqa: E402
from fuzz.test_hypothesis_fuzz import test_load_of_arbitrary_bytes, test_stage_ends_typed  # noqa: E402,F401


@pytest.mark.parametrize("stage", STAGES)
def test_fixed_seed_mutation_loop(stage: str) -> None:
    rng = random.Random(f"ci-{stage}")
    for i in range(300):
        fuzz_one(stage, rng, structure=bool(i % 2))  # raises Untyped for a finding
