r"""A synthetic segmentation data set: random ellipses and rectangles with soft boundaries.

*Synthetic stand-in* — it is not a medical data set. It exists so that the training engine
(:mod:`softseg.train`), its tests and the ``fast`` presets run anywhere in seconds without a
download: every image and target is a pure function of ``(seed, index)``.

Each image holds 1 to ``max_shapes`` shapes (an ellipse or a rotated rectangle, equally likely),
each of a random class ``k in 1..classes``. A shape's soft membership is a logistic function of
its (approximate) signed distance :math:`d` to the boundary, :math:`\sigma(d / s)` with ``s =
softness`` pixels, so the target is 0.5 on the boundary, tends to 1 inside and to 0 outside —
the kind of boundary uncertainty that soft labels model. The image is a per-class colour on a
random background, blended with the soft membership, plus Gaussian noise.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_int, check_option, check_positive

__all__ = ["ShapesDataset", "TARGETS"]

#: Target kinds of :class:`ShapesDataset`.
TARGETS = ("soft", "hard", "labels", "signed")


def _class_colours(classes: int, channels: int) -> np.ndarray:
    """Fixed colour of each class, independent of the data set's seed (so that a model trained
    on one seed transfers to another): shape ``(classes, channels)``, values in [0.55, 1]."""
    return np.stack([np.random.default_rng(1009 + k).uniform(0.55, 1.0, channels) for k in range(classes)])


class ShapesDataset(Dataset):
    r"""Random ellipses and rectangles with soft targets (a synthetic stand-in).

    Parameters
    ----------
    n : int, default 64
        Number of images.
    size : int or (int, int), default 32
        Image height and width.
    in_channels : int, default 3
        Channels of the image.
    classes : int, default 1
        Number of foreground classes ``K``.
    target : {"soft", "hard", "labels", "signed"}, default "soft"
        * ``"soft"``: float maps in [0, 1]; shape ``(1, H, W)`` for ``K = 1``, else a soft
          one-hot map ``(K + 1, H, W)`` whose channel 0 is the background and whose channels
          sum to 1 at every pixel;
        * ``"hard"``: the same shape with 0/1 values (``soft >= 0.5`` for ``K = 1``, the
          one-hot of the arg-max otherwise);
        * ``"labels"``: integer class indices ``(H, W)`` (int64) in ``0..K``;
        * ``"signed"``: ``2 * soft - 1``, in [-1, 1] (positive inside, as SAUNA's maps).
    max_shapes : int, default 3
        At most this many shapes per image (at least one).
    softness : float, default 1.0
        Width ``s`` (pixels) of the logistic boundary ramp; the target is
        :math:`\sigma(d/s)` for the signed distance :math:`d`.
    noise : float, default 0.1
        Standard deviation of the Gaussian noise added to the image.
    seed : int, default 0
        Item ``i`` is generated from ``numpy.random.SeedSequence([seed, i])``.

    Raises
    ------
    TypeError, ValueError
        If a count is not a positive integer, ``target`` is unknown, ``softness`` is not
        positive or ``noise`` is negative. Indexing raises ``IndexError`` out of range.

    Notes
    -----
    For ``K > 1`` with per-class memberships :math:`f_k` (the maximum over that class's shapes),
    the soft one-hot target is :math:`p_k = f_k / \max(1, \sum_j f_j)` and
    :math:`p_0 = 1 - \sum_k p_k`. The image is

    .. math:: I = b + \sum_k p_k (c_k - b) + \varepsilon, \qquad \varepsilon \sim \mathcal N(0, \mathrm{noise}^2),

    with a random background :math:`b` per image and a fixed colour :math:`c_k` per class.

    Examples
    --------
    >>> ds = ShapesDataset(4, size=16, classes=2, target="labels")
    >>> image, labels = ds[0]
    >>> image.shape, labels.shape, labels.dtype
    (torch.Size([3, 16, 16]), torch.Size([16, 16]), torch.int64)
    >>> image2, _ = ShapesDataset(4, size=16, classes=2, target="labels")[0]
    >>> bool((image == image2).all())   # a pure function of (seed, index)
    True
    """

    def __init__(self, n: int = 64, *, size: int | tuple[int, int] = 32, in_channels: int = 3,
                 classes: int = 1, target: Literal["soft", "hard", "labels", "signed"] = "soft",
                 max_shapes: int = 3, softness: float = 1.0, noise: float = 0.1, seed: int = 0) -> None:
        self.n = check_int("n", n, 1)
        sizes = (size, size) if isinstance(size, (int, np.integer)) and not isinstance(size, bool) else size
        if not isinstance(sizes, (tuple, list)) or len(sizes) != 2:
            raise TypeError(f"size: expected an int or a pair (H, W), got {size!r}")
        self.size = (check_int("size", sizes[0], 4), check_int("size", sizes[1], 4))
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.classes = check_int("classes", classes, 1)
        self.target = check_option("target", target, TARGETS)
        self.max_shapes = check_int("max_shapes", max_shapes, 1)
        self.softness = check_positive("softness", softness)
        self.noise = check_positive("noise", noise, strict=False)
        self.seed = check_int("seed", seed, 0)
        self._colours = _class_colours(self.classes, self.in_channels)

    def __len__(self) -> int:
        return self.n

    @property
    def target_channels(self) -> int:
        """Channels of a ``soft``/``hard``/``signed`` target (1 for one class, else ``K + 1``);
        the number of classes ``K + 1`` (or 2) for ``labels``."""
        return 1 if self.classes == 1 and self.target != "labels" else self.classes + 1

    def _memberships(self, rng: np.random.Generator) -> np.ndarray:
        """Per-class soft memberships ``f``, shape ``(K, H, W)``, float64 in (0, 1)."""
        H, W = self.size
        yy, xx = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
        f = np.zeros((self.classes, H, W))
        for _ in range(int(rng.integers(1, self.max_shapes + 1))):
            k = int(rng.integers(0, self.classes))
            cy, cx = rng.uniform(0.2, 0.8) * H, rng.uniform(0.2, 0.8) * W
            a, b = rng.uniform(0.1, 0.3, 2) * min(H, W)
            theta = rng.uniform(0, np.pi)
            u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
            v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
            if rng.random() < 0.5:  # ellipse: radial distance scaled by the smaller semi-axis
                d = (1.0 - np.sqrt((u / a) ** 2 + (v / b) ** 2)) * min(a, b)
            else:  # rectangle: exact signed distance inside, a lower bound outside
                d = np.minimum(a - np.abs(u), b - np.abs(v))
            f[k] = np.maximum(f[k], 1.0 / (1.0 + np.exp(-d / self.softness)))
        return f

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an integer, got {type(index).__name__}")
        if not -self.n <= index < self.n:
            raise IndexError(f"index: expected an integer in [{-self.n}, {self.n - 1}], got {index}")
        index = int(index) % self.n
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, index]))
        f = self._memberships(rng)
        p = f / np.maximum(1.0, f.sum(0, keepdims=True))
        background = rng.uniform(0.05, 0.35, self.in_channels)
        image = background[:, None, None] + np.einsum("khw,kc->chw", p, self._colours - background[None, :])
        image = image + self.noise * rng.standard_normal(image.shape)

        soft = p if self.classes == 1 else np.concatenate([np.clip(1.0 - p.sum(0, keepdims=True), 0.0, 1.0), p])
        if self.target == "soft":
            target = torch.from_numpy(soft.astype(np.float32))
        elif self.target == "signed":
            target = torch.from_numpy((2.0 * soft - 1.0).astype(np.float32))
        else:
            labels = (soft[0] >= 0.5).astype(np.int64) if self.classes == 1 else soft.argmax(0)
            if self.target == "labels":
                target = torch.from_numpy(labels.astype(np.int64))
            elif self.classes == 1:
                target = torch.from_numpy(labels[None].astype(np.float32))
            else:
                target = torch.from_numpy((np.arange(self.classes + 1)[:, None, None] == labels).astype(np.float32))
        return torch.from_numpy(image.astype(np.float32)), target

    def __repr__(self) -> str:
        return (f"ShapesDataset(n={self.n}, size={self.size}, in_channels={self.in_channels}, "
                f"classes={self.classes}, target={self.target!r}, seed={self.seed})")
