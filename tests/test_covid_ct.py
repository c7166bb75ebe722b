"""Tests of :mod:`softseg.data.covid_ct` on generated UESTC COVID-19 files in both layouts.

PNG fixture ([MC], DATASETS.md §7): ``part1/image/case_{1,41,56}/{0,7}.png`` with labels, slices
20×28 (non-square); slice 7 of case 1 has no lesion and must be skipped; a stray file is ignored.
NIfTI fixture: ``part1|part2/image/case_<i>.nii.gz`` volumes 20×28×3 with one lesion-free slice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from softseg.data.covid_ct import CovidLesionSlices

from conftest import write_image

H, W = 20, 28


@pytest.fixture()
def png_root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for case in (1, 41, 56):
        for s in (0, 7):
            write_image(tmp_path / f"part1/image/case_{case}/{s}.png", rng.integers(0, 255, (H, W), dtype=np.uint8))
            lab = np.zeros((H, W), np.uint8)
            if not (case == 1 and s == 7):
                lab[3:9, 4:15] = 255
            write_image(tmp_path / f"part1/label/case_{case}/{s}.png", lab)
    (tmp_path / "part1/image/case_1/Thumbs.db").write_bytes(b"x")
    return tmp_path


@pytest.fixture()
def nifti_root(tmp_path: Path) -> Path:
    nib = pytest.importorskip("nibabel")
    rng = np.random.default_rng(1)
    for part, cases in ((1, (1, 41)), (2, (1, 45))):
        for case in cases:
            img = rng.uniform(-1000, 400, (H, W, 3)).astype(np.float32)
            lab = np.zeros((H, W, 3), np.uint8)
            lab[2:6, 5:9, 0] = 1
            lab[10:12, 1:3, 2] = 1  # slice 1 has no lesion
            for sub, arr in (("image", img), ("label", lab)):
                (tmp_path / f"part{part}/{sub}").mkdir(parents=True, exist_ok=True)
                nib.save(nib.Nifti1Image(arr, np.eye(4)), str(tmp_path / f"part{part}/{sub}/case_{case}.nii.gz"))
    (tmp_path / "part1/image/readme.txt").write_text("ignored")
    return tmp_path


@pytest.mark.parametrize("split, n", [("train", 1), ("val", 2), ("test", 2), ("all", 5)])
def test_png_splits_and_lesion_filter(png_root, split, n):
    ds = CovidLesionSlices(png_root, part=1, split=split)
    assert ds.layout == "png" and len(ds) == n
    if split in ("train", "all"):
        assert any(s.endswith("case_1/7.png") for s in ds.skipped)


def test_png_values_and_shapes(png_root):
    x, y = CovidLesionSlices(png_root, split="val")[0]
    assert x.shape == (1, H, W) and x.dtype == torch.float32
    assert -0.5 <= float(x.min()) and float(x.max()) <= 0.5
    assert y.shape == (H, W) and y.dtype == torch.int64 and set(torch.unique(y).tolist()) == {0, 1}
    assert int(y[5, 10]) == 1 and int(y[15, 20]) == 0


def test_png_keep_empty_slices_and_resize(png_root):
    ds = CovidLesionSlices(png_root, split="train", lesion_only=False, size=(10, 14))
    assert len(ds) == 2 and ds.skipped == []
    x, y = ds[1]
    assert x.shape == (1, 10, 14) and int(y.sum()) == 0


def test_png_missing_label_is_named(png_root):
    (png_root / "part1/label/case_41/7.png").unlink()
    with pytest.raises(ValueError, match=r"expected its label .*case_41/7\.png"):
        CovidLesionSlices(png_root, split="val")


def test_nifti_layout(nifti_root):
    ds = CovidLesionSlices(nifti_root, part=1, split="train")
    assert ds.layout == "nifti" and len(ds) == 2  # slices 0 and 2 of case 1
    assert ds.skipped == [f"{nifti_root}/part1/image/case_1.nii.gz[slice 1]"]
    x, y = ds[0]
    assert x.shape == (1, H, W) and y.shape == (H, W)
    assert int(y[3, 6]) == 1 and int(y.sum()) == 16
    part2 = CovidLesionSlices(nifti_root, part=2, split="test", window=(-650, 1500))
    assert len(part2) == 2
    x2, _ = part2[1]
    assert -0.5 <= float(x2.min()) and float(x2.max()) <= 0.5


def test_nifti_missing_label(nifti_root):
    (nifti_root / "part1/label/case_41.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"case_41\.nii\.gz: expected its label"):
        CovidLesionSlices(nifti_root, split="val")


@pytest.mark.parametrize("kwargs, match", [
    ({"part": 3}, "part: expected one of"),
    ({"split": "dev"}, "split: expected one of"),
    ({"layout": "dicom"}, "layout: expected one of"),
    ({"size": (5,)}, "size: expected a pair"),
    ({"window": (0, 0)}, "window: expected"),
    ({"part": 2}, "got no folder"),
])
def test_bad_options(png_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CovidLesionSlices(png_root, **kwargs)


def test_empty_selection_and_missing_root(png_root, tmp_path):
    with pytest.raises(ValueError, match="expected lesion slices of cases 100-200"):
        CovidLesionSlices(png_root, splits={"train": (100, 200)})
    with pytest.raises(ValueError, match="root: expected an existing folder"):
        CovidLesionSlices(tmp_path / "missing")
