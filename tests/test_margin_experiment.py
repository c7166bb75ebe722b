"""Tests of :mod:`softseg.experiments.margin_calibration` (tiny sizes; the fast preset runs in the book)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from softseg import results
from softseg.data.scenes import ImbalancedScenes
from softseg.experiments import margin_calibration as mc
from softseg.losses import CalibratedLogLoss, optimal_margins
from softseg.reproduce import registry

from conftest import write_image

TINY = {"size": (16, 20), "n_train": 6, "n_val": 3, "n_test": 3, "width": 2, "depth": 1, "norm": "batch",
        "pretrain_epochs": 1, "finetune_epochs": 1, "batch_size": 3, "lr": 1e-2, "device": "cpu", "num_workers": 0,
        "scene": {"rare_contrast": 1.0}}


def test_registered():
    assert "margin-calibration" in registry()


def test_confusion_matrix_matches_loops():
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randint(0, 4, (2, 5, 6), generator=gen), torch.randint(0, 4, (2, 5, 6), generator=gen)
    conf = mc.confusion_matrix(pred, target, 4)
    ref = torch.zeros(4, 4, dtype=torch.int64)
    for t, p in zip(target.flatten().tolist(), pred.flatten().tolist()):
        ref[t, p] += 1
    assert torch.equal(conf, ref)
    with pytest.raises(ValueError, match=r"pred: expected class indices in \[0, 2\]"):
        mc.confusion_matrix(pred, target.clamp(max=2), 3)
    with pytest.raises(ValueError, match="expected equal shapes"):
        mc.confusion_matrix(pred, target[0], 4)


def test_scores_from_confusion_edge_cases():
    conf = torch.tensor([[5, 1, 0], [1, 3, 0], [0, 0, 0]])  # class 2 absent and never predicted: IoU 1
    s = mc.scores_from_confusion(conf)
    torch.testing.assert_close(s["iou"], torch.tensor([5 / 7, 3 / 5, 1.0], dtype=torch.float64))
    assert s["pixel_accuracy"] == pytest.approx(0.8)
    assert s["miou"] == pytest.approx((3 / 5 + 1) / 2)  # foreground classes only
    binary = mc.scores_from_confusion(torch.tensor([[8, 2], [1, 4]]))
    assert binary["miou"] == pytest.approx(4 / 7)  # the IoU of class 1


@pytest.mark.parametrize("method, kind", [("Cross-entropy", nn.CrossEntropyLoss), ("Calibrated, no offsets", CalibratedLogLoss),
                                          ("Ours (offsets)", CalibratedLogLoss), ("Offsets, sides swapped", CalibratedLogLoss)])
def test_make_loss(method, kind):
    counts = torch.tensor([900, 90, 10])
    loss = mc.make_loss(method, counts, tau=2.0, nu=1.0)
    assert isinstance(loss, kind)
    if method == "Ours (offsets)":
        torch.testing.assert_close(loss.rho_0k, optimal_margins(counts + 1, tau=2.0)[0])
    if method == "Offsets, sides swapped":
        torch.testing.assert_close(loss.rho_k0, optimal_margins(counts + 1, tau=2.0)[0])


def test_make_loss_errors():
    with pytest.raises(ValueError, match="method: expected one of"):
        mc.make_loss("Dice")
    with pytest.raises(ValueError, match="counts: expected the"):
        mc.make_loss("Ours (offsets)")


class _Oracle(nn.Module):
    """Scores = 5 * one-hot of the labels hidden in the image's first channel."""

    def forward(self, x):
        return 5.0 * nn.functional.one_hot(x[:, 0].long(), 3).permute(0, 3, 1, 2).float()


def test_evaluate_split_perfect_model():
    labels = torch.randint(0, 3, (4, 6, 7), generator=torch.Generator().manual_seed(1))
    data = [(lab[None].float(), lab) for lab in labels]
    res = mc.evaluate_split(_Oracle(), data, 3, batch_size=3, loss=CalibratedLogLoss(0.0))
    torch.testing.assert_close(res["iou"], torch.ones(3, dtype=torch.float64))
    assert res["pixel_accuracy"] == 1.0 and res["loss"] < 0.2


def test_run_task_tiny_and_rows_validate():
    splits = mc.synthetic_splits(TINY, seed=0)
    res = mc.run_task(splits, 5, cfg=TINY, seed=0, settings=((1.0, 1.0), (10.0, 0.1)))
    assert res["selected"] in ((1.0, 1.0), (10.0, 0.1))
    expected = {mc.PRETRAINED, "Cross-entropy", "Calibrated, no offsets", "tau=1, nu=1", "tau=10, nu=0.1",
                "Ours (offsets)", "Offsets, sides swapped"}
    assert set(res["test"]) == expected and set(res["val"]) == expected
    assert res["counts"].sum() == 6 * 16 * 20
    rows = mc.synthetic_rows(res)
    results.validate_results({"name": "x", "preset": "fast", "device": "cpu", "created": "2026-01-01T00:00:00+00:00",
                              "command": "c", "rows": rows})
    assert all(r.get("tolerance") is None for r in rows)  # synthetic: never compared with a tolerance
    quoted = {(r["table"], r["row"], r["column"]): r["paper"] for r in rows}
    # synthetic Table 1 cells never share a key with the real-data cells of run(..., data=PATH)
    assert not any(r["table"] in ("Table 1", "Table 3", "Table 4") for r in rows)
    assert quoted[("Table 1 (synthetic stand-in)", "tau=10, nu=0.1", "Robotic mIoU")] == 72.1
    assert quoted[("Table 3 (synthetic stand-in)", mc.PRETRAINED, "Multi-class mIoU")] is None  # not a paper row
    assert quoted[("Table 3 (synthetic stand-in)", "Cross-entropy", "Multi-class mIoU")] == 66.2
    assert quoted[("Table 4 (synthetic stand-in)", "Ours (offsets)", "rare 1 (Claspers)")] == 61.1


def test_run_task_repeatable():
    a = mc.run_task(mc.synthetic_splits(TINY, 1), 5, cfg=TINY, seed=1, settings=((1.0, 1.0),), swapped=False)
    b = mc.run_task(mc.synthetic_splits(TINY, 1), 5, cfg=TINY, seed=1, settings=((1.0, 1.0),), swapped=False)
    for key in a["test"]:
        assert torch.equal(a["test"][key]["confusion"], b["test"][key]["confusion"])


def test_run_task_needs_three_splits():
    with pytest.raises(ValueError, match="splits: expected keys"):
        mc.run_task({"train": ImbalancedScenes(2, size=8)}, 5, cfg=TINY)
    splits = {k: ImbalancedScenes(2, size=8) for k in ("train", "val", "test")}
    with pytest.raises(ValueError, match="settings: expected at least one"):
        mc.run_task(splits, 5, cfg=TINY, settings=())


def test_paper_values_consistent():
    # the paper's multi-class mIoU is the mean of its four part IoUs (Table 3 vs Table 4)
    for method in ("Cross-entropy", "Ours (offsets)"):
        assert np.mean(list(mc.PAPER_TABLE4[method].values())) == pytest.approx(
            mc.PAPER_TABLE3[method]["Multi-class mIoU"], abs=0.05)
    assert list(mc.PAPER_TABLE1) == list(mc.TABLE1_SETTINGS)


@pytest.fixture()
def real_layouts(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    base = tmp_path / "robotic" / "instrument_dataset_1"
    for f in (0, 1, 150, 175):
        write_image(base / "left_frames" / f"frame{f:03d}.png", rng.integers(0, 255, (16, 20, 3), dtype=np.uint8))
        mask = np.zeros((16, 20), np.uint8)
        mask[2:9, 3:12], mask[9:11, 3:12], mask[11:13, 3:6] = 10, 20, 30
        write_image(base / "ground_truth" / "Prograsp_Forceps_labels" / f"frame{f:03d}.png", mask)
    for case in (1, 2, 41, 56):
        for s in (0, 1):
            write_image(tmp_path / f"covid/part1/image/case_{case}/{s}.png", rng.integers(0, 255, (16, 20), dtype=np.uint8))
            lab = np.zeros((16, 20), np.uint8)
            lab[4:9, 5:12] = 255
            write_image(tmp_path / f"covid/part1/label/case_{case}/{s}.png", lab)
    return tmp_path


def test_full_path_on_generated_data(real_layouts, monkeypatch):
    monkeypatch.setitem(mc.PRESETS, "full", {**TINY, "batch_size": 2})
    monkeypatch.setattr(mc, "FULL_DATA_SIZES", {"robotic": (16, 20), "covid": (16, 20)})
    rows = mc.run("full", data=real_layouts)
    tables = {r["table"] for r in rows}
    assert {"Table 1", "Table 2", "Table 3", "Table 4"} <= tables
    columns = {r["column"] for r in rows}
    assert {"Binary IoU", "Multi-class mIoU", "Part 1 IoU", "COVID-19 IoU", "Robotic mIoU", "Shaft"} <= columns
    results.validate_results({"name": "x", "preset": "full", "device": "cpu", "created": "2026-01-01T00:00:00+00:00",
                              "command": "c", "rows": rows})


def test_data_errors(tmp_path):
    with pytest.raises(ValueError, match="data: expected a folder"):
        mc.run("full", data=tmp_path / "missing")
    with pytest.raises(ValueError, match="found neither"):
        mc.run("full", data=tmp_path)
    with pytest.raises(ValueError, match="fast preset runs on the synthetic scenes"):
        mc.run("fast", data=tmp_path)
    with pytest.raises(ValueError, match="preset: expected one of"):
        mc.run("medium")
