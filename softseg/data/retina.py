r"""Loaders of the SAUNA paper's five retinal data sets, in their distributed layouts, and a Dataset.

Local paths only (nothing is downloaded). Layouts and defaults follow ``DATASETS.md`` §1–2; every
folder name, extension and image-to-label naming rule is a parameter.

* :func:`fives_pairs` — FIVES: ``<root>/{train,test}/Original/<n>_<C>.png`` with the label of the
  same name in ``Ground truth`` (also accepted: the spellings ``Groud truth`` and
  ``GroundTruth``); 2048 × 2048 RGB, labels 0/255 (3 identical channels).
* :func:`drive_pairs` — DRIVE: ``<root>/{training,test}/images/NN_<split>.tif`` with
  ``1st_manual/NN_manual1.gif`` (565 × 584, GIF 0/255; the second annotator's ``2nd_manual`` is
  never used).
* :func:`stare_pairs` — STARE: ``stare-images/im0001.ppm`` (or ``.ppm.gz``, or the folder
  ``images/`` as the SAUNA authors name it) with ``labels-ah/im0001.ah.ppm`` (Hoover's
  annotator; ``labels-vk`` is the second annotator).
* :func:`chase_pairs` — CHASE_DB1: one flat folder, ``Image_01L.jpg`` with
  ``Image_01L_1stHO.png`` (the ``_2ndHO`` label of the second observer is never taken).
* :func:`hrf_pairs` — HRF: ``images/NN_{h,g,dr}.jpg`` (DR images have an upper-case ``.JPG``)
  with ``manual1/NN_x.tif``; FOV masks ``mask/NN_x_mask.tif`` are returned when present.

Each ``*_pairs`` function returns a list of :class:`RetinaSample` sorted by id; images without a
label (and files that do not match the image pattern) are skipped; a missing folder or a folder
without any pair raises :class:`ValueError` naming the expected files. :func:`read_image` /
:func:`read_mask` read them with Pillow (imported inside, so :mod:`softseg` imports without it),
and :class:`RetinaDataset` resizes to ``size`` × ``size`` (512, the paper's low-resolution
setting) and yields ``(image, target)`` with the targets of :func:`make_target` (hard masks,
SAUNA maps, the SAUNA ablations' single terms, LS, BLS).
"""

from __future__ import annotations

import gzip
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_option

__all__ = [
    "RetinaSample",
    "TARGETS",
    "DATASETS",
    "FIVES_MEAN",
    "FIVES_STD",
    "find_pairs",
    "fives_pairs",
    "drive_pairs",
    "stare_pairs",
    "chase_pairs",
    "hrf_pairs",
    "read_image",
    "read_mask",
    "make_target",
    "RetinaDataset",
    "fives_dataset",
]

#: Target kinds of :func:`make_target` (and of the datasets that use it).
TARGETS = ("mask", "signed", "sauna", "sauna_boundary", "sauna_thickness", "ls", "bls")

#: Normalization of the SAUNA paper (Sect. 4.1: mean [0.07, 0.15, 0.34], std [0.2, 0.3, 0.4],
#: "calculated from the training set of FIVES"). The authors read PNGs with OpenCV, i.e. in BGR
#: order; the red channel of a fundus photograph is its brightest, so these are read as B, G, R
#: and reordered to the RGB order of Pillow here (a decision: the paper does not name the order).
FIVES_MEAN = (0.34, 0.15, 0.07)
FIVES_STD = (0.4, 0.3, 0.2)


@dataclass(frozen=True)
class RetinaSample:
    """One image of a retinal data set: ``id``, ``image`` and ``label`` paths, optional ``fov`` mask path."""

    id: str
    image: Path
    label: Path
    fov: Path | None = None


def _root(name: str, root) -> Path:
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a path (str or os.PathLike), got {type(root).__name__}")
    path = Path(root)
    if not path.is_dir():
        raise ValueError(f"{name}: expected an existing folder, got {str(path)!r}")
    return path


def find_pairs(image_dir, label_dir, *, image_pattern: str, label_name: str, fov_dir=None,
               fov_name: str | None = None, what: str = "data set") -> list[RetinaSample]:
    r"""Pair images with labels by a naming rule.

    Parameters
    ----------
    image_dir, label_dir : path
        Folders of the images and of the labels (may be the same folder).
    image_pattern : str
        Regular expression matched (``re.fullmatch``) against image file names; its named group
        ``id`` identifies the sample. Non-matching files are ignored.
    label_name : str
        Label file name as a format string of the groups of ``image_pattern``, e.g.
        ``"{id}_manual1.gif"``.
    fov_dir, fov_name : optional
        Same for field-of-view masks (returned when the file exists).
    what : str
        Name of the data set for error messages.

    Returns
    -------
    list of RetinaSample
        Sorted by ``id``; images whose label is missing are skipped.

    Raises
    ------
    ValueError
        If a folder is missing, or no image has its label (the message gives the pattern and
        the expected label names).
    """
    image_dir, label_dir = Path(image_dir), Path(label_dir)
    for d, role in ((image_dir, "images"), (label_dir, "labels")):
        if not d.is_dir():
            raise ValueError(f"{what}: expected a folder of {role} at {str(d)!r}, which does not exist")
    regex = re.compile(image_pattern)
    samples = []
    for path in sorted(image_dir.iterdir()):
        match = regex.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        groups = match.groupdict()
        label = label_dir / label_name.format(**groups)
        if not label.is_file():
            continue
        fov = None
        if fov_dir is not None and fov_name is not None:
            cand = Path(fov_dir) / fov_name.format(**groups)
            fov = cand if cand.is_file() else None
        samples.append(RetinaSample(groups["id"], path, label, fov))
    if not samples:
        example = label_name.replace("{id}", "<id>")
        raise ValueError(f"{what}: expected images matching {image_pattern!r} in {str(image_dir)!r} with "
                         f"labels named {example!r} in {str(label_dir)!r}, found no such pair")
    return sorted(samples, key=lambda s: s.id)


def fives_pairs(root, split: str = "train", *, image_dir: str = "Original",
                label_dirs: Sequence[str] = ("Ground truth", "Groud truth", "GroundTruth"),
                image_pattern: str = r"(?P<id>\d+_[ADGN])\.png") -> list[RetinaSample]:
    """FIVES pairs of ``split`` (``"train"`` or ``"test"``): ``<root>/<split>/Original/<n>_<C>.png``
    and the same name under the first existing folder of ``label_dirs``."""
    base = _root("root", root)
    check_option("split", split, ("train", "test"))
    folder = base / split
    found = [folder / d for d in label_dirs if (folder / d).is_dir()]
    if not found:
        raise ValueError(f"FIVES: expected a label folder {' or '.join(repr(d) for d in label_dirs)} in "
                         f"{str(folder)!r} (layout <root>/{split}/{image_dir}/<n>_<C>.png + "
                         f"<root>/{split}/Ground truth/<n>_<C>.png)")
    return find_pairs(folder / image_dir, found[0], image_pattern=image_pattern, label_name="{id}.png", what="FIVES")


def drive_pairs(root, split: str = "test", *, image_dir: str = "images", label_dir: str = "1st_manual",
                fov_dir: str = "mask", image_pattern: str = r"(?P<id>\d{2})_(?P<split>training|test)\.tif",
                label_name: str = "{id}_manual1.gif", fov_name: str = "{id}_{split}_mask.gif") -> list[RetinaSample]:
    """DRIVE pairs of ``split`` (``"training"`` or ``"test"``): ``<root>/<split>/images/NN_<split>.tif``
    with ``1st_manual/NN_manual1.gif`` (and the FOV mask ``mask/NN_<split>_mask.gif``)."""
    base = _root("root", root)
    check_option("split", split, ("training", "test"))
    folder = base / split
    return find_pairs(folder / image_dir, folder / label_dir, image_pattern=image_pattern, label_name=label_name,
                      fov_dir=folder / fov_dir, fov_name=fov_name, what="DRIVE")


def stare_pairs(root, *, image_dirs: Sequence[str] = ("stare-images", "images"), label_dir: str = "labels-ah",
                image_pattern: str = r"(?P<id>im\d{4})\.ppm(\.gz)?",
                label_name: str = "{id}.ah.ppm") -> list[RetinaSample]:
    """STARE pairs: ``<root>/stare-images/im0001.ppm`` (or ``.ppm.gz``; folder ``images/`` also
    accepted) with ``labels-ah/im0001.ah.ppm``."""
    base = _root("root", root)
    found = [base / d for d in image_dirs if (base / d).is_dir()]
    if not found:
        raise ValueError(f"STARE: expected an image folder {' or '.join(repr(d) for d in image_dirs)} in "
                         f"{str(base)!r} (im0001.ppm ... with labels {label_dir}/im0001.ah.ppm)")
    return find_pairs(found[0], base / label_dir, image_pattern=image_pattern, label_name=label_name, what="STARE")


def chase_pairs(root, *, image_pattern: str = r"(?P<id>Image_\d{2}[LR])\.jpg",
                label_name: str = "{id}_1stHO.png") -> list[RetinaSample]:
    """CHASE_DB1 pairs: ``<root>/Image_01L.jpg`` with ``Image_01L_1stHO.png`` (flat folder)."""
    base = _root("root", root)
    return find_pairs(base, base, image_pattern=image_pattern, label_name=label_name, what="CHASE_DB1")


def hrf_pairs(root, *, image_dir: str = "images", label_dir: str = "manual1", fov_dir: str = "mask",
              image_pattern: str = r"(?P<id>\d{2}_(h|g|dr))\.(jpg|JPG)", label_name: str = "{id}.tif",
              fov_name: str = "{id}_mask.tif") -> list[RetinaSample]:
    """HRF pairs: ``<root>/images/NN_{h,g,dr}.jpg`` (``.JPG`` for DR) with ``manual1/NN_x.tif``
    (and ``mask/NN_x_mask.tif``)."""
    base = _root("root", root)
    return find_pairs(base / image_dir, base / label_dir, image_pattern=image_pattern, label_name=label_name,
                      fov_dir=base / fov_dir, fov_name=fov_name, what="HRF")


#: The five loaders by name (for ``--data`` folders holding several data sets).
DATASETS = {"fives": fives_pairs, "drive": drive_pairs, "stare": stare_pairs, "chase": chase_pairs, "hrf": hrf_pairs}


def _open(path: Path):
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() == ".gz":
        with gzip.open(path, "rb") as fh:
            return Image.open(io.BytesIO(fh.read()))
    return Image.open(path)


def read_image(path) -> torch.Tensor:
    """An RGB image as float32 ``(3, H, W)`` in [0, 1] (Pillow; grey and palette images are converted)."""
    with _open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def read_mask(path, *, threshold: int = 128) -> torch.Tensor:
    """A label image as a bool mask ``(H, W)``: grey level (first channel of RGB, palette GIFs
    converted to grey) ``>= threshold``. Labels are 0/255 in all five data sets."""
    with _open(path) as im:
        if im.mode in ("RGB", "RGBA"):
            arr = np.asarray(im)[..., 0]
        else:
            arr = np.asarray(im.convert("L"))
    return torch.from_numpy(arr >= threshold)


def make_target(mask, kind: str = "mask", *, eps: float = 0.1, width: int = 2, window: str = "paper",
                thickness: str = "foreground") -> torch.Tensor:
    r"""A training target ``(1, H, W)`` float32 from a binary mask ``(H, W)``.

    Parameters
    ----------
    mask : numpy.ndarray or torch.Tensor
        Binary mask ``(H, W)``.
    kind : str
        ``"mask"`` (0/1), ``"signed"`` (:math:`2y - 1`, the hard label on :math:`[-1, 1]`),
        ``"sauna"`` (:func:`softseg.labels.sauna_transform`, eqs. 1–5), ``"sauna_boundary"``
        (:math:`y^B` alone, eq. 3: the ablation "without thickness"), ``"sauna_thickness"``
        (:math:`y^T` alone, eq. 4: "without distance"), ``"ls"`` and ``"bls"``
        (:func:`softseg.labels.label_smoothing` / :func:`~softseg.labels.boundary_label_smoothing`).
    eps, width : float, int
        Strength of LS/BLS and the band half-width of BLS (defaults 0.1 and 2, the SAUNA
        authors' 5 × 5 band; the paper prints neither).
    window : {"paper", "half"}
        Pooling window of the SAUNA thickness (eq. 2).
    thickness : {"foreground", "same-class"}
        Reading of eq. 2 for the SAUNA targets (:func:`softseg.labels.sauna_transform`):
        the foreground distances max-pooled (default, as the authors' released code) or the
        pixel's own class.

    Notes
    -----
    For ``"sauna_thickness"`` the map is 0 on the thickest vessels (:math:`t = m`), so its
    sign does not recover the mask; evaluate such models against the hard mask.
    """
    from ..labels import boundary_label_smoothing, label_smoothing, sauna_terms, sauna_transform

    check_option("kind", kind, TARGETS)
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).detach().cpu()
    if m.ndim != 2:
        raise ValueError(f"mask: expected shape (H, W), got {tuple(m.shape)}")
    m = m.bool() if m.dtype == torch.bool else m
    if kind == "mask":
        out = m.float()
    elif kind == "signed":
        out = 2 * m.float() - 1
    elif kind == "sauna":
        out = sauna_transform(m, window=window, thickness=thickness)
    elif kind == "ls":
        out = label_smoothing(m, eps)
    elif kind == "bls":
        out = boundary_label_smoothing(m, eps, width)
    else:
        mb = m.bool()
        if not mb.any() or mb.all():       # one class only: the certain label, as sauna_transform
            out = 2 * mb.float() - 1
        else:
            terms = sauna_terms(mb.numpy(), window=window, thickness=thickness)
            key = "boundary" if kind == "sauna_boundary" else "thickness_term"
            out = torch.from_numpy(terms[key].astype(np.float32))
    return out.float().reshape(1, *out.shape[-2:])


def _resize(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    x = x[None].float()
    kwargs = {"antialias": True, "align_corners": False} if mode == "bilinear" else {}
    return torch.nn.functional.interpolate(x, size=(size, size), mode=mode, **kwargs)[0]


class RetinaDataset(Dataset):
    r"""Images of a retinal data set resized to ``size`` × ``size``, with a training target.

    Parameters
    ----------
    samples : sequence of RetinaSample
        From one of the ``*_pairs`` loaders.
    size : int, default 512
        Side after resizing (the paper's low-resolution setting: the whole image resized to
        512 × 512, aspect ratio not kept).
    target : str, default "mask"
        A kind of :data:`TARGETS`, computed on the resized mask.
    mean, std : sequence of 3 floats
        Per-channel normalization (default: the paper's FIVES statistics, RGB order).
    mask_threshold : float, default 0.5
        The label is resized as a float map (bilinear, antialiased) and thresholded here.
    target_options : dict, optional
        Keywords of :func:`make_target`.
    cache : bool, default True
        Keep each resized image (as ``uint8``, 0.75 MiB at 512) and mask after the first read;
        :meth:`precompute` reads them all (in threads) before DataLoader workers fork, so that
        the workers share them instead of decoding 2048 × 2048 PNGs every epoch.

    ``ds[i]`` is ``(image (3, size, size), target (1, size, size))``; ``ds.mask(i)`` is the hard
    mask ``(size, size)`` (bool) for evaluation.
    """

    def __init__(self, samples: Sequence[RetinaSample], size: int = 512, *, target: str = "mask",
                 mean: Sequence[float] = FIVES_MEAN, std: Sequence[float] = FIVES_STD,
                 mask_threshold: float = 0.5, target_options: dict | None = None, cache: bool = True) -> None:
        self.samples = list(samples)
        if not self.samples or not all(isinstance(s, RetinaSample) for s in self.samples):
            raise ValueError("samples: expected a non-empty sequence of RetinaSample (from a *_pairs loader)")
        if isinstance(size, bool) or not isinstance(size, int) or size < 8:
            raise ValueError(f"size: expected an integer >= 8, got {size!r}")
        self.size = size
        self.target = check_option("target", target, TARGETS)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        if self.mean.numel() != 3 or self.std.numel() != 3 or not bool((self.std > 0).all()):
            raise ValueError(f"mean, std: expected 3 values each, std > 0, got {mean!r}, {std!r}")
        self.mask_threshold = float(mask_threshold)
        self.target_options = dict(target_options or {})
        self.cache = bool(cache)
        self._resized: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def with_target(self, target: str, target_options: dict | None = None) -> "RetinaDataset":
        """The same samples and preprocessing with another target kind."""
        other = RetinaDataset(self.samples, self.size, target=target, mean=tuple(self.mean.flatten().tolist()),
                              std=tuple(self.std.flatten().tolist()), mask_threshold=self.mask_threshold,
                              target_options=target_options, cache=self.cache)
        other._resized = self._resized                      # shared cache of resized images and masks
        return other

    def precompute(self, progress: bool = False, workers: int = 8) -> "RetinaDataset":
        """Read and resize every image and mask now (threads; Pillow decodes without the GIL)."""
        from concurrent.futures import ThreadPoolExecutor

        from tqdm import tqdm

        if self.cache:
            with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
                list(tqdm(pool.map(self._load, range(len(self))), total=len(self), desc="resizing",
                          disable=not progress))
        return self

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        hit = self._resized.get(index)
        if hit is not None:
            return hit
        sample = self.samples[index]
        img = _resize(read_image(sample.image), self.size, "bilinear").clamp(0, 1)
        img8 = (img * 255).round().to(torch.uint8)
        mask = _resize(read_mask(sample.label).float()[None], self.size, "bilinear")[0] >= self.mask_threshold
        if self.cache:
            self._resized[index] = (img8, mask)
        return img8, mask

    def mask(self, index: int) -> torch.Tensor:
        """The resized hard mask ``(size, size)`` (bool) of item ``index``."""
        return self._load(index)[1]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        img8, mask = self._load(index)
        img = (img8.float() / 255 - self.mean) / self.std
        return img, make_target(mask, self.target, **self.target_options)


def fives_dataset(root, split: str = "train", size: int = 512, target: str = "mask", **kwargs) -> RetinaDataset:
    """:class:`RetinaDataset` of a FIVES split (for training configs: ``data.name:
    softseg.data.retina:fives_dataset``, ``root: PATH``); ``kwargs`` go to :class:`RetinaDataset`."""
    return RetinaDataset(fives_pairs(root, split), size, target=target, **kwargs)
