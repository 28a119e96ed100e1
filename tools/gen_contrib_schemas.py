"""Generate ``src/pyonnx/defs/contrib_schemas.json``: the schemas of the onnxruntime contrib
operators that pyonnx implements (``src/pyonnx/ops/contrib/``), as data.

The schemas are read from the *installed* ``onnxruntime`` package
(``onnxruntime.capi.onnxruntime_pybind11_state.get_all_operator_schema()``), which is the only
place this script runs it. The output has the per-line format of ``schemas.json`` (see
``tools/gen_schemas.py``); fields that onnxruntime's Python binding does not expose take fixed
values: ``min_arity`` 1, ``node_determinism`` "unknown", no function body. The header's
``onnxruntime_version`` replaces ``onnx_version``. Run it whenever the pinned onnxruntime
changes, and commit the result::

    python tools/gen_contrib_schemas.py            # rewrite src/pyonnx/defs/contrib_schemas.json
    python tools/gen_contrib_schemas.py --check    # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import onnx
import onnxruntime
from onnxruntime.capi import onnxruntime_pybind11_state as C

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_schemas import FORMAT_VERSION, _default, _dumps  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "src" / "pyonnx" / "defs" / "contrib_schemas.json"

#: (domain, op_type) of every contrib operator pyonnx has a kernel for. onnxruntime registers
#: LayerNormalization-1 and SimplifiedLayerNormalization-1 in the default domain.
IMPLEMENTED: tuple[tuple[str, str], ...] = tuple(("com.microsoft", op) for op in (
    "Attention", "BiasAdd", "BiasGelu", "BiasSoftmax", "DequantizeLinear", "DynamicQuantizeLSTM",
    "DynamicQuantizeMatMul", "EmbedLayerNormalization", "FastGelu", "FusedConv", "FusedMatMul",
    "GatherBlockQuantized", "Gelu", "GridSample", "Inverse", "MatMulIntegerToFloat", "MatMulNBits",
    "MultiHeadAttention", "NhwcMaxPool", "QAttention", "QGemm", "QLinearAdd", "QLinearAveragePool",
    "QLinearConcat", "QLinearGlobalAveragePool", "QLinearLeakyRelu", "QLinearMul", "QLinearSigmoid",
    "QuantizeLinear", "QuickGelu", "RotaryEmbedding", "SkipLayerNormalization",
    "SkipSimplifiedLayerNormalization", "Tokenizer", "Trilu",
)) + (("", "LayerNormalization"), ("", "SimplifiedLayerNormalization"))

_OPTION = {
    C.schemadef.OpSchema.FormalParameterOption.Single: "single",
    C.schemadef.OpSchema.FormalParameterOption.Optional: "optional",
    C.schemadef.OpSchema.FormalParameterOption.Variadic: "variadic",
}


def _parameter(p: Any) -> dict[str, Any]:
    return {"name": p.name, "type_str": p.typeStr, "option": _OPTION[p.option],
            "is_homogeneous": bool(p.isHomogeneous), "min_arity": 1}


def _attr_default(a: Any) -> tuple[bool, Any]:
    proto = onnx.AttributeProto.FromString(a._default_value)
    return _default(SimpleNamespace(name=a.name, default_value=proto))


def _schema(s: Any) -> dict[str, Any]:
    attributes = []
    for name in sorted(s.attributes):
        a = s.attributes[name]
        rec: dict[str, Any] = {"name": name, "type": a.type.name, "required": bool(a.required)}
        has, value = _attr_default(a)
        if has:
            rec["default"] = value
        attributes.append(rec)
    return {
        "name": s.name, "domain": s.domain, "since_version": int(s.since_version),
        "deprecated": bool(s.deprecated), "node_determinism": "unknown",
        "min_input": int(s.min_input), "max_input": int(s.max_input),
        "min_output": int(s.min_output), "max_output": int(s.max_output),
        "inputs": [_parameter(p) for p in s.inputs],
        "outputs": [_parameter(p) for p in s.outputs],
        "attributes": attributes,
        "type_constraints": {tc.type_param_str: list(tc.allowed_type_strs)
                             for tc in s.type_constraints},
        "has_function": False, "has_context_dependent_function": False,
    }


def generate() -> str:
    """The full text of ``contrib_schemas.json`` for the installed onnxruntime (deterministic)."""
    wanted = set(IMPLEMENTED)
    # In the default domain only onnxruntime's own version 1 (later versions are the standard's).
    schemas = sorted((s for s in C.get_all_operator_schema() if (s.domain, s.name) in wanted
                      and (s.domain != "" or s.since_version == 1)),
                     key=lambda s: (s.domain, s.name, s.since_version))
    missing = wanted - {(s.domain, s.name) for s in schemas}
    if missing:
        raise SystemExit(f"onnxruntime {onnxruntime.__version__} has no schema for {sorted(missing)}")
    header = [
        f'"format_version":{FORMAT_VERSION}',
        f'"onnxruntime_version":{_dumps(onnxruntime.__version__)}',
        f'"opset_range":{_dumps({"com.microsoft": [1, 1]})}',
    ]
    records = [_dumps(_schema(s)) for s in schemas]
    lines = ["{", *(h + "," for h in header), '"schemas":[']
    lines.extend(r + "," for r in records[:-1])
    lines.append(records[-1])
    lines.extend(["]", "}"])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true",
                        help="compare with the output file instead of writing it")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            print(f"{args.output} is stale: run python tools/gen_contrib_schemas.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date (onnxruntime {onnxruntime.__version__})")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text.encode('utf-8'))} bytes, onnxruntime "
          f"{onnxruntime.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
