"""Fixtures for the viewer's browser tests: Playwright driving the system's Chromium.

The browser is Debian's ``chromium`` package (``.ci/run`` installs it), started with
``--no-sandbox`` (CI runs as root); Playwright's own browser download is never used. Without
Playwright or Chromium the browser tests skip and say why, unless
``PYONNX_VIEWER_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure. Screenshots go to
an artifacts folder (``PYONNX_ARTIFACTS``, default ``<tmp>/pyonnx-artifacts``) whose path
is printed at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(os.environ.get("PYONNX_ARTIFACTS")
                 or os.path.join(tempfile.gettempdir(), "pyonnx-artifacts")) / "viewer"
_saved: list[str] = []


def chromium_path() -> str | None:
    """The system Chromium (``PYONNX_CHROMIUM`` overrides the search)."""
    explicit = os.environ.get("PYONNX_CHROMIUM")
    if explicit:
        return explicit if os.path.exists(explicit) else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("PYONNX_VIEWER_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests required here, but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[viewer]')")
    exe = chromium_path()
    if exe is None:
        _unavailable("no Chromium found (apt-get install -y chromium, or set PYONNX_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


class Viewer:
    """One browser page with the console errors it logged."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def open(self, url: str, timeout: float = 60.0) -> None:
        self.page.goto(url)
        self.wait_ready(timeout)

    def js(self, expression: str, arg: Any = None) -> Any:
        # evaluate a function, never a string of code: the page's CSP forbids eval
        return self.page.evaluate(expression, arg)

    def wait(self, expression: str, arg: Any = None, timeout: float = 30.0) -> Any:
        """Poll ``expression`` (a JS function) until it returns something truthy."""
        end = time.monotonic() + timeout
        while True:
            value = self.js(expression, arg)
            if value:
                return value
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {expression}; errors: "
                                     f"{self.errors}")
            time.sleep(0.03)

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.wait("() => !!(window.__viewer && window.__viewer.ready)", timeout=timeout)
        self.settle()

    def settle(self) -> None:
        """Ask for a frame and wait until it has been painted."""
        n = self.js("() => { const n = window.__viewer.frames || 0; window.__viewer.redraw(); "
                    "return n; }")
        self.wait("(n) => (window.__viewer.frames || 0) > n", n)

    def screenshot(self, name: str) -> str:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = str(ARTIFACTS / f"{name}.png")
        self.page.screenshot(path=path)
        _saved.append(path)
        return path


@pytest.fixture
def viewer(browser: Any) -> Iterator[Viewer]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        yield Viewer(page)
    finally:
        context.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _saved:
        terminalreporter.write_line(f"viewer screenshots ({len(_saved)}): {ARTIFACTS}")
