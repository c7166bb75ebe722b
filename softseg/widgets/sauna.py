r"""Loss surfaces of the SAUNA chapter: the paper's Figure 4, live, and its extension to two pixels.

The paper's Fig. 4a–b are surfaces over (prediction, target) of one pixel and Fig. 4c a cut of
them at a fixed target; the curves here are that cut for any target. The two-pixel contour maps
(over both predictions of an image, targets fixed) are this book's extension, not a figure of
the paper. Three layers (see :mod:`softseg.widgets`):

* :func:`loss_curves` and :func:`loss_surfaces` — pure functions: Focal-L1 (eq. 8), Stable
  Focal-L1 (eq. 9) and GJML (eq. 7) over the prediction of one pixel (1-D) and over the
  predictions of two pixels (2-D, the losses averaged over the two pixels as eqs. 8–9 do;
  GJML over the two-pixel image; and the method's loss GJML + Stable Focal-L1), for targets
  ``y`` (and ``y2``) and focusing parameter γ; :func:`surface_local_minima` marks the grid's
  local minima;
* :func:`draw_sauna_losses` — a Matplotlib figure of both;
* :func:`sauna_losses_widget` — sliders for ``y``, ``y2`` and γ wired to the drawing function
  (``ipywidgets`` is imported inside).
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_positive
from ..losses.sauna import focal_l1_loss, generalized_jml, stable_focal_l1_loss

__all__ = ["loss_curves", "loss_surfaces", "surface_local_minima", "draw_sauna_losses", "sauna_losses_widget"]

DEFAULTS = {"y": 0.5, "y2": -0.3, "gamma": 1.0}


def _check_target(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number in [-1, 1], got {type(value).__name__}")
    if not -1.0 <= float(value) <= 1.0:  # NaN fails
        raise ValueError(f"{name}: expected a number in [-1, 1], got {value!r}")
    return float(value)


def _check_n(name: str, value, low: int = 3) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def loss_curves(y: float = 0.5, gamma: float = 1.0, *, n: int = 401) -> dict[str, np.ndarray]:
    r"""The three losses of one pixel as functions of its prediction :math:`f \in [-1, 1]`.

    Parameters
    ----------
    y : float, default 0.5
        Target :math:`\tilde y \in [-1, 1]`.
    gamma : float, default 1.0
        Focusing parameter :math:`\gamma > 0` of eqs. (8)–(9).
    n : int, default 401
        Grid points.

    Returns
    -------
    dict
        ``f`` (grid) and ``focal``, ``stable``, ``gjml`` (each shape ``(n,)``, float64);
        GJML of one pixel is :math:`|f - y| / \max(|f|, |y|)`.
    """
    y = _check_target("y", y)
    gamma = check_positive("gamma", gamma)
    f = torch.linspace(-1.0, 1.0, _check_n("n", n), dtype=torch.float64)
    t = torch.full_like(f, y)
    return {
        "f": f.numpy(),
        "focal": focal_l1_loss(f, t, gamma=gamma, reduction="none").numpy(),
        "stable": stable_focal_l1_loss(f, t, gamma=gamma, reduction="none").numpy(),
        "gjml": generalized_jml(f.view(-1, 1, 1), t.view(-1, 1, 1), reduction="none")[:, 0].numpy(),
    }


def loss_surfaces(y: float = 0.5, y2: float = -0.3, gamma: float = 1.0, *, n: int = 121) -> dict[str, np.ndarray]:
    r"""The three losses of a two-pixel image over its predictions :math:`(f_1, f_2) \in [-1, 1]^2`.

    Parameters
    ----------
    y, y2 : float
        Targets of pixels 1 and 2, in :math:`[-1, 1]`.
    gamma : float
        Focusing parameter :math:`\gamma > 0`.
    n : int, default 121
        Grid points per axis.

    Returns
    -------
    dict
        ``f1``, ``f2`` (``(n, n)`` grids, ``f1`` along columns) and ``focal``, ``stable``
        (means over the two pixels, eqs. 8–9), ``gjml`` (eq. 7 over the image) and
        ``combined`` (``gjml + stable``: the method's loss, weights 1 and 1), each ``(n, n)``
        float64.
    """
    y, y2 = _check_target("y", y), _check_target("y2", y2)
    gamma = check_positive("gamma", gamma)
    g = torch.linspace(-1.0, 1.0, _check_n("n", n), dtype=torch.float64)
    f2, f1 = torch.meshgrid(g, g, indexing="ij")
    pred = torch.stack([f1, f2], -1).reshape(-1, 1, 2)
    tgt = torch.tensor([y, y2], dtype=torch.float64).expand_as(pred).contiguous()
    shape = f1.shape
    out = {
        "f1": f1.numpy(), "f2": f2.numpy(),
        "focal": focal_l1_loss(pred, tgt, gamma=gamma, reduction="none").mean(-1).reshape(shape).numpy(),
        "stable": stable_focal_l1_loss(pred, tgt, gamma=gamma, reduction="none").mean(-1).reshape(shape).numpy(),
        "gjml": generalized_jml(pred, tgt, reduction="none").reshape(shape).numpy(),
    }
    out["combined"] = out["gjml"] + out["stable"]
    return out


def surface_local_minima(values: np.ndarray) -> np.ndarray:
    """Boolean map of the points of a 2-D grid no larger than any of their (up to 8) neighbours."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or min(v.shape) < 2:
        raise ValueError(f"values: expected a 2-D grid with both sides >= 2, got shape {v.shape}")
    pad = np.pad(v, 1, constant_values=np.inf)
    h, w = v.shape
    out = np.ones_like(v, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                out &= v <= pad[1 + di:1 + di + h, 1 + dj:1 + dj + w]
    return out


def draw_sauna_losses(y: float = DEFAULTS["y"], y2: float = DEFAULTS["y2"], gamma: float = DEFAULTS["gamma"], *,
                      n_curve: int = 401, n_surface: int = 121, fig=None):
    """The paper's Figure 4c for any target and γ, and an extension of Fig. 4 to two pixels.

    Panel 1: the three losses over the prediction of a pixel with target ``y`` (the cut of the
    paper's Fig. 4c, for any target). Panels 2–5: Focal-L1, Stable Focal-L1, GJML and the
    method's GJML + Stable Focal-L1 over the two predictions of an image with targets
    ``(y, y2)`` — not the paper's Fig. 4a–b, which are surfaces over (prediction, target) of one
    pixel; white crosses mark the grid's local minima, the star the target.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    c = loss_curves(y, gamma, n=n_curve)
    s = loss_surfaces(y, y2, gamma, n=n_surface)
    if fig is None:
        fig = plt.figure(figsize=(18, 3.6))
    else:
        fig.clear()
    axes = fig.subplots(1, 5)
    ax = axes[0]
    ax.plot(c["f"], c["focal"], label="Focal-L1 (eq. 8)")
    ax.plot(c["f"], c["stable"], label="Stable Focal-L1 (eq. 9)")
    ax.plot(c["f"], c["gjml"], label="GJML (eq. 7), one pixel")
    ax.axvline(y, color="grey", lw=0.8)
    ax.set(xlabel="prediction $f$", ylabel="loss", title=rf"one pixel, $\tilde y$ = {y:.2f}, $\gamma$ = {gamma:.2f}",
           ylim=(0, max(2.05, float(np.nanmax(c["focal"])) * 1.02)))
    ax.legend(fontsize=7, loc="upper center")
    for ax, key, title in zip(axes[1:], ("focal", "stable", "gjml", "combined"),
                              ("Focal-L1", "Stable Focal-L1", "GJML", "GJML + SF-L1")):
        z = s[key]
        cs = ax.contourf(s["f1"], s["f2"], z, levels=30, cmap="viridis")
        fig.colorbar(cs, ax=ax, fraction=0.046)
        mins = surface_local_minima(z)
        ax.plot(s["f1"][mins], s["f2"][mins], "wx", ms=7, mew=2)
        ax.plot([y], [y2], "r*", ms=10)
        ax.set(xlabel="$f_1$", ylabel="$f_2$", aspect="equal",
               title=f"{title}: {int(mins.sum())} local min.\n" + rf"targets ({y:.2f}, {y2:.2f})")
    fig.tight_layout()
    return fig


def sauna_losses_widget():
    """Sliders for ``y``, ``y2`` and γ that redraw :func:`draw_sauna_losses` (needs ipywidgets)."""
    import ipywidgets as widgets

    from . import live_figure

    sliders = {
        "y": widgets.FloatSlider(value=DEFAULTS["y"], min=-1, max=1, step=0.05, description="target y"),
        "y2": widgets.FloatSlider(value=DEFAULTS["y2"], min=-1, max=1, step=0.05, description="target y2"),
        "gamma": widgets.FloatSlider(value=DEFAULTS["gamma"], min=0.25, max=4, step=0.25, description="γ"),
    }
    return live_figure(sliders, draw_sauna_losses)
