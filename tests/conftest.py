"""Shared fixtures and helpers of the test suite."""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from hypothesis import settings

from softseg.claims import toc_documents

# Property tests draw the same examples on every run (CI failures reproduce locally) and keep
# no example database in the working tree.
settings.register_profile("softseg", derandomize=True, database=None, print_blob=True)
settings.load_profile("softseg")

ROOT = Path(__file__).resolve().parent.parent

# Papermill executes the chapters inside this process: give its kernel client the same guard
# against a lost ZeroMQ wake-up as the book build has (book/_ext/kernel_wakeup.py).
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import kernel_wakeup  # noqa: E402

kernel_wakeup.install()

#: Devices every device-parametrized test runs on.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def toc_files() -> list[str]:
    """Every file named in ``_toc.yml`` (root, chapters and sections), without extension."""
    return [p.relative_to(ROOT).with_suffix("").as_posix() for p in toc_documents(ROOT)]


def book_config(**execute: object) -> dict:
    """``_config.yml`` as a dict, usable from another folder: the local extensions' paths made
    absolute (jupyter-book resolves them against the config file's folder), ``execute`` updated."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"].update(execute)
    extensions = config["sphinx"].get("local_extensions", {})
    config["sphinx"]["local_extensions"] = {name: str(ROOT / path) for name, path in extensions.items()}
    return config


def toc_notebooks() -> list[Path]:
    """The executable chapters: files of ``_toc.yml`` that live in ``notebooks/``."""
    return [ROOT / f"{f}.md" for f in toc_files() if f.startswith("notebooks/")]


def write_image(path: Path, arr: np.ndarray, fmt: str | None = None, mode: str | None = None) -> Path:
    """Write ``arr`` as an image file at ``path`` (folders created), in the format its suffix names
    unless ``fmt`` is given, converted to PIL ``mode`` first if given: the test data sets' files."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
    image.save(path, format=fmt)
    return path


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


# --------------------------------------------------------------------------- executing the chapters

#: Seconds one cell may run. The longest cell of the fast preset takes about a minute on a 2-core
#: machine; without a limit a kernel that stops answering would hang the whole run until CI's
#: 90 minutes are up.
CELL_TIMEOUT_S = 300


def execute_notebook(path: Path, output: Path) -> float:
    """Execute the chapter ``path`` with papermill in the ``fast`` preset into ``output``.

    Returns the seconds it took. A failing cell fails the calling test (``pytest.fail``) with the
    cell's number and traceback; papermill's own frames would only hide them.
    """
    import jupytext
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    def run() -> None:
        papermill.execute_notebook(
            jupytext.read(path), str(output), parameters={"preset": "fast"}, kernel_name="python3",
            cwd=str(path.parent), progress_bar=False, execution_timeout=CELL_TIMEOUT_S,
        )

    start = time.perf_counter()
    try:
        try:
            run()
        except (CellTimeoutError, DeadKernelError) as err:
            # A stall of the harness, not a failed claim: the one seen (a ZeroMQ wake-up lost, the
            # reply unread in the client's socket) is guarded by kernel_wakeup above; should another
            # kind of stall or a dead kernel occur, the notebook gets one more run in a fresh kernel,
            # and a second timeout fails the test.
            warnings.warn(f"{path.name}: {type(err).__name__} ({err}); executing it once more", stacklevel=1)
            run()
    except papermill.PapermillExecutionError as err:
        pytest.fail(f"{path.name}: cell [{err.exec_count}] raised {err.ename}\n{err}", pytrace=False)
    return time.perf_counter() - start


class NotebookRun(NamedTuple):
    """One chapter's execution: the executed notebook, or why it failed."""

    source: Path
    executed: Path | None  # papermill's output notebook; None when a cell failed
    failure: str | None  # the message its test fails with
    seconds: float


class NotebookRuns:
    """Every chapter executed at most once per pytest session, by whichever test asks first.

    ``tests/test_notebooks.py`` asks for each chapter; the browser test's book build asks for all
    of them and renders their outputs instead of executing the chapters a second time. Executing
    the four chapters is most of the test run's time, so this halves it.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._runs: dict[Path, NotebookRun] = {}

    def __getitem__(self, path: Path) -> NotebookRun:
        if path not in self._runs:
            output = self.folder / f"{path.stem}.ipynb"
            start = time.perf_counter()
            try:
                seconds = execute_notebook(path, output)
                self._runs[path] = NotebookRun(path, output, None, seconds)
            except pytest.fail.Exception as err:
                self._runs[path] = NotebookRun(path, None, str(err), time.perf_counter() - start)
        return self._runs[path]


@pytest.fixture(scope="session")
def notebook_runs(tmp_path_factory) -> NotebookRuns:
    return NotebookRuns(tmp_path_factory.mktemp("executed-notebooks"))
