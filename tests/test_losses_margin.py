"""Tests of :mod:`softseg.losses.margin` (Li, Yu & Zhang, distribution-aware margin calibration).

Equation numbers refer to ``shared/papers/distribution-aware-margin-calibration.md``. Expected
values are derived here: a pixel-by-pixel reference of eqs. 4, 5, 27–29 written with Python
loops, hand-computed counts for Corollary 1.1, and a direct numerical minimization (scipy) of
the bound ε of Theorem 1 (eq. 22) for the corollary.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from softseg.losses.margin import (
    CalibratedLogLoss,
    MarginBound,
    MarginLoss,
    argmax_iou,
    calibrated_log_loss,
    iou_lower_bound,
    margin_bound_terms,
    margin_loss,
    optimal_margins,
)

DTYPES = [torch.float32, torch.float64]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
LOSSES = {"margin": margin_loss, "calibrated": calibrated_log_loss}
HYP = settings(deadline=None, max_examples=60, derandomize=True)


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}


# ----------------------------------------------------------------------------------------------
# pixel-by-pixel reference (eqs. 4, 5, 27, 28, 29), written with loops on purpose
# ----------------------------------------------------------------------------------------------


def phi_margin(lam: float, rho: float) -> float:
    """Eq. 5; at rho = 0 the limit rho -> 0+ of eq. 5, i.e. 1[lam <= 0]."""
    if rho == 0:
        return 1.0 if lam <= 0 else 0.0
    return min(1.0, max(0.0, 1.0 - lam / rho))


def phi_calibrated(lam: float, rho: float) -> float:
    """log2(1 + 2^(-lam + rho)) (text below eq. 27)."""
    return math.log2(1.0 + 2.0 ** (-lam + rho))


def reference_per_pixel(scores, labels, rho_0k, rho_k0, phi):
    """Per-pixel l_i of eq. 27 with phi, by explicit loops; returns float64 numpy (N, *spatial)."""
    s = scores.detach().double().cpu().numpy()
    y = labels.cpu().numpy()
    n_img, c = s.shape[:2]
    s = s.reshape(n_img, c, -1)
    yf = y.reshape(n_img, -1)
    out = np.zeros(yf.shape)
    for b in range(n_img):
        for i in range(s.shape[2]):
            for k in range(c):
                others = [s[b, j, i] for j in range(c) if j != k]
                lam = s[b, k, i] - max(others) if others else math.inf
                if yf[b, i] == k:
                    out[b, i] += phi(lam, float(rho_k0[k]))
                else:
                    out[b, i] += phi(-lam, float(rho_0k[k]))
    return out.reshape(y.shape)


def margin_pairs(rho, c):
    """The (rho_0k, rho_k0) pair of (C,) float arrays that a ``rho`` argument stands for."""
    if isinstance(rho, (tuple, list)):
        a, b = rho
    else:
        a = b = rho
    expand = lambda r: np.broadcast_to(np.asarray(torch.as_tensor(r, dtype=torch.float64)), (c,))  # noqa: E731
    return expand(a), expand(b)


def random_problem(shape=(2, 4, 3, 5), seed=0, dtype=torch.float64, device="cpu", scale=2.0):
    g = torch.Generator().manual_seed(seed)
    scores = (scale * torch.randn(shape, generator=g, dtype=torch.float64)).to(device=device, dtype=dtype)
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g).to(device)
    return scores, labels


RHO_FORMS = {
    "scalar": 0.7,
    "zero": 0.0,
    "per_class": torch.tensor([0.2, 1.5, 0.0, 3.0]),
    "pair": (torch.tensor([0.5, 0.1, 2.0, 0.0]), torch.tensor([0.0, 1.0, 0.3, 4.0])),
    "pair_mixed": [1.25, torch.tensor([0.5, 0.1, 2.0, 0.7])],
}


# ----------------------------------------------------------------------------------------------
# the losses against the reference
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", list(RHO_FORMS))
@pytest.mark.parametrize("kind", list(LOSSES))
def test_losses_match_reference(kind, form, dtype, device):
    scores, labels = random_problem(dtype=dtype, device=device)
    rho = RHO_FORMS[form]
    r0k, rk0 = margin_pairs(rho, scores.shape[1])
    phi = phi_margin if kind == "margin" else phi_calibrated
    expected = torch.as_tensor(reference_per_pixel(scores, labels, r0k, rk0, phi), dtype=dtype, device=device)
    fn = LOSSES[kind]
    none = fn(scores, labels, rho, reduction="none")
    assert none.shape == labels.shape and none.dtype == dtype and none.device == scores.device
    torch.testing.assert_close(none, expected, **tol(dtype))
    torch.testing.assert_close(fn(scores, labels, rho), expected.mean(), **tol(dtype))
    torch.testing.assert_close(fn(scores, labels, rho, "sum"), expected.sum(), **tol(dtype))


@pytest.mark.parametrize("kind", list(LOSSES))
def test_losses_match_reference_with_ties(kind):
    # integer scores: ties for the max (λ = 0 for every tied class) and λ = 0 exactly, where
    # the ρ = 0 step φ_0(0) = 1 and the ramp φ_ρ(0) = 1 must agree with the definition.
    g = torch.Generator().manual_seed(13)
    scores = torch.randint(-2, 3, (3, 4, 5, 5), generator=g).double()
    labels = torch.randint(0, 4, (3, 5, 5), generator=g)
    phi = phi_margin if kind == "margin" else phi_calibrated
    for rho in (0.0, 1.0, RHO_FORMS["pair"]):
        r0k, rk0 = margin_pairs(rho, 4)
        expected = torch.as_tensor(reference_per_pixel(scores, labels, r0k, rk0, phi))
        torch.testing.assert_close(LOSSES[kind](scores, labels, rho, "none"), expected, rtol=1e-12, atol=1e-12)


def test_mean_is_eq27_sum_over_classes():
    """reduction="mean" is L(θ) = Σ_k (ℓ_k0 + ℓ_0k) of eq. 27, each ℓ with the 1/n of eq. 6."""
    scores, labels = random_problem(shape=(3, 3, 4, 4), seed=1)
    r0k, rk0 = torch.tensor([0.3, 0.6, 1.0]), torch.tensor([0.9, 0.2, 0.4])
    n = labels.numel()
    lam = torch.stack([scores[:, k] - torch.cat([scores[:, :k], scores[:, k + 1:]], 1).amax(1) for k in range(3)], 1)
    total = 0.0
    for k in range(3):
        in_k = labels == k
        l_k0 = (1 - lam[:, k][in_k] / rk0[k]).clamp(0, 1).sum() / n
        l_0k = (1 + lam[:, k][~in_k] / r0k[k]).clamp(0, 1).sum() / n
        total = total + l_k0 + l_0k
    torch.testing.assert_close(margin_loss(scores, labels, (r0k, rk0)), total.to(scores.dtype))


# ----------------------------------------------------------------------------------------------
# rho = 0: the plain, un-margined losses
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_margin_loss_at_rho_zero_is_twice_the_01_loss(dtype, device):
    # continuous scores: the argmax is unique, so λ ≠ 0 everywhere and φ_0 = 1[λ ≤ 0] is the 0-1
    # loss; a mistake ŷ ≠ y costs 1 for class y (λ_iy < 0) and 1 for class ŷ (−λ_iŷ < 0).
    scores, labels = random_problem(shape=(2, 5, 6, 6), seed=2, dtype=dtype, device=device)
    wrong = (scores.argmax(1) != labels).to(dtype)
    torch.testing.assert_close(margin_loss(scores, labels, 0.0, "none"), 2 * wrong)
    torch.testing.assert_close(margin_loss(scores, labels, 0.0), 2 * wrong.mean())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_calibrated_at_rho_zero_is_unmargined_log_loss(dtype, device):
    scores, labels = random_problem(shape=(2, 3, 5, 5), seed=3, dtype=dtype, device=device, scale=1.0)
    c = scores.shape[1]
    # direct formula with ρ = 0: log2(1 + 2^{−λ_iy}) + Σ_{k≠y} log2(1 + 2^{λ_ik})
    expected = torch.zeros_like(labels, dtype=dtype)
    for k in range(c):
        others = torch.cat([scores[:, :k], scores[:, k + 1:]], 1).amax(1)
        lam = scores[:, k] - others
        expected += torch.where(labels == k, torch.log2(1 + 2 ** (-lam)), torch.log2(1 + 2 ** lam))
    torch.testing.assert_close(calibrated_log_loss(scores, labels, 0.0, "none"), expected, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_calibrated_at_rho_zero_two_classes_is_scaled_cross_entropy(dtype):
    # C = 2: λ_i,other = −λ_iy, so l_i = 2·log2(1 + 2^{−λ_iy}) = (2/ln 2)·CE(ln 2 · s).
    scores, labels = random_problem(shape=(3, 2, 7, 7), seed=4, dtype=dtype)
    ce = F.cross_entropy(scores * math.log(2), labels)
    torch.testing.assert_close(calibrated_log_loss(scores, labels, 0.0), 2 / math.log(2) * ce, **tol(dtype))


# ----------------------------------------------------------------------------------------------
# monotonicity, bounds between the losses, large rho
# ----------------------------------------------------------------------------------------------


@HYP
@given(
    seed=st.integers(0, 2**31 - 1),
    c=st.integers(1, 5),
    quantized=st.booleans(),
    kind=st.sampled_from(list(LOSSES)),
)
def test_losses_non_decreasing_in_every_margin(seed, c, quantized, kind):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(2, c, 3, 4, generator=g, dtype=torch.float64) * 3
    if quantized:  # ties and λ = 0 exactly
        scores = scores.round()
    labels = torch.randint(0, c, (2, 3, 4), generator=g)
    base = (torch.rand(c, generator=g, dtype=torch.float64) * torch.randint(0, 2, (c,), generator=g),
            torch.rand(c, generator=g, dtype=torch.float64) * 2)
    bigger = (base[0] + torch.rand(c, generator=g, dtype=torch.float64) * 3, base[1] + torch.rand(c, generator=g))
    fn = LOSSES[kind]
    low, high = fn(scores, labels, base, "none"), fn(scores, labels, bigger, "none")
    assert bool((low <= high + 1e-12).all())


@HYP
@given(seed=st.integers(0, 2**31 - 1), c=st.integers(1, 5), quantized=st.booleans())
def test_calibrated_upper_bounds_margin_loss(seed, c, quantized):
    # eqs. 28–29: φ_ρ(λ) ≤ log2(1 + 2^{−λ+ρ}), pixel by pixel; and margin loss ∈ [0, C].
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(2, c, 4, 4, generator=g, dtype=torch.float64) * 4
    if quantized:
        scores = scores.round()
    labels = torch.randint(0, c, (2, 4, 4), generator=g)
    rho = (torch.rand(c, generator=g, dtype=torch.float64) * 3, torch.rand(c, generator=g, dtype=torch.float64))
    ml = margin_loss(scores, labels, rho, "none")
    assert bool((ml <= calibrated_log_loss(scores, labels, rho, "none")).all())
    assert bool((ml >= 0).all()) and bool((ml <= c).all())


def test_calibrated_equals_one_at_margin():
    # φ_ρ(ρ) = 1 (Figure 1): C = 2, one pixel of class 0 with s = (ρ, 0): λ_i0 = ρ and
    # −λ_i1 = ρ, so both terms are log2(1 + 2^0) = 1 for the calibrated loss and φ_ρ(ρ) = 0
    # for the ρ-margin loss.
    rho = 0.8
    scores = torch.tensor([[[rho], [0.0]]], dtype=torch.float64)  # (1, 2, 1)
    labels = torch.tensor([[0]])
    torch.testing.assert_close(calibrated_log_loss(scores, labels, rho, "none"),
                               torch.tensor([[2.0]], dtype=torch.float64))
    torch.testing.assert_close(margin_loss(scores, labels, rho, "none"), torch.tensor([[0.0]], dtype=torch.float64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_rho_limits(dtype):
    scores, labels = random_problem(shape=(2, 4, 5, 5), seed=5, dtype=dtype)
    c = scores.shape[1]
    # margin loss: every φ_ρ(±λ) -> 1, so l_i -> C; 1 − φ_ρ(z) ≤ |z|/ρ bounds the gap.
    lam_max = float((scores.amax(1) - scores.amin(1)).max())
    previous = torch.zeros_like(labels, dtype=dtype)
    for rho in (1.0, 10.0, 1e3, 1e6):
        value = margin_loss(scores, labels, rho, "none")
        assert bool((value >= previous - 1e-6).all())
        assert bool((c - value <= c * lam_max / rho + 1e-6).all())
        previous = value
    torch.testing.assert_close(previous, torch.full_like(previous, float(c)), rtol=0, atol=1e-4)
    # calibrated log-loss: log2(1 + 2^{x}) = x + log2(1 + 2^{−x}), so for ρ ≫ |λ| the loss is
    # C·ρ + (−λ_iy + Σ_{k≠y} λ_ik) up to C·2^{−(ρ−|λ|)}/ln 2, and the gradient is that of the
    # linear form.
    rho = 60.0
    s = scores.clone().requires_grad_()
    value = calibrated_log_loss(s, labels, rho, "none")
    lam = torch.stack([s[:, k] - torch.cat([s[:, :k], s[:, k + 1:]], 1).amax(1) for k in range(c)], 1)
    onehot = F.one_hot(labels, c).movedim(-1, 1).bool()
    linear = c * rho + torch.where(onehot, -lam, lam).sum(1)
    torch.testing.assert_close(value, linear, rtol=1e-6 if dtype == torch.float32 else 1e-12, atol=0)
    (g1,) = torch.autograd.grad(value.sum(), s)
    (g2,) = torch.autograd.grad(linear.sum(), s)
    torch.testing.assert_close(g1, g2, rtol=0, atol=1e-10)


# ----------------------------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("kind", list(LOSSES))
def test_gradcheck(kind, reduction):
    scores, labels = random_problem(shape=(2, 3, 2, 3), seed=6)
    scores.requires_grad_()
    rho = (torch.tensor([0.5, 4.0, 1.0], dtype=torch.float64), torch.tensor([3.0, 0.7, 5.0], dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda s: LOSSES[kind](s, labels, rho, reduction), (scores,))


@pytest.mark.parametrize("per_image", [False, True])
def test_gradcheck_iou_lower_bound(per_image):
    scores, labels = random_problem(shape=(2, 3, 3, 3), seed=7)
    scores.requires_grad_()
    rho = (torch.tensor([2.0, 3.0, 5.0], dtype=torch.float64), 4.0)
    assert torch.autograd.gradcheck(lambda s: iou_lower_bound(s, labels, rho, per_image=per_image), (scores,))


FINITE_CASES = {
    "ties": lambda: torch.zeros(2, 3, 4, 4),
    "huge": lambda: torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 1e4,
    "single_class": lambda: torch.randn(2, 1, 4, 4),
    "two_pixel_ties": lambda: torch.tensor([[[[1.0, 1.0]], [[1.0, -1.0]], [[-1.0, 1.0]]]]),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rho", [0.0, 1e-8, 1.0, 1e6, "pair"])
@pytest.mark.parametrize("case", list(FINITE_CASES))
def test_gradients_finite(case, rho, dtype, device):
    scores = FINITE_CASES[case]().to(device=device, dtype=dtype).requires_grad_()
    c = scores.shape[1]
    labels = torch.randint(0, c, (scores.shape[0], *scores.shape[2:]), generator=torch.Generator().manual_seed(1))
    labels = labels.to(device)
    if rho == "pair":
        rho = (torch.zeros(c), torch.linspace(0, 2, c))
    for fn in (margin_loss, calibrated_log_loss, lambda s, y, r: iou_lower_bound(s, y, r).mean()):
        value = fn(scores, labels, rho)
        (grad,) = torch.autograd.grad(value, scores)
        assert bool(torch.isfinite(value)) and bool(torch.isfinite(grad).all())


def test_single_class_is_zero_loss_and_perfect_iou():
    scores = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.zeros(2, 3, 3, dtype=torch.long)
    for fn in LOSSES.values():
        value = fn(scores, labels, 2.0)
        value.backward()
        assert float(value.detach()) == 0.0
        assert bool((scores.grad == 0).all())
        scores.grad = None
    torch.testing.assert_close(iou_lower_bound(scores, labels, 2.0), torch.ones(1, dtype=torch.float64))
    torch.testing.assert_close(argmax_iou(scores, labels, per_image=True), torch.ones(2, 1, dtype=torch.float64))


# ----------------------------------------------------------------------------------------------
# IoU and its lower bound (eqs. 1, 6–8)
# ----------------------------------------------------------------------------------------------


def test_argmax_iou_by_hand():
    # one image, 1 x 5 pixels, 3 classes; argmax = [0, 0, 1, 1, 0], labels = [0, 1, 1, 1, 0]
    s = torch.tensor([[3.0, 2.0, 0.0, 0.0, 5.0],
                      [1.0, 0.0, 4.0, 2.0, 0.0],
                      [0.0, -1.0, 1.0, 1.0, 0.0]]).view(1, 3, 1, 5)
    y = torch.tensor([[[0, 1, 1, 1, 0]]])
    # class 0: inter {0, 4} = 2, union {0, 1, 4} = 3; class 1: inter {2, 3}, union {1, 2, 3};
    # class 2: neither present nor predicted, 0/0 = 1 (eq. 1 convention)
    torch.testing.assert_close(argmax_iou(s, y), torch.tensor([2 / 3, 2 / 3, 1.0]))
    torch.testing.assert_close(argmax_iou(s, y, per_image=True), torch.tensor([[2 / 3, 2 / 3, 1.0]]))
    # predicted but absent: IoU 0
    torch.testing.assert_close(argmax_iou(s, torch.zeros_like(y)), torch.tensor([3 / 5, 0.0, 1.0]))


def test_iou_lower_bound_at_rho_zero_equals_iou():
    # without ties, φ_0 is the 0-1 loss: L_k0 = FN_k and L_0k = FP_k, so eq. 7 equals eq. 2.
    scores, labels = random_problem(shape=(3, 4, 6, 6), seed=8)
    for per_image in (False, True):
        torch.testing.assert_close(iou_lower_bound(scores, labels, 0.0, per_image=per_image),
                                   argmax_iou(scores, labels, per_image=per_image))


def test_iou_lower_bound_by_hand():
    # C = 2, pixel scores (s0, s1), labels: λ_i0 = s0 − s1, λ_i1 = −λ_i0.
    s = torch.tensor([[2.0, 0.5, -1.0, 0.2]]).view(1, 1, 4)
    scores = torch.cat([s, torch.zeros_like(s)], 1)  # λ_i0 = [2, 0.5, -1, 0.2]
    labels = torch.tensor([[0, 0, 1, 1]])
    rho = 1.0
    # class 0: Y_0 = {0, 1}: φ(2) = 0, φ(0.5) = 0.5 -> L_00' = 0.5; off: φ(−(−1)) = φ(1) = 0,
    # φ(−0.2) = 1 -> L_0k = 1; bound = (2 − 0.5)/(2 + 1) = 0.5
    # class 1: Y_1 = {2, 3}: λ_i1 = [1, −0.2]: φ(1) = 0, φ(−0.2) = 1 -> 1; off: λ_i1 at {0,1} =
    # [−2, −0.5] -> φ(2) = 0, φ(0.5) = 0.5 -> 0.5; bound = (2 − 1)/(2 + 0.5) = 0.4
    torch.testing.assert_close(iou_lower_bound(scores, labels, rho), torch.tensor([0.5, 0.4]))
    # true IoU: argmax = [0, 0, 1, 0]: class 0 = 2/3, class 1 = 1/2
    torch.testing.assert_close(argmax_iou(scores, labels), torch.tensor([2 / 3, 0.5]))


@HYP
@given(
    seed=st.integers(0, 2**31 - 1),
    n_img=st.integers(1, 3),
    c=st.integers(1, 5),
    h=st.integers(1, 5),
    w=st.integers(1, 5),
    quantized=st.booleans(),
    per_image=st.booleans(),
)
def test_iou_lower_bound_holds(seed, n_img, c, h, w, quantized, per_image):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n_img, c, h, w, generator=g, dtype=torch.float64) * 2
    if quantized:  # integer scores: many ties, λ = 0 exactly
        scores = scores.round()
    # few classes present, sometimes one label only, so absent classes appear
    labels = torch.randint(0, max(1, int(torch.randint(1, c + 1, (1,), generator=g))), (n_img, h, w), generator=g)
    zero_mask = torch.randint(0, 2, (c,), generator=g).double()
    rho = (torch.rand(c, generator=g, dtype=torch.float64) * 3 * zero_mask, torch.rand(c, generator=g) * 3)
    bound = iou_lower_bound(scores, labels, rho, per_image=per_image)
    iou = argmax_iou(scores, labels, per_image=per_image)
    assert bound.shape == iou.shape == ((n_img, c) if per_image else (c,))
    assert bool((bound <= iou + 1e-12).all())
    assert bool((bound <= 1).all())
    # eq. 8: mIoU bound = class mean ≤ mIoU
    assert bool((bound.mean(-1) <= iou.mean(-1) + 1e-12).all())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_iou_functions_dtype_device(dtype, device):
    scores, labels = random_problem(shape=(2, 3, 4, 4), seed=9, dtype=dtype, device=device)
    for value in (iou_lower_bound(scores, labels, 0.5), argmax_iou(scores, labels)):
        assert value.dtype == dtype and value.device == scores.device and value.shape == (3,)
    assert iou_lower_bound(scores, labels, 0.5, per_image=True).shape == (2, 3)


def test_iou_two_dim_input():
    # (N, C) with no spatial axes: per_image gives a per-pixel 0/1 IoU
    scores = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    torch.testing.assert_close(argmax_iou(scores, labels), torch.tensor([1 / 3, 0.0]))
    torch.testing.assert_close(argmax_iou(scores, labels, per_image=True),
                               torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]))
    assert margin_loss(scores, labels, 1.0, "none").shape == (3,)


# ----------------------------------------------------------------------------------------------
# optimal margins (Corollary 1.1)
# ----------------------------------------------------------------------------------------------


def test_optimal_margins_by_hand():
    # n = 1000, n = (900, 100), τ = 1, v = 1
    rho_0k, rho_k0 = optimal_margins([900, 100])
    torch.testing.assert_close(rho_0k, torch.tensor([10 / 900, 30 / 100], dtype=torch.float64))
    # μ_0 = 0.9·30 / (100 − 0.9·10) = 27/91; μ_1 = 0.1·10 / (900 − 0.1·30) = 1/897
    torch.testing.assert_close(rho_k0, torch.tensor([27 / 91 * 10 / 900, 1 / 897 * 30 / 100], dtype=torch.float64))
    assert rho_0k.dtype == rho_k0.dtype == torch.float64 and rho_0k.shape == (2,)


def test_optimal_margins_scale_and_v():
    counts = torch.tensor([5000, 300, 20, 700])
    r0, r1 = optimal_margins(counts, tau=1.0, v=2.0)
    t0, t1 = optimal_margins(counts, tau=7.5, v=2.0)
    torch.testing.assert_close(t0, 7.5 * r0)
    torch.testing.assert_close(t1, 7.5 * r1)
    u0, u1 = optimal_margins(counts, tau=1.0, v=0.5)
    torch.testing.assert_close(u0, r0)  # v only enters μ_k
    assert bool((u1 > r1).all())  # smaller v, smaller μ-denominator, larger ρ_k0


@pytest.mark.parametrize("seed", range(4))
def test_optimal_margins_eq23_ratios(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 10**6, size=int(rng.integers(2, 7)))
    rho_0k, _ = optimal_margins(counts, tau=float(rng.uniform(0.1, 10)))
    n = counts.sum()
    for i in range(len(counts)):
        for j in range(len(counts)):
            expected = counts[j] * math.sqrt(n - counts[i]) / (counts[i] * math.sqrt(n - counts[j]))
            assert math.isclose(float(rho_0k[i] / rho_0k[j]), expected, rel_tol=1e-12)


def test_optimal_margins_input_forms():
    ref = optimal_margins([40, 10, 50], tau=2.0, v=0.3)
    for counts in (np.array([40, 10, 50]), torch.tensor([40, 10, 50]), torch.tensor([40.0, 10.0, 50.0]),
                   (40, 10, 50), np.array([40.0, 10.0, 50.0], dtype=np.float32)):
        got = optimal_margins(counts, tau=2.0, v=0.3)
        torch.testing.assert_close(got[0], ref[0])
        torch.testing.assert_close(got[1], ref[1])


@pytest.mark.parametrize("device", DEVICES)
def test_optimal_margins_device(device):
    r0, r1 = optimal_margins(torch.tensor([3, 4, 5], device=device))
    assert r0.device.type == r1.device.type == device


def test_optimal_margins_absent_class():
    counts = torch.tensor([800, 0, 150, 50])
    r0, r1 = optimal_margins(counts, tau=3.0, v=0.5)
    assert bool(torch.isfinite(r0).all() and torch.isfinite(r1).all())
    assert float(r0[1]) == 0.0 and float(r1[1]) == 0.0  # documented choice: no margin
    # the present classes keep the formula with the same n
    n = 1000.0
    for k in (0, 2, 3):
        nk = float(counts[k])
        rho = 3.0 * math.sqrt(n - nk) / nk
        mu = (nk / n) * math.sqrt(nk) / (0.5 * (n - nk) - (nk / n) * math.sqrt(n - nk))
        assert math.isclose(float(r0[k]), rho, rel_tol=1e-12)
        assert math.isclose(float(r1[k]), mu * rho, rel_tol=1e-12)
    # the margins work in the losses, absent class included
    scores, labels = random_problem(shape=(1, 4, 4, 4), seed=10)
    assert bool(torch.isfinite(calibrated_log_loss(scores, labels, (r0, r1))))


@pytest.mark.parametrize("counts", [[1234], [0, 500, 0], [0.0, 0.0]])
def test_optimal_margins_single_or_no_class(counts):
    # one class only (C = 1 or all others absent): n − n_k = 0 gives ρ_0k = 0, μ_k's denominator
    # is 0 and ρ_k0 = μ_k·ρ_0k is taken as 0; no warning (v is not what makes it degenerate).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r0, r1 = optimal_margins(counts, tau=5.0)
    assert bool((r0 == 0).all()) and bool((r1 == 0).all())


@pytest.mark.parametrize("c", [2, 3, 7])
def test_optimal_margins_all_counts_equal(c):
    nk, v, tau = 2500, 0.2, 4.0
    r0, r1 = optimal_margins([nk] * c, tau=tau, v=v)
    n = nk * c
    rho = tau * math.sqrt(n - nk) / nk
    mu = (1 / c) * math.sqrt(nk) / (v * (n - nk) - (1 / c) * math.sqrt(n - nk))
    torch.testing.assert_close(r0, torch.full((c,), rho, dtype=torch.float64))
    torch.testing.assert_close(r1, torch.full((c,), mu * rho, dtype=torch.float64))


def test_optimal_margins_nonpositive_denominator_falls_back():
    # counts (3, 0.5) as soft counts: n = 3.5; v = 0.01 gives v(n − n_k) − p_k√(n − n_k) < 0
    with pytest.warns(RuntimeWarning, match=r"not positive for classes \[0, 1\].*mu_k = 1"):
        r0, r1 = optimal_margins([3.0, 0.5], tau=1.0, v=0.01)
    torch.testing.assert_close(r1, r0)
    torch.testing.assert_close(r0, torch.tensor([math.sqrt(0.5) / 3, math.sqrt(3) / 0.5], dtype=torch.float64))
    # only the offending class falls back
    with pytest.warns(RuntimeWarning, match=r"classes \[1\]"):
        r0, r1 = optimal_margins([1.0, 1000.0, 20.0], v=0.02)
    assert float(r1[1]) == float(r0[1]) and float(r1[0]) != float(r0[0])


def corollary_mu(counts, v):
    n = counts.sum()
    p = counts / n
    return p * np.sqrt(counts) / (v * (n - counts) - p * np.sqrt(n - counts))


def eps_eq22(counts, rho_0k, mu, four_c_f):
    """ε of Theorem 1, eq. 22, with F fixed (written out here from the paper)."""
    n = counts.sum()
    c = len(counts)
    num = np.sqrt(n - counts) + np.sqrt(counts) / mu
    den = counts / four_c_f * rho_0k - np.sqrt(n - counts)
    return float(np.sum(num / den) / c)


@pytest.mark.parametrize("seed", range(4))
def test_optimal_margins_minimize_theorem1_bound(seed):
    """Corollary 1.1: with μ_k fixed by v and Σ_k ρ_0k fixed, ε (eq. 22) is minimal at eq. 23.

    ε is minimized numerically over ρ_0 on {Σ ρ_0k = S, ρ_0k > 4cF√(n−n_k)/n_k} (where each
    term of eq. 22 is positive) and compared with ``optimal_margins`` scaled to the same sum.
    """
    rng = np.random.default_rng(100 + seed)
    c = int(rng.integers(2, 6))
    counts = rng.integers(50, 20_000, size=c).astype(float)
    counts[0] *= 40  # an imbalanced "background"
    v = float(rng.uniform(0.05, 5.0))
    c_theta = float(rng.uniform(0.01, 2.0))  # F = C(Θ) (σ left out, as the corollary holds F fixed)
    g = 4 * c * c_theta
    mu = corollary_mu(counts, v)
    n = counts.sum()
    w = np.sqrt(n - counts) / counts  # feasibility: ρ_0k > g·w_k
    total = 3.0 * g * w.sum()  # the fixed Σ_k ρ_0k

    def objective(z):  # ρ = g·w + (S − gΣw)·softmax(z): the constraint set, unconstrained
        e = np.exp(z - z.max())
        return eps_eq22(counts, g * w + (total - g * w.sum()) * e / e.sum(), mu, g)

    res = minimize(objective, np.zeros(c), method="BFGS", options={"gtol": 1e-12, "maxiter": 10_000})
    e = np.exp(res.x - res.x.max())
    numeric = g * w + (total - g * w.sum()) * e / e.sum()

    tau = total / w.sum()  # ρ_0k = τ·w_k sums to S
    rho_0k, rho_k0 = optimal_margins(counts, tau=tau, v=v)
    np.testing.assert_allclose(rho_0k.numpy(), numeric, rtol=1e-4)
    np.testing.assert_allclose((rho_k0 / rho_0k).numpy(), mu, rtol=1e-12)
    closed = eps_eq22(counts, rho_0k.numpy(), mu, g)
    assert closed <= res.fun * (1 + 1e-12)
    # and the minimum equals the Cauchy–Schwarz bound of eq. 26 with r = n·v
    r = n * v
    eq26 = r / c * w.sum() ** 2 / (total / g - w.sum())
    assert math.isclose(closed, eq26, rel_tol=1e-10)
    # margin_bound_terms computes the same ε from the pair (eqs. 20, 22)
    bound = margin_bound_terms(counts, (rho_0k, rho_k0), complexity=c_theta)
    assert math.isclose(float(bound.eps), closed, rel_tol=1e-10)


def test_corollary_mu_gives_eq24_numerator():
    # proof of Corollary 1.1: with μ_k of the corollary, √(n−n_k) + √n_k/μ_k = r(n − n_k)/n_k, r = n·v
    counts = np.array([9000.0, 700.0, 300.0])
    v = 0.7
    r0, r1 = optimal_margins(counts, v=v)
    mu = (r1 / r0).numpy()
    n = counts.sum()
    np.testing.assert_allclose(np.sqrt(n - counts) + np.sqrt(counts) / mu, n * v * (n - counts) / counts, rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# Theorem 1 terms
# ----------------------------------------------------------------------------------------------


def test_margin_bound_terms_match_paper_formulas():
    counts = np.array([90_000.0, 7_000.0, 3_000.0])
    r0 = np.array([5.0, 80.0, 200.0])
    r1 = np.array([2.0, 40.0, 150.0])
    comp, m, eta = 0.3, 4, 0.05  # small m so that every term of eq. 20 is positive (non-vacuous)
    b = margin_bound_terms(counts, (torch.tensor(r0), torch.tensor(r1)), complexity=comp,
                           pixels_per_image=m, eta=eta)
    assert isinstance(b, MarginBound)
    c, n = 3, counts.sum()
    sigma = max(r0.max(), r1.max()) / (4 * c) * math.sqrt(2 * m * math.log(2 * c / eta))  # σ(1/η), Theorem 1
    f = comp + sigma
    assert math.isclose(float(b.sigma), sigma, rel_tol=1e-12) and math.isclose(float(b.F), f, rel_tol=1e-12)
    np.testing.assert_allclose(b.eps_k0.numpy(), np.sqrt(counts) / n * 4 * c * f / r1, rtol=1e-12)  # eq. 18
    np.testing.assert_allclose(b.eps_0k.numpy(), np.sqrt(n - counts) / n * 4 * c * f / r0, rtol=1e-12)
    mu = r1 / r0
    eq20 = (np.sqrt(n - counts) + np.sqrt(counts) / mu) / (counts / (4 * c * f) * r0 - np.sqrt(n - counts))
    assert bool((eq20 > 0).all())
    np.testing.assert_allclose(b.eps_k.numpy(), eq20, rtol=1e-10)
    assert math.isclose(float(b.eps), eq20.mean(), rel_tol=1e-10)  # eq. 22


def test_margin_bound_terms_vacuous_cases():
    counts = [1000, 0, 10]
    b = margin_bound_terms(counts, optimal_margins(counts, tau=50.0), complexity=0.1)
    assert math.isinf(float(b.eps_k[1])) and math.isinf(float(b.eps))  # absent class: vacuous
    assert float(b.eps_k0[1]) == 0.0  # no pixel of class 1, no false-negative term
    # zero margins on a non-empty side: +inf, no NaN
    b = margin_bound_terms([5, 5], 0.0, complexity=1.0)
    assert bool(torch.isinf(b.eps_k).all()) and not bool(torch.isnan(b.eps_k0).any())
    # tiny margins: denominator of eq. 20 negative -> inf rather than a negative "bound"
    b = margin_bound_terms([500, 500], 1e-3, complexity=1.0)
    assert bool(torch.isinf(b.eps_k).all())


def test_optimal_margins_beat_other_margins_with_same_sum():
    counts = np.array([50_000.0, 4_000.0, 800.0, 200.0])
    comp = 0.05
    r0, r1 = optimal_margins(counts, tau=400.0, v=1.0)
    best = float(margin_bound_terms(counts, (r0, r1), complexity=comp).eps)
    assert math.isfinite(best)
    mu = r1 / r0
    rng = np.random.default_rng(0)
    for _ in range(50):
        other = r0 * torch.as_tensor(np.exp(rng.normal(size=4) * 0.1))
        other = other * r0.sum() / other.sum()  # same Σ_k ρ_0k, as the corollary assumes
        value = float(margin_bound_terms(counts, (other, mu * other), complexity=comp).eps)
        assert value >= best * (1 - 1e-12)


# ----------------------------------------------------------------------------------------------
# modules
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", [None, "sigmoid", "softmax", "tanh"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("cls,fn", [(MarginLoss, margin_loss), (CalibratedLogLoss, calibrated_log_loss)])
def test_module_equals_functional(cls, fn, reduction, activation, device):
    scores, labels = random_problem(shape=(2, 3, 4, 4), seed=11, dtype=torch.float32, device=device)
    rho = optimal_margins([500, 300, 200], tau=30.0)
    module = cls(rho, reduction=reduction, activation=activation).to(device)
    act = {None: lambda x: x, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
           "softmax": lambda x: torch.softmax(x, 1)}[activation]
    torch.testing.assert_close(module(scores, labels), fn(act(scores), labels, rho, reduction))


def test_module_buffers_and_from_counts():
    module = CalibratedLogLoss.from_counts([600, 300, 100], tau=10.0, v=0.5)
    r0, r1 = optimal_margins([600, 300, 100], tau=10.0, v=0.5)
    torch.testing.assert_close(module.rho_0k, r0)
    torch.testing.assert_close(module.rho_k0, r1)
    assert set(module.state_dict()) == {"rho_0k", "rho_k0"}
    module = module.to(torch.float32)
    assert module.rho_0k.dtype == torch.float32
    scalar = MarginLoss(0.5)
    assert scalar.rho_0k.shape == () and float(scalar.rho_k0) == 0.5
    # the module keeps a copy: changing the caller's tensor later does not change the loss
    t = torch.tensor([1.0, 2.0])
    m = MarginLoss(t)
    t += 1
    assert m.rho_0k.tolist() == [1.0, 2.0]
    assert "reduction='mean'" in repr(MarginLoss(1.0))


@pytest.mark.parametrize("device", DEVICES)
def test_module_to_device(device):
    module = MarginLoss((torch.tensor([0.1, 0.2]), 0.3)).to(device)
    assert module.rho_0k.device.type == device
    scores, labels = random_problem(shape=(1, 2, 3, 3), device=device)
    assert module(scores, labels).device.type == device


# ----------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------

S, Y = random_problem(shape=(2, 3, 4, 4), seed=12, dtype=torch.float32)


@pytest.mark.parametrize("fn", [margin_loss, calibrated_log_loss,
                                lambda s, y, r, *a: iou_lower_bound(s, y, r),
                                lambda s, y, r, *a: argmax_iou(s, y)])
@pytest.mark.parametrize("scores,labels,rho,exc,match", [
    (S.long(), Y, 1.0, TypeError, r"scores: expected a floating-point tensor"),
    (S.numpy(), Y, 1.0, TypeError, r"scores: expected a torch.Tensor"),
    (S[0, 0, 0], Y, 1.0, ValueError, r"scores: expected shape \(N, C, \*spatial\)"),
    (S, Y.float(), 1.0, TypeError, r"labels: expected an integer tensor"),
    (S, Y.bool(), 1.0, TypeError, r"labels: expected an integer tensor"),
    (S, Y[:, :3], 1.0, ValueError, r"labels: expected shape \(N, \*spatial\) = \(2, 4, 4\)"),
    (S, Y[:, None], 1.0, ValueError, r"labels: expected shape \(N, \*spatial\)"),
    (S, Y + 1, 1.0, ValueError, r"labels: expected values in \[0, 2\], got values in \[1, 3\]"),
    (S, Y - 1, 1.0, ValueError, r"labels: expected values in \[0, 2\], got values in \[-1, 1\]"),
    (S.where(S > 0, torch.tensor(float("nan"))), Y, 1.0, ValueError, r"scores: expected finite values"),
    (S.where(S > 0, torch.tensor(float("inf"))), Y, 1.0, ValueError, r"scores: expected finite values"),
    (S.where(S > 0, torch.tensor(-float("inf"))), Y, 1.0, ValueError, r"scores: expected finite values"),
    (S[:0], Y[:0], 1.0, ValueError, r"scores: expected a non-empty tensor"),
])
def test_input_errors(fn, scores, labels, rho, exc, match):
    with pytest.raises(exc, match=match):
        fn(scores, labels, rho)


@pytest.mark.parametrize("fn", [margin_loss, calibrated_log_loss, iou_lower_bound])
@pytest.mark.parametrize("rho,exc,match", [
    (-0.5, ValueError, r"rho: expected a finite margin >= 0, got -0.5"),
    (float("nan"), ValueError, r"rho: expected a finite margin >= 0"),
    (float("inf"), ValueError, r"rho: expected a finite margin >= 0"),
    (torch.tensor([1.0, -1.0, 0.0]), ValueError, r"rho: expected margins >= 0, got minimum -1"),
    (torch.tensor([1.0, float("nan"), 0.0]), ValueError, r"rho: expected finite values"),
    (torch.ones(4), ValueError, r"rho\[0\] \(rho_0k\): expected a scalar or C=3 per-class margins, got shape \(4,\)"),
    ((1.0, torch.ones(2)), ValueError, r"rho\[1\] \(rho_k0\): expected a scalar or C=3 per-class margins"),
    (torch.ones(3, 1), ValueError, r"rho: expected a scalar or a \(C,\) tensor of margins, got shape \(3, 1\)"),
    ([1.0, 2.0, 3.0], ValueError,
     r"rho: expected a number, a \(C,\) tensor or a pair \(rho_0k, rho_k0\), got a list of length 3"),
    ((1.0, -2.0), ValueError, r"rho\[1\] \(rho_k0\): expected a finite margin >= 0, got -2.0"),
    ("1.0", TypeError, r"rho: expected a non-negative number, a \(C,\) tensor or a pair"),
    (True, TypeError, r"rho: expected a non-negative number or a \(C,\) tensor, got bool"),
    (torch.ones(3, dtype=torch.bool), TypeError, r"rho: expected a real-valued tensor"),
])
def test_rho_errors(fn, rho, exc, match):
    with pytest.raises(exc, match=match):
        fn(S, Y, rho)


def test_reduction_error():
    with pytest.raises(ValueError, match=r"reduction: expected one of \('mean', 'sum', 'none'\), got 'avg'"):
        margin_loss(S, Y, 1.0, reduction="avg")
    with pytest.raises(ValueError, match=r"reduction: expected one of"):
        CalibratedLogLoss(1.0, reduction="batch")
    with pytest.raises(ValueError, match=r"activation: expected one of \(None, 'sigmoid', 'softmax', 'tanh'\)"):
        MarginLoss(1.0, activation="relu")
    with pytest.raises(TypeError, match=r"scores: expected a floating-point tensor"):
        MarginLoss(1.0, activation="softmax")(S.long(), Y)


@pytest.mark.parametrize("counts,kwargs,exc,match", [
    ([10, -1, 5], {}, ValueError, r"class_counts: expected non-negative counts, got minimum -1"),
    ([10, float("nan")], {}, ValueError, r"class_counts: expected finite values"),
    ([[1, 2], [3, 4]], {}, ValueError, r"class_counts: expected a non-empty 1-D \(C,\) vector, got shape \(2, 2\)"),
    ([], {}, ValueError, r"class_counts: expected a non-empty 1-D \(C,\) vector, got shape \(0,\)"),
    (torch.tensor([True, False]), {}, TypeError, r"class_counts: expected real-valued counts"),
    ("abc", {}, TypeError, r"class_counts: expected a 1-D tensor, array or sequence"),
    ([1, "a"], {}, TypeError, r"class_counts: expected a 1-D sequence of numbers"),
    ([10, 5], {"tau": 0.0}, ValueError, r"tau: expected a finite number > 0, got 0.0"),
    ([10, 5], {"tau": -2.0}, ValueError, r"tau: expected a finite number > 0, got -2.0"),
    ([10, 5], {"tau": float("inf")}, ValueError, r"tau: expected a finite number > 0"),
    ([10, 5], {"tau": "1"}, TypeError, r"tau: expected a real number, got str"),
    ([10, 5], {"v": 0}, ValueError, r"v: expected a finite number > 0, got 0"),
    ([10, 5], {"v": -1.0}, ValueError, r"v: expected a finite number > 0"),
])
def test_optimal_margins_errors(counts, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        optimal_margins(counts, **kwargs)


@pytest.mark.parametrize("counts,rho,kwargs,exc,match", [
    ([10, 5, 5], torch.ones(2), {"complexity": 1.0}, ValueError,
     r"rho\[0\] \(rho_0k\): expected a scalar or C=3 per-class margins, got shape \(2,\)"),
    ([10, 5], (1.0, torch.ones(3)), {"complexity": 1.0}, ValueError, r"rho\[1\] \(rho_k0\): expected a scalar or C=2"),
    ([0, 0], 1.0, {"complexity": 1.0}, ValueError, r"class_counts: expected at least one pixel \(sum > 0\)"),
    ([10, -5], 1.0, {"complexity": 1.0}, ValueError, r"class_counts: expected non-negative counts"),
    ([10, 5], 1.0, {"complexity": 0.0}, ValueError, r"complexity: expected a finite number > 0"),
    ([10, 5], 1.0, {"complexity": 1.0, "eta": 0.1}, ValueError, r"pixels_per_image and eta: expected both or neither"),
    ([10, 5], 1.0, {"complexity": 1.0, "pixels_per_image": 10}, ValueError, r"pixels_per_image and eta"),
    ([10, 5], 1.0, {"complexity": 1.0, "pixels_per_image": 10, "eta": 1.0}, ValueError,
     r"eta: expected a probability in \(0, 1\), got 1.0"),
    ([10, 5], 1.0, {"complexity": 1.0, "pixels_per_image": 10, "eta": 0.0}, ValueError,
     r"eta: expected a finite number > 0"),
    ([10, 5], 1.0, {"complexity": 1.0, "pixels_per_image": 0, "eta": 0.1}, ValueError,
     r"pixels_per_image: expected a positive integer, got 0"),
    ([10, 5], 1.0, {"complexity": 1.0, "pixels_per_image": 2.5, "eta": 0.1}, ValueError,
     r"pixels_per_image: expected a positive integer, got 2.5"),
])
def test_margin_bound_terms_errors(counts, rho, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        margin_bound_terms(counts, rho, **kwargs)


def test_margin_bound_terms_requires_complexity():
    with pytest.raises(TypeError, match="complexity"):
        margin_bound_terms([10, 5], 1.0)  # C(Θ) is symbolic: the caller must choose it


def test_reversed_numpy_views_accepted():
    """NumPy views with negative strides (``a[::-1]``) are accepted as counts and as margins."""
    counts = np.array([100.0, 900.0])[::-1]
    rho_0k, rho_k0 = optimal_margins(counts, tau=1.0)
    torch.testing.assert_close(rho_0k, optimal_margins(np.array([900.0, 100.0]), tau=1.0)[0])
    scores = torch.randn(1, 2, 3, 3, dtype=torch.float64)
    labels = torch.randint(0, 2, (1, 3, 3))
    torch.testing.assert_close(margin_loss(scores, labels, np.array([0.5, 1.0])[::-1]),
                               margin_loss(scores, labels, torch.tensor([1.0, 0.5], dtype=torch.float64)))
