"""Private argument checkers shared by every public function of :mod:`softseg`.

Each checker raises :class:`ValueError` or :class:`TypeError` with a message of the form
``"<argument>: expected <what>, got <what>"`` so that a user's mistake is reported where it
is made and never turns into a silent NaN further down. They are deliberately small and
cheap (one reduction at most) because they sit on the hot path of every loss.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "check_tensor",
    "check_float_tensor",
    "check_same_shape",
    "check_min_ndim",
    "check_range",
    "check_finite",
    "check_option",
    "check_positive",
    "check_int",
    "check_fraction",
    "check_reduction",
    "reduce",
]

REDUCTIONS = ("mean", "sum", "none")


def check_tensor(name: str, value: Any) -> torch.Tensor:
    """Return ``value`` if it is a :class:`torch.Tensor`, else raise ``TypeError``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    return value


def check_float_tensor(name: str, value: Any) -> torch.Tensor:
    """Return ``value`` if it is a floating-point tensor, else raise ``TypeError``."""
    check_tensor(name, value)
    if not value.is_floating_point():
        raise TypeError(
            f"{name}: expected a floating-point tensor (float16/bfloat16/float32/float64), "
            f"got dtype {value.dtype}"
        )
    return value


def check_same_shape(name_a: str, a: torch.Tensor | np.ndarray, name_b: str,
                     b: torch.Tensor | np.ndarray) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have identical shapes."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{name_a} and {name_b}: expected equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_min_ndim(name: str, value: torch.Tensor | np.ndarray, ndim: int, layout: str) -> None:
    """Raise ``ValueError`` unless ``value`` has at least ``ndim`` dimensions."""
    if value.ndim < ndim:
        raise ValueError(f"{name}: expected shape {layout} (at least {ndim} dims), got {tuple(value.shape)}")


def check_finite(name: str, value: torch.Tensor | np.ndarray) -> None:
    """Raise ``ValueError`` if ``value`` holds a NaN or an infinity."""
    finite = torch.isfinite(value).all() if isinstance(value, torch.Tensor) else np.isfinite(value).all()
    if not bool(finite):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")


def check_range(name: str, value: torch.Tensor | np.ndarray, low: float, high: float) -> None:
    """Raise ``ValueError`` unless every entry of ``value`` is finite and in ``[low, high]``.

    NaN fails the check too (``NaN >= low`` is false), so one call covers both.
    """
    if isinstance(value, torch.Tensor):
        if not value.numel():
            return
        # One pass over the data and one device-to-host copy: on CUDA this check costs a single
        # synchronisation per call rather than one per bound.
        lo, hi = torch.stack(torch.aminmax(value.detach())).tolist()
    else:
        if not value.size:
            return
        lo, hi = float(np.min(value)), float(np.max(value))
    if not (lo >= low and hi <= high):  # written this way so that NaN fails
        check_finite(name, value)
        raise ValueError(f"{name}: expected values in [{low:g}, {high:g}], got values in [{lo:g}, {hi:g}]")


def check_option(name: str, value: Any, options: Sequence[Any] | Iterable[Any]) -> Any:
    """Raise ``ValueError`` unless ``value`` is one of ``options``."""
    options = tuple(options)
    if value not in options:
        raise ValueError(f"{name}: expected one of {options!r}, got {value!r}")
    return value


def check_positive(name: str, value: Any, *, strict: bool = True) -> float:
    """Return ``value`` as a float if it is a finite (strictly) positive real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v) or (v <= 0 if strict else v < 0):
        raise ValueError(f"{name}: expected a finite number {'>' if strict else '>='} 0, got {value!r}")
    return v


def check_int(name: str, value: Any, low: int) -> int:
    """Return ``value`` as a Python ``int`` if it is an integer (``numpy`` integers too; ``bool``
    is rejected) that is at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer >= {low}, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def check_fraction(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a real number in ``[0, 1]`` (NaN and ``bool`` rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    if not (0.0 <= v <= 1.0):  # written this way so that NaN fails
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return v


def check_reduction(reduction: str) -> str:
    """Raise ``ValueError`` unless ``reduction`` is ``"mean"``, ``"sum"`` or ``"none"``."""
    return check_option("reduction", reduction, REDUCTIONS)


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply a checked ``reduction`` ("mean" | "sum" | "none") to a tensor of losses."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values
