"""docs/design.md stays true: every file its recipe "adding a fourth method" names exists, the
README links it, and no source cites a design document that is not in the repository."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "design.md"


def _section(text, title):
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"docs/design.md has no section '## {title}'"
    return m.group(1)


def _paths(text):
    """Backticked repository paths: with a '/' or a file extension, no placeholder ('<...>', NN_)."""
    names = re.findall(r"`([^`\s]+)`", text)
    return sorted({n for n in names if ("/" in n or re.search(r"\.(py|md|toml|json|cu|ipynb)$", n))
                   and "<" not in n and "NN_" not in n and "*" not in n and not n.startswith("snnkit.")})


def test_every_path_of_the_recipe_exists():
    recipe = _section(DESIGN.read_text(), "6. Adding a fourth method")
    paths = _paths(recipe)
    assert len(paths) >= 20, paths                     # the recipe names its places, it does not allude
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"docs/design.md names files that do not exist: {missing}"


def test_every_path_of_the_design_exists():
    missing = [p for p in _paths(DESIGN.read_text()) if not (ROOT / p).exists()]
    assert not missing, missing


def test_the_readme_links_the_design_and_no_source_cites_a_missing_one():
    assert "docs/design.md" in (ROOT / "README.md").read_text()
    stale = [str(p.relative_to(ROOT)) for p in (ROOT / "snnkit").rglob("*.py") if "DESIGN.md" in p.read_text()]
    assert not stale, f"cite docs/design.md, not DESIGN.md: {stale}"
