"""Tests of :mod:`softseg.losses.sauna` against Dang, Nguyen & Tiulpin, "Image-level Regression
for Uncertainty-aware Retinal Image Segmentation" (SAUNA), Sects. 3.3-3.4.

Expected values are derived by hand in the test (comment next to the number) or come from an
independent float64 transcription of eqs. (7)-(9) as printed (:func:`paper_formulas`).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softseg.losses.sauna import (
    FocalL1Loss,
    GeneralizedJaccardMetricLoss,
    StableFocalL1Loss,
    focal_l1_loss,
    generalized_jml,
    stable_focal_l1_loss,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-12)}
PROPS = settings(deadline=None, max_examples=80)


def paper_formulas(f: torch.Tensor, y: torch.Tensor, gamma: float = 1.0) -> dict[str, torch.Tensor]:
    """Eqs. (7), (8), (9) verbatim in float64: GJML per (N, C); the Focal-L1s per pixel."""
    f, y = f.double(), y.double()
    ff, yy = f.flatten(2), y.flatten(2)
    s, d = (ff + yy).abs().sum(-1), (ff - yy).abs().sum(-1)
    gjml = torch.where(s + d > 0, 1 - (s - d) / (s + d), torch.zeros_like(s))   # eq. (7); 0/0 := 0
    e = (y - f).abs()
    focal_num = e * e ** (gamma * (y * f >= 0).double())                       # |y-f| |y-f|^(γ I)
    den = torch.maximum(y.abs(), f.abs())
    focal = torch.where(den > 0, focal_num / den, torch.zeros_like(den))       # eq. (8)
    return {"gjml": gjml, "focal": focal, "stable": focal_num}                 # eq. (9)


def rand_pair(shape, dtype=torch.float64, device="cpu", seed=0):
    """f, y uniform in [-1, 1] with exact -1, 0, 1 entries (ends of the range and the kink)."""
    g = torch.Generator().manual_seed(seed)
    f = 2 * torch.rand(shape, generator=g, dtype=torch.float64) - 1
    y = 2 * torch.rand(shape, generator=g, dtype=torch.float64) - 1
    f[..., 0], y[..., 0] = -1.0, 1.0
    f[..., 1], y[..., 1] = 1.0, 1.0
    f[..., 2], y[..., 2] = 0.0, 0.0
    f[..., 3] = 0.0
    return f.to(device, dtype), y.to(device, dtype)


# --------------------------------------------------------------------------- hypothesis

CUBE = st.one_of(st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0]), st.floats(-1.0, 1.0))
# without magnitudes in (0, 1e-6), whose powers |y - f|^(1 + gamma) can underflow to 0
CUBE_NORMAL = st.one_of(st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0]), st.floats(1e-6, 1.0), st.floats(-1.0, -1e-6))


@st.composite
def tensors(draw, k: int = 2, elements=CUBE):
    """``k`` float64 tensors of one shape (N, C, p) with entries in [-1, 1]."""
    shape = draw(st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 8)))
    return [torch.from_numpy(draw(hnp.arrays(np.float64, shape, elements=elements))) for _ in range(k)]


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_matches_paper_formulas(gamma, dtype, device):
    f, y = rand_pair((2, 3, 5, 4), dtype, device)
    ref = paper_formulas(f, y, gamma)
    got = {
        "gjml": generalized_jml(f, y, reduction="none"),
        "focal": focal_l1_loss(f, y, gamma, reduction="none"),
        "stable": stable_focal_l1_loss(f, y, gamma, reduction="none"),
    }
    assert got["gjml"].shape == (2, 3) and got["focal"].shape == f.shape
    for name, value in got.items():
        assert value.dtype == dtype and value.device.type == device
        torch.testing.assert_close(value.double(), ref[name], **TOL[dtype])


def test_hand_derived_values():
    """f = (0.5, -0.5), y = (1, 0.5), gamma = 1, computed by hand.

    GJML: ||f+y|| = 1.5 + 0 = 1.5, ||f-y|| = 0.5 + 1 = 1.5  ->  1 - 0 / 3 = 1.
    Focal-L1: pixel 1 (yf >= 0) 0.5^2 / max(1, 0.5) = 0.25; pixel 2 (yf < 0) 1 / 0.5 = 2.
    Stable: 0.25 and 1.
    """
    f = torch.tensor([[[0.5, -0.5]]], dtype=torch.float64)
    y = torch.tensor([[[1.0, 0.5]]], dtype=torch.float64)
    assert generalized_jml(f, y).item() == pytest.approx(1.0)
    torch.testing.assert_close(focal_l1_loss(f, y, reduction="none"), torch.tensor([[[0.25, 2.0]]], dtype=torch.float64))
    torch.testing.assert_close(stable_focal_l1_loss(f, y, reduction="none"), torch.tensor([[[0.25, 1.0]]], dtype=torch.float64))
    assert focal_l1_loss(f, y).item() == pytest.approx(1.125)
    assert stable_focal_l1_loss(f, y, reduction="sum").item() == pytest.approx(1.25)
    # gamma = 2 on pixel 1: 0.5^3 / 1
    assert focal_l1_loss(f, y, 2.0, reduction="none")[0, 0, 0].item() == pytest.approx(0.125)


def test_gjml_hand_derived_signed():
    """f = (0.5, -0.5), y = (1, -0.5): D = 0.5, union sum max(|f|,|y|) = 1.5 -> 1/3.

    With eps = 1: 1 - (0.5 * (S - D) + 1) / (0.5 * (S + D) + 1) with S = 2.5: 1 - 2 / 2.5 = 0.2.
    """
    f = torch.tensor([[[0.5, -0.5]]], dtype=torch.float64)
    y = torch.tensor([[[1.0, -0.5]]], dtype=torch.float64)
    assert generalized_jml(f, y).item() == pytest.approx(1 / 3)
    assert generalized_jml(f, y, eps=1.0).item() == pytest.approx(0.2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gjml_ends_of_range(dtype):
    """f = y -> 0; f = -y != 0 -> 2 (D = 2 sum|y|, union = sum|y|); f = y = 0 -> 0 (0/0 := 0)."""
    y = torch.tensor([[[1.0, -1.0, 0.25, 0.0]]], dtype=dtype)
    assert generalized_jml(y, y).item() == 0.0
    assert generalized_jml(-y, y).item() == pytest.approx(2.0)
    zero = torch.zeros(2, 3, 4, dtype=dtype)
    torch.testing.assert_close(generalized_jml(zero, zero, reduction="none"), torch.zeros(2, 3, dtype=dtype))
    ones = torch.ones(1, 1, 4, dtype=dtype)
    assert generalized_jml(ones, -ones).item() == pytest.approx(2.0)
    assert generalized_jml(ones, zero[:1, :1]).item() == pytest.approx(1.0)   # D = 4, union = 4


def test_gjml_absent_class_is_per_class():
    """An empty class (f = y = 0) contributes 0 to ``none`` and does not disturb the other."""
    f = torch.zeros(1, 2, 3, dtype=torch.float64)
    y = torch.zeros(1, 2, 3, dtype=torch.float64)
    f[0, 1] = torch.tensor([1.0, -1.0, 0.5])
    y[0, 1] = torch.tensor([1.0, 1.0, 0.5])      # D = 2, union = 1 + 1 + 0.5
    out = generalized_jml(f, y, reduction="none")
    torch.testing.assert_close(out, torch.tensor([[0.0, 2 / 2.5]], dtype=torch.float64))
    assert generalized_jml(f, y).item() == pytest.approx(0.4)
    assert generalized_jml(f, y, reduction="sum").item() == pytest.approx(0.8)


# --------------------------------------------------------------------------- Proposition 1


@PROPS
@given(tensors(2))
def test_gjml_reflexivity_positivity_symmetry(pair):
    """Prop. 1 (i)-(iii): L(a, b) = 0 iff a = b, L >= 0, L(a, b) = L(b, a); and L <= 2."""
    a, b = pair
    lab = generalized_jml(a, b, reduction="none")
    assert (generalized_jml(a, a, reduction="none") == 0).all()
    assert (lab >= 0).all() and (lab <= 2).all()
    torch.testing.assert_close(lab, generalized_jml(b, a, reduction="none"), rtol=0, atol=1e-15)
    differ = (a != b).flatten(2).any(-1)
    assert ((lab > 0) == differ).all()


@PROPS
@given(tensors(3))
def test_gjml_triangle_inequality(triple):
    """Not part of Prop. 1 (the paper only claims a semi-metric), but holds on [-1, 1]^D in every
    example tried (a Nelder-Mead search for violations found none beyond 4e-16 either)."""
    a, b, c = triple
    lac = generalized_jml(a, c, reduction="none")
    lab, lbc = generalized_jml(a, b, reduction="none"), generalized_jml(b, c, reduction="none")
    assert (lac <= lab + lbc + 1e-12).all()


@PROPS
@given(tensors(2, CUBE_NORMAL))
def test_gjml_equals_jml_on_unit_cube(pair):
    """On [0, 1] GJML is Wang & Blaschko's JML (SAUNA eq. 6 = eq. 7), i.e. 1 - sum(min)/sum(max),
    and agrees with JML1 of softseg.losses.dice, eps included.

    Entries are 0 or of magnitude >= 1e-6: below 16 * finfo.tiny of total mass the documented
    safe denominator (not the exact ratio) defines the value, e.g. a = 0, b = 2.2e-308 gives
    0.0625 instead of 1; empty pairs are tested separately."""
    from softseg.losses.dice import jaccard_metric_loss

    a, b = pair[0].abs(), pair[1].abs()
    mins, maxs = torch.minimum(a, b).flatten(2).sum(-1), torch.maximum(a, b).flatten(2).sum(-1)
    expected = torch.where(maxs > 0, 1 - mins / torch.where(maxs > 0, maxs, 1), torch.zeros_like(maxs))
    got = generalized_jml(a, b, reduction="none")
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    for eps in (0.0, 0.5):
        torch.testing.assert_close(generalized_jml(a, b, eps, reduction="none"),
                                   jaccard_metric_loss(a, b, 1, eps, reduction="none"), rtol=1e-12, atol=1e-12)


def test_gjml_hard_labels_is_one_minus_iou():
    """Hard {0, 1} labels: |A ∩ B| = 2, |A ∪ B| = 4 -> 1 - 2/4."""
    a = torch.tensor([[[1.0, 1.0, 1.0, 0.0, 0.0]]])
    b = torch.tensor([[[0.0, 1.0, 1.0, 1.0, 0.0]]])
    assert generalized_jml(a, b).item() == pytest.approx(0.5)


# --------------------------------------------------------------------------- Focal-L1, Props. 2-3


def pixel_curve(loss, x: torch.Tensor, y0: float, gamma: float) -> torch.Tensor:
    return loss(x, torch.full_like(x, y0), gamma, reduction="none")


def strict_local_minima(values: torch.Tensor, x: torch.Tensor) -> list[float]:
    """Grid points strictly below their neighbours (one neighbour at the ends of [-1, 1])."""
    v = values
    left = torch.cat([torch.tensor([math.inf], dtype=v.dtype), v[:-1]])
    right = torch.cat([v[1:], torch.tensor([math.inf], dtype=v.dtype)])
    return x[(v < left) & (v < right)].tolist()


GRID = torch.linspace(-1, 1, 4001, dtype=torch.float64)     # step 5e-4, contains every k/20


@pytest.mark.parametrize("y0", [-0.75, -0.5, -0.25, 0.25, 0.5, 0.75])
@pytest.mark.parametrize("gamma", [1.0, 2.0])
def test_focal_l1_has_spurious_local_minimum(y0, gamma):
    """Sect. 3.4 / Fig. 4: for a soft y0 not in {-1, 1}, Focal-L1 has two local minima: f = y0
    and, spuriously, f = -sign(y0). Hand derivation (y0 > 0): on [-1, -y0] the loss is
    (y0 - f) / (-f) = 1 + y0 / (-f), increasing in f, so f = -1 is a strict local minimum with
    value 1 + y0. Stable Focal-L1 has only f = y0 there."""
    minima = strict_local_minima(pixel_curve(focal_l1_loss, GRID, y0, gamma), GRID)
    assert minima == pytest.approx(sorted([y0, -math.copysign(1.0, y0)]))
    end = torch.tensor([-math.copysign(1.0, y0)], dtype=torch.float64)
    assert pixel_curve(focal_l1_loss, end, y0, gamma).item() == pytest.approx(1 + abs(y0))
    assert strict_local_minima(pixel_curve(stable_focal_l1_loss, GRID, y0, gamma), GRID) == pytest.approx([y0])


@pytest.mark.parametrize("y0", [-1.0, 0.0, 1.0])
def test_focal_l1_hard_or_zero_targets_have_one_minimum(y0):
    """y0 in {-1, 1} (and 0, where the loss is |f|^gamma): Focal-L1's only local minimum is y0."""
    assert strict_local_minima(pixel_curve(focal_l1_loss, GRID, y0, 1.0), GRID) == pytest.approx([y0])


def test_gradient_descent_gets_stuck_only_with_focal_l1():
    """Projected gradient descent on one pixel, y0 = 0.5, started at f = -0.9: Focal-L1 runs into
    the spurious minimum f = -1; Stable Focal-L1 crosses 0 and converges to y0."""
    y = torch.tensor([0.5], dtype=torch.float64)
    ends = {}
    for name, loss in (("focal", focal_l1_loss), ("stable", stable_focal_l1_loss)):
        f = torch.tensor([-0.9], dtype=torch.float64, requires_grad=True)
        for _ in range(2000):
            (g,) = torch.autograd.grad(loss(f, y), f)
            with torch.no_grad():
                f -= 0.01 * g
                f.clamp_(-1.0, 1.0)
        ends[name] = f.item()
    assert ends["focal"] == -1.0
    assert ends["stable"] == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("gamma", [1.0, 1.5, 2.0, 3.0])
def test_proposition_2_unique_strict_minimum(gamma):
    """Prop. 2 (gamma >= 1): for every y0 on a grid, l(x, y0) = 0 at x = y0 only and x = y0 is
    the only strict local minimum on a dense grid of [-1, 1]."""
    for y0 in GRID[::100].tolist():             # 41 targets, exact members of the grid
        values = pixel_curve(stable_focal_l1_loss, GRID, y0, gamma)
        at = GRID == y0
        assert values[at].item() == 0.0
        assert (values[~at] > 0).all()
        assert strict_local_minima(values, GRID) == [y0]


@PROPS
@given(tensors(2), st.floats(0.1, 4.0))
def test_proposition_3_stable_is_lower_bound(pair, gamma):
    """Prop. 3: stable Focal-L1 <= Focal-L1, pixel by pixel (max(|y|, |f|) <= 1)."""
    f, y = pair
    assert (stable_focal_l1_loss(f, y, gamma, reduction="none") <= focal_l1_loss(f, y, gamma, reduction="none")).all()


@PROPS
@given(tensors(2, CUBE_NORMAL), st.floats(0.1, 4.0))
def test_focal_losses_zero_iff_equal(pair, gamma):
    f, y = pair
    for loss in (focal_l1_loss, stable_focal_l1_loss):
        v = loss(f, y, gamma, reduction="none")
        assert ((v == 0) == (f == y)).all()


# --------------------------------------------------------------------------- gradients


SPECIAL = [(-1.0, 0.5), (1.0, 0.5), (1.0, -1.0), (-1.0, -1.0), (0.5, 0.5), (0.0, 0.0), (0.0, 0.5),
           (0.5, 0.0), (-0.3, 0.3), (1e-40, 0.0), (1e-300, -1e-300)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_gradients_finite_at_special_points(gamma, dtype, device):
    """f = ±1, f = y, f = y = 0, f = -y and (sub)normal tiny values: finite gradients."""
    f = torch.tensor([[[a for a, _ in SPECIAL]]], dtype=dtype, device=device, requires_grad=True)
    y = torch.tensor([[[b for _, b in SPECIAL]]], dtype=dtype, device=device, requires_grad=True)
    for loss in (lambda a, b: generalized_jml(a, b), lambda a, b: focal_l1_loss(a, b, gamma),
                 lambda a, b: stable_focal_l1_loss(a, b, gamma)):
        gf, gy = torch.autograd.grad(loss(f, y), (f, y))
        assert torch.isfinite(gf).all() and torch.isfinite(gy).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_finite_on_empty_pairs(dtype):
    """All-zero f and y (absent class): loss 0, gradients 0."""
    f = torch.zeros(2, 2, 3, 3, dtype=dtype, requires_grad=True)
    y = torch.zeros(2, 2, 3, 3, dtype=dtype)
    for loss in (generalized_jml, focal_l1_loss, stable_focal_l1_loss):
        value = loss(f, y)
        (g,) = torch.autograd.grad(value, f)
        assert value.item() == 0.0 and (g == 0).all()


def test_gradient_zero_at_f_equals_y():
    f = torch.tensor([[[0.3, -0.7, 1.0, -1.0]]], dtype=torch.float64, requires_grad=True)
    for loss in (generalized_jml, focal_l1_loss, stable_focal_l1_loss):
        (g,) = torch.autograd.grad(loss(f, f.detach()), f)
        assert (g == 0).all()


def interior_pair(seed=0):
    """f, y away from the kinks f = y, f = -y, f = 0, y = 0 and |f| = |y| (piecewise smooth there)."""
    g = torch.Generator().manual_seed(seed)
    y = (0.2 + 0.6 * torch.rand(1, 2, 6, generator=g, dtype=torch.float64)) * torch.tensor([1.0, -1.0] * 3)
    f = y + torch.tensor([0.11, -0.13, 0.17, 0.07, -0.09, 0.15], dtype=torch.float64)
    f[0, 1] = -y[0, 1] * 0.7 + 0.05             # opposite signs in the second channel
    return f.clamp(-0.95, 0.95).requires_grad_(), y.requires_grad_()


@pytest.mark.parametrize("name", ["gjml", "focal", "stable"])
def test_gradcheck(name):
    fn = {"gjml": lambda a, b: generalized_jml(a, b, 0.1, "none"),
          "focal": lambda a, b: focal_l1_loss(a, b, 1.5, "none"),
          "stable": lambda a, b: stable_focal_l1_loss(a, b, 1.5, "none")}[name]
    f, y = interior_pair()
    assert torch.autograd.gradcheck(fn, (f, y), eps=1e-7, atol=1e-6)


# --------------------------------------------------------------------------- reductions, dtypes, modules


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions(dtype, device):
    f, y = rand_pair((2, 3, 4, 5), dtype, device, seed=3)
    for loss, shape in ((generalized_jml, (2, 3)), (focal_l1_loss, f.shape), (stable_focal_l1_loss, f.shape)):
        none = loss(f, y, reduction="none")
        assert none.shape == shape
        torch.testing.assert_close(loss(f, y, reduction="mean"), none.mean(), **TOL[dtype])
        torch.testing.assert_close(loss(f, y, reduction="sum"), none.sum(), **TOL[dtype])


def test_half_precision_computed_in_float32():
    f, y = rand_pair((1, 1, 8), torch.float32, seed=5)
    for loss in (generalized_jml, focal_l1_loss, stable_focal_l1_loss):
        half = loss(f.half(), y.half())
        assert half.dtype == torch.float32
        torch.testing.assert_close(half, loss(f.half().float(), y.half().float()))


def test_pixel_losses_accept_any_shape():
    f, y = torch.tensor(0.5), torch.tensor(-0.5)
    assert focal_l1_loss(f, y).item() == pytest.approx(2.0)          # 1 / 0.5
    assert stable_focal_l1_loss(f, y).item() == pytest.approx(1.0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", [None, "tanh", "sigmoid", "softmax"])
def test_modules_match_functional(activation, device):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64).to(device)
    y = (2 * torch.rand(2, 3, 4, 4, generator=g, dtype=torch.float64) - 1).to(device)
    act = {None: lambda t: t.clamp(-1, 1), "tanh": torch.tanh, "sigmoid": torch.sigmoid,
           "softmax": lambda t: torch.softmax(t, dim=1)}[activation]
    if activation is None:
        x = x.clamp(-1, 1)
    p = act(x)
    cases = [
        (GeneralizedJaccardMetricLoss(0.5, "none", activation), generalized_jml(p, y, 0.5, "none")),
        (FocalL1Loss(2.0, "sum", activation), focal_l1_loss(p, y, 2.0, "sum")),
        (StableFocalL1Loss(2.0, "mean", activation), stable_focal_l1_loss(p, y, 2.0, "mean")),
    ]
    for module, expected in cases:
        torch.testing.assert_close(module(x, y), expected)


def test_module_backward_and_repr():
    x = torch.zeros(1, 1, 2, 2, requires_grad=True)
    loss = StableFocalL1Loss(activation="tanh")(x, torch.full((1, 1, 2, 2), 0.5))
    loss.backward()
    assert loss.item() == pytest.approx(0.25) and torch.isfinite(x.grad).all()
    assert "gamma=1.0" in repr(FocalL1Loss()) and "activation='tanh'" in repr(GeneralizedJaccardMetricLoss(activation="tanh"))


# --------------------------------------------------------------------------- errors


def test_errors_types_shapes_devices():
    f = torch.zeros(1, 1, 3)
    with pytest.raises(TypeError, match="f: expected a torch.Tensor"):
        generalized_jml(np.zeros((1, 1, 3)), f)
    with pytest.raises(TypeError, match="y: expected a floating-point tensor"):
        focal_l1_loss(f, torch.zeros(1, 1, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"f and y: expected equal shapes, got \(1, 1, 3\) and \(1, 1, 4\)"):
        stable_focal_l1_loss(f, torch.zeros(1, 1, 4))
    with pytest.raises(ValueError, match=r"f: expected shape \(N, C, \*spatial\)"):
        generalized_jml(torch.zeros(1, 3), torch.zeros(1, 3))
    with pytest.raises(TypeError, match="f and y: expected the same dtype"):
        generalized_jml(f, f.double())
    with pytest.raises(ValueError, match="f: expected a non-empty tensor"):
        focal_l1_loss(torch.zeros(1, 1, 0), torch.zeros(1, 1, 0))


def test_errors_values_and_options():
    f = torch.zeros(1, 1, 3)
    with pytest.raises(ValueError, match=r"f: expected values in \[-1, 1\], got values in \[0, 2\]"):
        generalized_jml(torch.tensor([[[0.0, 2.0, 1.0]]]), f)
    with pytest.raises(ValueError, match=r"y: expected values in \[-1, 1\], got values in \[-1.5, 0\]"):
        focal_l1_loss(f, torch.tensor([[[0.0, -1.5, 0.0]]]))
    with pytest.raises(ValueError, match="y: expected finite values, got NaN or inf"):
        stable_focal_l1_loss(f, torch.tensor([[[0.0, math.nan, 0.0]]]))
    with pytest.raises(ValueError, match="gamma: expected a finite number > 0, got 0"):
        focal_l1_loss(f, f, gamma=0)
    with pytest.raises(TypeError, match="gamma: expected a real number, got str"):
        stable_focal_l1_loss(f, f, gamma="1")
    with pytest.raises(ValueError, match="eps: expected a finite number >= 0, got -1"):
        generalized_jml(f, f, eps=-1)
    with pytest.raises(ValueError, match="reduction: expected one of"):
        generalized_jml(f, f, reduction="avg")
    with pytest.raises(ValueError, match="activation: expected one of"):
        FocalL1Loss(activation="relu")
    with pytest.raises(ValueError, match="gamma: expected a finite number > 0"):
        StableFocalL1Loss(gamma=-2.0)
    with pytest.raises(ValueError, match="reduction: expected one of"):
        GeneralizedJaccardMetricLoss(reduction="max")
