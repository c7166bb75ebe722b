"""Shared fixtures and helpers of the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import settings

# Property tests draw the same examples on every run (CI failures reproduce locally) and keep
# no example database in the working tree.
settings.register_profile("softseg", derandomize=True, database=None, print_blob=True)
settings.load_profile("softseg")

ROOT = Path(__file__).resolve().parent.parent

#: Devices every device-parametrized test runs on.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def toc_files() -> list[str]:
    """Every file named in ``_toc.yml`` (root, chapters and sections), without extension."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                found.append(entry["file"])
            walk(entry.get("chapters"))
            walk(entry.get("sections"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    return found


def toc_notebooks() -> list[Path]:
    """The executable chapters: files of ``_toc.yml`` that live in ``notebooks/``."""
    return [ROOT / f"{f}.md" for f in toc_files() if f.startswith("notebooks/")]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
