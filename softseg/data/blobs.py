"""Synthetic soft labels: blurred, randomly deformed balls (experiment S) and a 5-rater organ stand-in.

Two generators for the soft-Dice chapter (Nordström, Hult, Maki and Löfman, *Noisy Image
Segmentation With Soft-Dice*, Sect. 6.2 and supplement Sect. 2.2):

- :func:`synthetic_marginals` — the paper's experiment (S): a ball of radius 0.2 on a
  ``200 x 200`` grid of the unit square (Step 1), convolved with an isotropic Gaussian of
  standard deviation ``rho`` (variance ``rho**2``, Step 2), then warped by a random smooth
  Gaussian displacement field (Step 3). The result is a smooth marginal map ``m`` in [0, 1].
- :func:`gold_atlas_standin` — a **stand-in** for the Gold Atlas pelvis data (experiment (G)),
  which cannot be downloaded here: nine synthetic organs (ellipsoids, tubes and pairs of them,
  sized like the real ROIs on ~1 mm CT pixels), each contoured by five simulated raters who
  each draw the organ with their own smooth boundary perturbation and size bias. The raters'
  binary masks are averaged into ``m`` with values in ``{0, 0.2, ..., 1}`` and cut into
  ``128 x 128`` in-plane patches around the organ, like the real loader
  :mod:`softseg.data.gold_atlas` does. It is *not* patient data: numbers computed on it are
  labelled "stand-in" wherever they are shown.

Everything is seeded (a :class:`torch.Generator` per call), vectorized over samples, and returns
float32 tensors on the CPU.

Parameters the paper leaves open, and the values chosen here
------------------------------------------------------------
- Blur: the main text says "variance rho", the supplement "variance rho**2"; the supplement is
  the precise statement (a variance of 0.09 would blur a ball of radius 0.2 almost flat), so
  the Gaussian's standard deviation is ``rho`` in units of the image side (``200 * rho`` pixels).
- Deformation: "a random Gaussian field" with no covariance given. Here each displacement
  component is white noise on a coarse lattice (spacing ``correlation / 2``) smoothed by a
  Gaussian of standard deviation ``correlation``, scaled to standard deviation ``amplitude``
  at every lattice node and interpolated bicubically to the pixel grid: a smooth stationary
  Gaussian field with correlation length ``correlation = 0.1`` and pointwise standard
  deviation ``amplitude = 0.03`` (a sixth of the ball's radius) by default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._checks import check_int, check_positive

__all__ = [
    "ball",
    "gaussian_blur",
    "smooth_random_field",
    "deform",
    "synthetic_marginals",
    "OrganSpec",
    "GOLD_ATLAS_ROIS",
    "STANDIN_ORGANS",
    "gold_atlas_standin",
]


def _axis(size: int) -> torch.Tensor:
    """Pixel centres (i + 1/2) / size of a grid on [0, 1]."""
    return (torch.arange(size, dtype=torch.float64) + 0.5) / size


# --------------------------------------------------------------------------- experiment (S)


def ball(size: int = 200, *, radius: float = 0.2, center: tuple[float, float] = (0.5, 0.5)) -> torch.Tensor:
    """Indicator of a disk on a ``size x size`` pixel grid of the unit square (Step 1 of (S)).

    Parameters
    ----------
    size : int
        Pixels per side (the paper: 200).
    radius : float
        Radius in units of the side (the paper: 0.2).
    center : (float, float)
        Centre (row, column) in units of the side.

    Returns
    -------
    torch.Tensor
        ``(size, size)`` float32, 1 where the pixel centre lies in the closed disk.

    Examples
    --------
    >>> m0 = ball(200)
    >>> round(float(m0.mean()), 3)  # pi * 0.2**2 = 0.1257
    0.126
    """
    size = check_int("size", size, 1)
    radius = check_positive("radius", radius)
    a = _axis(size)
    rr, cc = torch.meshgrid(a - center[0], a - center[1], indexing="ij")
    return (rr * rr + cc * cc <= radius * radius).to(torch.float32)


def _gaussian_kernel(std_px: float, dtype=torch.float64) -> torch.Tensor:
    half = max(1, int(math.ceil(4.0 * std_px)))
    x = torch.arange(-half, half + 1, dtype=dtype)
    k = torch.exp(-0.5 * (x / std_px) ** 2)
    return k / k.sum()


def _separable_blur(img: torch.Tensor, std_px: float) -> torch.Tensor:
    """Blur the last two axes of ``(B, C, H, W)`` with zero padding (the image is 0 outside)."""
    k = _gaussian_kernel(std_px, img.dtype)
    c = img.shape[1]
    pad = (k.numel() - 1) // 2
    kh = k.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    kw = k.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    img = F.conv2d(img, kh, padding=(pad, 0), groups=c)
    return F.conv2d(img, kw, padding=(0, pad), groups=c)


def gaussian_blur(image: torch.Tensor, std: float) -> torch.Tensor:
    """Convolve an image of the unit square with an isotropic Gaussian (Step 2 of (S)).

    Parameters
    ----------
    image : torch.Tensor
        ``(H, W)`` or ``(B, H, W)``, floating point; 0 is assumed outside the square.
    std : float
        Standard deviation in units of the image side (the paper's ``rho``; variance ``rho**2``).

    Returns
    -------
    torch.Tensor
        Same shape and dtype, values in the range of ``image``.

    Notes
    -----
    .. math::

        m_0^\\rho = m_0 * g_\\rho, \\qquad g_\\rho(x) = \\frac{1}{2\\pi\\rho^2} e^{-|x|^2 / 2\\rho^2},

    discretized as a separable sampled kernel of standard deviation ``std * W`` pixels,
    truncated at 4 standard deviations and normalized to sum 1.

    Examples
    --------
    >>> m0 = ball(64)
    >>> m = gaussian_blur(m0, 0.02)  # mass is kept (the disk is far from the border)
    >>> abs(float(m.sum()) - float(m0.sum())) < 1e-3, float(m.max()) <= 1.0
    (True, True)
    """
    if image.ndim not in (2, 3):
        raise ValueError(f"image: expected shape (H, W) or (B, H, W), got {tuple(image.shape)}")
    std = check_positive("std", std)
    x = image.reshape(-1, 1, *image.shape[-2:]).to(torch.float64)
    out = _separable_blur(x, std * image.shape[-1])
    return out.reshape(image.shape).to(image.dtype).clamp_(0.0, 1.0)


def smooth_random_field(n: int, size: int, *, correlation: float = 0.1, amplitude: float = 0.03,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Smooth Gaussian random displacement fields on the unit square (Step 3 of (S)).

    Parameters
    ----------
    n : int
        Number of independent fields.
    size : int
        Pixels per side of the output grid.
    correlation : float
        Standard deviation of the smoothing Gaussian, in units of the side (correlation length).
    amplitude : float
        Pointwise standard deviation of each displacement component, in units of the side.
    generator : torch.Generator, optional
        Source of randomness (seed it for repeatable fields).

    Returns
    -------
    torch.Tensor
        ``(n, 2, size, size)`` float32: the (row, column) displacement at every pixel centre.

    Notes
    -----
    White noise :math:`W` on a lattice of spacing :math:`h = \\ell / 2` is smoothed,
    :math:`d = A\\, (g_\\ell * W) / \\|g_\\ell\\|_2`, so that every lattice value is
    :math:`\\mathcal N(0, A^2)`, and interpolated bicubically to the pixels.
    """
    n = check_int("n", n, 1)
    size = check_int("size", size, 1)
    correlation = check_positive("correlation", correlation)
    amplitude = check_positive("amplitude", amplitude, strict=False)
    spacing = correlation / 2.0
    k = _gaussian_kernel(2.0, torch.float64)  # correlation = 2 lattice spacings
    pad = (k.numel() - 1) // 2
    nodes = int(math.ceil(1.0 / spacing)) + 1 + 2 * pad
    noise = torch.randn(n, 2, nodes, nodes, generator=generator, dtype=torch.float64)
    smooth = _separable_blur(noise, 2.0)  # zero padding; the valid centre is used below
    smooth = smooth[:, :, pad:nodes - pad, pad:nodes - pad] * (amplitude / float(k.pow(2).sum()))
    field = F.interpolate(smooth, size=(size, size), mode="bicubic", align_corners=True)
    return field.to(torch.float32)


def deform(image: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """Warp an image by displacement fields: ``out(x) = image(x + d(x))`` (bilinear, 0 outside).

    Parameters
    ----------
    image : torch.Tensor
        ``(H, W)`` (one image warped by every field) or ``(n, H, W)``.
    displacement : torch.Tensor
        ``(n, 2, H, W)`` (row, column) displacements in units of the side, as returned by
        :func:`smooth_random_field`.

    Returns
    -------
    torch.Tensor
        ``(n, H, W)``, dtype of ``image``.
    """
    if displacement.ndim != 4 or displacement.shape[1] != 2:
        raise ValueError(f"displacement: expected shape (n, 2, H, W), got {tuple(displacement.shape)}")
    n, _, h, w = displacement.shape
    if image.shape[-2:] != (h, w):
        raise ValueError(f"image and displacement: expected spatial shape {(h, w)}, got {tuple(image.shape[-2:])}")
    img = image.expand(n, h, w) if image.ndim == 2 else image
    rows, cols = _axis(h).to(torch.float32), _axis(w).to(torch.float32)
    rr, cc = torch.meshgrid(rows, cols, indexing="ij")
    # grid_sample wants (x = column, y = row) in [-1, 1] with align_corners=False pixel centres.
    gx = 2.0 * (cc + displacement[:, 1]) - 1.0
    gy = 2.0 * (rr + displacement[:, 0]) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    out = F.grid_sample(img.unsqueeze(1).to(torch.float32), grid, mode="bilinear",
                        padding_mode="zeros", align_corners=False)
    return out.squeeze(1).to(image.dtype).clamp_(0.0, 1.0)


def synthetic_marginals(rho: float, n: int, *, size: int = 200, radius: float = 0.2,
                        correlation: float = 0.1, amplitude: float = 0.03, seed: int = 0) -> torch.Tensor:
    """Marginal maps of the paper's synthetic experiment (S): blurred, deformed balls.

    Parameters
    ----------
    rho : float
        Noise level: standard deviation of the blur in units of the side (the paper uses
        0.01, ..., 0.09).
    n : int
        Number of samples (the paper: 1000 per ``rho``).
    size : int
        Pixels per side (the paper: 200).
    radius : float
        Radius of the ball (the paper: 0.2).
    correlation, amplitude : float
        Of the random deformation; see :func:`smooth_random_field` and the module notes.
    seed : int
        Seed of the deformations; the same ``(rho, n, seed, ...)`` always gives the same maps.

    Returns
    -------
    torch.Tensor
        ``(n, size, size)`` float32 in [0, 1].

    Notes
    -----
    .. math::

        m^\\rho(x) = (\\mathbb 1_{B(c, r)} * g_\\rho)(x + d(x)),

    Steps 1-3 of supplement Sect. 2.2. The blur and the deformation commute only
    approximately; the paper blurs first and so does this function.

    References
    ----------
    Nordström et al., *Noisy Image Segmentation With Soft-Dice*, Sect. 6.2 (S); supplement Sect. 2.2.

    Examples
    --------
    >>> m = synthetic_marginals(0.05, 3, size=64, seed=1)
    >>> tuple(m.shape), bool((m >= 0).all() and (m <= 1).all())
    ((3, 64, 64), True)
    """
    rho = check_positive("rho", rho)
    n = check_int("n", n, 1)
    g = torch.Generator().manual_seed(int(seed))
    blurred = gaussian_blur(ball(size, radius=radius), rho)
    field = smooth_random_field(n, size, correlation=correlation, amplitude=amplitude, generator=g)
    return deform(blurred, field)


# --------------------------------------------------------------------------- Gold Atlas stand-in


#: The nine ROIs of the Gold Atlas pelvis data, in the order of the paper's Table 1.
GOLD_ATLAS_ROIS: tuple[str, ...] = (
    "Urinary bladder",
    "Rectum",
    "Anal canal",
    "Penile bulb",
    "Neurovascular b.",
    "Femoral head R",
    "Femoral head L",
    "Prostate",
    "Seminal vesicles",
)


@dataclass(frozen=True)
class OrganSpec:
    """Shape of one stand-in organ, in pixels of a ``128 x 128`` patch and slices.

    ``semi_axes`` are the (slice, row, column) semi-axes of each ellipsoid, ``offsets`` the
    in-plane (row, column) offsets of its centre (two entries for paired structures),
    ``slices`` the slab depth, ``boundary_sd`` the pointwise standard deviation (pixels) of a
    rater's smooth boundary displacement and ``size_sd`` the standard deviation of a rater's
    relative size bias. Large ``boundary_sd`` relative to the organ means noisy labels.
    """

    semi_axes: tuple[float, float, float]
    offsets: tuple[tuple[float, float], ...]
    slices: int
    boundary_sd: float
    size_sd: float


#: Stand-in organs: rough sizes of the real ROIs on ~1 mm pixels and 3 mm slices; the small,
#: thin structures (anal canal, penile bulb, neurovascular bundles, seminal vesicles) get
#: boundaries that the simulated raters disagree on most, as inter-observer studies report.
STANDIN_ORGANS: Mapping[str, OrganSpec] = {
    "Urinary bladder": OrganSpec((8.0, 30.0, 38.0), ((0.0, 0.0),), 18, 2.0, 0.04),
    "Rectum": OrganSpec((10.0, 14.0, 15.0), ((0.0, 0.0),), 22, 2.5, 0.06),
    "Anal canal": OrganSpec((6.0, 8.0, 9.0), ((0.0, 0.0),), 14, 3.0, 0.12),
    "Penile bulb": OrganSpec((3.0, 7.0, 9.0), ((0.0, 0.0),), 8, 3.0, 0.15),
    "Neurovascular b.": OrganSpec((9.0, 3.5, 3.0), ((6.0, -18.0), (6.0, 18.0)), 20, 2.5, 0.15),
    "Femoral head R": OrganSpec((8.0, 24.0, 24.0), ((0.0, 0.0),), 18, 1.5, 0.03),
    "Femoral head L": OrganSpec((8.0, 24.0, 24.0), ((0.0, 0.0),), 18, 1.5, 0.03),
    "Prostate": OrganSpec((7.0, 18.0, 22.0), ((0.0, 0.0),), 16, 2.5, 0.08),
    "Seminal vesicles": OrganSpec((4.0, 6.0, 18.0), ((0.0, -14.0), (0.0, 14.0)), 10, 3.0, 0.15),
}


def _rater_masks(spec: OrganSpec, n_raters: int, patch: int, g: torch.Generator) -> torch.Tensor:
    """Binary masks ``(n_raters, spec.slices, patch, patch)`` of one stand-in organ of one case."""
    z = torch.arange(spec.slices, dtype=torch.float32) - (spec.slices - 1) / 2
    a = torch.arange(patch, dtype=torch.float32) - (patch - 1) / 2
    # The case's anatomy: a random size; each rater: a size bias and a smooth in-plane boundary
    # displacement field that drifts linearly from the bottom slice to the top one.
    case_scale = 1.0 + 0.1 * float(torch.randn(1, generator=g))
    rater_scale = (1.0 + spec.size_sd * torch.randn(n_raters, generator=g)).clamp_min(0.3) * case_scale
    field = smooth_random_field(2 * n_raters, patch, correlation=0.15, amplitude=1.0, generator=g)[:, 0]
    field = field.reshape(n_raters, 2, 1, patch, patch)
    t = ((z + (spec.slices - 1) / 2) / max(spec.slices - 1, 1)).view(1, -1, 1, 1)
    shift = (1 - t) * field[:, 0] + t * field[:, 1]  # (raters, slices, patch, patch), N(0, 1) pointwise
    sz, sr, sc = spec.semi_axes
    scale = rater_scale.view(-1, 1, 1, 1)
    level = torch.full((n_raters, spec.slices, patch, patch), math.inf)
    for (dr, dc) in spec.offsets:
        # Ellipsoidal radius q (1 on the surface); a boundary shift of s pixels moves the level
        # set q = 1 by about s / (in-plane semi-axis).
        q2 = (z.view(1, -1, 1, 1) / (sz * scale)) ** 2 + ((a.view(1, 1, -1, 1) - dr) / (sr * scale)) ** 2 \
            + ((a.view(1, 1, 1, -1) - dc) / (sc * scale)) ** 2
        level = torch.minimum(level, q2.sqrt() - 1 - spec.boundary_sd * shift / (math.sqrt(sr * sc) * scale))
    return level <= 0


def gold_atlas_standin(n_cases: int = 19, *, n_raters: int = 5, patch: int = 128, scan_slices: int | None = 84,
                       seed: int = 0, organs: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """A synthetic multi-rater **stand-in** for the Gold Atlas (G) soft labels.

    Parameters
    ----------
    n_cases : int
        Number of simulated patients (the real data set: 19).
    n_raters : int
        Raters per organ (the real data set: 5); ``m`` takes values in ``{k / n_raters}``.
    patch : int
        In-plane patch size (the paper: 128).
    scan_slices : int or None
        Slices of the simulated scan (default 84, the slice count reported for a Gold Atlas CT);
        each organ sits at a random height in it and the patch spans the whole scan, as
        :func:`softseg.data.gold_atlas.extract_patch` does with ``slices="all"``. None keeps
        only the organ's own slab (``slices="roi"``).
    seed : int
        Seed; the same arguments always give the same data.
    organs : sequence of str, optional
        Subset of :data:`GOLD_ATLAS_ROIS` (default: all nine).

    Returns
    -------
    dict[str, torch.Tensor]
        ROI name -> ``(n_cases, slices, patch, patch)`` float32 marginals, the voxel-wise mean
        of the raters' binary masks, like :func:`softseg.data.gold_atlas.load_gold_atlas`
        returns for the real data.

    Raises
    ------
    TypeError, ValueError
        If a count is not an int of the right size, ``scan_slices`` is smaller than an organ's
        slab, or an organ name is unknown.

    Notes
    -----
    Each organ is an ellipsoid (a pair of them for the bilateral neurovascular bundles and
    seminal vesicles, see :data:`STANDIN_ORGANS`) with a random case-wise size. Rater ``k``
    draws it with a relative size bias :math:`\\mathcal N(0, \\sigma_s^2)` and a smooth boundary
    displacement field of pointwise standard deviation :math:`\\sigma_b` pixels; then

    .. math::

        m = \\frac{1}{K}\\sum_{k=1}^K L_k, \\qquad L_k \\in \\{0, 1\\}^{Z \\times 128 \\times 128}.

    This is a stand-in, not the Gold Atlas: it has the same structure (5 raters, soft labels in
    steps of 1/5, organs of very different size and agreement in a 3-D patch), not the same
    numbers.

    Examples
    --------
    >>> data = gold_atlas_standin(2, organs=["Prostate"], patch=64, scan_slices=None)
    >>> m = data["Prostate"]
    >>> tuple(m.shape), [round(v, 1) for v in m.unique().tolist()]
    ((2, 16, 64, 64), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    """
    n_cases = check_int("n_cases", n_cases, 1)
    n_raters = check_int("n_raters", n_raters, 1)
    patch = check_int("patch", patch, 8)
    names = list(GOLD_ATLAS_ROIS if organs is None else organs)
    unknown = [o for o in names if o not in STANDIN_ORGANS]
    if unknown:
        raise ValueError(f"organs: expected names from {list(GOLD_ATLAS_ROIS)}, got {unknown}")
    if scan_slices is not None:
        deepest = max(STANDIN_ORGANS[o].slices for o in names)
        scan_slices = check_int("scan_slices", scan_slices, deepest)
    out: dict[str, torch.Tensor] = {}
    for i, name in enumerate(GOLD_ATLAS_ROIS):
        if name not in names:
            continue
        spec = STANDIN_ORGANS[name]
        g = torch.Generator().manual_seed(int(seed) * 1000 + i)  # each organ reproducible on its own
        depth = spec.slices if scan_slices is None else scan_slices
        volume = torch.zeros(n_cases, depth, patch, patch)
        for case in range(n_cases):
            m = _rater_masks(spec, n_raters, patch, g).to(torch.float32).mean(0)
            start = 0 if scan_slices is None else int(torch.randint(0, depth - spec.slices + 1, (1,), generator=g))
            volume[case, start:start + spec.slices] = m
        out[name] = volume
    return out
