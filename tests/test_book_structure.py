"""The book's structure: no orphan chapters, every notebook takes a ``preset`` parameter."""

from __future__ import annotations

import ast
import subprocess

import jupytext
import pytest

from conftest import ROOT, toc_files, toc_notebooks


def test_toc_lists_every_chapter_and_only_existing_ones() -> None:
    listed = set(toc_files())
    on_disk = {str(p.relative_to(ROOT).with_suffix("")) for d in ("book", "notebooks") for p in (ROOT / d).glob("**/*.md")}
    assert on_disk - listed == set(), f"chapters missing from _toc.yml: {sorted(on_disk - listed)}"
    missing = [f for f in listed if not (ROOT / f"{f}.md").is_file()]
    assert missing == [], f"_toc.yml names files that do not exist: {missing}"


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.stem)
def test_notebook_has_preset_parameter(path) -> None:
    nb = jupytext.read(path)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "notebook needs a python3 kernelspec"
    params = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"expected exactly one cell tagged 'parameters', found {len(params)}"
    # papermill injects its values in a new cell *after* this one, so a size computed here from
    # `preset` would keep the default preset's value: only literal assignments belong here.
    namespace: dict = {}
    for node in ast.parse(params[0].source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, (
            f"parameters cell: expected plain `name = literal` lines, got {ast.unparse(node)!r}")
        try:
            namespace[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            pytest.fail(f"parameters cell: {ast.unparse(node)!r} is not a literal; derive it in a later cell")
    assert namespace.get("preset") == "fast", "the parameters cell must set preset = 'fast'"


def test_no_ipynb_in_git() -> None:
    tracked = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert tracked.stdout.strip() == "", f"notebooks live as MyST .md, found tracked .ipynb: {tracked.stdout}"
