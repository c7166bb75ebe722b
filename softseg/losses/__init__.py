"""Losses of the four papers, each a functional form and a thin ``torch.nn.Module``.

- :mod:`softseg.losses.dice` — soft-Dice (SDL), soft-Jaccard (SJL), Dice and Jaccard
  semimetric losses (DML, JML) and the combined ``CE + λ·DML`` loss (Wang & Blaschko).
- :mod:`softseg.losses.sauna` — generalized JML on [-1, 1] (GJML), Focal-L1 and Stable
  Focal-L1 (SAUNA).
- :mod:`softseg.losses.margin` — ρ-margin loss, calibrated log-loss and the optimal
  distribution-aware margins (margin calibration).
"""

from __future__ import annotations

from softseg.losses.dice import (
    CEDiceSemimetricLoss,
    DiceSemimetricLoss,
    JaccardMetricLoss,
    SoftDiceLoss,
    SoftJaccardLoss,
    ce_dice_semimetric_loss,
    dice_semimetric_loss,
    jaccard_metric_loss,
    soft_dice_loss,
    soft_jaccard_loss,
)
from softseg.losses.margin import (
    CalibratedLogLoss,
    MarginBound,
    MarginLoss,
    argmax_iou,
    calibrated_log_loss,
    iou_lower_bound,
    margin_bound_terms,
    margin_loss,
    optimal_margins,
)
from softseg.losses.sauna import (
    FocalL1Loss,
    GeneralizedJaccardMetricLoss,
    StableFocalL1Loss,
    focal_l1_loss,
    generalized_jml,
    stable_focal_l1_loss,
)

__all__ = [
    # dice.py — Wang et al., Dice semimetric losses
    "soft_dice_loss", "soft_jaccard_loss", "dice_semimetric_loss", "jaccard_metric_loss",
    "ce_dice_semimetric_loss", "SoftDiceLoss", "SoftJaccardLoss", "DiceSemimetricLoss",
    "JaccardMetricLoss", "CEDiceSemimetricLoss",
    # sauna.py — Dang et al., SAUNA
    "generalized_jml", "focal_l1_loss", "stable_focal_l1_loss", "GeneralizedJaccardMetricLoss",
    "FocalL1Loss", "StableFocalL1Loss",
    # margin.py — Li et al., distribution-aware margin calibration
    "margin_loss", "calibrated_log_loss", "optimal_margins", "iou_lower_bound", "argmax_iou",
    "margin_bound_terms", "MarginBound", "MarginLoss", "CalibratedLogLoss",
]
