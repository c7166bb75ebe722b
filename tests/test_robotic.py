"""Tests of :mod:`softseg.data.robotic` on generated EndoVis 2017 files in the distributed layout.

Fixture (DATASETS.md §7): ``instrument_dataset_1`` with suffixed folders (1-channel masks with
codes 10/20/30/40 and a 3-channel ``Other_labels``), ``instrument_dataset_7`` with unsuffixed
folders; frames 149/150/175 exercise the split; a frame without masks must be skipped. Frames are
24×32 (non-square) RGB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from softseg.data.robotic import EndoVisInstruments

from conftest import write_image

H, W = 24, 32


def _masks(frame: int):
    a = np.zeros((H, W), np.uint8)
    a[2:8, 3:12] = 10   # shaft
    a[8:10, 3:12] = 20  # wrist
    a[10:12, 3:6] = 30  # claspers
    b = np.zeros((H, W), np.uint8)
    b[15:20, 20:30] = 40  # probe (Other)
    b[2:4, 3:5] = 40  # overlaps the shaft: 10 + 40 = 50 > 40 -> background
    return a, b


@pytest.fixture()
def endovis(tmp_path: Path) -> Path:
    root = tmp_path / "training"
    rng = np.random.default_rng(0)
    specs = {1: ("Left_Prograsp_Forceps_labels", "Other_labels"), 7: ("Left_Bipolar_Forceps", "Right_Vessel_Sealer")}
    for ds, (first, second) in specs.items():
        base = root / f"instrument_dataset_{ds}"
        for f in (0, 149, 150, 175):
            write_image(base / "left_frames" / f"frame{f:03d}.png", rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
            a, b = _masks(f)
            write_image(base / "ground_truth" / first / f"frame{f:03d}.png", a)
            second_arr = np.repeat(b[..., None], 3, axis=2) if second == "Other_labels" else b  # 3-channel mask
            write_image(base / "ground_truth" / second / f"frame{f:03d}.png", second_arr)
        # a frame without any mask (a test-set frame): skipped
        write_image(base / "left_frames" / "frame010.png", rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
        (base / "left_frames" / "notes.txt").write_text("not a frame")
    # [MC]'s derived folder is not an instrument
    write_image(root / "instrument_dataset_1" / "ground_truth" / "binary_labels" / "frame000.png", np.zeros((H, W), np.uint8))
    return tmp_path


@pytest.mark.parametrize("split, frames", [("train", {0, 149}), ("val", {150}), ("test", {175})])
def test_splits_by_frame_index(endovis, split, frames):
    ds = EndoVisInstruments(endovis, split=split)
    assert {int(f.stem[5:]) for f, _ in ds.items} == frames
    assert len(ds) == 2 * len(frames)  # two videos


def test_skips_frames_without_masks(endovis):
    ds = EndoVisInstruments(endovis, split="train")
    assert sorted(p.name for p in ds.skipped) == ["frame010.png", "frame010.png"]


def test_parts_labels_follow_mc_rule(endovis):
    ds = EndoVisInstruments(endovis / "training", split="val", task="parts", datasets=[1])
    x, y = ds[0]
    assert x.shape == (3, H, W) and x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1
    assert y.shape == (H, W) and y.dtype == torch.int64
    assert int(y[5, 8]) == 1 and int(y[9, 8]) == 2 and int(y[11, 4]) == 3 and int(y[17, 25]) == 4
    assert int(y[2, 3]) == 0  # overlap 10 + 40 = 50 zeroed
    assert ds.num_classes == 5


def test_binary_and_exclude_other(endovis):
    y = EndoVisInstruments(endovis, split="val", task="binary", datasets=[1])[0][1]
    assert set(torch.unique(y).tolist()) == {0, 1} and int(y[17, 25]) == 1
    y2 = EndoVisInstruments(endovis, split="val", task="binary", datasets=[1], exclude=("Other",))[0][1]
    assert int(y2[17, 25]) == 0 and int(y2[5, 8]) == 1


def test_type_labels_from_folder_names(endovis):
    y1 = EndoVisInstruments(endovis, split="val", task="type", datasets=[1])[0][1]
    assert int(y1[5, 8]) == 2 and int(y1[17, 25]) == 7  # Prograsp_Forceps, Other
    y7 = EndoVisInstruments(endovis, split="val", task="type", datasets=[7])[0][1]
    assert int(y7[5, 8]) == 1 and int(y7[17, 25]) == 4  # Bipolar_Forceps, Vessel_Sealer (unsuffixed folders)


def test_resize_keeps_label_values(endovis):
    x, y = EndoVisInstruments(endovis, split="val", size=(12, 20))[0]
    assert x.shape == (3, 12, 20) and y.shape == (12, 20)
    assert set(torch.unique(y).tolist()) <= {0, 1, 2, 3, 4}


def test_missing_mask_in_one_folder_is_an_error(endovis):
    (endovis / "training/instrument_dataset_7/ground_truth/Right_Vessel_Sealer/frame150.png").unlink()
    with pytest.raises(ValueError, match="expected a mask in every instrument folder, missing"):
        EndoVisInstruments(endovis, split="val")


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "dev"}, "split: expected one of"),
    ({"task": "instances"}, "task: expected one of"),
    ({"size": (0, 4)}, "size: expected a pair"),
    ({"datasets": [5]}, "expected folders instrument_dataset_"),
    ({"splits": {"train": (300, 400)}}, r"expected frames with index in \[300, 400\]"),
])
def test_bad_options(endovis, kwargs, match):
    with pytest.raises(ValueError, match=match):
        EndoVisInstruments(endovis, **kwargs)


def test_wrong_layout(tmp_path):
    with pytest.raises(ValueError, match="root: expected an existing folder"):
        EndoVisInstruments(tmp_path / "nope")
    (tmp_path / "instrument_dataset_1" / "left_frames").mkdir(parents=True)
    with pytest.raises(ValueError, match="got no folder 'ground_truth'"):
        EndoVisInstruments(tmp_path)
