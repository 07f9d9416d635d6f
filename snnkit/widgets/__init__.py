"""Panels of the notebooks: live ipywidgets in JupyterLab, precomputed and kernel-free in the tour.

Each panel is built from a plain callback ``f(**values)`` that returns a plotly figure, a text, or a
tuple of them. The notebook calls the same callback directly, so everything a panel shows is also
produced headless. :func:`interactive_figure` wires the callback to controls (sliders, dropdowns).

Two views of one panel
----------------------
The object returned by :func:`interactive_figure` is an ipywidgets ``VBox`` whose display bundle
carries the live widget view (JupyterLab draws it: the figure is redrawn in place by the kernel)
and, when the notebook runs headless for the tour (``SNNKIT_PANELS`` set by
:func:`snnkit.tour.execute_notebook`), a ``text/html`` fallback: the same controls as HTML inputs
(``<input type=range>``, ``<select>``) over one plotly figure per item, with every frame
precomputed from the callback over each control's grid. The tour's exporter drops the widget view
and the widget state, so the static page shows the fallback and needs no kernel. In JupyterLab
(``SNNKIT_PANELS`` unset) the fallback is not computed at all and costs nothing.

The static grid varies one control at a time with the others at their defaults (a product of all
grids would not fit in a light page); moving one control in the page puts the others back to their
defaults so that what is drawn is always what the controls say. Each control keeps at most a few
values (its ends and its default included), chosen so that a panel stays under
``PANEL_BYTES``. With ``SNNKIT_PANELS=sweep`` (the tests' tour) every value of each control's
full range at its step also goes through the callback once: a value that raises fails the notebook
under strict mode (:func:`snnkit.lessons.strict`), and the sweep is recorded in the output's
metadata (``snnkit/panel``) where ``tests/test_notebooks.py`` checks it.

Figures stay drawn: a panel owns one figure per item and redraws it in place (FigureWidget live,
``Plotly.react`` in the page), so moving a slider never creates a new WebGL context.
"""
from __future__ import annotations

import html as _html
import json
import math
import os
import time
import uuid

PANELS_ENV = "SNNKIT_PANELS"          # "" (live only), "static" (tour pages), "sweep" (+ every value in range)
PANEL_BYTES = 900_000                 # precomputed frames of one panel in a static page, at most (about)
MAX_VALUES = 15                       # values of one control kept in a static page, at most
PANEL_SECONDS = 6.0                   # time to precompute one panel's page frames, about (the tour's budget)


def replace_figure(widget, new) -> None:
    """Show figure ``new`` in the FigureWidget ``widget`` (traces and layout), in one update.

    When the traces keep their number and types (a slider's usual case) they are restyled in place;
    deleting and re-adding every trace on each move left the frontend with an empty figure after a
    burst of quick moves (JupyterLab, 20 key presses on a 4-trace panel)."""
    with widget.batch_update():
        if len(widget.data) == len(new.data) and all(a.type == b.type for a, b in zip(widget.data, new.data)):
            for old, tr in zip(widget.data, new.data):
                props = tr.to_plotly_json()
                props.pop("type", None)
                stale = {k: None for k in old.to_plotly_json() if k not in props and k not in ("type", "uid")}
                old.update(dict(stale, **props), overwrite=True)
        else:
            widget.data = ()
            widget.add_traces(list(new.data))
        widget.layout = new.layout


# ---------------------------------------------------------------- controls and their grids
def control_grid(control) -> tuple[list, list[str]]:
    """Every value a control can take (its full range at its step) and how each is shown.

    Sliders: ``min, min + step, ..., max`` (FloatLogSlider: ``base ** exponent`` on the exponent
    grid); selections (Dropdown, ToggleButtons, SelectionSlider, ...): their options; Checkbox:
    False, True. The control's current value is always included."""
    cls = type(control).__name__
    if hasattr(control, "_options_values"):                       # Dropdown, RadioButtons, SelectionSlider ...
        return list(control._options_values), [str(x) for x in control._options_labels]
    if cls in ("Checkbox", "ToggleButton"):
        return [False, True], ["off", "on"]
    if cls == "FloatLogSlider":
        n = int(round((control.max - control.min) / control.step))
        exps = [control.min + i * control.step for i in range(n + 1)]
        vals = [float(control.base ** round(e, 12)) for e in exps]
        fmt = getattr(control, "readout_format", ".3g") or ".3g"
        return _with_value(vals, control.value, fmt)
    if cls in ("IntSlider", "BoundedIntText", "IntText") and hasattr(control, "max"):
        step = int(control.step or 1)
        return _with_value(list(range(int(control.min), int(control.max) + 1, step)), control.value, "d")
    if cls in ("FloatSlider", "BoundedFloatText") and hasattr(control, "max"):
        step = float(control.step or (control.max - control.min) / 100)
        n = int(math.floor((control.max - control.min) / step + 1e-9))
        vals = [round(control.min + i * step, 12) for i in range(n + 1)]
        if vals[-1] < control.max - 1e-12:
            vals.append(float(control.max))
        fmt = getattr(control, "readout_format", ".2f") or ".2f"
        return _with_value(vals, control.value, fmt)
    raise TypeError(f"interactive_figure: a {cls} control has no grid of values for the static page; "
                    "use a slider (Int/Float/FloatLog), a selection (Dropdown, ToggleButtons, ...) or a Checkbox")


def _with_value(vals, value, fmt):
    if not any(_same(v, value) for v in vals):
        vals = sorted(vals + [value])
    return vals, [format(v, fmt) for v in vals]


def _same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return a == b


def _index_of(vals, value):
    for i, v in enumerate(vals):
        if _same(v, value):
            return i
    raise ValueError(f"value {value!r} is not on the control's grid")


def _pick(n, k, keep):
    """At most ``k`` indices of ``range(n)`` spread evenly, ends and ``keep`` included."""
    if n <= k:
        return list(range(n))
    idx = sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})
    if keep not in idx:                       # the default takes the place of its nearest inner pick
        near = min(idx[1:-1] or idx, key=lambda i: abs(i - keep))
        idx = sorted(set(idx) - ({near} if near not in (0, n - 1) else set()) | {keep})
    return idx


# ---------------------------------------------------------------- what a callback returns
def _items(result) -> list:
    """A callback's result as a list of items: plotly figures and texts."""
    if isinstance(result, (tuple, list)):
        out = []
        for r in result:
            out.extend(_items(r))
        return out
    if result is None:
        return []
    if hasattr(result, "to_plotly_json") or isinstance(result, str):
        return [result]
    raise TypeError(f"a panel callback must return a plotly figure, a str, or a tuple of them; got {type(result).__name__}")


def _array(v):
    """A trace's data array as NumPy (plotly >= 6 stores arrays as base64 ``{dtype, bdata}``), else None."""
    import base64
    import numpy as np
    if isinstance(v, np.ndarray):
        return v
    if isinstance(v, dict) and "bdata" in v and "dtype" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        shape = v.get("shape")
        if shape:
            a = a.reshape([int(n) for n in str(shape).split(",")] if isinstance(shape, str) else shape)
        return a
    return None


def _b64(a):
    """A NumPy array in plotly.js's typed-array form (float32 / int32 at most: enough for a figure)."""
    import base64
    import numpy as np
    a = np.ascontiguousarray(a.astype(np.float32) if a.dtype.kind == "f" else
                             a.astype(np.int32) if a.dtype.itemsize > 4 or a.dtype.kind == "b" else a)
    out = {"dtype": a.dtype.str.lstrip("<|="), "bdata": base64.b64encode(a.tobytes()).decode("ascii")}
    if a.ndim > 1:
        out["shape"] = ",".join(str(n) for n in a.shape)
    return out


def _compact_trace(tr: dict) -> dict:
    """One trace as the static page stores it, the same picture in fewer bytes: float arrays as
    float32, an evenly spaced ``x`` as ``x0, dx``, large raw-sample histograms binned into bars."""
    import numpy as np
    x = _array(tr.get("x"))
    if tr.get("type") == "histogram" and x is not None and x.size > 2000 and tr.get("y") is None:
        x = np.asarray(x, dtype=float)
        x = x[np.isfinite(x)]
        xb = tr.get("xbins") or {}
        if xb.get("size") and xb.get("start") is not None and xb.get("end") is not None:
            edges = np.arange(xb["start"], xb["end"] + xb["size"], xb["size"])
        else:
            edges = np.histogram_bin_edges(x, bins=int(tr.get("nbinsx") or 60))
        counts, edges = np.histogram(x, bins=edges)
        norm = tr.get("histnorm") or ""
        if norm in ("probability", "percent"):
            counts = counts / max(len(x), 1) * (100 if norm == "percent" else 1)
        elif norm in ("density", "probability density"):
            counts = counts / np.diff(edges) / (max(len(x), 1) if norm == "probability density" else 1)
        keep = {k: tr[k] for k in ("name", "opacity", "marker", "legendgroup", "showlegend", "xaxis", "yaxis")
                if k in tr}
        tr = dict(type="bar", x=(edges[:-1] + edges[1:]) / 2, y=counts, width=float(np.diff(edges).mean()), **keep)
    out = {}
    for k, v in tr.items():
        a = _array(v) if k in ("x", "y", "z") else None
        if a is not None and a.dtype.kind in "fiub" and a.size > 16:
            if k == "x" and a.ndim == 1 and "x0" not in tr and a.dtype.kind == "f" and np.all(np.isfinite(a)):
                d = np.diff(a.astype(np.float64))
                if a.size > 2 and d[0] != 0 and np.allclose(d, d[0], rtol=1e-4, atol=0):
                    out["x0"], out["dx"] = float(a[0]), float(d.mean())
                    continue
            v = _b64(a)
        out[k] = v
    return out


def _item_json(item, template_out: dict) -> dict:
    if isinstance(item, str):
        return {"kind": "text", "text": item}
    d = item.to_plotly_json()
    layout = dict(d.get("layout", {}))
    tpl = layout.pop("template", None)
    if tpl is not None and "template" not in template_out:
        template_out["template"] = tpl
    return {"kind": "figure", "data": [_compact_trace(t) for t in d.get("data", [])], "layout": layout}


def _to_json(obj) -> str:
    from plotly.io.json import to_json_plotly
    return to_json_plotly(obj)


# ---------------------------------------------------------------- the static (kernel-free) view
def _strict():
    from ..lessons import strict
    return strict()


def static_panel(callback, controls: dict, mode: str = "static") -> tuple[str, dict]:
    """(HTML, record) of the kernel-free view of a panel: see the module docstring.

    ``mode="sweep"`` also runs every value of each control's full range through the callback.
    A value that raises is reported in the record (and shown in the page instead of its figure);
    under strict mode it raises a RuntimeError naming the control and the value."""
    t0 = time.perf_counter()
    name = getattr(callback, "__qualname__", getattr(callback, "__name__", "callback")).split("<locals>.")[-1]
    grids = {k: control_grid(c) for k, c in controls.items()}
    defaults = {k: c.value for k, c in controls.items()}
    record = {"callback": name, "controls": {}, "errors": []}

    def run(values, where):
        try:
            return _items(callback(**values))
        except Exception as e:        # noqa: BLE001 - reported with the value that raised
            msg = f"{name}({where}) raised {type(e).__name__}: {e}"
            if _strict():
                raise RuntimeError(f"panel {msg}: every value of a control's range must work") from e
            record["errors"].append(msg)
            return [f"✗ {msg}"]

    shared = {}
    t1 = time.perf_counter()
    default_items = [_item_json(i, shared) for i in run(defaults, "defaults")]
    t_call = max(time.perf_counter() - t1, 1e-3)
    size0 = max(len(_to_json(default_items)), 1000)
    budget_frames = max(2 * len(controls), int(min(PANEL_BYTES / size0, PANEL_SECONDS / t_call)))
    per_control = max(2, min(MAX_VALUES, budget_frames // max(len(controls), 1) + 1))

    frames, spec = {}, []
    for k, c in controls.items():
        vals, labels = grids[k]
        d = _index_of(vals, defaults[k])
        keep = _pick(len(vals), per_control, d)
        fr = []
        for i in keep:
            if i == d:
                fr.append(None)                    # the default frame, stored once
            else:
                fr.append([_item_json(it, shared) for it in run({**defaults, k: vals[i]}, f"{k}={vals[i]!r}")])
        frames[k] = fr
        kind = "select" if hasattr(c, "_options_values") or type(c).__name__ in ("Checkbox", "ToggleButton") else "range"
        spec.append({"name": k, "label": getattr(c, "description", "") or k, "kind": kind,
                     "labels": [labels[i] for i in keep], "default": keep.index(d)})
        swept = keep
        if mode == "sweep":
            t_sweep = time.perf_counter()
            for i in range(len(vals)):
                if i not in keep:
                    run({**defaults, k: vals[i]}, f"{k}={vals[i]!r}")
            swept = range(len(vals))
            record["sweep_seconds"] = record.get("sweep_seconds", 0.0) + time.perf_counter() - t_sweep
        record["controls"][k] = {"values": len(vals), "checked": len(list(swept)), "in_page": len(keep),
                                 "first": _plain(vals[0]), "last": _plain(vals[-1])}
    record["mode"] = mode
    record["seconds"] = round(time.perf_counter() - t0, 3)
    record["sweep_seconds"] = round(record.get("sweep_seconds", 0.0), 3)
    payload = {"controls": spec, "default": default_items, "frames": frames, "template": shared.get("template")}
    return _render_static(payload, len(default_items)), record


def _plain(v):
    return v if isinstance(v, (int, float, str, bool)) or v is None else repr(v)


_STATIC_CSS = """<style>
.snnkit-panel{border:1px solid #ddd;border-radius:4px;padding:.5em;margin:.3em 0}
.snnkit-panel-controls{display:flex;flex-wrap:wrap;gap:.3em 1.5em;font:13px system-ui,sans-serif}
.snnkit-panel-controls label{display:flex;align-items:center;gap:.4em;white-space:nowrap}
.snnkit-panel-controls input[type=range]{width:11em}
.snnkit-panel-controls output{min-width:3.5em;font-variant-numeric:tabular-nums}
.snnkit-panel-note{font:12px system-ui,sans-serif;color:#666;margin:.3em 0}
.snnkit-panel pre{white-space:pre-wrap;margin:.3em 0}
</style>"""

_STATIC_JS = r"""<script>(function(){
var id=%(id)s, root=document.getElementById(id);
var D=JSON.parse(document.getElementById(id+'-data').textContent);
function show(items){
  for(var i=0;i<%(n)d;i++){
    var it=items[i], plot=document.getElementById(id+'-p'+i), txt=document.getElementById(id+'-t'+i);
    if(it && it.kind==='figure'){
      var lay=Object.assign({}, it.layout); if(D.template){lay.template=D.template;}
      plot.style.display=''; txt.style.display='none';
      Plotly.react(plot, it.data, lay);
    } else { plot.style.display='none'; txt.style.display=''; txt.textContent=it ? it.text : ''; }
  }
}
var inputs=root.querySelectorAll('[data-control]');
function label(el){ var c=D.controls[+el.dataset.index], o=el.parentNode.querySelector('output');
  if(o){ o.textContent=c.labels[+el.value]; } }
function moved(ev){
  var el=ev.target, c=D.controls[+el.dataset.index];
  inputs.forEach(function(o){ if(o!==el){ o.value=D.controls[+o.dataset.index].default; label(o);} });
  label(el);
  var f=D.frames[c.name][+el.value];
  show(f===null ? D.default : f);
  root.dataset.shown=c.name+'='+c.labels[+el.value];
}
inputs.forEach(function(el){ el.addEventListener('input', moved); el.addEventListener('change', moved); });
if(window.Plotly){ show(D.default); } else { root.querySelector('.snnkit-panel-note').textContent='plotly.js is not loaded on this page: the figure cannot be drawn.'; }
})();</script>"""


def _render_static(payload, n_items) -> str:
    pid = "snnkit-panel-" + uuid.uuid4().hex[:12]
    rows = []
    for j, c in enumerate(payload["controls"]):
        lab = _html.escape(c["label"])
        if c["kind"] == "select":
            opts = "".join(f'<option value="{i}"{" selected" if i == c["default"] else ""}>{_html.escape(s)}</option>'
                           for i, s in enumerate(c["labels"]))
            rows.append(f'<label>{lab} <select data-control data-index="{j}">{opts}</select></label>')
        else:
            rows.append(f'<label>{lab} <input type="range" data-control data-index="{j}" min="0" '
                        f'max="{len(c["labels"]) - 1}" step="1" value="{c["default"]}" aria-label="{lab}">'
                        f'<output>{_html.escape(c["labels"][c["default"]])}</output></label>')
    many = len(payload["controls"]) > 1
    note = ("Static page: the figures below were precomputed for the values on each control"
            + ("; moving one control puts the others back to their defaults" if many else "")
            + ". Open the notebook in JupyterLab to set any value.")
    items = "".join(f'<div class="snnkit-panel-plot" id="{pid}-p{i}"></div><pre id="{pid}-t{i}" style="display:none"></pre>'
                    for i in range(n_items))
    data = _to_json(payload).replace("</", "<\\/")
    return (f'{_STATIC_CSS}<div class="snnkit-panel" id="{pid}"><div class="snnkit-panel-controls">{"".join(rows)}</div>'
            f'<div class="snnkit-panel-note">{_html.escape(note)}</div>{items}</div>'
            f'<script type="application/json" id="{pid}-data">{data}</script>'
            + _STATIC_JS % {"id": json.dumps(pid), "n": n_items})


# ---------------------------------------------------------------- the live view
def _panel_class():
    import ipywidgets as widgets

    class Panel(widgets.VBox):
        """A VBox (controls row, one output per item) that also carries its static view."""

        def _repr_mimebundle_(self, **kwargs):
            data = super()._repr_mimebundle_(**kwargs)
            mode = os.environ.get(PANELS_ENV, "").strip().lower()
            if not mode or data is None:
                return data
            page, record = static_panel(self._callback, self._controls, "sweep" if mode == "sweep" else "static")
            data = dict(data)
            data["text/html"] = page
            return data, {"snnkit/panel": record}

    return Panel


def interactive_figure(callback, **controls):
    """Controls (ipywidgets) that re-run ``callback(**values)`` and redraw what it returns.

    ``callback`` returns a plotly figure, a text (str), or a tuple of them. Each figure is shown in
    a ``plotly.graph_objects.FigureWidget`` whose traces and layout are replaced on each change,
    rather than a figure shown inside ``ipywidgets.interactive``: showing plotly HTML inside an
    Output widget blocks the kernel when a notebook runs headless (papermill) and creates a new
    WebGL context per move, whereas a FigureWidget is plain widget state, redrawn in place. If the
    callback raises for some value the error is shown in the panel. Long labels get their room
    (``description_width='initial'``). Returns a ``VBox`` (see the module docstring for its static
    view in the tour); ``box.redraw()``, ``box.figure`` (the first figure) and ``box.outputs``
    serve tests."""
    import ipywidgets as widgets
    import plotly.graph_objects as go
    if not controls:
        raise ValueError("interactive_figure needs at least one control, e.g. n=ipywidgets.IntSlider(3, 1, 10)")
    for k, c in controls.items():
        control_grid(c)                                            # a clear error now, not in the tour
        if hasattr(c, "style") and hasattr(c.style, "description_width"):
            c.style.description_width = "initial"

    def values():
        return {k: c.value for k, c in controls.items()}

    slots = []          # per item: [FigureWidget or None, Box holding it, HTML for a text]

    def slot(i):
        while len(slots) <= i:
            slots.append([None, widgets.Box(layout=widgets.Layout(display="none")),
                          widgets.HTML(layout=widgets.Layout(display="none"))])
        return slots[i]

    def show(items):
        for i, it in enumerate(items):
            s = slot(i)
            if isinstance(it, str):
                s[2].value = f"<pre>{_html.escape(it)}</pre>"
                s[2].layout.display, s[1].layout.display = None, "none"
            else:
                if s[0] is None:
                    s[0] = go.FigureWidget(it)
                    s[1].children = [s[0]]
                else:
                    replace_figure(s[0], it)
                s[1].layout.display, s[2].layout.display = None, "none"
        for s in slots[len(items):]:
            s[1].layout.display = s[2].layout.display = "none"

    def evaluate():
        try:
            return _items(callback(**values()))
        except Exception as e:                                    # noqa: BLE001 - shown to the student
            return [f"✗ {type(e).__name__}: {e} (with {values()})"]

    show(evaluate())
    row = widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap"))

    def children():
        return [row] + [w for _, fig_box, text in slots for w in (fig_box, text)]

    box = _panel_class()(children())
    box._callback, box._controls = callback, dict(controls)

    def redraw(_change=None):
        n = len(slots)
        show(evaluate())
        if len(slots) != n:
            box.children = children()
        if box.figure is None:
            box.figure = next((s[0] for s in slots if s[0] is not None), None)

    for c in controls.values():
        c.observe(redraw, names="value")
    box.redraw = redraw                  # so tests can drive the panel without a frontend
    box.figure = next((s[0] for s in slots if s[0] is not None), None)
    box.outputs = slots
    return box


__all__ = ["interactive_figure", "replace_figure", "static_panel", "control_grid", "PANELS_ENV"]
