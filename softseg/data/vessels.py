r"""Synthetic retinal vessel trees on a fundus-like background (a *synthetic stand-in*).

Not retinal data: a seeded generator so that the SAUNA chapter trains and tests without FIVES.
Every image and mask is a pure function of ``(seed, index)``.

* :func:`vessel_tree` — the geometry: 3–5 trunks leave an "optic disc" near one side of the
  field of view and branch recursively (random-walk polylines whose direction drifts; at each
  bifurcation two children with radii :math:`r\,2^{-1/3}` (Murray's law for equal children,
  :math:`r^3 = r_1^3 + r_2^3`) times a random factor, at ±20–45°), until the radius falls below
  ``min_radius``. Returns line segments with a radius each.
* :func:`render_segments` — vectorized rendering in torch: the distance of every pixel centre
  to every segment, in chunks of segments (no loop over pixels); the mask is
  :math:`\min_s (d_s - r_s) \le 0`, the appearance profile :math:`\max_s \exp(-(d_s/r_s)^2)`.
* :func:`fundus_background`, :func:`synthetic_fundus` — a reddish disc (field of view) with
  vignetting, a bright optic disc, a darker fovea, smooth illumination variation and Gaussian
  pixel noise; vessels darken the image with a contrast that falls with their radius, so thin
  vessels are faint (the hard, uncertain pixels that motivate SAUNA).
* :class:`SyntheticVesselDataset` — ``(image, target)`` pairs for :func:`softseg.train.train`,
  with the targets of :func:`softseg.data.retina.make_target` (hard, SAUNA, LS, BLS, ...).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_int, check_option, check_positive

__all__ = [
    "vessel_tree",
    "render_segments",
    "fundus_background",
    "synthetic_fundus",
    "SyntheticVesselDataset",
    "drawn_tree",
]


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an integer or numpy.random.Generator, got {type(seed).__name__}")
    return np.random.default_rng(int(seed))


def vessel_tree(size: int = 64, *, seed=0, n_trunks: tuple[int, int] = (3, 5), trunk_radius: float | None = None,
                min_radius: float | None = None, step: float | None = None,
                max_segments: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    r"""Random branching vessel tree in an image of side ``size`` (pixel units, centres at 0..size-1).

    Parameters
    ----------
    size : int, default 64
        Image side in pixels (the tree scales with it).
    seed : int or numpy.random.Generator
    n_trunks : (int, int), default (3, 5)
        Inclusive range of the number of trunks.
    trunk_radius : float, optional
        Radius of the trunks in pixels; default ``max(1.2, 0.012 * size)`` (about 6 px at 512,
        like the main vessels of a 512 × 512 FIVES image).
    min_radius : float, optional
        Branches thinner than this stop; default ``max(0.35, 0.0025 * size)``.
    step : float, optional
        Segment length; default ``max(1.5, 0.02 * size)``.
    max_segments : int, default 4000
        Safety cap on the number of segments.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``segments`` ``(S, 4)`` as ``(x0, y0, x1, y1)`` and ``radii`` ``(S,)``, float64.
    """
    size = check_int("size", size, 8)
    rng = _rng(seed)
    lo, hi = n_trunks
    r0 = max(1.2, 0.012 * size) if trunk_radius is None else check_positive("trunk_radius", trunk_radius)
    r_min = max(0.35, 0.0025 * size) if min_radius is None else check_positive("min_radius", min_radius)
    ds = max(1.5, 0.02 * size) if step is None else check_positive("step", step)
    c = (size - 1) / 2
    fov = 0.47 * size
    side = rng.choice([-1.0, 1.0])
    disc = np.array([c + side * 0.28 * size + rng.normal(0, 0.02 * size), c + rng.normal(0, 0.04 * size)])
    k = int(rng.integers(lo, hi + 1))
    base = math.pi if side > 0 else 0.0             # trunks head across the image, away from the disc side
    angles = base + np.linspace(-1.1, 1.1, k) + rng.normal(0, 0.15, k)
    stack = [(disc.copy(), a, r0 * rng.uniform(0.85, 1.1), 0) for a in angles]
    segs, radii = [], []
    while stack and len(segs) < max_segments:
        p, a, r, depth = stack.pop()
        n_steps = int(rng.integers(4, 10)) if depth else int(rng.integers(6, 12))
        curv = rng.normal(0, 0.12)
        for _ in range(n_steps):
            a += curv + rng.normal(0, 0.12)
            q = p + ds * np.array([math.cos(a), math.sin(a)])
            if np.hypot(*(q - c)) > fov:
                break
            segs.append((p[0], p[1], q[0], q[1]))
            radii.append(r)
            p = q
        else:
            children = r * 2 ** (-1 / 3) * rng.uniform(0.8, 1.05, 2)
            spread = rng.uniform(0.35, 0.8, 2)
            for child, sgn in zip(children, (-1, 1)):
                if child >= r_min:
                    stack.append((p.copy(), a + sgn * spread[(sgn + 1) // 2], child, depth + 1))
    if not segs:  # a degenerate draw: one short trunk
        segs, radii = [(disc[0], disc[1], c, c)], [r0]
    return np.asarray(segs, dtype=np.float64), np.asarray(radii, dtype=np.float64)


def render_segments(segments, radii, shape: tuple[int, int], *, weights=None,
                    chunk: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Rasterize thick line segments: the vessel mask and a smooth vessel profile.

    Parameters
    ----------
    segments : array_like, shape (S, 4)
        ``(x0, y0, x1, y1)`` in pixel coordinates (x along columns).
    radii : array_like, shape (S,)
        Radius of each segment (> 0).
    shape : (int, int)
        Output ``(H, W)``.
    weights : array_like, shape (S,), optional
        Peak of each segment's profile (default 1).
    chunk : int, default 16
        Segments per batched distance computation, done on the pixels of the chunk's bounding
        box (grown by 3 radii, beyond which the profile is below 1e-4). Consecutive segments of
        a branch are close, so small chunks keep the boxes small (16 was the fastest of 16, 64
        and all-at-once on 64 × 64 and 512 × 512 images).

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        ``mask`` bool ``(H, W)``: pixel centres within :math:`r_s` of some segment;
        ``profile`` float32 ``(H, W)``: :math:`\max_s w_s \exp(-(d_s / r_s)^2)`.

    Notes
    -----
    Distance from a pixel centre :math:`p` to the segment :math:`[a, b]`:
    :math:`\| p - a - \tau (b - a) \|` with :math:`\tau = \operatorname{clip}(\langle p - a, b - a
    \rangle / \|b - a\|^2, 0, 1)`; computed for a chunk of segments and all pixels at once.
    """
    seg = torch.as_tensor(np.asarray(segments, dtype=np.float32))
    rad = torch.as_tensor(np.asarray(radii, dtype=np.float32))
    if seg.ndim != 2 or seg.shape[1] != 4:
        raise ValueError(f"segments: expected shape (S, 4), got {tuple(seg.shape)}")
    if rad.shape != (seg.shape[0],):
        raise ValueError(f"radii: expected shape ({seg.shape[0]},), got {tuple(rad.shape)}")
    if seg.shape[0] and not bool((rad > 0).all()):
        raise ValueError("radii: expected positive values")
    wts = torch.ones_like(rad) if weights is None else torch.as_tensor(np.asarray(weights, dtype=np.float32))
    if wts.shape != rad.shape:
        raise ValueError(f"weights: expected shape ({seg.shape[0]},), got {tuple(wts.shape)}")
    h, w = (check_int("shape[0]", shape[0], 1), check_int("shape[1]", shape[1], 1))
    signed = torch.full((h, w), float("inf"))
    profile = torch.zeros(h, w)
    reach = 3.0                                           # exp(-9) ~ 1e-4: the profile is 0 beyond 3 r
    for start in range(0, seg.shape[0], check_int("chunk", chunk, 1)):
        s = seg[start:start + chunk]
        r = rad[start:start + chunk, None]
        wk = wts[start:start + chunk, None]
        # only the pixels of the chunk's bounding box (segments of a chunk are consecutive
        # pieces of a branch, so the box is small): the work scales with the tree, not the image
        pad = reach * float(r.max())
        x0 = max(0, math.floor(float(torch.minimum(s[:, 0], s[:, 2]).min()) - pad))
        x1 = min(w, math.ceil(float(torch.maximum(s[:, 0], s[:, 2]).max()) + pad) + 1)
        y0 = max(0, math.floor(float(torch.minimum(s[:, 1], s[:, 3]).min()) - pad))
        y1 = min(h, math.ceil(float(torch.maximum(s[:, 1], s[:, 3]).max()) + pad) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = torch.meshgrid(torch.arange(y0, y1, dtype=torch.float32), torch.arange(x0, x1, dtype=torch.float32),
                                indexing="ij")
        p = torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)                   # (P, 2)
        a, b = s[:, None, :2], s[:, None, 2:]                                  # (K, 1, 2)
        ab = b - a
        t = (((p[None] - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp(0, 1)
        d = (p[None] - a - t[..., None] * ab).norm(dim=-1)                      # (K, P)
        box = (slice(y0, y1), slice(x0, x1))
        signed[box] = torch.minimum(signed[box], (d - r).min(0).values.reshape(y1 - y0, x1 - x0))
        prof = (wk * torch.exp(-(d / r) ** 2)).max(0).values.reshape(y1 - y0, x1 - x0)
        profile[box] = torch.maximum(profile[box], prof)
    return signed <= 0, profile


def _smooth_field(rng: np.random.Generator, size: int, cells: int = 4) -> torch.Tensor:
    """A smooth random field in about [-1, 1]: bicubic upsampling of a coarse Gaussian grid."""
    coarse = torch.as_tensor(rng.normal(0, 1, (1, 1, cells, cells)), dtype=torch.float32)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)[0, 0]


def fundus_background(size: int, *, seed=0, disc_x: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A fundus-like RGB background in [0, 1] ``(3, size, size)`` and its field-of-view mask ``(size, size)``."""
    size = check_int("size", size, 8)
    rng = _rng(seed)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    c = (size - 1) / 2
    rr = torch.sqrt((xx - c) ** 2 + (yy - c) ** 2) / (0.48 * size)
    fov = rr <= 1.0
    colour = torch.tensor(rng.uniform([0.62, 0.26, 0.08], [0.82, 0.40, 0.16]), dtype=torch.float32)
    light = 1.0 - 0.35 * rr.clamp(max=1) ** 2 + 0.06 * _smooth_field(rng, size)
    img = colour[:, None, None] * light[None]
    dx = c + 0.28 * size if disc_x is None else disc_x
    disc = torch.exp(-((xx - dx) ** 2 + (yy - c) ** 2) / (2 * (0.06 * size) ** 2))
    fovea = torch.exp(-((xx - (2 * c - dx)) ** 2 + (yy - c) ** 2) / (2 * (0.08 * size) ** 2))
    img = img + 0.35 * disc[None] * torch.tensor([1.0, 0.9, 0.6])[:, None, None]
    img = img * (1 - 0.25 * fovea[None])
    return (img * fov[None]).clamp(0, 1), fov


def synthetic_fundus(size: int = 64, *, seed=0, noise: float = 0.03,
                     contrast: float = 0.45) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One synthetic fundus image and its vessel mask (a *synthetic stand-in*).

    Parameters
    ----------
    size : int, default 64
        Side in pixels.
    seed : int or numpy.random.Generator
    noise : float, default 0.03
        Standard deviation of the Gaussian pixel noise.
    contrast : float, default 0.45
        Darkening at the centre line of a vessel of radius :math:`\ge` 2 px; a thinner vessel
        of radius :math:`r` gets ``contrast * r / 2``.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        ``image`` float32 ``(3, size, size)`` in :math:`[0, 1]` and ``mask`` bool
        ``(size, size)`` (vessels inside the field of view).
    """
    rng = _rng(seed)
    noise = check_positive("noise", noise, strict=False)
    contrast = check_positive("contrast", contrast, strict=False)
    segs, radii = vessel_tree(size, seed=rng)
    disc_x = float(segs[0, 0])
    img, fov = fundus_background(size, seed=rng, disc_x=disc_x)
    # contrast grows with the radius: thin vessels are faint
    mask, shade = render_segments(segs, radii, (size, size), weights=contrast * np.minimum(1.0, radii / 2.0))
    img = img * (1 - shade)[None] * torch.tensor([1.0, 0.85, 0.9])[:, None, None]
    img = img + noise * torch.as_tensor(rng.normal(0, 1, img.shape), dtype=torch.float32)
    img = (img * fov[None]).clamp(0, 1)
    return img, mask & fov


def drawn_tree(shape: tuple[int, int] = (96, 120)) -> tuple[torch.Tensor, dict[str, dict[str, float]]]:
    """A small hand-drawn vessel tree for figures: a vertical trunk and three horizontal branches.

    The trunk (radius 4.5 px) runs down column 20; branches of radius 2.5, 1.5 and 0.7 px leave it
    to the right along rows ``0.16 H``, ``0.47 H`` and ``0.78 H``. Returns the mask ``(H, W)``
    (bool) and ``{name: {"radius", "row", "col"}}`` (``col`` the trunk's column for the trunk),
    so that profiles can be read across each vessel far from the junctions.
    """
    h, w = (check_int("shape[0]", shape[0], 48), check_int("shape[1]", shape[1], 64))
    rows = {"wide branch": round(0.16 * h), "medium branch": round(0.47 * h), "thin branch": round(0.78 * h)}
    radii = {"trunk": 4.5, "wide branch": 2.5, "medium branch": 1.5, "thin branch": 0.7}
    segs = [(20.0, 4.0, 20.0, h - 5.0)] + [(20.0, float(r), w - 8.0, float(r)) for r in rows.values()]
    mask, _ = render_segments(np.array(segs), np.array(list(radii.values())), (h, w))
    info = {"trunk": {"radius": 4.5, "row": float(round(0.62 * h)), "col": 20.0}}
    for name, r in rows.items():
        info[name] = {"radius": radii[name], "row": float(r), "col": float(round(0.7 * w))}
    return mask, info


class SyntheticVesselDataset(Dataset):
    r"""Synthetic fundus images with vessel targets: ``(image, target)`` pairs (a *synthetic stand-in*).

    Parameters
    ----------
    n : int
        Number of images.
    size : int, default 64
        Side in pixels.
    seed : int, default 0
        Image ``i`` is drawn from ``numpy.random.default_rng([seed, i])``.
    target : str, default "mask"
        A kind of :data:`softseg.data.retina.TARGETS` (``"mask"``, ``"signed"``, ``"sauna"``,
        ``"sauna_boundary"``, ``"sauna_thickness"``, ``"ls"``, ``"bls"``).
    noise, contrast : float
        See :func:`synthetic_fundus`.
    standardize : bool, default True
        Subtract 0.5 and divide by 0.25 per channel (a fixed affine map, the same for every image).
    target_options : dict, optional
        Keywords of :func:`softseg.data.retina.make_target` (``eps``, ``width``, ``window``).

    Items are computed on first access and cached (``cache=True``); :meth:`with_target` gives
    the same images with another target, sharing the cache of images and masks.
    """

    def __init__(self, n: int, size: int = 64, *, seed: int = 0, target: str = "mask", noise: float = 0.03,
                 contrast: float = 0.45, standardize: bool = True, target_options: dict | None = None,
                 cache: bool = True) -> None:
        from .retina import TARGETS

        self.n = check_int("n", n, 1)
        self.size = check_int("size", size, 8)
        self.seed = check_int("seed", seed, 0)
        self.target = check_option("target", target, TARGETS)
        self.noise, self.contrast = noise, contrast
        self.standardize = bool(standardize)
        self.target_options = dict(target_options or {})
        self.cache = bool(cache)
        self._pairs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._targets: dict[int, torch.Tensor] = {}

    def with_target(self, target: str, target_options: dict | None = None) -> "SyntheticVesselDataset":
        """The same images and masks (shared cache) with another target kind."""
        from .retina import TARGETS

        other = copy.copy(self)
        other.target = check_option("target", target, TARGETS)
        other.target_options = dict(target_options or {})
        other._targets = {}
        return other

    def __len__(self) -> int:
        return self.n

    def sample(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The raw image in [0, 1] ``(3, H, W)`` and the bool mask ``(H, W)`` of item ``index``."""
        rng = np.random.default_rng([self.seed, int(index)])
        return synthetic_fundus(self.size, seed=rng, noise=self.noise, contrast=self.contrast)

    def precompute(self, progress: bool = False, workers: int = 1) -> "SyntheticVesselDataset":
        """Draw every image and mask now (into the shared cache), e.g. before DataLoader workers
        fork, so that they inherit the images instead of drawing them again every epoch.
        ``workers > 1`` draws in threads (torch's kernels release the GIL); every image depends
        only on ``(seed, index)``, so the result does not depend on ``workers``."""
        from concurrent.futures import ThreadPoolExecutor

        from tqdm import tqdm

        if self.cache:
            with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
                list(tqdm(pool.map(self._pair, range(self.n)), total=self.n, desc="synthetic vessels",
                          disable=not progress))
        return self

    def _pair(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = self._pairs.get(index)
        if pair is None:
            img, mask = self.sample(index)
            if self.standardize:
                img = (img - 0.5) / 0.25
            pair = (img, mask)
            if self.cache:
                self._pairs[index] = pair
        return pair

    def mask(self, index: int) -> torch.Tensor:
        """The hard mask ``(H, W)`` (bool) of item ``index``."""
        return self._pair(int(index) % self.n)[1]

    def _target(self, index: int) -> torch.Tensor:
        from .retina import make_target

        tgt = self._targets.get(index)
        if tgt is None:
            tgt = make_target(self._pair(index)[1], self.target, **self.target_options)
            if self.cache:
                self._targets[index] = tgt
        return tgt

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -self.n <= index < self.n:
            raise IndexError(f"index: expected an integer in [{-self.n}, {self.n}), got {index}")
        index = int(index) % self.n
        return self._pair(index)[0], self._target(index)
