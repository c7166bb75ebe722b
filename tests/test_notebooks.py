"""Execute every notebook of ``_toc.yml`` with papermill in the ``fast`` preset.

A failed ``assert`` or any exception in a notebook fails its test, with the cell and the
traceback in the report. Deselect with ``pytest -m "not notebook"`` for the quick loop.

Each chapter is executed once per session (``conftest.NotebookRuns``): when the browser test
has already built the book in this session, it did so from these same executions, and this test
reports how they went.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import NotebookRuns, toc_notebooks


@pytest.mark.notebook
@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.stem)
def test_notebook_executes(path: Path, notebook_runs: NotebookRuns) -> None:
    run = notebook_runs[path]
    if run.failure is not None:
        pytest.fail(run.failure, pytrace=False)
    assert run.executed is not None and run.executed.is_file()
