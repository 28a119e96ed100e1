"""Runs corpus stages in forked children under an address-space limit and a hang timeout.

A server process (``python -m tests.hostile.runner --serve``) imports pyonnx once, then for
each request line ``{"case": name, "stage": stage, "folder": path}`` forks a child that sets
``RLIMIT_AS`` (512 MiB by default), builds the case, runs the stage and writes its outcome to a
pipe. The server waits at most the hang timeout (generous: it only detects hangs, it asserts no
speed), kills a child that overruns, and answers one JSON line:
``{"outcome": "ok" | error type name | "hang" | "crash", "detail": message}``.

``python -m tests.hostile.runner [case ...]`` runs cases (all by default) and prints a table.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ADDRESS_SPACE_LIMIT = 512 * 2**20
HANG_TIMEOUT_S = 120.0
STAGES = ("load", "check", "infer", "infer_strict", "session", "run")


def run_stage(case: Any, stage: str, folder: Path) -> None:
    """Build ``case`` into folder and run one stage; return normally on success."""
    import warnings

    import pyonnx
    from pyonnx.runtime import SessionOptions

    warnings.simplefilter("ignore")
    source = case.build(folder)
    limits = {k: v for k, v in case.load_kwargs.items()}
    if stage == "load":
        pyonnx.load(source, **limits)
    elif stage == "check":
        pyonnx.check_model(source, **limits)
    elif stage in ("infer", "infer_strict"):
        # the inferred model must also be writable: a dim no tensor can have would fail there
        pyonnx.serialize(pyonnx.infer_shapes(pyonnx.load(source, **limits),
                                             strict=stage == "infer_strict", **limits))
    else:
        opts = SessionOptions()
        for k, v in case.options.items():
            setattr(opts, k, v)
        sess = pyonnx.InferenceSession(source, opts)
        if stage == "run":
            sess.run(None, case.feeds() if case.feeds is not None else {})


def _child(case_name: str, stage: str, folder: str, wfd: int, limit: int) -> None:
    """In the forked child: limit memory, run the stage, report the outcome, exit hard."""
    outcome: dict[str, str]
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        from pyonnx.errors import PyOnnxError
        from tests.hostile.corpus import by_name

        try:
            run_stage(by_name()[case_name], stage, Path(folder))
            outcome = {"outcome": "ok", "detail": ""}
        except PyOnnxError as e:
            outcome = {"outcome": type(e).__name__, "detail": str(e)[:2000],
                       "base": "PyOnnxError",
                       # a subclass of the expected error is the expected outcome too
                       "classes": [c.__name__ for c in type(e).__mro__]}
        except BaseException as e:  # noqa: BLE001 - exactly what the corpus hunts for
            outcome = {"outcome": type(e).__name__, "detail": str(e)[:500] + "\n" +
                       traceback.format_exc()[-3000:], "base": "untyped"}
    except BaseException as e:  # noqa: BLE001
        outcome = {"outcome": "runner-error", "detail": repr(e)}
    data = json.dumps(outcome).encode()
    try:
        os.write(wfd, data)
    finally:
        os._exit(0)


def run_in_child(case_name: str, stage: str, folder: str, *, limit: int = ADDRESS_SPACE_LIMIT,
                 timeout: float = HANG_TIMEOUT_S) -> dict[str, str]:
    """Fork, run one stage in the child, and return its outcome (or hang / crash)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        os.close(rfd)
        _child(case_name, stage, folder, wfd, limit)
    os.close(wfd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    hung = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            hung = True
            break
        ready, _, _ = select.select([rfd], [], [], left)
        if not ready:
            continue
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rfd)
    if hung:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return {"outcome": "hang", "detail": f"no result within {timeout:.0f} s"}
    _, status = os.waitpid(pid, 0)
    if not chunks:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        return {"outcome": "crash", "detail": f"child died (signal {sig}, status {status})"}
    return json.loads(b"".join(chunks))


def serve() -> None:
    """Answer one JSON request per stdin line with one JSON outcome line on stdout."""
    # import everything once, before forking, so each child starts warm
    import pyonnx  # noqa: F401
    import pyonnx.checker  # noqa: F401
    import pyonnx.shape_inference  # noqa: F401
    from pyonnx.ops.registry import _ensure_loaded
    from tests.hostile import corpus  # noqa: F401

    _ensure_loaded()
    for line in sys.stdin:
        req = json.loads(line)
        res = run_in_child(req["case"], req["stage"], req["folder"],
                           limit=int(req.get("limit", ADDRESS_SPACE_LIMIT)),
                           timeout=float(req.get("timeout", HANG_TIMEOUT_S)))
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


class Server:
    """A running ``--serve`` process (one per test session)."""

    def __init__(self) -> None:
        root = Path(__file__).resolve().parents[2]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), str(root),
                                             env.get("PYTHONPATH", "")])
        # one BLAS thread: forking a process with live BLAS threads can deadlock the child
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = "1"
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.hostile.runner", "--serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=root,
                                     env=env, text=True, bufsize=1)

    def run(self, case_name: str, stage: str, folder: str | os.PathLike[str]) -> dict[str, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        req = {"case": case_name, "stage": stage, "folder": os.fspath(folder)}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the corpus runner process died")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        serve()
        return 0
    from tests.hostile.corpus import CASES

    names = set(argv)
    server = Server()
    bad = 0
    try:
        for c in CASES:
            if names and c.name not in names:
                continue
            for stage, want in c.expect.items():
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.monotonic()
                    res = server.run(c.name, stage, tmp)
                    dt = time.monotonic() - t0
                good = res["outcome"] == want or want in res.get("classes", ())
                bad += not good
                print(f"{'ok ' if good else 'BAD'} {c.name:45s} {stage:8s} want {want:24s} got "
                      f"{res['outcome']:24s} {dt:6.2f}s"
                      + ("" if good else f"\n    {res['detail'][:1500]}"), flush=True)
    finally:
        server.close()
    print(f"{bad} unexpected outcome(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
