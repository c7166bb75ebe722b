"""Table 1 of the soft-Dice paper: gradient descent on soft-Dice converges to the Theorem 1 optimum.

Nordström, Hult, Maki and Löfman, *Noisy Image Segmentation With Soft-Dice*, Sect. 6 and
supplement Sect. 2, minimize soft-Dice over *unconstrained* logits ``F`` (one free logit per
voxel, no network), starting from ``F_1 ~ N(0, 1)``, and report after ``l = 1, 10, 20, 100,
200`` iterates how far ``sigmoid(F_l)`` is from the optimal segmentation of Theorem 1:
``e0`` (soft, eq. (17)) and ``e1`` (after a 1/2-threshold, eq. (18)). This module is that
experiment, batched over samples:

- :func:`soft_dice_logit_gradient` — the analytic gradient of
  :math:`\\mathrm{SD}_m(\\sigma\\circ F)` with respect to the voxel logits (derived below; the
  printed eq. (76) of the supplement is not it);
- :func:`soft_dice_gradient_descent` — the descent, many maps at once, recording ``e0``, ``e1``,
  the soft-Dice score and optionally the Dice of thresholded iterates (Theorem 3);
- :func:`run` — the registered reproduction ``soft-dice-table1``: the synthetic rows (S) at the
  paper's full size, and the Gold Atlas rows (G) on the real data when ``data`` is given, else
  on the labelled multi-rater stand-in of :func:`softseg.data.blobs.gold_atlas_standin`.

Reading of the update rule (supplement eq. (74)-(76))
-----------------------------------------------------
With :math:`N` voxels of measure :math:`1/N` each (eq. (71)-(73)), :math:`c = \\sigma(F)` and the
soft-Dice *score* :math:`\\mathrm D'_m(c) = 2\\sum_j c_j M_j / (\\sum_j M_j + \\sum_j c_j)` (the
factors 1/N cancel in the ratio), the partial derivatives are

.. math::

    \\frac{\\partial \\mathrm D'_m(\\sigma\\circ F)}{\\partial F_i}
    = \\frac{2 M_i (\\sum_j M_j + \\sum_j c_j) - 2\\sum_j c_j M_j}{(\\sum_j M_j + \\sum_j c_j)^2}\\, c_i(1 - c_i)
    = \\frac{2}{N}\\, \\frac{M_i - \\mathrm D'_m/2}{\\|m\\|_1 + \\|c\\|_1}\\, c_i (1 - c_i),

with :math:`\\|\\cdot\\|_1` the normalized norms (means). Eq. (76) prints the numerator as
:math:`2M_i - 2\\frac1N\\sum_j c_j M_j`, dropping the factor :math:`\\sum_j M_j + \\sum_j c_j` that
multiplies :math:`M_i` and mixing sums with means; taken literally its fixed points are not the
Theorem 1 set. Eq. (75) also subtracts :math:`\\gamma` times the gradient of the *score*, which
would minimize Dice, while the text and Table 1 ("gradient ascent iterations") describe
minimizing the *loss*. The partial derivative is :math:`O(1/N)`; "normalized gradient descent with
:math:`\\gamma = 10N`" is read as plain descent on the loss with the gradient taken with respect
to the normalized measure :math:`\\lambda` (the :math:`L^2(\\lambda)` gradient, which is N times
the partial derivative), at step 10:

.. math::

    F_{l+1,i} = F_{l,i} - 10N\\,\\frac{\\partial\\,\\mathrm{SD}_m(\\sigma\\circ F_l)}{\\partial F_{l,i}}
    = F_{l,i} + 20\\,\\frac{M_i - \\mathrm D'_m(c_l)/2}{\\|m\\|_1 + \\|c_l\\|_1}\\, c_{l,i}(1 - c_{l,i}).

Every hard :math:`c \\in \\{0,1\\}^N` is a fixed point (the step carries the factor
:math:`c(1-c)`), but only the sets of Theorem 1 are *stable* limits: near a hard :math:`c` the push
on :math:`F_i` has the sign of :math:`M_i - \\mathrm D'/2`, so the saturation is kept exactly when
:math:`M_i \\ge \\mathrm D'/2` on the set and :math:`M_i \\le \\mathrm D'/2` off it, and a set with
that self-consistency is optimal (for :math:`d = \\mathcal D_m(s)` it maximizes
:math:`2\\langle s', m\\rangle - d(\\|s'\\|_1 + \\|m\\|_1)`, whose maximum is then 0). Dividing the
gradient by its L1, L2 or max norm instead (another meaning of "normalized") was tried during
development on 20 maps per rho: with the L1 and max norms the errors at l = 10 are already
below the paper's, with the L2 norm and gamma = 10N every step moves a voxel by about
10 sqrt(N) and the iterates saturate and stall, and all of them break down later (0/0 once the
gradient underflows), so none matches Table 1 better; the chapter shows a sweep over the fixed
step instead.

Iterations are counted as the paper does: ``F_1`` is the initialization, so ``l = 1`` is before
any step and ``l = 200`` after 199 steps; ``e0 = e1 = 0.5`` at ``l = 1`` on average for any ``m``.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from .._checks import check_float_tensor, check_option, check_positive, check_range
from ..reproduce import register
from ..theory import soft_dice_optimum

__all__ = [
    "TABLE1_ITERATIONS",
    "SYNTHETIC_RHOS",
    "PAPER_TABLE1",
    "PAPER_SAMPLES",
    "PRESETS",
    "GDResult",
    "soft_dice_logit_gradient",
    "soft_dice_gradient_descent",
    "TABLE1_NOTE",
    "table1_tolerance",
    "table1_rows",
    "run",
]

#: The iterates l at which Table 1 reports e0 and e1 (l = 1 is the initialization).
TABLE1_ITERATIONS: tuple[int, ...] = (1, 10, 20, 100, 200)

#: Noise levels of the synthetic experiment (S): blur standard deviation in units of the side.
SYNTHETIC_RHOS: tuple[float, ...] = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09)

#: Table 1 of the paper, quoted: row -> (e0, e1) at l = 1, 10, 20, 100, 200, interleaved as printed
#: (e0 l=1, e1 l=1, e0 l=10, e1 l=10, ...).
PAPER_TABLE1: Mapping[str, tuple[float, ...]] = {
    "G Urinary bladder": (0.500, 0.500, 0.004, 0.002, 0.001, 0.000, 0.000, 0.000, 0.000, 0.000),
    "G Rectum": (0.500, 0.500, 0.040, 0.011, 0.003, 0.002, 0.000, 0.000, 0.000, 0.000),
    "G Anal canal": (0.500, 0.500, 0.408, 0.307, 0.236, 0.087, 0.000, 0.000, 0.000, 0.000),
    "G Penile bulb": (0.500, 0.500, 0.466, 0.425, 0.417, 0.329, 0.044, 0.014, 0.000, 0.000),
    "G Neurovascular b.": (0.500, 0.500, 0.390, 0.286, 0.210, 0.095, 0.000, 0.000, 0.000, 0.000),
    "G Femoral head R": (0.500, 0.500, 0.028, 0.005, 0.001, 0.000, 0.000, 0.000, 0.000, 0.000),
    "G Femoral head L": (0.500, 0.500, 0.031, 0.006, 0.001, 0.000, 0.000, 0.000, 0.000, 0.000),
    "G Prostate": (0.500, 0.500, 0.166, 0.060, 0.013, 0.004, 0.000, 0.000, 0.000, 0.000),
    "G Seminal vesicles": (0.500, 0.500, 0.413, 0.322, 0.257, 0.136, 0.000, 0.000, 0.000, 0.000),
    "S rho=0.01": (0.500, 0.500, 0.022, 0.008, 0.001, 0.001, 0.000, 0.000, 0.000, 0.000),
    "S rho=0.02": (0.500, 0.500, 0.026, 0.011, 0.002, 0.002, 0.000, 0.000, 0.000, 0.000),
    "S rho=0.03": (0.500, 0.500, 0.027, 0.015, 0.004, 0.003, 0.001, 0.000, 0.000, 0.000),
    "S rho=0.04": (0.500, 0.500, 0.034, 0.021, 0.005, 0.005, 0.001, 0.001, 0.000, 0.000),
    "S rho=0.05": (0.500, 0.500, 0.039, 0.025, 0.007, 0.006, 0.001, 0.001, 0.000, 0.000),
    "S rho=0.06": (0.500, 0.500, 0.051, 0.034, 0.010, 0.009, 0.001, 0.001, 0.001, 0.001),
    "S rho=0.07": (0.500, 0.500, 0.057, 0.040, 0.013, 0.011, 0.002, 0.001, 0.001, 0.001),
    "S rho=0.08": (0.500, 0.500, 0.067, 0.048, 0.017, 0.015, 0.002, 0.002, 0.001, 0.001),
    "S rho=0.09": (0.500, 0.500, 0.080, 0.057, 0.022, 0.019, 0.003, 0.003, 0.001, 0.001),
}

#: Samples per row in the paper's Table 1.
PAPER_SAMPLES: Mapping[str, int] = {"G": 19, "S": 1000}

#: Sizes of the two presets: samples per rho (S) and stand-in cases per ROI (G).
PRESETS: Mapping[str, Mapping[str, int]] = {
    "fast": {"samples": 50, "cases": 2},
    "full": {"samples": 1000, "cases": 19},
}

#: Default number of maps advanced together (bounded by ``_CHUNK_ELEMENTS`` voxels per chunk).
_CHUNK_ELEMENTS = 10 * 2**15


class GDResult(NamedTuple):
    """Result of :func:`soft_dice_gradient_descent` for ``n`` maps and ``L`` recorded iterates."""

    #: The recorded iterates l (sorted, 1-based; l = 1 is the initialization).
    iterations: tuple[int, ...]
    #: ``(n, L)`` float64: e0 = ||sigmoid(F_l) - s||_1 (eq. (17)).
    e0: torch.Tensor
    #: ``(n, L)`` float64: e1 = ||1{sigmoid(F_l) >= 1/2} - s||_1 (eq. (18)).
    e1: torch.Tensor
    #: ``(n, L)`` float64: the soft-Dice score D'_m(sigmoid(F_l)) = 1 - SD_m.
    score: torch.Tensor
    #: ``(n,)`` float64: sup_s D_m(s), the optimal value (Theorem 1).
    optimal_dice: torch.Tensor
    #: ``(n, L, A)`` float64: D_m(1{sigmoid(F_l) >= a}) for each threshold a, or None.
    threshold_dice: torch.Tensor | None
    #: ``(k, L, *spatial)`` float32: sigmoid(F_l) of the first ``keep`` maps, or None.
    snapshots: torch.Tensor | None


# --------------------------------------------------------------------------- the gradient


def soft_dice_logit_gradient(f: torch.Tensor, m: torch.Tensor, *, batch_dims: int = 0) -> torch.Tensor:
    """Gradient of the soft-Dice loss ``SD_m(sigmoid(f))`` with respect to the voxel logits.

    Parameters
    ----------
    f : torch.Tensor
        Logits, shape ``(*batch, *spatial)``, floating point, finite.
    m : torch.Tensor
        Marginal probabilities, same shape, dtype and device, values in [0, 1].
    batch_dims : int, optional
        Number of leading axes of independent maps (the rest are voxels).

    Returns
    -------
    torch.Tensor
        Shape of ``f``: :math:`\\partial\\,\\mathrm{SD}_m(\\sigma\\circ F) / \\partial F_i`, the
        Euclidean partial derivatives on the voxel grid (what autograd returns). The
        :math:`L^2(\\lambda)` gradient of the normalized measure is ``N`` times this.

    Raises
    ------
    TypeError
        If ``f`` or ``m`` is not a floating-point tensor.
    ValueError
        If the shapes differ, ``m`` leaves [0, 1] or either holds a NaN, or ``batch_dims``
        leaves no voxel axis.

    Notes
    -----
    With :math:`c = \\sigma(F)`, :math:`N` voxels and normalized norms (means),

    .. math::

        \\frac{\\partial\\,\\mathrm{SD}_m(\\sigma\\circ F)}{\\partial F_i}
        = -\\frac{2}{N}\\,\\frac{M_i - \\mathrm D'_m(c)/2}{\\|m\\|_1 + \\|c\\|_1}\\; c_i (1 - c_i),
        \\qquad \\mathrm D'_m(c) = \\frac{2\\|c\\,m\\|_1}{\\|m\\|_1 + \\|c\\|_1} .

    The denominator is positive because :math:`c > 0`; where ``c`` underflows to 0 and
    ``m = 0`` everywhere it is clamped, giving a zero gradient (every ``c`` is optimal then).
    The printed eq. (76) of the supplement differs (see the module notes); this is the
    derivative of its eq. (75) with the sign of a descent on the loss.

    References
    ----------
    Nordström et al., *Noisy Image Segmentation With Soft-Dice*, eq. (2) and (14); supplement
    eq. (71)-(76).

    Examples
    --------
    >>> import torch
    >>> f = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    >>> m = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    >>> c = torch.sigmoid(f)
    >>> loss = 1 - 2 * (c * m).mean() / (m.mean() + c.mean())
    >>> loss.backward()
    >>> torch.allclose(f.grad, soft_dice_logit_gradient(f.detach(), m))
    True
    """
    check_float_tensor("f", f)
    check_float_tensor("m", m)
    if f.shape != m.shape:
        raise ValueError(f"f and m: expected equal shapes, got {tuple(f.shape)} and {tuple(m.shape)}")
    if isinstance(batch_dims, bool) or not isinstance(batch_dims, int) or not 0 <= batch_dims < f.ndim:
        raise ValueError(f"batch_dims: expected an int in [0, {f.ndim - 1}], got {batch_dims!r}")
    check_range("m", m, 0.0, 1.0)
    check_range("f", f, -math.inf, math.inf)
    dims = tuple(range(batch_dims, f.ndim))
    c = torch.sigmoid(f)
    den = (m.sum(dims, keepdim=True) + c.sum(dims, keepdim=True)).clamp_min(torch.finfo(f.dtype).tiny)
    half_score = (c * m).sum(dims, keepdim=True) / den  # D'/2
    return -2.0 * (m - half_score) / den * (c * (1.0 - c))


# --------------------------------------------------------------------------- the descent


def _check_iterations(iterations: Iterable[int]) -> tuple[int, ...]:
    its = sorted(set(int(i) for i in iterations))
    if not its or its[0] < 1 or any(isinstance(i, bool) for i in iterations):
        raise ValueError(f"iterations: expected non-empty positive ints (l = 1 is the start), got {iterations!r}")
    return tuple(its)


def _initial_logits(n: int, p: int, seed: int, start: int) -> torch.Tensor:
    """F_1 ~ N(0, 1) per map, each map from its own generator seeded by (seed, index): the
    draws do not depend on how the maps are chunked."""
    out = torch.empty(n, p)
    g = torch.Generator()
    for k in range(n):
        state = np.random.SeedSequence([int(seed), start + k]).generate_state(2, dtype=np.uint32)
        g.manual_seed(int(state[0]) << 32 | int(state[1]))
        torch.randn(p, generator=g, out=out[k])
    return out


def soft_dice_gradient_descent(
    m: torch.Tensor,
    *,
    iterations: Iterable[int] = TABLE1_ITERATIONS,
    lr: float = 10.0,
    seed: int = 0,
    thresholds: Sequence[float] = (),
    keep: int = 0,
    chunk: int | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> GDResult:
    """Minimize soft-Dice over free voxel logits by gradient descent, many maps at once.

    Parameters
    ----------
    m : torch.Tensor
        ``(n, *spatial)`` marginal maps (soft labels), floating point in [0, 1], on the CPU or a
        GPU; the descent runs in float32 on that device.
    iterations : iterable of int
        Iterates ``l`` to record (default Table 1's 1, 10, 20, 100, 200); the descent runs
        ``max(iterations) - 1`` steps.
    lr : float
        Step in units of N: the learning rate is ``gamma = lr * N`` (the paper: 10, i.e.
        ``gamma = 10N``).
    seed : int
        Seed of the initial logits; map ``k`` draws from its own stream ``(seed, k)``.
    thresholds : sequence of float
        Thresholds ``a`` in (0, 1) at which to record the Dice of the hardened iterates
        (Theorem 3); empty (default) skips it.
    keep : int
        Also return ``sigmoid(F_l)`` of the first ``keep`` maps at the recorded iterates.
    chunk : int, optional
        Maps advanced together (default: about 330 000 voxels, i.e. 8 maps of 200 x 200, which
        keeps the five working arrays in the CPU's L3 cache; fastest on the 2-core machine),
        lowered so that every worker gets a chunk.
    workers : int, optional
        Threads advancing chunks in parallel on the CPU, each running torch single-threaded
        (default: ``torch.get_num_threads()``; 1 on a GPU). Results do not depend on it.
    progress : bool
        Show a tqdm bar over the maps.

    Returns
    -------
    GDResult
        ``e0``, ``e1``, ``score`` (``(n, L)``), ``optimal_dice`` (``(n,)``) and the optional
        ``threshold_dice`` and ``snapshots``.

    Raises
    ------
    TypeError
        If ``m`` is not a floating-point tensor.
    ValueError
        If ``m`` has fewer than 2 dims, no voxels, values outside [0, 1] or NaN; ``lr`` is not
        positive; ``iterations`` is empty or holds a value < 1; a threshold is outside (0, 1);
        ``chunk``, ``workers`` or ``keep`` is not a valid count.

    Notes
    -----
    .. math::

        F_1 \\sim \\mathcal N(0, I), \\qquad
        F_{l+1} = F_l + 2\\,\\mathrm{lr}\\;\\frac{M - \\mathrm D'_m(c_l)/2}{\\|m\\|_1 + \\|c_l\\|_1}
        \\odot c_l \\odot (1 - c_l), \\qquad c_l = \\sigma(F_l),

    i.e. ``F - lr * N * soft_dice_logit_gradient(F, M)``; the optimum ``s`` is
    :func:`softseg.theory.soft_dice_optimum` (``m >= sup D / 2``, eq. (16)). Each step is five
    in-place passes over float32 arrays (sigmoid, two row reductions, two fused updates), with
    no Python loop over voxels or maps; float64 is used only for the recorded errors.

    References
    ----------
    Nordström et al., *Noisy Image Segmentation With Soft-Dice*, Sect. 6.1, eq. (14)-(18),
    Table 1; supplement eq. (71)-(80).

    Examples
    --------
    >>> import torch
    >>> m = torch.tensor([[0.9, 0.8, 0.3, 0.1, 0.0, 0.0]])
    >>> res = soft_dice_gradient_descent(m, iterations=(1, 200), seed=0)
    >>> res.e1[0, -1].item(), bool(res.e0[0, -1] < 0.01)  # l = 200: at the optimum {0.9, 0.8}
    (0.0, True)
    >>> round(res.score[0, -1].item(), 3), round(res.optimal_dice[0].item(), 3)  # 2 * 1.7 / (2.1 + 2)
    (0.829, 0.829)
    """
    check_float_tensor("m", m)
    if m.ndim < 2 or m.numel() == 0:
        raise ValueError(f"m: expected shape (n, *spatial) with at least one voxel, got {tuple(m.shape)}")
    check_range("m", m, 0.0, 1.0)
    lr = check_positive("lr", lr)
    its = _check_iterations(iterations)
    a_list = [float(a) for a in thresholds]
    if any(not 0.0 < a < 1.0 for a in a_list):
        raise ValueError(f"thresholds: expected values in (0, 1), got {list(thresholds)}")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise ValueError(f"keep: expected an int >= 0, got {keep!r}")
    n, spatial = m.shape[0], tuple(m.shape[1:])
    p = math.prod(spatial)
    if chunk is None:
        chunk = max(1, _CHUNK_ELEMENTS // p)
    elif isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk: expected an int >= 1, got {chunk!r}")
    device = m.device
    flat = m.reshape(n, p)
    opt = soft_dice_optimum(flat, batch_dims=1)
    L = len(its)
    e0 = torch.empty(n, L, dtype=torch.float64)
    e1 = torch.empty(n, L, dtype=torch.float64)
    score = torch.empty(n, L, dtype=torch.float64)
    tdice = torch.empty(n, L, len(a_list), dtype=torch.float64) if a_list else None
    keep = min(keep, n)
    snaps = torch.empty(keep, L, p, dtype=torch.float32) if keep else None
    record = {l: k for k, l in enumerate(its)}
    last = its[-1]
    step = 2.0 * lr  # F += step * (M - D'/2) / (mean M + mean c) * c (1 - c)
    tiny = torch.finfo(torch.float32).tiny
    def descend(start: int, stop: int) -> None:
        with torch.no_grad():
            M = flat[start:stop].to(device=device, dtype=torch.float32).contiguous()
            S = opt.segmentation[start:stop].to(device=device, dtype=torch.float32)
            F = _initial_logits(stop - start, p, seed, start).to(device)
            c, u, g = torch.empty_like(F), torch.empty_like(F), torch.empty_like(F)
            m_mean = M.sum(1, dtype=torch.float64).div_(p).to(torch.float32)
            for l in range(1, last + 1):
                torch.sigmoid(F, out=c)
                c_mean = c.sum(1) / p
                cm_mean = torch.linalg.vecdot(c, M) / p
                den = (m_mean + c_mean).clamp_min_(tiny)
                if l in record:
                    k = record[l]
                    e0[start:stop, k] = (c - S).abs_().sum(1, dtype=torch.float64).cpu() / p
                    hard = (c >= 0.5).to(torch.float32)
                    e1[start:stop, k] = (hard - S).abs_().sum(1, dtype=torch.float64).cpu() / p
                    score[start:stop, k] = (2.0 * cm_mean.double() / den.double()).cpu()
                    for j, a in enumerate(a_list):
                        s_a = (c >= a).to(torch.float32)
                        inter = torch.linalg.vecdot(s_a, M).double()
                        dd = s_a.sum(1, dtype=torch.float64) + m_mean.double() * p
                        tdice[start:stop, k, j] = torch.where(dd > 0, 2 * inter / dd.clamp_min(1e-300), 0.0).cpu()
                    if snaps is not None and start < keep:
                        snaps[start:min(stop, keep), k] = c[: min(stop, keep) - start].cpu()
                if l == last:
                    break
                alpha = (step / den).unsqueeze(1)
                beta = (cm_mean / den).unsqueeze(1)  # D'/2
                torch.sub(M, beta, out=u).mul_(alpha)  # step (M - D'/2) / (||m|| + ||c||)
                torch.addcmul(c, c, c, value=-1.0, out=g)  # c (1 - c)
                F.addcmul_(u, g)
        bar.update(stop - start)

    # On the CPU, chunks run in `workers` Python threads with one torch thread each (torch ops
    # release the GIL): unlike torch's own OpenMP threads, which wait for each other after every
    # op, this keeps its speed when other processes share the cores (20x faster then, measured
    # on the 2-core machine; as fast when it is idle).
    if workers is None:
        workers = torch.get_num_threads() if device.type == "cpu" else 1
    elif isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers: expected an int >= 1, got {workers!r}")
    chunk = max(1, min(chunk, -(-n // workers)))
    spans = [(a, min(n, a + chunk)) for a in range(0, n, chunk)]
    workers = min(workers, len(spans))
    with tqdm(total=n, disable=not progress, unit="map", leave=False) as bar:
        if workers == 1:
            for a, b in spans:
                descend(a, b)
        else:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    for future in [pool.submit(descend, a, b) for a, b in spans]:
                        future.result()
            finally:
                torch.set_num_threads(threads)
    return GDResult(
        iterations=its,
        e0=e0,
        e1=e1,
        score=score,
        optimal_dice=opt.dice.to(torch.float64).cpu(),
        threshold_dice=tdice,
        snapshots=None if snaps is None else snaps.reshape(keep, L, *spatial),
    )


# --------------------------------------------------------------------------- Table 1


#: MyST label of the chapter section that explains how our Table 1 compares with the paper's.
TABLE1_NOTE = "sd-table1-agreement"

#: Half a unit in the last digit the paper prints (three decimals).
PAPER_ROUNDING = 0.0005

#: Standard errors of the difference allowed by :func:`table1_tolerance`.
TOLERANCE_SE = 3.0


def table1_tolerance(per_map: torch.Tensor, paper_samples: int) -> float:
    """How far our mean error may lie from the paper's printed one by chance alone.

    .. math::

        \\text{tol} = 0.0005 + 3\\, s \\sqrt{1/n + 1/n_\\text{paper}},

    with :math:`s` the standard deviation of the error over our :math:`n` maps. Both means are
    Monte-Carlo estimates over independent random maps (and random initial logits) of the same
    generator, so their difference has standard error :math:`s\\sqrt{1/n + 1/n_\\text{paper}}`
    — taking the paper's per-map spread to be ours, since the paper does not print it — and the
    paper rounds to three decimals (0.0005). Three standard errors: a true agreement is called
    "differs" with probability about 0.3 % per cell.

    Parameters
    ----------
    per_map : torch.Tensor
        ``(n,)`` errors of one column (e0 or e1 at one l), one per map.
    paper_samples : int
        The paper's number of maps for the row (1000 for S, 19 for G).
    """
    n = int(per_map.shape[0])
    check_positive("paper_samples", paper_samples)
    spread = float(per_map.double().std()) if n > 1 else 0.0
    return PAPER_ROUNDING + TOLERANCE_SE * spread * math.sqrt(1.0 / max(n, 1) + 1.0 / paper_samples)


def table1_rows(row: str, result: GDResult, *, paper: Sequence[float] | None = None,
                paper_samples: int | None = None) -> list[dict[str, Any]]:
    """Rows of the results format for one Table 1 row: sample count, then mean e0 / e1 per l.

    Rows with a paper value carry ``note`` :data:`TABLE1_NOTE` and, when ``paper_samples`` is
    known, the Monte-Carlo ``tolerance`` of :func:`table1_tolerance`. The sample count is not
    compared (it is a choice of the run, not a result).

    Parameters
    ----------
    row : str
        Row label, e.g. ``"S rho=0.05"`` or ``"G Prostate (stand-in)"``.
    result : GDResult
        Of :func:`soft_dice_gradient_descent` with the Table 1 iterations.
    paper : sequence of float, optional
        The paper's 10 values in printed order (:data:`PAPER_TABLE1`), or None.
    paper_samples : int, optional
        The paper's sample count for this row.

    Returns
    -------
    list of dict
        ``{"table": "Table 1", "row": row, "column": "samples" | "e0 l=..." | "e1 l=...",
        "ours": ..., "paper": ...}``.
    """
    rows: list[dict[str, Any]] = [
        {"table": "Table 1", "row": row, "column": "samples", "ours": int(result.e0.shape[0]),
         "paper": paper_samples}
    ]
    e0, e1 = result.e0.mean(0), result.e1.mean(0)
    for k, l in enumerate(result.iterations):
        pk = TABLE1_ITERATIONS.index(l) if (paper is not None and l in TABLE1_ITERATIONS) else None
        for name, values, offset in (("e0", e0, 0), ("e1", e1, 1)):
            cell = {
                "table": "Table 1", "row": row, "column": f"{name} l={l}", "ours": float(values[k]),
                "paper": None if pk is None else float(paper[2 * pk + offset]),
            }
            if cell["paper"] is not None:
                cell["note"] = TABLE1_NOTE
                if paper_samples is not None:
                    per_map = (result.e0 if name == "e0" else result.e1)[:, k]
                    cell["tolerance"] = table1_tolerance(per_map, paper_samples)
            rows.append(cell)
    return rows


def _group_by_shape(patches: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    groups: dict[tuple[int, ...], list[torch.Tensor]] = {}
    for t in patches:
        groups.setdefault(tuple(t.shape), []).append(t)
    return [torch.stack(v) for v in groups.values()]


def _gold_atlas_rows(marginals: Mapping[str, Sequence[torch.Tensor] | torch.Tensor], *, label: str,
                     with_paper: bool, seed: int, progress: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for r, (roi, patches) in enumerate(marginals.items()):
        stacks = _group_by_shape(list(patches))
        parts = [soft_dice_gradient_descent(s, seed=seed + 7919 * r + 104729 * i, progress=progress)
                 for i, s in enumerate(stacks)]
        merged = GDResult(
            iterations=parts[0].iterations,
            e0=torch.cat([p.e0 for p in parts]), e1=torch.cat([p.e1 for p in parts]),
            score=torch.cat([p.score for p in parts]), optimal_dice=torch.cat([p.optimal_dice for p in parts]),
            threshold_dice=None, snapshots=None,
        )
        key = f"G {roi}"
        rows += table1_rows(f"{key}{label}", merged, paper=PAPER_TABLE1.get(key) if with_paper else None,
                            paper_samples=PAPER_SAMPLES["G"] if with_paper else None)
    return rows


@register(
    "soft-dice-table1",
    paper="Nordström et al., Noisy Image Segmentation With Soft-Dice",
    description="Table 1: e0/e1 of gradient descent on soft-Dice vs the Theorem 1 optimum, "
                "synthetic (S) and Gold Atlas (G; a 5-rater stand-in unless --data is given)",
)
def run(preset: str, *, data: str | None = None, seed: int = 0, progress: bool = True) -> list[dict[str, Any]]:
    """Reproduce Table 1: synthetic rows (S) and Gold Atlas rows (G).

    Parameters
    ----------
    preset : {"fast", "full"}
        ``fast``: 50 maps per rho and 2 stand-in cases per ROI; ``full``: the paper's 1000 maps
        per rho and 19 cases.
    data : path, optional
        Folder of the Gold Atlas data as distributed (the 19 ``<case>.zip`` or extracted case
        folders, see :func:`softseg.data.gold_atlas.load_gold_atlas`). Without it the G rows run
        on :func:`softseg.data.blobs.gold_atlas_standin` and are labelled ``(stand-in)``, with no
        paper value beside them (different data).
    seed : int
        Seed of the synthetic maps, the stand-in and the initial logits.
    progress : bool
        tqdm progress bars.

    Returns
    -------
    list of dict
        Rows of the results format, ``row`` as in the paper's Table 1 (``"S rho=0.05"``,
        ``"G Prostate"``), ``column`` ``"samples"``, ``"e0 l=20"``, ``"e1 l=200"``, ...
    """
    from ..data.blobs import gold_atlas_standin, synthetic_marginals

    check_option("preset", preset, tuple(PRESETS))
    sizes = PRESETS[preset]
    rows: list[dict[str, Any]] = []
    if data is not None:
        from ..data.gold_atlas import load_gold_atlas

        rows += _gold_atlas_rows(load_gold_atlas(data, progress=progress), label="", with_paper=True,
                                 seed=seed, progress=progress)
    else:
        standin = gold_atlas_standin(sizes["cases"], seed=seed)
        rows += _gold_atlas_rows(standin, label=" (stand-in)", with_paper=False, seed=seed, progress=progress)
    for k, rho in enumerate(tqdm(SYNTHETIC_RHOS, desc="S rho", disable=not progress, leave=False)):
        maps = synthetic_marginals(rho, sizes["samples"], seed=seed * 1000 + k)
        result = soft_dice_gradient_descent(maps, seed=seed * 1000 + 100 + k, progress=progress)
        key = f"S rho={rho:.2f}"
        rows += table1_rows(key, result, paper=PAPER_TABLE1[key], paper_samples=PAPER_SAMPLES["S"])
    return rows
