"""Tests of :mod:`softseg.data.qubiq` on small files written here in QUBIQ's on-disk format.

Layout and conventions from ``shared/DATASETS.md`` §3: ``<dataset>/Training/caseNN/image.nii.gz``
and ``task<TT>_seg<RR>.nii.gz``; arrays are compared with what SimpleITK would return, i.e. the
NIfTI data with its axes reversed. Sizes are non-square (20 x 24) to catch H/W swaps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from softseg.data import qubiq
from softseg.data.raters import LABEL_KINDS

nib = pytest.importorskip("nibabel")
H, W = 20, 24


def write_nifti(path: Path, arr_sitk: np.ndarray) -> None:
    """Write an array given in SimpleITK order ((C,) H, W) as NIfTI (x, y[, c])."""
    nib.save(nib.Nifti1Image(np.ascontiguousarray(arr_sitk.T), np.eye(4)), str(path))


def disk(h, w, cy, cx, r):
    yy, xx = np.mgrid[:h, :w]
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.uint8)


@pytest.fixture()
def qubiq_root(tmp_path: Path) -> dict:
    """brain-growth: 3 cases x 7 raters; brain-tumor: 1 case, 4-channel image, 3 tasks x 3
    raters; prostate: 1 case with 5 raters for task01 (one subject has 5 in QUBIQ) and a stray
    task02 file; plus files that must be skipped."""
    rng = np.random.default_rng(0)
    truth = {}
    for split, names in (("Training", ["case01", "case02"]), ("Validation", ["case10"])):
        for name in names:
            d = tmp_path / "brain-growth" / split / name
            d.mkdir(parents=True)
            image = rng.uniform(-100, 300, (H, W)).astype(np.float32)
            write_nifti(d / "image.nii.gz", image)
            masks = np.stack([disk(H, W, 9, 11, 4 + r % 3) for r in range(7)])
            for r in range(7):
                write_nifti(d / f"task01_seg{r + 1:02d}.nii.gz", masks[r])
            (d / "preview.png").write_bytes(b"not an image")  # must be skipped
            truth[name] = (image, masks)
    (tmp_path / "brain-growth" / "Training" / ".DS_Store").write_bytes(b"\0")  # must be skipped
    d = tmp_path / "brain-tumor" / "Training" / "case01"
    d.mkdir(parents=True)
    write_nifti(d / "image.nii.gz", rng.uniform(0, 1, (4, H, W)).astype(np.float32))
    for t in (1, 2, 3):
        for r in range(3):
            write_nifti(d / f"task{t:02d}_seg{r + 1:02d}.nii.gz", disk(H, W, 10, 12, 2 + t + r))
    d = tmp_path / "prostate" / "Training" / "case01"
    d.mkdir(parents=True)
    write_nifti(d / "image.nii.gz", rng.uniform(0, 1, (H, W)).astype(np.float32))
    for r in range(5):
        write_nifti(d / f"task01_seg{r + 1:02d}.nii.gz", disk(H, W, 5, 6, 3))
    write_nifti(d / "task02_seg01.nii.gz", disk(H, W, 5, 6, 1))
    return {"root": tmp_path, "truth": truth}


def test_find_cases_natural_order_and_skips(qubiq_root):
    cases = qubiq.find_cases(qubiq_root["root"], "brain-growth")
    assert [c.name for c in cases] == ["case01", "case02", "case10"]
    # root may also be the data set folder itself
    assert qubiq.find_cases(qubiq_root["root"] / "brain-growth", "brain-growth") == cases
    assert [c.parent.name for c in cases] == ["Training", "Training", "Validation"]


def test_find_cases_without_split_level(tmp_path):
    for n in ("case1-1", "case13-2", "case2-1"):
        (tmp_path / "pancreas" / n).mkdir(parents=True)
    assert [c.name for c in qubiq.find_cases(tmp_path, "pancreas")] == ["case1-1", "case2-1", "case13-2"]


def test_load_case_matches_written_arrays(qubiq_root):
    image, masks = qubiq_root["truth"]["case02"]
    got_image, got_masks = qubiq.load_case(qubiq_root["root"] / "brain-growth" / "Training" / "case02")
    assert got_image.shape == (1, H, W) and got_image.dtype == np.float32
    expected = (image - image.min()) / (image.max() - image.min())
    np.testing.assert_allclose(got_image[0], expected, rtol=0, atol=1e-6)
    assert got_masks.shape == (7, H, W) and got_masks.dtype == np.uint8
    np.testing.assert_array_equal(got_masks, masks)


def test_load_case_keeps_nibabel_order_when_asked(qubiq_root):
    _, masks = qubiq.load_case(qubiq_root["root"] / "brain-growth" / "Training" / "case01", reverse_axes=False)
    assert masks.shape == (7, W, H)


def test_brain_tumor_channels_and_tasks(qubiq_root):
    d = qubiq_root["root"] / "brain-tumor" / "Training" / "case01"
    for t in (1, 2, 3):
        image, masks = qubiq.load_case(d, t)
        assert image.shape == (4, H, W) and masks.shape == (3, H, W)
        assert masks[0].sum() == disk(H, W, 10, 12, 2 + t).sum()
        assert image.min() == 0.0 and image.max() == 1.0


def test_prostate_five_raters_and_task_files_not_mixed(qubiq_root):
    d = qubiq_root["root"] / "prostate" / "Training" / "case01"
    assert qubiq.load_case(d, 1)[1].shape[0] == 5
    assert qubiq.load_case(d, 2)[1].shape[0] == 1


def test_png_layout(tmp_path):
    from PIL import Image

    d = tmp_path / "kidney" / "Training" / "case01"
    d.mkdir(parents=True)
    image = (np.arange(H * W).reshape(H, W) % 256).astype(np.uint8)
    Image.fromarray(image).save(d / "image.png")
    for r in range(3):
        Image.fromarray(disk(H, W, 8, 9, 3 + r) * 255).save(d / f"task01_seg{r + 1:02d}.png")
    (d / "task01_seg01.nii.gz").write_bytes(b"")  # other extension: skipped
    got_image, got_masks = qubiq.load_case(d, 1, ext=".png")
    assert got_image.shape == (1, H, W) and got_masks.shape == (3, H, W)
    np.testing.assert_array_equal(got_masks[2], disk(H, W, 8, 9, 5))
    rgb = np.stack([image] * 3, -1)
    Image.fromarray(rgb).save(d / "image.png")
    assert qubiq.load_case(d, 1, ext=".png")[0].shape == (3, H, W)


@pytest.mark.parametrize("label", LABEL_KINDS)
def test_dataset_items(qubiq_root, label):
    ds = qubiq.QubiqDataset(qubiq_root["root"], "brain-growth", 1, label=label, size=(16, 12))
    assert len(ds) == 3 and ds.in_channels == 1
    image, target = ds[0]
    assert image.shape == (1, 16, 12) and target.shape == (1, 16, 12)
    assert image.dtype == torch.float32 and target.dtype == torch.float32
    assert 0 <= float(target.min()) and float(target.max()) <= 1
    if label in ("majority", "random"):
        assert set(target.unique().tolist()) <= {0.0, 1.0}


def test_dataset_native_size_and_stack(qubiq_root):
    ds = qubiq.QubiqDataset(qubiq_root["root"], "brain-growth", label="mean", size=None)
    batch = ds.stack()
    assert batch["image"].shape == (3, 1, H, W) and batch["majority"].shape == (3, 1, H, W)
    truth = qubiq_root["truth"]["case01"][1]
    np.testing.assert_allclose(batch["mean"][0, 0].numpy(), truth.mean(0), atol=1e-6)
    # 7 raters: majority = at least 4 votes
    np.testing.assert_array_equal(batch["majority"][0, 0].numpy(), (truth.sum(0) >= 4).astype(np.float32))


def test_dataset_resize_keeps_masks_binary(qubiq_root):
    ds = qubiq.QubiqDataset(qubiq_root["root"], "brain-growth", label="majority", size=40)
    image, masks = ds.case(0)
    assert image.shape == (1, 40, 40) and set(np.unique(masks)) <= {0, 1}


def test_folds(qubiq_root):
    assert qubiq.case_folds(7, 3) == [[0, 1], [2, 3], [4, 5, 6]]
    val = qubiq.QubiqDataset(qubiq_root["root"], "brain-growth", split="val", fold=2, n_folds=3, size=None)
    train = qubiq.QubiqDataset(qubiq_root["root"], "brain-growth", split="train", fold=2, n_folds=3, size=None)
    assert [c.name for c in val.cases] == ["case10"] and [c.name for c in train.cases] == ["case01", "case02"]


def test_paper_tables():
    assert len(qubiq.QUBIQ_TASKS) == 7
    assert sum(v["tasks"] for v in qubiq.QUBIQ_DATASETS.values()) == 7
    for name, dataset, task in qubiq.QUBIQ_TASKS:
        assert qubiq.PAPER_TABLE1[name]["raters"] == qubiq.QUBIQ_DATASETS[dataset]["raters"]
        assert task <= qubiq.QUBIQ_DATASETS[dataset]["tasks"]


def test_errors(qubiq_root, tmp_path):
    root = qubiq_root["root"]
    with pytest.raises(ValueError, match="expected an existing folder with the QUBIQ layout"):
        qubiq.find_cases(tmp_path / "missing", "kidney")
    with pytest.raises(ValueError, match="expected a folder 'kidney'"):
        qubiq.find_cases(root, "kidney")
    (root / "kidney" / "Training").mkdir(parents=True)
    with pytest.raises(ValueError, match="expected case folders"):
        qubiq.find_cases(root, "kidney")
    case = root / "brain-growth" / "Training" / "case01"
    with pytest.raises(ValueError, match=r"expected rater masks task03_seg01\.nii\.gz"):
        qubiq.load_case(case, 3)
    with pytest.raises(ValueError, match=r"expected the image image\.nii"):
        qubiq.load_case(case, 1, ext=".nii")
    bad = root / "brain-growth" / "Training" / "case03"
    bad.mkdir()
    write_nifti(bad / "image.nii.gz", np.zeros((H, W), np.float32))
    write_nifti(bad / "task01_seg01.nii.gz", np.zeros((H, W + 1), np.uint8))
    with pytest.raises(ValueError, match=r"expected a mask of the image's size \(20, 24\)"):
        qubiq.load_case(bad)
    write_nifti(bad / "image.nii.gz", np.zeros((6, H, W), np.float32))
    with pytest.raises(ValueError, match="expected a 2-D slice"):
        qubiq.load_case(bad)
    with pytest.raises(ValueError, match="task: expected an integer >= 1"):
        qubiq.load_case(case, 0)
    with pytest.raises(ValueError, match="label: expected one of"):
        qubiq.QubiqDataset(root, "brain-growth", label="soft")
    with pytest.raises(ValueError, match="fold: expected an integer in"):
        qubiq.QubiqDataset(root, "prostate", split="val", fold=5, n_folds=1)
    with pytest.raises(ValueError, match="n_folds: expected at most 1"):
        qubiq.QubiqDataset(root, "prostate", split="val", n_folds=5)
    with pytest.raises(TypeError, match="size: expected an int, a pair"):
        qubiq.QubiqDataset(root, "prostate", size="big")


def test_usable_from_training_config(qubiq_root):
    from softseg.config import build_datasets

    train, val = build_datasets({"name": "softseg.data.qubiq:QubiqDataset", "root": str(qubiq_root["root"]),
                                 "dataset": "brain-growth", "task": 1, "label": "weighted", "size": 16,
                                 "n_folds": 3, "train": {"split": "train", "fold": 0},
                                 "val": {"split": "val", "fold": 0}})
    assert len(train) == 2 and len(val) == 1 and train[0][0].shape == (1, 16, 16)


def test_without_nibabel(monkeypatch, qubiq_root, tmp_path):
    """softseg must work on a machine with pillow but no nibabel: PNG cases load, NIfTI ones say why not."""
    import sys

    from PIL import Image

    monkeypatch.setitem(sys.modules, "nibabel", None)  # import nibabel -> ModuleNotFoundError
    with pytest.raises(ValueError, match="reading NIfTI needs nibabel"):
        qubiq.load_case(qubiq_root["root"] / "brain-growth" / "Training" / "case01")
    d = tmp_path / "png" / "kidney" / "Training" / "case01"
    d.mkdir(parents=True)
    Image.fromarray(np.zeros((H, W), np.uint8)).save(d / "image.png")
    Image.fromarray(disk(H, W, 8, 9, 3)).save(d / "task01_seg01.png")  # 0/1 values also work
    ds = qubiq.QubiqDataset(tmp_path / "png", "kidney", ext=".png", size=None, label="majority")
    assert ds[0][1].sum() == disk(H, W, 8, 9, 3).sum()
