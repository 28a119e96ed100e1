"""Regenerate ``src/pyonnx/serving/proto/kserve_pb2.py`` (and ``.pyi``) from ``kserve.proto``.

Uses the same pinned compiler as ``tools/gen_proto.py`` (grpcio-tools 1.62.3, protoc 25.1, in a
throwaway venv), so the generated module loads on protobuf 4.25 through 7.x. Only message
classes are generated: the gRPC service is registered by hand in
``pyonnx/serving/grpc_server.py`` (under the protocol's service name ``inference.GRPCInferenceService``),
so no ``_pb2_grpc`` module and no grpcio-tools at run time.

    python tools/gen_serving_proto.py [--venv DIR] [--check]
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_proto import DEFAULT_VENV, REPO, SRC, ensure_compiler  # noqa: E402

PROTO_REL = Path("pyonnx/serving/proto/kserve.proto")
OUTPUTS = ("kserve_pb2.py", "kserve_pb2.pyi")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="venv holding grpcio-tools")
    parser.add_argument("--check", action="store_true", help="only report whether outputs are stale")
    args = parser.parse_args(argv)
    python = ensure_compiler(args.venv)
    target_dir = SRC / PROTO_REL.parent
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(python), "-m", "grpc_tools.protoc", f"--proto_path={SRC}",
                        f"--python_out={tmp}", f"--pyi_out={tmp}", str(PROTO_REL)],
                       check=True, cwd=REPO)
        produced = Path(tmp) / PROTO_REL.parent
        stale = [n for n in OUTPUTS if not (target_dir / n).exists()
                 or not filecmp.cmp(produced / n, target_dir / n, shallow=False)]
        if args.check:
            for n in stale:
                print(f"stale: {target_dir / n}", file=sys.stderr)
            return 1 if stale else 0
        for n in OUTPUTS:
            shutil.copyfile(produced / n, target_dir / n)
            print(f"wrote {target_dir / n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
