"""ipywidgets panels of the notebooks.

Each panel is built from a plain callback ``f(**values) -> plotly Figure`` (or text). The notebook
calls the same callback directly, so everything a panel shows is also produced headless (papermill
captures widget output only in widget state). Method-specific panels live in
``snnkit.widgets.<method>``; :func:`interactive_figure` wires a callback to sliders.
"""
from __future__ import annotations


def replace_figure(widget, new) -> None:
    """Show figure ``new`` in the FigureWidget ``widget`` (traces and layout), in one update."""
    with widget.batch_update():
        widget.data = ()
        widget.add_traces(list(new.data))
        widget.layout = new.layout


def interactive_figure(callback, **controls):
    """Controls (ipywidgets) that re-run ``callback(**values)`` and redraw its plotly figure.

    The figure is a ``plotly.graph_objects.FigureWidget`` whose traces and layout are replaced on
    each change, rather than a figure shown inside ``ipywidgets.interactive``: showing plotly HTML
    inside an Output widget blocks the kernel when a notebook runs headless (papermill), whereas
    a FigureWidget is plain widget state there. Returns a ``VBox``; display it in a notebook."""
    import ipywidgets as widgets
    import plotly.graph_objects as go

    def values():
        return {k: c.value for k, c in controls.items()}

    fig = go.FigureWidget(callback(**values()))

    def redraw(_change=None):
        replace_figure(fig, callback(**values()))

    for c in controls.values():
        c.observe(redraw, names="value")
    row = widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
    box = widgets.VBox([row, fig])
    box.redraw = redraw                  # so tests can drive the panel without a frontend
    box.figure = fig
    return box


__all__ = ["interactive_figure", "replace_figure"]
