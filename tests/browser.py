"""Headless Chromium for the page tests: Debian's `chromium` (or $HEADPLAST_CHROMIUM) driven by
Playwright without downloading a browser. Missing, the tests skip, or fail where
HEADPLAST_REQUIRE_BROWSER=1 (CI, which installs it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def chromium_path() -> str | None:
    """The Chromium to drive: $HEADPLAST_CHROMIUM, else the first candidate on PATH."""
    if env := os.environ.get("HEADPLAST_CHROMIUM"):
        return env
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def unavailable(reason: str) -> None:
    """Skip, or fail where the browser tests are required."""
    if os.environ.get("HEADPLAST_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (HEADPLAST_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (requirements-dev.txt)")
    exe = chromium_path()
    if exe is None:
        unavailable("no Chromium on PATH: apt-get install chromium, or set HEADPLAST_CHROMIUM")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


@contextmanager
def open_page(browser, path: Path, allow: tuple[str, ...] = ()) -> Iterator:
    """A page showing ``path``; on leaving, fails if the page logged any console error or
    warning, or threw. ``allow``: substrings of messages that a page we do not write logs
    (Snakemake's report template), accepted by name."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []

    def console(m) -> None:
        if m.type in ("error", "warning") and not any(a in m.text for a in allow):
            problems.append(f"console {m.type}: {m.text}")

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(Path(path).resolve().as_uri())
    try:
        yield page
        assert problems == [], f"{path}: {problems}"
    finally:
        page.close()


def hover_cell(page, layer: int, head: int) -> None:
    """Move the real mouse over grid cell (layer, head) of the explorer's heatmap."""
    page.wait_for_function(
        "() => { const gd = document.getElementById('explorer-plot');"
        " return gd && gd._fullLayout && gd._fullLayout.xaxis; }"
    )
    pos = page.evaluate(
        """([l, h]) => { const gd = document.getElementById('explorer-plot');
        const fl = gd._fullLayout, r = gd.getBoundingClientRect();
        return {x: r.left + fl.xaxis._offset + fl.xaxis.l2p(h),
                y: r.top + fl.yaxis._offset + fl.yaxis.l2p(l)}; }""",
        [layer, head],
    )
    page.mouse.move(pos["x"] - 30, pos["y"] - 30)
    page.mouse.move(pos["x"], pos["y"], steps=5)
