"""Tests of :mod:`softseg.margin_theory` (Li, Yu & Zhang: Theorem 1, Corollary 1.1, a 1-D toy).

Expected values are derived here: eq. 12 from solving eq. 11 by hand, eq. 22 through
:func:`softseg.losses.margin_bound_terms`, eq. 23's ratios and eq. 26's minimum in closed form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from softseg import margin_theory as mt
from softseg.losses import margin_bound_terms, optimal_margins

HYP = settings(deadline=None, max_examples=30, derandomize=True)
COUNTS = st.lists(st.floats(10.0, 1e6), min_size=2, max_size=5)


@pytest.mark.parametrize("c", [2, 3])
def test_lagrangian_gives_eq23_ratios_and_eq26_minimum(c):
    opt = mt.lagrangian_optimum(c)
    n, a = opt.counts, opt.roots
    r, big_f, total = opt.symbols["r"], opt.symbols["F"], opt.symbols["S"]
    for i in range(c):
        for j in range(c):
            assert sp.simplify(opt.rho[i] / opt.rho[j] - n[j] * a[i] / (n[i] * a[j])) == 0
    assert sp.simplify(sum(opt.rho) - total) == 0
    s = sum(ak / nk for ak, nk in zip(a, n))
    assert sp.simplify(opt.eps_min - r / c * s**2 / (total / (4 * c * big_f) - s)) == 0


@pytest.mark.parametrize("bad, err, match", [(1, ValueError, r"num_classes: expected an integer in \[2, 6\]"),
                                             (2.0, TypeError, "num_classes"), (True, TypeError, "num_classes")])
def test_lagrangian_rejects_bad_class_numbers(bad, err, match):
    with pytest.raises(err, match=match):
        mt.lagrangian_optimum(bad)


@HYP
@given(COUNTS, st.floats(0.01, 10.0), st.floats(1.1, 10.0))
def test_corollary_eps_is_eq22_of_margin_bound_terms(counts, v, slack):
    counts = np.asarray(counts)
    rho = mt.feasibility_floor(counts) * slack
    mu = mt.corollary_mu(counts, v)
    if not np.isfinite(mu).all():
        return
    ours = mt.corollary_eps(rho, counts, v=v)
    ref = margin_bound_terms(counts, (torch.tensor(rho), torch.tensor(mu * rho)), complexity=1.0).eps
    assert ours == pytest.approx(float(ref), rel=1e-9)


def test_corollary_eps_vacuous_below_the_floor_and_batched():
    counts = np.array([9000.0, 900.0, 100.0])
    floor = mt.feasibility_floor(counts, complexity=2.0)
    rho = np.stack([floor * 0.99, floor * 2.0])
    eps = mt.corollary_eps(rho, counts, complexity=2.0)
    assert eps.shape == (2,) and math.isinf(eps[0]) and math.isfinite(eps[1])


@pytest.mark.parametrize("seed", range(4))
def test_scipy_minimum_matches_corollary_and_eq26(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(50, 200_000, size=rng.integers(2, 6)).astype(float)
    total = 3.0 * mt.feasibility_floor(counts).sum()
    rho, eps = mt.minimize_bound(counts, total, seed=seed)
    ref = optimal_margins(counts, tau=1.0)[0].numpy()
    np.testing.assert_allclose(rho, ref / ref.sum() * total, rtol=1e-6)
    assert eps == pytest.approx(mt.cauchy_schwarz_minimum(counts, total), rel=1e-9)
    # any other feasible margins with the same sum do no better (eq. 26 is a lower bound)
    other = mt.feasibility_floor(counts) + rng.dirichlet(np.ones(counts.size), 50) * (total - mt.feasibility_floor(counts).sum())
    assert (mt.corollary_eps(other, counts) >= eps * (1 - 1e-12)).all()


def test_minimize_bound_rejects_infeasible_total():
    counts = [900.0, 100.0]
    with pytest.raises(ValueError, match="total: expected a margin sum above"):
        mt.minimize_bound(counts, 0.5 * mt.feasibility_floor(counts).sum())
    assert math.isinf(mt.cauchy_schwarz_minimum(counts, 0.5 * mt.feasibility_floor(counts).sum()))


@HYP
@given(st.floats(0.01, 0.5), st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 0.05), st.floats(0.0, 0.05))
def test_eq12_makes_eq11_an_equality(p_k, f_k0, f_0k, e_k0, e_0k):
    p_k0, p_0k = f_k0 * p_k, f_0k * (1 - p_k)
    b = p_k + p_0k
    if b - e_0k <= 1e-6:
        return
    eps_k = mt.exact_eps_k(p_k, p_k0, p_0k, e_k0, e_0k)
    iou = (p_k - p_k0) / b
    assert iou == pytest.approx((p_k - (p_k0 - e_k0)) / (p_k + (p_0k - e_0k)) - eps_k, abs=1e-9)


def test_eq19_equals_eq12_with_eq18_and_is_below_eq20():
    rng = np.random.default_rng(0)
    counts = np.array([80_000.0, 15_000.0, 5_000.0])
    n, c = counts.sum(), 3
    p = counts / n
    r0k = mt.feasibility_floor(counts) * 3
    rk0 = r0k * rng.uniform(0.5, 2, 3)
    p_k0, p_0k = p * rng.uniform(0, 0.3, 3), (1 - p) * rng.uniform(0, 0.01, 3)
    e_k0 = np.sqrt(counts) / n * 4 * c / rk0  # eq. 18 with F = 1
    e_0k = np.sqrt(n - counts) / n * 4 * c / r0k
    eq12 = mt.exact_eps_k(p, p_k0, p_0k, e_k0, e_0k)
    eq19 = mt.eps_k_eq19(p, p_k0, p_0k, counts, r0k, rk0)
    np.testing.assert_allclose(eq19, eq12, rtol=1e-10)
    eq20 = margin_bound_terms(counts, (torch.tensor(r0k), torch.tensor(rk0)), complexity=1.0).eps_k.numpy()
    assert (eq19 <= eq20 + 1e-12).all()


def test_complexity_limit_is_where_eps_diverges():
    counts = np.array([85_000.0, 10_000.0, 4_000.0, 1_000.0])
    rho = mt.feasibility_floor(counts, complexity=1.0) * np.array([3.0, 2.0, 5.0, 1.5])
    limit = mt.complexity_limit(counts, rho)
    np.testing.assert_allclose(limit, [3.0, 2.0, 5.0, 1.5], rtol=1e-12)  # the inverse of feasibility_floor
    pair = (torch.tensor(rho), torch.tensor(rho))
    eps = lambda f: float(margin_bound_terms(counts, pair, complexity=f).eps)  # noqa: E731
    f_star = limit.min()
    grid = f_star * np.linspace(0.05, 0.95, 19)
    values = np.array([eps(f) for f in grid])
    assert (np.diff(values) > 0).all() and (np.diff(values, 2) > 0).all()  # increasing, convex
    assert (np.diff(values / grid) > 0).all()  # superlinear: eps/F increases
    assert eps(f_star * (1 - 1e-9)) > 1e6 * eps(f_star / 2) and math.isinf(eps(f_star * (1 + 1e-9)))
    # Corollary 1.1's margins: every class diverges at F = tau / (4c)
    tau_limit = mt.complexity_limit(counts, optimal_margins(counts, tau=7.0)[0])
    np.testing.assert_allclose(tau_limit, np.full(4, 7.0 / 16), rtol=1e-12)


def test_finite_bound_possible_matches_margin_bound_terms_with_sigma():
    m, eta = 100, 0.05
    for factor, finite in ((0.95, False), (1.05, True)):
        images = factor * float(mt.min_images_for_finite_bound(0.05, num_classes=2, eta=eta))
        counts = np.array([0.95, 0.05]) * images * m
        assert mt.finite_bound_possible(counts, pixels_per_image=m, eta=eta).tolist() == [True, finite]
        eps = [float(margin_bound_terms(counts, optimal_margins(counts, tau=float(t)), complexity=1e-3,
                                        pixels_per_image=m, eta=eta).eps) for t in np.logspace(-2, 8, 41)]
        # necessary for any margins; with Corollary 1.1's margins also sufficient at a large tau
        assert any(math.isfinite(e) for e in eps) == finite
    # random margins never beat the necessary condition
    rng = np.random.default_rng(0)
    counts = np.array([9_000.0, 800.0, 200.0])
    assert not mt.finite_bound_possible(counts, pixels_per_image=1_000, eta=0.1).all()
    for _ in range(20):
        rho = torch.as_tensor(10 ** rng.uniform(-2, 4, (2, 3)))
        assert math.isinf(float(margin_bound_terms(counts, (rho[0], rho[1]), complexity=1e-6,
                                                   pixels_per_image=1_000, eta=0.1).eps))


#: A data set large enough for a finite bound with sigma counted: 10^6 images of 48 x 48 pixels with
#: the chapter's class frequencies (a 1 % class needs about 10^5 images).
SIGMA_M, SIGMA_ETA = 48 * 48, 0.05
SIGMA_COUNTS = np.array([0.85, 0.10, 0.04, 0.01]) * SIGMA_M * 1e6


def test_sigma_per_margin_is_the_theorems_sigma_over_rho_max():
    s = mt.sigma_per_margin(4, pixels_per_image=SIGMA_M, eta=SIGMA_ETA)
    assert s == pytest.approx(math.sqrt(2 * SIGMA_M * math.log(8 / SIGMA_ETA)) / 16, rel=1e-15)


def test_corollary_eps_sigma_equals_the_general_bound_with_sigma():
    counts = SIGMA_COUNTS
    rng = np.random.default_rng(1)
    ratio = np.sqrt(counts.sum() - counts) / counts
    rho = ratio * 10 ** rng.uniform(2, 6, (12, 1)) * rng.uniform(0.8, 1.25, (12, 4))  # around eq. 23's shape
    ours = mt.corollary_eps_sigma(rho, counts, pixels_per_image=SIGMA_M, eta=SIGMA_ETA, complexity=0.5)
    assert ours.shape == (12,) and np.isfinite(ours).sum() >= 6
    mu = mt.corollary_mu(counts)
    for r, e in zip(rho, ours):
        general = float(margin_bound_terms(counts, (torch.tensor(r), torch.tensor(mu * r)), complexity=0.5,
                                           pixels_per_image=SIGMA_M, eta=SIGMA_ETA).eps)
        assert (math.isinf(e) and math.isinf(general)) or e == pytest.approx(general, rel=1e-10)
    # sigma counted, F is at least the fixed-F value's: the bound can only grow
    fixed = mt.corollary_eps(rho, counts, complexity=0.5)
    assert (ours >= fixed).all()


@pytest.mark.parametrize("tau", [1e3, 1e5])
def test_eq23_is_not_the_optimum_once_sigma_is_counted(tau):
    counts = SIGMA_COUNTS
    star = tau * np.sqrt(counts.sum() - counts) / counts
    eps_of = lambda rho: float(mt.corollary_eps_sigma(rho, counts, pixels_per_image=SIGMA_M, eta=SIGMA_ETA))  # noqa: E731
    eps_star = eps_of(star)
    assert math.isfinite(eps_star)
    # At fixed F eq. 23 is stationary on the plane of fixed sum, but F falls with rho_max: moving a
    # little of the largest margin onto the others (same sum) lowers eps at first order.
    k = int(star.argmax())
    shift = star.copy()
    shift[k] = 0.0
    shift = shift / shift.sum()
    shift[k] = -1.0
    for delta in (1e-4, 1e-3):
        assert eps_of(star + delta * star.sum() * shift) < eps_star
    rho, eps = mt.minimize_bound_sigma(counts, star.sum(), pixels_per_image=SIGMA_M, eta=SIGMA_ETA)
    assert rho.sum() == pytest.approx(star.sum(), rel=1e-12) and eps == pytest.approx(eps_of(rho), rel=1e-15)
    assert eps < 0.9 * eps_star  # more than 10 % lower
    assert rho.max() / rho.sum() < 0.5 < star.max() / star.sum()  # the rarest class's share is capped


def test_minimize_bound_sigma_refuses_a_vacuous_start():
    with pytest.raises(ValueError, match="total: Corollary 1.1's margins"):
        mt.minimize_bound_sigma([9_000.0, 800.0, 200.0], 10.0, pixels_per_image=1_000, eta=0.1)


def test_min_images_and_min_frequency_are_inverse():
    p = np.array([0.005, 0.01, 0.1, 0.5])
    images = mt.min_images_for_finite_bound(p, num_classes=5, eta=0.05)
    np.testing.assert_allclose(images, 2 * (1 - p) * math.log(200.0) / p**2, rtol=1e-12)
    np.testing.assert_allclose(mt.min_frequency_for_finite_bound(images, num_classes=5, eta=0.05), p, rtol=1e-10)
    assert mt.min_images_for_finite_bound(0.01, num_classes=2, eta=0.05) < images[1]  # fewer classes, smaller log


@pytest.mark.parametrize("call, exc, match", [
    (lambda: mt.min_images_for_finite_bound(0.0, num_classes=2, eta=0.05), ValueError,
     r"frequency: expected values in \(0, 1\)"),
    (lambda: mt.min_images_for_finite_bound(0.1, num_classes=1, eta=0.05), ValueError,
     "num_classes: expected an integer >= 2"),
    (lambda: mt.min_images_for_finite_bound(0.1, num_classes=2.0, eta=0.05), TypeError, "num_classes"),
    (lambda: mt.min_frequency_for_finite_bound(0, num_classes=2, eta=0.05), ValueError, "num_images: expected finite"),
    (lambda: mt.min_frequency_for_finite_bound(10, num_classes=2, eta=1.0), ValueError, r"eta: expected a probability"),
    (lambda: mt.finite_bound_possible([10.0, 5.0], pixels_per_image=0, eta=0.1), ValueError, "pixels_per_image"),
    (lambda: mt.sigma_per_margin(3, pixels_per_image=True, eta=0.1), ValueError, "pixels_per_image"),
    (lambda: mt.sigma_per_margin(3, pixels_per_image=10, eta=0.0), ValueError, "eta"),
    (lambda: mt.corollary_eps_sigma([1.0, -1.0], [10.0, 5.0], pixels_per_image=10, eta=0.1), ValueError, "rho_0k"),
    (lambda: mt.corollary_eps_sigma([1.0, 1.0], [10.0, 5.0], pixels_per_image=10, eta=0.1, complexity=0.0),
     ValueError, "complexity"),
    (lambda: mt.minimize_bound_sigma([10.0, 5.0], -1.0, pixels_per_image=10, eta=0.1), ValueError, "total"),
    (lambda: mt.minimize_bound_sigma([10.0, 5.0], 1.0, pixels_per_image=10, eta=1.5), ValueError, "eta"),
    (lambda: mt.minimize_bound_sigma([10.0, 5.0], 1.0, pixels_per_image=10, eta=0.1, v=0.0), ValueError, "v"),
])
def test_finite_bound_helpers_check_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_eq16_from_eq15_gives_sqrt_of_the_complexity():
    d = mt.eq16_from_eq15()
    assert sp.simplify(d.eq15 - d.eq16_sqrt) == 0
    assert sp.solve(sp.Eq(d.eq15, d.eq16_printed), d.symbols["C"]) == [1]  # printed eq. 16 agrees only at C = 1
    values = {d.symbols["n"]: 1e5, d.symbols["n_k"]: 2e3, d.symbols["c"]: 4, d.symbols["rho"]: 3.0,
              d.symbols["C"]: 0.25, d.symbols["m"]: 64, d.symbols["eta"]: 0.05}
    assert float(d.eq15.subs(values)) == pytest.approx(float(d.eq16_sqrt.subs(values)), rel=1e-12)


@pytest.mark.parametrize("bad, match", [([1.0], "class_counts: expected a 1-D"), ([5.0, 0.0], "counts > 0"),
                                        ([[1.0, 2.0]], "class_counts"), ([1.0, float("nan")], "counts > 0")])
def test_counts_checked(bad, match):
    with pytest.raises(ValueError, match=match):
        mt.corollary_mu(bad)


def test_corollary_mu_infinite_when_v_too_small():
    mu = mt.corollary_mu([10.0, 10.0], v=1e-6)
    assert np.isinf(mu).all()
    with pytest.raises(ValueError, match="v: expected a finite number > 0"):
        mt.corollary_mu([10.0, 10.0], v=0.0)


def test_toy_population_and_boundaries():
    pop = mt.toy_population(9000.0, 1000.0)
    torch.testing.assert_close(pop.density.sum(1), pop.counts, rtol=1e-6, atol=0)
    ce = mt.fit_toy_boundary(pop, loss="ce")[2]
    cal0 = mt.fit_toy_boundary(pop, rho=0.0)[2]
    # for C = 2 the calibrated loss at rho = 0 is 2*log2(1 + 2^-lambda): a rescaled logistic loss
    assert cal0 == pytest.approx(ce, abs=1e-4)
    # the Bayes boundary of the linear-logistic optimum: log-odds 0 where n0 pdf0 = n1 pdf1
    assert ce == pytest.approx(math.log(9.0) / 2.0, abs=1e-3)
    rho = optimal_margins(pop.counts, tau=10.0)
    assert mt.fit_toy_boundary(pop, rho=rho)[2] > ce  # rho_01 >> rho_00 pushes towards class 1
    assert mt.fit_toy_boundary(pop, rho=(rho[1], rho[0]))[2] < ce
    best = mt.iou_optimal_boundary(pop)
    assert toy_miou(pop, best) >= toy_miou(pop, ce)


def toy_miou(pop, b):
    return float(mt.toy_iou(pop, b).mean())


def test_toy_balanced_is_symmetric_and_iou_batched():
    pop = mt.toy_population(5000.0, 5000.0)
    assert mt.fit_toy_boundary(pop, loss="ce")[2] == pytest.approx(0.0, abs=1e-6)
    iou = mt.toy_iou(pop, torch.tensor([-100.0, 0.0, 100.0]))
    assert iou.shape == (3, 2)
    torch.testing.assert_close(iou[0], torch.tensor([0.0, 0.5], dtype=torch.float64))  # all predicted class 1
    # symmetric up to the grid point at x = 0, which counts as class 0
    assert float(iou[1, 0]) == pytest.approx(float(iou[1, 1]), abs=2e-3)


@pytest.mark.parametrize("kwargs, match", [({"n_major": 0.0}, "n_major"), ({"sigma": -1.0}, "sigma"),
                                           ({"grid": 2}, "grid: expected an integer >= 3")])
def test_toy_population_checks(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mt.toy_population(**kwargs)


def test_toy_loss_option_checked():
    pop = mt.toy_population(10.0, 10.0, grid=5)
    with pytest.raises(ValueError, match="loss: expected one of"):
        mt.toy_loss(pop, torch.tensor(1.0), torch.tensor(0.0), loss="hinge")
