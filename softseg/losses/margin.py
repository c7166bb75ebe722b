r"""Distribution-aware margin calibration (Li, Yu & Zhang).

The ρ-margin loss (eq. 5) and the ρ-calibrated log-loss (eqs. 27–29) for multi-class score maps,
the IoU lower bound they come from (eqs. 6–8), the terms of the generalization bound of Theorem 1
(eqs. 18, 20, 22) and the optimal, distribution-aware margins of Corollary 1.1 (eq. 23).

Conventions of this module
--------------------------
``scores`` are real-valued class scores (logits) of shape ``(N, C, *spatial)`` and ``labels`` are
integer class indices of shape ``(N, *spatial)`` with values in ``[0, C - 1]``. Every channel
``k`` is a class of the paper's sum over ``k = 1 … c`` (a background channel, if there is one,
is a class like any other); "background" in ``ρ_0k`` means "any class but ``k``".

The margin of pixel ``i`` with respect to class ``k`` is (eq. 4)

.. math:: \lambda_{ik} = s_{ik} - \max_{j \neq k} s_{ij}.

Margins ``rho`` are given in one of three forms (the losses, the bound and the modules all
accept the same three):

* a non-negative real number: ``ρ_0k = ρ_k0 = rho`` for every class;
* a non-negative ``(C,)`` tensor (or NumPy array): symmetric per-class margins
  ``ρ_0k = ρ_k0 = rho[k]``;
* a pair ``(rho_0k, rho_k0)`` — a ``tuple`` or ``list`` of length two, each entry a number or a
  ``(C,)`` tensor — exactly what :func:`optimal_margins` returns. ``rho_k0`` is the margin
  asked of the pixels of class ``k`` (false negatives side, ``ℓ_k0``), ``rho_0k`` the margin
  asked of the pixels of the other classes against ``k`` (false positives side, ``ℓ_0k``).

A plain list of two numbers is therefore read as the pair, never as two per-class margins: pass a
tensor for per-class margins.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Literal, NamedTuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from softseg._checks import (
    check_finite,
    check_float_tensor,
    check_min_ndim,
    check_option,
    check_positive,
    check_range,
    check_reduction,
    check_tensor,
    reduce,
)
from softseg.losses._common import apply_activation

__all__ = [
    "margin_loss",
    "calibrated_log_loss",
    "optimal_margins",
    "iou_lower_bound",
    "argmax_iou",
    "margin_bound_terms",
    "MarginBound",
    "MarginLoss",
    "CalibratedLogLoss",
]

Reduction = Literal["mean", "sum", "none"]
Activation = Literal["sigmoid", "softmax", "tanh"]
Margins = Union[float, torch.Tensor, np.ndarray, Sequence]

_LN2 = math.log(2.0)
_ACTIVATIONS = (None, "sigmoid", "softmax", "tanh")


# ----------------------------------------------------------------------------------------------
# private helpers
# ----------------------------------------------------------------------------------------------


def _one_margin(name: str, value) -> torch.Tensor:
    """Validate one margin entry (number, 0-d or 1-d tensor/array) and return it as float64."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"{name}: expected a non-negative number or a (C,) tensor, got {type(value).__name__}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name}: expected a finite margin >= 0, got {value!r}")
        return torch.tensor(v, dtype=torch.float64)
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))  # negative strides (a[::-1]) too
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name}: expected a non-negative number, a (C,) tensor or a pair (rho_0k, rho_k0), "
            f"got {type(value).__name__}"
        )
    if value.dtype == torch.bool or value.is_complex():
        raise TypeError(f"{name}: expected a real-valued tensor, got dtype {value.dtype}")
    if value.ndim > 1:
        raise ValueError(f"{name}: expected a scalar or a (C,) tensor of margins, got shape {tuple(value.shape)}")
    value = value.detach().to(torch.float64)
    if value.numel():
        check_finite(name, value)
        lo = float(value.min())
        if lo < 0:
            raise ValueError(f"{name}: expected margins >= 0, got minimum {lo:g}")
    return value


def _canonical_margins(rho) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn any accepted form of ``rho`` into a validated pair ``(rho_0k, rho_k0)`` (float64)."""
    if isinstance(rho, (tuple, list)):
        if len(rho) != 2:
            raise ValueError(
                f"rho: expected a number, a (C,) tensor or a pair (rho_0k, rho_k0), "
                f"got a {type(rho).__name__} of length {len(rho)}"
            )
        return _one_margin("rho[0] (rho_0k)", rho[0]), _one_margin("rho[1] (rho_k0)", rho[1])
    r = _one_margin("rho", rho)
    return r, r


def _expand_margins(pair: tuple[torch.Tensor, torch.Tensor], num_classes: int,
                    names: tuple[str, str] = ("rho[0] (rho_0k)", "rho[1] (rho_k0)")
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Broadcast a canonical pair to two ``(C,)`` tensors, checking C."""
    out = []
    for name, r in zip(names, pair):
        if r.ndim == 1 and r.shape[0] != num_classes:
            raise ValueError(
                f"{name}: expected a scalar or C={num_classes} per-class margins, got shape {tuple(r.shape)}"
            )
        out.append(r.expand(num_classes))
    return out[0], out[1]


def _check_scores_labels(scores, labels) -> torch.Tensor:
    """Validate ``scores`` (N, C, *spatial) float and ``labels`` (N, *spatial) integer in range.

    Returns the labels as int64.
    """
    check_float_tensor("scores", scores)
    check_min_ndim("scores", scores, 2, "(N, C, *spatial)")
    check_tensor("labels", labels)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels: expected an integer tensor of class indices (int64), got dtype {labels.dtype}")
    expected = (scores.shape[0], *scores.shape[2:])
    if tuple(labels.shape) != expected:
        raise ValueError(
            f"labels: expected shape (N, *spatial) = {expected} (the shape of scores without the C axis), "
            f"got {tuple(labels.shape)}"
        )
    if labels.device != scores.device:
        raise ValueError(f"labels: expected a tensor on {scores.device} (the device of scores), got {labels.device}")
    if scores.numel() == 0:
        raise ValueError(f"scores: expected a non-empty tensor (N, C >= 1, spatial sizes > 0), "
                         f"got shape {tuple(scores.shape)}")
    _check_finite_minmax("scores", scores)
    check_range("labels", labels, 0, scores.shape[1] - 1)
    return labels.long()


def _check_finite_minmax(name: str, value: torch.Tensor) -> None:
    """Raise ``ValueError`` on NaN/inf with one min/max pass (NaN and ±inf propagate to it)."""
    lo, hi = torch.aminmax(value.detach())
    if not bool(torch.isfinite(torch.stack((lo, hi))).all()):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")


def _class_index(num_classes: int, ndim: int, device) -> torch.Tensor:
    """``arange(C)`` shaped ``(1, C, 1, …, 1)`` to broadcast against ``(N, C, *spatial)``."""
    return torch.arange(num_classes, device=device).view(1, num_classes, *([1] * (ndim - 2)))


def _pixel_class_terms(scores: torch.Tensor, labels: torch.Tensor, rho, kind: str):
    """Per pixel and class terms of eq. 27 (``kind="margin"``) or eqs. 28–29 (``"calibrated"``).

    Returns ``(terms, labels)``: ``terms`` of shape ``(N, C, *spatial)`` holds ``φ(λ_ik)`` with
    margin ``ρ_k0`` at the label ``k = y_i`` and ``φ(−λ_ik)`` with margin ``ρ_0k`` at every other
    class; ``labels`` are the validated labels as int64.

    Written for speed (it is the whole loss): the "off" terms are computed for every class at
    once and the label's entry is then replaced (``scatter``), so no boolean mask of the labels
    and no ``where`` carrying gradients is needed.
    """
    labels = _check_scores_labels(scores, labels)
    num_classes = scores.shape[1]
    r0k, rk0 = _expand_margins(_canonical_margins(rho), num_classes)
    any_zero = bool((r0k == 0).any()) or bool((rk0 == 0).any())
    r0k = r0k.to(device=scores.device, dtype=scores.dtype)
    rk0 = rk0.to(device=scores.device, dtype=scores.dtype)

    index = labels.unsqueeze(1)  # (N, 1, *spatial)
    lam = _margins(scores)  # (N, C, *spatial)
    lam_y = lam.gather(1, index)  # λ_{i y_i}
    r_off = r0k.reshape(1, num_classes, *([1] * (scores.ndim - 2)))
    r_true = rk0[index]  # ρ_{y_i 0}, shape (N, 1, *spatial)
    if kind == "margin":
        off = _rho_margin(lam, r_off, -1, any_zero)  # φ_{ρ_0k}(−λ_ik)
        true = _rho_margin(lam_y, r_true, 1, any_zero)  # φ_{ρ_k0}(λ_ik), k = y_i
    else:
        off = _log2_1p_exp2(lam + r_off)  # log2(1 + 2^{λ_ik + ρ_0k})
        true = _log2_1p_exp2(r_true - lam_y)  # log2(1 + 2^{−λ_ik + ρ_k0}), k = y_i
    return off.scatter(1, index, true), labels


def _log2_1p_exp2(x: torch.Tensor) -> torch.Tensor:
    """``log2(1 + 2^x)`` in one op: softplus with β = ln 2 is ``log(1 + e^{x ln 2}) / ln 2``.

    Linear (exactly ``x``) beyond ``x ln 2 > 40``, where the neglected ``log2(1 + 2^{−x})`` is
    below ``1e-17``.
    """
    return F.softplus(x, beta=_LN2, threshold=40.0)


def _margins(scores: torch.Tensor) -> torch.Tensor:
    """λ_ik = s_ik − max_{j≠k} s_ij (eq. 4) for every pixel and class, vectorized.

    With ``s_(1) ≥ s_(2)`` the two largest scores and ``k*`` the (first) argmax,
    ``λ_ik = s_ik − s_(1)`` for ``k ≠ k*`` and ``λ_ik* = s_(1) − s_(2)``; ties give ``λ = 0``
    for every tied class, as the definition does. With a single class the max over an empty
    set is −∞, so λ = +∞ (the only class is always predicted); the result still carries the
    graph of ``scores`` and gets zero gradient downstream.
    """
    if scores.shape[1] == 1:
        return scores + math.inf
    top, idx = scores.topk(2, dim=1)
    first, second = top.narrow(1, 0, 1), top.narrow(1, 1, 1)
    return (scores - first).scatter(1, idx.narrow(1, 0, 1), first - second)


def _rho_margin(lam: torch.Tensor, rho: torch.Tensor, sign: int, any_zero: bool) -> torch.Tensor:
    """φ_ρ(sign·λ) = min(1, max(0, 1 − sign·λ/ρ)) (eq. 5); at ρ = 0 the limit 1[sign·λ ≤ 0]."""
    if not any_zero:
        return (lam / (-sign * rho) + 1).clamp(0, 1)
    positive = rho > 0
    safe = torch.where(positive, rho, torch.ones_like(rho))
    ramp = (lam / (-sign * safe) + 1).clamp(0, 1)
    step = (lam <= 0) if sign > 0 else (lam >= 0)
    return torch.where(positive, ramp, step.to(lam.dtype))


def _counts(class_counts) -> torch.Tensor:
    """Validate ``class_counts`` (1-D, finite, >= 0) and return it as a float64 tensor."""
    if isinstance(class_counts, torch.Tensor):
        counts = class_counts
    elif isinstance(class_counts, (np.ndarray, list, tuple)):
        try:
            counts = torch.as_tensor(np.ascontiguousarray(class_counts, dtype=np.float64))  # also reversed views
        except (TypeError, ValueError) as err:
            raise TypeError(f"class_counts: expected a 1-D sequence of numbers, got {class_counts!r}") from err
    else:
        raise TypeError(f"class_counts: expected a 1-D tensor, array or sequence of counts, "
                        f"got {type(class_counts).__name__}")
    if counts.dtype == torch.bool or counts.is_complex():
        raise TypeError(f"class_counts: expected real-valued counts, got dtype {counts.dtype}")
    if counts.ndim != 1 or counts.numel() == 0:
        raise ValueError(f"class_counts: expected a non-empty 1-D (C,) vector, got shape {tuple(counts.shape)}")
    counts = counts.detach().to(torch.float64)
    check_finite("class_counts", counts)
    lo = float(counts.min())
    if lo < 0:
        raise ValueError(f"class_counts: expected non-negative counts, got minimum {lo:g}")
    return counts


# ----------------------------------------------------------------------------------------------
# losses
# ----------------------------------------------------------------------------------------------


def margin_loss(scores: torch.Tensor, labels: torch.Tensor, rho: Margins,
                reduction: Reduction = "mean") -> torch.Tensor:
    r"""ρ-margin loss of Li, Yu & Zhang summed over the classes (eqs. 5 and 27).

    Parameters
    ----------
    scores : torch.Tensor
        Class scores (logits) of shape ``(N, C, *spatial)``, floating point, finite.
    labels : torch.Tensor
        Integer class indices of shape ``(N, *spatial)`` with values in ``[0, C - 1]``.
    rho : float, torch.Tensor or pair
        Margin-offsets ``ρ ≥ 0``: a number (all classes, both sides), a ``(C,)`` tensor
        (symmetric per class) or the pair ``(rho_0k, rho_k0)`` of :func:`optimal_margins`
        (see the module docstring). ``ρ = 0`` gives the 0-1 loss ``φ_0(λ) = 1[λ ≤ 0]``.
    reduction : {"mean", "sum", "none"}
        ``"none"``: the per-pixel loss ``l_i`` of shape ``(N, *spatial)``; ``"mean"``: its mean
        over the ``n = N·|spatial|`` pixels of the batch, which is exactly ``L(θ)`` of eq. 27;
        ``"sum"``: ``n·L(θ)``.

    Returns
    -------
    torch.Tensor
        A scalar for ``"mean"``/``"sum"``, else a tensor of shape ``(N, *spatial)``.

    Raises
    ------
    TypeError
        If ``scores`` is not a floating-point tensor, ``labels`` not an integer tensor, or
        ``rho`` of an unsupported type.
    ValueError
        If ``scores`` has fewer than 2 dims, is empty or holds NaN/inf, ``labels`` has the wrong
        shape, device or values outside ``[0, C - 1]``, a margin is negative or not finite, a per-class margin
        does not have ``C`` entries, or ``reduction`` is unknown.

    Notes
    -----
    With ``λ_ik = s_ik − max_{j≠k} s_ij`` (eq. 4), ``φ_ρ`` of eq. 5 and ``Y_k`` the pixels of
    class ``k``, the per-pixel loss of a pixel of class ``y_i`` is

    .. math::
        l_i = \phi_{\rho_{y_i 0}}(\lambda_{i y_i}) + \sum_{k \neq y_i} \phi_{\rho_{0k}}(-\lambda_{ik}),
        \qquad \phi_\rho(\lambda) = \min\bigl(1, \max(0, 1 - \lambda/\rho)\bigr),

    so that :math:`\frac1n\sum_i l_i = \sum_k \ell_{k0,n}(\theta,\rho_{k0}) + \ell_{0k,n}(\theta,\rho_{0k})`
    (eq. 27). Each ``l_i`` lies in ``[0, C]``; at ``ρ = 0`` it is ``2·1[ŷ_i ≠ y_i]`` when the
    argmax is unique (a mistake counts once as a false negative of ``y_i`` and once as a false
    positive of ``ŷ_i``); as ``ρ → ∞`` it tends to ``C``. The loss is non-decreasing in every
    margin. Its gradient is ``−1/ρ`` times a 0/±1 pattern on the ramp ``0 < ±λ < ρ`` and zero
    elsewhere (zero everywhere at ``ρ = 0``): finite, but large for small ``ρ`` — the reason
    the paper trains with :func:`calibrated_log_loss` instead. With ``C = 1`` the loss is 0.

    References
    ----------
    Z. Li, L. Yu, J. Zhang, "Distribution-aware Margin Calibration for Medical Image
    Segmentation": eq. (4) margin, eq. (5) ρ-margin loss, eqs. (6) and (27).

    Examples
    --------
    >>> scores = torch.randn(2, 3, 8, 8, requires_grad=True)
    >>> labels = torch.randint(0, 3, (2, 8, 8))
    >>> loss = margin_loss(scores, labels, rho=1.0)
    >>> loss.backward()
    >>> margin_loss(scores, labels, 1.0, reduction="none").shape
    torch.Size([2, 8, 8])
    """
    check_reduction(reduction)
    terms, _ = _pixel_class_terms(scores, labels, rho, "margin")
    return reduce(terms.sum(1), reduction)


def calibrated_log_loss(scores: torch.Tensor, labels: torch.Tensor, rho: Margins,
                        reduction: Reduction = "mean") -> torch.Tensor:
    r"""ρ-calibrated log-loss, the training loss of margin calibration (eqs. 27–29).

    Parameters
    ----------
    scores : torch.Tensor
        Class scores (logits) of shape ``(N, C, *spatial)``, floating point, finite.
    labels : torch.Tensor
        Integer class indices of shape ``(N, *spatial)`` with values in ``[0, C - 1]``.
    rho : float, torch.Tensor or pair
        Margin-offsets ``ρ ≥ 0`` in any form of the module docstring, typically
        ``optimal_margins(class_counts, tau, v)``. ``ρ = 0`` gives the un-margined loss.
    reduction : {"mean", "sum", "none"}
        ``"none"``: per-pixel loss of shape ``(N, *spatial)``; ``"mean"``: its mean over the
        ``n`` pixels of the batch (eq. 27 with ``φ`` replaced as in eqs. 28–29); ``"sum"``.

    Returns
    -------
    torch.Tensor
        A scalar for ``"mean"``/``"sum"``, else a tensor of shape ``(N, *spatial)``.

    Raises
    ------
    TypeError
        As :func:`margin_loss`.
    ValueError
        As :func:`margin_loss`.

    Notes
    -----
    With ``\varphi_\rho(\lambda) = \log_2(1 + 2^{-\lambda + \rho})`` the per-pixel loss is

    .. math::
        l_i = \log_2\bigl(1 + 2^{-\lambda_{i y_i} + \rho_{y_i 0}}\bigr)
              + \sum_{k \neq y_i} \log_2\bigl(1 + 2^{\lambda_{ik} + \rho_{0k}}\bigr),

    computed as ``softplus(x, β = ln 2) = log(1 + e^{x ln 2})/ln 2`` so it neither overflows
    nor loses its gradient for large ``|λ|`` or ``ρ``. ``\varphi_\rho \ge \phi_\rho``
    pointwise (eqs. 28–29), so this loss upper-bounds :func:`margin_loss`;
    ``\varphi_\rho(\rho) = 1``. It is increasing in every margin and, for ``ρ ≫ |λ|``,
    ``l_i ≈ ρ_{y_i 0} + \sum_{k≠y_i} ρ_{0k} + (−λ_{iy_i} + \sum_{k≠y_i} λ_{ik})``
    (linear in the scores). Gradients are bounded by 1 per term. With ``C = 1`` the loss is 0.

    References
    ----------
    Z. Li, L. Yu, J. Zhang, "Distribution-aware Margin Calibration for Medical Image
    Segmentation": eqs. (27), (28), (29); margin λ of eq. (4).

    Examples
    --------
    >>> scores = torch.randn(2, 3, 8, 8, requires_grad=True)
    >>> labels = torch.randint(0, 3, (2, 8, 8))
    >>> rho = optimal_margins(torch.bincount(labels.flatten(), minlength=3), tau=10.0)
    >>> loss = calibrated_log_loss(scores, labels, rho)
    >>> loss.backward()
    >>> bool(torch.isfinite(scores.grad).all())
    True
    """
    check_reduction(reduction)
    terms, _ = _pixel_class_terms(scores, labels, rho, "calibrated")
    return reduce(terms.sum(1), reduction)


# ----------------------------------------------------------------------------------------------
# IoU and its lower bound
# ----------------------------------------------------------------------------------------------


def iou_lower_bound(scores: torch.Tensor, labels: torch.Tensor, rho: Margins, *,
                    per_image: bool = False) -> torch.Tensor:
    r"""Per-class lower bound of the IoU of the argmax prediction (eqs. 6–7).

    Parameters
    ----------
    scores : torch.Tensor
        Class scores of shape ``(N, C, *spatial)``, floating point, finite.
    labels : torch.Tensor
        Integer class indices of shape ``(N, *spatial)`` with values in ``[0, C - 1]``.
    rho : float, torch.Tensor or pair
        Margin-offsets ``ρ ≥ 0`` in any form of the module docstring.
    per_image : bool
        ``False`` (default): the bound of the IoU over all ``n`` pixels of the batch, treated as
        the data set ``D`` (``IoU_{k,n}``). ``True``: one bound per image (``IoU_{k,m}``).

    Returns
    -------
    torch.Tensor
        Shape ``(C,)``, or ``(N, C)`` with ``per_image=True``, dtype of ``scores``;
        differentiable. Its mean over classes is the mIoU bound of eq. 8.

    Raises
    ------
    TypeError
        As :func:`margin_loss`.
    ValueError
        As :func:`margin_loss`.

    Notes
    -----
    With ``n_k = |Y_k|``, ``L_{k0} = \sum_{i∈Y_k} φ_{ρ_{k0}}(λ_{ik}) \ge FN_k`` and
    ``L_{0k} = \sum_{i∉Y_k} φ_{ρ_{0k}}(−λ_{ik}) \ge FP_k`` (eq. 6, multiplied by ``n``),

    .. math::
        \overline{\mathrm{IoU}}_{k} = \frac{n_k - L_{k0}}{n_k + L_{0k}}
        \le \frac{n_k - FN_k}{n_k + FP_k} = \mathrm{IoU}_k ,

    which is eq. 7 with numerator and denominator multiplied by ``n``. It holds for any
    tie-breaking of the argmax because ``φ_ρ(λ) = 1`` for ``λ ≤ 0``. When the denominator is
    0 (class absent and ``L_{0k} = 0``, hence no false positive) the bound is defined as 1,
    matching the convention ``0/0 = 1`` of eq. 1; the denominator is made safe so the gradient
    there is 0, not NaN. The bound may be negative (a valid but vacuous bound).

    References
    ----------
    Z. Li, L. Yu, J. Zhang, "Distribution-aware Margin Calibration for Medical Image
    Segmentation": eqs. (1), (2), (6), (7), (8).

    Examples
    --------
    >>> scores = torch.randn(2, 3, 8, 8, requires_grad=True)
    >>> labels = torch.randint(0, 3, (2, 8, 8))
    >>> bound = iou_lower_bound(scores, labels, rho=0.5)
    >>> bool((bound <= argmax_iou(scores, labels) + 1e-6).all())
    True
    >>> bound.mean().backward()
    """
    terms, labels = _pixel_class_terms(scores, labels, rho, "margin")
    is_true = labels.unsqueeze(1) == _class_index(scores.shape[1], scores.ndim, scores.device)
    dims = tuple(range(2, scores.ndim)) if per_image else (0, *range(2, scores.ndim))
    zero = torch.zeros((), dtype=terms.dtype, device=terms.device)
    n_k = is_true.sum(dims).to(terms.dtype) if dims else is_true.to(terms.dtype)
    l_k0 = torch.where(is_true, terms, zero)
    l_0k = torch.where(is_true, zero, terms)
    if dims:
        l_k0, l_0k = l_k0.sum(dims), l_0k.sum(dims)
    return _ratio_one_if_empty(n_k - l_k0, n_k + l_0k)


def argmax_iou(scores: torch.Tensor, labels: torch.Tensor, *, per_image: bool = False) -> torch.Tensor:
    r"""Per-class IoU of the argmax prediction ``ŷ_i = argmax_j s_ij`` (eq. 1).

    Parameters
    ----------
    scores : torch.Tensor
        Class scores of shape ``(N, C, *spatial)``, floating point, finite.
    labels : torch.Tensor
        Integer class indices of shape ``(N, *spatial)`` with values in ``[0, C - 1]``.
    per_image : bool
        ``False``: IoU over all pixels of the batch (``IoU_{k,n}``); ``True``: per image.

    Returns
    -------
    torch.Tensor
        Shape ``(C,)`` or ``(N, C)``, dtype of ``scores``, no gradient (the argmax is piecewise
        constant).

    Raises
    ------
    TypeError
        As :func:`margin_loss`.
    ValueError
        As :func:`margin_loss`.

    Notes
    -----
    .. math::
        \mathrm{IoU}_k = \frac{\sum_i \mathbb I(y_i = k \wedge \hat y_i = k)}
                              {\sum_i \mathbb I(y_i = k \vee \hat y_i = k)},

    with ``0/0 = 1`` (class neither present nor predicted) as in the paper. Ties in the argmax
    go to the lowest class index (:func:`torch.argmax`).

    References
    ----------
    Z. Li, L. Yu, J. Zhang, "Distribution-aware Margin Calibration for Medical Image
    Segmentation": eqs. (1)–(2).

    Examples
    --------
    >>> scores = torch.tensor([[[2.0, 0.0]], [[0.0, 1.0]]]).permute(1, 0, 2)  # (1, 2, 2)
    >>> argmax_iou(scores, torch.tensor([[0, 0]]))
    tensor([0.5000, 0.0000])
    """
    labels = _check_scores_labels(scores, labels)
    num_classes = scores.shape[1]
    classes = _class_index(num_classes, scores.ndim, scores.device)
    is_true = labels.unsqueeze(1) == classes
    is_pred = scores.detach().argmax(1, keepdim=True) == classes
    dims = tuple(range(2, scores.ndim)) if per_image else (0, *range(2, scores.ndim))
    inter = (is_true & is_pred).to(scores.dtype)
    union = (is_true | is_pred).to(scores.dtype)
    if dims:
        inter, union = inter.sum(dims), union.sum(dims)
    return _ratio_one_if_empty(inter, union)


def _ratio_one_if_empty(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` with ``0/0 := 1`` through a safe denominator (finite gradient)."""
    nonzero = den != 0
    safe = torch.where(nonzero, den, torch.ones_like(den))
    return torch.where(nonzero, num / safe, torch.ones_like(num))


# ----------------------------------------------------------------------------------------------
# optimal margins and the generalization bound
# ----------------------------------------------------------------------------------------------


def optimal_margins(class_counts, tau: float = 1.0, v: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Distribution-aware margins of Corollary 1.1: ``(rho_0k, rho_k0)``.

    Parameters
    ----------
    class_counts : torch.Tensor, numpy.ndarray or sequence
        ``(C,)`` numbers of training pixels ``n_k`` of each class (integers or, for soft labels,
        non-negative reals). They are pixel *counts*, not frequencies: the formula is not scale
        invariant (``ρ_0k`` scales as ``1/\sqrt{n}``), so pass counts.
    tau : float
        Scale ``τ > 0`` of the margin-offsets (the paper tunes it on validation data, e.g. 1 or 10).
    v : float
        Hyper-parameter ``v > 0`` of ``μ_k`` in Corollary 1.1.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        ``rho_0k`` and ``rho_k0``, float64 tensors of shape ``(C,)`` on the device of
        ``class_counts`` (CPU for arrays and sequences), finite and ``≥ 0``. Pass the pair as
        ``rho`` to the losses.

    Raises
    ------
    TypeError
        If ``class_counts`` is not a tensor/array/sequence of real numbers, or ``tau``/``v`` not
        real numbers.
    ValueError
        If ``class_counts`` is not a non-empty 1-D vector, is negative or not finite, or
        ``tau ≤ 0`` or ``v ≤ 0``.

    Warns
    -----
    RuntimeWarning
        If ``μ_k``'s denominator is not positive for a class that is present but not alone
        (``v`` too small for these counts, see Notes): ``μ_k = 1`` is used there.

    Notes
    -----
    With ``n = \sum_k n_k`` and ``p_k = n_k / n``,

    .. math::
        \rho_{0k} = \tau\,\frac{\sqrt{n - n_k}}{n_k},\qquad
        \mu_k = \frac{p_k \sqrt{n_k}}{v (n - n_k) - p_k \sqrt{n - n_k}},\qquad
        \rho_{k0} = \mu_k\,\rho_{0k}.

    ``ρ_0k`` fixes eq. 23's ratios ``ρ_0i/ρ_0j = n_j\sqrt{n-n_i}/(n_i\sqrt{n-n_j})`` and its
    scale ``τ``: among margins with a fixed sum ``\sum_k ρ_{0k}`` it minimizes the bound ``ε``
    of Theorem 1 (eq. 22) with ``μ_k`` as above (proof: eqs. 24–26) *at fixed* ``F``. The
    corollary treats ``F = C(Θ) + σ(1/η)`` as a constant, although ``σ(1/η) = ρ_max/(4c)·
    \sqrt{2m\log(2c/η)}`` grows with the largest margin; with that dependence counted these
    ratios need not be optimal. Degenerate cases, where the
    paper's formulas divide by zero, are given finite values:

    * **absent class** (``n_k = 0``): ``ρ_0k = ρ_k0 = 0``. The formula gives ``ρ_0k = ∞`` and
      the class has no term in the bound (``ε_k``'s denominator is negative for every finite
      margin), so no margin is calibrated for it and the loss keeps the class's un-margined
      term (``φ_0``, or ``log2(1 + 2^{λ})`` for the calibrated loss), which still pushes its
      scores down. To give rare-but-unseen classes a margin instead, pass smoothed counts,
      e.g. ``class_counts + 1``.
    * **single present class** (``n_k = n``): ``ρ_0k = 0`` by the formula (no other pixels),
      and ``ρ_k0 = 0`` too (``μ_k``'s denominator is ``0``; ``0·μ_k`` is taken as 0). So with
      one class all margins are 0, and ``C = 1`` is accepted.
    * **non-positive denominator** ``v (n − n_k) ≤ p_k \sqrt{n − n_k}`` with ``0 < n_k < n``
      (only for ``v ≤ p_k/\sqrt{n − n_k}``, i.e. tiny ``v`` or tiny counts): ``μ_k`` would be
      negative or infinite; symmetric margins ``μ_k = 1`` (``ρ_k0 = ρ_0k``) are used and a
      ``RuntimeWarning`` names the classes.

    All counts equal gives equal margins for every class. If every count is 0 all margins are 0.

    References
    ----------
    Z. Li, L. Yu, J. Zhang, "Distribution-aware Margin Calibration for Medical Image
    Segmentation": Corollary 1.1 and eq. (23); Theorem 1 eqs. (9), (22); proof eqs. (24)–(26).

    Examples
    --------
    >>> rho_0k, rho_k0 = optimal_margins([900, 100], tau=1.0, v=1.0)
    >>> rho_0k  # [sqrt(100)/900, sqrt(900)/100]
    tensor([0.0111, 0.3000], dtype=torch.float64)
    >>> scores = torch.randn(1, 2, 4, 4, requires_grad=True)
    >>> calibrated_log_loss(scores, torch.randint(0, 2, (1, 4, 4)), (rho_0k, rho_k0)).backward()
    """
    counts = _counts(class_counts)
    tau = check_positive("tau", tau)
    v = check_positive("v", v)
    n = counts.sum()
    rest = (n - counts).clamp_min(0)
    present = counts > 0
    one = torch.ones_like(counts)
    rho_0k = torch.where(present, tau * rest.sqrt() / torch.where(present, counts, one), torch.zeros_like(counts))

    p = counts / n if float(n) > 0 else torch.zeros_like(counts)
    den = v * rest - p * rest.sqrt()
    good = den > 0
    mu = torch.where(good, p * counts.sqrt() / torch.where(good, den, one), one)
    fallback = present & (rest > 0) & ~good
    if bool(fallback.any()):
        warnings.warn(
            f"optimal_margins: mu_k's denominator v*(n - n_k) - p_k*sqrt(n - n_k) is not positive for "
            f"classes {fallback.nonzero().flatten().tolist()} (v={v:g} too small for these counts); "
            f"using mu_k = 1 (rho_k0 = rho_0k) there",
            RuntimeWarning,
            stacklevel=2,
        )
    rho_k0 = mu * rho_0k  # rho_0k = 0 (absent or single class) gives rho_k0 = 0
    return rho_0k, rho_k0


class MarginBound(NamedTuple):
    """Terms of the generalization bound of Theorem 1 (all float64 tensors)."""

    eps: torch.Tensor
    """``ε`` of eq. 22 (scalar): ``mIoU(θ) ≥ \\overline{mIoU}_n(θ) − ε`` w.p. ``≥ 1 − η``."""
    eps_k: torch.Tensor
    """``(C,)`` per-class bound of eq. 20 (``+inf`` where vacuous)."""
    eps_k0: torch.Tensor
    """``(C,)`` ``ε_k0`` of eq. 18 (false-negative side)."""
    eps_0k: torch.Tensor
    """``(C,)`` ``ε_0k`` of eq. 18 (false-positive side)."""
    F: torch.Tensor
    """Scalar ``F = C(Θ) + σ(1/η)``."""
    sigma: torch.Tensor
    """Scalar ``σ(1/η) = ρ_max/(4c)·\\sqrt{2m\\log(2c/η)}`` (0 when ``eta`` is not given)."""


def margin_bound_terms(class_counts, rho: Margins, *, complexity: float,
                       pixels_per_image: int | None = None, eta: float | None = None) -> MarginBound:
    r"""Terms of the generalization bound of Theorem 1 from class counts and margins.

    Parameters
    ----------
    class_counts : torch.Tensor, numpy.ndarray or sequence
        ``(C,)`` pixel counts ``n_k`` of the training set (sum ``n > 0``).
    rho : float, torch.Tensor or pair
        Margins in any form of the module docstring, e.g. the pair of :func:`optimal_margins`.
    complexity : float
        ``C(Θ) > 0``, the complexity measure of the hypothesis class. The paper leaves it
        symbolic (it depends on the network); the caller picks a value. Keyword-only, no default.
    pixels_per_image : int, optional
        ``m``, pixels per image (the pixels of one image are ``m``-dependent). Give it together
        with ``eta`` to include ``σ(1/η)`` in ``F``.
    eta : float, optional
        Confidence ``η ∈ (0, 1)``; the bound holds with probability ``≥ 1 − η``. If both
        ``pixels_per_image`` and ``eta`` are omitted, ``σ = 0`` and ``F = C(Θ)`` — the constant
        that Corollary 1.1 holds fixed.

    Returns
    -------
    MarginBound
        Named tuple ``(eps, eps_k, eps_k0, eps_0k, F, sigma)`` of float64 tensors.

    Raises
    ------
    TypeError
        For counts/margins of unsupported types, or non-numeric ``complexity``/``eta``.
    ValueError
        If counts are negative, not finite, not 1-D or sum to 0; margins negative or with a
        ``C`` different from ``class_counts``; ``complexity ≤ 0``; ``eta ∉ (0, 1)``;
        ``pixels_per_image`` not a positive integer; only one of ``pixels_per_image``/``eta``.

    Notes
    -----
    With ``c = C``, ``p_k = n_k/n`` and ``F = C(Θ) + σ(1/η)``,

    .. math::
        \epsilon_{k0} = \frac{\sqrt{n_k}}{n}\frac{4cF}{\rho_{k0}},\quad
        \epsilon_{0k} = \frac{\sqrt{n-n_k}}{n}\frac{4cF}{\rho_{0k}},\quad
        \epsilon_k = \frac{\epsilon_{0k} + \epsilon_{k0}}{p_k - \epsilon_{0k}}
                   = \frac{\sqrt{n-n_k} + \sqrt{n_k}/\mu_k}{\frac{n_k}{4cF}\rho_{0k} - \sqrt{n-n_k}},\quad
        \epsilon = \frac1c\sum_k \epsilon_k ,

    (eqs. 18, 20, 22; the middle form of ``ε_k`` is eq. 20 divided through by
    ``4cF/(nρ_{0k})``, which stays finite when ``μ_k = ρ_{k0}/ρ_{0k}`` is 0 or undefined).
    ``ε_k0 = 0`` when ``n_k = 0`` and ``ε_0k = 0`` when ``n_k = n``; a zero margin on a
    non-empty side gives ``+∞``. Where ``p_k ≤ ε_0k`` (eq. 20's denominator ``≤ 0``, which
    includes every absent class) the bound is vacuous and ``ε_k = +∞``, and then ``ε = +∞``.
    Left symbolic: ``C(Θ)`` (a user-supplied number) and the Rademacher scaling
    ``\mathfrak R_{n_k}(Θ) ∝ \sqrt{C(Θ)/n_k}`` that eq. 16 assumes. With that scaling eq. 15
    gives ``\sqrt{C(Θ)} + σ`` where eq. 16 prints ``C(Θ) + σ``
    (:func:`softseg.margin_theory.eq16_from_eq15`); ``complexity`` is the first summand of
    ``F`` whichever form one takes. ``σ`` depends on the margins through ``ρ_max``, so at the
    usual sizes it dominates ``F``: a class's term can be finite only if
    ``n_k^2 > 2m\log(2c/η)(n - n_k)`` (:func:`softseg.margin_theory.finite_bound_possible`).

    References
    ----------
    Z. Li, L. Yu, J. Zhang, "Distribution-aware Margin Calibration for Medical Image
    Segmentation": Theorem 1, eqs. (9), (16)–(18), (20), (22).

    Examples
    --------
    >>> counts = torch.tensor([90_000, 10_000])
    >>> b = margin_bound_terms(counts, optimal_margins(counts, tau=2000.0), complexity=1.0)
    >>> b.eps_k.shape, bool(torch.isfinite(b.eps))
    (torch.Size([2]), True)
    """
    counts = _counts(class_counts)
    num_classes = counts.shape[0]
    n = counts.sum()
    if float(n) <= 0:
        raise ValueError("class_counts: expected at least one pixel (sum > 0), got all zeros")
    r0k, rk0 = _expand_margins(_canonical_margins(rho), num_classes)
    r0k, rk0 = r0k.to(counts.device), rk0.to(counts.device)
    complexity = check_positive("complexity", complexity)
    if (pixels_per_image is None) != (eta is None):
        raise ValueError(
            f"pixels_per_image and eta: expected both or neither, got pixels_per_image={pixels_per_image!r}, "
            f"eta={eta!r}"
        )
    c = float(num_classes)
    if eta is None:
        sigma = torch.zeros((), dtype=torch.float64, device=counts.device)
    else:
        if isinstance(pixels_per_image, bool) or not isinstance(pixels_per_image, (int, np.integer)) \
                or pixels_per_image < 1:
            raise ValueError(f"pixels_per_image: expected a positive integer, got {pixels_per_image!r}")
        eta = check_positive("eta", eta)
        if eta >= 1:
            raise ValueError(f"eta: expected a probability in (0, 1), got {eta!r}")
        rho_max = torch.maximum(r0k.max(), rk0.max())
        sigma = rho_max / (4 * c) * math.sqrt(2 * int(pixels_per_image) * math.log(2 * c / eta))
    big_f = complexity + sigma
    rest = (n - counts).clamp_min(0)
    inf = torch.full_like(counts, math.inf)
    zero = torch.zeros_like(counts)

    def side(count: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
        positive = margin > 0
        value = count.sqrt() / n * 4 * c * big_f / torch.where(positive, margin, torch.ones_like(margin))
        return torch.where(count > 0, torch.where(positive, value, inf), zero)

    eps_k0 = side(counts, rk0)
    eps_0k = side(rest, r0k)
    p = counts / n
    ok = (p > eps_0k) & torch.isfinite(eps_k0)
    eps_k = torch.where(ok, (eps_0k + eps_k0) / torch.where(ok, p - eps_0k, torch.ones_like(p)), inf)
    return MarginBound(eps=eps_k.mean(), eps_k=eps_k, eps_k0=eps_k0, eps_0k=eps_0k, F=big_f, sigma=sigma)


# ----------------------------------------------------------------------------------------------
# modules
# ----------------------------------------------------------------------------------------------


class _MarginModule(torch.nn.Module):
    _fn = None

    def __init__(self, rho: Margins, *, reduction: Reduction = "mean",
                 activation: Activation | None = None) -> None:
        super().__init__()
        rho_0k, rho_k0 = _canonical_margins(rho)
        self.reduction = check_reduction(reduction)
        self.activation = check_option("activation", activation, _ACTIVATIONS)
        self.register_buffer("rho_0k", rho_0k.clone())
        self.register_buffer("rho_k0", rho_k0.clone())

    @classmethod
    def from_counts(cls, class_counts, tau: float = 1.0, v: float = 1.0, *, reduction: Reduction = "mean",
                    activation: Activation | None = None):
        """Build the loss with the margins of :func:`optimal_margins` ``(class_counts, tau, v)``."""
        return cls(optimal_margins(class_counts, tau, v), reduction=reduction, activation=activation)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_float_tensor("scores", x)
        return type(self)._fn(apply_activation(x, self.activation), y, (self.rho_0k, self.rho_k0),
                              self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, activation={self.activation!r}"


class MarginLoss(_MarginModule):
    r"""Module form of :func:`margin_loss` (ρ-margin loss, eqs. 5 and 27).

    Parameters
    ----------
    rho : float, torch.Tensor or pair
        Margins in any form of the module docstring; stored as the buffers ``rho_0k`` and
        ``rho_k0`` (float64, scalar or ``(C,)``) so ``.to(device)`` and ``state_dict`` carry them.
    reduction : {"mean", "sum", "none"}
        As :func:`margin_loss`.
    activation : {None, "sigmoid", "softmax", "tanh"}
        Applied to the scores ``x`` (over the class axis for softmax) before the loss.

    Notes
    -----
    ``forward(x, y)`` with scores ``x`` of shape ``(N, C, *spatial)`` and integer labels ``y`` of
    shape ``(N, *spatial)`` returns ``margin_loss(act(x), y, (rho_0k, rho_k0), reduction)``:

    .. math:: L(\theta) = \frac1n \sum_{k} \Bigl(\sum_{i \in Y_k} \phi_{\rho_{k0}}(\lambda_{ik})
              + \sum_{i \notin Y_k} \phi_{\rho_{0k}}(-\lambda_{ik})\Bigr).

    ``MarginLoss.from_counts(class_counts, tau, v)`` uses :func:`optimal_margins`.

    References
    ----------
    Z. Li, L. Yu, J. Zhang, "Distribution-aware Margin Calibration for Medical Image
    Segmentation": eqs. (5), (27).

    Examples
    --------
    >>> loss_fn = MarginLoss.from_counts([600, 300, 100], tau=10.0)
    >>> scores = torch.randn(2, 3, 8, 8, requires_grad=True)
    >>> loss_fn(scores, torch.randint(0, 3, (2, 8, 8))).backward()
    """

    _fn = staticmethod(margin_loss)


class CalibratedLogLoss(_MarginModule):
    r"""Module form of :func:`calibrated_log_loss` (eqs. 27–29), the paper's training loss.

    Parameters
    ----------
    rho : float, torch.Tensor or pair
        Margins in any form of the module docstring; stored as buffers ``rho_0k``, ``rho_k0``.
    reduction : {"mean", "sum", "none"}
        As :func:`calibrated_log_loss`.
    activation : {None, "sigmoid", "softmax", "tanh"}
        Applied to the scores ``x`` before the loss (the paper uses raw scores: ``None``).

    Notes
    -----
    ``forward(x, y)`` returns ``calibrated_log_loss(act(x), y, (rho_0k, rho_k0), reduction)``:

    .. math:: L(\theta) = \frac1n \sum_{k} \Bigl(\sum_{i \in Y_k} \log_2(1 + 2^{-\lambda_{ik} + \rho_{k0}})
              + \sum_{i \notin Y_k} \log_2(1 + 2^{\lambda_{ik} + \rho_{0k}})\Bigr).

    References
    ----------
    Z. Li, L. Yu, J. Zhang, "Distribution-aware Margin Calibration for Medical Image
    Segmentation": eqs. (27)–(29), Corollary 1.1.

    Examples
    --------
    >>> loss_fn = CalibratedLogLoss.from_counts(torch.tensor([600, 300, 100]), tau=10.0, v=1.0)
    >>> scores = torch.randn(2, 3, 8, 8, requires_grad=True)
    >>> loss_fn(scores, torch.randint(0, 3, (2, 8, 8))).backward()
    """

    _fn = staticmethod(calibrated_log_loss)
