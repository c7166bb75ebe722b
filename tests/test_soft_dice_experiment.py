"""Tests of the soft-Dice Table 1 experiment (softseg.experiments.soft_dice_table1) and of its
synthetic data (softseg.data.blobs): the analytic gradient against autograd, the descent's
update rule, convergence to the Theorem 1 optimum, Theorem 3 on thresholded iterates, seeding
and chunking, the results rows, and the generators."""

from __future__ import annotations

import doctest
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from softseg import results
from softseg.data import blobs
from softseg.experiments import soft_dice_table1 as exp
from softseg.experiments.soft_dice_table1 import (
    PAPER_TABLE1,
    TABLE1_ITERATIONS,
    soft_dice_gradient_descent,
    soft_dice_logit_gradient,
    table1_rows,
)
from softseg.theory import marginal_dice, soft_dice_optimum

from conftest import DEVICES

DTYPES = [torch.float32, torch.float64]


def soft_dice_loss_normalized(f: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """SD_m(sigmoid(f)) of eq. (2) with the normalized measure (means), per map (last axis)."""
    c = torch.sigmoid(f)
    return 1 - 2 * (c * m).mean(-1) / (m.mean(-1) + c.mean(-1))


# --------------------------------------------------------------------------- the gradient


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_matches_autograd(dtype, device):
    g = torch.Generator().manual_seed(0)
    f = (3 * torch.randn(4, 50, generator=g, dtype=torch.float64)).to(device)
    m = torch.rand(4, 50, generator=g, dtype=torch.float64).to(device)
    m[0] = 0.0  # all-zero map
    m[1] = (m[1] > 0.5).double()  # hard map
    f_req = f.clone().requires_grad_(True)
    soft_dice_loss_normalized(f_req, m).sum().backward()
    ours = soft_dice_logit_gradient(f.to(dtype), m.to(dtype), batch_dims=1)
    assert ours.dtype == dtype and ours.device.type == device
    tol = {"atol": 1e-12, "rtol": 1e-9} if dtype == torch.float64 else {"atol": 1e-7, "rtol": 1e-4}
    torch.testing.assert_close(ours.double(), f_req.grad, **tol)
    assert torch.equal(ours[0], torch.zeros_like(ours[0]))  # m = 0: every c is optimal


def test_gradient_on_a_2d_map_and_gradcheck_of_the_reference():
    g = torch.Generator().manual_seed(1)
    f = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    m = torch.rand(2, 3, 5, 6, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: soft_dice_loss_normalized(x.flatten(2), m.flatten(2)), (f,))
    soft_dice_loss_normalized(f.flatten(2), m.flatten(2)).sum().backward()
    torch.testing.assert_close(soft_dice_logit_gradient(f.detach(), m, batch_dims=2), f.grad)


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(st.floats(-30, 30), st.floats(0, 1)), min_size=1, max_size=12))
def test_gradient_property_sign_and_autograd(pairs):
    f = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    m = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    grad = soft_dice_logit_gradient(f, m)
    assert torch.isfinite(grad).all()
    f_req = f.clone().requires_grad_(True)
    soft_dice_loss_normalized(f_req, m).backward()
    torch.testing.assert_close(grad, f_req.grad, atol=1e-12, rtol=1e-8)
    # Descent raises F where m > D'/2 and lowers it where m < D'/2 (the Theorem 1 threshold).
    c = torch.sigmoid(f)
    half = float((c * m).sum() / (m.sum() + c.sum())) if float(m.sum() + c.sum()) > 0 else 0.0
    assert (grad[m > half + 1e-9] <= 0).all() and (grad[m < half - 1e-9] >= 0).all()


def test_gradient_at_saturated_logits_and_errors():
    m = torch.tensor([1.0, 0.0, 0.5])
    grad = soft_dice_logit_gradient(torch.tensor([math.inf, -math.inf, 0.0]), m)
    assert torch.isfinite(grad).all() and grad[0] == 0 and grad[1] == 0
    with pytest.raises(ValueError, match="f and m: expected equal shapes"):
        soft_dice_logit_gradient(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"m: expected values in \[0, 1\]"):
        soft_dice_logit_gradient(torch.zeros(3), torch.tensor([0.0, 1.5, 0.0]))
    with pytest.raises(ValueError, match="f: expected finite values"):
        soft_dice_logit_gradient(torch.tensor([0.0, math.nan, 0.0]), m)
    with pytest.raises(TypeError, match="f: expected a floating-point tensor"):
        soft_dice_logit_gradient(torch.zeros(3, dtype=torch.int64), m)
    with pytest.raises(ValueError, match="batch_dims: expected an int in"):
        soft_dice_logit_gradient(torch.zeros(3), m, batch_dims=1)


# --------------------------------------------------------------------------- the descent


def test_update_rule_is_gamma_10n_descent_on_the_loss():
    """One step from the same F_1 by hand: F_2 = F_1 - 10 N dSD/dF (the module's reading)."""
    g = torch.Generator().manual_seed(2)
    m = torch.rand(3, 40, generator=g)
    res = soft_dice_gradient_descent(m, iterations=(1, 2), seed=5, keep=3)
    f1 = exp._initial_logits(3, 40, 5, 0)
    f2 = f1 - 10 * 40 * soft_dice_logit_gradient(f1.double(), m.double(), batch_dims=1)
    torch.testing.assert_close(res.snapshots[:, 0], torch.sigmoid(f1), atol=1e-7, rtol=0)
    torch.testing.assert_close(res.snapshots[:, 1].double(), torch.sigmoid(f2), atol=1e-5, rtol=0)
    # The loss went down and the score is D'_m(c_l).
    torch.testing.assert_close(res.score[:, 0], marginal_dice(torch.sigmoid(f1.double()), m.double(), batch_dims=1))
    assert (res.score[:, 1] > res.score[:, 0]).all()


def test_converges_to_the_theorem1_optimum_on_synthetic_maps():
    m = blobs.synthetic_marginals(0.05, 4, size=48, seed=3)
    res = soft_dice_gradient_descent(m, thresholds=(0.2, 0.5, 0.8))
    assert res.iterations == TABLE1_ITERATIONS
    assert abs(float(res.e0[:, 0].mean()) - 0.5) < 0.01 and abs(float(res.e1[:, 0].mean()) - 0.5) < 0.02
    mean0, mean1 = res.e0.mean(0), res.e1.mean(0)
    assert (mean0.diff() <= 0).all() and (mean1.diff() <= 1e-12).all()  # Table 1's monotone columns
    assert float(mean0[-1]) < 0.01 and float(mean1[-1]) < 0.005
    # Theorem 1: the score never exceeds sup D, and reaches it; Theorem 3: thresholded iterates
    # at every a reach the optimal Dice.
    assert (res.score <= res.optimal_dice.unsqueeze(1) + 1e-6).all()
    # Continuity bounds of the proof of Theorem 3 (supplement eq. (47) and (63)-(64)):
    # |D'(c) - D'(s)| <= 3 ||c - s||_1 / ||m||_1 and ||1{c >= a} - s||_1 <= e0 / min(a, 1 - a).
    norm = m.flatten(1).mean(1).double()
    gap = res.optimal_dice - res.score[:, -1]
    assert (gap >= -1e-6).all() and (gap <= 3 * res.e0[:, -1] / norm).all()
    a = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    bound = 3 * res.e0[:, -1, None] / torch.minimum(a, 1 - a) / norm[:, None]
    dice_gap = res.optimal_dice[:, None] - res.threshold_dice[:, -1]
    assert (dice_gap >= -1e-6).all() and (dice_gap <= bound).all()
    assert (res.threshold_dice[:, -1] > res.threshold_dice[:, 0]).all()
    opt = soft_dice_optimum(m, batch_dims=1)
    torch.testing.assert_close(res.optimal_dice, opt.dice.double())


def test_hand_example_and_degenerate_maps():
    m = torch.tensor([[0.9, 0.8, 0.3, 0.1, 0.0, 0.0], [0.0] * 6, [1.0] * 6])
    res = soft_dice_gradient_descent(m, iterations=(1, 200))
    # Row 0: optimum {0.9, 0.8}, D* = 2 * 1.7 / (2.1 + 2) (hand computation).
    assert res.optimal_dice[0].item() == pytest.approx(3.4 / 4.1)
    assert res.e1[0, -1].item() == 0.0
    # Row 1, m = 0: every c is optimal and the descent does not move (gradient 0); s = all ones
    # by the convention of eq. (16), so e0 stays at its start. Row 2, m = 1: c -> 1.
    assert torch.isfinite(res.e0).all() and res.e0[1, 0] == res.e0[1, 1]
    assert res.e1[2, -1].item() == 0.0


@pytest.mark.parametrize("device", DEVICES)
def test_seeded_and_independent_of_chunking(device):
    m = blobs.synthetic_marginals(0.03, 5, size=32, seed=0).to(device)
    a = soft_dice_gradient_descent(m, iterations=(1, 10, 30), seed=7, chunk=5)
    b = soft_dice_gradient_descent(m, iterations=(1, 10, 30), seed=7, chunk=2, workers=2)
    c = soft_dice_gradient_descent(m, iterations=(1, 10, 30), seed=8, chunk=5)
    d = soft_dice_gradient_descent(m, iterations=(1, 10, 30), seed=7, chunk=1, workers=1)
    for x, y, z in ((a.e0, b.e0, d.e0), (a.e1, b.e1, d.e1), (a.score, b.score, d.score)):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=0)
        torch.testing.assert_close(x, z, atol=1e-6, rtol=0)
    assert not torch.equal(a.e0[:, 0], c.e0[:, 0])


def test_snapshots_and_threshold_shapes():
    m = blobs.synthetic_marginals(0.05, 3, size=16, seed=0)
    res = soft_dice_gradient_descent(m, iterations=(5, 1, 5), thresholds=(0.5,), keep=2)
    assert res.iterations == (1, 5)
    assert res.snapshots.shape == (2, 2, 16, 16) and res.threshold_dice.shape == (3, 2, 1)
    assert res.e0.shape == res.e1.shape == res.score.shape == (3, 2)
    none = soft_dice_gradient_descent(m, iterations=(1,))
    assert none.snapshots is None and none.threshold_dice is None


def test_descent_errors():
    m = torch.rand(2, 8)
    with pytest.raises(ValueError, match="iterations: expected non-empty positive ints"):
        soft_dice_gradient_descent(m, iterations=())
    with pytest.raises(ValueError, match="iterations: expected non-empty positive ints"):
        soft_dice_gradient_descent(m, iterations=(0, 10))
    with pytest.raises(ValueError, match=r"thresholds: expected values in \(0, 1\)"):
        soft_dice_gradient_descent(m, thresholds=(0.0,))
    with pytest.raises(ValueError, match="lr: expected a finite number > 0"):
        soft_dice_gradient_descent(m, lr=0.0)
    with pytest.raises(ValueError, match=r"m: expected shape \(n, \*spatial\)"):
        soft_dice_gradient_descent(torch.rand(8))
    with pytest.raises(ValueError, match=r"m: expected values in \[0, 1\]"):
        soft_dice_gradient_descent(m + 1)
    with pytest.raises(TypeError, match="m: expected a floating-point tensor"):
        soft_dice_gradient_descent(torch.ones(2, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="chunk: expected an int >= 1"):
        soft_dice_gradient_descent(m, chunk=0)
    with pytest.raises(ValueError, match="workers: expected an int >= 1"):
        soft_dice_gradient_descent(m, workers=0)
    with pytest.raises(ValueError, match="keep: expected an int >= 0"):
        soft_dice_gradient_descent(m, keep=-1)


# --------------------------------------------------------------------------- Table 1 rows


def test_paper_table_is_quoted_completely():
    assert len(PAPER_TABLE1) == 18
    for row, values in PAPER_TABLE1.items():
        assert len(values) == 10 and values[:2] == (0.5, 0.5), row


def test_run_writes_valid_rows(monkeypatch, tmp_path):
    """run() on a tiny preset: S rows with the paper's values, G rows on the stand-in without."""
    monkeypatch.setitem(exp.PRESETS, "fast", {"samples": 2, "cases": 1})
    monkeypatch.setattr(exp, "SYNTHETIC_RHOS", (0.01, 0.09))
    monkeypatch.setattr(blobs, "gold_atlas_standin",
                        lambda n, seed=0: {"Prostate": torch.full((n, 2, 8, 8), 0.2).index_fill_(2, torch.tensor([3]), 1.0)})
    rows = exp.run("fast", seed=1, progress=False)
    path = results.write_results("soft-dice-table1", rows, preset="fast", device="cpu", command="test",
                                 directory=tmp_path)
    assert path.exists()
    cells = {(r["row"], r["column"]): r for r in rows}
    assert cells[("S rho=0.09", "e0 l=20")]["paper"] == 0.022
    assert cells[("S rho=0.01", "samples")]["ours"] == 2 and cells[("S rho=0.01", "samples")]["paper"] == 1000
    assert cells[("G Prostate (stand-in)", "e1 l=200")]["paper"] is None
    assert len(rows) == 3 * 11


def test_table1_rows_layout():
    res = exp.GDResult(TABLE1_ITERATIONS, torch.full((2, 5), 0.25), torch.zeros(2, 5), torch.zeros(2, 5),
                       torch.zeros(2), None, None)
    rows = table1_rows("S rho=0.05", res, paper=PAPER_TABLE1["S rho=0.05"], paper_samples=1000)
    assert [r["column"] for r in rows[:4]] == ["samples", "e0 l=1", "e1 l=1", "e0 l=10"]
    assert rows[3]["paper"] == 0.039 and rows[4]["paper"] == 0.025 and rows[3]["ours"] == 0.25


# --------------------------------------------------------------------------- synthetic data


def test_ball_blur_and_deformation():
    m0 = blobs.ball(200)
    assert abs(float(m0.mean()) - math.pi * 0.04) < 2e-3  # area of the disk of radius 0.2
    blurred = blobs.gaussian_blur(m0, 0.05)
    assert abs(float(blurred.sum() - m0.sum())) < 1e-2 * float(m0.sum())
    assert float(blurred[100, 100]) > 0.99 and 0.4 < float(blurred[100, 140]) < 0.6  # 1/2 on the circle
    same = blobs.deform(blurred, torch.zeros(1, 2, 200, 200))
    torch.testing.assert_close(same[0], blurred, atol=1e-6, rtol=0)
    shifted = blobs.deform(m0, torch.tensor([0.0, 0.1]).view(1, 2, 1, 1).expand(1, 2, 200, 200))
    # out(x) = in(x + d): a shift by 20 pixels; grid_sample's float32 coordinates in [-1, 1] carry
    # a rounding of about eps/2 of the unit, i.e. up to W * eps in bilinear weight on a 200-wide grid.
    eps = torch.finfo(torch.float32).eps
    torch.testing.assert_close(shifted[0, :, :180], m0[:, 20:], atol=200 * eps, rtol=0)
    with pytest.raises(ValueError, match=r"displacement: expected shape \(n, 2, H, W\)"):
        blobs.deform(m0, torch.zeros(2, 200, 200))
    with pytest.raises(ValueError, match="std: expected a finite number > 0"):
        blobs.gaussian_blur(m0, 0.0)


def test_random_field_statistics_and_seeding():
    f = blobs.smooth_random_field(200, 40, correlation=0.1, amplitude=0.03, generator=torch.Generator().manual_seed(0))
    assert f.shape == (200, 2, 40, 40)
    assert abs(float(f.std()) - 0.03) < 0.006  # pointwise sd ~ amplitude (interpolation lowers it a bit)
    a = blobs.synthetic_marginals(0.02, 3, size=32, seed=4)
    b = blobs.synthetic_marginals(0.02, 3, size=32, seed=4)
    assert torch.equal(a, b) and a.dtype == torch.float32
    assert not torch.equal(a, blobs.synthetic_marginals(0.02, 3, size=32, seed=5))
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        blobs.synthetic_marginals(0.02, 0)


def test_gold_atlas_standin():
    data = blobs.gold_atlas_standin(2, patch=32, scan_slices=30, organs=["Penile bulb", "Seminal vesicles"], seed=3)
    assert list(data) == ["Penile bulb", "Seminal vesicles"]
    for m in data.values():
        assert m.shape == (2, 30, 32, 32)
        levels = torch.round(m * 5)
        torch.testing.assert_close(m, levels / 5)  # the mean of 5 binary raters
        assert float(m.max()) == 1.0
    again = blobs.gold_atlas_standin(2, patch=32, scan_slices=30, organs=["Penile bulb"], seed=3)
    assert torch.equal(again["Penile bulb"], data["Penile bulb"])  # each organ reproducible alone
    with pytest.raises(ValueError, match="organs: expected names from"):
        blobs.gold_atlas_standin(1, organs=["Liver"])
    with pytest.raises(ValueError, match="scan_slices: expected an integer >= 22"):
        blobs.gold_atlas_standin(1, scan_slices=10)


def test_docstring_examples():
    for module in (exp, blobs):
        failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert failures == 0, module.__name__
