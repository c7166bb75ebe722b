"""Dice-family region losses: soft Dice/Jaccard and the Dice/Jaccard semimetric losses.

Wang, Popordanoska, Bertels, Lemmens & Blaschko, *Dice Semimetric Losses: Optimizing the Dice
Score with Soft Labels* (MICCAI 2023), Sect. 2. For a prediction ``x`` and a target ``y`` in
:math:`[0, 1]^p` (one sample and class, ``p`` pixels) — the paper defines SDL and SJL (eqs. (1),
(2)) for a *hard* target :math:`y \\in \\{0, 1\\}^p`; here, as in the libraries the paper
criticises (Sect. 2.1), the same formulas also accept a soft ``y``, which is how their failure
on soft labels is shown; JML and DML are defined on :math:`[0, 1]^p \\times [0, 1]^p`:

========================  ======================================================  ==========
loss                      formula                                                 paper
========================  ======================================================  ==========
SDL  (soft Dice)          :math:`1 - 2\\langle x,y\\rangle / (\\|x\\|_1+\\|y\\|_1)`   eq. (1)
SJL  (soft Jaccard)       :math:`1 - \\langle x,y\\rangle/(\\|x\\|_1+\\|y\\|_1-\\langle x,y\\rangle)`  eq. (2)
JML1, JML2 (Jaccard       metric on :math:`[0,1]^p`                                 eq. (3)
metric losses)
DML1, DML2 (Dice          semimetric on :math:`[0,1]^p`, equal to SDL when ``x``    eq. (4),
semimetric losses)        or ``y`` is hard                                         Thms 1-3
========================  ======================================================  ==========

Conventions shared by every function here:

* ``x`` and ``y`` have the same shape ``(N, C, *spatial)`` (at least one spatial axis), the same
  floating dtype and values in :math:`[0, 1]`; each loss is computed per sample and class over
  the spatial axes, then reduced (``reduction="none"`` returns shape ``(N, C)``).
* ``eps`` is added to the numerator *and* the denominator of the score,
  ``loss = 1 - (num + eps) / (den + eps) = (den - num) / (den + eps)``, with the score written
  as in the paper (JML1: soft intersection over soft union, see :func:`jaccard_metric_loss`).
  Each docstring's formula shows where.
* The denominator is made safe: ``den + eps`` is clamped below at ``16 * finfo(dtype).tiny``.
  With ``eps = 0`` an all-empty pair ``x = y = 0`` therefore gives ``0 / safe = 0`` (perfect
  agreement), and gradients stay finite for vanishing masks (e.g. an absent class whose
  predicted probabilities underflow). The clamp changes values only when the whole mass of a
  sample and class is below ~2e-37 (float32) / ~4e-307 (float64).
* Gradients are analytic (one custom :class:`torch.autograd.Function` for all six losses): the
  loss is ``U / V`` with ``U``, ``V`` linear in four per-region sums, so the gradient with
  respect to ``x_i`` is ``(U' - loss * V') / V`` — no ``1 / V**2`` that could overflow. Where
  ``x_i = y_i`` the subgradient of ``|x_i - y_i|`` is taken as 0 (as ``torch.abs`` does), so at
  ``x = y`` the gradient of DML/JML is exactly zero. One consequence: on a hard target, DML/JML
  and SDL/SJL have equal *values* (Theorem 2) but not equal gradients at the pixels where
  ``x_i = y_i`` is 0 or 1 (see :func:`dice_semimetric_loss`). The backward is not itself
  differentiable (no double backward).
* float16/bfloat16 inputs are computed in float32 and the loss is returned in float32.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

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
    "soft_dice_loss",
    "soft_jaccard_loss",
    "dice_semimetric_loss",
    "jaccard_metric_loss",
    "ce_dice_semimetric_loss",
    "SoftDiceLoss",
    "SoftJaccardLoss",
    "DiceSemimetricLoss",
    "JaccardMetricLoss",
    "CEDiceSemimetricLoss",
]

Reduction = Literal["mean", "sum", "none"]
Activation = Optional[Literal["sigmoid", "softmax"]]

_LAYOUT = "(N, C, *spatial)"
_ACTIVATIONS = (None, "sigmoid", "softmax")
_VARIANTS = (1, 2)

# Each loss is U / V with U, V linear in S = ||x||_1 + ||y||_1, P = <x, y> and
# B = ||x - y||_1 (plus eps in V). Rows: d/dS, d/dP, d/dB of U, then of V.
_TABLE: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "sdl": ((1, -2, 0), (1, 0, 0)),      # U = S - 2P,  V = S
    "sjl": ((1, -2, 0), (1, -1, 0)),     # U = S - 2P,  V = S - P
    "dml1": ((0, 0, 1), (1, 0, 0)),      # U = B,       V = S
    "dml2": ((0, 0, 1), (0, 2, 1)),      # U = B,       V = 2P + B
    "jml1": ((0, 0, 1), (0.5, 0, 0.5)),  # U = B,       V = (S + B) / 2  (soft union)
    "jml2": ((0, 0, 1), (0, 1, 1)),      # U = B,       V = P + B
}


def _combine(coef: tuple[float, float, float], S, P, B):
    """Return ``coef[0] * S + coef[1] * P + coef[2] * B`` skipping the zero terms."""
    out = 0
    for k, t in zip(coef, (S, P, B)):
        if k:
            out = out + (t if k == 1 else k * t)
    return out


class _RegionRatio(torch.autograd.Function):
    """``loss = U / V`` per sample and class, with the analytic gradient described in the module doc."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, kind: str, eps: float) -> torch.Tensor:
        (uS, uP, uB), (vS, vP, vB) = _TABLE[kind]
        xf, yf = x.flatten(2), y.flatten(2)
        S = xf.sum(-1) + yf.sum(-1) if (uS or vS) else None
        P = torch.linalg.vecdot(xf, yf, dim=-1) if (uP or vP) else None
        d = B = None
        if uB or vB:
            # ||x - y||_1 computed directly (not as S - 2 * sum(min(x, y)), equal on [0, 1]):
            # no cancellation, so loss(x, x) == 0 and loss(x, y) > 0 for x != y hold exactly.
            d = xf - yf
            B = d.abs().sum(-1)  # faster than vector_norm(d, 1) on CPU, and a pairwise sum
        U = _combine((uS, uP, uB), S, P, B)
        if kind in ("sdl", "sjl"):
            U = U.clamp_min(0)  # S - 2P >= 0 on [0, 1]; remove rounding below 0
        V = _combine((vS, vP, vB), S, P, B) + eps
        floor = 16 * torch.finfo(V.dtype).tiny
        clamped = V < floor
        Vs = V.clamp_min(floor)
        loss = (U / Vs).clamp_(0.0, 1.0)  # [0, 1] as in eqs. (1)-(4); removes 1-ulp rounding
        ctx.kind = kind
        ctx.shape = x.shape
        ctx.d = d  # own buffer, turned into sign(x - y) in place by the first backward
        ctx.save_for_backward(xf, yf, loss, Vs, clamped)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        xf, yf, loss, Vs, clamped = ctx.saved_tensors
        (uS, uP, uB), (vS, vP, vB) = _TABLE[ctx.kind]
        need_x, need_y = ctx.needs_input_grad[:2]
        if not (need_x or need_y):
            return None, None, None, None
        # Where V was clamped the loss is U / const, so V' does not contribute.
        lv = loss.masked_fill(clamped, 0.0)
        g = grad / Vs
        a = ((uS - lv * vS) * g).unsqueeze(-1) if (uS or vS) else None
        b = ((uP - lv * vP) * g).unsqueeze(-1) if (uP or vP) else None
        c = ((uB - lv * vB) * g).unsqueeze(-1) if (uB or vB) else None

        s = None
        if c is not None:
            s, ctx.d = ctx.d, None
            if s is None:  # second backward (retain_graph=True): recompute
                s = xf - yf
            s.sign_()

        def assemble(other: torch.Tensor, cs, reuse: bool) -> torch.Tensor:
            # a + b * other + cs * s, with as few full passes as possible
            if s is None:
                return torch.addcmul(a, other, b)
            out = s.mul_(cs) if reuse else s * cs
            if b is not None:
                out.addcmul_(other, b)
            if a is not None:
                out.add_(a)
            return out

        gy = assemble(xf, None if c is None else -c, reuse=not need_x).view(ctx.shape) if need_y else None
        gx = assemble(yf, c, reuse=True).view(ctx.shape) if need_x else None
        return gx, gy, None, None


# --------------------------------------------------------------------------- validation


def _check_unit_interval(*pairs: tuple[str, torch.Tensor]) -> None:
    """Range check [0, 1] of several tensors with one ``aminmax`` pass each and one sync.

    On failure :func:`softseg._checks.check_range` raises its standard message (NaN included).
    """
    bounds = torch.stack([v for _, t in pairs for v in torch.aminmax(t.detach())]).tolist()
    for k, (name, t) in enumerate(pairs):
        lo, hi = bounds[2 * k], bounds[2 * k + 1]
        if not (lo >= 0.0 and hi <= 1.0):  # written this way so that NaN fails
            check_range(name, t.detach(), 0.0, 1.0)
            raise ValueError(f"{name}: expected values in [0, 1], got values in [{lo:g}, {hi:g}]")


def _check_pair(x, y) -> None:
    """Type, shape, dtype and device checks shared by every loss of this module."""
    check_float_tensor("x", x)
    check_float_tensor("y", y)
    check_same_shape("x", x, "y", y)
    check_min_ndim("x", x, 3, _LAYOUT)
    if x.dtype != y.dtype:
        raise TypeError(f"x and y: expected the same dtype, got {x.dtype} and {y.dtype}")
    if x.device != y.device:
        raise ValueError(f"x and y: expected the same device, got {x.device} and {y.device}")
    if x.numel() == 0:
        raise ValueError(f"x: expected a non-empty tensor of shape {_LAYOUT}, got {tuple(x.shape)}")


def _check_variant(variant) -> int:
    if isinstance(variant, bool) or variant not in _VARIANTS:
        raise ValueError(f"variant: expected one of {_VARIANTS!r}, got {variant!r}")
    return int(variant)


def _check_activation(activation) -> Optional[str]:
    if activation == "tanh":
        raise ValueError(
            f"activation: expected one of {_ACTIVATIONS!r}, got 'tanh' "
            "(tanh maps to [-1, 1], outside the [0, 1] domain of the Dice-family losses)"
        )
    return check_option("activation", activation, _ACTIVATIONS)


def _region_loss(kind: str, x, y, eps, reduction) -> torch.Tensor:
    check_reduction(reduction)
    eps = check_positive("eps", eps, strict=False)
    _check_pair(x, y)
    _check_unit_interval(("x", x), ("y", y))
    x, y = upcast_half(x, y)
    return reduce(_RegionRatio.apply(x, y, kind, eps), reduction)


def _activate(x, activation: Optional[str]) -> torch.Tensor:
    if activation is None:
        return x
    check_float_tensor("x", x)
    check_min_ndim("x", x, 3, _LAYOUT)
    if activation == "softmax" and x.shape[1] == 1:
        raise ValueError(
            "activation: expected 'sigmoid' or None for a single channel (softmax over C == 1 is "
            f"constant 1), got 'softmax' with x of shape {tuple(x.shape)}"
        )
    return apply_activation(x, activation)


_COMMON_PARAMS = """x : torch.Tensor
        Prediction of shape ``(N, C, *spatial)`` with values in :math:`[0, 1]` (float16, bfloat16,
        float32 or float64; any device).
    y : torch.Tensor
        Target of the same shape, dtype and device, values in :math:`[0, 1]` (hard or soft)."""

_COMMON_TAIL = """eps : float, default 0.0
        Smoothing :math:`\\epsilon \\ge 0` added to the numerator and to the denominator of the
        score: ``loss = 1 - (num + eps) / (den + eps)``.
    reduction : {"mean", "sum", "none"}, default "mean"
        Reduction over samples and classes; ``"none"`` returns shape ``(N, C)``.

    Returns
    -------
    torch.Tensor
        Scalar, or ``(N, C)`` for ``reduction="none"``; float32 for float16/bfloat16 inputs, else
        the input dtype.

    Raises
    ------
    TypeError
        If ``x`` or ``y`` is not a floating-point tensor, or their dtypes differ.
    ValueError
        If the shapes differ, there are fewer than 3 dims, the tensor is empty, ``x`` or ``y``
        has a value outside :math:`[0, 1]` (the paper's domain) or a NaN, ``eps < 0``, or
        ``reduction`` is not one of "mean", "sum", "none"."""


# --------------------------------------------------------------------------- functional


def soft_dice_loss(x: torch.Tensor, y: torch.Tensor, eps: float = 0.0,
                   reduction: Reduction = "mean") -> torch.Tensor:
    """Soft Dice loss (SDL), per sample and class over the spatial axes.

    Parameters
    ----------
    {params}
    {tail}

    Notes
    -----
    .. math::

        \\bar\\Delta_{{\\mathrm{{SDL}}}}(x, y) = 1 - \\frac{{2\\langle x, y\\rangle + \\epsilon}}
        {{\\|x\\|_1 + \\|y\\|_1 + \\epsilon}}

    SDL was designed for hard ``y``; with a soft target it is *not* minimized at ``x = y``
    (for ``y = 0.5`` everywhere its minimum is at ``x = 1``). Use
    :func:`dice_semimetric_loss` for soft labels; it equals SDL whenever ``x`` or ``y`` is hard.
    With ``eps = 0`` the empty pair ``x = y = 0`` gives 0 (safe denominator, module doc).

    References
    ----------
    Wang, Popordanoska, Bertels, Lemmens & Blaschko, "Dice Semimetric Losses: Optimizing the
    Dice Score with Soft Labels", MICCAI 2023 — eq. (1).

    Examples
    --------
    >>> import torch
    >>> x = torch.full((1, 1, 4), 0.5, requires_grad=True)
    >>> y = torch.full((1, 1, 4), 0.5)
    >>> loss = soft_dice_loss(x, y)  # 1 - 2 * 1 / (2 + 2)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.5
    """
    return _region_loss("sdl", x, y, eps, reduction)


def soft_jaccard_loss(x: torch.Tensor, y: torch.Tensor, eps: float = 0.0,
                      reduction: Reduction = "mean") -> torch.Tensor:
    """Soft Jaccard (IoU) loss (SJL), per sample and class over the spatial axes.

    Parameters
    ----------
    {params}
    {tail}

    Notes
    -----
    .. math::

        \\bar\\Delta_{{\\mathrm{{SJL}}}}(x, y) = 1 - \\frac{{\\langle x, y\\rangle + \\epsilon}}
        {{\\|x\\|_1 + \\|y\\|_1 - \\langle x, y\\rangle + \\epsilon}}

    Like SDL it is meant for hard ``y`` and pushes ``x`` to the vertices on soft targets; it
    equals both Jaccard metric losses whenever ``x`` or ``y`` is hard. With ``eps = 0`` the
    empty pair ``x = y = 0`` gives 0 (safe denominator, module doc).

    References
    ----------
    Wang, Popordanoska, Bertels, Lemmens & Blaschko, "Dice Semimetric Losses: Optimizing the
    Dice Score with Soft Labels", MICCAI 2023 — eq. (2).

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[[1.0, 0.5, 0.0]]], requires_grad=True)
    >>> y = torch.tensor([[[1.0, 1.0, 0.0]]])
    >>> loss = soft_jaccard_loss(x, y)  # 1 - 1.5 / (1.5 + 2 - 1.5)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.25
    """
    return _region_loss("sjl", x, y, eps, reduction)


def dice_semimetric_loss(x: torch.Tensor, y: torch.Tensor, variant: int = 1, eps: float = 0.0,
                         reduction: Reduction = "mean") -> torch.Tensor:
    """Dice semimetric loss DML1 or DML2, per sample and class over the spatial axes.

    A drop-in replacement for the soft Dice loss that is compatible with soft labels: its value
    equals :func:`soft_dice_loss` whenever ``x`` or ``y`` is hard (Theorem 2) and is zero iff
    ``x = y`` on :math:`[0, 1]^p` (Theorem 1).

    Parameters
    ----------
    {params}
    variant : {{1, 2}}, default 1
        ``1`` for :math:`\\bar\\Delta_{{\\mathrm{{DML}},1}}` (the paper's default, Sect. 3.2/3.6),
        ``2`` for :math:`\\bar\\Delta_{{\\mathrm{{DML}},2}}`.
    {tail}
        ``ValueError`` also if ``variant`` is not 1 or 2.

    Notes
    -----
    Paper, eq. (4), with the smoothing :math:`\\epsilon`:

    .. math::

        \\bar\\Delta_{{\\mathrm{{DML}},1}} = 1 - \\frac{{\\|x + y\\|_1 - \\|x - y\\|_1 + \\epsilon}}
        {{\\|x + y\\|_1 + \\epsilon}}, \\qquad
        \\bar\\Delta_{{\\mathrm{{DML}},2}} = 1 - \\frac{{2\\|x \\odot y\\|_1 + \\epsilon}}
        {{2\\|x \\odot y\\|_1 + \\|x - y\\|_1 + \\epsilon}}.

    These are the general formulas (written for real vectors). On the domain :math:`[0, 1]^p`
    (non-negative entries) :math:`\\|x + y\\|_1 = \\|x\\|_1 + \\|y\\|_1` and
    :math:`\\|x + y\\|_1 - \\|x - y\\|_1 = 2\\sum_i \\min(x_i, y_i)`, so
    :math:`\\bar\\Delta_{{\\mathrm{{DML}},1}} = \\|x - y\\|_1 / (\\|x\\|_1 + \\|y\\|_1)`; this is what
    is computed (three reductions and one elementwise difference, with an analytic backward).
    :math:`\\|x - y\\|_1` is summed directly rather than as :math:`\\|x\\|_1 + \\|y\\|_1 -
    2\\sum\\min`, which costs the same and keeps ``loss(x, x) == 0`` and ``loss(x, y) > 0`` for
    ``x != y`` exact in floating point.

    Theorem 2 is an equality of *values*. The gradients also agree on a hard ``y`` wherever
    :math:`0 < x_i < 1`, but not at a pixel with :math:`x_i = y_i \\in \\{{0, 1\\}}`: there
    :math:`|x_i - y_i|` has a kink, whose subgradient is taken as 0, while SDL is smooth in
    :math:`x_i`. For :math:`x = (1, 0.5, 0)`, :math:`y = (1, 0, 0)` the gradients in ``x`` are
    SDL :math:`(-0.48, 0.32, 0.32)`, DML1 :math:`(-0.08, 0.32, -0.08)`, DML2
    :math:`(-0.16, 0.32, 0)`. This does not matter after a sigmoid or softmax (its derivative
    is 0 wherever a probability rounds to exactly 0 or 1), but it does for probabilities that
    are clipped or are leaves of the graph (``tests/test_losses_dice.py`` documents it).

    Properties checked in ``tests/test_losses_dice.py``: DML1 ≤ DML2 (Theorem 3); symmetry,
    reflexivity, positivity, and the relaxed triangle inequality (eq. 5)
    :math:`f(a, c) \\le \\rho\\,(f(a, b) + f(b, c))` with :math:`\\rho = 3/2` (Theorem 1 gives no
    constant; 3/2 follows from ``DML = JML / (2 - JML)`` (Proposition 1's transform) and JML
    being a metric, and is attained on hard sets, as for the Dice distance [11]).
    With ``eps = 0`` the empty pair ``x = y = 0`` gives 0 (safe denominator, module doc).

    References
    ----------
    Wang, Popordanoska, Bertels, Lemmens & Blaschko, "Dice Semimetric Losses: Optimizing the
    Dice Score with Soft Labels", MICCAI 2023 — eq. (4), eq. (5), Theorems 1-3.
    [11] Gragera & Suppakitpaisarn, "Relaxed triangle inequality ratio of the Sørensen-Dice and
    Tversky indexes", TCS 718 (2018).

    Examples
    --------
    >>> import torch
    >>> y = torch.full((1, 1, 4), 0.5)                 # a soft target
    >>> x = y.clone().requires_grad_(True)
    >>> loss = dice_semimetric_loss(x, y)              # minimized at x = y ...
    >>> loss.backward()
    >>> loss.item(), x.grad.abs().max().item()
    (0.0, 0.0)
    >>> round(soft_dice_loss(x, y).item(), 4)          # ... where SDL is not
    0.5
    """
    kind = f"dml{_check_variant(variant)}"
    return _region_loss(kind, x, y, eps, reduction)


def jaccard_metric_loss(x: torch.Tensor, y: torch.Tensor, variant: int = 1, eps: float = 0.0,
                        reduction: Reduction = "mean") -> torch.Tensor:
    """Jaccard metric loss JML1 or JML2, per sample and class over the spatial axes.

    Equals :func:`soft_jaccard_loss` whenever ``x`` or ``y`` is hard, and is a metric on
    :math:`[0, 1]^p` (triangle inequality with constant 1).

    Parameters
    ----------
    {params}
    variant : {{1, 2}}, default 1
        ``1`` for :math:`\\bar\\Delta_{{\\mathrm{{JML}},1}}`, ``2`` for
        :math:`\\bar\\Delta_{{\\mathrm{{JML}},2}}`.
    {tail}
        ``ValueError`` also if ``variant`` is not 1 or 2.

    Notes
    -----
    Paper, eq. (3), with the smoothing :math:`\\epsilon`:

    .. math::

        \\bar\\Delta_{{\\mathrm{{JML}},1}} = 1 - \\frac{{\\tfrac12(\\|x + y\\|_1 - \\|x - y\\|_1) + \\epsilon}}
        {{\\tfrac12(\\|x + y\\|_1 + \\|x - y\\|_1) + \\epsilon}}, \\qquad
        \\bar\\Delta_{{\\mathrm{{JML}},2}} = 1 - \\frac{{\\|x \\odot y\\|_1 + \\epsilon}}
        {{\\|x \\odot y\\|_1 + \\|x - y\\|_1 + \\epsilon}}.

    Without smoothing the halves cancel and this is eq. (3) as printed. With :math:`\\epsilon > 0`
    the smoothing is added to the soft intersection :math:`\\sum_i \\min(x_i, y_i)` and union
    :math:`\\sum_i \\max(x_i, y_i)` (the halves above, on :math:`[0, 1]^p`), as in
    :func:`soft_jaccard_loss`, so that JML1 = JML2 = SJL on hard labels for every
    :math:`\\epsilon` (Theorem 2's analogue). On :math:`[0, 1]^p`,
    :math:`\\|x + y\\|_1 = \\|x\\|_1 + \\|y\\|_1`, which is what is computed.
    The Dice semimetric losses are :math:`\\bar\\Delta_{{\\mathrm{{DML}},k}} =
    \\bar\\Delta_{{\\mathrm{{JML}},k}} / (2 - \\bar\\Delta_{{\\mathrm{{JML}},k}})` (Sect. 2.2,
    Proposition 1) without smoothing. With smoothing, DML's denominator being twice JML's, the
    transform pairs DML's :math:`\\epsilon` with JML's :math:`\\epsilon / 2`:
    ``dice_semimetric_loss(x, y, k, eps) == h(jaccard_metric_loss(x, y, k, eps / 2))``,
    :math:`h(t) = t / (2 - t)`. With ``eps = 0`` the empty pair ``x = y = 0`` gives 0 (safe
    denominator).

    References
    ----------
    Wang, Popordanoska, Bertels, Lemmens & Blaschko, "Dice Semimetric Losses: Optimizing the
    Dice Score with Soft Labels", MICCAI 2023 — eq. (3) (after Wang & Blaschko, "Jaccard
    metric losses", ref. [47]).

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[[0.5, 0.25]]], requires_grad=True)
    >>> y = torch.tensor([[[0.25, 0.25]]])
    >>> loss = jaccard_metric_loss(x, y)  # 1 - sum(min) / sum(max) = 1 - 0.5 / 0.75
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.3333
    """
    kind = f"jml{_check_variant(variant)}"
    return _region_loss(kind, x, y, eps, reduction)


for _f in (soft_dice_loss, soft_jaccard_loss, dice_semimetric_loss, jaccard_metric_loss):
    _f.__doc__ = _f.__doc__.format(params=_COMMON_PARAMS, tail=_COMMON_TAIL)
del _f


def ce_dice_semimetric_loss(x: torch.Tensor, y: torch.Tensor, lambda_dml: float = 0.75,
                            variant: int = 1, activation: Activation = None, eps: float = 0.0,
                            reduction: Reduction = "mean") -> torch.Tensor:
    """Cross-entropy plus Dice semimetric loss on logits, the training loss of the paper.

    Parameters
    ----------
    x : torch.Tensor
        Logits of shape ``(N, C, *spatial)`` (finite, floating point).
    y : torch.Tensor
        Soft target of the same shape, dtype and device, values in :math:`[0, 1]`. With the
        softmax activation its channels must sum to 1 at every pixel (a soft one-hot map such
        as averaged annotations, label smoothing or a teacher's probabilities), to within
        ``max(1e-3, 4 * C * finfo(dtype).eps)``.
    lambda_dml : float, default 0.75
        Weight :math:`\\lambda \\in [0, 1]` of the DML term; CE gets :math:`1 - \\lambda`. The
        default is the paper's mixture "CE and DMLs weighted by 0.25 and 0.75" (Sect. 3.2).
    variant : {1, 2}, default 1
        Which Dice semimetric loss (:func:`dice_semimetric_loss`); the paper uses DML1.
    activation : {None, "softmax", "sigmoid"}, default None
        How logits become probabilities. ``None`` picks ``"softmax"`` for ``C > 1`` and
        ``"sigmoid"`` for ``C == 1``. ``"softmax"``: soft cross-entropy
        :math:`-\\sum_c y_c \\log \\operatorname{softmax}(x)_c` per pixel and DML on the softmax
        probabilities. ``"sigmoid"``: binary cross-entropy per element (multi-label, no
        channel-sum condition on ``y``) and DML on ``sigmoid(x)``.
    eps : float, default 0.0
        Smoothing of the DML term (see :func:`dice_semimetric_loss`).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"`` returns the per-sample loss, shape ``(N,)``; ``"mean"``/``"sum"`` reduce it.

    Returns
    -------
    torch.Tensor
        Scalar, or ``(N,)`` for ``reduction="none"``.

    Raises
    ------
    TypeError
        If ``x`` or ``y`` is not a floating-point tensor, or their dtypes differ.
    ValueError
        If the shapes differ or have fewer than 3 dims, ``x`` holds NaN/inf, ``y`` is outside
        :math:`[0, 1]` or (softmax) its channels do not sum to 1, ``activation="softmax"`` with
        ``C == 1``, ``lambda_dml`` is outside [0, 1], or ``variant``/``activation``/``eps``/
        ``reduction`` is invalid.

    Notes
    -----
    Per sample ``n``, with :math:`p = \\operatorname{softmax}(x)` (or :math:`\\sigma(x)`),
    CE averaged over the pixels and DML averaged over the classes:

    .. math::

        \\mathcal{L}_n = (1 - \\lambda)\\, \\frac{1}{|\\Omega|} \\sum_{i \\in \\Omega}
        \\Big(-\\sum_c y_{c,i} \\log p_{c,i}\\Big)
        + \\lambda\\, \\frac{1}{C} \\sum_c \\bar\\Delta_{\\mathrm{DML}}(p_c, y_c)

    (for ``"sigmoid"`` the CE term is the binary cross-entropy averaged over classes and pixels).
    ``"mean"`` of :math:`\\mathcal{L}_n` over samples equals CE averaged over all pixels plus DML
    averaged over samples and classes. The unnormalised form :math:`CE + \\lambda' DML` is
    :math:`(1 + \\lambda')` times this loss with :math:`\\lambda = \\lambda' / (1 + \\lambda')`.

    References
    ----------
    Wang, Popordanoska, Bertels, Lemmens & Blaschko, "Dice Semimetric Losses: Optimizing the
    Dice Score with Soft Labels", MICCAI 2023 — Sect. 3.2 (training loss), eq. (4) (DML).

    Examples
    --------
    >>> import torch
    >>> logits = torch.zeros(1, 2, 4, requires_grad=True)       # p = 0.5 everywhere
    >>> y = torch.full((1, 2, 4), 0.5)                          # soft target, sums to 1
    >>> loss = ce_dice_semimetric_loss(logits, y)               # 0.25 * log 2 + 0.75 * 0
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.1733
    """
    check_reduction(reduction)
    lam = check_positive("lambda_dml", lambda_dml, strict=False)
    if lam > 1:
        raise ValueError(f"lambda_dml: expected a number in [0, 1], got {lambda_dml!r}")
    kind = f"dml{_check_variant(variant)}"
    activation = check_option("activation", activation, _ACTIVATIONS)
    eps = check_positive("eps", eps, strict=False)
    _check_pair(x, y)
    C = x.shape[1]
    mode = activation or ("softmax" if C > 1 else "sigmoid")
    if mode == "softmax" and C == 1:
        raise ValueError(
            "activation: expected 'sigmoid' or None for a single channel (softmax over C == 1 is "
            f"constant 1), got 'softmax' with x of shape {tuple(x.shape)}"
        )
    lo, hi = torch.aminmax(x.detach())
    if not bool(torch.isfinite(lo) & torch.isfinite(hi)):
        raise ValueError("x: expected finite logits, got NaN or inf")
    _check_unit_interval(("y", y))
    x, y = upcast_half(x, y)
    if mode == "softmax":
        sums = torch.aminmax(y.detach().sum(1))
        lo, hi = torch.stack(sums).tolist()
        tol = max(1e-3, 4 * C * torch.finfo(y.dtype).eps)
        if not (abs(lo - 1) <= tol and abs(hi - 1) <= tol):
            raise ValueError(
                "y: expected channels summing to 1 at every pixel for activation='softmax', "
                f"got sums in [{lo:g}, {hi:g}]"
            )
        logp = F.log_softmax(x, dim=1)
        ce = -(y * logp).sum(1)
        p = logp.exp()
    else:
        ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        p = torch.sigmoid(x)
    ce = ce.flatten(1).mean(1)
    dml = _RegionRatio.apply(p, y, kind, eps).mean(1)
    return reduce((1.0 - lam) * ce + lam * dml, reduction)


# --------------------------------------------------------------------------- modules


class _DiceFamilyLoss(nn.Module):
    """Shared ``__init__``/``forward`` of the region-loss wrappers (MONAI style)."""

    _fn = None  # the functional form, set by subclasses

    def __init__(self, *, eps: float = 0.0, reduction: Reduction = "mean",
                 activation: Activation = None) -> None:
        super().__init__()
        self.eps = check_positive("eps", eps, strict=False)
        self.reduction = check_reduction(reduction)
        self.activation = _check_activation(activation)

    def _kwargs(self) -> dict:
        return {"eps": self.eps, "reduction": self.reduction}

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return type(self)._fn(_activate(x, self.activation), y, **self._kwargs())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in {**self._kwargs(), "activation": self.activation}.items())


class SoftDiceLoss(_DiceFamilyLoss):
    """Module form of :func:`soft_dice_loss` (SDL, eq. 1).

    Parameters
    ----------
    eps, reduction
        As in :func:`soft_dice_loss`.
    activation : {None, "sigmoid", "softmax"}, default None
        Applied to ``x`` before the loss (softmax over the channel axis 1). ``"tanh"`` is
        rejected: it maps to [-1, 1], outside the losses' domain [0, 1].

    Examples
    --------
    >>> import torch
    >>> loss = SoftDiceLoss(activation="sigmoid")(torch.zeros(1, 1, 4), torch.ones(1, 1, 4))
    >>> round(loss.item(), 4)  # 1 - 2 * 2 / (2 + 4)
    0.3333
    """

    _fn = staticmethod(soft_dice_loss)


class SoftJaccardLoss(_DiceFamilyLoss):
    """Module form of :func:`soft_jaccard_loss` (SJL, eq. 2); options as in :class:`SoftDiceLoss`."""

    _fn = staticmethod(soft_jaccard_loss)


class DiceSemimetricLoss(_DiceFamilyLoss):
    """Module form of :func:`dice_semimetric_loss` (DML1/DML2, eq. 4).

    Parameters
    ----------
    variant : {1, 2}, default 1
        As in :func:`dice_semimetric_loss`.
    eps, reduction, activation
        As in :class:`SoftDiceLoss`.

    Examples
    --------
    >>> import torch
    >>> y = torch.full((2, 3, 8, 8), 1 / 3)
    >>> DiceSemimetricLoss(activation="softmax")(torch.zeros(2, 3, 8, 8), y).item()
    0.0
    """

    _fn = staticmethod(dice_semimetric_loss)

    def __init__(self, *, variant: int = 1, eps: float = 0.0, reduction: Reduction = "mean",
                 activation: Activation = None) -> None:
        super().__init__(eps=eps, reduction=reduction, activation=activation)
        self.variant = _check_variant(variant)

    def _kwargs(self) -> dict:
        return {"variant": self.variant, **super()._kwargs()}


class JaccardMetricLoss(DiceSemimetricLoss):
    """Module form of :func:`jaccard_metric_loss` (JML1/JML2, eq. 3); options as in
    :class:`DiceSemimetricLoss`."""

    _fn = staticmethod(jaccard_metric_loss)


class CEDiceSemimetricLoss(nn.Module):
    """Module form of :func:`ce_dice_semimetric_loss`: ``(1 - λ) CE + λ DML`` on logits.

    Parameters
    ----------
    lambda_dml, variant, activation, eps, reduction
        As in :func:`ce_dice_semimetric_loss` (defaults: 0.75, 1, None, 0.0, "mean"), which
        reproduce the paper's training loss (Sect. 3.2).

    Examples
    --------
    >>> import torch
    >>> criterion = CEDiceSemimetricLoss()
    >>> logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    >>> target = torch.softmax(torch.randn(2, 3, 8, 8), dim=1)   # e.g. a teacher's map
    >>> criterion(logits, target).backward()
    """

    def __init__(self, *, lambda_dml: float = 0.75, variant: int = 1,
                 activation: Activation = None, eps: float = 0.0,
                 reduction: Reduction = "mean") -> None:
        super().__init__()
        lam = check_positive("lambda_dml", lambda_dml, strict=False)
        if lam > 1:
            raise ValueError(f"lambda_dml: expected a number in [0, 1], got {lambda_dml!r}")
        self.lambda_dml = lam
        self.variant = _check_variant(variant)
        self.activation = check_option("activation", activation, _ACTIVATIONS)
        self.eps = check_positive("eps", eps, strict=False)
        self.reduction = check_reduction(reduction)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ce_dice_semimetric_loss(x, y, lambda_dml=self.lambda_dml, variant=self.variant,
                                       activation=self.activation, eps=self.eps,
                                       reduction=self.reduction)

    def extra_repr(self) -> str:
        return (f"lambda_dml={self.lambda_dml!r}, variant={self.variant!r}, "
                f"activation={self.activation!r}, eps={self.eps!r}, reduction={self.reduction!r}")
