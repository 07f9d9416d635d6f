"""Paper reproductions: ``snnkit reproduce NAME [-p key value ...]``.

A reproduction is one of the teaching notebooks run with its full (GPU) parameters: the registry
``reproductions/registry.json`` names the notebook, the paper's settings, the paper's target and
the expected GPU time; the runner injects the settings into the notebook's ``parameters`` cell,
executes it and collects ``results/NAME/`` (the executed notebook, ``metrics.json``, the page,
``run.json``). One module a job:

    registry   the registry entries (:class:`Reproduction`, :func:`load_registry`, :func:`get`) and
               the records read back (:func:`recorded_results`, :func:`comparison`,
               :func:`paper_comparable`, :func:`pipeline_checks`)
    contract   what a reproduction notebook declares and calls (``results_dir``, ``dataset_stand_in``,
               :func:`save_metrics`, :func:`save_figure`) and the checks of injected parameters
    runner     :func:`run`: one reproduction into its folder, and the run.json record
    cli        the command line (:func:`main`, ``-p`` values, ``--list``, :func:`rerun_hints`)

Executing and exporting a notebook are :mod:`snnkit.notebook_run`'s (papermill, or its plain
fallback on a machine without Jupyter). ``dataset_stand_in=True`` asks a notebook to use the
same-shaped synthetic stand-in of its data set; it is never implied and always labelled.
"""
from ..notebook_run import NotebookFailed, installed as _have      # snnkit.sweep and its tests ask _have
from . import cli, contract, registry, runner
from .cli import QUICK, format_list, gpu_time, main, parse_value, rerun_hints
from .contract import (CONTRACT, check_parameter_types, check_parameters, declared_defaults, declared_parameters,
                       parameters_cell, save_figure, save_metrics)
from .registry import (NOTEBOOKS, RECORDED, REGISTRY, RESULTS, ROOT, Reproduction, comparison, get, list_reproductions,
                       load_registry, paper_comparable, pipeline_checks, recorded_results)
from .runner import new_run_folder, run

__all__ = ["NotebookFailed", "QUICK", "format_list", "gpu_time", "main", "parse_value", "rerun_hints", "CONTRACT",
           "check_parameter_types", "check_parameters", "declared_defaults", "declared_parameters", "parameters_cell",
           "save_figure", "save_metrics", "NOTEBOOKS", "RECORDED", "REGISTRY", "RESULTS", "ROOT", "Reproduction",
           "comparison", "get", "list_reproductions", "load_registry", "paper_comparable", "pipeline_checks",
           "recorded_results", "new_run_folder", "run", "cli", "contract", "registry", "runner"]
