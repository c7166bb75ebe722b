r"""UESTC COVID-19 CT lesion segmentation (Wang et al., TMI 2020), as distributed or as converted.

Two layouts (``shared/DATASETS.md`` §7; [MC] yutao1008/margin_calibration, [COP] HiLab-git/COPLE-Net):

* ``layout="nifti"`` — the raw release, one volume per case::

      <root>/part1/image/case_<i>.nii.gz   <root>/part1/label/case_<i>.nii.gz   (i from 1, no padding)
      <root>/part2/…                        (Part 2 presumed the same: unconfirmed)

  Labels binary (``> 0`` is lesion). Intensities: COPLE-Net expects lung-cropped images already
  normalized to [0, 1] with window width/level 1500/−650; give ``window=(level, width)`` to apply
  that window to Hounsfield units instead (e.g. ``(-650, 1500)``).
* ``layout="png"`` — [MC]'s converted slices (what the paper's code reads)::

      <root>/part1/image/case_<i>/<slice>.png   <root>/part1/label/case_<i>/<slice>.png

  8-bit grey images, masks 0/255 (``> 0`` is lesion).

Images become ``pixel/255 − 0.5`` (PNG, as [MC]) or ``value − 0.5`` (NIfTI, values in [0, 1]
after the optional window), one channel. Only slices with lesion are kept (``lesion_only``, as
[MC]). Splits by case number, as in the paper: Part 1 cases 1–40 / 41–55 / 56–70, Part 2 1–30 /
31–40 / 41–50 (train / validation / test).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_option
from ._io import import_nibabel, natural_key, read_png

__all__ = ["CovidLesionSlices", "SPLITS", "LAYOUTS"]

#: Part → split → inclusive case-number range (the paper's fixed splits).
SPLITS: Mapping[int, Mapping[str, tuple[int, int]]] = {
    1: {"train": (1, 40), "val": (41, 55), "test": (56, 70), "all": (1, 10**9)},
    2: {"train": (1, 30), "val": (31, 40), "test": (41, 50), "all": (1, 10**9)},
}
LAYOUTS = ("auto", "nifti", "png")


def _read_grey(path: Path) -> np.ndarray:
    arr = read_png(path)
    return arr[..., 0] if arr.ndim == 3 else arr


def _resize(arr: np.ndarray, size: tuple[int, int] | None, *, nearest: bool) -> np.ndarray:
    if size is None or arr.shape == tuple(size):
        return arr
    from PIL import Image

    h, w = size
    image = Image.fromarray(arr.astype(np.uint8) if nearest else arr.astype(np.float32))
    return np.asarray(image.resize((w, h), resample=Image.NEAREST if nearest else Image.BILINEAR))


class CovidLesionSlices(Dataset):
    r"""2-D slices of the UESTC COVID-19 CT set with binary lesion labels.

    Parameters
    ----------
    root : str or Path
        The folder holding ``part1/`` and/or ``part2/``.
    part : {1, 2}
        Part 1 (coarse, non-expert labels) or Part 2 (fine, expert labels).
    split : {"train", "val", "test", "all"}
        Case range of :data:`SPLITS` (or of ``splits``).
    layout : {"auto", "nifti", "png"}
        ``auto`` picks ``png`` when ``image/`` holds ``case_<i>/`` folders, else ``nifti``.
    lesion_only : bool
        Keep only slices whose label has a lesion pixel (the paper's code does).
    size : (int, int), optional
        Resize slices to ``(H, W)`` (bilinear / nearest); [MC] uses ``(224, 336)``.
    window : (float, float), optional
        NIfTI only: ``(level, width)`` of an intensity window mapped to [0, 1].
    slice_axis : int
        NIfTI only: the axis of the volume along which slices are taken (default: last).
    image_dir, label_dir, case_pattern, nifti_suffixes, png_suffix : str
        Names of the layout (defaults of DATASETS.md); ``case_pattern`` is a regular expression
        whose first group is the case number.
    splits : mapping, optional
        Split name → inclusive case range, replacing this part's entry of :data:`SPLITS`.

    Notes
    -----
    ``__getitem__`` returns a float32 image ``(1, H, W)`` and int64 labels ``(H, W)`` in {0, 1}.
    Files whose names do not match the layout are ignored; ``skipped`` lists the slices left out
    for having no lesion. Pillow and nibabel are imported when a file is read.

    Raises
    ------
    ValueError
        If the part folder or ``image/``/``label/`` is missing, an image has no label (the
        message names the expected file), shapes differ, no slice is selected, or an option is
        unknown.
    """

    def __init__(self, root: str | Path, *, part: int = 1, split: str = "train", layout: str = "auto",
                 lesion_only: bool = True, size: tuple[int, int] | None = None,
                 window: tuple[float, float] | None = None, slice_axis: int = -1, image_dir: str = "image",
                 label_dir: str = "label", case_pattern: str = r"case_(\d+)",
                 nifti_suffixes: tuple[str, ...] = (".nii.gz", ".nii"), png_suffix: str = ".png",
                 splits: Mapping[str, tuple[int, int]] | None = None) -> None:
        self.part = check_option("part", part, (1, 2))
        self.splits = dict(SPLITS[part] if splits is None else splits)
        self.split = check_option("split", split, tuple(self.splits))
        check_option("layout", layout, LAYOUTS)
        if size is not None:
            if len(size) != 2 or any(not isinstance(s, (int, np.integer)) or s < 1 for s in size):
                raise ValueError(f"size: expected a pair (H, W) of positive integers or None, got {size!r}")
            size = (int(size[0]), int(size[1]))
        if window is not None:
            level, width = (float(w) for w in window)
            if not width > 0:
                raise ValueError(f"window: expected (level, width) with width > 0, got {window!r}")
            window = (level, width)
        self.size, self.window, self.slice_axis, self.lesion_only = size, window, slice_axis, bool(lesion_only)
        self.num_classes = 2
        root = Path(root)
        base = root / f"part{part}"
        layout_text = (f"{base}/{image_dir}/case_<i>.nii.gz + {base}/{label_dir}/case_<i>.nii.gz, or "
                       f"{base}/{image_dir}/case_<i>/<slice>{png_suffix} + {base}/{label_dir}/case_<i>/<slice>{png_suffix}")
        if not root.is_dir():
            raise ValueError(f"root: expected an existing folder with the layout {layout_text}, got {str(root)!r} (not found)")
        idir, ldir = base / image_dir, base / label_dir
        for d in (base, idir, ldir):
            if not d.is_dir():
                raise ValueError(f"root {str(root)!r}: expected the layout {layout_text}, got no folder {str(d)!r}")
        regex = re.compile(case_pattern)
        lo, hi = self.splits[self.split]

        def case_number(name: str) -> int | None:
            m = regex.fullmatch(name)
            return int(m.group(1)) if m else None

        if layout == "auto":
            layout = "png" if any(p.is_dir() and case_number(p.name) is not None for p in idir.iterdir()) else "nifti"
        self.layout = layout
        self.items: list[tuple] = []  # png: (image path, label path); nifti: (image path, label path, slice)
        self.skipped: list[str] = []
        if layout == "png":
            cases = sorted((p for p in idir.iterdir() if p.is_dir() and case_number(p.name) is not None),
                           key=lambda p: case_number(p.name))
            for case in cases:
                if not lo <= case_number(case.name) <= hi:
                    continue
                for img in sorted((p for p in case.iterdir() if p.suffix.lower() == png_suffix), key=natural_key):
                    lab = ldir / case.name / img.name
                    if not lab.is_file():
                        raise ValueError(f"{img}: expected its label {lab} (same case folder and file name), not found")
                    if self.lesion_only and not (_read_grey(lab) > 0).any():
                        self.skipped.append(str(img))
                        continue
                    self.items.append((img, lab))
        else:
            def stem(p: Path) -> str | None:
                for suffix in nifti_suffixes:
                    if p.name.endswith(suffix):
                        return p.name[: -len(suffix)]
                return None

            vols = sorted((p for p in idir.iterdir() if p.is_file() and stem(p) is not None
                           and case_number(stem(p)) is not None), key=lambda p: case_number(stem(p)))
            for img in vols:
                if not lo <= case_number(stem(img)) <= hi:
                    continue
                labs = [ldir / (stem(img) + s) for s in nifti_suffixes]
                lab = next((p for p in labs if p.is_file()), None)
                if lab is None:
                    raise ValueError(f"{img}: expected its label {labs[0]} (or {labs[1].name}), not found")
                nib = import_nibabel("layout 'nifti'")
                label = np.asarray(nib.load(str(lab)).dataobj)
                shape = nib.load(str(img)).shape
                if tuple(shape) != label.shape:
                    raise ValueError(f"{lab}: expected the image's shape {tuple(shape)}, got {label.shape}")
                has = (np.moveaxis(label, slice_axis, 0) > 0).reshape(label.shape[slice_axis], -1).any(1)
                for z in range(label.shape[slice_axis]):
                    if self.lesion_only and not has[z]:
                        self.skipped.append(f"{img}[slice {z}]")
                        continue
                    self.items.append((img, lab, z))
        if not self.items:
            raise ValueError(f"root {str(root)!r}: expected {'lesion ' if self.lesion_only else ''}slices of cases "
                             f"{lo}-{hi} (part {part}, split {split!r}) in the layout {layout_text}, found none")
        self._cache: tuple[Path, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def _volume(self, img: Path, lab: Path) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is None or self._cache[0] != img:
            nib = import_nibabel("layout 'nifti'")
            image = np.moveaxis(np.asarray(nib.load(str(img)).dataobj, dtype=np.float32), self.slice_axis, 0)
            label = np.moveaxis(np.asarray(nib.load(str(lab)).dataobj), self.slice_axis, 0)
            self._cache = (img, image, label)
        return self._cache[1], self._cache[2]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.items[index]
        if self.layout == "png":
            img, lab = item
            image = _read_grey(img).astype(np.float32) / 255.0
            label = _read_grey(lab) > 0
            if image.shape != label.shape:
                raise ValueError(f"{lab}: expected the image's shape {image.shape}, got {label.shape}")
        else:
            img, lab, z = item
            vol, lvol = self._volume(img, lab)
            image, label = vol[z], lvol[z] > 0
            if self.window is not None:
                level, width = self.window
                image = np.clip((image - (level - width / 2)) / width, 0.0, 1.0)
        image = _resize(image.astype(np.float32), self.size, nearest=False) - 0.5
        label = _resize(label.astype(np.uint8), self.size, nearest=True).astype(np.int64)
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)[None]), torch.from_numpy(label)
