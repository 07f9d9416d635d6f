"""The tour: execute every notebook headless on its CPU defaults and render an offline course site.

``snnkit tour`` (and ``make tour``) runs each ``notebooks/NN_*.ipynb`` with papermill into
``build/tour/``, exports each executed notebook as a page and writes ``build/tour/index.html``
with each notebook's learning goals, run time and status. The site works from the file system
with no network and no kernel:

- plotly.js and MathJax (2.7, from the ``jupyter-server-mathjax`` package) are written once next
  to the pages (:func:`write_assets`) and referenced relatively: no page fetches anything remote
  (:func:`remote_references` finds what would be);
- every panel of :func:`snnkit.widgets.interactive_figure` shows its precomputed static view (HTML
  controls over plotly frames): the exporter drops the widget views and the widget state, which
  need a kernel (:func:`prepare_for_page`);
- plotly figures are redrawn from their JSON by a few lines using the page's one plotly.js;
  stderr output (warnings) is left out of the pages and reported by the tour; solution cells
  (tag ``solution``) are collapsed in a ``<details>``.

The test suite executes the notebooks through :func:`execute_notebook` (and its session fixture
through :func:`run_tour` with ``sweep=True``), so the tour and the tests run the same thing.
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
    goals: str = ""


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


# papermill's command line, minus ~3 s per notebook: nbformat validates with jsonschema, whose
# optional RFC 3987 format plugin (``rfc3987_syntax``) builds a parser grammar at import time. No
# notebook format checks IRIs, so blocking that one optional import changes no validation result
# (jsonschema treats it as absent). The kernel side does the same in viz.setup_notebook.
_PAPERMILL = ("import sys; sys.modules.setdefault('rfc3987_syntax', None); "
              "from papermill.cli import papermill; papermill(prog_name='papermill')")


def execute_notebook(path: Path, out_path: Path, parameters: dict | None = None,
                     progress: bool = False, timeout: float | None = None, strict_claims: bool = False,
                     panels: str | None = None) -> float:
    """Run one notebook with papermill (cwd = its folder) and return the wall time in seconds.

    papermill runs in a child process: a kernel that stops answering then ends in a clear
    TimeoutError after ``timeout`` seconds instead of hanging the caller, and every notebook
    starts from a fresh client, as it does under ``papermill`` on the command line. ``strict_claims``:
    a lesson claim that does not hold fails the run (:mod:`snnkit.lessons`; the tour and the tests).
    ``panels``: "static" makes every panel also carry its kernel-free view, "sweep" also runs every
    value of its controls through the callback (:mod:`snnkit.widgets`); None leaves them live only."""
    import os
    import subprocess
    import sys
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-c", _PAPERMILL, str(path), str(out_path), "--cwd", str(Path(path).parent),
           "-k", "python3", "-y", json.dumps(parameters or {})]
    if not progress:
        cmd.append("--no-progress-bar")
    if timeout:
        cmd += ["--execution-timeout", str(int(timeout))]
    t0 = time.perf_counter()
    try:
        from .widgets import PANELS_ENV
        env = dict(os.environ, **({STRICT_ENV: "1"} if strict_claims else {}))
        env.pop(PANELS_ENV, None)
        if panels:
            env[PANELS_ENV] = panels
        r = subprocess.run(cmd, capture_output=not progress, text=True, timeout=timeout and timeout + 60, env=env)
    except subprocess.TimeoutExpired as e:
        raise TimeoutError(f"{Path(path).name} did not finish within {timeout:.0f} s") from e
    if r.returncode != 0:
        err = (r.stderr or "")[-4000:]
        raise RuntimeError(f"{Path(path).name} failed (papermill exit {r.returncode}); the executed "
                           f"notebook with the error is {out_path}\n{err}")
    return time.perf_counter() - t0


_REMOTE_REF = re.compile(r"""<(script|link|img|iframe|source)\b[^>]*?\b(?:src|href)\s*=\s*["']?((?:https?:)?//[^"' >]+)""", re.I)


def remote_references(page: str) -> list[str]:
    """Every resource a page would fetch from the network (scripts, styles, images, frames)."""
    return [m.group(2) for m in _REMOTE_REF.finditer(page)]


# ------------------------------------------------------------------ assets next to the pages
MATHJAX_DIR = "mathjax"
PLOTLY_JS = "plotly.min.js"


def mathjax_source() -> Path:
    """MathJax 2.7 as shipped by the ``jupyter-server-mathjax`` package (a dev dependency: the copy
    Jupyter's own server uses for offline math)."""
    try:
        import jupyter_server_mathjax
    except ImportError as e:
        raise RuntimeError("the tour typesets equations with the MathJax copy of jupyter-server-mathjax: "
                           "pip install 'snnkit[dev]' (or pip install jupyter-server-mathjax)") from e
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def write_assets(out_dir: Path) -> dict:
    """plotly.js and MathJax written once next to the pages (skipped when already there), so that
    every page references them relatively and works from the file system, offline."""
    import shutil
    from plotly.offline import get_plotlyjs
    out_dir = Path(out_dir)
    js = get_plotlyjs()
    target = out_dir / PLOTLY_JS
    if not target.exists() or target.stat().st_size != len(js.encode()):
        target.write_text(js, encoding="utf-8")
    src, dst = mathjax_source(), out_dir / MATHJAX_DIR
    stamp = dst / ".snnkit-source"
    if not stamp.exists() or stamp.read_text() != str(src):
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(src, dst)
        stamp.write_text(str(src))
    return {"plotly": target, "mathjax": dst}


# MathJax 2.7 (the version nbconvert's pages are written for), local, HTML-CSS output with the
# STIX-Web fonts the package ships (it has no TeX fonts: without this it would look for them);
# its blank test font points at about:blank, which a file:// page may not load: a local() name instead.
_MATHJAX = r"""<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  tex2jax: {inlineMath: [['$','$'], ['\\(','\\)']], displayMath: [['$$','$$'], ['\\[','\\]']],
            processEscapes: true, processEnvironments: true},
  TeX: {equationNumbers: {autoNumber: "AMS", useLabelIds: true}},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
               linebreaks: {automatic: true},
               styles: {"@font-face": {"font-family": "MathJax_Blank", src: "local('MathJax_Blank')"}}},
  displayAlign: "center", messageStyle: "none", showMathMenu: false,
  menuSettings: {assistiveMML: false}
});
MathJax.Hub.Queue(function () { document.documentElement.dataset.mathjax = "done"; });
</script>
<script src="%s/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"></script>
""" % MATHJAX_DIR

_CSS = """<style>
details.snnkit-solution{margin:.2em 0 .2em 0;border-left:3px solid #7aa7d6;padding-left:.5em}
details.snnkit-solution>summary{cursor:pointer;color:#245;font:600 13px system-ui,sans-serif;padding:.3em 0}
.jp-RenderedMarkdown details{border:1px solid #ddd;border-radius:4px;padding:.3em .8em;margin:.5em 0;background:#fafcff}
.jp-RenderedMarkdown details>summary{cursor:pointer;font-weight:600}
.snnkit-widget-note{font:12px system-ui,sans-serif;color:#666;border:1px dashed #ccc;padding:.4em .8em}
</style>"""

_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}<script src="@@PLOTLY_JS@@" charset="utf-8"></script>{%- endblock html_head_js -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}@@MATHJAX@@{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block extra_css %}@@CSS@@{% endblock extra_css %}
{% block input_group -%}
{%- if 'solution' in cell.metadata.get('tags', []) -%}
<details class="snnkit-solution"><summary>Solution (click to show the code)</summary>
{{ super() }}
</details>
{%- else -%}
{{ super() }}
{%- endif -%}
{% endblock input_group %}
""".replace("@@PLOTLY_JS@@", PLOTLY_JS).replace("@@MATHJAX@@", _MATHJAX).replace("@@CSS@@", _CSS)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
_WIDGET_NOTE = ('<div class="snnkit-widget-note">An interactive control is here when the notebook runs in '
                'JupyterLab (it needs a kernel); its static page has no precomputed view of it.</div>')


def _plotly_bundle_html(html_text: str) -> bool:
    """The output of plotly's notebook renderer that inlines the whole plotly.js (4.6 MB)."""
    return len(html_text) > 500_000 and ("PlotlyConfig" in html_text[:3000] or "plotly.js v" in html_text[:20000])


def prepare_for_page(nb) -> dict:
    """Make an executed notebook's outputs fit a light, kernel-free page (in place); return what was done.

    - a plotly figure is redrawn from its JSON (``application/vnd.plotly.v1+json``) by a small
      ``text/html`` that uses the page's one plotly.js; the output that inlined plotly.js goes;
    - a widget's view is dropped: a panel of :func:`snnkit.widgets.interactive_figure` then shows
      its precomputed ``text/html``; any other widget is replaced by a note; the widget state goes;
    - stderr streams (warnings) are dropped from the page (and counted: the tour prints them)."""
    import plotly.io as pio
    report = {"stderr": [], "widgets_without_static_view": [], "panels": [], "figures": 0}
    nb.metadata.pop("widgets", None)
    for ci, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        keep = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                report["stderr"].append(ci)
                continue
            data = out.get("data")
            if not data:
                keep.append(out)
                continue
            if "text/html" in data and _plotly_bundle_html(data["text/html"]):
                continue
            if PLOTLY_MIME in data:
                data["text/html"] = pio.to_html(data.pop(PLOTLY_MIME), include_plotlyjs=False, include_mathjax=False,
                                                full_html=False, validate=False)
                data.pop("text/plain", None)
                report["figures"] += 1
            if WIDGET_VIEW in data:
                data.pop(WIDGET_VIEW)
                data.pop("text/plain", None)
                if "text/html" in data:
                    report["panels"].append(ci)
                else:
                    data["text/html"] = _WIDGET_NOTE
                    report["widgets_without_static_view"].append(ci)
            keep.append(out)
        cell.outputs = keep
    return report


def export_html(ipynb: Path, html_path: Path) -> Path:
    """The executed notebook as a light standalone page (see :func:`prepare_for_page`): plotly.js
    and MathJax referenced next to it (:func:`write_assets`), solution cells collapsed."""
    page, _ = export_page(ipynb)
    Path(html_path).write_text(page, encoding="utf-8")
    return Path(html_path)


def export_page(ipynb: Path) -> tuple[str, dict]:
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    nb = nbformat.read(str(ipynb), as_version=4)
    report = prepare_for_page(nb)
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"snnkit_tour.html.j2": _TEMPLATE})],
                            template_file="snnkit_tour.html.j2")
    body, _ = exporter.from_notebook_node(nb)
    return body, report


def notebook_goals(path: Path) -> str:
    """The learning goals (the first cell without its title) as HTML, for the index."""
    import nbformat
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    nb = nbformat.read(str(path), as_version=4)
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first is None:
        return ""
    lines = first.source.splitlines()
    if lines and lines[0].startswith("#"):
        lines = lines[1:]
    return markdown2html_mistune("\n".join(lines).strip())


TOUR_TIMEOUT_S = 1200    # per notebook: the CPU defaults take 15-100 s; a stuck or dead kernel must not hang


def run_tour(out_dir: Path = ROOT / "build" / "tour", folder: Path = NOTEBOOKS,
             only: list[str] | None = None, timeout: float | None = TOUR_TIMEOUT_S,
             sweep: bool = False) -> list[NotebookRun]:
    """Execute the notebooks, export them and write the index. ``timeout`` (seconds, per cell and,
    with a minute's grace, per notebook): a notebook that exceeds it is marked failed with the
    reason and the tour goes on; None waits forever. ``sweep``: every panel also runs every value
    of its controls' ranges (``SNNKIT_PANELS=sweep``; the tests' tour), not only the page's frames."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_assets(out_dir)
    runs = []
    t_all = time.perf_counter()
    for p in notebook_paths(folder):
        if only and not any(o in p.name for o in only):
            continue
        title = notebook_title(p)
        print(f"[tour] {p.name}: running ...", flush=True)
        executed = out_dir / p.name
        try:
            sec = execute_notebook(p, executed, timeout=timeout, strict_claims=True,
                                   panels="sweep" if sweep else "static")
            ok, err = True, ""
        except Exception as e:          # keep going: the index shows which notebook failed and why
            sec, ok, err = float("nan"), False, f"{type(e).__name__}: {e}"
        page, note = "", ""
        if executed.exists():
            html_path = out_dir / (p.stem + ".html")
            body, rep = export_page(executed)
            html_path.write_text(body, encoding="utf-8")
            page = html_path.name
            mb = len(body.encode()) / 1e6
            note = f", page {mb:.2f} MB"
            if rep["stderr"]:
                note += f", stderr output of cells {sorted(set(rep['stderr']))} left out of the page"
            if rep["widgets_without_static_view"]:
                note += f", widgets without a static view in cells {rep['widgets_without_static_view']}"
        runs.append(NotebookRun(p.name, title, sec, ok, err, page, notebook_goals(p)))
        print(f"[tour] {p.name}: {'ok' if ok else 'FAILED'} ({sec:.1f} s{note})", flush=True)
    index = write_index(runs, out_dir / "index.html")
    total = time.perf_counter() - t_all
    print(f"[tour] run times: " + ", ".join(f"{r.name.split('_')[0]} {r.seconds:.0f} s" for r in runs)
          + f"; total {total:.0f} s", flush=True)
    print(f"[tour] the site: {index.resolve()} (open it in a browser; it works offline)", flush=True)
    return runs


def write_index(runs: list[NotebookRun], path: Path) -> Path:
    from . import backend
    rows = []
    for r in runs:
        link = f'<a href="{html.escape(r.html)}">{html.escape(r.title)}</a>' if r.html else html.escape(r.title)
        status = "ok" if r.ok else f'<span class="fail">failed</span><pre>{html.escape(r.error[:2000])}</pre>'
        goals = f'<div class="goals">{r.goals}</div>' if r.goals else ""
        rows.append(f'<tr><td class="nb">{html.escape(r.name)}</td><td>{link}{goals}</td>'
                    f'<td class="time">{r.seconds:.1f} s</td><td>{status}</td></tr>')
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>snnkit tour</title>
<style>body{{font-family:system-ui,sans-serif;max-width:62em;margin:2em auto;line-height:1.5;padding:0 1em}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.5em;text-align:left;vertical-align:top}}
td.nb,td.time{{white-space:nowrap;font-size:.9em;color:#444}}.goals{{font-size:.9em;color:#333}}.goals p{{margin:.3em 0}}
.goals ul{{margin:.2em 0;padding-left:1.3em}}
.fail{{color:#b00;font-weight:bold}}pre{{white-space:pre-wrap;font-size:.8em}}</style></head>
<body><h1>snnkit — the tour</h1>
<p>Every notebook of the teaching sequence, executed headless on its CPU defaults
(backend: {html.escape(backend.name())}; {time.strftime('%Y-%m-%d %H:%M')}).
The pages work offline and need no kernel: equations are typeset by a local MathJax, figures are
interactive, and each panel's sliders move through precomputed frames. For the live widgets, open
the notebooks in JupyterLab (<code>make lab</code>).</p>
<table><tr><th>file</th><th>notebook and what you will learn</th><th>run time</th><th>status</th></tr>
{''.join(rows)}
</table></body></html>
"""
    Path(path).write_text(page, encoding="utf-8")
    return Path(path)
