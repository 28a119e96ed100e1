"""Property-based fuzzing with hypothesis: one test per stage, byte- and structure-level.

Each example draws a seed model of the backend suite, a mutation level and a mutation seed;
the property is that the stage ends in success or a PyOnnxError (see :mod:`fuzz.harness`).

Profiles (``HYPOTHESIS_PROFILE``): ``ci`` (default: derandomized, 150 examples per test, a
fixed database-free run that takes well under two minutes) and ``long`` (random, 20,000
examples per test; combine with ``--hypothesis-seed``)::

    HYPOTHESIS_PROFILE=long python -m pytest fuzz/test_hypothesis_fuzz.py -q
"""

from __future__ import annotations

import os
import random

import pytest

pytest.importorskip("onnx")  # the seeds come from the onnx package's backend suite

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fuzz.harness import (  # noqa: E402
    call_stage,
    mutate_bytes,
    mutate_feeds,
    mutate_structure,
    seeds,
)

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=list(HealthCheck))
settings.register_profile("ci", max_examples=150, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=20_000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _input(seed_index: int, structure: bool, mutation_seed: int, feeds_too: bool
           ) -> tuple[bytes, dict]:
    pool = seeds()
    rng = random.Random(mutation_seed)
    _name, data, feeds = pool[seed_index % len(pool)]
    if structure:
        data = mutate_structure(rng, data)
    else:
        data = mutate_bytes(rng, data, pool[rng.randrange(len(pool))][1])
    if feeds_too:
        feeds = mutate_feeds(rng, feeds)
    return data, feeds


_inputs = st.tuples(st.integers(0, 10**6), st.booleans(), st.integers(0, 2**32), st.booleans())


@pytest.mark.parametrize("stage", ["load", "check", "infer", "session", "run"])
@given(args=_inputs)
def test_stage_ends_typed(stage: str, args: tuple[int, bool, int, bool]) -> None:
    data, feeds = _input(*args)
    call_stage(stage, data, feeds)  # raises Untyped for a finding


@given(seed_index=st.integers(0, 10**6), data=st.binary(max_size=256))
def test_load_of_arbitrary_bytes(seed_index: int, data: bytes) -> None:
    call_stage("load", data)
    # a seed with arbitrary bytes appended (protobuf merges trailing fields)
    call_stage("load", seeds()[seed_index % len(seeds())][1] + data)
