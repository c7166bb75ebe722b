r"""SAUNA losses for signed soft labels in :math:`[-1, 1]`: GJML, Focal-L1 and Stable Focal-L1.

Dang, Nguyen & Tiulpin, *Image-level Regression for Uncertainty-aware Retinal Image
Segmentation* (SAUNA), Sects. 3.3–3.4. The prediction ``f`` (``tanh`` of the network output)
and the target ``y`` (e.g. a :func:`softseg.labels.sauna_transform` map) both lie in
:math:`[-1, 1]`:

=============================  ===============================================  ===========
loss                           formula (one sample and class, pixels ``i``)     paper
=============================  ===============================================  ===========
GJML (generalized Jaccard      :math:`1 - \frac{\|f+y\|_1 - \|f-y\|_1}          eq. (7),
metric loss), region           {\|f+y\|_1 + \|f-y\|_1}`                         Prop. 1
Focal-L1, pixel-wise           :math:`|y-f|\,|y-f|^{\gamma\,[yf \ge 0]}          eq. (8)
                               / \max(|y|, |f|)`
Stable Focal-L1, pixel-wise    :math:`|y-f|\,|y-f|^{\gamma\,[yf \ge 0]}`         eq. (9),
                                                                                Props. 2–3
=============================  ===============================================  ===========

Conventions:

* GJML is a region loss: ``f`` and ``y`` of shape ``(N, C, *spatial)``, one value per sample
  and class over the spatial axes, then ``reduction`` (``"none"`` gives ``(N, C)``). The two
  Focal-L1 losses are pixel-wise: any shape, ``"mean"`` over all elements, ``"none"`` the
  per-pixel map.
* Inputs must be floating tensors of one dtype and device with values in :math:`[-1, 1]`
  (NaN raises). float16/bfloat16 are computed in float32 and returned in float32.
* Safe denominators: GJML's denominator :math:`\|f+y\|_1 + \|f-y\|_1 = 2\sum_i
  \max(|f_i|, |y_i|)` vanishes only for ``f = y = 0``, where the loss is defined as 0 (perfect
  agreement); Focal-L1's :math:`\max(|y_i|, |f_i|)` vanishes only at ``f_i = y_i = 0``, where
  the pixel loss is 0. Both are clamped below at ``16 * finfo(dtype).tiny``. Gradients are
  finite everywhere on :math:`[-1, 1]`, including these points, ``f = y`` and ``f = ±1``; at
  kinks (``f_i = y_i``, ``f_i = -y_i``) the subgradient of ``|·|`` is taken as 0, as
  ``torch.abs`` does.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import nn

from .._checks import (
    check_float_tensor,
    check_min_ndim,
    check_option,
    check_positive,
    check_range,
    check_reduction,
    check_same_shape,
    reduce,
)
from ._common import apply_activation, upcast_half

__all__ = [
    "generalized_jml",
    "focal_l1_loss",
    "stable_focal_l1_loss",
    "GeneralizedJaccardMetricLoss",
    "FocalL1Loss",
    "StableFocalL1Loss",
]

Reduction = Literal["mean", "sum", "none"]
Activation = Optional[Literal["sigmoid", "softmax", "tanh"]]

_LAYOUT = "(N, C, *spatial)"
_ACTIVATIONS = (None, "sigmoid", "softmax", "tanh")


# --------------------------------------------------------------------------- validation


def _check_pair(f, y, *, region: bool) -> None:
    """Type, shape, dtype, device and range checks shared by the three losses."""
    check_float_tensor("f", f)
    check_float_tensor("y", y)
    check_same_shape("f", f, "y", y)
    if region:
        check_min_ndim("f", f, 3, _LAYOUT)
    if f.dtype != y.dtype:
        raise TypeError(f"f and y: expected the same dtype, got {f.dtype} and {y.dtype}")
    if f.device != y.device:
        raise ValueError(f"f and y: expected the same device, got {f.device} and {y.device}")
    if f.numel() == 0:
        raise ValueError(f"f: expected a non-empty tensor, got shape {tuple(f.shape)}")
    # one aminmax pass per tensor and one device sync for both
    bounds = torch.stack([*torch.aminmax(f.detach()), *torch.aminmax(y.detach())]).tolist()
    for k, (name, t) in enumerate((("f", f), ("y", y))):
        lo, hi = bounds[2 * k], bounds[2 * k + 1]
        if not (lo >= -1.0 and hi <= 1.0):  # written this way so that NaN fails
            check_range(name, t.detach(), -1.0, 1.0)
            raise ValueError(f"{name}: expected values in [-1, 1], got values in [{lo:g}, {hi:g}]")


def _check_eps(eps) -> float:
    return check_positive("eps", eps, strict=False)


# --------------------------------------------------------------------------- losses


def generalized_jml(f: torch.Tensor, y: torch.Tensor, eps: float = 0.0,
                    reduction: Reduction = "mean") -> torch.Tensor:
    r"""Generalized Jaccard metric loss (GJML) on :math:`[-1, 1]`, per sample and class.

    Parameters
    ----------
    f : torch.Tensor
        Prediction of shape ``(N, C, *spatial)`` (at least one spatial axis), floating, values
        in :math:`[-1, 1]` (e.g. ``tanh`` of the logits).
    y : torch.Tensor
        Target of the same shape, dtype and device, values in :math:`[-1, 1]` (e.g. a SAUNA
        map).
    eps : float, default 0.0
        Non-negative smoothing added to the soft intersection and union (see Notes).
        ``eps = 0`` is eq. (7) exactly.
    reduction : {"mean", "sum", "none"}, default "mean"
        Reduction over the ``(N, C)`` losses; ``"none"`` returns shape ``(N, C)``.

    Returns
    -------
    torch.Tensor
        The loss, in :math:`[0, 2]` (in :math:`[0, 1]` when ``f`` and ``y`` are in
        :math:`[0, 1]`), float32 for half-precision inputs.

    Raises
    ------
    TypeError
        If ``f`` or ``y`` is not a floating tensor, or their dtypes differ, or ``eps`` is not a
        real number.
    ValueError
        If the shapes differ or have fewer than 3 dims, the devices differ, a tensor is empty,
        a value is outside :math:`[-1, 1]` or NaN, ``eps < 0`` or ``reduction`` is unknown.

    Notes
    -----
    With :math:`S = \|f + y\|_1` and :math:`D = \|f - y\|_1` over the pixels of one sample and
    class,

    .. math::

        \mathcal{L}_{\mathrm{GJML}}(f, y) = 1 - \frac{\tfrac12 (S - D) + \epsilon}
        {\tfrac12 (S + D) + \epsilon} = \frac{D}{\tfrac12 (S + D) + \epsilon}.

    With :math:`\epsilon = 0` this is eq. (7) (= :math:`\Delta_{\mathrm{JML}}`, eq. 6). The
    halves are the generalized union :math:`\tfrac12(S + D) = \sum_i \max(|f_i|, |y_i|)` and
    intersection :math:`\tfrac12 (S - D) = \sum_i \operatorname{sign}(f_i y_i) \min(|f_i|,
    |y_i|)`; on :math:`[0, 1]` they are :math:`\sum \min` and :math:`\sum \max`, so GJML equals
    JML1 of :mod:`softseg.losses.dice` (eps included) and :math:`1 - \mathrm{IoU}` on hard
    labels. Proposition 1: on any hypercube, :math:`\mathcal{L} = 0 \iff f = y`,
    :math:`\mathcal{L} \ge 0` and it is symmetric. The triangle inequality is not claimed by
    the paper; the tests find no violation on :math:`[-1, 1]^D` (hypothesis). The loss
    reaches 2 at :math:`f = -y \ne 0`. Empty pair (``f = y = 0`` and ``eps = 0``): the
    denominator is clamped at ``16 * finfo(dtype).tiny``, so the loss is ``0 / tiny = 0``.

    References
    ----------
    Dang, Nguyen & Tiulpin, "Image-level Regression for Uncertainty-aware Retinal Image
    Segmentation" (SAUNA), Sect. 3.3, eq. (7) and Proposition 1 (proof: Supplementary Sec. 1).

    Examples
    --------
    >>> import torch
    >>> f = torch.tensor([[[0.5, -0.5]]], requires_grad=True)
    >>> y = torch.tensor([[[1.0, -0.5]]])
    >>> loss = generalized_jml(f, y)  # D = 0.5, sum max(|f|, |y|) = 1.5
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.3333
    """
    _check_pair(f, y, region=True)
    eps = _check_eps(eps)
    check_reduction(reduction)
    f, y = upcast_half(f, y)
    ff, yy = f.flatten(2), y.flatten(2)
    s = (ff + yy).abs().sum(-1)
    d = (ff - yy).abs().sum(-1)
    den = (0.5 * (s + d) + eps).clamp_min(16 * torch.finfo(d.dtype).tiny)
    loss = (d / den).clamp(0.0, 2.0)  # [0, 2] on [-1, 1]; removes 1-ulp rounding above 2
    return reduce(loss, reduction)


def _focal_terms(f: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    """Numerator of eqs. (8)-(9): :math:`|y - f|^{1 + \\gamma [y f \\ge 0]}` (finite gradients)."""
    diff = (y - f).abs()
    # pow(diff, 1 + gamma) has gradient (1 + gamma) diff^gamma, 0 at diff = 0 for gamma > 0; the
    # product diff * diff**gamma would give 0 * inf = NaN there when gamma < 1.
    return torch.where(y * f >= 0, diff.pow(1.0 + gamma), diff)


def focal_l1_loss(f: torch.Tensor, y: torch.Tensor, gamma: float = 1.0,
                  reduction: Reduction = "mean") -> torch.Tensor:
    r"""Focal-L1 loss of Dang et al. (eq. 8), pixel-wise on :math:`[-1, 1]`.

    Parameters
    ----------
    f : torch.Tensor
        Prediction, any shape, floating, values in :math:`[-1, 1]`.
    y : torch.Tensor
        Target of the same shape, dtype and device, values in :math:`[-1, 1]`.
    gamma : float, default 1.0
        Focusing exponent :math:`\gamma > 0`.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"`` over all elements, ``"sum"``, or ``"none"`` for the per-pixel map.

    Returns
    -------
    torch.Tensor
        The loss (per-pixel map for ``"none"``), float32 for half-precision inputs.

    Raises
    ------
    TypeError
        If ``f`` or ``y`` is not a floating tensor, their dtypes differ or ``gamma`` is not a
        real number.
    ValueError
        If shapes or devices differ, a tensor is empty, a value is outside :math:`[-1, 1]` or
        NaN, ``gamma <= 0`` or ``reduction`` is unknown.

    Notes
    -----
    .. math::

        \ell(f_i, y_i) = \frac{|y_i - f_i|\; |y_i - f_i|^{\gamma\, \mathbb{I}(y_i f_i \ge 0)}}
        {\max(|y_i|, |f_i|)}, \qquad \mathcal{L}_{\mathrm{FocalL1}} = \frac{1}{|\Omega|}
        \sum_{i \in \Omega} \ell(f_i, y_i).

    The denominator vanishes only at :math:`f_i = y_i = 0`, where the numerator is 0 too; it is
    clamped below at ``16 * finfo(dtype).tiny`` (safe denominator), so the pixel loss is 0
    there and gradients stay finite down to subnormal inputs (the clamp changes values only
    where :math:`\max(|y_i|, |f_i|) < 2 \cdot 10^{-37}` in float32). Near the origin the true
    gradient grows like :math:`1 / \max(|y_i|, |f_i|)` (the loss jumps between 0 and 2 there).
    As the paper shows (Fig. 4), for a
    soft target :math:`y_i \notin \{-1, 0, 1\}` the per-pixel loss has a second, spurious local
    minimum, at :math:`f_i = -\operatorname{sign}(y_i)` (value :math:`1 + |y_i|`); see
    :func:`stable_focal_l1_loss`.

    References
    ----------
    Dang, Nguyen & Tiulpin (SAUNA), Sect. 3.4, eq. (8) (Focal-L1 after Dang et al., ref. [8]).

    Examples
    --------
    >>> import torch
    >>> f = torch.tensor([0.5, -0.5], requires_grad=True)
    >>> y = torch.tensor([1.0, 0.5])
    >>> loss = focal_l1_loss(f, y)  # (0.5^2 / 1 + 1 / 0.5) / 2
    >>> loss.backward()
    >>> round(loss.item(), 4)
    1.125
    """
    _check_pair(f, y, region=False)
    gamma = check_positive("gamma", gamma)
    check_reduction(reduction)
    f, y = upcast_half(f, y)
    # Safe denominator: at f = y = 0 the numerator is 0 too, so the pixel loss is 0 / tiny = 0.
    den = torch.maximum(y.abs(), f.abs()).clamp_min(16 * torch.finfo(f.dtype).tiny)
    return reduce(_focal_terms(f, y, gamma) / den, reduction)


def stable_focal_l1_loss(f: torch.Tensor, y: torch.Tensor, gamma: float = 1.0,
                         reduction: Reduction = "mean") -> torch.Tensor:
    r"""Stable Focal-L1 loss (eq. 9), pixel-wise on :math:`[-1, 1]`: Focal-L1 without its denominator.

    Parameters
    ----------
    f : torch.Tensor
        Prediction, any shape, floating, values in :math:`[-1, 1]`.
    y : torch.Tensor
        Target of the same shape, dtype and device, values in :math:`[-1, 1]`.
    gamma : float, default 1.0
        Focusing exponent :math:`\gamma > 0` (the supplement's proof of Proposition 2 assumes
        :math:`\gamma \ge 1`; the statement holds for every :math:`\gamma > 0`).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"`` over all elements, ``"sum"``, or ``"none"`` for the per-pixel map.

    Returns
    -------
    torch.Tensor
        The loss (per-pixel map for ``"none"``), float32 for half-precision inputs.

    Raises
    ------
    TypeError
        If ``f`` or ``y`` is not a floating tensor, their dtypes differ or ``gamma`` is not a
        real number.
    ValueError
        If shapes or devices differ, a tensor is empty, a value is outside :math:`[-1, 1]` or
        NaN, ``gamma <= 0`` or ``reduction`` is unknown.

    Notes
    -----
    .. math::

        \ell^S(f_i, y_i) = |y_i - f_i|\; |y_i - f_i|^{\gamma\, \mathbb{I}(y_i f_i \ge 0)},
        \qquad \mathcal{L}^S_{\mathrm{FocalL1}} = \frac{1}{|\Omega|} \sum_{i \in \Omega}
        \ell^S(f_i, y_i).

    Proposition 2: for every :math:`\gamma > 0` (the supplement's proof assumes
    :math:`\gamma \ge 1`; :func:`softseg.sauna_theory.stable_focal_l1_proof` needs only
    :math:`\gamma > 0`) and every fixed :math:`y_i \in [-1, 1]`,
    :math:`f_i = y_i` is the only local (and global) minimum on :math:`[-1, 1]` (linear
    :math:`|y_i - f_i|` on the wrong-sign side, :math:`|y_i - f_i|^{1+\gamma}` on the right one).
    Proposition 3: :math:`\mathcal{L}^S_{\mathrm{FocalL1}} \le \mathcal{L}_{\mathrm{FocalL1}}`,
    because :math:`\max(|y_i|, |f_i|) \le 1`.

    References
    ----------
    Dang, Nguyen & Tiulpin (SAUNA), Sect. 3.4, eq. (9), Propositions 2 and 3 (proofs:
    Supplementary Secs. 2–3).

    Examples
    --------
    >>> import torch
    >>> f = torch.tensor([0.5, -0.5], requires_grad=True)
    >>> y = torch.tensor([1.0, 0.5])
    >>> loss = stable_focal_l1_loss(f, y)  # (0.5^2 + 1) / 2
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.625
    """
    _check_pair(f, y, region=False)
    gamma = check_positive("gamma", gamma)
    check_reduction(reduction)
    f, y = upcast_half(f, y)
    return reduce(_focal_terms(f, y, gamma), reduction)


# --------------------------------------------------------------------------- modules


class _SaunaLoss(nn.Module):
    """Stores ``reduction`` and ``activation``; subclasses define ``_loss``."""

    def __init__(self, reduction: Reduction, activation: Activation) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.activation = check_option("activation", activation, _ACTIVATIONS)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, activation={self.activation!r}"


class GeneralizedJaccardMetricLoss(_SaunaLoss):
    """Module form of :func:`generalized_jml`: ``forward(x, y)`` applies ``activation`` to ``x``.

    Parameters
    ----------
    eps : float, default 0.0
        Smoothing, see :func:`generalized_jml`.
    reduction : {"mean", "sum", "none"}, default "mean"
    activation : {None, "sigmoid", "softmax", "tanh"}, default None
        Applied to ``x`` first (``softmax`` over dim 1). ``"tanh"`` maps logits to
        :math:`[-1, 1]`, as the paper does (:math:`f = \\tanh f_\\theta(x)`).

    Examples
    --------
    >>> import torch
    >>> loss_fn = GeneralizedJaccardMetricLoss(activation="tanh")
    >>> logits = torch.zeros(2, 1, 4, 4, requires_grad=True)
    >>> loss = loss_fn(logits, torch.ones(2, 1, 4, 4))  # tanh(0) = 0: D = 16, union 16
    >>> loss.backward()
    >>> round(loss.item(), 4)
    1.0
    """

    def __init__(self, eps: float = 0.0, reduction: Reduction = "mean", activation: Activation = None) -> None:
        super().__init__(reduction, activation)
        self.eps = _check_eps(eps)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return generalized_jml(apply_activation(x, self.activation), y, self.eps, self.reduction)

    def extra_repr(self) -> str:
        return f"eps={self.eps!r}, " + super().extra_repr()


class FocalL1Loss(_SaunaLoss):
    """Module form of :func:`focal_l1_loss`: ``forward(x, y)`` applies ``activation`` to ``x``.

    Parameters
    ----------
    gamma : float, default 1.0
    reduction : {"mean", "sum", "none"}, default "mean"
    activation : {None, "sigmoid", "softmax", "tanh"}, default None
        Applied to ``x`` first (``softmax`` over dim 1); ``"tanh"`` is the paper's choice.

    Examples
    --------
    >>> import torch
    >>> loss_fn = FocalL1Loss(activation="tanh")
    >>> logits = torch.zeros(1, 1, 2, 2, requires_grad=True)
    >>> loss = loss_fn(logits, torch.full((1, 1, 2, 2), 0.5))  # 0.5^2 / 0.5
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.5
    """

    def __init__(self, gamma: float = 1.0, reduction: Reduction = "mean", activation: Activation = None) -> None:
        super().__init__(reduction, activation)
        self.gamma = check_positive("gamma", gamma)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return focal_l1_loss(apply_activation(x, self.activation), y, self.gamma, self.reduction)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma!r}, " + super().extra_repr()


class StableFocalL1Loss(_SaunaLoss):
    """Module form of :func:`stable_focal_l1_loss`: ``forward(x, y)`` applies ``activation`` to ``x``.

    Parameters
    ----------
    gamma : float, default 1.0
    reduction : {"mean", "sum", "none"}, default "mean"
    activation : {None, "sigmoid", "softmax", "tanh"}, default None
        Applied to ``x`` first (``softmax`` over dim 1); ``"tanh"`` is the paper's choice.

    Examples
    --------
    >>> import torch
    >>> loss_fn = StableFocalL1Loss(activation="tanh")
    >>> logits = torch.zeros(1, 1, 2, 2, requires_grad=True)
    >>> loss = loss_fn(logits, torch.full((1, 1, 2, 2), 0.5))  # 0.5^2
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.25
    """

    def __init__(self, gamma: float = 1.0, reduction: Reduction = "mean", activation: Activation = None) -> None:
        super().__init__(reduction, activation)
        self.gamma = check_positive("gamma", gamma)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return stable_focal_l1_loss(apply_activation(x, self.activation), y, self.gamma, self.reduction)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma!r}, " + super().extra_repr()
