r"""Multi-rater segmentation data: label kinds built from several raters' masks, and a synthetic set.

The Dice semimetric paper (Wang et al., MICCAI 2023, Sect. 3.4, Table 2) trains the same network
on targets built in different ways from the masks of several raters of each case:

=============  =========================================================  ======
label kind     target                                                     kind
=============  =========================================================  ======
``majority``   majority vote (strict: more than half of the raters)         hard
``random``     the mask of one rater drawn at random, anew at each access   hard
``mean``       uniform average of the raters ("Uniform" in Table 2)         soft
``weighted``   average weighted by each rater's Dice with the majority      soft
``ls``         label smoothing of the majority vote ("LS" in Table 2)       soft
``bls``        boundary label smoothing of the majority vote                soft
=============  =========================================================  ======

:func:`fuse_target` builds one target; :class:`MultiRaterDataset` is the torch ``Dataset``
shared by the QUBIQ loader (:mod:`softseg.data.qubiq`) and :class:`SyntheticRaters`.

:class:`SyntheticRaters` is a **synthetic stand-in**, not medical data: one-channel images of 1 to
``max_shapes`` blurred ellipses, each contoured by ``raters`` raters who agree on the object but
disagree at its edge. Rater :math:`r`'s mask of an ellipse is :math:`\{d + \beta_r + b_{r} +
w_{r}(\varphi) > 0\}`, with :math:`d` the (approximate) signed distance to the true boundary in
pixels, :math:`\beta_r` a fixed style bias of the rater (from ``-style`` to ``+style`` pixels
across the raters: some contour tight, some generous), :math:`b_r \sim \mathcal N(0,
\mathrm{jitter}^2)` a per-image offset and :math:`w_r(\varphi) = \sum_{k=1}^{3} c_{k}
\cos(k\varphi + \theta_k)`, :math:`c_k \sim \mathcal N(0, (\mathrm{wobble}/k)^2)`, a smooth
wobble along the contour (:math:`\varphi` the angle around the ellipse). The image shows the true
shape blurred by a logistic edge of width ``blur`` pixels plus Gaussian noise, so the edge itself
is ambiguous — where raters disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_fraction, check_int, check_option, check_positive
from ..labels import boundary_label_smoothing, fuse_raters, label_smoothing

__all__ = ["LABEL_KINDS", "HARD_KINDS", "fuse_target", "MultiRaterDataset", "SyntheticRaters"]

#: The label kinds of :func:`fuse_target` (Table 2's columns, plus boundary LS).
LABEL_KINDS: tuple[str, ...] = ("majority", "random", "mean", "weighted", "ls", "bls")
#: The kinds that give hard (0/1) targets.
HARD_KINDS: tuple[str, ...] = ("majority", "random")

LabelKind = Literal["majority", "random", "mean", "weighted", "ls", "bls"]


def fuse_target(masks: np.ndarray, kind: LabelKind, *, ls_eps: float = 0.1, bls_width: int = 2,
                rng: np.random.Generator | int | None = None) -> np.ndarray:
    r"""The training target of one case from its raters' masks.

    Parameters
    ----------
    masks : numpy.ndarray
        Shape ``(R, H, W)``, ``R >= 1`` raters, values 0/1 (bool or numeric).
    kind : {"majority", "random", "mean", "weighted", "ls", "bls"}
        See the module table.
    ls_eps : float, default 0.1
        Smoothing :math:`\epsilon` of ``ls`` and ``bls`` (foreground :math:`1 - \epsilon/2`,
        background :math:`\epsilon/2`); the paper does not give its value.
    bls_width : int, default 2
        Band radius of ``bls`` (:func:`softseg.labels.boundary_label_smoothing`).
    rng : numpy.random.Generator, int or None
        Randomness of ``random`` (ignored by the other kinds).

    Returns
    -------
    numpy.ndarray
        ``float32`` target of shape ``(H, W)`` in :math:`[0, 1]`.

    Raises
    ------
    TypeError, ValueError
        If ``masks`` is not a binary ``(R, H, W)`` array, ``kind`` is unknown or ``ls_eps`` /
        ``bls_width`` is out of range.

    Notes
    -----
    With raters :math:`y^{(r)}`, majority :math:`y^{\mathrm{MV}} = [\frac1R\sum_r y^{(r)} > \frac12]`:
    ``mean`` :math:`= \frac1R\sum_r y^{(r)}`; ``weighted`` :math:`= \sum_r w_r y^{(r)} / \sum_r w_r`
    with :math:`w_r = \mathrm{Dice}(y^{(r)}, y^{\mathrm{MV}})` (Sect. 3.4);
    ``ls`` :math:`= (1-\epsilon)\, y^{\mathrm{MV}} + \epsilon/2` (Szegedy et al., ref. [43]);
    ``bls``: the same inside a band of radius ``bls_width`` around the majority's boundary.
    The paper smooths without saying which hard label; we smooth the majority vote, the hard
    label the paper evaluates against.

    Examples
    --------
    >>> m = np.array([[[1, 1, 0]], [[1, 0, 0]], [[1, 1, 1]]])
    >>> fuse_target(m, "mean")
    array([[1.        , 0.6666667 , 0.33333334]], dtype=float32)
    >>> fuse_target(m, "ls", ls_eps=0.2)  # majority (1, 1, 0), smoothed
    array([[0.9, 0.9, 0.1]], dtype=float32)
    """
    check_option("kind", kind, LABEL_KINDS)
    eps = check_fraction("ls_eps", ls_eps)
    width = check_int("bls_width", bls_width, 1)
    if not isinstance(masks, np.ndarray):
        raise TypeError(f"masks: expected a numpy.ndarray of shape (R, H, W), got {type(masks).__name__}")
    if masks.ndim != 3 or 0 in masks.shape:
        raise ValueError(f"masks: expected shape (R, H, W) with R, H, W >= 1, got {tuple(masks.shape)}")
    if kind == "random":
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        r = int(gen.integers(masks.shape[0]))
        return fuse_raters(masks[r:r + 1], "majority")  # checks the values; one rater: itself
    if kind in ("mean", "weighted", "majority"):
        return fuse_raters(masks, kind)
    majority = fuse_raters(masks, "majority")
    if kind == "ls":
        return label_smoothing(majority, eps)
    return boundary_label_smoothing(majority, eps, width)


class MultiRaterDataset(Dataset):
    """Images with several raters' masks; yields ``(image, target)`` with a chosen label kind.

    Subclasses implement :meth:`case` (image and rater masks of item ``i``) and ``__len__``.

    Parameters
    ----------
    label : {"majority", "random", "mean", "weighted", "ls", "bls"}, default "mean"
        How the raters become the training target (:func:`fuse_target`).
    ls_eps, bls_width
        As in :func:`fuse_target`.

    Notes
    -----
    Items are ``(image, target)``: ``image`` float32 ``(C, H, W)``, ``target`` float32
    ``(1, H, W)`` in :math:`[0, 1]` (one foreground channel, for a sigmoid output). ``random``
    draws the rater with torch's global generator at each access, so a new rater per epoch; the
    training loop (:func:`softseg.train.train`) reseeds it every epoch, which makes runs
    repeatable. :meth:`stack` gives every item's image and evaluation targets at once.
    """

    def __init__(self, *, label: LabelKind = "mean", ls_eps: float = 0.1, bls_width: int = 2) -> None:
        self.label = check_option("label", label, LABEL_KINDS)
        self.ls_eps = check_fraction("ls_eps", ls_eps)
        self.bls_width = check_int("bls_width", bls_width, 1)

    def case(self, index: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        """Image ``(C, H, W)`` float32 and rater masks ``(R, H, W)`` uint8 of item ``index``."""
        raise NotImplementedError

    def _index(self, index) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an integer, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index: expected an integer in [{-n}, {n - 1}], got {index}")
        return int(index) % n

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, masks = self.case(self._index(index))
        rng = None
        if self.label == "random":
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ())))
        target = fuse_target(masks, self.label, ls_eps=self.ls_eps, bls_width=self.bls_width, rng=rng)
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)), torch.from_numpy(target[None])

    def stack(self) -> dict[str, torch.Tensor]:
        """All items at once, for evaluation: ``"image"`` ``(N, C, H, W)``, ``"majority"`` and
        ``"mean"`` ``(N, 1, H, W)`` float32 (the paper scores Dice and ECE against the majority
        vote, BDice against the raters' mean), and ``"raters"``, a list of ``(R, H, W)`` arrays.
        Items must share one size."""
        images, majority, mean, raters = [], [], [], []
        for i in range(len(self)):
            image, masks = self.case(i)
            images.append(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)))
            majority.append(torch.from_numpy(fuse_raters(masks, "majority"))[None])
            mean.append(torch.from_numpy(fuse_raters(masks, "mean"))[None])
            raters.append(masks)
        shapes = {tuple(t.shape[1:]) for t in images}
        if len(shapes) > 1:
            raise ValueError(f"stack: expected items of one spatial size, got sizes {sorted(shapes)} (set size=)")
        return {"image": torch.stack(images), "majority": torch.stack(majority), "mean": torch.stack(mean),
                "raters": raters}


class SyntheticRaters(MultiRaterDataset):
    r"""Synthetic multi-rater segmentation set (a stand-in, not medical data).

    Parameters
    ----------
    n : int, default 64
        Number of images.
    size : int or (int, int), default 48
        Image height and width.
    raters : int, default 5
        Raters per image.
    label : str, default "mean"
        Label kind of the targets (:data:`LABEL_KINDS`).
    max_shapes : int, default 2
        1 to ``max_shapes`` ellipses per image.
    style : float, default 1.5
        Spread of the raters' fixed style biases in pixels: rater :math:`r` of :math:`R` has
        :math:`\beta_r = \mathrm{style}\,(2r/(R-1) - 1)` (0 for one rater).
    jitter : float, default 0.75
        Standard deviation (pixels) of each rater's per-image offset.
    wobble : float, default 1.0
        Scale (pixels) of each rater's smooth wobble along the contour.
    blur : float, default 1.5
        Width (pixels) of the logistic edge of the shapes in the image.
    noise : float, default 0.15
        Standard deviation of the image noise (contrast between object and background is 0.5).
    seed : int, default 0
        Item ``i`` is a pure function of ``numpy.random.SeedSequence([seed, i])``.
    ls_eps, bls_width
        As in :func:`fuse_target`.

    Raises
    ------
    TypeError, ValueError
        If a count is not a positive integer or a scale is negative (``blur`` must be > 0).

    Examples
    --------
    >>> ds = SyntheticRaters(4, size=(20, 24), raters=3)
    >>> image, target = ds[0]
    >>> image.shape, target.shape, ds.case(0)[1].shape
    (torch.Size([1, 20, 24]), torch.Size([1, 20, 24]), (3, 20, 24))
    """

    def __init__(self, n: int = 64, *, size: int | Sequence[int] = 48, raters: int = 5, label: LabelKind = "mean",
                 max_shapes: int = 2, style: float = 1.5, jitter: float = 0.75, wobble: float = 1.0,
                 blur: float = 1.5, noise: float = 0.15, seed: int = 0, ls_eps: float = 0.1,
                 bls_width: int = 2) -> None:
        super().__init__(label=label, ls_eps=ls_eps, bls_width=bls_width)
        self.n = check_int("n", n, 1)
        sizes = (size, size) if isinstance(size, (int, np.integer)) and not isinstance(size, bool) else size
        if not isinstance(sizes, (tuple, list)) or len(sizes) != 2:
            raise TypeError(f"size: expected an int or a pair (H, W), got {size!r}")
        self.size = (check_int("size", sizes[0], 8), check_int("size", sizes[1], 8))
        self.raters = check_int("raters", raters, 1)
        self.max_shapes = check_int("max_shapes", max_shapes, 1)
        self.style = check_positive("style", style, strict=False)
        self.jitter = check_positive("jitter", jitter, strict=False)
        self.wobble = check_positive("wobble", wobble, strict=False)
        self.blur = check_positive("blur", blur)
        self.noise = check_positive("noise", noise, strict=False)
        self.seed = check_int("seed", seed, 0)
        R = self.raters
        self.style_bias = self.style * (2 * np.arange(R) / (R - 1) - 1) if R > 1 else np.zeros(1)
        self.in_channels = 1

    def __len__(self) -> int:
        return self.n

    def case(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``(1, H, W)`` float32 and rater masks ``(R, H, W)`` uint8 of item ``index``."""
        index = self._index(index)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, index]))
        H, W = self.size
        R = self.raters
        yy, xx = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
        truth = np.zeros((H, W))
        masks = np.zeros((R, H, W), dtype=bool)
        for _ in range(int(rng.integers(1, self.max_shapes + 1))):
            cy, cx = rng.uniform(0.3, 0.7) * H, rng.uniform(0.3, 0.7) * W
            a, b = rng.uniform(0.12, 0.3, 2) * min(H, W)
            theta = rng.uniform(0, np.pi)
            u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
            v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
            d = (1.0 - np.hypot(u / a, v / b)) * min(a, b)  # signed distance (approximate), pixels
            phi = np.arctan2(v / b, u / a)
            truth = np.maximum(truth, 1.0 / (1.0 + np.exp(-d / self.blur)))
            k = np.arange(1, 4)
            c = rng.normal(0.0, self.wobble / k, size=(R, 3))
            phase = rng.uniform(0, 2 * np.pi, size=(R, 3))
            offset = self.style_bias + rng.normal(0.0, self.jitter, size=R)
            wob = np.einsum("rk,rkhw->rhw", c, np.cos(k[None, :, None, None] * phi + phase[:, :, None, None]))
            masks |= (d[None] + offset[:, None, None] + wob) > 0
        background = rng.uniform(0.1, 0.3)
        image = background + 0.5 * truth + self.noise * rng.standard_normal((H, W))
        return image[None].astype(np.float32), masks.astype(np.uint8)

    def __repr__(self) -> str:
        return (f"SyntheticRaters(n={self.n}, size={self.size}, raters={self.raters}, label={self.label!r}, "
                f"seed={self.seed})")
