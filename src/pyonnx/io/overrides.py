"""Supply initializer data that a model keeps in external files before the model is decoded.

onnxruntime lets a caller hand over such data itself (``SessionOptions.add_external_initializers``
and ``add_external_initializers_from_files_in_memory``), so the files need not exist. The data
must be in place before decoding, because decoding checks every external reference; this module
rewrites the ModelProto so those initializers are inline.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pyonnx.errors import InvalidArgument
from pyonnx.io import load_model_proto_bytes
from pyonnx.ir import Tensor

__all__ = ["inline_external_initializers"]


def inline_external_initializers(data: bytes, tensors: Mapping[str, np.ndarray],
                                 files: Mapping[str, bytes]) -> bytes:
    """The model ``data`` with initializers made inline: those named in ``tensors`` take that
    array, those whose external ``location`` is a key of ``files`` read their bytes (offset,
    length) from it. A name in ``tensors`` that is no initializer of the model raises
    InvalidArgument naming it."""
    from pyonnx.io import proto as P
    from pyonnx.io.serde import tensor_to_proto

    mp = load_model_proto_bytes(data)
    seen: set[str] = set()
    graphs = [mp.graph]
    while graphs:
        g = graphs.pop()
        for i, tp in enumerate(g.initializer):
            if tp.name in tensors:
                arr = tensors[tp.name]
                new = tensor_to_proto(Tensor.from_numpy(arr, tp.name))
                if list(new.dims) != list(tp.dims) or new.data_type != tp.data_type:
                    raise InvalidArgument(
                        f"external initializer {tp.name!r}: the value given has type "
                        f"{new.data_type} and dims {list(new.dims)}, the model declares type "
                        f"{tp.data_type} and dims {list(tp.dims)}")
                g.initializer[i].CopyFrom(new)
                seen.add(tp.name)
            elif tp.data_location == P.TensorProto.EXTERNAL:
                entries = {e.key: e.value for e in tp.external_data}
                blob = files.get(entries.get("location", ""))
                if blob is None:
                    continue
                offset = int(entries.get("offset", "0") or 0)
                end = offset + int(entries["length"]) if "length" in entries else len(blob)
                if end > len(blob):
                    raise InvalidArgument(
                        f"initializer {tp.name!r}: its external data ends at byte {end}, past "
                        f"the {len(blob)} bytes given for {entries['location']!r}")
                tp.ClearField("external_data")
                tp.data_location = P.TensorProto.DEFAULT
                tp.raw_data = blob[offset:end]
        for node in g.node:
            for a in node.attribute:
                if a.HasField("g"):
                    graphs.append(a.g)
                graphs.extend(a.graphs)
    missing = sorted(set(tensors) - seen)
    if missing:
        raise InvalidArgument(f"external initializer(s) {', '.join(map(repr, missing))} are not "
                              f"initializers of the model")
    return mp.SerializeToString()
