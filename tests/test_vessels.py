"""Tests of :mod:`softseg.data.vessels` (synthetic vessel trees, a stand-in for FIVES)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from softseg.data.vessels import SyntheticVesselDataset, render_segments, synthetic_fundus, vessel_tree


def _brute_force(segs, radii, h, w):
    yy, xx = np.mgrid[:h, :w]
    p = np.stack([xx.ravel(), yy.ravel()], -1).astype(float)
    a, b = segs[:, None, :2], segs[:, None, 2:]
    ab = b - a
    t = np.clip(((p[None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)
    d = np.linalg.norm(p[None] - a - t[..., None] * ab, axis=-1)
    return ((d - radii[:, None]).min(0) <= 0).reshape(h, w), np.exp(-(d / radii[:, None]) ** 2).max(0).reshape(h, w)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(40, 48), (48, 40)])
def test_render_matches_brute_force(seed, shape):
    segs, radii = vessel_tree(48, seed=seed)
    mask, prof = render_segments(segs, radii, shape, chunk=5)
    ref_mask, ref_prof = _brute_force(segs, radii, *shape)
    assert mask.shape == shape
    # pixels exactly at distance r may flip with float32 rounding
    assert (mask.numpy() != ref_mask).mean() < 1e-3
    np.testing.assert_allclose(prof.numpy(), ref_prof, atol=2e-4)


def test_render_edge_cases():
    mask, prof = render_segments(np.zeros((0, 4)), np.zeros(0), (5, 6))
    assert not mask.any() and (prof == 0).all()
    mask, _ = render_segments([[2.0, 2.0, 2.0, 2.0]], [0.5], (5, 6))           # a point: one pixel
    assert mask.sum() == 1 and mask[2, 2]
    with pytest.raises(ValueError, match=r"segments: expected shape \(S, 4\)"):
        render_segments(np.zeros((3, 3)), np.ones(3), (5, 5))
    with pytest.raises(ValueError, match="radii: expected positive"):
        render_segments(np.zeros((1, 4)), np.zeros(1), (5, 5))
    with pytest.raises(ValueError, match="weights: expected shape"):
        render_segments(np.zeros((1, 4)), np.ones(1), (5, 5), weights=np.ones(2))


def test_tree_seeded_and_branching():
    a, ra = vessel_tree(64, seed=5)
    b, rb = vessel_tree(64, seed=5)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(np.round(ra, 6))) > 3          # several vessel widths
    assert ra.max() / ra.min() > 2
    c, _ = vessel_tree(64, seed=6)
    assert c.shape != a.shape or not np.array_equal(a, c)
    with pytest.raises(TypeError, match="seed"):
        vessel_tree(64, seed="x")
    with pytest.raises(ValueError, match="size: expected an integer >= 8"):
        vessel_tree(4)


@pytest.mark.parametrize("size", [32, 64, 96])
def test_fundus_image(size):
    img, mask = synthetic_fundus(size, seed=3)
    assert img.shape == (3, size, size) and img.dtype == torch.float32
    assert 0 <= img.min() and img.max() <= 1
    assert mask.dtype == torch.bool and 0.01 < mask.float().mean() < 0.4
    # vessels are darker than the background around them (red channel, inside the FOV)
    assert img[0][mask].mean() < img[0][~mask & (img[0] > 0)].mean()


def test_dataset():
    ds = SyntheticVesselDataset(4, 32, seed=1, target="sauna")
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and y.shape == (1, 32, 32)
    assert ((y[0] > 0) == ds.mask(0)).all()
    x2, _ = SyntheticVesselDataset(4, 32, seed=1, target="mask", cache=False)[0]
    torch.testing.assert_close(x, x2)                                        # same image, any target
    x3, _ = SyntheticVesselDataset(4, 32, seed=2)[0]
    assert not torch.equal(x, x3)
    assert len(ds) == 4 and torch.equal(ds[-1][0], ds[3][0])
    with pytest.raises(IndexError, match="index"):
        ds[4]
    with pytest.raises(ValueError, match="target"):
        SyntheticVesselDataset(4, 32, target="soft")


def test_precompute_threads_give_the_same_images():
    a = SyntheticVesselDataset(6, 32, seed=4).precompute(workers=3)
    b = SyntheticVesselDataset(6, 32, seed=4).precompute(workers=1)
    assert len(a._pairs) == 6
    for i in range(6):
        torch.testing.assert_close(a[i][0], b[i][0], rtol=0, atol=0)
        assert torch.equal(a.mask(i), b.mask(i))
    view = a.with_target("bls")
    assert view._pairs is a._pairs and view[0][1].max() < 1.0 + 1e-6
