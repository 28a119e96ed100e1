"""``pyonnx view``: the local server's refusals (launch token, Host header, paths, methods),
the served page and its on-demand profile and comparison in a browser, and the CLI (the
self-contained ``--html`` file carries no weights)."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyonnx
from pyonnx.cli.main import main
from pyonnx.ops import registry
from pyonnx.viewer import ViewerServer, describe_model, render_page
from tests.viewer.conftest import Viewer
from tests.viewer.test_browser import TINY, tiny_model


@pytest.fixture
def server() -> ViewerServer:
    model = tiny_model()
    with ViewerServer(describe_model(model), model) as s:
        yield s


def request(server: ViewerServer, method: str, path: str, *, host: str | None = None
            ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {"Host": host if host is not None else f"127.0.0.1:{server.port}"}
    conn.request(method, path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def test_server_listens_on_loopback_only(server: ViewerServer) -> None:
    assert server.httpd.server_address[0] == "127.0.0.1"
    assert server.url.startswith(f"http://127.0.0.1:{server.port}/?token=")
    assert len(server.token) >= 32


def test_page_needs_the_launch_token(server: ViewerServer) -> None:
    t = server.token
    status, headers, body = request(server, "GET", f"/?token={t}")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "script-src 'nonce-" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store"
    assert b'id="model-data"' in body
    for path in ("/", "/?token=", f"/?token={t[:-1]}", f"/?token={t}x", f"/?tok={t}"):
        status, _, body = request(server, "GET", path)
        assert status == 403 and b"token" in body, path
    # also with localhost as the host name
    assert request(server, "GET", f"/?token={t}", host=f"localhost:{server.port}")[0] == 200


def test_foreign_host_is_refused(server: ViewerServer) -> None:
    t = server.token
    for host in ("evil.example", f"evil.example:{server.port}", "127.0.0.1",
                 f"127.0.0.1:{server.port + 1}", ""):
        status, _, body = request(server, "GET", f"/?token={t}", host=host)
        assert status == 403 and b"Host" in body, host


def test_paths_outside_what_it_serves_are_refused(server: ViewerServer) -> None:
    t = server.token
    for path in ("/index.html", "/app.js", "/static/app.js", "/../../etc/passwd",
                 "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd", "/api/profile", "/api",
                 "/favicon.ico"):
        sep = "&" if "?" in path else "?"
        status, _, _ = request(server, "GET", f"{path}{sep}token={t}")
        assert status == 404, path
    assert request(server, "POST", f"/api/other?token={t}")[0] == 404
    assert request(server, "POST", f"/?token={t}")[0] == 404
    assert request(server, "PUT", f"/?token={t}")[0] == 405
    assert request(server, "DELETE", f"/?token={t}")[0] == 405
    # without the token every method and path is refused the same way
    for method, path in (("POST", "/api/profile"), ("PUT", "/"), ("GET", "/app.js")):
        assert request(server, method, path)[0] == 403


def test_api_runs_a_profile_and_refuses_unknown_engines(server: ViewerServer) -> None:
    t = server.token
    status, _, body = request(server, "POST", f"/api/profile?token={t}")
    assert status == 200, body
    prof = json.loads(body)
    assert {"0", "1", "2", "3"} <= set(prof["nodes"])
    status, _, body = request(server, "POST", f"/api/compare?engine=tvm&token={t}")
    assert status == 400 and b"tvm" in body


def test_served_page_runs_profile_and_compare_on_demand(
        viewer: Viewer, server: ViewerServer, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    viewer.open(server.url)
    viewer.page.click("#run-profile")
    viewer.wait("() => document.body.dataset.overlay === 'profile'")
    viewer.settle()
    r, g, b, _ = viewer.js("(s) => window.__viewer.pixelAt(s)", "1")
    assert r == 255 and g < 240 and b < 190
    # the comparison, with pyonnx's Sigmoid broken for this test only
    registry.get_kernel("", "Sigmoid", 13)
    monkeypatch.setitem(registry._REGISTRY, ("", "Sigmoid", 13),
                        lambda X: ((1.0 / (1.0 + np.exp(-X)) + 0.25).astype(X.dtype),))
    viewer.page.click("#run-compare")
    viewer.wait("() => document.body.dataset.overlay === 'compare'")
    viewer.settle()
    assert viewer.js("(s) => window.__viewer.pixelAt(s)", "2")[:3] == [255, 107, 107]
    assert "first disagreement: node 2" in viewer.page.inner_text("#panel")
    viewer.screenshot("served_compare")
    assert viewer.errors == []


def test_page_escapes_model_strings_and_has_no_weights() -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(size=(200, 100)).astype(np.float32)
    model = pyonnx.parse_model(TINY.replace("(float[N, 4] x)", "(float[N, 200] x)")
                               .replace("MatMul(x, w)", "MatMul(x, w)"))
    model.graph.initializers["w"] = pyonnx.ir.Value(
        "w", pyonnx.ir.TensorType(pyonnx.ir.DataType.FLOAT, (200, 100)),
        const_value=pyonnx.ir.Tensor.from_numpy(w, "w"))
    model.graph.nodes[0].set_input(1, model.graph.initializers["w"])
    model.graph.nodes[0].name = "</script><script>alert(1)</script>"
    html = render_page(describe_model(model))
    # the only closing script tags are the page's own four
    assert html.lower().count("</script") == 4
    assert "alert(1)" in html and "<script>alert(1)" not in html
    # 20,000 weights summarised, not embedded: no sample of them appears
    for v in w.reshape(-1)[5:25]:
        assert repr(float(v))[:9] not in html
    assert "float" in html and '"hist"' in html


def test_cli_html_is_self_contained(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "m.onnx"
    pyonnx.save(tiny_model(), str(src))
    trace_model = tiny_model()
    opts = pyonnx.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp_path / "prof")
    sess = pyonnx.InferenceSession(trace_model, opts)
    sess.run(None, {"x": np.ones((2, 4), np.float32), "w": np.ones((4, 3), np.float32)})
    trace = sess.end_profiling()
    out = tmp_path / "view.html"
    assert main(["view", str(src), "--html", str(out), "--profile", trace]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    html = out.read_text()
    assert "http://" not in html.replace("http://www.w3.org", "")  # nothing fetched
    assert 'src="' not in html and "<link" not in html
    data = html.split('id="model-data" type="application/json">')[1].split("</script>")[0]
    desc = json.loads(data)
    assert desc["title"] == "m.onnx" and desc["profile"]["total_us"] > 0
    assert "connect-src 'none'" in html
    # or profiled now
    assert main(["view", str(src), "--html", str(out), "--profile", "run"]) == 0
    data = out.read_text().split('id="model-data" type="application/json">')[1]
    desc = json.loads(data.split("</script>")[0])
    assert desc["profile"]["source"].startswith("pyonnx, 3 run(s)")
    assert {"0", "1", "2", "3"} <= set(desc["profile"]["nodes"])


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert main(["view", str(bad), "--html", str(tmp_path / "o.html")]) == 1
    assert "pyonnx view: error:" in capsys.readouterr().err
    src = tmp_path / "m.onnx"
    pyonnx.save(tiny_model(), str(src))
    trace = tmp_path / "t.json"
    trace.write_text("{")
    assert main(["view", str(src), "--html", str(tmp_path / "o.html"),
                 "--profile", str(trace)]) == 1
    assert "not JSON" in capsys.readouterr().err


def test_cli_serves_until_stopped(tmp_path: Path) -> None:
    src = tmp_path / "m.onnx"
    pyonnx.save(tiny_model(), str(src))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(pyonnx.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "pyonnx.cli.main", "view", str(src),
                             "--no-browser", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "serving" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split(" at ", 1)[1].strip()
        port = int(url.split(":")[2].split("/")[0])
        token = url.split("token=")[1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", f"/?token={token}")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_app_never_parses_markup() -> None:
    """The app puts model strings into the page as text only: no API that parses HTML (or
    evaluates code) appears in its sources."""
    from importlib import resources

    static = resources.files("pyonnx.viewer").joinpath("static")
    for name in ("app.js", "layout_worker.js"):
        src = static.joinpath(name).read_text()
        for api in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                    "eval(", "new Function", "setAttribute('style"):
            assert api not in src, (name, api)
    assert static.joinpath("vendor", "dagre.LICENSE").read_text().startswith("Copyright")
