r"""Widget of the margin-calibration chapter: margins and decision boundaries on a 1-D toy.

Two classes of 1-D "pixels", ``x ~ N(∓separation/2, 1)``, with ``n_0`` (majority) and ``n_1``
(minority) pixels; a linear score ``s_1 − s_0 = w x + b`` is fitted to the whole population
(:func:`softseg.margin_theory.fit_toy_boundary`) with

* cross-entropy,
* the calibrated log-loss without offsets (``ρ = 0``),
* the calibrated log-loss with the distribution-aware offsets of Corollary 1.1
  (:func:`softseg.losses.optimal_margins` with ``τ`` and ``v``), as printed: ``ρ_0k`` on the
  pixels *not* of class ``k`` (eq. 6),
* the same offsets with the two sides swapped (``ρ_0k`` asked of the pixels *of* class ``k``,
  the reading of the sentence after Corollary 1.1, "a larger margin is required for class i"),

and the boundary ``x* = −b/w`` of each is drawn beside the threshold that maximizes the
population mIoU. Layers: :func:`toy_margin_curves` (pure), :func:`draw_toy_margins` (a
Matplotlib figure), :func:`margin_widget` (ipywidgets sliders, imported inside).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._checks import check_positive
from ..losses import optimal_margins
from ..margin_theory import fit_toy_boundary, iou_optimal_boundary, toy_iou, toy_population

__all__ = ["DEFAULTS", "toy_margin_curves", "draw_toy_margins", "margin_widget"]

#: Default state of the widget (and of the static figure in the book).
DEFAULTS: dict[str, float] = {"n_major": 9_500.0, "n_minor": 500.0, "tau": 10.0, "v": 1.0, "separation": 2.0}

_STYLE = {
    "cross-entropy": ("C0", "-"),
    "calibrated, ρ = 0": ("C1", "--"),
    "offsets (eq. 6 as printed)": ("C3", "-"),
    "offsets, sides swapped": ("C2", "-."),
    "mIoU-optimal": ("k", ":"),
}


def toy_margin_curves(n_major: float = DEFAULTS["n_major"], n_minor: float = DEFAULTS["n_minor"],
                      tau: float = DEFAULTS["tau"], v: float = DEFAULTS["v"],
                      separation: float = DEFAULTS["separation"]) -> dict[str, Any]:
    r"""Margins, fitted boundaries and population IoUs of the 2-class toy problem.

    Parameters
    ----------
    n_major, n_minor : float
        Pixel counts ``n_0`` and ``n_1`` (> 0).
    tau, v : float
        Scale ``τ > 0`` and hyper-parameter ``v > 0`` of :func:`softseg.losses.optimal_margins`
        (the paper's ``v`` in Corollary 1.1, ``ν`` in its Table 1; the figure and sliders say ``ν``,
        as the chapter does).
    separation : float
        Distance between the two class means (in standard deviations), > 0.

    Returns
    -------
    dict
        ``x`` ``(G,)`` grid and ``density`` ``(2, G)`` (expected pixels per grid cell);
        ``rho_0k``, ``rho_k0`` ``(2,)`` margins; ``boundary`` a mapping name → ``x*``;
        ``iou`` a mapping name → ``(2,)`` population IoU of both classes (eq. 3).

    Raises
    ------
    TypeError, ValueError
        For non-positive or non-numeric arguments.
    """
    tau = check_positive("tau", tau)
    v = check_positive("v", v)
    pop = toy_population(n_major, n_minor, separation=separation)
    rho_0k, rho_k0 = optimal_margins(pop.counts, tau=tau, v=v)
    boundary = {
        "cross-entropy": fit_toy_boundary(pop, loss="ce")[2],
        "calibrated, ρ = 0": fit_toy_boundary(pop, rho=0.0)[2],
        "offsets (eq. 6 as printed)": fit_toy_boundary(pop, rho=(rho_0k, rho_k0))[2],
        "offsets, sides swapped": fit_toy_boundary(pop, rho=(rho_k0, rho_0k))[2],
        "mIoU-optimal": iou_optimal_boundary(pop),
    }
    iou = {name: toy_iou(pop, b).numpy() for name, b in boundary.items()}
    return {"x": pop.x.numpy(), "density": pop.density.numpy(), "counts": pop.counts.numpy(),
            "rho_0k": rho_0k.numpy(), "rho_k0": rho_k0.numpy(), "boundary": boundary, "iou": iou,
            "tau": tau, "v": v}


def draw_toy_margins(curves: dict[str, Any] | None = None, *, fig=None, **params):
    """Draw :func:`toy_margin_curves` (computed from ``params`` when ``curves`` is None).

    Left: the margins ``ρ_0k`` and ``ρ_k0`` of both classes. Right: the class densities
    weighted by their counts, the fitted decision boundaries and the mIoU each gives.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if curves is None:
        curves = toy_margin_curves(**params)
    elif params:
        raise ValueError(f"params: expected none when curves is given, got {sorted(params)}")
    if fig is None:
        fig = plt.figure(figsize=(10, 3.6))
    fig.clear()
    ax_m, ax_d = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2.4]})
    pos = np.arange(2)
    ax_m.bar(pos - 0.18, curves["rho_0k"], 0.36, label=r"$\rho_{0k}$ (pixels not of $k$)")
    ax_m.bar(pos + 0.18, curves["rho_k0"], 0.36, label=r"$\rho_{k0}$ (pixels of $k$)")
    n = curves["counts"]
    ax_m.set(xticks=pos, xticklabels=[f"class 0\n$n_0$={n[0]:.0f}", f"class 1\n$n_1$={n[1]:.0f}"],
             ylabel="margin (log2 units)", title=rf"Cor. 1.1 margins, $\tau$={curves['tau']:g}, $\nu$={curves['v']:g}")
    ax_m.legend(fontsize=8)
    x, dens = curves["x"], curves["density"]
    ax_d.fill_between(x, dens[0], alpha=0.3, color="0.5", label="class 0 (majority)")
    ax_d.fill_between(x, dens[1], alpha=0.5, color="C4", label="class 1 (minority)")
    for name, b in curves["boundary"].items():
        colour, ls = _STYLE[name]
        miou = float(np.mean(curves["iou"][name]))
        iou1 = float(curves["iou"][name][1])
        ax_d.axvline(b, color=colour, ls=ls, lw=1.6, label=f"{name}: mIoU {miou:.3f}, IoU$_1$ {iou1:.3f}")
    ax_d.set(xlabel="feature x", ylabel="pixels per grid cell", title="decision boundaries (x > x* → class 1)",
             xlim=(x[0] + 2, x[-1] - 2))
    ax_d.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def margin_widget():
    """Sliders for ``n_1/n_0`` (log scale), ``τ``, ``v`` and the separation, redrawing
    :func:`draw_toy_margins`. Needs ipywidgets (imported here) and an interactive backend.

    Returns
    -------
    ipywidgets.VBox
        The sliders above an output area holding the figure.
    """
    import ipywidgets as widgets

    from . import live_figure

    total = DEFAULTS["n_major"] + DEFAULTS["n_minor"]
    controls = {
        "ratio": widgets.FloatLogSlider(value=DEFAULTS["n_minor"] / DEFAULTS["n_major"], base=10, min=-2.5, max=0,
                                        step=0.05, description="n₁/n₀"),
        "tau": widgets.FloatLogSlider(value=DEFAULTS["tau"], base=10, min=-1, max=2, step=0.05, description="τ"),
        # the paper's v of Corollary 1.1 is the nu of its Table 1 and of the chapter
        "v": widgets.FloatLogSlider(value=DEFAULTS["v"], base=10, min=-2, max=1, step=0.1, description="ν"),
        "separation": widgets.FloatSlider(value=DEFAULTS["separation"], min=0.5, max=4.0, step=0.1,
                                          description="separation"),
    }

    def draw(ratio: float, **rest: float):
        n_minor = total * ratio / (1 + ratio)
        return draw_toy_margins(n_major=total - n_minor, n_minor=n_minor, **rest)

    return live_figure(controls, draw, rows=[["ratio", "tau"], ["v", "separation"]])


if __name__ == "__main__":  # pragma: no cover
    print({k: (round(b, 3) if math.isfinite(b) else b) for k, b in toy_margin_curves()["boundary"].items()})
