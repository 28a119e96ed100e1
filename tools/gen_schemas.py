"""Generate ``src/pyonnx/defs/schemas.json``: every ONNX operator schema, of every version, as data.

The schema table of :mod:`pyonnx.defs` is read from the *installed* ``onnx`` package, which is the
only place this script runs it (pyonnx never imports ``onnx`` at run time). Run it whenever the
pinned ``onnx`` version (pyproject's ``test`` extra) changes, and commit the result::

    python tools/gen_schemas.py            # rewrite src/pyonnx/defs/schemas.json
    python tools/gen_schemas.py --check    # exit 1 if the committed file is stale
    python tools/gen_schemas.py -o out.json

``tests/defs/test_defs.py`` regenerates the table and compares, so a stale file fails the tests.

What is kept per schema: name, domain, since_version, deprecated, node_determinism, the formal
inputs/outputs (name, type_str, option, is_homogeneous, min_arity), the arity bounds, attributes
(name, AttributeProto type name, required, default), type constraints, and whether a function
body exists. Doc strings are left out (they are most of the size). Attribute defaults are JSON:
numbers, strings (bytes decoded as UTF-8), lists; a FLOAT default is written as the shortest
decimal that round-trips through float32 (the precision AttributeProto stores), so ``1e-05`` and
not ``9.999999747378752e-06``; a TENSOR default is ``{"dims", "data_type", "values"}``. An
attribute without a default has no ``default`` key.

The output is one JSON object: a header (onnx version, IR version, the opset range of every domain)
and ``schemas``, a list sorted by (domain, name, since_version) with one schema per line, so a new
onnx release shows up in a diff as the schemas it adds or changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.defs
import onnx.helper
import onnx.numpy_helper

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "src" / "pyonnx" / "defs" / "schemas.json"

#: Format version of the JSON file; bump when the shape of a record changes.
FORMAT_VERSION = 1

_OPTION = {
    onnx.defs.OpSchema.FormalParameterOption.Single: "single",
    onnx.defs.OpSchema.FormalParameterOption.Optional: "optional",
    onnx.defs.OpSchema.FormalParameterOption.Variadic: "variadic",
}

_DETERMINISM = {
    onnx.defs.OpSchema.NodeDeterminism.Deterministic: "deterministic",
    onnx.defs.OpSchema.NodeDeterminism.NonDeterministic: "non_deterministic",
    onnx.defs.OpSchema.NodeDeterminism.Unknown: "unknown",
}


def _float(x: float) -> float:
    """The shortest decimal that names the same float32 as ``x`` (AttributeProto stores float32)."""
    return float(str(np.float32(x)))


def _tensor_default(t: onnx.TensorProto) -> dict[str, Any]:
    arr = onnx.numpy_helper.to_array(t)
    values = arr.ravel().tolist()
    if arr.dtype.kind == "f":
        values = [_float(v) for v in values]
    elif arr.dtype.kind in "OSU":
        values = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]
    return {"dims": [int(d) for d in t.dims], "data_type": int(t.data_type), "values": values}


def _default(attr: onnx.defs.OpSchema.Attribute) -> tuple[bool, Any]:
    """(has_default, default as JSON) for a schema attribute."""
    proto = attr.default_value
    if proto.type == onnx.AttributeProto.UNDEFINED:
        return False, None
    kind = proto.type
    A = onnx.AttributeProto
    if kind == A.FLOAT:
        return True, _float(proto.f)
    if kind == A.INT:
        return True, int(proto.i)
    if kind == A.STRING:
        return True, proto.s.decode("utf-8")
    if kind == A.FLOATS:
        return True, [_float(v) for v in proto.floats]
    if kind == A.INTS:
        return True, [int(v) for v in proto.ints]
    if kind == A.STRINGS:
        return True, [v.decode("utf-8") for v in proto.strings]
    if kind == A.TENSOR:
        return True, _tensor_default(proto.t)
    if kind == A.TENSORS:
        return True, [_tensor_default(t) for t in proto.tensors]
    # No schema has a graph, sparse-tensor or type-proto default; fail loudly if one appears
    # rather than writing something the loader cannot read back.
    raise NotImplementedError(
        f"attribute {attr.name!r}: default of type {A.AttributeType.Name(kind)} not supported"
    )


def _parameter(p: onnx.defs.OpSchema.FormalParameter) -> dict[str, Any]:
    return {
        "name": p.name,
        "type_str": p.type_str,
        "option": _OPTION[p.option],
        "is_homogeneous": bool(p.is_homogeneous),
        "min_arity": int(p.min_arity),
    }


def _schema(s: onnx.defs.OpSchema) -> dict[str, Any]:
    attributes = []
    for name in sorted(s.attributes):
        a = s.attributes[name]
        rec: dict[str, Any] = {"name": name, "type": a.type.name, "required": bool(a.required)}
        has, value = _default(a)
        if has:
            rec["default"] = value
        attributes.append(rec)
    return {
        "name": s.name,
        "domain": s.domain,
        "since_version": int(s.since_version),
        "deprecated": bool(s.deprecated),
        "node_determinism": _DETERMINISM[s.node_determinism],
        "min_input": int(s.min_input),
        "max_input": int(s.max_input),
        "min_output": int(s.min_output),
        "max_output": int(s.max_output),
        "inputs": [_parameter(p) for p in s.inputs],
        "outputs": [_parameter(p) for p in s.outputs],
        "attributes": attributes,
        "type_constraints": {
            tc.type_param_str: list(tc.allowed_type_strs) for tc in s.type_constraints
        },
        "has_function": bool(s.has_function),
        "has_context_dependent_function": bool(s.has_context_dependent_function),
    }


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def generate() -> str:
    """The full text of ``schemas.json`` for the installed onnx package (deterministic)."""
    schemas = sorted(
        onnx.defs.get_all_schemas_with_history(),
        key=lambda s: (s.domain, s.name, s.since_version),
    )
    opset_range = {
        domain: [int(lo), int(hi)]
        for domain, (lo, hi) in sorted(onnx.defs.C.schema_version_map().items())
    }
    header = [
        f'"format_version":{FORMAT_VERSION}',
        f'"onnx_version":{_dumps(onnx.__version__)}',
        f'"ir_version":{int(onnx.IR_VERSION)}',
        f'"opset_range":{_dumps(opset_range)}',
    ]
    lines = ["{", *(h + "," for h in header), '"schemas":[']
    records = [_dumps(_schema(s)) for s in schemas]
    lines.extend(r + "," for r in records[:-1])
    lines.append(records[-1])
    lines.extend(["]", "}"])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--check", action="store_true", help="compare with the output file instead of writing it"
    )
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            print(f"{args.output} is stale: run python tools/gen_schemas.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date (onnx {onnx.__version__})")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text.encode('utf-8'))} bytes, onnx {onnx.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
