"""Shared fixtures and helpers of the test suite."""

from __future__ import annotations

from pathlib import Path

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

#: Devices every device-parametrized test runs on.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def toc_files() -> list[str]:
    """Every file named in ``_toc.yml`` (root, chapters and sections), without extension."""
    return [p.relative_to(ROOT).with_suffix("").as_posix() for p in toc_documents(ROOT)]


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
