"""Execute every notebook of ``_toc.yml`` with papermill in the ``fast`` preset.

A failed ``assert`` or any exception in a notebook fails its test, with the cell and the
traceback in the report. Deselect with ``pytest -m "not notebook"`` for the quick loop.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import papermill
import pytest

from conftest import toc_notebooks


@pytest.mark.notebook
@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.stem)
def test_notebook_executes(path: Path, tmp_path: Path) -> None:
    notebook = jupytext.read(path)
    try:
        papermill.execute_notebook(
            notebook,
            str(tmp_path / f"{path.stem}.ipynb"),
            parameters={"preset": "fast"},
            kernel_name="python3",
            cwd=str(path.parent),
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as err:
        # The message holds the failing cell's source position and its traceback; papermill's
        # own frames would only hide it.
        pytest.fail(f"{path.name}: cell [{err.exec_count}] raised {err.ename}\n{err}", pytrace=False)
