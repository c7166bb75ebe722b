r"""Loader of the QUBIQ 2020 challenge data in its distributed layout (Dice semimetric paper, Sect. 3.1).

QUBIQ (Quantification of Uncertainties in Biomedical Image Quantification, MICCAI 2020) gives,
for every case, one 2-D image and one binary mask per rater and task. The paper uses QUBIQ 2020:
7 tasks in 4 data sets (:data:`QUBIQ_DATASETS`, its Sect. 3.1 and Table 1), images resized to
256 × 256, 5-fold cross-validation. The layout, as distributed (``shared/DATASETS.md`` §3)::

    <root>/<dataset>/Training/case01/image.nii.gz
                                     task01_seg01.nii.gz ... task01_seg07.nii.gz
                                     task02_seg01.nii.gz ...          (prostate, brain-tumor)
    <root>/<dataset>/Validation/caseNN/...

with ``<root>`` e.g. ``training_data_v2`` and ``<dataset>`` one of ``brain-growth``,
``brain-tumor``, ``kidney``, ``prostate``. PNG copies of the same layout (``image.png``,
``task01_seg01.png``) are read too (``ext=".png"``). Every folder name, file name and extension is
a parameter with these defaults.

* NIfTI (nibabel, imported when needed) arrays are stored ``(x, y[, c])``; they are read with
  their axes reversed, ``(c, y, x)``, as SimpleITK (used by the QUBIQ tools and the authors'
  preprocessing) reads them, so rows are ``y``. ``reverse_axes=False`` keeps nibabel's order.
  Singleton axes are dropped. Brain-tumor images hold 4 MR modalities: they become 4 channels.
* Images are scaled per channel to [0, 1] (min-max); the paper does not say how it normalizes
  (the authors' preprocessing scales to 0-255).
* Masks are binarized as ``value > 0`` (0/1 or 0/255 files both work).
* Files that do not match the expected names are ignored (e.g. ``task02_*`` when loading task
  1, a ``.png`` preview beside NIfTI files, ``.DS_Store``); a case folder without its image or
  without any rater mask of the task is an error that names the expected files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._checks import check_int, check_option
from ._io import import_nibabel, natural_key, read_png
from .raters import LabelKind, MultiRaterDataset

__all__ = ["QUBIQ_DATASETS", "QUBIQ_TASKS", "PAPER_TABLE1", "find_cases", "load_case", "case_folds",
           "QubiqDataset"]

#: The four QUBIQ 2020 data sets used by the paper (Sect. 3.1): tasks, raters and cases.
QUBIQ_DATASETS: dict[str, dict[str, Any]] = {
    "prostate": {"modality": "MR", "cases": 55, "tasks": 2, "raters": 6},
    "brain-growth": {"modality": "MR", "cases": 39, "tasks": 1, "raters": 7},
    "brain-tumor": {"modality": "MR (4 modalities)", "cases": 32, "tasks": 3, "raters": 3},
    "kidney": {"modality": "CT", "cases": 24, "tasks": 1, "raters": 3},
}

#: The paper's seven tasks D1-D7 (Table 1) as ``(name in Table 2, dataset folder, task number)``.
QUBIQ_TASKS: tuple[tuple[str, str, int], ...] = (
    ("Prostate T1", "prostate", 1), ("Prostate T2", "prostate", 2), ("Brain Growth", "brain-growth", 1),
    ("Brain Tumor T1", "brain-tumor", 1), ("Brain Tumor T2", "brain-tumor", 2),
    ("Brain Tumor T3", "brain-tumor", 3), ("Kidney", "kidney", 1),
)

#: Table 1 of the paper (quoted): number of raters and the mean Dice (%) of each rater with the
#: majority vote, per task.
PAPER_TABLE1: dict[str, dict[str, float]] = {
    "Prostate T1": {"raters": 6, "dice": 96.49}, "Prostate T2": {"raters": 6, "dice": 92.17},
    "Brain Growth": {"raters": 7, "dice": 91.20}, "Brain Tumor T1": {"raters": 3, "dice": 95.44},
    "Brain Tumor T2": {"raters": 3, "dice": 68.73}, "Brain Tumor T3": {"raters": 3, "dice": 92.71},
    "Kidney": {"raters": 3, "dice": 97.41},
}

def find_cases(root: str | Path, dataset: str, *, splits: Sequence[str] = ("Training", "Validation"),
               case_prefix: str = "case") -> list[Path]:
    """The case folders of one QUBIQ data set, in natural order (``case2`` before ``case10``).

    Parameters
    ----------
    root : str or Path
        The folder holding ``<dataset>/`` (e.g. ``training_data_v2``), or the ``<dataset>``
        folder itself.
    dataset : str
        Folder name of the data set, e.g. ``"brain-growth"`` (see :data:`QUBIQ_DATASETS`; other
        names are accepted for other releases).
    splits : sequence of str, default ("Training", "Validation")
        Sub-folders of ``<dataset>`` searched for cases, in this order; missing ones are
        skipped. If none exists, cases are looked for directly under ``<dataset>`` (the 2021
        pancreas layout).
    case_prefix : str, default "case"
        Case folders are the directories whose name starts with it.

    Returns
    -------
    list of Path

    Raises
    ------
    ValueError
        If ``root`` or ``<dataset>`` does not exist or holds no case folder; the message shows
        the expected layout.
    """
    root = Path(root)
    if not isinstance(dataset, str) or not dataset:
        raise TypeError(f"dataset: expected a folder name such as 'brain-growth', got {dataset!r}")
    layout = f"{root}/{dataset}/{{{','.join(splits)}}}/{case_prefix}NN/"
    if not root.is_dir():
        raise ValueError(f"root: expected an existing folder with the QUBIQ layout {layout}, got {str(root)!r} (not found)")
    base = root if root.name == dataset and not (root / dataset).is_dir() else root / dataset
    if not base.is_dir():
        found = sorted(p.name for p in root.iterdir())[:10]
        raise ValueError(f"root {str(root)!r}: expected a folder {dataset!r} (layout {layout}), found {found}")
    split_dirs = [base / s for s in splits if (base / s).is_dir()] or [base]
    cases = []
    for d in split_dirs:
        cases += sorted((p for p in d.iterdir() if p.is_dir() and p.name.startswith(case_prefix)), key=natural_key)
    if not cases:
        raise ValueError(f"root {str(root)!r}: expected case folders {layout}, found none in "
                         f"{[str(d) for d in split_dirs]}")
    return cases


def _read(path: Path, reverse_axes: bool) -> np.ndarray:
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        arr = np.asarray(import_nibabel(str(path)).load(str(path)).dataobj)
        arr = np.squeeze(arr)
        return np.ascontiguousarray(arr.T) if reverse_axes else arr
    if name.endswith(".png"):
        arr = np.squeeze(read_png(path))
        return np.moveaxis(arr, -1, 0) if arr.ndim == 3 else arr  # (H, W, C) -> (C, H, W)
    raise ValueError(f"{path}: expected a .nii, .nii.gz or .png file")


def load_case(case_dir: str | Path, task: int = 1, *, ext: str = ".nii.gz", image_name: str = "image",
              rater_prefix: str = "task{task:02d}_seg", reverse_axes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Image and rater masks of one QUBIQ case and task.

    Parameters
    ----------
    case_dir : str or Path
        A case folder (``.../Training/case01``).
    task : int, default 1
        Task number (1-based, as in the file names ``task01_seg01``).
    ext : str, default ".nii.gz"
        Extension of the image and mask files (``".nii.gz"``, ``".nii"`` or ``".png"``).
    image_name : str, default "image"
        Stem of the image file.
    rater_prefix : str, default "task{task:02d}_seg"
        Prefix of the rater masks, formatted with ``task``; masks are
        ``<prefix><number><ext>``, ordered by the number.
    reverse_axes : bool, default True
        Reverse the axes of NIfTI arrays (see the module doc).

    Returns
    -------
    image : numpy.ndarray
        ``float32 (C, H, W)`` scaled per channel to [0, 1].
    masks : numpy.ndarray
        ``uint8 (R, H, W)``, values 0/1, one per rater.

    Raises
    ------
    ValueError
        If the image or every mask of the task is missing (the message names the expected
        files), a file is not a 2-D slice, or masks and image differ in size.
    """
    case_dir = Path(case_dir)
    task = check_int("task", task, 1)
    prefix = rater_prefix.format(task=task)
    image_path = case_dir / f"{image_name}{ext}"
    if not image_path.is_file():
        found = sorted(p.name for p in case_dir.iterdir())[:10] if case_dir.is_dir() else "no such folder"
        raise ValueError(f"case {str(case_dir)!r}: expected the image {image_path.name}, found {found}")
    pattern = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(ext) + "$")
    raters = sorted(((int(m.group(1)), p) for p in case_dir.iterdir()
                     if p.is_file() and (m := pattern.match(p.name))), key=lambda t: t[0])
    if not raters:
        found = sorted(p.name for p in case_dir.iterdir())[:10]
        raise ValueError(f"case {str(case_dir)!r}: expected rater masks {prefix}01{ext}, {prefix}02{ext}, ... "
                         f"for task {task}, found {found}")
    image = _read(image_path, reverse_axes).astype(np.float32)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3 or image.shape[0] > 4:
        raise ValueError(f"{image_path}: expected a 2-D slice (H, W) or (C, H, W) with C <= 4 channels, "
                         f"got an array of shape {image.shape}")
    lo = image.min(axis=(1, 2), keepdims=True)
    span = image.max(axis=(1, 2), keepdims=True) - lo
    image = (image - lo) / np.where(span > 0, span, 1.0)
    masks = []
    for _, path in raters:
        m = _read(path, reverse_axes)
        if m.shape != image.shape[1:]:
            raise ValueError(f"{path}: expected a mask of the image's size {image.shape[1:]}, got shape {m.shape}")
        masks.append(m > 0)
    return image.astype(np.float32), np.stack(masks).astype(np.uint8)


def case_folds(n: int, n_folds: int = 5) -> list[list[int]]:
    """Indices ``0..n-1`` split into ``n_folds`` consecutive folds of ``n // n_folds`` cases, the
    last fold taking the remainder (the authors' split by case index)."""
    n, n_folds = check_int("n", n, 1), check_int("n_folds", n_folds, 1)
    if n_folds > n:
        raise ValueError(f"n_folds: expected at most {n} (cases), got {n_folds}")
    m = n // n_folds
    return [list(range(k * m, (k + 1) * m if k < n_folds - 1 else n)) for k in range(n_folds)]


def _resize(image: np.ndarray, masks: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear resize of the image; masks resized bilinearly as floats and thresholded at 1/2."""
    if image.shape[1:] == size:
        return image, masks
    img = torch.nn.functional.interpolate(torch.from_numpy(image)[None], size=size, mode="bilinear",
                                          align_corners=False, antialias=True)[0]
    msk = torch.nn.functional.interpolate(torch.from_numpy(masks.astype(np.float32))[None], size=size,
                                          mode="bilinear", align_corners=False)[0]
    return img.clamp(0, 1).numpy(), (msk >= 0.5).to(torch.uint8).numpy()


class QubiqDataset(MultiRaterDataset):
    """One QUBIQ task as a torch ``Dataset`` of ``(image, target)`` with a chosen label kind.

    Parameters
    ----------
    root : str or Path
        Folder holding ``<dataset>/`` (see :func:`find_cases`).
    dataset : str, default "brain-growth"
        Data set folder (:data:`QUBIQ_DATASETS`).
    task : int, default 1
        Task number.
    label : str, default "weighted"
        Label kind (:data:`softseg.data.raters.LABEL_KINDS`); the paper's best is ``weighted``.
    size : int, (int, int) or None, default 256
        Resize every case to this size (the paper: 256 × 256); ``None`` keeps the native size.
    split : {"all", "train", "val"}, default "all"
        With ``fold``/``n_folds``: the cases of the validation fold (``val``), the others
        (``train``), or all.
    fold, n_folds : int, default 0, 5
        Which of the :func:`case_folds` folds is the validation fold (5-fold cross-validation,
        Sect. 3.3).
    splits, case_prefix
        As in :func:`find_cases`.
    ext, image_name, rater_prefix, reverse_axes
        As in :func:`load_case`.
    ls_eps, bls_width
        As in :func:`softseg.data.raters.fuse_target`.

    Raises
    ------
    ValueError
        For a wrong layout (see :func:`find_cases`, :func:`load_case`), a bad option or an empty
        split.

    Notes
    -----
    All cases of the split are read once, at construction (QUBIQ 2020 cases are single slices).
    """

    def __init__(self, root: str | Path, dataset: str = "brain-growth", task: int = 1, *, label: LabelKind = "weighted",
                 size: int | Sequence[int] | None = 256, split: str = "all", fold: int = 0, n_folds: int = 5,
                 splits: Sequence[str] = ("Training", "Validation"), case_prefix: str = "case",
                 ext: str = ".nii.gz", image_name: str = "image", rater_prefix: str = "task{task:02d}_seg",
                 reverse_axes: bool = True, ls_eps: float = 0.1, bls_width: int = 2) -> None:
        super().__init__(label=label, ls_eps=ls_eps, bls_width=bls_width)
        check_option("split", split, ("all", "train", "val"))
        if size is not None:
            sizes = (size, size) if isinstance(size, (int, np.integer)) and not isinstance(size, bool) else size
            if not isinstance(sizes, (tuple, list)) or len(sizes) != 2:
                raise TypeError(f"size: expected an int, a pair (H, W) or None, got {size!r}")
            size = (check_int("size", sizes[0], 1), check_int("size", sizes[1], 1))
        self.size = size
        cases = find_cases(root, dataset, splits=splits, case_prefix=case_prefix)
        if split != "all":
            folds = case_folds(len(cases), n_folds)
            fold = check_int("fold", fold, 0)
            if fold >= n_folds:
                raise ValueError(f"fold: expected an integer in [0, {n_folds - 1}], got {fold}")
            val = set(folds[fold])
            cases = [c for i, c in enumerate(cases) if (i in val) == (split == "val")]
            if not cases:
                raise ValueError(f"split: expected at least one case in split {split!r} of fold {fold} "
                                 f"of {n_folds}, got none")
        self.dataset, self.task, self.cases = dataset, check_int("task", task, 1), cases
        self._items = []
        for c in cases:
            image, masks = load_case(c, self.task, ext=ext, image_name=image_name, rater_prefix=rater_prefix,
                                     reverse_axes=reverse_axes)
            self._items.append(_resize(image, masks, size) if size is not None else (image, masks))
        channels = {im.shape[0] for im, _ in self._items}
        if len(channels) != 1:
            raise ValueError(f"dataset {dataset!r}: expected images with one channel count, got {sorted(channels)}")
        self.in_channels = channels.pop()

    def __len__(self) -> int:
        return len(self._items)

    def case(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``(C, H, W)`` float32 and rater masks ``(R, H, W)`` uint8 of case ``index``."""
        return self._items[self._index(index)]

    def __repr__(self) -> str:
        return (f"QubiqDataset(dataset={self.dataset!r}, task={self.task}, cases={len(self)}, "
                f"label={self.label!r}, size={self.size})")
