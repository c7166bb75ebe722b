"""Helpers shared by the loss modules (not public API)."""

from __future__ import annotations

import torch


def apply_activation(x: torch.Tensor, activation: str | None) -> torch.Tensor:
    """Map raw network outputs to a loss's domain: sigmoid/tanh per element, softmax over dim 1.

    ``activation`` must already have been checked by the caller (``None`` returns ``x``).
    """
    if activation == "sigmoid":
        return torch.sigmoid(x)
    if activation == "softmax":
        return torch.softmax(x, dim=1)
    if activation == "tanh":
        return torch.tanh(x)
    return x


def upcast_half(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """float16/bfloat16 -> float32: region sums over 2**18 pixels overflow float16."""
    if tensors[0].dtype in (torch.float16, torch.bfloat16):
        return tuple(t.float() for t in tensors)
    return tensors
