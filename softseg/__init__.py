"""softseg — soft labels and Dice-type losses for medical image segmentation.

The package behind the softseg book. Submodules:

- :mod:`softseg.losses` — soft-Dice, Dice/Jaccard semimetric losses, GJML, (Stable) Focal-L1,
  margin-calibrated losses, with ``torch.nn.Module`` wrappers;
- :mod:`softseg.metrics` — Dice, IoU, sensitivity, specificity, BDice, ECE;
- :mod:`softseg.labels` — the SAUNA transform, label smoothing, rater fusion;
- :mod:`softseg.theory` — the optimal soft-Dice segmentation and its volume bounds;
- :mod:`softseg.results` — the ``results/*.json`` format that every reproduction writes.

Submodules are imported on first use, so ``import softseg`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = ("losses", "metrics", "labels", "theory", "results", "data", "models", "train", "reproduce")
__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"softseg.{name}")
    raise AttributeError(f"module 'softseg' has no attribute {name!r}")
