"""Tests of softseg.theory: Theorem 1 (optimal soft-Dice segmentation), Theorem 2 (volumes),
the brute-force helpers and the Table 1 distances of Nordström et al., Noisy Image
Segmentation With Soft-Dice."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import softseg.theory as theory
from softseg.theory import (
    all_segmentations,
    brute_force_optimum,
    marginal_dice,
    optimal_volume_range,
    optimum_errors,
    soft_dice_optimum,
    soft_dice_risk,
    soft_dice_volume_bounds,
)

from conftest import DEVICES

DTYPES = [torch.float32, torch.float64]
SETTINGS = settings(deadline=None, max_examples=60)

# A map with an exact tie on the boundary, all values dyadic so that float arithmetic is exact:
# ||m|| = 1 + 0.25 + 14 * 0.125 = 3 (times 1/16); D({1}) = 2 / (3 + 1) = 0.5 and
# D({1, 0.25}) = 2 * 1.25 / (3 + 2) = 0.5, D({1, 0.25, 0.125}) = 2 * 1.375 / 6 < 0.5, so
# D* = 0.5, t* = 0.25 = the second value: the boundary set {m = t*} is that one pixel.
TIE_MAP = [1.0, 0.25] + [0.125] * 14


def eq78_reference(m: np.ndarray) -> float:
    """sup_s D_m(s) by the literal formula (77)-(78) of the supplement: 2 max over t in m."""
    m = np.asarray(m, dtype=np.float64).ravel()
    total = m.sum()
    return 2 * max(float((m * (m >= t)).sum() / (total + (m >= t).sum())) for t in m)


def maps(min_size: int = 1, max_size: int = 10):
    """Random maps: continuous values, or values on a grid of eighths (many ties)."""
    cont = st.floats(0.0, 1.0, allow_nan=False, width=64)
    grid = st.integers(0, 8).map(lambda k: k / 8)
    return st.one_of(
        st.lists(cont, min_size=min_size, max_size=max_size),
        st.lists(grid, min_size=min_size, max_size=max_size),
    ).map(lambda v: np.array(v, dtype=np.float64))


# --------------------------------------------------------------------------- hand-derived cases


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_tie_map_boundary_representatives(dtype, device):
    m = torch.tensor(TIE_MAP, dtype=dtype, device=device)
    opt = soft_dice_optimum(m)
    assert float(opt.dice) == 0.5 and float(opt.threshold) == 0.25
    assert opt.segmentation.dtype == dtype and opt.segmentation.shape == m.shape
    # default: the largest optimal set {m >= t*} (eq. (16), (37), (78)) includes the tied pixel
    assert opt.segmentation.tolist() == [1.0, 1.0] + [0.0] * 14
    # boundary_value=0: the smallest optimal set {m > t*} (eq. (35))
    assert soft_dice_optimum(m, boundary_value=0.0).segmentation.tolist() == [1.0, 0.0] + [0.0] * 14
    # Theorem 1: any value in [0, 1] on the boundary set is optimal
    for v in (0.0, 0.3, 0.5, 1.0):
        seg = soft_dice_optimum(m, boundary_value=v).segmentation
        assert seg[1].item() == pytest.approx(v)
        assert float(marginal_dice(seg, m)) == pytest.approx(0.5, abs=1e-12)


def test_tie_map_matches_brute_force_set_of_optimizers():
    # 16 pixels: 65 536 candidates; the optimizers are exactly {1} and {1, 0.25} (eq. (12))
    bf = brute_force_optimum(torch.tensor(TIE_MAP, dtype=torch.float64))
    assert float(bf.dice) == 0.5
    assert sorted(map(tuple, bf.segmentations.tolist())) == [
        tuple([1.0, 0.0] + [0.0] * 14),
        tuple([1.0, 1.0] + [0.0] * 14),
    ]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_all_zero_map_is_degenerate(dtype, device):
    # Supplement, proof of Theorem 1, Part 1: D'_m = 0 for every c, every c is optimal, the
    # whole domain is the boundary set; eq. (78) then thresholds at 0 and keeps everything.
    m = torch.zeros(4, 5, dtype=dtype, device=device)
    opt = soft_dice_optimum(m)
    assert float(opt.dice) == 0.0 and float(opt.threshold) == 0.0
    assert torch.equal(opt.segmentation, torch.ones_like(m))
    assert torch.equal(soft_dice_optimum(m, boundary_value=0.0).segmentation, torch.zeros_like(m))
    assert torch.all(soft_dice_optimum(m, boundary_value=0.25).segmentation == 0.25)
    for c in (torch.zeros_like(m), torch.ones_like(m), torch.rand(m.shape, dtype=dtype, device=device)):
        assert float(marginal_dice(c, m)) == 0.0  # the paper's convention, never NaN
    lo, hi = optimal_volume_range(m)
    assert (float(lo), float(hi)) == (0.0, 1.0)
    lo, hi = soft_dice_volume_bounds(m)
    assert (float(lo), float(hi)) == (0.0, 1.0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_all_one_map(dtype, device):
    # r_k = 2k / (N + k) increases with k: D* = 2N / 2N = 1 at k = N, t* = 1/2
    m = torch.ones(3, 7, dtype=dtype, device=device)
    opt = soft_dice_optimum(m)
    assert float(opt.dice) == 1.0 and float(opt.threshold) == 0.5
    assert torch.equal(opt.segmentation, m)
    assert [float(v) for v in optimal_volume_range(m)] == [1.0, 1.0]


def test_single_pixel_maps():
    # one pixel of value p: D({1}) = 2p / (1 + p) > 0 = D({}) for p > 0, so t* = p / (1 + p) < p
    for p in (0.0, 0.25, 0.5, 1.0):
        opt = soft_dice_optimum(torch.tensor([p], dtype=torch.float64))
        assert float(opt.dice) == pytest.approx(2 * p / (1 + p))
        assert opt.segmentation.tolist() == [1.0]


def test_small_hand_example():
    # m = [0.9, 0.6, 0.2]: ||m|| = 1.7; r_1 = 1.8/2.7, r_2 = 3/3.7, r_3 = 3.4/4.7; max r_2
    m = torch.tensor([0.9, 0.6, 0.2], dtype=torch.float64)
    opt = soft_dice_optimum(m)
    assert float(opt.dice) == pytest.approx(3 / 3.7, abs=1e-15)
    assert float(opt.threshold) == pytest.approx(1.5 / 3.7, abs=1e-15)  # in (0.2, 0.6)
    assert opt.segmentation.tolist() == [1.0, 1.0, 0.0]
    assert float(soft_dice_risk(opt.segmentation, m)) == pytest.approx(1 - 3 / 3.7, abs=1e-15)


def test_threshold_is_half_the_optimal_value_not_the_argmax():
    # eq. (78) thresholds at the maximal *value* r* of the ratio, not at the t reaching it.
    # On TIE_MAP the ratio is maximal (0.25) at t = 1 and at t = 0.25; thresholding at the first
    # maximizer t = 1 would give {m >= 1}, while eq. (78) gives {m >= r*} = {m >= 0.25}.
    m = np.array(TIE_MAP)
    ratios = [(m * (m >= t)).sum() / (m.sum() + (m >= t).sum()) for t in (1.0, 0.25, 0.125)]
    assert ratios[:2] == [0.25, 0.25] and ratios[2] < 0.25
    assert soft_dice_optimum(m).segmentation.tolist() == (m >= 0.25).astype(float).tolist()
    # Without ties: r* lies strictly between two values of m and is not itself a value of m.
    m = torch.tensor([0.9, 0.6, 0.2, 0.41, 0.40], dtype=torch.float64)
    opt = soft_dice_optimum(m)
    t = float(opt.threshold)
    assert t == pytest.approx(eq78_reference(m.numpy()) / 2, abs=1e-15) and t not in m.tolist()
    assert torch.equal(opt.segmentation, (m >= t).to(m.dtype))
    assert float(marginal_dice(opt.segmentation, m)) == pytest.approx(float(brute_force_optimum(m).dice), abs=1e-15)


def test_volume_bounds_are_sharp_on_the_papers_extremal_map():
    # v = ||m|| = 1/3 with one pixel of 1 and eight of v/(1+v) = 1/4 (N = 9): D* = 2/(3+1) = 1/2,
    # t* = 1/4 is exactly the low value, so the optimal volumes fill [1/9, 1] = [v**2, 1]:
    # both ends of Theorem 2, eq. (8)-(9), are reached by the same map.
    m = torch.tensor([1.0] + [0.25] * 8, dtype=torch.float64)
    lo, hi = optimal_volume_range(m)
    blo, bhi = soft_dice_volume_bounds(m)
    assert float(lo) == pytest.approx(1 / 9) and float(blo) == pytest.approx(1 / 9)
    assert float(hi) == 1.0 and float(bhi) == 1.0


def test_volume_bounds_hand_values():
    m = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]], dtype=torch.float64)
    lo, hi = soft_dice_volume_bounds(m, batch_dims=1)
    assert lo.tolist() == [1 / 16, 1 / 4] and hi.tolist() == [1.0, 1.0]
    # constant map 1/2: D(all) = 2 * 2 / (2 + 4) = 2/3 is optimal, t* = 1/3 < 1/2: volume 1
    vlo, vhi = optimal_volume_range(m, batch_dims=1)
    assert vlo.tolist() == [0.25, 1.0] and vhi.tolist() == [0.25, 1.0]


# --------------------------------------------------------------------------- Theorem 1, properties


@SETTINGS
@given(maps(1, 10))
def test_matches_brute_force_over_all_binary_segmentations(m):
    bf = brute_force_optimum(m, atol=1e-9)
    opt = soft_dice_optimum(m)
    assert float(opt.dice) == pytest.approx(float(bf.dice), abs=1e-12)
    assert float(opt.dice) == pytest.approx(eq78_reference(m), abs=1e-12)
    assert float(marginal_dice(opt.segmentation, m)) == pytest.approx(float(bf.dice), abs=1e-12)
    # eq. (12): every optimal set holds {m > t*} and lies inside {m >= t*}; both extreme
    # representatives are optimal
    t = float(opt.threshold)
    mt = torch.from_numpy(m)
    for s in bf.segmentations:
        assert torch.all(s[mt > t + 1e-9] == 1) and torch.all(s[mt < t - 1e-9] == 0)
    smallest = soft_dice_optimum(m, boundary_value=0.0).segmentation
    assert float(marginal_dice(smallest, m)) == pytest.approx(float(bf.dice), abs=1e-12)


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(1, 400), st.sampled_from(["uniform", "power", "grid", "sparse"]))
def test_optimum_beats_every_threshold_set_and_random_sets(seed, n, kind):
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=g, dtype=torch.float64)
    m = {"uniform": u, "power": u**6, "grid": torch.round(u * 4) / 4,
         "sparse": torch.where(u > 0.8, u, torch.zeros_like(u))}[kind]
    opt = soft_dice_optimum(m)
    best = float(marginal_dice(opt.segmentation, m))
    assert best == pytest.approx(float(opt.dice), abs=1e-12)
    thresholds = torch.cat([m, torch.tensor([0.0, 1.0], dtype=m.dtype)])
    level_sets = (m.unsqueeze(0) >= thresholds.unsqueeze(1)).to(m.dtype)  # {m >= t}, every t
    assert float(marginal_dice(level_sets, m).max()) <= best + 1e-12
    random_sets = (torch.rand(256, n, generator=g, dtype=torch.float64) < torch.rand(256, 1, generator=g,
                                                                                    dtype=torch.float64))
    assert float(marginal_dice(random_sets.to(m.dtype), m).max()) <= best + 1e-12
    soft = torch.rand(64, n, generator=g, dtype=torch.float64)  # Theorem 1 covers soft c too
    assert float(marginal_dice(soft, m).max()) <= best + 1e-12


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(1, 300))
def test_volume_bounds_contain_the_optimal_volumes(seed, n):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(3, n, generator=g, dtype=torch.float64) ** torch.tensor([[0.5], [2.0], [8.0]], dtype=torch.float64)
    lo, hi = optimal_volume_range(m, batch_dims=1)
    blo, bhi = soft_dice_volume_bounds(m, batch_dims=1)
    seg = soft_dice_optimum(m, batch_dims=1).segmentation
    vol = seg.mean(1)
    assert torch.all(blo <= lo + 1e-12) and torch.all(lo <= vol) and torch.all(vol <= hi) and torch.all(hi <= bhi)
    # eq. (13): never below the volume of the 1/2-threshold (the cross-entropy optimizer)
    assert torch.all(lo >= (m >= 0.5).to(m.dtype).mean(1) - 1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_equals_per_map_and_float32_is_close(dtype, device):
    g = torch.Generator().manual_seed(0)
    m64 = torch.rand(2, 3, 17, 19, generator=g, dtype=torch.float64) ** 3
    m = m64.to(dtype=dtype, device=device)
    opt = soft_dice_optimum(m, batch_dims=2)
    assert opt.segmentation.shape == m.shape and opt.threshold.shape == (2, 3) and opt.dice.shape == (2, 3)
    assert opt.segmentation.device.type == device
    for i in range(2):
        for j in range(3):
            one = soft_dice_optimum(m[i, j])
            assert torch.equal(one.segmentation, opt.segmentation[i, j])
            assert float(one.dice) == float(opt.dice[i, j])
            assert float(opt.dice[i, j]) == pytest.approx(eq78_reference(m[i, j].double().cpu().numpy()), abs=1e-6)
    # batch_dims=1 over (N, C*H, W)-like grouping: each (H, W) map of a (6, 17, 19) stack
    flat = soft_dice_optimum(m.reshape(6, 17, 19), batch_dims=1)
    torch.testing.assert_close(flat.dice.reshape(2, 3), opt.dice)


def test_numpy_input_and_half_precision():
    m = np.random.default_rng(1).random((4, 8, 8)).astype(np.float32)
    opt = soft_dice_optimum(m, batch_dims=1)
    assert isinstance(opt.segmentation, torch.Tensor) and opt.segmentation.dtype == torch.float32
    ref = soft_dice_optimum(torch.from_numpy(m).double(), batch_dims=1)
    torch.testing.assert_close(opt.dice, ref.dice, atol=1e-6, rtol=0)
    rev = m[:, ::-1]  # negative strides, which torch.from_numpy refuses: copied
    torch.testing.assert_close(soft_dice_optimum(rev, batch_dims=1).dice, opt.dice)
    for dtype in (torch.float16, torch.bfloat16):
        half = soft_dice_optimum(torch.from_numpy(m).to(dtype), batch_dims=1)
        assert half.segmentation.dtype == dtype and half.threshold.dtype == dtype
        mh = torch.from_numpy(m).to(dtype)
        assert torch.equal(half.segmentation, (mh >= half.threshold[:, None, None]).to(dtype))
        assert torch.all(half.dice <= 1) and torch.all(half.dice > 0)


def test_large_map_float32_agrees_with_float64():
    g = torch.Generator().manual_seed(3)
    m = torch.rand(2, 300, 257, generator=g, dtype=torch.float64) ** 2  # P not a multiple of 256
    o64 = soft_dice_optimum(m, batch_dims=1)
    o32 = soft_dice_optimum(m.float(), batch_dims=1)
    torch.testing.assert_close(o32.dice, o64.dice, atol=1e-6, rtol=0)
    # full scan of the sorted prefix ratios r_k (eq. (78)) in float64
    s = torch.sort(m.reshape(2, -1), dim=1, descending=True).values
    k = torch.arange(1, s.shape[1] + 1, dtype=torch.float64)
    scan = (2 * torch.cumsum(s, 1) / (s.sum(1, keepdim=True) + k)).max(1).values
    torch.testing.assert_close(o64.dice, scan, atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- Definitions 1-2, helpers


def test_marginal_dice_hand_values_and_broadcasting():
    m = torch.tensor([0.9, 0.6, 0.2], dtype=torch.float64)
    # s = [1, 0, 1]: 2 * 1.1 / (2 + 1.7); soft c = 0.5 everywhere: 2 * 0.85 / (1.5 + 1.7)
    assert float(marginal_dice(torch.tensor([1.0, 0.0, 1.0]), m)) == pytest.approx(2.2 / 3.7)
    assert float(marginal_dice(torch.full((3,), 0.5), m)) == pytest.approx(1.7 / 3.2)
    assert float(marginal_dice(torch.zeros(3), m)) == 0.0
    cands = all_segmentations(3)
    d = marginal_dice(cands, m)
    assert d.shape == (8,) and d.dtype == torch.float64
    assert float(d.max()) == pytest.approx(3 / 3.7)
    # batched m with a candidate stack broadcasting against the batch axis
    mb = torch.stack([m, m.flip(0)])
    db = marginal_dice(cands.unsqueeze(1), mb, batch_dims=1)
    assert db.shape == (8, 2)
    torch.testing.assert_close(db[:, 0], d)
    torch.testing.assert_close(soft_dice_risk(cands, m), 1 - d)
    # numpy and bool candidates
    assert float(marginal_dice(np.array([True, True, False]), m.numpy())) == pytest.approx(3 / 3.7)


def test_all_segmentations():
    s = all_segmentations(4)
    assert s.shape == (16, 4) and s.dtype == torch.float64
    assert len({tuple(r) for r in s.tolist()}) == 16
    assert s[5].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert all_segmentations(3, dtype=torch.bool).dtype == torch.bool


def test_optimum_errors_and_theorem3_convergence():
    m = torch.tensor([0.9, 0.6, 0.2, 0.0], dtype=torch.float64)  # optimum [1, 1, 0, 0]
    e0, e1 = optimum_errors(torch.tensor([0.8, 0.4, 0.1, 0.0]), m)
    assert float(e0) == pytest.approx((0.2 + 0.6 + 0.1) / 4) and float(e1) == 0.25
    s = soft_dice_optimum(m).segmentation
    assert [float(v) for v in optimum_errors(s, m)] == [0.0, 0.0]
    # Theorem 3: c_l -> optimum in L1 drives SD_m(c_l) to its infimum and, for every a in (0, 1),
    # D_m(1{c_l >= a}) to sup D_m (eq. (10)-(11)); here exactly once ||c_l - s||_inf < min(a, 1-a)
    g = torch.Generator().manual_seed(0)
    m = torch.rand(2, 50, generator=g, dtype=torch.float64)
    opt = soft_dice_optimum(m, batch_dims=1)
    noise = torch.rand(2, 50, generator=g, dtype=torch.float64)
    gaps = []
    for lam in (0.5, 0.1, 0.01, 0.0):
        c = (1 - lam) * opt.segmentation + lam * noise
        gaps.append(float((soft_dice_risk(c, m, batch_dims=1) - (1 - opt.dice)).max()))
        e0, e1 = optimum_errors(c, m, batch_dims=1)
        assert torch.all(e0 <= lam)
        for a in (0.25, 0.5, 0.75):
            if lam < min(a, 1 - a):
                hard = (c >= a).to(m.dtype)
                torch.testing.assert_close(marginal_dice(hard, m, batch_dims=1), opt.dice, atol=1e-12, rtol=0)
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] == pytest.approx(0.0, abs=1e-12) and gaps[0] > 0


# --------------------------------------------------------------------------- validation


def test_errors():
    m = torch.rand(4, 4)
    with pytest.raises(TypeError, match="m: expected a numpy.ndarray or torch.Tensor, got list"):
        soft_dice_optimum([0.1, 0.2])
    with pytest.raises(TypeError, match="m: expected a floating-point tensor"):
        soft_dice_optimum(torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="m: expected finite values, got NaN"):
        soft_dice_optimum(torch.tensor([0.5, float("nan")]))
    with pytest.raises(ValueError, match=r"m: expected values in \[0, 1\], got values in \[-0.5, 0.5\]"):
        soft_dice_optimum(torch.tensor([-0.5, 0.5]))
    with pytest.raises(ValueError, match=r"m: expected values in \[0, 1\]"):
        soft_dice_volume_bounds(torch.tensor([1.5]))
    with pytest.raises(ValueError, match="m: expected at least one pixel per map"):
        soft_dice_optimum(torch.zeros(3, 0), batch_dims=1)
    with pytest.raises(ValueError, match="m: expected an array with at least one spatial axis"):
        soft_dice_optimum(torch.tensor(0.5))
    with pytest.raises(ValueError, match=r"batch_dims: expected an int in \[0, m.ndim - 1\] = \[0, 1\]"):
        soft_dice_optimum(m, batch_dims=2)
    with pytest.raises(TypeError, match="batch_dims: expected an int, got float"):
        optimal_volume_range(m, batch_dims=1.0)
    with pytest.raises(ValueError, match=r"boundary_value: expected a number in \[0, 1\], got 2"):
        soft_dice_optimum(m, boundary_value=2)
    with pytest.raises(TypeError, match="boundary_value: expected a real number"):
        soft_dice_optimum(m, boundary_value="max")
    with pytest.raises(ValueError, match=r"c: expected shape \(\.\.\., 4, 4\)"):
        marginal_dice(torch.ones(4, 3), m)
    with pytest.raises(ValueError, match=r"c: expected values in \[0, 1\]"):
        marginal_dice(torch.full((4, 4), 2.0), m)
    with pytest.raises(ValueError, match="c and m: expected shapes that broadcast"):
        marginal_dice(torch.ones(3, 4, 4), torch.rand(2, 4, 4), batch_dims=1)
    with pytest.raises(ValueError, match=r"n: expected an int in \[1, 22\], got 23"):
        all_segmentations(23)
    with pytest.raises(TypeError, match="n: expected an int, got float"):
        all_segmentations(3.0)
    with pytest.raises(ValueError, match="c and m: expected equal shapes"):
        optimum_errors(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match=r"threshold: expected a number in \(0, 1\), got 1"):
        optimum_errors(torch.ones(3), torch.ones(3), threshold=1)
    with pytest.raises(ValueError, match="atol: expected a number >= 0"):
        brute_force_optimum(torch.ones(3), atol=-1.0)


def test_docstring_examples():
    result = doctest.testmod(theory, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 10
