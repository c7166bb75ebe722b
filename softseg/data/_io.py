"""File readers shared by the loaders of :mod:`softseg.data` (private).

Pillow and nibabel are imported when a file is read, so ``softseg`` imports on machines that lack
them (the GPU machine has Pillow but not nibabel); a missing reader is a ``ValueError`` that names
the file and the package to install, never an ``ImportError`` from deep inside a loader.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import numpy as np

_NUMBER = re.compile(r"(\d+)")


def natural_key(path: Path) -> list:
    """Sort key that orders ``case2`` before ``case10`` (digit runs compared as integers)."""
    return [int(t) if t.isdigit() else t for t in _NUMBER.split(Path(path).name)]


def read_png(path: str | Path) -> np.ndarray:
    """The pixels of an image file as Pillow decodes them (``(H, W)`` or ``(H, W, C)``, file dtype)."""
    try:
        from PIL import Image
    except ModuleNotFoundError as err:  # pragma: no cover - pillow is pinned in requirements.txt
        raise ValueError(f"{path}: reading images needs Pillow (pip install pillow)") from err
    with Image.open(path) as im:
        return np.asarray(im)


def import_nibabel(what: str) -> ModuleType:
    """``nibabel``, or a ``ValueError`` that starts with ``what`` (the file or layout being read)."""
    try:
        import nibabel
    except ModuleNotFoundError as err:
        raise ValueError(f"{what}: reading NIfTI needs nibabel (pip install nibabel)") from err
    return nibabel
