"""How fast the viewer opens large graphs, in headless Chromium (Playwright, the system browser).

Two figures, from issue 17's acceptance:

* a generated 5,000-node graph: milliseconds from navigation start until the graph is painted,
  and until a click on a node has shown its side panel (the target is 3 s);
* a generated 50,000-node graph: the longest main-thread task after first paint (the target is
  no task over 500 ms), measured with the Long Tasks API (a ``PerformanceObserver`` installed
  before the page's own script) while the user pans, zooms out to the whole graph and back,
  clicks a node and searches.

The graphs repeat a 10-node block (MatMul, Add, Relu, Mul, a residual Add, and the
Shape/Gather/Unsqueeze/Concat/Reshape chain exporters write), sharing their weights.

    PYTHONPATH=src python benchmarks/viewer/bench_viewer.py [--nodes 5000 50000] [--json OUT]

Chromium: the system's (``chromium``; ``PYONNX_CHROMIUM`` overrides), with ``--no-sandbox``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from pyonnx.ir import Attribute, AttributeType, DataType, Graph, Model, Node, Tensor, TensorType, Value
from pyonnx.viewer import describe_model, render_page

LONG_TASKS = """
window.__longTasks = [];
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push([e.startTime, e.duration]);
  }).observe({type: 'longtask', buffered: true});
} catch (e) { window.__longTasks = null; }
"""


def block_model(blocks: int, width: int = 64) -> Model:
    """``blocks`` blocks of 10 nodes each, chained, sharing weights."""
    f32 = DataType.FLOAT

    def const(name: str, arr: np.ndarray) -> Value:
        t = Tensor.from_numpy(arr, name)
        return Value(name, TensorType(t.data_type, tuple(arr.shape)), const_value=t)

    rng = np.random.default_rng(0)
    w = const("W", rng.normal(size=(width, width)).astype(np.float32))
    b = const("B", rng.normal(size=(width,)).astype(np.float32))
    s = const("S", np.full((width,), 0.5, np.float32))
    idx = const("idx0", np.array(0, np.int64))
    axes = const("axes0", np.array([0], np.int64))
    tail = const("tail", np.array([width], np.int64))
    x = Value("x", TensorType(f32, ("batch", width)))
    g = Graph("blocks", inputs=[x], initializers=[w, b, s, idx, axes, tail])
    cur = x
    for k in range(blocks):
        def v(name: str) -> Value:
            return Value(f"b{k}_{name}")

        def add(op: str, ins: list[Value], out: Value, **attrs: int) -> Value:
            at = [Attribute(a, AttributeType.INT, val) for a, val in attrs.items()]
            g.append(Node(op, ins, [out], name=f"b{k}_{op.lower()}_{out.name}", attributes=at))
            return out

        a = add("MatMul", [cur, w], v("mm"))
        a = add("Add", [a, b], v("bias"))
        a = add("Relu", [a], v("relu"))
        a = add("Mul", [a, s], v("scale"))
        e = add("Add", [a, cur], v("res"))
        sh = add("Shape", [e], v("shape"))
        ga = add("Gather", [sh, idx], v("n"))
        un = add("Unsqueeze", [ga, axes], v("n1"))
        cc = add("Concat", [un, tail], v("newshape"), axis=0)
        cur = add("Reshape", [e, cc], v("out"))
    g.outputs.append(cur)
    return Model(g, opset_imports={"": 17})


def chromium() -> str:
    exe = os.environ.get("PYONNX_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    if not exe:
        sys.exit("no Chromium: apt-get install -y chromium (or set PYONNX_CHROMIUM)")
    return exe


def poll(page: Any, fn: str, timeout: float = 300.0) -> Any:
    end = time.monotonic() + timeout
    while True:
        v = page.evaluate(fn)
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError(fn)
        time.sleep(0.02)


def measure(browser: Any, html: str, nodes: int, shots: str | None) -> dict[str, Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    page.add_init_script(LONG_TASKS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(Path(html).as_uri())
    poll(page, "() => !!(window.__viewer && window.__viewer.ready)")
    first_paint = page.evaluate("() => window.__viewer.firstPaint")
    # click a node in the middle of the view and wait for its panel
    sid = str(nodes // 2 if nodes < 20000 else 3)
    page.evaluate("(s) => window.__viewer.centerOn(s)", sid)
    poll(page, "() => { window.__viewer.redraw(); return true; }")
    p = page.evaluate("(s) => window.__viewer.screenPoint(s)", sid)
    page.mouse.click(p["x"], p["y"])
    poll(page, "() => !!document.querySelector('#node-panel')")
    clickable = page.evaluate("() => performance.now()")
    if shots:
        page.screenshot(path=os.path.join(shots, f"graph_{nodes}_clicked.png"))
    # interactions after first paint: pan, zoom out to everything and back, search
    page.mouse.move(600, 400)
    page.mouse.down()
    page.mouse.move(300, 200, steps=10)
    page.mouse.up()
    page.click("#fit")
    page.mouse.move(500, 450)  # back over the graph: wheel events go to what is under it
    for _ in range(16):  # out until the whole graph is in the window
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(30)
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r()))")
    widest = page.evaluate("() => window.__viewer.zoom()")
    if shots:
        page.screenshot(path=os.path.join(shots, f"graph_{nodes}_whole.png"))
    for _ in range(12):
        page.mouse.wheel(0, -600)
        page.wait_for_timeout(30)
    zoom = page.evaluate("() => window.__viewer.zoom()")
    page.fill("#search", "relu")
    poll(page, "() => document.querySelectorAll('#results li.hit').length > 0")
    page.wait_for_timeout(1500)
    tasks = page.evaluate("() => window.__longTasks")
    out = {
        "nodes": page.evaluate("() => window.__viewer.nodeCount()"),
        "layout": page.evaluate("() => window.__viewer.engine"),
        "layout_ms": round(page.evaluate("() => window.__viewer.layoutMs")),
        "first_paint_ms": round(first_paint),
        "clickable_ms": round(clickable),
        "widest_zoom": round(widest, 4),
        "zoomed_back_to": round(zoom, 3),
        "long_tasks_after_first_paint": None if tasks is None else
        sorted(round(d) for s, d in tasks if s >= first_paint),
        "errors": errors,
    }
    if tasks is not None:
        after = out["long_tasks_after_first_paint"]
        out["max_task_after_first_paint_ms"] = max(after, default=0)
    ctx.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[5000, 50000])
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--screenshots", metavar="DIR", help="save screenshots there")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    results = []
    folder = tempfile.mkdtemp(prefix="pyonnx_viewer_bench_")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            for n in args.nodes:
                t = time.perf_counter()
                model = block_model(max(1, n // 10))
                desc = describe_model(model, title=f"{n} nodes")
                describe_s = time.perf_counter() - t
                html = os.path.join(folder, f"g{n}.html")
                with open(html, "w", encoding="utf-8") as f:
                    f.write(render_page(desc))
                if args.screenshots:
                    os.makedirs(args.screenshots, exist_ok=True)
                r = measure(browser, html, len(model.graph.nodes), args.screenshots)
                r["describe_s"] = round(describe_s, 2)
                r["page_mb"] = round(os.path.getsize(html) / 1e6, 1)
                results.append(r)
                print(json.dumps(r))
            browser.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
