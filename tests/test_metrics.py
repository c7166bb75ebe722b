"""Tests of softseg.metrics: hand-computed values, empty masks and absent classes, BDice and ECE
as defined in Wang et al., Dice Semimetric Losses, Sect. 3.3 (ECE after Guo et al. 2017)."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import softseg.metrics as metrics
from softseg.metrics import (
    BDICE_THRESHOLDS,
    balanced_accuracy,
    bdice,
    dice,
    ece,
    iou,
    sensitivity,
    soft_dice,
    specificity,
)

from conftest import DEVICES

DTYPES = [torch.float32, torch.float64]
SETTINGS = settings(deadline=None, max_examples=60)
HARD = [dice, iou, sensitivity, specificity, balanced_accuracy]

# x thresholded at 0.5 -> [1, 1, 0, 0, 1, 0]; y = [1, 0, 1, 0, 1, 0]
# TP = 2 (pixels 0, 4), FP = 1 (pixel 1), FN = 1 (pixel 2), TN = 2 (pixels 3, 5)
X6 = [0.9, 0.5, 0.49, 0.0, 1.0, 0.2]
Y6 = [1, 0, 1, 0, 1, 0]
EXPECTED6 = {
    dice: 2 * 2 / (2 * 2 + 1 + 1),  # 2/3
    iou: 2 / (2 + 1 + 1),  # 1/2
    sensitivity: 2 / (2 + 1),
    specificity: 2 / (2 + 1),
    balanced_accuracy: 2 / 3,
}


# --------------------------------------------------------------------------- hand-computed values


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("metric", HARD, ids=lambda f: f.__name__)
def test_hard_metrics_hand_values(metric, dtype, device):
    x = torch.tensor(X6, dtype=dtype, device=device)
    y = torch.tensor(Y6, dtype=dtype, device=device)
    value = metric(x, y)
    assert isinstance(value, float) and value == pytest.approx(EXPECTED6[metric], abs=1e-15)
    # x = 0.5 is foreground (x >= threshold); a stricter threshold drops pixel 1 (the FP)
    # now TP = 2, FP = 0, FN = 1, TN = 3
    stricter = {dice: 4 / 5, iou: 2 / 3, sensitivity: 2 / 3, specificity: 1.0, balanced_accuracy: 5 / 6}
    assert metric(x, y, threshold=0.6) == pytest.approx(stricter[metric], abs=1e-15)
    # numpy in, same value; integer and boolean masks accepted
    assert metric(np.array(X6), np.array(Y6)) == pytest.approx(EXPECTED6[metric], abs=1e-15)
    rev = metric(np.array(X6)[::-1], np.array(Y6)[::-1])  # negative strides
    assert rev == pytest.approx(EXPECTED6[metric], abs=1e-15)
    xb = (torch.tensor(X6) >= 0.5)
    assert metric(xb, torch.tensor(Y6).bool(), threshold=None) == pytest.approx(EXPECTED6[metric], abs=1e-15)
    assert metric(xb.long(), torch.tensor(Y6), threshold=None) == pytest.approx(EXPECTED6[metric], abs=1e-15)


@pytest.mark.parametrize("device", DEVICES)
def test_batched_shapes_and_per_class_values(device):
    # N = 2 samples, C = 2 classes, 2 x 3 images; (sample, class) -> hand-computed Dice
    y = torch.zeros(2, 2, 2, 3, device=device)
    x = torch.zeros(2, 2, 2, 3, device=device)
    y[0, 0, 0, :] = 1
    x[0, 0, 0, :2] = 1  # TP 2, FN 1: Dice 4/5, IoU 2/3
    y[0, 1, 1, 0] = 1
    x[0, 1, 1, 0] = 1  # perfect: 1
    x[1, 0, 0, 0] = 1  # target empty, prediction not: 0
    # (1, 1): both empty: 1 (absent class)
    d = dice(x, y, reduction="none")
    assert isinstance(d, torch.Tensor) and d.shape == (2, 2) and d.dtype == torch.float64
    assert d.device.type == device
    torch.testing.assert_close(d.cpu(), torch.tensor([[4 / 5, 1.0], [0.0, 1.0]], dtype=torch.float64))
    assert dice(x, y) == pytest.approx((4 / 5 + 1 + 0 + 1) / 4)
    assert dice(x, y, reduction="sum") == pytest.approx(4 / 5 + 1 + 0 + 1)
    torch.testing.assert_close(iou(x, y, reduction="none").cpu(),
                               torch.tensor([[2 / 3, 1.0], [0.0, 1.0]], dtype=torch.float64))
    # numpy in -> numpy out for reduction="none"
    dn = dice(x.cpu().numpy(), y.cpu().numpy(), reduction="none")
    assert isinstance(dn, np.ndarray) and dn.shape == (2, 2)
    # a single map gives a 0-d result
    single = dice(x[0, 0].cpu().numpy(), y[0, 0].cpu().numpy(), reduction="none")
    assert isinstance(single, np.ndarray) and single.shape == () and float(single) == pytest.approx(0.8)


def test_empty_masks_and_absent_classes():
    z = np.zeros((4, 4))
    o = np.ones((4, 4))
    # both empty: perfect agreement by convention, never NaN
    for metric in HARD:
        assert metric(z, z) == 1.0
    # empty target, non-empty prediction: Dice/IoU 0, sensitivity 1 (nothing to find),
    # specificity 0 (every background pixel was called foreground)
    assert dice(o, z) == 0.0 and iou(o, z) == 0.0
    assert sensitivity(o, z) == 1.0 and specificity(o, z) == 0.0 and balanced_accuracy(o, z) == 0.5
    # full target, empty prediction: specificity 1 (no background to get wrong)
    assert dice(z, o) == 0.0 and sensitivity(z, o) == 0.0 and specificity(z, o) == 1.0
    # one-hot with an absent class (class 2 in neither): it scores 1 and counts in the mean
    y = np.zeros((1, 3, 2, 2))
    y[0, 0] = [[1, 1], [0, 0]]
    y[0, 1] = [[0, 0], [1, 1]]
    x = y.copy()
    assert dice(x, y, reduction="none").tolist() == [[1.0, 1.0, 1.0]]
    x[0, 2, 0, 0], x[0, 0, 0, 0] = 1, 0  # the absent class is predicted on one pixel
    assert dice(x, y, reduction="none").tolist() == [[2 / 3, 1.0, 0.0]]
    assert dice(x, y) == pytest.approx((2 / 3 + 1 + 0) / 3)
    for f in (soft_dice, bdice, ece):
        assert np.isfinite(f(x, y, reduction="none")).all()
    assert soft_dice(z, z) == 1.0 and bdice(z, z) == 1.0 and ece(z, z) == 0.0


@SETTINGS
@given(hnp.arrays(np.bool_, st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(1, 5), st.integers(1, 5))),
       st.data())
def test_hard_metric_identities(x, data):
    y = data.draw(hnp.arrays(np.bool_, x.shape))
    d, j = dice(x, y, reduction="none"), iou(x, y, reduction="none")
    se, sp = sensitivity(x, y, reduction="none"), specificity(x, y, reduction="none")
    for v in (d, j, se, sp):
        assert np.isfinite(v).all() and (v >= 0).all() and (v <= 1).all()
    np.testing.assert_allclose(d, 2 * j / (1 + j), atol=1e-12)  # Dice = 2 IoU / (1 + IoU)
    np.testing.assert_allclose(d, dice(y, x, reduction="none"))  # symmetric
    np.testing.assert_allclose(balanced_accuracy(x, y, reduction="none"), (se + sp) / 2)
    # soft Dice and BDice reduce to Dice on binary inputs
    np.testing.assert_allclose(soft_dice(x.astype(float), y.astype(float), reduction="none"), d, atol=1e-12)
    np.testing.assert_allclose(bdice(x.astype(float), y.astype(float), reduction="none"), d, atol=1e-12)
    assert (d[np.equal(x, y).all(axis=(2, 3))] == 1).all()  # identical masks, empty or not


# --------------------------------------------------------------------------- soft Dice


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_dice_hand_values(dtype, device):
    y = torch.tensor([0.5, 0.5, 0.5, 0.5], dtype=dtype, device=device)
    assert soft_dice(y, y) == pytest.approx(0.5)  # 2 * 1 / (2 + 2): not maximal at x = y
    assert soft_dice(torch.ones_like(y), y) == pytest.approx(2 / 3)  # 2 * 2 / (4 + 2)
    x = torch.tensor([0.2, 0.8], dtype=dtype, device=device)
    yy = torch.tensor([0.0, 1.0], dtype=dtype, device=device)
    assert soft_dice(x, yy) == pytest.approx(2 * 0.8 / (1.0 + 1.0))
    assert soft_dice(torch.zeros(3), torch.zeros(3)) == 1.0
    assert soft_dice(torch.zeros(3), torch.ones(3)) == 0.0


# --------------------------------------------------------------------------- BDice


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bdice_hand_values(dtype, device):
    # dyadic values (exact in float32 too) and the levels tau at which they are kept (value > tau):
    # y = [0.625, 0.25, 0]:   pixel 0 for tau <= 0.6, pixel 1 for tau <= 0.2
    # x = [0.875, 0.4375, 0]: pixel 0 for tau <= 0.8, pixel 1 for tau <= 0.4
    # tau 0.1, 0.2: x {0,1}, y {0,1} -> 1;  0.3, 0.4: x {0,1}, y {0} -> 2/3;  0.5, 0.6: x {0}, y {0} -> 1
    # 0.7, 0.8: x {0}, y {} -> 0;  0.9: both empty -> 1
    x = torch.tensor([0.875, 0.4375, 0.0], dtype=dtype, device=device)
    y = torch.tensor([0.625, 0.25, 0.0], dtype=dtype, device=device)
    assert bdice(x, y) == pytest.approx((2 * 1 + 2 * 2 / 3 + 2 * 1 + 2 * 0 + 1) / 9, abs=1e-15)
    v = bdice(x[None, None], y[None, None], reduction="none")
    assert v.shape == (1, 1) and float(v) == pytest.approx(19 / 27, abs=1e-15)
    # custom levels
    assert bdice(x, y, thresholds=[0.5]) == 1.0 and bdice(x, y, thresholds=(0.7,)) == 0.0
    assert bdice(x, y, thresholds=np.array([0.1, 0.9])) == 1.0


def test_bdice_rater_average_strict_threshold():
    # 6 raters, 3 of them mark the pixel: y = 0.5 exactly; at tau = 0.5 it is background (strict >)
    y = np.array([3 / 6, 6 / 6, 0.0])
    x = np.array([0.5, 1.0, 0.0])
    assert bdice(x, y) == 1.0  # identical maps
    per_level = [dice(x > t, y > t, threshold=None) for t in BDICE_THRESHOLDS]
    assert bdice(x, y) == pytest.approx(np.mean(per_level))
    x2 = np.array([0.55, 1.0, 0.0])  # kept at 0.5 while y is not: Dice 2/3 at that level only
    assert bdice(x2, y) == pytest.approx((8 + 2 / 3) / 9)


# --------------------------------------------------------------------------- ECE


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_ece_hand_values(dtype, device):
    t = lambda v: torch.tensor(v, dtype=dtype, device=device)  # noqa: E731
    # Perfectly calibrated: 4 pixels at p = 0.75 (conf 0.75), 3 of them foreground: acc 0.75
    assert ece(t([0.75] * 4), t([1, 1, 1, 0])) == pytest.approx(0.0, abs=1e-7)
    # Confident and right -> 0; confident and wrong -> 1
    assert ece(t([1.0, 0.0]), t([1, 0])) == 0.0 and ece(t([1.0, 0.0]), t([0, 1])) == 1.0
    # Two bins: conf 0.95 (x = 0.95 right, x = 0.05 wrong: acc 1/2) and conf 0.75 (both right)
    # ECE = 2/4 |0.5 - 0.95| + 2/4 |1 - 0.75| = 0.225 + 0.125
    x, y = t([0.95, 0.05, 0.75, 0.25]), t([1, 1, 1, 0])
    assert ece(x, y) == pytest.approx(0.35, abs=1e-7)
    # One bin (n_bins=1): |mean acc - mean conf| = |3/4 - 0.85|
    assert ece(x, y, n_bins=1) == pytest.approx(0.1, abs=1e-7)
    # Soft target (an extension; the paper uses the hard majority vote): a_i = y_i or 1 - y_i
    # pixel 0: fg, agree 0.8; pixel 1: bg, agree 1 - 0.4; conf 0.95 and 0.95 -> |1.4 - 1.9| / 2
    assert ece(t([0.95, 0.05]), t([0.8, 0.4])) == pytest.approx(0.25, abs=1e-7)


def test_ece_per_image_reduction_and_shapes():
    x = np.stack([np.full((2, 2), 0.9), np.full((2, 2), 0.6)])[:, None]  # (2, 1, 2, 2)
    y = np.stack([np.ones((2, 2)), np.array([[1, 1], [0, 0]])])[:, None]
    v = ece(x, y, reduction="none")
    assert v.shape == (2, 1)
    np.testing.assert_allclose(v[:, 0], [0.1, 0.1], atol=1e-12)  # |1 - 0.9|, |0.5 - 0.6|
    assert ece(x, y) == pytest.approx(0.1)


def test_ece_top_label_matches_binary_on_two_classes():
    g = np.random.default_rng(0)
    p = g.uniform(0.0, 1.0, size=(3, 1, 8, 8))
    p[np.isclose(p, 0.5)] = 0.6  # at exactly 0.5 the two modes break the tie differently
    y = (g.uniform(size=p.shape) < p).astype(float)
    two = np.concatenate([1 - p, p], axis=1)
    yy = np.concatenate([1 - y, y], axis=1)
    top = ece(two, yy, mode="top-label", reduction="none")
    assert top.shape == (3,)
    np.testing.assert_allclose(top, ece(p, y, reduction="none")[:, 0], atol=1e-12)
    # three classes, hand-computed: conf 0.7 right, 0.5 wrong -> bins (0.6,0.7] and (0.4,0.5]
    x3 = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2]]).T.reshape(1, 3, 2)
    y3 = np.array([[1, 0, 0], [0, 1, 0]]).T.reshape(1, 3, 2)
    assert ece(x3, y3, mode="top-label") == pytest.approx((0.3 + 0.5) / 2)


@SETTINGS
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 6)),
                  elements=st.floats(0, 1)), st.integers(1, 20), st.data())
def test_ece_bounds_and_bin_merging(x, n_bins, data):
    y = data.draw(hnp.arrays(np.float64, x.shape, elements=st.sampled_from([0.0, 1.0])))
    v = ece(x, y, n_bins=n_bins, reduction="none")
    assert np.isfinite(v).all() and (v >= 0).all() and (v <= 1 + 1e-12).all()
    # fewer bins can only merge gaps of mixed sign: one bin gives the smallest ECE
    assert (ece(x, y, n_bins=1, reduction="none") <= v + 1e-12).all()


# --------------------------------------------------------------------------- validation


def test_errors():
    x = np.full((2, 2), 0.5)
    y = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"x and y: expected equal shapes, got \(2, 2\) and \(2, 3\)"):
        dice(x, np.zeros((2, 3)))
    with pytest.raises(TypeError, match="x: expected a numpy.ndarray or torch.Tensor, got list"):
        dice([0.5], [1])
    with pytest.raises(ValueError, match="x: expected finite values, got NaN"):
        dice(np.array([np.nan, 0.5]), np.array([1, 0]))
    with pytest.raises(ValueError, match=r"x: expected values in \[0, 1\], got values in \[0.5, 1.5\]"):
        iou(np.array([1.5, 0.5]), np.array([1, 0]))
    with pytest.raises(ValueError, match=r"y: expected a binary mask \(values 0 and 1 only\)"):
        dice(x, np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="y: expected finite values, got NaN"):
        sensitivity(x, np.array([[np.nan, 0], [1, 0]]))
    with pytest.raises(ValueError, match=r"x: expected a binary mask"):
        specificity(x, y, threshold=None)
    with pytest.raises(ValueError, match=r"threshold: expected a number in \[0, 1\], got 2"):
        dice(x, y, threshold=2)
    with pytest.raises(TypeError, match="threshold: expected a real number"):
        dice(x, y, threshold="0.5")
    with pytest.raises(ValueError, match=r"reduction: expected one of \('mean', 'sum', 'none'\), got 'avg'"):
        balanced_accuracy(x, y, reduction="avg")
    with pytest.raises(ValueError, match="x: expected at least one pixel"):
        dice(np.zeros((2, 1, 0)), np.zeros((2, 1, 0)))
    with pytest.raises(ValueError, match="x: expected shape"):
        dice(np.array(0.5), np.array(1.0))
    with pytest.raises(ValueError, match=r"y: expected values in \[0, 1\]"):
        soft_dice(x, np.full((2, 2), -0.1))
    with pytest.raises(ValueError, match=r"y: expected values in \[0, 1\]"):
        bdice(x, np.full((2, 2), 2.0))
    with pytest.raises(ValueError, match="thresholds: expected at least one level"):
        bdice(x, y, thresholds=[])
    with pytest.raises(ValueError, match=r"thresholds: expected a number in \[0, 1\], got 1.5"):
        bdice(x, y, thresholds=[0.5, 1.5])
    with pytest.raises(ValueError, match=r"thresholds: expected a 1-d sequence of levels, got shape \(\)"):
        bdice(x, y, thresholds=np.array(0.5))
    with pytest.raises(TypeError, match="thresholds: expected a sequence"):
        bdice(x, y, thresholds=0.5)
    with pytest.raises(ValueError, match="n_bins: expected an int >= 1, got 0"):
        ece(x, y, n_bins=0)
    with pytest.raises(TypeError, match="n_bins: expected an int, got float"):
        ece(x, y, n_bins=10.0)
    with pytest.raises(ValueError, match=r"mode: expected one of \('binary', 'top-label'\)"):
        ece(x, y, mode="multiclass")
    with pytest.raises(ValueError, match="x: expected shape .* C >= 2 classes"):
        ece(x, y, mode="top-label")
    with pytest.raises(ValueError, match="x: expected class probabilities summing to 1"):
        ece(np.full((1, 2, 3), 0.2), np.zeros((1, 2, 3)), mode="top-label")
    with pytest.raises(ValueError, match="x: expected finite values, got NaN"):
        ece(np.array([np.nan]), np.array([1.0]))
    with pytest.raises(TypeError, match="x: expected a numeric or boolean array"):
        dice(np.array(["a"]), np.array(["b"]))


def test_docstring_examples():
    result = doctest.testmod(metrics, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 10
    assert math.isclose(EXPECTED6[dice], 2 / 3)
