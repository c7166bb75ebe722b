"""Tests of :mod:`softseg.experiments.sauna_fives` (the registered ``sauna-fives`` reproduction),
on tiny settings: synthetic data, and FIVES + DRIVE files written in their real formats."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from softseg import reproduce, results
from softseg.experiments import sauna_fives as sf

from conftest import write_image

TINY = {"size": 32, "n_train": 8, "n_test": 4, "width": 4, "depth": 2, "epochs": 1, "batch_size": 4,
        "lr": 1e-2, "augment": False, "device": "cpu", "num_workers": 0, "threads": 1}


def test_registered():
    rep = reproduce.registry()["sauna-fives"]
    assert rep.run is sf.run and "Table" in rep.description


@pytest.mark.parametrize("preset", ["fast", "full"])
def test_preset_settings(preset):
    s = sf.preset_settings(preset)
    if preset == "full":  # the paper's settings (Sect. 4.1)
        assert (s["size"], s["lr"], s["batch_size"], s["epochs"], s["width"], s["depth"]) == (512, 1e-4, 4, 300, 64, 4)
    with pytest.raises(ValueError, match="preset"):
        sf.preset_settings("medium")


def test_methods_cover_tables():
    assert set(sf.TABLE1_METHODS) == set(sf.PAPER_TABLE1) == set(sf.PAPER_TABLE2)
    assert set(sf.ABLATIONS) == set(sf.PAPER_TABLE3_DELTA)
    assert sf.PAPER_TABLE1["sauna"]["IoU"] == 84.54 and sf.PAPER_TABLE1["sauna"]["Imgs/s"] == 41.67


def test_run_grid_synthetic_rows_valid(tmp_path):
    out = sf.run_grid("fast", methods=["hard", "sauna", "no_gjml"], settings=TINY, progress=False)
    rows = out["rows"]
    assert out["synthetic"] and torch.get_num_threads() >= 1
    results.write_results("sauna-fives", rows, preset="fast", device="cpu", command="test", directory=tmp_path)
    t1 = [r for r in rows if r["table"] == "Table 1"]
    assert {r["column"] for r in t1} == {"IoU", "Dice", "Sens", "Spec", "BA", "Imgs/s"}
    assert all(r["row"].endswith("(synthetic)") and r["paper"] is not None and r["note"] == "sauna-training" for r in t1)
    assert all("tolerance" not in r for r in rows)                  # synthetic: nothing is compared
    t3 = {(r["row"], r["column"]): r for r in rows if r["table"] == "Table 3"}
    delta = t3[(sf.METHODS["no_gjml"][0] + " (synthetic)", "IoU change vs full (pp)")]
    assert delta["paper"] == -0.32 and delta["note"] == "sauna-ablation"
    iou = out["results"]["no_gjml"]["means"]["IoU"] - out["results"]["sauna"]["means"]["IoU"]
    assert delta["ours"] == pytest.approx(iou)
    for ev in out["results"].values():
        assert 0 <= ev["means"]["IoU"] <= 100 and ev["images_per_s"] > 0
        assert ev["outputs"].shape == (4, 1, 32, 32) and ev["masks"].dtype == torch.bool


def test_paper_rows_name_their_architecture():
    """The paper's LS and BLS numbers are its UNet++ rows (Sect. 4.1); ours are UNets."""
    for m in ("ls", "bls"):
        assert "UNet++" in sf.METHODS[m][0]
    for m in ("hard", "sauna"):
        assert "UNet++" not in sf.METHODS[m][0]


def test_seed_study_reuses_known_runs():
    known = sf.run_grid("fast", seed=0, methods=["hard", "sauna"], settings=TINY, progress=False)["results"]
    st = sf.seed_study("fast", seeds=(0, 1), methods=("hard", "sauna"), settings=TINY, known={0: known})
    assert st["seeds"] == [0, 1] and st["methods"] == ["hard", "sauna"]
    assert st["iou"]["hard"][0] == known["hard"]["means"]["IoU"] and st["iou"]["sauna"].shape == (2,)
    again = sf.run_grid("fast", seed=1, methods=["hard"], settings=TINY, progress=False)["results"]["hard"]
    assert st["iou"]["hard"][1] == again["means"]["IoU"]                 # seed 1 trained, repeatably
    for k in range(2):                                                     # ranks: a permutation per seed
        assert sorted(int(st["rank"][m][k]) for m in st["methods"]) == [1, 2]
        best = max(st["methods"], key=lambda m: st["iou"][m][k])
        assert st["rank"][best][k] == 1
    with pytest.raises(ValueError, match="methods"):
        sf.seed_study("fast", seeds=(0,), methods=("dice",), settings=TINY)
    with pytest.raises(ValueError, match="seeds"):
        sf.seed_study("fast", seeds=(-1,), methods=("hard",), settings=TINY)


def test_run_grid_is_repeatable():
    a = sf.run_grid("fast", methods=["bls"], settings=TINY, progress=False)["results"]["bls"]["means"]
    b = sf.run_grid("fast", methods=["bls"], settings=TINY, progress=False)["results"]["bls"]["means"]
    assert a == b


def test_run_grid_errors(tmp_path):
    with pytest.raises(ValueError, match="methods"):
        sf.run_grid("fast", methods=["dice"], settings=TINY)
    with pytest.raises(ValueError, match="data: expected an existing folder"):
        sf.run_grid("fast", data=tmp_path / "missing", methods=["hard"], settings=TINY)
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match="data: expected the FIVES folder"):
        sf.run_grid("fast", data=tmp_path, methods=["hard"], settings=TINY)


def test_real_layout_fives_and_drive(tmp_path):
    """FIVES (train/test PNGs) plus a DRIVE folder beside it: Table 1 and Table 2 rows."""
    rng = np.random.default_rng(0)
    root = tmp_path / "FIVES"
    for split, names in (("train", ["1_A", "2_N", "3_D", "4_G"]), ("test", ["5_A", "6_N"])):
        for n in names:
            write_image(root / split / "Original" / f"{n}.png", rng.integers(0, 255, (36, 40, 3), dtype=np.uint8))
            lab = np.zeros((36, 40), np.uint8)
            lab[:, 10:13] = 255
            write_image(root / split / "Ground truth" / f"{n}.png", np.stack([lab] * 3, -1))
    drive = tmp_path / "DRIVE" / "test"
    for i in ("01", "02"):
        write_image(drive / "images" / f"{i}_test.tif", rng.integers(0, 255, (24, 23, 3), dtype=np.uint8))
        lab = np.zeros((24, 23), np.uint8)
        lab[5:8] = 255
        write_image(drive / "1st_manual" / f"{i}_manual1.gif", lab, mode="L")
    settings = dict(TINY, augment=True)
    out = sf.run_grid("full", data=tmp_path, methods=["hard", "sauna"], settings=settings, progress=False)
    assert not out["synthetic"]
    t2 = [r for r in out["rows"] if r["table"] == "Table 2"]
    assert {(r["column"], r["paper"]) for r in t2} == {("DRIVE IoU", 64.5), ("DRIVE IoU", 68.5)}
    assert not any("(synthetic)" in r["row"] for r in out["rows"])


def test_augmented_keeps_pairs_aligned():
    base = [(torch.arange(12.0).view(1, 3, 4).expand(3, 3, 4).clone(), torch.arange(12.0).view(1, 3, 4))]

    class _DS(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return base[i]

    aug = sf._Augmented(_DS())
    torch.manual_seed(0)
    for _ in range(8):
        x, y = aug[0]
        assert torch.equal(x[0], y[0])
