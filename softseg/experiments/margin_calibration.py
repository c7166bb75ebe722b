r"""Margin calibration on imbalanced segmentation: cross-entropy vs the calibrated log-loss.

Li, Yu and Zhang, *Distribution-aware Margin Calibration for Medical Image Segmentation*,
Experiments: a segmentation network is pre-trained with cross-entropy (CE) and then fine-tuned
with each learning objective from the same weights ("we used cross-entropy as the basic learning
objective to pre-train the segmentation models for 50 epochs. After that, we applied different
learning objectives independently to fine-tune the coarsely trained model"); AdamW, learning rate
1e-4, group normalization. This module runs that protocol with the shared training engine
(:func:`softseg.train.train`) for

* ``Cross-entropy`` — fine-tuning continues with CE;
* ``Calibrated, no offsets`` — the calibrated log-loss of eqs. 27–29 with ``ρ = 0``;
* ``Ours (offsets)`` — the calibrated log-loss with the margins of Corollary 1.1
  (:func:`softseg.losses.optimal_margins` from the training set's pixel counts) for each
  ``(τ, ν)`` of the paper's Table 1; the setting with the best validation mIoU is the one
  reported on the test split, as the paper tunes ``τ`` "on the validation dataset";
* ``Offsets, sides swapped`` — the same margins with ``ρ_0k`` and ``ρ_k0`` exchanged (the large
  margin of a rare class asked of its own pixels), an alternative reading of the text after
  Corollary 1.1 that the chapter discusses; not a row of the paper.

The pre-trained model itself is scored too (:data:`PRETRAINED`, no fine-tuning), so that each
fine-tuning can be read against its starting point.

Metrics are computed over all pixels of a split at once (the data-set IoU of eq. 1 with ``D``
the split): per-class IoU, pixel accuracy and the mIoU over the *foreground* classes (the paper's
multi-class mIoU is the mean of its four part IoUs in Table 4: 72.5 = mean(88.2, 67.1, 61.1, 73.4)).

Presets
-------
``fast`` (CPU, the book build): the synthetic stand-in :class:`softseg.data.scenes.ImbalancedScenes`
(background, 2 common, 2 rare classes), a tiny U-Net with batch norm, 10 + 6 epochs and AdamW at
3e-3 — not the paper's 1e-4 and group norm (at 1e-4, 16 epochs left the scenes essentially
unlearned in a development run; batch norm is the U-Net's default); the chapter discloses both.
``full`` (GPU): the paper's protocol (50 + 50 epochs, AdamW 1e-4, batch 4, group norm, U-Net
width 32 depth 4 in place of COPLE-Net) on the data found under ``--data`` (EndoVis 2017 robotic instruments, binary and
parts, via :mod:`softseg.data.robotic`; UESTC COVID-19 CT Part 1 and Part 2 via
:mod:`softseg.data.covid_ct`), or on larger synthetic scenes when no data is given.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .._checks import check_int, check_option
from ..data.scenes import ImbalancedScenes, label_counts
from ..losses import CalibratedLogLoss, calibrated_log_loss, optimal_margins
from ..models import UNet
from ..reproduce import RunStore, register
from ..train import select_device, train

__all__ = [
    "PAPER_TABLE1",
    "PAPER_TABLE2",
    "PAPER_TABLE3",
    "PAPER_TABLE4",
    "TABLE1_SETTINGS",
    "ROBOTIC_PARTS",
    "PRESETS",
    "METHODS",
    "PRETRAINED",
    "FULL_DATA_SIZES",
    "confusion_matrix",
    "scores_from_confusion",
    "make_loss",
    "evaluate_split",
    "run_task",
    "synthetic_splits",
    "run",
]

#: (τ, ν) of the paper's Table 1, in its row order.
TABLE1_SETTINGS: tuple[tuple[float, float], ...] = ((1.0, 10.0), (1.0, 1.0), (10.0, 1.0), (10.0, 0.1), (10.0, 0.01))

#: Table 1 of the paper, quoted: validation loss and IoU (COVID-19, coarse-labelled binary) and
#: loss and mIoU (Robotic Instrument, parts) for each (τ, ν).
PAPER_TABLE1: Mapping[tuple[float, float], Mapping[str, float]] = {
    (1.0, 10.0): {"COVID-19 Loss": 0.034, "COVID-19 IoU": 72.8, "Robotic Loss": 0.086, "Robotic mIoU": 71.2},
    (1.0, 1.0): {"COVID-19 Loss": 0.033, "COVID-19 IoU": 73.4, "Robotic Loss": 0.086, "Robotic mIoU": 71.5},
    (10.0, 1.0): {"COVID-19 Loss": 0.031, "COVID-19 IoU": 73.1, "Robotic Loss": 0.093, "Robotic mIoU": 72.7},
    (10.0, 0.1): {"COVID-19 Loss": 0.031, "COVID-19 IoU": 72.8, "Robotic Loss": 0.086, "Robotic mIoU": 72.1},
    (10.0, 0.01): {"COVID-19 Loss": 0.033, "COVID-19 IoU": 72.7, "Robotic Loss": 0.090, "Robotic mIoU": 71.8},
}

#: Table 2 (COVID-19 test set), quoted: the two rows our protocol reproduces.
PAPER_TABLE2: Mapping[str, Mapping[str, float]] = {
    "Cross-entropy": {"Part 1 Pixel Acc.": 81.1, "Part 1 IoU": 69.6, "Part 2 Pixel Acc.": 86.6, "Part 2 IoU": 76.8},
    "Ours (offsets)": {"Part 1 Pixel Acc.": 83.8, "Part 1 IoU": 71.3, "Part 2 Pixel Acc.": 88.3, "Part 2 IoU": 78.1},
}

#: Table 3 (Robotic Instrument test set), quoted.
PAPER_TABLE3: Mapping[str, Mapping[str, float]] = {
    "Cross-entropy": {"Binary Pixel Acc.": 94.6, "Binary IoU": 86.0, "Multi-class Pixel Acc.": 81.1,
                      "Multi-class mIoU": 66.2},
    "Ours (offsets)": {"Binary Pixel Acc.": 95.8, "Binary IoU": 87.4, "Multi-class Pixel Acc.": 81.5,
                       "Multi-class mIoU": 72.5},
}

#: The four instrument parts of the multi-class task, in class order 1..4.
ROBOTIC_PARTS: tuple[str, ...] = ("Shaft", "Wrist", "Claspers", "Probe")

#: Table 4 (per-class IoU, Robotic Instrument multi-class test set), quoted.
PAPER_TABLE4: Mapping[str, Mapping[str, float]] = {
    "Cross-entropy": dict(zip(ROBOTIC_PARTS, (81.1, 55.3, 55.5, 72.9))),
    "Ours (offsets)": dict(zip(ROBOTIC_PARTS, (88.2, 67.1, 61.1, 73.4))),
}

#: Methods compared; the first two and the last are single runs, "Ours (offsets)" one run per
#: (τ, ν) of :data:`TABLE1_SETTINGS`.
METHODS: tuple[str, ...] = ("Cross-entropy", "Calibrated, no offsets", "Ours (offsets)", "Offsets, sides swapped")

#: The cross-entropy pre-trained model that every method is fine-tuned from, scored as it is
#: (no fine-tuning): the baseline the fine-tunings are compared against. Not a row of the paper.
PRETRAINED: str = "CE pre-training only"

#: Sizes of the two presets.
PRESETS: Mapping[str, Mapping[str, Any]] = {
    "fast": {"size": (48, 64), "n_train": 48, "n_val": 16, "n_test": 32, "width": 8, "depth": 2, "norm": "batch",
             "pretrain_epochs": 10, "finetune_epochs": 6, "batch_size": 4, "lr": 3e-3, "device": "cpu",
             "num_workers": 0,
             "scene": {"rare_contrast": 1.0, "noise": 0.3, "rare_radius": (2.5, 5.0), "rare_blobs": (1, 2)}},
    "full": {"size": (256, 320), "n_train": 1200, "n_val": 200, "n_test": 400, "width": 32, "depth": 4,
             "norm": "group", "pretrain_epochs": 50, "finetune_epochs": 50, "batch_size": 4, "lr": 1e-4,
             "device": "auto", "num_workers": 4, "scene": {"rare_contrast": 0.6, "noise": 0.3,
                                                          "common_radius": (28.0, 56.0), "rare_radius": (6.0, 14.0)}},
}

#: Sizes (H, W) the full preset resizes the real data to. The paper gives none (its code link is
#: anonymised, "github.com/XXX"); the public repository github.com/yutao1008/margin_calibration,
#: which presents itself as the implementation of the method, resizes EndoVis frames to 768×768
#: (datasets/robotic_instrument.py, ``Resize(768)``) and the COVID-19 slices to 224×336
#: (datasets/covid19_lesion.py, ``Resize((336, 224))`` in PIL's (W, H) order). 512×640 here keeps
#: EndoVis's 1024×1280 aspect ratio and fits a batch of 4.
FULL_DATA_SIZES: Mapping[str, tuple[int, int]] = {"robotic": (512, 640), "covid": (224, 336)}


# --------------------------------------------------------------------------- metrics


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(C, C)`` int64 counts, rows = true class, columns = predicted class (vectorized).

    Raises
    ------
    ValueError
        If shapes differ or values fall outside ``[0, C - 1]``.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target: expected equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}")
    for name, t in (("pred", pred), ("target", target)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
            raise ValueError(f"{name}: expected class indices in [0, {num_classes - 1}], "
                             f"got values in [{int(t.min())}, {int(t.max())}]")
    index = target.flatten().long() * num_classes + pred.flatten().long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes).cpu()


def scores_from_confusion(conf: torch.Tensor) -> dict[str, Any]:
    r"""Per-class IoU (eq. 1 over the whole split, ``0/0 = 1``), pixel accuracy and foreground mIoU.

    Returns
    -------
    dict
        ``iou`` (float64 ``(C,)``), ``pixel_accuracy``, ``miou`` (mean over classes ``1 … C−1``,
        or the IoU of class 1 when ``C = 2``: the "IoU" of the binary tasks) and ``miou_all``
        (mean over all classes, background included).
    """
    conf = conf.to(torch.float64)
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp_min(1), torch.ones_like(tp))
    return {"iou": iou, "pixel_accuracy": float(tp.sum() / conf.sum()), "miou": float(iou[1:].mean()),
            "miou_all": float(iou.mean())}


# --------------------------------------------------------------------------- losses and runs


def make_loss(method: str, counts: torch.Tensor | None = None, *, tau: float = 1.0, nu: float = 1.0) -> nn.Module:
    """The loss module of ``method`` (one of :data:`METHODS`); offsets from ``counts`` (``(C,)``).

    ``optimal_margins`` gets counts + 1 so that a class absent from the training set still gets
    a finite margin, and its ``RuntimeWarning`` for tiny ``ν`` (μ_k = 1 fallback) is kept.
    """
    check_option("method", method, METHODS)
    if method == "Cross-entropy":
        return nn.CrossEntropyLoss()
    if method == "Calibrated, no offsets":
        return CalibratedLogLoss(0.0)
    if counts is None:
        raise ValueError(f"counts: expected the (C,) training pixel counts for method {method!r}, got None")
    rho_0k, rho_k0 = optimal_margins(torch.as_tensor(counts, dtype=torch.float64) + 1, tau=tau, v=nu)
    pair = (rho_0k, rho_k0) if method == "Ours (offsets)" else (rho_k0, rho_0k)
    return CalibratedLogLoss(pair)


@torch.no_grad()
def evaluate_split(model: nn.Module, data: Dataset, num_classes: int, *, batch_size: int = 8,
                   device: str | torch.device = "cpu", loss: nn.Module | None = None) -> dict[str, Any]:
    """Confusion-matrix scores of ``model`` on ``data`` and, if ``loss`` is given, its mean per pixel.

    Streams the split (no stored outputs), so it works at the paper's sizes on a GPU.
    """
    dev = torch.device(device)
    was_training = model.training
    model.to(dev).eval()
    conf = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    loss_sum, pixels = 0.0, 0
    try:
        for x, y in DataLoader(data, batch_size=batch_size, shuffle=False):
            x, y = x.to(dev), y.to(dev)
            out = model(x).float()
            conf += confusion_matrix(out.argmax(1), y, num_classes)
            if loss is not None:
                loss_sum += float(loss.to(dev)(out, y)) * y.numel()
                pixels += y.numel()
    finally:
        model.train(was_training)
    res = scores_from_confusion(conf)
    res["confusion"] = conf
    res["loss"] = loss_sum / pixels if pixels else None
    return res


def _train(model: nn.Module, loss: nn.Module, data: Dataset, *, epochs: int, cfg: Mapping[str, Any], seed: int,
           name: str, deterministic: bool = False) -> nn.Module:
    config = {
        "name": name, "seed": seed, "epochs": epochs, "batch_size": cfg["batch_size"],
        "num_workers": cfg["num_workers"], "device": cfg["device"],
        "optimizer": {"name": "adamw", "lr": cfg["lr"]}, "metrics": ["iou"], "deterministic": deterministic,
    }
    with tempfile.TemporaryDirectory() as out:
        train(config, out_dir=out, model=model, loss=loss, train_data=data, val_data=None, verbose=False,
              progress=False)
    return model


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of a model's ``state_dict`` (names and raw bytes): which pre-trained weights a run
    started from, so that runs stored by different commands can be checked to share them."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def run_task(splits: Mapping[str, Dataset], num_classes: int, *, cfg: Mapping[str, Any], seed: int = 0,
             in_channels: int = 3, settings: Sequence[tuple[float, float]] = TABLE1_SETTINGS,
             swapped: bool = True, desc: str = "margin-calibration", store: RunStore | None = None) -> dict[str, Any]:
    """Pre-train with CE, fine-tune each method from the same weights, score val and test.

    Parameters
    ----------
    splits : mapping
        ``{"train", "val", "test"}`` datasets yielding ``(image, labels)``.
    num_classes : int
        ``C`` (background included).
    cfg : mapping
        An entry of :data:`PRESETS` (``width``, ``depth``, ``norm``, epochs, ``batch_size``,
        ``lr``, ``device``, ``num_workers``).
    settings : sequence of (τ, ν)
        The offsets runs (Table 1).
    swapped : bool
        Also fine-tune with the swapped offsets at the selected (τ, ν).
    desc : str
        Label of the progress bar; with a ``store``, the prefix of the run keys.
    store : RunStore, optional
        Each fine-tuning run goes through it (:class:`~softseg.reproduce.RunStore`, key
        ``"<desc>/<run name>"``; its results hold lists where the evaluation had tensors), and the
        pre-trained weights are kept beside the runs (``"<desc>/pretrain"``): a continued
        reproduction neither fine-tunes a stored run again nor pre-trains again. Pre-training
        uses deterministic kernels, and every run records the digest of the weights it started
        from (:func:`weights_digest`); stored runs that started from other weights than the
        rest (pre-trained again on another machine) are fine-tuned again.

    Returns
    -------
    dict
        ``counts`` (training pixel counts), ``val`` and ``test``: mappings from a run name
        (:data:`PRETRAINED`, ``"Cross-entropy"``, ``"Calibrated, no offsets"``, ``"tau=…, nu=…"``,
        ``"Offsets, sides swapped"``) to :func:`evaluate_split` results; ``selected``: the (τ, ν)
        with the best validation mIoU, whose test result is also stored as ``"Ours (offsets)"``.
    """
    missing = {"train", "val", "test"} - set(splits)
    if missing:
        raise ValueError(f"splits: expected keys 'train', 'val', 'test', missing {sorted(missing)}")
    if not settings:
        raise ValueError("settings: expected at least one (tau, nu) pair for the offsets runs, got none")
    dev = select_device(cfg["device"])
    counts = label_counts(splits["train"], num_classes)
    runs: list[tuple[str, str, float, float]] = [(PRETRAINED, PRETRAINED, 1.0, 1.0),
                                                 ("Cross-entropy", "Cross-entropy", 1.0, 1.0),
                                                 ("Calibrated, no offsets", "Calibrated, no offsets", 1.0, 1.0)]
    runs += [(f"tau={t:g}, nu={v:g}", "Ours (offsets)", t, v) for t, v in settings]
    total = 1 + len(runs) + int(swapped)  # pre-training, the runs (the PRETRAINED scoring among them), swapped
    bar = tqdm(total=total, desc=desc, leave=False)
    store = store or RunStore.transient()
    pretrained: list[tuple[nn.Module, str]] = []  # (the CE weights every run starts from, their digest)

    def base() -> tuple[nn.Module, str]:
        if not pretrained:
            torch.manual_seed(seed)
            model = UNet(in_channels, num_classes, width=cfg["width"], depth=cfg["depth"], norm=cfg["norm"])
            state = store.load_tensors(f"{desc}/pretrain")
            if state is not None:
                model.load_state_dict(state)
            else:  # deterministic kernels: pre-training again on a fresh machine gives the same weights
                _train(model, nn.CrossEntropyLoss(), splits["train"], epochs=cfg["pretrain_epochs"], cfg=cfg,
                       seed=seed, name="pretrain-ce", deterministic=True)
                store.save_tensors(f"{desc}/pretrain", model.state_dict())
            pretrained.append((model, weights_digest(model)))
            bar.update()
        return pretrained[0]

    def finetune(name: str, method: str, tau: float, nu: float) -> dict[str, Any]:
        start, digest = base()
        if method == PRETRAINED:  # the common starting point itself, scored without fine-tuning
            model, val_loss = copy.deepcopy(start), None  # a copy: evaluation must not move `start`
        else:
            loss = make_loss(method, counts, tau=tau, nu=nu)
            model = _train(copy.deepcopy(start), loss, splits["train"], epochs=cfg["finetune_epochs"], cfg=cfg,
                           seed=seed + 1, name=re.sub(r"[^\w.+-]+", "_", name))
            val_loss = loss if method != "Cross-entropy" else None
        return {"base": digest,
                "val": evaluate_split(model, splits["val"], num_classes, batch_size=cfg["batch_size"], device=dev,
                                      loss=val_loss),
                "test": evaluate_split(model, splits["test"], num_classes, batch_size=cfg["batch_size"], device=dev)}

    done: dict[str, dict[str, Any]] = {}
    specs: dict[str, tuple[str, str, float, float]] = {}

    def run_one(name: str, method: str, tau: float, nu: float) -> None:
        specs[name] = (name, method, tau, nu)
        key = f"{desc}/{name}"
        done[name] = store.run(key, lambda: finetune(*specs[name]))
        bar.update()

    def same_start(names: Sequence[str]) -> None:
        # Stored runs of an earlier command whose pre-trained weights differ from those in use now
        # (pre-trained again elsewhere) are fine-tuned again: every method starts from one model.
        if len({done[n]["base"] for n in names}) > 1:
            _, digest = base()
            for n in names:
                if done[n]["base"] != digest:
                    store.forget(f"{desc}/{n}")
                    run_one(*specs[n])

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="optimal_margins: mu_k's denominator", category=RuntimeWarning)
        for spec in runs:
            run_one(*spec)
        same_start([r[0] for r in runs])
        # every (tau, nu) done: select on validation mIoU
        selected = max(settings, key=lambda s: done[f"tau={s[0]:g}, nu={s[1]:g}"]["val"]["miou"])
        chosen = f"tau={selected[0]:g}, nu={selected[1]:g}"
        names = [r[0] for r in runs]
        if swapped:
            # the selection is part of the name: a stored swapped run of another selection is not reused
            run_one(f"Offsets, sides swapped ({chosen})", "Offsets, sides swapped", *selected)
            names.append(f"Offsets, sides swapped ({chosen})")
            same_start(names)
    val = {n: done[n]["val"] for n in names}
    test = {n: done[n]["test"] for n in names}
    val["Ours (offsets)"], test["Ours (offsets)"] = val[chosen], test[chosen]
    if swapped:
        key = f"Offsets, sides swapped ({chosen})"
        val["Offsets, sides swapped"], test["Offsets, sides swapped"] = val.pop(key), test.pop(key)
    bar.close()
    return {"counts": counts, "val": val, "test": test, "selected": selected}


# --------------------------------------------------------------------------- data of the presets


def synthetic_splits(cfg: Mapping[str, Any], seed: int = 0) -> dict[str, ImbalancedScenes]:
    """Train/val/test :class:`~softseg.data.scenes.ImbalancedScenes` of a preset (distinct seeds)."""
    return {split: ImbalancedScenes(cfg[f"n_{split}"], size=cfg["size"], seed=1000 * seed + k, **cfg.get("scene", {}))
            for k, split in enumerate(("train", "val", "test"))}


def _find_data(data: str | Path) -> dict[str, Path]:
    """Locate the EndoVis 2017 and UESTC COVID-19 roots under ``data``."""
    root = Path(data)
    if not root.is_dir():
        raise ValueError(f"data: expected a folder holding EndoVis 2017 (instrument_dataset_*) and/or UESTC "
                         f"COVID-19 (part1/, part2/) data, got {str(root)!r} (not found)")
    found: dict[str, Path] = {}
    for cand in (root / "robotic", root / "endovis2017", root / "training", root):
        if cand.is_dir() and any(cand.glob("instrument_dataset_*")):
            found["robotic"] = cand
            break
    for cand in (root / "covid", root / "covid19_lesion", root / "UESTC-COVID-19", root):
        if cand.is_dir() and ((cand / "part1").is_dir() or (cand / "part2").is_dir()):
            found["covid"] = cand
            break
    if not found:
        raise ValueError(f"data: expected {root}/[robotic/]instrument_dataset_*/ or {root}/[covid/]part1|part2/, "
                         f"found neither (entries: {sorted(p.name for p in root.iterdir())[:10]})")
    return found


# --------------------------------------------------------------------------- rows


def _pct(x: float) -> float:
    return 100.0 * float(x)


def _table1_rows(res: Mapping[str, Any], dataset: str, metric: str, *, note: str,
                 table: str = "Table 1") -> list[dict[str, Any]]:
    rows = []
    for tau, nu in TABLE1_SETTINGS:
        key = f"tau={tau:g}, nu={nu:g}"
        if key not in res["val"]:
            continue
        paper = PAPER_TABLE1[(tau, nu)]
        rows.append({"table": table, "row": key, "column": f"{dataset} {metric}", "ours": _pct(res["val"][key]["miou"]),
                     "paper": paper[f"{dataset} {metric}"], "note": note})
        rows.append({"table": table, "row": key, "column": f"{dataset} Loss", "ours": res["val"][key]["loss"],
                     "paper": paper[f"{dataset} Loss"], "note": note})
    return rows


def _comparison_rows(res: Mapping[str, Any], table: str, prefix: str, metric: str, paper: Mapping[str, Mapping],
                     *, note: str) -> list[dict[str, Any]]:
    rows = []
    for method in (PRETRAINED, *METHODS):
        if method not in res["test"]:
            continue
        r = res["test"][method]
        quoted = paper.get(method, {})
        rows.append({"table": table, "row": method, "column": f"{prefix}Pixel Acc.", "ours": _pct(r["pixel_accuracy"]),
                     "paper": quoted.get(f"{prefix}Pixel Acc."), "note": note})
        rows.append({"table": table, "row": method, "column": f"{prefix}{metric}", "ours": _pct(r["miou"]),
                     "paper": quoted.get(f"{prefix}{metric}"), "note": note})
    return rows


def _per_class_rows(res: Mapping[str, Any], table: str, names: Sequence[str], paper: Mapping[str, Mapping] | None,
                    *, note: str) -> list[dict[str, Any]]:
    rows = []
    for method in (PRETRAINED, *METHODS):
        if method not in res["test"]:
            continue
        iou = res["test"][method]["iou"]
        for k, name in enumerate(names, start=1):
            quoted = (paper or {}).get(method, {}).get(name)
            rows.append({"table": table, "row": method, "column": name, "ours": _pct(iou[k]), "paper": quoted,
                         "note": note})
    return rows


def synthetic_rows(res: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Result rows of a synthetic-scene run, the paper's robotic multi-class values quoted beside.

    The stand-in's four foreground classes are matched to the paper's parts by frequency rank
    only (two common, two rare): the quoted values are context, not targets.
    """
    names = ("common 1 (Shaft)", "common 2 (Wrist)", "rare 1 (Claspers)", "rare 2 (Probe)")
    paper4 = {m: {n: PAPER_TABLE4[m][p] for n, p in zip(names, ROBOTIC_PARTS)} for m in PAPER_TABLE4}
    # "(synthetic stand-in)" keeps these cells apart from the real-data rows of run(..., data=PATH):
    # the status page merges rows by (reproduction, table, row, column).
    rows = _table1_rows(res, "Robotic", "mIoU", note="margin-tau", table="Table 1 (synthetic stand-in)")
    rows += _comparison_rows(res, "Table 3 (synthetic stand-in)", "Multi-class ", "mIoU", PAPER_TABLE3,
                             note="margin-training")
    rows += _per_class_rows(res, "Table 4 (synthetic stand-in)", names, paper4, note="margin-training")
    return rows


# --------------------------------------------------------------------------- the reproduction


@register("margin-calibration", paper="Li, Yu & Zhang, Distribution-aware Margin Calibration", trains=True,
          description="CE vs calibrated log-loss without/with distribution-aware offsets: per-class IoU, mIoU "
                      "(Tables 3-4) and the tau/nu sensitivity of Table 1; fast: synthetic imbalanced scenes")
def run(preset: str, *, data: str | Path | None = None, seed: int = 0, epochs: int | None = None,
        store: RunStore | None = None) -> list[dict[str, Any]]:
    """Run the experiment of a preset and return the result rows (see the module docstring).

    ``epochs`` replaces both the pre-training and the fine-tuning epochs of the preset; ``store``
    keeps each finished run (:func:`run_task`), so a time-budgeted ``full`` run continues.
    """
    check_option("preset", preset, tuple(PRESETS))
    cfg = dict(PRESETS[preset])
    if epochs is not None:
        cfg["pretrain_epochs"] = cfg["finetune_epochs"] = check_int("epochs", epochs, 1)
    if store is not None:
        store.add_to_fingerprint(settings=cfg)
    if data is None:
        res = run_task(synthetic_splits(cfg, seed), 5, cfg=cfg, seed=seed, desc=f"margin-calibration ({preset})",
                       store=store)
        return synthetic_rows(res)
    if preset == "fast":
        raise ValueError("data: the fast preset runs on the synthetic scenes; pass --preset full with --data")
    found = _find_data(data)
    rows: list[dict[str, Any]] = []
    if "robotic" in found:
        from ..data.robotic import EndoVisInstruments

        for task, classes in (("binary", 2), ("parts", 5)):
            splits = {s: EndoVisInstruments(found["robotic"], split=s, task=task, size=FULL_DATA_SIZES["robotic"])
                      for s in ("train", "val", "test")}
            res = run_task(splits, classes, cfg=cfg, seed=seed, settings=TABLE1_SETTINGS if task == "parts" else
                           ((1.0, 1.0), (10.0, 1.0)), desc=f"robotic {task}", store=store)
            if task == "binary":
                rows += _comparison_rows(res, "Table 3", "Binary ", "IoU", PAPER_TABLE3, note="margin-training")
            else:
                rows += _table1_rows(res, "Robotic", "mIoU", note="margin-tau")
                rows += _comparison_rows(res, "Table 3", "Multi-class ", "mIoU", PAPER_TABLE3, note="margin-training")
                rows += _per_class_rows(res, "Table 4", ROBOTIC_PARTS, PAPER_TABLE4, note="margin-training")
    if "covid" in found:
        from ..data.covid_ct import CovidLesionSlices

        for part in (1, 2):
            if not (found["covid"] / f"part{part}").is_dir():
                continue
            splits = {s: CovidLesionSlices(found["covid"], part=part, split=s, size=FULL_DATA_SIZES["covid"])
                      for s in ("train", "val", "test")}
            res = run_task(splits, 2, cfg=cfg, seed=seed, in_channels=1,
                           settings=TABLE1_SETTINGS if part == 1 else ((1.0, 1.0), (10.0, 1.0)),
                           desc=f"covid part {part}", store=store)
            if part == 1:
                rows += _table1_rows(res, "COVID-19", "IoU", note="margin-tau")
            rows += _comparison_rows(res, "Table 2", f"Part {part} ", "IoU", PAPER_TABLE2, note="margin-training")
    return rows
