"""Duplicate-initializer removal: initializers of one graph with the same element type, shape
and bytes hold the same constant; readers of the later ones read the first, and dead-code
elimination drops the rest (together with initializers nothing reads).

Only constants that no feed can override are merged, and only up to a size (comparing means
hashing the data: a memory-mapped multi-gigabyte table is not read for this).
"""

from __future__ import annotations

import hashlib

from pyonnx.ir import Graph, Model, Tensor
from pyonnx.optimizer._core import GraphPass
from pyonnx.optimizer._rewrite import graph_inputs, protected_values, replace_uses

__all__ = ["DeduplicateInitializers"]

#: Largest initializer compared, in bytes.
MAX_COMPARED_BYTES = 16 << 20


class DeduplicateInitializers(GraphPass):
    """``c1 == c2`` (type, shape, bytes) -> readers of ``c2`` read ``c1``."""

    name = "deduplicate_initializers"
    preserves_facts = True  # drops nodes / reads an equal value instead

    def rewrite(self, graph: Graph, model: Model) -> bool:
        inputs = graph_inputs(model)
        keep = protected_values(model)
        # group by type and shape first: only tensors that share both are hashed
        groups: dict[tuple[object, ...], list[object]] = {}
        for v in graph.initializers.values():
            t = v.const_value
            if not isinstance(t, Tensor) or id(v) in inputs or not v.uses:
                continue
            if t.size * t.data_type.numpy.itemsize > MAX_COMPARED_BYTES:
                continue  # not read at all (it may be a memory-mapped external table)
            groups.setdefault((int(t.data_type), tuple(t.dims)), []).append(v)
        modified = False
        for group in groups.values():
            if len(group) < 2:
                continue
            # a sample of 64 elements separates different weights without reading them all
            samples: dict[bytes, list[object]] = {}
            for v in group:
                arr = v.const_value.numpy()  # type: ignore[attr-defined]
                if arr.dtype.kind in "OUS":
                    continue
                flat = arr.reshape(-1)
                samples.setdefault(flat[::max(1, flat.size // 64)].tobytes(), []).append(v)
            candidates = [v for same in samples.values() if len(same) > 1 for v in same]
            seen: dict[bytes, object] = {}
            for v in candidates:
                arr = v.const_value.numpy()  # type: ignore[attr-defined]
                first = seen.setdefault(hashlib.sha1(arr.tobytes()).digest(), v)
                if first is v or id(v) in keep:
                    continue
                replace_uses(v, first)  # type: ignore[arg-type]  # c2 (== c1) -> c1
                modified = True
        return modified
