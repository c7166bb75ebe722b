"""A failing claim must fail the build: the book's execution settings and the notebook harness.

Both tests run a two-cell notebook whose assertion fails, once through ``jupyter-book build``
with this repository's ``_config.yml`` and once through the papermill harness of
``test_notebooks.py``, and check that each reports the failure instead of rendering it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import test_notebooks
from conftest import ROOT, NotebookRun, NotebookRuns, book_config, execute_notebook

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
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(book_config(), sort_keys=False))
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
        execute_notebook(path, tmp_path / "broken.ipynb")
    assert "deliberately broken claim" in str(info.value)
    # The session's record of the run keeps the failure, and the chapter's test reports it.
    runs = NotebookRuns(tmp_path)
    assert runs[path].executed is None and "deliberately broken claim" in runs[path].failure
    with pytest.raises(pytest.fail.Exception, match="deliberately broken claim"):
        test_notebooks.test_notebook_executes(path, runs)


@pytest.mark.notebook
def test_book_build_renders_the_notebook_tests_run_without_executing_again(tmp_path: Path) -> None:
    """The browser test's build renders the outputs of the notebook test's papermill run: a
    notebook that prints a fresh random token shows, in the HTML, the token papermill printed."""
    import nbformat

    from test_browser import cached_build_config, seed_execution_cache

    book = tmp_path / "book"
    book.mkdir()
    (book / "references.bib").write_text((ROOT / "references.bib").read_text())
    (book / "intro.md").write_text("# Intro\n")
    source = book / "token.md"
    source.write_text(FAILING_NOTEBOOK.replace("# A broken claim", "# A token")
                      .replace('assert 1 + 1 == 3, "deliberately broken claim"', "import uuid\nprint(uuid.uuid4().hex)"))
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: token\n")
    executed = tmp_path / "token.ipynb"
    seconds = execute_notebook(source, executed)
    token = nbformat.read(executed, as_version=4).cells[-1].outputs[0]["text"].strip()

    assert seed_execution_cache(tmp_path / "cache", [NotebookRun(source, executed, None, seconds)]) == 1
    config = cached_build_config(tmp_path, tmp_path / "cache")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    run = subprocess.run([str(jupyter_book), "build", str(book), "--all", "-W", "--keep-going", "--config", str(config),
                          "--path-output", str(book)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "Using cached notebook" in run.stdout + run.stderr
    assert token in (book / "_build" / "html" / "token.html").read_text()
