r"""EndoVis 2017 robotic instrument segmentation (Allan et al. 2019), as distributed.

The layout (``shared/DATASETS.md`` §7, sources [MC] yutao1008/margin_calibration and [TER]
ternaus/robot-surgery-segmentation)::

    <root>/instrument_dataset_1 … _8/          (root may also be the folder holding training/)
        left_frames/frame000.png … frame224.png            RGB, W×H 1920×1080
        ground_truth/<instrument folder>/frame000.png …     one mask per instrument

Each instrument mask holds part codes 10 (shaft), 20 (wrist), 30 (claspers) and, in [MC]'s
reading, 40 (probe); masks may be 1- or 3-channel (channel 0 is used). Instrument folders differ
per video and some lack the ``_labels`` suffix, so they are found by listing ``ground_truth/``
(the derived folders ``binary_labels``, ``parts_labels``, ``type_labels`` that [MC]'s converter
writes are ignored). Targets, following [MC] (the paper's code):

* ``task="binary"``: 1 where any instrument mask is non-zero (2 classes);
* ``task="parts"``: the sum of the instrument masks, sums above 40 (overlaps) set to 0, divided
  by 10: 0 background, 1 shaft, 2 wrist, 3 claspers, 4 probe (5 classes);
* ``task="type"``: the instrument type of the folder name (1 Bipolar_Forceps, 2 Prograsp_Forceps,
  3 Large_Needle_Driver, 4 Vessel_Sealer, 5 Grasping_Retractor, 6 Monopolar_Curved_Scissors,
  7 Other; 8 classes), later folders overwriting earlier ones where masks overlap.

Split by frame index within each video, as in the paper: frames 0–149 train, 150–174
validation, 175–224 test (1200/200/400 frames over the 8 videos). [TER] instead excludes
``Other`` from the binary and parts targets: pass ``exclude=("Other",)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_option
from ._io import read_png

__all__ = ["EndoVisInstruments", "SPLITS", "TASKS", "TYPE_NAMES", "PART_CODES", "DERIVED_FOLDERS"]

#: Frame-index ranges (inclusive) of the paper's sequential split.
SPLITS: Mapping[str, tuple[int, int]] = {"train": (0, 149), "val": (150, 174), "test": (175, 224), "all": (0, 10**9)}
#: Tasks and their numbers of classes (background included).
TASKS: Mapping[str, int] = {"binary": 2, "parts": 5, "type": 8}
#: Instrument types, class 1 … 7, matched as substrings of the folder names (case-insensitive).
TYPE_NAMES: tuple[str, ...] = ("Bipolar_Forceps", "Prograsp_Forceps", "Large_Needle_Driver", "Vessel_Sealer",
                               "Grasping_Retractor", "Monopolar_Curved_Scissors", "Other")
#: Part codes of the masks and their classes ([TER]: 10/20/30; [MC]: also 40 = probe).
PART_CODES: Mapping[int, int] = {0: 0, 10: 1, 20: 2, 30: 3, 40: 4}
#: Folders of ``ground_truth/`` written by [MC]'s converter, not instrument masks.
DERIVED_FOLDERS: tuple[str, ...] = ("binary_labels", "parts_labels", "type_labels")


def _resize(arr: np.ndarray, size: tuple[int, int] | None, *, nearest: bool) -> np.ndarray:
    if size is None or arr.shape[:2] == tuple(size):
        return arr
    from PIL import Image

    h, w = size
    resample = Image.NEAREST if nearest else Image.BILINEAR
    return np.asarray(Image.fromarray(arr).resize((w, h), resample=resample))


class EndoVisInstruments(Dataset):
    r"""EndoVis 2017 frames with binary, part or type labels, split by frame index.

    Parameters
    ----------
    root : str or Path
        The folder holding ``instrument_dataset_*`` (or its parent holding ``training/``).
    split : {"train", "val", "test", "all"}
        Frame-index range of :data:`SPLITS` (or the mapping given as ``splits``).
    task : {"binary", "parts", "type"}
        Target kind (see the module docstring).
    datasets : sequence of int, optional
        Video numbers to use (default: every ``instrument_dataset_<k>`` found).
    size : (int, int), optional
        Resize to ``(H, W)`` (bilinear for frames, nearest for labels); default: keep.
    exclude : sequence of str
        Instrument folders whose name contains one of these (case-insensitive) are left out of
        the targets, e.g. ``("Other",)`` as [TER] does.
    frames_dir, gt_dir, dataset_glob, frame_pattern : str
        Names of the layout: ``left_frames``, ``ground_truth``, ``instrument_dataset_*`` and the
        regular expression of frame files (its first group is the frame index).
    splits : mapping, optional
        Split name → inclusive frame-index range, replacing :data:`SPLITS`.
    part_codes : mapping, optional
        Mask value (after summing and zeroing sums above ``max(part_codes)``) → class.

    Notes
    -----
    ``__getitem__`` returns a float32 image ``(3, H, W)`` in [0, 1] and int64 labels ``(H, W)``.
    A frame that has no mask in *any* instrument folder (e.g. a frame of the challenge's test set
    copied beside the training frames) is skipped and counted in ``skipped``; a frame with masks
    in some folders only is an error. Files read lazily with Pillow (imported when reading).

    Raises
    ------
    ValueError
        If ``root`` does not exist or holds no ``instrument_dataset_*`` folder with
        ``left_frames/`` and ``ground_truth/``, a frame lacks a mask in some instrument folder,
        a split selects no frame, or an option is unknown.
    """

    def __init__(self, root: str | Path, *, split: str = "train", task: str = "parts",
                 datasets: Sequence[int] | None = None, size: tuple[int, int] | None = None,
                 exclude: Sequence[str] = (), frames_dir: str = "left_frames", gt_dir: str = "ground_truth",
                 dataset_glob: str = "instrument_dataset_*", frame_pattern: str = r"frame(\d+)\.png",
                 splits: Mapping[str, tuple[int, int]] | None = None,
                 part_codes: Mapping[int, int] | None = None) -> None:
        self.splits = dict(SPLITS if splits is None else splits)
        self.split = check_option("split", split, tuple(self.splits))
        self.task = check_option("task", task, tuple(TASKS))
        self.num_classes = TASKS[task]
        self.part_codes = dict(PART_CODES if part_codes is None else part_codes)
        if size is not None:
            if len(size) != 2 or any(not isinstance(s, (int, np.integer)) or s < 1 for s in size):
                raise ValueError(f"size: expected a pair (H, W) of positive integers or None, got {size!r}")
            size = (int(size[0]), int(size[1]))
        self.size = size
        self.exclude = tuple(e.lower() for e in exclude)
        root = Path(root)
        layout = f"{root}/{dataset_glob}/{frames_dir}/frameNNN.png and .../{gt_dir}/<instrument>/frameNNN.png"
        if not root.is_dir():
            raise ValueError(f"root: expected an existing folder with the layout {layout}, got {str(root)!r} (not found)")
        if not any(root.glob(dataset_glob)) and (root / "training").is_dir():
            root = root / "training"
        self.root = root
        folders = sorted(p for p in root.glob(dataset_glob) if p.is_dir())
        if datasets is not None:
            wanted = {int(d) for d in datasets}
            numbered = ((p, re.search(r"(\d+)$", p.name)) for p in folders)
            folders = [p for p, m in numbered if m and int(m.group(1)) in wanted]
        if not folders:
            raise ValueError(f"root {str(root)!r}: expected folders {dataset_glob} with the layout {layout}, found none "
                             f"(entries: {sorted(p.name for p in root.iterdir())[:10]})")
        regex = re.compile(frame_pattern + r"$")
        lo, hi = self.splits[self.split]
        self.items: list[tuple[Path, list[tuple[str, Path]]]] = []
        self.skipped: list[Path] = []
        for folder in folders:
            fdir, gdir = folder / frames_dir, folder / gt_dir
            for d in (fdir, gdir):
                if not d.is_dir():
                    raise ValueError(f"{folder}: expected the layout {layout}, got no folder {d.name!r} "
                                     f"(found: {sorted(p.name for p in folder.iterdir())})")
            instruments = sorted(p for p in gdir.iterdir() if p.is_dir() and p.name not in DERIVED_FOLDERS)
            if not instruments:
                raise ValueError(f"{gdir}: expected one folder of masks per instrument, found none")
            for frame in sorted(fdir.iterdir()):
                m = regex.match(frame.name)
                if not m or not lo <= int(m.group(1)) <= hi:
                    continue
                masks = [(inst.name, inst / frame.name) for inst in instruments]
                present = [p.is_file() for _, p in masks]
                if not any(present):
                    self.skipped.append(frame)
                    continue
                if not all(present):
                    missing = [str(p) for (_, p), ok in zip(masks, present) if not ok]
                    raise ValueError(f"{frame}: expected a mask in every instrument folder, missing {missing}")
                self.items.append((frame, masks))
        if not self.items:
            raise ValueError(f"root {str(root)!r}: expected frames with index in [{lo}, {hi}] (split {split!r}) "
                             f"matching {frames_dir}/{frame_pattern} with masks in {gt_dir}/<instrument>/, found none")

    def __len__(self) -> int:
        return len(self.items)

    def _type_of(self, name: str) -> int:
        low = name.lower()
        for k, t in enumerate(TYPE_NAMES, start=1):
            if t.lower() in low:
                return k
        raise ValueError(f"ground-truth folder {name!r}: expected a name containing one of {TYPE_NAMES}")

    def labels_of(self, masks: Sequence[tuple[str, Path]]) -> np.ndarray:
        """The ``(H, W)`` int64 target of one frame from its instrument masks (native size)."""
        stack, names = [], []
        for name, path in masks:
            if any(e in name.lower() for e in self.exclude):
                continue
            arr = read_png(path)
            stack.append(arr[..., 0] if arr.ndim == 3 else arr)
            names.append(name)
        if not stack:
            first = read_png(masks[0][1])
            return np.zeros(first.shape[:2], dtype=np.int64)
        m = np.stack(stack).astype(np.int64)  # (instruments, H, W)
        if self.task == "binary":
            return (m > 0).any(0).astype(np.int64)
        if self.task == "type":
            types = np.array([self._type_of(n) for n in names])[:, None, None]
            idx = np.where(m > 0, np.arange(1, len(names) + 1)[:, None, None], 0).max(0)  # last folder on top
            return np.where(idx > 0, types[np.clip(idx - 1, 0, None), 0, 0], 0)
        total = m.sum(0)
        total[total > max(self.part_codes)] = 0  # overlapping instruments: [MC] zeroes sums above 40
        lut = np.zeros(max(self.part_codes) + 1, dtype=np.int64)
        known = np.zeros_like(lut, dtype=bool)
        for code, cls in self.part_codes.items():
            lut[code], known[code] = cls, True
        if not known[total].all():
            bad = sorted(set(np.unique(total[~known[total]]).tolist()))
            raise ValueError(f"{masks[0][1].parent.parent}: expected part codes {sorted(self.part_codes)}, got {bad}")
        return lut[total]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        frame, masks = self.items[index]
        image = read_png(frame)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        image = _resize(np.ascontiguousarray(image[..., :3]), self.size, nearest=False)
        labels = self.labels_of(masks)
        if labels.shape != image.shape[:2] and self.size is None:
            raise ValueError(f"{frame}: expected masks of the frame's size {image.shape[:2]}, got {labels.shape}")
        labels = _resize(labels.astype(np.uint8), self.size, nearest=True).astype(np.int64)
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0)
        return x, torch.from_numpy(np.ascontiguousarray(labels))
