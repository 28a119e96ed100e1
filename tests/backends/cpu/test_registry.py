"""Every fast variant of the CPU provider replaces a reference kernel of the same schema
version and takes exactly the reference's parameters, so the provider may swap them per node."""

from __future__ import annotations

import inspect

import pytest

import pyonnx.backends  # noqa: F401 - registers the variants
from pyonnx.backends.cpu.registry import fast_kernel, fast_kernels
from pyonnx.ops.registry import get_kernel

VARIANTS = sorted(fast_kernels().items(), key=lambda kv: kv[0])


def test_there_are_variants():
    assert len(VARIANTS) >= 10


@pytest.mark.parametrize("key, fn", VARIANTS, ids=[f"{d or 'ai.onnx'}::{o}-{v}"
                                                     for (d, o, v), _ in VARIANTS])
def test_variant_matches_its_reference_signature(key, fn):
    domain, op_type, version = key
    ref = get_kernel(domain, op_type, version)
    assert ref is not None, f"{key}: a fast variant without a reference kernel"
    want = {n: (p.kind, p.default) for n, p in inspect.signature(ref).parameters.items()
            if n != "prepared"}
    got = {n: (p.kind, p.default) for n, p in inspect.signature(fn).parameters.items()
           if n != "prepared"}
    assert got == want


def test_a_second_variant_for_one_version_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        fast_kernel("Conv", versions=(22,))(lambda *a, **k: None)
