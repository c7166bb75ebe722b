"""Evaluation metrics: Dice, IoU, sensitivity, specificity, balanced accuracy, soft Dice, BDice, ECE.

The metrics the Dice-semimetric paper (Wang, Popordanoska, Bertels, Lemmens, Blaschko, *Dice
Semimetric Losses: Optimizing the Dice Score with Soft Labels*) reports in Sect. 3.3: the Dice
score and ECE computed against the majority vote, and on QUBIQ the binarized Dice (BDice)
averaged over thresholds 0.1, ..., 0.9; plus the usual companions of Dice.

Conventions shared by every function here:

- ``x`` (prediction) and ``y`` (target) are numpy arrays or torch tensors of one shape, either
  a single map (``ndim <= 2``: ``(L,)`` or ``(H, W)``) or a batch ``(N, C, *spatial)``
  (``ndim >= 3``; a single 3-D volume must be passed as ``(1, 1, D, H, W)``). Values are
  computed per sample and class over the spatial axes, in float64.
- ``reduction="mean"`` (default) and ``"sum"`` return a Python ``float`` (mean / sum over
  samples and classes); ``"none"`` returns the per-(sample, class) values, shape ``(N, C)``
  (shape ``()`` for a single map), as a numpy array when both inputs are numpy, else as a
  float64 tensor on the input's device.
- Ratios that are 0/0 (both masks empty, no positives, no negatives) count as 1, perfect
  agreement: nothing was there to find and nothing was found. No metric ever returns NaN, so
  absent classes neither poison a mean nor vanish from it silently.
- Inputs are validated up front: equal shapes, at least one pixel, no NaN, values in [0, 1],
  and binary masks where a metric needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from ._checks import check_finite, check_option, check_range, check_reduction, check_same_shape

__all__ = [
    "BDICE_THRESHOLDS",
    "dice",
    "iou",
    "sensitivity",
    "specificity",
    "balanced_accuracy",
    "soft_dice",
    "bdice",
    "ece",
]

Reduction = Literal["mean", "sum", "none"]

#: The probability levels of BDice (Dice-semimetric paper, Sect. 3.3; the QUBIQ challenge).
BDICE_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


# --------------------------------------------------------------------------- helpers


def _as_tensor(name: str, value: Any) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        if value.dtype == object or not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
            raise TypeError(f"{name}: expected a numeric or boolean array, got dtype {value.dtype}")
        # torch.from_numpy refuses negative strides (e.g. a[::-1]); copy those
        value = torch.from_numpy(value.copy() if any(st < 0 for st in value.strides) else value)
    elif not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a numpy.ndarray or torch.Tensor, got {type(value).__name__}")
    if value.is_complex():
        raise TypeError(f"{name}: expected a real-valued array, got dtype {value.dtype}")
    return value.detach()


def _prepare(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor, bool, bool]:
    """Check ``x`` and ``y``; return them as ``(N, C, P)`` tensors, a single-map flag and
    whether the result of ``reduction="none"`` is to be a numpy array."""
    numpy_out = isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
    xt, yt = _as_tensor("x", x), _as_tensor("y", y)
    check_same_shape("x", xt, "y", yt)
    if xt.ndim == 0:
        raise ValueError("x: expected shape (L,), (H, W) or (N, C, *spatial), got a 0-d array ()")
    if xt.numel() == 0:
        raise ValueError(f"x: expected at least one pixel per sample and class, got shape {tuple(xt.shape)}")
    if yt.device != xt.device:
        raise ValueError(f"x and y: expected the same device, got {xt.device} and {yt.device}")
    single = xt.ndim <= 2
    shape = (1, 1, -1) if single else (xt.shape[0], xt.shape[1], -1)
    return xt.reshape(shape), yt.reshape(shape), single, numpy_out


def _finish(values: torch.Tensor, reduction: str, single: bool, numpy_out: bool) -> Any:
    if reduction == "mean":
        return float(values.mean())
    if reduction == "sum":
        return float(values.sum())
    out = values.reshape(()) if single else values
    return out.cpu().numpy() if numpy_out else out


def _check_unit(name: str, t: torch.Tensor) -> None:
    if t.dtype != torch.bool:
        check_range(name, t, 0.0, 1.0)


def _check_binary(name: str, t: torch.Tensor) -> torch.Tensor:
    """Return ``t`` as a bool tensor if it only holds 0 and 1, else raise ``ValueError``."""
    if t.dtype == torch.bool:
        return t
    if not bool(((t == 0) | (t == 1)).all()):
        check_finite(name, t)
        raise ValueError(
            f"{name}: expected a binary mask (values 0 and 1 only), got values in "
            f"[{float(t.min()):g}, {float(t.max()):g}] that are not all 0 or 1"
        )
    return t != 0


def _check_threshold(name: str, value: Any, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number in [0, 1]{' or None' if allow_none else ''}, "
                        f"got {type(value).__name__}")
    if not 0.0 <= float(value) <= 1.0:  # NaN fails too
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return float(value)


def _hard_masks(x: Any, y: Any, threshold: float | None) -> tuple[torch.Tensor, torch.Tensor, bool, bool]:
    xt, yt, single, numpy_out = _prepare(x, y)
    threshold = _check_threshold("threshold", threshold, allow_none=True)
    if threshold is None:
        xb = _check_binary("x", xt)
    else:
        _check_unit("x", xt)
        xb = xt if xt.dtype == torch.bool else xt >= threshold
    return xb, _check_binary("y", yt), single, numpy_out


def _confusion(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """True/false positives/negatives per (sample, class), float64 counts of shape ``(N, C)``."""
    tp = (xb & yb).sum(-1)
    n_x, n_y = xb.sum(-1), yb.sum(-1)
    fp, fn = n_x - tp, n_y - tp
    tn = xb.shape[-1] - tp - fp - fn
    return tuple(v.to(torch.float64) for v in (tp, fp, fn, tn))


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den with 0/0 := 1 (perfect agreement); den is a non-negative count or mass."""
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 1.0)


# --------------------------------------------------------------------------- overlap metrics

_HARD_PARAMS = """    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor, shape ``(L,)``, ``(H, W)`` or ``(N, C, *spatial)``
        Prediction: a binary mask, or probabilities in [0, 1] that are thresholded at
        ``threshold`` (``x >= threshold`` is foreground).
    y : numpy.ndarray or torch.Tensor, shape of ``x``
        Target: a binary mask (bool, or numbers equal to 0 or 1). Soft targets must be binarized
        first, e.g. with a majority vote ``y >= 0.5`` as in the Dice-semimetric paper, Sect. 3.4.
    threshold : float or None, optional
        Level at which ``x`` is binarized (default 0.5); ``None`` requires ``x`` to be binary.
    reduction : {"mean", "sum", "none"}, optional
        ``"mean"``/``"sum"`` over samples and classes (a float), or ``"none"``: one value per
        sample and class, shape ``(N, C)`` (``()`` for a single map).

    Returns
    -------
    float or numpy.ndarray or torch.Tensor
        See ``reduction``; values in [0, 1].

    Raises
    ------
    TypeError
        If an input is not an array/tensor or ``threshold`` is not a number.
    ValueError
        If shapes differ, an input is empty, holds NaN or values outside [0, 1], ``y`` (or ``x``
        with ``threshold=None``) is not binary, or an option is invalid.
"""


def _docstring(template: str) -> Any:
    def wrap(func: Any) -> Any:
        func.__doc__ = func.__doc__.replace("{params}", template.rstrip("\n"))
        return func
    return wrap


@_docstring(_HARD_PARAMS)
def dice(x: Any, y: Any, *, threshold: float | None = 0.5, reduction: Reduction = "mean") -> Any:
    """Dice score (Sørensen-Dice coefficient, F1) of binary masks.

{params}

    Notes
    -----
    .. math::

        \\mathrm{Dice} = \\frac{2|x\\cap y|}{|x| + |y|} = \\frac{2\\,TP}{2\\,TP + FP + FN},
        \\qquad \\mathrm{Dice}(\\emptyset, \\emptyset) := 1 .

    Two empty masks (e.g. a class absent from both prediction and target) score 1; an empty
    target with a non-empty prediction, or the reverse, scores 0.

    References
    ----------
    Wang et al., *Dice Semimetric Losses*, Sect. 2 (:math:`\\mathrm{Dice}^c = 2|v^c|/(|x^c|+|y^c|)`)
    and Sect. 3.3 (evaluation).

    Examples
    --------
    >>> import numpy as np
    >>> dice(np.array([0.9, 0.8, 0.2, 0.0]), np.array([1, 0, 1, 0]))  # TP=1, FP=1, FN=1
    0.5
    """
    xb, yb, single, numpy_out = _hard_masks(x, y, threshold)
    check_reduction(reduction)
    tp, fp, fn, _ = _confusion(xb, yb)
    return _finish(_ratio(2 * tp, 2 * tp + fp + fn), reduction, single, numpy_out)


@_docstring(_HARD_PARAMS)
def iou(x: Any, y: Any, *, threshold: float | None = 0.5, reduction: Reduction = "mean") -> Any:
    """Intersection over union (Jaccard index) of binary masks.

{params}

    Notes
    -----
    .. math::

        \\mathrm{IoU} = \\frac{|x\\cap y|}{|x\\cup y|} = \\frac{TP}{TP + FP + FN},
        \\qquad \\mathrm{IoU}(\\emptyset, \\emptyset) := 1,
        \\qquad \\mathrm{Dice} = \\frac{2\\,\\mathrm{IoU}}{1 + \\mathrm{IoU}} .

    References
    ----------
    Wang et al., *Dice Semimetric Losses*, Sect. 2 (:math:`\\mathrm{IoU}^c = |v^c|/|u^c|`).

    Examples
    --------
    >>> import numpy as np
    >>> round(iou(np.array([0.9, 0.8, 0.2, 0.0]), np.array([1, 0, 1, 0])), 4)  # 1 / 3
    0.3333
    """
    xb, yb, single, numpy_out = _hard_masks(x, y, threshold)
    check_reduction(reduction)
    tp, fp, fn, _ = _confusion(xb, yb)
    return _finish(_ratio(tp, tp + fp + fn), reduction, single, numpy_out)


@_docstring(_HARD_PARAMS)
def sensitivity(x: Any, y: Any, *, threshold: float | None = 0.5, reduction: Reduction = "mean") -> Any:
    """Sensitivity (recall, true positive rate) of binary masks.

{params}

    Notes
    -----
    .. math::

        \\mathrm{Sens} = \\frac{TP}{TP + FN}, \\qquad := 1 \\text{ when the target is empty}.

    References
    ----------
    Standard definition; see Maier-Hein et al., *Metrics reloaded* (2023), ref. [27] of Wang et
    al., *Dice Semimetric Losses*.

    Examples
    --------
    >>> import numpy as np
    >>> sensitivity(np.array([0.9, 0.8, 0.2, 0.0]), np.array([1, 0, 1, 0]))  # 1 / (1 + 1)
    0.5
    """
    xb, yb, single, numpy_out = _hard_masks(x, y, threshold)
    check_reduction(reduction)
    tp, _, fn, _ = _confusion(xb, yb)
    return _finish(_ratio(tp, tp + fn), reduction, single, numpy_out)


@_docstring(_HARD_PARAMS)
def specificity(x: Any, y: Any, *, threshold: float | None = 0.5, reduction: Reduction = "mean") -> Any:
    """Specificity (true negative rate) of binary masks.

{params}

    Notes
    -----
    .. math::

        \\mathrm{Spec} = \\frac{TN}{TN + FP}, \\qquad := 1 \\text{ when the target has no background}.

    References
    ----------
    Standard definition; see Maier-Hein et al., *Metrics reloaded* (2023), ref. [27] of Wang et
    al., *Dice Semimetric Losses*.

    Examples
    --------
    >>> import numpy as np
    >>> specificity(np.array([0.9, 0.8, 0.2, 0.0]), np.array([1, 0, 1, 0]))  # 1 / (1 + 1)
    0.5
    """
    xb, yb, single, numpy_out = _hard_masks(x, y, threshold)
    check_reduction(reduction)
    _, fp, _, tn = _confusion(xb, yb)
    return _finish(_ratio(tn, tn + fp), reduction, single, numpy_out)


@_docstring(_HARD_PARAMS)
def balanced_accuracy(x: Any, y: Any, *, threshold: float | None = 0.5, reduction: Reduction = "mean") -> Any:
    """Balanced accuracy, the mean of sensitivity and specificity, of binary masks.

{params}

    Notes
    -----
    .. math::

        \\mathrm{BA} = \\tfrac12\\left(\\frac{TP}{TP + FN} + \\frac{TN}{TN + FP}\\right),

    each ratio taken as 1 when its denominator is 0 (see :func:`sensitivity`,
    :func:`specificity`).

    References
    ----------
    Standard definition; see Maier-Hein et al., *Metrics reloaded* (2023), ref. [27] of Wang et
    al., *Dice Semimetric Losses*.

    Examples
    --------
    >>> import numpy as np
    >>> balanced_accuracy(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))  # (1 + 2/3) / 2
    0.8333333333333333
    """
    xb, yb, single, numpy_out = _hard_masks(x, y, threshold)
    check_reduction(reduction)
    tp, fp, fn, tn = _confusion(xb, yb)
    return _finish((_ratio(tp, tp + fn) + _ratio(tn, tn + fp)) / 2, reduction, single, numpy_out)


# --------------------------------------------------------------------------- soft metrics


def _soft_inputs(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor, bool, bool]:
    xt, yt, single, numpy_out = _prepare(x, y)
    _check_unit("x", xt)
    _check_unit("y", yt)
    return xt.to(torch.float64), yt.to(torch.float64), single, numpy_out


def soft_dice(x: Any, y: Any, *, reduction: Reduction = "mean") -> Any:
    """Soft Dice score of a soft prediction and a soft (or hard) target, without thresholding.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor, shape ``(L,)``, ``(H, W)`` or ``(N, C, *spatial)``
        Prediction, values in [0, 1].
    y : numpy.ndarray or torch.Tensor, shape of ``x``
        Target, values in [0, 1].
    reduction : {"mean", "sum", "none"}, optional
        As for :func:`dice`.

    Returns
    -------
    float or numpy.ndarray or torch.Tensor
        Values in [0, 1]; 1 - ``soft_dice`` is the soft Dice loss.

    Raises
    ------
    TypeError
        If an input is not an array/tensor.
    ValueError
        If shapes differ, an input is empty, holds NaN or values outside [0, 1], or
        ``reduction`` is invalid.

    Notes
    -----
    .. math::

        \\mathrm{sDice}(x, y) = \\frac{2\\langle x, y\\rangle}{\\|x\\|_1 + \\|y\\|_1},
        \\qquad \\mathrm{sDice}(0, 0) := 1 .

    On binary inputs it equals :func:`dice`. On soft targets it is *not* maximized at
    ``x = y`` (for ``y = 0.5`` everywhere, ``x = 1`` scores higher than ``x = y``), which is what
    motivates the Dice semimetric losses. The soft-Dice paper's :math:`\\mathrm D'_m(c)` is the
    same formula with the opposite 0/0 convention (see :func:`softseg.theory.marginal_dice`).

    References
    ----------
    Wang et al., *Dice Semimetric Losses*, eq. (1) (:math:`\\overline\\Delta_{SDL} = 1 - \\mathrm{sDice}`);
    Nordström et al., *Noisy Image Segmentation With Soft-Dice*, Definition 2, eq. (2).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.full(4, 0.5)
    >>> soft_dice(y, y), soft_dice(np.ones(4), y)  # 2*1/(2+2) and 2*2/(4+2)
    (0.5, 0.6666666666666666)
    """
    xt, yt, single, numpy_out = _soft_inputs(x, y)
    check_reduction(reduction)
    values = _ratio(2 * (xt * yt).sum(-1), xt.sum(-1) + yt.sum(-1))
    return _finish(values, reduction, single, numpy_out)


def bdice(x: Any, y: Any, *, thresholds: Sequence[float] = BDICE_THRESHOLDS,
          reduction: Reduction = "mean") -> Any:
    """Binarized Dice (BDice): Dice averaged over thresholds applied to prediction and target.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor, shape ``(L,)``, ``(H, W)`` or ``(N, C, *spatial)``
        Soft prediction, values in [0, 1].
    y : numpy.ndarray or torch.Tensor, shape of ``x``
        Soft target (e.g. the mean of the raters' masks), values in [0, 1].
    thresholds : sequence of float, optional
        Probability levels, each in [0, 1]; default 0.1, 0.2, ..., 0.9.
    reduction : {"mean", "sum", "none"}, optional
        As for :func:`dice`; the average over thresholds is taken per sample and class first.

    Returns
    -------
    float or numpy.ndarray or torch.Tensor
        Values in [0, 1].

    Raises
    ------
    TypeError
        If an input is not an array/tensor or ``thresholds`` holds a non-number.
    ValueError
        If shapes differ, an input is empty, holds NaN or values outside [0, 1], ``thresholds``
        is empty or holds a value outside [0, 1], or ``reduction`` is invalid.

    Notes
    -----
    .. math::

        \\mathrm{BDice}(x, y) = \\frac1{|T|}\\sum_{\\tau\\in T}
        \\mathrm{Dice}\\big(\\mathbb 1\\{x > \\tau\\},\\ \\mathbb 1\\{y > \\tau\\}\\big),
        \\qquad T = \\{0.1, 0.2, \\dots, 0.9\\}.

    The paper says both maps are "thresholded at different probability levels" without saying
    whether a value equal to a level is kept; we binarize with a strict ``>`` as the common
    QUBIQ evaluation scripts do (it matters for rater averages such as 3/6 = 0.5). A level at
    which both binarized maps are empty contributes 1 (see :func:`dice`).

    References
    ----------
    Wang et al., *Dice Semimetric Losses*, Sect. 3.3 (BDice, the official QUBIQ metric) and
    Tables 2-3; Menze et al., QUBIQ challenge (MICCAI 2020), ref. [29] there.

    Examples
    --------
    >>> import numpy as np
    >>> # y > tau keeps pixel 0 for tau < 0.6 and nothing above; x > tau keeps pixel 0 up to 0.8
    >>> bdice(np.array([0.85, 0.0]), np.array([0.6, 0.0]))  # (5 * 1 + 3 * 0 + 1 * 1) / 9
    0.6666666666666666
    """
    xt, yt, single, numpy_out = _prepare(x, y)
    check_reduction(reduction)
    levels = _check_levels(thresholds)
    _check_unit("x", xt)
    _check_unit("y", yt)
    total = torch.zeros(xt.shape[:2], dtype=torch.float64, device=xt.device)
    for tau in levels:  # a few levels; each pass is vectorized over samples, classes and pixels
        tp, fp, fn, _ = _confusion(xt > tau, yt > tau)
        total += _ratio(2 * tp, 2 * tp + fp + fn)
    return _finish(total / len(levels), reduction, single, numpy_out)


def _check_levels(thresholds: Any) -> tuple[float, ...]:
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Sequence | np.ndarray | torch.Tensor):
        raise TypeError(f"thresholds: expected a sequence of numbers in [0, 1], got {type(thresholds).__name__}")
    if isinstance(thresholds, np.ndarray | torch.Tensor):
        if thresholds.ndim != 1:
            raise ValueError(f"thresholds: expected a 1-d sequence of levels, got shape {tuple(thresholds.shape)}")
        thresholds = thresholds.tolist()
    levels = tuple(thresholds)
    if not levels:
        raise ValueError("thresholds: expected at least one level, got an empty sequence")
    return tuple(_check_threshold("thresholds", t) for t in levels)


def ece(x: Any, y: Any, *, n_bins: int = 10, mode: Literal["binary", "top-label"] = "binary",
        reduction: Reduction = "mean") -> Any:
    """Expected calibration error (ECE) with equal-width confidence bins, per image.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        Predicted probabilities in [0, 1]. ``mode="binary"``: foreground probabilities of shape
        ``(L,)``, ``(H, W)`` or ``(N, C, *spatial)``, each channel its own binary problem.
        ``mode="top-label"``: class probabilities of shape ``(N, C, *spatial)``, ``C >= 2``,
        summing to 1 over axis 1 (e.g. a softmax).
    y : numpy.ndarray or torch.Tensor, shape of ``x``
        Target in [0, 1]: a hard mask (one-hot for ``"top-label"``), as the paper uses, or a
        soft label (see Notes).
    n_bins : int, optional
        Number of equal-width bins on [0, 1] (default 10, see Notes).
    mode : {"binary", "top-label"}, optional
        Which probability is calibrated (see ``x``).
    reduction : {"mean", "sum", "none"}, optional
        ``"none"`` gives one ECE per sample and class, shape ``(N, C)`` (``()`` for a single map)
        in ``"binary"`` mode, and one per sample, shape ``(N,)``, in ``"top-label"`` mode;
        ``"mean"`` averages these per-image values.

    Returns
    -------
    float or numpy.ndarray or torch.Tensor
        ECE as a fraction in [0, 1] (the paper's tables show percent).

    Raises
    ------
    TypeError
        If an input is not an array/tensor or ``n_bins`` is not an int.
    ValueError
        If shapes differ, an input is empty, holds NaN or values outside [0, 1], ``n_bins < 1``,
        ``"top-label"`` probabilities do not sum to 1 or lack a class axis, or an option is
        invalid.

    Notes
    -----
    Guo et al.'s ECE over the ``n`` pixels of one image, with bins
    :math:`B_b = \\{i : \\mathrm{conf}_i \\in ((b-1)/M, b/M]\\}` (confidence 0 goes to the first):

    .. math::

        \\mathrm{ECE} = \\sum_{b=1}^{M} \\frac{|B_b|}{n}\\,
        \\big|\\mathrm{acc}(B_b) - \\mathrm{conf}(B_b)\\big|
        = \\frac1n \\sum_{b=1}^{M} \\Big|\\sum_{i\\in B_b} (a_i - \\mathrm{conf}_i)\\Big| .

    In ``"binary"`` mode :math:`\\mathrm{conf}_i = \\max(x_i, 1 - x_i)`, the predicted label is
    :math:`x_i \\ge 1/2` and :math:`a_i = y_i` if it is foreground, else :math:`1 - y_i`. In
    ``"top-label"`` mode :math:`\\mathrm{conf}_i = \\max_c x_{ci}` and :math:`a_i = y_{\\hat c i}`
    for :math:`\\hat c = \\arg\\max_c x_{ci}`. For a hard target :math:`a_i` is 1 when the
    prediction is right and 0 otherwise: Guo et al.'s accuracy. The Dice-semimetric paper computes
    ECE against the **hard majority vote**, also when training on soft labels (Sect. 3.4: "the Dice
    score and ECE are computed with respect to the majority votes"); pass ``y >= 0.5`` to match
    it. With a soft ``y``, :math:`a_i` is the probability that the label agrees with the
    prediction, a natural extension that the paper does not use.

    The paper does not give the number of bins; Guo et al. use 15 and the authors' public code
    defaults to 10, which we follow. The per-image average (``reduction="mean"``) matches the
    per-image ECE of that code; pooling all pixels of a data set is a different estimator.

    References
    ----------
    Wang et al., *Dice Semimetric Losses*, Sect. 3.3-3.4 and Tables 2 and 4; Guo, Pleiss, Sun,
    Weinberger, *On Calibration of Modern Neural Networks*, ICML 2017 (ref. [14] there), Sect. 2.

    Examples
    --------
    >>> import numpy as np
    >>> # confidences 0.95, 0.95 (bin (0.9, 1]) and 0.75, 0.75 (bin (0.7, 0.8]);
    >>> # accuracy 1/2 in the first bin, 1 in the second
    >>> x, y = np.array([0.95, 0.05, 0.75, 0.25]), np.array([1, 1, 1, 0])
    >>> round(ece(x, y), 4)  # (2/4) * |0.5 - 0.95| + (2/4) * |1 - 0.75|
    0.35
    """
    check_reduction(reduction)
    check_option("mode", mode, ("binary", "top-label"))
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)):
        raise TypeError(f"n_bins: expected an int, got {type(n_bins).__name__}")
    if n_bins < 1:
        raise ValueError(f"n_bins: expected an int >= 1, got {n_bins}")
    if mode == "top-label":
        xt, yt = _as_tensor("x", x), _as_tensor("y", y)
        check_same_shape("x", xt, "y", yt)
        if xt.ndim < 3 or xt.shape[1] < 2:
            raise ValueError(
                f"x: expected shape (N, C, *spatial) with C >= 2 classes for mode='top-label', got {tuple(xt.shape)}"
            )
        if xt.numel() == 0:
            raise ValueError(f"x: expected at least one pixel per sample, got shape {tuple(xt.shape)}")
        _check_unit("x", xt)
        _check_unit("y", yt)
        xt, yt = xt.to(torch.float64), yt.to(torch.float64)
        err = float((xt.sum(1) - 1).abs().max())
        if err > 1e-3:
            raise ValueError(
                f"x: expected class probabilities summing to 1 over axis 1 for mode='top-label', "
                f"got sums off by up to {err:.3g}"
            )
        conf, pred = xt.max(1)
        agree = yt.gather(1, pred.unsqueeze(1)).squeeze(1)
        conf, agree = conf.reshape(conf.shape[0], 1, -1), agree.reshape(conf.shape[0], 1, -1)
        single, numpy_out = False, isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
    else:
        xt, yt, single, numpy_out = _soft_inputs(x, y)
        fg = xt >= 0.5
        conf = torch.where(fg, xt, 1 - xt)
        agree = torch.where(fg, yt, 1 - yt)
    # Bin b (0-based) holds confidences in (b/M, (b+1)/M]; confidence 0 joins bin 0.
    bins = (torch.ceil(conf * n_bins).long() - 1).clamp_(0, n_bins - 1)
    gap = torch.zeros((*conf.shape[:2], n_bins), dtype=torch.float64, device=conf.device)
    gap.scatter_add_(2, bins, agree - conf)
    values = gap.abs().sum(-1) / conf.shape[-1]
    if mode == "top-label":
        values = values[:, 0]
    return _finish(values, reduction, single, numpy_out)
