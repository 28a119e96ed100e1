"""Coverage as data: the torch op table claims every operator of the backend node cases except
the committed exclusion list (src/pyonnx/backends/torch/ops/exclusions.txt), whose every entry
has a reason and names an operator that some case really leaves unclaimed."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="the torch op table needs the torch extra")
pytest.importorskip("onnx")

from pyonnx.backends.torch.ops import exclusions, table  # noqa: E402
from tests.backends.torch.cases import claimed_cases, unclaimed  # noqa: E402
from tests.conformance.backend import node_cases  # noqa: E402


def _unclaimed_ops() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for c in node_cases():
        for op, why in unclaimed(c.model):
            out.setdefault(op, set()).add(why)
    return out


def test_exclusion_list_accounts_for_every_unclaimed_case():
    listed = exclusions()
    assert all(reason for reason in listed.values()), "every exclusion gives its reason"
    missing = {op: sorted(w)[:2] for op, w in _unclaimed_ops().items() if op not in listed}
    assert not missing, f"unclaimed operators missing from exclusions.txt: {missing}"


def test_exclusion_list_only_shrinks():
    # an operator the table now claims in full must leave the list
    unclaimed_now = _unclaimed_ops()
    stale = [op for op in exclusions() if op not in unclaimed_now]
    assert not stale, f"exclusions.txt lists operators no case leaves unclaimed: {stale}"
    full = [op for op, why in exclusions().items() if not why.startswith("partly:")
            and any(op == k[1] for k in table())]
    assert not full, f"operators in the table must be marked 'partly:': {full}"


def test_most_node_cases_are_claimed():
    assert len(claimed_cases()) / len(node_cases()) > 0.6
