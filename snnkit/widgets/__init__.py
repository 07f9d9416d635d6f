"""ipywidgets panels of the notebooks.

Each panel is built from a plain callback ``f(**values) -> plotly Figure`` (or text). The notebook
calls the same callback directly, so everything a panel shows is also produced headless (papermill
captures widget output only in widget state). Method-specific panels live in
``snnkit.widgets.<method>``; :func:`interactive_figure` wires a callback to sliders.
"""
from __future__ import annotations


def interactive_figure(callback, **controls):
    """Sliders (or any ipywidgets controls) that re-run ``callback(**values)`` and show its figure.

    Returns the ``ipywidgets.interactive`` object; display it in a notebook."""
    import ipywidgets as widgets
    from IPython.display import display

    def _show(**values):
        out = callback(**values)
        if hasattr(out, "show"):
            out.show()
        elif out is not None:
            display(out)

    return widgets.interactive(_show, **controls)


__all__ = ["interactive_figure"]
