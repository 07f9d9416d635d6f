"""The tour: execute every notebook headless on its CPU defaults and render a browsable HTML index.

``snnkit tour`` (and ``make tour``) runs each ``notebooks/NN_*.ipynb`` with papermill into
``build/tour/``, exports each executed notebook as standalone HTML (plotly.js embedded once per
page by the ``notebook`` renderer, so the figures stay interactive offline) and writes
``build/tour/index.html`` linking them with their run time and status.

Offline, a page must not depend on a CDN (:func:`offline_html`): the only scripts still fetched
from one are optional and never block the page. MathJax (typesetting of the markdown equations)
loads ``async``; without it the equations stay readable as TeX source and a note says why.
require.js is kept (``defer``) only where the notebook stored widget state, for the static
widget snapshots, which need the network anyway; plotly.js is inlined and needs neither. The
MathJax 3 tag that plotly adds to every figure is dropped: snnkit's figures use no LaTeX, and
a second MathJax version would clash with the page's. The test suite executes the
notebooks through :func:`execute_notebook` too, so the tour and the tests run the same thing.
"""
from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .lessons import STRICT_ENV

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


@dataclass
class NotebookRun:
    name: str
    title: str
    seconds: float
    ok: bool
    error: str = ""
    html: str = ""


def notebook_paths(folder: Path = NOTEBOOKS) -> list[Path]:
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))


def notebook_title(path: Path) -> str:
    nb = json.loads(Path(path).read_text())
    for c in nb["cells"]:
        if c["cell_type"] == "markdown":
            for line in "".join(c["source"]).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return Path(path).stem


def execute_notebook(path: Path, out_path: Path, parameters: dict | None = None,
                     progress: bool = False, timeout: float | None = None, strict_claims: bool = False) -> float:
    """Run one notebook with papermill (cwd = its folder) and return the wall time in seconds.

    papermill runs in a child process: a kernel that stops answering then ends in a clear
    TimeoutError after ``timeout`` seconds instead of hanging the caller, and every notebook
    starts from a fresh client, as it does under ``papermill`` on the command line. ``strict_claims``:
    a lesson claim that does not hold fails the run (:mod:`snnkit.lessons`; the tour and the tests)."""
    import os
    import subprocess
    import sys
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "papermill", str(path), str(out_path), "--cwd", str(Path(path).parent),
           "-k", "python3", "-y", json.dumps(parameters or {})]
    if not progress:
        cmd.append("--no-progress-bar")
    if timeout:
        cmd += ["--execution-timeout", str(int(timeout))]
    t0 = time.perf_counter()
    try:
        env = dict(os.environ, **({STRICT_ENV: "1"} if strict_claims else {}))
        r = subprocess.run(cmd, capture_output=not progress, text=True, timeout=timeout and timeout + 60, env=env)
    except subprocess.TimeoutExpired as e:
        raise TimeoutError(f"{Path(path).name} did not finish within {timeout:.0f} s") from e
    if r.returncode != 0:
        err = (r.stderr or "")[-4000:]
        raise RuntimeError(f"{Path(path).name} failed (papermill exit {r.returncode}); the executed "
                           f"notebook with the error is {out_path}\n{err}")
    return time.perf_counter() - t0


_SCRIPT_SRC = re.compile(r"""<script\b[^>]*\bsrc=["']?([^"' >]+)[^>]*>\s*</script>""", re.I)
_MATHJAX_NOTE = ('<div class="snnkit-mathjax-note">Equations are shown as TeX source: MathJax, which typesets '
                 'them, is loaded from a CDN and could not be reached (offline?). Everything else on this page, '
                 'the interactive figures included, works offline.</div>')
_MATHJAX_CSS = ("<style>.snnkit-mathjax-note{display:none;margin:1em;padding:.5em 1em;background:#fff8e0;"
                "border:1px solid #e0c060;font-family:system-ui,sans-serif}"
                "html.snnkit-no-mathjax .snnkit-mathjax-note{display:block}</style>")


def _is_remote(src: str) -> bool:
    return bool(re.match(r"(https?:)?//", src, re.I))


def offline_html(page: str, widgets: bool = False) -> str:
    """Make an exported page independent of CDNs (see the module docstring): MathJax ``async`` with
    a visible note when it cannot load, require.js ``defer`` if ``widgets`` else removed, the
    per-figure MathJax tags of plotly removed."""
    head_end = page.lower().find("</head>")
    head_end = len(page) if head_end < 0 else head_end
    state = {"mathjax": False}

    def fix(m):
        tag, src = m.group(0), m.group(1)
        if not _is_remote(src):
            return tag
        low = src.lower()
        if "mathjax" in low:
            if m.start() >= head_end or state["mathjax"]:
                return ""                          # plotly's per-figure copy (MathJax 3): not needed
            state["mathjax"] = True
            return (f'<script async src="{src}" '
                    """onerror="document.documentElement.classList.add('snnkit-no-mathjax')"></script>""")
        if re.search(r"require(\.min)?\.js", low):
            return f'<script defer src="{src}"></script>' if widgets else ""
        return tag                                 # anything else is left for the test to flag
    page = _SCRIPT_SRC.sub(fix, page)
    if state["mathjax"]:
        page = re.sub(r"</head>", lambda m: _MATHJAX_CSS + m.group(0), page, count=1, flags=re.I)
        page = re.sub(r"<body\b[^>]*>", lambda m: m.group(0) + _MATHJAX_NOTE, page, count=1, flags=re.I)
    return page


def export_html(ipynb: Path, html_path: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter
    nb = nbformat.read(str(ipynb), as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    body = offline_html(body, widgets="widgets" in nb.metadata)
    Path(html_path).write_text(body, encoding="utf-8")
    return Path(html_path)


TOUR_TIMEOUT_S = 1200    # per notebook: the CPU defaults take 15-100 s; a stuck or dead kernel must not hang


def run_tour(out_dir: Path = ROOT / "build" / "tour", folder: Path = NOTEBOOKS,
             only: list[str] | None = None, timeout: float | None = TOUR_TIMEOUT_S) -> list[NotebookRun]:
    """Execute the notebooks, export them and write the index. ``timeout`` (seconds, per cell and,
    with a minute's grace, per notebook): a notebook that exceeds it is marked failed with the
    reason and the tour goes on; None waits forever."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for p in notebook_paths(folder):
        if only and not any(o in p.name for o in only):
            continue
        title = notebook_title(p)
        print(f"[tour] {p.name}: running ...", flush=True)
        executed = out_dir / p.name
        try:
            sec = execute_notebook(p, executed, timeout=timeout, strict_claims=True)
            ok, err = True, ""
        except Exception as e:          # keep going: the index shows which notebook failed and why
            sec, ok, err = float("nan"), False, f"{type(e).__name__}: {e}"
        page = ""
        if executed.exists():
            page = export_html(executed, out_dir / (p.stem + ".html")).name
        runs.append(NotebookRun(p.name, title, sec, ok, err, page))
        print(f"[tour] {p.name}: {'ok' if ok else 'FAILED'} ({sec:.1f} s)", flush=True)
    write_index(runs, out_dir / "index.html")
    return runs


def write_index(runs: list[NotebookRun], path: Path) -> Path:
    from . import backend
    rows = []
    for r in runs:
        link = f'<a href="{html.escape(r.html)}">{html.escape(r.title)}</a>' if r.html else html.escape(r.title)
        status = "ok" if r.ok else f'<span class="fail">failed</span><pre>{html.escape(r.error[:2000])}</pre>'
        rows.append(f"<tr><td>{html.escape(r.name)}</td><td>{link}</td><td>{r.seconds:.1f} s</td>"
                    f"<td>{status}</td></tr>")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>snnkit tour</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;line-height:1.5}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.4em;text-align:left}}
.fail{{color:#b00;font-weight:bold}}pre{{white-space:pre-wrap;font-size:.8em}}</style></head>
<body><h1>snnkit — the tour</h1>
<p>Every notebook of the teaching sequence, executed headless on its CPU defaults
(backend: {html.escape(backend.name())}; {time.strftime('%Y-%m-%d %H:%M')}).
Each page is standalone HTML; the plotly figures are interactive offline.</p>
<table><tr><th>file</th><th>notebook</th><th>run time</th><th>status</th></tr>
{''.join(rows)}
</table></body></html>
"""
    Path(path).write_text(page, encoding="utf-8")
    return Path(path)
