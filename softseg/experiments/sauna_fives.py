r"""SAUNA (Dang, Nguyen & Tiulpin), Tables 1 and 3: SAUNA + GJML + Stable Focal-L1 vs baselines on FIVES.

The registered reproduction ``sauna-fives`` trains one U-Net per *method* with the shared loop
(:func:`softseg.train.train`) and evaluates it against the hard masks of a test set:

=====================  =================================  ==================================
method                 target                             loss (network output)
=====================  =================================  ==================================
``hard``               0/1 mask                           BCE + soft Dice (logits, sigmoid)
``ls``                 label smoothing, ε = 0.1           JML (sigmoid), as the paper's LS row
``bls``                boundary LS, ε = 0.1, 5 × 5 band   JML (sigmoid), as the paper's BLS row
``sauna``              SAUNA map (eqs. 1–5)               GJML + Stable Focal-L1 (tanh)
``no_thickness``       :math:`y^B` only (eq. 3)           GJML + SF-L1 (Table 3a)
``no_distance``        :math:`y^T` only (eq. 4)           GJML + SF-L1 (Table 3a)
``no_gjml``            SAUNA                              SF-L1 only (Table 3b)
``no_sfl1``            SAUNA                              GJML only (Table 3b)
``focal``              SAUNA                              GJML + Focal-L1 (eq. 8, the loss of [8])
=====================  =================================  ==================================

Every method trains the same U-Net. The paper's LS and BLS rows were trained with UNet++ ("The
soft-label baselines also used the UNet++ network", Sect. 4.1): their row names say so, since the
paper's numbers quoted beside ours come from those rows. ε = 0.1 and the loss weights are this
book's choices: the paper gives no ε, and the authors' released code smooths with ε = 0.5 as
:math:`(1 - \epsilon) y + \epsilon` (foreground 1, background 0.5), in a 5 × 5 band for BLS. The
SAUNA targets use :func:`~softseg.labels.sauna_transform`'s default, the ``"foreground"``
reading of eq. (2) (the paper's "positive distance map", as the released code). The ``focal``
row replaces SF-L1 by Focal-L1 inside the combination; Sect. 4.2's comparison ("both the stable
Focal-L1 loss and GJML individually outperformed the Focal-L1 loss") is a different one.

Predictions are foreground where the network's output is :math:`\ge 0` (logits for sigmoid
models, :math:`\tanh` maps for the SAUNA models: "we employed 0 as the threshold to binarize the
SAUNA maps", Sect. 4.1). Metrics (IoU, Dice, sensitivity, specificity, balanced accuracy) are
image-wise means in percent, as Table 1; throughput is inference images per second of the trained
model (batch 4, evaluation mode, after a warm-up).

Presets
-------
``fast`` (CPU, the book's live run): *synthetic* fundus images (:mod:`softseg.data.vessels`),
64 × 64, 96 training and 24 test images, a U-Net of width 6 and depth 2, batch 4, Adam with
learning rate 1e-2 (the paper's 1e-4 does not move a tiny network in a few epochs), 5 epochs:
about 5 s per model on one CPU thread, the nine models in about a minute. The fast preset runs
torch on one thread (``threads``): faster than two on a shared 2-core machine, and the same
floating-point reductions wherever it runs, so a seed gives the same numbers.
``full`` (GPU): the paper's settings — 512 × 512 inputs, U-Net of width 64 and depth 4, Adam
1e-4, batch 4, 300 epochs, random flips and 90° rotations — on FIVES when ``data`` is given
(the folder holding ``train/`` and ``test/``, or a folder holding it and optionally DRIVE,
STARE, CHASEDB1 and HRF, which are then evaluated as the external sets of Table 2), else on 800
synthetic 512 × 512 images (600 train / 200 test). Single seed; the paper averages 5 seeds × a
5-fold ensemble.

Paper values are quoted from Tables 1–2. Table 3's body is missing from the paper text we have;
its caption and Sect. 4.2 give the IoU *changes* quoted here (−1.88 without the thickness term,
−0.32 without GJML, −0.39 without SF-L1, read as percentage points).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import metrics as _metrics
from .._checks import check_int, check_option
from ..reproduce import RunStore, register

__all__ = ["METHODS", "TABLE1_METHODS", "ABLATIONS", "PAPER_TABLE1", "PAPER_TABLE2", "PAPER_TABLE3_DELTA",
           "preset_settings", "build_data", "train_method", "evaluate_method", "run_grid", "seed_study", "run"]

_BCE_DICE = [{"name": "BCEWithLogitsLoss", "weight": 1.0}, {"name": "SoftDiceLoss", "activation": "sigmoid", "weight": 1.0}]
_JML = {"name": "JaccardMetricLoss", "activation": "sigmoid"}
_GJML = {"name": "GeneralizedJaccardMetricLoss", "activation": "tanh", "weight": 1.0}
_SFL1 = {"name": "StableFocalL1Loss", "activation": "tanh", "weight": 1.0}
_FL1 = {"name": "FocalL1Loss", "activation": "tanh", "weight": 1.0}

#: method -> (label, target kind, loss section)
METHODS: dict[str, tuple[str, str, Any]] = {
    "hard": ("UNet, hard labels, BCE + Dice", "mask", _BCE_DICE),
    # ours are UNets; the paper's LS and BLS numbers quoted beside them are its UNet++ rows
    "ls": ("UNet, LS, JML (paper's row: UNet++)", "ls", _JML),
    "bls": ("UNet, BLS, JML (paper's row: UNet++)", "bls", _JML),
    "sauna": ("UNet, SAUNA, GJML + SF-L1 (ours)", "sauna", [_GJML, _SFL1]),
    "no_thickness": ("without thickness term (y^B only)", "sauna_boundary", [_GJML, _SFL1]),
    "no_distance": ("without distance term (y^T only)", "sauna_thickness", [_GJML, _SFL1]),
    "no_gjml": ("without GJML (SF-L1 only)", "sauna", [_SFL1]),
    "no_sfl1": ("without SF-L1 (GJML only)", "sauna", [_GJML]),
    "focal": ("GJML + Focal-L1 instead of SF-L1", "sauna", [_GJML, _FL1]),
}
TABLE1_METHODS = ("hard", "ls", "bls", "sauna")
ABLATIONS = ("no_thickness", "no_distance", "no_gjml", "no_sfl1", "focal")
COLUMNS = ("IoU", "Dice", "Sens", "Spec", "BA")

#: Table 1 (FIVES test set, low resolution): UNet hard labels; LS and BLS (UNet++ with JML);
#: Ours (UNet). IoU, Dice, Sens, Spec, BA in percent, Imgs/s.
PAPER_TABLE1 = {
    "hard": {"IoU": 73.21, "Dice": 84.15, "Sens": 84.08, "Spec": 98.86, "BA": 91.47, "Imgs/s": 38.89},
    "ls": {"IoU": 80.47, "Dice": 88.57, "Sens": 88.14, "Spec": 99.27, "BA": 93.70, "Imgs/s": 30.45},
    "bls": {"IoU": 81.77, "Dice": 89.43, "Sens": 90.09, "Spec": 99.23, "BA": 94.66, "Imgs/s": 30.45},
    "sauna": {"IoU": 84.54, "Dice": 91.04, "Sens": 90.81, "Spec": 99.44, "BA": 95.13, "Imgs/s": 41.67},
}
#: Table 2 (IoU on the external sets): UNet hard labels; LS and BLS (UNet++); Ours (UNet).
PAPER_TABLE2 = {
    "hard": {"STARE": 69.1, "DRIVE": 64.5, "CHASEDB1": 65.9, "HRF": 57.0},
    "ls": {"STARE": 70.3, "DRIVE": 67.4, "CHASEDB1": 67.0, "HRF": 59.6},
    "bls": {"STARE": 71.0, "DRIVE": 68.1, "CHASEDB1": 67.2, "HRF": 61.0},
    "sauna": {"STARE": 72.6, "DRIVE": 68.5, "CHASEDB1": 67.5, "HRF": 62.9},
}
#: Sect. 4.2 on Table 3: IoU change against the full method (percentage points).
PAPER_TABLE3_DELTA = {"no_thickness": -1.88, "no_distance": None, "no_gjml": -0.32, "no_sfl1": -0.39, "focal": None}


def preset_settings(preset: str) -> dict[str, Any]:
    """Sizes and training settings of a preset (see the module docstring)."""
    check_option("preset", preset, ("fast", "full"))
    if preset == "fast":
        return {"size": 64, "n_train": 96, "n_test": 24, "width": 6, "depth": 2, "epochs": 5, "batch_size": 4,
                "lr": 1e-2, "augment": False, "device": "cpu", "num_workers": 0, "threads": 1}
    return {"size": 512, "n_train": 600, "n_test": 200, "width": 64, "depth": 4, "epochs": 300, "batch_size": 4,
            "lr": 1e-4, "augment": True, "device": "auto", "num_workers": 4, "threads": None}


class _Augmented(Dataset):
    """Random flips and 90° rotations of ``(image, target)`` (torch's global RNG, which the
    training loop reseeds every epoch)."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index):
        x, y = self.base[index]
        k, flip = (int(v) for v in torch.randint(0, 4, (2,)))
        x, y = torch.rot90(x, k, (-2, -1)), torch.rot90(y, k, (-2, -1))
        if flip % 2:
            x, y = x.flip(-1), y.flip(-1)
        return x.contiguous(), y.contiguous()


def _fives_root(data: Path) -> Path:
    if (data / "train").is_dir() and (data / "test").is_dir():
        return data
    cands = [p for p in sorted(data.iterdir()) if p.is_dir() and p.name.upper().startswith("FIVES")]
    if not cands:
        raise ValueError(f"data: expected the FIVES folder (holding train/ and test/) or a folder holding "
                         f"'FIVES*/train' and 'FIVES*/test', got {str(data)!r}")
    return cands[0]


def build_data(preset: str, target: str = "mask", *, data=None, seed: int = 0,
               settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Training set (with ``target``), test set (hard masks) and external test sets of a run.

    Returns
    -------
    dict
        ``train`` (Dataset of ``(image, target)`` with ``.with_target(kind)``), ``test``
        (Dataset with ``.mask(i)``), ``external`` (``{name: Dataset}``, only with real data),
        ``synthetic`` (bool), ``augment`` (bool: wrap ``train`` in random flips/rotations).
    """
    from ..data import retina, vessels

    s = dict(preset_settings(preset) if settings is None else settings)
    if data is None:
        # drawn once, before the DataLoader workers fork (a 512 x 512 image takes about a second)
        progress = preset == "full"
        workers = 1 if preset == "fast" else min(16, os.cpu_count() or 1)
        train = vessels.SyntheticVesselDataset(s["n_train"], s["size"], seed=1000 * seed + 1,
                                               target=target).precompute(progress, workers)
        test = vessels.SyntheticVesselDataset(s["n_test"], s["size"], seed=1000 * seed + 2,
                                              target="mask").precompute(progress, workers)
        external = {}
        synthetic = True
    else:
        root = Path(data)
        if not root.is_dir():
            raise ValueError(f"data: expected an existing folder, got {str(root)!r}")
        fives = _fives_root(root)
        # resized once (threads), before the DataLoader workers fork
        progress = preset == "full"
        train = retina.RetinaDataset(retina.fives_pairs(fives, "train"), s["size"], target=target).precompute(progress)
        test = retina.RetinaDataset(retina.fives_pairs(fives, "test"), s["size"], target="mask").precompute(progress)
        external = {}
        for name, folder, loader in (("STARE", "STARE", retina.stare_pairs), ("DRIVE", "DRIVE", retina.drive_pairs),
                                     ("CHASEDB1", "CHASEDB1", retina.chase_pairs), ("HRF", "HRF", retina.hrf_pairs)):
            for cand in (root / folder, root / folder.replace("DB1", "_DB1"), root.parent / folder):
                if cand.is_dir():
                    sub = cand / "CHASEDB1" if name == "CHASEDB1" and (cand / "CHASEDB1").is_dir() else cand
                    external[name] = retina.RetinaDataset(loader(sub), s["size"], target="mask")
                    break
        synthetic = False
    return {"train": train, "test": test, "external": external, "synthetic": synthetic, "augment": s["augment"]}


def train_method(method: str, preset: str = "fast", *, data=None, seed: int = 0, out_dir=None,
                 settings: Mapping[str, Any] | None = None, datasets: Mapping[str, Any] | None = None,
                 progress: bool | None = None):
    """Train the U-Net of ``method`` (a key of :data:`METHODS`); returns ``(model, summary, datasets)``."""
    from ..train import train

    check_option("method", method, tuple(METHODS))
    s = dict(preset_settings(preset) if settings is None else settings)
    _, target, loss = METHODS[method]
    ds = datasets if datasets is not None else build_data(preset, target, data=data, seed=seed, settings=s)
    train_data = ds["train"].with_target(target)
    if ds.get("augment"):
        train_data = _Augmented(train_data)
    config = {
        "name": f"sauna-{method}", "seed": seed, "device": s["device"], "epochs": s["epochs"],
        "batch_size": s["batch_size"], "num_workers": s["num_workers"], "drop_last": True,
        "model": {"name": "unet", "in_channels": 3, "out_channels": 1, "width": s["width"], "depth": s["depth"]},
        "loss": loss, "optimizer": {"name": "adam", "lr": s["lr"]},
        "metric_mode": "tanh" if target.startswith("sauna") else "sigmoid",
    }
    from ..config import build_model

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(seed)
        model = build_model(config["model"])
        summary = train(config, out_dir=out_dir or tmp, model=model, train_data=train_data, val_data=None,
                        overwrite=True, verbose=False, progress=progress)
    return model.eval(), summary, ds


@torch.no_grad()
def evaluate_method(model, test: Dataset, *, batch_size: int = 4, device: str = "auto",
                    repeats: int = 3) -> dict[str, Any]:
    """Metrics (percent, image-wise means) of ``model`` on ``test`` against its hard masks, the
    outputs and the inference throughput (images/s: the fastest of ``repeats`` passes over the
    test set in batches of ``batch_size``, after a warm-up batch)."""
    from ..train import predict, select_device

    dev = select_device(device)
    n = len(test)
    images = torch.stack([test[i][0] for i in range(n)])
    masks = torch.stack([test.mask(i) for i in range(n)])[:, None]
    predict(model, images[:batch_size], batch_size=batch_size, device=str(dev))            # warm-up
    elapsed = math.inf
    for _ in range(repeats):  # the fastest pass: the least disturbed by other load on the machine
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        out = predict(model, images, batch_size=batch_size, device=str(dev))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        elapsed = min(elapsed, time.perf_counter() - t0)
    pred = out >= 0
    res = {
        "IoU": _metrics.iou(pred, masks, threshold=None, reduction="none"),
        "Dice": _metrics.dice(pred, masks, threshold=None, reduction="none"),
        "Sens": _metrics.sensitivity(pred, masks, threshold=None, reduction="none"),
        "Spec": _metrics.specificity(pred, masks, threshold=None, reduction="none"),
        "BA": _metrics.balanced_accuracy(pred, masks, threshold=None, reduction="none"),
    }
    per_image = {k: v[:, 0].cpu().numpy() * 100 for k, v in res.items()}
    return {"means": {k: float(v.mean()) for k, v in per_image.items()}, "per_image": per_image,
            "images_per_s": n / elapsed, "outputs": out, "masks": masks[:, 0], "images": images}


def run_grid(preset: str = "fast", *, data=None, seed: int = 0, methods: Sequence[str] | None = None,
             settings: Mapping[str, Any] | None = None, progress: bool | None = None,
             datasets: Mapping[str, Any] | None = None, store: RunStore | None = None) -> dict[str, Any]:
    """Train and evaluate every method; returns ``{"rows", "results", "settings", "synthetic"}``.

    ``results[method]`` holds the evaluation of :func:`evaluate_method` plus ``train_s`` and,
    with real data, ``external`` IoUs. ``datasets``: the output of :func:`build_data` for the
    same ``preset``/``data``/``seed``/``settings``, to reuse images already drawn. ``store``: a
    :class:`~softseg.reproduce.RunStore` through which each method's run goes (one run per
    method); a store that keeps its runs in a folder keeps only the numbers the rows need
    (``means``, ``images_per_s``, ``train_s``, ``external``). The data are drawn only if some run
    is not stored yet.
    """
    s = dict(preset_settings(preset) if settings is None else settings)
    methods = list(TABLE1_METHODS + ABLATIONS) if methods is None else list(methods)
    for m in methods:
        check_option("methods", m, tuple(METHODS))
    results: dict[str, Any] = {}
    synthetic = data is None if datasets is None else bool(datasets["synthetic"])
    old_threads = torch.get_num_threads()
    if s.get("threads"):
        torch.set_num_threads(int(s["threads"]))
    shared: dict[str, Any] = dict(datasets) if datasets is not None else {}

    store = store or RunStore.transient()

    def method_result(m: str) -> dict[str, Any]:
        if not shared:  # drawn (or read) once, at the first run that is not stored
            shared.update(build_data(preset, data=data, seed=seed, settings=s))
        t0 = time.perf_counter()
        model, _, ds = train_method(m, preset, seed=seed, settings=s, datasets=shared, progress=progress)
        train_s = time.perf_counter() - t0
        ev = evaluate_method(model, ds["test"], device=s["device"])
        ev["train_s"] = train_s
        ev["external"] = {name: evaluate_method(model, ext, device=s["device"])["means"]["IoU"]
                          for name, ext in ds["external"].items()}
        return ev

    try:
        for m in methods:
            results[m] = store.run(m, lambda m=m: method_result(m), keep=("means", "images_per_s", "train_s",
                                                                          "external"))
    finally:
        torch.set_num_threads(old_threads)
    return {"rows": rows_from_results(results, synthetic=synthetic), "results": results, "settings": s,
            "synthetic": synthetic}


def seed_study(preset: str = "fast", *, seeds: Sequence[int] = (0, 1, 2), methods: Sequence[str] = TABLE1_METHODS,
               settings: Mapping[str, Any] | None = None, known: Mapping[int, Mapping[str, Any]] | None = None,
               progress: bool | None = False) -> dict[str, Any]:
    """Test IoU of ``methods`` trained with each of ``seeds`` (synthetic data of ``preset``).

    Each seed draws its own synthetic training and test images (:func:`build_data`) and
    initialises the networks from it, as :func:`run_grid` does. ``known``: ``{seed: results}``
    of :func:`run_grid` runs already made with the same ``preset`` and ``settings`` (e.g. the
    chapter's live seed), reused instead of retrained.

    Returns
    -------
    dict
        ``seeds`` (list), ``methods`` (list), ``iou`` (``{method: numpy array (S,)}``, percent),
        ``rank`` (``{method: array (S,)}``, 1 = highest IoU of the seed) and ``train_s``
        (seconds spent training the models not in ``known``).
    """
    s = dict(preset_settings(preset) if settings is None else settings)
    seeds = [check_int("seeds", k, 0) for k in seeds]
    methods = list(methods)
    for m in methods:
        check_option("methods", m, tuple(METHODS))
    known = dict(known or {})
    iou = {m: np.empty(len(seeds)) for m in methods}
    t0 = time.perf_counter()
    for k, seed in enumerate(seeds):
        have = known.get(seed, {})
        todo = [m for m in methods if m not in have]
        res = dict(have)
        if todo:
            res.update(run_grid(preset, seed=seed, methods=todo, settings=s, progress=progress)["results"])
        for m in methods:
            iou[m][k] = res[m]["means"]["IoU"]
    table = np.stack([iou[m] for m in methods])                  # (M, S)
    order = (-table).argsort(0).argsort(0) + 1                    # rank within each seed
    return {"seeds": seeds, "methods": methods, "iou": iou, "rank": {m: order[i] for i, m in enumerate(methods)},
            "train_s": time.perf_counter() - t0}


def rows_from_results(results: Mapping[str, Any], *, synthetic: bool) -> list[dict[str, Any]]:
    """Result rows (:mod:`softseg.results` format) from :func:`run_grid`'s ``results``."""
    tag = " (synthetic)" if synthetic else ""
    rows = []
    for m in TABLE1_METHODS:
        if m not in results:
            continue
        label = METHODS[m][0] + tag
        for col in COLUMNS:
            rows.append({"table": "Table 1", "row": label, "column": col, "ours": results[m]["means"][col],
                         "paper": PAPER_TABLE1[m][col], "note": "sauna-training"})
        rows.append({"table": "Table 1", "row": label, "column": "Imgs/s", "ours": results[m]["images_per_s"],
                     "paper": PAPER_TABLE1[m]["Imgs/s"], "note": "sauna-training"})
        for name, value in results[m].get("external", {}).items():
            rows.append({"table": "Table 2", "row": label, "column": f"{name} IoU", "ours": value,
                         "paper": PAPER_TABLE2[m][name], "note": "sauna-training"})
    full = results.get("sauna")
    for m in ABLATIONS:
        if m not in results:
            continue
        label = METHODS[m][0] + tag
        rows.append({"table": "Table 3", "row": label, "column": "IoU", "ours": results[m]["means"]["IoU"],
                     "paper": None, "note": "sauna-ablation"})
        if full is not None:
            rows.append({"table": "Table 3", "row": label, "column": "IoU change vs full (pp)",
                         "ours": results[m]["means"]["IoU"] - full["means"]["IoU"],
                         "paper": PAPER_TABLE3_DELTA[m], "note": "sauna-ablation"})
    return rows


@register(
    "sauna-fives",
    paper="Dang, Nguyen & Tiulpin, Image-level Regression for Uncertainty-aware Retinal Image Segmentation",
    description="Tables 1 and 3: UNet with SAUNA targets + GJML + Stable Focal-L1 vs hard labels (BCE + Dice), "
                "LS and BLS (JML), and the ablations; synthetic vessels unless --data gives FIVES",
    trains=True,
)
def run(preset: str, *, data=None, seed: int = 0, epochs: int | None = None,
        store: RunStore | None = None) -> list[dict[str, Any]]:
    """Rows of Tables 1 (and 2 with external data) and 3; see the module docstring.

    ``epochs`` replaces the preset's training length; ``store`` keeps each method's finished run
    (:class:`~softseg.reproduce.RunStore`), so a time-budgeted ``full`` run continues where it stopped.
    """
    s = preset_settings(preset)
    if epochs is not None:
        s["epochs"] = check_int("epochs", epochs, 1)
    if store is not None:
        store.add_to_fingerprint(settings=s)
    return run_grid(preset, data=data, seed=seed, settings=s, progress=preset == "full", store=store)["rows"]
