"""The tour's pages in a real browser (Chromium via Playwright, marker ``browser``).

Each page loads from the file system with no console error; MathJax (local) has typeset every
equation (no raw ``$$`` or ``\\frac`` left in the text); every plotly figure has drawn; moving the
page's first control (a panel's slider, by keyboard) changes its figure; and after 20 moves every
figure of the page still has its data (no WebGL context dropped). Two tours are checked: a small
one built here from test notebooks (fast, always), and the real tour of ``make test``'s session
fixture (``tour_build``), so CI checks the real notebooks' pages."""
from __future__ import annotations

import re

import pytest

nbformat = pytest.importorskip("nbformat")
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook  # noqa: E402

from browser_helpers import figures, launched, watch_console  # noqa: E402

pytestmark = pytest.mark.browser

RAW_TEX = re.compile(r"\$\$|\\frac|\\sum|\\tau\b")


def check_page(ctx, path, moves=20):
    """Open one tour page and run every check of the module docstring on it; returns a summary."""
    page = ctx.new_page()
    errors = watch_console(page)
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_function("document.documentElement.dataset.mathjax === 'done' || !window.MathJax", timeout=60_000)
    page.wait_for_timeout(300)
    text = page.evaluate("Array.from(document.querySelectorAll('.jp-RenderedMarkdown')).map(e => e.innerText).join('\\n')")
    raw = sorted(set(RAW_TEX.findall(text)))
    assert not raw, f"{path.name}: TeX left untypeset after MathJax ran: {raw}"
    figs = figures(page)
    shown = [f for f in figs if f["visible"]]
    bad = [i for i, f in enumerate(shown) if not (f["drawn"] and f["traces"] > 0)]
    assert not bad, f"{path.name}: plotly figures not drawn (their index among the visible ones): {bad}"
    controls = page.locator(".snnkit-panel [data-control]")
    moved = None
    if controls.count():
        first = controls.first
        panel = first.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '), ' snnkit-panel ')][1]")
        before = figures(page, panel)
        text_before = panel.inner_text()             # a panel item may be a text (notebook 07's picker)
        first.scroll_into_view_if_needed()
        first.focus()
        kind = first.evaluate("e => e.tagName")
        if kind == "SELECT":
            n = first.evaluate("e => e.options.length")
            first.select_option(index=(first.evaluate("e => e.selectedIndex") + 1) % n)
        else:
            at_max = first.evaluate("e => +e.value >= +e.max")
            first.press("ArrowLeft" if at_max else "ArrowRight")
        page.wait_for_timeout(200)
        after = figures(page, panel)
        assert ([f["key"] for f in after], panel.inner_text()) != ([f["key"] for f in before], text_before), \
            f"{path.name}: moving the first control of the first panel did not change its figure or text"
        moved = page.evaluate("() => document.querySelector('.snnkit-panel').dataset.shown")
        if kind != "SELECT":
            for i in range(moves):
                first.press("ArrowLeft" if i % 4 < 2 else "ArrowRight")
            page.wait_for_timeout(300)
            for i, f in enumerate(figures(page)):
                if f["visible"]:
                    assert f["traces"] > 0 and f["lost"] == 0, \
                        f"{path.name}: figure {i} lost its data or its WebGL context after {moves} slider moves: {f}"
    assert not errors, f"{path.name}: errors in the browser console: {errors[:5]}"
    n_controls = controls.count()
    page.close()
    return {"figures": len(shown), "controls": n_controls, "moved": moved}


def _small_tour(tmp_path):
    """Two small notebooks through the real tour code: equations, a figure, a two-control panel,
    a three-item panel, a solution cell, a Think! discussion, a stderr warning."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    setup = ("import numpy as np, plotly.graph_objects as go, ipywidgets as W\n"
             "from snnkit import viz\nfrom snnkit.widgets import interactive_figure\nviz.setup_notebook()")
    a = new_notebook(cells=[
        new_markdown_cell("# A page\n\nYou will learn to read $$u(t) = \\sum_i w_i \\frac{t}{\\tau}$$ and $\\tau$."),
        new_code_cell(setup),
        new_code_cell("def wave(freq=1.0, phase=0.0):\n    t = np.linspace(0, 1, 200)\n"
                      "    return go.Figure(go.Scatter(x=t, y=np.sin(2 * np.pi * freq * t + phase)),"
                      " layout=dict(title=f'freq {freq:g}', xaxis_title='time (s)'))\n"
                      "wave().show()"),
        new_code_cell("interactive_figure(wave, freq=W.FloatSlider(1.0, min=0.5, max=3, step=0.25, "
                      "description='a long frequency label'), phase=W.Dropdown(options=[('zero', 0.0), ('half', 3.14)]))"),
        new_code_cell("import warnings; warnings.warn('noise that must not reach the page')"),
        new_markdown_cell("**Think!** Why?\n\n<details><summary>Discussion</summary>Because $\\frac{1}{2}$.</details>"),
        new_code_cell("answer = 42", metadata={"jupyter": {"source_hidden": True}, "tags": ["solution"]}),
    ])
    b = new_notebook(cells=[
        new_markdown_cell("# Rasters\n\nLearn: many figures and a panel of three items."),
        new_code_cell(setup),
        new_code_cell("for k in range(6):\n    viz.raster((np.random.default_rng(k).random((50, 40)) < 0.1), title=f'r{k}').show()"),
        new_code_cell("def three(n=5):\n    r = (np.random.default_rng(n).random((30, 20)) < 0.2)\n"
                      "    return viz.raster(r, title=f'n={n}'), f'n is {n}', viz.bar(['a', 'b'], [n, 1])\n"
                      "interactive_figure(three, n=W.IntSlider(5, 1, 12))"),
    ])
    for nb, name in ((a, "01_a.ipynb"), (b, "02_b.ipynb")):
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(folder / name))
    from snnkit.tour import run_tour
    out = tmp_path / "site"
    runs = run_tour(out, folder=folder, timeout=300)
    assert all(r.ok for r in runs), [r.error for r in runs]
    return out, runs


def test_small_tour_pages_in_a_real_browser(tmp_path):
    out, runs = _small_tour(tmp_path)
    page_a = (out / "01_a.html").read_text()
    assert "UserWarning" not in page_a                                          # stderr left out
    assert re.search(r'<details class="snnkit-solution">.*?answer.*?</details>', page_a, re.S)
    assert "a long frequency label" in page_a
    with launched() as ctx:
        sums = {r.html: check_page(ctx, out / r.html) for r in runs}
        index = ctx.new_page()
        errors = watch_console(index)
        index.goto((out / "index.html").resolve().as_uri())
        assert index.locator("a[href='01_a.html']").count() == 1 and "You will learn to read" in index.content()
        assert not errors
        # the Think! discussion opens
        page = ctx.new_page()
        page.goto((out / "01_a.html").resolve().as_uri())
        details = page.locator(".jp-RenderedMarkdown details").first
        assert not details.evaluate("d => d.open")
        details.locator("summary").click()
        assert details.evaluate("d => d.open")
        sol = page.locator("details.snnkit-solution").first
        assert not sol.evaluate("d => d.open") and not sol.locator("pre, .highlight").first.is_visible()
    assert sums["01_a.html"]["moved"].startswith("freq=") and sums["02_b.html"]["figures"] >= 8, sums


@pytest.mark.slow
def test_real_tour_pages_in_a_real_browser(tour_build):
    out, runs = tour_build
    pages = [out / r.html for r in runs.values() if r.html]
    assert pages, "the tour wrote no page"
    with launched() as ctx:
        sums = {p.name: check_page(ctx, p) for p in pages}
    print(sums)
    no_control = [n for n, s in sums.items() if not s["controls"]]
    print("pages without a panel control:", no_control)
