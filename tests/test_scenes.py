"""Tests of :mod:`softseg.data.scenes` (synthetic imbalanced multi-class scenes)."""

from __future__ import annotations

import pytest
import torch

from softseg.data.scenes import ImbalancedScenes, label_counts


def test_shapes_dtypes_and_range():
    ds = ImbalancedScenes(6, size=(20, 28), common=2, rare=3, seed=1)
    x, y = ds[0]
    assert x.shape == (3, 20, 28) and x.dtype == torch.float32
    assert y.shape == (20, 28) and y.dtype == torch.int64
    assert ds.num_classes == 6 and int(ds.labels.min()) >= 0 and int(ds.labels.max()) <= 5
    assert len(ds) == 6 and torch.equal(ds[-1][1], ds[5][1])


def test_seeded_and_item_independent():
    a, b = ImbalancedScenes(4, seed=3), ImbalancedScenes(4, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    c = ImbalancedScenes(6, seed=3)  # item i depends on (seed, i) only
    assert torch.equal(c.labels[:4], a.labels)
    assert not torch.equal(ImbalancedScenes(4, seed=4).labels, a.labels)


def test_imbalance_background_common_rare():
    ds = ImbalancedScenes(32, seed=0)
    counts = label_counts(ds, ds.num_classes).double()
    freq = counts / counts.sum()
    assert freq[0] > 0.4  # a large background
    assert (freq[1:3] > 4 * freq[3:].max()).all()  # common classes far more frequent than rare ones
    assert (freq[3:] > 0).all() and (freq[3:] < 0.02).all()


@pytest.mark.parametrize("rare_blobs", [(0, 0), (0, 1)])
def test_absent_rare_classes_allowed(rare_blobs):
    ds = ImbalancedScenes(8, size=16, rare_blobs=rare_blobs, seed=2)
    counts = label_counts(ds, ds.num_classes)
    if rare_blobs == (0, 0):
        assert (counts[3:] == 0).all()
    assert counts.sum() == 8 * 16 * 16


def test_noise_free_image_is_class_colour():
    ds = ImbalancedScenes(2, size=(12, 14), noise=0.0, seed=5)
    x, y = ds[1]
    colours = torch.as_tensor(ds.colours, dtype=torch.float32)
    torch.testing.assert_close(x, colours[y].permute(2, 0, 1))


def test_label_counts_on_generic_dataset_and_iterable():
    ds = ImbalancedScenes(3, size=10, seed=0)
    pairs = [ds[i] for i in range(3)]
    torch.testing.assert_close(label_counts(pairs, 5), label_counts(ds, 5))
    with pytest.raises(ValueError, match=r"labels: expected values in \[0, 2\]"):
        label_counts(ds, 3)
    with pytest.raises(ValueError, match="labels: expected integer class indices"):
        label_counts([(None, torch.zeros(2, 2))], 2)


@pytest.mark.parametrize("kwargs, err, match", [
    ({"n": 0}, ValueError, "n: expected an integer >= 1"),
    ({"n": 2.0}, TypeError, "n: expected an integer"),
    ({"size": (3, 10)}, ValueError, r"size\[0\] \(H\)"),
    ({"size": "big"}, TypeError, "size: expected an integer or a pair"),
    ({"common": 0, "rare": 0}, ValueError, "at least one foreground class"),
    ({"rare_radius": (3.0, 1.0)}, ValueError, "rare_radius: expected"),
    ({"noise": -0.1}, ValueError, "noise"),
    ({"rare_contrast": 0.0}, ValueError, "rare_contrast"),
])
def test_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        ImbalancedScenes(**kwargs)


def test_index_out_of_range():
    with pytest.raises(IndexError, match="index: expected"):
        ImbalancedScenes(2, size=8)[2]
