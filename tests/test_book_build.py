"""A failing claim must fail the build: the book's execution settings and the notebook harness.

Both tests run a two-cell notebook whose assertion fails, once through ``jupyter-book build``
with this repository's ``_config.yml`` and once through the papermill harness of
``test_notebooks.py``, and check that each reports the failure instead of rendering it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import test_notebooks
from conftest import ROOT

FAILING_NOTEBOOK = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---
# A broken claim

```{code-cell} ipython3
:tags: [parameters]

preset = "fast"
```

```{code-cell} ipython3
assert 1 + 1 == 3, "deliberately broken claim"
```
"""


@pytest.mark.notebook
def test_jupyter_book_fails_on_a_failing_assert(tmp_path: Path) -> None:
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "references.bib").write_text((ROOT / "references.bib").read_text())
    (tmp_path / "intro.md").write_text("# Intro\n")
    (tmp_path / "broken.md").write_text(FAILING_NOTEBOOK)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: broken\n")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    run = subprocess.run([str(jupyter_book), "build", str(tmp_path), "--all", "-W", "--keep-going"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "deliberately broken claim" in run.stdout + run.stderr


@pytest.mark.notebook
def test_notebook_harness_fails_on_a_failing_assert(tmp_path: Path) -> None:
    path = tmp_path / "broken.md"
    path.write_text(FAILING_NOTEBOOK)
    with pytest.raises(pytest.fail.Exception, match=r"broken\.md: cell \[\d+\] raised AssertionError") as info:
        test_notebooks.test_notebook_executes(path, tmp_path)
    assert "deliberately broken claim" in str(info.value)
