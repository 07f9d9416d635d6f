"""JupyterLab in a real browser (marker ``browser``): the test starts a real ``jupyter lab`` server
on a free local port (a copy of the notebooks, autosave off, every cell kept in the page), opens
each notebook, runs all cells through the UI's Run menu, checks that no cell shows an error, moves
the notebook's first widget control (a slider by keyboard, or a dropdown) and checks that its
figure or output changes; a slider is then moved 20 more times and every figure of the notebook
must still have its data and its WebGL context. The server is stopped by the test."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from browser_helpers import figures, free_port, launched, watch_console

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
RUN_ALL_S = 420          # one notebook's Run All, at most (the CPU defaults take 15-100 s)
SETTINGS = {             # JupyterLab user settings for the test server
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False, "fetchNews": "false", "doNotDisturbMode": True},
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A running ``jupyter lab`` on a copy of the notebooks: yields (base url, token, folder)."""
    pytest.importorskip("jupyterlab")
    home = tmp_path_factory.mktemp("lab")
    nbs = home / "notebooks"
    shutil.copytree(ROOT / "notebooks", nbs, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = home / "settings"
    for rel, value in SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(value))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTER_DATA_DIR=str(home / "data"), SNNKIT_STRICT_CLAIMS="1")
    env.pop("SNNKIT_PANELS", None)                       # live widgets only, as a student gets them
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={nbs}", f"--LabApp.user_settings_dir={settings}",
           f"--LabApp.workspaces_dir={home / 'workspaces'}", "--ServerApp.port_retries=0"]
    if hasattr(os, "getuid") and os.getuid() == 0:
        cmd.append("--allow-root")
    log = open(home / "server.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"jupyter lab did not start: {(home / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        yield base, token, nbs
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.poll() is not None                       # the server is stopped


_STATE_JS = """() => {
    const s = document.querySelector('.jp-Notebook-ExecutionIndicator');
    const prompts = Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt'))
        .map(p => p.textContent || '');
    return [s ? s.getAttribute('data-status') : 'none', prompts];
}"""


def _run_all(page, name):
    """Run all cells through the Run menu; return the seconds until the kernel is idle with no cell
    pending (an error stops Run All: the error check that follows then says which)."""
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
    page.wait_for_function(f"() => ({_STATE_JS})()[0] === 'idle'", timeout=180_000, polling=500)
    t0 = time.time()
    for attempt in range(3):                  # the menu acts on the active notebook: focus it first
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        item = page.locator(".lm-Menu-item:not(.lm-mod-disabled) .lm-Menu-itemLabel", has_text="Run All Cells").first
        item.wait_for(timeout=10_000)
        item.click()
        try:                                  # running: Run All queues every cell at once ([*])
            page.wait_for_function(f"() => ({_STATE_JS})()[1].some(p => p.includes('*'))", timeout=30_000, polling=100)
            break
        except Exception:                     # noqa: BLE001 - retried, then reported below
            page.keyboard.press("Escape")
    else:
        pytest.fail(f"{name}: Run All Cells did not start the kernel: {page.evaluate(_STATE_JS)}")
    calm = 0
    while calm < 3:
        assert time.time() - t0 < RUN_ALL_S, f"{name}: Run All still busy after {RUN_ALL_S} s: {page.evaluate(_STATE_JS)}"
        page.wait_for_timeout(1000)
        status, prompts = page.evaluate(_STATE_JS)
        calm = calm + 1 if status == "idle" and not any("*" in p for p in prompts) else 0
    return time.time() - t0


def _wait_idle(page, name, limit_s=180):
    t0, calm = time.time(), 0
    while calm < 2:
        assert time.time() - t0 < limit_s, f"{name}: the kernel stayed busy for {limit_s} s"
        page.wait_for_timeout(500)
        status, prompts = page.evaluate(_STATE_JS)
        calm = calm + 1 if status == "idle" else 0


def _errors(page):
    return page.evaluate("""() => Array.from(document.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
        .map(e => e.innerText).filter(t => /Traceback|Error\\b|✗ claim/.test(t)).map(t => t.slice(0, 1500))""")


def _move_first_control(page, name):
    """Move the first widget control; return a description. Fails when its output does not change."""
    slider = page.locator(".jp-OutputArea-output .widget-slider .noUi-handle")
    select = page.locator(".jp-OutputArea-output .widget-dropdown select")
    try:                                                  # widget views render after their cell ran
        page.locator(".jp-OutputArea-output .widget-slider .noUi-handle, .jp-OutputArea-output .widget-dropdown select"
                     ).first.wait_for(state="attached", timeout=60_000)
    except Exception:                                     # noqa: BLE001 - the failure below says what is missing
        pass
    if slider.count():
        ctl, kind = slider.first, "slider"
    elif select.count():
        ctl, kind = select.first, "dropdown"
    else:
        prompts = page.evaluate(_STATE_JS)
        pytest.fail(f"{name}: no ipywidgets slider or dropdown in the notebook after Run All (prompts {prompts})")
    area = ctl.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '), ' jp-OutputArea-output ')][1]")
    state = lambda: json.dumps([[f["key"] for f in figures(page, area)], area.inner_text()])   # noqa: E731
    ctl.scroll_into_view_if_needed()
    before = state()
    if kind == "slider":
        ctl.focus()
        at_max = ctl.get_attribute("aria-valuenow") == ctl.get_attribute("aria-valuemax")
        ctl.press("ArrowLeft" if at_max else "ArrowRight")
    else:
        n = ctl.evaluate("e => e.options.length")
        ctl.select_option(index=(ctl.evaluate("e => e.selectedIndex") + 1) % n)
    deadline = time.time() + 90
    while state() == before:
        assert time.time() < deadline, f"{name}: moving the first {kind} did not change its figure or output"
        page.wait_for_timeout(500)
    if kind == "slider":
        for i in range(20):
            ctl.press("ArrowLeft" if i % 4 < 2 else "ArrowRight")
            page.wait_for_timeout(150)
        _wait_idle(page, name)
        page.wait_for_timeout(2000)                       # the last redraw reaches the page
        for i, f in enumerate(figures(page)):
            if f["visible"]:
                assert f["traces"] > 0 and f["lost"] == 0, \
                    f"{name}: figure {i} lost its data or its WebGL context after 20 slider moves: {f}"
    return kind


NOTEBOOK_NAMES = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_in_jupyterlab(lab, name):
    base, token, _ = lab
    with launched() as ctx:
        page = ctx.new_page()
        console = watch_console(page)
        page.goto(f"{base}/lab/tree/{name}?token={token}&reset", wait_until="domcontentloaded")
        seconds = _run_all(page, name)
        errors = _errors(page)
        assert not errors, f"{name}: error output after Run All: {errors[:3]}"
        _, prompts = page.evaluate(_STATE_JS)
        assert all(any(ch.isdigit() for ch in p) for p in prompts), f"{name}: Run All left cells unrun: {prompts}"
        kind = _move_first_control(page, name)
        print(f"{name}: Run All {seconds:.0f} s, moved a {kind}")
        widget_errors = [e for e in console if "widget" in e.lower() or "plotly" in e.lower()]
        assert not widget_errors, f"{name}: widget errors in the console: {widget_errors[:3]}"
