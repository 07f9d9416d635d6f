"""The one executor and exporter (snnkit.notebook_run): the same contract under papermill and under
its plain fallback (the environment the notebook sees, failures naming the notebook's error), and
the page embedded in one file for a reproduction's result folder."""
import json

import pytest

from snnkit.notebook_run import NotebookFailed, execute_notebook, export_page, installed, resolve_executor

EXECUTORS = ["plain", pytest.param("papermill", marks=pytest.mark.skipif(not installed("papermill"),
                                                                        reason="papermill is not installed"))]
ENV = "import os\nprint('strict', os.environ.get('SNNKIT_STRICT_CLAIMS'), 'panels', os.environ.get('SNNKIT_PANELS'))"


def _notebook(folder, body):
    """A notebook written as JSON (the plain executor's tests run where nbformat is not installed)."""
    code = lambda src, tags=(): {"cell_type": "code", "execution_count": None, "id": f"c{len(src)}{len(tags)}",  # noqa: E731
                                 "metadata": {"tags": list(tags)}, "outputs": [], "source": src}
    nb = {"nbformat": 4, "nbformat_minor": 5, "cells": [
        {"cell_type": "markdown", "id": "m", "metadata": {}, "source": "# t"}, code("x = 1", ["parameters"]), code(body)],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    folder.mkdir(exist_ok=True)
    (folder / "t.ipynb").write_text(json.dumps(nb))
    return folder / "t.ipynb"


def _printed(path):
    text = [o.get("text", "") for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"
            for o in c.get("outputs", [])]
    return "".join("".join(t) if isinstance(t, list) else t for t in text)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_both_executors_give_the_notebook_the_same_environment(executor, tmp_path, monkeypatch):
    path = _notebook(tmp_path / "nbs", ENV + "\nprint('x is', x)")
    monkeypatch.setenv("SNNKIT_STRICT_CLAIMS", "1")
    monkeypatch.setenv("SNNKIT_PANELS", "sweep")
    out = tmp_path / "out.ipynb"
    seconds = execute_notebook(path, out, {"x": 5}, strict_claims=False, panels="static", executor=executor)
    assert seconds > 0 and "strict 0 panels static" in _printed(out) and "x is 5" in _printed(out)
    if executor == "plain":             # None inherits the claims switch; no panels asked: none set
        execute_notebook(path, out, executor="plain")
        assert "strict 1 panels None" in _printed(out) and "x is 1" in _printed(out)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_failing_notebook_names_its_error_and_keeps_the_executed_notebook(executor, tmp_path):
    path = _notebook(tmp_path / "nbs", "print('before')\nraise RuntimeError('diverged at epoch 3')")
    out = tmp_path / "out.ipynb"
    with pytest.raises(NotebookFailed, match=f"t.ipynb failed \\({executor} exit 1\\): RuntimeError: diverged") as e:
        execute_notebook(path, out, executor=executor)
    assert e.value.reason == "RuntimeError: diverged at epoch 3" and e.value.executed == out
    assert "diverged at epoch 3" in out.read_text() and "before" in _printed(out)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="executor must be 'auto', 'papermill' or 'plain', got 'jupyter'"):
        resolve_executor("jupyter")
    assert resolve_executor("auto") == ("papermill" if installed("papermill") else "plain")
    path = _notebook(tmp_path / "nbs", "pass")
    with pytest.raises(ValueError, match="parameters of t.ipynb must be JSON values"):
        execute_notebook(path, tmp_path / "o.ipynb", {"x": {1, 2}}, executor="plain")
    with pytest.raises(ValueError, match="assets must be 'beside' or 'embedded'"):
        export_page(path, assets="cdn")


def test_embedded_page_is_one_file_with_plotly_inside(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbconvert")
    import plotly.graph_objects as go
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
    fig = go.Figure(go.Scatter(y=[1, 3, 2]))
    nb = new_notebook(cells=[new_markdown_cell("# A result"), new_code_cell("fig.show()", execution_count=1, outputs=[
        new_output("display_data", data={"application/vnd.plotly.v1+json": fig.to_plotly_json()})])])
    ipynb = tmp_path / "r.ipynb"
    nbformat.write(nb, str(ipynb))
    page, report = export_page(ipynb, assets="embedded")
    assert report["figures"] == 1 and page.count("Plotly.newPlot") == 1
    assert 'src="plotly.min.js"' not in page and "mathjax/MathJax.js" not in page      # nothing beside it
    assert page.count("plotly.js v") == 1 and page.index("plotly.js v") < page.index("Plotly.newPlot")
    beside, _ = export_page(ipynb)                                                     # the tour's page
    assert 'src="plotly.min.js"' in beside and "plotly.js v" not in beside
