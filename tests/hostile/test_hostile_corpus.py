"""Every hostile-corpus case ends in its expected outcome under its resource bounds.

Each (case, stage) runs in a forked child limited to 512 MiB of address space (RLIMIT_AS),
with a generous timeout that only detects hangs (see :mod:`tests.hostile.runner`). The
expected outcome is success or a named PyOnnxError subclass; anything else (another exception
type, a crash, a hang, a MemoryError that escaped the limits) fails the test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.corpus import CASES
from tests.hostile.runner import Server

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the corpus runner forks under RLIMIT_AS (Linux)")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


_PARAMS = [pytest.param(c.name, stage, want, id=f"{c.name}-{stage}")
           for c in CASES for stage, want in c.expect.items()]


@pytest.mark.parametrize("name,stage,want", _PARAMS)
def test_case_ends_in_expected_outcome(server: Server, tmp_path: Path, name: str, stage: str,
                                       want: str) -> None:
    res = server.run(name, stage, tmp_path)
    assert res["outcome"] == want or want in res.get("classes", ()), \
        f"{name} [{stage}]: expected {want}, got {res['outcome']}:\n{res['detail']}"
    if want != "ok":
        assert res.get("base") == "PyOnnxError"


def test_corpus_covers_every_attack_class() -> None:
    attacks = {c.attack.split(" (")[0] for c in CASES}
    for required in ("external data", "truncated and random bytes", "unknown dtype",
                     "negative and huge dims", "cycles", "SSA violations", "undefined inputs",
                     "unknown ops and domains", "deep nesting", "allocation bomb at load",
                     "allocation bomb at optimize and run time", "Loop trip-count bombs",
                     "out-of-range indices", "hostile feeds"):
        assert required in attacks, required
    ext = {c.name for c in CASES if c.attack == "external data"}
    for where in ("sparse", "constant", "subgraph", "function"):
        assert f"external_dotdot_in_{where}" in ext
