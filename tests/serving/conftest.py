"""Fixtures of the serving tests: tiny models, real server processes, the real Triton clients.

The servers are real ``pyonnx serve`` processes on ephemeral ports. The clients are the real
``tritonclient`` package (http and grpc), run in a subprocess from a virtual environment of its
own, because tritonclient pins older protobuf/ml_dtypes than pyonnx's test environment. The
environment is built once under ``~/.cache/pyonnx-test/tritonclient-venv`` (or
``$PYONNX_TRITONCLIENT_VENV``) and reused; the tests that need it skip, saying so, only when the
package registry cannot be reached to build it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import venv
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the serve extra (starlette) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
pytest.importorskip("grpc", reason="the serve extra (grpcio) is not installed")
pytest.importorskip("prometheus_client", reason="the serve extra (prometheus-client) is not installed")

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "src"
SHARED_MODELS = REPO_ROOT.parent / "shared" / "models"
CLIENTS = Path(__file__).resolve().parent / "clients"
TRITONCLIENT_VENV = Path(os.environ.get(
    "PYONNX_TRITONCLIENT_VENV", Path.home() / ".cache" / "pyonnx-test" / "tritonclient-venv"))


# ---------------------------------------------------------------------------- tiny models
def save_add_model(path: Path, opset: int = 17) -> Path:
    """y = x + 1 and z = 2 * x, x float32 [batch, 4]: a sub-millisecond batchable model."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 4])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    graph = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"]),
                               helper.make_node("Mul", ["x", "two"], ["z"])],
                              "add", [x], [y, z], initializer=[one, two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def save_strings_model(path: Path) -> Path:
    """s_out = Identity(s), strings [n]; plus n_out = Size(s) as int64: BYTES in and out."""
    s = helper.make_tensor_value_info("s", TensorProto.STRING, ["n"])
    so = helper.make_tensor_value_info("s_out", TensorProto.STRING, ["n"])
    graph = helper.make_graph([helper.make_node("Identity", ["s"], ["s_out"])],
                              "strings", [s], [so])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


# ---------------------------------------------------------------------------- servers
class ServerProcess:
    """A running ``pyonnx serve`` subprocess; ``http``/``grpc`` are its host:port addresses."""

    def __init__(self, location: Path | str, *flags: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pyonnx.cli.main", "serve", str(location), "--http-port", "0",
             "--grpc-port", "0", *flags],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
            start_new_session=True)
        self.lines: list[str] = []
        found = threading.Event()
        ports: dict[str, str] = {}

        def pump() -> None:  # keep reading stderr (the access log) so the server never blocks
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line)
                m = re.search(r"listening http=(\S+) grpc=(\S+)", line)
                if m:
                    ports["http"], ports["grpc"] = m.group(1), m.group(2)
                    found.set()
            found.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not found.wait(180) or "http" not in ports:
            self.stop()
            raise RuntimeError("pyonnx serve did not start:\n" + "".join(self.lines[-40:]))
        self.http, self.grpc = ports["http"], ports["grpc"]
        # listening: wait until the server says it is ready
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{self.http}/v2/health/ready", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("pyonnx serve never became ready:\n" + "".join(self.lines[-40:]))

    def log(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._pump.join(10)
        return self.proc.returncode


@pytest.fixture
def serve():
    """Start ``pyonnx serve LOCATION FLAGS...`` processes; every one is stopped at teardown."""
    started: list[ServerProcess] = []

    def start(location, *flags: str) -> ServerProcess:
        s = ServerProcess(location, *flags)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


# ---------------------------------------------------------------------------- tritonclient
def _has_tritonclient(python: Path) -> bool:
    if not python.exists():
        return False
    r = subprocess.run([str(python), "-c", "import tritonclient.http, tritonclient.grpc"],
                       capture_output=True)
    return r.returncode == 0


@pytest.fixture(scope="session")
def tritonclient_python() -> Path:
    """The Python of a virtual environment holding ``tritonclient[http,grpc]`` (built once)."""
    python = TRITONCLIENT_VENV / "bin" / "python"
    if _has_tritonclient(python):
        return python
    tmp = TRITONCLIENT_VENV.with_name(TRITONCLIENT_VENV.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    venv.create(tmp, with_pip=True)
    r = subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "tritonclient[http,grpc]"],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        text = r.stdout + r.stderr
        if re.search(r"(?i)(connection|network|resolve|timed? ?out|no matching distribution|"
                     r"could not find a version)", text):
            pytest.skip("cannot build the tritonclient test environment: the package registry "
                        f"is unreachable ({text.strip().splitlines()[-1] if text.strip() else ''})")
        raise RuntimeError(f"pip install tritonclient failed:\n{text}")
    shutil.rmtree(TRITONCLIENT_VENV, ignore_errors=True)
    try:
        os.replace(tmp, TRITONCLIENT_VENV)
    except OSError:  # another process built it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    # the venv's scripts name the folder they were built in: use the moved one's interpreter
    # through its real path (python in bin/ is a symlink to the base interpreter, so it works)
    assert _has_tritonclient(python), "tritonclient venv unusable after building it"
    return python


@pytest.fixture
def client(tritonclient_python, tmp_path):
    """Run a client script of tests/serving/clients/ in the tritonclient environment; returns
    its JSON result (the script's last stdout line)."""
    def run(script: str, *args: object, timeout: float = 600) -> dict:
        r = subprocess.run([str(tritonclient_python), str(CLIENTS / script), *map(str, args)],
                           capture_output=True, text=True, timeout=timeout, cwd=tmp_path)
        if r.returncode != 0:
            raise AssertionError(f"{script} failed ({r.returncode}):\n{r.stdout[-3000:]}\n"
                                 f"{r.stderr[-5000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])
    return run


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=True) as f:
        return {k: f[k] for k in f.files}
