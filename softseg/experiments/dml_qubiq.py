r"""Soft-label training on multi-rater data: CE + SDL vs CE + DML over label kinds (Table 2).

Wang, Popordanoska, Bertels, Lemmens & Blaschko, *Dice Semimetric Losses* (MICCAI 2023), Sect.
3.2-3.4 and Table 2: one segmentation network is trained on targets built from several raters
(majority vote, a random rater, the uniform or Dice-weighted mean, label smoothing), with the
loss :math:`0.25\,\mathrm{CE} + 0.75\,\bar\Delta_{\mathrm{DML},1}`, and scored by

* **Dice** of the prediction thresholded at 1/2 against the **majority vote**,
* **BDice**: Dice of prediction and raters' mean both thresholded at 0.1, 0.2, ..., 0.9, averaged
  (the QUBIQ metric, Sect. 3.3),
* **ECE** (10 equal-width bins, per image) against the majority vote,

all in percent, averaged over validation cases. This module runs that grid for the two losses
CE + SDL and CE + DML1 (Sect. 3.6 compares them in BDice, Table 6, whose numbers are in the
paper's appendix, not in the paper text) over the label kinds of
:data:`softseg.data.raters.LABEL_KINDS`, with two more columns that measure what DML promises,
agreement with the soft target itself: **ECE vs mean** (the ECE with the raters' mean as the
target: a pixel's accuracy is the fraction of raters who agree with the prediction) and **L1 to
mean**, the mean absolute difference between the predicted probability and the raters' mean, in
percent (0 for a prediction equal to the soft target).

The comparisons the chapter asserts are computed here: :func:`soft_vs_hard` (Table 2's claim,
soft against hard labels), :func:`dml_minus_sdl` (Sect. 3.6 and the book's own checks),
:func:`compare_with_committed` (live run against ``results/dml-qubiq.json``, within
:data:`COMMITTED_TOLERANCE`) and :func:`gradient_gap` (Theorem 2 in one training step).

* ``fast``: the synthetic multi-rater stand-in (:class:`softseg.data.raters.SyntheticRaters`, 5
  raters who disagree at the edges), 32 × 32 images, a small U-Net, a few CPU seconds per run.
  Its rows carry the paper's Table 2 "All" values beside them, for reference only: different
  data, no tolerance.
* ``full``: the paper's training schedule (256 × 256, 150 epochs, batch 8, SGD lr 0.01,
  momentum 0.9, weight decay 5e-4, poly 0.9), on a GPU, but with a U-Net of width 32 and depth 4
  trained from scratch, not the paper's ImageNet-pretrained UNet-ResNet50. With ``data`` (the
  QUBIQ 2020 root, see :mod:`softseg.data.qubiq`) it runs the 7 tasks with 5-fold
  cross-validation and fills Table 2 per task; without it, the synthetic set at 256 × 256.

Decisions where the paper is silent (also in the chapter): one foreground channel with a sigmoid
(binary tasks: CE is the binary cross-entropy and the Dice term is on the foreground);
``random`` draws a new rater at every access of a case (each epoch); the model after the last
epoch is evaluated. Label smoothing: the paper cites Szegedy et al. (its ref. [43]) and gives
no :math:`\epsilon`; its Table 2 has LS with a *lower* ECE than the majority vote, which rules
out smoothing every pixel with an :math:`\epsilon` like ours (a model fitting it pays about
:math:`\epsilon/2` of ECE against the majority on every confident pixel).
The authors' released code (JDTLosses, ``get_soft_label``, ``configs/labels/ls.yaml``) smooths
only the pixels within a 3 × 3 window of the boundary, with :math:`\epsilon = 0.5` (not
confirmed there as the QUBIQ setting). Both are run (:data:`LABEL_OPTIONS`): ``ls`` is global
LS of the majority vote with :math:`\epsilon = 0.1` (ours, no paper counterpart) and ``bls``
is that boundary LS (band radius 1, :math:`\epsilon = 0.5`), which carries the paper's "LS"
numbers. Deviations: the ``fast`` preset's small network, data, 12 epochs and learning rate
(0.05, where the paper gives 0.01).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import metrics
from .._checks import check_int, check_option
from ..config import build_loss
from ..data.raters import LABEL_KINDS, MultiRaterDataset, SyntheticRaters
from ..models import UNet
from ..reproduce import RunStore, register
from ..train import predict, train

__all__ = [
    "LOSSES",
    "LABEL_COLUMNS",
    "METRIC_COLUMNS",
    "BETTER",
    "HARD_LABELS",
    "SOFT_LABELS",
    "LABEL_OPTIONS",
    "PAPER_TABLE2",
    "PRESETS",
    "training_loss",
    "train_model",
    "evaluate_predictions",
    "agreement_curve",
    "run_grid",
    "synthetic_grid",
    "grid_rows",
    "metric_table",
    "paper_metric_table",
    "soft_vs_hard",
    "dml_minus_sdl",
    "COMMITTED_TOLERANCE",
    "compare_with_committed",
    "gradient_gap",
    "run",
]

#: The two training losses compared: 0.25 CE + 0.75 SDL (eq. 1) and 0.25 CE + 0.75 DML1 (eq. 4).
LOSSES: tuple[str, ...] = ("CE+SDL", "CE+DML")
#: Row name of each label kind: Table 2's column names for the four rater fusions; the two
#: smoothings say which is which (Table 2's "LS" is set beside "boundary LS", see LABEL_OPTIONS).
LABEL_COLUMNS: dict[str, str] = {"majority": "Majority", "random": "Random", "mean": "Uniform",
                                 "weighted": "Weighted", "ls": "global LS", "bls": "boundary LS"}
#: The inverse of :data:`LABEL_COLUMNS`: a results row's name -> its label kind.
_LABEL_KINDS: dict[str, str] = {column: kind for kind, column in LABEL_COLUMNS.items()}
#: Metrics reported, in percent (Sect. 3.3), and the extra L1 distance to the raters' mean.
METRIC_COLUMNS: tuple[str, ...] = ("Dice (%)", "BDice (%)", "ECE (%)", "ECE vs mean (%)", "L1 to mean (%)")
#: +1 where a higher value is better (Dice, BDice), -1 where a lower one is (ECE, L1).
BETTER: dict[str, int] = {"Dice (%)": 1, "BDice (%)": 1, "ECE (%)": -1, "ECE vs mean (%)": -1, "L1 to mean (%)": -1}
#: Table 2's hard labels (majority vote, a random rater) and rater-averaged soft labels (Sect. 3.4).
HARD_LABELS: tuple[str, ...] = ("majority", "random")
SOFT_LABELS: tuple[str, ...] = ("mean", "weighted")
#: Dataset options of the two smoothings (module doc): ``ls`` smooths every pixel of the majority
#: vote (Szegedy et al.; epsilon ours), ``bls`` only a band of radius 1 (3 x 3 window) around its
#: boundary with epsilon = 0.5, as the authors' released code does (JDTLosses, ``ls.yaml``:
#: epsilon 0.5, k = 3; foreground 1 - epsilon/2 = 0.75, background 0.25 in the band).
LABEL_OPTIONS: dict[str, dict[str, Any]] = {"ls": {"ls_eps": 0.1}, "bls": {"ls_eps": 0.5, "bls_width": 1}}

#: Table 2 of the paper (quoted): UNet-ResNet50 trained with CE + DML1 on QUBIQ, per task and "All";
#: columns Majority, Random, Uniform, Weighted, LS.
PAPER_TABLE2: dict[str, dict[str, tuple[float, float, float, float, float]]] = {
    "Prostate T1": {"Dice (%)": (95.65, 95.80, 95.74, 95.99, 95.71), "BDice (%)": (94.72, 95.15, 95.19, 95.37, 94.91),
                    "ECE (%)": (0.51, 0.39, 0.22, 0.20, 0.36)},
    "Prostate T2": {"Dice (%)": (89.39, 88.87, 89.57, 89.79, 89.82), "BDice (%)": (88.31, 88.23, 89.35, 89.66, 88.85),
                    "ECE (%)": (0.52, 0.47, 0.26, 0.25, 0.41)},
    "Brain Growth": {"Dice (%)": (91.09, 90.65, 90.94, 91.46, 91.23), "BDice (%)": (88.72, 88.81, 89.89, 90.40, 89.88),
                     "ECE (%)": (1.07, 0.85, 0.27, 0.34, 0.41)},
    "Brain Tumor T1": {"Dice (%)": (86.46, 87.24, 87.74, 87.78, 87.84),
                       "BDice (%)": (85.74, 86.59, 86.67, 86.92, 86.91), "ECE (%)": (0.62, 0.55, 0.38, 0.36, 0.37)},
    "Brain Tumor T2": {"Dice (%)": (58.58, 48.86, 52.42, 61.01, 61.23),
                       "BDice (%)": (38.68, 49.19, 55.11, 44.23, 40.61), "ECE (%)": (0.25, 0.81, 0.74, 0.26, 0.22)},
    "Brain Tumor T3": {"Dice (%)": (53.54, 54.64, 53.45, 56.75, 57.01),
                       "BDice (%)": (52.33, 53.53, 51.98, 53.90, 55.26), "ECE (%)": (0.17, 0.17, 0.14, 0.09, 0.11)},
    "Kidney": {"Dice (%)": (62.96, 68.10, 71.33, 76.18, 71.21), "BDice (%)": (62.47, 67.69, 70.82, 75.67, 70.41),
               "ECE (%)": (0.88, 0.78, 0.67, 0.53, 0.62)},
    "All": {"Dice (%)": (76.80, 76.30, 77.31, 79.85, 79.15), "BDice (%)": (72.99, 75.59, 77.00, 76.59, 75.26),
            "ECE (%)": (0.57, 0.57, 0.38, 0.29, 0.35)},
}
# Position of each label kind in PAPER_TABLE2's tuples. The paper's "LS" goes beside our boundary
# LS (the LS of the authors' code), not beside our global LS (module doc).
_TABLE2_INDEX: dict[str, int] = {"majority": 0, "random": 1, "mean": 2, "weighted": 3, "bls": 4}

#: Sizes of the two presets. ``fast``: synthetic, CPU; ``full``: the paper's training set-up.
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"size": 32, "n_train": 48, "n_val": 32, "raters": 5, "synthetic": {}, "epochs": 12, "batch_size": 8,
             "width": 8, "depth": 2, "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
             "labels": LABEL_KINDS, "label_options": LABEL_OPTIONS, "device": "cpu",
             # with --data: a CPU smoke run on QUBIQ (64 x 64, the first of 5 folds only)
             "qubiq": {"size": 64, "folds": 5, "max_folds": 1}},
    "full": {"size": 256, "n_train": 800, "n_val": 200, "raters": 5, "synthetic": {}, "epochs": 150, "batch_size": 8,
             "width": 32, "depth": 4, "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
             "labels": LABEL_KINDS, "label_options": LABEL_OPTIONS, "device": "auto",
             # with --data: 5-fold cross-validation on every task (Sect. 3.3)
             "qubiq": {"size": 256, "folds": 5, "max_folds": 5}},
}


def training_loss(loss: str, *, lambda_dice: float = 0.75) -> torch.nn.Module:
    r"""The training loss :math:`(1 - \lambda)\,\mathrm{CE} + \lambda\,L_{\mathrm{Dice}}` on logits.

    Parameters
    ----------
    loss : {"CE+SDL", "CE+DML"}
        Dice term: SDL (eq. 1) or DML1 (eq. 4), on sigmoid probabilities of one foreground
        channel; CE is the binary cross-entropy with logits (soft targets allowed).
    lambda_dice : float, default 0.75
        Weight of the Dice term (Sect. 3.2: "CE and DMLs weighted by 0.25 and 0.75").

    Returns
    -------
    softseg.config.WeightedLoss

    Raises
    ------
    ValueError
        If ``loss`` is unknown or ``lambda_dice`` is outside [0, 1].

    Examples
    --------
    >>> training_loss("CE+DML").weights
    [0.25, 0.75]
    """
    check_option("loss", loss, LOSSES)
    if isinstance(lambda_dice, bool) or not isinstance(lambda_dice, (int, float)) or not 0 <= lambda_dice <= 1:
        raise ValueError(f"lambda_dice: expected a number in [0, 1], got {lambda_dice!r}")
    dice_term = ({"name": "SoftDiceLoss", "activation": "sigmoid"} if loss == "CE+SDL"
                 else {"name": "DiceSemimetricLoss", "variant": 1, "activation": "sigmoid"})
    return build_loss([{"name": "BCEWithLogitsLoss", "weight": 1.0 - float(lambda_dice)},
                       {**dice_term, "weight": float(lambda_dice)}])


def train_model(data: MultiRaterDataset, loss: str, *, in_channels: int = 1, width: int = 8, depth: int = 2,
                epochs: int = 10, batch_size: int = 8, optimizer: Mapping[str, Any] | None = None,
                seed: int = 0, device: str = "auto", progress: bool = False) -> torch.nn.Module:
    """Train a U-Net on ``data`` with :func:`training_loss` through :func:`softseg.train.train`.

    Parameters
    ----------
    data : MultiRaterDataset
        Training set (its ``label`` decides the targets).
    loss : {"CE+SDL", "CE+DML"}
    in_channels, width, depth
        U-Net input channels, base width and depth (:class:`softseg.models.UNet`).
    epochs, batch_size, seed, device
        As in the training configuration (:mod:`softseg.config`); SGD with a poly schedule
        (power 0.9) unless ``optimizer`` says otherwise.
    optimizer : mapping, optional
        Optimizer section; default the paper's SGD (lr 0.01, momentum 0.9, weight decay 5e-4).
    progress : bool
        tqdm bars of the training loop.

    Returns
    -------
    torch.nn.Module
        The trained model (last epoch), in evaluation mode, on the CPU.
    """
    config = {
        "name": f"dml-qubiq-{loss}-{data.label}", "seed": int(seed), "epochs": int(epochs),
        "batch_size": int(batch_size), "device": device,
        "optimizer": dict(optimizer or {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4}),
        "scheduler": {"name": "poly", "power": 0.9}, "metrics": ["dice"], "metric_mode": "sigmoid",
    }
    torch.manual_seed(int(seed))  # the model's initial weights: the same for every loss and label kind
    model = UNet(in_channels, 1, width=width, depth=depth)
    with tempfile.TemporaryDirectory(prefix="dml-qubiq-") as tmp:
        train(config, out_dir=tmp, model=model, loss=training_loss(loss), train_data=data, val_data=None,
              progress=progress, verbose=False)
    return model.cpu().eval()


def evaluate_predictions(prob: torch.Tensor, majority: torch.Tensor, mean: torch.Tensor) -> dict[str, float]:
    """Dice, BDice, ECE (percent) as in the paper's Sect. 3.3-3.4, and the L1 distance to the mean.

    Parameters
    ----------
    prob : torch.Tensor
        Predicted foreground probabilities ``(N, 1, H, W)`` in [0, 1].
    majority : torch.Tensor
        Majority votes, same shape, 0/1.
    mean : torch.Tensor
        Raters' mean, same shape.

    Returns
    -------
    dict
        Keys :data:`METRIC_COLUMNS`: Dice of ``prob >= 0.5`` vs the majority, BDice of ``prob``
        vs ``mean`` over 0.1..0.9, ECE (binary, 10 bins, per image) vs the majority (the
        paper's) and vs the raters' mean (:func:`softseg.metrics.ece` with a soft target: the
        accuracy of a pixel is the fraction of raters who agree with the prediction), mean
        :math:`|p - \\bar y|`; each averaged over images, times 100.
    """
    return {
        "Dice (%)": 100 * metrics.dice(prob, majority, threshold=0.5),
        "BDice (%)": 100 * metrics.bdice(prob, mean),
        "ECE (%)": 100 * metrics.ece(prob, majority),
        "ECE vs mean (%)": 100 * metrics.ece(prob, mean),
        "L1 to mean (%)": 100 * float((prob.double() - mean.double()).abs().mean()),
    }


def agreement_curve(prob: torch.Tensor, mean: torch.Tensor, raters: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean predicted probability at each level of rater agreement :math:`k/R`.

    Parameters
    ----------
    prob : torch.Tensor
        Predicted probabilities, any shape, values in [0, 1].
    mean : torch.Tensor
        The raters' mean, same shape, values in :math:`\{0, 1/R, \dots, 1\}`.
    raters : int
        :math:`R`.

    Returns
    -------
    levels : numpy.ndarray
        :math:`k / R`, :math:`k = 0, \dots, R`.
    curve : numpy.ndarray
        Mean of ``prob`` over the pixels whose raters' mean is :math:`k/R` (NaN for an empty level).
        A prediction calibrated to the soft target lies on the diagonal.

    Raises
    ------
    ValueError
        If the shapes differ or ``raters < 1``.

    Examples
    --------
    >>> m = torch.tensor([0.0, 0.5, 0.5, 1.0])
    >>> agreement_curve(torch.tensor([0.25, 0.25, 0.75, 1.0]), m, 2)[1].tolist()
    [0.25, 0.5, 1.0]
    """
    if tuple(prob.shape) != tuple(mean.shape):
        raise ValueError(f"prob and mean: expected equal shapes, got {tuple(prob.shape)} and {tuple(mean.shape)}")
    if isinstance(raters, bool) or not isinstance(raters, int) or raters < 1:
        raise ValueError(f"raters: expected an integer >= 1, got {raters!r}")
    k = torch.round(mean.double() * raters).long().flatten()
    p = prob.double().flatten()
    sums = torch.zeros(raters + 1, dtype=torch.float64).index_add_(0, k, p)
    counts = torch.zeros(raters + 1, dtype=torch.float64).index_add_(0, k, torch.ones_like(p))
    curve = torch.where(counts > 0, sums / counts.clamp_min(1), torch.full_like(sums, float("nan")))
    return np.arange(raters + 1) / raters, curve.numpy()


def run_grid(train_data: Callable[[str], MultiRaterDataset], val: Mapping[str, torch.Tensor], *,
             labels: Sequence[str] = LABEL_KINDS, losses: Sequence[str] = LOSSES, seed: int = 0,
             progress: bool = True, store: RunStore | None = None, key: str = "",
             **train_kw: Any) -> list[dict[str, Any]]:
    """Train and evaluate every (label kind, loss) pair.

    Parameters
    ----------
    train_data : callable
        ``train_data(label)`` returns the training set with that label kind.
    val : mapping
        :meth:`softseg.data.raters.MultiRaterDataset.stack` of the validation set.
    labels, losses
        The grid.
    seed : int
        Seed of every run (same initial weights and batch order for all pairs).
    progress : bool
        A tqdm bar over the grid.
    store : RunStore, optional
        Each pair's run goes through it (:class:`~softseg.reproduce.RunStore`, run key
        ``"<key>/<label>/<loss>"``): a stored pair is not trained again; a store that keeps its
        runs in a folder keeps the metric columns only (no ``prob``).
    key : str
        Prefix of the run keys (the QUBIQ task and fold, say).
    **train_kw
        Passed to :func:`train_model`.

    Returns
    -------
    list of dict
        One per pair: ``label``, ``loss``, the :data:`METRIC_COLUMNS` and ``prob`` (the
        validation probabilities, float32 ``(N, 1, H, W)``; not with a store that keeps runs).
    """
    out = []
    pairs = [(lab, loss) for lab in labels for loss in losses]
    for lab, _ in pairs:
        check_option("label", lab, LABEL_KINDS)
    on_cpu = train_kw.get("device", "auto") == "cpu" or not torch.cuda.is_available()
    threads = torch.get_num_threads()
    if on_cpu:  # tiny convolutions: one thread is faster and robust to other load on the cores
        torch.set_num_threads(1)
    try:
        def pair_result(lab: str, loss: str) -> dict[str, Any]:
            model = train_model(train_data(lab), loss, seed=seed, **train_kw)
            prob = torch.sigmoid(predict(model, val["image"], batch_size=16, device="cpu" if on_cpu else "auto"))
            return {**evaluate_predictions(prob, val["majority"], val["mean"]), "prob": prob}

        store = store or RunStore.transient()
        for lab, loss in tqdm(pairs, desc="dml-qubiq grid", disable=not progress, leave=False):
            res = store.run(f"{key}/{lab}/{loss}".lstrip("/"), lambda lab=lab, loss=loss: pair_result(lab, loss),
                            keep=METRIC_COLUMNS)
            out.append({"label": lab, "loss": loss, **res})
    finally:
        torch.set_num_threads(threads)
    return out


def grid_rows(grid: Sequence[Mapping[str, Any]], *, table: str, dataset: str | None,
              paper_row: str | None) -> list[dict[str, Any]]:
    """Result rows (:mod:`softseg.results`) of one grid: ``row`` = "<dataset>: <label column>"
    (or the label column alone), ``column`` = "<loss> <metric>". CE + DML rows carry the paper's
    Table 2 value of ``paper_row`` where it has one (the four fusions, and the paper's "LS" beside
    boundary LS; Dice, BDice, ECE); CE + SDL rows, global LS and the two extra columns have none.
    No tolerance: see the chapter, section ``dml-training``."""
    rows = []
    for g in grid:
        col = LABEL_COLUMNS[g["label"]]
        for metric in METRIC_COLUMNS:
            paper = None
            if (paper_row is not None and g["loss"] == "CE+DML" and g["label"] in _TABLE2_INDEX
                    and metric in PAPER_TABLE2[paper_row]):
                paper = PAPER_TABLE2[paper_row][metric][_TABLE2_INDEX[g["label"]]]
            rows.append({"table": table, "row": f"{dataset}: {col}" if dataset else col,
                         "column": f"{g['loss']} {metric}", "ours": float(g[metric]), "paper": paper,
                         "note": "dml-training"})
    return rows


MetricTable = dict[tuple[str, str], dict[str, float]]


def metric_table(source: Sequence[Mapping[str, Any]] | Mapping[str, Any], *,
                 dataset: str | None = None) -> MetricTable:
    """``(label kind, loss) -> {metric: value}`` from a grid or from a results record.

    Parameters
    ----------
    source : list of dict or dict
        The output of :func:`run_grid` / :func:`synthetic_grid` (dicts with ``label``, ``loss``
        and the :data:`METRIC_COLUMNS`), or a results record (:mod:`softseg.results`) written by
        :func:`run`, whose rows are ``row`` = label column, ``column`` = "<loss> <metric>".
    dataset : str, optional
        For a record of a QUBIQ run: the task (or ``"All"``) whose rows ``"<dataset>: <label>"``
        to take; ``None`` takes the rows without a prefix (the synthetic stand-in).

    Returns
    -------
    dict
        Metric values in percent, keyed by ``(label, loss)`` with ``label`` a key of
        :data:`LABEL_COLUMNS`.

    Raises
    ------
    ValueError
        If a record row names a label column or loss this module does not know.

    Examples
    --------
    >>> grid = [{"label": "mean", "loss": "CE+DML", **{m: 1.0 for m in METRIC_COLUMNS}}]
    >>> metric_table(grid)["mean", "CE+DML"]["BDice (%)"]
    1.0
    """
    if isinstance(source, Mapping):
        prefix = "" if dataset is None else f"{dataset}: "
        table: MetricTable = {}
        for row in source["rows"]:
            name = row["row"]
            if not name.startswith(prefix) or (dataset is None and ": " in name):
                continue
            label = _LABEL_KINDS.get(name[len(prefix):])
            loss, metric = row["column"].split(" ", 1)
            if label is None or loss not in LOSSES or metric not in METRIC_COLUMNS:
                raise ValueError(f"record row: expected a label column of {sorted(_LABEL_KINDS)} and a column "
                                 f"'<loss> <metric>', got {name!r}, {row['column']!r}")
            table.setdefault((label, loss), {})[metric] = float(row["ours"])
        return table
    return {(g["label"], g["loss"]): {m: float(g[m]) for m in METRIC_COLUMNS} for g in source}


def paper_metric_table(row: str = "All") -> MetricTable:
    """One row of the paper's Table 2 (UNet-ResNet50, CE + DML1, QUBIQ) as a :func:`metric_table`.

    The paper's "LS" column is keyed ``("bls", "CE+DML")`` (module doc); Dice, BDice and ECE only.

    Examples
    --------
    >>> paper_metric_table()["weighted", "CE+DML"]["Dice (%)"]
    79.85
    """
    check_option("row", row, tuple(PAPER_TABLE2))
    return {(label, "CE+DML"): {m: values[k] for m, values in PAPER_TABLE2[row].items()}
            for label, k in _TABLE2_INDEX.items()}


def soft_vs_hard(table: MetricTable, *, loss: str = "CE+DML",
                 metrics: Sequence[str] = ("Dice (%)", "BDice (%)", "ECE (%)")) -> list[dict[str, Any]]:
    r"""Table 2's claim (Sect. 3.4): do rater-averaged soft labels beat hard labels?

    For each metric, every soft label kind of :data:`SOFT_LABELS` (uniform, weighted mean) is
    compared with every hard one of :data:`HARD_LABELS` (majority vote, random rater), all
    trained with ``loss``.

    Parameters
    ----------
    table : dict
        A :func:`metric_table` (ours) or :func:`paper_metric_table` (the paper's).
    loss : {"CE+SDL", "CE+DML"}
    metrics : sequence of str
        Columns of :data:`METRIC_COLUMNS`.

    Returns
    -------
    list of dict
        One per metric: ``metric``, ``loss``, the four values under their Table 2 column names,
        ``"soft wins"`` (how many of the 4 soft-hard pairs the soft label wins, a string
        ``"k/4"``), ``"margin"`` — the worst soft label against the best hard one, signed so
        that a positive margin means *every* soft label beats *every* hard one, in the metric's
        units (for ECE: best hard ECE minus worst soft ECE) — and ``verdict``: ``"soft better"``
        (4/4), ``"hard better"`` (0/4) or ``"mixed"``.

    Raises
    ------
    ValueError
        If ``loss`` or a metric is unknown.

    Examples
    --------
    >>> [r["verdict"] for r in soft_vs_hard(paper_metric_table())]  # Table 2, "All"
    ['soft better', 'soft better', 'soft better']
    """
    check_option("loss", loss, LOSSES)
    rows = []
    for metric in metrics:
        check_option("metric", metric, METRIC_COLUMNS)
        sign = BETTER[metric]
        soft = [sign * table[label, loss][metric] for label in SOFT_LABELS]
        hard = [sign * table[label, loss][metric] for label in HARD_LABELS]
        wins = sum(s > h for s in soft for h in hard)
        verdict = "soft better" if wins == len(soft) * len(hard) else "hard better" if wins == 0 else "mixed"
        rows.append({"metric": metric, "loss": loss,
                     **{LABEL_COLUMNS[label]: table[label, loss][metric] for label in (*HARD_LABELS, *SOFT_LABELS)},
                     "soft wins": f"{wins}/{len(soft) * len(hard)}", "margin": min(soft) - max(hard),
                     "verdict": verdict})
    return rows


def dml_minus_sdl(table: MetricTable, *, labels: Sequence[str] = SOFT_LABELS,
                  metrics: Sequence[str] = METRIC_COLUMNS) -> list[dict[str, Any]]:
    """CE + DML against CE + SDL on the same labels (Sect. 3.6 and the chapter's extra checks).

    Parameters
    ----------
    table : dict
        A :func:`metric_table` holding both losses for ``labels``.
    labels, metrics
        Label kinds and :data:`METRIC_COLUMNS` to compare.

    Returns
    -------
    list of dict
        One per (label, metric): ``labels`` (the row name), ``metric``, ``"CE+SDL"``,
        ``"CE+DML"``, ``"DML - SDL"`` and ``"DML better"`` (by :data:`BETTER`'s direction;
        ``False`` on a tie).

    Examples
    --------
    >>> t = {("mean", "CE+SDL"): {"BDice (%)": 80.0}, ("mean", "CE+DML"): {"BDice (%)": 81.0}}
    >>> dml_minus_sdl(t, labels=("mean",), metrics=("BDice (%)",))[0]["DML better"]
    True
    """
    rows = []
    for label in labels:
        for metric in metrics:
            sdl, dml = table[label, "CE+SDL"][metric], table[label, "CE+DML"][metric]
            rows.append({"labels": LABEL_COLUMNS[label], "metric": metric, "CE+SDL": sdl, "CE+DML": dml,
                         "DML - SDL": dml - sdl, "DML better": BETTER[metric] * (dml - sdl) > 0})
    return rows


#: How far (percentage points) the live ``fast`` run may be from the committed one, per metric.
#: Same code, seed and preset, and both on one CPU thread (:func:`run_grid` sets it), so on one
#: machine and torch build the two are identical. Another CPU runs other vectorized kernels; two
#: stand-ins for that, measured over the whole grid (``ATEN_CPU_CAPABILITY=default`` and
#: ``ONEDNN_MAX_CPU_ISA=SSE41``), moved Dice by at most 0.04 points, BDice and the ECEs by at
#: most 0.03 and L1 by at most 0.001: rounding differences, amplified by 12 epochs of training.
#: The tolerances are two to three times that (ten for L1), and smaller than every difference the
#: chapter asserts (it checks so).
COMMITTED_TOLERANCE: dict[str, float] = {"Dice (%)": 0.1, "BDice (%)": 0.1, "ECE (%)": 0.1,
                                         "ECE vs mean (%)": 0.1, "L1 to mean (%)": 0.01}


def compare_with_committed(live: MetricTable, record: Mapping[str, Any], *,
                           tolerance: Mapping[str, float] = COMMITTED_TOLERANCE) -> list[dict[str, Any]]:
    """The live run beside a committed record of the same preset, cell by cell.

    Parameters
    ----------
    live : dict
        :func:`metric_table` of the live grid.
    record : dict
        A results record of :func:`run` on the synthetic stand-in (``results/dml-qubiq.json``).
    tolerance : mapping
        Allowed ``|live - committed|`` per metric.

    Returns
    -------
    list of dict
        One per record row: ``labels``, ``column``, ``paper`` (the record's value of the paper,
        or None), ``committed``, ``live``, ``difference`` (live - committed), ``tolerance`` and
        ``within`` (``|difference| <= tolerance``).

    Examples
    --------
    >>> record = {"rows": [{"row": "Uniform", "column": "CE+DML Dice (%)", "ours": 84.0, "paper": 77.31}]}
    >>> compare_with_committed({("mean", "CE+DML"): {"Dice (%)": 84.05}}, record)[0]["within"]
    True
    """
    committed = metric_table(record)  # also checks every row names a known label, loss and metric
    out = []
    for row in record["rows"]:
        loss, metric = row["column"].split(" ", 1)
        label = _LABEL_KINDS[row["row"]]
        ours, now = committed[label, loss][metric], live[label, loss][metric]
        out.append({"labels": row["row"], "column": row["column"], "paper": row["paper"], "committed": ours,
                    "live": now, "difference": now - ours, "tolerance": tolerance[metric],
                    "within": abs(now - ours) <= tolerance[metric]})
    return out


def gradient_gap(label: str = "majority", preset: str | Mapping[str, Any] = "fast", seed: int = 0, *,
                            dtype: torch.dtype = torch.float32) -> float:
    r"""Theorem 2 in one training step: how far apart the two losses' parameter gradients are.

    The network of :func:`train_model` (same initial weights, ``torch.manual_seed(seed)``) is
    evaluated on the first batch of the training set of ``label`` (the synthetic stand-in of
    ``preset``), and the gradients of CE + SDL and CE + DML with respect to all its parameters
    are compared. On hard targets the two losses are the same function of the probabilities
    (Theorem 2) and the sigmoid keeps every probability inside :math:`(0, 1)` unless it rounds to
    0 or 1 (where its derivative is 0), so the gradients agree up to float rounding; on soft
    targets they differ.

    Parameters
    ----------
    label : str
        A label kind of :data:`LABEL_KINDS` (``"majority"``, ``"random"``: hard).
    preset : {"fast", "full"} or mapping
        Sizes of the data and the network (:data:`PRESETS`).
    seed : int
        Seed of the data and the initial weights.
    dtype : torch.dtype
        float32 (as trained) or float64.

    Returns
    -------
    float
        :math:`\|g_{\mathrm{SDL}} - g_{\mathrm{DML}}\|_2 / \|g_{\mathrm{DML}}\|_2`.
    """
    if isinstance(preset, str):
        preset = PRESETS[check_option("preset", preset, tuple(PRESETS))]
    check_option("label", label, LABEL_KINDS)
    data = SyntheticRaters(preset["n_train"], label=label, seed=seed, size=preset["size"], raters=preset["raters"],
                           **preset["synthetic"], **preset.get("label_options", {}).get(label, {}))
    images, targets = (torch.stack(t).to(dtype) for t in zip(*(data[i] for i in range(preset["batch_size"]))))
    grads = []
    for loss in LOSSES:
        torch.manual_seed(int(seed))  # as in train_model: the same initial weights for both losses
        model = UNet(images.shape[1], 1, width=preset["width"], depth=preset["depth"]).to(dtype)
        value = training_loss(loss)(model(images), targets)
        grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(value, list(model.parameters()))]))
    sdl, dml = grads
    return float((sdl - dml).norm() / dml.norm())


def synthetic_grid(preset: str | Mapping[str, Any] = "fast", seed: int = 0, *, progress: bool = True,
                   store: RunStore | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The grid of :func:`run_grid` on the synthetic multi-rater stand-in of a preset.

    Parameters
    ----------
    preset : {"fast", "full"} or mapping
        A key of :data:`PRESETS` or such a mapping (``label_options``, optional: dataset options
        per label kind, as :data:`LABEL_OPTIONS`).
    seed : int
        Training set ``SyntheticRaters(seed=seed)``, validation set ``seed + 1``; seed of the runs.
    progress : bool
        tqdm bar over the grid.
    store : RunStore, optional
        As :func:`run_grid`.

    Returns
    -------
    grid : list of dict
        As :func:`run_grid`.
    val : dict
        The validation set's :meth:`~softseg.data.raters.MultiRaterDataset.stack`.
    """
    if isinstance(preset, str):
        preset = PRESETS[check_option("preset", preset, tuple(PRESETS))]
    common = dict(size=preset["size"], raters=preset["raters"], **preset["synthetic"])
    options = preset.get("label_options", {})
    val = SyntheticRaters(preset["n_val"], seed=seed + 1, **common).stack()
    grid = run_grid(lambda lab: SyntheticRaters(preset["n_train"], label=lab, seed=seed, **common,
                                                **options.get(lab, {})), val,
                    labels=preset["labels"], seed=seed, progress=progress, store=store, width=preset["width"],
                    depth=preset["depth"], epochs=preset["epochs"], batch_size=preset["batch_size"],
                    optimizer=preset["optimizer"], device=preset["device"])
    return grid, val


def _qubiq(root: str, preset: Mapping[str, Any], seed: int, *, progress: bool,
           store: RunStore | None) -> list[dict[str, Any]]:
    from ..data.qubiq import QUBIQ_TASKS, QubiqDataset

    rows, per_task = [], {}
    for name, dataset, task in QUBIQ_TASKS:
        folds = []
        for fold in range(min(preset["folds"], preset["max_folds"])):
            kw = dict(size=preset["size"], fold=fold, n_folds=preset["folds"])
            val_ds = QubiqDataset(root, dataset, task, split="val", **kw)
            options = preset.get("label_options", {})
            grid = run_grid(lambda lab: QubiqDataset(root, dataset, task, label=lab, split="train", **kw,
                                                     **options.get(lab, {})),
                            val_ds.stack(), labels=preset["labels"], seed=seed, progress=progress,
                            store=store, key=f"{name}/fold{fold}", in_channels=val_ds.in_channels,
                            width=preset["width"], depth=preset["depth"],
                            epochs=preset["epochs"], batch_size=preset["batch_size"],
                            optimizer=preset["optimizer"], device=preset["device"])
            folds.append((len(val_ds), grid))
        # mean over the aggregated validation set (Sect. 3.3): each fold weighted by its cases
        n = sum(k for k, _ in folds)
        merged = [{"label": g["label"], "loss": g["loss"],
                   **{m: sum(k * f[i][m] for k, f in folds) / n for m in METRIC_COLUMNS}}
                  for i, g in enumerate(folds[0][1])]
        per_task[name] = merged
        rows += grid_rows(merged, table="Table 2", dataset=name, paper_row=name)
    tasks = list(per_task.values())
    # "All": the unweighted mean over the 7 tasks — the paper does not say so, but its Table 2 "All"
    # row is that mean of its task rows to within 0.01 (tests/test_dml_experiment.py)
    all_rows = [{"label": g["label"], "loss": g["loss"],
                 **{m: float(np.mean([t[i][m] for t in tasks])) for m in METRIC_COLUMNS}}
                for i, g in enumerate(tasks[0])]
    return rows + grid_rows(all_rows, table="Table 2", dataset="All", paper_row="All")


@register(
    "dml-qubiq",
    paper="Wang et al., Dice Semimetric Losses (MICCAI 2023)",
    description="Table 2: CE+SDL vs CE+DML over label kinds (majority, random, uniform/weighted mean, global "
                "and boundary LS), "
                "Dice/BDice/ECE; synthetic multi-rater stand-in unless --data gives QUBIQ 2020",
    trains=True,
)
def run(preset: str, *, data: str | None = None, seed: int = 0, progress: bool = True, epochs: int | None = None,
        store: RunStore | None = None) -> list[dict[str, Any]]:
    """The registered reproduction ``dml-qubiq``.

    Parameters
    ----------
    preset : {"fast", "full"}
        ``fast``: synthetic stand-in on the CPU (about a minute); ``full``: the paper's sizes on a
        GPU, on QUBIQ when ``data`` is given.
    data : path, optional
        QUBIQ 2020 root (the folder holding ``prostate/``, ``brain-growth/``, ...).
    seed : int
        Seed of the data, the initial weights and the batch order.
    progress : bool
        tqdm bars.
    epochs : int, optional
        Replaces the preset's number of epochs.
    store : RunStore, optional
        Keeps each (label kind, loss) run, so a time-budgeted ``full`` run continues where it
        stopped (:class:`~softseg.reproduce.RunStore`).

    Returns
    -------
    list of dict
        Result rows: on QUBIQ, table ``"Table 2"``, rows ``"<task>: <label>"`` (and ``"All: ..."``),
        paper values beside the CE + DML columns; on the stand-in, table ``"Table 2 (synthetic
        stand-in; paper: QUBIQ All)"``, rows = label kinds, the paper's "All" values beside.
    """
    check_option("preset", preset, tuple(PRESETS))
    cfg = dict(PRESETS[preset])
    if epochs is not None:
        cfg["epochs"] = check_int("epochs", epochs, 1)
    if store is not None:
        store.add_to_fingerprint(settings=cfg)
    if data is not None:
        return _qubiq(str(data), {**cfg, **cfg["qubiq"]}, seed, progress=progress, store=store)
    grid, _ = synthetic_grid(cfg, seed, progress=progress, store=store)
    return grid_rows(grid, table="Table 2 (synthetic stand-in; paper: QUBIQ All)", dataset=None, paper_row="All")
