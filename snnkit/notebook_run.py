"""Running notebooks: the one executor and the one HTML exporter of the project.

Every notebook the project runs goes through :func:`execute_notebook` — the tour and the tests
(:mod:`snnkit.tour`), ``tools/store_notebook.py``, ``snnkit reproduce`` (:mod:`snnkit.reproduce`) and
so ``snnkit sweep`` — and every executed notebook that becomes a page goes through
:func:`export_page` / :func:`export_html`.

The executor's contract::

    execute_notebook(path, out_path, parameters, executor="auto", timeout=None,
                     strict_claims=None, panels=None, progress=False) -> wall time in seconds

- the notebook runs in a child process with its own folder as the working directory, so every
  notebook starts from a fresh interpreter and a stuck one cannot hang the caller;
- ``parameters`` ({name: JSON value}) go into a cell tagged ``injected-parameters`` right after
  the cell tagged ``parameters`` (at the top where there is none; no cell when there are none);
- ``executor``: "papermill" (a Jupyter kernel, as ``papermill`` on the command line), "plain"
  (the fallback for a machine without Jupyter, e.g. a bare GPU machine: the code cells run in
  order in one namespace of a plain Python process, IPython magics skipped, printed output,
  ``display(...)`` and a last bare expression stored in the cells) or "auto" (papermill where it
  is installed, else plain; :func:`resolve_executor` says which);
- ``timeout`` (s): papermill stops a cell that runs longer; either executor's process is stopped
  ``timeout + 60`` s after the start, and that is a :class:`TimeoutError`;
- the child's environment: ``SNNKIT_STRICT_CLAIMS`` is "1" for ``strict_claims=True`` (a lesson
  claim that does not hold fails the run: the tour, the tests), "0" for False (claims only print:
  reproductions, judged by their paper target), inherited for None; ``SNNKIT_PANELS`` is
  ``panels`` ("static": every panel also carries its kernel-free view; "sweep": and runs every
  value of its controls) or unset (live panels only);
- a notebook that raises is a :class:`NotebookFailed` naming the first error in the executed
  notebook (``reason``), which is written to ``out_path`` with that error in its cell.

The exporter turns an executed notebook into a light page (:func:`prepare_for_page`): plotly
figures redrawn from their JSON by the page's one plotly.js, widget state dropped (a panel shows
its precomputed static view), stderr left out, solution cells collapsed. ``assets="beside"`` (the
tour) references plotly.js and a local MathJax next to the page (:func:`write_assets`), so a
folder of pages works offline; ``assets="embedded"`` (a reproduction's result folder) puts plotly.js
inside the page, one file that shows its figures anywhere (equations are typeset by nbconvert's
default MathJax, fetched when online).
"""
from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

from .lessons import STRICT_ENV
from .widgets import PANELS_ENV

ROOT = Path(__file__).resolve().parent.parent
EXECUTORS = ("auto", "papermill", "plain")


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here (without importing it)."""
    import importlib.util
    return importlib.util.find_spec(module) is not None


def resolve_executor(executor: str = "auto") -> str:
    """"papermill" or "plain": the executor :func:`execute_notebook` uses for ``executor``."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be 'auto', 'papermill' or 'plain', got {executor!r}")
    if executor == "auto":
        return "papermill" if installed("papermill") else "plain"
    return executor


class NotebookFailed(RuntimeError):
    """A notebook raised, or its executor failed. ``reason``: the first error of the executed
    notebook ("RuntimeError: diverged"); ``executed``: the executed notebook holding it, if written."""

    def __init__(self, msg, reason: str = "", executed: Path | None = None):
        super().__init__(msg)
        self.reason = reason or msg
        self.executed = executed


# papermill's command line, minus ~3 s per notebook: nbformat validates with jsonschema, whose
# optional RFC 3987 format plugin (``rfc3987_syntax``) builds a parser grammar at import time. No
# notebook format checks IRIs, so blocking that one optional import changes no validation result
# (jsonschema treats it as absent). The kernel side does the same in viz.setup_notebook.
_PAPERMILL = ("import sys; sys.modules.setdefault('rfc3987_syntax', None); "
              "from papermill.cli import papermill; papermill(prog_name='papermill')")
# the plain executor's child: argv = notebook, executed notebook, parameters (JSON), progress (0/1)
_PLAIN = "import sys; from snnkit.notebook_run import _plain_child; sys.exit(_plain_child(sys.argv[1:]))"


def execute_notebook(path: Path, out_path: Path, parameters: dict | None = None,
                     progress: bool = False, timeout: float | None = None, strict_claims: bool | None = None,
                     panels: str | None = None, executor: str = "auto") -> float:
    """Run one notebook into ``out_path`` and return the wall time in seconds (the contract is in
    the module docstring). ``progress``: the child's output goes to the terminal (papermill's bar
    per cell, or the plain executor's cell counter) instead of being kept for the error message."""
    path, out_path = Path(path), Path(out_path)
    used = resolve_executor(executor)
    try:
        params_json = json.dumps(parameters or {})
    except TypeError as e:
        raise ValueError(f"parameters of {path.name} must be JSON values (numbers, strings, booleans, None, "
                         f"lists, dicts): {e}") from None
    out_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if strict_claims is not None:
        env[STRICT_ENV] = "1" if strict_claims else "0"
    env.pop(PANELS_ENV, None)
    if panels:
        env[PANELS_ENV] = panels
    if used == "papermill":
        cmd = [sys.executable, "-c", _PAPERMILL, str(path), str(out_path), "--cwd", str(path.parent),
               "-k", "python3", "-y", params_json]
        if not progress:
            cmd.append("--no-progress-bar")
        if timeout:
            cmd += ["--execution-timeout", str(int(timeout))]
        cwd = None
    else:
        # the child runs in the notebook's folder: this snnkit first on its path (an inherited
        # relative PYTHONPATH=. would point elsewhere there)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        cmd = [sys.executable, "-c", _PLAIN, str(path.resolve()), str(out_path.resolve()), params_json,
               "1" if progress else "0"]
        cwd = str(path.parent)
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=not progress, text=True, timeout=timeout and timeout + 60,
                           env=env, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise TimeoutError(f"{path.name} did not finish within {timeout:.0f} s") from e
    if r.returncode != 0:
        err = (r.stderr or "")[-4000:]
        reason = first_error(out_path) or next((ln for ln in reversed(err.splitlines()) if ln.strip()), "")
        raise NotebookFailed(f"{path.name} failed ({used} exit {r.returncode}): {reason}; the executed "
                             f"notebook with the error is {out_path}\n{err}", reason,
                             out_path if out_path.exists() else None)
    return time.perf_counter() - t0


def first_error(executed: Path) -> str:
    """"Type: message" of the first error output of an executed notebook ("" if none or unreadable)."""
    try:
        nb = json.loads(Path(executed).read_text())
    except (OSError, ValueError):
        return ""
    for c in nb.get("cells", []):
        for o in c.get("outputs", []) if c.get("cell_type") == "code" else []:
            if o.get("output_type") == "error":
                return f"{o.get('ename', '')}: {o.get('evalue', '')}"
    return ""


# ------------------------------------------------------------------ the plain executor (child side)
def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _injected_cell(params: dict) -> dict:
    lines = ["# Parameters"] + [f"{k} = {v!r}" for k, v in params.items()]
    return {"cell_type": "code", "execution_count": None, "id": "injected-parameters",
            "metadata": {"tags": ["injected-parameters"]}, "outputs": [], "source": "\n".join(lines) + "\n"}


def _strip_magics(source: str) -> str:
    """IPython magics and shell lines have no meaning outside IPython: replace them by ``pass``."""
    out = []
    for line in source.splitlines():
        s = line.lstrip()
        out.append(line[:len(line) - len(s)] + "pass  # " + s if s.startswith(("%", "!")) else line)
    return "\n".join(out)


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for st in self.streams:
            st.write(s)
        return len(s)

    def flush(self):
        for st in self.streams:
            st.flush()


def _mime_bundle(obj, raw=False) -> dict:
    """What Jupyter would store for ``display(obj)``: its MIME bundle, or at least its repr."""
    if raw and isinstance(obj, dict):
        return obj
    if hasattr(obj, "_repr_mimebundle_"):
        try:
            got = obj._repr_mimebundle_()
            bundle = got[0] if isinstance(got, tuple) else got
            if isinstance(bundle, dict) and bundle:
                return bundle
        except Exception:
            pass
    bundle = {"text/plain": repr(obj)}
    if hasattr(obj, "_repr_html_"):
        try:
            bundle["text/html"] = obj._repr_html_()
        except Exception:
            pass
    return bundle


@contextlib.contextmanager
def _capture_display(outputs: list):
    """Route ``display(...)`` (plotly's ``fig.show()`` calls it) into ``outputs`` as display_data,
    as a Jupyter kernel would, instead of printing whole figures as text."""
    def display(*objs, raw=False, **kw):
        for o in objs:
            outputs.append({"output_type": "display_data", "metadata": {}, "data": _mime_bundle(o, raw)})
    import importlib
    patched = []
    for name in ("IPython.display", "IPython.core.display_functions", "IPython.core.display"):
        try:
            mod = importlib.import_module(name)          # display_html & co. call the module's display
        except ImportError:
            continue
        if hasattr(mod, "display"):
            patched.append((mod, mod.display))
            mod.display = display
    try:
        yield display
    finally:
        for mod, old in patched:
            mod.display = old


class _CellFailed(Exception):
    def __init__(self, msg, nb):
        super().__init__(msg)
        self.nb = nb


def _run_cells(nb: dict, params: dict, progress: bool) -> dict:
    """The plain executor: the code cells of ``nb`` (a notebook as JSON) in one namespace, in
    order, in this process and its working directory; returns the executed copy."""
    nb = json.loads(json.dumps(nb))
    if params:
        tagged = [i for i, c in enumerate(nb["cells"])
                  if c["cell_type"] == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
        nb["cells"].insert(tagged[0] + 1 if tagged else 0, _injected_cell(params))
    ns = {"__name__": "__main__"}
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for k, cell in enumerate(code_cells):
        if progress:
            print(f"[notebook] cell {k + 1}/{len(code_cells)}", file=sys.stderr, flush=True)
        buf = io.StringIO()
        tree = ast.parse(_strip_magics(_src(cell)))
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        shown = []
        try:
            with contextlib.redirect_stdout(_Tee(buf, sys.stderr) if progress else buf), \
                    _capture_display(shown) as display:
                ns["display"] = display
                exec(compile(tree, f"<cell {k + 1}>", "exec"), ns)
                value = eval(compile(ast.Expression(last.value), f"<cell {k + 1}>", "eval"), ns) if last else None
        except Exception as e:
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": buf.getvalue()}] + shown + [
                {"output_type": "error", "ename": type(e).__name__, "evalue": str(e),
                 "traceback": traceback.format_exc().splitlines()}]
            raise _CellFailed(f"cell {k + 1} raised {type(e).__name__}: {e}", nb) from e
        cell["outputs"] = ([{"output_type": "stream", "name": "stdout", "text": buf.getvalue()}]
                           if buf.getvalue() else []) + shown
        if value is not None:
            cell["outputs"].append({"output_type": "execute_result", "execution_count": k + 1,
                                    "metadata": {}, "data": _mime_bundle(value)})
        cell["execution_count"] = k + 1
    return nb


def _plain_child(argv) -> int:
    path, out, params, progress = argv
    try:
        nb = _run_cells(json.loads(Path(path).read_text()), json.loads(params), progress == "1")
    except _CellFailed as e:
        Path(out).write_text(json.dumps(e.nb, indent=1))
        traceback.print_exc()
        print(f"[notebook] {Path(path).name}: {e}", file=sys.stderr)
        return 1
    Path(out).write_text(json.dumps(nb, indent=1))
    return 0


# ------------------------------------------------------------------ the exporter
_REMOTE_REF = re.compile(r"""<(script|link|img|iframe|source)\b[^>]*?\b(?:src|href)\s*=\s*["']?((?:https?:)?//[^"' >]+)""", re.I)


def remote_references(page: str) -> list[str]:
    """Every resource a page would fetch from the network (scripts, styles, images, frames)."""
    return [m.group(2) for m in _REMOTE_REF.finditer(page)]


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
{%- block html_head_js -%}@@PLOTLY_JS@@{%- endblock html_head_js -%}
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
""".replace("@@CSS@@", _CSS)
# where an embedded page gets plotly.js: put in after rendering (4.6 MB of JavaScript is no template text)
_INLINE_PLOTLY = "<!-- snnkit: plotly.js -->"
_TEMPLATES = {
    "beside": _TEMPLATE.replace("@@PLOTLY_JS@@", f'<script src="{PLOTLY_JS}" charset="utf-8"></script>')
                       .replace("@@MATHJAX@@", _MATHJAX),
    "embedded": _TEMPLATE.replace("@@PLOTLY_JS@@", _INLINE_PLOTLY).replace("@@MATHJAX@@", "{{ super() }}"),
}

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


def export_page(ipynb: Path, assets: str = "beside") -> tuple[str, dict]:
    """(page, report of :func:`prepare_for_page`) of an executed notebook. ``assets``: "beside"
    (plotly.js and MathJax referenced next to the page: :func:`write_assets`) or "embedded"
    (plotly.js inside the page)."""
    if assets not in _TEMPLATES:
        raise ValueError(f"assets must be 'beside' or 'embedded', got {assets!r}")
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    nb = nbformat.read(str(ipynb), as_version=4)
    report = prepare_for_page(nb)
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"snnkit_page.html.j2": _TEMPLATES[assets]})],
                            template_file="snnkit_page.html.j2")
    body, _ = exporter.from_notebook_node(nb)
    if assets == "embedded":
        from plotly.offline import get_plotlyjs
        body = body.replace(_INLINE_PLOTLY, f'<script type="text/javascript">{get_plotlyjs()}</script>', 1)
    return body, report


def export_html(ipynb: Path, html_path: Path, assets: str = "beside") -> Path:
    """The executed notebook as a light standalone page (see :func:`export_page`), written to ``html_path``."""
    page, _ = export_page(ipynb, assets)
    Path(html_path).write_text(page, encoding="utf-8")
    return Path(html_path)
