"""Helpers of the real-browser tests (pytest marker ``browser``): Playwright driving the system
Chromium (Debian's ``chromium``; Playwright's own browser download needs the internet, so it is
never used), a free local port, and the page checks shared by the tour and JupyterLab tests."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from contextlib import contextmanager

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    env = os.environ.get("SNNKIT_CHROMIUM")
    if env:
        return env if os.path.exists(env) else None
    for p in CHROMIUM_CANDIDATES:
        if os.path.exists(p):
            return p
    return shutil.which("chromium")


def why_no_browser() -> str | None:
    """None when the browser tests can run here, else the reason (for the skip)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install 'snnkit[dev]')"
    if chromium_path() is None:
        return ("no Chromium at " + ", ".join(CHROMIUM_CANDIDATES)
                + " (apt-get install chromium, as .ci/run does; or set SNNKIT_CHROMIUM)")
    return None


@contextmanager
def launched():
    """A Playwright Chromium browser with a fresh profile, closed afterwards."""
    from playwright.sync_api import sync_playwright
    profile = tempfile.mkdtemp(prefix="snnkit-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(profile, executable_path=chromium_path(), headless=True,
                                                       args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 1000})
            try:
                yield ctx
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def watch_console(page) -> list[str]:
    """Errors the page reports (console errors, uncaught exceptions), appended as they come."""
    errors = []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    return errors


# JS: a summary of every plotly figure of the page (or of one element), to compare before/after.
FIGURES_JS = """(root) => Array.from((root || document).querySelectorAll('.js-plotly-plot')).map(gd => ({
  visible: gd.offsetParent !== null,
  traces: (gd.data || []).length,
  points: (gd._fullData || []).reduce((n, t) => n + (t._length || (t.z ? t.z.length : 0) || 0), 0),
  drawn: !!gd.querySelector('.main-svg'),
  lost: Array.from(gd.querySelectorAll('canvas.gl-canvas')).filter(c => {
      const g = c.getContext('webgl'); return !g || g.isContextLost(); }).length,
  key: JSON.stringify([(gd.layout && gd.layout.title && (gd.layout.title.text || gd.layout.title)) || '',
                       (gd.data || []).map(t => [t.name, t.type, t.x0, t.dx,
                          String(JSON.stringify(t.y)).slice(0, 400), String(JSON.stringify(t.x)).slice(0, 400),
                          String(JSON.stringify(t.z)).slice(0, 400)])]).slice(0, 20000)
}))"""


def figures(page_or_locator, root=None):
    if root is not None:
        return root.evaluate(FIGURES_JS)
    return page_or_locator.evaluate(FIGURES_JS)
