r"""Theory of distribution-aware margin calibration (Li, Yu & Zhang), checked by computation.

Three groups of helpers behind the chapter ``notebooks/margin_calibration.md``:

* **Theorem 1** — :func:`exact_eps_k` (eq. 12), :func:`eps_k_eq19` (eq. 19) and
  :func:`corollary_eps` (eq. 22 with the ``μ_k`` of Corollary 1.1, i.e. the form of eq. 24);
  the general form of eq. 22 for any margins is :func:`softseg.losses.margin_bound_terms`.
  :func:`complexity_limit` is the ``F`` at which eq. 22 diverges; :func:`finite_bound_possible`,
  :func:`min_images_for_finite_bound` and :func:`min_frequency_for_finite_bound` say when the
  bound can be finite at all once ``σ(1/η)`` is counted in ``F``; :func:`eq16_from_eq15` redoes
  the step from eq. 15 to eq. 16 with sympy.
* **Corollary 1.1** — :func:`lagrangian_optimum` derives the optimal margins with sympy from the
  Lagrangian of "minimize ε subject to ``Σ_k ρ_0k`` fixed"; :func:`minimize_bound` finds them
  numerically with :mod:`scipy.optimize`; :func:`cauchy_schwarz_minimum` is the right-hand side
  of eq. 26. All three hold ``F`` fixed, as the proof does; :func:`corollary_eps_sigma` lets ``F``
  follow ``ρ_max`` through ``σ(1/η)`` (:func:`sigma_per_margin`), and
  :func:`minimize_bound_sigma` shows that eq. 23 is then no longer the optimum.
* **a 2-class 1-D toy problem** — :func:`toy_population`, :func:`fit_toy_boundary`,
  :func:`toy_iou` and :func:`iou_optimal_boundary`: where a linear score puts its decision
  boundary when trained with cross-entropy or the calibrated log-loss with or without the
  distribution-aware offsets (the widget of :mod:`softseg.widgets.margin` draws them).

Notation: ``c`` classes with ``n_k`` training pixels each, ``n = Σ_k n_k``, ``F = C(Θ) + σ(1/η)``
with ``σ(1/η) = ρ_max/(4c)·√(2m log(2c/η))``, ``ρ_max = max_k max(ρ_k0, ρ_0k)`` and ``m`` pixels
per image (Theorem 1). ``complexity`` below is ``F`` itself (the paper leaves ``C(Θ)`` symbolic);
the helpers that take it hold it fixed, i.e. they ignore that ``σ`` grows with ``ρ_max``
(except :func:`corollary_eps_sigma` and :func:`minimize_bound_sigma`, whose ``complexity`` is
``C(Θ)``).
In Corollary 1.1

.. math:: \mu_k = \frac{p_k \sqrt{n_k}}{v(n-n_k) - p_k\sqrt{n-n_k}},\qquad p_k = n_k/n .

A note on the printed proof: eq. (25) reads
``(Σ_k √(x_k/y_k)·√y_k)² ≤ (Σ_k x_k)(Σ_k y_k)``; the Cauchy–Schwarz inequality that gives
eq. (26) is ``(Σ_k √x_k)² ≤ (Σ_k x_k/y_k)(Σ_k y_k)`` (``x_k/y_k`` in the first factor). Eq. (26)
and the equality condition ``√x_k / y_k = const`` are those of the corrected form, which is what
this module and its tests check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np
import torch

from ._checks import check_int, check_option, check_positive

__all__ = [
    "corollary_mu",
    "corollary_eps",
    "feasibility_floor",
    "complexity_limit",
    "finite_bound_possible",
    "sigma_per_margin",
    "corollary_eps_sigma",
    "minimize_bound_sigma",
    "min_images_for_finite_bound",
    "min_frequency_for_finite_bound",
    "Eq16Check",
    "eq16_from_eq15",
    "exact_eps_k",
    "eps_k_eq19",
    "cauchy_schwarz_minimum",
    "LagrangianOptimum",
    "lagrangian_optimum",
    "minimize_bound",
    "ToyPopulation",
    "toy_population",
    "toy_scores",
    "toy_loss",
    "fit_toy_boundary",
    "toy_iou",
    "iou_optimal_boundary",
]


# --------------------------------------------------------------------------- argument checks


def _float_array(name: str, value, expected: str) -> np.ndarray:
    """``value`` (a tensor, array or sequence) as a float64 numpy array; ``TypeError`` naming
    ``expected`` when it holds something other than numbers."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected {expected}, got {value!r}") from err


def _counts(class_counts, *, min_classes: int = 1) -> np.ndarray:
    """``class_counts`` as a float64 array ``(C,)`` of strictly positive, finite counts."""
    counts = _float_array("class_counts", class_counts, "a 1-D sequence of numbers")
    if counts.ndim != 1 or counts.size < min_classes:
        raise ValueError(f"class_counts: expected a 1-D (C,) vector with C >= {min_classes}, "
                         f"got shape {counts.shape}")
    if not np.isfinite(counts).all() or (counts <= 0).any():
        raise ValueError(f"class_counts: expected finite counts > 0 (every class present), got {counts.tolist()}")
    return counts


def _margins_like(name: str, rho, size: int) -> np.ndarray:
    arr = _float_array(name, rho, "a (C,) array of margins")
    if arr.shape[-1:] != (size,):
        raise ValueError(f"{name}: expected margins of shape (..., C) with C = {size}, got shape {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{name}: expected finite margins >= 0")
    return arr


# --------------------------------------------------------------------------- Theorem 1


def corollary_mu(class_counts, v: float = 1.0) -> np.ndarray:
    r"""``μ_k`` of Corollary 1.1: ``p_k √n_k / (v(n − n_k) − p_k √(n − n_k))``.

    Parameters
    ----------
    class_counts : array_like
        ``(C,)`` pixel counts ``n_k > 0``, ``C ≥ 2``.
    v : float
        The hyper-parameter ``v > 0``.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` float64; ``+inf`` where the denominator is ``≤ 0`` (``v`` too small).

    Raises
    ------
    TypeError, ValueError
        For counts that are not a 1-D vector of positive finite numbers with ``C ≥ 2``, or
        ``v ≤ 0``.

    Notes
    -----
    With ``r = n v`` this is the ``μ_k = √n_k / (r(n/n_k − 1) − √(n − n_k))`` of the proof
    (text after eq. 26), for which ``√(n − n_k) + √n_k/μ_k = r(n − n_k)/n_k`` (eq. 24).

    References
    ----------
    Li, Yu & Zhang, Corollary 1.1; proof, eq. (24).
    """
    counts = _counts(class_counts, min_classes=2)
    v = check_positive("v", v)
    n = counts.sum()
    p = counts / n
    den = v * (n - counts) - p * np.sqrt(n - counts)
    with np.errstate(divide="ignore"):
        return np.where(den > 0, p * np.sqrt(counts) / np.where(den > 0, den, 1.0), np.inf)


def feasibility_floor(class_counts, *, complexity: float = 1.0) -> np.ndarray:
    r"""``4cF √(n − n_k)/n_k``: the margin ``ρ_0k`` must exceed it for eq. 22's term to be finite.

    Eq. 22's denominator ``n_k ρ_0k/(4cF) − √(n − n_k)`` is positive exactly when
    ``ρ_0k > 4cF√(n − n_k)/n_k``; otherwise class ``k``'s bound is vacuous.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` float64.
    """
    counts = _counts(class_counts, min_classes=2)
    big_f = check_positive("complexity", complexity)
    c, n = counts.size, counts.sum()
    return 4 * c * big_f * np.sqrt(n - counts) / counts


def corollary_eps(rho_0k, class_counts, *, v: float = 1.0, complexity: float = 1.0) -> np.ndarray:
    r"""The bound ``ε`` of Theorem 1 (eq. 22) with ``μ_k`` of Corollary 1.1, for margins ``ρ_0k``.

    Parameters
    ----------
    rho_0k : array_like
        Margins of shape ``(..., C)`` (a batch of margin vectors is allowed), ``≥ 0``.
    class_counts : array_like
        ``(C,)`` pixel counts ``n_k > 0``.
    v : float
        Hyper-parameter of ``μ_k`` (``r = n v`` in the proof).
    complexity : float
        ``F = C(Θ) + σ(1/η) > 0``, held fixed as the corollary does. Corollary 1.1 treats ``F``
        as a constant, but ``σ(1/η) = ρ_max/(4c)·√(2m log(2c/η))`` grows with the largest
        margin, so over margins with a fixed sum ``F`` is not constant; the corollary's
        optimum (eq. 23) is the optimum at fixed ``F``, i.e. with ``σ``'s dependence on
        ``ρ_max`` ignored.

    Returns
    -------
    numpy.ndarray
        ``ε`` of shape ``(...)``; ``+inf`` where some class's denominator is ``≤ 0``.

    Notes
    -----
    With ``x_k = r(n − n_k)/n_k²`` and ``y_k = ρ_0k/(4cF) − √(n − n_k)/n_k`` (eq. 24),

    .. math:: \epsilon = \frac1c \sum_{k=1}^c \frac{x_k}{y_k}.

    This equals :func:`softseg.losses.margin_bound_terms` with margins
    ``(ρ_0k, μ_k ρ_0k)`` (the general eq. 22), which the tests check.

    References
    ----------
    Li, Yu & Zhang, Theorem 1 eq. (22); Corollary 1.1 proof, eq. (24).
    """
    counts = _counts(class_counts, min_classes=2)
    v = check_positive("v", v)
    big_f = check_positive("complexity", complexity)
    rho = _margins_like("rho_0k", rho_0k, counts.size)
    return _eq24(rho, counts, v, big_f)


def _eq24(rho: np.ndarray, counts: np.ndarray, v: float, big_f) -> np.ndarray:
    """Eq. 24 for checked arguments: ``(1/c) Σ_k x_k / y_k``, ``+inf`` where some ``y_k ≤ 0``.
    ``big_f`` is a scalar or an array broadcasting against ``rho``'s ``(..., C)``."""
    c, n = counts.size, counts.sum()
    x = n * v * (n - counts) / counts**2
    y = rho / (4 * c * big_f) - np.sqrt(n - counts) / counts
    ok = (y > 0).all(axis=-1)
    eps = (x / np.where(y > 0, y, 1.0)).sum(axis=-1) / c
    return np.where(ok, eps, np.inf)


def complexity_limit(class_counts, rho_0k) -> np.ndarray:
    r"""``F*_k = n_k ρ_0k / (4c√(n − n_k))``: the ``F`` at which class ``k``'s term of eq. 22 diverges.

    Multiplying eq. 20 through by ``4cF``,

    .. math:: \epsilon_k(F) = \frac{4cF\,(\sqrt{n-n_k} + \sqrt{n_k}/\mu_k)}{n_k\rho_{0k} - 4cF\sqrt{n-n_k}},

    which on ``0 < F < F*_k`` is increasing, strictly convex and superlinear (``ε_k/F``
    increases), and tends to ``+∞`` as ``F → F*_k``; for ``F ≥ F*_k`` the bound is vacuous.
    ``ε`` of eq. 22 is therefore finite exactly for ``F < min_k F*_k``. With the margins of
    Corollary 1.1, ``ρ_0k = τ√(n − n_k)/n_k``, every ``F*_k`` equals ``τ/(4c)``.
    This is the inverse of :func:`feasibility_floor` (which gives ``ρ_0k`` from ``F``).

    Parameters
    ----------
    class_counts : array_like
        ``(C,)`` pixel counts ``n_k > 0``, ``C ≥ 2``.
    rho_0k : array_like
        Margins ``(..., C)``, ``≥ 0``.

    Returns
    -------
    numpy.ndarray
        ``F*`` of shape ``(..., C)``, float64.

    References
    ----------
    Li, Yu & Zhang, Theorem 1, eqs. (20), (22).
    """
    counts = _counts(class_counts, min_classes=2)
    rho = _margins_like("rho_0k", rho_0k, counts.size)
    c, n = counts.size, counts.sum()
    return counts * rho / (4 * c * np.sqrt(n - counts))


def _confidence_log(num_classes, eta) -> tuple[int, float]:
    """``(c, log(2c/η))`` after checking ``num_classes ≥ 2`` and ``η ∈ (0, 1)``."""
    c = check_int("num_classes", num_classes, 2)
    eta = check_positive("eta", eta)
    if eta >= 1:
        raise ValueError(f"eta: expected a probability in (0, 1), got {eta!r}")
    return c, math.log(2 * c / eta)


def _pixels_per_image(m) -> int:
    """``m`` after checking it is a positive integer."""
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"pixels_per_image: expected a positive integer, got {m!r}")
    return int(m)


def sigma_per_margin(num_classes: int, *, pixels_per_image: int, eta: float) -> float:
    r"""``s`` with ``σ(1/η) = s · ρ_max``: ``s = √(2m log(2c/η)) / (4c)`` (Theorem 1).

    Parameters
    ----------
    num_classes : int
        ``c ≥ 2``.
    pixels_per_image : int
        ``m ≥ 1``.
    eta : float
        Confidence ``η ∈ (0, 1)``.

    References
    ----------
    Li, Yu & Zhang, Theorem 1 (definition of ``σ(1/η)``).
    """
    c, log_term = _confidence_log(num_classes, eta)
    return math.sqrt(2 * _pixels_per_image(pixels_per_image) * log_term) / (4 * c)


def corollary_eps_sigma(rho_0k, class_counts, *, pixels_per_image: int, eta: float, v: float = 1.0,
                        complexity: float = 1.0) -> np.ndarray:
    r"""``ε`` of eq. 22 (Corollary 1.1's ``μ_k``) with ``F = C(Θ) + σ(1/η)`` and ``σ`` counted.

    :func:`corollary_eps` holds ``F`` fixed, as the corollary does. Here ``F`` follows the
    margins: ``F = C(Θ) + s·max_k ρ_0k`` with ``s`` from :func:`sigma_per_margin` (with the
    corollary's ``μ_k ≤ 1`` the largest margin is a ``ρ_0k``). Everything else is eq. 24:
    ``ε = (1/c) Σ_k x_k / y_k``, ``x_k = r(n − n_k)/n_k²``, ``y_k = ρ_0k/(4cF) − √(n − n_k)/n_k``.

    Parameters
    ----------
    rho_0k : array_like
        Margins of shape ``(..., C)``, ``≥ 0``.
    class_counts : array_like
        ``(C,)`` pixel counts ``n_k > 0``, ``C ≥ 2``.
    pixels_per_image, eta
        As :func:`sigma_per_margin`.
    v : float
        Hyper-parameter of ``μ_k``.
    complexity : float
        ``C(Θ) > 0``, the part of ``F`` that does not depend on the margins.

    Returns
    -------
    numpy.ndarray
        ``ε`` of shape ``(...)``; ``+inf`` where some class's denominator is ``≤ 0``.

    References
    ----------
    Li, Yu & Zhang, Theorem 1 eq. (22); Corollary 1.1 proof, eq. (24).
    """
    counts = _counts(class_counts, min_classes=2)
    v = check_positive("v", v)
    complexity = check_positive("complexity", complexity)
    s = sigma_per_margin(counts.size, pixels_per_image=pixels_per_image, eta=eta)
    rho = _margins_like("rho_0k", rho_0k, counts.size)
    return _eq24(rho, counts, v, complexity + s * rho.max(axis=-1, keepdims=True))


def minimize_bound_sigma(class_counts, total: float, *, pixels_per_image: int, eta: float, v: float = 1.0,
                         complexity: float = 1.0) -> tuple[np.ndarray, float]:
    r"""Lower :func:`corollary_eps_sigma` over ``ρ_0k`` with ``Σ_k ρ_0k = total``, from eq. 23's margins.

    The margins are parametrized as ``ρ = total · softmax(z)`` and ``ε`` (not smooth where two
    margins tie for the largest) is minimized with Nelder–Mead, starting from Corollary 1.1's
    ``ρ_0k ∝ √(n − n_k)/n_k`` with the same sum. The result is a margin vector at least as good
    as the start — a lower ``ε`` than eq. 23's shows that eq. 23 is not the optimum once ``σ``
    is counted — not a certified global minimum.

    Parameters
    ----------
    class_counts : array_like
        ``(C,)`` pixel counts ``n_k > 0``, ``C ≥ 2``.
    total : float
        The fixed sum ``S = Σ_k ρ_0k > 0``.
    pixels_per_image, eta, v, complexity
        As :func:`corollary_eps_sigma`.

    Returns
    -------
    (numpy.ndarray, float)
        The margins found ``(C,)`` and their ``ε``.

    Raises
    ------
    ValueError
        If eq. 23's margins with this sum already give ``ε = ∞`` (then the bound is vacuous
        there and the search has no finite point to start from).
    """
    from scipy.optimize import minimize

    counts = _counts(class_counts, min_classes=2)
    total = check_positive("total", total)
    v = check_positive("v", v)
    complexity = check_positive("complexity", complexity)
    s = sigma_per_margin(counts.size, pixels_per_image=pixels_per_image, eta=eta)
    n = counts.sum()
    start = np.sqrt(n - counts) / counts
    start = start / start.sum() * total

    def eps_of(rho: np.ndarray) -> float:
        # corollary_eps_sigma without re-checking its arguments on every evaluation of the search
        return float(_eq24(rho, counts, v, complexity + s * rho.max()))

    eps_start = eps_of(start)
    if not math.isfinite(eps_start):
        raise ValueError(f"total: Corollary 1.1's margins with sum {total:g} give eps = inf once sigma(1/eta) is "
                         "counted; expected a sum (or counts) where the bound is finite (see finite_bound_possible)")

    def objective(z: np.ndarray) -> float:
        w = np.exp(z - z.max())
        eps = eps_of(total * w / w.sum())
        return eps if math.isfinite(eps) else 1e300

    res = minimize(objective, np.log(start / total), method="Nelder-Mead",
                   options={"xatol": 1e-10, "fatol": 1e-9 * eps_start, "maxiter": 20_000, "maxfev": 40_000})
    w = np.exp(res.x - res.x.max())
    rho = total * w / w.sum()
    eps = eps_of(rho)
    return (rho, eps) if eps <= eps_start else (start, eps_start)


def finite_bound_possible(class_counts, *, pixels_per_image: int, eta: float) -> np.ndarray:
    r"""Per class: can eq. 20's term be finite for *any* margins once ``σ(1/η)`` is in ``F``?

    Class ``k``'s term is finite only if ``n_k ρ_0k > 4cF√(n − n_k)`` (eq. 22's denominator).
    With ``F = C(Θ) + σ > σ = ρ_max √(2m log(2c/η))/(4c)`` and ``ρ_0k ≤ ρ_max`` this needs

    .. math:: n_k^2 > 2m\log\frac{2c}{\eta}\,(n - n_k),

    whatever the margins and ``C(Θ)``. The condition is necessary; with the margins of
    Corollary 1.1 (``μ_k ≤ 1``) it is also sufficient for a large enough ``τ``, since then
    ``ρ_max`` is the rarest class's ``ρ_0k`` and every class is finite exactly when
    ``τ (1 − max_k √(2m log(2c/η)(n − n_k))/n_k) > 4c C(Θ)``.

    Parameters
    ----------
    class_counts : array_like
        ``(C,)`` pixel counts ``n_k > 0``, ``C ≥ 2`` (``c = C`` in the union bound).
    pixels_per_image : int
        ``m ≥ 1``.
    eta : float
        Confidence ``η ∈ (0, 1)``.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` bool.

    References
    ----------
    Li, Yu & Zhang, Theorem 1 (definition of ``σ(1/η)``), eqs. (16)–(17), (22).
    """
    counts = _counts(class_counts, min_classes=2)
    m = _pixels_per_image(pixels_per_image)
    _, log_term = _confidence_log(counts.size, eta)
    n = counts.sum()
    return counts**2 > 2 * m * log_term * (n - counts)


def min_images_for_finite_bound(frequency, *, num_classes: int, eta: float) -> np.ndarray:
    r"""Fewest training images ``N`` for which a class of pixel frequency ``p`` can have a finite term.

    :func:`finite_bound_possible` with ``n = N m`` and ``n_k = p n``: ``p²N²m² > 2m log(2c/η)(1 − p)Nm``,
    i.e.

    .. math:: N > \frac{2(1-p)\log(2c/\eta)}{p^2},

    independent of the image size ``m``, the margins and ``C(Θ)``.

    Parameters
    ----------
    frequency : array_like
        ``p ∈ (0, 1)``, any shape.
    num_classes : int
        ``c ≥ 2``.
    eta : float
        ``η ∈ (0, 1)``.

    Returns
    -------
    numpy.ndarray
        The bound on ``N`` (a real number; ``N`` must exceed it), shape of ``frequency``.

    Examples
    --------
    >>> round(float(min_images_for_finite_bound(0.01, num_classes=5, eta=0.05)))
    104907
    """
    p = _float_array("frequency", frequency, "frequencies in (0, 1)")
    if not ((p > 0) & (p < 1)).all():
        raise ValueError(f"frequency: expected values in (0, 1), got {p.tolist()}")
    _, log_term = _confidence_log(num_classes, eta)
    return 2 * (1 - p) * log_term / p**2


def min_frequency_for_finite_bound(num_images, *, num_classes: int, eta: float) -> np.ndarray:
    r"""The smallest pixel frequency ``p`` a class may have for a finite term with ``N`` images.

    The positive root of ``N p² + 2Lp − 2L = 0`` with ``L = log(2c/η)`` (the inverse of
    :func:`min_images_for_finite_bound`):

    .. math:: p > \frac{\sqrt{L^2 + 2LN} - L}{N}.

    Parameters
    ----------
    num_images : array_like
        ``N > 0``, any shape.
    num_classes : int
        ``c ≥ 2``.
    eta : float
        ``η ∈ (0, 1)``.

    Returns
    -------
    numpy.ndarray
        The bound on ``p``, shape of ``num_images``.
    """
    big_n = _float_array("num_images", num_images, "positive numbers of images")
    if not (np.isfinite(big_n) & (big_n > 0)).all():
        raise ValueError(f"num_images: expected finite numbers > 0, got {big_n.tolist()}")
    _, log_term = _confidence_log(num_classes, eta)
    return (np.sqrt(log_term**2 + 2 * log_term * big_n) - log_term) / big_n


class Eq16Check(NamedTuple):
    """Sympy forms of the step from eq. 15 to eq. 16 (see :func:`eq16_from_eq15`)."""

    eq15: object
    """Right-hand side of eq. 15 with ``𝔑_{n_k}(Θ) = √(C(Θ)/n_k)``."""
    eq16_sqrt: object
    """``(√n_k/n)(4c/ρ_k0)(√C(Θ) + σ_k)``, ``σ_k = ρ_k0/(4c)·√(2m log(2c/η))``."""
    eq16_printed: object
    """The printed eq. 16 with the same ``σ_k``: ``(√n_k/n)(4c/ρ_k0)(C(Θ) + σ_k)``."""
    symbols: dict
    """The symbols by name: ``n``, ``n_k``, ``c``, ``rho``, ``C``, ``m``, ``eta``."""


def eq16_from_eq15() -> Eq16Check:
    r"""Rewrite eq. 15 in the form of eq. 16 with sympy, under the paper's scaling of 𝔑.

    Eq. 15: ``p_k0 − ℓ_k0,n ≤ (n_k/n)((4c/ρ_k0)𝔑_{n_k}(Θ) + √(2m log(2c/η)/n_k))``. The paper
    takes ``𝔑_{n_k}(Θ)`` to scale as ``√(C(Θ)/n_k)``. Substituting it, the right-hand side is
    exactly ``(√n_k/n)(4c/ρ_k0)(√C(Θ) + σ_k)`` with ``σ_k = ρ_k0/(4c)·√(2m log(2c/η))``; since
    ``ρ_k0 ≤ ρ_max``, ``σ_k ≤ σ(1/η)``, which gives eq. 16 with ``√C(Θ)`` where the paper prints
    ``C(Θ)``. The two agree only at ``C(Θ) = 1`` (or 0).

    Returns
    -------
    Eq16Check
        ``eq15``, ``eq16_sqrt`` and ``eq16_printed`` as sympy expressions in positive symbols;
        ``simplify(eq15 − eq16_sqrt)`` is 0.

    References
    ----------
    Li, Yu & Zhang, proof of Theorem 1, eqs. (15)–(16).
    """
    import sympy as sp

    n, n_k, c, rho, big_c, m, eta = sp.symbols("n n_k c rho_k0 C m eta", positive=True)
    log_term = sp.log(2 * c / eta)
    rademacher = sp.sqrt(big_c / n_k)  # the paper's scaling, "R_{n_k}(Theta) ~ sqrt(C(Theta)/n_k)"
    eq15 = n_k / n * (4 * c / rho * rademacher + sp.sqrt(2 * m * log_term / n_k))
    sigma_k = rho / (4 * c) * sp.sqrt(2 * m * log_term)
    front = sp.sqrt(n_k) / n * 4 * c / rho
    return Eq16Check(eq15=eq15, eq16_sqrt=front * (sp.sqrt(big_c) + sigma_k),
                     eq16_printed=front * (big_c + sigma_k),
                     symbols={"n": n, "n_k": n_k, "c": c, "rho": rho, "C": big_c, "m": m, "eta": eta})


def exact_eps_k(p_k, p_k0, p_0k, eps_k0, eps_0k):
    r"""``ε_k`` of eq. 12, which makes inequality (11) an equality.

    .. math:: \epsilon_k = \frac{\frac{a_k}{b_k}\epsilon_{0k} + \epsilon_{k0}}{b_k - \epsilon_{0k}},
              \qquad a_k = p_k - p_{k0},\; b_k = p_k + p_{0k}.

    Works element-wise on NumPy arrays or floats; the caller keeps ``b_k > ε_0k``.

    References
    ----------
    Li, Yu & Zhang, proof of Theorem 1, eqs. (11)–(12).
    """
    a = np.asarray(p_k) - np.asarray(p_k0)
    b = np.asarray(p_k) + np.asarray(p_0k)
    return (a / b * eps_0k + eps_k0) / (b - eps_0k)


def eps_k_eq19(p_k, p_k0, p_0k, class_counts, rho_0k, rho_k0, *, complexity: float = 1.0) -> np.ndarray:
    r"""``ε_k`` of eq. 19: eq. 12 with ``ε_k0, ε_0k`` of eq. 18 substituted.

    .. math:: \epsilon_k = \frac{\frac{a_k}{b_k}\sqrt{n-n_k} + \frac{\sqrt{n_k}}{\mu_k}}
                               {\frac{b_k n}{4cF}\rho_{0k} - \sqrt{n-n_k}},\qquad \mu_k = \rho_{k0}/\rho_{0k}.

    ``p_k, p_k0, p_0k`` are ``(C,)`` population probabilities (``a_k, b_k`` as in
    :func:`exact_eps_k`); margins are ``(C,)`` and positive.

    References
    ----------
    Li, Yu & Zhang, proof of Theorem 1, eqs. (18)–(19).
    """
    counts = _counts(class_counts, min_classes=2)
    big_f = check_positive("complexity", complexity)
    r0k = _margins_like("rho_0k", rho_0k, counts.size)
    rk0 = _margins_like("rho_k0", rho_k0, counts.size)
    c, n = counts.size, counts.sum()
    a = np.asarray(p_k) - np.asarray(p_k0)
    b = np.asarray(p_k) + np.asarray(p_0k)
    mu = rk0 / r0k
    return (a / b * np.sqrt(n - counts) + np.sqrt(counts) / mu) / (b * n / (4 * c * big_f) * r0k - np.sqrt(n - counts))


def cauchy_schwarz_minimum(class_counts, total: float, *, v: float = 1.0, complexity: float = 1.0) -> float:
    r"""Right-hand side of eq. 26: the least ``ε`` over margins with ``Σ_k ρ_0k = total``.

    .. math:: \epsilon \ge \frac rc\,\frac{\bigl(\sum_k \sqrt{n-n_k}/n_k\bigr)^2}
              {\frac{1}{4cF}\sum_k\rho_{0k} - \sum_k \sqrt{n-n_k}/n_k},\qquad r = nv .

    Returns ``+inf`` when ``total`` does not exceed the sum of :func:`feasibility_floor`
    (no margins with that sum make every class's bound finite).

    References
    ----------
    Li, Yu & Zhang, proof of Corollary 1.1, eqs. (25)–(26).
    """
    counts = _counts(class_counts, min_classes=2)
    v = check_positive("v", v)
    big_f = check_positive("complexity", complexity)
    total = check_positive("total", total)
    c, n = counts.size, counts.sum()
    s = (np.sqrt(n - counts) / counts).sum()
    den = total / (4 * c * big_f) - s
    return float(n * v / c * s**2 / den) if den > 0 else math.inf


class LagrangianOptimum(NamedTuple):
    """Symbolic result of :func:`lagrangian_optimum` (sympy expressions)."""

    counts: tuple
    """The count symbols ``n_1 … n_c``."""
    roots: tuple
    """Symbols ``a_k`` standing for ``√(n − n_k)`` (any positive value: the derivation does not
    use how they depend on the counts, so the result holds for ``a_k = √(n − n_k)``)."""
    rho: tuple
    """The optimal ``ρ_0k`` in terms of the counts, ``a_k``, ``r``, ``F`` and the fixed sum ``S``."""
    multiplier: object
    """The Lagrange multiplier ``λ`` at the optimum."""
    eps: object
    """``ε(ρ)`` of eq. 24 as a function of the margin symbols ``symbols['rho']``."""
    eps_min: object
    """``ε`` at the optimum."""
    symbols: dict
    """The other symbols by name: ``r``, ``F``, ``S``, ``lam``, ``rho`` (tuple)."""


def lagrangian_optimum(num_classes: int = 3) -> LagrangianOptimum:
    r"""Derive the optimal margins of Corollary 1.1 with sympy, from the Lagrangian.

    Minimizes eq. 24, ``ε(ρ) = (1/c) Σ_k x_k / y_k`` with ``x_k = r(n − n_k)/n_k²`` and
    ``y_k = ρ_0k/(4cF) − √(n − n_k)/n_k``, subject to ``Σ_k ρ_0k = S``, on the domain
    ``y_k > 0`` where every term is finite:

    .. math:: \mathcal L(\rho, \lambda) = \frac1c\sum_k \frac{x_k}{y_k} + \lambda\Bigl(\sum_k\rho_{0k} - S\Bigr).

    ``∂L/∂ρ_0k = 0`` gives ``y_k = √(x_k/(4c²Fλ))`` (the root with ``y_k > 0``); the constraint
    then fixes ``λ``. Since each ``x_k/y_k`` is convex in ``ρ_0k`` on ``y_k > 0`` this stationary
    point is the minimum. ``√(n − n_k)`` is carried as an independent positive symbol ``a_k``
    (``x_k = r a_k²/n_k²``), which keeps sympy's algebra small; the identities found hold for
    every positive ``a_k`` and so for ``a_k = √(n − n_k)``. ``F`` is a constant symbol, as in the
    corollary: the optimum is the optimum at fixed ``F``, ignoring that ``σ(1/η)`` in
    ``F = C(Θ) + σ(1/η)`` grows with ``ρ_max``.

    Parameters
    ----------
    num_classes : int
        ``c`` (2 to 6): the counts ``n_1 … n_c`` are independent positive symbols.

    Returns
    -------
    LagrangianOptimum
        Sympy expressions; ``rho[i] / rho[j]`` simplifies to eq. 23 and ``eps_min`` to eq. 26.

    Raises
    ------
    TypeError, ValueError
        If ``num_classes`` is not an integer in ``[2, 6]``.

    References
    ----------
    Li, Yu & Zhang, Corollary 1.1, eqs. (23)–(26).
    """
    import sympy as sp

    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"num_classes: expected an integer in [2, 6], got {type(num_classes).__name__}")
    if not 2 <= num_classes <= 6:
        raise ValueError(f"num_classes: expected an integer in [2, 6], got {num_classes}")
    c = int(num_classes)
    counts = sp.symbols(f"n_1:{c + 1}", positive=True)
    roots = sp.symbols(f"a_1:{c + 1}", positive=True)
    r, big_f, slack, lam = sp.symbols("r F t lambda", positive=True)
    ys = sp.symbols(f"y_1:{c + 1}", positive=True)
    x = [r * ak**2 / nk**2 for ak, nk in zip(roots, counts)]
    floor = [ak / nk for ak, nk in zip(roots, counts)]
    # rho_0k = 4cF (y_k + a_k/n_k): the domain y_k > 0 is where every term of eq. 24 is finite, and
    # sum_k rho_0k = S  <=>  sum_k y_k = t := S/(4cF) - sum_k a_k/n_k  (t > 0, else no finite bound)
    eps_y = sum(xk / yk for xk, yk in zip(x, ys)) / c
    lagrangian = eps_y + lam * (sum(ys) - slack)  # d/drho_k = (1/(4cF)) d/dy_k: same stationary points
    y_star = []
    for yk in ys:
        found = sp.solve(sp.Eq(sp.diff(lagrangian, yk), 0), yk)  # y_k > 0 leaves the positive root
        if len(found) != 1:  # pragma: no cover - a sympy regression, not a user error
            raise RuntimeError(f"lagrangian_optimum: expected one root with y_k > 0, got {found}")
        y_star.append(found[0])
    lam_roots = sp.solve(sp.Eq(sum(y_star), slack), lam)
    if len(lam_roots) != 1:  # pragma: no cover
        raise RuntimeError(f"lagrangian_optimum: expected one multiplier, got {lam_roots}")
    lam_star = sp.factor(lam_roots[0])  # (sum_k sqrt(x_k))^2 / (c t^2), kept as a square
    y_opt = [sp.factor(yk.subs(lam, lam_star)) for yk in y_star]
    rho_star = tuple(4 * c * big_f * (yk + fk) for yk, fk in zip(y_opt, floor))
    eps_min = sp.factor(eps_y.subs(dict(zip(ys, y_opt))))
    total = sp.Symbol("S", positive=True)
    rhos = sp.symbols(f"rho_1:{c + 1}", positive=True)
    eps = sum(xk / (rk / (4 * c * big_f) - fk) for xk, rk, fk in zip(x, rhos, floor)) / c
    # express the results through S = 4cF (t + sum_k a_k/n_k)
    back = {slack: total / (4 * c * big_f) - sum(floor)}
    return LagrangianOptimum(counts=counts, roots=roots, rho=tuple(e.subs(back) for e in rho_star),
                             multiplier=lam_star.subs(back), eps=eps, eps_min=eps_min.subs(back),
                             symbols={"r": r, "F": big_f, "S": total, "lam": lam, "rho": rhos, "t": slack})


def minimize_bound(class_counts, total: float, *, v: float = 1.0, complexity: float = 1.0,
                   seed: int = 0) -> tuple[np.ndarray, float]:
    r"""Minimize ``ε`` of eq. 22 (Corollary 1.1's ``μ_k``) numerically over ``ρ_0k`` with ``Σ_k ρ_0k = total``.

    The feasible set ``{ρ : Σ ρ_0k = total, ρ_0k > floor_k}`` (:func:`feasibility_floor`) is
    parametrized without constraints as ``ρ = floor + (total − Σ floor)·softmax(z)``, and ``ε``
    is minimized over ``z`` with BFGS (analytic gradient) from a random start.

    Parameters
    ----------
    class_counts : array_like
        ``(C,)`` pixel counts ``n_k > 0``.
    total : float
        The fixed sum ``S = Σ_k ρ_0k``; must exceed ``Σ_k floor_k``.
    v, complexity : float
        As :func:`corollary_eps`.
    seed : int
        Seed of the random starting point.

    Returns
    -------
    (numpy.ndarray, float)
        The minimizing ``ρ_0k`` ``(C,)`` and the minimum ``ε``.

    Raises
    ------
    ValueError
        If ``total`` is too small for any finite bound, or the optimizer fails.
    """
    from scipy.optimize import minimize

    counts = _counts(class_counts, min_classes=2)
    total = check_positive("total", total)
    v = check_positive("v", v)
    big_f = check_positive("complexity", complexity)
    floor = feasibility_floor(counts, complexity=big_f)
    slack = total - floor.sum()
    if slack <= 0:
        raise ValueError(f"total: expected a margin sum above {floor.sum():.6g} (the sum of 4cF*sqrt(n - n_k)/n_k, "
                         f"below which some class's bound is vacuous), got {total:g}")
    c, n = counts.size, counts.sum()
    x = n * v * (n - counts) / counts**2
    scale = 1.0 / (4 * c * big_f)

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        w = np.exp(z - z.max())
        w /= w.sum()
        y = slack * w * scale  # rho - floor = slack * w, so y_k = (rho_k - floor_k) / (4cF)
        eps = (x / y).sum() / c
        d_eps_dw = -x / y**2 * slack * scale / c
        grad = w * (d_eps_dw - (d_eps_dw * w).sum())  # softmax Jacobian
        return float(eps), grad

    rng = np.random.default_rng(seed)
    res = minimize(objective, rng.normal(size=c), jac=True, method="BFGS", options={"gtol": 1e-12, "maxiter": 10_000})
    w = np.exp(res.x - res.x.max())
    w /= w.sum()
    rho = floor + slack * w
    eps = float(corollary_eps(rho, counts, v=v, complexity=big_f))
    if not math.isfinite(eps):  # pragma: no cover
        raise ValueError(f"minimize_bound: the optimizer failed ({res.message})")
    return rho, eps


# --------------------------------------------------------------------------- a 1-D toy problem


class ToyPopulation(NamedTuple):
    """A 2-class 1-D population on a grid (see :func:`toy_population`)."""

    x: torch.Tensor
    """``(G,)`` grid of feature values."""
    density: torch.Tensor
    """``(2, G)`` class-conditional densities times the class counts (pixels per grid cell)."""
    counts: torch.Tensor
    """``(2,)`` class counts ``n_0, n_1`` (class 1 is the minority when ``n_1 < n_0``)."""
    means: tuple
    """The two class means."""
    sigma: float
    """Common standard deviation."""


def toy_population(n_major: float = 9_000.0, n_minor: float = 1_000.0, *, separation: float = 2.0,
                   sigma: float = 1.0, grid: int = 801) -> ToyPopulation:
    r"""A 2-class 1-D "image": features ``x ~ N(∓separation/2, σ²)``, ``n_major`` pixels of class 0.

    The population is represented on a grid of ``grid`` points over ``mean ± 6σ``; the weight of
    a grid point for class ``k`` is ``n_k`` times the Gaussian density times the grid step, so
    sums over the grid are expected pixel counts (deterministic, no sampling).

    Raises
    ------
    TypeError, ValueError
        For non-positive counts, ``separation``, ``sigma``, or ``grid < 3``.
    """
    n_major = check_positive("n_major", n_major)
    n_minor = check_positive("n_minor", n_minor)
    separation = check_positive("separation", separation)
    sigma = check_positive("sigma", sigma)
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 3:
        raise ValueError(f"grid: expected an integer >= 3, got {grid!r}")
    m0, m1 = -separation / 2, separation / 2
    x = torch.linspace(m0 - 6 * sigma, m1 + 6 * sigma, int(grid), dtype=torch.float64)
    step = x[1] - x[0]
    pdf = torch.stack([torch.exp(-0.5 * ((x - m) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi)) for m in (m0, m1)])
    counts = torch.tensor([n_major, n_minor], dtype=torch.float64)
    return ToyPopulation(x=x, density=pdf * counts[:, None] * step, counts=counts, means=(m0, m1), sigma=sigma)


def toy_scores(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Scores ``(1, 2, G)`` of the linear model: ``s_1 − s_0 = w x + b`` split symmetrically."""
    f = w * x + b
    return torch.stack([-f / 2, f / 2])[None]


ToyLoss = Literal["ce", "calibrated"]


def toy_loss(pop: ToyPopulation, w: torch.Tensor, b: torch.Tensor, *, loss: ToyLoss = "calibrated",
             rho=0.0) -> torch.Tensor:
    r"""Expected loss per pixel of the linear model on the toy population.

    ``loss="calibrated"``: :func:`softseg.losses.calibrated_log_loss` with margins ``rho`` (any
    form it accepts); ``"ce"``: the softmax cross-entropy. The pixels of both classes sit on the
    same grid, weighted by :attr:`ToyPopulation.density`.
    """
    from torch.nn.functional import cross_entropy

    from .losses import calibrated_log_loss

    check_option("loss", loss, ("ce", "calibrated"))
    g = pop.x.numel()
    scores = toy_scores(pop.x, w, b).repeat(1, 1, 2)  # (1, 2, 2G): class-0 copy, then class-1 copy
    labels = torch.cat([torch.zeros(g, dtype=torch.long), torch.ones(g, dtype=torch.long)])[None]
    weights = pop.density.reshape(1, -1)
    if loss == "ce":
        per_pixel = cross_entropy(scores, labels, reduction="none")
    else:
        per_pixel = calibrated_log_loss(scores, labels, rho, reduction="none")
    return (per_pixel * weights).sum() / weights.sum()


def fit_toy_boundary(pop: ToyPopulation, *, loss: ToyLoss = "calibrated", rho=0.0,
                     max_iter: int = 200) -> tuple[float, float, float]:
    r"""Fit ``w, b`` of the linear toy model by minimizing :func:`toy_loss` (L-BFGS, float64).

    Returns
    -------
    (float, float, float)
        ``(w, b, boundary)`` with the decision boundary ``x* = −b/w`` (pixels with ``x > x*``
        are predicted class 1 when ``w > 0``).
    """
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], lr=1.0, max_iter=max_iter, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = toy_loss(pop, params[0], params[1], loss=loss, rho=rho)
        value.backward()
        return value

    opt.step(closure)
    w, b = (float(t) for t in params.detach())
    return w, b, -b / w if w != 0 else math.nan


def toy_iou(pop: ToyPopulation, boundary) -> torch.Tensor:
    r"""Population IoU of both classes when ``x > boundary`` is predicted class 1 (eq. 3).

    ``boundary`` may be a number or a 1-D tensor of thresholds; returns ``(2,)`` or ``(T, 2)``.
    Pixels exactly at the threshold count as class 0.
    """
    t = torch.as_tensor(boundary, dtype=torch.float64)
    scalar = t.ndim == 0
    t = t.reshape(-1, 1)
    pred1 = pop.x[None, :] > t  # (T, G)
    d0, d1 = pop.density
    tp1 = (d1 * pred1).sum(1)
    fp1 = (d0 * pred1).sum(1)
    fn1 = (d1 * ~pred1).sum(1)
    tp0 = (d0 * ~pred1).sum(1)
    iou1 = tp1 / (tp1 + fp1 + fn1)
    iou0 = tp0 / (tp0 + fn1 + fp1)
    out = torch.stack([iou0, iou1], 1)
    return out[0] if scalar else out


def iou_optimal_boundary(pop: ToyPopulation) -> float:
    """The threshold on the grid that maximizes the population mIoU of the two classes."""
    miou = toy_iou(pop, pop.x).mean(1)
    return float(pop.x[int(miou.argmax())])
