"""Tests of :mod:`softseg.data.raters`: label kinds from several raters and the synthetic set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softseg import metrics
from softseg.config import build_datasets
from softseg.data.raters import HARD_KINDS, LABEL_KINDS, SyntheticRaters, fuse_target

RATERS = np.array([[[1, 1, 0, 0]], [[1, 0, 0, 0]], [[1, 1, 1, 0]]], dtype=np.uint8)  # (3, 1, 4)


@pytest.mark.parametrize(("kind", "expected"), [
    ("mean", [1, 2 / 3, 1 / 3, 0]),
    ("majority", [1, 1, 0, 0]),  # 2 of 3 votes
    # Dice with the majority (1,1,0,0): rater 1: 1, rater 2: 2/3, rater 3: 4/5
    ("weighted", [1, (1 + 0.8) / (1 + 2 / 3 + 0.8), 0.8 / (1 + 2 / 3 + 0.8), 0]),
    ("ls", [0.95, 0.95, 0.05, 0.05]),  # eps = 0.1 on the majority
])
def test_fuse_target_values(kind, expected):
    np.testing.assert_allclose(fuse_target(RATERS, kind)[0], expected, rtol=1e-6)


def test_fuse_target_bls_band_only():
    masks = np.zeros((3, 9, 9), np.uint8)
    masks[:, 2:7, 2:7] = 1
    out = fuse_target(masks, "bls", ls_eps=0.2, bls_width=1)
    assert out[4, 4] == 1.0 and out[0, 0] == 0.0  # far from the boundary: unchanged
    assert out[2, 2] == pytest.approx(0.9) and out[1, 1] == pytest.approx(0.1)  # in the band


def test_fuse_target_random_is_one_rater_and_seeded():
    outs = {tuple(fuse_target(RATERS, "random", rng=s)[0].tolist()) for s in range(40)}
    assert outs == {tuple(r[0].astype(float).tolist()) for r in RATERS}
    assert np.array_equal(fuse_target(RATERS, "random", rng=3), fuse_target(RATERS, "random", rng=3))


def test_fuse_target_edge_cases():
    empty = np.zeros((4, 5, 6), np.uint8)
    for kind in LABEL_KINDS:
        out = fuse_target(empty, kind)
        assert out.shape == (5, 6) and out.dtype == np.float32
    assert fuse_target(empty, "mean").max() == 0.0
    one = RATERS[:1]
    for kind in ("mean", "majority", "weighted", "random"):
        np.testing.assert_array_equal(fuse_target(one, kind), one[0].astype(np.float32))
    tie = np.array([[[1, 0]], [[0, 1]]], np.uint8)  # an even number of raters: ties -> background
    np.testing.assert_array_equal(fuse_target(tie, "majority"), [[0, 0]])


@settings(deadline=None, max_examples=40)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 5), st.integers(1, 5)),
                  elements=st.integers(0, 1)), st.sampled_from(LABEL_KINDS))
def test_fuse_target_in_unit_interval_and_hard_kinds_binary(masks, kind):
    out = fuse_target(masks, kind, rng=0)
    assert out.shape == masks.shape[1:] and (out >= 0).all() and (out <= 1).all()
    if kind in HARD_KINDS:
        assert set(np.unique(out)) <= {0.0, 1.0}
    if kind == "mean":  # the mean lies between the smallest and largest vote
        assert (out >= masks.min(0)).all() and (out <= masks.max(0)).all()


@pytest.mark.parametrize(("args", "kw", "error", "match"), [
    ((RATERS, "soft"), {}, ValueError, "kind: expected one of"),
    ((RATERS[0], "mean"), {}, ValueError, r"masks: expected shape \(R, H, W\)"),
    ((np.zeros((0, 2, 2)), "mean"), {}, ValueError, r"masks: expected shape \(R, H, W\) with R, H, W >= 1"),
    ((RATERS * 2, "mean"), {}, ValueError, "binary"),
    ((RATERS.tolist(), "mean"), {}, TypeError, "masks: expected a numpy.ndarray"),
    ((RATERS, "ls"), {"ls_eps": 1.5}, ValueError, r"ls_eps: expected a number in \[0, 1\]"),
    ((RATERS, "bls"), {"bls_width": 0}, ValueError, "bls_width: expected an integer >= 1"),
])
def test_fuse_target_errors(args, kw, error, match):
    with pytest.raises(error, match=match):
        fuse_target(*args, **kw)


def test_synthetic_is_pure_function_of_seed_and_index():
    a, b = SyntheticRaters(6, size=(20, 28), raters=4, seed=5), SyntheticRaters(6, size=(20, 28), raters=4, seed=5)
    for i in (0, 5, -1):
        ia, ma = a.case(i)
        ib, mb = b.case(i)
        assert np.array_equal(ia, ib) and np.array_equal(ma, mb)
    assert not np.array_equal(a.case(0)[0], SyntheticRaters(6, size=(20, 28), raters=4, seed=6).case(0)[0])
    image, masks = a.case(1)
    assert image.shape == (1, 20, 28) and image.dtype == np.float32
    assert masks.shape == (4, 20, 28) and masks.dtype == np.uint8


def test_synthetic_raters_disagree_at_edges_only():
    ds = SyntheticRaters(16, size=48, raters=5, seed=0)
    batch = ds.stack()
    mean = batch["mean"]
    soft = (mean > 0) & (mean < 1)
    assert 0.02 < float(soft.float().mean()) < 0.3  # disagreement on a band, not everywhere
    # every rater agrees well with the majority, but not perfectly (as QUBIQ's Table 1)
    per_rater = np.mean([[metrics.dice(r.astype(np.float64), mv[0].numpy(), threshold=None) for r in m]
                         for m, mv in zip(batch["raters"], batch["majority"])])
    assert 0.7 < per_rater < 0.97
    # the generous raters (large style bias) mark more pixels than the tight ones
    sizes = np.mean([m.reshape(5, -1).sum(1) for m in batch["raters"]], axis=0)
    assert sizes[-1] > sizes[0]


@pytest.mark.parametrize("label", LABEL_KINDS)
def test_synthetic_items(label):
    ds = SyntheticRaters(4, size=(16, 20), raters=3, label=label)
    image, target = ds[2]
    assert image.shape == (1, 16, 20) and target.shape == (1, 16, 20)
    assert target.dtype == torch.float32 and 0 <= float(target.min()) and float(target.max()) <= 1


def test_random_label_follows_torch_seed():
    ds = SyntheticRaters(2, size=16, raters=7, label="random")
    torch.manual_seed(0)
    first = [ds[0][1] for _ in range(5)]
    torch.manual_seed(0)
    again = [ds[0][1] for _ in range(5)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert len({f.sum().item() for f in first}) > 1  # a new rater at each access


def test_usable_from_training_config():
    train, val = build_datasets({"name": "softseg.data.raters:SyntheticRaters", "size": 16, "raters": 3,
                                 "label": "weighted", "train": {"n": 4, "seed": 0}, "val": {"n": 2, "seed": 1}})
    assert len(train) == 4 and len(val) == 2 and train[0][0].shape == (1, 16, 16)


@pytest.mark.parametrize(("kw", "error", "match"), [
    (dict(n=0), ValueError, "n: expected an integer >= 1"),
    (dict(size=(4, 16)), ValueError, "size: expected an integer >= 8"),
    (dict(size="big"), TypeError, "size: expected an int or a pair"),
    (dict(raters=0), ValueError, "raters: expected an integer >= 1"),
    (dict(blur=0.0), ValueError, "blur: expected a finite number > 0"),
    (dict(noise=-1.0), ValueError, "noise: expected a finite number >= 0"),
    (dict(label="soft"), ValueError, "label: expected one of"),
])
def test_synthetic_errors(kw, error, match):
    with pytest.raises(error, match=match):
        SyntheticRaters(**({"n": 2} | kw))


def test_index_errors():
    ds = SyntheticRaters(2, size=16)
    with pytest.raises(IndexError, match=r"index: expected an integer in \[-2, 1\]"):
        ds[2]
    with pytest.raises(TypeError, match="index: expected an integer"):
        ds[0.5]


def test_single_rater_has_no_style_bias():
    ds = SyntheticRaters(2, size=16, raters=1, label="mean")
    assert ds.style_bias.tolist() == [0.0]
    assert set(ds[0][1].unique().tolist()) <= {0.0, 1.0}
