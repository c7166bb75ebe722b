r"""Synthetic imbalanced multi-class scenes: a large background, a few common and rare small classes.

*Synthetic stand-in* — not a medical data set. It mimics the class imbalance of the paper's
multi-class task (instrument parts on a large background) so that the margin-calibration
experiment (:mod:`softseg.experiments.margin_calibration`) runs on a CPU in seconds: every image
and label map is a pure function of ``(seed, index)``.

Each image holds ellipses of ``common`` classes (large, several per image) and of ``rare``
classes (small, often absent), drawn in this order so that rare blobs lie on top. Classes are
numbered ``0`` (background), ``1 … common`` and ``common + 1 … common + rare``. A pixel's colour
is its class colour plus Gaussian noise; the rare classes' colours are close to the common
ones (``rare_contrast``), so telling them apart needs the noise to be averaged over the blob,
which is what makes the rare classes hard as well as small.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_int, check_positive

__all__ = ["ImbalancedScenes", "label_counts"]


def _check_range_pair(name: str, value, low: float) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected a pair (low, high) of numbers, got {value!r}") from err
    if not (low <= a <= b) or not np.isfinite(b):
        raise ValueError(f"{name}: expected {low:g} <= low <= high < inf, got {value!r}")
    return a, b


class ImbalancedScenes(Dataset):
    r"""Seeded synthetic scenes with hard class-index targets and strong class imbalance.

    Parameters
    ----------
    n : int, default 64
        Number of images.
    size : int or (int, int), default (48, 64)
        Image height and width (non-square by default).
    common, rare : int, default 2 and 2
        Numbers of common and rare foreground classes (``C = 1 + common + rare``).
    common_blobs : (int, int), default (1, 3)
        Per image and common class, the number of ellipses is uniform in this closed range.
    rare_blobs : (int, int), default (0, 2)
        The same for each rare class (0 allowed: rare classes are often absent).
    common_radius, rare_radius : (float, float), default (7, 14) and (1.5, 3.5)
        Semi-axes (pixels) of the ellipses are uniform in these ranges.
    noise : float, default 0.35
        Standard deviation of the Gaussian pixel noise.
    rare_contrast : float, default 0.35
        Distance (per channel, before noise) between a rare class's colour and the colour of the
        common class it resembles.
    channels : int, default 3
        Image channels.
    seed : int, default 0
        Item ``i`` is generated from ``numpy.random.SeedSequence([seed, i])``.

    Notes
    -----
    ``__getitem__`` returns ``(image, labels)``: a float32 tensor ``(channels, H, W)`` and an
    int64 tensor ``(H, W)`` of class indices in ``[0, C - 1]`` (hard targets, as the margin
    losses and :class:`torch.nn.CrossEntropyLoss` take them). All items are generated once, at
    construction, with array operations over (blobs × pixels); no Python loop over pixels.

    Raises
    ------
    TypeError, ValueError
        For counts that are not integers in range, bad size, ranges or noise.

    Examples
    --------
    >>> ds = ImbalancedScenes(4, size=(20, 24))
    >>> image, labels = ds[0]
    >>> image.shape, labels.shape, labels.dtype
    (torch.Size([3, 20, 24]), torch.Size([20, 24]), torch.int64)
    """

    def __init__(self, n: int = 64, *, size: int | tuple[int, int] = (48, 64), common: int = 2, rare: int = 2,
                 common_blobs: tuple[int, int] = (1, 3), rare_blobs: tuple[int, int] = (0, 2),
                 common_radius: tuple[float, float] = (7.0, 14.0), rare_radius: tuple[float, float] = (1.5, 3.5),
                 noise: float = 0.35, rare_contrast: float = 0.35, channels: int = 3, seed: int = 0) -> None:
        self.n = check_int("n", n, 1)
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            size = (int(size), int(size))
        try:
            h, w = size
        except (TypeError, ValueError) as err:
            raise TypeError(f"size: expected an integer or a pair (H, W), got {size!r}") from err
        self.size = (check_int("size[0] (H)", h, 4), check_int("size[1] (W)", w, 4))
        self.common = check_int("common", common, 0)
        self.rare = check_int("rare", rare, 0)
        if self.common + self.rare == 0:
            raise ValueError("common and rare: expected at least one foreground class, got 0 and 0")
        cb = _check_range_pair("common_blobs", common_blobs, 0)
        rb = _check_range_pair("rare_blobs", rare_blobs, 0)
        self.common_blobs = (int(cb[0]), int(cb[1]))
        self.rare_blobs = (int(rb[0]), int(rb[1]))
        self.common_radius = _check_range_pair("common_radius", common_radius, 0.5)
        self.rare_radius = _check_range_pair("rare_radius", rare_radius, 0.5)
        self.noise = check_positive("noise", noise, strict=False)
        self.rare_contrast = check_positive("rare_contrast", rare_contrast)
        self.channels = check_int("channels", channels, 1)
        self.seed = check_int("seed", seed, 0)
        self.num_classes = 1 + self.common + self.rare
        self.colours = self._colours()
        items = [self._make(i) for i in range(self.n)]
        self.images = torch.from_numpy(np.stack([im for im, _ in items]))
        self.labels = torch.from_numpy(np.stack([lab for _, lab in items]))

    def _colours(self) -> np.ndarray:
        """Class colours ``(C, channels)``, fixed (independent of ``seed``)."""
        rng = np.random.default_rng(2024)
        base = rng.uniform(-1.0, 1.0, (1 + self.common, self.channels))
        base[0] = 0.0  # background
        rare = []
        for j in range(self.rare):  # each rare class resembles a common class (or the background)
            twin = base[1 + j % self.common] if self.common else base[0]
            sign = rng.choice([-1.0, 1.0], self.channels)
            rare.append(twin + sign * self.rare_contrast)
        return np.concatenate([base, np.asarray(rare).reshape(self.rare, self.channels)]).astype(np.float64)

    def _make(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, index]))
        h, w = self.size
        classes = []
        for k in range(1, self.num_classes):
            lo, hi = self.common_blobs if k <= self.common else self.rare_blobs
            classes += [k] * int(rng.integers(lo, hi + 1))
        classes = np.asarray(classes, dtype=np.int64)  # common first, rare last: rare lie on top
        labels = np.zeros((h, w), dtype=np.int64)
        if classes.size:
            is_rare = classes > self.common
            lo = np.where(is_rare, self.rare_radius[0], self.common_radius[0])
            hi = np.where(is_rare, self.rare_radius[1], self.common_radius[1])
            axes = rng.uniform(lo[:, None], hi[:, None], (classes.size, 2))  # (K, 2) semi-axes
            centre = rng.uniform([0, 0], [h, w], (classes.size, 2))
            angle = rng.uniform(0, np.pi, classes.size)
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
            dy = yy[None] - centre[:, 0, None, None]
            dx = xx[None] - centre[:, 1, None, None]
            cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
            u, v = cos * dx + sin * dy, -sin * dx + cos * dy
            inside = (u / axes[:, 0, None, None]) ** 2 + (v / axes[:, 1, None, None]) ** 2 <= 1.0  # (K, H, W)
            top = np.where(inside.any(0), (inside * np.arange(1, classes.size + 1)[:, None, None]).argmax(0), -1)
            labels = np.where(top >= 0, classes[np.clip(top, 0, None)], 0)
        image = self.colours[labels].transpose(2, 0, 1)  # (channels, H, W)
        image = image + self.noise * rng.standard_normal(image.shape)
        return image.astype(np.float32), labels

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -self.n <= index < self.n:
            raise IndexError(f"index: expected an integer in [{-self.n}, {self.n - 1}], got {index}")
        return self.images[index], self.labels[index]


def label_counts(data: Dataset | Iterable, num_classes: int) -> torch.Tensor:
    """Pixel counts ``n_k`` of each class over a data set yielding ``(image, labels)`` pairs.

    Parameters
    ----------
    data : Dataset or iterable
        Yields ``(image, labels)`` with integer ``labels`` of any shape and values in
        ``[0, num_classes - 1]``.
    num_classes : int
        ``C``.

    Returns
    -------
    torch.Tensor
        ``(C,)`` int64 counts (the ``class_counts`` of :func:`softseg.losses.optimal_margins`).

    Raises
    ------
    ValueError
        If labels are not integers or fall outside ``[0, C - 1]``.
    """
    num_classes = check_int("num_classes", num_classes, 1)
    if isinstance(data, ImbalancedScenes):
        stacks = [data.labels]  # all items are in memory: one bincount
    elif isinstance(data, Dataset):
        stacks = (data[i][1] for i in range(len(data)))
    else:
        stacks = (item[1] for item in data)
    total = torch.zeros(num_classes, dtype=torch.int64)
    for labels in stacks:
        labels = torch.as_tensor(labels)
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise ValueError(f"labels: expected integer class indices, got dtype {labels.dtype}")
        if labels.numel():
            lo, hi = int(labels.min()), int(labels.max())
            if lo < 0 or hi >= num_classes:
                raise ValueError(f"labels: expected values in [0, {num_classes - 1}], got values in [{lo}, {hi}]")
        total += torch.bincount(labels.flatten().long(), minlength=num_classes)
    return total
