"""Tests of :mod:`softseg.losses.dice` against Wang et al., "Dice Semimetric Losses" (MICCAI 2023).

Expected values are either derived by hand in the test (comment next to the number) or come
from an independent float64 transcription of the paper's equations (1)-(4) in their *general*
form (with ``||x + y||_1``), see :func:`paper_formulas`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softseg.losses.dice import (
    CEDiceSemimetricLoss,
    DiceSemimetricLoss,
    JaccardMetricLoss,
    SoftDiceLoss,
    SoftJaccardLoss,
    ce_dice_semimetric_loss,
    dice_semimetric_loss,
    jaccard_metric_loss,
    soft_dice_loss,
    soft_jaccard_loss,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-12)}
PROPS = settings(deadline=None, max_examples=80)

# name -> f(x, y, eps, reduction); the six losses of the paper
LOSSES = {
    "sdl": lambda x, y, eps=0.0, reduction="none": soft_dice_loss(x, y, eps, reduction),
    "sjl": lambda x, y, eps=0.0, reduction="none": soft_jaccard_loss(x, y, eps, reduction),
    "dml1": lambda x, y, eps=0.0, reduction="none": dice_semimetric_loss(x, y, 1, eps, reduction),
    "dml2": lambda x, y, eps=0.0, reduction="none": dice_semimetric_loss(x, y, 2, eps, reduction),
    "jml1": lambda x, y, eps=0.0, reduction="none": jaccard_metric_loss(x, y, 1, eps, reduction),
    "jml2": lambda x, y, eps=0.0, reduction="none": jaccard_metric_loss(x, y, 2, eps, reduction),
}
SEMIMETRICS = ["dml1", "dml2", "jml1", "jml2"]


def paper_formulas(x: torch.Tensor, y: torch.Tensor, eps: float = 0.0) -> dict[str, torch.Tensor]:
    """Eqs. (1)-(4) of the paper, verbatim, as ``1 - (num + eps) / (den + eps)``, in float64."""
    x, y = x.double().flatten(2), y.double().flatten(2)
    n1 = lambda t: t.abs().sum(-1)  # noqa: E731  (the L1 norm)
    dot, xy = (x * y).sum(-1), n1(x * y)
    s, a, b = n1(x) + n1(y), n1(x + y), n1(x - y)
    score = lambda num, den: 1 - (num + eps) / (den + eps)  # noqa: E731
    return {
        "sdl": score(2 * dot, s),                     # eq. (1)
        "sjl": score(dot, s - dot),                   # eq. (2)
        "jml1": score((a - b) / 2, (a + b) / 2),      # eq. (3), left (eps on the halves)
        "jml2": score(xy, xy + b),                    # eq. (3), right
        "dml1": score(a - b, a),                      # eq. (4), left
        "dml2": score(2 * xy, 2 * xy + b),            # eq. (4), right
    }


def rand_pair(shape, dtype=torch.float64, device="cpu", seed=0):
    """Soft x, y in [0, 1] with some exact 0 and 1 entries (ends of the range)."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(shape, generator=g, dtype=torch.float64), torch.rand(shape, generator=g, dtype=torch.float64)
    x[..., :2] = 0.0
    y[..., 1:3] = 1.0
    return x.to(device, dtype), y.to(device, dtype)


# --------------------------------------------------------------------------- hypothesis

# [0, 1] with the ends of the range; values below 1e-9 (other than 0) are left out only because
# the safe denominator is clamped at 16 * finfo.tiny: a mass that small is tested on its own.
UNIT = st.one_of(st.just(0.0), st.just(1.0), st.just(0.5), st.floats(1e-9, 1.0))
HARD = st.sampled_from([0.0, 1.0])


@st.composite
def tensors(draw, k: int = 2, hard: tuple[bool, ...] = ()):
    """``k`` float64 tensors of one shape (N, C, p) with entries in [0, 1] (hard where asked)."""
    shape = draw(st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 8)))
    out = []
    for i in range(k):
        elements = HARD if i < len(hard) and hard[i] else UNIT
        out.append(torch.from_numpy(draw(hnp.arrays(np.float64, shape, elements=elements))))
    return out


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.0, 1.0])
@pytest.mark.parametrize("name", list(LOSSES))
def test_matches_paper_formulas(name, eps, dtype, device):
    x, y = rand_pair((2, 3, 5, 4), dtype, device)
    got = LOSSES[name](x, y, eps)
    assert got.shape == (2, 3) and got.dtype == dtype and got.device.type == device
    torch.testing.assert_close(got.double(), paper_formulas(x, y, eps)[name], **TOL[dtype])


def test_hand_derived_soft_pair_all_differ():
    """Theorem 2, second part: on a soft pair SDL != DML1 != DML2 (and SJL != JML1 != JML2).

    x = 0.5, y = 0.25 (one pixel): <x,y> = 0.125, ||x||+||y|| = 0.75, ||x-y|| = 0.25,
    sum(min) = 0.25, sum(max) = 0.5.
    """
    x, y = torch.tensor([[[0.5]]], dtype=torch.float64), torch.tensor([[[0.25]]], dtype=torch.float64)
    expected = {
        "sdl": 1 - 0.25 / 0.75,              # 2/3
        "dml1": 0.25 / 0.75,                 # 1/3
        "dml2": 1 - 0.25 / (0.25 + 0.25),    # 1/2
        "sjl": 1 - 0.125 / (0.75 - 0.125),   # 4/5
        "jml1": 1 - 0.25 / 0.5,              # 1 - sum(min)/sum(max) = 1/2
        "jml2": 1 - 0.125 / (0.125 + 0.25),  # 2/3
    }
    got = {k: LOSSES[k](x, y).item() for k in LOSSES}
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, rel=1e-14), k
    assert len({round(got[k], 12) for k in ("sdl", "dml1", "dml2")}) == 3
    assert len({round(got[k], 12) for k in ("sjl", "jml1", "jml2")}) == 3


def test_empty_pair_is_zero_loss_with_finite_gradients():
    """x = y = 0 (absent class, empty prediction): 0/0 is defined as 0 = perfect agreement."""
    for name, f in LOSSES.items():
        for eps in (0.0, 1e-5):
            x = torch.zeros(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
            y = torch.zeros(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
            loss = f(x, y, eps, "mean")
            loss.backward()
            assert loss.item() == 0.0, name
            assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all(), name


@pytest.mark.parametrize("name", list(LOSSES))
def test_one_empty_side_is_total_disagreement(name):
    # y empty, x not: every loss is 1 (numerator 0, denominator > 0); same with x and y swapped.
    x, y = rand_pair((1, 2, 6), seed=3)
    x[..., :2] = 0.3
    zero = torch.zeros_like(x)
    torch.testing.assert_close(LOSSES[name](x, zero), torch.ones(1, 2, dtype=torch.float64))
    torch.testing.assert_close(LOSSES[name](zero, x), torch.ones(1, 2, dtype=torch.float64))


@pytest.mark.parametrize("name", SEMIMETRICS)
def test_eps_keeps_reflexivity_and_moves_towards_zero(name):
    x, y = rand_pair((2, 2, 9), seed=4)
    assert (LOSSES[name](x, x, 3.0) == 0).all()
    # (den - num) / (den + eps) shrinks as eps grows
    assert (LOSSES[name](x, y, 10.0) < LOSSES[name](x, y, 0.0)).all()


# --------------------------------------------------------------------------- Theorem 2


@PROPS
@given(tensors(k=2, hard=(False, True)), st.sampled_from([0.0, 0.5]), st.booleans())
def test_theorem2_equal_when_one_argument_is_hard(xy, eps, swap):
    """SDL = DML1 = DML2 and SJL = JML1 = JML2 when x or y is in {0, 1}^p (Theorem 2)."""
    x, y = xy if not swap else xy[::-1]
    v = {k: f(x, y, eps) for k, f in LOSSES.items()}
    torch.testing.assert_close(v["dml1"], v["sdl"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(v["dml2"], v["sdl"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(v["jml1"], v["sjl"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(v["jml2"], v["sjl"], rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- Theorem 3


@PROPS
@given(tensors(k=2), st.sampled_from([0.0, 0.5]))
def test_theorem3_variant1_below_variant2(xy, eps):
    """DML1 <= DML2 (Theorem 3) and JML1 <= JML2 on [0, 1]^p."""
    x, y = xy
    assert (LOSSES["dml1"](x, y, eps) <= LOSSES["dml2"](x, y, eps) + 1e-12).all()
    assert (LOSSES["jml1"](x, y, eps) <= LOSSES["jml2"](x, y, eps) + 1e-12).all()


@PROPS
@given(tensors(k=2))
def test_dml_is_jml_transformed(xy):
    """Sect. 2.2: Delta_Dice = Delta_IoU / (2 - Delta_IoU), variant by variant."""
    x, y = xy
    for k in (1, 2):
        j = LOSSES[f"jml{k}"](x, y)
        torch.testing.assert_close(LOSSES[f"dml{k}"](x, y), j / (2 - j), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("eps", [0.3, 2.0])
def test_dml_is_jml_transformed_with_half_the_smoothing(eps):
    """With eps > 0: DML_eps = h(JML_{eps/2}), not h(JML_eps). DML1 = B / (S + eps) and
    JML1 = B / ((S + B) / 2 + e), so h(JML1) = B / (S + 2e); likewise DML2 = B / (2P + B + eps),
    h(JML2) = B / (2P + B + 2e): equal for e = eps / 2."""
    x, y = rand_pair((6, 2, 7), seed=3)
    h = lambda t: t / (2 - t)  # noqa: E731
    for k in (1, 2):
        dml = LOSSES[f"dml{k}"](x, y, eps)
        torch.testing.assert_close(dml, h(LOSSES[f"jml{k}"](x, y, eps / 2)), rtol=1e-12, atol=1e-12)
        assert (dml - h(LOSSES[f"jml{k}"](x, y, eps))).abs().max() > 1e-3  # the same eps does not pair


# --------------------------------------------------------------------------- Theorem 1 (axioms)

# Relaxed triangle constant rho of eq. (5). JML is a metric (rho = 1, ref. [47]). For DML the
# paper's Theorem 1 states "semimetric" without a number; rho = 3/2 follows from
# DML = g(JML), g(t) = t / (2 - t) increasing and convex on [0, 1]:
#   g(min(1, s + t)) / (g(s) + g(t)) <= g(min(1, 2u)) / (2 g(u)), u = (s + t) / 2,
# which is (2 - u) / (2 - 2u) <= 3/2 for u <= 1/2 and 1 / (2 g(u)) <= 3/2 for u >= 1/2;
# it is the Dice ratio of ref. [11] and is attained (test_dml_triangle_constant_is_tight).
RHO = {"jml1": 1.0, "jml2": 1.0, "dml1": 1.5, "dml2": 1.5}


@PROPS
@given(tensors(k=1))
def test_reflexivity_on_soft_inputs(xs):
    (x,) = xs
    for name in SEMIMETRICS:
        assert (LOSSES[name](x, x) == 0).all(), name


@PROPS
@given(tensors(k=2))
def test_positivity_and_symmetry(xy):
    x, y = xy
    differs = (x != y).flatten(2).any(-1)
    for name in SEMIMETRICS:
        f_xy, f_yx = LOSSES[name](x, y), LOSSES[name](y, x)
        assert torch.equal(f_xy, f_yx), name                      # symmetry, exactly
        assert torch.equal(f_xy > 0, differs), name               # positivity (+ reflexivity)
        assert ((f_xy >= 0) & (f_xy <= 1)).all(), name            # range [0, 1] of eqs. (3), (4)


@PROPS
@given(tensors(k=3))
def test_relaxed_triangle_inequality(abc):
    a, b, c = abc
    for name in SEMIMETRICS:
        f = LOSSES[name]
        lhs, rhs = f(a, c), RHO[name] * (f(a, b) + f(b, c))
        assert (lhs <= rhs + 1e-12).all(), name


def test_dml_triangle_constant_is_tight():
    """a = {1}, b = {1, 2}, c = {2}: Dice distances 1, 1/3, 1/3, so f(a,c) = 3/2 (f(a,b)+f(b,c)).

    DML therefore violates the plain triangle inequality (it is a semimetric, not a metric),
    while JML satisfies it (1 <= 1/2 + 1/2).
    """
    a = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    b = torch.tensor([[[1.0, 1.0]]], dtype=torch.float64)
    c = torch.tensor([[[0.0, 1.0]]], dtype=torch.float64)
    for name in ("dml1", "dml2"):
        f = LOSSES[name]
        assert f(a, c).item() == 1.0 and f(a, b).item() == pytest.approx(1 / 3, rel=1e-14)
        assert f(a, c).item() / (f(a, b) + f(b, c)).item() == pytest.approx(1.5, rel=1e-14)
    for name in ("jml1", "jml2"):
        f = LOSSES[name]
        assert f(a, c).item() <= (f(a, b) + f(b, c)).item() + 1e-15


def test_soft_dice_is_not_reflexive_on_soft_inputs():
    x = torch.full((1, 1, 3), 0.5, dtype=torch.float64)
    assert soft_dice_loss(x, x).item() == pytest.approx(0.5)  # 1 - 2 * 0.75 / 3
    assert soft_jaccard_loss(x, x).item() == pytest.approx(2 / 3)  # 1 - 0.75 / (3 - 0.75)


# --------------------------------------------------------------------------- motivating failure


def test_motivating_failure_sdl_minimized_at_vertex_dml_at_target():
    """Sect. 2.1: y = 0.5 everywhere. SDL(t) = 0.5 / (t + 0.5) is minimized at x = 1, while
    DML1(t) = |t - 0.5| / (t + 0.5) and DML2 vanish only at x = y."""
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    x = t.reshape(101, 1, 1).expand(101, 1, 16).contiguous()      # one sample per constant t
    y = torch.full_like(x, 0.5)
    sdl = soft_dice_loss(x, y, reduction="none")[:, 0]
    torch.testing.assert_close(sdl, 0.5 / (t + 0.5))
    assert t[sdl.argmin()].item() == 1.0
    for name in ("dml1", "dml2", "jml1", "jml2"):
        v = LOSSES[name](x, y)[:, 0]
        assert t[v.argmin()].item() == 0.5 and v.min().item() == 0.0, name
    torch.testing.assert_close(LOSSES["dml1"](x, y)[:, 0], (t - 0.5).abs() / (t + 0.5))
    # gradient at x = y: SDL pushes x up (negative gradient), DML does not move it
    xg = y.clone().requires_grad_(True)
    soft_dice_loss(xg, y).backward()
    assert (xg.grad < 0).all()
    for variant in (1, 2):
        xg.grad = None
        dice_semimetric_loss(xg, y, variant).backward()
        assert (xg.grad == 0).all()


# --------------------------------------------------------------------------- reductions


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("shape", [(3, 2, 7), (2, 3, 4, 5), (2, 2, 3, 4, 2)])
def test_reductions_and_shapes(name, shape):
    x, y = rand_pair(shape, seed=5)
    none = LOSSES[name](x, y, 0.0, "none")
    assert none.shape == shape[:2]
    torch.testing.assert_close(LOSSES[name](x, y, 0.0, "mean"), none.mean())
    torch.testing.assert_close(LOSSES[name](x, y, 0.0, "sum"), none.sum())
    assert LOSSES[name](x, y, 0.0, "mean").shape == ()


def test_regions_are_per_sample_and_class():
    x, y = rand_pair((3, 2, 4, 4), seed=6)
    whole = dice_semimetric_loss(x, y, reduction="none")
    for n in range(3):
        for c in range(2):
            part = dice_semimetric_loss(x[n:n + 1, c:c + 1], y[n:n + 1, c:c + 1], reduction="none")
            torch.testing.assert_close(part[0, 0], whole[n, c])


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("eps", [0.0, 0.5])
@pytest.mark.parametrize("name", list(LOSSES))
def test_gradcheck(name, eps):
    g = torch.Generator().manual_seed(7)
    # keep gradcheck's finite differences (1e-6) inside [0, 1]
    x = (0.05 + 0.9 * torch.rand(2, 2, 3, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
    y = (0.05 + 0.9 * torch.rand(2, 2, 3, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
    f = LOSSES[name]
    assert torch.autograd.gradcheck(lambda a, b: f(a, b, eps, "none"), (x, y))
    assert torch.autograd.gradcheck(lambda a: f(a, y.detach(), eps, "mean"), (x,))
    assert torch.autograd.gradcheck(lambda b: f(x.detach(), b, eps, "sum"), (y,))


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradcheck_with_hard_target(name):
    g = torch.Generator().manual_seed(8)
    x = (0.05 + 0.9 * torch.rand(2, 1, 10, generator=g, dtype=torch.float64)).requires_grad_(True)
    y = (torch.rand(2, 1, 10, generator=g, dtype=torch.float64) > 0.5).double()
    assert torch.autograd.gradcheck(lambda a: LOSSES[name](a, y), (x,))


def _grads(name, x, y, dtype, device):
    x = x.to(device, dtype).requires_grad_(True)
    y = y.to(device, dtype).requires_grad_(True)
    loss = LOSSES[name](x, y, 0.0, "sum")
    loss.backward()
    return loss, x.grad, y.grad


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(LOSSES))
def test_gradients_finite_on_the_boundary(name, dtype, device):
    soft = torch.rand(2, 2, 8, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    zeros, ones = torch.zeros_like(soft), torch.ones_like(soft)
    cases = {
        "x = y": (soft, soft), "x = y = 0": (zeros, zeros), "x = y = 1": (ones, ones),
        "x = 0": (zeros, soft), "x = 1": (ones, soft), "y = 0": (soft, zeros), "y = 1": (soft, ones),
        "x = 0, y = 1": (zeros, ones),
    }
    for case, (x, y) in cases.items():
        loss, gx, gy = _grads(name, x, y, dtype, device)
        assert torch.isfinite(loss).all(), case
        assert torch.isfinite(gx).all() and torch.isfinite(gy).all(), case
        if case.startswith("x = y") and name in SEMIMETRICS:
            assert loss.item() == 0.0 and (gx == 0).all() and (gy == 0).all(), case


def test_hard_target_equal_values_but_not_gradients_at_hard_pixels():
    """Theorem 2 equates values, not gradients. x = (1, 1/2, 0), y = (1, 0, 0): S = 5/2, P = 1,
    B = 1/2, every loss is 1/5. SDL = 1 - 2P/S: d/dx_i = (-2 y_i S + 2P) / S^2 = (-5 y_i + 2) / 6.25,
    i.e. (-0.48, 0.32, 0.32). DML1 = B/S: d/dx_i = (sign(x_i - y_i) S - B) / S^2 with sign(0) = 0,
    i.e. (-0.08, 0.32, -0.08). DML2 = B/(2P + B): d/dx_i = (sign_i (2P + B) - B (2 y_i + sign_i))
    / (2P + B)^2 = (sign_i * 2 - y_i) / 6.25, i.e. (-0.16, 0.32, 0). They agree at the soft pixel
    (0 < x_i < 1) and differ at the two pixels with x_i = y_i in {0, 1}, where |x_i - y_i| has
    its kink (subgradient 0) and SDL is smooth."""
    x0 = torch.tensor([[[1.0, 0.5, 0.0]]], dtype=torch.float64)
    y = torch.tensor([[[1.0, 0.0, 0.0]]], dtype=torch.float64)
    expected = {"sdl": [-0.48, 0.32, 0.32], "dml1": [-0.08, 0.32, -0.08], "dml2": [-0.16, 0.32, 0.0]}
    grads = {}
    for name, grad in expected.items():
        x = x0.clone().requires_grad_(True)
        loss = LOSSES[name](x, y, 0.0, "sum")
        loss.backward()
        assert loss.item() == pytest.approx(0.2, abs=1e-15)  # the values agree (Theorem 2)
        torch.testing.assert_close(x.grad.flatten(), torch.tensor(grad, dtype=torch.float64))
        grads[name] = x.grad.flatten()
    for name in ("dml1", "dml2"):  # the soft pixel: equal (to rounding: different formulas)
        torch.testing.assert_close(grads[name][1], grads["sdl"][1], rtol=0, atol=1e-15)
    # after a sigmoid the difference is gone: sigma'(z) = 0 in float32 where sigma(z) rounds to 0 or 1
    z = torch.tensor([[[40.0, 0.0, -120.0]]], requires_grad=True)
    p = torch.sigmoid(z)
    assert p[0, 0, 0] == 1.0 and p[0, 0, 2] == 0.0
    g = {name: torch.autograd.grad(LOSSES[name](p, y.float(), 0.0, "sum"), z, retain_graph=True)[0]
         for name in expected}
    for name in ("dml1", "dml2"):
        assert (g[name][0, 0, [0, 2]] == 0).all() and (g["sdl"][0, 0, [0, 2]] == 0).all()
        torch.testing.assert_close(g[name], g["sdl"])


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradients_finite_for_vanishing_masses_float32(name):
    """An absent class whose predicted probabilities underflow: masses ~1e-30 and subnormal."""
    for tiny in (1e-30, 1e-42):
        x = torch.full((1, 2, 64), tiny, dtype=torch.float32)
        x[0, 1, 1:] = 0.0
        loss, gx, gy = _grads(name, x, torch.zeros_like(x), torch.float32, "cpu")
        assert torch.isfinite(loss) and torch.isfinite(gx).all() and torch.isfinite(gy).all()
        assert 0.0 <= loss.item() <= 2.0 + 1e-5  # two classes, each loss in [0, 1]


def test_gradient_at_vanishing_mass_is_exact_in_float32():
    # y = 0, x = 1e-30 everywhere: DML1 = 1 for every x > 0, so its gradient is exactly 0
    # (the naive d(B/S) = 1/S - B/S**2 overflows to -inf in float32 here).
    x = torch.full((1, 1, 16), 1e-30, requires_grad=True)
    loss = dice_semimetric_loss(x, torch.zeros_like(x))
    loss.backward()
    assert loss.item() == 1.0 and (x.grad == 0).all()


def test_backward_twice_with_retain_graph():
    x, y = rand_pair((2, 2, 6), seed=10)
    x.requires_grad_(True)
    loss = dice_semimetric_loss(x, y, reduction="sum")
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, x)
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)


def test_non_contiguous_inputs():
    x, y = rand_pair((2, 3, 5, 4), seed=11)
    xt, yt = x.transpose(2, 3), y.transpose(2, 3)           # same regions, other layout
    assert not xt.is_contiguous()
    for name, f in LOSSES.items():
        a = xt.clone().requires_grad_(True)
        b = xt.contiguous().requires_grad_(True)
        fa, fb = f(a, yt), f(b, yt.contiguous())
        torch.testing.assert_close(fa, fb)
        fa.sum().backward()
        fb.sum().backward()
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computed_in_float32(dtype):
    x, y = rand_pair((2, 2, 64, 64), torch.float32, seed=12)
    xh, yh = x.to(dtype).requires_grad_(True), y.to(dtype)
    got = dice_semimetric_loss(xh, yh, reduction="none")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, dice_semimetric_loss(xh.float(), yh.float(), reduction="none"))
    got.sum().backward()
    assert xh.grad.dtype == dtype and torch.isfinite(xh.grad).all()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", list(LOSSES))
def test_error_messages(name):
    f = LOSSES[name]
    x, y = rand_pair((1, 2, 4), seed=13)
    with pytest.raises(ValueError, match=r"x and y: expected equal shapes, got \(1, 2, 4\) and \(1, 2, 5\)"):
        f(x, torch.zeros(1, 2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"x: expected values in \[0, 1\], got values in \[0, 1\.5\]"):
        f(torch.full_like(x, 1.5).index_fill(2, torch.tensor([0]), 0.0), y)
    with pytest.raises(ValueError, match=r"y: expected values in \[0, 1\], got values in \[-0\.1, 1\]"):
        f(x, y.index_fill(2, torch.tensor([0]), -0.1))
    with pytest.raises(ValueError, match="x: expected finite values, got NaN or inf"):
        f(x.index_fill(2, torch.tensor([1]), float("nan")), y)
    with pytest.raises(ValueError, match="y: expected finite values, got NaN or inf"):
        f(x, y.index_fill(2, torch.tensor([1]), float("nan")))
    with pytest.raises(TypeError, match="x: expected a floating-point tensor .* got dtype torch.int64"):
        f(torch.zeros(1, 2, 4, dtype=torch.long), y)
    with pytest.raises(TypeError, match="y: expected a floating-point tensor .* got dtype torch.uint8"):
        f(x, torch.zeros(1, 2, 4, dtype=torch.uint8))
    with pytest.raises(TypeError, match="x: expected a torch.Tensor, got ndarray"):
        f(x.numpy(), y)
    with pytest.raises(TypeError, match="x and y: expected the same dtype, got torch.float32 and torch.float64"):
        f(x.float(), y)
    with pytest.raises(ValueError, match=r"x: expected shape \(N, C, \*spatial\) \(at least 3 dims\), got \(2, 4\)"):
        f(x[0], y[0])
    with pytest.raises(ValueError, match="x: expected a non-empty tensor"):
        f(x[:0], y[:0])
    with pytest.raises(ValueError, match=r"reduction: expected one of \('mean', 'sum', 'none'\), got 'avg'"):
        f(x, y, 0.0, "avg")
    with pytest.raises(ValueError, match="eps: expected a finite number >= 0, got -1"):
        f(x, y, -1.0)


@pytest.mark.parametrize("fn", [dice_semimetric_loss, jaccard_metric_loss])
@pytest.mark.parametrize("variant", [0, 3, "1", 1.5, True])
def test_bad_variant(fn, variant):
    x, y = rand_pair((1, 1, 4))
    with pytest.raises(ValueError, match=r"variant: expected one of \(1, 2\), got"):
        fn(x, y, variant=variant)
    with pytest.raises(ValueError, match=r"variant: expected one of \(1, 2\), got"):
        DiceSemimetricLoss(variant=variant)


# --------------------------------------------------------------------------- modules

MODULES = {
    "sdl": (SoftDiceLoss, {}), "sjl": (SoftJaccardLoss, {}),
    "dml1": (DiceSemimetricLoss, {"variant": 1}), "dml2": (DiceSemimetricLoss, {"variant": 2}),
    "jml1": (JaccardMetricLoss, {"variant": 1}), "jml2": (JaccardMetricLoss, {"variant": 2}),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_module_matches_functional(name, reduction, device):
    cls, kw = MODULES[name]
    x, y = rand_pair((2, 3, 4, 4), device=device, seed=14)
    module = cls(**kw, eps=0.25, reduction=reduction)
    torch.testing.assert_close(module(x, y), LOSSES[name](x, y, 0.25, reduction))
    assert f"reduction='{reduction}'" in repr(module) and "eps=0.25" in repr(module)


@pytest.mark.parametrize("name", list(LOSSES))
def test_activation_option(name):
    cls, kw = MODULES[name]
    g = torch.Generator().manual_seed(15)
    logits = 4 * torch.randn(2, 3, 5, 5, generator=g, dtype=torch.float64)
    y = torch.softmax(torch.randn(2, 3, 5, 5, generator=g, dtype=torch.float64), dim=1)
    torch.testing.assert_close(cls(**kw, activation="sigmoid")(logits, y), LOSSES[name](torch.sigmoid(logits), y, 0.0, "mean"))
    torch.testing.assert_close(cls(**kw, activation="softmax")(logits, y), LOSSES[name](torch.softmax(logits, 1), y, 0.0, "mean"))
    with pytest.raises(ValueError, match=r"x: expected values in \[0, 1\]"):
        cls(**kw)(logits, y)  # activation=None: logits are outside the domain
    with pytest.raises(ValueError, match="activation: expected one of .*got 'tanh'"):
        cls(**kw, activation="tanh")
    with pytest.raises(ValueError, match="activation: expected one of .*got 'relu'"):
        cls(**kw, activation="relu")
    with pytest.raises(ValueError, match="activation: expected 'sigmoid' or None for a single channel"):
        cls(**kw, activation="softmax")(logits[:, :1], y[:, :1])
    with pytest.raises(TypeError, match="x: expected a floating-point tensor"):
        cls(**kw, activation="sigmoid")(torch.zeros(1, 1, 3, dtype=torch.long), y[:1, :1, :3, 0])


def test_module_options_are_keyword_only_and_checked():
    with pytest.raises(TypeError):
        DiceSemimetricLoss(1)  # noqa: the options are keyword-only
    with pytest.raises(ValueError, match="eps: expected a finite number >= 0"):
        SoftDiceLoss(eps=-0.1)
    with pytest.raises(ValueError, match="reduction: expected one of"):
        JaccardMetricLoss(reduction="batch")


# --------------------------------------------------------------------------- CE + DML


def _logits_and_target(shape, seed=16, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g, dtype=dtype)
    y = torch.softmax(2 * torch.randn(shape, generator=g, dtype=dtype), dim=1)
    return logits, y


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("variant", [1, 2])
@pytest.mark.parametrize("lam", [0.0, 0.75, 1.0])
def test_ce_dml_softmax_matches_components(lam, variant, device):
    logits, y = _logits_and_target((2, 3, 4, 5))
    logits, y = logits.to(device), y.to(device)
    # torch's cross_entropy with class-probability targets: mean over N and pixels
    expected = (1 - lam) * F.cross_entropy(logits, y) + lam * dice_semimetric_loss(torch.softmax(logits, 1), y, variant)
    got = ce_dice_semimetric_loss(logits, y, lambda_dml=lam, variant=variant)
    torch.testing.assert_close(got, expected)
    module = CEDiceSemimetricLoss(lambda_dml=lam, variant=variant)
    torch.testing.assert_close(module(logits, y), got)
    none = ce_dice_semimetric_loss(logits, y, lam, variant, reduction="none")
    assert none.shape == (2,)
    torch.testing.assert_close(none.mean(), got)
    torch.testing.assert_close(ce_dice_semimetric_loss(logits, y, lam, variant, reduction="sum"), none.sum())


def test_ce_dml_sigmoid_for_single_channel():
    g = torch.Generator().manual_seed(17)
    logits = torch.randn(2, 1, 6, 6, generator=g, dtype=torch.float64)
    y = torch.rand(2, 1, 6, 6, generator=g, dtype=torch.float64)
    expected = 0.25 * F.binary_cross_entropy_with_logits(logits, y) + 0.75 * dice_semimetric_loss(torch.sigmoid(logits), y)
    torch.testing.assert_close(ce_dice_semimetric_loss(logits, y), expected)
    torch.testing.assert_close(CEDiceSemimetricLoss(activation="sigmoid")(logits, y), expected)
    # multi-label: explicit sigmoid with C > 1, no channel-sum condition on y
    logits3, y3 = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.rand(2, 3, 4, 4, dtype=torch.float64)
    expected3 = 0.5 * F.binary_cross_entropy_with_logits(logits3, y3) + 0.5 * dice_semimetric_loss(torch.sigmoid(logits3), y3)
    torch.testing.assert_close(ce_dice_semimetric_loss(logits3, y3, 0.5, activation="sigmoid"), expected3)


def test_ce_dml_gradcheck():
    logits, y = _logits_and_target((2, 3, 3, 3))
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: ce_dice_semimetric_loss(z, y, reduction="none"), (logits,))
    b = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: ce_dice_semimetric_loss(z, torch.full_like(z, 0.3)), (b,))


def test_ce_dml_is_minimized_at_the_soft_target():
    """p = softmax(x) = y minimizes both terms (CE: Gibbs' inequality; DML: reflexivity and
    positivity), so no perturbation of the logits x = log y lowers the loss. CE + SDL is not
    minimized there: SDL pushes p towards the vertices (Sect. 2.1)."""
    _, y = _logits_and_target((2, 3, 6, 6))
    best = y.log()
    at_target = ce_dice_semimetric_loss(best, y).item()
    g = torch.Generator().manual_seed(18)
    for _ in range(20):
        delta = 0.05 * torch.randn(best.shape, generator=g, dtype=torch.float64)
        assert ce_dice_semimetric_loss(best + delta, y).item() >= at_target - 1e-12

    def ce_sdl(z):
        return 0.25 * F.cross_entropy(z, y) + 0.75 * soft_dice_loss(torch.softmax(z, 1), y)

    z = best.clone().requires_grad_(True)
    ce_sdl(z).backward()
    step = 0.5 / z.grad.abs().max()  # move the logits by at most 0.5
    assert ce_sdl(best - step * z.grad).item() < ce_sdl(best).item() - 1e-3


def test_ce_dml_errors():
    logits, y = _logits_and_target((1, 2, 4))
    with pytest.raises(ValueError, match=r"y: expected channels summing to 1 at every pixel .* got sums in \[0\.5"):
        ce_dice_semimetric_loss(logits, 0.5 * y)
    with pytest.raises(ValueError, match="x: expected finite logits, got NaN or inf"):
        ce_dice_semimetric_loss(logits.index_fill(2, torch.tensor([0]), float("nan")), y)
    with pytest.raises(ValueError, match=r"y: expected values in \[0, 1\]"):
        ce_dice_semimetric_loss(logits, 2 * y - 0.5, activation="sigmoid")
    with pytest.raises(ValueError, match=r"lambda_dml: expected a number in \[0, 1\], got 1.5"):
        CEDiceSemimetricLoss(lambda_dml=1.5)
    with pytest.raises(ValueError, match="lambda_dml: expected a finite number >= 0"):
        ce_dice_semimetric_loss(logits, y, lambda_dml=-0.1)
    with pytest.raises(ValueError, match="activation: expected 'sigmoid' or None for a single channel"):
        ce_dice_semimetric_loss(logits[:, :1], y[:, :1], activation="softmax")
    with pytest.raises(ValueError, match="activation: expected one of"):
        CEDiceSemimetricLoss(activation="tanh")
    with pytest.raises(ValueError, match=r"variant: expected one of \(1, 2\)"):
        CEDiceSemimetricLoss(variant=3)
    with pytest.raises(ValueError, match=r"x and y: expected equal shapes"):
        ce_dice_semimetric_loss(logits, y[:, :, :3])
    with pytest.raises(TypeError, match="y: expected a floating-point tensor"):
        ce_dice_semimetric_loss(logits, y.long())
    with pytest.raises(ValueError, match="reduction: expected one of"):
        ce_dice_semimetric_loss(logits, y, reduction="avg")


def test_ce_dml_finite_gradients_with_hard_and_empty_targets():
    # one-hot target where class 2 is absent from the image, and extreme logits
    y = F.one_hot(torch.tensor([[0, 1, 0, 1]]), 3).permute(0, 2, 1).double()
    logits = torch.tensor([[[50.0, -50, 0, 3], [-50, 50, 0, 3], [-50, -50, 0, -100]]], dtype=torch.float64)
    logits.requires_grad_(True)
    loss = ce_dice_semimetric_loss(logits, y)
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(logits.grad).all()
