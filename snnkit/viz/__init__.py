"""Plotly figure builders for the notebooks. Every function returns a ``plotly.graph_objects.Figure``
(plotly is imported lazily, so the methods import without it). Method-specific figures live in
``snnkit.viz.<method>``."""
from .core import setup_notebook, raster, membrane_trace, training_curves, bar

__all__ = ["setup_notebook", "raster", "membrane_trace", "training_curves", "bar"]
