"""softseg.train / softseg.config / softseg.data.shapes: the training engine.

Runs tiny models on 32x32 synthetic shapes. Checked here: files and summary, metrics agree with
an independent evaluation, bit-for-bit resume on the CPU, 2-process DDP (torchrun, gloo) equal
to one process with the doubled batch, NaN handling, atomic checkpoints, clear errors, configs,
the CLI path.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from conftest import ROOT
from softseg import cli
from softseg import config as C
from softseg import metrics as M
from softseg.data.shapes import ShapesDataset
from softseg.models import UNet
from softseg.train import (
    CHECKPOINT_BEST,
    CHECKPOINT_LAST,
    METRICS_LOG,
    SUMMARY,
    NonFiniteLossError,
    _masks,
    evaluate,
    load_checkpoint,
    predict,
    save_atomic,
    select_device,
    train,
)

TINY = ROOT / "configs" / "shapes-tiny.yaml"


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny convolutions on a shared 2-core machine: one OpenMP thread avoids spin-wait stalls
    (and the bit-for-bit comparisons need the same thread count on both sides anyway)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(**over) -> dict:
    """The tiny config, smaller still: 16 training / 4 validation images, 2 steps per epoch."""
    cfg = C.load_config(TINY)
    cfg["data"]["train"]["n"] = 16
    cfg["data"]["val"]["n"] = 4
    for key, value in over.items():
        cfg[key] = value
    return cfg


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class Interrupt(Exception):
    pass


# --------------------------------------------------------------------------- a full run


def test_run_writes_checkpoints_log_and_summary(tmp_path) -> None:
    summary = train(tiny(epochs=2), out_dir=tmp_path, verbose=False)
    assert {p.name for p in tmp_path.iterdir()} == {CHECKPOINT_LAST, CHECKPOINT_BEST, METRICS_LOG, SUMMARY}
    log = read_log(tmp_path / METRICS_LOG)
    assert [r["epoch"] for r in log] == [1, 2] and [r["step"] for r in log] == [2, 4]
    for r in log:
        assert {"train_loss", "train_dice", "val_loss", "val_dice", "val_iou", "val_soft_dice", "lr",
                "train_images_per_s"} <= set(r)
        assert all(math.isfinite(v) for k, v in r.items() if k.startswith(("train_", "val_")))
    on_disk = json.loads((tmp_path / SUMMARY).read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2 and summary["world_size"] == 1
    assert summary["final"] == log[-1]
    best = max(log, key=lambda r: r["val_dice"])
    assert summary["best"] == {"metric": "val_dice", "value": best["val_dice"], "epoch": best["epoch"]}
    assert torch.load(tmp_path / CHECKPOINT_BEST, weights_only=True)["epoch"] == best["epoch"]
    assert summary["device"].startswith("cpu") and summary["config"]["model"]["width"] == 4


def test_logged_validation_equals_an_independent_evaluation(tmp_path) -> None:
    """The loop's validation numbers are recomputed from the saved weights with evaluate() and
    with softseg.metrics directly (sigmoid logits: foreground where the logit >= 0; soft
    targets: majority vote y >= 0.5)."""
    cfg = tiny(epochs=1)
    summary = train(cfg, out_dir=tmp_path, verbose=False)
    model, ckpt = load_checkpoint(tmp_path / CHECKPOINT_LAST)
    val = ShapesDataset(4, size=32, seed=1)
    res = evaluate(model, val, loss=C.build_loss(cfg["loss"]), metrics=["dice", "iou", "soft_dice"], batch_size=3)
    final = summary["final"]
    for name in ("loss", "dice", "iou", "soft_dice"):
        assert res[name] == pytest.approx(final[f"val_{name}"], rel=1e-6, abs=1e-9)
    logits = predict(model, val, batch_size=4)
    targets = torch.stack([val[i][1] for i in range(4)])
    assert M.dice((logits >= 0).numpy(), (targets >= 0.5).numpy(), threshold=None) == pytest.approx(final["val_dice"])
    assert ckpt["history"][-1] == final


# --------------------------------------------------------------------------- resume


def test_resume_after_interruption_reaches_the_same_weights_bit_for_bit(tmp_path) -> None:
    cfg = tiny(epochs=3, scheduler={"name": "poly", "power": 0.9})
    full = train(cfg, out_dir=tmp_path / "full", verbose=False)

    def stop_after_first(record):
        if record["epoch"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg, out_dir=tmp_path / "cut", verbose=False, on_epoch_end=stop_after_first)
    assert torch.load(tmp_path / "cut" / CHECKPOINT_LAST, weights_only=True)["epoch"] == 1
    resumed = train(cfg, out_dir=tmp_path / "cut", resume=True, verbose=False)
    assert resumed["resumed_from_epoch"] == 1 and resumed["epochs_completed"] == 3
    a, b = weights(tmp_path / "full" / CHECKPOINT_LAST), weights(tmp_path / "cut" / CHECKPOINT_LAST)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("time", "epoch_time_s", "train_images_per_s")}
                          for r in rows]
    assert strip(read_log(tmp_path / "cut" / METRICS_LOG)) == strip(read_log(tmp_path / "full" / METRICS_LOG))
    assert resumed["best"] == full["best"]


def test_resume_extends_a_finished_run_and_a_finished_run_is_a_no_op(tmp_path) -> None:
    train(tiny(epochs=1), out_dir=tmp_path, verbose=False)
    again = train(tiny(epochs=1), out_dir=tmp_path, resume=True, verbose=False)
    assert again["epochs_completed"] == 1 and again["train_images_per_s"] is None
    longer = train(tiny(epochs=2), out_dir=tmp_path, resume=True, verbose=False)
    assert longer["epochs_completed"] == 2 and len(read_log(tmp_path / METRICS_LOG)) == 2


def test_resume_refuses_a_changed_configuration(tmp_path) -> None:
    train(tiny(epochs=1), out_dir=tmp_path, verbose=False)
    with pytest.raises(ValueError, match=r"resume: expected the checkpoint's configuration, got changes in \['optimizer'\]"):
        train(tiny(epochs=2, optimizer={"name": "sgd", "lr": 0.1}), out_dir=tmp_path, resume=True, verbose=False)


def test_existing_checkpoint_needs_resume_or_overwrite(tmp_path, capsys) -> None:
    train(tiny(epochs=1), out_dir=tmp_path, verbose=False)
    with pytest.raises(ValueError, match=r"already holds a checkpoint \(checkpoint_last.pt\); pass --resume"):
        train(tiny(epochs=1), out_dir=tmp_path, verbose=False)
    fresh = train(tiny(epochs=1, seed=5), out_dir=tmp_path, overwrite=True, verbose=False)
    assert fresh["resumed_from_epoch"] is None and len(read_log(tmp_path / METRICS_LOG)) == 1
    train(tiny(epochs=1), out_dir=tmp_path / "new", resume=True)  # nothing to resume: starts afresh
    assert "no checkpoint_last.pt" in capsys.readouterr().out


# --------------------------------------------------------------------------- non-finite loss


class NaNAt(nn.Module):
    """DML1 on sigmoid probabilities, but NaN on the ``at``-th call."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.calls = at, 0
        self.inner = C.build_loss({"name": "DiceSemimetricLoss", "activation": "sigmoid"})

    def forward(self, x, y):
        self.calls += 1
        value = self.inner(x, y)
        return value * float("nan") if self.calls == self.at else value


def test_nan_loss_stops_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path) -> None:
    cfg = tiny(epochs=3)
    # 2 training steps + 1 validation batch per epoch: call 4 is epoch 2, step 1 (global step 3)
    with pytest.raises(NonFiniteLossError, match=r"loss: expected a finite value, got nan at epoch 2, step 1 of "
                                                 r"the epoch \(global step 3\); training stopped and the last good "
                                                 r"checkpoint is .*checkpoint_last.pt \(epoch 1\)") as err:
        train(cfg, out_dir=tmp_path / "nan", verbose=False, loss=NaNAt(at=4))
    assert (err.value.epoch, err.value.step, err.value.global_step) == (2, 1, 3)
    ckpt = torch.load(tmp_path / "nan" / CHECKPOINT_LAST, weights_only=True)
    assert ckpt["epoch"] == 1 and all(torch.isfinite(t).all() for t in ckpt["model"].values())
    assert len(read_log(tmp_path / "nan" / METRICS_LOG)) == 1 and not (tmp_path / "nan" / SUMMARY).exists()


def test_nan_in_the_first_epoch_and_in_validation(tmp_path) -> None:
    with pytest.raises(NonFiniteLossError, match=r"at epoch 1, step 2 of the epoch \(global step 2\); training "
                                                 r"stopped and no checkpoint was written before it"):
        train(tiny(epochs=1), out_dir=tmp_path / "a", verbose=False, loss=NaNAt(at=2))
    assert not (tmp_path / "a" / CHECKPOINT_LAST).exists()
    with pytest.raises(NonFiniteLossError, match=r"validation loss: expected a finite value, got nan at epoch 1, "
                                                 r"validation"):
        train(tiny(epochs=1), out_dir=tmp_path / "b", verbose=False, loss=NaNAt(at=3))


class Exploding(UNet):
    """A U-Net whose output turns NaN from its ``at``-th forward pass in ``mode`` on."""

    def __init__(self, *args, at: int, mode: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.at, self.mode, self.calls = at, mode, 0

    def forward(self, x):
        self.calls += self.training == (self.mode == "train")
        out = super().forward(x)
        return out * float("nan") if self.calls >= self.at else out


def test_nan_output_rejected_by_a_checking_loss_is_reported_as_such(tmp_path) -> None:
    # softseg's losses raise on NaN input instead of returning NaN: the loop names the step anyway
    model = Exploding(3, 1, width=4, depth=2, at=3, mode="train")
    with pytest.raises(NonFiniteLossError, match=r"model output: expected a finite value, got NaN or inf at "
                                                 r"epoch 2, step 1 of the epoch \(global step 3\)"):
        train(tiny(epochs=2), out_dir=tmp_path / "a", verbose=False, model=model)
    model = Exploding(3, 1, width=4, depth=2, at=1, mode="eval")
    with pytest.raises(NonFiniteLossError, match=r"model output: expected a finite value, got NaN or inf at "
                                                 r"epoch 1, validation"):
        train(tiny(epochs=2), out_dir=tmp_path / "b", verbose=False, model=model)
    with pytest.raises(ValueError, match=r"model output: expected finite values, got 1024 NaN or inf values"):
        evaluate(Exploding(3, 1, width=4, depth=2, at=1, mode="eval"), ShapesDataset(1, size=32))


# --------------------------------------------------------------------------- atomic checkpoints


def test_save_atomic_never_leaves_a_torn_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "ck.pt"
    save_atomic({"w": torch.arange(3)}, path)
    before = path.read_bytes()

    def torn_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        save_atomic({"w": torch.zeros(3)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # the temporary file is gone
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(3))


def test_crash_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch) -> None:
    real_save, calls = torch.save, []

    def save_then_crash(obj, f, *args, **kwargs):
        calls.append(obj["epoch"])
        if obj["epoch"] == 2:
            f.write(b"\x00" * 10)
            raise KeyboardInterrupt  # killed mid-write
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(epochs=2), out_dir=tmp_path, verbose=False)
    monkeypatch.undo()
    assert torch.load(tmp_path / CHECKPOINT_LAST, weights_only=True)["epoch"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    resumed = train(tiny(epochs=2), out_dir=tmp_path, resume=True, verbose=False)
    assert resumed["resumed_from_epoch"] == 1 and resumed["epochs_completed"] == 2


# --------------------------------------------------------------------------- errors


def test_missing_data_path_and_wrong_layout(tmp_path) -> None:
    base = tiny(epochs=1, metrics=["iou"])
    cfg = {**base, "data": {"name": "folder", "target": "labels", "train": {"root": str(tmp_path / "nope")}}}
    with pytest.raises(ValueError, match=r"config data.train.root: expected an existing path, got '.*nope' \(not found\)"):
        train(cfg, out_dir=tmp_path / "run", verbose=False)
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    cfg["data"]["train"]["root"] = str(root)
    with pytest.raises(ValueError, match=r"expected the layout .*/set/images/<name>.npy\|.png and "
                                         r".*/set/targets/<name>.npy\|.png, got no folder 'targets'"):
        train(cfg, out_dir=tmp_path / "run", verbose=False)
    (root / "targets").mkdir()
    with pytest.raises(ValueError, match=r"expected image files .*/set/images/<name>.npy\|.png, found none"):
        train(cfg, out_dir=tmp_path / "run", verbose=False)
    for name in ("a", "b"):
        np.save(root / "images" / f"{name}.npy", np.random.rand(3, 32, 32).astype(np.float32))
    np.save(root / "targets" / "a.npy", (np.random.rand(32, 32) > 0.5).astype(np.int64))
    with pytest.raises(ValueError, match=r"expected a target for every image, missing 1: .*/set/targets/b.npy\|.png"):
        train(cfg, out_dir=tmp_path / "run", verbose=False)
    np.save(root / "targets" / "b.npy", (np.random.rand(32, 32) > 0.5).astype(np.int64))
    cfg["model"] = {**cfg["model"], "out_channels": 2}
    cfg["loss"] = {"name": "CrossEntropyLoss"}
    summary = train(cfg, out_dir=tmp_path / "run", verbose=False)  # the layout is right now: it trains
    assert summary["epochs_completed"] == 1 and summary["best"] is None  # no validation split


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where CUDA is absent")
def test_cuda_requested_but_absent(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"device: expected 'cpu' or 'auto' on this machine, got 'cuda' \(CUDA is "
                                         r"not available"):
        train(tiny(), out_dir=tmp_path, device="cuda", verbose=False)
    assert not (tmp_path / CHECKPOINT_LAST).exists()
    assert select_device("auto").type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_run_with_amp_and_channels_last(tmp_path) -> None:
    summary = train(tiny(epochs=2), out_dir=tmp_path, device="cuda", verbose=False)
    assert summary["device"].startswith("cuda") and math.isfinite(summary["final"]["val_loss"])
    model, _ = load_checkpoint(tmp_path / CHECKPOINT_LAST)
    assert evaluate(model, ShapesDataset(4, size=32, seed=1), metrics=["dice"], device="cuda")["n"] == 4


def test_out_dir_inside_results_is_refused() -> None:
    with pytest.raises(ValueError, match=r"out: expected a folder outside .*results"):
        train(tiny(), out_dir=ROOT / "results" / "x", verbose=False)


@pytest.mark.parametrize("change,match", [
    ({"epoch": 3}, r"config: unknown keys \['epoch'\]"),
    ({"preset": "medium"}, r"preset: expected one of \('fast', 'full'\), got 'medium'"),
    ({"metrics": ["dice", "hausdorff"]}, r"config metrics: expected one of .*got 'hausdorff'"),
    ({"loss": {"name": "DiceLoss"}}, r"config loss.name: expected a loss of softseg.losses .*got 'DiceLoss'"),
    ({"loss": {"name": "SoftDiceLoss", "gamma": 2}}, r"config loss \(SoftDiceLoss\): .*gamma"),
    ({"model": {"name": "unet", "widht": 4}}, r"config model: model 'unet': unexpected arguments \['widht'\]"),
    ({"optimizer": {"name": "lamb"}}, r"config optimizer.name: expected one of"),
    ({"scheduler": {"name": "poly", "gamma": 0.1}}, r"config scheduler \(poly\): unexpected keys \['gamma'\]"),
    ({"batch_size": 0}, r"config batch_size: expected an integer >= 1, got 0"),
    ({"amp": "fp8"}, r"config amp: expected one of"),
    ({"device": "gpu"}, r"config device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    ({"data": {"name": "shapes", "n": 4}}, r"config data: expected a 'train' mapping"),
    ({"data": {"name": "shapes", "train": {"n": 4, "colour": 1}}}, r"config data.train \(shapes\): .*colour"),
    ({"presets": {"full": {"epochz": 1}}, "preset": "full"}, r"config presets.full: unexpected keys \['epochz'\]"),
    ({"name": "a b"}, r"config name: expected letters"),
])
def test_configuration_errors_name_the_key(tmp_path, change, match) -> None:
    with pytest.raises(ValueError, match=match):
        train({**tiny(), **change}, out_dir=tmp_path, verbose=False)


def test_config_files(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"config: expected an existing .yaml/.yml/.toml file, got '.*missing.yaml'"):
        C.load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ValueError, match=r"config '.*bad.yaml': could not parse"):
        C.load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match=r"expected a mapping at the top level, got list"):
        C.load_config(tmp_path / "list.yaml")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match=r"config suffix: expected one of"):
        C.load_config(tmp_path / "x.json")
    # YAML 1.1 reads 1e-4 as a string; load_config makes it a float
    (tmp_path / "lr.yml").write_text("optimizer: {name: adam, lr: 1e-4}\n")
    assert C.load_config(tmp_path / "lr.yml") == {"optimizer": {"name": "adam", "lr": 1e-4}, "name": "lr"}
    # a TOML file and its YAML twin give the same configuration
    toml = C.load_config(ROOT / "configs" / "shapes-margin.toml")
    (tmp_path / "shapes-margin.yaml").write_text(yaml.safe_dump(toml))
    assert C.load_config(tmp_path / "shapes-margin.yaml") == toml


def test_presets_merge_recursively() -> None:
    raw = C.load_config(ROOT / "configs" / "shapes-unet-sauna.yaml")
    fast, full = C.resolve_config(raw), C.resolve_config(raw, preset="full")
    assert (fast["preset"], fast["model"]["width"], fast["data"]["size"], fast["optimizer"]["lr"]) == ("fast", 8, 64, 3e-3)
    assert (full["model"]["width"], full["model"]["depth"], full["data"]["size"], full["batch_size"]) == (64, 4, 512, 4)
    assert full["loss"][0]["activation"] == "tanh" and full["optimizer"] == {"name": "adam", "lr": 1e-4}
    # a section given replaces the default one: no stray Adam learning rate under SGD
    assert C.resolve_config({"optimizer": {"name": "sgd"}}, require=())["optimizer"] == {"name": "sgd"}


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.*")), ids=lambda p: p.name)
def test_every_example_config_trains_shrunk(tmp_path, path) -> None:
    """Each example config (its model, loss, targets and optimizer) runs one shrunk epoch; its
    `full` preset resolves and builds."""
    raw = C.load_config(path)
    if "/path/to/" in path.read_text():
        # A config for a real data set (a placeholder root the reader sets); its data section is
        # tested on generated files in that loader's own tests (e.g. tests/test_retina.py).
        pytest.skip(f"{path.name} reads a real data set (placeholder path)")
    full = C.resolve_config(raw, preset="full")
    C.build_loss(full["loss"])
    train_set, val_set = C.build_datasets(full["data"])
    assert len(train_set) >= 1
    cfg = C.resolve_config(raw)
    cfg["epochs"], cfg["batch_size"], cfg["presets"] = 1, 4, {}
    cfg["model"].update(width=4, depth=2)
    cfg["data"].update(size=32, train={"n": 8, "seed": 0}, val={"n": 4, "seed": 1})
    summary = train(cfg, out_dir=tmp_path, verbose=False)
    assert summary["status"] == "completed"
    assert all(math.isfinite(v) for k, v in summary["final"].items() if k.startswith("val_"))


# --------------------------------------------------------------------------- metrics plumbing


def test_outputs_become_masks_as_documented() -> None:
    logits = torch.tensor([[[[-1.0, 0.0, 2.0]]]])          # (1, 1, 1, 3)
    soft = torch.tensor([[[[0.2, 0.5, 0.9]]]])
    pred, tgt = _masks(logits, soft, "sigmoid", False)
    assert pred.tolist() == [[[[False, True, True]]]] and tgt.tolist() == [[[[False, True, True]]]]
    signed = torch.tensor([[[[-0.5, 0.0, 0.3]]]])           # SAUNA maps: threshold 0
    pred, tgt = _masks(signed, signed, "signed", False)
    assert pred.tolist() == tgt.tolist() == [[[[False, True, True]]]]
    three = torch.tensor([[[[2.0, 0.0]], [[1.0, 3.0]], [[0.0, 1.0]]]])  # (1, 3, 1, 2): argmax 0, 1
    labels = torch.tensor([[[0, 2]]])
    pred, tgt = _masks(three, labels, "softmax", False)                # background dropped
    assert pred.tolist() == [[[[False, True]], [[False, False]]]]
    assert tgt.tolist() == [[[[False, False]], [[False, True]]]]
    pred, tgt = _masks(three, labels, "softmax", True)
    assert pred.shape == tgt.shape == (1, 3, 1, 2)


def test_metric_mode_follows_the_model_head(tmp_path) -> None:
    """A tanh head on signed targets: the loop reads outputs and targets at threshold 0."""
    cfg = tiny(epochs=1, metrics=["dice"])
    cfg["model"] = {**cfg["model"], "activation": "tanh"}
    cfg["loss"] = {"name": "MSELoss"}
    cfg["data"] = {**cfg["data"], "target": "signed"}
    summary = train(cfg, out_dir=tmp_path, verbose=False)
    model, _ = load_checkpoint(tmp_path / CHECKPOINT_LAST)
    val = ShapesDataset(4, size=32, target="signed", seed=1)
    out = predict(model, val)
    y = torch.stack([val[i][1] for i in range(4)])
    assert summary["final"]["val_dice"] == pytest.approx(M.dice((out >= 0).numpy(), (y >= 0).numpy(), threshold=None))


def test_shapes_dataset_targets() -> None:
    soft = ShapesDataset(3, size=(20, 24), classes=2, target="soft", seed=4)
    x, y = soft[1]
    assert x.shape == (3, 20, 24) and y.shape == (3, 20, 24)
    torch.testing.assert_close(y.sum(0), torch.ones(20, 24))           # a soft one-hot map
    labels = ShapesDataset(3, size=(20, 24), classes=2, target="labels", seed=4)[1][1]
    assert torch.equal(labels, y.argmax(0))
    hard = ShapesDataset(3, size=(20, 24), classes=2, target="hard", seed=4)[1][1]
    assert torch.equal(hard.argmax(0), labels) and set(hard.unique().tolist()) <= {0.0, 1.0}
    one = ShapesDataset(2, size=16, target="soft")[0][1]
    signed = ShapesDataset(2, size=16, target="signed")[0][1]
    torch.testing.assert_close(signed, 2 * one - 1)
    assert one.min() >= 0 and one.max() <= 1 and 0 < (one >= 0.5).float().mean() < 1
    assert torch.equal(ShapesDataset(2, size=16, seed=7)[-1][0], ShapesDataset(2, size=16, seed=7)[1][0])
    assert not torch.equal(ShapesDataset(2, size=16, seed=7)[1][0], ShapesDataset(2, size=16, seed=8)[1][0])
    with pytest.raises(IndexError, match=r"index: expected an integer in \[-2, 1\], got 2"):
        ShapesDataset(2, size=16)[2]
    with pytest.raises(ValueError, match="target: expected one of"):
        ShapesDataset(2, target="fuzzy")
    with pytest.raises(ValueError, match="softness: expected a finite number > 0"):
        ShapesDataset(2, softness=0)


# --------------------------------------------------------------------------- distributed and CLI


def _write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_ddp_two_processes_on_cpu_equal_one_process_with_the_doubled_batch(tmp_path) -> None:
    """torchrun --nproc_per_node=2 -m softseg train: gloo, DistributedSampler. With per-sample
    mean losses, no batch statistics (norm: group) and SGD, two processes with batch 4 take the
    same steps as one process with batch 8 (the union of the two shards is the same batch),
    up to float summation order."""
    cfg = tiny(epochs=2, batch_size=4, optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9})
    cfg["model"] = {**cfg["model"], "norm": "group"}
    cfg["data"]["val"]["n"] = 5  # uneven shards: 3 + 2 samples
    path = _write_config(tmp_path / "ddp.yaml", cfg)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                          "-m", "softseg", "train", "--config", str(path), "--out", str(tmp_path / "ddp")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("wrote ") == 1  # rank 0 only
    summary = json.loads((tmp_path / "ddp" / SUMMARY).read_text())
    assert summary["world_size"] == 2 and summary["global_step"] == 4
    single = train({**cfg, "batch_size": 8}, out_dir=tmp_path / "one", verbose=False)
    a, b = weights(tmp_path / "ddp" / CHECKPOINT_LAST), weights(tmp_path / "one" / CHECKPOINT_LAST)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    # validation over the two shards counts every sample once
    assert summary["final"]["val_dice"] == pytest.approx(single["final"]["val_dice"], abs=1e-4)


def test_cli_train_path(tmp_path, capsys, monkeypatch) -> None:
    path = _write_config(tmp_path / "cli.yaml", tiny(epochs=1, name="cli"))
    monkeypatch.chdir(tmp_path)  # the default output folder is runs/<name> under the working directory
    assert cli.main(["train", "--config", str(path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and f"wrote {Path('runs') / 'cli' / SUMMARY}" in out
    assert json.loads((tmp_path / "runs" / "cli" / SUMMARY).read_text())["epochs_completed"] == 1
    assert cli.main(["train", "--config", str(path)]) == 2
    assert "softseg train: out: 'runs/cli' already holds a checkpoint" in capsys.readouterr().err
    assert cli.main(["train", "--config", str(path), "--resume"]) == 0
    assert cli.main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "config: expected an existing" in capsys.readouterr().err
    help_text = subprocess.run([sys.executable, "-m", "softseg", "train", "--help"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout
    for flag in ("--config", "--resume", "--device", "--out", "--preset"):
        assert flag in help_text
