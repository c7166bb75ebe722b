"""Tests of :mod:`softseg.data.retina` on small files written in each data set's real format
(DATASETS.md §1-2): non-square sizes, 0/255 labels, and files that must be skipped."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from softseg.data import retina
from softseg.data.retina import (
    RetinaDataset,
    chase_pairs,
    drive_pairs,
    fives_pairs,
    hrf_pairs,
    make_target,
    read_image,
    read_mask,
    stare_pairs,
)

from conftest import write_image

H, W = 40, 48  # non-square: catches H/W swaps


def _rgb(h=H, w=W, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _label(h=H, w=W, col=None):
    lab = np.zeros((h, w), dtype=np.uint8)
    lab[:, (w // 3) if col is None else col] = 255     # a one-pixel vertical "vessel"
    lab[h // 2, :] = 255                               # and a horizontal one
    return lab


@pytest.fixture
def fives(tmp_path):
    root = tmp_path / "FIVES A Fundus Image Dataset for AI-based Vessel Segmentation"
    for split, names in (("train", ["1_A", "2_N"]), ("test", ["3_G"])):
        for k, n in enumerate(names):
            write_image(root / split / "Original" / f"{n}.png", _rgb(seed=k))
            lab = _label(col=5 + k)
            write_image(root / split / "Ground truth" / f"{n}.png", np.stack([lab] * 3, -1))   # 3 identical channels
    write_image(root / "train" / "Original" / "4_D.png", _rgb())          # no label: skipped
    (root / "train" / "Original" / "notes.txt").write_text("not an image")
    return root


def test_fives(fives):
    train = fives_pairs(fives, "train")
    assert [s.id for s in train] == ["1_A", "2_N"]
    test = fives_pairs(fives, "test")
    assert [s.id for s in test] == ["3_G"]
    img, mask = read_image(train[0].image), read_mask(train[0].label)
    assert img.shape == (3, H, W) and img.dtype == torch.float32 and 0 <= img.min() and img.max() <= 1
    assert mask.shape == (H, W) and mask.dtype == torch.bool
    assert mask[:, 5].all() and mask.sum() == H + W - 1


@pytest.mark.parametrize("spelling", ["Groud truth", "GroundTruth"])
def test_fives_other_spellings(fives, spelling):
    (fives / "test" / "Ground truth").rename(fives / "test" / spelling)
    assert [s.id for s in fives_pairs(fives, "test")] == ["3_G"]


def test_fives_errors(fives, tmp_path):
    (fives / "test" / "Ground truth").rename(fives / "test" / "labels")
    with pytest.raises(ValueError, match="expected a label folder 'Ground truth'"):
        fives_pairs(fives, "test")
    with pytest.raises(ValueError, match="split"):
        fives_pairs(fives, "val")
    with pytest.raises(ValueError, match="expected an existing folder"):
        fives_pairs(tmp_path / "nowhere")
    with pytest.raises(TypeError, match="root: expected a path"):
        fives_pairs(3)
    for p in (fives / "train" / "Ground truth").iterdir():
        p.unlink()
    with pytest.raises(ValueError, match=r"FIVES: expected images matching .* labels named '<id>.png'"):
        fives_pairs(fives, "train")


@pytest.fixture
def drive(tmp_path):
    root = tmp_path / "DRIVE"
    h, w = 24, 23
    for split, ids in (("training", ["21"]), ("test", ["01", "02"])):
        for k, i in enumerate(ids):
            write_image(root / split / "images" / f"{i}_{split}.tif", _rgb(h, w, k), "TIFF")
            write_image(root / split / "1st_manual" / f"{i}_manual1.gif", _label(h, w, 3 + k), "GIF", mode="L")
            write_image(root / split / "mask" / f"{i}_{split}_mask.gif", np.full((h, w), 255, np.uint8), "GIF", mode="L")
        write_image(root / split / "2nd_manual" / f"{ids[0]}_manual2.gif", np.zeros((h, w), np.uint8), "GIF", mode="L")
    write_image(root / "test" / "images" / "03_test.tif", _rgb(h, w), "TIFF")  # no manual: skipped
    return root


def test_drive(drive):
    test = drive_pairs(drive, "test")
    assert [s.id for s in test] == ["01", "02"]
    assert test[0].label.name == "01_manual1.gif" and test[0].fov.name == "01_test_mask.gif"
    assert Image.open(test[0].label).mode in ("P", "L")
    m = read_mask(test[1].label)
    assert m.shape == (24, 23) and m[:, 4].all() and not m[:, 3].all()
    assert [s.id for s in drive_pairs(drive, "training")] == ["21"]
    assert read_image(test[0].image).shape == (3, 24, 23)


@pytest.fixture
def stare(tmp_path):
    root = tmp_path / "STARE"
    h, w = 30, 35
    write_image(root / "stare-images" / "im0001.ppm", _rgb(h, w), "PPM")
    write_image(root / "labels-ah" / "im0001.ah.ppm", np.stack([_label(h, w)] * 3, -1), "PPM")
    buf = root / "tmp.ppm"
    write_image(buf, _rgb(h, w, 1), "PPM")
    with open(buf, "rb") as src, gzip.open(root / "stare-images" / "im0044.ppm.gz", "wb") as dst:
        dst.write(src.read())
    buf.unlink()
    write_image(root / "labels-ah" / "im0044.ah.ppm", _label(h, w), "PPM")
    write_image(root / "labels-vk" / "im0001.vk.ppm", np.zeros((h, w), np.uint8), "PPM")
    write_image(root / "stare-images" / "im0002.ppm", _rgb(h, w), "PPM")    # no label: skipped
    return root


def test_stare(stare):
    pairs = stare_pairs(stare)
    assert [s.id for s in pairs] == ["im0001", "im0044"]
    img = read_image(pairs[1].image)                                   # read from the .ppm.gz
    assert img.shape == (3, 30, 35)
    np.testing.assert_allclose(img.permute(1, 2, 0).numpy() * 255, _rgb(30, 35, 1), atol=1e-3)
    assert read_mask(pairs[0].label).sum() == 30 + 35 - 1
    (stare / "stare-images").rename(stare / "images")                  # the SAUNA authors' name
    assert len(stare_pairs(stare)) == 2
    (stare / "images").rename(stare / "raw")
    with pytest.raises(ValueError, match="STARE: expected an image folder 'stare-images' or 'images'"):
        stare_pairs(stare)


@pytest.fixture
def chase(tmp_path):
    root = tmp_path / "CHASEDB1"
    h, w = 32, 33
    for k, i in enumerate(["01L", "11R"]):
        write_image(root / f"Image_{i}.jpg", _rgb(h, w, k), "JPEG")
        write_image(root / f"Image_{i}_1stHO.png", _label(h, w, 2 + k))
        write_image(root / f"Image_{i}_2ndHO.png", np.zeros((h, w), np.uint8))
    write_image(root / "Image_12L.jpg", _rgb(h, w), "JPEG")                 # no label: skipped
    return root


def test_chase_takes_first_observer(chase):
    pairs = chase_pairs(chase)
    assert [s.id for s in pairs] == ["Image_01L", "Image_11R"]
    assert all(s.label.name.endswith("_1stHO.png") for s in pairs)
    assert read_mask(pairs[0].label)[:, 2].all()


@pytest.fixture
def hrf(tmp_path):
    root = tmp_path / "HRF"
    h, w = 26, 39
    for k, (i, ext) in enumerate((("01_dr", "JPG"), ("01_h", "jpg"), ("02_g", "jpg"))):
        write_image(root / "images" / f"{i}.{ext}", _rgb(h, w, k), "JPEG")
        if i != "02_g":                                                # 02_g has no label: skipped
            write_image(root / "manual1" / f"{i}.tif", _label(h, w), "TIFF")
            write_image(root / "mask" / f"{i}_mask.tif", np.full((h, w), 255, np.uint8), "TIFF")
    return root


def test_hrf_upper_case_jpg(hrf):
    pairs = hrf_pairs(hrf)
    assert [s.id for s in pairs] == ["01_dr", "01_h"]
    assert pairs[0].image.suffix == ".JPG" and pairs[0].fov.name == "01_dr_mask.tif"
    assert read_image(pairs[0].image).shape == (3, 26, 39)
    assert read_mask(pairs[0].label).shape == (26, 39)


@pytest.mark.parametrize("target", retina.TARGETS)
def test_dataset_resizes_and_targets(fives, target):
    ds = RetinaDataset(fives_pairs(fives, "train"), size=32, target=target)
    img, tgt = ds[0]
    assert img.shape == (3, 32, 32) and tgt.shape == (1, 32, 32) and tgt.dtype == torch.float32
    mask = ds.mask(0)
    assert mask.shape == (32, 32) and mask.any() and not mask.all()
    if target in ("sauna", "signed", "sauna_boundary"):
        assert ((tgt[0] > 0) == mask).all() and tgt.min() >= -1 and tgt.max() <= 1
    if target == "mask":
        assert (tgt[0] == mask.float()).all()
    if target in ("ls", "bls"):
        assert ((tgt[0] >= 0.5) == mask).all()
    torch.testing.assert_close(img.mean((1, 2)).shape, torch.Size([3]))


def test_dataset_normalization(fives):
    ds = RetinaDataset(fives_pairs(fives, "train"), size=16, mean=(0, 0, 0), std=(1, 1, 1))
    img, _ = ds[1]
    assert 0 <= img.min() and img.max() <= 1


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 4}, "size: expected an integer >= 8"),
    ({"target": "soft"}, "target"),
    ({"std": (1, 0, 1)}, "std > 0"),
])
def test_dataset_errors(fives, kwargs, match):
    with pytest.raises(ValueError, match=match):
        RetinaDataset(fives_pairs(fives, "train"), **kwargs)
    with pytest.raises(ValueError, match="non-empty sequence of RetinaSample"):
        RetinaDataset([])


def test_make_target_edge_cases():
    empty = torch.zeros(6, 7, dtype=torch.bool)
    for kind in retina.TARGETS:
        t = make_target(empty, kind)
        assert t.shape == (1, 6, 7)
    assert (make_target(empty, "sauna") == -1).all() and (make_target(empty, "sauna_thickness") == -1).all()
    full = torch.ones(6, 7, dtype=torch.bool)
    assert (make_target(full, "sauna_boundary") == 1).all()
    with pytest.raises(ValueError, match=r"mask: expected shape \(H, W\)"):
        make_target(torch.zeros(2, 6, 7), "mask")
    with pytest.raises(ValueError, match="kind"):
        make_target(empty, "geodesic")


def test_make_target_sauna_terms_add_up():
    m = torch.zeros(20, 24, dtype=torch.bool)
    m[3:9, 4:20] = True
    m[14, 2:22] = True
    b, t, s = (make_target(m, k)[0] for k in ("sauna_boundary", "sauna_thickness", "sauna"))
    torch.testing.assert_close((b + t).clamp(-1, 1), s, atol=2e-6, rtol=0)


@pytest.mark.parametrize("thickness", ["foreground", "same-class"])
def test_make_target_passes_the_reading_of_eq2(thickness):
    from softseg.labels import sauna_terms, sauna_transform

    m = torch.zeros(20, 24, dtype=torch.bool)
    m[3:9, 4:20] = True
    m[14, 2:22] = True  # a one-pixel vessel: the two readings differ beside it
    torch.testing.assert_close(make_target(m, "sauna", thickness=thickness)[0],
                               torch.from_numpy(sauna_transform(m.numpy(), thickness=thickness)))
    terms = sauna_terms(m.numpy(), thickness=thickness)
    torch.testing.assert_close(make_target(m, "sauna_thickness", thickness=thickness)[0],
                               torch.from_numpy(terms["thickness_term"].astype(np.float32)))


def test_make_target_rejects_an_unknown_reading():
    with pytest.raises(ValueError, match="thickness"):
        make_target(torch.ones(4, 4, dtype=torch.bool) & (torch.arange(4) < 2), "sauna", thickness="background")


def test_fives_dataset_factory(fives):
    ds = retina.fives_dataset(fives, "test", size=16, target="sauna")
    assert len(ds) == 1 and ds[0][1].shape == (1, 16, 16)


def test_fives_training_config_builds(fives):
    """configs/sauna-fives-unet.yaml with its root pointed at a generated FIVES folder."""
    from softseg import config

    cfg = config.resolve_config(config.load_config(Path(__file__).parent.parent / "configs" / "sauna-fives-unet.yaml"),
                                preset="full")
    cfg["data"]["root"] = str(fives)
    cfg["data"]["size"] = 16
    train, val = config.build_datasets(cfg["data"])
    assert len(train) == 2 and len(val) == 1
    assert train.target == "sauna" and val.target == "signed"
    x, y = val[0]
    assert x.shape == (3, 16, 16) and set(y.unique().tolist()) <= {-1.0, 1.0}


def test_dataset_cache_and_precompute(fives):
    ds = RetinaDataset(fives_pairs(fives, "train"), size=16, target="sauna").precompute(workers=2)
    assert len(ds._resized) == 2
    other = ds.with_target("mask")
    assert other._resized is ds._resized and torch.equal(other.mask(1), ds.mask(1))
    fresh = RetinaDataset(fives_pairs(fives, "train"), size=16, target="sauna", cache=False)
    torch.testing.assert_close(fresh[0][0], ds[0][0])
    assert fresh._resized == {}
